//! How much of a mail deskmail reads, so that every mail up to the size limit costs time and
//! memory in proportion to its size, whatever its shape. The mail is always stored whole (a
//! mail over the size limit excepted: only its headers); these bounds only limit what the
//! stages read of it, and each one that applies leaves a warning.
//!
//! - MIME structure: at most [`MAX_PARTS`] parts, [`MAX_MULTIPARTS`] multipart containers and
//!   [`MAX_EMBEDDED`] embedded mails (which bound the nesting), at most [`MAX_HEADER_LINES`]
//!   header lines at the tops of the mail and its parts; no embedded mail in a transfer
//!   encoding (which would hide its structure) and no boundary in a form not read. The MIME
//!   parser is given the mail up to the point where one is passed: two linear scans find it
//!   before any parsing.
//! - Text: the first [`TEXT_LIMIT`] bytes of a mail's text are read (extraction, commands, the
//!   comment); a note in the comment says how much more there is, and the stored mail has it.
//! - Lists: at most [`MAX_IDS`] Message-IDs of a thread and [`MAX_ADDRESSES`] recipients per
//!   header; a subject or a name of at most [`MAX_SUBJECT_CHARS`] characters.

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

/// What in a mail makes MIME structure: a boundary's declaration (`boundary=`, in any case;
/// `boundary*=` and `boundary*0=` are RFC 2231's forms), or a part that is a whole mail of its
/// own (`message/rfc822`, `message/global`; the parts of a `multipart/digest` are mails too).
/// Looked for on every line, not only in header blocks: counting too many is harmless.
static STRUCTURE: LazyLock<regex::bytes::Regex> = LazyLock::new(|| {
    regex::bytes::Regex::new(r"(?i-u)boundary|message/(?:rfc822|global)|multipart/digest")
        .expect("a valid pattern")
});

/// A transfer encoding that hides an embedded mail from the scan (mail-parser decodes it and
/// parses what it holds, though RFC 2046 allows neither for `message/*`).
static ENCODED: LazyLock<regex::bytes::Regex> = LazyLock::new(|| {
    regex::bytes::Regex::new(
        r"(?i-u)content-transfer-encoding[ \t]*:[ \t]*(?:base64|quoted-printable)",
    )
    .expect("a valid pattern")
});

/// Mails embedded in a mail (forwarded as attachments, a digest's parts), at most.
pub const MAX_EMBEDDED: usize = 32;

/// A mail this small is read whole: whatever its shape, it costs little (some thousand parts or
/// header lines, nesting a MIME parser's stack takes in its stride), and most mail is this
/// small, so that the scans cost it nothing (7 % of the stages' time on 6 KB replies).
pub const SMALL: usize = 64 * 1024;

/// The longest boundary read (RFC 2046 allows 70 characters).
const MAX_BOUNDARY: usize = 200;

/// How much of a mail the MIME parser is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readable {
    /// Bytes from the start: the whole mail unless a bound applied.
    pub len: usize,
    /// Which bound applied, in words.
    pub warning: Option<String>,
}

impl Readable {
    fn cut(len: usize, warning: String) -> Readable {
        Readable {
            len,
            warning: Some(format!("{warning}: the rest of the mail is not read")),
        }
    }
}

/// Finds where a mail passes a structural bound, in two linear passes before any parsing: the
/// declarations (boundaries, embedded mails), then the parts their delimiters start (found as
/// mail-parser finds them: `--boundary` anywhere in a line) and the header lines at their tops.
pub fn readable(raw: &[u8]) -> Readable {
    if raw.len() <= SMALL {
        return Readable {
            len: raw.len(),
            warning: None,
        };
    }
    let (boundaries, declared) = declarations(raw);
    let limit = declared.as_ref().map_or(raw.len(), |r| r.len);
    let parts = parts(&raw[..limit], &boundaries);
    match (declared, parts) {
        (_, Some(cut)) => cut,
        (Some(cut), None) => cut,
        (None, None) => Readable {
            len: raw.len(),
            warning: None,
        },
    }
}

/// The boundaries a mail declares, and where a declaration passes a bound (if one does).
fn declarations(raw: &[u8]) -> (Vec<&[u8]>, Option<Readable>) {
    let mut boundaries: Vec<&[u8]> = Vec::new();
    let mut embedded = 0;
    for m in STRUCTURE.find_iter(raw) {
        // A word of its own: `xboundary=` is another parameter.
        if m.start() > 0 && is_word_byte(raw[m.start() - 1]) {
            continue;
        }
        // Where a cut would go; found only for a cut, as a long line may hold many matches.
        let at = || line_start(raw, m.start());
        if !m.as_bytes()[0].eq_ignore_ascii_case(&b'b') {
            embedded += 1;
            if embedded > MAX_EMBEDDED {
                let cut = format!("more than {MAX_EMBEDDED} mails embedded in the mail");
                return (boundaries, Some(Readable::cut(at(), cut)));
            }
            if encoded_block(raw, at()) {
                let cut = "an embedded mail in base64 or quoted-printable".to_string();
                return (boundaries, Some(Readable::cut(at(), cut)));
            }
            continue;
        }
        let value = match boundary_value(&raw[m.end()..]) {
            Declared::Not => continue,
            Declared::Value(v) => v,
            Declared::Unread => {
                let cut = "a MIME boundary in a form deskmail does not read".to_string();
                return (boundaries, Some(Readable::cut(at(), cut)));
            }
        };
        if !boundaries.contains(&value) {
            if boundaries.len() == MAX_MULTIPARTS {
                let cut = format!("more than {MAX_MULTIPARTS} multipart containers");
                return (boundaries, Some(Readable::cut(at(), cut)));
            }
            boundaries.push(value);
        }
    }
    (boundaries, None)
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// What follows the word `boundary`.
enum Declared<'a> {
    /// No `=`: the word in a sentence.
    Not,
    Value(&'a [u8]),
    /// RFC 2231's `boundary*=`, an empty value, or one longer than [`MAX_BOUNDARY`].
    Unread,
}

/// Reads `[ \t]* = [ \t]* ("value" | value)` at the start of `rest`.
fn boundary_value(rest: &[u8]) -> Declared<'_> {
    let blank = |r: &[u8]| r.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
    let rest = &rest[blank(rest)..];
    match rest.first() {
        Some(b'*') => return Declared::Unread,
        Some(b'=') => {}
        _ => return Declared::Not,
    }
    let rest = &rest[1..];
    let rest = &rest[blank(rest)..];
    let value = match rest.strip_prefix(b"\"") {
        Some(quoted) => {
            let len = quoted
                .iter()
                .take(MAX_BOUNDARY + 1)
                .take_while(|b| !matches!(b, b'"' | b'\r' | b'\n'))
                .count();
            &quoted[..len]
        }
        None => {
            let len = rest
                .iter()
                .take(MAX_BOUNDARY + 1)
                .take_while(|b| !b.is_ascii_whitespace() && !matches!(b, b';' | b'"'))
                .count();
            &rest[..len]
        }
    };
    if value.is_empty() || value.len() > MAX_BOUNDARY {
        Declared::Unread
    } else {
        Declared::Value(value)
    }
}

/// Whether the header block around `at` sets a transfer encoding (it is looked for in at most
/// 8 KiB either side, up to the blank lines that end the block).
fn encoded_block(raw: &[u8], at: usize) -> bool {
    const NEAR: usize = 8 * 1024;
    let from = at.saturating_sub(NEAR);
    let to = (at + NEAR).min(raw.len());
    let before = &raw[from..at];
    let start = find_last(before, b"\n\r\n")
        .or_else(|| find_last(before, b"\n\n"))
        .map_or(from, |i| from + i);
    let after = &raw[at..to];
    let end = find_first(after, b"\n\r\n")
        .or_else(|| find_first(after, b"\n\n"))
        .map_or(to, |i| at + i);
    ENCODED.is_match(&raw[start..end])
}

fn find_first(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// Where the line holding byte `at` starts.
fn line_start(raw: &[u8], at: usize) -> usize {
    memchr::memrchr(b'\n', &raw[..at]).map_or(0, |i| i + 1)
}

/// Where the parts the delimiters start, or the header lines at the tops of the mail and of
/// its parts, pass a bound (if they do).
fn parts(raw: &[u8], boundaries: &[&[u8]]) -> Option<Readable> {
    let mut header_lines = 0;
    let mut headers = |from: usize, until: usize| -> Option<Readable> {
        // The header block that starts at `from`, up to its blank line (or `until`).
        let block = &raw[from..until];
        let mut at = 0;
        while at < block.len() {
            let end = memchr::memchr(b'\n', &block[at..]).map_or(block.len(), |i| at + i + 1);
            if trim_line_end(&block[at..end]).is_empty() {
                return None;
            }
            header_lines += 1;
            if header_lines > MAX_HEADER_LINES {
                return Some(Readable::cut(
                    from + at,
                    format!("more than {MAX_HEADER_LINES} header lines"),
                ));
            }
            at = end;
        }
        None
    };
    if boundaries.is_empty() {
        return headers(0, raw.len());
    }
    // Where a part starts: `--boundary`, anywhere in a line. Of each boundary's delimiters the
    // first MAX_PARTS + 1 are enough to find where the parts, all boundaries together, pass it.
    let mut starts: Vec<usize> = Vec::new();
    for b in boundaries {
        let needle = [b"--".as_slice(), b].concat();
        starts.extend(memchr::memmem::find_iter(raw, &needle).take(MAX_PARTS + 1));
    }
    starts.sort_unstable();
    starts.dedup();
    let mut block_from = 0;
    for (n, &delimiter) in starts.iter().enumerate() {
        // A delimiter on the line of the one before starts no header block of its own.
        let on_a_new_line = delimiter >= block_from;
        if on_a_new_line && let Some(cut) = headers(block_from, delimiter) {
            return Some(cut);
        }
        if n + 1 > MAX_PARTS {
            return Some(Readable::cut(
                line_start(raw, delimiter),
                format!("more than {MAX_PARTS} MIME parts"),
            ));
        }
        if !on_a_new_line {
            continue;
        }
        // The part's headers start on the line after its delimiter.
        block_from =
            memchr::memchr(b'\n', &raw[delimiter..]).map_or(raw.len(), |i| delimiter + i + 1);
    }
    headers(block_from.min(raw.len()), raw.len())
}

/// A line without its line end and trailing white space.
fn trim_line_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !matches!(b, b'\n' | b'\r' | b' ' | b'\t'))
        .map_or(0, |i| i + 1);
    &line[..end]
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
    memchr::memchr_iter(b'\n', s).nth(n - 1)
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
        let r = scan(&m);
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
        let r = scan(&m);
        assert!(r.len < m.len());
        assert!(r.warning.unwrap().contains("multipart containers"));
    }

    fn warning_of(raw: &[u8]) -> String {
        scan(raw).warning.unwrap_or_default()
    }

    /// [`readable`] of `raw` made large enough to be scanned.
    fn scan(raw: &[u8]) -> Readable {
        readable(&padded(raw))
    }

    /// `raw` made larger than [`SMALL`] with text at its end, so that it is scanned.
    fn padded(raw: &[u8]) -> Vec<u8> {
        let mut out = raw.to_vec();
        out.extend(std::iter::repeat_n(b'x', SMALL));
        out
    }

    #[test]
    fn a_small_mail_is_read_whole() {
        let m = mail(MAX_PARTS + 10, 1);
        assert!(m.len() < SMALL);
        assert_eq!(readable(&m).warning, None);
    }

    #[test]
    fn delimiters_count_wherever_mail_parser_finds_them() {
        // `--b` in the middle of a line starts a part for mail-parser, too.
        let mut m = String::from("Content-Type: multipart/mixed; boundary=b\r\n\r\n");
        for i in 0..MAX_PARTS + 5 {
            m.push_str(&format!(
                "x--b\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n"
            ));
        }
        assert!(
            warning_of(m.as_bytes()).contains("MIME parts"),
            "{:?}",
            scan(m.as_bytes())
        );
    }

    #[test]
    fn boundaries_not_read_and_encoded_embedded_mails_are_cut() {
        let long = format!(
            "Content-Type: multipart/mixed; boundary=\"{}\"\r\n\r\n",
            "b".repeat(250)
        );
        assert!(warning_of(long.as_bytes()).contains("does not read"));
        let rfc2231 = "Content-Type: multipart/mixed; boundary*0=\"ab\"; boundary*1=\"cd\"\r\n\r\n";
        assert!(warning_of(rfc2231.as_bytes()).contains("does not read"));
        let encoded = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
            Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nRnJvbTogYQ==\r\n--b--\r\n";
        let r = scan(encoded.as_bytes());
        assert!(r.warning.unwrap().contains("base64"));
        assert!(
            encoded[..r.len].ends_with("--b\r\n"),
            "{}",
            &encoded[..r.len]
        );
        // Unencoded, it is read.
        let plain = encoded.replace("Content-Transfer-Encoding: base64\r\n", "");
        assert_eq!(scan(plain.as_bytes()).warning, None);
    }

    #[test]
    fn nested_digests_and_mails_are_bounded() {
        let mut m = String::new();
        for i in 0..100 {
            m.push_str(&format!(
                "Content-Type: multipart/digest; boundary=d{i}\r\n\r\n--d{i}\r\n"
            ));
        }
        assert!(!warning_of(m.as_bytes()).is_empty());
        let chain = "Content-Type: message/rfc822\r\n\r\n".repeat(100);
        assert!(warning_of(chain.as_bytes()).contains("embedded"));
    }

    #[test]
    fn a_huge_header_block_is_cut() {
        let mut m = String::from("From: a@b.example\n");
        for i in 0..MAX_HEADER_LINES + 1 {
            m.push_str(&format!("X-H: {i}\n"));
        }
        m.push_str("\nbody\n");
        let r = scan(m.as_bytes());
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
