//! Leases: which daemon does a piece of work (a mailbox, the time rules) when several share
//! one database. Expiry is by the database's clock, so the daemons' clocks need not agree.

use super::{Dialect, Store, StoreError, Tx};

/// A lease held: its name, this daemon's name for itself, and the epoch it was taken at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub name: String,
    pub holder: String,
    pub epoch: i64,
}

/// The database's clock in milliseconds since 1970.
pub(super) fn now_ms(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
        Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    }
}

impl Store {
    /// Takes the lease, or renews it, for `secs` seconds: when it is free, expired, or already
    /// this holder's. The epoch rises when it passes from one holder to another. `None` when
    /// another holder has it.
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        secs: u64,
    ) -> Result<Option<Fence>, StoreError> {
        let now = now_ms(self.dialect());
        let sql = format!(
            "INSERT INTO leases (name, holder, epoch, expires_at) VALUES ($1, $2, 1, {now} + $3) \
             ON CONFLICT (name) DO UPDATE SET \
             epoch = CASE WHEN leases.holder = $2 THEN leases.epoch ELSE leases.epoch + 1 END, \
             holder = $2, expires_at = {now} + $3 \
             WHERE leases.holder = $2 OR leases.expires_at < {now} \
             RETURNING epoch"
        );
        let ms = i64::try_from(secs * 1000).unwrap_or(i64::MAX / 2);
        let epoch: Option<(i64,)> = self
            .fetch_optional(&sql, |q| q.bind(name).bind(holder).bind(ms))
            .await?;
        Ok(epoch.map(|(epoch,)| Fence {
            name: name.to_string(),
            holder: holder.to_string(),
            epoch,
        }))
    }

    /// Renews a lease held: false when it was lost (taken over, or expired and taken).
    pub async fn renew_lease(&self, fence: &Fence, secs: u64) -> Result<bool, StoreError> {
        let now = now_ms(self.dialect());
        let sql = format!(
            "UPDATE leases SET expires_at = {now} + $4 \
             WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at >= {now}"
        );
        let ms = i64::try_from(secs * 1000).unwrap_or(i64::MAX / 2);
        let done = self
            .execute(&sql, |q| {
                q.bind(&fence.name)
                    .bind(&fence.holder)
                    .bind(fence.epoch)
                    .bind(ms)
            })
            .await?;
        Ok(done == 1)
    }

    /// Gives a lease up, so that another daemon may take it at once.
    pub async fn release_lease(&self, fence: &Fence) -> Result<(), StoreError> {
        let sql = "UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2 AND epoch = $3";
        self.execute(sql, |q| {
            q.bind(&fence.name).bind(&fence.holder).bind(fence.epoch)
        })
        .await
        .map(drop)
    }
}

impl Tx {
    /// Whether the lease is still held, in this transaction: on PostgreSQL the row is locked
    /// until the commit, so that a takeover waits for it. A transaction that writes a mail
    /// read under a lease commits only when this holds.
    pub async fn holds(&mut self, fence: &Fence) -> Result<bool, StoreError> {
        let now = now_ms(self.dialect());
        let lock = match self.dialect() {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR SHARE",
        };
        let sql = format!(
            "SELECT epoch FROM leases WHERE name = $1 AND holder = $2 AND epoch = $3 \
             AND expires_at >= {now}{lock}"
        );
        let found: Option<(i64,)> = self
            .fetch_optional(super::tx::Reads::All, &sql, |q| {
                q.bind(&fence.name).bind(&fence.holder).bind(fence.epoch)
            })
            .await?;
        Ok(found.is_some())
    }
}
