//! HTML read as text runs and tags, following the tag states of the WHATWG tokenizer (tag name,
//! attribute names and values, quoted or not, `/>`), comments, doctypes and bogus comments.
//! Nothing of a tag is kept but its name: every byte is looked at a bounded number of times,
//! whatever the HTML's shape. (Tokenizers that keep attributes check each new one against the
//! tag's others, so one tag of 100,000 attributes costs minutes.)
//!
//! Left out, as the text a person reads does not depend on them: character references in
//! attribute values, the escapes inside `<script>`, CDATA sections (read as bogus comments, as
//! in HTML content), and parse errors.

use memchr::{memchr, memmem};

/// What the HTML holds next.
#[derive(Debug, PartialEq)]
pub enum Token<'a> {
    /// Text as written, character references not yet decoded (see [`decode`]).
    Text(&'a str),
    Tag(Tag),
}

/// A start or end tag.
#[derive(Debug, PartialEq)]
pub struct Tag {
    name: Name,
    pub end: bool,
    /// Written `<x/>`.
    pub self_closing: bool,
}

impl Tag {
    /// The name, lower-cased; empty for a name longer than any deskmail reads.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }
}

/// A tag's name, as much of it as tells the names deskmail reads apart.
#[derive(Debug, Default, PartialEq)]
struct Name {
    bytes: [u8; 16],
    len: usize,
    /// Longer than `bytes` holds.
    long: bool,
}

impl Name {
    fn push(&mut self, b: u8) {
        if self.len == self.bytes.len() {
            self.long = true;
        } else {
            self.bytes[self.len] = b.to_ascii_lowercase();
            self.len += 1;
        }
    }

    fn as_str(&self) -> &str {
        if self.long {
            return "";
        }
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

/// The tokens of an HTML text, in order.
pub struct Tokens<'a> {
    html: &'a str,
    at: usize,
}

impl<'a> Tokens<'a> {
    pub fn new(html: &'a str) -> Self {
        Tokens { html, at: 0 }
    }

    /// Passes over the content of a `<script>`, `<style>` or the like whose start tag was the
    /// last token: up to its end tag (`</name` and a space, `/` or `>`), or to the end.
    pub fn skip_raw_text(&mut self, name: &str) {
        let bytes = self.html.as_bytes();
        let rest = &bytes[self.at..];
        let end = memmem::find_iter(rest, b"</").find(|&i| {
            let after = &rest[i + 2..];
            after.len() > name.len()
                && after[..name.len()].eq_ignore_ascii_case(name.as_bytes())
                && (matches!(after[name.len()], b'/' | b'>') || is_space(after[name.len()]))
        });
        self.at = end.map_or(bytes.len(), |i| self.at + i);
    }

    /// The text from `self.at` up to the next `<` after `from`.
    fn text(&mut self, from: usize) -> Token<'a> {
        let bytes = self.html.as_bytes();
        let end = memchr(b'<', &bytes[from..]).map_or(bytes.len(), |i| from + i);
        let text = &self.html[self.at..end];
        self.at = end;
        Token::Text(text)
    }

    /// Passes to just after the next `needle` at or after `from` (or to the end).
    fn past(&mut self, from: usize, needle: &[u8]) {
        let bytes = self.html.as_bytes();
        self.at =
            memmem::find(&bytes[from..], needle).map_or(bytes.len(), |i| from + i + needle.len());
    }

    /// A tag whose name starts at `from`; `None` when the HTML ends inside it (the tag is
    /// dropped, as the standard says).
    fn tag(&mut self, from: usize, end: bool) -> Option<Tag> {
        let bytes = self.html.as_bytes();
        let mut tag = Tag {
            name: Name::default(),
            end,
            self_closing: false,
        };
        let mut i = from;
        while i < bytes.len() && !matches!(bytes[i], b'/' | b'>') && !is_space(bytes[i]) {
            tag.name.push(bytes[i]);
            i += 1;
        }
        let mut state = Attr::Before;
        while i < bytes.len() {
            if let Attr::Quoted(quote) = state {
                // The value runs to its closing quote, `>` and all.
                let Some(n) = memchr(quote, &bytes[i..]) else {
                    break;
                };
                i += n + 1;
                state = Attr::AfterQuoted;
                continue;
            }
            let b = bytes[i];
            i += 1;
            state = match (state, b) {
                (_, b'>') => {
                    tag.self_closing = state == Attr::Solidus;
                    self.at = i;
                    return Some(tag);
                }
                (Attr::Unquoted, b) if is_space(b) => Attr::Before,
                (Attr::Unquoted, _) => Attr::Unquoted,
                (Attr::BeforeValue, b'"' | b'\'') => Attr::Quoted(b),
                (Attr::BeforeValue, b) if is_space(b) => Attr::BeforeValue,
                (Attr::BeforeValue, _) => Attr::Unquoted,
                (_, b'/') => Attr::Solidus,
                (Attr::Name | Attr::AfterName, b'=') => Attr::BeforeValue,
                (Attr::Name | Attr::AfterName, b) if is_space(b) => Attr::AfterName,
                (_, b) if is_space(b) => Attr::Before,
                _ => Attr::Name,
            };
        }
        self.at = bytes.len();
        None
    }
}

/// Where in a tag's attributes the tokenizer is.
#[derive(Clone, Copy, PartialEq)]
enum Attr {
    /// Before an attribute name (after the tag name, a space or a value).
    Before,
    Name,
    AfterName,
    BeforeValue,
    Quoted(u8),
    Unquoted,
    AfterQuoted,
    /// After a `/`: `>` makes the tag self-closing.
    Solidus,
}

/// HTML's white space.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        loop {
            let bytes = self.html.as_bytes();
            let at = self.at;
            match bytes.get(at..at + 2) {
                None if at >= bytes.len() => return None,
                Some([b'<', b]) if b.is_ascii_alphabetic() => {
                    if let Some(tag) = self.tag(at + 1, false) {
                        return Some(Token::Tag(tag));
                    }
                }
                Some(b"</") => match bytes.get(at + 2) {
                    Some(b) if b.is_ascii_alphabetic() => {
                        if let Some(tag) = self.tag(at + 2, true) {
                            return Some(Token::Tag(tag));
                        }
                    }
                    // `</>` is nothing; `</` and something else a bogus comment.
                    Some(b'>') => self.at = at + 3,
                    Some(_) => self.past(at + 2, b">"),
                    None => return Some(self.text(at + 1)),
                },
                // A comment ends at `-->`; `<!-->` and `<!--->` are empty ones.
                Some(b"<!") if bytes[at + 2..].starts_with(b"--") => self.past(at + 2, b"-->"),
                // A doctype, a CDATA section outside foreign content, `<?xml ...>`.
                Some(b"<!" | b"<?") => self.past(at + 2, b">"),
                _ => return Some(self.text(at + 1)),
            }
        }
    }
}

/// Text with its character references decoded, handed out in runs: `&amp;`, `&#38;`, `&#x26;`
/// and the named ones of HTML (with their `;`). What is not a reference stays as written.
pub fn decode(text: &str, mut out: impl FnMut(&str)) {
    /// The longest reference read (`&CounterClockwiseContourIntegral;` is 33 bytes).
    const LONGEST: usize = 40;
    let bytes = text.as_bytes();
    let mut done = 0;
    let mut reference = String::new();
    while let Some(i) = memchr(b'&', &bytes[done..]).map(|i| done + i) {
        let window = &bytes[i + 1..bytes.len().min(i + LONGEST)];
        let end = window
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'#'))
            .filter(|&n| n > 0 && window[n] == b';');
        let Some(n) = end else {
            out(&text[done..=i]);
            done = i + 1;
            continue;
        };
        out(&text[done..i]);
        reference.clear();
        mail_parser::decoders::html::add_html_token(&mut reference, &bytes[i..=i + 1 + n], false);
        out(&reference);
        done = i + n + 2;
    }
    out(&text[done..]);
}
