//! A throw-away PostgreSQL database per test, on the server at `DESKMAIL_TEST_PG_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`, as `scripts/test-setup.sh` leaves it).
//! An unreachable server fails the test, unless `DESKMAIL_TEST_PG=skip` says to skip it.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn admin_url() -> String {
    std::env::var("DESKMAIL_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that is dropped when this value is.
pub struct PgDb {
    pub url: String,
    name: String,
}

impl PgDb {
    /// Creates a fresh, empty database; `None` when PostgreSQL tests are skipped.
    pub async fn create() -> Option<PgDb> {
        if std::env::var("DESKMAIL_TEST_PG").as_deref() == Ok("skip") {
            eprintln!("DESKMAIL_TEST_PG=skip: skipping the PostgreSQL part of this test");
            return None;
        }
        let admin = admin_url();
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {admin}: {e}\n\
                 run scripts/test-setup.sh (it installs and starts one), point DESKMAIL_TEST_PG_URL \
                 at a server, or set DESKMAIL_TEST_PG=skip"
            )
        });
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "deskmail_t_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.ok();
        let (base, _) = admin.rsplit_once('/').unwrap();
        Some(PgDb {
            url: format!("{base}/{name}"),
            name,
        })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime: use a small one of our own on a thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}
