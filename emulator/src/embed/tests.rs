//! The embedded API against a real emulator: typed answers and refusals, the clock, and
//! what a wait that found nothing says.

use super::*;
use crate::api::admin_types::WebhookState;
use crate::domain::ids::{MessageId, PhoneNumberId};
use crate::domain::user::Platform;
use serde_json::json;

const ALICE: &str = "16315551234";
const OFFER: &str = "v=0\r\no=- 7 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 AA:BB:CC\r\na=setup:actpass\r\n";

fn call_button(to: &str, payload: &str, ttl_minutes: u32) -> Value {
    json!({"messaging_product": "whatsapp", "to": to, "type": "interactive",
        "interactive": {"type": "voice_call", "body": {"text": "Call us"},
            "action": {"name": "voice_call",
                "parameters": {"payload": payload, "ttl_minutes": ttl_minutes}}}})
}

async fn send_button(emu: &Emulator, payload: &str, ttl_minutes: u32) -> MessageId {
    let phone = emu.tenant().phone_number_id().clone();
    let sent = emu
        .graph(
            "POST",
            &format!("/v21.0/{phone}/messages"),
            Some(&call_button(ALICE, payload, ttl_minutes)),
        )
        .await
        .expect("the button is sent");
    MessageId::from(sent["messages"][0]["id"].as_str().expect("a message id"))
}

#[tokio::test]
async fn the_tenant_is_the_default_one_with_the_number_that_can_call_users() {
    let emu = Emulator::start().await;
    let t = emu.tenant();
    assert_eq!(t.access_token, "wa-emulator-token");
    assert_eq!(t.app_secret, "wa-emulator-secret");
    assert_eq!(t.verify_token, "wa-emulator-verify");
    assert_eq!(t.waba_id.as_str(), "102290129340398");
    assert_eq!(t.phone_number_id().as_str(), "106540352242922");
    assert_eq!(
        t.calling_phone_number_id().map(PhoneNumberId::as_str),
        Some("110972043181256")
    );
    assert!(emu.url().starts_with("http://127.0.0.1:"));
    let clock = emu.clock().await.unwrap();
    assert_eq!(clock.mode, ClockMode::Virtual);
    assert_eq!(clock.now_ms, DEFAULT_CLOCK_START_MS);
    // Where a business's SIP server sends the INVITE of a business-initiated call.
    let sip = emu
        .config()
        .await
        .unwrap()
        .sip
        .expect("the SIP gateway runs");
    assert!(
        sip.udp.starts_with("127.0.0.1:") && sip.tcp == sip.udp,
        "{sip:?}"
    );
    assert!(sip
        .ca_pem
        .is_some_and(|pem| pem.contains("BEGIN CERTIFICATE")));
}

#[tokio::test]
async fn user_actions_answer_with_the_ids_the_webhooks_carry() {
    let emu = Emulator::start().await;
    let alice = emu.user(ALICE);
    let user = alice
        .set(
            UserSpec::new()
                .platform(Platform::Ios)
                .version("2.25.30")
                .name("Alice"),
        )
        .await
        .unwrap();
    assert_eq!((user.name.as_str(), user.platform.name()), ("Alice", "ios"));

    let text = alice.send_text("hello").await.unwrap();
    let inbound = emu
        .wait_for(
            WebhookPattern::field("messages")
                .event("text")
                .message(&text),
            Duration::ZERO,
        )
        .await
        .unwrap();
    assert_eq!(
        inbound.body["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"],
        "hello"
    );

    let button = send_button(&emu, "P", 60).await;
    alice.read(&button).await.unwrap();
    let call = alice.tap(&button).await.unwrap();
    emu.wait_for(
        WebhookPattern::field("calls")
            .event("connect")
            .call(&call)
            .with(json!({"cta_payload": "P"})),
        Duration::ZERO,
    )
    .await
    .unwrap();
    let ended = emu.hang_up(&call).await.unwrap();
    assert_eq!(ended.call_id, call);
    assert_eq!(ended.status, "cancelled");

    let icon = alice.call().await.unwrap();
    assert_ne!(icon, call);
    assert_eq!(emu.hang_up(&icon).await.unwrap().status, "cancelled");
    let link = alice
        .open_link("https://wa.me/call/15550783881?biz_payload=Q")
        .await
        .unwrap();
    emu.wait_for(
        WebhookPattern::field("calls")
            .call(&link)
            .with(json!({"deeplink_payload": "Q"})),
        Duration::ZERO,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_refused_action_carries_the_graph_error_and_its_reason() {
    let emu = Emulator::start().await;
    let button = send_button(&emu, "P", 1).await;
    emu.advance(Duration::from_secs(61)).await.unwrap();
    let err = emu.user(ALICE).tap(&button).await.unwrap_err();
    let r = err.refusal().expect("a refusal");
    assert_eq!(r.status, 409);
    assert_eq!(err.code(), Some(100));
    assert_eq!(err.reason(), Some("button_expired"));
    assert!(r.details.contains("expired"), "{}", r.details);
    let shown = err.to_string();
    assert!(
        shown.contains("HTTP 409") && shown.contains("button_expired"),
        "{shown}"
    );

    // A Graph refusal: business-initiated calling from a +1 number.
    let phone = emu.tenant().phone_number_id().clone();
    let connect = json!({"messaging_product": "whatsapp", "to": ALICE, "action": "connect",
        "session": {"sdp_type": "offer", "sdp": OFFER}});
    let err = emu
        .graph("POST", &format!("/v21.0/{phone}/calls"), Some(&connect))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(138013));
    assert!(err.refusal().unwrap().details.contains(phone.as_str()));
}

#[tokio::test]
async fn business_initiated_calls_are_answered_declined_and_hung_up() {
    let emu = Emulator::start().await;
    let uk = emu.tenant().calling_phone_number_id().unwrap().clone();
    let alice = emu.user(ALICE);
    let ask = json!({"messaging_product": "whatsapp", "to": format!("+{ALICE}"), "type": "interactive",
        "interactive": {"type": "call_permission_request",
            "action": {"name": "call_permission_request"}, "body": {"text": "May we call you?"}}});
    let sent = emu
        .graph("POST", &format!("/v21.0/{uk}/messages"), Some(&ask))
        .await
        .unwrap();
    let request = MessageId::from(sent["messages"][0]["id"].as_str().unwrap());
    let reply = alice
        .reply_to_permission(PermissionReply::accept(&request))
        .await
        .unwrap();
    emu.wait_for(
        WebhookPattern::field("messages")
            .event("call_permission_reply")
            .message(&reply)
            .with(json!({"response": "accept"})),
        Duration::ZERO,
    )
    .await
    .unwrap();

    let connect = json!({"messaging_product": "whatsapp", "to": format!("+{ALICE}"),
        "action": "connect", "session": {"sdp_type": "offer", "sdp": OFFER}});
    let place = || async {
        let v = emu
            .graph("POST", &format!("/v21.0/{uk}/calls"), Some(&connect))
            .await
            .unwrap();
        CallId::from(v["calls"][0]["id"].as_str().unwrap())
    };
    let first = place().await;
    assert_eq!(emu.answer(&first).await.unwrap().status, "active");
    emu.wait_for(
        WebhookPattern::field("calls")
            .event("accepted")
            .call(&first),
        Duration::ZERO,
    )
    .await
    .unwrap();
    emu.advance(Duration::from_secs(30)).await.unwrap();
    let ended = emu.hang_up(&first).await.unwrap();
    assert_eq!(
        (ended.status.as_str(), ended.duration),
        ("completed", Some(30))
    );

    let second = place().await;
    assert_eq!(emu.decline(&second).await.unwrap().status, "declined");
}

#[tokio::test]
async fn a_wait_on_the_virtual_clock_moves_it_through_the_timeout_in_steps() {
    let emu = Emulator::start().await;
    let button = send_button(&emu, "P", 60).await;
    let call = emu.user(ALICE).tap(&button).await.unwrap();
    // Nobody answers: the call ends after the 60 s ring window.
    let terminate = emu
        .wait_for(
            WebhookPattern::field("calls")
                .event("terminate")
                .call(&call),
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    let waited = terminate.created_at_ms - DEFAULT_CLOCK_START_MS;
    // Steps of 30 s (a twentieth of the timeout): found at the first step past 60 s.
    assert_eq!(
        waited, 60_000,
        "the terminate webhook was made at +{waited} ms"
    );
    let now = emu.clock().await.unwrap().now_ms - DEFAULT_CLOCK_START_MS;
    assert_eq!(now, 60_000);
}

#[tokio::test]
async fn a_wait_that_finds_nothing_shows_the_closest_webhooks_and_what_differs() {
    let emu = Emulator::start().await;
    let button = send_button(&emu, "P", 60).await;
    let call = emu.user(ALICE).tap(&button).await.unwrap();
    let err = emu
        .wait_for(
            WebhookPattern::field("calls")
                .event("connect")
                .with(json!({"cta_payload": "X"})),
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
    let t = err.timeout().expect("a timeout");
    assert_eq!(t.noun, "webhook");
    assert_eq!(t.logged, 4, "sent, delivered, read, connect: {t}");
    assert_eq!(t.closest[0].entry, "#4 `calls` `connect` (held)");
    assert_eq!(
        t.closest[0].differences,
        ["entry[0].changes[0].value.calls[0].cta_payload: expected \"X\", got \"P\""]
    );
    assert!(t.closest[1]
        .differences
        .contains(&"field: expected `calls`, got `messages`".to_owned()));
    let shown = err.to_string();
    assert!(
        shown.starts_with("no webhook matched within 10 s (the virtual clock advanced 10 s)\n  expected: a `calls` webhook `connect` with {\"cta_payload\":\"X\"}\n  the closest of the 4 webhooks logged:\n    #4 `calls` `connect` (held)\n      entry[0].changes[0].value.calls[0].cta_payload: expected \"X\", got \"P\""),
        "{shown}"
    );

    // Absent keys, other ids, and a closure that can only say no.
    let err = emu
        .wait_for(
            WebhookPattern::field("calls")
                .call(&CallId::from("wacid.other"))
                .without("cta_payload"),
            Duration::ZERO,
        )
        .await
        .unwrap_err();
    let near = &err.timeout().unwrap().closest[0];
    assert_eq!(
        near.differences,
        [
            format!("call_id: expected wacid.other, got {call}"),
            "entry[0].changes[0].value.calls[0].cta_payload: expected absent, got \"P\"".into()
        ]
    );
    let err = emu
        .wait_for_webhook(|w| w.field == "nothing", Duration::ZERO)
        .await
        .unwrap_err();
    let t = err.timeout().unwrap();
    assert_eq!(t.expected, "a webhook the predicate accepts");
    assert_eq!(t.closest[0].entry, "#4 `calls` `connect` (held)");
    assert!(t.closest[0].differences.is_empty());
}

#[tokio::test]
async fn requests_are_waited_for_in_the_graph_request_history() {
    let emu = Emulator::start().await;
    let err = emu
        .wait_for(RequestPattern::new("POST", "/messages"), Duration::ZERO)
        .await
        .unwrap_err();
    assert!(
        err.to_string().ends_with("no request was logged at all"),
        "{err}"
    );
    send_button(&emu, "P", 60).await;
    let r = emu
        .wait_for(
            RequestPattern::new("POST", "/messages")
                .with(json!({"interactive": {"type": "voice_call"}}))
                .status(200),
            Duration::ZERO,
        )
        .await
        .unwrap();
    assert_eq!(r.path, "/v21.0/106540352242922/messages");
    let err = emu
        .wait_for(
            RequestPattern::new("POST", "/calls").with(json!({"action": "accept"})),
            Duration::ZERO,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.timeout().unwrap().closest[0].differences,
        [
            "path: expected …/calls, got /v21.0/106540352242922/messages",
            "body action: expected \"accept\", got nothing (the key is absent)"
        ]
    );
    let found = emu
        .wait_for_request(|r| r.status == 200, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(found.seq, r.seq);
}

#[tokio::test]
async fn a_real_clock_waits_in_real_time_and_refuses_to_advance() {
    let emu = Emulator::builder().real_clock().start().await;
    assert_eq!(emu.clock_mode(), ClockMode::Real);
    let err = emu.advance(Duration::from_secs(1)).await.unwrap_err();
    assert_eq!(err.refusal().unwrap().status, 400);
    let err = emu
        .wait_for(WebhookPattern::field("calls"), Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(err.timeout().unwrap().waited, "50 ms of real time");
}

#[tokio::test]
async fn options_and_an_admin_token_reach_the_emulator() {
    let emu = Emulator::builder()
        .seed(9)
        .clock_start_ms(1_800_000_000_000)
        .admin_token("secret-admin")
        .options(|o| o.behaviour.ring_timeout_secs = 45)
        .start()
        .await;
    assert_eq!(emu.clock().await.unwrap().now_ms, 1_800_000_000_000);
    assert_eq!(emu.config().await.unwrap().behaviour.ring_timeout_secs, 45);
    // Without the token the admin API refuses; the handle sends it.
    let bare = crate::server::client::Client::new()
        .json(
            "GET",
            &format!("{}/__emulator/config", emu.url()),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(bare.status.as_u16(), 401);
}

#[tokio::test]
async fn a_callback_url_that_fails_its_handshake_stops_the_start() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Emulator::builder()
        .webhook_url(format!("http://127.0.0.1:{port}/webhook"))
        .try_start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Start(_)), "{err:?}");
    assert!(err.to_string().contains("handshake"), "{err}");
}

#[tokio::test]
async fn dropping_the_handle_stops_the_emulator() {
    let emu = Emulator::start().await;
    let url = format!("{}/__emulator/health", emu.url());
    let client = crate::server::client::Client::new();
    assert!(client
        .json("GET", &url, None, None)
        .await
        .unwrap()
        .is_success());
    drop(emu);
    // Connections are closed and the port refuses new ones.
    let fresh = crate::server::client::Client::new().with_timeout(Duration::from_secs(2));
    assert!(fresh.json("GET", &url, None, None).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handle_and_its_futures_move_between_threads() {
    let emu = std::sync::Arc::new(Emulator::start().await);
    let e = emu.clone();
    let found = tokio::spawn(async move {
        let text = e.user(ALICE).send_text("hi").await.unwrap();
        e.wait_for(WebhookPattern::any().message(&text), Duration::ZERO)
            .await
    });
    assert_eq!(found.await.unwrap().unwrap().event, "text");
    assert_eq!(emu.webhooks().await.unwrap().len(), 1);
}

#[test]
fn events_match_as_logged_or_as_the_body_says() {
    let w: LoggedWebhook = serde_json::from_value(json!({
        "id": "d1", "seq": 1, "field": "messages", "event": "status_sent", "url": null,
        "state": "held", "created_at": 0, "created_at_ms": 0, "signature": "", "raw": "",
        "attempts": [],
        "body": {"entry": [{"changes": [{"value": {"statuses": [{"status": "sent"}]}}]}]}
    }))
    .unwrap();
    for e in ["status_sent", "sent", "SENT"] {
        assert!(WebhookPattern::any().event(e).matches(&w), "{e}");
    }
    assert!(!WebhookPattern::any().event("delivered").matches(&w));
    assert!(WebhookPattern::any()
        .state(WebhookState::Held)
        .after(0)
        .matches(&w));
    assert_eq!(
        WebhookPattern::any().after(1).differences(&w),
        ["seq: expected after #1, got #1"]
    );
}

#[tokio::test]
async fn the_in_memory_client_gets_what_tcp_gets_and_fails_once_the_emulator_stops() {
    let emu = Emulator::start().await;
    let tcp = Client::new();
    let memory = emu.in_memory_client();
    let token = emu.tenant().access_token.clone();
    let phone = emu.tenant().phone_number_id().clone();
    // The same Graph request both ways: the same status, headers and body, the second
    // one over the first's kept connection.
    let url = format!("{}/v21.0/{phone}", emu.url());
    let over_tcp = tcp.json("GET", &url, Some(&token), None).await.unwrap();
    for _ in 0..2 {
        let in_memory = memory.json("GET", &url, Some(&token), None).await.unwrap();
        assert_eq!(in_memory.status, over_tcp.status);
        assert_eq!(in_memory.body, over_tcp.body);
        let names = |r: &crate::server::client::Response| {
            let mut h: Vec<String> = r.headers.keys().map(|k| k.to_string()).collect();
            h.sort();
            h
        };
        assert_eq!(names(&in_memory), names(&over_tcp));
    }
    // A refusal and a body sent both ways.
    let send = json!({"messaging_product": "whatsapp", "to": ALICE, "type": "text"});
    let messages = format!("{}/v21.0/{phone}/messages", emu.url());
    let refused_tcp = tcp
        .json("POST", &messages, None, Some(&send))
        .await
        .unwrap();
    let refused = memory
        .json("POST", &messages, None, Some(&send))
        .await
        .unwrap();
    assert_eq!(refused.status, refused_tcp.status);
    // Every error has a trace id of its own.
    let (mut a, mut b) = (refused.json(), refused_tcp.json());
    a["error"]["fbtrace_id"].take();
    b["error"]["fbtrace_id"].take();
    assert_eq!(a, b);
    // The emulator's request history records both requests alike (it keeps no headers).
    let history = tcp
        .json(
            "GET",
            &format!("{}/__emulator/requests", emu.url()),
            None,
            None,
        )
        .await
        .unwrap()
        .json();
    let entries = history["requests"].as_array().expect("a request list");
    let sends: Vec<Value> = entries
        .iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/messages")))
        .map(|r| json!([r["method"], r["path"], r["query"], r["body"], r["status"]]))
        .collect();
    assert_eq!(sends.len(), 2, "{history}");
    assert_eq!(sends[0], sends[1]);
    assert_eq!(sends[0][4], json!(refused.status.as_u16()), "{history}");
    emu.shutdown().await;
    let after = memory.json("GET", &url, Some(&token), None).await;
    assert!(after.is_err(), "{after:?}");
}
