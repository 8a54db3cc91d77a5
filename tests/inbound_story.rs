//! The seed 000 story played by mail through `deskmail ingest` (the binary, as an MTA pipe
//! runs it), with the notifications read back from the spool: a partner's `[To Customer]`
//! reply, a customer's plain reply, a customer's refused `[To Web-IT Provider]` with the "not
//! done" notice; then forged mail, auto-replies, bounces, duplicates, garbage and the exit
//! codes.

mod support;

use std::io::Write;
use std::process::Stdio;

use mail_parser::MessageParser;
use serde_json::Value;
use support::TestEnv;

/// Runs `deskmail ingest ARGS` with `raw` on stdin as an MTA's pipe hands it over: with the
/// envelope sender in a Return-Path header (Postfix's `flags=R`), here the From address, unless
/// the mail has one. The exit code and stderr.
fn ingest(env: &TestEnv, raw: &str, args: &[&str]) -> (i32, String) {
    let has_return_path = raw
        .lines()
        .take_while(|l| !l.is_empty())
        .any(|l| l.to_ascii_lowercase().starts_with("return-path:"));
    let from = raw
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("From:"))
        .map(|f| {
            f.rsplit('<')
                .next()
                .unwrap_or(f)
                .trim()
                .trim_end_matches('>')
                .to_string()
        });
    match from.filter(|_| !has_return_path) {
        Some(from) => ingest_as_is(env, &format!("Return-Path: <{from}>\n{raw}"), args),
        None => ingest_as_is(env, raw, args),
    }
}

/// Takes a mail in exactly as given.
fn ingest_as_is(env: &TestEnv, raw: &str, args: &[&str]) -> (i32, String) {
    let mut child = env
        .command()
        .arg("ingest")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(raw.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The newest notification to `to` in the spool, after sending what is queued: its Reply-To
/// address, Message-ID and subject.
fn last_mail_to(env: &TestEnv, to: &str) -> (String, String, String) {
    env.ok(&["outbox", "send"]);
    let rows: Value =
        serde_json::from_str::<Value>(&env.ok(&["outbox", "list", "--json", "--limit", "500"]))
            .unwrap()["notifications"]
            .clone();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["recipient"] == to)
        .unwrap_or_else(|| panic!("no mail to {to}: {rows}"));
    let id = row["message_id"].as_str().unwrap().to_string();
    let file = deskmail::outbound::transport::spool_name(&id);
    let raw = std::fs::read(env.path(&format!("data/spool/{file}.eml"))).unwrap();
    let m = MessageParser::default().parse(&raw[..]).unwrap();
    let reply_to = m
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap()
        .to_string();
    (reply_to, id, m.subject().unwrap().to_string())
}

fn reply(from: &str, to: &str, subject: &str, parent: &str, id: &str, body: &str) -> String {
    format!(
        "From: {from}\nTo: {to}\nSubject: {subject}\nMessage-ID: <{id}>\nIn-Reply-To: {parent}\n\
         References: {parent}\nDate: Sun, 22 Nov 2026 15:00:00 +0000\nContent-Type: text/plain; charset=utf-8\n\n\
         {body}\n\nOn Sun, 22 Nov 2026 at 14:00, Example Help Desk <support@helpdesk.example> wrote:\n> earlier text\n"
    )
}

/// The texts of a ticket's comments, oldest first.
fn comment_texts(env: &TestEnv, reference: &str) -> Vec<String> {
    env.show(reference)["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_string())
        .collect()
}

fn status(env: &TestEnv, reference: &str) -> String {
    env.show(reference)["status"].as_str().unwrap().to_string()
}

/// Anna opens the ticket by mail; alice sends it to the IT provider; the reference.
fn opened(env: &TestEnv) -> String {
    let (code, err) = ingest(
        env,
        "From: Anna Example <anna@acme.example>\nTo: support@helpdesk.example\nSubject: Printer on fire\n\
         Message-ID: <first@acme.example>\nDate: Sun, 22 Nov 2026 13:00:00 +0000\n\nIt smokes.\n\n-- \nAnna\n",
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let list: Value = env.tickets(&[]);
    let reference = list[0]["ref"].as_str().unwrap().to_string();
    let t = env.show(&reference);
    assert_eq!(t["status"], "New");
    assert_eq!(t["source"], "mail");
    assert_eq!(t["comments"][0]["text"], "It smokes.", "{t}");
    env.ok(&[
        "ticket",
        "act",
        &reference,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "To IT Provider",
        "--comment",
        "Please check.",
    ]);
    reference
}

#[test]
fn the_seed_000_story_plays_by_mail() {
    let env = TestEnv::new();
    let r = opened(&env);
    // The acknowledgement threads with anna's own mail: its References start there.
    let (_, ack_id, _) = last_mail_to(&env, "anna@acme.example");
    assert!(ack_id.contains(&r.to_lowercase()));
    assert_eq!(status(&env, &r), "On Partner");

    // ops answers the partner notification with the action link's subject.
    let (token, parent, subject) = last_mail_to(&env, "support@itprov.example");
    let (code, err) = ingest(
        &env,
        &reply(
            "Ops Team <ops@itprov.example>",
            &token,
            &format!("[To Customer] Re: {subject}"),
            &parent,
            "ops-1@itprov.example",
            "Is it plugged in?",
        ),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(status(&env, &r), "On Customer", "{err}");

    // anna's plain reply hands it back to the support team.
    let (token, parent, subject) = last_mail_to(&env, "anna@acme.example");
    let (code, err) = ingest(
        &env,
        &reply(
            "anna@acme.example",
            &token,
            &format!("Re: {subject}"),
            &parent,
            "anna-1@acme.example",
            "Yes, it is.",
        ),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(status(&env, &r), "New", "{err}");

    // anna asks for a partner the ticket does not involve: refused, the comment kept, the
    // "not done" notice with what she can do instead is in the outbox.
    let before = env.outbox().len();
    let (code, err) = ingest(
        &env,
        &reply(
            "anna@acme.example",
            &token,
            &format!("[To Web-IT Provider] Re: {subject}"),
            &parent,
            "anna-2@acme.example",
            "Maybe the web people know?",
        ),
        &["--json"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("Web-IT Provider is not involved in this ticket"),
        "{err}"
    );
    assert_eq!(status(&env, &r), "New");
    let t = env.show(&r);
    let comments = t["comments"].as_array().unwrap();
    assert_eq!(
        comments.last().unwrap()["text"],
        "Maybe the web people know?"
    );
    let rows = env.outbox();
    let notice = rows[..rows.len() - before]
        .iter()
        .find(|m| m["event"] == "not_done")
        .unwrap_or_else(|| panic!("no not_done notice: {rows:?}"));
    assert_eq!(notice["recipient"], "anna@acme.example");
    let (_, id, _) = last_mail_to(&env, "anna@acme.example");
    assert_eq!(id, notice["message_id"].as_str().unwrap());
    let spool = std::fs::read_dir(env.path("data/spool"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .find(|m| m.contains(id.as_str()))
        .unwrap();
    let text = MessageParser::default()
        .parse(spool.as_bytes())
        .unwrap()
        .body_text(0)
        .unwrap()
        .to_string();
    assert!(
        text.contains("Web-IT Provider is not involved in this ticket"),
        "{text}"
    );
    for allowed in [
        "[To Customer]",
        "[To 2nd Level Support Provider]",
        "[To IT Provider]",
    ] {
        assert!(text.contains(allowed), "{allowed} missing in\n{text}");
    }

    // alice resolves; anna reopens by mail.
    env.ok(&[
        "ticket",
        "act",
        &r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "Resolve",
    ]);
    let (token, parent, subject) = last_mail_to(&env, "anna@acme.example");
    let (code, err) = ingest(
        &env,
        &reply(
            "anna@acme.example",
            &token,
            &format!("[Wiedereröffnen] Re: {subject}"),
            &parent,
            "anna-3@acme.example",
            "Still smoking.",
        ),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(status(&env, &r), "New", "{err}");
}

#[test]
fn a_forged_sender_cannot_move_a_ticket() {
    let env = TestEnv::new();
    let r = opened(&env);
    let (_, parent, subject) = last_mail_to(&env, "support@itprov.example");
    // No token, no authentication: ops's command is not done, and neither is a forged agent's
    // mail taken at all.
    let forged = reply(
        "ops@itprov.example",
        "support@helpdesk.example",
        &format!("[To Customer] Re: {subject}"),
        &parent,
        "forged-1@evil.example",
        "Closing this.",
    );
    let (code, err) = ingest(&env, &forged, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("we could not verify"), "{err}");
    assert_eq!(status(&env, &r), "On Partner");
    let agent = reply(
        "alice@helpdesk.example",
        "support@helpdesk.example",
        &format!("[Resolve] Re: {subject}"),
        &parent,
        "forged-2@evil.example",
        "Done.",
    );
    let (code, err) = ingest(&env, &agent, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.starts_with("stdin: refused"), "{err}");
    assert_eq!(status(&env, &r), "On Partner");
    let t = env.show(&r);
    assert!(
        !t["comments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["text"] == "Done."),
        "{t}"
    );
}

#[test]
fn auto_replies_get_no_answer_and_bounces_silence_an_address() {
    let env = TestEnv::new();
    let r = opened(&env);
    let (token, parent, subject) = last_mail_to(&env, "anna@acme.example");
    let rows_before = env.outbox().len();
    // Weeks later (beyond outbound.keep_sent_for) the sent notifications' bodies are gone;
    // what matching them needs stays, as the rest of the story shows.
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 40)).to_string();
    let swept = env.run(&["sweep", "--now", &later]);
    let said = String::from_utf8_lossy(&swept.stderr);
    assert!(
        said.contains(&format!(
            "the bodies of {rows_before} sent notification(s) dropped"
        )),
        "{said}"
    );
    let again = env.run(&["sweep", "--now", &later]);
    assert!(!String::from_utf8_lossy(&again.stderr).contains("bodies"));
    let oof = format!(
        "From: anna@acme.example\nTo: {token}\nSubject: Automatic reply: {subject}\nAuto-Submitted: auto-replied\n\
         Message-ID: <oof-1@acme.example>\nIn-Reply-To: {parent}\n\nI am out of the office.\n"
    );
    let (code, err) = ingest(&env, &oof, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("auto-reply"), "{err}");
    assert_eq!(env.outbox().len(), rows_before, "nothing is answered");
    assert_eq!(status(&env, &r), "On Partner");

    // A permanent bounce of that notification marks anna's address as failing.
    let bounce = format!(
        "From: MAILER-DAEMON@mx.acme.example (Mail Delivery System)\nTo: support@helpdesk.example\n\
         Subject: Undelivered Mail Returned to Sender\nMessage-ID: <bounce-1@mx.acme.example>\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n\
         --b\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n\
         --b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.acme.example\n\n\
         Final-Recipient: rfc822; anna@acme.example\nAction: failed\nStatus: 5.1.1\n\
         Diagnostic-Code: smtp; 550 5.1.1 user unknown\n\n\
         --b\nContent-Type: text/rfc822-headers\n\nFrom: support@helpdesk.example\nTo: anna@acme.example\n\
         Message-ID: {parent}\nSubject: {subject}\n\n--b--\n"
    );
    let (code, err) = ingest(&env, &bounce, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("anna@acme.example fails"), "{err}");
    // A reply found by its In-Reply-To alone (no reply address, no [ref] in the subject).
    let comments = env.show(&r)["comments"].as_array().unwrap().len();
    let reply = format!(
        "From: anna@acme.example\nTo: support@helpdesk.example\nSubject: Re: my printer\n\
         Message-ID: <reply-late@acme.example>\nIn-Reply-To: {parent}\n\nStill smoking.\n"
    );
    let (code, err) = ingest(&env, &reply, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        env.show(&r)["comments"].as_array().unwrap().len(),
        comments + 1,
        "{err}"
    );
    // The next notification to anna is skipped, and the history says why.
    env.ok(&[
        "ticket",
        "act",
        &r,
        "--as",
        "alice@helpdesk.example",
        "--action",
        "To Customer",
        "--comment",
        "Anna?",
    ]);
    let rows = env.outbox();
    let last_to_anna = rows
        .iter()
        .filter(|m| m["recipient"] == "anna@acme.example")
        .count();
    assert_eq!(
        last_to_anna, 1,
        "only the acknowledgement, which bounced: {rows:?}"
    );
    let t = env.show(&r);
    assert!(
        t["history"].as_array().unwrap().iter().any(|h| h["detail"]
            .as_str()
            .unwrap()
            .contains("not mailed to anna@acme.example: the address fails")),
        "{t}"
    );
}

#[test]
fn the_same_mail_twice_changes_nothing_and_garbage_never_stops_the_pipeline() {
    let env = TestEnv::new();
    let r = opened(&env);
    let (token, parent, subject) = last_mail_to(&env, "anna@acme.example");
    let mail = reply(
        "anna@acme.example",
        &token,
        &format!("Re: {subject}"),
        &parent,
        "twice@acme.example",
        "Once.",
    );
    assert_eq!(ingest(&env, &mail, &[]).0, 0);
    let t1 = env.show(&r);
    let rows1 = env.outbox().len();
    let (code, err) = ingest(&env, &mail, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("duplicate"), "{err}");
    assert_eq!(env.show(&r), t1);
    assert_eq!(env.outbox().len(), rows1);

    // A directory with garbage between two good mails: all are handled, the garbage is kept as
    // failed, the exit code says 65.
    let dir = env.path("maildir");
    std::fs::create_dir_all(dir.join("new")).unwrap();
    std::fs::create_dir_all(dir.join("cur")).unwrap();
    let good = |n: u32| {
        reply(
            "anna@acme.example",
            &token,
            &format!("Re: {subject}"),
            &parent,
            &format!("batch-{n}@acme.example"),
            &format!("Mail {n}."),
        )
    };
    std::fs::write(dir.join("new/1.eml"), good(1)).unwrap();
    std::fs::write(dir.join("new/2.eml"), [0xffu8, 0x00, 0x13, 0x37, b'\n']).unwrap();
    std::fs::write(dir.join("new/3.eml"), good(3)).unwrap();
    let out = env.run(&["ingest", dir.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{err}");
    let texts = comment_texts(&env, &r);
    assert!(
        texts.contains(&"Mail 1.".to_string()) && texts.contains(&"Mail 3.".to_string()),
        "{texts:?}"
    );
    let failed: Value = env.inbound(&["--failed"]);
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed}");
    assert!(
        failed[0]["reason"].as_str().unwrap().contains("not a mail"),
        "{failed}"
    );
}

#[test]
fn an_unreachable_database_asks_the_mta_to_retry() {
    let mut env = TestEnv::new();
    env.set(
        "DESKMAIL__STORE__URL",
        "postgres://postgres@127.0.0.1:1/postgres",
    );
    let (code, err) = ingest(
        &env,
        "From: anna@acme.example\nTo: support@helpdesk.example\nSubject: x\n\nhello\n",
        &[],
    );
    assert_eq!(code, 75, "{err}");
}

#[test]
fn dry_run_shows_the_decision_and_changes_nothing() {
    let env = TestEnv::new();
    let r = opened(&env);
    let (token, parent, subject) = last_mail_to(&env, "support@itprov.example");
    let mail = reply(
        "ops@itprov.example",
        &token,
        &format!("[To Customer] Re: {subject}"),
        &parent,
        "dry@itprov.example",
        "Plugged in?",
    );
    let t0 = env.show(&r);
    let out = env
        .command()
        .args(["ingest", "--dry-run", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(mail.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["class"], "person");
    assert_eq!(line["sender"]["address"], "ops@itprov.example");
    assert_eq!(line["sender"]["role"], "partner");
    assert_eq!(line["sender"]["verified"], true);
    assert_eq!(line["sender"]["how"]["by"], "token");
    assert_eq!(line["ticket"], r.as_str());
    assert_eq!(line["matched_by"], "token");
    assert_eq!(line["text"], "Plugged in?");
    assert_eq!(line["commands"][0], "To Customer");
    assert_eq!(line["action"]["name"], "To Customer", "{line}");
    assert_eq!(line["action"]["previous_status"], "On Partner", "{line}");
    assert_eq!(line["action"]["status"], "On Customer", "{line}");
    assert_eq!(env.show(&r), t0, "a dry run changes nothing");
    let stored: Value = env.inbound(&[]);
    assert_eq!(
        stored.as_array().unwrap().len(),
        1,
        "only anna's first mail is stored"
    );
}

#[test]
fn on_postgresql_mails_go_in_parallel_and_each_ticket_keeps_its_order() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(db) = rt.block_on(support::pg::PgDb::create()) else {
        return;
    };
    let mut env = TestEnv::new();
    env.set("DESKMAIL__STORE__URL", &db.url);
    // Three tickets, eight replies each, interleaved in one directory.
    let mut refs = Vec::new();
    for n in 0..3 {
        let (code, err) = ingest(
            &env,
            &format!(
                "From: anna@acme.example\nTo: support@helpdesk.example\nSubject: Ticket {n}\n\
                 Message-ID: <open-{n}@acme.example>\n\nPlease.\n"
            ),
            &[],
        );
        assert_eq!(code, 0, "{err}");
        let list: Value = env.tickets(&[]);
        refs.push(list[0]["ref"].as_str().unwrap().to_string());
    }
    let dir = env.path("batch");
    std::fs::create_dir_all(&dir).unwrap();
    for k in 0..8 {
        for (n, r) in refs.iter().enumerate() {
            std::fs::write(
                dir.join(format!("{k:02}-{n}.eml")),
                format!(
                    "From: anna@acme.example\nTo: support@helpdesk.example\nSubject: Re: [{r}] Ticket {n}\n\
                     Message-ID: <r-{n}-{k}@acme.example>\n\nReply {k}.\n"
                ),
            )
            .unwrap();
        }
    }
    // The same mail delivered twice, in one run: taken in once.
    std::fs::copy(dir.join("03-1.eml"), dir.join("09-again.eml")).unwrap();
    let out = env.run(&[
        "ingest",
        "--parallel",
        "3",
        "--batch",
        "4",
        dir.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let again = err.lines().find(|l| l.contains("09-again.eml")).unwrap();
    assert!(again.contains(": duplicate "), "{again}");
    // Each mail is stored once, with what became of it.
    let stored: Value = env.inbound(&[]);
    let stored = stored.as_array().unwrap();
    assert_eq!(stored.len(), 3 + 24, "{stored:?}");
    assert!(
        stored.iter().all(|m| m["status"] == "applied"),
        "{stored:?}"
    );
    // Paged by ten, newest first: each mail once.
    let (mut paged, mut after) = (Vec::new(), None::<String>);
    loop {
        let mut args = vec!["inbound", "list", "--json", "--limit", "10"];
        if let Some(a) = &after {
            args.extend(["--after", a.as_str()]);
        }
        let page: Value = serde_json::from_str(&env.ok(&args)).unwrap();
        paged.extend(
            page["mails"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].clone()),
        );
        match page["next"].as_i64() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    let ids: Vec<Value> = stored.iter().map(|m| m["id"].clone()).collect();
    assert_eq!(paged, ids);
    // PostgreSQL checks no foreign keys on the rows written per mail (migration 0004): every
    // one of them points at a ticket, and at a stored mail, that exist.
    let (linked, dangling) = rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let mut linked = Vec::new();
        let mut dangling = Vec::new();
        for (table, to_mail) in [
            ("inbound_messages", false),
            ("comments", true),
            ("history", true),
            ("outbox", false),
        ] {
            let mail = if to_mail {
                "OR (x.inbound_id IS NOT NULL AND NOT EXISTS \
                 (SELECT 1 FROM inbound_messages i WHERE i.id = x.inbound_id))"
            } else {
                ""
            };
            let linked_sql = if to_mail {
                format!("SELECT COUNT(*) FROM {table} WHERE inbound_id IS NOT NULL")
            } else {
                format!("SELECT COUNT(*) FROM {table} WHERE ticket_id IS NOT NULL")
            };
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(linked_sql))
                .fetch_one(&mut c)
                .await
                .unwrap();
            let bad: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM {table} x WHERE (x.ticket_id IS NOT NULL AND NOT EXISTS \
                 (SELECT 1 FROM tickets t WHERE t.id = x.ticket_id)) {mail}"
            )))
            .fetch_one(&mut c)
            .await
            .unwrap();
            linked.push((table, n));
            dangling.push((table, bad));
        }
        (linked, dangling)
    });
    assert!(linked.iter().all(|&(_, n)| n >= 24), "{linked:?}");
    assert!(dangling.iter().all(|&(_, n)| n == 0), "{dangling:?}");
    for r in &refs {
        let texts = comment_texts(&env, r);
        let expected: Vec<String> = std::iter::once("Please.".to_string())
            .chain((0..8).map(|k| format!("Reply {k}.")))
            .collect();
        assert_eq!(texts, expected, "{r}");
    }
    // Every notification was written whole (a group's are rendered on the rendering thread).
    env.ok(&["outbox", "send"]);
    let sizes: Vec<u64> = std::fs::read_dir(env.path("data/spool"))
        .unwrap()
        .map(|f| f.unwrap().metadata().unwrap().len())
        .collect();
    assert_eq!(sizes.len(), env.outbox().len());
    assert!(
        sizes.len() >= 24 && sizes.iter().all(|&n| n > 1000),
        "{sizes:?}"
    );
    // A ticket's notifications to the team thread: each one's References name the one before
    // it, written earlier in the same run (and perhaps the same transaction).
    let mut rows = env.outbox();
    rows.sort_by_key(|m| m["id"].as_i64().unwrap());
    for r in &refs {
        let ids: Vec<String> = rows
            .iter()
            .filter(|m| m["ticket"] == r.as_str() && m["recipient"] == "team@helpdesk.example")
            .map(|m| m["message_id"].as_str().unwrap().to_string())
            .collect();
        assert!(ids.len() >= 8, "{r}: {ids:?}");
        for pair in ids.windows(2) {
            let file = deskmail::outbound::transport::spool_name(&pair[1]);
            let raw = std::fs::read(env.path(&format!("data/spool/{file}.eml"))).unwrap();
            let m = MessageParser::default().parse(&raw[..]).unwrap();
            let references = m.references().as_text_list().unwrap_or_default();
            let earlier = pair[0].trim_matches(|c| c == '<' || c == '>');
            assert!(
                references.iter().any(|id| *id == earlier),
                "{r}: {} does not name {earlier}: {references:?}",
                pair[1]
            );
        }
    }
}

#[test]
fn a_refused_mail_can_be_applied_again_once_its_sender_is_known() {
    let env = TestEnv::new();
    let mail = "From: Sam Doe <sam@newcustomer.example>\nTo: support@helpdesk.example\n\
                Subject: Printer\nMessage-ID: <sam-1@newcustomer.example>\n\nIt jams.\n";
    let (code, err) = ingest(&env, mail, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("refused"), "{err}");
    let rows = env.outbox();
    assert!(
        rows.iter()
            .any(|m| m["event"] == "refused" && m["recipient"] == "sam@newcustomer.example"),
        "the sender is told: {rows:?}"
    );
    let stored: Value = env.inbound(&["--status", "refused"]);
    let id = stored[0]["id"].as_i64().unwrap().to_string();
    // The admin adds the customer's domain to Acme, then applies the mail again.
    let config = std::fs::read_to_string(env.config()).unwrap().replace(
        "domains = [\"acme.example\"]",
        "domains = [\"acme.example\", \"newcustomer.example\"]",
    );
    std::fs::write(env.config(), config).unwrap();
    let out = env.ok(&["inbound", "retry", &id]);
    assert!(out.starts_with("applied"), "{out}");
    let list: Value = env.tickets(&[]);
    assert_eq!(list[0]["requester"], "sam@newcustomer.example");
    // Applied once: a second retry changes nothing.
    let again = env.run(&["inbound", "retry", &id]);
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(text.contains("nothing changed"), "{text}");
}

#[test]
fn an_oversized_mail_is_refused_for_its_size_and_only_its_headers_kept() {
    let mut env = TestEnv::new();
    env.set("DESKMAIL__INBOUND__MAX_MESSAGE_BYTES", "2048");
    let body = "x".repeat(3000);
    let (code, err) = ingest(
        &env,
        &format!(
            "From: anna@acme.example\nTo: support@helpdesk.example\nSubject: Big\n\
             Message-ID: <big@acme.example>\n\n{body}\n"
        ),
        &[],
    );
    // The MTA bounces it with the reason: deskmail mails nobody.
    assert_eq!(code, 65, "{err}");
    assert!(
        err.contains("more than the 2.0 KiB deskmail takes"),
        "{err}"
    );
    assert!(err.contains("only its headers are kept"), "{err}");
    let stored: Value = env.inbound(&[]);
    assert_eq!(stored[0]["status"], "refused");
    assert!(env.outbox().is_empty(), "{:?}", env.outbox());
    let id = stored[0]["id"].as_i64().unwrap().to_string();
    let err = env.fails(&["inbound", "retry", &id]);
    assert!(err.contains("only the headers"), "{err}");
}

/// The text parts of the spooled mails to `to` (after sending what is queued).
fn spooled_texts(env: &TestEnv, to: &str) -> Vec<String> {
    env.ok(&["outbox", "send"]);
    let mut out = Vec::new();
    for f in std::fs::read_dir(env.path("data/spool")).unwrap() {
        let raw = std::fs::read(f.unwrap().path()).unwrap();
        let m = MessageParser::default().parse(&raw[..]).unwrap();
        let addressed = m
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .is_some_and(|a| a == to);
        if addressed {
            out.push(m.body_text(0).unwrap_or_default().to_string());
        }
    }
    out
}

#[test]
fn a_group_renders_its_notifications_on_another_thread_and_notes_one_that_fails() {
    let env = TestEnv::new();
    // A template error at run time, for one comment only.
    std::fs::create_dir_all(env.path("my-templates/en")).unwrap();
    let base = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates/en/base.txt"
    ))
    .unwrap();
    std::fs::write(
        env.path("my-templates/en/base.txt"),
        format!("{{% if comment == \"boom\" %}}{{{{ no_such_function() }}}}{{% endif %}}{base}"),
    )
    .unwrap();
    std::fs::write(
        env.config(),
        support::example_config("templates_dir = \"my-templates\"", ""),
    )
    .unwrap();
    let r = opened(&env);
    let (token, parent, subject) = last_mail_to(&env, "anna@acme.example");
    let team_before = spooled_texts(&env, "team@helpdesk.example").len();
    // Three replies in one directory: one group, rendered on the rendering thread.
    let dir = env.path("incoming");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, body) in ["Still smoking.", "boom", "Now it is out."]
        .iter()
        .enumerate()
    {
        let mail = reply(
            "anna@acme.example",
            &token,
            &format!("Re: {subject}"),
            &parent,
            &format!("late-{i}@acme.example"),
            body,
        );
        std::fs::write(dir.join(format!("{i}.eml")), mail).unwrap();
    }
    let out = env.run(&["ingest", dir.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.contains(": applied")).count(),
        3,
        "{err}"
    );
    // Every comment is there, the one whose notification failed too.
    let texts = comment_texts(&env, &r);
    for t in ["Still smoking.", "boom", "Now it is out."] {
        assert!(texts.iter().any(|c| c == t), "{t} missing: {texts:?}");
    }
    // The team got the two that rendered, each with its own text and a whole message.
    let team = spooled_texts(&env, "team@helpdesk.example");
    assert_eq!(team.len(), team_before + 2, "{team:?}");
    for t in ["Still smoking.", "Now it is out."] {
        assert!(team.iter().any(|m| m.contains(t)), "{t}: {team:?}");
    }
    assert!(!team.iter().any(|m| m.contains("boom")), "{team:?}");
    // The one that failed is in the ticket's history, with the reason; a single mail
    // (rendered in place) that fails the same way is noted the same way.
    let noted = |env: &TestEnv| env.history_lines(&r, "not mailed to team@helpdesk.example: ");
    assert_eq!(noted(&env), 1, "{}", env.show(&r)["history"]);
    let alone = reply(
        "anna@acme.example",
        &token,
        &format!("Re: {subject}"),
        &parent,
        "late-alone@acme.example",
        "boom",
    );
    let (code, err) = ingest(&env, &alone, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(noted(&env), 2, "{}", env.show(&r)["history"]);
    assert_eq!(
        spooled_texts(&env, "team@helpdesk.example").len(),
        team_before + 2
    );
}

#[test]
fn a_long_mail_is_cut_in_its_comment_and_kept_whole() {
    let env = TestEnv::new();
    // 2 MiB of text: the comment holds the first MiB, the stored mail (in pieces) all of it.
    let lines: String = (0..40_000)
        .map(|i| format!("Line {i} of the log, with some words to make it longer.\n"))
        .collect();
    let raw = format!(
        "Return-Path: <anna@acme.example>\nFrom: Anna Example <anna@acme.example>\n\
         To: support@helpdesk.example\nSubject: A long log\nMessage-ID: <long@acme.example>\n\n{lines}"
    );
    let (code, err) = ingest_as_is(&env, &raw, &[]);
    assert_eq!(code, 0, "{err}");
    let stored: Value = env.inbound(&[]);
    let id = stored[0]["id"].as_i64().unwrap();
    let reference = stored[0]["ticket"].as_str().unwrap().to_string();
    let comment = env.show(&reference)["comments"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(comment.starts_with("Line 0 of the log"));
    assert!(
        comment.ends_with(&format!("the whole mail is kept as inbound mail #{id}.]")),
        "{}",
        &comment[comment.len() - 200..]
    );
    assert!(comment.len() < raw.len() / 2);
    let out = env.run(&["inbound", "show", &id.to_string()]);
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), raw.len());
    assert!(out.stdout == raw.as_bytes(), "the stored mail is the mail");
}
