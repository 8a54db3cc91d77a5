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

/// A kept refresh token. Its `Debug` shows no token.
#[derive(Clone, Serialize, Deserialize)]
pub struct Stored {
    pub refresh_token: String,
    /// When the provider issued it.
    pub issued_at: jiff::Timestamp,
    /// When it stops working, where the provider said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<jiff::Timestamp>,
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stored")
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
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
        give_to_directory_owner(&lock, path).map_err(|e| file_error(&lock_path, e))?;
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
        // A file left there (or put there) is not written through: a new one is made, 0600.
        match std::fs::remove_file(&partial) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
            _ => {}
        }
        let mut f = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&partial)
            .map_err(fail)?;
        give_to_directory_owner(&f, &self.path).map_err(fail)?;
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

/// Run as root (`deskmail auth login` without `runuser`), a new file is given to the owner of
/// its directory (the service's user, in `/var/lib/deskmail`), so that the service can still
/// read and replace it.
fn give_to_directory_owner(file: &File, path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let owner = std::fs::metadata(dir)?;
    if owner.uid() == 0 {
        return Ok(());
    }
    // SAFETY: fchown on a descriptor the caller owns.
    if unsafe { libc::fchown(file.as_raw_fd(), owner.uid(), owner.gid()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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

    #[test]
    fn written_as_root_a_token_belongs_to_its_directorys_owner() {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("not root: skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(dir.path(), Some(8), Some(8)).unwrap();
        let path = dir.path().join("support.token");
        let locked = Locked::lock(&path).unwrap();
        let stored = Stored {
            refresh_token: "r1".into(),
            issued_at: jiff::Timestamp::UNIX_EPOCH,
            expires_at: None,
        };
        locked.write(&stored).unwrap();
        for file in [path.clone(), beside(&path, ".lock")] {
            let meta = std::fs::metadata(&file).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (8, 8), "{}", file.display());
        }
    }
}
