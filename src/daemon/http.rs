//! The HTTP endpoint on `daemon.listen`: `GET /metrics` (OpenMetrics text), `/healthz` (the
//! process answers) and `/readyz` (the store answers and every mailbox is connected or just
//! reconnecting; 503 with a line per mailbox otherwise). A request is one line and some
//! headers, read within 5 seconds and 8 KiB; the answer closes the connection.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Shared;
use crate::errors;

const REQUEST_BYTES: usize = 8 * 1024;
const REQUEST_TIME: Duration = Duration::from_secs(5);

pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut stopping = shared.stopping.clone();
    loop {
        let (stream, _) = tokio::select! {
            _ = super::stopped(&mut stopping) => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("HTTP: cannot accept: {}", errors::Chain(&e));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            if let Err(e) = tokio::time::timeout(REQUEST_TIME, answer(stream, &shared)).await {
                tracing::debug!("HTTP: request not read in time: {}", errors::Chain(&e));
            }
        });
    }
}

async fn answer(mut stream: TcpStream, shared: &Shared) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < REQUEST_BYTES {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, kind, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            shared.metrics.encode(),
        ),
        ("GET", "/healthz") => ("200 OK", TEXT, "ok\n".to_string()),
        ("GET", "/readyz") => ready(shared).await,
        ("GET", _) => ("404 Not Found", TEXT, "not found\n".to_string()),
        _ => ("405 Method Not Allowed", TEXT, "GET only\n".to_string()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

const TEXT: &str = "text/plain; charset=utf-8";

async fn ready(shared: &Shared) -> (&'static str, &'static str, String) {
    let (mut ok, mut lines) = shared.health.readiness();
    let desk = shared.desk();
    match tokio::time::timeout(Duration::from_secs(2), desk.store.ping()).await {
        Ok(Ok(())) => lines.insert(0, "store: reachable".into()),
        Ok(Err(e)) => {
            ok = false;
            lines.insert(0, format!("store: {}", errors::Chain(&e)));
        }
        Err(_) => {
            ok = false;
            lines.insert(0, "store: no answer within 2 s".into());
        }
    }
    let mut body = lines.join("\n");
    body.push('\n');
    let status = if ok {
        "200 OK"
    } else {
        "503 Service Unavailable"
    };
    (status, TEXT, body)
}
