//! A workflow as data: states, the comment action, transitions, fields and rules.
//!
//! This is the shape of a workflow TOML file (the presets under `presets/` and an admin's own file).
//! Parsing only checks the shape; [`super::validate`] checks that the parts fit together.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A whole workflow, as read from TOML.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    /// The name tickets record (`ticket show` → `workflow`).
    pub name: String,
    #[serde(default)]
    pub title: String,
    /// The state a new ticket starts in.
    pub initial: String,
    /// What a reply to a closed ticket does.
    #[serde(default)]
    pub on_closed_reply: ClosedReply,
    pub states: Vec<State>,
    /// The plain comment (a reply without a command).
    pub comment: CommentAction,
    #[serde(default)]
    pub create: CreateSpec,
    #[serde(default)]
    pub transitions: Vec<Transition>,
    #[serde(default)]
    pub fields: Vec<FieldDef>,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// The four kinds every state belongs to; `from = ["@open"]` names all states of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StateKind {
    Open,
    Waiting,
    Resolved,
    Closed,
}

impl StateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Open => "open",
            StateKind::Waiting => "waiting",
            StateKind::Resolved => "resolved",
            StateKind::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub name: String,
    pub kind: StateKind,
    /// Whose move it is in this state: `support`, `customer`, `partner` (the partner the ticket was
    /// sent to), `customer_it`, `group:<agent group>` or `none`.
    #[serde(default = "default_turn")]
    pub turn: String,
}

fn default_turn() -> String {
    "support".into()
}

/// What a reply to a ticket in a closed state does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedReply {
    /// A new ticket that links the closed one.
    #[default]
    NewTicket,
    /// The reply is added and the ticket stays closed.
    Keep,
    /// The reply is added and the ticket goes back to the initial state.
    Reopen,
    /// The reply is refused with a notice.
    Refuse,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CommentAction {
    #[serde(default = "default_comment_name")]
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Who may comment (besides seeing the ticket).
    #[serde(default = "all_roles")]
    pub roles: Vec<String>,
    #[serde(default)]
    pub notify: Vec<String>,
}

fn default_comment_name() -> String {
    "comment".into()
}

fn all_roles() -> Vec<String> {
    ["agent", "customer", "partner", "customer_it"]
        .map(String::from)
        .to_vec()
}

/// What creating a ticket asks and whom it tells.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSpec {
    /// Fields a new ticket may carry.
    #[serde(default)]
    pub fields: Vec<String>,
    /// Fields a new ticket must carry.
    #[serde(default)]
    pub required: Vec<String>,
    /// Check `service` and `sub_category` against the organisation's catalogue.
    #[serde(default)]
    pub service_catalogue: bool,
    #[serde(default)]
    pub notify: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// The action's name; with `per_partner`, `{partner}` stands for each partner's name.
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// One transition per involved partner ("To IT Provider", ...).
    #[serde(default)]
    pub per_partner: bool,
    /// Extra aliases for one partner's expansion, by the partner's name (`"Field Service
    /// Partner" = ["To Field Service"]`): for an admin's own workflow file, which knows its
    /// directory. The presets name no partner.
    #[serde(default)]
    pub partner_aliases: BTreeMap<String, Vec<String>>,
    /// State names or `@kind`; empty means every state that is not closed.
    #[serde(default)]
    pub from: Vec<String>,
    /// The state after; absent means the state does not change.
    #[serde(default)]
    pub to: Option<String>,
    pub roles: Vec<String>,
    /// Further conditions on the ticket and the actor (as for rules).
    #[serde(default)]
    pub when: Condition,
    #[serde(default)]
    pub require_comment: bool,
    /// `public` (default) or `internal`: the visibility the action's note gets.
    #[serde(default)]
    pub comment_visibility: Option<String>,
    /// Fields this action takes; those with `required` must be given.
    #[serde(default)]
    pub fields: Vec<TransitionField>,
    #[serde(default)]
    pub notify: Vec<String>,
    /// The event the notifications carry; derived from the states when absent.
    #[serde(default)]
    pub event: Option<String>,
    /// Set the customer-IT assignee from the `assignee` field (default: the first customer-IT member).
    #[serde(default)]
    pub assign_customer_it: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionField {
    pub name: String,
    #[serde(default)]
    pub required: bool,
}

/// A field's allowed values.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    pub name: String,
    /// The allowed values (matched case-insensitively, stored as written here); empty: any text.
    #[serde(default)]
    pub values: Vec<String>,
    /// An integer range instead of a list.
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
}

/// On an event, under a condition, do an action.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub on: RuleEvent,
    #[serde(default)]
    pub when: Condition,
    /// For `on = "time"`: how long the ticket must have been in its state (`7d`, `36h`, `90m`).
    #[serde(default)]
    pub after: Option<String>,
    #[serde(default)]
    pub set_status: Option<String>,
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub notify: Vec<String>,
    /// The event of the rule's notifications (default `reminder` for time rules, else derived).
    #[serde(default)]
    pub event: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleEvent {
    Created,
    Comment,
    Transition,
    Time,
}

impl fmt::Display for RuleEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuleEvent::Created => "created",
            RuleEvent::Comment => "comment",
            RuleEvent::Transition => "transition",
            RuleEvent::Time => "time",
        })
    }
}

/// Every part that is set must hold.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    #[serde(default)]
    pub status: Vec<String>,
    /// The actor has one of these roles (see `roles` in ARCHITECTURE.md).
    #[serde(default)]
    pub role: Vec<String>,
    /// The actor's identity was verified (always true from the CLI).
    #[serde(default)]
    pub verified: Option<bool>,
    /// The ticket's source (`mail`, `cli`, ...).
    #[serde(default)]
    pub source: Vec<String>,
    /// The plus-part of the address the ticket was created at (`support+gdpr-delete@` → `gdpr-delete`).
    #[serde(default)]
    pub to_plus: Vec<String>,
    /// Field values: `field = { request_type = ["Hardware"] }`.
    #[serde(default)]
    pub field: BTreeMap<String, Vec<String>>,
    /// Fields that have no value yet.
    #[serde(default)]
    pub unset: Vec<String>,
}
