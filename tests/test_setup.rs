//! What scripts/test-setup.sh leaves on the machine. The system's own Postfix and Dovecot that
//! it installed are there for their programs only (the mail tests start instances of their own,
//! tests/mailstack/): they must not start at boot, and the system's Postfix listens on loopback
//! at most. Mail packages that were on the machine before are the admin's and not looked at.
//! `DESKMAIL_TEST_MAIL=skip` skips this with the other mail tests. It also checks that the tools
//! the Debian package's test runs are there.

use std::process::Command;

/// Where test-setup.sh lists the packages it installed (it also lists those an earlier version
/// of it installed, found in apt's history).
const MARKER: &str = "/var/lib/deskmail-test-setup/installed";

fn installed_by_test_setup(package: &str) -> bool {
    std::fs::read_to_string(MARKER).is_ok_and(|m| m.lines().any(|l| l.trim() == package))
}

fn enabled_at_boot(unit: &str) -> bool {
    let systemd = Command::new("systemctl")
        .args(["is-enabled", unit])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "enabled");
    let links = (2..=5).any(|level| {
        std::fs::read_dir(format!("/etc/rc{level}.d"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.starts_with('S') && name.get(3..) == Some(unit)
            })
    });
    systemd || links
}

#[test]
fn the_system_mail_services_test_setup_installed_stay_off() {
    if std::env::var("DESKMAIL_TEST_MAIL").as_deref() == Ok("skip") {
        eprintln!("DESKMAIL_TEST_MAIL=skip: skipping the check of what test-setup.sh installed");
        return;
    }
    let ours: Vec<&str> = ["postfix", "dovecot-core"]
        .into_iter()
        .filter(|p| installed_by_test_setup(p))
        .collect();
    if ours.is_empty() {
        eprintln!(
            "test-setup.sh installed no mail package on this machine: its Postfix and Dovecot \
             are the admin's and not looked at"
        );
    }
    for (package, unit) in [("postfix", "postfix"), ("dovecot-core", "dovecot")] {
        if ours.contains(&package) {
            assert!(
                !enabled_at_boot(unit),
                "the system's {unit}, installed by scripts/test-setup.sh for its programs, \
                 starts at boot: run scripts/test-setup.sh"
            );
        }
    }
    if ours.contains(&"postfix") && std::path::Path::new("/etc/postfix/main.cf").exists() {
        let out = Command::new("postconf")
            .args(["-h", "inet_interfaces"])
            .output()
            .unwrap();
        let interfaces = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(
            interfaces, "loopback-only",
            "the system's Postfix, installed by scripts/test-setup.sh, would listen beyond \
             loopback: run scripts/test-setup.sh"
        );
    }
}

/// The Prometheus that comes with promtool is never started at boot, nor left running.
#[test]
fn the_system_prometheus_test_setup_installed_stays_off() {
    if !installed_by_test_setup("prometheus") {
        eprintln!("test-setup.sh did not install Prometheus here: the admin's, not looked at");
        return;
    }
    assert!(
        !enabled_at_boot("prometheus"),
        "the system's Prometheus, installed by scripts/test-setup.sh for promtool, starts at \
         boot: run scripts/test-setup.sh"
    );
    // Read off /proc (pgrep's procps may not be installed).
    let running = std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
        std::fs::read_to_string(p.path().join("comm")).is_ok_and(|c| c.trim() == "prometheus")
    });
    assert!(
        !running,
        "the system's Prometheus runs: run scripts/test-setup.sh"
    );
}

/// What the Debian package's test (tests/package.rs) runs: cargo-deb (scripts/build-deb.sh),
/// dpkg-shlibdeps (cargo-deb's `$auto` dependencies) and man. Skipped with the package's test
/// (`DESKMAIL_TEST_PACKAGE=skip`).
#[test]
fn the_package_tools_are_installed() {
    if std::env::var("DESKMAIL_TEST_PACKAGE").as_deref() == Ok("skip") {
        eprintln!("DESKMAIL_TEST_PACKAGE=skip: skipping the check of the package's tools");
        return;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let cargo_deb = Command::new(cargo).args(["deb", "--version"]).output();
    assert!(
        cargo_deb.as_ref().is_ok_and(|o| o.status.success()),
        "no cargo-deb (scripts/build-deb.sh needs it): run scripts/test-setup.sh"
    );
    eprintln!(
        "{}",
        String::from_utf8_lossy(&cargo_deb.unwrap().stdout).trim()
    );
    for program in ["/usr/bin/dpkg-shlibdeps", "/usr/bin/man"] {
        assert!(
            std::path::Path::new(program).exists(),
            "no {program} (the package's test needs it): run scripts/test-setup.sh"
        );
    }
}
