//! The effects of one intent, built up step by step: the action's own changes, then the rules.

use jiff::Timestamp;

use crate::directory::Directory;

use super::definition::{StateKind, Workflow};
use super::model::{
    Actor, Audience, Effects, Event, HistoryEntry, NewComment, Notice, Ticket, Turn,
};

pub(crate) struct Draft<'a> {
    pub wf: &'a Workflow,
    pub dir: &'a Directory,
    pub now: Timestamp,
    pub ticket: Ticket,
    pub previous_status: Option<String>,
    pub comment: Option<NewComment>,
    pub notices: Vec<Notice>,
    pub history: Vec<HistoryEntry>,
    pub merge_into: Option<String>,
}

impl<'a> Draft<'a> {
    pub fn new(wf: &'a Workflow, dir: &'a Directory, ticket: Ticket, now: Timestamp) -> Self {
        Draft {
            wf,
            dir,
            now,
            ticket,
            previous_status: None,
            comment: None,
            notices: Vec::new(),
            history: Vec::new(),
            merge_into: None,
        }
    }

    pub fn kind_of(&self, status: &str) -> Option<StateKind> {
        self.wf
            .states
            .iter()
            .find(|s| s.name == status)
            .map(|s| s.kind)
    }

    /// Moves the ticket to `to` (no-op when already there); `partner` is the partner a
    /// per-partner transition sends it to, for a state whose turn is `partner`.
    pub fn set_status(&mut self, to: &str, partner: Option<&str>, why: &str) -> Option<Event> {
        let from = self.ticket.status.clone();
        if from == to {
            return None;
        }
        let from_kind = self.kind_of(&from);
        let to_kind = self.kind_of(to);
        self.ticket.status = to.to_string();
        self.ticket.status_since = self.now;
        self.ticket.timers_fired.clear();
        self.ticket.waiting_on = self.turn_of(to, partner);
        if to_kind == Some(StateKind::Closed) {
            self.ticket.closed_at = Some(self.now);
        } else if from_kind == Some(StateKind::Closed) {
            self.ticket.closed_at = None;
        }
        if self.previous_status.is_none() {
            self.previous_status = Some(from.clone());
        }
        let detail = if why.is_empty() {
            format!("{from} → {to}")
        } else {
            format!("{from} → {to} ({why})")
        };
        self.history.push(HistoryEntry::new("status", detail));
        Some(status_event(from_kind, to_kind))
    }

    /// Whose move it is in `status`.
    pub fn turn_of(&self, status: &str, partner: Option<&str>) -> Turn {
        let spec = self
            .wf
            .states
            .iter()
            .find(|s| s.name == status)
            .map(|s| s.turn.as_str())
            .unwrap_or("support");
        match spec {
            "support" => Turn::Support,
            "customer" => Turn::Customer,
            "customer_it" => Turn::CustomerIt,
            "none" => Turn::Nobody,
            "partner" => match partner {
                Some(p) => Turn::Partner(p.to_string()),
                None => match &self.ticket.waiting_on {
                    Turn::Partner(p) => Turn::Partner(p.clone()),
                    _ => self
                        .primary_partner()
                        .map(Turn::Partner)
                        .unwrap_or(Turn::Support),
                },
            },
            other => other
                .strip_prefix("group:")
                .map(|g| Turn::Group(g.to_string()))
                .unwrap_or(Turn::Support),
        }
    }

    /// The ticket's primary partner: the organisation's first partner still involved, else the
    /// first involved one.
    pub fn primary_partner(&self) -> Option<String> {
        let org = self
            .ticket
            .organisation
            .as_deref()
            .and_then(|o| self.dir.organisation(o));
        org.and_then(|o| {
            o.partners
                .iter()
                .find(|p| self.ticket.involved_partners.contains(p))
                .cloned()
        })
        .or_else(|| self.ticket.involved_partners.first().cloned())
    }

    pub fn set_field(&mut self, name: &str, value: &str) {
        if self.ticket.fields.get(name).map(String::as_str) == Some(value) {
            return;
        }
        self.ticket
            .fields
            .insert(name.to_string(), value.to_string());
        self.history
            .push(HistoryEntry::new("field", format!("{name} = {value}")));
    }

    /// Adds notices for the workflow's audience tokens, resolved for this ticket and actor.
    pub fn notify(
        &mut self,
        tokens: &[String],
        event: Event,
        actor: Option<&Actor>,
        partner: Option<&str>,
    ) {
        for token in tokens {
            for audience in self.audiences(token, actor, partner) {
                let notice = Notice { event, audience };
                if !self.notices.contains(&notice) {
                    self.notices.push(notice);
                }
            }
        }
    }

    fn audiences(
        &self,
        token: &str,
        actor: Option<&Actor>,
        partner: Option<&str>,
    ) -> Vec<Audience> {
        let t = &self.ticket;
        match token {
            "support" => vec![Audience::Support],
            "customer_group" => vec![Audience::CustomerGroup],
            "requester" => vec![Audience::Requester],
            "watchers" => vec![Audience::Watchers],
            "partner" => partner
                .map(String::from)
                .or_else(|| match &t.waiting_on {
                    Turn::Partner(p) => Some(p.clone()),
                    _ => None,
                })
                .map(Audience::Partner)
                .into_iter()
                .collect(),
            "primary_partner" => self
                .primary_partner()
                .map(Audience::Partner)
                .into_iter()
                .collect(),
            "involved_partners" => t
                .involved_partners
                .iter()
                .cloned()
                .map(Audience::Partner)
                .collect(),
            "other_side" => {
                let from_customer = actor.is_some_and(|a| a.organisation().is_some());
                if from_customer {
                    match self.primary_partner() {
                        Some(p) => vec![Audience::Partner(p)],
                        None => vec![Audience::Support],
                    }
                } else {
                    vec![Audience::Requester]
                }
            }
            "customer_it" | "customer_it_assignee" => match &t.customer_it_assignee {
                Some(a) => vec![Audience::Person(a.clone())],
                None => t
                    .organisation
                    .as_deref()
                    .map(|o| self.dir.customer_it(o))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| Audience::Person(m.address.clone()))
                    .collect(),
            },
            "assignee" => match &t.assignee {
                Some(a) => vec![Audience::Person(a.clone())],
                None => vec![Audience::Support],
            },
            other => other
                .strip_prefix("group:")
                .map(|g| Audience::Group(g.to_string()))
                .into_iter()
                .collect(),
        }
    }

    pub fn finish(mut self, action: &str) -> Effects {
        self.ticket.updated_at = self.now;
        Effects {
            action: action.to_string(),
            ticket: self.ticket,
            previous_status: self.previous_status,
            comment: self.comment,
            notices: self.notices,
            history: self.history,
            merge_into: self.merge_into,
        }
    }
}

/// The event a status change announces.
pub(crate) fn status_event(from: Option<StateKind>, to: Option<StateKind>) -> Event {
    match (from, to) {
        (_, Some(StateKind::Resolved)) => Event::Resolved,
        (_, Some(StateKind::Closed)) => Event::Closed,
        (Some(StateKind::Resolved | StateKind::Closed), _) => Event::Reopened,
        _ => Event::StatusChanged,
    }
}
