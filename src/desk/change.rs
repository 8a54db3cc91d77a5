//! A change through the core, written in one transaction: a new ticket, an action on one (a
//! merge, a follow-up to a closed ticket included), with its comment, history lines and
//! notifications.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::{Author, By, Change, CreateRequest, Desk, DeskError, Mailed, NewAttachment, Outcome};
use crate::recipients;
use crate::store::{NewCommentRow, NewHistoryRow, TicketRecord, Tx};
use crate::workflow::rules::Due;
use crate::workflow::{
    self, Actor, Decision, Effects, Intent, NewTicket, Refusal, Rejection, StateKind, Visibility,
    Workflow,
};

impl Desk {
    /// Creates a ticket for `actor`, numbered inside the same transaction.
    pub async fn create(
        &self,
        actor: &Actor,
        req: CreateRequest,
        now: Timestamp,
    ) -> Result<Outcome, DeskError> {
        let mut tx = self.store.begin().await?;
        let by = By::direct(actor, now);
        let outcome = self.create_in(&mut tx, by, &req, None).await?;
        if matches!(outcome, Outcome::Applied { .. }) {
            tx.commit().await?;
        }
        Ok(outcome)
    }

    /// [`Desk::create`] inside a transaction the caller commits; `linked_to`: the closed ticket
    /// a follow-up links.
    pub(crate) async fn create_in(
        &self,
        tx: &mut Tx,
        by: By<'_>,
        req: &CreateRequest,
        linked_to: Option<&str>,
    ) -> Result<Outcome, DeskError> {
        let format = &self.settings.ticket_format;
        let seq = tx.next_ticket_seq(&format.scope(by.now)).await?;
        let new = NewTicket {
            reference: format.render(by.now, seq),
            subject: req.subject.clone(),
            text: req.text.clone(),
            fields: req.fields.clone(),
            mailbox_fields: self.mailbox_fields(req.to_address.as_deref()),
            to_address: req.to_address.clone(),
            source: req.source.clone(),
            linked_to: linked_to.map(String::from),
        };
        let wf = &self.settings.workflow;
        let effects = match workflow::create(wf, &self.settings.directory, by.actor, &new, by.now) {
            Decision::Reject(r) => return Ok(Outcome::Rejected(r)),
            Decision::Apply(effects) => effects,
        };
        let id = tx
            .insert_ticket(&effects.ticket, Due::of(wf, &effects.ticket))
            .await?;
        let root = req
            .thread_root
            .as_deref()
            .filter(|r| crate::outbound::message::is_message_id(r));
        if let Some(root) = root {
            tx.set_thread_root(id, root).await?;
        }
        let change = Change {
            ticket_id: id,
            thread_root: root,
            author: by.author(),
            inbound: by.mail.map(|m| m.id),
            now: by.now,
        };
        let mailed = self.write(tx, &change, &effects, &req.attachments).await?;
        Ok(Outcome::Applied {
            reference: effects.ticket.reference.clone(),
            ticket_id: id,
            effects,
            mailed,
        })
    }

    /// The fields the mailbox a request came to sets on its tickets.
    fn mailbox_fields(&self, to: Option<&str>) -> BTreeMap<String, String> {
        let mut fields = BTreeMap::new();
        if let Some(mb) = to.and_then(|to| self.settings.mailbox_for(to)) {
            for (k, v) in [("request_type", &mb.request_type), ("queue", &mb.queue)] {
                if let Some(v) = v {
                    fields.insert(k.to_string(), v.clone());
                }
            }
        }
        fields
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
        let by = By::direct(actor, now);
        let outcome = self
            .act_in(&mut tx, reference, by, intent, attachments)
            .await?;
        if !matches!(outcome, Outcome::Rejected(_)) {
            tx.commit().await?;
        }
        Ok(outcome)
    }

    /// [`Desk::act`] inside a transaction the caller commits. A rejection writes nothing.
    pub(crate) async fn act_in(
        &self,
        tx: &mut Tx,
        reference: &str,
        by: By<'_>,
        intent: &Intent,
        attachments: &[NewAttachment],
    ) -> Result<Outcome, DeskError> {
        let rec = tx
            .ticket_for_update(reference.trim())
            .await?
            .ok_or_else(|| DeskError::UnknownTicket(reference.trim().to_string()))?;
        if !by.actor.can_see(&rec.ticket) {
            return Err(DeskError::NotVisible {
                who: by.actor.address().to_string(),
                reference: rec.ticket.reference.clone(),
            });
        }
        let wf = self.workflow_for(&rec.ticket)?;
        let dir = &self.settings.directory;
        let decision = match workflow::act(&wf, dir, &rec.ticket, by.actor, intent, by.now) {
            workflow::Outcome::Decided(d) => d,
            workflow::Outcome::FollowUp => {
                return self.follow_up(tx, &rec, by, intent, attachments).await;
            }
        };
        let effects = match decision {
            Decision::Reject(r) => return Ok(Outcome::Rejected(r)),
            Decision::Apply(e) => e,
        };
        if let Some(target) = &effects.merge_into
            && let Some(refused) = self.merge(tx, &rec, target, by, &effects, &wf).await?
        {
            return Ok(Outcome::Rejected(refused));
        }
        tx.update_ticket(rec.id, &effects.ticket, Due::of(&wf, &effects.ticket))
            .await?;
        let change = Change {
            ticket_id: rec.id,
            thread_root: rec.thread_root.as_deref(),
            author: by.author(),
            inbound: by.mail.map(|m| m.id),
            now: by.now,
        };
        let mailed = self.write(tx, &change, &effects, attachments).await?;
        Ok(Outcome::Applied {
            reference: rec.ticket.reference.clone(),
            ticket_id: rec.id,
            effects,
            mailed,
        })
    }

    /// Moves a merged ticket's comments into `target`, noted in its history; the refusal when
    /// the two cannot be merged (nothing is written then).
    async fn merge(
        &self,
        tx: &mut Tx,
        rec: &TicketRecord,
        target: &str,
        by: By<'_>,
        effects: &Effects,
        wf: &Workflow,
    ) -> Result<Option<Rejection>, DeskError> {
        let into = tx
            .ticket_for_update(target)
            .await?
            .filter(|t| t.id != rec.id)
            .ok_or_else(|| DeskError::MergeTarget(target.to_string()))?;
        let into_wf = self.workflow_for(&into.ticket)?;
        if let Some(reason) = unmergeable(rec, &into, &into_wf) {
            let dir = &self.settings.directory;
            return Ok(Some(Rejection {
                reason,
                allowed: workflow::allowed_actions(wf, dir, &rec.ticket, by.actor),
            }));
        }
        tx.move_comments(rec.id, into.id).await?;
        let mut target_ticket = into.ticket.clone();
        target_ticket.updated_at = by.now;
        let due = Due::of(&into_wf, &target_ticket);
        tx.update_ticket(into.id, &target_ticket, due).await?;
        let detail = format!("merged from {}", rec.ticket.reference);
        tx.insert_history(&NewHistoryRow {
            ticket_id: into.id,
            actor: by.actor.address(),
            action: &effects.action,
            kind: "merged",
            detail: &detail,
            inbound_id: by.mail.map(|m| m.id),
            at: by.now,
        })
        .await?;
        Ok(None)
    }

    /// A reply to a closed ticket whose workflow opens a new one: the new ticket links the old.
    async fn follow_up(
        &self,
        tx: &mut Tx,
        closed: &TicketRecord,
        by: By<'_>,
        intent: &Intent,
        attachments: &[NewAttachment],
    ) -> Result<Outcome, DeskError> {
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
            .create_in(tx, by, &req, Some(&closed.ticket.reference))
            .await?;
        let Outcome::Applied { reference, .. } = outcome else {
            return Ok(outcome);
        };
        let detail = format!("reply opened follow-up {reference}");
        tx.insert_history(&NewHistoryRow {
            ticket_id: closed.id,
            actor: by.actor.address(),
            action: "comment",
            kind: "follow_up",
            detail: &detail,
            inbound_id: by.mail.map(|m| m.id),
            at: by.now,
        })
        .await?;
        Ok(Outcome::FollowedUp {
            closed: closed.ticket.reference.clone(),
            reference,
        })
    }

    /// Writes an action's comment (with its attachments), history and notifications; says who
    /// was mailed.
    pub(crate) async fn write(
        &self,
        tx: &mut Tx,
        change: &Change<'_>,
        effects: &Effects,
        attachments: &[NewAttachment],
    ) -> Result<Mailed, DeskError> {
        write_comment(tx, change, effects, attachments).await?;
        let mut lines = self.history_lines(effects);
        let mailed = self.enqueue(tx, change, effects, attachments, None).await?;
        lines.extend(
            mailed
                .held
                .iter()
                .map(|n| ("notice".to_string(), n.clone())),
        );
        let author = &change.author.actor.person.address;
        let rows: Vec<NewHistoryRow<'_>> = lines
            .iter()
            .map(|(kind, detail)| NewHistoryRow {
                ticket_id: change.ticket_id,
                actor: author,
                action: &effects.action,
                kind,
                detail,
                inbound_id: change.inbound,
                at: change.now,
            })
            .collect();
        tx.insert_history_rows(&rows).await?;
        Ok(mailed)
    }

    /// A change's history lines (kind, detail): the core's, an internal note, who each notice
    /// goes to.
    fn history_lines(&self, effects: &Effects) -> Vec<(String, String)> {
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
        lines
    }
}

/// Why two tickets cannot be merged, if they cannot: they belong to different organisations,
/// or the target is closed.
fn unmergeable(rec: &TicketRecord, into: &TicketRecord, into_wf: &Workflow) -> Option<Refusal> {
    if into.ticket.organisation != rec.ticket.organisation {
        let name = |o: &Option<String>| o.clone().unwrap_or_else(|| "no organisation".into());
        return Some(Refusal::MergeAcrossOrganisations {
            organisation_a: name(&rec.ticket.organisation),
            organisation_b: name(&into.ticket.organisation),
        });
    }
    let closed = into_wf
        .states
        .iter()
        .any(|s| s.name == into.ticket.status && s.kind == StateKind::Closed);
    closed.then(|| Refusal::Final {
        status: format!("{} ({})", into.ticket.status, into.ticket.reference),
    })
}

/// Writes a change's comment and its attachments.
async fn write_comment(
    tx: &mut Tx,
    change: &Change<'_>,
    effects: &Effects,
    attachments: &[NewAttachment],
) -> Result<(), DeskError> {
    let Author { actor, .. } = change.author;
    let mut comment_id = None;
    if let Some(c) = &effects.comment {
        let row = NewCommentRow {
            ticket_id: change.ticket_id,
            author: &actor.person.address,
            role: actor.person.party.role_name(),
            text: &c.text,
            visibility: c.visibility.as_str(),
            inbound_id: change.inbound,
            verified_by: actor.proof.as_str(),
            at: change.now,
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
            change.ticket_id,
            comment_id,
            &a.filename,
            &a.content_type,
            &a.content,
            change.now,
        )
        .await?;
    }
    Ok(())
}
