//! What the engine asks the SIP gateway to do: the INVITE of a user-initiated call to a
//! SIP-enabled number, described once for the engine and the SIP user agent.

use super::ids::CallId;

/// Everything the SIP signaller needs to place a user-initiated call.
#[derive(Debug, Clone, PartialEq)]
pub struct SipInvite {
    pub call_id: CallId,
    pub user_number: String,
    /// The caller's username (`x-wa-meta-user-name`), when they have one and BSUIDs are on.
    pub username: Option<String>,
    /// The caller's BSUID (`x-wa-meta-user-id`), when BSUIDs are on.
    pub user_id: Option<String>,
    /// The caller's parent BSUID (`x-wa_meta-parent-user-id`), when they have one and
    /// BSUIDs are on.
    pub parent_user_id: Option<String>,
    /// The spelling of the username and parent-id headers (`Behaviour`).
    pub username_header: String,
    pub parent_user_id_header: String,
    pub business_number: String,
    pub phone_number_id: String,
    pub hostname: String,
    pub port: u16,
    pub transport: String,
    pub request_uri_user_params: Vec<(String, String)>,
    pub sdp_offer: String,
    pub cta_payload: Option<String>,
    pub deeplink_payload: Option<String>,
    pub digest_username: String,
    pub digest_password: String,
}
