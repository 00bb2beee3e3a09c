//! The I/O shell: the hyper accept loop, the one place the system clock is read, the
//! webhook delivery worker, the verification handshake, state persistence and SIP.
//!
//! # Layout
//! - `mod.rs`: start-up ([`spawn`]), the request path, the clock-advance and webhook
//!   handshake routes that need I/O, shutdown.
//! - `tenants.rs`: tenants for parallel tests (`/__emulator/tenants`): the registry,
//!   routing each request to one tenant's engine (by token, or by admin path).
//! - `delivery.rs`: the worker that sends every tenant's due webhooks and reports
//!   attempts back.
//! - [`client`]: the one small HTTP client for talking to an emulator or a receiver (the
//!   binary's user actions, `replay`, the scenario runner, the test harnesses).
//! - `config.rs`: flags, environment and TOML → [`ServeOptions`].
//! - `keys.rs`: the key material start-up generates (media DTLS, SIP TLS), made once per
//!   process.
//! - `wal.rs`: the write-ahead log of `--state`: every input on disk before its answer,
//!   replayed at start.
//! - `ui.rs`: the inspector's page and event stream.
//! - [`tls`]: the one place rustls is configured: what TLS clients trust (`--webhook-ca`,
//!   `--webhook-insecure`), the certificate a TLS listener presents (loaded or
//!   generated), TLS failures named for people.
//! - `media.rs`: the user's media endpoints: one loopback UDP socket, the 20 ms pacing,
//!   the `…/media`, `…/dtmf` and `…/play` admin routes.
//! - `sip_hub.rs`: `SipHub` starts the SIP user agent for each INVITE an engine asks for
//!   and feeds its events back to that tenant's engine, logged first; it also hands the
//!   gateway the user's answers.
//! - `sip_gateway.rs`: the SIP gateway of business-initiated calls joined to the
//!   engines: its listeners, the INVITE judged on the tenant it names, events fed back.

pub mod client;
pub mod config;
mod delivery;
pub(crate) mod keys;
mod media;
mod sip_gateway;
mod sip_hub;
mod tenants;
pub mod tls;
mod ui;
mod wal;

use crate::api::{self, Context, Request, Response};
use crate::domain::error::{ApiError, ErrorKind};
use crate::engine::{ClockMode, Engine};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tenants::{Registry, Route, Tenant};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

pub use config::{ServeArgs, ServeOptions};
pub use sip_hub::SipHub;

/// The system clock, read here and nowhere else.
#[allow(clippy::disallowed_methods, reason = "the one wall-clock read")]
pub fn real_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// State shared by the request handlers and the background tasks.
pub(crate) struct Shared {
    /// The tenant made from the configuration: unprefixed admin routes, the default
    /// token, `--state`.
    pub default: Arc<Tenant>,
    /// Tenants created by `POST /__emulator/tenants`, each with an engine of its own.
    /// Never locked while an engine is.
    pub tenants: Mutex<Registry>,
    /// Tenants something happened to since the delivery worker last looked
    /// ([`Shared::touched`]).
    pub touched: Mutex<Vec<Arc<Tenant>>>,
    /// Wakes the delivery worker: new webhooks, finished attempts, moved clock.
    pub wake: Notify,
    pub ctx: Context,
    pub opts: ServeOptions,
    pub http: delivery::HttpClient,
    /// With `--state`: every input is in the write-ahead log before it is acknowledged.
    pub wal: Option<wal::WriteAheadLog>,
    pub sip: crate::server::SipHub,
    /// The user's media endpoints (one socket, one task; `server/media.rs`).
    pub(crate) media: media::MediaHub,
}

impl Shared {
    /// Logs an input made with the tenant's engine locked to the write-ahead log (no-op
    /// without `--state`, and for every tenant but the default one, which alone
    /// persists); the receiver resolves once it is durable.
    pub fn log_input(
        &self,
        tenant: &Tenant,
        engine: &mut Engine,
        input: impl FnOnce() -> wal::Input,
    ) -> Option<tokio::sync::oneshot::Receiver<()>> {
        if !tenant.is_default() {
            return None;
        }
        self.wal.as_ref().map(|w| w.append(&input(), engine))
    }

    /// Sets (or clears) a tenant's callback URL, durably.
    async fn set_webhook_url(
        &self,
        tenant: &Tenant,
        app: Option<String>,
        url: Option<String>,
        token: Option<String>,
    ) {
        let durable = {
            let mut engine = tenant.lock();
            engine.set_webhook_url(app.as_deref(), url.clone(), token.clone());
            self.log_input(tenant, &mut engine, || wal::Input::Webhook {
                app,
                url,
                token,
            })
        };
        if let Some(d) = durable {
            let _ = d.await;
        }
    }

    /// The default tenant's engine.
    pub fn lock(&self) -> MutexGuard<'_, Engine> {
        self.default.lock()
    }
}

/// A running emulator. Dropping it stops the server.
pub struct Running {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Opens connections to this emulator inside the process: each call gives one end of
    /// an in-memory stream whose other end the server serves exactly as an accepted TCP
    /// connection (same service, same limits), without the loopback round trip. Once the
    /// emulator has stopped, the stream is closed at once. Call it on the emulator's
    /// runtime.
    pub fn in_memory(&self) -> impl Fn() -> tokio::io::DuplexStream + Send + Sync + 'static {
        let shared = Arc::downgrade(&self.shared);
        let stop = self.shutdown.subscribe();
        move || {
            // Room for a typical request or answer in one write.
            let (client, server) = tokio::io::duplex(64 * 1024);
            if let Some(shared) = shared.upgrade() {
                if !*stop.borrow() {
                    tokio::spawn(serve_connection(server, shared, stop.clone()));
                }
            }
            client
        }
    }

    /// The default tenant's `GET /__emulator/config`, read without a request.
    pub(crate) fn config(&self) -> crate::api::admin_types::Config {
        api::admin::config(&self.shared.lock(), &self.shared.ctx)
    }

    /// Stops accepting, compacts the write-ahead log (with `--state`) and waits for the tasks.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        self.shared.sip.stop_gateway();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        if let Some(j) = &self.shared.wal {
            j.compact(&mut self.shared.lock());
            j.stop().await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.shared.sip.stop_gateway();
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds and starts the emulator on the current tokio runtime.
pub async fn spawn(opts: ServeOptions) -> Result<Running, String> {
    let http = delivery::client(&opts.webhook_trust)?;
    let listener = TcpListener::bind(opts.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", opts.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let start = opts.clock_start_ms.unwrap_or_else(real_now_ms);
    let mut engine = Engine::new(
        opts.tenants.clone(),
        opts.behaviour.clone(),
        opts.seed,
        opts.clock,
        start,
    );
    let (gateway, gateway_host, sip_info) = sip_gateway::start(&opts).await?;
    let ctx = Context {
        listen_url: format!("http://{addr}"),
        admin_token: opts.admin_token.clone(),
        sip: Some(sip_info),
    };
    let (media_hub, media_task) = media::MediaHub::new();
    let wal = match &opts.state {
        Some(path) => {
            let replayed = wal::recover(&mut engine, path, &ctx)?;
            if replayed > 0 || path.exists() {
                tracing::info!(path = %path.display(), replayed, "state restored");
            }
            // Compact what was recovered into a fresh snapshot and an empty log.
            wal::write_snapshot(path, &engine.checkpoint())
                .and_then(|_| std::fs::write(wal::wal_path(path), b""))
                .map_err(|e| format!("cannot write state file {}: {e}", path.display()))?;
            let first = wal::Input::media_local(media_hub.local.as_ref());
            let log = wal::WriteAheadLog::start(path.clone(), &first);
            Some(log.map_err(|e| {
                format!(
                    "cannot open the write-ahead log beside {}: {e}",
                    path.display()
                )
            })?)
        }
        None => None,
    };
    let (tx, rx) = watch::channel(false);
    let sip_tls = opts.sip_trust.client_config("SIP servers")?;
    let (sip, sip_rx) = SipHub::new(sip_tls);
    engine.media_local = media_hub.local.clone();
    let shared = Arc::new(Shared {
        default: Arc::new(Tenant::new(String::new(), engine)),
        tenants: Mutex::new(Registry::default()),
        touched: Mutex::new(Vec::new()),
        wake: Notify::new(),
        ctx,
        http,
        wal,
        sip,
        media: media_hub,
        opts,
    });
    gateway_host.attach(&shared);
    let _ = shared.sip.gateway.set(gateway);
    let mut tasks = vec![
        tokio::spawn(accept_loop(listener, shared.clone(), rx.clone())),
        tokio::spawn(delivery::worker(shared.clone(), rx.clone())),
        tokio::spawn(sip_hub::sip_events(shared.clone(), sip_rx, rx.clone())),
    ];
    if let Some(task) = media_task {
        tasks.push(tokio::spawn(media::run(shared.clone(), task, rx.clone())));
    }
    // A callback URL given at start-up gets its handshake now; a failure is reported
    // but the URL stays, since receivers often start after the emulator.
    let start_url = {
        let engine = shared.lock();
        engine
            .st
            .tenants
            .apps
            .first()
            .and_then(|a| a.webhook_url.clone())
    };
    if let Some(url) = start_url {
        let s = shared.clone();
        tokio::spawn(async move {
            let token = s
                .lock()
                .st
                .tenants
                .apps
                .first()
                .map(|a| a.verify_token.clone())
                .unwrap_or_default();
            match delivery::handshake(&s, &url, &token).await {
                Ok(()) => tracing::info!(%url, "webhook verification handshake succeeded"),
                Err(e) => tracing::warn!(%url, "webhook verification handshake failed: {e}"),
            }
        });
    }
    // Recovered deliveries (with --state) and timers are the worker's first look.
    shared.touched(&shared.default);
    Ok(Running {
        addr,
        shutdown: tx,
        tasks,
        shared,
    })
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let (stream, _) = match accepted {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(stream, shared.clone(), stop.clone()));
    }
}

/// Serves HTTP/1.1 on one connection until it closes or the server stops: an accepted
/// TCP stream, or an in-process one ([`Running::in_memory`]).
async fn serve_connection<I>(io: I, shared: Arc<Shared>, mut stop: watch::Receiver<bool>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let client_timeout = Duration::from_millis(shared.opts.client_timeout_ms);
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(serve_one(&shared, req).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_buf_size(256 * 1024)
        .header_read_timeout(client_timeout)
        .timer(hyper_util::rt::TokioTimer::new());
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => conn.as_mut().graceful_shutdown(),
    }
}

// Boxed so the inspector's event stream can share the response type with `Full` bodies.
type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// Written in place rather than through hyper's builder, which moves the whole response
/// through a `Result` for each call (every answer passes here); the same checks, the same
/// `{}` answer when one fails, the headers in the same order.
fn to_hyper(r: Response) -> hyper::Response<Body> {
    use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
    let fallback = || hyper::Response::new(Full::new(Bytes::from_static(b"{}")).boxed());
    let Ok(status) = hyper::StatusCode::from_u16(r.status) else {
        return fallback();
    };
    // A static content type is taken as it is, not copied.
    let Ok(content_type) =
        HeaderValue::from_maybe_shared(Bytes::from_static(r.content_type.as_bytes()))
    else {
        return fallback();
    };
    let mut out = hyper::Response::new(Full::new(Bytes::from(r.body)).boxed());
    *out.status_mut() = status;
    let headers = out.headers_mut();
    headers.append(CONTENT_TYPE, content_type);
    for (k, v) in &r.headers {
        match (HeaderName::try_from(*k), HeaderValue::try_from(v.as_str())) {
            (Ok(k), Ok(v)) => {
                headers.append(k, v);
            }
            _ => return fallback(),
        }
    }
    out
}

fn early_error(shared: &Shared, status: u16, e: ApiError) -> hyper::Response<Body> {
    let mut engine = shared.lock();
    let mut r = Response::error(&mut engine, &e);
    r.status = status;
    to_hyper(r)
}

async fn serve_one(shared: &Arc<Shared>, req: hyper::Request<Incoming>) -> hyper::Response<Body> {
    let (parts, body) = req.into_parts();
    // Read in place: `Request::new` copies what it keeps.
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    if pq.len() > 16 * 1024 {
        return early_error(
            shared,
            414,
            ApiError::new(
                ErrorKind::InvalidParameter,
                format!(
                    "The request URI is {} bytes long; the limit is 16384.",
                    pq.len()
                ),
            ),
        );
    }
    let limit = shared.opts.body_limit;
    // A declared length over the limit is refused before reading (and before any
    // `100 Continue`), so a client cannot make the emulator wait for 100 MB.
    let declared = parts
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return early_error(
            shared,
            413,
            ApiError::new(
                ErrorKind::BodyTooLarge,
                format!("The request body is larger than the {limit}-byte limit."),
            ),
        );
    }
    // A client that stalls its body is cut off, as one that stalls its headers is.
    let collected = match tokio::time::timeout(
        Duration::from_millis(shared.opts.client_timeout_ms),
        Limited::new(body, limit).collect(),
    )
    .await
    {
        Ok(c) => c,
        Err(_) => {
            return early_error(
                shared,
                408,
                ApiError::new(
                    ErrorKind::InvalidParameter,
                    format!(
                        "The request body did not arrive within {} ms.",
                        shared.opts.client_timeout_ms
                    ),
                ),
            )
        }
    };
    let bytes = match collected {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            let (status, err) = if e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                (
                    413,
                    ApiError::new(
                        ErrorKind::BodyTooLarge,
                        format!("The request body is larger than the {limit}-byte limit."),
                    ),
                )
            } else {
                (
                    400,
                    ApiError::new(
                        ErrorKind::InvalidParameter,
                        format!("The request body could not be read: {e}."),
                    ),
                )
            };
            return early_error(shared, status, err);
        }
    };
    // Only the headers the API reads are copied (two strings each, per request): today
    // `authorization` alone. Add a name here before reading another with `Request::header`.
    let headers: Vec<(String, String)> = parts
        .headers
        .get_all(hyper::header::AUTHORIZATION)
        .iter()
        .map(|v| {
            (
                "authorization".to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut req = Request::new(parts.method.as_str(), pq, headers, bytes);
    let tenant = match tenants::route(shared, &mut req).await {
        Route::Tenant(t) => t,
        Route::Answered(response) => {
            shared.wake.notify_one();
            return to_hyper(response);
        }
    };
    let virtual_clock = || tenant.lock().clock == ClockMode::Virtual;
    let response = match (req.method.as_str(), req.path.as_str()) {
        ("PUT", "/__emulator/webhook") => set_webhook(shared, &tenant, &req).await,
        ("GET", p) if ui::owns(p) => return ui::serve(shared, &tenant, &req),
        _ if media::owns(&req) => media::serve(shared, &tenant, &req).await,
        ("POST", "/__emulator/clock/advance") if virtual_clock() => {
            advance_clock(shared, &tenant, &req).await
        }
        _ => {
            if req.method == "PUT" && req.path == "/__emulator/snapshot" && !tenant.is_default() {
                if let Err(r) = tenants::check_snapshot(shared, &tenant, &req) {
                    return to_hyper(r);
                }
            }
            // A Graph request that may queue webhooks waits while its tenant's pending
            // deliveries are at the bound, and is refused only if no room comes in time.
            let gated = req.method == "POST" && !req.path.starts_with(api::ADMIN_PREFIX);
            let mut waiting_since = None;
            let (resp, effects, durable) = loop {
                {
                    let mut engine = tenant.lock();
                    if !gated || delivery::admits(&engine) {
                        let now = engine.now();
                        let resp = api::handle(&mut engine, &req, &shared.ctx);
                        // Reads of the admin API change nothing; everything else is logged first.
                        let read_only =
                            req.method == "GET" && req.path.starts_with(api::ADMIN_PREFIX);
                        let durable = match &shared.wal {
                            Some(j) if !read_only && tenant.is_default() => {
                                Some(j.append(&wal::Input::api(now, &req), &mut engine))
                            }
                            _ => None,
                        };
                        break (resp, engine.take_effects(), durable);
                    }
                }
                if let Err(refusal) = delivery::wait_for_room(&tenant, &mut waiting_since).await {
                    return to_hyper(refusal);
                }
            };
            if let Some(done) = durable {
                let _ = done.await;
            }
            run_effects(shared, &tenant, effects);
            resp
        }
    };
    shared.touched(&tenant);
    to_hyper(response)
}

fn admin_error(shared: &Shared, e: ApiError) -> Response {
    let mut engine = shared.lock();
    Response::error(&mut engine, &e)
}

fn admin_authorised(shared: &Shared, req: &Request) -> Result<(), Response> {
    if api::admin_token_ok(&shared.ctx, req, false) {
        Ok(())
    } else {
        Err(admin_error(shared, api::admin_token_error()))
    }
}

/// `PUT /__emulator/webhook {"url","verify_token"?}`: handshake first, then store.
async fn set_webhook(shared: &Arc<Shared>, tenant: &Tenant, req: &Request) -> Response {
    if let Err(r) = admin_authorised(shared, req) {
        return r;
    }
    let body = match crate::wire::json::parse_object(&req.body) {
        Ok(b) => b,
        Err(e) => return admin_error(shared, e),
    };
    let o = crate::wire::json::Obj::new("", &body);
    let parsed = (|| {
        Ok::<_, ApiError>((
            o.str_opt("url")?.map(str::to_owned),
            o.str_opt("verify_token")?.map(str::to_owned),
            o.str_opt("app_id")?.map(str::to_owned),
        ))
    })();
    let (url, token, app) = match parsed {
        Ok(v) => v,
        Err(e) => return admin_error(shared, e),
    };
    let Some(url) = url else {
        shared.set_webhook_url(tenant, app, None, None).await;
        return Response::ok(&serde_json::json!({ "url": null }));
    };
    if let Err(e) = config::check_url(&url) {
        return admin_error(shared, ApiError::new(ErrorKind::InvalidValue, e));
    }
    let token = token.unwrap_or_else(|| {
        tenant
            .lock()
            .st
            .tenants
            .apps
            .first()
            .map(|a| a.verify_token.clone())
            .unwrap_or_default()
    });
    match delivery::handshake(shared, &url, &token).await {
        Ok(()) => {
            shared
                .set_webhook_url(tenant, app, Some(url.clone()), Some(token))
                .await;
            Response::ok(&serde_json::json!({ "url": url, "verified": true }))
        }
        Err(why) => admin_error(
            shared,
            ApiError::new(
                ErrorKind::InvalidValue,
                format!("The callback URL was not set: the verification handshake failed: {why}"),
            ),
        ),
    }
}

/// Virtual clock: steps through every due time up to the target, letting webhooks due
/// at each step go out (and their retries be scheduled) before moving on.
async fn advance_clock(shared: &Arc<Shared>, tenant: &Arc<Tenant>, req: &Request) -> Response {
    if let Err(r) = admin_authorised(shared, req) {
        return r;
    }
    let body = if req.body.iter().all(u8::is_ascii_whitespace) {
        Ok(serde_json::Map::new())
    } else {
        crate::wire::json::parse_object(&req.body)
    };
    let target = match body.and_then(|b| api::advance_target_of(&tenant.lock(), &b)) {
        Ok(t) => t,
        Err(e) => return admin_error(shared, e),
    };
    loop {
        delivery::settle(shared, tenant).await;
        let (more, effects, durable) = {
            let mut engine = tenant.lock();
            let more = engine.advance_step(target);
            let durable = shared.log_input(tenant, &mut engine, || wal::Input::Step { target });
            (more, engine.take_effects(), durable)
        };
        if let Some(d) = durable {
            let _ = d.await;
        }
        run_effects(shared, tenant, effects);
        shared.touched(tenant);
        if !more {
            break;
        }
    }
    delivery::settle(shared, tenant).await;
    let engine = tenant.lock();
    Response::ok(&api::clock_json_of(&engine))
}

fn run_effects(shared: &Arc<Shared>, tenant: &Arc<Tenant>, effects: Vec<crate::engine::Effect>) {
    for effect in effects {
        use crate::engine::Effect;
        match effect {
            Effect::MediaStart { .. }
            | Effect::MediaStartRtp { .. }
            | Effect::MediaTalk { .. }
            | Effect::MediaStop { .. } => shared.media.run(tenant, effect),
            _ => shared.sip.run(tenant, effect),
        }
    }
}

/// Runs `serve` until Ctrl-C or SIGTERM: prints the listening line and what a user needs
/// to paste into their integration.
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the banner and start-up errors are for the terminal"
)]
pub async fn run(opts: ServeOptions) -> i32 {
    if !opts.addr.ip().is_loopback() {
        if opts.admin_token.is_none() {
            eprintln!("error: binding {} exposes the admin API beyond this machine; set --admin-token to allow it", opts.addr);
            return 2;
        }
        tracing::warn!(addr = %opts.addr, "listening beyond loopback: anyone who can reach this address can use the Graph API with the tenant's token");
    }
    let clock = opts.clock;
    let seed = opts.seed;
    let running = match spawn(opts).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    {
        let engine = running.shared.lock();
        let t = &engine.st.tenants;
        println!("wa-emulator listening on {}", running.url());
        if let (Some(app), Some(waba), Some(phone)) =
            (t.apps.first(), t.wabas.first(), t.phone_numbers.first())
        {
            println!(
                "  phone number id   {}  (display {})  {}",
                phone.id,
                phone.display_phone_number,
                number_hint(phone)
            );
            for other in t.phone_numbers.iter().skip(1) {
                println!(
                    "                    {}  (display {})  {}",
                    other.id,
                    other.display_phone_number,
                    number_hint(other)
                );
            }
            println!("  WABA id           {}", waba.id);
            println!(
                "  access token      {}",
                app.access_tokens.first().map(String::as_str).unwrap_or("")
            );
            println!("  app secret        {}", app.secret);
            println!("  verify token      {}", app.verify_token);
            println!(
                "  webhook url       {}",
                app.webhook_url
                    .as_deref()
                    .unwrap_or("(none: PUT /__emulator/webhook, or --webhook-url)")
            );
            let trust = &running.shared.opts.webhook_trust;
            if trust.insecure {
                println!("  webhook tls       https:// receivers: ANY certificate accepted (--webhook-insecure: not checked)");
            } else {
                println!(
                    "  webhook tls       https:// receivers checked against {}",
                    trust.summary()
                );
            }
            println!(
                "  clock             {}  seed {seed}",
                if clock == ClockMode::Virtual {
                    "virtual"
                } else {
                    "real"
                }
            );
            println!(
                "  tenants           POST /__emulator/tenants: one per parallel test (at most {})",
                running.shared.opts.max_tenants
            );
            let sip_trust = &running.shared.opts.sip_trust;
            if sip_trust.ca_file.is_some() {
                println!(
                    "  sip tls           TLS SIP servers checked against {}",
                    sip_trust.summary()
                );
            }
            if let Some(sip) = &running.shared.ctx.sip {
                println!(
                    "  sip gateway       udp/tcp {}  tls {}  (business-initiated calls: INVITE sip:+<user>@this; CA at /__emulator/sip/ca.pem)",
                    sip.udp,
                    sip.tls.as_deref().unwrap_or("-")
                );
            }
            println!("  try: curl -s {}/__emulator/config", running.url());
        }
    }
    wait_for_signal().await;
    eprintln!("wa-emulator: shutting down");
    running.shutdown().await;
    0
}

/// One line on what a number is for: +1 numbers cannot call users (138013).
fn number_hint(p: &crate::domain::tenant::PhoneNumber) -> &'static str {
    if p.business_initiated_calling() {
        "user- and business-initiated calls"
    } else {
        "user-initiated calls only (no business-initiated calling in its country)"
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
