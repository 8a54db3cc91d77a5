//! deskmail's reply extraction, classification and bounce recognition against public corpora of
//! other projects (`fixtures/corpora/`, see its README): scores per source, printed, with a floor
//! each so that a regression fails.
//!
//! `cargo test --test corpora -- --nocapture` prints the scores and every miss.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use deskmail::inbound::classify::{Own, classify};
use deskmail::inbound::{extract, html, parse};

fn corpora() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/corpora")
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
    let bytes = std::fs::read(case.join(input)).unwrap();
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
    let index = std::fs::read_to_string(dir.join("cases.tsv")).unwrap();
    let mut scores: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (id, source, input, compare) = (cols[0], cols[1], cols[2], cols[3]);
        let case = dir.join(id);
        let expected = std::fs::read_to_string(case.join("expected.txt")).unwrap();
        let got = extracted(&case, input);
        // talon's plain and standard cases are scored apart: their conventions differ.
        let group = if source == "talon" {
            id.split('_').take(3).collect::<Vec<_>>().join("_")
        } else {
            source.to_string()
        };
        let entry = scores.entry(group).or_default();
        entry.1 += 1;
        if normalise(&got, compare) == normalise(&expected, compare) {
            entry.0 += 1;
        } else {
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
    let floor = |g: &str| match g {
        "crisp" => 48,
        "github" => 9,
        "talon__html" => 9,
        "talon__plain" => 46,
        "talon__standard" => 10,
        _ => 0,
    };
    for (group, (ok, _)) in &scores {
        assert!(
            *ok >= floor(group),
            "{group}: {ok} below its floor {}",
            floor(group)
        );
    }
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
    let root = corpora();
    let dir = root.join("classify");
    let labels = std::fs::read_to_string(dir.join("labels.tsv")).unwrap();
    let own = own();
    let (mut ok, mut all) = (0, 0);
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for line in labels.lines() {
        let Some((file, label)) = line.split_once('\t') else {
            continue;
        };
        let raw = std::fs::read(dir.join("mails").join(file)).unwrap();
        let c = classify(&parse::parse(&raw), &own);
        all += 1;
        let e = per.entry(label.to_string()).or_default();
        e.1 += 1;
        if c.class.as_str() == label {
            ok += 1;
            e.0 += 1;
        } else {
            println!(
                "miss {file}: expected {label}, got {} ({})",
                c.class.as_str(),
                c.reason
            );
        }
    }
    println!("classification: {ok}/{all}");
    for (label, (k, n)) in &per {
        println!("  {label}: {k}/{n}");
    }
    assert!(ok >= 45, "classification {ok}/{all} below its floor");
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

#[test]
fn bounce_corpus_scores() {
    let dir = corpora().join("bounces");
    let labels = std::fs::read_to_string(dir.join("labels.tsv")).unwrap();
    let own = own();
    let mut per_source: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut per_format: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let (mut ok, mut all) = (0, 0);
    // Of the bounces classed right: how many name an expected recipient, and how many say
    // rightly whether the failure is for good or a delay.
    let (mut named, mut nameable, mut lasting, mut bounces) = (0, 0, 0, 0);
    let mut misses = Vec::new();
    for case in bounce_cases(&labels) {
        let raw = std::fs::read(dir.join("mails").join(case.file)).unwrap();
        let c = classify(&parse::parse(&raw), &own);
        let right = c.class.as_str() == case.class;
        all += 1;
        ok += usize::from(right);
        for (map, key) in [
            (&mut per_source, case.source),
            (&mut per_format, format_family(case.format)),
        ] {
            let e = map.entry(key.to_string()).or_default();
            e.0 += usize::from(right);
            e.1 += 1;
        }
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
        bounces += 1;
        if (b.permanent && case.kind == "failure") || (!b.permanent && case.kind == "delay") {
            lasting += 1;
        } else {
            misses.push(format!(
                "detail {}: expected a {}, got permanent={} (status {})",
                case.file, case.kind, b.permanent, b.status
            ));
        }
        if !case.recipients.is_empty() {
            nameable += 1;
            if b.recipient
                .as_deref()
                .is_some_and(|r| case.recipients.contains(&r))
            {
                named += 1;
            } else {
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
    println!("bounce corpus: {ok}/{all}");
    println!("  per source:");
    for (source, (k, n)) in &per_source {
        println!("    {source}: {k}/{n}");
    }
    println!("  per format:");
    for (format, (k, n)) in &per_format {
        println!("    {format}: {k}/{n}");
    }
    println!("  bounces with the expected recipient: {named}/{nameable}");
    println!("  bounces rightly permanent or delayed: {lasting}/{bounces}");
    // Floors: what deskmail reaches today, so that a change that loses cases fails here.
    assert!(ok >= 175, "bounce corpus {ok}/{all} below its floor");
    assert!(
        named >= 152,
        "recipients {named}/{nameable} below their floor"
    );
    assert!(
        lasting >= 165,
        "permanence {lasting}/{bounces} below its floor"
    );
}

/// Every person's mail of the fixtures and corpora, whole: the inbound fixtures whose expected
/// class is `person`, the person-labelled mails of `classify/` and `bounces/`, and the
/// reply-extraction inputs (`input.eml` as it is, `input.txt` as the body of a reply).
fn person_mails() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut mails = Vec::new();
    let mut tomls: Vec<PathBuf> = std::fs::read_dir(root.join("inbound"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).into_iter().flatten())
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    tomls.sort();
    for toml in tomls {
        let expect = std::fs::read_to_string(&toml).unwrap();
        if expect.lines().any(|l| l.trim() == "class = \"person\"") {
            let eml = toml.with_extension("eml");
            mails.push((eml.display().to_string(), std::fs::read(&eml).unwrap()));
        }
    }
    for (dir, skip) in [("classify", 0), ("bounces", 1)] {
        let dir = corpora().join(dir);
        let labels = std::fs::read_to_string(dir.join("labels.tsv")).unwrap();
        for line in labels.lines().skip(skip) {
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.get(1) == Some(&"person") {
                let path = dir.join("mails").join(cols[0]);
                mails.push((cols[0].to_string(), std::fs::read(path).unwrap()));
            }
        }
    }
    let dir = corpora().join("reply-extraction");
    let index = std::fs::read_to_string(dir.join("cases.tsv")).unwrap();
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let case = dir.join(cols[0]);
        match cols[2] {
            "input.eml" => mails.push((
                cols[0].into(),
                std::fs::read(case.join("input.eml")).unwrap(),
            )),
            "input.txt" => {
                let body = std::fs::read_to_string(case.join("input.txt")).unwrap();
                let mail = format!(
                    "From: Anna Example <anna@acme.example>\r\nTo: support@helpdesk.example\r\n\
                     Subject: Re: [SUP-20261122-0001] Printer on fire\r\n\
                     Message-ID: <{}@acme.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}",
                    cols[0]
                );
                mails.push((cols[0].into(), mail.into_bytes()));
            }
            _ => {}
        }
    }
    mails
}

#[test]
fn person_mails_stay_persons() {
    let own = own();
    let mails = person_mails();
    let caught: Vec<String> = mails
        .iter()
        .filter_map(|(name, raw)| {
            let c = classify(&parse::parse(raw), &own);
            (c.class.as_str() != "person")
                .then(|| format!("{name}: taken for {} ({})", c.class.as_str(), c.reason))
        })
        .collect();
    for c in &caught {
        println!("{c}");
    }
    println!(
        "person mails taken for automatic ones: {}/{}",
        caught.len(),
        mails.len()
    );
    assert!(
        caught.is_empty(),
        "a person's mail was taken for an automatic one"
    );
}
