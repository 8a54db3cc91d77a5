//! Which ticket a mail belongs to, as the sender may see it (the ways a mail names a ticket are
//! `inbound::matching`'s).

use super::MailCtx;
use crate::desk::{Desk, DeskError};
use crate::inbound::{MatchedBy, Reading, matching};
use crate::store::{TicketRecord, Tx};
use crate::workflow::Actor;

/// The ways a mail names its ticket, most trusted first.
const WAYS: [MatchedBy; 4] = [
    MatchedBy::Token,
    MatchedBy::References,
    MatchedBy::Subject,
    MatchedBy::Footer,
];

impl Desk {
    /// The ticket a mail belongs to: the first one it names, way by way (each looked up only
    /// when the ways before named no ticket the sender may see), that `actor` may see. A
    /// ticket they may not see is no match: it is noted for the admin and not revealed to the
    /// sender. The report says which ticket and how.
    pub(super) async fn find_ticket(
        &self,
        tx: &mut Tx,
        m: &mut MailCtx<'_>,
        actor: Option<&Actor>,
    ) -> Result<Option<TicketRecord>, DeskError> {
        let mut tried: Vec<String> = Vec::new();
        for by in WAYS {
            for reference in self.named(tx, m.reading, by).await? {
                if tried.contains(&reference) {
                    continue;
                }
                tried.push(reference.clone());
                let Some(rec) = tx.ticket_for_update(&reference).await? else {
                    continue;
                };
                if actor.is_some_and(|a| !a.can_see(&rec.ticket)) {
                    tracing::info!(ticket = %reference, by = by.as_str(), "names a ticket the sender may not see: no match");
                    m.report.notes.push(format!(
                        "{} names {reference}, which the sender may not see: not matched",
                        by.as_str()
                    ));
                    continue;
                }
                m.report.ticket = Some(rec.ticket.reference.clone());
                m.report.matched_by = by.as_str();
                return Ok(Some(rec));
            }
        }
        Ok(None)
    }

    /// The tickets a mail names one way.
    async fn named(
        &self,
        tx: &mut Tx,
        reading: &Reading,
        by: MatchedBy,
    ) -> Result<Vec<String>, DeskError> {
        let c = &reading.candidates;
        Ok(match by {
            MatchedBy::Token => c.token.iter().cloned().collect(),
            MatchedBy::References if !c.message_ids.is_empty() => {
                let found = tx.tickets_by_message_ids(&c.message_ids).await?;
                // In-Reply-To first, then References from the newest.
                c.message_ids
                    .iter()
                    .find_map(|id| found.iter().find(|(m, _)| m == id))
                    .map(|(_, r)| r.clone())
                    .into_iter()
                    .collect()
            }
            MatchedBy::Subject => c.subject.clone(),
            MatchedBy::Footer => matching::footer(&reading.mail, &self.reader.finder),
            MatchedBy::References | MatchedBy::None => Vec::new(),
        })
    }
}
