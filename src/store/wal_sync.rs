//! Durability of SQLite commits, apart from the commits themselves.
//!
//! The writer connection commits with `synchronous = NORMAL`: SQLite appends the transaction to
//! its write-ahead log and returns without waiting for the disk. A thread of this module then
//! makes the log durable with `fdatasync(2)` on the `-wal` file, and every commit comes with a
//! [`Durable`] that resolves once a sync that began after it has finished. A commit whose
//! `Durable` resolved is exactly as safe as one made with `synchronous = FULL`, which does the
//! same `fdatasync` inside the commit:
//!
//! - the sync covers every byte written to the log before it began, so the commit's frames and
//!   the log's header are on disk;
//! - SQLite keeps a log consistent without syncs in this mode (frames carry checksums and the
//!   log's salt; recovery stops at the first frame that is not intact), and it still syncs the
//!   log itself before a checkpoint copies frames into the database;
//! - a crash of the process loses nothing either way (the kernel holds what was written).
//!
//! What changes is only who waits: `Tx::commit` still returns once the commit is durable, while
//! `ingest` goes on with the next mail while the disk works, and reports a mail only once its
//! commit is durable. Several commits that finish while one sync runs share the next one.
//!
//! The `-wal` file is opened once the writer connection has opened the database; SQLite
//! removes that file only when the last connection closes, which cannot happen while the
//! writer connection is open, so the descriptor always names the log SQLite writes to. A new
//! writer connection gets a new `WalSync`. A failed sync is final: the kernel may have dropped
//! the pages it could not write, so every commit not yet known durable, and every later one,
//! reports [`StoreError::NotDurable`].

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::watch;

use super::StoreError;

/// The syncing thread of one writer connection.
pub(crate) struct WalSync {
    shared: Arc<Shared>,
    synced: watch::Receiver<Synced>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    /// Commits made so far.
    committed: u64,
    /// The writer connection is gone: the thread syncs what is asked and ends.
    closing: bool,
}

/// What the thread has done.
#[derive(Clone, Debug, Default)]
struct Synced {
    /// Commits known durable.
    upto: u64,
    /// The sync that failed, for good.
    failed: Option<String>,
}

impl WalSync {
    /// Opens the log of the database file `db` and starts the thread; `None` when the log
    /// cannot be opened (the writer then commits with `synchronous = FULL`).
    pub(crate) fn open(db: PathBuf) -> Option<WalSync> {
        let mut path = db.into_os_string();
        path.push("-wal");
        let path = PathBuf::from(path);
        let file = std::fs::File::open(&path)
            .map_err(|e| tracing::debug!(path = %path.display(), error = %e, "no log to sync"))
            .ok()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                committed: 0,
                closing: false,
            }),
            wake: Condvar::new(),
        });
        let (tell, synced) = watch::channel(Synced::default());
        let thread = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("deskmail-wal-sync".into())
            .spawn(move || {
                crate::affinity::leave_the_pinned_cpu();
                run(&thread, &file, &path, &tell)
            })
            .ok()?;
        Some(WalSync { shared, synced })
    }

    /// Counts a commit that just went through and asks for it to be synced.
    pub(crate) fn committed(&self) -> Durable {
        let seq = {
            let mut state = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
            state.committed += 1;
            state.committed
        };
        self.shared.wake.notify_one();
        Durable(Some((self.synced.clone(), seq)))
    }
}

impl Drop for WalSync {
    fn drop(&mut self) {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .closing = true;
        self.shared.wake.notify_one();
    }
}

/// The thread: waits for commits, syncs the log, tells how far it got.
fn run(
    shared: &Shared,
    file: &std::fs::File,
    path: &std::path::Path,
    tell: &watch::Sender<Synced>,
) {
    let mut upto = 0;
    loop {
        let target = {
            let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            while state.committed == upto && !state.closing {
                state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if state.committed == upto {
                return;
            }
            state.committed
        };
        match file.sync_data() {
            Ok(()) => {
                upto = target;
                tell.send_modify(|s| s.upto = upto);
            }
            Err(e) => {
                let why = format!("syncing {} failed: {e}", path.display());
                tracing::error!(error = %why, "commits are not known to be on disk");
                tell.send_modify(|s| s.failed = Some(why));
                return;
            }
        }
    }
}

/// A commit's way to the disk.
#[derive(Debug)]
#[must_use = "a commit is durable only once its Durable says so"]
pub struct Durable(Option<(watch::Receiver<Synced>, u64)>);

impl Durable {
    /// A commit that was durable when it returned (`synchronous = FULL`, PostgreSQL).
    pub fn already() -> Durable {
        Durable(None)
    }

    /// Whether the commit is durable (or failed to become so) by now; does not wait.
    pub fn is_settled(&self) -> bool {
        match &self.0 {
            None => true,
            Some((synced, seq)) => {
                let s = synced.borrow();
                s.upto >= *seq || s.failed.is_some()
            }
        }
    }

    /// Waits until the commit is on disk.
    pub async fn wait(self) -> Result<(), StoreError> {
        let Some((mut synced, seq)) = self.0 else {
            return Ok(());
        };
        let outcome = synced
            .wait_for(|s| s.upto >= seq || s.failed.is_some())
            .await
            .map(|s| s.clone());
        match outcome {
            Ok(s) if s.upto >= seq => Ok(()),
            Ok(s) => Err(StoreError::NotDurable(s.failed.unwrap_or_default())),
            // The thread ended without a failure only after syncing everything asked of it.
            Err(_) => match synced.borrow().clone() {
                s if s.upto >= seq => Ok(()),
                s => Err(StoreError::NotDurable(
                    s.failed
                        .unwrap_or_else(|| "the syncing thread ended".to_string()),
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commits_are_durable_after_the_sync_and_a_missing_log_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.sqlite");
        assert!(WalSync::open(db.clone()).is_none(), "no -wal file yet");
        std::fs::write(dir.path().join("t.sqlite-wal"), b"log").unwrap();
        let sync = WalSync::open(db).expect("the log opens");
        let first = sync.committed();
        let second = sync.committed();
        second.wait().await.unwrap();
        // The sync that covered the second commit covered the first.
        assert!(first.is_settled());
        first.wait().await.unwrap();
        assert!(Durable::already().is_settled());
        // Dropping the syncer still syncs what was asked.
        let third = sync.committed();
        drop(sync);
        third.wait().await.unwrap();
    }
}
