//! SDP as the Calling API sees it: what makes an offer or answer usable on `/calls`, when
//! two answers are the same, and the SDP Meta's side of a call sends: ICE-lite with a
//! DTLS fingerprint, or (SIP with SDES keying) plain RTP/SAVP with an `a=crypto` key.

use super::ids::IdGen;
use base64::Engine;

/// The longest SDP accepted, in bytes.
pub const MAX_SDP_BYTES: usize = 64 * 1024;

/// Why an SDP cannot carry a WhatsApp call: enough checking to catch integration bugs,
/// not a full SDP parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdpProblem {
    /// Longer than [`MAX_SDP_BYTES`]; its length in bytes.
    TooLong(usize),
    /// The first line, which is not `v=0`.
    NoVersionLine(String),
    /// No `m=audio` section: a WhatsApp call needs one.
    NoAudioSection,
    /// No `a=fingerprint` line, which DTLS (the default key exchange) needs.
    NoFingerprint,
}

/// A version line first, an audio section, and (with DTLS) a fingerprint.
pub fn check(sdp: &str, require_fingerprint: bool) -> Result<(), SdpProblem> {
    if sdp.len() > MAX_SDP_BYTES {
        return Err(SdpProblem::TooLong(sdp.len()));
    }
    let first = sdp.lines().next().unwrap_or("");
    if first.trim_end() != "v=0" {
        return Err(SdpProblem::NoVersionLine(first.to_owned()));
    }
    if !sdp.lines().any(|l| l.starts_with("m=audio ")) {
        return Err(SdpProblem::NoAudioSection);
    }
    if require_fingerprint && !sdp.lines().any(|l| l.starts_with("a=fingerprint:")) {
        return Err(SdpProblem::NoFingerprint);
    }
    Ok(())
}

/// Two SDP answers are the same when they differ at most in line endings and trailing
/// whitespace.
pub fn same(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    norm(a) == norm(b)
}

/// An SDP like Meta's: an ICE-lite offer (user-initiated calls) or answer
/// (business-initiated ones), its session id, ICE credentials and fingerprint drawn from
/// `ids` in that order.
pub fn meta_sdp(ids: &mut IdGen, offer: bool) -> String {
    let session = ids.u64() % 9_000_000_000_000_000_000 + 1_000_000_000_000_000_000;
    let ufrag = ids.alnum(12);
    let pwd = ids.alnum(32);
    let fp: Vec<String> = (0..32)
        .map(|_| ids.lower_hex(2).to_ascii_uppercase())
        .collect();
    let setup = if offer { "actpass" } else { "passive" };
    [
        "v=0".to_owned(),
        format!("o=- {session} 2 IN IP4 127.0.0.1"),
        "s=-".into(),
        "t=0 0".into(),
        "a=group:BUNDLE audio".into(),
        "a=ice-lite".into(),
        "m=audio 3480 UDP/TLS/RTP/SAVPF 111 126".into(),
        "c=IN IP4 127.0.0.1".into(),
        "a=rtcp:9 IN IP4 0.0.0.0".into(),
        "a=candidate:1 1 udp 2113937151 127.0.0.1 3480 typ host generation 0 network-cost 50"
            .into(),
        format!("a=ice-ufrag:{ufrag}"),
        format!("a=ice-pwd:{pwd}"),
        format!("a=fingerprint:sha-256 {}", fp.join(":")),
        format!("a=setup:{setup}"),
        "a=mid:audio".into(),
        "a=sendrecv".into(),
        "a=rtcp-mux".into(),
        "a=rtpmap:111 opus/48000/2".into(),
        "a=rtcp-fb:111 transport-cc".into(),
        "a=fmtp:111 minptime=10;useinbandfec=1".into(),
        "a=rtpmap:126 telephone-event/8000".into(),
        String::new(),
    ]
    .join("\r\n")
}

/// How the two sides agree SRTP keys: `srtp_key_exchange_protocol` of the number's
/// calling settings (cloud-api §7.1, §8.4), DTLS unless set to `SDES`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Keying {
    /// A DTLS handshake on the media path; the SDP carries `a=fingerprint` and `a=setup`.
    #[default]
    Dtls,
    /// The key travels in the SDP itself (`a=crypto`, RFC 4568), over SIP's TLS.
    Sdes,
}

impl Keying {
    /// From the settings value (`DTLS`, `SDES`, or unset), as stored.
    pub fn of_setting(protocol: Option<&str>) -> Keying {
        match protocol {
            Some(p) if p.eq_ignore_ascii_case("SDES") => Keying::Sdes,
            _ => Keying::Dtls,
        }
    }
}

/// The SDP Meta sends with `keying`: [`meta_sdp`] for DTLS, [`meta_sdes_sdp`] for SDES.
pub fn meta_sdp_keyed(ids: &mut IdGen, offer: bool, keying: Keying) -> String {
    match keying {
        Keying::Dtls => meta_sdp(ids, offer),
        Keying::Sdes => meta_sdes_sdp(ids),
    }
}

/// The crypto suite of Meta's SDES offers.
pub const SDES_SUITE: &str = "AES_CM_128_HMAC_SHA1_80";

/// An SDES SDP shaped like Meta's (cloud-api §8.4): `RTP/SAVP` with opus and
/// telephone-event, one `a=crypto` line whose 30-byte master key and salt are drawn from
/// `ids` (after the session id), and no ICE or DTLS lines. The same for an offer and an
/// answer: SDES has no `a=setup` roles.
pub fn meta_sdes_sdp(ids: &mut IdGen) -> String {
    let session = ids.u64() % 9_000_000_000_000_000_000 + 1_000_000_000_000_000_000;
    // AES_CM_128_HMAC_SHA1_80: a 16-byte master key then a 14-byte salt (RFC 4568 §6.2.1).
    let key_salt: Vec<u8> = (0..4)
        .flat_map(|_| ids.u64().to_be_bytes())
        .take(30)
        .collect();
    let inline = base64::engine::general_purpose::STANDARD.encode(key_salt);
    let ssrc = ids.u64() as u32;
    let msid = ids.lower_hex(32);
    let msid = format!(
        "{}-{}-{}-{}-{}",
        &msid[..8],
        &msid[8..12],
        &msid[12..16],
        &msid[16..20],
        &msid[20..]
    );
    [
        "v=0".to_owned(),
        format!("o=- {session} 2 IN IP4 127.0.0.1"),
        "s=-".into(),
        "t=0 0".into(),
        "m=audio 3480 RTP/SAVP 111 126".into(),
        "c=IN IP4 127.0.0.1".into(),
        "a=rtpmap:111 opus/48000/2".into(),
        "a=fmtp:111 maxaveragebitrate=20000;maxplaybackrate=16000;minptime=20;sprop-maxcapturerate=16000;useinbandfec=1".into(),
        "a=rtpmap:126 telephone-event/8000".into(),
        "a=ptime:20".into(),
        "a=maxptime:20".into(),
        format!("a=crypto:1 {SDES_SUITE} inline:{inline}"),
        format!("a=ssrc:{ssrc} cname:WhatsAppAudioStream1"),
        format!("a=msid:{msid} WhatsAppTrack1"),
        "a=sendrecv".into(),
        String::new(),
    ]
    .join("\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_comparison_ignores_line_endings() {
        assert!(same("v=0\r\nm=audio 1\r\n", "v=0\nm=audio 1"));
        assert!(!same("v=0\r\nm=audio 1\r\n", "v=0\nm=audio 2"));
    }

    #[test]
    fn problems_are_found_in_order() {
        let long = format!("v=0\r\nm=audio 1 RTP 0\r\n{}", "a=x\r\n".repeat(20_000));
        assert_eq!(check(&long, false), Err(SdpProblem::TooLong(long.len())));
        assert_eq!(
            check("o=x\r\nm=audio 1 RTP 0", true),
            Err(SdpProblem::NoVersionLine("o=x".into()))
        );
        assert_eq!(
            check("v=0\r\nm=video 1 RTP 0", true),
            Err(SdpProblem::NoAudioSection)
        );
        assert_eq!(
            check("v=0\r\nm=audio 1 RTP 0", true),
            Err(SdpProblem::NoFingerprint)
        );
        assert_eq!(check("v=0\r\nm=audio 1 RTP 0", false), Ok(()));
    }

    #[test]
    fn meta_sdp_passes_its_own_checks_and_is_deterministic() {
        for offer in [true, false] {
            let sdp = meta_sdp(&mut IdGen::new(7), offer);
            assert_eq!(check(&sdp, true), Ok(()));
            assert_eq!(sdp, meta_sdp(&mut IdGen::new(7), offer));
            let setup = if offer {
                "a=setup:actpass"
            } else {
                "a=setup:passive"
            };
            assert!(sdp.contains(setup));
        }
    }

    #[test]
    fn keying_is_dtls_unless_the_settings_say_sdes() {
        assert_eq!(Keying::of_setting(None), Keying::Dtls);
        assert_eq!(Keying::of_setting(Some("DTLS")), Keying::Dtls);
        assert_eq!(Keying::of_setting(Some("SDES")), Keying::Sdes);
    }

    #[test]
    fn an_sdes_offer_carries_a_crypto_key_and_no_dtls_lines() {
        let sdp = meta_sdp_keyed(&mut IdGen::new(7), true, Keying::Sdes);
        assert_eq!(check(&sdp, false), Ok(()));
        assert_eq!(check(&sdp, true), Err(SdpProblem::NoFingerprint), "{sdp}");
        let lines: Vec<&str> = sdp.split("\r\n").collect();
        assert!(lines.contains(&"m=audio 3480 RTP/SAVP 111 126"), "{sdp}");
        let crypto: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("a=crypto:"))
            .collect();
        assert_eq!(crypto.len(), 1, "{sdp}");
        let inline = crypto[0]
            .strip_prefix("1 AES_CM_128_HMAC_SHA1_80 inline:")
            .unwrap_or_else(|| panic!("{sdp}"));
        let key = base64::engine::general_purpose::STANDARD
            .decode(inline)
            .unwrap();
        assert_eq!(key.len(), 30, "16-byte key and 14-byte salt");
        for absent in ["a=fingerprint:", "a=setup:", "a=ice-", "a=candidate:"] {
            assert!(!sdp.contains(absent), "{absent} in {sdp}");
        }
        // The opus shape of Meta's SDES SDP (cloud-api §8.4).
        for wanted in [
            "a=rtpmap:111 opus/48000/2",
            "a=fmtp:111 maxaveragebitrate=20000;maxplaybackrate=16000;minptime=20;sprop-maxcapturerate=16000;useinbandfec=1",
            "a=ptime:20",
            "a=maxptime:20",
        ] {
            assert!(lines.contains(&wanted), "{wanted} in {sdp}");
        }
        assert!(lines
            .iter()
            .any(|l| l.starts_with("a=ssrc:") && l.ends_with(" cname:WhatsAppAudioStream1")));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("a=msid:") && l.ends_with(" WhatsAppTrack1")));
    }

    #[test]
    fn sdes_keys_follow_the_seed() {
        let a = meta_sdes_sdp(&mut IdGen::new(7));
        assert_eq!(a, meta_sdes_sdp(&mut IdGen::new(7)));
        let b = meta_sdes_sdp(&mut IdGen::new(8));
        let key = |s: &str| {
            s.lines()
                .find(|l| l.starts_with("a=crypto:"))
                .map(str::to_owned)
        };
        assert_ne!(key(&a), key(&b));
    }

    #[test]
    fn dtls_keying_is_the_ice_lite_sdp() {
        for offer in [true, false] {
            assert_eq!(
                meta_sdp_keyed(&mut IdGen::new(3), offer, Keying::Dtls),
                meta_sdp(&mut IdGen::new(3), offer)
            );
        }
        let offer = meta_sdp_keyed(&mut IdGen::new(3), true, Keying::Dtls);
        assert!(offer.contains("m=audio 3480 UDP/TLS/RTP/SAVPF 111 126"));
        assert!(offer.contains("a=fingerprint:sha-256 "));
        assert!(offer.contains("a=setup:actpass"));
        assert!(!offer.contains("a=crypto:"));
    }
}
