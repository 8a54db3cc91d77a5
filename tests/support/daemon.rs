//! `deskmail run` as a child process, as systemd would run it: its log in a file, its HTTP
//! endpoint on a free port, stopped by signals. Killed when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::TestEnv;

pub struct Daemon {
    child: Child,
    pub log: PathBuf,
    pub port: u16,
}

/// Waits until `ready` holds, or panics after `within` saying what did not happen.
pub fn wait_until(what: &str, within: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ready() {
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Daemon {
    /// Starts `deskmail run` in the environment and waits until its endpoint answers.
    pub fn start(env: &TestEnv) -> Daemon {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = env.path(&format!("daemon-{port}.log"));
        let mut command = env.command();
        command
            .arg("run")
            .env("DESKMAIL__DAEMON__LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "RUST_LOG",
                std::env::var("DESKMAIL_TEST_DAEMON_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = command.spawn().expect("deskmail run");
        let mut daemon = Daemon { child, log, port };
        wait_until("the daemon's endpoint", Duration::from_secs(30), || {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("deskmail run exited with {status}:\n{}", daemon.log());
            }
            daemon.try_get("/healthz").is_some()
        });
        daemon
    }

    /// [`wait_until`], saying the daemon's log when it does not happen.
    pub fn wait_until(&self, what: &str, within: Duration, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + within;
        while !ready() {
            assert!(
                Instant::now() < deadline,
                "waited {within:?} for {what}; the daemon's log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn try_get(&self, path: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n")?.1.to_string();
        Some((status, body))
    }

    /// `GET path`: the status and the body.
    pub fn get(&self, path: &str) -> (u16, String) {
        self.try_get(path)
            .unwrap_or_else(|| panic!("GET {path}: no answer\n{}", self.log()))
    }

    /// A metric's value as `/metrics` shows it (the line starting with `series`), 0 if absent.
    pub fn metric(&self, series: &str) -> f64 {
        let (_, body) = self.get("/metrics");
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }

    pub fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    /// Sends SIGTERM and waits for the exit: its status and how long it took.
    pub fn stop(mut self) -> (ExitStatus, Duration, String) {
        let asked = Instant::now();
        self.signal("TERM");
        let deadline = asked + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, asked.elapsed(), self.log());
            }
            assert!(Instant::now() < deadline, "no exit 30 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
