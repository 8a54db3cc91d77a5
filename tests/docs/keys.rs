//! The keys the configuration code accepts: the fields of the `Raw*` structs in
//! `src/config/*.rs` (the file's shape, read with `deny_unknown_fields`), each under the
//! section it is read from.

use std::collections::BTreeMap;

/// Where each `Raw*` struct is read from in the file. A struct not listed here fails the test,
/// so that a new section's keys cannot go undocumented.
pub const SECTIONS: [(&str, &[&str]); 20] = [
    ("RawHelpdesk", &["helpdesk"]),
    ("RawStore", &["store"]),
    ("RawWorkflow", &["workflow"]),
    ("RawMailbox", &["mailboxes"]),
    ("RawPlus", &["mailboxes.plus.<part>"]),
    ("RawImap", &["mailboxes.imap"]),
    ("RawMaildir", &["mailboxes.maildir"]),
    ("RawTeam", &["team"]),
    ("RawPerson", &["team.agents", "partners.members"]),
    ("RawGroup", &["team.groups"]),
    ("RawOrganisation", &["organisations"]),
    ("RawService", &["organisations.services"]),
    ("RawMember", &["organisations.members"]),
    ("RawPartner", &["partners"]),
    ("RawLog", &["log"]),
    ("RawDaemon", &["daemon"]),
    ("RawInbound", &["inbound"]),
    ("RawOutbound", &["outbound"]),
    ("RawSmtp", &["outbound.smtp"]),
    (
        "RawOAuth2",
        &["mailboxes.imap.oauth2", "outbound.smtp.oauth2"],
    ),
];

/// Each `Raw*` struct of the source with its fields' names.
pub fn raw_structs(source: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in source.lines() {
        if let Some((name, fields)) = current.as_mut() {
            if line.starts_with('}') {
                out.insert(std::mem::take(name), std::mem::take(fields));
                current = None;
            } else if let Some(field) = field_name(line) {
                fields.push(field);
            }
            continue;
        }
        let Some(rest) = line.split("struct ").nth(1) else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.starts_with("Raw") && line.trim_end().ends_with('{') {
            current = Some((name, Vec::new()));
        }
    }
    out
}

/// `    name: Type,` → `name`; comments and attributes are not fields.
fn field_name(line: &str) -> Option<String> {
    let line = line.trim();
    if line.starts_with("//") || line.starts_with('#') {
        return None;
    }
    let line = line
        .strip_prefix("pub(crate) ")
        .or_else(|| line.strip_prefix("pub "))
        .unwrap_or(line);
    let (name, _) = line.split_once(':')?;
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    ok.then(|| name.to_string())
}

#[test]
fn fields_of_raw_structs() {
    let src = "#[derive(Deserialize)]\npub(crate) struct RawX {\n    /// doc: not a field\n    a_b: Option<String>,\n    #[serde(default)]\n    pub c: Vec<String>,\n}\nstruct Other {\n    d: u8,\n}\n";
    let s = raw_structs(src);
    assert_eq!(s.len(), 1);
    assert_eq!(s["RawX"], vec!["a_b", "c"]);
}
