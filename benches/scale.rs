//! Scale benchmark: `cargo bench --bench scale`. Not in CI: at its default size it needs about
//! 10 GB of disk (in `DESKMAIL_BENCH_DIR`, /var/tmp) and 40 minutes.
//!
//! Two SQLite stores are built through the real ingest path (`deskmail ingest` of new
//! requests, a Maildir of 20,000 at a time): a small one of 2,000 tickets and a big one of
//! `DESKMAIL_BENCH_TICKETS` (1,000,000), with `store.cache_mib` from `DESKMAIL_BENCH_CACHE_MIB`
//! when set. Every request comes from a customer of Acme (nine in
//! ten; Anna sends one in a thousand) or Globex and makes two notifications (the requester's
//! acknowledgement and the team's). Sending them is left out: they are marked sent in SQL, a
//! month before the measurements' `now`.
//!
//! On each store, side by side, every command as its own process (`/usr/bin/time` gives its
//! peak resident memory; the time is the process's from start to exit, median of 5 runs):
//! `sweep` with nothing due and with 1,000 tickets due, each list's first page and a page deep
//! inside (`--after`), as an agent, as a power user (Ben, who sees Acme's nine in ten) and as a
//! portal user (Anna); `ticket show`. Then replies spread over all tickets and concentrated on
//! the newest 2,000 (3 runs alternating): 2,000 at a time grouped as a backlog is, and 500 with
//! one commit per mail, as the daemon takes a reply that arrives alone; the database's size per ticket and
//! the outbox's unused space inside its pages (its rows and its messages, `outbox_bodies`:
//! SQLite's `dbstat`), before and after the sent bodies are dropped.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use sqlx::{Any, AnyPool};
use support::dialects::sqlite_url;
use support::numbers::{Rng, median, peak_mib};
use support::without_deskmail_env;

/// Mails per Maildir handed to one `deskmail ingest`.
const CHUNK: usize = 20_000;
const RUNS: usize = 5;
const REPLIES: usize = 2_000;

/// A store under `dir`: its config and its URL.
struct Store {
    dir: PathBuf,
    config: PathBuf,
    url: String,
    tickets: usize,
}

impl Store {
    fn new(dir: &Path, tickets: usize) -> Store {
        std::fs::create_dir_all(dir).unwrap();
        let url = sqlite_url(dir, "deskmail.sqlite");
        // DESKMAIL_BENCH_CACHE_MIB sets store.cache_mib.
        let cache = std::env::var("DESKMAIL_BENCH_CACHE_MIB")
            .map(|c| format!("\ncache_mib = {c}"))
            .unwrap_or_default();
        let text = support::read("deskmail.example.toml")
            .replace(
                "url = \"sqlite://data/deskmail.sqlite\"",
                &format!("url = \"{url}\"{cache}"),
            )
            .replace(
                "secret_file = \"data/reply-token.key\"",
                "secret_file = \"reply.key\"",
            )
            .replace("spool_dir = \"data/spool\"", "spool_dir = \"spool\"")
            .replace("loop_limit_per_hour = 30", "loop_limit_per_hour = 0")
            .replace("loop_limit_per_thread = 10", "loop_limit_per_thread = 0");
        let config = dir.join("deskmail.toml");
        std::fs::write(&config, text).unwrap();
        std::fs::write(dir.join("reply.key"), "bench-secret-0123456789abcdef").unwrap();
        Store {
            dir: dir.to_path_buf(),
            config,
            url,
            tickets,
        }
    }

    /// `deskmail --config ... ARGS`, timed, with its peak memory: (seconds, MiB, stdout).
    fn run(&self, args: &[&str]) -> (f64, f64, String) {
        let report = self.dir.join("time.txt");
        let t = Instant::now();
        let out = without_deskmail_env(Command::new("/usr/bin/time").env_remove("RUST_LOG"))
            .arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&report)
            .arg(env!("CARGO_BIN_EXE_deskmail"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("GNU time (/usr/bin/time)");
        let secs = t.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "deskmail {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            secs,
            peak_mib(&report),
            String::from_utf8_lossy(&out.stdout).into(),
        )
    }

    /// Medians of RUNS runs: milliseconds and MiB.
    fn measure(&self, args: &[&str]) -> (f64, f64) {
        let runs: Vec<(f64, f64)> = (0..RUNS)
            .map(|_| {
                let (s, m, _) = self.run(args);
                (s * 1000.0, m)
            })
            .collect();
        (
            median(runs.iter().map(|r| r.0).collect()),
            median(runs.iter().map(|r| r.1).collect()),
        )
    }

    async fn pool(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPool::connect(&self.url).await.unwrap()
    }
}

/// A customer's new request, number `i`.
fn request(i: usize, rng: &mut Rng) -> String {
    let from = if i % 1000 == 7 {
        "anna@acme.example".to_string()
    } else if rng.below(10) == 0 {
        format!("c{}@globex.example", rng.below(500))
    } else {
        format!("c{}@acme.example", rng.below(5000))
    };
    format!(
        "From: {from}\r\nTo: support@helpdesk.example\r\nSubject: Printer {i} does not print\r\n\
         Message-ID: <req-{i}@bench.example>\r\nDate: Sun, 06 Dec 2026 09:00:00 +0000\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nThe printer on floor {} shows error {i}.\r\n\
         It worked yesterday. Could someone have a look?\r\n\r\nThanks\r\n",
        i % 9
    )
}

/// Takes the mails in from a Maildir of their own; mails per second and peak MiB.
fn ingest(store: &Store, mails: &[String]) -> (f64, f64) {
    ingest_with(store, mails, &[])
}

/// [`ingest`] with more arguments for `deskmail ingest`.
fn ingest_with(store: &Store, mails: &[String], args: &[&str]) -> (f64, f64) {
    let md = store.dir.join("Maildir");
    let _ = std::fs::remove_dir_all(&md);
    std::fs::create_dir_all(md.join("new")).unwrap();
    std::fs::create_dir_all(md.join("cur")).unwrap();
    for (i, m) in mails.iter().enumerate() {
        std::fs::write(md.join("new").join(format!("{i:06}.eml")), m).unwrap();
    }
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let mut command = vec!["ingest"];
    command.extend_from_slice(args);
    command.push(md.to_str().unwrap());
    let (secs, mib, _) = store.run(&command);
    std::fs::remove_dir_all(&md).unwrap();
    (mails.len() as f64 / secs, mib)
}

/// Builds the store: its tickets, their notifications marked sent a month before `now`.
async fn build(store: &Store) {
    let mut rng = Rng(0x5eed);
    let t = Instant::now();
    let mut made = 0;
    while made < store.tickets {
        let n = CHUNK.min(store.tickets - made);
        let mails: Vec<String> = (made..made + n).map(|i| request(i, &mut rng)).collect();
        let (rate, _) = ingest(store, &mails);
        made += n;
        eprintln!(
            "scale: {made} of {} tickets ({rate:.0} mails/s)",
            store.tickets
        );
    }
    let pool = store.pool().await;
    // Sending is left out: what a sent notification leaves in the store, sent 20 days ago
    // (within outbound.keep_sent_for until the size part drops the bodies).
    sqlx::query::<Any>(
        "UPDATE outbox SET status = 'sent', sent_at = created_at - 1728000000, attempts = 1 \
         WHERE status = 'queued'",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    // The first sweep notes the time rules the due times were worked out with.
    store.run(&["sweep"]);
    eprintln!(
        "scale: built {} tickets in {:.0} s",
        store.tickets,
        t.elapsed().as_secs_f64()
    );
}

/// Refs and requesters of tickets: `count` spread over all, or the newest `count`.
async fn tickets(
    store: &Store,
    count: usize,
    spread: bool,
    rng: &mut Rng,
) -> Vec<(String, String)> {
    let pool = store.pool().await;
    let max: i64 = sqlx::query_scalar::<Any, i64>("SELECT MAX(id) FROM tickets")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut out = Vec::new();
    for k in 0..count as i64 {
        let id = if spread {
            1 + rng.below(max as u64) as i64
        } else {
            max - k
        };
        let row: Option<(String, String)> = sqlx::query_as::<Any, (String, String)>(
            "SELECT ref, requester FROM tickets WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&pool)
        .await
        .unwrap();
        out.extend(row);
    }
    pool.close().await;
    out
}

/// A requester's reply on their ticket, found by its [ref] in the subject.
fn reply(n: usize, (reference, requester): &(String, String)) -> String {
    format!(
        "From: {requester}\r\nTo: support@helpdesk.example\r\nSubject: Re: [{reference}] Printer\r\n\
         Message-ID: <reply-{n}-{reference}@bench.example>\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nStill broken, sorry.\r\n"
    )
}

/// Makes 1,000 tickets due: resolved eight days before `now` (the preset closes a ticket
/// resolved for seven).
async fn make_due(store: &Store, now: jiff::Timestamp) {
    let settings = deskmail::config::load(&store.config).unwrap();
    let outbound = deskmail::outbound::Outbound::open(&settings.outbound).unwrap();
    let db = deskmail::store::Store::open(&store.url).await.unwrap();
    let desk = deskmail::desk::Desk::new(settings, db, outbound);
    let alice = support::demo::actor(&desk, support::demo::ALICE);
    let mut rng = Rng(0xd0e);
    let when = now - jiff::SignedDuration::from_hours(24 * 8);
    for (reference, _) in tickets(store, 1000, true, &mut rng).await {
        let intent = deskmail::workflow::Intent::Act {
            action: "Resolve".into(),
            comment: Some("Done.".into()),
            internal: false,
            fields: Default::default(),
        };
        let _ = desk.act(&reference, &alice, &intent, &[], when).await;
    }
    desk.store.close().await;
}

/// The database's pages in use per ticket (bytes), and the outbox's share of unused bytes
/// inside its pages, its rows' and its messages' (dbstat).
async fn sizes(store: &Store) -> (f64, Option<f64>) {
    let pool = store.pool().await;
    let one = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<Any, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let pages = one("SELECT page_count FROM pragma_page_count").await;
    let free = one("SELECT freelist_count FROM pragma_freelist_count").await;
    let size = one("SELECT page_size FROM pragma_page_size").await;
    let waste = sqlx::query_as::<Any, (i64, i64)>(
        "SELECT SUM(pgsize), SUM(unused) FROM dbstat WHERE name IN ('outbox', 'outbox_bodies')",
    )
    .fetch_one(&pool)
    .await
    .ok()
    .map(|(all, unused)| unused as f64 / all as f64);
    pool.close().await;
    (((pages - free) * size) as f64 / store.tickets as f64, waste)
}

/// A ref deep inside the list (the middle ticket's).
async fn middle_ref(store: &Store) -> String {
    let pool = store.pool().await;
    let r = sqlx::query_scalar::<Any, String>(
        "SELECT ref FROM tickets WHERE id = (SELECT MAX(id) / 2 FROM tickets)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    r
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let big: usize = std::env::var("DESKMAIL_BENCH_TICKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let root = tempfile::Builder::new()
        .prefix("deskmail-scale")
        .tempdir_in(std::env::var("DESKMAIL_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()))
        .unwrap();
    // DESKMAIL_BENCH_KEEP leaves the stores for a look afterwards.
    let (root, _guard) = if std::env::var_os("DESKMAIL_BENCH_KEEP").is_some() {
        let kept = root.keep();
        eprintln!("scale: the stores stay in {}", kept.display());
        (kept, None)
    } else {
        (root.path().to_path_buf(), Some(root))
    };
    let stores = [
        Store::new(&root.join("small"), 2_000),
        Store::new(&root.join("big"), big),
    ];
    for s in &stores {
        build(s).await;
    }
    let now = jiff::Timestamp::now();
    let now_s = now.to_string();
    let later = (now + jiff::SignedDuration::from_hours(24)).to_string();
    let deep: Vec<String> = {
        let mut v = Vec::new();
        for s in &stores {
            v.push(middle_ref(s).await);
        }
        v
    };
    type Case = (&'static str, Vec<String>);
    let cases = |deep: &str| -> Vec<Case> {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        vec![
            ("`sweep`, nothing due", v(&["sweep", "--now", &now_s])),
            (
                "`ticket list --json`, first page",
                v(&["ticket", "list", "--json"]),
            ),
            (
                "`ticket list --json`, deep page",
                v(&["ticket", "list", "--json", "--after", deep]),
            ),
            (
                "`ticket list --status New`",
                v(&["ticket", "list", "--json", "--status", "new"]),
            ),
            (
                "`ticket list --as` power user",
                v(&["ticket", "list", "--json", "--as", "ben@acme.example"]),
            ),
            (
                "`ticket list --as` power user, deep page",
                v(&[
                    "ticket",
                    "list",
                    "--json",
                    "--as",
                    "ben@acme.example",
                    "--after",
                    deep,
                ]),
            ),
            (
                "`ticket list --as` portal user",
                v(&["ticket", "list", "--json", "--as", "anna@acme.example"]),
            ),
            ("`ticket show`", v(&["ticket", "show", deep, "--json"])),
            ("`inbound list`", v(&["inbound", "list", "--json"])),
            (
                "`outbox list --status sent`",
                v(&["outbox", "list", "--json", "--status", "sent"]),
            ),
        ]
    };
    println!(
        "\n## Commands, {} and {big} tickets (ms and MiB, medians of {RUNS})\n",
        stores[0].tickets
    );
    println!("| | small: ms | MiB | big: ms | MiB |");
    println!("|---|---|---|---|---|");
    let small_cases = cases(&deep[0]);
    let big_cases = cases(&deep[1]);
    for (k, (what, small_args)) in small_cases.iter().enumerate() {
        let a: Vec<&str> = small_args.iter().map(String::as_str).collect();
        let b: Vec<&str> = big_cases[k].1.iter().map(String::as_str).collect();
        let (st, sm) = stores[0].measure(&a);
        let (bt, bm) = stores[1].measure(&b);
        println!("| {what} | {st:.0} | {sm:.0} | {bt:.0} | {bm:.0} |");
    }
    // 1,000 due: once per store (it changes them).
    let mut due = Vec::new();
    for s in &stores {
        make_due(s, now).await;
        let (secs, mib, _) = s.run(&["sweep", "--now", &later]);
        due.push((secs * 1000.0, mib));
    }
    println!(
        "| `sweep`, 1,000 due (once) | {:.0} | {:.0} | {:.0} | {:.0} |",
        due[0].0, due[0].1, due[1].0, due[1].1
    );

    // Replies: spread over every ticket, and on the newest 2,000, in turn; grouped (a
    // backlog) and one commit per mail (as the daemon takes a reply that arrives alone).
    let big_store = &stores[1];
    let mut rng = Rng(0xbeef);
    // [grouped, one by one] x [spread, recent]: (mails/s, MiB) per run.
    let mut runs: [[Vec<(f64, f64)>; 2]; 2] = Default::default();
    let mut sent = 0;
    for round in 0..3 {
        for (alone, args) in [(0, &[][..]), (1, &["--batch", "1"][..])] {
            for spread_now in [round % 2 == 0, round % 2 != 0] {
                let count = if alone == 1 { REPLIES / 4 } else { REPLIES };
                let targets = tickets(big_store, count, spread_now, &mut rng).await;
                let mails: Vec<String> = targets
                    .iter()
                    .map(|t| {
                        sent += 1;
                        reply(sent, t)
                    })
                    .collect();
                let run = ingest_with(big_store, &mails, args);
                runs[alone][usize::from(!spread_now)].push(run);
            }
        }
    }
    let rate = |v: &[(f64, f64)]| median(v.iter().map(|r| r.0).collect());
    let peak = |v: &[(f64, f64)]| median(v.iter().map(|r| r.1).collect());
    println!(
        "\n## Replies on the big store (3 runs each, alternating: {REPLIES} grouped, {} one commit each)\n",
        REPLIES / 4
    );
    println!("| | grouped: mails/s | MiB | one commit per mail: mails/s | MiB |");
    println!("|---|---|---|---|---|");
    let [grouped, alone] = &runs;
    for (name, i) in [
        ("spread over all tickets".to_string(), 0),
        (
            format!("on the newest {REPLIES} ({} one by one)", REPLIES / 4),
            1,
        ),
    ] {
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.0} |",
            rate(&grouped[i]),
            peak(&grouped[i]),
            rate(&alone[i]),
            peak(&alone[i])
        );
    }
    println!(
        "| ratio | {:.2} | | {:.2} | |",
        rate(&grouped[0]) / rate(&grouped[1]),
        rate(&alone[0]) / rate(&alone[1])
    );

    // Size, before and after the sent bodies are dropped (a sweep well after keep_sent_for).
    println!("\n## Size\n");
    println!(
        "| | small: bytes per ticket | outbox unused | big: bytes per ticket | outbox unused |"
    );
    println!("|---|---|---|---|---|");
    let show = |(per, waste): (f64, Option<f64>)| {
        (
            format!("{per:.0}"),
            waste.map_or("n/a".into(), |w| format!("{:.0} %", w * 100.0)),
        )
    };
    let mut before = Vec::new();
    for s in &stores {
        before.push(show(sizes(s).await));
    }
    println!(
        "| sent bodies kept | {} | {} | {} | {} |",
        before[0].0, before[0].1, before[1].0, before[1].1
    );
    let month = (now + jiff::SignedDuration::from_hours(24 * 31)).to_string();
    let mut after = Vec::new();
    for s in &stores {
        // A sweep drops at most 10,000 bodies: sweep until one drops none.
        loop {
            let (_, _, _) = s.run(&["sweep", "--now", &month]);
            let pool = s.pool().await;
            let left: i64 = sqlx::query_scalar::<Any, i64>(
                "SELECT COUNT(*) FROM outbox WHERE status = 'sent' AND body_kept = 1 \
                 AND sent_at < $1",
            )
            .bind(now.as_millisecond())
            .fetch_one(&pool)
            .await
            .unwrap();
            pool.close().await;
            if left == 0 {
                break;
            }
        }
        after.push(show(sizes(s).await));
    }
    println!(
        "| sent bodies dropped | {} | {} | {} | {} |",
        after[0].0, after[0].1, after[1].0, after[1].1
    );
}
