//! `deskmail outbox list | send | retry`.

use clap::Subcommand;
use jiff::Timestamp;

use super::{CmdResult, Failure};
use crate::desk::Desk;
use crate::outbound::Transport;

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Show notifications, newest first: queued, sending, sent and failed
    List {
        /// Only this status (queued, sending, sent, failed)
        #[arg(long)]
        status: Option<String>,
        /// Notifications on the page, at most
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
        /// Start after this notification: the id the page before ended with (printed with it)
        #[arg(long, value_name = "ID")]
        after: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Deliver what is due (over SMTP, or into the spool directory) and exit
    Send {
        /// Pretend it is this time (RFC 3339): retries due by then are sent now
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
    },
    /// Queue a failed notification again
    Retry {
        /// The notification's id (see `outbox list`)
        id: i64,
    },
}

pub async fn run(desk: Desk, cmd: OutboxCommand) -> CmdResult {
    match cmd {
        OutboxCommand::List {
            status,
            limit,
            after,
            json,
        } => {
            if let Some(s) = &status
                && !["queued", "sending", "sent", "failed"].contains(&s.as_str())
            {
                return Err(Failure::msg(format!(
                    "--status {s}: one of queued, sending, sent, failed"
                )));
            }
            let mut rows = desk
                .store
                .outbox(status.as_deref(), after, limit + 1)
                .await?;
            let next = crate::store::next_page(&mut rows, limit, |r| r.id);
            if json {
                let page = serde_json::json!({ "notifications": rows, "next": next });
                println!("{}", serde_json::to_string_pretty(&page)?);
                return Ok(());
            }
            println!(
                "{:>6} {:<8} {:<20} {:<14} {:<30} {:>3} ERROR",
                "ID", "STATUS", "TICKET", "EVENT", "TO", "TRY"
            );
            for r in rows {
                println!(
                    "{:>6} {:<8} {:<20} {:<14} {:<30} {:>3} {}",
                    r.id,
                    r.status,
                    r.ticket.as_deref().unwrap_or("-"),
                    r.event,
                    r.recipient,
                    r.attempts,
                    r.last_error.as_deref().unwrap_or("")
                );
            }
            if let Some(next) = next {
                eprintln!("more: --after {next}");
            }
            Ok(())
        }
        OutboxCommand::Send { now } => {
            let transport = Transport::from_settings(&desk.settings.outbound)?;
            let report = match now {
                Some(t) => {
                    let at: Timestamp = t.parse().map_err(|e| {
                        Failure::with_cause(format!("--now {t}: not an RFC 3339 time"), e)
                    })?;
                    desk.send_outbox(&transport, &move || at).await?
                }
                None => desk.send_outbox(&transport, &Timestamp::now).await?,
            };
            eprintln!(
                "outbox: {} sent, {} to retry, {} failed ({})",
                report.sent,
                report.retrying,
                report.failed,
                transport.describe()
            );
            Ok(())
        }
        OutboxCommand::Retry { id } => {
            if desk.store.retry_failed(id, Timestamp::now()).await? {
                println!("notification {id} queued again");
                Ok(())
            } else {
                Err(Failure::msg(format!("no failed notification with id {id}")))
            }
        }
    }
}
