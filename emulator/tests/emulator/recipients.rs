//! Who a request reaches and how webhooks show them (issue 13): `to` written without `+`
//! (cloud-api §0), BSUID `recipient`s on `/messages`, `/calls` and `/call_permissions`
//! (§13, §1.1, §5.1, §6.4), 131062, and users with a username whose phone number stays
//! out of webhooks until an exchange over it makes it visible (§13, §4.6).

use super::harness::*;
use serde_json::{json, Value};
use wa_emulator::engine::ClockMode;
use wa_emulator::server::ServeOptions;

fn text(to: Value) -> Value {
    let mut v = json!({"messaging_product":"whatsapp","type":"text","text":{"body":"Hello"}});
    v.as_object_mut()
        .unwrap()
        .extend(to.as_object().unwrap().clone());
    v
}

/// `POST /{phone}/messages`, answering status and body.
async fn send_on(emu: &Emu, phone: &str, body: Value) -> (u16, Value) {
    emu.graph("POST", &format!("/{phone}/messages"), Some(body))
        .await
}

/// A user with a username (their number hidden unless `hide` says otherwise); answers
/// the user as the admin API shows them.
async fn username_user(emu: &Emu, wa: &str, username: &str, extra: Value) -> Value {
    let mut body = json!({"wa_id": wa, "name": "Ana", "username": username});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    emu.ok("POST", "/users", body).await
}

/// The last delivered `value` of this field and event.
async fn last(emu: &Emu, field: &str, event: &str) -> Value {
    emu.values(field, event)
        .await
        .pop()
        .unwrap_or_else(|| panic!("no {field}/{event} webhook"))
}

/// No phone number of the user anywhere in a webhook value (business numbers aside).
fn assert_no_phone(v: &Value, wa: &str) {
    let text = v.to_string();
    assert!(!text.contains(wa), "the user's number {wa} is in {v:#}");
}

// ---- `to` without `+` ------------------------------------------------------------------

#[tokio::test]
async fn to_without_plus_gets_the_sending_numbers_calling_code_unless_it_starts_with_it() {
    let emu = Emu::start().await;
    // From the +1 number: Meta's own example form, already with the country code.
    let (s, v) = send_on(&emu, PHONE, text(json!({"to": "14085551234"}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["contacts"],
        json!([{"input": "14085551234", "wa_id": "14085551234"}])
    );
    // A national number from the +1 number gets +1.
    let (_, v) = send_on(&emu, PHONE, text(json!({"to": "(631) 555-1234"}))).await;
    assert_eq!(
        v["contacts"],
        json!([{"input": "(631) 555-1234", "wa_id": "16315551234"}])
    );
    // From the +44 number, the same digits reach a UK number: the mis-delivery Meta warns of.
    let (_, v) = send_on(&emu, PHONE2, text(json!({"to": "16315551234"}))).await;
    assert_eq!(
        v["contacts"],
        json!([{"input": "16315551234", "wa_id": "4416315551234"}])
    );
    let status = last(&emu, "messages", "status_delivered").await;
    assert_eq!(status["statuses"][0]["recipient_id"], "4416315551234");
    assert_eq!(status["contacts"][0]["wa_id"], "4416315551234");
    // With `+`, the number is taken as is.
    let (_, v) = send_on(&emu, PHONE2, text(json!({"to": "+1 631 555 1234"}))).await;
    assert_eq!(
        v["contacts"],
        json!([{"input": "+1 631 555 1234", "wa_id": "16315551234"}])
    );
    let (s, v) = send_on(&emu, PHONE2, text(json!({"to": "7700900123"}))).await;
    assert_eq!(
        (s, v["contacts"][0]["wa_id"].clone()),
        (200, json!("447700900123"))
    );
}

#[tokio::test]
async fn calls_connect_without_plus_reaches_the_number_with_the_business_calling_code() {
    let emu = Emu::start().await;
    emu.user(USER, "android", "2.25.30", "Ana").await;
    // The US user allows the UK number to call them.
    emu.permission_reply(
        USER,
        json!({"response":"accept","permanent":true,"phone_number_id": PHONE2}),
    )
    .await;
    // Without `+`, +44 is prepended: another user, who gave no permission.
    let (s, v) = emu.calls_on(PHONE2, connect(USER)).await;
    assert_eq!((s, v["error"]["code"].clone()), (401, json!(138006)), "{v}");
    let details = v["error"]["error_data"]["details"].as_str().unwrap();
    assert!(details.contains("4416315551234"), "{details}");
    let (s, v) = emu.calls_on(PHONE2, connect(&plus(USER))).await;
    assert_eq!(s, 200, "{v}");
    let ringing = last(&emu, "calls", "status_ringing").await;
    assert_eq!(ringing["statuses"][0]["recipient_id"], USER);
}

#[tokio::test]
async fn the_literal_reading_always_prepends_when_configured() {
    let mut opts = ServeOptions::for_tests(ClockMode::Virtual, 7);
    opts.behaviour.always_prepend_calling_code = true;
    let emu = Emu::start_with(opts).await;
    let (s, v) = send_on(&emu, PHONE, text(json!({"to": "14085551234"}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["contacts"][0]["wa_id"], "114085551234");
    let (_, v) = send_on(&emu, PHONE, text(json!({"to": "+14085551234"}))).await;
    assert_eq!(v["contacts"][0]["wa_id"], "14085551234");
}

// ---- BSUID recipients -----------------------------------------------------------------

#[tokio::test]
async fn a_bsuid_recipient_reaches_the_user_and_the_response_shows_the_number_only_once_visible() {
    let emu = Emu::start().await;
    let user = username_user(&emu, USER, "ana.b", json!({})).await;
    let bsuid = user["user_id"].as_str().unwrap().to_owned();
    assert_eq!(user["username"], "ana.b");

    let (s, v) = send_on(&emu, PHONE, text(json!({"recipient": bsuid}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["contacts"],
        json!([{"input": bsuid, "user_id": bsuid}]),
        "no wa_id while the number is hidden"
    );
    for event in ["status_sent", "status_delivered"] {
        let status = last(&emu, "messages", event).await;
        assert_no_phone(&status, USER);
        assert_eq!(status["statuses"][0]["recipient_user_id"], bsuid.as_str());
        assert_eq!(
            status["contacts"][0],
            json!({"profile": {"name": "Ana", "username": "ana.b"}, "user_id": bsuid})
        );
    }

    // The business writes to the number: visible to this number from now on.
    let (_, v) = send_on(&emu, PHONE, text(json!({"to": USER}))).await;
    assert_eq!(v["contacts"], json!([{"input": USER, "wa_id": USER}]));
    let status = last(&emu, "messages", "status_delivered").await;
    assert_eq!(status["statuses"][0]["recipient_id"], USER);
    assert_eq!(
        status["contacts"][0],
        json!({"profile": {"name": "Ana", "username": "ana.b"}, "wa_id": USER, "user_id": bsuid})
    );
    let (_, v) = send_on(&emu, PHONE, text(json!({"recipient": bsuid}))).await;
    assert_eq!(
        v["contacts"],
        json!([{"input": bsuid, "wa_id": USER, "user_id": bsuid}])
    );
    // …but not to the other number, which never used it.
    let (_, v) = send_on(&emu, PHONE2, text(json!({"recipient": bsuid}))).await;
    assert_eq!(v["contacts"], json!([{"input": bsuid, "user_id": bsuid}]));

    // 30 days without an exchange over the number hide it again.
    emu.advance(30.0 * 86400.0 + 1.0).await;
    let (_, v) = send_on(&emu, PHONE, text(json!({"recipient": bsuid}))).await;
    assert_eq!(v["contacts"], json!([{"input": bsuid, "user_id": bsuid}]));
    let failed = last(&emu, "messages", "status_failed").await;
    assert_no_phone(&failed, USER);
}

#[tokio::test]
async fn to_wins_over_recipient() {
    let emu = Emu::start().await;
    let user = username_user(&emu, USER, "ana.b", json!({})).await;
    let (s, v) = send_on(
        &emu,
        PHONE,
        text(json!({"to": "16315550000", "recipient": user["user_id"]})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["contacts"],
        json!([{"input": "16315550000", "wa_id": "16315550000"}])
    );
}

#[tokio::test]
async fn an_unknown_or_malformed_bsuid_is_a_graph_error_naming_it() {
    let emu = Emu::start().await;
    let before = emu.state().await;
    let (s, v) = send_on(
        &emu,
        PHONE,
        text(json!({"recipient": "US.99999999999999999999"})),
    )
    .await;
    assert_eq!((s, v["error"]["code"].clone()), (400, json!(131009)), "{v}");
    let details = v["error"]["error_data"]["details"].as_str().unwrap();
    assert!(details.contains("US.99999999999999999999"), "{details}");
    assert!(v["error"]["fbtrace_id"].is_string());
    let (s, v) = send_on(&emu, PHONE, text(json!({"recipient": "16315551234"}))).await;
    assert_eq!((s, v["error"]["code"].clone()), (400, json!(131009)), "{v}");
    assert!(v["error"]["error_data"]["details"]
        .as_str()
        .unwrap()
        .contains("recipient must be a BSUID"));
    let (s, v) = emu
        .calls_on(
            PHONE2,
            json!({"messaging_product":"whatsapp","recipient":"US.99999999999999999999","action":"connect","session":{"sdp_type":"offer","sdp":SDP_OFFER}}),
        )
        .await;
    assert_eq!((s, v["error"]["code"].clone()), (400, json!(131009)), "{v}");
    assert_eq!(emu.state().await, before, "refused requests change nothing");
    let (s, v) = emu
        .graph(
            "GET",
            &format!("/{PHONE2}/call_permissions?recipient=US.ENT.1"),
            None,
        )
        .await;
    assert_eq!((s, v["error"]["code"].clone()), (400, json!(131009)), "{v}");
    assert!(v["error"]["error_data"]["details"]
        .as_str()
        .unwrap()
        .contains("\"US.ENT.1\""));
}

#[tokio::test]
async fn authentication_templates_refuse_bsuid_recipients_with_131062() {
    let emu = Emu::start().await;
    let user = username_user(&emu, USER, "ana.b", json!({})).await;
    let (s, v) = emu
        .graph(
            "POST",
            &format!("/{WABA}/message_templates"),
            Some(
                json!({"name":"login_code","language":"en_US","category":"AUTHENTICATION",
                "components":[{"type":"BODY","text":"{{1}} is your verification code."}]}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let otp = |to: Value| {
        let mut v = json!({"messaging_product":"whatsapp","type":"template",
            "template":{"name":"login_code","language":{"code":"en_US"},
                "components":[{"type":"body","parameters":[{"type":"text","text":"123456"}]}]}});
        v.as_object_mut()
            .unwrap()
            .extend(to.as_object().unwrap().clone());
        v
    };
    let before = emu.state().await;
    let (s, v) = send_on(&emu, PHONE, otp(json!({"recipient": user["user_id"]}))).await;
    assert_eq!((s, v["error"]["code"].clone()), (400, json!(131062)), "{v}");
    assert_eq!(
        v["error"]["message"],
        "(#131062) BSUID recipients are not supported for this message"
    );
    assert_eq!(emu.state().await, before);
    let (s, v) = send_on(&emu, PHONE, otp(json!({"to": USER}))).await;
    assert_eq!(s, 200, "{v}");
    // Other types take BSUIDs: a voice_call button.
    let (s, v) = send_on(
        &emu,
        PHONE,
        json!({"messaging_product":"whatsapp","recipient":user["user_id"],"type":"interactive",
            "interactive":{"type":"voice_call","body":{"text":"Call us"},"action":{"name":"voice_call"}}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn a_parent_bsuid_reaches_the_user_and_webhooks_carry_it() {
    let emu = Emu::start().await;
    let parent = "US.ENT.11815799212886844830";
    let user = username_user(&emu, USER, "ana.b", json!({"parent_user_id": parent})).await;
    assert_eq!(user["parent_user_id"], parent);
    let bsuid = user["user_id"].as_str().unwrap();
    let (s, v) = send_on(&emu, PHONE, text(json!({"recipient": parent}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["contacts"], json!([{"input": parent, "user_id": bsuid}]));
    let status = last(&emu, "messages", "status_delivered").await;
    assert_eq!(
        status["contacts"][0],
        json!({"profile": {"name": "Ana", "username": "ana.b"}, "user_id": bsuid, "parent_user_id": parent})
    );
    assert_eq!(status["statuses"][0]["recipient_user_id"], bsuid);
    assert_eq!(status["statuses"][0]["recipient_parent_user_id"], parent);
    // `GET /call_permissions?recipient=` takes the parent too.
    let (s, v) = emu
        .graph(
            "GET",
            &format!("/{PHONE2}/call_permissions?recipient={parent}"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["permission"]["status"], "no_permission");
}

#[tokio::test]
async fn a_business_call_to_a_bsuid_keeps_the_number_hidden_and_a_call_to_the_number_shows_it() {
    let emu = Emu::start().await;
    let user = username_user(&emu, USER, "ana.b", json!({})).await;
    let bsuid = user["user_id"].as_str().unwrap().to_owned();
    emu.permission_reply(
        USER,
        json!({"response":"accept","permanent":true,"phone_number_id": PHONE2}),
    )
    .await;
    let reply = last(&emu, "messages", "call_permission_reply").await;
    assert_no_phone(&reply, USER);
    assert_eq!(reply["messages"][0]["from_user_id"], bsuid.as_str());

    let (s, v) = emu
        .calls_on(
            PHONE2,
            json!({"messaging_product":"whatsapp","recipient":bsuid,"action":"connect","session":{"sdp_type":"offer","sdp":SDP_OFFER}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let call = v["calls"][0]["id"].as_str().unwrap().to_owned();
    emu.ok("POST", &format!("/calls/{call}/decline"), Value::Null)
        .await;
    for (event, key) in [
        ("status_ringing", "statuses"),
        ("connect", "calls"),
        ("status_rejected", "statuses"),
        ("terminate", "calls"),
    ] {
        let v = last(&emu, "calls", event).await;
        assert_no_phone(&v, USER);
        assert_eq!(v["contacts"][0]["profile"]["username"], "ana.b", "{event}");
        let item = &v[key][0];
        if key == "calls" {
            assert_eq!(item["to_user_id"], bsuid.as_str(), "{event}");
            assert_eq!(item["from"], DISPLAY2, "{event}");
            assert!(item.get("to").is_none(), "{event}: {item}");
        } else {
            assert_eq!(item["recipient_user_id"], bsuid.as_str(), "{event}");
        }
    }
    // Calling the number with `to` shows it.
    let (s, v) = emu.calls_on(PHONE2, connect(&plus(USER))).await;
    assert_eq!(s, 200, "{v}");
    let connect = last(&emu, "calls", "connect").await;
    assert_eq!(connect["calls"][0]["to"], USER);
    assert_eq!(connect["contacts"][0]["wa_id"], USER);
}

// ---- users with a username --------------------------------------------------------------

#[tokio::test]
async fn a_username_users_texts_and_calls_carry_no_phone_number() {
    let emu = Emu::start().await;
    let user = username_user(&emu, USER, "ana.b", json!({})).await;
    let bsuid = user["user_id"].as_str().unwrap();
    emu.ok(
        "POST",
        &format!("/users/{USER}/messages"),
        json!({"text": "hi"}),
    )
    .await;
    let msg = last(&emu, "messages", "text").await;
    assert_no_phone(&msg, USER);
    assert_eq!(
        msg["contacts"][0],
        json!({"profile": {"name": "Ana", "username": "ana.b"}, "user_id": bsuid})
    );
    let m = &msg["messages"][0];
    assert!(m.get("from").is_none(), "{m}");
    assert_eq!(m["from_user_id"], bsuid);

    let v = emu
        .ok("POST", &format!("/users/{USER}/call"), json!({}))
        .await;
    let call = v["call_id"].as_str().unwrap().to_owned();
    emu.ok("POST", &format!("/calls/{call}/hangup"), Value::Null)
        .await;
    for event in ["connect", "terminate"] {
        let v = last(&emu, "calls", event).await;
        assert_no_phone(&v, USER);
        let c = &v["calls"][0];
        assert_eq!(c["from_user_id"], bsuid, "{event}");
        assert_eq!(c["to"], DISPLAY, "{event}");
        assert!(c.get("from").is_none(), "{event}: {c}");
    }
    // Writing and calling by username showed the business no number: still hidden.
    emu.ok(
        "POST",
        &format!("/users/{USER}/messages"),
        json!({"text": "again"}),
    )
    .await;
    assert_no_phone(&last(&emu, "messages", "text").await, USER);
}

#[tokio::test]
async fn once_the_number_is_visible_the_users_own_messages_keep_it_visible() {
    let emu = Emu::start().await;
    username_user(&emu, USER, "ana.b", json!({})).await;
    send_on(&emu, PHONE, text(json!({"to": USER}))).await;
    // 29 days later the user writes: visible, and visible for 30 more days.
    emu.advance(29.0 * 86400.0).await;
    emu.ok(
        "POST",
        &format!("/users/{USER}/messages"),
        json!({"text": "hi"}),
    )
    .await;
    assert_eq!(
        last(&emu, "messages", "text").await["messages"][0]["from"],
        USER
    );
    emu.advance(29.0 * 86400.0).await;
    emu.ok(
        "POST",
        &format!("/users/{USER}/messages"),
        json!({"text": "still me"}),
    )
    .await;
    let msg = last(&emu, "messages", "text").await;
    assert_eq!(msg["messages"][0]["from"], USER);
    assert_eq!(msg["contacts"][0]["wa_id"], USER);
}

#[tokio::test]
async fn the_literal_reading_lets_the_users_own_contact_show_the_number_when_configured() {
    let mut opts = ServeOptions::for_tests(ClockMode::Virtual, 7);
    opts.behaviour.user_contact_reveals_phone = true;
    let emu = Emu::start_with(opts).await;
    username_user(&emu, USER, "ana.b", json!({})).await;
    emu.ok(
        "POST",
        &format!("/users/{USER}/messages"),
        json!({"text": "hi"}),
    )
    .await;
    let msg = last(&emu, "messages", "text").await;
    assert_eq!(msg["messages"][0]["from"], USER);
}

#[tokio::test]
async fn a_username_user_who_does_not_hide_the_number_shows_it() {
    let emu = Emu::start().await;
    let user = username_user(&emu, USER, "ana.b", json!({"hide_phone_number": false})).await;
    emu.ok(
        "POST",
        &format!("/users/{USER}/messages"),
        json!({"text": "hi"}),
    )
    .await;
    let msg = last(&emu, "messages", "text").await;
    assert_eq!(
        msg["contacts"][0],
        json!({"profile": {"name": "Ana", "username": "ana.b"}, "wa_id": USER, "user_id": user["user_id"]})
    );
    assert_eq!(msg["messages"][0]["from"], USER);
}

#[tokio::test]
async fn users_without_a_username_look_as_before() {
    let emu = Emu::start().await;
    emu.user(USER, "android", "2.25.30", "Ana").await;
    emu.ok(
        "POST",
        &format!("/users/{USER}/messages"),
        json!({"text": "hi"}),
    )
    .await;
    let msg = last(&emu, "messages", "text").await;
    let contact = msg["contacts"][0].as_object().unwrap();
    assert_eq!(
        contact.keys().collect::<Vec<_>>(),
        ["profile", "wa_id", "user_id"]
    );
    assert_eq!(msg["contacts"][0]["profile"], json!({"name": "Ana"}));
    let m = msg["messages"][0].as_object().unwrap();
    assert_eq!(
        m.keys().take(2).collect::<Vec<_>>(),
        ["from", "from_user_id"]
    );
}

#[tokio::test]
async fn the_users_endpoint_checks_usernames_parents_and_hiding() {
    let emu = Emu::start().await;
    let bad = [
        (json!({"wa_id": USER, "username": "a b"}), "username"),
        (json!({"wa_id": USER, "username": 7}), "username"),
        (
            json!({"wa_id": USER, "parent_user_id": "ENT.1"}),
            "parent_user_id",
        ),
        (
            json!({"wa_id": USER, "hide_phone_number": true}),
            "hide_phone_number",
        ),
    ];
    for (body, field) in bad {
        let (s, v) = emu.admin("POST", "/users", body.clone()).await;
        assert_eq!(s, 400, "{body}: {v}");
        let details = v["error"]["error_data"]["details"].as_str().unwrap();
        assert!(details.contains(field), "{body}: {details}");
    }
    let (_, users) = emu.admin("GET", "/users", Value::Null).await;
    assert_eq!(users["users"], json!([]), "refused creations left no user");

    username_user(&emu, USER, "ana.b", json!({"parent_user_id": "US.ENT.1"})).await;
    let (s, v) = emu
        .admin(
            "POST",
            "/users",
            json!({"wa_id": "16315550000", "username": "ANA.B"}),
        )
        .await;
    assert_eq!(s, 400, "usernames are unique: {v}");
    let (s, v) = emu
        .admin(
            "POST",
            "/users",
            json!({"wa_id": "16315550000", "parent_user_id": "US.ENT.1"}),
        )
        .await;
    assert_eq!(s, 400, "a parent BSUID names one user: {v}");
    // null clears the username; the number shows again.
    let v = emu
        .ok("POST", "/users", json!({"wa_id": USER, "username": null}))
        .await;
    assert!(v.get("username").is_none(), "{v}");
    assert_eq!(v["parent_user_id"], "US.ENT.1");
    emu.ok(
        "POST",
        &format!("/users/{USER}/messages"),
        json!({"text": "hi"}),
    )
    .await;
    assert_eq!(
        last(&emu, "messages", "text").await["messages"][0]["from"],
        USER
    );
}

/// With BSUIDs off (`behaviour.bsuid = false`, the pre-rollout API) a number is the only
/// identifier: a `recipient` is refused, and a username user's webhooks keep the number and
/// carry neither `user_id` nor `username`.
#[tokio::test]
async fn without_bsuids_a_recipient_is_refused_and_numbers_always_show() {
    let mut opts = ServeOptions::for_tests(ClockMode::Virtual, 7);
    opts.behaviour.bsuid = false;
    let emu = Emu::start_with(opts).await;
    let user = username_user(&emu, USER, "ana.b", json!({})).await;
    let (s, v) = send_on(&emu, PHONE, text(json!({"recipient": user["user_id"]}))).await;
    assert_eq!((s, v["error"]["code"].clone()), (400, json!(131009)), "{v}");
    assert!(v["error"]["error_data"]["details"]
        .as_str()
        .unwrap()
        .contains("BSUIDs are off"));
    emu.ok(
        "POST",
        &format!("/users/{USER}/messages"),
        json!({"text": "hi"}),
    )
    .await;
    let msg = last(&emu, "messages", "text").await;
    assert_eq!(
        msg["contacts"][0],
        json!({"profile": {"name": "Ana"}, "wa_id": USER})
    );
    assert_eq!(msg["messages"][0]["from"], USER);
}

/// Errors about a user named by BSUID do not give away the number the business cannot see.
#[tokio::test]
async fn errors_about_a_bsuid_recipient_name_the_bsuid_not_the_hidden_number() {
    let emu = Emu::start().await;
    let user = username_user(&emu, USER, "ana.b", json!({})).await;
    let bsuid = user["user_id"].as_str().unwrap();
    let (s, v) = emu
        .calls_on(
            PHONE2,
            json!({"messaging_product":"whatsapp","recipient":bsuid,"action":"connect","session":{"sdp_type":"offer","sdp":SDP_OFFER}}),
        )
        .await;
    assert_eq!((s, v["error"]["code"].clone()), (401, json!(138006)), "{v}");
    assert_no_phone(&v, USER);
    assert!(v.to_string().contains(bsuid), "{v}");
    emu.permission_reply(
        USER,
        json!({"response":"accept","permanent":true,"phone_number_id": PHONE2}),
    )
    .await;
    let (s, v) = send_on(
        &emu,
        PHONE2,
        json!({"messaging_product":"whatsapp","recipient":bsuid,"type":"interactive",
            "interactive":{"type":"call_permission_request","action":{"name":"call_permission_request"},"body":{"text":"May we call you?"}}}),
    )
    .await;
    assert_eq!((s, v["error"]["code"].clone()), (400, json!(138017)), "{v}");
    assert_no_phone(&v, USER);
    // Once the number is visible to the business, errors may name it.
    let (s, v) = send_on(&emu, PHONE2, permission_request(&plus(USER))).await;
    assert_eq!((s, v["error"]["code"].clone()), (400, json!(138017)), "{v}");
    assert!(v.to_string().contains(USER), "{v}");
}
