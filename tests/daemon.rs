//! `deskmail run` as a child process: mail delivered by a real Postfix into a watched Maildir,
//! notifications out through the same Postfix, read back over IMAP; signals; the endpoint.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::TestEnv;
use support::daemon::{Daemon, wait_until};
use support::mailstack::MailStack;

/// The example config with the support mailbox read from `maildir` and `tables` appended.
fn config_with_maildir(maildir: &std::path::Path, tables: &str) -> String {
    let table = format!("[mailboxes.maildir]\npath = \"{}\"\n", maildir.display());
    support::example_config_with_mailboxes(&table, "", tables)
}

/// The example config with the support and billing mailboxes read over IMAP from the stack
/// (billing with `billing_password`), notifications through its Postfix.
fn config_with_imap(stack: &MailStack, env: &TestEnv, billing_password: &str) -> String {
    let good = env.path("support.pass");
    let bad = env.path("billing.pass");
    std::fs::write(&good, "secret\n").unwrap();
    std::fs::write(&bad, format!("{billing_password}\n")).unwrap();
    support::example_config_with_mailboxes(
        &stack.imap_config("support@helpdesk.example", &good),
        &stack.imap_config("billing@helpdesk.example", &bad),
        &stack.smtp_config(2),
    )
}

fn tickets(env: &TestEnv) -> Vec<Value> {
    let list: Value = env.tickets(&[]);
    list.as_array().unwrap().clone()
}

fn files_in(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

fn request(from: &str, subject: &str, id: &str, text: &str) -> String {
    format!(
        "From: {from}\r\nTo: support@helpdesk.example\r\nSubject: {subject}\r\n\
         Message-ID: <{id}>\r\nDate: Sun, 06 Dec 2026 09:00:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    )
}

#[test]
fn mail_delivered_into_a_watched_maildir_is_applied_moved_and_answered() {
    let Some(stack) = MailStack::start(false) else {
        return;
    };
    // A request waits in the mailbox before the daemon starts.
    stack.send(
        "anna@acme.example",
        "support@helpdesk.example",
        &request(
            "Anna <anna@acme.example>",
            "Printer on fire",
            "req-1@acme.example",
            "Smoke everywhere.",
        ),
    );
    let maildir = stack.maildir("support@helpdesk.example");
    wait_until("Dovecot's delivery", Duration::from_secs(30), || {
        files_in(&maildir.join("new")) == 1
    });
    let env = TestEnv::new();
    std::fs::write(
        env.config(),
        config_with_maildir(&maildir, &stack.smtp_config(2)),
    )
    .unwrap();
    let daemon = Daemon::start(&env);

    // Taken in, moved out of the way, and the customer's acknowledgement sent without anyone
    // running `outbox send`.
    let processed = maildir.join(".deskmail.processed/cur");
    wait_until("the request processed", Duration::from_secs(30), || {
        files_in(&processed) == 1
    });
    let list = tickets(&env);
    assert_eq!(list.len(), 1, "{}", daemon.log());
    assert_eq!(list[0]["subject"], "Printer on fire");
    let reference = list[0]["ref"].as_str().unwrap().to_string();
    let anna = stack.wait_for("anna@acme.example", 1);
    assert_eq!(anna.len(), 1, "{}\n{}", daemon.log(), stack.postfix_log());
    assert!(anna[0].contains(&reference));

    // A reply while the daemon runs: seen at once (inotify), the support team is told.
    stack.send(
        "anna@acme.example",
        "support@helpdesk.example",
        &request(
            "Anna <anna@acme.example>",
            &format!("Re: [{reference}] Printer on fire"),
            "reply-1@acme.example",
            "It is out now.",
        ),
    );
    wait_until("the reply processed", Duration::from_secs(30), || {
        files_in(&processed) == 2
    });
    let shown = env.show(&reference);
    let comments = shown["comments"].as_array().unwrap();
    assert!(
        comments
            .iter()
            .any(|c| c["text"].as_str().unwrap().contains("It is out now.")),
        "{shown}"
    );
    stack.wait_for("team@helpdesk.example", 2);
    assert_eq!(files_in(&maildir.join("new")), 0);
    assert_eq!(files_in(&maildir.join("cur")), 0);

    // What the endpoint says.
    assert_eq!(
        daemon.metric("deskmail_mails_total{mailbox=\"support\",outcome=\"applied\"}"),
        2.0
    );
    assert!(daemon.metric("deskmail_notifications_total{outcome=\"sent\"}") >= 3.0);
    assert_eq!(
        daemon.metric("deskmail_mailbox_connected{mailbox=\"support\"}"),
        1.0
    );
    let (status, body) = daemon.get("/readyz");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("support: connected"), "{body}");
    assert_eq!(daemon.get("/healthz").0, 200);
    assert_eq!(daemon.get("/nothing").0, 404);

    let (status, took, log) = daemon.stop();
    assert!(status.success(), "{status}\n{log}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn a_reload_with_a_broken_workflow_keeps_the_running_one() {
    let env = TestEnv::new();
    let maildir = env.path("Maildir");
    let workflow = env.path("workflow.toml");
    std::fs::copy(
        support::root().join("fixtures/workflows/escalation.toml"),
        &workflow,
    )
    .unwrap();
    let config = config_with_maildir(&maildir, "").replacen(
        "preset = \"partner-routing\"",
        &format!("file = \"{}\"", workflow.display()),
        1,
    );
    std::fs::write(env.config(), config).unwrap();
    let daemon = Daemon::start(&env);

    std::fs::write(
        &workflow,
        "[[states]]\nname = \"Open\"\nkind = \"nonsense\"\n",
    )
    .unwrap();
    daemon.signal("HUP");
    wait_until(
        "the reload's failure logged",
        Duration::from_secs(10),
        || daemon.log().contains("reload failed"),
    );
    // Still running, on the workflow it had: a mail is taken in by it.
    std::fs::write(
        maildir.join("new/1.eml"),
        request(
            "Anna <anna@acme.example>",
            "Printer on fire",
            "req-2@acme.example",
            "Smoke.",
        ),
    )
    .unwrap();
    wait_until("the mail processed", Duration::from_secs(30), || {
        files_in(&maildir.join(".deskmail.processed/cur")) == 1
    });
    // The command line reads the file as it is: mended first.
    std::fs::copy(
        support::root().join("fixtures/workflows/escalation.toml"),
        &workflow,
    )
    .unwrap();
    let list = tickets(&env);
    assert_eq!(list.len(), 1, "{}", daemon.log());
    let shown = env.show(list[0]["ref"].as_str().unwrap());
    assert_eq!(shown["workflow"], "escalation", "{shown}");
    assert_eq!(shown["status"], "Open", "{shown}");

    // A good file is taken, and the daemon goes on (and stops) after it.
    daemon.signal("HUP");
    daemon.wait_until("the reload", Duration::from_secs(10), || {
        daemon.log().contains("reloaded:")
    });
    assert_eq!(daemon.get("/healthz").0, 200);

    let (status, took, log) = daemon.stop();
    assert!(status.success(), "{status}\n{log}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn an_imap_mailbox_is_read_by_uid_moved_out_and_a_bad_password_elsewhere_holds_nothing_up() {
    let Some(stack) = MailStack::start(false) else {
        return;
    };
    let support = "support@helpdesk.example";
    // Mail that was there before deskmail first looked is left alone (start = "new").
    stack.append(
        support,
        "INBOX",
        "",
        &request(
            "Old <old@acme.example>",
            "Old news",
            "old-1@acme.example",
            "Old.",
        ),
    );
    let env = TestEnv::new();
    std::fs::write(env.config(), config_with_imap(&stack, &env, "wrong")).unwrap();
    let daemon = Daemon::start(&env);
    daemon.wait_until("support connected", Duration::from_secs(30), || {
        daemon.get("/readyz").1.contains("support: connected")
    });

    // A request over SMTP, and a reply a person already read (\Seen) in another client.
    stack.send(
        "anna@acme.example",
        support,
        &request(
            "Anna <anna@acme.example>",
            "Printer on fire",
            "req-3@acme.example",
            "Smoke.",
        ),
    );
    let stack = &stack;
    let processed = |n: usize| move || stack.folder(support, "deskmail/processed").len() == n;
    daemon.wait_until(
        "the request processed",
        Duration::from_secs(30),
        processed(1),
    );
    let list = tickets(&env);
    assert_eq!(list.len(), 1, "{}", daemon.log());
    let reference = list[0]["ref"].as_str().unwrap().to_string();
    stack.append(
        support,
        "INBOX",
        "\\Seen",
        &request(
            "Anna <anna@acme.example>",
            &format!("Re: [{reference}] Printer on fire"),
            "reply-3@acme.example",
            "Read already, still a reply.",
        ),
    );
    daemon.wait_until(
        "the read reply processed",
        Duration::from_secs(30),
        processed(2),
    );
    assert!(
        env.show(&reference)["comments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["text"].as_str().unwrap().contains("still a reply")),
        "{}",
        daemon.log()
    );

    // A poison mail goes to the failed folder; the next mail is taken all the same.
    stack.append(support, "INBOX", "", "this is not a mail at all\r\n");
    stack.send(
        "ben@acme.example",
        support,
        &request(
            "Ben <ben@acme.example>",
            "Drucker",
            "req-4@acme.example",
            "Kaputt.",
        ),
    );
    daemon.wait_until("the poison mail set aside", Duration::from_secs(30), || {
        stack.folder(support, "deskmail/failed").len() == 1
    });
    daemon.wait_until(
        "the next request processed",
        Duration::from_secs(30),
        processed(3),
    );
    assert_eq!(tickets(&env).len(), 2);
    // Only the old mail is left where it was.
    let inbox = stack.inbox(support);
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert!(inbox[0].contains("Old news"));
    // The customers were answered.
    assert_eq!(stack.wait_for("anna@acme.example", 1).len(), 1);
    assert_eq!(stack.wait_for("ben@acme.example", 1).len(), 1);

    // Billing's password is wrong: it is failing, support is not, and /readyz says which.
    daemon.wait_until("billing failing", Duration::from_secs(30), || {
        daemon.get("/readyz").1.contains("billing: failing")
    });
    let (status, body) = daemon.get("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("support: connected"), "{body}");
    assert!(body.contains("refused the login"), "{body}");
    assert_eq!(
        daemon.metric("deskmail_mailbox_connected{mailbox=\"billing\"}"),
        0.0
    );
    assert_eq!(
        daemon.metric("deskmail_mailbox_idle{mailbox=\"support\"}"),
        1.0
    );

    let (status, took, log) = daemon.stop();
    assert!(status.success(), "{status}\n{log}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn a_restarted_imap_server_and_a_stopped_smtp_server_lose_nothing_and_send_once() {
    let Some(stack) = MailStack::start(false) else {
        return;
    };
    let support = "support@helpdesk.example";
    let env = TestEnv::new();
    std::fs::write(env.config(), config_with_imap(&stack, &env, "secret")).unwrap();
    let daemon = Daemon::start(&env);
    daemon.wait_until("support connected", Duration::from_secs(30), || {
        daemon.get("/readyz").1.contains("support: connected")
    });

    // Dovecot restarts while deskmail idles; a mail arrives before it is back in IDLE.
    stack.restart_dovecot();
    stack.send(
        "anna@acme.example",
        support,
        &request(
            "Anna <anna@acme.example>",
            "While away",
            "away-1@acme.example",
            "Hello?",
        ),
    );
    daemon.wait_until(
        "the mail taken after reconnecting",
        Duration::from_secs(60),
        || stack.count(support, "deskmail/processed") == 1,
    );
    let dovecot = std::fs::read_to_string(stack.dir.join("log/dovecot.log")).unwrap_or_default();
    let tail: Vec<&str> = dovecot.lines().rev().take(40).collect();
    assert!(
        daemon.log().contains("connecting again"),
        "{}\n{}",
        daemon.log(),
        tail.join("\n")
    );
    assert_eq!(stack.wait_for("anna@acme.example", 1).len(), 1);

    // Postfix stops: the acknowledgement waits in the outbox, then arrives once.
    stack.stop_postfix();
    stack.append(
        support,
        "INBOX",
        "",
        &format!(
            "Return-Path: <anna@acme.example>\r\n{}",
            request(
                "Anna <anna@acme.example>",
                "While down",
                "down-1@acme.example",
                "Hi."
            )
        ),
    );
    daemon.wait_until("the second mail taken", Duration::from_secs(30), || {
        stack.count(support, "deskmail/processed") == 2
    });
    daemon.wait_until("the delivery deferred", Duration::from_secs(30), || {
        daemon.metric("deskmail_notifications_total{outcome=\"retrying\"}") >= 1.0
    });
    assert!(daemon.metric("deskmail_outbox_depth") >= 1.0);
    stack.start_postfix();
    // The retry comes after the backoff (30 s), picked up by the outbox's timer.
    let anna = stack.wait_for("anna@acme.example", 2);
    assert_eq!(anna.len(), 2);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(stack.inbox("anna@acme.example").len(), 2, "sent once");
    let (status, _, log) = daemon.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn the_log_can_be_json_lines_naming_each_mails_mailbox_and_ticket() {
    let mut env = TestEnv::new();
    let maildir = env.path("Maildir");
    std::fs::write(env.config(), config_with_maildir(&maildir, "")).unwrap();
    env.set("DESKMAIL__LOG__FORMAT", "json");
    let daemon = Daemon::start(&env);
    std::fs::write(
        maildir.join("new/1.eml"),
        request(
            "Anna <anna@acme.example>",
            "Printer on fire",
            "req-json@acme.example",
            "Smoke.",
        ),
    )
    .unwrap();
    daemon.wait_until("the mail processed", Duration::from_secs(30), || {
        files_in(&maildir.join(".deskmail.processed/cur")) == 1
    });
    let (status, _, log) = daemon.stop();
    assert!(status.success(), "{log}");
    let lines: Vec<Value> = log
        .lines()
        // The one line written before logging starts: the reply-token secret was created.
        .filter(|l| !l.starts_with("deskmail: created the reply-token secret"))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let taken = lines
        .iter()
        .find(|l| l["fields"]["message"] == "mail taken in")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(taken["span"]["mailbox"], "support", "{taken}");
    assert!(
        taken["span"]["ticket"]
            .as_str()
            .unwrap()
            .starts_with("SUP-"),
        "{taken}"
    );
    assert_eq!(taken["fields"]["status"], "applied");
}

#[test]
fn a_folder_whose_uidvalidity_changed_is_read_again_and_nothing_is_applied_twice() {
    let Some(stack) = MailStack::start(false) else {
        return;
    };
    let support = "support@helpdesk.example";
    stack.recreate_folder(support, "Support");
    let env = TestEnv::new();
    // Mail stays in its folder ("" processed folder), as with a shared mailbox people read.
    let config = config_with_imap(&stack, &env, "secret").replacen(
        "username = \"support@helpdesk.example\"\n",
        "username = \"support@helpdesk.example\"\nfolder = \"Support\"\nprocessed_folder = \"\"\n",
        1,
    );
    std::fs::write(env.config(), config).unwrap();
    let daemon = Daemon::start(&env);
    daemon.wait_until("support connected", Duration::from_secs(30), || {
        daemon.get("/readyz").1.contains("support: connected")
    });
    let first = request(
        "Anna <anna@acme.example>",
        "Printer on fire",
        "uv-1@acme.example",
        "Smoke.",
    );
    stack.append(support, "Support", "", &first);
    daemon.wait_until("the first mail applied", Duration::from_secs(30), || {
        tickets(&env).len() == 1
    });

    // The folder is made anew (a new UIDVALIDITY) with the same mail and a new one in it, as
    // when a mail store is rebuilt.
    stack.recreate_folder(support, "Support");
    stack.append(support, "Support", "", &first);
    stack.append(
        support,
        "Support",
        "",
        &request(
            "Ben <ben@acme.example>",
            "Drucker",
            "uv-2@acme.example",
            "Kaputt.",
        ),
    );
    // The server restarts: the daemon selects the folder anew and sees its UIDVALIDITY.
    stack.restart_dovecot();
    daemon.wait_until("the new mail applied", Duration::from_secs(60), || {
        tickets(&env).len() == 2
    });
    daemon.wait_until("the old mail seen again", Duration::from_secs(30), || {
        daemon.metric("deskmail_mails_total{mailbox=\"support\",outcome=\"duplicate\"}") >= 1.0
    });
    assert!(
        daemon.log().contains("UIDVALIDITY changed"),
        "{}",
        daemon.log()
    );
    let subjects: Vec<String> = tickets(&env)
        .iter()
        .map(|t| t["subject"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        subjects.iter().filter(|s| *s == "Printer on fire").count(),
        1
    );
    let (status, _, log) = daemon.stop();
    assert!(status.success(), "{log}");
}
