//! Inbound mails: each one kept with what deskmail made of it (raw bytes included), so that
//! processing is idempotent and nothing that could not be applied is lost; and the lookups that
//! match a reply to its ticket.

use jiff::Timestamp;
use serde::Serialize;
use sqlx::{FromRow, Row};

use super::deferred::{Table, Val, Write, bind_query, places};
use super::pieces::Owner;
use super::rows::{MaybeMillis, Millis, ms, ts};
use super::rows::{TICKET_COLUMNS, TicketRow};
use super::tx::Reads;
use super::{Dialect, Store, StoreError, Tx};

/// A mail as it arrives.
#[derive(Debug, Clone)]
pub struct NewInbound<'a> {
    /// Its Message-ID, or a digest of its bytes when it has none.
    pub dedupe_key: &'a str,
    pub message_id: Option<&'a str>,
    pub mailbox: Option<&'a str>,
    pub sender: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub raw: &'a [u8],
    /// `raw` as [`super::pack`] packs it, where a thread did that ahead (a mail of at most
    /// [`super::PIECE`] bytes); packed when stored otherwise. A longer mail's row keeps its
    /// first piece; [`Tx::insert_pieces`] writes the rest.
    pub packed: Option<&'a [u8]>,
    pub received_at: Timestamp,
}

impl NewInbound<'_> {
    /// The bytes to store.
    fn packed(&self) -> std::borrow::Cow<'_, [u8]> {
        match self.packed {
            Some(p) => p.into(),
            None => super::pack(super::pieces::first(self.raw)).into(),
        }
    }
}

/// What became of a mail.
#[derive(Debug, Clone)]
pub struct InboundOutcome<'a> {
    /// `applied`, `refused`, `recorded` or `failed`.
    pub status: &'a str,
    pub class: Option<&'a str>,
    pub reason: &'a str,
    pub ticket_id: Option<i64>,
    /// JSON: what the stages made of it (the dry run's line).
    pub detail: &'a str,
    pub at: Timestamp,
}

/// A stored mail, as `inbound list` shows it.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct InboundEntry {
    pub id: i64,
    pub message_id: Option<String>,
    pub mailbox: Option<String>,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub status: String,
    pub class: Option<String>,
    pub reason: Option<String>,
    pub ticket: Option<String>,
    pub attempts: i64,
    #[sqlx(try_from = "Millis")]
    pub received_at: Timestamp,
    #[sqlx(try_from = "MaybeMillis")]
    pub processed_at: Option<Timestamp>,
}

/// A stored mail to apply again.
#[derive(Debug, Clone)]
pub struct StoredMail {
    pub id: i64,
    pub status: String,
    pub mailbox: Option<String>,
    pub raw: Vec<u8>,
    /// Only its headers were kept (it was over the size limit): `raw` holds them.
    pub headers_only: bool,
    pub received_at: Timestamp,
}

/// Binds a mail's first seven values in the order the inserts name them: key, Message-ID,
/// mailbox, sender, subject, packed bytes, time received.
macro_rules! bind_mail {
    ($q:expr, $m:expr, $packed:expr) => {
        $q.bind($m.dedupe_key)
            .bind($m.message_id)
            .bind($m.mailbox)
            .bind($m.sender)
            .bind($m.subject)
            .bind($packed)
            .bind(ms($m.received_at))
    };
}

/// Keeps a mail (binds: key, Message-ID, mailbox, sender, subject, packed bytes, time); no id
/// when it is stored already. SQLite collects a `RETURNING` clause's rows in a temporary B-tree, set
/// up and torn down per statement; the id of the row just inserted is at hand without it.
fn insert_inbound_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "INSERT INTO inbound_messages (dedupe_key, message_id, mailbox, \
            sender, subject, status, raw_lz4, received_at, attempts) \
            VALUES ($1, $2, $3, $4, $5, 'processing', $6, $7, 1) \
            ON CONFLICT (dedupe_key) DO NOTHING;\n\
            SELECT 'mail' AS kind, last_insert_rowid() AS id WHERE changes() = 1"
        }
        Dialect::Postgres => {
            "INSERT INTO inbound_messages (dedupe_key, message_id, mailbox, \
            sender, subject, status, raw_lz4, received_at, attempts) \
            VALUES ($1, $2, $3, $4, $5, 'processing', $6, $7, 1) \
            ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
        }
    }
}

/// The id of a row just written.
#[derive(FromRow)]
struct NewId {
    id: i64,
}

/// A mail's outcome as bound: status, class, reason, ticket, detail, time processed.
fn outcome_vals(o: &InboundOutcome<'_>) -> [Val; 6] {
    [
        o.status.into(),
        o.class.into(),
        o.reason.into(),
        o.ticket_id.into(),
        o.detail.into(),
        ms(o.at).into(),
    ]
}

impl Tx {
    /// The stored mail with this key, if any: its id and status.
    pub async fn inbound_by_key(&mut self, key: &str) -> Result<Option<(i64, String)>, StoreError> {
        self.fetch_optional(
            Reads::All,
            "SELECT id, status FROM inbound_messages WHERE dedupe_key = $1",
            |q| q.bind(key),
        )
        .await
    }

    /// Keeps a mail (status `processing` until [`Tx::finish_inbound`]); `None` when another
    /// process stored the same mail first.
    pub async fn insert_inbound(&mut self, m: &NewInbound<'_>) -> Result<Option<i64>, StoreError> {
        // The writes kept back (the last mail's) go out in front of this one.
        // The insert's own conflict check is not changed by the updates of other mails' rows
        // that may be pending: it reads nothing else.
        let packed = m.packed();
        let sql = insert_inbound_sql(self.dialect());
        let id: Option<NewId> = self
            .fetch_optional(Reads::Only(&[]), sql, |q| bind_mail!(q, m, &*packed))
            .await?;
        Ok(id.map(|r| r.id))
    }

    /// [`Tx::insert_inbound`], and on SQLite in the same call the ticket `reference` names,
    /// kept for the `ticket_for_update` that follows (on PostgreSQL that reads and locks it).
    pub async fn insert_inbound_reading(
        &mut self,
        m: &NewInbound<'_>,
        reference: Option<&str>,
    ) -> Result<Option<i64>, StoreError> {
        self.memory().prefetched = None;
        let Some(reference) = reference else {
            return self.insert_inbound(m).await;
        };
        if self.dialect() == Dialect::Postgres {
            return self.insert_inbound(m).await;
        }
        let sql = format!(
            "{};\nSELECT 'ticket' AS kind, {TICKET_COLUMNS} FROM tickets WHERE ref = $8",
            insert_inbound_sql(Dialect::Sqlite)
        );
        let packed = m.packed();
        let rows = self
            .rows(Reads::All, &sql, |q| {
                bind_mail!(q, m, &*packed).bind(reference)
            })
            .await?;
        let mut id = None;
        for row in rows {
            let kind: String = row.try_get("kind").map_err(|e| self.error(e))?;
            if kind == "mail" {
                id = Some(NewId::from_row(&row).map_err(|e| self.error(e))?.id);
            } else {
                let ticket = TicketRow::from_row(&row).map_err(|e| self.error(e))?;
                let rec = ticket.into_record()?;
                self.note_parties(&rec);
                self.memory().prefetched = Some(rec);
            }
        }
        Ok(id)
    }

    /// Keeps a mail over the size limit as its headers only (`m.raw` holds them), with its size,
    /// digest and outcome; `None` when it is stored already.
    pub async fn insert_inbound_headers(
        &mut self,
        m: &NewInbound<'_>,
        size: u64,
        sha256: &str,
        o: &InboundOutcome<'_>,
    ) -> Result<Option<i64>, StoreError> {
        let packed = m.packed();
        let sql = "INSERT INTO inbound_messages (dedupe_key, message_id, mailbox, sender, subject, \
             raw_lz4, received_at, status, class, reason, detail, processed_at, attempts, size, \
             sha256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $14) \
             ON CONFLICT (dedupe_key) DO NOTHING RETURNING id";
        let id: Option<NewId> = self
            .fetch_optional(Reads::All, sql, |q| {
                bind_mail!(q, m, &*packed)
                    .bind(o.status)
                    .bind(o.class)
                    .bind(o.reason)
                    .bind(o.detail)
                    .bind(ms(o.at))
                    .bind(i64::try_from(size).unwrap_or(i64::MAX))
                    .bind(sha256)
            })
            .await?;
        Ok(id.map(|r| r.id))
    }

    /// Marks a stored mail as being applied again (a retry).
    pub async fn reopen_inbound(&mut self, id: i64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE inbound_messages SET status = 'processing', attempts = attempts + 1 WHERE id = $1",
            |q| q.bind(id),
        )
        .await?;
        Ok(())
    }

    /// Records what became of a mail.
    pub async fn finish_inbound(
        &mut self,
        id: i64,
        o: &InboundOutcome<'_>,
    ) -> Result<(), StoreError> {
        let mut vals = Vec::from(outcome_vals(o));
        vals.push(id.into());
        self.defer(Write::change(
            Table::InboundMessages,
            "UPDATE inbound_messages SET status = $1, class = $2, reason = $3, ticket_id = $4, \
             detail = $5, processed_at = $6 WHERE id = $7",
            vals,
        ));
        Ok(())
    }

    /// The tickets that Message-IDs belong to: notifications deskmail sent, the threads' roots,
    /// and mails applied to tickets. Each id with its ticket's reference; unknown ids are left
    /// out.
    pub async fn tickets_by_message_ids(
        &mut self,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = places(1, ids.len());
        let sql = format!(
            "SELECT o.message_id, t.ref FROM outbox o JOIN tickets t ON t.id = o.ticket_id \
             WHERE o.message_id IN ({list}) \
             UNION ALL SELECT thread_root, ref FROM tickets WHERE thread_root IN ({list}) \
             UNION ALL SELECT i.dedupe_key, t.ref FROM inbound_messages i JOIN tickets t \
             ON t.id = i.ticket_id WHERE i.dedupe_key IN ({list})"
        );
        self.fetch_all(Reads::All, &sql, |q| {
            ids.iter().fold(q, |q, id| q.bind(id.as_str()))
        })
        .await
    }

    /// The notification with this Message-ID: its ticket, recipient and event.
    pub async fn outbox_by_message_id(
        &mut self,
        message_id: &str,
    ) -> Result<Option<(Option<i64>, String, String)>, StoreError> {
        self.fetch_optional(
            Reads::All,
            "SELECT ticket_id, recipient, event FROM outbox WHERE message_id = $1",
            |q| q.bind(message_id),
        )
        .await
    }

    /// Was a history line of this kind and detail written on the ticket since `since`? (The
    /// "not done" notices are rate-limited by it.)
    pub async fn history_since(
        &mut self,
        ticket_id: i64,
        kind: &str,
        detail: &str,
        since: Timestamp,
    ) -> Result<bool, StoreError> {
        let (n,): (i64,) = self
            .fetch_one(
                Reads::All,
                "SELECT COUNT(*) FROM history WHERE ticket_id = $1 AND kind = $2 \
                 AND detail = $3 AND created_at >= $4",
                |q| q.bind(ticket_id).bind(kind).bind(detail).bind(ms(since)),
            )
            .await?;
        Ok(n > 0)
    }

    /// How many notifications of `event` went to `recipient` since `since`.
    pub async fn outbox_count_since(
        &mut self,
        recipient: &str,
        event: &str,
        since: Timestamp,
    ) -> Result<i64, StoreError> {
        let (n,): (i64,) = self
            .fetch_one(
                Reads::All,
                "SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND event = $2 \
                 AND created_at >= $3",
                |q| q.bind(recipient).bind(event).bind(ms(since)),
            )
            .await?;
        Ok(n)
    }
}

impl Store {
    /// Stored mails, newest first (older than `after`), optionally of one status.
    pub async fn inbound(
        &self,
        status: Option<&str>,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<InboundEntry>, StoreError> {
        let (page, vals) = super::lists::status_page("i", status, after, limit);
        let sql = format!(
            "SELECT i.id, i.message_id, i.mailbox, i.sender, i.subject, i.status, i.class, i.reason, \
             t.ref AS ticket, i.attempts, i.received_at, i.processed_at \
             FROM inbound_messages i LEFT JOIN tickets t ON t.id = i.ticket_id{page}"
        );
        self.fetch_all(&sql, |q| bind_query(q, vals)).await
    }

    /// Lets a refused or failed mail be applied again (`inbound retry`); false for one that
    /// was applied or recorded, which is never applied twice.
    pub async fn reopen_for_retry(&self, id: i64) -> Result<bool, StoreError> {
        let sql = "UPDATE inbound_messages SET status = 'failed' WHERE id = $1 \
                   AND status IN ('refused', 'failed')";
        Ok(self.execute(sql, |q| q.bind(id)).await? > 0)
    }

    /// A stored mail with its bytes.
    pub async fn stored_mail(&self, id: i64) -> Result<Option<StoredMail>, StoreError> {
        #[derive(FromRow)]
        struct Row {
            status: String,
            mailbox: Option<String>,
            raw: Option<Vec<u8>>,
            raw_lz4: Option<Vec<u8>>,
            received_at: i64,
            sha256: Option<String>,
        }
        let sql = "SELECT status, mailbox, raw, raw_lz4, received_at, sha256 \
                   FROM inbound_messages WHERE id = $1";
        let Some(row) = self.fetch_optional::<Row>(sql, |q| q.bind(id)).await? else {
            return Ok(None);
        };
        // Mails stored before packing came in keep `raw`.
        let mut raw = match row.raw_lz4 {
            Some(p) => super::unpack(&p)
                .map_err(|e| StoreError::Corrupt(format!("inbound mail {id}: {e}")))?,
            None => row.raw.unwrap_or_default(),
        };
        self.append_pieces(Owner::Inbound(id), &mut raw).await?;
        Ok(Some(StoredMail {
            id,
            status: row.status,
            mailbox: row.mailbox,
            raw,
            headers_only: row.sha256.is_some(),
            received_at: ts(row.received_at)?,
        }))
    }
}
