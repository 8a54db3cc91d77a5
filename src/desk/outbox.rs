//! The outbox sender: claim what is due, deliver it over the transport (several at once), record
//! the result. Temporary failures come back with a capped backoff; permanent ones are recorded,
//! mark the address as failing and are reported to the support team.
//!
//! Delivery is at least once: a crash after the server accepted a mail and before the row says
//! `sent` leaves the row claimed; when its claim runs out it is sent again, with the same
//! Message-ID, so a recipient may see it twice (mail clients show it once). Nothing is lost.

use std::collections::VecDeque;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use tokio::task::JoinSet;

use super::{Desk, DeskError};
use crate::outbound::{SendError, Transport};
use crate::store::{Claimed, NewHistoryRow};

/// How long a sender holds a claim at least before another may take the row over.
const CLAIM_SECS: i64 = 300;
/// Rows claimed per connection and batch.
const PER_CONNECTION: usize = 8;
/// Successes recorded together: at most this many (plus those in flight) may be sent twice
/// after a crash.
const FLUSH_EVERY: usize = 8;

/// What one `send` run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SendReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
    /// How long each notification sent had waited since it was queued.
    #[serde(skip)]
    pub waited: Vec<std::time::Duration>,
}

/// The wait before the next attempt: 30 s doubling, at most an hour.
pub fn backoff(attempts: i64) -> SignedDuration {
    let exp = attempts.clamp(1, 8) - 1;
    SignedDuration::from_secs((30i64 << exp).min(3600))
}

impl Desk {
    /// Delivers everything that is due, then returns. `now` is asked for the time (the daemon
    /// and the tests pass their own clocks).
    ///
    /// Deliveries run `parallelism` at a time; the next batch is claimed while the current one
    /// is still going out, so the database's commit is never on the way of the SMTP traffic.
    pub async fn send_outbox(
        &self,
        transport: &Transport,
        now: &(dyn Fn() -> Timestamp + Sync),
    ) -> Result<SendReport, DeskError> {
        let width = transport.parallelism().max(1);
        let per_batch = (width * PER_CONNECTION) as i64;
        let claim = claim_time(transport);
        let claim_next = || {
            let store = self.store.clone();
            let t = now();
            let by = self.claims_as.clone();
            tokio::spawn(async move {
                store
                    .claim_due(t, t + claim, per_batch, by.as_deref())
                    .await
            })
        };
        let transport = Arc::new(transport.clone());
        let mut running: JoinSet<(Claimed, Result<(), SendError>)> = JoinSet::new();
        let mut pending: VecDeque<Claimed> = VecDeque::new();
        let mut claiming = Some(claim_next());
        let mut run = Run::default();
        loop {
            while running.len() < width
                && let Some(c) = pending.pop_front()
            {
                let transport = Arc::clone(&transport);
                running.spawn(async move {
                    let r = transport
                        .send(&c.envelope_from, &c.recipient, &c.message_id, &c.raw)
                        .await;
                    (c, r)
                });
            }
            if running.is_empty() && claiming.is_none() {
                break;
            }
            tokio::select! {
                Some(done) = running.join_next(), if !running.is_empty() => {
                    let (c, result) = match done {
                        Ok(r) => r,
                        Err(e) => {
                            // A delivery task died: what it held stays claimed and is retried
                            // when the claim runs out; record what is known first. The
                            // error names the task's panic message.
                            self.flush_sent(&mut run, now()).await?;
                            return Err(crate::errors::TaskFailed::from(e).into());
                        }
                    };
                    self.settle(&mut run, c, result, now()).await?;
                    // Claim ahead once the current batch is all under way (or done).
                    if pending.is_empty() && claiming.is_none() && !run.exhausted {
                        run.failures_at_claim = run.failures;
                        claiming = Some(claim_next());
                    }
                }
                claimed = async { claiming.as_mut().expect("guarded").await }, if claiming.is_some() => {
                    claiming = None;
                    let batch = claimed.map_err(crate::errors::TaskFailed::from)??;
                    // An empty claim ends the run once the deliveries under way are done.
                    run.exhausted = batch.is_empty() && run.failures_at_claim == run.failures;
                    pending.extend(batch);
                    if !run.exhausted && pending.is_empty() {
                        run.failures_at_claim = run.failures;
                        claiming = Some(claim_next());
                    }
                }
            }
        }
        self.flush_sent(&mut run, now()).await?;
        Ok(run.report)
    }

    /// Records a delivery that ended. Successes are recorded a few at a time (one statement
    /// each time): only those not yet recorded could be sent again after a crash.
    async fn settle(
        &self,
        run: &mut Run,
        c: Claimed,
        result: Result<(), SendError>,
        now: Timestamp,
    ) -> Result<(), DeskError> {
        match result {
            Ok(()) => {
                tracing::info!(id = c.id, to = %c.recipient, message_id = %c.message_id, "sent");
                run.sent.push((c.id, c.claimed_until));
                let queued_for = now.as_millisecond() - c.created_at;
                run.report.waited.push(std::time::Duration::from_millis(
                    u64::try_from(queued_for).unwrap_or(0),
                ));
                if run.sent.len() >= FLUSH_EVERY {
                    self.flush_sent(run, now).await?;
                }
            }
            Err(e) => {
                self.flush_sent(run, now).await?;
                self.record(&c, e, now, &mut run.report).await?;
                run.failures += 1;
                run.exhausted = false;
            }
        }
        Ok(())
    }

    async fn flush_sent(&self, run: &mut Run, now: Timestamp) -> Result<(), DeskError> {
        if run.sent.is_empty() {
            return Ok(());
        }
        self.store.mark_sent(&run.sent, now).await?;
        run.report.sent += run.sent.len();
        run.sent.clear();
        Ok(())
    }

    /// Records a failed delivery: back in the queue with a backoff, or failed for good.
    async fn record(
        &self,
        c: &Claimed,
        error: SendError,
        now: Timestamp,
        report: &mut SendReport,
    ) -> Result<(), DeskError> {
        match error {
            SendError::Rejected(e) => {
                self.give_up(c, &e, Failure::Refused, now).await?;
                report.failed += 1;
            }
            SendError::Temporary(e) => {
                let age = now.as_millisecond() - c.created_at;
                if age > self.outbound.settings.retry_for_secs * 1000 {
                    let why = format!("gave up after {} attempts: {e}", c.attempts);
                    self.give_up(c, &why, Failure::Other, now).await?;
                    report.failed += 1;
                } else {
                    let next = now + backoff(c.attempts);
                    self.store
                        .mark_retry(c.id, c.claimed_until, next, &e)
                        .await?;
                    report.retrying += 1;
                    tracing::warn!(id = c.id, to = %c.recipient, error = %e, next = %next, "delivery deferred");
                }
            }
            SendError::Permanent(e) => {
                self.give_up(c, &e, Failure::Other, now).await?;
                report.failed += 1;
            }
            SendError::TooLarge(e) => {
                let why = format!("too large for the mail server: {e}");
                self.give_up(c, &why, Failure::TooLarge, now).await?;
                report.failed += 1;
            }
        }
        Ok(())
    }

    /// Records a notification as failed and tells the support team; a refused recipient is also
    /// marked as failing, so that later notifications skip it.
    async fn give_up(
        &self,
        c: &Claimed,
        why: &str,
        failure: Failure,
        now: Timestamp,
    ) -> Result<(), DeskError> {
        tracing::error!(id = c.id, to = %c.recipient, error = %why, "delivery failed");
        self.store.mark_failed(c.id, c.claimed_until, why).await?;
        let mut tx = self.store.begin().await?;
        if failure == Failure::Refused {
            tx.mark_failing(&c.recipient, why, now).await?;
        }
        if let Some(ticket_id) = c.ticket_id
            && let Some(rec) = tx.ticket_by_id(ticket_id).await?
        {
            let detail = format!("{} to {} failed: {why}", c.event, c.recipient);
            tx.insert_history(&NewHistoryRow {
                ticket_id,
                actor: &self.settings.directory.helpdesk.address,
                action: "delivery",
                kind: "delivery_failed",
                detail: &detail,
                inbound_id: None,
                at: now,
            })
            .await?;
            // The failure notice itself is not reported again if it fails. The team's own
            // notification failing is reported to the team when it was too large: the short
            // notice of that goes through.
            let team = &self.settings.directory.helpdesk.team_address;
            if c.event != "delivery_failed"
                && (c.recipient != *team || failure == Failure::TooLarge)
            {
                self.enqueue_failure(&mut tx, &rec, &c.recipient, why, now)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// How long a claim lasts: it must outlast the slowest batch and the one before it (a row
/// claimed ahead waits for that), or another sender would take rows this one is still sending:
/// every mail may take two full timeouts (a broken reused connection).
fn claim_time(transport: &Transport) -> SignedDuration {
    let slowest = transport.timeout_secs() * 4 * PER_CONNECTION as u64 + 60;
    SignedDuration::from_secs((CLAIM_SECS as u64).max(slowest) as i64)
}

/// Where a `send_outbox` run stands.
#[derive(Default)]
struct Run {
    report: SendReport,
    /// Sent, not recorded yet: (id, claimed until).
    sent: Vec<(i64, i64)>,
    /// Deliveries that failed. A failure may queue a notice for the support team: a claim that
    /// started before it cannot have seen that row, so an empty answer from it does not end
    /// the run.
    failures: usize,
    /// `failures` when the last claim started.
    failures_at_claim: usize,
    /// The last claim found nothing due.
    exhausted: bool,
}

/// Why a notification was given up, as far as what follows depends on it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The server refused the recipient: later notifications skip the address.
    Refused,
    /// The message was too large: even the team's own notification failing is reported.
    TooLarge,
    /// Anything else.
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1).as_secs(), 30);
        assert_eq!(backoff(2).as_secs(), 60);
        assert_eq!(backoff(5).as_secs(), 480);
        assert_eq!(backoff(9).as_secs(), 3600);
        assert_eq!(backoff(100).as_secs(), 3600);
    }
}
