//! A misbehaving emulator: an HTTP server that answers each request with whatever the
//! test's table says, so tests can see how the runner reports an emulator that answers
//! what the real one never would (another shape, an HTTP 500 on a setup call). Every
//! test that needs an emulator behaving correctly uses the real one, in-process
//! (`scenario::InProcess`); this exists only because the real one cannot be made to
//! misbehave.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::sync::Arc;

/// The answer to `(method, path)`: a status and a JSON body.
pub type Table = fn(&str, &str) -> (u16, Value);

/// A running fake; dropping it stops its accept loop.
pub struct Misbehaving {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Misbehaving {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Misbehaving {
    pub async fn start(table: Table) -> Misbehaving {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let table = Arc::new(table);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let table = table.clone();
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (status, body) = table(req.method().as_str(), req.uri().path());
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body.to_string())))
                                .unwrap(),
                        )
                    }
                });
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Misbehaving { url, task }
    }
}
