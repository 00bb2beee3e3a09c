use std::time::{Duration, Instant};

use super::*;
use crate::domain::ids::PhoneNumberId;
use crate::sip::digest::{authorization, parse_challenge, ClientNonce};

const CALL_ID: &str = "b2c-3f1e@sip.example.com";
const RURI: &str = "sip:+447700900123@127.0.0.1:5060";
const BUSINESS: &str = "447700900461";
const PASSWORD: &str = "s3cret-sip-password";
const OFFER: &str =
    "v=0\r\nm=audio 4000 RTP/SAVP 111\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n";

fn cfg() -> UacConfig {
    UacConfig {
        t1: Duration::from_millis(500),
        t2: Duration::from_secs(4),
        timer_c: Duration::from_secs(180),
        linger: Duration::from_secs(32),
    }
}

fn uas(transport: SipTransport, t0: Instant) -> Uas {
    Uas::new(CALL_ID, cfg(), transport, "127.0.0.1:5060".into(), 7, t0)
}

fn invite(branch: &str, cseq: u32, auth: Option<&str>) -> SipMessage {
    let mut m = SipMessage::request("INVITE", RURI)
        .with("Via", format!("SIP/2.0/UDP 10.0.0.9:5070;branch={branch}"))
        .with("Max-Forwards", "70")
        .with(
            "From",
            format!("<sip:+{BUSINESS}@sip.example.com>;tag=biz1"),
        )
        .with("To", "<sip:+447700900123@wa.meta.vc>")
        .with("Call-ID", CALL_ID)
        .with("CSeq", format!("{cseq} INVITE"))
        .with("Contact", "<sip:pbx@10.0.0.9:5070;transport=udp>")
        .with("Record-Route", "<sip:edge.example.com;lr>")
        .with("Content-Type", "application/sdp");
    if let Some(a) = auth {
        m.push("Proxy-Authorization", a);
    }
    m.body = OFFER.into();
    m
}

/// A request of the business inside the dialog (BYE, re-INVITE, OPTIONS, ACK of a 2xx).
fn in_dialog(method: &str, branch: &str, cseq: u32, to_tag: &str) -> SipMessage {
    SipMessage::request(method, "sip:+447700900123@127.0.0.1:5060")
        .with("Via", format!("SIP/2.0/UDP 10.0.0.9:5070;branch={branch}"))
        .with(
            "From",
            format!("<sip:+{BUSINESS}@sip.example.com>;tag=biz1"),
        )
        .with("To", format!("<sip:+447700900123@wa.meta.vc>;tag={to_tag}"))
        .with("Call-ID", CALL_ID)
        .with("CSeq", format!("{cseq} {method}"))
}

fn sent(out: &[Output]) -> Vec<SipMessage> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(text) => Some(SipMessage::parse(text.as_bytes()).expect("parsable")),
            _ => None,
        })
        .collect()
}

fn statuses(out: &[Output]) -> Vec<u16> {
    sent(out).iter().filter_map(SipMessage::status).collect()
}

fn events(out: &[Output]) -> Vec<GatewayEvent> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(*e),
            _ => None,
        })
        .collect()
}

fn reason(msg: &SipMessage) -> &str {
    match &msg.start {
        super::super::message::StartLine::Response { reason, .. } => reason,
        _ => "",
    }
}

/// The business answers the 407 as a real UAC would: from the challenge it received.
fn answer(challenge_407: &SipMessage, password: &str) -> String {
    let ch = parse_challenge(challenge_407.header("proxy-authenticate").unwrap()).unwrap();
    let client = ClientNonce {
        cnonce: "c0ffee".into(),
        nc: 1,
    };
    authorization(&ch, BUSINESS, password, "INVITE", RURI, "", &client).unwrap()
}

fn admitted_call() -> AdmittedCall {
    AdmittedCall {
        call_id: CallId::from("wacid.ABC"),
        phone_number_id: PhoneNumberId("110972043181256".into()),
        answer_headers: vec![("x-wa-meta-user-id".into(), "GB.123".into())],
    }
}

/// Challenged, authenticated and admitted: the user's phone rings. Answers the 407.
fn ringing(u: &mut Uas, t0: Instant) -> SipMessage {
    let out = u.on_message(t0, &invite("z9hG4bK1", 1, None));
    let challenge = sent(&out).pop().unwrap();
    u.on_message(t0, &in_dialog("ACK", "z9hG4bK1", 1, "x"));
    let auth = answer(&challenge, PASSWORD);
    let out = u.on_message(t0, &invite("z9hG4bK2", 2, Some(&auth)));
    assert!(
        out.iter().any(|o| matches!(o, Output::Admit { .. })),
        "{out:?}"
    );
    let out = u.admitted(t0, Ok(admitted_call()));
    assert_eq!(statuses(&out), vec![180]);
    challenge
}

fn to_tag(msg: &SipMessage) -> String {
    header_param(msg.header("to").unwrap(), "tag")
        .unwrap()
        .to_owned()
}

#[test]
fn an_invite_without_credentials_gets_trying_then_metas_407() {
    let t0 = Instant::now();
    let mut u = uas(SipTransport::Udp, t0);
    let out = u.on_message(t0, &invite("z9hG4bK1", 1, None));
    let msgs = sent(&out);
    assert_eq!(statuses(&out), vec![100, 407]);
    assert_eq!(msgs[0].header("to"), Some("<sip:+447700900123@wa.meta.vc>"));
    let challenge = &msgs[1];
    assert_eq!(reason(challenge), "Proxy Authentication Required");
    assert!(header_param(challenge.header("to").unwrap(), "tag").is_some());
    let ch = parse_challenge(challenge.header("proxy-authenticate").unwrap()).unwrap();
    assert_eq!(ch.realm, "wa.meta.vc");
    assert_eq!(ch.algorithm.as_deref(), Some("MD5"));
    assert_eq!(ch.qop, vec!["auth"]);
    assert_eq!(ch.nonce.len(), 16);
    assert!(ch.opaque.is_some());
    // Exactly Meta's spelling (cloud-api §8.2).
    let value = challenge.header("proxy-authenticate").unwrap();
    assert!(
        value.starts_with("Digest realm=\"wa.meta.vc\",nonce=\""),
        "{value}"
    );
    assert!(value.ends_with("\",algorithm=MD5,qop=\"auth\""), "{value}");
    assert!(events(&out).is_empty());
}

#[test]
fn the_407_is_resent_over_udp_until_its_ack() {
    let t0 = Instant::now();
    let mut u = uas(SipTransport::Udp, t0);
    u.on_message(t0, &invite("z9hG4bK1", 1, None));
    assert_eq!(u.next_deadline(), Some(t0 + Duration::from_millis(500)));
    let out = u.on_timeout(t0 + Duration::from_millis(500));
    assert_eq!(statuses(&out), vec![407]);
    // Timer G doubles: next at +1 s.
    assert_eq!(u.next_deadline(), Some(t0 + Duration::from_millis(1500)));
    // A retransmitted INVITE gets the 407 again.
    let out = u.on_message(t0, &invite("z9hG4bK1", 1, None));
    assert_eq!(statuses(&out), vec![407]);
    u.on_message(t0, &in_dialog("ACK", "z9hG4bK1", 1, "x"));
    assert!(u.on_timeout(t0 + Duration::from_millis(1500)).is_empty());
    // Idle, waiting for the authenticated INVITE; then gone.
    assert!(!u.is_finished());
    u.on_timeout(t0 + Duration::from_secs(40));
    assert!(u.is_finished());
}

#[test]
fn over_tcp_nothing_is_resent() {
    let t0 = Instant::now();
    let mut u = uas(SipTransport::Tcp, t0);
    u.on_message(t0, &invite("z9hG4bK1", 1, None));
    assert!(u.on_timeout(t0 + Duration::from_secs(2)).is_empty());
}

#[test]
fn the_authenticated_invite_is_handed_to_the_engine() {
    let t0 = Instant::now();
    let mut u = uas(SipTransport::Tcp, t0);
    let challenge = sent(&u.on_message(t0, &invite("z9hG4bK1", 1, None)))
        .pop()
        .unwrap();
    let auth = answer(&challenge, PASSWORD);
    let out = u.on_message(t0, &invite("z9hG4bK2", 2, Some(&auth)));
    assert_eq!(statuses(&out), vec![100]);
    let (invite, credentials) = out
        .iter()
        .find_map(|o| match o {
            Output::Admit {
                invite,
                credentials,
            } => Some((*invite.clone(), *credentials.clone())),
            _ => None,
        })
        .expect("an Admit");
    assert_eq!(invite.business_number, BUSINESS);
    assert_eq!(invite.user_number, "447700900123");
    assert_eq!(invite.from_host, "sip.example.com");
    assert_eq!(invite.transport, SipTransport::Tcp);
    assert_eq!(invite.sdp_offer, OFFER);
    assert!(digest::verify(&credentials, PASSWORD, "INVITE", OFFER));
    assert!(!digest::verify(&credentials, "wrong", "INVITE", OFFER));
}

#[test]
fn credentials_for_another_nonce_are_challenged_again_as_stale() {
    let t0 = Instant::now();
    let mut u = uas(SipTransport::Udp, t0);
    // A 407 from another call: another nonce.
    let foreign = Uas::new("other", cfg(), SipTransport::Udp, "h:1".into(), 99, t0)
        .on_message(t0, &invite("z9hG4bK8", 1, None));
    let auth = answer(&sent(&foreign).pop().unwrap(), PASSWORD);
    let out = u.on_message(t0, &invite("z9hG4bK2", 2, Some(&auth)));
    assert_eq!(statuses(&out), vec![100, 407]);
    let again = &sent(&out)[1];
    assert!(again
        .header("proxy-authenticate")
        .unwrap()
        .ends_with(",stale=true"));
    assert!(!out.iter().any(|o| matches!(o, Output::Admit { .. })));
}

#[test]
fn a_refusal_carries_its_reason_and_warning() {
    let t0 = Instant::now();
    let mut u = uas(SipTransport::Udp, t0);
    let challenge = sent(&u.on_message(t0, &invite("z9hG4bK1", 1, None)))
        .pop()
        .unwrap();
    let auth = answer(&challenge, PASSWORD);
    u.on_message(t0, &invite("z9hG4bK2", 2, Some(&auth)));
    let phone = PhoneNumberId("110972043181256".into());
    let out = u.admitted(
        t0,
        Err(SipRefusal::server_mismatch("evil.example.org", &phone)),
    );
    let msgs = sent(&out);
    assert_eq!(msgs.len(), 1);
    let refusal = &msgs[0];
    assert_eq!(refusal.status(), Some(403));
    let text = "SIP server evil.example.org from INVITE does not match any SIP server configured for phone number id 110972043181256";
    assert_eq!(reason(refusal), text);
    assert_eq!(
        refusal.header("warning"),
        Some(format!("399 wa.meta.vc \"{text}\"").as_str())
    );
    assert!(u.wacid().is_none());
}

#[test]
fn request_uris_and_froms_that_are_not_numbers_are_refused() {
    let t0 = Instant::now();
    let mut u = uas(SipTransport::Udp, t0);
    let challenge = sent(&u.on_message(t0, &invite("z9hG4bK1", 1, None)))
        .pop()
        .unwrap();
    let auth = answer(&challenge, PASSWORD);
    let mut to_nobody = invite("z9hG4bK2", 2, Some(&auth));
    to_nobody.start = super::super::message::StartLine::Request {
        method: "INVITE".into(),
        uri: "sip:alice@127.0.0.1:5060".into(),
    };
    assert_eq!(statuses(&u.on_message(t0, &to_nobody)), vec![100, 404]);
    let mut from_nobody = invite("z9hG4bK3", 3, Some(&auth));
    from_nobody.headers.retain(|h| h.name != "From");
    from_nobody.push("From", "<sip:pbx@sip.example.com>;tag=biz1");
    let out = u.on_message(t0, &from_nobody);
    assert_eq!(statuses(&out), vec![100, 400]);
    assert_eq!(
        reason(&sent(&out)[1]),
        "Asset not found, invalid business phone number"
    );
}

#[test]
fn ringing_then_answered_with_sdp_and_the_bsuid_headers() {
    let t0 = Instant::now();
    let mut u = uas(SipTransport::Udp, t0);
    ringing(&mut u, t0);
    assert!(u.is_ringing());
    assert_eq!(u.wacid().map(CallId::as_str), Some("wacid.ABC"));
    // A retransmitted INVITE gets the 180 again.
    assert_eq!(
        statuses(&u.on_message(t0, &invite("z9hG4bK2", 2, None))),
        vec![180]
    );
    let out = u.reply(
        t0,
        GatewayReply::Answer {
            sdp: "v=0\r\nanswer\r\n".into(),
        },
    );
    let ok = sent(&out).pop().unwrap();
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.cseq(), Some((2, "INVITE".into())));
    assert_eq!(ok.body, "v=0\r\nanswer\r\n");
    assert_eq!(ok.header("content-type"), Some("application/sdp"));
    assert_eq!(ok.header("x-wa-meta-user-id"), Some("GB.123"));
    assert_eq!(
        ok.header("contact"),
        Some("<sip:+447700900123@127.0.0.1:5060;transport=udp;ob>;isfocus")
    );
    // Re-sent until the ACK (UDP).
    assert_eq!(
        statuses(&u.on_timeout(t0 + Duration::from_millis(500))),
        vec![200]
    );
    let tag = to_tag(&ok);
    u.on_message(t0, &in_dialog("ACK", "z9hG4bKack", 2, &tag));
    assert!(u.on_timeout(t0 + Duration::from_secs(5)).is_empty());
}

#[test]
fn a_missing_ack_ends_the_call_with_a_bye() {
    let t0 = Instant::now();
    let mut u = uas(SipTransport::Udp, t0);
    ringing(&mut u, t0);
    u.reply(
        t0,
        GatewayReply::Answer {
            sdp: "v=0\r\n".into(),
        },
    );
    let out = u.on_timeout(t0 + Duration::from_secs(32));
    assert_eq!(events(&out), vec![GatewayEvent::TimedOut]);
    let bye = sent(&out)
        .into_iter()
        .find(|m| m.method() == Some("BYE"))
        .unwrap();
    assert_eq!(bye.header("x-wa-meta-call-duration"), Some("0"));
}

#[test]
fn the_business_hangs_up_with_bye() {
    let t0 = Instant::now();
    let mut u = uas(SipTransport::Udp, t0);
    ringing(&mut u, t0);
    let ok = sent(&u.reply(
        t0,
        GatewayReply::Answer {
            sdp: "v=0\r\n".into(),
        },
    ))
    .pop()
    .unwrap();
    let tag = to_tag(&ok);
    u.on_message(t0, &in_dialog("ACK", "z9hG4bKack", 2, &tag));
    let bye = in_dialog("BYE", "z9hG4bKbye", 3, &tag);
    let out = u.on_message(t0, &bye);
    assert_eq!(statuses(&out), vec![200]);
    assert_eq!(events(&out), vec![GatewayEvent::Hangup]);
    // The retransmitted BYE: the same 200, no second event.
    let out = u.on_message(t0, &bye);
    assert_eq!(statuses(&out), vec![200]);
    assert!(events(&out).is_empty());
    u.on_timeout(t0 + Duration::from_secs(40));
    assert!(u.is_finished());
}

#[test]
fn the_user_hangs_up_with_a_bye_carrying_the_duration() {
    let t0 = Instant::now();
    let mut u = uas(SipTransport::Udp, t0);
    ringing(&mut u, t0);
    let ok = sent(&u.reply(
        t0,
        GatewayReply::Answer {
            sdp: "v=0\r\n".into(),
        },
    ))
    .pop()
    .unwrap();
    let tag = to_tag(&ok);
    u.on_message(t0, &in_dialog("ACK", "z9hG4bKack", 2, &tag));
    let out = u.reply(t0, GatewayReply::Bye { duration_secs: 37 });
    let bye = sent(&out).pop().unwrap();
    assert_eq!(bye.method(), Some("BYE"));
    // To the business's Contact, through its Record-Route, in the dialog.
    assert_eq!(
        bye.start,
        super::super::message::StartLine::Request {
            method: "BYE".into(),
            uri: "sip:pbx@10.0.0.9:5070;transport=udp".into()
        }
    );
    assert_eq!(bye.header("route"), Some("<sip:edge.example.com;lr>"));
    assert_eq!(bye.header("x-wa-meta-call-duration"), Some("37"));
    assert_eq!(bye.header("x-wa-meta-wacid"), Some("wacid.ABC"));
    assert_eq!(bye.call_id(), Some(CALL_ID));
    assert_eq!(
        header_param(bye.header("from").unwrap(), "tag"),
        Some(tag.as_str())
    );
    assert_eq!(header_param(bye.header("to").unwrap(), "tag"), Some("biz1"));
    assert!(bye
        .header("via")
        .unwrap()
        .starts_with("SIP/2.0/UDP 127.0.0.1:5060;"));
    // Re-sent (Timer E) until answered.
    assert_eq!(
        sent(&u.on_timeout(t0 + Duration::from_millis(500)))[0].method(),
        Some("BYE")
    );
    let ok = response_to(&bye, 200, "OK", "");
    assert!(u.on_message(t0, &ok).is_empty());
    assert!(u.on_timeout(t0 + Duration::from_secs(5)).is_empty());
    u.on_timeout(t0 + Duration::from_secs(40));
    assert!(u.is_finished());
}

#[test]
fn a_hang_up_before_the_ack_waits_for_it() {
    let t0 = Instant::now();
    let mut u = uas(SipTransport::Tcp, t0);
    ringing(&mut u, t0);
    let ok = sent(&u.reply(
        t0,
        GatewayReply::Answer {
            sdp: "v=0\r\n".into(),
        },
    ))
    .pop()
    .unwrap();
    // RFC 3261 §15: no BYE on a dialog before the ACK of its 2xx.
    assert!(u
        .reply(t0, GatewayReply::Bye { duration_secs: 2 })
        .is_empty());
    let out = u.on_message(t0, &in_dialog("ACK", "z9hG4bKack", 2, &to_tag(&ok)));
    let bye = sent(&out).pop().expect("the BYE once ACKed");
    assert_eq!(bye.method(), Some("BYE"));
    assert_eq!(bye.header("x-wa-meta-call-duration"), Some("2"));
    assert!(events(&out).is_empty());
}

#[test]
fn cancel_while_ringing_terminates_the_invite() {
    let t0 = Instant::now();
    let mut u = uas(SipTransport::Udp, t0);
    ringing(&mut u, t0);
    let mut cancel = invite("z9hG4bK2", 2, None);
    cancel.start = super::super::message::StartLine::Request {
        method: "CANCEL".into(),
        uri: RURI.into(),
    };
    cancel.headers.retain(|h| h.name != "CSeq");
    cancel.push("CSeq", "2 CANCEL");
    cancel.body.clear();
    let out = u.on_message(t0, &cancel);
    let msgs = sent(&out);
    assert_eq!(statuses(&out), vec![200, 487]);
    assert_eq!(msgs[0].cseq(), Some((2, "CANCEL".into())));
    assert_eq!(msgs[1].cseq(), Some((2, "INVITE".into())));
    assert_eq!(events(&out), vec![GatewayEvent::Hangup]);
    // The user can no longer answer.
    assert!(u
        .reply(t0, GatewayReply::Answer { sdp: "v=0".into() })
        .is_empty());
}

#[test]
fn a_declined_call_gets_486_and_an_unanswered_one_480() {
    for (refusal, status, text) in [
        (SipRefusal::declined(), 486, "User declined the call"),
        (SipRefusal::no_answer(), 480, "Temporarily Unavailable"),
    ] {
        let t0 = Instant::now();
        let mut u = uas(SipTransport::Tcp, t0);
        ringing(&mut u, t0);
        let out = u.reply(t0, GatewayReply::Refuse(refusal));
        let msg = sent(&out).pop().unwrap();
        assert_eq!((msg.status(), reason(&msg)), (Some(status), text));
        assert!(events(&out).is_empty(), "the engine ended the call itself");
    }
}

#[test]
fn ringing_too_long_gives_up_on_its_own() {
    let t0 = Instant::now();
    let mut u = uas(SipTransport::Tcp, t0);
    ringing(&mut u, t0);
    let out = u.on_timeout(t0 + Duration::from_secs(180));
    assert_eq!(statuses(&out), vec![480]);
    assert_eq!(events(&out), vec![GatewayEvent::TimedOut]);
}

#[test]
fn re_invite_is_refused_with_500_and_options_answered() {
    let t0 = Instant::now();
    let mut u = uas(SipTransport::Udp, t0);
    ringing(&mut u, t0);
    let ok = sent(&u.reply(
        t0,
        GatewayReply::Answer {
            sdp: "v=0\r\n".into(),
        },
    ))
    .pop()
    .unwrap();
    let tag = to_tag(&ok);
    u.on_message(t0, &in_dialog("ACK", "z9hG4bKack", 2, &tag));
    let out = u.on_message(t0, &in_dialog("INVITE", "z9hG4bKre", 3, &tag));
    assert_eq!(statuses(&out), vec![500]);
    let out = u.on_message(t0, &in_dialog("OPTIONS", "z9hG4bKopt", 4, &tag));
    let options = sent(&out).pop().unwrap();
    assert_eq!(options.status(), Some(200));
    assert!(options.header("allow").unwrap().contains("INVITE"));
    // The call goes on: the user can still hang up.
    let bye = sent(&u.reply(t0, GatewayReply::Bye { duration_secs: 3 }))
        .pop()
        .unwrap();
    assert_eq!(bye.method(), Some("BYE"));
}

#[test]
fn losing_the_connection_while_ringing_ends_the_call() {
    let t0 = Instant::now();
    let mut u = uas(SipTransport::Tcp, t0);
    ringing(&mut u, t0);
    assert_eq!(
        events(&u.on_transport_error(t0)),
        vec![GatewayEvent::TimedOut]
    );
    assert!(u.is_finished());
}

#[test]
fn requests_without_a_call() {
    let register = SipMessage::request("REGISTER", "sip:wa.meta.vc")
        .with("Via", "SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bKr")
        .with("From", "<sip:+447700900461@sip.example.com>;tag=r")
        .with("To", "<sip:+447700900461@sip.example.com>")
        .with("Call-ID", "reg-1")
        .with("CSeq", "1 REGISTER");
    let reply = |m: &SipMessage| match answer_without_call(m, "t") {
        WithoutCall::Reply(text) => SipMessage::parse(text.as_bytes()).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(reply(&register).status(), Some(403));
    let mut options = register.clone();
    options.start = super::super::message::StartLine::Request {
        method: "OPTIONS".into(),
        uri: "sip:wa.meta.vc".into(),
    };
    let ok = reply(&options);
    assert_eq!(ok.status(), Some(200));
    assert!(ok.header("allow").is_some());
    assert_eq!(
        reply(&in_dialog("BYE", "z9hG4bKb", 5, "x")).status(),
        Some(481)
    );
    assert_eq!(
        reply(&in_dialog("INVITE", "z9hG4bKi", 5, "x")).status(),
        Some(481)
    );
    assert_eq!(
        answer_without_call(&in_dialog("ACK", "z9hG4bKa", 5, "x"), "t"),
        WithoutCall::Ignore
    );
    assert_eq!(
        answer_without_call(&invite("z9hG4bK1", 1, None), "t"),
        WithoutCall::NewCall
    );
}
