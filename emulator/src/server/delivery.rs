//! Webhook delivery: the worker that sends what every tenant's outbox says is due,
//! records every attempt truthfully in that tenant's engine, and the GET verification
//! handshake.
//!
//! Its hyper client is not the shared [`super::client::Client`] on purpose: the pool is
//! tuned for throughput (an idle connection per delivery in flight, a connect timeout),
//! each attempt has the options' timeout, and a receiver's status counts even when its
//! body is cut short. Errors are worded by the same [`error_chain`], led by the TLS
//! reason ([`tls::describe`]) when an https receiver's handshake failed.
//!
//! https receivers: the connector speaks TLS for `https://` URLs with the trust of
//! `--webhook-ca` / `--webhook-insecure`, and passes `http://` straight to the same
//! tuned TCP connector as before.

use super::client::error_chain;
use super::tenants::Tenant;
use super::tls::{self, Trust};
use super::Shared;
use crate::webhook::outbox::{Job, Outcome};
use crate::wire::url::percent_encode;
use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::watch;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Deliveries in flight at once.
const MAX_IN_FLIGHT: usize = 256;
/// The receiver's answer is kept in the log up to this many bytes.
const RESPONSE_KEEP: usize = 2048;

/// The delivery client: http:// and https:// receivers, the latter checked with `trust`.
pub fn client(trust: &Trust) -> Result<HttpClient, String> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    // The TLS layer wraps it and hands it https:// URIs too.
    connector.enforce_http(false);
    let tls = trust
        .client_config("webhook receivers")
        .map_err(|e| format!("--webhook-ca: {e}"))?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(std::sync::Arc::unwrap_or_clone(tls))
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Ok(Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .build(connector))
}

/// Why no answer came, TLS's reason first (the inspector shows the start of it).
fn failure(e: &hyper_util::client::legacy::Error) -> String {
    match tls::describe(e) {
        Some(reason) => format!("TLS: {reason} [{}]", error_chain(e)),
        None => error_chain(e),
    }
}

/// Sends every tenant's due webhooks. It looks only at the tenants something happened to
/// since its last round ([`Shared::touched`]) and at those whose real clock has a retry
/// or a timer due (its timetable), so idle tenants cost nothing however many there are.
///
/// The deliveries in flight are futures this task drives itself, not a task spawned for
/// each: a spawn (and the wake-up of an idle runtime thread that came with it) cost more
/// than the rest of the worker's round. Their outcomes come back here and are recorded
/// together, one lock of the tenant for all of them, and their tenants are looked at in
/// the same round instead of being touched one outcome at a time.
pub async fn worker(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut flying = FuturesUnordered::new();
    let mut finished: Vec<(Arc<Tenant>, Job, Outcome)> = Vec::new();
    // When real-clock tenants next need a look, earliest first; the counter keeps
    // entries of the same millisecond apart. Entries of deleted tenants just lapse.
    let mut timetable: BTreeMap<(u64, u64), Weak<Tenant>> = BTreeMap::new();
    let mut entries = 0u64;
    // Reused from round to round: a round per finished delivery must not allocate.
    let mut jobs = Vec::new();
    let mut due = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // The last callback URL's parsed form: every delivery to it clones it.
    let mut target: Option<Target> = None;
    loop {
        if flying.len() >= MAX_IN_FLIGHT {
            // Every slot is busy, so nothing can go out before one frees. Looking
            // meanwhile made the worker spin, each round putting the tenant back and
            // waking itself, taking the core from the deliveries and the sends for as
            // long as a backlog kept every slot busy. Due timers of real clocks still
            // fire on time.
            tokio::select! {
                Some(done) = flying.next() => finished.push(done),
                _ = tokio::time::sleep(next_look(&timetable)) => {}
                _ = stop.changed() => return,
            }
        }
        // Every outcome that is in already, then all of them recorded at once.
        std::future::poll_fn(|cx| {
            while let std::task::Poll::Ready(Some(done)) = flying.poll_next_unpin(cx) {
                finished.push(done);
            }
            std::task::Poll::Ready(())
        })
        .await;
        let mut visit = shared.take_touched();
        record_finished(&shared, &mut finished, &mut visit);
        let real_now = super::real_now_ms();
        while let Some(entry) = timetable.first_entry() {
            if entry.key().0 > real_now {
                break;
            }
            let (due_at, _) = *entry.key();
            // Only the tenant's latest due time counts; older entries are stale.
            if let Some(t) = entry.remove().upgrade() {
                if t.next_due_ms.load(Ordering::Acquire) == due_at {
                    visit.push(t);
                }
            }
        }
        let mut free = MAX_IN_FLIGHT.saturating_sub(flying.len());
        seen.clear();
        for tenant in visit {
            if tenant.is_deleted() || !seen.insert(Arc::as_ptr(&tenant) as usize) {
                continue;
            }
            // Locking a real-clock engine also fires its due timers.
            let mut engine = tenant.lock();
            let now = engine.now();
            if free > 0 {
                let st = &mut engine.st;
                let tenants_cfg = &st.tenants;
                st.outbox
                    .take_due_into(now, |app| tenants_cfg.webhook_url(app), free, &mut due);
                free -= due.len();
                jobs.extend(due.drain(..).map(|j| (tenant.clone(), j)));
            }
            let due_at = match engine.clock {
                crate::engine::ClockMode::Real => engine.next_deadline().unwrap_or(u64::MAX),
                crate::engine::ClockMode::Virtual => u64::MAX,
            };
            drop(engine);
            // Deliveries it took may have been held ones (no URL): room for waiting sends.
            tenant.room.notify_waiters();
            if free == 0 {
                // More may be due than there were free slots: look again once one frees.
                shared.touched(&tenant);
            }
            if tenant.next_due_ms.swap(due_at, Ordering::AcqRel) != due_at && due_at != u64::MAX {
                entries += 1;
                timetable.insert((due_at, entries), Arc::downgrade(&tenant));
            }
        }
        for (tenant, mut job) in jobs.drain(..) {
            if target.as_ref().is_none_or(|t| t.url != job.url) {
                target = Target::of(&job.url);
            }
            let to = target.as_ref().map(|t| (t.uri.clone(), t.host.clone()));
            // The job's copy of the signature becomes the header as it is (no second
            // copy); nothing after the request reads it.
            let signature = std::mem::take(&mut job.signature);
            let shared = shared.clone();
            flying.push(async move {
                let outcome = send(&shared, &job, signature, to).await;
                (tenant, job, outcome)
            });
        }
        // Until a delivery finishes, something is touched, the next retry or timer of a
        // real clock is due, or the server stops.
        tokio::select! {
            Some(done) = flying.next(), if !flying.is_empty() => finished.push(done),
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(next_look(&timetable)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Records the outcomes in `finished` (emptied), the tenant locked once for each run of
/// outcomes of the same tenant, and puts their tenants in `visit`: the next delivery of
/// the same call or message may be due now.
fn record_finished(
    shared: &Shared,
    finished: &mut Vec<(Arc<Tenant>, Job, Outcome)>,
    visit: &mut Vec<Arc<Tenant>>,
) {
    let mut outcomes = finished.drain(..).peekable();
    while let Some((tenant, job, outcome)) = outcomes.next() {
        // A tenant deleted meanwhile keeps no record.
        if tenant.is_deleted() {
            continue;
        }
        let mut freed = 0;
        let mut engine = tenant.lock();
        freed += record_attempt(shared, &tenant, &mut engine, job, outcome);
        while let Some((_, job, outcome)) = outcomes.next_if(|(t, ..)| Arc::ptr_eq(t, &tenant)) {
            freed += record_attempt(shared, &tenant, &mut engine, job, outcome);
        }
        drop(engine);
        // One finished delivery is room for one waiting send (see `admit`).
        for _ in 0..freed {
            tenant.room.notify_one();
        }
        visit.push(tenant);
    }
}

/// A callback URL parsed once, and the Host header hyper's client would print from it
/// for every request: a delivery clones both (reference counts) instead of copying and
/// parsing the URL and formatting the host again.
struct Target {
    url: String,
    uri: hyper::Uri,
    host: hyper::header::HeaderValue,
}

impl Target {
    /// None for a URL hyper's client would refuse: [`send`] then reports it as before.
    fn of(url: &str) -> Option<Self> {
        let uri: hyper::Uri = url.parse().ok()?;
        let host = uri.host()?;
        // As hyper_util's client writes it: the port only when it is not the scheme's.
        let secure = matches!(uri.scheme_str(), Some("https" | "wss"));
        let host = match uri.port_u16() {
            Some(443) if secure => hyper::header::HeaderValue::from_str(host),
            Some(80) if !secure => hyper::header::HeaderValue::from_str(host),
            Some(port) => hyper::header::HeaderValue::from_str(&format!("{host}:{port}")),
            None => hyper::header::HeaderValue::from_str(host),
        }
        .ok()?;
        Some(Self {
            url: url.to_owned(),
            uri,
            host,
        })
    }
}

/// How long the worker may sleep: until the next retry or timer of a real clock.
fn next_look(timetable: &BTreeMap<(u64, u64), Weak<Tenant>>) -> Duration {
    match timetable.first_key_value() {
        Some(((t, _), _)) => {
            Duration::from_millis(t.saturating_sub(super::real_now_ms()).clamp(1, 60_000))
        }
        None => Duration::from_secs(60),
    }
}

/// Whether a Graph request that may queue webhooks is accepted now: below the tenant's
/// `webhook_pending_limit` (0: no bound). A virtual clock is never held back: its retries
/// wait for the clock, which only requests move.
pub(crate) fn admits(engine: &crate::engine::Engine) -> bool {
    let limit = engine.behaviour.webhook_pending_limit;
    limit == 0
        || engine.clock == crate::engine::ClockMode::Virtual
        || engine.st.outbox.admits(limit)
}

/// Refusals logged at most once a second (the second of the last line).
static REFUSAL_LOGGED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Waits (the connection held) until a delivery of the tenant finishes or a moment
/// passes, for a request [`admits`] turned away; the caller looks again. Once the
/// request has waited `webhook_pending_wait_secs` in all, it is refused, before anything
/// of it was accepted, with Graph's transient 503 code 2, counted in the outbox.
#[allow(
    clippy::disallowed_methods,
    reason = "real time: how long a request waits"
)]
pub(crate) async fn wait_for_room(
    tenant: &Tenant,
    since: &mut Option<tokio::time::Instant>,
) -> Result<(), crate::api::Response> {
    let now = tokio::time::Instant::now();
    let started = *since.get_or_insert(now);
    let patience = Duration::from_secs(tenant.lock().behaviour.webhook_pending_wait_secs);
    let left = patience.saturating_sub(now - started);
    if left.is_zero() {
        return Err(refuse(tenant, patience));
    }
    // A finished delivery wakes one waiter. Room can also come another way (held
    // deliveries sorted out, the bound raised), so look again at least every 100 ms.
    let _ =
        tokio::time::timeout(left.min(Duration::from_millis(100)), tenant.room.notified()).await;
    Ok(())
}

fn refuse(tenant: &Tenant, waited: Duration) -> crate::api::Response {
    use crate::domain::error::{ApiError, ErrorKind};
    let mut engine = tenant.lock();
    let pending = engine.st.outbox.bounded_len();
    let limit = engine.behaviour.webhook_pending_limit;
    engine.st.outbox.refused += 1;
    let refused = engine.st.outbox.refused;
    let e = ApiError::new(
        ErrorKind::ServiceUnavailable,
        format!(
            "{pending} webhook deliveries are pending (webhook_pending_limit {limit}) and none \
             made room within {} s: the callback URL is down or slower than the requests. \
             Nothing of this request was accepted; retry it later.",
            waited.as_secs()
        ),
    );
    let response = crate::api::Response::error(&mut engine, &e);
    drop(engine);
    let second = super::real_now_ms() / 1000;
    if REFUSAL_LOGGED.swap(second, Ordering::Relaxed) != second {
        tracing::warn!(
            tenant = %tenant.id,
            pending,
            limit,
            refused,
            "refused a Graph request (503, code 2): webhook deliveries stayed at the pending limit"
        );
    }
    response
}

/// An attempt's outcome into the tenant's outbox (logged first for the default tenant),
/// and, with `--record`, the default tenant's delivered body as a fixture file. 1 when
/// it left the pending deliveries (room for a waiting send), else 0.
fn record_attempt(
    shared: &Shared,
    tenant: &Tenant,
    engine: &mut crate::engine::Engine,
    job: Job,
    outcome: Outcome,
) -> usize {
    let delivered =
        matches!(outcome, Outcome::Status { status, .. } if (200..300).contains(&status));
    let now = engine.now();
    let _ = shared.log_input(tenant, engine, || {
        super::wal::Input::record(now, job.seq, &job.url, &outcome)
    });
    let before = engine.st.outbox.pending_len();
    engine.st.outbox.record(job.seq, job.url, outcome, now);
    let freed = engine.st.outbox.pending_len() < before;
    if delivered && tenant.is_default() {
        if let Some(dir) = &shared.opts.record {
            if let Some(d) = engine.st.outbox.get(job.seq) {
                record(dir, &d.field, &d.event, d.seq, &d.body);
            }
        }
    }
    usize::from(freed)
}

async fn send(
    shared: &Shared,
    job: &Job,
    signature: String,
    to: Option<(hyper::Uri, hyper::header::HeaderValue)>,
) -> Outcome {
    use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
    // Names and fixed values as constants: nothing of them is parsed per delivery. The
    // same headers in the same order as ever (Host last, where the client added it),
    // written straight into the request: http's builder moved the whole request through
    // a Result for each header, more work than the rest of building it.
    let (uri, host) = match to {
        Some((uri, host)) => (uri, Some(host)),
        None => match hyper::Uri::try_from(job.url.as_str()) {
            Ok(uri) => (uri, None),
            Err(e) => return Outcome::Error(format!("invalid webhook URL {}: {e}", job.url)),
        },
    };
    let mut req = hyper::Request::new(Full::new(job.body.clone()));
    *req.method_mut() = hyper::Method::POST;
    *req.uri_mut() = uri;
    let headers = req.headers_mut();
    headers.reserve(5);
    headers.append(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.append(CONTENT_LENGTH, HeaderValue::from(job.body.len()));
    let signature = match HeaderValue::try_from(signature) {
        Ok(v) => v,
        Err(e) => return Outcome::Error(format!("invalid webhook URL {}: {e}", job.url)),
    };
    headers.append(HeaderName::from_static("x-hub-signature-256"), signature);
    headers.append(USER_AGENT, HeaderValue::from_static("facebookexternalua"));
    if let Some(host) = host {
        headers.append(HOST, host);
    }
    let timeout = Duration::from_millis(shared.opts.webhook_timeout_ms);
    let attempt = async {
        let resp = shared.http.request(req).await.map_err(|e| failure(&e))?;
        let status = resp.status().as_u16();
        // The status decides the outcome; a body cut short is noted, not fatal.
        let text = match resp.into_body().collect().await {
            Ok(c) => {
                let body = c.to_bytes();
                String::from_utf8_lossy(&body[..body.len().min(RESPONSE_KEEP)]).into_owned()
            }
            Err(e) => format!("(the response body was cut short: {e})"),
        };
        Ok::<_, String>(Outcome::Status { status, body: text })
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => Outcome::Error(e),
        Err(_) => Outcome::Error(format!("timed out after {} ms", timeout.as_millis())),
    }
}

fn record(dir: &std::path::Path, field: &str, event: &str, seq: u64, body: &str) {
    let folder = dir.join(field);
    let pretty = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| body.to_owned());
    let result = std::fs::create_dir_all(&folder)
        .and_then(|_| std::fs::write(folder.join(format!("{event}_{seq}.json")), pretty + "\n"));
    if let Err(e) = result {
        tracing::error!(dir = %dir.display(), "could not record webhook: {e}");
    }
}

/// GET `url?hub.mode=subscribe&hub.challenge=N&hub.verify_token=T`; the receiver must
/// answer 200 with the challenge as the body.
pub async fn handshake(shared: &Shared, url: &str, verify_token: &str) -> Result<(), String> {
    let challenge = (shared
        .lock()
        .fbtrace_id()
        .bytes()
        .map(u64::from)
        .sum::<u64>()
        * 7919
        % 9_000_000_000)
        + 1_000_000_000;
    let sep = if url.contains('?') { '&' } else { '?' };
    let full = format!(
        "{url}{sep}hub.mode=subscribe&hub.challenge={challenge}&hub.verify_token={}",
        percent_encode(verify_token)
    );
    let req = hyper::Request::get(&full)
        .header("user-agent", "facebookexternalua")
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("invalid URL {url}: {e}"))?;
    let resp = tokio::time::timeout(Duration::from_secs(10), shared.http.request(req))
        .await
        .map_err(|_| format!("{url} did not answer within 10 s"))?
        .map_err(|e| format!("could not reach {url}: {}", failure(&e)))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body[..body.len().min(RESPONSE_KEEP)]).into_owned();
    if status != 200 {
        return Err(format!(
            "the receiver answered {status} (expected 200 with the hub.challenge); body: {text:?}"
        ));
    }
    if text.trim() != challenge.to_string() {
        return Err(format!("the receiver answered 200 but echoed {text:?} instead of the hub.challenge {challenge}"));
    }
    Ok(())
}

/// Waits (bounded) until nothing of the tenant's is in flight and nothing sendable is
/// due, so a virtual clock step sees the outcome of the deliveries due before it.
#[allow(clippy::disallowed_methods, reason = "real sockets, real time")]
pub async fn settle(shared: &Arc<Shared>, tenant: &Arc<Tenant>) {
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(shared.opts.webhook_timeout_ms + 5_000);
    loop {
        let busy = {
            let engine = tenant.lock();
            let st = &engine.st;
            st.outbox.in_flight() > 0
                || st
                    .outbox
                    .has_sendable(st.now_ms, |app| st.tenants.webhook_url(app))
        };
        if !busy || tokio::time::Instant::now() > deadline {
            return;
        }
        shared.touched(tenant);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn the_host_header_is_the_one_hyper_would_print() {
        // A receiver sees the port only when it is not the scheme's own.
        for (url, want) in [
            ("http://127.0.0.1:8080/hook", "127.0.0.1:8080"),
            ("http://receiver.test:80/hook", "receiver.test"),
            ("http://receiver.test/hook", "receiver.test"),
            ("https://receiver.test:443/", "receiver.test"),
            ("https://receiver.test:80/", "receiver.test:80"),
            ("http://receiver.test:443/", "receiver.test:443"),
            ("http://[::1]:9000/h", "[::1]:9000"),
        ] {
            let host = Target::of(url).map(|t| t.host.to_str().unwrap().to_owned());
            assert_eq!(host.as_deref(), Some(want), "{url}");
        }
        // Left to the old path, which reports them as invalid URLs.
        assert!(Target::of("/hook").is_none());
        assert!(Target::of("http://bad host/").is_none());
    }
}
