//! Outbound benchmark: `cargo bench --bench outbound` (needs root and the packages of
//! scripts/test-setup.sh for the delivery part).
//!
//! 1. Render + build: templates and MIME for one notification, no database.
//! 2. Render + enqueue: the same written to the outbox on SQLite (WAL, synchronous=FULL), 500
//!    changes per transaction, as the desk does inside a change's transaction.
//! 3. Delivery to a real Postfix on loopback: deskmail's sender over 1 and 4 connections, next to
//!    Python's smtplib sending the same messages over one connection, in the same run.
//!
//! Every figure is the median of RUNS runs; the variants alternate within each round.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Instant;

use deskmail::desk::{CreateRequest, Desk, Outcome};
use deskmail::outbound::Transport;
use deskmail::workflow::{self, Decision, Effects, Intent};
use jiff::Timestamp;
use support::demo::actor;
use support::dialects::sqlite_url;
use support::mailstack::MailStack;
use support::numbers::median;

const RUNS: usize = 5;
const NOTIFICATIONS: usize = 10_000;
const DELIVERIES: usize = 1_000;

async fn desk_at(dir: &std::path::Path, smtp: Option<&MailStack>, connections: usize) -> Desk {
    let env = support::TestEnv::new();
    let smtp = smtp.map(|s| s.smtp_config(connections)).unwrap_or_default();
    let config =
        support::example_config("loop_limit_per_hour = 0\nloop_limit_per_thread = 0", &smtp);
    std::fs::write(env.config(), config).unwrap();
    let mut settings = deskmail::config::load(&env.config()).unwrap();
    settings.outbound.secret_file = dir.join("reply.key");
    settings.outbound.spool_dir = dir.join("spool");
    let outbound = deskmail::outbound::Outbound::open(&settings.outbound).unwrap();
    let url = sqlite_url(dir, "bench.sqlite");
    let store = deskmail::store::Store::open(&url).await.unwrap();
    Desk::new(settings, store, outbound)
}

/// Tickets and the effects of "To Customer" on each (two notifications: the customer group and
/// the requester), with a realistic comment.
async fn prepare(d: &Desk, tickets: usize) -> Vec<(i64, Option<String>, Effects)> {
    let anna = actor(d, "anna@acme.example");
    let alice = actor(d, "alice@helpdesk.example");
    let comment = "Thanks for the log files. The printer driver crashes when the spooler restarts; \
                   please install the update from the vendor and restart the machine.\n\nBest regards\nAlice"
        .repeat(3);
    let mut out = Vec::new();
    for i in 0..tickets {
        let req = CreateRequest {
            subject: format!("Printer {i} does not print"),
            text: "It shows an error.".into(),
            source: "cli".into(),
            ..Default::default()
        };
        let Outcome::Applied { reference, .. } =
            d.create(&anna, req, Timestamp::now()).await.unwrap()
        else {
            panic!("create");
        };
        let rec = d.store.ticket(&reference).await.unwrap().unwrap();
        let intent = Intent::Act {
            action: "To Customer".into(),
            comment: Some(comment.clone()),
            internal: false,
            fields: BTreeMap::new(),
        };
        let workflow::Outcome::Decided(Decision::Apply(e)) = workflow::act(
            &d.settings.workflow,
            &d.settings.directory,
            &rec.ticket,
            &alice,
            &intent,
            Timestamp::now(),
        ) else {
            panic!("act");
        };
        out.push((rec.id, rec.thread_root.clone(), *e));
    }
    out
}

/// Writes `n` notifications through the desk's enqueue, `per_tx` changes per transaction;
/// returns notifications per second.
async fn enqueue(
    d: &Desk,
    work: &[(i64, Option<String>, Effects)],
    n: usize,
    per_tx: usize,
) -> f64 {
    let alice = actor(d, "alice@helpdesk.example");
    let per_change = work[0].2.notices.len();
    let changes = n / per_change;
    let start = Instant::now();
    let mut done = 0;
    while done < changes {
        let mut tx = d.store.begin().await.unwrap();
        for k in done..(done + per_tx).min(changes) {
            let (id, root, e) = &work[k % work.len()];
            let change = deskmail::desk::Change {
                ticket_id: *id,
                thread_root: root.as_deref(),
                author: deskmail::desk::Author::new(&alice),
                inbound: None,
                now: Timestamp::now(),
            };
            d.enqueue(&mut tx, &change, e, &[], None).await.unwrap();
        }
        tx.commit().await.unwrap();
        done += per_tx;
    }
    (changes * per_change) as f64 / start.elapsed().as_secs_f64()
}

/// Renders and builds `n` notifications without a database.
fn render_build(d: &Desk, work: &[(i64, Option<String>, Effects)], n: usize) -> f64 {
    use deskmail::outbound::compose::{self, ContextInput};
    use deskmail::outbound::message;
    let alice = d.person("alice@helpdesk.example").unwrap();
    let dir = &d.settings.directory;
    let start = Instant::now();
    let mut count = 0;
    let mut bytes = 0;
    'outer: for round in 0.. {
        for (_, _, e) in work {
            for p in compose::plan(dir, e, &alice.address, false) {
                let allowed = compose::allowed_for(&d.settings.workflow, dir, &e.ticket, &p.person);
                let reply_to = d.outbound.key.reply_address(
                    &dir.helpdesk.address,
                    &e.ticket.reference,
                    &p.address,
                );
                let ctx = compose::context(ContextInput {
                    dir,
                    effects: e,
                    planned: &p,
                    actor: &alice,
                    unverified: false,
                    comment_budget: compose::comment_budget(10 << 20),
                    allowed: &allowed,
                    reply_to: &reply_to,
                    ask: Default::default(),
                    attachments: Vec::new(),
                    refusal: None,
                    now: Timestamp::now(),
                    comment_action: "comment",
                });
                let body = d.outbound.templates.render(&p.event, "en", &ctx).unwrap();
                let mail = message::Mail {
                    from_name: dir.helpdesk.name.clone(),
                    from_address: dir.helpdesk.address.clone(),
                    to: p.address.clone(),
                    to_name: String::new(),
                    reply_to,
                    subject: e.ticket.subject.clone(),
                    reference: e.ticket.reference.clone(),
                    message_id: format!("<bench.{round}.{count}@helpdesk.example>"),
                    in_reply_to: None,
                    references: Vec::new(),
                    thread_index: message::thread_index(
                        "<root@x>",
                        e.ticket.created_at,
                        Timestamp::now(),
                        1,
                    ),
                    date: Timestamp::now(),
                    body,
                    attachments: Vec::new(),
                };
                bytes += message::build(&mail).unwrap().len();
                count += 1;
                if count >= n {
                    break 'outer;
                }
            }
        }
    }
    assert!(bytes > 0);
    count as f64 / start.elapsed().as_secs_f64()
}

/// Python's smtplib over one connection, sending the given messages; messages per second.
fn python_baseline(port: u16, dir: &std::path::Path) -> f64 {
    let script = r#"
import smtplib, sys, os, time
port, folder = int(sys.argv[1]), sys.argv[2]
msgs = [open(os.path.join(folder, f), 'rb').read() for f in sorted(os.listdir(folder))]
s = smtplib.SMTP('127.0.0.1', port)
t = time.perf_counter()
for m in msgs:
    s.sendmail('support@helpdesk.example', ['anna@acme.example'], m)
dt = time.perf_counter() - t
s.quit()
print(len(msgs) / dt)
"#;
    support::python_figure(script, &[&port.to_string(), dir.to_str().unwrap()])
}

async fn deliver(stack: &MailStack, connections: usize, sample: &std::path::Path) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let d = desk_at(dir.path(), Some(stack), connections).await;
    let work = prepare(&d, 20).await;
    // Everything to one mailbox, like the baseline: anna is the requester of every ticket.
    let to_anna: Vec<(i64, Option<String>, Effects)> = work
        .into_iter()
        .map(|(id, root, mut e)| {
            e.notices
                .retain(|n| n.audience == workflow::Audience::Requester);
            (id, root, e)
        })
        .collect();
    d.send_outbox(
        &Transport::from_settings(&d.settings.outbound).unwrap(),
        &Timestamp::now,
    )
    .await
    .unwrap();
    enqueue(&d, &to_anna, DELIVERIES, 500).await;
    if std::fs::read_dir(sample).unwrap().next().is_none() {
        // The baseline sends exactly these messages.
        for (i, row) in d
            .store
            .claim_due(Timestamp::now(), Timestamp::now(), 1_000_000, None)
            .await
            .unwrap()
            .iter()
            .enumerate()
        {
            std::fs::write(sample.join(format!("{i:06}.eml")), &row.raw).unwrap();
        }
        return 0.0;
    }
    let transport = Transport::from_settings(&d.settings.outbound).unwrap();
    let start = Instant::now();
    let report = d.send_outbox(&transport, &Timestamp::now).await.unwrap();
    let rate = report.sent as f64 / start.elapsed().as_secs_f64();
    assert_eq!(report.sent, DELIVERIES, "{report:?}");
    rate
}

/// Pins this process's threads created from now on (and this one) to the given CPUs; returns
/// the previous set. The targets are "on one core": the database's worker thread shares it.
fn pin(cpus: Option<&libc::cpu_set_t>) -> libc::cpu_set_t {
    // SAFETY: plain libc calls on a zeroed, correctly sized cpu_set_t owned here.
    unsafe {
        let mut old: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut old);
        let set = cpus.copied().unwrap_or_else(|| {
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut one);
            one
        });
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        old
    }
}

fn main() {
    // Rendering and queueing run on one core, the database's thread included: the runtime and
    // the store are created after pinning.
    let all = pin(None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(one_core());
    drop(rt);
    pin(Some(&all));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(delivery());
}

async fn one_core() {
    println!("deskmail outbound benchmark ({RUNS} runs each, medians)");
    let dir = tempfile::tempdir().unwrap();
    let d = desk_at(dir.path(), None, 1).await;
    // 10,000 notifications a run over 2,000 tickets: a busy help desk's mix, not one thread.
    let work = prepare(&d, 2000).await;
    let mut rb = Vec::new();
    let mut enq = Vec::new();
    for _ in 0..RUNS {
        rb.push(render_build(&d, &work, NOTIFICATIONS));
        enq.push(enqueue(&d, &work, NOTIFICATIONS, 500).await);
    }
    println!(
        "render + build (no database):            {:>9.0} notifications/s",
        median(rb)
    );
    println!(
        "render + enqueue (SQLite, 500 per tx):   {:>9.0} notifications/s",
        median(enq)
    );
}

async fn delivery() {
    let Some(stack) = MailStack::start(false) else {
        println!("delivery: skipped (DESKMAIL_TEST_MAIL=skip)");
        return;
    };
    let sample = tempfile::tempdir().unwrap();
    deliver(&stack, 1, sample.path()).await;
    let (mut py, mut one, mut four) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        py.push(python_baseline(stack.smtp_port, sample.path()));
        one.push(deliver(&stack, 1, sample.path()).await);
        four.push(deliver(&stack, 4, sample.path()).await);
    }
    let (py, one, four) = (median(py), median(one), median(four));
    println!(
        "delivery to Postfix, {DELIVERIES} mails of ~{} bytes:",
        avg_size(sample.path())
    );
    println!("  python smtplib, 1 connection:          {py:>9.0} mails/s");
    println!(
        "  deskmail, 1 connection:                {one:>9.0} mails/s  (ratio {:.2})",
        one / py
    );
    println!(
        "  deskmail, 4 connections:               {four:>9.0} mails/s  (ratio {:.2})",
        four / py
    );
}

fn avg_size(dir: &std::path::Path) -> usize {
    let sizes: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();
    (sizes.iter().sum::<u64>() / sizes.len().max(1) as u64) as usize
}
