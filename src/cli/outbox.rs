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
        #[arg(long, default_value_t = 50)]
        limit: i64,
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
            json,
        } => {
            if let Some(s) = &status
                && !["queued", "sending", "sent", "failed"].contains(&s.as_str())
            {
                return Err(Failure(format!(
                    "--status {s}: one of queued, sending, sent, failed"
                )));
            }
            let rows = desk.store.outbox(status.as_deref(), limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
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
            Ok(())
        }
        OutboxCommand::Send { now } => {
            let transport = Transport::from_settings(&desk.settings.outbound)?;
            let report = match now {
                Some(t) => {
                    let at: Timestamp = t
                        .parse()
                        .map_err(|e| Failure(format!("--now {t}: not an RFC 3339 time: {e}")))?;
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
                Err(Failure(format!("no failed notification with id {id}")))
            }
        }
    }
}
