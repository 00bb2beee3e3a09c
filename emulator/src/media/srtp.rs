//! SRTP keyed by SDES (RFC 3711, RFC 4568): the one suite Meta offers,
//! `AES_CM_128_HMAC_SHA1_80` (cloud-api §8.4). Pure: packets in, packets out.
//!
//! - [`Crypto::parse`] reads an `a=crypto:` line (`inline:` key and salt, an optional
//!   lifetime; an MKI is refused).
//! - [`Sender`] protects the user's RTP; [`Receiver`] checks and decrypts the business's
//!   RTP (rollover counter estimated as RFC 3711 §3.3.1 says, 64-packet replay window)
//!   and its SRTCP, which the endpoint reads and drops.

use aes::cipher::{InnerIvInit, KeyInit, KeyIvInit, StreamCipher};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The suite's name in `a=crypto:` (RFC 4568 §6.2.1).
pub const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";
const KEY_LEN: usize = 16;
const SALT_LEN: usize = 14;
const AUTH_KEY_LEN: usize = 20;
/// HMAC-SHA1 truncated to 80 bits.
pub const TAG_LEN: usize = 10;
const REPLAY_WINDOW: u64 = 64;
/// RFC 3711 §9.2: SRTP stops after 2^48 packets; SRTCP's index is 31 bits.
const MAX_SRTCP_INDEX: u32 = 0x7fff_ffff;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;
type HmacSha1 = Hmac<Sha1>;

/// A master key and salt: what `inline:` carries.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    pub key: [u8; KEY_LEN],
    pub salt: [u8; SALT_LEN],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys stay out of logs and panics.
        f.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    /// The 30 bytes of key and salt.
    pub fn from_bytes(b: &[u8]) -> Option<MasterKey> {
        if b.len() != KEY_LEN + SALT_LEN {
            return None;
        }
        let mut key = [0; KEY_LEN];
        let mut salt = [0; SALT_LEN];
        key.copy_from_slice(&b[..KEY_LEN]);
        salt.copy_from_slice(&b[KEY_LEN..]);
        Some(MasterKey { key, salt })
    }

    /// `inline:` without the prefix: base64 of key and salt.
    pub fn inline(&self) -> String {
        let mut b = self.key.to_vec();
        b.extend_from_slice(&self.salt);
        base64::engine::general_purpose::STANDARD.encode(b)
    }
}

/// One `a=crypto:` attribute (RFC 4568 §9.1) of the suite we speak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub key: MasterKey,
}

impl Crypto {
    /// The value of an `a=crypto:` line: `1 AES_CM_128_HMAC_SHA1_80 inline:KEY[|lifetime]`.
    /// The text of an `Err` says why the line cannot be used, for the call's record.
    pub fn parse(value: &str) -> Result<Crypto, String> {
        let mut f = value.split_whitespace();
        let tag = f
            .next()
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or_else(|| format!("a=crypto:{value}: no tag"))?;
        let suite = f.next().unwrap_or("");
        if suite != SUITE {
            return Err(format!(
                "a=crypto suite {suite:?} is not offered: Meta's SDES offer has only {SUITE}"
            ));
        }
        let params = f.next().unwrap_or("");
        // Several keys (`inline:…;inline:…`) are for MKIs, which we refuse anyway.
        let Some(inline) = params.strip_prefix("inline:") else {
            return Err(format!("a=crypto:{tag}: no inline: key"));
        };
        let mut parts = inline.split('|');
        let b64 = parts.next().unwrap_or("");
        // The lifetime (`2^31` or a number) is accepted and not enforced: a call ends long
        // before 2^31 packets. An MKI (`1:4`) needs every packet to carry it: not spoken.
        for p in parts {
            if p.contains(':') {
                return Err(format!(
                    "a=crypto:{tag}: a master key identifier (MKI {p}) is not supported"
                ));
            }
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("a=crypto:{tag}: the inline key is not base64 ({e})"))?;
        let key = MasterKey::from_bytes(&bytes).ok_or_else(|| {
            format!(
                "a=crypto:{tag}: the inline key has {} bytes, {SUITE} needs 30 (key and salt)",
                bytes.len()
            )
        })?;
        Ok(Crypto { tag, key })
    }

    /// The first `a=crypto:` line of an SDP's first audio section, parsed; `None` without
    /// one.
    pub fn of_sdp(sdp: &str) -> Option<Result<Crypto, String>> {
        super::sdp::audio_attributes(sdp)
            .find(|(name, _)| *name == "crypto")
            .map(|(_, value)| Crypto::parse(value))
    }
}

/// Session keys for one direction of RTP or RTCP (RFC 3711 §4.3).
#[derive(Clone)]
struct SessionKeys {
    /// The session key's AES schedule, made once.
    cipher: aes::Aes128,
    salt: [u8; SALT_LEN],
    auth: HmacSha1,
}

impl SessionKeys {
    /// Labels 0, 1, 2 (RTP) or 3, 4, 5 (RTCP); key derivation rate 0, so index 0.
    fn derive(master: &MasterKey, first_label: u8) -> SessionKeys {
        let mut key = [0; KEY_LEN];
        let mut auth = [0; AUTH_KEY_LEN];
        let mut salt = [0; SALT_LEN];
        prf(master, first_label, &mut key);
        prf(master, first_label + 1, &mut auth);
        prf(master, first_label + 2, &mut salt);
        SessionKeys {
            cipher: aes::Aes128::new(&key.into()),
            salt,
            auth: <HmacSha1 as Mac>::new_from_slice(&auth).expect("HMAC takes any key length"),
        }
    }

    /// AES-CM (RFC 3711 §4.1.1): IV = salt·2^16 ⊕ SSRC·2^64 ⊕ index·2^16.
    fn apply_keystream(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..SALT_LEN].copy_from_slice(&self.salt);
        for (i, b) in ssrc.to_be_bytes().iter().enumerate() {
            iv[4 + i] ^= b;
        }
        for (i, b) in index.to_be_bytes()[2..].iter().enumerate() {
            iv[8 + i] ^= b;
        }
        let core = ctr::CtrCore::<aes::Aes128, ctr::flavors::Ctr128BE>::inner_iv_init(
            self.cipher.clone(),
            &iv.into(),
        );
        let mut c = Aes128Ctr::from_core(core);
        c.apply_keystream(data);
    }

    fn tag(&self, parts: &[&[u8]]) -> HmacSha1 {
        let mut m = self.auth.clone();
        for p in parts {
            m.update(p);
        }
        m
    }
}

/// The AES-CM PRF of RFC 3711 §4.3.3: `AES-CM(master key, (label·2^48 ⊕ salt)·2^16)`.
fn prf(master: &MasterKey, label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..SALT_LEN].copy_from_slice(&master.salt);
    // key_id = label || r (48 bits, r = 0): the label sits at byte 7 of the 14-byte salt.
    iv[7] ^= label;
    out.fill(0);
    let mut c = Aes128Ctr::new(&master.key.into(), &iv.into());
    c.apply_keystream(out);
}

/// The length of an RTP header with its CSRCs and extension, if the packet holds it.
pub fn rtp_header_len(p: &[u8]) -> Option<usize> {
    if p.len() < 12 || p[0] >> 6 != 2 {
        return None;
    }
    let mut n = 12 + 4 * usize::from(p[0] & 0x0f);
    if p[0] & 0x10 != 0 {
        let ext = p.get(n + 2..n + 4)?;
        n += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    (n <= p.len()).then_some(n)
}

/// Whether a datagram of an rtcp-mux port is RTCP: its payload type byte in 192–223
/// (RFC 5761 §4: the marker bit and PT together, PT 64–95).
pub fn is_rtcp(p: &[u8]) -> bool {
    p.len() >= 2 && (64..96).contains(&(p[1] & 0x7f))
}

/// Why a packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not an RTP/RTCP packet, or too short for its header and tag.
    Malformed,
    /// The tag does not match: another key, or a changed packet.
    Authentication,
    /// Seen before, or older than the replay window.
    Replayed,
}

impl Refusal {
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::Authentication => "authentication failed",
            Refusal::Replayed => "replayed",
        }
    }
}

/// The user's side sending: protects RTP packets of one SSRC.
pub struct Sender {
    rtp: SessionKeys,
    roc: u32,
    last_seq: Option<u16>,
}

impl Sender {
    pub fn new(master: &MasterKey) -> Sender {
        Sender {
            rtp: SessionKeys::derive(master, 0),
            roc: 0,
            last_seq: None,
        }
    }

    /// The SRTP packet of an RTP packet (`None` if it is not one).
    pub fn protect(&mut self, rtp: &[u8]) -> Option<Vec<u8>> {
        let h = rtp_header_len(rtp)?;
        let seq = u16::from_be_bytes([rtp[2], rtp[3]]);
        let ssrc = u32::from_be_bytes([rtp[8], rtp[9], rtp[10], rtp[11]]);
        // Packets go out in order: a smaller sequence number is a wrap.
        if self.last_seq.is_some_and(|l| seq < l && l - seq > 0x8000) {
            self.roc = self.roc.wrapping_add(1);
        }
        self.last_seq = Some(seq);
        let index = (u64::from(self.roc) << 16) | u64::from(seq);
        let mut out = Vec::with_capacity(rtp.len() + TAG_LEN);
        out.extend_from_slice(rtp);
        self.rtp.apply_keystream(ssrc, index, &mut out[h..]);
        let tag = self
            .rtp
            .tag(&[&out, &self.roc.to_be_bytes()])
            .finalize()
            .into_bytes();
        out.extend_from_slice(&tag[..TAG_LEN]);
        Some(out)
    }
}

/// A 64-packet sliding window over packet indexes (RFC 3711 §3.3.2).
#[derive(Default)]
struct ReplayWindow {
    top: Option<u64>,
    /// Bit i: index `top - i` was seen.
    seen: u64,
}

impl ReplayWindow {
    fn check(&self, index: u64) -> bool {
        match self.top {
            None => true,
            Some(top) if index > top => true,
            Some(top) => {
                let back = top - index;
                back < REPLAY_WINDOW && self.seen & (1 << back) == 0
            }
        }
    }

    fn accept(&mut self, index: u64) {
        match self.top {
            Some(top) if index <= top => self.seen |= 1 << (top - index),
            Some(top) => {
                let shift = index - top;
                self.seen = if shift >= REPLAY_WINDOW {
                    0
                } else {
                    self.seen << shift
                } | 1;
                self.top = Some(index);
            }
            None => {
                self.top = Some(index);
                self.seen = 1;
            }
        }
    }
}

/// The user's side receiving the business's SRTP and SRTCP (one SSRC of RTP: the
/// call's audio; the endpoint keeps a receiver per SSRC).
pub struct Receiver {
    rtp: SessionKeys,
    rtcp: SessionKeys,
    roc: u32,
    /// The highest sequence number authenticated (`s_l`).
    s_l: Option<u16>,
    window: ReplayWindow,
    rtcp_window: ReplayWindow,
}

impl Receiver {
    pub fn new(master: &MasterKey) -> Receiver {
        Receiver {
            rtp: SessionKeys::derive(master, 0),
            rtcp: SessionKeys::derive(master, 3),
            roc: 0,
            s_l: None,
            window: ReplayWindow::default(),
            rtcp_window: ReplayWindow::default(),
        }
    }

    /// The rollover counter a sequence number most likely belongs to (RFC 3711 §3.3.1,
    /// Appendix A).
    fn estimate(&self, seq: u16) -> u32 {
        let Some(s_l) = self.s_l else {
            return self.roc;
        };
        if s_l < 0x8000 {
            if seq > s_l && seq - s_l > 0x8000 {
                self.roc.wrapping_sub(1)
            } else {
                self.roc
            }
        } else if s_l - 0x8000 > seq {
            self.roc.wrapping_add(1)
        } else {
            self.roc
        }
    }

    /// Whether an SRTP packet carries this key's tag, without taking it: how the shell
    /// tells which call a packet from an unknown address belongs to.
    pub fn authenticates(&self, srtp: &[u8]) -> bool {
        let Some(h) = rtp_header_len(srtp) else {
            return false;
        };
        if srtp.len() < h + TAG_LEN {
            return false;
        }
        let (body, tag) = srtp.split_at(srtp.len() - TAG_LEN);
        let seq = u16::from_be_bytes([srtp[2], srtp[3]]);
        let v = self.estimate(seq);
        self.rtp
            .tag(&[body, &v.to_be_bytes()])
            .verify_truncated_left(tag)
            .is_ok()
    }

    /// The RTP packet of an SRTP packet, once its tag is right and it is no replay.
    pub fn unprotect(&mut self, srtp: &[u8]) -> Result<Vec<u8>, Refusal> {
        let h = rtp_header_len(srtp).ok_or(Refusal::Malformed)?;
        if srtp.len() < h + TAG_LEN {
            return Err(Refusal::Malformed);
        }
        let (body, tag) = srtp.split_at(srtp.len() - TAG_LEN);
        let seq = u16::from_be_bytes([srtp[2], srtp[3]]);
        let ssrc = u32::from_be_bytes([srtp[8], srtp[9], srtp[10], srtp[11]]);
        let v = self.estimate(seq);
        let index = (u64::from(v) << 16) | u64::from(seq);
        // Before the MAC, to spend no HMAC on old packets; after it, nothing changes
        // unless the packet is authentic.
        if !self.window.check(index) {
            return Err(Refusal::Replayed);
        }
        self.rtp
            .tag(&[body, &v.to_be_bytes()])
            .verify_truncated_left(tag)
            .map_err(|_| Refusal::Authentication)?;
        let mut out = body.to_vec();
        self.rtp.apply_keystream(ssrc, index, &mut out[h..]);
        self.window.accept(index);
        match self.s_l {
            None => {
                self.s_l = Some(seq);
                self.roc = v;
            }
            Some(s_l) => {
                if v == self.roc.wrapping_add(1) {
                    self.roc = v;
                    self.s_l = Some(seq);
                } else if v == self.roc && seq > s_l {
                    self.s_l = Some(seq);
                }
            }
        }
        Ok(out)
    }

    /// The RTCP packet of an SRTCP packet (RFC 3711 §3.4: `E||index` and the tag
    /// follow the encrypted part).
    pub fn unprotect_rtcp(&mut self, srtcp: &[u8]) -> Result<Vec<u8>, Refusal> {
        if srtcp.len() < 8 + 4 + TAG_LEN || srtcp[0] >> 6 != 2 {
            return Err(Refusal::Malformed);
        }
        let (body, tag) = srtcp.split_at(srtcp.len() - TAG_LEN);
        self.rtcp
            .tag(&[body])
            .verify_truncated_left(tag)
            .map_err(|_| Refusal::Authentication)?;
        let (packet, e_index) = body.split_at(body.len() - 4);
        let e_index = u32::from_be_bytes([e_index[0], e_index[1], e_index[2], e_index[3]]);
        let index = u64::from(e_index & MAX_SRTCP_INDEX);
        if !self.rtcp_window.check(index) {
            return Err(Refusal::Replayed);
        }
        self.rtcp_window.accept(index);
        let mut out = packet.to_vec();
        if e_index & 0x8000_0000 != 0 {
            let ssrc = u32::from_be_bytes([out[4], out[5], out[6], out[7]]);
            self.rtcp.apply_keystream(ssrc, index, &mut out[8..]);
        }
        Ok(out)
    }
}

/// SRTCP protection, for tests and peers (the user's side sends no RTCP).
pub fn protect_rtcp(master: &MasterKey, index: u32, rtcp: &[u8]) -> Option<Vec<u8>> {
    if rtcp.len() < 8 || index > MAX_SRTCP_INDEX {
        return None;
    }
    let keys = SessionKeys::derive(master, 3);
    let ssrc = u32::from_be_bytes([rtcp[4], rtcp[5], rtcp[6], rtcp[7]]);
    let mut out = rtcp.to_vec();
    keys.apply_keystream(ssrc, u64::from(index), &mut out[8..]);
    out.extend_from_slice(&(index | 0x8000_0000).to_be_bytes());
    let tag = keys.tag(&[&out]).finalize().into_bytes();
    out.extend_from_slice(&tag[..TAG_LEN]);
    Some(out)
}

#[cfg(test)]
mod tests;
