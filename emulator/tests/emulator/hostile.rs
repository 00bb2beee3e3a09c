//! The hostile request corpus in `tests/hostile` (issue 9): every request no
//! well-behaved client sends gets its error, changes nothing, and the server keeps
//! serving.

use super::harness::*;
use super::raw_http::{addr_of, exchange};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The state a request could change: the snapshot without the request journal and the
/// clock/id cursors that reads move.
pub async fn state(emu: &Emu) -> Value {
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

pub fn assert_graph_error(what: &str, v: &Value, code: u64) {
    if let Some(p) = graph_error_problem(v, code) {
        panic!("{what}: {p}: {v}");
    }
}

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

#[allow(clippy::disallowed_methods, reason = "answers must come within 5 s")]
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
