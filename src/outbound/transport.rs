//! Where a rendered notification goes: an SMTP server (lettre's protocol code over deskmail's own
//! reused connections, TLS by rustls) or, without one, a spool directory with one .eml file per
//! mail.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::fmt;
use std::sync::Arc;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;

use crate::config::{Auth, OutboundSettings, SmtpSettings, SmtpTls};
use crate::errors;
use crate::oauth2::TokenSource;

/// Why a delivery failed, as the sender acts on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later (connection refused, 4xx).
    #[error("temporary: {0}")]
    Temporary(String),
    /// The server refused this recipient for good (5xx at RCPT, e.g. unknown user): the address
    /// is marked as failing.
    #[error("recipient refused: {0}")]
    Rejected(String),
    /// This message will never go through (5xx for the sender or the content).
    #[error("permanent: {0}")]
    Permanent(String),
    /// The message is larger than the server takes (its SIZE, or a 552 answer to it): the
    /// address is fine.
    #[error("too large for the mail server: {0}")]
    TooLarge(String),
}

/// Why the SMTP settings make no transport.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot read the CA certificate {path}")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the CA certificate {path} is not a PEM certificate")]
    Ca {
        path: String,
        source: lettre::transport::smtp::Error,
    },
    #[error("cannot set up TLS for {host}")]
    Tls {
        host: String,
        source: lettre::transport::smtp::Error,
    },
}

/// A configured way out.
#[derive(Clone)]
pub enum Transport {
    Spool(PathBuf),
    Smtp {
        client: Arc<SmtpClient>,
        shown: String,
        connections: usize,
    },
}

/// How the SMTP connections are made.
struct Connector {
    host: String,
    port: u16,
    tls: TlsMode,
    login: Option<SmtpLogin>,
    timeout: Duration,
}

/// How the SMTP session logs in.
pub(crate) enum SmtpLogin {
    /// AUTH PLAIN or LOGIN.
    Password(Credentials),
    /// AUTH XOAUTH2 with the account's access token.
    OAuth2 {
        user: String,
        source: Arc<TokenSource>,
    },
}

enum TlsMode {
    None,
    /// Plain TCP upgraded by STARTTLS.
    Starttls(TlsParameters),
    /// TLS from the first byte (port 465).
    Implicit(TlsParameters),
}

/// SMTP delivery over reused connections, several at once.
pub struct SmtpClient {
    connector: Connector,
    hello: ClientId,
    idle: tokio::sync::Mutex<Vec<Session>>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Transport {
    pub fn from_settings(s: &OutboundSettings) -> Result<Transport, TransportError> {
        let Some(smtp) = &s.smtp else {
            return Ok(Transport::Spool(s.spool_dir.clone()));
        };
        let tls_params = || tls_parameters(smtp);
        let timeout = Duration::from_secs(smtp.timeout_secs);
        let login = SmtpLogin::of(smtp);
        let tls = match smtp.tls {
            SmtpTls::Starttls => TlsMode::Starttls(tls_params()?),
            SmtpTls::Implicit => TlsMode::Implicit(tls_params()?),
            SmtpTls::None => TlsMode::None,
        };
        let connector = Connector {
            host: smtp.host.clone(),
            port: smtp.port,
            tls,
            login,
            timeout,
        };
        let tls_name = match smtp.tls {
            SmtpTls::Starttls => "starttls",
            SmtpTls::Implicit => "tls",
            SmtpTls::None => "plain",
        };
        let hello = hostname_client_id();
        Ok(Transport::Smtp {
            client: Arc::new(SmtpClient {
                connector,
                hello,
                idle: tokio::sync::Mutex::new(Vec::new()),
            }),
            shown: format!("smtp://{}:{} ({tls_name})", smtp.host, smtp.port),
            connections: smtp.connections,
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Transport::Spool(dir) => format!("spool {}", dir.display()),
            Transport::Smtp { shown, .. } => shown.clone(),
        }
    }

    /// How long one delivery may take at most (seconds).
    pub fn timeout_secs(&self) -> u64 {
        match self {
            Transport::Spool(_) => 10,
            Transport::Smtp { client, .. } => client.connector.timeout.as_secs(),
        }
    }

    /// How many deliveries may run at once.
    pub fn parallelism(&self) -> usize {
        match self {
            Transport::Spool(_) => 1,
            Transport::Smtp { connections, .. } => *connections,
        }
    }

    /// Delivers one message.
    pub async fn send(
        &self,
        from: &str,
        to: &str,
        message_id: &str,
        raw: &[u8],
    ) -> Result<(), SendError> {
        match self {
            Transport::Spool(dir) => spool(dir, message_id, raw)
                .await
                .map_err(|e| SendError::Temporary(format!("spool {}: {e}", dir.display()))),
            Transport::Smtp { client, .. } => {
                let envelope = Envelope::new(
                    Some(
                        from.parse()
                            .map_err(|e| SendError::Permanent(format!("sender {from}: {e}")))?,
                    ),
                    vec![
                        to.parse()
                            .map_err(|e| SendError::Permanent(format!("recipient {to}: {e}")))?,
                    ],
                )
                .map_err(|e| SendError::Permanent(e.to_string()))?;
                client.send(&envelope, raw).await
            }
        }
    }
}

impl SmtpLogin {
    /// How the SMTP settings log in, when they name an account.
    pub(crate) fn of(smtp: &SmtpSettings) -> Option<SmtpLogin> {
        smtp.login.as_ref().map(|l| match &l.auth {
            Auth::Password(pass) => SmtpLogin::Password(Credentials::new(
                l.username.clone(),
                pass.expose().to_string(),
            )),
            Auth::OAuth2(settings) => SmtpLogin::OAuth2 {
                user: l.username.clone(),
                source: TokenSource::shared(settings, &l.username),
            },
        })
    }

    /// Logs in: AUTH PLAIN or LOGIN with a password, XOAUTH2 with the account's access token.
    pub(crate) async fn log_in(&self, conn: &mut AsyncSmtpConnection) -> Result<(), SetupError> {
        match self {
            SmtpLogin::Password(c) => {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], c).await?;
                Ok(())
            }
            SmtpLogin::OAuth2 { user, source } => oauth2_auth(conn, user, source).await,
        }
    }
}

/// TLS towards the SMTP server: the system's CAs and the configured `ca_file`.
pub(crate) fn tls_parameters(smtp: &SmtpSettings) -> Result<TlsParameters, TransportError> {
    let mut b = TlsParameters::builder(smtp.host.clone());
    if let Some(ca) = &smtp.ca_file {
        let pem = std::fs::read(ca).map_err(|source| TransportError::CaFile {
            path: ca.display().to_string(),
            source,
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|source| TransportError::Ca {
            path: ca.display().to_string(),
            source,
        })?;
        b = b.add_root_certificate(cert);
    }
    b.build_rustls().map_err(|source| TransportError::Tls {
        host: smtp.host.clone(),
        source,
    })
}

/// The name this host says hello with (its hostname when it is a domain name).
pub(crate) fn hostname_client_id() -> ClientId {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| h.contains('.'))
        .map(ClientId::Domain)
        .unwrap_or_default()
}

fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() {
        SendError::Permanent(error_text(e))
    } else {
        SendError::Temporary(error_text(e))
    }
}

impl SmtpClient {
    async fn connect(&self) -> Result<Session, SendError> {
        let Connector {
            host,
            port,
            tls,
            login,
            timeout,
        } = &self.connector;
        let setup = async {
            let mut conn = match tls {
                // TCP_NODELAY cannot be set on lettre's own socket; the message goes in one
                // write (`DataBody`), so that costs nothing.
                TlsMode::Implicit(params) => {
                    AsyncSmtpConnection::connect_tokio1(
                        (host.as_str(), *port),
                        Some(*timeout),
                        &self.hello,
                        Some(params.clone()),
                        None,
                    )
                    .await?
                }
                TlsMode::None | TlsMode::Starttls(_) => {
                    let tcp = tokio::net::TcpStream::connect((host.as_str(), *port))
                        .await
                        .map_err(|e| SetupError::Connect(e.to_string()))?;
                    tcp.set_nodelay(true)
                        .map_err(|e| SetupError::Connect(format!("TCP_NODELAY: {e}")))?;
                    let mut conn =
                        AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                            .await?;
                    if let TlsMode::Starttls(params) = tls {
                        conn.starttls(params.clone(), &self.hello).await?;
                    }
                    conn
                }
            };
            if let Some(login) = login {
                login.log_in(&mut conn).await?;
            }
            // lettre keeps no note of PIPELINING (RFC 2920): ask once more and read it off the
            // answer. It saves two round trips per mail.
            let ehlo = conn.command(Ehlo::new(self.hello.clone())).await?;
            let pipelining = ehlo
                .message()
                .any(|l| l.trim().eq_ignore_ascii_case("PIPELINING"));
            let size_limit = ehlo.message().find_map(size_keyword);
            Ok::<_, SetupError>(Session {
                conn,
                pipelining,
                size_limit,
            })
        };
        // A refusal while connecting (EHLO, STARTTLS, AUTH) is the configuration's fault, not
        // the mail's: retried, and reported once the retry time is over.
        tokio::time::timeout(*timeout, setup)
            .await
            .map_err(|_| SendError::Temporary(format!("{host}:{port} did not answer in time")))?
            .map_err(|e| match e {
                SetupError::Connect(e) => {
                    SendError::Temporary(format!("connecting to {host}:{port}: {e}"))
                }
                SetupError::Smtp(e) => {
                    SendError::Temporary(format!("setting up the session: {}", error_text(&e)))
                }
                SetupError::Token(e) => SendError::Temporary(errors::chain(&e)),
                SetupError::TokenRefused(e) => SendError::Temporary(e),
            })
    }

    async fn send(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), SendError> {
        let timeout = self.connector.timeout;
        // A reused connection may have been closed by the server meanwhile: one more try on a
        // fresh one before calling it a failure.
        for attempt in 0..2 {
            let reused = self.idle.lock().await.pop();
            let was_reused = reused.is_some();
            let mut session = match reused {
                Some(c) => c,
                None => self.connect().await?,
            };
            match tokio::time::timeout(timeout, session.transact(envelope, raw)).await {
                Ok(Ok(())) => {
                    self.idle.lock().await.push(session);
                    return Ok(());
                }
                Ok(Err(e)) => {
                    // After a refusal the session is not reused (with pipelining, answers to
                    // commands after the refused one may still be on their way).
                    session.conn.abort().await;
                    let retry = was_reused && attempt == 0 && matches!(e, SendError::Temporary(_));
                    if !retry {
                        return Err(e);
                    }
                }
                Err(_) if was_reused && attempt == 0 => continue,
                Err(_) => {
                    return Err(SendError::Temporary(
                        "the server did not answer in time".into(),
                    ));
                }
            }
        }
        Err(SendError::Temporary("the connection broke twice".into()))
    }
}

/// AUTH XOAUTH2 with the account's access token, written here rather than by lettre: a server
/// that refuses a token first sends its reason as a challenge (334) and waits for an empty line
/// before its 535, a step lettre's mechanism does not take. A token the server does not take is
/// forgotten, so that the next connection gets a new one.
async fn oauth2_auth(
    conn: &mut AsyncSmtpConnection,
    user: &str,
    source: &TokenSource,
) -> Result<(), SetupError> {
    use base64::Engine;
    let token = source.access_token().await.map_err(SetupError::Token)?;
    let initial = base64::engine::general_purpose::STANDARD
        .encode(crate::oauth2::xoauth2(user, token.expose()));
    let mut answer = conn.command(Line(format!("AUTH XOAUTH2 {initial}"))).await;
    if let Ok(challenge) = &answer
        && challenge.has_code(334)
    {
        answer = conn.command(Line(String::new())).await;
    }
    match answer {
        Ok(done) if done.has_code(235) => Ok(()),
        Ok(other) => {
            source.forget().await;
            Err(SetupError::TokenRefused(format!(
                "the server did not take the access token for {user}: {} {}",
                other.code(),
                other.message().collect::<Vec<_>>().join(" ")
            )))
        }
        Err(e) => {
            source.forget().await;
            Err(e.into())
        }
    }
}

/// One command line as it is sent.
struct Line(String);

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\r\n", self.0)
    }
}

/// A connection and what its server offers.
struct Session {
    conn: AsyncSmtpConnection,
    pipelining: bool,
    /// The largest message the server takes (EHLO's SIZE, RFC 1870), when it says.
    size_limit: Option<u64>,
}

impl Session {
    /// One SMTP transaction, each answer read in turn, so that a refusal says whose fault it
    /// is: a permanent refusal at RCPT is the recipient's, at MAIL or DATA the message's. With
    /// PIPELINING, MAIL, RCPT and DATA go out in one write and their answers are read after.
    async fn transact(&mut self, envelope: &Envelope, raw: &[u8]) -> Result<(), SendError> {
        if let Some(limit) = self.size_limit.filter(|l| *l > 0 && raw.len() as u64 > *l) {
            return Err(SendError::TooLarge(format!(
                "the message is {}, the server takes at most {} (SIZE)",
                crate::outbound::compose::size_text(raw.len() as u64),
                crate::outbound::compose::size_text(limit)
            )));
        }
        let conn = &mut self.conn;
        let sender_or_message = |e: lettre::transport::smtp::Error| classify(&e);
        let recipient = |e: lettre::transport::smtp::Error| {
            if e.is_permanent() {
                SendError::Rejected(error_text(&e))
            } else {
                classify(&e)
            }
        };
        let mail = Mail::new(envelope.from().cloned(), vec![]);
        if self.pipelining {
            let mut commands = mail.to_string();
            for to in envelope.to() {
                commands.push_str(&Rcpt::new(to.clone(), vec![]).to_string());
            }
            commands.push_str(&Data.to_string());
            conn.command(commands).await.map_err(sender_or_message)?;
            for _ in envelope.to() {
                conn.read_response().await.map_err(recipient)?;
            }
            conn.read_response().await.map_err(sender_or_message)?;
        } else {
            conn.command(mail).await.map_err(sender_or_message)?;
            for to in envelope.to() {
                conn.command(Rcpt::new(to.clone(), vec![]))
                    .await
                    .map_err(recipient)?;
            }
            conn.command(Data).await.map_err(sender_or_message)?;
        }
        match std::str::from_utf8(raw) {
            Ok(text) => conn.command(DataBody(text)).await,
            Err(_) => conn.message(raw).await,
        }
        .map_err(|e| {
            let text = error_text(&e);
            if too_large(&e, &text) {
                SendError::TooLarge(text)
            } else {
                sender_or_message(e)
            }
        })?;
        Ok(())
    }
}

/// Why a session could not be set up.
pub(crate) enum SetupError {
    Connect(String),
    Smtp(lettre::transport::smtp::Error),
    /// No access token could be had.
    Token(crate::oauth2::TokenError),
    /// The server answered the access token with neither success nor an error.
    TokenRefused(String),
}

impl From<lettre::transport::smtp::Error> for SetupError {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        SetupError::Smtp(e)
    }
}

/// A message's data, dot-stuffed, with the end-of-data line, written in one piece. lettre writes
/// a message and its final dot separately; the small second write then waits for the server's
/// delayed ACK (Nagle's algorithm) on a socket without TCP_NODELAY, some 40 ms per mail.
struct DataBody<'a>(&'a str);

impl fmt::Display for DataBody<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.0.split_inclusive('\n') {
            if line.starts_with('.') {
                f.write_str(".")?;
            }
            f.write_str(line)?;
        }
        if !self.0.ends_with('\n') {
            f.write_str("\r\n")?;
        }
        f.write_str(".\r\n")
    }
}

/// Whether a refusal of a message's data is for its size: 552 with the enhanced code 5.3.4
/// ("message too big for system") or words to that effect; a 552 for a full mailbox (5.2.2)
/// is not.
fn too_large(e: &lettre::transport::smtp::Error, text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    e.status().is_some_and(|c| c.to_string() == "552")
        && (lower.contains("5.3.4")
            || ["size", "too big", "too large"]
                .iter()
                .any(|w| lower.contains(w)))
}

/// The limit of a `SIZE 10240000` line of an EHLO answer.
pub(crate) fn size_keyword(line: &str) -> Option<u64> {
    let mut words = line.split_whitespace();
    let keyword = words.next()?;
    if !keyword.eq_ignore_ascii_case("SIZE") {
        return None;
    }
    words.next()?.parse().ok()
}

fn error_text(e: &lettre::transport::smtp::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// The spool's file name for a Message-ID (without `.eml`).
pub fn spool_name(message_id: &str) -> String {
    message_id
        .trim_matches(['<', '>'])
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes one .eml file atomically (a temporary name, fsync, rename).
async fn spool(dir: &Path, message_id: &str, raw: &[u8]) -> std::io::Result<()> {
    let name = spool_name(message_id);
    let dir = dir.to_path_buf();
    let raw = raw.to_vec();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!(".{name}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&raw)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(format!("{name}.eml")))
    })
    .await
    .map_err(|e| std::io::Error::other(crate::errors::TaskFailed::from(e)))?
}
