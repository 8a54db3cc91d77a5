//! The first two checks of any server: its name resolves (DNS), and it takes a TCP connection.

use std::net::SocketAddr;

use tokio::net::TcpStream;

use super::{Check, timed, too_slow};

/// Resolves `host` (a name or an address); the addresses, or the failed check.
pub async fn dns(subject: &str, host: &str, port: u16) -> Result<(Check, Vec<SocketAddr>), Check> {
    let hint = format!(
        "check the host name in the config; `getent hosts {host}` on this machine shows what it resolves to"
    );
    match timed(tokio::net::lookup_host((host, port))).await {
        None => Err(Check::fail(subject, "DNS", too_slow(), hint)),
        Some(Err(e)) => Err(Check::fail(
            subject,
            "DNS",
            format!("{host} does not resolve: {e}"),
            hint,
        )),
        Some(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                return Err(Check::fail(
                    subject,
                    "DNS",
                    format!("{host} has no address"),
                    hint,
                ));
            }
            let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            let detail = format!("{host} is {}", shown.join(", "));
            Ok((Check::ok(subject, "DNS", detail), addrs))
        }
    }
}

/// Connects to the first address that answers, and hangs up.
pub async fn tcp(subject: &str, addrs: &[SocketAddr], port_hint: &str) -> Check {
    let mut last = String::new();
    for addr in addrs {
        match timed(TcpStream::connect(addr)).await {
            Some(Ok(_)) => {
                return Check::ok(subject, "TCP", format!("{addr} takes connections"));
            }
            Some(Err(e)) => last = format!("{addr}: {e}"),
            None => last = format!("{addr}: {}", too_slow()),
        }
    }
    Check::fail(
        subject,
        "TCP",
        last,
        format!(
            "check the port ({port_hint}), that the server runs, and that no firewall between this host and it drops the connection"
        ),
    )
}
