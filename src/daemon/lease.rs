//! Work done under a lease, so that several daemons on one database never watch a mailbox
//! twice: the lease is taken (waiting while another daemon holds it), renewed every third of
//! its time, and given up when the daemon stops. A daemon whose renewal fails stops the work
//! and waits to take the lease again; the mails it had in hand are not committed (the group's
//! transaction checks the lease), so the daemon that took over reads them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Metrics, Shared};
use crate::errors;
use crate::store::Fence;

/// This daemon's name for itself in the leases: host, process and a random part.
pub fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!("{host}:{}:{:08x}", std::process::id(), fastrand::u32(..))
}

/// Keeps this daemon's own lease (`daemon:<holder>`) while it runs: the notifications a
/// daemon claimed go back in the queue once its own lease ran out (see
/// `Store::release_dead_claims`). It is left to run out when the daemon stops, after the
/// outbox's last batch.
pub(super) async fn alive(shared: Arc<Shared>) {
    let name = format!("daemon:{}", shared.holder);
    let mut stopping = shared.stopping.clone();
    loop {
        let desk = shared.desk();
        let secs = desk.settings.daemon.lease.as_secs();
        if let Err(e) = desk.store.take_lease(&name, &shared.holder, secs).await {
            tracing::warn!("cannot renew this daemon's lease: {}", errors::Chain(&e));
        }
        tokio::select! {
            _ = super::stopped(&mut stopping) => return,
            _ = tokio::time::sleep(Duration::from_secs(secs.div_ceil(3).max(1))) => {}
        }
    }
}

/// Runs `work` while this daemon holds the lease of `mailbox`; returns when the work returns
/// (the daemon stops).
pub(super) async fn run<W, F>(shared: Arc<Shared>, mailbox: String, mut work: W)
where
    W: FnMut(Fence) -> F,
    F: Future<Output = ()>,
{
    let name = format!("mailbox:{mailbox}");
    let held = shared
        .metrics
        .lease_held
        .get_or_create(&Metrics::mailbox(&mailbox))
        .clone();
    let mut stopping = shared.stopping.clone();
    loop {
        let Some(fence) = take(&shared, &name, &mailbox).await else {
            return;
        };
        held.set(1);
        let secs = shared.desk().settings.daemon.lease.as_secs();
        tokio::select! {
            () = work(fence.clone()) => {
                held.set(0);
                if let Err(e) = shared.desk().store.release_lease(&fence).await {
                    tracing::warn!(mailbox = %mailbox, "cannot give the lease up: {}", errors::Chain(&e));
                }
                return;
            }
            why = lost(&shared, &fence, secs) => {
                held.set(0);
                shared.failed(&mailbox, &why);
                tracing::warn!(mailbox = %mailbox, "{why}: another daemon may take the mailbox over");
            }
        }
        if shared.is_stopping() {
            return;
        }
        tokio::select! {
            _ = super::stopped(&mut stopping) => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Takes the lease, waiting while another daemon holds it; `None` when the daemon stops.
async fn take(shared: &Shared, name: &str, mailbox: &str) -> Option<Fence> {
    let mut stopping = shared.stopping.clone();
    let mut said = false;
    loop {
        if shared.is_stopping() {
            return None;
        }
        let desk = shared.desk();
        let secs = desk.settings.daemon.lease.as_secs();
        match desk.store.take_lease(name, &shared.holder, secs).await {
            Ok(Some(fence)) => return Some(fence),
            Ok(None) => {
                if !said {
                    tracing::info!(mailbox, "another daemon watches this mailbox; waiting");
                    said = true;
                }
                shared.health.standby(mailbox);
            }
            Err(e) => {
                tracing::warn!(
                    mailbox,
                    "cannot take the mailbox's lease: {}",
                    errors::Chain(&e)
                );
                shared.failed(
                    mailbox,
                    &format!("cannot take the lease: {}", errors::Chain(&e)),
                );
            }
        }
        tokio::select! {
            _ = super::stopped(&mut stopping) => return None,
            _ = tokio::time::sleep(Duration::from_secs(secs.div_ceil(3).max(1))) => {}
        }
    }
}

/// Renews the lease every third of its time; returns why once it is lost: taken over, or not
/// renewed within its time (the database unreachable).
async fn lost(shared: &Shared, fence: &Fence, secs: u64) -> String {
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(secs.div_ceil(3).max(1))).await;
        match shared.desk().store.renew_lease(fence, secs).await {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => return "the lease was taken over".into(),
            Err(e) => {
                if renewed.elapsed() >= Duration::from_secs(secs) {
                    return format!("the lease could not be renewed: {}", errors::Chain(&e));
                }
                tracing::warn!(lease = %fence.name, "cannot renew the lease yet: {}", errors::Chain(&e));
            }
        }
    }
}
