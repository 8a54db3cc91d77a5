//! Stores on both dialects: a temporary SQLite file's URL, a body run on SQLite and on a
//! throw-away PostgreSQL database, and [`on_each_dialect!`](crate::on_each_dialect), which makes
//! the two tests of each body.

use std::future::Future;
use std::path::Path;

/// The URL of the SQLite database `file` in `dir` (created on first use).
pub fn sqlite_url(dir: &Path, file: &str) -> String {
    format!("sqlite://{}", dir.join(file).display())
}

/// Runs `body` with the URL of a fresh SQLite database in a temporary directory, removed after.
pub async fn on_sqlite<F: Future<Output = ()>>(body: impl FnOnce(String) -> F) {
    let dir = tempfile::tempdir().unwrap();
    body(sqlite_url(dir.path(), "deskmail.sqlite")).await;
}

/// Runs `body` with the URL of a throw-away PostgreSQL database (see `pg.rs`), dropped after;
/// does nothing when `DESKMAIL_TEST_PG=skip`.
pub async fn on_postgres<F: Future<Output = ()>>(body: impl FnOnce(String) -> F) {
    let Some(db) = super::pg::PgDb::create().await else {
        return;
    };
    body(db.url.clone()).await;
}

/// One test per dialect for each body: `name::on_sqlite` and `name::on_postgres` run
/// `body(url)` (an async function of the store's URL) on a fresh SQLite file and on a
/// throw-away PostgreSQL database.
#[macro_export]
macro_rules! on_each_dialect {
    ($($name:ident => $body:expr;)+) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[tokio::test(flavor = "current_thread")]
                async fn on_sqlite() {
                    $crate::support::dialects::on_sqlite(|url| async move { ($body)(&url).await }).await;
                }

                #[tokio::test(flavor = "current_thread")]
                async fn on_postgres() {
                    $crate::support::dialects::on_postgres(|url| async move { ($body)(&url).await }).await;
                }
            }
        )+
    };
}
