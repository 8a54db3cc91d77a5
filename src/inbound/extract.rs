//! Stage 5: the new text of a reply. Quoted history goes (`>` lines, the attribution line above
//! them in a dozen languages, also when the client wrapped it over two or three lines, Outlook's
//! separator and header block with the unquoted original below it), and so do signatures (`-- `
//! and everything after it) and mobile sign-offs ("Sent from my iPhone" and its translations).
//! A short sign-off the person wrote ("Thanks, Anna") stays: it is part of what they said.
//!
//! Top-posting, bottom-posting and interleaved answers are told apart by whether unquoted text
//! follows the quote: an attribution line with only quote after it starts the history (cut
//! there); one with answers after it is dropped, and so are the quoted lines, and the answers
//! stay in order.
//!
//! A mail the person forwards below their answer ("---------- Forwarded message ---------",
//! "Begin forwarded message:" and their translations) is something they bring to the help desk
//! (a vendor's error message, a colleague's mail), not the ticket's history: it stays, from its
//! separator line on and as it was written (Apple Mail's `>` marks too), and only the reply
//! history within it goes. A mail that is only a forward keeps it; a forward below the start of
//! the quoted history goes with the history. Outlook forwards without a separator line, with
//! the header block of a reply: those go as history.
//!
//! Invisible characters that web-mail clients add (zero-width spaces and joiners, BOMs, soft
//! hyphens, Gmail's tracking mark) go from the ends of lines, so that a line of them is blank;
//! the tests of words ignore them anywhere. The visible text is kept as it was written.
//!
//! Works line by line with plain string tests, cheap ones first, in time proportional to the
//! body's length: it runs on every mail, and anyone can write the body.

use serde::Serialize;

/// The new text and what was taken away.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Extracted {
    pub text: String,
    /// What was removed, in words (`quoted history from line 7 ("On ... wrote:")`, ...), and
    /// where a forwarded mail was kept.
    pub removed: Vec<String>,
}

/// Words that end an attribution line ("On ..., X wrote:"), lower-case, colon excluded.
const WROTE: [&str; 27] = [
    "wrote",
    "writes",
    "schrieb",
    "a écrit",
    "escribió",
    "ha scritto",
    "schreef",
    "escreveu",
    "napisał",
    "napisała",
    "napisał(a)",
    "pisze",
    "skrev",
    "kirjoitti",
    "пишет",
    "пише",
    "написал",
    "написал(а)",
    "написав",
    "написала",
    "写道",
    "a scris",
    "yazdı",
    "geschreven",
    "đã viết",
    "sent",
    "kirjutas",
];

/// Words that start an attribution line.
const ATTRIBUTION_START: [&str; 14] = [
    "on ", "am ", "le ", "el ", "il ", "op ", "em ", "w dniu ", "dnia ", "den ", "d. ", "pada ",
    "в ", "às ",
];

/// Separator lines above a quoted original (without their dashes), lower-case.
const SEPARATORS: [&str; 18] = [
    "original message",
    "original-nachricht",
    "original nachricht",
    "ursprüngliche nachricht",
    "message d'origine",
    "message original",
    "mensaje original",
    "messaggio originale",
    "oorspronkelijk bericht",
    "origineel bericht",
    "mensagem original",
    "originalmeddelande",
    "oprindelig meddelelse",
    "opprinnelig melding",
    "alkuperäinen viesti",
    "wiadomość oryginalna",
    "исходное сообщение",
    "původní zpráva",
];

/// Separator lines above a forwarded mail (without their dashes), lower-case: Gmail,
/// Thunderbird, Yahoo in their languages.
const FORWARDED: [&str; 15] = [
    "forwarded message",
    "weitergeleitete nachricht",
    "message transféré",
    "mensaje reenviado",
    "messaggio inoltrato",
    "doorgestuurd bericht",
    "mensagem encaminhada",
    "przekazana wiadomość",
    "пересылаемое сообщение",
    "переслане повідомлення",
    "vidarebefordrat meddelande",
    "videresendt meddelelse",
    "videresendt melding",
    "välitetty viesti",
    "přeposlaná zpráva",
];

/// How Lotus Notes' forward separator begins ("----- Forwarded by Some One/Acme on ... -----").
const FORWARDED_BY: [&str; 2] = ["forwarded by ", "weitergeleitet von "];

/// Lines that start a forwarded mail on their own (Apple Mail), lower-case, colon excluded.
const FORWARD_STARTS: [&str; 8] = [
    "begin forwarded message",
    "anfang der weitergeleiteten nachricht",
    "début du message réexpédié",
    "inicio del mensaje reenviado",
    "inizio messaggio inoltrato",
    "begin doorgestuurd bericht",
    "início da mensagem reencaminhada",
    "начало переадресованного сообщения",
];

/// The first key of an Outlook-style header block ("From:", "Von:", "De :", ...).
const FROM_KEYS: [&str; 17] = [
    "from",
    "von",
    "de",
    "da",
    "van",
    "od",
    "från",
    "fra",
    "lähettäjä",
    "от",
    "发件人",
    "寄件者",
    "差出人",
    "afzender",
    "expéditeur",
    "remitente",
    "kimden",
];

/// The other keys of such a block.
const HEADER_KEYS: [&str; 45] = [
    "sent",
    "date",
    "to",
    "cc",
    "subject",
    "gesendet",
    "datum",
    "an",
    "betreff",
    "envoyé",
    "date d'envoi",
    "à",
    "a",
    "objet",
    "enviado",
    "enviado el",
    "enviada em",
    "fecha",
    "para",
    "asunto",
    "assunto",
    "inviato",
    "data",
    "oggetto",
    "verzonden",
    "aan",
    "onderwerp",
    "wysłano",
    "do",
    "temat",
    "skickat",
    "till",
    "ämne",
    "sendt",
    "til",
    "emne",
    "lähetetty",
    "aihe",
    "отправлено",
    "кому",
    "тема",
    "sujet",
    "copie à",
    "message du",
    "reply-to",
];

/// Mobile and web-mail sign-offs that say nothing of the person (lower-case line starts).
const SENT_FROM: [&str; 33] = [
    "sent from ",
    "sent from my",
    "sent from outlook",
    "sent from mail for windows",
    "sent from yahoo mail",
    "sent from samsung",
    "sent from the all new aol app",
    "sent via ",
    "sent with ",
    "get outlook for",
    "von meinem",
    "gesendet von",
    "gesendet mit",
    "holen sie sich outlook",
    "envoyé de mon",
    "envoyé depuis",
    "envoyé à partir de",
    "envoyé avec",
    "télécharger outlook",
    "enviado desde mi",
    "enviado desde",
    "enviado do meu",
    "enviado de meu",
    "obtener outlook",
    "inviato da",
    "inviato dal mio",
    "scarica outlook",
    "verzonden vanaf",
    "verzonden met",
    "verstuurd vanaf",
    "wysłane z",
    "skickat från",
    "sendt fra",
];

/// The new text of a reply.
pub fn extract(body: &str) -> Extracted {
    let lines: Vec<&str> = body.lines().map(clean_line).collect();
    let mut kept: Vec<&str> = Vec::with_capacity(lines.len());
    let mut removed = Vec::new();
    let mut next = Some(Part {
        start: 0,
        depth: 0,
        answer: true,
    });
    while let Some(part) = next {
        next = read_part(&lines, part, &mut kept, &mut removed);
    }
    Extracted {
        text: tidy(&kept),
        removed,
    }
}

/// A stretch of the body read on its own: the person's answer, or the body of a mail they
/// forwarded (below its separator and header lines). Apple Mail quotes a forwarded mail as a
/// whole: its lines are read with `depth` quote marks taken off, and it ends at the first line
/// quoted less.
#[derive(Debug, Clone, Copy)]
struct Part {
    start: usize,
    depth: usize,
    /// What the person wrote: their signature and sign-off go. A forwarded mail is kept as it
    /// was written, but for the reply history in it.
    answer: bool,
}

/// Where the text of a part ends without a `>`.
enum Boundary {
    /// The reply history starts here (a separator, Outlook's rule or header block, the
    /// person's mobile sign-off).
    History(usize, &'static str),
    /// A forwarded mail starts here.
    Forward(usize),
}

/// Reads one part of the body into `kept`; returns the part after it.
fn read_part<'a>(
    lines: &[&'a str],
    part: Part,
    kept: &mut Vec<&'a str>,
    removed: &mut Vec<String>,
) -> Option<Part> {
    let limit = part_end(lines, part);
    let written = &lines[part.start..limit];
    let (mut view, forward) = text_lines(written, part, removed);
    let mut keep = vec![true; view.len()];
    let forward = match attributions(&mut view, &mut keep, part.start, removed) {
        // A forward below the start of the history is part of that history.
        Some(cut) => {
            view.truncate(cut);
            keep.truncate(cut);
            None
        }
        None => forward,
    };
    remove_quotes(&view, &mut keep, removed);
    let mut text = kept_lines(written, part.depth, &view, &keep);
    if part.answer {
        remove_signature(&mut text, removed);
    } else {
        // A quoted forwarded mail's last blank lines are bare quote marks.
        while text
            .last()
            .is_some_and(|l| *l == GAP || quoting(l).1.is_empty())
        {
            text.pop();
        }
    }
    kept.append(&mut text);
    match forward {
        Some(at) => Some(keep_forward_head(lines, part.start + at, kept, removed)),
        // After a forwarded mail quoted as a whole, the person may have written more.
        None => (limit < lines.len()).then_some(Part {
            start: limit,
            depth: 0,
            answer: true,
        }),
    }
}

/// Step 1: a part's lines (without their quote marks) up to where its text ends without a
/// `>`, and whether a forwarded mail starts there (the line after the last one).
fn text_lines<'a>(
    written: &[&'a str],
    part: Part,
    removed: &mut Vec<String>,
) -> (Vec<&'a str>, Option<usize>) {
    // A forward within a quoted forwarded mail stays part of it: so each line is read once.
    let forwards = part.depth == 0;
    let mut view: Vec<&'a str> = if forwards {
        Vec::new()
    } else {
        written.iter().map(|l| unquote(l, part.depth)).collect()
    };
    let scanned = if forwards { written } else { &view[..] };
    let (end, forward) = match first_boundary(scanned, part.answer, forwards) {
        // Everything after it is the original.
        Some(Boundary::History(at, what)) => {
            removed.push(format!(
                "quoted history from line {} ({what})",
                part.start + at + 1
            ));
            (at, None)
        }
        Some(Boundary::Forward(at)) => (at, Some(at)),
        None => (written.len(), None),
    };
    if forwards {
        view = written[..end].to_vec();
    } else {
        view.truncate(end);
    }
    (view, forward)
}

/// The lines kept, as they were written; removed ones leave a gap (at most one blank line
/// where they were).
fn kept_lines<'a>(written: &[&'a str], depth: usize, view: &[&str], keep: &[bool]) -> Vec<&'a str> {
    let mut text: Vec<&'a str> = Vec::with_capacity(view.len());
    for (k, line) in view.iter().enumerate() {
        if keep[k] {
            text.push(as_written(written[k], depth, line));
        } else if text.last() != Some(&GAP) {
            text.push(GAP);
        }
    }
    text
}

/// Where a part ends: at the end of the body, or for a forwarded mail quoted as a whole at
/// its first line with text that is quoted less.
fn part_end(lines: &[&str], part: Part) -> usize {
    if part.depth == 0 {
        return lines.len();
    }
    (part.start..lines.len())
        .find(|&k| {
            let (depth, text) = quoting(lines[k]);
            depth < part.depth && !text.is_empty()
        })
        .unwrap_or(lines.len())
}

/// How deep a line is quoted ("> > x" and ">> x" are two) and its text after the marks.
fn quoting(line: &str) -> (usize, &str) {
    let mut depth = 0;
    let mut rest = line.trim_start();
    while let Some(r) = rest.strip_prefix('>') {
        depth += 1;
        rest = r.trim_start();
    }
    (depth, rest)
}

/// The line with `depth` quote marks (and the space after the last one) taken off.
fn unquote(line: &str, depth: usize) -> &str {
    let mut rest = line;
    for _ in 0..depth {
        match rest.trim_start().strip_prefix('>') {
            Some(r) => rest = r,
            None => return rest,
        }
    }
    if depth > 0 {
        rest.strip_prefix(' ').unwrap_or(rest)
    } else {
        rest
    }
}

/// The written line for what is left of its `view` (its quote marks taken off, an attribution
/// cut from its end).
fn as_written<'a>(written: &'a str, depth: usize, view: &str) -> &'a str {
    let whole = unquote(written, depth);
    &written[..written.len() - (whole.len() - view.len())]
}

/// Step 1: the first boundary of a part, looking at forward separators when `forwards`; the
/// person's mobile sign-off is one when `answer`.
fn first_boundary(lines: &[&str], answer: bool, forwards: bool) -> Option<Boundary> {
    let mut filled_above = false;
    for i in 0..lines.len() {
        let t = lines[i].trim();
        // Quoted lines are removed anyway: they never start the history or a forward.
        if t.is_empty() || t.starts_with('>') {
            continue;
        }
        if forwards && is_forward_marker(t) {
            return Some(Boundary::Forward(i));
        }
        if let Some((at, what)) = hard_cut(lines, i) {
            return Some(Boundary::History(at, what));
        }
        // A mobile sign-off ends what the person wrote; below it is the original (or nothing),
        // unless it is a mail they forward.
        if answer
            && filled_above
            && is_sent_from(t)
            && !(forwards
                && next_filled(lines, i + 1).is_some_and(|k| is_forward_marker(lines[k].trim())))
        {
            return Some(Boundary::History(i, "a mobile sign-off"));
        }
        filled_above = true;
    }
    None
}

/// Keeps a forwarded mail's separator line and its header lines (From:, Date:, Subject:, To:,
/// a wrapped value too) as they were written; returns the part of its body.
fn keep_forward_head<'a>(
    lines: &[&'a str],
    at: usize,
    kept: &mut Vec<&'a str>,
    removed: &mut Vec<String>,
) -> Part {
    removed.push(format!(
        "forwarded mail from line {} kept ({})",
        at + 1,
        shorten(lines[at])
    ));
    // One blank line between it and the answer above.
    kept.push(GAP);
    kept.push(lines[at]);
    let body = Part {
        start: at + 1,
        depth: 0,
        answer: false,
    };
    let Some(first) = (at + 1..lines.len()).find(|&k| !quoting(lines[k]).1.is_empty()) else {
        return body;
    };
    let depth = quoting(lines[first]).0;
    if plain_key(unquote(lines[first], depth)).is_none() {
        return Part { depth, ..body };
    }
    // The header lines run to the first blank line.
    let mut end = first;
    while end < lines.len() && quoting(lines[end]).0 >= depth {
        let line = unquote(lines[end], depth);
        if line.trim().is_empty() || is_quoted(line) {
            break;
        }
        end += 1;
    }
    kept.extend_from_slice(&lines[at + 1..end]);
    Part {
        start: end,
        depth,
        answer: false,
    }
}

/// Step 2: attribution lines. One with only quote after it starts the history: where it does
/// is returned. One with answers after it (bottom-posting, interleaved answers) is dropped.
/// `first` is the number of the first line, for the notes.
fn attributions(
    lines: &mut [&str],
    keep: &mut [bool],
    first: usize,
    removed: &mut Vec<String>,
) -> Option<usize> {
    let mut i = 0;
    while i < lines.len() {
        // Quoted and blank lines never hold one. (A quoted line taken for "answer On ... wrote:"
        // scanned all the quote after it, and the next one again: quadratic.)
        if is_quoted(lines[i]) || lines[i].trim().is_empty() {
            i += 1;
            continue;
        }
        let found = attribution(lines, i).or_else(|| {
            // "reply On ..., X wrote:": the answer and the attribution share a line.
            let at = embedded_attribution(lines[i])?;
            lines[i] = lines[i][..at].trim_end();
            Some(0)
        });
        let Some(span) = found else {
            i += 1;
            continue;
        };
        let start = if span == 0 { i + 1 } else { i };
        let after = i + span.max(1);
        if has_answer_after(&lines[after..]) {
            keep[start..after].fill(false);
            removed.push(format!("attribution line {}", first + i + 1));
            i = after;
            continue;
        }
        removed.push(format!(
            "quoted history from line {} ({})",
            first + i + 1,
            shorten(lines[i])
        ));
        return Some(start);
    }
    None
}

/// Step 3: quoted lines, and the lines a client's wrapping broke off a quoted one; and the
/// placeholders Outlook leaves for inline images (`[cid:image001.png@...]`).
fn remove_quotes(lines: &[&str], keep: &mut [bool], removed: &mut Vec<String>) {
    let mut quoted = 0;
    for (n, line) in lines.iter().enumerate() {
        if is_image_placeholder(line) {
            keep[n] = false;
            continue;
        }
        let continuation = n > 0
            && !keep[n - 1]
            && is_quoted(lines[n - 1])
            && line
                .trim_start()
                .chars()
                .next()
                .is_some_and(|c| c.is_lowercase() || matches!(c, '"' | '(' | '_'));
        if is_quoted(line) || continuation {
            keep[n] = false;
            quoted += 1;
        }
    }
    if quoted > 0 {
        removed.push(format!("{quoted} quoted lines"));
    }
}

/// Stands for removed lines in the kept text (never a line of a real mail: it holds NUL).
const GAP: &str = "\u{0}gap";

fn is_blank(line: &str) -> bool {
    line == GAP || line.trim().is_empty()
}

/// Characters nobody sees that web-mail clients put at line ends, on blank lines or between
/// letters: zero-width space, non-joiner and joiner, word joiner, BOM, soft hyphen.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{AD}'
    )
}

/// The mark Gmail's tracking add-ons append (U+1427, a dot). In Canadian syllabics it is a
/// letter (the final w-dot), so it goes only where it does not follow a syllable.
const TRACKING_MARK: char = '\u{1427}';

fn is_syllabic(c: char) -> bool {
    matches!(c, '\u{1400}'..='\u{167F}' | '\u{18B0}'..='\u{18FF}')
}

/// A line without the white space and invisible characters at its end and the invisible ones at
/// its start: a line of them is blank, and they hide no signature delimiter, sign-off or
/// attribution. Those inside the text stay (a joiner inside an emoji is part of it).
fn clean_line(line: &str) -> &str {
    let mut t = line.trim_start_matches(is_invisible);
    while let Some(c) = t.chars().next_back() {
        let rest = &t[..t.len() - c.len_utf8()];
        let drop = c.is_whitespace()
            || is_invisible(c)
            || (c == TRACKING_MARK && !rest.chars().next_back().is_some_and(is_syllabic));
        if !drop {
            break;
        }
        t = rest;
    }
    t
}

/// Lower case without the invisible characters, for the tests of words.
fn folded(text: &str) -> String {
    if !text.contains(is_invisible) {
        return text.to_lowercase();
    }
    text.chars()
        .filter(|c| !is_invisible(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Only the signature goes: for the first mail of a ticket, whose quoted or forwarded part is
/// part of the request.
pub fn strip_signature(body: &str) -> Extracted {
    let mut lines: Vec<&str> = body.lines().map(clean_line).collect();
    let mut removed = Vec::new();
    // A forwarded mail below is part of the request, its signature too.
    let forward = lines.iter().position(|l| is_forward_marker(l.trim()));
    let mut forwarded = lines.split_off(forward.unwrap_or(lines.len()));
    remove_signature(&mut lines, &mut removed);
    if !forwarded.is_empty() {
        lines.push(GAP);
        lines.append(&mut forwarded);
    }
    Extracted {
        text: tidy(&lines),
        removed,
    }
}

fn shorten(line: &str) -> String {
    let t = line.trim();
    if t.chars().count() > 40 {
        format!("{}...", t.chars().take(40).collect::<String>())
    } else {
        t.to_string()
    }
}

fn is_image_placeholder(line: &str) -> bool {
    let t = line.trim();
    t.starts_with("[cid:") && t.ends_with(']') && !t.contains(' ')
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// True when, after a quote, the person wrote more (not only blank lines, quotes or a
/// signature).
fn has_answer_after(rest: &[&str]) -> bool {
    let mut seen_quote = false;
    for line in rest {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if is_quoted(line) {
            seen_quote = true;
            continue;
        }
        if t == "--" || is_sent_from(t) {
            return false;
        }
        // Unquoted text straight after the attribution (no quote in between) is the original
        // quoted without `>` (some clients): history, not an answer.
        return seen_quote;
    }
    false
}

/// Lower-cases and strips the bold or decoration marks some clients put around keys.
fn plain_key(line: &str) -> Option<(String, &str)> {
    let t = line.trim_start_matches(|c: char| c == '*' || c == '_' || c.is_whitespace());
    // Keys are short: the colon is looked for among the first bytes only.
    let colon = t[..t.floor_char_boundary(44)].find([':', '：'])?;
    if colon == 0 || colon > 40 {
        return None;
    }
    let key =
        folded(t[..colon].trim_end_matches(|c: char| c == '*' || c == '_' || c.is_whitespace()));
    let value = t[colon..].trim_start_matches([':', '：']);
    let value = value.trim_start_matches(|c: char| c == '*' || c.is_whitespace());
    Some((key, value))
}

/// A line of only rule characters (`-----`, `_____`, `=====`, `*****`).
fn is_rule(t: &str) -> bool {
    t.len() >= 3
        && t.chars()
            .all(|c| matches!(c, '-' | '_' | '=' | '*' | '—' | '–'))
}

/// Does the history start at line `i` without a `>` (a separator, Outlook's rule or header
/// block)? Returns where (a rule or header lines just above belong to it) and what it is.
fn hard_cut(lines: &[&str], i: usize) -> Option<(usize, &'static str)> {
    let t = lines[i].trim();
    if is_separator(t) {
        return Some((i, "an original-message separator"));
    }
    // Outlook's rule: underscores only, then a header block.
    if t.starts_with("____") && is_rule(t) && header_block_at(lines, next_filled(lines, i + 1)) {
        return Some((i, "a rule above a From: block"));
    }
    if header_block_at(lines, Some(i)) {
        // A rule or header lines ("Date:", "Message du :") just above belong to the block.
        let mut start = i;
        while start > 0 {
            let above = lines[start - 1].trim();
            if is_rule(above) || (!above.is_empty() && plain_key(above).is_some()) {
                start -= 1;
            } else {
                break;
            }
        }
        return Some((start, "a From: block"));
    }
    None
}

/// A separator line's dashes and its words, lower-case ("-----Original Message-----" gives
/// "original message"). Thunderbird's HTML part turned into text has emphasis marks around it
/// ("*-------- Original Message --------*", "_-------- Original-Nachricht --------_").
fn separator(t: &str) -> Option<(&str, String)> {
    if t.len() > 200 {
        return None;
    }
    let bare = t.trim_matches(['*', '_']);
    // "____Original Message____" is a separator of underscores, not one in emphasis marks.
    let line = if bare.starts_with('-') { bare } else { t };
    if !(line.starts_with("--") || line.starts_with("__")) {
        return None;
    }
    let words = line.trim_matches(|c: char| c == '-' || c == '_' || c.is_whitespace());
    (!words.is_empty()).then(|| (line, folded(words)))
}

/// The line above a quoted original: "-----Original Message-----", "-------- Oprindelig besked
/// --------", "--- Reply Message ---" (a few words between dashes), "__Original Message__".
fn is_separator(t: &str) -> bool {
    let Some((line, words)) = separator(t) else {
        return false;
    };
    let dashed = line.starts_with("---")
        && line.ends_with("---")
        && !line.contains('@')
        && (1..=6).contains(&words.split_whitespace().count());
    dashed || SEPARATORS.contains(&words.as_str())
}

/// The line that starts a forwarded mail: "---------- Forwarded message ---------",
/// "-------- Message transféré --------", Apple Mail's "Begin forwarded message:".
fn is_forward_marker(t: &str) -> bool {
    if let Some((_, words)) = separator(t) {
        return FORWARDED.contains(&words.as_str())
            || FORWARDED_BY.iter().any(|p| words.starts_with(p));
    }
    let Some(words) = t.strip_suffix([':', '：']) else {
        return false;
    };
    t.len() <= 80 && FORWARD_STARTS.contains(&folded(words.trim_end()).as_str())
}

fn next_filled(lines: &[&str], from: usize) -> Option<usize> {
    (from..lines.len()).find(|&k| !lines[k].trim().is_empty())
}

/// Keys that start a header block besides From (some clients put the date first).
const DATE_KEYS: [&str; 8] = [
    "date",
    "sent",
    "gesendet",
    "datum",
    "envoyé",
    "enviado",
    "verzonden",
    "skickat",
];

/// A header block at `i`: a From: (or Date:/Sent:) line followed closely by more header lines.
fn header_block_at(lines: &[&str], i: Option<usize>) -> bool {
    let Some(i) = i else { return false };
    let Some((key, value)) = plain_key(lines[i]) else {
        return false;
    };
    let from = FROM_KEYS.contains(&key.as_str());
    if !(from || DATE_KEYS.contains(&key.as_str())) || value.trim().is_empty() {
        return false;
    }
    let mut others = 0;
    let mut dated = !from;
    let mut addressed = value.contains('@');
    for l in lines[i + 1..].iter().take(6) {
        if let Some((k, v)) = plain_key(l)
            && (HEADER_KEYS.contains(&k.as_str()) || FROM_KEYS.contains(&k.as_str()))
        {
            others += 1;
            dated |= DATE_KEYS.contains(&k.as_str());
            addressed |= v.contains('@');
        }
    }
    // A From: or Date: line with one more header line is a block when an address or a date is
    // in it; otherwise it takes two more header lines.
    others >= 2 || (others >= 1 && (addressed || (dated && from)))
}

/// Does a line begin the way attribution lines do ("On ...", "Am ...", a date)?
fn starts_like_attribution(line: &str) -> bool {
    let t = line.trim_start_matches(|c: char| c == '-' || c.is_whitespace());
    ATTRIBUTION_START.iter().any(|s| starts_folded(t, s))
        || t.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// Does `text` start with `prefix` (lower-case), in any case and with invisible characters
/// anywhere? Compares no more of `text` than `prefix` is long.
fn starts_folded(text: &str, prefix: &str) -> bool {
    // An ASCII beginning is compared at once: the invisible characters are not ASCII, and an
    // ASCII letter's lower case is ASCII. Most lines differ at the first letter.
    if let Some(head) = text.as_bytes().get(..prefix.len())
        && head.is_ascii()
    {
        return head.eq_ignore_ascii_case(prefix.as_bytes());
    }
    if let (Some(t), Some(p)) = (text.bytes().next(), prefix.bytes().next())
        && t.is_ascii()
        && p.is_ascii()
        && t.to_ascii_lowercase() != p
    {
        return false;
    }
    let mut chars = text
        .chars()
        .filter(|c| !is_invisible(*c))
        .flat_map(char::to_lowercase);
    prefix.chars().all(|p| chars.next() == Some(p))
}

/// An attribution line at `i` (possibly wrapped over the next one or two); its length in lines.
fn attribution(lines: &[&str], i: usize) -> Option<usize> {
    let first = lines[i].trim();
    if first.is_empty() || is_quoted(first) {
        return None;
    }
    let strong = starts_like_attribution(first);
    if !strong && embedded_attribution(first).is_some() {
        return None;
    }
    if is_attribution(first) {
        return Some(1);
    }
    let span = (2..=3).find(|&span| is_wrapped_attribution(lines, i, span))?;
    // One that does not start like an attribution (a long name first) must not take in the
    // last line of the answer just above it: a later line that can start one wins.
    let later = (1..span)
        .any(|d| may_start_wrapped(lines[i + d]) && is_wrapped_attribution(lines, i + d, span - d));
    (strong || !later).then_some(span)
}

/// Are lines `i..i + span` one attribution that the client wrapped?
fn is_wrapped_attribution(lines: &[&str], i: usize, span: usize) -> bool {
    let Some(part) = lines.get(i..i + span) else {
        return false;
    };
    // Cheap first: how the last line ends, and the length (a line may be megabytes long).
    if !may_be_attribution(part[span - 1]) || part.iter().map(|l| l.len() + 1).sum::<usize>() > 301
    {
        return false;
    }
    let mut joined = String::with_capacity(301);
    for (k, line) in part.iter().enumerate() {
        let t = line.trim();
        // Gmail wraps "... <address" / ">:" with the `>` at the start of the next line.
        if t.is_empty() || (is_quoted(t) && !(k > 0 && t == ">:")) {
            return false;
        }
        if k > 0 {
            joined.push(' ');
        }
        joined.push_str(t);
    }
    is_attribution(&joined)
}

/// Can a wrapped attribution start with this line? Not when it carries on one with the rest of
/// an address ("<x@example.com> wrote:", "support@example.com> wrote:").
fn may_start_wrapped(line: &str) -> bool {
    let t = line.trim();
    !t.starts_with(['<', '>']) && !t.split_whitespace().next().is_some_and(|w| w.contains('@'))
}

/// Where an attribution starts inside a line that begins with the answer ("reply On ...,
/// X wrote:").
fn embedded_attribution(line: &str) -> Option<usize> {
    if !may_be_attribution(line) || starts_like_attribution(line) {
        return None;
    }
    // ASCII lower-casing keeps the byte offsets of `line` (full lower-casing changes the length
    // of some letters: "İ" becomes three bytes), and the markers are ASCII.
    let lower = line.to_ascii_lowercase();
    for marker in [" on ", "--- on ", "-- on "] {
        if let Some(at) = lower.find(marker)
            && at > 0
        {
            let tail = &line[at..];
            let tail_lower = folded(tail);
            if is_attribution(tail) && WROTE.iter().any(|w| tail_lower.contains(w)) {
                let prefix = line[..at].trim_end_matches(['-', ' ']);
                return (!prefix.trim().is_empty()).then_some(prefix.len());
            }
        }
    }
    None
}

/// Could this line end an attribution at all? A cheap test before the careful one: it is not
/// long, and ends with a colon, `>`, `)`, a dash or one of the verbs (without its colon).
fn may_be_attribution(line: &str) -> bool {
    let t = line.trim_end();
    if t.len() > 300 {
        return false;
    }
    match t.chars().next_back() {
        Some(':' | '：' | '>' | ')' | '-') => true,
        // Most lines of prose end with a letter: only a verb makes them worth the careful test.
        Some(c) if c.is_alphabetic() => {
            let tail = folded(&t[t.floor_char_boundary(t.len().saturating_sub(32))..]);
            WROTE.iter().any(|w| tail.ends_with(w))
        }
        _ => false,
    }
}

fn is_attribution(line: &str) -> bool {
    if !may_be_attribution(line) {
        return false;
    }
    let dashed = line.trim().starts_with("--");
    let t = line
        .trim()
        .trim_matches(|c: char| c == '-' || c.is_whitespace());
    let (body, colon) = match t.strip_suffix(':').or_else(|| t.strip_suffix('：')) {
        Some(b) => (b.trim_end(), true),
        None => (t, false),
    };
    let starts_like = starts_like_attribution(body);
    // Without a colon only a line that starts like one, is dashed, or ends in `>`/`)`.
    if !colon && !starts_like && !dashed && !body.ends_with('>') && !body.ends_with(')') {
        return false;
    }
    let lower = folded(body);
    let has_address = lower.contains('@');
    let has_digit = lower.bytes().any(|b| b.is_ascii_digit());
    // "..., Name <mail> wrote" / "... schrieb Name <mail>" (German puts the name after).
    let verb_at_end = WROTE.iter().any(|w| lower.ends_with(w));
    let verb_inside = WROTE.iter().any(|w| {
        lower
            .match_indices(w)
            .any(|(at, _)| lower[..at].ends_with(' ') && lower[at + w.len()..].starts_with(' '))
    });
    if verb_at_end || verb_inside {
        // Without a colon only when the line is plainly one ("On ... wrote", "--- X wrote ---").
        if !colon && !(verb_at_end && (starts_like || dashed)) {
            return false;
        }
        return starts_like || has_address || has_digit || dashed;
    }
    // No verb: "30.09.2017, 18:30, "John" <john@x>:", "2011/4/7 Nathan <support@x>".
    if has_address && has_digit && (lower.ends_with('>') || lower.ends_with(')')) {
        return colon || starts_like;
    }
    false
}

fn is_sent_from(line: &str) -> bool {
    let t = line.trim();
    // "Sent from my desk, which is easier" is a sentence, not a sign-off.
    if t.len() > 140 || t.chars().count() > 70 || t.contains(", ") {
        return false;
    }
    SENT_FROM.iter().any(|s| starts_folded(t, s))
}

/// Removes a `-- ` signature (the delimiter and everything after it) and a mobile sign-off as
/// the last line.
fn remove_signature(lines: &mut Vec<&str>, removed: &mut Vec<String>) {
    if let Some(i) = lines
        .iter()
        .position(|l| *l == "--" || *l == "-- " || *l == "__")
    {
        removed.push(format!("signature from line {}", i + 1));
        lines.truncate(i);
    }
    while lines
        .last()
        .is_some_and(|l| is_blank(l) || is_rule(l.trim()))
    {
        lines.pop();
    }
    if let Some(last) = lines.last()
        && is_sent_from(last)
    {
        removed.push(format!("sign-off \"{}\"", last.trim()));
        lines.pop();
    }
}

/// Joins lines, without blank lines at the start or end.
fn tidy(lines: &[&str]) -> String {
    let mut out = String::new();
    let mut blank_run = 0;
    let mut gap = false;
    for line in lines {
        if is_blank(line) {
            blank_run += 1;
            gap |= *line == GAP;
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            // The person's own blank lines stay (up to two); where lines were removed, one.
            let blanks = if gap { 1 } else { blank_run.min(2) };
            for _ in 0..blanks {
                out.push('\n');
            }
        }
        blank_run = 0;
        gap = false;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, expect: &str) {
        let got = extract(body);
        assert_eq!(got.text, expect, "removed: {:?}", got.removed);
    }

    #[test]
    fn top_posted_gmail_reply() {
        check(
            "Yes, it is plugged in.\n\nThanks,\nAnna\n\nOn Sun, Nov 22, 2026 at 10:15 AM Example Help Desk <\nsupport@helpdesk.example> wrote:\n\n> Is the printer plugged in?\n>\n> -- \n> Example Help Desk\n",
            "Yes, it is plugged in.\n\nThanks,\nAnna",
        );
    }

    #[test]
    fn german_attribution_and_outlook_block() {
        check(
            "Ja, steckt.\n\nAm 22.11.26 um 10:15 schrieb Example Help Desk:\n> Steckt er?\n",
            "Ja, steckt.",
        );
        check(
            "Erledigt.\n\nVon: Example Help Desk <support@helpdesk.example>\nGesendet: Sonntag, 22. November 2026 10:15\nAn: Anna\nBetreff: [SUP-1] Drucker\n\nSteckt er?\n",
            "Erledigt.",
        );
        check(
            "Done.\n\n________________________________\nFrom: Example Help Desk\nSent: Sunday\nTo: Anna\nSubject: x\n\nold text\n",
            "Done.",
        );
    }

    #[test]
    fn bottom_posted_and_interleaved_answers_stay() {
        check(
            "On Sun, Nov 22, 2026, Help <s@h.example> wrote:\n> Is it plugged in?\n\nYes it is.\n",
            "Yes it is.",
        );
        check(
            "> Is it plugged in?\nYes.\n> Which model?\nHP 4000.\n",
            "Yes.\n\nHP 4000.",
        );
    }

    #[test]
    fn signatures_and_sign_offs_go() {
        check(
            "Fixed it.\n\nAnna\n-- \nAnna Example\nAcme Corp\n+49 30 1234\n",
            "Fixed it.\n\nAnna",
        );
        check("Passt.\n\nVon meinem iPhone gesendet\n", "Passt.");
        check(
            "Ok.\n\nSent from my iPhone\n\n> On 22 Nov 2026, at 10:15, Help <s@h.example> wrote:\n> x\n",
            "Ok.",
        );
    }

    #[test]
    fn letters_that_grow_when_lower_cased_do_not_shift_an_embedded_attribution() {
        // "İ" is two bytes, its lower case three: an offset found in the lower-cased line once
        // cut this one inside "ö" (a panic) or at the wrong place.
        check(
            "İİİİİİ thanks on Möööö, 1 Feb 2016, A <a@example.com> wrote:\n> q\n",
            "İİİİİİ thanks",
        );
        check(
            "İ ok On Mon, 1 Feb 2016, A <a@example.com> wrote:\n> q\n",
            "İ ok",
        );
    }

    /// Bodies built to be slow. Each must take time in proportion to its length: the second one
    /// ran for minutes when every quoted line started a scan over all the quote below it.
    #[test]
    fn hostile_bodies_take_linear_time() {
        let alternating =
            "On Mon, 1 Feb 2016 at 10:00, A <a@example.com> wrote:\n> quote\n".repeat(100_000);
        assert_eq!(extract(&alternating).text, "");
        let mut embedded = "> x On Mon, 1 Feb 2016, A <a@example.com> wrote:\n".repeat(100_000);
        embedded.push_str("Answer.\n");
        assert_eq!(extract(&embedded).text, "Answer.");
        let wrapped = "Some One <some.one@example.com> schrieb am Do., 3.\n".repeat(200_000);
        assert_eq!(extract(&wrapped).text.len(), wrapped.trim_end().len());
        let long_line = format!("On 2016 {} wrote:", "x ".repeat(5 << 19));
        assert_eq!(extract(&long_line).text, long_line);
        let long_key = format!("From: {}", "_".repeat(5 << 20));
        assert_eq!(extract(&long_key).text, long_key);
        // Each forward is read from its separator on, never to the end of the body again.
        let forwards =
            "---------- Forwarded message ---------\nFrom: a@example.com\n\n> q\n".repeat(50_000);
        let text = extract(&forwards).text;
        assert_eq!(text.matches("Forwarded message").count(), 50_000);
        let quoted = "Begin forwarded message:\n\n> From: a@example.com\n> x\n".repeat(50_000);
        let text = extract(&quoted).text;
        assert_eq!(text.matches("Begin forwarded message:").count(), 50_000);
    }

    #[test]
    fn invisible_characters_hide_nothing() {
        // A line of zero-width spaces is blank; Gmail's tracking mark on its own line goes.
        check(
            "Thanks\n\u{200B}\u{FEFF}\nAnna\n\u{1427}\n",
            "Thanks\n\nAnna",
        );
        // A signature delimiter, a sign-off and an attribution with invisible characters at
        // their ends or between their letters.
        check("Fixed.\n\n-- \u{200B}\nAnna Example\n", "Fixed.");
        check("Ok.\n\nSent\u{200C} from my iPhone\u{2060}\n", "Ok.");
        check(
            "Ok.\n\nOn Thu, Mar 3, 2016 at 5:21 PM Some One <x@example.com> wr\u{AD}ote:\u{FEFF}\n\u{200B}\n> q\n",
            "Ok.",
        );
        check(
            "\u{FEFF}Am 03.03.2016 um 17:21 schrieb Some One <x@example.com>:\u{200B}\n> q\n\u{200B}\nJa.\n",
            "Ja.",
        );
        // Soft hyphens at a line's end go; the text and the joiners inside an emoji stay.
        check(
            "Soft\u{AD}\u{AD}\nFamily 👨\u{200D}👩\u{200D}👧 here\n",
            "Soft\nFamily 👨\u{200D}👩\u{200D}👧 here",
        );
        // The mark only where it stands apart: after a syllable it is the w-dot, a letter.
        check("\u{140A}\u{1427}\nok \u{1427}\n", "\u{140A}\u{1427}\nok");
        assert_eq!(
            strip_signature("Request.\n\u{200B}\n-- \u{200B}\nAnna\n").text,
            "Request."
        );
    }

    #[test]
    fn ukrainian_and_russian_attributions() {
        check(
            "Дякую.\n\nПн, 3 мар. 2016 г. в 17:21, Иван Петров <ivan@example.com> пише:\n\n> Питання\n",
            "Дякую.",
        );
        check(
            "Дякую.\n\n03.03.2016 17:21, Іван Петров пише:\n> Питання\n",
            "Дякую.",
        );
        check(
            "Дякую.\n\nчт, 3 бер. 2016 р. о 17:21 Іван Петров <ivan@example.com>\nпише:\n\n> Питання\n",
            "Дякую.",
        );
        for verb in ["написал", "написала", "написал(а)"] {
            check(
                &format!(
                    "Спасибо.\n\n3 марта 2016 г., 17:21 пользователь Иван <ivan@example.com> {verb}:\n\n> Вопрос\n"
                ),
                "Спасибо.",
            );
        }
        check(
            "3 марта 2016 г., 17:21 пользователь Иван <ivan@example.com> написал:\n> Вопрос\n\nОтвет.\n",
            "Ответ.",
        );
    }

    #[test]
    fn iso_date_attributions() {
        for line in [
            "2016-03-03 17:21 GMT+01:00 Some One <some.one@example.com>:",
            "2016-03-03 17:21 Some One <some.one@example.com>:",
            "2016-03-03 17:21 GMT+01:00 Some One <\nsome.one@example.com>:",
            "2016-03-03 17:21 GMT+01:00 Some One\n<some.one@example.com>:",
        ] {
            check(&format!("Yes.\n\n{line}\n\n> Is it plugged in?\n"), "Yes.");
            check(&format!("{line}\n> Is it plugged in?\n\nYes.\n"), "Yes.");
            // Straight under the answer, whose last line has digits of its own.
            check(
                &format!("Room 2.14, the key is at desk 3\n{line}\n> Is it plugged in?\n"),
                "Room 2.14, the key is at desk 3",
            );
        }
    }

    #[test]
    fn attributions_wrapped_over_two_lines() {
        check(
            "Yes.\n\nOn Thu, Mar 3, 2016 at 5:21 PM Some One\n<some.one@example.com> wrote:\n\n> Q\n",
            "Yes.",
        );
        check(
            "Ja.\n\nAm 03.03.2016 um 17:21 schrieb Some\nOne <x@example.com>:\n> Q\n",
            "Ja.",
        );
        // Straight under the answer: its last line stays.
        check(
            "Call me at 555 1234\nOn Thu, Mar 3, 2016 at 5:21 PM Some One\n<some.one@example.com> wrote:\n> Q\n",
            "Call me at 555 1234",
        );
        // A long name first (Gmail's apps), wrapped before the address or in the date.
        check(
            "Yes.\n\nSome Person With A Really Long Name And More\n<some.one@example.com> wrote:\n\n> Q\n",
            "Yes.",
        );
        check(
            "Ja.\n\nSome One With A Long Name <some.one@example.com> schrieb am Do., 3.\nMärz 2016, 17:21:\n\n> Q\n",
            "Ja.",
        );
        check(
            "Danke, Anna\nSome One With A Long Name <some.one@example.com> schrieb am Do., 3.\nMärz 2016, 17:21:\n> Q\n",
            "Danke, Anna",
        );
        // One line, as before.
        check(
            "Yes.\nSome One <some.one@example.com> wrote:\n> Q\n",
            "Yes.",
        );
    }

    #[test]
    fn thunderbird_separators_in_emphasis_marks() {
        check(
            "Done.\n\n*-------- Original Message --------*\nSubject: x\nDate: Thu, 3 Mar 2016 17:21:00 +0100\nFrom: Some One <x@example.com>\nTo: y@example.com\n\nold\n",
            "Done.",
        );
        check(
            "Erledigt.\n\n_-------- Original-Nachricht --------_\nBetreff: x\nDatum: Thu, 3 Mar 2016 17:21:00 +0100\nVon: Some One <x@example.com>\nAn: y@example.com\n\nalt\n",
            "Erledigt.",
        );
        check(
            "Done.\n\n**-----Original Message-----**\nold text\n",
            "Done.",
        );
        // Without the marks, as before; underscores around the words are no emphasis.
        check(
            "Done.\n\n-------- Original Message --------\nSubject: x\nDate: Thu, 3 Mar 2016 17:21:00 +0100\nFrom: Some One <x@example.com>\nTo: y@example.com\n\nold\n",
            "Done.",
        );
        check("Done.\n\n____Original Message____\nold\n", "Done.");
    }

    #[test]
    fn a_forwarded_mail_below_the_answer_is_kept() {
        // Gmail: the person's signature goes; the forward stays with its header lines, and the
        // reply history in it goes.
        check(
            "See the vendor's answer below.\n\nAnna\n-- \nAnna Example\nAcme Corp\n\n---------- Forwarded message ---------\nFrom: Vendor Support <help@vendor.example>\nDate: Thu, Mar 3, 2016 at 5:21 PM\nSubject: Re: Error 42\nTo: Anna <anna@acme.example>\n\nError 42 means the toner is empty.\n\nOn Wed, Mar 2, 2016 at 9:00 AM Anna <anna@acme.example> wrote:\n> What is error 42?\n",
            "See the vendor's answer below.\n\nAnna\n\n---------- Forwarded message ---------\nFrom: Vendor Support <help@vendor.example>\nDate: Thu, Mar 3, 2016 at 5:21 PM\nSubject: Re: Error 42\nTo: Anna <anna@acme.example>\n\nError 42 means the toner is empty.",
        );
        // Thunderbird, French: the headers first, an Outlook original in the forward.
        check(
            "Voir ci-dessous.\n\n-------- Message transféré --------\nSujet : Erreur 42\nDate : Thu, 3 Mar 2016 17:21:00 +0100\nDe : Fournisseur <help@vendor.example>\nPour : Anna <anna@acme.example>\n\nLe toner est vide.\n\n-----Original Message-----\nFrom: Anna\nSent: Wednesday\n\nErreur 42 ?\n",
            "Voir ci-dessous.\n\n-------- Message transféré --------\nSujet : Erreur 42\nDate : Thu, 3 Mar 2016 17:21:00 +0100\nDe : Fournisseur <help@vendor.example>\nPour : Anna <anna@acme.example>\n\nLe toner est vide.",
        );
        // Apple Mail on an iPhone quotes the forwarded mail as a whole: it stays as written,
        // the sign-off above it and the forwarded mail's own quote go.
        check(
            "Look at this.\n\nSent from my iPhone\n\nBegin forwarded message:\n\n> From: Vendor <help@vendor.example>\n> Date: 3 March 2016 at 17:21:00 CET\n> To: Anna <anna@acme.example>\n> Subject: Error 42\n>\n> The toner is empty.\n>\n>> On 2 Mar 2016, at 09:00, Anna <anna@acme.example> wrote:\n>>\n>> What is error 42?\n",
            "Look at this.\n\nBegin forwarded message:\n\n> From: Vendor <help@vendor.example>\n> Date: 3 March 2016 at 17:21:00 CET\n> To: Anna <anna@acme.example>\n> Subject: Error 42\n>\n> The toner is empty.",
        );
        // Lotus Notes, German Thunderbird.
        check(
            "FYI\n\n----- Forwarded by Some One/Acme on 03/03/2016 05:21 PM -----\n\nThe toner is empty.\n",
            "FYI\n\n----- Forwarded by Some One/Acme on 03/03/2016 05:21 PM -----\n\nThe toner is empty.",
        );
        check(
            "*-------- Weitergeleitete Nachricht --------*\nBetreff: Fehler 42\nDatum: Thu, 3 Mar 2016 17:21:00 +0100\nVon: Lieferant <help@vendor.example>\nAn: Anna <anna@acme.example>\n\nDer Toner ist leer.\n",
            "*-------- Weitergeleitete Nachricht --------*\nBetreff: Fehler 42\nDatum: Thu, 3 Mar 2016 17:21:00 +0100\nVon: Lieferant <help@vendor.example>\nAn: Anna <anna@acme.example>\n\nDer Toner ist leer.",
        );
    }

    #[test]
    fn a_forward_alone_is_kept_and_one_in_the_history_goes() {
        let forward = "---------- Forwarded message ---------\nFrom: Vendor <help@vendor.example>\nDate: Thu, Mar 3, 2016 at 5:21 PM\nSubject: Error 42\nTo: Anna <anna@acme.example>\n\nThe toner is empty.";
        check(forward, forward);
        // Below the history's separator or attribution it is part of the history.
        check(
            &format!("Blah\n\n-----Original Message-----\n\nFYI\n\n{forward}\n"),
            "Blah",
        );
        check(
            &format!(
                "Thanks.\n\nOn Thu, Mar 3, 2016 at 5:21 PM Help <s@h.example> wrote:\n> FYI\n>\n> {forward}\n"
            ),
            "Thanks.",
        );
        // A first mail keeps the forward, its signature too; the person's own goes.
        assert_eq!(
            strip_signature(&format!(
                "Please help.\n-- \nAnna\n\n{forward}\n-- \nVendor\n"
            ))
            .text,
            format!("Please help.\n\n{forward}\n--\nVendor")
        );
    }

    #[test]
    fn a_line_that_only_mentions_writing_is_kept() {
        check(
            "As I wrote: the printer is fine.\nBye",
            "As I wrote: the printer is fine.\nBye",
        );
    }
}
