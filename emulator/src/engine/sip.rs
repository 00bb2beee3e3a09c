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
            let refused = self.rtp_media_from_answer(call_id, &sdp);
            self.media_from_answer(call_id, Some(&sdp));
            self.connect_call(call_id, Some(sdp), None);
            // An SDES answer whose key cannot be used: the user's client hangs up.
            if let Some(why) = refused {
                self.media_failed(call_id, why);
            }
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
        // The user's media endpoint stops with the call.
        let call = c.clone();
        self.media_ended(&call);
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::call::CallMedia;
    use crate::domain::ids::{AppId, PhoneNumberId, WaId};
    use crate::domain::tenant::{Behaviour, Tenants, DEFAULT_APP_ID, DEFAULT_PHONE_NUMBER_ID};
    use crate::engine::{ClockMode, Effect};
    use crate::media::sdp::{ice_credentials, Local, Remote};
    use serde_json::json;

    const USER: &str = "16315551234";
    /// A SIP server's 200 OK answer a WebRTC stack could connect to.
    const CONNECTABLE: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 40000 UDP/TLS/RTP/SAVPF 111 126\r\nc=IN IP4 127.0.0.1\r\na=ice-ufrag:biz1\r\na=ice-pwd:bizbizbizbizbizbizbizbiz\r\na=fingerprint:sha-256 7B:8B:F0:65\r\na=setup:active\r\na=mid:audio\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:126 telephone-event/8000\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n";

    /// An engine whose default number sends calls to a SIP server, keyed as `keying`
    /// says, with a media endpoint at 127.0.0.1:51000.
    fn engine(keying: &str) -> Engine {
        engine_with(keying, Behaviour::default())
    }

    /// [`engine`] with these behaviour settings (shared with `rtp_media`'s tests).
    pub(in crate::engine) fn engine_with(keying: &str, behaviour: Behaviour) -> Engine {
        let mut e = Engine::new(
            Tenants::default(),
            behaviour,
            5,
            ClockMode::Virtual,
            1_767_225_600_000,
        );
        e.media_local = Some(Local {
            addr: "127.0.0.1:51000".parse().unwrap(),
            fingerprint: "AB:CD".into(),
        });
        let body = json!({"calling":{"status":"ENABLED","srtp_key_exchange_protocol":keying,
            "sip":{"status":"ENABLED","servers":[{"hostname":"127.0.0.1","port":5060}]}}});
        e.post_settings(
            &AppId::from(DEFAULT_APP_ID),
            &PhoneNumberId::from(DEFAULT_PHONE_NUMBER_ID),
            body.as_object().unwrap(),
        )
        .unwrap();
        e.take_effects();
        e
    }

    /// The user calls: the call and the INVITE's offer.
    pub(in crate::engine) fn call(e: &mut Engine) -> (CallId, String) {
        let v = e.user_call(&WaId::from(USER), None).unwrap();
        let id = CallId(v["call_id"].as_str().unwrap().to_owned());
        let offer = e
            .take_effects()
            .into_iter()
            .find_map(|f| match f {
                Effect::SipInvite(i) => Some(i.sdp_offer),
                _ => None,
            })
            .expect("an INVITE");
        (id, offer)
    }

    fn media_starts(effects: &[Effect]) -> Vec<(String, String)> {
        effects
            .iter()
            .filter_map(|f| match f {
                Effect::MediaStart { ice, .. } => Some(ice.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_dtls_invite_offers_the_endpoint_and_a_connectable_200_ok_starts_it() {
        let mut e = engine("DTLS");
        let (id, offer) = call(&mut e);
        assert!(
            offer.contains("a=candidate:1 1 udp 2113937151 127.0.0.1 51000 typ host"),
            "{offer}"
        );
        assert!(offer.contains("a=fingerprint:sha-256 AB:CD\r\n"), "{offer}");
        assert!(Remote::of(&offer).is_some(), "{offer}");
        e.sip_answered(&id, CONNECTABLE.into());
        let effects = e.take_effects();
        assert_eq!(
            media_starts(&effects),
            vec![ice_credentials(&offer).unwrap()]
        );
        assert!(effects
            .iter()
            .any(|f| matches!(f, Effect::MediaTalk { .. })));
        // No audio within the media timeout: the user's client hangs up with BYE.
        let timeout = e.behaviour.media_timeout_secs * 1000;
        while e.advance_step(e.now() + timeout) {}
        let c = &e.st.calls[&id];
        assert_eq!(c.end_reason, Some(EndReason::Failed(138021)));
        assert!(c
            .media
            .as_ref()
            .and_then(|m| m.failure.as_deref())
            .is_some_and(|f| f.starts_with("no audio from the business")));
        let effects = e.take_effects();
        assert!(
            effects
                .iter()
                .any(|f| matches!(f, Effect::SipHangup { .. })),
            "BYE"
        );
        assert!(effects
            .iter()
            .any(|f| matches!(f, Effect::MediaStop { .. })));
    }

    #[test]
    fn the_servers_bye_stops_the_endpoint() {
        let mut e = engine("DTLS");
        let (id, _) = call(&mut e);
        e.sip_answered(&id, CONNECTABLE.into());
        e.take_effects();
        e.sip_bye_from_server(&id);
        assert!(e
            .take_effects()
            .iter()
            .any(|f| matches!(f, Effect::MediaStop { .. })));
        assert_eq!(e.st.calls[&id].end_reason, Some(EndReason::Completed));
    }

    #[test]
    fn keyless_answers_to_sdes_and_candidate_less_answers_stay_signalling_only() {
        // The SDES offer points at the endpoint; an answer without a=crypto (here a
        // DTLS one) is no SRTP the user's side can speak: signalling only, as is plain
        // RTP without `sip_plain_rtp` (engine/rtp_media.rs has the SDES calls).
        let mut e = engine("SDES");
        let (id, offer) = call(&mut e);
        assert!(offer.contains("m=audio 51000 RTP/SAVP 111 126"), "{offer}");
        e.sip_answered(&id, CONNECTABLE.into());
        assert!(media_starts(&e.take_effects()).is_empty());
        assert_eq!(e.st.calls[&id].media, None::<CallMedia>);

        let mut e = engine("DTLS");
        let (id, _) = call(&mut e);
        let no_candidate = CONNECTABLE.replace("a=candidate:", "a=x-candidate:");
        e.sip_answered(&id, no_candidate);
        assert!(media_starts(&e.take_effects()).is_empty());
        let timeout = e.behaviour.media_timeout_secs * 1000;
        while e.advance_step(e.now() + 2 * timeout) {}
        assert_eq!(e.st.calls[&id].state, CallState::Active);
    }
}
