//! One call's media endpoint, sans-IO in str0m's way: datagrams and the time go in,
//! datagrams to send and what happened come out. No socket, no clock.
//!
//! Shaped like Meta's side (cloud-api §4.1): ICE-lite (it answers the business's checks,
//! never checks itself), DTLS-SRTP with the business's certificate checked against the
//! fingerprint of its SDP, opus on the negotiated payload type in 20 ms packets, RFC 4733
//! telephone events for the user's key presses. While the call is connected the user
//! talks: silence, a tone or a WAV clip, one packet every 20 ms of the time passed in.

use super::sdp::{Remote, Setup};
use super::sound::Source;
use super::voice::Voice;
pub use super::voice::{Happening, Received, Sent};
use serde::Serialize;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Instant;
use str0m::config::{DtlsCert, Fingerprint};
use str0m::format::Codec;
use str0m::media::{Frequency, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, Ssrc};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc};

/// Where the endpoint stands; the `state` of `GET /__emulator/calls/{id}/media`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// ICE and DTLS under way.
    Connecting,
    /// SRTP keys agreed: audio can flow.
    Connected,
    /// The handshake or the path failed; the text says why.
    Failed(String),
    Closed,
}

impl Phase {
    /// Why the media path failed, once it has.
    pub fn failure(&self) -> Option<String> {
        match self {
            Phase::Failed(why) => Some(why.clone()),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Connected => "connected",
            Phase::Failed(_) => "failed",
            Phase::Closed => "closed",
        }
    }
}

/// The endpoint as `GET /__emulator/calls/{id}/media` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub state: String,
    pub ice: String,
    pub dtls: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// What the user is saying: `silence`, `tone`, `wav`.
    pub playing: &'static str,
    pub received: Received,
    pub sent: Sent,
    /// An SDES or plain RTP endpoint's own figures (SIP calls; none for WebRTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtp: Option<super::rtp::RtpReport>,
}

/// The endpoint's DTLS identity: one certificate for every call of a server, as one
/// media server of Meta's has one.
#[derive(Clone)]
pub struct Identity {
    cert: DtlsCert,
    /// `AA:BB:…`, SHA-256 of the certificate.
    pub fingerprint: String,
}

impl Identity {
    /// A fresh self-signed certificate (random: the one thing `--seed` cannot fix).
    pub fn generate(now: Instant) -> Result<Identity, String> {
        let provider = str0m::crypto::from_feature_flags();
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or("the crypto provider cannot make a DTLS certificate")?;
        let mut rtc = Rtc::builder()
            .set_crypto_provider(std::sync::Arc::new(provider))
            .set_dtls_cert(cert.clone())
            .build(now);
        let fp = rtc.direct_api().local_dtls_fingerprint().to_string();
        let fingerprint = fp.split_once(' ').map(|(_, h)| h).unwrap_or(&fp).to_owned();
        Ok(Identity { cert, fingerprint })
    }

    /// An identity from a certificate and its private key (DER: X.509 and PKCS#8), made
    /// elsewhere (`server/keys.rs`); the fingerprint is SHA-256 of the certificate, as
    /// str0m writes it.
    pub fn from_der(certificate: Vec<u8>, private_key: Vec<u8>) -> Identity {
        use sha2::Digest as _;
        let fingerprint = sha2::Sha256::digest(&certificate)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        Identity {
            cert: DtlsCert {
                certificate,
                private_key,
            },
            fingerprint,
        }
    }
}

/// A datagram to send.
pub struct Datagram {
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

pub struct Endpoint {
    rtc: Rtc,
    local: SocketAddr,
    mid: Mid,
    ssrc: Ssrc,
    known_ssrcs: HashSet<u32>,
    /// The user talking and listening.
    voice: Voice,
    rtc_timeout: Instant,
    phase: Phase,
    ice: IceConnectionState,
    dtls_connected: bool,
}

impl Endpoint {
    /// An endpoint listening at `local` (a socket the shell owns) with our ICE
    /// credentials, connecting to the business described by `remote`.
    pub fn new(
        identity: &Identity,
        local: SocketAddr,
        ice: (String, String),
        remote: &Remote,
        now: Instant,
    ) -> Result<Endpoint, String> {
        let mut config = Rtc::builder()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs()
            .set_dtls_cert(identity.cert.clone())
            .set_local_ice_credentials(IceCreds {
                ufrag: ice.0,
                pass: ice.1,
            });
        let codecs = config.codec_config();
        codecs.add_config(
            remote.opus_pt.into(),
            None,
            Codec::Opus,
            Frequency::FORTY_EIGHT_KHZ,
            Some(2),
            Default::default(),
        );
        if let Some(pt) = remote.dtmf_pt {
            codecs.add_config(
                pt.into(),
                None,
                Codec::Tele,
                Frequency::EIGHT_KHZ,
                None,
                Default::default(),
            );
        }
        let mut rtc = config.build(now);
        let host = Candidate::host(local, "udp").map_err(|e| format!("local candidate: {e}"))?;
        rtc.add_local_candidate(host);
        for c in &remote.candidates {
            if let Ok(c) = Candidate::host(*c, "udp") {
                rtc.add_remote_candidate(c);
            }
        }
        let fingerprint: Fingerprint = format!("{} {}", remote.fingerprint.0, remote.fingerprint.1)
            .parse()
            .map_err(|e| format!("the business's a=fingerprint cannot be read: {e}"))?;
        let mid: Mid = remote.mid.as_str().into();
        let mut api = rtc.direct_api();
        api.set_remote_ice_credentials(IceCreds {
            ufrag: remote.ufrag.clone(),
            pass: remote.pwd.clone(),
        });
        api.set_remote_fingerprint(fingerprint);
        api.set_ice_controlling(false);
        // We answer `passive` (or offer `actpass` and the business answers `active`):
        // the business starts DTLS, unless it said it waits.
        api.start_dtls(remote.setup == Setup::Passive)
            .map_err(|e| format!("DTLS: {e}"))?;
        api.declare_media(mid, MediaKind::Audio);
        let ssrc = api.new_ssrc();
        api.declare_stream_tx(ssrc, None, mid, None);
        let mut known_ssrcs = HashSet::new();
        if let Some(s) = remote.ssrc {
            api.expect_stream_rx(s.into(), None, mid, None);
            known_ssrcs.insert(s);
        }
        let voice = Voice::new(remote.opus_pt, remote.dtmf_pt, *ssrc, now)?;
        Ok(Endpoint {
            rtc,
            local,
            mid,
            ssrc,
            known_ssrcs,
            voice,
            rtc_timeout: now,
            phase: Phase::Connecting,
            ice: IceConnectionState::New,
            dtls_connected: false,
        })
    }

    /// Whether a datagram from `from` belongs to this call (STUN by its ICE usernames,
    /// the rest by the address ICE chose).
    pub fn accepts(&self, now: Instant, from: SocketAddr, bytes: &[u8]) -> bool {
        match Receive::new(Protocol::Udp, from, self.local, bytes) {
            Ok(r) => self.rtc.accepts(&Input::Receive(now, r)),
            Err(_) => false,
        }
    }

    pub fn receive(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        // SRTP headers are in the clear: a stream the SDP did not announce (no a=ssrc) is
        // taken as the call's audio, since the call has one audio section.
        if bytes.len() >= 12
            && (128..192).contains(&bytes[0])
            && !(64..96).contains(&(bytes[1] & 0x7f))
        {
            let ssrc = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            if self.known_ssrcs.len() < 8 && self.known_ssrcs.insert(ssrc) {
                self.rtc
                    .direct_api()
                    .expect_stream_rx(ssrc.into(), None, self.mid, None);
            }
        }
        let Ok(r) = Receive::new(Protocol::Udp, from, self.local, bytes) else {
            return;
        };
        if let Err(e) = self.rtc.handle_input(Input::Receive(now, r)) {
            self.fail(describe(&e.to_string()));
        }
    }

    /// The user starts (or stops) talking: audio flows while the call is connected.
    pub fn set_talking(&mut self, talking: bool, now: Instant) {
        self.voice.set_talking(talking, now);
    }

    pub fn play(&mut self, source: Source) {
        self.voice.play(source);
    }

    /// Queues key presses; `Err` when the business offered no telephone-event.
    pub fn press(&mut self, digits: &str) -> Result<(), String> {
        self.voice.press(digits)
    }

    /// When [`Endpoint::tick`] must run next.
    pub fn deadline(&self) -> Instant {
        let d = match self.voice.frame_deadline() {
            Some(f) if self.dtls_connected => f.min(self.rtc_timeout),
            _ => self.rtc_timeout,
        };
        match self.voice.watch_deadline() {
            Some(w) if !self.is_finished() => d.min(w),
            _ => d,
        }
    }

    /// Advances to `now`: str0m's timers, and the frames due.
    pub fn tick(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Failed(_) | Phase::Closed) {
            return;
        }
        if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
            self.fail(describe(&e.to_string()));
            return;
        }
        self.voice.check_audio(now);
        if !self.dtls_connected {
            return;
        }
        let (rtc, ssrc) = (&mut self.rtc, self.ssrc);
        self.voice.due_frames(now, |f| {
            let mut api = rtc.direct_api();
            if let Some(stream) = api.stream_tx(&ssrc) {
                let w = RtpWrite::new(Pt::from(f.pt), f.seq.into(), f.timestamp, f.at, f.payload);
                stream.write_rtp(w.marker(f.marker));
            }
        });
    }

    /// Datagrams to send and happenings, after any input or tick.
    pub fn drain(&mut self, out: &mut Vec<Datagram>) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.rtc_timeout = t;
                    break;
                }
                Ok(Output::Transmit(t)) => out.push(Datagram {
                    to: t.destination,
                    bytes: t.contents.to_vec(),
                }),
                Ok(Output::Event(e)) => self.event(e),
                Err(e) => {
                    self.fail(describe(&e.to_string()));
                    break;
                }
            }
        }
    }

    fn event(&mut self, e: Event) {
        match e {
            Event::IceConnectionStateChange(s) => self.ice = s,
            Event::Connected => {
                self.dtls_connected = true;
                if self.phase == Phase::Connecting {
                    self.phase = Phase::Connected;
                }
            }
            Event::RtpPacket(p) => {
                let pt = *p.header.payload_type;
                self.voice
                    .heard(p.timestamp, pt, p.header.timestamp, &p.payload);
            }
            _ => {}
        }
    }

    fn fail(&mut self, why: String) {
        if matches!(self.phase, Phase::Failed(_) | Phase::Closed) {
            return;
        }
        self.phase = Phase::Failed(why.clone());
        self.voice.failed(why);
        self.rtc.disconnect();
    }

    pub fn close(&mut self) {
        if !matches!(self.phase, Phase::Failed(_)) {
            self.phase = Phase::Closed;
        }
        self.voice.stop();
        self.rtc.disconnect();
    }

    pub fn take_happenings(&mut self) -> Vec<Happening> {
        self.voice.take_happenings()
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Failed(_) | Phase::Closed)
    }

    /// How late frames went out, in microseconds (the most recent 4,096).
    pub fn lateness_us(&self) -> impl Iterator<Item = u32> + '_ {
        self.voice.lateness_us()
    }

    pub fn report(&self) -> Report {
        Report {
            state: self.phase.name().into(),
            ice: ice_name(self.ice).into(),
            dtls: match (&self.phase, self.dtls_connected) {
                (Phase::Failed(_), false) => "failed",
                (_, true) => "connected",
                _ => "connecting",
            }
            .into(),
            failure: self.phase.failure(),
            playing: self.voice.playing(),
            received: self.voice.received(),
            sent: self.voice.sent(),
            rtp: None,
        }
    }
}

fn ice_name(s: IceConnectionState) -> &'static str {
    match s {
        IceConnectionState::New => "new",
        IceConnectionState::Checking => "checking",
        IceConnectionState::Connected => "connected",
        IceConnectionState::Completed => "completed",
        IceConnectionState::Disconnected => "disconnected",
    }
}

/// str0m's error, in the words of a call's record.
fn describe(e: &str) -> String {
    if e.contains("fingerprint") {
        format!(
            "DTLS: the business's certificate does not match the a=fingerprint of its SDP ({e})"
        )
    } else {
        format!("media: {e}")
    }
}

#[cfg(test)]
mod tests;
