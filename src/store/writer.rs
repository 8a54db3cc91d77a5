//! SQLite's one writer. SQLite lets one connection write at a time, so in-process the
//! transactions queue for one connection of deskmail's own, held for as long as the process
//! runs:
//!
//! - it keeps its page cache (SQLite drops a connection's cache whenever another connection
//!   wrote, so transactions taking turns on pooled connections would each start cold);
//! - `BEGIN IMMEDIATE` goes out with the transaction's first statement and `COMMIT` with its
//!   last writes (see `deferred`), and nothing pings the connection between transactions: a
//!   transaction of one mail is three hand-offs to sqlx's worker thread instead of six.
//!
//! - its commits wait for no disk: it runs with `synchronous = NORMAL`, and `wal_sync` makes
//!   each commit durable on a thread of its own (each commit comes with its `Durable`).
//!
//! A transaction dropped unfinished is rolled back before the next one gets the connection
//! (the rollback holds the lock); where that fails, the connection is closed, which rolls back
//! too, and the next transaction opens a new one.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{AnyConnection, Connection, Executor};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::wal_sync::{Durable, WalSync};
use super::{StoreError, classify, setup_sqlite};

/// The connection every SQLite transaction queues for; opened on first use.
#[derive(Clone)]
pub(crate) struct Writer {
    slot: Arc<Mutex<Option<Open>>>,
    url: String,
    shown: String,
    timeout: Duration,
    /// Its page cache, MiB.
    cache_mib: u32,
}

impl Writer {
    pub(crate) fn new(url: &str, shown: &str, timeout: Duration, cache_mib: u32) -> Writer {
        Writer {
            slot: Arc::new(Mutex::new(None)),
            url: url.to_string(),
            shown: shown.to_string(),
            timeout,
            cache_mib,
        }
    }

    /// Waits (up to the store's timeout) for the connection; the transaction starts with its
    /// first statement.
    pub(crate) async fn begin(&self) -> Result<WriterTx, StoreError> {
        let mut guard = tokio::time::timeout(self.timeout, self.slot.clone().lock_owned())
            .await
            .map_err(|_| classify(&self.shown, sqlx::Error::PoolTimedOut))?;
        if guard.is_none() {
            *guard = Some(self.open().await.map_err(|e| classify(&self.shown, e))?);
        }
        Ok(WriterTx {
            guard: Some(guard),
            begun: false,
            finished: false,
        })
    }

    /// A new connection: commits synced by a `WalSync` of its own where the database is a
    /// file whose log can be opened, else by SQLite itself (`synchronous = FULL`).
    async fn open(&self) -> Result<Open, sqlx::Error> {
        super::sqlite_heap::configure();
        let mut conn = AnyConnection::connect(&self.url).await?;
        setup_sqlite(&mut conn, "FULL").await?;
        let cache = format!("PRAGMA cache_size = -{}", u64::from(self.cache_mib) * 1024);
        conn.execute(sqlx::AssertSqlSafe(cache)).await?;
        let file: Option<String> = sqlx::query_scalar::<sqlx::Any, String>(
            "SELECT file FROM pragma_database_list WHERE name = 'main'",
        )
        .fetch_optional(&mut conn)
        .await?;
        let wal = file
            .filter(|f| !f.is_empty())
            .and_then(|f| WalSync::open(f.into()));
        if wal.is_some() {
            conn.execute("PRAGMA synchronous = NORMAL").await?;
        }
        Ok(Open { conn, wal })
    }

    pub(crate) async fn close(&self) {
        if let Some(open) = self.slot.lock().await.take() {
            let _ = open.conn.close().await;
        }
    }
}

/// The open writer connection, and what syncs its commits.
pub(crate) struct Open {
    conn: AnyConnection,
    wal: Option<WalSync>,
}

/// A transaction on the writer connection.
pub(crate) struct WriterTx {
    guard: Option<OwnedMutexGuard<Option<Open>>>,
    /// `BEGIN IMMEDIATE` was sent (or is in the statement being sent).
    begun: bool,
    /// `COMMIT` went through.
    finished: bool,
}

impl WriterTx {
    fn open_ref(&self) -> &Open {
        self.guard
            .as_ref()
            .and_then(|g| g.as_ref())
            .expect("the writer connection is there while its transaction lives")
    }

    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        &mut self
            .guard
            .as_mut()
            .and_then(|g| g.as_mut())
            .expect("the writer connection is there while its transaction lives")
            .conn
    }

    /// True the first time: the caller puts `BEGIN IMMEDIATE` in front of what it sends.
    pub(crate) fn take_begin(&mut self) -> bool {
        !std::mem::replace(&mut self.begun, true)
    }

    /// Whether anything was sent in this transaction.
    pub(crate) fn begun(&self) -> bool {
        self.begun
    }

    /// Marks the transaction committed; its way to the disk comes back.
    pub(crate) fn set_committed(&mut self) -> Durable {
        self.finished = true;
        match &self.open_ref().wal {
            Some(wal) => wal.committed(),
            None => Durable::already(),
        }
    }
}

impl Drop for WriterTx {
    fn drop(&mut self) {
        if self.finished || !self.begun {
            return;
        }
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                // The lock goes with the rollback: no transaction gets the connection first.
                handle.spawn(async move {
                    // A ROLLBACK that fails (BEGIN itself failed, as when another process held
                    // the lock too long, or the connection broke) leaves the connection in a
                    // state not known: it is closed, which rolls back anything still open, and
                    // the next transaction opens a new one.
                    if let Some(open) = guard.as_mut()
                        && open.conn.execute("ROLLBACK").await.is_err()
                    {
                        *guard = None;
                    }
                });
            }
            // No runtime to roll back on: closing the connection rolls back.
            Err(_) => *guard = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn synchronous(w: &Writer) -> (i64, bool) {
        let mut tx = w.begin().await.unwrap();
        let mode: i64 = sqlx::query_scalar::<sqlx::Any, i64>("PRAGMA synchronous")
            .fetch_one(tx.conn())
            .await
            .unwrap();
        (mode, tx.open_ref().wal.is_some())
    }

    #[tokio::test]
    async fn a_file_commits_without_waiting_and_is_synced_by_its_thread() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("w.sqlite").display()
        );
        let w = Writer::new(&url, &url, Duration::from_secs(5), 4);
        // NORMAL (1): the log is synced by `WalSync`.
        assert_eq!(synchronous(&w).await, (1, true));
        w.close().await;
        // Without a file there is no log to sync: SQLite syncs (FULL, 2), or has nothing to.
        let w = Writer::new("sqlite::memory:", "memory", Duration::from_secs(5), 4);
        assert_eq!(synchronous(&w).await, (2, false));
    }
}
