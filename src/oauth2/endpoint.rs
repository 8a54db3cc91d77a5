//! The provider's token and device-authorization endpoints (RFC 6749, RFC 8628): one form POST,
//! one JSON answer. Blocking (ureq); callers run it off the async threads. A refusal keeps the
//! provider's error code and description (Microsoft's `AADSTS…` numbers are in the description).

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use tokio_rustls::rustls::crypto::ring;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use super::OAuth2Error;
use crate::config::OAuth2Settings;
use crate::system_roots::system_roots;

/// How long one request may take (a provider answers in well under a second).
const TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an answer that is read.
const ANSWER_LIMIT: u64 = 64 * 1024;

/// A token endpoint's answer to a grant. Its `Debug` shows no token.
#[derive(Deserialize)]
pub struct Tokens {
    pub access_token: String,
    /// Seconds; one hour where the provider does not say.
    #[serde(default, deserialize_with = "seconds")]
    pub expires_in: Option<u64>,
    /// A new refresh token: the one used before may no longer work (rotation).
    pub refresh_token: Option<String>,
    /// Seconds the refresh token lasts, where the provider says (Google's apps in testing: 7 days).
    #[serde(default, deserialize_with = "seconds")]
    pub refresh_token_expires_in: Option<u64>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("expires_in", &self.expires_in)
            .field("refresh_token_expires_in", &self.refresh_token_expires_in)
            .finish_non_exhaustive()
    }
}

/// A device-authorization endpoint's answer. Its `Debug` shows no device code.
#[derive(Deserialize)]
pub struct DeviceCode {
    pub device_code: String,
    pub user_code: String,
    /// `verification_url` at Google.
    #[serde(alias = "verification_url")]
    pub verification_uri: String,
    #[serde(deserialize_with = "required_seconds")]
    pub expires_in: u64,
    #[serde(default, deserialize_with = "seconds")]
    pub interval: Option<u64>,
}

impl fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCode")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .finish_non_exhaustive()
    }
}

/// A number of seconds, as a JSON number or a string of digits (Azure AD v1 and AD FS send
/// `"expires_in": "3599"`).
fn seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Number(u64),
        Text(String),
    }
    match Option::<Seconds>::deserialize(d)? {
        None => Ok(None),
        Some(Seconds::Number(n)) => Ok(Some(n)),
        Some(Seconds::Text(t)) => t.trim().parse().map(Some).map_err(serde::de::Error::custom),
    }
}

fn required_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    seconds(d)?.ok_or_else(|| serde::de::Error::custom("expires_in is missing"))
}

#[derive(Debug, Deserialize)]
struct Refusal {
    error: String,
    error_description: Option<String>,
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        let roots: Vec<Certificate<'static>> = system_roots()
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(roots)))
            .unversioned_rustls_crypto_provider(Arc::new(ring::default_provider()))
            .build();
        ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .user_agent(concat!("deskmail/", env!("CARGO_PKG_VERSION")))
            .build()
            .into()
    })
}

/// The client's own fields of a request: its id, and its secret where it has one.
pub(super) fn client(settings: &OAuth2Settings) -> Vec<(&str, &str)> {
    let mut form = vec![("client_id", settings.client_id.as_str())];
    if let Some(s) = &settings.client_secret {
        form.push(("client_secret", s.expose()));
    }
    form
}

/// POSTs a form and reads the JSON answer: `T` on success, the provider's refusal otherwise.
pub fn post<T: for<'de> Deserialize<'de>>(
    url: &str,
    form: &[(&str, &str)],
) -> Result<T, OAuth2Error> {
    let http = |source| OAuth2Error::Http {
        url: url.to_string(),
        source: Box::new(source),
    };
    let mut answer = agent()
        .post(url)
        .header("Accept", "application/json")
        .send_form(form.iter().copied())
        .map_err(http)?;
    let status = answer.status().as_u16();
    let body = answer
        .body_mut()
        .with_config()
        .limit(ANSWER_LIMIT)
        .read_to_string()
        .map_err(http)?;
    if (200..300).contains(&status) {
        // A success's body holds tokens: it is never quoted, only where it went wrong.
        return serde_json::from_str::<T>(&body).map_err(|e| OAuth2Error::Answer {
            url: url.to_string(),
            status,
            excerpt: format!(
                "an answer deskmail cannot read ({:?} at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
        });
    }
    match serde_json::from_str::<Refusal>(&body) {
        Ok(r) => Err(OAuth2Error::Refused {
            code: r.error,
            description: first_line(r.error_description.as_deref().unwrap_or("")),
        }),
        Err(_) => Err(OAuth2Error::Answer {
            url: url.to_string(),
            status,
            excerpt: first_line(&body),
        }),
    }
}

/// The first line of a provider's text, at most 300 characters (Microsoft's descriptions go on
/// with a trace and correlation ID).
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    match line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_is_cut_to_its_first_line() {
        let d = "AADSTS70008: The refresh token has expired.\r\nTrace ID: 1\r\nCorrelation ID: 2";
        assert_eq!(first_line(d), "AADSTS70008: The refresh token has expired.");
        assert_eq!(first_line(&"x".repeat(400)).chars().count(), 301);
    }

    #[test]
    fn seconds_come_as_numbers_or_strings_and_no_token_is_shown() {
        let t: Tokens =
            serde_json::from_str(r#"{"access_token": "secret-at", "expires_in": "3599"}"#).unwrap();
        assert_eq!(t.expires_in, Some(3599));
        assert_eq!(t.refresh_token_expires_in, None);
        let t: Tokens = serde_json::from_str(
            r#"{"access_token": "secret-at", "expires_in": 60, "refresh_token": "secret-rt"}"#,
        )
        .unwrap();
        assert_eq!(t.expires_in, Some(60));
        let shown = format!("{t:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
