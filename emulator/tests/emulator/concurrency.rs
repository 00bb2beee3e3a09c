//! Concurrency (issue 9): 1,000 concurrent clients, and every webhook arrives exactly
//! once.

use super::harness::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

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
