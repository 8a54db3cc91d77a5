//! Where the documents' commands run: the demo config in a temporary directory, with a ticket,
//! a stored mail and notifications, so that a command naming them has something to act on.
//! Placeholders (`$ref`, `REF`, `ID`, `NAME`, `$(date +%F)`) become real values; files a
//! command reads are made (a demo mail, or a Maildir holding one), and paths outside the
//! directory are moved into it (`/var/backups/x` → `TMP/var/backups/x`, `~/x` → `TMP/x`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::shown::Shown;
use crate::support::TestEnv;

/// Commands that may be refused (exit 1) where the documents show them: what they act on
/// (a failed mail, a failed notification) is not there in the demo store.
const MAY_REFUSE: [&str; 2] = ["inbound retry", "outbox retry"];

/// `ingest`'s options that take a value (the rest of its arguments are files).
const INGEST_VALUES: [&str; 4] = ["--mailbox", "--batch", "--now", "--parallel"];

pub struct World {
    env: TestEnv,
    reference: String,
    inbound_id: String,
    outbox_id: String,
    mails: usize,
}

impl World {
    /// The demo help desk with one ticket (anna's, from a mail), its notifications sent.
    pub fn new() -> World {
        let mut world = World {
            env: TestEnv::new(),
            reference: String::new(),
            inbound_id: String::new(),
            outbox_id: String::new(),
            mails: 0,
        };
        let seed = world.dir().join("seed.eml");
        let mail = world.mail();
        std::fs::write(&seed, mail).unwrap();
        world.env.ok(&["ingest", seed.to_str().unwrap()]);
        world.env.ok(&["outbox", "send"]);
        world.reference = world.env.tickets(&[])[0]["ref"]
            .as_str()
            .unwrap()
            .to_string();
        world.inbound_id = world.env.inbound(&[])[0]["id"].to_string();
        world.outbox_id = world.env.outbox()[0]["id"].to_string();
        world
    }

    fn dir(&self) -> &Path {
        self.env.dir.path()
    }

    /// A new request from anna, with a Message-ID of its own.
    fn mail(&mut self) -> String {
        self.mails += 1;
        let n = self.mails;
        format!(
            "Return-Path: <anna@acme.example>\r\n\
             From: Anna Example <anna@acme.example>\r\n\
             To: support@helpdesk.example\r\n\
             Subject: The printer smokes ({n})\r\n\
             Message-ID: <docs-{n}@acme.example>\r\n\
             Date: Tue, 01 Dec 2026 09:00:00 +0000\r\n\
             \r\n\
             It smokes again.\r\n"
        )
    }

    /// Runs a shown command here; `Err` says why it does not count as run.
    pub fn run(&mut self, shown: &Shown) -> Result<(), String> {
        let command = shown.command();
        let args = shown
            .args
            .iter()
            .map(|a| self.substitute(a, &command))
            .collect::<Result<Vec<_>, _>>()?;
        let args = self.prepare_files(&command, args);
        let stdin = match &shown.stdin {
            Some(f) => {
                let path = self.local(&self.substitute(f, &command)?);
                self.ensure_mail(&path);
                Some(std::fs::read(&path).unwrap())
            }
            None if shown.piped_mail => Some(self.mail().into_bytes()),
            None => None,
        };
        let out = self.execute(&args, stdin);
        let code = out.status.code();
        let expected: &[i32] = if shown.comment.contains("refused") {
            &[1]
        } else if MAY_REFUSE.contains(&command.as_str()) {
            &[0, 1]
        } else {
            &[0]
        };
        if code.is_some_and(|c| expected.contains(&c)) {
            return Ok(());
        }
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let what = if code == Some(2) {
            "the command line does not accept it"
        } else {
            "it did not end as the document says"
        };
        Err(format!(
            "{what}: `deskmail {}` exited {code:?}, expected {expected:?}:\n{}",
            args.join(" "),
            said.trim_end()
        ))
    }

    fn execute(&self, args: &[String], stdin: Option<Vec<u8>>) -> std::process::Output {
        let mut cmd: Command = self.env.command();
        cmd.current_dir(self.dir()).args(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().unwrap();
        if let Some(bytes) = stdin {
            use std::io::Write;
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(&bytes).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// A placeholder made a real value; a `$` left over is a placeholder this test does not know.
    fn substitute(&self, arg: &str, command: &str) -> Result<String, String> {
        let id = if command.starts_with("outbox") {
            &self.outbox_id
        } else {
            &self.inbound_id
        };
        let value = match arg {
            "REF" | "TICKET" => self.reference.clone(),
            "ID" => id.clone(),
            "NAME" | "MAILBOX" => "support".to_string(),
            other => other
                .replace("$ref", &self.reference)
                .replace("$(date +%F)", "2026-12-01")
                .replace("$local_part", "support"),
        };
        if value.contains('$') {
            return Err(format!(
                "`{arg}` is a placeholder tests/docs.rs does not know: give it a value in tests/docs/world.rs"
            ));
        }
        Ok(value)
    }

    /// The files a command reads are made, and those it writes go into the directory.
    fn prepare_files(&mut self, command: &str, args: Vec<String>) -> Vec<String> {
        match command {
            "ingest" => {
                let mut out = Vec::new();
                let mut value_next = false;
                for a in args {
                    let is_file = !value_next && !a.starts_with('-') && a != "ingest";
                    value_next = INGEST_VALUES.contains(&a.as_str());
                    if is_file {
                        let path = self.local(&a);
                        self.ensure_input(&path);
                        out.push(path.display().to_string());
                    } else {
                        out.push(a);
                    }
                }
                out
            }
            "backup" => args
                .into_iter()
                .map(|a| {
                    if a == "backup" {
                        return a;
                    }
                    let path = self.local(&a);
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    path.display().to_string()
                })
                .collect(),
            _ => args,
        }
    }

    /// A path as this directory holds it.
    fn local(&self, path: &str) -> PathBuf {
        match path.strip_prefix("~/") {
            Some(rest) => self.dir().join(rest),
            None => self.dir().join(path.trim_start_matches('/')),
        }
    }

    /// An input named like a mail (`.eml`, `FILE`) becomes one; anything else a Maildir
    /// holding one.
    fn ensure_input(&mut self, path: &Path) {
        if path.exists() {
            return;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".eml") || name == "FILE" || name == "-" {
            self.ensure_mail(path);
        } else {
            for sub in ["new", "cur", "tmp"] {
                std::fs::create_dir_all(path.join(sub)).unwrap();
            }
            let mail = self.mail();
            std::fs::write(path.join("new").join("1.docs"), mail).unwrap();
        }
    }

    fn ensure_mail(&mut self, path: &Path) {
        if path.exists() {
            return;
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mail = self.mail();
        std::fs::write(path, mail).unwrap();
    }
}
