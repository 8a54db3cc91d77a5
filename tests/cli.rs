//! The command line on the example config: the quick start, bad input, the config checks, and
//! two processes creating tickets on one PostgreSQL.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::TestEnv;
use support::demo;
use support::pg::PgDb;

#[test]
fn the_example_config_passes_as_it_is() {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_deskmail"));
    cmd.current_dir(support::root())
        .args(["--config", "deskmail.example.toml", "check-config"]);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("DESKMAIL")) {
        cmd.env_remove(k);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("deskmail.example.toml: OK"), "{stdout}");
    assert!(stdout.contains("partner-routing"), "{stdout}");
    assert!(
        stdout.contains("1 agent(s), 1 group(s), 2 organisation(s), 4 partner(s)"),
        "{stdout}"
    );
}

/// The example's commented `[mailboxes.imap]` with its OAuth2 table, taken as it is shown
/// (without the password file it replaces and the files that must exist): the config loads.
#[test]
fn the_examples_commented_oauth2_mailbox_loads_as_shown() {
    let env = TestEnv::new();
    let example = support::read("deskmail.example.toml");
    let start = example.find("# [mailboxes.imap]\n").unwrap();
    let end = example[start..]
        .find("# Or take it from a Maildir")
        .unwrap()
        + start;
    let skipped = [
        "password_file",
        "client_secret_file",
        "ca_file",
        "token_url",
    ];
    let block: String = example[start..end]
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| {
            l.starts_with('[')
                || l.split_once(" = ")
                    .is_some_and(|(key, _)| key.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        })
        .filter(|l| !skipped.iter().any(|k| l.starts_with(k)))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        block.contains("[mailboxes.imap.oauth2]\nprovider"),
        "{block}"
    );
    let config = example.replacen(
        "# [mailboxes.imap]\n",
        &format!("{block}# [mailboxes.imap]\n"),
        1,
    );
    std::fs::write(env.config(), config).unwrap();
    let out = env.ok(&["check-config"]);
    assert!(out.contains("OK"), "{out}");
}

/// The commented minimal config an install starts from (`packaging/deskmail.toml`): it passes
/// `check-config`, and a customer's mail opens a ticket with it. Its paths under
/// /var/lib/deskmail are moved to a temporary directory.
#[test]
fn the_minimal_config_passes_and_takes_a_customers_mail() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&[u8]>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_deskmail"));
        support::without_deskmail_env(&mut cmd);
        let at = |name: &str| dir.path().join(name).display().to_string();
        cmd.current_dir(dir.path())
            .env(
                "DESKMAIL__STORE__URL",
                format!("sqlite://{}", at("d.sqlite")),
            )
            .env("DESKMAIL__OUTBOUND__SECRET_FILE", at("reply.key"))
            .env("DESKMAIL__OUTBOUND__SPOOL_DIR", at("spool"))
            .arg("--config")
            .arg(support::root().join("packaging/deskmail.toml"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        child.wait_with_output().unwrap()
    };
    let out = run(&["check-config"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("deskmail.toml: OK"), "{stdout}");
    assert!(stdout.contains("preset open-closed"), "{stdout}");
    let mail = b"Return-Path: <dana@customer.example>\r\n\
        From: Dana <dana@customer.example>\r\nTo: support@helpdesk.example\r\n\
        Subject: The printer jams\r\nMessage-ID: <dana-1@customer.example>\r\n\r\nPaper everywhere.\r\n";
    let out = run(&["ingest", "--mailbox", "support", "-"], Some(mail));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("applied person from dana@customer.example"),
        "{stderr}"
    );
    let out = run(&["outbox", "send"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spooled = std::fs::read_dir(dir.path().join("spool")).unwrap().count();
    assert!(
        spooled >= 1,
        "the customer is told: {spooled} mails spooled"
    );
}

#[test]
fn quick_start_story_in_json() {
    let env = TestEnv::new();
    let r = env.create_fire_ticket();
    assert!(
        r.starts_with("SUP-") && r.len() == "SUP-20261122-0001".len(),
        "{r}"
    );
    let v = env.show(&r);
    assert_eq!(v["status"], "New");
    assert_eq!(v["waiting_on"], "support");
    assert_eq!(v["organisation"], "Acme");
    assert_eq!(v["requester"], "anna@acme.example");
    assert_eq!(v["assignee"], Value::Null);
    assert_eq!(
        v["involved_partners"],
        serde_json::json!(["IT Provider", "2nd Level Support Provider"])
    );
    assert_eq!(v["source"], "cli");
    assert_eq!(v["workflow"], "partner-routing");

    env.ok(&[
        "ticket",
        "act",
        &r,
        "--as",
        "ops@itprov.example",
        "--action",
        "To Customer",
        "--comment",
        "Is it plugged in?",
    ]);
    let v = env.show(&r);
    assert_eq!(v["status"], "On Customer");
    assert_eq!(v["waiting_on"], "customer");

    env.ok(&[
        "ticket",
        "act",
        &r,
        "--as",
        "anna@acme.example",
        "--action",
        "comment",
        "--comment",
        "Yes.",
    ]);
    let v = env.show(&r);
    assert_eq!(v["status"], "New");
    assert_eq!(v["waiting_on"], "support");
    let comments = v["comments"].as_array().unwrap();
    let texts: Vec<&str> = comments
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["Smoke everywhere.", "Is it plugged in?", "Yes."]);
    assert_eq!(comments[1]["author"], "ops@itprov.example");
    assert_eq!(comments[1]["role"], "partner");
    assert_eq!(comments[1]["visibility"], "public");
    assert!(comments[0]["created_at"].as_str().unwrap().ends_with('Z'));
    let statuses: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["kind"] == "status")
        .map(|h| h["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "New → On Customer",
            "On Customer → New (rule \"answer while waiting\")"
        ]
    );

    // Refused: non-zero, the reason and the allowed actions, nothing changed.
    let before = env.show(&r);
    let err = env.fails(&[
        "ticket",
        "act",
        &r,
        "--as",
        "anna@acme.example",
        "--action",
        "To Web-IT Provider",
        "--comment",
        "?",
    ]);
    assert!(
        err.contains("Web-IT Provider is not involved in this ticket"),
        "{err}"
    );
    assert!(
        err.contains(
            "allowed actions: comment, To Customer, To 2nd Level Support Provider, To IT Provider"
        ),
        "{err}"
    );
    assert_eq!(env.show(&r), before);

    // Ben (power user) sees Anna's ticket; Carl (another organisation) does not.
    let ben: Value = serde_json::from_str(&env.ok(&[
        "ticket",
        "show",
        &r,
        "--as",
        "ben@acme.example",
        "--json",
    ]))
    .unwrap();
    assert_eq!(ben["ref"], r.as_str());
    let err = env.fails(&["ticket", "show", &r, "--as", "carl@globex.example"]);
    assert!(err.contains("may not see"), "{err}");

    // The list: most recent first, with the seed 001 columns.
    let r2 = env.ok(&[
        "ticket",
        "create",
        "--as",
        "carl@globex.example",
        "--subject",
        "Site down",
        "--text",
        "500s",
        "--to",
        "billing@helpdesk.example",
    ]);
    let list: Value = env.tickets(&[]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["ref"], r2.trim());
    assert_eq!(list[0]["system"], "billing@helpdesk.example");
    // A page at a time: each page says where the next starts.
    let page = |args: &[&str]| -> Value {
        let mut all = vec!["ticket", "list", "--json", "--limit", "1"];
        all.extend_from_slice(args);
        serde_json::from_str(&env.ok(&all)).unwrap()
    };
    let first = page(&[]);
    assert_eq!(first["tickets"][0]["ref"], r2.trim());
    assert_eq!(first["next"], r2.trim());
    let second = page(&["--after", r2.trim()]);
    assert_eq!(second["tickets"][0]["ref"], r.as_str());
    assert!(second["next"].is_null(), "{second}");
    let err = env.fails(&["ticket", "list", "--after", "SUP-19990101-0001"]);
    assert!(err.contains("no ticket SUP-19990101-0001"), "{err}");
    let table = env.run(&["ticket", "list", "--limit", "1"]);
    assert!(
        String::from_utf8_lossy(&table.stderr).contains(&format!("more: --after {}", r2.trim())),
        "{table:?}"
    );
    for key in [
        "ref",
        "status",
        "subject",
        "organisation",
        "system",
        "created_at",
        "updated_at",
        "closed_at",
    ] {
        assert!(list[0].get(key).is_some(), "missing {key}");
    }
    // The billing mailbox gives its request type and queue.
    let carl = env.show(r2.trim());
    assert_eq!(carl["fields"]["request_type"], "Sales/Billing enquiry");
    assert_eq!(carl["fields"]["queue"], "Billing");
    let as_carl: Value = env.tickets(&["--as", "carl@globex.example"]);
    assert_eq!(as_carl.as_array().unwrap().len(), 1);
    let acme: Value = env.tickets(&["--organisation", "acme"]);
    assert_eq!(acme.as_array().unwrap().len(), 1);

    // What may Anna do now?
    let actions = env.ok(&["ticket", "actions", &r, "--as", "anna@acme.example"]);
    assert_eq!(
        actions.lines().collect::<Vec<_>>(),
        [
            "comment",
            "To Customer",
            "To 2nd Level Support Provider",
            "To IT Provider"
        ]
    );
}

#[test]
fn bad_input_gets_a_clear_message_and_changes_nothing() {
    let env = TestEnv::new();
    let r = env.ok(&[
        "ticket",
        "create",
        "--as",
        "anna@acme.example",
        "--subject",
        "S",
        "--text",
        "T",
    ]);
    let r = r.trim();
    let before = env.ok(&["ticket", "list", "--json"]);
    let shown = env.show(r);
    let cases: [(&[&str], &str); 7] = [
        (
            &[
                "ticket",
                "act",
                r,
                "--as",
                "anna@acme.example",
                "--action",
                "Frobnicate",
            ],
            "unknown action \"Frobnicate\"",
        ),
        (
            &[
                "ticket",
                "act",
                "SUP-19990101-0001",
                "--as",
                "anna@acme.example",
                "--action",
                "comment",
                "--comment",
                "x",
            ],
            "no ticket SUP-19990101-0001",
        ),
        (
            &[
                "ticket",
                "act",
                r,
                "--as",
                "mallory@evil.example",
                "--action",
                "comment",
                "--comment",
                "x",
            ],
            "mallory@evil.example is not in the directory",
        ),
        (
            &[
                "ticket",
                "act",
                r,
                "--as",
                "carl@globex.example",
                "--action",
                "comment",
                "--comment",
                "x",
            ],
            "may not see ticket",
        ),
        (
            &[
                "ticket",
                "act",
                r,
                "--as",
                "anna@acme.example",
                "--action",
                "comment",
                "--comment",
                "x",
                "--internal",
            ],
            "only agents may write internal comments",
        ),
        (
            &[
                "ticket",
                "act",
                r,
                "--as",
                "anna@acme.example",
                "--action",
                "Start",
            ],
            "Start is not open to customers",
        ),
        (
            &[
                "ticket",
                "create",
                "--as",
                "nobody@nowhere.example",
                "--subject",
                "S",
                "--text",
                "T",
            ],
            "not in the directory",
        ),
    ];
    for (args, message) in cases {
        let err = env.fails(args);
        assert!(err.contains(message), "{args:?}: {err}");
    }
    let err = env.fails(&[
        "ticket",
        "act",
        r,
        "--as",
        "anna@acme.example",
        "--action",
        "comment",
        "--field",
        "nokey",
    ]);
    assert!(err.contains("is not KEY=VALUE"), "{err}");
    assert_eq!(env.ok(&["ticket", "list", "--json"]), before);
    assert_eq!(env.show(r), shown);
}

#[test]
fn a_broken_config_lists_every_problem_with_its_key() {
    let env = TestEnv::new();
    let broken = support::read("deskmail.example.toml")
        .replace(
            "time_zone = \"Europe/Berlin\"",
            "time_zone = \"Mars/Olympus\"",
        )
        .replace(
            "notify = \"team@helpdesk.example\"",
            "notify = \"support@helpdesk.example\"",
        )
        .replace(
            "partners = [\"Web-IT Provider\"]",
            "partners = [\"Nobody Inc\"]",
        )
        .replace("locale = \"de\"", "locale = \"xx\"")
        .replace(
            "# file = \"my-workflow.toml\"",
            "file = \"my-workflow.toml\"",
        )
        .replace("access = \"power\"", "access = \"admin\"")
        .replace("[log]", "[logg]");
    std::fs::write(env.config(), broken).unwrap();
    let err = env.fails(&["check-config"]);
    let file = env.config().display().to_string();
    for key in [
        "helpdesk.time_zone: unknown time zone \"Mars/Olympus\"",
        "team.notify: must differ from helpdesk.address",
        "organisations[1].partners: unknown partner \"Nobody Inc\"",
        "organisations[0].members[1].locale: locale \"xx\" is not supported",
        "organisations[0].members[1].access: \"admin\" is neither portal nor power",
        "workflow: set workflow.preset or workflow.file, not both",
        "logg: unknown section",
        "mailboxes[0].address: is team.notify",
    ] {
        assert!(
            err.contains(&format!("{file}: {key}")),
            "missing `{key}` in:\n{err}"
        );
    }
    assert!(err.contains("8 problem(s)"), "{err}");
}

#[test]
fn an_inconsistent_workflow_file_is_refused_with_the_reason() {
    let env = TestEnv::new();
    let wf = r#"
name = "broken"
initial = "New"
[[states]]
name = "New"
kind = "open"
[[states]]
name = "Limbo"
kind = "waiting"
[[states]]
name = "Done"
kind = "closed"
[comment]
roles = ["agent", "customer"]
[[transitions]]
name = "Finish"
from = ["New"]
to = "Finished"
roles = ["agent", "wizard"]
"#;
    env.use_workflow_file("broken.toml", wf);
    let err = env.fails(&["check-config"]);
    assert!(
        err.contains("transitions[0] \"Finish\": to: unknown state \"Finished\""),
        "{err}"
    );
    assert!(err.contains("unknown role \"wizard\""), "{err}");

    // Fixed targets, but a state nothing leads to.
    std::fs::write(
        env.path("broken.toml"),
        wf.replace("\"Finished\"", "\"Done\"")
            .replace(", \"wizard\"", ""),
    )
    .unwrap();
    let err = env.fails(&["check-config"]);
    assert!(
        err.contains("states \"Limbo\": unreachable from the initial state \"New\""),
        "{err}"
    );

    // A TOML error names the line.
    std::fs::write(env.path("broken.toml"), "name = \"x\"\ninitial = \n").unwrap();
    let err = env.fails(&["check-config"]);
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn a_workflow_that_drops_a_state_in_use_is_refused() {
    let env = TestEnv::new();
    let preset = support::read("src/workflow/presets/partner-routing.toml")
        .replace("name = \"partner-routing\"", "name = \"ours\"");
    env.use_workflow_file("ours.toml", &preset);
    let r = env.ok(&[
        "ticket",
        "create",
        "--as",
        "anna@acme.example",
        "--subject",
        "S",
        "--text",
        "T",
    ]);
    env.ok(&[
        "ticket",
        "act",
        r.trim(),
        "--as",
        "alice@helpdesk.example",
        "--action",
        "Start",
    ]);
    assert_eq!(env.show(r.trim())["workflow"], "ours");
    env.ok(&["check-config"]);
    // Drop "In Progress" (and the transition that leads there).
    let dropped = preset
        .replace("[[states]]\nname = \"In Progress\"\nkind = \"open\"\nturn = \"support\"\n", "")
        .replace(
            "[[transitions]]\nname = \"Start\"\naliases = [\"Beginnen\", \"in Bearbeitung\"]\nfrom = [\"New\"]\nto = \"In Progress\"\nroles = [\"agent\"]\n",
            "",
        );
    assert_ne!(dropped, preset);
    std::fs::write(env.path("ours.toml"), dropped).unwrap();
    let err = env.fails(&["check-config"]);
    assert!(
        err.contains(
            "workflow \"ours\" has no state \"In Progress\", but 1 stored ticket(s) are in it"
        ),
        "{err}"
    );
}

#[test]
fn secrets_come_from_files_and_never_print() {
    let mut env = TestEnv::new();
    std::fs::write(
        env.path("store-url"),
        "postgres://deskmail:s3cret-pw@127.0.0.1:1/deskmail\n",
    )
    .unwrap();
    let config = support::read("deskmail.example.toml").replace(
        "url = \"sqlite://data/deskmail.sqlite\"",
        "url_file = \"store-url\"",
    );
    std::fs::write(env.config(), config).unwrap();
    let out = env.run(&["check-config"]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "port 1 should be unreachable: {all}");
    assert!(all.contains("deskmail:****@127.0.0.1:1"), "{all}");
    assert!(
        !all.contains("s3cret-pw"),
        "the password was printed: {all}"
    );

    // An environment override wins over the file, key by key.
    env.set(
        "DESKMAIL__STORE__URL_FILE",
        env.path("nope").to_str().unwrap(),
    );
    let err = env.fails(&["check-config"]);
    assert!(
        err.contains("DESKMAIL__STORE__URL_FILE: cannot read"),
        "{err}"
    );
}

#[test]
fn sweep_closes_tickets_resolved_for_seven_days() {
    let env = TestEnv::new();
    let r = env.ok(&[
        "ticket",
        "create",
        "--as",
        "anna@acme.example",
        "--subject",
        "S",
        "--text",
        "T",
    ]);
    let r = r.trim();
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "Resolve",
        "--comment",
        "done",
    ]);
    let soon = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24)).to_string();
    env.ok(&["sweep", "--now", &soon]);
    assert_eq!(env.show(r)["status"], "Resolved");
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 8)).to_string();
    let out = env.ok(&["sweep", "--now", &later]);
    assert!(out.contains(r), "{out}");
    let v = env.show(r);
    assert_eq!(v["status"], "Closed");
    assert!(v["closed_at"].is_string());
}

#[tokio::test]
async fn two_processes_on_postgres_never_share_a_number() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    let mut env = TestEnv::new();
    env.set("DESKMAIL__STORE__URL", &db.url);
    env.ok(&["migrate"]);
    let env = std::sync::Arc::new(env);
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let env = std::sync::Arc::clone(&env);
            std::thread::spawn(move || {
                (0..12)
                    .map(|i| {
                        let subject = format!("worker {w} ticket {i}");
                        env.ok(&[
                            "ticket",
                            "create",
                            "--as",
                            "anna@acme.example",
                            "--subject",
                            &subject,
                            "--text",
                            "t",
                        ])
                        .trim()
                        .to_string()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let refs: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let unique: BTreeSet<&String> = refs.iter().collect();
    assert_eq!(unique.len(), 24, "{refs:?}");
    let list: Value = env.tickets(&[]);
    assert_eq!(list.as_array().unwrap().len(), 24);
}

#[test]
fn an_admins_own_workflow_file_runs_through_the_same_core() {
    let env = TestEnv::new();
    env.use_workflow_file(
        "escalation.toml",
        &support::read("fixtures/workflows/escalation.toml"),
    );
    let summary = env.ok(&["check-config"]);
    assert!(summary.contains("escalation (file "), "{summary}");
    let r = env.ok(&[
        "ticket",
        "create",
        "--as",
        "anna@acme.example",
        "--subject",
        "Slow VPN",
        "--text",
        "Very slow.",
    ]);
    let r = r.trim();
    let err = env.fails(&[
        "ticket",
        "act",
        r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "Escalate",
    ]);
    assert!(err.contains("Escalate needs a comment"), "{err}");
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "to second level",
        "--comment",
        "MTU?",
    ]);
    let v = env.show(r);
    assert_eq!(v["status"], "Second level");
    assert_eq!(v["waiting_on"], "group:development");
    assert_eq!(v["comments"][1]["visibility"], "internal");
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "Propose fix",
        "--comment",
        "MTU lowered.",
    ]);
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "anna@acme.example",
        "--action",
        "works",
    ]);
    assert_eq!(env.show(r)["status"], "Done");
    // This workflow reopens on a reply to a closed ticket.
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "anna@acme.example",
        "--action",
        "comment",
        "--comment",
        "Slow again.",
    ]);
    assert_eq!(env.show(r)["status"], "Open");
}

#[test]
fn partners_and_agents_open_tickets_and_agents_set_fields_with_a_comment() {
    let env = TestEnv::new();
    let r = env.ok(&[
        "ticket",
        "create",
        "--as",
        "web@webit.example",
        "--subject",
        "Cert expires",
        "--text",
        "In 3 days.",
    ]);
    let r = r.trim();
    // The partner who opened it sees it, though no organisation involves it yet.
    assert_eq!(env.show(r)["requester"], "web@webit.example");
    env.ok(&["ticket", "show", r, "--as", "web@webit.example"]);
    env.fails(&["ticket", "show", r, "--as", "ops@itprov.example"]);
    // Agents set fields with a comment; customers and partners may not.
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "comment",
        "--comment",
        "Renewing.",
        "--field",
        "queue=Certificates",
    ]);
    assert_eq!(env.show(r)["fields"]["queue"], "Certificates");
    let err = env.fails(&[
        "ticket",
        "act",
        r,
        "--as",
        "web@webit.example",
        "--action",
        "comment",
        "--comment",
        "x",
        "--field",
        "queue=Mine",
    ]);
    assert!(err.contains("takes no fields from you"), "{err}");
    let err = env.fails(&[
        "ticket",
        "act",
        r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "comment",
        "--comment",
        "x",
        "--field",
        "colour=red",
    ]);
    assert!(err.contains("unknown field colour"), "{err}");
    // Agents involve and assign.
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "Involve IT Provider",
    ]);
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "assign me",
    ]);
    let v = env.show(r);
    assert_eq!(v["involved_partners"], serde_json::json!(["IT Provider"]));
    assert_eq!(v["assignee"], "alice@helpdesk.example");
    env.ok(&["ticket", "show", r, "--as", "ops@itprov.example"]);
    let err = env.fails(&[
        "ticket",
        "act",
        r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "Assign anna@acme.example",
    ]);
    assert!(
        err.contains("not an agent; tickets are only assigned to agents"),
        "{err}"
    );
}

#[test]
fn a_template_that_does_not_compile_is_reported_with_file_and_line() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("my-templates/de")).unwrap();
    std::fs::write(
        env.path("my-templates/de/to_partner.html"),
        "{% extends \"de/base.html\" %}\n{% block intro %}\nAn {{ ticket.partner }\n{% endblock %}\n",
    )
    .unwrap();
    let config = support::example_config("templates_dir = \"my-templates\"", "");
    std::fs::write(env.config(), config).unwrap();
    let err = env.fails(&["check-config"]);
    let file = env
        .path("my-templates/de/to_partner.html")
        .display()
        .to_string();
    assert!(err.contains(&format!("{file}: line 3: ")), "{err}");
    // Other commands refuse to start with it too, rather than fail at 3 a.m.
    let err = env.fails(&["ticket", "list"]);
    assert!(err.contains("to_partner.html"), "{err}");
    // Fixed, it is used.
    std::fs::write(
        env.path("my-templates/de/to_partner.html"),
        "{% extends \"de/base.html\" %}{% block intro %}Eigene Vorlage: {{ ticket.ref }}{% endblock %}",
    )
    .unwrap();
    let summary = env.ok(&["check-config"]);
    assert!(summary.contains("overridden from"), "{summary}");
}

// ----- what an admin meets: secrets, the reply key, the environment, ingest's input -----------

/// A mail from anna to the help desk with this Message-ID (`<ID@acme.example>`).
fn mail_text(id: &str) -> String {
    format!(
        "From: anna@acme.example\nTo: support@helpdesk.example\nSubject: Printer on fire\n\
         Message-ID: <{id}@acme.example>\nDate: Sun, 22 Nov 2026 10:00:00 +0100\n\nSmoke.\n"
    )
}

/// A mail from anna to the help desk, as a file in the test's directory.
fn a_mail(env: &TestEnv, name: &str) -> std::path::PathBuf {
    let path = env.path(name);
    std::fs::write(&path, mail_text("printer")).unwrap();
    path
}

/// Everything a command printed, stdout and stderr.
fn printed(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const SECRETS: [&str; 3] = ["pw-user-1", "pw-query-2", "pw-ssl-3"];

fn shows_no_secret(what: &str, all: &str) {
    for secret in SECRETS {
        assert!(!all.contains(secret), "{what} printed {secret}:\n{all}");
    }
}

#[test]
fn store_passwords_are_masked_in_the_user_part_and_in_the_query() {
    let mut env = TestEnv::new();
    env.set(
        "DESKMAIL__STORE__URL",
        "postgres://deskmail:pw-user-1@127.0.0.1:1/x?password=pw-query-2&sslpassword=pw-ssl-3&passfile=/etc/deskmail/pgpass",
    );
    // Whatever the log level: sqlx logs the parameters it does not know with their values.
    env.set("RUST_LOG", "trace");
    let shown = "postgres://deskmail:****@127.0.0.1:1/x?password=****&sslpassword=****&passfile=/etc/deskmail/pgpass";

    let out = env.run(&["check-config"]);
    let all = printed(&out);
    assert!(!out.status.success(), "port 1 should be unreachable: {all}");
    assert!(all.contains(shown), "{all}");
    shows_no_secret("check-config", &all);
    // The driver ignores `sslpassword` (and `passfile`): said by name, never with the value.
    assert!(
        all.contains("WARNING: DESKMAIL__STORE__URL: the parameter \"sslpassword\" is not one"),
        "{all}"
    );

    // ingest, as an MTA pipe: the database is down, the MTA keeps the mail (75).
    let mail = a_mail(&env, "mail.eml");
    let out = env.run(&["ingest", mail.to_str().unwrap()]);
    let all = printed(&out);
    assert_eq!(out.status.code(), Some(75), "{all}");
    assert!(all.contains(shown), "{all}");
    shows_no_secret("ingest", &all);

    // A URL that does not parse (a password with an unencoded `/`) is not shown at all.
    env.set(
        "DESKMAIL__STORE__URL",
        "postgres://deskmail:pw-user-1/x@127.0.0.1:1/x",
    );
    let all = printed(&env.run(&["check-config"]));
    assert!(all.contains("postgres://**** (not shown"), "{all}");
    shows_no_secret("check-config", &all);
}

#[tokio::test]
async fn migrate_and_check_config_mask_a_password_parameter_of_a_live_database() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    let mut env = TestEnv::new();
    // Trust authentication: the password is sent only if asked for, and never shown.
    env.set(
        "DESKMAIL__STORE__URL",
        &format!("{}?password=pw-query-2", db.url),
    );
    let out = env.run(&["migrate"]);
    let all = printed(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("?password=**** is current"),
        "migrate names the database: {all}"
    );
    shows_no_secret("migrate", &all);
    let all = printed(&env.run(&["check-config"]));
    assert!(
        all.contains("?password=**** (postgres, 0 ticket(s)"),
        "{all}"
    );
    shows_no_secret("check-config", &all);

    // An error of the server's (no such database) does not carry the URL either.
    let (server, _) = db.url.rsplit_once('/').unwrap();
    let missing =
        format!("{server}/deskmail_no_such_db?password=pw-query-2").replacen('@', ":pw-user-1@", 1);
    env.set("DESKMAIL__STORE__URL", &missing);
    let out = env.run(&["migrate"]);
    let all = printed(&out);
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains("database \"deskmail_no_such_db\" does not exist"),
        "the server's answer: {all}"
    );
    shows_no_secret("migrate", &all);
}

#[test]
fn a_misspelt_environment_variable_is_named_and_the_file_is_not_blamed() {
    let mut env = TestEnv::new();
    std::fs::write(
        env.config(),
        support::read("deskmail.example.toml").replace("level = \"info\"", "levle = \"info\""),
    )
    .unwrap();
    env.set("DESKMAIL__STORE__ULR", "sqlite://other.sqlite");
    env.set("DESKMAIL__HELPDESK__NAMEE", "Typo Desk");
    env.set("DESKMAIL__OUTBOUND__RETRY_FOR", "forever");
    let err = env.fails(&["check-config"]);
    let file = env.config().display().to_string();
    for line in [
        "DESKMAIL__STORE__ULR: unknown key `ulr`, expected one of `url`, `url_file`, `cache_mib`"
            .to_string(),
        "DESKMAIL__HELPDESK__NAMEE: unknown key `namee`, expected one of `name`".to_string(),
        "DESKMAIL__OUTBOUND__RETRY_FOR: \"forever\" is not a duration".to_string(),
        // The file's own typo is still the file's.
        format!("{file}: log.levle: unknown key `levle`, expected `level`"),
    ] {
        assert!(err.contains(&line), "missing `{line}` in:\n{err}");
    }
    assert!(!err.contains(&format!("{file}: store.ulr")), "{err}");
    assert!(err.contains("4 problem(s)"), "{err}");
}

/// What a command writes on stderr when stderr is a terminal (a pseudo-terminal here).
fn stderr_on_a_terminal(mut cmd: std::process::Command) -> String {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two new file descriptors, owned from here on.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned by nothing else.
    let (mut master, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            OwnedFd::from_raw_fd(slave),
        )
    };
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(slave);
    let mut child = cmd.spawn().unwrap();
    // The command holds the parent's copy of the terminal's other end: once it is gone, reading
    // ends (EIO) when the child exits.
    drop(cmd);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    child.wait().unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn log_lines_are_coloured_only_on_a_terminal_and_never_with_no_color() {
    let env = TestEnv::new();
    let mail = a_mail(&env, "mail.eml");
    let args = ["-vv", "ingest", mail.to_str().unwrap()];

    // A pipe, as an MTA's: plain text, which its bounces quote.
    let out = env.run(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("DEBUG"), "no log lines to look at: {err}");
    assert!(!err.contains('\x1b'), "colour codes in a pipe: {err:?}");

    // A terminal: coloured...
    let tty = stderr_on_a_terminal({
        let mut c = env.command();
        c.args(args);
        c
    });
    assert!(tty.contains("DEBUG"), "{tty}");
    assert!(tty.contains("\x1b["), "no colour on a terminal: {tty:?}");
    // ...unless NO_COLOR says not to.
    let tty = stderr_on_a_terminal({
        let mut c = env.command();
        c.args(args).env("NO_COLOR", "1");
        c
    });
    assert!(tty.contains("DEBUG"), "{tty}");
    assert!(!tty.contains('\x1b'), "colour despite NO_COLOR: {tty:?}");
}

/// The permission bits of a file.
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn check_config_checks_the_reply_token_secret() {
    let env = TestEnv::new();
    let file = env.config().display().to_string();
    let key = env.path("data/reply-token.key");
    let shown = key.display().to_string();

    // Missing, where deskmail may create it: fine, and said so.
    let out = env.ok(&["check-config"]);
    assert!(
        out.contains(&format!("reply key:  {shown} (not there yet")),
        "{out}"
    );
    // Made on the first run: 32 random bytes as 64 hex characters, for the owner only.
    env.ok(&["ticket", "list"]);
    assert_eq!(std::fs::read_to_string(&key).unwrap().trim().len(), 64);
    assert_eq!(mode(&key), 0o600);
    let out = env.run(&["check-config"]);
    assert!(out.status.success(), "{}", printed(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("reply key:  {shown} (64 bytes, mode 600)")),
        "{}",
        printed(&out)
    );
    assert!(!printed(&out).contains("WARNING"), "{}", printed(&out));

    // Others may read it: it works, with a warning that says how to fix it.
    set_mode(&key, 0o644);
    let out = env.run(&["check-config"]);
    assert!(out.status.success(), "{}", printed(&out));
    let warning = format!(
        "WARNING: {file}: outbound.secret_file: {shown} can be read or changed by group or others (mode 644): chmod 600 {shown}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&warning),
        "{}",
        printed(&out)
    );

    // Empty, too short or unreadable: check-config fails and says why.
    std::fs::write(&key, "\n").unwrap();
    let err = env.fails(&["check-config"]);
    assert!(
        err.contains(&format!(
            "{file}: outbound.secret_file: {shown} is empty: delete it"
        )),
        "{err}"
    );
    std::fs::write(&key, "0123456789abcdef0123\n").unwrap();
    let err = env.fails(&["check-config"]);
    assert!(
        err.contains(&format!(
            "{shown} is 20 bytes, too short: a reply-token secret needs at least 32 bytes"
        )),
        "{err}"
    );
    std::fs::remove_file(&key).unwrap();
    std::fs::create_dir(&key).unwrap();
    let err = env.fails(&["check-config"]);
    assert!(
        err.contains(&format!(
            "outbound.secret_file: cannot read the reply-token secret {shown}: Is a directory"
        )),
        "{err}"
    );
}

#[test]
fn ingest_defers_the_mail_with_one_error_line_when_the_key_cannot_be_used() {
    let env = TestEnv::new();
    let mail = a_mail(&env, "mail.eml");
    let key = env.path("data/reply-token.key");
    std::fs::create_dir_all(env.path("data")).unwrap();
    let cases: [(&str, &dyn Fn(), &str); 2] = [
        ("empty", &|| std::fs::write(&key, "").unwrap(), "is empty"),
        (
            "not a file",
            &|| {
                std::fs::remove_file(&key).unwrap();
                std::fs::create_dir(&key).unwrap();
            },
            "cannot read the reply-token secret",
        ),
    ];
    for (case, make, reason) in cases {
        make();
        let out = env.run(&["ingest", mail.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(75), "{case}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{case}: one line: {err}");
        assert!(
            lines[0].contains(" ERROR ")
                && lines[0].contains(&key.display().to_string())
                && lines[0].contains(reason),
            "{case}: {err}"
        );
    }
    // Nothing was taken in.
    assert!(!env.path("data/deskmail.sqlite").exists());
}

#[test]
fn ingest_takes_a_maildir_or_a_folder_of_eml_files_and_refuses_any_other_folder() {
    let env = TestEnv::new();
    let write = |path: std::path::PathBuf, text: &str| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let stored = || -> usize {
        let list: Value = env.inbound(&[]);
        list.as_array().unwrap().len()
    };

    // A folder of other files is no folder of mail: refused, and nothing opened or taken in.
    let notes = env.path("notes");
    write(notes.join("todo.txt"), "buy milk\n");
    write(notes.join("letter.doc"), &mail_text("doc"));
    let out = env.run(&["ingest", notes.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{}: not a Maildir (no new/ or cur/) and none of its 2 file(s) ends in .eml",
            notes.display()
        )),
        "{err}"
    );
    assert!(!env.path("data/deskmail.sqlite").exists(), "{err}");

    // A folder of .eml files: those, in any case; other and hidden files are left alone.
    let inbox = env.path("inbox");
    write(inbox.join("1.eml"), &mail_text("one"));
    write(inbox.join("2.EML"), &mail_text("two"));
    write(inbox.join(".3.eml"), &mail_text("hidden"));
    write(inbox.join("readme.txt"), "not a mail\n");
    write(inbox.join("4.eml/x"), &mail_text("in a folder"));
    let out = env.run(&["ingest", inbox.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("1.eml: ") && err.contains("2.EML: "), "{err}");
    assert!(
        err.contains("1 file(s) not ending in .eml left alone"),
        "{err}"
    );
    assert!(
        !err.contains(".3.eml") && !err.contains("readme.txt:"),
        "{err}"
    );
    assert_eq!(stored(), 2);

    // A Maildir: every file of new/ and cur/, whatever its name; tmp/ is being written.
    let maildir = env.path("Maildir");
    write(maildir.join("new/1764000000.M1P1.host"), &mail_text("five"));
    write(
        maildir.join("cur/1764000001.M2P1.host:2,S"),
        &mail_text("six"),
    );
    write(maildir.join("tmp/1764000002.M3P1.host"), &mail_text("half"));
    env.ok(&["ingest", maildir.to_str().unwrap()]);
    assert_eq!(stored(), 4);

    // An empty folder holds no mail: nothing to do.
    std::fs::create_dir(env.path("empty")).unwrap();
    env.ok(&["ingest", env.path("empty").to_str().unwrap()]);
    assert_eq!(stored(), 4);
}

#[test]
fn a_syntax_error_on_the_store_url_line_does_not_show_its_password() {
    let env = TestEnv::new();
    std::fs::write(
        env.config(),
        support::read("deskmail.example.toml").replace(
            "url = \"sqlite://data/deskmail.sqlite\"",
            "url = \"postgres://deskmail:pw-user-1@db/deskmail?password=pw-query-2",
        ),
    )
    .unwrap();
    let err = env.fails(&["check-config"]);
    assert!(err.contains("TOML parse error"), "{err}");
    assert!(
        err.contains("url = \"postgres://deskmail:****@db/deskmail?password=****"),
        "{err}"
    );
    shows_no_secret("check-config", &err);
}

#[test]
fn a_reply_to_a_closed_itil_portal_ticket_opens_a_follow_up_with_its_fields() {
    let mut env = TestEnv::new();
    env.set("DESKMAIL__WORKFLOW__PRESET", "itil-portal");
    let fields = demo::field_args(&demo::MAILBOX_REQUEST);
    let mut create = vec![
        "ticket",
        "create",
        "--as",
        "anna@acme.example",
        "--subject",
        "Mailbox full",
        "--text",
        "Full.",
    ];
    create.extend(fields.iter().map(String::as_str));
    let r = env.ok(&create);
    let r = r.trim();
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "Resolve",
        "--comment",
        "Done.",
    ]);
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "anna@acme.example",
        "--action",
        "Close",
        "--comment",
        "Thanks.",
        "--field",
        "satisfaction=4",
    ]);
    let out = env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "anna@acme.example",
        "--action",
        "comment",
        "--comment",
        "Again?",
    ]);
    let list: Value = env.tickets(&[]);
    let new = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ref"].as_str().unwrap().to_string())
        .find(|t| t != r)
        .unwrap_or_else(|| panic!("no follow-up: {out}"));
    let shown = env.show(&new);
    assert_eq!(shown["linked_to"], r);
    assert_eq!(shown["comments"][0]["text"], "Again?");
    // The fields a new ticket takes come along; satisfaction (given when closing) does not.
    assert_eq!(shown["fields"]["service"], "Email");
    assert_eq!(shown["fields"]["urgency"], "high");
    assert!(shown["fields"].get("satisfaction").is_none(), "{shown}");
}

#[test]
fn a_failure_is_shown_with_its_causes() {
    // The reply-token secret is a directory: what could not be done, then why.
    let env = TestEnv::new();
    let key = env.path("data/reply-token.key");
    std::fs::create_dir_all(&key).unwrap();
    let err = env.fails(&["ticket", "list"]);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "deskmail: cannot read the reply-token secret {}",
                key.display()
            ),
            "  caused by: Is a directory (os error 21)".to_string(),
        ],
        "{err}"
    );

    // The store's directory cannot be created (a file is in its way): the store's words and
    // the file system's, each once.
    let mut env = TestEnv::new();
    let file = env.path("a-file");
    std::fs::write(&file, "").unwrap();
    let url = format!("sqlite://{}/sub/deskmail.sqlite", file.display());
    env.set("DESKMAIL__STORE__URL", &url);
    let err = env.fails(&["ticket", "list"]);
    let top = format!(
        "deskmail: cannot create the directory {}/sub",
        file.display()
    );
    let top_line = err.lines().find(|l| l.starts_with(&top));
    assert!(top_line.is_some(), "{err}");
    assert_eq!(
        err.matches("Not a directory (os error 20)").count(),
        1,
        "{err}"
    );
}

/// Shell completions and the manual page come from the command line's own definition: every
/// command is in them.
#[test]
fn completions_and_the_manual_page_name_every_command() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish"] {
        let script = env.ok(&["completions", shell]);
        for command in [
            "ticket", "ingest", "inbound", "outbox", "backup", "run", "sweep",
        ] {
            assert!(script.contains(command), "{shell}: {command} missing");
        }
    }
    let page = env.ok(&["man-page"]);
    assert!(page.contains(".TH deskmail 1"), "{page}");
    assert!(page.contains(".SH NAME"), "{page}");
    for command in ["check\\-config", "backup", "ingest", "completions"] {
        assert!(
            page.contains(command),
            "{command} missing from the manual page"
        );
    }
    assert!(env.fails(&["completions", "tcsh"]).contains("tcsh"));
    // Every page: the command's and each subcommand's, as the package installs them.
    let dir = env.path("man");
    std::fs::create_dir(&dir).unwrap();
    env.ok(&["man-page", "--dir", dir.to_str().unwrap()]);
    for page in [
        "deskmail.1",
        "deskmail-ticket-act.1",
        "deskmail-auth-login.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".SH NAME"), "{page}: {text}");
    }
}

#[tokio::test]
async fn a_store_upgraded_by_a_newer_deskmail_is_refused_not_used() {
    use sqlx::Connection;
    let env = TestEnv::new();
    env.create_fire_ticket();
    let db = env.path("data/deskmail.sqlite");
    assert!(db.exists());
    // A newer deskmail's migration, as sqlx records it.
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from the future', TRUE, x'00', 1)",
    )
    .execute(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    let refused = env.fails(&["ticket", "list"]);
    assert!(
        refused
            .contains("has migration 99990101000000, which this version of deskmail does not know"),
        "{refused}"
    );
    let checked = env.fails(&["check-config"]);
    assert!(
        checked.contains("a newer deskmail upgraded it"),
        "{checked}"
    );
}
