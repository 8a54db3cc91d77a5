//! Daemon benchmark: `cargo bench --bench daemon` (as root: it starts its own Postfix and
//! Dovecot on 127.0.0.1, as the tests do).
//!
//! 1. Latency: replies appended one at a time to the watched IMAP INBOX (default 1,000,
//!    `DESKMAIL_BENCH_LATENCY_MAILS`); for each, from the APPEND to the team's notification
//!    accepted by Postfix (its `sent_at`), next to when a plain IDLE client on the same INBOX sees
//!    the same APPEND (Dovecot's push). The figures: percentiles of deskmail's time over the push.
//! 2. Drain: 10,000 replies waiting in the INBOX (`DESKMAIL_BENCH_DRAIN_MAILS`), taken in by a
//!    fresh `deskmail run` (start = "all") until all are in the processed folder; next to
//!    `deskmail ingest` of the same mails from a Maildir on the same kind of store, and a plain
//!    IMAP client fetching the whole INBOX. Rounds alternate (`DESKMAIL_BENCH_ROUNDS`, 3).
//!    `DESKMAIL_BENCH_DRAIN_IMAP` adds lines to the drained mailbox's `[mailboxes.imap]` table
//!    (`processed_folder = ""`: no moves; the mails then count once committed).
//! 3. Memory: the daemon's resident set (VmRSS, sampled every 50 ms) while it drains, and idle
//!    once it has drained and sent everything.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::TestEnv;
use support::daemon::Daemon;
use support::mailstack::MailStack;

const SUPPORT: &str = "support@helpdesk.example";

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 0.5)
}

/// A customer's reply on the ticket, as her mail client sends it (a few KB, quoted history).
fn reply(i: usize, reference: &str) -> String {
    let quoted: String = (0..40)
        .map(|l| {
            format!("> line {l} of the notification she answers, quoted by her mail client\r\n")
        })
        .collect();
    format!(
        "Return-Path: <anna@acme.example>\r\nFrom: Anna <anna@acme.example>\r\nTo: {SUPPORT}\r\n\
         Subject: Re: [{reference}] Printer on fire\r\nMessage-ID: <bench-{i}-{}@acme.example>\r\n\
         Date: Sun, 06 Dec 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nStill smoking, reply number {i}.\r\n\r\n\
         On Sun, 6 Dec 2026, Help desk wrote:\r\n{quoted}",
        std::process::id()
    )
}

/// An environment whose support mailbox is the stack's support INBOX over IMAP (with `imap`
/// lines added to its table), with one ticket the replies answer; its reference.
fn environment(stack: &MailStack, imap: &str) -> (TestEnv, String) {
    let env = TestEnv::new();
    let password = env.path("support.pass");
    std::fs::write(&password, "secret\n").unwrap();
    let config = support::example_config(
        "loop_limit_per_hour = 0\nloop_limit_per_thread = 0",
        &stack.smtp_config(4),
    );
    let mailbox = "name = \"support\"\naddress = \"support@helpdesk.example\"\n";
    let config = config.replacen(
        mailbox,
        &format!("{mailbox}{}{imap}", stack.imap_config(SUPPORT, &password)),
        1,
    );
    std::fs::write(env.config(), config).unwrap();
    let reference = env
        .ok(&[
            "ticket",
            "create",
            "--as",
            "anna@acme.example",
            "--subject",
            "Printer on fire",
            "--text",
            "Smoke.",
        ])
        .trim()
        .to_string();
    (env, reference)
}

/// A plain IMAP client idling on the support INBOX: the moment each new mail is pushed to it.
fn idle_client(port: u16) -> mpsc::Receiver<Instant> {
    let (seen, pushes) = mpsc::channel();
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    write!(w, "a1 LOGIN {SUPPORT} secret\r\na2 SELECT INBOX\r\n").unwrap();
    let mut exists = 0usize;
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if let Some(n) = line
            .strip_prefix("* ")
            .and_then(|l| l.strip_suffix(" EXISTS\r\n"))
        {
            exists = n.parse().unwrap();
        }
        if line.starts_with("a2 ") {
            break;
        }
    }
    write!(w, "a3 IDLE\r\n").unwrap();
    std::thread::spawn(move || {
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let at = Instant::now();
            if std::env::var_os("DESKMAIL_BENCH_SHOW_LOG").is_some() {
                eprintln!("idle client: {}", line.trim_end());
            }
            let rest = line.strip_prefix("* ").unwrap_or("");
            if let Some(n) = rest.strip_suffix(" EXISTS\r\n") {
                let n: usize = n.parse().unwrap_or(exists);
                for _ in exists..n {
                    if seen.send(at).is_err() {
                        return;
                    }
                }
                exists = n;
            } else if rest.ends_with(" EXPUNGE\r\n") {
                exists = exists.saturating_sub(1);
            }
        }
    });
    pushes
}

/// The outbox's newest rows: (id, when sent in ms since 1970), read from the daemon's
/// database in this process (a command per look would compete with the daemon for the CPUs).
fn outbox_rows(
    rt: &tokio::runtime::Runtime,
    store: &deskmail::store::Store,
) -> Vec<(i64, Option<i64>)> {
    rt.block_on(store.outbox(None, 5))
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.sent_at.map(|t| t.as_millisecond())))
        .collect()
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Latency, one reply at a time: deskmail's time (APPEND to notification accepted) and the
/// plain IDLE client's (APPEND to push), in ms, per reply.
fn latency(mails: usize) -> (Vec<f64>, Vec<f64>) {
    let stack = MailStack::start(false).expect("a mail stack (run as root)");
    // Mail stays in the INBOX: moved out at once, a mail would be gone before Dovecot tells the
    // plain client, watching the same folder, of it. The move comes after the notification
    // and is not on its way.
    let (env, reference) = environment(&stack, "processed_folder = \"\"\n");
    let daemon = Daemon::start(&env);
    daemon.wait_until("connected", Duration::from_secs(30), || {
        daemon.get("/readyz").1.contains("support: connected")
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("sqlite://{}", env.path("data/deskmail.sqlite").display());
    let store = rt.block_on(deskmail::store::Store::open(&url)).unwrap();
    // The ticket's acknowledgement out of the way.
    daemon.wait_until("the outbox empty", Duration::from_secs(30), || {
        outbox_rows(&rt, &store).iter().all(|(_, s)| s.is_some())
    });
    let pushes = idle_client(stack.imap_port);
    let (mut deskmail, mut plain) = (Vec::new(), Vec::new());
    let mut last_id = outbox_rows(&rt, &store).first().map_or(0, |(id, _)| *id);
    for i in 0..mails {
        let (t0, t0_ms) = (Instant::now(), now_ms());
        if std::env::var_os("DESKMAIL_BENCH_SHOW_LOG").is_some() {
            eprintln!("append {i} at {}", jiff::Timestamp::now());
        }
        stack.append(SUPPORT, "INBOX", "", &reply(i, &reference));
        let pushed = pushes
            .recv_timeout(Duration::from_secs(30))
            .expect("a push");
        let sent = loop {
            let rows = outbox_rows(&rt, &store);
            let new: Vec<_> = rows.iter().filter(|(id, _)| *id > last_id).collect();
            if !new.is_empty() && new.iter().all(|(_, s)| s.is_some()) {
                last_id = new.iter().map(|(id, _)| *id).max().unwrap();
                break new.iter().filter_map(|(_, s)| *s).max().unwrap();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "no notification:\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(2));
        };
        deskmail.push((sent - t0_ms) as f64);
        plain.push(pushed.duration_since(t0).as_secs_f64() * 1000.0);
        // Quiet before the next: Dovecot's push timers of the last mail (and its move) have run
        // out for both clients.
        std::thread::sleep(Duration::from_millis(600));
        if (i + 1) % 100 == 0 {
            eprintln!("daemon bench: latency {} of {mails}", i + 1);
        }
    }
    if std::env::var_os("DESKMAIL_BENCH_SHOW_LOG").is_some() {
        eprintln!("{}", daemon.log());
    }
    let _ = daemon.stop();
    (deskmail, plain)
}

/// A process's resident memory in MB, now: all of it, and the anonymous part (its heap and
/// stacks; the rest is mapped files: the binary, libraries).
fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("RssAnon:"))
}

struct Drain {
    /// Mails per second.
    daemon: f64,
    ingest: f64,
    fetch: f64,
    /// MB.
    peak: f64,
    /// The anonymous part of the peak.
    peak_anon: f64,
    idle: f64,
}

/// One round of the drain: the mails appended, fetched by a plain client, taken in offline
/// from a Maildir, then by the daemon.
fn drain(mails: usize) -> Drain {
    let stack = MailStack::start(false).expect("a mail stack (run as root)");
    // The offline run first: its own store, the same mails as files.
    let (offline, reference) = environment(&stack, "start = \"all\"\n");
    let corpus: Vec<String> = (0..mails).map(|i| reply(i, &reference)).collect();
    let maildir = offline.path("Maildir");
    std::fs::create_dir_all(maildir.join("new")).unwrap();
    std::fs::create_dir_all(maildir.join("cur")).unwrap();
    for (i, m) in corpus.iter().enumerate() {
        std::fs::write(maildir.join("new").join(format!("{i:06}.eml")), m).unwrap();
    }
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let t = Instant::now();
    let out = offline.run(&["ingest", maildir.to_str().unwrap()]);
    let ingest = mails as f64 / t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    stack.append_all(SUPPORT, "INBOX", &corpus);
    let t = Instant::now();
    let fetched = stack.folder(SUPPORT, "INBOX").len();
    let fetch = fetched as f64 / t.elapsed().as_secs_f64();
    assert_eq!(fetched, mails);

    // DESKMAIL_BENCH_DRAIN_IMAP adds lines to the drained mailbox's [mailboxes.imap] table:
    // `processed_folder = ""` drains without moving (the mails are counted as committed).
    let extra = std::env::var("DESKMAIL_BENCH_DRAIN_IMAP").unwrap_or_default();
    let moves = !extra.contains("processed_folder");
    let (env, _) = environment(&stack, &format!("start = \"all\"\n{extra}\n"));
    unsafe { libc::sync() };
    let t = Instant::now();
    let daemon = Daemon::start(&env);
    let pid = daemon.pid();
    let mut peak = (0.0, 0.0);
    let mut sample = || {
        let now = rss_mb(pid);
        if now.0 > peak.0 {
            peak = now;
        }
    };
    daemon.wait_until("the drain", Duration::from_secs(600), || {
        sample();
        if moves {
            stack.count(SUPPORT, "deskmail/processed") == mails
        } else {
            daemon.metric("deskmail_mails_total{mailbox=\"support\",outcome=\"applied\"}")
                >= mails as f64
        }
    });
    let rate = mails as f64 / t.elapsed().as_secs_f64();
    daemon.wait_until("every notification sent", Duration::from_secs(600), || {
        sample();
        daemon.metric("deskmail_outbox_depth") == 0.0
            && daemon.metric("deskmail_notifications_total{outcome=\"sent\"}") >= mails as f64
    });
    std::thread::sleep(Duration::from_secs(5));
    let idle = rss_mb(pid).0;
    if std::env::var_os("DESKMAIL_BENCH_SHOW_LOG").is_some() {
        eprintln!("{}", daemon.log());
    }
    let _ = daemon.stop();
    Drain {
        daemon: rate,
        ingest,
        fetch,
        peak: peak.0,
        peak_anon: peak.1,
        idle,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let latency_mails = count("DESKMAIL_BENCH_LATENCY_MAILS", 1000);
    let drain_mails = count("DESKMAIL_BENCH_DRAIN_MAILS", 10_000);
    let rounds = count("DESKMAIL_BENCH_ROUNDS", 3);

    let drains: Vec<Drain> = (0..rounds)
        .map(|r| {
            eprintln!("daemon bench: drain round {} of {rounds}", r + 1);
            drain(drain_mails)
        })
        .collect();
    let (deskmail, plain) = latency(latency_mails);
    let over: Vec<f64> = deskmail.iter().zip(&plain).map(|(d, p)| d - p).collect();

    println!("\n## Latency: {latency_mails} replies, one at a time\n");
    println!("| | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (what, v) in [
        ("plain IDLE client: APPEND to push", &plain),
        ("deskmail: APPEND to notification accepted", &deskmail),
        ("deskmail over the push", &over),
    ] {
        println!(
            "| {what} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |",
            percentile(v, 0.5),
            percentile(v, 0.9),
            percentile(v, 0.99),
            percentile(v, 1.0)
        );
    }
    let med = |f: fn(&Drain) -> f64| median(&drains.iter().map(f).collect::<Vec<_>>());
    println!("\n## Drain: {drain_mails} replies waiting, medians of {rounds} rounds\n");
    println!("| | mails/s | ratio to ingest |");
    println!("|---|---|---|");
    let ingest = med(|d| d.ingest);
    for (what, rate) in [
        (
            "plain IMAP client: UID FETCH 1:* of the INBOX",
            med(|d| d.fetch),
        ),
        (
            "`deskmail ingest` of the same mails from a Maildir (SQLite)",
            ingest,
        ),
        (
            "`deskmail run` draining the INBOX (SQLite)",
            med(|d| d.daemon),
        ),
    ] {
        println!("| {what} | {rate:.0} | {:.2} |", rate / ingest);
    }
    let ratios: Vec<f64> = drains.iter().map(|d| d.daemon / d.ingest).collect();
    println!("\nPer round, daemon / ingest: {ratios:.2?}");
    println!("\n## Memory of `deskmail run`\n");
    println!("| | resident set (median of rounds) | largest |");
    println!("|---|---|---|");
    let largest = |f: fn(&Drain) -> f64| drains.iter().map(f).fold(0.0, f64::max);
    println!(
        "| while draining (peak of 50 ms samples) | {:.0} MiB | {:.0} MiB |",
        med(|d| d.peak),
        largest(|d| d.peak)
    );
    println!(
        "| of which anonymous (heap, stacks) | {:.0} MiB | {:.0} MiB |",
        med(|d| d.peak_anon),
        largest(|d| d.peak_anon)
    );
    println!(
        "| idle, after the drain | {:.0} MiB | {:.0} MiB |",
        med(|d| d.idle),
        largest(|d| d.idle)
    );
}
