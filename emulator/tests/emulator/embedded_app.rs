//! How a project tests its own calling integration with the embedded emulator
//! (`wa_emulator::Emulator`): a tiny webhook-receiving app — hyper, the verification
//! handshake, the signature check — that answers every user-initiated call with
//! `pre_accept` then `accept` through the Graph API, driven and checked from the test.
//!
//! The app knows nothing of the emulator but its URL (as a Graph base URL) and the
//! tenant's token, verify token and app secret: what it would be given in production.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wa_emulator::api::admin_types::WebhookState;
use wa_emulator::domain::ids::MessageId;
use wa_emulator::server::client::Client;
use wa_emulator::webhook::codec;
use wa_emulator::{Emulator, RequestPattern, WebhookPattern};

const SDP_ANSWER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 AA:BB:CC\r\na=setup:active\r\n";

/// What the app is configured with.
struct Settings {
    graph_url: String,
    access_token: String,
    verify_token: String,
    app_secret: String,
}

/// The app under test, listening on a free loopback port.
struct AnsweringApp {
    webhook_url: String,
    /// Every webhook body it accepted (signature valid).
    received: Arc<Mutex<Vec<Value>>>,
    _server: tokio::task::JoinHandle<()>,
}

impl AnsweringApp {
    async fn start(settings: Settings) -> AnsweringApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let webhook_url = format!("http://{}/webhook", listener.local_addr().unwrap());
        let received: Arc<Mutex<Vec<Value>>> = Arc::default();
        let app = Arc::new((settings, received.clone(), Client::new()));
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let app = app.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let app = app.clone();
                        async move { Ok::<_, Infallible>(handle(&app.0, &app.1, &app.2, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        AnsweringApp {
            webhook_url,
            received,
            _server: server,
        }
    }

    fn received(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }
}

async fn handle(
    settings: &Settings,
    received: &Mutex<Vec<Value>>,
    graph: &Client,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let reply = |status: u16, body: String| {
        Response::builder()
            .status(status)
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    if req.method() == Method::GET {
        // Meta's verification handshake: echo hub.challenge when the token is ours.
        let query = req.uri().query().unwrap_or("").to_owned();
        let param = |k: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                .unwrap_or("")
                .to_owned()
        };
        return if param("hub.verify_token") == settings.verify_token {
            reply(200, param("hub.challenge"))
        } else {
            reply(403, "wrong verify token".into())
        };
    }
    let signature = req
        .headers()
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    if !codec::verify(settings.app_secret.as_bytes(), &body, &signature) {
        return reply(401, "bad signature".into());
    }
    let update: Value = serde_json::from_slice(&body).unwrap();
    received.lock().unwrap().push(update.clone());
    for change in update["entry"][0]["changes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let value = &change["value"];
        let phone = value["metadata"]["phone_number_id"].as_str().unwrap_or("");
        for call in value["calls"].as_array().into_iter().flatten() {
            if change["field"] == "calls"
                && call["event"] == "connect"
                && call["direction"] == "USER_INITIATED"
            {
                let url = format!("{}/v21.0/{phone}/calls", settings.graph_url);
                let (id, token, graph) = (
                    call["id"].clone(),
                    settings.access_token.clone(),
                    graph.clone(),
                );
                // Answer after acknowledging the webhook, as a real integration would.
                tokio::spawn(async move {
                    for action in ["pre_accept", "accept"] {
                        let body = json!({"messaging_product": "whatsapp", "call_id": id,
                            "action": action, "session": {"sdp_type": "answer", "sdp": SDP_ANSWER}});
                        let r = graph.json("POST", &url, Some(&token), Some(&body)).await;
                        if !r.is_ok_and(|r| r.is_success()) {
                            return;
                        }
                    }
                });
            }
        }
    }
    reply(200, "ok".into())
}

#[tokio::test]
async fn the_app_answers_a_tapped_call_button_and_the_call_completes_with_its_payload() {
    let emu = Emulator::start().await;
    let tenant = emu.tenant();
    let app = AnsweringApp::start(Settings {
        graph_url: emu.url().to_owned(),
        access_token: tenant.access_token.clone(),
        verify_token: tenant.verify_token.clone(),
        app_secret: tenant.app_secret.clone(),
    })
    .await;
    emu.set_webhook_url(&app.webhook_url)
        .await
        .expect("the app passes the handshake");

    // The business's marketing code sends a call button with a payload.
    let phone = tenant.phone_number_id();
    let sent = emu
        .graph(
            "POST",
            &format!("/v21.0/{phone}/messages"),
            Some(
                &json!({"messaging_product": "whatsapp", "to": "16315551234", "type": "interactive",
                "interactive": {"type": "voice_call", "body": {"text": "Talk to us"},
                    "action": {"name": "voice_call", "parameters": {"payload": "order-42"}}}}),
            ),
        )
        .await
        .unwrap();
    let button = MessageId::from(sent["messages"][0]["id"].as_str().unwrap());

    // The user taps it; the app gets the connect webhook and answers the call.
    let call = emu.user("16315551234").tap(&button).await.unwrap();
    let timeout = Duration::from_secs(5);
    let connect = emu
        .wait_for(
            WebhookPattern::field("calls")
                .event("connect")
                .call(&call)
                .with(json!({"cta_payload": "order-42"}))
                .state(WebhookState::Delivered),
            timeout,
        )
        .await
        .unwrap();
    assert_eq!(connect.attempts.last().and_then(|a| a.status), Some(200));
    for action in ["pre_accept", "accept"] {
        emu.wait_for(
            RequestPattern::new("POST", "/calls")
                .with(json!({"call_id": call, "action": action}))
                .status(200),
            timeout,
        )
        .await
        .unwrap();
    }

    // 42 s of conversation, then the user hangs up.
    emu.advance(Duration::from_secs(42)).await.unwrap();
    let ended = emu.hang_up(&call).await.unwrap();
    assert_eq!(
        (ended.status.as_str(), ended.duration),
        ("completed", Some(42))
    );
    let terminate = emu
        .wait_for(
            WebhookPattern::field("calls")
                .event("terminate")
                .call(&call)
                .with(json!({"status": "COMPLETED", "duration": 42, "cta_payload": "order-42"}))
                .state(WebhookState::Delivered),
            timeout,
        )
        .await
        .unwrap();

    // The app saw both call webhooks, signed with its secret, as the log says.
    let calls: Vec<Value> = app
        .received()
        .into_iter()
        .filter(|u| u["entry"][0]["changes"][0]["field"] == "calls")
        .collect();
    assert_eq!(calls, [connect.body, terminate.body]);
}

#[tokio::test]
async fn without_the_app_nobody_answers_and_the_wait_says_what_did_happen() {
    let emu = Emulator::start().await;
    let call = emu.user("16315551234").call().await.unwrap();
    let err = emu
        .wait_for(
            RequestPattern::new("POST", "/calls")
                .with(json!({"call_id": call, "action": "accept"})),
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no request matched within 2 s (the virtual clock advanced 2 s)\n  expected: a request POST …/calls with {{\"call_id\":\"{call}\",\"action\":\"accept\"}}\n  no request was logged at all"
        )
    );
}
