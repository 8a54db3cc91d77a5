//! The answer to someone whose mail could not become a ticket at all (an unknown sender, a
//! request the workflow refuses): at most once a day per address, and repeating nothing of
//! their mail but the start of its subject.

use jiff::{SignedDuration, Timestamp};

use super::{Desk, DeskError};
use crate::directory::Person;
use crate::outbound::compose;
use crate::outbound::message::{self, Mail};
use crate::outbound::render::{
    ActorCtx, HelpdeskCtx, MailContext, RecipientCtx, RefusalCtx, TicketCtx,
};
use crate::store::{NewOutboxRow, Tx};

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
        if tx
            .outbox_count_since(r.to, "refused", now - SignedDuration::from_hours(24))
            .await?
            > 0
        {
            return Ok(false);
        }
        let dir = &self.settings.directory;
        let person = compose::recipient_person(dir, r.to);
        let (ctx, locale) = self.refusal_context(r, person.as_ref(), now);
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

    /// The template context of a refusal, and its language.
    fn refusal_context(
        &self,
        r: &RefusedMail<'_>,
        person: Option<&Person>,
        now: Timestamp,
    ) -> (MailContext, String) {
        let dir = &self.settings.directory;
        let (locale, tz) = person
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
                name: person.map(|p| p.name.clone()).unwrap_or_default(),
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
        (ctx, locale)
    }
}
