//! Small cases through the core: who may set which field, what a closed ticket allows,
//! transition conditions. One `check` helper, many rows.

mod support;

use std::collections::BTreeMap;

use deskmail::config::Settings;
use deskmail::workflow::{self, Decision, Intent, NewTicket, Outcome, Ticket, Turn};
use jiff::Timestamp;
use support::demo::{self, ALICE, ANNA, actor};

fn now() -> Timestamp {
    demo::at("09:00")
}

fn new_ticket(s: &Settings, who: &str, fields: &[(&str, &str)]) -> Result<Ticket, String> {
    let new = NewTicket {
        reference: "T-1".into(),
        subject: "Subject".into(),
        text: "Text".into(),
        fields: demo::fields(fields),
        source: "cli".into(),
        ..Default::default()
    };
    match workflow::create(&s.workflow, &s.directory, &actor(s, who), &new, now()) {
        Decision::Apply(e) => Ok(e.ticket),
        Decision::Reject(r) => Err(r.reason.code()),
    }
}

/// Applies `action` and returns the new status, or the refusal's code.
fn check(
    s: &Settings,
    t: &Ticket,
    who: &str,
    action: &str,
    comment: Option<&str>,
    fields: &[(&str, &str)],
) -> Result<Ticket, String> {
    let intent = Intent::Act {
        action: action.into(),
        comment: comment.map(String::from),
        internal: false,
        fields: demo::fields(fields),
    };
    match workflow::act(&s.workflow, &s.directory, t, &actor(s, who), &intent, now()) {
        Outcome::Decided(Decision::Apply(e)) => Ok(e.ticket),
        Outcome::Decided(Decision::Reject(r)) => Err(r.reason.code()),
        Outcome::FollowUp => Err("follow_up".into()),
    }
}

#[test]
fn fields_are_set_only_by_the_actions_that_take_them() {
    let s = support::demo_settings("partner-routing");
    let t = new_ticket(&s, ANNA, &[]).unwrap();
    assert_eq!(
        check(&s, &t, ANNA, "To Customer", Some("x"), &[("queue", "VIP")]).unwrap_err(),
        "field_not_taken"
    );
    assert_eq!(
        new_ticket(&s, ANNA, &[("queue", "VIP")]).unwrap_err(),
        "field_not_taken"
    );
    // Agents may set fields with any action, but never the assignee as a field.
    let t2 = check(&s, &t, ALICE, "Start", None, &[("queue", "Printers")]).unwrap();
    assert_eq!(t2.fields["queue"], "Printers");
    assert_eq!(
        check(&s, &t, ALICE, "Start", None, &[("assignee", "x@y.example")]).unwrap_err(),
        "field_not_taken"
    );
    assert_eq!(
        check(&s, &t, ALICE, "Start", None, &[("colour", "red")]).unwrap_err(),
        "unknown_field"
    );
}

#[test]
fn itil_requests_need_their_fields_and_a_contracted_service() {
    let s = support::demo_settings("itil-portal");
    let full = [
        ("service", "email"),
        ("sub_category", "mailbox"),
        ("impact", "Medium"),
        ("urgency", "high"),
    ];
    let t = new_ticket(&s, ANNA, &full).unwrap();
    // Values are stored as the workflow and the catalogue spell them.
    assert_eq!(t.fields["impact"], "medium");
    assert_eq!(
        new_ticket(&s, ANNA, &full[..3]).unwrap_err(),
        "field_required"
    );
    assert_eq!(
        new_ticket(
            &s,
            ANNA,
            &[
                ("service", "Email"),
                ("sub_category", "Toaster"),
                ("impact", "low"),
                ("urgency", "low")
            ]
        )
        .unwrap_err(),
        "invalid_field"
    );
    assert_eq!(
        new_ticket(
            &s,
            ANNA,
            &[
                ("service", "Email"),
                ("sub_category", "Mailbox"),
                ("impact", "huge"),
                ("urgency", "low")
            ]
        )
        .unwrap_err(),
        "invalid_field"
    );
    let resolved = check(&s, &t, ALICE, "Resolve", None, &[]).unwrap();
    // Field names are matched like action names: any case.
    assert_eq!(
        check(
            &s,
            &resolved,
            ANNA,
            "Close",
            Some("ok"),
            &[("Satisfaction", "6")]
        )
        .unwrap_err(),
        "invalid_field"
    );
    let closed = check(
        &s,
        &resolved,
        ANNA,
        "Close",
        Some("ok"),
        &[("Satisfaction", "5")],
    )
    .unwrap();
    assert_eq!(closed.status, "Closed");
    // Closed is final, for agents too.
    for action in [
        "Reopen",
        "Assign me",
        "Involve Web-IT Provider",
        "Merge into T-2",
        "Resolve",
    ] {
        assert_eq!(
            check(&s, &closed, ALICE, action, Some("x"), &[]).unwrap_err(),
            "final",
            "{action}"
        );
    }
    let alice = actor(&s, ALICE);
    assert!(workflow::allowed_actions(&s.workflow, &s.directory, &closed, &alice).is_empty());
}

#[test]
fn a_partner_the_ticket_waits_on_cannot_be_uninvolved() {
    let s = support::demo_settings("partner-routing");
    let t = new_ticket(&s, ANNA, &[]).unwrap();
    let waiting = check(&s, &t, ALICE, "To IT Provider", None, &[]).unwrap();
    assert_eq!(
        check(&s, &waiting, ALICE, "Uninvolve IT Provider", None, &[]).unwrap_err(),
        "partner_has_turn"
    );
    let fewer = check(
        &s,
        &waiting,
        ALICE,
        "uninvolve 2nd level support provider",
        None,
        &[],
    )
    .unwrap();
    assert_eq!(fewer.involved_partners, ["IT Provider"]);
    assert_eq!(
        check(&s, &fewer, ALICE, "Involve Nobody Inc", None, &[]).unwrap_err(),
        "unknown_partner"
    );
    assert_eq!(
        check(&s, &fewer, ALICE, "Involve IT Provider", None, &[]).unwrap_err(),
        "already_involved"
    );
    // A partner never sends the ticket to itself, and unknown names are unknown.
    let ops = "ops@itprov.example";
    let back = check(&s, &waiting, ops, "To Customer", None, &[]).unwrap();
    assert_eq!(
        check(&s, &back, ops, "To IT Provider", None, &[]).unwrap_err(),
        "same_partner"
    );
    assert_eq!(
        check(&s, &back, ANNA, "To Nowhere", None, &[]).unwrap_err(),
        "unknown_action"
    );
}

#[test]
fn transitions_can_carry_conditions() {
    let mut s = support::demo_settings("partner-routing");
    let start = s
        .workflow
        .transitions
        .iter_mut()
        .find(|t| t.name == "Start")
        .unwrap();
    start.when.field = BTreeMap::from([("queue".to_string(), vec!["Printers".to_string()])]);
    assert!(workflow::validate(&s.workflow, &s.directory).is_empty());
    let t = new_ticket(&s, ANNA, &[]).unwrap();
    assert_eq!(
        check(&s, &t, ALICE, "Start", None, &[]).unwrap_err(),
        "condition_not_met"
    );
    let alice = actor(&s, ALICE);
    let names: Vec<String> = workflow::allowed_actions(&s.workflow, &s.directory, &t, &alice)
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert!(!names.contains(&"Start".to_string()), "{names:?}");
    assert_eq!(
        check(&s, &t, ALICE, "Start", None, &[("queue", "printers")]).unwrap_err(),
        "condition_not_met"
    );
    let queued = check(
        &s,
        &t,
        ALICE,
        "comment",
        Some("queueing"),
        &[("queue", "Printers")],
    )
    .unwrap();
    assert_eq!(
        check(&s, &queued, ALICE, "Start", None, &[])
            .unwrap()
            .status,
        "In Progress"
    );
}

/// When a ticket's first time rule is due: its stay in the state plus the rule's delay, until
/// the rule has fired in this stay; never in a closed state, nor where no rule's condition holds.
#[test]
fn due_times_follow_the_time_rules() {
    use deskmail::workflow::rules::Due;
    let s = support::demo_settings("partner-routing");
    let wf = &s.workflow;
    let t = new_ticket(&s, "anna@acme.example", &[]).unwrap();
    assert_eq!(Due::of(wf, &t).at(), None, "New has no time rule");
    let resolved = check(
        &s,
        &t,
        "alice@helpdesk.example",
        "Resolve",
        Some("Done."),
        &[],
    )
    .unwrap();
    let week = resolved.status_since + jiff::SignedDuration::from_hours(24 * 7);
    assert_eq!(Due::of(wf, &resolved).at(), Some(week));
    // Due exactly when the sweep fires the rule, not a second before.
    let before = week - jiff::SignedDuration::from_secs(1);
    assert!(workflow::sweep(wf, &s.directory, &resolved, before).is_none());
    let closed = workflow::sweep(wf, &s.directory, &resolved, week)
        .unwrap()
        .ticket;
    assert_eq!(closed.status, "Closed");
    assert_eq!(Due::of(wf, &closed).at(), None, "a closed state");
    let mut fired = resolved.clone();
    fired
        .timers_fired
        .push("close resolved after 7 days".into());
    assert_eq!(Due::of(wf, &fired).at(), None, "fired in this stay");
}

#[test]
fn no_preset_names_a_party_of_the_demo_directory() {
    let s = support::demo_settings("partner-routing");
    let d = &s.directory;
    let mut names: Vec<&str> = d.partners.iter().map(|p| p.name.as_str()).collect();
    names.extend(d.agents.iter().map(|a| a.address.as_str()));
    for o in &d.organisations {
        names.push(&o.name);
        names.extend(o.domains.iter().map(String::as_str));
        names.extend(o.members.iter().map(|m| m.address.as_str()));
    }
    assert!(
        names.len() > 10,
        "the demo directory has its parties: {names:?}"
    );
    for (preset, source) in workflow::presets::PRESETS {
        let source = source.to_lowercase();
        for name in &names {
            assert!(
                !source.contains(&name.to_lowercase()),
                "{preset} names {name:?} of the demo directory"
            );
        }
        // Partner aliases are keyed by a partner's name: only an admin's own workflow knows them.
        let wf = workflow::presets::load(preset).unwrap();
        assert!(
            wf.transitions.iter().all(|t| t.partner_aliases.is_empty()),
            "{preset} has partner_aliases"
        );
    }
}

#[test]
fn an_own_workflow_gives_one_partner_a_short_name() {
    let plain = support::demo_settings("partner-routing");
    let mut s = support::demo_settings("partner-routing");
    let to_partner = s
        .workflow
        .transitions
        .iter_mut()
        .find(|t| t.per_partner)
        .unwrap();
    to_partner.partner_aliases = BTreeMap::from([(
        "2nd Level Support Provider".to_string(),
        vec!["To 2nd Level Provider".to_string()],
    )]);
    assert!(workflow::validate(&s.workflow, &s.directory).is_empty());
    let t = new_ticket(&s, ANNA, &[]).unwrap();
    let sent = check(&s, &t, ALICE, "to 2nd level provider", None, &[]).unwrap();
    assert_eq!(sent.status, "On Partner");
    assert_eq!(
        sent.waiting_on.to_string(),
        Turn::Partner("2nd Level Support Provider".into()).to_string()
    );
    // The preset alone knows no such name.
    assert_eq!(
        check(&plain, &t, ALICE, "To 2nd Level Provider", None, &[]).unwrap_err(),
        "unknown_action"
    );
}
