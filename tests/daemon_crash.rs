//! Exactly once under SIGKILL: a backlog of 1,000 mails in an IMAP INBOX, the daemon killed
//! three times while it works through it, then a clean run. Every mail is applied once, moved
//! once, and its notifications are in the recipients' mailboxes (at least once: a kill between
//! the server's acceptance and the row's `sent` may send one again, with the same Message-ID).

mod support;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::Value;
use support::TestEnv;
use support::daemon::Daemon;
use support::mailstack::{MailStack, header};

const MAILS: usize = 1000;
const SUPPORT: &str = "support@helpdesk.example";

fn request(i: usize) -> String {
    format!(
        "Return-Path: <anna@acme.example>\r\nFrom: Anna <anna@acme.example>\r\nTo: {SUPPORT}\r\nSubject: Backlog {i:04}\r\n\
         Message-ID: <backlog-{i}@acme.example>\r\nDate: Sun, 06 Dec 2026 09:00:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nRequest number {i}.\r\n"
    )
}

/// Each distinct Message-ID in the mails, with how often it came.
fn by_message_id(mails: &[String]) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for m in mails {
        *seen
            .entry(header(m, "Message-ID").unwrap_or_default())
            .or_insert(0) += 1;
    }
    seen
}

#[test]
fn a_backlog_killed_three_times_is_applied_and_moved_once_and_everyone_is_told() {
    let Some(stack) = MailStack::start(false) else {
        return;
    };
    stack.append_all(
        SUPPORT,
        "INBOX",
        &(0..MAILS).map(request).collect::<Vec<_>>(),
    );
    let env = TestEnv::new();
    let password = env.path("support.pass");
    std::fs::write(&password, "secret\n").unwrap();
    // No loop breaker: a thousand requests from one customer in an hour are the point here.
    let config = support::example_config(
        "loop_limit_per_hour = 0\nloop_limit_per_thread = 0",
        &stack.smtp_config(2),
    );
    let mailbox = "name = \"support\"\naddress = \"support@helpdesk.example\"\n";
    let config = config.replacen(
        mailbox,
        &format!(
            "{mailbox}{}start = \"all\"\n",
            stack.imap_config(SUPPORT, &password)
        ),
        1,
    );
    std::fs::write(env.config(), config).unwrap();

    let processed = || stack.count(SUPPORT, "deskmail/processed");
    for at in [100, 400, 700] {
        let daemon = Daemon::start(&env);
        daemon.wait_until(
            &format!("{at} mails processed"),
            Duration::from_secs(120),
            || processed() >= at,
        );
        daemon.kill();
    }
    let daemon = Daemon::start(&env);
    daemon.wait_until("the backlog processed", Duration::from_secs(180), || {
        processed() == MAILS && stack.count(SUPPORT, "INBOX") == 0
    });
    daemon.wait_until("the outbox empty", Duration::from_secs(180), || {
        daemon.metric("deskmail_outbox_depth") == 0.0
    });

    // Applied once: a ticket per mail, a stored mail per Message-ID.
    let list: Value = serde_json::from_str(&env.ok(&["ticket", "list", "--json"])).unwrap();
    let subjects: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["subject"].as_str().unwrap())
        .collect();
    let distinct: BTreeSet<&str> = subjects.iter().copied().collect();
    assert_eq!(subjects.len(), MAILS, "{}", daemon.log());
    assert_eq!(distinct.len(), MAILS);

    // Moved once, none left behind.
    let moved = stack.folder(SUPPORT, "deskmail/processed");
    assert_eq!(moved.len(), MAILS);
    assert_eq!(by_message_id(&moved).len(), MAILS);

    // Told: every notification is in its mailbox; one sent again after a kill keeps its
    // Message-ID, so each recipient has every Message-ID at least once and few twice.
    let outbox: Value =
        serde_json::from_str(&env.ok(&["outbox", "list", "--json", "--limit", "5000"])).unwrap();
    let outbox = outbox.as_array().unwrap();
    assert!(outbox.iter().all(|m| m["status"] == "sent"), "{outbox:?}");
    for user in ["anna@acme.example", "team@helpdesk.example"] {
        let rows = outbox.iter().filter(|m| m["recipient"] == user).count();
        assert_eq!(rows, MAILS, "{user}: one notification per request");
        let mails = stack.wait_for(user, rows);
        let ids = by_message_id(&mails);
        assert_eq!(ids.len(), rows, "{user}: every notification arrived");
        let again: usize = ids.values().map(|n| n - 1).sum();
        // At most what was in flight or sent and not yet recorded at each of three kills.
        assert!(again <= 3 * 16, "{user}: {again} sent twice");
    }
    let (status, _, log) = daemon.stop();
    assert!(status.success(), "{log}");
}
