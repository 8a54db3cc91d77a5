//! Rows as the database holds them, and their conversion to and from the core's values.

use jiff::Timestamp;
use serde::Serialize;
use sqlx::FromRow;

use super::StoreError;
use crate::workflow::{Ticket, Turn};

pub(crate) const TICKET_COLUMNS: &str = "id, ref, workflow, status, status_since, subject, \
    requester, organisation, assignee, customer_it_assignee, involved_partners, waiting_on, \
    source, system, fields, watchers, timers_fired, linked_to, created_at, updated_at, closed_at, \
    thread_root, due_at";

#[derive(Debug, FromRow)]
pub(crate) struct TicketRow {
    id: i64,
    #[sqlx(rename = "ref")]
    reference: String,
    workflow: String,
    status: String,
    status_since: i64,
    subject: String,
    requester: String,
    organisation: Option<String>,
    assignee: Option<String>,
    customer_it_assignee: Option<String>,
    involved_partners: String,
    waiting_on: String,
    source: String,
    system: Option<String>,
    fields: String,
    watchers: String,
    timers_fired: String,
    linked_to: Option<String>,
    created_at: i64,
    updated_at: i64,
    closed_at: Option<i64>,
    thread_root: Option<String>,
    due_at: Option<i64>,
}

/// A stored ticket: its row id and the ticket.
#[derive(Debug, Clone)]
pub struct TicketRecord {
    pub id: i64,
    pub ticket: Ticket,
    /// The Message-ID its mail thread starts with, once it has one.
    pub thread_root: Option<String>,
    /// When its first time rule is due, as kept ([`crate::workflow::rules::Due`]).
    pub due_at: Option<Timestamp>,
}

pub(crate) fn ts(ms: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_millisecond(ms).map_err(|e| StoreError::Corrupt(format!("time {ms}: {e}")))
}

pub(crate) fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

impl TicketRow {
    pub(crate) fn into_record(self) -> Result<TicketRecord, StoreError> {
        Ok(TicketRecord {
            id: self.id,
            thread_root: self.thread_root,
            due_at: self.due_at.map(ts).transpose()?,
            ticket: Ticket {
                reference: self.reference,
                workflow: self.workflow,
                status: self.status,
                status_since: ts(self.status_since)?,
                subject: self.subject,
                requester: self.requester,
                organisation: self.organisation,
                involved_partners: json("involved_partners", &self.involved_partners)?,
                assignee: self.assignee,
                customer_it_assignee: self.customer_it_assignee,
                waiting_on: Turn::parse(&self.waiting_on),
                source: self.source,
                system: self.system,
                fields: json("fields", &self.fields)?,
                watchers: json("watchers", &self.watchers)?,
                timers_fired: json("timers_fired", &self.timers_fired)?,
                linked_to: self.linked_to,
                created_at: ts(self.created_at)?,
                updated_at: ts(self.updated_at)?,
                closed_at: self.closed_at.map(ts).transpose()?,
            },
        })
    }
}

/// A time as stored (milliseconds since 1970), read into a [`Timestamp`] by `FromRow`
/// (`#[sqlx(try_from = "Millis")]`).
#[derive(sqlx::Type)]
#[sqlx(transparent)]
pub(crate) struct Millis(i64);

impl TryFrom<Millis> for Timestamp {
    type Error = StoreError;

    fn try_from(m: Millis) -> Result<Timestamp, StoreError> {
        ts(m.0)
    }
}

/// A time that may be missing, as stored (`#[sqlx(try_from = "MaybeMillis")]`).
#[derive(sqlx::Type)]
#[sqlx(transparent)]
pub(crate) struct MaybeMillis(Option<i64>);

impl TryFrom<MaybeMillis> for Option<Timestamp> {
    type Error = StoreError;

    fn try_from(m: MaybeMillis) -> Result<Option<Timestamp>, StoreError> {
        m.0.map(ts).transpose()
    }
}

/// A stored comment.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct CommentRow {
    pub id: i64,
    pub author: String,
    pub role: String,
    pub text: String,
    pub visibility: String,
    pub inbound_id: Option<i64>,
    #[sqlx(try_from = "Millis")]
    pub created_at: Timestamp,
    /// How the author was verified: `token`, `dmarc`, `dkim`, `cli`, `none` (not verified);
    /// absent for comments written before deskmail kept it.
    pub verified_by: Option<String>,
}

/// One stored line of a ticket's history.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct HistoryRow {
    pub actor: String,
    pub action: String,
    pub kind: String,
    pub detail: String,
    pub inbound_id: Option<i64>,
    #[sqlx(try_from = "Millis")]
    pub created_at: Timestamp,
}
