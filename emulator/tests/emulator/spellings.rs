//! Documented spellings (cloud-api.md §15, §7.1, §2.1): every listed variant is accepted,
//! stored as sent, echoed as sent, and still means what it says.

use super::harness::*;
use serde_json::{json, Value};

async fn post_settings(emu: &Emu, calling: Value) -> (u16, Value) {
    emu.graph(
        "POST",
        &format!("/{PHONE}/settings"),
        Some(json!({ "calling": calling })),
    )
    .await
}

async fn get_calling(emu: &Emu) -> Value {
    let (status, v) = emu.graph("GET", &format!("/{PHONE}/settings"), None).await;
    assert_eq!(status, 200, "{v}");
    v["calling"].clone()
}

/// `DEFAULT` shows the call icon; `DISABLE_ALL`, `DISABLE ALL` (CALL-REF) and
/// `HIDE_IN_CHAT` (FAQ) hide it. GET answers with the spelling sent.
#[tokio::test]
async fn every_call_icon_visibility_spelling_is_echoed_and_the_hidden_ones_hide_the_icon() {
    let emu = Emu::start().await;
    for (spelling, hidden) in [
        ("HIDE_IN_CHAT", true),
        ("DEFAULT", false),
        ("DISABLE ALL", true),
        ("DISABLE_ALL", true),
    ] {
        let (status, v) = post_settings(&emu, json!({ "call_icon_visibility": spelling })).await;
        assert_eq!(status, 200, "{spelling}: {v}");
        assert_eq!(get_calling(&emu).await["call_icon_visibility"], spelling);
        let (status, v) = emu
            .admin("POST", &format!("/users/{USER}/call"), json!({}))
            .await;
        if hidden {
            assert_eq!(
                status, 409,
                "{spelling}: the call icon should be hidden: {v}"
            );
            assert_eq!(v["error"]["error_data"]["reason"], "call_icon_hidden");
        } else {
            assert_eq!(status, 200, "{spelling}: {v}");
            let id = v["call_id"].as_str().unwrap();
            emu.ok("POST", &format!("/calls/{id}/hangup"), Value::Null)
                .await;
        }
    }
}

/// Call-hour times as `"0400"` or `"04:00"`: both stored, each echoed as sent, and both
/// open and close the business at the same minutes.
#[tokio::test]
async fn call_hour_times_in_either_spelling_are_echoed_and_keep_their_meaning() {
    let emu = Emu::start().await;
    let clock = emu.ok("GET", "/clock", Value::Null).await;
    let now = chrono::DateTime::from_timestamp(clock["now"].as_i64().unwrap(), 0).unwrap();
    let today = chrono::Datelike::weekday(&now).num_days_from_monday() as usize;
    const DAYS: [&str; 7] = [
        "MONDAY",
        "TUESDAY",
        "WEDNESDAY",
        "THURSDAY",
        "FRIDAY",
        "SATURDAY",
        "SUNDAY",
    ];
    let next_year = chrono::Datelike::year(&now) + 1;
    // Open all day today ("00:00" to "23:59" in UTC), closed every other day.
    let (status, v) = post_settings(
        &emu,
        json!({"call_hours": {"status": "ENABLED", "timezone_id": "UTC",
            "weekly_operating_hours": [
                {"day_of_week": DAYS[today], "open_time": "00:00", "close_time": "2359"},
                {"day_of_week": DAYS[(today + 1) % 7], "open_time": "0400", "close_time": "10:20"}],
            "holiday_schedule": [{"date": format!("{next_year}-01-01"), "start_time": "09:30", "end_time": "1700"}]}}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let hours = get_calling(&emu).await["call_hours"].clone();
    assert_eq!(
        hours["weekly_operating_hours"],
        json!([
            {"day_of_week": DAYS[today], "open_time": "00:00", "close_time": "2359"},
            {"day_of_week": DAYS[(today + 1) % 7], "open_time": "0400", "close_time": "10:20"}
        ])
    );
    assert_eq!(
        hours["holiday_schedule"],
        json!([{"date": format!("{next_year}-01-01"), "start_time": "09:30", "end_time": "1700"}])
    );
    // "00:00" opened today: the user's call goes through.
    let (status, v) = emu
        .admin("POST", &format!("/users/{USER}/call"), json!({}))
        .await;
    assert_eq!(status, 200, "open all day today: {v}");
}

/// A template button typed `voice_call` or `VOICE_CALL`: both accepted, each echoed as
/// created by GET, and both are the call button a tap uses.
#[tokio::test]
async fn both_template_button_spellings_are_echoed_as_created_and_both_start_calls() {
    let emu = Emu::start().await;
    for (name, spelling) in [("call_lower", "voice_call"), ("call_upper", "VOICE_CALL")] {
        let (status, created) = emu
            .graph(
                "POST",
                &format!("/{WABA}/message_templates"),
                Some(json!({"name": name, "language": "en_US", "category": "MARKETING",
                    "components": [{"type": "BODY", "text": "Call us"},
                                   {"type": "BUTTONS", "buttons": [{"type": spelling, "text": "Call Now", "ttl_minutes": 1440}]}]})),
            )
            .await;
        assert_eq!(status, 200, "{spelling}: {created}");
        let id = created["id"].as_str().unwrap();
        let (_, got) = emu
            .graph("GET", &format!("/{id}?fields=components"), None)
            .await;
        assert_eq!(
            got["components"][1]["buttons"][0]["type"], spelling,
            "{got}"
        );
        let (_, list) = emu
            .graph(
                "GET",
                &format!("/{WABA}/message_templates?name={name}"),
                None,
            )
            .await;
        assert_eq!(
            list["data"][0]["components"][1]["buttons"][0]["type"], spelling,
            "{list}"
        );
        let message = emu
            .send(
                json!({"messaging_product": "whatsapp", "to": USER, "type": "template",
                "template": {"name": name, "language": {"code": "en_US"},
                    "components": [{"type": "button", "sub_type": spelling, "index": "0",
                                    "parameters": [{"type": "payload", "payload": "P"}]}]}}),
            )
            .await;
        let tap = emu
            .ok(
                "POST",
                &format!("/users/{USER}/tap"),
                json!({ "message_id": message }),
            )
            .await;
        let call = tap["call_id"].as_str().expect("the tap starts a call");
        emu.ok("POST", &format!("/calls/{call}/hangup"), Value::Null)
            .await;
    }
}
