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
    let state = match d.state {
        DeliveryState::Pending if url.is_none() => WebhookState::Held,
        DeliveryState::Pending => WebhookState::Pending,
        DeliveryState::Delivered => WebhookState::Delivered,
        DeliveryState::Dead => WebhookState::Dead,
    };
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

fn webhook_log(engine: &Engine, req: &Request) -> admin_types::WebhookLog {
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
    let outbox = &engine.st.outbox;
    admin_types::WebhookLog {
        deliveries: outbox
            .since(since)
            .into_iter()
            .filter(|d| field.is_none_or(|f| d.field == f))
            .filter(|d| call.is_none_or(|c| d.call_id.as_deref() == Some(c)))
            .take(limit)
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
        .message_order
        .iter()
        .filter_map(|id| engine.st.messages.get(id))
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
