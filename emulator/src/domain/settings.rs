//! A business phone number's calling settings (`/settings` → `calling`).

use super::sip::{SipServer, SipTransport};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallingSettings {
    pub enabled: bool,
    pub call_icon_visibility: String,
    pub restrict_to_user_countries: Option<Vec<String>>,
    pub call_hours: Option<CallHours>,
    pub callback_permission_enabled: bool,
    pub sip: SipSettings,
    /// Only reported by GET once explicitly set (as Meta does).
    pub srtp_key_exchange_protocol: Option<String>,
    pub additional_codecs: Option<Vec<String>>,
}

impl Default for CallingSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            call_icon_visibility: "DEFAULT".into(),
            restrict_to_user_countries: None,
            call_hours: None,
            callback_permission_enabled: false,
            sip: SipSettings::default(),
            srtp_key_exchange_protocol: None,
            additional_codecs: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SipSettings {
    pub enabled: bool,
    pub servers: Vec<SipServerSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SipServerSettings {
    pub hostname: String,
    pub port: u16,
    pub request_uri_user_params: Vec<(String, String)>,
    /// Emulator extension: `udp` (default), `tcp` or `tls`; Meta itself always uses TLS.
    pub transport: SipTransport,
    pub app_id: String,
    pub password: String,
}

impl SipServerSettings {
    /// Where a call to this server goes.
    pub fn server(&self) -> SipServer {
        SipServer {
            hostname: self.hostname.clone(),
            port: self.port,
            transport: self.transport,
            request_uri_user_params: self.request_uri_user_params.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallHours {
    pub enabled: bool,
    pub timezone_id: String,
    pub weekly: Vec<WeeklyHours>,
    pub holidays: Vec<Holiday>,
}

/// Minutes after local midnight, e.g. `"0400"` → 240.
pub type DayMinute = u16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklyHours {
    /// 0 = Monday … 6 = Sunday.
    pub weekday: u8,
    pub open: DayMinute,
    pub close: DayMinute,
    /// How each time was written, so GET echoes it (see [`TimeSpelling`]).
    #[serde(default)]
    pub spelling: [TimeSpelling; 2],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holiday {
    pub date: chrono::NaiveDate,
    pub start: DayMinute,
    pub end: DayMinute,
    /// How `start_time` and `end_time` were written.
    #[serde(default)]
    pub spelling: [TimeSpelling; 2],
}

/// How a time of day was written. The settings page and GET responses use `"0400"`; one
/// CALL-REF snippet uses `"04:00"` (cloud-api.md §7.1, §15). Both are accepted, and GET
/// answers in the spelling that was sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSpelling {
    /// `"0400"`.
    #[default]
    Hhmm,
    /// `"04:00"`.
    Colon,
}

impl TimeSpelling {
    pub fn write(self, m: DayMinute) -> String {
        match self {
            TimeSpelling::Hhmm => hhmm(m),
            TimeSpelling::Colon => format!("{:02}:{:02}", m / 60, m % 60),
        }
    }
}

/// The `call_icon_visibility` values and their spellings: `DEFAULT` shows the call icon;
/// `DISABLE_ALL` (CALL-REF writes `DISABLE ALL`) and `HIDE_IN_CHAT` (FAQ) hide it
/// (cloud-api.md §7.1, §15). The value is kept as sent, so anything but `DEFAULT` hides.
pub const CALL_ICON_VISIBILITY: [&str; 4] =
    ["DEFAULT", "DISABLE_ALL", "DISABLE ALL", "HIDE_IN_CHAT"];

pub const WEEKDAYS: [&str; 7] = [
    "MONDAY",
    "TUESDAY",
    "WEDNESDAY",
    "THURSDAY",
    "FRIDAY",
    "SATURDAY",
    "SUNDAY",
];

pub fn hhmm(m: DayMinute) -> String {
    format!("{:02}{:02}", m / 60, m % 60)
}

impl CallHours {
    /// Whether users can reach the business at `now_ms` (Unix milliseconds), evaluated in
    /// the configured timezone: holidays close the listed span, weekly hours open theirs.
    pub fn is_open(&self, now_ms: u64) -> bool {
        if !self.enabled {
            return true;
        }
        let Ok(tz) = self.timezone_id.parse::<chrono_tz::Tz>() else {
            return true;
        };
        let Some(utc) = chrono::DateTime::from_timestamp_millis(now_ms as i64) else {
            return true;
        };
        let local = utc.with_timezone(&tz);
        use chrono::{Datelike, Timelike};
        let minute = (local.hour() * 60 + local.minute()) as DayMinute;
        let date = local.date_naive();
        if self
            .holidays
            .iter()
            .any(|h| h.date == date && h.start <= minute && minute <= h.end)
        {
            return false;
        }
        let weekday = local.weekday().num_days_from_monday() as u8;
        self.weekly
            .iter()
            .any(|w| w.weekday == weekday && w.open <= minute && minute < w.close)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours() -> CallHours {
        CallHours {
            enabled: true,
            timezone_id: "America/Manaus".into(), // UTC-4, no DST
            weekly: vec![WeeklyHours {
                weekday: 0,
                open: 4 * 60,
                close: 10 * 60 + 20,
                spelling: Default::default(),
            }],
            holidays: vec![Holiday {
                date: chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
                start: 0,
                end: 23 * 60 + 59,
                spelling: Default::default(),
            }],
        }
    }

    fn at(s: &str) -> u64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis() as u64
    }

    #[test]
    fn weekly_hours_are_read_in_the_configured_timezone() {
        // Monday 2026-11-23 09:00 in Manaus = 13:00 UTC.
        assert!(hours().is_open(at("2026-11-23T13:00:00Z")));
        // Monday 03:59 local is before opening.
        assert!(!hours().is_open(at("2026-11-23T07:59:00Z")));
        // 10:20 local is closing time: closed.
        assert!(!hours().is_open(at("2026-11-23T14:20:00Z")));
        // Tuesday has no hours.
        assert!(!hours().is_open(at("2026-11-24T13:00:00Z")));
    }

    #[test]
    fn holidays_close_an_otherwise_open_day() {
        assert!(!hours().is_open(at("2026-11-30T13:00:00Z")));
    }

    #[test]
    fn times_are_written_back_as_they_were_spelled() {
        assert_eq!(TimeSpelling::Hhmm.write(4 * 60), "0400");
        assert_eq!(TimeSpelling::Colon.write(4 * 60), "04:00");
        assert_eq!(TimeSpelling::Colon.write(23 * 60 + 59), "23:59");
    }

    #[test]
    fn disabled_hours_never_close() {
        let mut h = hours();
        h.enabled = false;
        assert!(h.is_open(at("2026-11-24T13:00:00Z")));
    }
}
