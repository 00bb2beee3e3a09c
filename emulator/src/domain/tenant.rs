//! Who the emulator pretends to be: apps, WABAs, phone numbers, declared users, and the
//! behaviour switches where the real API is ambiguous. The embedded default is PRODUCT §2.

use super::ids::{calling_code, AppId, PhoneNumberId, WaId, WabaId};
use super::permission::PermissionLimits;
use super::settings::CallingSettings;
use super::user::{ClientVersion, Platform, VersionRules};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct App {
    pub id: AppId,
    pub secret: String,
    pub access_tokens: Vec<String>,
    pub webhook_url: Option<String>,
    pub verify_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Waba {
    pub id: WabaId,
    pub app_id: AppId,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhoneNumber {
    pub id: PhoneNumberId,
    pub waba_id: WabaId,
    pub display_phone_number: String,
    pub verified_name: String,
    pub calling: CallingSettings,
    /// Overrides the country rule of [`PhoneNumber::business_initiated_calling`].
    #[serde(default)]
    pub business_initiated_calling: Option<bool>,
    /// Which limits apply: a production number's, or a sandbox / public test number's.
    #[serde(default)]
    pub profile: NumberProfile,
}

/// Calling codes of the countries where business-initiated calling (and so call
/// permission requests) is not available: US and Canada, Egypt, Vietnam, Nigeria
/// (cloud-api §5.1, §6.5).
pub const NO_BUSINESS_INITIATED_CALLING: &[&str] = &["1", "20", "84", "234"];

impl PhoneNumber {
    /// Whether the business may call users and ask them for call permission (else 138013).
    pub fn business_initiated_calling(&self) -> bool {
        self.business_initiated_calling.unwrap_or_else(|| {
            calling_code(&self.display_phone_number)
                .is_none_or(|code| !NO_BUSINESS_INITIATED_CALLING.contains(&code))
        })
    }
}

/// A number's limits profile (cloud-api §6.5): sandbox and public test numbers may send
/// more permission requests and tolerate more unanswered calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumberProfile {
    #[default]
    Production,
    Test,
}

impl NumberProfile {
    pub fn permission_limits(self) -> PermissionLimits {
        match self {
            NumberProfile::Production => PermissionLimits::PRODUCTION,
            NumberProfile::Test => PermissionLimits::TEST,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeclaredUser {
    pub wa_id: WaId,
    pub name: Option<String>,
    pub platform: Platform,
    pub version: ClientVersion,
}

/// Switches for behaviour the reference marks as inference or inconsistent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behaviour {
    /// 131047 as a synchronous 400 instead of the default failed status webhook.
    pub reengagement_sync: bool,
    /// `href` inside message-status errors (the docs show it; recent captures omit it).
    pub status_error_href: bool,
    /// `conversation` objects on `sent`/`delivered` statuses of sends made on Graph
    /// versions before v24.0 (the version rule decides; `false` omits them everywhere).
    pub status_conversation: bool,
    /// The Graph version unversioned paths act as.
    pub default_graph_version: super::version::GraphVersion,
    /// A `sent` status before the `failed` 131026 one.
    pub sent_before_undeliverable: bool,
    /// Seconds from template creation to APPROVED (0: approved at once).
    pub template_review_secs: u64,
    /// Seconds a call rings before it ends unanswered.
    pub ring_timeout_secs: u64,
    /// Seconds after a call connects within which the business's audio must arrive, or
    /// the user's client ends the call with 138021 (cloud-api §5.4: 20 s at call start).
    /// Only calls whose SDP connects a media endpoint (ICE candidates) are timed.
    pub media_timeout_secs: u64,
    /// Seconds the business's audio may stop once it has flowed before the user's client
    /// ends the call with 138021 (cloud-api §5.4: 30 s mid-call); 0 turns the rule off.
    pub media_midcall_timeout_secs: u64,
    /// New users start with the 24 h customer service window open (as if they had just
    /// written), so a first `voice_call` message is deliverable.
    pub new_users_window_open: bool,
    /// Legacy `connection.webrtc.sdp` beside `session` on business-initiated connects.
    pub legacy_connection_sdp: bool,
    /// BSUID-era fields (`user_id`, `contacts` on status webhooks).
    pub bsuid: bool,
    /// A `to` written without `+` always gets the sending number's calling code
    /// prepended: the literal reading of "if `+` is omitted the business number's country
    /// code is prepended" (cloud-api §0). Off by default because Meta's own examples send
    /// `"to": "14085551234"` from +1 numbers and reach +1 408…: a `to` that already starts
    /// with the business number's calling code is taken as international, and only the
    /// others get it prepended (from a +44 number, `16315551234` still becomes
    /// `4416315551234`, the mis-delivery Meta warns of).
    pub always_prepend_calling_code: bool,
    /// A user with a hidden phone number (a username, §13) who writes to or calls a
    /// business makes their number visible to it for 30 days, as a literal reading of
    /// "messaged or called within 30 days" has it. Off by default: a user who reached
    /// the business by username has not shown it their number, so only exchanges over
    /// the number count (the business sending or calling with `to`, or the user writing
    /// or calling while the number is already visible).
    pub user_contact_reveals_phone: bool,
    /// The SIP header carrying the caller's parent BSUID on user-initiated INVITEs. The
    /// default is the spelling of Meta's BSUID page, underscore included
    /// (`x-wa_meta-parent-user-id`, cloud-api §8.5); integrators' plans write
    /// `x-wa-meta-parent-user-id`.
    pub sip_parent_user_id_header: SipHeaderName,
    /// The SIP header carrying the caller's username (never the profile name); the BSUID
    /// page writes `x-wa-meta-user-name`, integrators' plans `x-wa-meta-username`.
    pub sip_username_header: SipHeaderName,
    /// A business's SIP INVITE is also accepted from a subdomain of the configured SIP
    /// hostname (`pbx1.sip.example.com` for `sip.example.com`). Off by default: Meta's
    /// rule is the same host or a parent domain of it (cloud-api §8.2).
    pub sip_from_host_subdomains: bool,
    /// SIP calls may carry plain RTP: a business SDP with `RTP/AVP` and no key (a 200 OK
    /// answering the user's SDES offer, or a business's INVITE offer) gets the user's
    /// media endpoint without SRTP. Off by default: Meta speaks only SRTP (DTLS or SDES,
    /// cloud-api §8.3, §8.4), so such an offer is refused (403) and such an answer leaves
    /// the call signalling only.
    pub sip_plain_rtp: bool,
    pub versions: VersionRules,
    /// Graph requests kept for `GET /__emulator/requests` (the engine's request history).
    #[serde(rename = "journal_capacity")]
    pub request_history_capacity: usize,
    /// Finished webhook deliveries kept in the log, and the cap on deliveries held while
    /// no callback URL was ever set (deliveries with a URL are never evicted early).
    pub delivery_log_capacity: usize,
    /// Deliveries to callback URLs pending at most (in flight, due, or waiting for a
    /// retry) per tenant. At the bound, a Graph request that may queue webhooks waits
    /// until deliveries finish, up to `webhook_pending_wait_secs`, then is refused with
    /// the transient 503 code 2; nothing accepted is dropped. 5,000 pending take about
    /// 8 MB (≈ 1.6 KB each).
    pub webhook_pending_limit: usize,
    /// How long such a request waits for room before it is refused.
    pub webhook_pending_wait_secs: u64,
    /// Messages kept for taps and reads; older ones are evicted and counted.
    pub message_retention: usize,
    /// Ended calls kept; older ones are evicted and counted.
    pub call_retention: usize,
    /// How long undelivered `messages`-field webhooks are retried.
    pub retry_horizon_secs: u64,
    /// How long undelivered `calls` webhooks are retried (shorter, as Meta warns).
    pub calls_retry_horizon_secs: u64,
    /// Fold idle users (nothing open, nothing retained, as a first sight would create
    /// them) into a set of numbers once their state has expired, so memory stays bounded
    /// by activity, not by every number ever seen.
    pub forget_idle_users: bool,
    /// Seeded fault injection on webhook delivery (off by default).
    pub chaos: Chaos,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            reengagement_sync: false,
            status_error_href: false,
            status_conversation: true,
            default_graph_version: super::version::DEFAULT_GRAPH_VERSION,
            sent_before_undeliverable: false,
            template_review_secs: 0,
            ring_timeout_secs: 60,
            media_timeout_secs: 20,
            media_midcall_timeout_secs: 30,
            new_users_window_open: true,
            legacy_connection_sdp: false,
            bsuid: true,
            always_prepend_calling_code: false,
            user_contact_reveals_phone: false,
            sip_parent_user_id_header: SipHeaderName("x-wa_meta-parent-user-id".into()),
            sip_username_header: SipHeaderName("x-wa-meta-user-name".into()),
            sip_from_host_subdomains: false,
            sip_plain_rtp: false,
            versions: VersionRules::default(),
            request_history_capacity: 1_000,
            delivery_log_capacity: 10_000,
            webhook_pending_limit: 5_000,
            webhook_pending_wait_secs: 30,
            message_retention: 20_000,
            call_retention: 10_000,
            retry_horizon_secs: 7 * 24 * 3600,
            calls_retry_horizon_secs: 3600,
            forget_idle_users: true,
            chaos: Default::default(),
        }
    }
}

/// Seeded fault injection on webhook delivery (off by default; the outbox applies it): duplicates, reordering and delays, as Meta's
/// calling webhooks can show them. The same seed gives the same faults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Chaos {
    /// Probability that a webhook is delivered twice (a second, separate delivery).
    pub duplicate: f64,
    /// Probability that a webhook ignores per-call ordering (may overtake or be overtaken).
    pub reorder: f64,
    /// Each webhook waits a random 0..=delay_ms before its first attempt.
    pub delay_ms: u64,
    pub seed: u64,
}

impl Chaos {
    pub fn is_off(&self) -> bool {
        self.duplicate <= 0.0 && self.reorder <= 0.0 && self.delay_ms == 0
    }
}

/// A SIP header name given in the configuration: an RFC 3261 token (letters, digits and
/// `-.!%*_+`'~`), checked when the configuration loads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SipHeaderName(String);

impl SipHeaderName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SipHeaderName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let token = |b: u8| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b);
        if s.is_empty() || s.len() > 64 || !s.bytes().all(token) {
            return Err(format!(
                "not a SIP header name: {s:?} (expected 1 to 64 letters, digits and -.!%*_+`'~)"
            ));
        }
        Ok(Self(s))
    }
}

impl From<SipHeaderName> for String {
    fn from(h: SipHeaderName) -> String {
        h.0
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tenants {
    pub apps: Vec<App>,
    pub wabas: Vec<Waba>,
    pub phone_numbers: Vec<PhoneNumber>,
    pub users: Vec<DeclaredUser>,
}

impl Tenants {
    /// The callback URL of an app, if one is set.
    pub fn webhook_url(&self, app: &str) -> Option<String> {
        self.apps
            .iter()
            .find(|a| a.id.as_str() == app)
            .and_then(|a| a.webhook_url.clone())
    }
}

pub const DEFAULT_APP_ID: &str = "1234567890123456";
pub const DEFAULT_APP_SECRET: &str = "wa-emulator-secret";
pub const DEFAULT_WABA_ID: &str = "102290129340398";
pub const DEFAULT_PHONE_NUMBER_ID: &str = "106540352242922";
pub const DEFAULT_DISPLAY_NUMBER: &str = "15550783881";
/// The default tenant's second number: +1 numbers have no business-initiated calling
/// (138013), so business-initiated flows run from this UK number (a fictional 07700 900
/// number, Ofcom's range for drama).
pub const SECOND_PHONE_NUMBER_ID: &str = "110972043181256";
pub const SECOND_DISPLAY_NUMBER: &str = "447700900461";
pub const DEFAULT_ACCESS_TOKEN: &str = "wa-emulator-token";
pub const DEFAULT_VERIFY_TOKEN: &str = "wa-emulator-verify";

impl Default for Tenants {
    fn default() -> Self {
        Self {
            apps: vec![App {
                id: DEFAULT_APP_ID.into(),
                secret: DEFAULT_APP_SECRET.into(),
                access_tokens: vec![DEFAULT_ACCESS_TOKEN.into()],
                webhook_url: None,
                verify_token: DEFAULT_VERIFY_TOKEN.into(),
            }],
            wabas: vec![Waba {
                id: DEFAULT_WABA_ID.into(),
                app_id: DEFAULT_APP_ID.into(),
                name: "wa-emulator".into(),
            }],
            phone_numbers: vec![
                PhoneNumber {
                    id: DEFAULT_PHONE_NUMBER_ID.into(),
                    waba_id: DEFAULT_WABA_ID.into(),
                    display_phone_number: DEFAULT_DISPLAY_NUMBER.into(),
                    verified_name: "wa-emulator".into(),
                    calling: CallingSettings::default(),
                    business_initiated_calling: None,
                    profile: NumberProfile::Production,
                },
                PhoneNumber {
                    id: SECOND_PHONE_NUMBER_ID.into(),
                    waba_id: DEFAULT_WABA_ID.into(),
                    display_phone_number: SECOND_DISPLAY_NUMBER.into(),
                    verified_name: "wa-emulator UK".into(),
                    calling: CallingSettings::default(),
                    business_initiated_calling: None,
                    profile: NumberProfile::Production,
                },
            ],
            users: Vec::new(),
        }
    }
}

/// The fictional US number of a generated tenant must not be the default tenant's.
const DEFAULT_US_LINE: u64 = 783_881;
/// Nor its UK number.
const DEFAULT_UK_LINE: u64 = 461;
/// A generated tenant has at most this many numbers (their ids end in 1 to 9).
pub const MAX_GENERATED_NUMBERS: usize = 9;

/// A number a generated tenant is to have: its display number and what it can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberRequest {
    pub display_phone_number: String,
    /// Overrides the country rule, as [`PhoneNumber::business_initiated_calling`] does.
    pub business_initiated_calling: Option<bool>,
    pub profile: NumberProfile,
}

impl NumberRequest {
    fn new(display: String) -> Self {
        Self {
            display_phone_number: display,
            business_initiated_calling: None,
            profile: NumberProfile::Production,
        }
    }
}

impl Tenants {
    /// The numbers of generated tenant `serial` unless others are asked for: like the
    /// default tenant's, a +1 number (1 555 xxx xxxx) and a UK number where
    /// business-initiated calling exists (44 7700 9xxxxx), distinct for serials below
    /// 100,000 (0 stands in for the default tenant's own lines); display numbers need
    /// only be unique within one tenant.
    pub fn standard_numbers(serial: u64) -> Vec<NumberRequest> {
        let mut us = serial % 10_000_000;
        if us == DEFAULT_US_LINE {
            us = 0;
        }
        let mut uk = serial % 100_000;
        if uk == DEFAULT_UK_LINE {
            uk = 0;
        }
        vec![
            NumberRequest::new(format!("1555{us:07}")),
            NumberRequest::new(format!("4477009{uk:05}")),
        ]
    }

    /// A fresh tenant for one test on a shared server (`POST /__emulator/tenants`): an
    /// app, a WABA and `numbers` (at most [`MAX_GENERATED_NUMBERS`]; see
    /// [`Tenants::standard_numbers`]), with ids derived from `serial` (1, 2, …) so they
    /// are unique across the server, and a token and an app secret that also carry
    /// `nonce` (random, from the I/O shell) so they cannot be guessed from the serial.
    pub fn generated(
        serial: u64,
        nonce: &str,
        numbers: &[NumberRequest],
        webhook_url: Option<String>,
        verify_token: Option<String>,
    ) -> Self {
        let app_id = AppId(format!("7{:015}", serial % 10u64.pow(15)));
        let waba_id = WabaId(format!("8{:014}", serial % 10u64.pow(14)));
        let name = format!("wa-emulator t{serial}");
        Self {
            apps: vec![App {
                id: app_id.clone(),
                secret: format!("{DEFAULT_APP_SECRET}-t{serial}-{nonce}"),
                access_tokens: vec![format!("{DEFAULT_ACCESS_TOKEN}-t{serial}-{nonce}")],
                webhook_url,
                verify_token: verify_token.unwrap_or_else(|| DEFAULT_VERIFY_TOKEN.into()),
            }],
            wabas: vec![Waba {
                id: waba_id.clone(),
                app_id,
                name: name.clone(),
            }],
            phone_numbers: numbers
                .iter()
                .take(MAX_GENERATED_NUMBERS)
                .zip(1..)
                .map(|(n, k)| PhoneNumber {
                    id: PhoneNumberId(format!("9{:013}{k}", serial % 10u64.pow(13))),
                    waba_id: waba_id.clone(),
                    display_phone_number: n.display_phone_number.clone(),
                    verified_name: name.clone(),
                    calling: CallingSettings::default(),
                    business_initiated_calling: n.business_initiated_calling,
                    profile: n.profile,
                })
                .collect(),
            users: Vec::new(),
        }
    }

    /// Whether any app id, WABA id, phone number id or access token of `self` is also
    /// one of `other`'s: a generated tenant must share none with the configured ones.
    pub fn shares_ids_with(&self, other: &Tenants) -> bool {
        self.apps.iter().any(|a| {
            other.apps.iter().any(|b| {
                a.id == b.id || a.access_tokens.iter().any(|t| b.access_tokens.contains(t))
            })
        }) || self
            .wabas
            .iter()
            .any(|w| other.wabas.iter().any(|o| o.id == w.id))
            || self
                .phone_numbers
                .iter()
                .any(|p| other.phone_numbers.iter().any(|o| o.id == p.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_header_names_are_tokens() {
        let parse = |s: &str| SipHeaderName::try_from(s.to_owned());
        assert!(parse("x-wa_meta-parent-user-id").is_ok());
        assert!(parse("x-wa-meta-username").is_ok());
        for bad in ["", "x wa", "x-wa:1", "x\r\ny", &"x".repeat(65)] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let b: Behaviour = serde_json::from_value(
            serde_json::json!({"sip_parent_user_id_header": "x-wa-meta-parent-user-id"}),
        )
        .unwrap();
        assert_eq!(
            b.sip_parent_user_id_header.as_str(),
            "x-wa-meta-parent-user-id"
        );
        assert_eq!(b.sip_username_header.as_str(), "x-wa-meta-user-name");
        let bad = serde_json::json!({"sip_username_header": "x y"});
        assert!(serde_json::from_value::<Behaviour>(bad).is_err());
    }
}

#[cfg(test)]
mod country_rule_tests {
    use super::*;
    use proptest::prelude::*;

    fn number(display: &str, over: Option<bool>) -> PhoneNumber {
        PhoneNumber {
            display_phone_number: display.into(),
            business_initiated_calling: over,
            ..Tenants::default().phone_numbers[0].clone()
        }
    }

    #[test]
    fn the_default_tenant_has_one_number_of_each_kind() {
        let t = Tenants::default();
        assert!(!t.phone_numbers[0].business_initiated_calling());
        assert!(t.phone_numbers[1].business_initiated_calling());
        assert_eq!(t.phone_numbers[0].waba_id, t.phone_numbers[1].waba_id);
    }

    #[test]
    fn the_country_rule_by_calling_code() {
        for (display, allowed) in [
            ("15550783881", false),
            ("12125550123", false),
            ("201001234567", false),
            ("84912345678", false),
            ("2348031234567", false),
            ("447700900461", true),
            ("5511962185237", true),
            ("919876543210", true),
            // +27 South Africa shares its first digit with +20 Egypt.
            ("27821234567", true),
            // +235 Chad is not +234 Nigeria.
            ("23566123456", true),
        ] {
            assert_eq!(
                number(display, None).business_initiated_calling(),
                allowed,
                "{display}"
            );
        }
    }

    #[test]
    fn a_generated_tenant_is_shaped_like_the_default_and_shares_no_id_with_it() {
        let d = Tenants::default();
        let t = Tenants::generated(1, "n0nce", &Tenants::standard_numbers(1), None, None);
        assert!(!t.shares_ids_with(&d) && !d.shares_ids_with(&t));
        assert_eq!(t.apps[0].id.as_str(), "7000000000000001");
        assert_eq!(t.wabas[0].id.as_str(), "800000000000001");
        assert_eq!(t.wabas[0].app_id, t.apps[0].id);
        assert_eq!(t.phone_numbers[0].id.as_str(), "900000000000011");
        assert_eq!(t.phone_numbers[1].id.as_str(), "900000000000012");
        assert_eq!(t.phone_numbers[0].display_phone_number, "15550000001");
        assert_eq!(t.phone_numbers[1].display_phone_number, "447700900001");
        assert!(!t.phone_numbers[0].business_initiated_calling());
        assert!(t.phone_numbers[1].business_initiated_calling());
        assert!(t.phone_numbers.iter().all(|p| p.waba_id == t.wabas[0].id));
        assert!(t.apps[0].access_tokens[0].contains("n0nce"));
        assert_eq!(t.apps[0].verify_token, DEFAULT_VERIFY_TOKEN);
        // The serial that would give the default tenant's own display numbers does not.
        let clash = Tenants::standard_numbers(DEFAULT_US_LINE);
        assert_ne!(clash[0].display_phone_number, DEFAULT_DISPLAY_NUMBER);
        let clash = Tenants::standard_numbers(DEFAULT_UK_LINE);
        assert_ne!(clash[1].display_phone_number, SECOND_DISPLAY_NUMBER);
        // Numbers asked for: in order, what they can do kept, at most nine.
        let asked: Vec<NumberRequest> = (0..12)
            .map(|i| NumberRequest {
                display_phone_number: format!("5511962185{i:03}"),
                business_initiated_calling: Some(i % 2 == 0),
                profile: NumberProfile::Test,
            })
            .collect();
        let t = Tenants::generated(2, "n", &asked, None, None);
        assert_eq!(t.phone_numbers.len(), MAX_GENERATED_NUMBERS);
        assert_eq!(t.phone_numbers[8].id.as_str(), "900000000000029");
        assert_eq!(t.phone_numbers[1].display_phone_number, "5511962185001");
        assert!(!t.phone_numbers[1].business_initiated_calling());
        assert_eq!(t.phone_numbers[1].profile, NumberProfile::Test);
    }

    proptest! {
        /// Two serials never share an id, a token or (below 100,000) a display number.
        #[test]
        fn generated_tenants_share_nothing(a in 1u64..100_000, b in 1u64..100_000) {
            prop_assume!(a != b);
            let (x, y) = (
                Tenants::generated(a, "n", &Tenants::standard_numbers(a), None, None),
                Tenants::generated(b, "n", &Tenants::standard_numbers(b), None, None),
            );
            prop_assert!(!x.shares_ids_with(&y));
            for (p, q) in x.phone_numbers.iter().zip(&y.phone_numbers) {
                prop_assert_ne!(&p.display_phone_number, &q.display_phone_number);
            }
        }
    }

    proptest! {
        /// The per-number switch always wins over the country rule.
        #[test]
        fn the_override_wins(digits in "[1-9][0-9]{7,13}", over in any::<bool>()) {
            prop_assert_eq!(number(&digits, Some(over)).business_initiated_calling(), over);
        }

        /// Every +1 number is refused, whatever follows the code.
        #[test]
        fn every_plus_one_number_is_refused(rest in "[0-9]{10}") {
            let display = format!("1{rest}");
            prop_assert!(!number(&display, None).business_initiated_calling());
        }
    }
}
