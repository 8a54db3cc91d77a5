//! Tickets, their comments and history, the ticket-number counters.

use std::collections::BTreeSet;

use jiff::Timestamp;
use sqlx::Any;

use super::deferred::{Table, Val, Write, bind_query, places, value_rows};
use super::rows::{CommentRow, HistoryRow, TICKET_COLUMNS, TicketRecord, TicketRow, ms, to_json};
use super::tx::Reads;
use super::{Store, StoreError, Tx};
use crate::workflow::Ticket;
use crate::workflow::rules::Due;

/// A comment to insert.
#[derive(Debug, Clone)]
pub struct NewCommentRow<'a> {
    pub ticket_id: i64,
    pub author: &'a str,
    pub role: &'a str,
    pub text: &'a str,
    pub visibility: &'a str,
    pub inbound_id: Option<i64>,
    /// How the author was verified ([`crate::workflow::Proof::as_str`]).
    pub verified_by: &'a str,
    pub at: Timestamp,
}

/// A history line to insert.
#[derive(Debug, Clone)]
pub struct NewHistoryRow<'a> {
    pub ticket_id: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub kind: &'a str,
    pub detail: &'a str,
    pub inbound_id: Option<i64>,
    pub at: Timestamp,
}

impl Tx {
    /// The next number in a ticket-number scope. The row lock this takes serialises concurrent
    /// creations in the same scope until commit, also across processes on one PostgreSQL.
    pub async fn next_ticket_seq(&mut self, scope: &str) -> Result<i64, StoreError> {
        let (value,): (i64,) = self
            .fetch_one(
                Reads::All,
                "INSERT INTO ticket_counters (scope, value) VALUES ($1, 1) \
                 ON CONFLICT (scope) DO UPDATE SET value = ticket_counters.value + 1 \
                 RETURNING value",
                |q| q.bind(scope),
            )
            .await?;
        Ok(value)
    }

    pub async fn insert_ticket(&mut self, t: &Ticket, due: Due) -> Result<i64, StoreError> {
        // The columns no update changes, then the ones `update_ticket` writes.
        let mut columns: Vec<(&str, Val)> = vec![
            ("ref", t.reference.as_str().into()),
            ("workflow", t.workflow.as_str().into()),
            ("requester", t.requester.as_str().into()),
            ("source", t.source.as_str().into()),
            ("system", t.system.as_deref().into()),
            ("created_at", ms(t.created_at).into()),
        ];
        columns.extend(ticket_columns(t, due.at()));
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        let sql = format!(
            "INSERT INTO tickets ({}) VALUES ({}) RETURNING id",
            names.join(", "),
            places(1, names.len())
        );
        let vals = columns.into_iter().map(|(_, v)| v).collect();
        let (id,): (i64,) = self
            .fetch_one(Reads::All, &sql, |q| bind_query(q, vals))
            .await?;
        self.write_parties(id, Some(BTreeSet::new()), parties(t))
            .await?;
        Ok(id)
    }

    /// Reads a ticket to change it; on PostgreSQL the row stays locked until commit.
    pub async fn ticket_for_update(
        &mut self,
        reference: &str,
    ) -> Result<Option<TicketRecord>, StoreError> {
        // Writes still pending are no change of it: `defer`, which every change of a ticket
        // goes through, drops the ticket read ahead.
        if let Some(rec) = &self.memory_ref().prefetched
            && rec.ticket.reference == reference
        {
            return Ok(Some(rec.clone()));
        }
        let sql = format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE ref = $1{}",
            self.dialect().lock_suffix()
        );
        // The writes kept back go out in front of this read.
        let rec = self.one_ticket(Reads::All, &sql, reference).await?;
        // Kept until a write is kept back (every change of a ticket is): the mail's later
        // steps read the same ticket again.
        if let Some(rec) = &rec {
            self.note_parties(rec);
        }
        self.memory().prefetched = rec.clone();
        Ok(rec)
    }

    /// Reads a ticket by id inside the transaction, without locking it (to note something
    /// beside it, as a bounce's history line).
    pub async fn ticket_by_id(&mut self, id: i64) -> Result<Option<TicketRecord>, StoreError> {
        let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1");
        self.one_ticket(Reads::Only(&[Table::Tickets]), &sql, id)
            .await
    }

    /// The ticket `sql` finds by `key` (`$1`).
    async fn one_ticket<'q, K>(
        &mut self,
        reads: Reads,
        sql: &str,
        key: K,
    ) -> Result<Option<TicketRecord>, StoreError>
    where
        K: 'q + sqlx::Encode<'q, Any> + sqlx::Type<Any> + Send,
    {
        self.fetch_optional::<TicketRow>(reads, sql, |q| q.bind(key))
            .await?
            .map(TicketRow::into_record)
            .transpose()
    }

    /// Up to `limit` of a workflow's tickets in the given states, by id after `after`, read
    /// to change them (on PostgreSQL the rows stay locked until commit).
    pub async fn tickets_in_states(
        &mut self,
        workflow: &str,
        states: &[String],
        after: i64,
        limit: i64,
    ) -> Result<Vec<TicketRecord>, StoreError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE workflow = $1 AND status IN ({}) \
             AND id > $2 ORDER BY id LIMIT $3{}",
            places(4, states.len()),
            self.dialect().lock_suffix()
        );
        self.fetch_all::<TicketRow>(Reads::All, &sql, |q| {
            let q = q.bind(workflow).bind(after).bind(limit);
            states.iter().fold(q, |q, s| q.bind(s.as_str()))
        })
        .await?
        .into_iter()
        .map(TicketRow::into_record)
        .collect()
    }

    /// Keeps when a ticket's next time rule is due.
    pub async fn set_due(&mut self, id: i64, due: Due) -> Result<(), StoreError> {
        let sql = "UPDATE tickets SET due_at = $1 WHERE id = $2";
        self.defer(Write::change(
            Table::Tickets,
            sql,
            vec![due.at().map(ms).into(), id.into()],
        ));
        Ok(())
    }

    /// Forgets what a workflow's due times were worked out from: the next sweep works them
    /// out again.
    pub async fn forget_due_basis(&mut self, workflow: &str) -> Result<(), StoreError> {
        let sql = "DELETE FROM due_basis WHERE workflow = $1";
        self.defer(Write::change(Table::DueBasis, sql, vec![workflow.into()]));
        Ok(())
    }

    /// Notes what a workflow's due times are worked out from now.
    pub async fn set_due_basis(&mut self, workflow: &str, digest: &str) -> Result<(), StoreError> {
        let sql = "INSERT INTO due_basis (workflow, digest) VALUES ($1, $2) \
                   ON CONFLICT (workflow) DO UPDATE SET digest = excluded.digest";
        let vals = vec![workflow.into(), digest.into()];
        self.defer(Write::change(Table::DueBasis, sql, vals));
        Ok(())
    }

    /// Notes the parties of a ticket as read in this transaction.
    pub(crate) fn note_parties(&mut self, rec: &TicketRecord) {
        self.know_parties(rec.id, parties(&rec.ticket));
    }

    fn know_parties(&mut self, id: i64, now: BTreeSet<String>) {
        let known = &mut self.memory().known_parties;
        match known.iter_mut().find(|(i, _)| *i == id) {
            Some((_, k)) => *k = now,
            None => known.push((id, now)),
        }
    }

    /// Keeps `ticket_parties` in step with a ticket's watchers and partners: only what changed
    /// when the parties before are known (they were read in this transaction), else all anew.
    async fn write_parties(
        &mut self,
        id: i64,
        before: Option<BTreeSet<String>>,
        after: BTreeSet<String>,
    ) -> Result<(), StoreError> {
        let new: Vec<&String> = match &before {
            Some(before) => {
                for gone in before.difference(&after) {
                    let sql = "DELETE FROM ticket_parties WHERE party = $1 AND ticket_id = $2";
                    let vals = vec![gone.as_str().into(), id.into()];
                    self.defer(Write::change(Table::TicketParties, sql, vals));
                }
                after.difference(before).collect()
            }
            None => {
                let sql = "DELETE FROM ticket_parties WHERE ticket_id = $1";
                self.defer(Write::change(Table::TicketParties, sql, vec![id.into()]));
                after.iter().collect()
            }
        };
        if !new.is_empty() {
            let sql = format!(
                "INSERT INTO ticket_parties (party, ticket_id) VALUES {} ON CONFLICT DO NOTHING",
                value_rows("($1, $2)", 2, new.len())
            );
            let vals = new
                .into_iter()
                .flat_map(|p| [Val::from(p.as_str()), id.into()])
                .collect();
            self.defer(Write::change(Table::TicketParties, sql, vals));
        }
        self.know_parties(id, after);
        Ok(())
    }

    /// Writes the ticket's changeable columns and when its next time rule is due. When the
    /// ticket as this transaction last read it is at hand, only the columns that changed:
    /// SQLite rewrites an index entry for every indexed column named in the `SET`, changed or
    /// not, and each such index page is one more page written at commit.
    pub async fn update_ticket(&mut self, id: i64, t: &Ticket, due: Due) -> Result<(), StoreError> {
        let columns = ticket_columns(t, due.at());
        let memory = self.memory_ref();
        let before = memory
            .prefetched
            .as_ref()
            .filter(|rec| rec.id == id)
            .map(|rec| ticket_columns(&rec.ticket, rec.due_at));
        let parties_before = memory
            .known_parties
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, p)| p.clone());
        self.write_parties(id, parties_before, parties(t)).await?;
        let mut sets = Vec::new();
        let mut vals: Vec<Val> = Vec::new();
        for (k, (column, val)) in columns.into_iter().enumerate() {
            if before.as_ref().is_some_and(|b| b[k].1 == val) {
                continue;
            }
            vals.push(val);
            sets.push(format!("{column} = ${}", vals.len()));
        }
        if sets.is_empty() {
            return Ok(());
        }
        vals.push(id.into());
        let sql = format!(
            "UPDATE tickets SET {} WHERE id = ${}",
            sets.join(", "),
            vals.len()
        );
        self.defer(Write::change(Table::Tickets, sql, vals));
        Ok(())
    }

    /// A comment whose id nobody needs (kept back with the other writes on SQLite).
    pub async fn add_comment(&mut self, c: &NewCommentRow<'_>) -> Result<(), StoreError> {
        self.defer(Write::insert(
            Table::Comments,
            "INSERT INTO comments (ticket_id, author, role, text, visibility, inbound_id, \
             created_at, verified_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            vec![
                c.ticket_id.into(),
                c.author.into(),
                c.role.into(),
                c.text.into(),
                c.visibility.into(),
                c.inbound_id.into(),
                ms(c.at).into(),
                c.verified_by.into(),
            ],
        ));
        Ok(())
    }

    pub async fn insert_comment(&mut self, c: &NewCommentRow<'_>) -> Result<i64, StoreError> {
        let sql = "INSERT INTO comments (ticket_id, author, role, text, visibility, inbound_id, \
             created_at, verified_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
        let (id,): (i64,) = self
            .fetch_one(Reads::All, sql, |q| {
                q.bind(c.ticket_id)
                    .bind(c.author)
                    .bind(c.role)
                    .bind(c.text)
                    .bind(c.visibility)
                    .bind(c.inbound_id)
                    .bind(ms(c.at))
                    .bind(c.verified_by)
            })
            .await?;
        Ok(id)
    }

    pub async fn insert_history(&mut self, h: &NewHistoryRow<'_>) -> Result<(), StoreError> {
        self.insert_history_rows(std::slice::from_ref(h)).await
    }

    /// Several history lines in one statement.
    pub async fn insert_history_rows(
        &mut self,
        rows: &[NewHistoryRow<'_>],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.defer(history_insert_rows(rows));
        Ok(())
    }

    /// Stores an attachment's content with its comment.
    pub async fn insert_attachment(
        &mut self,
        ticket_id: i64,
        comment_id: Option<i64>,
        filename: &str,
        content_type: &str,
        content: &[u8],
        at: Timestamp,
    ) -> Result<i64, StoreError> {
        let digest = crate::hex::sha256_hex(content);
        let sql = "INSERT INTO attachments (ticket_id, comment_id, filename, content_type, size, \
             sha256, content, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
        let (id,): (i64,) = self
            .fetch_one(Reads::All, sql, |q| {
                q.bind(ticket_id)
                    .bind(comment_id)
                    .bind(filename)
                    .bind(content_type)
                    .bind(content.len() as i64)
                    .bind(digest)
                    .bind(super::pieces::first(content))
                    .bind(ms(at))
            })
            .await?;
        self.insert_pieces(super::pieces::Owner::Attachment(id), content)
            .await?;
        Ok(id)
    }

    /// Moves a merged ticket's comments to the ticket it was merged into (they keep their times).
    pub async fn move_comments(&mut self, from: i64, to: i64) -> Result<u64, StoreError> {
        self.execute(
            "UPDATE comments SET ticket_id = $1 WHERE ticket_id = $2",
            |q| q.bind(to).bind(from),
        )
        .await
    }
}

impl Store {
    pub async fn ticket(&self, reference: &str) -> Result<Option<TicketRecord>, StoreError> {
        let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE ref = $1");
        let row: Option<TicketRow> = self.fetch_optional(&sql, |q| q.bind(reference)).await?;
        row.map(TicketRow::into_record).transpose()
    }

    pub async fn ticket_by_id(&self, id: i64) -> Result<Option<TicketRecord>, StoreError> {
        let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1");
        let row: Option<TicketRow> = self.fetch_optional(&sql, |q| q.bind(id)).await?;
        row.map(TicketRow::into_record).transpose()
    }

    /// Comments, oldest first.
    pub async fn comments(&self, ticket_id: i64) -> Result<Vec<CommentRow>, StoreError> {
        let sql = "SELECT id, author, role, text, visibility, inbound_id, created_at, verified_by \
             FROM comments WHERE ticket_id = $1 ORDER BY created_at, id";
        self.fetch_all(sql, |q| q.bind(ticket_id)).await
    }

    /// History, oldest first.
    pub async fn history(&self, ticket_id: i64) -> Result<Vec<HistoryRow>, StoreError> {
        let sql = "SELECT actor, action, kind, detail, inbound_id, created_at FROM history \
             WHERE ticket_id = $1 ORDER BY id";
        self.fetch_all(sql, |q| q.bind(ticket_id)).await
    }

    /// How many tickets each workflow has in each status.
    pub async fn workflow_usage(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let sql = "SELECT workflow, status, COUNT(*) FROM tickets GROUP BY workflow, status \
             ORDER BY workflow, status";
        self.fetch_all(sql, |q| q).await
    }

    /// The refs of up to `limit` tickets whose time rule is due at `now`, the longest due
    /// first (through the `tickets_due` index).
    pub async fn due_refs(&self, now: Timestamp, limit: i64) -> Result<Vec<String>, StoreError> {
        let sql = "SELECT ref FROM tickets WHERE due_at <= $1 ORDER BY due_at, id LIMIT $2";
        let refs: Vec<(String,)> = self.fetch_all(sql, |q| q.bind(ms(now)).bind(limit)).await?;
        Ok(refs.into_iter().map(|(r,)| r).collect())
    }

    /// What a workflow's due times were worked out from ([`Due::basis`], as a digest); None
    /// when they never were.
    pub async fn due_basis(&self, workflow: &str) -> Result<Option<String>, StoreError> {
        let sql = "SELECT digest FROM due_basis WHERE workflow = $1";
        let digest: Option<(String,)> = self.fetch_optional(sql, |q| q.bind(workflow)).await?;
        Ok(digest.map(|(d,)| d))
    }
}

/// The columns `update_ticket` writes, with their values.
fn ticket_columns(t: &Ticket, due_at: Option<Timestamp>) -> [(&'static str, Val); 16] {
    [
        ("status", t.status.as_str().into()),
        ("status_since", ms(t.status_since).into()),
        ("subject", t.subject.as_str().into()),
        ("organisation", t.organisation.as_deref().into()),
        ("assignee", t.assignee.as_deref().into()),
        (
            "customer_it_assignee",
            t.customer_it_assignee.as_deref().into(),
        ),
        ("involved_partners", to_json(&t.involved_partners).into()),
        ("waiting_on", t.waiting_on.to_string().into()),
        ("fields", to_json(&t.fields).into()),
        ("watchers", to_json(&t.watchers).into()),
        ("timers_fired", to_json(&t.timers_fired).into()),
        ("linked_to", t.linked_to.as_deref().into()),
        ("updated_at", ms(t.updated_at).into()),
        ("closed_at", t.closed_at.map(ms).into()),
        ("due_at", due_at.map(ms).into()),
        (
            "service",
            t.fields.get("service").map(String::as_str).into(),
        ),
    ]
}

/// Who besides the requester and the organisation sees the ticket, as `ticket_parties` keeps
/// it (see `ticket_list`).
fn parties(t: &Ticket) -> BTreeSet<String> {
    let watchers = t.watchers.iter().map(|w| format!("watcher:{w}"));
    let partners = t.involved_partners.iter().map(|p| format!("partner:{p}"));
    watchers.chain(partners).collect()
}

/// One statement writing a history line.
pub(crate) fn history_insert(h: &NewHistoryRow<'_>) -> Write {
    history_insert_rows(std::slice::from_ref(h))
}

/// One statement writing history lines.
fn history_insert_rows(rows: &[NewHistoryRow<'_>]) -> Write {
    let sql = format!(
        "INSERT INTO history (ticket_id, actor, action, kind, detail, inbound_id, created_at) VALUES {}",
        value_rows("($1, $2, $3, $4, $5, $6, $7)", 7, rows.len())
    );
    let mut vals: Vec<Val> = Vec::with_capacity(rows.len() * 7);
    for h in rows {
        vals.extend([
            h.ticket_id.into(),
            h.actor.into(),
            h.action.into(),
            h.kind.into(),
            h.detail.into(),
            h.inbound_id.into(),
            ms(h.at).into(),
        ]);
    }
    Write::insert(Table::History, sql, vals)
}
