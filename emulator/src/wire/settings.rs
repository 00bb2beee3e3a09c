//! `/{phone-number-id}/settings`: the `calling` object in and out.
//!
//! POST merges the keys it carries into the current settings (`call_hours` replaces as a
//! whole, as documented) after validating everything; nothing changes on any error.
//! Documented spellings are all accepted and kept as sent (cloud-api.md §15):
//! `call_icon_visibility` `DISABLE_ALL` / `DISABLE ALL` / `HIDE_IN_CHAT`, times `"0400"` /
//! `"04:00"`.

use super::json::{invalid, missing, quote_bounded, wrong_type, Obj};
use crate::domain::error::{ApiError, ApiResult, ErrorKind};
use crate::domain::settings::{
    hhmm, CallHours, CallingSettings, DayMinute, Holiday, SipServerSettings, TimeSpelling,
    WeeklyHours, CALL_ICON_VISIBILITY, WEEKDAYS,
};
use crate::domain::sip::SipTransport;
use serde_json::{json, Map, Value};

const ON_OFF: &[&str] = &["ENABLED", "DISABLED"];

/// Sections of Meta's `/settings` other than `calling`: documented by Meta, not emulated.
const OTHER_SECTIONS: &[&str] = &[
    "payload_encryption",
    "user_identity_change",
    "storage_configuration",
];

/// The media addresses GET reports in `calling.ip_addresses`: the address the emulator's
/// SDP offers and answers carry (`c=` line and ICE candidate).
const MEDIA_ADDRESSES: &[&str] = &["127.0.0.1"];

/// Applies a POST body to a copy of `current`.
pub fn apply(
    current: &CallingSettings,
    body: &Map<String, Value>,
    now_ms: u64,
    app_id: &str,
    new_password: &mut dyn FnMut() -> String,
) -> ApiResult<CallingSettings> {
    let root = Obj::new("", body);
    if !root.has("calling") {
        if let Some(other) = OTHER_SECTIONS.iter().find(|k| root.has(k)) {
            return Err(ApiError::new(
                ErrorKind::InvalidParameter,
                format!("{other} settings are not emulated: the emulator keeps only the calling settings (POST {{\"calling\": {{…}}}})."),
            ));
        }
    }
    let calling = Obj::new("calling", root.obj_req("calling")?);
    let mut next = current.clone();
    if let Some(s) = calling.enum_opt("status", ON_OFF, false)? {
        next.enabled = s == "ENABLED";
    }
    if let Some(v) = calling.enum_opt("call_icon_visibility", &CALL_ICON_VISIBILITY, false)? {
        next.call_icon_visibility = v.to_owned();
    }
    if let Some(icons) = calling.obj_opt("call_icons")? {
        let icons = Obj::new("calling.call_icons", icons);
        if let Some(list) = icons.arr_opt("restrict_to_user_countries")? {
            let mut countries = Vec::new();
            for (i, c) in list.iter().enumerate() {
                let path = format!("calling.call_icons.restrict_to_user_countries[{i}]");
                match c {
                    Value::String(s)
                        if s.len() == 2 && s.chars().all(|c| c.is_ascii_uppercase()) =>
                    {
                        countries.push(s.clone())
                    }
                    Value::String(s) => {
                        return Err(invalid(
                            &path,
                            "must be a two-letter ISO country code such as US",
                            quote_bounded(s),
                        ))
                    }
                    other => return Err(wrong_type(&path, "a string", other)),
                }
            }
            next.restrict_to_user_countries = Some(countries);
        }
    }
    if let Some(hours) = calling.obj_opt("call_hours")? {
        next.call_hours = Some(parse_hours(&Obj::new("calling.call_hours", hours), now_ms)?);
    }
    if let Some(s) = calling.enum_opt("callback_permission_status", ON_OFF, false)? {
        next.callback_permission_enabled = s == "ENABLED";
    }
    if let Some(sip) = calling.obj_opt("sip")? {
        let sip = Obj::new("calling.sip", sip);
        if let Some(s) = sip.enum_opt("status", ON_OFF, false)? {
            next.sip.enabled = s == "ENABLED";
        }
        if let Some(servers) = sip.arr_opt("servers")? {
            // One server per app: this app's entry is replaced; an empty list deletes it.
            next.sip.servers.retain(|s| s.app_id != app_id);
            if servers.len() > 1 {
                return Err(invalid(
                    "calling.sip.servers",
                    "holds one server per app",
                    format!("{} servers", servers.len()),
                ));
            }
            for (i, s) in servers.iter().enumerate() {
                let path = format!("calling.sip.servers[{i}]");
                let Value::Object(m) = s else {
                    return Err(wrong_type(&path, "an object", s));
                };
                let o = Obj::new(&path, m);
                let hostname = o.str_req("hostname")?;
                if hostname.is_empty() || hostname.len() > 253 || hostname.contains(['/', ' ', '@'])
                {
                    return Err(invalid(
                        &o.field_path("hostname"),
                        "must be a host name",
                        quote_bounded(hostname),
                    ));
                }
                let port = o.int_opt("port", 1, 65535)?.unwrap_or(5061) as u16;
                let transport = o
                    .enum_opt("transport", &SipTransport::NAMES, true)?
                    .and_then(SipTransport::parse)
                    .unwrap_or_default();
                let mut params = Vec::new();
                if let Some(p) = o.obj_opt("request_uri_user_params")? {
                    for (k, v) in p {
                        let ppath = format!("{path}.request_uri_user_params.{k}");
                        let Value::String(v) = v else {
                            return Err(wrong_type(&ppath, "a string", v));
                        };
                        super::json::check_chars(&ppath, v, 128)?;
                        params.push((k.clone(), v.clone()));
                    }
                }
                let password = current
                    .sip
                    .servers
                    .iter()
                    .find(|s| s.app_id == app_id)
                    .map(|s| s.password.clone())
                    .unwrap_or_else(&mut *new_password);
                next.sip.servers.push(SipServerSettings {
                    hostname: hostname.to_owned(),
                    port,
                    request_uri_user_params: params,
                    transport,
                    app_id: app_id.to_owned(),
                    password,
                });
            }
        }
        if next.sip.enabled && next.sip.servers.is_empty() {
            return Err(invalid(
                "calling.sip.servers",
                "must hold at least one server while sip.status is ENABLED",
                "no server",
            ));
        }
    }
    if let Some(p) = calling.enum_opt("srtp_key_exchange_protocol", &["DTLS", "SDES"], false)? {
        next.srtp_key_exchange_protocol = Some(p.to_owned());
    }
    if let Some(audio) = calling.obj_opt("audio")? {
        let audio = Obj::new("calling.audio", audio);
        if let Some(list) = audio.arr_opt("additional_codecs")? {
            let mut codecs = Vec::new();
            for (i, c) in list.iter().enumerate() {
                let path = format!("calling.audio.additional_codecs[{i}]");
                match c.as_str() {
                    Some(s @ ("PCMA" | "PCMU")) => codecs.push(s.to_owned()),
                    _ => {
                        return Err(invalid(
                            &path,
                            "must be PCMA or PCMU (Opus is always on)",
                            super::json::describe(c),
                        ))
                    }
                }
            }
            next.additional_codecs = Some(codecs);
        }
    }
    Ok(next)
}

/// A time of day, `"0400"` or `"04:00"`, with the spelling it came in.
fn parse_time(path: &str, v: &str) -> ApiResult<(DayMinute, TimeSpelling)> {
    let (digits, spelling) = if v.len() == 5 && v.as_bytes()[2] == b':' {
        (v.replacen(':', "", 1), TimeSpelling::Colon)
    } else {
        (v.to_owned(), TimeSpelling::Hhmm)
    };
    let bad = || {
        invalid(
            path,
            "must be a time HHMM such as \"0400\" or \"04:00\" (00:00 to 23:59)",
            quote_bounded(v),
        )
    };
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let h: u16 = digits[..2].parse().map_err(|_| bad())?;
    let m: u16 = digits[2..].parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok((h * 60 + m, spelling))
}

fn parse_hours(h: &Obj<'_>, now_ms: u64) -> ApiResult<CallHours> {
    let status = h
        .enum_opt("status", ON_OFF, false)?
        .ok_or_else(|| missing("calling.call_hours.status"))?;
    let tz_id = h.str_req("timezone_id")?;
    let tz: chrono_tz::Tz = tz_id.parse().map_err(|_| {
        invalid(
            "calling.call_hours.timezone_id",
            "must be an IANA time zone such as America/Manaus",
            quote_bounded(tz_id),
        )
    })?;
    let mut weekly = Vec::new();
    let list = h
        .arr_opt("weekly_operating_hours")?
        .map(Vec::as_slice)
        .unwrap_or_default();
    if status == "ENABLED" && list.is_empty() {
        return Err(invalid(
            "calling.call_hours.weekly_operating_hours",
            "must not be empty while call_hours.status is ENABLED",
            "an empty list",
        ));
    }
    for (i, e) in list.iter().enumerate() {
        let path = format!("calling.call_hours.weekly_operating_hours[{i}]");
        let Value::Object(m) = e else {
            return Err(wrong_type(&path, "an object", e));
        };
        let o = Obj::new(&path, m);
        let day = o
            .enum_opt("day_of_week", &WEEKDAYS, false)?
            .ok_or_else(|| missing(&o.field_path("day_of_week")))?;
        let weekday = WEEKDAYS.iter().position(|d| *d == day).unwrap_or(0) as u8;
        let (open, open_spelling) =
            parse_time(&o.field_path("open_time"), o.str_req("open_time")?)?;
        let (close, close_spelling) =
            parse_time(&o.field_path("close_time"), o.str_req("close_time")?)?;
        if open >= close {
            return Err(invalid(
                &path,
                "must open before it closes",
                format!("open_time {} and close_time {}", hhmm(open), hhmm(close)),
            ));
        }
        let same_day: Vec<&WeeklyHours> = weekly
            .iter()
            .filter(|w: &&WeeklyHours| w.weekday == weekday)
            .collect();
        if same_day.len() >= 2 {
            return Err(invalid(
                &path,
                &format!("is a third entry for {day}; at most 2 entries per day are allowed"),
                day,
            ));
        }
        if let Some(o2) = same_day.iter().find(|w| open < w.close && w.open < close) {
            return Err(invalid(
                &path,
                "overlaps another entry of the same day",
                format!(
                    "{day} {}-{} and {}-{}",
                    hhmm(open),
                    hhmm(close),
                    hhmm(o2.open),
                    hhmm(o2.close)
                ),
            ));
        }
        weekly.push(WeeklyHours {
            weekday,
            open,
            close,
            spelling: [open_spelling, close_spelling],
        });
    }
    let mut holidays = Vec::new();
    let list = h
        .arr_opt("holiday_schedule")?
        .map(Vec::as_slice)
        .unwrap_or_default();
    if list.len() > 20 {
        return Err(invalid(
            "calling.call_hours.holiday_schedule",
            "holds at most 20 entries",
            format!("{} entries", list.len()),
        ));
    }
    let today = chrono::DateTime::from_timestamp_millis(now_ms as i64)
        .map(|t| t.with_timezone(&tz).date_naive());
    for (i, e) in list.iter().enumerate() {
        let path = format!("calling.call_hours.holiday_schedule[{i}]");
        let Value::Object(m) = e else {
            return Err(wrong_type(&path, "an object", e));
        };
        let o = Obj::new(&path, m);
        let date_s = o.str_req("date")?;
        let date = chrono::NaiveDate::parse_from_str(date_s, "%Y-%m-%d").map_err(|_| {
            invalid(
                &o.field_path("date"),
                "must be a date YYYY-MM-DD",
                quote_bounded(date_s),
            )
        })?;
        if today.is_some_and(|t| date < t) {
            return Err(invalid(
                &o.field_path("date"),
                "must not be in the past",
                date_s,
            ));
        }
        let (start, start_spelling) =
            parse_time(&o.field_path("start_time"), o.str_req("start_time")?)?;
        let (end, end_spelling) = parse_time(&o.field_path("end_time"), o.str_req("end_time")?)?;
        if start >= end {
            return Err(invalid(
                &path,
                "must start before it ends",
                format!("start_time {} and end_time {}", hhmm(start), hhmm(end)),
            ));
        }
        holidays.push(Holiday {
            date,
            start,
            end,
            spelling: [start_spelling, end_spelling],
        });
    }
    Ok(CallHours {
        enabled: status == "ENABLED",
        timezone_id: tz_id.to_owned(),
        weekly,
        holidays,
    })
}

fn on_off(b: bool) -> &'static str {
    if b {
        "ENABLED"
    } else {
        "DISABLED"
    }
}

/// The GET `/settings` body: the `calling` object, and the sections Meta's description
/// requires beside it (`calling.ip_addresses`, `storage_configuration`), with values
/// that hold for an emulator on one machine.
pub fn render(s: &CallingSettings, include_sip_credentials: bool) -> Value {
    let mut calling = Map::new();
    calling.insert("status".into(), on_off(s.enabled).into());
    calling.insert(
        "call_icon_visibility".into(),
        s.call_icon_visibility.clone().into(),
    );
    if let Some(c) = &s.restrict_to_user_countries {
        calling.insert(
            "call_icons".into(),
            json!({ "restrict_to_user_countries": c }),
        );
    }
    calling.insert("ip_addresses".into(), json!({ "default": MEDIA_ADDRESSES }));
    calling.insert(
        "callback_permission_status".into(),
        on_off(s.callback_permission_enabled).into(),
    );
    if let Some(h) = &s.call_hours {
        calling.insert(
            "call_hours".into(),
            json!({
                "status": on_off(h.enabled),
                "timezone_id": h.timezone_id,
                "weekly_operating_hours": h.weekly.iter().map(|w| json!({
                    "day_of_week": WEEKDAYS[w.weekday as usize], "open_time": w.spelling[0].write(w.open), "close_time": w.spelling[1].write(w.close)
                })).collect::<Vec<_>>(),
                "holiday_schedule": h.holidays.iter().map(|d| json!({
                    "date": d.date.format("%Y-%m-%d").to_string(), "start_time": d.spelling[0].write(d.start), "end_time": d.spelling[1].write(d.end)
                })).collect::<Vec<_>>(),
            }),
        );
    }
    let servers: Vec<Value> = s
        .sip
        .servers
        .iter()
        .map(|sv| {
            let mut o = json!({ "app_id": sv.app_id.parse::<u64>().map(Value::from).unwrap_or_else(|_| sv.app_id.clone().into()), "hostname": sv.hostname, "port": sv.port });
            if !sv.request_uri_user_params.is_empty() {
                o["request_uri_user_params"] = sv.request_uri_user_params.iter().map(|(k, v)| (k.clone(), Value::from(v.clone()))).collect::<Map<_, _>>().into();
            }
            if include_sip_credentials {
                o["sip_user_password"] = sv.password.clone().into();
            }
            o
        })
        .collect();
    calling.insert(
        "sip".into(),
        json!({ "status": on_off(s.sip.enabled), "servers": servers }),
    );
    if let Some(p) = &s.srtp_key_exchange_protocol {
        calling.insert("srtp_key_exchange_protocol".into(), p.clone().into());
    }
    if let Some(c) = &s.additional_codecs {
        calling.insert("audio".into(), json!({ "additional_codecs": c }));
    }
    json!({ "calling": calling, "storage_configuration": { "status": "default" } })
}

/// The `calling` object of an `account_settings_update` webhook.
pub fn render_update(s: &CallingSettings) -> Value {
    let mut v = json!({
        "status": on_off(s.enabled),
        "call_icon_visibility": s.call_icon_visibility,
        "callback_permission_status": on_off(s.callback_permission_enabled),
        "sip": { "status": on_off(s.sip.enabled), "servers": s.sip.servers.iter().map(|sv| json!({"hostname": sv.hostname, "port": sv.port})).collect::<Vec<_>>() },
    });
    if let Some(p) = &s.srtp_key_exchange_protocol {
        v["srtp_key_exchange_protocol"] = p.clone().into();
    }
    v
}

/// Whether a change is one Meta announces with `account_settings_update`.
pub fn is_announced_change(a: &CallingSettings, b: &CallingSettings) -> bool {
    a.enabled != b.enabled
        || a.call_icon_visibility != b.call_icon_visibility
        || a.callback_permission_enabled != b.callback_permission_enabled
        || a.sip.enabled != b.sip.enabled
        || a.srtp_key_exchange_protocol != b.srtp_key_exchange_protocol
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(v: Value) -> ApiResult<CallingSettings> {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .timestamp_millis() as u64;
        apply(
            &CallingSettings::default(),
            v.as_object().unwrap(),
            now,
            "1",
            &mut || "pw".to_owned(),
        )
    }

    fn hours(weekly: Value, holidays: Value) -> Value {
        json!({"calling":{"call_hours":{"status":"ENABLED","timezone_id":"America/Manaus","weekly_operating_hours":weekly,"holiday_schedule":holidays}}})
    }

    #[test]
    fn the_documented_example_is_accepted_and_read_back() {
        let s = post(json!({"calling":{"status":"ENABLED","call_icon_visibility":"DEFAULT","callback_permission_status":"ENABLED",
            "call_hours":{"status":"ENABLED","timezone_id":"America/Manaus",
              "weekly_operating_hours":[{"day_of_week":"MONDAY","open_time":"0400","close_time":"1020"},{"day_of_week":"TUESDAY","open_time":"0108","close_time":"1020"}],
              "holiday_schedule":[{"date":"2026-12-25","start_time":"0000","end_time":"2359"}]},
            "sip":{"status":"DISABLED","servers":[{"hostname":"sip.example.com","port":5061,"request_uri_user_params":{"tgrp":"wacall"}}]},
            "srtp_key_exchange_protocol":"DTLS","audio":{"additional_codecs":["PCMA","PCMU"]}}}))
        .unwrap();
        let back = render(&s, true);
        assert_eq!(
            back["calling"]["call_hours"]["weekly_operating_hours"][1]["open_time"],
            "0108"
        );
        assert_eq!(
            back["calling"]["sip"]["servers"][0]["sip_user_password"],
            "pw"
        );
        assert_eq!(back["calling"]["callback_permission_status"], "ENABLED");
        assert!(render(&s, false)["calling"]["sip"]["servers"][0]
            .get("sip_user_password")
            .is_none());
    }

    /// cloud-api.md §7.1 and §15: `DEFAULT`, `DISABLE_ALL`, `DISABLE ALL` (CALL-REF) and
    /// `HIDE_IN_CHAT` (FAQ) are all accepted, and GET and the settings webhook answer with
    /// the spelling that was stored.
    #[test]
    fn every_documented_call_icon_visibility_is_accepted_and_echoed_as_sent() {
        for spelling in ["DEFAULT", "DISABLE_ALL", "DISABLE ALL", "HIDE_IN_CHAT"] {
            let s = post(json!({"calling":{"call_icon_visibility": spelling}}))
                .unwrap_or_else(|e| panic!("{spelling}: {}", e.details));
            assert_eq!(
                render(&s, false)["calling"]["call_icon_visibility"],
                spelling
            );
            assert_eq!(render_update(&s)["call_icon_visibility"], spelling);
        }
        let e = post(json!({"calling":{"call_icon_visibility":"HIDDEN"}})).unwrap_err();
        assert!(e.details.contains("HIDE_IN_CHAT"), "{}", e.details);
    }

    /// cloud-api.md §7.1 and §15: times come as `"0400"` or `"04:00"`; both are stored
    /// and GET answers in the spelling sent, each time on its own.
    #[test]
    fn call_hours_times_are_accepted_in_both_spellings_and_echoed_as_sent() {
        let mon = |o: &str, c: &str| json!({"day_of_week":"MONDAY","open_time":o,"close_time":c});
        let s = post(hours(
            json!([mon("04:00", "10:20"), mon("1100", "12:30")]),
            json!([{"date":"2027-01-01","start_time":"00:00","end_time":"2359"}]),
        ))
        .unwrap();
        let h = &render(&s, false)["calling"]["call_hours"];
        let week = &h["weekly_operating_hours"];
        assert_eq!(
            [
                &week[0]["open_time"],
                &week[0]["close_time"],
                &week[1]["open_time"],
                &week[1]["close_time"]
            ],
            ["04:00", "10:20", "1100", "12:30"]
        );
        assert_eq!(h["holiday_schedule"][0]["start_time"], "00:00");
        assert_eq!(h["holiday_schedule"][0]["end_time"], "2359");
        // Both spellings mean the same minute: 04:00 to 10:20 overlaps 0900 to 1100.
        let e = post(hours(
            json!([mon("04:00", "10:20"), mon("0900", "1100")]),
            json!([]),
        ))
        .unwrap_err();
        assert!(e.details.contains("overlaps"), "{}", e.details);
    }

    /// Meta's description requires `calling.ip_addresses` and `storage_configuration` in
    /// the GET answer.
    #[test]
    fn get_carries_the_sections_the_description_requires() {
        let v = render(&CallingSettings::default(), false);
        assert_eq!(
            v["calling"]["ip_addresses"]["default"],
            json!(["127.0.0.1"])
        );
        assert_eq!(v["storage_configuration"], json!({"status": "default"}));
    }

    #[test]
    fn settings_other_than_calling_are_refused_saying_they_are_not_emulated() {
        for section in [
            "payload_encryption",
            "user_identity_change",
            "storage_configuration",
        ] {
            let e = post(json!({ section: {"status": "enabled"} })).unwrap_err();
            assert_eq!(e.code(), 100);
            assert!(
                e.details
                    .contains(&format!("{section} settings are not emulated")),
                "{}",
                e.details
            );
        }
        assert_eq!(post(json!({})).unwrap_err().code(), 131008);
    }

    #[test]
    fn call_hours_validation_table() {
        let mon = |o: &str, c: &str| json!({"day_of_week":"MONDAY","open_time":o,"close_time":c});
        let rows: Vec<(Value, &str)> = vec![
            (hours(json!([]), json!([])), "must not be empty"),
            (
                hours(json!([mon("1000", "0900")]), json!([])),
                "must open before it closes",
            ),
            (
                hours(json!([mon("0900", "1200"), mon("1100", "1300")]), json!([])),
                "overlaps",
            ),
            (
                hours(
                    json!([
                        mon("0100", "0200"),
                        mon("0300", "0400"),
                        mon("0500", "0600")
                    ]),
                    json!([]),
                ),
                "at most 2 entries",
            ),
            (
                hours(json!([mon("2400", "2500")]), json!([])),
                "must be a time HHMM",
            ),
            (
                hours(json!([mon("4:00", "10:20")]), json!([])),
                "must be a time HHMM",
            ),
            (
                hours(json!([mon("04:60", "10:20")]), json!([])),
                "must be a time HHMM",
            ),
            (
                hours(
                    json!([{"day_of_week":"FUNDAY","open_time":"0100","close_time":"0200"}]),
                    json!([]),
                ),
                "must be one of MONDAY",
            ),
            (
                hours(
                    json!([mon("0100", "0200")]),
                    json!([{"date":"2020-01-01","start_time":"0000","end_time":"2359"}]),
                ),
                "must not be in the past",
            ),
            (
                hours(
                    json!([mon("0100", "0200")]),
                    json!([{"date":"01/01/2027","start_time":"0000","end_time":"2359"}]),
                ),
                "must be a date YYYY-MM-DD",
            ),
            (
                json!({"calling":{"call_hours":{"status":"ENABLED","timezone_id":"Mars/Olympus","weekly_operating_hours":[mon("0100","0200")]}}}),
                "IANA time zone",
            ),
            (
                json!({"calling":{"call_hours":{"timezone_id":"UTC"}}}),
                "call_hours.status is required",
            ),
            (
                json!({"calling":{"status":"ON"}}),
                "must be one of ENABLED, DISABLED",
            ),
            (
                json!({"calling":{"sip":{"status":"ENABLED","servers":[]}}}),
                "at least one server",
            ),
            (
                json!({"calling":{"audio":{"additional_codecs":["G729"]}}}),
                "PCMA or PCMU",
            ),
        ];
        for (body, expected) in rows {
            let e = post(body.clone()).unwrap_err();
            assert!(e.details.contains(expected), "{body}: {}", e.details);
        }
        assert!(post(hours(
            json!([mon("0900", "1200"), mon("1200", "1300")]),
            json!([])
        ))
        .is_ok());
        let twenty_one: Vec<Value> = (0..21).map(|d| json!({"date":format!("2027-01-{:02}", d + 1),"start_time":"0000","end_time":"0100"})).collect();
        assert!(post(hours(
            json!([mon("0100", "0200")]),
            Value::Array(twenty_one)
        ))
        .unwrap_err()
        .details
        .contains("at most 20"));
    }
}
