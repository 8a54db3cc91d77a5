//! Who gets which notification, read from the file spool (the embedded default): internal
//! comments, the author, attachments, the loop breaker.

mod support;

use support::TestEnv;
use support::mailstack::{header, html_part, text_part};

fn env_with(outbound: &str) -> TestEnv {
    let env = TestEnv::new();
    std::fs::write(env.config(), support::example_config(outbound, "")).unwrap();
    env
}

/// Sends what is queued into the spool and returns every spooled mail as (recipient, raw).
fn spooled(env: &TestEnv) -> Vec<(String, String)> {
    env.ok(&["outbox", "send"]);
    let dir = env.path("data/spool");
    let out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                .map(|raw| (header(&raw, "To").unwrap(), raw))
                .collect()
        })
        .unwrap_or_default();
    out
}

fn to<'a>(mails: &'a [(String, String)], who: &str) -> Vec<&'a String> {
    mails
        .iter()
        .filter(|(t, _)| t.contains(who))
        .map(|(_, raw)| raw)
        .collect()
}

#[test]
fn internal_notes_only_ever_reach_agents() {
    let mut env = env_with("");
    env.set("DESKMAIL__WORKFLOW__PRESET", "triage");
    let r = env.ok(&[
        "ticket",
        "create",
        "--as",
        "anna@acme.example",
        "--subject",
        "Crash",
        "--text",
        "It crashes.",
    ]);
    let r = r.trim();
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "Start",
    ]);
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "To Customer",
        "--comment",
        "Between us: the build is broken.",
        "--internal",
    ]);
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "anna@acme.example",
        "--action",
        "comment",
        "--comment",
        "Any news?",
    ]);
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "Escalate to dev",
        "--comment",
        "Stack trace attached in the tracker.",
    ]);
    let mails = spooled(&env);
    let anna = to(&mails, "anna@acme.example");
    assert_eq!(anna.len(), 2, "acknowledgement and to-customer");
    for m in &anna {
        // Both parts decoded: they are quoted-printable in the raw mail.
        for part in [text_part(m), html_part(m)] {
            assert!(
                !part.contains("Between us"),
                "an internal note reached the customer:\n{part}"
            );
            assert!(!part.contains("Stack trace"));
        }
    }
    assert!(
        anna.iter()
            .any(|m| text_part(m).contains("has sent ticket"))
    );
    // The escalation's note is internal by the workflow, and reaches the development group.
    let dev = to(&mails, "dev@helpdesk.example");
    assert_eq!(dev.len(), 1);
    assert!(text_part(dev[0]).contains("Stack trace attached in the tracker."));
    // The customer's view of the ticket has no internal notes either.
    let v: serde_json::Value = serde_json::from_str(&env.ok(&[
        "ticket",
        "show",
        r,
        "--as",
        "anna@acme.example",
        "--json",
    ]))
    .unwrap();
    let texts: Vec<&str> = v["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["It crashes.", "Any news?"]);
}

#[test]
fn the_author_is_not_mailed_unless_configured_but_always_acknowledged() {
    // Anna sends her own ticket "To Customer": the audience is Acme's group and the requester,
    // anna herself. By default she is left out; her acknowledgement still reached her.
    let env = env_with("");
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
        "anna@acme.example",
        "--action",
        "To Customer",
        "--comment",
        "for our IT",
    ]);
    let mails = spooled(&env);
    let anna = to(&mails, "anna@acme.example");
    assert_eq!(anna.len(), 1, "only the acknowledgement");
    assert!(text_part(anna[0]).contains("Thank you for your request"));
    assert_eq!(to(&mails, "it@acme.example").len(), 1);

    let env = env_with("mail_author = true\n");
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
        "anna@acme.example",
        "--action",
        "To Customer",
        "--comment",
        "for our IT",
    ]);
    let mails = spooled(&env);
    let anna = to(&mails, "anna@acme.example");
    assert_eq!(anna.len(), 2, "with mail_author the author gets her copy");
    assert!(
        anna.iter()
            .any(|m| text_part(m).contains("has sent ticket"))
    );
}

#[test]
fn an_organisations_support_group_gets_mail_in_the_organisations_language() {
    let env = TestEnv::new();
    let config = support::example_config("", "").replacen(
        "name = \"Acme\"\n",
        "name = \"Acme\"\nlocale = \"de\"\ntime_zone = \"Europe/Vienna\"\n",
        1,
    );
    std::fs::write(env.config(), config).unwrap();
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
        "To Customer",
        "--comment",
        "Bitte prüfen.",
    ]);
    let mails = spooled(&env);
    let group = to(&mails, "it@acme.example");
    assert_eq!(group.len(), 1);
    let text = text_part(group[0]);
    assert!(text.contains("an Sie übergeben"), "{text}");
    // Anna herself still reads English.
    let anna = to(&mails, "anna@acme.example");
    assert!(anna.iter().all(|m| !text_part(m).contains("übergeben")));
}

#[test]
fn attachments_go_along_up_to_the_limit_and_larger_ones_are_named() {
    let env = env_with("max_attachment_bytes = 1000\n");
    std::fs::write(env.path("small.txt"), "x".repeat(100)).unwrap();
    std::fs::write(env.path("big.bin"), vec![7u8; 5000]).unwrap();
    let small = env.path("small.txt").display().to_string();
    let big = env.path("big.bin").display().to_string();
    env.ok(&[
        "ticket",
        "create",
        "--as",
        "anna@acme.example",
        "--subject",
        "Logs",
        "--text",
        "See the files.",
        "--attach",
        &small,
        "--attach",
        &big,
    ]);
    let mails = spooled(&env);
    let team = to(&mails, "team@helpdesk.example");
    assert_eq!(team.len(), 1);
    let m = team[0];
    assert!(m.contains("multipart/mixed"), "{m}");
    assert!(m.contains("filename=\"small.txt\""), "{m}");
    assert!(
        !m.contains("filename=\"big.bin\""),
        "the large file was attached"
    );
    let text = text_part(m);
    assert!(text.contains("small.txt (100 B)"), "{text}");
    assert!(
        text.contains("big.bin (4.9 KiB), too large to send by mail"),
        "{text}"
    );
}

#[test]
fn the_loop_breaker_holds_back_outside_addresses_never_the_team() {
    let env = env_with("loop_limit_per_thread = 3\n");
    let r = env.ok(&[
        "ticket",
        "create",
        "--as",
        "anna@acme.example",
        "--subject",
        "Auto",
        "--text",
        "T",
    ]);
    let r = r.trim();
    // Six rounds: the customer comments (the support team is mailed), the agent sends the
    // ticket back to her (she is mailed).
    for i in 0..6 {
        let reply = format!("reply {i}");
        let answer = format!("answer {i}");
        let customer = ["--as", "anna@acme.example", "--action", "comment"];
        let agent = ["--as", "alice@helpdesk.example", "--action", "To Customer"];
        env.ok(&[&["ticket", "act", r][..], &customer, &["--comment", &reply]].concat());
        env.ok(&[&["ticket", "act", r][..], &agent, &["--comment", &answer]].concat());
    }
    let mails = spooled(&env);
    // The team hears of every one of them, however many.
    assert_eq!(
        to(&mails, "team@helpdesk.example").len(),
        7,
        "created + 6 comments"
    );
    assert_eq!(env.history_lines(r, "not mailed to team@"), 0);
    // The customer, an outside address, gets at most 3 per ticket and hour (the
    // acknowledgement counts).
    assert_eq!(
        to(&mails, "anna@acme.example").len(),
        3,
        "at most 3 per outside address and ticket per hour"
    );
    assert_eq!(
        env.history_lines(r, "not mailed to anna@acme.example: loop limit"),
        4
    );
    // Another ticket still gets through.
    env.ok(&[
        "ticket",
        "create",
        "--as",
        "anna@acme.example",
        "--subject",
        "Other",
        "--text",
        "T",
    ]);
    assert_eq!(to(&spooled(&env), "anna@acme.example").len(), 4);
}

#[test]
fn a_resolved_mail_asks_for_confirmation_and_a_satisfaction_level_where_the_preset_wants_one() {
    let mut env = env_with("");
    env.set("DESKMAIL__WORKFLOW__PRESET", "itil-portal");
    let r = env.ok(&[
        "ticket",
        "create",
        "--as",
        "anna@acme.example",
        "--subject",
        "Mailbox full",
        "--text",
        "t",
        "--field",
        "service=Email",
        "--field",
        "sub_category=Mailbox",
        "--field",
        "impact=low",
        "--field",
        "urgency=low",
    ]);
    env.ok(&[
        "ticket",
        "act",
        r.trim(),
        "--as",
        "alice@helpdesk.example",
        "--action",
        "Resolve",
        "--comment",
        "Quota raised.",
    ]);
    let mails = spooled(&env);
    let resolved: Vec<String> = to(&mails, "anna@acme.example")
        .into_iter()
        .map(|m| text_part(m))
        .filter(|t| t.contains("has resolved"))
        .collect();
    assert_eq!(resolved.len(), 1);
    let text = &resolved[0];
    assert!(
        text.contains("reply with [Close] in the subject and a line \"Satisfaction: 1\""),
        "{text}"
    );
    assert!(text.contains("reply with [Reopen]"), "{text}");
    assert!(text.contains("[Close] (write a note): mailto:"), "{text}");

    // partner-routing: no satisfaction level; reopening is the customer's action.
    let env = env_with("");
    let r = env.ok(&[
        "ticket",
        "create",
        "--as",
        "anna@acme.example",
        "--subject",
        "S",
        "--text",
        "t",
    ]);
    env.ok(&[
        "ticket",
        "act",
        r.trim(),
        "--as",
        "alice@helpdesk.example",
        "--action",
        "Resolve",
        "--comment",
        "Done.",
    ]);
    let mails = spooled(&env);
    let text = to(&mails, "anna@acme.example")
        .into_iter()
        .map(|m| text_part(m))
        .find(|t| t.contains("has resolved"))
        .unwrap();
    assert!(!text.contains("Satisfaction"), "{text}");
    assert!(text.contains("reply with [Reopen]"), "{text}");
}
