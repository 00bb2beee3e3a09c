//! The benchmark floor: the least an HTTP server built on the emulator's stack can do.
//!
//! It accepts connections the way the emulator does (hyper 1.x, HTTP/1.1, `TCP_NODELAY`,
//! the same two-worker tokio runtime unless `--current-thread`), drains each request body
//! and answers every request with the same static JSON the emulator gives to
//! `POST /{phone}/messages`. No parsing, no state, no webhooks: the emulator's throughput
//! divided by this one is the share of the machine the emulator's own work leaves over.
//!
//! ```text
//! cargo run --release -p wa-emulator --example floor -- --addr 127.0.0.1:4010 [--body-file F]
//! ```
//! Used by `emulator/bench/run.sh`; not part of the test suite.

#[cfg(feature = "server")]
mod floor {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper_util::rt::TokioIo;
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use tokio::net::TcpListener;

    /// The shape and size of the emulator's answer to a `voice_call` send.
    const DEFAULT_BODY: &str = r#"{"messaging_product":"whatsapp","contacts":[{"input":"16315551234","wa_id":"16315551234"}],"messages":[{"id":"wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"}]}"#;

    pub fn main() {
        let mut addr: SocketAddr = ([127, 0, 0, 1], 4010).into();
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
                other => die(&format!(
                    "unknown argument {other}; usage: floor [--addr HOST:PORT] [--body-file F] [--current-thread]"
                )),
            }
        }
        let runtime = if current_thread {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        } else {
            // What `wa-emulator serve` builds, so the ratio compares the work, not the runtime.
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
        }
        .unwrap_or_else(|e| die(&format!("cannot start the runtime: {e}")));
        runtime.block_on(serve(addr, body));
    }

    fn die(msg: &str) -> ! {
        eprintln!("floor: {msg}");
        std::process::exit(2)
    }

    async fn serve(addr: SocketAddr, body: Bytes) {
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
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let body = body.clone();
                    async move {
                        // Drained like the emulator does before it answers.
                        let _ = req.into_body().collect().await;
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
