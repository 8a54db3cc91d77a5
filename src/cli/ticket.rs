//! `deskmail ticket create | act | list | show | actions`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::json;

use super::{CmdResult, Failure};
use crate::desk::{CreateRequest, Desk, NewAttachment, Outcome, TicketView};
use crate::store::{Page, TicketFilter};
use crate::workflow::{Actor, Intent, Proof, Rejection, Ticket};

#[derive(Debug, Subcommand)]
pub enum TicketCommand {
    /// Open a ticket as a customer, partner or agent; prints the new ticket's ref
    Create {
        /// Who opens it (an address in the directory)
        #[arg(long = "as", value_name = "EMAIL")]
        as_: String,
        #[arg(long)]
        subject: String,
        /// The request's text (the ticket's first comment)
        #[arg(long)]
        text: String,
        /// The receiving address, for address-driven rules (e.g. support+gdpr-delete@...)
        #[arg(long, value_name = "ADDRESS")]
        to: Option<String>,
        /// A field such as service=Email or request_type="Bug report" (repeatable)
        #[arg(long = "field", value_name = "KEY=VALUE", value_parser = parse_field)]
        fields: Vec<(String, String)>,
        /// A file to attach to the request (repeatable)
        #[arg(long = "attach", value_name = "FILE")]
        attach: Vec<PathBuf>,
        /// Print the ticket as JSON instead of its ref
        #[arg(long)]
        json: bool,
    },
    /// Act on a ticket through the workflow, exactly as a reply by mail would
    Act {
        /// The ticket's ref, e.g. SUP-20261122-0042
        #[arg(value_name = "REF")]
        reference: String,
        #[arg(long = "as", value_name = "EMAIL")]
        as_: String,
        /// The action's name or alias ("To Customer", "an Kunde", comment, "Assign me", ...)
        #[arg(long)]
        action: String,
        /// The action's note; with --action comment, the comment itself
        #[arg(long)]
        comment: Option<String>,
        /// Make the comment visible to agents only
        #[arg(long)]
        internal: bool,
        /// A field such as satisfaction=4 (repeatable)
        #[arg(long = "field", value_name = "KEY=VALUE", value_parser = parse_field)]
        fields: Vec<(String, String)>,
        /// A file to attach to the comment (repeatable)
        #[arg(long = "attach", value_name = "FILE")]
        attach: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// List tickets, most recently updated first
    List(ListArgs),
    /// Show a ticket with its comments and history
    Show {
        #[arg(value_name = "REF")]
        reference: String,
        /// Show only what this person may see (refused if they may not see the ticket)
        #[arg(long = "as", value_name = "EMAIL")]
        as_: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// What may this person do on this ticket now?
    Actions {
        #[arg(value_name = "REF")]
        reference: String,
        #[arg(long = "as", value_name = "EMAIL")]
        as_: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only tickets this person may see
    #[arg(long = "as", value_name = "EMAIL")]
    as_: Option<String>,
    #[arg(long = "ref", value_name = "REF")]
    reference: Option<String>,
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    organisation: Option<String>,
    #[arg(long, value_name = "EMAIL")]
    requester: Option<String>,
    #[arg(long)]
    service: Option<String>,
    /// Created on or after this day (YYYY-MM-DD in the reader's time zone) or time (RFC 3339)
    #[arg(long, value_name = "DATE")]
    created_from: Option<String>,
    /// Created on or before this day
    #[arg(long, value_name = "DATE")]
    created_to: Option<String>,
    /// Closed on or after this day
    #[arg(long, value_name = "DATE")]
    closed_from: Option<String>,
    /// Closed on or before this day
    #[arg(long, value_name = "DATE")]
    closed_to: Option<String>,
    /// Tickets on the page, at most (newest first)
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    limit: i64,
    /// Start after this ticket: the ref the page before ended with (printed with it)
    #[arg(long, value_name = "REF")]
    after: Option<String>,
    /// Every matching ticket, page after page (for an export)
    #[arg(long, conflicts_with = "limit")]
    all: bool,
    #[arg(long)]
    json: bool,
}

/// Reads `--attach` files; the content type follows the file name's extension.
fn read_attachments(paths: &[PathBuf]) -> Result<Vec<NewAttachment>, Failure> {
    paths
        .iter()
        .map(|p| {
            let content = std::fs::read(p)
                .map_err(|e| Failure::with_cause(format!("--attach {}", p.display()), e))?;
            let filename = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| "attachment".into());
            Ok(NewAttachment {
                content_type: content_type_for(&filename).to_string(),
                filename,
                content: content.into(),
            })
        })
        .collect()
}

/// A content type from a file name's extension.
pub fn content_type_for(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "zip" => "application/zip",
        "json" => "application/json",
        "eml" => "message/rfc822",
        _ => "application/octet-stream",
    }
}

fn parse_field(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("\"{s}\" is not KEY=VALUE"))?;
    if k.trim().is_empty() {
        return Err(format!("\"{s}\" has no key"));
    }
    Ok((k.trim().to_string(), v.trim().to_string()))
}

/// A person acting from the command line is verified: the operator vouches for them.
fn actor(desk: &Desk, address: &str) -> Result<Actor, Failure> {
    Ok(Actor {
        person: desk.person(address)?,
        proof: crate::workflow::Proof::Cli,
    })
}

pub async fn run(desk: Desk, cmd: TicketCommand) -> CmdResult {
    let now = Timestamp::now();
    match cmd {
        TicketCommand::Create {
            as_,
            subject,
            text,
            to,
            fields,
            attach,
            json,
        } => {
            let actor = actor(&desk, &as_)?;
            let req = CreateRequest {
                subject,
                text,
                fields: fields.into_iter().collect::<BTreeMap<_, _>>(),
                to_address: to,
                source: "cli".into(),
                attachments: read_attachments(&attach)?,
                thread_root: None,
            };
            let outcome = desk.create(&actor, req, now).await?;
            report(&desk, &actor, outcome, json).await
        }
        TicketCommand::Act {
            reference,
            as_,
            action,
            comment,
            internal,
            fields,
            attach,
            json,
        } => {
            let actor = actor(&desk, &as_)?;
            let attachments = read_attachments(&attach)?;
            let intent = Intent::Act {
                action,
                comment,
                internal,
                fields: fields.into_iter().collect(),
            };
            let outcome = desk
                .act(&reference, &actor, &intent, &attachments, now)
                .await?;
            report(&desk, &actor, outcome, json).await
        }
        TicketCommand::Show {
            reference,
            as_,
            json,
        } => {
            let reader = as_.as_deref().map(|a| actor(&desk, a)).transpose()?;
            let view = desk.show(&reference, reader.as_ref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&view_json(&view))?);
            } else {
                print_view(&desk, &view, reader.as_ref());
            }
            Ok(())
        }
        TicketCommand::Actions {
            reference,
            as_,
            json,
        } => {
            let actor = actor(&desk, &as_)?;
            let allowed = desk.allowed(&reference, &actor).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&allowed)?);
            } else {
                for a in allowed {
                    let mut needs = Vec::new();
                    if a.requires_comment {
                        needs.push("a comment".to_string());
                    }
                    needs.extend(a.required_fields.iter().map(|f| format!("field {f}")));
                    if needs.is_empty() {
                        println!("{}", a.name);
                    } else {
                        println!("{} (needs {})", a.name, needs.join(", "));
                    }
                }
            }
            Ok(())
        }
        TicketCommand::List(args) => list(&desk, args).await,
    }
}

/// Prints what an action did; with `--json`, the ticket as the actor may see it.
async fn report(desk: &Desk, actor: &Actor, outcome: Outcome, json: bool) -> CmdResult {
    match outcome {
        Outcome::Applied {
            reference, effects, ..
        } => {
            if json {
                let view = desk.show(&reference, Some(actor)).await?;
                println!("{}", serde_json::to_string_pretty(&view_json(&view))?);
            } else {
                println!("{reference}");
                match &effects.previous_status {
                    Some(from) => eprintln!(
                        "{reference}: {} ({from} → {})",
                        effects.action, effects.ticket.status
                    ),
                    None => eprintln!(
                        "{reference}: {} ({})",
                        effects.action, effects.ticket.status
                    ),
                }
            }
            Ok(())
        }
        Outcome::FollowedUp { closed, reference } => {
            println!("{reference}");
            eprintln!("{closed} is closed: the reply opened {reference}, which links it");
            Ok(())
        }
        Outcome::Rejected(r) => Err(Failure::msg(rejection_text(&r))),
    }
}

/// The refusal as the CLI prints it: the reason, then the allowed actions.
pub fn rejection_text(r: &Rejection) -> String {
    let allowed = if r.allowed.is_empty() {
        "none".to_string()
    } else {
        r.allowed_names().join(", ")
    };
    format!("refused: {}\nallowed actions: {allowed}", r.reason)
}

fn time_zone_of(desk: &Desk, reader: Option<&Actor>) -> TimeZone {
    let name = reader
        .map(|a| a.person.time_zone.clone())
        .unwrap_or_else(|| desk.settings.directory.helpdesk.time_zone.clone());
    TimeZone::get(&name).unwrap_or(TimeZone::UTC)
}

fn local(t: Timestamp, tz: &TimeZone) -> String {
    crate::outbound::compose::local_time_in(t, tz, "en")
}

fn view_json(v: &TicketView) -> serde_json::Value {
    let t = &v.ticket;
    json!({
        "ref": t.reference,
        "status": t.status,
        "subject": t.subject,
        "organisation": t.organisation,
        "requester": t.requester,
        "assignee": t.assignee,
        "customer_it_assignee": t.customer_it_assignee,
        "involved_partners": t.involved_partners,
        "waiting_on": t.waiting_on.to_string(),
        "source": t.source,
        "system": t.system,
        "workflow": t.workflow,
        "fields": t.fields,
        "watchers": t.watchers,
        "linked_to": t.linked_to,
        "created_at": t.created_at.to_string(),
        "updated_at": t.updated_at.to_string(),
        "closed_at": t.closed_at.map(|c| c.to_string()),
        "comments": v.comments.iter().map(|c| json!({
            "author": c.author,
            "role": c.role,
            "text": c.text,
            "visibility": c.visibility,
            "verified_by": c.verified_by,
            "created_at": c.created_at.to_string(),
        })).collect::<Vec<_>>(),
        "history": v.history.iter().map(|h| json!({
            "actor": h.actor,
            "action": h.action,
            "kind": h.kind,
            "detail": h.detail,
            "created_at": h.created_at.to_string(),
        })).collect::<Vec<_>>(),
    })
}

fn print_view(desk: &Desk, v: &TicketView, reader: Option<&Actor>) {
    let tz = time_zone_of(desk, reader);
    let t = &v.ticket;
    println!("{}  {}", t.reference, t.subject);
    println!("  status:       {} (waiting on {})", t.status, t.waiting_on);
    println!("  requester:    {}", t.requester);
    println!(
        "  organisation: {}",
        t.organisation.as_deref().unwrap_or("-")
    );
    println!("  assignee:     {}", t.assignee.as_deref().unwrap_or("-"));
    if !t.involved_partners.is_empty() {
        println!("  partners:     {}", t.involved_partners.join(", "));
    }
    for (k, val) in &t.fields {
        println!("  {k}: {val}");
    }
    println!("  source:       {} ({})", t.source, t.workflow);
    println!("  created:      {}", local(t.created_at, &tz));
    println!("  updated:      {}", local(t.updated_at, &tz));
    if let Some(c) = t.closed_at {
        println!("  closed:       {}", local(c, &tz));
    }
    println!();
    for c in &v.comments {
        let internal = if c.visibility == "internal" {
            " [internal]"
        } else {
            ""
        };
        // A From address anyone can write is said to be one.
        let unverified = if c.verified_by.as_deref() == Some(Proof::Unverified.as_str()) {
            " [unverified sender]"
        } else {
            ""
        };
        println!(
            "--- {} ({}) {}{internal}{unverified}",
            c.author,
            c.role,
            local(c.created_at, &tz)
        );
        println!("{}", c.text);
    }
    println!();
    for h in &v.history {
        println!(
            "{}  {:<8} {}  [{}]",
            local(h.created_at, &tz),
            h.kind,
            h.detail,
            h.actor
        );
    }
}

/// A day (start of it in `tz`) or an RFC 3339 time.
fn parse_when(s: &str, tz: &TimeZone, end_of_day: bool) -> Result<Timestamp, Failure> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let d: Date = s.parse().map_err(|_| {
        Failure::msg(format!(
            "\"{s}\" is neither a date (YYYY-MM-DD) nor an RFC 3339 time"
        ))
    })?;
    let d = if end_of_day { d.tomorrow()? } else { d };
    Ok(d.to_zoned(tz.clone())?.timestamp())
}

async fn list(desk: &Desk, a: ListArgs) -> CmdResult {
    use std::io::Write;
    let reader = a.as_.as_deref().map(|x| actor(desk, x)).transpose()?;
    let tz = time_zone_of(desk, reader.as_ref());
    let when = |s: &Option<String>, end| s.as_deref().map(|s| parse_when(s, &tz, end)).transpose();
    let filter = TicketFilter {
        reference: a.reference,
        status: a.status,
        organisation: a.organisation,
        requester: a.requester,
        service: a.service,
        created_from: when(&a.created_from, false)?,
        created_to: when(&a.created_to, true)?,
        closed_from: when(&a.closed_from, false)?,
        closed_to: when(&a.closed_to, true)?,
        visible_to: None,
    };
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let mut rows = ListOutput::start(&mut out, a.json, tz)?;
    // Page by page: what is printed is never more than a page in memory, however many match.
    let mut after = a.after;
    let next = loop {
        let limit = if a.all { 500 } else { a.limit };
        let page = desk
            .list(
                &filter,
                reader.as_ref(),
                Page {
                    after: after.as_deref(),
                    limit,
                },
            )
            .await?;
        for t in &page.tickets {
            rows.row(&mut out, t)?;
        }
        match page.next {
            Some(next) if a.all => after = Some(next),
            next => break next,
        }
    };
    rows.end(&mut out, next.as_deref())?;
    out.flush()?;
    if !a.json
        && let Some(next) = next
    {
        eprintln!("more: --after {next}");
    }
    Ok(())
}

/// `ticket list` as it prints: a table, or JSON (`{"tickets": [...], "next": ref or null}`)
/// written row by row.
struct ListOutput {
    json: bool,
    tz: TimeZone,
    rows: usize,
}

impl ListOutput {
    fn start(out: &mut impl std::io::Write, json: bool, tz: TimeZone) -> std::io::Result<Self> {
        if json {
            write!(out, "{{\"tickets\": [")?;
        } else {
            writeln!(
                out,
                "{:<20} {:<10} {:<26} {:<22} {:<17} {:<17} SUBJECT",
                "ID", "ENTITY", "SYSTEM", "STATE", "CREATED", "LAST UPDATE"
            )?;
        }
        Ok(ListOutput { json, tz, rows: 0 })
    }

    fn row(&mut self, out: &mut impl std::io::Write, t: &Ticket) -> Result<(), Failure> {
        self.rows += 1;
        if self.json {
            let sep = if self.rows == 1 { "\n  " } else { ",\n  " };
            write!(out, "{sep}{}", serde_json::to_string(&list_json(t))?)?;
            return Ok(());
        }
        let short = |ts: Timestamp| {
            ts.to_zoned(self.tz.clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        };
        writeln!(
            out,
            "{:<20} {:<10} {:<26} {:<22} {:<17} {:<17} {}",
            t.reference,
            t.organisation.as_deref().unwrap_or("-"),
            t.system.as_deref().unwrap_or(&t.source),
            t.status,
            short(t.created_at),
            short(t.updated_at),
            t.subject
        )?;
        Ok(())
    }

    fn end(&self, out: &mut impl std::io::Write, next: Option<&str>) -> Result<(), Failure> {
        if self.json {
            let tail = if self.rows == 0 { "" } else { "\n" };
            writeln!(
                out,
                "{tail}], \"next\": {}}}",
                serde_json::to_string(&next)?
            )?;
        }
        Ok(())
    }
}

fn list_json(t: &Ticket) -> serde_json::Value {
    json!({
        "ref": t.reference,
        "status": t.status,
        "subject": t.subject,
        "organisation": t.organisation,
        "system": t.system.clone().unwrap_or_else(|| t.source.clone()),
        "requester": t.requester,
        "service": t.fields.get("service"),
        "waiting_on": t.waiting_on.to_string(),
        "created_at": t.created_at.to_string(),
        "updated_at": t.updated_at.to_string(),
        "closed_at": t.closed_at.map(|c| c.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_show_in_the_readers_zone() {
        // Seed 004: created at 23:30 UTC on 21 Nov, numbered 20261122 in Berlin, shown to a
        // reader in New York as 18:30 on 21 Nov.
        let t: Timestamp = "2026-11-21T23:30:00Z".parse().unwrap();
        let ny = TimeZone::get("America/New_York").unwrap();
        assert_eq!(local(t, &ny), "2026-11-21 18:30 EST");
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(local(t, &berlin), "2026-11-22 00:30 CET");
    }

    #[test]
    fn plain_dates_are_days_in_the_readers_zone() {
        let ny = TimeZone::get("America/New_York").unwrap();
        let from = parse_when("2026-11-21", &ny, false).unwrap();
        let to = parse_when("2026-11-21", &ny, true).unwrap();
        assert_eq!(from.to_string(), "2026-11-21T05:00:00Z");
        assert_eq!(to.to_string(), "2026-11-22T05:00:00Z");
        assert!(parse_when("21.11.2026", &ny, false).is_err());
    }
}
