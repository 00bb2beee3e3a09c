//! Tenants for parallel tests on one server (`/__emulator/tenants`, ADMIN-API.md).
//!
//! Each tenant is an [`Engine`] of its own, beside the default tenant's: its own users,
//! messages, calls, permissions, templates, delivery log, request history and clock. So
//! isolation needs no tenant checks inside the core: a tenant's engine simply does not
//! hold another tenant's objects. The server routes each request to one engine:
//! - Graph requests by their access token ([`Registry::for_token`]); a token no tenant
//!   issued goes to the default tenant, which answers 190 as it always did;
//! - admin requests under `/__emulator/tenants/{id}/…` to that tenant, with the prefix
//!   taken off so the admin API sees its usual paths; every other admin request to the
//!   default tenant.
//!
//! Tenants are memory only: the write-ahead log of `--state` records the default tenant's
//! inputs and never a created tenant's.

use super::{admin_error, config, delivery, real_now_ms, Shared};
use crate::api::admin_types::{BusinessNumber, Clock, TenantInfo, TenantList};
use crate::api::{self, Request, Response};
use crate::domain::error::{ApiError, ErrorKind};
use crate::domain::tenant::{NumberProfile, NumberRequest, Tenants, MAX_GENERATED_NUMBERS};
use crate::engine::{ClockMode, Engine};
use crate::wire::json::{self, Obj};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The path under which tenants live.
const TENANTS: &str = "/__emulator/tenants";

/// One tenant: the default one (made from the configuration at start-up) or one created
/// by `POST /__emulator/tenants`.
pub(crate) struct Tenant {
    /// `t<N>` for a created tenant; empty for the default one.
    pub id: String,
    /// The tenant's whole state; held only for short, non-blocking sections.
    pub engine: Mutex<Engine>,
    /// Set when the tenant is deleted, so whoever still holds it (a delivery in flight,
    /// an inspector's event stream, a SIP call) lets it go.
    deleted: AtomicBool,
    /// In the delivery worker's queue of touched tenants ([`Shared::touched`]), so it is
    /// queued once however often it is touched before the worker looks.
    queued: AtomicBool,
    /// When the tenant's real clock next needs the worker (a retry, a timer), as the
    /// worker last saw it; `u64::MAX` for none, and always for a virtual clock.
    pub next_due_ms: AtomicU64,
    /// Graph requests waiting for room below `webhook_pending_limit` wait here; a
    /// finished delivery wakes one ([`super::delivery::wait_for_room`]).
    pub room: tokio::sync::Notify,
}

impl Tenant {
    pub fn new(id: String, engine: Engine) -> Self {
        Self {
            id,
            engine: Mutex::new(engine),
            deleted: AtomicBool::new(false),
            queued: AtomicBool::new(false),
            next_due_ms: AtomicU64::new(u64::MAX),
            room: tokio::sync::Notify::new(),
        }
    }

    /// The default tenant: the only one whose inputs the write-ahead log records.
    pub fn is_default(&self) -> bool {
        self.id.is_empty()
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Relaxed)
    }

    pub fn lock(&self) -> MutexGuard<'_, Engine> {
        // A panic while holding the lock must not take the emulator down with it.
        let mut g = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        g.observe_real_time(real_now_ms());
        g
    }
}

/// The live tenants created on this server, by creation order and by token.
#[derive(Default)]
pub(crate) struct Registry {
    /// By serial (the `N` of `t<N>`): iteration is creation order.
    live: BTreeMap<u64, Arc<Tenant>>,
    by_token: HashMap<String, Arc<Tenant>>,
    /// Serials are never reused, so a deleted tenant's id and token stay dead.
    last_serial: u64,
}

impl Registry {
    /// The tenant a Graph request's token belongs to, if a created tenant issued it.
    pub fn for_token(&self, token: &str) -> Option<Arc<Tenant>> {
        self.by_token.get(token).cloned()
    }

    pub fn get(&self, id: &str) -> Option<Arc<Tenant>> {
        let serial: u64 = id.strip_prefix('t')?.parse().ok()?;
        self.live.get(&serial).filter(|t| t.id == id).cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Tenant>> {
        self.live.values()
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }
}

impl Shared {
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        self.tenants.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Something happened to this tenant (a request, an attempt's outcome, a clock
    /// step): the delivery worker is to look at it. Idle tenants it never looks at.
    pub fn touched(&self, tenant: &Arc<Tenant>) {
        if !tenant.queued.swap(true, Ordering::AcqRel) {
            self.touched_tenants().push(tenant.clone());
        }
        self.wake.notify_one();
    }

    /// The tenants touched since the last call, for the delivery worker.
    pub fn take_touched(&self) -> Vec<Arc<Tenant>> {
        let list = std::mem::take(&mut *self.touched_tenants());
        for t in &list {
            t.queued.store(false, Ordering::Release);
        }
        list
    }

    fn touched_tenants(&self) -> MutexGuard<'_, Vec<Arc<Tenant>>> {
        self.touched.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where a request goes once the tenant routes are out of the way.
pub(super) enum Route {
    /// To this tenant's engine (the request's path rewritten for a prefixed admin route).
    Tenant(Arc<Tenant>),
    /// Answered already (the tenant routes themselves, an unknown tenant).
    Answered(Response),
}

/// Routes a request: the tenant routes are answered here; every other request is given
/// the tenant it belongs to.
pub(super) async fn route(shared: &Arc<Shared>, req: &mut Request) -> Route {
    let Some(rest) = req.path.strip_prefix(TENANTS) else {
        if req.path.starts_with(api::ADMIN_PREFIX) {
            return Route::Tenant(shared.default.clone());
        }
        // Graph: the token decides; a token no tenant issued is the default tenant's
        // business (it answers 190 for tokens it does not know either).
        let owner = api::access_token(req).and_then(|t| shared.registry().for_token(t));
        return Route::Tenant(owner.unwrap_or_else(|| shared.default.clone()));
    };
    // The inspector of a tenant takes the admin token from `?token=` too, as the default
    // tenant's does (a browser cannot set headers on a page load or an event stream).
    let inspector = rest
        .splitn(3, '/')
        .nth(2)
        .is_some_and(|tail| super::ui::owns(&format!("{}/{tail}", api::ADMIN_PREFIX)));
    if !api::admin_token_ok(&shared.ctx, req, inspector && req.method == "GET") {
        return Route::Answered(admin_error(shared, api::admin_token_error()));
    }
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Route::Answered(match req.method.as_str() {
            "POST" => create(shared, req).await,
            "GET" => list(shared),
            _ => not_a_route(shared, req),
        });
    }
    let Some(rest) = rest.strip_prefix('/') else {
        // `/__emulator/tenantsX`: not ours.
        return Route::Answered(not_a_route(shared, req));
    };
    let (id, tail) = match rest.split_once('/') {
        Some((id, tail)) => (id, Some(tail)),
        None => (rest, None),
    };
    let Some(tenant) = shared.registry().get(id) else {
        return Route::Answered(admin_error(
            shared,
            ApiError::new(
                ErrorKind::NotFound,
                format!(
                    "No tenant {}: it was deleted, or never created (GET {TENANTS} lists the live ones).",
                    json::quote_bounded(id)
                ),
            ),
        ));
    };
    match (req.method.as_str(), tail) {
        ("GET", None) => Route::Answered(Response::ok(&json!(info(shared, &tenant)))),
        ("DELETE", None) => Route::Answered(delete(shared, &tenant)),
        (_, None) => Route::Answered(not_a_route(shared, req)),
        (_, Some(tail)) if tail == "tenants" || tail.starts_with("tenants/") => {
            Route::Answered(not_a_route(shared, req))
        }
        (_, Some(tail)) => {
            req.path = format!("{}/{tail}", api::ADMIN_PREFIX);
            Route::Tenant(tenant)
        }
    }
}

fn not_a_route(shared: &Shared, req: &Request) -> Response {
    admin_error(
        shared,
        ApiError::new(
            ErrorKind::NotFound,
            format!(
                "{} {} is not an admin route; see ADMIN-API.md for the list.",
                req.method, req.path
            ),
        ),
    )
}

/// What `POST /__emulator/tenants` may say.
struct Wanted {
    webhook_url: Option<String>,
    verify_token: Option<String>,
    clock: ClockMode,
    clock_start_ms: Option<u64>,
    seed: Option<u64>,
    /// The numbers asked for, else the standard pair.
    numbers: Option<Vec<NumberRequest>>,
}

/// `phone_numbers` of `POST /__emulator/tenants`: 1 to 9
/// `{"display_phone_number","business_initiated_calling"?,"profile"?}`, distinct.
fn numbers(o: &Obj<'_>) -> Result<Option<Vec<NumberRequest>>, ApiError> {
    let Some(list) = o.arr_opt("phone_numbers")? else {
        return Ok(None);
    };
    if list.is_empty() || list.len() > MAX_GENERATED_NUMBERS {
        return Err(json::invalid(
            "phone_numbers",
            &format!("must list 1 to {MAX_GENERATED_NUMBERS} numbers"),
            list.len(),
        ));
    }
    let mut out: Vec<NumberRequest> = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let path = format!("phone_numbers[{i}]");
        let m = v
            .as_object()
            .ok_or_else(|| json::wrong_type(&path, "an object", v))?;
        let n = Obj::new(&path, m);
        let display = json::phone_digits(
            &n.field_path("display_phone_number"),
            n.str_req("display_phone_number")?,
        )?;
        if out.iter().any(|o| o.display_phone_number == display) {
            return Err(json::invalid(
                &n.field_path("display_phone_number"),
                "must differ from the tenant's other numbers",
                json::quote_bounded(&display),
            ));
        }
        out.push(NumberRequest {
            display_phone_number: display,
            business_initiated_calling: n.bool_opt("business_initiated_calling")?,
            profile: match n.enum_opt("profile", &["production", "test"], false)? {
                Some("test") => NumberProfile::Test,
                _ => NumberProfile::Production,
            },
        });
    }
    Ok(Some(out))
}

fn wanted(shared: &Shared, req: &Request) -> Result<Wanted, ApiError> {
    let body = if req.body.iter().all(u8::is_ascii_whitespace) || req.body.trim_ascii() == b"null" {
        serde_json::Map::new()
    } else {
        json::parse_object(&req.body)?
    };
    let o = Obj::new("", &body);
    let clock = match o.enum_opt("clock", &["real", "virtual"], true)? {
        None => shared.opts.clock,
        Some("virtual") => ClockMode::Virtual,
        Some(_) => ClockMode::Real,
    };
    // Unix seconds from 2001 to 2100: a start the clock can run from for years.
    let clock_start = o.int_opt("clock_start", 978_307_200, 4_102_444_800)?;
    if clock_start.is_some() && clock == ClockMode::Real {
        return Err(json::invalid(
            "clock_start",
            "needs a virtual clock (\"clock\": \"virtual\", or a server started with --clock virtual)",
            clock_start.unwrap_or_default(),
        ));
    }
    let seed = match o.get("seed") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| json::wrong_type("seed", "a non-negative integer", v))?,
        ),
    };
    let webhook_url = o.str_opt("webhook_url")?.map(str::to_owned);
    if let Some(u) = &webhook_url {
        config::check_url(u).map_err(|e| ApiError::new(ErrorKind::InvalidValue, e))?;
    }
    Ok(Wanted {
        webhook_url,
        verify_token: o.text_opt("verify_token", 256)?.map(str::to_owned),
        clock,
        clock_start_ms: clock_start.map(|s| s as u64 * 1000),
        seed,
        numbers: numbers(&o)?,
    })
}

fn limit_reached(shared: &Shared) -> Option<Response> {
    (shared.registry().len() >= shared.opts.max_tenants).then(|| limit_error(shared))
}

fn limit_error(shared: &Shared) -> Response {
    let max = shared.opts.max_tenants;
    admin_error(
        shared,
        ApiError::refused(
            "tenant_limit",
            format!(
                "{max} tenants are live, the most this emulator keeps at once (max_tenants); delete finished ones (DELETE {TENANTS}/{{id}}) or start it with a higher --max-tenants."
            ),
        ),
    )
}

/// `POST /__emulator/tenants`: the callback URL's handshake first (no tenant when it
/// fails), then a fresh engine with generated ids.
async fn create(shared: &Arc<Shared>, req: &Request) -> Response {
    let w = match wanted(shared, req) {
        Ok(w) => w,
        Err(e) => return admin_error(shared, e),
    };
    // Checked before the handshake (a full server should not wait for a receiver), and
    // again below, where it counts.
    if let Some(r) = limit_reached(shared) {
        return r;
    }
    let verify_token = w
        .verify_token
        .clone()
        .unwrap_or_else(|| crate::domain::tenant::DEFAULT_VERIFY_TOKEN.into());
    if let Some(url) = &w.webhook_url {
        if let Err(why) = delivery::handshake(shared, url, &verify_token).await {
            return admin_error(
                shared,
                ApiError::new(
                    ErrorKind::InvalidValue,
                    format!("No tenant was created: the verification handshake of webhook_url failed: {why}"),
                ),
            );
        }
    }
    // The default tenant's ids as they are now (a snapshot import may have changed
    // them); read before the registry is locked, so no engine is ever locked inside it.
    let configured = shared.lock().st.tenants.clone();
    #[allow(clippy::disallowed_methods, reason = "tokens that cannot be guessed")]
    let nonce = format!("{:016x}", rand::random::<u64>());
    let tenant = {
        let mut reg = shared.registry();
        if reg.len() >= shared.opts.max_tenants {
            drop(reg);
            return limit_error(shared);
        }
        let (serial, tenants) = loop {
            reg.last_serial += 1;
            let serial = reg.last_serial;
            let numbers = w
                .numbers
                .clone()
                .unwrap_or_else(|| Tenants::standard_numbers(serial));
            let t = Tenants::generated(
                serial,
                &nonce,
                &numbers,
                w.webhook_url.clone(),
                Some(verify_token.clone()),
            );
            if !t.shares_ids_with(&configured) {
                break (serial, t);
            }
        };
        let start = match w.clock {
            ClockMode::Virtual => w
                .clock_start_ms
                .or(shared.opts.clock_start_ms)
                .unwrap_or_else(real_now_ms),
            ClockMode::Real => real_now_ms(),
        };
        // Distinct per tenant and reproducible from the server's seed.
        let seed = w
            .seed
            .unwrap_or_else(|| shared.opts.seed ^ serial.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let tokens = tenants.apps[0].access_tokens.clone();
        let mut engine = Engine::new(tenants, shared.opts.behaviour.clone(), seed, w.clock, start);
        engine.media_local = shared.media.local.clone();
        let tenant = Arc::new(Tenant::new(format!("t{serial}"), engine));
        reg.live.insert(serial, tenant.clone());
        for t in tokens {
            reg.by_token.insert(t, tenant.clone());
        }
        tenant
    };
    tracing::info!(tenant = %tenant.id, "tenant created");
    shared.touched(&tenant);
    Response::ok(&json!(info(shared, &tenant)))
}

fn list(shared: &Shared) -> Response {
    let tenants: Vec<Arc<Tenant>> = shared.registry().all().cloned().collect();
    Response::ok(&json!(TenantList {
        live: tenants.len(),
        tenants: tenants.iter().map(|t| info(shared, t)).collect(),
        max: shared.opts.max_tenants,
    }))
}

/// `DELETE /__emulator/tenants/{id}`: out of the registry, so its token stops working
/// and no delivery of it is taken again; its memory goes with the last holder (a
/// delivery in flight finishes first).
fn delete(shared: &Shared, tenant: &Arc<Tenant>) -> Response {
    {
        let mut reg = shared.registry();
        reg.live.retain(|_, t| !Arc::ptr_eq(t, tenant));
        reg.by_token.retain(|_, t| !Arc::ptr_eq(t, tenant));
    }
    tenant.deleted.store(true, Ordering::Relaxed);
    shared.sip.forget_tenant(&tenant.id);
    // Pending deliveries and the rest of its state go now, even while something still
    // holds the tenant.
    {
        let mut engine = tenant.lock();
        engine.reset();
        engine.st.outbox = Default::default();
        engine.st.request_history = Default::default();
    }
    tracing::info!(tenant = %tenant.id, "tenant deleted");
    Response::ok(&json!({ "id": tenant.id, "deleted": true }))
}

/// The tenant answer: its ids as `GET {admin_path}/config` has them, and its clock.
fn info(shared: &Shared, tenant: &Tenant) -> TenantInfo {
    let engine = tenant.lock();
    let t = &engine.st.tenants;
    let app = t.apps.first();
    let admin_path = format!("{TENANTS}/{}", tenant.id);
    TenantInfo {
        admin_url: format!("{}{admin_path}", shared.ctx.listen_url),
        admin_path,
        id: tenant.id.clone(),
        graph_url: shared.ctx.listen_url.clone(),
        app_id: app.map(|a| a.id.clone()).unwrap_or_else(|| "".into()),
        app_secret: app.map(|a| a.secret.clone()).unwrap_or_default(),
        access_token: app
            .and_then(|a| a.access_tokens.first().cloned())
            .unwrap_or_default(),
        verify_token: app.map(|a| a.verify_token.clone()).unwrap_or_default(),
        webhook_url: app.and_then(|a| a.webhook_url.clone()),
        waba_id: t
            .wabas
            .first()
            .map(|w| w.id.clone())
            .unwrap_or_else(|| "".into()),
        phone_number_id: t
            .phone_numbers
            .first()
            .map(|p| p.id.clone())
            .unwrap_or_else(|| "".into()),
        display_phone_number: t
            .phone_numbers
            .first()
            .map(|p| p.display_phone_number.clone())
            .unwrap_or_default(),
        phone_numbers: t
            .phone_numbers
            .iter()
            .map(|p| BusinessNumber {
                id: p.id.clone(),
                display_phone_number: p.display_phone_number.clone(),
                waba_id: p.waba_id.clone(),
                business_initiated_calling: p.business_initiated_calling(),
                profile: p.profile,
            })
            .collect(),
        clock: Clock {
            mode: engine.clock,
            now: engine.now() / 1000,
            now_ms: engine.now(),
        },
    }
}

/// `PUT {admin_path}/snapshot` restores only a snapshot of the same tenant: its token
/// routes requests here, so a snapshot with another app's ids and tokens would make the
/// tenant answer to a token that does not reach it.
pub(super) fn check_snapshot(
    shared: &Shared,
    tenant: &Tenant,
    req: &Request,
) -> Result<(), Response> {
    let Ok(v) = serde_json::from_slice::<Value>(&req.body) else {
        // The admin API explains what is wrong with it.
        return Ok(());
    };
    let ids = |apps: &Value| -> Vec<(String, Value)> {
        apps.as_array()
            .map(|a| {
                a.iter()
                    .map(|app| {
                        (
                            app["id"].as_str().unwrap_or_default().to_owned(),
                            app["access_tokens"].clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let own = {
        let engine = tenant.lock();
        serde_json::to_value(&engine.st.tenants.apps).unwrap_or(Value::Null)
    };
    if ids(&v["tenants"]["apps"]) == ids(&own) {
        return Ok(());
    }
    Err(admin_error(
        shared,
        ApiError::new(
            ErrorKind::InvalidParameter,
            format!(
                "This snapshot is not tenant {}'s (its apps and access tokens differ): a tenant restores only its own snapshots (GET {TENANTS}/{}/snapshot).",
                tenant.id, tenant.id
            ),
        ),
    ))
}
