//! Inbound mail: from raw RFC 5322 bytes to what the mail asks of which ticket. One pipeline
//! for every source (a file, stdin, a Maildir, later IMAP), each stage a module with its own
//! tests:
//!
//! ```text
//! parse → classify → identify → matching → extract → commands → (desk) one transaction
//! ```
//!
//! Everything here is pure: no database, no clock. The desk (`desk::ingest`) looks up what the
//! stages name (Message-IDs, tickets), asks the workflow core, and writes the result with the
//! mail itself in one transaction.
//!
//! Architecture invariant: parsing never fails; a bad mail gives a value and warnings.

pub mod address;
pub mod answerable;
pub mod bounds;
pub mod classify;
pub mod commands;
mod eight_bit;
pub mod extract;
pub mod html;
pub mod identify;
pub mod matching;
pub mod parse;

use serde::Serialize;

use crate::config::Settings;
use crate::directory::Directory;
use crate::reply_token::TokenKey;
use crate::workflow::Workflow;

pub use address::plain_address;
pub use classify::{Class, Classification};
pub use commands::Commands;
pub use extract::Extracted;
pub use identify::{Sender, Verification};
pub use matching::{Candidates, MatchedBy, RefFinder};
pub use parse::Parsed;

/// What the stages need that does not change from mail to mail.
#[derive(Debug, Clone)]
pub struct Reader {
    /// The addresses deskmail receives at (plain, lower-case).
    pub receiving: Vec<String>,
    /// Every address of the help desk's own: those it receives at, the support team's, the
    /// agent groups'.
    pub own: Vec<String>,
    /// The help desk's address and the domain of its Message-IDs.
    pub own_address: String,
    pub own_domain: String,
    pub finder: RefFinder,
    pub trusted_authserv_ids: Vec<String>,
    pub internal_marker: String,
    /// A larger mail is read for its headers only (`inbound.max_message_bytes`).
    pub max_message_bytes: u64,
}

impl Reader {
    pub fn new(settings: &Settings) -> Reader {
        let own_address = settings.directory.helpdesk.address.clone();
        let mut receiving = vec![own_address.clone()];
        for m in &settings.mailboxes {
            if !receiving.contains(&m.address) {
                receiving.push(m.address.clone());
            }
        }
        let dir = &settings.directory;
        let mut own = receiving.clone();
        own.push(dir.helpdesk.team_address.clone());
        own.extend(dir.groups.iter().map(|g| g.address.clone()));
        Reader {
            own,
            own_domain: own_address
                .rsplit_once('@')
                .map(|(_, d)| d.to_string())
                .unwrap_or_default(),
            own_address,
            receiving,
            finder: RefFinder::new(&settings.ticket_format),
            trusted_authserv_ids: settings.inbound.trusted_authserv_ids.clone(),
            internal_marker: settings.inbound.internal_marker.clone(),
            max_message_bytes: settings.inbound.max_message_bytes,
        }
    }
}

impl Reader {
    /// Is this one of the help desk's own addresses (in any plus form)?
    pub fn is_own(&self, address: &str) -> bool {
        self.own.contains(&plain_address(address))
    }
}

/// What the stages before the database make of a mail.
#[derive(Debug, Clone)]
pub struct Reading {
    pub mail: Parsed,
    pub class: Classification,
    pub sender: Sender,
    pub candidates: Candidates,
    /// The new text of the mail read as a reply, when worked out ahead ([`read_ahead`]).
    pub extracted: Option<Extracted>,
    /// Why its sender gets no automatic answer to it (refusal, "not done", acknowledgement), if
    /// so: see [`answerable`].
    pub unanswerable: Option<String>,
}

/// How much of a mail a source read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    /// All of it.
    Whole,
    /// Its beginning only (at least its header): the mail is over the size limit.
    Beginning,
}

/// Parses, classifies and identifies a mail and finds what may name its ticket. A mail over the
/// size limit is read for its headers only: it is refused for its size whatever it holds.
pub fn read(
    raw: &[u8],
    extent: Extent,
    reader: &Reader,
    dir: &Directory,
    key: &TokenKey,
) -> Reading {
    let mail = if extent == Extent::Beginning || raw.len() as u64 > reader.max_message_bytes {
        parse::parse_headers(raw)
    } else {
        parse::parse(raw)
    };
    let mut class = classify::classify(
        &mail,
        &classify::Own {
            address: &reader.own_address,
            domain: &reader.own_domain,
        },
    );
    let sender = identify::identify(
        &mail,
        &identify::Context {
            directory: dir,
            key,
            receiving: &reader.receiving,
            trusted_authserv_ids: &reader.trusted_authserv_ids,
        },
    );
    // A reply that a group address or a list relays is still a person's when it carries a
    // valid token or comes from someone the directory lists.
    if class.class == Class::List && (sender.verified.is_some() || sender.listed) {
        class = Classification {
            class: Class::Person,
            reason: format!(
                "relayed by a list ({}), but from {} ({})",
                class.reason,
                sender.address,
                if sender.verified.is_some() {
                    "verified"
                } else {
                    "listed in the directory"
                }
            ),
            bounce: None,
        };
    }
    // Mail in the help desk's own name without its loop header: not a stranger's, and never
    // answered (that would be mail to itself, or to whoever forged it).
    if class.class == Class::Person && reader.is_own(&sender.address) {
        class = Classification {
            class: Class::Own,
            reason: format!(
                "from the help desk's own address {}, without deskmail's loop header",
                sender.address
            ),
            bounce: None,
        };
    }
    let candidates = matching::candidates(
        &mail,
        sender.token.as_ref().map(|t| t.reference.as_str()),
        &reader.finder,
    );
    let unanswerable = if class.class != Class::Person {
        Some(format!("it is not a person's mail ({})", class.reason))
    } else {
        answerable::role_address(&sender.address)
            .map(String::from)
            .or_else(|| answerable::automatic_sign(&mail))
    };
    Reading {
        mail,
        class,
        sender,
        candidates,
        extracted: None,
        unanswerable,
    }
}

/// [`read`], and the new text of the mail as a reply worked out too: all that does not need
/// the database, for a thread that prepares mails while another applies them.
pub fn read_ahead(
    raw: &[u8],
    extent: Extent,
    reader: &Reader,
    dir: &Directory,
    key: &TokenKey,
) -> Reading {
    let mut reading = read(raw, extent, reader, dir, key);
    if reading.class.class == Class::Person {
        reading.extracted = Some(extract::extract(&reading.mail.text));
    }
    reading
}

/// What a mail is about, for spreading mails over parallel transactions without two of them
/// working on one ticket: the ticket it names, else the mail it answers, else its sender.
pub fn partition_key(reading: &Reading) -> String {
    let c = &reading.candidates;
    c.token
        .clone()
        .or_else(|| c.subject.first().cloned())
        .or_else(|| c.message_ids.first().cloned())
        .unwrap_or_else(|| reading.sender.address.clone())
}

/// The text and commands of a reply to a ticket that follows `wf`.
#[derive(Debug, Clone, Serialize)]
pub struct Reply {
    pub extracted: Extracted,
    pub commands: Commands,
}

/// Extracts a reply's new text and reads its commands.
pub fn reply(reading: &Reading, reader: &Reader, wf: &Workflow, dir: &Directory) -> Reply {
    let extracted = reading
        .extracted
        .clone()
        .unwrap_or_else(|| extract::extract(&reading.mail.text));
    let commands = commands::read(
        wf,
        dir,
        &reading.mail.subject,
        &extracted.text,
        &reader.internal_marker,
        &|tag| reader.finder.is_ref(tag),
    );
    Reply {
        extracted,
        commands,
    }
}

/// The text and fields of a mail that opens a ticket: only the signature goes (a forwarded or
/// quoted mail in a new request is part of the request), and field lines at the top are read
/// (`Service: Email`). A new request takes no commands.
pub fn request(reading: &Reading, wf: &Workflow) -> Reply {
    let extracted = extract::strip_signature(&reading.mail.text);
    let (fields, comment) = commands::read_fields(&extracted.text, &commands::known_fields(wf));
    Reply {
        extracted,
        commands: Commands {
            fields,
            comment,
            ..Default::default()
        },
    }
}
