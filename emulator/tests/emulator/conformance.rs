//! Conformance: the emulator is driven through every event that has a fixture in
//! `fixtures/`, and each delivered body is compared with its fixture by
//! `wa_emulator::fixture::shape_diff` (same keys, JSON types and enumerations; ids,
//! numbers, timestamps and free text normalised). Every difference of every fixture is
//! reported at once, and the set of fixtures covered must be exactly the set of files.
//! Each event is driven through the number its fixture names (business-initiated events
//! through the second number, +44, since +1 numbers cannot call users), and the delivery's
//! business number must be the fixture's exactly.

use super::harness::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use wa_emulator::engine::ClockMode;
use wa_emulator::fixture::{load_fixture_dir, shape_diff};
use wa_emulator::server::ServeOptions;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn fixtures() -> BTreeMap<String, Value> {
    load_fixture_dir(&fixtures_dir())
        .expect("the fixtures folder loads")
        .into_iter()
        .collect()
}

/// The change `value` of a delivered body.
fn value_of(body: &Value) -> &Value {
    &body["entry"][0]["changes"][0]["value"]
}

/// `value.calls[0].id`, `value.statuses[0].id` or `value.messages[0].id`.
fn item_id(body: &Value) -> &str {
    let v = value_of(body);
    ["calls", "statuses", "messages"]
        .iter()
        .find_map(|k| v[k][0]["id"].as_str())
        .unwrap_or("")
}

/// The bodies the emulator produced for each fixture name, or why it produced none.
#[derive(Default)]
struct Produced(BTreeMap<String, Result<Value, String>>);

impl Produced {
    /// Takes the first delivery of `field`/`event` whose body satisfies `pick` (chosen by
    /// ids the drive knows, never by the shape under test) as the body for `name`.
    async fn take(
        &mut self,
        emu: &Emu,
        name: &str,
        field: &str,
        event: &str,
        pick: impl Fn(&Value) -> bool,
    ) {
        let deliveries = emu.webhooks().await;
        let found = deliveries
            .iter()
            .filter(|d| d["field"] == field && d["event"] == event)
            .map(|d| d["body"].clone())
            .find(|b| pick(b));
        let got = found.ok_or_else(|| {
            let seen: Vec<String> = deliveries
                .iter()
                .map(|d| {
                    format!(
                        "{}/{}",
                        d["field"].as_str().unwrap_or("?"),
                        d["event"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            format!("no {field}/{event} delivery matched; deliveries: {seen:?}")
        });
        assert!(
            self.0.insert(name.to_owned(), got).is_none(),
            "{name} taken twice"
        );
    }

    /// Like [`Produced::take`] with an id match.
    async fn take_id(&mut self, emu: &Emu, name: &str, field: &str, event: &str, id: &str) {
        self.take(emu, name, field, event, |b| item_id(b) == id)
            .await;
    }
}

async fn calls(emu: &Emu, action: Value) -> Value {
    calls_on(emu, PHONE, action).await
}

async fn calls_on(emu: &Emu, phone: &str, action: Value) -> Value {
    let (s, v) = emu.calls_on(phone, action).await;
    assert_eq!(s, 200, "/{phone}/calls: {v}");
    v
}

async fn create_template(emu: &Emu, body: Value) -> String {
    let (s, v) = emu
        .graph("POST", &format!("/{WABA}/message_templates"), Some(body))
        .await;
    assert_eq!(s, 200, "template: {v}");
    v["id"].as_str().unwrap().to_owned()
}

/// A permission request from the second number to `wa` (a US user, so written with `+`).
async fn ask_permission(emu: &Emu, wa: &str) -> String {
    emu.send_from(PHONE2, permission_request(&plus(wa))).await
}

fn template_id(body: &Value) -> String {
    value_of(body)["message_template_id"].to_string()
}

/// A user tap on a button, a deep link, the call icon, a failed call; message statuses;
/// an inbound text; templates; a business-initiated call answered and one declined.
async fn main_story(out: &mut Produced) {
    let emu = Emu::start().await;
    emu.user(USER, "android", "2.25.30", "Test Name").await;

    let mid = emu
        .send(voice_call(
            USER,
            json!({"display_text":"Call Now","ttl_minutes":100,"payload":"order-4471"}),
        ))
        .await;
    let v = emu
        .ok(
            "POST",
            &format!("/users/{USER}/tap"),
            json!({ "message_id": mid }),
        )
        .await;
    let button = v["call_id"].as_str().unwrap().to_owned();
    calls(&emu, json!({"messaging_product":"whatsapp","call_id":button,"action":"pre_accept","session":{"sdp_type":"answer","sdp":SDP_ANSWER}})).await;
    calls(&emu, json!({"messaging_product":"whatsapp","call_id":button,"action":"accept","session":{"sdp_type":"answer","sdp":SDP_ANSWER}})).await;
    emu.advance(120.0).await;
    emu.ok("POST", &format!("/calls/{button}/hangup"), Value::Null)
        .await;
    for (name, event) in [
        ("messages/status_sent", "status_sent"),
        ("messages/status_delivered", "status_delivered"),
        ("messages/status_read", "status_read"),
    ] {
        out.take_id(&emu, name, "messages", event, &mid).await;
    }
    out.take_id(
        &emu,
        "calls/connect_user_initiated_button",
        "calls",
        "connect",
        &button,
    )
    .await;
    out.take_id(
        &emu,
        "calls/terminate_completed",
        "calls",
        "terminate",
        &button,
    )
    .await;

    let v = emu
        .ok(
            "POST",
            &format!("/users/{USER}/open-link"),
            json!({"url":"https://wa.me/call/15550783881?biz_payload=campaign-spring-26"}),
        )
        .await;
    let link = v["call_id"].as_str().unwrap().to_owned();
    emu.ok("POST", &format!("/calls/{link}/hangup"), Value::Null)
        .await;
    out.take_id(
        &emu,
        "calls/connect_user_initiated_deeplink",
        "calls",
        "connect",
        &link,
    )
    .await;

    let v = emu
        .ok("POST", &format!("/users/{USER}/call"), json!({}))
        .await;
    let native = v["call_id"].as_str().unwrap().to_owned();
    emu.ok(
        "POST",
        &format!("/calls/{native}/fail"),
        json!({"code": 138019}),
    )
    .await;
    out.take_id(
        &emu,
        "calls/connect_user_initiated_native",
        "calls",
        "connect",
        &native,
    )
    .await;
    out.take_id(
        &emu,
        "calls/terminate_failed",
        "calls",
        "terminate",
        &native,
    )
    .await;

    let v = emu
        .ok(
            "POST",
            &format!("/users/{USER}/messages"),
            json!({"text":"Olá! Can you call me about order ON-12853? 📞"}),
        )
        .await;
    let text = v["message_id"].as_str().unwrap().to_owned();
    out.take_id(&emu, "messages/text", "messages", "text", &text)
        .await;

    // Templates: approved at creation, rejected by review, deleted.
    let utility = create_template(
        &emu,
        json!({"name":"order_confirmation","language":"en_US","category":"UTILITY",
        "components":[{"type":"BODY","text":"Your order {{1}} is confirmed."}]}),
    )
    .await;
    let rejected = create_template(&emu, json!({"name":"voice_call_tpl","language":"en_US","category":"MARKETING",
        "components":[{"type":"BODY","text":"Need help? Tap to call us."},
                      {"type":"BUTTONS","buttons":[{"type":"voice_call","text":"Call us","ttl_minutes":1440}]}]})).await;
    emu.ok(
        "POST",
        &format!("/templates/{rejected}/status"),
        json!({"status":"REJECTED","reason":"PROMOTIONAL"}),
    )
    .await;
    create_template(
        &emu,
        json!({"name":"spring_offer","language":"en_US","category":"MARKETING",
        "components":[{"type":"BODY","text":"Spring offer: call us today."}]}),
    )
    .await;
    let tpl_mid = emu
        .send(
            json!({"messaging_product":"whatsapp","to":USER,"type":"template",
                     "template":{"name":"spring_offer","language":{"code":"en_US"}}}),
        )
        .await;
    let (s, v) = emu
        .graph(
            "DELETE",
            &format!("/{WABA}/message_templates?name=order_confirmation"),
            None,
        )
        .await;
    assert_eq!(s, 200, "delete: {v}");
    out.take(
        &emu,
        "message_template_status_update/approved",
        "message_template_status_update",
        "approved",
        |b| template_id(b) == utility,
    )
    .await;
    out.take(
        &emu,
        "message_template_status_update/rejected",
        "message_template_status_update",
        "rejected",
        |b| template_id(b) == rejected,
    )
    .await;
    out.take(
        &emu,
        "message_template_status_update/pending_deletion",
        "message_template_status_update",
        "pending_deletion",
        |b| template_id(b) == utility,
    )
    .await;
    out.take_id(
        &emu,
        "messages/status_sent_template_marketing",
        "messages",
        "status_sent",
        &tpl_mid,
    )
    .await;

    // From the second number (+1 numbers cannot call users): a temporary permission,
    // then a business-initiated call answered and one declined.
    let request = ask_permission(&emu, USER).await;
    let reply = emu
        .permission_reply(USER, json!({"response":"accept","message_id":request}))
        .await;
    out.take_id(
        &emu,
        "messages/call_permission_reply_accept_temporary",
        "messages",
        "call_permission_reply",
        &reply,
    )
    .await;
    let mut dial = connect(&plus(USER));
    dial["biz_opaque_callback_data"] = "biz-call-1".into();
    let v = calls_on(&emu, PHONE2, dial.clone()).await;
    let biz = v["calls"][0]["id"].as_str().unwrap().to_owned();
    emu.ok("POST", &format!("/calls/{biz}/answer"), Value::Null)
        .await;
    emu.advance(60.0).await;
    calls_on(
        &emu,
        PHONE2,
        json!({"messaging_product":"whatsapp","call_id":biz,"action":"terminate"}),
    )
    .await;
    dial["biz_opaque_callback_data"] = "biz-call-2".into();
    let v = calls_on(&emu, PHONE2, dial).await;
    let declined = v["calls"][0]["id"].as_str().unwrap().to_owned();
    emu.ok("POST", &format!("/calls/{declined}/decline"), Value::Null)
        .await;
    for (name, event, id) in [
        ("calls/status_ringing", "status_ringing", &biz),
        ("calls/connect_business_initiated", "connect", &biz),
        ("calls/status_accepted", "status_accepted", &biz),
        (
            "calls/terminate_completed_business_initiated",
            "terminate",
            &biz,
        ),
        ("calls/status_rejected", "status_rejected", &declined),
    ] {
        out.take_id(&emu, name, "calls", event, id).await;
    }
}

/// Every other permission reply, the two failed statuses, and a settings update.
async fn permissions_and_failures(out: &mut Produced) {
    let emu = Emu::start().await;
    let (permanent, profile, rejecting, caller) =
        ("16315550001", "16315550002", "16315550003", "16315550004");
    for wa in [permanent, profile, rejecting, caller] {
        emu.user(wa, "android", "2.25.30", "Test Name").await;
    }

    // Permissions exist only where business-initiated calls do: the second number.
    let request = ask_permission(&emu, permanent).await;
    let reply = emu
        .permission_reply(
            permanent,
            json!({"response":"accept","permanent":true,"message_id":request}),
        )
        .await;
    out.take_id(
        &emu,
        "messages/call_permission_reply_accept_permanent",
        "messages",
        "call_permission_reply",
        &reply,
    )
    .await;

    let reply = emu
        .permission_reply(
            profile,
            json!({"response":"accept","permanent":true,"phone_number_id":PHONE2}),
        )
        .await;
    out.take_id(
        &emu,
        "messages/call_permission_reply_accept_permanent_from_profile",
        "messages",
        "call_permission_reply",
        &reply,
    )
    .await;

    let request = ask_permission(&emu, rejecting).await;
    let reply = emu
        .permission_reply(rejecting, json!({"response":"reject","message_id":request}))
        .await;
    out.take_id(
        &emu,
        "messages/call_permission_reply_reject",
        "messages",
        "call_permission_reply",
        &reply,
    )
    .await;

    // The user calls a number that grants callback permission automatically.
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
            &format!("/users/{caller}/call"),
            json!({ "phone_number_id": PHONE2 }),
        )
        .await;
    let call = v["call_id"].as_str().unwrap().to_owned();
    out.take(
        &emu,
        "messages/call_permission_reply_accept_automatic",
        "messages",
        "call_permission_reply",
        |b| value_of(b)["messages"][0]["context"]["id"] == call.as_str(),
    )
    .await;

    // Four unanswered business calls revoke the permanent permission of `profile`.
    for i in 0..4 {
        let v = calls_on(&emu, PHONE2, connect(&plus(profile))).await;
        let id = v["calls"][0]["id"].as_str().unwrap().to_owned();
        if i % 2 == 0 {
            emu.ok("POST", &format!("/calls/{id}/decline"), Value::Null)
                .await;
        } else {
            emu.advance(61.0).await;
        }
    }
    let from_profile_user = |b: &Value| value_of(b)["messages"][0]["from"] == profile;
    let replies: Vec<Value> = emu
        .webhooks()
        .await
        .into_iter()
        .filter(|d| d["event"] == "call_permission_reply" && from_profile_user(&d["body"]))
        .map(|d| d["body"].clone())
        .collect();
    assert_eq!(replies.len(), 2, "the profile reply and the revocation");
    let revocation = item_id(&replies[1]).to_owned();
    out.take_id(
        &emu,
        "messages/call_permission_reply_reject_automatic",
        "messages",
        "call_permission_reply",
        &revocation,
    )
    .await;

    // A client too old for the message, and a user outside the service window.
    emu.user("10000000001", "android", "2.23.0", "Test Name")
        .await;
    let old = emu.send(voice_call("10000000001", json!({}))).await;
    out.take_id(
        &emu,
        "messages/status_failed_131026",
        "messages",
        "status_failed",
        &old,
    )
    .await;
    emu.ok(
        "POST",
        "/users",
        json!({"wa_id":"16315550006","name":"Test Name","window_open":false}),
    )
    .await;
    let closed = emu.send(voice_call("16315550006", json!({}))).await;
    out.take_id(
        &emu,
        "messages/status_failed_131047",
        "messages",
        "status_failed",
        &closed,
    )
    .await;

    let (s, v) = emu
        .graph(
            "POST",
            &format!("/{PHONE}/settings"),
            Some(json!({"calling":{"status":"ENABLED","call_icon_visibility":"DEFAULT",
                "callback_permission_status":"ENABLED",
                "sip":{"status":"ENABLED","servers":[{"hostname":"sip.example.com","port":5061}]}}})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let updates: Vec<Value> = emu
        .values("account_settings_update", "phone_number_settings")
        .await;
    assert!(!updates.is_empty());
    out.take(
        &emu,
        "account_settings_update/phone_number_settings",
        "account_settings_update",
        "phone_number_settings",
        |b| value_of(b)["phone_number_settings"]["calling"]["sip"]["status"] == "ENABLED",
    )
    .await;
}

/// The business a body speaks for: the WABA (`entry[0].id`) and the number (`metadata`,
/// or the settings update's `phone_number_id`). `shape_diff` normalises numbers away; this
/// is compared exactly, so an event driven through the wrong number is reported.
fn business_number(body: &Value) -> Value {
    let v = value_of(body);
    json!({
        "waba": body["entry"][0]["id"],
        "metadata": v["metadata"],
        "phone_number_settings.phone_number_id": v["phone_number_settings"]["phone_number_id"],
    })
}

fn number_diff(expected: &Value, actual: &Value) -> Option<String> {
    let (e, a) = (business_number(expected), business_number(actual));
    (e != a).then(|| format!("business number: the fixture's is {e}, the delivery's {a}"))
}

/// A user with a username, a parent BSUID and a hidden number (cloud-api §13): their text,
/// their call and a BSUID send to them, none of which shows the number.
async fn username_user(out: &mut Produced) {
    let emu = Emu::start().await;
    let user = emu
        .ok(
            "POST",
            "/users",
            json!({"wa_id": USER, "name": "Test Name", "username": "test.name",
                   "parent_user_id": "US.ENT.11815799212886844830"}),
        )
        .await;
    let v = emu
        .ok(
            "POST",
            &format!("/users/{USER}/messages"),
            json!({"text": "Hi! I found you by your username. Can you call me?"}),
        )
        .await;
    let text = v["message_id"].as_str().unwrap().to_owned();
    out.take_id(
        &emu,
        "messages/text_username_hidden_number",
        "messages",
        "text",
        &text,
    )
    .await;
    let v = emu
        .ok("POST", &format!("/users/{USER}/call"), json!({}))
        .await;
    let call = v["call_id"].as_str().unwrap().to_owned();
    out.take_id(
        &emu,
        "calls/connect_user_initiated_username_hidden_number",
        "calls",
        "connect",
        &call,
    )
    .await;
    emu.ok("POST", &format!("/calls/{call}/hangup"), Value::Null)
        .await;
    // A send to the user's BSUID shows no number either.
    let (s, v) = emu
        .graph(
            "POST",
            &format!("/{PHONE}/messages"),
            Some(
                json!({"messaging_product":"whatsapp","recipient":user["user_id"],
                        "type":"text","text":{"body":"Sure, calling you now."}}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let mid = v["messages"][0]["id"].as_str().unwrap().to_owned();
    out.take_id(
        &emu,
        "messages/status_delivered_username_hidden_number",
        "messages",
        "status_delivered",
        &mid,
    )
    .await;
}

/// One line per difference, prefixed by the fixture's name.
fn compare(fixtures: &BTreeMap<String, Value>, produced: &Produced) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, expected) in fixtures {
        match produced.0.get(name) {
            None => problems.push(format!("{name}: not driven by the conformance test")),
            Some(Err(why)) => problems.push(format!("{name}: {why}")),
            Some(Ok(actual)) => problems.extend(
                number_diff(expected, actual)
                    .into_iter()
                    .chain(shape_diff(expected, actual))
                    .map(|d| format!("{name}: {d}")),
            ),
        }
    }
    problems
}

#[tokio::test]
async fn every_fixture_matches_what_the_emulator_delivers_for_that_event() {
    let fixtures = fixtures();
    let mut produced = Produced::default();
    main_story(&mut produced).await;
    permissions_and_failures(&mut produced).await;
    username_user(&mut produced).await;
    let files: BTreeSet<&String> = fixtures.keys().collect();
    let covered: BTreeSet<&String> = produced.0.keys().collect();
    assert_eq!(
        covered, files,
        "the events driven must be exactly the fixture files"
    );
    let problems = compare(&fixtures, &produced);
    assert!(
        problems.is_empty(),
        "{} difference(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The comparison can fail: a fixture against the wrong event's delivery is reported.
#[tokio::test]
async fn a_delivery_of_another_variant_does_not_pass_as_the_fixture() {
    let fixtures = fixtures();
    let mut produced = Produced::default();
    main_story(&mut produced).await;
    let deeplink = produced.0["calls/connect_user_initiated_deeplink"]
        .clone()
        .unwrap();
    let diff = shape_diff(&fixtures["calls/connect_user_initiated_button"], &deeplink);
    assert!(
        diff.iter()
            .any(|d| d.contains("cta_payload: missing in actual")),
        "{diff:?}"
    );
    // A business-initiated connect that came from the first number has the fixture's
    // shape (numbers are normalised) but not its business number.
    let fixture = &fixtures["calls/connect_business_initiated"];
    let mut from_first = produced.0["calls/connect_business_initiated"]
        .clone()
        .unwrap();
    assert_eq!(number_diff(fixture, &from_first), None);
    from_first["entry"][0]["changes"][0]["value"]["metadata"] =
        json!({"display_phone_number": DISPLAY, "phone_number_id": PHONE});
    assert!(shape_diff(fixture, &from_first).is_empty());
    let diff = number_diff(fixture, &from_first).expect("reported");
    assert!(diff.contains(PHONE) && diff.contains(PHONE2), "{diff}");
}

// ---- serve --record DIR ------------------------------------------------------------

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("wa-conformance-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `DIR/<field>/<event>_<n>.json` files (the fixture layout), as `(field, event, body)`;
/// none while `DIR` does not exist yet.
fn recorded(dir: &Path) -> Vec<(String, String, Value)> {
    if !dir.exists() {
        return Vec::new();
    }
    let files = load_fixture_dir(dir).unwrap_or_else(|e| panic!("the recorded files: {e}"));
    let mut out: Vec<_> = files
        .into_iter()
        .map(|(name, body)| {
            let (field, stem) = name.split_once('/').expect("<field>/<stem>");
            let (event, n) = stem.rsplit_once('_').expect("<event>_<n>.json");
            assert!(n.parse::<u64>().is_ok(), "{stem}: <n> is a number");
            (field.to_owned(), event.to_owned(), body)
        })
        .collect();
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

#[tokio::test]
async fn serve_record_writes_each_delivered_webhook_in_the_fixture_layout() {
    let dir = TempDir::new("record");
    let mut opts = ServeOptions::for_tests(ClockMode::Virtual, 11);
    opts.record = Some(dir.0.clone());
    let emu = Emu::start_with(opts).await;
    let rx = Receiver::default_tenant().await;
    emu.set_webhook(&rx).await;
    emu.user(USER, "ios", "2.25.30", "Test Name").await;
    let mid = emu
        .send(voice_call(USER, json!({"payload":"order-4471"})))
        .await;
    let v = emu
        .ok(
            "POST",
            &format!("/users/{USER}/tap"),
            json!({ "message_id": mid }),
        )
        .await;
    let call = v["call_id"].as_str().unwrap().to_owned();
    calls(&emu, json!({"messaging_product":"whatsapp","call_id":call,"action":"accept","session":{"sdp_type":"answer","sdp":SDP_ANSWER}})).await;
    emu.advance(30.0).await;
    emu.ok("POST", &format!("/calls/{call}/hangup"), Value::Null)
        .await;
    let expected_files = [
        ("calls", "connect", "calls/connect_user_initiated_button"),
        ("calls", "terminate", "calls/terminate_completed"),
        ("messages", "status_delivered", "messages/status_delivered"),
        ("messages", "status_read", "messages/status_read"),
        ("messages", "status_sent", "messages/status_sent"),
    ];
    let got = rx.wait_for(expected_files.len()).await;
    assert_eq!(got.len(), expected_files.len());
    // The file is written after the receiver answered: wait for the last one (bounded).
    let mut files = recorded(&dir.0);
    for _ in 0..200 {
        if files.len() >= expected_files.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        files = recorded(&dir.0);
    }
    let names: Vec<(&str, &str)> = files
        .iter()
        .map(|(f, e, _)| (f.as_str(), e.as_str()))
        .collect();
    let wanted: Vec<(&str, &str)> = expected_files.iter().map(|(f, e, _)| (*f, *e)).collect();
    assert_eq!(names, wanted);
    let fixtures = fixtures();
    for ((field, event, body), (_, _, fixture)) in files.iter().zip(expected_files) {
        let diff = shape_diff(&fixtures[fixture], body);
        assert!(
            diff.is_empty(),
            "{field}/{event} recorded vs {fixture}: {diff:#?}"
        );
    }
    // What was recorded is what the receiver got.
    let received: BTreeSet<String> = got.iter().map(|r| r.json().to_string()).collect();
    for (field, event, body) in &files {
        assert!(
            received.contains(&body.to_string()),
            "{field}/{event} was recorded but never received"
        );
    }
}
