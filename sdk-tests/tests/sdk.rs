//! Real client SDKs against the real `wa-emulator` binary (issue 7).
//!
//! Each test starts its own emulator (`serve --addr 127.0.0.1:0 --clock virtual --seed 7`)
//! and a business app built on the SDK, which receives the webhooks through the SDK's own
//! server and signature check and sends through the SDK's API. The test plays the WhatsApp
//! user through the emulator's admin API. Most apps use their SDK's default Graph version
//! (pywa 26.0, kapso v23.0); some pin v21.0 as clients.md configures them. Build the binary first:
//! `cargo build -p wa-emulator-cli && cargo test -p sdk-tests`.
//!
//! The default number (`15550783881`) is a +1 number: business-initiated calling does not
//! exist there (138013), so business calls and permission requests go from the tenant's
//! second number (`Emulator::calling_number()`, `447700900461` in the UK), and users are
//! written with a leading `+` in `to`, as an integration must when the user is not in the
//! business number's country (without it, the API prepends the business's calling code).

use sdk_tests::{kapso_node, pywa_python, App, Emulator};
use serde_json::{json, Value};
use std::time::Duration;
use wa_emulator::fixture::load_fixture_dir;

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

/// The user writes to the app's number: opens the 24 h window, and pywa gets a typed Message.
fn user_writes(app: &App, wa_id: &str, text: &str) -> Value {
    app.user_texts(wa_id, text);
    let msg = app.wait_for("Message", "the user's text message", |e| {
        e["user"]["wa_id"] == wa_id && e["text"] == text
    });
    assert!(
        msg["user"]["user_id"]
            .as_str()
            .is_some_and(|u| !u.is_empty()),
        "pywa needs contacts[0].user_id (BSUID): {msg}"
    );
    msg
}

fn tap(emu: &Emulator, wa_id: &str, message_id: &str) -> String {
    let res = emu.admin_ok(
        "POST",
        &format!("/__emulator/users/{wa_id}/tap"),
        json!({ "message_id": message_id }),
    );
    s(&res["call_id"]).to_string()
}

/// The pywa app pre-accepts and accepts every user-initiated call in its CallConnect handler.
#[allow(clippy::disallowed_methods, reason = "the SDK app runs in real time")]
fn wait_accepted(app: &App, call_id: &str) {
    let deadline = std::time::Instant::now() + sdk_tests::WAIT;
    loop {
        for e in app.events() {
            if e["id"] != call_id {
                continue;
            }
            if e["kind"] == "AcceptFailed" {
                panic!(
                    "pywa pre_accept/accept of {call_id} raised: {}\n{}",
                    e["error"],
                    app.diagnostics()
                );
            }
            if e["kind"] == "Accepted" {
                assert_eq!(e["pre_accept"], json!(true), "pre_accept result: {e}");
                assert_eq!(e["accept"], json!(true), "accept result: {e}");
                return;
            }
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "pywa never pre-accepted/accepted {call_id}.\n{}",
                app.diagnostics()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn hang_up(emu: &Emulator, call_id: &str) {
    emu.admin_ok(
        "POST",
        &format!("/__emulator/calls/{call_id}/hangup"),
        json!({}),
    );
}

/// Templates may be created PENDING; then pywa must see the APPROVED status update.
fn created_template_is_usable(app: &App, created: &Value, name: &str) {
    assert!(
        created["id"].as_str().is_some_and(|id| !id.is_empty()),
        "template id: {created}"
    );
    assert_eq!(created["category"], "MARKETING", "{created}");
    if created["status"] != "APPROVED" {
        assert_eq!(created["status"], "PENDING", "{created}");
        app.emu.advance(24 * 3600);
        app.wait_for("TemplateStatusUpdate", "APPROVED", |e| {
            e["name"] == name && e["new_status"] == "APPROVED"
        });
    }
}

// ---------------------------------------------------------------------------------------
// pywa

/// Flow 1: voice_call button with payload → tap → CallConnect(cta_payload) → pre_accept +
/// accept → 42 s → user hangs up → CallTerminate(duration 42, same payload).
#[test]
fn pywa_voice_call_button_tap_accept_hang_up() {
    let Some(py) = pywa_python() else { return };
    let emu = Emulator::start();
    let app = App::pywa_on(&emu, &py, Some("21.0"));
    let user = "16315551234";

    user_writes(&app, user, "Can someone call me about my order?");
    // ttl as pywa documents it (a timedelta): pywa sends it as the float 4320.0.
    let sent = app.call_ok(
        "send_voice_call_button",
        json!({"to": user, "text": "Call us on WhatsApp now", "title": "Call Now", "ttl_days": 3, "payload": "order-4471"}),
    );
    let wamid = s(&sent["id"]).to_string();
    assert!(wamid.starts_with("wamid."), "message id: {sent}");
    assert_eq!(sent["input"], user, "{sent}");

    let call_id = tap(&emu, user, &wamid);
    let connect = app.wait_for("CallConnect", "the tap's call", |e| {
        e["id"] == call_id.as_str()
    });
    assert_eq!(connect["direction"], "USER_INITIATED", "{connect}");
    assert_eq!(connect["event"], "connect", "{connect}");
    assert_eq!(connect["sdp_type"], "offer", "{connect}");
    assert_eq!(connect["user"]["wa_id"], user, "{connect}");
    assert_eq!(connect["cta_payload"], "order-4471", "{connect}");
    assert_eq!(connect["has_deeplink_payload"], json!(false), "{connect}");

    wait_accepted(&app, &call_id);
    emu.advance(42);
    hang_up(&emu, &call_id);
    let term = app.wait_for("CallTerminate", "after the user hung up", |e| {
        e["id"] == call_id.as_str()
    });
    assert_eq!(term["status"], "COMPLETED", "{term}");
    assert_eq!(term["duration"], 42, "{term}");
    assert_eq!(term["cta_payload"], "order-4471", "{term}");
    assert_eq!(term["direction"], "USER_INITIATED", "{term}");
    let (start, end) = (term["start_time"].as_i64(), term["end_time"].as_i64());
    assert!(
        start.is_some() && end.is_some(),
        "start/end time of an answered call: {term}"
    );
    assert_eq!(end.unwrap() - start.unwrap(), 42, "{term}");

    // The button message's own status webhooks reach pywa typed (they need contacts[].user_id).
    app.wait_for("MessageStatus", "a status of the voice_call message", |e| {
        e["id"] == wamid.as_str()
            && (e["status"] == "sent" || e["status"] == "delivered" || e["status"] == "read")
    });
    app.assert_sdk_quiet();
}

/// Flow 2: the business shares a wa.me/call link with biz_payload; the user opens it.
#[test]
fn pywa_deep_link_carries_deeplink_payload() {
    let Some(py) = pywa_python() else { return };
    let emu = Emulator::start();
    let app = App::pywa(&emu, &py);
    let user = "16315552345";
    let link = format!(
        "https://wa.me/call/{}?biz_payload=lead-77",
        emu.cfg("display_phone_number")
    );

    user_writes(&app, user, "How do I reach you?");
    app.call_ok(
        "send_text",
        json!({"to": user, "text": format!("Call us any time: {link}")}),
    );
    let opened = emu.admin_ok(
        "POST",
        &format!("/__emulator/users/{user}/open-link"),
        json!({ "url": link }),
    );
    let call_id = s(&opened["call_id"]).to_string();

    let connect = app.wait_for("CallConnect", "the deep link's call", |e| {
        e["id"] == call_id.as_str()
    });
    assert_eq!(connect["direction"], "USER_INITIATED", "{connect}");
    assert_eq!(connect["deeplink_payload"], "lead-77", "{connect}");
    assert_eq!(connect["has_cta_payload"], json!(false), "{connect}");

    wait_accepted(&app, &call_id);
    emu.advance(10);
    hang_up(&emu, &call_id);
    let term = app.wait_for("CallTerminate", "after the user hung up", |e| {
        e["id"] == call_id.as_str()
    });
    assert_eq!(term["status"], "COMPLETED", "{term}");
    assert_eq!(term["duration"], 10, "{term}");
    assert_eq!(term["deeplink_payload"], "lead-77", "{term}");
    assert_eq!(term["cta_payload"], Value::Null, "{term}");
    app.assert_sdk_quiet();
}

/// Flow 3: a template with a voice_call button created through pywa, sent with a send-time
/// TTL and payload, tapped; a second send with a 1-minute TTL cannot be tapped 61 s later.
#[test]
fn pywa_voice_call_template_with_ttl_and_payload() {
    let Some(py) = pywa_python() else { return };
    let emu = Emulator::start();
    let app = App::pywa(&emu, &py);
    let user = "16315553456";
    let name = "voice_call_tpl";

    let created = app.call_ok(
        "create_template",
        json!({"name": name, "body": "Need help? Tap to call us on WhatsApp.", "button_text": "Call us"}),
    );
    created_template_is_usable(&app, &created, name);

    let sent = app.call_ok(
        "send_template",
        json!({"to": user, "name": name, "ttl_minutes": 60, "payload": "tpl-payload-1"}),
    );
    let wamid = s(&sent["id"]).to_string();
    let call_id = tap(&emu, user, &wamid);
    let connect = app.wait_for("CallConnect", "the template button's call", |e| {
        e["id"] == call_id.as_str()
    });
    assert_eq!(connect["cta_payload"], "tpl-payload-1", "{connect}");
    wait_accepted(&app, &call_id);
    emu.advance(7);
    hang_up(&emu, &call_id);
    let term = app.wait_for("CallTerminate", "after the user hung up", |e| {
        e["id"] == call_id.as_str()
    });
    assert_eq!(term["duration"], 7, "{term}");
    assert_eq!(term["cta_payload"], "tpl-payload-1", "{term}");

    // The send-time TTL is what the button honours.
    let short = app.call_ok(
        "send_template",
        json!({"to": user, "name": name, "ttl_minutes": 1, "payload": "tpl-short"}),
    );
    emu.advance(61);
    let res = emu.admin(
        "POST",
        &format!("/__emulator/users/{user}/tap"),
        Some(json!({ "message_id": s(&short["id"]) })),
    );
    assert!(
        res.status.is_client_error(),
        "tapping a button whose 1-minute TTL passed should start no call, got {}: {}",
        res.status,
        res.text()
    );
    app.assert_none(
        "CallConnect",
        "expired button",
        Duration::from_millis(500),
        |e| e["cta_payload"] == "tpl-short",
    );
    app.assert_sdk_quiet();
}

/// Flow 4: from the UK number, permission request → user accepts → CallPermissionUpdate →
/// initiate_call → RINGING / ACCEPTED CallStatus → terminate.
#[test]
fn pywa_business_initiated_call_after_permission() {
    let Some(py) = pywa_python() else { return };
    let emu = Emulator::start();
    let number = emu.calling_number();
    let app = App::pywa_as(&emu, &py, number.clone(), &["--graph-version", "21.0"]);
    let user = "16315554567";
    let to = format!("+{user}");

    user_writes(&app, user, "You may call me later.");
    let perms = app.call_ok("get_call_permissions", json!({ "wa_id": user }));
    assert_eq!(perms["permission"]["status"], "no_permission", "{perms}");

    let req = app.call_ok(
        "request_call_permission",
        json!({"to": to, "text": "May we call you about order ON-12853?"}),
    );
    let req_id = s(&req["id"]).to_string();
    emu.admin_ok(
        "POST",
        &format!("/__emulator/users/{user}/permission-reply"),
        json!({"response": "accept", "message_id": req_id}),
    );
    let upd = app.wait_for("CallPermissionUpdate", "the user's acceptance", |e| {
        e["user"]["wa_id"] == user
    });
    assert_eq!(upd["response"], "accept", "{upd}");
    assert_eq!(upd["response_source"], "user_action", "{upd}");
    assert_eq!(upd["reply_to"], req_id.as_str(), "{upd}");
    assert!(
        upd["expiration_timestamp"].is_i64(),
        "a temporary permission expires: {upd}"
    );

    let perms = app.call_ok("get_call_permissions", json!({ "wa_id": user }));
    assert_eq!(perms["permission"]["status"], "temporary", "{perms}");
    assert!(perms["permission"]["expiration_time"].is_i64(), "{perms}");

    let call = app.call_ok("initiate_call", json!({"to": to, "tracker": "biz-call-1"}));
    let call_id = s(&call["id"]).to_string();
    assert!(call_id.starts_with("wacid."), "{call}");
    assert_eq!(call["success"], json!(true), "{call}");

    let ringing = app.wait_for("CallStatus", "RINGING", |e| {
        e["id"] == call_id.as_str() && e["status"] == "RINGING"
    });
    assert_eq!(ringing["tracker"], "biz-call-1", "{ringing}");
    emu.admin_ok(
        "POST",
        &format!("/__emulator/calls/{call_id}/answer"),
        json!({}),
    );
    let accepted = app.wait_for("CallStatus", "ACCEPTED", |e| {
        e["id"] == call_id.as_str() && e["status"] == "ACCEPTED"
    });
    assert_eq!(accepted["tracker"], "biz-call-1", "{accepted}");
    let connect = app.wait_for("CallConnect", "business-initiated connect", |e| {
        e["id"] == call_id.as_str()
    });
    assert_eq!(connect["direction"], "BUSINESS_INITIATED", "{connect}");
    assert_eq!(connect["sdp_type"], "answer", "{connect}");
    assert_eq!(connect["phone_number_id"], number.id.as_str(), "{connect}");
    assert_eq!(
        connect["user"]["wa_id"], user,
        "the user kept their number: {connect}"
    );

    emu.advance(30);
    let done = app.call_ok("terminate_call", json!({ "call_id": call_id }));
    assert_eq!(done["success"], json!(true), "{done}");
    let term = app.wait_for("CallTerminate", "after pywa terminated", |e| {
        e["id"] == call_id.as_str()
    });
    assert_eq!(term["direction"], "BUSINESS_INITIATED", "{term}");
    assert_eq!(term["status"], "COMPLETED", "{term}");
    assert_eq!(term["duration"], 30, "{term}");
    assert_eq!(term["tracker"], "biz-call-1", "{term}");
    app.assert_sdk_quiet();
}

fn assert_pywa_error(err: &Value, class: &str, code: i64, http: Option<i64>) {
    assert_eq!(err["class"], class, "pywa exception: {err}");
    assert_eq!(err["code"], code, "{err}");
    if let Some(status) = http {
        assert_eq!(err["status_code"], status, "{err}");
    }
}

/// Flow 5a: calling (from the UK number) a user who gave no permission raises pywa's
/// CallPermissionNotFound.
#[test]
fn pywa_error_no_permission_is_call_permission_not_found() {
    let Some(py) = pywa_python() else { return };
    let emu = Emulator::start();
    let app = App::pywa_as(&emu, &py, emu.calling_number(), &[]);
    let err = app.call_err("initiate_call", json!({"to": "+16315555678"}));
    assert_pywa_error(&err, "CallPermissionNotFound", 138006, Some(401));
    app.assert_sdk_quiet();
}

/// Flow 5b: after disabling calling on the UK number through pywa, calls from it raise
/// CallingNotEnabled.
#[test]
fn pywa_error_calling_disabled_is_calling_not_enabled() {
    let Some(py) = pywa_python() else { return };
    let emu = Emulator::start();
    let app = App::pywa_as(&emu, &py, emu.calling_number(), &[]);
    let res = app.call_ok("set_calling", json!({"status": "DISABLED"}));
    assert_eq!(res["success"], json!(true), "{res}");
    let settings = app.call_ok("get_settings", json!({}));
    assert_eq!(settings["calling"]["status"], "DISABLED", "{settings}");
    let err = app.call_err("initiate_call", json!({"to": "+16315556789"}));
    assert_pywa_error(&err, "CallingNotEnabled", 138000, Some(401));
    app.assert_sdk_quiet();
}

/// Flow 5f: from the default +1 number there is no business-initiated calling: calling a
/// user and asking for call permission both fail with 138013 (HTTP 400), which pywa 4.5.0
/// raises as FetchCallPermissionLimitHit (the code's older meaning), and nothing reaches the
/// user.
#[test]
fn pywa_error_plus_one_number_cannot_call_or_ask_138013() {
    let Some(py) = pywa_python() else { return };
    let emu = Emulator::start();
    let number = emu.default_number();
    assert!(!number.business_initiated_calling, "{number:?}");
    let app = App::pywa_as(&emu, &py, number, &[]);
    let user = "16315550123";
    user_writes(&app, user, "Could you call me back?");
    let err = app.call_err("initiate_call", json!({"to": format!("+{user}")}));
    assert_pywa_error(&err, "FetchCallPermissionLimitHit", 138013, Some(400));
    let err = app.call_err(
        "request_call_permission",
        json!({"to": format!("+{user}"), "text": "May we call you?"}),
    );
    assert_pywa_error(&err, "FetchCallPermissionLimitHit", 138013, Some(400));
    app.assert_none(
        "CallStatus",
        "a refused business call",
        Duration::from_millis(300),
        |_| true,
    );
    app.assert_none(
        "MessageStatus",
        "a refused permission request",
        Duration::from_millis(300),
        |_| true,
    );
    app.assert_sdk_quiet();
}

/// Flow 5c: a template that does not exist raises TemplateNotExists.
#[test]
fn pywa_error_unknown_template_is_template_not_exists() {
    let Some(py) = pywa_python() else { return };
    let emu = Emulator::start();
    let app = App::pywa(&emu, &py);
    let err = app.call_err(
        "send_template",
        json!({"to": "16315557890", "name": "no_such_template"}),
    );
    assert_pywa_error(&err, "TemplateNotExists", 132001, None);
    app.assert_sdk_quiet();
}

/// Flow 5d: a wrong access token raises ExpiredAccessToken (190, HTTP 401).
#[test]
fn pywa_error_bad_token_is_expired_access_token() {
    let Some(py) = pywa_python() else { return };
    let emu = Emulator::start();
    let app = App::pywa(&emu, &py);
    let err = app.call_err(
        "send_text_with_token",
        json!({"token": "not-the-emulator-token", "to": "16315558901", "text": "hello"}),
    );
    assert_pywa_error(&err, "ExpiredAccessToken", 190, Some(401));
    app.assert_sdk_quiet();
}

/// Flow 5e: a voice_call button to Android 2.23.0 is accepted (200 + wamid), then pywa gets
/// a failed MessageStatus whose error is its MessageUndeliverable (131026).
#[test]
fn pywa_old_client_gets_failed_status_131026() {
    let Some(py) = pywa_python() else { return };
    let emu = Emulator::start();
    let app = App::pywa(&emu, &py);
    let user = "16315559012";
    emu.admin_ok(
        "POST",
        "/__emulator/users",
        json!({"wa_id": user, "name": "Old Phone", "platform": "android", "version": "2.23.0"}),
    );
    user_writes(&app, user, "hi");
    let sent = app.call_ok(
        "send_voice_call_button",
        json!({"to": user, "text": "Call us", "payload": "old-1"}),
    );
    let wamid = s(&sent["id"]).to_string();
    let failed = app.wait_for("MessageStatus", "failed status", |e| {
        e["id"] == wamid.as_str() && e["status"] == "failed"
    });
    assert_eq!(failed["error"]["class"], "MessageUndeliverable", "{failed}");
    assert_eq!(failed["error"]["code"], 131026, "{failed}");
    app.assert_sdk_quiet();
}

/// A receiver that rejects the emulator is visible: a wrong verify token fails the GET
/// handshake with pywa's answer in the error, and webhooks pywa rejects for a bad signature
/// (its 403) stay undelivered, are retried on the virtual clock, and show pywa's status
/// and body in the delivery log.
#[test]
#[allow(clippy::disallowed_methods, reason = "the SDK app runs in real time")]
fn pywa_rejections_show_in_handshake_and_delivery_log() {
    let Some(py) = pywa_python() else { return };
    let emu = Emulator::start();
    // pywa checks signatures with a secret that is not the emulator's app secret.
    let app = App::pywa_with(&emu, &py, &["--app-secret", "not-the-app-secret"]);

    let res = emu.admin(
        "PUT",
        "/__emulator/webhook",
        Some(json!({"url": format!("{}/webhook", app.url), "verify_token": "wrong-verify-token"})),
    );
    assert!(
        res.status.is_client_error(),
        "handshake with a wrong verify token: {} {}",
        res.status,
        res.text()
    );
    assert!(
        res.text().contains("403"),
        "the error should say what pywa answered (403): {}",
        res.text()
    );
    emu.set_webhook(&format!("{}/webhook", app.url));

    let user = "16315550001";
    emu.admin_ok(
        "POST",
        &format!("/__emulator/users/{user}/messages"),
        json!({"text": "hello?"}),
    );
    let deadline = std::time::Instant::now() + sdk_tests::WAIT;
    let delivery = loop {
        let found = emu.deliveries().into_iter().find(|d| {
            d["field"] == "messages" && d["attempts"].as_array().is_some_and(|a| !a.is_empty())
        });
        if let Some(d) = found {
            break d;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no delivery attempt.\n{}",
            app.diagnostics()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let first = &delivery["attempts"][0];
    assert_eq!(
        first["status"], 403,
        "pywa's answer to a bad signature: {delivery}"
    );
    assert_eq!(first["response_body"], "Forbidden", "{delivery}");
    assert_ne!(delivery["state"], "delivered", "{delivery}");

    emu.advance(3600);
    let deadline = std::time::Instant::now() + sdk_tests::WAIT;
    loop {
        let d = emu
            .deliveries()
            .into_iter()
            .find(|d| d["id"] == delivery["id"])
            .expect("delivery still logged");
        if d["attempts"].as_array().is_some_and(|a| a.len() >= 2) {
            assert_ne!(d["state"], "delivered", "{d}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no retry within an hour of virtual time: {d}\n{}",
            app.diagnostics()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    app.assert_none(
        "Message",
        "a webhook with a bad signature",
        Duration::from_millis(200),
        |_| true,
    );
}

/// Every fixture under `fixtures/<field>/`, as `("<field>/<name>", body)`, sorted.
fn fixture_files() -> Vec<(String, Value)> {
    let dir = sdk_tests::repo_root().join("fixtures");
    load_fixture_dir(&dir).unwrap_or_else(|e| panic!("fixtures/: {e}"))
}

fn same_text(a: &Value, b: &Value) -> bool {
    let text = |v: &Value| match v {
        Value::String(s) => s.to_ascii_lowercase(),
        other => other.to_string(),
    };
    !a.is_null() && text(a) == text(b)
}

/// Recognises the app event of one fixture.
type EventMatch = Box<dyn Fn(&Value) -> bool>;

/// The app event that proves pywa ran a handler for this fixture, and how to recognise it.
/// pywa 4.5 has typed handlers for every field here except `account_settings_update`,
/// which only its raw-update handler sees.
fn handler_for(name: &str, body: &Value) -> (&'static str, EventMatch) {
    let change = body["entry"][0]["changes"][0].clone();
    let value = change["value"].clone();
    let field = change["field"].as_str().unwrap_or("").to_owned();
    match field.as_str() {
        "messages" if value["statuses"].is_array() => {
            let st = value["statuses"][0].clone();
            (
                "MessageStatus",
                Box::new(move |e| {
                    same_text(&e["id"], &st["id"]) && same_text(&e["status"], &st["status"])
                }),
            )
        }
        "messages" if value["messages"][0]["interactive"]["type"] == "call_permission_reply" => {
            let id = value["messages"][0]["id"].clone();
            (
                "CallPermissionUpdate",
                Box::new(move |e| same_text(&e["id"], &id)),
            )
        }
        "messages" => {
            let id = value["messages"][0]["id"].clone();
            ("Message", Box::new(move |e| same_text(&e["id"], &id)))
        }
        "calls" if value["statuses"].is_array() => {
            let st = value["statuses"][0].clone();
            (
                "CallStatus",
                Box::new(move |e| {
                    same_text(&e["id"], &st["id"]) && same_text(&e["status"], &st["status"])
                }),
            )
        }
        "calls" if value["calls"][0]["event"] == "connect" => {
            let id = value["calls"][0]["id"].clone();
            ("CallConnect", Box::new(move |e| same_text(&e["id"], &id)))
        }
        "calls" => {
            let c = value["calls"][0].clone();
            (
                "CallTerminate",
                Box::new(move |e| {
                    same_text(&e["id"], &c["id"]) && same_text(&e["status"], &c["status"])
                }),
            )
        }
        "message_template_status_update" => {
            let v = value.clone();
            (
                "TemplateStatusUpdate",
                Box::new(move |e| {
                    same_text(&e["template_id"], &v["message_template_id"])
                        && same_text(&e["new_status"], &v["event"])
                }),
            )
        }
        "account_settings_update" => {
            let v = value.clone();
            (
                "raw",
                Box::new(move |e| {
                    e["field"] == "account_settings_update"
                        && e["body"]["entry"][0]["changes"][0]["value"] == v
                }),
            )
        }
        other => panic!("{name}: no pywa handler is expected for field {other:?}"),
    }
}

/// Issue 6: `wa-emulator replay fixtures --to <pywa> --app-secret …` runs a pywa handler
/// for every fixture (pywa checks each signature; a rejected one would fail the replay).
#[test]
#[allow(clippy::disallowed_methods, reason = "the SDK app runs in real time")]
fn pywa_runs_a_handler_for_every_replayed_fixture() {
    let Some(py) = pywa_python() else { return };
    let emu = Emulator::start();
    // The fixtures come from both numbers (business-initiated ones from the UK number).
    let app = App::pywa_with(&emu, &py, &["--no-auto-accept", "--all-numbers"]);
    let fixtures = fixture_files();
    assert!(
        fixtures.len() >= 24,
        "the fixture folder: {} files",
        fixtures.len()
    );

    let out = std::process::Command::new(sdk_tests::emulator_binary())
        .arg("replay")
        .arg(sdk_tests::repo_root().join("fixtures"))
        .arg("--to")
        .arg(format!("{}/webhook", app.url))
        .arg("--app-secret")
        .arg(emu.cfg("app_secret"))
        .output()
        .expect("run wa-emulator replay");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "replay failed ({}):\n{report}\n{}",
        out.status,
        app.diagnostics()
    );

    for (name, body) in &fixtures {
        let (kind, pred) = handler_for(name, body);
        app.wait_for(kind, name, pred);
    }
    // The raw-update handler runs last for every update: exactly one per fixture.
    let raw_count = || {
        app.events()
            .into_iter()
            .filter(|e| e["kind"] == "raw")
            .count()
    };
    let deadline = std::time::Instant::now() + sdk_tests::WAIT;
    while raw_count() < fixtures.len() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        raw_count(),
        fixtures.len(),
        "{report}\n{}",
        app.diagnostics()
    );
    app.assert_sdk_quiet();
}

// ---------------------------------------------------------------------------------------
// @kapso/whatsapp-cloud-api

const JOSE: &str = "34612345678";
/// José in a Graph `to`: he is in Spain, not in the business number's country, so the `+`
/// keeps the API from prepending the business's calling code.
const JOSE_TO: &str = "+34612345678";
const JOSE_NAME: &str = "José Müller";

fn kapso_user(emu: &Emulator) {
    emu.admin_ok(
        "POST",
        "/__emulator/users",
        json!({"wa_id": JOSE, "name": JOSE_NAME}),
    );
}

/// The kapso app's record of the first delivered webhook matching `pred`.
fn kapso_webhook(app: &App, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    app.wait_for("webhook", what, |e| {
        e["normalized"].is_object() && pred(&e["normalized"])
    })
}

fn kapso_call<'v>(n: &'v Value, call_id: &str, event: &str) -> Option<&'v Value> {
    // normalizeWebhook() keeps `id` (it renames only a legacy `wacid` to `callId`).
    n["calls"]
        .as_array()?
        .iter()
        .find(|c| (c["id"] == call_id || c["callId"] == call_id) && c["event"] == event)
}

/// Every webhook the kapso app received passed verifySignature (over the bytes and over the
/// decoded text), was ASCII-escaped and sent with Content-Length; and every delivery in the
/// emulator's log verifies with kapso's verifySignature too.
fn kapso_signatures_all_verify(app: &App) {
    let received: Vec<Value> = app
        .events()
        .into_iter()
        .filter(|e| e["kind"] == "webhook")
        .collect();
    assert!(!received.is_empty(), "the kapso app received no webhooks");
    for e in &received {
        assert_eq!(
            e["verified"],
            json!(true),
            "verifySignature(raw bytes) rejected: {e}"
        );
        assert_eq!(
            e["verified_as_text"],
            json!(true),
            "verifySignature(raw text) rejected: {e}"
        );
        assert_eq!(
            e["ascii_only"],
            json!(true),
            "webhook body is not ASCII-escaped: {e}"
        );
        assert_eq!(e["chunked"], json!(false), "chunked webhook body: {e}");
        assert!(e["content_length"].is_string(), "no Content-Length: {e}");
        assert!(
            e["content_type"]
                .as_str()
                .is_some_and(|c| c.starts_with("application/json")),
            "Content-Type: {e}"
        );
    }
    assert!(
        received.iter().any(|e| e["raw"]
            .as_str()
            .is_some_and(|r| r.contains("Jos\\u00e9 M\\u00fcller"))),
        "no webhook carried the non-ASCII name escaped as Jos\\u00e9 M\\u00fcller"
    );
    let log = app.call_ok("verify_delivery_log", json!({}));
    let log = log.as_array().cloned().unwrap_or_default();
    assert!(
        log.len() >= received.len(),
        "delivery log has {} entries, the app got {}",
        log.len(),
        received.len()
    );
    for d in &log {
        assert_eq!(
            d["verified"],
            json!(true),
            "kapso verifySignature rejects logged delivery {d}"
        );
        assert_eq!(
            d["ascii_only"],
            json!(true),
            "logged delivery raw is not ASCII: {d}"
        );
    }
}

/// Flow 6a: kapso on both sides of user-initiated calls (pre_accept, accept, terminate,
/// reject), with a user whose name is not ASCII.
#[test]
fn kapso_user_initiated_calls_and_signatures() {
    let Some(node) = kapso_node() else { return };
    let emu = Emulator::start();
    let app = App::kapso_on(&emu, &node, Some("v21.0"));
    kapso_user(&emu);

    emu.admin_ok(
        "POST",
        &format!("/__emulator/users/{JOSE}/messages"),
        json!({"text": "Hola, ¿me llaman?"}),
    );
    let msg = kapso_webhook(&app, "José's text", |n| {
        n["messages"][0]["text"]["body"] == "Hola, ¿me llaman?"
    });
    assert_eq!(
        msg["normalized"]["contacts"][0]["profile"]["name"], JOSE_NAME,
        "{msg}"
    );
    assert_eq!(
        msg["normalized"]["phoneNumberId"],
        emu.cfg("phone_number_id"),
        "{msg}"
    );

    let sent = app.call_ok(
        "send_voice_call_button",
        json!({"to": JOSE_TO, "text": "Llámenos por WhatsApp", "title": "Llamar", "ttl_minutes": 60, "payload": "kapso-cta-1"}),
    );
    let wamid = s(&sent["messages"][0]["id"]).to_string();
    assert_eq!(sent["contacts"][0]["waId"], JOSE, "{sent}");

    let call_id = tap(&emu, JOSE, &wamid);
    let connect = kapso_webhook(&app, "connect", |n| {
        kapso_call(n, &call_id, "connect").is_some()
    });
    let c = kapso_call(&connect["normalized"], &call_id, "connect").unwrap();
    assert_eq!(
        c["ctaPayload"], "kapso-cta-1",
        "normalizeWebhook().calls[0]: {c}"
    );
    assert_eq!(c["direction"], "USER_INITIATED", "{c}");
    assert_eq!(
        connect["normalized"]["contacts"][0]["profile"]["name"], JOSE_NAME,
        "{connect}"
    );

    let pre = app.call_ok("pre_accept", json!({ "call_id": call_id }));
    assert_eq!(pre["success"], json!(true), "{pre}");
    let acc = app.call_ok("accept", json!({ "call_id": call_id }));
    assert_eq!(acc["success"], json!(true), "{acc}");
    emu.advance(12);
    let term = app.call_ok("terminate", json!({ "call_id": call_id }));
    assert_eq!(term["success"], json!(true), "{term}");
    let ended = kapso_webhook(&app, "terminate", |n| {
        kapso_call(n, &call_id, "terminate").is_some()
    });
    let t = kapso_call(&ended["normalized"], &call_id, "terminate").unwrap();
    assert_eq!(t["status"], "COMPLETED", "{t}");
    assert_eq!(t["duration"], 12, "{t}");
    assert_eq!(t["ctaPayload"], "kapso-cta-1", "{t}");

    // A native call (no payload), rejected through kapso.
    let native = emu.admin_ok("POST", &format!("/__emulator/users/{JOSE}/call"), json!({}));
    let call2 = s(&native["call_id"]).to_string();
    let connect2 = kapso_webhook(&app, "native call connect", |n| {
        kapso_call(n, &call2, "connect").is_some()
    });
    let c2 = kapso_call(&connect2["normalized"], &call2, "connect").unwrap();
    assert!(
        c2.get("ctaPayload").is_none() && c2.get("deeplinkPayload").is_none(),
        "{c2}"
    );
    let rej = app.call_ok("reject", json!({ "call_id": call2 }));
    assert_eq!(rej["success"], json!(true), "{rej}");
    let ended2 = kapso_webhook(&app, "terminate after reject", |n| {
        kapso_call(n, &call2, "terminate").is_some()
    });
    let t2 = kapso_call(&ended2["normalized"], &call2, "terminate").unwrap();
    assert!(
        t2.get("duration").is_none(),
        "an unanswered call has no duration: {t2}"
    );

    kapso_signatures_all_verify(&app);
}

/// Flow 6b: from the UK number, kapso's calls.permissions.get, a call permission request, a
/// business-initiated call through calls.connect, and 138006 as kapso's GraphApiError. José is
/// in Spain: `to` is `+34…`, or the API would prepend the UK calling code.
#[test]
fn kapso_permissions_and_business_initiated_call() {
    let Some(node) = kapso_node() else { return };
    let emu = Emulator::start();
    let number = emu.calling_number();
    let app = App::kapso_as(&emu, &node, number.clone(), None);
    kapso_user(&emu);
    let to = JOSE_TO;

    let err = app.call_err("connect", json!({"to": to}));
    assert_eq!(err["class"], "GraphApiError", "{err}");
    assert_eq!(err["code"], 138006, "{err}");
    assert_eq!(err["httpStatus"], 401, "{err}");

    let perms = app.call_ok("get_permissions", json!({ "wa_id": JOSE }));
    assert_eq!(perms["permission"]["status"], "no_permission", "{perms}");
    assert!(perms["actions"].is_array(), "{perms}");

    app.user_texts(JOSE, "Sí, pueden llamarme");
    let req = app.call_ok(
        "request_call_permission",
        json!({"to": to, "text": "¿Podemos llamarle?", "purpose": "Soporte"}),
    );
    let req_id = s(&req["messages"][0]["id"]).to_string();
    emu.admin_ok(
        "POST",
        &format!("/__emulator/users/{JOSE}/permission-reply"),
        json!({"response": "accept", "message_id": req_id}),
    );
    let reply = kapso_webhook(&app, "call_permission_reply", |n| {
        n["messages"][0]["interactive"]["type"] == "call_permission_reply"
    });
    let r = &reply["normalized"]["messages"][0];
    assert_eq!(
        r["interactive"]["callPermissionReply"]["response"], "accept",
        "{r}"
    );
    assert_eq!(r["context"]["id"], req_id.as_str(), "{r}");
    assert_eq!(
        reply["normalized"]["phoneNumberId"],
        number.id.as_str(),
        "{reply}"
    );

    let perms = app.call_ok("get_permissions", json!({ "wa_id": JOSE }));
    assert_eq!(perms["permission"]["status"], "temporary", "{perms}");

    let call = app.call_ok("connect", json!({"to": to, "tracker": "kapso-biz-1"}));
    let call_id = s(&call["calls"][0]["id"]).to_string();
    let status_is = |st: &'static str| {
        let call_id = call_id.clone();
        move |n: &Value| {
            n["statuses"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["id"] == call_id.as_str() && x["status"] == st)
            })
        }
    };
    kapso_webhook(&app, "RINGING", status_is("RINGING"));
    emu.admin_ok(
        "POST",
        &format!("/__emulator/calls/{call_id}/answer"),
        json!({}),
    );
    kapso_webhook(&app, "ACCEPTED", status_is("ACCEPTED"));
    emu.advance(20);
    let term = app.call_ok("terminate", json!({ "call_id": call_id }));
    assert_eq!(term["success"], json!(true), "{term}");
    let ended = kapso_webhook(&app, "terminate", |n| {
        kapso_call(n, &call_id, "terminate").is_some()
    });
    let t = kapso_call(&ended["normalized"], &call_id, "terminate").unwrap();
    assert_eq!(t["duration"], 20, "{t}");
    assert_eq!(t["bizOpaqueCallbackData"], "kapso-biz-1", "{t}");

    kapso_signatures_all_verify(&app);
}

/// Flow 6d: kapso on the default +1 number: calls.connect and a permission request fail with
/// 138013 (HTTP 400) as kapso's GraphApiError.
#[test]
fn kapso_plus_one_number_cannot_call_or_ask_138013() {
    let Some(node) = kapso_node() else { return };
    let emu = Emulator::start();
    let app = App::kapso(&emu, &node);
    kapso_user(&emu);
    app.user_texts(JOSE, "¿Me pueden llamar?");
    kapso_webhook(&app, "José's text", |n| {
        n["messages"][0]["text"]["body"] == "¿Me pueden llamar?"
    });
    let to = JOSE_TO;
    for (action, args) in [
        ("connect", json!({"to": to})),
        (
            "request_call_permission",
            json!({"to": to, "text": "¿Podemos llamarle?", "purpose": "Soporte"}),
        ),
    ] {
        let err = app.call_err(action, args);
        assert_eq!(err["class"], "GraphApiError", "{action}: {err}");
        assert_eq!(err["code"], 138013, "{action}: {err}");
        assert_eq!(err["httpStatus"], 400, "{action}: {err}");
    }
    kapso_signatures_all_verify(&app);
}

/// Flow 6c: template create (lower-case `voice_call` button) and send (string index,
/// `language.policy`) through kapso's pass-through, then tapped.
#[test]
fn kapso_template_create_send_tap() {
    let Some(node) = kapso_node() else { return };
    let emu = Emulator::start();
    let app = App::kapso(&emu, &node);
    kapso_user(&emu);
    let name = "kapso_voice_tpl";

    let created = app.call_ok(
        "create_template",
        json!({"name": name, "body": "¿Necesita ayuda? Llámenos.", "button_text": "Llamar"}),
    );
    assert!(created["id"].is_string(), "{created}");
    assert_eq!(created["category"], "MARKETING", "{created}");
    if created["status"] != "APPROVED" {
        assert_eq!(created["status"], "PENDING", "{created}");
        emu.advance(24 * 3600);
    }

    let sent = app.call_ok(
        "send_template",
        json!({"to": JOSE_TO, "name": name, "ttl_minutes": 120, "payload": "kapso-tpl-1"}),
    );
    let wamid = s(&sent["messages"][0]["id"]).to_string();
    let call_id = tap(&emu, JOSE, &wamid);
    let connect = kapso_webhook(&app, "template call connect", |n| {
        kapso_call(n, &call_id, "connect").is_some()
    });
    let c = kapso_call(&connect["normalized"], &call_id, "connect").unwrap();
    assert_eq!(c["ctaPayload"], "kapso-tpl-1", "{c}");
    let rej = app.call_ok("reject", json!({ "call_id": call_id }));
    assert_eq!(rej["success"], json!(true), "{rej}");
    kapso_webhook(&app, "terminate after reject", |n| {
        kapso_call(n, &call_id, "terminate").is_some()
    });

    kapso_signatures_all_verify(&app);
}
