//! Slow clients (issue 9): clients that trickle their headers do not slow anyone else
//! down, and stalled ones are cut off after the client timeout.

use super::harness::*;
use super::raw_http::addr_of;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[allow(clippy::disallowed_methods, reason = "measures real latency")]
#[tokio::test]
async fn clients_trickling_headers_do_not_slow_down_anyone_else() {
    let emu = Emu::start().await;
    let addr = addr_of(&emu);
    let mut slow = Vec::new();
    for i in 0..32 {
        let addr = addr.clone();
        slow.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(&addr).await.unwrap();
            let head = format!("POST /v21.0/{PHONE}/messages HTTP/1.1\r\nhost: x\r\nx-slow-{i}: ");
            s.write_all(head.as_bytes()).await.unwrap();
            // A byte every 100 ms: well inside any per-read timeout, never finishing.
            loop {
                if s.write_all(b"a").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    for i in 0..40 {
        let one = Instant::now();
        let to = format!("1631555{i:04}");
        let (s, v) = emu
            .graph(
                "POST",
                &format!("/{PHONE}/messages"),
                Some(voice_call(&to, json!({}))),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert!(
            one.elapsed() < Duration::from_secs(1),
            "request {i} took {:?} beside 32 slow clients",
            one.elapsed()
        );
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    for t in slow {
        t.abort();
    }
}

/// Slow clients are cut off after the client timeout (30 s by default, 1 s here): a
/// client stalled in its headers, and one stalled in its body.
#[tokio::test]
async fn stalled_clients_are_disconnected() {
    let mut opts =
        wa_emulator::server::ServeOptions::for_tests(wa_emulator::engine::ClockMode::Virtual, 7);
    opts.client_timeout_ms = 1_000;
    let emu = Emu::start_with(opts).await;
    let addr = addr_of(&emu);
    let stall = |req: String| {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut s = TcpStream::connect(&addr).await.unwrap();
            s.write_all(req.as_bytes()).await.unwrap();
            let mut buf = [0u8; 1024];
            tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .is_ok()
        })
    };
    let headers = stall(format!(
        "POST /v21.0/{PHONE}/messages HTTP/1.1\r\nhost: x\r\n"
    ));
    let body = stall(format!(
        "POST /v21.0/{PHONE}/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{{\"a\":"
    ));
    assert!(
        headers.await.unwrap(),
        "a client stalled in its headers is still connected after 5 s (timeout 1 s)"
    );
    assert!(
        body.await.unwrap(),
        "a client stalled in its body is still connected after 5 s (timeout 1 s)"
    );
}
