//! `deskmail ingest [--mailbox NAME] [--dry-run] [--json] [FILE... | DIR | -]`: mails from
//! files, a directory (a Maildir, or a folder of `.eml` files; any other is refused) or stdin
//! through the inbound pipeline. Usable
//! as an MTA pipe: exit 0 when every mail was applied, recorded or refused with a notice, 65
//! (EX_DATAERR) for a mail that can never be processed (kept as failed), 75 (EX_TEMPFAIL) when
//! the MTA should try again later (the database busy or down, or a configuration fault such as a
//! reply-token secret that cannot be read, logged at ERROR); with several mails, the worst.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;
use jiff::Timestamp;

use super::{Failure, OpenError};
use crate::desk::{Desk, Incoming, IngestError, MailReport, MailStatus, Whole, on_disk};

/// Groups taken in while earlier ones wait for the disk, at most.
const UNSETTLED: usize = 64;

/// The bytes of mail a block read ahead holds, at most (a single larger mail excepted), and
/// of mail waiting for the lanes.
const BLOCK_BYTES: usize = 8 << 20;

/// sysexits.h: the input data was incorrect.
pub const EX_DATAERR: u8 = 65;
/// sysexits.h: a temporary failure; the sender should try again later.
pub const EX_TEMPFAIL: u8 = 75;

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The mailbox (by name, see [[mailboxes]]) the mails came in at
    #[arg(long, value_name = "NAME")]
    pub mailbox: Option<String>,
    /// Work everything out and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object per mail on stdout (class, sender, ticket, text, commands, decision)
    #[arg(long)]
    pub json: bool,
    /// Mails per transaction (each is committed before any of its mails is reported)
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub batch: usize,
    /// Pretend it is this time (RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Run on every CPU (by default ingest stays on one: with SQLite that is about twice as
    /// fast, see src/affinity.rs)
    #[arg(long)]
    pub all_cpus: bool,
    /// Groups committed in parallel, mails of one ticket always in the same group [default: 8
    /// on PostgreSQL, 1 on SQLite, which has one writer]
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Mail files (named one by one, any name), Maildirs (the files in new/ and cur/),
    /// folders of *.eml files (other and hidden files there are left alone; any other folder is
    /// refused), or - for stdin (the default)
    #[arg(value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
}

/// Why an input named on the command line is not taken (nothing is, then).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{}: {source}", dir.display())]
    Read {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{}: not a Maildir (no new/ or cur/) and none of its {files} file(s) ends in .eml; \
         deskmail ingest takes a Maildir, a folder of .eml files, mail files named one by one, \
         or - for stdin",
        dir.display()
    )]
    NoMail { dir: PathBuf, files: usize },
}

/// One input: a file, or stdin.
enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    fn name(&self) -> String {
        match self {
            Input::Stdin => "stdin".into(),
            Input::File(p) => p.display().to_string(),
        }
    }

    /// The mail's bytes, at most `limit + 1` of them: a larger mail is refused for its size, so
    /// the rest is only counted and hashed, not kept (what the store keeps of such a mail).
    fn read(&self, limit: u64) -> std::io::Result<(Vec<u8>, Option<Whole>)> {
        match self {
            Input::Stdin => read_capped(std::io::stdin().lock(), limit, 0),
            Input::File(p) => {
                let file = std::fs::File::open(p)?;
                let size = file.metadata().map_or(0, |m| m.len());
                read_capped(file, limit, size)
            }
        }
    }
}

/// Reads up to `limit + 1` bytes; when there are more, the whole mail's size and digest. `size`
/// is how long the input says it is (0 when it cannot say): the buffer is made that large at
/// once, not doubled up to it.
fn read_capped(
    input: impl Read,
    limit: u64,
    size: u64,
) -> std::io::Result<(Vec<u8>, Option<Whole>)> {
    use sha2::Digest;
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

/// The mails of a directory, in name order: a Maildir's (every file in `new` and `cur`: a
/// Maildir holds nothing else), or a folder's `.eml` files (any case). Hidden files are left
/// out; so are a folder's other files, with a warning, and a folder with files but none of them
/// `.eml` is refused: it is not a folder of mail, and taking its files in would store each as a
/// failed mail. An empty folder has no mail.
fn files_in(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let read = |d: &Path| {
        visible_files(d).map_err(|source| InputError::Read {
            dir: d.to_path_buf(),
            source,
        })
    };
    if dir.join("new").is_dir() || dir.join("cur").is_dir() {
        let mut out = Vec::new();
        for d in ["new", "cur"]
            .map(|d| dir.join(d))
            .iter()
            .filter(|d| d.is_dir())
        {
            out.extend(read(d)?);
        }
        return Ok(out);
    }
    let files = read(dir)?;
    let (mails, others): (Vec<PathBuf>, Vec<PathBuf>) = files
        .into_iter()
        .partition(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("eml")));
    if mails.is_empty() && !others.is_empty() {
        return Err(InputError::NoMail {
            dir: dir.to_path_buf(),
            files: others.len(),
        });
    }
    if !others.is_empty() {
        tracing::warn!(
            "{}: {} file(s) not ending in .eml left alone",
            dir.display(),
            others.len()
        );
    }
    Ok(mails)
}

/// A directory's files (not its subdirectories), hidden ones left out, in name order.
fn visible_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The inputs named on the command line, directories expanded; read a group at a time, so
/// that a large Maildir is never all in memory.
fn list_inputs(inputs: &[PathBuf]) -> Result<Vec<Input>, InputError> {
    let mut out = Vec::new();
    if inputs.is_empty() || inputs.iter().any(|p| p.as_os_str() == "-") {
        out.push(Input::Stdin);
    }
    for p in inputs.iter().filter(|p| p.as_os_str() != "-") {
        if p.is_dir() {
            out.extend(files_in(p)?.into_iter().map(Input::File));
        } else {
            out.push(Input::File(p.clone()));
        }
    }
    Ok(out)
}

/// Runs the pipeline on the desk `open` opens; returns the exit code.
pub async fn run(
    open: impl Future<Output = Result<Desk, OpenError>>,
    args: IngestArgs,
) -> Result<u8, Failure> {
    // Inputs that hold no mail are the caller's mistake (exit 1), said before anything is
    // opened or created.
    let inputs = list_inputs(&args.inputs)?;
    let mut desk = match open.await {
        Ok(d) => d,
        Err(e) => {
            // The database is down, or the configuration needs the admin (a reply-token secret
            // that cannot be read, say): either way the MTA keeps the mail and tries again.
            // One line per reason: an MTA quotes them in its log or its bounce.
            for reason in e.reasons() {
                tracing::error!("cannot take mail in: {reason}");
            }
            return Ok(EX_TEMPFAIL);
        }
    };
    if let Some(m) = &args.mailbox
        && !desk.settings.mailboxes.iter().any(|b| &b.name == m)
    {
        return Err(Failure(format!(
            "--mailbox {m}: no such mailbox (see [[mailboxes]])"
        )));
    }
    let now = match &args.now {
        Some(t) => t
            .parse()
            .map_err(|e| Failure(format!("--now {t}: not an RFC 3339 time: {e}")))?,
        None => Timestamp::now(),
    };
    let postgres = desk.store.dialect() == crate::store::Dialect::Postgres;
    let parallel = args.parallel.unwrap_or(if postgres { 8 } else { 1 }).max(1);
    let batch = args.batch.max(1);
    // With several mails per transaction, notifications are rendered on a thread of their
    // own while the group goes on (when ingest stays on one CPU, on the others). With one mail
    // per transaction the commit would only wait for it.
    if batch > 1 && inputs.len() > 1 && !args.dry_run {
        match desk.render_elsewhere() {
            Ok(()) => tracing::debug!("rendering notifications on another CPU"),
            Err(e) => tracing::warn!(error = %e, "no rendering thread; rendering in place"),
        }
    }
    // A helper thread reads the files and does the work that needs no database (parsing,
    // classifying, extracting, packing the bytes to store) a group ahead, on the CPUs the
    // database work does not use.
    // One block waits while the next is read: enough to keep the database busy (no slower than
    // two, side by side), and less mail in memory when mails are large.
    let (send, blocks) = tokio::sync::mpsc::channel::<Block>(1);
    let (reader, dir, key) = (
        desk.reader.clone(),
        desk.settings.directory.clone(),
        desk.outbound.key.clone(),
    );
    let mailbox = args.mailbox.clone();
    let dry_run = args.dry_run;
    let max = desk.settings.inbound.max_message_bytes;
    // The helper hands over at least 64 mails at a time: each hand-over wakes a thread on the
    // other CPU, which costs more than a small group's commit.
    let per_transaction = batch * parallel;
    let block = per_transaction * 64usize.div_ceil(per_transaction);
    let helper = std::thread::spawn(move || {
        crate::affinity::leave_the_pinned_cpu();
        let mut group: Block = Vec::new();
        let mut bytes = 0;
        for input in &inputs {
            let read = input.read(max).map(|(raw, whole)| {
                let reading = crate::inbound::read_ahead(&raw, &reader, &dir, &key);
                Incoming {
                    whole,
                    // A dry run stores nothing; a mail longer than a piece is packed
                    // piece by piece as it is stored (store/pieces.rs).
                    packed: (!dry_run && raw.len() <= crate::store::PIECE)
                        .then(|| crate::store::pack(&raw)),
                    raw,
                    mailbox: mailbox.clone(),
                    reading: Some(Box::new(reading)),
                }
            });
            bytes += read.as_ref().map_or(0, |m| m.raw.len());
            group.push((input.name(), read.map_err(|e| e.to_string())));
            // Large mails go in small blocks: what is read ahead stays within a few blocks of
            // BLOCK_BYTES, whatever the mails' sizes.
            if group.len() == block || bytes >= BLOCK_BYTES {
                if send.blocking_send(std::mem::take(&mut group)).is_err() {
                    return;
                }
                bytes = 0;
            }
        }
        if !group.is_empty() {
            let _ = send.blocking_send(group);
        }
    });
    let worst = if parallel == 1 {
        in_turn(&desk, blocks, batch, now, &args).await
    } else {
        in_lanes(&desk, blocks, parallel, batch, now, &args).await
    };
    if helper.join().is_err() {
        // A fault of deskmail's own while reading ahead: the mails after the last one reported
        // were not taken in. The MTA keeps them and tries again; a Maildir keeps its files.
        tracing::error!(
            "cannot take mail in: reading the mails ahead failed (a fault of deskmail's)"
        );
        return Ok(worse(worst?, EX_TEMPFAIL));
    }
    worst
}

/// Mails as the helper thread hands them over: each with its name, or why it could not be read.
type Block = Vec<(String, Result<Incoming, String>)>;

/// The mails that could be read, with their names; those that could not are reported (the MTA
/// retries them: a file that cannot be read now may be readable later).
fn readable(block: Block, worst: &mut u8) -> Vec<(String, Incoming)> {
    let mut out = Vec::with_capacity(block.len());
    for (name, read) in block {
        match read {
            Ok(mail) => out.push((name, mail)),
            Err(e) => {
                eprintln!("{name}: cannot read it: {e}");
                *worst = worse(*worst, EX_TEMPFAIL);
            }
        }
    }
    out
}

/// One transaction at a time, `batch` mails each. A group is reported once its commit is on
/// disk; the next groups are taken in meanwhile (a bounded number of them).
async fn in_turn(
    desk: &Desk,
    mut blocks: tokio::sync::mpsc::Receiver<Block>,
    batch: usize,
    now: Timestamp,
    args: &IngestArgs,
) -> Result<u8, Failure> {
    let mut worst = 0u8;
    let mut unsettled = std::collections::VecDeque::new();
    while let Some(block) = blocks.recv().await {
        let mut block = readable(block, &mut worst).into_iter();
        loop {
            let (names, mails): (Vec<String>, Vec<Incoming>) = block.by_ref().take(batch).unzip();
            if mails.is_empty() {
                break;
            }
            let (results, durable) = desk.ingest_unsynced(&mails, now, args.dry_run).await;
            unsettled.push_back((names, results, durable));
            while let Some((_, _, durable)) = unsettled.front()
                && (durable.is_settled() || unsettled.len() > UNSETTLED)
            {
                let (names, results, durable) = unsettled.pop_front().expect("a front");
                let results = on_disk(results, durable.wait().await);
                worst = worse(worst, report(&names, results, args)?);
            }
        }
    }
    for (names, results, durable) in unsettled {
        let results = on_disk(results, durable.wait().await);
        worst = worse(worst, report(&names, results, args)?);
    }
    Ok(worst)
}

/// `n` transactions at a time, in lanes: the mails of one ticket (see
/// `inbound::partition_key`) always go to the same lane, which takes them in order, so two
/// transactions never wait for each other's ticket. A lane starts its next transaction, with
/// up to `batch` of the mails waiting for it, as soon as its last one is committed: no lane
/// waits for the slowest. Mails are reported in their order, each once it is committed.
async fn in_lanes(
    desk: &Desk,
    mut blocks: tokio::sync::mpsc::Receiver<Block>,
    n: usize,
    batch: usize,
    now: Timestamp,
    args: &IngestArgs,
) -> Result<u8, Failure> {
    use std::collections::VecDeque;
    use std::hash::{Hash, Hasher};

    use futures_util::StreamExt;

    type Done = Vec<Result<MailReport, IngestError>>;
    let dry_run = args.dry_run;
    let mut worst = 0u8;
    // Mails waiting, by lane, each with its place in the input.
    let mut lanes: Vec<VecDeque<(usize, Incoming)>> = (0..n).map(|_| VecDeque::new()).collect();
    let mut busy = vec![false; n];
    // From the first mail not reported on: names, and results as they come.
    let mut names: VecDeque<String> = VecDeque::new();
    let mut results: VecDeque<Option<Result<MailReport, IngestError>>> = VecDeque::new();
    let (mut first, mut next) = (0usize, 0usize);
    let mut running = futures_util::stream::FuturesUnordered::new();
    let mut open = true;
    loop {
        for (k, lane) in lanes.iter_mut().enumerate() {
            if busy[k] || lane.is_empty() {
                continue;
            }
            let take = lane.len().min(batch);
            let (places, mails): (Vec<usize>, Vec<Incoming>) = lane.drain(..take).unzip();
            busy[k] = true;
            running.push(async move {
                let done: Done = desk.ingest(&mails, now, dry_run).await;
                (k, places, done)
            });
        }
        if running.is_empty() && !open {
            // Every lane is idle, so every lane is empty.
            break;
        }
        let waiting: usize = lanes.iter().map(VecDeque::len).sum();
        let waiting_bytes: usize = lanes
            .iter()
            .flat_map(|l| l.iter().map(|(_, m)| m.raw.len()))
            .sum();
        tokio::select! {
            biased;
            block = blocks.recv(), if open && waiting < n * batch && waiting_bytes < 4 * BLOCK_BYTES => match block {
                Some(block) => {
                    for (name, mail) in readable(block, &mut worst) {
                        let key = match &mail.reading {
                            Some(r) => crate::inbound::partition_key(r),
                            None => crate::inbound::partition_key(&crate::inbound::read(
                                &mail.raw,
                                &desk.reader,
                                &desk.settings.directory,
                                &desk.outbound.key,
                            )),
                        };
                        let mut h = std::collections::hash_map::DefaultHasher::new();
                        key.hash(&mut h);
                        lanes[(h.finish() % n as u64) as usize].push_back((next, mail));
                        names.push_back(name);
                        results.push_back(None);
                        next += 1;
                    }
                }
                None => open = false,
            },
            Some((k, places, done)) = running.next(), if !running.is_empty() => {
                busy[k] = false;
                for (place, result) in places.into_iter().zip(done) {
                    results[place - first] = Some(result);
                }
                let ready = results.iter().take_while(|r| r.is_some()).count();
                let ready_names: Vec<String> = names.drain(..ready).collect();
                let ready_results: Done = results.drain(..ready).flatten().collect();
                first += ready;
                worst = worse(worst, report(&ready_names, ready_results, args)?);
            }
        }
    }
    Ok(worst)
}

/// Prints what happened to each mail of a group (one line each on stderr, JSON on stdout with
/// `--json`), in one write to each; returns the group's worst exit code.
fn report(
    names: &[String],
    results: Vec<Result<MailReport, IngestError>>,
    args: &IngestArgs,
) -> Result<u8, Failure> {
    use std::fmt::Write as _;
    use std::io::Write as _;
    let mut worst = 0;
    let (mut lines, mut json) = (String::new(), String::new());
    for (name, result) in names.iter().zip(results) {
        let code = match &result {
            Ok(r) if r.status == MailStatus::TooLarge => EX_DATAERR,
            Ok(_) => 0,
            Err(IngestError::Failed { .. }) => EX_DATAERR,
            Err(IngestError::Temporary(_)) => EX_TEMPFAIL,
        };
        worst = worse(worst, code);
        match result {
            Ok(report) => {
                let dry = if args.dry_run { "dry run: " } else { "" };
                let _ = writeln!(lines, "{name}: {dry}{}", report.line());
                if args.json {
                    json.push_str(&serde_json::to_string(&report)?);
                    json.push('\n');
                }
            }
            Err(e) => {
                let _ = writeln!(lines, "{name}: {e}");
                if args.json {
                    let status = if code == EX_TEMPFAIL {
                        "temporary"
                    } else {
                        "failed"
                    };
                    let v = serde_json::json!({ "status": status, "error": e.to_string() });
                    let _ = writeln!(json, "{v}");
                }
            }
        }
    }
    // Neither write failing stops the mails: they are taken in already.
    let _ = std::io::stderr().lock().write_all(lines.as_bytes());
    if !json.is_empty() {
        let mut out = std::io::stdout().lock();
        out.write_all(json.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| Failure(format!("stdout: {e}")))?;
    }
    Ok(worst)
}

/// 75 over 65 over 0.
fn worse(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        EX_TEMPFAIL => 2,
        EX_DATAERR => 1,
        _ => 0,
    };
    if rank(b) > rank(a) { b } else { a }
}
