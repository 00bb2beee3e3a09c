//! The user's talking and listening, shared by every endpoint kind (WebRTC on str0m in
//! `endpoint/`, SDES or plain RTP in `rtp.rs`): what goes out every 20 ms (opus frames
//! of the user's sound, RFC 4733 key presses in their place while they last) and what
//! the business's packets tell (counts, first audio, decoded level, its key presses,
//! whether its audio stopped). Sans-IO: the time and the packets are passed in; the
//! endpoint puts frames on its wire and hands received payloads here.

use super::dtmf;
use super::sound::{self, Source};
use super::watch::{AudioWatch, Change};
use opusic_c::{Application, Channels, Decoder, Encoder, SampleRate};
use serde::Serialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub const FRAME: Duration = Duration::from_millis(20);
/// Decoded frames the level is measured over (the last 500 ms).
const LEVEL_FRAMES: usize = 25;
/// Frames more than this late are skipped, not sent in a burst.
const MAX_CATCH_UP: Duration = Duration::from_millis(200);

/// What an endpoint tells the call (the engine) once.
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

/// One RTP packet's worth of the user's voice, for the endpoint to send.
pub struct Frame {
    pub pt: u8,
    /// Extended sequence number (the endpoint sends its low 16 bits).
    pub seq: u64,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
    /// When it was due.
    pub at: Instant,
}

pub struct Voice {
    opus_pt: u8,
    dtmf_pt: Option<u8>,
    encoder: Encoder,
    decoder: Decoder,
    silent_packet: Vec<u8>,
    source: Source,
    next_frame: Option<Instant>,
    seq: u64,
    rtp_time: u32,
    keys: VecDeque<u8>,
    /// The press being sent: its packets, the next one, its RTP timestamp.
    pressing: Option<(Vec<dtmf::Event>, usize, u32)>,
    pause_until: Option<Instant>,
    dtmf_rx: dtmf::Receiver,
    levels: VecDeque<f64>,
    started: Instant,
    received: Received,
    sent: Sent,
    happenings: Vec<Happening>,
    /// Whether the business's audio stopped mid-call.
    watch: AudioWatch,
    /// How late each frame went out, in microseconds (bounded; for the benchmark).
    lateness_us: VecDeque<u32>,
}

impl Voice {
    /// Opus on `opus_pt`, key presses on `dtmf_pt`; `seed` (the SSRC) picks the first
    /// sequence number and timestamp, which RFC 3550 §5.1 wants unpredictable.
    pub fn new(opus_pt: u8, dtmf_pt: Option<u8>, seed: u32, now: Instant) -> Result<Voice, String> {
        let mut encoder = Encoder::new(Channels::Mono, SampleRate::Hz48000, Application::Voip)
            .map_err(|e| format!("opus encoder: {e:?}"))?;
        let decoder = Decoder::new(Channels::Mono, SampleRate::Hz48000)
            .map_err(|e| format!("opus decoder: {e:?}"))?;
        let mut silent_packet = vec![0u8; 256];
        let n = encoder
            .encode_float_to_slice(&[0f32; sound::FRAME], &mut silent_packet)
            .map_err(|e| format!("opus encoder: {e:?}"))?;
        silent_packet.truncate(n);
        Ok(Voice {
            opus_pt,
            dtmf_pt,
            encoder,
            decoder,
            silent_packet,
            source: Source::Silence,
            next_frame: None,
            seq: u64::from(seed & 0x7fff),
            rtp_time: seed,
            keys: VecDeque::new(),
            pressing: None,
            pause_until: None,
            dtmf_rx: dtmf::Receiver::default(),
            levels: VecDeque::new(),
            started: now,
            received: Received::default(),
            sent: Sent::default(),
            happenings: Vec::new(),
            watch: AudioWatch::default(),
            lateness_us: VecDeque::new(),
        })
    }

    /// The user starts (or stops) talking: a frame is due every 20 ms from `now`.
    pub fn set_talking(&mut self, talking: bool, now: Instant) {
        self.next_frame = talking.then_some(now);
    }

    /// The user stops talking for good (the call ended).
    pub fn stop(&mut self) {
        self.next_frame = None;
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

    /// When the next frame is due, while the user talks.
    pub fn frame_deadline(&self) -> Option<Instant> {
        self.next_frame
    }

    /// When [`Voice::check_audio`] must run next to notice a stop on time.
    pub fn watch_deadline(&self) -> Option<Instant> {
        self.watch.deadline()
    }

    /// Notes a mid-call stop of the business's audio (a happening, once).
    pub fn check_audio(&mut self, now: Instant) {
        if let Some(Change::Stopped { silent_for }) = self.watch.tick(now) {
            self.happenings.push(Happening::AudioStopped { silent_for });
        }
    }

    /// The frames due by `now`, each handed to `send`; a long stall skips frames rather
    /// than sending them in a burst.
    pub fn due_frames(&mut self, now: Instant, mut send: impl FnMut(Frame)) {
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
            send(self.frame(due));
            self.next_frame = Some(due + FRAME);
        }
    }

    fn frame(&mut self, at: Instant) -> Frame {
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
        let (pt, payload, marker, timestamp) = match (&mut self.pressing, self.dtmf_pt) {
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
        Frame {
            pt,
            seq,
            timestamp,
            marker,
            payload,
            at,
        }
    }

    /// A packet of the business's arrived at `at` (payload type, RTP timestamp,
    /// payload); other payload types are counted and otherwise ignored.
    pub fn heard(&mut self, at: Instant, pt: u8, timestamp: u32, payload: &[u8]) {
        self.received.packets += 1;
        self.received.bytes += payload.len() as u64;
        // Key presses replace the audio while they last (RFC 4733 §2.5): they are
        // business media too. Before the first audio the 20 s rule counts.
        let media = pt == self.opus_pt
            || (Some(pt) == self.dtmf_pt && self.received.first_packet_ms.is_some());
        if media && self.watch.packet(at) == Some(Change::Resumed) {
            self.happenings.push(Happening::AudioResumed);
        }
        if Some(pt) == self.dtmf_pt {
            self.dtmf_rx.packet(timestamp, payload);
            self.received.dtmf = self.dtmf_rx.digits.clone();
        } else if pt == self.opus_pt {
            if self.received.first_packet_ms.is_none() {
                self.received.first_packet_ms =
                    Some(at.saturating_duration_since(self.started).as_millis() as u64);
                self.happenings.push(Happening::FirstAudio);
            }
            let mut pcm = [0f32; 5760];
            if let Ok(n) = self.decoder.decode_float_to_slice(payload, &mut pcm, false) {
                if self.levels.len() == LEVEL_FRAMES {
                    self.levels.pop_front();
                }
                self.levels
                    .push_back(sound::level_dbfs(&pcm[..n.min(pcm.len())]));
            }
        }
    }

    /// The media path failed: the call learns why (once; the endpoint sees to that).
    pub fn failed(&mut self, why: String) {
        self.happenings.push(Happening::Failed(why));
    }

    pub fn take_happenings(&mut self) -> Vec<Happening> {
        std::mem::take(&mut self.happenings)
    }

    /// How late frames went out, in microseconds (the most recent 4,096).
    pub fn lateness_us(&self) -> impl Iterator<Item = u32> + '_ {
        self.lateness_us.iter().copied()
    }

    /// What was received, with the level of the last 500 ms.
    pub fn received(&self) -> Received {
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
        received
    }

    pub fn sent(&self) -> Sent {
        self.sent.clone()
    }

    /// What the user is saying: `silence`, `tone`, `wav`.
    pub fn playing(&self) -> &'static str {
        match self.source {
            Source::Silence => "silence",
            Source::Tone { .. } => "tone",
            Source::Clip { .. } => "wav",
        }
    }
}
