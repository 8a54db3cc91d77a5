//! The values the core takes and gives: the ticket, the actor, the intent and the decision.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use serde::Serialize;

use crate::directory::{Access, Party, Person};

/// A ticket as the core sees it. The shell loads it, the core returns the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ticket {
    #[serde(rename = "ref")]
    pub reference: String,
    pub workflow: String,
    pub status: String,
    pub status_since: Timestamp,
    pub subject: String,
    pub requester: String,
    pub organisation: Option<String>,
    pub involved_partners: Vec<String>,
    pub assignee: Option<String>,
    pub customer_it_assignee: Option<String>,
    pub waiting_on: Turn,
    /// Where the ticket came from: `mail`, `cli`, ...
    pub source: String,
    /// The receiving address or mailbox it came in at (seed 001's "system").
    pub system: Option<String>,
    pub fields: BTreeMap<String, String>,
    pub watchers: Vec<String>,
    /// Time rules that fired since the ticket entered its state (each fires once per stay).
    pub timers_fired: Vec<String>,
    /// The ticket this one follows up or was merged into.
    pub linked_to: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub closed_at: Option<Timestamp>,
}

/// Whose move it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum Turn {
    Support,
    Customer,
    Partner(String),
    CustomerIt,
    Group(String),
    Nobody,
}

impl fmt::Display for Turn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Turn::Support => f.write_str("support"),
            Turn::Customer => f.write_str("customer"),
            Turn::Partner(p) => write!(f, "partner:{p}"),
            Turn::CustomerIt => f.write_str("customer_it"),
            Turn::Group(g) => write!(f, "group:{g}"),
            Turn::Nobody => f.write_str("none"),
        }
    }
}

impl From<Turn> for String {
    fn from(t: Turn) -> String {
        t.to_string()
    }
}

impl Turn {
    /// Reads the stored form (`support`, `partner:IT Provider`, ...); unknown text is `Nobody`.
    pub fn parse(s: &str) -> Turn {
        match s {
            "support" => Turn::Support,
            "customer" => Turn::Customer,
            "customer_it" => Turn::CustomerIt,
            _ => {
                if let Some(p) = s.strip_prefix("partner:") {
                    Turn::Partner(p.to_string())
                } else if let Some(g) = s.strip_prefix("group:") {
                    Turn::Group(g.to_string())
                } else {
                    Turn::Nobody
                }
            }
        }
    }
}

/// Who acts, as the directory knows them, and whether their identity was verified.
#[derive(Debug, Clone)]
pub struct Actor {
    pub person: Person,
    /// How they were shown to be who they say: the command line always is; by mail, a valid
    /// reply token or authentication result.
    pub proof: Proof,
}

/// How an actor was shown to be who they say (recorded with their comment, as
/// [`Proof::as_str`] names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// The command line: the operator vouches for them.
    Cli,
    /// deskmail itself (time rules).
    System,
    /// A reply address deskmail signed for them, or for a group they belong to.
    Token,
    /// A trusted `Authentication-Results` header: DMARC passed for the From domain.
    Dmarc,
    /// A trusted `Authentication-Results` header: DKIM passed, aligned with the From domain.
    Dkim,
    /// Nothing: a From address anyone can write.
    Unverified,
}

impl Proof {
    pub fn as_str(self) -> &'static str {
        match self {
            Proof::Cli => "cli",
            Proof::System => "system",
            Proof::Token => "token",
            Proof::Dmarc => "dmarc",
            Proof::Dkim => "dkim",
            Proof::Unverified => "none",
        }
    }
}

impl Actor {
    /// Proven by any means.
    pub fn verified(&self) -> bool {
        self.proof != Proof::Unverified
    }

    pub fn address(&self) -> &str {
        &self.person.address
    }

    pub fn is_agent(&self) -> bool {
        matches!(self.person.party, Party::Agent)
    }

    pub fn partner(&self) -> Option<&str> {
        match &self.person.party {
            Party::Partner { partner } => Some(partner),
            _ => None,
        }
    }

    pub fn organisation(&self) -> Option<&str> {
        match &self.person.party {
            Party::Customer { organisation, .. } => Some(organisation),
            _ => None,
        }
    }

    /// The role tokens this actor has on this ticket: `agent`, `customer`, `requester`,
    /// `power_user`, `partner`, `customer_it`.
    pub fn roles(&self, ticket: &Ticket) -> Vec<&'static str> {
        let mut roles = Vec::new();
        match &self.person.party {
            Party::Agent => roles.push("agent"),
            Party::Customer {
                organisation,
                access,
                customer_it,
            } => {
                let same_org = ticket.organisation.as_deref() == Some(organisation.as_str());
                roles.push("customer");
                if ticket.requester == self.person.address {
                    roles.push("requester");
                }
                if *access == Access::Power && same_org {
                    roles.push("power_user");
                }
                if *customer_it && same_org {
                    roles.push("customer_it");
                }
            }
            Party::Partner { .. } => roles.push("partner"),
        }
        roles
    }

    /// May this actor see the ticket at all?
    pub fn can_see(&self, ticket: &Ticket) -> bool {
        if ticket.requester == self.person.address || ticket.watchers.contains(&self.person.address)
        {
            return true;
        }
        match &self.person.party {
            Party::Agent => true,
            Party::Customer {
                organisation,
                access,
                customer_it,
            } => {
                let same_org = ticket.organisation.as_deref() == Some(organisation.as_str());
                same_org && (*access == Access::Power || *customer_it)
            }
            Party::Partner { partner } => ticket.involved_partners.iter().any(|p| p == partner),
        }
    }
}

/// What the actor wants done to an existing ticket (a new one is a [`NewTicket`]).
#[derive(Debug, Clone)]
pub enum Intent {
    /// A plain comment (a reply without a command).
    Comment { text: String, internal: bool },
    /// An action by name (`To Customer`, `an Kunde`, `Assign me`, ...), with its note and fields.
    Act {
        action: String,
        comment: Option<String>,
        internal: bool,
        fields: BTreeMap<String, String>,
    },
}

#[derive(Debug, Clone, Default)]
pub struct NewTicket {
    pub reference: String,
    pub subject: String,
    pub text: String,
    pub fields: BTreeMap<String, String>,
    /// Fields the receiving mailbox sets (its request type and queue); the request's own win.
    pub mailbox_fields: BTreeMap<String, String>,
    /// The address the request was sent to (address-driven rules read its plus-part).
    pub to_address: Option<String>,
    pub source: String,
    /// The closed ticket this one follows up.
    pub linked_to: Option<String>,
}

/// Who can read a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Internal,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewComment {
    pub text: String,
    pub visibility: Visibility,
}

/// What a notification is about; the outbound side picks a template per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Created,
    Commented,
    ToCustomer,
    ToPartner,
    StatusChanged,
    Resolved,
    Closed,
    Reopened,
    Assigned,
    Question,
    WorkDone,
    Reminder,
    Merged,
    NotDone,
}

impl Event {
    pub const ALL: [Event; 14] = [
        Event::Created,
        Event::Commented,
        Event::ToCustomer,
        Event::ToPartner,
        Event::StatusChanged,
        Event::Resolved,
        Event::Closed,
        Event::Reopened,
        Event::Assigned,
        Event::Question,
        Event::WorkDone,
        Event::Reminder,
        Event::Merged,
        Event::NotDone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Created => "created",
            Event::Commented => "commented",
            Event::ToCustomer => "to_customer",
            Event::ToPartner => "to_partner",
            Event::StatusChanged => "status_changed",
            Event::Resolved => "resolved",
            Event::Closed => "closed",
            Event::Reopened => "reopened",
            Event::Assigned => "assigned",
            Event::Question => "question",
            Event::WorkDone => "work_done",
            Event::Reminder => "reminder",
            Event::Merged => "merged",
            Event::NotDone => "not_done",
        }
    }

    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// Who gets told. The core resolves relative audiences ("the other side", "the partner it was
/// sent to") to these; the shell turns them into addresses through the directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Audience {
    /// The support team's notification address.
    Support,
    /// The organisation's customer support group.
    CustomerGroup,
    Requester,
    /// One partner's support group.
    Partner(String),
    /// One person (a customer-IT assignee, an agent).
    Person(String),
    /// An agent group's address.
    Group(String),
    Watchers,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub event: Event,
    pub audience: Audience,
}

/// One line of a ticket's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// `created`, `status`, `field`, `assignee`, `partner`, `rule`, `merged`, ...
    pub kind: String,
    pub detail: String,
}

impl HistoryEntry {
    pub fn new(kind: &str, detail: impl Into<String>) -> Self {
        HistoryEntry {
            kind: kind.into(),
            detail: detail.into(),
        }
    }
}

/// What applying an intent does: the ticket after, and the changes to write with it.
#[derive(Debug, Clone, Serialize)]
pub struct Effects {
    /// The action's canonical name (`comment`, `To Customer`, `create`, a rule's name on a sweep).
    pub action: String,
    pub ticket: Ticket,
    /// The status before, when it changed.
    pub previous_status: Option<String>,
    pub comment: Option<NewComment>,
    pub notices: Vec<Notice>,
    pub history: Vec<HistoryEntry>,
    /// Set when the ticket was merged into another one: the shell moves its comments there.
    pub merge_into: Option<String>,
}

impl Effects {
    /// A notice about a ticket that changes nothing on it (a "not done" notice, a delivery
    /// failure), as the notifications need it.
    pub fn notice_only(action: &str, ticket: &Ticket, notices: Vec<Notice>) -> Effects {
        Effects {
            action: action.to_string(),
            ticket: ticket.clone(),
            previous_status: None,
            comment: None,
            notices,
            history: Vec::new(),
            merge_into: None,
        }
    }
}

/// An action this actor may take on this ticket, for refusals and for the action links in mails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowedAction {
    pub name: String,
    pub requires_comment: bool,
    pub required_fields: Vec<String>,
}

/// The core's answer.
#[derive(Debug, Clone)]
pub enum Decision {
    Apply(Box<Effects>),
    Reject(Rejection),
}

/// Why an intent is not applied, and what the actor may do instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub reason: Refusal,
    pub allowed: Vec<AllowedAction>,
}

impl Rejection {
    pub fn allowed_names(&self) -> Vec<&str> {
        self.allowed.iter().map(|a| a.name.as_str()).collect()
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.reason)?;
        if self.allowed.is_empty() {
            write!(f, "; no action is open to you on this ticket")
        } else {
            write!(f, "; allowed: {}", self.allowed_names().join(", "))
        }
    }
}

/// The reasons an intent is refused. Each says in words what the sender can understand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Refusal {
    #[error("unknown action \"{name}\"")]
    UnknownAction { name: String },
    #[error("\"{name}\" is ambiguous: it names {}", candidates.join(", "))]
    AmbiguousAction {
        name: String,
        candidates: Vec<String>,
    },
    #[error("you may not see this ticket")]
    CannotSee,
    #[error("{action} is not open to {role}s")]
    RoleNotAllowed { action: String, role: String },
    #[error("{action} is not possible while the ticket is {status}")]
    WrongState { action: String, status: String },
    #[error("the ticket is {status}, which is final")]
    Final { status: String },
    #[error("{partner} is not involved in this ticket")]
    PartnerNotInvolved { partner: String },
    #[error("{partner} cannot send the ticket to itself")]
    SamePartner { partner: String },
    #[error("{action} needs a comment")]
    CommentRequired { action: String },
    #[error("{action} needs the field {field}")]
    FieldRequired { action: String, field: String },
    #[error("{field} \"{value}\" is not allowed; allowed: {}", allowed.join(", "))]
    InvalidField {
        field: String,
        value: String,
        allowed: Vec<String>,
    },
    #[error("unknown field {field}; known: {}", known.join(", "))]
    UnknownField { field: String, known: Vec<String> },
    #[error("{action} takes no fields from you; fields are set by the actions that ask for them")]
    FieldsNotAllowed { action: String },
    #[error("{action} does not take the field {field}{}", if taken.is_empty() { String::new() } else { format!(" (it takes: {})", taken.join(", ")) })]
    FieldNotTaken {
        action: String,
        field: String,
        taken: Vec<String>,
    },
    #[error("{action} is not possible on this ticket")]
    ConditionNotMet { action: String },
    #[error("the ticket is waiting on {partner}: send it elsewhere before uninvolving it")]
    PartnerHasTurn { partner: String },
    #[error("{organisation_a} and {organisation_b} tickets cannot be merged")]
    MergeAcrossOrganisations {
        organisation_a: String,
        organisation_b: String,
    },
    #[error("only agents may write internal comments")]
    InternalNotAllowed,
    #[error("{name} is not an agent; tickets are only assigned to agents")]
    NotAnAgent { name: String },
    #[error("{name} is not a partner")]
    UnknownPartner { name: String },
    #[error("{partner} is already involved in this ticket")]
    AlreadyInvolved { partner: String },
    #[error("{name} is not customer IT of {organisation}")]
    NotCustomerIt { name: String, organisation: String },
    #[error("the ticket's organisation has no customer IT")]
    NoCustomerIt,
    #[error("a ticket cannot be merged into itself")]
    MergeIntoItself,
    #[error("a ticket needs a subject or a text")]
    EmptyRequest,
    #[error("the comment is empty")]
    EmptyComment,
    #[error(
        "we could not verify that this mail comes from you, so {action} was not done: commands are taken from replies to our notifications (or from mail your domain authenticates)"
    )]
    NotVerified { action: String },
}

impl Refusal {
    /// A short stable code (`partner_not_involved`), for logs, notices and rate limits.
    pub fn code(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(String::from))
            .unwrap_or_default()
    }
}

/// Role tokens a workflow may name in `roles` and `when.role`.
pub const ROLE_TOKENS: [&str; 6] = [
    "agent",
    "customer",
    "requester",
    "power_user",
    "partner",
    "customer_it",
];
