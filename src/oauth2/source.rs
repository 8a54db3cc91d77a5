//! Where an account's access tokens come from: kept while they are good, renewed ahead of
//! their expiry (with the refresh token from the token file, or the application's own
//! credentials), and forgotten when a server refuses one. One source per token file in a
//! process: a mailbox and the SMTP account that share an account share its tokens, and a
//! rotated refresh token is spent once.

use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

use super::endpoint::{self, Tokens};
use super::token_file::{Locked, Stored};
use super::{OAuth2Error, TokenError};
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

/// What a source holds between requests.
#[derive(Default)]
struct Held {
    access: Option<Access>,
    /// A rotated refresh token the token file could not take (a full disk, a wrong owner): the
    /// provider has voided the one before it, so it is kept here and written at the next try.
    unsaved: Option<Stored>,
}

pub struct TokenSource {
    settings: Arc<OAuth2Settings>,
    account: String,
    held: tokio::sync::Mutex<Held>,
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
            held: tokio::sync::Mutex::new(Held::default()),
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
    pub async fn access_token(&self) -> Result<Secret, TokenError> {
        let mut held = self.held.lock().await;
        if let Some(a) = held.access.as_ref()
            && a.renew_at > Timestamp::now()
        {
            return Ok(a.token.clone());
        }
        let settings = Arc::clone(&self.settings);
        let unsaved = held.unsaved.take();
        let got = tokio::task::spawn_blocking(move || obtain(&settings, unsaved))
            .await
            .map_err(TaskFailed::from)
            .map_err(OAuth2Error::Task)
            .and_then(|r| r);
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        match got {
            Ok(fresh) => {
                let now = Timestamp::now();
                let life = lifetime(fresh.tokens.expires_in.unwrap_or(DEFAULT_LIFETIME));
                let ahead = AHEAD.min(life / 2);
                status.access_expires_at = Some(now + life);
                status.refresh_expires_at = fresh.refresh_expires_at;
                status.refreshes_ok += 1;
                status.last_error = None;
                let token = Secret::new(fresh.tokens.access_token);
                held.access = Some(Access {
                    token: token.clone(),
                    renew_at: now + life - ahead,
                });
                held.unsaved = fresh.unsaved;
                tracing::info!(account = %self.account, expires_in = life.as_secs(), "got an OAuth2 access token");
                Ok(token)
            }
            Err(e) => {
                status.refreshes_failed += 1;
                status.last_error = Some(crate::errors::chain(&e));
                Err(TokenError {
                    account: self.account.clone(),
                    source: e,
                })
            }
        }
    }

    /// A server refused the token held: the next call gets a new one.
    pub async fn forget(&self) {
        self.held.lock().await.access = None;
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
    /// A rotated refresh token that could not be written.
    unsaved: Option<Stored>,
}

/// Asks the provider for an access token (blocking). `unsaved`: a rotated refresh token an
/// earlier request could not write; it is written now, and used.
fn obtain(settings: &OAuth2Settings, unsaved: Option<Stored>) -> Result<Fresh, OAuth2Error> {
    let scope = settings.scopes.join(" ");
    let mut form = endpoint::client(settings);
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
            unsaved: None,
        });
    };
    let locked = Locked::lock(path)?;
    let stored = match unsaved {
        Some(kept) => {
            keep(&locked, kept.clone(), path);
            kept
        }
        None => locked.read()?.ok_or_else(|| OAuth2Error::NotLoggedIn {
            path: path.to_path_buf(),
        })?,
    };
    form.extend([
        ("grant_type", "refresh_token"),
        ("refresh_token", stored.refresh_token.as_str()),
        ("scope", &scope),
    ]);
    let tokens: Tokens = endpoint::post(&settings.token_url, &form)?;
    let (refresh_expires_at, unsaved) = match &tokens.refresh_token {
        Some(new) if *new != stored.refresh_token => {
            let now = Timestamp::now();
            let renewed = Stored {
                refresh_token: new.clone(),
                issued_at: now,
                expires_at: expiry(now, tokens.refresh_token_expires_in),
            };
            (renewed.expires_at, keep(&locked, renewed, path))
        }
        _ => (stored.expires_at, None),
    };
    Ok(Fresh {
        tokens,
        refresh_expires_at,
        unsaved,
    })
}

/// Writes a new refresh token to its file; one that cannot be written is handed back, to be
/// held in memory and written at the next try (said in the log: a restart would lose it).
fn keep(locked: &Locked, stored: Stored, path: &std::path::Path) -> Option<Stored> {
    match locked.write(&stored) {
        Ok(()) => {
            tracing::info!(file = %path.display(), "stored the provider's new refresh token");
            None
        }
        Err(e) => {
            tracing::error!(
                file = %path.display(),
                "cannot store the provider's new refresh token: {}; it is kept in memory and \
                 written at the next renewal; a restart before then needs `deskmail auth login`",
                crate::errors::Chain(&e)
            );
            Some(stored)
        }
    }
}

/// The longest lifetime believed from a provider: a year (a wrong or hostile figure cannot
/// overflow a time).
const LONGEST: u64 = 366 * 86_400;

/// `seconds` as a lifetime, at most [`LONGEST`].
fn lifetime(seconds: u64) -> SignedDuration {
    SignedDuration::from_secs(seconds.min(LONGEST) as i64)
}

/// When a token that lasts `seconds` from `now` expires.
pub(super) fn expiry(now: Timestamp, seconds: Option<u64>) -> Option<Timestamp> {
    seconds.map(|s| now + lifetime(s))
}
