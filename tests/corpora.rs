//! deskmail's reply extraction, classification and bounce recognition against public corpora of
//! other projects (`fixtures/corpora/`, see its README): scores per group of cases (source, class,
//! kind), printed, with a floor each so that a regression fails. The corpora are part of the
//! repository: a file that is missing fails the test, and so does a group with no case left.
//!
//! `cargo test --test corpora -- --nocapture` prints the scores and every miss.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use deskmail::inbound::classify::{Own, classify};
use deskmail::inbound::{extract, html, parse};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn corpora() -> PathBuf {
    fixtures().join("corpora")
}

/// A file of the fixtures; a missing one fails the test, naming it.
fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; the corpora are part of the repository (fixtures/corpora/README.md)",
            path.display()
        )
    })
}

fn read_text(path: &Path) -> String {
    String::from_utf8_lossy(&read(path)).into_owned()
}

/// Right and all cases per group.
type Scores = BTreeMap<String, (usize, usize)>;

/// Every group reaches its floor: a group scored without a floor, a floor of 0 and a floor
/// whose group has no case left (a corpus lost) all fail.
fn assert_floors(what: &str, scores: &Scores, floors: &[(&str, usize)]) {
    for group in scores.keys() {
        assert!(
            floors.iter().any(|(g, _)| g == group),
            "{what}: the group {group} has no floor"
        );
    }
    for (group, floor) in floors {
        assert!(*floor > 0, "{what}: {group} has a floor of 0");
        let (ok, all) = scores
            .get(*group)
            .unwrap_or_else(|| panic!("{what}: no case of {group} was found"));
        assert!(
            ok >= floor,
            "{what}: {group} {ok}/{all} below its floor {floor}"
        );
    }
}

/// Counts one case of `group`, right or not.
fn score(scores: &mut Scores, group: &str, right: bool) {
    let e = scores.entry(group.to_string()).or_default();
    e.0 += usize::from(right);
    e.1 += 1;
}

/// The source a corpus file comes from: its name's prefix (`talon__...`).
fn source_of(file: &str) -> &str {
    file.split_once("__")
        .unwrap_or_else(|| panic!("{file}: no source prefix"))
        .0
}

fn normalise(s: &str, mode: &str) -> String {
    let s = s.replace("\r\n", "\n");
    match mode {
        "ignore_ws" => s.chars().filter(|c| !c.is_whitespace()).collect(),
        _ => s.trim().to_string(),
    }
}

/// What deskmail takes as the new text of one case's input.
fn extracted(case: &Path, input: &str) -> String {
    let bytes = read(&case.join(input));
    match input {
        "input.eml" => extract::extract(&parse::parse(&bytes).text).text,
        "input.html" => {
            extract::extract(
                &html::to_text(&String::from_utf8_lossy(&bytes), usize::MAX, usize::MAX).0,
            )
            .text
        }
        _ => extract::extract(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n")).text,
    }
}

#[test]
fn reply_extraction_scores() {
    let root = corpora();
    let dir = root.join("reply-extraction");
    let index = read_text(&dir.join("cases.tsv"));
    let mut scores = Scores::new();
    let mut misses = Vec::new();
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (id, source, input, compare) = (cols[0], cols[1], cols[2], cols[3]);
        let case = dir.join(id);
        let expected = read_text(&case.join("expected.txt"));
        let got = extracted(&case, input);
        // talon's plain and standard cases are scored apart: their conventions differ.
        let group = if source == "talon" {
            id.split('_').take(3).collect::<Vec<_>>().join("_")
        } else {
            source.to_string()
        };
        let right = normalise(&got, compare) == normalise(&expected, compare);
        score(&mut scores, &group, right);
        if !right {
            misses.push(format!(
                "--- {id} ({compare})\nexpected:\n{}\ngot:\n{}",
                expected.trim(),
                got.trim()
            ));
        }
    }
    for m in &misses {
        println!("{m}");
    }
    println!("reply extraction:");
    for (group, (ok, all)) in &scores {
        println!("  {group}: {ok}/{all}");
    }
    // Floors: what deskmail reaches today, so that a change that loses cases fails here.
    assert_floors(
        "reply extraction",
        &scores,
        &[
            ("crisp", 48),
            ("github", 9),
            ("talon__html", 9),
            ("talon__plain", 46),
            ("talon__standard", 10),
        ],
    );
}

/// The demo help desk's own address, as classification needs it.
fn own() -> Own<'static> {
    Own {
        address: "support@helpdesk.example",
        domain: "helpdesk.example",
    }
}

#[test]
fn classification_scores() {
    let dir = corpora().join("classify");
    let labels = read_text(&dir.join("labels.tsv"));
    let own = own();
    let (mut per_label, mut per_source, mut total) = (Scores::new(), Scores::new(), Scores::new());
    for line in labels.lines() {
        let Some((file, label)) = line.split_once('\t') else {
            continue;
        };
        let raw = read(&dir.join("mails").join(file));
        let c = classify(&parse::parse(&raw), &own);
        let right = c.class.as_str() == label;
        score(&mut per_label, label, right);
        score(&mut per_source, source_of(file), right);
        score(&mut total, "all", right);
        if !right {
            println!(
                "miss {file}: expected {label}, got {} ({})",
                c.class.as_str(),
                c.reason
            );
        }
    }
    let (ok, all) = total.get("all").copied().unwrap_or_default();
    println!("classification: {ok}/{all}");
    for (label, (k, n)) in &per_label {
        println!("  {label}: {k}/{n}");
    }
    for (source, (k, n)) in &per_source {
        println!("  {source}: {k}/{n}");
    }
    // Floors: what deskmail reaches today, so that a change that loses cases fails here.
    assert_floors("classification", &total, &[("all", 45)]);
    assert_floors(
        "classification",
        &per_label,
        &[("auto-reply", 3), ("bounce", 30), ("person", 12)],
    );
    assert_floors(
        "classification",
        &per_source,
        &[("bounceparser", 24), ("flanker", 9), ("talon", 12)],
    );
}

/// The format family of a `labels.tsv` format note: the words before any `(`, `,` or `"`
/// ("qmail text, given up after 4.2.2" and "qmail text (GoDaddy)" are both "qmail text").
fn format_family(note: &str) -> &str {
    note.split(['(', ',', '"']).next().unwrap_or(note).trim()
}

/// One row of `fixtures/corpora/bounces/labels.tsv`.
struct BounceCase<'a> {
    file: &'a str,
    class: &'a str,
    source: &'a str,
    format: &'a str,
    /// `failure`, `delay` (a bounce that is still retried) or `-` (not a bounce).
    kind: &'a str,
    /// The failed recipients the mail names, lower-case; empty when it names none.
    recipients: Vec<&'a str>,
}

fn bounce_cases(labels: &str) -> Vec<BounceCase<'_>> {
    labels
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            BounceCase {
                file: cols[0],
                class: cols[1],
                source: cols[2],
                format: cols[3],
                kind: cols[4],
                recipients: cols[5].split(',').filter(|r| !r.is_empty()).collect(),
            }
        })
        .collect()
}

/// Format families (see [`format_family`]) with mails deskmail does not read right yet, and how
/// many; every other family must be read right whole.
const FORMAT_MISSES: [(&str, usize); 2] = [("gateway text", 1), ("mobile carrier", 1)];

#[test]
fn bounce_corpus_scores() {
    let dir = corpora().join("bounces");
    let labels = read_text(&dir.join("labels.tsv"));
    let own = own();
    let (mut per_source, mut per_kind, mut per_format) =
        (Scores::new(), Scores::new(), Scores::new());
    let mut total = Scores::new();
    // Of the bounces classed right: whether they name an expected recipient, and whether they
    // say rightly if the failure is for good or a delay.
    let mut details = Scores::new();
    let mut misses = Vec::new();
    for case in bounce_cases(&labels) {
        let raw = read(&dir.join("mails").join(case.file));
        let c = classify(&parse::parse(&raw), &own);
        let right = c.class.as_str() == case.class;
        score(&mut total, "all", right);
        score(&mut per_source, case.source, right);
        score(&mut per_format, format_family(case.format), right);
        let kind = if case.class == "bounce" {
            case.kind
        } else {
            case.class
        };
        score(&mut per_kind, kind, right);
        if !right {
            misses.push(format!(
                "miss {} ({}): expected {}, got {} ({})",
                case.file,
                case.format,
                case.class,
                c.class.as_str(),
                c.reason
            ));
            continue;
        }
        let Some(b) = c.bounce.as_ref().filter(|_| case.class == "bounce") else {
            continue;
        };
        let lasting =
            (b.permanent && case.kind == "failure") || (!b.permanent && case.kind == "delay");
        score(&mut details, "permanence", lasting);
        if !lasting {
            misses.push(format!(
                "detail {}: expected a {}, got permanent={} (status {})",
                case.file, case.kind, b.permanent, b.status
            ));
        }
        if !case.recipients.is_empty() {
            let named = b
                .recipient
                .as_deref()
                .is_some_and(|r| case.recipients.contains(&r));
            score(&mut details, "recipient", named);
            if !named {
                misses.push(format!(
                    "detail {}: recipient {:?}, expected one of {:?}",
                    case.file, b.recipient, case.recipients
                ));
            }
        }
    }
    for m in &misses {
        println!("{m}");
    }
    let (ok, all) = total.get("all").copied().unwrap_or_default();
    println!("bounce corpus: {ok}/{all}");
    for (title, scores) in [
        ("per source", &per_source),
        ("per kind", &per_kind),
        ("per format", &per_format),
    ] {
        println!("  {title}:");
        for (group, (k, n)) in scores {
            println!("    {group}: {k}/{n}");
        }
    }
    let (named, nameable) = details.get("recipient").copied().unwrap_or_default();
    let (lasting, bounces) = details.get("permanence").copied().unwrap_or_default();
    println!("  bounces with the expected recipient: {named}/{nameable}");
    println!("  bounces rightly permanent or delayed: {lasting}/{bounces}");
    // Floors: what deskmail reaches today, so that a change that loses cases fails here.
    assert_floors("bounce corpus", &total, &[("all", 175)]);
    assert_floors(
        "bounce corpus",
        &per_source,
        &[("flufl.bounce", 116), ("sisimai", 59)],
    );
    assert_floors(
        "bounce corpus",
        &per_kind,
        &[
            ("failure", 154),
            ("delay", 12),
            ("auto-reply", 7),
            ("person", 2),
        ],
    );
    assert_floors(
        "bounce corpus",
        &details,
        &[("recipient", 152), ("permanence", 165)],
    );
    for (format, (k, n)) in &per_format {
        let allowed = FORMAT_MISSES
            .iter()
            .find(|(f, _)| f == format)
            .map_or(0, |(_, m)| *m);
        assert!(
            n - k <= allowed,
            "bounce corpus: {format} {k}/{n}, more than {allowed} missed"
        );
    }
    for (format, _) in FORMAT_MISSES {
        assert!(
            per_format.contains_key(format),
            "bounce corpus: no case of {format} was found"
        );
    }
}

/// The files of a directory, sorted; a missing directory fails the test, naming it.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|f| f.unwrap().path())
        .collect();
    out.sort();
    out
}

/// One person's mail of the fixtures: its group (where it comes from), its name, its bytes.
struct PersonMail {
    group: &'static str,
    name: String,
    raw: Vec<u8>,
}

/// Every person's mail of the fixtures and corpora, whole: the inbound fixtures whose expected
/// class is `person`, the person-labelled mails of `classify/` and `bounces/`, and the
/// reply-extraction inputs (`input.eml` as it is, `input.txt` as the body of a reply).
fn person_mails() -> Vec<PersonMail> {
    let mut mails = Vec::new();
    let tomls = files(&fixtures().join("inbound"))
        .into_iter()
        .filter(|d| d.is_dir())
        .flat_map(|d| files(&d))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"));
    for toml in tomls {
        let expect = read_text(&toml);
        if expect.lines().any(|l| l.trim() == "class = \"person\"") {
            let eml = toml.with_extension("eml");
            mails.push(PersonMail {
                group: "inbound",
                name: eml.display().to_string(),
                raw: read(&eml),
            });
        }
    }
    for (group, skip) in [("classify", 0), ("bounces", 1)] {
        let dir = corpora().join(group);
        let labels = read_text(&dir.join("labels.tsv"));
        for line in labels.lines().skip(skip) {
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.get(1) == Some(&"person") {
                mails.push(PersonMail {
                    group,
                    name: cols[0].to_string(),
                    raw: read(&dir.join("mails").join(cols[0])),
                });
            }
        }
    }
    let dir = corpora().join("reply-extraction");
    let index = read_text(&dir.join("cases.tsv"));
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let case = dir.join(cols[0]);
        let raw = match cols[2] {
            "input.eml" => read(&case.join("input.eml")),
            "input.txt" => {
                let body = read_text(&case.join("input.txt"));
                format!(
                    "From: Anna Example <anna@acme.example>\r\nTo: support@helpdesk.example\r\n\
                     Subject: Re: [SUP-20261122-0001] Printer on fire\r\n\
                     Message-ID: <{}@acme.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}",
                    cols[0]
                )
                .into_bytes()
            }
            _ => continue,
        };
        mails.push(PersonMail {
            group: "reply-extraction",
            name: cols[0].into(),
            raw,
        });
    }
    mails
}

#[test]
fn person_mails_stay_persons() {
    let own = own();
    let mails = person_mails();
    let mut scores = Scores::new();
    let mut caught = Vec::new();
    for m in &mails {
        let c = classify(&parse::parse(&m.raw), &own);
        let right = c.class.as_str() == "person";
        score(&mut scores, m.group, right);
        if !right {
            caught.push(format!(
                "{}: taken for {} ({})",
                m.name,
                c.class.as_str(),
                c.reason
            ));
        }
    }
    for c in &caught {
        println!("{c}");
    }
    println!(
        "person mails taken for automatic ones: {}/{}",
        caught.len(),
        mails.len()
    );
    for (group, (k, n)) in &scores {
        println!("  {group}: {k}/{n} persons");
    }
    assert!(
        caught.is_empty(),
        "a person's mail was taken for an automatic one"
    );
    // Floors: every group still has its mails (all of them persons, as asserted above).
    assert_floors(
        "person mails",
        &scores,
        &[
            ("inbound", 40),
            ("classify", 12),
            ("bounces", 2),
            ("reply-extraction", 120),
        ],
    );
}

/// Every source a corpus file comes from (its name's prefix) has its licence and attribution
/// in `fixtures/corpora/licences/<source>.txt`.
#[test]
fn every_source_of_the_corpora_has_its_licence() {
    let root = corpora();
    let mut sources = BTreeMap::new();
    for dir in [
        root.join("reply-extraction"),
        root.join("classify/mails"),
        root.join("bounces/mails"),
    ] {
        for f in files(&dir) {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            if name.contains("__") {
                *sources.entry(source_of(&name).to_string()).or_insert(0) += 1;
            }
        }
    }
    println!("corpus files per source: {sources:?}");
    assert_eq!(
        sources.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "bounceparser",
            "crisp",
            "flanker",
            "flufl",
            "github",
            "sisimai",
            "talon"
        ],
        "a source was lost or added without its licence"
    );
    for source in sources.keys() {
        let licence = read_text(&root.join("licences").join(format!("{source}.txt")));
        assert!(
            licence.starts_with("Source:") && licence.contains("Licence:"),
            "licences/{source}.txt names its source and licence"
        );
    }
}
