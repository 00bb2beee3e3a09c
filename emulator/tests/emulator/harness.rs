//! Test harness: an emulator on port 0 (dropped = stopped), a webhook receiver, and
//! small HTTP helpers over the library's client (`server::client`).
//!
//! The receiver checks signatures with its own HMAC-SHA256 ([`independent_signature`]),
//! not the emulator's `webhook::codec`: an oracle that shared the code under test would
//! agree with any mistake in it. It is the one such check; other tests that look at
//! signatures use it too.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wa_emulator::engine::ClockMode;
use wa_emulator::server::client::Client;
use wa_emulator::server::{self, Running, ServeOptions};

/// The default tenant's first number, +1 555 078 3881: user-initiated calls only
/// (business-initiated calling does not exist for +1 numbers: 138013).
pub const PHONE: &str = "106540352242922";
pub const DISPLAY: &str = "15550783881";
/// The default tenant's second number, +44 7700 900461, in the same WABA: where
/// business-initiated calls, permission requests and their replies happen.
pub const PHONE2: &str = "110972043181256";
pub const DISPLAY2: &str = "447700900461";
pub const WABA: &str = "102290129340398";
pub const TOKEN: &str = "wa-emulator-token";
pub const SECRET: &str = "wa-emulator-secret";
pub const USER: &str = "16315551234";

/// A user's number written with `+`, as a request from [`PHONE2`] must write a US user:
/// without `+`, the sending number's calling code (44) would be prepended.
pub fn plus(wa: &str) -> String {
    format!("+{wa}")
}

pub const SDP_ANSWER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 AA:BB:CC\r\na=setup:active\r\n";
pub const SDP_OFFER: &str = "v=0\r\no=- 7 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 AA:BB:CC\r\na=setup:actpass\r\n";

pub struct Emu {
    /// Dropping it stops the emulator.
    pub _running: Running,
    pub url: String,
    http: Client,
}

impl Emu {
    pub async fn start() -> Self {
        Self::start_with(ServeOptions::for_tests(ClockMode::Virtual, 7)).await
    }

    pub async fn start_with(opts: ServeOptions) -> Self {
        let running = server::spawn(opts).await.expect("the emulator starts");
        let url = running.url();
        Self {
            _running: running,
            url,
            http: Client::new(),
        }
    }

    /// Exactly these headers and body; the answer's status and body as JSON (`null` when
    /// empty, a JSON string when not JSON).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> (u16, Value) {
        let answer = self
            .http
            .request(method, &format!("{}{path}", self.url), headers, body)
            .await
            .unwrap_or_else(|e| panic!("the emulator answers: {e}"));
        (answer.status.as_u16(), answer.json())
    }

    pub async fn graph(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.raw(
            method,
            &format!("/v21.0{path}"),
            &[
                ("authorization", &format!("Bearer {TOKEN}")),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await
    }

    pub async fn admin(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.raw(
            method,
            &format!("/__emulator{path}"),
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }

    pub async fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, v) = self.admin(method, path, body).await;
        assert_eq!(status, 200, "{method} /__emulator{path}: {v}");
        v
    }

    /// Sends a message from [`PHONE`] and returns its id.
    pub async fn send(&self, body: Value) -> String {
        self.send_from(PHONE, body).await
    }

    /// Sends a message from `phone` and returns its id.
    pub async fn send_from(&self, phone: &str, body: Value) -> String {
        let (status, v) = self
            .graph("POST", &format!("/{phone}/messages"), Some(body))
            .await;
        assert_eq!(status, 200, "send from {phone}: {v}");
        v["messages"][0]["id"].as_str().unwrap().to_owned()
    }

    /// `POST /{phone}/calls` with `action`.
    pub async fn calls_on(&self, phone: &str, action: Value) -> (u16, Value) {
        self.graph("POST", &format!("/{phone}/calls"), Some(action))
            .await
    }

    /// `GET /{phone}/call_permissions?user_wa_id={wa}`.
    pub async fn call_permissions(&self, phone: &str, wa: &str) -> Value {
        let (status, v) = self
            .graph(
                "GET",
                &format!("/{phone}/call_permissions?user_wa_id={wa}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "call_permissions on {phone} for {wa}: {v}");
        v
    }

    /// The user replies to a permission request (`message_id`) or changes the
    /// permission from a business profile (`phone_number_id`, else the first number);
    /// returns the reply's message id.
    pub async fn permission_reply(&self, wa: &str, body: Value) -> String {
        let v = self
            .ok("POST", &format!("/users/{wa}/permission-reply"), body)
            .await;
        v["message_id"].as_str().unwrap().to_owned()
    }

    pub async fn user(&self, wa: &str, platform: &str, version: &str, name: &str) {
        self.ok(
            "POST",
            "/users",
            json!({"wa_id": wa, "platform": platform, "version": version, "name": name}),
        )
        .await;
    }

    /// The state a request may change: the snapshot without the request journal, the
    /// clock and the id cursor.
    pub async fn state(&self) -> Value {
        let (status, mut v) = self.admin("GET", "/snapshot", Value::Null).await;
        assert_eq!(status, 200, "snapshot: {v}");
        if let Some(o) = v.as_object_mut() {
            for k in ["journal", "now_ms", "id_cursor"] {
                o.remove(k);
            }
        }
        v
    }

    pub async fn advance(&self, secs: f64) {
        self.ok("POST", "/clock/advance", json!({ "seconds": secs }))
            .await;
    }

    /// Every delivery in the log (bodies parsed).
    pub async fn webhooks(&self) -> Vec<Value> {
        let (_, v) = self.admin("GET", "/webhooks", Value::Null).await;
        v["deliveries"].as_array().cloned().unwrap_or_default()
    }

    /// The change `value`s of deliveries with this field and event, in order.
    pub async fn values(&self, field: &str, event: &str) -> Vec<Value> {
        self.webhooks()
            .await
            .into_iter()
            .filter(|d| d["field"] == field && d["event"] == event)
            .map(|d| d["body"]["entry"][0]["changes"][0]["value"].clone())
            .collect()
    }

    pub async fn set_webhook(&self, receiver: &Receiver) {
        self.ok("PUT", "/webhook", json!({ "url": receiver.url }))
            .await;
    }
}

/// A business-initiated `connect` to `to` (write US users with [`plus`] from [`PHONE2`]).
pub fn connect(to: &str) -> Value {
    json!({"messaging_product":"whatsapp","to":to,"action":"connect","session":{"sdp_type":"offer","sdp":SDP_OFFER}})
}

/// A free-form call permission request to `to`.
pub fn permission_request(to: &str) -> Value {
    json!({"messaging_product":"whatsapp","to":to,"type":"interactive",
           "interactive":{"type":"call_permission_request","action":{"name":"call_permission_request"},"body":{"text":"May we call you?"}}})
}

pub fn voice_call(to: &str, params: Value) -> Value {
    json!({"messaging_product":"whatsapp","recipient_type":"individual","to":to,"type":"interactive",
           "interactive":{"type":"voice_call","body":{"text":"Call us on WhatsApp now"},"action":{"name":"voice_call","parameters":params}}})
}

#[derive(Debug, Clone)]
pub struct Received {
    pub body: Bytes,
    pub signature: String,
    pub content_length: Option<String>,
    pub chunked: bool,
    pub signature_ok: bool,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`, computed here with the `hmac` crate
/// and not with the emulator's `webhook::codec`: the tests' independent signature check.
pub fn independent_signature(secret: &[u8], body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A webhook receiver that answers the GET handshake, verifies each POST's signature
/// with [`independent_signature`] (not the emulator's code), and answers with `status`.
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Received>>>,
    pub status: Arc<AtomicU16>,
    _task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(secret: &'static str, verify_token: &'static str) -> Self {
        Self::start_on(secret, verify_token, None).await
    }

    /// The same receiver behind TLS with this certificate, at `https://127.0.0.1:PORT`.
    pub async fn start_tls(
        secret: &'static str,
        verify_token: &'static str,
        identity: &wa_emulator::server::tls::ServerIdentity,
    ) -> Self {
        let config = wa_emulator::server::tls::server_config(identity).expect("usable identity");
        Self::start_on(secret, verify_token, Some(config.into())).await
    }

    async fn start_on(
        secret: &'static str,
        verify_token: &'static str,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}/webhook", listener.local_addr().unwrap());
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (g, s) = (got.clone(), status.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (g, s, tls) = (g.clone(), s.clone(), tls.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (g, s) = (g.clone(), s.clone());
                            async move {
                                if req.method() == hyper::Method::GET {
                                    let q = req.uri().query().unwrap_or("").to_owned();
                                    let param = |k: &str| {
                                        q.split('&')
                                            .find_map(|p| p.strip_prefix(&format!("{k}=")))
                                            .unwrap_or("")
                                            .to_owned()
                                    };
                                    let ok = param("hub.mode") == "subscribe"
                                        && param("hub.verify_token") == verify_token;
                                    let (code, body) = if ok {
                                        (200, param("hub.challenge"))
                                    } else {
                                        (403, "bad verify token".into())
                                    };
                                    return Ok::<_, std::convert::Infallible>(
                                        hyper::Response::builder()
                                            .status(code)
                                            .body(Full::new(Bytes::from(body)))
                                            .unwrap(),
                                    );
                                }
                                let headers = req.headers().clone();
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|c| c.to_bytes())
                                    .unwrap_or_default();
                                let signature = headers
                                    .get("x-hub-signature-256")
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_owned();
                                let expected = independent_signature(secret.as_bytes(), &body);
                                g.lock().unwrap().push(Received {
                                    signature_ok: expected == signature,
                                    signature,
                                    content_length: headers
                                        .get("content-length")
                                        .and_then(|v| v.to_str().ok())
                                        .map(str::to_owned),
                                    chunked: headers.get("transfer-encoding").is_some(),
                                    body,
                                });
                                let code = s.load(Ordering::SeqCst);
                                Ok(hyper::Response::builder()
                                    .status(code)
                                    .body(Full::new(Bytes::from_static(b"ok")))
                                    .unwrap())
                            }
                        },
                    );
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                .await;
                        }
                        // A client that refuses the certificate ends here: nothing received.
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                let _ = http
                                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                    .await;
                            }
                        }
                    }
                });
            }
        });
        Self {
            url,
            got,
            status,
            _task: task,
        }
    }

    pub async fn default_tenant() -> Self {
        Self::start(SECRET, "wa-emulator-verify").await
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (bounded) until `n` webhooks arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..500 {
            if self.got.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.received()
    }
}

/// The `value` of a received webhook.
pub fn value(r: &Received) -> Value {
    r.json()["entry"][0]["changes"][0]["value"].clone()
}
