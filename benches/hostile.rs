//! `cargo bench --bench hostile`: what each mail of the hostile corpus
//! (`tests/support/hostile.rs`) costs. Per case, the wall time and the peak resident memory of
//! `deskmail ingest FILE` (the release binary, a fresh SQLite store each run, measured by GNU
//! time), next to mail-parser's bare parse of the same bytes in this process (its time, and its
//! peak heap by a counting allocator). The baseline is the same command on an ordinary reply
//! of 6 KB; "above" is a case's peak memory less the baseline's. Medians of
//! `DESKMAIL_BENCH_ROUNDS` runs (3), the cases taking turns within each round.
//!
//! Targets: every case at most about a second and at most 64 MiB above the baseline.
//!
//! `cargo bench --bench hostile -- --write DIR` writes the corpus into DIR instead.

// The bench reads what a case is, the tests what must become of it.
#[allow(dead_code)]
#[path = "../tests/support/hostile.rs"]
mod hostile;
#[allow(dead_code)]
#[path = "../tests/support/numbers.rs"]
mod numbers;

use numbers::median;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

/// The system allocator, counting the bytes in use and their peak: mail-parser's heap.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = IN_USE.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every call is passed on to the system allocator unchanged; only counters are kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        if new > layout.size() {
            grew(new - layout.size());
        } else {
            IN_USE.fetch_sub(layout.size() - new, Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MIB: f64 = 1024.0 * 1024.0;

/// An ordinary reply: text and HTML with a quoted history, about 6 KB.
fn ordinary() -> Vec<u8> {
    let para = "Thanks for the quick answer. The printer is plugged in and the display shows an \
                error code; a photo follows when I am back at my desk.";
    let quoted: String = (0..30)
        .map(|i| format!("> line {i} of the earlier mail\r\n"))
        .collect();
    format!(
        "Return-Path: <anna@acme.example>\r\nFrom: Anna Example <anna@acme.example>\r\n\
         To: support@helpdesk.example\r\nSubject: Re: [{}] Printer on fire\r\n\
         Message-ID: <ordinary@acme.example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
         --alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{para}\r\n\r\n{quoted}\r\n\
         --alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>{para}</p>\
         <blockquote>{}</blockquote>\r\n--alt--\r\n",
        hostile::TICKET,
        quoted.replace("\r\n", "<br>")
    )
    .into_bytes()
}

/// `deskmail ingest FILE` on a fresh store under GNU time: seconds and peak memory (MiB).
fn ingest_once(raw: &[u8]) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("deskmail.toml");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deskmail.example.toml");
    std::fs::copy(example, &config).unwrap();
    let mail = dir.path().join("mail.eml");
    std::fs::write(&mail, raw).unwrap();
    // The store, the reply-token secret and anna's ticket, which the cases answer, exist before
    // the measured run, as in a running installation.
    let status = without_deskmail_env(&mut Command::new(env!("CARGO_BIN_EXE_deskmail")))
        .env(
            "DESKMAIL__HELPDESK__TICKET_FORMAT",
            "{prefix}-20261122-{seq:04}",
        )
        .arg("--config")
        .arg(&config)
        .args(["ticket", "create", "--as", "anna@acme.example"])
        .args(["--subject", "Printer on fire", "--text", "It smokes."])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let report = dir.path().join("time.txt");
    without_deskmail_env(&mut Command::new("/usr/bin/time"))
        .arg("-f")
        .arg("%e %M")
        .arg("-o")
        .arg(&report)
        .arg(env!("CARGO_BIN_EXE_deskmail"))
        .arg("--config")
        .arg(&config)
        .arg("ingest")
        .arg(&mail)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("GNU time (/usr/bin/time)");
    let text = std::fs::read_to_string(report).unwrap();
    let mut words = text.lines().last().unwrap_or_default().split_whitespace();
    let secs: f64 = words
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or(f64::NAN);
    let kb: f64 = words
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or(f64::NAN);
    (secs, kb / 1024.0)
}

/// mail-parser's bare parse of the same bytes: seconds and peak heap (MiB).
fn bare_parse(raw: &[u8]) -> (f64, f64) {
    let before = IN_USE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let t = Instant::now();
    let parsed = mail_parser::MessageParser::default().parse(raw);
    let secs = t.elapsed().as_secs_f64();
    drop(parsed);
    let peak = PEAK.load(Relaxed).saturating_sub(before);
    (secs, peak as f64 / MIB)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    // `cargo bench --bench hostile -- --write DIR`: the corpus as files, nothing measured.
    if let Some(dir) = args
        .iter()
        .position(|a| a == "--write")
        .and_then(|i| args.get(i + 1))
    {
        std::fs::create_dir_all(dir).unwrap();
        for case in hostile::cases() {
            std::fs::write(
                Path::new(dir).join(format!("{}.eml", case.name)),
                (case.make)(),
            )
            .unwrap();
        }
        return;
    }
    let rounds: usize = std::env::var("DESKMAIL_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let cases = hostile::cases();
    let mut names = vec!["ordinary reply (baseline)"];
    names.extend(cases.iter().map(|c| c.name));
    let mut whats = vec!["a 6 KB reply, text and HTML"];
    whats.extend(cases.iter().map(|c| c.what));
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new(); names.len()];
    let mut parses: Vec<Vec<(f64, f64)>> = vec![Vec::new(); names.len()];
    let mut sizes = vec![0usize; names.len()];
    for round in 0..rounds {
        eprintln!("hostile: round {} of {rounds}", round + 1);
        for k in 0..names.len() {
            let raw = if k == 0 {
                ordinary()
            } else {
                (cases[k - 1].make)()
            };
            sizes[k] = raw.len();
            parses[k].push(bare_parse(&raw));
            runs[k].push(ingest_once(&raw));
        }
    }
    let med = |v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| median(v.iter().map(f).collect());
    let baseline = med(&runs[0], |r| r.1);
    println!(
        "| case | what | size | deskmail ingest | peak RSS | above baseline | mail-parser parse | its peak heap |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for k in 0..names.len() {
        let (secs, rss) = (med(&runs[k], |r| r.0), med(&runs[k], |r| r.1));
        let (psecs, pheap) = (med(&parses[k], |r| r.0), med(&parses[k], |r| r.1));
        println!(
            "| {} | {} | {:.1} MiB | {:.2} s | {:.0} MiB | {:+.0} MiB | {:.3} s | {:.0} MiB |",
            names[k],
            whats[k],
            sizes[k] as f64 / MIB,
            secs,
            rss,
            rss - baseline,
            psecs,
            pheap
        );
    }
}

/// Leaves the shell's `DESKMAIL*` variables out of a child's environment: the benchmark
/// measures the config it writes, not the caller's overrides.
fn without_deskmail_env(c: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars() {
        if k.starts_with("DESKMAIL") {
            c.env_remove(k);
        }
    }
    c
}
