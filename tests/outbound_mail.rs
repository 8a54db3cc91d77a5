//! Notifications through a real Postfix into a real Dovecot, read back over IMAP
//! (tests/support/mailstack.rs starts both on 127.0.0.1).

mod support;

use deskmail::reply_token::TokenKey;
use serde_json::Value;
use support::TestEnv;
use support::mailstack::{MailStack, header, html_part, text_part};

/// A test environment whose notifications go to the stack's Postfix.
fn env_for(stack: &MailStack) -> TestEnv {
    let env = TestEnv::new();
    std::fs::write(
        env.config(),
        support::example_config("", &stack.smtp_config(4)),
    )
    .unwrap();
    env
}

fn key(env: &TestEnv) -> TokenKey {
    TokenKey::new(
        std::fs::read_to_string(env.path("data/reply-token.key"))
            .unwrap()
            .trim(),
    )
}

#[test]
fn the_seed_000_story_reaches_the_right_mailboxes_threaded_and_in_their_language() {
    let Some(stack) = MailStack::start(false) else {
        return;
    };
    let env = env_for(&stack);
    let r = env.create_fire_ticket();
    let r = r.as_str();
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "To IT Provider",
        "--comment",
        "Please check.",
    ]);
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "ops@itprov.example",
        "--action",
        "To Customer",
        "--comment",
        "Plugged in?",
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
        "Yes.",
    ]);
    // Ben (German) opens one too.
    let rb = env.ok(&[
        "ticket",
        "create",
        "--as",
        "ben@acme.example",
        "--subject",
        "Drucker",
        "--text",
        "Kaputt.",
    ]);
    let rb = rb.trim();
    env.ok(&["outbox", "send"]);
    assert!(
        env.outbox().iter().all(|m| m["status"] == "sent"),
        "{:?}",
        env.outbox()
    );

    // Who got what: anna (acknowledgement, to customer), the team (two new tickets, the comment),
    // IT Provider's group (to partner), Acme's customer group (to customer), ben (acknowledgement).
    let anna = stack.wait_for("anna@acme.example", 2);
    let team = stack.wait_for("team@helpdesk.example", 3);
    let itprov = stack.wait_for("support@itprov.example", 1);
    let acme_it = stack.wait_for("it@acme.example", 1);
    let ben = stack.wait_for("ben@acme.example", 1);
    assert_eq!(anna.len(), 2, "{}", stack.postfix_log());
    assert_eq!(team.len(), 3);
    assert_eq!(itprov.len(), 1);
    assert_eq!(acme_it.len(), 1);
    assert_eq!(ben.len(), 1);
    // Nothing else is on its way: agents and partner members were not mailed.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(stack.inbox("alice@helpdesk.example").is_empty());
    assert!(stack.inbox("ops@itprov.example").is_empty());

    let subject = format!("[{r}] Printer on fire");
    for m in anna.iter().chain(&itprov).chain(&acme_it) {
        assert_eq!(header(m, "Subject").as_deref(), Some(subject.as_str()));
        assert_eq!(
            header(m, "Auto-Submitted").as_deref(),
            Some("auto-generated")
        );
        let text = text_part(m);
        assert!(
            text.contains(&format!("Please keep [{r}] in the subject")),
            "footer with the ref:\n{text}"
        );
    }
    // With several connections, mails arrive in any order: tell them apart by content.
    let (ack, to_customer) = if text_part(&anna[0]).contains("Thank you for your request") {
        (&anna[0], &anna[1])
    } else {
        (&anna[1], &anna[0])
    };
    assert!(text_part(ack).contains("Thank you for your request"));
    assert!(
        text_part(to_customer).contains("has sent ticket"),
        "{}",
        text_part(to_customer)
    );
    assert!(
        text_part(&ben[0]).contains("Vielen Dank für Ihre Anfrage"),
        "{}",
        text_part(&ben[0])
    );
    assert!(text_part(&ben[0]).contains(rb));

    // Threading: the first mail of the ticket is the root; every later one references it first
    // and answers the recipient's previous one.
    let root = header(ack, "Message-ID").unwrap();
    assert!(header(ack, "References").is_none());
    let refs = header(to_customer, "References").unwrap();
    assert_eq!(
        refs.split_whitespace().next(),
        Some(root.as_str()),
        "{refs}"
    );
    assert_eq!(
        header(to_customer, "In-Reply-To").as_deref(),
        Some(root.as_str())
    );
    for m in itprov.iter().chain(&acme_it).chain(&team) {
        let refs = header(m, "References").unwrap_or_default();
        if header(m, "Subject").unwrap().contains(r) {
            assert_eq!(
                refs.split_whitespace().next(),
                Some(root.as_str()),
                "{refs}"
            );
        }
        assert!(header(m, "Thread-Index").is_some());
    }

    // The partner's mail offers exactly its actions, each a reply link with the command in the
    // subject; its reply address verifies for the partner's group and this ticket only.
    let text = text_part(&itprov[0]);
    assert!(text.contains("[To Customer]: mailto:"), "{text}");
    assert!(
        text.contains("subject=%5BTo%20Customer%5D%20Re%3A%20"),
        "{text}"
    );
    assert!(text.contains("[To 2nd Level Support Provider]"), "{text}");
    assert!(
        !text.contains("[To IT Provider]"),
        "a partner never sends to itself: {text}"
    );
    assert!(!text.contains("[Resolve]"), "agents only: {text}");
    let reply_to = header(&itprov[0], "Reply-To").unwrap();
    let address = reply_to.rsplit('<').next().unwrap().trim_end_matches('>');
    assert!(address.starts_with("support+r-"), "{address}");
    let k = key(&env);
    let (reference, who) = k.verify(address, &["support@itprov.example"]).unwrap();
    assert_eq!(reference, r.to_lowercase());
    assert_eq!(who, "support@itprov.example");
    assert!(
        k.verify(address, &["anna@acme.example", "it@acme.example"])
            .is_none()
    );
    // A reply to the plus-address reaches the help desk's INBOX.
    let html = html_part(&acme_it[0]);
    assert!(html.contains("href=\"mailto:support+r-"), "{html}");
}

#[test]
fn with_postfix_down_notifications_wait_and_then_arrive_exactly_once() {
    let Some(stack) = MailStack::start(false) else {
        return;
    };
    let env = env_for(&stack);
    stack.stop_postfix();
    let r = env.ok(&[
        "ticket",
        "create",
        "--as",
        "anna@acme.example",
        "--subject",
        "Mail down",
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
        "To IT Provider",
        "--comment",
        "c",
    ]);
    env.ok(&["outbox", "send"]);
    let rows = env.outbox();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert_eq!(row["status"], "queued", "{row}");
        assert!(
            row["last_error"]
                .as_str()
                .unwrap()
                .contains("onnection refused"),
            "{row}"
        );
    }
    // Not due yet: a second run does not hammer the server.
    env.ok(&["outbox", "send"]);
    assert!(env.outbox().iter().all(|m| m["attempts"] == 1));
    stack.start_postfix();
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_mins(5)).to_string();
    env.ok(&["outbox", "send", "--now", &later]);
    env.ok(&["outbox", "send", "--now", &later]);
    assert!(env.outbox().iter().all(|m| m["status"] == "sent"));
    assert_eq!(stack.wait_for("anna@acme.example", 1).len(), 1);
    assert_eq!(stack.wait_for("team@helpdesk.example", 1).len(), 1);
    assert_eq!(stack.wait_for("support@itprov.example", 1).len(), 1);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(stack.inbox("anna@acme.example").len(), 1, "delivered twice");
    assert_eq!(
        stack.inbox("support@itprov.example").len(),
        1,
        "delivered twice"
    );
}

#[test]
fn a_permanent_rejection_is_recorded_reported_and_the_address_skipped() {
    let Some(stack) = MailStack::start(false) else {
        return;
    };
    let env = env_for(&stack);
    // hcms@oshcms.example has no mailbox in the stack: Postfix answers 550 at RCPT.
    let r = env.ok(&[
        "ticket",
        "create",
        "--as",
        "anna@acme.example",
        "--subject",
        "CMS",
        "--text",
        "t",
    ]);
    let r = r.trim();
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "Involve OS/HCMS Support",
    ]);
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "To OS/HCMS Support",
        "--comment",
        "c",
    ]);
    env.ok(&["outbox", "send"]);
    let failed: Vec<Value> = env
        .outbox()
        .into_iter()
        .filter(|m| m["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", env.outbox());
    assert_eq!(failed[0]["recipient"], "hcms@oshcms.example");
    assert!(
        failed[0]["last_error"].as_str().unwrap().contains("550"),
        "{}",
        failed[0]
    );
    let listed = env.ok(&["outbox", "list", "--status", "failed"]);
    assert!(listed.contains("hcms@oshcms.example"), "{listed}");
    // The support team is told.
    let team = stack.wait_for("team@helpdesk.example", 2);
    assert!(
        team.iter()
            .any(|m| text_part(m).contains("could not be delivered to hcms@oshcms.example"))
    );
    // The next notification to that address is skipped and the skip is in the history.
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "anna@acme.example",
        "--action",
        "comment",
        "--comment",
        "and?",
    ]);
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "To OS/HCMS Support",
        "--comment",
        "again",
    ]);
    let v = env.show(r);
    assert!(
        v["history"].as_array().unwrap().iter().any(|h| h["detail"]
            .as_str()
            .unwrap()
            .contains("not mailed to hcms@oshcms.example: the address fails")),
        "{v}"
    );
    // retry puts it back in the queue.
    let id = failed[0]["id"].as_i64().unwrap().to_string();
    env.ok(&["outbox", "retry", &id]);
    assert!(
        env.outbox()
            .iter()
            .any(|m| m["id"].as_i64() == failed[0]["id"].as_i64() && m["status"] == "queued")
    );
    let err = env.fails(&["outbox", "retry", "999999"]);
    assert!(
        err.contains("no failed notification with id 999999"),
        "{err}"
    );
}

/// The failed rows of the outbox, each checked to have failed for its size.
fn failed_as_too_large(env: &TestEnv) -> Vec<Value> {
    let failed: Vec<Value> = env
        .outbox()
        .into_iter()
        .filter(|m| m["status"] == "failed")
        .collect();
    assert!(!failed.is_empty(), "{:?}", env.outbox());
    for row in &failed {
        let error = row["last_error"].as_str().unwrap();
        assert!(error.starts_with("too large for the mail server"), "{row}");
    }
    failed
}

#[test]
fn a_notification_larger_than_the_server_takes_fails_for_its_size_and_no_address_is_blamed() {
    let Some(stack) = MailStack::start(false) else {
        return;
    };
    // Postfix takes at most 200 kB and says so in its EHLO answer (SIZE).
    stack.reconfigure_postfix(&["message_size_limit=200000"]);
    let env = env_for(&stack);
    // 300 kB that do not compress: the notifications carrying it are about 400 kB.
    std::fs::write(env.path("photo.jpg"), support::hostile::noise(300_000)).unwrap();
    let photo_path = env.path("photo.jpg");
    let r = env.ok(&[
        "ticket",
        "create",
        "--as",
        "anna@acme.example",
        "--subject",
        "Broken screen",
        "--text",
        "See the photo.",
        "--attach",
        photo_path.to_str().unwrap(),
    ]);
    let r = r.trim();
    env.ok(&["outbox", "send"]);
    // Refused before the transfer, on the server's word.
    let failed = failed_as_too_large(&env);
    for row in &failed {
        let error = row["last_error"].as_str().unwrap();
        assert!(
            error.contains("the server takes at most 195.3 KiB (SIZE)"),
            "{row}"
        );
    }
    // The team hears of it in a short notice that the server takes.
    let team = stack.wait_for("team@helpdesk.example", 1);
    assert!(
        team.iter()
            .any(|m| text_part(m).contains("could not be delivered to")
                && text_part(m).contains("too large for the mail server")),
        "{team:?}"
    );
    // The message was too large, not the address: the next mail to the same people arrives.
    let blamed: Vec<&str> = failed
        .iter()
        .map(|m| m["recipient"].as_str().unwrap())
        .collect();
    env.ok(&[
        "ticket",
        "act",
        r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "To Customer",
        "--comment",
        "Which model is it?",
    ]);
    env.ok(&["outbox", "send"]);
    let v = env.show(r);
    assert!(
        !v["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["detail"].as_str().unwrap().contains("the address fails")),
        "{v}"
    );
    assert!(blamed.contains(&"anna@acme.example"), "{blamed:?}");
    let anna = stack.wait_for("anna@acme.example", 1);
    assert!(
        anna.iter()
            .any(|m| text_part(m).contains("Which model is it?")),
        "{anna:?}"
    );

    // A server that does not announce its limit refuses the data (552 5.3.4): the same outcome.
    stack.reconfigure_postfix(&["smtpd_discard_ehlo_keywords=size"]);
    let id = failed[0]["id"].as_i64().unwrap().to_string();
    env.ok(&["outbox", "retry", &id]);
    env.ok(&["outbox", "send"]);
    let again = failed_as_too_large(&env);
    let retried = again
        .iter()
        .find(|m| m["id"] == failed[0]["id"])
        .expect("the retried notification failed again");
    assert!(
        retried["last_error"].as_str().unwrap().contains("5.3.4"),
        "{retried}"
    );
}

/// Creates one ticket through a config with this `[outbound.smtp]` section and runs the sender;
/// the outbox rows afterwards.
fn create_and_send(smtp: &str) -> Vec<Value> {
    let env = TestEnv::new();
    std::fs::write(env.config(), support::example_config("", smtp)).unwrap();
    env.ok(&[
        "ticket",
        "create",
        "--as",
        "anna@acme.example",
        "--subject",
        "TLS",
        "--text",
        "t",
    ]);
    env.ok(&["outbox", "send"]);
    env.outbox()
}

#[test]
fn starttls_and_implicit_tls_to_a_certificate_trusted_through_the_config() {
    let Some(stack) = MailStack::start(true) else {
        return;
    };
    let without_ca = |smtp: String| {
        smtp.replace(
            &format!("ca_file = \"{}\"\n", stack.ca_file().display()),
            "",
        )
    };
    for (n, (mode, smtp)) in [
        ("STARTTLS", stack.smtp_config(1)),
        ("implicit TLS", stack.smtps_config(1)),
    ]
    .into_iter()
    .enumerate()
    {
        let rows = create_and_send(&smtp);
        assert!(
            rows.iter().all(|m| m["status"] == "sent"),
            "{mode}: {rows:?}"
        );
        let anna = stack.wait_for("anna@acme.example", n + 1);
        assert_eq!(anna.len(), n + 1, "{mode}");

        // Without the certificate in the config, verification refuses the server: nothing is
        // sent, and the reason says why.
        let rows = create_and_send(&without_ca(smtp));
        assert!(
            rows.iter().all(|m| m["status"] == "queued"),
            "{mode}: {rows:?}"
        );
        let error = rows[0]["last_error"].as_str().unwrap().to_lowercase();
        assert!(error.contains("certificate"), "{mode}: {error}");
    }
    // Postfix logged a TLS session for each delivery (a plain connection to the wrapper port
    // could not have delivered anything).
    let log = stack.postfix_log();
    assert!(
        log.matches("TLS connection established").count() >= 2,
        "{log}"
    );
}

#[test]
fn user_text_arrives_as_text_never_as_header_or_markup() {
    let Some(stack) = MailStack::start(false) else {
        return;
    };
    let env = env_for(&stack);
    let r = env.ok(&[
        "ticket",
        "create",
        "--as",
        "anna@acme.example",
        "--subject",
        "Help\r\nBcc: victim@evil.example\r\nX-Injected: yes",
        "--text",
        "<script>alert('x')</script> & <b>bold</b>",
    ]);
    env.ok(&["outbox", "send"]);
    let anna = stack.wait_for("anna@acme.example", 1);
    let team = stack.wait_for("team@helpdesk.example", 1);
    assert_eq!(anna.len(), 1);
    for m in anna.iter().chain(&team) {
        assert!(header(m, "X-Injected").is_none(), "{m}");
        assert!(header(m, "Bcc").is_none(), "{m}");
        let subject = header(m, "Subject").unwrap();
        assert_eq!(
            subject,
            format!(
                "[{}] Help Bcc: victim@evil.example X-Injected: yes",
                r.trim()
            )
        );
    }
    assert!(
        !stack.postfix_log().contains("victim@evil.example"),
        "mail went to the injected Bcc"
    );
    let html = html_part(&team[0]);
    assert!(
        html.contains(
            "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"
        ),
        "{html}"
    );
    assert!(!html.contains("<script>"));
    assert!(text_part(&team[0]).contains("<script>alert('x')</script> & <b>bold</b>"));
}

#[tokio::test]
async fn two_senders_on_one_postgresql_deliver_each_mail_once() {
    let Some(stack) = MailStack::start(false) else {
        return;
    };
    let Some(db) = support::pg::PgDb::create().await else {
        return;
    };
    let mut env = env_for(&stack);
    env.set("DESKMAIL__STORE__URL", &db.url);
    // Anna opens 60 tickets within the hour; the loop breaker would stop her acknowledgements.
    env.set("DESKMAIL__OUTBOUND__LOOP_LIMIT_PER_HOUR", "1000");
    env.ok(&["migrate"]);
    let tickets = 60;
    for i in 0..tickets {
        env.ok(&[
            "ticket",
            "create",
            "--as",
            "anna@acme.example",
            "--subject",
            &format!("Ticket {i}"),
            "--text",
            "t",
        ]);
    }
    let env = std::sync::Arc::new(env);
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let env = std::sync::Arc::clone(&env);
            std::thread::spawn(move || env.run(&["outbox", "send"]))
        })
        .collect();
    let mut reports = Vec::new();
    for s in senders {
        let out = s.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        reports.push(String::from_utf8_lossy(&out.stderr).to_string());
    }
    let rows = env.outbox();
    assert_eq!(rows.len(), 2 * tickets);
    assert!(rows.iter().all(|m| m["status"] == "sent"), "{rows:?}");
    let anna = stack.wait_for("anna@acme.example", tickets);
    let team = stack.wait_for("team@helpdesk.example", tickets);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let anna_now = stack.inbox("anna@acme.example");
    assert_eq!(anna.len(), tickets, "{reports:?}");
    assert_eq!(
        anna_now.len(),
        tickets,
        "a mail was delivered twice: {reports:?}"
    );
    assert_eq!(team.len(), tickets);
    let ids: std::collections::BTreeSet<String> = anna_now
        .iter()
        .map(|m| header(m, "Message-ID").unwrap())
        .collect();
    assert_eq!(ids.len(), tickets);
}
