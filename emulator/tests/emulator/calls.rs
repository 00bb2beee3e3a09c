//! Calls end to end: taps, deep links, native calls, `/calls`, permissions, settings.

use super::harness::*;
use serde_json::{json, Value};

async fn tap(emu: &Emu, wa: &str, message_id: &str) -> (u16, Value) {
    emu.admin(
        "POST",
        &format!("/users/{wa}/tap"),
        json!({ "message_id": message_id }),
    )
    .await
}

async fn calls(emu: &Emu, action: Value) -> (u16, Value) {
    emu.graph("POST", &format!("/{PHONE}/calls"), Some(action))
        .await
}

#[tokio::test]
async fn button_call_echoes_the_payload_on_connect_and_terminate_with_the_duration() {
    let emu = Emu::start().await;
    emu.user(USER, "android", "2.25.30", "Ana").await;
    let mid = emu.send(voice_call(USER, json!({"payload": "P"}))).await;
    let (status, v) = tap(&emu, USER, &mid).await;
    assert_eq!(status, 200, "{v}");
    let call_id = v["call_id"].as_str().unwrap().to_owned();
    assert!(call_id.starts_with("wacid."));
    let connect = emu.values("calls", "connect").await;
    assert_eq!(connect.len(), 1);
    let c = &connect[0]["calls"][0];
    assert_eq!(c["id"], call_id.as_str());
    assert_eq!(c["event"], "connect");
    assert_eq!(c["direction"], "USER_INITIATED");
    assert_eq!(c["from"], USER);
    assert_eq!(c["to"], "15550783881");
    assert_eq!(c["cta_payload"], "P");
    assert!(c.get("deeplink_payload").is_none());
    assert_eq!(c["session"]["sdp_type"], "offer");
    assert!(c["session"]["sdp"].as_str().unwrap().starts_with("v=0\r\n"));
    assert!(connect[0]["contacts"][0]["user_id"].is_string());
    // The tap reads the message.
    assert_eq!(emu.values("messages", "status_read").await.len(), 1);
    let (s, r) = calls(&emu, json!({"messaging_product":"whatsapp","call_id":call_id,"action":"pre_accept","session":{"sdp_type":"answer","sdp":SDP_ANSWER}})).await;
    assert_eq!(
        (s, &r),
        (200, &json!({"messaging_product":"whatsapp","success":true}))
    );
    let (s, r) = calls(&emu, json!({"messaging_product":"whatsapp","call_id":call_id,"action":"accept","session":{"sdp_type":"answer","sdp":SDP_ANSWER},"biz_opaque_callback_data":"biz-1"})).await;
    assert_eq!(s, 200, "{r}");
    emu.advance(42.0).await;
    let v = emu
        .ok("POST", &format!("/calls/{call_id}/hangup"), Value::Null)
        .await;
    assert_eq!(v["duration"], 42);
    let term = emu.values("calls", "terminate").await;
    assert_eq!(term.len(), 1);
    let t = &term[0]["calls"][0];
    assert_eq!(t["status"], "COMPLETED");
    assert_eq!(t["duration"], 42);
    assert_eq!(t["cta_payload"], "P");
    assert_eq!(t["biz_opaque_callback_data"], "biz-1");
    let start: u64 = t["start_time"].as_str().unwrap().parse().unwrap();
    let end: u64 = t["end_time"].as_str().unwrap().parse().unwrap();
    assert_eq!(end - start, 42);
    // Nothing more applies to an ended call.
    let (s, r) = calls(
        &emu,
        json!({"messaging_product":"whatsapp","call_id":call_id,"action":"terminate"}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        r["error"]["error_data"]["details"]
            .as_str()
            .unwrap()
            .contains("already ended"),
        "{r}"
    );
}

#[tokio::test]
async fn deep_link_calls_carry_the_deeplink_payload_and_never_cta_payload() {
    let emu = Emu::start().await;
    emu.user(USER, "ios", "2.25.30", "Ana").await;
    let v = emu
        .ok(
            "POST",
            &format!("/users/{USER}/open-link"),
            json!({"url": "https://wa.me/call/15550783881?biz_payload=Q"}),
        )
        .await;
    let call_id = v["call_id"].as_str().unwrap().to_owned();
    let c = &emu.values("calls", "connect").await[0]["calls"][0];
    assert_eq!(c["deeplink_payload"], "Q");
    assert!(c.get("cta_payload").is_none());
    calls(&emu, json!({"messaging_product":"whatsapp","call_id":call_id,"action":"accept","session":{"sdp_type":"answer","sdp":SDP_ANSWER}})).await;
    emu.advance(10.0).await;
    emu.ok("POST", &format!("/calls/{call_id}/hangup"), Value::Null)
        .await;
    let t = &emu.values("calls", "terminate").await[0]["calls"][0];
    assert_eq!(t["deeplink_payload"], "Q");
    assert_eq!(t["duration"], 10);
    // Without biz_payload: no key at all.
    emu.ok(
        "POST",
        &format!("/users/{USER}/open-link"),
        json!({"url": "wa.me/call/15550783881"}),
    )
    .await;
    let c = &emu.values("calls", "connect").await[1]["calls"][0];
    assert!(
        c.get("deeplink_payload").is_none() && c.get("cta_payload").is_none(),
        "{c}"
    );
}

/// Each row of the client-version table, over HTTP.
#[tokio::test]
async fn client_version_table() {
    let emu = Emu::start().await;
    let rows = [
        ("10000000001", "android", "2.23.0"),
        ("10000000002", "android", "2.24.1"),
        ("10000000003", "android", "2.25.26"),
        ("10000000004", "android", "2.25.27"),
        ("10000000005", "desktop", "2.25.30"),
        ("10000000006", "web", "2.25.30"),
        ("10000000007", "ios", "2.25.27"),
    ];
    for (wa, platform, version) in rows {
        emu.user(wa, platform, version, "U").await;
    }
    let mut outcome = Vec::new();
    for (wa, platform, version) in rows {
        let mid = emu.send(voice_call(wa, json!({"payload": "P"}))).await;
        let (status, v) = tap(&emu, wa, &mid).await;
        if let Some(id) = v["call_id"].as_str() {
            emu.ok("POST", &format!("/calls/{id}/hangup"), Value::Null)
                .await;
        }
        let link = emu
            .admin(
                "POST",
                &format!("/users/{wa}/open-link"),
                json!({"url": "wa.me/call/15550783881?biz_payload=Q"}),
            )
            .await;
        if let Some(id) = link.1["call_id"].as_str() {
            emu.ok("POST", &format!("/calls/{id}/hangup"), Value::Null)
                .await;
        }
        let reason = |v: &Value| {
            v["error"]["error_data"]["reason"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        };
        outcome.push((
            platform,
            version,
            status,
            reason(&v),
            link.0,
            reason(&link.1),
        ));
    }
    let expected = vec![
        (
            "android",
            "2.23.0",
            409,
            "message_not_delivered".to_owned(),
            200,
            String::new(),
        ),
        ("android", "2.24.1", 200, String::new(), 200, String::new()),
        ("android", "2.25.26", 200, String::new(), 200, String::new()),
        ("android", "2.25.27", 200, String::new(), 200, String::new()),
        (
            "desktop",
            "2.25.30",
            409,
            "desktop_client".to_owned(),
            409,
            "deep_link_unsupported".to_owned(),
        ),
        (
            "web",
            "2.25.30",
            409,
            "desktop_client".to_owned(),
            409,
            "deep_link_unsupported".to_owned(),
        ),
        ("ios", "2.25.27", 200, String::new(), 200, String::new()),
    ];
    assert_eq!(outcome, expected);
    // Payload echo only from 2.25.27.
    let connects = emu.values("calls", "connect").await;
    let echoed: Vec<(String, bool)> = connects
        .iter()
        .map(|v| {
            let c = &v["calls"][0];
            (
                c["from"].as_str().unwrap().to_owned(),
                c.get("cta_payload").is_some() || c.get("deeplink_payload").is_some(),
            )
        })
        .collect();
    let by_user = |wa: &str| {
        echoed
            .iter()
            .filter(|(f, _)| f == wa)
            .map(|(_, e)| *e)
            .collect::<Vec<_>>()
    };
    assert_eq!(by_user("10000000002"), vec![false, false]);
    assert_eq!(by_user("10000000003"), vec![false, false]);
    assert_eq!(by_user("10000000004"), vec![true, true]);
    assert_eq!(by_user("10000000007"), vec![true, true]);
    // 131026 for the 2.23 user.
    let failed = emu.values("messages", "status_failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["statuses"][0]["recipient_id"], "10000000001");
}

#[tokio::test]
async fn a_tap_after_the_ttl_starts_no_call_and_says_why() {
    let emu = Emu::start().await;
    let mid = emu.send(voice_call(USER, json!({"ttl_minutes": 1}))).await;
    emu.advance(59.0).await;
    let (status, v) = tap(&emu, USER, &mid).await;
    assert_eq!(status, 200);
    emu.ok(
        "POST",
        &format!("/calls/{}/hangup", v["call_id"].as_str().unwrap()),
        Value::Null,
    )
    .await;
    emu.advance(1.0).await;
    let (status, v) = tap(&emu, USER, &mid).await;
    assert_eq!(status, 409);
    assert_eq!(v["error"]["error_data"]["reason"], "button_expired");
    assert!(
        v["error"]["error_data"]["details"]
            .as_str()
            .unwrap()
            .contains("ttl_minutes 1"),
        "{v}"
    );
    assert_eq!(
        emu.values("calls", "connect").await.len(),
        1,
        "no second call"
    );
}

/// Business-initiated calls run from the UK number: +1 numbers cannot call users.
#[tokio::test]
async fn business_initiated_call_needs_a_permission_then_rings_is_accepted_and_terminates() {
    let emu = Emu::start().await;
    emu.user(USER, "android", "2.25.30", "Ana").await;
    let mut dial = connect(&plus(USER));
    dial["biz_opaque_callback_data"] = "b-1".into();
    let (s, v) = emu.calls_on(PHONE2, dial.clone()).await;
    assert_eq!((s, v["error"]["code"].as_u64()), (401, Some(138006)), "{v}");
    let cpr = permission_request(&plus(USER));
    let mid = emu.send_from(PHONE2, cpr.clone()).await;
    // 1 per 24 h.
    let (s, v) = emu
        .graph("POST", &format!("/{PHONE2}/messages"), Some(cpr))
        .await;
    assert_eq!((s, v["error"]["code"].as_u64()), (400, Some(138009)), "{v}");
    emu.permission_reply(USER, json!({"response":"accept","message_id": mid}))
        .await;
    let replies = emu.values("messages", "call_permission_reply").await;
    assert_eq!(replies[0]["metadata"]["phone_number_id"], PHONE2);
    let reply = &replies[0]["messages"][0];
    assert_eq!(reply["from"], USER);
    assert_eq!(reply["context"]["id"], mid.as_str());
    assert_eq!(reply["context"]["from"], DISPLAY2);
    assert_eq!(
        reply["interactive"]["call_permission_reply"]["response_source"],
        "user_action"
    );
    assert_eq!(
        reply["interactive"]["call_permission_reply"]["is_permanent"],
        false
    );
    let perm = emu.call_permissions(PHONE2, USER).await;
    assert_eq!(perm["permission"]["status"], "temporary");
    assert_eq!(perm["actions"][0]["limits"][0]["current_usage"], 1);
    assert_eq!(perm["actions"][1]["limits"][0]["max_allowed"], 100);
    let (s, v) = emu.calls_on(PHONE2, dial.clone()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["success"], true);
    let call_id = v["calls"][0]["id"].as_str().unwrap().to_owned();
    let (s, v) = emu.calls_on(PHONE2, dial).await;
    assert_eq!(
        (s, v["error"]["code"].as_u64()),
        (400, Some(138003)),
        "a second call while one rings: {v}"
    );
    emu.ok("POST", &format!("/calls/{call_id}/answer"), Value::Null)
        .await;
    emu.advance(30.0).await;
    let (s, _) = emu
        .calls_on(
            PHONE2,
            json!({"messaging_product":"whatsapp","call_id":call_id,"action":"terminate"}),
        )
        .await;
    assert_eq!(s, 200);
    let statuses: Vec<Value> = emu
        .webhooks()
        .await
        .into_iter()
        .filter(|d| d["field"] == "calls")
        .map(|d| d["event"].clone())
        .collect();
    assert_eq!(
        statuses,
        vec![
            json!("status_ringing"),
            json!("connect"),
            json!("status_accepted"),
            json!("terminate")
        ]
    );
    let connects = emu.values("calls", "connect").await;
    assert_eq!(
        connects[0]["metadata"],
        json!({"display_phone_number": DISPLAY2, "phone_number_id": PHONE2})
    );
    let c = &connects[0]["calls"][0];
    assert_eq!(c["direction"], "BUSINESS_INITIATED");
    assert_eq!(c["from"], DISPLAY2);
    assert_eq!(c["to"], USER, "+1 631… written with + is the US user");
    assert_eq!(c["session"]["sdp_type"], "answer");
    assert_eq!(c["biz_opaque_callback_data"], "b-1");
    let t = &emu.values("calls", "terminate").await[0]["calls"][0];
    assert_eq!(
        (t["status"].clone(), t["duration"].clone()),
        (json!("COMPLETED"), json!(30))
    );
    let ringing = emu.values("calls", "status_ringing").await;
    assert_eq!(ringing[0]["metadata"]["phone_number_id"], PHONE2);
    assert_eq!(ringing[0]["statuses"][0]["recipient_id"], USER);
    assert_eq!(ringing[0]["statuses"][0]["biz_opaque_callback_data"], "b-1");
}

#[tokio::test]
async fn four_unanswered_business_calls_revoke_the_permission() {
    let emu = Emu::start().await;
    emu.permission_reply(
        USER,
        json!({"response":"accept","permanent":true,"phone_number_id":PHONE2}),
    )
    .await;
    let dial = connect(&plus(USER));
    for i in 0..4 {
        let (s, v) = emu.calls_on(PHONE2, dial.clone()).await;
        assert_eq!(s, 200, "call {i}: {v}");
        if i % 2 == 0 {
            emu.ok(
                "POST",
                &format!("/calls/{}/decline", v["calls"][0]["id"].as_str().unwrap()),
                Value::Null,
            )
            .await;
        } else {
            emu.advance(61.0).await;
        }
    }
    let replies = emu.values("messages", "call_permission_reply").await;
    let last = replies.last().unwrap();
    assert_eq!(last["metadata"]["phone_number_id"], PHONE2);
    let last = &last["messages"][0];
    assert_eq!(
        last["interactive"]["call_permission_reply"],
        json!({"response":"reject","response_source":"automatic"})
    );
    assert!(last.get("context").is_none());
    let (s, v) = emu.calls_on(PHONE2, dial).await;
    assert_eq!((s, v["error"]["code"].as_u64()), (401, Some(138006)));
    assert_eq!(emu.values("calls", "status_rejected").await.len(), 2);
}

#[tokio::test]
async fn unanswered_user_calls_end_after_the_ring_window() {
    let emu = Emu::start().await;
    let v = emu
        .ok("POST", &format!("/users/{USER}/call"), json!({}))
        .await;
    emu.advance(59.0).await;
    assert!(emu.values("calls", "terminate").await.is_empty());
    emu.advance(1.0).await;
    let t = &emu.values("calls", "terminate").await[0]["calls"][0];
    assert_eq!(t["id"], v["call_id"]);
    assert_eq!(t["status"], "FAILED");
    assert!(t.get("duration").is_none() && t.get("start_time").is_none());
}

/// On the UK number, where a business call would otherwise be allowed.
#[tokio::test]
async fn calling_disabled_answers_138000_and_stops_taps() {
    let emu = Emu::start().await;
    emu.permission_reply(
        USER,
        json!({"response":"accept","permanent":true,"phone_number_id":PHONE2}),
    )
    .await;
    let mid = emu
        .send_from(PHONE2, voice_call(&plus(USER), json!({})))
        .await;
    let (s, v) = emu
        .graph(
            "POST",
            &format!("/{PHONE2}/settings"),
            Some(json!({"calling":{"status":"DISABLED"}})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let upd = emu
        .values("account_settings_update", "phone_number_settings")
        .await;
    assert_eq!(
        upd[0]["phone_number_settings"]["calling"]["status"],
        "DISABLED"
    );
    assert_eq!(upd[0]["phone_number_settings"]["phone_number_id"], PHONE2);
    let (s, v) = emu.calls_on(PHONE2, connect(&plus(USER))).await;
    assert_eq!((s, v["error"]["code"].as_u64()), (401, Some(138000)), "{v}");
    let (s, v) = tap(&emu, USER, &mid).await;
    assert_eq!(
        (s, v["error"]["error_data"]["reason"].as_str()),
        (409, Some("calling_disabled"))
    );
    let (_, g) = emu.graph("GET", &format!("/{PHONE2}/settings"), None).await;
    assert_eq!(g["calling"]["status"], "DISABLED");
    // The other number is untouched.
    let (_, g) = emu.graph("GET", &format!("/{PHONE}/settings"), None).await;
    assert_eq!(g["calling"]["status"], "ENABLED");
}

/// The automatic callback permission is a permission to call the user: it is given by
/// the UK number, where business-initiated calls exist.
#[tokio::test]
async fn callback_permission_is_granted_automatically_when_the_user_calls() {
    let emu = Emu::start().await;
    let (s, v) = emu
        .graph(
            "POST",
            &format!("/{PHONE2}/settings"),
            Some(json!({"calling":{"callback_permission_status":"ENABLED"}})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let v = emu
        .ok(
            "POST",
            &format!("/users/{USER}/call"),
            json!({ "phone_number_id": PHONE2 }),
        )
        .await;
    let replies = emu.values("messages", "call_permission_reply").await;
    assert_eq!(replies[0]["metadata"]["phone_number_id"], PHONE2);
    let reply = &replies[0]["messages"][0];
    assert_eq!(reply["context"]["id"], v["call_id"]);
    assert_eq!(
        reply["interactive"]["call_permission_reply"]["response_source"],
        "automatic"
    );
    let perm = emu.call_permissions(PHONE2, USER).await;
    assert_eq!(perm["permission"]["status"], "temporary");
    // The permission lets the business call back at once.
    let call = v["call_id"].as_str().unwrap();
    emu.ok("POST", &format!("/calls/{call}/hangup"), Value::Null)
        .await;
    let (s, v) = emu.calls_on(PHONE2, connect(&plus(USER))).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn accept_must_repeat_the_pre_accepted_answer() {
    let emu = Emu::start().await;
    let v = emu
        .ok("POST", &format!("/users/{USER}/call"), json!({}))
        .await;
    let id = v["call_id"].as_str().unwrap();
    calls(&emu, json!({"messaging_product":"whatsapp","call_id":id,"action":"pre_accept","session":{"sdp_type":"answer","sdp":SDP_ANSWER}})).await;
    let other = SDP_ANSWER.replace("AA:BB:CC", "DD:EE:FF");
    let (s, r) = calls(&emu, json!({"messaging_product":"whatsapp","call_id":id,"action":"accept","session":{"sdp_type":"answer","sdp":other}})).await;
    assert_eq!(s, 400);
    assert!(
        r["error"]["error_data"]["details"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{r}"
    );
    let (s, r) = calls(&emu, json!({"messaging_product":"whatsapp","call_id":id,"action":"accept","session":{"sdp_type":"answer","sdp":"v=0\r\nm=video 9 RTP 0"}})).await;
    assert_eq!(s, 400);
    assert!(
        r["error"]["error_data"]["details"]
            .as_str()
            .unwrap()
            .contains("m=audio"),
        "{r}"
    );
    let (s, _) = calls(
        &emu,
        json!({"messaging_product":"whatsapp","call_id":"wacid.nope","action":"reject"}),
    )
    .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn a_deep_link_to_a_number_the_emulator_does_not_host_is_a_clear_error() {
    let emu = Emu::start().await;
    let (s, v) = emu
        .admin(
            "POST",
            &format!("/users/{USER}/open-link"),
            json!({"url":"https://wa.me/call/14155550000?biz_payload=x"}),
        )
        .await;
    assert_eq!(s, 409);
    assert_eq!(
        v["error"]["error_data"]["reason"],
        "unknown_business_number"
    );
    assert!(v["error"]["error_data"]["details"]
        .as_str()
        .unwrap()
        .contains("15550783881"));
}

#[tokio::test]
async fn sip_enabled_numbers_answer_131055_on_calls() {
    let emu = Emu::start().await;
    let (s, v) = emu
        .graph("POST", &format!("/{PHONE}/settings"), Some(json!({"calling":{"sip":{"status":"ENABLED","servers":[{"hostname":"127.0.0.1","port":5099}]}}})))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = calls(
        &emu,
        json!({"messaging_product":"whatsapp","call_id":"wacid.x","action":"terminate"}),
    )
    .await;
    assert_eq!((s, v["error"]["code"].as_u64()), (400, Some(131055)));
    let (_, g) = emu
        .graph(
            "GET",
            &format!("/{PHONE}/settings?include_sip_credentials=true"),
            None,
        )
        .await;
    assert!(
        g["calling"]["sip"]["servers"][0]["sip_user_password"]
            .as_str()
            .unwrap()
            .len()
            >= 16
    );
}

#[tokio::test]
async fn a_deep_link_reaches_the_number_it_names_even_when_the_user_chats_with_another() {
    use wa_emulator::domain::tenant::PhoneNumber;
    let mut opts =
        wa_emulator::server::ServeOptions::for_tests(wa_emulator::engine::ClockMode::Virtual, 2);
    let mut second: PhoneNumber = opts.tenants.phone_numbers[0].clone();
    second.id = "200000000000001".into();
    second.display_phone_number = "15550001111".into();
    opts.tenants.phone_numbers.push(second);
    let emu = Emu::start_with(opts).await;
    emu.send(voice_call(USER, json!({}))).await;
    emu.ok(
        "POST",
        &format!("/users/{USER}/open-link"),
        json!({"url": "https://wa.me/call/15550001111?biz_payload=other"}),
    )
    .await;
    let connect = &emu.values("calls", "connect").await[0];
    assert_eq!(connect["metadata"]["phone_number_id"], "200000000000001");
    assert_eq!(connect["calls"][0]["to"], "15550001111");
    assert_eq!(connect["calls"][0]["deeplink_payload"], "other");
}

#[tokio::test]
async fn permission_request_limits_and_the_permanent_case() {
    let emu = Emu::start().await;
    let cpr = json!({"messaging_product":"whatsapp","to":plus(USER),"type":"interactive","interactive":{"type":"call_permission_request","action":{"name":"call_permission_request"}}});
    let send = |body: Value| async {
        emu.graph("POST", &format!("/{PHONE2}/messages"), Some(body))
            .await
    };
    let user_says_hi = || async {
        emu.ok(
            "POST",
            &format!("/users/{USER}/messages"),
            json!({"text":"hi","phone_number_id":PHONE2}),
        )
        .await;
    };
    assert_eq!(send(cpr.clone()).await.0, 200);
    emu.advance(24.0 * 3600.0).await;
    user_says_hi().await;
    assert_eq!(
        send(cpr.clone()).await.0,
        200,
        "a second request after 24 h"
    );
    emu.advance(24.0 * 3600.0).await;
    user_says_hi().await;
    let (s, v) = send(cpr.clone()).await;
    assert_eq!(
        (s, v["error"]["code"].as_u64()),
        (400, Some(138009)),
        "a third within 7 days: {v}"
    );
    assert!(v["error"]["error_data"]["details"]
        .as_str()
        .unwrap()
        .contains("7 days"));
    let perm = emu.call_permissions(PHONE2, USER).await;
    assert_eq!(perm["actions"][0]["can_perform_action"], false);
    assert!(
        perm["actions"][0]["limits"][1]["limit_expiration_time"].is_u64(),
        "{perm}"
    );
    emu.permission_reply(
        USER,
        json!({"response":"accept","permanent":true,"phone_number_id":PHONE2}),
    )
    .await;
    let (s, v) = send(cpr).await;
    assert_eq!((s, v["error"]["code"].as_u64()), (400, Some(138017)), "{v}");
    let perm = emu.call_permissions(PHONE2, USER).await;
    assert_eq!(perm["permission"], json!({"status": "permanent"}));
}

#[tokio::test]
async fn a_hundred_connected_business_calls_a_day_then_138012() {
    let emu = Emu::start().await;
    emu.permission_reply(
        USER,
        json!({"response":"accept","permanent":true,"phone_number_id":PHONE2}),
    )
    .await;
    let dial = connect(&plus(USER));
    for i in 0..100 {
        let (s, v) = emu.calls_on(PHONE2, dial.clone()).await;
        assert_eq!(s, 200, "call {i}: {v}");
        let id = v["calls"][0]["id"].as_str().unwrap();
        emu.ok("POST", &format!("/calls/{id}/answer"), Value::Null)
            .await;
        emu.ok("POST", &format!("/calls/{id}/hangup"), Value::Null)
            .await;
    }
    let (s, v) = emu.calls_on(PHONE2, dial.clone()).await;
    assert_eq!((s, v["error"]["code"].as_u64()), (400, Some(138012)), "{v}");
    emu.advance(24.0 * 3600.0).await;
    assert_eq!(emu.calls_on(PHONE2, dial).await.0, 200, "the window rolls");
}

#[tokio::test]
async fn call_hours_decide_whether_the_user_reaches_the_business() {
    let mut opts =
        wa_emulator::server::ServeOptions::for_tests(wa_emulator::engine::ClockMode::Virtual, 2);
    // Monday 2027-01-04 09:00 UTC.
    opts.clock_start_ms = Some(1_799_053_200_000);
    let emu = Emu::start_with(opts).await;
    let (s, v) = emu
        .graph("POST", &format!("/{PHONE}/settings"), Some(json!({"calling":{"call_hours":{"status":"ENABLED","timezone_id":"UTC",
            "weekly_operating_hours":[{"day_of_week":"MONDAY","open_time":"0800","close_time":"1000"}]}}})))
        .await;
    assert_eq!(s, 200, "{v}");
    let v = emu
        .ok("POST", &format!("/users/{USER}/call"), json!({}))
        .await;
    emu.ok(
        "POST",
        &format!("/calls/{}/hangup", v["call_id"].as_str().unwrap()),
        Value::Null,
    )
    .await;
    emu.advance(3600.0).await;
    let (s, v) = emu
        .admin("POST", &format!("/users/{USER}/call"), json!({}))
        .await;
    assert_eq!(
        (s, v["error"]["error_data"]["reason"].as_str()),
        (409, Some("outside_call_hours")),
        "{v}"
    );
}

// ---- 138013: no business-initiated calling from +1, +20, +84, +234 numbers ----------

/// A template that asks for call permission (cloud-api §6.2), created in the WABA both
/// numbers share.
async fn permission_template(emu: &Emu) -> Value {
    let (s, v) = emu
        .graph(
            "POST",
            &format!("/{WABA}/message_templates"),
            Some(
                json!({"name":"may_we_call","language":"en","category":"UTILITY",
                "components":[{"type":"BODY","text":"May we call you about your order?"},
                              {"type":"call_permission_request"}]}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    json!({"type":"template","template":{"name":"may_we_call","language":{"code":"en"}}})
}

fn to(wa: &str, mut send: Value) -> Value {
    send["messaging_product"] = "whatsapp".into();
    send["to"] = wa.into();
    send
}

/// An HTTP 400 with code 138013 whose details name the number (display and id).
fn assert_138013(what: &str, status: u16, v: &Value, display: &str, id: &str) {
    assert_eq!(
        (status, v["error"]["code"].as_u64()),
        (400, Some(138013)),
        "{what}: {v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Business-initiated calling is not available")),
        "{what}: {v}"
    );
    let details = v["error"]["error_data"]["details"].as_str().unwrap_or("");
    assert!(
        details.contains(display) && details.contains(id),
        "{what}: the details name the number {display} ({id}): {details:?}"
    );
    assert!(v["error"]["fbtrace_id"].is_string(), "{what}: {v}");
}

#[tokio::test]
async fn the_plus_one_number_answers_138013_to_connect_and_to_permission_requests() {
    let emu = Emu::start().await;
    let template = permission_template(&emu).await;
    emu.user(USER, "android", "2.25.30", "Ana").await;
    let before = emu.state().await;
    let webhooks = emu.webhooks().await.len();
    let (s, v) = emu.calls_on(PHONE, connect(USER)).await;
    assert_138013("connect", s, &v, DISPLAY, PHONE);
    let (s, v) = emu
        .graph(
            "POST",
            &format!("/{PHONE}/messages"),
            Some(permission_request(USER)),
        )
        .await;
    assert_138013("free-form permission request", s, &v, DISPLAY, PHONE);
    let (s, v) = emu
        .graph(
            "POST",
            &format!("/{PHONE}/messages"),
            Some(to(USER, template.clone())),
        )
        .await;
    assert_138013("permission-request template", s, &v, DISPLAY, PHONE);
    // A user never seen is not created by the refusal either.
    let (s, v) = emu.calls_on(PHONE, connect("16315550042")).await;
    assert_138013("connect to a new user", s, &v, DISPLAY, PHONE);
    assert_eq!(
        emu.state().await,
        before,
        "a refused request changes nothing"
    );
    assert_eq!(emu.webhooks().await.len(), webhooks, "and sends nothing");
    // User-initiated calls to the +1 number still work.
    let mid = emu.send(voice_call(USER, json!({}))).await;
    let (s, v) = tap(&emu, USER, &mid).await;
    assert_eq!(s, 200, "{v}");
    emu.ok(
        "POST",
        &format!("/calls/{}/hangup", v["call_id"].as_str().unwrap()),
        Value::Null,
    )
    .await;
    // The same requests from the UK number go through.
    emu.send_from(PHONE2, permission_request(&plus(USER))).await;
    emu.advance(24.0 * 3600.0).await;
    emu.ok(
        "POST",
        &format!("/users/{USER}/messages"),
        json!({"text":"hi","phone_number_id":PHONE2}),
    )
    .await;
    let mid = emu.send_from(PHONE2, to(&plus(USER), template)).await;
    emu.permission_reply(USER, json!({"response":"accept","message_id":mid}))
        .await;
    let (s, v) = emu.calls_on(PHONE2, connect(&plus(USER))).await;
    assert_eq!(s, 200, "{v}");
}

/// `business_initiated_calling = false` on a UK number forbids it too.
#[tokio::test]
async fn a_tenant_override_allows_business_initiated_calling_on_a_plus_one_number() {
    let mut opts =
        wa_emulator::server::ServeOptions::for_tests(wa_emulator::engine::ClockMode::Virtual, 3);
    opts.tenants.phone_numbers[0].business_initiated_calling = Some(true);
    opts.tenants.phone_numbers[1].business_initiated_calling = Some(false);
    let emu = Emu::start_with(opts).await;
    let template = permission_template(&emu).await;
    let mid = emu.send(permission_request(USER)).await;
    emu.permission_reply(USER, json!({"response":"accept","message_id":mid}))
        .await;
    let (s, v) = emu.calls_on(PHONE, connect(USER)).await;
    assert_eq!(s, 200, "{v}");
    let c = &emu.values("calls", "connect").await[0];
    assert_eq!(c["metadata"]["phone_number_id"], PHONE);
    assert_eq!(c["calls"][0]["direction"], "BUSINESS_INITIATED");
    assert_eq!(c["calls"][0]["from"], DISPLAY);
    let (s, v) = emu.calls_on(PHONE2, connect(&plus(USER))).await;
    assert_138013("connect from the UK number", s, &v, DISPLAY2, PHONE2);
    let (s, v) = emu
        .graph(
            "POST",
            &format!("/{PHONE2}/messages"),
            Some(to(&plus(USER), template)),
        )
        .await;
    assert_138013("template from the UK number", s, &v, DISPLAY2, PHONE2);
    let (_, config) = emu.admin("GET", "/config", Value::Null).await;
    let can: Vec<&Value> = config["phone_numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["business_initiated_calling"])
        .collect();
    assert_eq!(can, [&json!(true), &json!(false)], "{config}");
}

/// The same override from the TOML config file (`[[phone_numbers]]`).
#[tokio::test]
async fn the_config_file_override_allows_business_initiated_calling_on_a_plus_one_number() {
    let dir = std::env::temp_dir().join(format!(
        "wa-emu-calls-138013-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wa-emulator.toml");
    std::fs::write(
        &path,
        format!(
            r#"addr = "127.0.0.1:0"
clock = "virtual"
seed = 5

[[phone_numbers]]
id = "{PHONE}"
waba_id = "{WABA}"
display_phone_number = "{DISPLAY}"
business_initiated_calling = true

[[phone_numbers]]
id = "{PHONE2}"
waba_id = "{WABA}"
display_phone_number = "{DISPLAY2}"
"#
        ),
    )
    .unwrap();
    let opts = wa_emulator::server::ServeOptions::resolve(&wa_emulator::server::ServeArgs {
        config: Some(path),
        ..Default::default()
    });
    let _ = std::fs::remove_dir_all(&dir);
    let emu = Emu::start_with(opts.expect("the config file is valid")).await;
    let (_, config) = emu.admin("GET", "/config", Value::Null).await;
    assert_eq!(config["phone_numbers"][0]["id"], PHONE, "{config}");
    assert_eq!(
        config["phone_numbers"][0]["business_initiated_calling"],
        true
    );
    assert_eq!(
        config["phone_numbers"][1]["business_initiated_calling"],
        true
    );
    let mid = emu.send(permission_request(USER)).await;
    emu.permission_reply(
        USER,
        json!({"response":"accept","permanent":true,"message_id":mid}),
    )
    .await;
    let reply = &emu.values("messages", "call_permission_reply").await[0];
    assert_eq!(reply["metadata"]["phone_number_id"], PHONE);
    let (s, v) = emu.calls_on(PHONE, connect(USER)).await;
    assert_eq!(s, 200, "{v}");
    emu.ok(
        "POST",
        &format!("/calls/{}/answer", v["calls"][0]["id"].as_str().unwrap()),
        Value::Null,
    )
    .await;
    let accepted = emu.values("calls", "status_accepted").await;
    assert_eq!(accepted[0]["metadata"]["phone_number_id"], PHONE);
}

#[tokio::test]
async fn the_config_lists_both_numbers_and_which_can_call_users() {
    let emu = Emu::start().await;
    let (s, config) = emu.admin("GET", "/config", Value::Null).await;
    assert_eq!(s, 200, "{config}");
    assert_eq!(
        config["phone_number_id"], PHONE,
        "the first number stays the default"
    );
    let numbers = config["phone_numbers"].as_array().expect("phone_numbers");
    let listed: Vec<(&Value, &Value, &Value, &Value)> = numbers
        .iter()
        .map(|p| {
            (
                &p["id"],
                &p["display_phone_number"],
                &p["waba_id"],
                &p["business_initiated_calling"],
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (&json!(PHONE), &json!(DISPLAY), &json!(WABA), &json!(false)),
            (&json!(PHONE2), &json!(DISPLAY2), &json!(WABA), &json!(true)),
        ],
        "{config}"
    );
    // The library's names for the second number are the ones the tests use.
    use wa_emulator::domain::tenant::{SECOND_DISPLAY_NUMBER, SECOND_PHONE_NUMBER_ID};
    assert_eq!(
        (SECOND_PHONE_NUMBER_ID, SECOND_DISPLAY_NUMBER),
        (PHONE2, DISPLAY2)
    );
}
