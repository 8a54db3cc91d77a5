//! People copied on a mail to a ticket: those who may see it become its watchers.

use super::MailCtx;
use crate::desk::{Desk, DeskError};
use crate::store::{NewHistoryRow, Tx};
use crate::workflow::rules::Due;
use crate::workflow::{Actor, Proof, Ticket};

impl Desk {
    /// People copied (Cc) who are in the directory and may see the ticket become its watchers;
    /// the others are only noted.
    pub(super) async fn add_watchers(
        &self,
        tx: &mut Tx,
        m: &mut MailCtx<'_>,
        actor: &Actor,
        reference: &str,
    ) -> Result<(), DeskError> {
        let copied: Vec<&str> = m
            .reading
            .mail
            .cc
            .iter()
            .map(|c| c.address.as_str())
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
            let known =
                rec.ticket.requester == address || rec.ticket.watchers.iter().any(|w| w == address);
            if known {
                continue;
            }
            if self.may_watch(address, &rec.ticket) {
                rec.ticket.watchers.push(address.to_string());
                added.push(address.to_string());
            } else {
                m.report.notes.push(format!(
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
                inbound_id: Some(m.id),
                at: m.now,
            })
            .await?;
            m.report.notes.push(format!("Cc {a} is now a watcher"));
        }
        Ok(())
    }

    /// Whether `address` is someone in the directory who may see `ticket`.
    fn may_watch(&self, address: &str, ticket: &Ticket) -> bool {
        self.settings
            .directory
            .person(address)
            .is_some_and(|person| {
                Actor {
                    person,
                    proof: Proof::Unverified,
                }
                .can_see(ticket)
            })
    }
}
