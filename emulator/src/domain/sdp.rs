//! SDP as the Calling API sees it: what makes an offer or answer usable on `/calls`, when
//! two answers are the same, and the ICE-lite SDP Meta's side of a call sends.

use super::ids::IdGen;

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
}
