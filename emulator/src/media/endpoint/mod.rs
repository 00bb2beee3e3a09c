//! One call's media endpoint, sans-IO in str0m's way: datagrams and the time go in,
//! datagrams to send and what happened come out. No socket, no clock.
//!
//! Shaped like Meta's side (cloud-api §4.1): ICE-lite (it answers the business's checks,
//! never checks itself), DTLS-SRTP with the business's certificate checked against the
//! fingerprint of its SDP, opus on the negotiated payload type in 20 ms packets, RFC 4733
//! telephone events for the user's key presses. While the call is connected the user
//! talks: silence, a tone or a WAV clip, one packet every 20 ms of the time passed in.

use super::dtmf;
use super::sdp::{Remote, Setup};
use super::sound::{self, Source};
use super::watch::{AudioWatch, Change};
use opusic_c::{Application, Channels, Decoder, Encoder, SampleRate};
use serde::Serialize;
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::config::{DtlsCert, Fingerprint};
use str0m::format::Codec;
use str0m::media::{Frequency, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, Ssrc};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc};

const FRAME: Duration = Duration::from_millis(20);
/// Decoded frames the level is measured over (the last 500 ms).
const LEVEL_FRAMES: usize = 25;
/// Frames more than this late are skipped, not sent in a burst.
const MAX_CATCH_UP: Duration = Duration::from_millis(200);

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
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Connected => "connected",
            Phase::Failed(_) => "failed",
            Phase::Closed => "closed",
        }
    }
}

/// What the endpoint tells the call (the engine) once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Happening {
    /// The first audio packet from the business arrived.
    FirstAudio,
    /// The media path failed (DTLS, fingerprint): the client ends the call.
    Failed(String),
    /// The business's audio stopped mid-call: no packet for [`super::watch::GAP`] after the
    /// first audio; `silent_for` is how long it had been silent when noticed (the
    /// engine counts the rest of cloud-api §5.4's 30 s on its own clock). Once per stop.
    AudioStopped { silent_for: Duration },
    /// The business's audio came again after [`Happening::AudioStopped`].
    AudioResumed,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Received {
    pub packets: u64,
    pub bytes: u64,
    /// Milliseconds from the endpoint's start (the business's SDP) to the first audio.
    pub first_packet_ms: Option<u64>,
    /// RMS level of the last 500 ms of decoded audio.
    pub audio_level_dbfs: Option<f64>,
    /// Keys the business sent (RFC 4733).
    pub dtmf: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Sent {
    pub packets: u64,
    pub bytes: u64,
    /// Keys the user pressed and sent.
    pub dtmf: String,
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
    opus_pt: Pt,
    dtmf_pt: Option<Pt>,
    known_ssrcs: HashSet<u32>,
    encoder: Encoder,
    decoder: Decoder,
    silent_packet: Vec<u8>,
    source: Source,
    talking: bool,
    next_frame: Option<Instant>,
    rtc_timeout: Instant,
    seq: u64,
    rtp_time: u32,
    keys: VecDeque<u8>,
    /// The press being sent: its packets, the next one, its RTP timestamp.
    pressing: Option<(Vec<dtmf::Event>, usize, u32)>,
    pause_until: Option<Instant>,
    dtmf_rx: dtmf::Receiver,
    levels: VecDeque<f64>,
    started: Instant,
    phase: Phase,
    ice: IceConnectionState,
    dtls_connected: bool,
    received: Received,
    sent: Sent,
    happenings: Vec<Happening>,
    /// Whether the business's audio stopped mid-call.
    watch: AudioWatch,
    /// How late each frame went out, in microseconds (bounded; for the benchmark).
    lateness_us: VecDeque<u32>,
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
        let mut encoder = Encoder::new(Channels::Mono, SampleRate::Hz48000, Application::Voip)
            .map_err(|e| format!("opus encoder: {e:?}"))?;
        let decoder = Decoder::new(Channels::Mono, SampleRate::Hz48000)
            .map_err(|e| format!("opus decoder: {e:?}"))?;
        let mut silent_packet = vec![0u8; 256];
        let n = encoder
            .encode_float_to_slice(&[0f32; sound::FRAME], &mut silent_packet)
            .map_err(|e| format!("opus encoder: {e:?}"))?;
        silent_packet.truncate(n);
        Ok(Endpoint {
            rtc,
            local,
            mid,
            ssrc,
            opus_pt: remote.opus_pt.into(),
            dtmf_pt: remote.dtmf_pt.map(Pt::from),
            known_ssrcs,
            encoder,
            decoder,
            silent_packet,
            source: Source::Silence,
            talking: false,
            next_frame: None,
            rtc_timeout: now,
            seq: u64::from(ssrc_seed(ssrc) & 0x7fff),
            rtp_time: ssrc_seed(ssrc),
            keys: VecDeque::new(),
            pressing: None,
            pause_until: None,
            dtmf_rx: dtmf::Receiver::default(),
            levels: VecDeque::new(),
            started: now,
            phase: Phase::Connecting,
            ice: IceConnectionState::New,
            dtls_connected: false,
            received: Received::default(),
            sent: Sent::default(),
            happenings: Vec::new(),
            watch: AudioWatch::default(),
            lateness_us: VecDeque::new(),
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
        self.talking = talking;
        self.next_frame = talking.then_some(now);
    }

    pub fn play(&mut self, source: Source) {
        self.source = source;
    }

    /// Queues key presses; `Err` when the business offered no telephone-event.
    pub fn press(&mut self, digits: &str) -> Result<(), String> {
        if self.dtmf_pt.is_none() {
            return Err(
                "the business's SDP has no telephone-event/8000: it cannot receive key presses"
                    .into(),
            );
        }
        let bad = dtmf::invalid_keys(digits);
        if !bad.is_empty() {
            return Err(format!("not phone keys: {bad:?} (0-9, *, #, A-D)"));
        }
        if self.keys.len() + digits.len() > 64 {
            return Err("at most 64 key presses wait to be sent".into());
        }
        self.keys.extend(digits.chars().filter_map(dtmf::event_of));
        Ok(())
    }

    /// When [`Endpoint::tick`] must run next.
    pub fn deadline(&self) -> Instant {
        let d = match self.next_frame {
            Some(f) if self.dtls_connected => f.min(self.rtc_timeout),
            _ => self.rtc_timeout,
        };
        match self.watch.deadline() {
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
        if let Some(Change::Stopped { silent_for }) = self.watch.tick(now) {
            self.happenings.push(Happening::AudioStopped { silent_for });
        }
        if !self.dtls_connected {
            return;
        }
        while let Some(due) = self.next_frame.filter(|f| *f <= now) {
            let late = now - due;
            if late > MAX_CATCH_UP {
                self.next_frame = Some(now + FRAME);
                break;
            }
            if self.lateness_us.len() == 4096 {
                self.lateness_us.pop_front();
            }
            self.lateness_us.push_back(late.as_micros() as u32);
            self.send_frame(due);
            self.next_frame = Some(due + FRAME);
        }
    }

    fn send_frame(&mut self, at: Instant) {
        // A key press replaces the audio while it lasts (RFC 4733 §2.5).
        if self.pressing.is_none() && self.pause_until.is_none_or(|p| p <= at) {
            if let Some(ev) = self.keys.pop_front() {
                self.pressing = Some((dtmf::press(ev), 0, self.rtp_time));
                if let Some(k) = dtmf::key_of(ev) {
                    if self.sent.dtmf.len() < 256 {
                        self.sent.dtmf.push(k);
                    }
                }
            }
        }
        let (pt, payload, marker, ts) = match (&mut self.pressing, self.dtmf_pt) {
            (Some((events, i, ts)), Some(pt)) => {
                let e = events[*i];
                let first = *i == 0;
                *i += 1;
                let ts = *ts;
                if *i == events.len() {
                    self.pressing = None;
                    self.pause_until = Some(at + Duration::from_millis(dtmf::GAP_MS));
                }
                (pt, e.to_bytes().to_vec(), first, ts)
            }
            _ => {
                let payload = match self.source.next_frame() {
                    Some(frame) => {
                        let mut buf = vec![0u8; 1275];
                        match self.encoder.encode_float_to_slice(&frame, &mut buf) {
                            Ok(n) => {
                                buf.truncate(n);
                                buf
                            }
                            Err(_) => self.silent_packet.clone(),
                        }
                    }
                    None => self.silent_packet.clone(),
                };
                (self.opus_pt, payload, false, self.rtp_time)
            }
        };
        self.rtp_time = self.rtp_time.wrapping_add(sound::FRAME as u32);
        let seq = self.seq;
        self.seq += 1;
        self.sent.packets += 1;
        self.sent.bytes += payload.len() as u64;
        let mut api = self.rtc.direct_api();
        if let Some(stream) = api.stream_tx(&self.ssrc) {
            stream.write_rtp(RtpWrite::new(pt, seq.into(), ts, at, payload).marker(marker));
        }
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
                let now = p.timestamp;
                self.received.packets += 1;
                self.received.bytes += p.payload.len() as u64;
                let pt = p.header.payload_type;
                // Key presses replace the audio while they last (RFC 4733 §2.5): they
                // are business media too. Before the first audio the 20 s rule counts.
                let media = pt == self.opus_pt
                    || (Some(pt) == self.dtmf_pt && self.received.first_packet_ms.is_some());
                if media && self.watch.packet(now) == Some(Change::Resumed) {
                    self.happenings.push(Happening::AudioResumed);
                }
                if Some(pt) == self.dtmf_pt {
                    self.dtmf_rx.packet(p.header.timestamp, &p.payload);
                    self.received.dtmf = self.dtmf_rx.digits.clone();
                } else if pt == self.opus_pt {
                    if self.received.first_packet_ms.is_none() {
                        self.received.first_packet_ms =
                            Some(now.saturating_duration_since(self.started).as_millis() as u64);
                        self.happenings.push(Happening::FirstAudio);
                    }
                    let mut pcm = [0f32; 5760];
                    if let Ok(n) = self
                        .decoder
                        .decode_float_to_slice(&p.payload, &mut pcm, false)
                    {
                        if self.levels.len() == LEVEL_FRAMES {
                            self.levels.pop_front();
                        }
                        let level = sound::level_dbfs(&pcm[..n.min(pcm.len())]);
                        self.levels.push_back(level);
                    }
                }
            }
            _ => {}
        }
    }

    fn fail(&mut self, why: String) {
        if matches!(self.phase, Phase::Failed(_) | Phase::Closed) {
            return;
        }
        self.phase = Phase::Failed(why.clone());
        self.happenings.push(Happening::Failed(why));
        self.rtc.disconnect();
    }

    pub fn close(&mut self) {
        if !matches!(self.phase, Phase::Failed(_)) {
            self.phase = Phase::Closed;
        }
        self.talking = false;
        self.next_frame = None;
        self.rtc.disconnect();
    }

    pub fn take_happenings(&mut self) -> Vec<Happening> {
        std::mem::take(&mut self.happenings)
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Failed(_) | Phase::Closed)
    }

    /// How late frames went out, in microseconds (the most recent 4,096).
    pub fn lateness_us(&self) -> impl Iterator<Item = u32> + '_ {
        self.lateness_us.iter().copied()
    }

    pub fn report(&self) -> Report {
        let mut received = self.received.clone();
        // The mean power of the last frames, back in dBFS.
        if !self.levels.is_empty() {
            let power: f64 = self
                .levels
                .iter()
                .map(|l| 10f64.powf(l / 10.0))
                .sum::<f64>()
                / self.levels.len() as f64;
            let db = (10.0 * power.log10()).max(sound::FLOOR_DBFS);
            received.audio_level_dbfs = Some((db * 10.0).round() / 10.0);
        }
        Report {
            state: self.phase.name().into(),
            ice: ice_name(self.ice).into(),
            dtls: match (&self.phase, self.dtls_connected) {
                (Phase::Failed(_), false) => "failed",
                (_, true) => "connected",
                _ => "connecting",
            }
            .into(),
            failure: match &self.phase {
                Phase::Failed(why) => Some(why.clone()),
                _ => None,
            },
            playing: match self.source {
                Source::Silence => "silence",
                Source::Tone { .. } => "tone",
                Source::Clip { .. } => "wav",
            },
            received,
            sent: self.sent.clone(),
        }
    }
}

/// A starting sequence number and timestamp that differ between calls (RFC 3550 §5.1
/// wants them random; the SSRC is).
fn ssrc_seed(ssrc: Ssrc) -> u32 {
    *ssrc
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
