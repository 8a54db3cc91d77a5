//! The one stand-in of the tests: an OAuth2 provider's token side on 127.0.0.1, since neither
//! Microsoft's nor Google's can run here. It issues, rotates (every refresh gives a new refresh
//! token and voids the old one, as Microsoft does), expires and revokes tokens; it answers the
//! device flow (RFC 8628), the authorization code flow with PKCE, client credentials, and the
//! token introspection (RFC 7662) that the harness's Dovecot asks for every XOAUTH2 login.
//! Errors look like Microsoft's: `{"error": "invalid_grant", "error_description": "AADSTS…"}`.
//! Plain HTTP/1.1, one request per connection.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use super::mailstack::MailStack;

pub const CLIENT_ID: &str = "deskmail-test-client";
pub const CLIENT_SECRET: &str = "test-client-secret";

#[derive(Default)]
struct State {
    /// Access token → its user and until when it works.
    access: HashMap<String, (String, Instant)>,
    /// Refresh token → its user, while it works.
    refresh: HashMap<String, String>,
    /// Device code → user code and, once signed in, the user.
    devices: HashMap<String, (String, Option<String>)>,
    /// Authorization code → user and PKCE challenge.
    codes: HashMap<String, (String, String)>,
    /// The user client credentials act for (Microsoft 365's app-only access to one mailbox).
    app_user: Option<String>,
    access_lifetime: u64,
    /// Said with each refresh token, where set (Google's apps in testing: 7 days).
    refresh_lifetime: Option<u64>,
    next: u64,
    /// Token requests answered, by grant type and result (`refresh_token ok`).
    requests: Vec<String>,
}

impl State {
    fn token(&mut self, kind: &str) -> String {
        self.next += 1;
        format!("{kind}-{}-{:08x}", self.next, fastrand::u32(..))
    }

    /// A new access token (and a refresh token unless `app_only`) for `user`, as the token
    /// endpoint answers.
    fn issue(&mut self, user: &str, app_only: bool) -> Value {
        let access = self.token("at");
        let until = Instant::now() + Duration::from_secs(self.access_lifetime);
        self.access
            .insert(access.clone(), (user.to_string(), until));
        let mut answer = json!({
            "token_type": "Bearer",
            "access_token": access,
            "expires_in": self.access_lifetime,
        });
        if !app_only {
            let refresh = self.token("rt");
            self.refresh.insert(refresh.clone(), user.to_string());
            answer["refresh_token"] = json!(refresh);
            if let Some(secs) = self.refresh_lifetime {
                answer["refresh_token_expires_in"] = json!(secs);
            }
        }
        answer
    }
}

pub struct Provider {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

fn refusal(code: &str, description: &str) -> (u16, Value) {
    (
        400,
        json!({"error": code, "error_description": format!("{description}\r\nTrace ID: 0\r\nCorrelation ID: 0")}),
    )
}

impl Provider {
    pub fn start() -> Provider {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            access_lifetime: 3600,
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Provider { port, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The `[….oauth2]` table of a config for this provider, keeping the token in `token_file`.
    pub fn config(&self, table: &str, flow: &str, token_file: &std::path::Path) -> String {
        format!(
            "[{table}]\nprovider = \"custom\"\nclient_id = \"{CLIENT_ID}\"\nflow = \"{flow}\"\n\
             scopes = [\"mail\", \"offline_access\"]\ntoken_file = \"{}\"\n\
             token_url = \"{}\"\ndevice_url = \"{}\"\nauthorize_url = \"{}\"\n",
            token_file.display(),
            self.url("/token"),
            self.url("/devicecode"),
            self.url("/authorize"),
        )
    }

    /// The `[mailboxes.imap]` table that reads `user`'s INBOX on `stack` with a token of this
    /// provider kept in `token_file` (device flow).
    pub fn imap_table(&self, stack: &MailStack, user: &str, token_file: &Path) -> String {
        format!(
            "{}{}",
            stack.imap_oauth2_config(user),
            self.config("mailboxes.imap.oauth2", "device", token_file)
        )
    }

    /// The `[outbound.smtp]` table that sends through `stack` as `user` with a token of this
    /// provider kept in `token_file` (device flow).
    pub fn smtp_table(&self, stack: &MailStack, user: &str, token_file: &Path) -> String {
        format!(
            "{}username = \"{user}\"\nauth = \"oauth2\"\n{}",
            stack.smtp_config(1),
            self.config("outbound.smtp.oauth2", "device", token_file)
        )
    }

    /// A token file holding a new refresh token for `user`, as `deskmail auth login` leaves it;
    /// the token.
    pub fn signed_in(&self, user: &str, token_file: &Path) -> String {
        let token = self.refresh_token_for(user);
        write_token(token_file, &token);
        token
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// A refresh token for `user`, as a sign-in would have left it.
    pub fn refresh_token_for(&self, user: &str) -> String {
        self.with(|s| {
            s.issue(user, false)["refresh_token"]
                .as_str()
                .unwrap()
                .to_string()
        })
    }

    /// Whether a refresh token still works.
    pub fn refresh_token_works(&self, token: &str) -> bool {
        self.with(|s| s.refresh.contains_key(token))
    }

    /// Every access token issued so far stops working (the introspection says inactive).
    pub fn expire_access_tokens(&self) {
        self.with(|s| s.access.clear());
    }

    /// `user`'s refresh and access tokens stop working (an admin revoked the sessions).
    pub fn revoke(&self, user: &str) {
        self.with(|s| {
            s.refresh.retain(|_, u| u != user);
            s.access.retain(|_, (u, _)| u != user);
        });
    }

    /// Signs in as `user` on the device page with the code deskmail showed.
    pub fn approve_device(&self, user_code: &str, user: &str) {
        self.with(|s| {
            let device = s
                .devices
                .values_mut()
                .find(|(code, _)| code == user_code)
                .unwrap_or_else(|| panic!("no device code {user_code} was issued"));
            device.1 = Some(user.to_string());
        });
    }

    /// A browser's sign-in as `user` at the authorization address deskmail printed: the address
    /// the browser is sent to (with the code and the state).
    pub fn sign_in_at(&self, authorize_address: &str, user: &str) -> String {
        let params = query(authorize_address.split_once('?').unwrap().1);
        assert_eq!(params["client_id"], CLIENT_ID);
        assert_eq!(params["code_challenge_method"], "S256");
        let code = self.with(|s| {
            let code = s.token("code");
            s.codes.insert(
                code.clone(),
                (user.to_string(), params["code_challenge"].clone()),
            );
            code
        });
        format!(
            "{}?code={code}&state={}",
            params["redirect_uri"], params["state"]
        )
    }

    /// Refresh tokens are said to last this long from now on.
    pub fn set_refresh_token_lifetime(&self, secs: u64) {
        self.with(|s| s.refresh_lifetime = Some(secs));
    }

    /// Client credentials act for this mailbox.
    pub fn app_acts_for(&self, user: &str) {
        self.with(|s| s.app_user = Some(user.to_string()));
    }

    /// Token requests answered so far, as `grant result`.
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.requests.clone())
    }
}

/// A token file holding `token`, as `deskmail auth login` leaves it.
pub fn write_token(path: &Path, token: &str) {
    std::fs::write(
        path,
        format!("{{\"refresh_token\": \"{token}\", \"issued_at\": \"2026-12-06T09:00:00Z\"}}"),
    )
    .unwrap();
}

/// The refresh token a token file holds.
pub fn stored_token(path: &Path) -> String {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["refresh_token"].as_str().unwrap().to_string()
}

/// Decoded `a=b&c=d`.
fn query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let form = query(&String::from_utf8_lossy(&body));
    let (status, answer) = {
        let mut s = state.lock().unwrap();
        match path.as_str() {
            "/token" => token(&mut s, &form),
            "/devicecode" => device_code(&mut s, &form),
            "/introspect" => (200, introspect(&s, &form)),
            _ => (404, json!({"error": "not_found"})),
        }
    };
    let body = answer.to_string();
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn introspect(s: &State, form: &HashMap<String, String>) -> Value {
    match form.get("token").and_then(|t| s.access.get(t)) {
        Some((user, until)) if *until > Instant::now() => {
            json!({"active": true, "username": user})
        }
        _ => json!({"active": false}),
    }
}

fn device_code(s: &mut State, form: &HashMap<String, String>) -> (u16, Value) {
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return refusal("invalid_client", "AADSTS700016: Application not found.");
    }
    let device = s.token("dc");
    let user_code = format!("{:04X}-{:04X}", fastrand::u16(..), fastrand::u16(..));
    s.devices.insert(device.clone(), (user_code.clone(), None));
    (
        200,
        json!({
            "device_code": device,
            "user_code": user_code,
            "verification_uri": "http://127.0.0.1/device",
            "expires_in": 600,
            "interval": 1,
        }),
    )
}

fn token(s: &mut State, form: &HashMap<String, String>) -> (u16, Value) {
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    let (status, answer) = grant_answer(s, &grant, form);
    let result = if status == 200 { "ok" } else { "refused" };
    s.requests.push(format!("{grant} {result}"));
    (status, answer)
}

fn grant_answer(s: &mut State, grant: &str, form: &HashMap<String, String>) -> (u16, Value) {
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return refusal("invalid_client", "AADSTS700016: Application not found.");
    }
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    match grant {
        "refresh_token" => match s.refresh.remove(&field("refresh_token")) {
            Some(user) => (200, s.issue(&user, false)),
            None => refusal(
                "invalid_grant",
                "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity.",
            ),
        },
        "urn:ietf:params:oauth:grant-type:device_code" => {
            match s.devices.get(&field("device_code")).cloned() {
                Some((_, Some(user))) => {
                    s.devices.remove(&field("device_code"));
                    (200, s.issue(&user, false))
                }
                Some((_, None)) => refusal(
                    "authorization_pending",
                    "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending.",
                ),
                None => refusal("expired_token", "AADSTS70020: The device code expired."),
            }
        }
        "authorization_code" => match s.codes.remove(&field("code")) {
            Some((user, challenge)) => {
                let digest = {
                    use sha2::Digest;
                    sha2::Sha256::digest(field("code_verifier").as_bytes())
                };
                let made = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
                if made == challenge {
                    (200, s.issue(&user, false))
                } else {
                    refusal(
                        "invalid_grant",
                        "AADSTS501481: The Code_Verifier does not match.",
                    )
                }
            }
            None => refusal(
                "invalid_grant",
                "AADSTS54005: The code was already redeemed.",
            ),
        },
        "client_credentials" => match (&s.app_user, field("client_secret") == CLIENT_SECRET) {
            (Some(user), true) => {
                let user = user.clone();
                (200, s.issue(&user, true))
            }
            _ => refusal(
                "invalid_client",
                "AADSTS7000215: Invalid client secret provided.",
            ),
        },
        other => refusal(
            "unsupported_grant_type",
            &format!("AADSTS70003: {other} is not supported."),
        ),
    }
}
