//! Inbound benchmark: `cargo bench --bench inbound` (PostgreSQL at `DESKMAIL_TEST_PG_URL` or
//! 127.0.0.1:5432 for its part; `DESKMAIL_TEST_PG=skip` leaves it out).
//!
//! A generated corpus of realistic replies (3-8 KB, multipart text + HTML, quoted history, some
//! with an attachment), each answering a notification of one of 200 tickets with the sender's
//! reply token.
//!
//! 1. One core: mail-parser's bare parse (subject and text body of each mail) next to deskmail's
//!    stages up to the core (parse, classify, identify, match candidates, extract, commands).
//! 2. The whole `deskmail ingest` (the binary, on a Maildir of the corpus, 2 cores): SQLite with
//!    100 mails per commit and with one commit per mail, PostgreSQL with 100 per commit; each
//!    next to a plain insert of five rows per mail at the same durability (Python's sqlite3 for
//!    SQLite, one sqlx connection for PostgreSQL); peak memory of the ingest process.
//! 3. Pipe mode: one `deskmail ingest` process per mail, as an MTA pipe runs it.
//!
//! Every figure is the median of its runs; variants alternate within each round.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use deskmail::desk::{CreateRequest, Desk, Outcome};
use deskmail::workflow::Intent;
use jiff::Timestamp;
use support::demo;
use support::dialects::sqlite_url;
use support::numbers::{Rng, median, peak_mib};
use support::without_deskmail_env;

const MAILS: usize = 10_000;
const TICKETS: usize = 200;
const PURE_RUNS: usize = 7;
const INGEST_RUNS: usize = 3;
const PIPE_MAILS: usize = 100;

const WORDS: [&str; 32] = [
    "printer", "display", "error", "restart", "driver", "update", "cable", "office", "today",
    "tomorrow", "please", "check", "again", "works", "fails", "screen", "network", "server", "the",
    "a", "it", "we", "still", "after", "before", "replaced", "toner", "paper", "jam", "morning",
    "team", "thanks",
];

fn sentence(rng: &mut Rng) -> String {
    let n = 6 + rng.below(10) as usize;
    let mut words: Vec<&str> = (0..n).map(|_| rng.pick(&WORDS)).collect();
    let first = words[0];
    let cap = first[..1].to_uppercase() + &first[1..];
    words[0] = &cap;
    format!("{}.", words.join(" "))
}

/// One reply: the sender's new text over the quoted notification, text + HTML.
fn reply(rng: &mut Rng, n: usize, reference: &str, token: &str, parent: &str) -> Vec<u8> {
    let paragraphs = 1 + rng.below(3) as usize;
    let new: Vec<String> = (0..paragraphs)
        .map(|_| {
            (0..2 + rng.below(3))
                .map(|_| sentence(rng))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let new_text = format!("{}\n\nThanks,\nAnna", new.join("\n\n"));
    let quoted_lines = 16 + rng.below(28) as usize;
    let history: Vec<String> = (0..quoted_lines).map(|_| sentence(rng)).collect();
    let quote = history
        .iter()
        .map(|l| format!("> {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    let text = format!(
        "{new_text}\n\nOn Sun, Nov 22, 2026 at 2:39 PM Example Help Desk <support@helpdesk.example> wrote:\n{quote}\n"
    );
    let html = format!(
        "<div dir=\"ltr\">{}</div><br><div class=\"gmail_quote\"><div class=\"gmail_attr\">On Sun, Nov 22, 2026 at 2:39 PM Example Help Desk &lt;support@helpdesk.example&gt; wrote:<br></div><blockquote class=\"gmail_quote\" style=\"margin:0 0 0 .8ex;border-left:1px #ccc solid;padding-left:1ex\">{}</blockquote></div>",
        new_text.replace('\n', "<br>"),
        history.join("<br>")
    );
    let attach = rng.below(10) == 0;
    let mut m = format!(
        "From: Anna Example <anna@acme.example>\r\nTo: Example Help Desk <{token}>\r\n\
         Subject: Re: [{reference}] Printer on fire\r\nMessage-ID: <bench-{n}-{}@mail.gmail.com>\r\n\
         In-Reply-To: {parent}\r\nReferences: {parent}\r\nDate: Sun, 22 Nov 2026 15:00:00 +0000\r\n\
         MIME-Version: 1.0\r\n",
        rng.next()
    );
    let alt = format!(
        "--alt\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n{}\r\n--alt\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n{html}\r\n--alt--\r\n",
        text.replace('\n', "\r\n")
    );
    if attach {
        let png: Vec<u8> = (0..1500).map(|_| rng.next() as u8).collect();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(png);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        m.push_str("Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n");
        m.push_str(&alt);
        m.push_str(&format!(
            "--mix\r\nContent-Type: image/png; name=\"photo.png\"\r\nContent-Disposition: attachment; filename=\"photo.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--mix--\r\n",
            lines.join("\r\n")
        ));
    } else {
        m.push_str("Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n");
        m.push_str(&alt);
    }
    m.into_bytes()
}

fn config(dir: &Path, url: &str) -> PathBuf {
    let path = dir.join("deskmail.toml");
    let text = support::read("deskmail.example.toml")
        .replace(
            "url = \"sqlite://data/deskmail.sqlite\"",
            &format!("url = \"{url}\""),
        )
        .replace("loop_limit_per_hour = 30", "loop_limit_per_hour = 0")
        .replace("loop_limit_per_thread = 10", "loop_limit_per_thread = 0");
    std::fs::write(&path, text).unwrap();
    std::fs::write(dir.join("reply.key"), "bench-secret-0123456789abcdef").unwrap();
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "secret_file = \"data/reply-token.key\"",
        "secret_file = \"reply.key\"",
    );
    std::fs::write(&path, text).unwrap();
    path
}

async fn open(config: &Path) -> Desk {
    let settings = deskmail::config::load(config).unwrap();
    let outbound = deskmail::outbound::Outbound::open(&settings.outbound).unwrap();
    let store = deskmail::store::Store::open(settings.store_url.expose())
        .await
        .unwrap();
    Desk::new(settings, store, outbound)
}

/// TICKETS tickets, each sent To Customer (so a customer's reply moves it); per ticket the
/// reply token and the notification to anna.
async fn tickets(desk: &Desk) -> Vec<(String, String, String)> {
    let anna = demo::actor(desk, demo::ANNA);
    let alice = demo::actor(desk, demo::ALICE);
    let now: Timestamp = demo::at("13:00");
    let mut out = Vec::new();
    for i in 0..TICKETS {
        let Outcome::Applied { reference, .. } = desk
            .create(
                &anna,
                CreateRequest {
                    subject: format!("Printer {i}"),
                    text: "It smokes.".into(),
                    source: "cli".into(),
                    ..Default::default()
                },
                now,
            )
            .await
            .unwrap()
        else {
            panic!("create")
        };
        desk.act(
            &reference,
            &alice,
            &Intent::Act {
                action: "To Customer".into(),
                comment: Some("Plugged in?".into()),
                internal: false,
                fields: BTreeMap::new(),
            },
            &[],
            now,
        )
        .await
        .unwrap();
        let token = desk.outbound.key.reply_address(
            "support@helpdesk.example",
            &reference,
            "anna@acme.example",
        );
        let parent = desk
            .store
            .outbox(None, None, 5)
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.recipient == "anna@acme.example")
            .unwrap()
            .message_id;
        out.push((reference, token, parent));
    }
    out
}

fn corpus(tickets: &[(String, String, String)], seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng(seed);
    (0..MAILS)
        .map(|n| {
            let (r, t, p) = &tickets[n % tickets.len()];
            reply(&mut rng, n, r, t, p)
        })
        .collect()
}

/// mail-parser alone: subject and text body of each mail; mails per second.
fn bare_parse(mails: &[Vec<u8>]) -> f64 {
    let start = Instant::now();
    let mut total = 0usize;
    for m in mails {
        let msg = mail_parser::MessageParser::default().parse(&m[..]).unwrap();
        total += msg.subject().map_or(0, str::len);
        total += msg.body_text(0).map_or(0, |t| t.len());
    }
    assert!(total > 0);
    mails.len() as f64 / start.elapsed().as_secs_f64()
}

/// deskmail's stages up to the core; mails per second.
fn stages(desk: &Desk, mails: &[Vec<u8>]) -> f64 {
    let dir = &desk.settings.directory;
    let wf = &desk.settings.workflow;
    let start = Instant::now();
    let mut total = 0usize;
    for m in mails {
        let reading = deskmail::inbound::read(
            m,
            deskmail::inbound::Extent::Whole,
            &desk.reader,
            dir,
            &desk.outbound.key,
        );
        let reply = deskmail::inbound::reply(&reading, &desk.reader, wf, dir);
        total += reply.commands.comment.len() + usize::from(reading.sender.verified.is_some());
    }
    assert!(total > 0);
    mails.len() as f64 / start.elapsed().as_secs_f64()
}

/// Pins this thread (and those it starts) to CPU 0; returns the previous set.
fn pin_one() -> libc::cpu_set_t {
    // SAFETY: plain libc calls on zeroed, correctly sized cpu_set_t values owned here.
    unsafe {
        let mut old: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut old);
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut one);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one);
        old
    }
}

fn unpin(set: &libc::cpu_set_t) {
    // SAFETY: as above.
    unsafe {
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set);
    }
}

/// Writes the corpus as a Maildir.
fn maildir(dir: &Path, mails: &[Vec<u8>]) -> PathBuf {
    let md = dir.join("Maildir");
    std::fs::create_dir_all(md.join("new")).unwrap();
    std::fs::create_dir_all(md.join("cur")).unwrap();
    for (i, m) in mails.iter().enumerate() {
        std::fs::write(md.join("new").join(format!("{i:06}.eml")), m).unwrap();
    }
    md
}

/// Before each timed run the page cache's dirty pages go to disk (`sync`): the Maildir just
/// written and the runs before would otherwise be written back during this one, competing with
/// its own syncs. Mails an MTA delivers are on disk before deskmail reads them (Postfix and
/// Dovecot sync each delivered mail).
fn settle() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() }
}

/// Runs `deskmail ARGS` to its end under GNU time (a child forked from this big process would
/// count this process's memory as its own until it execs): whether it succeeded, and its peak
/// resident memory in MB.
fn run_measured(args: &[&std::ffi::OsStr]) -> (bool, f64) {
    let report = tempfile::NamedTempFile::new().unwrap();
    let status = without_deskmail_env(&mut Command::new("/usr/bin/time"))
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(report.path())
        .arg(env!("CARGO_BIN_EXE_deskmail"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("GNU time (/usr/bin/time)");
    (status.success(), peak_mib(report.path()))
}

/// `deskmail ingest` over the Maildir on a fresh database; mails per second and the process's
/// peak memory (MB).
async fn ingest_run(
    url_of: &dyn Fn(usize) -> String,
    round: usize,
    mails: &[Vec<u8>],
    batch: usize,
) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let url = url_of(round);
    let cfg = config(dir.path(), &url);
    let desk = open(&cfg).await;
    let t = tickets(&desk).await;
    desk.store.close().await;
    // The corpus answers these tickets' notifications.
    let mails: Vec<Vec<u8>> = corpus(&t, 7 + round as u64)
        .into_iter()
        .take(mails.len())
        .collect();
    let md = maildir(dir.path(), &mails);
    settle();
    let start = Instant::now();
    let batch = batch.to_string();
    let (ok, peak) = run_measured(&[
        "--config".as_ref(),
        cfg.as_os_str(),
        "ingest".as_ref(),
        "--batch".as_ref(),
        batch.as_ref(),
        md.as_os_str(),
    ]);
    let rate = mails.len() as f64 / start.elapsed().as_secs_f64();
    assert!(ok, "ingest failed");
    // Every mail was applied.
    let desk = open(&cfg).await;
    let applied = desk
        .store
        .inbound(Some("applied"), None, 1_000_000)
        .await
        .unwrap()
        .len();
    assert_eq!(applied, mails.len());
    desk.store.close().await;
    (rate, peak)
}

/// Python's sqlite3: five rows per mail (the mail, a comment, two history lines, a notification,
/// each of the corpus's size), `per_commit` mails per transaction, WAL + synchronous=FULL.
fn python_sqlite(dir: &Path, mails: usize, per_commit: usize) -> f64 {
    let script = r#"
import sqlite3, sys, time, os
path, n, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE inbound (id INTEGER PRIMARY KEY, key TEXT UNIQUE, raw BLOB, status TEXT, at INTEGER)")
db.execute("CREATE TABLE comments (id INTEGER PRIMARY KEY, ticket INTEGER, text TEXT, at INTEGER)")
db.execute("CREATE TABLE history (id INTEGER PRIMARY KEY, ticket INTEGER, detail TEXT, at INTEGER)")
db.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY, ticket INTEGER, msg BLOB, at INTEGER)")
raw = os.urandom(5500); text = "x" * 300; msg = os.urandom(2500)
t = time.perf_counter()
for i in range(0, n, per):
    db.execute("BEGIN")
    for k in range(i, min(i + per, n)):
        db.execute("INSERT INTO inbound (key, raw, status, at) VALUES (?, ?, 'applied', ?)", (str(k), raw, k))
        db.execute("INSERT INTO comments (ticket, text, at) VALUES (?, ?, ?)", (k % 200, text, k))
        db.execute("INSERT INTO history (ticket, detail, at) VALUES (?, 'status', ?)", (k % 200, k))
        db.execute("INSERT INTO history (ticket, detail, at) VALUES (?, 'notice', ?)", (k % 200, k))
        db.execute("INSERT INTO outbox (ticket, msg, at) VALUES (?, ?, ?)", (k % 200, msg, k))
    db.execute("COMMIT")
print(n / (time.perf_counter() - t))
"#;
    let db = dir.join(format!("plain-{per_commit}.sqlite"));
    settle();
    support::python_figure(
        script,
        &[
            db.to_str().unwrap(),
            &mails.to_string(),
            &per_commit.to_string(),
        ],
    )
}

/// The same five rows per mail into PostgreSQL over one sqlx connection, `per_commit` per
/// transaction.
async fn plain_postgres(url: &str, mails: usize, per_commit: usize) -> f64 {
    use sqlx::{Connection, Executor};
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    c.execute("CREATE TABLE inbound (id BIGSERIAL PRIMARY KEY, key TEXT UNIQUE, raw BYTEA, status TEXT, at BIGINT); \
               CREATE TABLE comments (id BIGSERIAL PRIMARY KEY, ticket BIGINT, text TEXT, at BIGINT); \
               CREATE TABLE history (id BIGSERIAL PRIMARY KEY, ticket BIGINT, detail TEXT, at BIGINT); \
               CREATE TABLE outbox (id BIGSERIAL PRIMARY KEY, ticket BIGINT, msg BYTEA, at BIGINT)")
        .await
        .unwrap();
    // Bytes that do not compress, as in the Python reference (`os.urandom`): PostgreSQL would
    // otherwise shrink a run of one byte to almost nothing before storing it, which the mails
    // deskmail stores (already packed) never allow.
    let noise = |n: usize, mut x: u64| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let raw = noise(5500, 0x9e37_79b9_7f4a_7c15);
    let msg = noise(2500, 0x2545_f491_4f6c_dd1d);
    let text = "x".repeat(300);
    settle();
    let start = Instant::now();
    let mut i = 0;
    while i < mails {
        let mut tx = c.begin().await.unwrap();
        for k in i..(i + per_commit).min(mails) {
            let k = k as i64;
            sqlx::query(
                "INSERT INTO inbound (key, raw, status, at) VALUES ($1, $2, 'applied', $3)",
            )
            .bind(k.to_string())
            .bind(&raw)
            .bind(k)
            .execute(&mut *tx)
            .await
            .unwrap();
            sqlx::query("INSERT INTO comments (ticket, text, at) VALUES ($1, $2, $3)")
                .bind(k % 200)
                .bind(&text)
                .bind(k)
                .execute(&mut *tx)
                .await
                .unwrap();
            for d in ["status", "notice"] {
                sqlx::query("INSERT INTO history (ticket, detail, at) VALUES ($1, $2, $3)")
                    .bind(k % 200)
                    .bind(d)
                    .bind(k)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            sqlx::query("INSERT INTO outbox (ticket, msg, at) VALUES ($1, $2, $3)")
                .bind(k % 200)
                .bind(&msg)
                .bind(k)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        i += per_commit;
    }
    mails as f64 / start.elapsed().as_secs_f64()
}

/// Pipe mode: one process per mail; the median seconds per mail.
async fn pipe_mode() -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path(), "pipe.sqlite");
    let cfg = config(dir.path(), &url);
    let desk = open(&cfg).await;
    let t = tickets(&desk).await;
    desk.store.close().await;
    let mails = corpus(&t, 99);
    let mut times = Vec::new();
    for m in mails.iter().take(PIPE_MAILS) {
        use std::io::Write;
        let start = Instant::now();
        let mut child = without_deskmail_env(&mut Command::new(env!("CARGO_BIN_EXE_deskmail")))
            .arg("--config")
            .arg(&cfg)
            .arg("ingest")
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(m).unwrap();
        let status = child.wait().unwrap();
        times.push(start.elapsed().as_secs_f64());
        assert!(status.success());
    }
    median(times)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("deskmail inbound benchmark");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &sqlite_url(dir.path(), "b.sqlite"));
    let desk = open(&cfg).await;
    let t = tickets(&desk).await;
    let mails = corpus(&t, 42);
    let sizes: Vec<usize> = mails.iter().map(Vec::len).collect();
    println!(
        "corpus: {} mails, {:.1} KB on average ({:.1}-{:.1} KB), {} with an attachment",
        mails.len(),
        sizes.iter().sum::<usize>() as f64 / mails.len() as f64 / 1024.0,
        *sizes.iter().min().unwrap() as f64 / 1024.0,
        *sizes.iter().max().unwrap() as f64 / 1024.0,
        mails
            .iter()
            .filter(|m| m.windows(9).any(|w| w == b"photo.png"))
            .count()
            / 2
    );

    // `DESKMAIL_BENCH_ONLY=stages|ingest|pipe` runs one part (for profiling);
    // `DESKMAIL_BENCH_PREPARE=DIR` leaves a config, a database and the Maildir in DIR for
    // running `deskmail ingest` by hand (under a profiler).
    if let Ok(target) = std::env::var("DESKMAIL_BENCH_PREPARE") {
        let target = PathBuf::from(target);
        std::fs::create_dir_all(&target).unwrap();
        let url = std::env::var("DESKMAIL_BENCH_PREPARE_URL")
            .unwrap_or_else(|_| sqlite_url(&target, "prepared.sqlite"));
        let cfg = config(&target, &url);
        let d = open(&cfg).await;
        let t = tickets(&d).await;
        d.store.close().await;
        maildir(&target, &corpus(&t, 7));
        println!(
            "prepared: deskmail --config {} ingest {}",
            cfg.display(),
            target.join("Maildir").display()
        );
        return;
    }
    let only = std::env::var("DESKMAIL_BENCH_ONLY").unwrap_or_default();
    let part = |name: &str| only.is_empty() || only == name;

    // 1. One core.
    if part("stages") {
        let all = pin_one();
        let (mut bare, mut ours, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..PURE_RUNS {
            let b = bare_parse(&mails);
            let o = stages(&desk, &mails);
            bare.push(b);
            ours.push(o);
            ratio.push(o / b);
        }
        unpin(&all);
        println!("one core, {PURE_RUNS} runs (medians):");
        println!(
            "  mail-parser alone (subject + text body): {:>9.0} mails/s",
            median(bare)
        );
        println!(
            "  deskmail's stages up to the core:        {:>9.0} mails/s  (ratio {:.2})",
            median(ours),
            median(ratio)
        );
    }
    desk.store.close().await;

    // 2. The whole ingest.
    if part("ingest") {
        let round_url = |round: usize| {
            let d = tempfile::tempdir().unwrap().keep();
            sqlite_url(&d, &format!("i{round}.sqlite"))
        };
        let pg = std::env::var("DESKMAIL_TEST_PG").as_deref() != Ok("skip");
        let mut pg_dbs: Vec<support::pg::PgDb> = Vec::new();
        let (mut grouped, mut single, mut postgres) = (Vec::new(), Vec::new(), Vec::new());
        let (mut py100, mut py1, mut pgplain) = (Vec::new(), Vec::new(), Vec::new());
        let mut peaks: Vec<f64> = Vec::new();
        let base = tempfile::tempdir().unwrap();
        for round in 0..INGEST_RUNS {
            let (rate, peak) = ingest_run(&round_url, round, &mails, 100).await;
            grouped.push(rate);
            peaks.push(peak);
            py100.push(python_sqlite(base.path(), MAILS, 100));
            single.push(
                ingest_run(&round_url, round, &mails[..MAILS / 2], 1)
                    .await
                    .0,
            );
            py1.push(python_sqlite(base.path(), MAILS / 2, 1));
            if pg {
                let db = support::pg::PgDb::create().await.unwrap();
                let url = db.url.clone();
                let (rate, peak) = ingest_run(&|_| url.clone(), round, &mails, 100).await;
                postgres.push(rate);
                peaks.push(peak);
                let plain = support::pg::PgDb::create().await.unwrap();
                pgplain.push(plain_postgres(&plain.url, MAILS, 100).await);
                pg_dbs.push(db);
                pg_dbs.push(plain);
            }
            for f in std::fs::read_dir(base.path()).unwrap() {
                let _ = std::fs::remove_file(f.unwrap().path());
            }
        }
        println!(
            "whole `deskmail ingest` on a Maildir, 2 cores, {INGEST_RUNS} runs (medians), every mail on disk when reported (Python: synchronous=FULL):"
        );
        let (g, p100) = (median(grouped), median(py100));
        println!(
            "  SQLite, 100 mails per commit:   {g:>7.0} mails/s   plain Python sqlite3, same rows: {p100:>7.0}/s  (ratio {:.2})",
            g / p100
        );
        let (s1, p1) = (median(single), median(py1));
        println!(
            "  SQLite, one commit per mail:    {s1:>7.0} mails/s   plain Python sqlite3, same rows: {p1:>7.0}/s  (ratio {:.2})",
            s1 / p1
        );
        if pg {
            let (pgr, pgp) = (median(postgres), median(pgplain));
            println!(
                "  PostgreSQL, 100 mails per commit: {pgr:>5.0} mails/s   plain sqlx inserts, same rows: {pgp:>7.0}/s  (ratio {:.2})",
                pgr / pgp
            );
        } else {
            println!("  PostgreSQL: skipped (DESKMAIL_TEST_PG=skip)");
        }
        println!(
            "  peak memory of the ingest process ({MAILS} mails, 100 per commit): {:.0} MB",
            peaks.iter().cloned().fold(0.0, f64::max)
        );
        drop(pg_dbs);
    }

    // 3. Pipe mode.
    if !part("pipe") {
        return;
    }
    let per_mail = pipe_mode().await;
    println!(
        "pipe mode (one process per mail, {PIPE_MAILS} mails, SQLite): median {:.1} ms per mail",
        per_mail * 1000.0
    );
}
