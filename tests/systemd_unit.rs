//! systemd/deskmail.service: it keeps what `deskmail run` depends on, `systemd-analyze verify`
//! finds nothing wrong with it, and `systemd-analyze security` rates it "OK" or better. The
//! checks that run systemd-analyze are skipped where it is missing, and with
//! `DESKMAIL_TEST_SYSTEMD=skip`. They need no running systemd.

mod support;

use std::path::PathBuf;
use support::systemd::{MAX_EXPOSURE, directives, exposure, one, systemd_analyze, values, verify};

const UNIT: &str = include_str!("../systemd/deskmail.service");
const SYSUSERS: &str = include_str!("../systemd/deskmail.sysusers");
const TMPFILES: &str = include_str!("../systemd/deskmail.tmpfiles");

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
    assert!(
        TMPFILES
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == [
                    "d",
                    "/var/lib/deskmail",
                    "0750",
                    "deskmail",
                    "deskmail",
                    "-"
                ]),
        "deskmail.tmpfiles makes the state directory the deskmail user's:\n{TMPFILES}"
    );
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

#[test]
fn systemd_analyze_verify_finds_nothing_wrong() {
    let Some(help) = systemd_analyze() else {
        return;
    };
    let (_dir, unit) = unit_to_check();
    let verified = verify(&unit, &help);
    eprintln!("{}", verified.text);
    assert!(
        verified.complaints.is_empty(),
        "systemd-analyze verify complains about the unit:\n{}",
        verified.complaints.join("\n")
    );
    assert!(
        verified.ok,
        "systemd-analyze verify failed:\n{}",
        verified.text
    );
}

#[test]
fn systemd_analyze_security_rates_the_unit_ok() {
    let Some(help) = systemd_analyze() else {
        return;
    };
    let (_dir, unit) = unit_to_check();
    let Some(level) = exposure(&unit, &help) else {
        return;
    };
    eprintln!("systemd-analyze security: overall exposure level {level}");
    assert!(
        level < MAX_EXPOSURE,
        "the unit's exposure level is {level}, not below {MAX_EXPOSURE}"
    );
}
