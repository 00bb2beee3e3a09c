//! The one catalogue of API errors.
//!
//! Each [`ErrorKind`] maps, in [`ErrorKind::spec`], to the HTTP status, Graph `code`,
//! `type` and title Meta documents (see `reference/cloud-api.md` §5.4 and §9). The
//! `details` text of an [`ApiError`] is written for the integrator: what was expected and
//! what arrived.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// 190: missing, unknown or malformed access token.
    InvalidToken,
    /// 10: the token's app does not own the object.
    PermissionDenied,
    /// 100 (subcode 33): no object with that id.
    UnknownObject,
    /// 100: the path or method does not exist on the object.
    UnknownPath,
    /// 100: "Invalid parameter" (v16+ puts the specific reason in `details`).
    InvalidParameter,
    /// 100 with HTTP 413: the body is larger than the limit.
    BodyTooLarge,
    /// 131008: a required field is missing.
    MissingParameter,
    /// 131009: a field's value is not valid.
    InvalidValue,
    /// 131047: free-form message outside the 24 h customer service window.
    ReEngagement,
    /// 131051: unknown message type.
    UnsupportedMessageType,
    /// 131026: message undeliverable (reported asynchronously as a failed status).
    Undeliverable,
    /// 131055: Graph calling on a SIP-enabled number.
    MethodNotAllowedSip,
    /// 131062: a message type that cannot be sent to a BSUID `recipient` (authentication
    /// templates: their one-tap, zero-tap and copy-code buttons need a phone number).
    BsuidNotSupported,
    /// 132000: template parameter count mismatch.
    TemplateParamCount,
    /// 132001: template missing in that language, or not approved.
    TemplateNotFound,
    /// 132015: the template is PAUSED (low quality).
    TemplatePaused,
    /// 132016: the template is DISABLED.
    TemplateDisabled,
    /// 138000: calling is not enabled on the number.
    CallingNotEnabled,
    /// 138001: the user cannot receive calls.
    ReceiverUncallable,
    /// 138003: a call with the user is already ongoing.
    DuplicateCall,
    /// 138006: no approved call permission.
    NoCallPermission,
    /// 138009: call permission request limits.
    PermissionRequestLimit,
    /// 138012: 100 connected business-initiated calls per 24 h.
    BusinessCallLimit,
    /// 138013: business-initiated calling (and so permission requests) is not
    /// available for the business number's country.
    BusinessCallingUnavailable,
    /// 138017: a permanent permission already exists.
    PermanentPermissionExists,
    /// 613: `/call_permissions` rate limit.
    PermissionApiLimit,
    /// 130429: too many requests (template creation per hour and similar).
    RateLimit,
    /// 2 with HTTP 503, transient: Graph's "Service temporarily unavailable". The
    /// emulator answers it when a request would queue webhooks while its tenant's pending
    /// deliveries stayed at `webhook_pending_limit` for as long as a request may wait.
    ServiceUnavailable,
    /// Admin API: the simulated action could not happen (a tap that starts no call…).
    SimulationRefused,
    /// Admin API: unknown user, call or message.
    NotFound,
}

pub struct ErrorSpec {
    pub http: u16,
    pub code: u32,
    pub kind: &'static str,
    pub title: &'static str,
}

impl ErrorKind {
    pub const fn spec(self) -> ErrorSpec {
        use ErrorKind::*;
        let (http, code, kind, title) = match self {
            InvalidToken => (401, 190, "OAuthException", "Invalid OAuth access token - Cannot parse access token"),
            PermissionDenied => (403, 10, "OAuthException", "Application does not have permission for this action"),
            UnknownObject => (400, 100, "GraphMethodException", "Unsupported request"),
            UnknownPath => (400, 100, "OAuthException", "Unknown path components"),
            InvalidParameter => (400, 100, "OAuthException", "Invalid parameter"),
            BodyTooLarge => (413, 100, "OAuthException", "Request body too large"),
            MissingParameter => (400, 131008, "OAuthException", "Required parameter is missing"),
            InvalidValue => (400, 131009, "OAuthException", "Parameter value is not valid"),
            ReEngagement => (400, 131047, "OAuthException", "Re-engagement message"),
            UnsupportedMessageType => (400, 131051, "OAuthException", "Unsupported message type"),
            Undeliverable => (400, 131026, "OAuthException", "Message undeliverable"),
            MethodNotAllowedSip => (400, 131055, "OAuthException", "Method not allowed"),
            BsuidNotSupported => (400, 131062, "OAuthException", "BSUID recipients are not supported for this message"),
            TemplateParamCount => (400, 132000, "OAuthException", "Number of parameters does not match the expected number of params"),
            TemplateNotFound => (400, 132001, "OAuthException", "Template name does not exist in the translation"),
            TemplatePaused => (400, 132015, "OAuthException", "Template is paused"),
            TemplateDisabled => (400, 132016, "OAuthException", "Template is disabled"),
            CallingNotEnabled => (401, 138000, "OAuthException", "Calling not enabled"),
            ReceiverUncallable => (400, 138001, "OAuthException", "Receiver Uncallable"),
            DuplicateCall => (400, 138003, "OAuthException", "Duplicate call"),
            NoCallPermission => (401, 138006, "OAuthException", "No approved call permission found"),
            PermissionRequestLimit => (400, 138009, "OAuthException", "Call Permission Request Limit Hit"),
            BusinessCallLimit => (400, 138012, "OAuthException", "Business Initiated Calls Limit Hit"),
            BusinessCallingUnavailable => (400, 138013, "OAuthException", "Business-initiated calling is not available"),
            PermanentPermissionExists => (400, 138017, "OAuthException", "Call permission request can't be sent because a permanent permission already exists."),
            PermissionApiLimit => (429, 613, "OAuthException", "Fetch Call Permission For Consumer Phone Number API Limit Hit"),
            RateLimit => (429, 130429, "OAuthException", "Rate limit hit"),
            ServiceUnavailable => (503, 2, "OAuthException", "Service temporarily unavailable"),
            SimulationRefused => (409, 100, "EmulatorException", "The simulated action did not happen"),
            NotFound => (404, 100, "EmulatorException", "Not found"),
        };
        ErrorSpec {
            http,
            code,
            kind,
            title,
        }
    }
}

/// An error as the API reports it: a catalogue entry plus what went wrong this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub details: String,
    /// Machine-readable reason for simulation refusals (`button_expired`, …).
    pub reason: Option<&'static str>,
    pub subcode: Option<u32>,
    /// Overrides the catalogue's `message` (Graph wording for some code-100 errors).
    pub message: Option<String>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, details: impl Into<String>) -> Self {
        Self {
            kind,
            details: details.into(),
            reason: None,
            subcode: None,
            message: None,
        }
    }

    pub fn refused(reason: &'static str, details: impl Into<String>) -> Self {
        Self {
            reason: Some(reason),
            ..Self::new(ErrorKind::SimulationRefused, details)
        }
    }

    pub fn with_subcode(mut self, subcode: u32) -> Self {
        self.subcode = Some(subcode);
        self
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Graph's `is_transient`: retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::ServiceUnavailable
    }

    pub fn code(&self) -> u32 {
        self.kind.spec().code
    }

    pub fn http_status(&self) -> u16 {
        self.kind.spec().http
    }

    /// `message` as Graph writes it: `(#code) Title`, except token errors which carry the
    /// bare title.
    pub fn message(&self) -> String {
        if let Some(m) = &self.message {
            return m.clone();
        }
        let spec = self.kind.spec();
        match self.kind {
            ErrorKind::InvalidToken => spec.title.to_owned(),
            _ => format!("(#{}) {}", spec.code, spec.title),
        }
    }

    /// The Graph error envelope.
    pub fn to_json(&self, fbtrace_id: &str) -> serde_json::Value {
        let spec = self.kind.spec();
        let mut error = serde_json::Map::new();
        error.insert("message".into(), self.message().into());
        error.insert("type".into(), spec.kind.into());
        error.insert("code".into(), spec.code.into());
        if let Some(sub) = self.subcode {
            error.insert("error_subcode".into(), sub.into());
        }
        if self.is_transient() {
            error.insert("is_transient".into(), true.into());
        }
        let mut data = serde_json::Map::new();
        data.insert("messaging_product".into(), "whatsapp".into());
        data.insert("details".into(), self.details.clone().into());
        if let Some(reason) = self.reason {
            data.insert("reason".into(), reason.into());
        }
        error.insert("error_data".into(), data.into());
        error.insert("fbtrace_id".into(), fbtrace_id.into());
        serde_json::json!({ "error": error })
    }

    /// Error object inside a message-status webhook (title == message).
    pub fn status_error_json(&self, href: Option<&str>) -> serde_json::Value {
        let title = match self.kind {
            ErrorKind::Undeliverable => "Message undeliverable".to_owned(),
            ErrorKind::ReEngagement => "Re-engagement message".to_owned(),
            _ => self.kind.spec().title.to_owned(),
        };
        let mut obj = serde_json::json!({
            "code": self.code(),
            "title": title,
            "message": title,
            "error_data": { "details": self.details },
        });
        if let Some(h) = href {
            obj["href"] = h.into();
        }
        obj
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.message(), self.details)
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_envelope_carries_code_type_details_and_trace() {
        let e = ApiError::new(
            ErrorKind::NoCallPermission,
            "No approved call permission from the recipient",
        );
        let v = e.to_json("Abc");
        assert_eq!(v["error"]["code"], 138006);
        assert_eq!(
            v["error"]["message"],
            "(#138006) No approved call permission found"
        );
        assert_eq!(v["error"]["type"], "OAuthException");
        assert_eq!(
            v["error"]["error_data"]["details"],
            "No approved call permission from the recipient"
        );
        assert_eq!(v["error"]["fbtrace_id"], "Abc");
        assert_eq!(e.http_status(), 401);
    }

    #[test]
    fn service_unavailable_is_graphs_transient_code_2() {
        let e = ApiError::new(ErrorKind::ServiceUnavailable, "try again");
        let v = e.to_json("Abc");
        assert_eq!(e.http_status(), 503);
        assert_eq!(v["error"]["code"], 2);
        assert_eq!(
            v["error"]["message"],
            "(#2) Service temporarily unavailable"
        );
        assert_eq!(v["error"]["is_transient"], true);
        let other = ApiError::new(ErrorKind::RateLimit, "x").to_json("Abc");
        assert!(other["error"].get("is_transient").is_none());
    }

    #[test]
    fn token_errors_are_401_with_the_bare_graph_message() {
        let e = ApiError::new(ErrorKind::InvalidToken, "x");
        assert_eq!(e.http_status(), 401);
        assert_eq!(
            e.message(),
            "Invalid OAuth access token - Cannot parse access token"
        );
    }

    #[test]
    fn status_errors_repeat_the_title_as_message() {
        let e = ApiError::new(ErrorKind::Undeliverable, "Message Undeliverable.");
        let v = e.status_error_json(None);
        assert_eq!(v["title"], "Message undeliverable");
        assert_eq!(v["message"], "Message undeliverable");
        assert!(v.get("href").is_none());
    }
}
