//! Daemon benchmark: `cargo bench --bench daemon` (as root: it starts its own Postfix and
//! Dovecot on 127.0.0.1, as the tests do).
//!
//! 1. Latency: replies appended one at a time to the watched IMAP INBOX (default 1,000,
//!    `DESKMAIL_BENCH_LATENCY_MAILS`, 0 skips it); for each, from the APPEND to the team's
//!    notification accepted by Postfix (its `sent_at`), next to when a plain IDLE client on the
//!    same INBOX sees the same APPEND (Dovecot's push). The figures: percentiles of deskmail's
//!    time over the push.
//! 2. Drain: 10,000 replies waiting in the INBOX (`DESKMAIL_BENCH_DRAIN_MAILS`), taken in by a
//!    fresh `deskmail run` (start = "all") until all are in the processed folder, twice per
//!    round on fresh mail stacks (taking turns going first): the notifications delivered into
//!    Dovecot, and accepted and discarded by Postfix (a relay to another machine); next to
//!    `deskmail ingest` of the same mails from a Maildir on the same kind of store, and a plain
//!    IMAP client fetching the whole INBOX. Rounds: `DESKMAIL_BENCH_ROUNDS` (3); the CPU time of
//!    the daemon, of the rest of the machine, and idle while it drains.
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
use support::demo::{SUPPORT, TEAM};
use support::dialects::sqlite_url;
use support::mailstack::MailStack;

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
    let reference = env.create_fire_ticket();
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
    rt.block_on(store.outbox(None, None, 5))
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
    let url = sqlite_url(&env.path("data"), "deskmail.sqlite");
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

/// CPU time used so far, in seconds: by one process, and by the whole machine (busy and idle).
struct Cpu {
    process: f64,
    busy: f64,
    idle: f64,
}

impl Cpu {
    fn now(pid: u32) -> Cpu {
        let tick = 100.0; // USER_HZ
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The fields after the command's name, which ends with the last ')'.
        let fields: Vec<f64> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0.0))
            .collect();
        let process = (fields.get(11).unwrap_or(&0.0) + fields.get(12).unwrap_or(&0.0)) / tick;
        let all = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let cpu: Vec<f64> = all
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0.0))
            .collect();
        let idle = (cpu.get(3).unwrap_or(&0.0) + cpu.get(4).unwrap_or(&0.0)) / tick;
        let busy = cpu.iter().take(8).sum::<f64>() / tick - idle;
        Cpu {
            process,
            busy,
            idle,
        }
    }

    fn since(&self, before: &Cpu) -> Cpu {
        Cpu {
            process: self.process - before.process,
            busy: self.busy - before.busy,
            idle: self.idle - before.idle,
        }
    }
}

/// One `deskmail run` draining the INBOX.
struct Run {
    /// Mails per second, from the daemon's start until every mail is moved out.
    rate: f64,
    /// CPU while draining.
    cpu: Cpu,
    /// MB: the resident set's peak while draining, its anonymous part, the peak while sending
    /// what is left once drained, and idle.
    peak: f64,
    peak_anon: f64,
    peak_sending: f64,
    idle: f64,
}

/// A round: the rates of the plain client and of the offline ingest, and the daemon's runs,
/// its notifications delivered into Dovecot (`delivered`) and discarded by Postfix (`relayed`).
struct Drain {
    fetch: f64,
    ingest: f64,
    delivered: Run,
    relayed: Run,
}

/// The replies to the environment's ticket, and `deskmail ingest`'s rate on them, taken in
/// from a Maildir into a store of its own.
fn offline(stack: &MailStack, mails: usize) -> (Vec<String>, f64) {
    let (offline, reference) = environment(stack, "start = \"all\"\n");
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
    let rate = mails as f64 / t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (corpus, rate)
}

/// A fresh `deskmail run` (start = "all") drains the stack's INBOX until every mail is moved
/// out (or, without moves, applied), then sends every notification.
fn run_daemon(stack: &MailStack, mails: usize) -> Run {
    // DESKMAIL_BENCH_DRAIN_IMAP adds lines to the drained mailbox's [mailboxes.imap] table:
    // `processed_folder = ""` drains without moving (the mails are counted as committed).
    let extra = std::env::var("DESKMAIL_BENCH_DRAIN_IMAP").unwrap_or_default();
    let moves = !extra.contains("processed_folder");
    let (env, _) = environment(stack, &format!("start = \"all\"\n{extra}\n"));
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let t = Instant::now();
    let daemon = Daemon::start(&env);
    let pid = daemon.pid();
    let peak = std::cell::Cell::new((0.0, 0.0));
    let sample = || {
        let now = rss_mb(pid);
        if now.0 > peak.get().0 {
            peak.set(now);
        }
    };
    let cpu = Cpu::now(pid);
    // The daemon's own count, read over HTTP: a look at the server every 50 ms would cost
    // Dovecot a login each time. The server's count is checked once it is done.
    daemon.wait_until("the drain", Duration::from_secs(600), || {
        sample();
        if moves {
            daemon.metric("deskmail_mails_moved_total{mailbox=\"support\"}") >= mails as f64
        } else {
            daemon.metric("deskmail_mails_total{mailbox=\"support\",outcome=\"applied\"}")
                >= mails as f64
        }
    });
    let rate = mails as f64 / t.elapsed().as_secs_f64();
    let cpu = Cpu::now(pid).since(&cpu);
    let draining = peak.replace((0.0, 0.0));
    if moves {
        assert_eq!(stack.count(SUPPORT, "deskmail/processed"), mails);
        assert_eq!(stack.count(SUPPORT, "INBOX"), 0);
    }
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
    Run {
        rate,
        cpu,
        peak: draining.0,
        peak_anon: draining.1,
        peak_sending: peak.get().0,
        idle,
    }
}

/// One round: the offline ingest, then the two daemon runs (in turn first), each on a mail
/// stack of its own with the mails appended to its INBOX; the plain client fetches the first.
fn drain(mails: usize, round: usize) -> Drain {
    let (corpus, ingest) = offline(
        &MailStack::start(false).expect("a mail stack (run as root)"),
        mails,
    );
    let mut fetch = 0.0;
    let mut runs = [None, None];
    let order = if round.is_multiple_of(2) {
        [0, 1]
    } else {
        [1, 0]
    };
    for (i, which) in order.into_iter().enumerate() {
        let stack = MailStack::start(false).expect("a mail stack (run as root)");
        if which == 1 {
            stack.discard(TEAM);
        }
        stack.append_all(SUPPORT, "INBOX", &corpus);
        if i == 0 {
            let t = Instant::now();
            let fetched = stack.folder(SUPPORT, "INBOX").len();
            fetch = fetched as f64 / t.elapsed().as_secs_f64();
            assert_eq!(fetched, mails);
        }
        runs[which] = Some(run_daemon(&stack, mails));
    }
    let [delivered, relayed] = runs.map(Option::unwrap);
    Drain {
        fetch,
        ingest,
        delivered,
        relayed,
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
            drain(drain_mails, r)
        })
        .collect();
    if latency_mails > 0 {
        latency_table(latency_mails);
    }
    let med = |f: &dyn Fn(&Drain) -> f64| median(&drains.iter().map(f).collect::<Vec<_>>());
    println!("\n## Drain: {drain_mails} replies waiting, medians of {rounds} rounds\n");
    println!("| | mails/s | ratio to ingest (median of rounds) |");
    println!("|---|---|---|");
    let ingest = med(&|d| d.ingest);
    type Of = fn(&Drain) -> &Run;
    let runs: [(&str, Of); 2] = [
        (
            "`deskmail run` draining the INBOX, notifications delivered into Dovecot",
            |d| &d.delivered,
        ),
        (
            "`deskmail run` draining the INBOX, notifications accepted by Postfix and discarded",
            |d| &d.relayed,
        ),
    ];
    println!(
        "| plain IMAP client: UID FETCH 1:* of the INBOX | {:.0} | {:.2} |",
        med(&|d| d.fetch),
        med(&|d| d.fetch / d.ingest)
    );
    println!(
        "| `deskmail ingest` of the same mails from a Maildir (SQLite) | {ingest:.0} | 1.00 |"
    );
    for (what, of) in runs {
        println!(
            "| {what} | {:.0} | {:.2} |",
            med(&|d| of(d).rate),
            med(&|d| of(d).rate / d.ingest)
        );
    }
    for (what, of) in runs {
        let ratios: Vec<f64> = drains.iter().map(|d| of(d).rate / d.ingest).collect();
        println!("\nPer round, {what} / ingest: {ratios:.2?}");
    }
    println!("\nCPU while `deskmail run` drains, seconds of both cores (medians of rounds):\n");
    println!("| | `deskmail run` | everything else (Dovecot, Postfix, the bench) | idle |");
    println!("|---|---|---|---|");
    for (what, of) in runs {
        println!(
            "| {what} | {:.1} s | {:.1} s | {:.1} s |",
            med(&|d| of(d).cpu.process),
            med(&|d| of(d).cpu.busy - of(d).cpu.process),
            med(&|d| of(d).cpu.idle)
        );
    }
    println!("\n## Memory of `deskmail run`\n");
    println!("| | resident set (median of runs) | largest |");
    println!("|---|---|---|");
    let all: Vec<&Run> = drains
        .iter()
        .flat_map(|d| [&d.delivered, &d.relayed])
        .collect();
    let med_run = |f: fn(&Run) -> f64| median(&all.iter().map(|r| f(r)).collect::<Vec<_>>());
    let largest = |f: fn(&Run) -> f64| all.iter().map(|r| f(r)).fold(0.0, f64::max);
    for (what, f) in [
        (
            "while draining (peak of 50 ms samples)",
            (|r| r.peak) as fn(&Run) -> f64,
        ),
        ("of which anonymous (heap, stacks)", |r| r.peak_anon),
        ("sending what is left once drained (peak)", |r| {
            r.peak_sending
        }),
        ("idle, after the drain", |r| r.idle),
    ] {
        println!("| {what} | {:.0} MiB | {:.0} MiB |", med_run(f), largest(f));
    }
}

fn latency_table(latency_mails: usize) {
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
}
