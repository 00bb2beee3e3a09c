//! Fuzzing the request path in process (issue 9): arbitrary bytes, arbitrary JSON values,
//! and valid bodies with one part broken, fed through `api::handle` to the Graph
//! endpoints (messages, calls, settings, message_templates) and the admin user
//! endpoints. The properties: no panic, always a JSON body, a Graph-shaped error on every
//! 4xx (never a 5xx), and a rejected request changes no state.
//!
//! 256 cases per property by default; `PROPTEST_CASES=20000` runs a longer campaign.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Map, Value};
use wa_emulator::api::{self, Context, Request};
use wa_emulator::domain::tenant::{Behaviour, Tenants};
use wa_emulator::engine::{ClockMode, Engine};

const START_MS: u64 = 1_767_225_600_000;
/// The +1 number: user-initiated calls only.
const PHONE: &str = "106540352242922";
/// The UK number, where business-initiated calls and permission requests exist.
const PHONE2: &str = "110972043181256";
const WABA: &str = "102290129340398";
const USER: &str = "16315551234";
const SDP_OFFER: &str = "v=0\r\no=- 7 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 AA:BB:CC\r\na=setup:actpass\r\n";
const SDP_ANSWER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 AA:BB:CC\r\na=setup:active\r\n";

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

/// Ids of the objects the world holds, for paths and bodies that reach deep.
struct World {
    engine: Engine,
    message: String,
    /// A message to another user, whose button is still untouched.
    untapped: String,
    call: String,
    template: String,
}

fn request(method: &str, path: &str, body: impl Into<bytes::Bytes>) -> Request {
    Request::new(
        method,
        path,
        vec![
            ("authorization".into(), "Bearer wa-emulator-token".into()),
            ("content-type".into(), "application/json".into()),
        ],
        body,
    )
}

fn ok(engine: &mut Engine, method: &str, path: &str, body: Value) -> Value {
    let r = api::handle(
        engine,
        &request(method, path, body.to_string()),
        &Context::default(),
    );
    let v = r.body_json();
    assert_eq!(r.status, 200, "{method} {path}: {v}");
    v
}

/// A user, a template, a message with a button, a ringing call, an inbound text, and a
/// permanent call permission on the UK number (+1 numbers have none).
fn world() -> World {
    let mut engine = Engine::new(
        Tenants::default(),
        Behaviour::default(),
        5,
        ClockMode::Virtual,
        START_MS,
    );
    let e = &mut engine;
    let t = ok(
        e,
        "POST",
        &format!("/v21.0/{WABA}/message_templates"),
        json!({"name":"kept","language":"en","category":"UTILITY","components":[{"type":"BODY","text":"hi"},
            {"type":"BUTTONS","buttons":[{"type":"VOICE_CALL","text":"Call","ttl_minutes":1440}]}]}),
    );
    let m = ok(
        e,
        "POST",
        &format!("/v21.0/{PHONE}/messages"),
        voice_call_body(),
    );
    let message = m["messages"][0]["id"].as_str().unwrap().to_owned();
    let mut other = voice_call_body();
    other["to"] = "16315550007".into();
    let m = ok(e, "POST", &format!("/v21.0/{PHONE}/messages"), other);
    let untapped = m["messages"][0]["id"].as_str().unwrap().to_owned();
    let c = ok(
        e,
        "POST",
        &format!("/__emulator/users/{USER}/tap"),
        json!({ "message_id": message }),
    );
    ok(
        e,
        "POST",
        &format!("/__emulator/users/{USER}/messages"),
        json!({"text": "hi"}),
    );
    ok(
        e,
        "POST",
        "/__emulator/users/16315550008/permission-reply",
        json!({"response": "accept", "permanent": true, "phone_number_id": PHONE2}),
    );
    let _ = e.take_effects();
    World {
        engine,
        message,
        untapped,
        call: c["call_id"].as_str().unwrap().to_owned(),
        template: t["id"].as_str().unwrap().to_owned(),
    }
}

fn voice_call_body() -> Value {
    json!({"messaging_product":"whatsapp","recipient_type":"individual","to":USER,"type":"interactive",
        "biz_opaque_callback_data":"o",
        "interactive":{"type":"voice_call","body":{"text":"Call us"},
            "action":{"name":"voice_call","parameters":{"display_text":"Call","ttl_minutes":60,"payload":"P"}}}})
}

/// An endpoint and bodies it accepts on a fresh world (the starting points of mutation).
struct Endpoint {
    method: &'static str,
    path: fn(&World) -> String,
    valid: fn(&World) -> Vec<Value>,
}

fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint {
            method: "POST",
            path: |_| format!("/v21.0/{PHONE}/messages"),
            valid: |_| {
                vec![
                    voice_call_body(),
                    json!({"messaging_product":"whatsapp","to":"16315550001","type":"text","text":{"body":"hi","preview_url":false}}),
                    json!({"messaging_product":"whatsapp","to":"16315550002","type":"template","template":{"name":"kept","language":{"code":"en"},
                        "components":[{"type":"body","parameters":[]},{"type":"button","sub_type":"voice_call","index":0,"parameters":[{"type":"payload","payload":"X"},{"type":"ttl_minutes","ttl_minutes":600}]}]}}),
                ]
            },
        },
        // Business-initiated: from the UK number, to US users written with `+`.
        Endpoint {
            method: "POST",
            path: |_| format!("/v21.0/{PHONE2}/messages"),
            valid: |_| {
                vec![
                    json!({"messaging_product":"whatsapp","to":"+16315550003","type":"interactive","interactive":{"type":"call_permission_request",
                        "body":{"text":"May we call?"},"action":{"name":"call_permission_request"}}}),
                ]
            },
        },
        Endpoint {
            method: "POST",
            path: |_| format!("/v21.0/{PHONE2}/calls"),
            valid: |_| {
                vec![
                    json!({"messaging_product":"whatsapp","to":"+16315550008","action":"connect","session":{"sdp_type":"offer","sdp":SDP_OFFER},
                        "biz_opaque_callback_data":"c"}),
                ]
            },
        },
        Endpoint {
            method: "POST",
            path: |_| format!("/v21.0/{PHONE}/calls"),
            valid: |w| {
                vec![
                    json!({"messaging_product":"whatsapp","call_id":w.call,"action":"pre_accept","session":{"sdp_type":"answer","sdp":SDP_ANSWER}}),
                    json!({"messaging_product":"whatsapp","call_id":w.call,"action":"accept","session":{"sdp_type":"answer","sdp":SDP_ANSWER},"biz_opaque_callback_data":"b"}),
                    json!({"messaging_product":"whatsapp","call_id":w.call,"action":"reject"}),
                    json!({"messaging_product":"whatsapp","call_id":w.call,"action":"terminate"}),
                ]
            },
        },
        Endpoint {
            method: "POST",
            path: |_| format!("/v21.0/{PHONE}/settings"),
            valid: |_| {
                vec![
                    json!({"calling":{"status":"ENABLED","call_icon_visibility":"DEFAULT",
                    "call_icons":{"restrict_to_user_countries":["US","BR"]},
                    "callback_permission_status":"ENABLED",
                    "call_hours":{"status":"ENABLED","timezone_id":"Europe/Berlin",
                        "weekly_operating_hours":[{"day_of_week":"MONDAY","open_time":"0900","close_time":"1700"}],
                        "holiday_schedule":[{"date":"2030-12-25","start_time":"0000","end_time":"2359"}]},
                    "srtp_key_exchange_protocol":"DTLS",
                    "sip":{"status":"DISABLED","servers":[{"hostname":"sip.example.com","port":5061,"transport":"tcp",
                        "request_uri_user_params":{"tgrp":"a"}}]}}}),
                ]
            },
        },
        Endpoint {
            method: "POST",
            path: |_| format!("/v21.0/{WABA}/message_templates"),
            valid: |_| {
                vec![
                    json!({"name":"fuzzed","language":"en_US","category":"MARKETING","parameter_format":"positional",
                    "components":[{"type":"HEADER","format":"TEXT","text":"Hi"},{"type":"BODY","text":"Hello {{1}}"},{"type":"FOOTER","text":"f"},
                        {"type":"BUTTONS","buttons":[{"type":"VOICE_CALL","text":"Call","ttl_minutes":2000},{"type":"QUICK_REPLY","text":"No"}]}]}),
                ]
            },
        },
        Endpoint {
            method: "POST",
            path: |_| "/__emulator/users".into(),
            valid: |_| {
                vec![
                    json!({"wa_id":"16315550009","name":"Ana","platform":"ios","version":"2.25.30","window_open":true}),
                ]
            },
        },
        Endpoint {
            method: "POST",
            path: |_| format!("/__emulator/users/{USER}/messages"),
            valid: |_| vec![json!({"text":"hello","phone_number_id":PHONE})],
        },
        Endpoint {
            method: "POST",
            path: |_| format!("/__emulator/users/{USER}/read"),
            valid: |w| vec![json!({ "message_id": w.message })],
        },
        Endpoint {
            method: "POST",
            path: |_| "/__emulator/users/16315550007/tap".into(),
            valid: |w| vec![json!({ "message_id": w.untapped })],
        },
        Endpoint {
            method: "POST",
            path: |_| "/__emulator/users/16315550004/open-link".into(),
            valid: |_| vec![json!({"url":"https://wa.me/call/15550783881?biz_payload=Q"})],
        },
        Endpoint {
            method: "POST",
            path: |_| "/__emulator/users/16315550005/call".into(),
            valid: |_| vec![json!({ "phone_number_id": PHONE })],
        },
        Endpoint {
            method: "POST",
            path: |_| "/__emulator/users/16315550006/permission-reply".into(),
            valid: |_| vec![json!({"response":"accept","permanent":true,"phone_number_id":PHONE2})],
        },
        Endpoint {
            method: "POST",
            path: |w| format!("/__emulator/calls/{}/hangup", w.call),
            valid: |_| vec![json!({})],
        },
        Endpoint {
            method: "POST",
            path: |w| format!("/__emulator/calls/{}/fail", w.call),
            valid: |_| vec![json!({"code":138021})],
        },
        Endpoint {
            method: "POST",
            path: |w| format!("/__emulator/templates/{}/status", w.template),
            valid: |_| vec![json!({"status":"REJECTED","reason":"INVALID_FORMAT"})],
        },
        Endpoint {
            method: "POST",
            path: |_| "/__emulator/clock/advance".into(),
            valid: |_| vec![json!({"seconds": 61})],
        },
    ]
}

/// The state a request may change: the snapshot without the request journal, the clock
/// and the id cursor.
fn state(e: &Engine) -> Value {
    let mut v = e.snapshot();
    if let Some(o) = v.as_object_mut() {
        for k in ["journal", "now_ms", "id_cursor"] {
            o.remove(k);
        }
    }
    v
}

fn first_difference(a: &Value, b: &Value) -> String {
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => a
            .keys()
            .chain(b.keys())
            .find(|k| a.get(*k) != b.get(*k))
            .map(|k| {
                let show = |v: Option<&Value>| {
                    v.map(|v| v.to_string().chars().take(400).collect::<String>())
                        .unwrap_or_default()
                };
                format!("{k}: {} → {}", show(a.get(k)), show(b.get(k)))
            })
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The properties every request must keep.
fn check(w: &mut World, method: &str, path: &str, body: Vec<u8>) -> Result<(), TestCaseError> {
    let shown = String::from_utf8_lossy(&body[..body.len().min(600)]).into_owned();
    let before = state(&w.engine);
    let r = api::handle(
        &mut w.engine,
        &request(method, path, body),
        &Context::default(),
    );
    let v: Value = serde_json::from_slice(&r.body)
        .map_err(|e| TestCaseError::fail(format!("{method} {path} {shown}: not JSON: {e}")))?;
    prop_assert!(
        r.status == 200 || (400..500).contains(&r.status),
        "{} {} {}: status {}: {}",
        method,
        path,
        shown,
        r.status,
        v
    );
    if r.status == 200 {
        prop_assert!(v.is_object(), "{} {}: {}", method, path, v);
        return Ok(());
    }
    let e = &v["error"];
    prop_assert!(e["code"].is_u64(), "{} {} {}: {}", method, path, shown, v);
    for k in ["message", "type", "fbtrace_id"] {
        prop_assert!(
            e[k].as_str().is_some_and(|s| !s.is_empty()),
            "{} {}: error.{} missing: {}",
            method,
            path,
            k,
            v
        );
    }
    prop_assert!(
        e["error_data"]["details"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{} {}: no details: {}",
        method,
        path,
        v
    );
    let after = state(&w.engine);
    prop_assert!(
        before == after,
        "{} {} {} was refused ({}) but changed {}",
        method,
        path,
        shown,
        e["code"],
        first_difference(&before, &after)
    );
    prop_assert!(w.engine.take_effects().is_empty());
    Ok(())
}

// ---- strategies ---------------------------------------------------------------------

const KEYS: &[&str] = &[
    "messaging_product",
    "recipient_type",
    "to",
    "recipient",
    "type",
    "interactive",
    "action",
    "name",
    "parameters",
    "display_text",
    "ttl_minutes",
    "payload",
    "body",
    "text",
    "template",
    "language",
    "code",
    "components",
    "sub_type",
    "index",
    "session",
    "sdp",
    "sdp_type",
    "call_id",
    "calling",
    "status",
    "call_hours",
    "timezone_id",
    "weekly_operating_hours",
    "day_of_week",
    "open_time",
    "close_time",
    "holiday_schedule",
    "date",
    "sip",
    "servers",
    "hostname",
    "port",
    "transport",
    "wa_id",
    "platform",
    "version",
    "window_open",
    "message_id",
    "url",
    "response",
    "permanent",
    "phone_number_id",
    "seconds",
    "category",
    "buttons",
    "biz_opaque_callback_data",
    "connection",
    "webrtc",
    "reason",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-z_]{0,12}",
        1 => ".{0,8}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,24}",
        "[0-9]{0,20}",
        proptest::sample::select(vec![
            "",
            " ",
            "whatsapp",
            USER,
            "+1 (631) 555-1234",
            "voice_call",
            "interactive",
            "template",
            "text",
            "ENABLED",
            "DISABLED",
            "connect",
            "pre_accept",
            "accept",
            "reject",
            "terminate",
            "offer",
            "answer",
            SDP_OFFER,
            "v=0",
            "wamid.x",
            "https://wa.me/call/15550783881?biz_payload=x",
            "accept",
            "android",
            "desktop",
            "2.25.27",
            "UTILITY",
            "BODY",
            "VOICE_CALL",
            "Europe/Berlin",
            "0900",
            "2400",
            "NaN",
            "1e400",
            "-0",
            "\u{0}",
            "📞",
            "\u{202e}",
        ])
        .prop_map(str::to_owned),
        (1usize..3000).prop_map(|n| "x".repeat(n)),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        proptest::sample::select(vec![
            -1i64, 0, 1, 9, 10, 20, 21, 59, 60, 512, 513, 1439, 1440, 4096, 4097, 43200, 43201,
            65535, 65536, 138021, 34_560_001,
        ])
        .prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        number(),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every place in a value: the root and each object member and array item, by path.
fn places(v: &Value, here: Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let mut p = here.clone();
                p.push(PathStep::Key(k.clone()));
                places(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let mut p = here.clone();
                p.push(PathStep::Item(i));
                places(x, p, out);
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    Item(usize),
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(Value),
    Remove,
    Null,
    WrapInArray,
    Stringify,
    AddKey(String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => json_value().prop_map(Mutation::Replace),
        2 => Just(Mutation::Remove),
        2 => Just(Mutation::Null),
        1 => Just(Mutation::WrapInArray),
        1 => Just(Mutation::Stringify),
        1 => (key(), json_value()).prop_map(|(k, v)| Mutation::AddKey(k, v)),
    ]
}

fn apply(root: &mut Value, path: &[PathStep], m: &Mutation) {
    let (last, parent_path) = match path.split_last() {
        Some((l, p)) => (Some(l), p),
        None => (None, path),
    };
    let mut parent = &mut *root;
    for step in parent_path {
        parent = match step {
            PathStep::Key(k) => &mut parent[k.as_str()],
            PathStep::Item(i) => &mut parent[*i],
        };
    }
    let target: &mut Value = match last {
        None => parent,
        Some(PathStep::Key(k)) => {
            if let (Mutation::Remove, Some(o)) = (m, parent.as_object_mut()) {
                o.remove(k);
                return;
            }
            &mut parent[k.as_str()]
        }
        Some(PathStep::Item(i)) => {
            if let (Mutation::Remove, Some(a)) = (m, parent.as_array_mut()) {
                a.remove(*i);
                return;
            }
            &mut parent[*i]
        }
    };
    match m {
        Mutation::Replace(v) => *target = v.clone(),
        Mutation::Remove | Mutation::Null => *target = Value::Null,
        Mutation::WrapInArray => *target = Value::Array(vec![target.take()]),
        Mutation::Stringify => *target = Value::String(target.to_string()),
        Mutation::AddKey(k, v) => {
            if let Some(o) = target.as_object_mut() {
                o.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Byte edits of a valid body: flips, insertions and cuts that break the JSON anywhere.
#[derive(Debug, Clone)]
enum ByteEdit {
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    let interesting = prop_oneof![
        any::<u8>(),
        proptest::sample::select(b"{}[]\",:\\0-+.eE \x00\xff\xc3".to_vec()),
    ];
    prop_oneof![
        (any::<Index>(), interesting.clone()).prop_map(|(i, b)| ByteEdit::Set(i, b)),
        (any::<Index>(), interesting).prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        any::<Index>().prop_map(ByteEdit::Delete),
        any::<Index>().prop_map(ByteEdit::Truncate),
    ]
}

fn edit_bytes(mut b: Vec<u8>, edits: &[ByteEdit]) -> Vec<u8> {
    for e in edits {
        if b.is_empty() {
            break;
        }
        match e {
            ByteEdit::Set(i, x) => {
                let i = i.index(b.len());
                b[i] = *x;
            }
            ByteEdit::Insert(i, x) => {
                let i = i.index(b.len());
                b.insert(i, *x);
            }
            ByteEdit::Delete(i) => {
                let i = i.index(b.len());
                b.remove(i);
            }
            ByteEdit::Truncate(i) => {
                let i = i.index(b.len());
                b.truncate(i);
            }
        }
    }
    b
}

fn target(w: &World, which: Index) -> (&'static str, String, Vec<Value>) {
    let all = endpoints();
    let e = &all[which.index(all.len())];
    (e.method, (e.path)(w), (e.valid)(w))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_get_an_answer_and_change_nothing_when_refused(
        which in any::<Index>(),
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut w = world();
        let (method, path, _) = target(&w, which);
        check(&mut w, method, &path, body)?;
    }

    #[test]
    fn arbitrary_json_gets_an_answer_and_changes_nothing_when_refused(
        which in any::<Index>(),
        body in json_value(),
    ) {
        let mut w = world();
        let (method, path, _) = target(&w, which);
        check(&mut w, method, &path, body.to_string().into_bytes())?;
    }

    #[test]
    fn a_valid_body_with_one_part_broken_gets_an_answer_and_changes_nothing_when_refused(
        which in any::<Index>(),
        base in any::<Index>(),
        place in any::<Index>(),
        m in mutation(),
    ) {
        let mut w = world();
        let (method, path, valid) = target(&w, which);
        let mut body = valid[base.index(valid.len())].clone();
        let mut all = Vec::new();
        places(&body, Vec::new(), &mut all);
        let at = all[place.index(all.len())].clone();
        apply(&mut body, &at, &m);
        check(&mut w, method, &path, body.to_string().into_bytes())?;
    }

    #[test]
    fn a_valid_body_with_broken_bytes_gets_an_answer_and_changes_nothing_when_refused(
        which in any::<Index>(),
        base in any::<Index>(),
        edits in proptest::collection::vec(byte_edit(), 1..4),
    ) {
        let mut w = world();
        let (method, path, valid) = target(&w, which);
        let body = valid[base.index(valid.len())].to_string().into_bytes();
        check(&mut w, method, &path, edit_bytes(body, &edits))?;
    }
}

/// Requests that read or move a restored world, to see whether it still holds together.
fn follow_ups(w: &World) -> Vec<(&'static str, String, Value)> {
    vec![
        ("GET", "/__emulator/calls".into(), Value::Null),
        ("GET", "/__emulator/messages".into(), Value::Null),
        ("GET", "/__emulator/webhooks".into(), Value::Null),
        ("GET", "/__emulator/config".into(), Value::Null),
        ("GET", "/__emulator/users".into(), Value::Null),
        ("GET", "/__emulator/snapshot".into(), Value::Null),
        ("GET", format!("/v21.0/{PHONE}/settings"), Value::Null),
        (
            "GET",
            format!("/v21.0/{PHONE}/call_permissions?user_wa_id={USER}"),
            Value::Null,
        ),
        (
            "GET",
            format!("/v21.0/{PHONE2}/call_permissions?user_wa_id=16315550008"),
            Value::Null,
        ),
        (
            "GET",
            format!("/v21.0/{WABA}/message_templates"),
            Value::Null,
        ),
        (
            "POST",
            format!("/__emulator/users/{USER}/tap"),
            json!({ "message_id": w.message }),
        ),
        (
            "POST",
            "/__emulator/users/16315550007/tap".into(),
            json!({ "message_id": w.untapped }),
        ),
        (
            "POST",
            format!("/__emulator/calls/{}/hangup", w.call),
            json!({}),
        ),
        (
            "POST",
            "/__emulator/clock/advance".into(),
            json!({"seconds": 3600}),
        ),
        (
            "POST",
            format!("/v21.0/{PHONE}/messages"),
            voice_call_body(),
        ),
        (
            "POST",
            format!("/v21.0/{PHONE}/calls"),
            json!({"messaging_product":"whatsapp","call_id":w.call,"action":"terminate"}),
        ),
        (
            "POST",
            format!("/v21.0/{PHONE2}/calls"),
            json!({"messaging_product":"whatsapp","to":"+16315550008","action":"connect","session":{"sdp_type":"offer","sdp":SDP_OFFER}}),
        ),
        ("POST", "/__emulator/reset".into(), Value::Null),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// `PUT /__emulator/snapshot` (and `--state` files) with one part broken: refused with
    /// a Graph error, or restored into an emulator that still answers everything.
    #[test]
    fn a_broken_snapshot_is_refused_or_restores_an_emulator_that_still_answers(
        place in any::<Index>(),
        m in mutation(),
        then in proptest::collection::vec(any::<Index>(), 1..6),
    ) {
        let mut w = world();
        let mut snapshot = w.engine.snapshot();
        let mut all = Vec::new();
        places(&snapshot, Vec::new(), &mut all);
        let at = all[place.index(all.len())].clone();
        apply(&mut snapshot, &at, &m);
        check(&mut w, "PUT", "/__emulator/snapshot", snapshot.to_string().into_bytes())?;
        for which in then {
            let all = follow_ups(&w);
            let (method, path, body) = all[which.index(all.len())].clone();
            let body = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
            check(&mut w, method, &path, body)?;
        }
    }
}

/// The starting points of mutation are accepted as they are, so mutations begin from
/// the deep end of validation rather than from the first check.
#[test]
fn every_valid_body_is_accepted_on_a_fresh_world() {
    let probe = world();
    for e in endpoints() {
        for body in (e.valid)(&probe) {
            let mut w = world();
            let path = (e.path)(&w);
            let r = api::handle(
                &mut w.engine,
                &request(e.method, &path, body.to_string()),
                &Context::default(),
            );
            assert_eq!(
                r.status,
                200,
                "{} {path} {body}: {}",
                e.method,
                r.body_json()
            );
        }
    }
}

/// A snapshot (or `--state` file) whose clock reads near the end of `u64` time: refused,
/// or restored into an emulator whose every answer still comes (no overflow panic).
#[test]
fn a_snapshot_from_the_end_of_time_is_refused_or_keeps_answering() {
    let mut w = world();
    let mut snapshot = w.engine.snapshot();
    snapshot["now_ms"] = json!(u64::MAX - 10);
    let r = api::handle(
        &mut w.engine,
        &request("PUT", "/__emulator/snapshot", snapshot.to_string()),
        &Context::default(),
    );
    if r.status != 200 {
        assert_eq!(r.body_json()["error"]["code"], 100, "{}", r.body_json());
        return;
    }
    let mut panicked = Vec::new();
    // Twice: what the first pass creates (a message sent at the end of time) is read in
    // the second.
    let twice: Vec<_> = follow_ups(&w).into_iter().chain(follow_ups(&w)).collect();
    for (method, path, body) in twice {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let engine = &mut w.engine;
        let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            api::handle(engine, &request(method, &path, body), &Context::default()).status
        }));
        if answered.is_err() && !panicked.contains(&format!("{method} {path}")) {
            panicked.push(format!("{method} {path}"));
        }
    }
    assert!(
        panicked.is_empty(),
        "panicked after the restore: {panicked:?}"
    );
}
