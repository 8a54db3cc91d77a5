//! One notification as RFC 5322 bytes: multipart/alternative text + HTML (mixed with its
//! attachments), threading headers, the signed Reply-To and the headers that keep auto-responders
//! quiet.

use std::fmt::Write as _;

use base64::Engine;
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::mime;
use super::render::Rendered;

/// The loop header every notification carries; the inbound side recognises its own mail by it.
pub const LOOP_HEADER: &str = "X-Deskmail-Loop";

/// An attachment to send along.
#[derive(Debug, Clone)]
pub struct MailAttachment {
    pub filename: String,
    pub content_type: String,
    pub content: bytes::Bytes,
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

/// A Message-ID as headers carry it: `<left@right>`, no white space or control characters.
/// Ids read from other people's mail are checked before they are repeated in a header.
pub fn is_message_id(id: &str) -> bool {
    id.len() <= 250
        && id.starts_with('<')
        && id.ends_with('>')
        && id.contains('@')
        && id.bytes().all(|b| (0x21..0x7f).contains(&b))
        && id[1..id.len() - 1].bytes().all(|b| b != b'<' && b != b'>')
}

fn check_address(address: &str) -> Result<(), MessageError> {
    address
        .parse::<lettre::Address>()
        .map(|_| ())
        .map_err(|e| MessageError::Address {
            address: address.to_string(),
            reason: e.to_string(),
        })
}

/// The subject of every mail on a ticket: `[REF] subject` (just the subject without a ticket).
pub fn subject_line(reference: &str, subject: &str) -> String {
    if reference.is_empty() {
        header_safe(subject)
    } else {
        header_safe(&format!("[{reference}] {subject}"))
    }
}

/// A multipart boundary. It starts with `=_`, which neither quoted-printable nor base64 text
/// can contain, so it never occurs in a part.
fn boundary(message_id: &str, kind: char) -> String {
    // FNV-1a: distinct boundaries for distinct messages, e.g. one forwarded inside another.
    let hash = message_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("=_deskmail_{kind}{hash:016x}")
}

/// Builds the message's bytes.
pub fn build(mail: &Mail) -> Result<Vec<u8>, MessageError> {
    for address in [&mail.from_address, &mail.to, &mail.reply_to] {
        check_address(address)?;
    }
    if !is_message_id(&mail.message_id) {
        return Err(MessageError::Build(format!(
            "not a Message-ID: {}",
            mail.message_id
        )));
    }
    let attached: usize = mail.attachments.iter().map(|a| a.content.len()).sum();
    let mut m = String::with_capacity(
        2048 + mail.body.text.len() * 11 / 10 + (mail.body.html.len() + attached) * 14 / 10,
    );
    let date = mail
        .date
        .strftime("%a, %d %b %Y %H:%M:%S +0000")
        .to_string();
    mime::raw_header(&mut m, "Date", &date);
    mime::mailbox_header(
        &mut m,
        "From",
        &header_safe(&mail.from_name),
        &mail.from_address,
    );
    mime::mailbox_header(&mut m, "To", &header_safe(&mail.to_name), &mail.to);
    mime::mailbox_header(
        &mut m,
        "Reply-To",
        &header_safe(&mail.from_name),
        &mail.reply_to,
    );
    mime::text_header(
        &mut m,
        "Subject",
        &subject_line(&mail.reference, &mail.subject),
    );
    mime::raw_header(&mut m, "Message-ID", &mail.message_id);
    if let Some(parent) = mail.in_reply_to.as_deref().filter(|p| is_message_id(p)) {
        mime::raw_header(&mut m, "In-Reply-To", parent);
    }
    let references: Vec<&str> = mail
        .references
        .iter()
        .map(String::as_str)
        .filter(|r| is_message_id(r))
        .collect();
    if !references.is_empty() {
        mime::id_list_header(&mut m, "References", &references);
    }
    mime::raw_header(&mut m, "Auto-Submitted", "auto-generated");
    mime::raw_header(&mut m, "X-Auto-Response-Suppress", "All");
    mime::raw_header(&mut m, LOOP_HEADER, &mail.from_address);
    if !mail.reference.is_empty() {
        mime::text_header(&mut m, "X-Deskmail-Ticket", &header_safe(&mail.reference));
    }
    mime::text_header(&mut m, "Thread-Topic", &header_safe(&mail.subject));
    mime::raw_header(&mut m, "Thread-Index", &mail.thread_index);
    mime::raw_header(&mut m, "MIME-Version", "1.0");
    let alt = boundary(&mail.message_id, 'a');
    if mail.attachments.is_empty() {
        alternative(&mut m, &alt, &mail.body);
    } else {
        let mixed = boundary(&mail.message_id, 'm');
        let _ = write!(
            m,
            "Content-Type: multipart/mixed; boundary=\"{mixed}\"\r\n\r\n--{mixed}\r\n"
        );
        alternative(&mut m, &alt, &mail.body);
        for a in &mail.attachments {
            let _ = write!(
                m,
                "\r\n--{mixed}\r\nContent-Type: {}\r\n",
                mime::safe_content_type(&a.content_type)
            );
            mime::attachment_disposition(&mut m, &header_safe(&a.filename));
            m.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
            mime::base64(&mut m, &a.content);
        }
        let _ = write!(m, "\r\n--{mixed}--\r\n");
    }
    Ok(m.into_bytes())
}

/// The text and HTML versions, as multipart/alternative (its Content-Type header first). Both
/// go as quoted-printable, as most mail clients send them: readable in the raw mail, about a
/// quarter smaller than base64 for HTML, and repetitive enough that the outbox's compression
/// still works on it (base64 hides HTML's repeats from LZ4).
fn alternative(m: &mut String, boundary: &str, body: &Rendered) {
    let _ = write!(
        m,
        "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    );
    mime::quoted_printable(m, &body.text);
    let _ = write!(
        m,
        "\r\n--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    );
    mime::quoted_printable(m, &body.html);
    let _ = write!(m, "--{boundary}--\r\n");
}

/// A new Message-ID: `<time.ref.unique@domain>`, unique across processes: the time (hex
/// milliseconds), the ticket, and a random prefix drawn once per process with a counter. The
/// time comes first so that new ids sort last: the outbox's unique index grows at its end
/// instead of splitting pages in its middle.
pub fn new_message_id(reference: &str, domain: &str) -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        crate::hex::random_hex(6).unwrap_or_else(|_| {
            let mut h = Sha256::new();
            h.update(std::process::id().to_le_bytes());
            h.update(Timestamp::now().as_nanosecond().to_le_bytes());
            crate::hex::hex(&h.finalize()[..6])
        })
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = Timestamp::now().as_millisecond();
    format!(
        "<{t:x}.{}.{prefix}{n:x}@{domain}>",
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
        let text = String::from_utf8_lossy(&bytes).replace("\r\n ", " ");
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
    fn a_mail_client_reads_back_what_was_written() {
        use mail_parser::{MessageParser, MimeHeaders};
        let mut m = mail();
        m.to_name = "Jürgen \"JJ\" Müller".into();
        m.subject =
            "Grüße: the printer = on fire, again and again and again and again and again".into();
        m.body.text = format!(
            "Line one = two\nÜmlaut line\n{}\ntrailing space \n",
            "x".repeat(200)
        );
        m.body.html = "<p>Hällo &amp; <b>bold</b></p>".into();
        m.references = (0..12)
            .map(|i| format!("<{i}.abcdefgh@helpdesk.example>"))
            .collect();
        m.references.push("<bad id with spaces@x>".into());
        m.attachments = vec![MailAttachment {
            filename: "Prüfbericht März.pdf".into(),
            content_type: "application/pdf".into(),
            content: (0..=255u8).cycle().take(5000).collect::<Vec<u8>>().into(),
        }];
        let raw = build(&m).unwrap();
        for line in raw.split(|b| *b == b'\n') {
            assert!(line.len() <= 79, "long: {}", String::from_utf8_lossy(line));
        }
        let parsed = MessageParser::default().parse(&raw[..]).unwrap();
        assert_eq!(
            parsed.subject(),
            Some(subject_line("SUP-1", &m.subject).as_str())
        );
        let to = parsed.to().unwrap().first().unwrap();
        assert_eq!(to.name(), Some("Jürgen \"JJ\" Müller"));
        assert_eq!(to.address(), Some("anna@acme.example"));
        assert_eq!(
            parsed.body_text(0).unwrap().replace("\r\n", "\n"),
            m.body.text
        );
        assert_eq!(parsed.body_html(0).unwrap(), m.body.html);
        let refs = parsed.references().as_text_list().unwrap();
        assert_eq!(refs.len(), 12, "the bad id is left out");
        assert_eq!(refs[0], "0.abcdefgh@helpdesk.example");
        let a = parsed.attachment(0).unwrap();
        assert_eq!(a.attachment_name(), Some("Prüfbericht März.pdf"));
        assert_eq!(a.contents(), &m.attachments[0].content[..]);
        assert_eq!(
            parsed.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-generated")
        );
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
