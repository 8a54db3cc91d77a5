//! The outbox: notifications written with the change that causes them, claimed and delivered by
//! senders. Also the thread root of a ticket and the addresses known to fail.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Serialize;
use sqlx::FromRow;

use super::bodies::{body_deletes, body_inserts};
use super::deferred::{Table, Val, Write, bind_query, places, value_rows};
use super::pieces::Owner;
use super::rows::{MaybeMillis, Millis, ms, ts};
use super::tx::Reads;
use super::{Dialect, Store, StoreError, Tx};

/// The ids of up to `$2` notifications sent before `$1` whose bodies are still kept, the
/// longest sent first, through the `outbox_sent_bodies` index (migrations 0010, 0011).
pub(super) const SENT_BODIES: &str = "SELECT id FROM outbox WHERE status = 'sent' \
    AND body_kept = 1 AND sent_at < $1 ORDER BY sent_at LIMIT $2";

/// How many earlier Message-IDs per recipient a References header carries besides the root.
pub(crate) const EARLIER: usize = 10;

/// What [`Tx::outbox_state`] found.
#[derive(Debug, Clone, Default)]
pub struct OutboxState {
    /// Failing addresses and why.
    pub failing: HashMap<String, String>,
    /// Per recipient, the last Message-IDs sent on this ticket, oldest first.
    pub earlier: HashMap<String, Vec<String>>,
    /// Mails per recipient on this ticket since the given time, by [`count_key`].
    pub per_thread: HashMap<String, i64>,
    /// Mails per outside recipient (all tickets) since the given time, by [`count_key`].
    pub per_hour: HashMap<String, i64>,
}

/// What [`Tx::outbox_state`] is asked about: `addresses` on ticket `ticket_id`, the mails
/// since `since` to each of `outside` (any ticket) and, with `per_thread`, to each recipient on
/// the ticket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asked<'a> {
    pub ticket_id: i64,
    pub addresses: &'a [String],
    pub outside: &'a [String],
    pub per_thread: bool,
    pub since: Timestamp,
}

/// A notification to queue.
#[derive(Debug, Clone)]
pub struct NewOutboxRow<'a> {
    pub ticket_id: Option<i64>,
    pub event: &'a str,
    pub recipient: &'a str,
    pub envelope_from: &'a str,
    pub message_id: &'a str,
    pub subject: &'a str,
    pub raw: &'a [u8],
    pub at: Timestamp,
    /// Caused by a mail whose sender could not be verified (counted apart by the loop breaker).
    pub unverified: bool,
}

/// The key under which the loop breaker counts a recipient's mails: those caused by unverified
/// senders apart from the others.
pub fn count_key(recipient: &str, unverified: bool) -> String {
    if unverified {
        format!("?{recipient}")
    } else {
        recipient.to_string()
    }
}

/// A claimed notification, ready to deliver.
#[derive(Debug, Clone, FromRow)]
pub struct Claimed {
    pub id: i64,
    /// The claim's token: results are only recorded while the claim is still this sender's.
    pub claimed_until: i64,
    pub ticket_id: Option<i64>,
    pub event: String,
    pub recipient: String,
    pub envelope_from: String,
    pub message_id: String,
    /// The message, read after the claim (see `bodies`).
    #[sqlx(skip)]
    pub raw: Vec<u8>,
    pub attempts: i64,
    pub created_at: i64,
}

/// A line of `outbox list`.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct OutboxEntry {
    pub id: i64,
    pub ticket: Option<String>,
    pub event: String,
    pub recipient: String,
    pub subject: String,
    pub message_id: String,
    pub status: String,
    pub attempts: i64,
    #[sqlx(try_from = "Millis")]
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    #[sqlx(try_from = "Millis")]
    pub created_at: Timestamp,
    #[sqlx(try_from = "MaybeMillis")]
    pub sent_at: Option<Timestamp>,
}

/// A row of [`Tx::outbox_state`]'s read: of which part (`kind`), and its values.
#[derive(FromRow)]
struct StateRow {
    kind: String,
    k: String,
    v: Option<String>,
    n: i64,
}

/// A notification's values for [`outbox_insert`] (its message is written apart, see `bodies`).
fn outbox_values(r: &NewOutboxRow<'_>) -> Vec<Val> {
    vec![
        r.ticket_id.into(),
        r.event.into(),
        r.recipient.into(),
        r.envelope_from.into(),
        r.message_id.into(),
        r.subject.into(),
        ms(r.at).into(),
        i64::from(r.unverified).into(),
    ]
}

/// One statement writing notifications, from each one's [`outbox_values`].
fn outbox_insert(rows: Vec<Vec<Val>>) -> Write {
    let sql = format!(
        "INSERT INTO outbox (ticket_id, event, recipient, envelope_from, message_id, subject, \
         status, attempts, next_attempt_at, created_at, unverified) VALUES {}",
        value_rows(
            "($1, $2, $3, $4, $5, $6, 'queued', 0, $7, $7, $8)",
            8,
            rows.len()
        )
    );
    Write::insert(Table::Outbox, sql, rows.into_iter().flatten().collect())
}

impl Tx {
    /// Writes notifications, all in one statement, and their messages.
    pub async fn insert_outbox(&mut self, rows: &[NewOutboxRow<'_>]) -> Result<(), StoreError> {
        self.insert_outbox_rows(rows).await?;
        // Packed: a notification is mostly text and HTML (~8 KB), and the write is most of
        // what queueing one costs. A message longer than a piece keeps its first piece in
        // `outbox_bodies` and the rest in `pieces`.
        let messages = rows
            .iter()
            .map(|r| {
                let packed = super::pack(super::pieces::first(r.raw));
                (r.message_id.to_string(), packed)
            })
            .collect();
        for w in body_inserts(messages) {
            self.defer(w);
        }
        for r in rows {
            self.insert_pieces(Owner::Outbox(r.message_id), r.raw)
                .await?;
        }
        Ok(())
    }

    /// Writes notifications' rows, all in one statement, without their messages.
    pub(super) async fn insert_outbox_rows(
        &mut self,
        rows: &[NewOutboxRow<'_>],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.memory().seen_outbox.queued(rows);
        self.defer(outbox_insert(rows.iter().map(outbox_values).collect()));
        Ok(())
    }

    /// What writing a ticket's notifications needs to know, in one query: which of `addresses`
    /// are known to fail, the last Message-IDs sent on it per recipient, and how
    /// many mails went since `since` to each of `outside` (any ticket) and, with `per_thread`,
    /// to each recipient on this ticket.
    pub async fn outbox_state(
        &mut self,
        ticket_id: i64,
        addresses: &[String],
        outside: &[String],
        per_thread: bool,
        since: Timestamp,
    ) -> Result<OutboxState, StoreError> {
        let asked = Asked {
            ticket_id,
            addresses,
            outside,
            per_thread,
            since,
        };
        // Kept on PostgreSQL only, where each read is a round trip (see `seen_outbox`).
        let keep = self.dialect() == Dialect::Postgres;
        if keep && let Some(known) = self.memory_ref().seen_outbox.lookup(&asked) {
            return Ok(known);
        }
        let (sql, binds) = state_sql(&asked);
        let reads = Reads::Only(&[Table::Outbox, Table::AddressStatus]);
        let rows: Vec<StateRow> = self
            .fetch_all(reads, &sql, |q| {
                let q = q.bind(ticket_id).bind(ms(since));
                binds.iter().fold(q, |q, b| q.bind(b.as_str()))
            })
            .await?;
        let state = state_from(rows);
        if keep {
            self.memory().seen_outbox.keep(&asked, &state);
        }
        Ok(state)
    }

    pub async fn set_thread_root(
        &mut self,
        ticket_id: i64,
        message_id: &str,
    ) -> Result<(), StoreError> {
        self.defer(Write::change(
            Table::Tickets,
            "UPDATE tickets SET thread_root = $1 WHERE id = $2 AND thread_root IS NULL",
            vec![message_id.into(), ticket_id.into()],
        ));
        Ok(())
    }

    /// Marks an address as failing (a permanent bounce or rejection).
    pub async fn mark_failing(
        &mut self,
        address: &str,
        reason: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.memory().seen_outbox.forget();
        self.defer(Write::change(
            Table::AddressStatus,
            "INSERT INTO address_status (address, status, reason, updated_at) VALUES ($1, 'failing', $2, $3) \
             ON CONFLICT (address) DO UPDATE SET status = 'failing', reason = $2, updated_at = $3",
            vec![address.into(), reason.into(), ms(at).into()],
        ));
        Ok(())
    }
}

/// [`Tx::outbox_state`]'s read: one statement of `UNION ALL` parts, each row tagged by its
/// part (`kind`), and the values bound after the ticket (`$1`) and the time (`$2`).
fn state_sql(a: &Asked<'_>) -> (String, Vec<String>) {
    let mut binds: Vec<String> = Vec::new();
    // Binds `items` after those so far (and the two fixed ones): their placeholders.
    let list = |items: &[String], binds: &mut Vec<String>| -> String {
        let from = binds.len() + 3;
        binds.extend(items.iter().cloned());
        places(from, items.len())
    };
    // The first branch names the columns and always runs (it refers to both fixed
    // parameters, which SQLite wants used).
    let mut parts = vec![
        "SELECT 'x' AS kind, '' AS k, CAST(NULL AS TEXT) AS v, CAST(0 AS BIGINT) AS n \
         WHERE $1 = $1 AND $2 = $2"
            .to_string(),
    ];
    // Per recipient, its last Message-IDs on this ticket, straight from the covering index
    // (ticket_id, recipient, id, ...): no sort, however long the ticket's history.
    for x in a.addresses {
        let at = list(std::slice::from_ref(x), &mut binds);
        parts.push(format!(
            "SELECT kind, k, v, n FROM (SELECT 'm' AS kind, recipient AS k, message_id AS v, id AS n \
             FROM outbox WHERE ticket_id = $1 AND recipient = {at} ORDER BY id DESC LIMIT {EARLIER}) AS m{}",
            binds.len()
        ));
    }
    if !a.addresses.is_empty() {
        parts.push(format!(
            "SELECT 'f', address, reason, CAST(0 AS BIGINT) FROM address_status \
             WHERE status = 'failing' AND address IN ({})",
            list(a.addresses, &mut binds)
        ));
    }
    // Counted apart by cause: `v` is '1' for the mails an unverified sender's mail caused.
    if a.per_thread {
        parts.push(
            "SELECT 't', recipient, CAST(unverified AS TEXT), COUNT(*) FROM outbox \
             WHERE ticket_id = $1 AND created_at >= $2 GROUP BY recipient, unverified"
                .into(),
        );
    }
    if !a.outside.is_empty() {
        parts.push(format!(
            "SELECT 'h', recipient, CAST(unverified AS TEXT), COUNT(*) FROM outbox \
             WHERE recipient IN ({}) AND created_at >= $2 GROUP BY recipient, unverified",
            list(a.outside, &mut binds)
        ));
    }
    (parts.join(" UNION ALL "), binds)
}

/// What [`state_sql`]'s rows say.
fn state_from(rows: Vec<StateRow>) -> OutboxState {
    let mut state = OutboxState::default();
    let mut ids: Vec<(i64, String, String)> = Vec::new();
    for StateRow { kind, k, v, n } in rows {
        match kind.as_str() {
            "f" => {
                state.failing.insert(k, v.unwrap_or_default());
            }
            "m" => ids.push((n, k, v.unwrap_or_default())),
            "t" => {
                state
                    .per_thread
                    .insert(count_key(&k, v.as_deref() == Some("1")), n);
            }
            "h" => {
                state
                    .per_hour
                    .insert(count_key(&k, v.as_deref() == Some("1")), n);
            }
            _ => {}
        }
    }
    ids.sort_by_key(|(id, _, _)| *id);
    for (_, recipient, message_id) in ids {
        let list = state.earlier.entry(recipient).or_default();
        list.push(message_id);
        if list.len() > EARLIER {
            list.remove(0);
        }
    }
    state
}

impl Store {
    /// Claims up to `limit` due notifications (queued and due, or claimed by a sender whose claim
    /// ran out) until `until`. On PostgreSQL, rows another sender holds are skipped.
    pub async fn claim_due(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: i64,
        by: Option<&str>,
    ) -> Result<Vec<Claimed>, StoreError> {
        let skip = match self.dialect() {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE outbox SET status = 'sending', claimed_until = $1, attempts = attempts + 1, \
             claimed_by = $4 \
             WHERE id IN (SELECT id FROM outbox WHERE (status = 'queued' AND next_attempt_at <= $2) \
             OR (status = 'sending' AND claimed_until < $2) ORDER BY id LIMIT $3{skip}) \
             RETURNING id, claimed_until, ticket_id, event, recipient, envelope_from, message_id, \
             attempts, created_at"
        );
        let mut tx = self.begin_bookkeeping().await?;
        let mut rows: Vec<Claimed> = tx
            .fetch_all(Reads::All, &sql, |q| {
                q.bind(ms(until)).bind(ms(now)).bind(limit).bind(by)
            })
            .await?;
        tx.commit().await?;
        rows.sort_by_key(|r| r.id);
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let mut bodies = self.packed_bodies(&ids).await?;
        let mut ready = Vec::with_capacity(rows.len());
        for mut r in rows {
            let read = bodies
                .remove(&r.id)
                .ok_or_else(|| "it is missing".to_string())
                .and_then(|packed| super::unpack(&packed).map_err(|e| e.to_string()));
            match read {
                Ok(raw) => r.raw = raw,
                Err(problem) => {
                    // One unreadable message must not hold up the others.
                    tracing::error!(id = r.id, %problem, "a notification's message cannot be read");
                    let why = format!("its stored message cannot be read: {problem}");
                    self.mark_failed(r.id, r.claimed_until, &why).await?;
                    continue;
                }
            }
            self.append_pieces(Owner::Outbox(&r.message_id), &mut r.raw)
                .await?;
            ready.push(r);
        }
        Ok(ready)
    }

    /// Records deliveries, all in one statement; `(id, claim)` pairs, each only while its claim
    /// is still the one this sender holds.
    pub async fn mark_sent(&self, sent: &[(i64, i64)], at: Timestamp) -> Result<(), StoreError> {
        if sent.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = sent
            .iter()
            .map(|(id, claim)| format!("(id = {id} AND claimed_until = {claim})"))
            .collect();
        let sql = format!(
            "UPDATE outbox SET status = 'sent', sent_at = $1, claimed_until = NULL, last_error = NULL \
             WHERE status = 'sending' AND ({})",
            list.join(" OR ")
        );
        self.execute_on(self.bookkeeping_pool(), &sql, |q| q.bind(ms(at)))
            .await
            .map(drop)
    }

    /// Puts a notification back in the queue after a temporary failure (if the claim is still
    /// this sender's).
    pub async fn mark_retry(
        &self,
        id: i64,
        claim: i64,
        next: Timestamp,
        error: &str,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE outbox SET status = 'queued', next_attempt_at = $1, \
                   claimed_until = NULL, last_error = $2 \
                   WHERE id = $3 AND status = 'sending' AND claimed_until = $4";
        self.execute_on(self.bookkeeping_pool(), sql, |q| {
            q.bind(ms(next)).bind(error).bind(id).bind(claim)
        })
        .await
        .map(drop)
    }

    /// Records a permanent failure (if the claim is still this sender's).
    pub async fn mark_failed(&self, id: i64, claim: i64, error: &str) -> Result<(), StoreError> {
        let sql = "UPDATE outbox SET status = 'failed', claimed_until = NULL, last_error = $1 \
                   WHERE id = $2 AND status = 'sending' AND claimed_until = $3";
        self.execute(sql, |q| q.bind(error).bind(id).bind(claim))
            .await
            .map(drop)
    }

    /// Re-queues a failed notification as if new (its retry time starts again) and forgets that
    /// its address failed: an admin retries after fixing the address. False when there is no
    /// failed one with this id.
    pub async fn retry_failed(&self, id: i64, now: Timestamp) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let recipient: Option<(String,)> = tx
            .fetch_optional(
                Reads::All,
                "UPDATE outbox SET status = 'queued', next_attempt_at = $1, created_at = $1, \
                 attempts = 0 WHERE id = $2 AND status = 'failed' RETURNING recipient",
                |q| q.bind(ms(now)).bind(id),
            )
            .await?;
        let Some((recipient,)) = recipient else {
            return Ok(false);
        };
        tx.execute("DELETE FROM address_status WHERE address = $1", |q| {
            q.bind(recipient)
        })
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Drops the bodies of up to `limit` notifications sent before `before` ([`SENT_BODIES`]), the longest sent
    /// first, in one transaction; how many. Their rows stay: the Message-ID, recipient,
    /// ticket, event, subject and times are what threading, the loop breaker and bounce
    /// matching read.
    pub async fn drop_sent_bodies(
        &self,
        before: Timestamp,
        limit: i64,
    ) -> Result<usize, StoreError> {
        let mut tx = self.begin().await?;
        let sql = format!(
            "UPDATE outbox SET body_kept = 0 WHERE id IN ({SENT_BODIES}) RETURNING id, message_id"
        );
        let dropped: Vec<(i64, String)> = tx
            .fetch_all(Reads::All, &sql, |q| q.bind(ms(before)).bind(limit))
            .await?;
        if dropped.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = dropped.iter().map(|(id, _)| *id).collect();
        for w in body_deletes(&ids) {
            tx.defer(w);
        }
        // A message over a piece's size kept the rest in `pieces`.
        let owners: Vec<Val> = dropped
            .iter()
            .map(|(_, m)| Val::from(Owner::Outbox(m).key()))
            .collect();
        let sql = format!(
            "DELETE FROM pieces WHERE owner IN ({})",
            places(1, owners.len())
        );
        tx.defer(Write::change(Table::Pieces, sql, owners));
        tx.commit().await?;
        Ok(dropped.len())
    }

    /// Puts every notification being sent back in the queue, due now: for a process that
    /// knows no other sender runs (the daemon on SQLite, at its start), so that what a killed
    /// run had in hand goes out at once, not when its claim runs out. Returns how many.
    pub async fn release_claims(&self, now: Timestamp) -> Result<u64, StoreError> {
        let sql =
            "UPDATE outbox SET status = 'queued', next_attempt_at = $1 WHERE status = 'sending'";
        self.execute(sql, |q| q.bind(ms(now))).await
    }

    /// Puts back in the queue the notifications claimed by daemons whose own lease
    /// (`daemon:<holder>`) has run out: they stopped without finishing. Returns how many.
    pub async fn release_dead_claims(&self, now: Timestamp) -> Result<u64, StoreError> {
        let sql = format!(
            "UPDATE outbox SET status = 'queued', next_attempt_at = $1 WHERE status = 'sending' \
             AND claimed_by IN (SELECT holder FROM leases WHERE name = 'daemon:' || holder \
             AND expires_at < {})",
            super::leases::now_ms(self.dialect())
        );
        self.execute(&sql, |q| q.bind(ms(now))).await
    }

    /// How many notifications wait to be sent (queued, or being sent), and when the oldest of
    /// them was queued.
    pub async fn outbox_depth(&self) -> Result<(i64, Option<Timestamp>), StoreError> {
        let sql =
            "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE status IN ('queued', 'sending')";
        let row: Option<(i64, Option<i64>)> = self.fetch_optional(sql, |q| q).await?;
        let (n, oldest) = row.unwrap_or_default();
        Ok((n, oldest.map(ts).transpose()?))
    }

    /// Notifications, newest first (older than `after`), optionally of one status.
    pub async fn outbox(
        &self,
        status: Option<&str>,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let (page, vals) = super::lists::status_page("o", status, after, limit);
        let sql = format!(
            "SELECT o.id, t.ref AS ticket, o.event, o.recipient, o.subject, o.message_id, o.status, \
             o.attempts, o.next_attempt_at, o.last_error, o.created_at, o.sent_at \
             FROM outbox o LEFT JOIN tickets t ON t.id = o.ticket_id{page}"
        );
        self.fetch_all(&sql, |q| bind_query(q, vals)).await
    }
}
