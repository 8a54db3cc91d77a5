//! All SQL lives here. One code path for SQLite and PostgreSQL through sqlx's `Any` driver,
//! portable SQL with `$N` placeholders, times as INTEGER milliseconds, lists and maps as JSON
//! text. Where the dialects differ (row locks, transaction start) [`Dialect`] branches.
//!
//! Everything one action changes is written through one [`Tx`]; dropping it rolls back.

mod backup;
mod bodies;
mod deferred;
mod inbound;
mod late;
mod leases;
mod lists;
mod mailboxes;
mod outbox;
mod pieces;
mod rows;
mod seen_outbox;
mod sqlite_heap;
mod tickets;
mod tx;
mod wal_sync;
mod writer;

use std::path::PathBuf;
use std::time::Duration;

use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow, install_default_drivers};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Executor, FromRow};

use tx::TxConn;

pub use backup::{Backup, BackupError};
pub use inbound::{InboundEntry, InboundOutcome, NewInbound, StoredMail};
pub use late::LateMessage;
pub use leases::Fence;
pub use lists::{Page, TicketFilter, Visibility, next_page};
pub use mailboxes::{Cursor, Move};
pub use outbox::{Claimed, NewOutboxRow, OutboxEntry, OutboxState, count_key};
pub use pieces::{Owner, PIECE};
pub use rows::{CommentRow, HistoryRow, TicketRecord};
pub use tickets::{NewCommentRow, NewHistoryRow};
pub use tx::Tx;
pub use wal_sync::Durable;

use crate::config::redact_url;

/// The two databases deskmail runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    fn from_url(url: &str) -> Option<Dialect> {
        if url.starts_with("sqlite:") {
            Some(Dialect::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Dialect::Postgres)
        } else {
            None
        }
    }

    /// Appended to a SELECT that reads a row the transaction will update.
    pub(crate) fn lock_suffix(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}

/// What can go wrong in the store. `Unavailable` is temporary: try again later.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store URL must start with sqlite:// or postgres://")]
    BadUrl,
    #[error("cannot create the directory {path}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the store at {url} is unavailable (busy or unreachable)")]
    Unavailable { url: String, source: sqlx::Error },
    #[error("a database statement failed")]
    Query(#[source] sqlx::Error),
    #[error("migrating the schema failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
    #[error(
        "the store at {url} has migration {version}, which this version of deskmail does not know: \
         it was upgraded by a newer deskmail; run that version, or restore the backup taken before \
         the upgrade"
    )]
    NewerSchema { url: String, version: i64 },
    #[error("{0}; what was committed since the last sync is not known to be on disk")]
    NotDurable(String),
}

/// How a store's schema stands to the migrations of this build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Every migration of this build is applied, and no other.
    Current,
    /// Some of this build's migrations are not applied yet.
    Behind,
    /// A migration this build does not know is applied: a newer deskmail upgraded it.
    Newer { version: i64 },
}

impl StoreError {
    /// True for faults that may go away by themselves (database busy or down).
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. } | StoreError::NotDurable(_)
        )
    }
}

fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // SQLite: 5 busy, 6 locked (extended codes keep the low byte). PostgreSQL: class 08
            // (connection), 40001 serialization, 40P01 deadlock, 53 resources, 57P0x shutdown.
            let sqlite_busy = code.parse::<i64>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
            sqlite_busy
                || code.starts_with("08")
                || code == "40001"
                || code == "40P01"
                || code.starts_with("53")
                || code.starts_with("57P0")
        }
        _ => false,
    }
}

/// How a store's schema stands against this build's migrations (`deskmail doctor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    pub applied: usize,
    /// This build's migrations not applied yet (`deskmail migrate`, or any command, applies them).
    pub pending: Vec<i64>,
    /// Migrations applied that this build does not know.
    pub unknown: Vec<i64>,
}

impl MigrationState {
    /// The state of a schema with the `applied` migration versions against this build's `known`.
    fn of(mut applied: Vec<i64>, known: &[i64]) -> MigrationState {
        applied.sort_unstable();
        MigrationState {
            pending: known
                .iter()
                .filter(|v| !applied.contains(v))
                .copied()
                .collect(),
            unknown: applied
                .iter()
                .filter(|v| !known.contains(v))
                .copied()
                .collect(),
            applied: applied.len(),
        }
    }

    pub fn schema(&self) -> Schema {
        match (self.unknown.first(), self.pending.is_empty()) {
            (Some(&version), _) => Schema::Newer { version },
            (None, true) => Schema::Current,
            (None, false) => Schema::Behind,
        }
    }
}

/// A handle on the database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// SQLite's transactions (see `writer`); PostgreSQL's come from the pool.
    writer: Option<writer::Writer>,
    /// The outbox sender's claims and marks (see `connect_within`); the main pool on PostgreSQL.
    bookkeeping: AnyPool,
    dialect: Dialect,
    url: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dialect", &self.dialect)
            .field("url", &self.url)
            .finish()
    }
}

/// Connections as deskmail sets them up; `synchronous` is SQLite's setting (FULL: a commit is on
/// disk when it returns).
fn pool_options(max: u32, timeout: Duration, synchronous: &'static str) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(timeout)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if conn.backend_name() == "SQLite" {
                    setup_sqlite(conn, synchronous).await?;
                    // Readers and the sender's bookkeeping keep 1 MiB of pages each: what they
                    // read passes through once, and a daemon keeps up to five of them open. The
                    // writer (writer.rs) keeps its 4 MiB.
                    conn.execute("PRAGMA cache_size = -1024").await?;
                }
                Ok(())
            })
        })
}

/// An SQLite connection as deskmail uses it.
async fn setup_sqlite(conn: &mut AnyConnection, synchronous: &str) -> Result<(), sqlx::Error> {
    // 8 KiB pages for a new database (an existing one keeps its own; it cannot change in WAL
    // mode). A stored mail and its notification take a few pages whatever their size: with
    // twice the page, an ingest writes about half as many WAL frames (two write(2) calls each)
    // and checkpoints half as many pages. Measured against 4 KiB: 11 % more mails per second
    // grouped, 14 % one commit per mail; 16 KiB was faster grouped but slower one by one.
    conn.execute("PRAGMA page_size = 8192").await?;
    // WAL: readers never block the writer; busy_timeout: writers (of other processes) queue
    // instead of failing at once.
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute(AssertSqlSafe(format!("PRAGMA synchronous = {synchronous}")))
        .await?;
    conn.execute("PRAGMA busy_timeout = 10000").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    // 4 MiB of page cache (the default is 2 MiB); the writer's is `store.cache_mib`.
    conn.execute("PRAGMA cache_size = -4096").await?;
    // Fewer, larger checkpoints: a page changed again and again (an index, a busy ticket) is
    // copied back to the database once per checkpoint.
    conn.execute("PRAGMA wal_autocheckpoint = 8000").await?;
    // Statement and savepoint journals (a multi-row insert inside a transaction keeps the pages
    // it changes, to undo just that statement) stay in memory: by default they spill into a
    // temporary file after 64 KiB, a write(2) per page. They are never needed after a crash.
    conn.execute("PRAGMA temp_store = MEMORY").await?;
    Ok(())
}

/// Bytes as the store keeps a whole mail (an outbox message, an inbound mail): LZ4 block
/// format with the uncompressed size in front (4 bytes, little-endian). Mail text packs to
/// about 40 % of its size; LZ4 packs several hundred MB/s on one core.
pub fn pack(raw: &[u8]) -> Vec<u8> {
    lz4_flex::compress_prepend_size(raw)
}

/// The bytes [`pack`] packed.
fn unpack(packed: &[u8]) -> Result<Vec<u8>, lz4_flex::block::DecompressError> {
    lz4_flex::decompress_size_prepended(packed)
}

/// SQLite's writer's page cache unless `store.cache_mib` says otherwise. A large mail's pages
/// pass through it, so it is part of what one mail may cost; 16 MiB were no faster at ingest into
/// a small store (8 rounds side by side), nor 16 or 64 for replies spread over a million tickets
/// (`benches/cache_sizes.py`, docs/benchmarks.md).
pub const DEFAULT_CACHE_MIB: u32 = 4;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Opens the store (an SQLite file is created on first use, in WAL mode) without migrating;
    /// an unreachable server is given 10 seconds.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_within(url, Duration::from_secs(10)).await
    }

    /// Like [`Store::connect`], giving an unreachable server `timeout` before failing.
    pub async fn connect_within(url: &str, timeout: Duration) -> Result<Store, StoreError> {
        Store::connect_with(url, timeout, DEFAULT_CACHE_MIB).await
    }

    /// [`Store::connect_within`] with `cache_mib` of page cache for SQLite's writer (the
    /// `store.cache_mib` setting).
    pub async fn connect_with(
        url: &str,
        timeout: Duration,
        cache_mib: u32,
    ) -> Result<Store, StoreError> {
        install_default_drivers();
        let dialect = Dialect::from_url(url).ok_or(StoreError::BadUrl)?;
        let shown = redact_url(url);
        let mut url = url.to_string();
        let mut max = 8;
        if dialect == Dialect::Sqlite {
            sqlite_heap::configure();
            if let Some(path) = sqlite_path(&url)
                && let Some(dir) = path.parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
            if !url.contains('?') {
                url.push_str("?mode=rwc");
            }
            max = 4;
        }
        let pool = pool_options(max, timeout, "FULL")
            .connect(&url)
            .await
            .map_err(|source| StoreError::Unavailable {
                url: shown.clone(),
                source,
            })?;
        let writer = (dialect == Dialect::Sqlite)
            .then(|| writer::Writer::new(&url, &shown, timeout, cache_mib));
        // The outbox sender's bookkeeping (claims, "sent" marks) on SQLite goes through a
        // connection of its own that does not wait for the disk on each commit: a process
        // crash loses nothing (WAL), and after a power loss the worst is a mail sent once more,
        // which delivery at least once allows anyway. Postfix fsyncs each mail it accepts;
        // the sender's own fsyncs would otherwise queue with them on the same disk.
        let bookkeeping = match dialect {
            Dialect::Sqlite => pool_options(1, timeout, "NORMAL")
                .connect_lazy(&url)
                .map_err(|source| StoreError::Unavailable {
                    url: shown.clone(),
                    source,
                })?,
            Dialect::Postgres => pool.clone(),
        };
        Ok(Store {
            pool,
            writer,
            bookkeeping,
            dialect,
            url: shown,
        })
    }

    /// Opens the store and brings its schema up to date. A current schema costs one query: a
    /// process started per mail (an MTA pipe) does no migration work.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_within(url, Duration::from_secs(10)).await
    }

    /// [`Store::open`], giving an unreachable server `timeout`.
    pub async fn open_within(url: &str, timeout: Duration) -> Result<Store, StoreError> {
        Store::open_with(url, timeout, DEFAULT_CACHE_MIB).await
    }

    /// [`Store::open_within`] with `cache_mib` of page cache for SQLite's writer.
    pub async fn open_with(
        url: &str,
        timeout: Duration,
        cache_mib: u32,
    ) -> Result<Store, StoreError> {
        let store = Store::connect_with(url, timeout, cache_mib).await?;
        match store.schema().await {
            Schema::Current => {}
            Schema::Behind => {
                store.migrate().await?;
            }
            Schema::Newer { version } => {
                return Err(StoreError::NewerSchema {
                    url: store.url.clone(),
                    version,
                });
            }
        }
        Ok(store)
    }

    /// Applies the migrations of this dialect that are not applied yet; returns how many ran.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let migrator = self.migrator();
        let before = self.applied_migrations().await;
        migrator.run(&self.pool).await?;
        let after = self.applied_migrations().await;
        Ok(after.saturating_sub(before))
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.dialect {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    async fn applied_migrations(&self) -> usize {
        self.applied_versions().await.len()
    }

    /// The versions of the migrations applied to the store (none before the first).
    async fn applied_versions(&self) -> Vec<i64> {
        sqlx::query_scalar::<Any, i64>("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
            .fetch_all(&self.pool)
            .await
            .unwrap_or_default()
    }

    /// This build's migration versions.
    fn known_versions(&self) -> Vec<i64> {
        self.migrator().iter().map(|m| m.version).collect()
    }

    /// The state of a schema whose applied migrations are `applied`, against this build's.
    pub(crate) fn migrations_of(&self, applied: Vec<i64>) -> MigrationState {
        MigrationState::of(applied, &self.known_versions())
    }

    /// How the store's schema stands to this build's migrations.
    pub async fn schema(&self) -> Schema {
        self.migrations_of(self.applied_versions().await).schema()
    }

    /// The schema's migrations against this build's: those still to apply, and those applied
    /// that this build does not have (a newer deskmail migrated the store).
    pub async fn migration_state(&self) -> Result<MigrationState, StoreError> {
        self.ping().await?;
        Ok(self.migrations_of(self.applied_versions().await))
    }

    /// True when every migration of this build is applied, and no other.
    pub async fn is_current(&self) -> bool {
        self.schema().await == Schema::Current
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The URL with any password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Starts a transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), so
    /// that two writers queue instead of failing when the second upgrades its read lock.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let inner = match &self.writer {
            Some(writer) => TxConn::Writer(writer.begin().await?),
            None => TxConn::Pooled(self.pool.begin().await.map_err(|e| self.error(e))?),
        };
        Ok(Tx::new(inner, self.dialect, self.url.clone()))
    }

    pub(crate) fn error(&self, e: sqlx::Error) -> StoreError {
        classify(&self.url, e)
    }

    /// The rows of one statement on the pool, each read into `R` by its columns' names; `bind`
    /// binds its values.
    pub(super) async fn fetch_all<'q, R: for<'r> FromRow<'r, AnyRow>>(
        &self,
        sql: &str,
        bind: impl FnOnce(Query<'q, Any, AnyArguments>) -> Query<'q, Any, AnyArguments>,
    ) -> Result<Vec<R>, StoreError> {
        let q = bind(sqlx::query::<Any>(AssertSqlSafe(sql.to_string())));
        let rows = self.pool.fetch_all(q).await.map_err(|e| self.error(e))?;
        read_rows(&rows).map_err(|e| self.error(e))
    }

    /// The first row of [`Store::fetch_all`], if any.
    pub(super) async fn fetch_optional<'q, R: for<'r> FromRow<'r, AnyRow>>(
        &self,
        sql: &str,
        bind: impl FnOnce(Query<'q, Any, AnyArguments>) -> Query<'q, Any, AnyArguments>,
    ) -> Result<Option<R>, StoreError> {
        let q = bind(sqlx::query::<Any>(AssertSqlSafe(sql.to_string())));
        let row = self.pool.fetch_optional(q).await;
        let row = row.map_err(|e| self.error(e))?;
        row.map(|r| R::from_row(&r).map_err(|e| self.error(e)))
            .transpose()
    }

    /// Runs one statement on `pool`; how many rows it changed.
    pub(super) async fn execute_on<'q>(
        &self,
        pool: &AnyPool,
        sql: &str,
        bind: impl FnOnce(Query<'q, Any, AnyArguments>) -> Query<'q, Any, AnyArguments>,
    ) -> Result<u64, StoreError> {
        let q = bind(sqlx::query::<Any>(AssertSqlSafe(sql.to_string())));
        let done = pool.execute(q).await.map_err(|e| self.error(e))?;
        Ok(done.rows_affected())
    }

    /// [`Store::execute_on`] the main pool.
    pub(super) async fn execute<'q>(
        &self,
        sql: &str,
        bind: impl FnOnce(Query<'q, Any, AnyArguments>) -> Query<'q, Any, AnyArguments>,
    ) -> Result<u64, StoreError> {
        self.execute_on(&self.pool, sql, bind).await
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(self.pool())
            .await
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    pub(crate) fn bookkeeping_pool(&self) -> &AnyPool {
        &self.bookkeeping
    }

    /// A transaction on the bookkeeping connection.
    pub(crate) async fn begin_bookkeeping(&self) -> Result<Tx, StoreError> {
        let tx = match self.dialect {
            Dialect::Sqlite => self.bookkeeping.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => self.bookkeeping.begin().await,
        }
        .map_err(|e| self.error(e))?;
        Ok(Tx::new(TxConn::Pooled(tx), self.dialect, self.url.clone()))
    }

    pub async fn close(&self) {
        self.bookkeeping.close().await;
        if let Some(writer) = &self.writer {
            writer.close().await;
        }
        self.pool.close().await;
    }
}

fn classify(url: &str, e: sqlx::Error) -> StoreError {
    if is_transient(&e) {
        StoreError::Unavailable {
            url: url.to_string(),
            source: e,
        }
    } else {
        StoreError::Query(e)
    }
}

/// Rows read into `R` by their columns' names.
fn read_rows<R: for<'r> FromRow<'r, AnyRow>>(rows: &[AnyRow]) -> Result<Vec<R>, sqlx::Error> {
    rows.iter().map(R::from_row).collect()
}

/// The file of an `sqlite://PATH[?query]` URL.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://")?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    /// The two dialects' migrations describe the same schema: they differ only in types and
    /// in how they read JSON.
    #[test]
    fn the_dialects_are_kept_in_step() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let normalise = |dialect: &str, file: &str| -> String {
            let text = std::fs::read_to_string(root.join(dialect).join(file)).unwrap();
            // PostgreSQL's storage hints (`SET STORAGE`) have no SQLite counterpart, and only
            // PostgreSQL drops the per-mail rows' foreign keys (0004: a query per row there).
            text.lines()
                .filter(|l| {
                    !l.starts_with("--")
                        && !l.contains(" SET STORAGE ")
                        && !l.contains(" DROP CONSTRAINT ")
                })
                .collect::<Vec<_>>()
                .join("\n")
                .replace(
                    "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                    "INTEGER PRIMARY KEY AUTOINCREMENT",
                )
                .replace("BIGINT", "INTEGER")
                .replace("BYTEA", "BLOB")
                // JSON in the text columns: the same reads, spelt each dialect's way.
                .replace(
                    "fields::json ->> 'service'",
                    "json_extract(fields, '$.service')",
                )
                .replace("json_array_elements_text(", "json_each(")
                .replace("::json) AS j(value)", ") AS j")
        };
        let files: Vec<_> = std::fs::read_dir(root.join("sqlite"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert!(!files.is_empty());
        for f in files {
            assert_eq!(normalise("sqlite", &f), normalise("postgres", &f), "{f}");
        }
    }

    /// Mails are stored packed; one stored before packing came in (in `raw`) still reads back.
    #[tokio::test(flavor = "current_thread")]
    async fn stored_mails_read_back_packed_and_as_stored_before_packing() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.sqlite").display());
        let store = super::Store::open(&url).await.unwrap();
        let raw = b"Subject: hello\r\n\r\nthe same line again and again\r\n".repeat(20);
        let mut tx = store.begin().await.unwrap();
        let new = |key, packed| super::NewInbound {
            dedupe_key: key,
            message_id: None,
            mailbox: None,
            sender: None,
            subject: None,
            raw: &raw,
            packed,
            received_at: jiff::Timestamp::UNIX_EPOCH,
        };
        let here = tx.insert_inbound(&new("a", None)).await.unwrap().unwrap();
        let packed = super::pack(&raw);
        let ahead = tx
            .insert_inbound(&new("b", Some(&packed)))
            .await
            .unwrap()
            .unwrap();
        tx.commit().await.unwrap();
        let legacy = sqlx::query_scalar::<sqlx::Any, i64>(
            "INSERT INTO inbound_messages (dedupe_key, status, raw, received_at) \
             VALUES ('c', 'failed', $1, 0) RETURNING id",
        )
        .bind(&raw[..])
        .fetch_one(store.pool())
        .await
        .unwrap();
        for id in [here, ahead, legacy] {
            let back = store.stored_mail(id).await.unwrap().unwrap();
            assert_eq!(back.raw, raw, "mail {id}");
        }
        // What is written is the packed form: both packed mails take less than one raw.
        let (bytes, legacy_rows): (i64, i64) =
            sqlx::query_as("SELECT SUM(length(raw_lz4)), COUNT(raw) FROM inbound_messages")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert!(bytes < raw.len() as i64, "{bytes}");
        assert_eq!(legacy_rows, 1);
        store.close().await;
    }
}
