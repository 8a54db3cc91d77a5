//! `deskmail ingest [--mailbox NAME] [--dry-run] [--json] [FILE... | DIR | -]`: mails from
//! files, a directory (of .eml files, or a Maildir) or stdin through the inbound pipeline. Usable
//! as an MTA pipe: exit 0 when every mail was applied, recorded or refused with a notice, 65
//! (EX_DATAERR) for a mail that can never be processed (kept as failed), 75 (EX_TEMPFAIL) when
//! the MTA should try again later (the database busy or down); with several mails, the worst.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;
use jiff::Timestamp;

use super::Failure;
use crate::desk::{Desk, Incoming, IngestError};

/// sysexits.h: the input data was incorrect.
pub const EX_DATAERR: u8 = 65;
/// sysexits.h: a temporary failure; the sender should try again later.
pub const EX_TEMPFAIL: u8 = 75;

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The mailbox (by name, see [[mailboxes]]) the mails came in at
    #[arg(long, value_name = "NAME")]
    pub mailbox: Option<String>,
    /// Work everything out and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object per mail on stdout (class, sender, ticket, text, commands, decision)
    #[arg(long)]
    pub json: bool,
    /// Mails per transaction (each is committed before any of its mails is reported)
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub batch: usize,
    /// Pretend it is this time (RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Run on every CPU (by default ingest stays on one: with SQLite that is about twice as
    /// fast, see src/cli/affinity.rs)
    #[arg(long)]
    pub all_cpus: bool,
    /// Mail files, directories of them (or Maildirs), or - for stdin (the default)
    #[arg(value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
}

/// One input: a file, or stdin.
enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    fn name(&self) -> String {
        match self {
            Input::Stdin => "stdin".into(),
            Input::File(p) => p.display().to_string(),
        }
    }

    fn read(&self) -> std::io::Result<Vec<u8>> {
        match self {
            Input::Stdin => {
                let mut raw = Vec::new();
                std::io::stdin().read_to_end(&mut raw)?;
                Ok(raw)
            }
            Input::File(p) => std::fs::read(p),
        }
    }
}

/// The files of a directory: a Maildir's `new` and `cur`, or the directory's own files; in name
/// order, hidden ones left out.
fn files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let maildir = dir.join("new").is_dir() || dir.join("cur").is_dir();
    let dirs: Vec<PathBuf> = if maildir {
        ["new", "cur"]
            .iter()
            .map(|d| dir.join(d))
            .filter(|d| d.is_dir())
            .collect()
    } else {
        vec![dir.to_path_buf()]
    };
    let mut out = Vec::new();
    for d in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && !p
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.'))
            })
            .collect();
        files.sort();
        out.extend(files);
    }
    Ok(out)
}

/// The inputs named on the command line, directories expanded; read a group at a time, so
/// that a large Maildir is never all in memory.
fn list_inputs(inputs: &[PathBuf]) -> Result<Vec<Input>, Failure> {
    let mut out = Vec::new();
    if inputs.is_empty() || inputs.iter().any(|p| p.as_os_str() == "-") {
        out.push(Input::Stdin);
    }
    for p in inputs.iter().filter(|p| p.as_os_str() != "-") {
        if p.is_dir() {
            let files = files_in(p).map_err(|e| Failure(format!("{}: {e}", p.display())))?;
            out.extend(files.into_iter().map(Input::File));
        } else {
            out.push(Input::File(p.clone()));
        }
    }
    Ok(out)
}

/// Runs the pipeline; returns the exit code.
pub async fn run(desk: Result<Desk, Failure>, args: IngestArgs) -> Result<u8, Failure> {
    let inputs = list_inputs(&args.inputs)?;
    let desk = match desk {
        Ok(d) => d,
        Err(Failure(message)) => {
            // The database is not there: the MTA keeps the mail and tries again.
            eprintln!("deskmail ingest: {message}");
            return Ok(EX_TEMPFAIL);
        }
    };
    if let Some(m) = &args.mailbox
        && !desk.settings.mailboxes.iter().any(|b| &b.name == m)
    {
        return Err(Failure(format!(
            "--mailbox {m}: no such mailbox (see [[mailboxes]])"
        )));
    }
    let now = match &args.now {
        Some(t) => t
            .parse()
            .map_err(|e| Failure(format!("--now {t}: not an RFC 3339 time: {e}")))?,
        None => Timestamp::now(),
    };
    let mut worst = 0u8;
    for group in inputs.chunks(args.batch.max(1)) {
        let mut mails: Vec<Incoming> = Vec::with_capacity(group.len());
        let mut names: Vec<String> = Vec::with_capacity(group.len());
        for input in group {
            match input.read() {
                Ok(raw) => {
                    mails.push(Incoming {
                        raw,
                        mailbox: args.mailbox.clone(),
                    });
                    names.push(input.name());
                }
                Err(e) => {
                    // A file that cannot be read may be readable later: the MTA retries.
                    eprintln!("{}: cannot read it: {e}", input.name());
                    worst = worse(worst, EX_TEMPFAIL);
                }
            }
        }
        let results = desk.ingest(&mails, now, args.dry_run).await;
        for (name, result) in names.iter().zip(results) {
            let code = match &result {
                Ok(_) => 0,
                Err(IngestError::Failed { .. }) => EX_DATAERR,
                Err(IngestError::Temporary(_)) => EX_TEMPFAIL,
            };
            worst = worse(worst, code);
            match result {
                Ok(report) => {
                    let dry = if args.dry_run { "dry run: " } else { "" };
                    eprintln!("{name}: {dry}{}", report.line());
                    if args.json {
                        println!("{}", serde_json::to_string(&report)?);
                    }
                }
                Err(e) => {
                    eprintln!("{name}: {e}");
                    if args.json {
                        let v = serde_json::json!({ "status": if code == EX_TEMPFAIL { "temporary" } else { "failed" }, "error": e.to_string() });
                        println!("{v}");
                    }
                }
            }
        }
    }
    Ok(worst)
}

/// 75 over 65 over 0.
fn worse(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        EX_TEMPFAIL => 2,
        EX_DATAERR => 1,
        _ => 0,
    };
    if rank(b) > rank(a) { b } else { a }
}
