//! systemd/deskmail.service: it keeps what `deskmail run` depends on, `systemd-analyze verify`
//! finds nothing wrong with it, and `systemd-analyze security` rates it "OK" or better. The
//! checks that run systemd-analyze are skipped where it is missing, and with
//! `DESKMAIL_TEST_SYSTEMD=skip`. They need no running systemd.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const UNIT: &str = include_str!("../systemd/deskmail.service");
const SYSUSERS: &str = include_str!("../systemd/deskmail.sysusers");
const TMPFILES: &str = include_str!("../systemd/deskmail.tmpfiles");

/// The highest overall exposure `systemd-analyze security` may give: below 3.0 is "OK" or
/// better.
const MAX_EXPOSURE: f64 = 3.0;

/// The unit's `key=value` lines of one section, in order (a key may repeat).
fn directives(unit: &str, section: &str) -> Vec<(String, String)> {
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

fn values<'a>(directives: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    directives
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn one<'a>(directives: &'a [(String, String)], key: &str) -> &'a str {
    match values(directives, key).as_slice() {
        [value] => value,
        other => panic!("deskmail.service should set {key}= once, not {other:?}"),
    }
}

#[test]
fn the_unit_has_what_the_daemon_depends_on() {
    let service = directives(UNIT, "Service");
    assert_eq!(one(&service, "Type"), "notify", "the daemon sends READY=1");
    assert_eq!(one(&service, "NotifyAccess"), "main");
    assert_eq!(one(&service, "User"), "deskmail");
    assert_eq!(one(&service, "Group"), "deskmail");
    let exec_start = one(&service, "ExecStart");
    assert!(
        exec_start.starts_with("/usr/local/bin/deskmail ")
            && exec_start.contains("--config /etc/deskmail/deskmail.toml")
            && exec_start.ends_with(" run"),
        "ExecStart= runs the daemon on the system's config: {exec_start}"
    );
    let reload = one(&service, "ExecReload");
    assert!(
        reload.contains("kill") && reload.contains("-HUP") && reload.contains("$MAINPID"),
        "the daemon reloads its settings on SIGHUP: {reload}"
    );
    assert!(
        !one(&service, "WatchdogSec").is_empty(),
        "the daemon sends WATCHDOG=1 and relies on systemd to restart it when it stops"
    );
    assert_eq!(one(&service, "Restart"), "on-failure");
    assert_eq!(
        one(&service, "TimeoutStopSec"),
        "20s",
        "the daemon stops within 10 s of SIGTERM; systemd waits longer than that"
    );
    assert_eq!(one(&service, "StateDirectory"), "deskmail");
    assert_eq!(one(&service, "WorkingDirectory"), "/var/lib/deskmail");
    let families = one(&service, "RestrictAddressFamilies");
    for family in ["AF_UNIX", "AF_INET", "AF_INET6"] {
        assert!(
            families.split_whitespace().any(|f| f == family),
            "the daemon needs {family}: {families}"
        );
    }
    assert!(
        values(&service, "IPAddressDeny").is_empty(),
        "the daemon must reach the mail servers and the database"
    );
    assert_eq!(
        values(&directives(UNIT, "Install"), "WantedBy"),
        ["multi-user.target"]
    );

    // The user the unit runs as is the one deskmail.sysusers creates, and the config
    // directory belongs to its group.
    let user = SYSUSERS
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("u "))
        .expect("deskmail.sysusers creates a user");
    assert!(
        user.starts_with("u deskmail ") && user.contains(" /var/lib/deskmail "),
        "{user}"
    );
    assert!(
        TMPFILES
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["d", "/etc/deskmail", "0750", "root", "deskmail", "-"]),
        "deskmail.tmpfiles gives /etc/deskmail to group deskmail:\n{TMPFILES}"
    );
}

/// `systemd-analyze --help`, or why the checks that run it are skipped.
fn systemd_analyze() -> Option<String> {
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

/// The unit in a directory of its own, named as it is installed, with ExecStart= running the
/// binary under test (verify checks that the program exists and is executable).
fn unit_to_check() -> (tempfile::TempDir, PathBuf) {
    let binary = env!("CARGO_BIN_EXE_deskmail");
    let installed = "ExecStart=/usr/local/bin/deskmail ";
    assert!(
        UNIT.contains(installed),
        "ExecStart= names the installed binary"
    );
    let unit = UNIT.replacen(installed, &format!("ExecStart=\"{binary}\" "), 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deskmail.service");
    std::fs::write(&path, unit).unwrap();
    (dir, path)
}

fn run(args: &[&str], unit: &Path) -> (Output, String) {
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

#[test]
fn systemd_analyze_verify_finds_nothing_wrong() {
    let Some(help) = systemd_analyze() else {
        return;
    };
    let (_dir, unit) = unit_to_check();
    let mut args = vec!["verify", "--man=no"];
    // Only this unit's problems count, not those of units it is ordered after.
    if help.contains("--recursive-errors") {
        args.push("--recursive-errors=no");
    }
    let (out, text) = run(&args, &unit);
    eprintln!(
        "systemd-analyze {} deskmail.service:\n{text}",
        args.join(" ")
    );
    let complaints: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("deskmail.service"))
        .collect();
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify complains about the unit:\n{}",
        complaints.join("\n")
    );
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{text}"
    );
}

#[test]
fn systemd_analyze_security_rates_the_unit_ok() {
    let Some(help) = systemd_analyze() else {
        return;
    };
    if !help.contains("--offline") {
        eprintln!("this systemd-analyze cannot rate a unit file offline: skipping");
        return;
    }
    let (_dir, unit) = unit_to_check();
    let (out, text) = run(&["security", "--offline=yes", "--no-pager"], &unit);
    assert!(
        out.status.success(),
        "systemd-analyze security failed:\n{text}"
    );
    let label = "Overall exposure level for deskmail.service:";
    let exposure: f64 = text
        .lines()
        .find_map(|l| l.split_once(label))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|figure| figure.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure level in:\n{text}"));
    eprintln!("systemd-analyze security: overall exposure level {exposure}");
    assert!(
        exposure < MAX_EXPOSURE,
        "the unit's exposure level is {exposure}, not below {MAX_EXPOSURE}:\n{text}"
    );
}
