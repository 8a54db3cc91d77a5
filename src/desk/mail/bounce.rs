//! A delivery report: linked to the notification it returns; a permanent failure marks the
//! address as failing (later notifications skip it) and tells the support team; a delay is
//! only noted. A report that returns no mail of deskmail's changes nothing: anyone can write a
//! bounce.

use super::{Decided, MailCtx};
use crate::desk::{Desk, DeskError};
use crate::inbound::classify::Bounce;
use crate::store::{NewHistoryRow, Tx};

impl Desk {
    pub(super) async fn bounce(
        &self,
        tx: &mut Tx,
        m: &mut MailCtx<'_>,
    ) -> Result<Decided, DeskError> {
        let b = m.reading.class.bounce.clone().unwrap_or_else(|| Bounce {
            recipient: None,
            status: "5.0.0".into(),
            permanent: true,
            diagnostic: String::new(),
            original_message_id: None,
        });
        let linked = match &b.original_message_id {
            Some(id) => tx.outbox_by_message_id(id).await?,
            None => None,
        };
        let Some((ticket_id, notified, event)) = linked else {
            return self.unlinked_bounce(tx, m, &b).await;
        };
        // The failed address must be the one the notification went to.
        if let Some(r) = b.recipient.as_ref().filter(|r| **r != notified) {
            let why = format!(
                "a bounce for {r}, but the returned notification went to {notified}: kept, nothing changed"
            );
            return Ok(m.kept(why, ticket_id));
        }
        let why = failure_text(&b);
        let rec = match ticket_id {
            Some(t) => tx.ticket_by_id(t).await?,
            None => None,
        };
        if let Some(rec) = &rec {
            m.report.ticket = Some(rec.ticket.reference.clone());
            m.report.matched_by = "references";
            let kind = if b.permanent {
                "delivery_failed"
            } else {
                "delivery_delayed"
            };
            let detail = format!("{event} to {notified}: {why}");
            note(tx, m, rec.id, &notified, kind, &detail).await?;
        }
        if !b.permanent {
            return Ok(m.kept(
                format!("delay notice for {notified} ({why}): noted"),
                rec.map(|r| r.id),
            ));
        }
        tx.mark_failing(&notified, &why, m.now).await?;
        if let Some(rec) = &rec
            && event != "delivery_failed"
        {
            self.enqueue_failure(tx, rec, &notified, &why, m.now)
                .await?;
        }
        Ok(m.kept(
            format!(
                "bounce: {notified} fails ({why}); later notifications skip it, the support team is told"
            ),
            rec.map(|r| r.id),
        ))
    }

    /// A bounce that returns no notification deskmail sent. Named by its subject only
    /// ("Undeliverable: [SUP-...]"), it is noted on the ticket, but no address is marked on a
    /// claim anyone could write.
    async fn unlinked_bounce(
        &self,
        tx: &mut Tx,
        m: &mut MailCtx<'_>,
        b: &Bounce,
    ) -> Result<Decided, DeskError> {
        let about = match &b.recipient {
            Some(r) => format!("{} for {r}", b.status),
            None => b.status.clone(),
        };
        let Some(rec) = self.find_ticket(tx, m, None).await? else {
            return Ok(m.kept(
                format!("a bounce ({about}) of no mail deskmail sent: kept, nothing changed"),
                None,
            ));
        };
        let sender = m.reading.sender.address.clone();
        let detail = format!(
            "a bounce ({about}) that returns no mail deskmail can identify: nothing marked"
        );
        note(tx, m, rec.id, &sender, "bounce", &detail).await?;
        Ok(m.kept(
            format!(
                "a bounce ({about}) naming the ticket, not a notification: noted, no address marked"
            ),
            Some(rec.id),
        ))
    }
}

/// A line in the ticket's history about a bounce.
async fn note(
    tx: &mut Tx,
    m: &MailCtx<'_>,
    ticket_id: i64,
    actor: &str,
    kind: &str,
    detail: &str,
) -> Result<(), DeskError> {
    tx.insert_history(&NewHistoryRow {
        ticket_id,
        actor,
        action: "bounce",
        kind,
        detail,
        inbound_id: Some(m.id),
        at: m.now,
    })
    .await?;
    Ok(())
}

/// What failed, in words: `5.1.1 permanent failure: user unknown`.
fn failure_text(b: &Bounce) -> String {
    let what = if b.permanent {
        "permanent failure"
    } else {
        "delivery delayed"
    };
    if b.diagnostic.is_empty() {
        format!("{} {what}", b.status)
    } else {
        format!("{} {what}: {}", b.status, b.diagnostic)
    }
}
