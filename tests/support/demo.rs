//! The demo help desk (`deskmail.example.toml`) as the tests write it: its people, the day its
//! tickets are made, the command line's actor, field lists.

use std::collections::BTreeMap;

use deskmail::config::Settings;
use deskmail::desk::Desk;
use deskmail::directory::Directory;
use deskmail::workflow::{Actor, Proof};
use jiff::Timestamp;

/// Acme's portal user.
pub const ANNA: &str = "anna@acme.example";
/// Acme's power user and customer IT.
pub const BEN: &str = "ben@acme.example";
/// Globex's portal user.
pub const CARL: &str = "carl@globex.example";
/// The help desk's agent.
pub const ALICE: &str = "alice@helpdesk.example";
/// A member of "IT Provider", Acme's primary partner.
pub const OPS: &str = "ops@itprov.example";
/// The address the help desk receives mail at.
pub const SUPPORT: &str = "support@helpdesk.example";
/// The support team's notification address.
pub const TEAM: &str = "team@helpdesk.example";

/// The day the tests' tickets are made on; their numbers read `SUP-20261122-NNNN`.
pub const DAY: &str = "2026-11-22";

/// `hh:mm` UTC on [`DAY`].
pub fn at(hh_mm: &str) -> Timestamp {
    format!("{DAY}T{hh_mm}:00Z")
        .parse()
        .unwrap_or_else(|e| panic!("{hh_mm}: {e}"))
}

/// The fields of an itil-portal request for Acme's mailbox (a service of its contract), as the
/// workflow and the catalogue spell them.
pub const MAILBOX_REQUEST: [(&str, &str); 4] = [
    ("service", "Email"),
    ("sub_category", "Mailbox"),
    ("impact", "medium"),
    ("urgency", "high"),
];

/// A field list as the core and the desk take it.
pub fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What holds the people of a help desk: its directory, its settings or a desk on them.
pub trait People {
    fn directory(&self) -> &Directory;
}

impl People for Directory {
    fn directory(&self) -> &Directory {
        self
    }
}

impl People for Settings {
    fn directory(&self) -> &Directory {
        &self.directory
    }
}

impl People for Desk {
    fn directory(&self) -> &Directory {
        &self.settings.directory
    }
}

/// A field list as the command line takes it: `--field name=value` for each.
pub fn field_args(pairs: &[(&str, &str)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(k, v)| ["--field".to_string(), format!("{k}={v}")])
        .collect()
}

/// `who` acting from the command line.
pub fn actor(on: &impl People, who: &str) -> Actor {
    Actor {
        person: on
            .directory()
            .person(who)
            .unwrap_or_else(|| panic!("{who} is not in the directory")),
        proof: Proof::Cli,
    }
}
