//! `deskmail auth login NAME` and `deskmail auth status`: the OAuth2 accounts of the mailboxes
//! and of `[outbound.smtp]`.

use std::sync::Arc;

use clap::Subcommand;

use super::{CmdResult, Failure};
use crate::config::{Auth, Flow, OAuth2Settings, Settings, Source};
use crate::errors;
use crate::oauth2::{TokenSource, login, token_file::Locked};

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Sign in once for an OAuth2 account and keep its refresh token in its token_file: NAME is
    /// a mailbox's name, or `smtp` for [outbound.smtp]
    Login {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// For every OAuth2 account: its token file, and whether a new access token can be had
    /// (this asks the provider, and stores a rotated refresh token)
    Status,
}

/// An account that logs in with OAuth2: where it is configured, and as whom.
struct Account {
    name: String,
    username: String,
    settings: Arc<OAuth2Settings>,
}

/// The OAuth2 accounts of the config, mailboxes first.
fn accounts(s: &Settings) -> Vec<Account> {
    let imap = s.mailboxes.iter().filter_map(|m| match &m.source {
        Some(Source::Imap(i)) => Some((m.name.clone(), &i.login)),
        _ => None,
    });
    let smtp = s
        .outbound
        .smtp
        .as_ref()
        .and_then(|smtp| smtp.login.as_ref())
        .map(|l| ("smtp".to_string(), l));
    imap.chain(smtp)
        .filter_map(|(name, login)| match &login.auth {
            Auth::OAuth2(settings) => Some(Account {
                name,
                username: login.username.clone(),
                settings: Arc::clone(settings),
            }),
            Auth::Password(_) => None,
        })
        .collect()
}

pub async fn run(settings: Settings, cmd: AuthCommand) -> CmdResult {
    let accounts = accounts(&settings);
    match cmd {
        AuthCommand::Login { name } => {
            let Some(account) = accounts.into_iter().find(|a| a.name == name) else {
                return Err(Failure::msg(format!(
                    "no OAuth2 account named {name}: give a mailbox's name (with auth = \"oauth2\" \
                     in its [mailboxes.imap]) or smtp"
                )));
            };
            sign_in(account).await
        }
        AuthCommand::Status => status(accounts).await,
    }
}

async fn sign_in(account: Account) -> CmdResult {
    let settings = Arc::clone(&account.settings);
    let stored = tokio::task::spawn_blocking(move || {
        let stdin = std::io::stdin();
        login::login(&settings, &mut stdin.lock(), &mut std::io::stdout())
    })
    .await
    .map_err(|e| Failure::with_cause("the sign-in", errors::TaskFailed::from(e)))?
    .map_err(|e| Failure::with_cause(format!("signing in {}", account.username), e))?;
    let path = account.settings.token_file.as_deref();
    println!(
        "Signed in as {}: the refresh token is kept in {}{}",
        account.username,
        path.map_or_else(String::new, |p| p.display().to_string()),
        stored
            .expires_at
            .map_or_else(String::new, |t| format!(" (it expires at {t})"))
    );
    // The token works: an access token is got with it.
    let source = TokenSource::shared(&account.settings, &account.username);
    source
        .access_token()
        .await
        .map_err(|e| Failure::with_cause("the new refresh token does not work", e))?;
    Ok(())
}

async fn status(accounts: Vec<Account>) -> CmdResult {
    if accounts.is_empty() {
        println!("no account logs in with OAuth2");
        return Ok(());
    }
    let mut failed = 0;
    for a in accounts {
        let kept = match (&a.settings.token_file, a.settings.flow) {
            (_, Flow::ClientCredentials) => "client credentials".to_string(),
            (Some(path), _) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || stored_line(&path))
                    .await
                    .unwrap_or_else(|e| errors::TaskFailed::from(e).to_string())
            }
            (None, _) => "no token_file".to_string(),
        };
        let source = TokenSource::shared(&a.settings, &a.username);
        let result = match source.access_token().await {
            Ok(_) => {
                let expires = source.status().access_expires_at;
                format!(
                    "OK, an access token until {}",
                    expires.map_or_else(|| "?".into(), |t| t.to_string())
                )
            }
            Err(e) => {
                failed += 1;
                format!("FAILED: {}", errors::chain(&e))
            }
        };
        println!(
            "{} ({}, {}): {kept}; {result}",
            a.name, a.username, a.settings.provider
        );
    }
    if failed > 0 {
        return Err(Failure::msg(format!(
            "{failed} account(s) cannot get a token: run `deskmail auth login NAME` for them"
        )));
    }
    Ok(())
}

/// What the token file holds, said in a few words.
fn stored_line(path: &std::path::Path) -> String {
    let read = Locked::lock(path).and_then(|l| l.read());
    match read {
        Ok(Some(s)) => format!(
            "{} holds a refresh token from {}{}",
            path.display(),
            s.issued_at,
            s.expires_at
                .map_or_else(String::new, |t| format!(", expiring at {t}"))
        ),
        Ok(None) => format!("{} holds no token yet", path.display()),
        Err(e) => errors::chain(&e),
    }
}
