//! One connection to an IMAP server, as the mailbox's loop uses it: connect (implicit TLS,
//! STARTTLS, or plain to a loopback address), log in, find the folders, fetch by UID, move, and
//! wait with IDLE. async-imap has no timeouts of its own: every step here has one, and any
//! error or timeout leaves the session unusable (the loop drops it and connects again).
//!
//! Two of async-imap's habits are kept in mind: some commands (SEARCH, FETCH, STORE, EXPUNGE,
//! LIST, NOOP) do not report a server's NO or BAD, so an empty answer is never read as a
//! confirmation; and `UID N:*` names the highest UID even when it is below N.

use std::sync::Arc;
use std::time::Duration;

use async_imap::error::Error as ImapError;
use async_imap::extensions::idle::IdleResponse;
use async_imap::types::{Capability, UnsolicitedResponse};
use async_imap::{Authenticator, Client, Session};
use futures_util::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite, BufWriter};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::config::{Auth, ImapSettings, ImapTls};
use crate::oauth2::{self, TokenError, TokenSource};
use crate::system_roots::system_roots;

/// How long any one step may take (a fetched mail's next piece included).
const STEP: Duration = Duration::from_secs(60);

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync + std::fmt::Debug> Io for T {}
type Stream = Box<dyn Io>;

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum ImapFailure {
    #[error("{0}: no answer within {secs} s", secs = STEP.as_secs())]
    Timeout(&'static str),
    #[error("{what}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{what}")]
    Imap {
        what: &'static str,
        source: ImapError,
    },
    #[error("TLS: {what}")]
    Tls {
        what: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the server refused the login: {answer}")]
    Login { answer: String },
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the server closed the connection")]
    Closed,
    #[error("folder {0}: the server gives no UIDVALIDITY")]
    NoUidValidity(String),
}

impl ImapFailure {
    fn tls(
        what: impl std::fmt::Display,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> ImapFailure {
        ImapFailure::Tls {
            what: what.to_string(),
            source: Box::new(source),
        }
    }
}

trait Step<T> {
    fn step(self, what: &'static str) -> Result<T, ImapFailure>;
}

impl<T> Step<T> for Result<T, ImapError> {
    fn step(self, what: &'static str) -> Result<T, ImapFailure> {
        self.map_err(|source| ImapFailure::Imap { what, source })
    }
}

impl<T> Step<T> for std::io::Result<T> {
    fn step(self, what: &'static str) -> Result<T, ImapFailure> {
        self.map_err(|source| ImapFailure::Io { what, source })
    }
}

/// Runs a step within [`STEP`].
async fn timed<T, X: Step<T>>(
    what: &'static str,
    f: impl Future<Output = X>,
) -> Result<T, ImapFailure> {
    match tokio::time::timeout(STEP, f).await {
        Ok(r) => r.step(what),
        Err(_) => Err(ImapFailure::Timeout(what)),
    }
}

/// What the server offers.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities {
    pub idle: bool,
    pub moves: bool,
    pub uidplus: bool,
}

/// What the folder said when it was selected.
#[derive(Debug, Clone, Copy)]
pub struct Selected {
    pub uidvalidity: u32,
    pub uidnext: u32,
    /// How many messages the folder holds.
    pub exists: u32,
}

/// How an IDLE ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// The server said something (new mail, most likely).
    News,
    /// Time to issue IDLE again.
    Timeout,
    /// The daemon stops.
    Stopping,
}

pub struct Connection {
    session: Session<Stream>,
    pub capabilities: Capabilities,
    /// The server's hierarchy delimiter (`/` in a folder name of the config is replaced by it).
    delimiter: String,
}

struct Plain<'a> {
    user: &'a str,
    password: &'a str,
}

impl Authenticator for Plain<'_> {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        format!("\0{}\0{}", self.user, self.password).into_bytes()
    }
}

/// SASL XOAUTH2: the user and the token first; to a refusal (a challenge with the server's
/// error) an empty answer, after which the server says NO.
struct XOAuth2 {
    response: Option<String>,
}

impl Authenticator for XOAuth2 {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        self.response
            .take()
            .map(String::into_bytes)
            .unwrap_or_default()
    }
}

fn tls(settings: &ImapSettings) -> Result<TlsConnector, ImapFailure> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(ca) = &settings.ca_file {
        let certs =
            CertificateDer::pem_file_iter(ca).map_err(|e| ImapFailure::tls(ca.display(), e))?;
        for cert in certs {
            let cert = cert.map_err(|e| ImapFailure::tls(ca.display(), e))?;
            roots
                .add(cert)
                .map_err(|e| ImapFailure::tls(ca.display(), e))?;
        }
    }
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn tls_over(
    settings: &ImapSettings,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapFailure> {
    let name = ServerName::try_from(settings.host.clone())
        .map_err(|e| ImapFailure::tls(&settings.host, e))?;
    timed("TLS handshake", tls(settings)?.connect(name, tcp)).await
}

/// AUTHENTICATE PLAIN, which carries any password as it is; a server that refuses it is asked
/// with LOGIN.
async fn login_with_password(
    client: Client<Stream>,
    user: &str,
    password: &str,
) -> Result<Session<Stream>, ImapFailure> {
    let login = async {
        match client.authenticate("PLAIN", Plain { user, password }).await {
            Ok(s) => Ok(s),
            Err((ImapError::No(_) | ImapError::Bad(_), client)) => {
                client.login(user, password).await.map_err(|(e, _)| e)
            }
            Err((e, _)) => Err(e),
        }
    };
    logged_in(tokio::time::timeout(STEP, login).await)
}

/// AUTHENTICATE XOAUTH2 with the account's access token. A token the server refuses is
/// forgotten, so that the next login gets a new one (a token may be revoked before it expires).
async fn login_with_token(
    client: Client<Stream>,
    user: &str,
    source: &TokenSource,
) -> Result<Session<Stream>, ImapFailure> {
    let token = source.access_token().await?;
    let response = Some(oauth2::xoauth2(user, token.expose()));
    let login = async {
        client
            .authenticate("XOAUTH2", XOAuth2 { response })
            .await
            .map_err(|(e, _)| e)
    };
    let result = logged_in(tokio::time::timeout(STEP, login).await);
    if let Err(ImapFailure::Login { .. }) = result {
        source.forget().await;
    }
    result
}

/// The server's own words in async-imap's account of a tagged NO or BAD
/// (`code: Some(…), info: Some("[AUTHENTICATIONFAILED] Authentication failed.")`): shown to
/// the admin as the server said them.
fn server_words(answer: &str) -> String {
    match answer.split_once("info: Some(\"") {
        Some((_, said)) => said
            .strip_suffix("\")")
            .unwrap_or(said)
            .replace("\\\"", "\""),
        None => answer.to_string(),
    }
}

fn logged_in(
    result: Result<Result<Session<Stream>, ImapError>, tokio::time::error::Elapsed>,
) -> Result<Session<Stream>, ImapFailure> {
    match result {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(ImapError::No(answer) | ImapError::Bad(answer))) => Err(ImapFailure::Login {
            answer: server_words(&answer),
        }),
        Ok(Err(source)) => Err(ImapFailure::Imap {
            what: "login",
            source,
        }),
        Err(_) => Err(ImapFailure::Timeout("login")),
    }
}

/// Reads the server's greeting.
async fn greeting<T: Io>(client: &mut Client<T>) -> Result<(), ImapFailure> {
    match timed("greeting", client.read_response()).await? {
        Some(_) => Ok(()),
        None => Err(ImapFailure::Closed),
    }
}

/// A connection greeted by the server (over TLS unless `tls = "none"`), not yet logged in.
pub(crate) struct Greeted {
    client: Client<Stream>,
    /// The server's own certificate (DER), once TLS is up.
    pub(crate) certificate: Option<CertificateDer<'static>>,
}

/// The server's own certificate of a TLS connection.
fn leaf(tls: &tokio_rustls::client::TlsStream<TcpStream>) -> Option<CertificateDer<'static>> {
    let certs = tls.get_ref().1.peer_certificates()?;
    certs.first().map(|c| c.clone().into_owned())
}

impl Connection {
    /// Connects and logs in (a password: AUTHENTICATE PLAIN, else LOGIN; OAuth2: XOAUTH2).
    pub async fn open(settings: &ImapSettings) -> Result<Connection, ImapFailure> {
        Connection::log_in(Connection::connect(settings).await?, settings).await
    }

    /// Connects, sets up TLS as configured and reads the greeting.
    pub(crate) async fn connect(settings: &ImapSettings) -> Result<Greeted, ImapFailure> {
        let address = (settings.host.as_str(), settings.port);
        let tcp = timed("connect", TcpStream::connect(address)).await?;
        tcp.set_nodelay(true).step("connect")?;
        let mut certificate = None;
        // Written through a buffer: async-imap writes a command in four pieces.
        let client: Client<Stream> = match settings.tls {
            ImapTls::Implicit => {
                let tls = tls_over(settings, tcp).await?;
                certificate = leaf(&tls);
                let mut c = Client::new(Box::new(BufWriter::new(tls)) as Stream);
                greeting(&mut c).await?;
                c
            }
            ImapTls::None => {
                let mut c = Client::new(Box::new(BufWriter::new(tcp)) as Stream);
                greeting(&mut c).await?;
                c
            }
            ImapTls::Starttls => {
                let mut plain = Client::new(BufWriter::new(tcp));
                greeting(&mut plain).await?;
                timed("STARTTLS", plain.run_command_and_check_ok("STARTTLS", None)).await?;
                let tcp = plain.into_inner().into_inner();
                let tls = tls_over(settings, tcp).await?;
                certificate = leaf(&tls);
                // No second greeting after STARTTLS.
                Client::new(Box::new(BufWriter::new(tls)) as Stream)
            }
        };
        Ok(Greeted {
            client,
            certificate,
        })
    }

    /// Logs in on a greeted connection, then asks for the capabilities and the delimiter.
    pub(crate) async fn log_in(
        greeted: Greeted,
        settings: &ImapSettings,
    ) -> Result<Connection, ImapFailure> {
        let client = greeted.client;
        let mut session = match &settings.login.auth {
            Auth::Password(password) => {
                login_with_password(client, &settings.login.username, password.expose()).await?
            }
            Auth::OAuth2(oauth2) => {
                let source = TokenSource::shared(oauth2, &settings.login.username);
                login_with_token(client, &settings.login.username, &source).await?
            }
        };
        // Asked again: servers offer more once logged in (MOVE, UIDPLUS).
        let caps = timed("CAPABILITY", session.capabilities()).await?;
        let capabilities = Capabilities {
            idle: caps.has_str("IDLE"),
            moves: caps.has_str("MOVE"),
            uidplus: caps.has_str("UIDPLUS"),
        };
        let names: Vec<async_imap::types::Name> = timed("LIST", async {
            session.list(Some(""), None).await?.try_collect().await
        })
        .await?;
        let delimiter = names
            .first()
            .and_then(|n| n.delimiter())
            .unwrap_or("/")
            .to_string();
        Ok(Connection {
            session,
            capabilities,
            delimiter,
        })
    }

    /// A folder's name as the config writes it (`/` between levels) in the server's terms.
    pub fn folder_name(&self, configured: &str) -> String {
        configured.replace('/', &self.delimiter)
    }

    /// Creates the folder unless it is there; whether this call created it.
    pub async fn ensure_folder(&mut self, name: &str) -> Result<bool, ImapFailure> {
        if self.has_folder(name).await? {
            return Ok(false);
        }
        match timed("CREATE", self.session.create(name)).await {
            // Another client may have created it meanwhile. The server then says NO
            // [ALREADYEXISTS], a code async-imap hands on only inside a text: the folder is
            // looked for again instead.
            Err(
                e @ ImapFailure::Imap {
                    source: ImapError::No(_),
                    ..
                },
            ) => {
                if self.has_folder(name).await? {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
            other => other.map(|()| true),
        }
    }

    /// Whether the server lists a folder of this name.
    pub(crate) async fn has_folder(&mut self, name: &str) -> Result<bool, ImapFailure> {
        let session = &mut self.session;
        let found: Vec<async_imap::types::Name> = timed("LIST", async {
            session
                .list(Some(""), Some(name))
                .await?
                .try_collect()
                .await
        })
        .await?;
        Ok(found.iter().any(|n| n.name() == name))
    }

    /// The capabilities the server names now (asked again).
    pub(crate) async fn capability_names(&mut self) -> Result<Vec<String>, ImapFailure> {
        let caps = timed("CAPABILITY", self.session.capabilities()).await?;
        let mut names: Vec<String> = caps
            .iter()
            .filter_map(|c| match c {
                Capability::Atom(a) => Some(a.to_ascii_uppercase()),
                Capability::Auth(a) => Some(format!("AUTH={}", a.to_ascii_uppercase())),
                _ => None,
            })
            .collect();
        names.sort_unstable();
        Ok(names)
    }

    /// Every folder's name, as the server writes it.
    pub(crate) async fn folders(&mut self) -> Result<Vec<String>, ImapFailure> {
        let session = &mut self.session;
        let names: Vec<async_imap::types::Name> = timed("LIST", async {
            session.list(Some(""), Some("*")).await?.try_collect().await
        })
        .await?;
        Ok(names.iter().map(|n| n.name().to_string()).collect())
    }

    pub async fn select(&mut self, folder: &str) -> Result<Selected, ImapFailure> {
        let mailbox = timed("SELECT", self.session.select(folder)).await?;
        let uidvalidity = mailbox
            .uid_validity
            .ok_or_else(|| ImapFailure::NoUidValidity(folder.to_string()))?;
        Ok(Selected {
            uidvalidity,
            uidnext: mailbox.uid_next.unwrap_or(1),
            exists: mailbox.exists,
        })
    }

    /// The UIDs above `last`, ascending, with their sizes.
    pub async fn after(&mut self, last: u32) -> Result<Vec<(u32, u32)>, ImapFailure> {
        let query = format!("{}:*", last.saturating_add(1));
        let session = &mut self.session;
        // Each response is let go as it is read: async-imap's response owns a buffer of at
        // least 4 KiB, so 10,000 of them collected held 40 MiB for 80 KB of answer.
        let mut found: Vec<(u32, u32)> = timed("UID FETCH", async {
            session
                .uid_fetch(query, "(UID RFC822.SIZE)")
                .await?
                .try_filter_map(|f| async move { Ok(f.uid.map(|uid| (uid, f.size.unwrap_or(0)))) })
                .try_filter(|(uid, _)| std::future::ready(*uid > last))
                .try_collect()
                .await
        })
        .await?;
        found.sort_unstable();
        found.dedup_by_key(|(uid, _)| *uid);
        Ok(found)
    }

    /// The mails at these UIDs: whole, or only the header where `header_only`. Each as it
    /// arrives goes to `each`, in the server's order.
    pub async fn fetch(
        &mut self,
        uids: &[u32],
        header_only: bool,
        mut each: impl FnMut(u32, Vec<u8>),
    ) -> Result<(), ImapFailure> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        let mut asked = uids.to_vec();
        asked.sort_unstable();
        let query = if header_only {
            "(UID BODY.PEEK[HEADER])"
        } else {
            "(UID BODY.PEEK[])"
        };
        let mut stream = timed("UID FETCH", self.session.uid_fetch(set, query)).await?;
        // Read to the end, each piece within its own time: a large mail may take long in all.
        while let Some(f) = timed("UID FETCH", stream.try_next()).await? {
            let Some(uid) = f.uid.filter(|u| asked.binary_search(u).is_ok()) else {
                continue;
            };
            let bytes = if header_only { f.header() } else { f.body() };
            if let Some(bytes) = bytes {
                each(uid, bytes.to_vec());
            }
        }
        Ok(())
    }

    /// Moves mails to a folder: MOVE where offered, else COPY, \Deleted and UID EXPUNGE (or,
    /// without UIDPLUS, EXPUNGE).
    pub async fn move_to(&mut self, uids: &[u32], folder: &str) -> Result<(), ImapFailure> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        if self.capabilities.moves {
            return timed("UID MOVE", self.session.uid_mv(&set, folder)).await;
        }
        timed("UID COPY", self.session.uid_copy(&set, folder)).await?;
        let session = &mut self.session;
        timed("UID STORE", async {
            session
                .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                .await?
                .try_for_each(|_| std::future::ready(Ok(())))
                .await
        })
        .await?;
        let uidplus = self.capabilities.uidplus;
        let session = &mut self.session;
        let _: Vec<u32> = timed("EXPUNGE", async {
            if uidplus {
                session.uid_expunge(&set).await?.try_collect().await
            } else {
                session.expunge().await?.try_collect().await
            }
        })
        .await?;
        Ok(())
    }

    /// Whether the server told of new mail since it was last asked.
    pub fn news(&mut self) -> bool {
        let mut news = false;
        while let Ok(r) = self.session.unsolicited_responses.try_recv() {
            news |= matches!(
                r,
                UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
            );
        }
        news
    }

    pub async fn noop(&mut self) -> Result<(), ImapFailure> {
        timed("NOOP", self.session.noop()).await
    }

    /// Waits with IDLE until the server says something, `cap` passes, or `stop` resolves;
    /// `tick` is called every 30 seconds meanwhile.
    pub async fn idle(
        self,
        cap: Duration,
        stop: impl Future<Output = ()>,
        mut tick: impl FnMut(),
    ) -> Result<(Connection, Woken), ImapFailure> {
        let Connection {
            session,
            capabilities,
            delimiter,
        } = self;
        let mut handle = session.idle();
        timed("IDLE", handle.init()).await?;
        let woken = {
            // A silence of 5 minutes ends it too (Dovecot says "still here" every 2).
            let (wait, interrupt) = handle.wait_with_timeout(Duration::from_secs(5 * 60));
            let mut interrupt = Some(interrupt);
            let mut woken = None;
            tokio::pin!(wait, stop);
            let capped = tokio::time::sleep(cap);
            tokio::pin!(capped);
            let mut ticks = tokio::time::interval(Duration::from_secs(30));
            loop {
                tokio::select! {
                    r = &mut wait => {
                        let r = r.step("IDLE")?;
                        break woken.unwrap_or(match r {
                            IdleResponse::NewData(_) => Woken::News,
                            IdleResponse::Timeout => Woken::Timeout,
                            // Also what a connection closed by the server looks like: DONE
                            // then fails, and the loop connects again.
                            IdleResponse::ManualInterrupt => Woken::News,
                        });
                    }
                    () = &mut stop, if woken.is_none() => {
                        woken = Some(Woken::Stopping);
                        interrupt.take();
                    }
                    () = &mut capped, if woken.is_none() => {
                        woken = Some(Woken::Timeout);
                        interrupt.take();
                    }
                    _ = ticks.tick() => tick(),
                }
            }
        };
        let session = timed("DONE", handle.done()).await?;
        Ok((
            Connection {
                session,
                capabilities,
                delimiter,
            },
            woken,
        ))
    }

    /// Logs out, briefly: the daemon is stopping or giving up on the connection.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.session.logout()).await;
    }
}

/// A UID set: ranges of consecutive UIDs (`1:5,9,12:13`).
fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::uid_set;

    #[test]
    fn uid_sets_join_consecutive_uids_into_ranges() {
        assert_eq!(uid_set(&[5, 1, 2, 3, 9, 12, 13, 2]), "1:3,5,9,12:13");
        assert_eq!(uid_set(&[7]), "7");
    }

    #[test]
    fn a_refusal_is_shown_in_the_servers_words() {
        assert_eq!(
            super::server_words(
                "code: None, info: Some(\"[AUTHENTICATIONFAILED] Authentication failed.\")"
            ),
            "[AUTHENTICATIONFAILED] Authentication failed."
        );
        assert_eq!(
            super::server_words("code: None, info: Some(\"say \\\"no\\\"\")"),
            "say \"no\""
        );
        assert_eq!(super::server_words("outcome: No"), "outcome: No");
    }
}
