//! Keeps every OAuth2 account's access token fresh while the daemon runs, not only when a
//! connection logs in: an IMAP connection may stay up for days, and a refresh token that is
//! never used runs out (Microsoft's after 90 days). Renewing ahead of expiry also stores each
//! rotated refresh token, keeps the token metrics current, and finds a revoked sign-in before a
//! connection needs it. A failed account is asked again after a pause.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Shared;
use crate::errors;
use crate::oauth2::TokenSource;

/// How often the accounts are looked at (a token is only asked for when it is due).
const EVERY: Duration = Duration::from_secs(60);
/// How long a failed account waits before it is asked again.
const AFTER_FAILURE: Duration = Duration::from_secs(5 * 60);

pub(super) async fn run(shared: Arc<Shared>) {
    let mut stopping = shared.stopping.clone();
    let mut paused: HashMap<String, Instant> = HashMap::new();
    loop {
        tokio::select! {
            _ = super::stopped(&mut stopping) => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        for source in TokenSource::all() {
            let account = source.account().to_string();
            if paused
                .get(&account)
                .is_some_and(|until| *until > Instant::now())
            {
                continue;
            }
            match source.access_token().await {
                Ok(_) => {
                    paused.remove(&account);
                }
                Err(e) => {
                    tracing::warn!(
                        account = %account,
                        "{}; asking again in {} minutes",
                        errors::Chain(&e),
                        AFTER_FAILURE.as_secs() / 60
                    );
                    paused.insert(account, Instant::now() + AFTER_FAILURE);
                }
            }
        }
    }
}
