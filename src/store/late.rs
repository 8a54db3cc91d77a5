//! Notifications whose message is made while the transaction goes on.
//!
//! `ingest` renders notifications on a thread on another CPU (see desk's `late_render`). Their
//! outbox rows are written at once, as any others, so that the reads that follow (the ticket's
//! thread lookups, the loop breaker's counts, Message-ID matching) see them; their messages
//! (`outbox_bodies`, see `bodies`) are written just before `COMMIT`, once made. A message that
//! could not be made takes its row out again and leaves a line in the ticket's history, as a
//! notification that fails to render in place does. Nothing without its message is ever
//! committed: [`Tx::commit_unsynced`] waits for the messages first, and a transaction dropped
//! unfinished writes nothing.

use jiff::Timestamp;
use tokio::sync::oneshot;

use super::bodies::body_inserts;
use super::deferred::{Table, Write};
use super::pieces::Owner;
use super::{NewHistoryRow, NewOutboxRow, StoreError, Tx};

/// The message of an outbox row, still being made.
#[derive(Debug)]
pub struct LateMessage {
    pub message_id: String,
    /// The message packed with [`super::pack`], or why it could not be made.
    pub made: oneshot::Receiver<Result<Vec<u8>, String>>,
    /// The ticket, author, action and time of the history line written when it could not be
    /// made ...
    pub ticket_id: i64,
    pub actor: String,
    pub action: String,
    pub at: Timestamp,
    /// ... and the line's text, the desk's words (`not mailed to …`) that `: why` follows.
    pub not_mailed: String,
}

impl Tx {
    /// Writes notifications whose messages come later: `rows` at once, and the messages of
    /// those in `late` (found by Message-ID) before the commit; the others' messages at once.
    pub async fn insert_outbox_late(
        &mut self,
        rows: &[NewOutboxRow<'_>],
        late: Vec<LateMessage>,
    ) -> Result<(), StoreError> {
        let (later, now): (Vec<NewOutboxRow<'_>>, Vec<NewOutboxRow<'_>>) = rows
            .iter()
            .cloned()
            .partition(|r| late.iter().any(|m| m.message_id == r.message_id));
        self.insert_outbox(&now).await?;
        self.insert_outbox_rows(&later).await?;
        self.memory().late.extend(late);
        Ok(())
    }

    /// Waits for the messages still being made and writes them (see the module's comment).
    pub(crate) async fn fill_late(&mut self) -> Result<(), StoreError> {
        let late = std::mem::take(&mut self.memory().late);
        if late.is_empty() {
            return Ok(());
        }
        let mut made: Vec<(String, Vec<u8>)> = Vec::with_capacity(late.len());
        for mut m in late {
            let problem = match (&mut m.made).await {
                Ok(Ok(packed)) if packed.len() <= super::PIECE => {
                    made.push((m.message_id, packed));
                    continue;
                }
                // Longer than a piece: its first piece in `outbox_bodies`, the rest in
                // `pieces`, as `insert_outbox` stores it.
                Ok(Ok(packed)) => match super::unpack(&packed) {
                    Ok(raw) => {
                        self.insert_pieces(Owner::Outbox(&m.message_id), &raw)
                            .await?;
                        made.push((m.message_id, super::pack(super::pieces::first(&raw))));
                        continue;
                    }
                    Err(e) => format!("its packed message is damaged: {e}"),
                },
                Ok(Err(problem)) => problem,
                Err(_) => "the rendering thread stopped".to_string(),
            };
            self.defer(Write::change(
                Table::Outbox,
                "DELETE FROM outbox WHERE message_id = $1",
                vec![m.message_id.clone().into()],
            ));
            self.not_mailed(m, &problem);
        }
        for w in body_inserts(made) {
            self.defer(w);
        }
        Ok(())
    }
}

impl Tx {
    /// A notification whose message could not be made: logged, and the line the desk gave for
    /// it in its ticket's history (at the commit, when nothing reads any more).
    fn not_mailed(&mut self, m: LateMessage, problem: &str) {
        let detail = format!("{}: {problem}", m.not_mailed);
        tracing::warn!(error = %problem, "notification not written: {detail}");
        self.defer(super::tickets::history_insert(&NewHistoryRow {
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
            actor: "a".into(),
            action: "comment".into(),
            at: Timestamp::UNIX_EPOCH,
            not_mailed: "not mailed to team@helpdesk.example".into(),
        };
        (m, send)
    }

    /// A late message's row is seen by the reads at once; the message is written at the
    /// commit, in chunks, and read back whole.
    #[tokio::test(flavor = "current_thread")]
    async fn late_rows_are_seen_at_once_and_their_messages_written_at_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.sqlite").display());
        let store = Store::open(&url).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let (one, send_one) = late("<one@x>");
        let (two, send_two) = late("<two@x>");
        tx.insert_outbox_late(&[row("<one@x>"), row("<two@x>")], vec![one, two])
            .await
            .unwrap();
        let outside = vec!["team@helpdesk.example".to_string()];
        let state = tx
            .outbox_state(1, &[], &outside, false, Timestamp::UNIX_EPOCH)
            .await
            .unwrap();
        assert_eq!(state.per_hour.get("team@helpdesk.example"), Some(&2));
        assert_eq!(tx.memory().late.len(), 2);
        let long: Vec<u8> = (0..5000u32).flat_map(|i| i.to_le_bytes()).collect();
        send_one.send(Ok(crate::store::pack(b"one"))).unwrap();
        send_two.send(Ok(crate::store::pack(&long))).unwrap();
        tx.commit().await.unwrap();
        let now = Timestamp::now();
        let claimed = store
            .claim_due(now, now + jiff::SignedDuration::from_mins(5), 10, None)
            .await
            .unwrap();
        let messages: Vec<(String, Vec<u8>)> =
            claimed.into_iter().map(|c| (c.message_id, c.raw)).collect();
        assert_eq!(
            messages,
            vec![
                ("<one@x>".to_string(), b"one".to_vec()),
                ("<two@x>".to_string(), long)
            ]
        );
        let chunks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox_bodies")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert!(chunks > 2, "{chunks}");
        store.close().await;
    }

    /// A notification whose message could not be made is never sent: its row, which the
    /// transaction's reads counted, is taken out at the commit, with a line in its history.
    #[tokio::test(flavor = "current_thread")]
    async fn a_notification_that_could_not_be_made_is_taken_out_with_a_line_in_history() {
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
