//! Message templates and their review state.

use super::ids::{TemplateId, WabaId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub id: TemplateId,
    pub waba_id: WabaId,
    pub name: String,
    pub language: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`.
    pub category: String,
    /// `APPROVED`, `PENDING`, `REJECTED`, …
    pub status: String,
    /// The components exactly as created (button `type` spelling kept).
    pub components: serde_json::Value,
    pub parameter_format: Option<String>,
    /// The `voice_call` button, if any: its position among the buttons and its TTL.
    pub voice_call_button: Option<TemplateCallButton>,
    pub is_permission_request: bool,
    /// Number of `{{…}}` placeholders in BODY.
    pub body_params: usize,
    pub created_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateCallButton {
    pub index: usize,
    pub text: String,
    pub ttl_minutes: Option<u32>,
}

/// Counts distinct `{{1}}` / `{{name}}` placeholders.
pub fn count_placeholders(text: &str) -> usize {
    let mut seen = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim();
        if !name.is_empty() {
            seen.insert(name.to_owned());
        }
        rest = &after[end + 2..];
    }
    seen.len()
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_counted_once_each() {
        assert_eq!(
            super::count_placeholders("Order {{1}} for {{2}}, again {{1}}"),
            2
        );
        assert_eq!(super::count_placeholders("Hi {{name}}"), 1);
        assert_eq!(super::count_placeholders("none {{ }} {{"), 0);
    }
}
