//! Mail in: each mail through the inbound stages and the core, written together with the mail
//! itself in one transaction. Idempotent: a mail (by Message-ID, or a digest of its bytes when
//! it has none) is applied once, and a second delivery changes nothing. A mail that cannot be
//! applied is kept with its reason (raw bytes included) and can be applied again later.
//!
//! Mails come in groups: one transaction for the group, a savepoint per mail, so that one bad
//! mail is undone alone and the group commits before any of its mails is reported.

use jiff::Timestamp;
use tracing::Instrument;

use super::mail::{Decided, MailCtx};
use super::report::{MailReport, RefusalReport, Status};
use super::{Desk, DeskError};
use crate::inbound::{self, Class, Reading};
use crate::store::{Durable, Fence, InboundOutcome, NewInbound, Owner, StoreError, Tx};

/// A mail to take in.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub raw: Vec<u8>,
    /// `raw` packed for storage (`store::pack`), when a thread did that ahead; packed when
    /// stored otherwise.
    pub packed: Option<Vec<u8>>,
    /// The mailbox (by name) it was read from, when known.
    pub mailbox: Option<String>,
    /// What the stages before the database made of it, when a thread worked that out ahead
    /// (`inbound::read_ahead`); worked out here otherwise.
    pub reading: Option<Box<Reading>>,
    /// The whole mail's size and digest, when `raw` holds only its beginning: a mail over the
    /// size limit, read no further than the limit, or only its header (and refused for its
    /// size).
    pub whole: Option<Whole>,
    /// Where the mail was read in an IMAP folder, and where it goes from there.
    pub origin: Option<Origin>,
    /// The lease its source read it under: the mail is committed only while it is held.
    pub fence: Option<Fence>,
}

/// The size of a mail of which only the beginning was read, and a SHA-256 digest (hex) that
/// names it: of all its bytes where they passed by (a file, stdin), of its header where only
/// that was fetched (IMAP).
#[derive(Debug, Clone)]
pub struct Whole {
    pub size: u64,
    pub sha256: String,
}

/// Where a mail was read in an IMAP folder. Where it goes from there is noted in the mail's
/// own transaction (`Tx::note_move`), so that a crash after the commit repeats the move, never
/// the mail.
#[derive(Debug, Clone)]
pub struct Origin {
    pub mailbox: String,
    pub uidvalidity: u32,
    pub uid: u32,
    /// Where a mail goes that was taken in (applied, refused, recorded, a duplicate); `None`:
    /// it stays.
    pub processed: Option<String>,
    /// Where a mail goes that was kept as failed or was over the size limit.
    pub failed: Option<String>,
}

impl Incoming {
    pub fn new(raw: Vec<u8>, mailbox: Option<String>) -> Incoming {
        Incoming {
            raw,
            packed: None,
            mailbox,
            reading: None,
            whole: None,
            origin: None,
            fence: None,
        }
    }

    /// How much of the mail `raw` holds.
    pub fn extent(&self) -> inbound::Extent {
        if self.whole.is_some() {
            inbound::Extent::Beginning
        } else {
            inbound::Extent::Whole
        }
    }
}

impl Incoming {
    /// The row that keeps this mail (`raw`: its bytes, or what of them is kept).
    fn row<'a>(
        &'a self,
        reading: &'a Reading,
        key: &'a str,
        raw: &'a [u8],
        packed: Option<&'a [u8]>,
        now: Timestamp,
    ) -> NewInbound<'a> {
        NewInbound {
            dedupe_key: key,
            message_id: reading.mail.message_id.as_deref(),
            mailbox: self.mailbox.as_deref(),
            sender: Some(&reading.sender.address),
            subject: Some(&reading.mail.subject),
            raw,
            packed,
            received_at: now,
        }
    }
}

/// Why a mail could not be taken in.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    /// Try again later (the database is busy or down): nothing was kept.
    #[error("temporary failure, try again later: {0}")]
    Temporary(String),
    /// Kept as failed with this reason (`inbound retry ID` applies it again).
    #[error("could not be applied (kept{}): {reason}", id.map(|i| format!(" as #{i}")).unwrap_or_default())]
    Failed { id: Option<i64>, reason: String },
}

impl DeskError {
    /// True when the fault may go away by itself (the database busy or unreachable).
    pub fn is_temporary(&self) -> bool {
        matches!(self, DeskError::Store(e) if e.is_temporary())
    }
}

/// The key that makes taking a mail in idempotent.
pub fn dedupe_key(message_id: Option<&str>, raw: &[u8]) -> String {
    match message_id {
        Some(id) if id.len() > 2 => id.to_string(),
        _ => format!("sha256:{}", crate::hex::sha256_hex(raw)),
    }
}

impl Desk {
    /// Takes in a group of mails: one transaction, a savepoint each. With `dry_run` everything
    /// is worked out and nothing is kept. The results come in the mails' order once the group
    /// is committed.
    pub async fn ingest(
        &self,
        mails: &[Incoming],
        now: Timestamp,
        dry_run: bool,
    ) -> Vec<Result<MailReport, IngestError>> {
        let (out, durable) = self.ingest_unsynced(mails, now, dry_run).await;
        on_disk(out, durable.wait().await)
    }

    /// [`Desk::ingest`] without waiting for the disk: the results hold once the [`Durable`]
    /// resolves (see [`on_disk`]); until then none of them may be acknowledged. The caller
    /// goes on with the next group meanwhile.
    pub async fn ingest_unsynced(
        &self,
        mails: &[Incoming],
        now: Timestamp,
        dry_run: bool,
    ) -> (Vec<Result<MailReport, IngestError>>, Durable) {
        // Most groups hold no mail that fails half-way: they run without savepoints (two
        // statements fewer per mail). When one does, the group is run again with a savepoint
        // around each mail, so that the bad one is undone alone.
        match self.ingest_group(mails, now, dry_run, false).await {
            Some(out) => out,
            None => self
                .ingest_group(mails, now, dry_run, true)
                .await
                .unwrap_or_else(|| {
                    (
                        temporary(mails.len(), "the group could not be applied"),
                        Durable::already(),
                    )
                }),
        }
    }

    /// One group in one transaction; `None` when a mail failed half-way without a savepoint to
    /// undo it alone (the transaction is dropped: nothing was written).
    async fn ingest_group(
        &self,
        mails: &[Incoming],
        now: Timestamp,
        dry_run: bool,
        savepoints: bool,
    ) -> Option<(Vec<Result<MailReport, IngestError>>, Durable)> {
        let n = mails.len();
        let failed = |e: &(dyn std::error::Error + 'static)| {
            Some((temporary(n, &crate::errors::chain(e)), Durable::already()))
        };
        let mut tx = match self.store.begin().await {
            Ok(tx) => tx,
            Err(e) => return failed(&e),
        };
        let mut out = Vec::with_capacity(n);
        for mail in mails {
            if savepoints && let Err(e) = tx.savepoint().await {
                return failed(&e);
            }
            match self.take(&mut tx, mail, now).await {
                Ok(report) => {
                    if savepoints && let Err(e) = tx.release_savepoint().await {
                        return failed(&e);
                    }
                    let gone = report.status == Status::TooLarge;
                    if let Err(e) = note_move(&mut tx, mail, gone).await {
                        return failed(&e);
                    }
                    out.push(Ok(report));
                }
                Err(e) if e.is_temporary() => return failed(&e),
                Err(e) => {
                    // Not a mail at all is found before anything is written.
                    let clean = matches!(e, DeskError::NotAMail(_));
                    if !clean && !savepoints {
                        return None;
                    }
                    if !clean && let Err(e) = tx.rollback_to_savepoint().await {
                        return failed(&e);
                    }
                    if clean
                        && savepoints
                        && let Err(e) = tx.release_savepoint().await
                    {
                        return failed(&e);
                    }
                    let reason = crate::errors::chain(&e);
                    tracing::error!(error = %reason, "mail could not be applied; kept as failed");
                    match self.keep_failed(&mut tx, mail, &reason, now).await {
                        Ok(id) => out.push(Err(IngestError::Failed { id, reason })),
                        Err(e) => return failed(&e),
                    }
                    if let Err(e) = note_move(&mut tx, mail, true).await {
                        return failed(&e);
                    }
                }
            }
        }
        if dry_run {
            drop(tx);
            return Some((out, Durable::already()));
        }
        if let Err(e) = still_held(&mut tx, mails).await {
            return failed(e.as_ref());
        }
        match tx.commit_unsynced().await {
            Ok(durable) => Some((out, durable)),
            Err(e) => failed(&e),
        }
    }

    /// Applies a stored mail again (one that failed, or any other for a second look; a mail
    /// that was applied is not applied twice).
    pub async fn retry_inbound(
        &self,
        id: i64,
        now: Timestamp,
    ) -> Result<Option<Result<MailReport, IngestError>>, DeskError> {
        let Some(stored) = self.store.stored_mail(id).await? else {
            return Ok(None);
        };
        if stored.headers_only {
            return Err(DeskError::HeadersOnly(id));
        }
        self.store.reopen_for_retry(id).await?;
        let mail = Incoming::new(stored.raw, stored.mailbox);
        Ok(self.ingest(&[mail], now, false).await.pop())
    }

    /// One mail, inside the group's transaction (and its own savepoint).
    async fn take(
        &self,
        tx: &mut Tx,
        mail: &Incoming,
        now: Timestamp,
    ) -> Result<MailReport, DeskError> {
        let dir = &self.settings.directory;
        let read_here;
        let reading = match &mail.reading {
            Some(r) => r.as_ref(),
            None => {
                read_here = inbound::read(
                    &mail.raw,
                    mail.extent(),
                    &self.reader,
                    dir,
                    &self.outbound.key,
                );
                &read_here
            }
        };
        let span = tracing::info_span!(
            "mail",
            mailbox = mail.mailbox.as_deref().unwrap_or("-"),
            uid = mail.origin.as_ref().map(|o| o.uid),
            message_id = reading.mail.message_id.as_deref().unwrap_or("-"),
            from = %reading.sender.address,
            ticket = tracing::field::Empty,
        );
        self.take_read(tx, mail, reading, now)
            .instrument(span)
            .await
    }

    async fn take_read(
        &self,
        tx: &mut Tx,
        mail: &Incoming,
        reading: &Reading,
        now: Timestamp,
    ) -> Result<MailReport, DeskError> {
        if reading.mail.headers_only {
            let report = MailReport::new(reading);
            return self.too_large(tx, mail, reading, report, now).await;
        }
        if !is_a_mail(reading) {
            // It can never be processed. Kept as failed by the caller.
            return Err(DeskError::NotAMail(
                reading
                    .mail
                    .warnings
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "it has none of From, To, Subject, Date, Message-ID".into()),
            ));
        }
        let report = MailReport::new(reading);
        let key = dedupe_key(reading.mail.message_id.as_deref(), &mail.raw);
        let id = match store_mail(tx, mail, reading, &key, now).await? {
            Stored::New(id) => id,
            Stored::Before(id, status) => return Ok(duplicate(report, id, &status)),
        };
        let mut m = MailCtx {
            id,
            reading,
            mailbox: mail.mailbox.as_deref(),
            now,
            report,
        };
        m.report.inbound_id = Some(id);
        let decided = self.apply_mail(tx, &mut m).await?;
        finish(tx, m, decided).await
    }

    /// Keeps a mail that could not be applied, with the reason.
    async fn keep_failed(
        &self,
        tx: &mut Tx,
        mail: &Incoming,
        reason: &str,
        now: Timestamp,
    ) -> Result<Option<i64>, DeskError> {
        // Only what the row names is needed: the headers.
        let parsed = inbound::parse::parse_headers(&mail.raw);
        let key = dedupe_key(parsed.message_id.as_deref(), &mail.raw);
        let sender = parsed.from.as_ref().map(|f| f.address.clone());
        let id = match tx.inbound_by_key(&key).await? {
            Some((id, _)) => id,
            None => {
                let row = NewInbound {
                    dedupe_key: &key,
                    message_id: parsed.message_id.as_deref(),
                    mailbox: mail.mailbox.as_deref(),
                    sender: sender.as_deref(),
                    subject: Some(&parsed.subject),
                    raw: &mail.raw,
                    packed: mail.packed.as_deref(),
                    received_at: now,
                };
                match tx.insert_inbound(&row).await? {
                    Some(id) => {
                        tx.insert_pieces(Owner::Inbound(id), &mail.raw).await?;
                        id
                    }
                    None => return Ok(None),
                }
            }
        };
        tx.finish_inbound(
            id,
            &InboundOutcome {
                status: "failed",
                class: None,
                reason,
                ticket_id: None,
                detail: "",
                at: now,
            },
        )
        .await?;
        Ok(Some(id))
    }

    /// A mail over the size limit, read for its headers only: refused for its size, its headers
    /// kept with its size and digest, not its bytes. Nobody is mailed: the source keeps the mail
    /// and tells the sender (an MTA bounces it with the reason).
    async fn too_large(
        &self,
        tx: &mut Tx,
        mail: &Incoming,
        reading: &Reading,
        mut report: MailReport,
        now: Timestamp,
    ) -> Result<MailReport, DeskError> {
        let limit = self.settings.inbound.max_message_bytes;
        let (size, digest) = match &mail.whole {
            Some(w) => (w.size, w.sha256.clone()),
            None => (mail.raw.len() as u64, crate::hex::sha256_hex(&mail.raw)),
        };
        report.refusal = Some(RefusalReport::mail(
            "too_large",
            format!(
                "the mail is {}, more than the {} deskmail takes (inbound.max_message_bytes); only its headers are kept",
                crate::outbound::compose::size_text(size),
                crate::outbound::compose::size_text(limit)
            ),
        ));
        report.status = Status::TooLarge;
        // A key of its own: the same mail sent again once the limit is raised is taken in.
        let key = format!("too-large:{digest}");
        let headers =
            &mail.raw[..inbound::parse::header_block_len(&mail.raw).min(KEPT_HEADER_BYTES)];
        let row = mail.row(reading, &key, headers, None, now);
        let decision = report.decision();
        let outcome = InboundOutcome {
            status: Status::Refused.as_str(),
            class: Some(report.class),
            reason: &decision,
            ticket_id: None,
            detail: "",
            at: now,
        };
        report.inbound_id = tx
            .insert_inbound_headers(&row, size, &digest, &outcome)
            .await?;
        tracing::warn!(
            size,
            limit,
            "mail over the size limit: refused, headers kept"
        );
        Ok(report)
    }
}

/// Whether a mail has any of the headers every mail has.
fn is_a_mail(reading: &Reading) -> bool {
    const ESSENTIAL: [&str; 6] = ["from", "sender", "to", "subject", "date", "message-id"];
    reading
        .mail
        .headers
        .iter()
        .any(|(n, _)| ESSENTIAL.contains(&n.as_str()))
}

/// Whether a mail is new here.
enum Stored {
    /// Stored now (or again, after it failed before), under this id.
    New(i64),
    /// Taken in before, with this id (0: not committed yet) and status.
    Before(i64, String),
}

/// Stores a mail first (one statement in the common case); a mail stored before is a
/// duplicate, unless it failed then. The ticket a reply token names is read (and on
/// PostgreSQL locked) in the same round trip.
async fn store_mail(
    tx: &mut Tx,
    mail: &Incoming,
    reading: &Reading,
    key: &str,
    now: Timestamp,
) -> Result<Stored, DeskError> {
    let row = mail.row(reading, key, &mail.raw, mail.packed.as_deref(), now);
    let named = reading
        .candidates
        .token
        .as_deref()
        .filter(|_| reading.class.class == Class::Person);
    if let Some(id) = tx.insert_inbound_reading(&row, named).await? {
        tx.insert_pieces(Owner::Inbound(id), &mail.raw).await?;
        return Ok(Stored::New(id));
    }
    Ok(match tx.inbound_by_key(key).await? {
        Some((id, status)) if status == "failed" => {
            tx.reopen_inbound(id).await?;
            Stored::New(id)
        }
        Some((id, status)) => Stored::Before(id, status),
        None => Stored::Before(0, "being taken in".into()),
    })
}

/// Records what became of a mail with it. The report explains a mail that did not change a
/// ticket; an applied one is explained by the ticket's comment and history.
async fn finish(tx: &mut Tx, m: MailCtx<'_>, decided: Decided) -> Result<MailReport, DeskError> {
    let mut report = m.report;
    report.status = decided.status;
    if let Some(ticket) = &report.ticket {
        tracing::Span::current().record("ticket", ticket.as_str());
    }
    let decision = report.decision();
    tracing::info!(status = decided.status.as_str(), decision = %decision, "mail taken in");
    let detail = if decided.status == Status::Applied {
        String::new()
    } else {
        serde_json::to_string(&report).unwrap_or_default()
    };
    tx.finish_inbound(
        m.id,
        &InboundOutcome {
            status: decided.status.as_str(),
            class: Some(report.class),
            reason: &decision,
            ticket_id: decided.ticket_id,
            detail: &detail,
            at: m.now,
        },
    )
    .await?;
    Ok(report)
}

/// Why a group is not committed: its source lost the lease it read the mails under.
#[derive(Debug, thiserror::Error)]
#[error("another daemon has taken over {0}; the mails are left to it")]
struct LeaseLost(String);

/// Checks, in the group's transaction, every lease its mails were read under.
async fn still_held(tx: &mut Tx, mails: &[Incoming]) -> Result<(), Box<dyn std::error::Error>> {
    let mut checked: Vec<&Fence> = Vec::new();
    for fence in mails.iter().filter_map(|m| m.fence.as_ref()) {
        if checked.contains(&fence) {
            continue;
        }
        if !tx.holds(fence).await? {
            return Err(LeaseLost(fence.name.clone()).into());
        }
        checked.push(fence);
    }
    Ok(())
}

/// Notes where a mail read in an IMAP folder goes once the transaction is committed: to the
/// failed folder when it `failed` (kept as failed, or over the size limit), else to the
/// processed one.
async fn note_move(tx: &mut Tx, mail: &Incoming, failed: bool) -> Result<(), StoreError> {
    let Some(o) = &mail.origin else {
        return Ok(());
    };
    let folder = if failed { &o.failed } else { &o.processed };
    match folder {
        Some(f) => tx.note_move(&o.mailbox, o.uidvalidity, o.uid, f).await,
        None => Ok(()),
    }
}

/// Bytes of a too large mail's header block kept, at most.
const KEPT_HEADER_BYTES: usize = 256 * 1024;

/// Every mail of a group deferred: try again later.
fn temporary(n: usize, e: &str) -> Vec<Result<MailReport, IngestError>> {
    (0..n)
        .map(|_| Err(IngestError::Temporary(e.to_string())))
        .collect()
}

fn duplicate(mut report: MailReport, id: i64, status: &str) -> MailReport {
    report.status = Status::Duplicate;
    report.inbound_id = (id > 0).then_some(id);
    report
        .notes
        .push(format!("taken in before ({status}): nothing changed"));
    report
}

/// A group's results once its commit is settled: where it did not reach the disk, every mail
/// of the group is a temporary failure, kept as failed ones included (the mail is taken in
/// again later; what reached the disk after all is then recognised and not applied twice).
pub fn on_disk(
    out: Vec<Result<MailReport, IngestError>>,
    synced: Result<(), StoreError>,
) -> Vec<Result<MailReport, IngestError>> {
    match synced {
        Ok(()) => out,
        Err(e) => temporary(out.len(), &crate::errors::chain(&e)),
    }
}
