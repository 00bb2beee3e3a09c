//! What the media endpoint needs from SDP: the business's ICE credentials, candidates,
//! DTLS fingerprint and role, mid and payload types ([`Remote::of`]), and Meta's SDP made
//! real ([`localize`]): the endpoint's port, candidate and certificate fingerprint put in
//! place of the shaped placeholders, so a WebRTC stack can connect to it.
//!
//! An SDP without ICE credentials, a fingerprint or a usable candidate (the README's curl
//! walkthrough, every fixture) has no [`Remote`]: such calls stay signalling only.

use super::srtp;
use std::net::SocketAddr;

/// The user's media endpoint as the SDP shows it: where it listens and the SHA-256
/// fingerprint of its DTLS certificate (`AA:BB:…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    pub addr: SocketAddr,
    pub fingerprint: String,
}

/// Who starts the DTLS handshake (RFC 5763 §5, `a=setup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    Active,
    Passive,
    ActPass,
}

/// The business's side of the media path, read from its SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub ufrag: String,
    pub pwd: String,
    /// Hash function name (`sha-256`) and the colon-separated hex value.
    pub fingerprint: (String, String),
    pub setup: Setup,
    /// UDP host candidates (IPv4 and IPv6); others (TCP, relay) are ignored.
    pub candidates: Vec<SocketAddr>,
    /// The audio section's `a=mid` (`audio` when absent).
    pub mid: String,
    /// The payload type of opus/48000/2 in the audio section.
    pub opus_pt: u8,
    /// The payload type of telephone-event/8000, if offered.
    pub dtmf_pt: Option<u8>,
    /// The SSRC the business sends audio with, if the SDP says (`a=ssrc:`).
    pub ssrc: Option<u32>,
}

impl Remote {
    /// The media side of an SDP, or `None` when it lacks what a connection needs: ICE
    /// credentials, a fingerprint, an opus payload type and one UDP candidate.
    pub fn of(sdp: &str) -> Option<Remote> {
        let mut ufrag = None;
        let mut pwd = None;
        let mut fingerprint = None;
        let mut setup = Setup::ActPass;
        let mut candidates = Vec::new();
        let mut mid = None;
        let mut opus_pt = None;
        let mut dtmf_pt = None;
        let mut ssrc = None;
        for (name, value) in audio_attributes(sdp) {
            match name {
                "ice-ufrag" => ufrag = Some(value.to_owned()),
                "ice-pwd" => pwd = Some(value.to_owned()),
                "fingerprint" => {
                    // Stacks such as aiortc list sha-256, sha-384 and sha-512: the endpoint
                    // checks sha-256, so that one wins over the others.
                    let Some((alg, hex)) = value.split_once(' ') else {
                        continue;
                    };
                    let alg = alg.to_ascii_lowercase();
                    let have_256 = fingerprint.as_ref().is_some_and(|(a, _)| a == "sha-256");
                    if fingerprint.is_none() || (alg == "sha-256" && !have_256) {
                        fingerprint = Some((alg, hex.trim().to_owned()));
                    }
                }
                "setup" => {
                    setup = match value {
                        "active" => Setup::Active,
                        "passive" => Setup::Passive,
                        _ => Setup::ActPass,
                    }
                }
                "candidate" => candidates.extend(candidate(value)),
                "mid" => mid = Some(value.to_owned()),
                "rtpmap" => rtpmap(value, &mut opus_pt, &mut dtmf_pt),
                "ssrc" if ssrc.is_none() => {
                    ssrc = value.split(' ').next().and_then(|s| s.parse().ok());
                }
                _ => {}
            }
        }
        if candidates.is_empty() {
            return None;
        }
        Some(Remote {
            ufrag: ufrag?,
            pwd: pwd?,
            fingerprint: fingerprint?,
            setup,
            candidates,
            mid: mid.unwrap_or_else(|| "audio".into()),
            opus_pt: opus_pt?,
            dtmf_pt,
            ssrc,
        })
    }
}

/// The business's side of a plain RTP or SDES-keyed SRTP session (SIP calls), read
/// from its SDP: where it said its media is, its payload types and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpRemote {
    /// The audio section's (or the session's) `c=` address and the `m=audio` port.
    pub addr: SocketAddr,
    pub opus_pt: u8,
    pub dtmf_pt: Option<u8>,
    pub ssrc: Option<u32>,
    /// The key the business sends with (`a=crypto:`); `None` for plain RTP.
    pub crypto: Option<srtp::Crypto>,
}

impl RtpRemote {
    /// `None` when the SDP names nothing to send to (no `c=`, `0.0.0.0`, port 0) or no
    /// opus: such calls stay signalling only. `Some(Err)`: it has `a=crypto` lines but
    /// none of Meta's suite, or an unusable key; the text says why.
    pub fn of(sdp: &str) -> Option<Result<RtpRemote, String>> {
        let mut session_ip = None;
        let mut media_ip = None;
        let mut port = None;
        let mut opus_pt = None;
        let mut dtmf_pt = None;
        let mut ssrc = None;
        let mut crypto: Option<Result<srtp::Crypto, String>> = None;
        let mut in_audio = false;
        let mut seen_audio = false;
        let mut seen_m = false;
        for line in sdp.lines().map(str::trim_end) {
            if let Some(m) = line.strip_prefix("m=") {
                seen_m = true;
                in_audio = m.starts_with("audio ") && !seen_audio;
                if in_audio {
                    seen_audio = true;
                    port = m.split(' ').nth(1).and_then(|p| p.parse::<u16>().ok());
                }
                continue;
            }
            if let Some(c) = line.strip_prefix("c=IN ") {
                let ip = c
                    .split(' ')
                    .nth(1)
                    .and_then(|a| a.split('/').next())
                    .and_then(|a| a.parse::<std::net::IpAddr>().ok());
                if !seen_m {
                    session_ip = ip;
                } else if in_audio {
                    media_ip = ip;
                }
                continue;
            }
            if !in_audio {
                continue;
            }
            let Some(attr) = line.strip_prefix("a=") else {
                continue;
            };
            let (name, value) = attr.split_once(':').unwrap_or((attr, ""));
            match name {
                "rtpmap" => rtpmap(value, &mut opus_pt, &mut dtmf_pt),
                "ssrc" if ssrc.is_none() => {
                    ssrc = value.split(' ').next().and_then(|s| s.parse().ok());
                }
                // RFC 4568 §5.1.1: an offer may list several keys; the first of a suite
                // we speak is the one answered. The first refusal is kept to say why.
                "crypto" if !matches!(crypto, Some(Ok(_))) => {
                    let c = srtp::Crypto::parse(value);
                    if c.is_ok() || crypto.is_none() {
                        crypto = Some(c);
                    }
                }
                _ => {}
            }
        }
        let ip = media_ip.or(session_ip)?;
        let port = port.filter(|p| *p != 0)?;
        if ip.is_unspecified() {
            return None;
        }
        let opus_pt = opus_pt?;
        Some(match crypto {
            Some(Err(why)) => Err(why),
            c => Ok(RtpRemote {
                addr: SocketAddr::new(ip, port),
                opus_pt,
                dtmf_pt,
                ssrc,
                crypto: c.and_then(Result::ok),
            }),
        })
    }
}

/// One call's RTP session, as the engine hands it to the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpSession {
    pub remote: RtpRemote,
    /// The key the user sends with (the `a=crypto:` of our own SDP); `None` with the
    /// business's: plain RTP (`sip_plain_rtp`).
    pub local_key: Option<srtp::MasterKey>,
}

/// Meta's SDES SDP (as [`crate::domain::sdp::meta_sdes_sdp`] shapes it) made real for
/// the endpoint at `local`: its address and port. For an answer to `remote`'s offer,
/// also the offer's payload types and crypto tag, or plain `RTP/AVP` without a key when
/// the offer is plain RTP.
pub fn localize_rtp(sdp: &str, local: SocketAddr, remote: Option<&RtpRemote>) -> String {
    let ip = local.ip();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let plain = remote.is_some_and(|r| r.crypto.is_none());
    let mut out: Vec<String> = Vec::new();
    for line in sdp.split("\r\n") {
        let l = if let Some(rest) = line.strip_prefix("m=audio ") {
            let mut f = rest.split(' ').skip(1);
            let proto = f.next().unwrap_or("RTP/SAVP");
            let proto = if plain { "RTP/AVP" } else { proto };
            let pts = match remote {
                Some(r) => [Some(r.opus_pt), r.dtmf_pt]
                    .iter()
                    .flatten()
                    .map(u8::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                None => f.collect::<Vec<_>>().join(" "),
            };
            format!("m=audio {} {proto} {pts}", local.port())
        } else if line.starts_with("c=IN ") {
            format!("c=IN {family} {ip}")
        } else if let Some(rest) = line.strip_prefix("a=crypto:") {
            match remote {
                Some(r) => match &r.crypto {
                    // RFC 4568 §6.1: the answer's line carries the tag it accepts.
                    Some(c) => {
                        let (_, tail) = rest.split_once(' ').unwrap_or(("", rest));
                        format!("a=crypto:{} {tail}", c.tag)
                    }
                    None => continue,
                },
                None => line.to_owned(),
            }
        } else if let Some(r) = remote {
            match answer_line(line, r.opus_pt, r.dtmf_pt) {
                Some(l) => l,
                None => continue,
            }
        } else {
            line.to_owned()
        };
        out.push(l);
    }
    out.join("\r\n")
}

/// `foundation component transport priority address port typ host …` → the address of
/// a UDP host candidate.
fn candidate(value: &str) -> Option<SocketAddr> {
    let f: Vec<&str> = value.split_whitespace().collect();
    if f.len() < 8 || !f[2].eq_ignore_ascii_case("udp") || f[1] != "1" || f[7] != "host" {
        return None;
    }
    let ip: std::net::IpAddr = f[4].parse().ok()?;
    let port: u16 = f[5].parse().ok()?;
    (port != 0).then_some(SocketAddr::new(ip, port))
}

/// The ICE username fragment and password an SDP of ours carries.
pub fn ice_credentials(sdp: &str) -> Option<(String, String)> {
    let find = |p: &str| {
        sdp.lines()
            .find_map(|l| l.trim_end().strip_prefix(p).map(str::to_owned))
    };
    Some((find("a=ice-ufrag:")?, find("a=ice-pwd:")?))
}

/// Meta's SDP (as [`crate::domain::sdp::meta_sdp`] shapes it) made real for `local`: its
/// port, address and candidate, its certificate's fingerprint. For an answer to
/// `remote`'s offer, also the offer's mid, payload types and the DTLS role that fits
/// (passive unless the offer is passive itself).
pub fn localize(sdp: &str, local: &Local, remote: Option<&Remote>) -> String {
    let ip = local.addr.ip();
    let port = local.addr.port();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut out: Vec<String> = Vec::new();
    for line in sdp.split("\r\n") {
        let l = if let Some(rest) = line.strip_prefix("m=audio ") {
            let (_, tail) = rest.split_once(' ').unwrap_or(("", rest));
            let tail = match remote {
                Some(r) => {
                    let pts = [Some(r.opus_pt), r.dtmf_pt]
                        .iter()
                        .flatten()
                        .map(u8::to_string)
                        .collect::<Vec<_>>()
                        .join(" ");
                    format!("UDP/TLS/RTP/SAVPF {pts}")
                }
                None => tail.to_owned(),
            };
            format!("m=audio {port} {tail}")
        } else if line.starts_with("c=IN ") {
            format!("c=IN {family} {ip}")
        } else if line.starts_with("a=candidate:") {
            format!(
                "a=candidate:1 1 udp 2113937151 {ip} {port} typ host generation 0 network-cost 50"
            )
        } else if line.starts_with("a=fingerprint:") {
            format!("a=fingerprint:sha-256 {}", local.fingerprint)
        } else if let Some(r) = remote {
            match answer_line(line, r.opus_pt, r.dtmf_pt).map(|l| dtls_line(l, r)) {
                Some(l) => l,
                None => continue,
            }
        } else {
            line.to_owned()
        };
        out.push(l);
    }
    out.join("\r\n")
}

/// The DTLS and bundle lines of an answer, fitted to the offer it answers.
fn dtls_line(line: String, r: &Remote) -> String {
    if line.starts_with("a=setup:") {
        let role = if r.setup == Setup::Passive {
            "active"
        } else {
            "passive"
        };
        format!("a=setup:{role}")
    } else if line.starts_with("a=mid:") {
        format!("a=mid:{}", r.mid)
    } else if line.starts_with("a=group:BUNDLE ") {
        format!("a=group:BUNDLE {}", r.mid)
    } else {
        line
    }
}

/// A line of an answer with the offer's payload types (`None`: telephone-event, not
/// offered, is not answered).
fn answer_line(line: &str, opus_pt: u8, dtmf_pt: Option<u8>) -> Option<String> {
    Some(if let Some(rest) = line.strip_prefix("a=rtpmap:111 ") {
        format!("a=rtpmap:{opus_pt} {rest}")
    } else if let Some(rest) = line.strip_prefix("a=rtcp-fb:111 ") {
        format!("a=rtcp-fb:{opus_pt} {rest}")
    } else if let Some(rest) = line.strip_prefix("a=fmtp:111 ") {
        format!("a=fmtp:{opus_pt} {rest}")
    } else if let Some(rest) = line.strip_prefix("a=rtpmap:126 ") {
        format!("a=rtpmap:{} {rest}", dtmf_pt?)
    } else {
        line.to_owned()
    })
}

/// The `a=` attributes, as (name, value), of an SDP's session part and its first audio
/// section: a video section, or a second audio one, is skipped.
pub(super) fn audio_attributes(sdp: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut in_audio = true;
    let mut seen_audio = false;
    sdp.lines().map(str::trim_end).filter_map(move |line| {
        if let Some(m) = line.strip_prefix("m=") {
            in_audio = m.starts_with("audio ") && !seen_audio;
            seen_audio |= in_audio;
            return None;
        }
        let attr = line.strip_prefix("a=").filter(|_| in_audio)?;
        Some(attr.split_once(':').unwrap_or((attr, "")))
    })
}

/// An `a=rtpmap:` value: notes the first opus/48000 and the first telephone-event/8000
/// payload types.
fn rtpmap(value: &str, opus_pt: &mut Option<u8>, dtmf_pt: &mut Option<u8>) {
    let Some((pt, codec)) = value.split_once(' ') else {
        return;
    };
    let Ok(pt) = pt.parse::<u8>() else { return };
    let codec = codec.to_ascii_lowercase();
    if codec.starts_with("opus/48000") && opus_pt.is_none() {
        *opus_pt = Some(pt);
    } else if codec == "telephone-event/8000" && dtmf_pt.is_none() {
        *dtmf_pt = Some(pt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::IdGen;
    use crate::domain::sdp::meta_sdp;

    /// aiortc's offer, trimmed: full ICE, actpass, opus on 96, no telephone-event.
    const AIORTC_OFFER: &str = "v=0\r\no=- 3921 3921 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=msid-semantic:WMS *\r\nm=audio 40001 UDP/TLS/RTP/SAVPF 96 0 8\r\nc=IN IP4 127.0.0.1\r\na=sendrecv\r\na=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=mid:0\r\na=msid:a b\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=rtcp-mux\r\na=ssrc:1234567 cname:x\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\na=candidate:c1 1 udp 2130706431 127.0.0.1 40001 typ host\r\na=candidate:c2 1 tcp 2130706431 127.0.0.1 9 typ host tcptype active\r\na=end-of-candidates\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef012345\r\na=fingerprint:sha-256 7B:8B:F0:65\r\na=setup:actpass\r\n";

    #[test]
    fn a_webrtc_offer_has_a_remote() {
        let r = Remote::of(AIORTC_OFFER).expect("remote");
        assert_eq!(r.ufrag, "abcd");
        assert_eq!(r.pwd, "0123456789abcdef012345");
        assert_eq!(r.fingerprint, ("sha-256".into(), "7B:8B:F0:65".into()));
        assert_eq!(r.setup, Setup::ActPass);
        assert_eq!(r.candidates, vec!["127.0.0.1:40001".parse().unwrap()]);
        assert_eq!((r.mid.as_str(), r.opus_pt, r.dtmf_pt), ("0", 96, None));
        assert_eq!(r.ssrc, Some(1234567));
    }

    #[test]
    fn of_several_fingerprints_the_sha_256_one_is_checked() {
        // aiortc 1.16 lists three, sha-256 first; another stack may list it last.
        let several = AIORTC_OFFER.replace(
            "a=fingerprint:sha-256 7B:8B:F0:65\r\n",
            "a=fingerprint:sha-512 47:FB\r\na=fingerprint:sha-256 7B:8B:F0:65\r\na=fingerprint:sha-384 FC:BE\r\n",
        );
        let r = Remote::of(&several).expect("remote");
        assert_eq!(r.fingerprint, ("sha-256".into(), "7B:8B:F0:65".into()));
    }

    #[test]
    fn signalling_only_sdps_have_no_remote() {
        // The README's curl walkthrough and the test suites' SDPs: no ICE, no candidate.
        let readme = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 AA:BB\r\n";
        assert_eq!(Remote::of(readme), None);
        let no_candidate = AIORTC_OFFER
            .split("\r\n")
            .filter(|l| !l.starts_with("a=candidate:"))
            .collect::<Vec<_>>()
            .join("\r\n");
        assert_eq!(Remote::of(&no_candidate), None);
        let no_fingerprint = AIORTC_OFFER.replace("a=fingerprint:", "a=x-fingerprint:");
        assert_eq!(Remote::of(&no_fingerprint), None);
    }

    #[test]
    fn a_localized_offer_points_at_the_endpoint_and_keeps_its_shape() {
        let shaped = meta_sdp(&mut IdGen::new(7), true);
        let local = Local {
            addr: "127.0.0.1:51000".parse().unwrap(),
            fingerprint: "AB:CD".into(),
        };
        let real = localize(&shaped, &local, None);
        assert_eq!(real.lines().count(), shaped.lines().count());
        assert!(real.contains("m=audio 51000 UDP/TLS/RTP/SAVPF 111 126\r\n"));
        assert!(real.contains("a=candidate:1 1 udp 2113937151 127.0.0.1 51000 typ host"));
        assert!(real.contains("a=fingerprint:sha-256 AB:CD\r\n"));
        assert!(real.contains("a=setup:actpass"));
        assert_eq!(ice_credentials(&real), ice_credentials(&shaped));
        // The offer is a remote the way a business would read it.
        let r = Remote::of(&real).expect("our offer is connectable");
        assert_eq!(
            (r.opus_pt, r.dtmf_pt, r.mid.as_str()),
            (111, Some(126), "audio")
        );
    }

    #[test]
    fn an_answer_follows_the_offer() {
        let shaped = meta_sdp(&mut IdGen::new(7), false);
        let local = Local {
            addr: "127.0.0.1:51000".parse().unwrap(),
            fingerprint: "AB:CD".into(),
        };
        let remote = Remote::of(AIORTC_OFFER).unwrap();
        let real = localize(&shaped, &local, Some(&remote));
        assert!(
            real.contains("m=audio 51000 UDP/TLS/RTP/SAVPF 96\r\n"),
            "{real}"
        );
        assert!(real.contains("a=rtpmap:96 opus/48000/2\r\n"));
        assert!(real.contains("a=mid:0\r\n") && real.contains("a=group:BUNDLE 0\r\n"));
        assert!(real.contains("a=setup:passive\r\n"));
        assert!(!real.contains("telephone-event"), "{real}");
    }

    /// A business's SDES answer: media-level address, opus on 96, its key.
    const SDES_ANSWER: &str = "v=0\r\no=- 5 5 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 40010 RTP/SAVP 96 101\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\r\na=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^31\r\na=ssrc:42 cname:x\r\n";

    #[test]
    fn an_sdes_sdp_has_an_rtp_remote_with_the_key_of_our_suite() {
        let r = RtpRemote::of(SDES_ANSWER).unwrap().unwrap();
        assert_eq!(r.addr, "127.0.0.1:40010".parse().unwrap());
        assert_eq!((r.opus_pt, r.dtmf_pt, r.ssrc), (96, Some(101), Some(42)));
        let c = r.crypto.unwrap();
        assert_eq!(c.tag, 2);
        assert_eq!(c.key.key[..3], [0, 1, 2]);
        // Only another suite: refused, saying which.
        let other = SDES_ANSWER.replace("a=crypto:2 ", "a=x-crypto:2 ");
        assert!(RtpRemote::of(&other)
            .unwrap()
            .unwrap_err()
            .contains("AES_CM_128_HMAC_SHA1_32"));
        // Plain RTP: no key.
        let plain = other.replace("a=crypto:", "a=x-crypto:");
        assert_eq!(RtpRemote::of(&plain).unwrap().unwrap().crypto, None);
        // Nothing to send to: signalling only.
        assert_eq!(RtpRemote::of(&SDES_ANSWER.replace("40010", "0")), None);
        let unspecified = SDES_ANSWER.replace("c=IN IP4 127.0.0.1\r\n", "");
        assert_eq!(RtpRemote::of(&unspecified), None);
    }

    #[test]
    fn an_sdes_sdp_of_ours_points_at_the_endpoint_and_answers_the_offer() {
        let shaped = crate::domain::sdp::meta_sdes_sdp(&mut IdGen::new(7));
        let local: SocketAddr = "127.0.0.1:51000".parse().unwrap();
        let offer = localize_rtp(&shaped, local, None);
        assert!(
            offer.contains("m=audio 51000 RTP/SAVP 111 126\r\n"),
            "{offer}"
        );
        assert!(offer.contains("c=IN IP4 127.0.0.1\r\n"));
        let ours = RtpRemote::of(&offer).unwrap().unwrap();
        assert_eq!(ours.addr, local);
        assert!(ours.crypto.is_some());
        // The answer to a business's offer takes its payload types and crypto tag.
        let remote = RtpRemote::of(SDES_ANSWER).unwrap().unwrap();
        let answer = localize_rtp(&shaped, local, Some(&remote));
        assert!(
            answer.contains("m=audio 51000 RTP/SAVP 96 101\r\n"),
            "{answer}"
        );
        assert!(answer.contains("a=rtpmap:96 opus/48000/2\r\n"));
        assert!(
            answer.contains("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:"),
            "{answer}"
        );
        // A plain offer gets a plain answer, without a key.
        let plain = RtpRemote {
            crypto: None,
            ..remote
        };
        let answer = localize_rtp(&shaped, local, Some(&plain));
        assert!(
            answer.contains("m=audio 51000 RTP/AVP 96 101\r\n"),
            "{answer}"
        );
        assert!(!answer.contains("a=crypto"));
    }
}
