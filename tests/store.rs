//! The storage suite, run against SQLite and against a real PostgreSQL (one fresh database per
//! test; see tests/support/pg.rs).

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use deskmail::desk::{CreateRequest, Desk, DeskError, Outcome};
use deskmail::store::{Page, TicketFilter};
use deskmail::workflow::{Actor, Intent};
use jiff::{SignedDuration, Timestamp};
use sqlx::Any;
use support::demo::{self, actor};

/// 23:30 UTC the day before [`demo::DAY`]: already that day in the help desk's zone (Berlin).
fn t0() -> Timestamp {
    demo::at("00:00") - SignedDuration::from_mins(30)
}

async fn desk(url: &str, preset: &str) -> Desk {
    support::demo_desk(url, preset).await
}

fn request(subject: &str) -> CreateRequest {
    CreateRequest {
        subject: subject.into(),
        text: "It does not work.".into(),
        source: "cli".into(),
        ..Default::default()
    }
}

fn act(action: &str, comment: Option<&str>) -> Intent {
    Intent::Act {
        action: action.into(),
        comment: comment.map(String::from),
        internal: false,
        fields: Default::default(),
    }
}

async fn create(d: &Desk, who: &str, subject: &str, now: Timestamp) -> String {
    match d
        .create(&actor(d, who), request(subject), now)
        .await
        .unwrap()
    {
        Outcome::Applied { reference, .. } => reference,
        other => panic!("create: {other:?}"),
    }
}

/// The first page of up to 100 tickets.
async fn list(
    d: &Desk,
    f: &TicketFilter,
    reader: Option<&Actor>,
) -> Vec<deskmail::workflow::Ticket> {
    let page = Page {
        after: None,
        limit: 100,
    };
    d.list(f, reader, page).await.unwrap().tickets
}

/// Row counts of every table, to see that a refused action wrote nothing.
async fn counts(url: &str) -> Vec<i64> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let mut out = Vec::new();
    for table in [
        "tickets",
        "comments",
        "history",
        "ticket_counters",
        "outbox",
        "attachments",
    ] {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let n: i64 = sqlx::query_scalar::<Any, i64>(sqlx::AssertSqlSafe(sql))
            .fetch_one(&pool)
            .await
            .unwrap();
        out.push(n);
    }
    pool.close().await;
    out
}

async fn suite(url: &str) {
    let d = desk(url, "partner-routing").await;
    // Migrating again finds nothing to do.
    assert_eq!(d.store.migrate().await.unwrap(), 0);
    assert!(d.store.is_current().await);

    // Numbers carry the date in the help desk's zone: 23:30 UTC on 21 Nov is 22 Nov in Berlin.
    let r1 = create(&d, "anna@acme.example", "Printer on fire", t0()).await;
    let r2 = create(&d, "carl@globex.example", "Website down", t0()).await;
    assert_eq!(r1, "SUP-20261122-0001");
    assert_eq!(r2, "SUP-20261122-0002");
    let next_day = t0() + SignedDuration::from_hours(24);
    assert_eq!(
        create(&d, "anna@acme.example", "Again", next_day).await,
        "SUP-20261123-0001"
    );

    // An action writes the ticket, the comment and the history together.
    let alice = actor(&d, "alice@helpdesk.example");
    let out = d
        .act(
            &r1,
            &alice,
            &act("To IT Provider", Some("Please look.")),
            &[],
            t0(),
        )
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Applied { .. }));
    let view = d.show(&r1, None).await.unwrap();
    assert_eq!(view.ticket.status, "On Partner");
    assert_eq!(view.comments.len(), 2);
    assert_eq!(view.comments[0].text, "It does not work.");
    assert_eq!(view.comments[1].text, "Please look.");
    assert!(
        view.history
            .iter()
            .any(|h| h.kind == "status" && h.detail == "New → On Partner")
    );
    assert!(
        view.history
            .iter()
            .any(|h| h.kind == "notice" && h.detail.contains("support@itprov.example"))
    );
    assert_eq!(view.ticket.created_at, t0());

    // A refused action, an unknown action and an unknown ticket change nothing.
    let before = counts(url).await;
    let anna = actor(&d, "anna@acme.example");
    let refused = d
        .act(&r1, &anna, &act("To Web-IT Provider", Some("x")), &[], t0())
        .await
        .unwrap();
    assert!(matches!(refused, Outcome::Rejected(_)));
    let unknown = d
        .act(&r1, &anna, &act("Frobnicate", Some("x")), &[], t0())
        .await
        .unwrap();
    assert!(matches!(unknown, Outcome::Rejected(r) if r.reason.code() == "unknown_action"));
    let missing = d
        .act(
            "SUP-19990101-0001",
            &anna,
            &act("comment", Some("x")),
            &[],
            t0(),
        )
        .await;
    assert!(matches!(missing, Err(DeskError::UnknownTicket(_))));
    let carl = actor(&d, "carl@globex.example");
    let hidden = d
        .act(&r1, &carl, &act("comment", Some("x")), &[], t0())
        .await;
    assert!(matches!(hidden, Err(DeskError::NotVisible { .. })));
    assert_eq!(
        counts(url).await,
        before,
        "a refused action wrote something"
    );

    // Internal comments are hidden from customers.
    d.act(
        &r1,
        &alice,
        &Intent::Comment {
            text: "Between us: the printer is ancient.".into(),
            internal: true,
        },
        &[],
        t0(),
    )
    .await
    .unwrap();
    assert_eq!(d.show(&r1, None).await.unwrap().comments.len(), 3);
    let ben = actor(&d, "ben@acme.example");
    let ben_view = d.show(&r1, Some(&ben)).await.unwrap();
    assert_eq!(ben_view.comments.len(), 2);
    assert!(ben_view.history.iter().all(|h| h.kind != "notice"));

    // Listing: newest first, filtered, and limited to what a reader may see.
    let all = list(&d, &TicketFilter::default(), None).await;
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].reference, "SUP-20261123-0001");
    let as_carl = list(&d, &TicketFilter::default(), Some(&carl)).await;
    assert_eq!(
        as_carl
            .iter()
            .map(|t| t.reference.as_str())
            .collect::<Vec<_>>(),
        vec![r2.as_str()]
    );
    let on_partner = TicketFilter {
        status: Some("on partner".into()),
        ..Default::default()
    };
    assert_eq!(list(&d, &on_partner, None).await.len(), 1);
    let created_late = TicketFilter {
        created_from: Some(next_day),
        ..Default::default()
    };
    assert_eq!(list(&d, &created_late, None).await.len(), 1);

    // Time rules: resolved for 7 days closes, once.
    d.act(&r1, &alice, &act("Resolve", Some("Done.")), &[], t0())
        .await
        .unwrap();
    let early = d
        .sweep(t0() + SignedDuration::from_hours(24 * 6))
        .await
        .unwrap();
    assert!(early.changed.is_empty());
    // Nothing due: no ticket is read, though several are open.
    assert_eq!(early.checked, 0);
    let late = d
        .sweep(t0() + SignedDuration::from_hours(24 * 7 + 1))
        .await
        .unwrap();
    assert_eq!(late.changed.len(), 1);
    assert_eq!(late.checked, 1);
    let closed = d.show(&r1, None).await.unwrap().ticket;
    assert_eq!(closed.status, "Closed");
    assert!(closed.closed_at.is_some());
    let again = d
        .sweep(t0() + SignedDuration::from_hours(24 * 30))
        .await
        .unwrap();
    assert!(again.changed.is_empty());

    // A reply to a closed ticket opens a new one that links it.
    let follow = d
        .act(
            &r1,
            &anna,
            &act("comment", Some("It burns again!")),
            &[],
            next_day,
        )
        .await
        .unwrap();
    let Outcome::FollowedUp { reference, closed } = follow else {
        panic!("{follow:?}")
    };
    assert_eq!(closed, r1);
    let new = d.show(&reference, None).await.unwrap();
    assert_eq!(new.ticket.linked_to.as_deref(), Some(r1.as_str()));
    assert_eq!(new.comments[0].text, "It burns again!");

    // Merge: the duplicate's comments move, it closes with a link.
    let dup = create(&d, "anna@acme.example", "Printer still on fire", next_day).await;
    let merged = d
        .act(
            &dup,
            &alice,
            &act(&format!("Merge into {reference}"), None),
            &[],
            next_day,
        )
        .await
        .unwrap();
    assert!(matches!(merged, Outcome::Applied { .. }), "{merged:?}");
    // Not across organisations.
    let globex = create(&d, "carl@globex.example", "Also on fire", next_day).await;
    let across = d
        .act(
            &globex,
            &alice,
            &act(&format!("Merge into {reference}"), None),
            &[],
            next_day,
        )
        .await
        .unwrap();
    assert!(
        matches!(&across, Outcome::Rejected(r) if r.reason.code() == "merge_across_organisations"),
        "{across:?}"
    );
    let dup_view = d.show(&dup, None).await.unwrap();
    assert_eq!(dup_view.ticket.status, "Closed");
    assert!(dup_view.comments.is_empty());
    assert_eq!(d.show(&reference, None).await.unwrap().comments.len(), 2);
    d.store.close().await;
}

/// A claim is a token: a sender whose claim ran out (another sender took the rows over) records
/// nothing over the other's results.
/// Due times: kept at every write, worked out again for a store that has none yet (as after
/// the migration that brought them) and when a workflow's time rules change.
async fn due_times(url: &str) {
    let d = desk(url, "partner-routing").await;
    let alice = actor(&d, "alice@helpdesk.example");
    let mut refs = Vec::new();
    for i in 0..3 {
        refs.push(create(&d, "anna@acme.example", &format!("Printer {i}"), t0()).await);
    }
    for r in &refs[..2] {
        d.act(r, &alice, &act("Resolve", Some("Done.")), &[], t0())
            .await
            .unwrap();
    }
    let day = |n: i64| t0() + SignedDuration::from_hours(24 * n);
    // The first sweep notes the time rules the due times were worked out with.
    let first = d.sweep(day(1)).await.unwrap();
    assert_eq!((first.checked, first.changed.len()), (0, 0));

    // A store from before due times: none kept, no basis noted.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    for sql in ["UPDATE tickets SET due_at = NULL", "DELETE FROM due_basis"] {
        sqlx::query::<Any>(sql).execute(&pool).await.unwrap();
    }
    let worked_out = d.sweep(day(6)).await.unwrap();
    assert_eq!(worked_out.reworked, 2, "the two resolved tickets");
    assert_eq!((worked_out.checked, worked_out.changed.len()), (0, 0));
    assert_eq!(d.sweep(day(6)).await.unwrap().reworked, 0);

    // The rule shortened to 2 days: the next sweep works the due times out again and closes.
    let mut quick = desk(url, "partner-routing").await;
    for rule in &mut quick.settings.workflow.rules {
        if rule.after.is_some() {
            rule.after = Some("2d".into());
        }
    }
    let swept = quick.sweep(day(3)).await.unwrap();
    assert_eq!(swept.reworked, 2);
    let mut closed: Vec<String> = swept.changed.into_iter().map(|(r, _)| r).collect();
    closed.sort();
    let mut resolved = refs[..2].to_vec();
    resolved.sort();
    assert_eq!(closed, resolved);
    assert_eq!(d.show(&refs[2], None).await.unwrap().ticket.status, "New");
    // Closed tickets are due no more.
    let due: i64 =
        sqlx::query_scalar::<Any, i64>("SELECT COUNT(*) FROM tickets WHERE due_at IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(due, 0);

    // A state made closed since: its tickets' due times kept from before fire nothing.
    d.act(
        &refs[2],
        &alice,
        &act("Resolve", Some("Done.")),
        &[],
        day(3),
    )
    .await
    .unwrap();
    let mut closing = desk(url, "partner-routing").await;
    for state in &mut closing.settings.workflow.states {
        if state.name == "Resolved" {
            state.kind = deskmail::workflow::StateKind::Closed;
        }
    }
    let swept = closing.sweep(day(11)).await.unwrap();
    assert!(swept.changed.is_empty(), "{:?}", swept.changed);
    assert_eq!(swept.checked, 1);
    assert_eq!(
        d.show(&refs[2], None).await.unwrap().ticket.status,
        "Resolved"
    );
    assert_eq!(
        closing.sweep(day(12)).await.unwrap().checked,
        0,
        "set right"
    );
    pool.close().await;
}

/// Pages of `ticket list`: each ticket there at the start exactly once, newest first, while new
/// tickets arrive; readers page through what they may see.
async fn paging(url: &str) {
    let d = desk(url, "partner-routing").await;
    let alice = actor(&d, "alice@helpdesk.example");
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(create(&d, "anna@acme.example", &format!("Request {i}"), t0()).await);
    }
    let pages = |reader: Option<Actor>, limit: i64| {
        let d = &d;
        async move {
            let (mut seen, mut after, mut pages) = (Vec::new(), None::<String>, 0);
            loop {
                let page = Page {
                    after: after.as_deref(),
                    limit,
                };
                let got = d
                    .list(&TicketFilter::default(), reader.as_ref(), page)
                    .await
                    .unwrap();
                pages += 1;
                seen.extend(got.tickets.iter().map(|t| t.reference.clone()));
                if reader.is_none() {
                    // A new ticket between pages: newer than every page after the first.
                    create(d, "carl@globex.example", "Arrived meanwhile", t0()).await;
                }
                match got.next {
                    Some(next) => after = Some(next),
                    None => return (seen, pages),
                }
            }
        }
    };
    let (seen, count) = pages(None, 3).await;
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
    assert_eq!(count, 3);

    // Ben (Acme's power user) sees Acme's seven, not Globex's; Carl sees only his own.
    let (ben, _) = pages(Some(actor(&d, "ben@acme.example")), 2).await;
    assert_eq!(ben, newest_first);
    let (carl, _) = pages(Some(actor(&d, "carl@globex.example")), 2).await;
    assert_eq!(carl.len(), 3);
    assert!(carl.iter().all(|r| !made.contains(r)));

    // A partner sees the tickets it is involved in, and no more once uninvolved.
    for r in &made[..2] {
        d.act(r, &alice, &act("Involve OS/HCMS Support", None), &[], t0())
            .await
            .unwrap();
    }
    let ops = || Some(actor(&d, "hcms@oshcms.example"));
    assert_eq!(
        pages(ops(), 1).await.0,
        vec![made[1].clone(), made[0].clone()]
    );
    d.act(
        &made[1],
        &alice,
        &act("Uninvolve OS/HCMS Support", None),
        &[],
        t0(),
    )
    .await
    .unwrap();
    assert_eq!(pages(ops(), 1).await.0, vec![made[0].clone()]);
    // A filter and a reader together; text filters ignore case.
    let new = TicketFilter {
        status: Some("new".into()),
        ..Default::default()
    };
    let first = Page {
        after: None,
        limit: 50,
    };
    let anna = actor(&d, "anna@acme.example");
    assert_eq!(
        d.list(&new, Some(&anna), first)
            .await
            .unwrap()
            .tickets
            .len(),
        7
    );
}

async fn claims(url: &str) {
    let d = desk(url, "partner-routing").await;
    create(&d, "anna@acme.example", "Claims", t0()).await;
    let first = d
        .store
        .claim_due(t0(), t0() + SignedDuration::from_secs(60), 10, None)
        .await
        .unwrap();
    assert_eq!(first.len(), 2, "the acknowledgement and the team's notice");
    // Claimed rows are not handed out again while the claim holds...
    let during = d
        .store
        .claim_due(
            t0() + SignedDuration::from_secs(30),
            t0() + SignedDuration::from_secs(90),
            10,
            None,
        )
        .await
        .unwrap();
    assert!(during.is_empty());
    // ...but are once it has run out.
    let later = t0() + SignedDuration::from_secs(120);
    let second = d
        .store
        .claim_due(later, later + SignedDuration::from_secs(60), 10, None)
        .await
        .unwrap();
    assert_eq!(second.len(), 2);
    let (a, b) = (&first[0], &second[0]);
    assert_eq!(a.id, b.id);
    // The first sender's late result changes nothing; the second sender's counts.
    d.store
        .mark_retry(a.id, a.claimed_until, later, "late")
        .await
        .unwrap();
    d.store
        .mark_sent(&[(b.id, b.claimed_until)], later)
        .await
        .unwrap();
    d.store
        .mark_failed(a.id, a.claimed_until, "late")
        .await
        .unwrap();
    let rows = d.store.outbox(None, None, 10).await.unwrap();
    let row = rows.iter().find(|r| r.id == a.id).unwrap();
    assert_eq!(row.status, "sent");
    assert_eq!(row.last_error, None);
    // The other notification's claim runs out.
    bodies(&d, url, later + SignedDuration::from_secs(120)).await;
    d.store.close().await;
}

/// Messages come back whole, one of several MiB too; once sent and old enough their bodies
/// are dropped (chunks and pieces deleted), their rows stay.
async fn bodies(d: &Desk, url: &str, now: Timestamp) {
    // Not compressible: several pieces once packed.
    let mut rng = support::numbers::Rng(7);
    let big: Vec<u8> = (0..(3 << 20)).map(|_| rng.next() as u8).collect();
    let mut tx = d.store.begin().await.unwrap();
    tx.insert_outbox(&[deskmail::store::NewOutboxRow {
        ticket_id: None,
        event: "commented",
        recipient: "team@helpdesk.example",
        envelope_from: "support@helpdesk.example",
        message_id: "<big@helpdesk.example>",
        subject: "big",
        raw: &big,
        at: now,
        unverified: false,
    }])
    .await
    .unwrap();
    // Two whose messages are made while the transaction goes on, one longer than a piece.
    let late_big: Vec<u8> = big[..(3 << 19)].to_vec();
    let mut late = Vec::new();
    let mut senders = Vec::new();
    for id in [
        "<late-small@helpdesk.example>",
        "<late-big@helpdesk.example>",
    ] {
        let (send, made) = tokio::sync::oneshot::channel();
        senders.push(send);
        late.push(deskmail::store::LateMessage {
            message_id: id.into(),
            made,
            ticket_id: 0,
            actor: "a".into(),
            action: "comment".into(),
            at: now,
            not_mailed: "not mailed to team@helpdesk.example".into(),
        });
    }
    let row = |message_id| deskmail::store::NewOutboxRow {
        ticket_id: None,
        event: "commented",
        recipient: "team@helpdesk.example",
        envelope_from: "support@helpdesk.example",
        message_id,
        subject: "late",
        raw: b"",
        at: now,
        unverified: false,
    };
    tx.insert_outbox_late(
        &[
            row("<late-small@helpdesk.example>"),
            row("<late-big@helpdesk.example>"),
        ],
        late,
    )
    .await
    .unwrap();
    let mut senders = senders.into_iter();
    let small: &[u8] = b"a small late message";
    senders
        .next()
        .unwrap()
        .send(Ok(deskmail::store::pack(small)))
        .unwrap();
    senders
        .next()
        .unwrap()
        .send(Ok(deskmail::store::pack(&late_big)))
        .unwrap();
    tx.commit().await.unwrap();
    let until = now + SignedDuration::from_secs(60);
    let claimed = d.store.claim_due(now, until, 10, None).await.unwrap();
    let ids: Vec<(i64, i64)> = claimed.iter().map(|c| (c.id, c.claimed_until)).collect();
    for c in &claimed {
        if c.message_id == "<big@helpdesk.example>" {
            assert!(c.raw == big, "the big message comes back whole");
        } else if c.message_id == "<late-big@helpdesk.example>" {
            assert!(c.raw == late_big, "the big late message comes back whole");
        } else if c.message_id == "<late-small@helpdesk.example>" {
            assert_eq!(c.raw, small);
        } else {
            let text = String::from_utf8_lossy(&c.raw);
            let id = format!("Message-ID: {}", c.message_id);
            assert!(
                text.contains(&id) && text.trim_end().ends_with("--"),
                "{text}"
            );
        }
    }
    assert_eq!(
        claimed.len(),
        4,
        "the one not sent yet, the big one, the two late ones"
    );
    d.store.mark_sent(&ids, now).await.unwrap();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let count = |table: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<Any, i64>(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM {table}"
            )))
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    // The first MiB, packed, in chunks of 1,000 bytes.
    assert!(count("outbox_bodies").await > 1 << 10);
    assert!(count("pieces").await >= 3, "what follows the first MiB");
    let later = now + SignedDuration::from_secs(3600);
    let dropped = d.store.drop_sent_bodies(later, 100).await.unwrap();
    assert_eq!(dropped, 5, "the five sent");
    assert_eq!(count("outbox_bodies").await, 0);
    assert_eq!(count("pieces").await, 0);
    assert_eq!(count("outbox").await, 5, "the rows stay");
    assert_eq!(d.store.drop_sent_bodies(later, 100).await.unwrap(), 0);
    pool.close().await;
}

/// Many creators at once on two separate pools (as two processes would be) never share a number.
async fn concurrent_numbers(url: &str) {
    let a = Arc::new(desk(url, "partner-routing").await);
    let b = Arc::new(desk(url, "partner-routing").await);
    let mut set = tokio::task::JoinSet::new();
    for d in [&a, &b] {
        for _ in 0..20 {
            let d = Arc::clone(d);
            set.spawn(async move { create(&d, "anna@acme.example", "same time", t0()).await });
        }
    }
    let refs: Vec<String> = set.join_all().await;
    let unique: BTreeSet<&String> = refs.iter().collect();
    assert_eq!(unique.len(), 40, "duplicate numbers: {refs:?}");
    assert!(
        unique.contains(&"SUP-20261122-0040".to_string()),
        "{refs:?}"
    );
}

/// A transaction commits all of its writes or none: dropped unfinished, or failing at commit,
/// it leaves nothing behind and the next transaction works; writers of one process queue.
async fn transactions(url: &str) {
    use deskmail::store::NewCommentRow;
    let d = desk(url, "partner-routing").await;
    let reference = create(&d, "anna@acme.example", "Printer on fire", t0()).await;
    let id = d.store.ticket(&reference).await.unwrap().unwrap().id;
    let comment = |ticket_id: i64, text: &'static str| NewCommentRow {
        ticket_id,
        author: "alice@helpdesk.example",
        role: "agent",
        text,
        visibility: "public",
        inbound_id: None,
        verified_by: "cli",
        at: t0(),
    };
    let texts = |d: &Desk| {
        let store = d.store.clone();
        async move {
            store
                .comments(id)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.text)
                .collect::<Vec<_>>()
        }
    };
    let before = texts(&d).await;

    // Dropped after its writes went out (the read sends them): rolled back.
    let mut tx = d.store.begin().await.unwrap();
    tx.add_comment(&comment(id, "dropped")).await.unwrap();
    assert!(tx.ticket_for_update(&reference).await.unwrap().is_some());
    drop(tx);
    // Failing at commit (a notification's Message-ID used twice): nothing of it stays, the
    // error says why.
    let mut tx = d.store.begin().await.unwrap();
    tx.add_comment(&comment(id, "with a bad one"))
        .await
        .unwrap();
    let twice = deskmail::store::NewOutboxRow {
        ticket_id: Some(id),
        event: "commented",
        recipient: "anna@acme.example",
        envelope_from: "support@helpdesk.example",
        message_id: "<twice@helpdesk.example>",
        subject: "twice",
        raw: b"Subject: twice\r\n\r\nx\r\n",
        at: t0(),
        unverified: false,
    };
    tx.insert_outbox(std::slice::from_ref(&twice))
        .await
        .unwrap();
    tx.insert_outbox(std::slice::from_ref(&twice))
        .await
        .unwrap();
    let err = tx.commit().await.unwrap_err();
    assert!(!err.is_temporary(), "{err}");
    assert_eq!(texts(&d).await, before);

    // A statement that is not kept back, as the first of a transaction, runs inside it: it
    // goes out after the `BEGIN`, so dropping the transaction undoes it.
    let mut tx = d.store.begin().await.unwrap();
    tx.insert_comment(&comment(id, "returned an id"))
        .await
        .unwrap();
    drop(tx);
    let mut tx = d.store.begin().await.unwrap();
    assert_eq!(tx.move_comments(id, id).await.unwrap(), before.len() as u64);
    tx.reopen_inbound(0).await.unwrap();
    drop(tx);
    assert_eq!(texts(&d).await, before);

    // Nothing sent, nothing to commit.
    d.store.begin().await.unwrap().commit().await.unwrap();

    // Two writers of one process: the second waits for the first and both commit.
    let mut first = d.store.begin().await.unwrap();
    first.add_comment(&comment(id, "first")).await.unwrap();
    assert!(first.ticket_for_update(&reference).await.unwrap().is_some());
    let store = d.store.clone();
    let second = tokio::spawn(async move {
        let mut tx = store.begin().await.unwrap();
        tx.add_comment(&comment(id, "second")).await.unwrap();
        tx.commit().await.unwrap();
    });
    tokio::task::yield_now().await;
    first.commit().await.unwrap();
    second.await.unwrap();
    let mut expected = before.clone();
    expected.extend(["first".to_string(), "second".to_string()]);
    assert_eq!(texts(&d).await, expected);
    d.store.close().await;
}

/// Every read in a transaction sees the writes it kept back, whatever it declared it reads:
/// a ticket changed, a notification queued, an address marked failing.
async fn reads_see_kept_back_writes(url: &str) {
    use deskmail::store::NewOutboxRow;
    use deskmail::workflow::rules::Due;
    let d = desk(url, "partner-routing").await;
    let reference = create(&d, "anna@acme.example", "Printer on fire", t0()).await;
    let mut tx = d.store.begin().await.unwrap();
    let rec = tx.ticket_for_update(&reference).await.unwrap().unwrap();
    let mut changed = rec.ticket.clone();
    changed.subject = "Printer still on fire".into();
    tx.update_ticket(rec.id, &changed, Due::NONE).await.unwrap();
    let read = tx.ticket_by_id(rec.id).await.unwrap().unwrap();
    assert_eq!(read.ticket.subject, "Printer still on fire");
    let to = "team@helpdesk.example".to_string();
    let row = NewOutboxRow {
        ticket_id: Some(rec.id),
        event: "commented",
        recipient: &to,
        envelope_from: "support@helpdesk.example",
        message_id: "<kept@helpdesk.example>",
        subject: "kept",
        raw: b"Subject: kept\r\n\r\nx\r\n",
        at: t0(),
        unverified: false,
    };
    let sent = |state: deskmail::store::OutboxState| state.per_hour.values().sum::<i64>();
    let outside = std::slice::from_ref(&to);
    let before = sent(
        tx.outbox_state(rec.id, &[], outside, false, t0())
            .await
            .unwrap(),
    );
    tx.insert_outbox(std::slice::from_ref(&row)).await.unwrap();
    let after = sent(
        tx.outbox_state(rec.id, &[], outside, false, t0())
            .await
            .unwrap(),
    );
    assert_eq!(after, before + 1);
    let ids = vec!["<kept@helpdesk.example>".to_string()];
    let found = tx.tickets_by_message_ids(&ids).await.unwrap();
    assert_eq!(found, [(ids[0].clone(), reference.clone())]);
    tx.mark_failing(&to, "5.1.1", t0()).await.unwrap();
    let state = tx
        .outbox_state(rec.id, std::slice::from_ref(&to), &[], false, t0())
        .await
        .unwrap();
    assert_eq!(state.failing.get(&to).map(String::as_str), Some("5.1.1"));
    tx.commit().await.unwrap();
    d.store.close().await;
}

/// The mails counted per recipient on a ticket since `t0()`.
async fn counted(tx: &mut deskmail::store::Tx, ticket: i64, team: &[String]) -> i64 {
    let state = tx
        .outbox_state(ticket, team, &[], true, t0())
        .await
        .unwrap();
    state.per_thread.values().sum()
}

/// A savepoint rollback leaves nothing the transaction remembered behind: the ticket as read
/// inside it and the notifications counted inside it are read again afterwards.
async fn savepoints(url: &str) {
    use deskmail::store::NewOutboxRow;
    use deskmail::workflow::rules::Due;
    let d = desk(url, "partner-routing").await;
    let reference = create(&d, "anna@acme.example", "Printer on fire", t0()).await;
    let team = vec!["team@helpdesk.example".to_string()];
    let mut tx = d.store.begin().await.unwrap();
    let rec = tx.ticket_for_update(&reference).await.unwrap().unwrap();
    let before = counted(&mut tx, rec.id, &team).await;
    tx.savepoint().await.unwrap();
    let mut changed = rec.ticket.clone();
    changed.subject = "Printer still on fire".into();
    tx.update_ticket(rec.id, &changed, Due::NONE).await.unwrap();
    let read = tx.ticket_for_update(&reference).await.unwrap().unwrap();
    assert_eq!(read.ticket.subject, "Printer still on fire");
    let row = NewOutboxRow {
        ticket_id: Some(rec.id),
        event: "commented",
        recipient: &team[0],
        envelope_from: "support@helpdesk.example",
        message_id: "<undone@helpdesk.example>",
        subject: "undone",
        raw: b"Subject: undone\r\n\r\nx\r\n",
        at: t0(),
        unverified: false,
    };
    tx.insert_outbox(std::slice::from_ref(&row)).await.unwrap();
    assert_eq!(counted(&mut tx, rec.id, &team).await, before + 1);
    tx.rollback_to_savepoint().await.unwrap();
    let read = tx.ticket_for_update(&reference).await.unwrap().unwrap();
    assert_eq!(read.ticket.subject, "Printer on fire");
    assert_eq!(counted(&mut tx, rec.id, &team).await, before);
    tx.commit().await.unwrap();
    d.store.close().await;
}

on_each_dialect! {
    transactions => transactions;
    store_suite => suite;
    paging => paging;
    due_times => due_times;
    claims => claims;
    concurrent_creation => concurrent_numbers;
    savepoints => savepoints;
    reads_see_kept_back_writes => reads_see_kept_back_writes;
}
