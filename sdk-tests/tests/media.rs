//! Media end to end (issue 18): the simulated user's WebRTC endpoint against aiortc, an
//! independent WebRTC stack acting as the business (`python/media_app.py`), with the
//! real `wa-emulator serve` binary on loopback.
//!
//! The app answers the user's offer with aiortc's own SDP (pre_accept, accept) or offers
//! its own in a `connect`; aiortc does ICE (controlling, against the user's ICE-lite),
//! DTLS-SRTP and opus. It sends a tone at 0.3 of full scale (-13.5 dBFS RMS) and measures
//! what it receives: packets, the level of the decoded audio, RFC 4733 digits (it adds
//! telephone-event/8000, which aiortc does not offer by itself). The user's tone is
//! -13 dBFS RMS (`POST …/play`).
//!
//! The emulator's clock is virtual: the 20 s without audio before 138021 pass with
//! `POST /__emulator/clock/advance`; audio itself flows in real time.

use sdk_tests::{aiortc_python, level_near, App, Emulator};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The app's tone, RMS: 0.3 of full scale.
const APP_TONE_DBFS: f64 = -13.5;
/// The user's tone, RMS (`media::sound`).
const USER_TONE_DBFS: f64 = -13.0;

/// Polls `probe` until it returns `Some`, for up to 20 s of real time; on failure shows
/// both sides' view of the call's media.
#[allow(clippy::disallowed_methods, reason = "media flows in real time")]
fn until<T>(what: &str, app: &App, call_id: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + sdk_tests::WAIT;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: not within {:?}\nthe user's endpoint: {}\nthe app: {}\n{}",
                sdk_tests::WAIT,
                media(app.emu, call_id),
                stats(app, call_id),
                app.diagnostics()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn media(emu: &Emulator, call_id: &str) -> Value {
    emu.admin_ok(
        "GET",
        &format!("/__emulator/calls/{call_id}/media"),
        json!({}),
    )
}

fn stats(app: &App, call_id: &str) -> Value {
    app.control("stats", json!({ "call_id": call_id }))
}

/// The user calls the app's number; the app gets the connect webhook with the
/// emulator's offer and answers it with aiortc (`extra`: tone, mute, wrong fingerprint).
fn user_calls_and_app_answers(app: &App, wa_id: &str, extra: Value) -> String {
    let emu = app.emu;
    let call = emu.admin_ok(
        "POST",
        &format!("/__emulator/users/{wa_id}/call"),
        json!({ "phone_number_id": app.number.id }),
    );
    let call_id = call["call_id"].as_str().expect("call_id").to_string();
    let connect = app.wait_for("call_connect", "the user's offer", |e| e["id"] == call_id);
    let offer = connect["session"]["sdp"].as_str().unwrap_or_default();
    assert_eq!(connect["session"]["sdp_type"], "offer", "{connect}");
    assert!(
        offer.contains("a=ice-lite") && offer.contains(" typ host"),
        "the user's offer is a real ICE-lite endpoint with a candidate: {offer}"
    );
    let mut args = json!({ "call_id": call_id });
    if let (Some(a), Some(x)) = (args.as_object_mut(), extra.as_object()) {
        a.extend(x.clone());
    }
    let answered = app.control("answer", args);
    for step in ["pre_accept", "accept"] {
        assert_eq!(
            answered[step]["status"],
            200,
            "{step} with aiortc's answer: {answered}\n{}",
            app.diagnostics()
        );
    }
    call_id
}

#[test]
fn aiortc_answers_a_users_call_audio_and_keys_flow_both_ways() {
    let Some(py) = aiortc_python() else { return };
    let emu = Emulator::start();
    let app = App::aiortc_as(&emu, &py, emu.default_number());
    let call_id = user_calls_and_app_answers(&app, "16315551234", json!({ "tone_hz": 440 }));

    // The business's tone reaches the user: packets, time to the first one, its level.
    let m = until("the user hears the app's tone", &app, &call_id, || {
        let m = media(&emu, &call_id);
        (m["received"]["packets"].as_u64() >= Some(25)).then_some(m)
    });
    assert_eq!(
        (&m["state"], &m["dtls"]),
        (&json!("connected"), &json!("connected")),
        "{m}"
    );
    assert!(
        m["ice"] == "completed" || m["ice"] == "connected",
        "aiortc nominated a pair against the ICE-lite user: {m}"
    );
    assert!(m["received"]["first_packet_ms"].is_u64(), "{m}");
    assert!(
        level_near(&m["received"]["audio_level_dbfs"], APP_TONE_DBFS),
        "the app's {APP_TONE_DBFS} dBFS tone as the user hears it: {m}"
    );
    // The user's silence reaches the app (opus packets, decoded to nothing audible).
    let s = until("the app receives the user's audio", &app, &call_id, || {
        let s = stats(&app, &call_id);
        (s["audio_packets"].as_u64() >= Some(25)).then_some(s)
    });
    assert_eq!(s["connection"], "connected", "{s}");
    assert!(
        s["level_dbfs"].as_f64().is_some_and(|l| l < -60.0),
        "silence: {s}"
    );

    // The user plays a tone: the app hears it at its level.
    let played = emu.admin_ok(
        "POST",
        &format!("/__emulator/calls/{call_id}/play"),
        json!({ "tone_hz": 1000 }),
    );
    assert_eq!(played["playing"], "tone", "{played}");
    until("the app hears the user's tone", &app, &call_id, || {
        level_near(&stats(&app, &call_id)["level_dbfs"], USER_TONE_DBFS).then_some(())
    });

    // The user presses keys: RFC 4733 events on the app's telephone-event payload type.
    emu.admin_ok(
        "POST",
        &format!("/__emulator/calls/{call_id}/dtmf"),
        json!({ "digits": "159#" }),
    );
    let s = until("the app reads the user's keys", &app, &call_id, || {
        let s = stats(&app, &call_id);
        (s["dtmf"] == "159#").then_some(s)
    });
    assert!(s["dtmf_packets"].as_u64() >= Some(4 * 3), "{s}");
    assert_eq!(media(&emu, &call_id)["sent"]["dtmf"], "159#");

    // Audio flowed: 30 s later the call is still up (no 138021).
    emu.advance(30);
    assert_eq!(
        emu.call_record(&call_id)["state"],
        "active",
        "no 138021 while audio flows"
    );

    emu.admin_ok(
        "POST",
        &format!("/__emulator/calls/{call_id}/hangup"),
        json!({}),
    );
    let term = app.wait_for("call_terminate", "the user hung up", |e| e["id"] == call_id);
    assert_eq!(term["status"], "COMPLETED", "{term}");
    until("the user's endpoint closes", &app, &call_id, || {
        (media(&emu, &call_id)["state"] == "closed").then_some(())
    });
}

#[test]
fn aiortc_calls_a_user_who_answers_and_audio_flows_both_ways() {
    let Some(py) = aiortc_python() else { return };
    let emu = Emulator::start();
    let number = emu.calling_number();
    let app = App::aiortc_as(&emu, &py, number.clone());
    let user = "16315551234";
    emu.admin_ok(
        "POST",
        &format!("/__emulator/users/{user}/permission-reply"),
        json!({ "response": "accept", "permanent": true, "phone_number_id": number.id }),
    );

    let out = app.control("call", json!({ "to": format!("+{user}"), "tone_hz": 440 }));
    assert_eq!(
        out["connect"]["status"], 200,
        "connect with aiortc's offer: {out}"
    );
    let call_id = out["connect"]["body"]["calls"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no call id: {out}"))
        .to_string();
    app.wait_for("call_status", "RINGING", |e| {
        e["id"] == call_id && e["status"] == "RINGING"
    });
    emu.admin_ok(
        "POST",
        &format!("/__emulator/calls/{call_id}/answer"),
        json!({}),
    );
    let connect = app.wait_for("call_connect", "the user's answer", |e| e["id"] == call_id);
    assert_eq!(connect["session"]["sdp_type"], "answer", "{connect}");
    let answer = connect["session"]["sdp"].as_str().unwrap_or_default();
    assert!(
        answer.contains("a=setup:passive") && answer.contains(" typ host"),
        "the user's answer fits aiortc's actpass offer and has a candidate: {answer}"
    );

    let m = until("the user hears the app's tone", &app, &call_id, || {
        let m = media(&emu, &call_id);
        (m["received"]["packets"].as_u64() >= Some(25)).then_some(m)
    });
    assert_eq!(m["dtls"], "connected", "{m}");
    assert!(
        level_near(&m["received"]["audio_level_dbfs"], APP_TONE_DBFS),
        "the app's tone as the user hears it: {m}"
    );
    emu.admin_ok(
        "POST",
        &format!("/__emulator/calls/{call_id}/play"),
        json!({ "tone_hz": 700 }),
    );
    let s = until("the app hears the user's tone", &app, &call_id, || {
        let s = stats(&app, &call_id);
        level_near(&s["level_dbfs"], USER_TONE_DBFS).then_some(s)
    });
    assert_eq!(s["connection"], "connected", "{s}");

    let done = app.control("terminate", json!({ "call_id": call_id }));
    assert_eq!(done["status"], 200, "{done}");
    let term = app.wait_for("call_terminate", "the app hung up", |e| e["id"] == call_id);
    assert_eq!(term["status"], "COMPLETED", "{term}");
}

#[test]
fn a_business_that_accepts_but_never_sends_audio_gets_138021() {
    let Some(py) = aiortc_python() else { return };
    let emu = Emulator::start();
    let app = App::aiortc_as(&emu, &py, emu.default_number());
    // A sendrecv track that never yields a frame: DTLS completes, no RTP flows.
    let call_id = user_calls_and_app_answers(&app, "16315551234", json!({ "mute": true }));
    until("DTLS connects", &app, &call_id, || {
        (media(&emu, &call_id)["dtls"] == "connected").then_some(())
    });

    emu.advance(20);
    let term = app.wait_for("call_terminate", "the client's media timeout", |e| {
        e["id"] == call_id
    });
    assert_eq!(term["status"], "FAILED", "{term}");
    assert_eq!(term["errors"][0]["code"], 138021, "{term}");
    let m = media(&emu, &call_id);
    assert_eq!(m["received"]["packets"], 0, "{m}");
    assert!(
        m["failure"]
            .as_str()
            .is_some_and(|f| f.contains("no audio")),
        "{m}"
    );
}

#[test]
fn a_business_whose_certificate_does_not_match_its_fingerprint_fails_the_call() {
    let Some(py) = aiortc_python() else { return };
    let emu = Emulator::start();
    let app = App::aiortc_as(&emu, &py, emu.default_number());
    let call_id = user_calls_and_app_answers(
        &app,
        "16315551234",
        json!({ "tone_hz": 440, "wrong_fingerprint": true }),
    );

    let term = app.wait_for("call_terminate", "the DTLS failure", |e| e["id"] == call_id);
    assert_eq!(term["status"], "FAILED", "{term}");
    assert_eq!(term["errors"][0]["code"], 138021, "{term}");
    let record = emu.call_record(&call_id);
    let why = record["media"]["failure"].as_str().unwrap_or_default();
    assert!(
        why.contains("does not match the a=fingerprint"),
        "the call's record says why: {record}"
    );
    let m = media(&emu, &call_id);
    assert_eq!(
        (&m["state"], &m["dtls"]),
        (&json!("failed"), &json!("failed")),
        "{m}"
    );
    assert_eq!(m["received"]["packets"], 0, "{m}");
}
