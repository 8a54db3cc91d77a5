//! deskmail under hostile and odd mail. The hostile corpus (`tests/support/hostile.rs`) goes
//! through `Desk::ingest` case by case, each asserted: taken in, refused for its size or kept
//! as not a mail, with the bound that applied named in its warnings. The other tests each
//! reproduce one defect found by trying deskmail as an attacker would: backscatter, a muted
//! team, forged comments that look real, mail that loses a customer's words.

mod support;

use deskmail::desk::{Desk, Incoming, IngestError, MailReport, MailStatus};
use jiff::Timestamp;
use support::dialects::sqlite_url;
use support::hostile::{self, Expect};
use support::mailstack::text_part;

fn now() -> Timestamp {
    support::demo::at("12:00")
}

/// A desk on the demo settings with a fresh SQLite store.
async fn desk() -> Desk {
    let dir = tempfile::tempdir().unwrap().keep();
    support::demo_desk(&sqlite_url(&dir, "hostile.sqlite"), "partner-routing").await
}

async fn take(d: &Desk, raw: Vec<u8>) -> Result<MailReport, IngestError> {
    d.ingest(&[Incoming::new(raw, None)], now(), false)
        .await
        .pop()
        .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn every_hostile_case_gets_its_outcome() {
    let d = desk().await;
    // The ticket the cases answer.
    assert_eq!(annas_ticket(&d).await, hostile::TICKET);
    let mut problems = Vec::new();
    for case in hostile::cases() {
        let raw = (case.make)();
        let result = take(&d, raw).await;
        let name = case.name;
        match (case.expect, &result) {
            (Expect::Applied, Ok(r)) if r.status == MailStatus::Applied => {
                if r.class != "person" {
                    problems.push(format!("{name}: class {}", r.class));
                }
                if r.ticket.is_none() {
                    problems.push(format!("{name}: {}", r.decision()));
                }
            }
            (Expect::Empty, Ok(r))
                if r.status == MailStatus::Refused
                    && r.refusal
                        .as_ref()
                        .is_some_and(|x| x.code == "empty_comment") => {}
            (Expect::TooLarge, Ok(r)) if r.status == MailStatus::TooLarge => {}
            (Expect::NotAMail, Err(IngestError::Failed { reason, .. }))
                if reason.contains("not a mail") && !reason.contains("not a mail: not a mail") => {}
            (want, got) => problems.push(format!(
                "{name}: expected {want:?}, got {:?}",
                got.as_ref().map(|r| (r.status, r.decision()))
            )),
        }
        if let (Some(w), Ok(r)) = (case.warning, &result)
            && !r.warnings.iter().any(|x| x.contains(w))
        {
            problems.push(format!("{name}: no warning with {w:?}: {:?}", r.warnings));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

const ANNA: &str = "Anna Example <anna@acme.example>";

/// A mail as an MTA delivers it: the envelope sender in Return-Path.
fn mail(from: &str, to: &str, subject: &str, extra: &str, body: &str) -> Vec<u8> {
    let address = from.rsplit('<').next().unwrap().trim_end_matches('>');
    let id = format!("{:x}", rand_id(&[from, to, subject, extra, body]));
    format!(
        "Return-Path: <{address}>\r\nFrom: {from}\r\nTo: {to}\r\nSubject: {subject}\r\n\
         Message-ID: <{id}@test.example>\r\n{extra}\r\n{body}"
    )
    .into_bytes()
}

fn rand_id(parts: &[&str]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// The spooled notifications (after sending what is queued): recipient and whole message.
async fn spooled(d: &Desk) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap().keep();
    let transport = deskmail::outbound::Transport::Spool(dir.clone());
    d.send_outbox(&transport, &Timestamp::now).await.unwrap();
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let raw = std::fs::read_to_string(e.unwrap().path()).unwrap();
            let to = raw
                .lines()
                .find_map(|l| l.strip_prefix("To: "))
                .unwrap_or_default()
                .to_string();
            (to, raw)
        })
        .collect()
}

/// anna's ticket, opened by mail; its reference.
async fn annas_ticket(d: &Desk) -> String {
    let r = take(
        d,
        mail(
            ANNA,
            "support@helpdesk.example",
            "Printer on fire",
            "",
            "It smokes.\r\n",
        ),
    )
    .await
    .unwrap();
    r.ticket.unwrap()
}

/// anna's reply on her ticket, through her reply address.
fn annas_reply(d: &Desk, reference: &str, extra: &str, body: &str) -> Vec<u8> {
    let token =
        d.outbound
            .key
            .reply_address("support@helpdesk.example", reference, "anna@acme.example");
    mail(
        ANNA,
        &token,
        &format!("Re: [{reference}] Printer on fire"),
        extra,
        body,
    )
}

#[tokio::test(flavor = "current_thread")]
async fn nobody_automated_nor_the_help_desk_itself_gets_an_answer() {
    let d = desk().await;
    // Strangers whose mail must not be answered, and one who gets the polite refusal.
    let silent = [
        ("support@helpdesk.example", "", "own receiving address"),
        ("team@helpdesk.example", "", "own team address"),
        (
            "billing+x@helpdesk.example",
            "",
            "a plus form of an own address",
        ),
        ("postmaster@stranger.example", "", "postmaster"),
        ("no-reply@stranger.example", "", "no-reply"),
        ("noreply@stranger.example", "", "noreply"),
        ("do-not-reply@stranger.example", "", "do-not-reply"),
        ("bounce-77-x=y@lists.example", "", "VERP"),
        (
            "person@stranger.example",
            "X-Auto-Response-Suppress: All\r\n",
            "suppress",
        ),
    ];
    for (from, extra, what) in silent {
        let r = take(
            &d,
            mail(
                from,
                "support@helpdesk.example",
                "Hello there",
                extra,
                "Hi.\r\n",
            ),
        )
        .await
        .unwrap();
        assert_ne!(r.status, MailStatus::Applied, "{what}: {}", r.decision());
    }
    let own = take(
        &d,
        mail(
            "support@helpdesk.example",
            "support@helpdesk.example",
            "x",
            "",
            "Hi.\r\n",
        ),
    )
    .await
    .unwrap();
    assert_eq!(own.class, "own", "{}", own.class_reason);
    assert_eq!(own.status, MailStatus::Recorded);
    // A null return path: the envelope sender of automatic mail.
    let mut null = mail(
        "person@stranger.example",
        "support@helpdesk.example",
        "y",
        "",
        "Hi.\r\n",
    );
    null.splice(
        0..null.iter().position(|b| *b == b'\n').unwrap() + 1,
        b"Return-Path: <>\r\n".iter().copied(),
    );
    take(&d, null).await.unwrap();
    assert!(
        d.store.outbox(None, None, 100).await.unwrap().is_empty(),
        "{:?}",
        d.store.outbox(None, None, 100).await.unwrap()
    );
    // A person outside every organisation is told, once, with no more of their mail than
    // the start of its subject.
    let long_subject = format!("Please help {}", "and read this ".repeat(40));
    let r = take(
        &d,
        mail(
            "Pat <pat@stranger.example>",
            "support@helpdesk.example",
            &long_subject,
            "",
            "Body text.\r\n",
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status, MailStatus::Refused);
    let sent = spooled(&d).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (to, raw) = &sent[0];
    assert!(to.contains("pat@stranger.example"));
    assert!(!raw.contains("Body text"), "{raw}");
    let subject = raw
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap();
    assert!(subject.chars().count() <= 110, "{subject}");
}

#[tokio::test(flavor = "current_thread")]
async fn forged_mail_does_not_mute_the_team_and_looks_unverified() {
    let d = desk().await;
    let reference = annas_ticket(&d).await;
    // Fifteen mails in anna's name, no reply token, no authentication: each a comment.
    let forged = |body: String| {
        let subject = format!("Re: [{reference}] Printer on fire");
        let raw = mail(ANNA, "support@helpdesk.example", &subject, "", &body);
        take(&d, raw)
    };
    for i in 0..15 {
        let r = forged(format!("Forged {i}.\r\n")).await.unwrap();
        assert!(!r.sender.verified);
        assert!(
            r.mailed.contains(&"team@helpdesk.example".to_string()),
            "{r:?}"
        );
    }
    // Whatever an unverified sender's command, it is refused as unverified: how it is written
    // is not the reason to give.
    for command in ["/to provider", "/To Customer", "/frobnicate"] {
        let r = forged(format!("{command}\r\nForged command.\r\n"))
            .await
            .unwrap();
        let refusal = r.refusal.as_ref().expect("the command is not done");
        assert_eq!(refusal.code, "not_verified", "{command}: {}", r.decision());
        assert!(refusal.command.is_some(), "{command}: {}", r.decision());
    }
    // Her genuine reply, through her reply address: the team still hears of it.
    let r = take(&d, annas_reply(&d, &reference, "", "The real answer.\r\n"))
        .await
        .unwrap();
    assert!(r.sender.verified);
    assert_eq!(r.mailed, ["team@helpdesk.example"], "{}", r.decision());
    assert!(r.refusal.is_none(), "{}", r.decision());
    // The forged comments say so, where agents read them.
    let view = d.show(&reference, None).await.unwrap();
    let forged: Vec<_> = view
        .comments
        .iter()
        .filter(|c| c.text.starts_with("Forged"))
        .collect();
    assert_eq!(forged.len(), 18);
    assert!(
        forged
            .iter()
            .all(|c| c.verified_by.as_deref() == Some("none"))
    );
    let real = view
        .comments
        .iter()
        .find(|c| c.text.contains("real answer"))
        .unwrap();
    assert_eq!(real.verified_by.as_deref(), Some("token"));
    let team_mails: Vec<String> = spooled(&d)
        .await
        .into_iter()
        .filter(|(to, _)| to.contains("team@helpdesk.example"))
        .map(|(_, raw)| raw)
        .collect();
    let marked = team_mails
        .iter()
        .filter(|m| text_part(m).contains("(unverified sender: anna@acme.example)"))
        .count();
    // Her first mail (the request, sent without a token either) and the 18 forged ones; not
    // the genuine reply.
    assert_eq!(team_mails.len(), 20);
    assert_eq!(marked, 19, "each unverified mail's notice says so");
}

#[tokio::test(flavor = "current_thread")]
async fn a_mail_of_files_only_becomes_a_comment_with_them() {
    let d = desk().await;
    let reference = annas_ticket(&d).await;
    let body = "--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=\"display.png\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n";
    let r = take(
        &d,
        annas_reply(
            &d,
            &reference,
            "Content-Type: multipart/mixed; boundary=\"b\"\r\n",
            body,
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status, MailStatus::Applied, "{}", r.decision());
    assert_eq!(r.text.as_deref(), Some("[display.png]"));
}

#[tokio::test(flavor = "current_thread")]
async fn notifications_stay_within_their_size_and_say_what_they_leave_out() {
    let dir = tempfile::tempdir().unwrap().keep();
    let url = sqlite_url(&dir, "n.sqlite");
    let d = support::demo_desk_with(&url, "partner-routing", |s| {
        s.outbound.max_message_bytes = 256 * 1024;
    })
    .await;
    // A new request with 600 KB of text and a file of 200 KB: the team's notice carries
    // the start of the text and names the file.
    let text: String = (0..10_000)
        .map(|i| format!("Line {i} of the log.\n"))
        .collect();
    let file = "QUFB".repeat(200_000 / 3);
    let body = format!(
        "--b\r\nContent-Type: text/plain\r\n\r\n{text}\r\n--b\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"trace.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{file}\r\n--b--\r\n"
    );
    let r = take(
        &d,
        mail(
            ANNA,
            "support@helpdesk.example",
            "Long log",
            "Content-Type: multipart/mixed; boundary=\"b\"\r\n",
            &body,
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status, MailStatus::Applied, "{}", r.decision());
    let sent = spooled(&d).await;
    let (_, team) = sent.iter().find(|(to, _)| to.contains("team@")).unwrap();
    assert!(team.len() <= 256 * 1024, "{} bytes", team.len());
    let m = mail_parser::MessageParser::default()
        .parse(team.as_bytes())
        .unwrap();
    let body = m.body_text(0).unwrap();
    assert!(body.contains("Line 0 of the log."));
    assert!(body.contains("The comment goes on for"), "{body}");
    assert!(body.contains("trace.bin") && body.contains("too large to send by mail"));
    assert_eq!(m.attachments().count(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_mail_that_asks_for_no_automatic_answer_gets_no_acknowledgement() {
    let d = desk().await;
    for (extra, why) in [
        (
            "X-Auto-Response-Suppress: All\r\n",
            "X-Auto-Response-Suppress",
        ),
        ("List-Id: <it.acme.example>\r\n", "mailing list"),
    ] {
        let r = take(
            &d,
            mail(
                ANNA,
                "support@helpdesk.example",
                &format!("Printer on fire ({why})"),
                extra,
                "It smokes.\r\n",
            ),
        )
        .await
        .unwrap();
        assert_eq!(r.status, MailStatus::Applied, "{}", r.decision());
        assert_eq!(
            r.mailed,
            ["team@helpdesk.example"],
            "{why}: {}",
            r.decision()
        );
        assert!(
            r.not_mailed
                .iter()
                .any(|n| n.starts_with("not mailed to anna@acme.example")),
            "{why}: {:?}",
            r.not_mailed
        );
    }
    // Without a Return-Path (no MTA recorded an envelope sender) likewise.
    let mut raw = mail(
        ANNA,
        "support@helpdesk.example",
        "No envelope",
        "",
        "Hi.\r\n",
    );
    let first_line = raw.iter().position(|b| *b == b'\n').unwrap() + 1;
    raw.drain(..first_line);
    let r = take(&d, raw).await.unwrap();
    assert_eq!(r.mailed, ["team@helpdesk.example"], "{}", r.decision());
}

#[tokio::test(flavor = "current_thread")]
async fn a_mail_refused_for_its_size_is_taken_in_once_the_limit_allows_it() {
    let dir = tempfile::tempdir().unwrap().keep();
    let url = sqlite_url(&dir, "s.sqlite");
    let raw = mail(
        ANNA,
        "support@helpdesk.example",
        "Big",
        "",
        &"x".repeat(100_000),
    );
    for (limit, status) in [
        (50_000, MailStatus::TooLarge),
        (1 << 20, MailStatus::Applied),
    ] {
        let d = support::demo_desk_with(&url, "partner-routing", |s| {
            s.inbound.max_message_bytes = limit;
        })
        .await;
        let r = take(&d, raw.clone()).await.unwrap();
        assert_eq!(r.status, status, "{}", r.decision());
    }
}
