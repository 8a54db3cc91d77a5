//! The documentation an admin reads is kept true:
//! - every deskmail command line README.md and docs/*.md show (in fenced `sh`/`console` blocks,
//!   and the commands of the MTA configurations they show) is run here against the demo config
//!   in a temporary directory, or, where it cannot run here, named in [`COVERED`] with the test
//!   that runs it;
//! - every relative link of README.md, CONTRIBUTING.md, ARCHITECTURE.md and docs/*.md points to
//!   a file;
//! - every key the configuration code accepts is in docs/configuration.md;
//! - the complete workflow example of docs/workflows.md loads and a ticket goes through it.

mod support;

#[path = "docs/keys.rs"]
mod keys;
#[path = "docs/links.rs"]
mod links;
#[path = "docs/shown.rs"]
mod shown;
#[path = "docs/world.rs"]
mod world;

use std::path::{Path, PathBuf};

use support::{TestEnv, root};

/// Commands that cannot run against a demo config in a temporary directory (they need a mail
/// server, a provider's sign-in, or run until stopped), each with the test that runs it:
/// `FILE::FUNCTION`.
const COVERED: [(&str, &str); 4] = [
    (
        "run",
        "tests/daemon.rs::mail_delivered_into_a_watched_maildir_is_applied_moved_and_answered",
    ),
    (
        "auth login",
        "tests/oauth2.rs::the_device_flow_stores_a_token",
    ),
    (
        "auth status",
        "tests/oauth2.rs::the_device_flow_stores_a_token",
    ),
    (
        "doctor",
        "tests/doctor.rs::a_healthy_set_up_has_no_failure_and_shows_the_certificates_days_left",
    ),
];

/// README.md and docs/*.md, sorted: the documents whose commands are checked.
fn admin_documents() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    docs.insert(0, root().join("README.md"));
    docs
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn covered(command: &str) -> Option<&'static str> {
    COVERED
        .iter()
        .find(|(c, _)| command == *c || command.starts_with(&format!("{c} ")))
        .map(|(_, test)| *test)
}

#[test]
fn every_command_the_documents_show_runs_or_is_covered() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for doc in admin_documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        let commands = shown::commands(&relative(&doc), &text);
        if commands.is_empty() {
            continue;
        }
        let mut world = world::World::new();
        for c in commands {
            if let Some(test) = covered(&c.command()) {
                eprintln!("covered by {test}: {}", c.at());
                continue;
            }
            match world.run(&c) {
                Ok(()) => {
                    eprintln!("ran: {}", c.at());
                    ran += 1;
                }
                Err(why) => failures.push(format!(
                    "{}\n  neither run here nor covered by a test in COVERED: {why}",
                    c.at()
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        ran >= 20,
        "only {ran} commands ran: are the blocks still read?"
    );
}

#[test]
fn each_covering_test_exists() {
    for (command, test) in COVERED {
        let (file, function) = test.split_once("::").unwrap();
        let path = root().join(file);
        let source = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("`{command}` is covered by {test}, but {file}: {e}"));
        assert!(
            source.contains(&format!("fn {function}(")),
            "`{command}` is covered by {test}, but {file} has no fn {function}"
        );
    }
}

#[test]
fn relative_links_point_to_files() {
    let mut docs = admin_documents();
    docs.push(root().join("CONTRIBUTING.md"));
    docs.push(root().join("ARCHITECTURE.md"));
    let mut broken = Vec::new();
    for doc in docs {
        let text = std::fs::read_to_string(&doc).unwrap();
        for (line, target) in links::relative_links(&text) {
            let path = doc.parent().unwrap().join(&target);
            if !path.exists() {
                broken.push(format!("{}:{line}: {target}", relative(&doc)));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to nothing:\n{}",
        broken.join("\n")
    );
}

#[test]
fn every_config_key_is_in_the_configuration_reference() {
    let reference = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    let mut missing = Vec::new();
    let mut known: Vec<String> = Vec::new();
    let mut structs = 0;
    for entry in std::fs::read_dir(root().join("src/config")).unwrap() {
        let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for (name, fields) in keys::raw_structs(&source) {
            structs += 1;
            let Some((_, prefixes)) = keys::SECTIONS.iter().find(|(n, _)| *n == name) else {
                missing.push(format!(
                    "{name}: where is it read from? (tests/docs/keys.rs SECTIONS)"
                ));
                continue;
            };
            for prefix in *prefixes {
                for field in &fields {
                    let key = format!("{prefix}.{field}");
                    // The key itself, or (for a key that is a table) the table or its keys.
                    let listed = reference.contains(&format!("`{key}`"))
                        || reference.contains(&format!("[{key}]"))
                        || reference.contains(&format!("`{key}."));
                    if !listed {
                        missing.push(key.clone());
                    }
                    known.push(key);
                }
            }
        }
    }
    assert!(
        structs >= keys::SECTIONS.len(),
        "only {structs} Raw structs found"
    );
    assert!(
        missing.is_empty(),
        "keys the config accepts but docs/configuration.md does not list:\n{}",
        missing.join("\n")
    );
    // And the other way: every key the reference's tables list is one the config reads.
    let unknown: Vec<&str> = reference
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
        .filter(|key| {
            !known
                .iter()
                .any(|k| k == key || k.starts_with(&format!("{key}.")))
        })
        .collect();
    assert!(
        unknown.is_empty(),
        "keys docs/configuration.md lists but the config does not read:\n{}",
        unknown.join("\n")
    );
}

/// The first ```toml block after the heading "## A complete example" of docs/workflows.md.
fn workflow_example() -> String {
    let text = std::fs::read_to_string(root().join("docs/workflows.md")).unwrap();
    let section = text
        .split_once("## A complete example")
        .expect("docs/workflows.md has the heading \"## A complete example\"")
        .1;
    let block = section
        .split_once("```toml\n")
        .expect("a ```toml block follows it")
        .1;
    block.split_once("```").unwrap().0.to_string()
}

#[test]
fn the_workflow_example_loads_and_a_ticket_goes_through_it() {
    let env = TestEnv::new();
    env.use_workflow_file("workflow.toml", &workflow_example());

    let summary = env.ok(&["check-config"]);
    assert!(
        summary.contains("workflow:   small-desk (file "),
        "check-config names the workflow of the file:\n{summary}"
    );

    let create = |extra: &[&str]| env.create_fire_ticket_with(extra);
    let status = |r: &str| env.show(r)["status"].as_str().unwrap().to_string();
    let act = |r: &str, who: &str, action: &str, comment: &str| {
        env.ok(&[
            "ticket",
            "act",
            r,
            "--as",
            who,
            "--action",
            action,
            "--comment",
            comment,
        ]);
    };

    // The create rule gives a priority unless the request names one.
    let plain = create(&[]);
    assert_eq!(env.show(&plain)["fields"]["priority"], "normal");
    let r = create(&["--field", "priority=high"]);
    assert_eq!(env.show(&r)["fields"]["priority"], "high");
    assert_eq!(status(&r), "Open");

    act(
        &r,
        "alice@helpdesk.example",
        "Ask customer",
        "Is it plugged in?",
    );
    assert_eq!(status(&r), "Waiting for customer");
    // The customer's answer hands it back (the rule "customer answers").
    act(&r, "anna@acme.example", "comment", "Yes, it is.");
    assert_eq!(status(&r), "Open");
    // Only agents solve.
    env.fails(&[
        "ticket",
        "act",
        &r,
        "--as",
        "anna@acme.example",
        "--action",
        "Solve",
    ]);
    act(&r, "alice@helpdesk.example", "Lösen", "Replaced the fuse.");
    assert_eq!(status(&r), "Solved");
    // Five days of silence close it.
    env.ok(&["sweep", "--now", "2099-01-01T00:00:00Z"]);
    assert_eq!(status(&r), "Closed");
}
