//! The core's entry points: create a ticket, act on one, list what an actor may do.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::directory::Directory;

use super::definition::{ClosedReply, RuleEvent, StateKind, Transition, Workflow};
use super::draft::Draft;
use super::model::{
    Actor, AllowedAction, Decision, Event, HistoryEntry, Intent, NewComment, NewTicket, Refusal,
    Rejection, Ticket, Turn, Visibility,
};
use super::resolve::{self, Action};
use super::rules;

/// Field names every workflow knows (`--field key=value`, `Key: value` lines in a mail).
pub const KNOWN_FIELDS: [&str; 9] = [
    "service",
    "sub_category",
    "impact",
    "urgency",
    "satisfaction",
    "request_type",
    "queue",
    "work_type",
    "assignee",
];

/// The answer to a reply on a closed ticket whose workflow opens a new one instead.
#[derive(Debug, Clone)]
pub enum Outcome {
    Decided(Decision),
    /// Open a new ticket that links this one (the shell calls [`create`] with `linked_to`).
    FollowUp,
}

/// Decides what an intent does to an existing ticket.
pub fn act(
    wf: &Workflow,
    dir: &Directory,
    ticket: &Ticket,
    actor: &Actor,
    intent: &Intent,
    now: Timestamp,
) -> Outcome {
    let reject = |reason: Refusal| {
        Outcome::Decided(Decision::Reject(Rejection {
            reason,
            allowed: allowed_actions(wf, dir, ticket, actor),
        }))
    };
    if !actor.can_see(ticket) {
        return Outcome::Decided(Decision::Reject(Rejection {
            reason: Refusal::CannotSee,
            allowed: Vec::new(),
        }));
    }
    let (action, comment, internal, fields) = match intent {
        Intent::Comment { text, internal } => (
            Action::Comment,
            Some(text.as_str()),
            *internal,
            BTreeMap::new(),
        ),
        Intent::Act {
            action,
            comment,
            internal,
            fields,
        } => match resolve::resolve(wf, dir, action) {
            Ok(a) => (a, comment.as_deref(), *internal, fields.clone()),
            Err(r) => return reject(r),
        },
    };
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    if internal && !actor.is_agent() {
        return reject(Refusal::InternalNotAllowed);
    }
    let visibility = if internal {
        Visibility::Internal
    } else {
        Visibility::Public
    };
    let mut draft = Draft::new(wf, dir, ticket.clone(), now);
    let result = match &action {
        Action::Comment => {
            if let Some(o) = closed_reply(wf, &draft, actor) {
                return o;
            }
            comment_on(&mut draft, actor, comment, visibility, &fields)
        }
        Action::Transition {
            transition,
            partner,
            name,
        } => {
            let said = Said {
                comment,
                visibility,
                fields: &fields,
            };
            transition_on(
                &mut draft,
                actor,
                transition,
                partner.as_deref(),
                name,
                said,
            )
        }
        other => agent_action(&mut draft, actor, other, comment, visibility),
    };
    match result {
        Ok(()) => {
            let name = action.display_name(wf);
            Outcome::Decided(Decision::Apply(Box::new(draft.finish(&name))))
        }
        Err(r) => reject(r),
    }
}

/// A plain comment on a closed ticket follows the workflow's `on_closed_reply`.
fn closed_reply(wf: &Workflow, draft: &Draft<'_>, actor: &Actor) -> Option<Outcome> {
    if draft.kind_of(&draft.ticket.status) != Some(StateKind::Closed) {
        return None;
    }
    match wf.on_closed_reply {
        ClosedReply::Keep | ClosedReply::Reopen => None,
        ClosedReply::NewTicket if !actor.is_agent() => Some(Outcome::FollowUp),
        ClosedReply::NewTicket | ClosedReply::Refuse => {
            Some(Outcome::Decided(Decision::Reject(Rejection {
                reason: Refusal::Final {
                    status: draft.ticket.status.clone(),
                },
                allowed: allowed_actions(wf, draft.dir, &draft.ticket, actor),
            })))
        }
    }
}

fn has_role(wf_roles: &[String], actor: &Actor, ticket: &Ticket) -> bool {
    let roles = actor.roles(ticket);
    wf_roles.iter().any(|r| roles.contains(&r.as_str()))
}

fn role_refusal(action: &str, actor: &Actor) -> Refusal {
    Refusal::RoleNotAllowed {
        action: action.to_string(),
        role: actor.person.party.role_name().to_string(),
    }
}

fn comment_on(
    draft: &mut Draft<'_>,
    actor: &Actor,
    comment: Option<&str>,
    visibility: Visibility,
    fields: &BTreeMap<String, String>,
) -> Result<(), Refusal> {
    let wf = draft.wf;
    if !has_role(&wf.comment.roles, actor, &draft.ticket) {
        return Err(role_refusal(&wf.comment.name, actor));
    }
    let Some(text) = comment else {
        return Err(Refusal::EmptyComment);
    };
    // Agents may set fields along with a comment; others set fields through an action that
    // takes them (e.g. Close with satisfaction).
    if !fields.is_empty() {
        if !actor.is_agent() {
            return Err(Refusal::FieldsNotAllowed {
                action: wf.comment.name.clone(),
            });
        }
        for (k, v) in validate_fields(wf, fields)? {
            if k == "assignee" {
                return Err(Refusal::FieldNotTaken {
                    action: wf.comment.name.clone(),
                    field: k,
                    taken: Vec::new(),
                });
            }
            draft.set_field(&k, &v);
        }
    }
    draft.comment = Some(NewComment {
        text: text.to_string(),
        visibility,
    });
    if draft.kind_of(&draft.ticket.status) == Some(StateKind::Closed)
        && wf.on_closed_reply == ClosedReply::Reopen
    {
        let initial = wf.initial.clone();
        draft.set_status(&initial, None, "reply to a closed ticket");
    }
    if visibility == Visibility::Internal {
        return Ok(());
    }
    draft.notify(&wf.comment.notify, Event::Commented, Some(actor), None);
    rules::run(draft, RuleEvent::Comment, Some(actor));
    Ok(())
}

/// Does a transition's `from` list admit this status?
pub fn from_admits(wf: &Workflow, t: &Transition, status: &str) -> bool {
    let kind = wf.states.iter().find(|s| s.name == status).map(|s| s.kind);
    if t.from.is_empty() {
        return kind != Some(StateKind::Closed);
    }
    t.from.iter().any(|f| match f.strip_prefix('@') {
        Some(k) => kind.is_some_and(|kind| kind.as_str() == k),
        None => f == status,
    })
}

/// The checks that decide whether a transition is offered at all (role, partner, state).
fn transition_permitted(
    wf: &Workflow,
    ticket: &Ticket,
    actor: &Actor,
    t: &Transition,
    partner: Option<&str>,
    name: &str,
) -> Result<(), Refusal> {
    // A closed state nothing leads out of is final, whoever asks.
    let closed = wf
        .states
        .iter()
        .any(|s| s.name == ticket.status && s.kind == StateKind::Closed);
    let way_out = wf
        .transitions
        .iter()
        .any(|other| other.to.is_some() && from_admits(wf, other, &ticket.status));
    if closed && !way_out {
        return Err(Refusal::Final {
            status: ticket.status.clone(),
        });
    }
    if !has_role(&t.roles, actor, ticket) {
        return Err(role_refusal(name, actor));
    }
    if let Some(p) = partner {
        if !ticket.involved_partners.iter().any(|i| i == p) {
            return Err(Refusal::PartnerNotInvolved {
                partner: p.to_string(),
            });
        }
        if actor.partner() == Some(p) {
            return Err(Refusal::SamePartner {
                partner: p.to_string(),
            });
        }
    }
    if !rules::holds(&t.when, ticket, Some(actor)) {
        return Err(Refusal::ConditionNotMet {
            action: name.to_string(),
        });
    }
    if !from_admits(wf, t, &ticket.status) {
        return Err(Refusal::WrongState {
            action: name.to_string(),
            status: ticket.status.clone(),
        });
    }
    Ok(())
}

/// What an intent says along with its action: a comment, and fields to set.
#[derive(Clone, Copy)]
struct Said<'a> {
    comment: Option<&'a str>,
    visibility: Visibility,
    fields: &'a BTreeMap<String, String>,
}

fn transition_on(
    draft: &mut Draft<'_>,
    actor: &Actor,
    t: &Transition,
    partner: Option<&str>,
    name: &str,
    said: Said<'_>,
) -> Result<(), Refusal> {
    let Said {
        comment,
        visibility,
        fields,
    } = said;
    let wf = draft.wf;
    transition_permitted(wf, &draft.ticket, actor, t, partner, name)?;
    if t.require_comment && comment.is_none() {
        return Err(Refusal::CommentRequired {
            action: name.to_string(),
        });
    }
    let mut fields = validate_fields(wf, fields)?;
    for f in t.fields.iter().filter(|f| f.required) {
        if !fields.contains_key(&f.name) {
            return Err(Refusal::FieldRequired {
                action: name.to_string(),
                field: f.name.clone(),
            });
        }
    }
    for k in fields.keys() {
        let taken = t.fields.iter().any(|f| &f.name == k);
        // Agents may set fields with any action, except the assignee, which only the actions
        // that assign take.
        if !taken && (!actor.is_agent() || k == "assignee") {
            return Err(Refusal::FieldNotTaken {
                action: name.to_string(),
                field: k.clone(),
                taken: t.fields.iter().map(|f| f.name.clone()).collect(),
            });
        }
    }
    if t.assign_customer_it {
        assign_customer_it(draft, fields.remove("assignee"))?;
    }
    let visibility = match t.comment_visibility.as_deref() {
        Some("internal") => Visibility::Internal,
        _ => visibility,
    };
    if let Some(text) = comment {
        draft.comment = Some(NewComment {
            text: text.to_string(),
            visibility,
        });
    }
    for (k, v) in &fields {
        draft.set_field(k, v);
    }
    let mut event = t.event.as_deref().and_then(Event::parse);
    if let Some(to) = &t.to {
        let changed = draft.set_status(to, partner, "");
        event = event.or(changed);
        if changed.is_none()
            && let Some(p) = partner
        {
            draft.ticket.waiting_on = Turn::Partner(p.to_string());
        }
    }
    draft.notify(
        &t.notify,
        event.unwrap_or(Event::StatusChanged),
        Some(actor),
        partner,
    );
    rules::run(draft, RuleEvent::Transition, Some(actor));
    Ok(())
}

fn assign_customer_it(draft: &mut Draft<'_>, wanted: Option<String>) -> Result<(), Refusal> {
    let org = draft.ticket.organisation.clone().unwrap_or_default();
    let members = draft.dir.customer_it(&org);
    let chosen = match wanted {
        Some(w) => members
            .iter()
            .find(|m| {
                m.address.eq_ignore_ascii_case(w.trim()) || m.name.eq_ignore_ascii_case(w.trim())
            })
            .ok_or(Refusal::NotCustomerIt {
                name: w.clone(),
                organisation: org.clone(),
            })?,
        None => members.first().ok_or(Refusal::NoCustomerIt)?,
    };
    let address = chosen.address.clone();
    if draft.ticket.customer_it_assignee.as_deref() != Some(address.as_str()) {
        draft
            .history
            .push(HistoryEntry::new("customer_it_assignee", address.clone()));
        draft.ticket.customer_it_assignee = Some(address);
    }
    Ok(())
}

/// Checks field names and values against the workflow; returns them as the workflow spells them.
pub fn validate_fields(
    wf: &Workflow,
    fields: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Refusal> {
    let mut out = BTreeMap::new();
    for (name, value) in fields {
        let key = name.trim().to_lowercase().replace(['-', ' '], "_");
        let def = wf.fields.iter().find(|f| f.name == key);
        if def.is_none() && !KNOWN_FIELDS.contains(&key.as_str()) {
            let mut known: Vec<String> = KNOWN_FIELDS.iter().map(|s| s.to_string()).collect();
            known.extend(wf.fields.iter().map(|f| f.name.clone()));
            known.sort();
            known.dedup();
            return Err(Refusal::UnknownField { field: key, known });
        }
        let value = value.trim().to_string();
        let value = match def {
            Some(def) if !def.values.is_empty() => def
                .values
                .iter()
                .find(|v| v.eq_ignore_ascii_case(&value))
                .cloned()
                .ok_or_else(|| Refusal::InvalidField {
                    field: key.clone(),
                    value: value.clone(),
                    allowed: def.values.clone(),
                })?,
            Some(def) if def.min.is_some() || def.max.is_some() => {
                let n: Option<i64> = value.parse().ok();
                let ok = n.is_some_and(|n| {
                    def.min.is_none_or(|m| n >= m) && def.max.is_none_or(|m| n <= m)
                });
                if !ok {
                    return Err(Refusal::InvalidField {
                        field: key,
                        value,
                        allowed: vec![format!(
                            "{} to {}",
                            def.min.map(|m| m.to_string()).unwrap_or_default(),
                            def.max.map(|m| m.to_string()).unwrap_or_default()
                        )],
                    });
                }
                value
            }
            _ => value,
        };
        out.insert(key, value);
    }
    Ok(out)
}

/// The agent actions every workflow has: assign, involve, uninvolve, merge.
fn agent_action(
    draft: &mut Draft<'_>,
    actor: &Actor,
    action: &Action<'_>,
    comment: Option<&str>,
    visibility: Visibility,
) -> Result<(), Refusal> {
    let name = action.display_name(draft.wf);
    if !actor.is_agent() {
        return Err(role_refusal(&name, actor));
    }
    if draft.kind_of(&draft.ticket.status) == Some(StateKind::Closed) {
        return Err(Refusal::Final {
            status: draft.ticket.status.clone(),
        });
    }
    if let Some(text) = comment {
        draft.comment = Some(NewComment {
            text: text.to_string(),
            visibility,
        });
    }
    match action {
        Action::AssignMe | Action::Assign(_) => {
            let agent = match action {
                Action::Assign(who) => draft
                    .dir
                    .agent(who)
                    .ok_or_else(|| Refusal::NotAnAgent { name: who.clone() })?
                    .address
                    .clone(),
                _ => actor.address().to_string(),
            };
            if draft.ticket.assignee.as_deref() != Some(agent.as_str()) {
                draft.ticket.assignee = Some(agent.clone());
                draft
                    .history
                    .push(HistoryEntry::new("assignee", agent.clone()));
                if agent != actor.address() {
                    draft.notify(&["assignee".into()], Event::Assigned, Some(actor), None);
                }
            }
        }
        Action::Involve(p) => {
            let partner = known_partner(draft.dir, p)?;
            if draft.ticket.involved_partners.contains(&partner) {
                return Err(Refusal::AlreadyInvolved { partner });
            }
            draft.ticket.involved_partners.push(partner.clone());
            draft
                .history
                .push(HistoryEntry::new("partner", format!("+ {partner}")));
        }
        Action::Uninvolve(p) => {
            let partner = known_partner(draft.dir, p)?;
            if !draft.ticket.involved_partners.contains(&partner) {
                return Err(Refusal::PartnerNotInvolved { partner });
            }
            if draft.ticket.waiting_on == Turn::Partner(partner.clone()) {
                return Err(Refusal::PartnerHasTurn { partner });
            }
            draft.ticket.involved_partners.retain(|i| *i != partner);
            draft
                .history
                .push(HistoryEntry::new("partner", format!("- {partner}")));
        }
        Action::MergeInto(target) => {
            if target.eq_ignore_ascii_case(&draft.ticket.reference) {
                return Err(Refusal::MergeIntoItself);
            }
            let closed = draft
                .wf
                .states
                .iter()
                .find(|s| s.kind == StateKind::Closed)
                .map(|s| s.name.clone());
            if let Some(closed) = closed {
                draft.set_status(&closed, None, &format!("merged into {target}"));
            }
            draft.ticket.linked_to = Some(target.clone());
            draft.merge_into = Some(target.clone());
            draft
                .history
                .push(HistoryEntry::new("merged", format!("into {target}")));
            draft.notify(&["requester".into()], Event::Merged, Some(actor), None);
        }
        Action::Comment | Action::Transition { .. } => {
            return Err(Refusal::UnknownAction { name });
        }
    }
    Ok(())
}

/// A partner's name as the directory spells it.
fn known_partner(dir: &Directory, name: &str) -> Result<String, Refusal> {
    dir.partner(name)
        .map(|p| p.name.clone())
        .ok_or_else(|| Refusal::UnknownPartner {
            name: name.to_string(),
        })
}

/// Decides a new ticket. `new.reference` is allocated by the caller.
pub fn create(
    wf: &Workflow,
    dir: &Directory,
    actor: &Actor,
    new: &NewTicket,
    now: Timestamp,
) -> Decision {
    let reject = |reason| {
        Decision::Reject(Rejection {
            reason,
            allowed: Vec::new(),
        })
    };
    if new.subject.trim().is_empty() && new.text.trim().is_empty() {
        return reject(Refusal::EmptyRequest);
    }
    let fields = match validate_fields(wf, &new.fields) {
        Ok(f) => f,
        Err(r) => return reject(r),
    };
    if let Some(k) = fields
        .keys()
        .find(|k| *k == "assignee" || (!actor.is_agent() && !wf.create.fields.contains(k)))
    {
        return reject(Refusal::FieldNotTaken {
            action: "create".into(),
            field: k.clone(),
            taken: wf.create.fields.clone(),
        });
    }
    // Fields the receiving mailbox gives (request type, queue): the request's own win.
    let mut fields = fields;
    match validate_fields(wf, &new.mailbox_fields) {
        Ok(f) => {
            for (k, v) in f {
                fields.entry(k).or_insert(v);
            }
        }
        Err(r) => return reject(r),
    }
    for f in &wf.create.required {
        if !fields.contains_key(f) {
            return reject(Refusal::FieldRequired {
                action: "create".into(),
                field: f.clone(),
            });
        }
    }
    let org = actor.organisation().and_then(|o| dir.organisation(o));
    if wf.create.service_catalogue
        && let Some(org) = org
        && let Err(r) = check_catalogue(org, &fields)
    {
        return reject(r);
    }
    let ticket = Ticket {
        reference: new.reference.clone(),
        workflow: wf.name.clone(),
        status: wf.initial.clone(),
        status_since: now,
        subject: new.subject.trim().to_string(),
        requester: actor.address().to_string(),
        organisation: org.map(|o| o.name.clone()),
        involved_partners: org.map(|o| o.partners.clone()).unwrap_or_default(),
        assignee: None,
        customer_it_assignee: None,
        waiting_on: Turn::Support,
        source: new.source.clone(),
        system: new.to_address.clone(),
        fields: BTreeMap::new(),
        watchers: Vec::new(),
        timers_fired: Vec::new(),
        linked_to: new.linked_to.clone(),
        created_at: now,
        updated_at: now,
        closed_at: None,
    };
    let mut draft = Draft::new(wf, dir, ticket, now);
    draft.ticket.waiting_on = draft.turn_of(&wf.initial, None);
    let mut detail = format!("created in {} by {}", wf.initial, actor.address());
    if let Some(l) = &new.linked_to {
        detail.push_str(&format!(", follows up {l}"));
    }
    draft.history.push(HistoryEntry::new("created", detail));
    for (k, v) in &fields {
        draft.set_field(k, v);
    }
    let text = if new.text.trim().is_empty() {
        new.subject.trim()
    } else {
        new.text.trim()
    };
    draft.comment = Some(NewComment {
        text: text.to_string(),
        visibility: Visibility::Public,
    });
    draft.notify(&["requester".into()], Event::Created, Some(actor), None);
    draft.notify(&wf.create.notify, Event::Created, Some(actor), None);
    rules::run(&mut draft, RuleEvent::Created, Some(actor));
    Decision::Apply(Box::new(draft.finish("create")))
}

fn check_catalogue(
    org: &crate::directory::Organisation,
    fields: &BTreeMap<String, String>,
) -> Result<(), Refusal> {
    if org.services.is_empty() {
        return Ok(());
    }
    let Some(service) = fields.get("service") else {
        if fields.contains_key("sub_category") {
            return Err(Refusal::FieldRequired {
                action: "create".into(),
                field: "service".into(),
            });
        }
        return Ok(());
    };
    let Some((name, subs)) = org
        .services
        .iter()
        .find(|(s, _)| s.eq_ignore_ascii_case(service))
    else {
        return Err(Refusal::InvalidField {
            field: "service".into(),
            value: service.clone(),
            allowed: org.services.keys().cloned().collect(),
        });
    };
    if let Some(sub) = fields.get("sub_category")
        && !subs.is_empty()
        && !subs.iter().any(|s| s.eq_ignore_ascii_case(sub))
    {
        return Err(Refusal::InvalidField {
            field: "sub_category".into(),
            value: sub.clone(),
            allowed: subs.clone(),
        });
    }
    let _ = name;
    Ok(())
}

/// What this actor may do on this ticket now: the comment action, the transitions whose role,
/// partner and state conditions hold, and for agents the common agent actions.
pub fn allowed_actions(
    wf: &Workflow,
    dir: &Directory,
    ticket: &Ticket,
    actor: &Actor,
) -> Vec<AllowedAction> {
    let mut out = Vec::new();
    if !actor.can_see(ticket) {
        return out;
    }
    let closed = wf
        .states
        .iter()
        .any(|s| s.name == ticket.status && s.kind == StateKind::Closed);
    let comment_open =
        !closed || matches!(wf.on_closed_reply, ClosedReply::Keep | ClosedReply::Reopen);
    if comment_open && has_role(&wf.comment.roles, actor, ticket) {
        // The comment's text is the action itself: it "requires" nothing more.
        out.push(AllowedAction {
            name: wf.comment.name.clone(),
            requires_comment: false,
            required_fields: Vec::new(),
        });
    }
    for t in &wf.transitions {
        let required_fields: Vec<String> = t
            .fields
            .iter()
            .filter(|f| f.required)
            .map(|f| f.name.clone())
            .collect();
        let mut push = |name: String, partner: Option<&str>| {
            if transition_permitted(wf, ticket, actor, t, partner, &name).is_ok() {
                out.push(AllowedAction {
                    name,
                    requires_comment: t.require_comment,
                    required_fields: required_fields.clone(),
                });
            }
        };
        if t.per_partner {
            let mut partners = ticket.involved_partners.clone();
            partners.sort_by_key(|p| p.to_lowercase());
            for p in &partners {
                push(resolve::partner_name(&t.name, p), Some(p));
            }
        } else {
            push(t.name.clone(), None);
        }
    }
    if actor.is_agent() && !closed {
        if ticket.assignee.as_deref() != Some(actor.address()) {
            out.push(AllowedAction {
                name: "Assign me".into(),
                requires_comment: false,
                required_fields: Vec::new(),
            });
        }
        for p in &dir.partners {
            let involved = ticket.involved_partners.contains(&p.name);
            if involved && ticket.waiting_on == Turn::Partner(p.name.clone()) {
                continue;
            }
            out.push(AllowedAction {
                name: format!(
                    "{} {}",
                    if involved { "Uninvolve" } else { "Involve" },
                    p.name
                ),
                requires_comment: false,
                required_fields: Vec::new(),
            });
        }
    }
    out
}
