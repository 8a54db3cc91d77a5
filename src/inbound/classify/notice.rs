//! What the top of a mail's text says, for mails whose headers do not tell: a delivery failure
//! written as text by a gateway, a virus scanner or a carrier, and an absence notice sent without
//! any auto-reply header.
//!
//! The classifier runs on every mail, up to 25 MiB and written by attackers too, so these tests
//! read only the opening: at most [`OPENING_BYTES`] of the text, cut where a quoted or returned
//! mail begins. A failure or an absence must be stated in its first lines (notices say what
//! they are at the top; a person who mentions a failure or a holiday further down is not read
//! there), and only then is the rest of the opening read: for the failed address and status,
//! or for what else a notice says. So every table is matched against a short, bounded text.

/// The most of a text the body tests read.
const OPENING_BYTES: usize = 6 * 1024;

/// A delivery notice names the failure within its first lines (after a frame, a banner or a
/// line in the server's own language).
const BOUNCE_LINES: usize = 12;

/// An absence notice says so in its first lines (a greeting or a thank-you may come first).
const ABSENCE_LINES: usize = 3;

/// An absence notice is short: a person's reply that happens to start with a holiday remark
/// usually goes on.
const NOTICE_CHARS: usize = 2_000;
const NOTICE_LINES: usize = 25;

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

/// Sentences that may precede an absence notice on its line ("Thank you for your message. I am
/// out of the office ..."), lower-case, as they start. They and the rest of their sentence are
/// skipped.
const PREAMBLES: &[&str] = &[
    "thank you for your",
    "thanks for your",
    "many thanks for your",
    "hello",
    "hi",
    "dear",
    "good morning",
    "good afternoon",
    "vielen dank für ihre",
    "vielen dank für deine",
    "danke für ihre",
    "danke für deine",
    "guten tag",
    "hallo",
    "sehr geehrte",
    "merci pour votre",
    "merci de votre",
    "bonjour",
    "gracias por su",
    "gracias por tu",
    "hola",
    "grazie per il",
    "grazie per la",
    "buongiorno",
    "bedankt voor uw",
    "bedankt voor je",
    "goedendag",
    "obrigado pela",
    "obrigada pela",
    "olá",
    "dziękuję za",
    "dzień dobry",
    "tack för ditt",
    "tack för din",
    "hej",
    "tak for din",
    "tak for jeres",
    "takk for din",
    "kiitos viestistä",
    "спасибо за",
    "здравствуйте",
    "дякую за",
    "добрий день",
    "děkuji za",
    "dobrý den",
    "mesajınız için",
    "merhaba",
];

/// How an absence statement starts (lower-case): "I am", "Ich bin", "Je suis", ... The same
/// sentence must then name the absence ([`ABSENCE_WORDS`]).
const OPENERS: &[&str] = &[
    "i am ",
    "i'm ",
    "i’m ",
    "i will be ",
    "i'll be ",
    "i’ll be ",
    "ich bin ",
    "ich befinde mich ",
    "ich werde ",
    "bis ",
    "vom ",
    "ab dem ",
    "in der zeit vom ",
    "derzeit bin ich ",
    "zurzeit bin ich ",
    "momentan bin ich ",
    "je suis ",
    "je serai ",
    "je me trouve ",
    "estoy ",
    "estaré ",
    "me encuentro ",
    "no estoy ",
    "sono ",
    "sarò ",
    "mi trovo ",
    "ik ben ",
    "ik zal ",
    "estou ",
    "estarei ",
    "encontro-me ",
    "me encontro ",
    "jestem ",
    "będę ",
    "przebywam ",
    "jag är ",
    "jag har ",
    "jag kommer att vara ",
    "jeg er ",
    "jeg har ",
    "jeg vil være ",
    "olen ",
    "en ole ",
    "я ",
    "в настоящее время я ",
    "сейчас я ",
    "меня нет ",
    "наразі я ",
    "мене немає ",
    "jsem ",
    "budu ",
    "momentálně jsem ",
];

/// Words that name an absence, in the languages deskmail knows (lower-case, anywhere in the
/// statement's sentence).
const ABSENCE_WORDS: &[&str] = &[
    // en
    "out of the office",
    "out of office",
    "away from the office",
    "on vacation",
    "on holiday",
    "on leave",
    "on annual leave",
    "on parental leave",
    "on sick leave",
    "on a business trip",
    "not in the office",
    "absent",
    "away",
    "unavailable",
    "not available",
    // de
    "abwesend",
    "nicht im büro",
    "nicht im hause",
    "nicht erreichbar",
    "außer haus",
    "ausser haus",
    "urlaub",
    "dienstreise",
    "geschäftsreise",
    "elternzeit",
    "nicht verfügbar",
    "nicht anwesend",
    // fr
    "hors du bureau",
    "en congé",
    "en vacances",
    "en déplacement",
    "pas au bureau",
    "indisponible",
    // es
    "fuera de la oficina",
    "de vacaciones",
    "ausente",
    "de viaje",
    "no disponible",
    // it
    "fuori ufficio",
    "assente",
    "in ferie",
    "in vacanza",
    "in trasferta",
    "non disponibile",
    // nl
    "afwezig",
    "niet op kantoor",
    "niet aanwezig",
    "met vakantie",
    "op vakantie",
    "niet bereikbaar",
    // pt
    "fora do escritório",
    "fora do escritorio",
    "de férias",
    "de ferias",
    "em viagem",
    "indisponível",
    // pl
    "poza biurem",
    "nieobecn",
    "na urlopie",
    "niedostępn",
    // sv
    "inte på kontoret",
    "på semester",
    "ledig",
    "frånvarande",
    "tjänsteresa",
    // da, no
    "ikke på kontoret",
    "på ferie",
    "ferie",
    "fraværende",
    "ude af kontoret",
    "ute av kontoret",
    "ikke til stede",
    // fi
    "poissa",
    "lomalla",
    "työmatkalla",
    // ru, uk
    "в отпуске",
    "отсутству",
    "в командировке",
    "у відпустці",
    "відсутн",
    "у відрядженні",
    // cs
    "mimo kancelář",
    "na dovolené",
    "nepřítom",
    "na služební cestě",
];

/// Absence statements that need no opener (lower-case), as a sentence starts: the negations.
const NEGATED_ABSENCES: &[&str] = &[
    "no estoy en la oficina",
    "en ole toimistolla",
    "en ole tavoitettavissa",
    "меня нет в офисе",
    "мене немає в офісі",
];

/// ... and anywhere in it: the languages that say it in a word, often at the sentence's end.
const ABSENCE_STATEMENTS: &[&str] = &[
    // tr
    "ofis dışındayım",
    "izindeyim",
    "tatildeyim",
    "ofiste değilim",
    // ja
    "不在にしております",
    "不在にしています",
    "休暇をいただいております",
    "休暇中",
    "出張中",
    // zh
    "不在办公室",
    "不在辦公室",
    "正在休假",
    "休假中",
    "出差",
];

/// Notices that say what they are, at the start of their sentence (lower-case). Whole
/// statements only: a person may well begin with "Auto-replies from your system ...".
const SELF_DECLARED: &[&str] = &[
    "this is an automatic reply",
    "this is an automated reply",
    "this is an auto-reply",
    "this is an automatic response",
    "this is an automated response",
    "dies ist eine automatische antwort",
    "dies ist eine automatisch erstellte antwort",
    "ceci est une réponse automatique",
    "ceci est un message automatique",
    "esta es una respuesta automática",
    "este es un mensaje automático",
    "questa è una risposta automatica",
    "questo è un messaggio automatico",
    "dit is een automatisch antwoord",
    "dit is een automatisch bericht",
    "esta é uma resposta automática",
    "esta é uma mensagem automática",
    "to jest automatyczna odpowiedź",
    "detta är ett automatiskt svar",
    "dette er et automatisk svar",
    "tämä on automaattinen vastaus",
    "это автоматический ответ",
    "це автоматична відповідь",
    "toto je automatická odpověď",
    "bu otomatik bir yanıttır",
    "これは自動返信",
    "本メールは自動返信",
    "这是自动回复",
    "此邮件为自动回复",
];

/// What an absence notice says besides the absence, first: until when, or when its writer
/// returns (lower-case, anywhere in the notice).
const RETURN_MARKERS: &[&str] = &[
    // en
    "until",
    "till ",
    "return",
    "back on",
    "back in",
    // de
    " bis ",
    "zurück",
    "rückkehr",
    "wieder im büro",
    "wieder erreichbar",
    // fr
    "jusqu'",
    "retour",
    // es
    "hasta",
    "regres",
    "volveré",
    // it
    "fino al",
    "fino a ",
    "rientr",
    // nl
    "tot en met",
    "tot ",
    "terug",
    // pt
    "até",
    "retorno",
    "voltarei",
    // pl, cs, ru, uk
    " do ",
    "powr",
    "vrátím",
    "návrat",
    " до ",
    "вернусь",
    "возвращ",
    "повернус",
    // sv, da, no, fi
    "till och med",
    "tillbaka",
    "til og med",
    "tilbage",
    "tilbake",
    " asti",
    "palaan",
    // tr, ja, zh
    "kadar",
    "döneceğim",
    "まで",
    "戻り",
    "之前",
    "返回",
    "回来",
];

/// ... and second: what happens to the mail meanwhile, or whom to turn to (lower-case, anywhere
/// in the notice). A notice says both; a person's remark on a holiday seldom does.
const CONTACT_MARKERS: &[&str] = &[
    // en
    "limited access",
    "no access",
    "without access",
    "urgent",
    "contact",
    "in my absence",
    "will respond",
    "will reply",
    "will get back",
    "will answer",
    "forwarded",
    "will not be read",
    "as soon as possible",
    // de
    "dringend",
    "vertretung",
    "wenden sie sich",
    "wende dich",
    "weitergeleitet",
    "zugriff",
    "eingeschränkt",
    "beantworte",
    "melde mich",
    // fr
    "urgence",
    "répondrai",
    "accès",
    // es, pt, it
    "urgente",
    "contactar",
    "contatar",
    "contattare",
    "responderé",
    "responderei",
    "risponderò",
    "acceso",
    "acesso",
    "accesso",
    // nl
    "neem contact",
    "beantwoord",
    // pl, cs
    "pilnych",
    "pilne",
    "kontakt",
    "odpowiem",
    "naléhav",
    "odpovím",
    // sv, da, no, fi
    "brådskande",
    "besvara",
    "haster",
    "besvare",
    "kiireellis",
    "yhteyttä",
    "vastaan",
    // ru, uk
    "срочн",
    "обращайтесь",
    "отвечу",
    "терміново",
    "звертайтеся",
    "відповім",
    // tr, ja, zh
    " acil",
    "iletişim",
    "急ぎ",
    "連絡",
    "紧急",
    "联系",
];

/// What only a person writes to a help desk: a question, a word about the ticket or its
/// solution (lower-case, anywhere in the text). A notice with one of them is a person's.
const PERSON_MARKERS: &[&str] = &[
    "?",
    "？",
    "ticket",
    "close",
    "schließen",
    "schliessen",
    "fermer",
    "clôtur",
    "cerrar",
    "chiud",
    "sluit",
    "fechar",
    "zamkn",
    "stäng",
    "lukk",
    "luk det",
    "sulje",
    "закр",
    "uzavř",
    "zavř",
    "kapat",
    "fixed",
    "solved",
    "resolved",
    "gelöst",
    "behoben",
    "résolu",
    "resuelto",
    "risolto",
    "opgelost",
    "resolvido",
    "rozwiązan",
    "löst",
    "løst",
    "ratkaist",
    "решен",
    "вирішен",
    "vyřešen",
    "çözüldü",
    "解決",
    "解决",
];

/// Words of a plan: an absence that lies ahead is a person's remark, not a notice sent during
/// it (lower-case, anywhere in the text).
const PLAN_MARKERS: &[&str] = &[
    "next week",
    "tomorrow",
    "nächste woche",
    "nächsten woche",
    "morgen",
    "la semaine prochaine",
    "demain",
    "la próxima semana",
    "la semana que viene",
    "mañana",
    "la prossima settimana",
    "domani",
    "volgende week",
    "próxima semana",
    "amanhã",
    "w przyszłym tygodniu",
    "jutro",
    "nästa vecka",
    "i morgon",
    "næste uge",
    "i morgen",
    "neste uke",
    "ensi viikolla",
    "huomenna",
    "на следующей неделе",
    "завтра",
    "наступного тижня",
    "příští týden",
    "zítra",
    "gelecek hafta",
    "yarın",
    "来週",
    "明日",
    "下周",
    "明天",
];

/// The top of a mail's text: at most [`OPENING_BYTES`], up to where a quoted or returned mail
/// begins. That end is looked for only as far as a test reads: most mails are a person's, and
/// their first lines are all the absence test needs.
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

    /// The absence notice the mail opens with, in words, if it is one: a short text whose
    /// first lines state an absence ("I am out of the office until ...", "Ich bin bis ... nicht
    /// im Büro") and that says what notices say besides (until when, and what happens to the
    /// mail or whom to turn to), with no question, no word about the ticket and no plan ("next
    /// week"). The first lines are read first: most mails stop there.
    pub(super) fn absence_notice(&self) -> Option<String> {
        let (statement, declared) = self
            .lines(ABSENCE_LINES)
            .find_map(|line| absence_statement(first_sentence(after_preamble(&line))))?;
        let (text, complete) = self.text();
        if !complete
            || text.chars().count() > NOTICE_CHARS
            || text.lines().filter(|l| !l.trim().is_empty()).count() > NOTICE_LINES
        {
            return None;
        }
        let whole = lower(text);
        let has = |markers: &[&str]| markers.iter().any(|m| whole.contains(m));
        if has(PERSON_MARKERS) || has(PLAN_MARKERS) {
            return None;
        }
        (declared || (has(RETURN_MARKERS) && has(CONTACT_MARKERS))).then_some(statement)
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

/// The line without a greeting or thank-you sentence it starts with.
fn after_preamble(line: &str) -> &str {
    let Some(p) = starts_with_any(line, PREAMBLES) else {
        return line;
    };
    let rest = &line[p.len()..];
    // A greeting is a word ("hi" must not take "hier"): what follows it is no letter.
    if rest.chars().next().is_some_and(char::is_alphabetic) && !p.ends_with(' ') {
        return line;
    }
    match rest.find(['.', '!', ',', ':']) {
        Some(i) => rest[i + 1..].trim_start(),
        None => "",
    }
}

/// The first sentence of a line: up to a `!`, `?` or `;`, or a `.` after a letter (a date's
/// `5.12.` does not end it).
fn first_sentence(line: &str) -> &str {
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        if matches!(c, '!' | '?' | ';') || (c == '.' && prev.is_alphabetic()) {
            return &line[..i];
        }
        prev = c;
    }
    line
}

/// An absence statement at the start of a sentence, in words, and whether the notice
/// declares itself ("This is an automatic reply"), which then needs no other sign.
fn absence_statement(sentence: &str) -> Option<(String, bool)> {
    if let Some(s) = starts_with_any(sentence, SELF_DECLARED) {
        return Some((format!("\"{s}\""), true));
    }
    // The one-word statements are all non-ASCII: an ASCII sentence needs no search for them.
    let statement = starts_with_any(sentence, NEGATED_ABSENCES).or_else(|| {
        (!sentence.is_ascii())
            .then(|| {
                ABSENCE_STATEMENTS
                    .iter()
                    .find(|s| sentence.contains(**s))
                    .copied()
            })
            .flatten()
    });
    if let Some(s) = statement {
        return Some((format!("\"{s}\""), false));
    }
    let opener = starts_with_any(sentence, OPENERS)?;
    let word = ABSENCE_WORDS
        .iter()
        .find(|w| sentence[opener.len()..].contains(**w))?;
    Some((format!("\"{}… {word}\"", opener.trim_end()), false))
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

    #[test]
    fn sentences_end_after_words_not_dates() {
        assert_eq!(
            first_sentence("ich bin bis 5.12. nicht im büro. danke"),
            "ich bin bis 5.12. nicht im büro"
        );
        assert_eq!(first_sentence("i am happy. i am away"), "i am happy");
    }

    #[test]
    fn greetings_are_words() {
        assert_eq!(after_preamble("hi, i am away"), "i am away");
        assert_eq!(after_preamble("hier bin ich"), "hier bin ich");
        assert_eq!(
            after_preamble("thank you for your message. i am away"),
            "i am away"
        );
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
        let mut absences = Vec::new();
        let mut failure_words = Vec::new();
        for (name, text) in &texts {
            let opening = Opening::of(text);
            if let Some(n) = opening.absence_notice() {
                absences.push(format!("{name}: {n}"));
            }
            // Words of failure alone (the classifier reads them only from automatic senders).
            if let Some(p) = opening.bounce_phrase() {
                failure_words.push(format!("{name}: {p}"));
            }
        }
        println!(
            "{} person mails; absence notices: {:?}; failure words without the sender test: {:?}",
            texts.len(),
            absences,
            failure_words
        );
        assert!(texts.len() > 150, "the fixtures were not found");
        assert!(absences.is_empty(), "{absences:?}");
        // For the record: the real auto-replies of the fixtures (known by their headers) that
        // the text alone would know too.
        let autos = texts_of("auto-reply");
        let known: Vec<String> = autos
            .iter()
            .filter_map(|(name, text)| {
                Opening::of(text)
                    .absence_notice()
                    .map(|n| format!("{name}: {n}"))
            })
            .collect();
        println!(
            "auto-replies known by their text alone: {}/{}: {known:?}",
            known.len(),
            autos.len()
        );
    }
}
