//! One SIP call's media endpoint for SDES-keyed SRTP (RFC 3711, RFC 4568) or, with
//! `sip_plain_rtp`, plain RTP: no ICE, no DTLS. Sans-IO like `endpoint/`: datagrams and
//! the time go in, datagrams to send and what happened come out.
//!
//! Where to send: cloud-api §8.3 says the business must send the first SRTP packet. We
//! read that strictly: the user's side sends nothing until the business's first
//! authentic packet arrives, and then sends to that packet's source address (symmetric
//! RTP, "latching"), whatever the `c=`/`m=` of its SDP said, as media servers behind
//! NAT expect. Until then the SDP's address only tells the shell which packets are ours.

use super::endpoint::{Datagram, Phase, Report};
use super::sdp::RtpSession;
use super::sound::Source;
use super::srtp::{self, Refusal};
use super::voice::{Happening, Voice};
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

/// SSRCs of the business given a replay state each (one audio stream, and a few more
/// for a media server that changes its SSRC mid-call).
const MAX_SSRCS: usize = 8;

/// What `GET /__emulator/calls/{id}/media` adds for an RTP endpoint.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RtpReport {
    /// `sdes` (SRTP keyed by `a=crypto`) or `none` (plain RTP).
    pub keying: &'static str,
    /// Where the business's SDP said its media is.
    pub remote: String,
    /// Where the user's audio goes: the source of the business's first authentic packet
    /// (none yet: the user waits for the business to send first, cloud-api §8.3).
    pub latched: Option<String>,
    /// Packets dropped, by why.
    pub refused: Refused,
    /// Why the last packet was dropped, in words (e.g. `authentication failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_refusal: Option<String>,
    pub rtcp_packets: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Refused {
    pub authentication: u64,
    pub replayed: u64,
    pub malformed: u64,
}

struct Srtp {
    sender: srtp::Sender,
    key: srtp::MasterKey,
    /// One receiver per SSRC of the business (each has its own rollover and replay state).
    receivers: HashMap<u32, srtp::Receiver>,
}

pub struct RtpEndpoint {
    session: RtpSession,
    srtp: Option<Srtp>,
    ssrc: u32,
    latched: Option<SocketAddr>,
    /// The SSRC of the first plain RTP packet taken.
    plain_ssrc: Option<u32>,
    voice: Voice,
    talking: bool,
    phase: Phase,
    report: RtpReport,
    outbox: Vec<Datagram>,
}

impl RtpEndpoint {
    /// The endpoint of one call; `ssrc` is the user's (from the shell's randomness: it
    /// also seeds the first sequence number and timestamp).
    pub fn new(session: &RtpSession, ssrc: u32, now: Instant) -> Result<RtpEndpoint, String> {
        let srtp = match (&session.local_key, &session.remote.crypto) {
            (Some(ours), Some(theirs)) => Some(Srtp {
                sender: srtp::Sender::new(ours),
                key: theirs.key.clone(),
                receivers: HashMap::new(),
            }),
            (None, None) => None,
            _ => return Err("SRTP keys on one side only: both SDPs need an a=crypto line, or neither (plain RTP)".into()),
        };
        let voice = Voice::new(session.remote.opus_pt, session.remote.dtmf_pt, ssrc, now)?;
        Ok(RtpEndpoint {
            report: RtpReport {
                keying: if srtp.is_some() { "sdes" } else { "none" },
                remote: session.remote.addr.to_string(),
                ..RtpReport::default()
            },
            session: session.clone(),
            srtp,
            ssrc,
            latched: None,
            plain_ssrc: None,
            voice,
            talking: false,
            phase: Phase::Connecting,
            outbox: Vec::new(),
        })
    }

    /// Whether a datagram from `from` is this call's by its address: the one its SDP
    /// named, or the one it latched to.
    pub fn accepts_address(&self, from: SocketAddr) -> bool {
        !self.is_finished() && (self.latched == Some(from) || self.session.remote.addr == from)
    }

    /// Whether a datagram from an address no call named is this call's: by
    /// [`RtpEndpoint::claims`], and only before latching (afterwards the business is
    /// known by its address).
    pub fn accepts_content(&self, bytes: &[u8]) -> bool {
        !self.is_finished() && self.latched.is_none() && self.claims(bytes)
    }

    /// Whether an RTP packet is this call's by its content: SRTP by its key (the tag
    /// checks), plain RTP by the SSRC its SDP announced or the one it sent with. How
    /// the shell tells apart calls whose business uses one address for several.
    pub fn claims(&self, bytes: &[u8]) -> bool {
        if srtp::is_rtcp(bytes) {
            return false;
        }
        let Some(x) = rtp_ssrc(bytes) else {
            return false;
        };
        match &self.srtp {
            Some(s) => match s.receivers.get(&x) {
                Some(r) => r.authenticates(bytes),
                None => srtp::Receiver::new(&s.key).authenticates(bytes),
            },
            None => Some(x) == self.session.remote.ssrc || Some(x) == self.plain_ssrc,
        }
    }

    pub fn receive(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if self.is_finished() {
            return;
        }
        if srtp::is_rtcp(bytes) {
            // The business's reports are read (checked) and dropped: the user's side
            // needs nothing from them and sends none.
            let ok = match &mut self.srtp {
                Some(s) => {
                    let key = &s.key;
                    let r = s
                        .receivers
                        .values_mut()
                        .next()
                        .map(|r| r.unprotect_rtcp(bytes))
                        .unwrap_or_else(|| srtp::Receiver::new(key).unprotect_rtcp(bytes));
                    r.map(|_| ()).map_err(|e| self.refuse(e))
                }
                None => Ok(()),
            };
            if ok.is_ok() {
                self.report.rtcp_packets += 1;
            }
            return;
        }
        let packet = match &mut self.srtp {
            Some(s) => {
                let Some(ssrc) = rtp_ssrc(bytes) else {
                    self.refuse(Refusal::Malformed);
                    return;
                };
                if !s.receivers.contains_key(&ssrc) && s.receivers.len() >= MAX_SSRCS {
                    self.refuse(Refusal::Malformed);
                    return;
                }
                let key = &s.key;
                let r = s
                    .receivers
                    .entry(ssrc)
                    .or_insert_with(|| srtp::Receiver::new(key));
                match r.unprotect(bytes) {
                    Ok(p) => p,
                    Err(e) => {
                        self.refuse(e);
                        return;
                    }
                }
            }
            None => {
                if srtp::rtp_header_len(bytes).is_none() {
                    self.refuse(Refusal::Malformed);
                    return;
                }
                bytes.to_vec()
            }
        };
        let Some((pt, timestamp, payload)) = rtp_payload(&packet) else {
            self.refuse(Refusal::Malformed);
            return;
        };
        if self.latched.is_none() {
            self.latched = Some(from);
            self.plain_ssrc = rtp_ssrc(&packet);
            self.report.latched = Some(from.to_string());
            self.phase = Phase::Connected;
            if self.talking {
                // The first frame goes now; none were owed while we waited.
                self.voice.set_talking(true, now);
            }
        }
        self.voice.heard(now, pt, timestamp, payload);
    }

    fn refuse(&mut self, why: Refusal) {
        let n = match why {
            Refusal::Authentication => &mut self.report.refused.authentication,
            Refusal::Replayed => &mut self.report.refused.replayed,
            Refusal::Malformed => &mut self.report.refused.malformed,
        };
        *n += 1;
        self.report.last_refusal = Some(match why {
            Refusal::Authentication => format!(
                "authentication failed: the packets' SRTP tag does not match the key of the business's a=crypto ({} packets)",
                self.report.refused.authentication
            ),
            _ => why.describe().to_owned(),
        });
    }

    /// The user starts (or stops) talking: audio flows once the business has sent.
    pub fn set_talking(&mut self, talking: bool, now: Instant) {
        self.talking = talking;
        self.voice.set_talking(talking, now);
    }

    pub fn play(&mut self, source: Source) {
        self.voice.play(source);
    }

    pub fn press(&mut self, digits: &str) -> Result<(), String> {
        self.voice.press(digits)
    }

    /// When [`RtpEndpoint::tick`] must run next; `None`: only a packet can change
    /// anything.
    pub fn deadline(&self) -> Option<Instant> {
        if self.is_finished() {
            return None;
        }
        let frame = self
            .voice
            .frame_deadline()
            .filter(|_| self.latched.is_some());
        match (frame, self.voice.watch_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Advances to `now`: the frames due, once there is somewhere to send them.
    pub fn tick(&mut self, now: Instant) {
        if self.is_finished() {
            return;
        }
        self.voice.check_audio(now);
        let Some(to) = self.latched else {
            return;
        };
        let (srtp, outbox, ssrc) = (&mut self.srtp, &mut self.outbox, self.ssrc);
        self.voice.due_frames(now, |f| {
            let mut p = Vec::with_capacity(12 + f.payload.len());
            p.push(0x80);
            p.push((u8::from(f.marker) << 7) | (f.pt & 0x7f));
            p.extend_from_slice(&(f.seq as u16).to_be_bytes());
            p.extend_from_slice(&f.timestamp.to_be_bytes());
            p.extend_from_slice(&ssrc.to_be_bytes());
            p.extend_from_slice(&f.payload);
            let bytes = match srtp {
                Some(s) => s.sender.protect(&p),
                None => Some(p),
            };
            if let Some(bytes) = bytes {
                outbox.push(Datagram { to, bytes });
            }
        });
    }

    /// Datagrams to send, after any input or tick.
    pub fn drain(&mut self, out: &mut Vec<Datagram>) {
        out.append(&mut self.outbox);
    }

    pub fn close(&mut self) {
        if !matches!(self.phase, Phase::Failed(_)) {
            self.phase = Phase::Closed;
        }
        self.talking = false;
        self.voice.stop();
    }

    pub fn take_happenings(&mut self) -> Vec<Happening> {
        self.voice.take_happenings()
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Failed(_) | Phase::Closed)
    }

    pub fn report(&self) -> Report {
        Report {
            state: self.phase.name().into(),
            ice: "none".into(),
            dtls: "none".into(),
            failure: self.phase.failure(),
            playing: self.voice.playing(),
            received: self.voice.received(),
            sent: self.voice.sent(),
            rtp: Some(self.report.clone()),
        }
    }
}

/// The SSRC of an RTP packet.
fn rtp_ssrc(p: &[u8]) -> Option<u32> {
    srtp::rtp_header_len(p)?;
    Some(u32::from_be_bytes([p[8], p[9], p[10], p[11]]))
}

/// Payload type, timestamp and payload (without padding) of an RTP packet.
fn rtp_payload(p: &[u8]) -> Option<(u8, u32, &[u8])> {
    let h = srtp::rtp_header_len(p)?;
    let mut end = p.len();
    if p[0] & 0x20 != 0 {
        let pad = usize::from(*p.last()?);
        end = end.checked_sub(pad).filter(|e| *e >= h)?;
    }
    let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
    Some((p[1] & 0x7f, ts, &p[h..end]))
}

#[cfg(test)]
mod tests;
