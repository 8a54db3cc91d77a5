//! `deskmail ingest [--mailbox NAME] [--dry-run] [--json] [FILE... | DIR | -]`: mails from
//! files, a directory (a Maildir, or a folder of `.eml` files; any other is refused) or stdin
//! through the inbound pipeline. Usable
//! as an MTA pipe: exit 0 when every mail was applied, recorded or refused with a notice, 65
//! (EX_DATAERR) for a mail that can never be processed (kept as failed), 75 (EX_TEMPFAIL) when
//! the MTA should try again later (the database busy or down, or a configuration fault such as a
//! reply-token secret that cannot be read, logged at ERROR); with several mails, the worst.

use std::path::{Path, PathBuf};

use clap::Args;
use jiff::Timestamp;

use std::sync::{Arc, Mutex};

use super::{Failure, OpenError};
use crate::desk::{Desk, IngestError, MailReport, MailStatus, Whole};
use crate::errors;
use crate::intake;

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
    /// Print one JSON object per mail on stdout (class, sender, ticket, text, commands, action, refusal)
    #[arg(long)]
    pub json: bool,
    /// Mails per transaction (each is committed before any of its mails is reported)
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub batch: usize,
    /// Pretend it is this time (RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Run on every CPU (by default ingest stays on one: with SQLite that is about twice as
    /// fast, see src/affinity.rs)
    #[arg(long)]
    pub all_cpus: bool,
    /// Groups committed in parallel, mails of one ticket always in the same group [default: 8
    /// on PostgreSQL, 1 on SQLite, which has one writer]
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Mail files (named one by one, any name), Maildirs (the files in new/ and cur/),
    /// folders of *.eml files (other and hidden files there are left alone; any other folder is
    /// refused), or - for stdin (the default)
    #[arg(value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
}

/// Why an input named on the command line is not taken (nothing is, then).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot list the files of {}", dir.display())]
    Read {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{}: not a Maildir (no new/ or cur/) and none of its {files} file(s) ends in .eml; \
         deskmail ingest takes a Maildir, a folder of .eml files, mail files named one by one, \
         or - for stdin",
        dir.display()
    )]
    NoMail { dir: PathBuf, files: usize },
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

    /// The mail's bytes, at most `limit + 1` of them: a larger mail is refused for its size, so
    /// the rest is only counted and hashed, not kept (what the store keeps of such a mail).
    fn read(&self, limit: u64) -> std::io::Result<(Vec<u8>, Option<Whole>)> {
        match self {
            Input::Stdin => intake::read_capped(std::io::stdin().lock(), limit, 0),
            Input::File(p) => {
                let file = std::fs::File::open(p)?;
                let size = file.metadata().map_or(0, |m| m.len());
                intake::read_capped(file, limit, size)
            }
        }
    }
}

/// The mails of a directory, in name order: a Maildir's (every file in `new` and `cur`: a
/// Maildir holds nothing else), or a folder's `.eml` files (any case). Hidden files are left
/// out; so are a folder's other files, with a warning, and a folder with files but none of them
/// `.eml` is refused: it is not a folder of mail, and taking its files in would store each as a
/// failed mail. An empty folder has no mail.
fn files_in(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let read = |d: &Path| {
        visible_files(d).map_err(|source| InputError::Read {
            dir: d.to_path_buf(),
            source,
        })
    };
    if dir.join("new").is_dir() || dir.join("cur").is_dir() {
        let mut out = Vec::new();
        for d in ["new", "cur"]
            .map(|d| dir.join(d))
            .iter()
            .filter(|d| d.is_dir())
        {
            out.extend(read(d)?);
        }
        return Ok(out);
    }
    let files = read(dir)?;
    let (mails, others): (Vec<PathBuf>, Vec<PathBuf>) = files
        .into_iter()
        .partition(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("eml")));
    if mails.is_empty() && !others.is_empty() {
        return Err(InputError::NoMail {
            dir: dir.to_path_buf(),
            files: others.len(),
        });
    }
    if !others.is_empty() {
        tracing::warn!(
            "{}: {} file(s) not ending in .eml left alone",
            dir.display(),
            others.len()
        );
    }
    Ok(mails)
}

/// A directory's files (not its subdirectories), hidden ones left out, in name order.
fn visible_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
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
    Ok(files)
}

/// The inputs named on the command line, directories expanded; read a group at a time, so
/// that a large Maildir is never all in memory.
fn list_inputs(inputs: &[PathBuf]) -> Result<Vec<Input>, InputError> {
    let mut out = Vec::new();
    if inputs.is_empty() || inputs.iter().any(|p| p.as_os_str() == "-") {
        out.push(Input::Stdin);
    }
    for p in inputs.iter().filter(|p| p.as_os_str() != "-") {
        if p.is_dir() {
            out.extend(files_in(p)?.into_iter().map(Input::File));
        } else {
            out.push(Input::File(p.clone()));
        }
    }
    Ok(out)
}

/// Runs the pipeline on the desk `open` opens; returns the exit code.
pub async fn run(
    open: impl Future<Output = Result<Desk, OpenError>>,
    args: IngestArgs,
) -> Result<u8, Failure> {
    // Inputs that hold no mail are the caller's mistake (exit 1), said before anything is
    // opened or created.
    let inputs = list_inputs(&args.inputs)?;
    let mut desk = match open.await {
        Ok(d) => d,
        Err(e) => {
            // The database is down, or the configuration needs the admin (a reply-token secret
            // that cannot be read, say): either way the MTA keeps the mail and tries again.
            // One line per reason: an MTA quotes them in its log or its bounce.
            for reason in e.reasons() {
                tracing::error!("cannot take mail in: {reason}");
            }
            return Ok(EX_TEMPFAIL);
        }
    };
    if let Some(m) = &args.mailbox
        && !desk.settings.mailboxes.iter().any(|b| &b.name == m)
    {
        return Err(Failure::msg(format!(
            "--mailbox {m}: no such mailbox (see [[mailboxes]])"
        )));
    }
    let now = match &args.now {
        Some(t) => t
            .parse()
            .map_err(|e| Failure::with_cause(format!("--now {t}: not an RFC 3339 time"), e))?,
        None => Timestamp::now(),
    };
    let postgres = desk.store.dialect() == crate::store::Dialect::Postgres;
    let options = intake::Options {
        batch: args.batch.max(1),
        parallel: args.parallel.unwrap_or(if postgres { 8 } else { 1 }).max(1),
        dry_run: args.dry_run,
        now: Some(now),
    };
    // With several mails per transaction, notifications are rendered on a thread of their
    // own while the group goes on (when ingest stays on one CPU, on the others). With one mail
    // per transaction the commit would only wait for it.
    if options.batch > 1 && inputs.len() > 1 && !args.dry_run {
        match desk.render_elsewhere() {
            Ok(()) => tracing::debug!("rendering notifications on another CPU"),
            Err(e) => tracing::warn!(error = %e, "no rendering thread; rendering in place"),
        }
    }
    let printer = Arc::new(Mutex::new(Printer {
        worst: 0,
        json: args.json,
        dry_run: args.dry_run,
        failure: None,
    }));
    let arrivals = arrivals(
        inputs,
        desk.settings.inbound.max_message_bytes,
        args.mailbox.clone(),
        &printer,
    );
    let desks = intake::fixed(desk);
    let taken = intake::run(
        &desks,
        intake::Arrivals::Listed(Box::new(arrivals)),
        &options,
    )
    .await;
    let printer = std::mem::take(&mut *lock(&printer));
    if let Some(failure) = printer.failure {
        return Err(failure);
    }
    if let Err(e) = taken {
        // The mails after the last one reported were not taken in. The MTA keeps them and
        // tries again; a Maildir keeps its files.
        tracing::error!("cannot take mail in: {}", errors::Chain(&e));
        return Ok(worse(printer.worst, EX_TEMPFAIL));
    }
    Ok(printer.worst)
}

/// The inputs as the intake takes them, each read when the intake gets to it; one that cannot
/// be read is reported (the MTA retries it: a file that cannot be read now may be readable
/// later) and left out.
fn arrivals(
    inputs: Vec<Input>,
    limit: u64,
    mailbox: Option<String>,
    printer: &Arc<Mutex<Printer>>,
) -> impl Iterator<Item = intake::Arrival> + Send + 'static {
    let printer = Arc::clone(printer);
    inputs.into_iter().filter_map(move |input| {
        let name = input.name();
        match input.read(limit) {
            Ok((raw, whole)) => {
                let printer = Arc::clone(&printer);
                Some(intake::Arrival {
                    raw,
                    whole,
                    mailbox: mailbox.clone(),
                    origin: None,
                    fence: None,
                    ack: Box::new(move |result| lock(&printer).report(&name, result)),
                })
            }
            Err(e) => {
                eprintln!("{name}: cannot read it: {e}");
                let mut p = lock(&printer);
                p.worst = worse(p.worst, EX_TEMPFAIL);
                None
            }
        }
    })
}

fn lock(printer: &Mutex<Printer>) -> std::sync::MutexGuard<'_, Printer> {
    printer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Says what happened to each mail (a line on stderr, JSON on stdout with `--json`) and keeps
/// the worst exit code.
#[derive(Default)]
struct Printer {
    worst: u8,
    json: bool,
    dry_run: bool,
    /// Writing to stdout failed: the mails go on (they are taken in already), the run fails.
    failure: Option<Failure>,
}

impl Printer {
    fn report(&mut self, name: &str, result: &Result<MailReport, IngestError>) {
        use std::io::Write as _;
        let code = match result {
            Ok(r) if r.status == MailStatus::TooLarge => EX_DATAERR,
            Ok(_) => 0,
            Err(IngestError::Failed { .. }) => EX_DATAERR,
            Err(IngestError::Temporary(_)) => EX_TEMPFAIL,
        };
        self.worst = worse(self.worst, code);
        let (line, json) = match result {
            Ok(report) => {
                let dry = if self.dry_run { "dry run: " } else { "" };
                let json = self.json.then(|| serde_json::to_string(report));
                (format!("{name}: {dry}{}\n", report.line()), json)
            }
            Err(e) => {
                let status = if code == EX_TEMPFAIL {
                    "temporary"
                } else {
                    "failed"
                };
                let json = self.json.then(|| {
                    Ok(serde_json::json!({ "status": status, "error": e.to_string() }).to_string())
                });
                (format!("{name}: {e}\n"), json)
            }
        };
        // A failed write to stderr does not stop the mails: they are taken in already.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
        let Some(json) = json else { return };
        let written = json.map_err(Failure::from).and_then(|mut json| {
            json.push('\n');
            let mut out = std::io::stdout().lock();
            out.write_all(json.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| Failure::with_cause("stdout", e))
        });
        if let Err(e) = written {
            self.failure.get_or_insert(e);
        }
    }
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
