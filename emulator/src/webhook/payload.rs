//! Webhook bodies, shaped field by field like `reference/cloud-api.md` (key order too).

use crate::domain::call::Call;
use crate::domain::tenant::PhoneNumber;
use crate::domain::user::User;
use serde_json::{json, Map, Value};

pub fn ts(ms: u64) -> String {
    (ms / 1000).to_string()
}

/// The webhook envelope around a change `value`, written straight to its ASCII-escaped text: the hot
/// path of every webhook, so no second JSON tree is built around the value.
pub fn envelope_text(waba_id: &str, field: &str, value: &Value, time: Option<u64>) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(r#"{"object":"whatsapp_business_account","entry":[{"id":"#);
    out.push_str(&Value::from(waba_id).to_string());
    if let Some(t) = time {
        out.push_str(r#","time":"#);
        out.push_str(&(t / 1000).to_string());
    }
    out.push_str(r#","changes":[{"value":"#);
    out.push_str(&serde_json::to_string(value).expect("a JSON value always serialises"));
    out.push_str(r#","field":"#);
    out.push_str(&Value::from(field).to_string());
    out.push_str("}]}]}");
    crate::webhook::codec::escape_non_ascii_owned(out)
}

pub fn metadata(phone: &PhoneNumber) -> Value {
    json!({ "display_phone_number": phone.display_phone_number, "phone_number_id": phone.id.as_str() })
}

/// A user as one business number sees them in webhooks (cloud-api §4.6, §13).
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub user: &'a User,
    /// BSUID-era fields: `user_id` and `parent_user_id`, `profile.username`,
    /// `from_user_id`/`to_user_id`/`recipient_user_id` and their `*_parent_user_id`
    /// (`Behaviour::bsuid`).
    pub bsuid: bool,
    /// The phone number fields (`wa_id`, the user's `from`/`to`, `recipient_id`); false
    /// while a user with a username keeps their number from this business.
    pub phone: bool,
}

impl Seen<'_> {
    /// The user's phone number, when shown.
    fn wa_id(&self) -> Option<&str> {
        self.phone.then(|| self.user.wa_id.as_str())
    }

    /// `(user_id, parent_user_id)`, when BSUIDs are on.
    fn ids(&self) -> Option<(&str, Option<&str>)> {
        self.bsuid.then_some((
            self.user.user_id.as_str(),
            self.user.parent_user_id.as_deref(),
        ))
    }

    /// `<prefix>user_id` and `<prefix>parent_user_id` (`from_`, `to_`, `recipient_`).
    fn insert_ids(&self, m: &mut Map<String, Value>, prefix: &str) {
        if let Some((id, parent)) = self.ids() {
            m.insert(format!("{prefix}user_id"), id.into());
            if let Some(p) = parent {
                m.insert(format!("{prefix}parent_user_id"), p.into());
            }
        }
    }
}

/// `contacts[0]`: `{"profile":{"name","username"?},"wa_id"?,"user_id"?,"parent_user_id"?}`.
pub fn contact(seen: Seen<'_>) -> Value {
    let mut profile = Map::new();
    profile.insert("name".into(), seen.user.name.clone().into());
    if let (true, Some(u)) = (seen.bsuid, &seen.user.username) {
        profile.insert("username".into(), u.clone().into());
    }
    let mut c = Map::new();
    c.insert("profile".into(), Value::Object(profile));
    if let Some(wa) = seen.wa_id() {
        c.insert("wa_id".into(), wa.into());
    }
    seen.insert_ids(&mut c, "");
    Value::Object(c)
}

/// A `value` with metadata and (BSUID era) contacts, then `key: [item]`.
fn value_with(
    phone: &PhoneNumber,
    seen: Seen<'_>,
    key: &str,
    item: Value,
    errors: Option<Value>,
) -> Value {
    let mut v = Map::new();
    v.insert("messaging_product".into(), "whatsapp".into());
    v.insert("metadata".into(), metadata(phone));
    v.insert("contacts".into(), json!([contact(seen)]));
    v.insert(key.into(), json!([item]));
    if let Some(e) = errors {
        v.insert("errors".into(), e);
    }
    Value::Object(v)
}

pub struct StatusInput<'a> {
    pub message_id: &'a str,
    pub status: &'a str,
    pub at_ms: u64,
    pub biz_opaque_callback_data: Option<&'a str>,
    pub conversation: Option<Value>,
    pub pricing: Option<Value>,
    pub errors: Option<Value>,
}

pub fn message_status(phone: &PhoneNumber, seen: Seen<'_>, s: StatusInput<'_>) -> Value {
    let mut st = Map::new();
    st.insert("id".into(), s.message_id.into());
    st.insert("status".into(), s.status.into());
    st.insert("timestamp".into(), ts(s.at_ms).into());
    if let Some(wa) = seen.wa_id() {
        st.insert("recipient_id".into(), wa.into());
    }
    seen.insert_ids(&mut st, "recipient_");
    if let Some(d) = s.biz_opaque_callback_data {
        st.insert("biz_opaque_callback_data".into(), d.into());
    }
    if let Some(c) = s.conversation {
        st.insert("conversation".into(), c);
    }
    if let Some(p) = s.pricing {
        st.insert("pricing".into(), p);
    }
    if let Some(e) = s.errors {
        st.insert("errors".into(), e);
    }
    value_with(phone, seen, "statuses", Value::Object(st), None)
}

/// `id`, then the parties as `to`/`from` (user-initiated calls go user → business), the
/// user's side with its BSUIDs and, when shown, its number; then `event`.
fn call_base(call: &Call, phone: &PhoneNumber, seen: Seen<'_>, event: &str) -> Map<String, Value> {
    let business = phone.display_phone_number.as_str();
    let user_initiated = call.direction == crate::domain::call::Direction::UserInitiated;
    let user_number = seen.phone.then(|| call.wa_id.as_str());
    let mut c = Map::new();
    c.insert("id".into(), call.id.as_str().into());
    if user_initiated {
        c.insert("to".into(), business.into());
        if let Some(wa) = user_number {
            c.insert("from".into(), wa.into());
        }
        seen.insert_ids(&mut c, "from_");
    } else {
        if let Some(wa) = user_number {
            c.insert("to".into(), wa.into());
        }
        seen.insert_ids(&mut c, "to_");
        c.insert("from".into(), business.into());
    }
    c.insert("event".into(), event.into());
    c
}

fn insert_payloads(c: &mut Map<String, Value>, call: &Call) {
    if let Some(p) = &call.deeplink_payload {
        c.insert("deeplink_payload".into(), p.clone().into());
    }
    if let Some(p) = &call.cta_payload {
        c.insert("cta_payload".into(), p.clone().into());
    }
}

/// Call Connect: user-initiated carries Meta's SDP offer (and the payload that started
/// it); business-initiated carries Meta's SDP answer.
pub fn call_connect(
    call: &Call,
    phone: &PhoneNumber,
    seen: Seen<'_>,
    at_ms: u64,
    legacy_sdp: bool,
) -> Value {
    let mut c = call_base(call, phone, seen, "connect");
    c.insert("timestamp".into(), ts(at_ms).into());
    c.insert("direction".into(), call.direction.wire().into());
    let (sdp_type, sdp) = match call.direction {
        crate::domain::call::Direction::UserInitiated => {
            insert_payloads(&mut c, call);
            ("offer", call.offer_sdp.clone())
        }
        crate::domain::call::Direction::BusinessInitiated => {
            if let Some(d) = &call.biz_opaque_callback_data {
                c.insert("biz_opaque_callback_data".into(), d.clone().into());
            }
            ("answer", call.answer_sdp.clone().unwrap_or_default())
        }
    };
    if legacy_sdp {
        let inner = json!({ "sdp": sdp, "type": sdp_type }).to_string();
        c.insert("connection".into(), json!({ "webrtc": { "sdp": inner } }));
    }
    c.insert(
        "session".into(),
        json!({ "sdp_type": sdp_type, "sdp": sdp }),
    );
    value_with(phone, seen, "calls", Value::Object(c), None)
}

/// Call Terminate: `start_time`/`end_time`/`duration` only when picked up; `errors`
/// beside `calls` when the failure has error information.
pub fn call_terminate(
    call: &Call,
    phone: &PhoneNumber,
    seen: Seen<'_>,
    at_ms: u64,
    errors: Option<Value>,
) -> Value {
    let mut c = call_base(call, phone, seen, "terminate");
    c.insert("direction".into(), call.direction.wire().into());
    insert_payloads(&mut c, call);
    if let Some(d) = &call.biz_opaque_callback_data {
        c.insert("biz_opaque_callback_data".into(), d.clone().into());
    }
    c.insert("timestamp".into(), ts(at_ms).into());
    let picked_up = call.end_reason.as_ref().is_some_and(|r| r.picked_up());
    c.insert(
        "status".into(),
        if picked_up { "COMPLETED" } else { "FAILED" }.into(),
    );
    // Times only when the call was picked up, whatever ended it.
    if let (Some(a), Some(e)) = (call.answered_at_ms, call.ended_at_ms) {
        c.insert("start_time".into(), ts(a).into());
        c.insert("end_time".into(), ts(e).into());
        c.insert("duration".into(), call.duration_secs().unwrap_or(0).into());
    }
    value_with(phone, seen, "calls", Value::Object(c), errors)
}

/// Call status (business-initiated): RINGING, ACCEPTED, REJECTED.
pub fn call_status(
    call: &Call,
    phone: &PhoneNumber,
    seen: Seen<'_>,
    status: &str,
    at_ms: u64,
) -> Value {
    let mut s = Map::new();
    s.insert("id".into(), call.id.as_str().into());
    s.insert("timestamp".into(), ts(at_ms).into());
    s.insert("type".into(), "call".into());
    s.insert("status".into(), status.into());
    if seen.phone {
        s.insert("recipient_id".into(), call.wa_id.as_str().into());
    }
    seen.insert_ids(&mut s, "recipient_");
    if let Some(d) = &call.biz_opaque_callback_data {
        s.insert("biz_opaque_callback_data".into(), d.clone().into());
    }
    value_with(phone, seen, "statuses", Value::Object(s), None)
}

/// An inbound message from the user (`messages` field).
pub fn inbound_message(phone: &PhoneNumber, seen: Seen<'_>, message: Map<String, Value>) -> Value {
    value_with(phone, seen, "messages", Value::Object(message), None)
}

pub fn inbound_base(
    seen: Seen<'_>,
    id: &str,
    at_ms: u64,
    context: Option<(&str, &str)>,
    ty: &str,
) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(wa) = seen.wa_id() {
        m.insert("from".into(), wa.into());
    }
    seen.insert_ids(&mut m, "from_");
    m.insert("id".into(), id.into());
    m.insert("timestamp".into(), ts(at_ms).into());
    if let Some((from, cid)) = context {
        m.insert("context".into(), json!({ "from": from, "id": cid }));
    }
    m.insert("type".into(), ty.into());
    m
}

pub fn template_status(
    id: &str,
    name: &str,
    language: &str,
    category: &str,
    event: &str,
    reason: &str,
) -> Value {
    json!({
        "event": event,
        "message_template_id": id.parse::<u64>().map(Value::from).unwrap_or_else(|_| id.into()),
        "message_template_name": name,
        "message_template_language": language,
        "reason": reason,
        "message_template_category": category,
    })
}

pub fn settings_update(phone: &PhoneNumber, at_ms: u64, calling: Value) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "timestamp": ts(at_ms),
        "type": "phone_number_settings",
        "phone_number_settings": { "phone_number_id": phone.id.as_str(), "calling": calling },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The envelope as a JSON tree: the oracle the text form is checked against.
    /// `{"object":"whatsapp_business_account","entry":[{"id":WABA,"changes":[{"value","field"}]}]}`
    fn envelope(waba_id: &str, field: &str, value: Value, time: Option<u64>) -> Value {
        let mut entry = Map::new();
        entry.insert("id".into(), waba_id.into());
        if let Some(t) = time {
            entry.insert("time".into(), (t / 1000).into());
        }
        entry.insert(
            "changes".into(),
            json!([{ "value": value, "field": field }]),
        );
        json!({ "object": "whatsapp_business_account", "entry": [entry] })
    }

    #[test]
    fn the_text_envelope_equals_the_tree_envelope() {
        let value = serde_json::json!({"messaging_product": "whatsapp", "name": "José 📞", "n": 1});
        for time in [None, Some(1_767_225_600_123)] {
            let text = envelope_text("102290129340398", "calls", &value, time);
            let tree = crate::webhook::codec::encode_ascii(&envelope(
                "102290129340398",
                "calls",
                value.clone(),
                time,
            ));
            assert_eq!(text, tree);
        }
    }
}
