//! A Maildir the MTA delivers into: every mail in `new/` and `cur/` (one a person read in
//! another client is in `cur/`) is taken in, then moved to the Maildir++ folder
//! `.deskmail.processed` (or `.deskmail.failed`, for a mail kept as failed or over the size
//! limit) once its commit is on disk. A mail deferred by a temporary failure stays and is
//! taken again at the next look. The folder is watched with inotify and looked through
//! every 30 seconds besides, so nothing waits on a missed event.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::Shared;
use crate::config::MaildirSettings;
use crate::desk::{IngestError, MailReport, MailStatus};
use crate::errors;
use crate::intake::Arrival;
use crate::store::Fence;

const RESCAN: Duration = Duration::from_secs(30);

/// Where taken mail goes, by how it went.
struct Folders {
    processed: PathBuf,
    failed: PathBuf,
}

pub(super) async fn run(
    mailbox: String,
    settings: MaildirSettings,
    shared: Arc<Shared>,
    arrive: mpsc::Sender<Vec<Arrival>>,
    fence: Fence,
) {
    let root = settings.path;
    let folders = Arc::new(Folders {
        processed: root.join(".deskmail.processed"),
        failed: root.join(".deskmail.failed"),
    });
    let mut stopping = shared.stopping.clone();
    let in_flight: Arc<Mutex<HashSet<PathBuf>>> = Arc::default();
    loop {
        let mut events = match prepare(&root, &folders) {
            Ok(events) => {
                shared.connected(&mailbox);
                events
            }
            Err(e) => {
                let e = format!("{}: {}", root.display(), errors::Chain(&e));
                tracing::error!(mailbox = %mailbox, "cannot watch the Maildir: {e}");
                shared.failed(&mailbox, &e);
                tokio::select! {
                    _ = super::stopped(&mut stopping) => return,
                    _ = tokio::time::sleep(RESCAN) => continue,
                }
            }
        };
        loop {
            shared.health.round(&mailbox);
            let to = Intake {
                arrive: &arrive,
                fence: &fence,
            };
            if let Err(e) = scan(&root, &mailbox, &folders, &shared, &in_flight, &to).await {
                if shared.is_stopping() {
                    return;
                }
                tracing::warn!(mailbox = %mailbox, "cannot read the Maildir: {}", errors::Chain(&e));
                shared.failed(&mailbox, &errors::chain(&e));
                break;
            }
            shared.synced(&mailbox);
            tokio::select! {
                _ = super::stopped(&mut stopping) => return,
                event = events.next() => if event.is_none() { break },
                _ = tokio::time::sleep(RESCAN) => {}
            }
        }
    }
}

type Events = inotify::EventStream<Vec<u8>>;

/// Where mails go, and the lease they are read under.
struct Intake<'a> {
    arrive: &'a mpsc::Sender<Vec<Arrival>>,
    fence: &'a Fence,
}

/// Makes the folders that are missing and starts watching `new/` and `cur/`.
fn prepare(root: &Path, folders: &Folders) -> std::io::Result<Events> {
    for dir in [root, &folders.processed, &folders.failed] {
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
    }
    let inotify = inotify::Inotify::init()?;
    let mask = inotify::WatchMask::MOVED_TO | inotify::WatchMask::CLOSE_WRITE;
    for sub in ["new", "cur"] {
        inotify.watches().add(root.join(sub), mask)?;
    }
    inotify.into_event_stream(vec![0u8; 4096])
}

/// Hands every mail not yet in hand to the intake.
async fn scan(
    root: &Path,
    mailbox: &str,
    folders: &Arc<Folders>,
    shared: &Arc<Shared>,
    in_flight: &Arc<Mutex<HashSet<PathBuf>>>,
    to: &Intake<'_>,
) -> std::io::Result<()> {
    let mut files = Vec::new();
    for sub in ["new", "cur"] {
        for entry in std::fs::read_dir(root.join(sub))? {
            let path = entry?.path();
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| n.starts_with('.'));
            if !hidden && path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    let limit = shared.desk().settings.inbound.max_message_bytes;
    for path in files {
        if !lock(in_flight).insert(path.clone()) {
            continue;
        }
        let arrived = Instant::now();
        let read = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                let file = std::fs::File::open(&path)?;
                let size = file.metadata().map_or(0, |m| m.len());
                crate::intake::read_capped(file, limit, size)
            })
            .await
        };
        let (raw, whole) = match read {
            Ok(Ok(r)) => r,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                // Taken by someone else meanwhile.
                lock(in_flight).remove(&path);
                continue;
            }
            Ok(Err(e)) => {
                lock(in_flight).remove(&path);
                tracing::warn!(mailbox, file = %path.display(), "cannot read it: {}", errors::Chain(&e));
                continue;
            }
            Err(e) => {
                lock(in_flight).remove(&path);
                return Err(std::io::Error::other(errors::TaskFailed::from(e)));
            }
        };
        let done = {
            let (path, folders, in_flight, shared, mailbox) = (
                path.clone(),
                Arc::clone(folders),
                Arc::clone(in_flight),
                Arc::clone(shared),
                mailbox.to_string(),
            );
            move |result: &Result<MailReport, IngestError>| {
                if settle(&path, &folders, result) {
                    shared.moved(&mailbox, 1);
                }
                lock(&in_flight).remove(&path);
            }
        };
        let arrival = Arrival {
            raw,
            whole,
            mailbox: Some(mailbox.to_string()),
            origin: None,
            fence: Some(to.fence.clone()),
            ack: shared.ack(mailbox, arrived, done),
        };
        let mut stopping = shared.stopping.clone();
        tokio::select! {
            _ = super::stopped(&mut stopping) => return Err(std::io::Error::other("stopping")),
            sent = to.arrive.send(vec![arrival]) => if sent.is_err() {
                return Err(std::io::Error::other("the intake has stopped"));
            },
        }
    }
    Ok(())
}

/// Moves a mail whose outcome is on disk out of the way (true once moved); a temporary
/// failure leaves it.
fn settle(path: &Path, folders: &Folders, result: &Result<MailReport, IngestError>) -> bool {
    let to = match result {
        Ok(r) if r.status == MailStatus::TooLarge => &folders.failed,
        Ok(_) => &folders.processed,
        Err(IngestError::Failed { .. }) => &folders.failed,
        Err(IngestError::Temporary(_)) => return false,
    };
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    // In cur/, a Maildir file's name carries its flags after ":2,".
    let name = if name.contains(":2,") {
        name.to_string()
    } else {
        format!("{name}:2,")
    };
    match std::fs::rename(path, to.join("cur").join(name)) {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(file = %path.display(), "taken in, but cannot be moved: {}", errors::Chain(&e));
            false
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
