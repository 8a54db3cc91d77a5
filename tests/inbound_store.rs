//! Taking mail in, on SQLite and on PostgreSQL alike: matching by References and by the
//! thread's root, a group with a bad mail in it, agents' internal notes and commands by mail,
//! watchers from Cc, a reply to a closed ticket, plus-addresses, values stored in pieces.

mod support;

use deskmail::desk::{Desk, Incoming, MailReport, MailStatus};
use jiff::{SignedDuration, Timestamp};
use mail_parser::MimeHeaders;
use support::demo;
use support::dialects::sqlite_url;

fn t0() -> Timestamp {
    demo::at("10:00")
}

fn mail(headers: &[(&str, &str)], body: &str) -> Incoming {
    let mut raw = String::new();
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\n"));
    }
    raw.push_str("Content-Type: text/plain; charset=utf-8\n\n");
    raw.push_str(body);
    Incoming::new(raw.into_bytes(), None)
}

async fn take(d: &Desk, m: Incoming, minutes: i64) -> MailReport {
    d.ingest(&[m], t0() + SignedDuration::from_mins(minutes), false)
        .await
        .pop()
        .unwrap()
        .unwrap()
}

/// The newest notification's Message-ID to `to`.
async fn last_id(d: &Desk, to: &str) -> String {
    d.store
        .outbox(None, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.recipient == to)
        .unwrap_or_else(|| panic!("no mail to {to}"))
        .message_id
}

async fn suite(url: &str) {
    let d = support::demo_desk(url, "partner-routing").await;
    let key = d.outbound.key.clone();
    // anna opens by mail, Cc'ing ben (power user: may see it) and carl (another organisation).
    let r = take(
        &d,
        mail(
            &[
                ("From", "Anna Example <anna@acme.example>"),
                ("To", "support@helpdesk.example"),
                ("Cc", "ben@acme.example, carl@globex.example"),
                ("Subject", "Printer on fire"),
                ("Message-ID", "<Root-1@acme.example>"),
            ],
            "It smokes.\n",
        ),
        0,
    )
    .await;
    assert_eq!(r.status, MailStatus::Applied, "{r:?}");
    let reference = r.ticket.clone().unwrap();
    let rec = d.store.ticket(&reference).await.unwrap().unwrap();
    assert_eq!(rec.thread_root.as_deref(), Some("<Root-1@acme.example>"));
    assert_eq!(rec.ticket.watchers, vec!["ben@acme.example"]);
    assert!(
        r.notes.iter().any(|n| n.contains("carl@globex.example")),
        "{r:?}"
    );

    // ben answers with his client's reply-all, no token: matched by the thread root.
    let r = take(
        &d,
        mail(
            &[
                ("From", "ben@acme.example"),
                ("To", "support@helpdesk.example"),
                ("Subject", "Re: Printer on fire"),
                ("Message-ID", "<ben-1@acme.example>"),
                ("In-Reply-To", "<Root-1@acme.example>"),
            ],
            "Same here.\n",
        ),
        1,
    )
    .await;
    assert_eq!(r.ticket.as_deref(), Some(reference.as_str()), "{r:?}");
    assert_eq!(r.matched_by, "references");
    assert!(!r.sender.verified);

    // alice answers the team's notification: its token was issued to the team address, so she
    // is verified; an internal note, then a command.
    let team_token = key.reply_address(
        "support@helpdesk.example",
        &reference,
        "team@helpdesk.example",
    );
    let notified = last_id(&d, "team@helpdesk.example").await;
    let r = take(
        &d,
        mail(
            &[
                ("From", "alice@helpdesk.example"),
                ("To", &team_token),
                ("Subject", &format!("Re: [{reference}] Printer on fire")),
                ("Message-ID", "<alice-1@helpdesk.example>"),
                ("In-Reply-To", &notified),
            ],
            "#internal\nCustomer is known to overheat things.\n",
        ),
        2,
    )
    .await;
    assert_eq!(r.status, MailStatus::Applied, "{r:?}");
    let action = r.action.as_ref().expect("an action");
    assert_eq!(action.comment, Some("internal"), "{r:?}");
    let view = d.show(&reference, None).await.unwrap();
    let note = view.comments.last().unwrap();
    assert_eq!(note.visibility, "internal");
    assert_eq!(note.text, "Customer is known to overheat things.");
    let r = take(
        &d,
        mail(
            &[
                ("From", "alice@helpdesk.example"),
                ("To", &team_token),
                (
                    "Subject",
                    &format!("[Assign me] Re: [{reference}] Printer on fire"),
                ),
                ("Message-ID", "<alice-2@helpdesk.example>"),
            ],
            "Mine.\n",
        ),
        3,
    )
    .await;
    assert_eq!(r.status, MailStatus::Applied, "{r:?}");
    let rec = d.store.ticket(&reference).await.unwrap().unwrap();
    assert_eq!(
        rec.ticket.assignee.as_deref(),
        Some("alice@helpdesk.example")
    );

    // A group with a bad mail between two good ones: the good ones are applied together, the
    // bad one is kept as failed, alone.
    let anna_token = key.reply_address("support@helpdesk.example", &reference, "anna@acme.example");
    let good = |n: u32| {
        mail(
            &[
                ("From", "anna@acme.example"),
                ("To", &anna_token),
                ("Subject", &format!("Re: [{reference}] Printer on fire")),
                ("Message-ID", &format!("<group-{n}@acme.example>")),
            ],
            &format!("Group mail {n}.\n"),
        )
    };
    let bad = Incoming::new(b"\x00\x01 not a mail".to_vec(), None);
    let results = d
        .ingest(
            &[good(1), bad, good(2)],
            t0() + SignedDuration::from_mins(4),
            false,
        )
        .await;
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(results[1].is_err(), "{results:?}");
    let texts: Vec<String> = d
        .show(&reference, None)
        .await
        .unwrap()
        .comments
        .into_iter()
        .map(|c| c.text)
        .collect();
    assert!(
        texts.contains(&"Group mail 1.".to_string())
            && texts.contains(&"Group mail 2.".to_string())
    );
    let failed = d.store.inbound(Some("failed"), None, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    // Kept byte for byte (stored packed).
    let kept = d.store.stored_mail(failed[0].id).await.unwrap().unwrap();
    assert_eq!(kept.raw, b"\x00\x01 not a mail");
    // The same group again changes nothing (and the bad one stays failed).
    let again = d
        .ingest(
            &[good(1), good(2)],
            t0() + SignedDuration::from_mins(5),
            false,
        )
        .await;
    assert!(
        again
            .iter()
            .all(|r| matches!(r, Ok(r) if r.status == MailStatus::Duplicate))
    );

    // Closed: a reply opens a follow-up ticket that links the old one.
    let alice = demo::actor(&d, demo::ALICE);
    for action in ["Resolve", "Close"] {
        let o = d
            .act(
                &reference,
                &alice,
                &deskmail::workflow::Intent::Act {
                    action: action.into(),
                    comment: None,
                    internal: false,
                    fields: Default::default(),
                },
                &[],
                t0() + SignedDuration::from_mins(6),
            )
            .await
            .unwrap();
        assert!(
            matches!(o, deskmail::desk::Outcome::Applied { .. }),
            "{o:?}"
        );
    }
    let r = take(&d, good(3), 7).await;
    let follow = r.ticket.clone().unwrap();
    assert_ne!(follow, reference, "{r:?}");
    let new = d.store.ticket(&follow).await.unwrap().unwrap();
    assert_eq!(new.ticket.linked_to.as_deref(), Some(reference.as_str()));
    assert_eq!(new.ticket.status, "New");
}

/// Values over a piece (1 MiB) are stored in pieces and read back whole: a 3.4 MiB mail and
/// the 3.4 MiB notification that carries its attachment to the support team.
async fn large_values(url: &str) {
    let d = support::demo_desk(url, "partner-routing").await;
    let log = support::hostile::noise(2_500_000);
    let b = "b1";
    let mut raw = format!(
        "From: Anna Example <anna@acme.example>\r\nTo: support@helpdesk.example\r\n\
         Subject: The whole log\r\nMessage-ID: <log@acme.example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n\
         --{b}\r\nContent-Type: text/plain\r\n\r\nThe log is attached.\r\n\
         --{b}\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"app.log\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    raw.extend_from_slice(&support::hostile::base64_lines(&log));
    raw.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    let r = take(&d, Incoming::new(raw.clone(), None), 0).await;
    assert_eq!(r.status, MailStatus::Applied, "{r:?}");

    let stored = d.store.inbound(None, None, 10).await.unwrap();
    let kept = d.store.stored_mail(stored[0].id).await.unwrap().unwrap();
    assert_eq!(kept.raw.len(), raw.len());
    assert!(kept.raw == raw, "the stored mail is the mail");

    let now = t0() + SignedDuration::from_mins(1);
    let claimed = d
        .store
        .claim_due(now, now + SignedDuration::from_mins(5), 100, None)
        .await
        .unwrap();
    let team = claimed
        .iter()
        .find(|c| c.recipient == "team@helpdesk.example")
        .expect("the team's notification");
    assert!(team.raw.len() > 3 * (1 << 20), "{}", team.raw.len());
    let message = mail_parser::MessageParser::default()
        .parse(&team.raw)
        .unwrap();
    let sent = message
        .attachments()
        .find(|a| a.attachment_name() == Some("app.log"))
        .expect("the log goes to the team");
    assert!(sent.contents() == log, "the attachment arrives whole");
}

on_each_dialect! {
    large_values => large_values;
    inbound_suite => suite;
}

#[tokio::test(flavor = "current_thread")]
async fn plus_addresses_pick_the_request_type() {
    let dir = tempfile::tempdir().unwrap();
    let d = support::demo_desk(&sqlite_url(dir.path(), "t.sqlite"), "triage").await;
    let new = |to: &str, id: &str| {
        mail(
            &[
                ("From", "anna@acme.example"),
                ("To", to),
                ("Subject", "Please"),
                ("Message-ID", id),
            ],
            "Please do.\n",
        )
    };
    let r = take(
        &d,
        new("support+gdpr-delete@helpdesk.example", "<p1@acme.example>"),
        0,
    )
    .await;
    let t = d
        .store
        .ticket(r.ticket.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        t.ticket.fields.get("request_type").map(String::as_str),
        Some("GDPR: delete my personal data")
    );
    let r = take(
        &d,
        new("support+nonsense@helpdesk.example", "<p2@acme.example>"),
        1,
    )
    .await;
    assert_eq!(r.status, MailStatus::Applied);
    assert!(
        r.notes.iter().any(|n| n.contains("unknown plus-part")),
        "{r:?}"
    );
    // A request-type tag in the subject.
    let r = take(
        &d,
        mail(
            &[
                ("From", "anna@acme.example"),
                ("To", "support@helpdesk.example"),
                ("Subject", "[Feature request] Dark mode"),
                ("Message-ID", "<p3@acme.example>"),
            ],
            "Please.\n",
        ),
        2,
    )
    .await;
    let t = d
        .store
        .ticket(r.ticket.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.ticket.subject, "Dark mode");
    assert_eq!(
        t.ticket.fields.get("request_type").map(String::as_str),
        Some("Feature request")
    );
}
