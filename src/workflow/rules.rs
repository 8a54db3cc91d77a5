//! Rules: on an event, under a condition, do an action. Time rules fire on a sweep.

use jiff::Timestamp;

use crate::directory::Directory;

use super::definition::{Condition, Rule, RuleEvent, StateKind, Workflow};
use super::draft::Draft;
use super::model::{Actor, Effects, Event, HistoryEntry, Ticket};

/// The plus-part of an address: `support+gdpr-delete@x` → `gdpr-delete`.
pub fn plus_part(address: &str) -> Option<&str> {
    let local = address.split('@').next()?;
    let (_, plus) = local.split_once('+')?;
    (!plus.is_empty()).then_some(plus)
}

/// Does the condition hold for this ticket and actor (none for time rules)?
pub fn holds(cond: &Condition, ticket: &Ticket, actor: Option<&Actor>) -> bool {
    if !cond.status.is_empty() && !cond.status.contains(&ticket.status) {
        return false;
    }
    if !cond.role.is_empty() {
        let Some(actor) = actor else { return false };
        let roles = actor.roles(ticket);
        if !cond.role.iter().any(|r| roles.contains(&r.as_str())) {
            return false;
        }
    }
    if let Some(v) = cond.verified
        && actor.is_none_or(|a| a.verified() != v)
    {
        return false;
    }
    if !cond.source.is_empty()
        && !cond
            .source
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&ticket.source))
    {
        return false;
    }
    if !cond.to_plus.is_empty() {
        let plus = ticket.system.as_deref().and_then(plus_part);
        if !plus.is_some_and(|p| cond.to_plus.iter().any(|c| c.eq_ignore_ascii_case(p))) {
            return false;
        }
    }
    for (field, values) in &cond.field {
        let value = ticket.fields.get(field);
        if !value.is_some_and(|v| values.iter().any(|c| c.eq_ignore_ascii_case(v))) {
            return false;
        }
    }
    cond.unset.iter().all(|f| !ticket.fields.contains_key(f))
}

/// Applies one rule's action to the draft.
fn fire(draft: &mut Draft<'_>, rule: &Rule, actor: Option<&Actor>) {
    let mut status_event = None;
    if let Some(to) = &rule.set_status {
        status_event = draft.set_status(to, None, &format!("rule \"{}\"", rule.name));
    }
    for (name, value) in &rule.set {
        draft.set_field(name, value);
    }
    if !rule.notify.is_empty() {
        let event = rule
            .event
            .as_deref()
            .and_then(Event::parse)
            .or(status_event)
            .unwrap_or(if rule.on == RuleEvent::Time {
                Event::Reminder
            } else {
                Event::StatusChanged
            });
        draft.notify(&rule.notify, event, actor, None);
    }
}

/// Runs every rule on `event` whose condition holds, in the order the workflow lists them.
pub(crate) fn run(draft: &mut Draft<'_>, event: RuleEvent, actor: Option<&Actor>) {
    let wf = draft.wf;
    for rule in wf.rules.iter().filter(|r| r.on == event) {
        if holds(&rule.when, &draft.ticket, actor) {
            fire(draft, rule, actor);
        }
    }
}

/// Parses `7d`, `36h`, `90m`, `45s` (or a sum such as `1d12h`) into seconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = digits.parse().ok()?;
        digits.clear();
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    digits.is_empty().then_some(total)
}

/// Applies the time rules that are due at `now`: each fires once per stay in a state.
pub fn sweep(wf: &Workflow, dir: &Directory, ticket: &Ticket, now: Timestamp) -> Option<Effects> {
    let mut draft = Draft::new(wf, dir, ticket.clone(), now);
    let mut fired = Vec::new();
    for rule in wf.rules.iter().filter(|r| r.on == RuleEvent::Time) {
        let Some(after) = rule.after.as_deref().and_then(parse_duration) else {
            continue;
        };
        let due = draft.ticket.status_since.as_second().saturating_add(after);
        if draft.ticket.timers_fired.contains(&rule.name)
            || now.as_second() < due
            || !holds(&rule.when, &draft.ticket, None)
        {
            continue;
        }
        draft.history.push(HistoryEntry::new(
            "rule",
            format!("time rule \"{}\"", rule.name),
        ));
        let status = draft.ticket.status.clone();
        fire(&mut draft, rule, None);
        // Each stay in a state fires a rule once; a status change starts a new stay.
        if draft.ticket.status == status {
            draft.ticket.timers_fired.push(rule.name.clone());
        }
        fired.push(rule.name.clone());
    }
    if fired.is_empty() {
        return None;
    }
    Some(draft.finish(&fired.join(", ")))
}

/// When a ticket's first time rule is due, as the store keeps it beside the ticket: the sweep
/// reads only the tickets whose time has come. Made only here, from the ticket as it is about
/// to be written, so that no write can leave it out of step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due(Option<Timestamp>);

impl Due {
    /// No rule will fire: for a ticket of a workflow this deskmail does not know.
    pub const NONE: Due = Due(None);

    /// The earliest time at which [`sweep`] would fire a rule on the ticket as it is: over the
    /// time rules that have not fired in this stay and whose condition holds now (nothing but
    /// a write can change that), the time entered plus the rule's delay. None in a closed
    /// state (the sweep leaves those alone) and when no rule can fire.
    pub fn of(wf: &Workflow, ticket: &Ticket) -> Due {
        let open = wf
            .states
            .iter()
            .any(|s| s.name == ticket.status && s.kind != StateKind::Closed);
        if !open {
            return Due(None);
        }
        let due = wf
            .rules
            .iter()
            .filter(|r| r.on == RuleEvent::Time && !ticket.timers_fired.contains(&r.name))
            .filter(|r| holds(&r.when, ticket, None))
            .filter_map(|r| r.after.as_deref().and_then(parse_duration))
            .map(|after| ticket.status_since.as_second().saturating_add(after))
            .min()
            .and_then(|second| Timestamp::from_second(second).ok());
        Due(due)
    }

    pub fn at(self) -> Option<Timestamp> {
        self.0
    }

    /// What the due times of a workflow's tickets follow from (its time rules, its states and
    /// their kinds), as text: when it changes, the times kept are worked out again.
    pub fn basis(wf: &Workflow) -> String {
        let rules: Vec<_> = wf
            .rules
            .iter()
            .filter(|r| r.on == RuleEvent::Time)
            .collect();
        let states: Vec<_> = wf.states.iter().map(|s| (&s.name, s.kind)).collect();
        serde_json::json!({ "rules": rules, "states": states }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d"), Some(7 * 86_400));
        assert_eq!(parse_duration("1d12h"), Some(86_400 + 12 * 3_600));
        assert_eq!(parse_duration("90m"), Some(5_400));
        assert_eq!(parse_duration("7"), None);
        assert_eq!(parse_duration("7w"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn plus_parts() {
        assert_eq!(
            plus_part("support+gdpr-delete@helpdesk.example"),
            Some("gdpr-delete")
        );
        assert_eq!(plus_part("support@helpdesk.example"), None);
        assert_eq!(plus_part("support+@helpdesk.example"), None);
    }
}
