//! `[outbound.smtp]`, step by step, with lettre's protocol code and the transport's own TLS
//! parameters and login: DNS, TCP, EHLO (the extensions), STARTTLS or implicit TLS (the
//! certificate), AUTH (the mechanisms, a login), SIZE. Without SMTP: the spool directory.

use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::Ehlo;
use lettre::transport::smtp::extension::ClientId;

use crate::config::Auth;
use crate::config::{OutboundSettings, SmtpSettings, SmtpTls};
use crate::errors;
use crate::outbound::compose::size_text;
use crate::outbound::transport::{
    SetupError, SmtpLogin, hostname_client_id, size_keyword, tls_parameters,
};

use super::{Check, Status, local, net, timed, tls, too_slow};

/// Every check of the way out.
pub async fn check(o: &OutboundSettings) -> Vec<Check> {
    let Some(smtp) = &o.smtp else {
        return vec![local::spool(&o.spool_dir)];
    };
    let subject = format!("smtp {}:{}", smtp.host, smtp.port);
    let mut out = Vec::new();
    match net::dns(&subject, &smtp.host, smtp.port).await {
        Ok((c, addrs)) => {
            out.push(c);
            let tcp = net::tcp(
                &subject,
                &addrs,
                "587 for tls = \"starttls\", 465 for \"implicit\", 25 for \"none\"",
            )
            .await;
            let connected = tcp.status != Status::Fail;
            out.push(tcp);
            if connected {
                session(&subject, smtp, o.max_message_bytes, &mut out).await;
            }
        }
        Err(c) => out.push(c),
    }
    out
}

/// The EHLO answer's lines after the first (the server's name): one extension each.
async fn ehlo(conn: &mut AsyncSmtpConnection, hello: &ClientId) -> Result<Vec<String>, String> {
    match timed(conn.command(Ehlo::new(hello.clone()))).await {
        None => Err(too_slow()),
        Some(Err(e)) => Err(errors::chain(&e)),
        Some(Ok(r)) => Ok(r.message().skip(1).map(|l| l.trim().to_string()).collect()),
    }
}

/// From the greeting on.
async fn session(subject: &str, smtp: &SmtpSettings, max_bytes: u64, out: &mut Vec<Check>) {
    let tls_check = match smtp.tls {
        SmtpTls::Starttls => "STARTTLS",
        SmtpTls::Implicit | SmtpTls::None => "TLS",
    };
    let params = match smtp.tls {
        SmtpTls::None => None,
        SmtpTls::Starttls | SmtpTls::Implicit => match tls_parameters(smtp) {
            Ok(p) => Some(p),
            Err(e) => {
                out.push(Check::fail(
                    subject,
                    tls_check,
                    errors::chain(&e),
                    "ca_file must be a readable PEM file holding the CA certificate",
                ));
                return;
            }
        },
    };
    let hello = hostname_client_id();
    let mut conn = match greet(subject, smtp, params.clone(), &hello).await {
        Ok(c) => c,
        Err(c) => {
            out.push(c);
            return;
        }
    };
    let mut extensions = match ehlo(&mut conn, &hello).await {
        Ok(x) => x,
        Err(e) => {
            out.push(Check::fail(
                subject,
                "EHLO",
                e,
                "the server does not speak ESMTP on this port",
            ));
            return;
        }
    };
    out.push(Check::ok(
        subject,
        "greeting and EHLO",
        format!("extensions: {}", extensions.join(", ")),
    ));
    match (smtp.tls, params) {
        (SmtpTls::None, _) => out.push(Check::ok(
            subject,
            "TLS",
            "not used (tls = \"none\": a server on this host)",
        )),
        (SmtpTls::Implicit, _) => out.push(certificate(subject, "TLS", smtp, &conn)),
        (SmtpTls::Starttls, Some(params)) => {
            match starttls(subject, smtp, &mut conn, params, &hello, &extensions).await {
                Ok(c) => out.push(c),
                Err(c) => {
                    out.push(c);
                    return;
                }
            }
            // What the server offers may change once TLS is up (AUTH often).
            match ehlo(&mut conn, &hello).await {
                Ok(x) => extensions = x,
                Err(e) => {
                    out.push(Check::fail(
                        subject,
                        "EHLO",
                        e,
                        "the server stopped answering after STARTTLS",
                    ));
                    return;
                }
            }
        }
        (SmtpTls::Starttls, None) => {}
    }
    out.push(auth(subject, smtp, &mut conn, &extensions).await);
    out.push(size(subject, &extensions, max_bytes));
    let _ = timed(conn.quit()).await;
}

/// The connection up to the greeting (and lettre's own EHLO); over TLS for `implicit`.
async fn greet(
    subject: &str,
    smtp: &SmtpSettings,
    params: Option<TlsParameters>,
    hello: &ClientId,
) -> Result<AsyncSmtpConnection, Check> {
    let address = (smtp.host.as_str(), smtp.port);
    let connected = match (smtp.tls, params) {
        (SmtpTls::Implicit, Some(p)) => {
            timed(AsyncSmtpConnection::connect_tokio1(
                address,
                Some(super::TIMEOUT),
                hello,
                Some(p),
                None,
            ))
            .await
        }
        _ => {
            let tcp = match timed(tokio::net::TcpStream::connect(address)).await {
                Some(Ok(tcp)) => tcp,
                Some(Err(e)) => {
                    return Err(Check::fail(
                        subject,
                        "greeting and EHLO",
                        e.to_string(),
                        "the server took a connection a moment ago: try again",
                    ));
                }
                None => {
                    return Err(Check::fail(
                        subject,
                        "greeting and EHLO",
                        too_slow(),
                        "try again",
                    ));
                }
            };
            timed(AsyncSmtpConnection::connect_with_transport(
                Box::new(tcp),
                hello,
            ))
            .await
        }
    };
    match connected {
        Some(Ok(c)) => Ok(c),
        None => Err(Check::fail(
            subject,
            "greeting and EHLO",
            too_slow(),
            "the server took the connection but did not greet: check the port and tls",
        )),
        Some(Err(e)) => Err(match tls::rustls_error(&e) {
            Some(r) => tls::refused(subject, "TLS", r, "outbound.smtp", smtp.ca_file.is_some()),
            None => Check::fail(
                subject,
                "greeting and EHLO",
                errors::chain(&e),
                match smtp.tls {
                    SmtpTls::Implicit => {
                        "tls = \"implicit\" expects TLS from the first byte (port 465): for port 587 set tls = \"starttls\""
                    }
                    _ => {
                        "check the port: is an SMTP server listening there (for port 465 set tls = \"implicit\")?"
                    }
                },
            ),
        }),
    }
}

/// STARTTLS: offered, and the certificate verified.
async fn starttls(
    subject: &str,
    smtp: &SmtpSettings,
    conn: &mut AsyncSmtpConnection,
    params: TlsParameters,
    hello: &ClientId,
    extensions: &[String],
) -> Result<Check, Check> {
    if !extensions
        .iter()
        .any(|x| x.eq_ignore_ascii_case("STARTTLS"))
    {
        return Err(Check::fail(
            subject,
            "STARTTLS",
            "the server does not offer STARTTLS",
            "tls = \"starttls\" requires it: enable STARTTLS on the server, or for a port with TLS from the first byte (465) set tls = \"implicit\"",
        ));
    }
    match timed(conn.starttls(params, hello)).await {
        None => Err(Check::fail(subject, "STARTTLS", too_slow(), "try again")),
        Some(Err(e)) => Err(match tls::rustls_error(&e) {
            Some(r) => tls::refused(
                subject,
                "STARTTLS",
                r,
                "outbound.smtp",
                smtp.ca_file.is_some(),
            ),
            None => Check::fail(
                subject,
                "STARTTLS",
                errors::chain(&e),
                "the server offers STARTTLS but the upgrade failed: check its TLS set-up",
            ),
        }),
        Some(Ok(())) => Ok(certificate(subject, "STARTTLS", smtp, conn)),
    }
}

/// The verified certificate's expiry.
fn certificate(
    subject: &str,
    check: &str,
    smtp: &SmtpSettings,
    conn: &AsyncSmtpConnection,
) -> Check {
    let der = conn.peer_certificate().ok();
    tls::verified(
        subject,
        check,
        der.as_deref(),
        &tls::trusted(smtp.ca_file.as_deref()),
        jiff::Timestamp::now(),
    )
}

/// The mechanisms offered, and a login with the configured account.
async fn auth(
    subject: &str,
    smtp: &SmtpSettings,
    conn: &mut AsyncSmtpConnection,
    extensions: &[String],
) -> Check {
    let offered: Vec<String> = extensions
        .iter()
        .filter_map(|x| {
            let (word, rest) = x.split_once(' ')?;
            word.eq_ignore_ascii_case("AUTH").then(|| rest.to_string())
        })
        .collect();
    let offered = offered.join(" ");
    let (Some(login), Some(account)) = (SmtpLogin::of(smtp), &smtp.login) else {
        return Check::ok(
            subject,
            "AUTH",
            format!(
                "no username configured: deskmail sends without logging in (offered: {})",
                if offered.is_empty() { "none" } else { &offered }
            ),
        );
    };
    let user = &account.username;
    if offered.is_empty() {
        return Check::fail(
            subject,
            "AUTH",
            "the server offers no AUTH here, but a username is configured",
            "servers often offer AUTH only over TLS: set tls = \"starttls\" or \"implicit\"; or drop username and password_file if the server takes mail from this host without a login",
        );
    }
    let xoauth2 = offered
        .split_whitespace()
        .any(|m| m.eq_ignore_ascii_case("XOAUTH2"));
    if matches!(account.auth, Auth::OAuth2(_)) && !xoauth2 {
        return Check::fail(
            subject,
            "AUTH",
            format!("the server offers {offered}, not XOAUTH2"),
            "this server takes no OAuth2 logins: use auth = \"password\", or the provider's own SMTP server (smtp.office365.com, smtp.gmail.com)",
        );
    }
    if let Auth::OAuth2(o) = &account.auth {
        let got = super::token(subject, "AUTH", "smtp", o, user).await;
        if got.status == Status::Fail {
            return got;
        }
    }
    let how = match account.auth {
        Auth::Password(_) => "a password",
        Auth::OAuth2(_) => "an OAuth2 access token (XOAUTH2)",
    };
    match timed(login.log_in(conn)).await {
        None => Check::fail(subject, "AUTH", too_slow(), "try again"),
        Some(Ok(())) => Check::ok(
            subject,
            "AUTH",
            format!("logged in as {user} with {how} (offered: {offered})"),
        ),
        Some(Err(SetupError::Token(e))) => {
            let e = errors::chain(&e);
            let hint = match &account.auth {
                Auth::OAuth2(o) => super::token_hint(o, "smtp"),
                Auth::Password(_) => String::new(),
            };
            Check::fail(subject, "AUTH", e, hint)
        }
        Some(Err(e)) => Check::fail(
            subject,
            "AUTH",
            format!("login as {user} refused: {}", setup_text(&e)),
            match account.auth {
                Auth::Password(_) => {
                    "check username and password_file in [outbound.smtp], and that the account may send (Microsoft 365: SMTP AUTH enabled for the mailbox)"
                }
                Auth::OAuth2(_) => {
                    "the server refused the access token: check the app's SMTP permission (SMTP.Send, or SMTP.SendAsApp for client_credentials) and that SMTP AUTH is enabled for the mailbox; then `deskmail auth login smtp`"
                }
            },
        ),
    }
}

/// What a failed login says.
fn setup_text(e: &SetupError) -> String {
    match e {
        SetupError::Smtp(e) => errors::chain(e),
        SetupError::Connect(t) | SetupError::TokenRefused(t) => t.clone(),
        SetupError::Token(e) => errors::chain(e),
    }
}

/// The server's SIZE against the largest notification deskmail makes.
fn size(subject: &str, extensions: &[String], max_bytes: u64) -> Check {
    let ours = format!(
        "deskmail's notifications are at most {} (outbound.max_message_bytes)",
        size_text(max_bytes)
    );
    match extensions.iter().find_map(|x| size_keyword(x)) {
        None | Some(0) => Check::ok(
            subject,
            "SIZE",
            format!("the server announces no limit; {ours}"),
        ),
        Some(limit) if limit < max_bytes => Check::warn(
            subject,
            "SIZE",
            format!("the server takes at most {}; {ours}", size_text(limit)),
            "a notification larger than the server takes fails (the support team is told): raise the server's limit, or set outbound.max_message_bytes to it (attachments that do not fit are then named instead of attached)",
        ),
        Some(limit) => Check::ok(
            subject,
            "SIZE",
            format!("the server takes up to {}; {ours}", size_text(limit)),
        ),
    }
}
