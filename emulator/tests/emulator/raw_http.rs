//! Raw HTTP with full control over framing, for requests no well-behaved client sends:
//! the hostile corpus, slow clients and the fault receiver speak it.

use super::harness::*;
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct RawResponse {
    /// `None`: the connection closed (or stayed silent) without a status line.
    pub status: Option<u16>,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends `request` on a fresh connection while reading the answer, so a server that
/// answers before reading everything (413, 431) is heard rather than reset.
pub async fn exchange(addr: &str, request: Vec<u8>, wait: Duration) -> RawResponse {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        // The server may close early on purpose; a failed write is part of the test.
        let _ = wr.write_all(&request).await;
        // Keep the write half open: a half-close would read as the client going away.
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(wr);
    });
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(wait, async {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if complete(&buf) {
                break;
            }
        }
    })
    .await;
    writer.abort();
    parse_response(&buf)
}

/// Whether `buf` holds a whole response (head plus a Content-Length body).
fn complete(buf: &[u8]) -> bool {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    len.is_some_and(|n| buf.len() >= end + 4 + n)
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_response(buf: &[u8]) -> RawResponse {
    let end = find(buf, b"\r\n\r\n");
    let head = String::from_utf8_lossy(&buf[..end.unwrap_or(buf.len())]).into_owned();
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| head.strip_prefix("HTTP/1.0 "))
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok());
    let body = end.map(|e| buf[e + 4..].to_vec()).unwrap_or_default();
    RawResponse { status, head, body }
}

pub fn addr_of(emu: &Emu) -> String {
    emu.url.trim_start_matches("http://").to_owned()
}
