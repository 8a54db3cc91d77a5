//! Notifications written into the outbox inside the transaction of the change that causes them.

use jiff::{SignedDuration, Timestamp};

use super::late_render::Job;
use super::{Author, Desk, DeskError, NewAttachment};
use crate::directory::{Party, Person};
use crate::outbound::compose::{self, ContextInput, Planned};
use crate::outbound::message::{self, Mail, MailAttachment};
use crate::outbound::render::{AttachmentCtx, FailureCtx, MailContext, RefusalCtx};
use crate::store::{LateMessage, NewOutboxRow, Tx, count_key};
use crate::workflow::{Effects, Event, Ticket};

impl Desk {
    /// Renders and queues the notifications of one change (public for the benchmark). Returns
    /// history lines for the mails that were not written (a failing address, the loop limit, a
    /// template error): nothing is skipped silently, and a notification problem never undoes
    /// the change itself. The store is asked twice per change, however many mails it makes: one
    /// lookup (thread, failing addresses, recent counts) and one insert.
    #[allow(clippy::too_many_arguments)]
    pub async fn enqueue(
        &self,
        tx: &mut Tx,
        ticket_id: i64,
        thread_root: Option<&str>,
        by: Author<'_>,
        effects: &Effects,
        attachments: &[NewAttachment],
        refusal: Option<RefusalCtx>,
        now: Timestamp,
    ) -> Result<Mailed, DeskError> {
        let out = &self.outbound;
        let dir = &self.settings.directory;
        let actor = by.actor;
        let author = &actor.person;
        let planned = compose::plan(dir, effects, &author.address, out.settings.mail_author);
        let mut mailed = Mailed::default();
        if planned.is_empty() {
            return Ok(mailed);
        }
        let wf = self.workflow_for(&effects.ticket)?;
        let (hour_limit, thread_limit) = (
            out.settings.loop_limit_per_hour,
            out.settings.loop_limit_per_thread,
        );
        // The loop breaker holds back mail to outside addresses only: the support team, agents
        // and agent groups hear of every change. It counts the mails an unverified sender
        // caused apart from the others: forged mail cannot use up what a verified reply needs.
        let unverified = !actor.verified();
        let outside: Vec<String> = planned
            .iter()
            .filter(|p| !self.is_internal(p))
            .map(|p| p.address.clone())
            .collect();
        let addresses: Vec<String> = planned.iter().map(|p| p.address.clone()).collect();
        let state = tx
            .outbox_state(
                ticket_id,
                &addresses,
                if hour_limit > 0 { &outside } else { &[] },
                thread_limit > 0,
                now - SignedDuration::from_hours(1),
            )
            .await?;
        // Every notification of the change stays within `max_message_bytes`: the comment is
        // cut to its budget, and the attachments that would not fit are named instead.
        let max_message = out.settings.max_message_bytes;
        let comment_budget = compose::comment_budget(max_message);
        let comment_len = effects.comment.as_ref().map_or(0, |c| c.text.len());
        let text_bound = compose::text_bound(comment_len.min(comment_budget));
        let going = compose::fitting(
            attachments.iter().map(|a| a.content.len() as u64),
            out.settings.max_attachment_bytes,
            max_message.saturating_sub(text_bound),
        );
        // A message that may outgrow one piece is written a piece at a time (store/pieces.rs),
        // which filling in a late message would not do: it is rendered in place.
        let fits_a_piece = text_bound <= crate::store::PIECE as u64;
        let mut notes = Vec::new();
        let mut rows: Vec<QueuedMail> = Vec::new();
        let mut late: Vec<LateMessage> = Vec::new();
        let mut root = thread_root.map(String::from);
        for p in planned {
            let quiet = by.quiet.filter(|_| p.address == author.address);
            if let Some(why) = quiet.or_else(|| self.never_mailed(&p.address)) {
                notes.push(format!("not mailed to {}: {why}", p.address));
                continue;
            }
            if let Some(reason) = state.failing.get(&p.address) {
                notes.push(format!(
                    "not mailed to {}: the address fails ({reason})",
                    p.address
                ));
                continue;
            }
            // The loop breaker: two auto-responders must never mail each other without end.
            let key = count_key(&p.address, unverified);
            let per_hour = state.per_hour.get(&key).copied().unwrap_or(0);
            let per_thread = state.per_thread.get(&key).copied().unwrap_or(0);
            if outside.contains(&p.address)
                && ((hour_limit > 0 && per_hour >= hour_limit)
                    || (thread_limit > 0 && per_thread >= thread_limit))
            {
                notes.push(format!(
                    "not mailed to {}: loop limit ({per_hour} mails this hour, {per_thread} on this ticket{})",
                    p.address,
                    if unverified { ", from unverified senders" } else { "" }
                ));
                continue;
            }
            let allowed = compose::allowed_for(&wf, dir, &effects.ticket, &p.person);
            let reply_to =
                out.key
                    .reply_address(&dir.helpdesk.address, &effects.ticket.reference, &p.address);
            let ask = if p.event == Event::Resolved.as_str() {
                compose::ask(&wf, &effects.ticket, &allowed)
            } else {
                Default::default()
            };
            let ctx = compose::context(ContextInput {
                dir,
                effects,
                planned: &p,
                actor: author,
                unverified,
                comment_budget,
                allowed: &allowed,
                reply_to: &reply_to,
                ask,
                attachments: attachment_lines(attachments, &going),
                refusal: refusal.clone(),
                now,
                comment_action: &wf.comment.name,
            });
            let files = if p.include_comment {
                mail_files(attachments, &going)
            } else {
                Vec::new()
            };
            let earlier = state
                .earlier
                .get(&p.address)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            // A "not done" notice is rendered in place: the sender's report says it is queued. So
            // is a mail that carries files or may outgrow a piece.
            let elsewhere = self
                .late_renderer
                .as_ref()
                .filter(|_| refusal.is_none() && files.is_empty() && fits_a_piece);
            if let Some(renderer) = elsewhere {
                let (mail, queued) = self.thread_mail(
                    &effects.ticket,
                    &p,
                    &reply_to,
                    files,
                    &mut root,
                    earlier,
                    now,
                );
                let (done, made) = tokio::sync::oneshot::channel();
                let job = Job {
                    event: p.event.clone(),
                    locale: self.locale_of(&p).to_string(),
                    ctx,
                    mail,
                    max: max_message,
                    done,
                };
                if let Err(job) = renderer.render(job) {
                    // The thread is gone: made here instead.
                    job.run(&self.outbound.templates);
                }
                late.push(LateMessage {
                    message_id: queued.message_id.clone(),
                    made,
                    ticket_id,
                    recipient: p.address.clone(),
                    actor: author.address.clone(),
                    action: effects.action.clone(),
                    at: now,
                });
                rows.push(queued);
                continue;
            }
            match self.render_mail(
                &effects.ticket,
                &p,
                ctx,
                &reply_to,
                files,
                &mut root,
                earlier,
                now,
            ) {
                Ok(mail) => rows.push(mail),
                Err(problem) => notes.push(format!("not mailed to {}: {problem}", p.address)),
            }
        }
        if thread_root.is_none()
            && let Some(r) = &root
        {
            tx.set_thread_root(ticket_id, r).await?;
        }
        self.insert_mails(tx, ticket_id, &rows, late, unverified, now)
            .await?;
        mailed.to = rows.into_iter().map(|r| r.recipient).collect();
        mailed.held = notes;
        Ok(mailed)
    }

    /// Renders one mail and threads it (see [`Desk::thread_mail`]).
    #[allow(clippy::too_many_arguments)]
    fn render_mail(
        &self,
        ticket: &Ticket,
        p: &Planned,
        mut ctx: MailContext,
        reply_to: &str,
        attachments: Vec<MailAttachment>,
        root: &mut Option<String>,
        earlier: &[String],
        now: Timestamp,
    ) -> Result<QueuedMail, String> {
        let mut root_after = root.clone();
        let (mut mail, mut queued) = self.thread_mail(
            ticket,
            p,
            reply_to,
            attachments,
            &mut root_after,
            earlier,
            now,
        );
        queued.raw = super::late_render::make(
            &self.outbound.templates,
            &p.event,
            self.locale_of(p),
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
    #[allow(clippy::too_many_arguments)]
    fn thread_mail(
        &self,
        ticket: &Ticket,
        p: &Planned,
        reply_to: &str,
        attachments: Vec<MailAttachment>,
        root: &mut Option<String>,
        earlier: &[String],
        now: Timestamp,
    ) -> (Mail, QueuedMail) {
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
        ticket_id: i64,
        rows: &[QueuedMail],
        late: Vec<LateMessage>,
        unverified: bool,
        now: Timestamp,
    ) -> Result<(), DeskError> {
        let from = &self.settings.directory.helpdesk.address;
        let rows: Vec<NewOutboxRow<'_>> = rows
            .iter()
            .map(|m| NewOutboxRow {
                ticket_id: Some(ticket_id),
                event: &m.event,
                recipient: &m.recipient,
                envelope_from: from,
                message_id: &m.message_id,
                subject: &m.subject,
                raw: &m.raw,
                at: now,
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
        ticket_id: i64,
        ticket: &Ticket,
        recipient: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), DeskError> {
        let dir = &self.settings.directory;
        let team = dir.helpdesk.team_address.clone();
        let p = Planned {
            address: team.clone(),
            event: "delivery_failed".into(),
            include_comment: false,
            person: compose::recipient_person(dir, &team),
        };
        let effects = Effects {
            action: "delivery_failed".into(),
            ticket: ticket.clone(),
            previous_status: None,
            comment: None,
            notices: Vec::new(),
            history: Vec::new(),
            merge_into: None,
        };
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
        let mut root = tx.thread_root(ticket_id).await?;
        let had_root = root.is_some();
        match self.render_mail(ticket, &p, ctx, &reply_to, Vec::new(), &mut root, &[], now) {
            Ok(mail) => {
                if !had_root && let Some(r) = &root {
                    tx.set_thread_root(ticket_id, r).await?;
                }
                self.insert_mails(tx, ticket_id, &[mail], Vec::new(), false, now)
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
    fn own_domain(&self) -> &str {
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

/// Characters of an incoming mail's subject a refusal repeats, at most.
const REFUSAL_SUBJECT_CHARS: usize = 100;

/// A mail to someone whose mail could not become a ticket at all.
pub(crate) struct RefusedMail<'a> {
    pub to: &'a str,
    /// The subject of their mail.
    pub subject: &'a str,
    pub reason: &'a str,
    /// Their mail's Message-ID, so that the answer threads with it.
    pub in_reply_to: Option<&'a str>,
}

impl Desk {
    /// Tells the author of a mail that could not become a ticket (no ticket to thread with):
    /// at most once a day per address. Returns whether a mail was queued.
    pub(crate) async fn enqueue_refused(
        &self,
        tx: &mut Tx,
        r: &RefusedMail<'_>,
        now: Timestamp,
    ) -> Result<bool, DeskError> {
        use crate::outbound::render::{ActorCtx, HelpdeskCtx, RecipientCtx, TicketCtx};
        if tx
            .outbox_count_since(r.to, "refused", now - SignedDuration::from_hours(24))
            .await?
            > 0
        {
            return Ok(false);
        }
        let dir = &self.settings.directory;
        let person = compose::recipient_person(dir, r.to);
        let (locale, tz) = person
            .as_ref()
            .map(|p| (p.locale.clone(), p.time_zone.clone()))
            .unwrap_or_else(|| (dir.helpdesk.locale.clone(), dir.helpdesk.time_zone.clone()));
        let when = compose::local_time(now, &tz, &locale);
        let ctx = MailContext {
            helpdesk: HelpdeskCtx {
                name: dir.helpdesk.name.clone(),
                address: dir.helpdesk.address.clone(),
            },
            ticket: TicketCtx {
                reference: String::new(),
                subject: crate::inbound::bounds::cut_chars(r.subject, REFUSAL_SUBJECT_CHARS),
                status: String::new(),
                previous_status: None,
                organisation: None,
                requester: r.to.to_string(),
                partner: None,
                linked_to: None,
                created: when.clone(),
                status_since: when.clone(),
            },
            event: "refused".into(),
            recipient: RecipientCtx {
                address: r.to.to_string(),
                name: person.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
                locale: locale.clone(),
                is_requester: true,
            },
            actor: ActorCtx {
                name: dir.helpdesk.name.clone(),
                address: dir.helpdesk.address.clone(),
                role: "agent".into(),
                unverified: false,
            },
            comment: None,
            comment_rest: None,
            attachments: Vec::new(),
            actions: Vec::new(),
            ask: Default::default(),
            refusal: Some(RefusalCtx {
                action: String::new(),
                reason: r.reason.to_string(),
                comment_kept: false,
            }),
            failure: None,
            when,
        };
        let body = match self.outbound.templates.render("refused", &locale, &ctx) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(to = %r.to, error = %e, "cannot render the refusal");
                return Ok(false);
            }
        };
        let message_id = message::new_message_id("refused", self.own_domain());
        let parent = r.in_reply_to.filter(|p| message::is_message_id(p));
        // Nothing of the incoming mail is repeated beyond the start of its subject: a forged
        // From must not make deskmail carry a stranger's text to anyone.
        let subject = format!(
            "Re: {}",
            crate::inbound::bounds::cut_chars(r.subject, REFUSAL_SUBJECT_CHARS)
        );
        let mail = Mail {
            from_name: dir.helpdesk.name.clone(),
            from_address: dir.helpdesk.address.clone(),
            to: r.to.to_string(),
            to_name: person.map(|p| p.name).unwrap_or_default(),
            reply_to: dir.helpdesk.address.clone(),
            subject: subject.clone(),
            reference: String::new(),
            message_id: message_id.clone(),
            in_reply_to: parent.map(String::from),
            references: parent.map(String::from).into_iter().collect(),
            thread_index: message::thread_index(parent.unwrap_or(&message_id), now, now, 0),
            date: now,
            body,
            attachments: Vec::new(),
        };
        let raw = match message::build(&mail) {
            Ok(raw) => raw,
            Err(e) => {
                tracing::warn!(to = %r.to, error = %e, "cannot build the refusal");
                return Ok(false);
            }
        };
        tx.insert_outbox(&[NewOutboxRow {
            ticket_id: None,
            event: "refused",
            recipient: r.to,
            envelope_from: &dir.helpdesk.address,
            message_id: &message_id,
            subject: &message::subject_line("", &subject),
            raw: &raw,
            at: now,
            unverified: false,
        }])
        .await?;
        Ok(true)
    }
}
