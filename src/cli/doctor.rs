//! `deskmail doctor [--json]`: whether every account, server and certificate of the config works
//! (see [`crate::doctor`]). The config is loaded first (stop there if it does not load); what
//! `check-config` checks is reported as checks of their own (the stored tickets against the
//! workflow, the reply-token key, the templates), then the live checks and the directory's.
//! Exit 1 when a check fails.

use std::path::Path;

use super::check_config::{check_reply_key, check_store};
use super::{CmdResult, Failure};
use crate::config::{self, Settings};
use crate::doctor::{self, Check};
use crate::outbound::Templates;

pub async fn run(path: &Path, json: bool) -> CmdResult {
    let checks = match config::load(path) {
        Ok(settings) => all(path, &settings).await,
        Err(config::ConfigErrors(problems)) => vec![Check::fail(
            "config",
            "load",
            format!(
                "{} does not load: {}",
                path.display(),
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            "fix the problems (`deskmail check-config` lists each with its key) and run doctor again",
        )],
    };
    if json {
        println!("{}", doctor::render_json(&checks));
    } else {
        print!("{}", doctor::render_text(&checks));
    }
    let failed = doctor::failures(&checks);
    if failed > 0 {
        return Err(Failure::msg(format!("doctor: {failed} check(s) failed")));
    }
    Ok(())
}

/// Every check of loaded settings.
async fn all(path: &Path, settings: &Settings) -> Vec<Check> {
    let mut checks = vec![Check::ok(
        "config",
        "load",
        format!("{} loads", path.display()),
    )];
    checks.extend(settings.warnings.iter().map(|w| {
        Check::warn(
            "config",
            "warning",
            w.to_string(),
            "works as it is, but `deskmail check-config` explains what to change",
        )
    }));
    checks.extend(doctor::live(settings).await);
    // The stored tickets are looked at only in a store that answered with a schema it knows.
    let store_failed = checks
        .iter()
        .any(|c| c.subject == "store" && c.status == doctor::Status::Fail);
    if !store_failed {
        checks.push(workflow_fit(settings).await);
    }
    checks.push(reply_key(settings));
    checks.push(templates(settings));
    checks.extend(doctor::directory::check(&settings.directory));
    checks
}

/// check-config's look at the stored tickets: each in a state the workflow has.
async fn workflow_fit(settings: &Settings) -> Check {
    let (_, problems) = check_store(settings).await;
    if problems.is_empty() {
        return Check::ok(
            "store",
            "tickets",
            format!(
                "every stored ticket is in a state of its workflow ({} is {})",
                settings.workflow.name, settings.workflow_source
            ),
        );
    }
    Check::fail(
        "store",
        "tickets",
        problems
            .iter()
            .map(|p| p.message.clone())
            .collect::<Vec<_>>()
            .join("; "),
        "put the missing states back into the workflow (tickets in a state it lacks are stranded)",
    )
}

/// check-config's look at the reply-token secret.
fn reply_key(settings: &Settings) -> Check {
    let key = check_reply_key(settings);
    let (subject, check) = ("reply-token key", "secret_file");
    let messages = |v: &[config::Problem]| {
        v.iter()
            .map(|p| p.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !key.problems.is_empty() {
        Check::fail(subject, check, key.line, messages(&key.problems))
    } else if !key.warnings.is_empty() {
        Check::warn(subject, check, key.line, messages(&key.warnings))
    } else {
        Check::ok(subject, check, key.line)
    }
}

/// Every notification template compiles and renders with a sample ticket.
fn templates(settings: &Settings) -> Check {
    let dir = settings.outbound.templates_dir.as_deref();
    let source = match dir {
        Some(d) => format!("built in, overridden from {}", d.display()),
        None => "built in".into(),
    };
    match Templates::load(dir) {
        Ok(_) => Check::ok(
            "templates",
            "render",
            format!("every template ({source}) renders with a sample ticket"),
        ),
        Err(problems) => Check::fail(
            "templates",
            "render",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
            "fix the template files named (templates/README.md lists what each gets)",
        ),
    }
}
