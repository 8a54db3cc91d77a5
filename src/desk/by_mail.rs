//! What a mail does, by kind: a person's reply comments or commands on its ticket, a person's
//! first mail opens one, a bounce marks a failing address, an auto-reply is noted on its ticket
//! and changes nothing. Runs inside the transaction of `desk::ingest`.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use super::ingest::{Decided, MailReport, Status};
use super::notify::RefusedMail;
use super::{CreateRequest, Desk, DeskError, NewAttachment, Outcome};
use crate::config::UnverifiedPolicy;
use crate::inbound::{self, MatchedBy, Reading, classify::strip_prefixes};
use crate::outbound::render::RefusalCtx;
use crate::store::{NewHistoryRow, TicketRecord, Tx};
use crate::workflow::{
    Actor, Audience, Effects, Event, Intent, Notice, Refusal, Visibility, rules::plus_part,
};

impl Desk {
    /// A person's mail: a reply to a ticket, or a new request.
    pub(crate) async fn person_mail(
        &self,
        tx: &mut Tx,
        id: i64,
        reading: &Reading,
        mailbox: Option<&str>,
        report: &mut MailReport,
        now: Timestamp,
    ) -> Result<Decided, DeskError> {
        let sender = &reading.sender;
        let Some(person) = sender.person.clone() else {
            return self.refuse_unknown(tx, reading, report, now).await;
        };
        let actor = Actor {
            person,
            verified: sender.verified.is_some(),
        };
        // Mail in an agent's name can speak to customers with the help desk's voice: it must be
        // proven.
        if !actor.verified && actor.is_agent() {
            report.decision = format!(
                "refused: mail in the name of agent {} that could not be verified (no reply token, no passing authentication)",
                actor.address()
            );
            return Ok(refused());
        }
        if !actor.verified && self.settings.inbound.unverified == UnverifiedPolicy::Refuse {
            report.decision =
                "refused: the sender could not be verified ([inbound] unverified = \"refuse\")"
                    .into();
            return Ok(refused());
        }
        match self.find_ticket(tx, reading, Some(&actor), report).await? {
            Some(rec) => self.reply(tx, id, reading, &actor, rec, report, now).await,
            None => {
                self.open_ticket(tx, id, reading, mailbox, &actor, report, now)
                    .await
            }
        }
    }

    /// The ticket a mail belongs to (see `inbound::matching`). A ticket `actor` may not see is
    /// no match: it is noted for the admin and not revealed to the sender.
    async fn find_ticket(
        &self,
        tx: &mut Tx,
        reading: &Reading,
        actor: Option<&Actor>,
        report: &mut MailReport,
    ) -> Result<Option<TicketRecord>, DeskError> {
        let c = &reading.candidates;
        // Tried in order, each looked up only when the ones before named no ticket the sender
        // may see: the token, the Message-IDs, the subject tags, the footer.
        let mut tried: Vec<(String, MatchedBy)> = Vec::new();
        if let Some(r) = &c.token {
            tried.push((r.clone(), MatchedBy::Token));
        }
        let mut stage = 0;
        let mut k = 0;
        loop {
            if k == tried.len() {
                stage += 1;
                match stage {
                    1 if !c.message_ids.is_empty() => {
                        let found = tx.tickets_by_message_ids(&c.message_ids).await?;
                        // In-Reply-To first, then References from the newest.
                        if let Some((_, r)) = c
                            .message_ids
                            .iter()
                            .find_map(|id| found.iter().find(|(m, _)| m == id))
                        {
                            tried.push((r.clone(), MatchedBy::References));
                        }
                    }
                    2 => tried.extend(c.subject.iter().map(|r| (r.clone(), MatchedBy::Subject))),
                    3 => {
                        let footer =
                            crate::inbound::matching::footer(&reading.mail, &self.reader.finder);
                        tried.extend(footer.into_iter().map(|r| (r, MatchedBy::Footer)));
                    }
                    1 => {}
                    _ => break,
                }
                continue;
            }
            let (reference, by) = tried[k].clone();
            k += 1;
            let Some(rec) = tx.ticket_for_update(&reference).await? else {
                continue;
            };
            if actor.is_some_and(|a| !a.can_see(&rec.ticket)) {
                tracing::info!(ticket = %reference, by = by.as_str(), "names a ticket the sender may not see: no match");
                report.notes.push(format!(
                    "{} names {reference}, which the sender may not see: not matched",
                    by.as_str()
                ));
                continue;
            }
            report.ticket = Some(rec.ticket.reference.clone());
            report.matched_by = by.as_str();
            return Ok(Some(rec));
        }
        Ok(None)
    }

    /// A reply to a ticket: its new text becomes a comment, its command (if any, if allowed) an
    /// action. A command that is not done leaves the comment in place and earns the sender a
    /// "not done" notice.
    #[allow(clippy::too_many_arguments)]
    async fn reply(
        &self,
        tx: &mut Tx,
        id: i64,
        reading: &Reading,
        actor: &Actor,
        rec: TicketRecord,
        report: &mut MailReport,
        now: Timestamp,
    ) -> Result<Decided, DeskError> {
        let dir = &self.settings.directory;
        let wf = self.workflow_for(&rec.ticket)?;
        let reply = inbound::reply(reading, &self.reader, &wf, dir);
        let cmds = &reply.commands;
        report.text = Some(cmds.comment.clone());
        report.commands = cmds.command.iter().map(|c| c.action.clone()).collect();
        report.command_problem = cmds.problem.as_ref().map(|p| p.refusal().to_string());
        report.fields = cmds.fields.clone();
        let internal = cmds.internal_marker && actor.is_agent();
        let attachments = attachments_of(reading);
        let mut comment = cmds.comment.clone();
        if comment.is_empty() && !attachments.is_empty() {
            let names: Vec<&str> = attachments.iter().map(|a| a.filename.as_str()).collect();
            comment = format!("[{}]", names.join(", "));
        }
        let reference = rec.ticket.reference.clone();
        // What was asked for that is not done: (as written, why).
        let mut not_done: Option<(String, Refusal)> =
            cmds.problem.as_ref().map(|p| (p.written(), p.refusal()));
        let mut wanted: Option<(String, Intent)> = None;
        if not_done.is_none() {
            let optional = |c: &str| (!c.is_empty()).then(|| c.to_string());
            match &cmds.command {
                Some(cmd) if !actor.verified => {
                    not_done = Some((
                        cmd.written.clone(),
                        Refusal::NotVerified {
                            action: cmd.action.clone(),
                        },
                    ));
                }
                Some(cmd) => {
                    wanted = Some((
                        cmd.written.clone(),
                        Intent::Act {
                            action: cmd.action.clone(),
                            comment: optional(&comment),
                            internal,
                            fields: cmds.fields.clone(),
                        },
                    ));
                }
                None if !cmds.fields.is_empty() && !actor.verified => {
                    let names: Vec<&str> = cmds.fields.keys().map(String::as_str).collect();
                    not_done = Some((
                        names.join(", "),
                        Refusal::NotVerified {
                            action: format!("setting {}", names.join(", ")),
                        },
                    ));
                }
                None if !cmds.fields.is_empty() => {
                    wanted = Some((
                        wf.comment.name.clone(),
                        Intent::Act {
                            action: wf.comment.name.clone(),
                            comment: optional(&comment),
                            internal,
                            fields: cmds.fields.clone(),
                        },
                    ));
                }
                None => {}
            }
        }
        let comment_only = Intent::Comment {
            text: comment.clone(),
            internal,
        };
        let attempt = match &wanted {
            Some((_, intent)) => intent,
            None => &comment_only,
        };
        let mut outcome = self
            .act_in(tx, &reference, actor, attempt, &attachments, Some(id), now)
            .await?;
        if let (Outcome::Rejected(r), Some((written, _))) = (&outcome, &wanted) {
            // The command is refused: the comment still goes on the ticket.
            not_done = Some((written.clone(), r.reason.clone()));
            if !comment.is_empty() {
                outcome = self
                    .act_in(
                        tx,
                        &reference,
                        actor,
                        &comment_only,
                        &attachments,
                        Some(id),
                        now,
                    )
                    .await?;
            }
        }
        let mut decided = Decided {
            status: Status::Applied,
            ticket_id: Some(rec.id),
        };
        let mut comment_kept = false;
        match &outcome {
            Outcome::Applied { effects, .. } => {
                comment_kept = effects.comment.is_some();
                report.decision = describe(effects, &self.settings.directory);
            }
            Outcome::FollowedUp { closed, reference } => {
                report.decision =
                    format!("{closed} is closed: the reply opened follow-up ticket {reference}");
                report.ticket = Some(reference.clone());
            }
            Outcome::Rejected(r) => {
                decided.status = Status::Refused;
                report.decision = format!("refused: {r}");
                // An empty reply is no request: nobody is told.
                if not_done.is_none() && r.reason != Refusal::EmptyComment {
                    not_done = Some((wf.comment.name.clone(), r.reason.clone()));
                }
            }
        }
        if let Some((written, refusal)) = &not_done {
            if decided.status == Status::Applied {
                report.decision = format!("{}; not done: {written}: {refusal}", report.decision);
            }
            self.not_done(
                tx,
                id,
                actor,
                &reference,
                written,
                refusal,
                comment_kept,
                report,
                now,
            )
            .await?;
        }
        if decided.status == Status::Applied {
            let current = report.ticket.clone().unwrap_or(reference);
            self.add_watchers(tx, id, reading, actor, &current, report, now)
                .await?;
        }
        Ok(decided)
    }

    /// Tells the sender what was not done and what they can do instead: at most once per
    /// address, ticket and reason a day, so that a misconfigured client cannot start a loop.
    #[allow(clippy::too_many_arguments)]
    async fn not_done(
        &self,
        tx: &mut Tx,
        id: i64,
        actor: &Actor,
        reference: &str,
        written: &str,
        refusal: &Refusal,
        comment_kept: bool,
        report: &mut MailReport,
        now: Timestamp,
    ) -> Result<(), DeskError> {
        let Some(rec) = tx.ticket_for_update(reference).await? else {
            return Ok(());
        };
        let detail = format!("{} to {}", refusal.code(), actor.address());
        if tx
            .history_since(
                rec.id,
                "not_done",
                &detail,
                now - SignedDuration::from_hours(24),
            )
            .await?
        {
            report
                .notes
                .push("the \"not done\" notice went out today already: not sent again".into());
            return Ok(());
        }
        tx.insert_history(&NewHistoryRow {
            ticket_id: rec.id,
            actor: actor.address(),
            action: written,
            kind: "not_done",
            detail: &detail,
            inbound_id: Some(id),
            at: now,
        })
        .await?;
        let effects = Effects {
            action: "not_done".into(),
            ticket: rec.ticket.clone(),
            previous_status: None,
            comment: None,
            notices: vec![Notice {
                event: Event::NotDone,
                audience: Audience::Person(actor.address().to_string()),
            }],
            history: Vec::new(),
            merge_into: None,
        };
        let refusal_ctx = RefusalCtx {
            action: written.to_string(),
            reason: crate::outbound::refusal_text::describe(refusal, &actor.person.locale),
            comment_kept,
        };
        let notes = self
            .enqueue(
                tx,
                rec.id,
                rec.thread_root.as_deref(),
                &actor.person,
                &effects,
                &[],
                Some(refusal_ctx),
                now,
            )
            .await?;
        report.notes.extend(notes);
        report.notes.push(format!(
            "\"not done\" notice queued for {}",
            actor.address()
        ));
        Ok(())
    }

    /// People copied (Cc) who are in the directory and may see the ticket become its watchers;
    /// the others are only noted.
    #[allow(clippy::too_many_arguments)]
    async fn add_watchers(
        &self,
        tx: &mut Tx,
        id: i64,
        reading: &Reading,
        actor: &Actor,
        reference: &str,
        report: &mut MailReport,
        now: Timestamp,
    ) -> Result<(), DeskError> {
        let dir = &self.settings.directory;
        let copied: Vec<&str> = reading
            .mail
            .cc
            .iter()
            .map(|m| m.address.as_str())
            .filter(|a| *a != actor.address() && !self.is_own_address(a))
            .collect();
        if copied.is_empty() {
            return Ok(());
        }
        let Some(mut rec) = tx.ticket_for_update(reference).await? else {
            return Ok(());
        };
        let mut added = Vec::new();
        for address in copied {
            if rec.ticket.requester == address || rec.ticket.watchers.iter().any(|w| w == address) {
                continue;
            }
            let may_see = dir.person(address).is_some_and(|person| {
                Actor {
                    person,
                    verified: false,
                }
                .can_see(&rec.ticket)
            });
            if may_see {
                rec.ticket.watchers.push(address.to_string());
                added.push(address.to_string());
            } else {
                report.notes.push(format!(
                    "Cc {address}: not in the directory or may not see the ticket: not a watcher"
                ));
            }
        }
        if added.is_empty() {
            return Ok(());
        }
        tx.update_ticket(rec.id, &rec.ticket).await?;
        for a in &added {
            tx.insert_history(&NewHistoryRow {
                ticket_id: rec.id,
                actor: actor.address(),
                action: "watch",
                kind: "watcher",
                detail: &format!("{a} added (copied on a mail)"),
                inbound_id: Some(id),
                at: now,
            })
            .await?;
            report.notes.push(format!("Cc {a} is now a watcher"));
        }
        Ok(())
    }

    /// Is this one of the help desk's own addresses (receiving, team, agent groups)?
    fn is_own_address(&self, address: &str) -> bool {
        let dir = &self.settings.directory;
        let base = match address.split_once('@') {
            Some((local, domain)) => {
                format!("{}@{domain}", local.split('+').next().unwrap_or(local))
            }
            None => address.to_string(),
        };
        self.reader.receiving.contains(&base)
            || base == dir.helpdesk.team_address
            || dir.groups.iter().any(|g| g.address == base)
    }

    /// A person's mail that names no ticket they may see: a new request.
    #[allow(clippy::too_many_arguments)]
    async fn open_ticket(
        &self,
        tx: &mut Tx,
        id: i64,
        reading: &Reading,
        mailbox: Option<&str>,
        actor: &Actor,
        report: &mut MailReport,
        now: Timestamp,
    ) -> Result<Decided, DeskError> {
        let request = inbound::request(reading, &self.settings.workflow);
        let mut fields = request.commands.fields.clone();
        let to = self.receiving_address(reading, mailbox);
        self.plus_fields(to.as_deref(), &mut fields, report);
        let (subject, tagged_type) = self.subject_and_type(&reading.mail.subject);
        if let Some(t) = tagged_type {
            fields.entry("request_type".into()).or_insert(t);
        }
        report.text = Some(request.commands.comment.clone());
        report.fields = fields.clone();
        let req = CreateRequest {
            subject,
            text: request.commands.comment.clone(),
            fields,
            to_address: to,
            source: "mail".into(),
            attachments: attachments_of(reading),
            thread_root: reading.mail.message_id.clone(),
        };
        match self.create_in(tx, actor, &req, None, Some(id), now).await? {
            Outcome::Applied { reference, effects } => {
                report.ticket = Some(reference.clone());
                report.decision = format!(
                    "new ticket {reference} ({}); {}",
                    effects.ticket.status,
                    describe(&effects, &self.settings.directory)
                );
                let ticket_id = tx.ticket_for_update(&reference).await?.map(|r| r.id);
                self.add_watchers(tx, id, reading, actor, &reference, report, now)
                    .await?;
                Ok(Decided {
                    status: Status::Applied,
                    ticket_id,
                })
            }
            Outcome::Rejected(r) => {
                report.decision = format!("refused: {}", r.reason);
                let reason =
                    crate::outbound::refusal_text::describe(&r.reason, &actor.person.locale);
                if self
                    .enqueue_refused(
                        tx,
                        &RefusedMail {
                            to: actor.address(),
                            subject: &reading.mail.subject,
                            reason: &reason,
                            in_reply_to: reading.mail.message_id.as_deref(),
                        },
                        now,
                    )
                    .await?
                {
                    report.notes.push("the sender was told why".into());
                }
                Ok(refused())
            }
            Outcome::FollowedUp { reference, .. } => {
                report.ticket = Some(reference);
                Ok(Decided {
                    status: Status::Applied,
                    ticket_id: None,
                })
            }
        }
    }

    /// The address the mail was sent to that deskmail receives at (plus-part kept): the
    /// envelope's first, then To and Cc; the mailbox's own when none is.
    fn receiving_address(&self, reading: &Reading, mailbox: Option<&str>) -> Option<String> {
        let ours = |a: &str| {
            let Some((local, domain)) = a.split_once('@') else {
                return false;
            };
            let base = format!("{}@{domain}", local.split('+').next().unwrap_or(local));
            self.reader.receiving.contains(&base)
        };
        let m = &reading.mail;
        m.envelope_to
            .iter()
            .map(String::as_str)
            .chain(m.to.iter().map(|x| x.address.as_str()))
            .chain(m.cc.iter().map(|x| x.address.as_str()))
            .find(|a| ours(a) && !a.contains(&format!("+{}", crate::outbound::token::PREFIX)))
            .map(String::from)
            .or_else(|| {
                mailbox.and_then(|name| {
                    self.settings
                        .mailboxes
                        .iter()
                        .find(|mb| mb.name == name)
                        .map(|mb| mb.address.clone())
                })
            })
    }

    /// Fields from the receiving address's plus-part (`support+bug@`), from the mailbox's table.
    /// A plus-part neither the table nor the workflow's rules know falls back to the mailbox's
    /// defaults, and is noted.
    fn plus_fields(
        &self,
        to: Option<&str>,
        fields: &mut BTreeMap<String, String>,
        report: &mut MailReport,
    ) {
        let Some(to) = to else { return };
        let Some(plus) = plus_part(to).map(str::to_lowercase) else {
            return;
        };
        let mailbox = self.settings.mailbox_for(to);
        if let Some(f) = mailbox.and_then(|m| m.plus.get(&plus)) {
            for (k, v) in [("request_type", &f.request_type), ("queue", &f.queue)] {
                if let Some(v) = v {
                    fields.entry(k.into()).or_insert_with(|| v.clone());
                }
            }
            return;
        }
        let by_rules = self
            .settings
            .workflow
            .rules
            .iter()
            .any(|r| r.when.to_plus.iter().any(|p| p.eq_ignore_ascii_case(&plus)));
        if !by_rules {
            tracing::warn!(address = %to, plus = %plus, "unknown plus-part: the mailbox's defaults apply");
            report.notes.push(format!(
                "unknown plus-part \"{plus}\" in {to}: the mailbox's defaults apply"
            ));
        }
    }

    /// A new request's subject without reply prefixes, and a request type named by a leading
    /// tag (`[Bug report] The app crashes`).
    fn subject_and_type(&self, subject: &str) -> (String, Option<String>) {
        let s = strip_prefixes(subject).trim();
        let types: Vec<&str> = self
            .settings
            .workflow
            .fields
            .iter()
            .find(|f| f.name == "request_type")
            .map(|f| f.values.iter().map(String::as_str).collect())
            .unwrap_or_default();
        if let Some(rest) = s.strip_prefix('[')
            && let Some((tag, after)) = rest.split_once(']')
            && let Some(t) = types.iter().find(|t| t.eq_ignore_ascii_case(tag.trim()))
        {
            return (after.trim().to_string(), Some(t.to_string()));
        }
        (s.to_string(), None)
    }

    /// Someone in no organisation and not listed: no ticket; a polite answer where configured.
    async fn refuse_unknown(
        &self,
        tx: &mut Tx,
        reading: &Reading,
        report: &mut MailReport,
        now: Timestamp,
    ) -> Result<Decided, DeskError> {
        let address = &reading.sender.address;
        report.text = Some(
            inbound::request(reading, &self.settings.workflow)
                .commands
                .comment,
        );
        report.decision = format!(
            "refused: {} is in no organisation this help desk serves",
            if address.is_empty() {
                "the sender"
            } else {
                address
            }
        );
        if self.settings.inbound.refuse_unknown_with_notice
            && !address.is_empty()
            && self
                .enqueue_refused(
                    tx,
                    &RefusedMail {
                        to: address,
                        subject: &reading.mail.subject,
                        reason: "this help desk takes requests from the organisations it serves, and your address is not one of theirs",
                        in_reply_to: reading.mail.message_id.as_deref(),
                    },
                    now,
                )
                .await?
        {
            report.notes.push("the sender was told why".into());
        }
        Ok(refused())
    }

    /// A delivery report: linked to the notification it returns; a permanent failure marks the
    /// address as failing (later notifications skip it) and tells the support team; a delay is
    /// only noted. A report that returns no mail of deskmail's changes nothing: anyone can
    /// write a bounce.
    pub(crate) async fn bounce(
        &self,
        tx: &mut Tx,
        id: i64,
        reading: &Reading,
        report: &mut MailReport,
        now: Timestamp,
    ) -> Result<Decided, DeskError> {
        let b = reading
            .class
            .bounce
            .clone()
            .unwrap_or_else(|| crate::inbound::classify::Bounce {
                recipient: None,
                status: "5.0.0".into(),
                permanent: true,
                diagnostic: String::new(),
                original_message_id: None,
            });
        let linked = match &b.original_message_id {
            Some(m) => tx.outbox_by_message_id(m).await?,
            None => None,
        };
        let Some((ticket_id, notified, event)) = linked else {
            let about = format!(
                "{}{}",
                b.status,
                b.recipient
                    .as_deref()
                    .map(|r| format!(" for {r}"))
                    .unwrap_or_default()
            );
            // Named by its subject only ("Undeliverable: [SUP-...]"): noted on the ticket, but
            // no address is marked on a claim anyone could write.
            if let Some(rec) = self.find_ticket(tx, reading, None, report).await? {
                tx.insert_history(&NewHistoryRow {
                    ticket_id: rec.id,
                    actor: &reading.sender.address,
                    action: "bounce",
                    kind: "bounce",
                    detail: &format!(
                        "a bounce ({about}) that returns no mail deskmail can identify: nothing marked"
                    ),
                    inbound_id: Some(id),
                    at: now,
                })
                .await?;
                report.decision = format!(
                    "a bounce ({about}) naming the ticket, not a notification: noted, no address marked"
                );
                return Ok(recorded(Some(rec.id)));
            }
            report.decision =
                format!("a bounce ({about}) of no mail deskmail sent: kept, nothing changed");
            return Ok(recorded(None));
        };
        // The failed address must be the one the notification went to.
        let address = match &b.recipient {
            Some(r) if *r != notified => {
                report.decision = format!(
                    "a bounce for {r}, but the returned notification went to {notified}: kept, nothing changed"
                );
                return Ok(recorded(ticket_id));
            }
            _ => notified,
        };
        let why = format!(
            "{} {}{}",
            b.status,
            if b.permanent {
                "permanent failure"
            } else {
                "delivery delayed"
            },
            if b.diagnostic.is_empty() {
                String::new()
            } else {
                format!(": {}", b.diagnostic)
            }
        );
        let rec = match ticket_id {
            Some(t) => self.store.ticket_by_id(t).await?,
            None => None,
        };
        if let Some(rec) = &rec {
            report.ticket = Some(rec.ticket.reference.clone());
            report.matched_by = "references";
            tx.insert_history(&NewHistoryRow {
                ticket_id: rec.id,
                actor: &address,
                action: "bounce",
                kind: if b.permanent {
                    "delivery_failed"
                } else {
                    "delivery_delayed"
                },
                detail: &format!("{event} to {address}: {why}"),
                inbound_id: Some(id),
                at: now,
            })
            .await?;
        }
        if b.permanent {
            tx.mark_failing(&address, &why, now).await?;
            if let Some(rec) = &rec
                && event != "delivery_failed"
            {
                self.enqueue_failure(tx, rec.id, &rec.ticket, &address, &why, now)
                    .await?;
            }
            report.decision = format!(
                "bounce: {address} fails ({why}); later notifications skip it, the support team is told"
            );
        } else {
            report.decision = format!("delay notice for {address} ({why}): noted");
        }
        Ok(recorded(rec.map(|r| r.id)))
    }

    /// An auto-reply (out of office, vacation): noted on its ticket, nothing else. It never
    /// changes a ticket's state, owner or turn, and is never answered.
    pub(crate) async fn auto_reply(
        &self,
        tx: &mut Tx,
        id: i64,
        reading: &Reading,
        report: &mut MailReport,
        now: Timestamp,
    ) -> Result<Decided, DeskError> {
        let rec = self.find_ticket(tx, reading, None, report).await?;
        let Some(rec) = rec else {
            report.decision = "an auto-reply to no known ticket: kept, nothing done".into();
            return Ok(recorded(None));
        };
        let from = &reading.sender.address;
        tx.insert_history(&NewHistoryRow {
            ticket_id: rec.id,
            actor: from,
            action: "auto-reply",
            kind: "auto_reply",
            detail: &format!(
                "auto-reply from {from}: \"{}\" ({})",
                reading.mail.subject, reading.class.reason
            ),
            inbound_id: Some(id),
            at: now,
        })
        .await?;
        report.decision =
            "an auto-reply: noted on the ticket, nothing changed, not answered".into();
        Ok(recorded(Some(rec.id)))
    }
}

fn refused() -> Decided {
    Decided {
        status: Status::Refused,
        ticket_id: None,
    }
}

fn recorded(ticket_id: Option<i64>) -> Decided {
    Decided {
        status: Status::Recorded,
        ticket_id,
    }
}

/// The files of a mail, as a comment keeps them.
fn attachments_of(reading: &Reading) -> Vec<NewAttachment> {
    reading
        .mail
        .attachments
        .iter()
        .map(|a| NewAttachment {
            filename: a.filename.clone(),
            content_type: a.content_type.clone(),
            content: a.content.clone(),
        })
        .collect()
}

/// What a change did, in one line: the action, the status change, the comment, who is told.
fn describe(effects: &Effects, dir: &crate::directory::Directory) -> String {
    let mut out = effects.action.clone();
    if let Some(prev) = &effects.previous_status {
        out.push_str(&format!(": {prev} → {}", effects.ticket.status));
    } else {
        out.push_str(&format!(" ({})", effects.ticket.status));
    }
    if let Some(c) = &effects.comment {
        out.push_str(match c.visibility {
            Visibility::Internal => "; internal note added",
            Visibility::Public => "; comment added",
        });
    }
    let mut told: Vec<String> = Vec::new();
    for n in &effects.notices {
        for a in crate::recipients::addresses(dir, &effects.ticket, &n.audience) {
            if !told.contains(&a) {
                told.push(a);
            }
        }
    }
    if !told.is_empty() {
        out.push_str(&format!("; notified: {}", told.join(", ")));
    }
    out
}
