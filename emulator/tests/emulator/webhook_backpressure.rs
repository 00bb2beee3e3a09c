//! A receiver that stops answering (issue 17): deliveries to it pile up only to
//! `webhook_pending_limit`; further sends wait, holding their connection, and go through
//! once it answers again, every webhook arriving exactly once; if it never does, a send is
//! refused after `webhook_pending_wait_secs` with Graph's transient 503 code 2, and
//! nothing of it is accepted.

use super::harness::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use wa_emulator::engine::ClockMode;
use wa_emulator::server::ServeOptions;

/// Answers the GET handshake at once and each webhook POST only once the gate is open
/// (the connection held meanwhile, as a stuck receiver holds it); keeps every body whose
/// signature is right.
struct GatedReceiver {
    url: String,
    gate: watch::Sender<bool>,
    got: Arc<Mutex<Vec<Bytes>>>,
}

impl GatedReceiver {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhook", listener.local_addr().unwrap());
        let (gate, open) = watch::channel(false);
        let got = Arc::new(Mutex::new(Vec::new()));
        let kept = got.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (open, kept) = (open.clone(), kept.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (mut open, kept) = (open.clone(), kept.clone());
                            async move {
                                if req.method() == hyper::Method::GET {
                                    let query = req.uri().query().unwrap_or("").to_owned();
                                    let challenge = query
                                        .split('&')
                                        .find_map(|kv| kv.strip_prefix("hub.challenge="))
                                        .unwrap_or("")
                                        .to_owned();
                                    return Ok::<_, std::convert::Infallible>(
                                        hyper::Response::new(Full::new(Bytes::from(challenge))),
                                    );
                                }
                                let signature = req
                                    .headers()
                                    .get("x-hub-signature-256")
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_owned();
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                let _ = open.wait_for(|o| *o).await;
                                if signature == independent_signature(SECRET.as_bytes(), &body) {
                                    kept.lock().unwrap().push(body);
                                }
                                Ok(hyper::Response::new(Full::new(Bytes::new())))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self { url, gate, got }
    }

    fn received(&self) -> Vec<Bytes> {
        self.got.lock().unwrap().clone()
    }
}

async fn emulator(limit: usize, wait_secs: u64, receiver: &GatedReceiver) -> Arc<Emu> {
    let mut opts = ServeOptions::for_tests(ClockMode::Real, 7);
    opts.behaviour.webhook_pending_limit = limit;
    opts.behaviour.webhook_pending_wait_secs = wait_secs;
    let emu = Emu::start_with(opts).await;
    emu.ok("PUT", "/webhook", json!({ "url": receiver.url }))
        .await;
    Arc::new(emu)
}

fn text(to: &str) -> Value {
    json!({"messaging_product":"whatsapp","to":to,"type":"text","text":{"body":"hi"}})
}

async fn log(emu: &Emu) -> Value {
    emu.ok("GET", "/webhooks?limit=0", Value::Null).await
}

#[tokio::test]
async fn sends_beyond_the_bound_wait_and_go_through_once_the_receiver_answers() {
    let receiver = GatedReceiver::start().await;
    let emu = emulator(10, 120, &receiver).await;
    // Five sends, two statuses each: the receiver holds them all, the bound is reached.
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(emu.send(text(USER)).await);
    }
    assert_eq!(log(&emu).await["pending"], 10);
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let emu = emu.clone();
            tokio::spawn(async move {
                emu.graph("POST", &format!("/{PHONE}/messages"), Some(text(USER)))
                    .await
            })
        })
        .collect();
    // They wait, holding their connections; nothing of them is accepted meanwhile.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        waiting.iter().all(|w| !w.is_finished()),
        "a send beyond the bound waits for room"
    );
    let before = log(&emu).await;
    assert_eq!(
        (before["last_seq"].clone(), before["pending"].clone()),
        (json!(10), json!(10))
    );
    // The receiver answers again: the waiting sends are accepted.
    receiver.gate.send(true).unwrap();
    for w in waiting {
        let (status, v) = w.await.unwrap();
        assert_eq!(status, 200, "{v}");
        ids.push(v["messages"][0]["id"].as_str().unwrap().to_owned());
    }
    // Every webhook of the eight sends arrives, signed, exactly once.
    for _ in 0..1000 {
        if receiver.received().len() >= 16 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A moment more, so a duplicate would have come too.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = receiver.received();
    assert_eq!(got.len(), 16, "two statuses for each of the eight sends");
    assert_eq!(
        got.iter().collect::<HashSet<_>>().len(),
        16,
        "no webhook twice"
    );
    let mut statuses: Vec<(String, String)> = got
        .iter()
        .map(|b| {
            let v: Value = serde_json::from_slice(b).unwrap();
            let s = &v["entry"][0]["changes"][0]["value"]["statuses"][0];
            (
                s["id"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    statuses.sort();
    let mut expected: Vec<(String, String)> = ids
        .iter()
        .flat_map(|id| {
            [
                (id.clone(), "delivered".to_owned()),
                (id.clone(), "sent".to_owned()),
            ]
        })
        .collect();
    expected.sort();
    assert_eq!(statuses, expected);
    let after = log(&emu).await;
    assert_eq!(
        (after["last_seq"].clone(), after["refused"].clone()),
        (json!(16), json!(0))
    );
}

#[tokio::test]
async fn a_send_is_refused_with_the_transient_503_when_no_room_comes() {
    let receiver = GatedReceiver::start().await;
    let emu = emulator(10, 1, &receiver).await;
    for _ in 0..5 {
        emu.send(text(USER)).await;
    }
    let (status, v) = emu
        .graph("POST", &format!("/{PHONE}/messages"), Some(text(USER)))
        .await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], 2);
    assert_eq!(
        v["error"]["message"],
        "(#2) Service temporarily unavailable"
    );
    assert_eq!(v["error"]["type"], "OAuthException");
    assert_eq!(v["error"]["is_transient"], true);
    assert!(v["error"]["fbtrace_id"].is_string());
    // Nothing of it was accepted: no webhook, no message, no request in the history.
    let after = log(&emu).await;
    assert_eq!(
        (
            after["last_seq"].clone(),
            after["pending"].clone(),
            after["refused"].clone()
        ),
        (json!(10), json!(10), json!(1))
    );
    let messages = emu.ok("GET", "/messages", Value::Null).await;
    assert_eq!(messages["messages"].as_array().unwrap().len(), 5);
    let requests = emu.ok("GET", "/requests", Value::Null).await;
    assert_eq!(requests["requests"].as_array().unwrap().len(), 5);
    // Reads are never held back.
    let (status, _) = emu.graph("GET", &format!("/{PHONE}"), None).await;
    assert_eq!(status, 200);
}
