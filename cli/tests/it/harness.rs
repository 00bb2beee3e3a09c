//! Test harness for the binary: a `wa-emulator serve` process on port 0 (its banner, its
//! stderr, stopped with SIGTERM or `kill -9`), requests through the library's client
//! (`server::client`), a webhook receiver, and the default tenant's ids.
//!
//! The receiver checks signatures with the emulator's `webhook::codec::verify`: these
//! tests are about the process (flags, tokens, restarts), and the independent check of
//! the signing itself is the emulator's integration tests' receiver.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wa_emulator::server::client::Client;
use wa_emulator::webhook::codec::verify;

/// The default tenant's first number (+1: user-initiated calls only).
pub const PHONE: &str = "106540352242922";
/// The default tenant's second number (+44: business-initiated calls and permissions).
pub const PHONE2: &str = "110972043181256";
pub const WABA: &str = "102290129340398";
pub const TOKEN: &str = "wa-emulator-token";
pub const SECRET: &str = "wa-emulator-secret";
pub const USER: &str = "16315551234";

/// A `voice_call` interactive message to `to` with these button parameters.
pub fn voice_call(to: &str, params: Value) -> Value {
    json!({"messaging_product":"whatsapp","recipient_type":"individual","to":to,"type":"interactive",
           "interactive":{"type":"voice_call","body":{"text":"Call us on WhatsApp now"},"action":{"name":"voice_call","parameters":params}}})
}

/// The binary this package builds, with no `WA_EMULATOR_*` variables from the test's
/// environment.
pub fn binary() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wa-emulator"));
    for (k, _) in std::env::vars() {
        if k.starts_with("WA_EMULATOR_") {
            c.env_remove(k);
        }
    }
    c
}

/// A `wa-emulator serve` process: its URL (on loopback), its banner, its stderr so far.
pub struct Served {
    child: Child,
    pub url: String,
    pub banner: String,
    stderr: Arc<Mutex<String>>,
}

impl Served {
    /// `wa-emulator serve ARGS` with these extra environment variables; returns once the
    /// banner is printed.
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
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
            .strip_prefix("wa-emulator listening on ")
            .and_then(|url| url.rsplit(':').next())
            .unwrap_or_else(|| panic!("no listening line: {banner:?} {}", stderr.lock().unwrap()))
            .to_owned();
        // The rest of the banner, through its last line ("  try: curl …").
        for _ in 0..40 {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            banner.push_str(&line);
            if line.starts_with("  try:") {
                break;
            }
        }
        // Keep draining: a closed pipe would fail the emulator's next print.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            banner,
            stderr,
        }
    }

    /// A request with this bearer token (or none) and this JSON body (none when `null`);
    /// the answer's status and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let body = (!body.is_null()).then_some(&body);
        let answer = Client::new()
            .json(method, &format!("{}{path}", self.url), token, body)
            .await
            .unwrap_or_else(|e| panic!("the emulator answers: {e}"));
        (answer.status.as_u16(), answer.json())
    }

    /// [`Served::call`] with the default tenant's access token.
    pub async fn request(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(method, path, Some(TOKEN), body).await
    }

    /// SIGTERM (SIGKILL after 10 s), then how it exited and everything it wrote to stderr.
    // A real process: the grace period is real time.
    #[allow(clippy::disallowed_methods)]
    pub fn stop(mut self) -> (ExitStatus, String) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let s = self.stderr.lock().unwrap().clone();
        (status, s)
    }

    /// `kill -9`: no chance to flush anything.
    pub fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// One webhook the [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    pub signature_ok: bool,
}

/// A webhook receiver that answers the GET handshake, verifies each POST's signature
/// (`codec::verify`), and answers with `status`.
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Received>>>,
    pub status: Arc<AtomicU16>,
    _task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(secret: &'static str, verify_token: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhook", listener.local_addr().unwrap());
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (g, s) = (got.clone(), status.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (g, s) = (g.clone(), s.clone());
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (g, s) = (g.clone(), s.clone());
                        async move {
                            let (code, body) = receive(req, secret, verify_token, &g, &s).await;
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(code)
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    },
                );
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
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

    /// Waits (bounded) until `n` webhooks arrived; returns what arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..500 {
            if self.got.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.got.lock().unwrap().clone()
    }
}

/// The handshake (`hub.mode`, `hub.verify_token`, `hub.challenge`) or one webhook.
async fn receive(
    req: hyper::Request<hyper::body::Incoming>,
    secret: &str,
    verify_token: &str,
    got: &Mutex<Vec<Received>>,
    status: &AtomicU16,
) -> (u16, String) {
    if req.method() == hyper::Method::GET {
        let q = req.uri().query().unwrap_or("").to_owned();
        let param = |k: &str| {
            q.split('&')
                .find_map(|p| p.strip_prefix(&format!("{k}=")))
                .unwrap_or("")
                .to_owned()
        };
        return if param("hub.mode") == "subscribe" && param("hub.verify_token") == verify_token {
            (200, param("hub.challenge"))
        } else {
            (403, "bad verify token".into())
        };
    }
    let signature = req
        .headers()
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    got.lock().unwrap().push(Received {
        signature_ok: verify(secret.as_bytes(), &body, &signature),
    });
    (status.load(Ordering::SeqCst), "ok".into())
}
