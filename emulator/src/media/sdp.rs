//! What the media endpoint needs from SDP: the business's ICE credentials, candidates,
//! DTLS fingerprint and role, mid and payload types ([`Remote::of`]), and Meta's SDP made
//! real ([`localize`]): the endpoint's port, candidate and certificate fingerprint put in
//! place of the shaped placeholders, so a WebRTC stack can connect to it.
//!
//! An SDP without ICE credentials, a fingerprint or a usable candidate (the README's curl
//! walkthrough, every fixture) has no [`Remote`]: such calls stay signalling only.

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
        let mut in_audio = true;
        let mut seen_audio = false;
        for line in sdp.lines().map(str::trim_end) {
            if let Some(m) = line.strip_prefix("m=") {
                // Only the first audio section counts; a video section is skipped.
                in_audio = m.starts_with("audio ") && !seen_audio;
                seen_audio |= in_audio;
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
                "rtpmap" => {
                    let Some((pt, codec)) = value.split_once(' ') else {
                        continue;
                    };
                    let Ok(pt) = pt.parse::<u8>() else { continue };
                    let codec = codec.to_ascii_lowercase();
                    if codec.starts_with("opus/48000") && opus_pt.is_none() {
                        opus_pt = Some(pt);
                    } else if codec == "telephone-event/8000" && dtmf_pt.is_none() {
                        dtmf_pt = Some(pt);
                    }
                }
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
            match answer_line(line, r) {
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

/// A line of an answer, fitted to the offer it answers (`None`: not answered).
fn answer_line(line: &str, r: &Remote) -> Option<String> {
    Some(if line.starts_with("a=setup:") {
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
    } else if let Some(rest) = line.strip_prefix("a=rtpmap:111 ") {
        format!("a=rtpmap:{} {rest}", r.opus_pt)
    } else if let Some(rest) = line.strip_prefix("a=rtcp-fb:111 ") {
        format!("a=rtcp-fb:{} {rest}", r.opus_pt)
    } else if let Some(rest) = line.strip_prefix("a=fmtp:111 ") {
        format!("a=fmtp:{} {rest}", r.opus_pt)
    } else if let Some(rest) = line.strip_prefix("a=rtpmap:126 ") {
        // telephone-event is answered only when offered.
        format!("a=rtpmap:{} {rest}", r.dtmf_pt?)
    } else {
        line.to_owned()
    })
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
}
