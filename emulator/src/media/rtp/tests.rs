//! The RTP endpoint against a business peer made of the SRTP module and libopus, in
//! memory.
#![allow(
    clippy::disallowed_methods,
    reason = "these tests are the endpoint's shell: they read the clock once"
)]

use super::*;
use crate::media::dtmf;
use crate::media::sdp::RtpRemote;
use crate::media::sound;
use crate::media::srtp::{Crypto, MasterKey};
use opusic_c::{Application, Channels, Decoder, Encoder, SampleRate};
use std::time::Duration;

/// Where the business's SDP says its media is, and where it really sends from.
const SDP_ADDR: &str = "127.0.0.1:4000";
const REAL_ADDR: &str = "127.0.0.1:4002";

fn key(b: u8) -> MasterKey {
    MasterKey::from_bytes(&[b; 30]).unwrap()
}

fn session(sdes: bool) -> RtpSession {
    RtpSession {
        remote: RtpRemote {
            addr: SDP_ADDR.parse().unwrap(),
            opus_pt: 111,
            dtmf_pt: Some(126),
            ssrc: Some(77),
            crypto: sdes.then(|| Crypto {
                tag: 1,
                key: key(2),
            }),
        },
        local_key: sdes.then(|| key(1)),
    }
}

/// The business: sends opus (a tone at 0.3 of full scale) with its key, reads the
/// user's packets with the user's key.
struct Business {
    tx: Option<srtp::Sender>,
    rx: Option<srtp::Receiver>,
    enc: Encoder,
    dec: Decoder,
    seq: u16,
    heard: Vec<f64>,
    packets: usize,
    keys: dtmf::Receiver,
}

impl Business {
    fn new(sending_key: Option<MasterKey>, users_key: Option<MasterKey>) -> Business {
        Business {
            tx: sending_key.as_ref().map(srtp::Sender::new),
            rx: users_key.as_ref().map(srtp::Receiver::new),
            enc: Encoder::new(Channels::Mono, SampleRate::Hz48000, Application::Voip).unwrap(),
            dec: Decoder::new(Channels::Mono, SampleRate::Hz48000).unwrap(),
            seq: 65_530,
            heard: Vec::new(),
            packets: 0,
            keys: dtmf::Receiver::default(),
        }
    }

    fn packet(&mut self) -> Vec<u8> {
        let mut pcm = [0f32; sound::FRAME];
        for (i, s) in pcm.iter_mut().enumerate() {
            *s = 0.3 * (i as f32 * 2.0 * std::f32::consts::PI / 48.0).sin();
        }
        let mut buf = vec![0u8; 1275];
        let n = self.enc.encode_float_to_slice(&pcm, &mut buf).unwrap();
        let mut p = vec![0x80, 111];
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(self.seq) * 960).to_be_bytes());
        p.extend_from_slice(&77u32.to_be_bytes());
        p.extend_from_slice(&buf[..n]);
        self.seq = self.seq.wrapping_add(1);
        match &mut self.tx {
            Some(tx) => tx.protect(&p).unwrap(),
            None => p,
        }
    }

    fn hear(&mut self, d: &Datagram) {
        assert_eq!(
            d.to,
            REAL_ADDR.parse().unwrap(),
            "the user answers the source"
        );
        let p = match &mut self.rx {
            Some(rx) => rx.unprotect(&d.bytes).expect("the user's SRTP"),
            None => d.bytes.clone(),
        };
        let (pt, ts, payload) = rtp_payload(&p).unwrap();
        self.packets += 1;
        if pt == 126 {
            self.keys.packet(ts, payload);
            return;
        }
        let mut pcm = [0f32; 5760];
        let n = self
            .dec
            .decode_float_to_slice(payload, &mut pcm, false)
            .unwrap();
        self.heard.push(sound::level_dbfs(&pcm[..n]));
    }
}

/// Runs `ms` of a call: every 20 ms the business sends (if `sends`), the endpoint ticks
/// and what it sends reaches the business.
fn run(ep: &mut RtpEndpoint, biz: &mut Business, start: Instant, ms: u64, sends: bool) {
    let mut out = Vec::new();
    for step in 0..ms / 20 {
        let now = start + Duration::from_millis(step * 20);
        if sends {
            let p = biz.packet();
            assert!(ep.accepts_address(REAL_ADDR.parse().unwrap()) || ep.accepts_content(&p));
            ep.receive(now, REAL_ADDR.parse().unwrap(), &p);
        }
        ep.tick(now);
        ep.drain(&mut out);
        for d in out.drain(..) {
            biz.hear(&d);
        }
    }
}

#[test]
fn the_user_waits_for_the_business_then_talks_to_where_it_sends_from() {
    let start = Instant::now();
    let mut ep = RtpEndpoint::new(&session(true), 1234, start).unwrap();
    let mut biz = Business::new(Some(key(2)), Some(key(1)));
    ep.set_talking(true, start);
    ep.play(Source::tone(440.0));
    // Talking, but the business has not sent: nothing goes out (cloud-api §8.3).
    assert_eq!(ep.deadline(), None);
    run(&mut ep, &mut biz, start, 200, false);
    assert_eq!(biz.packets, 0);
    assert_eq!(ep.report().state, "connecting");
    // The packets come from another address than the SDP's: the content says whose.
    assert!(!ep.accepts_address(REAL_ADDR.parse().unwrap()));
    run(
        &mut ep,
        &mut biz,
        start + Duration::from_millis(200),
        1000,
        true,
    );
    assert!(biz.packets >= 45, "{}", biz.packets);
    let level = biz.heard.last().copied().unwrap();
    assert!((level + 13.0).abs() < 2.0, "the user's tone: {level} dBFS");
    let r = ep.report();
    assert_eq!(
        (r.state.as_str(), r.ice.as_str(), r.dtls.as_str()),
        ("connected", "none", "none")
    );
    assert_eq!(r.received.packets, 50);
    let heard = r.received.audio_level_dbfs.unwrap();
    assert!(
        (heard + 13.5).abs() < 2.0,
        "the business's tone: {heard} dBFS"
    );
    let rtp = r.rtp.unwrap();
    assert_eq!(rtp.keying, "sdes");
    assert_eq!(rtp.latched.as_deref(), Some(REAL_ADDR));
    assert_eq!(rtp.refused, Refused::default());
    assert!(ep.take_happenings().contains(&Happening::FirstAudio));
    assert!(ep.accepts_address(REAL_ADDR.parse().unwrap()));
}

#[test]
fn the_users_keys_reach_the_business_as_telephone_events() {
    let start = Instant::now();
    let mut ep = RtpEndpoint::new(&session(true), 99, start).unwrap();
    let mut biz = Business::new(Some(key(2)), Some(key(1)));
    ep.set_talking(true, start);
    ep.press("15#").unwrap();
    run(&mut ep, &mut biz, start, 2000, true);
    assert_eq!(biz.keys.digits, "15#");
    assert_eq!(ep.report().sent.dtmf, "15#");
}

#[test]
fn packets_under_another_key_are_refused_and_never_latched() {
    let start = Instant::now();
    let mut ep = RtpEndpoint::new(&session(true), 5, start).unwrap();
    // The business announced key 2 and encrypts with key 3.
    let mut biz = Business::new(Some(key(3)), Some(key(1)));
    ep.set_talking(true, start);
    let p = biz.packet();
    assert!(!ep.accepts_content(&p), "not ours by its key");
    let from: SocketAddr = SDP_ADDR.parse().unwrap();
    let mut out = Vec::new();
    for i in 0..20u64 {
        let now = start + Duration::from_millis(20 * i);
        let p = biz.packet();
        assert!(ep.accepts_address(from));
        ep.receive(now, from, &p);
        ep.tick(now);
        ep.drain(&mut out);
    }
    assert!(out.is_empty(), "nothing is sent before an authentic packet");
    assert!(ep.take_happenings().is_empty());
    let r = ep.report();
    assert_eq!((r.state.as_str(), r.received.packets), ("connecting", 0));
    let rtp = r.rtp.unwrap();
    assert_eq!(rtp.refused.authentication, 20);
    assert_eq!(rtp.latched, None);
    assert!(rtp
        .last_refusal
        .unwrap()
        .starts_with("authentication failed"));
}

#[test]
fn plain_rtp_flows_both_ways_and_is_known_by_its_ssrc() {
    let start = Instant::now();
    let mut ep = RtpEndpoint::new(&session(false), 7, start).unwrap();
    let mut biz = Business::new(None, None);
    ep.set_talking(true, start);
    assert!(ep.accepts_content(&biz.packet()), "SSRC 77 is announced");
    run(&mut ep, &mut biz, start, 500, true);
    assert!(biz.packets >= 20);
    let r = ep.report();
    assert_eq!(r.rtp.unwrap().keying, "none");
    assert!(r.received.audio_level_dbfs.is_some());
}

#[test]
fn srtcp_is_read_and_dropped_and_garbage_does_not_hurt() {
    let start = Instant::now();
    let mut ep = RtpEndpoint::new(&session(true), 5, start).unwrap();
    let from: SocketAddr = SDP_ADDR.parse().unwrap();
    let mut rr = vec![0x81, 201, 0, 7, 0, 0, 0, 77];
    rr.extend_from_slice(&[0xab; 24]);
    ep.receive(start, from, &srtp::protect_rtcp(&key(2), 1, &rr).unwrap());
    for junk in [
        &[][..],
        &[0x80][..],
        &[0x80, 111, 0, 1][..],
        &[0xff; 40][..],
    ] {
        ep.receive(start, from, junk);
    }
    let r = ep.report();
    assert_eq!(r.received.packets, 0);
    let rtp = r.rtp.unwrap();
    assert_eq!(rtp.rtcp_packets, 1);
    assert_eq!(rtp.latched, None);
    assert!(rtp.refused.malformed >= 3);
}

#[test]
fn keys_on_one_side_only_are_refused() {
    let mut s = session(true);
    s.local_key = None;
    let err = RtpEndpoint::new(&s, 1, Instant::now()).err().unwrap();
    assert!(err.contains("a=crypto"), "{err}");
}
