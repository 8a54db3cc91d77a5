//! The alerting rules in monitoring/: valid for Prometheus, firing when they should (promtool's
//! own rule tests), and naming only metrics that `/metrics` exports.

mod support;

use std::process::Command;

use std::sync::Arc;

use deskmail::config::{Flow, OAuth2Settings};
use deskmail::daemon::metrics::Metrics;
use deskmail::oauth2::TokenSource;
use support::oauth_provider::{CLIENT_ID, Provider};

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(support::root().join("monitoring"))
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool: {e}; scripts/test-setup.sh installs it (Debian's prometheus package)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn the_alerting_rules_are_valid_and_fire_when_they_should() {
    let checked = promtool(&["check", "rules", "deskmail-alerts.yml"]);
    assert!(checked.contains("6 rules found"), "{checked}");
    promtool(&["test", "rules", "deskmail-alerts.test.yml"]);
}

/// An OAuth2 account of this process that got a token from the test provider (whose refresh
/// tokens last 7 days) and whose client secret expires: its series are exported.
fn oauth2_account_with_a_token() {
    let provider = Provider::start();
    provider.set_refresh_token_lifetime(7 * 86_400);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("support.token");
    let token = provider.refresh_token_for("support@helpdesk.example");
    std::fs::write(
        &token_file,
        format!("{{\"refresh_token\": \"{token}\", \"issued_at\": \"2026-12-06T09:00:00Z\"}}"),
    )
    .unwrap();
    let settings = Arc::new(OAuth2Settings {
        provider: "custom".into(),
        client_id: CLIENT_ID.into(),
        client_secret: None,
        flow: Flow::Device,
        scopes: vec!["mail".into()],
        token_url: provider.url("/token"),
        device_url: None,
        authorize_url: None,
        token_file: Some(token_file),
        client_secret_expires: Some(jiff::civil::date(2027, 6, 30)),
    });
    let source = TokenSource::shared(&settings, "support@helpdesk.example");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(source.access_token())
        .unwrap();
}

/// Every `deskmail_…` series a rule reads is one the daemon exports (a counter with `_total`).
#[test]
fn the_rules_read_only_metrics_the_daemon_exports() {
    let m = Metrics::new();
    m.mail("support", "failed");
    m.notified("failed", 1);
    m.connected
        .get_or_create(&Metrics::mailbox("support"))
        .set(1);
    oauth2_account_with_a_token();
    let exported = m.encode();
    let rules = support::read("monitoring/deskmail-alerts.yml");
    let mut named = 0;
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("deskmail_") {
            named += 1;
            assert!(
                exported.contains(&format!("\n{word}{{"))
                    || exported.contains(&format!("\n{word} ")),
                "{word} is not among the daemon's metrics:\n{exported}"
            );
        }
    }
    assert!(named >= 7, "{named}");
}
