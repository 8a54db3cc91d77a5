//! `deskmail check-config`: every problem at once, or a short summary; warnings (what works but
//! should be fixed, such as a reply-token secret others may read) on stderr either way.

use std::path::Path;

use super::CmdResult;
use crate::config::{self, Problem, Settings, redact_url};
use crate::errors;
use crate::outbound::{Templates, Transport};
use crate::reply_token::{self, KeyFile};
use crate::store::{Dialect, Schema, Store, sqlite_path};
use crate::workflow::{self, Workflow};

pub async fn run(path: &Path) -> CmdResult {
    let settings = match config::load(path) {
        Ok(s) => s,
        Err(e) => return Err(e.into()),
    };
    let (store_line, mut problems) = check_store(&settings).await;
    problems.extend(check_outbound(&settings));
    let key = check_reply_key(&settings);
    problems.extend(key.problems);
    for w in settings.warnings.iter().chain(&key.warnings) {
        eprintln!("WARNING: {w}");
    }
    if !problems.is_empty() {
        return Err(config::ConfigErrors(problems).into());
    }
    print_summary(&settings, &store_line, &key.line);
    Ok(())
}

/// What the reply-token secret's check found: the summary's line, problems, warnings.
pub(super) struct KeyCheck {
    pub(super) line: String,
    pub(super) problems: Vec<Problem>,
    pub(super) warnings: Vec<Problem>,
}

/// The reply-token secret: readable and at least [`reply_token::MIN_KEY_BYTES`] long, or missing
/// where deskmail may create it; readable by its owner only (else a warning: it works, but
/// whoever reads it can forge verified replies). Checked as the user running check-config.
pub(super) fn check_reply_key(s: &Settings) -> KeyCheck {
    let path = &s.outbound.secret_file;
    let shown = path.display();
    let file = s.file.display().to_string();
    let at = |message: String| Problem::new(file.clone(), "outbound.secret_file", message);
    let mut check = KeyCheck {
        line: shown.to_string(),
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    match reply_token::inspect(path) {
        Err(e) => check.problems.push(at(errors::chain(&e))),
        Ok(KeyFile::Missing {
            creatable: Ok(()), ..
        }) => {
            check.line =
                format!("{shown} (not there yet: created with mode 0600 on the first run)");
        }
        Ok(KeyFile::Missing {
            dir,
            creatable: Err(e),
        }) => check.problems.push(at(format!(
            "{shown} does not exist and cannot be created in {}: {e}",
            dir.display()
        ))),
        Ok(KeyFile::Present { len, mode }) => {
            check.line = format!("{shown} ({len} bytes, mode {mode:03o})");
            let replace = "delete it and deskmail creates a new one (64 hex characters, mode 0600) on its next run";
            if len == 0 {
                check
                    .problems
                    .push(at(format!("{shown} is empty: {replace}")));
            } else if len < reply_token::MIN_KEY_BYTES {
                check.problems.push(at(format!(
                    "{shown} is {len} bytes, too short: a reply-token secret needs at least {} bytes; \
                     write a longer one, or {replace} (reply addresses already sent then no longer verify)",
                    reply_token::MIN_KEY_BYTES
                )));
            }
            if mode & 0o077 != 0 {
                check.warnings.push(at(format!(
                    "{shown} can be read or changed by group or others (mode {mode:03o}): chmod 600 {}",
                    shell_word(path)
                )));
            }
        }
    }
    check
}

/// A path as one shell word, quoted when it has to be.
fn shell_word(path: &Path) -> String {
    let s = path.display().to_string();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:=@%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Checks that the tickets already stored fit the configured workflow: a workflow that drops a
/// state tickets are still in would strand them.
pub(super) async fn check_store(s: &Settings) -> (String, Vec<Problem>) {
    let url = s.store_url.expose();
    let shown = redact_url(url);
    let file = s.file.display().to_string();
    let problem = |key: &str, message: String| Problem::new(file.clone(), key, message);
    if let Some(p) = sqlite_path(url)
        && !p.exists()
    {
        return (format!("{shown} (not created yet)"), Vec::new());
    }
    let store = match Store::connect_within(url, std::time::Duration::from_secs(2)).await {
        Ok(st) => st,
        Err(e) => return (shown, vec![problem("store.url", errors::chain(&e))]),
    };
    let usage = match store.workflow_usage().await {
        Ok(u) => u,
        // A database without deskmail's tables holds no tickets to strand.
        Err(_) => return (format!("{shown} (no schema yet)"), Vec::new()),
    };
    let schema = store.schema().await;
    store.close().await;
    let mut problems = Vec::new();
    if let Schema::Newer { version } = schema {
        problems.push(problem(
            "store.url",
            format!(
                "the store has migration {version}, which this version of deskmail does not know: \
                 a newer deskmail upgraded it"
            ),
        ));
    }
    let mut total = 0;
    for (wf_name, status, count) in &usage {
        total += count;
        let wf: Option<Workflow> = if *wf_name == s.workflow.name {
            Some(s.workflow.clone())
        } else {
            workflow::presets::load(wf_name)
        };
        let key = match &s.workflow_source {
            config::WorkflowSource::File(_) => "workflow.file",
            config::WorkflowSource::Preset(_) => "workflow.preset",
        };
        match wf {
            None => problems.push(problem(
                key,
                format!(
                    "{count} stored ticket(s) follow workflow \"{wf_name}\", which is neither configured nor a preset"
                ),
            )),
            Some(wf) if !wf.states.iter().any(|st| &st.name == status) => problems.push(problem(
                key,
                format!(
                    "workflow \"{wf_name}\" has no state \"{status}\", but {count} stored ticket(s) are in it"
                ),
            )),
            Some(_) => {}
        }
    }
    let kind = match store.dialect() {
        Dialect::Sqlite => "sqlite",
        Dialect::Postgres => "postgres",
    };
    let schema = match schema {
        Schema::Current => "schema current",
        Schema::Behind => "schema needs `deskmail migrate`",
        Schema::Newer { .. } => "schema of a newer deskmail",
    };
    (
        format!("{shown} ({kind}, {total} ticket(s), {schema})"),
        problems,
    )
}

/// Templates compile and render; the SMTP settings make a transport.
fn check_outbound(s: &Settings) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Err(problems) = Templates::load(s.outbound.templates_dir.as_deref()) {
        out.extend(problems.into_iter().map(|p| {
            let at = p
                .line
                .map(|l| format!("line {l}"))
                .unwrap_or_else(|| "template".into());
            Problem::new(p.file, at, p.message)
        }));
    }
    if let Err(e) = Transport::from_settings(&s.outbound) {
        out.push(Problem::new(
            s.file.display().to_string(),
            "outbound.smtp",
            errors::chain(&e),
        ));
    }
    out
}

fn print_summary(s: &Settings, store_line: &str, key_line: &str) {
    let d = &s.directory;
    println!("{}: OK", s.file.display());
    println!(
        "  help desk:  {} <{}>, team notifications to {}, time zone {}",
        d.helpdesk.name, d.helpdesk.address, d.helpdesk.team_address, d.helpdesk.time_zone
    );
    println!(
        "  tickets:    {} (e.g. {})",
        s.ticket_format.pattern(),
        s.ticket_format.render(jiff::Timestamp::now(), 42)
    );
    println!(
        "  workflow:   {} ({}): {} states, {} transitions, {} rules",
        s.workflow.name,
        s.workflow_source,
        s.workflow.states.len(),
        s.workflow.transitions.len(),
        s.workflow.rules.len()
    );
    let mailboxes: Vec<String> = s
        .mailboxes
        .iter()
        .map(|m| format!("{} <{}>", m.name, m.address))
        .collect();
    println!(
        "  mailboxes:  {}",
        if mailboxes.is_empty() {
            "none".into()
        } else {
            mailboxes.join(", ")
        }
    );
    println!(
        "  parties:    {} agent(s), {} group(s), {} organisation(s), {} partner(s), {} people",
        d.agents.len(),
        d.groups.len(),
        d.organisations.len(),
        d.partners.len(),
        d.people_count()
    );
    println!("  store:      {store_line}");
    let o = &s.outbound;
    let transport = Transport::from_settings(o)
        .map(|t| t.describe())
        .unwrap_or_default();
    let templates = match &o.templates_dir {
        Some(d) => format!("built in, overridden from {}", d.display()),
        None => "built in".into(),
    };
    println!("  outbound:   {transport}; templates {templates}");
    println!("  reply key:  {key_line}");
}
