//! Where a mailbox's mail comes from when the daemon fetches it: `[mailboxes.imap]` or
//! `[mailboxes.maildir]`. A mailbox with neither gets its mail from the MTA's pipe
//! (`deskmail ingest`).

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::Loader;
use super::auth::{Login, RawOAuth2, resolve_login};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawImap {
    host: String,
    port: Option<u16>,
    tls: Option<String>,
    username: String,
    auth: Option<String>,
    password_file: Option<String>,
    oauth2: Option<RawOAuth2>,
    folder: Option<String>,
    processed_folder: Option<String>,
    failed_folder: Option<String>,
    ca_file: Option<String>,
    start: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMaildir {
    path: String,
}

/// How the connection to an IMAP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapTls {
    /// TLS from the first byte (port 993).
    Implicit,
    /// STARTTLS after the greeting (port 143).
    Starttls,
    /// No TLS: allowed to a loopback address only.
    None,
}

/// Where a new mailbox starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Mail that arrives from the first time deskmail sees the folder on.
    New,
    /// Every mail in the folder.
    All,
}

#[derive(Debug, Clone)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub tls: ImapTls,
    pub login: Login,
    pub folder: String,
    /// Where processed mail goes; `None` leaves it where it is.
    pub processed_folder: Option<String>,
    /// Where mail goes that was kept as failed or was over the size limit.
    pub failed_folder: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub start: Start,
}

#[derive(Debug, Clone)]
pub struct MaildirSettings {
    pub path: PathBuf,
}

/// Where the daemon takes a mailbox's mail from.
#[derive(Debug, Clone)]
pub enum Source {
    Imap(ImapSettings),
    Maildir(MaildirSettings),
}

pub(crate) fn resolve(
    l: &mut Loader,
    key: &str,
    imap: Option<RawImap>,
    maildir: Option<RawMaildir>,
) -> Option<Source> {
    match (imap, maildir) {
        (Some(_), Some(_)) => {
            l.problem(key, "set [mailboxes.imap] or [mailboxes.maildir], not both");
            None
        }
        (Some(i), None) => resolve_imap(l, &format!("{key}.imap"), i).map(Source::Imap),
        (None, Some(m)) => Some(Source::Maildir(MaildirSettings {
            path: l.resolve_path(&m.path),
        })),
        (None, None) => None,
    }
}

fn resolve_imap(l: &mut Loader, key: &str, raw: RawImap) -> Option<ImapSettings> {
    let tls = match raw.tls.as_deref().unwrap_or("implicit") {
        "implicit" => ImapTls::Implicit,
        "starttls" => ImapTls::Starttls,
        "none" => ImapTls::None,
        other => {
            l.problem(
                format!("{key}.tls"),
                format!("\"{other}\" is not one of implicit, starttls, none"),
            );
            ImapTls::Implicit
        }
    };
    if tls == ImapTls::None && !is_loopback(&raw.host) {
        l.problem(
            format!("{key}.tls"),
            format!(
                "\"none\" sends the password or token in clear: allowed to a loopback address only, not {}",
                raw.host
            ),
        );
    }
    let port = raw.port.unwrap_or(match tls {
        ImapTls::Implicit => 993,
        ImapTls::Starttls | ImapTls::None => 143,
    });
    let start = match raw.start.as_deref().unwrap_or("new") {
        "new" => Start::New,
        "all" => Start::All,
        other => {
            l.problem(
                format!("{key}.start"),
                format!("\"{other}\" is not one of new, all"),
            );
            Start::New
        }
    };
    let login = resolve_login(
        l,
        key,
        raw.username,
        raw.auth.as_deref(),
        raw.password_file.as_deref(),
        raw.oauth2,
    )?;
    let ca_file = raw.ca_file.as_deref().map(|f| l.resolve_path(f));
    if let Some(ca) = &ca_file
        && !ca.exists()
    {
        l.problem(
            format!("{key}.ca_file"),
            format!("{} does not exist", ca.display()),
        );
    }
    let folder = raw.folder.unwrap_or_else(|| "INBOX".into());
    let named = |f: Option<String>, default: &str| {
        let f = f.unwrap_or_else(|| default.into());
        (!f.is_empty()).then_some(f)
    };
    let processed_folder = named(raw.processed_folder, "deskmail/processed");
    let failed_folder = named(raw.failed_folder, "deskmail/failed");
    for (name, f) in [
        ("processed_folder", &processed_folder),
        ("failed_folder", &failed_folder),
    ] {
        if f.as_deref() == Some(folder.as_str()) {
            l.problem(
                format!("{key}.{name}"),
                "is the folder deskmail reads: it would read its mail again",
            );
        }
    }
    Some(ImapSettings {
        host: raw.host,
        port,
        tls,
        login,
        folder,
        processed_folder,
        failed_folder,
        ca_file,
        start,
    })
}

/// A loopback address, or `localhost`.
pub(crate) fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
