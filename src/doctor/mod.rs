//! `deskmail doctor`: before going live, whether every account, server and certificate of the
//! config works. Each check is a [`Check`] (`OK`, `WARN` or `FAIL`, what was checked, what was
//! found, and for a warning or a failure what to do); the checks talk to the real servers with
//! the daemon's own connection code, each within [`TIMEOUT`], the mailboxes at the same time.
//!
//! ```text
//! imap.rs       an IMAP mailbox: DNS, TCP, TLS, login, capabilities, folders, messages
//! smtp.rs       [outbound.smtp]: DNS, TCP, EHLO, STARTTLS/TLS, AUTH, SIZE; or the spool
//! local.rs      a Maildir mailbox, the store (reachable, migrations, free space)
//! directory.rs  the directory's ambiguities (pure)
//! net.rs        DNS and TCP, shared by IMAP and SMTP
//! tls.rs        a certificate's expiry (a small DER walk) and why a handshake failed
//! ```

pub mod directory;
mod imap;
mod local;
mod net;
mod smtp;
pub mod tls;

use std::time::Duration;

use serde::Serialize;

use crate::config::{Settings, Source};

/// What to do when an OAuth2 account `name` (a mailbox, or `smtp`) gets no access token.
fn token_hint(settings: &crate::config::OAuth2Settings, name: &str) -> String {
    match settings.flow {
        crate::config::Flow::ClientCredentials => "the application gets no token: check client_id, tenant and the secret in client_secret_file (its value, not its ID); an expired secret (AADSTS7000222) needs a new one, and client_secret_expires its date".to_string(),
        _ => format!(
            "no access token: sign in again as the service's user, `runuser -u deskmail -- deskmail auth login {name}` (`deskmail auth status` shows the token's state)"
        ),
    }
}

/// An OAuth2 account's access token, got (or renewed, the rotated refresh token stored) as the
/// service would, within a time limit of its own before the login that uses it: a slow or
/// refusing provider is then not taken for the mail server.
async fn token(
    subject: &str,
    check: &str,
    name: &str,
    settings: &std::sync::Arc<crate::config::OAuth2Settings>,
    user: &str,
) -> Check {
    let source = crate::oauth2::TokenSource::shared(settings, user);
    match timed(source.access_token()).await {
        None => Check::fail(
            subject,
            check,
            format!("the token endpoint {}: {}", settings.token_url, too_slow()),
            "check the network path to the provider (a proxy or a firewall)",
        ),
        Some(Err(e)) => Check::fail(
            subject,
            check,
            crate::errors::chain(&e),
            token_hint(settings, name),
        ),
        Some(Ok(_)) => Check::ok(
            subject,
            check,
            format!(
                "an access token for {user} from {} (flow {})",
                settings.provider,
                settings.flow.name()
            ),
        ),
    }
}

/// How long any one check may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One check: what it looked at (`mailbox support`), which check (`TLS`), what it found, and
/// for a warning or a failure what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub subject: String,
    pub check: String,
    pub status: Status,
    pub detail: String,
    pub hint: Option<String>,
}

impl Check {
    pub fn ok(subject: &str, check: &str, detail: impl Into<String>) -> Check {
        Check {
            subject: subject.to_string(),
            check: check.to_string(),
            status: Status::Ok,
            detail: detail.into(),
            hint: None,
        }
    }

    pub fn warn(
        subject: &str,
        check: &str,
        detail: impl Into<String>,
        hint: impl Into<String>,
    ) -> Check {
        Check::ok(subject, check, detail).with(Status::Warn, hint)
    }

    pub fn fail(
        subject: &str,
        check: &str,
        detail: impl Into<String>,
        hint: impl Into<String>,
    ) -> Check {
        Check::ok(subject, check, detail).with(Status::Fail, hint)
    }

    fn with(self, status: Status, hint: impl Into<String>) -> Check {
        Check {
            status,
            hint: Some(hint.into()),
            ..self
        }
    }
}

/// How many checks failed.
pub fn failures(checks: &[Check]) -> usize {
    checks.iter().filter(|c| c.status == Status::Fail).count()
}

/// The checks as text: a line per check (`STATUS  subject: check: detail`), and below a
/// warning or a failure its hint, indented.
pub fn render_text(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!(
            "{:<4}  {}: {}: {}\n",
            c.status.word(),
            c.subject,
            c.check,
            c.detail
        ));
        if let Some(hint) = &c.hint {
            out.push_str(&format!("      hint: {hint}\n"));
        }
    }
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "{} checks: {} OK, {} WARN, {} FAIL\n",
        checks.len(),
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail)
    ));
    out
}

/// The checks as a JSON array of `{subject, check, status, detail, hint}`.
pub fn render_json(checks: &[Check]) -> String {
    serde_json::to_string_pretty(checks).unwrap_or_else(|_| "[]".into())
}

/// The live checks: the mailboxes' sources (at the same time), the outbound way, the store.
pub async fn live(settings: &Settings) -> Vec<Check> {
    let mailboxes = settings.mailboxes.iter().map(|m| async move {
        let subject = format!("mailbox {}", m.name);
        match &m.source {
            Some(Source::Imap(imap)) => imap::check(&m.name, imap).await,
            Some(Source::Maildir(md)) => {
                let (shown, path) = (subject.clone(), md.path.clone());
                tokio::task::spawn_blocking(move || local::maildir(&shown, &path))
                    .await
                    .unwrap_or_else(|e| {
                        let e = crate::errors::TaskFailed::from(e);
                        vec![Check::fail(&subject, "Maildir", e.to_string(), "")]
                    })
            }
            None => vec![Check::ok(
                &subject,
                "source",
                "none: its mail comes from the MTA (`deskmail ingest`)",
            )],
        }
    });
    let outbound = smtp::check(&settings.outbound);
    let store = local::store(settings);
    let (mailboxes, mut outbound, mut store) =
        tokio::join!(futures_util::future::join_all(mailboxes), outbound, store);
    let mut checks: Vec<Check> = mailboxes.into_iter().flatten().collect();
    checks.append(&mut outbound);
    checks.append(&mut store);
    checks
}

/// A step run within [`TIMEOUT`]; `None` when it took longer.
async fn timed<T>(f: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(TIMEOUT, f).await.ok()
}

/// "no answer within 10 s".
fn too_slow() -> String {
    format!("no answer within {} s", TIMEOUT.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_a_line_per_check_and_hints_below_warnings_and_failures() {
        let checks = vec![
            Check::ok("store", "reachable", "sqlite, 3 tickets"),
            Check::fail(
                "mailbox support",
                "login",
                "refused: NO [AUTHENTICATIONFAILED]",
                "check password_file",
            ),
        ];
        let text = render_text(&checks);
        assert_eq!(
            text,
            "OK    store: reachable: sqlite, 3 tickets\n\
             FAIL  mailbox support: login: refused: NO [AUTHENTICATIONFAILED]\n\
             \x20     hint: check password_file\n\
             2 checks: 1 OK, 0 WARN, 1 FAIL\n"
        );
        assert_eq!(failures(&checks), 1);
        assert_eq!(failures(&checks[..1]), 0);
        let json: serde_json::Value = serde_json::from_str(&render_json(&checks)).unwrap();
        assert_eq!(json[0]["status"], "ok");
        assert!(json[0]["hint"].is_null());
        assert_eq!(json[1]["status"], "fail");
        assert_eq!(json[1]["hint"], "check password_file");
    }
}
