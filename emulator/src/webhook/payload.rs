//! Webhook bodies, shaped field by field like `reference/cloud-api.md` (key order too).

use crate::domain::call::Call;
use crate::domain::tenant::PhoneNumber;
use crate::domain::user::User;
use crate::webhook::codec;
use serde::Serialize;
use serde_json::{json, Map, Value};

pub fn ts(ms: u64) -> String {
    (ms / 1000).to_string()
}

/// The webhook envelope around a change `value`, written straight to its ASCII-escaped
/// text: the hot path of every webhook, so no JSON tree is built around the value, and
/// a typed value needs none at all.
pub fn envelope_text<T: Serialize + ?Sized>(
    waba_id: &str,
    field: &str,
    value: &T,
    time: Option<u64>,
) -> String {
    let mut out = Vec::with_capacity(768);
    envelope_into(&mut out, waba_id, field, value, time);
    String::from_utf8(out).expect("the ASCII formatter writes ASCII")
}

/// [`envelope_text`] appended to `out` (a reused buffer).
pub fn envelope_into<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    waba_id: &str,
    field: &str,
    value: &T,
    time: Option<u64>,
) {
    out.extend_from_slice(br#"{"object":"whatsapp_business_account","entry":[{"id":"#);
    codec::write_ascii(out, waba_id);
    if let Some(t) = time {
        out.extend_from_slice(br#","time":"#);
        codec::write_ascii(out, &(t / 1000));
    }
    out.extend_from_slice(br#","changes":[{"value":"#);
    codec::write_ascii(out, value);
    out.extend_from_slice(br#","field":"#);
    codec::write_ascii(out, field);
    out.extend_from_slice(b"}]}]}");
}

/// Whole seconds of a millisecond time as a JSON string, like [`ts`], without the String.
#[derive(Debug, Clone, Copy)]
pub struct Secs(pub u64);

impl Serialize for Secs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&(self.0 / 1000))
    }
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

/// A message status `value` as typed borrowed fields, serialised straight to text: what
/// [`message_status`] builds as a tree, key for key, for the status webhooks every send
/// makes.
#[derive(Serialize)]
pub struct StatusValue<'a> {
    messaging_product: &'static str,
    metadata: Metadata<'a>,
    contacts: [Contact<'a>; 1],
    statuses: [Status<'a>; 1],
}

#[derive(Serialize)]
struct Metadata<'a> {
    display_phone_number: &'a str,
    phone_number_id: &'a str,
}

#[derive(Serialize)]
struct Contact<'a> {
    profile: Profile<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wa_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_user_id: Option<&'a str>,
}

#[derive(Serialize)]
struct Profile<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
}

#[derive(Serialize)]
struct Status<'a> {
    id: &'a str,
    status: &'a str,
    timestamp: Secs,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient_user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient_parent_user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    biz_opaque_callback_data: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation: Option<Conversation<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pricing: Option<Pricing<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Value>,
}

/// `conversation`: its id, `expiration_timestamp` (on `sent` only), `origin.type`.
#[derive(Serialize)]
pub struct Conversation<'a> {
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_timestamp: Option<Secs>,
    pub origin: Origin<'a>,
}

#[derive(Serialize)]
pub struct Origin<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
}

/// `pricing` of a `sent` or `delivered` status.
#[derive(Serialize)]
pub struct Pricing<'a> {
    pub billable: bool,
    pub pricing_model: &'static str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub category: &'a str,
}

/// [`StatusInput`] for [`status_value`]: borrowed, nothing built as a tree.
pub struct TypedStatusInput<'a> {
    pub message_id: &'a str,
    pub status: &'a str,
    pub at_ms: u64,
    pub biz_opaque_callback_data: Option<&'a str>,
    pub conversation: Option<Conversation<'a>>,
    pub pricing: Option<Pricing<'a>>,
    pub errors: Option<Value>,
}

/// [`message_status`] as a typed value (the same keys, in the same order).
pub fn status_value<'a>(
    phone: &'a PhoneNumber,
    seen: Seen<'a>,
    s: TypedStatusInput<'a>,
) -> StatusValue<'a> {
    let user: &'a User = seen.user;
    let wa_id = seen.phone.then_some(user.wa_id.as_str());
    let ids = seen
        .bsuid
        .then_some((user.user_id.as_str(), user.parent_user_id.as_deref()));
    let contact = Contact {
        profile: Profile {
            name: &user.name,
            username: seen.bsuid.then_some(user.username.as_deref()).flatten(),
        },
        wa_id,
        user_id: ids.map(|(id, _)| id),
        parent_user_id: ids.and_then(|(_, p)| p),
    };
    let status = Status {
        id: s.message_id,
        status: s.status,
        timestamp: Secs(s.at_ms),
        recipient_id: wa_id,
        recipient_user_id: ids.map(|(id, _)| id),
        recipient_parent_user_id: ids.and_then(|(_, p)| p),
        biz_opaque_callback_data: s.biz_opaque_callback_data,
        conversation: s.conversation,
        pricing: s.pricing,
        errors: s.errors,
    };
    StatusValue {
        messaging_product: "whatsapp",
        metadata: Metadata {
            display_phone_number: &phone.display_phone_number,
            phone_number_id: phone.id.as_str(),
        },
        contacts: [contact],
        statuses: [status],
    }
}

/// `envelope_text(waba_id, "messages", value, None)` for a status, written field by field:
/// the keys are constant text and plain strings are copied as they are, so the two status
/// webhooks of every send cost little more than their bytes.
pub fn status_envelope_text(waba_id: &str, v: &StatusValue<'_>) -> String {
    let mut o = Vec::with_capacity(768);
    status_envelope_into(&mut o, waba_id, v);
    String::from_utf8(o).expect("only ASCII is written")
}

/// [`status_envelope_text`] appended to `o` (a reused buffer).
pub fn status_envelope_into(o: &mut Vec<u8>, waba_id: &str, v: &StatusValue<'_>) {
    o.extend_from_slice(br#"{"object":"whatsapp_business_account","entry":[{"id":"#);
    push_str(o, waba_id);
    o.extend_from_slice(br#","changes":[{"value":{"messaging_product":"#);
    push_str(o, v.messaging_product);
    o.extend_from_slice(br#","metadata":{"display_phone_number":"#);
    push_str(o, v.metadata.display_phone_number);
    o.extend_from_slice(br#","phone_number_id":"#);
    push_str(o, v.metadata.phone_number_id);
    let [c] = &v.contacts;
    o.extend_from_slice(br#"},"contacts":[{"profile":{"name":"#);
    push_str(o, c.profile.name);
    push_opt(o, br#","username":"#, c.profile.username);
    o.push(b'}');
    push_opt(o, br#","wa_id":"#, c.wa_id);
    push_opt(o, br#","user_id":"#, c.user_id);
    push_opt(o, br#","parent_user_id":"#, c.parent_user_id);
    let [s] = &v.statuses;
    o.extend_from_slice(br#"}],"statuses":[{"id":"#);
    push_str(o, s.id);
    o.extend_from_slice(br#","status":"#);
    push_str(o, s.status);
    o.extend_from_slice(br#","timestamp":""#);
    push_secs(o, s.timestamp);
    o.push(b'"');
    push_opt(o, br#","recipient_id":"#, s.recipient_id);
    push_opt(o, br#","recipient_user_id":"#, s.recipient_user_id);
    push_opt(
        o,
        br#","recipient_parent_user_id":"#,
        s.recipient_parent_user_id,
    );
    push_opt(
        o,
        br#","biz_opaque_callback_data":"#,
        s.biz_opaque_callback_data,
    );
    if let Some(c) = &s.conversation {
        o.extend_from_slice(br#","conversation":{"id":"#);
        push_str(o, c.id);
        if let Some(t) = c.expiration_timestamp {
            o.extend_from_slice(br#","expiration_timestamp":""#);
            push_secs(o, t);
            o.push(b'"');
        }
        o.extend_from_slice(br#","origin":{"type":"#);
        push_str(o, c.origin.kind);
        o.extend_from_slice(b"}}");
    }
    if let Some(p) = &s.pricing {
        o.extend_from_slice(br#","pricing":{"billable":"#);
        o.extend_from_slice(if p.billable { b"true" } else { b"false" });
        o.extend_from_slice(br#","pricing_model":"#);
        push_str(o, p.pricing_model);
        o.extend_from_slice(br#","type":"#);
        push_str(o, p.kind);
        o.extend_from_slice(br#","category":"#);
        push_str(o, p.category);
        o.push(b'}');
    }
    if let Some(e) = &s.errors {
        o.extend_from_slice(br#","errors":"#);
        codec::write_ascii(o, e);
    }
    o.extend_from_slice(br#"}]},"field":"messages"}]}]}"#);
}

/// A JSON string as [`codec::write_ascii`] writes it; printable ASCII without quotes or
/// backslashes (nearly every id, number and name) is copied as is.
fn push_str(o: &mut Vec<u8>, s: &str) {
    if plain(s.as_bytes()) {
        o.push(b'"');
        o.extend_from_slice(s.as_bytes());
        o.push(b'"');
    } else {
        codec::write_ascii(o, s);
    }
}

/// Whether every byte is printable ASCII other than `"` and `\\`: eight bytes at a time.
fn plain(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte of `w` below `n` (n <= 0x80), or equal to `c`, sets its high bit here.
    let below = |w: u64, n: u64| w.wrapping_sub(ONES * n) & !w & HIGH;
    let equal = |w: u64, c: u64| below(w ^ (ONES * c), 1);
    let bad = |w: &[u8]| {
        let w = u64::from_le_bytes(w.try_into().expect("eight bytes"));
        (w & HIGH) | below(w, 0x20) | equal(w, 0x22) | equal(w, 0x5c) | equal(w, 0x7f) != 0
    };
    if s.len() < 8 {
        return s
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    }
    // The last eight bytes as one more word (it overlaps the one before when the length
    // is not a multiple of eight) instead of a byte loop over the rest.
    !s.chunks_exact(8).any(bad) && !bad(&s[s.len() - 8..])
}

fn push_opt(o: &mut Vec<u8>, key: &[u8], s: Option<&str>) {
    if let Some(s) = s {
        o.extend_from_slice(key);
        push_str(o, s);
    }
}

fn push_secs(o: &mut Vec<u8>, t: Secs) {
    use std::io::Write;
    let _ = write!(o, "{}", t.0 / 1000);
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
    fn plain_strings_are_found_eight_bytes_at_a_time() {
        for b in 0u8..=255 {
            let expected = (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\';
            // Every position of every length up to three words, the last word overlapping.
            for len in 1..=24 {
                for at in 0..len {
                    let mut s = vec![b'a'; len];
                    s[at] = b;
                    assert_eq!(plain(&s), expected, "byte {b:#x} at {at} of {len}");
                }
            }
        }
        assert!(plain(b""));
    }

    #[test]
    fn the_typed_status_is_the_tree_status_byte_for_byte() {
        use crate::domain::tenant::Tenants;
        use crate::domain::user::{ClientVersion, Platform};
        let phone = Tenants::default().phone_numbers[0].clone();
        let version = ClientVersion::parse("2.26.1").unwrap();
        let mut users = vec![User::new(
            "16315551234".into(),
            None,
            Platform::Android,
            version.clone(),
        )];
        let mut named = User::new(
            "447700900001".into(),
            Some("José \"📞\"\n".into()),
            Platform::Ios,
            version,
        );
        named.username = Some("jose.b".into());
        named.parent_user_id = Some("US.PARENT1".into());
        users.push(named.clone());
        named.parent_user_id = None;
        users.push(named);
        let error = crate::domain::error::ApiError::new(
            crate::domain::error::ErrorKind::Undeliverable,
            "Message Undeliverable.",
        );
        for user in &users {
            for (bsuid, shown) in [(false, true), (true, true), (true, false)] {
                let seen = Seen {
                    user,
                    bsuid,
                    phone: shown,
                };
                for status in ["sent", "delivered", "read", "failed"] {
                    for (conv, pricing, opaque, errors) in [
                        (true, true, Some("ctx ü"), false),
                        (false, false, None, true),
                        (true, false, None, false),
                    ] {
                        let exp = (status == "sent").then_some(1_767_312_000_000u64);
                        let tree_conv = conv.then(|| {
                            let mut c = json!({ "id": "6f1c" });
                            if let Some(e) = exp {
                                c["expiration_timestamp"] = ts(e).into();
                            }
                            c["origin"] = json!({ "type": "service" });
                            c
                        });
                        let tree = message_status(
                            &phone,
                            seen,
                            StatusInput {
                                message_id: "wamid.X",
                                status,
                                at_ms: 1_767_225_600_999,
                                biz_opaque_callback_data: opaque,
                                conversation: tree_conv,
                                pricing: pricing.then(|| json!({ "billable": false, "pricing_model": "PMP", "type": "free_customer_service", "category": "service" })),
                                errors: errors.then(|| json!([error.status_error_json(None)])),
                            },
                        );
                        let typed = status_value(
                            &phone,
                            seen,
                            TypedStatusInput {
                                message_id: "wamid.X",
                                status,
                                at_ms: 1_767_225_600_999,
                                biz_opaque_callback_data: opaque,
                                conversation: conv.then(|| Conversation {
                                    id: "6f1c",
                                    expiration_timestamp: exp.map(Secs),
                                    origin: Origin { kind: "service" },
                                }),
                                pricing: pricing.then_some(Pricing {
                                    billable: false,
                                    pricing_model: "PMP",
                                    kind: "free_customer_service",
                                    category: "service",
                                }),
                                errors: errors.then(|| json!([error.status_error_json(None)])),
                            },
                        );
                        assert_eq!(
                            envelope_text("102290129340398", "messages", &typed, None),
                            envelope_text("102290129340398", "messages", &tree, None)
                        );
                        assert_eq!(
                            status_envelope_text("102290129340398", &typed),
                            envelope_text("102290129340398", "messages", &typed, None)
                        );
                        assert_eq!(
                            envelope_text("1", "messages", &typed, None),
                            crate::webhook::codec::encode_ascii(&envelope(
                                "1", "messages", tree, None
                            ))
                        );
                    }
                }
            }
        }
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
