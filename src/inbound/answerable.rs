//! Whom deskmail never answers. A refusal, a "not done" notice or an acknowledgement goes to a
//! mail's sender; none may go to a machine, to the help desk itself, or to an address a
//! forger picked (backscatter). Two checks:
//!
//! - [`role_address`]: addresses no person reads (postmaster, mailer-daemon, no-reply and its
//!   spellings, the bounce- and return- forms of VERP): never mailed at all;
//! - [`automatic_sign`]: a mail that says it must not be answered automatically (a null or
//!   missing return path, `X-Auto-Response-Suppress`, a list's headers): its sender gets no
//!   automatic answer to it, while the mail itself is still taken in.

use super::address::base_local_part;
use super::parse::Parsed;

/// Local parts of addresses that belong to mail systems, after `+tag`, lower-cased.
const ROLE_LOCAL_PARTS: [&str; 10] = [
    "postmaster",
    "mailer-daemon",
    "mailerdaemon",
    "mail-daemon",
    "maildaemon",
    "listserv",
    "majordomo",
    "nobody",
    "bounce",
    "bounces",
];

/// "Do not reply" as local parts spell it, once their words (split at `.`, `-`, `_`) are joined:
/// `no-reply`, `noreply`, `do_not_reply`, `DoNotReply`, `notifications-noreply`.
const NO_REPLY: [&str; 5] = [
    "noreply",
    "donotreply",
    "dontreply",
    "norespond",
    "noresponse",
];

/// Starts of VERP and bounce-handling sender addresses (`bounce-123-anna=acme@...`).
const VERP_STARTS: [&str; 5] = ["bounce-", "bounces-", "bounce+", "bounces+", "return-"];

/// Why an address belongs to a mail system rather than a person, if it does.
pub fn role_address(address: &str) -> Option<&'static str> {
    let local = address.rsplit_once('@').map_or(address, |(l, _)| l);
    let local = local.to_ascii_lowercase();
    let base = base_local_part(&local);
    if ROLE_LOCAL_PARTS.contains(&base) {
        return Some("a mail system's address, which no person reads");
    }
    // Whole words only: `eleonore.plyer` is a person.
    let words: Vec<&str> = base.split(['.', '-', '_']).collect();
    let spelled = |n: usize| {
        words
            .windows(n)
            .any(|w| NO_REPLY.contains(&w.concat().as_str()))
    };
    if (1..=3).any(spelled) {
        return Some("a no-reply address");
    }
    if VERP_STARTS.iter().any(|v| local.starts_with(v)) {
        return Some("a bounce-handling address (VERP)");
    }
    None
}

/// Why a mail must not be answered automatically, if it says so.
pub fn automatic_sign(mail: &Parsed) -> Option<String> {
    match mail.return_path.as_deref() {
        Some("") => return Some("its return path is empty (an automatic mail)".into()),
        None => return Some("it has no return path (Return-Path)".into()),
        Some(_) => {}
    }
    if let Some(v) = mail.header("x-auto-response-suppress") {
        let v = v.trim();
        // Exchange's own values; `None` asks for nothing.
        if !v.eq_ignore_ascii_case("none") && !v.is_empty() {
            return Some(format!("X-Auto-Response-Suppress: {v}"));
        }
    }
    for h in ["list-id", "list-post", "list-unsubscribe", "mailing-list"] {
        if mail.header(h).is_some() {
            return Some(format!("it came through a mailing list ({h})"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::parse;

    #[test]
    fn role_addresses_are_known_in_their_spellings() {
        for a in [
            "postmaster@acme.example",
            "MAILER-DAEMON@mx.acme.example",
            "no-reply@acme.example",
            "noreply+x@acme.example",
            "do-not-reply@acme.example",
            "do_not_reply@acme.example",
            "DoNotReply@acme.example",
            "notifications-noreply@acme.example",
            "bounce-42-anna=acme.example@lists.example",
            "bounces+1234@mailer.example",
            "return-77@news.example",
        ] {
            assert!(role_address(a).is_some(), "{a}");
        }
        for a in [
            "anna@acme.example",
            "bouncer@acme.example",
            "nora@acme.example",
            "returns@shop.example",
            "postmaster.anna@acme.example",
            "eleonore.plyer@acme.example",
            "no.name@acme.example",
        ] {
            assert_eq!(role_address(a), None, "{a}");
        }
    }

    #[test]
    fn automatic_signs_are_read() {
        let with =
            |h: &str| parse(format!("From: a@b.example\n{h}\nSubject: x\n\nhi\n").as_bytes());
        assert!(automatic_sign(&with("Return-Path: <>")).is_some());
        assert!(
            automatic_sign(&with("X-Other: 1"))
                .unwrap()
                .contains("no return path")
        );
        assert!(
            automatic_sign(&with(
                "Return-Path: <a@b.example>\nX-Auto-Response-Suppress: All"
            ))
            .is_some()
        );
        assert!(
            automatic_sign(&with(
                "Return-Path: <a@b.example>\nList-Id: <x.lists.example>"
            ))
            .is_some()
        );
        assert_eq!(automatic_sign(&with("Return-Path: <a@b.example>")), None);
    }
}
