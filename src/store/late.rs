//! Notifications whose message is made while the transaction goes on.
//!
//! `ingest` renders notifications on a thread on another CPU (see desk's `late_render`). Their
//! outbox rows are held back until their messages are made, and then written with them, riding
//! along with the next statement. A read that must see a held row (the ticket's thread
//! lookups, the loop breaker's counts, Message-ID matching) has it written first: with its
//! message when that is made, otherwise with an empty one that is filled in just before
//! `COMMIT`, in one statement (one more version of the row: what holding rows back saves). A
//! message that could not be made leaves no row, or takes its row out again, and leaves a line
//! in the ticket's history, as a notification that fails to render in place does. Nothing
//! with an empty message is ever committed: [`Tx::commit_unsynced`] waits for the messages
//! first, and a transaction dropped unfinished writes nothing.

use jiff::Timestamp;
use tokio::sync::oneshot;

use super::deferred::{Val, value_rows};
use super::outbox::{MESSAGE, outbox_insert, outbox_values};
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

/// Which held rows [`Tx::release_held`] writes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Release {
    /// All of them (a read may look at any of them).
    All,
    /// Those whose messages are made.
    Made,
    /// Those of this ticket (a read looks at its notifications only).
    Ticket(i64),
}

/// An outbox row held back until its message is made.
#[derive(Debug)]
pub(crate) struct Held {
    /// The row's values ([`outbox_values`]), the message still empty.
    values: Vec<Val>,
    ticket_id: Option<i64>,
    late: LateMessage,
}

impl Tx {
    /// Writes notifications whose messages come later: `rows` once their messages (`late`,
    /// found by Message-ID) are made or a read needs them (see the module's comment).
    pub async fn insert_outbox_late(
        &mut self,
        rows: &[NewOutboxRow<'_>],
        late: Vec<LateMessage>,
    ) -> Result<(), StoreError> {
        let mut late: Vec<Option<LateMessage>> = late.into_iter().map(Some).collect();
        let mut now = Vec::new();
        for r in rows {
            let found = late
                .iter_mut()
                .find(|m| m.as_ref().is_some_and(|m| m.message_id == r.message_id))
                .and_then(Option::take);
            match found {
                Some(m) => {
                    self.seen_outbox.queued(std::slice::from_ref(r));
                    self.held.push(Held {
                        values: outbox_values(r, super::pack(&[])),
                        ticket_id: r.ticket_id,
                        late: m,
                    });
                }
                None => now.push(r.clone()),
            }
        }
        self.insert_outbox(&now).await?;
        // A message without its row (none should be) is filled in if a row turns up.
        self.late.extend(late.into_iter().flatten());
        Ok(())
    }

    /// Writes held rows (see [`Release`]): with their messages where they are made, otherwise
    /// empty, filled in before the commit. Leaves the ticket read ahead alone: no held row
    /// changes a ticket.
    pub(crate) fn release_held(&mut self, which: Release) {
        if self.held.is_empty() {
            return;
        }
        let mut rows: Vec<Vec<Val>> = Vec::new();
        let mut failed: Vec<(LateMessage, String)> = Vec::new();
        for mut h in std::mem::take(&mut self.held) {
            let needed = match which {
                Release::All => true,
                Release::Made => false,
                Release::Ticket(t) => h.ticket_id == Some(t),
            };
            if !needed && matches!(which, Release::Ticket(_)) {
                self.held.push(h);
                continue;
            }
            match h.late.made.try_recv() {
                Ok(Ok(packed)) => {
                    h.values[MESSAGE] = packed.into();
                    rows.push(h.values);
                }
                Ok(Err(problem)) => failed.push((h.late, problem)),
                Err(oneshot::error::TryRecvError::Closed) => {
                    failed.push((h.late, "the rendering thread stopped".into()))
                }
                Err(oneshot::error::TryRecvError::Empty) if needed => {
                    rows.push(h.values);
                    self.late.push(h.late);
                }
                Err(oneshot::error::TryRecvError::Empty) => self.held.push(h),
            }
        }
        if !rows.is_empty() {
            self.pending.push(outbox_insert(rows));
        }
        for (m, problem) in failed {
            self.not_mailed(&m, &problem);
        }
    }

    /// Waits for the messages of the held rows and writes the rows with them.
    async fn write_held(&mut self) {
        let mut rows: Vec<Vec<Val>> = Vec::new();
        for mut h in std::mem::take(&mut self.held) {
            match (&mut h.late.made).await {
                Ok(Ok(packed)) => {
                    h.values[MESSAGE] = packed.into();
                    rows.push(h.values);
                }
                Ok(Err(problem)) => self.not_mailed(&h.late, &problem),
                Err(_) => self.not_mailed(&h.late, "the rendering thread stopped"),
            }
        }
        if !rows.is_empty() {
            self.pending.push(outbox_insert(rows));
        }
    }

    /// Waits for the messages still being made and writes them (see the module's comment).
    pub(crate) async fn fill_late(&mut self) -> Result<(), StoreError> {
        self.write_held().await;
        if self.late.is_empty() {
            return Ok(());
        }
        let late = std::mem::take(&mut self.late);
        let mut made: Vec<(String, Vec<u8>)> = Vec::with_capacity(late.len());
        for mut m in late {
            let problem = match (&mut m.made).await {
                Ok(Ok(packed)) => {
                    made.push((m.message_id, packed));
                    continue;
                }
                Ok(Err(problem)) => problem,
                Err(_) => "the rendering thread stopped".to_string(),
            };
            self.defer(
                "DELETE FROM outbox WHERE message_id = $1".to_string(),
                vec![m.message_id.clone().into()],
            )
            .await?;
            self.not_mailed(&m, &problem);
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

impl Tx {
    /// A notification whose message could not be made: logged, a line in its ticket's history,
    /// and forgotten by the reads this transaction keeps (see `seen_outbox`), which counted it.
    fn not_mailed(&mut self, m: &LateMessage, problem: &str) {
        tracing::warn!(to = %m.recipient, error = %problem, "notification not written");
        self.seen_outbox.forget();
        let detail = format!("not mailed to {}: {problem}", m.recipient);
        self.pending
            .push(super::tickets::history_insert(&NewHistoryRow {
                ticket_id: m.ticket_id,
                actor: &m.actor,
                action: &m.action,
                kind: "notice",
                detail: &detail,
                inbound_id: None,
                at: m.at,
            }));
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use tokio::sync::oneshot;

    use super::LateMessage;
    use crate::store::{NewOutboxRow, Store};

    fn row<'a>(message_id: &'a str) -> NewOutboxRow<'a> {
        NewOutboxRow {
            ticket_id: None,
            event: "commented",
            recipient: "team@helpdesk.example",
            envelope_from: "support@helpdesk.example",
            message_id,
            subject: "s",
            raw: b"",
            at: Timestamp::UNIX_EPOCH,
            unverified: false,
        }
    }

    fn late(message_id: &str) -> (LateMessage, oneshot::Sender<Result<Vec<u8>, String>>) {
        let (send, made) = oneshot::channel();
        let m = LateMessage {
            message_id: message_id.into(),
            made,
            ticket_id: 1,
            recipient: "team@helpdesk.example".into(),
            actor: "a".into(),
            action: "comment".into(),
            at: Timestamp::UNIX_EPOCH,
        };
        (m, send)
    }

    /// A held row is written when a read needs it (then empty, filled in before the commit),
    /// stays held for a read that does not, and is written whole at the commit.
    #[tokio::test(flavor = "current_thread")]
    async fn held_rows_are_written_for_the_reads_that_need_them_and_whole_at_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.sqlite").display());
        let store = Store::open(&url).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let (one, send_one) = late("<one@x>");
        tx.insert_outbox_late(&[row("<one@x>")], vec![one])
            .await
            .unwrap();
        assert_eq!(tx.held.len(), 1);
        // Counting the recipient's mails on all tickets needs it: written, still empty.
        let outside = vec!["team@helpdesk.example".to_string()];
        let state = tx
            .outbox_state(1, &[], &outside, false, Timestamp::UNIX_EPOCH)
            .await
            .unwrap();
        assert_eq!(state.per_hour.get("team@helpdesk.example"), Some(&1));
        assert!(tx.held.is_empty());
        assert_eq!(tx.late.len(), 1);
        // A look at ticket 1's notifications does not need this one (no ticket): held.
        let (two, send_two) = late("<two@x>");
        tx.insert_outbox_late(&[row("<two@x>")], vec![two])
            .await
            .unwrap();
        tx.outbox_state(1, &[], &[], true, Timestamp::UNIX_EPOCH)
            .await
            .unwrap();
        assert_eq!(tx.held.len(), 1);
        send_one.send(Ok(crate::store::pack(b"one"))).unwrap();
        send_two.send(Ok(crate::store::pack(b"two"))).unwrap();
        tx.commit().await.unwrap();
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT message_id, message_lz4 FROM outbox ORDER BY message_id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        let rows: Vec<(String, Vec<u8>)> = rows
            .into_iter()
            .map(|(id, m)| (id, crate::store::unpack(&m).unwrap()))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("<one@x>".to_string(), b"one".to_vec()),
                ("<two@x>".to_string(), b"two".to_vec())
            ]
        );
        store.close().await;
    }

    /// A notification whose message could not be made is never sent: the transaction's kept
    /// read of its ticket's notifications (`seen_outbox`), which counted it, forgets it.
    #[tokio::test(flavor = "current_thread")]
    async fn a_notification_that_could_not_be_made_leaves_the_kept_reads() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.sqlite").display());
        let store = Store::open(&url).await.unwrap();
        sqlx::query(
            "INSERT INTO tickets (id, ref, workflow, status, status_since, subject, requester, \
             waiting_on, source, created_at, updated_at) \
             VALUES (1, 'SUP-1', 'w', 'New', 0, 's', 'anna@acme.example', 'support', 'mail', 0, 0)",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let team = vec!["team@helpdesk.example".to_string()];
        let since = Timestamp::UNIX_EPOCH;
        let mut tx = store.begin().await.unwrap();
        let first = tx.outbox_state(1, &team, &[], true, since).await.unwrap();
        assert!(first.earlier.is_empty(), "{first:?}");
        let (bad, send_bad) = late("<bad@x>");
        let queued = NewOutboxRow {
            ticket_id: Some(1),
            ..row("<bad@x>")
        };
        tx.insert_outbox_late(&[queued], vec![bad]).await.unwrap();
        let counted = tx.outbox_state(1, &team, &[], true, since).await.unwrap();
        assert_eq!(counted.earlier[&team[0]], ["<bad@x>"]);
        assert_eq!(counted.per_thread[&team[0]], 1);
        send_bad.send(Err("the template failed".into())).unwrap();
        tx.release_held(super::Release::Made);
        let after = tx.outbox_state(1, &team, &[], true, since).await.unwrap();
        assert!(after.earlier.is_empty(), "{after:?}");
        assert!(after.per_thread.is_empty(), "{after:?}");
        tx.commit().await.unwrap();
        let (outbox, notices): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM outbox), (SELECT COUNT(*) FROM history \
             WHERE detail = 'not mailed to team@helpdesk.example: the template failed')",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!((outbox, notices), (0, 1));
        store.close().await;
    }
}
