//! The file a refresh token is kept in (`token_file`): JSON, mode 0600, replaced as a whole (a
//! new file synced and renamed over the old one) every time the provider issues a new token, so
//! that a crash never leaves half a token and a rotated token is never lost. Reading, refreshing
//! and writing happen under a lock on `token_file.lock`, so that two processes (the service and
//! `deskmail auth status`) never both spend the same refresh token.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::OAuth2Error;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    pub refresh_token: String,
    /// When the provider issued it.
    pub issued_at: jiff::Timestamp,
    /// When it stops working, where the provider said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<jiff::Timestamp>,
}

/// `path` with `suffix` appended: `support.token.lock`.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// An exclusive lock on a token file, held until dropped.
pub struct Locked {
    path: PathBuf,
    _lock: File,
}

fn file_error(path: &Path, source: std::io::Error) -> OAuth2Error {
    OAuth2Error::TokenFile {
        path: path.to_path_buf(),
        source,
    }
}

impl Locked {
    /// Waits for the lock (blocking).
    pub fn lock(path: &Path) -> Result<Locked, OAuth2Error> {
        let lock_path = beside(path, ".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| file_error(&lock_path, e))?;
        // SAFETY: flock on a descriptor this function owns; it only takes a lock.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(file_error(&lock_path, std::io::Error::last_os_error()));
        }
        Ok(Locked {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The stored token; `None` when nobody has logged in yet.
    pub fn read(&self) -> Result<Option<Stored>, OAuth2Error> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                file_error(
                    &self.path,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(file_error(&self.path, e)),
        }
    }

    /// Replaces the file with `stored`: written to a new file, synced, renamed, the directory
    /// synced.
    pub fn write(&self, stored: &Stored) -> Result<(), OAuth2Error> {
        let fail = |e| file_error(&self.path, e);
        let partial = beside(&self.path, ".partial");
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&partial)
            .map_err(fail)?;
        let json = serde_json::to_vec_pretty(stored).expect("a token serialises");
        f.write_all(&json).map_err(fail)?;
        f.sync_all().map_err(fail)?;
        std::fs::rename(&partial, &self.path).map_err(fail)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all()).map_err(fail)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_token_is_written_whole_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("support.token");
        let locked = Locked::lock(&path).unwrap();
        assert!(locked.read().unwrap().is_none());
        let stored = Stored {
            refresh_token: "r1".into(),
            issued_at: jiff::Timestamp::UNIX_EPOCH,
            expires_at: None,
        };
        locked.write(&stored).unwrap();
        let again = locked.read().unwrap().unwrap();
        assert_eq!(again.refresh_token, "r1");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!beside(&path, ".partial").exists());
    }
}
