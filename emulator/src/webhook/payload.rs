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

pub fn contact(user: &User, bsuid: bool) -> Value {
    let mut c = json!({ "profile": { "name": user.name }, "wa_id": user.wa_id.as_str() });
    if bsuid {
        c["user_id"] = user.user_id.clone().into();
    }
    c
}

/// A `value` with metadata and (BSUID era) contacts, then `key: [item]`.
fn value_with(
    phone: &PhoneNumber,
    user: &User,
    bsuid: bool,
    key: &str,
    item: Value,
    errors: Option<Value>,
) -> Value {
    let mut v = Map::new();
    v.insert("messaging_product".into(), "whatsapp".into());
    v.insert("metadata".into(), metadata(phone));
    v.insert("contacts".into(), json!([contact(user, bsuid)]));
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

pub fn message_status(phone: &PhoneNumber, user: &User, bsuid: bool, s: StatusInput<'_>) -> Value {
    let mut st = Map::new();
    st.insert("id".into(), s.message_id.into());
    st.insert("status".into(), s.status.into());
    st.insert("timestamp".into(), ts(s.at_ms).into());
    st.insert("recipient_id".into(), user.wa_id.as_str().into());
    if bsuid {
        st.insert("recipient_user_id".into(), user.user_id.clone().into());
    }
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
    value_with(phone, user, bsuid, "statuses", Value::Object(st), None)
}

/// The parties of a call as `to`/`from`: user-initiated calls go user → business.
fn parties(call: &Call, phone: &PhoneNumber) -> (String, String) {
    let business = phone.display_phone_number.clone();
    let user = call.wa_id.0.clone();
    match call.direction {
        crate::domain::call::Direction::UserInitiated => (business, user),
        crate::domain::call::Direction::BusinessInitiated => (user, business),
    }
}

fn call_base(
    call: &Call,
    phone: &PhoneNumber,
    user: &User,
    bsuid: bool,
    event: &str,
) -> Map<String, Value> {
    let (to, from) = parties(call, phone);
    let mut c = Map::new();
    let user_initiated = call.direction == crate::domain::call::Direction::UserInitiated;
    c.insert("id".into(), call.id.as_str().into());
    c.insert("to".into(), to.into());
    if bsuid && !user_initiated {
        c.insert("to_user_id".into(), user.user_id.clone().into());
    }
    c.insert("from".into(), from.into());
    if bsuid && user_initiated {
        c.insert("from_user_id".into(), user.user_id.clone().into());
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
    user: &User,
    bsuid: bool,
    at_ms: u64,
    legacy_sdp: bool,
) -> Value {
    let mut c = call_base(call, phone, user, bsuid, "connect");
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
    value_with(phone, user, bsuid, "calls", Value::Object(c), None)
}

/// Call Terminate: `start_time`/`end_time`/`duration` only when picked up; `errors`
/// beside `calls` when the failure has error information.
pub fn call_terminate(
    call: &Call,
    phone: &PhoneNumber,
    user: &User,
    bsuid: bool,
    at_ms: u64,
    errors: Option<Value>,
) -> Value {
    let mut c = call_base(call, phone, user, bsuid, "terminate");
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
    value_with(phone, user, bsuid, "calls", Value::Object(c), errors)
}

/// Call status (business-initiated): RINGING, ACCEPTED, REJECTED.
pub fn call_status(
    call: &Call,
    phone: &PhoneNumber,
    user: &User,
    bsuid: bool,
    status: &str,
    at_ms: u64,
) -> Value {
    let mut s = Map::new();
    s.insert("id".into(), call.id.as_str().into());
    s.insert("timestamp".into(), ts(at_ms).into());
    s.insert("type".into(), "call".into());
    s.insert("status".into(), status.into());
    s.insert("recipient_id".into(), call.wa_id.as_str().into());
    if bsuid {
        s.insert("recipient_user_id".into(), user.user_id.clone().into());
    }
    if let Some(d) = &call.biz_opaque_callback_data {
        s.insert("biz_opaque_callback_data".into(), d.clone().into());
    }
    value_with(phone, user, bsuid, "statuses", Value::Object(s), None)
}

/// An inbound message from the user (`messages` field).
pub fn inbound_message(
    phone: &PhoneNumber,
    user: &User,
    bsuid: bool,
    message: Map<String, Value>,
) -> Value {
    value_with(phone, user, bsuid, "messages", Value::Object(message), None)
}

pub fn inbound_base(
    user: &User,
    bsuid: bool,
    id: &str,
    at_ms: u64,
    context: Option<(&str, &str)>,
    ty: &str,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("from".into(), user.wa_id.as_str().into());
    if bsuid {
        m.insert("from_user_id".into(), user.user_id.clone().into());
    }
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
