//! `[daemon]`: what `deskmail run` does besides taking mail in.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::Loader;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDaemon {
    listen: Option<String>,
    sweep_every_secs: Option<u64>,
    outbox_every_secs: Option<u64>,
    stop_within_secs: Option<u64>,
    lease_secs: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct DaemonSettings {
    /// Where `/metrics`, `/healthz` and `/readyz` are served; `None`: nowhere.
    pub listen: Option<SocketAddr>,
    /// How often the time rules run.
    pub sweep_every: Duration,
    /// How often the outbox is looked at besides when a change queued mail (retries, and
    /// mail queued by other processes).
    pub outbox_every: Duration,
    /// How long a stop may take: what is not done by then is redone by the next start.
    pub stop_within: Duration,
    /// How long a daemon's hold on a mailbox lasts unless renewed (several daemons on one
    /// PostgreSQL database).
    pub lease: Duration,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        DaemonSettings {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9187))),
            sweep_every: Duration::from_secs(60),
            outbox_every: Duration::from_secs(15),
            stop_within: Duration::from_secs(10),
            lease: Duration::from_secs(30),
        }
    }
}

pub(crate) fn resolve(l: &mut Loader, raw: RawDaemon) -> DaemonSettings {
    let d = DaemonSettings::default();
    let listen = match raw.listen.as_deref() {
        None => d.listen,
        Some("") => None,
        Some(s) => match s.parse() {
            Ok(a) => Some(a),
            Err(e) => {
                l.problem(
                    "daemon.listen",
                    format!("\"{s}\" is not an address and port such as 127.0.0.1:9187 ({e})"),
                );
                None
            }
        },
    };
    let mut secs = |key: &str, v: Option<u64>, default: Duration, least: u64| {
        let v = v.unwrap_or(default.as_secs());
        if v < least {
            l.problem(format!("daemon.{key}"), format!("must be at least {least}"));
        }
        Duration::from_secs(v.max(least))
    };
    DaemonSettings {
        listen,
        sweep_every: secs("sweep_every_secs", raw.sweep_every_secs, d.sweep_every, 1),
        outbox_every: secs(
            "outbox_every_secs",
            raw.outbox_every_secs,
            d.outbox_every,
            1,
        ),
        stop_within: secs("stop_within_secs", raw.stop_within_secs, d.stop_within, 1),
        lease: secs("lease_secs", raw.lease_secs, d.lease, 5),
    }
}
