//! A transaction and the only ways to run a statement in it. Every statement goes through
//! [`Tx::rows`] (and the `fetch_*` methods on it) or [`Tx::execute`], which send the writes
//! kept back and SQLite's `BEGIN IMMEDIATE` first (see `deferred`); nothing outside this module
//! reaches the connection, so nothing can run before the `BEGIN` or overtake a kept-back write.
//!
//! What a transaction remembers besides (tickets read, parties, notifications seen, messages
//! still being made) is one [`TxMemory`], reset as one at a savepoint rollback.

use std::collections::BTreeSet;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Executor, FromRow};

use super::deferred::{
    Table, Val, Write, bind_query, in_front, one_statement, postgres_batches, with_parts,
};
use super::late::LateMessage;
use super::seen_outbox::SeenOutbox;
use super::wal_sync::Durable;
use super::{Dialect, StoreError, TicketRecord, classify, read_rows, writer};

/// A transaction's connection: sqlx's transaction on a pooled connection, or SQLite's writer.
pub(super) enum TxConn {
    Pooled(sqlx::Transaction<'static, Any>),
    Writer(writer::WriterTx),
}

impl TxConn {
    fn conn(&mut self) -> &mut AnyConnection {
        match self {
            TxConn::Pooled(tx) => tx,
            TxConn::Writer(w) => w.conn(),
        }
    }
}

/// What a statement reads of what the transaction wrote.
#[derive(Debug, Clone, Copy)]
pub(super) enum Reads {
    /// Anything: the writes kept back go out in front of it (on SQLite in the same call).
    All,
    /// Only these tables: on PostgreSQL the writes kept back go along as `WITH` parts of it
    /// when none of them writes these tables.
    Only(&'static [Table]),
}

/// What a transaction remembers to spare reads; all of it may be wrong once a savepoint is
/// rolled back, so [`TxMemory::rollback`] drops all of it but what came before the savepoint.
#[derive(Debug, Default)]
pub(super) struct TxMemory {
    /// The ticket last read (by `ticket_for_update`, or along with an earlier statement, see
    /// `Tx::insert_inbound_reading`), for the next `ticket_for_update` of it; dropped by any
    /// write kept back, which every change of a ticket is.
    pub(super) prefetched: Option<TicketRecord>,
    /// The parties (`ticket_parties`) of the tickets read or written here, by id.
    pub(super) known_parties: Vec<(i64, BTreeSet<String>)>,
    /// Outbox messages still being made, filled in before the commit (see `late`).
    pub(super) late: Vec<LateMessage>,
    /// How many of them there were at the savepoint.
    late_at_savepoint: usize,
    /// What this transaction knows of its tickets' notifications (see `seen_outbox`).
    pub(super) seen_outbox: SeenOutbox,
}

impl TxMemory {
    /// Forgets everything learnt since the savepoint, and everything that may have changed
    /// since: only the late messages from before it stay.
    fn rollback(&mut self) {
        let mut late = std::mem::take(&mut self.late);
        late.truncate(self.late_at_savepoint);
        *self = TxMemory {
            late,
            ..TxMemory::default()
        };
    }
}

/// One transaction: everything an action changes, committed together.
pub struct Tx {
    inner: TxConn,
    dialect: Dialect,
    url: String,
    /// Writes not sent yet (see `deferred`).
    pending: Vec<Write>,
    memory: TxMemory,
}

impl Tx {
    pub(super) fn new(inner: TxConn, dialect: Dialect, url: String) -> Tx {
        Tx {
            inner,
            dialect,
            url,
            pending: Vec::new(),
            memory: TxMemory::default(),
        }
    }

    pub(super) fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub(super) fn memory(&mut self) -> &mut TxMemory {
        &mut self.memory
    }

    pub(super) fn memory_ref(&self) -> &TxMemory {
        &self.memory
    }

    pub(super) fn error(&self, e: sqlx::Error) -> StoreError {
        classify(&self.url, e)
    }

    /// Commits; returns once the commit is on disk.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.commit_unsynced().await?.wait().await
    }

    /// Commits without waiting for the disk (on SQLite's writer, see `wal_sync`): what the
    /// transaction wrote is visible at once, and durable once the returned [`Durable`] says
    /// so. Nothing that depends on it being durable (an acknowledgement) may happen before.
    pub async fn commit_unsynced(mut self) -> Result<Durable, StoreError> {
        self.fill_late().await?;
        if let TxConn::Writer(w) = &self.inner {
            // COMMIT goes out with the last writes; a transaction that sent nothing has
            // nothing to commit.
            if !w.begun() && self.pending.is_empty() {
                return Ok(Durable::already());
            }
            let (sql, vals) = self.with_pending("COMMIT");
            self.send(sql, vals).await?;
            return Ok(match &mut self.inner {
                TxConn::Writer(w) => w.set_committed(),
                TxConn::Pooled(_) => Durable::already(),
            });
        }
        self.flush().await?;
        let url = self.url.clone();
        match self.inner {
            TxConn::Pooled(tx) => tx
                .commit()
                .await
                .map(|()| Durable::already())
                .map_err(|e| classify(&url, e)),
            TxConn::Writer(_) => Ok(Durable::already()),
        }
    }

    /// A write whose result nobody waits for: kept back until the next statement or the
    /// commit.
    pub(super) fn defer(&mut self, w: Write) {
        // A ticket read ahead may be what this write changes.
        self.memory.prefetched = None;
        self.pending.push(w);
    }

    /// The rows a statement returns, the writes kept back (and the `BEGIN`) sent first, as
    /// `reads` allows. `bind` binds the statement's own values (`$1` on).
    pub(super) async fn rows<'q>(
        &mut self,
        reads: Reads,
        sql: &str,
        bind: impl FnOnce(Query<'q, Any, AnyArguments>) -> Query<'q, Any, AnyArguments>,
    ) -> Result<Vec<AnyRow>, StoreError> {
        let (sql, vals) = match reads {
            Reads::All => self.prepare_read(sql).await?,
            Reads::Only(tables) => self.prepare_read_of(sql, tables).await?,
        };
        let q = bind(bind_query(sqlx::query::<Any>(AssertSqlSafe(sql)), vals));
        // All rows: on SQLite the call may hold several statements, and sqlx's
        // `fetch_optional` would stop at the first one's result.
        self.inner
            .conn()
            .fetch_all(q)
            .await
            .map_err(|e| classify(&self.url, e))
    }

    /// [`Tx::rows`], each read into `R` by its columns' names.
    pub(super) async fn fetch_all<'q, R: for<'r> FromRow<'r, AnyRow>>(
        &mut self,
        reads: Reads,
        sql: &str,
        bind: impl FnOnce(Query<'q, Any, AnyArguments>) -> Query<'q, Any, AnyArguments>,
    ) -> Result<Vec<R>, StoreError> {
        let rows = self.rows(reads, sql, bind).await?;
        read_rows(&rows).map_err(|e| self.error(e))
    }

    /// The first row of [`Tx::fetch_all`], if any.
    pub(super) async fn fetch_optional<'q, R: for<'r> FromRow<'r, AnyRow>>(
        &mut self,
        reads: Reads,
        sql: &str,
        bind: impl FnOnce(Query<'q, Any, AnyArguments>) -> Query<'q, Any, AnyArguments>,
    ) -> Result<Option<R>, StoreError> {
        let rows = self.rows(reads, sql, bind).await?;
        rows.first()
            .map(|r| R::from_row(r).map_err(|e| self.error(e)))
            .transpose()
    }

    /// The first row of [`Tx::fetch_all`]; none is an error.
    pub(super) async fn fetch_one<'q, R: for<'r> FromRow<'r, AnyRow>>(
        &mut self,
        reads: Reads,
        sql: &str,
        bind: impl FnOnce(Query<'q, Any, AnyArguments>) -> Query<'q, Any, AnyArguments>,
    ) -> Result<R, StoreError> {
        self.fetch_optional(reads, sql, bind)
            .await?
            .ok_or_else(|| self.error(sqlx::Error::RowNotFound))
    }

    /// Runs a statement after the writes kept back, which go out on their own: the rows it
    /// changed are its own.
    pub(super) async fn execute<'q>(
        &mut self,
        sql: &str,
        bind: impl FnOnce(Query<'q, Any, AnyArguments>) -> Query<'q, Any, AnyArguments>,
    ) -> Result<u64, StoreError> {
        self.flush().await?;
        let q = bind(sqlx::query::<Any>(AssertSqlSafe(sql.to_string())));
        self.inner
            .conn()
            .execute(q)
            .await
            .map(|r| r.rows_affected())
            .map_err(|e| classify(&self.url, e))
    }

    /// A read's SQL and the values to bind before its own: on SQLite the pending writes go in
    /// front of it (see [`Tx::with_pending`]); on PostgreSQL they are sent first.
    async fn prepare_read(&mut self, sql: &str) -> Result<(String, Vec<Val>), StoreError> {
        match self.dialect {
            Dialect::Sqlite => Ok(self.with_pending(sql)),
            Dialect::Postgres => {
                self.flush().await?;
                Ok((sql.to_string(), Vec::new()))
            }
        }
    }

    /// [`Tx::prepare_read`] for a statement that reads only the tables `reads`: on PostgreSQL
    /// the pending writes then go along as `WITH` parts of it, when none of them writes those
    /// tables (the statement would not see their changes) and none changes a table's rows
    /// twice.
    async fn prepare_read_of(
        &mut self,
        sql: &str,
        reads: &[Table],
    ) -> Result<(String, Vec<Val>), StoreError> {
        if self.dialect == Dialect::Sqlite {
            return Ok(self.with_pending(sql));
        }
        let touches = self.pending.iter().any(|w| reads.contains(&w.touch.table));
        if self.pending.is_empty()
            || touches
            || !one_statement(self.pending.iter().map(|w| w.touch))
        {
            self.flush().await?;
            return Ok((sql.to_string(), Vec::new()));
        }
        let writes = self.pending.drain(..).collect();
        Ok(with_parts(writes, sql))
    }

    /// `sql` with the pending writes (and a `BEGIN` not sent yet) in front of it, its
    /// placeholders moved after theirs, and their values, which are bound first. The pending
    /// writes are taken.
    fn with_pending(&mut self, sql: &str) -> (String, Vec<Val>) {
        let begin = match &mut self.inner {
            TxConn::Writer(w) => w.take_begin(),
            TxConn::Pooled(_) => false,
        };
        let writes = self.pending.drain(..).collect();
        in_front(begin, writes, sql)
    }

    /// Sends the pending writes (and a `BEGIN` not sent yet).
    pub(super) async fn flush(&mut self) -> Result<(), StoreError> {
        let needs_begin = matches!(&self.inner, TxConn::Writer(w) if !w.begun());
        if self.pending.is_empty() && !needs_begin {
            return Ok(());
        }
        if self.dialect == Dialect::Postgres {
            let writes = self.pending.drain(..).collect();
            for (sql, vals) in postgres_batches(writes) {
                self.send(sql, vals).await?;
            }
            return Ok(());
        }
        let (mut sql, vals) = self.with_pending("");
        // The last statement of the batch is the empty one `with_pending` was given.
        sql.truncate(sql.trim_end().len());
        self.send(sql, vals).await
    }

    /// Sends one call of statements as they are.
    async fn send(&mut self, sql: String, vals: Vec<Val>) -> Result<(), StoreError> {
        bind_query(sqlx::query::<Any>(AssertSqlSafe(sql)), vals)
            .execute(self.inner.conn())
            .await
            .map_err(|e| classify(&self.url, e))?;
        Ok(())
    }

    /// A savepoint inside the transaction: one mail of a group can be undone alone.
    pub async fn savepoint(&mut self) -> Result<(), StoreError> {
        self.memory.late_at_savepoint = self.memory.late.len();
        self.execute("SAVEPOINT mail", |q| q).await.map(drop)
    }

    pub async fn release_savepoint(&mut self) -> Result<(), StoreError> {
        self.execute("RELEASE SAVEPOINT mail", |q| q)
            .await
            .map(drop)
    }

    /// Undoes what was done since the savepoint: what the undone mail kept back is undone
    /// with it, never sent, and what the transaction remembered is forgotten.
    pub async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        self.pending.clear();
        self.memory.rollback();
        self.execute("ROLLBACK TO SAVEPOINT mail", |q| q).await?;
        self.execute("RELEASE SAVEPOINT mail", |q| q)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A savepoint rollback leaves nothing of what the transaction remembered, whatever it
    /// is: only the late messages from before the savepoint stay.
    #[test]
    fn a_savepoint_rollback_forgets_everything_remembered() {
        let mut m = TxMemory {
            known_parties: vec![(1, BTreeSet::from(["watcher:a".to_string()]))],
            late_at_savepoint: 0,
            ..TxMemory::default()
        };
        let (_send, made) = tokio::sync::oneshot::channel();
        m.late.push(LateMessage {
            message_id: "<m@x>".into(),
            made,
            ticket_id: 1,
            actor: "a".into(),
            action: "comment".into(),
            at: jiff::Timestamp::UNIX_EPOCH,
            not_mailed: "not mailed".into(),
        });
        m.rollback();
        assert_eq!(format!("{m:?}"), format!("{:?}", TxMemory::default()));
    }
}
