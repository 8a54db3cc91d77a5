//! What a mail does, by kind: a person's reply comments or commands on its ticket, a person's
//! first mail opens one, a bounce marks a failing address, an auto-reply is noted on its ticket
//! and changes nothing. Runs inside the transaction of `desk::ingest`.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use super::ingest::{Decided, MailReport, Status};
use super::notify::RefusedMail;
use super::{Author, CreateRequest, Desk, DeskError, FromMail, Mailed, NewAttachment, Outcome};
use crate::config::UnverifiedPolicy;
use crate::inbound::{self, MatchedBy, Reading, classify::strip_prefixes};
use crate::outbound::render::RefusalCtx;
use crate::store::{NewHistoryRow, TicketRecord, Tx};
use crate::workflow::rules::Due;
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
            proof: sender.proof(),
        };
        // Mail in an agent's name can speak to customers with the help desk's voice: it must be
        // proven.
        if !actor.verified() && actor.is_agent() {
            report.decision = format!(
                "refused: mail in the name of agent {} that could not be verified (no reply token, no passing authentication)",
                actor.address()
            );
            return Ok(refused());
        }
        if !actor.verified() && self.settings.inbound.unverified == UnverifiedPolicy::Refuse {
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
        report.commands = cmds.command.iter().map(|c| c.action.clone()).collect();
        report.command_problem = cmds.problem.as_ref().map(|p| p.refusal().to_string());
        report.fields = cmds.fields.clone();
        let internal = cmds.internal_marker && actor.is_agent();
        let attachments = attachments_of(reading);
        let (comment, kept_whole) = self.comment_of(reading, id, &cmds.comment, &attachments);
        report.text = Some(comment.clone());
        let reference = rec.ticket.reference.clone();
        // What was asked for that is not done: (as written, why).
        let mut not_done: Option<(String, Refusal)> = None;
        let mut wanted: Option<(String, Intent)> = None;
        let optional = |c: &str| (!c.is_empty()).then(|| c.to_string());
        if let Some(written) = cmds.asked().filter(|_| !actor.verified()) {
            // Nothing an unverified sender asks for is done, however it is written: that is
            // the reason to give, not how the command reads.
            not_done = Some((written.clone(), Refusal::NotVerified { action: written }));
        } else if let Some(p) = &cmds.problem {
            not_done = Some((p.written(), p.refusal()));
        } else if let Some(cmd) = &cmds.command {
            wanted = Some((
                cmd.written.clone(),
                Intent::Act {
                    action: cmd.action.clone(),
                    comment: optional(&comment),
                    internal,
                    fields: cmds.fields.clone(),
                },
            ));
        } else if !cmds.fields.is_empty() {
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
        let comment_only = Intent::Comment {
            text: comment.clone(),
            internal,
        };
        let attempt = match &wanted {
            Some((_, intent)) => intent,
            None => &comment_only,
        };
        let from = Some(FromMail {
            id,
            quiet: reading.unanswerable.as_deref(),
        });
        let mut outcome = self
            .act_in(tx, &reference, actor, attempt, &attachments, from, now)
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
                        from,
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
            Outcome::Applied {
                effects, mailed, ..
            } => {
                comment_kept = effects.comment.is_some();
                report.decision = describe(effects, mailed);
                report.note_mailed(mailed);
                if let Some(why) = kept_whole.filter(|_| comment_kept) {
                    report.notes.push(why.to_string());
                    tx.insert_history(&NewHistoryRow {
                        ticket_id: rec.id,
                        actor: actor.address(),
                        action: &effects.action,
                        kind: "comment",
                        detail: why,
                        inbound_id: Some(id),
                        at: now,
                    })
                    .await?;
                }
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
        if let Some((written, refusal)) = &not_done
            && decided.status == Status::Applied
        {
            report.decision = format!("{}; not done: {written}: {refusal}", report.decision);
        }
        if let Some(why) = not_done.as_ref().and(reading.unanswerable.as_ref()) {
            report.notes.push(format!("no \"not done\" notice: {why}"));
        } else if let Some((written, refusal)) = &not_done {
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

    /// A reply's comment: its new text; when it has none (a reply that only quotes, a
    /// forwarded mail), its whole text, with a note why; when it has no text at all, the names
    /// of its files. Where the mail's text went on beyond what deskmail reads, a line says so.
    fn comment_of(
        &self,
        reading: &Reading,
        id: i64,
        extracted: &str,
        attachments: &[NewAttachment],
    ) -> (String, Option<&'static str>) {
        let mut comment = extracted.to_string();
        let mut kept_whole = None;
        if comment.is_empty() {
            comment = inbound::extract::strip_signature(&reading.mail.text).text;
            if !comment.is_empty() {
                kept_whole = Some(
                    "the reply has no new text of its own: its whole text (quoted or forwarded) is the comment",
                );
            }
        }
        if comment.is_empty() && !attachments.is_empty() {
            let names: Vec<&str> = attachments.iter().map(|a| a.filename.as_str()).collect();
            comment = format!("[{}]", names.join(", "));
        }
        if reading.mail.text_cut && !comment.is_empty() {
            comment.push_str(&text_cut_line(id));
        }
        (comment, kept_whole)
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
        let mailed = self
            .enqueue(
                tx,
                rec.id,
                rec.thread_root.as_deref(),
                Author::new(actor),
                &effects,
                &[],
                Some(refusal_ctx),
                now,
            )
            .await?;
        report.notes.extend(mailed.held);
        for to in mailed.to {
            report
                .notes
                .push(format!("\"not done\" notice queued for {to}"));
        }
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
            .filter(|a| *a != actor.address() && !self.reader.is_own(a))
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
                    proof: crate::workflow::Proof::Unverified,
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
        let due = Due::of(&*self.workflow_for(&rec.ticket)?, &rec.ticket);
        tx.update_ticket(rec.id, &rec.ticket, due).await?;
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
        let mut text = request.commands.comment.clone();
        if reading.mail.text_cut {
            text.push_str(&text_cut_line(id));
        }
        report.text = Some(text.clone());
        report.fields = fields.clone();
        let req = CreateRequest {
            subject,
            text,
            fields,
            to_address: to,
            source: "mail".into(),
            attachments: attachments_of(reading),
            thread_root: reading.mail.message_id.clone(),
        };
        let from = Some(FromMail {
            id,
            quiet: reading.unanswerable.as_deref(),
        });
        match self.create_in(tx, actor, &req, None, from, now).await? {
            Outcome::Applied {
                reference,
                effects,
                mailed,
            } => {
                report.ticket = Some(reference.clone());
                report.decision = format!(
                    "new ticket {reference} ({}); {}",
                    effects.ticket.status,
                    describe(&effects, &mailed)
                );
                report.note_mailed(&mailed);
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
                self.tell_refused(tx, reading, actor.address(), &reason, report, now)
                    .await?;
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
            a.contains('@')
                && self
                    .reader
                    .receiving
                    .contains(&crate::inbound::plain_address(a))
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
        if self.settings.inbound.refuse_unknown_with_notice && !address.is_empty() {
            self.tell_refused(
                tx,
                reading,
                address,
                "this help desk takes requests from the organisations it serves, and your address is not one of theirs",
                report,
                now,
            )
            .await?;
        }
        Ok(refused())
    }

    /// Tells the sender of a mail that could not become a ticket why: unless their mail is not
    /// to be answered (an automatic one, a mail system's or the help desk's own address).
    async fn tell_refused(
        &self,
        tx: &mut Tx,
        reading: &Reading,
        to: &str,
        reason: &str,
        report: &mut MailReport,
        now: Timestamp,
    ) -> Result<(), DeskError> {
        if let Some(why) = reading.unanswerable.as_deref().or(self.never_mailed(to)) {
            report
                .notes
                .push(format!("the sender is not answered: {why}"));
            return Ok(());
        }
        let refused = RefusedMail {
            to,
            subject: &reading.mail.subject,
            reason,
            in_reply_to: reading.mail.message_id.as_deref(),
        };
        if self.enqueue_refused(tx, &refused, now).await? {
            report.notes.push("the sender was told why".into());
        }
        Ok(())
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
            Some(t) => tx.ticket_by_id(t).await?,
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

/// The line that ends a comment whose mail's text went on beyond what deskmail reads.
pub(crate) fn text_cut_line(inbound_id: i64) -> String {
    format!(
        "\n\n[The mail's text goes on beyond the {} or {} lines deskmail reads; the whole mail is kept as inbound mail #{inbound_id}.]",
        crate::outbound::compose::size_text(inbound::bounds::TEXT_LIMIT as u64),
        inbound::bounds::TEXT_LINES
    )
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

/// What a change did, in one line: the action, the status change, the comment, who was mailed
/// and who was not.
fn describe(effects: &Effects, mailed: &Mailed) -> String {
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
    if !mailed.to.is_empty() {
        out.push_str(&format!("; notified: {}", mailed.to.join(", ")));
    }
    for held in &mailed.held {
        out.push_str(&format!("; {held}"));
    }
    out
}
