//! The seed stories, table-driven through the pure workflow core (no store, no CLI).

mod support;

use std::collections::BTreeMap;

use deskmail::config::Settings;
use deskmail::recipients;
use deskmail::workflow::{self, Decision, Effects, Intent, NewTicket, Outcome, Rejection, Ticket};
use jiff::{SignedDuration, Timestamp};
use support::demo::{self, actor, fields};
use support::stories::{self, Expect, Story, What};

fn mailed(s: &Settings, e: &Effects) -> Vec<String> {
    e.notices
        .iter()
        .flat_map(|n| recipients::addresses(&s.directory, &e.ticket, &n.audience))
        .collect()
}

fn play(story: &Story) {
    let s = support::demo_settings(story.preset);
    let wf = &s.workflow;
    let dir = &s.directory;
    let t0: Timestamp = demo::at("09:00");
    let mut tickets: Vec<Ticket> = Vec::new();
    for (i, step) in story.steps.iter().enumerate() {
        let at = format!("{} step {} ({})", story.preset, i + 1, step.who);
        let now = t0 + SignedDuration::from_mins(i as i64);
        let who = actor(&s, step.who);
        let decision: Result<Effects, Rejection> = match &step.what {
            What::See => {
                let Expect::Visible(v) = step.expect else {
                    panic!("{at}: See needs Visible")
                };
                assert_eq!(who.can_see(&tickets[step.on]), v, "{at}: visibility");
                continue;
            }
            What::Create {
                subject,
                text,
                fields: f,
                to,
            } => {
                let new = NewTicket {
                    reference: format!("T-{}", tickets.len() + 1),
                    subject: subject.to_string(),
                    text: text.to_string(),
                    fields: fields(f),
                    mailbox_fields: BTreeMap::new(),
                    to_address: to.map(String::from),
                    source: "cli".into(),
                    linked_to: None,
                };
                match workflow::create(wf, dir, &who, &new, now) {
                    Decision::Apply(e) => {
                        tickets.push(e.ticket.clone());
                        Ok(*e)
                    }
                    Decision::Reject(r) => Err(r),
                }
            }
            What::Act {
                action,
                comment,
                fields: f,
            } => {
                let intent = Intent::Act {
                    action: action.to_string(),
                    comment: comment.map(String::from),
                    internal: false,
                    fields: fields(f),
                };
                match workflow::act(wf, dir, &tickets[step.on], &who, &intent, now) {
                    Outcome::Decided(Decision::Apply(e)) => {
                        tickets[step.on] = e.ticket.clone();
                        Ok(*e)
                    }
                    Outcome::Decided(Decision::Reject(r)) => Err(r),
                    Outcome::FollowUp => panic!("{at}: unexpected follow-up"),
                }
            }
        };
        match (&step.expect, decision) {
            (Expect::Status(want), Ok(e)) => {
                assert_eq!(e.ticket.status, *want, "{at}: status");
                let to = mailed(&s, &e);
                for m in step.mailed {
                    assert!(
                        to.iter().any(|t| t == m),
                        "{at}: {m} not mailed; mailed: {to:?}"
                    );
                }
                if let Some(turn) = step.waiting_on {
                    assert_eq!(e.ticket.waiting_on.to_string(), turn, "{at}: turn");
                }
                for (k, v) in step.fields {
                    assert_eq!(
                        e.ticket.fields.get(*k).map(String::as_str),
                        Some(*v),
                        "{at}: field {k}"
                    );
                }
            }
            (Expect::Refused(code), Err(r)) => assert_eq!(r.reason.code(), *code, "{at}: {r}"),
            (Expect::RefusedAllowing(code, allowed), Err(r)) => {
                assert_eq!(r.reason.code(), *code, "{at}: {r}");
                assert_eq!(r.allowed_names(), allowed.to_vec(), "{at}: allowed actions");
            }
            (Expect::Status(want), Err(r)) => panic!("{at}: expected {want}, refused: {r}"),
            (_, Ok(e)) => panic!("{at}: expected a refusal, got {}", e.ticket.status),
            (Expect::Visible(_), Err(_)) => unreachable!(),
        }
    }
}

#[test]
fn partner_routing_story() {
    play(&stories::partner_routing());
}

#[test]
fn open_closed_story() {
    play(&stories::open_closed());
}

#[test]
fn itil_portal_story() {
    play(&stories::itil_portal());
}

#[test]
fn triage_story() {
    play(&stories::triage());
}

#[test]
fn co_managed_story() {
    play(&stories::co_managed());
}
