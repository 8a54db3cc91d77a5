//! Where a rendered notification goes: an SMTP server (lettre, rustls, pooled connections) or,
//! without one, a spool directory with one .eml file per mail.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::address::Envelope;
use std::sync::Arc;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, Tls, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
use lettre::{AsyncTransport, Tokio1Executor};

use crate::config::{OutboundSettings, SmtpTls};

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
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot read the CA certificate {path}: {reason}")]
    Ca { path: String, reason: String },
    #[error("cannot set up TLS for {host}: {reason}")]
    Tls { host: String, reason: String },
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
enum Connector {
    /// Plain TCP with TCP_NODELAY (lettre writes a message and its final dot separately; with
    /// Nagle's algorithm that costs a delayed-ACK wait per mail), upgraded by STARTTLS when set.
    Direct {
        host: String,
        port: u16,
        starttls: Option<TlsParameters>,
        credentials: Option<Credentials>,
        timeout: Duration,
    },
    /// Implicit TLS (port 465) through lettre's own pooled transport.
    Lettre(AsyncSmtpTransport<Tokio1Executor>),
}

/// SMTP delivery over reused connections, several at once.
pub struct SmtpClient {
    connector: Connector,
    hello: ClientId,
    idle: tokio::sync::Mutex<Vec<AsyncSmtpConnection>>,
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
        let tls_params = || -> Result<TlsParameters, TransportError> {
            let mut b = TlsParameters::builder(smtp.host.clone());
            if let Some(ca) = &smtp.ca_file {
                let pem = std::fs::read(ca).map_err(|e| TransportError::Ca {
                    path: ca.display().to_string(),
                    reason: e.to_string(),
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|e| TransportError::Ca {
                    path: ca.display().to_string(),
                    reason: e.to_string(),
                })?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls().map_err(|e| TransportError::Tls {
                host: smtp.host.clone(),
                reason: e.to_string(),
            })
        };
        let timeout = Duration::from_secs(smtp.timeout_secs);
        let credentials = match (&smtp.username, &smtp.password) {
            (Some(user), Some(pass)) => {
                Some(Credentials::new(user.clone(), pass.expose().to_string()))
            }
            _ => None,
        };
        let connector = match smtp.tls {
            SmtpTls::Starttls => Connector::Direct {
                host: smtp.host.clone(),
                port: smtp.port,
                starttls: Some(tls_params()?),
                credentials,
                timeout,
            },
            SmtpTls::None => Connector::Direct {
                host: smtp.host.clone(),
                port: smtp.port,
                starttls: None,
                credentials,
                timeout,
            },
            SmtpTls::Implicit => {
                let mut b =
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
                        .port(smtp.port)
                        .tls(Tls::Wrapper(tls_params()?))
                        .timeout(Some(timeout))
                        .pool_config(
                            PoolConfig::new()
                                .max_size(smtp.connections as u32)
                                .idle_timeout(Duration::from_secs(60)),
                        );
                if let Some(c) = credentials {
                    b = b.credentials(c);
                }
                Connector::Lettre(b.build())
            }
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
            Transport::Smtp { client, .. } => match &client.connector {
                Connector::Direct { timeout, .. } => timeout.as_secs(),
                Connector::Lettre(_) => 60,
            },
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

/// The name this host says hello with (its hostname when it is a domain name).
fn hostname_client_id() -> ClientId {
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
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let Connector::Direct {
            host,
            port,
            starttls,
            credentials,
            timeout,
        } = &self.connector
        else {
            return Err(SendError::Temporary("no direct connector".into()));
        };
        let tcp = tokio::time::timeout(
            *timeout,
            tokio::net::TcpStream::connect((host.as_str(), *port)),
        )
        .await
        .map_err(|_| SendError::Temporary(format!("connecting to {host}:{port} timed out")))?
        .map_err(|e| SendError::Temporary(format!("connecting to {host}:{port}: {e}")))?;
        tcp.set_nodelay(true)
            .map_err(|e| SendError::Temporary(format!("TCP_NODELAY: {e}")))?;
        let setup = async {
            let mut conn =
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?;
            if let Some(params) = starttls {
                conn.starttls(params.clone(), &self.hello).await?;
            }
            if let Some(c) = credentials {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], c).await?;
            }
            Ok::<_, lettre::transport::smtp::Error>(conn)
        };
        // A refusal while connecting (EHLO, STARTTLS, AUTH) is the configuration's fault, not
        // the mail's: retried, and reported once the retry time is over.
        tokio::time::timeout(*timeout, setup)
            .await
            .map_err(|_| SendError::Temporary(format!("{host}:{port} did not answer in time")))?
            .map_err(|e| {
                SendError::Temporary(format!("setting up the session: {}", error_text(&e)))
            })
    }

    async fn send(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), SendError> {
        let timeout = match &self.connector {
            Connector::Lettre(t) => {
                return t
                    .send_raw(envelope, raw)
                    .await
                    .map(|_| ())
                    .map_err(|e| classify(&e));
            }
            Connector::Direct { timeout, .. } => *timeout,
        };
        // A reused connection may have been closed by the server meanwhile: one more try on a
        // fresh one before calling it a failure.
        for attempt in 0..2 {
            let reused = self.idle.lock().await.pop();
            let was_reused = reused.is_some();
            let mut conn = match reused {
                Some(c) => c,
                None => self.connect().await?,
            };
            match tokio::time::timeout(timeout, transact(&mut conn, envelope, raw)).await {
                Ok(Ok(())) => {
                    self.idle.lock().await.push(conn);
                    return Ok(());
                }
                Ok(Err(e)) => {
                    // After a refusal the session is not reused.
                    conn.abort().await;
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

/// One SMTP transaction, phase by phase, so that a refusal says whose fault it is: a permanent
/// refusal at RCPT is the recipient's, at MAIL or DATA the message's.
async fn transact(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    raw: &[u8],
) -> Result<(), SendError> {
    let sender_or_message = |e: lettre::transport::smtp::Error| classify(&e);
    conn.command(Mail::new(envelope.from().cloned(), vec![]))
        .await
        .map_err(sender_or_message)?;
    for to in envelope.to() {
        conn.command(Rcpt::new(to.clone(), vec![]))
            .await
            .map_err(|e| {
                if e.is_permanent() {
                    SendError::Rejected(error_text(&e))
                } else {
                    classify(&e)
                }
            })?;
    }
    conn.command(Data).await.map_err(sender_or_message)?;
    conn.message(raw).await.map_err(sender_or_message)?;
    Ok(())
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

/// Writes one .eml file atomically (a temporary name, fsync, rename).
async fn spool(dir: &Path, message_id: &str, raw: &[u8]) -> std::io::Result<()> {
    let name: String = message_id
        .trim_matches(['<', '>'])
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
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
    .map_err(std::io::Error::other)?
}
