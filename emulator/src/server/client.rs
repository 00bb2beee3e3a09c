//! The one small HTTP client for talking to an emulator or a webhook receiver: the
//! `wa-emulator` user-action subcommands, `replay`, the scenario runner and the test
//! harnesses all send their requests through it.
//!
//! One request in (method, URL, headers or a bearer token, a body), one [`Response`] out
//! (status, headers, the whole body), within a timeout. When no answer comes, the
//! [`ClientError`] says which request it was and why, with every cause hyper knows
//! ([`error_chain`]): "client error (Connect)" alone does not say that the port is closed.
//!
//! Connections are pooled per client, so keep one and clone it (clones share the pool).
//! [`Client::new`] speaks plain `http://` (the emulator is local); [`Client::with_trust`]
//! also speaks `https://` (hyper-rustls) with a [`Trust`], for `replay` to real receivers,
//! and names a TLS failure's reason ([`tls::describe_for`]) first; [`Client::in_memory`]
//! reaches an emulator in this process without a socket (the scenario runner).
//!
//! The webhook delivery worker (`delivery.rs`) keeps its own hyper client: a pool tuned for
//! throughput (hundreds of idle connections per receiver, a connect timeout), a timeout
//! per attempt from the options, and a receiver's answer that is recorded even when its
//! body is cut short. It shares [`error_chain`].

use super::tls::{self, Trust};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client as Pool};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::DuplexStream;

/// A pooled HTTP/1.1 client with a timeout on each whole exchange.
#[derive(Clone)]
pub struct Client {
    pool: Pools,
    timeout: Duration,
}

#[derive(Clone)]
enum Pools {
    Http(Pool<HttpConnector, Full<Bytes>>),
    /// http:// and https://; `ca_flag` is named in an unknown CA's hint.
    Tls {
        pool: Pool<HttpsConnector<HttpConnector>, Full<Bytes>>,
        ca_flag: &'static str,
    },
    /// One emulator in this process, over in-memory streams ([`Client::in_memory`]).
    Memory(Arc<Memory>),
}

/// Opens a connection to an emulator in this process (`Running::in_memory`).
pub type OpenStream = Arc<dyn Fn() -> DuplexStream + Send + Sync>;

/// Idle in-memory connections kept for reuse; more are closed.
const MEMORY_IDLE: usize = 8;

/// The in-memory door: what opens a connection, and the idle ones kept for reuse (as
/// the TCP pool keeps its keep-alive connections).
struct Memory {
    open: OpenStream,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl Memory {
    /// An idle connection that can take a request, or a new one.
    async fn sender(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        loop {
            let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            let Some(mut s) = idle else { break };
            // A connection whose last answer was just read may still be finishing it.
            if !s.is_closed() && s.ready().await.is_ok() {
                return Ok(s);
            }
        }
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new((self.open)()))
            .await
            .map_err(|e| error_chain(&e))?;
        tokio::spawn(conn);
        Ok(sender)
    }

    /// Sends `req` as the TCP pool would put it on the wire: the path alone on the
    /// request line, the URL's authority as `Host`.
    async fn send(
        &self,
        mut req: Request<Full<Bytes>>,
    ) -> Result<
        (
            hyper::Response<hyper::body::Incoming>,
            SendRequest<Full<Bytes>>,
        ),
        String,
    > {
        if let Some(authority) = req.uri().authority().cloned() {
            if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
                req.headers_mut().entry(HOST).or_insert(host);
            }
        }
        let origin = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .parse::<Uri>()
            .map_err(|e| e.to_string())?;
        *req.uri_mut() = origin;
        let mut sender = self.sender().await?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| error_chain(&e))?;
        Ok((resp, sender))
    }
}

/// An answer: its status, its headers and its whole body.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// No answer came: `request` is `"METHOD URL"`, `problem` says why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientError {
    pub request: String,
    pub problem: String,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// How long one exchange (connect, request, the whole answer) may take by default.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    pub fn new() -> Client {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let pool = Pool::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Client {
            pool: Pools::Http(pool),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// A client for `http://` and `https://` URLs, the server's certificate checked with
    /// `trust`; `ca_flag` (`--ca`) is the flag an unknown CA's reason tells to pass. `Err`
    /// when the trust's CA file cannot serve.
    pub fn with_trust(trust: &Trust, ca_flag: &'static str) -> Result<Client, String> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        // The TLS layer wraps it and hands it https:// URIs too.
        connector.enforce_http(false);
        let config = trust.client_config("https servers")?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(std::sync::Arc::unwrap_or_clone(config))
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let pool = Pool::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Client {
            pool: Pools::Tls { pool, ca_flag },
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }

    /// A client for one emulator running in this process: every request, whatever its
    /// URL's host, goes over an in-memory stream from `open` (`Running::in_memory`),
    /// with the same bytes as over TCP, connections kept and reused as the TCP pool does.
    pub fn in_memory(open: OpenStream) -> Client {
        Client {
            pool: Pools::Memory(Arc::new(Memory {
                open,
                idle: Mutex::new(Vec::new()),
            })),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// The same client (and pool) with another timeout per exchange.
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// Sends exactly these headers and body. `Err` only when no HTTP answer came back
    /// whole: any status, 4xx and 5xx included, is an `Ok`.
    pub async fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Response, ClientError> {
        let fail = |problem: String| ClientError {
            request: format!("{method} {url}"),
            problem,
        };
        let method_ = Method::from_bytes(method.as_bytes())
            .map_err(|_| fail(format!("{method:?} is not an HTTP method")))?;
        let mut req = Request::builder().method(method_).uri(url);
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| fail(format!("{name:?} is not a header name")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| fail(format!("the {name} header value {value:?} is not valid")))?;
            req = req.header(name, value);
        }
        let req = req
            .body(Full::new(body.into()))
            .map_err(|e| fail(format!("cannot build the request: {e}")))?;
        let exchange = async {
            let mut reuse = None;
            let resp = match &self.pool {
                Pools::Http(pool) => pool.request(req).await.map_err(|e| error_chain(&e)),
                Pools::Memory(memory) => memory.send(req).await.map(|(resp, sender)| {
                    reuse = Some((memory, sender));
                    resp
                }),
                Pools::Tls { pool, ca_flag } => {
                    pool.request(req)
                        .await
                        .map_err(|e| match tls::describe_for(&e, ca_flag) {
                            Some(reason) => format!("TLS: {reason} [{}]", error_chain(&e)),
                            None => error_chain(&e),
                        })
                }
            }
            .map_err(fail)?;
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| fail(format!("reading the answer: {}", error_chain(&e))))?
                .to_bytes();
            // The whole answer is read: the connection can take the next request.
            if let Some((memory, sender)) = reuse {
                if let Ok(mut idle) = memory.idle.lock() {
                    if idle.len() < MEMORY_IDLE {
                        idle.push(sender);
                    }
                }
            }
            Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| fail(format!("no answer within {}", shown_duration(self.timeout))))?
    }

    /// A JSON API call: `Authorization: Bearer` when `bearer` is given, and the body as
    /// JSON with `Content-Type: application/json` when there is one.
    pub async fn json(
        &self,
        method: &str,
        url: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Response, ClientError> {
        let authorization = bearer.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(2);
        if let Some(a) = &authorization {
            headers.push((AUTHORIZATION.as_str(), a));
        }
        let bytes = match body {
            Some(v) => {
                headers.push((CONTENT_TYPE.as_str(), "application/json"));
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        self.request(method, url, &headers, bytes).await
    }
}

impl Response {
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// The body as JSON: `null` when empty, the text as a JSON string when it is not JSON.
    pub fn json(&self) -> Value {
        if self.body.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&self.body).unwrap_or_else(|_| Value::String(self.text()))
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value, when present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.request, self.problem)
    }
}

impl std::error::Error for ClientError {}

/// An error and its causes on one line, outermost first: hyper's top-level message
/// ("client error (Connect)") says where it failed, the causes say why ("Connection
/// refused").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `20 s`, `500 ms`.
fn shown_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Incoming;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use std::convert::Infallible;

    /// Answers every request with `status` and a JSON echo of what it received.
    async fn echo(status: u16, delay: Duration) -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<Incoming>| async move {
                        let header = |n: &str| {
                            req.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned)
                        };
                        let seen = serde_json::json!({
                            "method": req.method().as_str(),
                            "path": req.uri().path(),
                            "authorization": header("authorization"),
                            "content_type": header("content-type"),
                            "x_extra": header("x-extra"),
                        });
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        tokio::time::sleep(delay).await;
                        let answer = serde_json::json!({"seen": seen, "body": String::from_utf8_lossy(&body)});
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .status(status)
                                .header("x-answer", "yes")
                                .body(Full::new(Bytes::from(answer.to_string())))
                                .unwrap(),
                        )
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (url, task)
    }

    #[tokio::test]
    async fn a_json_call_sends_the_bearer_and_the_body_and_reads_any_status() {
        let (url, _server) = echo(404, Duration::ZERO).await;
        let client = Client::new();
        let r = client
            .json(
                "POST",
                &format!("{url}/v21.0/x"),
                Some("tok"),
                Some(&serde_json::json!({"a": 1})),
            )
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(!r.is_success());
        assert_eq!(r.header("x-answer"), Some("yes"));
        let v = r.json();
        assert_eq!(v["seen"]["method"], "POST");
        assert_eq!(v["seen"]["path"], "/v21.0/x");
        assert_eq!(v["seen"]["authorization"], "Bearer tok");
        assert_eq!(v["seen"]["content_type"], "application/json");
        assert_eq!(v["body"], r#"{"a":1}"#);

        let r = client.json("GET", &url, None, None).await.unwrap();
        let v = r.json();
        assert_eq!(v["seen"]["authorization"], Value::Null);
        assert_eq!(v["seen"]["content_type"], Value::Null);
        assert_eq!(v["body"], "");
    }

    #[tokio::test]
    async fn a_raw_request_sends_exactly_its_headers_and_bytes() {
        let (url, _server) = echo(200, Duration::ZERO).await;
        let r = Client::new()
            .request("PUT", &url, &[("x-extra", "1")], "not json")
            .await
            .unwrap();
        let v = r.json();
        assert_eq!(v["seen"]["x_extra"], "1");
        assert_eq!(v["seen"]["content_type"], Value::Null);
        assert_eq!(v["body"], "not json");
    }

    #[test]
    fn bodies_read_as_json_null_or_text() {
        let with = |body: &'static str| Response {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from_static(body.as_bytes()),
        };
        assert_eq!(with("").json(), Value::Null);
        assert_eq!(
            with(r#"{"ok":true}"#).json(),
            serde_json::json!({"ok": true})
        );
        assert_eq!(with("Forbidden").json(), Value::String("Forbidden".into()));
    }

    #[tokio::test]
    async fn no_answer_says_which_request_and_why() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/x");
        let e = Client::new()
            .json("GET", &url, None, None)
            .await
            .unwrap_err();
        assert_eq!(e.request, format!("GET {url}"));
        // The cause, not only hyper's "client error (Connect)".
        assert!(
            e.problem.contains("onnect") && e.problem.contains(": "),
            "{e}"
        );
        assert!(e.to_string().starts_with(&format!("GET {url}: ")), "{e}");

        let e = Client::new()
            .request("BAD METHOD", &url, &[], "")
            .await
            .unwrap_err();
        assert!(e.problem.contains("not an HTTP method"), "{e}");
    }

    #[tokio::test]
    async fn a_slow_answer_times_out() {
        let (url, _server) = echo(200, Duration::from_secs(5)).await;
        let e = Client::new()
            .with_timeout(Duration::from_millis(100))
            .json("GET", &url, None, None)
            .await
            .unwrap_err();
        assert_eq!(e.problem, "no answer within 100 ms");
    }
}
