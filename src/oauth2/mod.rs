//! OAuth2 for IMAP and SMTP (SASL XOAUTH2): Microsoft 365 and Google Workspace no longer take
//! passwords. An account signs in once (`deskmail auth login`, [`login`]); the refresh token
//! lives in its token file ([`token_file`]), and a [`TokenSource`] turns it into access tokens
//! as the connections need them, storing every refresh token the provider rotates.

pub mod endpoint;
pub mod login;
mod source;
pub mod token_file;

use std::path::PathBuf;

pub use source::{Status, TokenSource};

use crate::errors::TaskFailed;

/// Why no token was had.
#[derive(Debug, thiserror::Error)]
pub enum OAuth2Error {
    /// The provider said no, with its error code (`invalid_grant`, `invalid_client`, ...) and
    /// the first line of its description (Microsoft's `AADSTS…` number).
    #[error("the provider refused: {code}{}", if description.is_empty() { String::new() } else { format!(" ({description})") })]
    Refused { code: String, description: String },
    #[error("asking the token endpoint {url}")]
    Http {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("the token endpoint {url} answered {status} without a token: {excerpt}")]
    Answer {
        url: String,
        status: u16,
        excerpt: String,
    },
    #[error("the token file {}", path.display())]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no refresh token in {}: sign in once with `deskmail auth login`", path.display())]
    NotLoggedIn { path: PathBuf },
    /// A sign-in that cannot go on: the reason in the admin's terms.
    #[error("{0}")]
    Login(String),
    #[error("{what}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("getting a token")]
    Task(#[source] TaskFailed),
}

/// No access token for an account, and why.
#[derive(Debug, thiserror::Error)]
#[error("getting an OAuth2 access token for {account}")]
pub struct TokenError {
    pub account: String,
    #[source]
    pub source: OAuth2Error,
}

/// The SASL XOAUTH2 initial response (before base64): the user and the bearer token.
pub fn xoauth2(user: &str, token: &str) -> String {
    format!("user={user}\x01auth=Bearer {token}\x01\x01")
}
