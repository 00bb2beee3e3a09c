//! What a test waits for in the webhook log or the request log, and how a wait that
//! timed out explains itself: what was expected, and the closest entries that did
//! arrive with the keys that differ (STYLE lesson 6).
//!
//! [`WebhookPattern`] and [`RequestPattern`] know what they look for, so a miss names
//! the differing fields; a plain closure ([`Predicate`], from
//! [`Emulator::wait_for_webhook`](super::Emulator::wait_for_webhook)) can only say no, so
//! its miss lists the latest entries.

use super::subset::{best_match, find_key, shown};
use crate::api::admin_types::{LoggedRequest, LoggedWebhook, WebhookState};
use crate::domain::ids::{CallId, MessageId};
use serde_json::Value;
use std::fmt;
use std::fmt::Write as _;

/// How many near misses a timed-out wait shows.
const SHOWN: usize = 3;

/// Something to wait for in one of the emulator's logs.
pub trait Expectation {
    /// What it looks at: [`LoggedWebhook`] (the delivery log) or [`LoggedRequest`] (the
    /// Graph request history).
    type Entry: LogEntry;

    fn matches(&self, entry: &Self::Entry) -> bool;

    /// What it expects, for the message of a wait that timed out: "a `calls` webhook
    /// `connect` with {…}".
    fn describe(&self) -> String;

    /// Why `entry` does not match, one line a difference ("field: expected `calls`,
    /// got `messages`"); empty when there is nothing more to say.
    fn differences(&self, entry: &Self::Entry) -> Vec<String> {
        let _ = entry;
        Vec::new()
    }

    /// How close `entry` comes (higher is closer): picks the entries a miss shows.
    fn closeness(&self, entry: &Self::Entry) -> i64 {
        let _ = entry;
        0
    }
}

/// An entry of a log a test can wait on: [`LoggedWebhook`] or [`LoggedRequest`]
/// (sealed).
pub trait LogEntry: sealed::Log {}

impl LogEntry for LoggedWebhook {}
impl LogEntry for LoggedRequest {}

pub(super) mod sealed {
    use super::*;

    /// Where the entries come from and how one is named in a message.
    pub trait Log: serde::de::DeserializeOwned + Clone + Send + Sync + 'static {
        /// The admin route of the log, under `/__emulator`.
        const PATH: &'static str;
        /// The key of the list in the route's answer.
        const KEY: &'static str;
        /// "webhook", "request".
        const NOUN: &'static str;
        fn seq(&self) -> u64;
        /// One line naming the entry: "#3 `calls` `connect` (delivered)".
        fn line(&self) -> String;
    }

    impl Log for LoggedWebhook {
        const PATH: &'static str = "/webhooks";
        const KEY: &'static str = "deliveries";
        const NOUN: &'static str = "webhook";
        fn seq(&self) -> u64 {
            self.seq
        }
        fn line(&self) -> String {
            format!(
                "#{} `{}` `{}` ({})",
                self.seq,
                self.field,
                self.event,
                self.state.as_str()
            )
        }
    }

    impl Log for LoggedRequest {
        const PATH: &'static str = "/requests";
        const KEY: &'static str = "requests";
        const NOUN: &'static str = "request";
        fn seq(&self) -> u64 {
            self.seq
        }
        fn line(&self) -> String {
            format!(
                "#{} {} {} → {}",
                self.seq, self.method, self.path, self.status
            )
        }
    }
}

/// A plain closure as an [`Expectation`]: it can say yes or no, not why.
pub struct Predicate<T, F> {
    f: F,
    _entry: std::marker::PhantomData<fn(&T)>,
}

impl<T, F: Fn(&T) -> bool> Predicate<T, F> {
    pub fn new(f: F) -> Self {
        Predicate {
            f,
            _entry: std::marker::PhantomData,
        }
    }
}

impl<T: LogEntry, F: Fn(&T) -> bool> Expectation for Predicate<T, F> {
    type Entry = T;
    fn matches(&self, entry: &T) -> bool {
        (self.f)(entry)
    }
    fn describe(&self) -> String {
        format!("a {} the predicate accepts", T::NOUN)
    }
}

/// A webhook to wait for: its field, event, call or message, and keys of its body.
///
/// ```
/// use serde_json::json;
/// use wa_emulator::embed::WebhookPattern;
///
/// let connect = WebhookPattern::field("calls")
///     .event("connect")
///     .with(json!({"direction": "USER_INITIATED", "cta_payload": "order-42"}))
///     .without("deeplink_payload");
/// ```
#[derive(Debug, Clone, Default)]
pub struct WebhookPattern {
    field: Option<String>,
    event: Option<String>,
    call_id: Option<CallId>,
    message_id: Option<MessageId>,
    with: Option<Value>,
    without: Vec<String>,
    state: Option<WebhookState>,
    after: Option<u64>,
}

impl WebhookPattern {
    /// Any webhook (narrow it with the other methods).
    pub fn any() -> Self {
        Self::default()
    }

    /// A webhook of this field: `messages`, `calls`, `account_settings_update`,
    /// `message_template_status_update`, …
    pub fn field(field: &str) -> Self {
        Self {
            field: Some(field.to_owned()),
            ..Self::default()
        }
    }

    /// Of this event, as the log names it or as the body says it, case-insensitively:
    /// `connect`, `terminate`, `ringing` (the log's `status_ringing`), `sent`,
    /// `delivered`, `read`, `text`, `call_permission_reply`, …
    pub fn event(mut self, event: &str) -> Self {
        self.event = Some(event.to_owned());
        self
    }

    /// About this call.
    pub fn call(mut self, id: &CallId) -> Self {
        self.call_id = Some(id.clone());
        self
    }

    /// About this message (a status of it, or the inbound message itself).
    pub fn message(mut self, id: &MessageId) -> Self {
        self.message_id = Some(id.clone());
        self
    }

    /// Whose body contains `pattern`, anywhere: `{"cta_payload": "x"}` finds the call
    /// inside the envelope. Objects match on the keys the pattern names, arrays when
    /// each pattern element matches some element, numbers by value.
    pub fn with(mut self, pattern: Value) -> Self {
        self.with = Some(pattern);
        self
    }

    /// Whose body has no such key at any depth (may be repeated).
    pub fn without(mut self, key: &str) -> Self {
        self.without.push(key.to_owned());
        self
    }

    /// In this delivery state (`Delivered` to wait until the receiver took it).
    pub fn state(mut self, state: WebhookState) -> Self {
        self.state = Some(state);
        self
    }

    /// Logged after the webhook with this `seq` (see [`LoggedWebhook::seq`] and
    /// [`WebhookLog::last_seq`](crate::api::admin_types::WebhookLog::last_seq)).
    pub fn after(mut self, seq: u64) -> Self {
        self.after = Some(seq);
        self
    }

    fn event_matches(expected: &str, w: &LoggedWebhook) -> bool {
        let logged = w.event.as_str();
        expected.eq_ignore_ascii_case(logged)
            || logged
                .strip_prefix("status_")
                .is_some_and(|s| expected.eq_ignore_ascii_case(s))
            || body_event(&w.body).is_some_and(|b| expected.eq_ignore_ascii_case(&b))
    }

    /// (matched, closeness, differences)
    fn score(&self, w: &LoggedWebhook) -> (bool, i64, Vec<String>) {
        let mut ok = true;
        let mut rank = 0i64;
        let mut diffs = Vec::new();
        if let Some(f) = &self.field {
            if &w.field == f {
                rank += 100;
            } else {
                ok = false;
                diffs.push(format!("field: expected `{f}`, got `{}`", w.field));
            }
        }
        if let Some(e) = &self.event {
            if Self::event_matches(e, w) {
                rank += 10;
            } else {
                ok = false;
                diffs.push(format!("event: expected `{e}`, got `{}`", w.event));
            }
        }
        let id_check = |key: &str, want: &str, got: Option<&str>| match got {
            Some(g) if g == want => None,
            Some(g) => Some(format!("{key}: expected {want}, got {g}")),
            None => Some(format!("{key}: expected {want}, got none")),
        };
        if let Some(c) = &self.call_id {
            match id_check(
                "call_id",
                c.as_str(),
                w.call_id.as_ref().map(CallId::as_str),
            ) {
                None => rank += 10,
                Some(d) => {
                    ok = false;
                    diffs.push(d);
                }
            }
        }
        if let Some(m) = &self.message_id {
            let got = w.message_id.as_ref().map(MessageId::as_str);
            match id_check("message_id", m.as_str(), got) {
                None => rank += 10,
                Some(d) => {
                    ok = false;
                    diffs.push(d);
                }
            }
        }
        if let Some(s) = self.state {
            if w.state == s {
                rank += 1;
            } else {
                ok = false;
                diffs.push(format!(
                    "state: expected {}, got {}",
                    s.as_str(),
                    w.state.as_str()
                ));
            }
        }
        if let Some(a) = self.after {
            if w.seq <= a {
                ok = false;
                rank -= 5;
                diffs.push(format!("seq: expected after #{a}, got #{}", w.seq));
            }
        }
        if let Some(p) = &self.with {
            let d = best_match(p, &w.body);
            if d.is_empty() {
                rank += 10;
            } else {
                ok = false;
                rank -= d.len() as i64;
                diffs.extend(d);
            }
        }
        for key in &self.without {
            for (path, v) in find_key(&w.body, key, "") {
                ok = false;
                rank -= 1;
                diffs.push(format!("{path}: expected absent, got {}", shown(&v)));
            }
        }
        (ok, rank, diffs)
    }
}

impl Expectation for WebhookPattern {
    type Entry = LoggedWebhook;
    fn matches(&self, w: &LoggedWebhook) -> bool {
        self.score(w).0
    }
    fn describe(&self) -> String {
        let mut s = match &self.field {
            Some(f) => format!("a `{f}` webhook"),
            None => "a webhook".to_owned(),
        };
        if let Some(e) = &self.event {
            let _ = write!(s, " `{e}`");
        }
        if let Some(c) = &self.call_id {
            let _ = write!(s, " for call {c}");
        }
        if let Some(m) = &self.message_id {
            let _ = write!(s, " for message {m}");
        }
        if let Some(p) = &self.with {
            let _ = write!(s, " with {p}");
        }
        if !self.without.is_empty() {
            let _ = write!(s, " without {}", self.without.join(", "));
        }
        if let Some(st) = self.state {
            let _ = write!(s, " in state {}", st.as_str());
        }
        if let Some(a) = self.after {
            let _ = write!(s, " after #{a}");
        }
        s
    }
    fn differences(&self, w: &LoggedWebhook) -> Vec<String> {
        self.score(w).2
    }
    fn closeness(&self, w: &LoggedWebhook) -> i64 {
        self.score(w).1
    }
}

/// A Graph request to wait for in the request history: what an app under test did.
///
/// ```
/// use serde_json::json;
/// use wa_emulator::embed::RequestPattern;
///
/// // `/calls` of any number and Graph version, accepting a call.
/// let accept = RequestPattern::new("POST", "/calls").with(json!({"action": "accept"}));
/// ```
#[derive(Debug, Clone, Default)]
pub struct RequestPattern {
    method: Option<String>,
    path: Option<String>,
    with: Option<Value>,
    status: Option<u16>,
    after: Option<u64>,
}

impl RequestPattern {
    /// Any Graph request.
    pub fn any() -> Self {
        Self::default()
    }

    /// A request with this method whose path is, or ends with, `path`: `"/calls"` matches
    /// `/v21.0/106540352242922/calls`.
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: Some(method.to_ascii_uppercase()),
            path: Some(path.to_owned()),
            ..Self::default()
        }
    }

    /// Whose JSON body contains `pattern` (matched as [`WebhookPattern::with`]).
    pub fn with(mut self, pattern: Value) -> Self {
        self.with = Some(pattern);
        self
    }

    /// Answered with this HTTP status.
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Made after the request with this `seq`.
    pub fn after(mut self, seq: u64) -> Self {
        self.after = Some(seq);
        self
    }

    fn score(&self, r: &LoggedRequest) -> (bool, i64, Vec<String>) {
        let mut ok = true;
        let mut rank = 0i64;
        let mut diffs = Vec::new();
        if let Some(m) = &self.method {
            if r.method.eq_ignore_ascii_case(m) {
                rank += 10;
            } else {
                ok = false;
                diffs.push(format!("method: expected {m}, got {}", r.method));
            }
        }
        if let Some(p) = &self.path {
            if r.path == *p || r.path.ends_with(p.as_str()) {
                rank += 100;
            } else {
                ok = false;
                diffs.push(format!("path: expected …{p}, got {}", r.path));
            }
        }
        if let Some(s) = self.status {
            if r.status == s {
                rank += 1;
            } else {
                ok = false;
                diffs.push(format!("status: expected {s}, got {}", r.status));
            }
        }
        if let Some(a) = self.after {
            if r.seq <= a {
                ok = false;
                rank -= 5;
                diffs.push(format!("seq: expected after #{a}, got #{}", r.seq));
            }
        }
        if let Some(p) = &self.with {
            let d = best_match(p, &r.body);
            if d.is_empty() {
                rank += 10;
            } else {
                ok = false;
                rank -= d.len() as i64;
                diffs.extend(d.into_iter().map(|d| format!("body {d}")));
            }
        }
        (ok, rank, diffs)
    }
}

impl Expectation for RequestPattern {
    type Entry = LoggedRequest;
    fn matches(&self, r: &LoggedRequest) -> bool {
        self.score(r).0
    }
    fn describe(&self) -> String {
        let mut s = "a request".to_owned();
        if let Some(m) = &self.method {
            let _ = write!(s, " {m}");
        }
        if let Some(p) = &self.path {
            let _ = write!(s, " …{p}");
        }
        if let Some(p) = &self.with {
            let _ = write!(s, " with {p}");
        }
        if let Some(st) = self.status {
            let _ = write!(s, " answered {st}");
        }
        if let Some(a) = self.after {
            let _ = write!(s, " after #{a}");
        }
        s
    }
    fn differences(&self, r: &LoggedRequest) -> Vec<String> {
        self.score(r).2
    }
    fn closeness(&self, r: &LoggedRequest) -> i64 {
        self.score(r).1
    }
}

/// A wait that timed out: what it expected, how long it waited, and the closest entries
/// of the log, each with what differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitTimeout {
    /// "a `calls` webhook `connect` with {…}".
    pub expected: String,
    /// "5 s (the virtual clock advanced 5 s)".
    pub waited: String,
    /// "webhook" or "request".
    pub noun: &'static str,
    /// How many entries the log held at the end.
    pub logged: usize,
    /// The closest entries, closest first (at most 3).
    pub closest: Vec<NearMiss>,
}

/// One entry that did not match, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearMiss {
    /// "#3 `calls` `connect` (held)".
    pub entry: String,
    /// One line a difference: `calls[0].cta_payload: expected "X", got "P"`.
    pub differences: Vec<String>,
}

impl WaitTimeout {
    pub(super) fn new<E: Expectation>(exp: &E, waited: String, log: &[E::Entry]) -> Self {
        use sealed::Log as _;
        let mut ranked: Vec<&E::Entry> = log.iter().collect();
        // Closest first; among equals the newest, which is usually the one meant.
        ranked.sort_by_key(|e| {
            (
                std::cmp::Reverse(exp.closeness(e)),
                std::cmp::Reverse(e.seq()),
            )
        });
        WaitTimeout {
            expected: exp.describe(),
            waited,
            noun: <E::Entry as sealed::Log>::NOUN,
            logged: log.len(),
            closest: ranked
                .into_iter()
                .take(SHOWN)
                .map(|e| NearMiss {
                    entry: e.line(),
                    differences: exp.differences(e),
                })
                .collect(),
        }
    }
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no {} matched within {}\n  expected: {}",
            self.noun, self.waited, self.expected
        )?;
        if self.logged == 0 {
            return write!(f, "\n  no {} was logged at all", self.noun);
        }
        write!(
            f,
            "\n  the closest of the {} {}{} logged:",
            self.logged,
            self.noun,
            if self.logged == 1 { "" } else { "s" }
        )?;
        for n in &self.closest {
            write!(f, "\n    {}", n.entry)?;
            for d in &n.differences {
                write!(f, "\n      {d}")?;
            }
        }
        Ok(())
    }
}

/// The event a webhook body says happened: a call's `event`, a status's `status`, an
/// inbound message's (interactive) type.
fn body_event(body: &Value) -> Option<String> {
    let value = &body["entry"][0]["changes"][0]["value"];
    let first = |k: &str| value.get(k).and_then(|a| a.get(0));
    first("calls")
        .and_then(|c| c.get("event"))
        .or_else(|| first("statuses").and_then(|s| s.get("status")))
        .or_else(|| {
            first("messages").and_then(|m| m.pointer("/interactive/type").or(m.get("type")))
        })
        .or_else(|| value.get("event"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}
