//! The inspector: a page at `/__emulator/ui` whose assets are compiled into the binary
//! (no CDN, works offline), a permissions view the admin API does not have, and a
//! server-sent event stream at `/__emulator/events` that says when the state changed so
//! the page refetches the admin JSON.
//!
//! Change detection polls a cheap fingerprint of the state every 200 ms instead of
//! hooking every writer: state also changes from the delivery worker, SIP and timers
//! firing on the real clock, and a poll sees all of them without touching that code.

use super::tenants::Tenant;
use super::{Body, Shared};
use crate::api::{Request, Response};
use crate::domain::error::{ApiError, ErrorKind};
use crate::domain::ids::{PhoneNumberId, WaId};
use crate::domain::permission::{Grant, Permission, DAY_MS, WEEK_MS};
use crate::engine::{ClockMode, Engine};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use serde_json::{json, Value};
use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

const INDEX_HTML: &str = include_str!("../../ui/index.html");
const APP_JS: &str = include_str!("../../ui/app.js");
const STYLE_CSS: &str = include_str!("../../ui/style.css");
/// A green call bubble, so the tab is recognisable and the browser's favicon request does
/// not land on the Graph API (which answers it with a token error).
const FAVICON_SVG: &str = "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'>\
<circle cx='8' cy='8' r='7.5' fill='#128c7e'/><path d='M5.2 4.2l1.4-.4.9 2-.9.8a5.5 5.5 0 0 0 2.8 2.8\
l.8-.9 2 .9-.4 1.4c-.2.6-.8.9-1.4.8A7.5 7.5 0 0 1 4.4 5.6c-.1-.6.2-1.2.8-1.4z' fill='#fff'/></svg>";

const PAGE: &str = "/__emulator/ui";
const EVENTS: &str = "/__emulator/events";
const POLL: Duration = Duration::from_millis(200);
/// A comment line this often keeps proxies from closing an idle stream and lets the
/// browser notice a dead connection.
const KEEPALIVE_POLLS: u32 = 75;

/// Whether `serve` answers this path (GET only; other methods fall through to the admin
/// API, which answers "not an admin route").
pub(super) fn owns(path: &str) -> bool {
    path == EVENTS
        || path == PAGE
        || path
            .strip_prefix(PAGE)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Serves the inspector of one tenant: the default one at `/__emulator/ui`, a created
/// one at `/__emulator/tenants/{id}/ui` (the page finds its admin routes from its URL).
pub(super) fn serve(
    shared: &Arc<Shared>,
    tenant: &Arc<Tenant>,
    req: &Request,
) -> hyper::Response<Body> {
    let rest = req.path.strip_prefix(PAGE).unwrap_or("");
    // The assets are the repository's own source and carry no state, so they need no
    // token; a page opened with `?token=` could not send one for them anyway.
    match rest {
        "/app.js" => return asset("text/javascript; charset=utf-8", APP_JS),
        "/style.css" => return asset("text/css; charset=utf-8", STYLE_CSS),
        "/favicon.svg" => return asset("image/svg+xml", FAVICON_SVG),
        _ => {}
    }
    let page = req.path == PAGE || rest == "/" || rest == "/index.html";
    if !authorised(shared, req) {
        return if page {
            token_form()
        } else {
            let mut engine = shared.lock();
            let e = ApiError::new(
                ErrorKind::InvalidToken,
                "The admin API needs Authorization: Bearer <admin token> (or ?token= for the inspector).",
            );
            super::to_hyper(Response::error(&mut engine, &e))
        };
    }
    if req.path == EVENTS {
        return events(tenant);
    }
    if page {
        return asset("text/html; charset=utf-8", INDEX_HTML);
    }
    if rest == "/permissions" {
        let engine = tenant.lock();
        return super::to_hyper(Response::ok(&permissions_json(&engine)));
    }
    let mut engine = shared.lock();
    let e = ApiError::new(
        ErrorKind::NotFound,
        format!(
            "GET {} is not part of the inspector; open {PAGE}.",
            req.path
        ),
    );
    super::to_hyper(Response::error(&mut engine, &e))
}

/// The admin token from `Authorization: Bearer` or, since a browser cannot put headers on
/// a page load or an `EventSource`, from `?token=`.
fn authorised(shared: &Shared, req: &Request) -> bool {
    crate::api::admin_token_ok(&shared.ctx, req, true)
}

fn asset(content_type: &'static str, text: &'static str) -> hyper::Response<Body> {
    hyper::Response::builder()
        .status(200)
        .header("content-type", content_type)
        // A rebuilt emulator must not run yesterday's script.
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from_static(text.as_bytes())).boxed())
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new()).boxed()))
}

fn token_form() -> hyper::Response<Body> {
    const FORM: &str = "<!doctype html><meta charset=utf-8><title>wa-emulator inspector</title>\
<body style=\"font:15px system-ui,sans-serif;margin:3em\"><h1>wa-emulator inspector</h1>\
<p>This emulator was started with <code>--admin-token</code>. Enter it to open the inspector.</p>\
<form method=get action=\"/__emulator/ui\"><input name=token type=password autofocus \
aria-label=\"admin token\"> <button>Open</button></form>";
    hyper::Response::builder()
        .status(401)
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from_static(FORM.as_bytes())).boxed())
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new()).boxed()))
}

/// `GET /__emulator/ui/permissions`: the permission state of every (number, user) pair,
/// read without touching the Graph endpoint's rate counter or the request history.
fn permissions_json(engine: &Engine) -> Value {
    let st = &engine.st;
    let now = engine.now();
    let mut pairs: BTreeSet<(String, String)> = BTreeSet::new();
    for p in &st.tenants.phone_numbers {
        for wa in st.recipients.user_ids() {
            pairs.insert((p.id.as_str().to_owned(), wa.0.clone()));
        }
    }
    for key in st.permissions.keys() {
        if let Some((p, w)) = key.split_once('/') {
            pairs.insert((p.to_owned(), w.to_owned()));
        }
    }
    let none = Permission::default();
    let list: Vec<Value> = pairs
        .iter()
        .map(|(phone, wa)| {
            let key = format!("{phone}/{wa}");
            let perm = st.permissions.get(&key).unwrap_or(&none);
            let (status, expires_at) = match perm.grant {
                Grant::Temporary { expires_at_ms } if now < expires_at_ms => {
                    ("temporary", Some(expires_at_ms / 1000))
                }
                Grant::Temporary { .. } => ("expired", None),
                Grant::Permanent => ("permanent", None),
                Grant::None => ("no_permission", None),
            };
            let user = st.recipients.user(&WaId(wa.clone()));
            let receives_calls = user.map(|u| {
                u.capabilities(&engine.behaviour.versions)
                    .receives_business_calls()
            });
            let window_until = st
                .recipients
                .window(&PhoneNumberId(phone.clone()), &WaId(wa.clone()))
                .map(|t| t + DAY_MS)
                .filter(|until| *until > now);
            json!({
                "phone_number_id": phone,
                "wa_id": wa,
                "status": status,
                "expires_at": expires_at,
                "requests_24h": perm.requests_within(now, DAY_MS),
                "requests_7d": perm.requests_within(now, WEEK_MS),
                "connected_calls_24h": perm.connected_within_day(now),
                "consecutive_unanswered": perm.consecutive_unanswered,
                "receives_business_calls": receives_calls,
                "window_open": window_until.is_some(),
                "window_expires_at": window_until.map(|t| t / 1000),
            })
        })
        .collect();
    json!({ "permissions": list, "now": now / 1000 })
}

/// A digest of everything the page shows; the stream sends an event when it moves.
fn fingerprint(engine: &Engine) -> u64 {
    let st = &engine.st;
    let mut h = DefaultHasher::new();
    // The real clock moves every millisecond; the page runs that clock itself.
    if engine.clock == ClockMode::Virtual {
        st.now_ms.hash(&mut h);
    }
    // Counters, not contents: this runs every 200 ms per open page, under the lock.
    (
        engine.revision,
        st.outbox.last_seq(),
        st.outbox.attempts_total,
        st.outbox.pending_len(),
    )
        .hash(&mut h);
    (
        st.outbox.evicted,
        st.outbox.held_evicted,
        st.sip_log.len(),
        st.sip_log_evicted,
    )
        .hash(&mut h);
    // Whether a delivery is "held" depends on the callback URL.
    for a in &st.tenants.apps {
        a.webhook_url.hash(&mut h);
    }
    h.finish()
}

fn events(tenant: &Arc<Tenant>) -> hyper::Response<Body> {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let body = Changes {
        tenant: tenant.clone(),
        tick,
        last: None,
        seq: 0,
        idle: 0,
        greeted: false,
    };
    hyper::Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-store")
        .body(body.boxed())
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new()).boxed()))
}

/// The event stream's body: polls the fingerprint; ends when the client goes away, since
/// hyper then drops it, or when its tenant is deleted.
struct Changes {
    tenant: Arc<Tenant>,
    tick: tokio::time::Interval,
    last: Option<u64>,
    seq: u64,
    idle: u32,
    greeted: bool,
}

impl hyper::body::Body for Changes {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if !this.greeted {
            this.greeted = true;
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                b"retry: 1000\n\n",
            )))));
        }
        loop {
            if this.tick.poll_tick(cx).is_pending() {
                return Poll::Pending;
            }
            if this.tenant.is_deleted() {
                return Poll::Ready(None);
            }
            let (fp, now_ms) = {
                let engine = this.tenant.lock();
                (fingerprint(&engine), engine.now())
            };
            if this.last != Some(fp) {
                // The first event tells a (re)connected page to load everything.
                this.last = Some(fp);
                this.seq += 1;
                this.idle = 0;
                let line = format!(
                    "event: change\nid: {}\ndata: {}\n\n",
                    this.seq,
                    json!({ "seq": this.seq, "now_ms": now_ms })
                );
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(line)))));
            }
            this.idle += 1;
            if this.idle >= KEEPALIVE_POLLS {
                this.idle = 0;
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                    b": keepalive\n\n",
                )))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owns_only_the_inspector_paths() {
        for p in [
            "/__emulator/ui",
            "/__emulator/ui/",
            "/__emulator/ui/app.js",
            "/__emulator/ui/permissions",
            "/__emulator/events",
        ] {
            assert!(owns(p), "{p}");
        }
        for p in [
            "/__emulator/uix",
            "/__emulator/users",
            "/__emulator/events/x",
            "/ui",
        ] {
            assert!(!owns(p), "{p}");
        }
    }

    #[test]
    fn the_page_loads_its_assets_from_the_emulator_only() {
        for attr in ["src=\"", "href=\""] {
            for (i, _) in INDEX_HTML.match_indices(attr) {
                let target = &INDEX_HTML[i + attr.len()..];
                assert!(
                    target.starts_with("/__emulator/ui/"),
                    "{}",
                    &target[..40.min(target.len())]
                );
            }
        }
        assert!(INDEX_HTML.contains("src=\"/__emulator/ui/app.js\""));
        assert!(!STYLE_CSS.contains("@import") && !STYLE_CSS.contains("url("));
    }
}
