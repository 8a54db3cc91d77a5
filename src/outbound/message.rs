//! One notification as RFC 5322 bytes: multipart/alternative text + HTML (mixed with its
//! attachments), threading headers, the signed Reply-To and the headers that keep auto-responders
//! quiet.

use std::time::{Duration, SystemTime};

use base64::Engine;
use jiff::Timestamp;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};

use super::render::Rendered;

/// The loop header every notification carries; the inbound side recognises its own mail by it.
pub const LOOP_HEADER: &str = "X-Deskmail-Loop";

/// An attachment to send along.
#[derive(Debug, Clone)]
pub struct MailAttachment {
    pub filename: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// Everything that goes into one notification.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from_name: String,
    pub from_address: String,
    pub to: String,
    pub to_name: String,
    pub reply_to: String,
    /// The ticket's subject; the mail's subject is `[REF] subject`.
    pub subject: String,
    pub reference: String,
    /// With angle brackets: `<...@helpdesk.example>`.
    pub message_id: String,
    pub in_reply_to: Option<String>,
    /// The thread's root first.
    pub references: Vec<String>,
    pub thread_index: String,
    pub date: Timestamp,
    pub body: Rendered,
    pub attachments: Vec<MailAttachment>,
}

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("invalid address {address}: {reason}")]
    Address { address: String, reason: String },
    #[error("cannot build the message: {0}")]
    Build(String),
}

/// One line, no control characters: user text can never start a header of its own.
pub fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn mailbox(name: &str, address: &str) -> Result<Mailbox, MessageError> {
    let parsed = address
        .parse()
        .map_err(|e: lettre::address::AddressError| MessageError::Address {
            address: address.to_string(),
            reason: e.to_string(),
        })?;
    let name = header_safe(name);
    Ok(Mailbox::new((!name.is_empty()).then_some(name), parsed))
}

fn raw(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), header_safe(&value))
}

/// The subject of every mail on a ticket: `[REF] subject`.
pub fn subject_line(reference: &str, subject: &str) -> String {
    header_safe(&format!("[{reference}] {subject}"))
}

/// Builds the message's bytes.
pub fn build(mail: &Mail) -> Result<Vec<u8>, MessageError> {
    let date =
        SystemTime::UNIX_EPOCH + Duration::from_millis(mail.date.as_millisecond().max(0) as u64);
    let mut b = lettre::Message::builder()
        .from(mailbox(&mail.from_name, &mail.from_address)?)
        .to(mailbox(&mail.to_name, &mail.to)?)
        .reply_to(mailbox(&mail.from_name, &mail.reply_to)?)
        .subject(subject_line(&mail.reference, &mail.subject))
        .message_id(Some(mail.message_id.clone()))
        .date(date)
        .raw_header(raw("Auto-Submitted", "auto-generated".into()))
        .raw_header(raw("X-Auto-Response-Suppress", "All".into()))
        .raw_header(raw(LOOP_HEADER, mail.from_address.clone()))
        .raw_header(raw("X-Deskmail-Ticket", mail.reference.clone()))
        .raw_header(raw("Thread-Topic", mail.subject.clone()))
        .raw_header(raw("Thread-Index", mail.thread_index.clone()));
    if let Some(parent) = &mail.in_reply_to {
        b = b.in_reply_to(parent.clone());
    }
    if !mail.references.is_empty() {
        b = b.references(mail.references.join(" "));
    }
    // The text part is left to lettre (7bit or quoted-printable: readable in the raw mail); the
    // HTML part, with its long lines, goes as base64, which is much cheaper to encode.
    let alternative = MultiPart::alternative()
        .singlepart(SinglePart::plain(mail.body.text.clone()))
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .header(ContentTransferEncoding::Base64)
                .body(mail.body.html.clone()),
        );
    let message = if mail.attachments.is_empty() {
        b.multipart(alternative)
    } else {
        let mut mixed = MultiPart::mixed().multipart(alternative);
        for a in &mail.attachments {
            let ct = ContentType::parse(&a.content_type)
                .unwrap_or_else(|_| ContentType::parse("application/octet-stream").expect("valid"));
            let part: SinglePart =
                Attachment::new(header_safe(&a.filename)).body(a.content.clone(), ct);
            mixed = mixed.singlepart(part);
        }
        b.multipart(mixed)
    }
    .map_err(|e| MessageError::Build(e.to_string()))?;
    Ok(message.formatted())
}

/// A new Message-ID: `<ref.UNIQUE@domain>`, unique across processes: a random prefix drawn once
/// per process, a counter and the time.
pub fn new_message_id(reference: &str, domain: &str) -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        super::token::random_hex(6).unwrap_or_else(|_| {
            let mut h = Sha256::new();
            h.update(std::process::id().to_le_bytes());
            h.update(Timestamp::now().as_nanosecond().to_le_bytes());
            h.finalize()
                .iter()
                .take(6)
                .map(|b| format!("{b:02x}"))
                .collect()
        })
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = Timestamp::now().as_millisecond();
    format!(
        "<{}.{t:x}.{prefix}{n:x}@{domain}>",
        reference.to_lowercase()
    )
}

/// Outlook's Thread-Index: 22 bytes for the conversation (the root's time as FILETIME, then a
/// GUID from the root's Message-ID), plus one 5-byte block per reply level, base64-encoded.
pub fn thread_index(root_id: &str, root_time: Timestamp, now: Timestamp, depth: usize) -> String {
    // FILETIME: 100-ns intervals since 1601-01-01.
    const EPOCH_DIFF_SECS: i128 = 11_644_473_600;
    let filetime = |t: Timestamp| -> u64 {
        let ticks = (i128::from(t.as_second()) + EPOCH_DIFF_SECS) * 10_000_000
            + i128::from(t.subsec_nanosecond()) / 100;
        ticks.max(0) as u64
    };
    let mut bytes = Vec::with_capacity(22 + 5 * depth);
    bytes.extend_from_slice(&filetime(root_time).to_be_bytes()[..6]);
    let guid = Sha256::digest(root_id.as_bytes());
    bytes.extend_from_slice(&guid[..16]);
    if depth > 0 {
        let delta = filetime(now).saturating_sub(filetime(root_time));
        for level in 0..depth {
            // Bit 0 clear; the next 31 bits are the time difference >> 18; then 4 random bits
            // and a 4-bit sequence number.
            let d = ((delta >> 18) & 0x7fff_ffff) as u32;
            let block = (u64::from(d) << 8) | ((guid[16] as u64 & 0xf0) | (level as u64 & 0x0f));
            bytes.extend_from_slice(&block.to_be_bytes()[3..]);
        }
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> Mail {
        Mail {
            from_name: "Example Help Desk".into(),
            from_address: "support@helpdesk.example".into(),
            to: "anna@acme.example".into(),
            to_name: "Anna".into(),
            reply_to: "support+r-sup-1-abcdefghijklmnop@helpdesk.example".into(),
            subject: "Printer\r\nBcc: victim@evil.example".into(),
            reference: "SUP-1".into(),
            message_id: "<sup-1.abc@helpdesk.example>".into(),
            in_reply_to: Some("<root@helpdesk.example>".into()),
            references: vec!["<root@helpdesk.example>".into()],
            thread_index: thread_index(
                "<root@helpdesk.example>",
                Timestamp::UNIX_EPOCH,
                Timestamp::UNIX_EPOCH,
                1,
            ),
            date: "2026-11-22T09:00:00Z".parse().unwrap(),
            body: Rendered {
                text: "Hello\n".into(),
                html: "<p>Hello</p>".into(),
            },
            attachments: vec![],
        }
    }

    #[test]
    fn headers_are_complete_and_user_text_cannot_inject_one() {
        let bytes = build(&mail()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let headers = text.split("\r\n\r\n").next().unwrap();
        assert!(!headers.lines().any(|l| l.starts_with("Bcc:")), "{headers}");
        assert!(
            headers.contains("Subject: [SUP-1] Printer Bcc: victim@evil.example"),
            "{headers}"
        );
        for h in [
            "Message-ID: <sup-1.abc@helpdesk.example>",
            "In-Reply-To: <root@helpdesk.example>",
            "References: <root@helpdesk.example>",
            "Auto-Submitted: auto-generated",
            "X-Auto-Response-Suppress: All",
            "X-Deskmail-Loop: support@helpdesk.example",
            "Reply-To: \"Example Help Desk\" <support+r-sup-1-abcdefghijklmnop@helpdesk.example>",
            "From: \"Example Help Desk\" <support@helpdesk.example>",
            "Thread-Index: ",
            "Date: Sun, 22 Nov 2026 09:00:00 +0000",
        ] {
            assert!(headers.contains(h), "missing {h} in\n{headers}");
        }
        assert!(text.contains("multipart/alternative"));
    }

    #[test]
    fn thread_index_has_22_bytes_plus_5_per_level() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let root = thread_index("<r@x>", Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH, 0);
        assert_eq!(b64.decode(&root).unwrap().len(), 22);
        let child = thread_index("<r@x>", Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH, 1);
        let child = b64.decode(child).unwrap();
        assert_eq!(child.len(), 27);
        assert_eq!(&child[..22], &b64.decode(root).unwrap()[..]);
    }
}
