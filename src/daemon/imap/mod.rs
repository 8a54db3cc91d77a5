//! An IMAP mailbox: connect, read every mail above the mailbox's cursor (never by \Seen:
//! a mail a person read elsewhere is still taken), hand each to the intake, and once its
//! outcome is on disk move it out of the folder and advance the cursor; then wait with IDLE
//! (or poll every 30 seconds where the server has none) and read again. Any failure drops the
//! connection and connects again after a capped, jittered wait; one mailbox's trouble never
//! holds up another.

pub(crate) mod session;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::Shared;
use crate::config::{ImapSettings, Start};
use crate::desk::{IngestError, Origin, Whole};
use crate::errors::{self, TaskFailed};
use crate::intake::Arrival;
use crate::store::{Cursor, Fence, Move, StoreError};
pub use session::ImapFailure;
use session::{Connection, Woken};

/// IDLE is issued again after this long (RFC 2177: servers may log a client out after 30).
const IDLE_CAP: Duration = Duration::from_secs(25 * 60);
/// Without IDLE, how often the folder is looked at.
const POLL: Duration = Duration::from_secs(30);
/// Mails fetched and handed over together, at most, and their bytes.
const CHUNK_MAILS: usize = 500;
const CHUNK_BYTES: u64 = 4 << 20;
/// Chunks with the intake while the one before them is settled: the intake has work while
/// that chunk's mails are moved.
const AHEAD: usize = 2;
/// A mail the server lists but does not hand over is asked for this many times, then passed
/// over (and said so in the log).
const MISSES: u32 = 3;

/// Why the mailbox's connection was given up.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Imap(#[from] ImapFailure),
    #[error("the store")]
    Store(#[from] StoreError),
    #[error("the intake has stopped")]
    IntakeGone,
    #[error("handing the mails to the intake failed")]
    HandOver(#[source] TaskFailed),
    #[error("noting the settled mails failed")]
    Noting(#[source] TaskFailed),
}

/// Where the mailbox is, kept across connections.
struct State {
    name: String,
    settings: ImapSettings,
    shared: Arc<Shared>,
    arrive: mpsc::Sender<Vec<Arrival>>,
    /// The lease the mailbox is read under.
    fence: Fence,
    /// UIDs the server listed but did not hand over, and how often.
    misses: HashMap<u32, u32>,
}

pub(super) async fn run(
    name: String,
    settings: ImapSettings,
    shared: Arc<Shared>,
    arrive: mpsc::Sender<Vec<Arrival>>,
    fence: Fence,
) {
    let mut state = State {
        name,
        settings,
        shared,
        arrive,
        fence,
        misses: HashMap::new(),
    };
    let mut stopping = state.shared.stopping.clone();
    let mut failures = 0u32;
    while !state.shared.is_stopping() {
        match connected(&mut state, &mut failures).await {
            Ok(()) => return,
            Err(e) => {
                failures += 1;
                let e = errors::chain(&e);
                state.shared.failed(&state.name, &e);
                let wait = backoff(failures);
                tracing::warn!(mailbox = %state.name, "{e}; connecting again in {} s", wait.as_secs());
                tokio::select! {
                    _ = super::stopped(&mut stopping) => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// 1 s doubling up to 2 minutes, give or take a quarter: mailboxes that failed together do
/// not all come back at the same moment.
fn backoff(failures: u32) -> Duration {
    let secs = (1u64 << failures.saturating_sub(1).min(7)).min(120) as f64;
    Duration::from_secs_f64(secs * (0.75 + fastrand::f64() * 0.5))
}

/// One connection, from login until the daemon stops (`Ok`) or something fails.
async fn connected(state: &mut State, failures: &mut u32) -> Result<(), SourceError> {
    let mut conn = Connection::open(&state.settings).await?;
    let processed = state
        .settings
        .processed_folder
        .as_deref()
        .map(|f| conn.folder_name(f));
    let failed = state
        .settings
        .failed_folder
        .as_deref()
        .map(|f| conn.folder_name(f));
    for folder in processed.iter().chain(&failed) {
        conn.ensure_folder(folder).await?;
    }
    let folder = conn.folder_name(&state.settings.folder);
    let selected = conn.select(&folder).await?;
    let store = state.shared.desk().store.clone();
    let mut cursor = match store.cursor(&state.name).await? {
        Some(c) if c.uidvalidity == selected.uidvalidity => c,
        Some(c) => {
            tracing::warn!(
                mailbox = %state.name,
                "the folder's UIDVALIDITY changed ({} to {}): reading it again from the start; \
                 mails taken in before are recognised and not applied twice",
                c.uidvalidity,
                selected.uidvalidity
            );
            Cursor {
                uidvalidity: selected.uidvalidity,
                last_uid: 0,
            }
        }
        None => Cursor {
            uidvalidity: selected.uidvalidity,
            last_uid: match state.settings.start {
                Start::New => selected.uidnext.saturating_sub(1),
                Start::All => 0,
            },
        },
    };
    store
        .set_cursor(&state.name, cursor, jiff::Timestamp::now())
        .await?;
    state.misses.clear();
    store
        .drop_stale_moves(&state.name, cursor.uidvalidity)
        .await?;
    // Moves a crash left undone.
    carry_out_moves(&mut conn, state, cursor.uidvalidity).await?;
    state.shared.connected(&state.name);
    *failures = 0;
    let labels = super::Metrics::mailbox(&state.name);
    state
        .shared
        .metrics
        .idle
        .get_or_create(&labels)
        .set(i64::from(conn.capabilities.idle));
    tracing::info!(
        mailbox = %state.name,
        folder = %folder,
        idle = conn.capabilities.idle,
        last_uid = cursor.last_uid,
        "connected"
    );
    let mut stopping = state.shared.stopping.clone();
    loop {
        let read = read_new(&mut conn, state, &mut cursor, &processed, &failed).await?;
        state.shared.synced(&state.name);
        if state.shared.is_stopping() {
            conn.close().await;
            return Ok(());
        }
        let news = conn.news();
        if !read.settled {
            // A mail was deferred (the database busy): read again shortly.
            tokio::select! {
                _ = super::stopped(&mut stopping) => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            continue;
        }
        // Read again until nothing is new: the server's word of a mail that came meanwhile
        // may be lost among a move's many EXPUNGE lines (async-imap keeps 100 of them).
        if news || read.found {
            continue;
        }
        if conn.capabilities.idle {
            let shared = Arc::clone(&state.shared);
            let name = state.name.clone();
            let mut stop = state.shared.stopping.clone();
            let (c, woken) = conn
                .idle(
                    IDLE_CAP,
                    async move { super::stopped(&mut stop).await },
                    || shared.health.round(&name),
                )
                .await?;
            conn = c;
            if woken == Woken::Stopping {
                conn.close().await;
                return Ok(());
            }
        } else {
            tokio::select! {
                _ = super::stopped(&mut stopping) => {
                    conn.close().await;
                    return Ok(());
                }
                _ = tokio::time::sleep(POLL) => {}
            }
            conn.noop().await?;
        }
    }
}

/// Reads every mail above the cursor, a chunk at a time: hands chunks over, and while the
/// intake works on the [`AHEAD`] latest, settles the oldest (waits until each of its mails'
/// outcome is on disk, moves them out, and has the store note the new cursor meanwhile).
async fn read_new(
    conn: &mut Connection,
    state: &mut State,
    cursor: &mut Cursor,
    processed: &Option<String>,
    failed: &Option<String>,
) -> Result<Read, SourceError> {
    let found = conn.after(cursor.last_uid).await?;
    let mut read = Read {
        found: !found.is_empty(),
        settled: true,
    };
    let folders = (processed, failed);
    let mut flights: VecDeque<InFlight> = VecDeque::new();
    let mut noting = Noting(None);
    for chunk in chunks(&found) {
        // Stopping: no more is fetched; what is in hand is finished.
        if state.shared.is_stopping() {
            break;
        }
        flights.push_back(hand_over(conn, state, cursor.uidvalidity, chunk, folders).await?);
        if flights.len() > AHEAD {
            let oldest = flights.pop_front().expect("more than AHEAD in flight");
            if !settle(conn, state, cursor, oldest, &mut noting, true).await? {
                read.settled = false;
                break;
            }
        }
    }
    // Mails handed over are settled before reading again; after a deferred one, the cursor
    // stays before it.
    for flight in flights {
        let advance = read.settled;
        read.settled &= settle(conn, state, cursor, flight, &mut noting, advance).await?;
    }
    noting.done().await?;
    Ok(read)
}

/// What a read found.
struct Read {
    /// Mails were listed above the cursor.
    found: bool,
    /// Every mail's outcome is on disk (false: one was deferred; it is read again later).
    settled: bool,
}

/// The store's notes of the chunks settled (their cursor, the moves made), written in order
/// while the next chunks are read: on SQLite they wait their turn behind the intake's commits.
struct Noting(Option<tokio::task::JoinHandle<Result<(), SourceError>>>);

impl Noting {
    async fn done(&mut self) -> Result<(), SourceError> {
        if let Some(task) = self.0.take() {
            task.await.map_err(|e| SourceError::Noting(e.into()))??;
        }
        Ok(())
    }
}

/// A chunk handed over to the intake.
struct InFlight {
    chunk: Vec<(u32, u32)>,
    /// Each mail's UID once its outcome is settled, and whether it is on disk (false: deferred).
    settled: mpsc::UnboundedReceiver<(u32, bool)>,
    /// The task handing the mails over.
    sending: tokio::task::JoinHandle<Result<(), SourceError>>,
}

/// Fetches a chunk and hands its mails to the intake, in UID order, from a task of its own.
async fn hand_over(
    conn: &mut Connection,
    state: &State,
    uidvalidity: u32,
    chunk: &[(u32, u32)],
    (processed, failed): (&Option<String>, &Option<String>),
) -> Result<InFlight, SourceError> {
    let limit = state.shared.desk().settings.inbound.max_message_bytes;
    let (acks, settled) = mpsc::unbounded_channel::<(u32, bool)>();
    let mut arrivals: Vec<(u32, Arrival)> = Vec::with_capacity(chunk.len());
    let arrived = Instant::now();
    let make = |uid: u32, raw: Vec<u8>, whole: Option<Whole>| {
        let acks = acks.clone();
        let ack = state.shared.ack(&state.name, arrived, move |result| {
            let _ = acks.send((uid, !matches!(result, Err(IngestError::Temporary(_)))));
        });
        Arrival {
            raw,
            whole,
            mailbox: Some(state.name.clone()),
            origin: Some(Origin {
                mailbox: state.name.clone(),
                uidvalidity,
                uid,
                processed: processed.clone(),
                failed: failed.clone(),
            }),
            fence: Some(state.fence.clone()),
            ack,
        }
    };
    let whole: Vec<u32> = chunk
        .iter()
        .filter(|(_, s)| u64::from(*s) <= limit)
        .map(|(u, _)| *u)
        .collect();
    let large: HashMap<u32, u32> = chunk
        .iter()
        .filter(|(_, s)| u64::from(*s) > limit)
        .copied()
        .collect();
    conn.fetch(&whole, false, |uid, raw| {
        arrivals.push((uid, make(uid, raw, None)))
    })
    .await?;
    // Over the size limit: only the header is fetched; the mail is refused for its size.
    let large_uids: Vec<u32> = large.keys().copied().collect();
    conn.fetch(&large_uids, true, |uid, header| {
        let size = u64::from(large.get(&uid).copied().unwrap_or(0));
        let sha256 = crate::hex::sha256_hex(&header);
        arrivals.push((uid, make(uid, header, Some(Whole { size, sha256 }))));
    })
    .await?;
    arrivals.sort_by_key(|(uid, _)| *uid);
    tracing::debug!(mailbox = %state.name, mails = arrivals.len(), "chunk fetched");
    let arrive = state.arrive.clone();
    // Mails in hand are handed over even when the daemon stops: the intake finishes them.
    let batch: Vec<Arrival> = arrivals.into_iter().map(|(_, a)| a).collect();
    let sending = tokio::spawn(async move {
        arrive
            .send(batch)
            .await
            .map_err(|_| SourceError::IntakeGone)
    });
    Ok(InFlight {
        chunk: chunk.to_vec(),
        settled,
        sending,
    })
}

/// Waits until every mail of a chunk has its outcome, moves those on disk out of the folder,
/// and has the store note the moves and (where `advance`) the cursor advanced past them. False
/// when one was deferred.
async fn settle(
    conn: &mut Connection,
    state: &mut State,
    cursor: &mut Cursor,
    flight: InFlight,
    noting: &mut Noting,
    advance_cursor: bool,
) -> Result<bool, SourceError> {
    let InFlight {
        chunk,
        mut settled,
        sending,
    } = flight;
    sending
        .await
        .map_err(|e| SourceError::HandOver(e.into()))??;
    let mut outcomes: HashMap<u32, bool> = HashMap::with_capacity(chunk.len());
    while let Some((uid, done)) = settled.recv().await {
        outcomes.insert(uid, done);
    }
    tracing::debug!(mailbox = %state.name, mails = chunk.len(), "chunk settled");
    let advanced = advance(
        cursor.last_uid,
        &chunk,
        &outcomes,
        &mut state.misses,
        &state.name,
    );
    // Only mails whose outcome is on disk are moved: a later chunk's may be committed and not
    // yet durable.
    let store = state.shared.desk().store.clone();
    let mut moves = store.pending_moves(&state.name, cursor.uidvalidity).await?;
    moves.retain(|m| outcomes.get(&m.uid) == Some(&true));
    let moved = move_out(conn, state, &moves).await?;
    let before = *cursor;
    if advance_cursor {
        cursor.last_uid = cursor.last_uid.max(advanced.last_uid);
    }
    let (name, after) = (state.name.clone(), *cursor);
    // After the note before it, not waited for here.
    let previous = noting.0.take();
    noting.0 = Some(tokio::spawn(async move {
        if let Some(previous) = previous {
            previous
                .await
                .map_err(|e| SourceError::Noting(e.into()))??;
        }
        if after != before {
            store
                .set_cursor(&name, after, jiff::Timestamp::now())
                .await?;
        }
        Ok(store.moves_made(&name, after.uidvalidity, &moved).await?)
    }));
    Ok(advanced.settled)
}

/// The listed mails in chunks of at most [`CHUNK_MAILS`] and [`CHUNK_BYTES`] (a single larger
/// mail alone).
fn chunks(found: &[(u32, u32)]) -> Vec<&[(u32, u32)]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, (_, size)) in found.iter().enumerate() {
        if i > start && (i - start == CHUNK_MAILS || bytes + u64::from(*size) > CHUNK_BYTES) {
            out.push(&found[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += u64::from(*size);
    }
    if start < found.len() {
        out.push(&found[start..]);
    }
    out
}

struct Advanced {
    last_uid: u32,
    /// Every mail of the chunk has its outcome on disk.
    settled: bool,
}

/// How far the cursor may go: up to the first mail of the chunk that was deferred or not
/// handed over by the server (that one is read again; one the server never hands over is
/// passed over after [`MISSES`] tries).
fn advance(
    last: u32,
    chunk: &[(u32, u32)],
    outcomes: &HashMap<u32, bool>,
    misses: &mut HashMap<u32, u32>,
    mailbox: &str,
) -> Advanced {
    let mut last_uid = last;
    let mut settled = true;
    for (uid, _) in chunk {
        match outcomes.get(uid) {
            Some(true) => {
                misses.remove(uid);
                if settled {
                    last_uid = *uid;
                }
            }
            Some(false) => settled = false,
            None => {
                let n = misses.entry(*uid).or_insert(0);
                *n += 1;
                if *n >= MISSES {
                    tracing::error!(
                        mailbox,
                        uid,
                        "the server lists this mail but does not hand it over: passed over"
                    );
                    misses.remove(uid);
                    if settled {
                        last_uid = *uid;
                    }
                } else {
                    settled = false;
                }
            }
        }
    }
    Advanced { last_uid, settled }
}

/// Makes the moves a crash left undone, and forgets them.
async fn carry_out_moves(
    conn: &mut Connection,
    state: &State,
    uidvalidity: u32,
) -> Result<(), SourceError> {
    let store = state.shared.desk().store.clone();
    let moves = store.pending_moves(&state.name, uidvalidity).await?;
    let moved = move_out(conn, state, &moves).await?;
    store.moves_made(&state.name, uidvalidity, &moved).await?;
    Ok(())
}

/// Moves mails to their folders; the UIDs moved.
async fn move_out(
    conn: &mut Connection,
    state: &State,
    moves: &[Move],
) -> Result<Vec<u32>, SourceError> {
    let mut by_folder: HashMap<&str, Vec<u32>> = HashMap::new();
    for m in moves {
        by_folder.entry(&m.folder).or_default().push(m.uid);
    }
    let mut moved = Vec::with_capacity(moves.len());
    for (folder, uids) in by_folder {
        conn.move_to(&uids, folder).await?;
        state.shared.moved(&state.name, uids.len());
        tracing::debug!(mailbox = %state.name, folder, n = uids.len(), "moved");
        moved.extend(uids);
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_at_most_their_mails_and_bytes_but_a_large_mail_goes_alone() {
        let found: Vec<(u32, u32)> = (1..=(2 * CHUNK_MAILS as u32 + 20))
            .map(|u| (u, 1000))
            .collect();
        let sizes: Vec<usize> = chunks(&found).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [CHUNK_MAILS, CHUNK_MAILS, 20]);
        let part = (CHUNK_BYTES * 3 / 8) as u32;
        let found = [
            (1, part),
            (2, part),
            (3, part),
            (4, 20 << 20),
            (5, 10),
            (6, 10),
        ];
        let sizes: Vec<usize> = chunks(&found).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [2, 1, 1, 2]);
    }

    #[test]
    fn the_cursor_stops_before_a_deferred_mail_and_passes_a_missing_one_after_three_tries() {
        let chunk = [(1, 0), (2, 0), (3, 0)];
        let mut misses = HashMap::new();
        let deferred = HashMap::from([(1, true), (2, false), (3, true)]);
        let a = advance(0, &chunk, &deferred, &mut misses, "m");
        assert_eq!((a.last_uid, a.settled), (1, false));
        let missing = HashMap::from([(1, true), (3, true)]);
        for _ in 0..2 {
            let a = advance(0, &chunk, &missing, &mut misses, "m");
            assert_eq!((a.last_uid, a.settled), (1, false));
        }
        let a = advance(0, &chunk, &missing, &mut misses, "m");
        assert_eq!((a.last_uid, a.settled), (3, true));
    }
}
