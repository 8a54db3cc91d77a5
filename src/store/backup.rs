//! A copy of an SQLite store taken while deskmail runs: `VACUUM INTO` reads one consistent
//! snapshot (a read transaction in WAL mode: the writer goes on meanwhile) and writes it as a
//! new, compact database. The copy is written beside its destination, synced, checked (SQLite's
//! integrity check, the schema's migrations) and only then linked into place (never over a
//! file), so that the destination is a whole, checked backup or nothing. PostgreSQL has its own tools (`pg_dump`).

use std::path::{Path, PathBuf};

use sqlx::{Any, Connection};

use super::{Dialect, Schema, Store, StoreError};

/// Why a backup was not made.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("the store is PostgreSQL: back it up with pg_dump (see docs/storage.md)")]
    Postgres,
    #[error("{0} exists already: a backup never overwrites a file")]
    Exists(PathBuf),
    #[error("cannot write the backup at {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the copy failed")]
    Store(#[from] StoreError),
    #[error("the copy at {path} does not pass its check: {problem}")]
    Check { path: PathBuf, problem: String },
}

/// What a backup holds, as its check read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub tickets: i64,
    pub mails: i64,
    pub bytes: u64,
}

impl Store {
    /// Copies the store to `to`, a file that must not exist yet, and checks the copy.
    pub async fn backup(&self, to: &Path) -> Result<Backup, BackupError> {
        if self.dialect == Dialect::Postgres {
            return Err(BackupError::Postgres);
        }
        if to.exists() {
            return Err(BackupError::Exists(to.to_path_buf()));
        }
        let partial = partial_path(to);
        let write = |source| BackupError::Write {
            path: to.to_path_buf(),
            source,
        };
        // A partial copy left by a backup that was stopped half-way.
        match std::fs::remove_file(&partial) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(write(e)),
            _ => {}
        }
        let target = partial.to_str().ok_or_else(|| BackupError::Check {
            path: to.to_path_buf(),
            problem: "the path is not UTF-8".into(),
        })?;
        sqlx::query::<Any>("VACUUM INTO $1")
            .bind(target)
            .execute(self.pool())
            .await
            .map_err(|e| self.error(e))?;
        let checked = self.check_copy(&partial).await;
        let backup = match checked {
            Ok(b) => b,
            Err(problem) => {
                let _ = std::fs::remove_file(&partial);
                return Err(BackupError::Check {
                    path: to.to_path_buf(),
                    problem,
                });
            }
        };
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(write)?;
        // A link, not a rename: it fails where a file appeared at `to` meanwhile.
        let linked = std::fs::hard_link(&partial, to);
        let _ = std::fs::remove_file(&partial);
        linked.map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => BackupError::Exists(to.to_path_buf()),
            _ => write(e),
        })?;
        if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(write)?;
        }
        Ok(backup)
    }

    /// Opens the copy read-only and checks it: SQLite's integrity check passes, and its schema
    /// has every migration of this build. Counts what it holds.
    async fn check_copy(&self, copy: &Path) -> Result<Backup, String> {
        let url = format!("sqlite://{}?mode=ro", copy.display());
        let mut conn = sqlx::AnyConnection::connect(&url)
            .await
            .map_err(|e| format!("cannot open it: {e}"))?;
        let read = |e: sqlx::Error| format!("cannot read it: {e}");
        let integrity: String = sqlx::query_scalar::<Any, String>("PRAGMA integrity_check")
            .fetch_one(&mut conn)
            .await
            .map_err(read)?;
        if integrity != "ok" {
            return Err(format!("SQLite's integrity check says: {integrity}"));
        }
        let applied = sqlx::query_scalar::<Any, i64>(
            "SELECT version FROM _sqlx_migrations WHERE success = TRUE",
        )
        .fetch_all(&mut conn)
        .await
        .map_err(read)?;
        let state = self.migrations_of(applied);
        if state.schema() == Schema::Behind {
            return Err(format!(
                "its schema lacks {} of this version's migrations",
                state.pending.len()
            ));
        }
        let (tickets, mails): (i64, i64) = sqlx::query_as::<Any, (i64, i64)>(
            "SELECT (SELECT COUNT(*) FROM tickets), (SELECT COUNT(*) FROM inbound_messages)",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(read)?;
        let _ = conn.close().await;
        let bytes = std::fs::metadata(copy).map(|m| m.len()).unwrap_or(0);
        Ok(Backup {
            tickets,
            mails,
            bytes,
        })
    }
}

/// Where the copy is written before it is checked: beside the destination.
fn partial_path(to: &Path) -> PathBuf {
    let mut name = to.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    to.with_file_name(name)
}
