//! What the top of a mail's text says, for mails whose headers do not tell: a delivery failure
//! written as text by a gateway, a virus scanner or a carrier.
//!
//! The classifier runs on every mail, up to 25 MiB and written by attackers too, so these tests
//! read only the opening: at most [`OPENING_BYTES`] of the text, cut where a quoted or returned
//! mail begins. A failure must be stated in its first lines (notices say what they are at the
//! top; a person who mentions a failure further down is not read there), and only then is the
//! rest of the opening read, for the failed address and status. So every table is matched
//! against a short, bounded text.

/// The most of a text the body tests read.
const OPENING_BYTES: usize = 6 * 1024;

/// A delivery notice names the failure within its first lines (after a frame, a banner or a
/// line in the server's own language).
const BOUNCE_LINES: usize = 12;

/// Lines that begin a quoted, forwarded or returned mail (lower-case, as the line starts once
/// its frame of dashes or stars is trimmed).
const QUOTE_MARKERS: &[&str] = &[
    "original message",
    "ursprüngliche nachricht",
    "message d'origine",
    "mensaje original",
    "messaggio originale",
    "oorspronkelijk bericht",
    "mensagem original",
    "forwarded message",
    "begin forwarded message",
    "weitergeleitete nachricht",
    "below this line is a copy",
    "this is a copy of the message",
    "included is a copy of the message",
    "a copy of the original message",
    "returned message",
    "unsent message",
    "header of the source mail",
    "the header of the original message",
    "original message headers",
];

/// Ends of attribution lines ("On Monday, Anna wrote:").
const ATTRIBUTION_ENDS: &[&str] = &[
    "wrote:",
    "schrieb:",
    "a écrit :",
    "a écrit:",
    "escribió:",
    "ha scritto:",
    "schreef:",
    "escreveu:",
    "skrev:",
    "kirjoitti:",
    "napisał:",
    "napisała:",
    "написал:",
    "написала:",
];

/// What delivery notices say of the mail they return (lower-case): the phrasings of MTAs,
/// gateways, virus scanners, carriers and list servers. Read only in a mail from an automatic
/// sender (see `automatic_sender`), so plain words of failure are enough.
const BOUNCE_PHRASES: &[&str] = &[
    "could not be delivered",
    "couldn't be delivered",
    "cannot be delivered",
    "can't be delivered",
    "could not deliver",
    "unable to deliver",
    "wasn't able to deliver",
    "was not able to deliver",
    "not delivered to",
    "was not delivered",
    "were not delivered",
    "undeliverable",
    "delivery failed",
    "delivery failure",
    "delivery has failed",
    "delivery to the following",
    "did not reach the following",
    "failed permanently",
    "permanent fatal",
    "permanent error",
    "returned permanent errors",
    "trouble delivering",
    "not yet been delivered",
    "delivery has been delayed",
    "has been postponed",
    "mail delivery software",
    "delivery status notification",
    "qmail-send program",
    "the mail system at host",
    "transcript of session",
    "invalid final delivery",
    "non-delivery",
    "did not receive this message",
    "automatically rejected",
    "message from interscan",
    "your mail sent on:",
    // de, fr, es, it, nl, pt, ru, ja, zh
    "nicht zugestellt",
    "unzustellbar",
    "n'a pas pu être remis",
    "n'a pas pu etre delivre",
    "n'a pas pu être délivré",
    "no pudo ser entregado",
    "no se pudo entregar",
    "non è stato possibile recapitare",
    "impossibile recapitare",
    "kon niet worden afgeleverd",
    "não pôde ser entregue",
    "nao pode ser enviada",
    "не может быть доставлено",
    "не доставлено",
    "送信できませんでした",
    "配信できませんでした",
    "无法投递",
    "未能送达",
];

/// SMTP replies that refuse a mail for good or for now, as gateways quote them at a line's start.
const SMTP_REFUSALS: &[&str] = &[
    "421", "450", "451", "452", "550", "551", "552", "553", "554",
];

/// Words that say the failure is final, whatever the status code (qmail gives up on a 4.x.x).
const PERMANENT_PHRASES: &[&str] = &[
    "permanent error",
    "permanent failure",
    "permanent fatal",
    "failed permanently",
    "given up",
    "not going to try again",
    "will not try again",
    "won't try again",
];

/// Words of a delay notice: the mail is still being retried.
const DELAY_PHRASES: &[&str] = &[
    "delayed",
    "still being retried",
    "will retry",
    "will be retried",
    "will continue to try",
    "attempts will continue",
    "not yet been delivered",
    "warning only",
    "just a warning",
    "postponed",
    "temporar",
];

/// The top of a mail's text: at most [`OPENING_BYTES`], up to where a quoted or returned mail
/// begins. That end is looked for only as far as a test reads: most mails are a person's, and
/// their first lines are all the text tests need.
pub(super) struct Opening<'a> {
    head: &'a str,
    /// The head is the whole text.
    whole: bool,
}

impl<'a> Opening<'a> {
    pub(super) fn of(text: &'a str) -> Self {
        let head = &text[..text.floor_char_boundary(OPENING_BYTES)];
        Opening {
            head,
            whole: head.len() == text.len(),
        }
    }

    /// The opening's text, up to where a quote begins, and whether the mail's own words end
    /// within it (at a quote, or at the text's end).
    pub(super) fn text(&self) -> (&'a str, bool) {
        let mut end = 0;
        for line in self.head.split_inclusive('\n') {
            if starts_quote(line) {
                return (&self.head[..end], true);
            }
            end += line.len();
        }
        (self.head, self.whole)
    }

    /// The first `n` lines that say something before any quote, lower-case, without the
    /// frames notices draw around them (`****`, `----`, `####`, `|`).
    fn lines(&self, n: usize) -> impl Iterator<Item = String> + 'a {
        self.head
            .lines()
            .filter_map(|line| {
                let words = trim_frame(line);
                (!words.is_empty()).then(|| (line, lower(words)))
            })
            .take_while(|(line, lower)| !quote_line(line, lower))
            .map(|(_, lower)| lower)
            .take(n)
    }

    /// The phrase of a delivery failure among the first lines, if any.
    pub(super) fn bounce_phrase(&self) -> Option<&'static str> {
        self.lines(BOUNCE_LINES).find_map(|line| {
            BOUNCE_PHRASES
                .iter()
                .find(|p| line.contains(**p))
                .copied()
                .or_else(|| smtp_refusal(&line).then_some("an SMTP refusal"))
        })
    }

    /// Whether the text opens with a JSON object (a mail service's notification).
    pub(super) fn opens_json(&self) -> bool {
        self.head.trim_start().starts_with('{')
    }
}

/// Whether a bounce's text says the failure is final (`Some(true)`), a delay (`Some(false)`),
/// or neither.
pub(super) fn says_permanent(text: &str) -> Option<bool> {
    let lower = lower(text);
    if PERMANENT_PHRASES.iter().any(|p| lower.contains(p)) {
        Some(true)
    } else if DELAY_PHRASES.iter().any(|p| lower.contains(p)) {
        Some(false)
    } else {
        None
    }
}

/// Whether a line begins a quoted, forwarded or returned mail.
fn starts_quote(line: &str) -> bool {
    let words = trim_frame(line);
    !words.is_empty() && quote_line(line, &lower(words))
}

/// Whether a line (and its framed words, lower-case) begins a quoted, forwarded or returned
/// mail. A sendmail transcript's `>>> RCPT TO:` and a gateway's `> anna@acme.example` (a list of
/// failed addresses) are no quote.
fn quote_line(line: &str, lower: &str) -> bool {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix('>') {
        let rest = rest.trim();
        let lone_address = rest.contains('@') && !rest.contains(char::is_whitespace);
        return !line.starts_with(">>> ") && !lone_address;
    }
    lower.len() <= MARKER_LINE_BYTES
        && (starts_with_any(lower, QUOTE_MARKERS).is_some()
            || (lower.ends_with(':') && ATTRIBUTION_ENDS.iter().any(|e| lower.ends_with(e))))
}

/// The first of `table` that `text` starts with. The first byte is compared before the rest:
/// these tables are read for the first lines of every mail.
fn starts_with_any(text: &str, table: &[&'static str]) -> Option<&'static str> {
    let first = text.as_bytes().first()?;
    table
        .iter()
        .find(|p| p.as_bytes().first() == Some(first) && text.starts_with(**p))
        .copied()
}

/// Text in lower case, its typographic apostrophes plain (`I’m` is `i'm`). ASCII, the most
/// of it, takes the fast way.
fn lower(text: &str) -> String {
    if text.is_ascii() {
        text.to_ascii_lowercase()
    } else if text.contains('’') {
        text.replace('’', "'").to_lowercase()
    } else {
        text.to_lowercase()
    }
}

/// The longest line read as a quote marker: markers and attribution lines are short.
const MARKER_LINE_BYTES: usize = 200;

/// A line without the frame notices draw around their words (`****`, `----`, `####`, `|`).
fn trim_frame(line: &str) -> &str {
    line.trim_matches(|c: char| {
        c.is_whitespace() || matches!(c, '*' | '-' | '=' | '#' | '|' | '~' | '_')
    })
}

/// A line that starts with an SMTP refusal code ("550 5.1.1 ...", "550-...", "554 - ...").
fn smtp_refusal(line: &str) -> bool {
    let Some(code) = line.get(..3) else {
        return false;
    };
    SMTP_REFUSALS.contains(&code) && matches!(line.as_bytes().get(3), Some(b' ' | b'-') | None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_opening_stops_at_a_quote_and_at_its_size() {
        let o = Opening::of("I am away.\n\nOn Monday, Anna wrote:\n> hi\n");
        assert_eq!(o.text(), ("I am away.\n\n", true));
        assert_eq!(o.lines(5).collect::<Vec<_>>(), ["i am away."]);
        let long = "x".repeat(OPENING_BYTES + 10);
        let (text, complete) = Opening::of(&long).text();
        assert_eq!(text.len(), OPENING_BYTES);
        assert!(!complete);
        // A multi-byte character across the limit is not cut.
        let text = format!("{}é", "x".repeat(OPENING_BYTES - 1));
        assert!(Opening::of(&text).text().0.len() < OPENING_BYTES);
    }

    #[test]
    fn smtp_refusals_are_codes_at_a_line_start() {
        assert!(smtp_refusal("550 5.1.1 user unknown"));
        assert!(smtp_refusal("550-5.7.1 blocked"));
        assert!(smtp_refusal("554"));
        assert!(!smtp_refusal("500 users are affected"));
        assert!(!smtp_refusal("5501 items"));
        assert!(!smtp_refusal("55"));
    }

    /// The texts of every mail of the fixtures expected as `class`: the inbound fixtures, the
    /// labelled mails of the corpora, and for a person's the reply-extraction inputs too.
    fn texts_of(class: &str) -> Vec<(String, String)> {
        use crate::inbound::parse::parse;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let read = |p: &std::path::Path| std::fs::read(p).unwrap();
        let mut texts = Vec::new();
        for dir in std::fs::read_dir(root.join("inbound")).unwrap() {
            for f in std::fs::read_dir(dir.unwrap().path()).into_iter().flatten() {
                let path = f.unwrap().path();
                let toml = path.with_extension("toml");
                let expected = format!("class = \"{class}\"");
                let wanted = path.extension().is_some_and(|e| e == "eml")
                    && std::fs::read_to_string(&toml)
                        .is_ok_and(|t| t.lines().any(|l| l.trim() == expected));
                if wanted {
                    texts.push((path.display().to_string(), parse(&read(&path)).text));
                }
            }
        }
        for (dir, skip) in [("classify", 0), ("bounces", 1)] {
            let dir = root.join("corpora").join(dir);
            let labels = std::fs::read_to_string(dir.join("labels.tsv")).unwrap();
            for line in labels.lines().skip(skip) {
                let cols: Vec<&str> = line.split('\t').collect();
                if cols.get(1) == Some(&class) {
                    let raw = read(&dir.join("mails").join(cols[0]));
                    texts.push((cols[0].to_string(), parse(&raw).text));
                }
            }
        }
        if class != "person" {
            return texts;
        }
        let dir = root.join("corpora/reply-extraction");
        let index = std::fs::read_to_string(dir.join("cases.tsv")).unwrap();
        for line in index.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            let input = dir.join(cols[0]).join(cols[2]);
            let text = match cols[2] {
                "input.eml" => parse(&read(&input)).text,
                "input.txt" => String::from_utf8_lossy(&read(&input)).replace("\r\n", "\n"),
                _ => continue,
            };
            texts.push((cols[0].to_string(), text));
        }
        texts
    }

    #[test]
    fn no_persons_mail_of_the_fixtures_opens_with_a_notice() {
        let texts = texts_of("person");
        let mut failure_words = Vec::new();
        for (name, text) in &texts {
            // Words of failure alone (the classifier reads them only from automatic senders).
            if let Some(p) = Opening::of(text).bounce_phrase() {
                failure_words.push(format!("{name}: {p}"));
            }
        }
        println!(
            "{} person mails; failure words without the sender test: {failure_words:?}",
            texts.len()
        );
        assert!(texts.len() > 150, "the fixtures were not found");
    }
}
