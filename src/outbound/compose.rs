//! From the core's notices to one planned mail per address, and each mail's template context.
//! Pure: the desk supplies what the store knows (thread, failing addresses, recent counts).

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::directory::{Access, Directory, Party, Person};
use crate::recipients;
use crate::workflow::{
    Actor, AllowedAction, Effects, Event, StateKind, Ticket, Turn, Visibility, Workflow,
};

use super::render::{
    ActionLink, ActorCtx, AskCtx, AttachmentCtx, HelpdeskCtx, MailContext, RecipientCtx,
    RefusalCtx, TicketCtx,
};

/// One mail to write: to whom, about what, and as whom they would act.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub address: String,
    pub event: String,
    /// Whether the action's comment goes into this mail (internal ones only reach agents).
    pub include_comment: bool,
    /// The recipient as the workflow sees them (a group address acts as its group).
    pub person: Option<Person>,
}

/// The person an address stands for: a listed person, or the side a group address speaks for
/// (the support team and agent groups as agents, a partner's group as that partner, an
/// organisation's customer group as a power user of it).
pub fn recipient_person(dir: &Directory, address: &str) -> Option<Person> {
    if let Some(p) = dir.person(address) {
        return Some(p);
    }
    let a = address.to_lowercase();
    let person = |party: Party| Person {
        address: a.clone(),
        name: String::new(),
        locale: dir.helpdesk.locale.clone(),
        time_zone: dir.helpdesk.time_zone.clone(),
        party,
    };
    if a == dir.helpdesk.team_address || dir.groups.iter().any(|g| g.address == a) {
        return Some(person(Party::Agent));
    }
    if let Some(p) = dir.partners.iter().find(|p| p.support_group.contains(&a)) {
        let mut out = person(Party::Partner {
            partner: p.name.clone(),
        });
        if let Some(m) = p.members.first() {
            out.locale = m.locale.clone();
            out.time_zone = m.time_zone.clone();
        }
        return Some(out);
    }
    if let Some(o) = dir
        .organisations
        .iter()
        .find(|o| o.support_group.contains(&a))
    {
        let mut out = person(Party::Customer {
            organisation: o.name.clone(),
            access: Access::Power,
            customer_it: false,
        });
        out.locale = o.locale.clone();
        out.time_zone = o.time_zone.clone();
        return Some(out);
    }
    None
}

/// May this recipient read internal comments?
fn agent_side(p: &Option<Person>) -> bool {
    matches!(
        p,
        Some(Person {
            party: Party::Agent,
            ..
        })
    )
}

/// One mail per address: the first notice that names an address decides its event. The author
/// of the change is left out unless `mail_author`, except for acknowledgements (`created` to
/// the requester) and `not_done` notices, which always reach their author.
pub fn plan(dir: &Directory, effects: &Effects, author: &str, mail_author: bool) -> Vec<Planned> {
    let mut out: Vec<Planned> = Vec::new();
    let internal = effects
        .comment
        .as_ref()
        .is_some_and(|c| c.visibility == Visibility::Internal);
    for notice in &effects.notices {
        for address in recipients::addresses(dir, &effects.ticket, &notice.audience) {
            if out.iter().any(|p| p.address == address) {
                continue;
            }
            let always = matches!(notice.event, Event::NotDone)
                || (notice.event == Event::Created && address == effects.ticket.requester);
            if address == author && !mail_author && !always {
                continue;
            }
            let person = recipient_person(dir, &address);
            let include_comment = effects.comment.is_some() && (!internal || agent_side(&person));
            out.push(Planned {
                event: notice.event.as_str().to_string(),
                address,
                include_comment,
                person,
            });
        }
    }
    out
}

/// Percent-encoding for mailto: parts (RFC 6068).
pub fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
    out
}

/// A reply link with the command in the subject: `[To Customer] Re: [REF] subject`.
pub fn mailto(reply_to: &str, reference: &str, subject: &str, action: &str) -> String {
    let subject = format!("[{action}] Re: [{reference}] {subject}");
    format!("mailto:{reply_to}?subject={}", pct(&subject))
}

/// A time in a reader's zone, in their locale's usual form.
pub fn local_time(t: Timestamp, time_zone: &str, locale: &str) -> String {
    local_time_in(
        t,
        &TimeZone::get(time_zone).unwrap_or(TimeZone::UTC),
        locale,
    )
}

/// [`local_time`] with the zone already looked up.
pub fn local_time_in(t: Timestamp, tz: &TimeZone, locale: &str) -> String {
    let z = t.to_zoned(tz.clone());
    match locale {
        "de" => z.strftime("%d.%m.%Y %H:%M %Z").to_string(),
        _ => z.strftime("%Y-%m-%d %H:%M %Z").to_string(),
    }
}

/// A size for people, in the binary units it is counted in: `512 B`, `4.9 KiB`, `1.0 MiB`
/// (1,048,576 bytes). The same in every locale: KiB and MiB are no English words.
pub fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    // From 1023.95 on, one decimal rounds to "1024.0": that is the next unit's 1.0.
    while v >= 1023.95 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// For `resolved`: how the recipient confirms (and whether with a satisfaction level) or reopens.
pub fn ask(wf: &Workflow, ticket: &Ticket, allowed: &[AllowedAction]) -> AskCtx {
    let kind = |s: &str| wf.states.iter().find(|st| st.name == s).map(|st| st.kind);
    let mut ask = AskCtx::default();
    for a in allowed {
        let Some(t) = wf.transitions.iter().find(|t| t.name == a.name) else {
            continue;
        };
        let Some(to) = t.to.as_deref() else { continue };
        match kind(to) {
            Some(StateKind::Closed) if ask.close.is_none() => {
                ask.close = Some(a.name.clone());
                ask.satisfaction = a.required_fields.iter().any(|f| f == "satisfaction");
            }
            Some(StateKind::Open | StateKind::Waiting)
                if ask.reopen.is_none() && kind(&ticket.status) == Some(StateKind::Resolved) =>
            {
                ask.reopen = Some(a.name.clone());
            }
            _ => {}
        }
    }
    ask
}

/// Bytes of a comment a notification carries at most: a mail is meant to be read (256 KiB are
/// some 40,000 words), and its text and HTML parts, quoted-printable, take up to six times the
/// comment. The rest is on the ticket, and the mail says so.
pub fn comment_budget(max_message_bytes: u64) -> usize {
    const MOST: usize = 256 * 1024;
    usize::try_from(max_message_bytes / 8).map_or(MOST, |b| b.min(MOST))
}

/// What a notification's text takes at most besides its attachments, by estimate: the comment
/// nine times over (HTML escaping and quoted-printable in both parts), templates and headers.
/// [`shrink`] is the remedy when a mail comes out larger all the same.
pub fn text_bound(comment_bytes: usize) -> u64 {
    (comment_bytes as u64) * 9 + 64 * 1024
}

/// Which attachments go along: each at most `max_attachment`, in their order while the mail
/// stays within `room` bytes (base64 takes 4/3 and a line end per 76 characters).
pub fn fitting(sizes: impl Iterator<Item = u64>, max_attachment: u64, room: u64) -> Vec<bool> {
    let mut left = room;
    sizes
        .map(|size| {
            let encoded = size.div_ceil(3) * 4 * 78 / 76 + 512;
            let fits = size <= max_attachment && encoded <= left;
            if fits {
                left -= encoded;
            }
            fits
        })
        .collect()
}

/// Files a shrunk notification still lists by name.
const LISTED_WHEN_SHRUNK: usize = 20;

/// A notification's context made smaller, when the mail came out too large: no file attached,
/// only the first [`LISTED_WHEN_SHRUNK`] listed, the comment cut to a tenth.
pub fn shrink(ctx: &mut MailContext) {
    for a in &mut ctx.attachments {
        a.attached = false;
    }
    let files = ctx.attachments.len();
    if files > LISTED_WHEN_SHRUNK {
        ctx.attachments.truncate(LISTED_WHEN_SHRUNK);
        ctx.attachments.push(AttachmentCtx {
            filename: format!("… and {} more", files - LISTED_WHEN_SHRUNK),
            size_text: "see the ticket".into(),
            attached: true,
        });
    }
    if let Some(c) = ctx.comment.take() {
        let kept = crate::inbound::bounds::cut_text(&c, c.len() / 10);
        let rest = c.len() - kept.len();
        ctx.comment_rest = Some(size_text(rest as u64));
        ctx.comment = Some(kept.to_string());
    }
}

/// What the template of one planned mail gets.
pub struct ContextInput<'a> {
    pub dir: &'a Directory,
    pub effects: &'a Effects,
    pub planned: &'a Planned,
    pub actor: &'a Person,
    /// The actor could not be verified: agents are told so.
    pub unverified: bool,
    /// Bytes of the comment this mail carries at most (see [`comment_budget`]).
    pub comment_budget: usize,
    pub allowed: &'a [AllowedAction],
    pub reply_to: &'a str,
    pub ask: AskCtx,
    pub attachments: Vec<AttachmentCtx>,
    pub refusal: Option<RefusalCtx>,
    pub now: Timestamp,
    /// The workflow's comment action, which needs no link: replying is commenting.
    pub comment_action: &'a str,
}

pub fn context(i: ContextInput<'_>) -> MailContext {
    let t = &i.effects.ticket;
    let (locale, tz, name) = match &i.planned.person {
        Some(p) => (p.locale.clone(), p.time_zone.clone(), p.name.clone()),
        None => (
            i.dir.helpdesk.locale.clone(),
            i.dir.helpdesk.time_zone.clone(),
            String::new(),
        ),
    };
    // Looked up once for the three times this mail shows.
    let zone = TimeZone::get(&tz).unwrap_or(TimeZone::UTC);
    let partner = match &t.waiting_on {
        Turn::Partner(p) => Some(p.clone()),
        _ => None,
    };
    // The comment, cut to what the mail carries, and how much was left out.
    let comment = i
        .effects
        .comment
        .as_ref()
        .filter(|_| i.planned.include_comment)
        .map(|c| {
            let kept = crate::inbound::bounds::cut_text(&c.text, i.comment_budget);
            (kept, c.text.len() - kept.len())
        });
    MailContext {
        helpdesk: HelpdeskCtx {
            name: i.dir.helpdesk.name.clone(),
            address: i.dir.helpdesk.address.clone(),
        },
        ticket: TicketCtx {
            reference: t.reference.clone(),
            subject: t.subject.clone(),
            status: t.status.clone(),
            previous_status: i.effects.previous_status.clone(),
            organisation: t.organisation.clone(),
            requester: t.requester.clone(),
            partner,
            linked_to: t.linked_to.clone(),
            created: local_time_in(t.created_at, &zone, &locale),
            status_since: local_time_in(t.status_since, &zone, &locale),
        },
        event: i.planned.event.clone(),
        recipient: RecipientCtx {
            address: i.planned.address.clone(),
            name,
            locale: locale.clone(),
            is_requester: i.planned.address == t.requester,
        },
        actor: ActorCtx {
            name: if i.actor.name.is_empty() {
                i.actor.address.clone()
            } else {
                i.actor.name.clone()
            },
            address: i.actor.address.clone(),
            role: i.actor.party.role_name().to_string(),
            unverified: i.unverified && agent_side(&i.planned.person),
        },
        comment: comment.map(|(kept, _)| kept.to_string()),
        comment_rest: comment.and_then(|(_, rest)| (rest > 0).then(|| size_text(rest as u64))),
        attachments: if i.planned.include_comment {
            i.attachments
        } else {
            Vec::new()
        },
        // A plain reply is the comment: only the other actions get links.
        actions: i
            .allowed
            .iter()
            .filter(|a| a.name != i.comment_action)
            .map(|a| ActionLink {
                name: a.name.clone(),
                mailto: mailto(i.reply_to, &t.reference, &t.subject, &a.name),
                requires_comment: a.requires_comment,
            })
            .collect(),
        ask: i.ask,
        refusal: i.refusal,
        failure: None,
        when: local_time_in(i.now, &zone, &locale),
    }
}

/// The actions a recipient may take, as the workflow core says.
pub fn allowed_for(
    wf: &Workflow,
    dir: &Directory,
    ticket: &Ticket,
    person: &Option<Person>,
) -> Vec<AllowedAction> {
    match person {
        Some(p) => crate::workflow::allowed_actions(
            wf,
            dir,
            ticket,
            &Actor {
                person: p.clone(),
                proof: crate::workflow::Proof::Cli,
            },
        ),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailto_links_carry_the_command_in_the_subject() {
        let m = mailto(
            "support+r-x@helpdesk.example",
            "SUP-1",
            "Printer & fire",
            "To Customer",
        );
        assert_eq!(
            m,
            "mailto:support+r-x@helpdesk.example?subject=%5BTo%20Customer%5D%20Re%3A%20%5BSUP-1%5D%20Printer%20%26%20fire"
        );
    }

    #[test]
    fn sizes_and_times_read_well() {
        assert_eq!(size_text(512), "512 B");
        assert_eq!(size_text(1023), "1023 B");
        assert_eq!(size_text(1024), "1.0 KiB");
        assert_eq!(size_text(5000), "4.9 KiB");
        assert_eq!(size_text(1_048_575), "1.0 MiB");
        assert_eq!(size_text(1_048_576), "1.0 MiB");
        assert_eq!(size_text(1_300_000), "1.2 MiB");
        assert_eq!(size_text(10 * 1024 * 1024), "10.0 MiB");
        assert_eq!(size_text(25 * 1024 * 1024 + 1), "25.0 MiB");
        assert_eq!(size_text(3 << 30), "3.0 GiB");
        let t: Timestamp = "2026-11-21T23:30:00Z".parse().unwrap();
        assert_eq!(
            local_time(t, "America/New_York", "en"),
            "2026-11-21 18:30 EST"
        );
        assert_eq!(local_time(t, "Europe/Berlin", "de"), "22.11.2026 00:30 CET");
    }
}
