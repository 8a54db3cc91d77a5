//! Reading tickets as a reader may see them: one ticket, a page of the list, the actions open
//! to them.

use serde::Serialize;

use super::{Desk, DeskError};
use crate::directory::{Access, Party};
use crate::store::{CommentRow, HistoryRow, Page, TicketFilter, TicketRecord};
use crate::workflow::{self, Actor, AllowedAction, Ticket, Visibility};

/// A ticket with its comments and history, as a reader may see it.
#[derive(Debug, Clone, Serialize)]
pub struct TicketView {
    #[serde(flatten)]
    pub ticket: Ticket,
    pub comments: Vec<CommentRow>,
    pub history: Vec<HistoryRow>,
}

/// A page of `ticket list`.
#[derive(Debug, Clone)]
pub struct TicketPage {
    pub tickets: Vec<Ticket>,
    /// The ref the next page starts after, when there is one.
    pub next: Option<String>,
}

/// Which tickets a reader sees, as the store filters them ([`Actor::can_see`]); None for an
/// agent, who sees them all.
fn visibility(reader: &Actor) -> Option<crate::store::Visibility> {
    let address = reader.person.address.clone();
    match &reader.person.party {
        Party::Agent => None,
        Party::Customer {
            organisation,
            access,
            customer_it,
        } => Some(crate::store::Visibility {
            address,
            partner: None,
            organisation: (*access == Access::Power || *customer_it).then(|| organisation.clone()),
        }),
        Party::Partner { partner } => Some(crate::store::Visibility {
            address,
            partner: Some(partner.clone()),
            organisation: None,
        }),
    }
}

impl Desk {
    /// The actions `actor` may take on a ticket.
    pub async fn allowed(
        &self,
        reference: &str,
        actor: &Actor,
    ) -> Result<Vec<AllowedAction>, DeskError> {
        let rec = self.visible(reference, Some(actor)).await?;
        let wf = self.workflow_for(&rec.ticket)?;
        Ok(workflow::allowed_actions(
            &wf,
            &self.settings.directory,
            &rec.ticket,
            actor,
        ))
    }

    async fn visible(
        &self,
        reference: &str,
        reader: Option<&Actor>,
    ) -> Result<TicketRecord, DeskError> {
        let rec = self
            .store
            .ticket(reference.trim())
            .await?
            .ok_or_else(|| DeskError::UnknownTicket(reference.trim().to_string()))?;
        if let Some(a) = reader
            && !a.can_see(&rec.ticket)
        {
            return Err(DeskError::NotVisible {
                who: a.address().to_string(),
                reference: rec.ticket.reference,
            });
        }
        Ok(rec)
    }

    /// A ticket with its comments and history; a reader who is not an agent sees no internal
    /// comments and no notice lines.
    pub async fn show(
        &self,
        reference: &str,
        reader: Option<&Actor>,
    ) -> Result<TicketView, DeskError> {
        let rec = self.visible(reference, reader).await?;
        let agent_view = reader.is_none_or(Actor::is_agent);
        let mut comments = self.store.comments(rec.id).await?;
        let mut history = self.store.history(rec.id).await?;
        if !agent_view {
            comments.retain(|c| c.visibility == Visibility::Public.as_str());
            history.retain(|h| h.kind != "notice" && h.kind != "comment");
        }
        Ok(TicketView {
            ticket: rec.ticket,
            comments,
            history,
        })
    }

    /// A page of the tickets matching the filter that the reader may see, newest first, and
    /// where the next page starts (None: this was the last).
    pub async fn list(
        &self,
        filter: &TicketFilter,
        reader: Option<&Actor>,
        page: Page<'_>,
    ) -> Result<TicketPage, DeskError> {
        if let Some(after) = page.after {
            let upper = after.to_uppercase();
            if self.store.ticket(after).await?.is_none()
                && self.store.ticket(&upper).await?.is_none()
            {
                return Err(DeskError::UnknownTicket(format!("{after} (--after)")));
            }
        }
        let filter = TicketFilter {
            visible_to: reader.and_then(visibility),
            ..filter.clone()
        };
        let limit = page.limit.max(1);
        let asked = Page {
            after: page.after,
            limit: limit + 1,
        };
        let mut tickets: Vec<Ticket> = self
            .store
            .tickets(&filter, asked)
            .await?
            .into_iter()
            .map(|r| r.ticket)
            .collect();
        let next = crate::store::next_page(&mut tickets, limit, |t| t.reference.clone());
        Ok(TicketPage { tickets, next })
    }
}
