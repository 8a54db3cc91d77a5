//! The time rules, every `daemon.sweep_every_secs`: in a task of their own, so that a long
//! sweep never holds up mail.

use std::sync::Arc;

use jiff::Timestamp;

use super::Shared;
use crate::errors;

pub(super) async fn run(shared: Arc<Shared>) {
    let mut stopping = shared.stopping.clone();
    loop {
        let every = shared.desk().settings.daemon.sweep_every;
        tokio::select! {
            _ = super::stopped(&mut stopping) => return,
            _ = tokio::time::sleep(every) => {}
        }
        let desk = shared.desk();
        // One daemon sweeps at a time: the lease lasts two rounds, so it passes on when its
        // holder stops.
        let lease = (every * 2).as_secs();
        match desk.store.take_lease("sweep", &shared.holder, lease).await {
            Ok(Some(_)) => {}
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("cannot take the time rules' lease: {}", errors::Chain(&e));
                continue;
            }
        }
        match desk.sweep(Timestamp::now()).await {
            Ok(report) => {
                for (reference, rule) in &report.changed {
                    tracing::info!(ticket = %reference, rule = %rule, "time rule applied");
                }
                if !report.changed.is_empty() {
                    shared.outbox_wake.notify_one();
                }
                tracing::debug!(
                    due = report.checked,
                    reworked = report.reworked,
                    bodies_dropped = report.bodies_dropped,
                    changed = report.changed.len(),
                    "sweep"
                );
            }
            Err(e) => tracing::error!("the time rules could not run: {}", errors::Chain(&e)),
        }
    }
}
