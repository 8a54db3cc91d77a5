//! Mail into the desk, whatever its source: `deskmail ingest` (files, a Maildir, stdin) and
//! the daemon's mailboxes hand over raw mails, each with an acknowledgement; the intake reads
//! them ahead on a thread of its own (read_ahead.rs), commits them in groups (commit.rs), and
//! acknowledges each mail, in the order the mails came, once its group's commit is on disk. A
//! source lets a mail go (deletes a file, moves an IMAP message) only in its acknowledgement:
//! what was not acknowledged is taken in again later, and recognised then if it was applied.

mod commit;
mod read_ahead;

use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::{mpsc, watch};

use crate::desk::{Desk, IngestError, MailReport, Whole};

/// The bytes of mail a block read ahead holds, at most (a single larger mail excepted), and
/// of mail waiting for the lanes.
const BLOCK_BYTES: usize = 8 << 20;

/// A mail as a source hands it over.
pub struct Arrival {
    /// The mail's bytes: all of them, or for a mail over the size limit the first `limit + 1`.
    pub raw: Vec<u8>,
    /// For a mail over the size limit, its whole size and digest.
    pub whole: Option<Whole>,
    /// The mailbox (by name) it came in at, when known.
    pub mailbox: Option<String>,
    /// Where it was read in an IMAP folder.
    pub origin: Option<crate::desk::Origin>,
    /// The lease its source read it under.
    pub fence: Option<crate::store::Fence>,
    /// Called with what became of the mail once that is on disk (or, for a temporary failure,
    /// once nothing of it is kept).
    pub ack: Ack,
}

/// What a source does once a mail's outcome is settled.
pub type Ack = Box<dyn FnOnce(&Result<MailReport, IngestError>) + Send>;

/// Where the intake's read-ahead thread takes its mails from.
pub enum Arrivals {
    /// A list known from the start, read one by one as the thread gets to it (files, stdin).
    Listed(Box<dyn Iterator<Item = Arrival> + Send>),
    /// Mails as sources receive them (the daemon), in the batches each source read together;
    /// ends when every sender is gone.
    Streamed(mpsc::Receiver<Vec<Arrival>>),
}

/// How mails are committed.
#[derive(Debug, Clone)]
pub struct Options {
    /// Mails per transaction, at most.
    pub batch: usize,
    /// Transactions at a time, in lanes (the mails of one ticket always in the same lane).
    pub parallel: usize,
    /// Work everything out and keep nothing.
    pub dry_run: bool,
    /// The time every mail is taken in at; the clock's time at each group when `None`.
    pub now: Option<Timestamp>,
}

impl Options {
    fn now(&self) -> Timestamp {
        self.now.unwrap_or_else(Timestamp::now)
    }
}

/// The desk mails are taken into: the daemon puts a new one in place when it reloads its
/// settings, and each group is committed on the one in place when the group starts.
pub type Desks = watch::Receiver<Arc<Desk>>;

/// A desk that stays (`deskmail ingest`).
pub fn fixed(desk: Desk) -> Desks {
    watch::channel(Arc::new(desk)).1
}

/// Why the intake stopped before every mail was acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("reading the mails ahead failed (a fault of deskmail's): the thread panicked: {panic}")]
pub struct ReadAheadFailed {
    /// What the panic said.
    pub panic: String,
}

/// Takes in every mail `arrivals` yields, acknowledging each. Returns when they are all
/// acknowledged; an error when the read-ahead thread failed, so that mails after the last one
/// acknowledged were not taken in (their sources keep them).
pub async fn run(
    desks: &Desks,
    arrivals: Arrivals,
    options: &Options,
) -> Result<(), ReadAheadFailed> {
    let options = Options {
        batch: options.batch.max(1),
        parallel: options.parallel.max(1),
        ..options.clone()
    };
    // The helper hands over at least 64 mails at a time when that many are there: each
    // hand-over wakes a thread on the other CPU, which costs more than a small group's commit.
    let per_transaction = options.batch * options.parallel;
    let block = per_transaction * 64usize.div_ceil(per_transaction);
    let (blocks, helper) = read_ahead::start(desks.clone(), arrivals, block, options.dry_run);
    if options.parallel == 1 {
        commit::in_turn(desks, blocks, &options).await;
    } else {
        commit::in_lanes(desks, blocks, &options).await;
    }
    helper.join().map_err(|payload| ReadAheadFailed {
        panic: crate::errors::panic_message(payload.as_ref()).to_string(),
    })
}

/// Reads up to `limit + 1` bytes; when there are more, the whole mail's size and digest. `size`
/// is how long the input says it is (0 when it cannot say): the buffer is made that large at
/// once, not doubled up to it.
pub fn read_capped(
    input: impl std::io::Read,
    limit: u64,
    size: u64,
) -> std::io::Result<(Vec<u8>, Option<Whole>)> {
    use sha2::Digest;
    use std::io::Read;
    let mut input = input;
    let mut raw = Vec::with_capacity(usize::try_from(size.min(limit + 1)).unwrap_or(0));
    (&mut input).take(limit + 1).read_to_end(&mut raw)?;
    if raw.len() as u64 <= limit {
        return Ok((raw, None));
    }
    let mut hasher = sha2::Sha256::new();
    hasher.update(&raw);
    let mut size = raw.len() as u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let sha256 = crate::hex::hex(&hasher.finalize());
    Ok((raw, Some(Whole { size, sha256 })))
}
