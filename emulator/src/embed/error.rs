//! What can go wrong when a test drives an embedded emulator: it did not start, no answer
//! came, the emulator refused (a Graph-shaped error, typed), an answer could not be read,
//! or a wait timed out (with the closest entries that did arrive).

use super::expect::WaitTimeout;
use crate::server::client::{ClientError, Response};
use serde_json::Value;
use std::fmt;

/// Every failure of the [`Emulator`](super::Emulator) API.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// The emulator did not start (the port, the options, the webhook handshake).
    Start(String),
    /// No HTTP answer came back (the emulator stopped, or the request timed out).
    Transport(ClientError),
    /// The emulator answered with an error: what a Graph or admin client sees.
    Refused(Box<Refusal>),
    /// The emulator answered something this API cannot read.
    Unreadable {
        /// `"METHOD URL"`.
        request: String,
        problem: String,
        body: String,
    },
    /// A `wait_for_*` helper gave up: what was expected and the closest entries.
    Timeout(Box<WaitTimeout>),
}

/// An error answer, as Graph writes it (`{"error":{"message","type","code",
/// "error_data":{"details","reason"?},"fbtrace_id"}}`); the admin API uses the same shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// `"METHOD URL"` of the request that was refused.
    pub request: String,
    /// The HTTP status (4xx, or 5xx).
    pub status: u16,
    /// The Graph error `code` (`138013`, `131047`, `100` for refused user actions, …).
    pub code: i64,
    pub error_subcode: Option<i64>,
    /// The Graph error `type` (`OAuthException`, …).
    pub error_type: String,
    /// `message`: `(#code) Title`.
    pub message: String,
    /// `error_data.details`: what was expected and what arrived.
    pub details: String,
    /// `error_data.reason`: why a simulated user action could not happen (`button_expired`,
    /// `desktop_client`, … — the list is in `ADMIN-API.md`).
    pub reason: Option<String>,
    pub fbtrace_id: Option<String>,
    /// The whole answer body.
    pub body: Value,
}

impl Error {
    /// The refusal, when the emulator answered with an error.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Error::Refused(r) => Some(r),
            _ => None,
        }
    }

    /// The Graph error code of a refusal.
    pub fn code(&self) -> Option<i64> {
        self.refusal().map(|r| r.code)
    }

    /// The machine-readable reason of a refused user action.
    pub fn reason(&self) -> Option<&str> {
        self.refusal().and_then(|r| r.reason.as_deref())
    }

    /// What a timed-out wait expected and saw.
    pub fn timeout(&self) -> Option<&WaitTimeout> {
        match self {
            Error::Timeout(t) => Some(t),
            _ => None,
        }
    }
}

impl Refusal {
    /// Reads an error answer; a body that is not the Graph envelope still gives a refusal
    /// (code 0) carrying the text, so nothing the emulator said is lost.
    pub(crate) fn from_response(request: String, r: &Response) -> Refusal {
        let body = r.json();
        let e = &body["error"];
        let text = |v: &Value| v.as_str().map(str::to_owned);
        Refusal {
            request,
            status: r.status.as_u16(),
            code: e["code"].as_i64().unwrap_or(0),
            error_subcode: e["error_subcode"].as_i64(),
            error_type: text(&e["type"]).unwrap_or_default(),
            message: text(&e["message"]).unwrap_or_else(|| r.text()),
            details: text(&e["error_data"]["details"]).unwrap_or_default(),
            reason: text(&e["error_data"]["reason"]),
            fbtrace_id: text(&e["fbtrace_id"]),
            body,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} answered HTTP {}, code {}",
            self.request, self.status, self.code
        )?;
        if let Some(r) = &self.reason {
            write!(f, " ({r})")?;
        }
        write!(f, ": {}", self.message)?;
        if !self.details.is_empty() {
            write!(f, " — {}", self.details)?;
        }
        Ok(())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Start(why) => write!(f, "the emulator did not start: {why}"),
            Error::Transport(e) => write!(f, "no answer from the emulator: {e}"),
            Error::Refused(r) => r.fmt(f),
            Error::Unreadable {
                request,
                problem,
                body,
            } => write!(f, "{request}: {problem}; the answer was: {body}"),
            Error::Timeout(t) => t.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Transport(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Self {
        Error::Transport(e)
    }
}
