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
        if let Some(m) = self
            .st
            .calls
            .get_mut(call_id)
            .and_then(|c| c.media.as_mut())
        {
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
        if let Some(m) = self
            .st
            .calls
            .get_mut(call_id)
            .and_then(|c| c.media.as_mut())
        {
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
        let waiting = self.st.calls.get(call_id).is_some_and(|c| {
            c.state == CallState::Active && c.media.as_ref().is_some_and(|m| !m.flowing)
        });
        if waiting {
            self.client_ends_call(
                call_id,
                format!("no audio from the business within {secs} s of the call connecting"),
            );
        }
    }

    pub(super) fn media_silence(&mut self, call_id: &CallId) {
        let secs = self.behaviour.media_midcall_timeout_secs;
        let silent = self.st.calls.get(call_id).is_some_and(|c| {
            c.state == CallState::Active && c.media.as_ref().is_some_and(|m| m.silent)
        });
        if silent {
            self.client_ends_call(
                call_id,
                format!("no audio from the business for {secs} s mid-call"),
            );
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
