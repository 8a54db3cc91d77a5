//! The inbound pipeline up to the workflow core's decision, on any bytes: parse, classify,
//! identify, match candidates, extract, commands, then `workflow::act` on a ticket in memory (a
//! reply) and `workflow::create` (a first mail). Nothing may panic.
//!
//! `cargo fuzz run pipeline` (see fuzz/README.md).
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use deskmail::config::Settings;
use deskmail::desk::dedupe_key;
use deskmail::inbound;
use deskmail::outbound::TokenKey;
use deskmail::workflow::{self, Actor, Intent, NewTicket};
use libfuzzer_sys::fuzz_target;

struct World {
    settings: Settings,
    reader: inbound::Reader,
    key: TokenKey,
    ticket: workflow::Ticket,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        // deskmail catches mail-parser's own panics (see src/inbound/parse.rs); libFuzzer's
        // hook would abort on them though caught. Any other panic still ends the run: libFuzzer
        // aborts when one leaves the target.
        std::panic::set_hook(Box::new(|info| {
            let in_mail_parser = info
                .location()
                .is_some_and(|l| l.file().contains("mail-parser"));
            if !in_mail_parser {
                eprintln!("{info}");
            }
        }));
        let dir = std::env::temp_dir().join(format!("deskmail-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("deskmail.toml");
        std::fs::write(&config, include_str!("../../deskmail.example.toml")).unwrap();
        let settings = deskmail::config::load(&config).unwrap();
        let reader = inbound::Reader::new(&settings);
        let now: jiff::Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        let anna = Actor {
            person: settings.directory.person("anna@acme.example").unwrap(),
            proof: workflow::Proof::Cli,
        };
        let new = NewTicket {
            reference: "SUP-20261122-0001".into(),
            subject: "Printer on fire".into(),
            text: "It smokes.".into(),
            source: "mail".into(),
            ..Default::default()
        };
        let workflow::Decision::Apply(effects) =
            workflow::create(&settings.workflow, &settings.directory, &anna, &new, now)
        else {
            panic!("the demo ticket")
        };
        World {
            reader,
            key: TokenKey::new("fuzz-secret-0123456789abcdef"),
            ticket: effects.ticket,
            settings,
        }
    })
}

fuzz_target!(|raw: &[u8]| {
    let w = world();
    let dir = &w.settings.directory;
    let wf = &w.settings.workflow;
    let now: jiff::Timestamp = "2026-11-22T11:00:00Z".parse().unwrap();
    let reading = inbound::read(raw, inbound::Extent::Whole, &w.reader, dir, &w.key);
    let _ = dedupe_key(reading.mail.message_id.as_deref(), raw);
    let _ = inbound::matching::footer(&reading.mail, &w.reader.finder);
    let Some(person) = reading.sender.person.clone() else {
        return;
    };
    let actor = Actor {
        proof: reading.sender.proof(),
        person,
    };
    // As a reply to the ticket.
    let reply = inbound::reply(&reading, &w.reader, wf, dir);
    let intent = match &reply.commands.command {
        Some(c) => Intent::Act {
            action: c.action.clone(),
            comment: Some(reply.commands.comment.clone()),
            internal: reply.commands.internal_marker,
            fields: reply.commands.fields.clone(),
        },
        None => Intent::Comment {
            text: reply.commands.comment.clone(),
            internal: false,
        },
    };
    let _ = workflow::act(wf, dir, &w.ticket, &actor, &intent, now);
    // As a first mail.
    let request = inbound::request(&reading, wf);
    let new = NewTicket {
        reference: "SUP-20261122-0002".into(),
        subject: reading.mail.subject.clone(),
        text: request.commands.comment.clone(),
        fields: request.commands.fields.clone(),
        mailbox_fields: BTreeMap::new(),
        to_address: reading.mail.to.first().map(|m| m.address.clone()),
        source: "mail".into(),
        linked_to: None,
    };
    let _ = workflow::create(wf, dir, &actor, &new, now);
});
