//! Where the daemon is in each IMAP mailbox (a cursor: UIDVALIDITY and the last UID whose
//! outcome is on disk) and which mails are still to be moved out of its folder.

use jiff::Timestamp;

use super::deferred::{Table, Write};
use super::rows::ms;
use super::{Store, StoreError, Tx};

/// A mailbox's place in its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub uidvalidity: u32,
    pub last_uid: u32,
}

/// A mail to move out of the folder it was read in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub uid: u32,
    pub folder: String,
}

impl Tx {
    /// Notes, in the mail's own transaction, that the mail at `uid` goes to `folder` once the
    /// transaction is committed.
    pub async fn note_move(
        &mut self,
        mailbox: &str,
        uidvalidity: u32,
        uid: u32,
        folder: &str,
    ) -> Result<(), StoreError> {
        self.defer(Write::change(
            Table::MailboxMoves,
            "INSERT INTO mailbox_moves (mailbox, uidvalidity, uid, folder) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (mailbox, uidvalidity, uid) DO UPDATE SET folder = $4",
            vec![
                mailbox.into(),
                i64::from(uidvalidity).into(),
                i64::from(uid).into(),
                folder.into(),
            ],
        ));
        Ok(())
    }
}

impl Store {
    /// The mailbox's cursor, if it has one.
    pub async fn cursor(&self, mailbox: &str) -> Result<Option<Cursor>, StoreError> {
        let sql = "SELECT uidvalidity, last_uid FROM mailbox_cursors WHERE mailbox = $1";
        let row: Option<(i64, i64)> = self.fetch_optional(sql, |q| q.bind(mailbox)).await?;
        Ok(row.map(|(v, u)| Cursor {
            uidvalidity: u32::try_from(v).unwrap_or(0),
            last_uid: u32::try_from(u).unwrap_or(0),
        }))
    }

    /// Sets the mailbox's cursor: to `cursor` when its UIDVALIDITY is new, else never back.
    pub async fn set_cursor(
        &self,
        mailbox: &str,
        cursor: Cursor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO mailbox_cursors (mailbox, uidvalidity, last_uid, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (mailbox) DO UPDATE SET \
             last_uid = CASE WHEN mailbox_cursors.uidvalidity = $2 \
             AND mailbox_cursors.last_uid > $3 THEN mailbox_cursors.last_uid ELSE $3 END, \
             uidvalidity = $2, updated_at = $4";
        self.execute(sql, |q| {
            q.bind(mailbox)
                .bind(i64::from(cursor.uidvalidity))
                .bind(i64::from(cursor.last_uid))
                .bind(ms(now))
        })
        .await
        .map(drop)
    }

    /// Drops the moves noted under another UIDVALIDITY than the folder's: their UIDs name
    /// nothing any more.
    pub async fn drop_stale_moves(
        &self,
        mailbox: &str,
        uidvalidity: u32,
    ) -> Result<(), StoreError> {
        let sql = "DELETE FROM mailbox_moves WHERE mailbox = $1 AND uidvalidity <> $2";
        self.execute(sql, |q| q.bind(mailbox).bind(i64::from(uidvalidity)))
            .await
            .map(drop)
    }

    /// The moves still to be made in the mailbox's folder of this UIDVALIDITY, by UID.
    pub async fn pending_moves(
        &self,
        mailbox: &str,
        uidvalidity: u32,
    ) -> Result<Vec<Move>, StoreError> {
        let sql = "SELECT uid, folder FROM mailbox_moves WHERE mailbox = $1 AND uidvalidity = $2 \
             ORDER BY uid";
        let rows: Vec<(i64, String)> = self
            .fetch_all(sql, |q| q.bind(mailbox).bind(i64::from(uidvalidity)))
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(uid, folder)| {
                Some(Move {
                    uid: u32::try_from(uid).ok()?,
                    folder,
                })
            })
            .collect())
    }

    /// Forgets moves that were made.
    pub async fn moves_made(
        &self,
        mailbox: &str,
        uidvalidity: u32,
        uids: &[u32],
    ) -> Result<(), StoreError> {
        for chunk in uids.chunks(500) {
            let list = chunk
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let sql = format!(
                "DELETE FROM mailbox_moves WHERE mailbox = $1 AND uidvalidity = $2 AND uid IN ({list})"
            );
            self.execute(&sql, |q| q.bind(mailbox).bind(i64::from(uidvalidity)))
                .await?;
        }
        Ok(())
    }
}
