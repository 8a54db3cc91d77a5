//! `[inbound]`: how mail coming in is read, trusted and kept.

use serde::Deserialize;

use super::Loader;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInbound {
    max_message_bytes: Option<u64>,
    trusted_authserv_ids: Option<Vec<String>>,
    unverified: Option<String>,
    internal_marker: Option<String>,
    refuse_unknown_with_notice: Option<bool>,
    failed_dir: Option<String>,
}

/// What a known sender whose identity could not be verified may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnverifiedPolicy {
    /// Open tickets and comment, but no commands, and the comment fires no state rule.
    Comment,
    /// Nothing: the mail is kept and refused.
    Refuse,
}

#[derive(Debug, Clone)]
pub struct InboundSettings {
    /// A larger mail is refused with a reason (and kept), never truncated.
    pub max_message_bytes: u64,
    /// `Authentication-Results` headers from these hosts (authserv-id) are believed.
    pub trusted_authserv_ids: Vec<String>,
    pub unverified: UnverifiedPolicy,
    /// An agent's reply starting with this line becomes an internal note.
    pub internal_marker: String,
    /// Answer a person outside every organisation with a polite refusal.
    pub refuse_unknown_with_notice: bool,
}

impl Default for InboundSettings {
    fn default() -> Self {
        InboundSettings {
            max_message_bytes: 25 * 1024 * 1024,
            trusted_authserv_ids: Vec::new(),
            unverified: UnverifiedPolicy::Comment,
            internal_marker: "#internal".into(),
            refuse_unknown_with_notice: true,
        }
    }
}

pub(crate) fn resolve(l: &mut Loader, raw: RawInbound) -> InboundSettings {
    let d = InboundSettings::default();
    if raw.failed_dir.is_some() {
        l.warning(
            "inbound.failed_dir",
            "is not used: a mail that cannot be applied is kept in the store \
             (deskmail inbound list --failed); remove the key",
        );
    }
    let unverified = match raw.unverified.as_deref().unwrap_or("comment") {
        "comment" => UnverifiedPolicy::Comment,
        "refuse" => UnverifiedPolicy::Refuse,
        other => {
            l.problem(
                "inbound.unverified",
                format!("\"{other}\" is not one of comment, refuse"),
            );
            UnverifiedPolicy::Comment
        }
    };
    let max_message_bytes = raw.max_message_bytes.unwrap_or(d.max_message_bytes);
    if max_message_bytes < 1024 {
        l.problem("inbound.max_message_bytes", "must be at least 1024");
    }
    let internal_marker = raw
        .internal_marker
        .map(|m| m.trim().to_string())
        .unwrap_or(d.internal_marker);
    if internal_marker.is_empty() {
        l.problem("inbound.internal_marker", "must not be empty");
    }
    InboundSettings {
        max_message_bytes,
        trusted_authserv_ids: raw
            .trusted_authserv_ids
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.trim().to_lowercase())
            .collect(),
        unverified,
        internal_marker,
        refuse_unknown_with_notice: raw
            .refuse_unknown_with_notice
            .unwrap_or(d.refuse_unknown_with_notice),
    }
}
