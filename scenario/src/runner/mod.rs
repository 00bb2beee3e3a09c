//! Runs one checked scenario against an emulator at a base URL, over HTTP only: the
//! Graph API with the tenant's bearer token, and the `/__emulator` admin API.
//!
//! Webhook expectations read the emulator's delivery log (`GET /__emulator/webhooks`),
//! which records deliveries even with no callback URL, so a scenario that plays both
//! sides needs no receiver. App expectations read the Graph request journal
//! (`GET /__emulator/requests`).

pub mod http;
pub mod matcher;
pub mod target;

use crate::diagnostic::Source;
use crate::syntax::duration::format_duration;
use crate::syntax::json::quote;
use crate::syntax::*;
use http::{Http, Reply};
use matcher::{best_match, find_key, get_path, mentions, Mismatch};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use wa_emulator::api::admin_types::{
    BusinessNumber, Clock, Config, RequestLog, WebhookLog, WebhookState,
};
use wa_emulator::domain::ids::{PhoneNumberId, WabaId};
use wa_emulator::engine::ClockMode;
use wa_emulator::wire::url::percent_encode;

/// The Graph API version the runner speaks; the emulator accepts any.
pub const GRAPH_VERSION: &str = "v21.0";

/// An SDP good enough for the emulator's checks: ICE credentials, a fingerprint, Opus.
const SDP: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE audio\r\na=msid-semantic: WMS\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 126\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:wAeM\r\na=ice-pwd:zfQLqf4fAcbZzPrA1Xc0XHlX\r\na=ice-options:trickle\r\na=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\na=setup:active\r\na=mid:audio\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:126 telephone-event/8000\r\n";

/// How the runner behaves beyond the scenario text.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--app URL`: webhooks go to an app under test.
    pub app: Option<String>,
    /// Bearer token for the admin API, when the emulator requires one.
    pub admin_token: Option<String>,
    /// `POST /__emulator/reset` before the scenario (shared `--target` emulators).
    pub reset: bool,
    /// Real time a positive expectation keeps polling before it fails, for emulators
    /// that log deliveries asynchronously.
    pub grace: Duration,
    /// Deadline for `expect the app to …` without `within`.
    pub app_default_within: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            app: None,
            admin_token: None,
            reset: false,
            grace: Duration::from_millis(1500),
            app_default_within: Duration::from_secs(5),
        }
    }
}

/// Why a scenario failed: at which step (index into `steps`), and what happened.
#[derive(Clone, Debug)]
pub struct Failure {
    pub step: Option<usize>,
    pub message: String,
}

/// Whether a scenario needs `--app` (it has `expect the app …` steps).
pub fn needs_app(s: &Scenario) -> bool {
    s.steps
        .iter()
        .any(|st| matches!(st.kind, StepKind::ExpectApp { .. }))
}

/// Runs every step in order; stops at the first failing step.
pub async fn run_scenario(
    http: &Http,
    base_url: &str,
    src: &Source,
    scenario: &Scenario,
    opts: &Options,
) -> Result<(), Failure> {
    let setup = |message: String| Failure {
        step: None,
        message,
    };
    let mut ctx = Ctx::new(http, base_url, src, scenario, opts);
    if opts.reset {
        ctx.admin_ok("POST", "/reset", Some(&json!({})))
            .await
            .map_err(setup)?;
    }
    ctx.load_config().await.map_err(setup)?;
    if let Some(app) = &opts.app {
        ctx.admin_ok("PUT", "/webhook", Some(&json!({"url": app})))
            .await
            .map_err(|e| {
                setup(format!(
                    "pointing the emulator's webhooks at the app under test failed: {e}"
                ))
            })?;
    }
    // Deliveries and requests from before this scenario (a shared emulator whose reset
    // keeps its logs) are not this scenario's business.
    ctx.refresh_webhooks().await.map_err(setup)?;
    ctx.webhooks_from = ctx.webhook_max_seq;
    ctx.deliveries.clear();
    if needs_app(scenario) {
        ctx.refresh_requests().await.map_err(setup)?;
        ctx.requests_from = ctx.request_max_seq;
        ctx.requests.clear();
    }
    let steps = &scenario.steps;
    for (i, step) in steps.iter().enumerate() {
        let fail = |message: String| Failure {
            step: Some(i),
            message,
        };
        let reply = ctx.step(i, step).await.map_err(fail)?;
        if let Some(reply) = reply {
            let checked_next = matches!(
                steps.get(i + 1).map(|s| &s.kind),
                Some(StepKind::ExpectResponse(_))
            );
            if !reply.is_success() && !checked_next {
                let code = reply
                    .error_code()
                    .map(|c| format!(" {c}"))
                    .unwrap_or_default();
                return Err(fail(format!(
                    "the request failed with HTTP {}:\n    {}\n  help: if this failure is what the scenario tests, add `expect error{code}` on the next line",
                    reply.status,
                    summarize(&reply.body)
                )));
            }
            ctx.last = Some(reply);
        } else if !matches!(step.kind, StepKind::ExpectResponse(_)) {
            ctx.last = None;
        }
    }
    Ok(())
}

struct Delivery {
    seq: u64,
    field: String,
    events: Vec<String>,
    body: Value,
    state: WebhookState,
}

struct Journaled {
    seq: u64,
    method: String,
    path: String,
    body: Value,
    reply: Reply,
}

struct Ctx<'a> {
    http: &'a Http,
    base: String,
    opts: &'a Options,
    /// Line number of each step, for messages that point at another step.
    step_lines: Vec<usize>,
    /// Every business number the emulator hosts for the tenant, first one first
    /// (`GET /__emulator/config` `phone_numbers`).
    numbers: Vec<BusinessNumber>,
    /// The number business steps act as (`business uses number …`; the first by default).
    phone_number_id: PhoneNumberId,
    waba_id: WabaId,
    display_number: String,
    token: String,
    virtual_clock: Option<bool>,
    users: HashMap<String, String>,
    vars: HashMap<String, String>,
    last: Option<Reply>,
    deliveries: Vec<Delivery>,
    webhooks_from: u64,
    webhook_max_seq: u64,
    /// Delivery seq → the step index that matched it.
    consumed: HashMap<u64, usize>,
    last_webhook_seq: Option<u64>,
    requests: Vec<Journaled>,
    requests_from: u64,
    request_max_seq: u64,
    requests_consumed: HashMap<u64, usize>,
    last_request_seq: Option<u64>,
}

impl<'a> Ctx<'a> {
    fn new(
        http: &'a Http,
        base: &str,
        src: &Source,
        scenario: &Scenario,
        opts: &'a Options,
    ) -> Ctx<'a> {
        Ctx {
            http,
            base: base.trim_end_matches('/').to_string(),
            opts,
            step_lines: scenario
                .steps
                .iter()
                .map(|s| src.line_col(s.span.start).0)
                .collect(),
            numbers: Vec::new(),
            phone_number_id: PhoneNumberId::from(""),
            waba_id: WabaId::from(""),
            display_number: String::new(),
            token: String::new(),
            virtual_clock: None,
            users: HashMap::new(),
            vars: HashMap::new(),
            last: None,
            deliveries: Vec::new(),
            webhooks_from: 0,
            webhook_max_seq: 0,
            consumed: HashMap::new(),
            last_webhook_seq: None,
            requests: Vec::new(),
            requests_from: 0,
            request_max_seq: 0,
            requests_consumed: HashMap::new(),
            last_request_seq: None,
        }
    }

    async fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Reply, String> {
        let url = format!("{}/__emulator{path}", self.base);
        self.http
            .send(method, &url, self.opts.admin_token.as_deref(), body)
            .await
    }

    /// An admin call that must succeed for the run to make sense (setup, logs, clock).
    async fn admin_ok(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let r = self.admin(method, path, body).await?;
        if r.is_success() {
            Ok(r)
        } else {
            Err(format!(
                "{method} /__emulator{path} answered HTTP {}: {}",
                r.status,
                summarize(&r.body)
            ))
        }
    }

    /// An admin answer read as the emulator's own type for it (`api::admin_types`).
    async fn admin_answer<T: DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let body = self.admin_ok("GET", path, None).await?.body;
        serde_json::from_value(body.clone()).map_err(|e| {
            format!(
                "GET /__emulator{path} answered something this runner cannot read ({e}): {}\n  help: is the target a wa-emulator of the same version as this runner?",
                summarize(&body)
            )
        })
    }

    async fn graph(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Reply, String> {
        let url = format!("{}{path}", self.base);
        self.http.send(method, &url, Some(&self.token), body).await
    }

    async fn load_config(&mut self) -> Result<(), String> {
        let cfg: Config = self.admin_answer("/config").await?;
        self.token = cfg
            .access_token
            .ok_or("GET /__emulator/config has no `access_token`: the emulator has no app")?;
        let first = cfg.phone_numbers.first().cloned().ok_or(
            "GET /__emulator/config lists no `phone_numbers`: the emulator has no business number",
        )?;
        self.numbers = cfg.phone_numbers;
        self.act_as(first);
        Ok(())
    }

    /// Business steps act as this number from now on.
    fn act_as(&mut self, number: BusinessNumber) {
        self.phone_number_id = number.id;
        self.waba_id = number.waba_id;
        self.display_number = number.display_phone_number;
    }

    /// `business uses number …`: the number must be one the emulator hosts, named by its
    /// display number or its phone number id.
    fn use_number(&mut self, n: &Text) -> Result<(), String> {
        let want = digits(&n.value);
        let Some(number) = self
            .numbers
            .iter()
            .find(|b| digits(&b.display_phone_number) == want || b.id.as_str() == want)
            .cloned()
        else {
            let known = self
                .numbers
                .iter()
                .map(|b| format!("{} (id {})", b.display_phone_number, b.id))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(format!(
                "the emulator has no business number {}\n  its numbers (GET /__emulator/config `phone_numbers`): {known}\n  help: write one of those display numbers after `business uses number`",
                n.value
            ));
        };
        self.act_as(number);
        Ok(())
    }

    async fn is_virtual(&mut self) -> Result<bool, String> {
        if let Some(v) = self.virtual_clock {
            return Ok(v);
        }
        let clock: Clock = self.admin_answer("/clock").await?;
        let v = clock.mode == ClockMode::Virtual;
        self.virtual_clock = Some(v);
        Ok(v)
    }

    async fn advance(&mut self, ms: u64) -> Result<(), String> {
        self.admin_ok(
            "POST",
            "/clock/advance",
            Some(&json!({"seconds": ms / 1000})),
        )
        .await?;
        Ok(())
    }

    /// Lets `ms` pass: on the virtual clock by advancing it, otherwise in real time.
    async fn let_time_pass(&mut self, ms: u64) -> Result<(), String> {
        if self.is_virtual().await? {
            self.advance(ms.div_ceil(1000) * 1000).await
        } else {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(())
        }
    }

    fn var(&self, v: &Var) -> Result<String, String> {
        self.vars.get(&v.name).cloned().ok_or_else(|| {
            format!(
                "`${}` has no value: the step that should have bound it did not produce an id",
                v.name
            )
        })
    }

    fn user(&self, n: &Name) -> Result<String, String> {
        self.users
            .get(&n.text)
            .cloned()
            .ok_or_else(|| format!("user `{}` is not declared", n.text))
    }

    /// A user as a Graph `to`: `+` and the digits, so the number stays the user's whatever
    /// the business number's country (without `+`, its calling code would be prepended).
    fn to(&self, n: &Name) -> Result<String, String> {
        Ok(format!("+{}", self.user(n)?))
    }

    fn pattern(&self, j: &Json) -> Result<Value, String> {
        j.pat.to_value(&|name| self.vars.get(name).cloned())
    }

    fn bind(&mut self, bind: &Option<Var>, id: Option<String>, what: &str) -> Result<(), String> {
        if let Some(v) = bind {
            let id = id.ok_or_else(|| format!("cannot bind `${}`: {what} has no id", v.name))?;
            self.vars.insert(v.name.clone(), id);
        }
        Ok(())
    }

    fn messages_path(&self) -> String {
        format!("/{GRAPH_VERSION}/{}/messages", self.phone_number_id)
    }

    fn calls_path(&self) -> String {
        format!("/{GRAPH_VERSION}/{}/calls", self.phone_number_id)
    }

    /// Executes one step; returns the response for steps that make a request.
    async fn step(&mut self, index: usize, step: &Step) -> Result<Option<Reply>, String> {
        match &step.kind {
            StepKind::User(u) => {
                let wa_id = match &u.number {
                    Some(n) => n.value.clone(),
                    None => format!("1650555{:04}", self.users.len() + 1),
                };
                let display = u
                    .display_name
                    .as_ref()
                    .map(|t| t.value.clone())
                    .unwrap_or_else(|| capitalize(&u.name.text));
                let mut body =
                    json!({"wa_id": wa_id, "name": display, "platform": u.platform.as_str()});
                if let Some(v) = &u.version {
                    body["version"] = json!(v.text);
                }
                // Always said explicitly, so a story does not depend on the emulator's
                // default for new users.
                body["window_open"] = json!(u.window_open);
                self.admin_ok("POST", "/users", Some(&body)).await?;
                self.users.insert(u.name.text.clone(), wa_id);
                Ok(None)
            }
            StepKind::UseNumber(n) => {
                self.use_number(n)?;
                Ok(None)
            }
            StepKind::Advance(d) => {
                self.advance(d.ms).await?;
                Ok(None)
            }
            StepKind::Wait(d) => {
                tokio::time::sleep(Duration::from_millis(d.ms)).await;
                Ok(None)
            }
            StepKind::Business { action, bind } => {
                let reply = self.business(action).await?;
                if reply.is_success() {
                    let id = match action {
                        BusinessAction::CreateTemplate { .. } => {
                            reply.body.get("id").and_then(id_string)
                        }
                        _ => first_id(&reply.body),
                    };
                    self.bind(bind, id, "the response")?;
                }
                Ok(Some(reply))
            }
            StepKind::Act { user, action, bind } => {
                let wa_id = self.user(user)?;
                let reply = self.user_action(&wa_id, action).await?;
                if reply.is_success() {
                    let id = first_id(&reply.body);
                    self.bind(bind, id, "the response")?;
                }
                Ok(Some(reply))
            }
            StepKind::ExpectResponse(r) => {
                self.expect_response(r)?;
                Ok(None)
            }
            StepKind::ExpectWebhook { then, exp } => {
                self.expect_webhook(index, *then, exp).await?;
                Ok(None)
            }
            StepKind::ExpectApp { then, exp } => self.expect_app(index, *then, exp).await,
        }
    }

    async fn business(&mut self, action: &BusinessAction) -> Result<Reply, String> {
        match action {
            BusinessAction::SendButton {
                to,
                label,
                body,
                payload,
                ttl,
            } => {
                let mut params = serde_json::Map::new();
                if let Some(l) = label {
                    params.insert("display_text".into(), json!(l.value));
                }
                if let Some(t) = ttl {
                    params.insert("ttl_minutes".into(), json!(t.ms / 60_000));
                }
                if let Some(p) = payload {
                    params.insert("payload".into(), json!(p.value));
                }
                let mut act = json!({"name": "voice_call"});
                if !params.is_empty() {
                    act["parameters"] = Value::Object(params);
                }
                let text = body
                    .as_ref()
                    .map(|b| b.value.as_str())
                    .unwrap_or("You can call us on WhatsApp now.");
                let msg = json!({
                    "messaging_product": "whatsapp", "recipient_type": "individual", "to": self.to(to)?,
                    "type": "interactive",
                    "interactive": {"type": "voice_call", "body": {"text": text}, "action": act}
                });
                self.graph("POST", &self.messages_path(), Some(&msg)).await
            }
            BusinessAction::SendText { to, text } => {
                let msg = json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": self.to(to)?,
                    "type": "text", "text": {"body": text.value}});
                self.graph("POST", &self.messages_path(), Some(&msg)).await
            }
            BusinessAction::AskPermission { to, body } => {
                let mut inter = json!({"type": "call_permission_request", "action": {"name": "call_permission_request"}});
                if let Some(b) = body {
                    inter["body"] = json!({"text": b.value});
                }
                let msg = json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": self.to(to)?,
                    "type": "interactive", "interactive": inter});
                self.graph("POST", &self.messages_path(), Some(&msg)).await
            }
            BusinessAction::CreateTemplate {
                name,
                label,
                body,
                ttl,
                category,
                language,
            } => {
                let mut button = json!({"type": "voice_call", "text": label.as_ref().map(|l| l.value.as_str()).unwrap_or("Call Now")});
                if let Some(t) = ttl {
                    button["ttl_minutes"] = json!(t.ms / 60_000);
                }
                let tpl = json!({
                    "name": name.value,
                    "category": category.as_ref().map(|c| c.text.as_str()).unwrap_or("UTILITY"),
                    "language": language.as_ref().map(|l| l.value.as_str()).unwrap_or("en"),
                    "components": [
                        {"type": "BODY", "text": body.as_ref().map(|b| b.value.as_str()).unwrap_or("You can call us on WhatsApp now.")},
                        {"type": "BUTTONS", "buttons": [button]}
                    ]
                });
                let path = format!("/{GRAPH_VERSION}/{}/message_templates", self.waba_id);
                self.graph("POST", &path, Some(&tpl)).await
            }
            BusinessAction::SendTemplate {
                to,
                name,
                language,
                payload,
                ttl,
            } => {
                let mut params = Vec::new();
                if let Some(t) = ttl {
                    params.push(json!({"type": "ttl_minutes", "ttl_minutes": t.ms / 60_000}));
                }
                if let Some(p) = payload {
                    params.push(json!({"type": "payload", "payload": p.value}));
                }
                let mut tpl = json!({"name": name.value, "language": {"code": language.as_ref().map(|l| l.value.as_str()).unwrap_or("en")}});
                if !params.is_empty() {
                    tpl["components"] =
                        json!([{"type": "button", "sub_type": "voice_call", "parameters": params}]);
                }
                let msg = json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": self.to(to)?,
                    "type": "template", "template": tpl});
                self.graph("POST", &self.messages_path(), Some(&msg)).await
            }
            BusinessAction::Call { to, callback } => {
                let mut body = json!({"messaging_product": "whatsapp", "to": self.to(to)?, "action": "connect",
                    "session": {"sdp_type": "offer", "sdp": SDP}});
                if let Some(c) = callback {
                    body["biz_opaque_callback_data"] = json!(c.value);
                }
                self.graph("POST", &self.calls_path(), Some(&body)).await
            }
            BusinessAction::CallAction {
                verb,
                call,
                callback,
            } => {
                let mut body = json!({"messaging_product": "whatsapp", "call_id": self.var(call)?, "action": verb.action()});
                if matches!(verb, CallVerb::PreAccept | CallVerb::Accept) {
                    body["session"] = json!({"sdp_type": "answer", "sdp": SDP});
                }
                if let Some(c) = callback {
                    body["biz_opaque_callback_data"] = json!(c.value);
                }
                self.graph("POST", &self.calls_path(), Some(&body)).await
            }
            BusinessAction::CheckPermission { user } => {
                let path = format!(
                    "/{GRAPH_VERSION}/{}/call_permissions?user_wa_id={}",
                    self.phone_number_id,
                    self.user(user)?
                );
                self.graph("GET", &path, None).await
            }
            BusinessAction::SetCalling { enabled } => {
                let status = if *enabled { "ENABLED" } else { "DISABLED" };
                let path = format!("/{GRAPH_VERSION}/{}/settings", self.phone_number_id);
                self.graph("POST", &path, Some(&json!({"calling": {"status": status}})))
                    .await
            }
            BusinessAction::UpdateSettings { json } => {
                let body = self.pattern(json)?;
                let path = format!("/{GRAPH_VERSION}/{}/settings", self.phone_number_id);
                self.graph("POST", &path, Some(&body)).await
            }
            BusinessAction::ReadSettings => {
                let path = format!("/{GRAPH_VERSION}/{}/settings", self.phone_number_id);
                self.graph("GET", &path, None).await
            }
            BusinessAction::Request { method, path, body } => {
                let body = body.as_ref().map(|b| self.pattern(b)).transpose()?;
                let full = self.graph_path(&path.value);
                self.graph(&method.text, &full, body.as_ref()).await
            }
        }
    }

    /// Resolves a path written in a scenario to a full Graph path.
    fn graph_path(&self, p: &str) -> String {
        let versioned = p.len() > 2 && p.starts_with("/v") && p.as_bytes()[2].is_ascii_digit();
        if versioned {
            p.to_string()
        } else if p.starts_with("/message_templates") {
            format!("/{GRAPH_VERSION}/{}{p}", self.waba_id)
        } else if ["/messages", "/calls", "/settings", "/call_permissions"]
            .iter()
            .any(|s| p.starts_with(s))
        {
            format!("/{GRAPH_VERSION}/{}{p}", self.phone_number_id)
        } else {
            format!("/{GRAPH_VERSION}{p}")
        }
    }

    async fn user_action(&mut self, wa_id: &str, action: &UserAction) -> Result<Reply, String> {
        let user_path = |rest: &str| format!("/users/{wa_id}/{rest}");
        match action {
            UserAction::Say(t) => {
                self.admin(
                    "POST",
                    &user_path("messages"),
                    Some(&json!({"text": t.value, "phone_number_id": self.phone_number_id})),
                )
                .await
            }
            UserAction::Tap(m) => {
                self.admin(
                    "POST",
                    &user_path("tap"),
                    Some(&json!({"message_id": self.var(m)?})),
                )
                .await
            }
            UserAction::OpenLink(url) => {
                self.admin(
                    "POST",
                    &user_path("open-link"),
                    Some(&json!({"url": url.value})),
                )
                .await
            }
            UserAction::OpenCallLink { number, payload } => {
                let number = number
                    .as_ref()
                    .map(|n| n.value.clone())
                    .unwrap_or_else(|| self.display_number.clone());
                let mut url = format!("https://wa.me/call/{number}");
                if let Some(p) = payload {
                    url.push_str("?biz_payload=");
                    url.push_str(&percent_encode(&p.value));
                }
                self.admin("POST", &user_path("open-link"), Some(&json!({"url": url})))
                    .await
            }
            UserAction::CallBusiness => {
                self.admin(
                    "POST",
                    &user_path("call"),
                    Some(&json!({"phone_number_id": self.phone_number_id})),
                )
                .await
            }
            UserAction::HangUp(c) => {
                self.admin(
                    "POST",
                    &format!("/calls/{}/hangup", self.var(c)?),
                    Some(&json!({})),
                )
                .await
            }
            UserAction::Answer(c) => {
                self.admin(
                    "POST",
                    &format!("/calls/{}/answer", self.var(c)?),
                    Some(&json!({})),
                )
                .await
            }
            UserAction::Decline(c) => {
                self.admin(
                    "POST",
                    &format!("/calls/{}/decline", self.var(c)?),
                    Some(&json!({})),
                )
                .await
            }
            UserAction::ReplyPermission {
                accept,
                request,
                permanent,
            } => {
                let mut body = json!({"response": if *accept { "accept" } else { "reject" }, "permanent": permanent});
                match request {
                    // The request names the number it came from.
                    Some(r) => body["message_id"] = json!(self.var(r)?),
                    // From the business's profile: the number the story is about.
                    None => body["phone_number_id"] = json!(self.phone_number_id),
                }
                self.admin("POST", &user_path("permission-reply"), Some(&body))
                    .await
            }
            UserAction::Read(m) => {
                self.admin(
                    "POST",
                    &user_path("read"),
                    Some(&json!({"message_id": self.var(m)?})),
                )
                .await
            }
        }
    }

    fn expect_response(&self, r: &ResponseExpect) -> Result<(), String> {
        let Some(reply) = &self.last else {
            return Err("there is no response to check: the step before made no request".into());
        };
        let got = || format!("got HTTP {}: {}", reply.status, summarize(&reply.body));
        match r {
            ResponseExpect::Status(s) => {
                if u64::from(reply.status) != s.value {
                    return Err(format!("expected HTTP {}, {}", s.value, got()));
                }
            }
            ResponseExpect::Success => {
                if !reply.is_success() {
                    return Err(format!("expected a 2xx response, {}", got()));
                }
            }
            ResponseExpect::Error { code, status } => {
                if reply.is_success() {
                    return Err(format!(
                        "expected an error{}, {}",
                        code.as_ref()
                            .map(|c| format!(" with code {}", c.value))
                            .unwrap_or_default(),
                        got()
                    ));
                }
                if let Some(c) = code {
                    if reply.error_code() != Some(c.value) {
                        let had = reply
                            .error_code()
                            .map(|c| c.to_string())
                            .unwrap_or_else(|| "none".into());
                        return Err(format!(
                            "expected error code {}, got code {had} (HTTP {}):\n    {}",
                            c.value,
                            reply.status,
                            summarize(&reply.body)
                        ));
                    }
                }
                if let Some(s) = status {
                    if u64::from(reply.status) != s.value {
                        return Err(format!("expected HTTP {}, {}", s.value, got()));
                    }
                }
            }
            ResponseExpect::Body(j) => {
                let pat = self.pattern(j)?;
                let diff = best_match(&pat, &reply.body);
                if !diff.is_empty() {
                    return Err(format!(
                        "expected the response to contain {}\n  the response (HTTP {}) differs:\n{}",
                        pat,
                        reply.status,
                        mismatch_lines(&diff)
                    ));
                }
            }
        }
        Ok(())
    }

    async fn refresh_webhooks(&mut self) -> Result<(), String> {
        let path = format!("/webhooks?since={}", self.webhook_max_seq);
        let log: WebhookLog = self.admin_answer(&path).await?;
        for d in log.deliveries {
            if d.seq <= self.webhook_max_seq {
                continue;
            }
            self.webhook_max_seq = d.seq;
            // The log's `event`, and what the body says happened when that reads
            // differently (`status_sent` is also `sent`).
            let mut events = vec![d.event];
            if let Some(e) = event_of(&d.body) {
                if !events.iter().any(|x| x.eq_ignore_ascii_case(&e)) {
                    events.push(e);
                }
            }
            self.deliveries.push(Delivery {
                seq: d.seq,
                field: d.field,
                events,
                body: d.body,
                state: d.state,
            });
        }
        Ok(())
    }

    async fn refresh_requests(&mut self) -> Result<(), String> {
        let path = format!("/requests?since={}", self.request_max_seq);
        let log: RequestLog = self.admin_answer(&path).await?;
        for r in log.requests {
            if r.seq <= self.request_max_seq {
                continue;
            }
            self.request_max_seq = r.seq;
            self.requests.push(Journaled {
                seq: r.seq,
                method: r.method,
                path: r.path,
                body: r.body,
                reply: Reply {
                    status: r.status,
                    body: r.response,
                },
            });
        }
        Ok(())
    }

    fn webhook_criteria(&self, exp: &WebhookExpect) -> Result<Criteria, String> {
        let subject = match &exp.subject {
            Some(Subject::Var(v)) => Some((format!("${}", v.name), self.var(v)?)),
            Some(Subject::User(n)) => Some((n.text.clone(), self.user(n)?)),
            None => None,
        };
        Ok(Criteria {
            field: exp.field.text.clone(),
            event: exp.event.as_ref().map(|e| e.text.clone()),
            subject,
            with: exp.with.as_ref().map(|j| self.pattern(j)).transpose()?,
            without: exp.without.iter().map(|t| t.value.clone()).collect(),
        })
    }

    #[allow(clippy::disallowed_methods, reason = "real-clock `within` and grace")]
    async fn expect_webhook(
        &mut self,
        index: usize,
        then: bool,
        exp: &WebhookExpect,
    ) -> Result<(), String> {
        let crit = self.webhook_criteria(exp)?;
        let after = if then { self.last_webhook_seq } else { None };
        match &exp.quant {
            Quant::A => {
                let within = exp.within.as_ref().map(|d| d.ms).unwrap_or(0);
                let virtual_clock = if within > 0 {
                    self.is_virtual().await?
                } else {
                    false
                };
                let started = Instant::now();
                let mut advanced = 0u64;
                let mut grace_start: Option<Instant> = None;
                loop {
                    self.refresh_webhooks().await?;
                    let found = self.deliveries.iter().find(|d| {
                        !self.consumed.contains_key(&d.seq)
                            && is_after(after, d.seq)
                            && crit.score(d).matched
                    });
                    if let Some(d) = found {
                        let (seq, id) = (d.seq, crit.bound_id(d));
                        self.consumed.insert(seq, index);
                        self.last_webhook_seq = Some(seq);
                        return self.bind(&exp.bind, id, "the matched webhook");
                    }
                    if virtual_clock && advanced < within {
                        // Step through the window so the match lands close to when it was due.
                        let step = (within / 20)
                            .max(1000)
                            .min(within - advanced)
                            .div_ceil(1000)
                            * 1000;
                        self.advance(step).await?;
                        advanced += step;
                        continue;
                    }
                    if !virtual_clock && (started.elapsed().as_millis() as u64) < within {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    let g = *grace_start.get_or_insert_with(Instant::now);
                    if g.elapsed() < self.opts.grace {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    return Err(self.webhook_miss(exp, &crit, after));
                }
            }
            Quant::No => {
                if let Some(d) = &exp.within {
                    self.let_time_pass(d.ms).await?;
                }
                self.refresh_webhooks().await?;
                let hits: Vec<&Delivery> = self
                    .deliveries
                    .iter()
                    .filter(|d| {
                        !self.consumed.contains_key(&d.seq)
                            && is_after(after, d.seq)
                            && crit.score(d).matched
                    })
                    .collect();
                if let Some(first) = hits.first() {
                    return Err(format!(
                        "expected {}, but {} arrived; the first:\n    {}",
                        crit.describe("no", exp.within.as_ref()),
                        plural(hits.len(), "matching webhook"),
                        delivery_line(first, &self.consumed)
                    ) + &format!("\n    body: {}", summarize(&first.body)));
                }
                Ok(())
            }
            Quant::Exactly(n) => {
                if let Some(d) = &exp.within {
                    self.let_time_pass(d.ms).await?;
                }
                self.refresh_webhooks().await?;
                let hits: Vec<&Delivery> = self
                    .deliveries
                    .iter()
                    .filter(|d| is_after(after, d.seq) && crit.score(d).matched)
                    .collect();
                if hits.len() as u64 != n.value {
                    let mut msg = format!(
                        "expected {}, but {} arrived",
                        crit.describe(&n.value.to_string(), exp.within.as_ref()),
                        hits.len()
                    );
                    for d in hits.iter().take(10) {
                        let _ = write!(msg, "\n    {}", delivery_line(d, &self.consumed));
                    }
                    if hits.is_empty() {
                        msg.push_str(&self.closest_delivery(&crit, after));
                    }
                    return Err(msg);
                }
                Ok(())
            }
        }
    }

    fn webhook_miss(&self, exp: &WebhookExpect, crit: &Criteria, after: Option<u64>) -> String {
        let mut msg = format!("expected {}", crit.describe("a", exp.within.as_ref()));
        if let Some(a) = after {
            let _ = write!(msg, ", after webhook #{a}");
        }
        msg.push_str(&self.closest_delivery(crit, after));
        msg
    }

    /// "the closest delivered webhook was …" with a field-level diff.
    fn closest_delivery(&self, crit: &Criteria, after: Option<u64>) -> String {
        if self.deliveries.is_empty() {
            return "\n  no webhook was delivered at all in this scenario".into();
        }
        let best = self
            .deliveries
            .iter()
            .map(|d| {
                let mut s = crit.score(d);
                if self.consumed.contains_key(&d.seq) {
                    s.rank -= 3;
                    s.notes.push(format!(
                        "already matched by the expectation on line {}",
                        self.src_line(self.consumed[&d.seq])
                    ));
                }
                if after.is_some_and(|a| d.seq <= a) {
                    s.rank -= 3;
                    s.notes.push(format!(
                        "arrived before webhook #{} that `then` must follow",
                        after.unwrap_or_default()
                    ));
                }
                (s, d)
            })
            .max_by_key(|(s, d)| (s.rank, std::cmp::Reverse(d.seq)))
            .expect("not empty");
        let (score, d) = best;
        let mut msg = format!(
            "\n  the closest delivered webhook was {}:",
            delivery_line(d, &self.consumed)
        );
        for n in &score.notes {
            let _ = write!(msg, "\n    {n}");
        }
        let others: Vec<String> = self
            .deliveries
            .iter()
            .filter(|o| o.seq != d.seq)
            .take(8)
            .map(|o| {
                format!(
                    "#{} {} {}",
                    o.seq,
                    o.field,
                    o.events.first().map(String::as_str).unwrap_or("")
                )
            })
            .collect();
        if !others.is_empty() {
            let more = self.deliveries.len() - 1 - others.len();
            let _ = write!(
                msg,
                "\n  other webhooks delivered: {}{}",
                others.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
        msg
    }

    /// Maps a step index to its line in the file.
    fn src_line(&self, step: usize) -> String {
        self.step_lines
            .get(step)
            .map(|l| l.to_string())
            .unwrap_or_else(|| "?".into())
    }

    #[allow(clippy::disallowed_methods, reason = "the app runs in real time")]
    async fn expect_app(
        &mut self,
        index: usize,
        then: bool,
        exp: &AppExpect,
    ) -> Result<Option<Reply>, String> {
        let m = self.app_criteria(exp)?;
        let after = if then { self.last_request_seq } else { None };
        let within = exp.within.as_ref().map(|d| Duration::from_millis(d.ms));
        if exp.negated {
            if let Some(w) = within {
                tokio::time::sleep(w).await;
            }
            self.refresh_requests().await?;
            if let Some(r) = self
                .requests
                .iter()
                .find(|r| is_after(after, r.seq) && m.score(r).0)
            {
                return Err(format!(
                    "expected the app not to {}{}, but it did (request #{}: {} {} {})",
                    m.what,
                    exp.within
                        .as_ref()
                        .map(|d| format!(" within {}", format_duration(d.ms)))
                        .unwrap_or_default(),
                    r.seq,
                    r.method,
                    r.path,
                    summarize(&r.body)
                ));
            }
            return Ok(None);
        }
        let deadline = Instant::now() + within.unwrap_or(self.opts.app_default_within);
        loop {
            self.refresh_requests().await?;
            let found = self.requests.iter().find(|r| {
                !self.requests_consumed.contains_key(&r.seq)
                    && is_after(after, r.seq)
                    && m.score(r).0
            });
            if let Some(r) = found {
                let (seq, reply) = (r.seq, r.reply.clone());
                let id = match &exp.action {
                    AppAction::CallAction(_, v) => Some(self.var(v)?),
                    _ => first_id(&reply.body),
                };
                self.requests_consumed.insert(seq, index);
                self.last_request_seq = Some(seq);
                self.bind(&exp.bind, id, "the app's request")?;
                return Ok(Some(reply));
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let limit = within.unwrap_or(self.opts.app_default_within);
        let mut msg = format!(
            "expected the app to {} within {}",
            m.what,
            format_duration(limit.as_millis() as u64)
        );
        if let Some(a) = after {
            let _ = write!(msg, ", after request #{a}");
        }
        match self
            .requests
            .iter()
            .map(|r| (m.score(r), r))
            .max_by_key(|((_, rank, _), r)| (*rank, r.seq))
        {
            None => msg.push_str("\n  the app made no Graph request at all"),
            Some(((_, _, diffs), r)) => {
                let _ = write!(
                    msg,
                    "\n  the closest request the app made was #{}: {} {} (answered HTTP {})",
                    r.seq, r.method, r.path, r.reply.status
                );
                for d in diffs {
                    let _ = write!(msg, "\n    {d}");
                }
            }
        }
        Err(msg)
    }

    fn app_criteria(&self, exp: &AppExpect) -> Result<AppCriteria, String> {
        let mut fields: Vec<(String, Value)> = Vec::new();
        let (method, suffix, what) = match &exp.action {
            AppAction::CallAction(v, call) => {
                let id = self.var(call)?;
                fields.push(("action".into(), json!(v.action())));
                fields.push(("call_id".into(), json!(id)));
                (
                    "POST".to_string(),
                    "/calls".to_string(),
                    format!("{} ${} ({id})", v.infinitive(), call.name),
                )
            }
            AppAction::Call(to) => {
                fields.push(("action".into(), json!("connect")));
                fields.push(("to".into(), json!(self.user(to)?)));
                ("POST".into(), "/calls".into(), format!("call {}", to.text))
            }
            AppAction::SendButton { to, payload } => {
                fields.push(("to".into(), json!(self.user(to)?)));
                fields.push(("interactive.type".into(), json!("voice_call")));
                if let Some(p) = payload {
                    fields.push((
                        "interactive.action.parameters.payload".into(),
                        json!(p.value),
                    ));
                }
                (
                    "POST".into(),
                    "/messages".into(),
                    format!("send {} a call button", to.text),
                )
            }
            AppAction::SendTemplate { to, name } => {
                fields.push(("to".into(), json!(self.user(to)?)));
                fields.push(("template.name".into(), json!(name.value)));
                (
                    "POST".into(),
                    "/messages".into(),
                    format!("send {} template {}", to.text, quote(&name.value)),
                )
            }
            AppAction::SendMessage { to } => {
                fields.push(("to".into(), json!(self.user(to)?)));
                (
                    "POST".into(),
                    "/messages".into(),
                    format!("send {} a message", to.text),
                )
            }
            AppAction::AskPermission { to } => {
                fields.push(("to".into(), json!(self.user(to)?)));
                fields.push(("interactive.type".into(), json!("call_permission_request")));
                (
                    "POST".into(),
                    "/messages".into(),
                    format!("ask {} for call permission", to.text),
                )
            }
            AppAction::Request { method, path } => (
                method.text.clone(),
                path.value.clone(),
                format!("request {} {}", method.text, path.value),
            ),
        };
        Ok(AppCriteria {
            method,
            suffix,
            fields,
            with: exp.with.as_ref().map(|j| self.pattern(j)).transpose()?,
            what,
        })
    }
}

/// What a webhook expectation looks for, with variables resolved.
struct Criteria {
    field: String,
    event: Option<String>,
    /// (how the scenario named it, the id or number it stands for)
    subject: Option<(String, String)>,
    with: Option<Value>,
    without: Vec<String>,
}

struct Score {
    matched: bool,
    rank: i64,
    notes: Vec<String>,
}

impl Criteria {
    fn score(&self, d: &Delivery) -> Score {
        let mut rank = 0i64;
        let mut notes = Vec::new();
        let mut ok = true;
        if d.field == self.field {
            rank += 100;
        } else {
            ok = false;
            notes.push(format!(
                "field: expected `{}`, got `{}`",
                self.field, d.field
            ));
        }
        if let Some(e) = &self.event {
            if d.events.iter().any(|x| x.eq_ignore_ascii_case(e)) {
                rank += 10;
            } else {
                ok = false;
                notes.push(format!(
                    "event: expected `{e}`, got `{}`",
                    d.events.join("` / `")
                ));
            }
        }
        if let Some((name, id)) = &self.subject {
            if mentions(&d.body, id) {
                rank += 10;
            } else {
                ok = false;
                notes.push(format!("for {name}: the webhook does not mention {id}"));
            }
        }
        if let Some(p) = &self.with {
            let diff = best_match(p, &d.body);
            if diff.is_empty() {
                rank += 10;
            } else {
                ok = false;
                rank -= diff.len() as i64;
                notes.extend(diff.iter().map(Mismatch::to_string));
            }
        }
        for key in &self.without {
            for (path, v) in find_key(&d.body, key) {
                ok = false;
                rank -= 1;
                notes.push(format!("{path}: expected absent, got {}", summarize(&v)));
            }
        }
        Score {
            matched: ok,
            rank,
            notes,
        }
    }

    /// What `as $name` binds: the id of the call, status or message the webhook is about.
    fn bound_id(&self, d: &Delivery) -> Option<String> {
        let value = get_path(&d.body, "entry[0].changes[0].value")?;
        for key in ["calls", "statuses", "messages"] {
            if let Some(id) = value
                .get(key)
                .and_then(|a| a.get(0))
                .and_then(|o| o.get("id"))
                .and_then(id_string)
            {
                return Some(id);
            }
        }
        value.get("message_template_id").and_then(id_string)
    }

    fn describe(&self, quant: &str, within: Option<&Dur>) -> String {
        let plural = quant != "a" && quant != "1";
        let mut s = format!(
            "{quant} `{}` webhook{}",
            self.field,
            if plural { "s" } else { "" }
        );
        if let Some(e) = &self.event {
            let _ = write!(s, " `{e}`");
        }
        if let Some((name, id)) = &self.subject {
            let _ = write!(s, " for {name} ({id})");
        }
        if let Some(p) = &self.with {
            let _ = write!(s, " with {p}");
        }
        if !self.without.is_empty() {
            let _ = write!(s, " without {}", self.without.join(", "));
        }
        if let Some(d) = within {
            let _ = write!(s, " within {}", format_duration(d.ms));
        }
        s
    }
}

/// What an app expectation looks for in the request journal.
struct AppCriteria {
    method: String,
    suffix: String,
    /// Dotted paths into the request body and the value each must have.
    fields: Vec<(String, Value)>,
    with: Option<Value>,
    what: String,
}

impl AppCriteria {
    /// (matched, rank, differences)
    fn score(&self, r: &Journaled) -> (bool, i64, Vec<String>) {
        let mut diffs = Vec::new();
        let mut rank = 0;
        let path = r.path.split('?').next().unwrap_or("");
        if r.method.eq_ignore_ascii_case(&self.method) && path.ends_with(&self.suffix) {
            rank += 100;
        } else {
            diffs.push(format!(
                "request: expected {} …{}, got {} {}",
                self.method, self.suffix, r.method, r.path
            ));
        }
        for (p, want) in &self.fields {
            let got = get_path(&r.body, p);
            let same = match (got, want) {
                (Some(Value::String(g)), Value::String(w)) if p == "to" => digits(g) == digits(w),
                (Some(g), w) => g == w,
                (None, _) => false,
            };
            if same {
                rank += 10;
            } else {
                diffs.push(format!(
                    "{p}: expected {want}, got {}",
                    got.map(summarize)
                        .unwrap_or_else(|| "nothing (key absent)".into())
                ));
            }
        }
        if let Some(w) = &self.with {
            let d = best_match(w, &r.body);
            rank -= d.len() as i64;
            diffs.extend(d.iter().map(Mismatch::to_string));
        }
        (diffs.is_empty(), rank, diffs)
    }
}

/// Whether `seq` comes after the `then` anchor, if there is one.
fn is_after(anchor: Option<u64>, seq: u64) -> bool {
    anchor.is_none_or(|a| seq > a)
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The event a webhook body is about: a call's `event`, a status's `status`, an inbound
/// message's type (`interactive` ones by their interactive type), or a template `event`.
pub fn event_of(body: &Value) -> Option<String> {
    let value = get_path(body, "entry[0].changes[0].value")?;
    let first = |k: &str| value.get(k).and_then(|a| a.get(0));
    if let Some(e) = first("calls")
        .and_then(|c| c.get("event"))
        .and_then(Value::as_str)
    {
        return Some(e.to_string());
    }
    if let Some(s) = first("statuses")
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
    {
        return Some(s.to_string());
    }
    if let Some(m) = first("messages") {
        if let Some(t) = m.pointer("/interactive/type").and_then(Value::as_str) {
            return Some(t.to_string());
        }
        if let Some(t) = m.get("type").and_then(Value::as_str) {
            return Some(t.to_string());
        }
    }
    value
        .get("event")
        .or_else(|| value.get("type"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn delivery_line(d: &Delivery, consumed: &HashMap<u64, usize>) -> String {
    let _ = consumed;
    format!(
        "#{} `{}` {} ({})",
        d.seq,
        d.field,
        d.events
            .first()
            .map(|e| format!("`{e}`"))
            .unwrap_or_else(|| "(no event)".into()),
        d.state.as_str()
    )
}

fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The id a response names: a sent message, a started call, a created template.
fn first_id(body: &Value) -> Option<String> {
    [
        "/messages/0/id",
        "/calls/0/id",
        "/call_id",
        "/message_id",
        "/id",
    ]
    .iter()
    .find_map(|p| body.pointer(p).and_then(id_string))
}

fn mismatch_lines(diff: &[Mismatch]) -> String {
    diff.iter()
        .map(|m| format!("    {m}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// JSON on one line, cut to a readable length.
pub fn summarize(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 400 {
        format!("{}…", s.chars().take(400).collect::<String>())
    } else {
        s
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_from_the_part_of_the_body_that_says_what_happened() {
        let call =
            json!({"entry": [{"changes": [{"value": {"calls": [{"event": "terminate"}]}}]}]});
        assert_eq!(event_of(&call).as_deref(), Some("terminate"));
        let status =
            json!({"entry": [{"changes": [{"value": {"statuses": [{"status": "failed"}]}}]}]});
        assert_eq!(event_of(&status).as_deref(), Some("failed"));
        let reply = json!({"entry": [{"changes": [{"value": {"messages": [{"type": "interactive", "interactive": {"type": "call_permission_reply"}}]}}]}]});
        assert_eq!(event_of(&reply).as_deref(), Some("call_permission_reply"));
    }

    #[test]
    fn first_id_reads_graph_and_admin_responses() {
        assert_eq!(
            first_id(&json!({"messages": [{"id": "wamid.X"}]})).as_deref(),
            Some("wamid.X")
        );
        assert_eq!(
            first_id(&json!({"calls": [{"id": "wacid.Y"}]})).as_deref(),
            Some("wacid.Y")
        );
        assert_eq!(
            first_id(&json!({"call_id": "wacid.Z"})).as_deref(),
            Some("wacid.Z")
        );
        assert_eq!(first_id(&json!({"id": 123})).as_deref(), Some("123"));
    }
}
