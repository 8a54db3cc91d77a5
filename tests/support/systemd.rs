//! A systemd unit file as its directives, and `systemd-analyze` run on one: whether it is here,
//! what `verify` says, and the overall exposure level `security --offline` gives. None of it
//! needs a running systemd. `DESKMAIL_TEST_SYSTEMD=skip` skips the `systemd-analyze` checks.

use std::path::Path;
use std::process::{Command, Output};

/// The highest overall exposure `systemd-analyze security` may give a unit of deskmail's:
/// below 3.0 is "OK" or better.
pub const MAX_EXPOSURE: f64 = 3.0;

/// The unit's `key=value` lines of one section, in order (a key may repeat).
pub fn directives(unit: &str, section: &str) -> Vec<(String, String)> {
    let mut current = String::new();
    let mut found = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            current = line[1..line.len() - 1].to_string();
        } else if current == section
            && let Some((key, value)) = line.split_once('=')
        {
            found.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    found
}

pub fn values<'a>(directives: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    directives
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

pub fn one<'a>(directives: &'a [(String, String)], key: &str) -> &'a str {
    match values(directives, key).as_slice() {
        [value] => value,
        other => panic!("deskmail.service should set {key}= once, not {other:?}"),
    }
}

/// `systemd-analyze --help`, or why the checks that run it are skipped.
pub fn systemd_analyze() -> Option<String> {
    if std::env::var("DESKMAIL_TEST_SYSTEMD").as_deref() == Ok("skip") {
        eprintln!("DESKMAIL_TEST_SYSTEMD=skip: skipping the systemd-analyze checks of the unit");
        return None;
    }
    match Command::new("systemd-analyze").arg("--help").output() {
        Ok(out) if out.status.success() => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
        _ => {
            eprintln!("no systemd-analyze on this machine: skipping its checks of the unit");
            None
        }
    }
}

/// `systemd-analyze ARGS UNIT`: its status and what it wrote (stdout, then stderr).
pub fn run(args: &[&str], unit: &Path) -> (Output, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .env("SYSTEMD_LOG_COLOR", "0")
        .env("SYSTEMD_PAGER", "")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// What `systemd-analyze verify` says of the unit.
pub struct Verified {
    pub ok: bool,
    /// Its whole output, with the command.
    pub text: String,
    /// The lines about this unit; those about units it is ordered after do not count.
    pub complaints: Vec<String>,
}

/// `systemd-analyze verify` of the unit file (`help`: what `systemd_analyze` returned).
pub fn verify(unit: &Path, help: &str) -> Verified {
    let mut args = vec!["verify", "--man=no"];
    if help.contains("--recursive-errors") {
        args.push("--recursive-errors=no");
    }
    let (out, text) = run(&args, unit);
    let name = unit.file_name().unwrap().to_string_lossy().into_owned();
    let complaints = text
        .lines()
        .filter(|l| l.contains(&name))
        .map(str::to_string)
        .collect();
    Verified {
        ok: out.status.success(),
        text: format!("systemd-analyze {} {name}:\n{text}", args.join(" ")),
        complaints,
    }
}

/// The overall exposure level `systemd-analyze security --offline=yes` gives the unit file
/// (0 safest, 10 most exposed), or None where this systemd-analyze cannot rate a file offline.
/// Panics with its output when it fails or gives no level.
pub fn exposure(unit: &Path, help: &str) -> Option<f64> {
    if !help.contains("--offline") {
        eprintln!("this systemd-analyze cannot rate a unit file offline: skipping");
        return None;
    }
    let (out, text) = run(&["security", "--offline=yes", "--no-pager"], unit);
    assert!(
        out.status.success(),
        "systemd-analyze security failed:\n{text}"
    );
    let name = unit.file_name().unwrap().to_string_lossy();
    let label = format!("Overall exposure level for {name}:");
    let level = text
        .lines()
        .find_map(|l| l.split_once(label.as_str()))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|figure| figure.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure level in:\n{text}"));
    Some(level)
}
