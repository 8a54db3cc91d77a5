//! The relative links of a Markdown document: `[text](target)` outside code blocks and code
//! spans, without addresses (`https:`, `mailto:`) and anchors of the same page.

/// Every relative link target, with its line (1-based), its `#anchor` cut off.
pub fn relative_links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_fence = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        for target in targets(&without_code_spans(line)) {
            let target = target.split('#').next().unwrap_or_default();
            let external = target.contains("://") || target.starts_with("mailto:");
            if !target.is_empty() && !external {
                out.push((i + 1, target.to_string()));
            }
        }
    }
    out
}

/// The line with its `code spans` removed.
fn without_code_spans(line: &str) -> String {
    line.split('`').step_by(2).collect::<Vec<_>>().join(" ")
}

/// The targets of `](...)` in a line.
fn targets(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(end) => {
                out.push(after[..end].trim());
                rest = &after[end..];
            }
            None => break,
        }
    }
    out
}

#[test]
fn links_outside_code_without_addresses() {
    let doc = "[a](docs/a.md#x), [b](https://x.org/y), [c](#here), `[d](no.md)`\n\
        ```\n[e](no.md)\n```\n\
        [f](../README.md) and [g](mailto:x@y)\n";
    assert_eq!(
        relative_links(doc),
        vec![
            (1, "docs/a.md".to_string()),
            (5, "../README.md".to_string())
        ]
    );
}
