//! Stage 4: which ticket a mail belongs to. In order: the reply token in the recipient's
//! address; In-Reply-To and References against the Message-IDs deskmail sent (and the thread's
//! root); the ticket tag in the subject (`[SUP-20261122-0042]`, whatever `Re:`/`AW:`/`Fwd:` is
//! in front, with mangled spacing); the tag in the quoted footer of deskmail's own mail. Else a
//! new ticket.
//!
//! This module finds the candidates; the desk looks the Message-IDs up and checks that the
//! sender may see what they name (a ticket they may not see is no match, and is not revealed).

use regex::Regex;
use serde::Serialize;

use super::parse::Parsed;
use crate::ticket_number::TicketFormat;

/// How a mail was matched to its ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    Token,
    References,
    Subject,
    Footer,
    None,
}

impl MatchedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedBy::Token => "token",
            MatchedBy::References => "references",
            MatchedBy::Subject => "subject",
            MatchedBy::Footer => "footer",
            MatchedBy::None => "none",
        }
    }
}

/// Finds ticket numbers in text.
#[derive(Debug, Clone)]
pub struct RefFinder {
    format: TicketFormat,
    any: Regex,
    tagged: Regex,
}

impl RefFinder {
    pub fn new(format: &TicketFormat) -> RefFinder {
        let source = format.regex_source();
        let build = |s: &str| {
            regex::RegexBuilder::new(s)
                .case_insensitive(true)
                .build()
                .expect("a ticket format makes a valid pattern")
        };
        RefFinder {
            format: format.clone(),
            any: build(&format!(r"^\s*{source}\s*$")),
            tagged: build(&format!(r"\[\s*({source})\s*\]")),
        }
    }

    /// Is this bracket's content a ticket number (`SUP-20261122-0042`)?
    pub fn is_ref(&self, text: &str) -> bool {
        self.any.is_match(text)
    }

    /// The ticket numbers in `[...]` tags, in order, canonical.
    pub fn tagged(&self, text: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in self.tagged.captures_iter(text) {
            let r = self.format.canonical(&c[1]);
            if !out.contains(&r) {
                out.push(r);
            }
        }
        out
    }

    pub fn canonical(&self, found: &str) -> String {
        self.format.canonical(found)
    }
}

/// Everything that may name the ticket, strongest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Candidates {
    /// The ticket a reply token names.
    pub token: Option<String>,
    /// Message-IDs the mail answers: In-Reply-To first, then References newest first.
    pub message_ids: Vec<String>,
    /// Tags in the subject.
    pub subject: Vec<String>,
}

/// The candidates of a mail; `token` is the reference a reply token named.
pub fn candidates(mail: &Parsed, token: Option<&str>, finder: &RefFinder) -> Candidates {
    let mut ids: Vec<String> = Vec::new();
    // Message-IDs are compared as written: clients echo them verbatim.
    for id in mail.in_reply_to.iter().chain(mail.references.iter().rev()) {
        if !ids.contains(id) && ids.len() < 50 {
            ids.push(id.clone());
        }
    }
    Candidates {
        token: token.map(|t| finder.canonical(t)),
        message_ids: ids,
        subject: finder.tagged(&mail.subject),
    }
}

/// Tags in the body (deskmail's footer, quoted): the last resort, looked for only when nothing
/// else names a ticket.
pub fn footer(mail: &Parsed, finder: &RefFinder) -> Vec<String> {
    finder.tagged(&mail.text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::parse;

    #[test]
    fn candidates_come_from_every_place() {
        let f = TicketFormat::new("{prefix}-{date}-{seq:04}", "SUP", "UTC").unwrap();
        let finder = RefFinder::new(&f);
        let m = parse(
            b"Subject: AW: [EXTERNAL] [ sup-20261122 - 0001] Drucker\nIn-Reply-To: <B@x>\nReferences: <A@x> <B@x>\n\n> Please keep [SUP-20261122-0002] in the subject.\n",
        );
        let c = candidates(&m, Some("sup-20261122-0001"), &finder);
        assert_eq!(c.token.as_deref(), Some("SUP-20261122-0001"));
        assert_eq!(c.message_ids, vec!["<B@x>", "<A@x>"]);
        assert_eq!(c.subject, vec!["SUP-20261122-0001"]);
        assert_eq!(footer(&m, &finder), vec!["SUP-20261122-0002"]);
        assert!(finder.is_ref("SUP-20261122-0001"));
        assert!(!finder.is_ref("EXTERNAL"));
    }
}
