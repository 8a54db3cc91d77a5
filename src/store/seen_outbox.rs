//! What a transaction already knows of its tickets' notifications, so that the next mail on the
//! same ticket in the same transaction needs no [`Tx::outbox_state`] read.
//!
//! A group of mails often holds several replies on one ticket. The first one's read (failing
//! addresses, the last Message-IDs per recipient, the mails per recipient in the last hour) is
//! kept, and every notification the transaction queues on that ticket is added to it: that is
//! what the same read would find again, as only a transaction holding the ticket's row lock
//! queues its notifications. The counts may include mails up to [`FRESH`] older than the hour
//! (the loop breaker then stops a mail that much early, never late).
//!
//! On PostgreSQL only, where the read is a round trip to the server: it gains 13 % there
//! (`benches/ab_ingest.py`, 8 rounds), and nothing on SQLite, where it was left out.
//!
//! Not kept: a read about outside addresses (their counts cover every ticket, which other
//! transactions write to). Forgotten: everything, when an address is marked failing or a mail
//! is undone to its savepoint.
//!
//! [`Tx::outbox_state`]: super::Tx::outbox_state

use std::collections::{HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};

use super::outbox::{Asked, EARLIER, NewOutboxRow, OutboxState, count_key};

/// How long a read stays usable within one transaction.
const FRESH: SignedDuration = SignedDuration::from_secs(10);

/// One ticket's read, with what the transaction queued since.
#[derive(Debug)]
struct Seen {
    since: Timestamp,
    addresses: HashSet<String>,
    state: OutboxState,
    counted: bool,
}

/// Per ticket id, what its last read found and what was queued since.
#[derive(Debug, Default)]
pub(crate) struct SeenOutbox {
    tickets: HashMap<i64, Seen>,
}

impl SeenOutbox {
    /// The state a read would find, if this transaction knows it.
    pub(crate) fn lookup(&self, a: &Asked<'_>) -> Option<OutboxState> {
        if !a.outside.is_empty() {
            return None;
        }
        let seen = self.tickets.get(&a.ticket_id)?;
        let fresh = a.since >= seen.since && a.since.duration_since(seen.since) <= FRESH;
        if !fresh
            || (a.per_thread && !seen.counted)
            || !a.addresses.iter().all(|x| seen.addresses.contains(x))
        {
            return None;
        }
        Some(OutboxState {
            failing: pick(&seen.state.failing, a.addresses),
            earlier: pick(&seen.state.earlier, a.addresses),
            per_thread: if a.per_thread {
                seen.state.per_thread.clone()
            } else {
                HashMap::new()
            },
            per_hour: HashMap::new(),
        })
    }

    /// Keeps what a read about one ticket found (not one about outside addresses).
    pub(crate) fn keep(&mut self, a: &Asked<'_>, state: &OutboxState) {
        if !a.outside.is_empty() {
            return;
        }
        self.tickets.insert(
            a.ticket_id,
            Seen {
                since: a.since,
                addresses: a.addresses.iter().cloned().collect(),
                state: OutboxState {
                    per_hour: HashMap::new(),
                    ..state.clone()
                },
                counted: a.per_thread,
            },
        );
    }

    /// Adds queued notifications to their tickets' reads.
    pub(crate) fn queued(&mut self, rows: &[NewOutboxRow<'_>]) {
        for r in rows {
            let Some(seen) = r.ticket_id.and_then(|t| self.tickets.get_mut(&t)) else {
                continue;
            };
            if seen.counted {
                *seen
                    .state
                    .per_thread
                    .entry(count_key(r.recipient, r.unverified))
                    .or_default() += 1;
            }
            if seen.addresses.contains(r.recipient) {
                let list = seen
                    .state
                    .earlier
                    .entry(r.recipient.to_string())
                    .or_default();
                list.push(r.message_id.to_string());
                if list.len() > EARLIER {
                    list.remove(0);
                }
            }
        }
    }

    /// Forgets every read.
    pub(crate) fn forget(&mut self) {
        self.tickets.clear();
    }
}

/// The entries of `map` for `addresses`.
fn pick<V: Clone>(map: &HashMap<String, V>, addresses: &[String]) -> HashMap<String, V> {
    addresses
        .iter()
        .filter_map(|a| map.get(a).map(|v| (a.clone(), v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(ticket: i64, to: &'a str, id: &'a str) -> NewOutboxRow<'a> {
        NewOutboxRow {
            ticket_id: Some(ticket),
            event: "commented",
            recipient: to,
            envelope_from: "support@helpdesk.example",
            message_id: id,
            subject: "s",
            raw: b"",
            at: Timestamp::UNIX_EPOCH,
            unverified: false,
        }
    }

    fn asked<'a>(
        ticket_id: i64,
        addresses: &'a [String],
        outside: &'a [String],
        per_thread: bool,
        since: Timestamp,
    ) -> Asked<'a> {
        Asked {
            ticket_id,
            addresses,
            outside,
            per_thread,
            since,
        }
    }

    fn read(
        failing: &[(&str, &str)],
        earlier: &[(&str, &[&str])],
        counts: &[(&str, i64)],
    ) -> OutboxState {
        let own = |s: &str| s.to_string();
        OutboxState {
            failing: failing.iter().map(|(a, r)| (own(a), own(r))).collect(),
            earlier: earlier
                .iter()
                .map(|(a, ids)| (own(a), ids.iter().map(|i| own(i)).collect()))
                .collect(),
            per_thread: counts.iter().map(|(a, n)| (own(a), *n)).collect(),
            per_hour: HashMap::new(),
        }
    }

    #[test]
    fn a_kept_read_grows_with_what_the_transaction_queues() {
        let at = Timestamp::from_second(1_000_000).unwrap();
        let (anna, team) = (
            "anna@acme.example".to_string(),
            "team@helpdesk.example".to_string(),
        );
        let both = [anna.clone(), team.clone()];
        let mut seen = SeenOutbox::default();
        assert!(
            seen.lookup(&asked(7, &both, &[], true, at)).is_none(),
            "nothing read yet"
        );
        seen.keep(
            &asked(7, &both, &[], true, at),
            &read(
                &[("anna@acme.example", "5.1.1")],
                &[("team@helpdesk.example", &["<a>"])],
                &[("team@helpdesk.example", 1)],
            ),
        );
        seen.queued(&[
            row(7, &team, "<b>"),
            row(8, &team, "<other>"),
            row(7, "new@x.example", "<c>"),
        ]);
        let later = at + SignedDuration::from_secs(1);
        let state = seen.lookup(&asked(7, &both, &[], true, later)).unwrap();
        assert_eq!(state.failing.get(&anna).map(String::as_str), Some("5.1.1"));
        assert_eq!(
            state.earlier[&team],
            ["<a>", "<b>"],
            "the queued one follows the read ones"
        );
        assert_eq!(state.per_thread[&team], 2);
        assert_eq!(
            state.per_thread["new@x.example"], 1,
            "counts cover every recipient on the ticket"
        );
        // Only what was read is known: another address, another ticket, outside counts, counts
        // that were not read, a read too old.
        assert!(
            seen.lookup(&asked(7, &["new@x.example".to_string()], &[], true, later))
                .is_none()
        );
        assert!(seen.lookup(&asked(8, &both, &[], true, later)).is_none());
        assert!(
            seen.lookup(&asked(7, &both, std::slice::from_ref(&anna), true, later))
                .is_none()
        );
        assert!(
            seen.lookup(&asked(
                7,
                &both,
                &[],
                true,
                at + FRESH + SignedDuration::from_secs(1)
            ))
            .is_none()
        );
        seen.keep(&asked(9, &both, &[], false, at), &OutboxState::default());
        assert!(seen.lookup(&asked(9, &both, &[], true, later)).is_none());
        assert!(seen.lookup(&asked(9, &both, &[], false, later)).is_some());
        // Ten Message-IDs at most, the oldest dropped first.
        let ids: Vec<String> = (0..12).map(|i| format!("<{i}>")).collect();
        let rows: Vec<NewOutboxRow<'_>> = ids.iter().map(|i| row(7, &team, i)).collect();
        seen.queued(&rows);
        let state = seen.lookup(&asked(7, &both, &[], true, later)).unwrap();
        assert_eq!(state.earlier[&team].len(), EARLIER);
        assert_eq!(
            state.earlier[&team].first().map(String::as_str),
            Some("<2>")
        );
        assert_eq!(state.per_thread[&team], 14);
        seen.forget();
        assert!(seen.lookup(&asked(7, &both, &[], true, later)).is_none());
    }
}
