//! `--state FILE`: every acknowledged request survives a graceful stop and a `kill -9`,
//! and pending webhook deliveries resume.

use super::harness::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Proc {
    child: Child,
    url: String,
    http: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<bytes::Bytes>,
    >,
}

impl Proc {
    fn start(state: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wa-emulator"))
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--clock",
                "virtual",
                "--seed",
                "5",
                "--clock-start",
                "1767225600",
                "--state",
            ])
            .arg(state)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts");
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        // Keep draining: a closed pipe would fail the emulator's next print.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let url = line
            .trim()
            .strip_prefix("wa-emulator listening on ")
            .expect("the listening line")
            .to_owned();
        Self {
            child,
            url,
            http: client(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        use http_body_util::BodyExt;
        let req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url))
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(http_body_util::Full::new(bytes::Bytes::from(
                if body.is_null() {
                    String::new()
                } else {
                    body.to_string()
                },
            )))
            .unwrap();
        let resp = self.http.request(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn terminate(mut self) {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "a graceful stop exits 0: {status}");
    }
}

/// A world with one of everything: message, template, permission, ongoing call, and
/// webhooks waiting for a receiver that answers 500.
async fn build_world(p: &Proc, receiver: &Receiver) -> String {
    assert_eq!(
        p.call("PUT", "/__emulator/webhook", json!({"url": receiver.url}))
            .await
            .0,
        200
    );
    receiver
        .status
        .store(500, std::sync::atomic::Ordering::SeqCst);
    let (s, v) = p
        .call(
            "POST",
            &format!("/v21.0/{PHONE}/messages"),
            voice_call(USER, json!({"payload":"P"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let mid = v["messages"][0]["id"].as_str().unwrap().to_owned();
    let (s, _) = p
        .call("POST", &format!("/v21.0/{WABA}/message_templates"), json!({"name":"kept","language":"en","category":"UTILITY","components":[{"type":"BODY","text":"hi"}]}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        p.call(
            "POST",
            "/__emulator/users/16315550000/permission-reply",
            json!({"response":"accept","permanent":true,"phone_number_id":PHONE2})
        )
        .await
        .0,
        200
    );
    let (s, v) = p
        .call(
            "POST",
            &format!("/__emulator/users/{USER}/tap"),
            json!({"message_id": mid}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v["call_id"].as_str().unwrap().to_owned()
}

async fn check_world(p: &Proc, receiver: &Receiver, call_id: &str, pending_before: u64) {
    let (_, msgs) = p.call("GET", "/__emulator/messages", Value::Null).await;
    assert_eq!(msgs["messages"].as_array().unwrap().len(), 1);
    let (_, t) = p
        .call(
            "GET",
            &format!("/v21.0/{WABA}/message_templates?name=kept"),
            Value::Null,
        )
        .await;
    assert_eq!(t["data"][0]["status"], "APPROVED");
    let (_, perm) = p
        .call(
            "GET",
            &format!("/v21.0/{PHONE2}/call_permissions?user_wa_id=16315550000"),
            Value::Null,
        )
        .await;
    assert_eq!(perm["permission"]["status"], "permanent");
    let (_, calls) = p.call("GET", "/__emulator/calls", Value::Null).await;
    assert_eq!(calls["calls"][0]["id"], call_id);
    assert_eq!(calls["calls"][0]["status"], "ringing");
    let (_, hooks) = p.call("GET", "/__emulator/webhooks", Value::Null).await;
    assert_eq!(
        hooks["pending"].as_u64().unwrap(),
        pending_before,
        "pending deliveries survive"
    );
    // The receiver recovers: the pending deliveries resume, in order, nothing lost.
    receiver
        .status
        .store(200, std::sync::atomic::Ordering::SeqCst);
    p.call("POST", "/__emulator/clock/advance", json!({"seconds": 30}))
        .await;
    let (_, hooks) = p.call("GET", "/__emulator/webhooks", Value::Null).await;
    assert_eq!(hooks["pending"], 0, "{hooks}");
    assert!(hooks["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["state"] == "delivered"));
}

async fn survives(stop: impl FnOnce(Proc)) {
    let dir = std::env::temp_dir().join(format!(
        "wa-emu-restart-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");
    let receiver = Receiver::default_tenant().await;
    let p = Proc::start(&state);
    let call_id = build_world(&p, &receiver).await;
    let (_, hooks) = p.call("GET", "/__emulator/webhooks", Value::Null).await;
    let pending = hooks["pending"].as_u64().unwrap();
    assert!(
        pending >= 3,
        "webhooks wait for the failing receiver: {hooks}"
    );
    stop(p);
    let p = Proc::start(&state);
    check_world(&p, &receiver, &call_id, pending).await;
    p.kill_9();
    let _ = std::fs::remove_dir_all(&dir);
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

#[tokio::test]
async fn state_survives_kill_9() {
    survives(Proc::kill_9).await;
}

#[tokio::test]
async fn state_survives_a_graceful_stop() {
    survives(Proc::terminate).await;
}
