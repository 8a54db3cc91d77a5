//! Is a workflow consistent? Every problem is reported, each naming where it is.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::directory::Directory;

use super::definition::{ClosedReply, RuleEvent, Workflow};
use super::engine::{KNOWN_FIELDS, from_admits};
use super::model::{Event, ROLE_TOKENS};
use super::resolve;
use super::rules::parse_duration;

/// Audience tokens a workflow may name in `notify`.
pub const AUDIENCE_TOKENS: [&str; 11] = [
    "support",
    "customer_group",
    "requester",
    "watchers",
    "partner",
    "primary_partner",
    "involved_partners",
    "other_side",
    "customer_it",
    "customer_it_assignee",
    "assignee",
];

const TURN_TOKENS: [&str; 5] = ["support", "customer", "partner", "customer_it", "none"];

struct Check<'a> {
    wf: &'a Workflow,
    dir: &'a Directory,
    problems: Vec<String>,
}

impl Check<'_> {
    fn state_known(&mut self, at: &str, name: &str) {
        if !self.wf.states.iter().any(|s| s.name == name) {
            self.problems
                .push(format!("{at}: unknown state \"{name}\""));
        }
    }

    fn roles_known(&mut self, at: &str, roles: &[String]) {
        for r in roles {
            if !ROLE_TOKENS.contains(&r.as_str()) {
                self.problems.push(format!(
                    "{at}: unknown role \"{r}\" (known: {})",
                    ROLE_TOKENS.join(", ")
                ));
            }
        }
    }

    fn group_known(&mut self, at: &str, group: &str) {
        if self.dir.group(group).is_none() {
            self.problems.push(format!(
                "{at}: unknown agent group \"{group}\" (the config's [[team.groups]])"
            ));
        }
    }

    fn audiences_known(&mut self, at: &str, tokens: &[String]) {
        for t in tokens {
            if let Some(g) = t.strip_prefix("group:") {
                self.group_known(at, g);
            } else if !AUDIENCE_TOKENS.contains(&t.as_str()) {
                self.problems.push(format!(
                    "{at}: unknown audience \"{t}\" (known: {}, group:<name>)",
                    AUDIENCE_TOKENS.join(", ")
                ));
            }
        }
    }

    fn event_known(&mut self, at: &str, event: Option<&str>) {
        if let Some(e) = event
            && Event::parse(e).is_none()
        {
            self.problems.push(format!("{at}: unknown event \"{e}\""));
        }
    }

    fn field_known(&mut self, at: &str, name: &str) {
        if !KNOWN_FIELDS.contains(&name) && !self.wf.fields.iter().any(|f| f.name == name) {
            self.problems
                .push(format!("{at}: unknown field \"{name}\""));
        }
    }
}

/// Checks a workflow; an empty list means it is consistent. `dir` supplies agent groups and
/// partner names (per-partner actions are expanded for them).
pub fn validate(wf: &Workflow, dir: &Directory) -> Vec<String> {
    let mut c = Check {
        wf,
        dir,
        problems: Vec::new(),
    };
    if wf.name.trim().is_empty() {
        c.problems.push("name: must not be empty".into());
    }
    if wf.states.is_empty() {
        c.problems
            .push("states: a workflow needs at least one state".into());
    }
    let mut seen = BTreeSet::new();
    for (i, s) in wf.states.iter().enumerate() {
        let at = format!("states[{i}] \"{}\"", s.name);
        if !seen.insert(s.name.as_str()) {
            c.problems.push(format!("{at}: duplicate state"));
        }
        match s.turn.strip_prefix("group:") {
            Some(g) => c.group_known(&format!("{at}: turn"), g),
            None if !TURN_TOKENS.contains(&s.turn.as_str()) => c.problems.push(format!(
                "{at}: turn: unknown turn \"{}\" (known: {}, group:<name>)",
                s.turn,
                TURN_TOKENS.join(", ")
            )),
            None => {}
        }
    }
    c.state_known("initial", &wf.initial);
    c.roles_known("comment.roles", &wf.comment.roles);
    c.audiences_known("comment.notify", &wf.comment.notify);
    c.audiences_known("create.notify", &wf.create.notify);
    for f in wf.create.fields.iter().chain(&wf.create.required) {
        c.field_known("create.fields", f);
    }
    for (i, t) in wf.transitions.iter().enumerate() {
        let at = format!("transitions[{i}] \"{}\"", t.name);
        if t.per_partner && !t.name.contains("{partner}") {
            c.problems.push(format!(
                "{at}: a per_partner transition's name must contain {{partner}}"
            ));
        }
        for f in &t.from {
            match f.strip_prefix('@') {
                Some(k) if ["open", "waiting", "resolved", "closed"].contains(&k) => {}
                Some(k) => c
                    .problems
                    .push(format!("{at}: from: unknown state kind \"@{k}\"")),
                None => c.state_known(&format!("{at}: from"), f),
            }
        }
        if let Some(to) = &t.to {
            c.state_known(&format!("{at}: to"), to);
        }
        if t.roles.is_empty() {
            c.problems.push(format!("{at}: roles: no role may take it"));
        }
        c.roles_known(&format!("{at}: roles"), &t.roles);
        for st in &t.when.status {
            c.state_known(&format!("{at}: when.status"), st);
        }
        c.roles_known(&format!("{at}: when.role"), &t.when.role);
        for k in t.when.field.keys().chain(&t.when.unset) {
            c.field_known(&format!("{at}: when.field"), k);
        }
        c.audiences_known(&format!("{at}: notify"), &t.notify);
        c.event_known(&format!("{at}: event"), t.event.as_deref());
        if let Some(v) = &t.comment_visibility
            && v != "public"
            && v != "internal"
        {
            c.problems.push(format!(
                "{at}: comment_visibility: \"{v}\" is neither public nor internal"
            ));
        }
        for f in &t.fields {
            c.field_known(&format!("{at}: fields"), &f.name);
        }
    }
    let mut rule_names = BTreeSet::new();
    for (i, r) in wf.rules.iter().enumerate() {
        let at = format!("rules[{i}] \"{}\"", r.name);
        if !rule_names.insert(r.name.as_str()) {
            c.problems.push(format!("{at}: duplicate rule name"));
        }
        for s in &r.when.status {
            c.state_known(&format!("{at}: when.status"), s);
        }
        c.roles_known(&format!("{at}: when.role"), &r.when.role);
        if let Some(s) = &r.set_status {
            c.state_known(&format!("{at}: set_status"), s);
        }
        for k in r.set.keys().chain(r.when.field.keys()).chain(&r.when.unset) {
            c.field_known(&format!("{at}: field"), k);
        }
        c.audiences_known(&format!("{at}: notify"), &r.notify);
        c.event_known(&format!("{at}: event"), r.event.as_deref());
        match (r.on, r.after.as_deref()) {
            (RuleEvent::Time, None) => c.problems.push(format!(
                "{at}: a time rule needs after = \"7d\" (or h, m, s)"
            )),
            (RuleEvent::Time, Some(a)) if parse_duration(a).is_none() => c.problems.push(format!(
                "{at}: after: \"{a}\" is not a duration such as 7d, 36h or 90m"
            )),
            (RuleEvent::Time, Some(_)) => {}
            (_, Some(_)) => c
                .problems
                .push(format!("{at}: after: only time rules wait")),
            (_, None) => {}
        }
    }
    let mut field_names = BTreeSet::new();
    for f in &wf.fields {
        if !field_names.insert(f.name.as_str()) {
            c.problems
                .push(format!("fields \"{}\": duplicate field", f.name));
        }
    }
    let mut problems = c.problems;
    problems.extend(ambiguous_names(wf, dir));
    if problems.is_empty() {
        problems.extend(unreachable_states(wf));
    }
    problems
}

/// Two different actions answering to one name would make a reply's command ambiguous.
fn ambiguous_names(wf: &Workflow, dir: &Directory) -> Vec<String> {
    let mut by_name: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, action) in resolve::all_names(wf, dir) {
        by_name.entry(name).or_default().insert(action);
    }
    by_name
        .into_iter()
        .filter(|(_, actions)| actions.len() > 1)
        .map(|(name, actions)| {
            format!(
                "the name \"{name}\" is used by several actions: {}",
                actions.into_iter().collect::<Vec<_>>().join(", ")
            )
        })
        .collect()
}

/// States no ticket can ever reach from the initial state.
fn unreachable_states(wf: &Workflow) -> Vec<String> {
    let mut reached = BTreeSet::new();
    let mut queue = VecDeque::from([wf.initial.clone()]);
    while let Some(state) = queue.pop_front() {
        if !reached.insert(state.clone()) {
            continue;
        }
        let mut next: Vec<String> = Vec::new();
        for t in &wf.transitions {
            if let Some(to) = &t.to
                && from_admits(wf, t, &state)
            {
                next.push(to.clone());
            }
        }
        for r in &wf.rules {
            if let Some(to) = &r.set_status
                && (r.when.status.is_empty() || r.when.status.contains(&state))
            {
                next.push(to.clone());
            }
        }
        if wf.on_closed_reply == ClosedReply::Reopen {
            next.push(wf.initial.clone());
        }
        // "Merge into" closes a ticket from any state that is not closed.
        if let Some(closed) = wf
            .states
            .iter()
            .find(|s| s.kind == super::definition::StateKind::Closed)
        {
            next.push(closed.name.clone());
        }
        queue.extend(next);
    }
    wf.states
        .iter()
        .filter(|s| !reached.contains(&s.name))
        .map(|s| {
            format!(
                "states \"{}\": unreachable from the initial state \"{}\"",
                s.name, wf.initial
            )
        })
        .collect()
}
