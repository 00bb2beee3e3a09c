//! Fidelity rules where a suite could pass here and fail live (issue 13): the Graph
//! version in the path, templates that are not APPROVED, permission request lifetimes,
//! and the limits of test numbers.

use super::harness::*;
use serde_json::{json, Value};
use wa_emulator::domain::tenant::NumberProfile;
use wa_emulator::engine::ClockMode;
use wa_emulator::server::ServeOptions;

/// The UK number, where permission requests and business calls exist.
const UK: &str = "110972043181256";
/// A UK user, so `to` needs no `+` from the UK number.
const UK_USER: &str = "447700900123";

fn text(to: &str) -> Value {
    json!({"messaging_product":"whatsapp","to":to,"type":"text","text":{"body":"hello"}})
}

/// The `sent` status value of the last message sent.
async fn last_sent_status(emu: &Emu) -> Value {
    emu.values("messages", "status_sent").await.pop().unwrap()["statuses"][0].clone()
}

#[tokio::test]
async fn conversation_is_on_statuses_of_sends_before_v24_only() {
    let emu = Emu::start().await;
    emu.user(USER, "android", "2.25.30", "Ana").await;
    let send = |path: String| {
        let emu = &emu;
        async move {
            let (s, v) = emu
                .raw(
                    "POST",
                    &path,
                    &[("authorization", &format!("Bearer {TOKEN}"))],
                    text(USER).to_string(),
                )
                .await;
            assert_eq!(s, 200, "{path}: {v}");
            last_sent_status(emu).await
        }
    };
    for (version, has_conversation) in [
        ("v17.0", true),
        ("v21.0", true),
        ("v23.0", true),
        ("v24.0", false),
        ("v25.0", false),
    ] {
        let st = send(format!("/{version}/{PHONE}/messages")).await;
        assert_eq!(
            st.get("conversation").is_some(),
            has_conversation,
            "{version}: {st}"
        );
        assert!(st.get("pricing").is_some(), "pricing stays on {version}");
    }
    // Unversioned paths act as the default version, v25.0.
    let st = send(format!("/{PHONE}/messages")).await;
    assert!(st.get("conversation").is_none(), "{st}");
    // The delivered status follows the version of the send, not of anything later.
    let delivered = emu.values("messages", "status_delivered").await;
    assert!(delivered[2]["statuses"][0].get("conversation").is_some());
    assert!(delivered[3]["statuses"][0].get("conversation").is_none());
}

#[tokio::test]
async fn the_default_version_of_unversioned_paths_is_configurable() {
    let mut opts = ServeOptions::for_tests(ClockMode::Virtual, 7);
    opts.behaviour.default_graph_version =
        wa_emulator::domain::version::GraphVersion::parse("v23.0").unwrap();
    let emu = Emu::start_with(opts).await;
    let (s, _) = emu
        .raw(
            "POST",
            &format!("/{PHONE}/messages"),
            &[("authorization", &format!("Bearer {TOKEN}"))],
            text(USER).to_string(),
        )
        .await;
    assert_eq!(s, 200);
    assert!(last_sent_status(&emu).await.get("conversation").is_some());
}

#[tokio::test]
async fn the_calling_api_needs_v17() {
    let emu = Emu::start().await;
    let (s, v) = emu
        .raw(
            "GET",
            &format!("/v16.0/{UK}/call_permissions?user_wa_id={USER}"),
            &[("authorization", &format!("Bearer {TOKEN}"))],
            "",
        )
        .await;
    assert_eq!((s, v["error"]["code"].as_u64()), (400, Some(100)), "{v}");
    assert!(v["error"]["error_data"]["details"]
        .as_str()
        .unwrap()
        .contains("v17.0"));
    let (s, v) = emu
        .graph(
            "GET",
            &format!("/{UK}/call_permissions?user_wa_id={USER}"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn paused_and_disabled_templates_have_their_own_codes() {
    let emu = Emu::start().await;
    let (s, v) = emu
        .graph(
            "POST",
            &format!("/{WABA}/message_templates"),
            Some(json!({"name":"call_us","language":"en","category":"UTILITY",
                "components":[{"type":"BODY","text":"Call us"},{"type":"BUTTONS","buttons":[{"type":"voice_call","text":"Call"}]}]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let send = json!({"messaging_product":"whatsapp","to":USER,"type":"template",
        "template":{"name":"call_us","language":{"code":"en"}}});
    for (status, code) in [
        ("PAUSED", 132015),
        ("DISABLED", 132016),
        ("REJECTED", 132001),
        ("PENDING", 132001),
    ] {
        emu.ok(
            "POST",
            &format!("/templates/{id}/status"),
            json!({ "status": status }),
        )
        .await;
        let (s, v) = emu
            .graph("POST", &format!("/{PHONE}/messages"), Some(send.clone()))
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_u64()),
            (400, Some(code)),
            "{status}: {v}"
        );
        assert!(v["error"]["error_data"]["details"]
            .as_str()
            .unwrap()
            .contains(status));
    }
    emu.ok(
        "POST",
        &format!("/templates/{id}/status"),
        json!({ "status": "APPROVED" }),
    )
    .await;
    emu.send(send).await;
}

async fn ask(emu: &Emu) -> String {
    let (s, v) = emu
        .graph(
            "POST",
            &format!("/{UK}/messages"),
            Some(permission_request(UK_USER)),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v["messages"][0]["id"].as_str().unwrap().to_owned()
}

async fn reply(emu: &Emu, message_id: &str, response: &str) -> (u16, Value) {
    emu.admin(
        "POST",
        &format!("/users/{UK_USER}/permission-reply"),
        json!({"response": response, "message_id": message_id}),
    )
    .await
}

fn refusal(v: &Value) -> (&str, &str) {
    (
        v["error"]["error_data"]["reason"].as_str().unwrap_or(""),
        v["error"]["error_data"]["details"].as_str().unwrap_or(""),
    )
}

#[tokio::test]
async fn an_unanswered_request_expires_seven_days_after_delivery() {
    let emu = Emu::start().await;
    emu.user(UK_USER, "android", "2.25.30", "Olive").await;
    let req = ask(&emu).await;
    emu.advance(7.0 * 86400.0 - 1.0).await;
    assert_eq!(reply(&emu, &req, "reject").await.0, 200, "still answerable");
    let req2 = {
        emu.advance(86400.0).await;
        emu.ok(
            "POST",
            &format!("/users/{UK_USER}/messages"),
            json!({"text":"hi","phone_number_id":UK}),
        )
        .await;
        ask(&emu).await
    };
    emu.advance(7.0 * 86400.0).await;
    let (s, v) = reply(&emu, &req2, "accept").await;
    assert_eq!(s, 409, "{v}");
    let (reason, details) = refusal(&v);
    assert_eq!(reason, "permission_request_expired");
    assert!(details.contains("unanswered for 7 days"), "{details}");
    // Nothing changed: no reply webhook, no permission.
    assert_eq!(
        emu.values("messages", "call_permission_reply").await.len(),
        1
    );
    let (_, perm) = emu
        .graph(
            "GET",
            &format!("/{UK}/call_permissions?user_wa_id={UK_USER}"),
            None,
        )
        .await;
    assert_eq!(perm["permission"]["status"], "no_permission");
}

#[tokio::test]
async fn an_answered_request_can_be_changed_for_seven_days_after_the_answer() {
    let emu = Emu::start().await;
    emu.user(UK_USER, "android", "2.25.30", "Olive").await;
    let req = ask(&emu).await;
    emu.advance(6.0 * 86400.0).await;
    assert_eq!(reply(&emu, &req, "reject").await.0, 200);
    // Six more days: past delivery + 7 d, but within 7 d of the answer.
    emu.advance(6.0 * 86400.0).await;
    assert_eq!(reply(&emu, &req, "accept").await.0, 200, "a change of mind");
    emu.advance(7.0 * 86400.0).await;
    let (s, v) = reply(&emu, &req, "reject").await;
    assert_eq!(s, 409, "{v}");
    let (reason, details) = refusal(&v);
    assert_eq!(reason, "permission_request_expired");
    assert!(details.contains("since the user answered it"), "{details}");
}

#[tokio::test]
async fn answering_a_newer_request_expires_the_older_ones() {
    let emu = Emu::start().await;
    emu.user(UK_USER, "android", "2.25.30", "Olive").await;
    let old = ask(&emu).await;
    emu.advance(86400.0 + 60.0).await;
    emu.ok(
        "POST",
        &format!("/users/{UK_USER}/messages"),
        json!({"text":"hi","phone_number_id":UK}),
    )
    .await;
    let new = ask(&emu).await;
    assert_eq!(reply(&emu, &new, "accept").await.0, 200);
    let (s, v) = reply(&emu, &old, "reject").await;
    assert_eq!(s, 409, "{v}");
    let (reason, details) = refusal(&v);
    assert_eq!(reason, "permission_request_expired");
    assert!(details.contains("newer permission request"), "{details}");
    // The newer one is still answerable.
    assert_eq!(reply(&emu, &new, "reject").await.0, 200);
}

#[tokio::test]
async fn test_numbers_have_the_sandbox_limits() {
    let mut opts = ServeOptions::for_tests(ClockMode::Virtual, 7);
    for p in &mut opts.tenants.phone_numbers {
        p.profile = NumberProfile::Test;
    }
    let emu = Emu::start_with(opts).await;
    emu.user(UK_USER, "android", "2.25.30", "Olive").await;
    for _ in 0..25 {
        ask(&emu).await;
    }
    let (s, v) = emu
        .graph(
            "POST",
            &format!("/{UK}/messages"),
            Some(permission_request(UK_USER)),
        )
        .await;
    assert_eq!((s, v["error"]["code"].as_u64()), (400, Some(138009)), "{v}");
    let (_, perm) = emu
        .graph(
            "GET",
            &format!("/{UK}/call_permissions?user_wa_id={UK_USER}"),
            None,
        )
        .await;
    assert_eq!(
        perm["actions"][0]["limits"],
        json!([
            {"time_period":"PT24H","max_allowed":25,"current_usage":25,"limit_expiration_time": perm["actions"][0]["limits"][0]["limit_expiration_time"]},
            {"time_period":"P7D","max_allowed":100,"current_usage":25}
        ])
    );
    // Ten unanswered business calls revoke a permission on a test number, not four.
    assert_eq!(unanswered_calls_until_revoked(&emu).await, 10);
}

/// Grants a permanent permission on the UK number, then lets business calls ring out
/// until the permission is revoked; returns how many rang.
async fn unanswered_calls_until_revoked(emu: &Emu) -> usize {
    emu.ok(
        "POST",
        &format!("/users/{UK_USER}/permission-reply"),
        json!({"response":"accept","permanent":true,"phone_number_id":UK}),
    )
    .await;
    for rang in 0..20 {
        let (s, v) = emu.calls_on(UK, connect(UK_USER)).await;
        if s != 200 {
            assert_eq!((s, v["error"]["code"].as_u64()), (401, Some(138006)), "{v}");
            let automatic = emu
                .values("messages", "call_permission_reply")
                .await
                .into_iter()
                .filter(|v| {
                    v["messages"][0]["interactive"]["call_permission_reply"]["response_source"]
                        == "automatic"
                })
                .count();
            assert_eq!(automatic, 1, "one automatic revocation");
            return rang;
        }
        emu.advance(61.0).await;
    }
    panic!("20 unanswered calls did not revoke the permission");
}

#[tokio::test]
async fn a_production_number_revokes_after_four_unanswered_calls() {
    let emu = Emu::start().await;
    assert_eq!(unanswered_calls_until_revoked(&emu).await, 4);
}

#[tokio::test]
async fn a_plus_one_number_has_no_permissions_at_all() {
    let emu = Emu::start().await;
    // Reading them is 138013 too, naming the numbers that do have them.
    let (s, v) = emu
        .graph(
            "GET",
            &format!("/{PHONE}/call_permissions?user_wa_id={USER}"),
            None,
        )
        .await;
    assert_eq!((s, v["error"]["code"].as_u64()), (400, Some(138013)), "{v}");
    let details = v["error"]["error_data"]["details"].as_str().unwrap();
    assert!(
        details.contains("+15550783881") && details.contains(UK),
        "{details}"
    );
    // The user cannot grant one from the profile of a +1 number.
    let (s, v) = emu
        .admin(
            "POST",
            &format!("/users/{USER}/permission-reply"),
            json!({"response":"accept","permanent":true,"phone_number_id":PHONE}),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(
        v["error"]["error_data"]["reason"],
        "business_initiated_calling_unavailable"
    );
    // Without a number, the profile reply goes to the first number that can call users.
    let (s, v) = emu
        .admin(
            "POST",
            &format!("/users/{USER}/permission-reply"),
            json!({"response":"accept","permanent":true}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let reply = emu.values("messages", "call_permission_reply").await;
    assert_eq!(reply.len(), 1);
    assert_eq!(reply[0]["metadata"]["phone_number_id"], UK);
    // A user calling a +1 number with callback permission on gets no automatic permission.
    let (s, _) = emu
        .graph(
            "POST",
            &format!("/{PHONE}/settings"),
            Some(json!({"calling":{"callback_permission_status":"ENABLED"}})),
        )
        .await;
    assert_eq!(s, 200);
    emu.ok(
        "POST",
        &format!("/users/{USER}/call"),
        json!({ "phone_number_id": PHONE }),
    )
    .await;
    assert_eq!(
        emu.values("messages", "call_permission_reply").await.len(),
        1
    );
}
