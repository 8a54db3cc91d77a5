//! From an action's name as a person writes it (`To Customer`, `an kunde`, `[to IT Provider]`,
//! `/assign me`) to the action it means.

use crate::directory::Directory;

use super::definition::{Transition, Workflow};
use super::model::Refusal;

/// An action, resolved.
#[derive(Debug, Clone)]
pub enum Action<'w> {
    Comment,
    Transition {
        transition: &'w Transition,
        /// For a per-partner transition: the partner it sends the ticket to.
        partner: Option<String>,
        /// The action's display name (`To IT Provider`).
        name: String,
    },
    AssignMe,
    Assign(String),
    Involve(String),
    Uninvolve(String),
    MergeInto(String),
}

impl PartialEq for Action<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Action::Transition {
                    transition: a,
                    partner: pa,
                    ..
                },
                Action::Transition {
                    transition: b,
                    partner: pb,
                    ..
                },
            ) => std::ptr::eq(*a, *b) && pa == pb,
            (Action::Comment, Action::Comment) | (Action::AssignMe, Action::AssignMe) => true,
            (Action::Assign(a), Action::Assign(b))
            | (Action::Involve(a), Action::Involve(b))
            | (Action::Uninvolve(a), Action::Uninvolve(b))
            | (Action::MergeInto(a), Action::MergeInto(b)) => a == b,
            _ => false,
        }
    }
}

impl Action<'_> {
    pub fn display_name(&self, wf: &Workflow) -> String {
        match self {
            Action::Comment => wf.comment.name.clone(),
            Action::Transition { name, .. } => name.clone(),
            Action::AssignMe => "Assign me".into(),
            Action::Assign(a) => format!("Assign {a}"),
            Action::Involve(p) => format!("Involve {p}"),
            Action::Uninvolve(p) => format!("Uninvolve {p}"),
            Action::MergeInto(r) => format!("Merge into {r}"),
        }
    }
}

/// Lower-case, trimmed, without a leading `/` or surrounding brackets, single spaces.
pub fn normalize(name: &str) -> String {
    let mut s = name.trim();
    s = s.strip_prefix('/').unwrap_or(s);
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        s = inner;
    }
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The per-partner transition's name for one partner.
pub fn partner_name(template: &str, partner: &str) -> String {
    template.replace("{partner}", partner)
}

/// Every name (and alias) of every action, with the action it means, for all known partners.
fn candidates<'w>(wf: &'w Workflow, dir: &Directory) -> Vec<(String, Action<'w>)> {
    let mut out = Vec::new();
    out.push((normalize(&wf.comment.name), Action::Comment));
    for a in &wf.comment.aliases {
        out.push((normalize(a), Action::Comment));
    }
    for t in &wf.transitions {
        if t.per_partner {
            for p in &dir.partners {
                let action = Action::Transition {
                    transition: t,
                    partner: Some(p.name.clone()),
                    name: partner_name(&t.name, &p.name),
                };
                out.push((normalize(&partner_name(&t.name, &p.name)), action.clone()));
                for a in &t.aliases {
                    out.push((normalize(&partner_name(a, &p.name)), action.clone()));
                }
                for a in t.partner_aliases.get(&p.name).into_iter().flatten() {
                    out.push((normalize(a), action.clone()));
                }
            }
        } else {
            let action = Action::Transition {
                transition: t,
                partner: None,
                name: t.name.clone(),
            };
            out.push((normalize(&t.name), action.clone()));
            for a in &t.aliases {
                out.push((normalize(a), action.clone()));
            }
        }
    }
    out
}

/// The agent actions common to every workflow, by prefix (English and German).
fn builtin(key: &str) -> Option<Action<'static>> {
    const ASSIGN_ME: [&str; 3] = ["assign me", "assign to me", "mir zuweisen"];
    if ASSIGN_ME.contains(&key) {
        return Some(Action::AssignMe);
    }
    let rest = |prefixes: &[&str]| {
        prefixes.iter().find_map(|p| {
            key.strip_prefix(p)
                .filter(|r| r.starts_with(' '))
                .map(|r| r.trim().to_string())
        })
    };
    if let Some(r) = rest(&["merge into", "zusammenführen mit"]) {
        return Some(Action::MergeInto(r.to_uppercase()));
    }
    if let Some(r) = rest(&["uninvolve", "nicht beteiligen"]) {
        return Some(Action::Uninvolve(r));
    }
    if let Some(r) = rest(&["involve", "beteiligen"]) {
        return Some(Action::Involve(r));
    }
    if let Some(r) = rest(&["assign", "zuweisen an", "zuweisen"]) {
        return Some(Action::Assign(r));
    }
    None
}

/// Resolves a name to one action, or says why it cannot.
pub fn resolve<'w>(wf: &'w Workflow, dir: &Directory, name: &str) -> Result<Action<'w>, Refusal> {
    let key = normalize(name);
    let mut found: Vec<Action<'w>> = Vec::new();
    for (n, action) in candidates(wf, dir) {
        if n == key && !found.contains(&action) {
            found.push(action);
        }
    }
    match found.len() {
        1 => Ok(found.pop().expect("one element")),
        0 => builtin(&key).ok_or_else(|| Refusal::UnknownAction {
            name: name.trim().to_string(),
        }),
        _ => Err(Refusal::AmbiguousAction {
            name: name.trim().to_string(),
            candidates: found.iter().map(|a| a.display_name(wf)).collect(),
        }),
    }
}

/// All names and aliases a workflow defines for a set of partners, each with the action's
/// display name: for checking that no two actions share a name.
pub fn all_names(wf: &Workflow, dir: &Directory) -> Vec<(String, String)> {
    candidates(wf, dir)
        .into_iter()
        .map(|(n, a)| (n, a.display_name(wf)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_strips_markers_and_spacing() {
        assert_eq!(normalize("  [To   Customer] "), "to customer");
        assert_eq!(normalize("/an Kunde"), "an kunde");
        assert_eq!(normalize("Lösen"), "lösen");
    }

    #[test]
    fn builtins_take_their_argument() {
        assert_eq!(builtin("assign me"), Some(Action::AssignMe));
        assert_eq!(
            builtin("assign alice"),
            Some(Action::Assign("alice".into()))
        );
        assert_eq!(
            builtin("uninvolve it provider"),
            Some(Action::Uninvolve("it provider".into()))
        );
        assert_eq!(
            builtin("involve it provider"),
            Some(Action::Involve("it provider".into()))
        );
        assert_eq!(
            builtin("merge into sup-1"),
            Some(Action::MergeInto("SUP-1".into()))
        );
        assert_eq!(builtin("assignx"), None);
    }
}
