//! An auto-reply (out of office, vacation): noted on its ticket, nothing else. It never changes
//! a ticket's state, owner or turn, and is never answered.

use super::{Decided, MailCtx};
use crate::desk::{Desk, DeskError};
use crate::store::{NewHistoryRow, Tx};

impl Desk {
    pub(super) async fn auto_reply(
        &self,
        tx: &mut Tx,
        m: &mut MailCtx<'_>,
    ) -> Result<Decided, DeskError> {
        let Some(rec) = self.find_ticket(tx, m, None).await? else {
            return Ok(m.kept("an auto-reply to no known ticket: kept, nothing done", None));
        };
        let from = &m.reading.sender.address;
        tx.insert_history(&NewHistoryRow {
            ticket_id: rec.id,
            actor: from,
            action: "auto-reply",
            kind: "auto_reply",
            detail: &format!(
                "auto-reply from {from}: \"{}\" ({})",
                m.reading.mail.subject, m.reading.class.reason
            ),
            inbound_id: Some(m.id),
            at: m.now,
        })
        .await?;
        Ok(m.kept(
            "an auto-reply: noted on the ticket, nothing changed, not answered",
            Some(rec.id),
        ))
    }
}
