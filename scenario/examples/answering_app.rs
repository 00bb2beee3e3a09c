//! A tiny WhatsApp calling integration, to show the scenario runner's app-under-test
//! mode: it answers the webhook verification handshake and, on every user-initiated
//! `connect` webhook, pre-accepts and then accepts the call through the Graph API.
//!
//! ```text
//! cargo run -p scenario --example answering_app -- 127.0.0.1:8080 http://127.0.0.1:4004
//! wa-emulator run --target http://127.0.0.1:4004 --app http://127.0.0.1:8080/webhook scenario/scenarios/app
//! ```
//!
//! Tokens default to the emulator's embedded ones; set `VERIFY_TOKEN` and `ACCESS_TOKEN`
//! to use others.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example: it prints its results"
)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use scenario::runner::http::Http;
use serde_json::{json, Value};
use std::sync::Arc;

const SDP_ANSWER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:app1\r\na=ice-pwd:appappappappappappappapp\r\na=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\na=setup:active\r\na=mid:audio\r\na=rtpmap:111 opus/48000/2\r\n";

struct App {
    graph: String,
    access_token: String,
    verify_token: String,
    http: Http,
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let graph = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:4004".into());
    let app = Arc::new(App {
        graph: graph.trim_end_matches('/').to_string(),
        access_token: std::env::var("ACCESS_TOKEN").unwrap_or_else(|_| "wa-emulator-token".into()),
        verify_token: std::env::var("VERIFY_TOKEN").unwrap_or_else(|_| "wa-emulator-verify".into()),
        http: Http::new(),
    });
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .expect("the address is free");
    println!("answering_app listening on http://{addr}/webhook, calling {graph}");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(app.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let reply = |status: u16, body: String| {
        Ok(Response::builder()
            .status(status)
            .body(Full::new(Bytes::from(body)))
            .expect("valid response"))
    };
    if req.method() == Method::GET {
        // The verification handshake: echo hub.challenge when the token is ours.
        let query = req.uri().query().unwrap_or("");
        let param = |k: &str| {
            query.split('&').find_map(|kv| {
                kv.split_once('=')
                    .filter(|(key, _)| *key == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        return if param("hub.verify_token").as_deref() == Some(app.verify_token.as_str()) {
            reply(200, param("hub.challenge").unwrap_or_default())
        } else {
            reply(403, "wrong verify token".into())
        };
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Ok(update) = serde_json::from_slice::<Value>(&body) else {
        return reply(400, "not JSON".into());
    };
    for change in update["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["changes"].as_array().into_iter().flatten())
    {
        if change["field"] != "calls" {
            continue;
        }
        let phone = change["value"]["metadata"]["phone_number_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for call in change["value"]["calls"].as_array().into_iter().flatten() {
            if call["event"] == "connect" && call["direction"] == "USER_INITIATED" {
                let id = call["id"].as_str().unwrap_or_default().to_string();
                // Answer after acknowledging the webhook, as a real integration would.
                tokio::spawn(answer(app.clone(), phone.clone(), id));
            }
        }
    }
    reply(200, "ok".into())
}

async fn answer(app: Arc<App>, phone: String, call_id: String) {
    let url = format!("{}/v21.0/{phone}/calls", app.graph);
    for action in ["pre_accept", "accept"] {
        let body = json!({"messaging_product": "whatsapp", "call_id": call_id, "action": action,
            "session": {"sdp_type": "answer", "sdp": SDP_ANSWER}});
        match app
            .http
            .send("POST", &url, Some(&app.access_token), Some(&body))
            .await
        {
            Ok(r) if r.is_success() => {}
            Ok(r) => {
                eprintln!("{action} {call_id}: HTTP {}: {}", r.status, r.body);
                return;
            }
            Err(e) => {
                eprintln!("{action} {call_id}: {e}");
                return;
            }
        }
    }
}
