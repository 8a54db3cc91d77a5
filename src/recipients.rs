//! From the core's audiences to mail addresses, through the directory. Pure.

use crate::directory::Directory;
use crate::workflow::{Audience, Ticket};

/// The addresses an audience stands for on this ticket, lower-case, without duplicates.
pub fn addresses(dir: &Directory, ticket: &Ticket, audience: &Audience) -> Vec<String> {
    let mut out: Vec<String> = match audience {
        Audience::Support => vec![dir.helpdesk.team_address.clone()],
        Audience::CustomerGroup => {
            let group = ticket
                .organisation
                .as_deref()
                .and_then(|o| dir.organisation(o))
                .map(|o| o.support_group.clone())
                .unwrap_or_default();
            // Without a customer support group, the requester stands for the customer side.
            if group.is_empty() {
                vec![ticket.requester.clone()]
            } else {
                group
            }
        }
        Audience::Requester => vec![ticket.requester.clone()],
        Audience::Partner(p) => dir.partner_addresses(p),
        Audience::Person(a) => vec![a.clone()],
        Audience::Group(g) => dir
            .group(g)
            .map(|g| g.address.clone())
            .into_iter()
            .collect(),
        Audience::Watchers => ticket.watchers.clone(),
    };
    out.retain(|a| !a.is_empty());
    for a in &mut out {
        *a = a.to_lowercase();
    }
    out.dedup();
    out
}

/// A short description for history lines: `partner IT Provider`, `customer group`.
pub fn describe(audience: &Audience) -> String {
    match audience {
        Audience::Support => "support team".into(),
        Audience::CustomerGroup => "customer group".into(),
        Audience::Requester => "requester".into(),
        Audience::Partner(p) => format!("partner {p}"),
        Audience::Person(a) => a.clone(),
        Audience::Group(g) => format!("group {g}"),
        Audience::Watchers => "watchers".into(),
    }
}
