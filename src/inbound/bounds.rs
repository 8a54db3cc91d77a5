//! How much of a mail deskmail reads, so that every mail up to the size limit costs time and
//! memory in proportion to its size, whatever its shape. The mail is always stored whole (a
//! mail over the size limit excepted: only its headers); these bounds only limit what the
//! stages read of it, and each one that applies leaves a warning.
//!
//! - MIME structure: at most [`MAX_PARTS`] parts and [`MAX_MULTIPARTS`] multipart containers
//!   (which bounds the nesting), at most [`MAX_HEADER_LINES`] header lines in all. The MIME
//!   parser is given the mail up to the point where one is exceeded: a linear scan finds it
//!   before any parsing.
//! - Text: the first [`TEXT_LIMIT`] bytes of a mail's text are read (extraction, commands, the
//!   comment); a note in the comment says how much more there is, and the stored mail has it.
//! - Lists: at most [`MAX_IDS`] Message-IDs of a thread and [`MAX_ADDRESSES`] recipients per
//!   header; a subject or a name of at most [`MAX_SUBJECT_CHARS`] characters.

use std::collections::HashSet;
use std::sync::LazyLock;

/// MIME parts read, at most: more than any person attaches.
pub const MAX_PARTS: usize = 500;
/// Multipart containers read, at most (real mails have a handful; forwarded chains a dozen).
pub const MAX_MULTIPARTS: usize = 32;
/// Header lines (folded ones included) in all the mail's header blocks.
pub const MAX_HEADER_LINES: usize = 5_000;
/// Bytes of a mail's text read: about 150,000 words.
pub const TEXT_LIMIT: usize = 1 << 20;
/// Lines of a mail's text read: some 400 printed pages.
pub const TEXT_LINES: usize = 20_000;
/// Message-IDs of In-Reply-To and References kept (the first, the thread's root, and the newest).
pub const MAX_IDS: usize = 50;
/// Addresses read from each of To, Cc and Reply-To.
pub const MAX_ADDRESSES: usize = 500;
/// Characters kept of a subject or a display name.
pub const MAX_SUBJECT_CHARS: usize = 1_000;

/// `boundary=` of a Content-Type, in any case, quoted or not.
static BOUNDARY: LazyLock<regex::bytes::Regex> = LazyLock::new(|| {
    regex::bytes::Regex::new(
        r#"(?i-u)\bboundary[ \t]*=[ \t]*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))"#,
    )
    .expect("a valid pattern")
});

/// A Content-Type whose body is a whole mail: it starts with a header block of its own.
static EMBEDDED_MAIL: LazyLock<regex::bytes::Regex> = LazyLock::new(|| {
    regex::bytes::Regex::new(r"(?i-u)\bmessage/(?:rfc822|global)\b").expect("a valid pattern")
});

/// How much of a mail the MIME parser is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readable {
    /// Bytes from the start: the whole mail unless a bound applied.
    pub len: usize,
    /// Which bound applied, in words.
    pub warning: Option<String>,
}

/// Finds where a mail exceeds a structural bound: one pass over its lines, each looked at
/// once (a delimiter line is looked up among the boundaries declared so far).
pub fn readable(raw: &[u8]) -> Readable {
    let mut boundaries: HashSet<&[u8]> = HashSet::new();
    let (mut parts, mut header_lines) = (0usize, 0usize);
    // The top of the mail is a header block; so is the top of each part, and of a mail
    // embedded in one.
    let mut in_headers = true;
    let mut embedded = false;
    let mut at = 0;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        let start = at;
        at += line.len();
        let content = trim_line_end(line);
        let cut = |warning: String| Readable {
            len: start,
            warning: Some(warning),
        };
        if in_headers {
            if content.is_empty() {
                in_headers = std::mem::take(&mut embedded);
                continue;
            }
            embedded |= EMBEDDED_MAIL.is_match(content);
            header_lines += 1;
            if header_lines > MAX_HEADER_LINES {
                return cut(format!(
                    "more than {MAX_HEADER_LINES} header lines: the rest of the mail is not read"
                ));
            }
            if let Some(b) = declared_boundary(content) {
                if boundaries.len() == MAX_MULTIPARTS && !boundaries.contains(b) {
                    return cut(format!(
                        "more than {MAX_MULTIPARTS} multipart containers: the rest of the mail is not read"
                    ));
                }
                boundaries.insert(b);
            }
            continue;
        }
        let Some(rest) = content.strip_prefix(b"--") else {
            continue;
        };
        if boundaries.contains(rest) {
            parts += 1;
            if parts > MAX_PARTS {
                return cut(format!(
                    "more than {MAX_PARTS} MIME parts: the rest of the mail is not read"
                ));
            }
            in_headers = true;
        }
        // A closing delimiter (`--b--`) is followed by the parent's text, not by headers.
    }
    Readable {
        len: raw.len(),
        warning: None,
    }
}

/// A line without its line end and trailing white space.
fn trim_line_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !matches!(b, b'\n' | b'\r' | b' ' | b'\t'))
        .map_or(0, |i| i + 1);
    &line[..end]
}

/// The boundary a header line declares, if it does.
fn declared_boundary(line: &[u8]) -> Option<&[u8]> {
    // Cheap test first: most header lines have no `=` at all.
    if !line.contains(&b'=') {
        return None;
    }
    let caps = BOUNDARY.captures(line)?;
    caps.get(1).or_else(|| caps.get(2)).map(|m| m.as_bytes())
}

/// `s` cut to at most `max` bytes at a character boundary, preferably at the end of a line.
pub fn cut_text(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let end = s.floor_char_boundary(max);
    match s[..end].rfind('\n') {
        // A line end in the last tenth: cut there, so that no line is broken.
        Some(nl) if nl >= end - end / 10 => &s[..nl],
        _ => &s[..end],
    }
}

/// `s` cut to at most `max` bytes and `lines` lines (see [`cut_text`]).
pub fn cut_text_lines(s: &str, max: usize, lines: usize) -> &str {
    let s = cut_text(s, max);
    match memchr_nth(s.as_bytes(), lines) {
        Some(at) => &s[..at],
        None => s,
    }
}

/// Where the `n`th line end is, if there are that many.
fn memchr_nth(s: &[u8], n: usize) -> Option<usize> {
    if n == 0 {
        return Some(0);
    }
    s.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(n - 1)
        .map(|(i, _)| i)
}

/// `b` cut to at most `max` bytes.
pub fn cut_bytes(b: &[u8], max: usize) -> &[u8] {
    &b[..b.len().min(max)]
}

/// `s` cut to at most `max` characters, with `…` where it was cut.
pub fn cut_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(parts: usize, nested: usize) -> Vec<u8> {
        let mut m = String::from("From: a@b.example\r\nSubject: x\r\n");
        for level in 0..nested {
            m.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n--b{level}\r\n"
            ));
        }
        m.push_str("Content-Type: text/plain\r\n\r\nhello\r\n");
        let inner = nested.saturating_sub(1);
        for i in 0..parts {
            m.push_str(&format!(
                "--b{inner}\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n"
            ));
        }
        m.push_str(&format!("--b{inner}--\r\n"));
        m.into_bytes()
    }

    #[test]
    fn an_ordinary_mail_is_read_whole() {
        let m = mail(3, 2);
        assert_eq!(
            readable(&m),
            Readable {
                len: m.len(),
                warning: None
            }
        );
        let text = b"From: a@b.example\n\n-- \nsig\n--b\n";
        assert_eq!(readable(text).len, text.len());
    }

    #[test]
    fn too_many_parts_are_cut_before_the_first_one_over() {
        // The first part is the text, then `part 0`, `part 1`, ...
        let m = mail(MAX_PARTS + 10, 1);
        let r = readable(&m);
        let read = String::from_utf8_lossy(&m[..r.len]);
        assert!(
            read.contains(&format!("part {}\r\n", MAX_PARTS - 2)),
            "{r:?}"
        );
        assert!(!read.contains(&format!("part {}\r\n", MAX_PARTS - 1)));
        assert!(r.warning.unwrap().contains("MIME parts"));
    }

    #[test]
    fn deep_nesting_is_cut() {
        let m = mail(1, MAX_MULTIPARTS + 5);
        let r = readable(&m);
        assert!(r.len < m.len());
        assert!(r.warning.unwrap().contains("multipart containers"));
    }

    #[test]
    fn a_huge_header_block_is_cut() {
        let mut m = String::from("From: a@b.example\n");
        for i in 0..MAX_HEADER_LINES + 1 {
            m.push_str(&format!("X-H: {i}\n"));
        }
        m.push_str("\nbody\n");
        let r = readable(m.as_bytes());
        assert!(r.len < m.len() && r.warning.unwrap().contains("header lines"));
    }

    #[test]
    fn text_is_cut_at_a_line_end_or_a_character_boundary() {
        let s = "ab\ncd€ef";
        assert_eq!(cut_text(s, 100), s);
        assert_eq!(cut_text(s, 7), "ab\ncd");
        assert_eq!(cut_text("€€€", 4), "€");
        assert_eq!(cut_text_lines("a\nb\nc\n", 100, 2), "a\nb");
        assert_eq!(cut_text_lines("a\nb", 100, 2), "a\nb");
        assert_eq!(cut_chars("äbc", 2), "äb…");
        assert_eq!(cut_chars("äb", 2), "äb");
    }
}
