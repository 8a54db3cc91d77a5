//! Shared test support: the demo config in a temporary directory, the CLI runner, the demo's
//! people and values, stores on both dialects (a throw-away PostgreSQL database per test), and
//! the seed stories.
#![allow(dead_code)]

pub mod daemon;
pub mod demo;
pub mod dialects;
pub mod hostile;
pub mod mailstack;
pub mod numbers;
pub mod oauth_provider;
pub mod pg;
pub mod stories;
pub mod systemd;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's root (where deskmail.example.toml is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The demo settings of deskmail.example.toml, with a workflow preset.
pub fn demo_settings(preset: &str) -> deskmail::config::Settings {
    let env = TestEnv::new();
    std::fs::write(
        env.config(),
        std::fs::read_to_string(root().join("deskmail.example.toml"))
            .unwrap()
            .replace(
                "preset = \"partner-routing\"",
                &format!("preset = \"{preset}\""),
            ),
    )
    .unwrap();
    deskmail::config::load(&env.config()).unwrap_or_else(|e| panic!("{e}"))
}

/// A desk on the demo settings and the store at `url`; the reply-token secret and the spool live
/// in a temporary directory that lives as long as the process.
pub async fn demo_desk(url: &str, preset: &str) -> deskmail::desk::Desk {
    demo_desk_with(url, preset, |_| {}).await
}

/// [`demo_desk`] with settings changed by `adjust` (which may also put the secret and the
/// spool elsewhere).
pub async fn demo_desk_with(
    url: &str,
    preset: &str,
    adjust: impl FnOnce(&mut deskmail::config::Settings),
) -> deskmail::desk::Desk {
    let mut settings = demo_settings(preset);
    let dir = tempfile::tempdir().unwrap().keep();
    settings.outbound.secret_file = dir.join("reply.key");
    settings.outbound.spool_dir = dir.join("spool");
    adjust(&mut settings);
    let outbound = deskmail::outbound::Outbound::open(&settings.outbound).unwrap();
    let store = deskmail::store::Store::open(url).await.unwrap();
    deskmail::desk::Desk::new(settings, store, outbound)
}

/// A temporary directory holding a copy of the example config; the SQLite file lands in it.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            root().join("deskmail.example.toml"),
            dir.path().join("deskmail.toml"),
        )
        .unwrap();
        TestEnv {
            dir,
            env: Vec::new(),
        }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("deskmail.toml")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Sets a `DESKMAIL__...` override for every command run in this environment.
    pub fn set(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_deskmail"));
        c.arg("--config").arg(self.config());
        without_deskmail_env(&mut c);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs deskmail with these arguments.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Runs deskmail and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "deskmail {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `ticket create` of the demo's first request: Anna's printer on fire. Its ref.
    pub fn create_fire_ticket(&self) -> String {
        self.create_fire_ticket_with(&[])
    }

    /// [`TestEnv::create_fire_ticket`] with further arguments (`--field`, ...).
    pub fn create_fire_ticket_with(&self, extra: &[&str]) -> String {
        let mut args = vec![
            "ticket",
            "create",
            "--as",
            "anna@acme.example",
            "--subject",
            "Printer on fire",
            "--text",
            "Smoke everywhere.",
        ];
        args.extend_from_slice(extra);
        self.ok(&args).trim().to_string()
    }

    /// The config follows the workflow `file` (in the environment's directory, written with
    /// `content`) instead of the example's preset.
    pub fn use_workflow_file(&self, file: &str, content: &str) {
        std::fs::write(self.path(file), content).unwrap();
        let config = read("deskmail.example.toml").replace(
            "preset = \"partner-routing\"",
            &format!("file = \"{file}\""),
        );
        std::fs::write(self.config(), config).unwrap();
    }

    /// Runs deskmail and requires failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "deskmail {args:?} should fail but printed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// `ticket show REF --json` as a JSON value.
    pub fn show(&self, reference: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["ticket", "show", reference, "--json"])).unwrap()
    }

    /// Every ticket `ticket list --all --json` gives with these further arguments (a JSON
    /// array), newest first.
    pub fn tickets(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["ticket", "list", "--all", "--json"];
        all.extend_from_slice(args);
        let v: serde_json::Value = serde_json::from_str(&self.ok(&all)).unwrap();
        assert!(v["next"].is_null(), "--all leaves no next page");
        v["tickets"].clone()
    }

    /// The mails `inbound list --json` gives with these further arguments (a JSON array),
    /// newest first.
    pub fn inbound(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["inbound", "list", "--json"];
        all.extend_from_slice(args);
        let v: serde_json::Value = serde_json::from_str(&self.ok(&all)).unwrap();
        v["mails"].clone()
    }

    /// `outbox list --json` (up to 500 rows), newest first.
    pub fn outbox(&self) -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str::<serde_json::Value>(
            &self.ok(&["outbox", "list", "--json", "--limit", "500"]),
        )
        .unwrap()["notifications"]
            .clone();
        v.as_array().unwrap().clone()
    }

    /// How many lines of a ticket's history have a detail starting with `prefix`.
    pub fn history_lines(&self, reference: &str, prefix: &str) -> usize {
        self.show(reference)["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["detail"].as_str().unwrap().starts_with(prefix))
            .count()
    }
}

/// The example config with extra keys in its `[outbound]` section and extra tables at the end
/// (e.g. `[outbound.smtp]`).
pub fn example_config(outbound_keys: &str, tables: &str) -> String {
    let mut example = read("deskmail.example.toml");
    assert!(
        example.contains("\n[outbound]\n"),
        "the example config has an [outbound] section"
    );
    // A key set here replaces the example's own line for it.
    for line in outbound_keys.lines() {
        if let Some((key, _)) = line.split_once('=') {
            let prefix = format!("{} =", key.trim());
            example = example
                .lines()
                .filter(|l| !l.starts_with(&prefix))
                .collect::<Vec<_>>()
                .join("\n")
                + "\n";
        }
    }
    let mut config = example.replacen(
        "\n[outbound]\n",
        &format!("\n[outbound]\n{outbound_keys}\n"),
        1,
    );
    config.push('\n');
    config.push_str(tables);
    config
}

/// The example config with `tables` at the end, and the support and billing mailboxes given
/// `support_table` and `billing_table` (a `[mailboxes.imap]` or `[mailboxes.maildir]` table
/// and what follows it; "" for none).
pub fn example_config_with_mailboxes(
    support_table: &str,
    billing_table: &str,
    tables: &str,
) -> String {
    let config = example_config("", tables);
    let support = "name = \"support\"\naddress = \"support@helpdesk.example\"\n";
    let billing = "name = \"billing\"\naddress = \"billing@helpdesk.example\"\nrequest_type = \"Sales/Billing enquiry\"\nqueue = \"Billing\"\n";
    assert!(config.contains(support) && config.contains(billing));
    config
        .replacen(support, &format!("{support}{support_table}"), 1)
        .replacen(billing, &format!("{billing}{billing_table}"), 1)
}

/// Runs a Python script (`python3 -c SCRIPT ARGS...`) that prints one number (a rate, for the
/// benchmarks' plain clients), and returns the number.
pub fn python_figure(script: &str, args: &[&str]) -> f64 {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// `c` without the caller's `DESKMAIL*` variables, so that the config file alone counts.
pub fn without_deskmail_env(c: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars() {
        if k.starts_with("DESKMAIL") {
            c.env_remove(k);
        }
    }
    c
}

/// Reads a file relative to the repository root.
pub fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}
