//! Notifications whose message is made while the transaction goes on.
//!
//! `ingest` renders notifications on a thread on another CPU (see desk's `late_render`). Their
//! outbox rows are written at once, with an empty message, so that everything later in the
//! transaction sees them (the thread lookups, the loop breaker's counts, Message-ID matching);
//! the messages are filled in just before `COMMIT`, in one statement. A message that could not
//! be made takes its row out again and leaves a line in the ticket's history, as a
//! notification that fails to render in place does. Nothing with an empty message is ever
//! committed: [`Tx::commit_unsynced`] fills them in first, and a transaction dropped unfinished
//! writes nothing.

use jiff::Timestamp;
use tokio::sync::oneshot;

use super::deferred::{Val, value_rows};
use super::{NewHistoryRow, NewOutboxRow, StoreError, Tx};

/// Messages filled in per statement, at most.
const PER_STATEMENT: usize = 500;

/// The message of an outbox row, still being made.
#[derive(Debug)]
pub struct LateMessage {
    pub message_id: String,
    /// The message packed with [`super::pack`], or why it could not be made.
    pub made: oneshot::Receiver<Result<Vec<u8>, String>>,
    /// For the history line when it could not be made.
    pub ticket_id: i64,
    pub recipient: String,
    pub actor: String,
    pub action: String,
    pub at: Timestamp,
}

impl Tx {
    /// Writes notifications whose messages come later: `rows` now, with empty messages, and
    /// the messages of `late` (found by Message-ID) before the commit.
    pub async fn insert_outbox_late(
        &mut self,
        rows: &[NewOutboxRow<'_>],
        late: Vec<LateMessage>,
    ) -> Result<(), StoreError> {
        self.insert_outbox(rows).await?;
        self.late.extend(late);
        Ok(())
    }

    /// Waits for the messages still being made and writes them (see the module's comment).
    pub(crate) async fn fill_late(&mut self) -> Result<(), StoreError> {
        if self.late.is_empty() {
            return Ok(());
        }
        let late = std::mem::take(&mut self.late);
        let mut made: Vec<(String, Vec<u8>)> = Vec::with_capacity(late.len());
        for m in late {
            let problem = match m.made.await {
                Ok(Ok(packed)) => {
                    made.push((m.message_id, packed));
                    continue;
                }
                Ok(Err(problem)) => problem,
                Err(_) => "the rendering thread stopped".to_string(),
            };
            tracing::warn!(to = %m.recipient, error = %problem, "notification not written");
            self.defer(
                "DELETE FROM outbox WHERE message_id = $1".to_string(),
                vec![m.message_id.into()],
            )
            .await?;
            let detail = format!("not mailed to {}: {problem}", m.recipient);
            self.insert_history(&NewHistoryRow {
                ticket_id: m.ticket_id,
                actor: &m.actor,
                action: &m.action,
                kind: "notice",
                detail: &detail,
                inbound_id: None,
                at: m.at,
            })
            .await?;
        }
        let mut made = made.into_iter().peekable();
        while made.peek().is_some() {
            let chunk: Vec<(String, Vec<u8>)> = made.by_ref().take(PER_STATEMENT).collect();
            let sql = format!(
                // VALUES names its columns column1, column2 in both dialects.
                "UPDATE outbox SET message_lz4 = m.column2 FROM (VALUES {}) AS m \
                 WHERE outbox.message_id = m.column1",
                value_rows("($1, $2)", 2, chunk.len())
            );
            let mut vals: Vec<Val> = Vec::with_capacity(chunk.len() * 2);
            for (id, packed) in chunk {
                vals.push(id.into());
                vals.push(packed.into());
            }
            self.defer(sql, vals).await?;
        }
        Ok(())
    }
}
