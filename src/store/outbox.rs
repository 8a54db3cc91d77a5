//! The outbox: notifications written with the change that causes them, claimed and delivered by
//! senders. Also the thread root of a ticket and the addresses known to fail.

use jiff::Timestamp;
use serde::Serialize;
use sqlx::{Any, AssertSqlSafe, FromRow};

use super::rows::{ms, ts};
use super::{Dialect, Store, StoreError, Tx};

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
}

/// A claimed notification, ready to deliver.
#[derive(Debug, Clone, FromRow)]
pub struct Claimed {
    pub id: i64,
    pub ticket_id: Option<i64>,
    pub event: String,
    pub recipient: String,
    pub envelope_from: String,
    pub message_id: String,
    pub raw: Vec<u8>,
    pub attempts: i64,
    pub created_at: i64,
}

/// A line of `outbox list`.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub ticket: Option<String>,
    pub event: String,
    pub recipient: String,
    pub subject: String,
    pub message_id: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}

#[derive(Debug, FromRow)]
struct EntryRow {
    id: i64,
    reference: Option<String>,
    event: String,
    recipient: String,
    subject: String,
    message_id: String,
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    created_at: i64,
    sent_at: Option<i64>,
}

impl Tx {
    pub async fn insert_outbox(&mut self, r: &NewOutboxRow<'_>) -> Result<i64, StoreError> {
        sqlx::query_scalar::<Any, i64>(
            "INSERT INTO outbox (ticket_id, event, recipient, envelope_from, message_id, subject, \
             raw, status, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', 0, $8, $8) RETURNING id",
        )
        .bind(r.ticket_id)
        .bind(r.event)
        .bind(r.recipient)
        .bind(r.envelope_from)
        .bind(r.message_id)
        .bind(r.subject)
        .bind(r.raw)
        .bind(ms(r.at))
        .fetch_one(&mut *self.tx)
        .await
        .map_err(|e| self.error(e))
    }

    /// The ticket's thread root, if it has one yet.
    pub async fn thread_root(&mut self, ticket_id: i64) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar::<Any, Option<String>>("SELECT thread_root FROM tickets WHERE id = $1")
            .bind(ticket_id)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(|e| self.error(e))
    }

    pub async fn set_thread_root(
        &mut self,
        ticket_id: i64,
        message_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query::<Any>(
            "UPDATE tickets SET thread_root = $1 WHERE id = $2 AND thread_root IS NULL",
        )
        .bind(message_id)
        .bind(ticket_id)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// The last `limit` Message-IDs written to `recipient` on this ticket, oldest first.
    pub async fn thread_for(
        &mut self,
        ticket_id: i64,
        recipient: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut ids = sqlx::query_scalar::<Any, String>(
            "SELECT message_id FROM outbox WHERE ticket_id = $1 AND recipient = $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(ticket_id)
        .bind(recipient)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(|e| self.error(e))?;
        ids.reverse();
        Ok(ids)
    }

    /// How many notifications went to `recipient` since `since` (on one ticket, when given).
    pub async fn recent_to(
        &mut self,
        recipient: &str,
        since: Timestamp,
        ticket_id: Option<i64>,
    ) -> Result<i64, StoreError> {
        let q = match ticket_id {
            Some(t) => sqlx::query_scalar::<Any, i64>(
                "SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND created_at >= $2 AND ticket_id = $3",
            )
            .bind(recipient)
            .bind(ms(since))
            .bind(t),
            None => sqlx::query_scalar::<Any, i64>(
                "SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND created_at >= $2",
            )
            .bind(recipient)
            .bind(ms(since)),
        };
        q.fetch_one(&mut *self.tx).await.map_err(|e| self.error(e))
    }

    /// Why an address is known to fail, if it is.
    pub async fn failing(&mut self, address: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar::<Any, String>(
            "SELECT reason FROM address_status WHERE address = $1 AND status = 'failing'",
        )
        .bind(address)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(|e| self.error(e))
    }

    /// Marks an address as failing (a permanent bounce or rejection).
    pub async fn mark_failing(
        &mut self,
        address: &str,
        reason: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query::<Any>(
            "INSERT INTO address_status (address, status, reason, updated_at) VALUES ($1, 'failing', $2, $3) \
             ON CONFLICT (address) DO UPDATE SET status = 'failing', reason = $2, updated_at = $3",
        )
        .bind(address)
        .bind(reason)
        .bind(ms(at))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }
}

impl Store {
    /// Claims up to `limit` due notifications (queued and due, or claimed by a sender whose claim
    /// ran out) until `until`. On PostgreSQL, rows another sender holds are skipped.
    pub async fn claim_due(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        let skip = match self.dialect() {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE outbox SET status = 'sending', claimed_until = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox WHERE (status = 'queued' AND next_attempt_at <= $2) \
             OR (status = 'sending' AND claimed_until < $2) ORDER BY id LIMIT $3{skip}) \
             RETURNING id, ticket_id, event, recipient, envelope_from, message_id, raw, attempts, created_at"
        );
        let mut tx = self.begin().await?;
        let mut rows = sqlx::query_as::<Any, Claimed>(AssertSqlSafe(sql))
            .bind(ms(until))
            .bind(ms(now))
            .bind(limit)
            .fetch_all(&mut *tx.tx)
            .await
            .map_err(|e| tx.error(e))?;
        tx.commit().await?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// Records a delivery.
    pub async fn mark_sent(&self, id: i64, at: Timestamp) -> Result<(), StoreError> {
        sqlx::query::<Any>(
            "UPDATE outbox SET status = 'sent', sent_at = $1, claimed_until = NULL, last_error = NULL WHERE id = $2",
        )
        .bind(ms(at))
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Puts a notification back in the queue after a temporary failure.
    pub async fn mark_retry(
        &self,
        id: i64,
        next: Timestamp,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query::<Any>(
            "UPDATE outbox SET status = 'queued', next_attempt_at = $1, claimed_until = NULL, last_error = $2 WHERE id = $3",
        )
        .bind(ms(next))
        .bind(error)
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Records a permanent failure.
    pub async fn mark_failed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        sqlx::query::<Any>(
            "UPDATE outbox SET status = 'failed', claimed_until = NULL, last_error = $1 WHERE id = $2",
        )
        .bind(error)
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Re-queues a failed notification; false when there is no failed one with this id.
    pub async fn retry_failed(&self, id: i64, now: Timestamp) -> Result<bool, StoreError> {
        let r = sqlx::query::<Any>(
            "UPDATE outbox SET status = 'queued', next_attempt_at = $1, attempts = 0 WHERE id = $2 AND status = 'failed'",
        )
        .bind(ms(now))
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        Ok(r.rows_affected() == 1)
    }

    /// Notifications, newest first, optionally of one status.
    pub async fn outbox(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query_as::<Any, EntryRow>(
            "SELECT o.id, t.ref AS reference, o.event, o.recipient, o.subject, o.message_id, o.status, \
             o.attempts, o.next_attempt_at, o.last_error, o.created_at, o.sent_at \
             FROM outbox o LEFT JOIN tickets t ON t.id = o.ticket_id \
             WHERE ($1 = '' OR o.status = $1) ORDER BY o.id DESC LIMIT $2",
        )
        .bind(status.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        rows.into_iter()
            .map(|r| {
                Ok(OutboxEntry {
                    id: r.id,
                    ticket: r.reference,
                    event: r.event,
                    recipient: r.recipient,
                    subject: r.subject,
                    message_id: r.message_id,
                    status: r.status,
                    attempts: r.attempts,
                    next_attempt_at: ts(r.next_attempt_at)?,
                    last_error: r.last_error,
                    created_at: ts(r.created_at)?,
                    sent_at: r.sent_at.map(ts).transpose()?,
                })
            })
            .collect()
    }

    /// Counts of notifications by status.
    pub async fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query_as::<Any, (String, i64)>(
            "SELECT status, COUNT(*) FROM outbox GROUP BY status ORDER BY status",
        )
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))
    }
}
