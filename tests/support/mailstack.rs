//! A real mail stack for the tests: Postfix (SMTP) delivering over LMTP into Dovecot (IMAP),
//! started on free ports of 127.0.0.1 in a temporary directory by tests/mailstack/start.sh, with
//! the demo directory's addresses as mailboxes (plus-addressing lands in the INBOX). The system's
//! own mail configuration is never touched. Needs root and the packages scripts/test-setup.sh
//! installs; `DESKMAIL_TEST_MAIL=skip` skips the tests that need it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Every address of the demo directory that has a mailbox (hcms@oshcms.example has none: mail to
/// it is rejected with 550, for the permanent-failure tests).
pub const USERS: [&str; 14] = [
    "support@helpdesk.example",
    "team@helpdesk.example",
    "alice@helpdesk.example",
    "dev@helpdesk.example",
    "billing@helpdesk.example",
    "anna@acme.example",
    "ben@acme.example",
    "it@acme.example",
    "carl@globex.example",
    "ops@itprov.example",
    "support@itprov.example",
    "l2@secondlevel.example",
    "web@webit.example",
    "nobody@oshcms.example",
];

pub struct MailStack {
    pub dir: PathBuf,
    pub smtp_port: u16,
    pub imap_port: u16,
    pub lmtp_port: u16,
    /// Implicit TLS (port 465 style); listening with `tls` only.
    pub smtps_port: u16,
    /// Dovecot's implicit TLS (port 993 style); listening with `tls` only.
    pub imaps_port: u16,
    pub tls: bool,
}

fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

fn script(name: &str) -> PathBuf {
    super::root().join("tests/mailstack").join(name)
}

/// A test CA (`ca.pem`) and a server certificate for 127.0.0.1 signed by it (`cert.pem`,
/// `key.pem`): the client trusts the CA through deskmail's config, as an admin would.
fn make_certificates(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=deskmail test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "server.csr",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "cert.pem",
        ],
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (scripts/test-setup.sh installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl MailStack {
    /// Starts a stack; `tls` makes Postfix offer STARTTLS and Dovecot TLS (STARTTLS, and
    /// implicit TLS on `imaps_port`) with a certificate generated here.
    /// `None` when mail tests are skipped (`DESKMAIL_TEST_MAIL=skip`).
    pub fn start(tls: bool) -> Option<MailStack> {
        MailStack::start_with(tls, None)
    }

    /// A stack whose Dovecot (IMAP, and Postfix's SMTP AUTH through it) also takes XOAUTH2
    /// logins, checking their tokens at `introspection_url`.
    pub fn start_oauth2(introspection_url: &str) -> Option<MailStack> {
        MailStack::start_with(false, Some(introspection_url))
    }

    fn start_with(tls: bool, introspection_url: Option<&str>) -> Option<MailStack> {
        if std::env::var("DESKMAIL_TEST_MAIL").as_deref() == Ok("skip") {
            eprintln!("DESKMAIL_TEST_MAIL=skip: skipping a test that needs Postfix and Dovecot");
            return None;
        }
        // Short, world-traversable path: Dovecot's and Postfix's sockets live below it.
        let dir = tempfile::Builder::new()
            .prefix("dmst")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        std::fs::write(dir.join("users.txt"), USERS.join("\n") + "\n").unwrap();
        if tls {
            make_certificates(&dir.join("tls"));
        }
        if let Some(url) = introspection_url {
            std::fs::write(dir.join("oauth2.url"), url).unwrap();
        }
        let [smtp_port, imap_port, lmtp_port, smtps_port, imaps_port] = free_ports::<5>();
        let stack = MailStack {
            dir,
            smtp_port,
            imap_port,
            lmtp_port,
            smtps_port,
            imaps_port,
            tls,
        };
        stack.run_start();
        Some(stack)
    }

    fn run_start(&self) {
        // Dovecot keeps the stderr it was started with; start.sh sends it to a file, so output()
        // returns.
        let out = Command::new(script("start.sh"))
            .arg(&self.dir)
            .args(
                [
                    self.smtp_port,
                    self.imap_port,
                    self.lmtp_port,
                    self.smtps_port,
                    self.imaps_port,
                ]
                .map(|p| p.to_string()),
            )
            .output()
            .expect("run tests/mailstack/start.sh");
        assert!(
            out.status.success(),
            "the mail stack did not start (needs root and scripts/test-setup.sh):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The CA that signed the certificate Postfix presents (with `tls`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("tls/ca.pem")
    }

    fn postfix_pid(&self) -> Option<u32> {
        let spool = std::fs::read_link(self.dir.join("postfix/spool"))
            .unwrap_or_else(|_| self.dir.join("postfix/spool"));
        let text = std::fs::read_to_string(spool.join("pid/master.pid")).ok()?;
        text.split_whitespace().next()?.parse().ok()
    }

    /// Stops Postfix (Dovecot keeps running) and waits until it is gone.
    pub fn stop_postfix(&self) {
        let pid = self.postfix_pid().expect("postfix master pid");
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            TcpStream::connect(("127.0.0.1", self.smtp_port)).is_err(),
            "SMTP still answers"
        );
    }

    /// From now on, Postfix accepts mail to `address` and discards it instead of delivering it
    /// into Dovecot, as a relay would that passes it on to another machine.
    #[allow(dead_code)]
    pub fn discard(&self, address: &str) {
        let etc = self.dir.join("postfix/etc");
        std::fs::write(etc.join("transport"), format!("{address} discard:\n")).unwrap();
        let maps = format!(
            "transport_maps=texthash:{}",
            etc.join("transport").display()
        );
        let mut postconf = Command::new("postconf");
        postconf.arg("-c").arg(&etc).args(["-e", &maps]);
        let mut reload = Command::new("postfix");
        reload.arg("-c").arg(&etc).arg("reload");
        for mut cmd in [postconf, reload] {
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Starts Postfix again.
    pub fn start_postfix(&self) {
        let out = Command::new("postfix")
            .arg("-c")
            .arg(self.dir.join("postfix/etc"))
            .arg("start")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "postfix start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Restarts Dovecot (every IMAP connection is cut) and waits until it answers again.
    pub fn restart_dovecot(&self) {
        let conf = self.dir.join("dovecot/dovecot.conf");
        // The master's stop leaves logged-in IMAP processes running: they are cut first.
        let _ = Command::new("doveadm")
            .arg("-c")
            .arg(&conf)
            .args(["kick", "*"])
            .output();
        let out = Command::new("doveadm")
            .arg("-c")
            .arg(&conf)
            .arg("stop")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "doveadm stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let status = Command::new("dovecot")
            .arg("-c")
            .arg(&conf)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("log/dovecot.restart.stderr")).unwrap())
            .status()
            .unwrap();
        assert!(status.success(), "dovecot did not start again");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.imap_port)).is_err() {
            assert!(Instant::now() < deadline, "Dovecot did not come back");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Restarts Postfix with these settings changed (`postconf -e`, e.g.
    /// `message_size_limit=200000`).
    pub fn reconfigure_postfix(&self, settings: &[&str]) {
        self.stop_postfix();
        let etc = self.dir.join("postfix/etc");
        let out = Command::new("postconf")
            .arg("-c")
            .arg(&etc)
            .arg("-e")
            .args(settings)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "postconf: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Postfix waits two seconds before it reads a main.cf changed this very second (see
        // start.sh); dated back, it is read at once.
        let back = std::time::SystemTime::now() - Duration::from_secs(10);
        std::fs::File::options()
            .write(true)
            .open(etc.join("main.cf"))
            .and_then(|f| f.set_modified(back))
            .unwrap();
        self.start_postfix();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.smtp_port)).is_err() {
            assert!(Instant::now() < deadline, "Postfix did not come back");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `[outbound.smtp]` section that points deskmail at this stack.
    pub fn smtp_config(&self, connections: usize) -> String {
        if self.tls {
            format!(
                "[outbound.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nca_file = \"{}\"\nconnections = {connections}\ntimeout_secs = 10\n",
                self.smtp_port,
                self.ca_file().display()
            )
        } else {
            format!(
                "[outbound.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nconnections = {connections}\ntimeout_secs = 10\n",
                self.smtp_port
            )
        }
    }

    /// The `[outbound.smtp]` section for implicit TLS (with `tls`).
    pub fn smtps_config(&self, connections: usize) -> String {
        format!(
            "[outbound.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"implicit\"\nca_file = \"{}\"\nconnections = {connections}\ntimeout_secs = 10\n",
            self.smtps_port,
            self.ca_file().display()
        )
    }

    /// Every message in a user's INBOX, oldest first, as raw bytes (read over IMAP).
    pub fn inbox(&self, user: &str) -> Vec<String> {
        imap_fetch_all(self.imap_port, user)
            .into_iter()
            .map(|m| String::from_utf8_lossy(&m).to_string())
            .collect()
    }

    /// Waits until a user's INBOX holds at least `n` messages (Postfix delivers asynchronously).
    pub fn wait_for(&self, user: &str, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let msgs = self.inbox(user);
            if msgs.len() >= n || Instant::now() > deadline {
                return msgs;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Submits a mail over SMTP (no authentication: the stack takes mail for its own domains
    /// from 127.0.0.1), as a customer's mail client would hand it to its provider.
    pub fn send(&self, from: &str, to: &str, raw: &str) {
        let stream = TcpStream::connect(("127.0.0.1", self.smtp_port)).expect("connect to SMTP");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut w = stream.try_clone().unwrap();
        let mut r = BufReader::new(stream);
        let expect = |code: &str, r: &mut BufReader<TcpStream>| loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.starts_with(code), "SMTP: expected {code}, got {line}");
            if line.as_bytes().get(3) == Some(&b' ') {
                break;
            }
        };
        expect("220", &mut r);
        let mut say = |cmd: &str, code: &str, r: &mut BufReader<TcpStream>| {
            write!(w, "{cmd}\r\n").unwrap();
            expect(code, r);
        };
        say("EHLO client.example", "250", &mut r);
        say(&format!("MAIL FROM:<{from}>"), "250", &mut r);
        say(&format!("RCPT TO:<{to}>"), "250", &mut r);
        say("DATA", "354", &mut r);
        let mut body = String::new();
        for line in raw.replace("\r\n", "\n").lines() {
            if line.starts_with('.') {
                body.push('.');
            }
            body.push_str(line);
            body.push_str("\r\n");
        }
        body.push('.');
        say(&body, "250", &mut r);
        say("QUIT", "221", &mut r);
    }

    /// Every message in one of a user's folders, oldest first (none without such a folder).
    pub fn folder(&self, user: &str, folder: &str) -> Vec<String> {
        imap_folder(self.imap_port, user, folder)
            .into_iter()
            .map(|m| String::from_utf8_lossy(&m).to_string())
            .collect()
    }

    /// Puts a message into a user's folder with these IMAP flags, as a mail client would.
    pub fn append(&self, user: &str, folder: &str, flags: &str, raw: &str) {
        imap_append(self.imap_port, user, folder, flags, raw.as_bytes());
    }

    /// Deletes one of a user's folders and creates it again: its mails are gone and its
    /// UIDVALIDITY is new, as after a server's mail store was rebuilt.
    pub fn recreate_folder(&self, user: &str, folder: &str) {
        let (mut w, mut r) = imap_connect(self.imap_port);
        for (tag, cmd) in [
            ("a1", format!("LOGIN {user} secret")),
            ("a2", format!("DELETE \"{folder}\"")),
            ("a3", format!("CREATE \"{folder}\"")),
            ("a4", "LOGOUT".to_string()),
        ] {
            write!(w, "{tag} {cmd}\r\n").unwrap();
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if line.starts_with(&format!("{tag} ")) {
                    // A folder that is not there yet cannot be deleted: that is fine.
                    let ok = line.starts_with(&format!("{tag} OK")) || tag == "a2";
                    assert!(ok, "IMAP {cmd}: {line}");
                    break;
                }
            }
        }
    }

    /// Puts messages into a user's folder over one connection.
    pub fn append_all(&self, user: &str, folder: &str, raws: &[String]) {
        let raws: Vec<&[u8]> = raws.iter().map(|r| r.as_bytes()).collect();
        imap_append_all(self.imap_port, user, folder, "", &raws);
    }

    /// How many messages one of a user's folders holds.
    pub fn count(&self, user: &str, folder: &str) -> usize {
        imap_count(self.imap_port, user, folder)
    }

    /// The `[mailboxes.imap]` table that reads a user's INBOX on this stack.
    pub fn imap_config(&self, user: &str, password_file: &Path) -> String {
        format!(
            "[mailboxes.imap]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"{user}\"\npassword_file = \"{}\"\n",
            self.imap_port,
            password_file.display()
        )
    }

    /// The `[mailboxes.imap]` table that reads a user's INBOX on this stack with OAuth2 (the
    /// `[mailboxes.imap.oauth2]` table follows it).
    pub fn imap_oauth2_config(&self, user: &str) -> String {
        format!(
            "[mailboxes.imap]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"{user}\"\nauth = \"oauth2\"\n",
            self.imap_port,
        )
    }

    /// The Maildir Dovecot keeps a user's INBOX in.
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.join("mail").join(user).join("Maildir")
    }

    /// The Postfix log, for assertion messages.
    pub fn postfix_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log/postfix.log")).unwrap_or_default()
    }
}

impl Drop for MailStack {
    fn drop(&mut self) {
        let _ = Command::new(script("stop.sh")).arg(&self.dir).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A connection to the stack's IMAP server, its greeting read: the writing and the reading half.
pub fn imap_connect(port: u16) -> (TcpStream, BufReader<TcpStream>) {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to IMAP");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("* OK"), "IMAP greeting: {line}");
    (w, r)
}

/// A minimal IMAP client: LOGIN, SELECT INBOX, UID FETCH 1:* BODY.PEEK[], LOGOUT.
fn imap_fetch_all(port: u16, user: &str) -> Vec<Vec<u8>> {
    imap_folder(port, user, "INBOX")
}

/// Every message in one of a user's folders (none when there is no such folder).
fn imap_folder(port: u16, user: &str, folder: &str) -> Vec<Vec<u8>> {
    let (mut w, mut r) = imap_connect(port);
    // The command's literals, and whether it succeeded.
    let mut command = |tag: &str, cmd: &str| -> (bool, Vec<Vec<u8>>) {
        write!(w, "{tag} {cmd}\r\n").unwrap();
        let mut literals = Vec::new();
        loop {
            let mut buf = Vec::new();
            r.read_until(b'\n', &mut buf).unwrap();
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(open) = text
                .trim_end()
                .strip_suffix('}')
                .and_then(|t| t.rfind('{').map(|i| &t[i + 1..]))
            {
                let n: usize = open.parse().unwrap();
                let mut body = vec![0; n];
                r.read_exact(&mut body).unwrap();
                literals.push(body);
                continue;
            }
            if text.starts_with(&format!("{tag} ")) {
                return (text.starts_with(&format!("{tag} OK")), literals);
            }
        }
    };
    assert!(
        command("a1", &format!("LOGIN {user} secret")).0,
        "IMAP LOGIN"
    );
    // EXAMINE: reading changes nothing (no \Recent taken, no flag set).
    let msgs = if command("a2", &format!("EXAMINE \"{folder}\"")).0 {
        let (ok, msgs) = command("a3", "UID FETCH 1:* (BODY.PEEK[])");
        assert!(ok, "IMAP FETCH");
        msgs
    } else {
        Vec::new()
    };
    command("a4", "LOGOUT");
    msgs
}

/// Puts a message into a user's folder over IMAP with these flags (e.g. `\\Seen`), as
/// another mail client would.
fn imap_append(port: u16, user: &str, folder: &str, flags: &str, raw: &[u8]) {
    imap_append_all(port, user, folder, flags, &[raw]);
}

/// How many messages a user's folder holds (STATUS), 0 without such a folder.
fn imap_count(port: u16, user: &str, folder: &str) -> usize {
    let (mut w, mut r) = imap_connect(port);
    write!(
        w,
        "a1 LOGIN {user} secret\r\na2 STATUS \"{folder}\" (MESSAGES)\r\na3 LOGOUT\r\n"
    )
    .unwrap();
    let mut count = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return count;
        }
        if let Some(rest) = line.split("(MESSAGES ").nth(1) {
            count = rest.trim_end().trim_end_matches(')').parse().unwrap_or(0);
        }
        if line.starts_with("a3 ") {
            return count;
        }
    }
}

/// Puts messages into a user's folder over one IMAP connection.
fn imap_append_all(port: u16, user: &str, folder: &str, flags: &str, raws: &[&[u8]]) {
    let (mut w, mut r) = imap_connect(port);
    let until = |tag: &str, r: &mut BufReader<TcpStream>| loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line.starts_with(tag) || line.starts_with('+') {
            return line;
        }
    };
    write!(w, "a1 LOGIN {user} secret\r\n").unwrap();
    let ok = until("a1 ", &mut r);
    assert!(ok.starts_with("a1 OK"), "{ok}");
    for raw in raws {
        write!(w, "a2 APPEND \"{folder}\" ({flags}) {{{}}}\r\n", raw.len()).unwrap();
        let go = until("a2 ", &mut r);
        assert!(go.starts_with('+'), "APPEND: {go}");
        w.write_all(raw).unwrap();
        w.write_all(b"\r\n").unwrap();
        let ok = until("a2 ", &mut r);
        assert!(ok.starts_with("a2 OK"), "APPEND: {ok}");
    }
    write!(w, "a3 LOGOUT\r\n").unwrap();
}

/// A header's value (unfolded) from a raw message.
pub fn header(raw: &str, name: &str) -> Option<String> {
    let head = raw.split("\r\n\r\n").next().unwrap_or(raw);
    let mut value: Option<String> = None;
    for line in head.split("\r\n") {
        if let Some(v) = &mut value {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            return value;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case(name)
        {
            value = Some(v.trim().to_string());
        }
    }
    value
}

/// A message's text part, decoded from quoted-printable.
pub fn text_part(raw: &str) -> String {
    part(raw, "text/plain")
}

/// A message's HTML part, decoded from quoted-printable.
pub fn html_part(raw: &str) -> String {
    part(raw, "text/html")
}

fn part(raw: &str, content_type: &str) -> String {
    let start = raw
        .find(&format!("Content-Type: {content_type}"))
        .unwrap_or_else(|| panic!("no {content_type} part"));
    let rest = &raw[start..];
    let body_start = rest.find("\r\n\r\n").unwrap() + 4;
    let base64 = rest[..body_start].contains("Content-Transfer-Encoding: base64");
    let body = &rest[body_start..];
    // The part ends at the next boundary line of any of the message's multiparts.
    let boundaries: Vec<&str> = raw
        .split("boundary=\"")
        .skip(1)
        .filter_map(|b| b.split('"').next())
        .collect();
    let end = boundaries
        .iter()
        .filter_map(|b| body.find(&format!("\r\n--{b}")))
        .min()
        .unwrap_or(body.len());
    if base64 {
        use base64::Engine;
        let compact: String = body[..end].split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .expect("base64 part");
        return String::from_utf8_lossy(&bytes).replace("\r\n", "\n");
    }
    qp_decode(&body[..end])
}

fn qp_decode(s: &str) -> String {
    let s = s.replace("=\r\n", "");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}
