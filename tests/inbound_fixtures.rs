//! The fixture corpus (fixtures/inbound/, see its README): replies as the major mail clients
//! write them, auto-replies, bounces, forged senders and new requests, each with its expected
//! outcome. Every fixture runs through `Desk::ingest` on a fresh demo help desk whose ticket
//! SUP-20261122-0001 was sent "To IT Provider" and then "To Customer"; the test asserts the
//! class, the sender and whether they were verified, how the ticket was matched, the extracted
//! text exactly, the command and fields, and what happened (status of the mail, the ticket's
//! state after).
//!
//! `DESKMAIL_FIXTURE=name` runs one; `-- --nocapture` prints each report.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use deskmail::desk::{CreateRequest, Desk, Incoming, MailReport, Outcome};
use deskmail::workflow::Intent;
use serde::Deserialize;
use support::demo::{self, actor};
use support::dialects::sqlite_url;

const SECRET: &str = "fixture-secret-0123456789abcdef";
const REF: &str = "SUP-20261122-0001";

#[derive(Debug, Deserialize)]
struct Fixture {
    description: String,
    #[serde(default)]
    given: Given,
    expect: Expect,
}

/// The help desk the mail arrives at: a preset, and the actions taken on the ticket before
/// (by default, partner-routing with "To IT Provider" and then "To Customer").
#[derive(Debug, Deserialize)]
struct Given {
    preset: String,
    steps: Vec<(String, String)>,
}

impl Default for Given {
    fn default() -> Self {
        Given {
            preset: "partner-routing".into(),
            steps: vec![
                ("alice@helpdesk.example".into(), "To IT Provider".into()),
                ("alice@helpdesk.example".into(), "To Customer".into()),
            ],
        }
    }
}

#[derive(Debug, Deserialize)]
struct Expect {
    class: String,
    sender: String,
    verified: bool,
    matched_by: String,
    text: Option<String>,
    command: Option<String>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    #[serde(default = "exact")]
    compare: String,
    bounce_recipient: Option<String>,
    bounce_status: Option<String>,
    /// What became of the mail: applied, refused, recorded.
    outcome: Option<String>,
    /// The ticket's status afterwards (the one the mail names, or the new one).
    status: Option<String>,
    /// The action the core applied (`comment`, `To Customer`, `create`), when one was.
    action: Option<String>,
    #[allow(dead_code)]
    note: Option<String>,
}

fn exact() -> String {
    "exact".into()
}

/// The groups of fixtures (folders of `fixtures/inbound/`) and how many mails each has at least.
const GROUPS: [(&str, usize); 5] = [
    ("auto", 7),
    ("bounces", 6),
    ("forged", 4),
    ("new", 5),
    ("replies", 30),
];

/// Every fixture's mail, sorted. A group that is missing or has fewer mails than its floor, a
/// folder that is no group and a mail without its expectations fail.
fn fixtures() -> Vec<PathBuf> {
    let root = support::root().join("fixtures/inbound");
    let entries = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|f| f.unwrap().path())
            .collect()
    };
    for dir in entries(&root).into_iter().filter(|d| d.is_dir()) {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            GROUPS.iter().any(|(g, _)| *g == name),
            "fixtures/inbound/{name} is no group the test knows"
        );
    }
    let mut out = Vec::new();
    for (group, floor) in GROUPS {
        let mails: Vec<PathBuf> = entries(&root.join(group))
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "eml"))
            .collect();
        assert!(
            mails.len() >= floor,
            "fixtures/inbound/{group}: {} mails, fewer than its {floor}",
            mails.len()
        );
        for m in &mails {
            assert!(
                m.with_extension("toml").is_file(),
                "{}: no expectations beside it",
                m.display()
            );
        }
        out.extend(mails);
    }
    out.sort();
    out
}

/// The demo help desk with the fixtures' ticket, its notifications in the outbox.
async fn world(dir: &Path, given: &Given) -> Desk {
    std::fs::write(dir.join("reply.key"), SECRET).unwrap();
    let url = sqlite_url(dir, "fixtures.sqlite");
    let desk = support::demo_desk_with(&url, &given.preset, |s| {
        s.inbound.trusted_authserv_ids = vec!["mx.helpdesk.example".into()];
        s.outbound.secret_file = dir.join("reply.key");
        s.outbound.spool_dir = dir.join("spool");
    })
    .await;
    // The itil-portal preset asks for the service of the contract on creation.
    let fields = if given.preset == "itil-portal" {
        demo::fields(&demo::MAILBOX_REQUEST)
    } else {
        BTreeMap::new()
    };
    let created = desk
        .create(
            &actor(&desk, demo::ANNA),
            CreateRequest {
                subject: "Printer on fire".into(),
                text: "It smokes.".into(),
                source: "cli".into(),
                fields,
                ..Default::default()
            },
            demo::at("13:30"),
        )
        .await
        .unwrap();
    assert!(matches!(created, Outcome::Applied { ref reference, .. } if reference == REF));
    for (n, (who, action)) in given.steps.iter().enumerate() {
        let o = desk
            .act(
                REF,
                &actor(&desk, who),
                &Intent::Act {
                    action: action.clone(),
                    comment: Some(format!("Step {} of the story.", n + 1)),
                    internal: false,
                    fields: BTreeMap::new(),
                },
                &[],
                demo::at("13:38") + jiff::SignedDuration::from_mins(n as i64),
            )
            .await
            .unwrap();
        assert!(matches!(o, Outcome::Applied { .. }), "{action}: {o:?}");
    }
    desk
}

/// The fixture's mail with its placeholders filled in.
async fn mail(desk: &Desk, path: &Path, expect: &Expect) -> Vec<u8> {
    let text = String::from_utf8(std::fs::read(path).unwrap()).unwrap();
    let key = &desk.outbound.key;
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(open) = rest.find("{{reply:") {
        out.push_str(&rest[..open]);
        let close = rest[open..].find("}}").unwrap() + open;
        let address = &rest[open + "{{reply:".len()..close];
        out.push_str(&key.reply_address("support@helpdesk.example", REF, address));
        rest = &rest[close + 2..];
    }
    out.push_str(rest);
    // The notification answered: the last one to the sender (or the bounced recipient), or to
    // a group they belong to.
    let rows = desk.store.outbox(None, None, 100).await.unwrap();
    let who = expect
        .bounce_recipient
        .clone()
        .unwrap_or_else(|| expect.sender.to_lowercase());
    let person = desk.settings.directory.person(&who);
    let groups = deskmail::inbound::identify::token_candidates(
        &desk.settings.directory,
        &who,
        person.as_ref(),
    );
    let notification = rows
        .iter()
        .find(|r| groups.contains(&r.recipient))
        .or(rows.first())
        .map(|r| r.message_id.clone())
        .unwrap();
    let root = desk
        .store
        .ticket(REF)
        .await
        .unwrap()
        .unwrap()
        .thread_root
        .unwrap();
    out.replace("{{notification}}", &notification)
        .replace("{{root}}", &root)
        .into_bytes()
}

fn eq(problems: &mut Vec<String>, what: &str, got: &str, want: &str) {
    if got != want {
        problems.push(format!("{what}: got {got:?}, expected {want:?}"));
    }
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks one fixture; the problems found (none when it passes).
async fn check(path: &Path) -> Vec<String> {
    let name = path.file_stem().unwrap().to_string_lossy().to_string();
    let fixture: Fixture =
        toml::from_str(&std::fs::read_to_string(path.with_extension("toml")).unwrap())
            .unwrap_or_else(|e| panic!("{name}.toml: {e}"));
    let e = &fixture.expect;
    let dir = tempfile::tempdir().unwrap();
    let desk = world(dir.path(), &fixture.given).await;
    let raw = mail(&desk, path, e).await;
    let outbox_before = desk.store.outbox(None, None, 1000).await.unwrap().len();
    let status_before = desk.store.ticket(REF).await.unwrap().unwrap().ticket.status;
    let report: MailReport = desk
        .ingest(&[Incoming::new(raw, None)], demo::at("15:00"), false)
        .await
        .pop()
        .unwrap()
        .unwrap_or_else(|err| panic!("{name}: {err}"));
    println!(
        "--- {name}: {}\n{}",
        fixture.description,
        serde_json::to_string_pretty(&report).unwrap()
    );
    let mut problems = Vec::new();
    eq(&mut problems, "class", report.class, &e.class);
    eq(
        &mut problems,
        "sender",
        &report.sender.address,
        &e.sender.to_lowercase(),
    );
    eq(
        &mut problems,
        "verified",
        &report.sender.verified.to_string(),
        &e.verified.to_string(),
    );
    eq(
        &mut problems,
        "matched_by",
        report.matched_by,
        &e.matched_by,
    );
    match &e.outcome {
        Some(want) => eq(&mut problems, "outcome", report.status.as_str(), want),
        None => problems.push(format!(
            "no expected outcome (got {}: {}) ((status {}))",
            report.status.as_str(),
            report.decision(),
            desk.store
                .ticket(report.ticket.as_deref().unwrap_or(REF))
                .await
                .unwrap()
                .unwrap()
                .ticket
                .status
        )),
    }
    if let Some(want) = &e.text {
        let got = report.text.clone().unwrap_or_default();
        let (g, w) = if e.compare == "ws" {
            (squash(&got), squash(want))
        } else {
            (got.trim().to_string(), want.trim().to_string())
        };
        eq(&mut problems, "text", &g, &w);
    }
    match &e.command {
        Some(written) => {
            let wf = &desk.settings.workflow;
            match deskmail::workflow::resolve::resolve(wf, &desk.settings.directory, written) {
                Ok(action) => eq(
                    &mut problems,
                    "command",
                    &report.commands.join(", "),
                    &action.display_name(wf),
                ),
                Err(_) => {
                    let problem = report.command_problem.clone().unwrap_or_default();
                    if !problem.contains(written.as_str()) {
                        problems.push(format!(
                            "command problem {problem:?} should name {written:?}"
                        ));
                    }
                }
            }
        }
        None => eq(&mut problems, "command", &report.commands.join(", "), ""),
    }
    if e.fields != report.fields {
        problems.push(format!(
            "fields: got {:?}, expected {:?}",
            report.fields, e.fields
        ));
    }
    if let Some(want) = &e.bounce_recipient {
        let got = report.bounce.as_ref().and_then(|b| b.recipient.clone());
        eq(
            &mut problems,
            "bounce recipient",
            got.as_deref().unwrap_or(""),
            want,
        );
    }
    if let Some(want) = &e.bounce_status {
        let got = report.bounce.as_ref().map(|b| b.status.clone());
        eq(
            &mut problems,
            "bounce status",
            got.as_deref().unwrap_or(""),
            want,
        );
    }
    // What happened to the ticket.
    let ticket = report.ticket.clone().unwrap_or_else(|| REF.to_string());
    let after = desk
        .store
        .ticket(&ticket)
        .await
        .unwrap()
        .unwrap()
        .ticket
        .status;
    if let Some(want) = &e.status {
        eq(&mut problems, "status after", &after, want);
    }
    if let Some(want) = &e.action {
        let decision_action = report
            .action
            .as_ref()
            .map(|a| a.name.clone())
            .unwrap_or_default();
        eq(&mut problems, "action", &decision_action, want);
    }
    // Mail that is not a person's never changes a ticket and is never answered.
    if e.class != "person" {
        eq(
            &mut problems,
            "status of the ticket",
            &after,
            &status_before,
        );
        let outbox = desk.store.outbox(None, None, 1000).await.unwrap();
        let to_sender = outbox
            .iter()
            .take(outbox.len() - outbox_before)
            .filter(|r| r.recipient == report.sender.address)
            .count();
        if to_sender > 0 {
            problems.push(format!(
                "{to_sender} mail(s) went back to the automatic sender"
            ));
        }
    }
    problems
}

#[tokio::test(flavor = "current_thread")]
async fn every_fixture_gives_its_expected_text_and_action() {
    let only = std::env::var("DESKMAIL_FIXTURE").ok();
    let mut failures = Vec::new();
    let mut count = 0;
    for path in fixtures() {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if only.as_ref().is_some_and(|o| *o != name) {
            continue;
        }
        count += 1;
        let problems = check(&path).await;
        if !problems.is_empty() {
            failures.push(format!("{name}:\n  {}", problems.join("\n  ")));
        }
    }
    println!("{count} fixtures, {} failing", failures.len());
    assert!(count > 0, "no fixture named {only:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
