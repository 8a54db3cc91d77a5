//! The command line: `deskmail [--config FILE] <command>`. One file per command group; each
//! turns its arguments into calls on [`crate::desk::Desk`] and its results into text or JSON.

use crate::affinity;
mod auth;
mod check_config;
mod doctor;
mod inbound;
mod ingest;
mod outbox;
mod run;
mod ticket;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::{self, LogFormat, Settings};
use crate::desk::Desk;
use crate::errors;
use crate::outbound::{Outbound, OutboundError};
use crate::store::{Store, StoreError};

/// deskmail: an e-mail-driven helpdesk gateway.
///
/// Customers and partners act on tickets by replying to mail; agents and admins use this command
/// line. Every command reads one TOML config file (see deskmail.example.toml).
#[derive(Debug, Parser)]
#[command(name = "deskmail", version, about, long_about)]
pub struct Cli {
    /// The config file [default: $DESKMAIL_CONFIG, ./deskmail.toml, /etc/deskmail/deskmail.toml]
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log more (-v: info, -vv: debug); RUST_LOG overrides it
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the config (directory, workflow, store) and report every problem at once
    CheckConfig,
    /// Create or upgrade the database schema
    Migrate,
    /// Create, act on, list and show tickets
    #[command(subcommand)]
    Ticket(Box<ticket::TicketCommand>),
    /// List, send and retry notifications
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// Take in mails (files, a Maildir, a folder of .eml files, or stdin as an MTA pipe): exit
    /// 0 done, 65 a mail that can never be processed (kept as failed), 75 try again later
    Ingest(ingest::IngestArgs),
    /// List the mails taken in, and apply a failed one again
    #[command(subcommand)]
    Inbound(inbound::InboundCommand),
    /// Run as a service: watch the mailboxes, send notifications, apply the time rules (stop
    /// with SIGTERM, reload the settings with SIGHUP)
    Run,
    /// Copy the SQLite store to FILE (a new file) while deskmail runs, and check the copy
    Backup {
        /// Where the backup goes; it must not exist yet
        file: std::path::PathBuf,
    },
    /// Sign in to the OAuth2 accounts (Microsoft 365, Google) of the mailboxes and of SMTP
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Check that every account, server and certificate of the config works, before going
    /// live: a line per check (OK, WARN, FAIL) with a hint; exit 1 when a check fails
    Doctor {
        /// The checks as a JSON array of {subject, check, status, detail, hint}
        #[arg(long)]
        json: bool,
    },
    /// Print the completions for a shell (bash, zsh, fish) on stdout
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout: `deskmail man-page | man -l -`
    ManPage {
        /// Write every page instead (deskmail.1, and deskmail-ticket.1 ... for each command)
        /// into this directory, made if missing
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Apply the workflow's time rules that are due (e.g. close tickets Resolved for 7 days)
    Sweep {
        /// Pretend it is this time (RFC 3339, e.g. 2026-12-01T09:00:00Z)
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
    },
}

/// Why a command could not get to work: its configuration, outbound mail's setup (the
/// templates, the reply-token secret), or the store.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Config(#[from] config::ConfigErrors),
    #[error(transparent)]
    Outbound(#[from] OutboundError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OpenError {
    /// One line per reason, each with its causes: a configuration (or a template directory)
    /// may have several.
    pub fn reasons(&self) -> Vec<String> {
        match self {
            OpenError::Config(config::ConfigErrors(problems)) => {
                problems.iter().map(ToString::to_string).collect()
            }
            OpenError::Outbound(OutboundError::Templates(problems)) => {
                problems.iter().map(ToString::to_string).collect()
            }
            other => vec![errors::chain(other)],
        }
    }
}

/// What a command failed with: printed on stderr with its causes, exit code 1. Any error
/// converts into one and keeps its chain; [`Failure::msg`] is a failure of the command line's
/// own, [`Failure::with_cause`] one that says what was being done when its cause happened.
#[derive(Debug)]
pub struct Failure(Box<dyn std::error::Error + Send + Sync>);

/// A command line's own words for what it was doing, with the error that stopped it.
#[derive(Debug, thiserror::Error)]
#[error("{text}")]
struct Doing {
    text: String,
    #[source]
    cause: Box<dyn std::error::Error + Send + Sync>,
}

impl Failure {
    pub fn msg(text: impl Into<String>) -> Failure {
        Failure(text.into().into())
    }

    pub fn with_cause(
        text: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Failure {
        Failure(Box::new(Doing {
            text: text.into(),
            cause: Box::new(cause),
        }))
    }

    /// The lines printed on stderr: `deskmail: what failed`, then `  caused by: why`.
    pub fn lines(&self) -> Vec<String> {
        let mut causes = errors::causes(self.0.as_ref()).into_iter();
        let first = causes.next().unwrap_or_default();
        std::iter::once(format!("deskmail: {first}"))
            .chain(causes.map(|c| format!("  caused by: {c}")))
            .collect()
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(Box::new(e))
    }
}

pub type CmdResult = Result<(), Failure>;

/// Runs the command line; the exit code is 0 on success, 1 on a refusal or an error, 2 on a
/// usage error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Run = cli.command {
        return run::main(cli.config.as_deref(), cli.verbose);
    }
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    init_logging(level, LogFormat::Text);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("deskmail: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            for line in failure.lines() {
                eprintln!("{line}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr at `default` (RUST_LOG overrides it), as text or JSON lines.
fn init_logging(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
        // sqlx logs the values of URL parameters it does not know (libpq's `sslpassword`) and
        // the malformed lines of ~/.pgpass, passwords and all, whatever RUST_LOG says; the
        // config names such parameters itself, by key (`Settings::warnings`).
        .add_directive(
            "sqlx_postgres::options=error"
                .parse()
                .expect("a valid directive"),
        );
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => fmt.with_ansi(colour()).try_init(),
        LogFormat::Json => fmt.json().with_ansi(false).try_init(),
    };
}

/// Colours only for a person at a terminal: stderr may be a log file, or the pipe an MTA reads
/// `ingest`'s lines from, and bounces quote those lines as they are. `NO_COLOR` (set and not
/// empty, see no-color.org) turns them off there too.
fn colour() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Runs a command; the exit code on success (ingest has its own).
async fn run(cli: Cli) -> Result<u8, Failure> {
    let path = config::locate(cli.config.as_deref());
    if let Command::Ingest(args) = cli.command {
        let settings = load(&path);
        // On SQLite (the embedded default) one CPU is faster; PostgreSQL takes mails in
        // parallel over several connections.
        let postgres = settings
            .as_ref()
            .is_ok_and(|s| s.store_url.expose().starts_with("postgres"));
        if !args.all_cpus && !postgres && affinity::stay_on_this_cpu().is_some() {
            tracing::debug!("ingest stays on one CPU");
        }
        // An MTA waits for the pipe: an unreachable database is given 3 seconds, then the
        // mail is deferred (exit 75) and the MTA tries again later.
        let open = async move {
            match settings {
                Ok(settings) => open_settings(settings, Duration::from_secs(3)).await,
                Err(e) => Err(e.into()),
            }
        };
        return ingest::run(open, args).await;
    }
    run_other(cli.command, &path).await.map(|()| 0)
}

async fn run_other(command: Command, path: &std::path::Path) -> CmdResult {
    match command {
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cli = Cli::command();
            clap_complete::generate(shell, &mut cli, "deskmail", &mut std::io::stdout());
            Ok(())
        }
        Command::ManPage { dir } => {
            use clap::CommandFactory;
            match dir {
                Some(dir) => std::fs::create_dir_all(&dir)
                    .and_then(|()| clap_mangen::generate_to(Cli::command(), &dir))
                    .map_err(|e| {
                        Failure::with_cause(
                            format!("cannot write the manual pages into {}", dir.display()),
                            e,
                        )
                    }),
                None => clap_mangen::Man::new(Cli::command())
                    .render(&mut std::io::stdout())
                    .map_err(|e| Failure::with_cause("cannot write the manual page", e)),
            }
        }
        Command::CheckConfig => check_config::run(path).await,
        Command::Auth(cmd) => auth::run(load(path)?, cmd).await,
        Command::Doctor { json } => doctor::run(path, json).await,
        Command::Migrate => {
            let settings = load(path)?;
            let store = Store::connect(settings.store_url.expose()).await?;
            let ran = store.migrate().await?;
            println!(
                "{} migration(s) applied; the schema of {} is current",
                ran,
                store.url()
            );
            Ok(())
        }
        Command::Backup { file } => {
            let settings = load(path)?;
            let url = settings.store_url.expose();
            if url.starts_with("postgres") {
                // Said without connecting to it.
                return Err(crate::store::BackupError::Postgres.into());
            }
            let store = Store::connect(url).await?;
            let b = store.backup(&file).await?;
            println!(
                "{} backed up to {}: {} tickets, {} stored mails, {} bytes; the copy passed SQLite's integrity check and has the current schema",
                store.url(),
                file.display(),
                b.tickets,
                b.mails,
                b.bytes
            );
            store.close().await;
            Ok(())
        }
        Command::Ticket(cmd) => ticket::run(open(path).await?, *cmd).await,
        Command::Outbox(cmd) => outbox::run(open(path).await?, cmd).await,
        Command::Inbound(cmd) => inbound::run(open(path).await?, cmd).await,
        Command::Ingest(_) => Err(Failure::msg("ingest runs through `run`")),
        Command::Run => Err(Failure::msg("the daemon runs through `run::main`")),
        Command::Sweep { now } => {
            let desk = open(path).await?;
            let now = match now {
                Some(t) => t.parse().map_err(|e| {
                    Failure::with_cause(format!("--now {t}: not an RFC 3339 time"), e)
                })?,
                None => jiff::Timestamp::now(),
            };
            let report = desk.sweep(now).await?;
            for (reference, rule) in &report.changed {
                println!("{reference}: {rule}");
            }
            if report.reworked > 0 {
                eprintln!(
                    "sweep: the time rules changed: {} ticket(s) have a new due time",
                    report.reworked
                );
            }
            eprintln!(
                "sweep: {} ticket(s) due, {} changed",
                report.checked,
                report.changed.len()
            );
            if report.bodies_dropped > 0 {
                eprintln!(
                    "sweep: the bodies of {} sent notification(s) dropped (outbound.keep_sent_for)",
                    report.bodies_dropped
                );
            }
            Ok(())
        }
    }
}

/// Loads the settings; their warnings go to the log.
fn load(path: &std::path::Path) -> Result<Settings, config::ConfigErrors> {
    let settings = config::load(path)?;
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }
    Ok(settings)
}

/// Loads the settings and opens the store, migrating it when needed.
async fn open(path: &std::path::Path) -> Result<Desk, Failure> {
    let settings = load(path)?;
    Ok(open_settings(settings, Duration::from_secs(10)).await?)
}

/// The desk on these settings, giving an unreachable database `timeout`.
async fn open_settings(settings: Settings, timeout: Duration) -> Result<Desk, OpenError> {
    let outbound = Outbound::open(&settings.outbound)?;
    let url = settings.store_url.expose();
    let store = Store::open_with(url, timeout, settings.store_cache_mib).await?;
    Ok(Desk::new(settings, store, outbound))
}
