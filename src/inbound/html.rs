//! HTML-only mails made readable: the quoted history is cut off where a mail client's quote
//! container starts, and the rest turned into text. Plain quotes (`<blockquote>`) come out as
//! `> ` lines, which the extractor removes like any quote.
//!
//! The text is written straight from the tokens ([`tokens`]), without building a document tree:
//! time and memory grow with the HTML's length, whatever its shape. (A tree builder checks the
//! open elements for every tag, so 100,000 nested `<div>` cost minutes, and a DOM takes
//! hundreds of times the HTML's size.) What a tree would add, such as closing a paragraph that
//! a list starts, does not change the text a person reads.

mod tokens;

use std::sync::LazyLock;

use tokens::{Token, Tokens};

/// Markers of the containers mail clients put the quoted mail in, and the separators before
/// them, by client. The HTML is cut at the tag holding the first one found.
const QUOTE_MARKERS: [&str; 16] = [
    // Gmail (web and apps)
    "class=\"gmail_quote",
    "class=gmail_quote",
    // Thunderbird: the attribution line, then <blockquote type="cite">
    "class=\"moz-cite-prefix",
    // Apple Mail, Thunderbird
    "type=\"cite\"",
    // Outlook on the web, new Outlook, Outlook for Mac
    "id=\"appendonsend\"",
    "id=\"divrplyfwdmsg\"",
    "id=\"x_divrplyfwdmsg\"",
    "id=\"mail-editor-reference-message-container\"",
    "class=\"outlookmessageheader\"",
    // Outlook desktop: the rule above the From:/Sent: block
    "border-top:solid #e1e1e1",
    "border-top:solid #b5c4df",
    // Hotmail / Windows Mail
    "id=\"stopspelling\"",
    // Yahoo
    "class=\"yahoo_quoted",
    // Proton, Zoho
    "class=\"protonmail_quote",
    "class=\"zmail_extra",
    "data-marker=\"__quoted_text__\"",
];

/// All markers in one case-insensitive search: one pass over the HTML, no lower-cased copy.
static QUOTE_FINDER: LazyLock<regex::bytes::Regex> = LazyLock::new(|| {
    let alternatives: Vec<String> = QUOTE_MARKERS.iter().map(|m| regex::escape(m)).collect();
    regex::bytes::RegexBuilder::new(&alternatives.join("|"))
        .case_insensitive(true)
        .unicode(false)
        .build()
        .expect("the quote markers form a valid pattern")
});

/// Where the quoted history starts in an HTML body (a byte offset into `html`), if anywhere.
pub fn quote_start(html: &str) -> Option<usize> {
    let at = QUOTE_FINDER.find(html.as_bytes())?.start();
    Some(html[..at].rfind('<').unwrap_or(at))
}

/// The new part of an HTML body as text, at most about `limit` bytes and `lines` lines of it;
/// and whether it was cut there. When the new part holds no text (a forward, a reply that only
/// quotes), the whole body is read instead: the quote is then all the mail says.
pub fn to_text(html: &str, limit: usize, lines: usize) -> (String, bool) {
    let Some(at) = quote_start(html) else {
        return convert(html, limit, lines);
    };
    let (text, cut) = convert(&html[..at], limit, lines);
    if text.trim().is_empty() {
        return convert(html, limit, lines);
    }
    (text, cut)
}

/// An HTML body as text, at most about `limit` bytes and `lines` lines of it.
fn convert(html: &str, limit: usize, lines: usize) -> (String, bool) {
    let mut text = Text {
        line_start: true,
        limit,
        lines_left: lines,
        ..Text::default()
    };
    let mut tokens = Tokens::new(html);
    while !text.cut {
        match tokens.next() {
            None => break,
            Some(Token::Text(t)) if !text.hidden => tokens::decode(t, |run| text.chars(run)),
            Some(Token::Text(_)) => {}
            Some(Token::Tag(tag)) => {
                if text.tag(tag.name(), !tag.end, tag.self_closing) {
                    tokens.skip_raw_text(tag.name());
                }
            }
        }
    }
    let cut = text.cut;
    (text.finish(), cut)
}

/// Quote levels written as `> ` at most; deeper ones are written as this many.
const MAX_QUOTE_PREFIX: usize = 16;

/// The text being written, and where in the HTML it is.
#[derive(Default)]
struct Text {
    out: String,
    /// Open `<blockquote>`s (unclosed ones too: only the prefix is capped).
    quotes: usize,
    /// Open `<pre>`s: white space is kept.
    pre: usize,
    /// Inside `<script>`, `<style>`, `<title>` or the like: nothing is written.
    hidden: bool,
    /// Line breaks wanted before the next text (1: a new line, 2: a blank line between).
    breaks: usize,
    /// The blank line wanted is inside a quote (it was asked for inside one, and still is).
    gap_quoted: bool,
    /// A space wanted before the next text.
    space: bool,
    /// Nothing written on the current line yet.
    line_start: bool,
    /// The open lists: numbered ones with their count so far (at most [`MAX_QUOTE_PREFIX`]).
    lists: Vec<Option<u32>>,
    /// A list item's mark, written before its first text.
    bullet: Option<String>,
    /// Bytes written at most, and lines; then the rest is left out.
    limit: usize,
    lines_left: usize,
    cut: bool,
}

impl Text {
    fn chars(&mut self, s: &str) {
        if self.hidden {
            return;
        }
        for c in s.chars() {
            match c {
                '\n' if self.pre > 0 => {
                    self.gap_quoted = self.quotes > 0;
                    self.newline();
                }
                c if c.is_whitespace() && c != '\u{a0}' && self.pre == 0 => {
                    self.space |= !self.line_start;
                }
                '\u{a0}' => self.write(' '),
                '\r' => {}
                c => self.write(c),
            }
        }
    }

    /// Writes a visible character, with the line breaks, quote marks and space wanted before it.
    fn write(&mut self, c: char) {
        if self.out.len() >= self.limit || self.lines_left < self.breaks {
            self.cut = true;
            return;
        }
        if !self.out.is_empty() {
            for _ in 0..self.breaks {
                self.newline();
            }
        }
        self.breaks = 0;
        if self.line_start {
            for _ in 0..self.quotes.min(MAX_QUOTE_PREFIX) {
                self.out.push_str("> ");
            }
            self.line_start = false;
            self.space = false;
        }
        if let Some(mark) = self.bullet.take() {
            self.out.push_str(&mark);
            self.out.push(' ');
        }
        if self.space {
            self.out.push(' ');
            self.space = false;
        }
        self.out.push(c);
    }

    fn newline(&mut self) {
        // Every line end counts, the ones of `<pre>` too.
        if self.lines_left == 0 || self.out.len() >= self.limit {
            self.cut = true;
            return;
        }
        let kept = self.out.trim_end_matches(' ').len();
        self.out.truncate(kept);
        if self.line_start && self.gap_quoted {
            // A blank line inside a quote is a quote line too.
            self.out.push('>');
        }
        self.out.push('\n');
        self.lines_left = self.lines_left.saturating_sub(1);
        self.line_start = true;
        self.space = false;
    }

    /// Asks for `n` line breaks before the next text (at most a blank line).
    fn want(&mut self, n: usize) {
        self.gap_quoted = self.quotes > 0 && (self.breaks == 0 || self.gap_quoted);
        self.breaks = self.breaks.max(n.min(2));
        self.space = false;
    }

    /// A start or end tag: the line breaks and marks it asks for. True for the start of a
    /// `<script>`, `<style>` or the like, whose content is no HTML and not shown.
    fn tag(&mut self, name: &str, start: bool, self_closing: bool) -> bool {
        match name {
            "script" | "style" | "title" | "textarea" | "xmp" | "iframe" | "noembed"
            | "noframes" | "noscript" | "template" => {
                self.hidden = start && !self_closing;
                return self.hidden;
            }
            // Each <br> ends a line; more than one in a row make one blank line.
            "br" => self.want(self.breaks + 1),
            // The blank lines around a quote are outside it.
            "blockquote" if start => {
                self.want(2);
                self.quotes += 1;
            }
            "blockquote" => {
                self.quotes = self.quotes.saturating_sub(1);
                self.want(2);
            }
            "pre" => {
                self.want(2);
                self.pre = if start {
                    self.pre + 1
                } else {
                    self.pre.saturating_sub(1)
                };
            }
            "ul" | "ol" => {
                self.want(2);
                if start && self.lists.len() < MAX_QUOTE_PREFIX {
                    self.lists.push((name == "ol").then_some(0));
                } else if !start {
                    self.lists.pop();
                }
            }
            "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "table" | "dl" | "hr" => self.want(2),
            "li" => {
                self.want(1);
                if start {
                    self.bullet = Some(match self.lists.last_mut() {
                        Some(Some(n)) => {
                            *n += 1;
                            format!("{n}.")
                        }
                        _ => "*".into(),
                    });
                }
            }
            "div" | "tr" | "dt" | "dd" | "section" | "article" | "header" | "footer" | "nav"
            | "aside" | "address" | "center" | "form" | "fieldset" | "figure" | "figcaption"
            | "main" | "caption" | "details" | "summary" | "option" | "legend" => self.want(1),
            "td" | "th" => self.space = !self.line_start,
            _ => {}
        }
        false
    }

    fn finish(self) -> String {
        let mut out = self.out;
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(html: &str) -> String {
        to_text(html, usize::MAX, usize::MAX).0
    }

    #[test]
    fn the_text_stops_at_its_limit() {
        let words = "<p>word</p>".repeat(10_000);
        let (text, cut) = to_text(&words, 100, 1000);
        assert!(
            cut && text.len() <= 100 && text.starts_with("word\n\nword"),
            "{text}"
        );
        let (text, cut) = to_text(&words, 1000, 4);
        assert!(cut && text == "word\n\nword\n\nword", "{text}");
        let (_, cut) = to_text("<p>short</p>", 100, 100);
        assert!(!cut);
        let pre = format!(
            "<blockquote><pre>{}</pre></blockquote>",
            "\n".repeat(100_000)
        );
        let (text, cut) = to_text(&pre, 1000, 50);
        assert!(
            cut && text.lines().count() <= 50 && text.len() <= 1000,
            "{}",
            text.len()
        );
    }

    #[test]
    fn gmail_quote_is_cut_and_text_kept() {
        let html = r#"<div dir="ltr">Yes, it is plugged in.<br><br>Anna</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Sun, Nov 22, 2026 at 10:15 AM Help &lt;support@helpdesk.example&gt; wrote:<br></div><blockquote class="gmail_quote">Is it plugged in?</blockquote></div>"#;
        let text = text_of(html);
        assert!(text.contains("Yes, it is plugged in."), "{text}");
        assert!(text.contains("Anna"));
        assert!(!text.contains("wrote:"), "{text}");
        assert!(!text.contains("Is it plugged in?"));
    }

    #[test]
    fn quote_markers_are_found_in_any_case() {
        let html = r#"<p>Done.</p><DIV ID="divRplyFwdMsg">From: Help</DIV>"#;
        assert_eq!(quote_start(html), Some(html.find("<DIV").unwrap()));
        assert_eq!(quote_start("<p>no quote</p>"), None);
    }

    #[test]
    fn a_mail_that_only_forwards_or_quotes_is_read_whole() {
        let forward = r#"<div dir="ltr"><br><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">---------- Forwarded message ---------<br>From: Vendor &lt;v@x.example&gt;<br></div>The error is E42.</div></div>"#;
        let text = text_of(forward);
        assert!(
            text.contains("Forwarded message") && text.contains("E42"),
            "{text}"
        );
    }

    #[test]
    fn outlook_web_separator_is_cut() {
        let html = r#"<div>Done.</div><div id="appendonsend"></div><hr><div id="divRplyFwdMsg"><b>From:</b> Help</div><div>old</div>"#;
        assert_eq!(text_of(html).trim(), "Done.");
    }

    #[test]
    fn plain_blockquotes_become_quote_lines() {
        let text =
            text_of("<p>Answer</p><blockquote><p>question</p><p>more</p></blockquote><p>Anna</p>");
        assert_eq!(text, "Answer\n\n> question\n>\n> more\n\nAnna");
    }

    #[test]
    fn blocks_breaks_entities_and_white_space() {
        let html = "<html><head><title>T</title><style>p {color: red}</style></head><body>\n\
            <p>Hello   <b>Anna</b>,</p>\n<div>line one<br>line&nbsp;two</div>\
            <ul><li>first</li><li><p>second</p></li></ul><ol><li>one<li>two</ol><p>Fish &amp; chips &lt;3</p>\
            <script>alert('x')</script><pre>  keep\n   this</pre></body></html>";
        assert_eq!(
            text_of(html),
            "Hello Anna,\n\nline one\nline two\n\n* first\n\n* second\n\n1. one\n2. two\n\nFish & chips <3\n\n  keep\n   this"
        );
    }

    #[test]
    fn deep_or_unclosed_nesting_costs_no_more_than_its_length() {
        let deep = format!("{}x{}", "<div>".repeat(100_000), "</div>".repeat(100_000));
        assert_eq!(text_of(&deep), "x");
        let quotes = format!("{}x", "<blockquote>".repeat(100_000));
        assert_eq!(text_of(&quotes), "> ".repeat(MAX_QUOTE_PREFIX) + "x");
        let breaks = format!("a{}b", "<br>".repeat(100_000));
        assert_eq!(text_of(&breaks), "a\n\nb");
    }

    #[test]
    fn a_tag_of_many_attributes_costs_its_length() {
        // One tag of 200,000 attributes, each one new: a tokenizer that checks each attribute
        // against the tag's others takes minutes on it.
        let attributes: String = (0..200_000).map(|i| format!(" a{i}=\"v\"")).collect();
        let html = format!("<p{attributes}>Hello</p><p title=\"x>y\" class=gmail_x>Anna</p>");
        assert_eq!(text_of(&html), "Hello\n\nAnna");
    }

    #[test]
    fn raw_text_ends_at_its_own_end_tag_only() {
        let html = "<script>if (a < b) { x = '</p>'; }</script><p>Text</p>\
            <TITLE>T</TITLE><textarea>&lt;kept out&gt;</textarea><p>More &amp; more</p>\
            <style/><p>after a self-closed style</p><!-- <p>a comment</p> --><!---->\
            <p>&#x41;&#66;&eacute;&bogus; &amp &#xZZ; AT&T 3 < 4</p>";
        assert_eq!(
            text_of(html),
            "Text\n\nMore & more\n\nafter a self-closed style\n\nABé&bogus; &amp &#xZZ; AT&T 3 < 4"
        );
    }
}
