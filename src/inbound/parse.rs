//! Stage 1: raw RFC 5322 bytes to the parts deskmail reads, with mail-parser. Encoded words,
//! charsets, quoted-printable and base64 are mail-parser's; this stage picks the text to read
//! (the text/plain body, or the HTML one made readable), the attachments, and the fields of a
//! delivery report.
//!
//! Parsing never fails: a mail that is not one gives an empty value and a warning.

use jiff::Timestamp;
use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};

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
    pub content: Vec<u8>,
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
    pub body_source: BodySource,
    pub attachments: Vec<Attachment>,
    pub report: Option<Report>,
    pub size: usize,
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
/// (`classify::AUTO_HEADERS`); `Parsed::header` finds only these.
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
    let mut p = Parsed {
        size: raw.len(),
        ..Default::default()
    };
    // mail-parser 0.11 panics on some malformed multiparts (found by fuzzing, see
    // fixtures/fuzz/): such a mail is not read, and the caller keeps it as failed.
    let parsed = std::panic::catch_unwind(|| MessageParser::default().parse(raw));
    let msg = match parsed {
        Ok(Some(msg)) => msg,
        Ok(None) => {
            p.warnings
                .push("not a mail: no header could be read".into());
            return p;
        }
        Err(_) => {
            p.warnings
                .push("the mail could not be parsed (the MIME parser failed on it)".into());
            return p;
        }
    };
    if msg.headers().is_empty() {
        p.warnings.push("the mail has no headers".into());
    }
    p.headers = msg
        .headers_raw()
        .filter(|(n, _)| {
            KEPT_HEADERS
                .iter()
                .chain(&super::classify::AUTO_HEADERS)
                .chain(&ENVELOPE_TO)
                .any(|k| k.eq_ignore_ascii_case(n))
        })
        .map(|(n, v)| (n.to_ascii_lowercase(), unfold(v)))
        .collect();
    p.message_id = msg.message_id().map(|id| format!("<{}>", id.trim()));
    p.in_reply_to = ids(msg.in_reply_to());
    p.references = ids(msg.references());
    p.subject = msg.subject().unwrap_or_default().trim().to_string();
    p.from = msg.from().and_then(|a| mailboxes(a).into_iter().next());
    p.sender = msg.sender().and_then(|a| mailboxes(a).into_iter().next());
    p.reply_to = msg.reply_to().map(mailboxes).unwrap_or_default();
    p.to = msg.all_to().flat_map(mailboxes).collect();
    p.cc = msg.all_cc().flat_map(mailboxes).collect();
    let mut envelope_to: Vec<String> = Vec::new();
    for name in ENVELOPE_TO {
        for v in p.header_all(name) {
            let a = bare_address(v);
            if !a.is_empty() && !envelope_to.contains(&a) {
                envelope_to.push(a);
            }
        }
    }
    p.envelope_to = envelope_to;
    p.return_path = p.header("return-path").map(bare_address);
    p.date = msg
        .date()
        .and_then(|d| Timestamp::from_second(d.to_timestamp()).ok());
    if let Some(ct) = msg.content_type() {
        p.content_type = format!(
            "{}/{}",
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or_default().to_ascii_lowercase()
        );
        p.report_type = ct.attribute("report-type").map(|r| r.to_ascii_lowercase());
    }
    body(&msg, &mut p);
    attachments(&msg, &mut p);
    if p.content_type == "multipart/report" {
        p.report = Some(report(&msg));
    }
    p
}

/// Folded header lines joined (CRLF followed by white space is one space).
fn unfold(v: &str) -> String {
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

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    let list: Vec<String> = match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    };
    list.into_iter()
        .map(|id| format!("<{}>", id.trim().trim_matches(['<', '>'])))
        .filter(|id| id.len() > 2)
        .collect()
}

fn mailboxes(a: &Address<'_>) -> Vec<Mailbox> {
    a.iter()
        .filter_map(|addr| {
            let address = addr.address()?.trim().to_lowercase();
            (!address.is_empty()).then(|| Mailbox {
                name: addr.name().unwrap_or_default().trim().to_string(),
                address,
            })
        })
        .collect()
}

/// The text to read: the text/plain parts, or else the HTML one with its quoted history cut
/// off and made readable.
fn body(msg: &Message<'_>, p: &mut Parsed) {
    let mut text = String::new();
    let mut html_only = None;
    for part in msg.text_bodies() {
        match &part.body {
            PartType::Text(t) => {
                if text.is_empty() {
                    text = t.to_string();
                } else {
                    text.push('\n');
                    text.push_str(t);
                }
            }
            PartType::Html(h) if html_only.is_none() => html_only = Some(h.to_string()),
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
    } else if let Some(h) = html_only.or_else(|| msg.body_html(0).map(|h| h.to_string())) {
        p.text = html::to_text(&h);
        p.body_source = BodySource::Html;
    }
}

fn attachments(msg: &Message<'_>, p: &mut Parsed) {
    for part in msg.attachments() {
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
            .map(str::to_string)
            .unwrap_or_else(|| default_name(&content_type, p.attachments.len()));
        p.attachments.push(Attachment {
            filename,
            content_type,
            content: part.contents().to_vec(),
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
