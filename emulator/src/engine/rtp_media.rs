//! The media of SIP calls keyed by SDES (`a=crypto`, cloud-api §8.4) or, with
//! `sip_plain_rtp`, plain RTP: the core's side. It points the emulator's SDES SDP at the
//! user's RTP endpoint (the media socket's address and port; the key stays the one drawn
//! from the seeded ids, and the endpoint sends with it) and starts the endpoint with the
//! business's address and key ([`Effect::MediaStartRtp`]). From there the call's media is
//! the same as a WebRTC call's (`media.rs`): it talks once connected, and no audio within
//! `media_timeout_secs` ends it with 138021.
//!
//! An SDP that names nothing to send to (`c=0.0.0.0`, port 0) leaves the call signalling
//! only, as do DTLS SDPs without a candidate.

use super::{Effect, Engine};
use crate::domain::call::{Call, CallMedia, Direction};
use crate::domain::ids::CallId;
use crate::media::sdp::{self, RtpRemote, RtpSession};
use crate::media::srtp::Crypto;

impl Engine {
    /// A user-initiated SDES offer pointed at the endpoint (unchanged without one).
    pub(super) fn sdes_offer(&self, shaped: String) -> String {
        match &self.media_local {
            Some(local) => sdp::localize_rtp(&shaped, local.addr, None),
            None => shaped,
        }
    }

    /// The business's SIP server answered the user's SDES offer (its 200 OK): with an
    /// address and a key (or plain RTP where allowed), the endpoint starts. `Some(why)`:
    /// the answer's key cannot be used (another suite, an MKI), and the user's client
    /// gives up on the call once connected.
    pub(super) fn rtp_media_from_answer(
        &mut self,
        call_id: &CallId,
        answer: &str,
    ) -> Option<String> {
        self.media_local.as_ref()?;
        let plain_allowed = self.behaviour.sip_plain_rtp;
        let c = self.st.calls.get_mut(call_id)?;
        if c.media.is_some() || c.direction != Direction::UserInitiated {
            return None;
        }
        let ours = Crypto::of_sdp(&c.offer_sdp)?.ok()?;
        let remote = match RtpRemote::of(answer)? {
            Ok(r) => r,
            Err(why) => {
                c.media = Some(CallMedia::default());
                return Some(format!("the business's SDES answer cannot be used: {why}"));
            }
        };
        if remote.crypto.is_none() && !plain_allowed {
            // RTP/AVP without a key: Meta speaks only SRTP; signalling only, as before.
            return None;
        }
        let local_key = remote.crypto.is_some().then_some(ours.key);
        c.media = Some(CallMedia::default());
        self.effects.push(Effect::MediaStartRtp {
            call_id: call_id.clone(),
            session: Box::new(RtpSession { remote, local_key }),
        });
        None
    }

    /// The answer to a business's SDES (or, with `sip_plain_rtp`, plain RTP) offer:
    /// pointed at the endpoint and fitted to the offer when the offer names an address,
    /// which also starts the endpoint; Meta's shape, signalling only, otherwise.
    pub(super) fn rtp_media_answer(&mut self, call: &mut Call, shaped: String) -> String {
        let Some(local) = &self.media_local else {
            return shaped;
        };
        let Some(Ok(remote)) = RtpRemote::of(&call.offer_sdp) else {
            return shaped;
        };
        let answer = sdp::localize_rtp(&shaped, local.addr, Some(&remote));
        let local_key = match &remote.crypto {
            Some(_) => match Crypto::of_sdp(&answer) {
                Some(Ok(c)) => Some(c.key),
                _ => return answer,
            },
            None => None,
        };
        call.media = Some(CallMedia::default());
        self.effects.push(Effect::MediaStartRtp {
            call_id: call.id.clone(),
            session: Box::new(RtpSession { remote, local_key }),
        });
        answer
    }
}

/// Whether a business's INVITE offer can be taken: `Err(why)` when its `a=crypto` lines
/// offer no key of Meta's suite (the gateway answers 403 "SDP validation error", §8.6).
pub(super) fn offer_keys_usable(offer: &str) -> Result<(), String> {
    match Crypto::of_sdp(offer) {
        // RFC 4568: several keys may be offered; one of Meta's suite is enough.
        Some(Err(why)) if !offer_has_usable_crypto(offer) => Err(why),
        _ => Ok(()),
    }
}

fn offer_has_usable_crypto(offer: &str) -> bool {
    offer.lines().any(|l| {
        l.trim_end()
            .strip_prefix("a=crypto:")
            .is_some_and(|v| Crypto::parse(v).is_ok())
    })
}

/// Whether an offer is plain RTP: `RTP/AVP` audio, no key, no DTLS fingerprint.
pub(super) fn is_plain_rtp(offer: &str) -> bool {
    let audio = offer
        .lines()
        .find(|l| l.starts_with("m=audio "))
        .and_then(|m| m.split(' ').nth(2));
    audio.is_some_and(|p| p.trim_end() == "RTP/AVP")
        && !offer
            .lines()
            .any(|l| l.starts_with("a=crypto:") || l.starts_with("a=fingerprint:"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::call::{CallState, EndReason};
    use crate::domain::tenant::Behaviour;
    use crate::engine::sip::tests::call;

    /// A SIP server's SDES answer: its media at 127.0.0.1:40000, its own key.
    const SDES_ANSWER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 40000 RTP/SAVP 111 126\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:126 telephone-event/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\r\n";

    fn engine(plain_rtp: bool) -> Engine {
        let behaviour = Behaviour {
            sip_plain_rtp: plain_rtp,
            ..Behaviour::default()
        };
        crate::engine::sip::tests::engine_with("SDES", behaviour)
    }

    fn rtp_starts(effects: &[Effect]) -> Vec<RtpSession> {
        effects
            .iter()
            .filter_map(|f| match f {
                Effect::MediaStartRtp { session, .. } => Some((**session).clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_sdes_200_ok_starts_the_endpoint_with_both_keys_and_138021_follows_silence() {
        let mut e = engine(false);
        let (id, offer) = call(&mut e);
        assert!(
            offer.contains("m=audio 51000 RTP/SAVP 111 126\r\n"),
            "{offer}"
        );
        assert!(offer.contains("c=IN IP4 127.0.0.1\r\n"), "{offer}");
        let ours = Crypto::of_sdp(&offer).unwrap().unwrap();
        // The key is still drawn from the seeded ids: the same seed, the same offer.
        assert_eq!(call(&mut engine(false)).1, offer);
        e.sip_answered(&id, SDES_ANSWER.into());
        let effects = e.take_effects();
        let starts = rtp_starts(&effects);
        let [s] = starts.as_slice() else {
            panic!("one RTP start: {effects:?}")
        };
        assert_eq!(s.local_key.as_ref(), Some(&ours.key));
        assert_eq!(s.remote.addr, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(s.remote.crypto.as_ref().unwrap().key.key[..2], [0, 1]);
        assert!(effects
            .iter()
            .any(|f| matches!(f, Effect::MediaTalk { .. })));
        // No audio: the user's client hangs up with 138021, as for WebRTC calls.
        let timeout = e.behaviour.media_timeout_secs * 1000;
        while e.advance_step(e.now() + timeout) {}
        let c = &e.st.calls[&id];
        assert_eq!(c.end_reason, Some(EndReason::Failed(138021)));
        assert!(e
            .take_effects()
            .iter()
            .any(|f| matches!(f, Effect::SipHangup { .. })));
    }

    #[test]
    fn an_answer_of_another_suite_ends_the_call_with_the_reason() {
        let mut e = engine(false);
        let (id, _) = call(&mut e);
        let other = SDES_ANSWER.replace("HMAC_SHA1_80", "HMAC_SHA1_32");
        e.sip_answered(&id, other);
        assert!(rtp_starts(&e.take_effects()).is_empty());
        let c = &e.st.calls[&id];
        assert_eq!(c.end_reason, Some(EndReason::Failed(138021)));
        let why = c.media.as_ref().and_then(|m| m.failure.clone()).unwrap();
        assert!(why.contains("AES_CM_128_HMAC_SHA1_32"), "{why}");
    }

    #[test]
    fn answers_with_no_address_or_plain_rtp_stay_signalling_only_unless_allowed() {
        for answer in [
            SDES_ANSWER.replace("m=audio 40000", "m=audio 0"),
            SDES_ANSWER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0"),
        ] {
            let mut e = engine(true);
            let (id, _) = call(&mut e);
            e.sip_answered(&id, answer);
            assert!(rtp_starts(&e.take_effects()).is_empty());
            assert_eq!(e.st.calls[&id].media, None);
        }
        let plain = SDES_ANSWER
            .replace("RTP/SAVP", "RTP/AVP")
            .replace("a=crypto:", "a=x-crypto:");
        let mut e = engine(false);
        let (id, _) = call(&mut e);
        e.sip_answered(&id, plain.clone());
        assert!(rtp_starts(&e.take_effects()).is_empty());
        let timeout = e.behaviour.media_timeout_secs * 1000;
        while e.advance_step(e.now() + 2 * timeout) {}
        assert_eq!(e.st.calls[&id].state, CallState::Active);
        // With sip_plain_rtp: the endpoint speaks plain RTP.
        let mut e = engine(true);
        let (id, _) = call(&mut e);
        e.sip_answered(&id, plain);
        let starts = rtp_starts(&e.take_effects());
        assert_eq!(starts.len(), 1);
        assert_eq!(
            (
                starts[0].local_key.as_ref(),
                starts[0].remote.crypto.as_ref()
            ),
            (None, None)
        );
        assert!(e.st.calls[&id].media.is_some());
    }

    #[test]
    fn plain_offers_are_told_apart() {
        assert!(is_plain_rtp("v=0\r\nm=audio 4000 RTP/AVP 111\r\n"));
        assert!(!is_plain_rtp(
            "v=0\r\nm=audio 4000 RTP/SAVP 111\r\na=crypto:1 X\r\n"
        ));
        assert!(!is_plain_rtp(
            "v=0\r\nm=audio 4000 RTP/AVP 111\r\na=fingerprint:sha-256 AA\r\n"
        ));
        assert!(offer_keys_usable(SDES_ANSWER).is_ok());
        let both = SDES_ANSWER.replace(
            "a=crypto:1 ",
            "a=crypto:2 AES_256_CM_HMAC_SHA1_80 inline:x\r\na=crypto:1 ",
        );
        assert!(
            offer_keys_usable(&both).is_ok(),
            "one of Meta's suite is enough"
        );
        let other = SDES_ANSWER.replace("HMAC_SHA1_80", "HMAC_SHA1_32");
        assert!(offer_keys_usable(&other).is_err());
    }
}
