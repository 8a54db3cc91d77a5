//! The seed stories again, through the `deskmail` binary on SQLite, each with
//! `DESKMAIL__WORKFLOW__PRESET` set to its preset: the same table as the core tests.

mod support;

use serde_json::Value;
use support::TestEnv;
use support::demo::field_args;
use support::stories::{self, Expect, Story, What};

fn history_len(v: &Value) -> usize {
    v["history"].as_array().unwrap().len()
}

fn play(story: &Story) {
    let mut env = TestEnv::new();
    env.set("DESKMAIL__WORKFLOW__PRESET", story.preset);
    let mut refs: Vec<String> = Vec::new();
    for (i, step) in story.steps.iter().enumerate() {
        let at = format!("{} step {} ({})", story.preset, i + 1, step.who);
        let before = match step.what {
            What::Act { .. } => Some(env.show(&refs[step.on])),
            _ => None,
        };
        let list_before = env.ok(&["ticket", "list", "--json"]);
        let mut args: Vec<String> = Vec::new();
        match &step.what {
            What::See => {
                let Expect::Visible(v) = step.expect else {
                    panic!("{at}: See needs Visible")
                };
                let out = env.run(&["ticket", "show", &refs[step.on], "--as", step.who]);
                assert_eq!(out.status.success(), v, "{at}: visibility");
                if !v {
                    let err = String::from_utf8_lossy(&out.stderr);
                    assert!(err.contains("may not see"), "{at}: {err}");
                }
                continue;
            }
            What::Create {
                subject,
                text,
                fields,
                to,
            } => {
                args.extend(
                    [
                        "ticket",
                        "create",
                        "--as",
                        step.who,
                        "--subject",
                        subject,
                        "--text",
                        text,
                    ]
                    .map(String::from),
                );
                if let Some(to) = to {
                    args.extend(["--to".to_string(), to.to_string()]);
                }
                args.extend(field_args(fields));
            }
            What::Act {
                action,
                comment,
                fields,
            } => {
                args.extend(
                    [
                        "ticket",
                        "act",
                        &refs[step.on],
                        "--as",
                        step.who,
                        "--action",
                        action,
                    ]
                    .map(String::from),
                );
                if let Some(c) = comment {
                    args.extend(["--comment".to_string(), c.to_string()]);
                }
                args.extend(field_args(fields));
            }
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.run(&argv);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        match &step.expect {
            Expect::Status(want) => {
                assert!(out.status.success(), "{at}: failed: {stderr}");
                let reference = stdout.trim().to_string();
                let on = if matches!(step.what, What::Create { .. }) {
                    refs.push(reference.clone());
                    refs.len() - 1
                } else {
                    assert_eq!(reference, refs[step.on], "{at}: printed ref");
                    step.on
                };
                let v = env.show(&refs[on]);
                assert_eq!(v["status"], *want, "{at}: status");
                let new_history =
                    &v["history"].as_array().unwrap()[before.as_ref().map_or(0, history_len)..];
                for m in step.mailed {
                    assert!(
                        new_history
                            .iter()
                            .any(|h| h["kind"] == "notice"
                                && h["detail"].as_str().unwrap().contains(m)),
                        "{at}: {m} not notified; history: {new_history:?}"
                    );
                }
                if let Some(turn) = step.waiting_on {
                    assert_eq!(v["waiting_on"], turn, "{at}: turn");
                }
                for (k, val) in step.fields {
                    assert_eq!(v["fields"][k], *val, "{at}: field {k}");
                }
            }
            Expect::Refused(code) | Expect::RefusedAllowing(code, _) => {
                assert!(
                    !out.status.success(),
                    "{at}: expected a refusal, got {stdout}"
                );
                assert!(stderr.contains("refused:"), "{at}: {stderr}");
                assert!(
                    stderr.contains(stories::reason_text(code)),
                    "{at}: {stderr}"
                );
                if let Expect::RefusedAllowing(_, allowed) = &step.expect {
                    assert!(
                        stderr.contains(&format!("allowed actions: {}", allowed.join(", "))),
                        "{at}: {stderr}"
                    );
                }
                // A refusal changes nothing.
                if let Some(before) = before {
                    assert_eq!(env.show(&refs[step.on]), before, "{at}: the store changed");
                }
                assert_eq!(
                    env.ok(&["ticket", "list", "--json"]),
                    list_before,
                    "{at}: the store changed"
                );
            }
            Expect::Visible(_) => unreachable!(),
        }
    }
}

#[test]
fn partner_routing_story_by_cli() {
    play(&stories::partner_routing());
}

#[test]
fn open_closed_story_by_cli() {
    play(&stories::open_closed());
}

#[test]
fn itil_portal_story_by_cli() {
    play(&stories::itil_portal());
}

#[test]
fn triage_story_by_cli() {
    play(&stories::triage());
}

#[test]
fn co_managed_story_by_cli() {
    play(&stories::co_managed());
}
