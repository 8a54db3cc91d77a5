//! Stage 6: commands and fields. A command comes as a subject tag (`[to customer]`, as the
//! action links write it) or as a `/` line at the top of the reply (`/to customer`), matched
//! case-insensitively against the workflow's action names and aliases (`[an Kunde]` too).
//! Fields come as `Key: value` lines at the top (`Satisfaction: 4`). The rest is the comment.
//!
//! A bracket in the subject that names no action (`[EXTERNAL]`, `[SPAM]`, a list's tag) is left
//! alone; a `/` line that names none is an unknown command. Two different commands in one mail
//! are refused together: deskmail does not guess which one was meant.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::directory::Directory;
use crate::workflow::Refusal;
use crate::workflow::definition::Workflow;
use crate::workflow::resolve::{self, Action};

/// Where a command was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Subject,
    Line,
}

/// A command, as written and as understood.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Command {
    /// As the sender wrote it (`an Kunde`).
    pub written: String,
    /// The action's name (`To Customer`).
    pub action: String,
    pub source: Source,
}

/// Why a command could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    Unknown {
        written: String,
    },
    Ambiguous {
        written: String,
        candidates: Vec<String>,
    },
    Several {
        actions: Vec<String>,
    },
}

impl Problem {
    /// The refusal the sender is told about.
    pub fn refusal(&self) -> Refusal {
        match self {
            Problem::Unknown { written } => Refusal::UnknownAction {
                name: written.clone(),
            },
            Problem::Ambiguous {
                written,
                candidates,
            } => Refusal::AmbiguousAction {
                name: written.clone(),
                candidates: candidates.clone(),
            },
            Problem::Several { actions } => Refusal::AmbiguousAction {
                name: actions.join(" + "),
                candidates: actions.clone(),
            },
        }
    }

    /// What the sender asked for, in their words.
    pub fn written(&self) -> String {
        match self {
            Problem::Unknown { written } | Problem::Ambiguous { written, .. } => written.clone(),
            Problem::Several { actions } => actions.join(" + "),
        }
    }
}

/// What a mail asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Commands {
    pub command: Option<Command>,
    pub problem: Option<Problem>,
    pub fields: BTreeMap<String, String>,
    /// The reply starts with the internal marker (an agent's internal note).
    pub internal_marker: bool,
    /// The text without the command and field lines.
    pub comment: String,
}

impl Commands {
    /// What the mail asks for beyond a comment (a command, however written, or fields), in the
    /// sender's words.
    pub fn asked(&self) -> Option<String> {
        if let Some(p) = &self.problem {
            return Some(p.written());
        }
        if let Some(c) = &self.command {
            return Some(c.written.clone());
        }
        (!self.fields.is_empty()).then(|| {
            let names: Vec<&str> = self.fields.keys().map(String::as_str).collect();
            format!("setting {}", names.join(", "))
        })
    }
}

/// Field keys as people write them, and the field each means.
const FIELD_KEYS: [(&str, &str); 22] = [
    ("service", "service"),
    ("dienst", "service"),
    ("sub_category", "sub_category"),
    ("sub-category", "sub_category"),
    ("subcategory", "sub_category"),
    ("sub category", "sub_category"),
    ("unterkategorie", "sub_category"),
    ("impact", "impact"),
    ("auswirkung", "impact"),
    ("urgency", "urgency"),
    ("dringlichkeit", "urgency"),
    ("satisfaction", "satisfaction"),
    ("zufriedenheit", "satisfaction"),
    ("request_type", "request_type"),
    ("request type", "request_type"),
    ("anfrageart", "request_type"),
    ("queue", "queue"),
    ("work_type", "work_type"),
    ("work type", "work_type"),
    ("arbeitsart", "work_type"),
    ("assignee", "assignee"),
    ("zuständig", "assignee"),
];

/// The field a `Key:` names, if any.
pub fn field_key(key: &str) -> Option<&'static str> {
    let k = key.trim().to_lowercase();
    FIELD_KEYS.iter().find(|(w, _)| *w == k).map(|(_, f)| *f)
}

/// The fields a workflow knows: those it defines, those creating a ticket takes and those its
/// actions take. Only these are read from `Key: value` lines; other such lines stay text.
pub fn known_fields(wf: &Workflow) -> Vec<String> {
    let mut out: Vec<String> = wf.fields.iter().map(|f| f.name.clone()).collect();
    out.extend(wf.create.fields.iter().cloned());
    for t in &wf.transitions {
        out.extend(t.fields.iter().map(|f| f.name.clone()));
    }
    out.sort();
    out.dedup();
    out
}

/// A `Key: value` line naming a field the workflow knows.
fn field_line(line: &str, known: &[String]) -> Option<(&'static str, String)> {
    let (k, v) = line.split_once(':')?;
    let field = field_key(k)?;
    if !known.iter().any(|f| f == field) {
        return None;
    }
    let v = v.trim();
    (!v.is_empty()).then(|| (field, v.to_string()))
}

/// The field lines at the top of a text (fields of `known` only), and the rest.
pub fn read_fields(text: &str, known: &[String]) -> (BTreeMap<String, String>, String) {
    let mut fields = BTreeMap::new();
    let mut start = 0;
    for (at, line) in top_lines(text) {
        let t = line.trim();
        if t.is_empty() && fields.is_empty() {
            start = at + line.len();
            continue;
        }
        match field_line(t, known) {
            Some((field, value)) => {
                fields.entry(field.to_string()).or_insert(value);
                start = at + line.len();
            }
            None if t.is_empty() => start = at + line.len(),
            None => break,
        }
    }
    (fields, text[start..].trim().to_string())
}

/// Lines that may carry commands and fields: those at the top of a text, with their offsets.
/// A person writes a few; at most [`MAX_TOP_LINES`] are looked at (each command line is looked
/// up among the workflow's names), and whatever follows is the comment.
fn top_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut at = 0;
    text.split_inclusive('\n')
        .take(MAX_TOP_LINES)
        .map(move |line| {
            let this = at;
            at += line.len();
            (this, line)
        })
}

/// Lines at the top of a reply read for commands, fields and the internal marker, at most.
const MAX_TOP_LINES: usize = 50;

/// A command as written, as much of it as a notice repeats: nothing of a stranger's mail
/// beyond that travels back out.
fn short(written: &str) -> String {
    super::bounds::cut_chars(written.trim(), 100)
}

/// What a name means in the workflow: an action, nothing, or several.
enum Meaning {
    Action(String),
    Comment,
    Nothing,
    Ambiguous(Vec<String>),
}

fn meaning(wf: &Workflow, dir: &Directory, name: &str) -> Meaning {
    match resolve::resolve(wf, dir, name) {
        Ok(Action::Comment) => Meaning::Comment,
        Ok(a) => Meaning::Action(a.display_name(wf)),
        Err(Refusal::AmbiguousAction { candidates, .. }) => Meaning::Ambiguous(candidates),
        Err(_) => Meaning::Nothing,
    }
}

/// The bracketed tags of a subject, in order.
fn tags(subject: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = subject;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        let inner = after[..close].trim();
        if !inner.is_empty() && !inner.contains('[') {
            out.push(inner);
        }
        rest = &after[close + 1..];
    }
    out
}

/// Reads the commands of a reply: tags of `subject` (those for which `is_ticket_tag` holds are
/// the ticket's own and skipped) and the top lines of `text`.
pub fn read(
    wf: &Workflow,
    dir: &Directory,
    subject: &str,
    text: &str,
    internal_marker: &str,
    is_ticket_tag: &dyn Fn(&str) -> bool,
) -> Commands {
    let mut found: Vec<Command> = Vec::new();
    let mut problem = None;
    for tag in tags(subject) {
        if is_ticket_tag(tag) {
            continue;
        }
        match meaning(wf, dir, tag) {
            Meaning::Action(action) => found.push(Command {
                written: short(tag),
                action,
                source: Source::Subject,
            }),
            Meaning::Ambiguous(candidates) => {
                problem.get_or_insert(Problem::Ambiguous {
                    written: short(tag),
                    candidates,
                });
            }
            // `[EXTERNAL]`, `[SPAM]`, a list's tag, `[Kommentar]`: not a command.
            Meaning::Comment | Meaning::Nothing => {}
        }
    }
    let mut out = Commands::default();
    let known = known_fields(wf);
    let mut body_start = 0;
    for (at, line) in top_lines(text) {
        let t = line.trim();
        let next = at + line.len();
        if t.is_empty() {
            body_start = next;
            continue;
        }
        if t.eq_ignore_ascii_case(internal_marker) {
            out.internal_marker = true;
            body_start = next;
            continue;
        }
        if let Some(name) = t.strip_prefix('/')
            && name.chars().next().is_some_and(char::is_alphabetic)
        {
            match meaning(wf, dir, name) {
                Meaning::Action(action) => found.push(Command {
                    written: short(name),
                    action,
                    source: Source::Line,
                }),
                Meaning::Comment => {}
                Meaning::Ambiguous(candidates) => {
                    problem.get_or_insert(Problem::Ambiguous {
                        written: short(name),
                        candidates,
                    });
                }
                Meaning::Nothing => {
                    problem.get_or_insert(Problem::Unknown {
                        written: short(name),
                    });
                }
            }
            body_start = next;
            continue;
        }
        if let Some((field, value)) = field_line(t, &known) {
            out.fields.entry(field.to_string()).or_insert(value);
            body_start = next;
            continue;
        }
        break;
    }
    out.comment = text[body_start..].trim().to_string();
    let mut actions: Vec<String> = found.iter().map(|c| c.action.clone()).collect();
    actions.dedup();
    if actions.len() > 1 {
        problem = Some(Problem::Several { actions });
    } else if problem.is_none() {
        out.command = found.into_iter().next();
    }
    out.problem = problem;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> (Workflow, Directory) {
        let settings = crate::config::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deskmail.example.toml"),
        )
        .unwrap();
        (settings.workflow, settings.directory)
    }

    fn read_it(subject: &str, text: &str) -> Commands {
        let (wf, dir) = demo();
        read(&wf, &dir, subject, text, "#internal", &|t: &str| {
            t.to_uppercase().starts_with("SUP-")
        })
    }

    #[test]
    fn subject_tags_and_aliases_are_commands() {
        let c = read_it(
            "[To IT Provider] Re: [SUP-20261122-0001] Printer",
            "Please look.",
        );
        assert_eq!(c.command.unwrap().action, "To IT Provider");
        let c = read_it(
            "AW: [an Kunde] [SUP-20261122-0001] Drucker",
            "Bitte prüfen.",
        );
        assert_eq!(c.command.unwrap().action, "To Customer");
        assert_eq!(c.comment, "Bitte prüfen.");
    }

    #[test]
    fn only_the_top_lines_are_read_for_commands() {
        // Found by fuzzing: 20,000 command lines were each looked up among the workflow's names.
        let text = "/frobnicate now\n".repeat(20_000);
        let c = read_it("Re: [SUP-1] x", &text);
        assert!(
            matches!(c.problem, Some(Problem::Unknown { .. })),
            "{:?}",
            c.problem
        );
        assert_eq!(c.comment.lines().count(), 20_000 - MAX_TOP_LINES);
        let (fields, rest) = read_fields(&"Service: Email\n".repeat(1000), &["service".into()]);
        assert_eq!(fields["service"], "Email");
        assert_eq!(rest.lines().count(), 1000 - MAX_TOP_LINES);
    }

    #[test]
    fn foreign_tags_are_left_alone() {
        let c = read_it("[EXTERNAL] Re: [SUP-20261122-0001] Printer", "Thanks");
        assert!(c.command.is_none() && c.problem.is_none(), "{c:?}");
    }

    #[test]
    fn lines_and_fields_at_the_top() {
        let c = read_it("Re: [SUP-1] x", "/to customer\n\nHere you go.\n/close");
        assert_eq!(c.command.clone().unwrap().action, "To Customer");
        assert_eq!(c.command.unwrap().source, Source::Line);
        assert_eq!(c.comment, "Here you go.\n/close");
        // partner-routing knows no satisfaction field: the line stays text.
        let c = read_it("Re: [SUP-1] x", "Satisfaction: 4\nok");
        assert!(c.fields.is_empty());
        assert_eq!(c.comment, "Satisfaction: 4\nok");
        let c = read_it("Re: [SUP-1] x", "/frobnicate\nhello");
        assert_eq!(
            c.problem,
            Some(Problem::Unknown {
                written: "frobnicate".into()
            })
        );
        assert_eq!(c.comment, "hello");
    }

    #[test]
    fn fields_the_workflow_knows_are_read_from_the_top() {
        let (_, dir) = demo();
        let wf = crate::workflow::presets::load("itil-portal").unwrap();
        let c = read(
            &wf,
            &dir,
            "[Close] Re: [SUP-1] x",
            "Zufriedenheit: 4\nDanke!",
            "#internal",
            &|t| t.starts_with("SUP-"),
        );
        assert_eq!(c.command.unwrap().action, "Close");
        assert_eq!(c.fields["satisfaction"], "4");
        assert_eq!(c.comment, "Danke!");
    }

    #[test]
    fn two_different_commands_are_refused_together() {
        let c = read_it("[Resolve] Re: [SUP-1] x", "/to customer\nok");
        assert!(c.command.is_none());
        assert!(matches!(c.problem, Some(Problem::Several { .. })), "{c:?}");
    }
}
