//! Business-initiated calls over SIP (cloud-api §8.2, §8.3, §8.6): the emulator plays
//! Meta's gateway, and the engine judges each authenticated INVITE a business sends it —
//! the number, its SIP password and servers, then the rules `/calls` `connect` applies —
//! and rings the user. The user's answer goes back as [`Effect::SipReply`](super::Effect::SipReply) (from
//! `calls.rs`, where every call ends); the business's BYE or CANCEL comes in as
//! [`Engine::sip_bye_from_server`]. No calls webhooks go out (§8.1).

use super::{Engine, Timer};
use crate::domain::call::{Call, Direction, Source};
use crate::domain::error::{ApiError, ErrorKind};
use crate::domain::ids::WaId;
use crate::domain::sdp;
use crate::domain::sip::{Admission, AdmittedCall, IncomingInvite, SipRefusal};
use crate::domain::tenant::PhoneNumber;
use crate::domain::user::User;

impl Engine {
    /// Judges a business's INVITE to the gateway. `password_ok` says whether the
    /// INVITE's digest credentials verify with a SIP password (the gateway's digest code:
    /// the engine has none). Refused INVITEs change nothing when run inside
    /// [`Engine::begin`] / [`Engine::finish`].
    pub fn sip_admit(
        &mut self,
        invite: &IncomingInvite,
        password_ok: &dyn Fn(&str) -> bool,
    ) -> Admission {
        self.revision += 1;
        let Some(phone) = self.phone_by_display(&invite.business_number).cloned() else {
            return Admission::UnknownNumber;
        };
        let sip = &phone.calling.sip;
        let mismatch = || SipRefusal::server_mismatch(&invite.from_host, &phone.id);
        if sip.servers.is_empty() {
            // SIP was never set up: no password to check, no server to match. §8.6 has no
            // text for it; the server-mismatch one says what is wrong.
            return Admission::Refused(mismatch());
        }
        if !sip.servers.iter().any(|s| password_ok(&s.password)) {
            return Admission::WrongPassword;
        }
        if !sip.enabled {
            // SIP DISABLED keeps its servers (§8.1) but none is in use: again the
            // server-mismatch text, the nearest §8.6 has.
            return Admission::Refused(mismatch());
        }
        let subdomains = self.behaviour.sip_from_host_subdomains;
        if !sip
            .servers
            .iter()
            .any(|s| from_host_matches(&invite.from_host, &s.hostname, subdomains))
        {
            return Admission::Refused(mismatch());
        }
        if !phone.calling.enabled {
            // Not in §8.6's table; Graph answers 138000-ish errors for it.
            return Admission::Refused(SipRefusal::new(
                403,
                format!("Calling is not enabled for phone number id {}", phone.id),
            ));
        }
        let sdes = invite.sdp_offer.lines().any(|l| l.starts_with("a=crypto:"));
        // Plain RTP only where allowed: Meta speaks SRTP (DTLS or SDES).
        let plain =
            self.behaviour.sip_plain_rtp && super::rtp_media::is_plain_rtp(&invite.sdp_offer);
        if sdp::check(&invite.sdp_offer, !sdes && !plain).is_err()
            || (sdes && super::rtp_media::offer_keys_usable(&invite.sdp_offer).is_err())
        {
            // §8.6 lists "SDP validation error" among its 403s.
            return Admission::Refused(SipRefusal::new(403, "SDP validation error"));
        }
        let to = WaId(invite.user_number.clone());
        let user = match self.business_call_allowed(&phone, &to) {
            Ok(user) => user,
            Err(e) => return Admission::Refused(refusal_of(&e)),
        };
        // Calling the user's number shows it to this business for 30 days (§13).
        self.note_phone_exchange(&phone.id, &to);
        Admission::Ringing(self.ring_over_sip(&phone, &user, invite, sdes || plain))
    }

    /// The user's phone rings: a business-initiated call signalled over SIP, answered
    /// with SDES keys when the offer carries them (plain RTP for a plain offer where
    /// allowed), DTLS otherwise.
    fn ring_over_sip(
        &mut self,
        phone: &PhoneNumber,
        user: &User,
        invite: &IncomingInvite,
        sdes: bool,
    ) -> AdmittedCall {
        let now = self.now();
        let id = self.ids.call_id(&user.wa_id);
        let keying = if sdes {
            sdp::Keying::Sdes
        } else {
            sdp::Keying::Dtls
        };
        let shaped = sdp::meta_sdp_keyed(&mut self.ids, false, keying);
        let mut call = Call {
            via_sip: true,
            ..Call::ringing(
                id.clone(),
                phone.id.clone(),
                user.wa_id.clone(),
                Direction::BusinessInitiated,
                Source::Business,
                now,
                invite.sdp_offer.clone(),
            )
        };
        // An offer that can connect gets the user's media endpoint in the answer (the
        // 200 OK): the WebRTC one for DTLS, the RTP one for SDES (or plain RTP). Offers
        // without a candidate or an address stay signalling only.
        call.answer_sdp = Some(match keying {
            sdp::Keying::Dtls => self.media_answer(&mut call, shaped),
            sdp::Keying::Sdes => self.rtp_media_answer(&mut call, shaped),
        });
        self.schedule(
            now.saturating_add(self.behaviour.ring_timeout_secs.saturating_mul(1000)),
            Timer::RingTimeout(id.clone()),
        );
        self.remember_call(call);
        AdmittedCall {
            call_id: id,
            phone_number_id: phone.id.clone(),
            answer_headers: self.bsuid_headers(user),
        }
    }

    /// The user's BSUID headers of Meta's 200 OK to a business-initiated call (§8.5), as
    /// far as BSUIDs are on and the user has them.
    fn bsuid_headers(&self, user: &User) -> Vec<(String, String)> {
        if !self.behaviour.bsuid {
            return Vec::new();
        }
        let names = (
            self.behaviour.sip_parent_user_id_header.as_str(),
            self.behaviour.sip_username_header.as_str(),
        );
        [
            ("x-wa-meta-user-id", Some(&user.user_id)),
            (names.0, user.parent_user_id.as_ref()),
            (names.1, user.username.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value?.clone())))
        .collect()
    }
}

/// Whether the From host of an INVITE names the configured SIP server: the same host,
/// or a parent domain of it (cloud-api §8.2); a subdomain of it only with the
/// `sip_from_host_subdomains` switch (a looser reading). IP addresses only match
/// themselves.
fn from_host_matches(from: &str, configured: &str, subdomains: bool) -> bool {
    let norm = |h: &str| {
        h.trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase()
    };
    let (from, configured) = (norm(from), norm(configured));
    if from.is_empty() || configured.is_empty() {
        return false;
    }
    if from == configured {
        return true;
    }
    let is_ip = |h: &str| h.parse::<std::net::IpAddr>().is_ok();
    if is_ip(&from) || is_ip(&configured) {
        return false;
    }
    // A parent domain has a dot of its own: `com` is no SIP domain.
    let below =
        |child: &str, parent: &str| parent.contains('.') && child.ends_with(&format!(".{parent}"));
    below(&configured, &from) || (subdomains && below(&from, &configured))
}

/// A refusal of `/calls` `connect`'s rules as the gateway words it (cloud-api §8.6).
fn refusal_of(e: &ApiError) -> SipRefusal {
    match e.kind {
        ErrorKind::NoCallPermission => SipRefusal::new(
            403,
            "No Approved Call Permission Found: No approved call permission from the recipient",
        ),
        ErrorKind::BusinessCallLimit => {
            SipRefusal::new(403, "Business Initiated Connected Call Per Day Limit Hit")
        }
        // §8.6 lists "duplicate call" among its 403s without the exact text.
        ErrorKind::DuplicateCall => SipRefusal::new(403, "Duplicate call"),
        // The user's client cannot take the call: "not reachable" (480).
        ErrorKind::ReceiverUncallable => SipRefusal::no_answer(),
        // 138013: no business-initiated calling from this number's country; not in §8.6,
        // so Graph's title.
        ErrorKind::BusinessCallingUnavailable => {
            SipRefusal::new(403, "Business-initiated calling is not available")
        }
        // The concurrent-calls limit, and anything else.
        _ => SipRefusal::new(503, "Service Unavailable"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::call::{CallState, Direction};
    use crate::domain::ids::{AppId, PhoneNumberId};
    use crate::domain::permission::Grant;
    use crate::domain::sip::{GatewayReply, SipTransport};
    use crate::domain::tenant::{
        Behaviour, Tenants, DEFAULT_APP_ID, DEFAULT_DISPLAY_NUMBER, DEFAULT_PHONE_NUMBER_ID,
        SECOND_DISPLAY_NUMBER, SECOND_PHONE_NUMBER_ID,
    };
    use crate::engine::{ClockMode, Effect};
    use serde_json::json;

    const USER: &str = "447700900123";
    const DTLS_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 10.0.0.9\r\ns=-\r\nt=0 0\r\nm=audio 4000 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\n";
    const SDES_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 10.0.0.9\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 111\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";

    /// An engine whose UK number has SIP with `sip.example.com`; answers its password.
    fn engine_with_sip(phone: &str) -> (Engine, String) {
        let mut e = Engine::new(
            Tenants::default(),
            Behaviour::default(),
            5,
            ClockMode::Virtual,
            1_767_225_600_000,
        );
        let (app, phone) = (AppId::from(DEFAULT_APP_ID), PhoneNumberId::from(phone));
        let body = json!({"calling":{"sip":{"status":"ENABLED","servers":[{"hostname":"sip.example.com","port":5061}]}}});
        e.post_settings(&app, &phone, body.as_object().unwrap())
            .unwrap();
        let settings = e.get_settings(&app, &phone, true).unwrap();
        let password = settings["calling"]["sip"]["servers"][0]["sip_user_password"]
            .as_str()
            .unwrap()
            .to_owned();
        e.take_effects();
        (e, password)
    }

    fn invite(business: &str, from_host: &str, offer: &str) -> IncomingInvite {
        IncomingInvite {
            business_number: business.into(),
            user_number: USER.into(),
            from_host: from_host.into(),
            transport: SipTransport::Tcp,
            sdp_offer: offer.into(),
        }
    }

    /// `sip_admit` as the server runs it: a refused INVITE changes nothing.
    fn admit(e: &mut Engine, invite: &IncomingInvite, password: &str) -> Admission {
        e.begin();
        let a = e.sip_admit(invite, &|p| p == password);
        e.finish(matches!(a, Admission::Ringing(_)));
        a
    }

    fn refusal(a: Admission) -> (u16, String) {
        match a {
            Admission::Refused(r) => (r.status, r.reason),
            other => panic!("not refused: {other:?}"),
        }
    }

    fn ringing(a: Admission) -> AdmittedCall {
        match a {
            Admission::Ringing(call) => call,
            other => panic!("not ringing: {other:?}"),
        }
    }

    fn replies(e: &mut Engine) -> Vec<GatewayReply> {
        e.take_effects()
            .into_iter()
            .filter_map(|effect| match effect {
                Effect::SipReply { reply, .. } => Some(reply),
                _ => None,
            })
            .collect()
    }

    fn grant(e: &mut Engine) {
        let (phone, user) = (
            PhoneNumberId::from(SECOND_PHONE_NUMBER_ID),
            WaId::from(USER),
        );
        e.permission(&phone, &user).grant = Grant::Permanent;
    }

    #[test]
    fn an_invite_is_judged_on_the_number_its_password_and_its_servers() {
        let (mut e, password) = engine_with_sip(SECOND_PHONE_NUMBER_ID);
        let ok = invite(SECOND_DISPLAY_NUMBER, "sip.example.com", DTLS_OFFER);
        assert_eq!(
            admit(
                &mut e,
                &invite("449999999999", "sip.example.com", DTLS_OFFER),
                &password
            ),
            Admission::UnknownNumber
        );
        assert_eq!(admit(&mut e, &ok, "not-it"), Admission::WrongPassword);
        let evil = admit(
            &mut e,
            &invite(SECOND_DISPLAY_NUMBER, "evil.example.org", DTLS_OFFER),
            &password,
        );
        let Admission::Refused(r) = evil else {
            panic!("{evil:?}")
        };
        assert_eq!(r.status, 403);
        assert_eq!(r.warning.as_deref(), Some(r.reason.as_str()));
        assert!(r.reason.starts_with("SIP server evil.example.org from INVITE does not match any SIP server configured for phone number id 110972043181256"));
        let no_sdp = admit(
            &mut e,
            &invite(SECOND_DISPLAY_NUMBER, "sip.example.com", "hello"),
            &password,
        );
        assert_eq!(refusal(no_sdp), (403, "SDP validation error".into()));
        // Refused INVITEs leave no user, call or permission behind.
        assert!(!e.st.recipients.contains_user(&WaId::from(USER)));
        assert!(e.st.calls.is_empty());
        assert!(e.st.permissions.is_empty());
    }

    #[test]
    fn the_rules_of_business_initiated_calls_apply_with_sip_statuses() {
        let (mut e, password) = engine_with_sip(SECOND_PHONE_NUMBER_ID);
        let ok = invite(SECOND_DISPLAY_NUMBER, "sip.example.com", DTLS_OFFER);
        assert_eq!(
            refusal(admit(&mut e, &ok, &password)),
            (
                403,
                "No Approved Call Permission Found: No approved call permission from the recipient"
                    .into()
            )
        );
        grant(&mut e);
        ringing(admit(&mut e, &ok, &password));
        assert_eq!(
            refusal(admit(&mut e, &ok, &password)),
            (403, "Duplicate call".into())
        );
        // A +1 number cannot call users (138013), over SIP as over Graph.
        let (mut us, password) = engine_with_sip(DEFAULT_PHONE_NUMBER_ID);
        let from_us = invite(DEFAULT_DISPLAY_NUMBER, "sip.example.com", DTLS_OFFER);
        assert_eq!(
            refusal(admit(&mut us, &from_us, &password)),
            (403, "Business-initiated calling is not available".into())
        );
    }

    #[test]
    fn the_user_answers_then_hangs_up_over_sip_without_calls_webhooks() {
        let (mut e, password) = engine_with_sip(SECOND_PHONE_NUMBER_ID);
        grant(&mut e);
        let call = ringing(admit(
            &mut e,
            &invite(SECOND_DISPLAY_NUMBER, "sip.example.com", DTLS_OFFER),
            &password,
        ));
        assert_eq!(call.phone_number_id.as_str(), SECOND_PHONE_NUMBER_ID);
        let user_id = e.st.recipients.user(&WaId::from(USER)).unwrap().user_id;
        assert_eq!(
            call.answer_headers,
            vec![("x-wa-meta-user-id".to_owned(), user_id)]
        );
        let c = e.st.calls[&call.call_id].clone();
        assert_eq!(
            (c.direction, c.state, c.via_sip),
            (Direction::BusinessInitiated, CallState::Ringing, true)
        );
        assert_eq!(c.offer_sdp, DTLS_OFFER);
        e.user_answer(&call.call_id, None).unwrap();
        let answer = e.st.calls[&call.call_id].answer_sdp.clone().unwrap();
        assert!(answer.contains("a=fingerprint:sha-256 "), "{answer}");
        assert_eq!(replies(&mut e), vec![GatewayReply::Answer { sdp: answer }]);
        while e.advance_step(e.now() + 37_000) {}
        e.user_hangup(&call.call_id).unwrap();
        assert_eq!(
            replies(&mut e),
            vec![GatewayReply::Bye { duration_secs: 37 }]
        );
        let calls_webhooks = e.st.outbox.iter().filter(|d| d.field == "calls").count();
        assert_eq!(
            calls_webhooks, 0,
            "no calls webhooks in SIP mode (cloud-api §8.1)"
        );
    }

    #[test]
    fn declined_unanswered_and_cancelled_calls() {
        let (mut e, password) = engine_with_sip(SECOND_PHONE_NUMBER_ID);
        grant(&mut e);
        let ok = invite(SECOND_DISPLAY_NUMBER, "sip.example.com", DTLS_OFFER);
        let call = ringing(admit(&mut e, &ok, &password));
        e.user_decline(&call.call_id).unwrap();
        assert_eq!(
            replies(&mut e),
            vec![GatewayReply::Refuse(SipRefusal::declined())]
        );
        let call = ringing(admit(&mut e, &ok, &password));
        let ring = e.behaviour.ring_timeout_secs * 1000;
        while e.advance_step(e.now() + ring) {}
        assert_eq!(
            replies(&mut e),
            vec![GatewayReply::Refuse(SipRefusal::no_answer())]
        );
        assert_eq!(e.st.calls[&call.call_id].state, CallState::Ended);
        // The business cancels: the call ends, nothing goes back.
        let call = ringing(admit(&mut e, &ok, &password));
        e.sip_bye_from_server(&call.call_id);
        assert_eq!(e.st.calls[&call.call_id].state, CallState::Ended);
        assert!(replies(&mut e).is_empty());
        assert!(e.user_answer(&call.call_id, None).is_err());
    }

    #[test]
    fn an_sdes_offer_gets_an_sdes_answer() {
        let (mut e, password) = engine_with_sip(SECOND_PHONE_NUMBER_ID);
        grant(&mut e);
        let call = ringing(admit(
            &mut e,
            &invite(SECOND_DISPLAY_NUMBER, "sip.example.com", SDES_OFFER),
            &password,
        ));
        e.user_answer(&call.call_id, None).unwrap();
        let replies = replies(&mut e);
        let [GatewayReply::Answer { sdp }] = replies.as_slice() else {
            panic!("one answer: {replies:?}")
        };
        assert!(sdp.contains("m=audio 3480 RTP/SAVP 111 126"), "{sdp}");
        assert!(
            sdp.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
            "{sdp}"
        );
        assert!(!sdp.contains("a=fingerprint"), "{sdp}");
    }

    #[test]
    fn an_sdes_offer_with_an_address_is_answered_with_the_users_rtp_endpoint() {
        let (mut e, password) = engine_with_sip(SECOND_PHONE_NUMBER_ID);
        e.media_local = Some(crate::media::sdp::Local {
            addr: "127.0.0.1:51000".parse().unwrap(),
            fingerprint: "AB:CD".into(),
        });
        grant(&mut e);
        let offer = SDES_OFFER
            .replace("m=audio 4000 RTP/SAVP 111\r\n", "m=audio 4000 RTP/SAVP 96 101\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n")
            .replace("a=crypto:1 ", "a=crypto:3 ");
        let call = ringing(admit(
            &mut e,
            &invite(SECOND_DISPLAY_NUMBER, "sip.example.com", &offer),
            &password,
        ));
        let sessions: Vec<_> = e
            .take_effects()
            .into_iter()
            .filter_map(|f| match f {
                Effect::MediaStartRtp { session, .. } => Some(session),
                _ => None,
            })
            .collect();
        assert_eq!(sessions.len(), 1, "the endpoint starts with the ringing");
        assert_eq!(sessions[0].remote.addr, "127.0.0.1:4000".parse().unwrap());
        e.user_answer(&call.call_id, None).unwrap();
        let replies = replies(&mut e);
        let [GatewayReply::Answer { sdp }] = replies.as_slice() else {
            panic!("one answer: {replies:?}")
        };
        assert!(sdp.contains("m=audio 51000 RTP/SAVP 96 101\r\n"), "{sdp}");
        assert!(sdp.contains("c=IN IP4 127.0.0.1\r\n"), "{sdp}");
        assert!(
            sdp.contains("a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:"),
            "{sdp}"
        );
        // The endpoint sends with the key the answer announces.
        let ours = crate::media::srtp::Crypto::of_sdp(sdp).unwrap().unwrap();
        assert_eq!(sessions[0].local_key.as_ref(), Some(&ours.key));
    }

    #[test]
    fn plain_rtp_offers_and_other_suites_are_refused_unless_plain_rtp_is_allowed() {
        let plain = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 111\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:111 opus/48000/2\r\n";
        let other_suite = SDES_OFFER.replace("HMAC_SHA1_80", "HMAC_SHA1_32");
        for offer in [plain, other_suite.as_str()] {
            let (mut e, password) = engine_with_sip(SECOND_PHONE_NUMBER_ID);
            grant(&mut e);
            let r = admit(
                &mut e,
                &invite(SECOND_DISPLAY_NUMBER, "sip.example.com", offer),
                &password,
            );
            assert_eq!(refusal(r), (403, "SDP validation error".into()));
        }
        let (mut e, password) = engine_with_sip(SECOND_PHONE_NUMBER_ID);
        e.behaviour.sip_plain_rtp = true;
        e.media_local = Some(crate::media::sdp::Local {
            addr: "127.0.0.1:51000".parse().unwrap(),
            fingerprint: "AB:CD".into(),
        });
        grant(&mut e);
        let call = ringing(admit(
            &mut e,
            &invite(SECOND_DISPLAY_NUMBER, "sip.example.com", plain),
            &password,
        ));
        assert!(e.take_effects().iter().any(
            |f| matches!(f, Effect::MediaStartRtp { session, .. } if session.local_key.is_none())
        ));
        let answer = e.st.calls[&call.call_id].answer_sdp.clone().unwrap();
        assert!(answer.contains("m=audio 51000 RTP/AVP 111\r\n"), "{answer}");
        assert!(!answer.contains("a=crypto"), "{answer}");
    }

    #[test]
    fn a_connectable_dtls_offer_is_answered_with_the_users_endpoint() {
        let (mut e, password) = engine_with_sip(SECOND_PHONE_NUMBER_ID);
        e.media_local = Some(crate::media::sdp::Local {
            addr: "127.0.0.1:51000".parse().unwrap(),
            fingerprint: "AB:CD".into(),
        });
        grant(&mut e);
        let connectable = format!("{DTLS_OFFER}a=rtpmap:111 opus/48000/2\r\na=ice-ufrag:biz1\r\na=ice-pwd:bizbizbizbizbizbizbizbiz\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n");
        let call = ringing(admit(
            &mut e,
            &invite(SECOND_DISPLAY_NUMBER, "sip.example.com", &connectable),
            &password,
        ));
        let starts = e
            .take_effects()
            .into_iter()
            .filter(|f| matches!(f, Effect::MediaStart { .. }))
            .count();
        assert_eq!(starts, 1, "the endpoint starts with the ringing");
        e.user_answer(&call.call_id, None).unwrap();
        let replies = replies(&mut e);
        let [GatewayReply::Answer { sdp }] = replies.as_slice() else {
            panic!("one answer: {replies:?}")
        };
        assert!(
            sdp.contains("m=audio 51000 UDP/TLS/RTP/SAVPF 111\r\n"),
            "{sdp}"
        );
        assert!(
            sdp.contains("a=candidate:1 1 udp 2113937151 127.0.0.1 51000 typ host"),
            "{sdp}"
        );
        assert!(sdp.contains("a=fingerprint:sha-256 AB:CD\r\n"), "{sdp}");
        assert!(sdp.contains("a=setup:passive\r\n"), "{sdp}");
        // An offer without a candidate: the answer is Meta's shape, signalling only.
        e.user_hangup(&call.call_id).unwrap();
        e.take_effects();
        let plain = ringing(admit(
            &mut e,
            &invite(SECOND_DISPLAY_NUMBER, "sip.example.com", DTLS_OFFER),
            &password,
        ));
        assert!(!e
            .take_effects()
            .iter()
            .any(|f| matches!(f, Effect::MediaStart { .. })));
        assert!(e.st.calls[&plain.call_id].media.is_none());
        let answer = e.st.calls[&plain.call_id].answer_sdp.clone().unwrap();
        assert!(answer.contains("m=audio 3480 "), "{answer}");
    }

    #[test]
    fn from_hosts_match_the_server_and_its_parents_and_subdomains_only_when_asked() {
        for (from, configured) in [
            ("sip.example.com", "sip.example.com"),
            ("SIP.Example.com.", "sip.example.com"),
            ("example.com", "sip.example.com"),
            ("127.0.0.1", "127.0.0.1"),
            ("[::1]", "::1"),
        ] {
            for subdomains in [false, true] {
                assert!(
                    from_host_matches(from, configured, subdomains),
                    "{from} vs {configured}"
                );
            }
        }
        assert!(!from_host_matches(
            "pbx1.sip.example.com",
            "sip.example.com",
            false
        ));
        assert!(from_host_matches(
            "pbx1.sip.example.com",
            "sip.example.com",
            true
        ));
        for (from, configured) in [
            ("evil.example.org", "sip.example.com"),
            ("com", "sip.example.com"),
            ("xsip.example.com", "sip.example.com"),
            ("127.0.0.2", "127.0.0.1"),
            ("0.1", "127.0.0.1"),
            ("", "sip.example.com"),
        ] {
            assert!(
                !from_host_matches(from, configured, true),
                "{from} vs {configured}"
            );
        }
    }
}
