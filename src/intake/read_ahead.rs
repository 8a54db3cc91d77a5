//! The thread that reads mails ahead: it does the work that needs no database (parsing,
//! classifying, extracting, packing the bytes to store) a group ahead of the commits, on the
//! CPUs the database work does not use, and hands the mails over in blocks.

use tokio::sync::mpsc;

use super::{Ack, Arrival, Arrivals, BLOCK_BYTES, Desks};
use crate::desk::Incoming;

/// Mails handed over together, each with its acknowledgement.
pub(super) type Block = Vec<(Incoming, Ack)>;

/// Starts the thread. One block waits while the next is read: enough to keep the database
/// busy (no slower than two, side by side), and less mail in memory when mails are large.
pub(super) fn start(
    desks: Desks,
    arrivals: Arrivals,
    block: usize,
    dry_run: bool,
) -> (mpsc::Receiver<Block>, std::thread::JoinHandle<()>) {
    let (send, blocks) = mpsc::channel::<Block>(1);
    let helper = std::thread::spawn(move || {
        crate::affinity::leave_the_pinned_cpu();
        let mut arrivals = arrivals;
        let mut held = Vec::new().into_iter();
        let mut group: Block = Vec::new();
        let mut bytes = 0;
        while let Some(next) = pull(&mut arrivals, &mut held, group.is_empty()) {
            let arrival = match next {
                Pulled::Mail(a) => *a,
                Pulled::NoneYet => {
                    // Nothing more has arrived: what is read goes on now.
                    if send.blocking_send(std::mem::take(&mut group)).is_err() {
                        return;
                    }
                    bytes = 0;
                    continue;
                }
            };
            let desk = desks.borrow().clone();
            bytes += arrival.raw.len();
            let mut incoming = Incoming {
                whole: arrival.whole,
                // A dry run stores nothing; a mail longer than a piece is packed piece by
                // piece as it is stored (store/pieces.rs).
                packed: (!dry_run && arrival.raw.len() <= crate::store::PIECE)
                    .then(|| crate::store::pack(&arrival.raw)),
                raw: arrival.raw,
                mailbox: arrival.mailbox,
                origin: arrival.origin,
                fence: arrival.fence,
                reading: None,
            };
            incoming.reading = Some(Box::new(crate::inbound::read_ahead(
                &incoming.raw,
                incoming.extent(),
                &desk.reader,
                &desk.settings.directory,
                &desk.outbound.key,
            )));
            group.push((incoming, arrival.ack));
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
    (blocks, helper)
}

enum Pulled {
    Mail(Box<Arrival>),
    /// No mail is waiting now (only said while some are read and not handed over).
    NoneYet,
}

/// The next mail: of the batch in hand (`held`), else of the next one; `None` at the end.
fn pull(
    arrivals: &mut Arrivals,
    held: &mut std::vec::IntoIter<Arrival>,
    nothing_read: bool,
) -> Option<Pulled> {
    loop {
        if let Some(a) = held.next() {
            return Some(Pulled::Mail(Box::new(a)));
        }
        let batch = match arrivals {
            Arrivals::Listed(list) => return list.next().map(|a| Pulled::Mail(Box::new(a))),
            Arrivals::Streamed(stream) => match stream.try_recv() {
                Ok(batch) => batch,
                Err(mpsc::error::TryRecvError::Empty) if !nothing_read => {
                    return Some(Pulled::NoneYet);
                }
                Err(mpsc::error::TryRecvError::Empty) => stream.blocking_recv()?,
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
            },
        };
        *held = batch.into_iter();
    }
}
