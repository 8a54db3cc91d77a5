//! Where an account's access tokens come from: kept while they are good, renewed ahead of
//! their expiry (with the refresh token from the token file, or the application's own
//! credentials), and forgotten when a server refuses one. One source per token file in a
//! process: a mailbox and the SMTP account that share an account share its tokens, and a
//! rotated refresh token is spent once.

use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

use super::OAuth2Error;
use super::endpoint::{self, Tokens};
use super::token_file::{Locked, Stored};
use crate::config::{Flow, OAuth2Settings, Secret};
use crate::errors::TaskFailed;

/// An access token is renewed this long before it expires (or half-way, if it lives shorter).
const AHEAD: SignedDuration = SignedDuration::from_mins(5);
/// How long an access token lives where the provider does not say.
const DEFAULT_LIFETIME: u64 = 3600;

/// What the metrics and `deskmail auth status` show of a source.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub access_expires_at: Option<Timestamp>,
    pub refresh_expires_at: Option<Timestamp>,
    pub refreshes_ok: u64,
    pub refreshes_failed: u64,
    /// The last failure, when the last attempt failed.
    pub last_error: Option<String>,
}

struct Access {
    token: Secret,
    renew_at: Timestamp,
}

pub struct TokenSource {
    settings: Arc<OAuth2Settings>,
    account: String,
    access: tokio::sync::Mutex<Option<Access>>,
    status: Mutex<Status>,
}

/// The sources of this process, kept for its life: an access token outlives the connection
/// that asked for it, and the metrics show every account.
static SOURCES: Mutex<Vec<Arc<TokenSource>>> = Mutex::new(Vec::new());

impl TokenSource {
    /// The source for these settings: the one already in use for the same token file (or the
    /// same application and account), else a new one. A source whose settings changed (the
    /// config was read again) is replaced.
    pub fn shared(settings: &Arc<OAuth2Settings>, account: &str) -> Arc<TokenSource> {
        let mut sources = SOURCES.lock().unwrap_or_else(|p| p.into_inner());
        let same_account = |s: &TokenSource| match (&s.settings.token_file, &settings.token_file) {
            (Some(a), Some(b)) => a == b,
            (None, None) => same_app(&s.settings, settings) && s.account == account,
            _ => false,
        };
        if let Some(i) = sources.iter().position(|s| same_account(s)) {
            if same_app(&sources[i].settings, settings) {
                return Arc::clone(&sources[i]);
            }
            sources.remove(i);
        }
        let source = Arc::new(TokenSource {
            settings: Arc::clone(settings),
            account: account.to_string(),
            access: tokio::sync::Mutex::new(None),
            status: Mutex::new(Status::default()),
        });
        sources.push(Arc::clone(&source));
        source
    }

    /// Every source in use, for the metrics.
    pub fn all() -> Vec<Arc<TokenSource>> {
        SOURCES.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn settings(&self) -> &OAuth2Settings {
        &self.settings
    }

    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A good access token: the one held, or a new one.
    pub async fn access_token(&self) -> Result<Secret, OAuth2Error> {
        let mut access = self.access.lock().await;
        if let Some(a) = access.as_ref()
            && a.renew_at > Timestamp::now()
        {
            return Ok(a.token.clone());
        }
        let settings = Arc::clone(&self.settings);
        let got = tokio::task::spawn_blocking(move || obtain(&settings))
            .await
            .map_err(TaskFailed::from)
            .map_err(OAuth2Error::Task)
            .and_then(|r| r);
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        match got {
            Ok(fresh) => {
                let now = Timestamp::now();
                let life = SignedDuration::from_secs(
                    fresh.tokens.expires_in.unwrap_or(DEFAULT_LIFETIME) as i64,
                );
                let ahead = AHEAD.min(life / 2);
                status.access_expires_at = Some(now + life);
                status.refresh_expires_at = fresh.refresh_expires_at;
                status.refreshes_ok += 1;
                status.last_error = None;
                let token = Secret::new(fresh.tokens.access_token);
                *access = Some(Access {
                    token: token.clone(),
                    renew_at: now + life - ahead,
                });
                tracing::info!(account = %self.account, expires_in = life.as_secs(), "got an OAuth2 access token");
                Ok(token)
            }
            Err(e) => {
                status.refreshes_failed += 1;
                status.last_error = Some(crate::errors::chain(&e));
                Err(e)
            }
        }
    }

    /// A server refused the token held: the next call gets a new one.
    pub async fn forget(&self) {
        *self.access.lock().await = None;
    }
}

/// Whether two settings ask the same provider as the same application for the same scopes.
fn same_app(a: &OAuth2Settings, b: &OAuth2Settings) -> bool {
    a.token_url == b.token_url
        && a.client_id == b.client_id
        && a.scopes == b.scopes
        && a.client_secret == b.client_secret
        && a.flow == b.flow
}

/// A new access token and what is known of the refresh token.
struct Fresh {
    tokens: Tokens,
    refresh_expires_at: Option<Timestamp>,
}

/// Asks the provider for an access token (blocking).
fn obtain(settings: &OAuth2Settings) -> Result<Fresh, OAuth2Error> {
    let scope = settings.scopes.join(" ");
    let secret = settings.client_secret.as_ref().map(Secret::expose);
    let mut form = vec![("client_id", settings.client_id.as_str())];
    if let Some(s) = secret {
        form.push(("client_secret", s));
    }
    let Some(path) = settings
        .token_file
        .as_deref()
        .filter(|_| settings.flow != Flow::ClientCredentials)
    else {
        form.extend([("grant_type", "client_credentials"), ("scope", &scope)]);
        let tokens = endpoint::post(&settings.token_url, &form)?;
        return Ok(Fresh {
            tokens,
            refresh_expires_at: None,
        });
    };
    let locked = Locked::lock(path)?;
    let stored = locked.read()?.ok_or_else(|| OAuth2Error::NotLoggedIn {
        path: path.to_path_buf(),
    })?;
    form.extend([
        ("grant_type", "refresh_token"),
        ("refresh_token", stored.refresh_token.as_str()),
        ("scope", &scope),
    ]);
    let tokens: Tokens = endpoint::post(&settings.token_url, &form)?;
    let refresh_expires_at = match &tokens.refresh_token {
        Some(new) if *new != stored.refresh_token => {
            let now = Timestamp::now();
            let renewed = Stored {
                refresh_token: new.clone(),
                issued_at: now,
                expires_at: expiry(now, tokens.refresh_token_expires_in),
            };
            locked.write(&renewed)?;
            tracing::info!(file = %path.display(), "stored the provider's new refresh token");
            renewed.expires_at
        }
        _ => stored.expires_at,
    };
    Ok(Fresh {
        tokens,
        refresh_expires_at,
    })
}

/// When a token that lasts `seconds` from `now` expires.
pub(super) fn expiry(now: Timestamp, seconds: Option<u64>) -> Option<Timestamp> {
    seconds.map(|s| now + SignedDuration::from_secs(s as i64))
}
