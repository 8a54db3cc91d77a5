//! Notifications written into the outbox inside the transaction of the change that causes them.

use jiff::{SignedDuration, Timestamp};

use super::{Desk, DeskError, NewAttachment};
use crate::directory::{Party, Person};
use crate::outbound::compose::{self, ContextInput, Planned};
use crate::outbound::message::{self, Mail, MailAttachment};
use crate::outbound::render::{AttachmentCtx, FailureCtx, MailContext, RefusalCtx};
use std::collections::HashMap;

use crate::store::{EARLIER, NewOutboxRow, OutboxState, Tx};
use crate::workflow::{Effects, Event, Ticket};

/// One change whose notifications are to be written (see [`Desk::enqueue_many`]).
pub struct Change<'a> {
    pub ticket_id: i64,
    pub thread_root: Option<&'a str>,
    pub author: &'a Person,
    pub effects: &'a Effects,
    pub attachments: &'a [NewAttachment],
    pub refusal: Option<RefusalCtx>,
}

/// How many (ticket, recipient) pairs one lookup covers (SQLite allows 500 parts in a UNION).
const PAIRS_PER_LOOKUP: usize = 200;
/// Rows per insert statement.
const ROWS_PER_INSERT: usize = 200;

impl Desk {
    /// Renders and queues the notifications of one change. Returns history lines for the mails
    /// that were not written (a failing address, the loop limit, a template error): nothing is
    /// skipped silently, and a notification problem never undoes the change itself.
    #[allow(clippy::too_many_arguments)]
    pub async fn enqueue(
        &self,
        tx: &mut Tx,
        ticket_id: i64,
        thread_root: Option<&str>,
        author: &Person,
        effects: &Effects,
        attachments: &[NewAttachment],
        refusal: Option<RefusalCtx>,
        now: Timestamp,
    ) -> Result<Vec<String>, DeskError> {
        let change = Change {
            ticket_id,
            thread_root,
            author,
            effects,
            attachments,
            refusal,
        };
        Ok(self
            .enqueue_many(tx, &[change], now)
            .await?
            .pop()
            .unwrap_or_default())
    }

    /// Renders and queues the notifications of several changes written in one transaction
    /// (grouped commits): the store is asked once for what they need to know (threads, failing
    /// addresses, loop counts) and written once, however many mails they make. Returns each
    /// change's history lines for the mails not written.
    pub async fn enqueue_many(
        &self,
        tx: &mut Tx,
        changes: &[Change<'_>],
        now: Timestamp,
    ) -> Result<Vec<Vec<String>>, DeskError> {
        let out = &self.outbound;
        let dir = &self.settings.directory;
        let (hour_limit, thread_limit) = (
            out.settings.loop_limit_per_hour,
            out.settings.loop_limit_per_thread,
        );
        let planned: Vec<Vec<Planned>> = changes
            .iter()
            .map(|c| compose::plan(dir, c.effects, &c.author.address, out.settings.mail_author))
            .collect();
        // Who is asked about: every (ticket, recipient) pair; the hourly limit per address spares
        // the help desk's own addresses (a busy team gets many).
        let mut pairs: Vec<(i64, String)> = Vec::new();
        let mut outside: Vec<String> = Vec::new();
        for (c, ps) in changes.iter().zip(&planned) {
            for p in ps {
                let pair = (c.ticket_id, p.address.clone());
                if !pairs.contains(&pair) {
                    pairs.push(pair);
                }
                let own = matches!(
                    &p.person,
                    Some(Person {
                        party: Party::Agent,
                        ..
                    })
                );
                if !own && hour_limit > 0 && !outside.contains(&p.address) {
                    outside.push(p.address.clone());
                }
            }
        }
        let since = now - SignedDuration::from_hours(1);
        let mut state = OutboxState::default();
        for chunk in pairs.chunks(PAIRS_PER_LOOKUP) {
            let part = tx
                .outbox_state(chunk, &outside, thread_limit > 0, since)
                .await?;
            state.merge(part);
        }
        let mut roots: HashMap<i64, String> = HashMap::new();
        let mut new_roots: Vec<(i64, String)> = Vec::new();
        let mut rows: Vec<(i64, QueuedMail)> = Vec::new();
        let mut all_notes = Vec::new();
        for (c, ps) in changes.iter().zip(planned) {
            let mut notes = Vec::new();
            if ps.is_empty() {
                all_notes.push(notes);
                continue;
            }
            let wf = self.workflow_for(&c.effects.ticket)?;
            let mut root = roots
                .get(&c.ticket_id)
                .cloned()
                .or_else(|| c.thread_root.map(String::from));
            let had_root = root.is_some();
            for p in ps {
                let key = (c.ticket_id, p.address.clone());
                if let Some(reason) = state.failing.get(&p.address) {
                    notes.push(format!(
                        "not mailed to {}: the address fails ({reason})",
                        p.address
                    ));
                    continue;
                }
                // The loop breaker: two auto-responders must never mail each other without end.
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
                    state.per_hour.get(&p.address).copied().unwrap_or(0)
                };
                let per_thread = state.per_thread.get(&key).copied().unwrap_or(0);
                if (hour_limit > 0 && per_hour >= hour_limit)
                    || (thread_limit > 0 && per_thread >= thread_limit)
                {
                    notes.push(format!(
                        "not mailed to {}: loop limit ({per_hour} mails this hour, {per_thread} on this ticket)",
                        p.address
                    ));
                    continue;
                }
                let allowed = compose::allowed_for(&wf, dir, &c.effects.ticket, &p.person);
                let reply_to = out.key.reply_address(
                    &dir.helpdesk.address,
                    &c.effects.ticket.reference,
                    &p.address,
                );
                let ask = if p.event == Event::Resolved.as_str() {
                    compose::ask(&wf, &c.effects.ticket, &allowed)
                } else {
                    Default::default()
                };
                let ctx = compose::context(ContextInput {
                    dir,
                    effects: c.effects,
                    planned: &p,
                    actor: c.author,
                    allowed: &allowed,
                    reply_to: &reply_to,
                    ask,
                    attachments: attachment_lines(c.attachments, out.settings.max_attachment_bytes),
                    refusal: c.refusal.clone(),
                    now,
                    comment_action: &wf.comment.name,
                });
                let files = if p.include_comment {
                    mail_files(c.attachments, out.settings.max_attachment_bytes)
                } else {
                    Vec::new()
                };
                let earlier = state.earlier.get(&key).cloned().unwrap_or_default();
                match self.render_mail(
                    &c.effects.ticket,
                    &p,
                    &ctx,
                    &reply_to,
                    files,
                    &mut root,
                    &earlier,
                    now,
                ) {
                    Ok(mail) => {
                        // Later changes of the same group see this mail as already written.
                        let list = state.earlier.entry(key.clone()).or_default();
                        list.push(mail.message_id.clone());
                        if list.len() > EARLIER {
                            list.remove(0);
                        }
                        *state.per_thread.entry(key).or_default() += 1;
                        if !own {
                            *state.per_hour.entry(p.address.clone()).or_default() += 1;
                        }
                        rows.push((c.ticket_id, mail));
                    }
                    Err(problem) => notes.push(format!("not mailed to {}: {problem}", p.address)),
                }
            }
            if let Some(r) = &root {
                if !had_root {
                    new_roots.push((c.ticket_id, r.clone()));
                }
                roots.insert(c.ticket_id, r.clone());
            }
            all_notes.push(notes);
        }
        for (ticket_id, root) in &new_roots {
            tx.set_thread_root(*ticket_id, root).await?;
        }
        let from = &self.settings.directory.helpdesk.address;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let batch: Vec<NewOutboxRow<'_>> = chunk
                .iter()
                .map(|(ticket_id, m)| NewOutboxRow {
                    ticket_id: Some(*ticket_id),
                    event: &m.event,
                    recipient: &m.recipient,
                    envelope_from: from,
                    message_id: &m.message_id,
                    subject: &m.subject,
                    raw: &m.raw,
                    at: now,
                })
                .collect();
            tx.insert_outbox(&batch).await?;
        }
        Ok(all_notes)
    }

    /// Renders one mail and threads it: the ticket's root first in References (the first mail
    /// of a ticket becomes its root), then this recipient's earlier mails.
    #[allow(clippy::too_many_arguments)]
    fn render_mail(
        &self,
        ticket: &Ticket,
        p: &Planned,
        ctx: &MailContext,
        reply_to: &str,
        attachments: Vec<MailAttachment>,
        root: &mut Option<String>,
        earlier: &[String],
        now: Timestamp,
    ) -> Result<QueuedMail, String> {
        let dir = &self.settings.directory;
        let locale = p
            .person
            .as_ref()
            .map(|x| x.locale.as_str())
            .unwrap_or(&dir.helpdesk.locale);
        let body = self
            .outbound
            .templates
            .render(&p.event, locale, ctx)
            .map_err(|e| e.to_string())?;
        let domain = dir
            .helpdesk
            .address
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or("localhost");
        let message_id = message::new_message_id(&ticket.reference, domain);
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
            body,
            attachments,
        };
        let raw = message::build(&mail).map_err(|e| e.to_string())?;
        root.get_or_insert(root_id);
        Ok(QueuedMail {
            event: p.event.clone(),
            recipient: p.address.clone(),
            message_id,
            subject: message::subject_line(&ticket.reference, &ticket.subject),
            raw,
        })
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
        let mut root = tx.thread_root(ticket_id).await?;
        let had_root = root.is_some();
        match self.render_mail(ticket, &p, &ctx, &reply_to, Vec::new(), &mut root, &[], now) {
            Ok(mail) => {
                if !had_root && let Some(r) = &root {
                    tx.set_thread_root(ticket_id, r).await?;
                }
                let from = &self.settings.directory.helpdesk.address;
                tx.insert_outbox(&[NewOutboxRow {
                    ticket_id: Some(ticket_id),
                    event: &mail.event,
                    recipient: &mail.recipient,
                    envelope_from: from,
                    message_id: &mail.message_id,
                    subject: &mail.subject,
                    raw: &mail.raw,
                    at: now,
                }])
                .await?;
            }
            Err(problem) => {
                tracing::warn!(ticket = %ticket.reference, error = %problem, "cannot write the delivery-failure notice");
            }
        }
        Ok(())
    }
}

/// A rendered mail, ready for the outbox.
struct QueuedMail {
    event: String,
    recipient: String,
    message_id: String,
    subject: String,
    raw: Vec<u8>,
}

/// The attachments small enough to go along.
fn mail_files(attachments: &[NewAttachment], max: u64) -> Vec<MailAttachment> {
    attachments
        .iter()
        .filter(|a| a.content.len() as u64 <= max)
        .map(|a| MailAttachment {
            filename: a.filename.clone(),
            content_type: a.content_type.clone(),
            content: a.content.clone(),
        })
        .collect()
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
