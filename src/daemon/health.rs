//! How each watched mailbox is doing, for `/readyz`, the watchdog and the metrics: connected,
//! or failing since when and why; and when its loop last went round.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A loop that has not gone round for this long is stuck (its waits are all shorter).
const STUCK_AFTER: Duration = Duration::from_secs(5 * 60);

/// Consecutive failures a mailbox may have before it counts as not ready: one lost
/// connection, taken up again at once, is no alarm.
const FAILURES_TOLERATED: u32 = 1;

#[derive(Debug, Clone)]
struct MailboxHealth {
    connected: bool,
    /// Another daemon watches it.
    standby: bool,
    /// Consecutive failures to connect or read, and the last one's reason.
    failures: u32,
    error: Option<String>,
    round: Instant,
}

#[derive(Debug, Default)]
pub struct Health {
    mailboxes: Mutex<BTreeMap<String, MailboxHealth>>,
}

impl Health {
    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, MailboxHealth>) -> R) -> R {
        let mut m = self
            .mailboxes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut m)
    }

    /// A mailbox the daemon watches.
    pub fn watch(&self, mailbox: &str) {
        self.with(|m| {
            m.insert(
                mailbox.to_string(),
                MailboxHealth {
                    connected: false,
                    standby: false,
                    failures: 0,
                    error: None,
                    round: Instant::now(),
                },
            );
        });
    }

    fn update(&self, mailbox: &str, f: impl FnOnce(&mut MailboxHealth)) {
        self.with(|m| {
            if let Some(h) = m.get_mut(mailbox) {
                f(h);
                h.round = Instant::now();
            }
        });
    }

    /// The mailbox's loop went round.
    pub fn round(&self, mailbox: &str) {
        self.update(mailbox, |_| {});
    }

    pub fn connected(&self, mailbox: &str) {
        self.update(mailbox, |h| {
            h.connected = true;
            h.standby = false;
            h.failures = 0;
            h.error = None;
        });
    }

    /// Another daemon watches the mailbox: this one waits, which is no failure.
    pub fn standby(&self, mailbox: &str) {
        self.update(mailbox, |h| {
            h.connected = false;
            h.standby = true;
            h.failures = 0;
            h.error = None;
        });
    }

    pub fn failed(&self, mailbox: &str, error: &str) {
        self.update(mailbox, |h| {
            h.connected = false;
            h.standby = false;
            h.failures += 1;
            h.error = Some(error.to_string());
        });
    }

    /// How many mailboxes are connected, of how many watched.
    pub fn connected_of_watched(&self) -> (usize, usize) {
        self.with(|m| (m.values().filter(|h| h.connected).count(), m.len()))
    }

    /// Whether every mailbox is connected (or had one failure only), and a line each.
    pub fn readiness(&self) -> (bool, Vec<String>) {
        self.with(|m| {
            let mut ready = true;
            let lines = m
                .iter()
                .map(|(name, h)| {
                    if h.connected {
                        format!("{name}: connected")
                    } else if h.standby {
                        format!("{name}: standing by (another daemon watches it)")
                    } else {
                        let failing = h.failures > FAILURES_TOLERATED;
                        ready &= !failing;
                        let state = if failing { "failing" } else { "connecting" };
                        match &h.error {
                            Some(e) => format!("{name}: {state}: {e}"),
                            None => format!("{name}: {state}"),
                        }
                    }
                })
                .collect();
            (ready, lines)
        })
    }

    /// The mailboxes whose loops have not gone round for a while.
    pub fn stuck(&self) -> Vec<String> {
        self.with(|m| {
            m.iter()
                .filter(|(_, h)| h.round.elapsed() > STUCK_AFTER)
                .map(|(n, _)| n.clone())
                .collect()
        })
    }
}
