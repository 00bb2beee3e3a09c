//! The seam between the engine and the SIP side, described once in each direction:
//! - user-initiated calls: the engine builds a [`SipInvite`]; the SIP user agent
//!   (`crate::sip`) places the call from it as is;
//! - business-initiated calls (the emulator plays Meta's gateway `wa.meta.vc`): the
//!   gateway reads a business's INVITE into an [`IncomingInvite`], the engine judges it
//!   ([`Admission`]), and later tells the gateway how the user answered ([`GatewayReply`]).

use super::ids::{CallId, PhoneNumberId};
use serde::{Deserialize, Serialize};

/// How the emulator reaches a business's SIP server: `transport` of
/// `settings.calling.sip.servers[]`, an emulator extension (Meta itself always uses TLS).
/// Parsed once, when settings are validated; written in snapshots as `"udp"`, `"tcp"`
/// or `"tls"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SipTransport {
    #[default]
    Udp,
    Tcp,
    /// TLS over TCP, as Meta always connects (cloud-api §8.2): the server's certificate
    /// is checked against the system's roots and `--sip-ca`, for the configured hostname.
    Tls,
}

impl SipTransport {
    /// The settings spellings, as `transport` accepts them (any case).
    pub const NAMES: [&'static str; 3] = ["udp", "tcp", "tls"];

    /// A settings spelling, in any case.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Some(Self::Udp),
            "tcp" => Some(Self::Tcp),
            "tls" => Some(Self::Tls),
            _ => None,
        }
    }

    /// The settings spelling, also the `transport=` URI parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }

    /// The token in Via (`SIP/2.0/UDP`).
    pub fn via_token(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
        }
    }

    /// Reliable transports have no retransmissions (RFC 3261 §17.1.1.2).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Self::Udp)
    }
}

/// The business's SIP server a call goes to (from `settings.calling.sip.servers[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipServer {
    pub hostname: String,
    pub port: u16,
    pub transport: SipTransport,
    /// Inserted in the user part of the Request-URI, in order: `sip:+1555;k=v@host`.
    pub request_uri_user_params: Vec<(String, String)>,
}

/// The BSUID headers whose spelling differs between sources (cloud-api §8.5): Meta's
/// BSUID page prints `x-wa_meta-parent-user-id` (underscore and all) and
/// `x-wa-meta-user-name`; integrators' plans write `x-wa-meta-parent-user-id` and
/// `x-wa-meta-username`. The default is Meta's page; `Behaviour` chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderNames {
    pub username: String,
    pub parent_user_id: String,
}

impl Default for HeaderNames {
    fn default() -> Self {
        HeaderNames {
            username: "x-wa-meta-user-name".into(),
            parent_user_id: "x-wa_meta-parent-user-id".into(),
        }
    }
}

/// Everything needed to place one user-initiated call over SIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipInvite {
    /// The WhatsApp call id (`wacid.…`): Call-ID `outgoing:<wacid>` and `x-wa-meta-wacid`.
    pub call_id: CallId,
    /// Caller digits without `+`.
    pub user_number: String,
    /// Caller's WhatsApp username (never the profile name), sent in the username header
    /// (`x-wa-meta-user-name`) when present: when they have one and BSUIDs are on.
    pub username: Option<String>,
    /// Caller BSUID, sent as `x-wa-meta-user-id` when present (BSUIDs on).
    pub user_id: Option<String>,
    /// Caller's parent BSUID, sent in the parent-id header (`x-wa_meta-parent-user-id`)
    /// when present: when they have one and BSUIDs are on.
    pub parent_user_id: Option<String>,
    /// How the username and parent-id headers are spelled.
    pub header_names: HeaderNames,
    /// Business display number digits without `+`.
    pub business_number: String,
    /// Sent as `x-wa-meta-phone-number-id` (seen on production INVITEs).
    pub phone_number_id: String,
    pub server: SipServer,
    /// SDP offer with CRLF line endings.
    pub sdp_offer: String,
    /// `x-wa-meta-cta-payload`, when the call carries one (a button tap from a client
    /// that echoes payloads).
    pub cta_payload: Option<String>,
    /// `x-wa-meta-deeplink-payload`, likewise for a deep link.
    pub deeplink_payload: Option<String>,
    /// Digest username: the business number digits.
    pub digest_username: String,
    /// Digest password: the SIP password of the number's settings.
    pub digest_password: String,
}

/// A business's INVITE to the emulator's gateway, with digest credentials for the
/// gateway's own nonce. Whether they verify with the number's SIP password (a setting of
/// the number) the engine asks through a callback, so this seam carries no digest code.
/// Logged with `--state`, so serialisable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingInvite {
    /// The calling business number: digits of the From user part, without `+`.
    pub business_number: String,
    /// The called user: digits of the Request-URI user part, without `+`.
    pub user_number: String,
    /// The From host: the business's SIP domain, checked against the number's servers.
    pub from_host: String,
    pub transport: SipTransport,
    pub sdp_offer: String,
}

/// A SIP final response refusing a business-initiated call (cloud-api §8.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SipRefusal {
    pub status: u16,
    pub reason: String,
    /// The text of a `Warning: 399 wa.meta.vc "…"` header, when Meta sends one.
    pub warning: Option<String>,
}

impl SipRefusal {
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        SipRefusal {
            status,
            reason: reason.into(),
            warning: None,
        }
    }

    /// No business number of the From user's digits (cloud-api §8.6).
    pub fn unknown_number() -> Self {
        Self::new(400, "Asset not found, invalid business phone number")
    }

    /// The digest answer does not verify with the number's SIP password (§8.6 lists
    /// "invalid digest response" among its 403s, without the exact text).
    pub fn invalid_digest() -> Self {
        Self::new(403, "Invalid digest response")
    }

    /// The From host is none of the number's SIP servers (§8.6, with the same text in a
    /// `Warning: 399 wa.meta.vc "…"`).
    pub fn server_mismatch(from_host: &str, phone_number_id: &PhoneNumberId) -> Self {
        let text = format!("SIP server {from_host} from INVITE does not match any SIP server configured for phone number id {phone_number_id}");
        SipRefusal {
            status: 403,
            reason: text.clone(),
            warning: Some(text),
        }
    }

    /// The user's phone rang out (§8.6: "Temporarily Unavailable (not reachable / no
    /// answer)").
    pub fn no_answer() -> Self {
        Self::new(480, "Temporarily Unavailable")
    }

    /// The user declined (§8.6).
    pub fn declined() -> Self {
        Self::new(486, "User declined the call")
    }
}

/// A business-initiated call the engine accepted: the user's phone rings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmittedCall {
    /// The wacid of the new call (`GET /__emulator/calls`, the answer and decline routes).
    pub call_id: CallId,
    pub phone_number_id: PhoneNumberId,
    /// Headers of the 200 OK when the user answers: the user's BSUID headers
    /// (cloud-api §8.5), as BSUIDs allow.
    pub answer_headers: Vec<(String, String)>,
}

/// The engine's judgement of an [`IncomingInvite`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// No business number with these digits here (another tenant may have it; 400 when
    /// none does).
    UnknownNumber,
    /// The number is here, but the digest answer does not verify with its SIP password
    /// (another tenant's number of the same digits may; 403 when none does).
    WrongPassword,
    /// Authenticated, and refused.
    Refused(SipRefusal),
    /// Authenticated and allowed: the user's phone rings.
    Ringing(AdmittedCall),
}

/// What the gateway sends a business that called over SIP, once the user acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayReply {
    /// The user picked up: 200 OK with this SDP answer.
    Answer { sdp: String },
    /// The user declined (486) or let it ring out (480).
    Refuse(SipRefusal),
    /// The user hung up an answered call: BYE carrying `x-wa-meta-call-duration`.
    Bye { duration_secs: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_parse_in_any_case_and_round_trip() {
        for name in SipTransport::NAMES {
            let t = SipTransport::parse(&name.to_ascii_uppercase()).unwrap();
            assert_eq!(t.as_str(), name);
            assert_eq!(serde_json::to_value(t).unwrap(), name);
            assert_eq!(
                serde_json::from_value::<SipTransport>(name.into()).unwrap(),
                t
            );
        }
        assert_eq!(SipTransport::parse("sctp"), None);
        assert!(!SipTransport::Udp.is_reliable() && SipTransport::Tcp.is_reliable());
    }
}
