//! `[outbound]` and `[outbound.smtp]`: where notifications go and how.

use std::path::PathBuf;

use serde::Deserialize;

use super::Loader;
use super::auth::{Login, RawOAuth2, resolve_login};
use crate::workflow::rules::parse_duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOutbound {
    spool_dir: Option<String>,
    secret_file: Option<String>,
    templates_dir: Option<String>,
    mail_author: Option<bool>,
    max_attachment_bytes: Option<u64>,
    max_message_bytes: Option<u64>,
    loop_limit_per_hour: Option<i64>,
    loop_limit_per_thread: Option<i64>,
    retry_for: Option<String>,
    keep_sent_for: Option<String>,
    smtp: Option<RawSmtp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: String,
    port: Option<u16>,
    tls: Option<String>,
    username: Option<String>,
    auth: Option<String>,
    password_file: Option<String>,
    oauth2: Option<RawOAuth2>,
    ca_file: Option<String>,
    connections: Option<usize>,
    timeout_secs: Option<u64>,
}

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS, required (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS: only for a server on the same host.
    None,
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// `None`: the server is used without logging in.
    pub login: Option<Login>,
    /// An extra CA certificate (PEM) to trust besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Connections used in parallel (and reused).
    pub connections: usize,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone)]
pub struct OutboundSettings {
    /// Without SMTP, each notification is written here as one .eml file.
    pub spool_dir: PathBuf,
    pub smtp: Option<SmtpSettings>,
    /// The secret that signs reply addresses; created (mode 0600) when missing.
    pub secret_file: PathBuf,
    /// Templates that replace the built-in ones, by relative name.
    pub templates_dir: Option<PathBuf>,
    /// Also mail the author of a change (acknowledgements and "not done" notices always go).
    pub mail_author: bool,
    /// Attachments up to this size go out with the notification; larger ones are named.
    pub max_attachment_bytes: u64,
    /// A notification is at most this large: a longer comment is cut, attachments that do not
    /// fit are named. Also bounded by the SMTP server's SIZE when it announces one.
    pub max_message_bytes: u64,
    /// At most this many mails per outside address per hour (0: no limit)...
    pub loop_limit_per_hour: i64,
    /// ...and per address and ticket per hour (0: no limit).
    pub loop_limit_per_thread: i64,
    /// Temporary failures are retried for this long (seconds), then recorded as failed.
    pub retry_for_secs: i64,
    /// A sent notification's body is kept this long (seconds), then dropped; its row stays.
    pub keep_sent_for_secs: i64,
}

pub(crate) fn resolve(l: &mut Loader, raw: RawOutbound) -> OutboundSettings {
    let smtp = raw.smtp.map(|s| {
        let tls = match s.tls.as_deref().unwrap_or("starttls") {
            "starttls" => SmtpTls::Starttls,
            "implicit" => SmtpTls::Implicit,
            "none" => SmtpTls::None,
            other => {
                l.problem(
                    "outbound.smtp.tls",
                    format!("\"{other}\" is not one of starttls, implicit, none"),
                );
                SmtpTls::Starttls
            }
        };
        let port = s.port.unwrap_or(match tls {
            SmtpTls::Implicit => 465,
            SmtpTls::Starttls => 587,
            SmtpTls::None => 25,
        });
        let login = match s.username {
            Some(user) => resolve_login(
                l,
                "outbound.smtp",
                user,
                s.auth.as_deref(),
                s.password_file.as_deref(),
                s.oauth2,
            ),
            None => {
                if s.password_file.is_some() || s.oauth2.is_some() || s.auth.is_some() {
                    l.problem("outbound.smtp.username", "is needed to log in");
                }
                None
            }
        };
        let ca_file = s.ca_file.as_deref().map(|f| l.resolve_path(f));
        if let Some(ca) = &ca_file
            && !ca.exists()
        {
            l.problem(
                "outbound.smtp.ca_file",
                format!("{} does not exist", ca.display()),
            );
        }
        let connections = s.connections.unwrap_or(4);
        if connections == 0 || connections > 64 {
            l.problem("outbound.smtp.connections", "must be between 1 and 64");
        }
        SmtpSettings {
            host: s.host,
            port,
            tls,
            login,
            ca_file,
            connections: connections.clamp(1, 64),
            timeout_secs: s.timeout_secs.unwrap_or(30),
        }
    });
    let retry_for = raw.retry_for.unwrap_or_else(|| "3d".into());
    let retry_for_secs = parse_duration(&retry_for).unwrap_or_else(|| {
        l.problem(
            "outbound.retry_for",
            format!("\"{retry_for}\" is not a duration such as 3d or 12h"),
        );
        3 * 86_400
    });
    let keep_sent_for = raw.keep_sent_for.unwrap_or_else(|| "30d".into());
    let keep_sent_for_secs = parse_duration(&keep_sent_for).unwrap_or_else(|| {
        l.problem(
            "outbound.keep_sent_for",
            format!("\"{keep_sent_for}\" is not a duration such as 30d or 12h"),
        );
        30 * 86_400
    });
    let templates_dir = raw.templates_dir.as_deref().map(|d| l.resolve_path(d));
    if let Some(d) = &templates_dir
        && !d.is_dir()
    {
        l.problem(
            "outbound.templates_dir",
            format!("{} is not a directory", d.display()),
        );
    }
    let max_message_bytes = raw.max_message_bytes.unwrap_or(10 * 1024 * 1024);
    if max_message_bytes < 64 * 1024 {
        l.problem(
            "outbound.max_message_bytes",
            "must be at least 65536 (64 KiB)",
        );
    }
    OutboundSettings {
        spool_dir: l.resolve_path(raw.spool_dir.as_deref().unwrap_or("data/spool")),
        smtp,
        secret_file: l.resolve_path(raw.secret_file.as_deref().unwrap_or("data/reply-token.key")),
        templates_dir,
        mail_author: raw.mail_author.unwrap_or(false),
        max_attachment_bytes: raw.max_attachment_bytes.unwrap_or(10 * 1024 * 1024),
        max_message_bytes: max_message_bytes.max(64 * 1024),
        loop_limit_per_hour: raw.loop_limit_per_hour.unwrap_or(30),
        loop_limit_per_thread: raw.loop_limit_per_thread.unwrap_or(10),
        retry_for_secs,
        keep_sent_for_secs,
    }
}
