//! Signed reply addresses: `support+r-<ref>-<mac>@helpdesk.example`.
//!
//! The plus-part carries the ticket and an HMAC-SHA256 over ticket and recipient, so a reply can
//! be checked without a database lookup: recompute the MAC for the sender (or the group the token
//! was issued to) and compare. Everything is lower-case (some systems lower-case local parts) and
//! the `r-` prefix keeps tokens apart from plus-parts that pick a request type.

use std::io::Write;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The plus-part prefix reserved for reply tokens.
pub const PREFIX: &str = "r-";
/// Characters of the MAC kept: 16 base32 characters, 80 bits.
const MAC_CHARS: usize = 16;

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
    #[error("cannot read the reply-token secret {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot create the reply-token secret {path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("the reply-token secret {path} is too short (at least 16 bytes)")]
    TooShort { path: String },
}

impl TokenKey {
    pub fn new(secret: impl Into<Vec<u8>>) -> TokenKey {
        TokenKey(secret.into())
    }

    /// Reads the secret from a file; when the file does not exist, creates it (mode 0600) with
    /// 32 random bytes (hex) and returns `created = true` so the caller can say so.
    pub fn load_or_create(path: &Path) -> Result<(TokenKey, bool), KeyError> {
        let shown = path.display().to_string();
        match std::fs::read(path) {
            Ok(bytes) => {
                let trimmed = String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec();
                if trimmed.len() < 16 {
                    return Err(KeyError::TooShort { path: shown });
                }
                Ok((TokenKey(trimmed), false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = random_hex(32).map_err(|source| KeyError::Create {
                    path: shown.clone(),
                    source,
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
        let (local, domain) = helpdesk.split_once('@').unwrap_or((helpdesk, ""));
        let local = local.split('+').next().unwrap_or(local);
        format!("{local}+{}@{domain}", self.issue(reference, recipient))
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

/// `n` random bytes from the operating system, as hex.
pub fn random_hex(n: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
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
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (k2, created) = TokenKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(
            k1.issue("SUP-1", "a@b.example"),
            k2.issue("SUP-1", "a@b.example")
        );
    }
}
