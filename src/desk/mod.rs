//! The shell around the core: load what a decision needs, ask the core, write the effects in one
//! transaction, notifications included. Every source of intents (the CLI now, mail later) goes
//! through here.

mod by_mail;
mod ingest;
mod late_render;
mod notify;
mod outbox;
mod sweep;

pub use ingest::{
    Incoming, IngestError, MailReport, Origin, SenderReport, Status as MailStatus, Whole,
    dedupe_key, on_disk,
};
pub use notify::Mailed;
pub use outbox::SendReport;
pub use sweep::SweepReport;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;

use crate::config::Settings;
use crate::directory::{Access, Party, Person};
use crate::outbound::Outbound;
use crate::recipients;
use crate::store::{
    CommentRow, HistoryRow, NewCommentRow, NewHistoryRow, Page, Store, StoreError, TicketFilter,
    TicketRecord, Tx,
};
use crate::workflow::rules::Due;
use crate::workflow::{
    self, Actor, AllowedAction, Decision, Effects, Intent, NewTicket, Refusal, Rejection,
    StateKind, Ticket, Visibility, Workflow,
};

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
    #[error("internal error: {0}")]
    Internal(String),
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

/// A ticket with its comments and history, as a reader may see it.
#[derive(Debug, Clone, Serialize)]
pub struct TicketView {
    #[serde(flatten)]
    pub ticket: Ticket,
    pub comments: Vec<CommentRow>,
    pub history: Vec<HistoryRow>,
}

/// A page of `ticket list`.
#[derive(Debug, Clone)]
pub struct TicketPage {
    pub tickets: Vec<Ticket>,
    /// The ref the next page starts after, when there is one.
    pub next: Option<String>,
}

/// Which tickets a reader sees, as the store filters them ([`Actor::can_see`]); None for an
/// agent, who sees them all.
fn visibility(reader: &Actor) -> Option<crate::store::Visibility> {
    let address = reader.person.address.clone();
    match &reader.person.party {
        Party::Agent => None,
        Party::Customer {
            organisation,
            access,
            customer_it,
        } => Some(crate::store::Visibility {
            address,
            partner: None,
            organisation: (*access == Access::Power || *customer_it).then(|| organisation.clone()),
        }),
        Party::Partner { partner } => Some(crate::store::Visibility {
            address,
            partner: Some(partner.clone()),
            organisation: None,
        }),
    }
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

/// Where and by whom a change is written.
#[derive(Clone, Copy)]
struct Write<'a> {
    ticket_id: i64,
    thread_root: Option<&'a str>,
    author: Author<'a>,
    /// The stored mail the change comes from.
    inbound: Option<i64>,
    now: Timestamp,
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

    /// Creates a ticket for `actor`, numbered inside the same transaction.
    pub async fn create(
        &self,
        actor: &Actor,
        req: CreateRequest,
        now: Timestamp,
    ) -> Result<Outcome, DeskError> {
        let mut tx = self.store.begin().await?;
        let outcome = self
            .create_in(&mut tx, actor, &req, None, None, now)
            .await?;
        if matches!(outcome, Outcome::Applied { .. }) {
            tx.commit().await?;
        }
        Ok(outcome)
    }

    /// [`Desk::create`] inside a transaction the caller commits; `inbound` is the stored mail
    /// it comes from.
    pub(crate) async fn create_in(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        req: &CreateRequest,
        linked_to: Option<&str>,
        mail: Option<FromMail<'_>>,
        now: Timestamp,
    ) -> Result<Outcome, DeskError> {
        let format = &self.settings.ticket_format;
        let seq = tx.next_ticket_seq(&format.scope(now)).await?;
        let mut mailbox_fields = BTreeMap::new();
        if let Some(mb) = req
            .to_address
            .as_deref()
            .and_then(|to| self.settings.mailbox_for(to))
        {
            for (k, v) in [("request_type", &mb.request_type), ("queue", &mb.queue)] {
                if let Some(v) = v {
                    mailbox_fields.insert(k.to_string(), v.clone());
                }
            }
        }
        let new = NewTicket {
            reference: format.render(now, seq),
            subject: req.subject.clone(),
            text: req.text.clone(),
            fields: req.fields.clone(),
            mailbox_fields,
            to_address: req.to_address.clone(),
            source: req.source.clone(),
            linked_to: linked_to.map(String::from),
        };
        let wf = &self.settings.workflow;
        match workflow::create(wf, &self.settings.directory, actor, &new, now) {
            Decision::Reject(r) => Ok(Outcome::Rejected(r)),
            Decision::Apply(effects) => {
                let due = Due::of(wf, &effects.ticket);
                let id = tx.insert_ticket(&effects.ticket, due).await?;
                let root = req
                    .thread_root
                    .as_deref()
                    .filter(|r| crate::outbound::message::is_message_id(r));
                if let Some(root) = root {
                    tx.set_thread_root(id, root).await?;
                }
                let w = Write {
                    ticket_id: id,
                    thread_root: root,
                    author: Author {
                        actor,
                        quiet: mail.and_then(|m| m.quiet),
                    },
                    inbound: mail.map(|m| m.id),
                    now,
                };
                let mailed = self.write(tx, &w, &effects, &req.attachments).await?;
                Ok(Outcome::Applied {
                    reference: effects.ticket.reference.clone(),
                    effects,
                    mailed,
                })
            }
        }
    }

    /// Applies an intent to a ticket through the core, in one transaction.
    pub async fn act(
        &self,
        reference: &str,
        actor: &Actor,
        intent: &Intent,
        attachments: &[NewAttachment],
        now: Timestamp,
    ) -> Result<Outcome, DeskError> {
        let mut tx = self.store.begin().await?;
        let outcome = self
            .act_in(&mut tx, reference, actor, intent, attachments, None, now)
            .await?;
        if !matches!(outcome, Outcome::Rejected(_)) {
            tx.commit().await?;
        }
        Ok(outcome)
    }

    /// [`Desk::act`] inside a transaction the caller commits; `inbound` is the stored mail it
    /// comes from. A rejection writes nothing.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn act_in(
        &self,
        tx: &mut Tx,
        reference: &str,
        actor: &Actor,
        intent: &Intent,
        attachments: &[NewAttachment],
        mail: Option<FromMail<'_>>,
        now: Timestamp,
    ) -> Result<Outcome, DeskError> {
        let rec = tx
            .ticket_for_update(reference.trim())
            .await?
            .ok_or_else(|| DeskError::UnknownTicket(reference.trim().to_string()))?;
        self.act_on(tx, rec, actor, intent, attachments, mail, now)
            .await
    }

    /// [`Desk::act_in`] on a ticket already read (and locked) in this transaction.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn act_on(
        &self,
        tx: &mut Tx,
        rec: TicketRecord,
        actor: &Actor,
        intent: &Intent,
        attachments: &[NewAttachment],
        mail: Option<FromMail<'_>>,
        now: Timestamp,
    ) -> Result<Outcome, DeskError> {
        let inbound = mail.map(|m| m.id);
        if !actor.can_see(&rec.ticket) {
            return Err(DeskError::NotVisible {
                who: actor.address().to_string(),
                reference: rec.ticket.reference.clone(),
            });
        }
        let wf = self.workflow_for(&rec.ticket)?;
        let dir = &self.settings.directory;
        let decision = match workflow::act(&wf, dir, &rec.ticket, actor, intent, now) {
            workflow::Outcome::Decided(d) => d,
            workflow::Outcome::FollowUp => {
                return self
                    .follow_up(tx, &rec, actor, intent, attachments, mail, now)
                    .await;
            }
        };
        let effects = match decision {
            Decision::Reject(r) => return Ok(Outcome::Rejected(r)),
            Decision::Apply(e) => e,
        };
        if let Some(target) = &effects.merge_into {
            let into = tx
                .ticket_for_update(target)
                .await?
                .filter(|t| t.id != rec.id)
                .ok_or_else(|| DeskError::MergeTarget(target.clone()))?;
            let refuse = |reason| {
                Ok(Outcome::Rejected(Rejection {
                    reason,
                    allowed: workflow::allowed_actions(&wf, dir, &rec.ticket, actor),
                }))
            };
            if into.ticket.organisation != rec.ticket.organisation {
                let name =
                    |o: &Option<String>| o.clone().unwrap_or_else(|| "no organisation".into());
                return refuse(Refusal::MergeAcrossOrganisations {
                    organisation_a: name(&rec.ticket.organisation),
                    organisation_b: name(&into.ticket.organisation),
                });
            }
            let into_wf = self.workflow_for(&into.ticket)?;
            if into_wf
                .states
                .iter()
                .any(|s| s.name == into.ticket.status && s.kind == StateKind::Closed)
            {
                return refuse(Refusal::Final {
                    status: format!("{} ({})", into.ticket.status, into.ticket.reference),
                });
            }
            tx.move_comments(rec.id, into.id).await?;
            let mut target_ticket = into.ticket.clone();
            target_ticket.updated_at = now;
            let due = Due::of(&into_wf, &target_ticket);
            tx.update_ticket(into.id, &target_ticket, due).await?;
            let detail = format!("merged from {}", rec.ticket.reference);
            tx.insert_history(&NewHistoryRow {
                ticket_id: into.id,
                actor: actor.address(),
                action: &effects.action,
                kind: "merged",
                detail: &detail,
                inbound_id: inbound,
                at: now,
            })
            .await?;
        }
        tx.update_ticket(rec.id, &effects.ticket, Due::of(&wf, &effects.ticket))
            .await?;
        let w = Write {
            ticket_id: rec.id,
            thread_root: rec.thread_root.as_deref(),
            author: Author {
                actor,
                quiet: mail.and_then(|m| m.quiet),
            },
            inbound,
            now,
        };
        let mailed = self.write(tx, &w, &effects, attachments).await?;
        Ok(Outcome::Applied {
            reference: rec.ticket.reference.clone(),
            effects,
            mailed,
        })
    }

    /// A reply to a closed ticket whose workflow opens a new one: the new ticket links the old.
    #[allow(clippy::too_many_arguments)]
    async fn follow_up(
        &self,
        tx: &mut Tx,
        closed: &TicketRecord,
        actor: &Actor,
        intent: &Intent,
        attachments: &[NewAttachment],
        mail: Option<FromMail<'_>>,
        now: Timestamp,
    ) -> Result<Outcome, DeskError> {
        let inbound = mail.map(|m| m.id);
        let (text, given) = match intent {
            Intent::Comment { text, .. } => (text.clone(), None),
            Intent::Act {
                comment, fields, ..
            } => (comment.clone().unwrap_or_default(), Some(fields)),
        };
        // The follow-up carries the closed ticket's values of the fields a new ticket takes (a
        // workflow may require them: the itil-portal's service and impact), or those the reply
        // gives.
        let wanted = &self.settings.workflow.create.fields;
        let fields: BTreeMap<String, String> = closed
            .ticket
            .fields
            .iter()
            .chain(given.into_iter().flatten())
            .filter(|(name, _)| wanted.contains(name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let req = CreateRequest {
            subject: closed.ticket.subject.clone(),
            text,
            fields,
            to_address: closed.ticket.system.clone(),
            source: closed.ticket.source.clone(),
            attachments: attachments.to_vec(),
            thread_root: None,
        };
        let outcome = self
            .create_in(tx, actor, &req, Some(&closed.ticket.reference), mail, now)
            .await?;
        let Outcome::Applied { reference, .. } = outcome else {
            return Ok(outcome);
        };
        let detail = format!("reply opened follow-up {reference}");
        tx.insert_history(&NewHistoryRow {
            ticket_id: closed.id,
            actor: actor.address(),
            action: "comment",
            kind: "follow_up",
            detail: &detail,
            inbound_id: inbound,
            at: now,
        })
        .await?;
        Ok(Outcome::FollowedUp {
            closed: closed.ticket.reference.clone(),
            reference,
        })
    }

    /// Writes an action's comment (with its attachments), history and notifications; says who
    /// was mailed.
    async fn write(
        &self,
        tx: &mut Tx,
        w: &Write<'_>,
        effects: &Effects,
        attachments: &[NewAttachment],
    ) -> Result<Mailed, DeskError> {
        let Write {
            ticket_id,
            thread_root,
            author: by,
            inbound,
            now,
        } = *w;
        let actor = by.actor;
        let author = &actor.person;
        let role = author.party.role_name();
        let mut comment_id = None;
        if let Some(c) = &effects.comment {
            let row = NewCommentRow {
                ticket_id,
                author: &author.address,
                role,
                text: &c.text,
                visibility: c.visibility.as_str(),
                inbound_id: inbound,
                verified_by: actor.proof.as_str(),
                at: now,
            };
            // Its id is only needed for its attachments; without, it goes with the other writes.
            if attachments.is_empty() {
                tx.add_comment(&row).await?;
            } else {
                comment_id = Some(tx.insert_comment(&row).await?);
            }
        }
        for a in attachments {
            tx.insert_attachment(
                ticket_id,
                comment_id,
                &a.filename,
                &a.content_type,
                &a.content,
                now,
            )
            .await?;
        }
        let mut lines: Vec<(String, String)> = effects
            .history
            .iter()
            .map(|h| (h.kind.clone(), h.detail.clone()))
            .collect();
        if let Some(c) = &effects.comment
            && c.visibility == Visibility::Internal
        {
            lines.push(("comment".into(), "internal note".into()));
        }
        for n in &effects.notices {
            let to = recipients::addresses(&self.settings.directory, &effects.ticket, &n.audience);
            lines.push((
                "notice".into(),
                format!(
                    "{} → {} ({})",
                    n.event.as_str(),
                    recipients::describe(&n.audience),
                    to.join(", ")
                ),
            ));
        }
        let mailed = self
            .enqueue(
                tx,
                ticket_id,
                thread_root,
                by,
                effects,
                attachments,
                None,
                now,
            )
            .await?;
        lines.extend(
            mailed
                .held
                .iter()
                .map(|n| ("notice".to_string(), n.clone())),
        );
        let rows: Vec<NewHistoryRow<'_>> = lines
            .iter()
            .map(|(kind, detail)| NewHistoryRow {
                ticket_id,
                actor: &author.address,
                action: &effects.action,
                kind,
                detail,
                inbound_id: inbound,
                at: now,
            })
            .collect();
        tx.insert_history_rows(&rows).await?;
        Ok(mailed)
    }

    /// The actions `actor` may take on a ticket.
    pub async fn allowed(
        &self,
        reference: &str,
        actor: &Actor,
    ) -> Result<Vec<AllowedAction>, DeskError> {
        let rec = self.visible(reference, Some(actor)).await?;
        let wf = self.workflow_for(&rec.ticket)?;
        Ok(workflow::allowed_actions(
            &wf,
            &self.settings.directory,
            &rec.ticket,
            actor,
        ))
    }

    async fn visible(
        &self,
        reference: &str,
        reader: Option<&Actor>,
    ) -> Result<TicketRecord, DeskError> {
        let rec = self
            .store
            .ticket(reference.trim())
            .await?
            .ok_or_else(|| DeskError::UnknownTicket(reference.trim().to_string()))?;
        if let Some(a) = reader
            && !a.can_see(&rec.ticket)
        {
            return Err(DeskError::NotVisible {
                who: a.address().to_string(),
                reference: rec.ticket.reference,
            });
        }
        Ok(rec)
    }

    /// A ticket with its comments and history; a reader who is not an agent sees no internal
    /// comments and no notice lines.
    pub async fn show(
        &self,
        reference: &str,
        reader: Option<&Actor>,
    ) -> Result<TicketView, DeskError> {
        let rec = self.visible(reference, reader).await?;
        let agent_view = reader.is_none_or(Actor::is_agent);
        let mut comments = self.store.comments(rec.id).await?;
        let mut history = self.store.history(rec.id).await?;
        if !agent_view {
            comments.retain(|c| c.visibility == Visibility::Public.as_str());
            history.retain(|h| h.kind != "notice" && h.kind != "comment");
        }
        Ok(TicketView {
            ticket: rec.ticket,
            comments,
            history,
        })
    }

    /// A page of the tickets matching the filter that the reader may see, newest first, and
    /// where the next page starts (None: this was the last).
    pub async fn list(
        &self,
        filter: &TicketFilter,
        reader: Option<&Actor>,
        page: Page<'_>,
    ) -> Result<TicketPage, DeskError> {
        if let Some(after) = page.after {
            let upper = after.to_uppercase();
            if self.store.ticket(after).await?.is_none()
                && self.store.ticket(&upper).await?.is_none()
            {
                return Err(DeskError::UnknownTicket(format!("{after} (--after)")));
            }
        }
        let filter = TicketFilter {
            visible_to: reader.and_then(visibility),
            ..filter.clone()
        };
        let limit = page.limit.max(1);
        let asked = Page {
            after: page.after,
            limit: limit + 1,
        };
        let mut tickets: Vec<Ticket> = self
            .store
            .tickets(&filter, asked)
            .await?
            .into_iter()
            .map(|r| r.ticket)
            .collect();
        let next = crate::store::next_page(&mut tickets, limit, |t| t.reference.clone());
        Ok(TicketPage { tickets, next })
    }
}
