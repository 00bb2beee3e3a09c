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
//! - `mod.rs`: [`Emulator`]: the raw Graph and admin doors, the callback URL, the call
//!   actions, the clock, the logs and the waits.
//! - `start.rs`: [`EmulatorBuilder`] (seed, clock, behaviour, any `serve` option) and the
//!   [`Tenant`] read back once the emulator listens.
//! - `user.rs`: [`UserRef`], the simulated user's actions, and [`UserSpec`] /
//!   [`PermissionReply`], what they take.
//! - `error.rs`: [`Error`] and [`Refusal`], the Graph error of a refused request.
//! - `expect.rs`: [`WebhookPattern`], [`RequestPattern`], the [`Expectation`] trait and
//!   the [`WaitTimeout`] report of a wait that found nothing.
//! - `subset.rs`: the JSON subset matching of `with(…)` and the differences it reports.

mod error;
mod expect;
mod start;
mod subset;
#[cfg(test)]
mod tests;
mod user;

pub use error::{Error, Refusal};
pub use expect::{
    Expectation, LogEntry, NearMiss, Predicate, RequestPattern, WaitTimeout, WebhookPattern,
};
pub use start::{EmulatorBuilder, Tenant};
pub use user::{PermissionReply, PermissionResponse, UserRef, UserSpec};

use crate::api::admin_types::{
    Clock, Config, LoggedRequest, LoggedWebhook, RequestLog, WebhookLog,
};
use crate::domain::ids::{CallId, WaId};
use crate::engine::ClockMode;
use crate::server::client::Client;
use crate::server::Running;
use expect::sealed::Log;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a virtual clock starts unless told otherwise: 2026-01-01T00:00:00Z, so
/// timestamps (and everything derived from them) are the same on every run.
pub const DEFAULT_CLOCK_START_MS: u64 = 1_767_225_600_000;

/// The seed of every generated id unless told otherwise: same seed, same requests, same
/// `wamid`s and `wacid`s.
pub const DEFAULT_SEED: u64 = 1;

/// How often a wait looks at a log while real time passes.
const POLL: Duration = Duration::from_millis(10);

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
        EmulatorBuilder::new()
    }

    /// `http://127.0.0.1:PORT`: the Graph base URL (in place of
    /// `https://graph.facebook.com`), versioned and unversioned paths alike.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A client that reaches this emulator without a socket: its requests (to any URL)
    /// are served as if they had come to [`url`](Self::url) over TCP, the same bytes both
    /// ways. For a driver in this process (the scenario runner); the code under test
    /// uses [`url`](Self::url). Call it on the emulator's runtime.
    pub fn in_memory_client(&self) -> Client {
        Client::in_memory(std::sync::Arc::new(self.running.in_memory()))
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
