//! The UAC's transactions, timers, dialog and digest retry, each driven by hand on a
//! timeline of its own: every step's time is chosen, so timers are exact.

use super::super::message::header_param;
use super::*;
use crate::domain::ids::CallId;
use crate::domain::sip::{HeaderNames, SipServer};
use proptest::prelude::*;

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n";

fn params(transport: SipTransport) -> SipInvite {
    SipInvite {
        call_id: CallId::from("wacid.HBgLMTIxOTU1NTA3MTQVAgASGCA="),
        user_number: "16315551234".into(),
        username: None,
        parent_user_id: None,
        header_names: Default::default(),
        user_id: Some("US.13491208655302741918".into()),
        business_number: "15550783881".into(),
        phone_number_id: "106540352242922".into(),
        server: SipServer {
            hostname: "pbx.example.com".into(),
            port: 5060,
            transport,
            request_uri_user_params: vec![
                ("tgrp".into(), "wacall".into()),
                ("trunk-context".into(), "byoc.example.com".into()),
            ],
        },
        sdp_offer: SDP.into(),
        cta_payload: Some("P-42".into()),
        deeplink_payload: None,
        digest_username: "15550783881".into(),
        digest_password: "s3cret".into(),
    }
}

fn config() -> UacConfig {
    UacConfig {
        t1: Duration::from_millis(500),
        t2: Duration::from_secs(4),
        timer_c: Duration::from_secs(180),
        linger: Duration::from_secs(32),
    }
}

fn new_uac(p: SipInvite) -> Uac {
    Uac::new(p, config(), "127.0.0.1:40000".parse().unwrap(), 7)
}

fn sent(out: &[Output]) -> Vec<SipMessage> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(text) => Some(SipMessage::parse(text.as_bytes()).unwrap()),
            Output::Event(_) => None,
        })
        .collect()
}

fn events(out: &[Output]) -> Vec<SipEvent> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            Output::Send(_) => None,
        })
        .collect()
}

fn only_sent(out: &[Output]) -> SipMessage {
    let msgs = sent(out);
    assert_eq!(msgs.len(), 1, "expected one message, got {out:?}");
    msgs.into_iter().next().unwrap()
}

/// A server response to `req`, with the server's tag, a Contact and a body.
fn reply(req: &SipMessage, status: u16, reason: &str) -> SipMessage {
    let mut resp = response_to(req, status, reason, "srv-tag");
    if (200..300).contains(&status) {
        resp.push("Contact", "<sip:+15550783881@10.1.2.3:5070;transport=udp>");
        resp.push(
            "Record-Route",
            "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
        );
        resp.push("Content-Type", "application/sdp");
        resp.body = "v=0\r\nanswer\r\n".into();
    }
    resp
}

/// A request from the server within our dialog.
fn server_request(method: &str, invite: &SipMessage) -> SipMessage {
    SipMessage::request(method, "sip:+16315551234@127.0.0.1:40000")
        .with("Via", "SIP/2.0/UDP 10.1.2.3:5070;branch=z9hG4bKsrv1")
        .with("From", "<sip:+15550783881@pbx.example.com>;tag=srv-tag")
        .with("To", invite.header("from").unwrap())
        .with("Call-ID", invite.call_id().unwrap())
        .with("CSeq", format!("1 {method}"))
}

/// Starts a call and answers it with 200 OK; returns the INVITE.
fn answered(uac: &mut Uac, now: Instant) -> SipMessage {
    let invite = only_sent(&uac.start(now));
    let out = uac.on_message(now, &reply(&invite, 200, "OK"));
    assert!(events(&out).contains(&SipEvent::Answered {
        sdp: "v=0\r\nanswer\r\n".into()
    }));
    invite
}

#[test]
fn invite_is_shaped_like_metas() {
    let mut uac = new_uac(params(SipTransport::Udp));
    let invite = only_sent(&uac.start(Instant::now()));
    assert_eq!(
        invite.start,
        StartLine::Request {
            method: "INVITE".into(),
            // Port 5060 is UDP's default: not written.
            uri: "sip:+15550783881;tgrp=wacall;trunk-context=byoc.example.com@pbx.example.com"
                .into(),
        }
    );
    let from = invite.header("from").unwrap();
    assert!(
        from.starts_with("\"16315551234\" <sip:+16315551234@wa.meta.vc>;tag="),
        "{from}"
    );
    assert!(header_param(from, "tag").is_some_and(|t| t.len() == 36));
    assert_eq!(
        invite.header("to"),
        Some("<sip:+15550783881@pbx.example.com>")
    );
    assert_eq!(
        invite.call_id(),
        Some("outgoing:wacid.HBgLMTIxOTU1NTA3MTQVAgASGCA=")
    );
    let (cseq, method) = invite.cseq().unwrap();
    assert_eq!(method, "INVITE");
    assert!((1..10_000).contains(&cseq));
    let via = invite.header("via").unwrap();
    assert!(
        via.starts_with("SIP/2.0/UDP 127.0.0.1:40000;rport;branch=z9hG4bK"),
        "{via}"
    );
    assert_eq!(invite.header("max-forwards"), Some("70"));
    assert_eq!(
        invite.header("contact"),
        Some("<sip:+16315551234@127.0.0.1:40000;transport=udp;ob>")
    );
    assert_eq!(invite.header("x-fb-external-domain"), Some("wa.meta.vc"));
    assert_eq!(invite.header("user-agent"), Some("Facebook SipGateway"));
    assert_eq!(invite.header("allow"), Some(ALLOW));
    assert_eq!(
        invite.header("x-wa-meta-wacid"),
        Some("wacid.HBgLMTIxOTU1NTA3MTQVAgASGCA=")
    );
    assert_eq!(
        invite.header("x-wa-meta-user-id"),
        Some("US.13491208655302741918")
    );
    assert_eq!(
        invite.header("x-wa-meta-phone-number-id"),
        Some("106540352242922")
    );
    assert_eq!(invite.header("x-wa-meta-cta-payload"), Some("P-42"));
    assert_eq!(invite.header("x-wa-meta-deeplink-payload"), None);
    assert_eq!(invite.header("x-wa-meta-user-name"), None);
    assert_eq!(invite.header("content-type"), Some("application/sdp"));
    assert_eq!(
        invite.header("content-length"),
        Some(SDP.len().to_string().as_str())
    );
    assert_eq!(invite.body, SDP);
}

#[test]
fn payload_headers_appear_only_when_given() {
    let mut p = params(SipTransport::Udp);
    p.cta_payload = None;
    p.user_id = None;
    let invite = only_sent(&new_uac(p.clone()).start(Instant::now()));
    assert!(invite.header("x-wa-meta-cta-payload").is_none());
    assert!(invite.header("x-wa-meta-deeplink-payload").is_none());
    assert!(invite.header("x-wa-meta-user-id").is_none());

    p.deeplink_payload = Some("Q".into());
    p.username = Some("jo.bakes".into());
    let invite = only_sent(&new_uac(p).start(Instant::now()));
    assert_eq!(invite.header("x-wa-meta-deeplink-payload"), Some("Q"));
    assert_eq!(invite.header("x-wa-meta-user-name"), Some("jo.bakes"));
    assert!(invite.header("x-wa-meta-cta-payload").is_none());
    assert!(invite.header("x-wa_meta-parent-user-id").is_none());
}

/// cloud-api §8.5: the parent BSUID under the page's own spelling (underscore and
/// all) unless configured otherwise; the username header likewise.
#[test]
fn parent_user_id_and_username_headers_are_spelled_as_configured() {
    let mut p = params(SipTransport::Udp);
    p.parent_user_id = Some("US.ENT.11815799212886844830".into());
    p.username = Some("ana_b".into());
    let invite = only_sent(&new_uac(p.clone()).start(Instant::now()));
    assert!(
        invite
            .render()
            .contains("\r\nx-wa_meta-parent-user-id: US.ENT.11815799212886844830\r\n"),
        "{}",
        invite.render()
    );
    assert_eq!(invite.header("x-wa-meta-parent-user-id"), None);
    assert_eq!(invite.header("x-wa-meta-user-name"), Some("ana_b"));

    p.header_names = HeaderNames {
        username: "x-wa-meta-username".into(),
        parent_user_id: "x-wa-meta-parent-user-id".into(),
    };
    let invite = only_sent(&new_uac(p).start(Instant::now()));
    assert_eq!(
        invite.header("x-wa-meta-parent-user-id"),
        Some("US.ENT.11815799212886844830")
    );
    assert_eq!(invite.header("x-wa_meta-parent-user-id"), None);
    assert_eq!(invite.header("x-wa-meta-username"), Some("ana_b"));
    assert_eq!(invite.header("x-wa-meta-user-name"), None);
}

#[test]
fn header_values_cannot_inject_headers() {
    let mut p = params(SipTransport::Udp);
    p.cta_payload = Some("P\r\nx-evil: 1".into());
    let invite = only_sent(&new_uac(p).start(Instant::now()));
    assert_eq!(invite.header("x-wa-meta-cta-payload"), Some("P  x-evil: 1"));
    assert!(invite.header("x-evil").is_none());
}

#[test]
fn tcp_and_ipv6_shape_the_uris() {
    let mut p = params(SipTransport::Tcp);
    p.server.hostname = "::1".into();
    p.server.port = 5070;
    p.server.request_uri_user_params = vec![("flag".into(), String::new())];
    let mut uac = Uac::new(p, config(), "[::1]:41000".parse().unwrap(), 1);
    let invite = only_sent(&uac.start(Instant::now()));
    assert_eq!(
        uac.request_uri(),
        "sip:+15550783881;flag@[::1]:5070;transport=tcp"
    );
    assert!(invite
        .header("via")
        .unwrap()
        .starts_with("SIP/2.0/TCP [::1]:41000;"));
    assert_eq!(invite.header("to"), Some("<sip:+15550783881@[::1]>"));
}

/// cloud-api §8.4: `sip:+<business>@<host>;transport=tls`, without the default 5061;
/// Via and Contact name TLS too.
#[test]
fn tls_uris_are_shaped_like_metas() {
    let mut p = params(SipTransport::Tls);
    p.server.port = 5061;
    p.server.request_uri_user_params.clear();
    let mut uac = new_uac(p.clone());
    let invite = only_sent(&uac.start(Instant::now()));
    assert_eq!(
        uac.request_uri(),
        "sip:+15550783881@pbx.example.com;transport=tls"
    );
    assert!(invite
        .header("via")
        .unwrap()
        .starts_with("SIP/2.0/TLS 127.0.0.1:40000;rport;branch=z9hG4bK"));
    assert_eq!(
        invite.header("contact"),
        Some("<sip:+16315551234@127.0.0.1:40000;transport=tls;ob>")
    );
    assert_eq!(
        invite.header("to"),
        Some("<sip:+15550783881@pbx.example.com>")
    );
    // Another port is written; TLS is reliable, so the INVITE is not retransmitted.
    p.server.port = 5062;
    let mut uac = new_uac(p);
    uac.start(Instant::now());
    assert_eq!(
        uac.request_uri(),
        "sip:+15550783881@pbx.example.com:5062;transport=tls"
    );
    let deadline = uac.next_deadline().unwrap();
    assert!(sent(&uac.on_timeout(deadline)).is_empty());
}

#[test]
fn udp_invite_is_retransmitted_with_doubling_intervals_until_timer_b() {
    let mut uac = new_uac(params(SipTransport::Udp));
    let t0 = Instant::now();
    let first = uac.start(t0);
    let mut retransmits = Vec::new();
    let mut closing = Vec::new();
    while let Some(at) = uac.next_deadline() {
        let out = uac.on_timeout(at);
        for msg in sent(&out) {
            assert_eq!(msg.render(), sent(&first)[0].render());
            retransmits.push(at - t0);
        }
        closing.extend(events(&out));
    }
    let ms: Vec<u128> = retransmits.iter().map(|d| d.as_millis()).collect();
    assert_eq!(ms, vec![500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(closing, vec![SipEvent::TimedOut]);
    assert!(uac.is_finished());
}

#[test]
fn tcp_invite_is_never_retransmitted_but_still_times_out() {
    let mut uac = new_uac(params(SipTransport::Tcp));
    let t0 = Instant::now();
    uac.start(t0);
    let at = uac.next_deadline().unwrap();
    assert_eq!(at - t0, Duration::from_secs(32));
    let out = uac.on_timeout(at);
    assert!(sent(&out).is_empty());
    assert_eq!(events(&out), vec![SipEvent::TimedOut]);
    assert!(uac.is_finished());
}

#[test]
fn provisional_responses_stop_retransmissions_and_are_reported_once() {
    let mut uac = new_uac(params(SipTransport::Udp));
    let t0 = Instant::now();
    let invite = only_sent(&uac.start(t0));
    let out = uac.on_message(t0, &reply(&invite, 100, "Trying"));
    assert_eq!(events(&out), vec![SipEvent::Provisional { status: 100 }]);
    let out = uac.on_message(t0, &reply(&invite, 180, "Ringing"));
    assert_eq!(events(&out), vec![SipEvent::Provisional { status: 180 }]);
    assert!(uac
        .on_message(t0, &reply(&invite, 180, "Ringing"))
        .is_empty());
    // Only Timer C is left: 180 s.
    assert_eq!(uac.next_deadline(), Some(t0 + Duration::from_secs(180)));
}

#[test]
fn answer_is_acked_within_the_dialog() {
    let mut uac = new_uac(params(SipTransport::Udp));
    let t0 = Instant::now();
    let invite = only_sent(&uac.start(t0));
    let ok = reply(&invite, 200, "OK");
    let out = uac.on_message(t0, &ok);
    assert_eq!(
        events(&out),
        vec![SipEvent::Answered {
            sdp: "v=0\r\nanswer\r\n".into()
        }]
    );
    let ack = only_sent(&out);
    assert_eq!(
        ack.start,
        StartLine::Request {
            method: "ACK".into(),
            uri: "sip:+15550783881@10.1.2.3:5070;transport=udp".into()
        }
    );
    assert_eq!(
        ack.header("to"),
        Some("<sip:+15550783881@pbx.example.com>;tag=srv-tag")
    );
    assert_eq!(ack.header("from"), invite.header("from"));
    assert_eq!(ack.cseq(), Some((invite.cseq().unwrap().0, "ACK".into())));
    assert_ne!(ack.top_via_branch(), invite.top_via_branch());
    // The route set is the Record-Route in reverse.
    assert_eq!(
        ack.header_values("route"),
        vec!["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    );
    // A repeated 200 is ACKed again but not reported again.
    let again = uac.on_message(t0, &ok);
    assert!(events(&again).is_empty());
    assert_eq!(only_sent(&again).render(), ack.render());
    // No timers run while the call is up.
    assert_eq!(uac.next_deadline(), None);
}

#[test]
fn busy_is_acked_and_reported_as_failed() {
    let mut uac = new_uac(params(SipTransport::Udp));
    let t0 = Instant::now();
    let invite = only_sent(&uac.start(t0));
    uac.on_message(t0, &reply(&invite, 100, "Trying"));
    let busy = reply(&invite, 486, "Busy Here");
    let out = uac.on_message(t0, &busy);
    assert_eq!(
        events(&out),
        vec![SipEvent::Failed {
            status: 486,
            reason: "Busy Here".into()
        }]
    );
    let ack = only_sent(&out);
    assert_eq!(ack.method(), Some("ACK"));
    assert_eq!(ack.top_via_branch(), invite.top_via_branch());
    assert_eq!(ack.header("to"), busy.header("to"));
    assert_eq!(ack.cseq(), Some((invite.cseq().unwrap().0, "ACK".into())));
    // A repeated 486 gets the same ACK and no second event.
    let again = uac.on_message(t0, &busy);
    assert!(events(&again).is_empty());
    assert_eq!(only_sent(&again).render(), ack.render());
    // The socket lingers for retransmissions, then the call is done.
    let end = uac.next_deadline().unwrap();
    assert_eq!(end - t0, Duration::from_secs(32));
    assert!(uac.on_timeout(end).is_empty());
    assert!(uac.is_finished());
}

#[test]
fn every_failure_status_ends_the_call_as_failed() {
    for (status, reason) in [
        (480, "Temporarily Unavailable"),
        (603, "Decline"),
        (503, "Service Unavailable"),
        (404, "Not Found"),
    ] {
        let mut uac = new_uac(params(SipTransport::Tcp));
        let invite = only_sent(&uac.start(Instant::now()));
        let out = uac.on_message(Instant::now(), &reply(&invite, status, reason));
        assert_eq!(
            events(&out),
            vec![SipEvent::Failed {
                status,
                reason: reason.into()
            }]
        );
        assert!(!uac.is_finished(), "keeps the connection a while");
        let end = uac.next_deadline().unwrap();
        assert!(uac.on_timeout(end).is_empty());
        assert!(uac.is_finished());
    }
}

fn challenge(invite: &SipMessage, status: u16) -> SipMessage {
    let (reason, header) = if status == 407 {
        ("Proxy Authentication Required", "Proxy-Authenticate")
    } else {
        ("Unauthorized", "WWW-Authenticate")
    };
    reply(invite, status, reason).with(
        header,
        "Digest realm=\"wa.meta.vc\",nonce=\"419ac2415577f8e1\",opaque=\"440badfc05072367\",algorithm=MD5,qop=\"auth\"",
    )
}

fn check_credentials(retry: &SipMessage, header: &str, uac: &Uac) {
    let value = retry
        .header(header)
        .unwrap_or_else(|| panic!("no {header}"));
    let ch = digest::parse_challenge(&value.replacen("Digest", "Digest ", 1)).unwrap();
    assert_eq!(ch.realm, "wa.meta.vc");
    let param = |name: &str| {
        value
            .split(',')
            .map(str::trim)
            .find_map(|p| {
                p.strip_prefix(&format!("{name}="))
                    .map(|v| v.trim_matches('"').to_owned())
            })
            .unwrap_or_else(|| panic!("no {name} in {value}"))
    };
    assert_eq!(param("Digest username"), "15550783881");
    assert_eq!(param("uri"), uac.request_uri());
    assert_eq!(param("nc"), "00000001");
    assert_eq!(param("qop"), "auth");
    let client = ClientNonce {
        cnonce: param("cnonce"),
        nc: 1,
    };
    let expected = digest::response_hash(
        &ch,
        "15550783881",
        "s3cret",
        "INVITE",
        uac.request_uri(),
        SDP,
        &client,
    )
    .unwrap();
    assert_eq!(param("response"), expected);
}

#[test]
fn proxy_challenge_is_answered_once_with_credentials() {
    let mut uac = new_uac(params(SipTransport::Udp));
    let t0 = Instant::now();
    let invite = only_sent(&uac.start(t0));
    let out = uac.on_message(t0, &challenge(&invite, 407));
    assert!(events(&out).is_empty(), "{out:?}");
    let msgs = sent(&out);
    assert_eq!(msgs.len(), 2);
    let (ack, retry) = (&msgs[0], &msgs[1]);
    assert_eq!(ack.method(), Some("ACK"));
    assert_eq!(ack.top_via_branch(), invite.top_via_branch());
    assert_eq!(retry.method(), Some("INVITE"));
    assert_eq!(retry.call_id(), invite.call_id());
    assert_eq!(retry.header("from"), invite.header("from"));
    assert_eq!(retry.cseq().unwrap().0, invite.cseq().unwrap().0 + 1);
    assert_ne!(retry.top_via_branch(), invite.top_via_branch());
    assert_eq!(retry.header("x-wa-meta-cta-payload"), Some("P-42"));
    check_credentials(retry, "proxy-authorization", &uac);
    // A repeated 407 for the first INVITE is re-ACKed only.
    let again = uac.on_message(t0, &challenge(&invite, 407));
    assert_eq!(only_sent(&again).render(), ack.render());
    // A second challenge is a failure.
    let out = uac.on_message(t0, &challenge(retry, 407));
    assert_eq!(
        events(&out),
        vec![SipEvent::Failed {
            status: 407,
            reason: "Proxy Authentication Required".into()
        }]
    );
}

#[test]
fn www_challenge_is_answered_with_authorization_and_the_ack_keeps_it() {
    let mut uac = new_uac(params(SipTransport::Tcp));
    let t0 = Instant::now();
    let invite = only_sent(&uac.start(t0));
    let out = uac.on_message(t0, &challenge(&invite, 401));
    let retry = sent(&out).pop().unwrap();
    check_credentials(&retry, "authorization", &uac);
    assert!(retry.header("proxy-authorization").is_none());
    let out = uac.on_message(t0, &reply(&retry, 200, "OK"));
    let ack = only_sent(&out);
    assert_eq!(ack.header("authorization"), retry.header("authorization"));
}

#[test]
fn a_challenge_without_digest_is_a_failure() {
    let mut uac = new_uac(params(SipTransport::Udp));
    let invite = only_sent(&uac.start(Instant::now()));
    let resp = reply(&invite, 401, "Unauthorized").with("WWW-Authenticate", "Basic realm=\"x\"");
    let out = uac.on_message(Instant::now(), &resp);
    assert_eq!(
        events(&out),
        vec![SipEvent::Failed {
            status: 401,
            reason: "Unauthorized".into()
        }]
    );
}

#[test]
fn hangup_sends_bye_with_wacid_and_duration() {
    let mut uac = new_uac(params(SipTransport::Udp));
    let t0 = Instant::now();
    let invite = answered(&mut uac, t0);
    let out = uac.hangup(t0, 42);
    let bye = only_sent(&out);
    assert_eq!(
        bye.start,
        StartLine::Request {
            method: "BYE".into(),
            uri: "sip:+15550783881@10.1.2.3:5070;transport=udp".into()
        }
    );
    assert_eq!(
        bye.header("x-wa-meta-wacid"),
        invite.header("x-wa-meta-wacid")
    );
    assert_eq!(bye.header("x-wa-meta-call-duration"), Some("42"));
    assert_eq!(
        bye.header("to"),
        Some("<sip:+15550783881@pbx.example.com>;tag=srv-tag")
    );
    assert_eq!(
        bye.cseq(),
        Some((invite.cseq().unwrap().0 + 1, "BYE".into()))
    );
    assert_eq!(bye.call_id(), invite.call_id());
    // A second hang-up does nothing.
    assert!(uac.hangup(t0, 50).is_empty());
    let out = uac.on_message(t0, &reply(&bye, 200, "OK"));
    assert_eq!(events(&out), vec![SipEvent::Ended]);
}

#[test]
fn unanswered_bye_is_retransmitted_up_to_t2_then_given_up() {
    let mut uac = new_uac(params(SipTransport::Udp));
    let t0 = Instant::now();
    answered(&mut uac, t0);
    uac.hangup(t0, 3);
    let mut times = Vec::new();
    let mut closing = Vec::new();
    while let Some(at) = uac.next_deadline() {
        let out = uac.on_timeout(at);
        times.extend(sent(&out).iter().map(|_| (at - t0).as_millis()));
        closing.extend(events(&out));
    }
    assert_eq!(
        &times[..6],
        &[500, 1500, 3500, 7500, 11500, 15500],
        "intervals double up to T2 = 4 s"
    );
    assert_eq!(*times.last().unwrap(), 31500);
    assert_eq!(closing, vec![SipEvent::Ended]);
}

#[test]
fn hangup_while_ringing_cancels_and_the_487_ends_the_call() {
    let mut uac = new_uac(params(SipTransport::Udp));
    let t0 = Instant::now();
    let invite = only_sent(&uac.start(t0));
    uac.on_message(t0, &reply(&invite, 180, "Ringing"));
    let cancel = only_sent(&uac.hangup(t0, 0));
    assert_eq!(cancel.method(), Some("CANCEL"));
    assert_eq!(cancel.top_via_branch(), invite.top_via_branch());
    assert_eq!(
        cancel.cseq(),
        Some((invite.cseq().unwrap().0, "CANCEL".into()))
    );
    assert_eq!(cancel.header("to"), invite.header("to"));
    assert!(uac.on_message(t0, &reply(&cancel, 200, "OK")).is_empty());
    let out = uac.on_message(t0, &reply(&invite, 487, "Request Terminated"));
    assert_eq!(events(&out), vec![SipEvent::Ended]);
    assert_eq!(only_sent(&out).method(), Some("ACK"));
}

#[test]
fn hangup_before_any_response_waits_for_a_provisional_to_cancel() {
    let mut uac = new_uac(params(SipTransport::Udp));
    let t0 = Instant::now();
    let invite = only_sent(&uac.start(t0));
    assert!(uac.hangup(t0, 0).is_empty());
    let out = uac.on_message(t0, &reply(&invite, 100, "Trying"));
    assert!(sent(&out).iter().any(|m| m.method() == Some("CANCEL")));
}

#[test]
fn answer_racing_a_cancel_is_acked_and_hung_up() {
    let mut uac = new_uac(params(SipTransport::Udp));
    let t0 = Instant::now();
    let invite = only_sent(&uac.start(t0));
    uac.on_message(t0, &reply(&invite, 180, "Ringing"));
    uac.hangup(t0, 0);
    let out = uac.on_message(t0, &reply(&invite, 200, "OK"));
    let methods: Vec<_> = sent(&out)
        .iter()
        .map(|m| m.method().unwrap().to_owned())
        .collect();
    assert_eq!(methods, vec!["ACK", "BYE"]);
    assert!(
        events(&out).is_empty(),
        "a call the user left is not reported answered"
    );
}

#[test]
fn timer_c_cancels_a_call_that_rings_too_long() {
    let mut uac = new_uac(params(SipTransport::Udp));
    let t0 = Instant::now();
    let invite = only_sent(&uac.start(t0));
    uac.on_message(t0, &reply(&invite, 180, "Ringing"));
    let at = uac.next_deadline().unwrap();
    let out = uac.on_timeout(at);
    assert_eq!(only_sent(&out).method(), Some("CANCEL"));
    assert_eq!(events(&out), vec![SipEvent::TimedOut]);
    // The 487 that follows is ACKed without another event.
    let out = uac.on_message(at, &reply(&invite, 487, "Request Terminated"));
    assert_eq!(only_sent(&out).method(), Some("ACK"));
    assert!(events(&out).is_empty());
}

#[test]
fn bye_from_the_server_is_answered_and_reported() {
    let mut uac = new_uac(params(SipTransport::Udp));
    let t0 = Instant::now();
    let invite = answered(&mut uac, t0);
    let bye = server_request("BYE", &invite);
    let out = uac.on_message(t0, &bye);
    assert_eq!(events(&out), vec![SipEvent::ByeFromServer]);
    let ok = only_sent(&out);
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.cseq(), Some((1, "BYE".into())));
    assert_eq!(ok.top_via_branch(), Some("z9hG4bKsrv1"));
    assert_eq!(ok.header("to"), invite.header("from"));
    // A repeated BYE is answered again, not reported again; a hang-up now is moot.
    let again = uac.on_message(t0, &bye);
    assert_eq!(only_sent(&again).status(), Some(200));
    assert!(events(&again).is_empty());
    assert!(uac.hangup(t0, 9).is_empty());
}

#[test]
fn other_requests_get_sensible_answers() {
    let mut uac = new_uac(params(SipTransport::Udp));
    let t0 = Instant::now();
    let invite = answered(&mut uac, t0);
    let status = |uac: &mut Uac, req: SipMessage| only_sent(&uac.on_message(t0, &req)).status();
    assert_eq!(
        status(&mut uac, server_request("INVITE", &invite)),
        Some(500)
    );
    assert_eq!(
        status(&mut uac, server_request("OPTIONS", &invite)),
        Some(200)
    );
    assert_eq!(status(&mut uac, server_request("INFO", &invite)), Some(405));
    let mut stranger = server_request("BYE", &invite);
    stranger.headers.retain(|h| h.name != "Call-ID");
    stranger.push("Call-ID", "someone-else");
    assert_eq!(status(&mut uac, stranger), Some(481));
    assert!(uac
        .on_message(t0, &server_request("ACK", &invite))
        .is_empty());
    // The call is still up.
    assert_eq!(only_sent(&uac.hangup(t0, 1)).method(), Some("BYE"));
}

#[test]
fn transport_failure_before_an_answer_is_a_timeout() {
    let mut uac = new_uac(params(SipTransport::Tcp));
    uac.start(Instant::now());
    let out = uac.on_transport_error(Instant::now());
    assert_eq!(events(&out), vec![SipEvent::TimedOut]);
    assert!(uac.is_finished());
}

#[test]
fn responses_for_other_transactions_are_ignored() {
    let mut uac = new_uac(params(SipTransport::Udp));
    let t0 = Instant::now();
    let invite = only_sent(&uac.start(t0));
    let mut stray = reply(&invite, 200, "OK");
    stray.headers.retain(|h| h.name != "Via");
    stray.push("Via", "SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKother");
    assert!(uac.on_message(t0, &stray).is_empty());
    let mut no_cseq = reply(&invite, 200, "OK");
    no_cseq.headers.retain(|h| h.name != "CSeq");
    assert!(uac.on_message(t0, &no_cseq).is_empty());
}

#[derive(Debug, Clone)]
enum Step {
    Respond(u16),
    RespondToLast(u16),
    ServerBye,
    Hangup(u64),
    Timeout,
    TransportError,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        prop::sample::select(vec![100u16, 180, 183, 200, 401, 407, 486, 487, 500, 603])
            .prop_map(Step::Respond),
        prop::sample::select(vec![100u16, 200, 401, 481]).prop_map(Step::RespondToLast),
        Just(Step::ServerBye),
        (0u64..100).prop_map(Step::Hangup),
        Just(Step::Timeout),
        Just(Step::TransportError),
    ]
}

proptest! {
    /// Whatever the server and user do, a call reports at most one closing event,
    /// never reports an answer after closing, and always finishes once time passes.
    #[test]
    fn every_call_closes_exactly_once(
        tcp in any::<bool>(),
        steps in prop::collection::vec(step(), 0..20),
    ) {
        let transport = if tcp { SipTransport::Tcp } else { SipTransport::Udp };
        let mut uac = new_uac(params(transport));
        let mut now = Instant::now();
        let mut out = uac.start(now);
        let invite = only_sent(&out);
        let mut last_sent = invite.clone();
        for step in steps {
            let more = match step {
                Step::Respond(status) => {
                    let mut target = invite.clone();
                    // After a challenge, answer the newest INVITE.
                    if let Some(retry) = sent(&out).into_iter().rev().find(|m| m.method() == Some("INVITE")) {
                        target = retry;
                    }
                    uac.on_message(now, &challenge(&target, status))
                }
                Step::RespondToLast(status) => uac.on_message(now, &reply(&last_sent, status, "X")),
                Step::ServerBye => uac.on_message(now, &server_request("BYE", &invite)),
                Step::Hangup(d) => uac.hangup(now, d),
                Step::Timeout => match uac.next_deadline() {
                    Some(at) => { now = at; uac.on_timeout(at) }
                    None => vec![],
                },
                Step::TransportError => uac.on_transport_error(now),
            };
            if let Some(m) = sent(&more).into_iter().rev().find(|m| m.method().is_some()) {
                last_sent = m;
            }
            out.extend(more);
        }
        // Let time run out, hanging up if the call is still up.
        out.extend(uac.hangup(now, 1));
        for _ in 0..200 {
            match uac.next_deadline() {
                Some(at) => out.extend(uac.on_timeout(at)),
                None => break,
            }
        }
        prop_assert!(uac.is_finished(), "call never finished: {:?}", events(&out));
        let evs = events(&out);
        let closing: Vec<_> = evs.iter().enumerate().filter(|(_, e)| matches!(e,
            SipEvent::Failed { .. } | SipEvent::TimedOut | SipEvent::ByeFromServer | SipEvent::Ended)).collect();
        prop_assert_eq!(closing.len(), 1, "{:?}", evs);
        let answered: Vec<_> = evs.iter().enumerate().filter(|(_, e)| matches!(e, SipEvent::Answered { .. })).collect();
        prop_assert!(answered.len() <= 1);
        if let Some((i, _)) = answered.first() {
            prop_assert!(*i < closing[0].0);
        }
    }
}
