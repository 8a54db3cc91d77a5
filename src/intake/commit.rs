//! Groups of mails committed, one transaction at a time or in lanes, and each mail
//! acknowledged in the order the mails came, once its group's commit is on disk.

use std::collections::VecDeque;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::read_ahead::Block;
use super::{Ack, Desks, Options};
use crate::desk::{Incoming, IngestError, MailReport, on_disk};

/// Groups committed while earlier ones wait for the disk, at most.
const UNSETTLED: usize = 64;

type Results = Vec<Result<MailReport, IngestError>>;

fn acknowledge(acks: Vec<Ack>, results: Results) {
    for (ack, result) in acks.into_iter().zip(results) {
        ack(&result);
    }
}

/// One transaction at a time, `batch` mails each. A group is acknowledged once its commit is
/// on disk; the next groups are committed meanwhile (a bounded number of them).
pub(super) async fn in_turn(desks: &Desks, mut blocks: mpsc::Receiver<Block>, options: &Options) {
    let mut unsettled = futures_util::stream::FuturesOrdered::new();
    loop {
        tokio::select! {
            biased;
            Some((acks, results)) = unsettled.next(), if !unsettled.is_empty() => {
                acknowledge(acks, results);
            }
            block = blocks.recv(), if unsettled.len() < UNSETTLED => {
                let Some(block) = block else { break };
                let desk = desks.borrow().clone();
                let mut block = block.into_iter();
                loop {
                    let (mails, acks): (Vec<Incoming>, Vec<Ack>) =
                        block.by_ref().take(options.batch).unzip();
                    if mails.is_empty() {
                        break;
                    }
                    let (results, durable) = desk
                        .ingest_unsynced(&mails, options.now(), options.dry_run)
                        .await;
                    unsettled.push_back(async move {
                        let synced = durable.wait().await;
                        (acks, on_disk(results, synced))
                    });
                }
            }
        }
    }
    while let Some((acks, results)) = unsettled.next().await {
        acknowledge(acks, results);
    }
}

/// `n` transactions at a time, in lanes: the mails of one ticket (see
/// `inbound::partition_key`) always go to the same lane, which takes them in order, so two
/// transactions never wait for each other's ticket. A lane starts its next transaction, with
/// up to `batch` of the mails waiting for it, as soon as its last one is committed: no lane
/// waits for the slowest. Mails are acknowledged in their order, each once it is committed.
pub(super) async fn in_lanes(desks: &Desks, mut blocks: mpsc::Receiver<Block>, options: &Options) {
    use std::hash::{Hash, Hasher};

    let (n, batch) = (options.parallel, options.batch);
    // Mails waiting, by lane, each with its place in the input.
    let mut lanes: Vec<VecDeque<(usize, Incoming)>> = (0..n).map(|_| VecDeque::new()).collect();
    let mut busy = vec![false; n];
    // From the first mail not acknowledged: acknowledgements, and results as they come.
    let mut acks: VecDeque<Ack> = VecDeque::new();
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
            let desk = desks.borrow().clone();
            running.push(async move {
                let done = desk.ingest(&mails, options.now(), options.dry_run).await;
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
            block = blocks.recv(), if open && waiting < n * batch && waiting_bytes < 4 * super::BLOCK_BYTES => match block {
                Some(block) => {
                    let desk = desks.borrow().clone();
                    for (mail, ack) in block {
                        let key = match &mail.reading {
                            Some(r) => crate::inbound::partition_key(r),
                            None => crate::inbound::partition_key(&crate::inbound::read(
                                &mail.raw,
                                mail.extent(),
                                &desk.reader,
                                &desk.settings.directory,
                                &desk.outbound.key,
                            )),
                        };
                        let mut h = std::collections::hash_map::DefaultHasher::new();
                        key.hash(&mut h);
                        lanes[(h.finish() % n as u64) as usize].push_back((next, mail));
                        acks.push_back(ack);
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
                let ready_acks: Vec<Ack> = acks.drain(..ready).collect();
                let ready_results: Results = results.drain(..ready).flatten().collect();
                first += ready;
                acknowledge(ready_acks, ready_results);
            }
        }
    }
}
