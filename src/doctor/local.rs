//! What lives on this host or behind the store's URL: a Maildir mailbox, the spool, the store
//! (reachable, its migrations, the free space of an SQLite file's file system).

use std::path::Path;

use crate::config::{Settings, redact_url};
use crate::errors;
use crate::reply_token::{may_create_in, nearest_existing};
use crate::store::{Dialect, Store, sqlite_path};

use super::{Check, Status, TIMEOUT, timed, too_slow};

/// Under this much free space the store's file system is a warning...
pub const WARN_FREE: u64 = 1 << 30;
/// ...and under this a failure.
pub const FAIL_FREE: u64 = 100 << 20;

/// "run doctor as the user deskmail runs as".
const AS_USER: &str = "run doctor as the user deskmail runs as (`runuser -u deskmail -- deskmail doctor`): it must be able to write there";

/// A Maildir: there, with new/, cur/ and tmp/, writable (blocking file work: run it off the
/// async threads).
pub fn maildir(subject: &str, root: &Path) -> Vec<Check> {
    let shown = root.display();
    if !root.is_dir() {
        return vec![Check::fail(
            subject,
            "Maildir",
            format!("{shown} is not a directory"),
            "set path in [mailboxes.maildir] to the Maildir the MTA delivers the mailbox's mail to",
        )];
    }
    let mut missing = Vec::new();
    for sub in ["new", "cur", "tmp"] {
        let dir = root.join(sub);
        if !dir.is_dir() {
            missing.push(sub);
            continue;
        }
        if let Err(e) = may_create_in(&dir) {
            return vec![Check::fail(
                subject,
                "Maildir",
                format!("{} is not writable: {e}", dir.display()),
                AS_USER,
            )];
        }
    }
    if let Err(e) = may_create_in(root) {
        return vec![Check::fail(
            subject,
            "Maildir",
            format!("{shown} is not writable: {e}"),
            AS_USER,
        )];
    }
    let count = |sub: &str| std::fs::read_dir(root.join(sub)).map_or(0, |d| d.count());
    let detail = format!(
        "{shown}: {} mail(s) in new/, {} in cur/",
        count("new"),
        count("cur")
    );
    if missing.is_empty() {
        vec![Check::ok(subject, "Maildir", detail)]
    } else {
        vec![Check::warn(
            subject,
            "Maildir",
            format!("{detail}; {} missing", missing.join("/, ") + "/"),
            "the daemon creates them when it starts; if the MTA delivers elsewhere, set path to its Maildir",
        )]
    }
}

/// The spool directory, where notifications go without SMTP.
pub fn spool(dir: &Path) -> Check {
    let subject = "outbound spool";
    let shown = dir.display();
    if dir.is_dir() {
        return match may_create_in(dir) {
            Ok(()) => Check::ok(
                subject,
                "directory",
                format!(
                    "{shown} is writable (no [outbound.smtp]: notifications are written here as .eml files)"
                ),
            ),
            Err(e) => Check::fail(
                subject,
                "directory",
                format!("{shown} is not writable: {e}"),
                AS_USER,
            ),
        };
    }
    let parent = nearest_existing(dir);
    match may_create_in(&parent) {
        Ok(()) => Check::ok(
            subject,
            "directory",
            format!("{shown} is not there yet: created with the first notification"),
        ),
        Err(e) => Check::fail(
            subject,
            "directory",
            format!(
                "{shown} is missing and cannot be created in {}: {e}",
                parent.display()
            ),
            AS_USER,
        ),
    }
}

/// The store: reachable, its migrations, and for SQLite its file system's free space.
pub async fn store(settings: &Settings) -> Vec<Check> {
    let url = settings.store_url.expose();
    let file = sqlite_path(url);
    let mut out = match &file {
        Some(path) if !path.exists() => vec![not_created(path)],
        _ => reach(url, file.is_some()).await,
    };
    if let Some(path) = &file {
        out.extend(free_space(STORE, path));
    }
    out
}

const STORE: &str = "store";

/// An SQLite file that is not there yet: deskmail may create it, or not.
fn not_created(path: &Path) -> Check {
    let dir = nearest_existing(path);
    match may_create_in(&dir) {
        Ok(()) => Check::ok(
            STORE,
            "reachable",
            format!(
                "{} is not created yet: deskmail creates it with its schema on its first run",
                path.display()
            ),
        ),
        Err(e) => Check::fail(
            STORE,
            "reachable",
            format!(
                "{} does not exist and cannot be created in {}: {e}",
                path.display(),
                dir.display()
            ),
            AS_USER,
        ),
    }
}

/// Connects, and compares the migrations.
async fn reach(url: &str, sqlite: bool) -> Vec<Check> {
    let hint = if sqlite {
        AS_USER
    } else {
        "check store.url (host, port, database, user, password) and that PostgreSQL runs and lets this host in (pg_hba.conf)"
    };
    let unreachable = |detail: String| vec![Check::fail(STORE, "reachable", detail, hint)];
    let store = match timed(Store::connect_within(url, TIMEOUT)).await {
        None => return unreachable(too_slow()),
        Some(Err(e)) => return unreachable(errors::chain(&e)),
        Some(Ok(s)) => s,
    };
    let kind = match store.dialect() {
        Dialect::Sqlite => "SQLite",
        Dialect::Postgres => "PostgreSQL",
    };
    let state = timed(store.migration_state()).await;
    store.close().await;
    match state {
        None => unreachable(too_slow()),
        Some(Err(e)) => unreachable(errors::chain(&e)),
        Some(Ok(m)) => vec![
            Check::ok(STORE, "reachable", format!("{} ({kind})", redact_url(url))),
            migration_check(STORE, &m),
        ],
    }
}

fn migration_check(subject: &str, m: &crate::store::MigrationState) -> Check {
    let list = |v: &[i64]| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !m.unknown.is_empty() {
        Check::fail(
            subject,
            "migrations",
            format!(
                "the schema has migrations this deskmail does not know ({}): a newer deskmail wrote it",
                list(&m.unknown)
            ),
            "run the deskmail version that migrated the store (upgrade this one), or restore a backup made for this version",
        )
    } else if !m.pending.is_empty() {
        Check::warn(
            subject,
            "migrations",
            format!(
                "{} applied, {} pending ({})",
                m.applied,
                m.pending.len(),
                list(&m.pending)
            ),
            "`deskmail migrate` applies them (any deskmail command does so on its own); take a backup first",
        )
    } else {
        Check::ok(
            subject,
            "migrations",
            format!("{} applied, none pending", m.applied),
        )
    }
}

/// The free space of the file system an SQLite file is (or will be) on.
fn free_space(subject: &str, file: &Path) -> Option<Check> {
    let dir = nearest_existing(file);
    let free = match available_bytes(&dir) {
        Ok(b) => b,
        Err(e) => {
            return Some(Check::warn(
                subject,
                "disk space",
                format!("cannot tell the free space of {}: {e}", dir.display()),
                "check it with `df -h`",
            ));
        }
    };
    let detail = format!(
        "{} free on the file system of {}",
        crate::outbound::compose::size_text(free),
        dir.display()
    );
    Some(match space_status(free) {
        Status::Ok => Check::ok(subject, "disk space", detail),
        Status::Warn => Check::warn(
            subject,
            "disk space",
            detail,
            "under 1 GiB free: make room or move the store (a full disk stops deskmail taking mail in)",
        ),
        Status::Fail => Check::fail(
            subject,
            "disk space",
            detail,
            "under 100 MiB free: make room now; SQLite cannot write once the disk is full",
        ),
    })
}

/// The verdict on this many free bytes.
pub fn space_status(free: u64) -> Status {
    if free < FAIL_FREE {
        Status::Fail
    } else if free < WARN_FREE {
        Status::Warn
    } else {
        Status::Ok
    }
}

/// statvfs(3): the bytes an unprivileged user may still write.
fn available_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a NUL-terminated path, `st` a buffer of the right type that statvfs fills.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)]
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_warns_under_a_gibibyte_and_fails_under_100_mebibytes() {
        assert_eq!(space_status(5 << 30), Status::Ok);
        assert_eq!(space_status(1 << 30), Status::Ok);
        assert_eq!(space_status((1 << 30) - 1), Status::Warn);
        assert_eq!(space_status(100 << 20), Status::Warn);
        assert_eq!(space_status((100 << 20) - 1), Status::Fail);
        assert!(available_bytes(Path::new("/")).unwrap() > 0);
    }
}
