//! Simulated WhatsApp users: platform, client version and what each can do.
//!
//! The client-version table of PRODUCT §3 lives here, in [`Capabilities`], so every
//! surface (webhooks, SIP, taps) asks the same question the same way.

use super::ids::{bsuid_for, WaId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Android,
    Ios,
    /// WhatsApp Business on Android.
    Smba,
    /// WhatsApp Business on iOS.
    Smbi,
    Desktop,
    Web,
}

impl Platform {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "android" => Platform::Android,
            "ios" | "iphone" => Platform::Ios,
            "smba" => Platform::Smba,
            "smbi" => Platform::Smbi,
            "desktop" => Platform::Desktop,
            "web" => Platform::Web,
            _ => return None,
        })
    }

    pub const NAMES: &'static str = "android, ios, smba, smbi, desktop, web";

    pub fn name(self) -> &'static str {
        match self {
            Platform::Android => "android",
            Platform::Ios => "ios",
            Platform::Smba => "smba",
            Platform::Smbi => "smbi",
            Platform::Desktop => "desktop",
            Platform::Web => "web",
        }
    }

    pub fn is_phone(self) -> bool {
        !matches!(self, Platform::Desktop | Platform::Web)
    }

    fn is_ios_family(self) -> bool {
        matches!(self, Platform::Ios | Platform::Smbi)
    }
}

/// A dotted client version such as `2.25.27` or `2.24.10.8`, compared numerically
/// component by component (missing components count as 0).
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientVersion {
    // Inline, not a `Vec`: every user carries one, and a fresh user is rebuilt on each
    // send to them (engine/recipients.rs), so a heap copy per send added up.
    parts: [u32; MAX_PARTS],
    len: u8,
}

/// The most components a version may have.
const MAX_PARTS: usize = 5;

impl std::fmt::Debug for ClientVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // As the `Vec` it was printed: `ClientVersion([2, 26, 1])`.
        f.debug_tuple("ClientVersion").field(&self.parts()).finish()
    }
}

// Equality follows the numeric order: 2.24 == 2.24.0.
impl PartialEq for ClientVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for ClientVersion {}

impl ClientVersion {
    pub fn parse(s: &str) -> Option<Self> {
        let parts: Option<Vec<u32>> = s.trim().split('.').map(|p| p.parse().ok()).collect();
        let parts = parts?;
        if parts.is_empty() || parts.len() > MAX_PARTS {
            return None;
        }
        let mut v = Self {
            parts: [0; MAX_PARTS],
            len: parts.len() as u8,
        };
        v.parts[..parts.len()].copy_from_slice(&parts);
        Some(v)
    }

    fn parts(&self) -> &[u32] {
        &self.parts[..usize::from(self.len)]
    }

    fn component(&self, i: usize) -> u32 {
        self.parts().get(i).copied().unwrap_or(0)
    }
}

impl PartialOrd for ClientVersion {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ClientVersion {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let n = self.parts().len().max(other.parts().len());
        (0..n)
            .map(|i| self.component(i).cmp(&other.component(i)))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    }
}

impl std::fmt::Display for ClientVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.parts().iter().map(|p| p.to_string()).collect();
        f.write_str(&parts.join("."))
    }
}

impl TryFrom<String> for ClientVersion {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        ClientVersion::parse(&s).ok_or_else(|| {
            format!("not a client version: {s:?} (expected digits and dots, e.g. 2.25.27)")
        })
    }
}

impl From<ClientVersion> for String {
    fn from(v: ClientVersion) -> String {
        v.to_string()
    }
}

/// Version thresholds of the client-version table (configurable for iOS, whose minimum
/// Meta does not publish).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRules {
    pub voice_call_button_android: ClientVersion,
    pub voice_call_button_ios: ClientVersion,
    pub permission_requests: ClientVersion,
    pub payload_echo: ClientVersion,
    /// The version given to users nobody declared.
    pub latest: ClientVersion,
}

impl Default for VersionRules {
    fn default() -> Self {
        let v = |s| ClientVersion::parse(s).expect("static version");
        Self {
            voice_call_button_android: v("2.24.1"),
            voice_call_button_ios: v("2.24.1"),
            permission_requests: v("2.24.14"),
            payload_echo: v("2.25.27"),
            latest: v("2.26.1"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub wa_id: WaId,
    /// Business-scoped user id, `contacts[].user_id` in webhooks.
    pub user_id: String,
    pub name: String,
    pub platform: Platform,
    pub version: ClientVersion,
    /// The WhatsApp username the user adopted (cloud-api §13): `profile.username` in
    /// webhooks and the username header of SIP INVITEs. Never the profile `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Parent BSUID (`US.ENT.…`, §4.6), for businesses whose linked portfolios share one:
    /// `parent_user_id` and the `*_parent_user_id` fields of webhooks, the parent-id SIP
    /// header, and a `recipient` that reaches this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_user_id: Option<String>,
    /// Whether a user with a username keeps their phone number from businesses (§13);
    /// unset means yes, as it does for every user who adopts one. Without a username
    /// the number is always visible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hide_phone_number: Option<bool>,
}

/// A change to who a user is beyond their number (`POST /__emulator/users`): each field
/// `None` leaves it as is; `Some(None)` clears a username or parent BSUID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityChange {
    pub username: Option<Option<String>>,
    pub parent_user_id: Option<Option<String>>,
    pub hide_phone_number: Option<bool>,
}

/// How long an exchange over the phone number keeps it visible to the business (§13:
/// "messaged or called within 30 days").
pub const PHONE_VISIBLE_MS: u64 = 30 * 24 * 3600 * 1000;

/// A username as the emulator accepts it: 3 to 35 ASCII letters, digits, `.` and `_`,
/// with at least one letter, not starting or ending with `.`.
pub fn check_username(s: &str) -> Result<(), String> {
    let ok_chars = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
    if !(3..=35).contains(&s.chars().count()) {
        return Err("must be 3 to 35 characters long".into());
    }
    if !ok_chars {
        return Err("may contain only ASCII letters, digits, . and _".into());
    }
    if !s.chars().any(|c| c.is_ascii_alphabetic()) {
        return Err("must contain a letter".into());
    }
    if s.starts_with('.') || s.ends_with('.') {
        return Err("must not start or end with .".into());
    }
    Ok(())
}

/// A BSUID or parent BSUID: an ISO 3166 alpha-2 country code, a dot, then dot-separated
/// groups of ASCII letters and digits, 128 characters at most after the country
/// (`US.13491208655302741918`, `US.ENT.11815799212886844830`).
pub fn is_bsuid(s: &str) -> bool {
    let Some((country, rest)) = s.split_once('.') else {
        return false;
    };
    country.len() == 2
        && country.bytes().all(|b| b.is_ascii_uppercase())
        && !rest.is_empty()
        && rest.len() <= 128
        && rest
            .split('.')
            .all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_alphanumeric()))
}

impl User {
    pub fn new(
        wa_id: WaId,
        name: Option<String>,
        platform: Platform,
        version: ClientVersion,
    ) -> Self {
        let name = name.unwrap_or_else(|| default_name(&wa_id));
        Self {
            user_id: bsuid_for(&wa_id),
            wa_id,
            name,
            platform,
            version,
            username: None,
            parent_user_id: None,
            hide_phone_number: None,
        }
    }

    /// The user keeps their phone number from businesses unless an exchange over it
    /// makes it visible: they have a username and did not opt out of hiding.
    pub fn hides_phone_number(&self) -> bool {
        self.username.is_some() && self.hide_phone_number.unwrap_or(true)
    }

    /// `recipient` names this user: their BSUID or their parent BSUID.
    pub fn answers_to(&self, bsuid: &str) -> bool {
        self.user_id == bsuid || self.parent_user_id.as_deref() == Some(bsuid)
    }

    pub fn capabilities<'a>(&'a self, rules: &'a VersionRules) -> Capabilities<'a> {
        Capabilities { user: self, rules }
    }
}

fn default_name(wa_id: &WaId) -> String {
    // The last four characters, in one allocation (a fresh user is rebuilt often).
    let start = wa_id.0.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
    let tail = &wa_id.0[start..];
    let mut name = String::with_capacity(5 + tail.len());
    name.push_str("User ");
    name.push_str(tail);
    name
}

/// What a user's client can do, per the client-version table.
pub struct Capabilities<'a> {
    user: &'a User,
    rules: &'a VersionRules,
}

impl Capabilities<'_> {
    /// Renders `voice_call` buttons (interactive and template). Below the minimum the
    /// message fails asynchronously with 131026.
    pub fn renders_call_buttons(&self) -> bool {
        let min = if self.user.platform.is_ios_family() {
            &self.rules.voice_call_button_ios
        } else {
            &self.rules.voice_call_button_android
        };
        self.user.version >= *min
    }

    /// Receives call permission requests and business-initiated calls.
    pub fn receives_business_calls(&self) -> bool {
        self.user.platform.is_phone() && self.user.version >= self.rules.permission_requests
    }

    pub fn receives_permission_requests(&self) -> bool {
        self.user.version >= self.rules.permission_requests
    }

    /// Passes `payload` / `biz_payload` on as `cta_payload` / `deeplink_payload`.
    pub fn echoes_payloads(&self) -> bool {
        self.user.version >= self.rules.payload_echo
    }

    /// Places calls to businesses (desktop and web cannot).
    pub fn places_business_calls(&self) -> bool {
        self.user.platform.is_phone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(platform: Platform, v: &str) -> User {
        User::new(
            WaId::from("16315551234"),
            None,
            platform,
            ClientVersion::parse(v).unwrap(),
        )
    }

    #[test]
    fn versions_compare_numerically_not_lexically() {
        let v = |s| ClientVersion::parse(s).unwrap();
        assert!(v("2.25.27") > v("2.25.9"));
        assert!(v("2.24.10.8") > v("2.24.10"));
        assert_eq!(v("2.24"), v("2.24.0"));
        assert!(ClientVersion::parse("2.x").is_none());
        assert!(ClientVersion::parse("").is_none());
    }

    #[test]
    fn client_version_table_rows() {
        let rules = VersionRules::default();
        // (platform, version, buttons, permission+business calls, payload echo, places calls)
        let rows = [
            (Platform::Android, "2.23.0", false, false, false, true),
            (Platform::Android, "2.24.1", true, false, false, true),
            (Platform::Android, "2.24.14", true, true, false, true),
            (Platform::Android, "2.25.26", true, true, false, true),
            (Platform::Android, "2.25.27", true, true, true, true),
            (Platform::Ios, "2.25.30", true, true, true, true),
            (Platform::Desktop, "2.25.30", true, false, true, false),
            (Platform::Web, "2.25.30", true, false, true, false),
        ];
        for (p, v, buttons, biz, echo, calls) in rows {
            let u = user(p, v);
            let c = u.capabilities(&rules);
            assert_eq!(c.renders_call_buttons(), buttons, "{p:?} {v} buttons");
            assert_eq!(c.receives_business_calls(), biz, "{p:?} {v} business calls");
            assert_eq!(c.echoes_payloads(), echo, "{p:?} {v} payload echo");
            assert_eq!(c.places_business_calls(), calls, "{p:?} {v} places calls");
        }
    }

    #[test]
    fn usernames_and_bsuids_are_checked() {
        for ok in ["ana", "ana.b_2026", "Jo_Bakes", "a12"] {
            assert!(check_username(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "123", ".ana", "ana.", "ana b", "anä", &"a".repeat(36)] {
            assert!(check_username(bad).is_err(), "{bad}");
        }
        for ok in [
            "US.13491208655302741918",
            "US.ENT.11815799212886844830",
            "BR.x1",
        ] {
            assert!(is_bsuid(ok), "{ok}");
        }
        for bad in [
            "16315551234",
            "us.1",
            "USA.1",
            "US.",
            "US..1",
            "US.1-2",
            "US.1.",
        ] {
            assert!(!is_bsuid(bad), "{bad}");
        }
        assert!(is_bsuid(&format!("US.{}", "1".repeat(128))));
        assert!(!is_bsuid(&format!("US.{}", "1".repeat(129))));
    }

    #[test]
    fn only_a_user_with_a_username_hides_the_number_by_default() {
        let mut u = user(Platform::Android, "2.25.30");
        assert!(!u.hides_phone_number());
        u.hide_phone_number = Some(true);
        assert!(
            !u.hides_phone_number(),
            "no username, nothing to hide behind"
        );
        u.username = Some("ana".into());
        u.hide_phone_number = None;
        assert!(u.hides_phone_number());
        u.hide_phone_number = Some(false);
        assert!(!u.hides_phone_number());
        u.parent_user_id = Some("US.ENT.1".into());
        assert!(u.answers_to(&u.user_id.clone()) && u.answers_to("US.ENT.1"));
        assert!(!u.answers_to("US.ENT.2"));
    }

    #[test]
    fn default_names_use_the_last_four_digits() {
        assert_eq!(user(Platform::Android, "2.25.30").name, "User 1234");
    }
}
