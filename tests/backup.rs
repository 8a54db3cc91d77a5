//! `deskmail backup`: a checked copy of the SQLite store, taken while mail is taken in.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use support::TestEnv;

/// The same environment with its store at `url`.
fn on_store(env: &TestEnv, url: &str) -> TestEnv {
    let mut other = TestEnv {
        dir: tempfile::tempdir().unwrap(),
        env: env.env.clone(),
    };
    std::fs::copy(env.config(), other.config()).unwrap();
    other.set("DESKMAIL__STORE__URL", url);
    other
}

#[test]
fn a_backup_holds_the_store_and_never_overwrites_a_file() {
    let env = TestEnv::new();
    let reference = env.create_fire_ticket();
    let file = env.path("backup.sqlite");
    let file_arg = file.to_str().unwrap();
    let out = env.ok(&["backup", file_arg]);
    assert!(out.contains("1 tickets"), "{out}");
    assert!(out.contains("integrity check"), "{out}");
    // The copy is a store of its own: the ticket is there, with its comment.
    let restored = on_store(&env, &format!("sqlite://{}", file.display()));
    let view = restored.show(&reference);
    assert_eq!(view["subject"], "Printer on fire");
    assert_eq!(view["comments"][0]["text"], "Smoke everywhere.");
    // A second backup to the same file is refused, and the first stays as it was.
    let before = std::fs::read(&file).unwrap();
    let err = env.fails(&["backup", file_arg]);
    assert!(err.contains("exists already"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert!(!env.path("backup.sqlite.partial").exists());
}

#[test]
fn a_backup_of_postgresql_points_to_pg_dump() {
    let mut env = TestEnv::new();
    env.set(
        "DESKMAIL__STORE__URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    );
    let file = env.path("backup.sqlite");
    let err = env.fails(&["backup", file.to_str().unwrap()]);
    assert!(err.contains("pg_dump"), "{err}");
    assert!(!file.exists());
}

/// A reply-less new request from a customer of the demo directory.
fn request(i: usize) -> String {
    format!(
        "From: Anna <anna@acme.example>\r\nTo: support@helpdesk.example\r\n\
         Subject: Request {i}\r\nMessage-ID: <backup-{i}@acme.example>\r\n\
         Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\nThe printer {i} jams.\r\n"
    )
}

/// Every mail `ingest` reported before the backup began is in the backup: a mail is reported
/// once its commit is on disk, and the backup reads one snapshot after that.
#[test]
fn a_backup_taken_during_ingest_holds_every_mail_reported_before_it() {
    const MAILS: usize = 600;
    const BEFORE: usize = 100;
    let env = TestEnv::new();
    let maildir = env.path("Maildir");
    std::fs::create_dir_all(maildir.join("new")).unwrap();
    std::fs::create_dir_all(maildir.join("cur")).unwrap();
    for i in 0..MAILS {
        let name = maildir.join("new").join(format!("{i:04}.eml"));
        std::fs::write(name, request(i)).unwrap();
    }
    // The schema first, so that the backup does not race the ingest's migration.
    env.ok(&["migrate"]);
    let mut ingest = env
        .command()
        .args(["ingest", "--batch", "2"])
        .arg(&maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(ingest.stderr.take().unwrap()).lines();
    let mut reported: Vec<usize> = Vec::new();
    while reported.len() < BEFORE {
        let line = lines.next().expect("ingest ended early").unwrap();
        if line.contains(": applied ") {
            let file = line.split(':').next().unwrap();
            let n: usize = file.rsplit('/').next().unwrap()[..4].parse().unwrap();
            reported.push(n);
        }
    }
    let file = env.path("during.sqlite");
    let out = env.ok(&["backup", file.to_str().unwrap()]);
    // The rest of the ingest goes on, and ends well.
    let rest = lines
        .map_while(Result::ok)
        .filter(|l| l.contains(": applied "))
        .count();
    assert!(ingest.wait().unwrap().success());
    assert_eq!(reported.len() + rest, MAILS, "every mail applied");
    let restored = on_store(&env, &format!("sqlite://{}", file.display()));
    let stored = restored.inbound(&["--limit", "10000"]);
    let ids: Vec<&str> = stored
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["message_id"].as_str())
        .map(|id| id.trim_matches(['<', '>']))
        .collect();
    for n in &reported {
        let id = format!("backup-{n}@acme.example");
        assert!(
            ids.contains(&id.as_str()),
            "{id} missing from the backup: {out}"
        );
    }
    assert!(ids.len() >= BEFORE && ids.len() <= MAILS, "{}", ids.len());
}
