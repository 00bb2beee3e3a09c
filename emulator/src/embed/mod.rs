//! The emulator inside a Rust test: start one on a free loopback port in the test's own
//! tokio runtime, point the code under test at its URL, act as the WhatsApp user, move
//! the clock, and wait for the webhooks and Graph requests that should follow. Dropping
//! the [`Emulator`] stops it.
//!
//! ```
//! use std::time::Duration;
//! use serde_json::json;
//! use wa_emulator::{Emulator, WebhookPattern};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), wa_emulator::Error> {
//! let emu = Emulator::start().await; // virtual clock, default tenant
//! let phone = emu.tenant().phone_number_id().clone();
//!
//! // The business (the code under test; here the test itself) sends a call button.
//! let sent = emu
//!     .graph("POST", &format!("/v21.0/{phone}/messages"), Some(&json!({
//!         "messaging_product": "whatsapp", "to": "16315551234", "type": "interactive",
//!         "interactive": {"type": "voice_call", "body": {"text": "Call us"},
//!             "action": {"name": "voice_call", "parameters": {"payload": "order-42"}}}})))
//!     .await?;
//! let button = sent["messages"][0]["id"].as_str().unwrap().into();
//!
//! // The user taps it: a user-initiated call and its connect webhook.
//! let call = emu.user("16315551234").tap(&button).await?;
//! let connect = emu
//!     .wait_for(
//!         WebhookPattern::field("calls").event("connect").call(&call)
//!             .with(json!({"cta_payload": "order-42"})),
//!         Duration::from_secs(5),
//!     )
//!     .await?;
//! assert_eq!(connect.body["entry"][0]["changes"][0]["value"]["calls"][0]["direction"], "USER_INITIATED");
//!
//! // Nobody answers: a minute later on the virtual clock the call has ended.
//! emu.advance(Duration::from_secs(61)).await?;
//! emu.wait_for_webhook(|w| w.field == "calls" && w.event == "terminate", Duration::ZERO).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Everything goes through the emulator's HTTP surfaces (the Graph API and
//! `/__emulator`, with the library's [`client`](crate::server::client)), so a test sees
//! exactly what a client on the wire sees: the same answers, the same errors, the same
//! webhooks. A refused action is a typed [`Error::Refused`] carrying the Graph error:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use wa_emulator::Emulator;
//!
//! let emu = Emulator::start().await;
//! let err = emu.user("16315551234").tap(&"wamid.unknown".into()).await.unwrap_err();
//! assert_eq!(err.refusal().unwrap().status, 404);
//! # }
//! ```
//!
//! # The clock
//!
//! The clock is virtual unless [`EmulatorBuilder::real_clock`] says otherwise: it starts at
//! [`DEFAULT_CLOCK_START_MS`] (2026-01-01T00:00:00Z) and moves only through
//! [`Emulator::advance`], firing every timer due on the way (button TTLs, ring timeouts,
//! webhook retries) in order. [`Emulator::wait_for`] on a virtual clock advances it
//! through the timeout in steps (a twentieth of it, at least a second), looking after
//! each step, as the scenario runner's `within` does; on a real clock it polls in real
//! time. While a callback URL is set, each step first gives the receiver a moment of real
//! time ([`EmulatorBuilder::settle`], 50 ms) so an app answering a webhook is heard
//! before time moves on.
//!
//! # Layout
//! - `mod.rs`: [`Emulator`], its [`EmulatorBuilder`], the tenant, user and call actions,
//!   the clock, the logs and the waits.
//! - `error.rs`: [`Error`] and [`Refusal`], the Graph error of a refused request.
//! - `expect.rs`: [`WebhookPattern`], [`RequestPattern`], the [`Expectation`] trait and
//!   the [`WaitTimeout`] report of a wait that found nothing.

mod error;
mod expect;
#[cfg(test)]
mod tests;

pub use error::{Error, Refusal};
pub use expect::{
    Expectation, LogEntry, NearMiss, Predicate, RequestPattern, WaitTimeout, WebhookPattern,
};

use crate::api::admin_types::{
    BusinessNumber, Clock, Config, LoggedRequest, LoggedWebhook, RequestLog, WebhookLog,
};
use crate::domain::ids::{AppId, CallId, MessageId, PhoneNumberId, WaId, WabaId};
use crate::domain::tenant::Behaviour;
use crate::domain::user::{Platform, User};
use crate::engine::ClockMode;
use crate::server::client::Client;
use crate::server::{self, Running, ServeOptions};
use expect::sealed::Log;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a virtual clock starts unless told otherwise: 2026-01-01T00:00:00Z, so
/// timestamps (and everything derived from them) are the same on every run.
pub const DEFAULT_CLOCK_START_MS: u64 = 1_767_225_600_000;

/// The seed of every generated id unless told otherwise: same seed, same requests, same
/// `wamid`s and `wacid`s.
pub const DEFAULT_SEED: u64 = 1;

/// How often a wait looks at a log while real time passes.
const POLL: Duration = Duration::from_millis(10);

/// Options for [`Emulator`]; [`EmulatorBuilder::start`] starts it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use wa_emulator::Emulator;
///
/// let emu = Emulator::builder()
///     .seed(7)
///     .options(|o| o.behaviour.ring_timeout_secs = 45)
///     .start()
///     .await;
/// let config = emu.config().await.unwrap();
/// assert_eq!(config.behaviour.ring_timeout_secs, 45);
/// # }
/// ```
#[must_use = "a builder does nothing until started"]
pub struct EmulatorBuilder {
    opts: ServeOptions,
    webhook_url: Option<String>,
    settle: Duration,
}

impl EmulatorBuilder {
    /// The seed of every generated id ([`DEFAULT_SEED`] by default).
    pub fn seed(mut self, seed: u64) -> Self {
        self.opts.seed = seed;
        self
    }

    /// Where the virtual clock starts, in Unix milliseconds ([`DEFAULT_CLOCK_START_MS`]
    /// by default).
    pub fn clock_start_ms(mut self, unix_ms: u64) -> Self {
        self.opts.clock_start_ms = Some(unix_ms);
        self
    }

    /// The system clock instead of a virtual one: time passes by itself and
    /// [`Emulator::advance`] is refused.
    pub fn real_clock(mut self) -> Self {
        self.opts.clock = ClockMode::Real;
        self.opts.clock_start_ms = None;
        self
    }

    /// The behaviour switches (`[behaviour]` of the TOML configuration).
    pub fn behaviour(mut self, behaviour: Behaviour) -> Self {
        self.opts.behaviour = behaviour;
        self
    }

    /// The callback URL webhooks go to; its verification handshake must succeed for the
    /// emulator to start. [`Emulator::set_webhook_url`] sets it later.
    pub fn webhook_url(mut self, url: impl Into<String>) -> Self {
        self.webhook_url = Some(url.into());
        self
    }

    /// Require this token on `/__emulator` (the handle sends it).
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.opts.admin_token = Some(token.into());
        self
    }

    /// The real time a wait on a virtual clock leaves a webhook receiver before each step
    /// of the clock, while a callback URL is set (50 ms by default).
    pub fn settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// Anything else `wa-emulator serve` can be told: tenants, behaviour, limits.
    pub fn options(mut self, change: impl FnOnce(&mut ServeOptions)) -> Self {
        change(&mut self.opts);
        self
    }

    /// Starts the emulator on the current tokio runtime.
    ///
    /// # Panics
    /// When it cannot start (no free port, a webhook handshake that fails): a test has
    /// nothing to do then. [`try_start`](Self::try_start) returns the error instead.
    pub async fn start(self) -> Emulator {
        match self.try_start().await {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts the emulator on the current tokio runtime.
    pub async fn try_start(self) -> Result<Emulator, Error> {
        let clock = self.opts.clock;
        let admin_token = self.opts.admin_token.clone();
        let running = server::spawn(self.opts).await.map_err(Error::Start)?;
        let url = running.url();
        let mut emu = Emulator {
            admin_url: format!("{url}/__emulator"),
            url,
            running,
            http: Client::new(),
            admin_token,
            // Filled in from `GET /__emulator/config` just below.
            tenant: Tenant {
                app_id: AppId::from(""),
                app_secret: String::new(),
                access_token: String::new(),
                verify_token: String::new(),
                waba_id: WabaId::from(""),
                phone_numbers: Vec::new(),
            },
            clock,
            settle: self.settle,
        };
        let config = emu.config().await?;
        emu.tenant = Tenant::from_config(config).map_err(Error::Start)?;
        if let Some(u) = &self.webhook_url {
            emu.set_webhook_url(u)
                .await
                .map_err(|e| Error::Start(format!("setting the callback URL {u}: {e}")))?;
        }
        Ok(emu)
    }
}

/// Who the emulator pretends to be: the default tenant's app, WABA and numbers, as
/// `GET /__emulator/config` says. Point the code under test at these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub app_id: AppId,
    /// Signs every webhook (`X-Hub-Signature-256`).
    pub app_secret: String,
    /// The bearer token Graph requests must carry.
    pub access_token: String,
    /// What the verification handshake sends as `hub.verify_token`.
    pub verify_token: String,
    pub waba_id: WabaId,
    /// Every business number, first one first, with whether it can call users
    /// ([`BusinessNumber::business_initiated_calling`]).
    pub phone_numbers: Vec<BusinessNumber>,
}

impl Tenant {
    fn from_config(c: Config) -> Result<Tenant, String> {
        let missing = |what: &str| format!("GET /__emulator/config has no {what}");
        if c.phone_numbers.is_empty() {
            return Err(missing("business phone number"));
        }
        Ok(Tenant {
            app_id: c.app_id.ok_or_else(|| missing("app_id"))?,
            app_secret: c.app_secret.ok_or_else(|| missing("app_secret"))?,
            access_token: c.access_token.ok_or_else(|| missing("access_token"))?,
            verify_token: c.verify_token.ok_or_else(|| missing("verify_token"))?,
            waba_id: c.waba_id.ok_or_else(|| missing("waba_id"))?,
            phone_numbers: c.phone_numbers,
        })
    }

    /// The first number (`106540352242922` by default: a +1 number, user-initiated calls
    /// only).
    pub fn phone_number_id(&self) -> &PhoneNumberId {
        &self.phone_numbers[0].id
    }

    /// The first number that can call users and ask for call permission
    /// (`110972043181256`, a UK number, by default).
    pub fn calling_phone_number_id(&self) -> Option<&PhoneNumberId> {
        self.phone_numbers
            .iter()
            .find(|n| n.business_initiated_calling)
            .map(|n| &n.id)
    }
}

/// A running emulator on a loopback port. Dropping it stops the emulator.
///
/// Start one with [`Emulator::start`] (or [`Emulator::builder`]), give the code under
/// test [`url`](Self::url) as its Graph base URL and the [`tenant`](Self::tenant)'s ids
/// and token, and act as the user with [`user`](Self::user).
pub struct Emulator {
    running: Running,
    url: String,
    /// `{url}/__emulator`: where the admin routes of this emulator's tenant live.
    admin_url: String,
    http: Client,
    admin_token: Option<String>,
    tenant: Tenant,
    clock: ClockMode,
    settle: Duration,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("url", &self.url)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Starts an emulator with the default tenant, a virtual clock and
    /// [`DEFAULT_SEED`], on a free loopback port of the current tokio runtime.
    ///
    /// # Panics
    /// When it cannot start; see [`EmulatorBuilder::try_start`].
    pub async fn start() -> Emulator {
        Self::builder().start().await
    }

    /// Options first: seed, clock, behaviour, a callback URL, anything `serve` takes.
    pub fn builder() -> EmulatorBuilder {
        let mut opts = ServeOptions::for_tests(ClockMode::Virtual, DEFAULT_SEED);
        opts.clock_start_ms = Some(DEFAULT_CLOCK_START_MS);
        EmulatorBuilder {
            opts,
            webhook_url: None,
            settle: Duration::from_millis(50),
        }
    }

    /// `http://127.0.0.1:PORT`: the Graph base URL (in place of
    /// `https://graph.facebook.com`), versioned and unversioned paths alike.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The app, WABA and numbers, with the tokens and secrets.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// Whether the clock is virtual.
    pub fn clock_mode(&self) -> ClockMode {
        self.clock
    }

    /// Stops accepting requests and waits for the emulator's tasks (dropping it stops it
    /// too, without waiting).
    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }

    // ---- raw doors ----

    /// A Graph request with the tenant's token; `path` is `/v21.0/…` or unversioned. The
    /// answer's JSON on 2xx, [`Error::Refused`] with the Graph error otherwise.
    pub async fn graph(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        let url = format!("{}{}", self.url, slash(path));
        self.exchange(method, &url, Some(&self.tenant.access_token), body)
            .await
    }

    /// An admin request, `path` under `/__emulator` (`"/calls"`, `"/users"`); see
    /// `ADMIN-API.md`. The answer's JSON on 2xx, [`Error::Refused`] otherwise.
    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        let url = format!("{}{}", self.admin_url, slash(path));
        self.exchange(method, &url, self.admin_token.as_deref(), body)
            .await
    }

    async fn exchange(
        &self,
        method: &str,
        url: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        let r = self.http.json(method, url, bearer, body).await?;
        if r.is_success() {
            Ok(r.json())
        } else {
            Err(Error::Refused(Box::new(Refusal::from_response(
                format!("{method} {url}"),
                &r,
            ))))
        }
    }

    /// An admin answer read as `T`.
    async fn admin_as<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, Error> {
        let v = self.admin(method, path, body).await?;
        serde_json::from_value(v.clone()).map_err(|e| Error::Unreadable {
            request: format!("{method} {}{}", self.admin_url, path),
            problem: format!("not the answer expected ({e})"),
            body: v.to_string(),
        })
    }

    // ---- configuration ----

    /// `GET /__emulator/config`, now.
    pub async fn config(&self) -> Result<Config, Error> {
        self.admin_as("GET", "/config", None).await
    }

    /// Sends webhooks to `url` from now on, after Meta's GET verification handshake
    /// (`hub.mode`, `hub.verify_token`, `hub.challenge`) succeeded; webhooks made while
    /// no URL was set go out then. A failed handshake is refused with what the receiver
    /// answered, and the URL is not set.
    pub async fn set_webhook_url(&self, url: &str) -> Result<(), Error> {
        self.admin("PUT", "/webhook", Some(&json!({ "url": url })))
            .await
            .map(drop)
    }

    /// No callback URL: webhooks are held (logged, not sent) again.
    pub async fn clear_webhook_url(&self) -> Result<(), Error> {
        self.admin("PUT", "/webhook", Some(&json!({ "url": null })))
            .await
            .map(drop)
    }

    /// Back to the initial state (users, messages, calls, logs); the clock stays.
    pub async fn reset(&self) -> Result<(), Error> {
        self.admin("POST", "/reset", None).await.map(drop)
    }

    // ---- the user ----

    /// A simulated WhatsApp user, by number (`wa_id`); created on first sight as an
    /// Android 2.26 client, or as [`UserRef::set`] says.
    pub fn user(&self, wa_id: impl Into<WaId>) -> UserRef<'_> {
        UserRef {
            emu: self,
            wa_id: wa_id.into(),
        }
    }

    /// The user answers a business-initiated call (with an SDP answer of the emulator's).
    pub async fn answer(&self, call: &CallId) -> Result<CallOutcome, Error> {
        self.call_action(call, "answer", None).await
    }

    /// The user answers a business-initiated call with this SDP answer.
    pub async fn answer_with_sdp(&self, call: &CallId, sdp: &str) -> Result<CallOutcome, Error> {
        self.call_action(call, "answer", Some(json!({ "sdp": sdp })))
            .await
    }

    /// The user declines a business-initiated call.
    pub async fn decline(&self, call: &CallId) -> Result<CallOutcome, Error> {
        self.call_action(call, "decline", None).await
    }

    /// The user hangs up (or cancels a call still ringing).
    pub async fn hang_up(&self, call: &CallId) -> Result<CallOutcome, Error> {
        self.call_action(call, "hangup", None).await
    }

    /// The user's client fails the call with a client-side error code (138019–138023).
    pub async fn fail_call(&self, call: &CallId, code: u32) -> Result<CallOutcome, Error> {
        self.call_action(call, "fail", Some(json!({ "code": code })))
            .await
    }

    async fn call_action(
        &self,
        call: &CallId,
        action: &str,
        body: Option<Value>,
    ) -> Result<CallOutcome, Error> {
        let path = format!(
            "/calls/{}/{action}",
            crate::wire::url::percent_encode(call.as_str())
        );
        self.admin_as("POST", &path, body.as_ref()).await
    }

    // ---- the clock ----

    /// The emulator's clock: its mode and what time it is.
    pub async fn clock(&self) -> Result<Clock, Error> {
        self.admin_as("GET", "/clock", None).await
    }

    /// What time it is on the emulator's clock.
    pub async fn now(&self) -> Result<SystemTime, Error> {
        let c = self.clock().await?;
        Ok(UNIX_EPOCH + Duration::from_millis(c.now_ms))
    }

    /// Moves the virtual clock on by `by` (millisecond precision), firing every timer due
    /// on the way in order and letting the webhooks due at each step go out; refused on a
    /// real clock.
    pub async fn advance(&self, by: Duration) -> Result<Clock, Error> {
        let seconds = by.as_millis() as f64 / 1000.0;
        self.admin_as(
            "POST",
            "/clock/advance",
            Some(&json!({ "seconds": seconds })),
        )
        .await
    }

    // ---- the logs ----

    /// `GET /__emulator/webhooks`: every webhook made, oldest first, with its body, exact
    /// bytes, signature, delivery state and attempts.
    pub async fn webhook_log(&self) -> Result<WebhookLog, Error> {
        self.admin_as("GET", "/webhooks", None).await
    }

    /// The webhooks of [`webhook_log`](Self::webhook_log).
    pub async fn webhooks(&self) -> Result<Vec<LoggedWebhook>, Error> {
        Ok(self.webhook_log().await?.deliveries)
    }

    /// `GET /__emulator/requests`: the Graph requests made and the answers given.
    pub async fn request_log(&self) -> Result<RequestLog, Error> {
        self.admin_as("GET", "/requests", None).await
    }

    /// The requests of [`request_log`](Self::request_log).
    pub async fn requests(&self) -> Result<Vec<LoggedRequest>, Error> {
        Ok(self.request_log().await?.requests)
    }

    async fn log<T: Log>(&self) -> Result<Vec<T>, Error> {
        let mut answer = self.admin("GET", T::PATH, None).await?;
        let list = answer[T::KEY].take();
        serde_json::from_value(list).map_err(|e| Error::Unreadable {
            request: format!("GET {}{}", self.admin_url, T::PATH),
            problem: format!("`{}` is not a list of {}s ({e})", T::KEY, T::NOUN),
            body: answer.to_string(),
        })
    }

    // ---- waiting ----

    /// Waits until the log holds an entry `expected` matches and returns it (the oldest
    /// such entry). On a virtual clock the clock is advanced through `timeout` in steps;
    /// on a real clock real time passes. Times out with [`Error::Timeout`]: what was
    /// expected, and the closest entries that did arrive with the keys that differ.
    pub async fn wait_for<E: Expectation>(
        &self,
        expected: E,
        timeout: Duration,
    ) -> Result<E::Entry, Error> {
        let mut last: Vec<E::Entry> = Vec::new();
        let waited = if self.clock == ClockMode::Virtual {
            let settle = if self.config().await?.webhook_url.is_some() {
                self.settle
            } else {
                // Nothing outside the test reacts to webhooks: no need to leave it time.
                Duration::ZERO
            };
            let mut advanced = Duration::ZERO;
            loop {
                if let Some(hit) = self.look(&expected, &mut last, settle).await? {
                    return Ok(hit);
                }
                if advanced >= timeout {
                    break;
                }
                let step = (timeout / 20)
                    .max(Duration::from_secs(1))
                    .min(timeout - advanced);
                self.advance(step).await?;
                advanced += step;
            }
            format!(
                "{} (the virtual clock advanced {})",
                shown_duration(timeout),
                shown_duration(advanced)
            )
        } else {
            if let Some(hit) = self.look(&expected, &mut last, timeout).await? {
                return Ok(hit);
            }
            format!("{} of real time", shown_duration(timeout))
        };
        Err(Error::Timeout(Box::new(WaitTimeout::new(
            &expected, waited, &last,
        ))))
    }

    /// [`wait_for`](Self::wait_for) with a closure over the delivery log:
    /// `emu.wait_for_webhook(|w| w.field == "calls" && w.event == "connect", timeout)`.
    /// A miss lists the latest webhooks; a [`WebhookPattern`] also says which keys differ.
    pub async fn wait_for_webhook(
        &self,
        accept: impl Fn(&LoggedWebhook) -> bool,
        timeout: Duration,
    ) -> Result<LoggedWebhook, Error> {
        self.wait_for(Predicate::new(accept), timeout).await
    }

    /// [`wait_for`](Self::wait_for) with a closure over the Graph request history: what
    /// the code under test asked of the Graph API.
    pub async fn wait_for_request(
        &self,
        accept: impl Fn(&LoggedRequest) -> bool,
        timeout: Duration,
    ) -> Result<LoggedRequest, Error> {
        self.wait_for(Predicate::new(accept), timeout).await
    }

    /// Reads the log once; when nothing matches, keeps reading it for up to `patience`
    /// of real time. `last` keeps the latest reading, for the report of a miss.
    async fn look<E: Expectation>(
        &self,
        expected: &E,
        last: &mut Vec<E::Entry>,
        patience: Duration,
    ) -> Result<Option<E::Entry>, Error> {
        *last = self.log::<E::Entry>().await?;
        if let Some(hit) = last.iter().find(|e| expected.matches(e)) {
            return Ok(Some(hit.clone()));
        }
        if patience.is_zero() {
            return Ok(None);
        }
        let polling = async {
            loop {
                tokio::time::sleep(POLL).await;
                *last = self.log::<E::Entry>().await?;
                if let Some(hit) = last.iter().find(|e| expected.matches(e)) {
                    return Ok(Some(hit.clone()));
                }
            }
        };
        tokio::time::timeout(patience, polling)
            .await
            .unwrap_or(Ok(None))
    }
}

/// A simulated WhatsApp user of an [`Emulator`] (see [`Emulator::user`]).
#[derive(Debug, Clone)]
pub struct UserRef<'a> {
    emu: &'a Emulator,
    wa_id: WaId,
}

impl UserRef<'_> {
    pub fn wa_id(&self) -> &WaId {
        &self.wa_id
    }

    /// Creates the user, or changes them: client platform and version, profile name, …
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), wa_emulator::Error> {
    /// use wa_emulator::domain::user::Platform;
    /// use wa_emulator::embed::UserSpec;
    ///
    /// let emu = wa_emulator::Emulator::start().await;
    /// let ana = emu.user("16315551234");
    /// let user = ana.set(UserSpec::new().platform(Platform::Ios).version("2.25.26").name("Ana")).await?;
    /// assert_eq!(user.name, "Ana");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn set(&self, spec: UserSpec) -> Result<User, Error> {
        let mut body = spec.fields;
        body.insert("wa_id".into(), self.wa_id.as_str().into());
        self.emu
            .admin_as("POST", "/users", Some(&Value::Object(body)))
            .await
    }

    async fn act<T: DeserializeOwned>(&self, action: &str, body: Value) -> Result<T, Error> {
        let path = format!(
            "/users/{}/{action}",
            crate::wire::url::percent_encode(self.wa_id.as_str())
        );
        self.emu.admin_as("POST", &path, Some(&body)).await
    }

    /// The user writes to the first business number: a `messages` webhook, and the 24 h
    /// service window opens.
    pub async fn send_text(&self, text: &str) -> Result<MessageId, Error> {
        let a: MessageAnswer = self.act("messages", json!({ "text": text })).await?;
        Ok(a.message_id)
    }

    /// The user writes to this business number.
    pub async fn send_text_to(
        &self,
        phone: &PhoneNumberId,
        text: &str,
    ) -> Result<MessageId, Error> {
        let body = json!({ "text": text, "phone_number_id": phone });
        let a: MessageAnswer = self.act("messages", body).await?;
        Ok(a.message_id)
    }

    /// The user reads a message the business sent (a `read` status webhook).
    pub async fn read(&self, message: &MessageId) -> Result<(), Error> {
        let _: Value = self.act("read", json!({ "message_id": message })).await?;
        Ok(())
    }

    /// The user taps the call button of a message: the call it starts, or a refusal whose
    /// [`Error::reason`] says why none did (`button_expired`, `desktop_client`, …).
    pub async fn tap(&self, message: &MessageId) -> Result<CallId, Error> {
        let a: CallAnswer = self.act("tap", json!({ "message_id": message })).await?;
        Ok(a.call_id)
    }

    /// The user opens a `wa.me/call/<number>[?biz_payload=…]` link.
    pub async fn open_link(&self, url: &str) -> Result<CallId, Error> {
        let a: CallAnswer = self.act("open-link", json!({ "url": url })).await?;
        Ok(a.call_id)
    }

    /// The user calls the first business number from the chat's call icon (no payload).
    pub async fn call(&self) -> Result<CallId, Error> {
        let a: CallAnswer = self.act("call", json!({})).await?;
        Ok(a.call_id)
    }

    /// The user calls this business number from the chat's call icon.
    pub async fn call_number(&self, phone: &PhoneNumberId) -> Result<CallId, Error> {
        let a: CallAnswer = self
            .act("call", json!({ "phone_number_id": phone }))
            .await?;
        Ok(a.call_id)
    }

    /// The user answers a call permission request, or changes the permission from the
    /// business profile: the id of the reply message.
    pub async fn reply_to_permission(&self, reply: PermissionReply) -> Result<MessageId, Error> {
        let mut body = json!({
            "response": match reply.response {
                PermissionResponse::Accept => "accept",
                PermissionResponse::Reject => "reject",
            },
            "permanent": reply.permanent,
        });
        if let Some(m) = &reply.message_id {
            body["message_id"] = json!(m);
        }
        if let Some(p) = &reply.phone_number_id {
            body["phone_number_id"] = json!(p);
        }
        let a: MessageAnswer = self.act("permission-reply", body).await?;
        Ok(a.message_id)
    }
}

/// What to set on a user ([`UserRef::set`]); unset fields stay as they are (a new user
/// starts as an Android 2.26 client).
#[derive(Debug, Clone, Default)]
pub struct UserSpec {
    fields: Map<String, Value>,
}

impl UserSpec {
    pub fn new() -> Self {
        Self::default()
    }

    fn with(mut self, key: &str, value: Value) -> Self {
        self.fields.insert(key.into(), value);
        self
    }

    /// The WhatsApp client: Android, iOS, the Business apps, desktop or web.
    pub fn platform(self, platform: Platform) -> Self {
        self.with("platform", platform.name().into())
    }

    /// The client version, `"2.25.27"`: payloads reach clients from 2.25.27 on.
    pub fn version(self, version: &str) -> Self {
        self.with("version", version.into())
    }

    /// The profile name businesses see.
    pub fn name(self, name: &str) -> Self {
        self.with("name", name.into())
    }

    /// Whether the 24 h service window is open.
    pub fn window_open(self, open: bool) -> Self {
        self.with("window_open", open.into())
    }

    /// A username (which hides the number from businesses unless told otherwise).
    pub fn username(self, username: &str) -> Self {
        self.with("username", username.into())
    }

    /// A parent BSUID, `US.ENT.…`.
    pub fn parent_user_id(self, id: &str) -> Self {
        self.with("parent_user_id", id.into())
    }

    /// Whether a user with a username keeps their number from businesses.
    pub fn hide_phone_number(self, hide: bool) -> Self {
        self.with("hide_phone_number", hide.into())
    }
}

/// Accept or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionResponse {
    Accept,
    Reject,
}

/// A user's answer to a call permission request ([`UserRef::reply_to_permission`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionReply {
    pub response: PermissionResponse,
    /// Permanent instead of 7 days.
    pub permanent: bool,
    /// The request answered; `None` for a change made from the business profile.
    pub message_id: Option<MessageId>,
    /// The business number, for a change made from its profile.
    pub phone_number_id: Option<PhoneNumberId>,
}

impl PermissionReply {
    /// Allows the calls the request (`message_id`) asked for, for 7 days.
    pub fn accept(request: &MessageId) -> Self {
        Self {
            response: PermissionResponse::Accept,
            permanent: false,
            message_id: Some(request.clone()),
            phone_number_id: None,
        }
    }

    /// Refuses the request.
    pub fn reject(request: &MessageId) -> Self {
        Self {
            response: PermissionResponse::Reject,
            ..Self::accept(request)
        }
    }

    /// A change made from the business number's profile, without a request.
    pub fn from_profile(response: PermissionResponse, phone: &PhoneNumberId) -> Self {
        Self {
            response,
            permanent: false,
            message_id: None,
            phone_number_id: Some(phone.clone()),
        }
    }

    /// Permanent instead of for 7 days.
    pub fn permanent(mut self) -> Self {
        self.permanent = true;
        self
    }
}

/// Where a call stands after a user's call action.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CallOutcome {
    pub call_id: CallId,
    /// `ringing`, `pre_accepted`, `active`, `completed`, `rejected`, `declined`,
    /// `unanswered`, `cancelled`, `terminated` or `failed`.
    #[serde(default)]
    pub status: String,
    /// Seconds connected, once a connected call has ended.
    #[serde(default)]
    pub duration: Option<u64>,
}

#[derive(Deserialize)]
struct CallAnswer {
    call_id: CallId,
}

#[derive(Deserialize)]
struct MessageAnswer {
    message_id: MessageId,
}

fn slash(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

/// `5 s`, `1.5 s`, `250 ms`.
fn shown_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.3} s", d.as_secs_f64())
    }
}
