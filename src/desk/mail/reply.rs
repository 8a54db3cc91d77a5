//! A person's reply to a ticket: its new text becomes a comment, its command (if any, if
//! allowed) an action. A command that is not done leaves the comment in place and earns the
//! sender a "not done" notice.

use jiff::SignedDuration;

use super::{Decided, MailCtx, applied, attachments_of, refused, text_cut_line};
use crate::desk::report::RefusalReport;
use crate::desk::{Author, By, Change, Desk, DeskError, NewAttachment, Outcome};
use crate::inbound::{self, Reading, commands::Commands};
use crate::outbound::render::RefusalCtx;
use crate::store::{NewHistoryRow, TicketRecord, Tx};
use crate::workflow::{Actor, Audience, Effects, Event, Intent, Notice, Refusal, Workflow};

/// What a reply asks for.
struct Asked {
    /// The action it asks for (as written), with its comment: a command, or fields set with
    /// the comment action.
    wanted: Option<(String, Intent)>,
    /// Its comment alone.
    comment: Intent,
    /// What it asks for that is not done whatever the ticket's state: (as written, why).
    not_done: Option<(String, Refusal)>,
}

/// Something asked for that was not done, for the sender's notice.
struct NotDone<'a> {
    written: &'a str,
    refusal: &'a Refusal,
    /// Whether the mail's comment went on the ticket all the same.
    comment_kept: bool,
}

impl Desk {
    pub(super) async fn reply(
        &self,
        tx: &mut Tx,
        m: &mut MailCtx<'_>,
        actor: &Actor,
        rec: TicketRecord,
    ) -> Result<Decided, DeskError> {
        let wf = self.workflow_for(&rec.ticket)?;
        let reply = inbound::reply(m.reading, &self.reader, &wf, &self.settings.directory);
        let cmds = &reply.commands;
        m.report.commands = cmds.command.iter().map(|c| c.action.clone()).collect();
        m.report.command_problem = cmds.problem.as_ref().map(|p| p.refusal().to_string());
        m.report.fields = cmds.fields.clone();
        let attachments = attachments_of(m.reading);
        let (comment, kept_whole) = comment_of(m.reading, m.id, &cmds.comment, &attachments);
        m.report.text = Some(comment.clone());
        let internal = cmds.internal_marker && actor.is_agent();
        let asked = asked(cmds, actor, &wf, &comment, internal);
        let by = m.by(actor);
        let reference = rec.ticket.reference.clone();
        let (outcome, mut not_done) = self
            .act_on_reply(tx, &reference, by, asked, &attachments)
            .await?;
        let mut decided = applied(Some(rec.id));
        let mut comment_kept = false;
        match &outcome {
            Outcome::Applied {
                effects, mailed, ..
            } => {
                comment_kept = effects.comment.is_some();
                m.report.note_applied(effects, mailed);
                if let Some(why) = kept_whole.filter(|_| comment_kept) {
                    note_kept_whole(tx, m, actor, rec.id, &effects.action, why).await?;
                }
            }
            Outcome::FollowedUp { closed, reference } => {
                m.report.followed_up = Some(closed.clone());
                m.report.ticket = Some(reference.clone());
            }
            Outcome::Rejected(r) => {
                decided = Decided {
                    ticket_id: Some(rec.id),
                    ..refused()
                };
                m.report.refusal = Some(RefusalReport::rejected(r));
                // An empty reply is no request: nobody is told.
                if not_done.is_none() && r.reason != Refusal::EmptyComment {
                    not_done = Some((wf.comment.name.clone(), r.reason.clone()));
                }
            }
        }
        if let Some((written, refusal)) = &not_done {
            if m.report.refusal.is_none() {
                m.report.refusal = Some(RefusalReport::command(written, refusal));
            }
            let nd = NotDone {
                written,
                refusal,
                comment_kept,
            };
            self.tell_not_done(tx, m, actor, &reference, nd).await?;
        }
        if decided.status == crate::desk::report::Status::Applied {
            let current = m.report.ticket.clone().unwrap_or(reference);
            self.add_watchers(tx, m, actor, &current).await?;
        }
        Ok(decided)
    }

    /// Does what a reply asks; where its action is refused, its comment alone. Returns what
    /// was done, and what was asked for and not done.
    async fn act_on_reply(
        &self,
        tx: &mut Tx,
        reference: &str,
        by: By<'_>,
        asked: Asked,
        attachments: &[NewAttachment],
    ) -> Result<(Outcome, Option<(String, Refusal)>), DeskError> {
        let mut not_done = asked.not_done;
        let attempt = asked.wanted.as_ref().map_or(&asked.comment, |(_, i)| i);
        let mut outcome = self.act_in(tx, reference, by, attempt, attachments).await?;
        if let (Outcome::Rejected(r), Some((written, _))) = (&outcome, &asked.wanted) {
            // The command is refused: the comment still goes on the ticket.
            not_done = Some((written.clone(), r.reason.clone()));
            if matches!(&asked.comment, Intent::Comment { text, .. } if !text.is_empty()) {
                outcome = self
                    .act_in(tx, reference, by, &asked.comment, attachments)
                    .await?;
            }
        }
        Ok((outcome, not_done))
    }

    /// Tells the sender what was not done and what they can do instead: at most once per
    /// address, ticket and reason a day, so that a misconfigured client cannot start a loop.
    /// Not where their mail is not to be answered.
    async fn tell_not_done(
        &self,
        tx: &mut Tx,
        m: &mut MailCtx<'_>,
        actor: &Actor,
        reference: &str,
        nd: NotDone<'_>,
    ) -> Result<(), DeskError> {
        if let Some(why) = &m.reading.unanswerable {
            m.report
                .notes
                .push(format!("no \"not done\" notice: {why}"));
            return Ok(());
        }
        let Some(rec) = tx.ticket_for_update(reference).await? else {
            return Ok(());
        };
        let detail = format!("{} to {}", nd.refusal.code(), actor.address());
        let a_day_ago = m.now - SignedDuration::from_hours(24);
        if tx
            .history_since(rec.id, "not_done", &detail, a_day_ago)
            .await?
        {
            m.report
                .notes
                .push("the \"not done\" notice went out today already: not sent again".into());
            return Ok(());
        }
        tx.insert_history(&NewHistoryRow {
            ticket_id: rec.id,
            actor: actor.address(),
            action: nd.written,
            kind: "not_done",
            detail: &detail,
            inbound_id: Some(m.id),
            at: m.now,
        })
        .await?;
        let notice = Notice {
            event: Event::NotDone,
            audience: Audience::Person(actor.address().to_string()),
        };
        let effects = Effects::notice_only("not_done", &rec.ticket, vec![notice]);
        let refusal = RefusalCtx {
            action: nd.written.to_string(),
            reason: crate::outbound::refusal_text::describe(nd.refusal, &actor.person.locale),
            comment_kept: nd.comment_kept,
        };
        let w = Change {
            ticket_id: rec.id,
            thread_root: rec.thread_root.as_deref(),
            author: Author::new(actor),
            inbound: Some(m.id),
            now: m.now,
        };
        let mailed = self.enqueue(tx, &w, &effects, &[], Some(refusal)).await?;
        m.report.notes.extend(mailed.held);
        for to in mailed.to {
            m.report
                .notes
                .push(format!("\"not done\" notice queued for {to}"));
        }
        Ok(())
    }
}

/// What a reply asks for, from its commands. Nothing an unverified sender asks for is done,
/// however it is written: that is the reason to give, not how the command reads.
fn asked(cmds: &Commands, actor: &Actor, wf: &Workflow, comment: &str, internal: bool) -> Asked {
    let optional = (!comment.is_empty()).then(|| comment.to_string());
    let act = |action: &str| Intent::Act {
        action: action.to_string(),
        comment: optional.clone(),
        internal,
        fields: cmds.fields.clone(),
    };
    let mut asked = Asked {
        wanted: None,
        comment: Intent::Comment {
            text: comment.to_string(),
            internal,
        },
        not_done: None,
    };
    if let Some(written) = cmds.asked().filter(|_| !actor.verified()) {
        asked.not_done = Some((written.clone(), Refusal::NotVerified { action: written }));
    } else if let Some(p) = &cmds.problem {
        asked.not_done = Some((p.written(), p.refusal()));
    } else if let Some(cmd) = &cmds.command {
        asked.wanted = Some((cmd.written.clone(), act(&cmd.action)));
    } else if !cmds.fields.is_empty() {
        asked.wanted = Some((wf.comment.name.clone(), act(&wf.comment.name)));
    }
    asked
}

/// A reply's comment: its new text; when it has none (a reply that only quotes, a forwarded
/// mail), its whole text, with a note why; when it has no text at all, the names of its files.
/// Where the mail's text went on beyond what deskmail reads, a line says so.
fn comment_of(
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

/// Notes on the ticket and in the report that the comment is the reply's whole text.
async fn note_kept_whole(
    tx: &mut Tx,
    m: &mut MailCtx<'_>,
    actor: &Actor,
    ticket_id: i64,
    action: &str,
    why: &str,
) -> Result<(), DeskError> {
    m.report.notes.push(why.to_string());
    tx.insert_history(&NewHistoryRow {
        ticket_id,
        actor: actor.address(),
        action,
        kind: "comment",
        detail: why,
        inbound_id: Some(m.id),
        at: m.now,
    })
    .await?;
    Ok(())
}
