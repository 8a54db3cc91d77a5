//! Reply tokens: signed reply addresses, `support+r-<ref>-<mac>@helpdesk.example`. Outbound
//! mail issues them ([`TokenKey::reply_address`]); inbound mail verifies them
//! (`inbound::identify`), so they live apart from both.
//!
//! The plus-part carries the ticket and an HMAC-SHA256 over ticket and recipient, so a reply can
//! be checked without a database lookup: recompute the MAC for the sender (or the group the token
//! was issued to) and compare. Everything is lower-case (some systems lower-case local parts) and
//! the `r-` prefix keeps tokens apart from plus-parts that pick a request type.
//!
//! The secret is a file (`outbound.secret_file`), created when missing with 32 random bytes
//! written as 64 hex characters, mode 0600. `check-config` wants at least [`MIN_KEY_BYTES`];
//! a shorter key an admin wrote still signs (from [`MIN_USABLE_KEY_BYTES`] on, with a warning),
//! because replacing it would break every reply address already sent.

use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::inbound::address::base_local_part;

/// The plus-part prefix reserved for reply tokens.
pub const PREFIX: &str = "r-";
/// Characters of the MAC kept: 16 base32 characters, 80 bits.
const MAC_CHARS: usize = 16;
/// The length `check-config` requires of a key (what deskmail creates is 64 bytes).
pub const MIN_KEY_BYTES: usize = 32;
/// Shorter keys (an empty file included) are refused.
pub const MIN_USABLE_KEY_BYTES: usize = 16;
/// Random bytes in a key deskmail creates (written as twice as many hex characters).
const NEW_KEY_RANDOM_BYTES: usize = 32;

/// The secret that signs reply tokens.
#[derive(Clone)]
pub struct TokenKey(Vec<u8>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey([redacted])")
    }
}

/// Why the key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the reply-token secret {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot create the reply-token secret {path}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("the reply-token secret {path} is empty")]
    Empty { path: String },
    #[error(
        "the reply-token secret {path} is {len} bytes, too short to sign with (at least {MIN_USABLE_KEY_BYTES}, better {MIN_KEY_BYTES})"
    )]
    TooShort { path: String, len: usize },
}

/// The key file as `check-config` finds it.
#[derive(Debug)]
pub enum KeyFile {
    /// There and readable: the length deskmail uses (surrounding white space left out) and
    /// the file's permission bits.
    Present { len: usize, mode: u32 },
    /// Not there yet: deskmail creates it (and its missing directories) on its first run, if
    /// `dir`, the nearest directory that exists, lets it.
    Missing {
        dir: PathBuf,
        creatable: std::io::Result<()>,
    },
}

/// Looks at the key file without creating or changing anything.
pub fn inspect(path: &Path) -> Result<KeyFile, KeyError> {
    use std::os::unix::fs::PermissionsExt;
    match read_secret(path) {
        Ok(secret) => {
            let mode = std::fs::metadata(path)
                .map_err(|source| KeyError::Read {
                    path: path.display().to_string(),
                    source,
                })?
                .permissions()
                .mode()
                & 0o7777;
            Ok(KeyFile::Present {
                len: secret.len(),
                mode,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = nearest_existing(path);
            let creatable = may_create_in(&dir);
            Ok(KeyFile::Missing { dir, creatable })
        }
        Err(source) => Err(KeyError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// The key as deskmail uses it: the file's bytes without surrounding white space (an editor's
/// final newline is no part of the key).
fn read_secret(path: &Path) -> std::io::Result<Vec<u8>> {
    let bytes = std::fs::read(path)?;
    Ok(String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec())
}

/// The nearest of `path`'s ancestors that exists (`.` for a bare relative name).
pub(crate) fn nearest_existing(path: &Path) -> PathBuf {
    path.ancestors()
        .skip(1)
        .find(|a| !a.as_os_str().is_empty() && a.exists())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Whether this process may create entries in `dir` (access(2): the effective permissions,
/// a read-only file system included).
pub(crate) fn may_create_in(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    if !dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is not a directory", dir.display()),
        ));
    }
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: `c` is a NUL-terminated path that lives across the call.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl TokenKey {
    pub fn new(secret: impl Into<Vec<u8>>) -> TokenKey {
        TokenKey(secret.into())
    }

    /// The key's length in bytes.
    pub fn key_bytes(&self) -> usize {
        self.0.len()
    }

    /// Reads the secret from a file; when the file does not exist, creates it (mode 0600) with
    /// 32 random bytes (64 hex characters) and returns `created = true` so the caller can say so.
    pub fn load_or_create(path: &Path) -> Result<(TokenKey, bool), KeyError> {
        let shown = path.display().to_string();
        match read_secret(path) {
            Ok(secret) if secret.is_empty() => Err(KeyError::Empty { path: shown }),
            Ok(secret) if secret.len() < MIN_USABLE_KEY_BYTES => Err(KeyError::TooShort {
                path: shown,
                len: secret.len(),
            }),
            Ok(secret) => Ok((TokenKey(secret), false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = crate::hex::random_hex(NEW_KEY_RANDOM_BYTES).map_err(|source| {
                    KeyError::Create {
                        path: shown.clone(),
                        source,
                    }
                })?;
                match write_private(path, secret.as_bytes()) {
                    Ok(()) => Ok((TokenKey(secret.into_bytes()), true)),
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(path)
                    }
                    Err(source) => Err(KeyError::Create {
                        path: shown,
                        source,
                    }),
                }
            }
            Err(source) => Err(KeyError::Read {
                path: shown,
                source,
            }),
        }
    }

    fn mac(&self, reference: &str, recipient: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(reference.to_lowercase().as_bytes());
        mac.update(b"\n");
        mac.update(recipient.trim().to_lowercase().as_bytes());
        let bytes = mac.finalize().into_bytes();
        let mut out = base32(&bytes);
        out.truncate(MAC_CHARS);
        out
    }

    /// The token for a ticket and the address it is issued to: `r-sup-20261122-0042-<mac>`.
    pub fn issue(&self, reference: &str, recipient: &str) -> String {
        format!(
            "{PREFIX}{}-{}",
            reference.to_lowercase(),
            self.mac(reference, recipient)
        )
    }

    /// The reply address carrying the token: the help desk's address with it as plus-part.
    pub fn reply_address(&self, helpdesk: &str, reference: &str, recipient: &str) -> String {
        let domain = helpdesk.rsplit_once('@').map_or("", |(_, domain)| domain);
        format!(
            "{}+{}@{domain}",
            base_local_part(helpdesk),
            self.issue(reference, recipient)
        )
    }

    /// Checks a token (or a whole reply address) against the addresses it may have been issued
    /// to; returns the ticket ref (lower-case) and the address that matched.
    pub fn verify<'a>(&self, token: &str, candidates: &[&'a str]) -> Option<(String, &'a str)> {
        let (reference, mac) = parse(token)?;
        candidates
            .iter()
            .find(|c| constant_time_eq(self.mac(&reference, c).as_bytes(), mac.as_bytes()))
            .map(|c| (reference.clone(), *c))
    }
}

/// Splits a token or reply address into (ticket ref, mac), lower-case.
pub fn parse(token: &str) -> Option<(String, String)> {
    let token = token.trim().to_lowercase();
    let local = token.split('@').next()?;
    let plus = match local.split_once('+') {
        Some((_, p)) => p,
        None => local,
    };
    let rest = plus.strip_prefix(PREFIX)?;
    let (reference, mac) = rest.rsplit_once('-')?;
    if reference.is_empty() || mac.len() != MAC_CHARS {
        return None;
    }
    Some((reference.to_string(), mac.to_string()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// RFC 4648 base32, lower-case, no padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Writes a new file with mode 0600, complete or not at all: a temporary file is written and
/// synced, then linked to `path` (which fails if `path` exists, so a concurrent creator wins
/// cleanly).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_for_their_recipient_only_and_ignore_case() {
        let k = TokenKey::new("0123456789abcdef0123456789abcdef");
        let addr = k.reply_address(
            "support@helpdesk.example",
            "SUP-20261122-0042",
            "Ops@ITProv.example",
        );
        assert!(addr.starts_with("support+r-sup-20261122-0042-"), "{addr}");
        assert!(addr.len() <= 64 + "@helpdesk.example".len(), "{addr}");
        let upper = addr.to_uppercase();
        let (r, who) = k.verify(&upper, &["ops@itprov.example"]).unwrap();
        assert_eq!(
            (r.as_str(), who),
            ("sup-20261122-0042", "ops@itprov.example")
        );
        assert!(k.verify(&addr, &["anna@acme.example"]).is_none());
        // Another ticket's ref with the same MAC fails.
        let forged = addr.replace("0042", "0043");
        assert!(k.verify(&forged, &["ops@itprov.example"]).is_none());
        // Another key fails.
        let other = TokenKey::new("another secret, at least 16 bytes");
        assert!(other.verify(&addr, &["ops@itprov.example"]).is_none());
        assert!(parse("support+gdpr-delete@helpdesk.example").is_none());
    }

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32(b"foobar"), "mzxw6ytboi");
        assert_eq!(base32(b"f"), "my");
    }

    #[test]
    fn the_secret_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/reply.key");
        let (k1, created) = TokenKey::load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(k1.key_bytes(), 2 * NEW_KEY_RANDOM_BYTES);
        assert!(k1.key_bytes() >= MIN_KEY_BYTES);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (k2, created) = TokenKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(
            k1.issue("SUP-1", "a@b.example"),
            k2.issue("SUP-1", "a@b.example")
        );
    }

    #[test]
    fn an_empty_or_short_key_is_refused_and_inspected_without_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reply.key");
        std::fs::write(&path, "\n").unwrap();
        let err = TokenKey::load_or_create(&path).unwrap_err();
        assert!(matches!(err, KeyError::Empty { .. }), "{err}");
        std::fs::write(&path, "0123456789\n").unwrap();
        let err = TokenKey::load_or_create(&path).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("is 10 bytes, too short to sign with (at least 16, better 32)"),
            "{err}"
        );
        match inspect(&path).unwrap() {
            KeyFile::Present { len, .. } => assert_eq!(len, 10),
            other => panic!("{other:?}"),
        }
        let missing = dir.path().join("new/sub/reply.key");
        match inspect(&missing).unwrap() {
            KeyFile::Missing { dir: d, creatable } => {
                assert_eq!(d, dir.path());
                assert!(creatable.is_ok(), "{creatable:?}");
            }
            other => panic!("{other:?}"),
        }
        assert!(!missing.exists() && !dir.path().join("new").exists());
        // A directory where the file should be cannot be read.
        let err = inspect(dir.path()).unwrap_err();
        assert!(matches!(err, KeyError::Read { .. }), "{err}");
        assert_eq!(
            crate::errors::causes(&err),
            [
                format!(
                    "cannot read the reply-token secret {}",
                    dir.path().display()
                ),
                "Is a directory (os error 21)".to_string()
            ]
        );
        assert!(may_create_in(&path).is_err());
    }
}
