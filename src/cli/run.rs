//! `deskmail run`: the service (see `crate::daemon`). Exit 0 after SIGTERM or SIGINT, 78
//! (EX_CONFIG) when the configuration has problems, 1 when it cannot start (the database
//! unreachable, the endpoint's port taken): systemd restarts it then.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::{self, LogFormat};

/// sysexits.h: a configuration error.
const EX_CONFIG: u8 = 78;

pub fn main(config: Option<&Path>, verbose: u8) -> ExitCode {
    let path = config::locate(config);
    let settings = config::load(&path);
    let (level, format) = match &settings {
        Ok(s) => (s.log_level.as_str(), s.log_format),
        Err(_) => ("info", LogFormat::Text),
    };
    let level = match verbose {
        0 => level,
        1 => "info",
        _ => "debug",
    };
    super::init_logging(level, format);
    let settings = match settings {
        Ok(s) => s,
        Err(config::ConfigErrors(problems)) => {
            for p in problems {
                tracing::error!("{p}");
            }
            return ExitCode::from(EX_CONFIG);
        }
    };
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }
    // On SQLite, the runtime and the database's worker threads stay on one CPU and the work
    // that needs no database goes to the others, as for `deskmail ingest` (see
    // `crate::affinity`); PostgreSQL takes mails over several connections.
    let postgres = settings.store_url.expose().starts_with("postgres");
    if !postgres && crate::affinity::stay_on_this_cpu().is_some() {
        tracing::debug!("the daemon's runtime stays on one CPU");
    }
    // Two workers: a long sweep or a large mail's commit never holds up the other tasks.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        let desk = match super::open_settings(settings.clone(), Duration::from_secs(10)).await {
            Ok(d) => d,
            Err(e) => {
                for reason in e.reasons() {
                    tracing::error!("cannot start: {reason}");
                }
                return 1;
            }
        };
        match crate::daemon::run(&path, settings, desk).await {
            Ok(code) => code,
            Err(e) => {
                tracing::error!("cannot start: {}", crate::errors::Chain(&e));
                1
            }
        }
    });
    // Tasks still running after the stop's time bound are not waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    ExitCode::from(code)
}
