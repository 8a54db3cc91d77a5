//! A person's mail that names no ticket they may see: a new request. A sender the help desk
//! does not serve gets no ticket, and a polite answer where that is configured.

use std::collections::BTreeMap;

use super::{Decided, MailCtx, applied, attachments_of, refused, text_cut_line};
use crate::desk::refused::RefusedMail;
use crate::desk::report::RefusalReport;
use crate::desk::{CreateRequest, Desk, DeskError, Outcome};
use crate::inbound::{self, Reading, classify::strip_prefixes};
use crate::store::Tx;
use crate::workflow::{Actor, rules::plus_part};

impl Desk {
    pub(super) async fn new_request(
        &self,
        tx: &mut Tx,
        m: &mut MailCtx<'_>,
        actor: &Actor,
    ) -> Result<Decided, DeskError> {
        let req = self.request_of(m);
        let by = m.by(actor);
        match self.create_in(tx, by, &req, None).await? {
            Outcome::Applied {
                reference,
                ticket_id,
                effects,
                mailed,
            } => {
                m.report.ticket = Some(reference.clone());
                m.report.note_applied(&effects, &mailed);
                self.add_watchers(tx, m, actor, &reference).await?;
                Ok(applied(Some(ticket_id)))
            }
            Outcome::Rejected(r) => {
                m.report.refusal = Some(RefusalReport::rejected(&r));
                let reason =
                    crate::outbound::refusal_text::describe(&r.reason, &actor.person.locale);
                self.tell_refused(tx, m, actor.address(), &reason).await?;
                Ok(refused())
            }
            Outcome::FollowedUp { reference, .. } => {
                m.report.ticket = Some(reference);
                Ok(applied(None))
            }
        }
    }

    /// The ticket a new request asks for: its subject and text, and the fields its commands,
    /// subject tag and receiving address give.
    fn request_of(&self, m: &mut MailCtx<'_>) -> CreateRequest {
        let reading = m.reading;
        let request = inbound::request(reading, &self.settings.workflow);
        let mut fields = request.commands.fields.clone();
        let to = self.receiving_address(reading, m.mailbox);
        self.plus_fields(to.as_deref(), &mut fields, &mut m.report.notes);
        let (subject, tagged_type) = self.subject_and_type(&reading.mail.subject);
        if let Some(t) = tagged_type {
            fields.entry("request_type".into()).or_insert(t);
        }
        let mut text = request.commands.comment.clone();
        if reading.mail.text_cut {
            text.push_str(&text_cut_line(m.id));
        }
        m.report.text = Some(text.clone());
        m.report.fields = fields.clone();
        CreateRequest {
            subject,
            text,
            fields,
            to_address: to,
            source: "mail".into(),
            attachments: attachments_of(reading),
            thread_root: reading.mail.message_id.clone(),
        }
    }

    /// The address the mail was sent to that deskmail receives at (plus-part kept): the
    /// envelope's first, then To and Cc; the mailbox's own when none is.
    fn receiving_address(&self, reading: &Reading, mailbox: Option<&str>) -> Option<String> {
        // A reply address (`support+r-...@`) names a ticket, not where new requests go.
        let reply_address =
            |a: &str| plus_part(a).is_some_and(|p| p.starts_with(crate::reply_token::PREFIX));
        let ours = |a: &str| {
            a.contains('@')
                && !reply_address(a)
                && self.reader.receiving.contains(&inbound::plain_address(a))
        };
        let m = &reading.mail;
        m.envelope_to
            .iter()
            .map(String::as_str)
            .chain(m.to.iter().map(|x| x.address.as_str()))
            .chain(m.cc.iter().map(|x| x.address.as_str()))
            .find(|a| ours(a))
            .map(String::from)
            .or_else(|| {
                let name = mailbox?;
                let mb = self.settings.mailboxes.iter().find(|mb| mb.name == name)?;
                Some(mb.address.clone())
            })
    }

    /// Fields from the receiving address's plus-part (`support+bug@`), from the mailbox's table.
    /// A plus-part neither the table nor the workflow's rules know falls back to the mailbox's
    /// defaults, and is noted.
    fn plus_fields(
        &self,
        to: Option<&str>,
        fields: &mut BTreeMap<String, String>,
        notes: &mut Vec<String>,
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
            notes.push(format!(
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
    pub(super) async fn refuse_unknown(
        &self,
        tx: &mut Tx,
        m: &mut MailCtx<'_>,
    ) -> Result<Decided, DeskError> {
        let address = m.reading.sender.address.clone();
        let request = inbound::request(m.reading, &self.settings.workflow);
        m.report.text = Some(request.commands.comment);
        let who = if address.is_empty() {
            "the sender"
        } else {
            &address
        };
        let decided = m.refuse(
            "unknown_sender",
            format!("{who} is in no organisation this help desk serves"),
        );
        if self.settings.inbound.refuse_unknown_with_notice && !address.is_empty() {
            self.tell_refused(
                tx,
                m,
                &address,
                "this help desk takes requests from the organisations it serves, and your address is not one of theirs",
            )
            .await?;
        }
        Ok(decided)
    }

    /// Tells the sender of a mail that could not become a ticket why: unless their mail is not
    /// to be answered (an automatic one, a mail system's or the help desk's own address).
    async fn tell_refused(
        &self,
        tx: &mut Tx,
        m: &mut MailCtx<'_>,
        to: &str,
        reason: &str,
    ) -> Result<(), DeskError> {
        if let Some(why) = m.reading.unanswerable.as_deref().or(self.never_mailed(to)) {
            m.report
                .notes
                .push(format!("the sender is not answered: {why}"));
            return Ok(());
        }
        let refused = RefusedMail {
            to,
            subject: &m.reading.mail.subject,
            reason,
            in_reply_to: m.reading.mail.message_id.as_deref(),
        };
        if self.enqueue_refused(tx, &refused, m.now).await? {
            m.report.notes.push("the sender was told why".into());
        }
        Ok(())
    }
}
