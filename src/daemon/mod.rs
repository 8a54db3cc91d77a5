//! `deskmail run`: the service. One task per mailbox source (IMAP, Maildir), all feeding one
//! intake; one outbox sender, woken when a commit queued notifications and on a timer for
//! retries; the time rules on a timer; the HTTP endpoint (`/metrics`, `/healthz`, `/readyz`).
//! With no source configured (mail comes by the MTA's pipe) it still sends and sweeps.
//!
//! SIGTERM or SIGINT stops fetching, lets the mails in hand and the outbox's batch finish, and
//! exits within `daemon.stop_within_secs`; what is left is redone by the next start. SIGHUP
//! reads the settings again (directory, workflow, templates); a bad file keeps the running ones.

mod health;
mod http;
pub(crate) mod imap;
mod lease;
mod maildir;
pub mod metrics;
mod outbox;
mod sweep;
mod systemd;
mod tokens;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;

use crate::config::{Settings, Source};
use crate::desk::{Desk, IngestError, MailReport};
use crate::errors::{self, TaskFailed};
use crate::intake::{self, Ack, Arrival, Desks};
pub use health::Health;
use metrics::Metrics;

/// Why the daemon could not start (once started, it never stops for a fault).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// What the daemon's tasks share.
pub struct Shared {
    /// The desk in place (a reload puts a new one).
    pub desks: Desks,
    pub metrics: Metrics,
    pub health: Health,
    /// Wakes the outbox sender: a commit queued notifications.
    pub outbox_wake: Notify,
    /// Turns true when the daemon stops.
    pub stopping: watch::Receiver<bool>,
    /// This daemon's name in the leases.
    pub holder: String,
}

impl Shared {
    pub fn desk(&self) -> Arc<Desk> {
        self.desks.borrow().clone()
    }

    /// An acknowledgement that counts the mail, wakes the outbox when the mail queued
    /// notifications, and then does what the source needs done (`then`).
    pub fn ack(
        self: &Arc<Self>,
        mailbox: &str,
        arrived: Instant,
        then: impl FnOnce(&Result<MailReport, IngestError>) + Send + 'static,
    ) -> Ack {
        let shared = Arc::clone(self);
        let mailbox = mailbox.to_string();
        Box::new(move |result| {
            let outcome = match result {
                Ok(r) => r.status.as_str(),
                Err(IngestError::Failed { .. }) => "failed",
                Err(IngestError::Temporary(_)) => "temporary",
            };
            shared.metrics.mail(&mailbox, outcome);
            if !matches!(result, Err(IngestError::Temporary(_))) {
                shared
                    .metrics
                    .to_commit
                    .observe(arrived.elapsed().as_secs_f64());
            }
            if result.as_ref().is_ok_and(|r| !r.mailed.is_empty()) {
                shared.outbox_wake.notify_one();
            }
            // The desk logs each mail taken in and each kept as failed, in the mail's span;
            // a deferred one only here.
            if let Err(e @ IngestError::Temporary(_)) = result {
                tracing::warn!(mailbox = %mailbox, "{e}");
            }
            then(result)
        })
    }

    /// A mailbox's source is connected (or, for a Maildir, watching).
    pub fn connected(&self, mailbox: &str) {
        self.health.connected(mailbox);
        self.metrics
            .connected
            .get_or_create(&Metrics::mailbox(mailbox))
            .set(1);
    }

    /// A mailbox's source failed; it tries again after a while.
    pub fn failed(&self, mailbox: &str, error: &str) {
        self.health.failed(mailbox, error);
        self.metrics
            .connected
            .get_or_create(&Metrics::mailbox(mailbox))
            .set(0);
    }

    /// Mails of a mailbox were moved out of its watched folder.
    pub fn moved(&self, mailbox: &str, n: usize) {
        self.metrics
            .moved
            .get_or_create(&Metrics::mailbox(mailbox))
            .inc_by(n as u64);
    }

    /// A mailbox was read to its end.
    pub fn synced(&self, mailbox: &str) {
        self.health.round(mailbox);
        let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
        self.metrics
            .last_sync
            .get_or_create(&Metrics::mailbox(mailbox))
            .set(now);
    }

    /// True once the daemon stops.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }
}

/// Waits until the daemon stops.
pub async fn stopped(stopping: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: stopping too.
    let _ = stopping.wait_for(|s| *s).await;
}

/// Runs the service until SIGTERM or SIGINT; the exit code.
pub async fn run(path: &Path, settings: Settings, desk: Desk) -> Result<u8, StartError> {
    let mut desk = desk;
    let holder = lease::holder();
    desk.claims_as = Some(holder.clone());
    if let Err(e) = desk.render_elsewhere() {
        tracing::warn!(error = %e, "no rendering thread; rendering in place");
    }
    let options = intake_options(&desk);
    release_claims(&desk).await;
    let (put_desk, desks) = watch::channel(Arc::new(desk));
    let (stop, stopping) = watch::channel(false);
    let shared = Arc::new(Shared {
        desks,
        metrics: Metrics::new(),
        health: Health::default(),
        outbox_wake: Notify::new(),
        stopping,
        holder,
    });
    let listener = match settings.daemon.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Listen { addr, source })?,
        ),
        None => None,
    };

    // Batches: an IMAP chunk (see imap::CHUNK_MAILS and CHUNK_BYTES), or one mail of a
    // Maildir. Two wait at most: the read-ahead thread holds the one it works on.
    let (arrive, arrivals) = mpsc::channel::<Vec<Arrival>>(2);
    let intake = {
        let desks = shared.desks.clone();
        tokio::spawn(async move {
            if let Err(e) =
                intake::run(&desks, intake::Arrivals::Streamed(arrivals), &options).await
            {
                tracing::error!("taking mail in stopped: {}", errors::Chain(&e));
            }
        })
    };
    let mut sources = JoinSet::new();
    for mailbox in &settings.mailboxes {
        let Some(source) = &mailbox.source else {
            continue;
        };
        shared.health.watch(&mailbox.name);
        let (source, name, arrive) = (source.clone(), mailbox.name.clone(), arrive.clone());
        let work = {
            let (shared, name) = (Arc::clone(&shared), name.clone());
            move |fence| {
                let (shared, name, arrive) = (Arc::clone(&shared), name.clone(), arrive.clone());
                let source = source.clone();
                async move {
                    match source {
                        Source::Maildir(m) => maildir::run(name, m, shared, arrive, fence).await,
                        Source::Imap(s) => imap::run(name, s, shared, arrive, fence).await,
                    }
                }
            }
        };
        sources.spawn(lease::run(Arc::clone(&shared), name, work));
    }
    drop(arrive);
    let mut others = JoinSet::new();
    others.spawn(lease::alive(Arc::clone(&shared)));
    others.spawn(outbox::run(Arc::clone(&shared)));
    others.spawn(sweep::run(Arc::clone(&shared)));
    others.spawn(tokens::run(Arc::clone(&shared)));
    if let Some(listener) = listener {
        others.spawn(http::serve(listener, Arc::clone(&shared)));
    }
    let watchdog = tokio::spawn(watchdog(Arc::clone(&shared)));

    let watched = settings
        .mailboxes
        .iter()
        .filter(|m| m.source.is_some())
        .count();
    let status = format!("watching {watched} mailbox(es)");
    systemd::ready(&status);
    tracing::info!(
        config = %path.display(),
        listen = ?settings.daemon.listen,
        "deskmail is running: {status}"
    );

    wait_for_stop(path, &settings, &put_desk).await;
    systemd::stopping();
    tracing::info!("stopping: no more mail is fetched; finishing what is in hand");
    let _ = stop.send(true);
    let within = settings.daemon.stop_within;
    let finished = tokio::time::timeout(within, async {
        while let Some(ended) = sources.join_next().await {
            report_end("a mailbox's source", ended);
        }
        report_end("the intake", intake.await);
        while let Some(ended) = others.join_next().await {
            report_end("a task of the daemon", ended);
        }
    })
    .await;
    watchdog.abort();
    match finished {
        Ok(()) => tracing::info!("stopped"),
        Err(_) => tracing::warn!(
            "stopped after {} s with work unfinished: the next start redoes it",
            within.as_secs()
        ),
    }
    Ok(0)
}

/// Logs a task that ended by a panic, with what the panic said. The tasks are joined when the
/// daemon stops; the panic hook wrote the panic to stderr when it happened.
fn report_end(task: &str, ended: Result<(), tokio::task::JoinError>) {
    if let Err(e) = ended {
        tracing::error!("{task} ended: {}", TaskFailed::from(e));
    }
}

/// On SQLite only this daemon sends: notifications a killed run had in hand go out now, not
/// when their claims run out (on PostgreSQL another daemon may be sending them).
async fn release_claims(desk: &Desk) {
    if desk.store.dialect() != crate::store::Dialect::Sqlite {
        return;
    }
    match desk.store.release_claims(jiff::Timestamp::now()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!("{n} notification(s) an earlier run had in hand are sent again"),
        Err(e) => tracing::warn!("cannot release earlier claims: {}", errors::Chain(&e)),
    }
}

/// One transaction at a time on SQLite (one writer); several on PostgreSQL.
fn intake_options(desk: &Desk) -> intake::Options {
    let postgres = desk.store.dialect() == crate::store::Dialect::Postgres;
    intake::Options {
        batch: 100,
        parallel: if postgres { 4 } else { 1 },
        dry_run: false,
        now: None,
    }
}

/// Waits for SIGTERM or SIGINT; reloads on SIGHUP meanwhile.
async fn wait_for_stop(path: &Path, settings: &Settings, put_desk: &watch::Sender<Arc<Desk>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot listen for signals: stopping");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => reload(path, settings, put_desk).await,
        }
    }
}

/// Reads the settings again and puts a desk on them in place; a bad file keeps the running
/// one. Sources and the store stay as they are: a change to them needs a restart.
async fn reload(path: &Path, running: &Settings, put_desk: &watch::Sender<Arc<Desk>>) {
    systemd::reloading();
    tracing::info!(config = %path.display(), "reloading the settings");
    // The desk in place is borrowed only while the new one is made: `send` waits for every
    // borrow to end.
    let loaded = load_again(path, running, &put_desk.borrow());
    match loaded {
        Ok(desk) => {
            let _ = put_desk.send(Arc::new(desk));
            tracing::info!("reloaded: directory, workflow and templates are the file's now");
        }
        Err(e) => tracing::error!("reload failed, the running settings stay: {e}"),
    }
    systemd::ready("reloaded");
}

fn load_again(path: &Path, running: &Settings, desk: &Desk) -> Result<Desk, String> {
    let settings = crate::config::load(path).map_err(|e| errors::chain(&e))?;
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }
    if settings.store_url.expose() != running.store_url.expose() {
        tracing::warn!("store.url changed: it takes effect at the next start");
    }
    let outbound =
        crate::outbound::Outbound::open(&settings.outbound).map_err(|e| errors::chain(&e))?;
    let claims_as = desk.claims_as.clone();
    let mut desk = Desk::new(settings, desk.store.clone(), outbound);
    desk.claims_as = claims_as;
    if let Err(e) = desk.render_elsewhere() {
        tracing::warn!(error = %e, "no rendering thread; rendering in place");
    }
    Ok(desk)
}

/// Keeps systemd's status line current, and tells its watchdog the daemon is alive as long as
/// every source's loop goes round.
async fn watchdog(shared: Arc<Shared>) {
    let watchdog = systemd::watchdog_interval();
    let every = watchdog.map_or(Duration::from_secs(15), |w| {
        (w / 2).min(Duration::from_secs(15))
    });
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let (connected, watched) = shared.health.connected_of_watched();
        let waiting = shared.metrics.outbox_depth.get();
        systemd::status(&format!(
            "{connected} of {watched} mailbox(es) connected; {waiting} notification(s) waiting"
        ));
        if watchdog.is_none() {
            continue;
        }
        let stuck = shared.health.stuck();
        if stuck.is_empty() {
            systemd::alive();
        } else {
            tracing::error!(
                "not telling the watchdog: {} stopped going round",
                stuck.join(", ")
            );
        }
    }
}
