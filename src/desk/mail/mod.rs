//! What a mail does, by kind: a person's reply comments or commands on its ticket
//! (`reply`), a person's first mail opens one (`new_request`), a bounce marks a failing address
//! (`bounce`), an auto-reply is noted on its ticket and changes nothing (`auto_reply`). Each
//! runs inside the transaction of `desk::ingest`, on one [`MailCtx`].

mod auto_reply;
mod bounce;
mod matching;
mod new_request;
mod reply;
mod watchers;

use jiff::Timestamp;

use super::report::{MailReport, RefusalReport, Status};
use super::{By, Desk, DeskError, FromMail, NewAttachment};
use crate::config::UnverifiedPolicy;
use crate::inbound::{self, Class, Reading};
use crate::store::Tx;
use crate::workflow::Actor;

/// One stored mail as the desk applies it: what the handlers of its kind share.
pub(crate) struct MailCtx<'a> {
    /// The stored mail's id (`inbound_messages`).
    pub id: i64,
    pub reading: &'a Reading,
    /// The mailbox (by name) it was read from.
    pub mailbox: Option<&'a str>,
    pub now: Timestamp,
    /// What was done, filled in on the way.
    pub report: MailReport,
}

impl<'a> MailCtx<'a> {
    /// A change `actor` asks for with this mail (which says whether they are to be answered).
    fn by<'b>(&self, actor: &'b Actor) -> By<'b>
    where
        'a: 'b,
    {
        By {
            actor,
            mail: Some(FromMail {
                id: self.id,
                quiet: self.reading.unanswerable.as_deref(),
            }),
            now: self.now,
        }
    }

    /// Notes that the mail is kept and changes nothing, and why.
    fn kept(&mut self, why: impl Into<String>, ticket_id: Option<i64>) -> Decided {
        self.report.notes.push(why.into());
        recorded(ticket_id)
    }

    /// Notes that the whole mail is refused, and why.
    fn refuse(&mut self, code: &str, reason: impl Into<String>) -> Decided {
        self.report.refusal = Some(RefusalReport::mail(code, reason));
        refused()
    }
}

/// What applying a mail decided, before it is recorded.
pub(crate) struct Decided {
    pub status: Status,
    pub ticket_id: Option<i64>,
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

fn applied(ticket_id: Option<i64>) -> Decided {
    Decided {
        status: Status::Applied,
        ticket_id,
    }
}

impl Desk {
    /// Applies a stored mail by its kind.
    pub(crate) async fn apply_mail(
        &self,
        tx: &mut Tx,
        m: &mut MailCtx<'_>,
    ) -> Result<Decided, DeskError> {
        match m.reading.class.class {
            Class::Person => self.person_mail(tx, m).await,
            Class::Bounce => self.bounce(tx, m).await,
            Class::AutoReply => self.auto_reply(tx, m).await,
            Class::List => Ok(m.kept(
                "a list's mail from no one deskmail knows: kept, nothing done",
                None,
            )),
            Class::Own => Ok(m.kept("deskmail's own mail: kept, nothing done", None)),
        }
    }

    /// A person's mail: a reply to a ticket, or a new request. An agent's must be proven: it
    /// can speak to customers with the help desk's voice.
    async fn person_mail(&self, tx: &mut Tx, m: &mut MailCtx<'_>) -> Result<Decided, DeskError> {
        let sender = &m.reading.sender;
        let Some(person) = sender.person.clone() else {
            return self.refuse_unknown(tx, m).await;
        };
        let actor = Actor {
            person,
            proof: sender.proof(),
        };
        if !actor.verified() && actor.is_agent() {
            let reason = format!(
                "mail in the name of agent {} that could not be verified (no reply token, no passing authentication)",
                actor.address()
            );
            return Ok(m.refuse("agent_not_verified", reason));
        }
        if !actor.verified() && self.settings.inbound.unverified == UnverifiedPolicy::Refuse {
            return Ok(m.refuse(
                "unverified_refused",
                "the sender could not be verified ([inbound] unverified = \"refuse\")",
            ));
        }
        match self.find_ticket(tx, m, Some(&actor)).await? {
            Some(rec) => self.reply(tx, m, &actor, rec).await,
            None => self.new_request(tx, m, &actor).await,
        }
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
