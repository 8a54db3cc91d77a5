//! Notifications written into the outbox inside the transaction of the change that causes them.

use jiff::{SignedDuration, Timestamp};

use super::late_render::Job;
use super::{Author, Change, Desk, DeskError, NewAttachment};
use crate::directory::{Party, Person};
use crate::outbound::compose::{self, ContextInput, Planned};
use crate::outbound::message::{self, Mail, MailAttachment};
use crate::outbound::render::{AttachmentCtx, FailureCtx, MailContext, RefusalCtx};
use crate::store::{LateMessage, NewOutboxRow, OutboxState, TicketRecord, Tx, count_key};
use crate::workflow::{Effects, Event, Ticket, Workflow};

/// One change's notifications as they are made: what each of them needs.
struct Notifying<'a> {
    change: &'a Change<'a>,
    effects: &'a Effects,
    wf: &'a Workflow,
    attachments: &'a [NewAttachment],
    refusal: Option<RefusalCtx>,
    /// The change comes from a sender who is not verified.
    unverified: bool,
    /// The comment's share of a notification, bytes.
    comment_budget: usize,
    /// Which attachments go along (see [`compose::fitting`]).
    going: Vec<bool>,
    /// Whether every notification fits in one piece (see `store::pieces`).
    fits_a_piece: bool,
}

/// One notification's mail as it is threaded: to whom, about what, after which earlier mails.
struct Envelope<'a> {
    ticket: &'a Ticket,
    p: &'a Planned,
    reply_to: &'a str,
    /// This recipient's earlier mails on the ticket.
    earlier: &'a [String],
    now: Timestamp,
}

/// The mails of one change being made, and who was held back.
#[derive(Default)]
struct Made {
    rows: Vec<QueuedMail>,
    late: Vec<LateMessage>,
    held: Vec<String>,
    /// The ticket's thread root (the first mail becomes it).
    root: Option<String>,
}

impl Desk {
    /// Renders and queues the notifications of one change (public for the benchmark). Returns
    /// who was mailed and the history lines for the mails that were not written (a failing
    /// address, the loop limit, a template error): nothing is skipped silently, and a
    /// notification problem never undoes the change itself. The store is asked twice per
    /// change, however many mails it makes: one lookup (thread, failing addresses, recent
    /// counts) and one insert.
    pub async fn enqueue(
        &self,
        tx: &mut Tx,
        change: &Change<'_>,
        effects: &Effects,
        attachments: &[NewAttachment],
        refusal: Option<RefusalCtx>,
    ) -> Result<Mailed, DeskError> {
        let out = &self.outbound.settings;
        let actor = change.author.actor;
        let planned = compose::plan(
            &self.settings.directory,
            effects,
            &actor.person.address,
            out.mail_author,
        );
        if planned.is_empty() {
            return Ok(Mailed::default());
        }
        let wf = self.workflow_for(&effects.ticket)?;
        // The loop breaker holds back mail to outside addresses only: the support team, agents
        // and agent groups hear of every change. It counts the mails an unverified sender
        // caused apart from the others: forged mail cannot use up what a verified reply needs.
        let outside: Vec<String> = planned
            .iter()
            .filter(|p| !self.is_internal(p))
            .map(|p| p.address.clone())
            .collect();
        let addresses: Vec<String> = planned.iter().map(|p| p.address.clone()).collect();
        let state = tx
            .outbox_state(
                change.ticket_id,
                &addresses,
                if out.loop_limit_per_hour > 0 {
                    &outside
                } else {
                    &[]
                },
                out.loop_limit_per_thread > 0,
                change.now - SignedDuration::from_hours(1),
            )
            .await?;
        let n = self.notifying(change, effects, &wf, attachments, refusal);
        let mut made = Made {
            root: change.thread_root.map(String::from),
            ..Made::default()
        };
        for p in planned {
            match self.held_back(&n, &p, &state, outside.contains(&p.address)) {
                Some(why) => made
                    .held
                    .push(format!("not mailed to {}: {why}", p.address)),
                None => self.make_one(&n, &p, &state, &mut made),
            }
        }
        if change.thread_root.is_none()
            && let Some(r) = &made.root
        {
            tx.set_thread_root(change.ticket_id, r).await?;
        }
        self.insert_mails(tx, change, &made.rows, made.late, n.unverified)
            .await?;
        Ok(Mailed {
            to: made.rows.into_iter().map(|r| r.recipient).collect(),
            held: made.held,
        })
    }

    /// What making one change's notifications needs. Every notification stays within
    /// `max_message_bytes`: the comment is cut to its budget, and the attachments that would
    /// not fit are named instead.
    fn notifying<'a>(
        &self,
        change: &'a Change<'a>,
        effects: &'a Effects,
        wf: &'a Workflow,
        attachments: &'a [NewAttachment],
        refusal: Option<RefusalCtx>,
    ) -> Notifying<'a> {
        let out = &self.outbound.settings;
        let comment_budget = compose::comment_budget(out.max_message_bytes);
        let comment_len = effects.comment.as_ref().map_or(0, |c| c.text.len());
        let text_bound = compose::text_bound(comment_len.min(comment_budget));
        let going = compose::fitting(
            attachments.iter().map(|a| a.content.len() as u64),
            out.max_attachment_bytes,
            out.max_message_bytes.saturating_sub(text_bound),
        );
        Notifying {
            change,
            effects,
            wf,
            attachments,
            refusal,
            unverified: !change.author.actor.verified(),
            comment_budget,
            going,
            // A message that may outgrow one piece is written a piece at a time
            // (store/pieces.rs), which filling in a late message would not do.
            fits_a_piece: text_bound <= crate::store::PIECE as u64,
        }
    }

    /// Why a planned notification is not sent, if it is not: its recipient is the quiet
    /// author, an address never mailed or a failing one, or over the loop limit (two
    /// auto-responders must never mail each other without end).
    fn held_back(
        &self,
        n: &Notifying<'_>,
        p: &Planned,
        state: &OutboxState,
        outside: bool,
    ) -> Option<String> {
        let author = n.change.author;
        let quiet = author
            .quiet
            .filter(|_| p.address == author.actor.person.address);
        if let Some(why) = quiet.or_else(|| self.never_mailed(&p.address)) {
            return Some(why.to_string());
        }
        if let Some(reason) = state.failing.get(&p.address) {
            return Some(format!("the address fails ({reason})"));
        }
        let out = &self.outbound.settings;
        let (hour_limit, thread_limit) = (out.loop_limit_per_hour, out.loop_limit_per_thread);
        let key = count_key(&p.address, n.unverified);
        let per_hour = state.per_hour.get(&key).copied().unwrap_or(0);
        let per_thread = state.per_thread.get(&key).copied().unwrap_or(0);
        let over = (hour_limit > 0 && per_hour >= hour_limit)
            || (thread_limit > 0 && per_thread >= thread_limit);
        (outside && over).then(|| {
            format!(
                "loop limit ({per_hour} mails this hour, {per_thread} on this ticket{})",
                if n.unverified {
                    ", from unverified senders"
                } else {
                    ""
                }
            )
        })
    }

    /// Makes one notification: in place, or on the rendering thread (see `late_render`). A
    /// "not done" notice is made in place (the sender's report says it is queued), and so is a
    /// mail that carries files or may outgrow a piece.
    fn make_one(&self, n: &Notifying<'_>, p: &Planned, state: &OutboxState, made: &mut Made) {
        let dir = &self.settings.directory;
        let ticket = &n.effects.ticket;
        let reply_to =
            self.outbound
                .key
                .reply_address(&dir.helpdesk.address, &ticket.reference, &p.address);
        let ctx = self.mail_context(n, p, &reply_to);
        let files = if p.include_comment {
            mail_files(n.attachments, &n.going)
        } else {
            Vec::new()
        };
        let env = Envelope {
            ticket,
            p,
            reply_to: &reply_to,
            earlier: state.earlier.get(&p.address).map_or(&[], Vec::as_slice),
            now: n.change.now,
        };
        let elsewhere = self
            .late_renderer
            .as_ref()
            .filter(|_| n.refusal.is_none() && files.is_empty() && n.fits_a_piece);
        let Some(renderer) = elsewhere else {
            match self.render_mail(&env, ctx, files, &mut made.root) {
                Ok(mail) => made.rows.push(mail),
                Err(problem) => made
                    .held
                    .push(format!("not mailed to {}: {problem}", p.address)),
            }
            return;
        };
        let (mail, queued) = self.thread_mail(&env, files, &mut made.root);
        let (done, receiver) = tokio::sync::oneshot::channel();
        let job = Job {
            event: p.event.clone(),
            locale: self.locale_of(p).to_string(),
            ctx,
            mail,
            max: self.outbound.settings.max_message_bytes,
            done,
        };
        if let Err(job) = renderer.render(job) {
            // The thread is gone: made here instead.
            job.run(&self.outbound.templates);
        }
        let change = n.change;
        made.late.push(LateMessage {
            message_id: queued.message_id.clone(),
            made: receiver,
            ticket_id: change.ticket_id,
            actor: change.author.actor.person.address.clone(),
            action: n.effects.action.clone(),
            at: change.now,
            not_mailed: format!("not mailed to {}", p.address),
        });
        made.rows.push(queued);
    }

    /// The template context of one notification.
    fn mail_context(&self, n: &Notifying<'_>, p: &Planned, reply_to: &str) -> MailContext {
        let dir = &self.settings.directory;
        let ticket = &n.effects.ticket;
        let allowed = compose::allowed_for(n.wf, dir, ticket, &p.person);
        let ask = if p.event == Event::Resolved.as_str() {
            compose::ask(n.wf, ticket, &allowed)
        } else {
            Default::default()
        };
        compose::context(ContextInput {
            dir,
            effects: n.effects,
            planned: p,
            actor: &n.change.author.actor.person,
            unverified: n.unverified,
            comment_budget: n.comment_budget,
            allowed: &allowed,
            reply_to,
            ask,
            attachments: attachment_lines(n.attachments, &n.going),
            refusal: n.refusal.clone(),
            now: n.change.now,
            comment_action: &n.wf.comment.name,
        })
    }

    /// Renders one mail and threads it (see [`Desk::thread_mail`]).
    fn render_mail(
        &self,
        env: &Envelope<'_>,
        mut ctx: MailContext,
        attachments: Vec<MailAttachment>,
        root: &mut Option<String>,
    ) -> Result<QueuedMail, String> {
        let mut root_after = root.clone();
        let (mut mail, mut queued) = self.thread_mail(env, attachments, &mut root_after);
        queued.raw = super::late_render::make(
            &self.outbound.templates,
            &env.p.event,
            self.locale_of(env.p),
            &mut ctx,
            &mut mail,
            self.outbound.settings.max_message_bytes,
        )?;
        *root = root_after;
        Ok(queued)
    }

    /// The language a planned mail is written in.
    fn locale_of<'a>(&'a self, p: &'a Planned) -> &'a str {
        p.person
            .as_ref()
            .map(|x| x.locale.as_str())
            .unwrap_or(&self.settings.directory.helpdesk.locale)
    }

    /// One mail without its body, threaded: the ticket's root first in References (the first
    /// mail of a ticket becomes its root), then this recipient's earlier mails.
    fn thread_mail(
        &self,
        env: &Envelope<'_>,
        attachments: Vec<MailAttachment>,
        root: &mut Option<String>,
    ) -> (Mail, QueuedMail) {
        let Envelope {
            ticket,
            p,
            reply_to,
            earlier,
            now,
        } = *env;
        let dir = &self.settings.directory;
        let message_id = message::new_message_id(&ticket.reference, self.own_domain());
        // The first mail of a ticket becomes its root, once it is built.
        let root_id = root.clone().unwrap_or_else(|| message_id.clone());
        let mut references: Vec<String> = Vec::new();
        if root_id != message_id {
            references.push(root_id.clone());
            references.extend(earlier.iter().filter(|m| **m != root_id).cloned());
        }
        let in_reply_to = references.last().cloned();
        // One child block: deskmail does not know the times of the earlier mails, and Outlook
        // groups by the conversation part anyway.
        let depth = references.len().min(1);
        let mail = Mail {
            from_name: dir.helpdesk.name.clone(),
            from_address: dir.helpdesk.address.clone(),
            to: p.address.clone(),
            to_name: p
                .person
                .as_ref()
                .map(|x| x.name.clone())
                .unwrap_or_default(),
            reply_to: reply_to.to_string(),
            subject: ticket.subject.clone(),
            reference: ticket.reference.clone(),
            message_id: message_id.clone(),
            in_reply_to,
            references,
            thread_index: message::thread_index(&root_id, ticket.created_at, now, depth),
            date: now,
            body: Default::default(),
            attachments,
        };
        root.get_or_insert(root_id);
        let queued = QueuedMail {
            event: p.event.clone(),
            recipient: p.address.clone(),
            message_id,
            subject: message::subject_line(&ticket.reference, &ticket.subject),
            raw: Vec::new(),
        };
        (mail, queued)
    }

    /// Writes the mails; those in `late` get their messages before the commit.
    async fn insert_mails(
        &self,
        tx: &mut Tx,
        change: &Change<'_>,
        rows: &[QueuedMail],
        late: Vec<LateMessage>,
        unverified: bool,
    ) -> Result<(), DeskError> {
        let from = &self.settings.directory.helpdesk.address;
        let rows: Vec<NewOutboxRow<'_>> = rows
            .iter()
            .map(|m| NewOutboxRow {
                ticket_id: Some(change.ticket_id),
                event: &m.event,
                recipient: &m.recipient,
                envelope_from: from,
                message_id: &m.message_id,
                subject: &m.subject,
                raw: &m.raw,
                at: change.now,
                unverified,
            })
            .collect();
        if late.is_empty() {
            tx.insert_outbox(&rows).await?;
        } else {
            tx.insert_outbox_late(&rows, late).await?;
        }
        Ok(())
    }

    /// Tells the support team that a notification could not be delivered.
    pub(crate) async fn enqueue_failure(
        &self,
        tx: &mut Tx,
        rec: &TicketRecord,
        recipient: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), DeskError> {
        let (ticket_id, ticket) = (rec.id, &rec.ticket);
        let dir = &self.settings.directory;
        let team = dir.helpdesk.team_address.clone();
        let p = Planned {
            address: team.clone(),
            event: "delivery_failed".into(),
            include_comment: false,
            person: compose::recipient_person(dir, &team),
        };
        let effects = Effects::notice_only("delivery_failed", ticket, Vec::new());
        let system = self.system_person();
        let reply_to =
            self.outbound
                .key
                .reply_address(&dir.helpdesk.address, &ticket.reference, &team);
        let mut ctx = compose::context(ContextInput {
            dir,
            effects: &effects,
            planned: &p,
            actor: &system,
            unverified: false,
            comment_budget: 0,
            allowed: &[],
            reply_to: &reply_to,
            ask: Default::default(),
            attachments: Vec::new(),
            refusal: None,
            now,
            comment_action: "",
        });
        ctx.failure = Some(FailureCtx {
            recipient: recipient.to_string(),
            reason: reason.to_string(),
        });
        // The record was read in this transaction: its thread root is current.
        let mut root = rec.thread_root.clone();
        let had_root = root.is_some();
        let env = Envelope {
            ticket,
            p: &p,
            reply_to: &reply_to,
            earlier: &[],
            now,
        };
        match self.render_mail(&env, ctx, Vec::new(), &mut root) {
            Ok(mail) => {
                if !had_root && let Some(r) = &root {
                    tx.set_thread_root(ticket_id, r).await?;
                }
                let system = crate::workflow::Actor {
                    person: system,
                    proof: crate::workflow::Proof::System,
                };
                let change = Change {
                    ticket_id,
                    thread_root: root.as_deref(),
                    author: Author::new(&system),
                    inbound: None,
                    now,
                };
                self.insert_mails(tx, &change, &[mail], Vec::new(), false)
                    .await?;
            }
            Err(problem) => {
                tracing::warn!(ticket = %ticket.reference, error = %problem, "cannot write the delivery-failure notice");
            }
        }
        Ok(())
    }
}

impl Desk {
    /// Why deskmail never mails this address, if it does not: an address it receives at (it
    /// would mail itself) and those of mail systems (see `inbound::answerable`). The team's
    /// and the agent groups' addresses get their notifications.
    pub(crate) fn never_mailed(&self, address: &str) -> Option<&'static str> {
        let base = crate::inbound::plain_address(address);
        if self.reader.receiving.contains(&base) {
            return Some("an address the help desk receives at (it would mail itself)");
        }
        crate::inbound::answerable::role_address(address)
    }

    /// The support team, an agent, an agent group: never held back by the loop breaker.
    fn is_internal(&self, p: &Planned) -> bool {
        self.reader.is_own(&p.address)
            || matches!(
                &p.person,
                Some(Person {
                    party: Party::Agent,
                    ..
                })
            )
    }

    /// The domain of the help desk's address: its Message-IDs' right side.
    pub(super) fn own_domain(&self) -> &str {
        &self.reader.own_domain
    }
}

/// Who a change's notifications went to, and who was held back and why.
#[derive(Debug, Clone, Default)]
pub struct Mailed {
    pub to: Vec<String>,
    /// "not mailed to X: why", as the ticket's history records it.
    pub held: Vec<String>,
}

/// A rendered mail, ready for the outbox.
struct QueuedMail {
    event: String,
    recipient: String,
    message_id: String,
    subject: String,
    raw: Vec<u8>,
}

/// The attachments that go along (`going`, by [`compose::fitting`]).
fn mail_files(attachments: &[NewAttachment], going: &[bool]) -> Vec<MailAttachment> {
    attachments
        .iter()
        .zip(going)
        .filter(|(_, go)| **go)
        .map(|(a, _)| MailAttachment {
            filename: a.filename.clone(),
            content_type: a.content_type.clone(),
            content: a.content.clone(),
        })
        .collect()
}

/// The attachment lines of a mail: each file, and whether it goes along.
fn attachment_lines(attachments: &[NewAttachment], going: &[bool]) -> Vec<AttachmentCtx> {
    attachments
        .iter()
        .zip(going)
        .map(|(a, go)| AttachmentCtx {
            filename: a.filename.clone(),
            size_text: compose::size_text(a.content.len() as u64),
            attached: *go,
        })
        .collect()
}
