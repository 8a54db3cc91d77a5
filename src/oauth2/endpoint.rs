//! The provider's token and device-authorization endpoints (RFC 6749, RFC 8628): one form POST,
//! one JSON answer. Blocking (ureq); callers run it off the async threads. A refusal keeps the
//! provider's error code and description (Microsoft's `AADSTS…` numbers are in the description).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use tokio_rustls::rustls::crypto::ring;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use super::OAuth2Error;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The most of an answer that is read.
const ANSWER_LIMIT: u64 = 64 * 1024;

/// A token endpoint's answer to a grant.
#[derive(Debug, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    /// Seconds; one hour where the provider does not say.
    pub expires_in: Option<u64>,
    /// A new refresh token: the one used before may no longer work (rotation).
    pub refresh_token: Option<String>,
    /// Seconds the refresh token lasts, where the provider says (Google's apps in testing: 7 days).
    pub refresh_token_expires_in: Option<u64>,
}

/// A device-authorization endpoint's answer.
#[derive(Debug, Deserialize)]
pub struct DeviceCode {
    pub device_code: String,
    pub user_code: String,
    /// `verification_url` at Google.
    #[serde(alias = "verification_url")]
    pub verification_uri: String,
    pub expires_in: u64,
    pub interval: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Refusal {
    error: String,
    error_description: Option<String>,
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        let roots: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
            .certs
            .into_iter()
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
    if (200..300).contains(&status)
        && let Ok(parsed) = serde_json::from_str::<T>(&body)
    {
        return Ok(parsed);
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
}
