//! What happened to one mail, as fields: the log line, the mail's stored reason, the exit code
//! and `ingest --json` are all made from them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Mailed;
use crate::inbound::{Reading, Verification};
use crate::workflow::{Effects, Refusal, Rejection};

/// What became of a mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A ticket was created or changed.
    Applied,
    /// Not applied; the sender was told where that is safe.
    Refused,
    /// An auto-reply, a bounce, a list's or deskmail's own mail: kept, nothing changed.
    #[default]
    Recorded,
    /// Taken in before: nothing changed.
    Duplicate,
    /// Could not be applied; kept for `inbound retry`.
    Failed,
    /// Over the size limit: refused for its size, only its headers kept. The source keeps the
    /// mail (`ingest` exits 65, so that the MTA bounces it with the reason).
    TooLarge,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Applied => "applied",
            Status::Refused => "refused",
            Status::Recorded => "recorded",
            Status::Duplicate => "duplicate",
            Status::Failed => "failed",
            Status::TooLarge => "too-large",
        }
    }
}

/// The sender as the report shows them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SenderReport {
    pub address: String,
    pub name: String,
    /// `agent`, `customer`, `partner`, `unknown`.
    pub role: &'static str,
    pub verified: bool,
    /// How: a reply token, DMARC, DKIM.
    pub how: Option<Verification>,
    /// The header that named them (`from`, `reply-to`, `sender`).
    pub via: &'static str,
}

/// What a mail's change did to its ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionReport {
    /// The workflow's action (`To Customer`, `Comment`), `create` for a new ticket.
    pub name: String,
    /// The ticket's status after it.
    pub status: String,
    /// The status before, where the action changed it.
    pub previous_status: Option<String>,
    /// `public` or `internal` where a comment was added.
    pub comment: Option<&'static str>,
}

impl ActionReport {
    pub(crate) fn of(effects: &Effects) -> ActionReport {
        ActionReport {
            name: effects.action.clone(),
            status: effects.ticket.status.clone(),
            previous_status: effects.previous_status.clone(),
            comment: effects.comment.as_ref().map(|c| c.visibility.as_str()),
        }
    }
}

/// Why a mail, or the command in it, was not done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusalReport {
    /// The command as written, when only the command was not done (the mail's comment was).
    pub command: Option<String>,
    /// A stable name for the reason (`not_allowed`, `unknown_sender`, ...).
    pub code: String,
    /// The reason in words.
    pub reason: String,
}

impl RefusalReport {
    /// The whole mail refused for a reason of the desk's own (not the workflow's).
    pub(crate) fn mail(code: &str, reason: impl Into<String>) -> RefusalReport {
        RefusalReport {
            command: None,
            code: code.to_string(),
            reason: reason.into(),
        }
    }

    /// The whole mail refused by the workflow: the reason, and what the sender may do instead.
    pub(crate) fn rejected(r: &Rejection) -> RefusalReport {
        RefusalReport {
            command: None,
            code: r.reason.code(),
            reason: r.to_string(),
        }
    }

    /// A command the workflow refused, the rest of the mail applied.
    pub(crate) fn command(command: &str, refusal: &Refusal) -> RefusalReport {
        RefusalReport {
            command: Some(command.to_string()),
            code: refusal.code(),
            reason: refusal.to_string(),
        }
    }
}

/// What happened to one mail.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MailReport {
    pub status: Status,
    pub inbound_id: Option<i64>,
    pub message_id: Option<String>,
    pub subject: String,
    /// `person`, `auto-reply`, `bounce`, `list`, `own`.
    pub class: &'static str,
    /// Why: the header or phrase that decided.
    pub class_reason: String,
    pub sender: SenderReport,
    pub ticket: Option<String>,
    /// `token`, `references`, `subject`, `footer`, `none`.
    pub matched_by: &'static str,
    /// The extracted new text (the comment).
    pub text: Option<String>,
    /// The commands read, as actions (`To Customer`).
    pub commands: Vec<String>,
    /// A command that could not be read (unknown, ambiguous, several), in words.
    pub command_problem: Option<String>,
    pub fields: BTreeMap<String, String>,
    /// What the mail did to its ticket, when it changed one.
    pub action: Option<ActionReport>,
    /// A reply that opened a follow-up ticket: the closed ticket it replied to (`ticket` is
    /// the new one).
    pub followed_up: Option<String>,
    /// Why the mail, or its command, was not done.
    pub refusal: Option<RefusalReport>,
    /// What a bounce says (recipient, status, the returned mail).
    pub bounce: Option<crate::inbound::classify::Bounce>,
    /// Who the change's notifications went to.
    pub mailed: Vec<String>,
    /// Who was not mailed, and why ("not mailed to X: loop limit ...").
    pub not_mailed: Vec<String>,
    /// What else was done or not done, in words (a bounce noted, a ticket not revealed, a Cc
    /// added as watcher, ...).
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
}

impl MailReport {
    pub(crate) fn new(r: &Reading) -> MailReport {
        MailReport {
            message_id: r.mail.message_id.clone(),
            subject: r.mail.subject.clone(),
            class: r.class.class.as_str(),
            class_reason: r.class.reason.clone(),
            sender: SenderReport {
                address: r.sender.address.clone(),
                name: r.sender.name.clone(),
                role: r.sender.role,
                verified: r.sender.verified.is_some(),
                how: r.sender.verified.clone(),
                via: r.sender.via,
            },
            matched_by: "none",
            bounce: r.class.bounce.clone(),
            warnings: r.mail.warnings.clone(),
            ..MailReport::default()
        }
    }

    /// Records a change: what it did, who its notifications went to and who not.
    pub(crate) fn note_applied(&mut self, effects: &Effects, mailed: &Mailed) {
        self.action = Some(ActionReport::of(effects));
        self.mailed.extend(mailed.to.iter().cloned());
        self.not_mailed.extend(mailed.held.iter().cloned());
    }

    /// What was done, or why not, in one line: the action, the refusal, who was mailed and
    /// who not, the notes. The mail's stored reason.
    pub fn decision(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(closed) = &self.followed_up {
            parts.push(format!(
                "{closed} is closed: the reply opened follow-up ticket {}",
                self.ticket.as_deref().unwrap_or("-")
            ));
        }
        if let Some(a) = &self.action {
            parts.push(match &a.previous_status {
                _ if a.name == "create" => format!(
                    "new ticket {} ({})",
                    self.ticket.as_deref().unwrap_or("-"),
                    a.status
                ),
                Some(prev) => format!("{}: {prev} → {}", a.name, a.status),
                None => format!("{} ({})", a.name, a.status),
            });
            match a.comment {
                Some("internal") => parts.push("internal note added".into()),
                Some(_) => parts.push("comment added".into()),
                None => {}
            }
        }
        if let Some(r) = &self.refusal {
            parts.push(match &r.command {
                Some(c) => format!("not done: {c}: {}", r.reason),
                None => format!("refused: {}", r.reason),
            });
        }
        if !self.mailed.is_empty() {
            parts.push(format!("notified: {}", self.mailed.join(", ")));
        }
        parts.extend(self.not_mailed.iter().cloned());
        parts.extend(self.notes.iter().cloned());
        parts.join("; ")
    }

    /// One line for the log and stderr.
    pub fn line(&self) -> String {
        let ticket = self.ticket.as_deref().unwrap_or("-");
        format!(
            "{} {} from {} ({}{}) ticket {ticket}: {}",
            self.status.as_str(),
            self.class,
            if self.sender.address.is_empty() {
                "?"
            } else {
                &self.sender.address
            },
            self.sender.role,
            if self.sender.verified {
                ", verified"
            } else {
                ""
            },
            self.decision()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> MailReport {
        MailReport {
            subject: "hi".into(),
            class: "person",
            sender: SenderReport {
                address: "a@b.example".into(),
                role: "customer",
                via: "from",
                ..SenderReport::default()
            },
            matched_by: "none",
            ..MailReport::default()
        }
    }

    #[test]
    fn the_line_is_made_of_the_fields() {
        let mut r = report();
        r.status = Status::Applied;
        r.ticket = Some("SUP-1".into());
        r.action = Some(ActionReport {
            name: "To Customer".into(),
            status: "Waiting for Customer".into(),
            previous_status: Some("Open".into()),
            comment: Some("public"),
        });
        r.refusal = Some(RefusalReport {
            command: Some("/close".into()),
            code: "not_allowed".into(),
            reason: "not allowed".into(),
        });
        r.mailed = vec!["c@d.example".into()];
        r.notes = vec!["Cc e@f.example is now a watcher".into()];
        assert_eq!(
            r.decision(),
            "To Customer: Open → Waiting for Customer; comment added; not done: /close: not allowed; \
             notified: c@d.example; Cc e@f.example is now a watcher"
        );
        assert!(
            r.line().starts_with("applied person from a@b.example"),
            "{}",
            r.line()
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["action"]["name"], "To Customer");
        assert_eq!(json["refusal"]["code"], "not_allowed");
    }
}
