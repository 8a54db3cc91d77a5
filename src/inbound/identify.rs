//! Stage 3: who sent the mail, and whether that is proven. The From address is looked up in the
//! directory (Reply-To and Sender are considered when From is no one deskmail knows, as when a
//! list relays a reply under its own address); proof is the signed reply token deskmail put in
//! this recipient's reply address, or an `Authentication-Results` header from a trusted host
//! saying DMARC or DKIM passed for the From domain.
//!
//! A token issued to a group address (an organisation's or a partner's support group, the
//! support team's) proves a reply from any member of that group.

use serde::Serialize;

use super::parse::{Mailbox, Parsed};
use crate::directory::{Directory, Party, Person, domain_of};
use crate::reply_token::{self, TokenKey};

/// How a sender was verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Verification {
    /// A reply token issued to this address (or to a group the sender belongs to).
    Token { issued_to: String },
    /// A trusted host's DMARC pass for the From domain.
    Dmarc { authserv_id: String },
    /// A trusted host's DKIM pass aligned with the From domain.
    Dkim { authserv_id: String, domain: String },
}

/// A reply token found among the recipients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Token {
    /// The ticket it names (as written in the token, lower-case).
    pub reference: String,
    /// The address it was issued to, when it verifies for this sender.
    pub issued_to: Option<String>,
}

/// The sender as deskmail understands them.
#[derive(Debug, Clone, Serialize)]
pub struct Sender {
    pub address: String,
    pub name: String,
    /// The directory's person: listed, or a member of an organisation by the address's domain.
    #[serde(skip)]
    pub person: Option<Person>,
    /// Listed in the directory by address (not only by domain).
    pub listed: bool,
    /// `agent`, `customer`, `partner` or `unknown`.
    pub role: &'static str,
    /// Which header named them: `from`, `reply-to` or `sender`.
    pub via: &'static str,
    pub verified: Option<Verification>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<Token>,
}

/// What identification needs at hand.
pub struct Context<'a> {
    pub directory: &'a Directory,
    pub key: &'a TokenKey,
    /// The addresses deskmail receives at (the help desk's and its mailboxes'), whose
    /// plus-parts may carry tokens.
    pub receiving: &'a [String],
    pub trusted_authserv_ids: &'a [String],
}

/// Identifies and verifies the sender.
pub fn identify(mail: &Parsed, ctx: &Context<'_>) -> Sender {
    let dir = ctx.directory;
    let from = mail.from.clone().unwrap_or_default();
    let known = |m: &Mailbox| dir.person(&m.address).is_some();
    // From first; when From is no one known, a single Reply-To or the Sender that is.
    let (chosen, via) = if known(&from) || from.address.is_empty() && mail.reply_to.is_empty() {
        (from.clone(), "from")
    } else if let [r] = mail.reply_to.as_slice()
        && known(r)
    {
        (r.clone(), "reply-to")
    } else if let Some(s) = mail.sender.as_ref().filter(|s| known(s)) {
        (s.clone(), "sender")
    } else {
        (from.clone(), "from")
    };
    let listed = dir.person(&chosen.address).is_some();
    let person = dir.person_or_domain_member(&chosen.address);
    let role = match person.as_ref().map(|p| &p.party) {
        Some(Party::Agent) => "agent",
        Some(Party::Customer { .. }) => "customer",
        Some(Party::Partner { .. }) => "partner",
        None => "unknown",
    };
    let token = find_token(mail, ctx, &chosen.address, person.as_ref());
    let verified = match token.as_ref().and_then(|t| t.issued_to.clone()) {
        Some(issued_to) => Some(Verification::Token { issued_to }),
        None if via == "from" => authenticated(mail, ctx.trusted_authserv_ids, &chosen.address),
        None => None,
    };
    Sender {
        address: chosen.address,
        name: chosen.name,
        person,
        listed,
        role,
        via,
        verified,
        token,
    }
}

impl Sender {
    /// How the sender was verified, as the workflow's actor carries it.
    pub fn proof(&self) -> crate::workflow::Proof {
        use crate::workflow::Proof;
        match self.verified {
            Some(Verification::Token { .. }) => Proof::Token,
            Some(Verification::Dmarc { .. }) => Proof::Dmarc,
            Some(Verification::Dkim { .. }) => Proof::Dkim,
            None => Proof::Unverified,
        }
    }
}

/// The addresses a token may have been issued to for this sender: their own and their groups'.
pub fn token_candidates(dir: &Directory, address: &str, person: Option<&Person>) -> Vec<String> {
    let mut out = vec![address.to_string()];
    match person.map(|p| &p.party) {
        Some(Party::Customer { organisation, .. }) => {
            if let Some(o) = dir.organisation(organisation) {
                out.extend(o.support_group.iter().cloned());
            }
        }
        Some(Party::Partner { partner }) => {
            out.extend(dir.partner_addresses(partner));
        }
        Some(Party::Agent) => {
            out.push(dir.helpdesk.team_address.clone());
            out.extend(dir.groups.iter().map(|g| g.address.clone()));
        }
        None => {}
    }
    out.dedup();
    out
}

fn find_token(
    mail: &Parsed,
    ctx: &Context<'_>,
    address: &str,
    person: Option<&Person>,
) -> Option<Token> {
    let candidates = token_candidates(ctx.directory, address, person);
    let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
    let mut first: Option<Token> = None;
    for recipient in mail.recipients() {
        let Some((local, domain)) = recipient.rsplit_once('@') else {
            continue;
        };
        let Some((base, plus)) = local.split_once('+') else {
            continue;
        };
        if !plus.starts_with(reply_token::PREFIX) {
            continue;
        }
        let plain = format!("{base}@{domain}");
        if !ctx.receiving.contains(&plain) {
            continue;
        }
        let Some((reference, _)) = reply_token::parse(recipient) else {
            continue;
        };
        if let Some((_, issued_to)) = ctx.key.verify(recipient, &candidates) {
            return Some(Token {
                reference,
                issued_to: Some(issued_to.to_string()),
            });
        }
        first.get_or_insert(Token {
            reference,
            issued_to: None,
        });
    }
    first
}

/// DMARC or aligned DKIM passed, says a trusted host's `Authentication-Results` (RFC 8601).
/// Only the topmost header of each trusted host counts: receiving servers add theirs on top
/// (and should remove forged ones with their own id, RFC 8601 section 5).
fn authenticated(mail: &Parsed, trusted: &[String], address: &str) -> Option<Verification> {
    let from_domain = domain_of(address)?;
    let mut seen: Vec<String> = Vec::new();
    for header in mail.header_all("authentication-results") {
        // Comments first: they may hold `;` themselves ("(2048-bit key; unprotected)").
        let header = strip_comments(header);
        let mut parts = header.split(';');
        let authserv_id = parts
            .next()?
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_lowercase();
        if !trusted.contains(&authserv_id) || seen.contains(&authserv_id) {
            continue;
        }
        seen.push(authserv_id.clone());
        for resinfo in parts {
            let mut words = resinfo.split_whitespace();
            let Some((method, result)) = words.next().and_then(|w| w.split_once('=')) else {
                continue;
            };
            if !result.eq_ignore_ascii_case("pass") {
                continue;
            }
            let props: Vec<(String, String)> = words
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_lowercase(), v.trim_matches('"').to_lowercase()))
                .collect();
            let prop = |k: &str| props.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
            match method.to_lowercase().as_str() {
                // A DMARC result says which From domain it is about; one that does not is about
                // no mail in particular.
                "dmarc" if prop("header.from").is_some_and(|d| d == from_domain) => {
                    return Some(Verification::Dmarc { authserv_id });
                }
                "dkim" => {
                    let d = prop("header.d").or_else(|| {
                        prop("header.i").and_then(|i| i.rsplit_once('@').map(|(_, d)| d.into()))
                    })?;
                    if aligned(&d, &from_domain) {
                        return Some(Verification::Dkim {
                            authserv_id,
                            domain: d,
                        });
                    }
                }
                _ => {}
            }
        }
    }
    None
}

/// DMARC's relaxed alignment (RFC 7489, 3.1.1): the signing domain and the From domain have
/// the same organisational domain, by the Public Suffix List (compiled in). A public suffix
/// (`com`, `co.uk`, a bare top-level name) is no one's organisation and aligns with nothing.
fn aligned(signing: &str, from: &str) -> bool {
    let organisation =
        |d: &str| psl::domain_str(d.trim_end_matches('.')).map(str::to_ascii_lowercase);
    match (organisation(signing), organisation(from)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Removes `(comments)` from a header value.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::parse;

    fn demo() -> Directory {
        crate::config::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deskmail.example.toml"),
        )
        .unwrap()
        .directory
    }

    fn who(raw: &str, key: &TokenKey) -> Sender {
        let dir = demo();
        let receiving = vec!["support@helpdesk.example".to_string()];
        let trusted = vec!["mx.helpdesk.example".to_string()];
        identify(
            &parse(raw.as_bytes()),
            &Context {
                directory: &dir,
                key,
                receiving: &receiving,
                trusted_authserv_ids: &trusted,
            },
        )
    }

    #[test]
    fn a_token_verifies_its_recipient_and_group_members_only() {
        let key = TokenKey::new("0123456789abcdef0123");
        let to_anna = key.reply_address("support@helpdesk.example", "SUP-1", "anna@acme.example");
        let s = who(
            &format!("From: anna@acme.example\nTo: {to_anna}\n\nx\n"),
            &key,
        );
        assert_eq!(
            s.verified,
            Some(Verification::Token {
                issued_to: "anna@acme.example".into()
            })
        );
        assert_eq!(s.token.unwrap().reference, "sup-1");
        let s = who(
            &format!("From: carl@globex.example\nTo: {to_anna}\n\nx\n"),
            &key,
        );
        assert_eq!(s.verified, None);
        assert_eq!(s.token.unwrap().issued_to, None);
        let to_group = key.reply_address("support@helpdesk.example", "SUP-1", "it@acme.example");
        let s = who(
            &format!("From: ben@acme.example\nTo: {to_group}\n\nx\n"),
            &key,
        );
        assert!(matches!(s.verified, Some(Verification::Token { .. })));
    }

    #[test]
    fn only_a_trusted_host_authenticates() {
        let key = TokenKey::new("0123456789abcdef0123");
        let ok = "Authentication-Results: mx.helpdesk.example;\n\tdkim=pass (2048-bit key; unprotected) header.d=acme.example;\n\tdmarc=pass (p=reject) header.from=acme.example\nFrom: anna@acme.example\n\nx\n";
        assert!(matches!(
            who(ok, &key).verified,
            Some(Verification::Dkim { .. })
        ));
        let forged = ok.replace("mx.helpdesk.example", "mx.evil.example");
        assert_eq!(who(&forged, &key).verified, None);
        let failed = "Authentication-Results: mx.helpdesk.example; dmarc=fail header.from=acme.example\nFrom: anna@acme.example\n\nx\n";
        assert_eq!(who(failed, &key).verified, None);
        let unaligned = "Authentication-Results: mx.helpdesk.example; dkim=pass header.d=evil.example\nFrom: anna@acme.example\n\nx\n";
        assert_eq!(who(unaligned, &key).verified, None);
        // A bare top-level or public suffix is nobody's domain.
        for d in ["example", "co.uk"] {
            let suffix = format!(
                "Authentication-Results: mx.helpdesk.example; dkim=pass header.d={d}\nFrom: anna@acme.{d}\n\nx\n"
            );
            assert_eq!(who(&suffix, &key).verified, None, "{d}");
        }
        // A subdomain of the From domain's organisation aligns, either way round.
        let sub = "Authentication-Results: mx.helpdesk.example; dkim=pass header.d=mail.acme.example\nFrom: anna@acme.example\n\nx\n";
        assert!(matches!(
            who(sub, &key).verified,
            Some(Verification::Dkim { .. })
        ));
        let uk = "Authentication-Results: mx.helpdesk.example; dkim=pass header.d=acme.co.uk\nFrom: anna@support.acme.co.uk\n\nx\n";
        assert!(matches!(
            who(uk, &key).verified,
            Some(Verification::Dkim { .. })
        ));
        // DMARC counts only for the From domain it names.
        let bare = "Authentication-Results: mx.helpdesk.example; dmarc=pass\nFrom: anna@acme.example\n\nx\n";
        assert_eq!(who(bare, &key).verified, None);
        let other = "Authentication-Results: mx.helpdesk.example; dmarc=pass header.from=evil.example\nFrom: anna@acme.example\n\nx\n";
        assert_eq!(who(other, &key).verified, None);
    }

    #[test]
    fn a_list_relayed_reply_is_its_author_by_reply_to() {
        let key = TokenKey::new("0123456789abcdef0123");
        let s = who(
            "From: 'Anna' via Acme IT <it@acme.example>\nReply-To: Anna <anna@acme.example>\n\nx\n",
            &key,
        );
        assert_eq!(s.address, "anna@acme.example");
        assert_eq!(s.via, "reply-to");
        assert_eq!(s.role, "customer");
    }
}
