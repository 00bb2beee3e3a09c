//! The calls' media as the core sees it. The endpoint itself (sockets, DTLS, audio) runs
//! in the shell; the core decides when it starts, talks and stops ([`Effect`]s), points
//! the SDP it sends at it, and ends the call the way the user's client would when the
//! media path fails or no audio arrives (138021, cloud-api §4.4, §5.4).
//!
//! Only calls whose business SDP can connect (ICE credentials, a fingerprint and a
//! candidate, [`Remote::of`]) get an endpoint; every other call is signalling only and
//! behaves as it always did.

use super::calls::client_errors;
use super::{Effect, Engine, Timer};
use crate::domain::call::{Call, CallMedia, CallState, Direction, EndReason};
use crate::domain::ids::CallId;
use crate::media::sdp::{self, Remote};

/// The title of 138021 (cloud-api §5.4).
const MEDIA_TIMEOUT: &str = "Media receive timeout";

impl Engine {
    /// A user-initiated offer pointed at the endpoint (unchanged without one).
    pub(super) fn media_offer(&self, shaped: String) -> String {
        match &self.media_local {
            Some(local) => sdp::localize(&shaped, local, None),
            None => shaped,
        }
    }

    /// The answer to a business's offer: pointed at the endpoint and fitted to the offer
    /// when the offer can connect, which also starts the endpoint.
    pub(super) fn media_answer(&mut self, call: &mut Call, shaped: String) -> String {
        let (Some(local), Some(remote)) = (&self.media_local, Remote::of(&call.offer_sdp)) else {
            return shaped;
        };
        let answer = sdp::localize(&shaped, local, Some(&remote));
        if let Some(ice) = sdp::ice_credentials(&answer) {
            call.media = Some(CallMedia::default());
            self.effects.push(Effect::MediaStart {
                call_id: call.id.clone(),
                ice,
                remote: Box::new(remote),
            });
        }
        answer
    }

    /// The business answered a user's call (pre_accept or accept, or its SIP server's
    /// 200 OK): with an SDP that can connect, the endpoint starts (once).
    pub(super) fn media_from_answer(&mut self, call_id: &CallId, answer: Option<&str>) {
        if self.media_local.is_none() {
            return;
        }
        let Some(remote) = answer.and_then(Remote::of) else {
            return;
        };
        let Some(c) = self.st.calls.get_mut(call_id) else {
            return;
        };
        if c.media.is_some() || c.direction != Direction::UserInitiated {
            return;
        }
        let Some(ice) = sdp::ice_credentials(&c.offer_sdp) else {
            return;
        };
        c.media = Some(CallMedia::default());
        self.effects.push(Effect::MediaStart {
            call_id: call_id.clone(),
            ice,
            remote: Box::new(remote),
        });
    }

    /// The call connected: the user talks, and the business's audio is awaited.
    pub(super) fn media_connected(&mut self, call: &Call) {
        if call.media.is_none() {
            return;
        }
        self.effects.push(Effect::MediaTalk {
            call_id: call.id.clone(),
        });
        let at = self
            .now()
            .saturating_add(self.behaviour.media_timeout_secs.saturating_mul(1000));
        match &call.media {
            Some(m) if !m.flowing => self.schedule(at, Timer::MediaTimeout(call.id.clone())),
            // The audio came early (pre_accept) and stopped before the accept: the
            // mid-call wait starts now.
            Some(m) if m.silent && self.behaviour.media_midcall_timeout_secs > 0 => {
                let at = self.now().saturating_add(
                    self.behaviour
                        .media_midcall_timeout_secs
                        .saturating_mul(1000),
                );
                self.schedule(at, Timer::MediaSilence(call.id.clone()));
            }
            _ => {}
        }
    }

    pub(super) fn media_ended(&mut self, call: &Call) {
        self.cancel(&Timer::MediaTimeout(call.id.clone()));
        self.cancel(&Timer::MediaSilence(call.id.clone()));
        if call.media.is_some() {
            self.effects.push(Effect::MediaStop {
                call_id: call.id.clone(),
            });
        }
    }

    /// The endpoint received the business's first audio.
    pub fn media_first_audio(&mut self, call_id: &CallId) {
        self.revision += 1;
        if let Some(m) = self.call_media(call_id) {
            m.flowing = true;
        }
        self.cancel(&Timer::MediaTimeout(call_id.clone()));
    }

    /// The business's audio stopped after flowing; it had been silent for `silent_ms` of
    /// real time when the endpoint noticed. The user's client waits the rest of
    /// `media_midcall_timeout_secs` on the emulator's clock (cloud-api §5.4: 30 s).
    pub fn media_audio_stopped(&mut self, call_id: &CallId, silent_ms: u64) {
        self.revision += 1;
        let limit_ms = self
            .behaviour
            .media_midcall_timeout_secs
            .saturating_mul(1000);
        let now = self.now();
        let Some(c) = self.st.calls.get_mut(call_id) else {
            return;
        };
        let Some(m) = c.media.as_mut().filter(|m| m.flowing) else {
            return;
        };
        m.silent = true;
        if c.state != CallState::Active || limit_ms == 0 {
            return;
        }
        let at = now.saturating_add(limit_ms.saturating_sub(silent_ms));
        self.cancel(&Timer::MediaSilence(call_id.clone()));
        self.schedule(at, Timer::MediaSilence(call_id.clone()));
    }

    /// The business's audio came again: the mid-call timer stops.
    pub fn media_audio_resumed(&mut self, call_id: &CallId) {
        self.revision += 1;
        if let Some(m) = self.call_media(call_id) {
            m.silent = false;
        }
        self.cancel(&Timer::MediaSilence(call_id.clone()));
    }

    /// The media path failed (a certificate that does not match the fingerprint, a DTLS
    /// failure): the user's client gives up on the call, as it does without media.
    pub fn media_failed(&mut self, call_id: &CallId, why: String) {
        self.revision += 1;
        self.client_ends_call(call_id, why);
    }

    pub(super) fn media_timeout(&mut self, call_id: &CallId) {
        let secs = self.behaviour.media_timeout_secs;
        self.end_active_call_if(
            call_id,
            |m| !m.flowing,
            || format!("no audio from the business within {secs} s of the call connecting"),
        );
    }

    pub(super) fn media_silence(&mut self, call_id: &CallId) {
        let secs = self.behaviour.media_midcall_timeout_secs;
        self.end_active_call_if(
            call_id,
            |m| m.silent,
            || format!("no audio from the business for {secs} s mid-call"),
        );
    }

    fn call_media(&mut self, call_id: &CallId) -> Option<&mut CallMedia> {
        self.st
            .calls
            .get_mut(call_id)
            .and_then(|c| c.media.as_mut())
    }

    /// A media timer fired: the client ends the call if it is still active and its media
    /// is still in the state the timer was set for.
    fn end_active_call_if(
        &mut self,
        call_id: &CallId,
        still: impl Fn(&CallMedia) -> bool,
        why: impl FnOnce() -> String,
    ) {
        let due =
            self.st.calls.get(call_id).is_some_and(|c| {
                c.state == CallState::Active && c.media.as_ref().is_some_and(&still)
            });
        if due {
            self.client_ends_call(call_id, why());
        }
    }

    fn client_ends_call(&mut self, call_id: &CallId, why: String) {
        let Some(c) = self.st.calls.get_mut(call_id) else {
            return;
        };
        if !c.is_ongoing() {
            return;
        }
        let media = c.media.get_or_insert_with(CallMedia::default);
        media.failure = Some(why);
        self.end_call(
            call_id,
            EndReason::Failed(138021),
            Some(client_errors(138021, MEDIA_TIMEOUT)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{AppId, PhoneNumberId, WaId};
    use crate::domain::tenant::{Behaviour, Tenants, DEFAULT_APP_ID, DEFAULT_PHONE_NUMBER_ID};
    use crate::engine::ClockMode;
    use crate::media::sdp::Local;
    use serde_json::{json, Value};

    /// A business's answer a WebRTC stack could connect to.
    const CONNECTABLE: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 40000 UDP/TLS/RTP/SAVPF 111 126\r\nc=IN IP4 127.0.0.1\r\na=ice-ufrag:biz1\r\na=ice-pwd:bizbizbizbizbizbizbizbiz\r\na=fingerprint:sha-256 7B:8B:F0:65\r\na=setup:active\r\na=mid:audio\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:126 telephone-event/8000\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n";

    fn engine(midcall_secs: u64) -> Engine {
        let behaviour = Behaviour {
            media_midcall_timeout_secs: midcall_secs,
            ..Behaviour::default()
        };
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
        e
    }

    fn action(e: &mut Engine, id: &CallId, action: &str) {
        let body = json!({"messaging_product":"whatsapp","call_id":id.as_str(),"action":action,
            "session":{"sdp_type":"answer","sdp":CONNECTABLE}});
        e.call_action(
            &AppId::from(DEFAULT_APP_ID),
            &PhoneNumberId::from(DEFAULT_PHONE_NUMBER_ID),
            body.as_object().unwrap(),
        )
        .unwrap();
    }

    /// A user's call the business accepted with a connectable answer, whose audio came
    /// and then stopped (`silent_ms` of real time before the endpoint noticed).
    fn call_whose_audio_stopped(e: &mut Engine, silent_ms: u64) -> CallId {
        let v = e.user_call(&WaId::from("16315551234"), None).unwrap();
        let id = CallId(v["call_id"].as_str().unwrap().to_owned());
        action(e, &id, "accept");
        assert!(e
            .take_effects()
            .iter()
            .any(|f| matches!(f, Effect::MediaStart { .. })));
        e.media_first_audio(&id);
        let at = e.now() + 60_000;
        while e.advance_step(at) {}
        assert_eq!(e.st.calls[&id].state, CallState::Active, "audio flowed");
        e.media_audio_stopped(&id, silent_ms);
        id
    }

    fn advance(e: &mut Engine, ms: u64) {
        let at = e.now() + ms;
        while e.advance_step(at) {}
    }

    /// The calls webhooks sent for the call, as (event, the change's `value`).
    fn call_webhooks(e: &Engine, id: &CallId) -> Vec<(String, Value)> {
        e.st.outbox
            .iter()
            .filter(|d| d.field == "calls")
            .map(|d| {
                let v: Value = serde_json::from_str(&d.body).unwrap();
                (
                    d.event.clone(),
                    v["entry"][0]["changes"][0]["value"].clone(),
                )
            })
            .filter(|(_, v)| v["calls"][0]["id"] == id.as_str())
            .collect()
    }

    #[test]
    fn audio_that_stops_mid_call_ends_it_with_138021_after_30_s() {
        let mut e = engine(30);
        // The endpoint noticed after 1 s of silence: 29 s are left.
        let id = call_whose_audio_stopped(&mut e, 1_000);
        advance(&mut e, 28_900);
        assert_eq!(e.st.calls[&id].state, CallState::Active);
        advance(&mut e, 200);
        let c = &e.st.calls[&id];
        assert_eq!(c.end_reason, Some(EndReason::Failed(138021)));
        assert_eq!(
            c.media.as_ref().and_then(|m| m.failure.as_deref()),
            Some("no audio from the business for 30 s mid-call")
        );
        assert!(e
            .take_effects()
            .iter()
            .any(|f| matches!(f, Effect::MediaStop { .. })));
        let hooks = call_webhooks(&e, &id);
        let (_, v) = hooks
            .iter()
            .find(|(ev, _)| ev == "terminate")
            .expect("a terminate webhook");
        assert_eq!(v["calls"][0]["status"], "FAILED", "{v}");
        assert_eq!(v["errors"][0]["code"], 138021, "{v}");
        assert_eq!(v["errors"][0]["message"], "Media receive timeout");
    }

    #[test]
    fn audio_that_comes_again_in_time_keeps_the_call() {
        let mut e = engine(30);
        let id = call_whose_audio_stopped(&mut e, 1_000);
        advance(&mut e, 25_000);
        e.media_audio_resumed(&id);
        advance(&mut e, 120_000);
        assert_eq!(e.st.calls[&id].state, CallState::Active);
        assert!(!call_webhooks(&e, &id)
            .iter()
            .any(|(ev, _)| ev == "terminate"));
        // A second stop gets a fresh 30 s.
        e.media_audio_stopped(&id, 1_000);
        advance(&mut e, 28_000);
        assert_eq!(e.st.calls[&id].state, CallState::Active);
        advance(&mut e, 2_000);
        assert_eq!(e.st.calls[&id].end_reason, Some(EndReason::Failed(138021)));
    }

    #[test]
    fn zero_turns_the_mid_call_rule_off() {
        let mut e = engine(0);
        let id = call_whose_audio_stopped(&mut e, 1_000);
        advance(&mut e, 3_600_000);
        assert_eq!(e.st.calls[&id].state, CallState::Active);
    }

    #[test]
    fn a_call_without_audio_still_ends_after_the_start_of_call_20_s() {
        let mut e = engine(30);
        let v = e.user_call(&WaId::from("16315551234"), None).unwrap();
        let id = CallId(v["call_id"].as_str().unwrap().to_owned());
        action(&mut e, &id, "accept");
        // A stop before any audio is not the mid-call rule's.
        e.media_audio_stopped(&id, 1_000);
        advance(&mut e, 19_900);
        assert_eq!(e.st.calls[&id].state, CallState::Active);
        advance(&mut e, 200);
        let c = &e.st.calls[&id];
        assert_eq!(c.end_reason, Some(EndReason::Failed(138021)));
        assert_eq!(
            c.media.as_ref().and_then(|m| m.failure.as_deref()),
            Some("no audio from the business within 20 s of the call connecting")
        );
    }

    #[test]
    fn audio_that_stopped_before_the_accept_is_timed_from_the_accept() {
        let mut e = engine(30);
        let v = e.user_call(&WaId::from("16315551234"), None).unwrap();
        let id = CallId(v["call_id"].as_str().unwrap().to_owned());
        action(&mut e, &id, "pre_accept");
        e.media_first_audio(&id);
        e.media_audio_stopped(&id, 1_000);
        advance(&mut e, 40_000);
        assert_eq!(e.st.calls[&id].state, CallState::PreAccepted);
        action(&mut e, &id, "accept");
        advance(&mut e, 29_900);
        assert_eq!(e.st.calls[&id].state, CallState::Active);
        advance(&mut e, 200);
        assert_eq!(e.st.calls[&id].end_reason, Some(EndReason::Failed(138021)));
    }

    #[test]
    fn a_call_that_ends_first_cancels_the_wait() {
        let mut e = engine(30);
        let id = call_whose_audio_stopped(&mut e, 1_000);
        e.user_hangup(&id).unwrap();
        assert!(!e
            .st
            .timers
            .iter()
            .any(|t| t.2 == Timer::MediaSilence(id.clone())));
        advance(&mut e, 60_000);
        assert_eq!(e.st.calls[&id].end_reason, Some(EndReason::Completed));
    }
}
