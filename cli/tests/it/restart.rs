//! `--state FILE`: every acknowledged request survives a graceful stop and a `kill -9`,
//! and pending webhook deliveries resume.

use super::harness::*;
use serde_json::{json, Value};

/// `wa-emulator serve` on a virtual clock with its state in `state`.
fn start(state: &std::path::Path) -> Served {
    let state = state.to_str().expect("a UTF-8 temporary path");
    Served::start(
        &[
            "--addr",
            "127.0.0.1:0",
            "--clock",
            "virtual",
            "--seed",
            "5",
            "--clock-start",
            "1767225600",
            "--state",
            state,
        ],
        &[],
    )
}

fn graceful_stop(p: Served) {
    let (status, stderr) = p.stop();
    assert!(
        status.success(),
        "a graceful stop exits 0: {status}\n{stderr}"
    );
}

/// A world with one of everything: message, template, permission, ongoing call, and
/// webhooks waiting for a receiver that answers 500.
async fn build_world(p: &Served, receiver: &Receiver) -> String {
    assert_eq!(
        p.request("PUT", "/__emulator/webhook", json!({"url": receiver.url}))
            .await
            .0,
        200
    );
    receiver
        .status
        .store(500, std::sync::atomic::Ordering::SeqCst);
    let (s, v) = p
        .request(
            "POST",
            &format!("/v21.0/{PHONE}/messages"),
            voice_call(USER, json!({"payload":"P"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let mid = v["messages"][0]["id"].as_str().unwrap().to_owned();
    let (s, _) = p
        .request("POST", &format!("/v21.0/{WABA}/message_templates"), json!({"name":"kept","language":"en","category":"UTILITY","components":[{"type":"BODY","text":"hi"}]}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        p.request(
            "POST",
            "/__emulator/users/16315550000/permission-reply",
            json!({"response":"accept","permanent":true,"phone_number_id":PHONE2})
        )
        .await
        .0,
        200
    );
    let (s, v) = p
        .request(
            "POST",
            &format!("/__emulator/users/{USER}/tap"),
            json!({"message_id": mid}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v["call_id"].as_str().unwrap().to_owned()
}

async fn check_world(p: &Served, receiver: &Receiver, call_id: &str, pending_before: u64) {
    let (_, msgs) = p.request("GET", "/__emulator/messages", Value::Null).await;
    assert_eq!(msgs["messages"].as_array().unwrap().len(), 1);
    let (_, t) = p
        .request(
            "GET",
            &format!("/v21.0/{WABA}/message_templates?name=kept"),
            Value::Null,
        )
        .await;
    assert_eq!(t["data"][0]["status"], "APPROVED");
    let (_, perm) = p
        .request(
            "GET",
            &format!("/v21.0/{PHONE2}/call_permissions?user_wa_id=16315550000"),
            Value::Null,
        )
        .await;
    assert_eq!(perm["permission"]["status"], "permanent");
    let (_, calls) = p.request("GET", "/__emulator/calls", Value::Null).await;
    assert_eq!(calls["calls"][0]["id"], call_id);
    assert_eq!(calls["calls"][0]["status"], "ringing");
    let (_, hooks) = p.request("GET", "/__emulator/webhooks", Value::Null).await;
    assert_eq!(
        hooks["pending"].as_u64().unwrap(),
        pending_before,
        "pending deliveries survive"
    );
    // The receiver recovers: the pending deliveries resume, in order, nothing lost.
    receiver
        .status
        .store(200, std::sync::atomic::Ordering::SeqCst);
    p.request("POST", "/__emulator/clock/advance", json!({"seconds": 30}))
        .await;
    let (_, hooks) = p.request("GET", "/__emulator/webhooks", Value::Null).await;
    assert_eq!(hooks["pending"], 0, "{hooks}");
    assert!(hooks["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["state"] == "delivered"));
}

async fn survives(stop: impl FnOnce(Served)) {
    let dir = std::env::temp_dir().join(format!(
        "wa-emu-restart-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");
    let receiver = Receiver::default_tenant().await;
    let p = start(&state);
    let call_id = build_world(&p, &receiver).await;
    let (_, hooks) = p.request("GET", "/__emulator/webhooks", Value::Null).await;
    let pending = hooks["pending"].as_u64().unwrap();
    assert!(
        pending >= 3,
        "webhooks wait for the failing receiver: {hooks}"
    );
    stop(p);
    let p = start(&state);
    check_world(&p, &receiver, &call_id, pending).await;
    p.kill_9();
    let _ = std::fs::remove_dir_all(&dir);
}

// Only makes the temporary folder's name unique between runs.
#[allow(clippy::disallowed_methods)]
fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

#[tokio::test]
async fn state_survives_kill_9() {
    survives(Served::kill_9).await;
}

#[tokio::test]
async fn state_survives_a_graceful_stop() {
    survives(graceful_stop).await;
}
