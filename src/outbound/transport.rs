//! Where a rendered notification goes: an SMTP server (lettre, rustls, pooled connections) or,
//! without one, a spool directory with one .eml file per mail.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
use lettre::{AsyncTransport, Tokio1Executor};

use crate::config::{OutboundSettings, SmtpTls};

/// Why a delivery failed, as the sender acts on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later (connection refused, 4xx).
    #[error("temporary: {0}")]
    Temporary(String),
    /// Will never work (5xx, e.g. unknown user).
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
        transport: AsyncSmtpTransport<Tokio1Executor>,
        shown: String,
        connections: usize,
    },
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
        let tls = match smtp.tls {
            SmtpTls::Starttls => Tls::Required(tls_params()?),
            SmtpTls::Implicit => Tls::Wrapper(tls_params()?),
            SmtpTls::None => Tls::None,
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
            .port(smtp.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(smtp.timeout_secs)))
            .pool_config(
                PoolConfig::new()
                    .max_size(smtp.connections as u32)
                    .idle_timeout(Duration::from_secs(60)),
            );
        if let (Some(user), Some(pass)) = (&smtp.username, &smtp.password) {
            b = b.credentials(Credentials::new(user.clone(), pass.expose().to_string()));
        }
        let tls_name = match smtp.tls {
            SmtpTls::Starttls => "starttls",
            SmtpTls::Implicit => "tls",
            SmtpTls::None => "plain",
        };
        Ok(Transport::Smtp {
            transport: b.build(),
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
            Transport::Smtp { transport, .. } => {
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
                match transport.send_raw(&envelope, raw).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.is_permanent() => Err(SendError::Permanent(error_text(&e))),
                    Err(e) => Err(SendError::Temporary(error_text(&e))),
                }
            }
        }
    }
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
