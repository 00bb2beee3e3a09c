//! Tenants for parallel tests on one server (issue 15): each test creates its own with
//! `POST /__emulator/tenants` and sees nothing of the others, through the HTTP surface
//! only — users, messages, calls, webhooks (the log and a real receiver), requests,
//! clocks and tokens.

use super::harness::*;
use serde_json::{json, Value};
use std::time::Duration;
use wa_emulator::api::admin_types::TenantInfo;
use wa_emulator::engine::ClockMode;
use wa_emulator::server::client::Client;
use wa_emulator::server::ServeOptions;

/// A test's view of one tenant: its own client, token, numbers and admin prefix, as a
/// separate test process would have them.
struct TenantClient {
    url: String,
    http: Client,
    info: TenantInfo,
}

impl TenantClient {
    async fn create(url: &str, body: Value) -> Self {
        let http = Client::new();
        let r = http
            .json(
                "POST",
                &format!("{url}/__emulator/tenants"),
                None,
                Some(&body),
            )
            .await
            .expect("the emulator answers");
        assert_eq!(
            r.status.as_u16(),
            200,
            "POST /__emulator/tenants: {}",
            r.json()
        );
        let info: TenantInfo = serde_json::from_value(r.json()).expect("a tenant");
        Self {
            url: url.to_owned(),
            http,
            info,
        }
    }

    fn phone(&self) -> &str {
        self.info.phone_number_id.as_str()
    }

    fn phone2(&self) -> &str {
        self.info.phone_numbers[1].id.as_str()
    }

    async fn graph_with(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let r = self
            .http
            .json(
                method,
                &format!("{}/v21.0{path}", self.url),
                Some(token),
                body.as_ref(),
            )
            .await
            .expect("the emulator answers");
        (r.status.as_u16(), r.json())
    }

    async fn graph(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.graph_with(&self.info.access_token, method, path, body)
            .await
    }

    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let r = self
            .http
            .json(
                method,
                &format!("{}{path}", self.info.admin_url),
                None,
                body.as_ref(),
            )
            .await
            .expect("the emulator answers");
        (r.status.as_u16(), r.json())
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.admin(method, path, body).await;
        assert_eq!(status, 200, "{method} {}{path}: {v}", self.info.admin_path);
        v
    }

    /// A call button to `wa`, tapped: the message id and the call id.
    async fn button_call(&self, wa: &str, payload: &str) -> (String, String) {
        let (status, v) = self
            .graph(
                "POST",
                &format!("/{}/messages", self.phone()),
                Some(voice_call(
                    &plus(wa),
                    json!({"display_text": "Call us", "payload": payload}),
                )),
            )
            .await;
        assert_eq!(status, 200, "send: {v}");
        let mid = v["messages"][0]["id"].as_str().unwrap().to_owned();
        let tap = self
            .ok(
                "POST",
                &format!("/users/{wa}/tap"),
                Some(json!({"message_id": mid})),
            )
            .await;
        (mid, tap["call_id"].as_str().unwrap().to_owned())
    }

    async fn list(&self, path: &str, key: &str) -> Vec<Value> {
        self.ok("GET", path, None).await[key]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn ids(v: &[Value], key: &str) -> Vec<String> {
    v.iter()
        .map(|x| x[key].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Every id of a tenant: app, WABA, numbers, token, secret.
fn identity(t: &TenantInfo) -> Vec<String> {
    let mut v = vec![
        t.app_id.to_string(),
        t.waba_id.to_string(),
        t.access_token.clone(),
        t.app_secret.clone(),
    ];
    v.extend(t.phone_numbers.iter().map(|p| p.id.to_string()));
    v
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

#[tokio::test]
async fn a_tenant_answers_with_everything_a_test_needs_and_shares_no_id() {
    let emu = Emu::start().await;
    let a = TenantClient::create(&emu.url, json!({})).await;
    let b = TenantClient::create(&emu.url, Value::Null).await;
    let i = &a.info;
    assert_eq!(i.admin_path, format!("/__emulator/tenants/{}", i.id));
    assert_eq!(i.admin_url, format!("{}{}", emu.url, i.admin_path));
    assert_eq!(i.graph_url, emu.url);
    assert_eq!(i.verify_token, "wa-emulator-verify");
    assert!(i.webhook_url.is_none());
    assert_eq!(i.phone_numbers.len(), 2);
    assert_eq!(i.phone_numbers[0].id, i.phone_number_id);
    assert!(i.phone_numbers[0].display_phone_number.starts_with('1'));
    assert!(!i.phone_numbers[0].business_initiated_calling);
    assert!(i.phone_numbers[1].business_initiated_calling);
    assert!(i.phone_numbers.iter().all(|p| p.waba_id == i.waba_id));
    assert_eq!(i.clock.mode, ClockMode::Virtual);
    // Unique across the server, and never the default tenant's.
    let default = [PHONE, PHONE2, WABA, TOKEN, SECRET, "1234567890123456"];
    for id in identity(&a.info) {
        assert!(!identity(&b.info).contains(&id), "{id} is in both tenants");
        assert!(
            !default.contains(&id.as_str()),
            "{id} is the default tenant's"
        );
    }
    // Its config is the tenant's, as GET /__emulator/config is the default tenant's.
    let config = a.ok("GET", "/config", None).await;
    assert_eq!(config["access_token"], i.access_token.as_str());
    assert_eq!(config["app_secret"], i.app_secret.as_str());
    assert_eq!(config["tenants"]["apps"].as_array().unwrap().len(), 1);
    let (_, again) = emu
        .admin("GET", &format!("/tenants/{}", i.id), Value::Null)
        .await;
    assert_eq!(again, serde_json::to_value(i).unwrap());
    let (_, list) = emu.admin("GET", "/tenants", Value::Null).await;
    assert_eq!(list["live"], 2);
    assert_eq!(list["max"], 1000);
    assert_eq!(
        ids(list["tenants"].as_array().unwrap(), "id"),
        [a.info.id.clone(), b.info.id.clone()]
    );
    // The default tenant is as it was.
    let (_, config) = emu.admin("GET", "/config", Value::Null).await;
    assert_eq!(config["access_token"], TOKEN);
}

#[tokio::test]
async fn parallel_tests_with_a_tenant_each_see_nothing_of_each_other() {
    let emu = Emu::start().await;
    let secrets_and_receivers = async {
        let a = TenantClient::create(&emu.url, json!({})).await;
        let ra = Receiver::start(leak(&a.info.app_secret), "wa-emulator-verify").await;
        (a, ra)
    };
    let (a, ra) = secrets_and_receivers.await;
    // B's receiver is given at creation, with its own verify token (the handshake runs).
    let rb_token = "b-verify";
    // The secret is not known before creation: the receiver checks it once it is.
    let rb = Receiver::start("unknown-yet", rb_token).await;
    let b = TenantClient::create(
        &emu.url,
        json!({"webhook_url": rb.url, "verify_token": rb_token}),
    )
    .await;
    assert_eq!(b.info.webhook_url.as_deref(), Some(rb.url.as_str()));
    a.ok("PUT", "/webhook", Some(json!({"url": ra.url}))).await;

    // The same user number in both tenants, and one of each tenant's own, at the same
    // time from two tasks with separate clients.
    let run = |t: TenantClient, own: &'static str| {
        tokio::spawn(async move {
            let mut calls = Vec::new();
            for wa in [USER, own] {
                calls.push(t.button_call(wa, own).await.1);
            }
            t.ok("POST", &format!("/calls/{}/hangup", calls[0]), None)
                .await;
            t.ok(
                "POST",
                &format!("/users/{own}/messages"),
                Some(json!({"text": own})),
            )
            .await;
            (t, calls)
        })
    };
    let (ta, tb) = (run(a, "447700900111"), run(b, "447700900222"));
    let ((a, a_calls), (b, b_calls)) = (ta.await.unwrap(), tb.await.unwrap());

    for (t, own, other, calls, url) in [
        (&a, "447700900111", "447700900222", &a_calls, &ra.url),
        (&b, "447700900222", "447700900111", &b_calls, &rb.url),
    ] {
        let users = ids(&t.list("/users", "users").await, "wa_id");
        assert!(
            users.contains(&USER.to_owned()) && users.contains(&own.to_owned()),
            "{users:?}"
        );
        assert!(
            !users.contains(&other.to_owned()),
            "{} sees the other tenant's user: {users:?}",
            t.info.id
        );
        assert_eq!(t.list("/messages", "messages").await.len(), 2);
        let mut listed = ids(&t.list("/calls", "calls").await, "id");
        listed.sort();
        let mut mine = calls.clone();
        mine.sort();
        assert_eq!(listed, mine, "{}'s calls", t.info.id);
        // Its delivery log holds its own webhooks only: every payload is its own.
        let log = t.list("/webhooks", "deliveries").await;
        assert!(!log.is_empty());
        for d in &log {
            let raw = d["raw"].as_str().unwrap();
            assert!(
                !raw.contains(other),
                "{}'s log has the other tenant's user: {raw}",
                t.info.id
            );
            assert_eq!(d["body"]["entry"][0]["id"], t.info.waba_id.as_str());
            assert_eq!(d["url"], url.as_str());
        }
        // Its request history holds its own Graph requests only.
        let requests = t.list("/requests", "requests").await;
        assert_eq!(requests.len(), 2, "{requests:?}");
        assert!(requests
            .iter()
            .all(|r| r["path"].as_str().unwrap().contains(t.phone())));
    }
    // Neither tenant's call is known to the other's admin routes.
    let (status, v) = b
        .admin("POST", &format!("/calls/{}/hangup", a_calls[1]), None)
        .await;
    assert_eq!(status, 404, "{v}");
    assert!(
        v.to_string().contains(&format!("No call {}", a_calls[1])),
        "{v}"
    );

    // Each receiver got exactly its tenant's webhooks, signed with that tenant's secret.
    let a_log = a.list("/webhooks", "deliveries").await.len();
    let got = ra.wait_for(a_log).await;
    assert_eq!(got.len(), a_log);
    assert!(got.iter().all(|r| r.signature_ok), "signed with A's secret");
    let b_log = b.list("/webhooks", "deliveries").await.len();
    let got = rb.wait_for(b_log).await;
    assert_eq!(got.len(), b_log);
    for r in &got {
        assert_eq!(
            r.signature,
            independent_signature(b.info.app_secret.as_bytes(), &r.body)
        );
        assert_eq!(r.json()["entry"][0]["id"], b.info.waba_id.as_str());
    }

    // The default tenant saw none of it.
    let (_, v) = emu.admin("GET", "/users", Value::Null).await;
    assert_eq!(v["users"], json!([]));
    assert!(emu.webhooks().await.is_empty());
    let (_, v) = emu.admin("GET", "/requests", Value::Null).await;
    assert_eq!(v["requests"], json!([]));
}

#[tokio::test]
async fn a_token_reaches_only_its_own_tenant() {
    let emu = Emu::start().await;
    let a = TenantClient::create(&emu.url, json!({})).await;
    let b = TenantClient::create(&emu.url, json!({})).await;
    let send = voice_call(&plus(USER), json!({"display_text": "Call us"}));
    let foreign = |status: u16, v: &Value| {
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["error"]["code"], 100, "{v}");
        assert_eq!(v["error"]["error_subcode"], 33, "{v}");
    };
    // A's token on B's numbers and WABA, on the default tenant's, and the default token
    // on A's: objects that do not exist for that token.
    for phone in [b.phone(), b.phone2(), PHONE] {
        let (s, v) = a
            .graph("POST", &format!("/{phone}/messages"), Some(send.clone()))
            .await;
        foreign(s, &v);
        let (s, v) = a.graph("GET", &format!("/{phone}/settings"), None).await;
        foreign(s, &v);
    }
    let (s, v) = a
        .graph(
            "GET",
            &format!("/{}/message_templates", b.info.waba_id),
            None,
        )
        .await;
    foreign(s, &v);
    let (s, v) = a
        .graph_with(
            TOKEN,
            "POST",
            &format!("/{}/messages", a.phone()),
            Some(send.clone()),
        )
        .await;
    foreign(s, &v);
    // Nothing happened anywhere; its own number works.
    assert!(b.list("/messages", "messages").await.is_empty());
    assert!(a.list("/messages", "messages").await.is_empty());
    let (s, v) = a
        .graph("POST", &format!("/{}/messages", a.phone()), Some(send))
        .await;
    assert_eq!(s, 200, "{v}");
    // B's history shows none of A's attempts.
    assert!(b.list("/requests", "requests").await.is_empty());
}

#[tokio::test]
async fn each_tenant_has_its_own_virtual_clock() {
    let emu = Emu::start().await;
    let a = TenantClient::create(&emu.url, json!({"clock_start": 1_800_000_000})).await;
    let b = TenantClient::create(&emu.url, json!({"clock_start": 1_800_000_000})).await;
    assert_eq!(a.info.clock.now, 1_800_000_000);
    let before_default = emu.ok("GET", "/clock", json!(null)).await["now_ms"].clone();
    // A user calls in each; A's clock passes the ring timeout, B's does not move.
    let (_, a_call) = a.button_call(USER, "a").await;
    let (_, b_call) = b.button_call(USER, "b").await;
    let moved = a
        .ok("POST", "/clock/advance", Some(json!({"seconds": 3600})))
        .await;
    assert_eq!(moved["now"], 1_800_003_600);
    let state = |calls: Vec<Value>, id: &str| {
        calls
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| c["state"].clone())
            .unwrap()
    };
    assert_ne!(
        state(a.list("/calls", "calls").await, &a_call),
        state(b.list("/calls", "calls").await, &b_call)
    );
    assert_eq!(b.ok("GET", "/clock", None).await["now"], 1_800_000_000);
    assert_eq!(
        emu.ok("GET", "/clock", json!(null)).await["now_ms"],
        before_default
    );
    // A's unanswered call ended in A only.
    let ended = a.list("/webhooks?field=calls", "deliveries").await;
    assert!(ended.iter().any(|d| d["event"] == "terminate"), "{ended:?}");
    let b_calls = b.list("/webhooks?field=calls", "deliveries").await;
    assert!(
        b_calls.iter().all(|d| d["event"] != "terminate"),
        "{b_calls:?}"
    );
    // A tenant may ask for a real clock on a virtual-clock server, and not start it.
    let r = TenantClient::create(&emu.url, json!({"clock": "real"})).await;
    assert_eq!(r.info.clock.mode, ClockMode::Real);
    let (status, v) = emu
        .admin(
            "POST",
            "/tenants",
            json!({"clock": "real", "clock_start": 1_800_000_000}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["error_data"]["details"]
            .as_str()
            .unwrap()
            .contains("clock_start"),
        "{v}"
    );
}

#[tokio::test]
async fn a_real_clock_tenants_timers_fire_on_time() {
    let mut opts = ServeOptions::for_tests(ClockMode::Real, 3);
    opts.behaviour.ring_timeout_secs = 1;
    let emu = Emu::start_with(opts).await;
    let t = TenantClient::create(&emu.url, json!({})).await;
    assert_eq!(t.info.clock.mode, ClockMode::Real);
    let call = t.ok("POST", &format!("/users/{USER}/call"), None).await["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Nobody touches the tenant: the delivery worker's rounds fire its ring timeout.
    let mut ended = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let log = t
            .list(&format!("/webhooks?call_id={call}"), "deliveries")
            .await;
        if log.iter().any(|d| d["event"] == "terminate") {
            ended = true;
            break;
        }
    }
    assert!(
        ended,
        "the tenant's unanswered call did not end after its 1 s ring timeout"
    );
}

#[tokio::test]
async fn reset_snapshot_and_delete_act_on_one_tenant() {
    let emu = Emu::start().await;
    let a = TenantClient::create(&emu.url, json!({})).await;
    let b = TenantClient::create(&emu.url, json!({})).await;
    a.button_call(USER, "a").await;
    b.button_call(USER, "b").await;

    // Reset: A is as created (same token), B untouched.
    let snapshot_a = a.ok("GET", "/snapshot", None).await;
    a.ok("POST", "/reset", None).await;
    assert!(a.list("/messages", "messages").await.is_empty());
    assert_eq!(b.list("/messages", "messages").await.len(), 1);
    assert_eq!(
        a.ok("GET", "/config", None).await["access_token"],
        a.info.access_token.as_str()
    );

    // A snapshot goes back into its own tenant only.
    let (status, v) = b.admin("PUT", "/snapshot", Some(snapshot_a.clone())).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["error_data"]["details"]
            .as_str()
            .unwrap()
            .contains("not tenant"),
        "{v}"
    );
    assert_eq!(b.list("/messages", "messages").await.len(), 1);
    a.ok("PUT", "/snapshot", Some(snapshot_a)).await;
    assert_eq!(a.list("/messages", "messages").await.len(), 1);

    // Delete: gone from the list, its routes and its token dead; B lives on.
    let deleted = emu
        .ok("DELETE", &format!("/tenants/{}", a.info.id), json!(null))
        .await;
    assert_eq!(deleted, json!({"id": a.info.id, "deleted": true}));
    let (status, v) = a.admin("GET", "/messages", None).await;
    assert_eq!(status, 404, "{v}");
    let (status, _) = emu
        .admin("GET", &format!("/tenants/{}", a.info.id), Value::Null)
        .await;
    assert_eq!(status, 404);
    let (status, v) = a
        .graph("GET", &format!("/{}/settings", a.phone()), None)
        .await;
    assert_eq!(status, 401, "{v}");
    assert_eq!(v["error"]["code"], 190);
    let (_, list) = emu.admin("GET", "/tenants", Value::Null).await;
    assert_eq!(
        ids(list["tenants"].as_array().unwrap(), "id"),
        [b.info.id.as_str()]
    );
    assert_eq!(b.list("/messages", "messages").await.len(), 1);
    // Its id is never handed out again.
    let c = TenantClient::create(&emu.url, json!({})).await;
    assert_ne!(c.info.id, a.info.id);
    assert_ne!(c.info.access_token, a.info.access_token);
}

#[tokio::test]
async fn a_deleted_tenants_pending_deliveries_are_dropped() {
    let emu = Emu::start().await;
    // Two real-clock tenants whose receivers fail every delivery: each webhook is retried
    // 5 s later. Only the tenant that lives on gets its retries.
    let (kept_receiver, gone_receiver) = (
        Receiver::start("any", "wa-emulator-verify").await,
        Receiver::start("any", "wa-emulator-verify").await,
    );
    let mut tenants = Vec::new();
    for r in [&kept_receiver, &gone_receiver] {
        r.status.store(500, std::sync::atomic::Ordering::SeqCst);
        let t =
            TenantClient::create(&emu.url, json!({"webhook_url": r.url, "clock": "real"})).await;
        t.ok(
            "POST",
            &format!("/users/{USER}/messages"),
            Some(json!({"text": "hi"})),
        )
        .await;
        tenants.push(t);
    }
    let first = gone_receiver.wait_for(1).await.len();
    assert_eq!(first, 1);
    kept_receiver.wait_for(1).await;
    emu.ok(
        "DELETE",
        &format!("/tenants/{}", tenants[1].info.id),
        json!(null),
    )
    .await;
    // The retry is due 5 s after the first attempt.
    for _ in 0..100 {
        if kept_receiver.received().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let retried = kept_receiver.received().len();
    assert_eq!(retried, 2, "the control tenant's retry did not come");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        gone_receiver.received().len(),
        first,
        "a deleted tenant's delivery was retried"
    );
}

#[tokio::test]
async fn the_number_of_live_tenants_is_capped_with_a_clear_error() {
    let mut opts = ServeOptions::for_tests(ClockMode::Virtual, 5);
    opts.max_tenants = 2;
    let emu = Emu::start_with(opts).await;
    let a = TenantClient::create(&emu.url, json!({})).await;
    TenantClient::create(&emu.url, json!({})).await;
    let (status, v) = emu.admin("POST", "/tenants", json!({})).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"]["error_data"]["reason"], "tenant_limit", "{v}");
    let details = v["error"]["error_data"]["details"].as_str().unwrap();
    assert!(
        details.contains("2 tenants") && details.contains("--max-tenants"),
        "{details}"
    );
    emu.ok("DELETE", &format!("/tenants/{}", a.info.id), json!(null))
        .await;
    TenantClient::create(&emu.url, json!({})).await;
}

#[tokio::test]
async fn a_failed_handshake_creates_no_tenant_and_bad_requests_are_explained() {
    let emu = Emu::start().await;
    let receiver = Receiver::start("any", "another-verify-token").await;
    let (status, v) = emu
        .admin("POST", "/tenants", json!({"webhook_url": receiver.url}))
        .await;
    assert_eq!(status, 400, "{v}");
    let details = v["error"]["error_data"]["details"].as_str().unwrap();
    assert!(
        details.contains("No tenant was created") && details.contains("403"),
        "{details}"
    );
    let (_, list) = emu.admin("GET", "/tenants", Value::Null).await;
    assert_eq!(list["live"], 0);
    for (body, field) in [
        (json!({"clock": "fast"}), "clock"),
        (json!({"seed": -1}), "seed"),
        (
            json!({"webhook_url": "ftp://example.invalid/"}),
            "http:// or https://",
        ),
        (json!({"clock_start": 12}), "clock_start"),
    ] {
        let (status, v) = emu.admin("POST", "/tenants", body.clone()).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert!(v.to_string().contains(field), "{body}: {v}");
    }
    for path in [
        "/tenants/t999",
        "/tenants/t999/users",
        "/tenants/nope/config",
    ] {
        let (status, v) = emu.admin("GET", path, Value::Null).await;
        assert_eq!(status, 404, "{path}: {v}");
    }
    let t = TenantClient::create(&emu.url, json!({})).await;
    let (status, _) = t.admin("GET", "/tenants", None).await;
    assert_eq!(status, 404, "tenants do not nest");
    let (status, _) = emu.admin("PUT", "/tenants", Value::Null).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn tenant_routes_need_the_admin_token_and_the_inspector_shows_one_tenant() {
    let mut opts = ServeOptions::for_tests(ClockMode::Virtual, 9);
    opts.admin_token = Some("adm".into());
    let emu = Emu::start_with(opts).await;
    let (status, _) = emu.admin("POST", "/tenants", json!({})).await;
    assert_eq!(status, 401);
    let bearer = [("authorization", "Bearer adm")];
    let (status, v) = emu.raw("POST", "/__emulator/tenants", &bearer, "{}").await;
    assert_eq!(status, 200, "{v}");
    let path = v["admin_path"].as_str().unwrap().to_owned();
    let (status, _) = emu.raw("GET", &format!("{path}/users"), &[], "").await;
    assert_eq!(status, 401);
    let (status, v) = emu
        .raw("GET", &format!("{path}/ui/permissions"), &bearer, "")
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(v["permissions"].is_array());
    let (status, page) = emu
        .raw("GET", &format!("{path}/ui?token=adm"), &[], "")
        .await;
    assert_eq!(status, 200);
    assert!(page.as_str().unwrap().contains("/__emulator/ui/app.js"));
}

#[tokio::test]
async fn a_tenant_may_have_the_default_tenants_display_numbers_and_keeps_its_own_ids() {
    let emu = Emu::start().await;
    let t = TenantClient::create(
        &emu.url,
        json!({"phone_numbers": [
            {"display_phone_number": DISPLAY},
            {"display_phone_number": "+44 7700 900461"},
            {"display_phone_number": "5511962185237", "business_initiated_calling": false, "profile": "test"},
        ]}),
    )
    .await;
    let numbers = &t.info.phone_numbers;
    let shown: Vec<&str> = numbers
        .iter()
        .map(|n| n.display_phone_number.as_str())
        .collect();
    assert_eq!(shown, [DISPLAY, DISPLAY2, "5511962185237"]);
    assert!(numbers
        .iter()
        .all(|n| n.id.as_str() != PHONE && n.id.as_str() != PHONE2));
    assert!(!numbers[0].business_initiated_calling && numbers[1].business_initiated_calling);
    assert!(!numbers[2].business_initiated_calling);
    assert_eq!(
        serde_json::to_value(numbers[2].profile).unwrap(),
        json!("test")
    );
    // A call link to that display number rings the tenant's number, not the default's.
    let call = t
        .ok(
            "POST",
            &format!("/users/{USER}/open-link"),
            Some(json!({"url": format!("https://wa.me/call/{DISPLAY}?biz_payload=x")})),
        )
        .await["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let connect = t
        .list(&format!("/webhooks?call_id={call}"), "deliveries")
        .await;
    assert_eq!(
        connect[0]["body"]["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"],
        t.phone()
    );
    let (_, calls) = emu.admin("GET", "/calls", Value::Null).await;
    assert_eq!(calls["calls"], json!([]));
    for (body, why) in [
        (json!({"phone_numbers": []}), "1 to 9"),
        (
            json!({"phone_numbers": [{"display_phone_number": "15550783881"}, {"display_phone_number": "+1 555 078 3881"}]}),
            "must differ",
        ),
        (
            json!({"phone_numbers": [{"display_phone_number": "abc"}]}),
            "phone_numbers[0].display_phone_number",
        ),
        (json!({"phone_numbers": [{}]}), "display_phone_number"),
        (
            json!({"phone_numbers": (0..10).map(|i| json!({"display_phone_number": format!("1555000000{i}")})).collect::<Vec<_>>()}),
            "1 to 9",
        ),
    ] {
        let (status, v) = emu.admin("POST", "/tenants", body.clone()).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert!(v.to_string().contains(why), "{body}: {v}");
    }
}

/// With `--state`, the default tenant is journaled and comes back after a restart;
/// tenants are not (none after the restart), and nothing a tenant did is replayed into
/// the default tenant.
#[tokio::test]
async fn only_the_default_tenant_persists_and_tenant_requests_never_reach_its_journal() {
    let dir = std::env::temp_dir().join(format!("wa-emu-tenants-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut opts = ServeOptions::for_tests(ClockMode::Virtual, 13);
    opts.state = Some(dir.join("state.json"));
    let running = wa_emulator::server::spawn(opts.clone()).await.unwrap();
    let url = running.url();
    let t = TenantClient::create(&url, json!({})).await;
    // Same user, one message in the default tenant and two in the tenant.
    let http = Client::new();
    let r = http
        .json(
            "POST",
            &format!("{url}/v21.0/{PHONE}/messages"),
            Some(TOKEN),
            Some(&voice_call(&plus(USER), json!({"display_text": "Call us"}))),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    t.button_call(USER, "a").await;
    t.button_call("447700900111", "b").await;
    t.ok("POST", "/clock/advance", Some(json!({"seconds": 30})))
        .await;
    let default_clock = http
        .json("GET", &format!("{url}/__emulator/clock"), None, None)
        .await
        .unwrap()
        .json();
    // A crash, not a graceful stop: the restart replays the journal (a graceful stop
    // would compact it into the snapshot first).
    drop(running);

    let running = wa_emulator::server::spawn(opts).await.unwrap();
    let url = running.url();
    let get = |path: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            http.json("GET", &format!("{url}/__emulator{path}"), None, None)
                .await
                .unwrap()
                .json()
        }
    };
    assert_eq!(
        get("/messages").await["messages"].as_array().unwrap().len(),
        1
    );
    assert_eq!(get("/calls").await["calls"], json!([]));
    assert_eq!(get("/tenants").await["live"], 0);
    // The tenant's clock step was not the default tenant's.
    assert_eq!(get("/clock").await, default_clock);
    let r = http
        .json(
            "GET",
            &format!("{url}/v21.0/{}/settings", t.phone()),
            Some(&t.info.access_token),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        r.status.as_u16(),
        401,
        "a tenant's token does not survive a restart"
    );
    drop(running);
    let _ = std::fs::remove_dir_all(&dir);
}
