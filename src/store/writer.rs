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
//! A transaction dropped unfinished is rolled back before the next one gets the connection
//! (the rollback holds the lock); where that fails, the connection is closed, which rolls back
//! too, and the next transaction opens a new one.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{AnyConnection, Connection, Executor};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{StoreError, classify, setup_sqlite};

/// The connection every SQLite transaction queues for; opened on first use.
#[derive(Clone)]
pub(crate) struct Writer {
    slot: Arc<Mutex<Option<AnyConnection>>>,
    url: String,
    shown: String,
    timeout: Duration,
}

impl Writer {
    pub(crate) fn new(url: &str, shown: &str, timeout: Duration) -> Writer {
        Writer {
            slot: Arc::new(Mutex::new(None)),
            url: url.to_string(),
            shown: shown.to_string(),
            timeout,
        }
    }

    /// Waits (up to the store's timeout) for the connection; the transaction starts with its
    /// first statement.
    pub(crate) async fn begin(&self) -> Result<WriterTx, StoreError> {
        let mut guard = tokio::time::timeout(self.timeout, self.slot.clone().lock_owned())
            .await
            .map_err(|_| classify(&self.shown, sqlx::Error::PoolTimedOut))?;
        if guard.is_none() {
            let mut conn = AnyConnection::connect(&self.url)
                .await
                .map_err(|e| classify(&self.shown, e))?;
            setup_sqlite(&mut conn, "FULL")
                .await
                .map_err(|e| classify(&self.shown, e))?;
            *guard = Some(conn);
        }
        Ok(WriterTx {
            guard: Some(guard),
            begun: false,
            finished: false,
        })
    }

    pub(crate) async fn close(&self) {
        if let Some(conn) = self.slot.lock().await.take() {
            let _ = conn.close().await;
        }
    }
}

/// A transaction on the writer connection.
pub(crate) struct WriterTx {
    guard: Option<OwnedMutexGuard<Option<AnyConnection>>>,
    /// `BEGIN IMMEDIATE` was sent (or is in the statement being sent).
    begun: bool,
    /// `COMMIT` went through.
    finished: bool,
}

impl WriterTx {
    pub(crate) fn conn_ref(&self) -> &AnyConnection {
        self.guard
            .as_ref()
            .and_then(|g| g.as_ref())
            .expect("the writer connection is there while its transaction lives")
    }

    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        self.guard
            .as_mut()
            .and_then(|g| g.as_mut())
            .expect("the writer connection is there while its transaction lives")
    }

    /// True the first time: the caller puts `BEGIN IMMEDIATE` in front of what it sends.
    pub(crate) fn take_begin(&mut self) -> bool {
        !std::mem::replace(&mut self.begun, true)
    }

    /// Whether anything was sent in this transaction.
    pub(crate) fn begun(&self) -> bool {
        self.begun
    }

    pub(crate) fn set_finished(&mut self) {
        self.finished = true;
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
                    let usable = match guard.as_mut() {
                        Some(conn) => match conn.execute("ROLLBACK").await {
                            Ok(_) => true,
                            // BEGIN itself failed (another process held the lock too long).
                            Err(e) => e.to_string().contains("no transaction is active"),
                        },
                        None => true,
                    };
                    if !usable {
                        // Broken: the next transaction opens a new connection.
                        *guard = None;
                    }
                });
            }
            // No runtime to roll back on: closing the connection rolls back.
            Err(_) => *guard = None,
        }
    }
}
