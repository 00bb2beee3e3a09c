//! Receivers that fail in every way we know (issue 9): each attempt is retried with
//! back-off on the emulator's clock and logged, a receiver that is down gets every
//! webhook once it is back, and past the retry horizon deliveries die.

use super::harness::*;
use super::raw_http::find;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wa_emulator::engine::ClockMode;
use wa_emulator::server::ServeOptions;

/// What the fault receiver does with one webhook POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// 200 and the connection closes.
    Healthy,
    /// This status with a short body.
    Status(u16),
    /// Reads the request, then never answers.
    Hang,
    /// Reads the request, then closes without a word.
    CloseWithoutAnswer,
    /// Answers bytes that are not HTTP.
    Garbage,
    /// Reads the request a byte at a time (≈1.5 s for a webhook), past the timeout.
    SlowRead,
    /// A 200 status line promising 100 bytes of body, then closes after 2.
    OkThenCloseEarly,
}

#[derive(Debug, Clone)]
struct Seen {
    /// Arrival order (a slow read finishes after later requests).
    n: usize,
    fault: Fault,
    body: Vec<u8>,
    signature_ok: bool,
}

/// A webhook receiver on raw TCP that misbehaves as scripted, one fault per POST (then
/// healthy), answers the GET handshake properly, and can stop and resume listening on
/// the same port.
struct FaultReceiver {
    addr: SocketAddr,
    url: String,
    script: Arc<Mutex<VecDeque<Fault>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    accept: Option<tokio::task::JoinHandle<()>>,
}

impl FaultReceiver {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut rx = Self {
            addr,
            url: format!("http://{addr}/webhook"),
            script: Arc::default(),
            seen: Arc::default(),
            accept: None,
        };
        rx.serve(listener);
        rx
    }

    /// A receiver whose port refuses connections until [`FaultReceiver::listen_again`].
    async fn down() -> Self {
        let mut rx = Self::start().await;
        rx.stop_listening().await;
        rx
    }

    fn serve(&mut self, listener: TcpListener) {
        let (script, seen) = (self.script.clone(), self.seen.clone());
        self.accept = Some(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_faulty(stream, script.clone(), seen.clone()));
            }
        }));
    }

    async fn stop_listening(&mut self) {
        if let Some(t) = self.accept.take() {
            t.abort();
            let _ = t.await;
        }
    }

    async fn listen_again(&mut self) {
        let listener = TcpListener::bind(self.addr).await.expect("rebind the port");
        self.serve(listener);
    }

    fn script(&self, faults: &[Fault]) {
        self.script.lock().unwrap().extend(faults.iter().copied());
    }

    fn seen(&self) -> Vec<Seen> {
        let mut seen = self.seen.lock().unwrap().clone();
        seen.sort_by_key(|s| s.n);
        seen
    }
}

static ARRIVALS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

async fn serve_faulty(
    mut s: TcpStream,
    script: Arc<Mutex<VecDeque<Fault>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    if head.starts_with("GET ") {
        // The verification handshake: echo hub.challenge.
        let target = head.split(' ').nth(1).unwrap_or("");
        let challenge = target
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("hub.challenge="))
            .unwrap_or("");
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{challenge}",
            challenge.len()
        );
        let _ = s.write_all(resp.as_bytes()).await;
        return;
    }
    let (n, fault) = {
        let mut script = script.lock().unwrap();
        let n = ARRIVALS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        (n, script.pop_front().unwrap_or(Fault::Healthy))
    };
    let lower = head.to_ascii_lowercase();
    let header = |name: &str| {
        lower
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_owned())
    };
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let signature = header("x-hub-signature-256").unwrap_or_default();
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        if fault == Fault::SlowRead {
            let mut one = [0u8; 1];
            match s.read(&mut one).await {
                Ok(0) | Err(_) => break,
                Ok(_) => body.push(one[0]),
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        } else {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
    }
    if fault == Fault::SlowRead {
        // The whole request already sat in the socket; reading it slowly is the point.
        tokio::time::sleep(Duration::from_millis(len as u64 + 500)).await;
    }
    let expected = independent_signature(SECRET.as_bytes(), &body);
    seen.lock().unwrap().push(Seen {
        n,
        fault,
        signature_ok: expected == signature,
        body,
    });
    let answer: &[u8] = match fault {
        Fault::Healthy | Fault::SlowRead => {
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
        }
        Fault::Status(code) => {
            let resp = format!(
                "HTTP/1.1 {code} Nope\r\ncontent-length: 4\r\nconnection: close\r\n\r\nboom"
            );
            let _ = s.write_all(resp.as_bytes()).await;
            return;
        }
        Fault::Hang => {
            tokio::time::sleep(Duration::from_secs(20)).await;
            return;
        }
        Fault::CloseWithoutAnswer => return,
        Fault::Garbage => b"this is not HTTP at all\r\n\r\n",
        Fault::OkThenCloseEarly => {
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\nok"
        }
    };
    let _ = s.write_all(answer).await;
}

fn fast_timeout_opts(seed: u64) -> ServeOptions {
    let mut opts = ServeOptions::for_tests(ClockMode::Virtual, seed);
    opts.webhook_timeout_ms = 300;
    opts
}

/// The attempts of delivery `seq` once it has `n` of them (bounded wait).
#[allow(clippy::disallowed_methods, reason = "bounded wait on real sockets")]
async fn attempts_of(emu: &Emu, seq: u64, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = emu
            .webhooks()
            .await
            .into_iter()
            .find(|d| d["seq"] == seq)
            .unwrap_or_else(|| panic!("no delivery {seq}"));
        let attempts = d["attempts"].as_array().cloned().unwrap_or_default();
        if attempts.len() >= n || Instant::now() > deadline {
            return attempts;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn deliveries_retry_through_every_receiver_fault_and_the_log_tells_each_attempt() {
    use Fault::*;
    let mut rx = FaultReceiver::start().await;
    let emu = Emu::start_with(fast_timeout_opts(11)).await;
    emu.ok("PUT", "/webhook", json!({ "url": rx.url })).await;
    rx.script(&[
        Status(500),
        Status(404),
        Hang,
        CloseWithoutAnswer,
        Garbage,
        SlowRead,
    ]);
    emu.send(voice_call(USER, json!({"payload": "P"}))).await;
    let hooks = emu.webhooks().await;
    let sent = hooks[0]["seq"].as_u64().unwrap();
    assert_eq!(hooks[0]["event"], "status_sent", "{}", hooks[0]);
    // One fault per attempt; between attempts, the back-off on the emulator's clock.
    let backoff = [5u64, 15, 60, 300, 900, 3600, 7200];
    let mut attempts = attempts_of(&emu, sent, 1).await;
    for (i, wait) in backoff.iter().enumerate() {
        assert_eq!(attempts.len(), i + 1, "attempts so far: {attempts:?}");
        if i == 5 {
            // The receiver goes away: the next attempt meets a closed port.
            rx.stop_listening().await;
        }
        if i == 6 {
            rx.listen_again().await;
            rx.script(&[OkThenCloseEarly]);
        }
        emu.advance(*wait as f64 - 1.0).await;
        assert_eq!(
            attempts_of(&emu, sent, 0).await.len(),
            i + 1,
            "no retry before {wait} s"
        );
        emu.advance(1.0).await;
        attempts = attempts_of(&emu, sent, i + 2).await;
    }
    assert_eq!(attempts.len(), 8, "{attempts:?}");
    let gaps: Vec<u64> = attempts
        .windows(2)
        .map(|w| (w[1]["at_ms"].as_u64().unwrap() - w[0]["at_ms"].as_u64().unwrap()) / 1000)
        .collect();
    assert_eq!(gaps, backoff, "back-off between attempts (s)");
    let what: Vec<String> = attempts
        .iter()
        .map(|a| match (a["status"].as_u64(), a["error"].as_str()) {
            (Some(s), None) => format!("status {s}"),
            (None, Some(e)) => format!("error {e}"),
            _ => panic!("an attempt with both or neither status and error: {a}"),
        })
        .collect();
    let expect = |i: usize, ok: &dyn Fn(&str) -> bool, why: &str| {
        assert!(
            ok(&what[i]),
            "attempt {} ({why}) logged as {:?}",
            i + 1,
            what[i]
        );
    };
    expect(0, &|w| w == "status 500", "500");
    assert_eq!(attempts[0]["response_body"], "boom");
    expect(1, &|w| w == "status 404", "404");
    expect(2, &|w| w.contains("timed out"), "no answer");
    expect(
        3,
        &|w| w.starts_with("error ") && w.len() > 10,
        "closed without an answer",
    );
    expect(4, &|w| w.starts_with("error ") && w.len() > 10, "not HTTP");
    expect(5, &|w| w.contains("timed out"), "slow read");
    expect(
        6,
        &|w| w.to_ascii_lowercase().contains("refused"),
        "closed port",
    );
    expect(7, &|w| w == "status 200", "200 then an early close");
    for a in &attempts {
        assert_eq!(a["url"], rx.url.as_str());
    }
    // The later webhook of the same message waited its turn, then went out once.
    let got = wait_until(Duration::from_secs(5), || rx.seen().len() >= 8).await;
    assert!(got, "{:?}", rx.seen());
    let hooks = emu.webhooks().await;
    assert!(hooks.iter().all(|d| d["state"] == "delivered"), "{hooks:?}");
    let seen = rx.seen();
    let faults: Vec<Fault> = seen.iter().map(|s| s.fault).collect();
    assert_eq!(
        faults,
        vec![
            Status(500),
            Status(404),
            Hang,
            CloseWithoutAnswer,
            Garbage,
            SlowRead,
            OkThenCloseEarly,
            Healthy
        ],
        "every attempt but the refused one reached the receiver"
    );
    assert!(seen.iter().all(|s| s.signature_ok));
    for s in &seen[..7] {
        assert_eq!(s.body, hooks[0]["raw"].as_str().unwrap().as_bytes());
    }
    assert_eq!(seen[7].body, hooks[1]["raw"].as_str().unwrap().as_bytes());
    // The server is unharmed.
    emu.send(voice_call(USER, json!({}))).await;
}

#[allow(clippy::disallowed_methods, reason = "bounded wait on real sockets")]
async fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ok()
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_every_webhook_once_it_is_back() {
    let mut rx = FaultReceiver::start().await;
    let emu = Emu::start_with(fast_timeout_opts(12)).await;
    emu.ok("PUT", "/webhook", json!({ "url": rx.url })).await;
    rx.stop_listening().await;
    let mut mids = Vec::new();
    for i in 0..5 {
        mids.push(
            emu.send(voice_call(&format!("1631555{i:04}"), json!({})))
                .await,
        );
    }
    emu.ok(
        "POST",
        "/users/16315550000/tap",
        json!({ "message_id": mids[0] }),
    )
    .await;
    emu.advance(30.0).await;
    let before = emu.webhooks().await;
    assert!(before.iter().all(|d| d["state"] == "pending"), "{before:?}");
    assert!(before
        .iter()
        .filter(|d| !d["attempts"].as_array().unwrap().is_empty())
        .all(
            |d| d["attempts"].as_array().unwrap().iter().all(|a| a["error"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("refused"))
        ));
    rx.listen_again().await;
    emu.advance(3600.0).await;
    let after = emu.webhooks().await;
    for d in &before {
        assert!(
            after.iter().any(|a| a["seq"] == d["seq"]),
            "delivery {} vanished",
            d["seq"]
        );
    }
    assert!(after.iter().all(|d| d["state"] == "delivered"), "{after:?}");
    let mut got: Vec<Vec<u8>> = rx.seen().into_iter().map(|s| s.body).collect();
    let mut sent: Vec<Vec<u8>> = after
        .iter()
        .map(|d| d["raw"].as_str().unwrap().as_bytes().to_vec())
        .collect();
    got.sort();
    sent.sort();
    assert_eq!(got, sent, "each webhook arrived exactly once");
}

#[tokio::test]
async fn past_the_retry_horizon_calls_webhooks_die_after_an_hour_and_messages_after_seven_days() {
    let rx = FaultReceiver::down().await;
    let mut opts = fast_timeout_opts(13);
    // Set at start-up: the failed handshake is only a warning, the URL stays.
    opts.tenants.apps[0].webhook_url = Some(rx.url.clone());
    let emu = Emu::start_with(opts).await;
    let mid = emu.send(voice_call(USER, json!({"payload": "P"}))).await;
    emu.ok(
        "POST",
        &format!("/users/{USER}/tap"),
        json!({ "message_id": mid }),
    )
    .await;
    let by_field = |hooks: &[Value], field: &str| -> Vec<Value> {
        hooks
            .iter()
            .filter(|d| d["field"] == field)
            .cloned()
            .collect()
    };
    emu.advance(3600.0).await;
    let hooks = emu.webhooks().await;
    let calls = by_field(&hooks, "calls");
    assert!(calls.len() >= 2, "connect and terminate: {calls:?}");
    for d in &calls {
        assert_eq!(d["state"], "dead", "a calls webhook past 1 h: {d}");
        let created = d["created_at_ms"].as_u64().unwrap();
        let attempts = d["attempts"].as_array().unwrap();
        assert!(attempts.len() >= 5, "{d}");
        for a in attempts {
            assert!(a["at_ms"].as_u64().unwrap() <= created + 3_600_000);
            assert!(a["error"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("refused"));
        }
    }
    let messages = by_field(&hooks, "messages");
    assert!(messages.len() >= 3, "sent, delivered, read: {messages:?}");
    assert!(
        messages.iter().all(|d| d["state"] == "pending"),
        "messages webhooks live for 7 days: {messages:?}"
    );
    emu.advance(7.0 * 24.0 * 3600.0).await;
    let hooks = emu.webhooks().await;
    let messages = by_field(&hooks, "messages");
    for d in &messages {
        assert_eq!(d["state"], "dead", "{d}");
        let created = d["created_at_ms"].as_u64().unwrap();
        let attempts = d["attempts"].as_array().unwrap();
        assert!(!attempts.is_empty(), "{d}");
        assert!(attempts
            .iter()
            .all(|a| a["at_ms"].as_u64().unwrap() <= created + 7 * 24 * 3_600_000));
    }
    let first = messages[0]["attempts"].as_array().unwrap();
    let last = first.last().unwrap()["at_ms"].as_u64().unwrap()
        - messages[0]["created_at_ms"].as_u64().unwrap();
    assert!(
        last > 6 * 24 * 3_600_000,
        "retried into the seventh day, last at {last} ms: {first:?}"
    );
    let (_, v) = emu.admin("GET", "/webhooks?limit=0", Value::Null).await;
    assert_eq!(v["pending"], 0, "{v}");
    assert!(rx.seen().is_empty());
}
