//! Signing in once, on the command line (`deskmail auth login`), to get the refresh token the
//! service then lives on: the device flow (RFC 8628: a code entered on another device's
//! browser) or, where the provider's device flow does not allow mail scopes (Google), the
//! authorization code flow with PKCE (RFC 7636), where the admin pastes the address the
//! browser ends on. Blocking: run off the async threads.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;

use super::OAuth2Error;
use super::endpoint::{self, DeviceCode, Tokens, client};
use super::source::expiry;
use super::token_file::{Locked, Stored};
use crate::config::{Flow, OAuth2Settings, decode_form as decode};

/// Where the browser is sent after the sign-in, for the authorization code flow: nothing
/// listens there, the admin copies the address from the browser.
const REDIRECT: &str = "http://localhost";

/// Signs in with the flow the settings name and stores the refresh token.
pub fn login(
    settings: &OAuth2Settings,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<Stored, OAuth2Error> {
    let tokens = match settings.flow {
        Flow::Device => device(settings, out)?,
        Flow::AuthorizationCode => authorization_code(settings, input, out)?,
        Flow::ClientCredentials => {
            return Err(OAuth2Error::Login(
                "flow = \"client_credentials\" needs no sign-in: the application's own \
                 credentials are used"
                    .into(),
            ));
        }
    };
    store(settings, tokens)
}

fn said(e: std::io::Error) -> OAuth2Error {
    OAuth2Error::Io {
        what: "reading or writing the terminal",
        source: e,
    }
}

fn device(settings: &OAuth2Settings, out: &mut dyn Write) -> Result<Tokens, OAuth2Error> {
    let url = settings
        .device_url
        .as_deref()
        .ok_or_else(|| OAuth2Error::Login("the provider has no device_url in the config".into()))?;
    let scope = settings.scopes.join(" ");
    let mut form = client(settings);
    form.push(("scope", &scope));
    let code: DeviceCode = endpoint::post(url, &form)?;
    writeln!(
        out,
        "To sign in, open {} in a browser and enter the code {}\n\
         Waiting for the sign-in (the code is good for {} minutes)...",
        code.verification_uri,
        code.user_code,
        code.expires_in.min(3600).div_ceil(60)
    )
    .and_then(|()| out.flush())
    .map_err(said)?;
    // The provider's figures, within reason: a code is good for at most an hour, and it is
    // asked about every 1 to 60 seconds.
    let deadline = Instant::now() + Duration::from_secs(code.expires_in.min(3600));
    let mut interval = code.interval.unwrap_or(5).clamp(1, 60);
    let mut form = client(settings);
    form.extend([
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", code.device_code.as_str()),
    ]);
    loop {
        std::thread::sleep(Duration::from_secs(interval));
        match endpoint::post::<Tokens>(&settings.token_url, &form) {
            Ok(tokens) => return Ok(tokens),
            Err(OAuth2Error::Refused { code, .. }) if code == "authorization_pending" => {}
            Err(OAuth2Error::Refused { code, .. }) if code == "slow_down" => {
                interval = (interval + 5).min(60)
            }
            // The network failed once: asked again until the code expires.
            Err(OAuth2Error::Http { .. }) => {}
            Err(e) => return Err(e),
        }
        if Instant::now() > deadline {
            return Err(OAuth2Error::Login(
                "the code expired before the sign-in was done".into(),
            ));
        }
    }
}

fn authorization_code(
    settings: &OAuth2Settings,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<Tokens, OAuth2Error> {
    let url = settings.authorize_url.as_deref().ok_or_else(|| {
        OAuth2Error::Login("the provider has no authorize_url in the config".into())
    })?;
    let random = |n| {
        crate::hex::random_hex(n).map_err(|source| OAuth2Error::Io {
            what: "reading /dev/urandom",
            source,
        })
    };
    let verifier = random(32)?;
    let state = random(16)?;
    let challenge = {
        use sha2::Digest;
        URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
    };
    let scope = settings.scopes.join(" ");
    let query = encode_form(&[
        ("response_type", "code"),
        ("client_id", &settings.client_id),
        ("redirect_uri", REDIRECT),
        ("scope", &scope),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("state", &state),
        ("access_type", "offline"),
        ("prompt", "consent"),
    ]);
    writeln!(
        out,
        "To sign in, open this address in a browser:\n\n{url}?{query}\n\n\
         After the sign-in the browser goes to {REDIRECT} and shows an error: that is expected.\n\
         Paste the address from the browser's address bar here:"
    )
    .and_then(|()| out.flush())
    .map_err(said)?;
    let mut line = String::new();
    input.read_line(&mut line).map_err(said)?;
    let params = query_params(line.trim());
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    if let Some(error) = param("error") {
        return Err(OAuth2Error::Refused {
            code: error.clone(),
            description: param("error_description").cloned().unwrap_or_default(),
        });
    }
    if param("state") != Some(&state) {
        return Err(OAuth2Error::Login(
            "the pasted address is not the answer to this sign-in (its state differs)".into(),
        ));
    }
    let code =
        param("code").ok_or_else(|| OAuth2Error::Login("the pasted address has no code".into()))?;
    let mut form = client(settings);
    form.extend([
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ]);
    endpoint::post(&settings.token_url, &form)
}

/// Keeps the refresh token of a sign-in.
fn store(settings: &OAuth2Settings, tokens: Tokens) -> Result<Stored, OAuth2Error> {
    let path = settings.token_file.as_deref().ok_or_else(|| {
        OAuth2Error::Login("no token_file in the config to keep the token in".into())
    })?;
    let refresh_token = tokens.refresh_token.ok_or_else(|| {
        OAuth2Error::Login(
            "the provider gave no refresh token (Microsoft: add the offline_access scope)".into(),
        )
    })?;
    let now = Timestamp::now();
    let stored = Stored {
        refresh_token,
        issued_at: now,
        expires_at: expiry(now, tokens.refresh_token_expires_in),
    };
    Locked::lock(path)?.write(&stored)?;
    Ok(stored)
}

/// `application/x-www-form-urlencoded`, as a query string.
fn encode_form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        let mut o = String::with_capacity(s.len());
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    o.push(b as char)
                }
                b' ' => o.push('+'),
                _ => o.push_str(&format!("%{b:02X}")),
            }
        }
        o
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The decoded query parameters of an address (`?a=b&c=d`, `%XX` and `+` decoded).
fn query_params(address: &str) -> Vec<(String, String)> {
    let query = address.split_once('?').map_or("", |(_, q)| q);
    let query = query.split('#').next().unwrap_or("");
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_address_gives_its_code_and_state() {
        let p = query_params("http://localhost/?state=ab&code=4%2F0Ae+x&scope=a%20b#x");
        assert_eq!(
            p,
            [
                ("state".to_string(), "ab".to_string()),
                ("code".to_string(), "4/0Ae x".to_string()),
                ("scope".to_string(), "a b".to_string()),
            ]
        );
        assert_eq!(
            query_params("http://localhost/?x=%4"),
            [("x".into(), "%4".into())]
        );
    }

    #[test]
    fn a_form_is_encoded() {
        assert_eq!(
            encode_form(&[("scope", "https://mail.google.com/ x"), ("a", "b~")]),
            "scope=https%3A%2F%2Fmail.google.com%2F+x&a=b~"
        );
    }
}
