//! The SIP side of calls to SIP-enabled numbers: the INVITE the engine asks the shell to
//! send, and what the business's SIP server answers, fed back as events.

use super::Engine;
use crate::domain::call::{Call, CallState, EndReason};
use crate::domain::error::{ApiError, ApiResult};
use crate::domain::ids::CallId;
use crate::domain::sip::{HeaderNames, SipInvite};
use crate::domain::tenant::PhoneNumber;
use crate::domain::user::User;
use serde::{Deserialize, Serialize};

/// One SIP message sent or received, for `GET /__emulator/sip`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SipLogEntry {
    pub at_ms: u64,
    pub call_id: String,
    pub outgoing: bool,
    pub first_line: String,
    pub raw: String,
}

impl Engine {
    /// The INVITE for a user-initiated call to a SIP-enabled number: to its first
    /// server, with the caller's identity as far as BSUIDs allow.
    pub(super) fn sip_invite(
        &self,
        phone: &PhoneNumber,
        user: &User,
        call: &Call,
    ) -> ApiResult<SipInvite> {
        let server = phone.calling.sip.servers.first().cloned().ok_or_else(|| {
            ApiError::refused(
                "sip_misconfigured",
                "SIP is ENABLED but no server is configured.",
            )
        })?;
        Ok(SipInvite {
            call_id: call.id.clone(),
            user_number: user.wa_id.0.clone(),
            username: user.username.clone().filter(|_| self.behaviour.bsuid),
            user_id: self.behaviour.bsuid.then(|| user.user_id.clone()),
            parent_user_id: user.parent_user_id.clone().filter(|_| self.behaviour.bsuid),
            header_names: HeaderNames {
                username: self.behaviour.sip_username_header.as_str().to_owned(),
                parent_user_id: self.behaviour.sip_parent_user_id_header.as_str().to_owned(),
            },
            business_number: phone.display_phone_number.clone(),
            phone_number_id: phone.id.0.clone(),
            server: server.server(),
            sdp_offer: call.offer_sdp.clone(),
            cta_payload: call.cta_payload.clone(),
            deeplink_payload: call.deeplink_payload.clone(),
            digest_username: phone.display_phone_number.clone(),
            digest_password: server.password,
        })
    }

    pub fn sip_answered(&mut self, call_id: &CallId, sdp: String) {
        self.revision += 1;
        if self
            .st
            .calls
            .get(call_id)
            .is_some_and(|c| c.is_ongoing() && c.state != CallState::Active)
        {
            self.connect_call(call_id, Some(sdp), None);
        }
    }

    pub fn sip_failed(&mut self, call_id: &CallId, status: u16) {
        self.revision += 1;
        self.end_call(call_id, EndReason::SipFailure(status), None);
    }

    pub fn sip_timed_out(&mut self, call_id: &CallId) {
        self.revision += 1;
        self.end_call(call_id, EndReason::SipFailure(408), None);
    }

    /// The business's SIP server hung up (its BYE was answered; no BYE goes back).
    pub fn sip_bye_from_server(&mut self, call_id: &CallId) {
        self.revision += 1;
        let now = self.st.now_ms;
        let Some(c) = self.st.calls.get_mut(call_id) else {
            return;
        };
        if !c.is_ongoing() {
            return;
        }
        c.end_reason = Some(if c.state == CallState::Active {
            EndReason::Completed
        } else {
            EndReason::TerminatedBeforeAnswer
        });
        c.state = CallState::Ended;
        c.ended_at_ms = Some(now);
    }

    /// Records one SIP message for the admin API.
    pub fn sip_log(&mut self, call_id: &str, outgoing: bool, first_line: String, raw: String) {
        let at_ms = self.now();
        self.st.sip_log.push_back(SipLogEntry {
            at_ms,
            call_id: call_id.to_owned(),
            outgoing,
            first_line,
            raw,
        });
        while self.st.sip_log.len() > 1000 {
            self.st.sip_log.pop_front();
            self.st.sip_log_evicted += 1;
        }
    }
}
