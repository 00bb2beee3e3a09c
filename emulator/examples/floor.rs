//! The benchmark floor: the least an HTTP server built on the emulator's stack can do.
//!
//! It accepts connections the way the emulator does (hyper 1.x, HTTP/1.1, `TCP_NODELAY`,
//! the same two-worker tokio runtime unless `--current-thread`), drains each request body
//! and answers every request with the same static JSON the emulator gives to
//! `POST /{phone}/messages`. No parsing, no state, no webhooks: the emulator's throughput
//! divided by this one is the share of the machine the emulator's own work leaves over.
//!
//! With `--webhooks URL` it also POSTs two signed, static status webhooks per request to
//! URL (one after the other, as the emulator sends `sent` then `delivered`) through the
//! same hyper-util client the emulator uses: the floor of "answer and deliver", which
//! bounds what the emulator can reach while its webhooks go out on the same core.
//!
//! The server and the webhook client stay plain hyper, written out here, because they are
//! the baseline the emulator is measured against (and its client's pool is uncapped: the
//! ceiling, not the emulator's pool). The one signature is made once at start-up with the
//! emulator's `webhook::codec::sign`, which costs the measured path nothing.
//!
//! ```text
//! cargo run --release -p wa-emulator --example floor -- --addr 127.0.0.1:4010 \
//!     [--body-file F] [--current-thread] [--webhooks http://127.0.0.1:4011/webhook]
//! ```
//! Used by `emulator/bench/run.sh`; not part of the test suite.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example: it prints its results"
)]

#[cfg(feature = "server")]
mod floor {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper_util::client::legacy::{connect::HttpConnector, Client};
    use hyper_util::rt::TokioIo;
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use tokio::net::TcpListener;
    use wa_emulator::webhook::codec::sign;

    /// The shape and size of the emulator's answer to a `voice_call` send.
    const DEFAULT_BODY: &str = r#"{"messaging_product":"whatsapp","contacts":[{"input":"16315551234","wa_id":"16315551234"}],"messages":[{"id":"wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"}]}"#;

    /// A `sent` status webhook of the emulator's size, signed once at start-up.
    const WEBHOOK_BODY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA","status":"sent","timestamp":"1767225600","recipient_id":"16315551234","conversation":{"id":"6f1c8e0a2b3d4c5e6f708192a3b4c5d6","expiration_timestamp":"1767312000","origin":{"type":"service"}},"pricing":{"billable":false,"pricing_model":"PMP","type":"free_customer_service","category":"service"}}]},"field":"messages"}]}]}"#;

    /// Where the floor's webhooks go, and what they carry.
    #[derive(Clone)]
    struct Hooks {
        client: Client<HttpConnector, Full<Bytes>>,
        url: String,
        body: Bytes,
        signature: String,
    }

    impl Hooks {
        fn new(url: String, secret: &str) -> Self {
            let signature = sign(secret.as_bytes(), WEBHOOK_BODY.as_bytes());
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            // Keep-alive connections without a cap: the ceiling, not the emulator's pool.
            let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
            Self {
                client,
                url,
                body: Bytes::from_static(WEBHOOK_BODY.as_bytes()),
                signature,
            }
        }

        async fn deliver_two(self) {
            for _ in 0..2 {
                let req = hyper::Request::post(&self.url)
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", &self.signature)
                    .body(Full::new(self.body.clone()));
                let Ok(req) = req else { return };
                if let Ok(resp) = self.client.request(req).await {
                    let _ = resp.into_body().collect().await;
                }
            }
        }
    }

    pub fn main() {
        let mut addr: SocketAddr = ([127, 0, 0, 1], 4010).into();
        let mut hooks: Option<String> = None;
        let mut body = Bytes::from_static(DEFAULT_BODY.as_bytes());
        let mut current_thread = false;
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--addr" => {
                    addr = args
                        .next()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or_else(|| die("--addr needs HOST:PORT"))
                }
                "--body-file" => {
                    let path = args.next().unwrap_or_else(|| die("--body-file needs a path"));
                    let bytes = std::fs::read(&path)
                        .unwrap_or_else(|e| die(&format!("cannot read {path}: {e}")));
                    body = Bytes::from(bytes);
                }
                "--current-thread" => current_thread = true,
                "--webhooks" => {
                    hooks = Some(args.next().unwrap_or_else(|| die("--webhooks needs a URL")))
                }
                other => die(&format!(
                    "unknown argument {other}; usage: floor [--addr HOST:PORT] [--body-file F] [--current-thread] [--webhooks URL]"
                )),
            }
        }
        let runtime = if current_thread {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        } else {
            // What `wa-emulator serve` builds (a worker per CPU it may use), so the ratio
            // compares the work, not the runtime.
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
        }
        .unwrap_or_else(|e| die(&format!("cannot start the runtime: {e}")));
        runtime.block_on(async move {
            let hooks = hooks.map(|url| Hooks::new(url, "wa-emulator-secret"));
            serve(addr, body, hooks).await
        });
    }

    fn die(msg: &str) -> ! {
        eprintln!("floor: {msg}");
        std::process::exit(2)
    }

    async fn serve(addr: SocketAddr, body: Bytes, hooks: Option<Hooks>) {
        let listener = TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| die(&format!("cannot listen on {addr}: {e}")));
        println!("floor listening on http://{addr}");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            let hooks = hooks.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let body = body.clone();
                    let hooks = hooks.clone();
                    async move {
                        // Drained like the emulator does before it answers.
                        let _ = req.into_body().collect().await;
                        if let Some(h) = hooks {
                            tokio::spawn(h.deliver_two());
                        }
                        let resp = hyper::Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(body))
                            .expect("static headers are valid");
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}

#[cfg(feature = "server")]
fn main() {
    floor::main()
}

#[cfg(not(feature = "server"))]
fn main() {
    eprintln!("the floor needs the `server` feature (hyper, tokio)");
    std::process::exit(2);
}
