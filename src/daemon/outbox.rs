//! The outbox sender: sends what is due, then waits until a commit queued notifications
//! (`Shared::outbox_wake`) or `daemon.outbox_every_secs` passed (retries, and notifications
//! queued by `deskmail ticket` or another daemon).

use std::sync::Arc;

use jiff::Timestamp;

use super::Shared;
use crate::desk::Desk;
use crate::errors;
use crate::outbound::Transport;

pub(super) async fn run(shared: Arc<Shared>) {
    let mut stopping = shared.stopping.clone();
    // The transport of the desk in place, made again when a reload puts another.
    let mut made: Option<(Arc<Desk>, Transport)> = None;
    let mut released: Option<std::time::Instant> = None;
    loop {
        let desk = shared.desk();
        let every = desk.settings.daemon.outbox_every;
        if released.is_none_or(|at| at.elapsed() >= every) {
            release_dead_claims(&desk).await;
            released = Some(std::time::Instant::now());
        }
        if made.as_ref().is_none_or(|(d, _)| !Arc::ptr_eq(d, &desk)) {
            match Transport::from_settings(&desk.settings.outbound) {
                Ok(t) => made = Some((Arc::clone(&desk), t)),
                Err(e) => tracing::error!("cannot send notifications: {}", errors::Chain(&e)),
            }
        }
        if let Some((desk, transport)) = &made {
            send(&shared, desk, transport).await;
        }
        if shared.is_stopping() {
            return;
        }
        tokio::select! {
            _ = super::stopped(&mut stopping) => return,
            _ = shared.outbox_wake.notified() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Puts back in the queue what stopped daemons had claimed: on the timer, not on every commit's
/// wake (it writes).
async fn release_dead_claims(desk: &Desk) {
    match desk.store.release_dead_claims(Timestamp::now()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!("{n} notification(s) a stopped daemon had in hand are sent again"),
        Err(e) => tracing::warn!(
            "cannot look for notifications stopped daemons had in hand: {}",
            errors::Chain(&e)
        ),
    }
}

async fn send(shared: &Shared, desk: &Desk, transport: &Transport) {
    match desk.send_outbox(transport, &Timestamp::now).await {
        Ok(report) => {
            let m = &shared.metrics;
            m.notified("sent", report.sent);
            m.notified("retrying", report.retrying);
            m.notified("failed", report.failed);
            for waited in &report.waited {
                m.to_accepted.observe(waited.as_secs_f64());
            }
            if report.sent + report.retrying + report.failed > 0 {
                tracing::info!(
                    sent = report.sent,
                    retrying = report.retrying,
                    failed = report.failed,
                    "outbox"
                );
            }
        }
        Err(e) => tracing::error!("sending notifications failed: {}", errors::Chain(&e)),
    }
    match desk.store.outbox_depth().await {
        Ok((n, oldest)) => {
            shared.metrics.outbox_depth.set(n);
            let age = oldest.map_or(0.0, |t| {
                (Timestamp::now() - t)
                    .total(jiff::Unit::Second)
                    .unwrap_or(0.0)
                    .max(0.0)
            });
            shared.metrics.outbox_oldest_age.set(age);
        }
        Err(e) => tracing::warn!("cannot read the outbox's depth: {}", errors::Chain(&e)),
    }
}
