//! The alerting rules in monitoring/: valid for Prometheus, firing when they should (promtool's
//! own rule tests), and naming only metrics that `/metrics` exports.

mod support;

use std::process::Command;

use deskmail::daemon::metrics::Metrics;

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
    assert!(checked.contains("4 rules found"), "{checked}");
    promtool(&["test", "rules", "deskmail-alerts.test.yml"]);
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
    assert!(named >= 4, "{named}");
}
