//! Large values in pieces. A stored mail, an attachment or a notification's message can be tens
//! of MiB, and every layer between deskmail and the database copies a bound value: sqlx's `Any`
//! arguments, their conversion for the driver, SQLite's own copy of the value and the record it
//! builds. One statement carrying a 20 MiB mail held 100 MiB. So a value longer than [`PIECE`]
//! bytes keeps its first piece in its own row and the rest in rows of `pieces`, each packed on
//! its own and written by a statement of its own: memory holds one piece at a time.
//!
//! A value's first piece being exactly [`PIECE`] bytes long is what says that more may follow.

use super::tx::Reads;
use super::{Store, StoreError, Tx};

/// The most bytes of a value one statement carries.
pub const PIECE: usize = 1 << 20;

/// Whose pieces: the row a value's first piece is in.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    /// A stored mail's bytes, by its id.
    Inbound(i64),
    /// An attachment's content, by its id.
    Attachment(i64),
    /// A notification's message, by its Message-ID.
    Outbox(&'a str),
}

impl Owner<'_> {
    pub(super) fn key(self) -> String {
        match self {
            Owner::Inbound(id) => format!("inbound:{id}"),
            Owner::Attachment(id) => format!("attachment:{id}"),
            Owner::Outbox(message_id) => format!("outbox:{message_id}"),
        }
    }
}

/// The first piece of a value: the part its own row keeps.
pub fn first(value: &[u8]) -> &[u8] {
    &value[..value.len().min(PIECE)]
}

/// Whether a value read back from its row may go on in `pieces`.
pub fn may_go_on(first: &[u8]) -> bool {
    first.len() == PIECE
}

impl Tx {
    /// Writes what follows a value's first piece (`value[PIECE..]`), a piece per statement.
    /// Nothing in the transaction reads `pieces`: the writes kept back go along or wait.
    pub async fn insert_pieces(
        &mut self,
        owner: Owner<'_>,
        value: &[u8],
    ) -> Result<(), StoreError> {
        if value.len() <= PIECE {
            return Ok(());
        }
        let key = owner.key();
        for (seq, piece) in value.chunks(PIECE).enumerate().skip(1) {
            let packed = super::pack(piece);
            let sql = "INSERT INTO pieces (owner, seq, data) VALUES ($1, $2, $3)";
            self.rows(Reads::Only(&[]), sql, |q| {
                q.bind(&key).bind(seq as i64).bind(&packed[..])
            })
            .await?;
        }
        Ok(())
    }
}

impl Store {
    /// Appends what follows a value's first piece, if anything does.
    pub(crate) async fn append_pieces(
        &self,
        owner: Owner<'_>,
        value: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        if !may_go_on(value) {
            return Ok(());
        }
        let key = owner.key();
        let sql = "SELECT data FROM pieces WHERE owner = $1 ORDER BY seq";
        let packed: Vec<(Vec<u8>,)> = self.fetch_all(sql, |q| q.bind(&key)).await?;
        value.reserve_exact(packed.len() * PIECE);
        for (p,) in packed {
            let piece = super::unpack(&p)
                .map_err(|e| StoreError::Corrupt(format!("a piece of {key}: {e}")))?;
            value.extend_from_slice(&piece);
        }
        Ok(())
    }
}
