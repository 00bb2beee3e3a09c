//! Messages, statuses, templates and the webhook contract, over real HTTP.

use super::harness::*;
use serde_json::json;

#[tokio::test]
async fn voice_call_message_gets_signed_sent_and_delivered_webhooks() {
    let emu = Emu::start().await;
    let rx = Receiver::default_tenant().await;
    emu.set_webhook(&rx).await;
    emu.user(USER, "android", "2.25.30", "José Müller 📞").await;
    let id = emu
        .send(voice_call(
            USER,
            json!({"display_text":"Call Now","ttl_minutes":100,"payload":"P"}),
        ))
        .await;
    assert!(id.starts_with("wamid."));
    let got = rx.wait_for(2).await;
    assert_eq!(got.len(), 2, "sent and delivered");
    for r in &got {
        assert!(r.signature_ok, "signature {} does not verify", r.signature);
        assert!(r.body.is_ascii(), "the body is ASCII-escaped");
        assert_eq!(
            r.content_length.as_deref(),
            Some(r.body.len().to_string().as_str())
        );
        assert!(!r.chunked);
    }
    let raw = String::from_utf8(got[0].body.to_vec()).unwrap();
    assert!(raw.contains(r"Jos\u00e9 M\u00fcller \ud83d\udcde"), "{raw}");
    let statuses: Vec<_> = got
        .iter()
        .map(|r| value(r)["statuses"][0]["status"].clone())
        .collect();
    assert_eq!(statuses, vec![json!("sent"), json!("delivered")]);
    let sent = value(&got[0]);
    assert_eq!(sent["statuses"][0]["id"], id.as_str());
    assert_eq!(sent["metadata"]["phone_number_id"], PHONE);
    assert_eq!(got[0].json()["entry"][0]["id"], WABA);
    assert_eq!(sent["contacts"][0]["profile"]["name"], "José Müller 📞");
    assert!(sent["contacts"][0]["user_id"]
        .as_str()
        .unwrap()
        .starts_with("US."));
    assert_eq!(sent["statuses"][0]["pricing"]["category"], "service");
    assert!(sent["statuses"][0]["conversation"]["expiration_timestamp"].is_string());
    assert!(value(&got[1])["statuses"][0]["conversation"]
        .get("expiration_timestamp")
        .is_none());
}

#[tokio::test]
async fn an_android_2_23_user_gets_a_failed_131026_status_instead() {
    let emu = Emu::start().await;
    let rx = Receiver::default_tenant().await;
    emu.set_webhook(&rx).await;
    emu.user(USER, "android", "2.23.0", "Old Phone").await;
    let (status, v) = emu
        .graph(
            "POST",
            &format!("/{PHONE}/messages"),
            Some(voice_call(USER, json!({"payload":"P"}))),
        )
        .await;
    assert_eq!(status, 200, "the send itself succeeds: {v}");
    let got = rx.wait_for(1).await;
    assert_eq!(got.len(), 1);
    let st = &value(&got[0])["statuses"][0];
    assert_eq!(st["status"], "failed");
    assert_eq!(st["errors"][0]["code"], 131026);
    assert_eq!(st["errors"][0]["title"], "Message undeliverable");
    assert_eq!(
        st["errors"][0]["error_data"]["details"],
        "Message Undeliverable."
    );
    assert!(st["errors"][0].get("href").is_none());
    // The button of a message that never arrived starts no call.
    let (status, v) = emu
        .admin(
            "POST",
            &format!("/users/{USER}/tap"),
            json!({"message_id": v["messages"][0]["id"]}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(v["error"]["error_data"]["reason"], "message_not_delivered");
}

#[tokio::test]
async fn messages_limits_answer_with_their_errors_and_change_nothing() {
    let emu = Emu::start().await;
    let rows = vec![
        (
            voice_call(USER, json!({"display_text": "x".repeat(21)})),
            400,
            131009,
            "display_text is limited to 20 characters",
        ),
        (
            voice_call(USER, json!({"ttl_minutes": 0})),
            400,
            131009,
            "between 1 and 43200",
        ),
        (
            voice_call(USER, json!({"ttl_minutes": 43201})),
            400,
            131009,
            "between 1 and 43200",
        ),
        (
            voice_call(USER, json!({"payload": "p".repeat(513)})),
            400,
            131009,
            "limited to 512 characters",
        ),
        (
            voice_call(USER, json!({"ttl_minutes": "soon"})),
            400,
            100,
            "must be an integer",
        ),
        (
            json!({"messaging_product":"whatsapp","to":USER,"type":"carrier_pigeon"}),
            400,
            131051,
            "not supported",
        ),
        (
            json!({"to":USER,"type":"text","text":{"body":"hi"}}),
            400,
            131008,
            "messaging_product is required",
        ),
        (
            json!({"messaging_product":"whatsapp","type":"text","text":{"body":"hi"}}),
            400,
            131008,
            "to is required",
        ),
        (
            json!({"messaging_product":"whatsapp","to":USER,"type":"text","text":{"body":"x".repeat(4097)}}),
            400,
            131009,
            "4096",
        ),
        (
            json!({"messaging_product":"whatsapp","to":USER,"type":"template","template":{"name":"nope","language":{"code":"en_US"}}}),
            400,
            132001,
            "does not exist in en_US",
        ),
    ];
    for (body, http, code, details) in rows {
        let (status, v) = emu
            .graph("POST", &format!("/{PHONE}/messages"), Some(body.clone()))
            .await;
        assert_eq!(
            (status, v["error"]["code"].as_u64().unwrap_or(0)),
            (http, code as u64),
            "{body}: {v}"
        );
        let d = v["error"]["error_data"]["details"].as_str().unwrap_or("");
        assert!(
            d.contains(details),
            "{body}: details {d:?} lack {details:?}"
        );
        assert!(v["error"]["fbtrace_id"].is_string());
    }
    let (_, msgs) = emu.admin("GET", "/messages", serde_json::Value::Null).await;
    assert_eq!(
        msgs["messages"].as_array().unwrap().len(),
        0,
        "rejected requests store nothing"
    );
    assert!(
        emu.webhooks().await.is_empty(),
        "rejected requests send nothing"
    );
}

#[tokio::test]
async fn bad_tokens_get_190_with_http_401() {
    let emu = Emu::start().await;
    let (status, v) = emu
        .raw(
            "POST",
            &format!("/v21.0/{PHONE}/messages"),
            &[("authorization", "Bearer nope")],
            "{}",
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(v["error"]["code"], 190);
    assert_eq!(v["error"]["type"], "OAuthException");
    let (status, v) = emu
        .raw("POST", &format!("/{PHONE}/messages"), &[], "{}")
        .await;
    assert_eq!((status, v["error"]["code"].as_u64()), (401, Some(190)));
    // The token in the query string works too, and header names are case-insensitive.
    let body = voice_call(USER, json!({})).to_string();
    let (status, _) = emu
        .raw(
            "POST",
            &format!("/{PHONE}/messages?access_token={TOKEN}"),
            &[("content-type", "application/json")],
            body.clone(),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = emu
        .raw(
            "POST",
            &format!("/v26.0/{PHONE}/messages"),
            &[("AUTHORIZATION", &format!("bearer {TOKEN}"))],
            body,
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn free_form_messages_outside_the_window_fail_with_131047() {
    let emu = Emu::start().await;
    emu.user(USER, "android", "2.25.30", "Ana").await;
    emu.advance(24.0 * 3600.0 + 1.0).await;
    let id = emu.send(voice_call(USER, json!({}))).await;
    let failed = emu.values("messages", "status_failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["statuses"][0]["id"], id.as_str());
    assert_eq!(failed[0]["statuses"][0]["errors"][0]["code"], 131047);
    // The user writes: the window opens again.
    emu.ok(
        "POST",
        &format!("/users/{USER}/messages"),
        json!({"text": "hello"}),
    )
    .await;
    emu.send(voice_call(USER, json!({}))).await;
    assert_eq!(emu.values("messages", "status_delivered").await.len(), 1);
    assert_eq!(
        emu.values("messages", "text").await[0]["messages"][0]["text"]["body"],
        "hello"
    );
}

#[tokio::test]
async fn templates_with_voice_call_buttons_are_created_approved_and_sent() {
    let emu = Emu::start().await;
    for (name, spelling) in [("tpl_lower", "voice_call"), ("tpl_upper", "VOICE_CALL")] {
        let (status, v) = emu
            .graph(
                "POST",
                &format!("/{WABA}/message_templates"),
                Some(json!({"name":name,"language":"en_US","category":"MARKETING","components":[
                    {"type":"BODY","text":"Need help? Tap to call us."},
                    {"type":"BUTTONS","buttons":[{"type":spelling,"text":"Call us","ttl_minutes":1440}]}]})),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["status"], "APPROVED");
        assert_eq!(v["category"], "MARKETING");
        let (_, t) = emu
            .graph(
                "GET",
                &format!("/{}?fields=status", v["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(t, json!({"status": "APPROVED", "id": v["id"]}));
    }
    let approved = emu
        .values("message_template_status_update", "approved")
        .await;
    assert_eq!(approved.len(), 2);
    assert_eq!(approved[0]["event"], "APPROVED");
    let (status, v) = emu
        .graph("POST", &format!("/{WABA}/message_templates"), Some(json!({"name":"tpl_bad","language":"en_US","category":"MARKETING","components":[
            {"type":"BODY","text":"x"},{"type":"BUTTONS","buttons":[{"type":"voice_call","ttl_minutes":100}]}]})))
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_u64()),
        (400, Some(131009)),
        "{v}"
    );
    let (_, list) = emu
        .graph("GET", &format!("/{WABA}/message_templates"), None)
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    let body = json!({"messaging_product":"whatsapp","to":USER,"type":"template","template":{"name":"tpl_upper","language":{"code":"en_US"},
        "components":[{"type":"button","sub_type":"voice_call","index":"0","parameters":[{"type":"ttl_minutes","ttl_minutes":4320.0},{"type":"payload","payload":"tpl-1"}]}]}});
    let (status, v) = emu
        .graph("POST", &format!("/{PHONE}/messages"), Some(body))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["messages"][0]["message_status"], "accepted");
    let sent = emu.values("messages", "status_sent").await;
    assert_eq!(sent[0]["statuses"][0]["pricing"]["category"], "marketing");
    let (_, del) = emu
        .graph(
            "DELETE",
            &format!("/{WABA}/message_templates?name=tpl_lower"),
            None,
        )
        .await;
    assert_eq!(del, json!({"success": true}));
}

#[tokio::test]
async fn template_review_can_take_time_on_the_virtual_clock() {
    let mut opts =
        wa_emulator::server::ServeOptions::for_tests(wa_emulator::engine::ClockMode::Virtual, 1);
    opts.behaviour.template_review_secs = 60;
    let emu = Emu::start_with(opts).await;
    let (_, v) = emu
        .graph("POST", &format!("/{WABA}/message_templates"), Some(json!({"name":"slow","language":"en","category":"UTILITY","components":[{"type":"BODY","text":"hi"}]})))
        .await;
    assert_eq!(v["status"], "PENDING");
    let send = json!({"messaging_product":"whatsapp","to":USER,"type":"template","template":{"name":"slow","language":{"code":"en"}}});
    let (status, e) = emu
        .graph("POST", &format!("/{PHONE}/messages"), Some(send.clone()))
        .await;
    assert_eq!((status, e["error"]["code"].as_u64()), (400, Some(132001)));
    emu.advance(60.0).await;
    assert_eq!(
        emu.values("message_template_status_update", "approved")
            .await
            .len(),
        1
    );
    let (status, _) = emu
        .graph("POST", &format!("/{PHONE}/messages"), Some(send))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_same_seed_gives_the_same_ids_run_to_run() {
    let mut ids = Vec::new();
    for _ in 0..2 {
        let emu = Emu::start().await;
        let m = emu.send(voice_call(USER, json!({}))).await;
        let (_, e) = emu.graph("POST", "/123/messages", Some(json!({}))).await;
        ids.push((m, e["error"]["fbtrace_id"].clone()));
    }
    assert_eq!(ids[0], ids[1]);
}

#[tokio::test]
async fn failing_receivers_are_retried_on_the_virtual_clock_until_they_accept() {
    let emu = Emu::start().await;
    let rx = Receiver::default_tenant().await;
    emu.set_webhook(&rx).await;
    rx.status.store(500, std::sync::atomic::Ordering::SeqCst);
    emu.send(voice_call(USER, json!({}))).await;
    let got = rx.wait_for(1).await;
    assert_eq!(got.len(), 1, "one attempt, then a wait for the back-off");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        rx.received().len(),
        1,
        "the retry waits for the emulator's clock"
    );
    rx.status.store(200, std::sync::atomic::Ordering::SeqCst);
    emu.advance(5.0).await;
    let got = rx.wait_for(3).await;
    assert_eq!(
        got.len(),
        3,
        "retry of `sent`, then `delivered` (per-message order kept)"
    );
    assert_eq!(value(&got[1])["statuses"][0]["status"], "sent");
    assert_eq!(value(&got[2])["statuses"][0]["status"], "delivered");
    let log = emu.webhooks().await;
    assert_eq!(log[0]["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(log[0]["attempts"][0]["status"], 500);
    assert_eq!(log[0]["state"], "delivered");
}

#[tokio::test]
async fn a_failed_handshake_is_reported_and_sets_nothing() {
    let emu = Emu::start().await;
    let rx = Receiver::start(SECRET, "another-token").await;
    let (status, v) = emu.admin("PUT", "/webhook", json!({"url": rx.url})).await;
    assert_eq!(status, 400);
    assert!(
        v["error"]["error_data"]["details"]
            .as_str()
            .unwrap()
            .contains("answered 403"),
        "{v}"
    );
    let (_, cfg) = emu.admin("GET", "/config", serde_json::Value::Null).await;
    assert!(cfg["webhook_url"].is_null());
    // Held deliveries go out once a URL is set.
    emu.send(voice_call(USER, json!({}))).await;
    assert_eq!(emu.webhooks().await[0]["state"], "held");
    let ok = Receiver::default_tenant().await;
    emu.set_webhook(&ok).await;
    assert_eq!(ok.wait_for(2).await.len(), 2);
}

#[tokio::test]
async fn seeded_chaos_duplicates_webhooks_reproducibly_and_is_off_by_default() {
    let run = |duplicate: f64| async move {
        let mut opts = wa_emulator::server::ServeOptions::for_tests(
            wa_emulator::engine::ClockMode::Virtual,
            9,
        );
        opts.behaviour.chaos = wa_emulator::domain::tenant::Chaos {
            duplicate,
            reorder: 0.0,
            delay_ms: 0,
            seed: 5,
        };
        let emu = Emu::start_with(opts).await;
        let rx = Receiver::default_tenant().await;
        emu.set_webhook(&rx).await;
        for _ in 0..5 {
            emu.send(voice_call(USER, json!({}))).await;
        }
        let log = emu.webhooks().await;
        let got = rx.wait_for(log.len()).await;
        assert_eq!(
            got.len(),
            log.len(),
            "every delivery in the log reached the receiver"
        );
        let marks: Vec<Option<String>> = log
            .iter()
            .map(|d| d["chaos"].as_str().map(str::to_owned))
            .collect();
        (got.len(), marks)
    };
    let (plain, marks) = run(0.0).await;
    assert_eq!(plain, 10);
    assert!(marks.iter().all(Option::is_none));
    let (doubled, marks) = run(1.0).await;
    assert_eq!(doubled, 20, "every webhook twice");
    assert_eq!(
        marks
            .iter()
            .filter(|m| m.as_deref().is_some_and(|m| m.starts_with("duplicate of")))
            .count(),
        10
    );
    assert_eq!(
        run(1.0).await.1,
        marks,
        "the same seed gives the same faults"
    );
}
