//! The seam between the engine and the SIP user agent: the INVITE of a user-initiated
//! call to a SIP-enabled number, described once. The engine builds a [`SipInvite`]; the
//! SIP module (`crate::sip`) places the call from it as is.

use super::ids::CallId;
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
    /// Accepted in settings, but the emulator has no TLS: calls to such a server fail
    /// (503) without an INVITE.
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
