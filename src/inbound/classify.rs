//! Stage 2: what kind of mail this is. Only a person's mail may comment or command; the others
//! are recorded and never answered. The classifier says why it decided (which header, which
//! phrase), for `ingest --dry-run` and the logs.
//!
//! Order: deskmail's own mail; delivery reports known by their headers or structure (a bounce
//! often also says `Auto-Submitted`); then, from the opening of the text
//! ([`notice::Opening`]), a mail service's JSON notification and a delivery failure written
//! as text by an automatic sender (a gateway, a virus scanner, a carrier, a list server);
//! then auto-replies by their headers or subject; an absence notice that says so in its first
//! lines; mailing lists; else a person.
//!
//! The text tests read only a bounded opening of the text and only for mails the headers left
//! undecided; a failure phrase counts only in a mail whose sender is automatic
//! ([`automatic_sender`]), which no person's mail is.

use std::borrow::Cow;

use serde::Serialize;

use super::address::base_local_part;
use super::parse::{AUTO_HEADERS, Parsed, ReportRecipient, bare_address};

mod notice;
mod service;

use notice::Opening;

/// The kinds of mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    Person,
    AutoReply,
    Bounce,
    List,
    Own,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Person => "person",
            Class::AutoReply => "auto-reply",
            Class::Bounce => "bounce",
            Class::List => "list",
            Class::Own => "own",
        }
    }
}

/// What a bounce says about the mail it returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bounce {
    pub recipient: Option<String>,
    /// `5.1.1`; `5.0.0` or `4.0.0` when the report gives none.
    pub status: String,
    /// The mail will not arrive: a failed report, a 5.x.x status, or a server that says it gave
    /// up (qmail does, with a 4.x.x). False for a delay notice (the mail is still retried),
    /// which is only recorded.
    pub permanent: bool,
    pub diagnostic: String,
    /// The Message-ID of the returned mail, to link the bounce to the notification.
    pub original_message_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    pub class: Class,
    /// Why, in words: the header or phrase that decided.
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounce: Option<Bounce>,
}

/// What the classifier knows of deskmail itself.
#[derive(Debug, Clone)]
pub struct Own<'a> {
    /// The help desk's receiving address: the value of its loop header.
    pub address: &'a str,
    /// The domain of its Message-IDs.
    pub domain: &'a str,
}

fn decided(class: Class, reason: impl Into<String>) -> Classification {
    Classification {
        class,
        reason: reason.into(),
        bounce: None,
    }
}

/// Subjects of delivery failures, lower-case, as they start.
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliverable",
    "undelivered mail",
    "undelivered message",
    "delivery status notification",
    "delivery failure",
    "delivery has failed",
    "delivery notification",
    "mail delivery failed",
    "mail delivery failure",
    "mail delivery problem",
    "mail delivery warning",
    "mail could not be delivered",
    "message could not be delivered",
    "message delivery failure",
    "message delivery has failed",
    "permanent delivery failure",
    "mail not delivered",
    "failed mail",
    "non-delivery",
    "nondelivery",
    "mail system error",
    "there was an error sending your mail",
    "automatically rejected mail",
    "returned mail",
    "failure notice",
    "could not send message",
    "message not delivered",
    "delayed mail",
    "warning: could not send",
    "unzustellbar",
    "nicht zustellbar",
    "non remis",
    "non distribuable",
    "no se puede entregar",
    "non recapitabile",
    "onbestelbaar",
    "não entregue",
];

/// Local parts of the addresses mail systems send their failure notices from.
const DAEMON_LOCALS: &[&str] = &["mailer-daemon", "mailerdaemon", "mail-daemon", "mdaemon"];

/// Local parts of senders that take no answer: their mails are automatic.
const NO_REPLY_LOCALS: &[&str] = &[
    "no-reply",
    "noreply",
    "do-not-reply",
    "donotreply",
    "post_master",
];

/// Display names of mail systems' own senders, lower-case.
const DAEMON_NAMES: &[&str] = &[
    "mail delivery",
    "delivery subsystem",
    "delivery system",
    "mailer-daemon",
    "mailer daemon",
];

/// Comments of `Auto-Submitted` that mark a delivery report (`auto-generated (failure)` of
/// sendmail, `auto-replied (rejected)` of Dovecot's Sieve reject).
const AUTO_SUBMITTED_FAILURES: &[&str] = &["(failure)", "(rejected)", "(warning", "(delayed"];

/// Subjects of auto-replies and out-of-office notes, lower-case, as they start (after any
/// `Re:`), or in brackets.
const AUTO_SUBJECTS: [&str; 37] = [
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "automatic response",
    "out of office",
    "out of the office",
    "ooo:",
    "i am out of the office",
    "abwesenheitsnotiz",
    "automatische antwort",
    "abwesend:",
    "abwesenheit:",
    "absent:",
    "absence:",
    "réponse automatique",
    "reponse automatique",
    "absence du bureau",
    "respuesta automática",
    "respuesta automatica",
    "fuera de la oficina",
    "risposta automatica",
    "fuori ufficio",
    "automatisch antwoord",
    "afwezig:",
    "resposta automática",
    "resposta automatica",
    "ausente:",
    "autosvar",
    "automatisk svar",
    "frånvaro",
    "automatyczna odpowiedź",
    "poza biurem",
    "vacation reply",
    "on vacation",
    "urlaubsnotiz",
];

/// Strips reply and forward prefixes (`Re:`, `AW:`, `WG:`, `Fwd:`, `SV:`, `RE[2]:`, ...).
pub fn strip_prefixes(subject: &str) -> &str {
    let mut s = subject.trim_start();
    loop {
        // Only the first few characters can be a prefix.
        let head = &s[..s.floor_char_boundary(12)];
        let lower = head.to_ascii_lowercase();
        let mut found = None;
        for p in [
            "re", "aw", "wg", "fw", "fwd", "sv", "vs", "antw", "tr", "rv", "ref", "r", "odp", "ynt",
        ] {
            if let Some(rest) = lower.strip_prefix(p) {
                // `Re:`, `RE[2]:`, `Re :`
                let rest_trim = rest.trim_start_matches(|c: char| {
                    c == '[' || c == ']' || c.is_ascii_digit() || c == ' '
                });
                if rest_trim.starts_with(':') || rest_trim.starts_with('：') {
                    let consumed = lower.len() - rest_trim.len();
                    if consumed >= head.len() {
                        break;
                    }
                    let colon = rest_trim.chars().next().map_or(1, char::len_utf8);
                    found = Some(consumed + colon);
                    break;
                }
            }
        }
        match found {
            Some(n) => s = s[n..].trim_start(),
            None => return s,
        }
    }
}

fn starts_with_any(text: &str, list: &[&str]) -> Option<String> {
    let bracketed = text.strip_prefix('[').unwrap_or("\u{0}");
    list.iter()
        .find(|p| text.starts_with(**p) || bracketed.starts_with(**p))
        .map(|p| p.to_string())
}

/// Decides what kind of mail this is.
pub fn classify(mail: &Parsed, own: &Own<'_>) -> Classification {
    if let Some(c) = own_mail(mail, own) {
        return c;
    }
    let opening = Opening::of(&mail.text);
    if let Some(c) = bounce(mail, &opening) {
        return c;
    }
    let headers = automatic_headers(mail);
    if let Some(automatic) = automatic_sender(mail).or_else(|| headers.clone()) {
        if let Some(c) = service_notice(&opening, &automatic) {
            return c;
        }
        if let Some(c) = bounce_in_text(mail, &opening, &automatic) {
            return c;
        }
    }
    if let Some(reason) = headers {
        return decided(Class::AutoReply, reason);
    }
    if let Some(c) = auto_reply(mail) {
        return c;
    }
    if let Some(notice) = opening.absence_notice() {
        return decided(
            Class::AutoReply,
            format!("the mail opens with an absence notice: {notice}"),
        );
    }
    if let Some(c) = list(mail) {
        return c;
    }
    decided(Class::Person, "no sign of an automatic sender")
}

fn own_mail(mail: &Parsed, own: &Own<'_>) -> Option<Classification> {
    if let Some(v) = mail.header(crate::outbound::message::LOOP_HEADER)
        && bare_address(v) == own.address
    {
        return Some(decided(
            Class::Own,
            format!("{}: {v}", crate::outbound::message::LOOP_HEADER),
        ));
    }
    let id = mail.message_id.as_deref()?.to_ascii_lowercase();
    // deskmail's Message-IDs: <time.ref.unique@domain>.
    let (left, domain) = id.trim_matches(['<', '>']).rsplit_once('@')?;
    let shaped = left.split('.').count() == 3
        && left
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    (domain == own.domain && shaped && mail.header("auto-submitted").is_some())
        .then(|| decided(Class::Own, format!("Message-ID {id} is one of deskmail's")))
}

/// A delivery report known by its headers or structure.
fn bounce(mail: &Parsed, opening: &Opening<'_>) -> Option<Classification> {
    let reason = bounce_by_headers(mail)?;
    Some(Classification {
        class: Class::Bounce,
        reason,
        bounce: Some(bounce_details(mail, opening)),
    })
}

fn bounce_by_headers(mail: &Parsed) -> Option<String> {
    let subject = strip_prefixes(&mail.subject).to_lowercase();
    let from = from_address(mail);
    let from_local = base_local_part(&from);
    let from_name = mail
        .from
        .as_ref()
        .map(|f| f.name.to_lowercase())
        .unwrap_or_default();
    let return_path = mail.return_path.as_deref().unwrap_or_default();
    let auto_submitted = mail
        .header("auto-submitted")
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let reason = if mail.content_type == "multipart/report"
        && mail
            .report_type
            .as_deref()
            .is_none_or(|t| t.contains("delivery-status"))
    {
        "Content-Type: multipart/report; report-type=delivery-status".to_string()
    } else if mail.content_type == "message/delivery-status" {
        "Content-Type: message/delivery-status".to_string()
    } else if let Some(v) = mail.header("x-failed-recipients") {
        format!("X-Failed-Recipients: {v}")
    } else if DAEMON_LOCALS.contains(&from_local) {
        format!("From: {from}")
    } else if DAEMON_LOCALS.contains(&base_local_part(return_path)) {
        // The envelope sender of a mail system's own notices; a person's mail never has it.
        format!("Return-Path: <{return_path}>")
    } else if let Some(c) = AUTO_SUBMITTED_FAILURES
        .iter()
        .find(|c| auto_submitted.contains(**c))
    {
        format!("Auto-Submitted: {c}")
    } else if let Some(p) = starts_with_any(&subject, BOUNCE_SUBJECTS) {
        format!("subject starts with \"{p}\"")
    } else if (from_local == "postmaster" || from_name.starts_with("mail delivery"))
        && mail.return_path.as_deref() == Some("")
    {
        format!("From: {from} with an empty return path")
    } else {
        return None;
    };
    Some(reason)
}

/// The sender's address: From's, or the bare value of the header when it has no domain
/// (`From: mailer-daemon`) or none at all (`From: "Mail System" <>`: empty).
fn from_address(mail: &Parsed) -> Cow<'_, str> {
    match &mail.from {
        Some(f) => Cow::Borrowed(&f.address),
        None => Cow::Owned(mail.header("from").map(bare_address).unwrap_or_default()),
    }
}

/// Why the sender is a program rather than a person, if it is: an empty return path, a mail
/// system's or no-reply address, an empty From, a mail system's name. With the headers of an
/// automatic mail ([`automatic_headers`]) these are what no person's mail carries, so the text
/// tests may trust plain words in a mail that does.
fn automatic_sender(mail: &Parsed) -> Option<String> {
    let from = from_address(mail);
    let from_local = base_local_part(&from);
    let return_path = mail.return_path.as_deref();
    if return_path == Some("") {
        return Some("empty return path".into());
    }
    if let Some(rp) = return_path
        && DAEMON_LOCALS.contains(&base_local_part(rp))
    {
        return Some(format!("Return-Path: <{rp}>"));
    }
    if mail.header("from").is_some() && from.is_empty() {
        return Some("From: without an address".into());
    }
    if DAEMON_LOCALS.contains(&from_local) || NO_REPLY_LOCALS.contains(&from_local) {
        return Some(format!("From: {from}"));
    }
    if let Some(f) = mail.from.as_ref().filter(|f| !f.name.is_empty()) {
        let name = f.name.to_lowercase();
        if let Some(n) = DAEMON_NAMES.iter().find(|n| name.contains(**n)) {
            return Some(format!("From: \"{}\" ({n})", f.name));
        }
    }
    None
}

/// The headers that mark an automatic answer: `Auto-Submitted` (other than `no`), one of
/// [`AUTO_HEADERS`], `Precedence: bulk|junk|auto_reply`.
fn automatic_headers(mail: &Parsed) -> Option<String> {
    if let Some(v) = mail.header("auto-submitted")
        && !v.trim().eq_ignore_ascii_case("no")
    {
        return Some(format!("Auto-Submitted: {v}"));
    }
    for h in AUTO_HEADERS {
        if let Some(v) = mail.header(h) {
            return Some(format!("{h}: {v}"));
        }
    }
    for h in ["precedence", "x-precedence"] {
        if let Some(v) = mail.header(h) {
            let v = v.trim().to_ascii_lowercase();
            if ["bulk", "junk", "auto_reply", "auto-reply"].contains(&v.as_str()) {
                return Some(format!("{h}: {v}"));
            }
        }
    }
    None
}

/// A mail service's JSON notification (Amazon SES): a bounce, or an automatic mail for any
/// other event (a complaint, a delivery notice).
fn service_notice(opening: &Opening<'_>, automatic: &str) -> Option<Classification> {
    if !opening.opens_json() {
        return None;
    }
    let (event, notice) = service::notification(opening.text().0)?;
    let reason = format!("a mail service's JSON notification ({event}; {automatic})");
    Some(match notice {
        service::Notice::Bounce(b) => Classification {
            class: Class::Bounce,
            reason,
            bounce: Some(b),
        },
        service::Notice::Other => decided(Class::AutoReply, reason),
    })
}

/// A delivery failure that an automatic sender wrote as text: a gateway's, a virus scanner's,
/// a carrier's, a list server's.
fn bounce_in_text(mail: &Parsed, opening: &Opening<'_>, automatic: &str) -> Option<Classification> {
    let phrase = opening.bounce_phrase()?;
    Some(Classification {
        class: Class::Bounce,
        reason: format!("the text opens with \"{phrase}\" ({automatic})"),
        bounce: Some(bounce_details(mail, opening)),
    })
}

/// The failed recipient, the status and the returned mail, from the report or the text.
fn bounce_details(mail: &Parsed, opening: &Opening<'_>) -> Bounce {
    let (text, _) = opening.text();
    let report = mail.report.clone().unwrap_or_default();
    let first: Option<&ReportRecipient> = report
        .recipients
        .iter()
        .find(|r| r.action == "failed")
        .or_else(|| report.recipients.first());
    // An X.400 (`/S=anna/O=acme/`) or local (`anna@mailhost`) recipient of a report is no
    // address deskmail wrote to: the header or the text may name it better.
    let recipient = first
        .map(|r| r.address.clone())
        .filter(|a| plausible_address(a))
        .or_else(|| {
            mail.header("x-failed-recipients")
                .and_then(|v| v.split(',').next())
                .map(bare_address)
        })
        .or_else(|| address_in_text(text));
    let status = first
        .map(|r| r.status.clone())
        .filter(|s| is_status(s))
        .or_else(|| status_in_text(text));
    let permanent = lasting(
        first.map(|r| r.action.as_str()),
        status.as_deref(),
        text,
        &mail.subject,
    );
    let status = status.unwrap_or_else(|| if permanent { "5.0.0" } else { "4.0.0" }.to_string());
    let mut original = report.original_message_id.clone();
    if original.is_none() {
        // A bounce written as text (Exim, qmail) carries a copy of the mail below its note.
        let mut r = super::parse::Report::default();
        let copy = &mail.text[..mail.text.floor_char_boundary(RETURNED_HEADERS_BYTES)];
        super::parse::read_original_headers(copy, &mut r);
        original = r.original_message_id;
    }
    Bounce {
        recipient,
        permanent,
        status,
        diagnostic: first.map(|r| r.diagnostic.clone()).unwrap_or_default(),
        original_message_id: original,
    }
}

/// How far into a bounce's text the copy of the returned mail's headers is looked for.
const RETURNED_HEADERS_BYTES: usize = 64 * 1024;

/// Whether a bounce is final: the report's action says so (`failed`, `delayed`); else a 5.x.x
/// status; else the text's words (qmail's "permanent error; I've given up" after a 4.x.x, a
/// warning's "still being retried"); else a 4.x.x status is a delay; else final unless the
/// subject says "delay".
fn lasting(action: Option<&str>, status: Option<&str>, text: &str, subject: &str) -> bool {
    match action {
        Some("failed") => return true,
        Some("delayed") => return false,
        _ => {}
    }
    if status.is_some_and(|s| s.starts_with('5')) {
        return true;
    }
    if let Some(permanent) = notice::says_permanent(text) {
        return permanent;
    }
    if status.is_some_and(|s| s.starts_with('4')) {
        return false;
    }
    !subject.to_lowercase().contains("delay")
}

/// Lines of a bounce's text that quote the returned mail's headers (`To:`, `From:`,
/// `Subject:` ...) or name its sender (sendmail's "from anna@..."), lower-case, as they start:
/// their addresses are not the failed recipient.
const HEADER_LINES: &[&str] = &[
    "from:",
    "to:",
    "cc:",
    "sender:",
    "reply-to:",
    "return-path:",
    "message-id:",
    "in-reply-to:",
    "references:",
    "subject:",
    "date:",
    "received:",
    "mail from:",
    "from ",
    "original sender:",
    "envelope-from",
];

/// The first address in a bounce written as text that is neither a mail system's own nor one
/// of the returned mail's header lines. Exchange writes it `SMTP:anna@...` or
/// `dda:smtp=anna@...`.
fn address_in_text(text: &str) -> Option<String> {
    text.lines()
        .filter(|line| {
            let lower = line.trim_start().to_ascii_lowercase();
            !HEADER_LINES.iter().any(|h| lower.starts_with(h))
        })
        .flat_map(|line| {
            line.split(|c: char| {
                c.is_whitespace()
                    || matches!(c, '<' | '>' | '(' | ')' | '"' | ',' | ';' | '[' | ']')
            })
        })
        .map(|w| {
            let w = w.trim_matches(|c: char| c == '.' || c == ':' || c == '\'');
            let lower = w.to_ascii_lowercase();
            match lower.rfind("smtp=").or_else(|| lower.rfind("smtp:")) {
                Some(i) => &w[i + 5..],
                None => w,
            }
        })
        .find(|w| {
            plausible_address(w)
                && !["postmaster", "mailer-daemon", "mail-daemon"]
                    .contains(&base_local_part(&w.to_ascii_lowercase()))
        })
        .map(str::to_lowercase)
}

/// An address mail can be sent to: `local@domain.tld`, without spaces or X.400 slashes.
fn plausible_address(a: &str) -> bool {
    let Some((local, domain)) = a.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.contains('@')
        && !a.contains(|c: char| c.is_whitespace() || c == '/')
}

fn is_status(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The first enhanced status code (`5.1.1`) in a bounce's text, standing alone or after `#`,
/// `-`, `(`, `<`, `[` or `:`: a version number (`v4.6.1`) is none.
fn status_in_text(text: &str) -> Option<String> {
    let mut before = ' ';
    let mut start: Option<(usize, char)> = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        if c.is_ascii_digit() || c == '.' {
            start.get_or_insert((i, before));
        } else if let Some((s, b)) = start.take() {
            let w = text[s..i].trim_matches('.');
            let alone = b.is_whitespace() || matches!(b, '#' | '-' | '(' | '<' | '[' | ':');
            if alone && is_status(w) && !w.starts_with('2') {
                return Some(w.to_string());
            }
        }
        before = c;
    }
    None
}

/// An auto-reply known by its structure or subject (its headers were read before).
fn auto_reply(mail: &Parsed) -> Option<Classification> {
    if mail.content_type == "multipart/report"
        && mail
            .report_type
            .as_deref()
            .is_some_and(|t| t.contains("feedback-report"))
    {
        // An abuse or DMARC failure report (ARF, RFC 5965): it reports on a mail, returns none.
        return Some(decided(
            Class::AutoReply,
            "a feedback report (multipart/report; report-type=feedback-report)",
        ));
    }
    if mail.content_type == "multipart/report"
        && mail
            .report_type
            .as_deref()
            .is_some_and(|t| t.contains("disposition-notification"))
    {
        return Some(decided(
            Class::AutoReply,
            "a read receipt (multipart/report; report-type=disposition-notification)",
        ));
    }
    let subject = strip_prefixes(&mail.subject).to_lowercase();
    if let Some(p) = starts_with_any(&subject, &AUTO_SUBJECTS) {
        return Some(decided(
            Class::AutoReply,
            format!("subject starts with \"{p}\""),
        ));
    }
    let whole = mail.subject.to_lowercase();
    for p in ["(automatic response)", "(auto-reply)", "(out of office)"] {
        if whole.contains(p) {
            return Some(decided(Class::AutoReply, format!("subject says \"{p}\"")));
        }
    }
    None
}

fn list(mail: &Parsed) -> Option<Classification> {
    for h in ["list-id", "list-post", "mailing-list", "list-unsubscribe"] {
        if let Some(v) = mail.header(h) {
            return Some(decided(Class::List, format!("{h}: {v}")));
        }
    }
    if let Some(v) = mail.header("precedence")
        && v.trim().eq_ignore_ascii_case("list")
    {
        return Some(decided(Class::List, "Precedence: list"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::parse;

    fn class_of(raw: &str) -> Classification {
        classify(
            &parse(raw.as_bytes()),
            &Own {
                address: "support@helpdesk.example",
                domain: "helpdesk.example",
            },
        )
    }

    #[test]
    fn prefixes_are_stripped() {
        assert_eq!(strip_prefixes("Re: AW: WG: Fwd: x"), "x");
        assert_eq!(strip_prefixes("RE[2]: x"), "x");
        assert_eq!(strip_prefixes("SV:x"), "x");
        assert_eq!(strip_prefixes("Regarding x"), "Regarding x");
    }

    #[test]
    fn suppress_header_alone_is_a_person() {
        let c =
            class_of("From: a@b.example\nX-Auto-Response-Suppress: All\nSubject: Re: x\n\nhi\n");
        assert_eq!(c.class, Class::Person, "{c:?}");
    }

    #[test]
    fn vacation_subject_and_headers_are_auto_replies() {
        let c = class_of("From: a@b.example\nSubject: Automatische Antwort: [SUP-1] x\n\nweg\n");
        assert_eq!(c.class, Class::AutoReply);
        assert!(c.reason.contains("automatische antwort"), "{}", c.reason);
        let c = class_of(
            "From: a@b.example\nAuto-Submitted: auto-replied (vacation)\nSubject: x\n\nweg\n",
        );
        assert_eq!(c.class, Class::AutoReply);
    }

    #[test]
    fn own_mail_is_recognised_by_its_loop_header() {
        let c = class_of(
            "From: support@helpdesk.example\nX-Deskmail-Loop: support@helpdesk.example\nSubject: x\n\nhi\n",
        );
        assert_eq!(c.class, Class::Own);
    }

    #[test]
    fn a_bounce_subject_never_passes_as_a_person() {
        let c = class_of(
            "From: postmaster@acme.example\nSubject: Undeliverable: [SUP-20261122-0001] x\n\n\
             Delivery has failed to these recipients: anna@acme.example 550 5.1.1 unknown\n",
        );
        assert_eq!(c.class, Class::Bounce);
        let b = c.bounce.unwrap();
        assert_eq!(b.status, "5.1.1");
        assert!(b.permanent);
    }

    /// A reply to ticket SUP-20261122-0001 from anna, as her client writes it: `Re:` subject,
    /// a reply address, her own return path, no automatic header.
    fn reply(body: &str) -> String {
        format!(
            "Return-Path: <anna@acme.example>\nFrom: Anna Berger <anna@acme.example>\n\
             To: Help Desk <support+r-sup-1@helpdesk.example>\n\
             Subject: Re: [SUP-20261122-0001] Printer on fire\n\
             Message-ID: <a1@acme.example>\nIn-Reply-To: <n1@helpdesk.example>\n\
             Content-Type: text/plain; charset=utf-8\n\n{body}"
        )
    }

    #[test]
    fn a_gateway_notice_written_as_text_is_a_bounce() {
        let c = class_of(
            "Return-Path: <>\nFrom: Mail Gateway <gw@acme.example>\nSubject: Notice\n\n\
             ****** Message from InterScan Messaging Security Suite ******\n\n\
             Sent <<< RCPT TO:<anna@acme.example>\nReceived >>> 550 5.1.1 unknown user.\n\n\
             Unable to deliver message to <anna@acme.example>.\n\n\
             --- Original message follows.\n\nMessage-ID: <n1@helpdesk.example>\nSubject: x\n\n",
        );
        assert_eq!(c.class, Class::Bounce, "{c:?}");
        assert!(c.reason.contains("empty return path"), "{}", c.reason);
        let b = c.bounce.unwrap();
        assert_eq!(b.recipient.as_deref(), Some("anna@acme.example"));
        assert_eq!(b.status, "5.1.1");
        assert!(b.permanent);
        assert_eq!(
            b.original_message_id.as_deref(),
            Some("<n1@helpdesk.example>")
        );
    }

    #[test]
    fn a_carrier_notice_from_a_no_reply_address_is_a_bounce() {
        let c = class_of(
            "From: no-reply@ezweb.example\nSubject: Mail\n\n\
             Your mail sent on: Thu, 29 Apr 2013 00:00:00 +0900\n\
             \x20    Could not be delivered to: <kiji@ezweb.example>\n\
             \x20    As their mailbox is full.\n",
        );
        assert_eq!(c.class, Class::Bounce, "{c:?}");
        assert_eq!(
            c.bounce.unwrap().recipient.as_deref(),
            Some("kiji@ezweb.example")
        );
    }

    #[test]
    fn qmail_giving_up_after_a_4xx_is_permanent_and_a_warning_is_a_delay() {
        let c = class_of(
            "From: MAILER-DAEMON@mx.example\nSubject: failure notice\n\n\
             Hi. This is the qmail-send program at mx.example.\n\
             This is a permanent error; I've given up. Sorry it didn't work out.\n\n\
             <anna@acme.example>:\nSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n",
        );
        let b = c.bounce.unwrap();
        assert_eq!(b.status, "4.4.1");
        assert!(b.permanent);
        let c = class_of(
            "From: Mail Delivery System <Mailer-Daemon@mx.example>\n\
             Subject: Warning: message 1abc delayed 24 hours\n\n\
             This message was created automatically by mail delivery software.\n\
             A message that you sent has not yet been delivered to one or more of its\n\
             recipients after more than 24 hours on the queue on mx.example.\n\n  anna@acme.example\n",
        );
        let b = c.bounce.unwrap();
        assert!(!b.permanent, "{b:?}");
        assert_eq!(b.status, "4.0.0");
    }

    #[test]
    fn a_version_number_is_no_status() {
        assert_eq!(status_in_text("Lotus SMTP MTA v4.6.1 said"), None);
        assert_eq!(
            status_in_text("550-5.7.1 blocked").as_deref(),
            Some("5.7.1")
        );
        assert_eq!(status_in_text("(#5.5.0)").as_deref(), Some("5.5.0"));
    }

    #[test]
    fn exchange_addresses_and_quoted_headers_are_read_right() {
        assert_eq!(
            address_in_text("  To: bob@x.example\n  dda:SMTP=anna@acme.example on Thu\n")
                .as_deref(),
            Some("anna@acme.example")
        );
        assert_eq!(
            address_in_text("Recipient: [SMTP:Anna@Acme.example]\n").as_deref(),
            Some("anna@acme.example")
        );
    }

    const SES_BOUNCE: &str = r#"{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bouncedRecipients":[{"emailAddress":"anna@acme.example","action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}]},"mail":{"source":"support@helpdesk.example"}}"#;

    #[test]
    fn a_mail_services_json_notification_is_read() {
        let c = class_of(&format!(
            "From: SES <no-reply@sns.amazonaws.com>\nSubject: AWS Notification Message\n\n{SES_BOUNCE}\n"
        ));
        assert_eq!(c.class, Class::Bounce, "{c:?}");
        let b = c.bounce.unwrap();
        assert_eq!(b.recipient.as_deref(), Some("anna@acme.example"));
        assert_eq!(b.status, "5.1.1");
        assert!(b.permanent);
        let c = class_of(
            "From: SES <no-reply@sns.amazonaws.com>\nSubject: AWS Notification Message\n\n\
             {\"notificationType\":\"Complaint\",\"complaint\":{}}\n",
        );
        assert_eq!(c.class, Class::AutoReply, "{c:?}");
        // The same JSON in a person's mail (a developer asking about it) is theirs.
        let c = class_of(&reply(&format!("{SES_BOUNCE}\n")));
        assert_eq!(c.class, Class::Person, "{c:?}");
    }

    #[test]
    fn a_feedback_report_is_an_automatic_mail() {
        let c = class_of(
            "From: <abuse@126.example>\nSubject: DMARC test\nContent-Type: multipart/report; \
             report-type=\"feedback-report\"; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\n\
             This is an authentication-failure report.\n--b\nContent-Type: message/feedback-report\n\n\
             Feedback-Type: auth-failure\n--b--\n",
        );
        assert_eq!(c.class, Class::AutoReply, "{c:?}");
    }

    #[test]
    fn a_person_who_pastes_a_delivery_error_stays_a_person() {
        for body in [
            "Delivery has failed to these recipients or distribution lists:\n\
             ben@acme.example\n550 5.1.1 User unknown\n\nWhat does this mean?\n",
            "Hi, your notification could not be delivered to my colleague ben@acme.example.\n\
             550 5.1.1 <ben@acme.example>: Recipient address rejected\nAnna\n",
            "Undeliverable: the printer's scan-to-mail says 'Unable to deliver message to \
             scans@acme.example'. This is a permanent error for us.\n",
        ] {
            let c = class_of(&reply(body));
            assert_eq!(c.class, Class::Person, "{body}: {c:?}");
        }
    }

    #[test]
    fn a_german_absence_notice_without_auto_headers_is_an_auto_reply() {
        let c = class_of(&reply(
            "Vielen Dank für Ihre Nachricht.\n\n\
             Ich bin bis einschließlich 5. Dezember nicht im Büro und habe keinen Zugriff auf \
             meine E-Mails.\nIn dringenden Fällen wenden Sie sich bitte an Ben Fischer \
             (ben@acme.example, +49 30 1234-56).\n\nMit freundlichen Grüßen\nAnna Berger\n",
        ));
        assert_eq!(c.class, Class::AutoReply, "{c:?}");
        assert!(c.reason.contains("nicht im büro"), "{}", c.reason);
        for body in [
            "Ich bin derzeit nicht erreichbar und ab dem 8.12. wieder im Büro. \
             Ihre Nachricht wird nicht weitergeleitet.\n",
            "Guten Tag,\n\nvom 1. bis 12. Dezember bin ich im Urlaub. Ihre E-Mail wird nicht \
             weitergeleitet; in dringenden Fällen erreichen Sie meine Vertretung unter \
             it@acme.example.\n",
        ] {
            let c = class_of(&reply(body));
            assert_eq!(c.class, Class::AutoReply, "{body}: {c:?}");
        }
    }

    #[test]
    fn absence_notices_in_many_languages_are_auto_replies() {
        for body in [
            "Thank you for your email. I am currently out of the office with limited access \
             to email and will return on 5 December.\n\nBest regards\nAnna\n",
            "I am on annual leave until Monday 8 December. For urgent matters please contact \
             helpdesk@acme.example.\n",
            "Bonjour,\n\nJe suis absente du bureau jusqu'au 5 décembre. En cas d'urgence, \
             merci de contacter Paul Martin.\n",
            "Estoy fuera de la oficina hasta el 5 de diciembre. Para asuntos urgentes, \
             contacte con soporte@acme.example.\n",
            "Sono fuori ufficio fino al 5 dicembre con accesso limitato alla posta. Per \
             questioni urgenti contattare Marco.\n",
            "Ik ben afwezig tot en met 5 december. Voor dringende zaken kunt u contact \
             opnemen met Jan.\n",
            "Estou fora do escritório até 5 de dezembro. Para assuntos urgentes, contatar \
             a Maria.\n",
            "Jestem na urlopie do dnia 5 grudnia. W sprawach pilnych proszę o kontakt z Anną.\n",
            "Jag är på semester till och med den 5 december. Vid brådskande ärenden, kontakta \
             Erik.\n",
            "Jeg er på ferie til og med 5. december. Haster det, så kontakt Lars.\n",
            "Jeg er fraværende til og med 5. desember og har begrenset tilgang til e-post. \
             Haster det, kontakt Kari.\n",
            "Olen lomalla 5.12. asti. Kiireellisissä asioissa ota yhteyttä Mattiin.\n",
            "Я в отпуске до 5 декабря. По срочным вопросам обращайтесь к Ивану.\n",
            "Я у відпустці до 5 грудня. З термінових питань звертайтеся до Олени.\n",
            "Jsem na dovolené do 5. prosince. V naléhavých případech kontaktujte Petra.\n",
            "5 Aralık tarihine kadar izindeyim. Acil durumlarda lütfen Ayşe ile iletişime geçin.\n",
            "現在、休暇中です。12月5日まで不在にしております。お急ぎの場合は田中までご連絡ください。\n",
            "我正在休假，12月5日之前不在办公室。如有紧急事宜，请联系王先生。\n",
            "This is an automatic reply. I have received your message.\n",
            "Dies ist eine automatische Antwort. Ich bin bis 5.12. nicht erreichbar.\n",
        ] {
            let c = class_of(&reply(body));
            assert_eq!(c.class, Class::AutoReply, "{body}: {c:?}");
            assert!(c.reason.contains("absence notice"), "{}", c.reason);
        }
    }

    #[test]
    fn people_who_mention_an_absence_stay_persons() {
        for body in [
            "Thanks — I'll be out of office next week, please close it.\n",
            "I'll be out of office next week, so no hurry.\n\nAnna\n",
            "I'm on vacation from tomorrow until 5 December. Ben will test the printer; \
             please contact him if you need anything.\n",
            "I am out of the office today but the printer is still on fire, please call me \
             at +49 30 1234-56.\n",
            "I was on holiday until yesterday, sorry for the late reply. The printer works \
             again, thanks!\n",
            "Back from leave: the issue is still there after the update.\n",
            "Hi,\n\nmy colleague is on parental leave until March, so please send further \
             updates to me.\n\nAnna\n",
            "I am away until Monday. Can you keep the ticket open until then?\n",
            "Ich bin nächste Woche im Urlaub, bitte schließen Sie das Ticket.\n",
            "Ich bin bis Freitag nicht im Büro, das Problem ist aber dringend: der Drucker \
             brennt noch. Bitte rufen Sie Ben an.\n\nWas soll ich tun?\n",
            "Je suis en congé demain, merci de fermer le ticket.\n",
            "Estoy de vacaciones hasta el lunes, ¿pueden llamarme después?\n",
            "Ik ben afwezig tot maandag; het ticket mag gesloten worden.\n",
            "Vielen Dank für die schnelle Hilfe! Ich bin ab morgen im Urlaub und melde mich \
             danach.\n",
            "Auto-replies from your system reach me even on holiday; I am away until Friday \
             and will answer then.\n",
        ] {
            let c = class_of(&reply(body));
            assert_eq!(c.class, Class::Person, "{body}: {c:?}");
        }
    }

    #[test]
    fn a_long_mail_that_opens_with_an_absence_is_a_persons() {
        let body = format!(
            "I am out of the office until 5 December, for urgent matters contact Ben.\n\n{}",
            "Here is the log you asked for:\nline of log output\n".repeat(60)
        );
        let c = class_of(&reply(&body));
        assert_eq!(c.class, Class::Person, "{c:?}");
    }
}
