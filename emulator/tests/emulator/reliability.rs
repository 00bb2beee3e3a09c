//! Reliability (issue 9): the hostile request corpus in `tests/hostile`, slow clients,
//! receivers that fail in every way we know, 1,000 concurrent clients, and who may call
//! what (bind address, admin token, tenants, logs).

use super::harness::*;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wa_emulator::engine::ClockMode;
use wa_emulator::server::ServeOptions;

// ---- raw HTTP: full control over framing, for requests no well-behaved client sends ----

#[derive(Debug)]
struct RawResponse {
    /// `None`: the connection closed (or stayed silent) without a status line.
    status: Option<u16>,
    head: String,
    body: Vec<u8>,
}

impl RawResponse {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends `request` on a fresh connection while reading the answer, so a server that
/// answers before reading everything (413, 431) is heard rather than reset.
async fn exchange(addr: &str, request: Vec<u8>, wait: Duration) -> RawResponse {
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

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
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

fn addr_of(emu: &Emu) -> String {
    emu.url.trim_start_matches("http://").to_owned()
}

/// The state a request could change: the snapshot without the request journal and the
/// clock/id cursors that reads move.
async fn state(emu: &Emu) -> Value {
    let (status, mut v) = emu.admin("GET", "/snapshot", Value::Null).await;
    assert_eq!(status, 200, "snapshot: {v}");
    let o = v.as_object_mut().expect("the snapshot is an object");
    for k in ["journal", "now_ms", "id_cursor"] {
        o.remove(k);
    }
    v
}

/// What a Graph error envelope with this code lacks of what an integrator reads.
fn graph_error_problem(v: &Value, code: u64) -> Option<String> {
    let e = &v["error"];
    if e["code"].as_u64() != Some(code) {
        return Some(format!("error.code is {}, expected {code}", e["code"]));
    }
    for k in ["message", "type", "fbtrace_id"] {
        if e[k].as_str().is_none_or(str::is_empty) {
            return Some(format!("error.{k} is missing"));
        }
    }
    if e["error_data"]["details"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        return Some("error.error_data.details is missing".into());
    }
    None
}

fn assert_graph_error(what: &str, v: &Value, code: u64) {
    if let Some(p) = graph_error_problem(v, code) {
        panic!("{what}: {p}: {v}");
    }
}

// ---- the hostile corpus ------------------------------------------------------------

/// Text in a corpus file: a plain string, raw bytes in base64, or a generated run (so a
/// 5 MiB body or 100,000 brackets need not be committed).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Text {
    Plain(String),
    Base64 {
        base64: String,
    },
    Repeat {
        #[serde(default)]
        prefix: String,
        repeat: String,
        times: usize,
        #[serde(default)]
        suffix: String,
    },
}

impl Text {
    fn bytes(&self) -> Vec<u8> {
        use base64::Engine as _;
        match self {
            Text::Plain(s) => s.as_bytes().to_vec(),
            Text::Base64 { base64 } => base64::engine::general_purpose::STANDARD
                .decode(base64)
                .expect("valid base64 in the corpus"),
            Text::Repeat {
                prefix,
                repeat,
                times,
                suffix,
            } => {
                let mut out = prefix.as_bytes().to_vec();
                for _ in 0..*times {
                    out.extend_from_slice(repeat.as_bytes());
                }
                out.extend_from_slice(suffix.as_bytes());
                out
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    probe: String,
    method: String,
    path: Text,
    #[serde(default)]
    headers: Vec<(String, Text)>,
    body: Option<Text>,
    /// The case frames the body itself (Content-Length / Transfer-Encoding headers).
    #[serde(default)]
    raw_framing: bool,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    status: u16,
    /// The Graph `error.code`; absent when the HTTP layer answers (431 and the like),
    /// which sends no Graph body.
    code: Option<u64>,
    /// A piece of `error.error_data.details`.
    details: Option<String>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile")
}

fn corpus() -> Vec<(String, Case)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/hostile exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap();
            let case: Case = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, case)
        })
        .collect()
}

fn wire_bytes(case: &Case) -> Vec<u8> {
    let body = case.body.as_ref().map(Text::bytes).unwrap_or_default();
    let mut req = Vec::new();
    req.extend_from_slice(case.method.as_bytes());
    req.push(b' ');
    req.extend_from_slice(&case.path.bytes());
    req.extend_from_slice(b" HTTP/1.1\r\nhost: 127.0.0.1\r\n");
    for (k, v) in &case.headers {
        req.extend_from_slice(k.as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(&v.bytes());
        req.extend_from_slice(b"\r\n");
    }
    if !case.raw_framing {
        req.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    req.extend_from_slice(b"connection: close\r\n\r\n");
    req.extend_from_slice(&body);
    req
}

#[tokio::test]
async fn every_hostile_request_gets_its_error_changes_nothing_and_the_server_keeps_serving() {
    let cases = corpus();
    assert!(cases.len() >= 50, "the corpus holds {} cases", cases.len());
    let readme = std::fs::read_to_string(corpus_dir().join("README.md")).unwrap();
    let emu = Emu::start().await;
    // Something to lose: a user, a message with a button, an ongoing call, a template.
    let rx = Receiver::default_tenant().await;
    emu.set_webhook(&rx).await;
    let mid = emu.send(voice_call(USER, json!({"payload": "P"}))).await;
    emu.ok(
        "POST",
        &format!("/users/{USER}/tap"),
        json!({ "message_id": mid }),
    )
    .await;
    let (s, v) = emu
        .graph(
            "POST",
            &format!("/{WABA}/message_templates"),
            Some(json!({"name":"kept","language":"en","category":"UTILITY","components":[{"type":"BODY","text":"hi"}]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let addr = addr_of(&emu);
    let mut failures = Vec::new();
    for (name, case) in &cases {
        assert!(
            readme.contains(name.as_str()),
            "tests/hostile/README.md says nothing about {name}"
        );
        assert!(!case.probe.is_empty(), "{name}: say what it probes");
        let before = state(&emu).await;
        let started = Instant::now();
        let r = exchange(&addr, wire_bytes(case), Duration::from_secs(10)).await;
        let took = started.elapsed();
        let v = r.json();
        let mut problems = Vec::new();
        if r.status != Some(case.expect.status) {
            problems.push(format!(
                "status {:?}, expected {}",
                r.status, case.expect.status
            ));
        }
        if let Some(p) = case.expect.code.and_then(|c| graph_error_problem(&v, c)) {
            problems.push(p);
        }
        if let Some(d) = &case.expect.details {
            let got = v["error"]["error_data"]["details"].as_str().unwrap_or("");
            if !got.contains(d.as_str()) {
                problems.push(format!("details {got:?} lack {d:?}"));
            }
        }
        if took > Duration::from_secs(5) {
            problems.push(format!("took {took:?}"));
        }
        let (h, _) = emu.raw("GET", "/__emulator/health", &[], "").await;
        if h != 200 {
            problems.push(format!("health answered {h} afterwards"));
        }
        let after = state(&emu).await;
        if before != after {
            problems.push(diff("state changed", &before, &after));
        }
        if !problems.is_empty() {
            let shown: String = String::from_utf8_lossy(&r.body).chars().take(400).collect();
            failures.push(format!(
                "{name} ({}): {}\n    head: {}\n    body: {shown}",
                case.probe,
                problems.join("; "),
                r.head.lines().next().unwrap_or("")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} hostile requests misbehaved:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // Still whole: the world built before the corpus works on.
    let (s, v) = emu.admin("GET", "/calls", Value::Null).await;
    assert_eq!(s, 200);
    assert_eq!(v["calls"][0]["status"], "ringing", "{v}");
    emu.send(voice_call(USER, json!({}))).await;
}

/// The first top-level keys whose values differ, for a readable failure.
fn diff(what: &str, a: &Value, b: &Value) -> String {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return format!("{what}: {a} → {b}");
    };
    let keys: std::collections::BTreeSet<&String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .collect();
    let shown: Vec<String> = keys
        .iter()
        .take(3)
        .map(|k| {
            let s = |v: Option<&Value>| {
                v.map(|v| v.to_string().chars().take(300).collect::<String>())
                    .unwrap_or_else(|| "(absent)".into())
            };
            format!("{k}: {} → {}", s(a.get(*k)), s(b.get(*k)))
        })
        .collect();
    format!("{what}: {}", shown.join("; "))
}

// ---- slow clients -------------------------------------------------------------------

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

// ---- receivers that fail ------------------------------------------------------------

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
    use hmac::{Hmac, Mac};
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
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
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

// ---- concurrency --------------------------------------------------------------------

/// What a webhook is about, from its body: (field, event, object id).
fn webhook_key(body: &Value) -> (String, String, String) {
    let change = &body["entry"][0]["changes"][0];
    let field = change["field"].as_str().unwrap_or("").to_owned();
    let v = &change["value"];
    let pick = |list: &str, event: &str| {
        v[list].get(0).map(|x| {
            (
                format!("{list}:{}", x[event].as_str().unwrap_or("")),
                x["id"].as_str().unwrap_or("").to_owned(),
            )
        })
    };
    let (event, id) = pick("statuses", "status")
        .or_else(|| pick("calls", "event"))
        .or_else(|| pick("messages", "type"))
        .unwrap_or_else(|| ("other".into(), body.to_string()));
    (field, event, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_clients_and_every_webhook_arrives_exactly_once() {
    const CLIENTS: usize = 1000;
    let emu = Arc::new(Emu::start().await);
    let rx = Receiver::default_tenant().await;
    emu.set_webhook(&rx).await;
    let run = async {
        let mut tasks = Vec::new();
        for i in 0..CLIENTS {
            let emu = emu.clone();
            tasks.push(tokio::spawn(async move {
                let to = format!("1632{i:07}");
                let (s, v) = emu
                    .graph(
                        "POST",
                        &format!("/{PHONE}/messages"),
                        Some(voice_call(&to, json!({ "payload": format!("p{i}") }))),
                    )
                    .await;
                assert_eq!(s, 200, "send {i}: {v}");
                let mid = v["messages"][0]["id"].as_str().unwrap().to_owned();
                let (s, v) = emu
                    .admin(
                        "POST",
                        &format!("/users/{to}/tap"),
                        json!({ "message_id": mid }),
                    )
                    .await;
                assert_eq!(s, 200, "tap {i}: {v}");
                v["call_id"].as_str().unwrap().to_owned()
            }));
        }
        let mut calls = std::collections::HashSet::new();
        for t in tasks {
            calls.insert(t.await.expect("a client task"));
        }
        assert_eq!(calls.len(), CLIENTS, "one call per client");
        loop {
            let (_, v) = emu.admin("GET", "/webhooks?limit=0", Value::Null).await;
            let total = v["last_seq"].as_u64().unwrap() as usize;
            if v["pending"] == 0 && rx.got.lock().unwrap().len() >= total {
                return total;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let total = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("1,000 clients finish and the outbox drains within 3 minutes (no deadlock)");
    let log = emu.webhooks().await;
    assert_eq!(log.len(), total, "nothing evicted");
    assert_eq!(
        total,
        4 * CLIENTS,
        "sent, delivered, read and connect for each"
    );
    assert!(log.iter().all(|d| d["state"] == "delivered"));
    let got = rx.received();
    assert!(got.iter().all(|r| r.signature_ok));
    let mut at_receiver: HashMap<(String, String, String), usize> = HashMap::new();
    for r in &got {
        *at_receiver.entry(webhook_key(&r.json())).or_default() += 1;
    }
    let twice: Vec<_> = at_receiver.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let mut in_log: HashMap<(String, String, String), usize> = HashMap::new();
    for d in &log {
        *in_log.entry(webhook_key(&d["body"])).or_default() += 1;
    }
    assert_eq!(
        at_receiver, in_log,
        "the receiver got exactly what the log says"
    );
    assert_eq!(got.len(), total, "webhooks lost or duplicated");
}

// ---- access ---------------------------------------------------------------------------

#[test]
fn the_default_bind_is_loopback_without_an_admin_token() {
    let o = ServeOptions::resolve(&wa_emulator::server::ServeArgs::default()).unwrap();
    assert_eq!(o.addr.ip().to_string(), "127.0.0.1");
    assert!(o.admin_token.is_none());
}

/// The binary with no `WA_EMULATOR_*` variables from the test's environment.
fn binary() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_wa-emulator"));
    for (k, _) in std::env::vars() {
        if k.starts_with("WA_EMULATOR_") {
            c.env_remove(k);
        }
    }
    c
}

/// Runs to completion, killed after `limit`.
fn run_bounded(mut cmd: std::process::Command, limit: Duration) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn binding_beyond_loopback_without_an_admin_token_exits_2_and_says_why() {
    for (how, addr) in [
        ("flag", "0.0.0.0:0"),
        ("flag", "[::]:0"),
        ("env", "0.0.0.0:0"),
    ] {
        let mut cmd = binary();
        cmd.arg("serve");
        if how == "flag" {
            cmd.args(["--addr", addr]);
        } else {
            cmd.env("WA_EMULATOR_ADDR", addr);
        }
        let out = run_bounded(cmd, Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{how} {addr}: {stderr}");
        assert!(
            stderr.contains("--admin-token") && stderr.contains(addr.trim_end_matches(":0")),
            "{how} {addr}: the message names the address and the fix: {stderr}"
        );
        assert!(!stdout.contains("listening"), "{stdout}");
    }
}

/// A `serve` process: its URL (on loopback), its stderr so far, stopped with SIGTERM.
struct Served {
    child: std::process::Child,
    url: String,
    stderr: Arc<Mutex<String>>,
    banner: String,
}

impl Served {
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader, Read};
        use std::process::Stdio;
        let mut cmd = binary();
        cmd.arg("serve").args(args).envs(envs.iter().copied());
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr: Arc<Mutex<String>> = Arc::default();
        let (mut err, sink) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        out.read_line(&mut banner).unwrap();
        let port = banner
            .trim()
            .rsplit(':')
            .next()
            .unwrap_or_else(|| panic!("no listening line: {banner:?} {}", stderr.lock().unwrap()))
            .to_owned();
        let mut rest = String::new();
        for _ in 0..7 {
            out.read_line(&mut rest).unwrap();
        }
        banner.push_str(&rest);
        // Keep draining: a closed pipe would fail the emulator's next print.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            stderr,
            banner,
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        use http_body_util::BodyExt;
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url));
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let resp = client()
            .request(
                b.body(http_body_util::Full::new(bytes::Bytes::from(body)))
                    .unwrap(),
            )
            .await
            .expect("the emulator answers");
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// SIGTERM, then everything it wrote to stderr.
    fn stop(mut self) -> String {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(100));
        let s = self.stderr.lock().unwrap().clone();
        s
    }
}

#[tokio::test]
async fn beyond_loopback_every_admin_route_needs_the_admin_token() {
    const ADMIN: &str = "adm-token-beyond";
    let p = Served::start(
        &[
            "--addr",
            "0.0.0.0:0",
            "--admin-token",
            ADMIN,
            "--clock",
            "virtual",
        ],
        &[],
    );
    assert!(
        p.banner
            .starts_with("wa-emulator listening on http://0.0.0.0:"),
        "{}",
        p.banner
    );
    let (texts, calls) = (
        format!("/__emulator/users/{USER}/messages"),
        format!("/__emulator/users/{USER}/call"),
    );
    let routes: Vec<(&str, &str, Value)> = vec![
        ("GET", "/__emulator/config", Value::Null),
        ("GET", "/__emulator/snapshot", Value::Null),
        ("GET", "/__emulator/webhooks", Value::Null),
        ("GET", "/__emulator/requests", Value::Null),
        ("GET", "/__emulator/messages", Value::Null),
        ("GET", "/__emulator/calls", Value::Null),
        ("GET", "/__emulator/users", Value::Null),
        ("GET", "/__emulator/clock", Value::Null),
        ("GET", "/__emulator/ui/permissions", Value::Null),
        ("GET", "/__emulator/events", Value::Null),
        ("POST", "/__emulator/users", json!({"wa_id": USER})),
        ("POST", &texts, json!({"text": "hi"})),
        ("POST", &calls, json!({})),
        ("POST", "/__emulator/clock/advance", json!({"seconds": 60})),
        (
            "PUT",
            "/__emulator/webhook",
            json!({"url": "http://127.0.0.1:9/x"}),
        ),
        ("PUT", "/__emulator/snapshot", json!({})),
        ("POST", "/__emulator/reset", Value::Null),
    ];
    for (method, path, body) in &routes {
        for token in [None, Some("wrong"), Some(TOKEN)] {
            let (s, v) = p.call(method, path, token, body.clone()).await;
            assert_eq!(s, 401, "{method} {path} with {token:?}: {v}");
            assert_eq!(
                v["error"]["code"], 190,
                "{method} {path} with {token:?}: {v}"
            );
        }
    }
    let (s, v) = p
        .call("GET", "/__emulator/users", Some(ADMIN), Value::Null)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["users"], json!([]), "the refused writes changed nothing");
    let (_, c) = p
        .call("GET", "/__emulator/clock", Some(ADMIN), Value::Null)
        .await;
    let (s, _) = p
        .call(
            "POST",
            "/__emulator/users",
            Some(ADMIN),
            json!({"wa_id": USER}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = p
        .call(
            "POST",
            "/__emulator/clock/advance",
            Some(ADMIN),
            json!({"seconds": 60}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["now"].as_u64(), c["now"].as_u64().map(|n| n + 60));
    // The Graph surface keeps its own token.
    let (s, v) = p
        .call(
            "POST",
            &format!("/v21.0/{PHONE}/messages"),
            Some(TOKEN),
            voice_call(USER, json!({})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let stderr = p.stop();
    assert!(
        stderr.contains("beyond loopback"),
        "binding 0.0.0.0 warns: {stderr}"
    );
}

const B_APP: &str = "2222222222222222";
const B_WABA: &str = "202020202020202";
const B_PHONE: &str = "303030303030303";
const B_TOKEN: &str = "b-token";
const B_SECRET: &str = "b-secret";

fn two_tenants() -> ServeOptions {
    use wa_emulator::domain::tenant::{App, PhoneNumber, Waba};
    let mut opts = ServeOptions::for_tests(ClockMode::Virtual, 21);
    let t = &mut opts.tenants;
    t.apps.push(App {
        id: B_APP.into(),
        secret: B_SECRET.into(),
        access_tokens: vec![B_TOKEN.into()],
        webhook_url: None,
        verify_token: "b-verify".into(),
    });
    t.wabas.push(Waba {
        id: B_WABA.into(),
        app_id: B_APP.into(),
        name: "b".into(),
    });
    t.phone_numbers.push(PhoneNumber {
        id: B_PHONE.into(),
        waba_id: B_WABA.into(),
        display_phone_number: "15550000002".into(),
        verified_name: "b".into(),
        calling: Default::default(),
        business_initiated_calling: None,
        profile: Default::default(),
    });
    opts
}

async fn graph_as(emu: &Emu, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    emu.raw(
        method,
        &format!("/v21.0{path}"),
        &[
            ("authorization", &format!("Bearer {token}")),
            ("content-type", "application/json"),
        ],
        body,
    )
    .await
}

#[tokio::test]
async fn a_token_reaches_only_the_wabas_and_numbers_of_its_own_app() {
    let emu = Emu::start_with(two_tenants()).await;
    let rx_a = Receiver::default_tenant().await;
    let rx_b = Receiver::start(B_SECRET, "b-verify").await;
    emu.set_webhook(&rx_a).await;
    emu.ok(
        "PUT",
        "/webhook",
        json!({"url": rx_b.url, "app_id": B_APP, "verify_token": "b-verify"}),
    )
    .await;
    // Each tenant owns something: a template, a message with a button, a call, an
    // inbound message.
    let tmpl = json!({"name":"mine","language":"en","category":"UTILITY","components":[{"type":"BODY","text":"hi"}]});
    let mut owned = HashMap::new();
    for (token, phone, waba) in [(TOKEN, PHONE, WABA), (B_TOKEN, B_PHONE, B_WABA)] {
        let (s, t) = graph_as(
            &emu,
            token,
            "POST",
            &format!("/{waba}/message_templates"),
            tmpl.clone(),
        )
        .await;
        assert_eq!(s, 200, "{t}");
        let (s, m) = graph_as(
            &emu,
            token,
            "POST",
            &format!("/{phone}/messages"),
            voice_call(USER, json!({})),
        )
        .await;
        assert_eq!(s, 200, "{m}");
        let mid = m["messages"][0]["id"].as_str().unwrap().to_owned();
        let call = emu
            .ok(
                "POST",
                &format!("/users/{USER}/tap"),
                json!({ "message_id": mid }),
            )
            .await;
        let inbound = emu
            .ok(
                "POST",
                &format!("/users/{USER}/messages"),
                json!({"text": "hi", "phone_number_id": phone}),
            )
            .await;
        owned.insert(
            phone,
            (
                t["id"].as_str().unwrap().to_owned(),
                call["call_id"].as_str().unwrap().to_owned(),
                inbound["message_id"].as_str().unwrap().to_owned(),
            ),
        );
    }
    // Each app's webhooks go to its own receiver, signed with its own secret.
    rx_a.wait_for(6).await;
    rx_b.wait_for(6).await;
    let (na, nb) = (rx_a.received().len(), rx_b.received().len());
    assert!(na >= 5 && nb >= 5, "{na} {nb}");
    for (rx, waba) in [(&rx_a, WABA), (&rx_b, B_WABA)] {
        for r in rx.received() {
            assert!(r.signature_ok, "signed with the app's own secret");
            assert_eq!(r.json()["entry"][0]["id"], waba, "{}", r.json());
        }
    }
    let before = state(&emu).await;
    for (token, mine, theirs, their_waba) in [
        (TOKEN, PHONE, B_PHONE, B_WABA),
        (B_TOKEN, B_PHONE, PHONE, WABA),
    ] {
        let (their_template, their_call, their_inbound) = owned[theirs].clone();
        let denied: Vec<(&str, String, Value)> = vec![
            (
                "POST",
                format!("/{theirs}/messages"),
                voice_call(USER, json!({})),
            ),
            (
                "POST",
                format!("/{theirs}/calls"),
                json!({"messaging_product":"whatsapp","call_id":their_call,"action":"terminate"}),
            ),
            (
                "POST",
                format!("/{theirs}/calls"),
                json!({"messaging_product":"whatsapp","to":USER,"action":"connect","session":{"sdp_type":"offer","sdp":SDP_OFFER}}),
            ),
            ("GET", format!("/{theirs}/settings"), Value::Null),
            (
                "POST",
                format!("/{theirs}/settings"),
                json!({"calling":{"status":"DISABLED"}}),
            ),
            (
                "GET",
                format!("/{theirs}/call_permissions?user_wa_id={USER}"),
                Value::Null,
            ),
            ("GET", format!("/{theirs}"), Value::Null),
            ("GET", format!("/{their_waba}"), Value::Null),
            (
                "GET",
                format!("/{their_waba}/message_templates"),
                Value::Null,
            ),
            (
                "POST",
                format!("/{their_waba}/message_templates"),
                tmpl.clone(),
            ),
            (
                "DELETE",
                format!("/{their_waba}/message_templates?name=mine"),
                Value::Null,
            ),
            ("GET", format!("/{their_waba}/phone_numbers"), Value::Null),
            ("GET", format!("/{their_template}"), Value::Null),
        ];
        for (method, path, body) in denied {
            let (s, v) = graph_as(&emu, token, method, &path, body).await;
            assert_eq!(s, 403, "{token} {method} {path}: {v}");
            assert_graph_error(&format!("{token} {method} {path}"), &v, 10);
        }
        // Through its own number, the other tenant's objects do not exist.
        let (s, v) = graph_as(
            &emu,
            token,
            "POST",
            &format!("/{mine}/calls"),
            json!({"messaging_product":"whatsapp","call_id":their_call,"action":"terminate"}),
        )
        .await;
        assert_eq!(
            s, 400,
            "terminating another tenant's call through my number: {v}"
        );
        let (s, v) = graph_as(
            &emu,
            token,
            "POST",
            &format!("/{mine}/messages"),
            json!({"messaging_product":"whatsapp","status":"read","message_id":their_inbound}),
        )
        .await;
        assert_eq!(
            s, 400,
            "marking another number's inbound message read through mine: {v}"
        );
    }
    assert_eq!(
        before,
        state(&emu).await,
        "refused requests changed nothing"
    );
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    const SECRET_S: &str = "app-secret-4f1c9e";
    const ACCESS: &str = "access-token-77ab0d";
    const VERIFY: &str = "verify-token-55e2";
    const ADMIN: &str = "admin-token-0c0ffe";
    let rx = Receiver::start(SECRET_S, VERIFY).await;
    let p = Served::start(
        &[
            "--addr",
            "127.0.0.1:0",
            "--clock",
            "virtual",
            "--app-secret",
            SECRET_S,
            "--access-token",
            ACCESS,
            "--verify-token",
            VERIFY,
            "--admin-token",
            ADMIN,
            "--webhook-url",
            &rx.url,
        ],
        &[("WA_EMULATOR_LOG", "trace")],
    );
    assert!(
        p.banner.contains(ACCESS),
        "the banner shows the token on stdout, by design"
    );
    let (s, v) = p
        .call(
            "PUT",
            "/__emulator/webhook",
            Some(ADMIN),
            json!({"url": rx.url}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let send = format!("/v21.0/{PHONE}/messages");
    let (s, v) = p
        .call("POST", &send, Some(ACCESS), voice_call(USER, json!({})))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = p
        .call(
            "POST",
            &format!("{send}?access_token={ACCESS}"),
            None,
            voice_call(USER, json!({})),
        )
        .await;
    assert_eq!(s, 200);
    // Wrong tokens that contain the right ones.
    let (s, _) = p
        .call(
            "POST",
            &send,
            Some(&format!("{ACCESS}x")),
            voice_call(USER, json!({})),
        )
        .await;
    assert_eq!(s, 401);
    let (s, _) = p
        .call(
            "GET",
            "/__emulator/config",
            Some(&format!("{ADMIN}x")),
            Value::Null,
        )
        .await;
    assert_eq!(s, 401);
    let (s, v) = p
        .call("GET", "/__emulator/config", Some(ADMIN), Value::Null)
        .await;
    assert_eq!((s, v["app_secret"].as_str()), (200, Some(SECRET_S)));
    let sip = json!({"calling":{"sip":{"status":"ENABLED","servers":[{"hostname":"sip.example.com","port":5060}]}}});
    let (s, v) = p
        .call(
            "POST",
            &format!("/v21.0/{PHONE}/settings"),
            Some(ACCESS),
            sip,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = p
        .call(
            "GET",
            &format!("/v21.0/{PHONE}/settings?include_sip_credentials=true"),
            Some(ACCESS),
            Value::Null,
        )
        .await;
    let sip_password = v["calling"]["sip"]["servers"][0]["sip_user_password"]
        .as_str()
        .unwrap_or_else(|| panic!("a SIP password: {v}"))
        .to_owned();
    let (s, _) = p
        .call(
            "POST",
            "/__emulator/clock/advance",
            Some(ADMIN),
            json!({"seconds": 5}),
        )
        .await;
    assert_eq!(s, 200);
    let got = rx.wait_for(4).await;
    assert!(
        got.len() >= 4 && got.iter().all(|r| r.signature_ok),
        "{got:?}"
    );
    let stderr = p.stop();
    assert!(
        stderr.contains("handshake succeeded") && stderr.contains("shutting down"),
        "stderr is captured: {stderr}"
    );
    for (what, secret) in [
        ("app secret", SECRET_S),
        ("access token", ACCESS),
        ("verify token", VERIFY),
        ("admin token", ADMIN),
        ("SIP password", sip_password.as_str()),
    ] {
        let at = stderr.find(secret).map(|i| {
            let line_start = stderr[..i].rfind('\n').map_or(0, |n| n + 1);
            stderr[line_start..].lines().next().unwrap_or("").to_owned()
        });
        assert!(at.is_none(), "the {what} is in the log: {at:?}");
    }
}
