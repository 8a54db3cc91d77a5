//! deskmail's reply extraction and classification against public corpora of other projects
//! (`fixtures/corpora/`, see its README): scores per source, printed, with a floor each so that a
//! regression fails.
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

#[test]
fn classification_scores() {
    let root = corpora();
    let dir = root.join("classify");
    let labels = std::fs::read_to_string(dir.join("labels.tsv")).unwrap();
    let own = Own {
        address: "support@helpdesk.example",
        domain: "helpdesk.example",
    };
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
