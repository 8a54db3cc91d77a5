//! Stage 1: raw RFC 5322 bytes to the parts deskmail reads, with mail-parser. Encoded words,
//! charsets, quoted-printable and base64 are mail-parser's; this stage picks the text to read
//! (the text/plain body, or the HTML one made readable), the attachments, and the fields of a
//! delivery report.
//!
//! Parsing never fails: a mail that is not one gives an empty value and a warning.

use bytes::Bytes;
use jiff::Timestamp;
use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};

use super::bounds::{self, MAX_ADDRESSES, MAX_IDS, MAX_SUBJECT_CHARS, TEXT_LIMIT, TEXT_LINES};
use super::html;

/// A name and an address, the address trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mailbox {
    pub name: String,
    pub address: String,
}

/// A file that came with the mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    /// Shared, not copied, by the comment that keeps it and the notifications that carry it.
    pub content: Bytes,
    /// Shown inside the HTML (`cid:`), such as a pasted screenshot.
    pub inline: bool,
}

/// Where the text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodySource {
    #[default]
    None,
    Text,
    /// An HTML-only mail, made readable (its quoted history cut off first).
    Html,
}

/// One recipient of a delivery status notification (RFC 3464).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportRecipient {
    pub address: String,
    /// `failed`, `delayed`, `delivered`, `relayed`, `expanded`.
    pub action: String,
    /// `5.1.1`, ...
    pub status: String,
    pub diagnostic: String,
}

/// What a delivery report (or a bounce written as text) says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    pub recipients: Vec<ReportRecipient>,
    /// The Message-ID of the mail it returns, from its `message/rfc822` or
    /// `text/rfc822-headers` part (or the copy in the text).
    pub original_message_id: Option<String>,
    pub original_subject: Option<String>,
}

/// A mail as the later stages read it.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// With angle brackets, as written.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub subject: String,
    pub from: Option<Mailbox>,
    pub sender: Option<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    /// Envelope recipients recorded by the receiving servers (Delivered-To, X-Original-To, ...).
    pub envelope_to: Vec<String>,
    /// `Some("")` for the null sender `<>` of bounces and many auto-replies.
    pub return_path: Option<String>,
    pub date: Option<Timestamp>,
    /// The headers the later stages read (see [`KEPT_HEADERS`]), names lower-cased, values
    /// unfolded (not decoded). Others (Received, DKIM-Signature, ...) are not copied.
    pub headers: Vec<(String, String)>,
    /// `multipart/report`, `text/plain`, ...
    pub content_type: String,
    /// The `report-type` parameter of a multipart/report.
    pub report_type: Option<String>,
    pub text: String,
    /// The text went on beyond what deskmail reads ([`bounds::TEXT_LIMIT`]): `text` holds its
    /// start; the stored mail has the rest.
    pub text_cut: bool,
    pub body_source: BodySource,
    pub attachments: Vec<Attachment>,
    pub report: Option<Report>,
    pub size: usize,
    /// Only the headers were read: the mail is over the size limit.
    pub headers_only: bool,
    pub warnings: Vec<String>,
}

impl Parsed {
    /// The first value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, top (newest) first.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every address the mail was sent to: To, Cc and the envelope recipients.
    pub fn recipients(&self) -> impl Iterator<Item = &str> {
        self.to
            .iter()
            .chain(&self.cc)
            .map(|m| m.address.as_str())
            .chain(self.envelope_to.iter().map(String::as_str))
    }
}

/// The headers classification and identification read, besides the automatic-answer headers
/// ([`AUTO_HEADERS`]); `Parsed::header` finds only these.
pub const KEPT_HEADERS: [&str; 21] = [
    "from",
    "sender",
    "to",
    "subject",
    "date",
    "message-id",
    "return-path",
    "auto-submitted",
    "precedence",
    "x-precedence",
    "x-auto-response-suppress",
    "x-failed-recipients",
    "list-id",
    "list-post",
    "list-unsubscribe",
    "mailing-list",
    "authentication-results",
    "x-deskmail-loop",
    "delivered-to",
    "x-original-to",
    "envelope-to",
];

/// Headers that name the envelope recipient, as receiving servers add them.
const ENVELOPE_TO: [&str; 5] = [
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "x-envelope-to",
    "x-rcpt-to",
];

/// Parses a mail. Never fails; what could not be read is said in `warnings`.
pub fn parse(raw: &[u8]) -> Parsed {
    guarded(raw, || {
        let readable = bounds::readable(raw);
        let mut p = read(&raw[..readable.len], false);
        p.warnings.extend(readable.warning);
        p
    })
}

/// Reads only a mail's headers: for a mail over the size limit, which is refused for its size
/// whatever it holds.
pub fn parse_headers(raw: &[u8]) -> Parsed {
    let mut p = guarded(raw, || {
        let header_end = header_block_len(raw);
        let readable = bounds::readable(&raw[..header_end]);
        let mut p = read(&raw[..readable.len], true);
        p.warnings.extend(readable.warning);
        p
    });
    p.headers_only = true;
    p
}

/// Runs a parse of `raw`. mail-parser 0.11 panics on some malformed multiparts (found by
/// fuzzing, see fixtures/fuzz/), and a panic of any part of parsing must not take the process
/// down: such a mail is not read (no header), and the caller keeps it as failed.
fn guarded(raw: &[u8], parse: impl FnOnce() -> Parsed) -> Parsed {
    let mut p =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse)).unwrap_or_else(|_| {
            let mut p = Parsed::default();
            p.warnings
                .push("the mail could not be parsed (the MIME parser failed on it)".into());
            p
        });
    p.size = raw.len();
    p
}

/// The length of a mail's header block, its blank line included (the whole mail if none).
pub fn header_block_len(raw: &[u8]) -> usize {
    if raw.starts_with(b"\n") {
        return 1;
    }
    if raw.starts_with(b"\r\n") {
        return 2;
    }
    let lf = memchr::memmem::find(raw, b"\n\n").map(|i| i + 2);
    let crlf = memchr::memmem::find(raw, b"\n\r\n").map(|i| i + 3);
    match (lf, crlf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(raw.len()),
    }
}

fn read(raw: &[u8], headers_only: bool) -> Parsed {
    let mut p = Parsed::default();
    let parser = MessageParser::default();
    let parsed = if headers_only {
        parser.parse_headers(raw)
    } else {
        parser.parse(raw)
    };
    let Some(mut msg) = parsed else {
        p.warnings.push("no header could be read".into());
        return p;
    };
    if msg.headers().is_empty() {
        p.warnings.push("the mail has no headers".into());
    }
    read_headers(&msg, &mut p);
    let header_block = &raw[..header_block_len(raw)];
    if std::str::from_utf8(header_block).is_err() {
        // Raw 8-bit headers: mail-parser skips what is not UTF-8; read them again, the lines
        // that are not UTF-8 taken as Windows-1252.
        p.warnings
            .push("8-bit header lines that are not UTF-8 read as Windows-1252".into());
        let fixed = super::eight_bit::to_utf8(bounds::cut_bytes(header_block, MAX_REREAD));
        if let Some(headers) = MessageParser::default().parse_headers(fixed.as_bytes()) {
            read_headers(&headers, &mut p);
        }
    }
    if let Some(ct) = msg.content_type() {
        p.content_type = format!(
            "{}/{}",
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or_default().to_ascii_lowercase()
        );
        p.report_type = ct.attribute("report-type").map(|r| r.to_ascii_lowercase());
    }
    if headers_only {
        return p;
    }
    body(&msg, &mut p);
    if p.content_type == "multipart/report" {
        p.report = Some(report(&msg));
    }
    attachments(&mut msg, &mut p);
    p
}

/// Headers whose mere presence marks an automatic answer: parsing keeps them, classification
/// reads them (defined here, the earlier stage, so that parsing imports nothing of
/// classification).
pub(crate) const AUTO_HEADERS: [&str; 8] = [
    "x-autoreply",
    "x-autorespond",
    "x-autoresponder",
    "x-autoreply-from",
    "x-mail-autoreply",
    "x-autogenerated",
    "x-fc-machinegenerated",
    "x-cron-env",
];

/// The header fields the later stages read.
fn read_headers(msg: &Message<'_>, p: &mut Parsed) {
    p.headers = msg
        .headers_raw()
        .filter(|(n, _)| {
            KEPT_HEADERS
                .iter()
                .chain(&AUTO_HEADERS)
                .chain(&ENVELOPE_TO)
                .any(|k| k.eq_ignore_ascii_case(n))
        })
        .map(|(n, v)| (n.to_ascii_lowercase(), unfold(v)))
        .collect();
    p.message_id = msg.message_id().map(|id| format!("<{}>", id.trim()));
    p.in_reply_to = ids(msg.in_reply_to());
    p.references = ids(msg.references());
    p.subject = bounds::cut_chars(msg.subject().unwrap_or_default().trim(), MAX_SUBJECT_CHARS);
    p.from = msg
        .from()
        .and_then(|a| mailboxes(a).into_iter().next())
        .or_else(|| msg.header_raw("From").and_then(mailbox_in));
    p.sender = msg
        .sender()
        .and_then(|a| mailboxes(a).into_iter().next())
        .or_else(|| msg.header_raw("Sender").and_then(mailbox_in));
    p.reply_to = msg.reply_to().map(mailboxes).unwrap_or_default();
    p.to = msg
        .all_to()
        .flat_map(mailboxes)
        .take(MAX_ADDRESSES)
        .collect();
    p.cc = msg
        .all_cc()
        .flat_map(mailboxes)
        .take(MAX_ADDRESSES)
        .collect();
    let mut envelope_to: Vec<String> = Vec::new();
    for name in ENVELOPE_TO {
        for v in p.header_all(name) {
            let a = bare_address(v);
            if !a.is_empty() && !envelope_to.contains(&a) && envelope_to.len() < MAX_ADDRESSES {
                envelope_to.push(a);
            }
        }
    }
    p.envelope_to = envelope_to;
    p.return_path = p.header("return-path").map(bare_address);
    p.date = msg
        .date()
        .and_then(|d| Timestamp::from_second(d.to_timestamp()).ok());
}

/// Bytes of a header block read again as 8-bit text, at most: the fields deskmail reads are at
/// the top.
const MAX_REREAD: usize = 256 * 1024;

/// Characters kept of a header value (an `Authentication-Results` header is a few hundred).
const MAX_HEADER_VALUE: usize = 16 * 1024;

/// Folded header lines joined (CRLF followed by white space is one space), at most
/// [`MAX_HEADER_VALUE`] bytes of them.
fn unfold(v: &str) -> String {
    let v = bounds::cut_text(v, MAX_HEADER_VALUE);
    if !v.contains('\n') {
        return v.trim().to_string();
    }
    let mut out = String::with_capacity(v.len());
    for (i, line) in v.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if i > 0 {
            out.push(' ');
            out.push_str(line.trim_start());
        } else {
            out.push_str(line);
        }
    }
    out.trim().to_string()
}

/// `Name <a@b>` or `<a@b>` or `a@b` → `a@b`, lower-cased; `<>` → empty.
pub fn bare_address(v: &str) -> String {
    let v = v.trim();
    let inner = match (v.rfind('<'), v.rfind('>')) {
        (Some(a), Some(b)) if a < b => &v[a + 1..b],
        _ => v,
    };
    inner.trim().trim_matches('"').to_lowercase()
}

/// The address in a header value the address parser could not read (a garbled name with an
/// unbalanced `(` or `"` before it): the last `<...@...>`, else the last word with an `@`.
fn mailbox_in(v: &str) -> Option<Mailbox> {
    let v = bounds::cut_text(v, MAX_HEADER_VALUE);
    let (name, address) = match (v.rfind('<'), v.rfind('>')) {
        (Some(a), Some(b)) if a < b && v[a..b].contains('@') => (&v[..a], &v[a + 1..b]),
        _ => ("", v.split_whitespace().rev().find(|w| w.contains('@'))?),
    };
    let address = address
        .trim()
        .trim_matches(['"', '\'', '(', ')'])
        .to_lowercase();
    (address.contains('@') && !address.contains(char::is_whitespace)).then(|| Mailbox {
        name: bounds::cut_chars(name.trim().trim_matches('"'), MAX_SUBJECT_CHARS),
        address,
    })
}

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    let list: Vec<String> = match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    };
    let mut ids: Vec<String> = list
        .into_iter()
        .map(|id| format!("<{}>", id.trim().trim_matches(['<', '>'])))
        .filter(|id| id.len() > 2 && id.len() <= 1000)
        .collect();
    if ids.len() > MAX_IDS {
        // The thread's root comes first, the mails answered last: both are kept.
        ids.drain(1..ids.len() + 1 - MAX_IDS);
    }
    ids
}

fn mailboxes(a: &Address<'_>) -> Vec<Mailbox> {
    a.iter()
        .filter_map(|addr| {
            let address = addr.address()?.trim().to_lowercase();
            (!address.is_empty() && address.len() <= 320).then(|| Mailbox {
                name: bounds::cut_chars(addr.name().unwrap_or_default().trim(), MAX_SUBJECT_CHARS),
                address,
            })
        })
        .take(MAX_ADDRESSES)
        .collect()
}

/// The text to read: the text/plain parts, or else the HTML one with its quoted history cut
/// off and made readable; at most [`TEXT_LIMIT`] bytes of it.
fn body(msg: &Message<'_>, p: &mut Parsed) {
    let mut text = String::new();
    let mut lines = 0;
    let mut html_only = None;
    for part in msg.text_bodies() {
        match &part.body {
            PartType::Text(t) => {
                if !text.is_empty() {
                    text.push('\n');
                }
                let room = TEXT_LIMIT.saturating_sub(text.len());
                let kept = bounds::cut_text_lines(t, room, TEXT_LINES.saturating_sub(lines));
                p.text_cut |= kept.len() < t.len();
                lines += memchr::memchr_iter(b'\n', kept.as_bytes()).count() + 1;
                text.push_str(kept);
            }
            PartType::Html(h) if html_only.is_none() => html_only = Some(h.as_ref()),
            _ => {}
        }
        if part.is_encoding_problem {
            p.warnings
                .push("a text part could not be decoded cleanly".into());
        }
    }
    if !text.is_empty() {
        // Line ends stay as they came: every stage reads lines with `str::lines`.
        p.text = text;
        p.body_source = BodySource::Text;
    } else if let Some(h) = html_only.or_else(|| match &msg.html_part(0)?.body {
        PartType::Html(h) => Some(h.as_ref()),
        _ => None,
    }) {
        let (text, cut) = html::to_text(h, TEXT_LIMIT, TEXT_LINES);
        p.text = text;
        p.text_cut |= cut;
        p.body_source = BodySource::Html;
    }
    if p.text_cut {
        p.warnings.push(format!(
            "the text goes on beyond the {} or {TEXT_LINES} lines deskmail reads of it",
            crate::outbound::compose::size_text(TEXT_LIMIT as u64)
        ));
    }
}

/// The files of the mail, their contents taken over from the parsed message (not copied where
/// it decoded them).
fn attachments(msg: &mut Message<'_>, p: &mut Parsed) {
    let ids = msg.attachments.clone();
    for id in ids {
        let Some(part) = msg.parts.get_mut(id as usize) else {
            continue;
        };
        let content_type = part
            .content_type()
            .map(|ct| {
                format!(
                    "{}/{}",
                    ct.ctype().to_ascii_lowercase(),
                    ct.subtype().unwrap_or("octet-stream").to_ascii_lowercase()
                )
            })
            .unwrap_or_else(|| "application/octet-stream".into());
        // The parts of a delivery report are read as the report, not kept as files.
        if p.content_type == "multipart/report"
            && (content_type.starts_with("message/") || content_type == "text/rfc822-headers")
        {
            continue;
        }
        let inline = matches!(part.body, PartType::InlineBinary(_))
            || part
                .content_disposition()
                .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"));
        let filename = part
            .attachment_name()
            .map(|n| bounds::cut_chars(n, 200))
            .unwrap_or_else(|| default_name(&content_type, p.attachments.len()));
        let content: Vec<u8> = match std::mem::take(&mut part.body) {
            PartType::Binary(b) | PartType::InlineBinary(b) => b.into_owned(),
            PartType::Text(t) | PartType::Html(t) => t.into_owned().into_bytes(),
            other => {
                part.body = other;
                part.contents().to_vec()
            }
        };
        p.attachments.push(Attachment {
            filename,
            content_type,
            content: content.into(),
            inline,
        });
    }
}

fn default_name(content_type: &str, n: usize) -> String {
    let ext = match content_type {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "application/pdf" => "pdf",
        "message/rfc822" => "eml",
        t if t.starts_with("text/") => "txt",
        _ => "bin",
    };
    format!("attachment-{}.{ext}", n + 1)
}

/// The fields of a multipart/report: recipients with action and status, and the returned
/// mail's Message-ID and subject.
fn report(msg: &Message<'_>) -> Report {
    let mut r = Report::default();
    for part in msg.parts.iter().skip(1) {
        let ct = part
            .content_type()
            .map(|ct| {
                format!(
                    "{}/{}",
                    ct.ctype().to_ascii_lowercase(),
                    ct.subtype().unwrap_or_default().to_ascii_lowercase()
                )
            })
            .unwrap_or_default();
        match ct.as_str() {
            "message/delivery-status" | "message/global-delivery-status" => {
                let text = String::from_utf8_lossy(part.contents());
                r.recipients.extend(delivery_status(&text));
            }
            "message/rfc822" | "message/global" if r.original_message_id.is_none() => {
                if let Some(inner) = part.message() {
                    r.original_message_id = inner.message_id().map(|m| format!("<{m}>"));
                    r.original_subject = inner.subject().map(str::to_string);
                } else {
                    let text = String::from_utf8_lossy(part.contents());
                    read_original_headers(&text, &mut r);
                }
            }
            "text/rfc822-headers" if r.original_message_id.is_none() => {
                let text = String::from_utf8_lossy(part.contents());
                read_original_headers(&text, &mut r);
            }
            _ => {}
        }
    }
    r
}

/// Per-recipient fields of a `message/delivery-status` body (RFC 3464): blocks separated by
/// blank lines, the first one about the reporting server.
pub fn delivery_status(text: &str) -> Vec<ReportRecipient> {
    let mut out = Vec::new();
    let unfolded = text
        .replace("\r\n", "\n")
        .replace("\n ", " ")
        .replace("\n\t", " ");
    for block in unfolded.split("\n\n") {
        let mut rec = ReportRecipient::default();
        for line in block.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "final-recipient" | "original-recipient" if rec.address.is_empty() => {
                    let addr = v.split_once(';').map(|(_, a)| a).unwrap_or(v);
                    rec.address = bare_address(addr);
                }
                "final-recipient" => {
                    let addr = v.split_once(';').map(|(_, a)| a).unwrap_or(v);
                    rec.address = bare_address(addr);
                }
                "action" => rec.action = v.to_ascii_lowercase(),
                "status" => {
                    rec.status = v.split_whitespace().next().unwrap_or_default().to_string()
                }
                "diagnostic-code" => {
                    rec.diagnostic = v.split_once(';').map(|(_, d)| d).unwrap_or(v).trim().into()
                }
                _ => {}
            }
        }
        if !rec.address.is_empty() || !rec.status.is_empty() {
            out.push(rec);
        }
    }
    out
}

/// Message-ID and Subject from a copy of a mail's headers.
pub fn read_original_headers(text: &str, r: &mut Report) {
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let k = k.trim();
        if k.eq_ignore_ascii_case("message-id") && r.original_message_id.is_none() {
            let v = v.trim();
            if v.contains('@') {
                r.original_message_id = Some(format!("<{}>", v.trim_matches(['<', '>', ' '])));
            }
        } else if k.eq_ignore_ascii_case("subject") && r.original_subject.is_none() {
            r.original_subject = Some(v.trim().to_string());
        }
        if line.is_empty() && r.original_message_id.is_some() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_headers_and_text_are_read() {
        let raw = b"From: =?utf-8?q?J=C3=BCrgen?= <Juergen@Acme.Example>\r\n\
To: \"Help\" <support+r-sup-1-abc@helpdesk.example>, ben@acme.example\r\n\
Cc: carl@globex.example\r\n\
Delivered-To: support+r-sup-1-abc@helpdesk.example\r\n\
Subject: =?iso-8859-1?q?AW=3A_Gr=FC=DFe?=\r\n\
Message-ID: <abc@acme.example>\r\n\
In-Reply-To: <n1@helpdesk.example>\r\n\
References: <root@helpdesk.example>\r\n <n1@helpdesk.example>\r\n\
X-Long: one\r\n two\r\n\
Content-Type: text/plain; charset=windows-1252\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Preis: 10 =80\r\n";
        let p = parse(raw);
        let from = p.from.clone().unwrap();
        assert_eq!(from.address, "juergen@acme.example");
        assert_eq!(from.name, "Jürgen");
        assert_eq!(p.subject, "AW: Grüße");
        assert_eq!(p.to.len(), 2);
        assert_eq!(p.cc[0].address, "carl@globex.example");
        assert_eq!(p.envelope_to, vec!["support+r-sup-1-abc@helpdesk.example"]);
        assert_eq!(p.message_id.as_deref(), Some("<abc@acme.example>"));
        assert_eq!(p.in_reply_to, vec!["<n1@helpdesk.example>"]);
        assert_eq!(
            p.references,
            vec!["<root@helpdesk.example>", "<n1@helpdesk.example>"]
        );
        assert_eq!(
            p.header("x-long"),
            None,
            "only the headers deskmail reads are kept"
        );
        assert_eq!(p.text.trim(), "Preis: 10 €");
        assert_eq!(p.body_source, BodySource::Text);
    }

    #[test]
    fn raw_8bit_headers_keep_their_address_and_text() {
        let raw = b"From: \xff\xfe Ann\xc3\x28a <anna@acme.example>\r\n\
To: support@helpdesk.example\r\n\
Subject: Gr\xfc\xdfe aus M\xfcnchen\r\n\
Message-ID: <8bit@acme.example>\r\n\r\nHallo\r\n";
        let p = parse(raw);
        assert_eq!(p.from.as_ref().unwrap().address, "anna@acme.example");
        assert_eq!(p.subject, "Grüße aus München");
        assert_eq!(p.text.trim(), "Hallo");
        let utf8 = "From: Jürgen <j@acme.example>\r\nSubject: Grüße\r\n\r\nx\r\n";
        let p = parse(utf8.as_bytes());
        assert_eq!(p.from.unwrap().name, "Jürgen");
        assert_eq!(p.subject, "Grüße");
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn a_mail_over_the_limit_is_read_for_its_headers_only() {
        let mut raw = b"From: anna@acme.example\r\nSubject: big\r\n\r\n".to_vec();
        raw.extend(std::iter::repeat_n(b'x', 100_000));
        let p = parse_headers(&raw);
        assert!(p.headers_only);
        assert_eq!(p.size, raw.len());
        assert_eq!(p.subject, "big");
        assert!(p.text.is_empty());
    }

    #[test]
    fn long_lists_are_capped() {
        let ids: Vec<String> = (0..200).map(|i| format!("<m{i}@x.example>")).collect();
        let raw = format!(
            "From: a@b.example\r\nSubject: {}\r\nReferences: {}\r\n\r\nx\r\n",
            "s".repeat(5000),
            ids.join(" ")
        );
        let p = parse(raw.as_bytes());
        assert_eq!(p.references.len(), MAX_IDS);
        assert_eq!(p.references[0], "<m0@x.example>", "the root stays");
        assert_eq!(
            p.references[MAX_IDS - 1],
            "<m199@x.example>",
            "the newest stays"
        );
        assert_eq!(p.subject.chars().count(), MAX_SUBJECT_CHARS + 1);
    }

    #[test]
    fn garbage_gives_warnings_not_errors() {
        let p = parse(b"");
        assert!(!p.warnings.is_empty());
        let p = parse(&[0xff, 0xfe, 0x00, 0x12, b'\n', b'\n', 0x80]);
        assert!(p.from.is_none());
    }

    #[test]
    fn a_mail_that_crashes_the_mime_parser_is_a_warning() {
        let raw = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/fuzz/mail-parser-invalid-part-id.eml"),
        )
        .unwrap();
        let p = parse(&raw);
        assert!(p.headers.is_empty());
        assert!(
            p.warnings[0].contains("could not be parsed"),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn delivery_status_fields_are_read() {
        let text = "Reporting-MTA: dns; mx.acme.example\n\nFinal-Recipient: rfc822; Anna@acme.example\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 <anna@acme.example>:\n Recipient address rejected\n";
        let r = delivery_status(text);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].address, "anna@acme.example");
        assert_eq!(r[0].action, "failed");
        assert_eq!(r[0].status, "5.1.1");
        assert!(r[0].diagnostic.contains("Recipient address rejected"));
    }
}
