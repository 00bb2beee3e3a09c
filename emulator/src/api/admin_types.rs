//! The admin API's answers that clients read, as types: `GET /__emulator/config`,
//! `GET /__emulator/clock`, `GET /__emulator/webhooks`, `GET /__emulator/requests` and
//! the tenants of `/__emulator/tenants`.
//!
//! The admin API (`api/admin.rs`) builds these and serialises them; the scenario runner
//! deserialises the same types, so the two cannot drift apart. Field names and values are
//! the public contract of `ADMIN-API.md`: renaming a field here renames it for every
//! client, and the order of the fields is the order of the keys in the JSON.

use crate::domain::ids::{AppId, CallId, MessageId, PhoneNumberId, WabaId};
use crate::domain::tenant::{Behaviour, NumberProfile, Tenants};
use crate::engine::ClockMode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /__emulator/config`: who the emulator pretends to be and how it behaves.
/// `phone_number_id` and `display_phone_number` are the first number's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// The base URL the emulator listens on.
    pub url: String,
    pub app_id: Option<AppId>,
    pub app_secret: Option<String>,
    pub access_token: Option<String>,
    pub verify_token: Option<String>,
    pub webhook_url: Option<String>,
    pub waba_id: Option<WabaId>,
    pub phone_number_id: Option<PhoneNumberId>,
    pub display_phone_number: Option<String>,
    /// Every number of the tenants, first one first, with what it can do.
    pub phone_numbers: Vec<BusinessNumber>,
    pub clock: Clock,
    pub tenants: Tenants,
    pub behaviour: Behaviour,
    /// Where the emulator's SIP gateway listens for business-initiated calls; `null`
    /// when it does not run (the pure core without a server).
    #[serde(default)]
    pub sip: Option<SipGateway>,
}

/// `sip` of `GET /__emulator/config`: the emulator's SIP gateway (Meta's `wa.meta.vc`),
/// where a business sends the INVITE of a business-initiated call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SipGateway {
    /// `HOST:PORT` for SIP over UDP.
    pub udp: String,
    /// `HOST:PORT` for SIP over TCP (the same port as UDP).
    pub tcp: String,
    /// `HOST:PORT` for SIP over TLS.
    pub tls: Option<String>,
    /// The PEM certificate a business trusts for TLS: the CA of the certificate made at
    /// start-up (also `GET /__emulator/sip/ca.pem`), or the `--sip-tls-cert` chain.
    pub ca_pem: Option<String>,
}

/// One business phone number in [`Config::phone_numbers`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessNumber {
    pub id: PhoneNumberId,
    pub display_phone_number: String,
    pub waba_id: WabaId,
    /// Whether the business may call users and ask for call permission from it: `false`
    /// for +1, +20, +84 and +234 numbers unless the configuration says otherwise (138013).
    pub business_initiated_calling: bool,
    pub profile: NumberProfile,
}

/// `GET /__emulator/clock`, the answer of `POST /__emulator/clock/advance` and
/// [`Config::clock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    pub mode: ClockMode,
    /// Unix seconds on the emulator's clock.
    pub now: u64,
    pub now_ms: u64,
}

/// `GET /__emulator/webhooks`: the delivery log, oldest first, and its bounds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookLog {
    pub deliveries: Vec<LoggedWebhook>,
    /// The `seq` of the newest webhook ever logged (0 before the first); pass it as
    /// `?since=` to see only what comes next.
    pub last_seq: u64,
    /// Webhooks dropped from the log to keep it within `capacity`.
    pub evicted: u64,
    pub capacity: usize,
    /// Webhooks still waiting for (another) delivery attempt.
    pub pending: usize,
    /// Webhooks dropped while no callback URL was ever set (beyond the held capacity).
    pub held_evicted: u64,
    /// Graph requests refused (503, code 2) because `pending` stayed at
    /// `webhook_pending_limit` for `webhook_pending_wait_secs`.
    #[serde(default)]
    pub refused: u64,
}

/// One webhook in the delivery log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoggedWebhook {
    /// `d<seq>`.
    pub id: String,
    pub seq: u64,
    /// The webhook field: `messages`, `calls`, `message_template_status_update`, …
    pub field: String,
    /// What happened: a call's `event`, a status, an inbound message's type, …
    pub event: String,
    /// The callback URL it goes to; `None` while the app has none (the webhook is held).
    pub url: Option<String>,
    pub state: WebhookState,
    /// Unix seconds on the emulator's clock.
    pub created_at: u64,
    pub created_at_ms: u64,
    /// `X-Hub-Signature-256`.
    pub signature: String,
    /// The body as JSON.
    pub body: Value,
    /// The exact bytes sent (ASCII-escaped JSON, as Meta sends it).
    pub raw: String,
    pub attempts: Vec<LoggedAttempt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<CallId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
    /// What fault injection did to it, when chaos is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chaos: Option<String>,
    /// When the next attempt is due, for a pending webhook that failed before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at_ms: Option<u64>,
}

/// Where a logged webhook stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookState {
    /// Waiting for a callback URL (none is set).
    Held,
    /// Waiting for its first or next attempt.
    Pending,
    Delivered,
    /// Given up after the retry horizon.
    Dead,
}

impl WebhookState {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookState::Held => "held",
            WebhookState::Pending => "pending",
            WebhookState::Delivered => "delivered",
            WebhookState::Dead => "dead",
        }
    }
}

/// One delivery attempt of a logged webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedAttempt {
    /// Unix seconds on the emulator's clock.
    pub at: u64,
    pub at_ms: u64,
    pub url: String,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why there was no answer, when there was none.
    pub error: Option<String>,
    pub response_body: Option<String>,
}

/// `GET /__emulator/requests`: the request history (the Graph requests and the answers
/// given), oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestLog {
    pub requests: Vec<LoggedRequest>,
    /// Requests dropped from the history to keep it within `capacity`.
    pub evicted: u64,
    pub capacity: usize,
}

/// One Graph request and the emulator's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedRequest {
    pub seq: u64,
    /// Unix seconds on the emulator's clock.
    pub at: u64,
    pub at_ms: u64,
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// The request body as JSON, or as a JSON string when it was not JSON.
    pub body: Value,
    /// The HTTP status answered.
    pub status: u16,
    /// The answer's body as JSON, or as a JSON string when it was not JSON.
    pub response: Value,
}

/// A tenant for one test on a shared server: the answer of `POST /__emulator/tenants`
/// and of `GET /__emulator/tenants/{id}`. Everything a test needs to talk to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantInfo {
    /// `t<N>`, as in `/__emulator/tenants/{id}`.
    pub id: String,
    /// Where the tenant's admin routes are: `/__emulator/tenants/{id}` (then `/users`,
    /// `/webhooks`, `/clock/advance`, … as under `/__emulator`).
    pub admin_path: String,
    /// `admin_path` with the emulator's base URL.
    pub admin_url: String,
    /// The base URL of the Graph API (the same for every tenant: the token decides).
    pub graph_url: String,
    pub app_id: AppId,
    pub app_secret: String,
    pub access_token: String,
    pub verify_token: String,
    pub webhook_url: Option<String>,
    pub waba_id: WabaId,
    /// The first number's id and display number (a +1 number).
    pub phone_number_id: PhoneNumberId,
    pub display_phone_number: String,
    /// Both numbers, with what they can do.
    pub phone_numbers: Vec<BusinessNumber>,
    /// The tenant's own clock.
    pub clock: Clock,
}

/// `GET /__emulator/tenants`: the live tenants, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantList {
    pub tenants: Vec<TenantInfo>,
    pub live: usize,
    /// How many may be live at once (`max_tenants`).
    pub max: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{handle, Context, Request};
    use crate::engine::Engine;
    use serde::de::DeserializeOwned;

    fn call(engine: &mut Engine, method: &str, path: &str, body: &str) -> Value {
        let ctx = Context {
            listen_url: "http://127.0.0.1:4004".into(),
            admin_token: None,
            sip: None,
        };
        let auth = vec![(
            "authorization".to_owned(),
            "Bearer wa-emulator-token".to_owned(),
        )];
        let r = handle(
            engine,
            &Request::new(method, path, auth, body.to_owned()),
            &ctx,
        );
        assert!((200..300).contains(&r.status), "{method} {path}: {r:?}");
        serde_json::from_slice(&r.body).expect("JSON")
    }

    /// What the admin API answered parses as `T` and serialises back to the same JSON,
    /// key order included.
    fn round_trips<T: Serialize + DeserializeOwned>(answer: &Value) -> T {
        let typed: T = serde_json::from_value(answer.clone()).expect("the answer parses");
        assert_eq!(
            serde_json::to_string(&typed).unwrap(),
            answer.to_string(),
            "the type changes the answer"
        );
        typed
    }

    #[test]
    fn every_answer_a_client_reads_round_trips_through_its_type() {
        let mut e = Engine::new(
            Tenants::default(),
            Behaviour::default(),
            3,
            ClockMode::Virtual,
            1_767_225_600_000,
        );
        let send = r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive",
            "interactive":{"type":"voice_call","body":{"text":"Call us"},
            "action":{"name":"voice_call","parameters":{"payload":"P"}}}}"#;
        let sent = call(&mut e, "POST", "/v21.0/106540352242922/messages", send);
        let message_id = sent["messages"][0]["id"].as_str().unwrap().to_owned();
        let tap = format!(r#"{{"message_id":"{message_id}"}}"#);
        call(&mut e, "POST", "/__emulator/users/16315551234/tap", &tap);

        let config: Config = round_trips(&call(&mut e, "GET", "/__emulator/config", ""));
        assert_eq!(config.phone_numbers.len(), 2);
        assert!(!config.phone_numbers[0].business_initiated_calling);
        assert_eq!(config.clock.mode, ClockMode::Virtual);
        let clock: Clock = round_trips(&call(&mut e, "GET", "/__emulator/clock", ""));
        assert_eq!(clock.now_ms, 1_767_225_600_000);
        let log: WebhookLog = round_trips(&call(&mut e, "GET", "/__emulator/webhooks", ""));
        assert!(log.deliveries.iter().all(|d| d.state == WebhookState::Held));
        assert!(log.deliveries.iter().any(|d| d.call_id.is_some()));
        let since = format!("/__emulator/webhooks?since={}", log.last_seq - 1);
        let tail: WebhookLog = round_trips(&call(&mut e, "GET", &since, ""));
        assert_eq!(tail.deliveries.len(), 1);
        let requests: RequestLog = round_trips(&call(&mut e, "GET", "/__emulator/requests", ""));
        assert_eq!(requests.requests.len(), 1);
        assert_eq!(requests.requests[0].response, sent);
    }
}
