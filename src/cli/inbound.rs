//! `deskmail inbound list | show | retry`: the mails deskmail took in, what became of each, and
//! applying a failed one again.

use clap::Subcommand;
use jiff::Timestamp;

use super::{CmdResult, Failure};
use crate::desk::Desk;

#[derive(Debug, Subcommand)]
pub enum InboundCommand {
    /// Show mails taken in, newest first
    List {
        /// Only those that could not be applied (status failed)
        #[arg(long)]
        failed: bool,
        /// Only this status (applied, refused, recorded, failed)
        #[arg(long, conflicts_with = "failed")]
        status: Option<String>,
        /// Mails on the page, at most
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
        /// Start after this mail: the id the page before ended with (printed with it)
        #[arg(long, value_name = "ID")]
        after: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Write a stored mail as it was received (RFC 5322) on stdout: the whole mail a comment
    /// points to, or only its headers for a mail kept as headers (over the size limit)
    Show {
        /// The mail's id (see `inbound list`)
        id: i64,
    },
    /// Apply a stored mail again (after fixing what made it fail)
    Retry {
        /// The mail's id (see `inbound list`)
        id: i64,
    },
}

pub async fn run(desk: Desk, cmd: InboundCommand) -> CmdResult {
    match cmd {
        InboundCommand::List {
            failed,
            status,
            limit,
            after,
            json,
        } => {
            let status = if failed {
                Some("failed".to_string())
            } else {
                status
            };
            if let Some(s) = &status
                && !["applied", "refused", "recorded", "failed"].contains(&s.as_str())
            {
                return Err(Failure::msg(format!(
                    "--status {s}: one of applied, refused, recorded, failed"
                )));
            }
            let mut rows = desk
                .store
                .inbound(status.as_deref(), after, limit + 1)
                .await?;
            let next = crate::store::next_page(&mut rows, limit, |r| r.id);
            if json {
                let page = serde_json::json!({ "mails": rows, "next": next });
                println!("{}", serde_json::to_string_pretty(&page)?);
                return Ok(());
            }
            println!(
                "{:>6} {:<9} {:<10} {:<20} {:<28} REASON",
                "ID", "STATUS", "CLASS", "TICKET", "FROM"
            );
            for r in rows {
                println!(
                    "{:>6} {:<9} {:<10} {:<20} {:<28} {}",
                    r.id,
                    r.status,
                    r.class.as_deref().unwrap_or("-"),
                    r.ticket.as_deref().unwrap_or("-"),
                    r.sender.as_deref().unwrap_or("-"),
                    r.reason.as_deref().unwrap_or("")
                );
            }
            if let Some(next) = next {
                eprintln!("more: --after {next}");
            }
            Ok(())
        }
        InboundCommand::Show { id } => {
            use std::io::Write as _;
            let Some(stored) = desk.store.stored_mail(id).await? else {
                return Err(Failure::msg(format!("no stored mail {id}")));
            };
            if stored.headers_only {
                eprintln!("mail {id} was over the size limit: only its headers were kept");
            }
            let mut out = std::io::stdout().lock();
            out.write_all(&stored.raw)
                .and_then(|()| out.flush())
                .map_err(|e| Failure::with_cause("stdout", e))?;
            Ok(())
        }
        InboundCommand::Retry { id } => match desk.retry_inbound(id, Timestamp::now()).await? {
            None => Err(Failure::msg(format!("no stored mail {id}"))),
            Some(Ok(report)) => {
                println!("{}", report.line());
                Ok(())
            }
            Some(Err(e)) => Err(e.into()),
        },
    }
}
