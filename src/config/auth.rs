//! How deskmail logs in to an IMAP or SMTP server: a password from a file, or an OAuth2 access
//! token (XOAUTH2) from Microsoft, Google or another provider (`auth = "oauth2"` with an
//! `oauth2` table).

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::sources::is_loopback;
use super::{Loader, Secret};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOAuth2 {
    provider: String,
    tenant: Option<String>,
    client_id: String,
    client_secret_file: Option<String>,
    flow: Option<String>,
    scopes: Option<Vec<String>>,
    token_file: Option<String>,
    token_url: Option<String>,
    device_url: Option<String>,
    authorize_url: Option<String>,
    client_secret_expires: Option<String>,
}

/// The user name and how it proves itself.
#[derive(Debug, Clone)]
pub struct Login {
    pub username: String,
    pub auth: Auth,
}

#[derive(Debug, Clone)]
pub enum Auth {
    Password(Secret),
    OAuth2(Arc<OAuth2Settings>),
}

/// How deskmail gets its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// `deskmail auth login` signs in once with a code shown on another device (RFC 8628); the
    /// refresh token it gets is kept in `token_file`.
    Device,
    /// `deskmail auth login` prints an address to open in a browser, and the admin pastes the
    /// address the browser ends on (Google: its device flow does not allow mail scopes).
    AuthorizationCode,
    /// The application's own credentials, no user (Microsoft 365 app-only access).
    ClientCredentials,
}

impl Flow {
    /// The name the config gives it.
    pub fn name(self) -> &'static str {
        match self {
            Flow::Device => "device",
            Flow::AuthorizationCode => "authorization_code",
            Flow::ClientCredentials => "client_credentials",
        }
    }
}

#[derive(Debug)]
pub struct OAuth2Settings {
    /// `microsoft`, `google` or `custom`, for messages.
    pub provider: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub flow: Flow,
    pub scopes: Vec<String>,
    pub token_url: String,
    pub device_url: Option<String>,
    pub authorize_url: Option<String>,
    /// Where the refresh token is kept; `None` with client credentials.
    pub token_file: Option<PathBuf>,
    pub client_secret_expires: Option<jiff::civil::Date>,
}

/// Where a provider's endpoints are, and its scopes for a flow.
struct Endpoints {
    token: String,
    device: Option<String>,
    authorize: Option<String>,
    scopes: Vec<String>,
}

const OUTLOOK: &str = "https://outlook.office365.com";

fn microsoft(tenant: &str, flow: Flow) -> Endpoints {
    let base = format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0");
    let scopes = match flow {
        Flow::ClientCredentials => vec![format!("{OUTLOOK}/.default")],
        Flow::Device | Flow::AuthorizationCode => vec![
            format!("{OUTLOOK}/IMAP.AccessAsUser.All"),
            format!("{OUTLOOK}/SMTP.Send"),
            "offline_access".into(),
        ],
    };
    Endpoints {
        token: format!("{base}/token"),
        device: Some(format!("{base}/devicecode")),
        authorize: Some(format!("{base}/authorize")),
        scopes,
    }
}

fn google() -> Endpoints {
    Endpoints {
        token: "https://oauth2.googleapis.com/token".into(),
        device: None,
        authorize: Some("https://accounts.google.com/o/oauth2/v2/auth".into()),
        scopes: vec!["https://mail.google.com/".into()],
    }
}

/// `auth` and `password_file` / `oauth2` of an IMAP or SMTP table at `key`.
pub(crate) fn resolve_login(
    l: &mut Loader,
    key: &str,
    username: String,
    auth: Option<&str>,
    password_file: Option<&str>,
    oauth2: Option<RawOAuth2>,
) -> Option<Login> {
    let auth = match (auth.unwrap_or("password"), password_file, oauth2) {
        ("password", Some(file), None) => {
            Auth::Password(read_secret(l, &format!("{key}.password_file"), file)?)
        }
        ("password", None, _) => {
            l.problem(
                format!("{key}.password_file"),
                "is missing (or set auth = \"oauth2\")",
            );
            return None;
        }
        ("oauth2", None, Some(raw)) => {
            Auth::OAuth2(Arc::new(resolve_oauth2(l, &format!("{key}.oauth2"), raw)?))
        }
        ("oauth2", _, None) => {
            l.problem(format!("{key}.oauth2"), "is missing (auth = \"oauth2\")");
            return None;
        }
        ("password" | "oauth2", Some(_), Some(_)) => {
            l.problem(key, "set password_file or an oauth2 table, not both");
            return None;
        }
        (other, _, _) => {
            l.problem(
                format!("{key}.auth"),
                format!("\"{other}\" is not one of password, oauth2"),
            );
            return None;
        }
    };
    Some(Login { username, auth })
}

/// A secret file's content, without the line end.
pub(crate) fn read_secret(l: &mut Loader, key: &str, file: &str) -> Option<Secret> {
    let path = l.resolve_path(file);
    match std::fs::read_to_string(&path) {
        Ok(p) => Some(Secret::new(p.trim_end_matches(['\r', '\n']))),
        Err(e) => {
            l.problem(key, format!("cannot read {}: {e}", path.display()));
            None
        }
    }
}

fn resolve_oauth2(l: &mut Loader, key: &str, raw: RawOAuth2) -> Option<OAuth2Settings> {
    let flow = match raw.flow.as_deref() {
        None if raw.provider == "google" => Flow::AuthorizationCode,
        None | Some("device") => Flow::Device,
        Some("authorization_code") => Flow::AuthorizationCode,
        Some("client_credentials") => Flow::ClientCredentials,
        Some(other) => {
            l.problem(
                format!("{key}.flow"),
                format!("\"{other}\" is not one of device, authorization_code, client_credentials"),
            );
            return None;
        }
    };
    if raw.tenant.is_some() && raw.provider != "microsoft" {
        l.problem(
            format!("{key}.tenant"),
            "is for provider = \"microsoft\" only",
        );
    }
    let endpoints = match raw.provider.as_str() {
        "microsoft" => microsoft(raw.tenant.as_deref().unwrap_or("organizations"), flow),
        "google" => {
            if flow == Flow::Device {
                l.problem(
                    format!("{key}.flow"),
                    "Google's device flow does not allow the Gmail scope: use authorization_code",
                );
            }
            if flow == Flow::ClientCredentials {
                l.problem(
                    format!("{key}.flow"),
                    "Google has no client credentials for mail: use authorization_code",
                );
            }
            google()
        }
        "custom" => {
            let Some(token) = raw.token_url.clone() else {
                l.problem(
                    format!("{key}.token_url"),
                    "is needed with provider = \"custom\"",
                );
                return None;
            };
            Endpoints {
                token,
                device: None,
                authorize: None,
                scopes: Vec::new(),
            }
        }
        other => {
            l.problem(
                format!("{key}.provider"),
                format!("\"{other}\" is not one of microsoft, google, custom"),
            );
            return None;
        }
    };
    let token_url = raw.token_url.unwrap_or(endpoints.token);
    let device_url = raw.device_url.or(endpoints.device);
    let authorize_url = raw.authorize_url.or(endpoints.authorize);
    for (name, url) in [
        ("token_url", Some(&token_url)),
        ("device_url", device_url.as_ref()),
        ("authorize_url", authorize_url.as_ref()),
    ] {
        if let Some(url) = url
            && !url.starts_with("https://")
            && !(url.starts_with("http://") && is_loopback_url(url))
        {
            l.problem(
                format!("{key}.{name}"),
                format!("{url}: an https:// address (http:// only to a loopback address)"),
            );
        }
    }
    let client_secret = match raw.client_secret_file.as_deref() {
        Some(f) => Some(read_secret(l, &format!("{key}.client_secret_file"), f)?),
        None => None,
    };
    let token_file = raw.token_file.as_deref().map(|f| l.resolve_path(f));
    match flow {
        Flow::ClientCredentials if client_secret.is_none() => l.problem(
            format!("{key}.client_secret_file"),
            "is needed with flow = \"client_credentials\"",
        ),
        Flow::Device | Flow::AuthorizationCode if token_file.is_none() => l.problem(
            format!("{key}.token_file"),
            "is needed: deskmail keeps the refresh token there",
        ),
        Flow::Device if device_url.is_none() => l.problem(
            format!("{key}.device_url"),
            "is needed for flow = \"device\" with provider = \"custom\"",
        ),
        Flow::AuthorizationCode if authorize_url.is_none() => l.problem(
            format!("{key}.authorize_url"),
            "is needed for flow = \"authorization_code\" with provider = \"custom\"",
        ),
        _ => {}
    }
    let client_secret_expires = raw.client_secret_expires.as_deref().and_then(|d| {
        d.parse::<jiff::civil::Date>()
            .map_err(|e| {
                l.problem(
                    format!("{key}.client_secret_expires"),
                    format!("\"{d}\" is not a date such as 2027-06-30: {e}"),
                )
            })
            .ok()
    });
    let scopes = raw.scopes.unwrap_or(endpoints.scopes);
    if scopes.is_empty() {
        l.problem(
            format!("{key}.scopes"),
            "is needed with provider = \"custom\"",
        );
    }
    Some(OAuth2Settings {
        provider: raw.provider,
        client_id: raw.client_id,
        client_secret,
        flow,
        scopes,
        token_url,
        device_url,
        authorize_url,
        token_file,
        client_secret_expires,
    })
}

/// Whether an `http://` address names a loopback host.
fn is_loopback_url(url: &str) -> bool {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    is_loopback(host)
}
