//! Rendering notifications on a thread of their own, on a CPU the database work does not use.
//!
//! `ingest` on SQLite keeps its main thread and SQLite's worker on one CPU (see `affinity`);
//! rendering, building and compressing a notification was a third of that CPU's work per mail.
//! With a `LateRenderer` (`ingest` starts one when it commits several mails at a time) the desk
//! writes the outbox row at once and hands the message to this thread; the store fills it in
//! before the commit (see the store's `late`). "Not done" notices are still rendered in place.

use std::sync::Arc;
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::outbound::compose;
use crate::outbound::message::{self, Mail};
use crate::outbound::render::{MailContext, Templates};

/// One message to make.
pub(crate) struct Job {
    pub event: String,
    pub locale: String,
    pub ctx: MailContext,
    /// Everything but the body.
    pub mail: Mail,
    /// The largest message allowed (`outbound.max_message_bytes`).
    pub max: u64,
    pub done: oneshot::Sender<Result<Vec<u8>, String>>,
}

/// The rendering thread; it ends when this is dropped.
#[derive(Debug)]
pub struct LateRenderer {
    jobs: mpsc::Sender<Job>,
}

impl LateRenderer {
    pub fn start(templates: Arc<Templates>) -> std::io::Result<LateRenderer> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("deskmail-render".into())
            .spawn(move || {
                crate::affinity::leave_the_pinned_cpu();
                for job in queue {
                    job.run(&templates);
                }
            })?;
        Ok(LateRenderer { jobs })
    }

    /// Hands a message over; gives the job back when the thread is gone.
    pub(crate) fn render(&self, job: Job) -> Result<(), Box<Job>> {
        self.jobs.send(job).map_err(|e| Box::new(e.0))
    }
}

impl Job {
    /// Renders, builds and packs the message, and sends it (or why it failed) on.
    pub(crate) fn run(self, templates: &Templates) {
        let Job {
            event,
            locale,
            mut ctx,
            mut mail,
            max,
            done,
        } = self;
        let made = make(templates, &event, &locale, &mut ctx, &mut mail, max)
            .map(|raw| crate::store::pack(&raw));
        // The transaction may be gone (dropped unfinished): nobody waits then.
        let _ = done.send(made);
    }
}

/// Renders and builds a notification within `max` bytes. The comment and the attachments were
/// fitted to it beforehand by estimate; if the mail still comes out larger (many files with long
/// names, a comment that HTML escaping swells), it is made again with no file attached, its
/// list shortened and the comment cut to a tenth; if even that is too large, it is not made.
pub(crate) fn make(
    templates: &Templates,
    event: &str,
    locale: &str,
    ctx: &mut MailContext,
    mail: &mut Mail,
    max: u64,
) -> Result<Vec<u8>, String> {
    let build = |ctx: &MailContext, mail: &mut Mail| {
        mail.body = templates
            .render(event, locale, ctx)
            .map_err(|e| e.to_string())?;
        message::build(mail).map_err(|e| e.to_string())
    };
    let raw = build(ctx, mail)?;
    if raw.len() as u64 <= max {
        return Ok(raw);
    }
    compose::shrink(ctx);
    mail.attachments.clear();
    let raw = build(ctx, mail)?;
    if raw.len() as u64 <= max {
        return Ok(raw);
    }
    Err(format!(
        "the notification would be {}, more than outbound.max_message_bytes ({})",
        compose::size_text(raw.len() as u64),
        compose::size_text(max)
    ))
}
