//! `/__emulator`: the admin and user-simulation API (PRODUCT §5, `ADMIN-API.md`).

use super::admin_types::{self, WebhookState};
use super::{views, Context, Request, Response};
use crate::domain::error::{ApiError, ApiResult, ErrorKind};
use crate::domain::ids::{CallId, MessageId, PhoneNumberId, TemplateId, WaId, WabaId};
use crate::domain::tenant::{NumberProfile, PhoneNumber};
use crate::domain::user::{check_username, is_bsuid, ClientVersion, IdentityChange, Platform};
use crate::engine::{ClockMode, Engine, NewPhoneNumber};
use crate::webhook::outbox::{Delivery, DeliveryState};
use crate::wire::json::{self, parse_object, Obj};
use serde_json::{json, Map, Value};
use std::fmt::Write as _;

/// Every admin route, as `(method, path under /__emulator)` with `{name}` for one path
/// segment: those `route` answers, those the server answers itself (`PUT /webhook`,
/// `POST /clock/advance` on a virtual clock, the inspector, the tenant routes) and
/// `GET /openapi.json`. Under a tenant's `/__emulator/tenants/{id}` every route but the
/// tenant routes answers too.
/// `route` answers nothing outside this table, and `tests/emulator/admin_openapi.rs`
/// checks that `emulator/openapi/admin.json` describes exactly these routes: a new route
/// goes here, in its handler and in the description.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/config"),
    ("PUT", "/webhook"),
    ("POST", "/reset"),
    ("GET", "/snapshot"),
    ("PUT", "/snapshot"),
    ("POST", "/phone_numbers"),
    ("GET", "/users"),
    ("POST", "/users"),
    ("POST", "/users/{wa_id}/messages"),
    ("POST", "/users/{wa_id}/read"),
    ("POST", "/users/{wa_id}/tap"),
    ("POST", "/users/{wa_id}/open-link"),
    ("POST", "/users/{wa_id}/call"),
    ("POST", "/users/{wa_id}/permission-reply"),
    ("POST", "/calls/{call_id}/hangup"),
    ("POST", "/calls/{call_id}/answer"),
    ("POST", "/calls/{call_id}/decline"),
    ("POST", "/calls/{call_id}/fail"),
    ("GET", "/calls/{call_id}/media"),
    ("POST", "/calls/{call_id}/dtmf"),
    ("POST", "/calls/{call_id}/play"),
    ("GET", "/clock"),
    ("POST", "/clock/advance"),
    ("GET", "/webhooks"),
    ("GET", "/requests"),
    ("GET", "/messages"),
    ("GET", "/calls"),
    ("GET", "/sip"),
    ("GET", "/sip/ca.pem"),
    ("GET", "/templates"),
    ("POST", "/templates/{template_id}/status"),
    ("GET", "/ui"),
    ("GET", "/ui/app.js"),
    ("GET", "/ui/style.css"),
    ("GET", "/ui/favicon.svg"),
    ("GET", "/ui/permissions"),
    ("GET", "/events"),
    ("GET", "/openapi.json"),
    ("POST", "/tenants"),
    ("GET", "/tenants"),
    ("GET", "/tenants/{tenant_id}"),
    ("DELETE", "/tenants/{tenant_id}"),
];

/// Whether [`ROUTES`] has a route for `method` and these path segments (after
/// `/__emulator`).
fn is_route(method: &str, segs: &[&str]) -> bool {
    ROUTES.iter().any(|(m, pattern)| {
        let pattern: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
        *m == method
            && pattern.len() == segs.len()
            && pattern
                .iter()
                .zip(segs)
                .all(|(p, s)| p.starts_with('{') || p == s)
    })
}

/// The OpenAPI 3.1 description of this API, served as it is in the repository.
const OPENAPI: &str = include_str!("../../openapi/admin.json");

pub fn handle(engine: &mut Engine, req: &Request, ctx: &Context) -> Response {
    if !super::admin_token_ok(ctx, req, false) {
        return Response::error(engine, &super::admin_token_error());
    }
    if req.method == "GET" && req.path.trim_end_matches('/') == "/__emulator/openapi.json" {
        return Response {
            status: 200,
            content_type: "application/json",
            headers: Vec::new(),
            body: OPENAPI.as_bytes().to_vec(),
        };
    }
    if req.method == "GET" && req.path.trim_end_matches('/') == "/__emulator/sip/ca.pem" {
        return sip_ca(engine, ctx);
    }
    if req.method == "GET" && req.path.trim_start_matches(super::ADMIN_PREFIX) == "/webhooks" {
        // The most read admin answer (every `expect` of a scenario polls it): written
        // straight to bytes, the same bytes as the `Value` path of `route`.
        return Response {
            status: 200,
            content_type: "application/json",
            headers: Vec::new(),
            body: webhook_log_bytes(engine, req),
        };
    }
    engine.begin();
    let result = route(engine, req, ctx);
    engine.finish(result.is_ok());
    match result {
        Ok(v) => Response::ok(&v),
        Err(e) => Response::error(engine, &e),
    }
}

/// `GET /__emulator/sip/ca.pem`: the certificate a business trusts for SIP over TLS to
/// the gateway, as a PEM file.
fn sip_ca(engine: &mut Engine, ctx: &Context) -> Response {
    match ctx.sip.as_ref().and_then(|s| s.ca_pem.as_ref()) {
        Some(pem) => Response {
            status: 200,
            content_type: "application/x-pem-file",
            headers: Vec::new(),
            body: pem.as_bytes().to_vec(),
        },
        None => Response::error(
            engine,
            &ApiError::new(
                ErrorKind::NotFound,
                "The SIP gateway does not run here, so it has no TLS certificate.",
            ),
        ),
    }
}

fn body(req: &Request) -> ApiResult<Map<String, Value>> {
    // No body, or a literal null, means "no options".
    if req.body.iter().all(u8::is_ascii_whitespace) || req.body.trim_ascii() == b"null" {
        return Ok(Map::new());
    }
    parse_object(&req.body)
}

fn not_found(req: &Request) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        format!(
            "{} {} is not an admin route; see ADMIN-API.md for the list.",
            req.method, req.path
        ),
    )
}

fn route(engine: &mut Engine, req: &Request, ctx: &Context) -> ApiResult<Value> {
    let rest = req.path.trim_start_matches(super::ADMIN_PREFIX);
    let segs: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(super::decode_component)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = req.method.as_str();
    if !is_route(m, &segs) {
        return Err(not_found(req));
    }
    match (m, segs.as_slice()) {
        ("GET", ["health"]) => Ok(json!({ "status": "ok" })),
        ("GET", ["config"]) => Ok(json!(config(engine, ctx))),
        ("POST", ["reset"]) => {
            engine.reset();
            Ok(json!({ "status": "ok" }))
        }
        ("GET", ["snapshot"]) => Ok(engine.snapshot()),
        ("PUT", ["snapshot"]) => {
            let v: Value = serde_json::from_slice(&req.body).map_err(|e| {
                ApiError::new(
                    ErrorKind::InvalidParameter,
                    format!("The snapshot is not valid JSON: {e}."),
                )
            })?;
            engine
                .restore(v)
                .map_err(|e| ApiError::new(ErrorKind::InvalidParameter, e))?;
            Ok(json!({ "status": "ok" }))
        }
        ("POST", ["phone_numbers"]) => {
            let b = body(req)?;
            let number = engine.add_phone_number(new_phone_number(&b)?)?;
            Ok(json!(business_number(&number)))
        }
        ("GET", ["clock"]) => Ok(clock_json(engine)),
        ("POST", ["clock", "advance"]) => {
            let target = advance_target(engine, &body(req)?)?;
            while engine.advance_step(target) {}
            Ok(clock_json(engine))
        }
        ("GET", ["users"]) => Ok(json!({ "users": engine.st.recipients.users() })),
        ("POST", ["users"]) => {
            let b = body(req)?;
            let o = Obj::new("", &b);
            let wa = WaId(json::phone_digits("wa_id", o.str_req("wa_id")?)?);
            let platform = match o.str_opt("platform")? {
                None => None,
                Some(p) => Some(Platform::parse(p).ok_or_else(|| {
                    json::invalid(
                        "platform",
                        &format!("must be one of {}", Platform::NAMES),
                        json::quote_bounded(p),
                    )
                })?),
            };
            let version = match o.str_opt("version")? {
                None => None,
                Some(v) => Some(ClientVersion::parse(v).ok_or_else(|| {
                    json::invalid(
                        "version",
                        "must be a client version such as 2.25.27",
                        json::quote_bounded(v),
                    )
                })?),
            };
            let name = o.text_opt("name", 256)?.map(str::to_owned);
            let window = o.bool_opt("window_open")?;
            let change = identity_change(&b)?;
            engine.check_identity(&wa, &change)?;
            let user = engine.upsert_user(wa.clone(), name, platform, version, window);
            Ok(json!(engine.apply_identity(&wa, change).unwrap_or(user)))
        }
        ("POST", ["users", wa, action]) => {
            let wa = WaId(json::phone_digits("wa_id", wa)?);
            let b = body(req)?;
            let o = Obj::new("", &b);
            let phone = o.str_opt("phone_number_id")?.map(PhoneNumberId::from);
            match *action {
                "messages" => engine.user_text(&wa, phone.as_ref(), o.str_req("text")?),
                "read" => engine.user_read(&wa, &MessageId::from(o.str_req("message_id")?)),
                "tap" => engine.user_tap(&wa, &MessageId::from(o.str_req("message_id")?)),
                "open-link" => engine.user_open_link(&wa, o.str_req("url")?),
                "call" => engine.user_call(&wa, phone.as_ref()),
                "permission-reply" => {
                    let response = o
                        .enum_opt("response", &["accept", "reject"], true)?
                        .ok_or_else(|| json::missing("response"))?;
                    let permanent = o.bool_opt("permanent")?.unwrap_or(false);
                    let mid = o.str_opt("message_id")?.map(MessageId::from);
                    engine.user_permission_reply(
                        &wa,
                        response,
                        permanent,
                        mid.as_ref(),
                        phone.as_ref(),
                    )
                }
                _ => Err(not_found(req)),
            }
        }
        ("POST", ["calls", id, action]) => {
            let call = CallId::from(*id);
            let b = body(req)?;
            let o = Obj::new("", &b);
            match *action {
                "hangup" => engine.user_hangup(&call),
                "answer" => engine.user_answer(&call, o.str_opt("sdp")?.map(str::to_owned)),
                "decline" => engine.user_decline(&call),
                "fail" => engine.user_fail(
                    &call,
                    o.int_opt("code", 0, 999_999)?.unwrap_or(138021) as u32,
                ),
                _ => Err(not_found(req)),
            }?;
            Ok(views::call_summary(engine, &call))
        }
        ("POST", ["templates", id, "status"]) => {
            let b = body(req)?;
            let o = Obj::new("", &b);
            let status = o
                .enum_opt(
                    "status",
                    &[
                        "APPROVED",
                        "REJECTED",
                        "PAUSED",
                        "DISABLED",
                        "FLAGGED",
                        "PENDING",
                        "REINSTATED",
                        "ARCHIVED",
                        "IN_APPEAL",
                        "LOCKED",
                        "LIMIT_EXCEEDED",
                    ],
                    true,
                )?
                .ok_or_else(|| json::missing("status"))?;
            let reason = o
                .str_opt("reason")?
                .unwrap_or(if status == "REJECTED" {
                    "INVALID_FORMAT"
                } else {
                    "NONE"
                })
                .to_owned();
            engine
                .set_template_status(&TemplateId::from(*id), status, Value::from(reason))
                .ok_or_else(|| ApiError::new(ErrorKind::NotFound, format!("No template {id}.")))
        }
        ("GET", ["webhooks"]) => Ok(json!(webhook_log(engine, req))),
        ("GET", ["requests"]) => Ok(json!(request_log(engine, req))),
        ("GET", ["messages"]) => Ok(messages_json(engine)),
        ("GET", ["calls"]) => Ok(views::calls_json(engine)),
        ("GET", ["sip"]) => {
            Ok(json!({ "messages": engine.st.sip_log, "evicted": engine.st.sip_log_evicted }))
        }
        ("GET", ["templates"]) => Ok(json!({ "templates": engine.st.templates })),
        _ => Err(not_found(req)),
    }
}

/// The body of `POST /__emulator/phone_numbers`.
fn new_phone_number(b: &Map<String, Value>) -> ApiResult<NewPhoneNumber> {
    let o = Obj::new("", b);
    let display = json::phone_digits("display_phone_number", o.str_req("display_phone_number")?)?;
    let id = match o.str_opt("id")? {
        Some(id) if id.is_empty() || !id.bytes().all(|c| c.is_ascii_digit()) => {
            return Err(json::invalid(
                "id",
                "must be digits",
                json::quote_bounded(id),
            ))
        }
        id => id.map(PhoneNumberId::from),
    };
    let profile = match o.enum_opt("profile", &["production", "test"], false)? {
        Some("test") => NumberProfile::Test,
        _ => NumberProfile::Production,
    };
    Ok(NewPhoneNumber {
        display_phone_number: display,
        id,
        waba_id: o.str_opt("waba_id")?.map(WabaId::from),
        business_initiated_calling: o.bool_opt("business_initiated_calling")?,
        profile,
    })
}

/// A number as `GET /__emulator/config` lists it, with what it can do.
fn business_number(p: &PhoneNumber) -> admin_types::BusinessNumber {
    admin_types::BusinessNumber {
        id: p.id.clone(),
        display_phone_number: p.display_phone_number.clone(),
        waba_id: p.waba_id.clone(),
        business_initiated_calling: p.business_initiated_calling(),
        profile: p.profile,
    }
}

/// `username`, `parent_user_id` (each a string, or `null` to clear: read from the raw
/// body, since [`Obj`] takes `null` for absent) and `hide_phone_number` of
/// `POST /__emulator/users`.
fn identity_change(b: &Map<String, Value>) -> ApiResult<IdentityChange> {
    let o = Obj::new("", b);
    let nullable = |key: &str| -> ApiResult<Option<Option<&str>>> {
        match b.get(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => Ok(Some(Some(s.as_str()))),
            Some(v) => Err(json::wrong_type(key, "a string or null", v)),
        }
    };
    let username = nullable("username")?;
    if let Some(Some(u)) = username {
        check_username(u).map_err(|why| json::invalid("username", &why, json::quote_bounded(u)))?;
    }
    let parent = nullable("parent_user_id")?;
    if let Some(Some(p)) = parent {
        if !is_bsuid(p) {
            return Err(json::invalid(
                "parent_user_id",
                "must be a parent BSUID such as US.ENT.11815799212886844830",
                json::quote_bounded(p),
            ));
        }
    }
    Ok(IdentityChange {
        username: username.map(|u| u.map(str::to_owned)),
        parent_user_id: parent.map(|p| p.map(str::to_owned)),
        hide_phone_number: o.bool_opt("hide_phone_number")?,
    })
}

pub fn advance_target(engine: &Engine, b: &Map<String, Value>) -> ApiResult<u64> {
    if engine.clock != ClockMode::Virtual {
        return Err(ApiError::new(
            ErrorKind::InvalidParameter,
            "The clock is real; start the emulator with --clock virtual to advance it.",
        ));
    }
    let o = Obj::new("", b);
    let secs = match o.get("seconds") {
        Some(v) => {
            let f = v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| json::wrong_type("seconds", "a number", v))?;
            if !(0.0..=400.0 * 24.0 * 3600.0).contains(&f) {
                return Err(json::invalid(
                    "seconds",
                    "must be between 0 and 34560000 (400 days)",
                    f,
                ));
            }
            f
        }
        None => return Err(json::missing("seconds")),
    };
    Ok(engine.now().saturating_add((secs * 1000.0).round() as u64))
}

pub fn clock_json(engine: &Engine) -> Value {
    json!(clock(engine))
}

fn clock(engine: &Engine) -> admin_types::Clock {
    admin_types::Clock {
        mode: engine.clock,
        now: engine.now() / 1000,
        now_ms: engine.now(),
    }
}

/// `GET /__emulator/config`'s answer (also read in-process by the embedded API's start).
pub(crate) fn config(engine: &Engine, ctx: &Context) -> admin_types::Config {
    let t = &engine.st.tenants;
    let app = t.apps.first();
    let waba = t.wabas.first();
    let phone = t.phone_numbers.first();
    admin_types::Config {
        url: ctx.listen_url.clone(),
        app_id: app.map(|a| a.id.clone()),
        app_secret: app.map(|a| a.secret.clone()),
        access_token: app.and_then(|a| a.access_tokens.first().cloned()),
        verify_token: app.map(|a| a.verify_token.clone()),
        webhook_url: app.and_then(|a| a.webhook_url.clone()),
        waba_id: waba.map(|w| w.id.clone()),
        phone_number_id: phone.map(|p| p.id.clone()),
        display_phone_number: phone.map(|p| p.display_phone_number.clone()),
        // Every number with what it can do: +1 numbers take user-initiated calls only.
        phone_numbers: t.phone_numbers.iter().map(business_number).collect(),
        clock: clock(engine),
        tenants: t.clone(),
        behaviour: engine.behaviour.clone(),
        sip: ctx.sip.clone(),
    }
}

fn logged_webhook(engine: &Engine, d: &Delivery) -> admin_types::LoggedWebhook {
    let url = engine.webhook_url(&d.app_id);
    let state = webhook_state(d, url.is_some());
    admin_types::LoggedWebhook {
        id: format!("d{}", d.seq),
        seq: d.seq,
        field: d.field.clone(),
        event: d.event.clone(),
        url,
        state,
        created_at: d.created_at_ms / 1000,
        created_at_ms: d.created_at_ms,
        signature: d.signature.clone(),
        body: serde_json::from_str::<Value>(&d.body).unwrap_or(Value::Null),
        raw: d.body.clone(),
        attempts: d
            .attempts
            .iter()
            .map(|a| admin_types::LoggedAttempt {
                at: a.at_ms / 1000,
                at_ms: a.at_ms,
                url: a.url.clone(),
                status: a.status,
                error: a.error.clone(),
                response_body: a.response_body.clone(),
            })
            .collect(),
        call_id: d.call_id.as_deref().map(CallId::from),
        message_id: d.message_id.as_deref().map(MessageId::from),
        chaos: d.chaos.clone(),
        next_attempt_at_ms: (d.state == DeliveryState::Pending && !d.attempts.is_empty())
            .then_some(d.next_attempt_at_ms),
    }
}

fn webhook_state(d: &Delivery, has_url: bool) -> WebhookState {
    match d.state {
        DeliveryState::Pending if !has_url => WebhookState::Held,
        DeliveryState::Pending => WebhookState::Pending,
        DeliveryState::Delivered => WebhookState::Delivered,
        DeliveryState::Dead => WebhookState::Dead,
    }
}

/// The deliveries `GET /__emulator/webhooks` lists, by its query (`since`, `field`,
/// `call_id`, `limit`).
fn webhook_selection<'a>(
    engine: &'a Engine,
    req: &'a Request,
) -> impl Iterator<Item = &'a Delivery> + 'a {
    let since: u64 = req
        .query("since")
        .and_then(|s| s.trim_start_matches('d').parse().ok())
        .unwrap_or(0);
    let field = req.query("field");
    let call = req.query("call_id");
    let limit: usize = req
        .query("limit")
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX);
    engine
        .st
        .outbox
        .since(since)
        .into_iter()
        .filter(move |d| field.is_none_or(|f| d.field == f))
        .filter(move |d| call.is_none_or(|c| d.call_id.as_deref() == Some(c)))
        .take(limit)
}

fn webhook_log(engine: &Engine, req: &Request) -> admin_types::WebhookLog {
    let outbox = &engine.st.outbox;
    admin_types::WebhookLog {
        deliveries: webhook_selection(engine, req)
            .map(|d| logged_webhook(engine, d))
            .collect(),
        last_seq: outbox.last_seq(),
        evicted: outbox.evicted,
        capacity: outbox.capacity,
        pending: outbox.pending_len(),
        held_evicted: outbox.held_evicted,
        refused: outbox.refused,
    }
}

/// `GET /__emulator/webhooks` written straight to bytes: the same bytes as
/// `serde_json::to_vec(&json!(webhook_log(..)))`, without building the answer as a
/// tree and without parsing the stored bodies into trees (see [`canonical_json`]).
fn webhook_log_bytes(engine: &Engine, req: &Request) -> Vec<u8> {
    // The keys of [`admin_types::LoggedWebhook`] before `body` and after it, borrowed:
    // `webhook_log_bytes_equal_the_value_path` compares the two ways.
    #[derive(serde::Serialize)]
    struct Head<'a> {
        id: &'a str,
        seq: u64,
        field: &'a str,
        event: &'a str,
        url: Option<String>,
        state: WebhookState,
        created_at: u64,
        created_at_ms: u64,
        signature: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Attempt<'a> {
        at: u64,
        at_ms: u64,
        url: &'a str,
        status: Option<u16>,
        error: Option<&'a str>,
        response_body: Option<&'a str>,
    }
    #[derive(serde::Serialize)]
    struct Tail<'a> {
        raw: &'a str,
        attempts: Vec<Attempt<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        call_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        chaos: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        next_attempt_at_ms: Option<u64>,
    }
    #[derive(serde::Serialize)]
    struct Bounds {
        last_seq: u64,
        evicted: u64,
        capacity: usize,
        pending: usize,
        held_evicted: u64,
        refused: u64,
    }
    /// Writes `v` as a JSON object whose `{` becomes `,`: the rest of an object begun.
    fn continue_object(out: &mut Vec<u8>, v: &impl serde::Serialize) {
        let at = out.len();
        // These structs only hold strings and numbers: serialising cannot fail.
        let _ = serde_json::to_writer(&mut *out, v);
        if out.get(at) == Some(&b'{') {
            out[at] = b',';
        }
    }

    let outbox = &engine.st.outbox;
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"deliveries\":[");
    let mut id = String::new();
    for (i, d) in webhook_selection(engine, req).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        id.clear();
        let _ = write!(id, "d{}", d.seq);
        let url = engine.webhook_url(&d.app_id);
        let head = Head {
            id: &id,
            seq: d.seq,
            field: &d.field,
            event: &d.event,
            state: webhook_state(d, url.is_some()),
            url,
            created_at: d.created_at_ms / 1000,
            created_at_ms: d.created_at_ms,
            signature: &d.signature,
        };
        let _ = serde_json::to_writer(&mut out, &head);
        out.pop(); // the head's `}`
        out.extend_from_slice(b",\"body\":");
        let at = out.len();
        if !canonical_json(&d.body, &mut out) {
            out.truncate(at);
            let body = serde_json::from_str::<Value>(&d.body).unwrap_or(Value::Null);
            let _ = serde_json::to_writer(&mut out, &body);
        }
        let tail = Tail {
            raw: &d.body,
            attempts: d
                .attempts
                .iter()
                .map(|a| Attempt {
                    at: a.at_ms / 1000,
                    at_ms: a.at_ms,
                    url: &a.url,
                    status: a.status,
                    error: a.error.as_deref(),
                    response_body: a.response_body.as_deref(),
                })
                .collect(),
            call_id: d.call_id.as_deref(),
            message_id: d.message_id.as_deref(),
            chaos: d.chaos.as_deref(),
            next_attempt_at_ms: (d.state == DeliveryState::Pending && !d.attempts.is_empty())
                .then_some(d.next_attempt_at_ms),
        };
        continue_object(&mut out, &tail);
    }
    out.push(b']');
    continue_object(
        &mut out,
        &Bounds {
            last_seq: outbox.last_seq(),
            evicted: outbox.evicted,
            capacity: outbox.capacity,
            pending: outbox.pending_len(),
            held_evicted: outbox.held_evicted,
            refused: outbox.refused,
        },
    );
    out
}

/// Writes the JSON text `raw` as serde_json writes the `Value` it parses to (compact,
/// strings with serde_json's escapes and non-ASCII as UTF-8, keys in their order),
/// without building the tree. `false` (with part of it written) for anything whose
/// rewriting it does not know to be exact: invalid JSON, numbers other than plain
/// integers (serde_json reprints floats), repeated keys in an object (the tree keeps
/// the last value at the first place), lone surrogates, deep nesting.
fn canonical_json(raw: &str, out: &mut Vec<u8>) -> bool {
    let mut r = JsonReader {
        s: raw.as_bytes(),
        i: 0,
        keys: Vec::new(),
    };
    r.value(out, 0) && {
        r.ws();
        r.i == r.s.len()
    }
}

struct JsonReader<'a> {
    s: &'a [u8],
    i: usize,
    /// The keys of the objects being read, as ranges of the output.
    keys: Vec<(usize, usize)>,
}

impl JsonReader<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        let ok = self.s.get(self.i) == Some(&b);
        self.i += usize::from(ok);
        ok
    }

    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> bool {
        // serde_json refuses more than 128 levels; stay well below.
        if depth > 100 {
            return false;
        }
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                out.push(b'{');
                let first_key = self.keys.len();
                let ok = self.eat(b'}') || self.members(out, depth, first_key);
                self.keys.truncate(first_key);
                ok && {
                    out.push(b'}');
                    true
                }
            }
            Some(b'[') => {
                self.i += 1;
                out.push(b'[');
                if !self.eat(b']') {
                    loop {
                        if !self.value(out, depth + 1) {
                            return false;
                        }
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            return false;
                        }
                        out.push(b',');
                    }
                }
                out.push(b']');
                true
            }
            Some(b'"') => self.string(out),
            Some(b't') => self.word(b"true", out),
            Some(b'f') => self.word(b"false", out),
            Some(b'n') => self.word(b"null", out),
            Some(b'-' | b'0'..=b'9') => self.integer(out),
            _ => false,
        }
    }

    fn members(&mut self, out: &mut Vec<u8>, depth: usize, first_key: usize) -> bool {
        loop {
            self.ws();
            if self.s.get(self.i) != Some(&b'"') {
                return false;
            }
            let start = out.len();
            if !self.string(out) {
                return false;
            }
            let key = &out[start..];
            if self.keys[first_key..]
                .iter()
                .any(|&(a, b)| &out[a..b] == key)
            {
                return false;
            }
            self.keys.push((start, out.len()));
            if !self.eat(b':') {
                return false;
            }
            out.push(b':');
            if !self.value(out, depth + 1) {
                return false;
            }
            if self.eat(b'}') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
            out.push(b',');
        }
    }

    fn word(&mut self, w: &[u8], out: &mut Vec<u8>) -> bool {
        let ok = self.s[self.i..].starts_with(w);
        if ok {
            self.i += w.len();
            out.extend_from_slice(w);
        }
        ok
    }

    /// `-?(0|[1-9][0-9]*)` within `i64`/`u64`, not `-0`, written as read; anything
    /// else (a fraction, an exponent, a float by size) is left to the tree.
    fn integer(&mut self, out: &mut Vec<u8>) -> bool {
        let start = self.i;
        let negative = self.s[self.i] == b'-';
        self.i += usize::from(negative);
        let digits = self.i;
        while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        let n = self.i - digits;
        let text = &self.s[digits..self.i];
        let plain = match n {
            0 => false,
            1 => !(negative && text[0] == b'0'),
            // 18 digits always fit an i64; longer ones go the slow way.
            _ => text[0] != b'0' && n <= 18,
        };
        if !plain || matches!(self.s.get(self.i), Some(b'.' | b'e' | b'E')) {
            return false;
        }
        out.extend_from_slice(&self.s[start..self.i]);
        true
    }

    /// A string, written with serde_json's escapes: `\"`, `\\`, `\b \f \n \r \t`,
    /// `\u00xx` for other control characters, everything else as UTF-8.
    fn string(&mut self, out: &mut Vec<u8>) -> bool {
        self.i += 1; // the opening quote
        out.push(b'"');
        loop {
            let Some(&b) = self.s.get(self.i) else {
                return false;
            };
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return false;
                    };
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let Some(hi) = self.hex4() else { return false };
                            match hi {
                                0xD800..=0xDBFF => {
                                    if !self.s[self.i..].starts_with(b"\\u") {
                                        return false;
                                    }
                                    self.i += 2;
                                    let Some(lo) = self.hex4() else { return false };
                                    if !(0xDC00..=0xDFFF).contains(&lo) {
                                        return false;
                                    }
                                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                                    match char::from_u32(c) {
                                        Some(c) => c,
                                        None => return false,
                                    }
                                }
                                0xDC00..=0xDFFF => return false,
                                _ => match char::from_u32(hi) {
                                    Some(c) => c,
                                    None => return false,
                                },
                            }
                        }
                        _ => return false,
                    };
                    push_escaped(c, out);
                }
                // A raw control character is invalid JSON.
                0..=0x1f => return false,
                _ => out.push(b),
            }
        }
        out.push(b'"');
        true
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        let h = std::str::from_utf8(h).ok()?;
        let v = u32::from_str_radix(h, 16).ok()?;
        // from_str_radix takes a sign; JSON does not.
        if h.starts_with('+') {
            return None;
        }
        self.i += 4;
        Some(v)
    }
}

/// One decoded character of a string as serde_json writes it.
fn push_escaped(c: char, out: &mut Vec<u8>) {
    match c {
        '"' => out.extend_from_slice(b"\\\""),
        '\\' => out.extend_from_slice(b"\\\\"),
        '\u{8}' => out.extend_from_slice(b"\\b"),
        '\u{c}' => out.extend_from_slice(b"\\f"),
        '\n' => out.extend_from_slice(b"\\n"),
        '\r' => out.extend_from_slice(b"\\r"),
        '\t' => out.extend_from_slice(b"\\t"),
        '\0'..='\u{1f}' => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let b = c as u8;
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        }
        _ => {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

fn request_log(engine: &Engine, req: &Request) -> admin_types::RequestLog {
    let since: u64 = req.query("since").and_then(|s| s.parse().ok()).unwrap_or(0);
    // A body or an answer that is not JSON is shown as a JSON string.
    let json_or_text =
        |s: &str| serde_json::from_str::<Value>(s).unwrap_or_else(|_| Value::String(s.to_owned()));
    let history = &engine.st.request_history;
    admin_types::RequestLog {
        requests: history
            .entries
            .iter()
            .filter(|e| e.seq > since)
            .map(|e| admin_types::LoggedRequest {
                seq: e.seq,
                at: e.at_ms / 1000,
                at_ms: e.at_ms,
                method: e.method.clone(),
                path: e.path.clone(),
                query: e.query.clone(),
                body: json_or_text(&e.body),
                status: e.status,
                response: json_or_text(&e.response),
            })
            .collect(),
        evicted: history.evicted,
        capacity: history.capacity,
    }
}

fn messages_json(engine: &Engine) -> Value {
    let now = engine.now();
    let list: Vec<Value> = engine
        .st
        .messages
        .values()
        .map(|m| {
            let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
            if let Some(exp) = m.button_expires_at_ms() {
                v["button_expires_at"] = (exp / 1000).into();
                v["button_expired"] = (now >= exp).into();
            }
            v
        })
        .collect();
    json!({ "messages": list, "evicted": engine.st.messages_evicted })
}

#[cfg(test)]
mod webhook_log_tests {
    use super::*;
    use crate::domain::tenant::{Behaviour, Chaos, Tenants};
    use crate::webhook::codec::encode_ascii;
    use crate::webhook::outbox::Outcome;

    /// What the answer was before it was written directly: the typed log as a tree.
    fn value_path(engine: &Engine, req: &Request) -> Vec<u8> {
        serde_json::to_vec(&json!(webhook_log(engine, req))).unwrap()
    }

    fn push(e: &mut Engine, app: &str, call: Option<&str>, body: &str) -> u64 {
        let now = e.now();
        e.st.outbox.push(
            app,
            "messages",
            "sent",
            "k",
            call,
            call.map(|_| "wamid.1"),
            body.to_owned(),
            "sha256=00".to_owned(),
            now,
            60_000,
            app != "nobody",
        )
    }

    /// Bodies whose rewriting is exact, as the emulator stores them (ASCII-escaped) and
    /// as a snapshot may hold them (whitespace, `\/`, escapes serde_json writes short).
    fn sensitive() -> Vec<String> {
        vec![
            encode_ascii(&json!({
                "object": "whatsapp_business_account",
                "entry": [{"text": "é 😀 \"q\" back\\slash </tag> \u{1}\u{1f}\u{7f}\n\t\r\u{8}\u{c}",
                           "n": [0, -1, 42, 123456789012345678_i64], "t": true, "f": false,
                           "z": null, "o": {}, "a": []}]
            })),
            " { \"a\" : [ 1 , \"x\\/y\" ] ,\n\"b\":\"\\u00e9\\uD83D\\ude00\\u0041\\b\\u000C\" } "
                .to_owned(),
            "\"\\u0000\\u001F\"".to_owned(),
        ]
    }

    /// Bodies left to the tree: floats, big or signed-zero numbers, repeated keys, a lone
    /// surrogate, invalid or trailing text, deep nesting.
    fn slow() -> Vec<String> {
        vec![
            r#"{"p":1.50,"q":1e3,"r":-0}"#.to_owned(),
            r#"{"big":12345678901234567890,"neg":-1234567890123456789}"#.to_owned(),
            r#"{"a":1,"b":2,"a":3}"#.to_owned(),
            r#"{"s":"\ud800"}"#.to_owned(),
            r#"{"a":1} x"#.to_owned(),
            "not json".to_owned(),
            "{\"a\":\"\u{1}\"}".to_owned(),
            format!("{}{}", "[".repeat(110), "]".repeat(110)),
        ]
    }

    #[test]
    fn canonical_json_writes_what_the_tree_writes() {
        for body in sensitive() {
            let mut out = Vec::new();
            assert!(canonical_json(&body, &mut out), "{body}");
            let tree: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&tree).unwrap()
            );
        }
        for body in slow() {
            assert!(!canonical_json(&body, &mut Vec::new()), "{body}");
        }
    }

    #[test]
    fn webhook_log_bytes_equal_the_value_path() {
        let mut e = Engine::new(
            Tenants::default(),
            Behaviour::default(),
            1,
            ClockMode::Virtual,
            1_700_000_000_000,
        );
        e.set_webhook_url(None, Some("http://127.0.0.1:9/hook".to_owned()), None);
        let app = e.st.tenants.apps[0].id.as_str().to_owned();
        let ctx = Context {
            listen_url: "http://127.0.0.1:1".to_owned(),
            admin_token: None,
            sip: None,
        };
        let bodies: Vec<String> = sensitive().into_iter().chain(slow()).collect();
        for (i, body) in bodies.iter().enumerate() {
            if i == 4 {
                e.st.outbox.chaos = Chaos {
                    delay_ms: 5,
                    ..Chaos::default()
                };
            }
            // Held (no URL for this app), delivered, failed and pending, never tried.
            let held = push(&mut e, "nobody", Some("c1"), body);
            assert!(held > 0);
            let delivered = push(&mut e, &app, None, body);
            e.st.outbox.record(
                delivered,
                "http://127.0.0.1:9/hook".to_owned(),
                Outcome::Status {
                    status: 200,
                    body: "ok \"é\"".to_owned(),
                },
                e.now() + 3,
            );
            let failed = push(&mut e, &app, Some("c2"), body);
            e.st.outbox.record(
                failed,
                "http://127.0.0.1:9/hook".to_owned(),
                Outcome::Error("connection refused".to_owned()),
                e.now() + 7,
            );
            push(&mut e, &app, None, body);
        }
        let log = webhook_log(&e, &Request::new("GET", "/__emulator/webhooks", vec![], ""));
        let states: Vec<WebhookState> = log.deliveries.iter().map(|d| d.state).collect();
        for s in [
            WebhookState::Held,
            WebhookState::Delivered,
            WebhookState::Pending,
        ] {
            assert!(states.contains(&s), "{s:?}");
        }
        assert!(log.deliveries.iter().any(|d| d.chaos.is_some()));
        assert!(log
            .deliveries
            .iter()
            .any(|d| d.next_attempt_at_ms.is_some()));
        for q in [
            "",
            "?field=messages",
            "?call_id=c1",
            "?since=d5&limit=3",
            "?field=calls",
        ] {
            let req = Request::new("GET", &format!("/__emulator/webhooks{q}"), vec![], "");
            let answer = handle(&mut e, &req, &ctx);
            assert_eq!(answer.status, 200);
            assert_eq!(
                String::from_utf8(answer.body).unwrap(),
                String::from_utf8(value_path(&e, &req)).unwrap(),
                "{q}"
            );
        }
    }
}
