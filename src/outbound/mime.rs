//! The pieces a notification is written from: header lines (folded at 78 columns, RFC 2047
//! encoded words where a value is not printable ASCII), Message-ID lists, quoted-printable and
//! base64 bodies. Written straight into one buffer: building a notification is on the hot path
//! of every change, and a general MIME builder copies each body several times.
//!
//! Values reach these functions without control characters (`message::header_safe`), so no
//! header can be injected through them.

use std::fmt::Write as _;

use email_encoding::headers::writer::EmailWriter;
use email_encoding::headers::{quoted_string, rfc2047, rfc2231};

pub const CRLF: &str = "\r\n";

/// The soft limit of a line (RFC 5322 section 2.1.1), CRLF not counted.
const LINE: usize = 78;

/// `Name: value` for a value that is known to be one safe ASCII token (Date, Message-ID, ...).
pub fn raw_header(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str(": ");
    out.push_str(value);
    out.push_str(CRLF);
}

/// `Name: value` for unstructured text (Subject, Thread-Topic): folded between words; runs of
/// words that are not printable ASCII go as RFC 2047 encoded words.
pub fn text_header(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str(": ");
    {
        let mut w = EmailWriter::new(out, name.len() + 2, 0, false);
        let mut pending = String::new();
        for word in value.split_inclusive(' ') {
            if word.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                encode_pending(&mut pending, &mut w);
                // Writing to a String cannot fail.
                let _ = w.folding().write_str(word);
            } else {
                pending.push_str(word);
            }
        }
        encode_pending(&mut pending, &mut w);
    }
    out.push_str(CRLF);
}

fn encode_pending(pending: &mut String, w: &mut EmailWriter<'_>) {
    if pending.is_empty() {
        return;
    }
    let words = pending.trim_end_matches(' ');
    let _ = rfc2047::encode(words, w);
    for _ in words.len()..pending.len() {
        w.space();
    }
    pending.clear();
}

/// `Name: "Display Name" <address>` (the name quoted or encoded as needed; none when empty).
pub fn mailbox_header(out: &mut String, name: &str, display: &str, address: &str) {
    out.push_str(name);
    out.push_str(": ");
    {
        let mut w = EmailWriter::new(out, name.len() + 2, 0, false);
        if !display.is_empty() {
            let _ = quoted_string::encode(display, &mut w);
            w.space();
            if w.line_len() + address.len() + 3 > LINE {
                // Fold between the name and the address (the pending space opens the new line).
                let _ = w.new_line();
            }
            let _ = w.write_char('<');
        }
        let _ = w.write_str(address);
        if !display.is_empty() {
            let _ = w.write_char('>');
        }
    }
    out.push_str(CRLF);
}

/// `Name: <id1> <id2> ...`, folded between ids.
pub fn id_list_header(out: &mut String, name: &str, ids: &[&str]) {
    out.push_str(name);
    out.push(':');
    let mut line = name.len() + 1;
    for id in ids {
        if line + 1 + id.len() > LINE && line > name.len() + 1 {
            out.push_str(CRLF);
            line = 0;
        }
        out.push(' ');
        out.push_str(id);
        line += 1 + id.len();
    }
    out.push_str(CRLF);
}

/// `Content-Disposition: attachment; filename=...` (RFC 2231 for long or non-ASCII names).
pub fn attachment_disposition(out: &mut String, filename: &str) {
    const NAME: &str = "Content-Disposition";
    out.push_str(NAME);
    out.push_str(": attachment;");
    {
        let mut w = EmailWriter::new(out, NAME.len() + 14, 1, false);
        let _ = rfc2231::encode("filename", filename, &mut w);
    }
    out.push_str(CRLF);
}

/// A MIME type that is safe to put in a header as it is (`type/subtype`, token characters), or
/// `application/octet-stream`.
pub fn safe_content_type(content_type: &str) -> &str {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    match content_type.split_once('/') {
        Some((t, s)) if token(t) && token(s) => content_type,
        _ => "application/octet-stream",
    }
}

/// Text as quoted-printable with CRLF line ends: printable ASCII stays readable, everything else
/// (and `=`, and white space at a line's end) becomes `=XX`, lines are kept within 76 columns
/// by soft breaks.
pub fn quoted_printable(out: &mut String, text: &str) {
    out.reserve(text.len() + text.len() / 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push_str(CRLF);
        }
        quoted_printable_line(out, line.strip_suffix('\r').unwrap_or(line));
    }
}

/// Printable ASCII and white space, which stand for themselves (white space except at a line's
/// end).
fn plain(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | 33..=60 | 62..=126)
}

/// One line of [`quoted_printable`]: runs of plain bytes are found and copied whole (a
/// notification is mostly such runs), the rest is encoded byte by byte.
fn quoted_printable_line(out: &mut String, line: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    const WIDTH: usize = 75; // and the soft break's `=`
    let bytes = line.as_bytes();
    // White space at the end is encoded: transports may strip it.
    let plain_end = bytes.len() - usize::from(matches!(bytes.last(), Some(b' ' | b'\t')));
    let (mut k, mut col) = (0, 0);
    while k < bytes.len() {
        let room_end = (k + (WIDTH - col)).min(plain_end).max(k);
        let run_end = bytes[k..room_end]
            .iter()
            .position(|&b| !plain(b))
            .map_or(room_end, |p| k + p);
        if run_end > k {
            // Starts and ends at ASCII bytes: character boundaries.
            out.push_str(&line[k..run_end]);
            col += run_end - k;
            k = run_end;
            continue;
        }
        let b = bytes[k];
        let literal = k < plain_end && plain(b);
        let width = if literal { 1 } else { 3 };
        if col + width > WIDTH {
            out.push_str("=\r\n");
            col = 0;
            continue;
        }
        if literal {
            out.push(b as char);
        } else {
            out.push('=');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
        col += width;
        k += 1;
    }
}

/// Bytes as base64 in lines of 76 characters, each ended by CRLF.
pub fn base64(out: &mut String, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let _ = email_encoding::body::base64::encode(bytes, out);
    out.push_str(CRLF);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable_keeps_text_readable_and_lines_short() {
        let mut out = String::new();
        quoted_printable(&mut out, "Grüße = 100 % \nend \n");
        assert_eq!(out, "Gr=C3=BC=C3=9Fe =3D 100 %=20\r\nend=20\r\n");
        let mut long = String::new();
        quoted_printable(&mut long, &"é".repeat(60));
        assert!(long.split("\r\n").all(|l| l.len() <= 76), "{long}");
        assert_eq!(long.replace("=\r\n", ""), "=C3=A9".repeat(60));
    }

    /// Undoes [`quoted_printable`] (soft breaks, `=XX`) and checks its rules on the way.
    fn decode_checked(encoded: &str) -> String {
        let mut bytes = Vec::new();
        for line in encoded.split("\r\n") {
            assert!(line.len() <= 76, "line too long: {line:?}");
            assert!(
                !line.ends_with([' ', '\t']),
                "white space at the end: {line:?}"
            );
            assert!(line.bytes().all(|b| plain(b) || b == b'='), "{line:?}");
            let (body, soft) = match line.strip_suffix('=') {
                Some(b) => (b, true),
                None => (line, false),
            };
            let mut it = body.bytes();
            while let Some(b) = it.next() {
                if b == b'=' {
                    let hex: String = [it.next().unwrap(), it.next().unwrap()]
                        .iter()
                        .map(|&c| c as char)
                        .collect();
                    bytes.push(u8::from_str_radix(&hex, 16).unwrap());
                } else {
                    bytes.push(b);
                }
            }
            if !soft {
                bytes.push(b'\n');
            }
        }
        bytes.pop();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn quoted_printable_round_trips_any_text() {
        let pieces = [
            "a",
            "word ",
            " ",
            "\t",
            "=",
            "é",
            "€",
            "日本",
            "\n",
            "\r\n",
            "x=y ",
            "  \n",
            "long-word-without-breaks-",
            "🙂",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..400 {
            let mut text = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            for _ in 0..(seed % 120) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(pieces[(seed % pieces.len() as u64) as usize]);
            }
            let mut out = String::new();
            quoted_printable(&mut out, &text);
            assert_eq!(decode_checked(&out), text.replace("\r\n", "\n"), "{out:?}");
        }
        // Plain text of a full line's width stays one line; one character more is broken.
        let mut line = String::new();
        quoted_printable(&mut line, &"x".repeat(76));
        assert_eq!(line.split("\r\n").count(), 2, "{line}");
        let mut fits = String::new();
        quoted_printable(&mut fits, &"x".repeat(75));
        assert_eq!(fits, "x".repeat(75));
    }

    #[test]
    fn text_headers_fold_and_encode() {
        let mut out = String::new();
        text_header(
            &mut out,
            "Subject",
            "[SUP-1] Drucker brennt: Grüße aus München",
        );
        assert!(
            out.starts_with("Subject: [SUP-1] Drucker brennt: =?utf-8?b?"),
            "{out}"
        );
        let mut long = String::new();
        text_header(&mut long, "Subject", &"word ".repeat(40));
        assert!(
            long.trim_end().split("\r\n").all(|l| l.len() <= 78),
            "{long}"
        );
        assert!(
            long.split("\r\n")
                .skip(1)
                .all(|l| l.is_empty() || l.starts_with(' '))
        );
    }

    #[test]
    fn id_lists_fold_between_ids() {
        let ids: Vec<String> = (0..6)
            .map(|i| format!("<{i}.abcdefghijkl@helpdesk.example>"))
            .collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut out = String::new();
        id_list_header(&mut out, "References", &ids);
        assert!(out.split("\r\n").all(|l| l.len() <= 78), "{out}");
        assert_eq!(out.matches('<').count(), 6);
    }

    #[test]
    fn unsafe_content_types_are_replaced() {
        assert_eq!(safe_content_type("image/png"), "image/png");
        assert_eq!(
            safe_content_type("text/plain\r\nBcc: x@y"),
            "application/octet-stream"
        );
        assert_eq!(safe_content_type("nonsense"), "application/octet-stream");
    }
}
