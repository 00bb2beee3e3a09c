//! Messages the business sends and their delivery state.

use super::ids::{MessageId, PhoneNumberId, WaId};
use serde::{Deserialize, Serialize};

pub const DEFAULT_TTL_MINUTES: u32 = 10_080;
pub const DEFAULT_BUTTON_TEXT: &str = "Call Now";

/// A `voice_call` button as the user's client holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallButton {
    pub display_text: String,
    /// The effective TTL: send-time value, else the template's, else 10080.
    pub ttl_minutes: u32,
    pub payload: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Accepted,
    Sent,
    Delivered,
    Read,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRef {
    pub name: String,
    pub language: String,
    pub category: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMessage {
    pub id: MessageId,
    pub phone_number_id: PhoneNumberId,
    pub to: WaId,
    /// `text`, `voice_call`, `call_permission_request`, `template`, or another Graph type.
    pub kind: String,
    pub sent_at_ms: u64,
    pub status: MessageStatus,
    pub error_code: Option<u32>,
    pub button: Option<CallButton>,
    /// Boxed: most messages are not templates, and every retained message pays for
    /// the field's size.
    pub template: Option<Box<TemplateRef>>,
    pub is_permission_request: bool,
    pub biz_opaque_callback_data: Option<String>,
    /// A delivered permission request: until when the user can answer it.
    #[serde(default)]
    pub request_lifetime: Option<super::permission::RequestLifetime>,
    /// The Graph version the send was made on: it decides the shape of its statuses.
    #[serde(default)]
    pub graph_version: super::version::GraphVersion,
    /// The text the user sees (text body, interactive body or template name), kept
    /// instead of the whole request so a long run stays small.
    pub text: Option<String>,
}

impl OutboundMessage {
    /// When the call button stops working (Unix ms), if the message has one.
    pub fn button_expires_at_ms(&self) -> Option<u64> {
        self.button.as_ref().map(|b| {
            self.sent_at_ms
                .saturating_add(u64::from(b.ttl_minutes) * 60_000)
        })
    }
}
