//! Every preset's story (tests/support/stories.rs) by real mail, once on SQLite and once on
//! PostgreSQL: `deskmail run` as a child process reads the support mailbox over IMAP from a real
//! Dovecot and sends through a real Postfix. Customers send their requests over SMTP and read the
//! acknowledgement over IMAP; everyone who acts on a ticket (customers, partners, agents) reads
//! the newest notification they or their group got about it over IMAP and answers it as a mail
//! client would. After each step the test waits until the daemon has taken the mail in and every
//! notification it queued has arrived, then checks the step's expectations.
//!
//! How a step becomes a mail:
//! - `Create`: a new mail over SMTP to the mailbox address (`to`, else support@), its fields as
//!   `Key: value` lines at the top.
//! - `Act` with the workflow's comment action: a plain reply (Re:, In-Reply-To, the notification
//!   quoted below the answer) to the notification's Reply-To address.
//! - `Act` with another action the notification offers: what clicking its action link gives: a
//!   mail to the link's address with the link's subject (`[Action] Re: [REF] ...`), the comment
//!   (and fields) as its text. The In-Reply-To header is added as well.
//! - `Act` with an action the notification does not offer (it came before the ticket moved on, or
//!   the action is not open to this person): a reply with the tag typed into the subject, the
//!   way docs/inbound-mail.md says commands are written.
//! - `See`: not a mail at all; checked with `ticket show --as` as the CLI stories do.
//!
//! Where the mail path differs from the CLI path (tests/cli_stories.rs), on purpose:
//! - A refused action by mail is not "nothing changes": the mail's comment is still added to the
//!   ticket and the sender gets a "not done" notice with the reason and the actions open to them
//!   (docs/inbound-mail.md, "What then happens"). The test checks status, turn and fields are
//!   unchanged, the comment is kept, and the notice arrives.
//! - A refused new request (a service outside the contract) gets a "refused" mail, and no
//!   ticket is opened.
//! - A reply with a command to a ticket whose closed state is final (itil-portal) is refused
//!   with a "not done" notice, and its comment opens a follow-up ticket that links the closed
//!   one and carries its fields (docs/presets.md: "Closed is final: any action on it is
//!   refused, and a reply opens a new ticket").
//!
//! Every step of the five stories is played by mail: every actor has a notification about the
//! ticket to answer by the time they act (agents through the support team's or the development
//! group's address). A step without one would need the command line; it fails instead of being
//! switched over quietly.

mod support;

use std::time::{Duration, Instant};

use deskmail::config::Settings;
use deskmail::directory::Party;
use deskmail::workflow::StateKind;
use deskmail::workflow::definition::ClosedReply;
use serde_json::Value;
use support::TestEnv;
use support::daemon::Daemon;
use support::demo::SUPPORT;
use support::mailstack::{MailStack, header, text_part};
use support::stories::{self, Expect, Step, Story, What};

const PROCESSED: &str = "deskmail/processed";
const FAILED: &str = "deskmail/failed";
/// How long any one thing (a mail taken in, a notification delivered) may take.
const WAIT: Duration = Duration::from_secs(60);

/// One notification the desk sent, as read back from its recipient's INBOX over IMAP.
struct Received {
    /// The outbox row's id: the order the desk queued its mails in.
    id: i64,
    to: String,
    event: String,
    ticket: Option<String>,
    raw: String,
}

impl Received {
    fn text(&self) -> String {
        text_part(&self.raw)
    }

    fn about(&self, reference: &str) -> bool {
        self.ticket.as_deref() == Some(reference)
    }
}

/// An action link of a notification: `mailto:ADDRESS?subject=[Name] Re: [REF] ...`.
struct Link {
    name: String,
    to: String,
    subject: String,
}

/// The action links of a notification (from its text part, where each is on its own line).
fn links(raw: &str) -> Vec<Link> {
    text_part(raw)
        .lines()
        .filter_map(|line| {
            let (_, url) = line.split_once("mailto:")?;
            let (to, query) = url.trim().split_once("?subject=")?;
            let subject = percent_decode(query);
            let name = subject.strip_prefix('[')?.split_once(']')?.0.to_string();
            Some(Link {
                name,
                to: to.to_string(),
                subject,
            })
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(byte) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The bare address of a header value like `Name <a@b>`.
fn address_in(value: &str) -> String {
    match value.rsplit_once('<') {
        Some((_, rest)) => rest.trim_end_matches('>').trim().to_string(),
        None => value.trim().to_string(),
    }
}

fn bare_id(id: &str) -> &str {
    id.trim().trim_start_matches('<').trim_end_matches('>')
}

/// `Key: value` lines for fields, as a person writes them at the top of a mail
/// (`sub_category` as `Sub category`), and a blank line after them.
fn field_lines(fields: &[(&str, &str)]) -> String {
    if fields.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    for (k, v) in fields {
        let key = k.replace('_', " ");
        let mut chars = key.chars();
        let first = chars.next().unwrap().to_uppercase();
        out.push_str(&format!("{first}{}: {v}\n", chars.as_str()));
    }
    out.push('\n');
    out
}

/// The mailboxes a person reads notifications in: their own, and the group addresses whose
/// reply tokens verify them (an agent: the support team's and the agent groups'; a partner's
/// member: the partner's support group). Customers read only their own.
fn mailboxes_of(settings: &Settings, who: &str) -> Vec<String> {
    let dir = &settings.directory;
    let mut out = vec![who.to_string()];
    match dir.person(who).map(|p| p.party) {
        Some(Party::Agent) => {
            out.push(dir.helpdesk.team_address.clone());
            out.extend(dir.groups.iter().map(|g| g.address.clone()));
        }
        Some(Party::Partner { partner }) => out.extend(dir.partner_addresses(&partner)),
        _ => {}
    }
    out
}

/// How a mail reached the desk, for the step's trace.
struct Sent {
    message_id: String,
    how: String,
}

/// One preset's help desk on the shared mail stack: its own directory and database, and its
/// own `deskmail run` that reads the support INBOX from where it was when it started.
struct Desk<'s> {
    stack: &'s MailStack,
    preset: &'static str,
    settings: Settings,
    env: TestEnv,
    daemon: Option<Daemon>,
    /// Every notification of this desk, read back over IMAP, in the order it queued them.
    mail: Vec<Received>,
    /// The tickets the story created, in order.
    refs: Vec<String>,
    /// Mails the test has sent so far (for their Message-IDs).
    mails_sent: usize,
}

impl<'s> Desk<'s> {
    /// Starts `deskmail run` for a preset on a fresh database (SQLite in the environment's
    /// directory, or `store_url`), and waits until it watches the support INBOX.
    fn start(stack: &'s MailStack, preset: &'static str, store_url: Option<&str>) -> Desk<'s> {
        let mut env = TestEnv::new();
        env.set("DESKMAIL__WORKFLOW__PRESET", preset);
        // Notifications queued by the command line are sent by the daemon's outbox timer.
        env.set("DESKMAIL__DAEMON__OUTBOX_EVERY_SECS", "1");
        if let Some(url) = store_url {
            env.set("DESKMAIL__STORE__URL", url);
        }
        std::fs::write(env.config(), config(stack, &env)).unwrap();
        env.ok(&["migrate"]);
        let daemon = Daemon::start(&env);
        // start = "new": the daemon takes mail from the INBOX's UIDNEXT at its first look on, so
        // the earlier presets' mail is left alone, and no mail may be sent before that look.
        daemon.wait_until("support connected", WAIT, || {
            daemon.get("/readyz").1.contains("support: connected")
        });
        Desk {
            stack,
            preset,
            settings: support::demo_settings(preset),
            env,
            daemon: Some(daemon),
            mail: Vec::new(),
            refs: Vec::new(),
            mails_sent: 0,
        }
    }

    fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().unwrap()
    }

    /// The daemon's log, for failure messages.
    fn log(&self) -> String {
        self.daemon().log()
    }

    fn stop(mut self) {
        let (status, _, log) = self.daemon.take().unwrap().stop();
        assert!(status.success(), "{}: {status}\n{log}", self.preset);
        assert!(
            !log.contains(" ERROR "),
            "{}: errors logged:\n{log}",
            self.preset
        );
    }

    fn show(&self, reference: &str) -> Value {
        self.env.show(reference)
    }

    fn tickets(&self) -> Vec<String> {
        let list: Value = self.env.tickets(&[]);
        list.as_array()
            .unwrap()
            .iter()
            .map(|t| t["ref"].as_str().unwrap().to_string())
            .collect()
    }

    /// A new Message-ID for a mail of `who`.
    fn message_id(&mut self, who: &str) -> String {
        self.mails_sent += 1;
        let domain = who.rsplit('@').next().unwrap();
        format!(
            "<{}.{}.{}@{domain}>",
            self.preset,
            self.mails_sent,
            std::process::id()
        )
    }

    /// Sends a mail over SMTP with `from` as envelope sender (Dovecot records it as Return-Path)
    /// and waits until the daemon has taken it in (moved it to the processed folder).
    fn deliver(&self, from: &str, to: &str, raw: &str) {
        let stack = self.stack;
        let processed = stack.count(SUPPORT, PROCESSED);
        let failed = stack.count(SUPPORT, FAILED);
        stack.send(from, to, raw);
        self.daemon().wait_until("the mail taken in", WAIT, || {
            stack.count(SUPPORT, PROCESSED) > processed
        });
        assert_eq!(
            stack.count(SUPPORT, FAILED),
            failed,
            "a mail failed:\n{}",
            self.log()
        );
    }

    /// Waits until every notification the desk queued is sent and has arrived in its
    /// recipient's INBOX, and reads the new ones back.
    fn settle(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let rows = self.env.outbox();
            let failed: Vec<&Value> = rows.iter().filter(|r| r["status"] == "failed").collect();
            assert!(failed.is_empty(), "{failed:?}\n{}", self.log());
            let unsent = rows.iter().any(|r| r["status"] != "sent");
            let missing = self.read_back(&rows);
            if !unsent && missing == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for the notifications: {rows:?}\n{}\n{}",
                self.log(),
                self.stack.postfix_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Reads the sent outbox rows not read yet from their recipients' INBOXes (by Message-ID);
    /// says how many have not arrived yet.
    fn read_back(&mut self, rows: &[Value]) -> usize {
        let new: Vec<&Value> = rows
            .iter()
            .filter(|r| r["status"] == "sent")
            .filter(|r| !self.mail.iter().any(|m| Some(m.id) == r["id"].as_i64()))
            .collect();
        let mut recipients: Vec<&str> = new
            .iter()
            .map(|r| r["recipient"].as_str().unwrap())
            .collect();
        recipients.sort();
        recipients.dedup();
        let mut missing = 0;
        for to in recipients {
            let inbox = self.stack.inbox(to);
            for row in new.iter().filter(|r| r["recipient"] == to) {
                let id = bare_id(row["message_id"].as_str().unwrap());
                let found = inbox
                    .iter()
                    .find(|m| header(m, "Message-ID").is_some_and(|h| bare_id(&h) == id));
                match found {
                    Some(raw) => self.mail.push(Received {
                        id: row["id"].as_i64().unwrap(),
                        to: to.to_string(),
                        event: row["event"].as_str().unwrap().to_string(),
                        ticket: row["ticket"].as_str().map(String::from),
                        raw: raw.clone(),
                    }),
                    None => missing += 1,
                }
            }
        }
        self.mail.sort_by_key(|m| m.id);
        missing
    }

    /// The newest notification about a ticket in the mailboxes `who` reads.
    fn newest_to(&self, who: &str, reference: &str) -> Option<&Received> {
        let mailboxes = mailboxes_of(&self.settings, who);
        self.mail
            .iter()
            .rev()
            .find(|m| m.about(reference) && mailboxes.contains(&m.to))
    }

    /// Does a reply to a ticket in `status` open a follow-up ticket (a closed state, in a
    /// workflow whose `on_closed_reply` is `new_ticket`)?
    fn follows_up(&self, status: &Value) -> bool {
        let wf = &self.settings.workflow;
        wf.on_closed_reply == ClosedReply::NewTicket
            && wf
                .states
                .iter()
                .any(|s| *status == s.name && s.kind == StateKind::Closed)
    }

    /// Is `action` the workflow's comment action (by name or alias)?
    fn is_comment(&self, action: &str) -> bool {
        let c = &self.settings.workflow.comment;
        std::iter::once(&c.name)
            .chain(&c.aliases)
            .any(|n| n.eq_ignore_ascii_case(action))
    }

    /// A new request over SMTP, as the customer's mail client sends it.
    fn create_by_mail(&mut self, step: &Step) -> Sent {
        let What::Create {
            subject,
            text,
            fields,
            to,
        } = &step.what
        else {
            unreachable!()
        };
        let to = to.unwrap_or(SUPPORT);
        let id = self.message_id(step.who);
        let raw = format!(
            "From: {who}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {id}\r\nDate: {date}\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{fields}{text}\r\n",
            who = step.who,
            date = date(),
            fields = field_lines(fields),
        );
        self.deliver(step.who, to, &raw);
        Sent {
            message_id: id,
            how: format!("a new mail to {to}"),
        }
    }

    /// An action as `who` does it by mail: an answer to the newest notification they (or their
    /// group) got about the ticket.
    fn act_by_mail(&mut self, step: &Step) -> Sent {
        let What::Act {
            action,
            comment,
            fields,
        } = &step.what
        else {
            unreachable!()
        };
        let reference = &self.refs[step.on];
        // Every actor in the five stories has been mailed about their ticket before they act;
        // a step whose actor had nothing to answer could only be played on the command line,
        // and is flagged rather than switched over quietly.
        let note = self.newest_to(step.who, reference).unwrap_or_else(|| {
            panic!(
                "no notification about {reference} reached {} or their group: nothing to answer by mail",
                step.who
            )
        });
        let text = format!("{}{}", field_lines(fields), comment.unwrap_or(""));
        let answer = self.answer(note, action);
        // A mail client quotes what it answers below the answer; an action link opens a new mail.
        let quoted = if answer.quotes && !text.is_empty() {
            quote_of(&note.raw)
        } else {
            String::new()
        };
        let parent = header(&note.raw, "Message-ID").unwrap();
        let references = match header(&note.raw, "References") {
            Some(r) => format!("{r} {parent}"),
            None => parent.clone(),
        };
        let id = self.message_id(step.who);
        let raw = format!(
            "From: {who}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {id}\r\nDate: {date}\r\n\
             In-Reply-To: {parent}\r\nReferences: {references}\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}{quoted}\r\n",
            who = step.who,
            to = answer.to,
            subject = answer.subject,
            date = date(),
        );
        self.deliver(step.who, &answer.to, &raw);
        Sent {
            message_id: id,
            how: answer.how,
        }
    }

    /// How a person answers a notification to do `action`: a plain reply for a comment, the
    /// action's link where the notification has one, else a reply with the tag typed in.
    fn answer(&self, note: &Received, action: &str) -> Answer {
        let subject = header(&note.raw, "Subject").unwrap();
        let reply_to = address_in(&header(&note.raw, "Reply-To").unwrap());
        let of = format!("the {} mail to {}", note.event, note.to);
        if self.is_comment(action) {
            return Answer {
                to: reply_to,
                subject: format!("Re: {subject}"),
                quotes: true,
                how: format!("a reply to {of}"),
            };
        }
        let link = links(&note.raw)
            .into_iter()
            .find(|l| l.name.eq_ignore_ascii_case(action));
        match link {
            Some(link) => Answer {
                how: format!("the [{}] link of {of}", link.name),
                to: link.to,
                subject: link.subject,
                quotes: false,
            },
            None => Answer {
                to: reply_to,
                subject: format!("[{action}] Re: {subject}"),
                quotes: true,
                how: format!("a reply to {of} with [{action}] typed into the subject"),
            },
        }
    }
}

/// The answer to a notification: where it goes, its subject, whether it quotes the
/// notification, and how it came about (for the trace).
struct Answer {
    to: String,
    subject: String,
    quotes: bool,
    how: String,
}

/// The config: the example's directory, the support mailbox read over IMAP from the stack
/// (default start = "new"), notifications through its Postfix.
fn config(stack: &MailStack, env: &TestEnv) -> String {
    let password = env.path("support.pass");
    std::fs::write(&password, "secret\n").unwrap();
    support::example_config_with_mailboxes(
        &stack.imap_config(SUPPORT, &password),
        "",
        &stack.smtp_config(2),
    )
}

/// Now, as a Date header.
fn date() -> String {
    jiff::Timestamp::now()
        .strftime("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

/// What a mail client puts below an answer: an attribution line and the quoted text.
fn quote_of(raw: &str) -> String {
    let mut out = format!(
        "\r\n\r\nOn {}, {} wrote:\r\n",
        header(raw, "Date").unwrap_or_default(),
        header(raw, "From").unwrap_or_default()
    );
    for line in text_part(raw).lines() {
        out.push_str(&format!("> {line}\r\n"));
    }
    out
}

/// The ticket's state as a step may change it: status, turn, fields.
fn state(v: &Value) -> (Value, Value, Value) {
    (
        v["status"].clone(),
        v["waiting_on"].clone(),
        v["fields"].clone(),
    )
}

/// The newest comment of a ticket.
fn last_comment(v: &Value) -> Value {
    v["comments"].as_array().unwrap().last().unwrap().clone()
}

/// Plays one story against a fresh desk (a fresh database: SQLite, or `store_url`).
fn play(stack: &MailStack, story: &Story, store_url: Option<&str>) {
    let started = Instant::now();
    let mut desk = Desk::start(stack, story.preset, store_url);
    for (i, step) in story.steps.iter().enumerate() {
        let at = format!("{} step {} ({})", story.preset, i + 1, step.who);
        if let What::See = step.what {
            check_visibility(&desk, step, &at);
            println!("{at}: sees the ticket? checked with ticket show --as");
            continue;
        }
        let before_mail = desk.mail.last().map_or(0, |m| m.id);
        let tickets_before = desk.tickets();
        let before = match step.what {
            What::Act { .. } => Some(desk.show(&desk.refs[step.on])),
            _ => None,
        };
        let sent = match step.what {
            What::Create { .. } => desk.create_by_mail(step),
            _ => desk.act_by_mail(step),
        };
        desk.settle();
        println!("{at}: by {}", sent.how);
        let step_check = StepCheck {
            step,
            at: &at,
            before: before.as_ref(),
            tickets_before: &tickets_before,
            before_mail,
            sent: &sent,
        };
        match &step.expect {
            Expect::Status(want) => step_check.applied(&mut desk, want),
            Expect::Refused(code) => step_check.refused(&desk, code, None),
            Expect::RefusedAllowing(code, allowed) => {
                step_check.refused(&desk, code, Some(allowed))
            }
            Expect::Visible(_) => unreachable!(),
        }
    }
    desk.stop();
    println!(
        "{}: the story by mail took {:?}",
        story.preset,
        started.elapsed()
    );
}

fn check_visibility(desk: &Desk, step: &Step, at: &str) {
    let Expect::Visible(v) = step.expect else {
        panic!("{at}: See needs Visible")
    };
    let out = desk
        .env
        .run(&["ticket", "show", &desk.refs[step.on], "--as", step.who]);
    assert_eq!(out.status.success(), v, "{at}: visibility");
    if !v {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("may not see"), "{at}: {err}");
    }
}

/// What a step left behind, to check against its expectation.
struct StepCheck<'a> {
    step: &'a Step,
    at: &'a str,
    /// The ticket acted on, before the step.
    before: Option<&'a Value>,
    tickets_before: &'a [String],
    /// The last notification before the step: the step's are those after it.
    before_mail: i64,
    sent: &'a Sent,
}

impl StepCheck<'_> {
    /// The notifications the step caused.
    fn mails<'d>(&self, desk: &'d Desk) -> Vec<&'d Received> {
        desk.mail
            .iter()
            .filter(|m| m.id > self.before_mail)
            .collect()
    }

    /// The one mail of `event` the step sent to `to`.
    fn mail_to<'d>(&self, desk: &'d Desk, to: &str, event: &str) -> &'d Received {
        let mails = self.mails(desk);
        let found: Vec<&&Received> = mails
            .iter()
            .filter(|m| m.to == to && m.event == event)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{}: one {event} mail to {to}; the step's mails: {:?}\n{}",
            self.at,
            mails.iter().map(|m| (&m.to, &m.event)).collect::<Vec<_>>(),
            desk.log()
        );
        found[0]
    }

    /// Applied: the ticket (new, or acted on) is in `want`, with the step's turn and fields,
    /// the comment is the mail's text, and everyone in `mailed` got a notification about it.
    fn applied(&self, desk: &mut Desk, want: &str) {
        let at = self.at;
        let reference = match &self.step.what {
            What::Create { text, .. } => {
                let new = new_tickets(desk, self.tickets_before);
                assert_eq!(new.len(), 1, "{at}: one new ticket\n{}", desk.log());
                desk.refs.push(new[0].clone());
                let v = desk.show(&new[0]);
                assert_eq!(v["source"], "mail", "{at}");
                assert_eq!(v["requester"], self.step.who, "{at}");
                assert_eq!(v["comments"][0]["text"], *text, "{at}: the request's text");
                self.acknowledged(desk, &new[0]);
                new[0].clone()
            }
            What::Act { comment, .. } => {
                let reference = desk.refs[self.step.on].clone();
                if let Some(c) = comment {
                    let last = last_comment(&desk.show(&reference));
                    assert_eq!(last["text"], *c, "{at}: the comment\n{}", desk.log());
                    assert_eq!(last["author"], self.step.who, "{at}");
                    assert_eq!(last["verified_by"], "token", "{at}: {last}");
                }
                reference
            }
            What::See => unreachable!(),
        };
        let v = desk.show(&reference);
        assert_eq!(v["status"], *want, "{at}: status\n{}", desk.log());
        if let Some(turn) = self.step.waiting_on {
            assert_eq!(v["waiting_on"], turn, "{at}: turn");
        }
        for (k, val) in self.step.fields {
            assert_eq!(v["fields"][k], *val, "{at}: field {k}");
        }
        let mails = self.mails(desk);
        for m in self.step.mailed {
            let got = mails
                .iter()
                .find(|r| r.to == *m && r.about(&reference))
                .unwrap_or_else(|| {
                    panic!(
                        "{at}: {m} got no notification about {reference}; the step's mails: {:?}\n{}",
                        mails.iter().map(|m| (&m.to, &m.event)).collect::<Vec<_>>(),
                        desk.log()
                    )
                });
            let subject = header(&got.raw, "Subject").unwrap();
            assert!(
                subject.contains(&format!("[{reference}]")),
                "{at}: {subject}"
            );
        }
    }

    /// The requester's acknowledgement: read over IMAP, threaded with their own mail.
    fn acknowledged(&self, desk: &Desk, reference: &str) {
        let ack = self.mail_to(desk, self.step.who, "created");
        assert!(ack.about(reference), "{}", self.at);
        assert_eq!(
            header(&ack.raw, "In-Reply-To").as_deref(),
            Some(self.sent.message_id.as_str()),
            "{}: the acknowledgement answers the request",
            self.at
        );
        assert!(
            ack.text().contains(reference),
            "{}: {}",
            self.at,
            ack.text()
        );
    }

    /// Refused: nothing about the ticket changes but the comment, which is kept; the sender is
    /// told why (and, with `allowed`, offered exactly those actions). A refused new request
    /// opens no ticket and earns a refusal mail.
    fn refused(&self, desk: &Desk, code: &str, allowed: Option<&[&str]>) {
        let at = self.at;
        let why = stories::reason_text(code);
        let Some(before) = self.before else {
            assert_eq!(
                new_tickets(desk, self.tickets_before),
                Vec::<String>::new(),
                "{at}: a refused request opens no ticket"
            );
            let refusal = self.mail_to(desk, self.step.who, "refused");
            assert!(refusal.text().contains(why), "{at}: {}", refusal.text());
            return;
        };
        let reference = &desk.refs[self.step.on];
        let after = desk.show(reference);
        assert_eq!(state(&after), state(before), "{at}: the ticket changed");
        let notice = self.mail_to(desk, self.step.who, "not_done");
        assert!(notice.about(reference), "{at}");
        let text = notice.text();
        assert!(text.contains(why), "{at}: {text}");
        let What::Act {
            action, comment, ..
        } = &self.step.what
        else {
            unreachable!()
        };
        assert!(
            text.contains(&format!("\"{action}\" was not done")),
            "{at}: {text}"
        );
        match comment {
            // On a closed ticket whose workflow answers replies with a new ticket, the reply
            // opens a follow-up that links the closed one and carries its fields (itil-portal:
            // "Closed is final: any action on it is refused, and a reply opens a new ticket").
            Some(c) if desk.follows_up(&before["status"]) => {
                assert_eq!(after["comments"], before["comments"], "{at}: closed");
                let new = new_tickets(desk, self.tickets_before);
                assert_eq!(new.len(), 1, "{at}: one follow-up\n{}", desk.log());
                let follow_up = desk.show(&new[0]);
                assert_eq!(follow_up["linked_to"], *reference, "{at}: {follow_up}");
                assert_eq!(last_comment(&follow_up)["text"], *c, "{at}: {follow_up}");
                // The fields a new ticket takes, not those of closing (satisfaction).
                let carried = follow_up["fields"].as_object().unwrap();
                assert!(carried.contains_key("service"), "{at}: {follow_up}");
                for (name, value) in carried {
                    assert_eq!(before["fields"][name], *value, "{at}: {name}");
                }
            }
            Some(c) => {
                let last = last_comment(&after);
                assert_eq!(last["text"], *c, "{at}: the comment is kept");
                assert!(
                    text.contains("Your comment was added to the ticket."),
                    "{at}: {text}"
                );
            }
            None => assert_eq!(
                after["comments"], before["comments"],
                "{at}: no comment added"
            ),
        }
        if let Some(allowed) = allowed {
            // Commenting needs no link: replying is commenting.
            let mut want: Vec<&str> = allowed
                .iter()
                .copied()
                .filter(|a| !desk.is_comment(a))
                .collect();
            want.sort();
            let offered = links(&notice.raw);
            let mut got: Vec<&str> = offered.iter().map(|l| l.name.as_str()).collect();
            got.sort();
            assert_eq!(got, want, "{at}: the actions offered");
        }
    }
}

/// The tickets that are new since `before`.
fn new_tickets(desk: &Desk, before: &[String]) -> Vec<String> {
    desk.tickets()
        .into_iter()
        .filter(|r| !before.contains(r))
        .collect()
}

#[test]
fn every_preset_story_by_real_mail_on_sqlite() {
    let Some(stack) = MailStack::start(false) else {
        return;
    };
    let started = Instant::now();
    for story in stories::all() {
        play(&stack, &story, None);
    }
    println!("all five stories on SQLite: {:?}", started.elapsed());
}

#[tokio::test]
async fn every_preset_story_by_real_mail_on_postgresql() {
    let Some(stack) = MailStack::start(false) else {
        return;
    };
    let started = Instant::now();
    for story in stories::all() {
        // A fresh database per preset: ticket numbers start again, like the SQLite files.
        let Some(db) = support::pg::PgDb::create().await else {
            return;
        };
        play(&stack, &story, Some(&db.url));
    }
    println!("all five stories on PostgreSQL: {:?}", started.elapsed());
}
