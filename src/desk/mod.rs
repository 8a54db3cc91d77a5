//! The shell around the core: load what a decision needs, ask the core, write the effects in one
//! transaction, notifications included. Every source of intents (the CLI now, mail later) goes
//! through here.

mod change;
mod ingest;
mod late_render;
mod mail;
mod notify;
mod outbox;
mod refused;
mod report;
mod sweep;
mod view;

pub use ingest::{Incoming, IngestError, Origin, Whole, dedupe_key, on_disk};
pub use notify::Mailed;
pub use outbox::SendReport;
pub use report::{ActionReport, MailReport, RefusalReport, SenderReport, Status as MailStatus};
pub use sweep::SweepReport;
pub use view::{TicketPage, TicketView};

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;

use crate::config::Settings;
use crate::directory::Person;
use crate::outbound::Outbound;
use crate::store::{Store, StoreError};
use crate::workflow::{self, Actor, Effects, Rejection, Ticket, Workflow};

/// Why a request could not be decided at all (as opposed to a [`Rejection`] by the workflow).
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error("{0} is not in the directory")]
    UnknownPerson(String),
    #[error("no ticket {0}")]
    UnknownTicket(String),
    #[error("{who} may not see ticket {reference}")]
    NotVisible { who: String, reference: String },
    #[error(
        "ticket {reference} follows workflow \"{workflow}\", which is neither configured nor a preset"
    )]
    UnknownWorkflow { reference: String, workflow: String },
    #[error("cannot merge into {0}: no such ticket")]
    MergeTarget(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a task of the outbox sender failed")]
    Task(#[from] crate::errors::TaskFailed),
    #[error("not a mail: {0}")]
    NotAMail(String),
    #[error(
        "only the headers of mail #{0} were kept (it was over the size limit): nothing to apply"
    )]
    HeadersOnly(i64),
}

/// What a create or an action did.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The ticket was created or changed.
    Applied {
        reference: String,
        /// The ticket's row id.
        ticket_id: i64,
        effects: Box<Effects>,
        /// Who its notifications went to, and who was held back.
        mailed: Mailed,
    },
    /// The workflow refused; nothing was written.
    Rejected(Rejection),
    /// A reply to a closed ticket opened a new one that links it.
    FollowedUp { closed: String, reference: String },
}

/// A request for a new ticket, as the CLI or a mail brings it.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub subject: String,
    pub text: String,
    pub fields: BTreeMap<String, String>,
    pub to_address: Option<String>,
    pub source: String,
    pub attachments: Vec<NewAttachment>,
    /// The Message-ID of the mail that asks for the ticket: the root of its mail thread.
    pub thread_root: Option<String>,
}

/// A file that comes with a comment.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub filename: String,
    pub content_type: String,
    pub content: bytes::Bytes,
}

/// Who made a change, as its notifications need it.
#[derive(Clone, Copy)]
pub struct Author<'a> {
    pub actor: &'a Actor,
    /// Their mail is not to be answered (an automated sender, the help desk's own address),
    /// and why: no notification of the change goes to them.
    pub quiet: Option<&'a str>,
}

impl<'a> Author<'a> {
    pub fn new(actor: &'a Actor) -> Author<'a> {
        Author { actor, quiet: None }
    }
}

/// The stored mail a change comes from, and why its sender is not to be answered, if so.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FromMail<'a> {
    pub id: i64,
    pub quiet: Option<&'a str>,
}

/// Who asks for a change, when, and the stored mail it comes in, if any.
#[derive(Clone, Copy)]
pub(crate) struct By<'a> {
    pub actor: &'a Actor,
    pub mail: Option<FromMail<'a>>,
    pub now: Timestamp,
}

impl<'a> By<'a> {
    /// A change asked for directly (the command line), not by mail.
    pub(crate) fn direct(actor: &'a Actor, now: Timestamp) -> By<'a> {
        By {
            actor,
            mail: None,
            now,
        }
    }

    /// The author of the change, as its notifications need them.
    fn author(&self) -> Author<'a> {
        Author {
            actor: self.actor,
            quiet: self.mail.and_then(|m| m.quiet),
        }
    }
}

/// Where and by whom a change is written.
#[derive(Clone, Copy)]
pub struct Change<'a> {
    pub ticket_id: i64,
    /// The Message-ID its ticket's mail thread starts with, when known.
    pub thread_root: Option<&'a str>,
    pub author: Author<'a>,
    /// The stored mail the change comes from.
    pub inbound: Option<i64>,
    pub now: Timestamp,
}

/// deskmail's settings and store, ready to take intents.
pub struct Desk {
    pub settings: Settings,
    pub store: Store,
    pub outbound: Outbound,
    /// What the inbound stages need of the settings, prepared once.
    pub reader: crate::inbound::Reader,
    /// Renders notifications on another thread (see `late_render`); `None`: in place.
    late_renderer: Option<late_render::LateRenderer>,
    /// The daemon's name in the leases, written with each notification it claims, so that
    /// another daemon may take them over once this one's lease runs out.
    pub claims_as: Option<String>,
}

impl Desk {
    pub fn new(settings: Settings, store: Store, outbound: Outbound) -> Self {
        Desk {
            reader: crate::inbound::Reader::new(&settings),
            settings,
            store,
            outbound,
            late_renderer: None,
            claims_as: None,
        }
    }

    /// Renders notifications on a thread of their own from now on, on the CPUs the database
    /// work does not use (`ingest` on SQLite; see `late_render`).
    pub fn render_elsewhere(&mut self) -> std::io::Result<()> {
        if self.late_renderer.is_none() {
            self.late_renderer = Some(late_render::LateRenderer::start(Arc::clone(
                &self.outbound.templates,
            ))?);
        }
        Ok(())
    }

    /// The help desk itself as the author of what the system does (time rules).
    pub fn system_person(&self) -> Person {
        let h = &self.settings.directory.helpdesk;
        Person {
            address: h.address.clone(),
            name: h.name.clone(),
            locale: h.locale.clone(),
            time_zone: h.time_zone.clone(),
            party: crate::directory::Party::Agent,
        }
    }

    /// The person behind an address, as the directory lists them.
    pub fn person(&self, address: &str) -> Result<Person, DeskError> {
        self.settings
            .directory
            .person(address)
            .ok_or_else(|| DeskError::UnknownPerson(address.trim().to_string()))
    }

    /// The workflow a ticket follows: the configured one or, for older tickets, a preset.
    fn workflow_for(&self, t: &Ticket) -> Result<Cow<'_, Workflow>, DeskError> {
        if t.workflow == self.settings.workflow.name {
            return Ok(Cow::Borrowed(&self.settings.workflow));
        }
        workflow::presets::load(&t.workflow)
            .map(Cow::Owned)
            .ok_or_else(|| DeskError::UnknownWorkflow {
                reference: t.reference.clone(),
                workflow: t.workflow.clone(),
            })
    }
}
