//! An IMAP mailbox, step by step, through the daemon's own connection code
//! (`daemon::imap::session`): DNS, TCP, TLS, login, capabilities, folders, messages. A step that
//! fails ends the mailbox's checks: the later ones need it.

use crate::config::{Auth, ImapSettings, ImapTls};
use crate::daemon::imap::ImapFailure;
use crate::daemon::imap::session::Connection;
use crate::errors;

use super::{Check, Status, net, timed, tls, too_slow};

/// Every check of one mailbox.
pub async fn check(name: &str, s: &ImapSettings) -> Vec<Check> {
    let subject = &format!("mailbox {name}");
    let mut out = Vec::new();
    match net::dns(subject, &s.host, s.port).await {
        Ok((c, addrs)) => {
            out.push(c);
            let tcp = net::tcp(
                subject,
                &addrs,
                "993 for tls = \"implicit\", 143 for \"starttls\"",
            )
            .await;
            let connected = tcp.status != super::Status::Fail;
            out.push(tcp);
            if connected {
                session(name, s, &mut out).await;
            }
        }
        Err(c) => out.push(c),
    }
    out
}

/// TLS and what needs a login.
async fn session(name: &str, s: &ImapSettings, out: &mut Vec<Check>) {
    let subject = &format!("mailbox {name}");
    let greeted = match timed(Connection::connect(s)).await {
        None => {
            out.push(Check::fail(
                subject,
                "TLS",
                too_slow(),
                "the server took the connection but did not greet: check the port and tls",
            ));
            return;
        }
        Some(Err(e)) => {
            out.push(connect_failed(subject, s, &e));
            return;
        }
        Some(Ok(g)) => g,
    };
    out.push(match s.tls {
        ImapTls::None => Check::ok(
            subject,
            "TLS",
            "not used (tls = \"none\", a loopback address)",
        ),
        ImapTls::Implicit | ImapTls::Starttls => tls::verified(
            subject,
            "TLS",
            greeted.certificate.as_deref(),
            &tls::trusted(s.ca_file.as_deref()),
            jiff::Timestamp::now(),
        ),
    });
    if let Auth::OAuth2(o) = &s.login.auth {
        let got = super::token(subject, "OAuth2 token", name, o, &s.login.username).await;
        let failed = got.status == Status::Fail;
        out.push(got);
        if failed {
            return;
        }
    }
    let mut conn = match timed(Connection::log_in(greeted, s)).await {
        None => {
            out.push(Check::fail(
                subject,
                "login",
                too_slow(),
                "the server did not answer the login: try again, else ask its admin",
            ));
            return;
        }
        Some(Err(e)) => {
            out.push(login_failed(name, s, &e));
            return;
        }
        Some(Ok(c)) => c,
    };
    out.push(Check::ok(
        subject,
        "login",
        format!(
            "logged in as {} with {}",
            s.login.username,
            match s.login.auth {
                Auth::Password(_) => "a password",
                Auth::OAuth2(_) => "an OAuth2 access token (XOAUTH2)",
            }
        ),
    ));
    out.push(capabilities(subject, &mut conn).await);
    let watched = folders(subject, s, &mut conn, out).await;
    if let Some(folder) = watched {
        out.push(messages(subject, &mut conn, &folder).await);
    }
    conn.close().await;
}

/// Why the connection could not be set up: a refused certificate is the TLS check's failure.
fn connect_failed(subject: &str, s: &ImapSettings, e: &ImapFailure) -> Check {
    if let Some(r) = tls::rustls_error(e) {
        return tls::refused(subject, "TLS", r, "mailboxes.imap", s.ca_file.is_some());
    }
    let hint = match s.tls {
        ImapTls::Implicit => {
            "tls = \"implicit\" expects TLS from the first byte (port 993): for a port that starts in plain text (143) set tls = \"starttls\""
        }
        ImapTls::Starttls => {
            "tls = \"starttls\" expects a plain greeting and STARTTLS (port 143): for port 993 set tls = \"implicit\""
        }
        ImapTls::None => "check the port: is an IMAP server listening there?",
    };
    Check::fail(subject, "TLS", errors::chain(e), hint)
}

/// The login's failure with the server's (or the OAuth2 provider's) answer.
fn login_failed(name: &str, s: &ImapSettings, e: &ImapFailure) -> Check {
    let subject = &format!("mailbox {name}");
    let user = &s.login.username;
    let hint = match (e, &s.login.auth) {
        (ImapFailure::Login { .. }, Auth::Password(_)) => format!(
            "the server refused {user} with this password: check password_file (the password only, on one line) and that the account may use IMAP; Microsoft 365 and Google take no passwords over IMAP (auth = \"oauth2\")"
        ),
        (ImapFailure::Login { .. }, Auth::OAuth2(_)) => format!(
            "the server refused the access token for {user}: check the app's IMAP permission (and, for client_credentials, the mailbox permission: docs/troubleshooting.md), then `deskmail auth login {name}`"
        ),
        (ImapFailure::Token(_), Auth::OAuth2(o)) => super::token_hint(o, name),
        _ => "the connection broke during the login: try again, else check the server's log"
            .to_string(),
    };
    Check::fail(subject, "login", errors::chain(e), hint)
}

/// IDLE, MOVE, UIDPLUS, CONDSTORE: what the daemon does without each.
async fn capabilities(subject: &str, conn: &mut Connection) -> Check {
    let names = match timed(conn.capability_names()).await {
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            return Check::fail(
                subject,
                "capabilities",
                errors::chain(&e),
                "the server did not answer CAPABILITY",
            );
        }
        None => {
            return Check::fail(subject, "capabilities", too_slow(), "try again");
        }
    };
    let has = |c: &str| names.iter().any(|n| n == c);
    let mut missing = Vec::new();
    let mut without = Vec::new();
    if !has("IDLE") {
        missing.push("IDLE");
        without.push(
            "without IDLE deskmail looks at the folder every 30 s, so new mail waits up to 30 s",
        );
    }
    if !has("MOVE") {
        missing.push("MOVE");
        without.push("without MOVE it moves mail by COPY, \\Deleted and EXPUNGE");
        if !has("UIDPLUS") {
            missing.push("UIDPLUS");
            without.push(
                "without UIDPLUS that EXPUNGE removes every mail marked \\Deleted in the folder, also those another client marked",
            );
        }
    }
    let listed = ["IDLE", "MOVE", "UIDPLUS", "CONDSTORE"]
        .iter()
        .map(|c| format!("{c} {}", if has(c) { "yes" } else { "no" }))
        .collect::<Vec<_>>()
        .join(", ");
    let detail = format!("{listed} (CONDSTORE is not used by deskmail)");
    if missing.is_empty() {
        Check::ok(subject, "capabilities", detail)
    } else {
        Check::warn(
            subject,
            "capabilities",
            format!("missing {}: {detail}", missing.join(", ")),
            format!("deskmail works without them: {}", without.join("; ")),
        )
    }
}

/// The watched folder (must be there) and the processed and failed folders (there, or created
/// as the daemon would create them). The watched folder's name on the server, when it is there.
async fn folders(
    subject: &str,
    s: &ImapSettings,
    conn: &mut Connection,
    out: &mut Vec<Check>,
) -> Option<String> {
    let watched = conn.folder_name(&s.folder);
    match timed(conn.has_folder(&watched)).await {
        Some(Ok(true)) => {}
        Some(Ok(false)) => {
            let all = match timed(conn.folders()).await {
                Some(Ok(all)) => all,
                _ => Vec::new(),
            };
            out.push(if all.is_empty() {
                Check::fail(
                    subject,
                    "folders",
                    format!("the watched folder {watched} does not exist: the server lists no folder at all to {}", s.login.username),
                    "the account logged in but may not see the mailbox: with Microsoft 365 app-only access (flow = \"client_credentials\") give the app's service principal FullAccess to the mailbox (Add-MailboxPermission); see docs/troubleshooting.md",
                )
            } else {
                Check::fail(
                    subject,
                    "folders",
                    format!(
                        "the watched folder {watched} does not exist (the server has: {})",
                        all.join(", ")
                    ),
                    "set folder in [mailboxes.imap] to one of the server's folders (names as the server lists them, `/` between levels), or create the folder",
                )
            });
            return None;
        }
        Some(Err(e)) => {
            out.push(Check::fail(
                subject,
                "folders",
                errors::chain(&e),
                "the server did not list its folders",
            ));
            return None;
        }
        None => {
            out.push(Check::fail(subject, "folders", too_slow(), "try again"));
            return None;
        }
    }
    let mut found = vec![format!("{watched} (watched) exists")];
    for configured in s.processed_folder.iter().chain(&s.failed_folder) {
        let name = conn.folder_name(configured);
        match timed(conn.ensure_folder(&name)).await {
            Some(Ok(false)) => found.push(format!("{name} exists")),
            Some(Ok(true)) => found.push(format!("{name} created (as the daemon would)")),
            Some(Err(e)) => {
                out.push(Check::fail(
                    subject,
                    "folders",
                    format!("{name} is missing and could not be created: {}", errors::chain(&e)),
                    "create the folder yourself, give the account the right to create folders, or set processed_folder / failed_folder to an existing folder (\"\" leaves the mail where it is)",
                ));
                return Some(watched);
            }
            None => {
                out.push(Check::fail(subject, "folders", too_slow(), "try again"));
                return Some(watched);
            }
        }
    }
    out.push(Check::ok(subject, "folders", found.join("; ")));
    Some(watched)
}

/// How many mails wait in the watched folder.
async fn messages(subject: &str, conn: &mut Connection, folder: &str) -> Check {
    match timed(conn.select(folder)).await {
        Some(Ok(sel)) => Check::ok(
            subject,
            "messages",
            format!(
                "{folder} holds {} message{} (UIDVALIDITY {}, next UID {})",
                sel.exists,
                if sel.exists == 1 { "" } else { "s" },
                sel.uidvalidity,
                sel.uidnext
            ),
        ),
        Some(Err(e)) => Check::fail(
            subject,
            "messages",
            errors::chain(&e),
            "the server would not open the folder: check the account's rights on it",
        ),
        None => Check::fail(subject, "messages", too_slow(), "try again"),
    }
}
