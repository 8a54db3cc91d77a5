//! The five workflows shipped with deskmail, one per seed, selectable by name.

use super::definition::Workflow;

/// The preset used when the config names none.
pub const DEFAULT: &str = "partner-routing";

/// Every preset: its name and its TOML source.
pub const PRESETS: [(&str, &str); 5] = [
    (
        "partner-routing",
        include_str!("presets/partner-routing.toml"),
    ),
    ("open-closed", include_str!("presets/open-closed.toml")),
    ("itil-portal", include_str!("presets/itil-portal.toml")),
    ("triage", include_str!("presets/triage.toml")),
    ("co-managed", include_str!("presets/co-managed.toml")),
];

/// The names of all presets, in seed order.
pub fn names() -> Vec<&'static str> {
    PRESETS.iter().map(|(n, _)| *n).collect()
}

/// The TOML source of a preset.
pub fn source(name: &str) -> Option<&'static str> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// A preset, parsed. The presets are tested to parse, so this only fails for unknown names.
pub fn load(name: &str) -> Option<Workflow> {
    source(name).and_then(|s| super::parse(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{AgentGroup, Directory};

    #[test]
    fn every_preset_parses_and_is_consistent() {
        let dir = Directory {
            groups: vec![AgentGroup {
                name: "development".into(),
                address: "dev@helpdesk.example".into(),
            }],
            ..Default::default()
        };
        for (name, src) in PRESETS {
            let wf = super::super::parse(src).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(wf.name, name);
            let problems = super::super::validate::validate(&wf, &dir);
            assert!(problems.is_empty(), "{name}: {problems:?}");
        }
    }
}
