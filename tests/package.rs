//! The Debian package, as an admin meets it: `scripts/build-deb.sh` builds it (the release build
//! takes minutes); its contents, control fields and conffile; `dpkg -i`; the installed binary's
//! version, `man deskmail`, `systemd-analyze verify` and `security` of the installed unit, the
//! deskmail user, the config's owner and mode, `check-config` and `migrate` as that user; then
//! `dpkg --purge`, after which every file of the package and the configuration are gone and
//! the help desk's data is kept (the test then removes it, and the deskmail user if its install
//! created it), so that the machine is left as it was.
//!
//! Needs root, dpkg, and a machine where deskmail is not installed (from the package or by
//! hand: the test never touches a real install); where it cannot run it fails saying why.
//! `DESKMAIL_TEST_PACKAGE=skip` skips it.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use support::systemd::{self, MAX_EXPOSURE, directives, one};

const BIN: &str = "/usr/bin/deskmail";
const CONF: &str = "/etc/deskmail/deskmail.toml";
const CONF_DIR: &str = "/etc/deskmail";
const UNIT: &str = "/usr/lib/systemd/system/deskmail.service";
const DATA: &str = "/var/lib/deskmail";
/// The link `systemctl enable deskmail` makes.
const ENABLED: &str = "/etc/systemd/system/multi-user.target.wants/deskmail.service";

/// The files the package installs (its directories aside).
const FILES: &[&str] = &[
    BIN,
    UNIT,
    "/usr/lib/sysusers.d/deskmail.conf",
    "/usr/lib/tmpfiles.d/deskmail.conf",
    CONF,
    "/usr/share/man/man1/deskmail.1.gz",
    "/usr/share/man/man1/deskmail-ticket.1.gz",
    "/usr/share/man/man1/deskmail-ticket-act.1.gz",
    "/usr/share/bash-completion/completions/deskmail",
    "/usr/share/zsh/vendor-completions/_deskmail",
    "/usr/share/fish/vendor_completions.d/deskmail.fish",
    "/usr/share/doc/deskmail/README.md",
    "/usr/share/doc/deskmail/copyright",
    "/usr/share/doc/deskmail/examples/deskmail.example.toml",
];

fn command(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn both(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs the command, which must succeed; its stdout.
fn ok(program: &str, args: &[&str]) -> String {
    let out = command(program, args);
    assert!(
        out.status.success(),
        "{program} {} failed ({}):\n{}",
        args.join(" "),
        out.status,
        both(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn exists(path: &str) -> bool {
    Path::new(path).symlink_metadata().is_ok()
}

/// dpkg's status of the package deskmail, unless dpkg knows nothing of it.
fn package_state() -> Option<String> {
    let out = command("dpkg-query", &["-W", "-f=${Status}", "deskmail"]);
    let status = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !status.is_empty() && !status.ends_with("not-installed"))
        .then_some(status)
}

/// A user's or group's entry (`getent passwd|group NAME`), split at the colons.
fn entry(database: &str, name: &str) -> Option<Vec<String>> {
    let out = command("getent", &[database, name]);
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .split(':')
            .map(str::to_string)
            .collect()
    })
}

/// Why the test cannot run here, if it cannot (it then fails with the reason; only
/// `DESKMAIL_TEST_PACKAGE=skip` skips it).
fn why_not_here() -> Option<String> {
    if ok("id", &["-u"]).trim() != "0" {
        return Some("not root (dpkg -i needs root)".into());
    }
    if !Command::new("dpkg")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Some("no dpkg on this machine".into());
    }
    if let Some(state) = package_state() {
        return Some(format!(
            "the package deskmail is on this machine ({state}), and the test never touches a \
             real install; if a test left it, `dpkg --purge deskmail`"
        ));
    }
    let by_hand = [
        CONF_DIR,
        DATA,
        BIN,
        UNIT,
        "/etc/systemd/system/deskmail.service",
    ];
    if let Some(path) = by_hand.into_iter().find(|p| exists(p)) {
        return Some(format!(
            "{path} exists: deskmail is installed here by hand, and the test never touches a \
             real install"
        ));
    }
    None
}

/// The environment variables cargo sets for a test it runs (by prefix).
const CARGO_TELLS_A_TEST: &[&str] = &[
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "CARGO_CRATE_",
    "CARGO_BIN_",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
];

/// scripts/build-deb.sh: the path of the package it built.
fn build() -> String {
    let root = support::root();
    let mut script = Command::new(root.join("scripts/build-deb.sh"));
    // What cargo tells this test about its crate: some build scripts watch these variables, and
    // the release build would be made anew for them.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if CARGO_TELLS_A_TEST.iter().any(|p| name.starts_with(p)) {
            script.env_remove(&*name);
        }
    }
    let out = script
        .current_dir(&root)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "scripts/build-deb.sh failed");
    let printed = String::from_utf8_lossy(&out.stdout);
    let deb = printed.lines().last().unwrap_or_default().trim();
    assert!(
        deb.ends_with(".deb") && Path::new(&root).join(deb).is_file(),
        "scripts/build-deb.sh should print the package's path, not {printed:?}"
    );
    root.join(deb).display().to_string()
}

/// The paths in the package (`dpkg-deb --contents`), absolute; directories end with '/'.
fn contents(deb: &str) -> Vec<String> {
    ok("dpkg-deb", &["--contents", deb])
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(|p| p.trim_start_matches('.').to_string())
        .filter(|p| p != "/")
        .collect()
}

fn check_package(deb: &str, contents: &[String]) {
    eprintln!("dpkg-deb --contents:\n{}", contents.join("\n"));
    for file in FILES {
        assert!(
            contents.iter().any(|p| p == file),
            "the package has no {file}"
        );
    }
    let info = ok("dpkg-deb", &["--info", deb]);
    eprintln!("dpkg-deb --info:\n{info}");
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name}: in dpkg-deb --info:\n{info}"))
            .to_string()
    };
    assert_eq!(field("Package"), "deskmail");
    assert!(
        field("Version").starts_with(env!("CARGO_PKG_VERSION")),
        "{}",
        field("Version")
    );
    assert_eq!(field("Section"), "mail");
    let depends = field("Depends");
    assert!(
        depends.contains("libc6") && depends.contains("systemd"),
        "Depends: names the libraries (dpkg-shlibdeps) and systemd: {depends}"
    );
    for script in ["postinst", "prerm", "postrm", "conffiles"] {
        assert!(
            info.lines()
                .any(|l| l.contains(" bytes, ") && l.split_whitespace().any(|w| w == script)),
            "the package has no {script}"
        );
    }
    assert_eq!(
        ok("dpkg-deb", &["--info", deb, "conffiles"]).trim(),
        CONF,
        "the config is the package's one conffile"
    );
}

/// Undoes the install when the test fails half-way, and at its end: the package purged, the
/// data the test made removed, and the deskmail user removed if the install created it.
struct Cleanup {
    remove_user: bool,
}

impl Cleanup {
    fn run(&self) {
        if package_state().is_some() {
            let _ = command("dpkg", &["--purge", "deskmail"]);
        }
        // The test runs only where /var/lib/deskmail was not there before.
        let _ = std::fs::remove_dir_all(DATA);
        if self.remove_user {
            if entry("passwd", "deskmail").is_some() {
                let _ = command("userdel", &["deskmail"]);
            }
            if entry("group", "deskmail").is_some() {
                let _ = command("groupdel", &["deskmail"]);
            }
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.run();
    }
}

fn check_binary() {
    let version = ok(BIN, &["--version"]);
    assert_eq!(
        version.trim(),
        format!("deskmail {}", env!("CARGO_PKG_VERSION")),
        "{BIN} --version"
    );
}

/// The subcommands `deskmail --help` lists.
fn subcommands() -> Vec<String> {
    ok(BIN, &["--help"])
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A command's name; its wrapped description goes on further in.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// `man PAGE`, printed.
fn man(page: &str) -> Output {
    Command::new("man")
        .args(["-P", "cat", page])
        .env("LC_ALL", "C")
        .env("MANWIDTH", "200")
        .env_remove("MANPAGER")
        .env_remove("PAGER")
        .output()
        .unwrap()
}

fn check_man_page() {
    let out = man("deskmail");
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && page.contains("deskmail"),
        "man deskmail:\n{}",
        both(&out)
    );
    let commands = subcommands();
    assert!(commands.len() >= 10, "deskmail --help lists {commands:?}");
    for name in &commands {
        assert!(
            page.contains(&format!("deskmail-{name}(1)")),
            "man deskmail does not name the command {name}:\n{page}"
        );
        // ...and that page is there.
        let sub = man(&format!("deskmail-{name}"));
        assert!(sub.status.success(), "man deskmail-{name}:\n{}", both(&sub));
    }
    eprintln!(
        "man deskmail: {} lines, names {}",
        page.lines().count(),
        commands.join(", ")
    );
}

/// The installed unit is systemd/deskmail.service with ExecStart= naming /usr/bin/deskmail;
/// `systemd-analyze verify` finds nothing wrong; its exposure level is "OK" or better.
fn check_unit() {
    let installed = std::fs::read_to_string(UNIT).unwrap();
    let source = std::fs::read_to_string(support::root().join("systemd/deskmail.service")).unwrap();
    assert_eq!(
        installed,
        source.replacen(
            "\nExecStart=/usr/local/bin/deskmail ",
            "\nExecStart=/usr/bin/deskmail ",
            1
        ),
        "the installed unit is systemd/deskmail.service, running {BIN}"
    );
    assert!(one(&directives(&installed, "Service"), "ExecStart").starts_with("/usr/bin/deskmail "));
    let Some(help) = systemd::systemd_analyze() else {
        return;
    };
    let verified = systemd::verify(Path::new(UNIT), &help);
    eprintln!("{}", verified.text);
    assert!(
        verified.ok && verified.complaints.is_empty(),
        "systemd-analyze verify of the installed unit:\n{}",
        verified.text
    );
    if let Some(level) = systemd::exposure(Path::new(UNIT), &help) {
        eprintln!("systemd-analyze security --offline=yes {UNIT}: overall exposure level {level}");
        assert!(level < MAX_EXPOSURE, "exposure level {level}");
    }
}

/// Owner, group and mode of a path, as numbers.
fn owner_group_mode(path: &str) -> (u32, u32, u32) {
    let meta = std::fs::metadata(path).unwrap();
    (meta.uid(), meta.gid(), meta.mode() & 0o7777)
}

/// The user and group deskmail, the directories and the config's owner and mode.
fn check_user_and_config() {
    let user = entry("passwd", "deskmail").expect("the install creates the user deskmail");
    let group = entry("group", "deskmail").expect("the install creates the group deskmail");
    assert_eq!(user[5], DATA, "the deskmail user's home: {user:?}");
    assert_eq!(user[6], "/usr/sbin/nologin", "{user:?}");
    let uid: u32 = user[2].parse().unwrap();
    let gid: u32 = group[2].parse().unwrap();
    assert!(uid > 0 && uid < 1000, "a system user: {user:?}");
    assert_eq!(
        owner_group_mode(CONF),
        (0, gid, 0o640),
        "{CONF}: root:deskmail 0640"
    );
    assert_eq!(owner_group_mode(CONF_DIR), (0, gid, 0o750), "{CONF_DIR}");
    assert_eq!(owner_group_mode(DATA), (uid, gid, 0o750), "{DATA}");
    let shipped = std::fs::read_to_string(support::root().join("packaging/deskmail.toml")).unwrap();
    assert_eq!(std::fs::read_to_string(CONF).unwrap(), shipped);
}

/// `deskmail ARGS` on the installed config, as the user deskmail.
fn as_deskmail(args: &[&str]) -> String {
    let mut all = vec!["-u", "deskmail", "--", BIN, "--config", CONF];
    all.extend_from_slice(args);
    let out = ok("runuser", &all);
    eprintln!(
        "runuser -u deskmail -- deskmail --config {CONF} {}:\n{out}",
        args.join(" ")
    );
    out
}

fn purge_and_check(existed: &[(String, bool)]) {
    let out = command("dpkg", &["--purge", "deskmail"]);
    let said = both(&out);
    eprintln!("dpkg --purge deskmail:\n{said}");
    assert!(out.status.success(), "dpkg --purge failed");
    assert_eq!(package_state(), None, "dpkg still knows deskmail");
    for (path, before) in existed {
        assert_eq!(
            exists(path),
            *before,
            "{path} {} before the install and {} after the purge",
            if *before { "existed" } else { "did not exist" },
            if *before { "is gone" } else { "is there" },
        );
    }
    assert!(!exists(CONF_DIR), "purge removes {CONF_DIR}");
    assert!(
        !exists(ENABLED),
        "purge removes the link systemctl enable made"
    );
    let overrides = command("dpkg-statoverride", &["--list", CONF]);
    assert!(
        !overrides.status.success(),
        "purge removes the config's statoverride: {}",
        both(&overrides)
    );
    assert!(
        Path::new(DATA).join("deskmail.sqlite").is_file(),
        "purge keeps the help desk's data in {DATA}"
    );
    assert!(
        said.contains(&format!("{DATA} (the tickets")),
        "purge says that it kept {DATA}:\n{said}"
    );
    assert!(
        entry("passwd", "deskmail").is_some(),
        "purge leaves the system user deskmail, as Debian does"
    );
}

#[test]
fn the_package_installs_runs_and_purges_leaving_the_machine_as_it_was() {
    if std::env::var("DESKMAIL_TEST_PACKAGE").as_deref() == Ok("skip") {
        eprintln!("DESKMAIL_TEST_PACKAGE=skip: skipping the Debian package's test");
        return;
    }
    if let Some(why) = why_not_here() {
        panic!(
            "the Debian package's test cannot run here: {why}; set DESKMAIL_TEST_PACKAGE=skip to \
             skip it"
        );
    }
    let started = Instant::now();
    let deb = build();
    eprintln!("built {deb} in {:.0?}", started.elapsed());
    let contents = contents(&deb);
    check_package(&deb, &contents);
    let existed: Vec<(String, bool)> = contents.iter().map(|p| (p.clone(), exists(p))).collect();

    let cleanup = Cleanup {
        remove_user: entry("passwd", "deskmail").is_none(),
    };
    let installed = command("dpkg", &["-i", &deb]);
    eprintln!("dpkg -i {deb}:\n{}", both(&installed));
    assert!(installed.status.success(), "dpkg -i failed");
    assert!(
        both(&installed).contains("systemctl enable --now deskmail"),
        "postinst says how to start the service"
    );
    assert!(!exists(ENABLED), "the install does not enable the service");
    check_binary();
    check_man_page();
    check_unit();
    check_user_and_config();

    let checked = as_deskmail(&["check-config"]);
    assert!(checked.contains("not created yet"), "{checked}");
    as_deskmail(&["migrate"]);
    let checked = as_deskmail(&["check-config"]);
    assert!(checked.contains("schema current"), "{checked}");
    ok("systemctl", &["enable", "deskmail.service"]);
    assert!(exists(ENABLED), "systemctl enable deskmail");

    purge_and_check(&existed);
    cleanup.run();
    assert!(!exists(DATA), "the test removes the data it made");
    if cleanup.remove_user {
        assert!(
            entry("passwd", "deskmail").is_none() && entry("group", "deskmail").is_none(),
            "the test removes the user and group deskmail its install created"
        );
        eprintln!("the user and group deskmail, which the install created, are removed");
    }
    eprintln!("the package's test took {:.0?}", started.elapsed());
}
