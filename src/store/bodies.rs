//! Notifications' messages, kept apart from their outbox rows (migration 0011). A message is
//! packed ([`super::pack`]) and cut into chunks of [`CHUNK`] bytes, a row of `outbox_bodies`
//! each, whose id is the notification's id times [`SLOTS`] plus the chunk's number from 0.
//!
//! Why chunks: a packed notification is some 4.5 KB, so in its own row it filled an 8 KiB page
//! alone, and once its body was dropped the page stayed nearly empty (SQLite does not merge the
//! pages of rows that shrink). Chunks are appended in id order and fill their pages, with no
//! index beside the table; a message's chunks are one range of ids; a dropped body's chunks
//! are deleted, which frees their pages for the next messages.
//!
//! A message longer than a piece ([`super::PIECE`]) keeps its first piece here and the rest in
//! `pieces`, as other large values do.

use std::collections::HashMap;

use super::deferred::{Table, Val, Write, bind_query, value_rows};
use super::{Store, StoreError};

/// Bytes of a packed message per row: eight rows fill an 8 KiB page.
pub(super) const CHUNK: usize = 1000;

/// Ids per notification: room for the chunks of a packed piece (LZ4 makes at most 1.1 times
/// the bytes, plus 20).
pub(super) const SLOTS: i64 = 2048;

/// The longest packed message `outbox_bodies` takes: a longer one keeps its first piece here
/// and the rest in `pieces` (see [`super::Tx::insert_outbox`]).
pub(super) const MOST: usize = SLOTS as usize * CHUNK;

const _: () = assert!(super::PIECE * 11 / 10 + 24 <= MOST);

/// Chunks per statement at most (three values each), besides a piece's bytes.
const PER_STATEMENT: usize = 5000;

/// Notifications per statement that reads or deletes chunks: SQLite takes no more than 1,000
/// terms of one `OR`.
const IDS_PER_STATEMENT: usize = 500;

/// The statements writing packed messages (each at most [`MOST`] bytes), each to the outbox
/// row of its Message-ID (written before them), no statement carrying more than a piece's
/// bytes.
pub(super) fn body_inserts(messages: Vec<(String, Vec<u8>)>) -> Vec<Write> {
    let mut statements = Vec::new();
    let mut rows: Vec<Val> = Vec::new();
    let mut bytes = 0;
    for (message_id, packed) in messages {
        debug_assert!(packed.len() <= MOST, "{message_id}: {} bytes", packed.len());
        for (seq, chunk) in packed.chunks(CHUNK).enumerate() {
            if bytes + chunk.len() > super::PIECE || rows.len() == PER_STATEMENT * 3 {
                statements.push(body_insert(std::mem::take(&mut rows)));
                bytes = 0;
            }
            bytes += chunk.len();
            rows.push(message_id.as_str().into());
            rows.push((seq as i64).into());
            rows.push(chunk.to_vec().into());
        }
    }
    if !rows.is_empty() {
        statements.push(body_insert(rows));
    }
    statements
}

/// One statement writing chunks, from their values (Message-ID, number, bytes) in threes.
fn body_insert(rows: Vec<Val>) -> Write {
    let sql = format!(
        // VALUES names its columns column1, column2, ... in both dialects.
        "INSERT INTO outbox_bodies (id, data) SELECT o.id * {SLOTS} + m.column2, m.column3 \
         FROM (VALUES {}) AS m JOIN outbox o ON o.message_id = m.column1",
        value_rows("($1, $2, $3)", 3, rows.len() / 3)
    );
    Write::insert_select(Table::OutboxBodies, &[Table::Outbox], sql, rows)
}

/// `WHERE` the chunks of the notifications `ids` (their ranges of ids), and its values.
fn chunks_of(ids: &[i64]) -> (String, Vec<Val>) {
    let ranges: Vec<String> = (0..ids.len())
        .map(|i| format!("id BETWEEN ${} AND ${}", 2 * i + 1, 2 * i + 2))
        .collect();
    let vals = ids
        .iter()
        .flat_map(|&id| [Val::from(id * SLOTS), Val::from(id * SLOTS + SLOTS - 1)])
        .collect();
    (format!("WHERE {}", ranges.join(" OR ")), vals)
}

/// The statements deleting the bodies of the notifications `ids`.
pub(super) fn body_deletes(ids: &[i64]) -> Vec<Write> {
    ids.chunks(IDS_PER_STATEMENT)
        .map(|ids| {
            let (filter, vals) = chunks_of(ids);
            let sql = format!("DELETE FROM outbox_bodies {filter}");
            Write::change(Table::OutboxBodies, sql, vals)
        })
        .collect()
}

impl Store {
    /// The packed messages of the notifications `ids`, by id; one without a body is missing.
    pub(super) async fn packed_bodies(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, Vec<u8>>, StoreError> {
        let mut bodies: HashMap<i64, Vec<u8>> = HashMap::with_capacity(ids.len());
        for ids in ids.chunks(IDS_PER_STATEMENT) {
            let (filter, vals) = chunks_of(ids);
            // Put in order here: an ORDER BY would have SQLite sort the chunks, bytes and all.
            let sql = format!("SELECT id, data FROM outbox_bodies {filter}");
            let mut chunks: Vec<(i64, Vec<u8>)> =
                self.fetch_all(&sql, |q| bind_query(q, vals)).await?;
            chunks.sort_unstable_by_key(|(id, _)| *id);
            for (id, data) in chunks {
                bodies
                    .entry(id / SLOTS)
                    .or_default()
                    .extend_from_slice(&data);
            }
        }
        Ok(bodies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store made before migration 0011 keeps its messages: each moves whole as one chunk,
    /// and a dropped body stays dropped.
    #[tokio::test(flavor = "current_thread")]
    async fn messages_kept_in_their_rows_move_to_outbox_bodies() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.sqlite").display());
        let store = Store::connect_with(&url, std::time::Duration::from_secs(5), 4)
            .await
            .unwrap();
        super::super::SQLITE_MIGRATIONS
            .run_to(10, store.pool())
            .await
            .unwrap();
        let insert = "INSERT INTO outbox (event, recipient, envelope_from, message_id, subject, \
             message_lz4, status, next_attempt_at, created_at, sent_at) \
             VALUES ('commented', 'a@x', 'h@x', $1, 's', $2, $3, 0, 0, 0)";
        for (id, message, status) in [
            ("<queued@x>", super::super::pack(b"still to send"), "queued"),
            ("<sent@x>", Vec::new(), "sent"),
        ] {
            sqlx::query::<sqlx::Any>(insert)
                .bind(id)
                .bind(message)
                .bind(status)
                .execute(store.pool())
                .await
                .unwrap();
        }
        store.migrate().await.unwrap();
        let chunks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox_bodies")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(chunks, 1, "the dropped body moved nothing");
        let kept: Vec<(String, i64)> =
            sqlx::query_as("SELECT message_id, body_kept FROM outbox ORDER BY id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(
            kept,
            [("<queued@x>".to_string(), 1), ("<sent@x>".to_string(), 0)]
        );
        let now = jiff::Timestamp::now();
        let claimed = store.claim_due(now, now, 10, None).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].raw, b"still to send");
        store.close().await;
    }

    #[test]
    fn a_message_is_cut_in_chunks_and_no_statement_carries_more_than_a_piece() {
        let small = vec![7u8; CHUNK * 2 + 1];
        let big = vec![9u8; super::super::PIECE + CHUNK];
        let statements = body_inserts(vec![
            ("<a@x>".to_string(), small),
            ("<b@x>".to_string(), big),
        ]);
        assert_eq!(statements.len(), 2);
        let blobs = |vals: &[Val]| -> Vec<usize> {
            vals.iter()
                .filter_map(|v| match v {
                    Val::Blob(b) => Some(b.len()),
                    _ => None,
                })
                .collect()
        };
        let first = blobs(&statements[0].vals);
        let second = blobs(&statements[1].vals);
        assert_eq!(&first[..3], &[CHUNK, CHUNK, 1]);
        assert!(first.iter().sum::<usize>() <= super::super::PIECE);
        assert_eq!(
            first.iter().sum::<usize>() + second.iter().sum::<usize>(),
            CHUNK * 3 + 1 + super::super::PIECE
        );
        // Each message's chunks are numbered from 0 on, across statements.
        let numbers = |vals: &[Val]| -> Vec<(String, i64)> {
            vals.chunks(3)
                .map(|row| match (&row[0], &row[1]) {
                    (Val::Text(Some(m)), Val::Int(Some(n))) => (m.clone(), *n),
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        let all: Vec<(String, i64)> = statements.iter().flat_map(|w| numbers(&w.vals)).collect();
        for m in ["<a@x>", "<b@x>"] {
            let seqs: Vec<i64> = all.iter().filter(|(id, _)| id == m).map(|r| r.1).collect();
            assert_eq!(seqs, (0..seqs.len() as i64).collect::<Vec<_>>(), "{m}");
        }
        // On PostgreSQL a chunk insert, which reads `outbox`, is never a part of the
        // statement that writes the rows it reads.
        let rows = Write::insert(Table::Outbox, "INSERT INTO outbox ...", Vec::new());
        assert!(!super::super::deferred::one_statement([
            rows.touch,
            statements[0].touch
        ]));
    }
}
