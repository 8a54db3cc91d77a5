//! Notifications written into the outbox inside the transaction of the change that causes them.

use jiff::{SignedDuration, Timestamp};

use super::{Desk, DeskError, NewAttachment};
use crate::directory::{Party, Person};
use crate::outbound::compose::{self, ContextInput, Planned};
use crate::outbound::message::{self, Mail, MailAttachment};
use crate::outbound::render::{AttachmentCtx, FailureCtx, MailContext, RefusalCtx};
use crate::store::{NewOutboxRow, Tx};
use crate::workflow::{Effects, Event, Ticket};

/// How many earlier Message-IDs a References header carries besides the root.
const MAX_REFERENCES: usize = 10;

impl Desk {
    /// Renders and queues the notifications of one change (public for the benchmark). Returns history lines for the mails
    /// that were not written (a failing address, the loop limit, a template error): nothing is
    /// skipped silently, and a notification problem never undoes the change itself.
    #[allow(clippy::too_many_arguments)]
    pub async fn enqueue(
        &self,
        tx: &mut Tx,
        ticket_id: i64,
        author: &Person,
        effects: &Effects,
        attachments: &[NewAttachment],
        refusal: Option<RefusalCtx>,
        now: Timestamp,
    ) -> Result<Vec<String>, DeskError> {
        let out = &self.outbound;
        let dir = &self.settings.directory;
        let wf = self.workflow_for(&effects.ticket)?;
        let planned = compose::plan(dir, effects, &author.address, out.settings.mail_author);
        let mut notes = Vec::new();
        let hour_ago = now - SignedDuration::from_hours(1);
        for p in planned {
            if let Some(reason) = tx.failing(&p.address).await? {
                notes.push(format!(
                    "not mailed to {}: the address fails ({reason})",
                    p.address
                ));
                continue;
            }
            // The loop breaker: two auto-responders must never mail each other without end. The
            // hourly limit per address spares the help desk's own addresses (a busy team gets
            // many); the limit per ticket applies to everyone.
            let own = matches!(
                &p.person,
                Some(Person {
                    party: Party::Agent,
                    ..
                })
            );
            let per_hour = if own {
                0
            } else {
                tx.recent_to(&p.address, hour_ago, None).await?
            };
            let per_thread = tx.recent_to(&p.address, hour_ago, Some(ticket_id)).await?;
            if per_hour >= out.settings.loop_limit_per_hour
                || per_thread >= out.settings.loop_limit_per_thread
            {
                notes.push(format!(
                    "not mailed to {}: loop limit ({per_hour} mails this hour, {per_thread} on this ticket)",
                    p.address
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
                allowed: &allowed,
                reply_to: &reply_to,
                ask,
                attachments: attachment_lines(attachments, out.settings.max_attachment_bytes),
                refusal: refusal.clone(),
                now,
                comment_action: &wf.comment.name,
            });
            let files: Vec<MailAttachment> = if p.include_comment {
                attachments
                    .iter()
                    .filter(|a| a.content.len() as u64 <= out.settings.max_attachment_bytes)
                    .map(|a| MailAttachment {
                        filename: a.filename.clone(),
                        content_type: a.content_type.clone(),
                        content: a.content.clone(),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            match self
                .queue_one(
                    tx,
                    ticket_id,
                    &effects.ticket,
                    &p,
                    &ctx,
                    &reply_to,
                    files,
                    now,
                )
                .await?
            {
                Ok(()) => {}
                Err(problem) => notes.push(format!("not mailed to {}: {problem}", p.address)),
            }
        }
        Ok(notes)
    }

    /// Renders one mail, threads it and writes it to the outbox. An `Err` inside the `Ok` is a
    /// rendering problem to record, not a reason to undo the change.
    #[allow(clippy::too_many_arguments)]
    async fn queue_one(
        &self,
        tx: &mut Tx,
        ticket_id: i64,
        ticket: &Ticket,
        p: &Planned,
        ctx: &MailContext,
        reply_to: &str,
        attachments: Vec<MailAttachment>,
        now: Timestamp,
    ) -> Result<Result<(), String>, DeskError> {
        let dir = &self.settings.directory;
        let locale = p
            .person
            .as_ref()
            .map(|x| x.locale.as_str())
            .unwrap_or(&dir.helpdesk.locale);
        let body = match self.outbound.templates.render(&p.event, locale, ctx) {
            Ok(b) => b,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let domain = dir
            .helpdesk
            .address
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or("localhost");
        let message_id = message::new_message_id(&ticket.reference, domain, &p.address);
        let root = match tx.thread_root(ticket_id).await? {
            Some(r) => r,
            None => {
                tx.set_thread_root(ticket_id, &message_id).await?;
                message_id.clone()
            }
        };
        let earlier = tx
            .thread_for(ticket_id, &p.address, MAX_REFERENCES as i64)
            .await?;
        let mut references: Vec<String> = Vec::new();
        if root != message_id {
            references.push(root.clone());
            references.extend(earlier.into_iter().filter(|m| *m != root));
        }
        let in_reply_to = references.last().cloned();
        let depth = references.len();
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
            thread_index: message::thread_index(&root, ticket.created_at, now, depth),
            date: now,
            body,
            attachments,
        };
        let raw = match message::build(&mail) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e.to_string())),
        };
        tx.insert_outbox(&NewOutboxRow {
            ticket_id: Some(ticket_id),
            event: &p.event,
            recipient: &p.address,
            envelope_from: &dir.helpdesk.address,
            message_id: &message_id,
            subject: &message::subject_line(&ticket.reference, &ticket.subject),
            raw: &raw,
            at: now,
        })
        .await?;
        Ok(Ok(()))
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
        if let Err(problem) = self
            .queue_one(tx, ticket_id, ticket, &p, &ctx, &reply_to, Vec::new(), now)
            .await?
        {
            tracing::warn!(ticket = %ticket.reference, error = %problem, "cannot write the delivery-failure notice");
        }
        Ok(())
    }
}

/// The attachment lines of a mail: each file, and whether it is small enough to go along.
fn attachment_lines(attachments: &[NewAttachment], max: u64) -> Vec<AttachmentCtx> {
    attachments
        .iter()
        .map(|a| AttachmentCtx {
            filename: a.filename.clone(),
            size_text: compose::size_text(a.content.len() as u64),
            attached: a.content.len() as u64 <= max,
        })
        .collect()
}
