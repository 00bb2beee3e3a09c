//! The endpoint against a business peer on plain str0m, in memory.
#![allow(
    clippy::disallowed_methods,
    reason = "these tests are the endpoint's shell: they read the clock once"
)]

use super::*;
use crate::media::dtmf;
use crate::media::sdp::Remote;
use crate::media::watch;
use opusic_c::{Application, Channels, Encoder, SampleRate};
use std::time::Duration;

const USER: &str = "127.0.0.1:1000";
const BIZ: &str = "127.0.0.1:2000";

/// A business peer on plain str0m: full ICE, controlling, DTLS client, opus 111 and
/// telephone-event 126, its own certificate.
struct Business {
    rtc: Rtc,
    fingerprint: String,
    ssrc: Ssrc,
    received_dtmf: dtmf::Receiver,
    audio_packets: u64,
    /// Audio packets sent: their sequence numbers and timestamps go on across runs.
    sent: u64,
}

fn business(now: Instant, user: &Identity, wrong_fingerprint: bool) -> Business {
    let mut config = Rtc::builder()
        .set_rtp_mode(true)
        .clear_codecs()
        .set_local_ice_credentials(IceCreds {
            ufrag: "bizz".into(),
            pass: "bizbizbizbizbizbizbizbiz".into(),
        });
    let codecs = config.codec_config();
    codecs.add_config(
        111.into(),
        None,
        Codec::Opus,
        Frequency::FORTY_EIGHT_KHZ,
        Some(2),
        Default::default(),
    );
    codecs.add_config(
        126.into(),
        None,
        Codec::Tele,
        Frequency::EIGHT_KHZ,
        None,
        Default::default(),
    );
    let mut rtc = config.build(now);
    rtc.add_local_candidate(Candidate::host(BIZ.parse().unwrap(), "udp").unwrap());
    rtc.add_remote_candidate(Candidate::host(USER.parse().unwrap(), "udp").unwrap());
    let fp = rtc.direct_api().local_dtls_fingerprint().to_string();
    let mut expected = user.fingerprint.clone();
    if wrong_fingerprint {
        expected.replace_range(
            0..2,
            if expected.starts_with("00") {
                "11"
            } else {
                "00"
            },
        );
    }
    let mut api = rtc.direct_api();
    api.set_remote_ice_credentials(IceCreds {
        ufrag: "user".into(),
        pass: "useruseruseruseruseruser".into(),
    });
    api.set_remote_fingerprint(format!("sha-256 {expected}").parse().unwrap());
    api.set_ice_controlling(true);
    api.start_dtls(true).unwrap();
    let mid: Mid = "audio".into();
    api.declare_media(mid, MediaKind::Audio);
    let ssrc: Ssrc = 4242.into();
    api.declare_stream_tx(ssrc, None, mid, None);
    Business {
        rtc,
        fingerprint: fp.split_once(' ').unwrap().1.to_owned(),
        ssrc,
        received_dtmf: dtmf::Receiver::default(),
        audio_packets: 0,
        sent: 0,
    }
}

fn remote_of(biz: &Business) -> Remote {
    Remote {
        ufrag: "bizz".into(),
        pwd: "bizbizbizbizbizbizbizbiz".into(),
        fingerprint: ("sha-256".into(), biz.fingerprint.clone()),
        setup: Setup::Active,
        candidates: vec![BIZ.parse().unwrap()],
        mid: "audio".into(),
        opus_pt: 111,
        dtmf_pt: Some(126),
        ssrc: None,
    }
}

/// Runs both peers for `ms` milliseconds of passed-in time; the business sends a tone
/// every 20 ms once connected when `biz_talks`.
fn run(
    user: &mut Endpoint,
    biz: &mut Business,
    start: Instant,
    ms: u64,
    biz_talks: bool,
) -> Instant {
    let mut enc = Encoder::new(Channels::Mono, SampleRate::Hz48000, Application::Voip).unwrap();
    let mut tone = Source::tone(440.0);
    let mut now = start;
    let (user_addr, biz_addr) = (USER.parse().unwrap(), BIZ.parse().unwrap());
    for step in 0..ms / 5 {
        now = start + Duration::from_millis(step * 5);
        user.tick(now);
        let mut out = Vec::new();
        user.drain(&mut out);
        for d in out {
            let r = Receive::new(Protocol::Udp, user_addr, biz_addr, &d.bytes).unwrap();
            let _ = biz.rtc.handle_input(Input::Receive(now, r));
        }
        if biz_talks && biz.rtc.is_connected() && step % 4 == 0 {
            let frame = tone.next_frame().unwrap();
            let mut buf = vec![0u8; 1275];
            let n = enc.encode_float_to_slice(&frame, &mut buf).unwrap();
            buf.truncate(n);
            let s = biz.ssrc;
            biz.sent += 1;
            if let Some(tx) = biz.rtc.direct_api().stream_tx(&s) {
                tx.write_rtp(RtpWrite::new(
                    111.into(),
                    biz.sent.into(),
                    (biz.sent * 960) as u32,
                    now,
                    buf,
                ));
            }
        }
        let _ = biz.rtc.handle_input(Input::Timeout(now));
        while let Ok(o) = biz.rtc.poll_output() {
            match o {
                Output::Timeout(_) => break,
                Output::Transmit(t) => {
                    if user.accepts(now, biz_addr, &t.contents) {
                        user.receive(now, biz_addr, &t.contents);
                    }
                }
                Output::Event(Event::RtpPacket(p)) => {
                    if *p.header.payload_type == 126 {
                        biz.received_dtmf.packet(p.header.timestamp, &p.payload);
                    } else {
                        biz.audio_packets += 1;
                    }
                }
                Output::Event(_) => {}
            }
        }
    }
    now
}

fn user(now: Instant, id: &Identity, biz: &Business) -> Endpoint {
    Endpoint::new(
        id,
        USER.parse().unwrap(),
        ("user".into(), "useruseruseruseruseruser".into()),
        &remote_of(biz),
        now,
    )
    .unwrap()
}

/// A user with identity `id` talking a tone (and pressing `keys`) to a business that
/// checks its fingerprint, for 1.5 s: both connected, DTLS included.
fn tone_call(start: Instant, id: &Identity, keys: &str) -> (Endpoint, Business) {
    let mut biz = business(start, id, false);
    let mut ep = user(start, id, &biz);
    ep.set_talking(true, start);
    ep.play(Source::tone(1000.0));
    if !keys.is_empty() {
        ep.press(keys).unwrap();
    }
    run(&mut ep, &mut biz, start, 1500, true);
    let r = ep.report();
    assert_eq!(
        (r.state.as_str(), r.dtls.as_str()),
        ("connected", "connected"),
        "{r:?}"
    );
    (ep, biz)
}

#[test]
fn audio_and_keys_flow_both_ways_over_dtls_srtp() {
    let start = Instant::now();
    let id = Identity::generate(start).unwrap();
    let (mut ep, biz) = tone_call(start, &id, "1#");
    let r = ep.report();
    assert!(r.received.packets > 20, "{r:?}");
    let level = r.received.audio_level_dbfs.unwrap();
    assert!(
        (-20.0..-8.0).contains(&level),
        "a -10 dBFS tone reads {level}"
    );
    assert!(r.received.first_packet_ms.is_some());
    assert_eq!(ep.take_happenings(), vec![Happening::FirstAudio]);
    assert!(r.sent.packets > 20 && biz.audio_packets > 10, "{r:?}");
    assert_eq!(
        (r.sent.dtmf.as_str(), biz.received_dtmf.digits.as_str()),
        ("1#", "1#")
    );
}

/// The identity a server uses (made with rcgen on ring, its fingerprint computed here):
/// the business, checking the fingerprint, completes DTLS and audio flows.
#[cfg(feature = "server")]
#[test]
fn the_servers_identity_completes_dtls_with_its_fingerprint() {
    let start = Instant::now();
    let id = crate::server::keys::media_identity().unwrap();
    let (ep, biz) = tone_call(start, &id, "");
    let r = ep.report();
    assert!(r.received.packets > 20 && biz.audio_packets > 10, "{r:?}");
}

#[test]
fn a_certificate_that_does_not_match_the_fingerprint_fails_the_endpoint() {
    let start = Instant::now();
    let id = Identity::generate(start).unwrap();
    let biz = business(start, &id, false);
    let mut remote = remote_of(&biz);
    remote.fingerprint.1 = "00:".repeat(31) + "00";
    let mut biz = biz;
    let mut ep = Endpoint::new(
        &id,
        USER.parse().unwrap(),
        ("user".into(), "useruseruseruseruseruser".into()),
        &remote,
        start,
    )
    .unwrap();
    run(&mut ep, &mut biz, start, 1000, false);
    let r = ep.report();
    assert_eq!(r.state, "failed", "{r:?}");
    assert!(r.failure.unwrap().contains("a=fingerprint"));
    assert!(matches!(
        ep.take_happenings().as_slice(),
        [Happening::Failed(_)]
    ));
}

#[test]
fn keys_need_a_telephone_event_payload_type() {
    let start = Instant::now();
    let id = Identity::generate(start).unwrap();
    let biz = business(start, &id, false);
    let mut remote = remote_of(&biz);
    remote.dtmf_pt = None;
    let mut ep = Endpoint::new(
        &id,
        USER.parse().unwrap(),
        ("u".into(), "p".repeat(24)),
        &remote,
        start,
    )
    .unwrap();
    assert!(ep.press("1").unwrap_err().contains("telephone-event"));
    assert!(user(start, &id, &biz)
        .press("1x")
        .unwrap_err()
        .contains("'x'"));
}

#[test]
fn audio_that_stops_mid_call_is_reported_once_and_its_return_too() {
    let start = Instant::now();
    let id = Identity::generate(start).unwrap();
    let mut biz = business(start, &id, false);
    let mut ep = user(start, &id, &biz);
    ep.set_talking(true, start);
    let t = run(&mut ep, &mut biz, start, 1500, true);
    assert_eq!(ep.take_happenings(), vec![Happening::FirstAudio]);
    // The business goes quiet: nothing under a second, then one AudioStopped.
    let t = run(&mut ep, &mut biz, t, 900, false);
    assert_eq!(ep.take_happenings(), vec![]);
    let t = run(&mut ep, &mut biz, t, 2000, false);
    match ep.take_happenings().as_slice() {
        [Happening::AudioStopped { silent_for }] => assert!(
            (watch::GAP..watch::GAP + Duration::from_millis(50)).contains(silent_for),
            "noticed after {silent_for:?}"
        ),
        other => panic!("{other:?}"),
    }
    run(&mut ep, &mut biz, t, 500, true);
    assert_eq!(ep.take_happenings(), vec![Happening::AudioResumed]);
    assert_eq!(ep.report().state, "connected");
}
