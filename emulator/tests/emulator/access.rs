//! Who may call what (issue 9), in process: the default bind address, and tenants whose
//! tokens reach only their own app's WABAs and numbers.

use super::harness::*;
use super::hostile::{assert_graph_error, state};
use serde_json::{json, Value};
use std::collections::HashMap;
use wa_emulator::engine::ClockMode;
use wa_emulator::server::ServeOptions;

#[test]
fn the_default_bind_is_loopback_without_an_admin_token() {
    let o = ServeOptions::resolve(&wa_emulator::server::ServeArgs::default()).unwrap();
    assert_eq!(o.addr.ip().to_string(), "127.0.0.1");
    assert!(o.admin_token.is_none());
}

const B_APP: &str = "2222222222222222";
const B_WABA: &str = "202020202020202";
const B_PHONE: &str = "303030303030303";
const B_TOKEN: &str = "b-token";
const B_SECRET: &str = "b-secret";

fn two_tenants() -> ServeOptions {
    use wa_emulator::domain::tenant::{App, PhoneNumber, Waba};
    let mut opts = ServeOptions::for_tests(ClockMode::Virtual, 21);
    let t = &mut opts.tenants;
    t.apps.push(App {
        id: B_APP.into(),
        secret: B_SECRET.into(),
        access_tokens: vec![B_TOKEN.into()],
        webhook_url: None,
        verify_token: "b-verify".into(),
    });
    t.wabas.push(Waba {
        id: B_WABA.into(),
        app_id: B_APP.into(),
        name: "b".into(),
    });
    t.phone_numbers.push(PhoneNumber {
        id: B_PHONE.into(),
        waba_id: B_WABA.into(),
        display_phone_number: "15550000002".into(),
        verified_name: "b".into(),
        calling: Default::default(),
        business_initiated_calling: None,
        profile: Default::default(),
    });
    opts
}

async fn graph_as(emu: &Emu, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    emu.raw(
        method,
        &format!("/v21.0{path}"),
        &[
            ("authorization", &format!("Bearer {token}")),
            ("content-type", "application/json"),
        ],
        body,
    )
    .await
}

#[tokio::test]
async fn a_token_reaches_only_the_wabas_and_numbers_of_its_own_app() {
    let emu = Emu::start_with(two_tenants()).await;
    let rx_a = Receiver::default_tenant().await;
    let rx_b = Receiver::start(B_SECRET, "b-verify").await;
    emu.set_webhook(&rx_a).await;
    emu.ok(
        "PUT",
        "/webhook",
        json!({"url": rx_b.url, "app_id": B_APP, "verify_token": "b-verify"}),
    )
    .await;
    // Each tenant owns something: a template, a message with a button, a call, an
    // inbound message.
    let tmpl = json!({"name":"mine","language":"en","category":"UTILITY","components":[{"type":"BODY","text":"hi"}]});
    let mut owned = HashMap::new();
    for (token, phone, waba) in [(TOKEN, PHONE, WABA), (B_TOKEN, B_PHONE, B_WABA)] {
        let (s, t) = graph_as(
            &emu,
            token,
            "POST",
            &format!("/{waba}/message_templates"),
            tmpl.clone(),
        )
        .await;
        assert_eq!(s, 200, "{t}");
        let (s, m) = graph_as(
            &emu,
            token,
            "POST",
            &format!("/{phone}/messages"),
            voice_call(USER, json!({})),
        )
        .await;
        assert_eq!(s, 200, "{m}");
        let mid = m["messages"][0]["id"].as_str().unwrap().to_owned();
        let call = emu
            .ok(
                "POST",
                &format!("/users/{USER}/tap"),
                json!({ "message_id": mid }),
            )
            .await;
        let inbound = emu
            .ok(
                "POST",
                &format!("/users/{USER}/messages"),
                json!({"text": "hi", "phone_number_id": phone}),
            )
            .await;
        owned.insert(
            phone,
            (
                t["id"].as_str().unwrap().to_owned(),
                call["call_id"].as_str().unwrap().to_owned(),
                inbound["message_id"].as_str().unwrap().to_owned(),
            ),
        );
    }
    // Each app's webhooks go to its own receiver, signed with its own secret.
    rx_a.wait_for(6).await;
    rx_b.wait_for(6).await;
    let (na, nb) = (rx_a.received().len(), rx_b.received().len());
    assert!(na >= 5 && nb >= 5, "{na} {nb}");
    for (rx, waba) in [(&rx_a, WABA), (&rx_b, B_WABA)] {
        for r in rx.received() {
            assert!(r.signature_ok, "signed with the app's own secret");
            assert_eq!(r.json()["entry"][0]["id"], waba, "{}", r.json());
        }
    }
    let before = state(&emu).await;
    for (token, mine, theirs, their_waba) in [
        (TOKEN, PHONE, B_PHONE, B_WABA),
        (B_TOKEN, B_PHONE, PHONE, WABA),
    ] {
        let (their_template, their_call, their_inbound) = owned[theirs].clone();
        let denied: Vec<(&str, String, Value)> = vec![
            (
                "POST",
                format!("/{theirs}/messages"),
                voice_call(USER, json!({})),
            ),
            (
                "POST",
                format!("/{theirs}/calls"),
                json!({"messaging_product":"whatsapp","call_id":their_call,"action":"terminate"}),
            ),
            (
                "POST",
                format!("/{theirs}/calls"),
                json!({"messaging_product":"whatsapp","to":USER,"action":"connect","session":{"sdp_type":"offer","sdp":SDP_OFFER}}),
            ),
            ("GET", format!("/{theirs}/settings"), Value::Null),
            (
                "POST",
                format!("/{theirs}/settings"),
                json!({"calling":{"status":"DISABLED"}}),
            ),
            (
                "GET",
                format!("/{theirs}/call_permissions?user_wa_id={USER}"),
                Value::Null,
            ),
            ("GET", format!("/{theirs}"), Value::Null),
            ("GET", format!("/{their_waba}"), Value::Null),
            (
                "GET",
                format!("/{their_waba}/message_templates"),
                Value::Null,
            ),
            (
                "POST",
                format!("/{their_waba}/message_templates"),
                tmpl.clone(),
            ),
            (
                "DELETE",
                format!("/{their_waba}/message_templates?name=mine"),
                Value::Null,
            ),
            ("GET", format!("/{their_waba}/phone_numbers"), Value::Null),
            ("GET", format!("/{their_template}"), Value::Null),
        ];
        for (method, path, body) in denied {
            let (s, v) = graph_as(&emu, token, method, &path, body).await;
            assert_eq!(s, 403, "{token} {method} {path}: {v}");
            assert_graph_error(&format!("{token} {method} {path}"), &v, 10);
        }
        // Through its own number, the other tenant's objects do not exist.
        let (s, v) = graph_as(
            &emu,
            token,
            "POST",
            &format!("/{mine}/calls"),
            json!({"messaging_product":"whatsapp","call_id":their_call,"action":"terminate"}),
        )
        .await;
        assert_eq!(
            s, 400,
            "terminating another tenant's call through my number: {v}"
        );
        let (s, v) = graph_as(
            &emu,
            token,
            "POST",
            &format!("/{mine}/messages"),
            json!({"messaging_product":"whatsapp","status":"read","message_id":their_inbound}),
        )
        .await;
        assert_eq!(
            s, 400,
            "marking another number's inbound message read through mine: {v}"
        );
    }
    assert_eq!(
        before,
        state(&emu).await,
        "refused requests changed nothing"
    );
}
