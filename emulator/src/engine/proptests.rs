//! Property tests of the engine: documented limits decide acceptance exactly, rejected
//! requests change nothing, and random call stories keep the webhook invariants.

use super::{ClockMode, Engine};
use crate::domain::ids::{AppId, CallId, MessageId, PhoneNumberId, WaId};
use crate::domain::tenant::{Behaviour, Tenants, DEFAULT_APP_ID, DEFAULT_PHONE_NUMBER_ID};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

const START_MS: u64 = 1_767_225_600_000;
const SDP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 AA\r\n";

fn engine() -> Engine {
    Engine::new(
        Tenants::default(),
        Behaviour::default(),
        3,
        ClockMode::Virtual,
        START_MS,
    )
}

fn app() -> AppId {
    AppId::from(DEFAULT_APP_ID)
}

fn phone() -> PhoneNumberId {
    PhoneNumberId::from(DEFAULT_PHONE_NUMBER_ID)
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

/// Deliveries in the outbox as (field, event, body value).
fn webhooks(e: &Engine) -> Vec<(String, String, Value)> {
    e.st.outbox
        .iter()
        .map(|d| {
            (
                d.field.clone(),
                d.event.clone(),
                serde_json::from_str::<Value>(&d.body).unwrap()["entry"][0]["changes"][0]["value"]
                    .clone(),
            )
        })
        .collect()
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ]{0,30}",
        "[éüñ漢字]{0,30}",
        proptest::collection::vec(prop_oneof![Just('📞'), Just('a'), Just('ß')], 0..30)
            .prop_map(|v| v.into_iter().collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A voice_call message is accepted exactly when display_text ≤ 20 characters,
    /// 1 ≤ ttl_minutes ≤ 43200 and payload ≤ 512 characters; a rejected one changes no state.
    #[test]
    fn voice_call_limits_decide_acceptance_and_rejections_change_nothing(
        display in text_strategy(),
        ttl in -5i64..50_000,
        payload_len in 0usize..700,
        payload_char in prop_oneof![Just('x'), Just('é'), Just('📞')],
    ) {
        let mut e = engine();
        let payload: String = std::iter::repeat_n(payload_char, payload_len).collect();
        let body = json!({"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call",
            "action":{"name":"voice_call","parameters":{"display_text":display,"ttl_minutes":ttl,"payload":payload}}}});
        let before = serde_json::to_string(&e.snapshot()).unwrap();
        let result = e.send_message(&app(), &phone(), &obj(body));
        let chars = display.chars().count();
        let valid = chars <= 20 && !display.trim().is_empty() && (1..=43_200).contains(&ttl) && payload_len <= 512;
        prop_assert_eq!(result.is_ok(), valid, "display {} chars, ttl {}, payload {}: {:?}", chars, ttl, payload_len, result);
        if let Err(err) = result {
            prop_assert!(matches!(err.code(), 100 | 131009), "code {}", err.code());
            let after = serde_json::to_string(&e.snapshot()).unwrap();
            prop_assert_eq!(before, after, "a rejected request changed the state");
        }
    }

    /// Template buttons: creation TTL 1440..=43200, send-time TTL 1..=43200 (which wins).
    #[test]
    fn template_ttl_limits_and_precedence(create_ttl in 1000u32..45_000, send_ttl in proptest::option::of(0i64..44_000)) {
        let mut e = engine();
        let created = e.create_template(&app(), &"102290129340398".into(), &obj(json!({"name":"t","language":"en","category":"MARKETING",
            "components":[{"type":"BODY","text":"hi"},{"type":"BUTTONS","buttons":[{"type":"voice_call","ttl_minutes":create_ttl}]}]})));
        prop_assert_eq!(created.is_ok(), (1440..=43_200).contains(&create_ttl));
        prop_assume!(created.is_ok());
        let mut button = json!({"type":"button","sub_type":"voice_call","parameters":[]});
        if let Some(t) = send_ttl {
            button["parameters"] = json!([{"type":"ttl_minutes","ttl_minutes":t}]);
        }
        let sent = e.send_message(&app(), &phone(), &obj(json!({"messaging_product":"whatsapp","to":"16315551234","type":"template",
            "template":{"name":"t","language":{"code":"en"},"components":[button]}})));
        prop_assert_eq!(sent.is_ok(), send_ttl.is_none_or(|t| (1..=43_200).contains(&t)));
        if let Ok(v) = sent {
            let id = MessageId(v["messages"][0]["id"].as_str().unwrap().to_owned());
            let expected = send_ttl.map(|t| t as u32).unwrap_or(create_ttl);
            prop_assert_eq!(e.st.messages.get(&id).unwrap().button.as_ref().unwrap().ttl_minutes, expected);
        }
    }
}

/// One step of a random call story.
#[derive(Debug, Clone)]
enum Step {
    SendButton {
        user: usize,
        payload: Option<String>,
    },
    Tap {
        user: usize,
    },
    OpenLink {
        user: usize,
        payload: Option<String>,
    },
    NativeCall {
        user: usize,
    },
    PreAccept {
        call: usize,
    },
    Accept {
        call: usize,
        opaque: Option<String>,
    },
    Reject {
        call: usize,
    },
    Terminate {
        call: usize,
    },
    Hangup {
        call: usize,
    },
    Advance {
        secs: u64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let payload = proptest::option::of("[a-z0-9é]{1,8}");
    prop_oneof![
        (0..3usize, payload.clone()).prop_map(|(user, payload)| Step::SendButton { user, payload }),
        (0..3usize).prop_map(|user| Step::Tap { user }),
        (0..3usize, payload).prop_map(|(user, payload)| Step::OpenLink { user, payload }),
        (0..3usize).prop_map(|user| Step::NativeCall { user }),
        (0..6usize).prop_map(|call| Step::PreAccept { call }),
        (0..6usize, proptest::option::of("[a-z]{1,5}"))
            .prop_map(|(call, opaque)| Step::Accept { call, opaque }),
        (0..6usize).prop_map(|call| Step::Reject { call }),
        (0..6usize).prop_map(|call| Step::Terminate { call }),
        (0..6usize).prop_map(|call| Step::Hangup { call }),
        prop_oneof![Just(1u64), Just(30), Just(61), Just(3600)]
            .prop_map(|secs| Step::Advance { secs }),
    ]
}

/// What the reference model expects of a call.
#[derive(Debug, Clone)]
struct ModelCall {
    id: CallId,
    payload_key: Option<&'static str>,
    payload: Option<String>,
    accepted_at: Option<u64>,
    ended: bool,
    opaque: Option<String>,
}

const USERS: [(&str, &str); 3] = [
    ("10000000001", "2.25.30"),
    ("10000000002", "2.25.26"),
    ("10000000003", "2.26.1"),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_call_stories_keep_the_webhook_invariants(steps in proptest::collection::vec(step(), 1..40)) {
        let mut e = engine();
        for (wa, v) in USERS {
            e.upsert_user(WaId::from(wa), None, None, crate::domain::user::ClientVersion::parse(v), None);
        }
        let mut last_button: HashMap<usize, (MessageId, Option<String>, u64)> = HashMap::new();
        let mut calls: Vec<ModelCall> = Vec::new();
        for s in &steps {
            let now = e.now();
            match s.clone() {
                Step::SendButton { user, payload } => {
                    let mut params = json!({"ttl_minutes": 2});
                    if let Some(p) = &payload { params["payload"] = p.clone().into(); }
                    let v = e.send_message(&app(), &phone(), &obj(json!({"messaging_product":"whatsapp","to":USERS[user].0,"type":"interactive",
                        "interactive":{"type":"voice_call","action":{"name":"voice_call","parameters":params}}})));
                    // The window closes 24 h after the user's last activity: then 131047, still 200.
                    let v = v.unwrap();
                    last_button.insert(user, (MessageId(v["messages"][0]["id"].as_str().unwrap().to_owned()), payload, now));
                }
                Step::Tap { user } => {
                    let Some((mid, payload, sent)) = last_button.get(&user).cloned() else { continue };
                    let busy = calls.iter().any(|c| !c.ended && e.st.calls[&c.id].wa_id.as_str() == USERS[user].0);
                    let delivered = e.st.messages.get(&mid).is_some_and(|m| m.status != crate::domain::message::MessageStatus::Failed);
                    let r = e.user_tap(&WaId::from(USERS[user].0), &mid);
                    let expect_ok = !busy && delivered && now < sent + 120_000;
                    prop_assert_eq!(r.is_ok(), expect_ok, "tap {:?}", r);
                    if let Ok(v) = r {
                        let echo = USERS[user].1 != "2.25.26";
                        calls.push(ModelCall { id: CallId(v["call_id"].as_str().unwrap().to_owned()), payload_key: Some("cta_payload"), payload: payload.filter(|_| echo), accepted_at: None, ended: false, opaque: None });
                    }
                }
                Step::OpenLink { user, payload } => {
                    let url = match &payload { Some(p) => format!("wa.me/call/15550783881?biz_payload={p}"), None => "wa.me/call/15550783881".into() };
                    let busy = calls.iter().any(|c| !c.ended && e.st.calls[&c.id].wa_id.as_str() == USERS[user].0);
                    let r = e.user_open_link(&WaId::from(USERS[user].0), &url);
                    prop_assert_eq!(r.is_ok(), !busy);
                    if let Ok(v) = r {
                        let echo = USERS[user].1 != "2.25.26";
                        calls.push(ModelCall { id: CallId(v["call_id"].as_str().unwrap().to_owned()), payload_key: Some("deeplink_payload"), payload: payload.filter(|_| echo), accepted_at: None, ended: false, opaque: None });
                    }
                }
                Step::NativeCall { user } => {
                    let busy = calls.iter().any(|c| !c.ended && e.st.calls[&c.id].wa_id.as_str() == USERS[user].0);
                    let r = e.user_call(&WaId::from(USERS[user].0), None);
                    prop_assert_eq!(r.is_ok(), !busy);
                    if let Ok(v) = r {
                        calls.push(ModelCall { id: CallId(v["call_id"].as_str().unwrap().to_owned()), payload_key: None, payload: None, accepted_at: None, ended: false, opaque: None });
                    }
                }
                Step::PreAccept { call } | Step::Accept { call, .. } | Step::Reject { call } | Step::Terminate { call } | Step::Hangup { call } => {
                    let Some(mc) = calls.get(call).cloned() else { continue };
                    let r = match s {
                        Step::Hangup { .. } => e.user_hangup(&mc.id).map(|_| ()),
                        _ => {
                            let (action, extra) = match s {
                                Step::PreAccept { .. } => ("pre_accept", json!({"session":{"sdp_type":"answer","sdp":SDP}})),
                                Step::Accept { opaque, .. } => ("accept", json!({"session":{"sdp_type":"answer","sdp":SDP},"biz_opaque_callback_data":opaque})),
                                Step::Reject { .. } => ("reject", json!({})),
                                _ => ("terminate", json!({})),
                            };
                            let mut body = json!({"messaging_product":"whatsapp","call_id":mc.id.as_str(),"action":action});
                            for (k, v) in extra.as_object().unwrap() { body[k] = v.clone(); }
                            e.call_action(&app(), &phone(), &obj(body)).map(|_| ())
                        }
                    };
                    if mc.ended {
                        prop_assert!(r.is_err(), "an action on a finished call succeeded: {:?}", s);
                        continue;
                    }
                    let m = &mut calls[call];
                    match (s, r.is_ok()) {
                        (Step::Accept { opaque, .. }, true) => { m.accepted_at = Some(now); m.opaque = opaque.clone(); }
                        (Step::Reject { .. } | Step::Terminate { .. } | Step::Hangup { .. }, true) => m.ended = true,
                        (Step::PreAccept { .. }, _) => {}
                        (Step::Accept { .. }, false) => prop_assert!(m.accepted_at.is_some(), "accept refused on a ringing call"),
                        (Step::Reject { .. }, false) => prop_assert!(m.accepted_at.is_some(), "reject refused on a ringing call"),
                        (_, false) => prop_assert!(false, "{:?} refused on an ongoing call", s),
                        _ => {}
                    }
                }
                Step::Advance { secs } => {
                    let target = now + secs * 1000;
                    while e.advance_step(target) {}
                    for m in calls.iter_mut() {
                        if !m.ended && m.accepted_at.is_none() && e.st.calls[&m.id].state == crate::domain::call::CallState::Ended {
                            prop_assert!(e.now() >= e.st.calls[&m.id].created_at_ms + 60_000);
                            m.ended = true;
                        }
                    }
                }
            }
        }
        // End every call, then check the log.
        for m in calls.iter_mut().filter(|m| !m.ended) {
            e.user_hangup(&m.id).unwrap();
            m.ended = true;
        }
        let hooks = webhooks(&e);
        for m in &calls {
            let of_call = |event: &str| hooks.iter().filter(|(f, ev, v)| f == "calls" && ev == event && v["calls"][0]["id"] == m.id.as_str()).map(|(_, _, v)| v["calls"][0].clone()).collect::<Vec<_>>();
            let connects = of_call("connect");
            let terminates = of_call("terminate");
            prop_assert_eq!(connects.len(), 1, "call {} connects", m.id);
            prop_assert_eq!(terminates.len(), 1, "call {} terminates", m.id);
            for c in [&connects[0], &terminates[0]] {
                for key in ["cta_payload", "deeplink_payload"] {
                    let expected = if m.payload_key == Some(key) { m.payload.clone() } else { None };
                    prop_assert_eq!(c.get(key).and_then(Value::as_str).map(str::to_owned), expected, "{} of {}", key, m.id);
                }
            }
            let t = &terminates[0];
            let call = &e.st.calls[&m.id];
            match m.accepted_at {
                Some(_) => {
                    prop_assert_eq!(&t["status"], "COMPLETED");
                    let start: u64 = t["start_time"].as_str().unwrap().parse().unwrap();
                    let end: u64 = t["end_time"].as_str().unwrap().parse().unwrap();
                    prop_assert_eq!(t["duration"].as_u64().unwrap(), call.duration_secs().unwrap());
                    prop_assert!(end >= start && end - start <= t["duration"].as_u64().unwrap() + 1);
                    prop_assert_eq!(t.get("biz_opaque_callback_data").and_then(Value::as_str).map(str::to_owned), m.opaque.clone());
                }
                None => {
                    prop_assert_eq!(&t["status"], "FAILED");
                    prop_assert!(t.get("duration").is_none());
                }
            }
        }
        // Webhook timestamps never go back in time, and every signature verifies.
        let mut last = 0u64;
        for d in e.st.outbox.iter() {
            prop_assert!(d.created_at_ms >= last);
            last = d.created_at_ms;
            prop_assert!(crate::webhook::codec::verify(b"wa-emulator-secret", d.body.as_bytes(), &d.signature));
            prop_assert!(d.body.is_ascii());
        }
    }
}
