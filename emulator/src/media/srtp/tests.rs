use super::*;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn rfc_master() -> MasterKey {
    // RFC 3711 Appendix B.3.
    MasterKey::from_bytes(
        &[
            hex("E1F97A0D3E018BE0D64FA32C06DE4139"),
            hex("0EC675AD498AFEEBB6960B3AABE6"),
        ]
        .concat(),
    )
    .unwrap()
}

#[test]
fn key_derivation_matches_rfc_3711_b_3() {
    let m = rfc_master();
    let mut key = [0u8; 16];
    prf(&m, 0, &mut key);
    assert_eq!(key.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    let mut salt = [0u8; 14];
    prf(&m, 2, &mut salt);
    assert_eq!(salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    let mut auth = [0u8; 20];
    prf(&m, 1, &mut auth);
    assert_eq!(
        auth.to_vec(),
        hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
    );
}

#[test]
fn the_keystream_matches_rfc_3711_b_2() {
    // Session key 2B7E…, salt F0F1…FD, SSRC 0, index 0: the counter blocks start at
    // F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000.
    let mut salt = [0u8; 14];
    salt.copy_from_slice(&hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"));
    let keys = SessionKeys {
        cipher: aes::Aes128::new_from_slice(&hex("2B7E151628AED2A6ABF7158809CF4F3C")).unwrap(),
        salt,
        auth: <HmacSha1 as Mac>::new_from_slice(b"k").unwrap(),
    };
    let mut stream = vec![0u8; 16 * 0xff02];
    keys.apply_keystream(0, 0, &mut stream);
    assert_eq!(&stream[..16], hex("E03EAD0935C95E80E166B16DD92B4EB4"));
    assert_eq!(&stream[16..32], hex("D23513162B02D0F72A43A2FE4A5F97AB"));
    assert_eq!(&stream[32..48], hex("41E95B3BB0A2E8DD477901E4FCA894C0"));
    assert_eq!(
        &stream[16 * 0xfeff..16 * 0xff00],
        hex("EC8CDF7398607CB0F2D21675EA9EA1E4")
    );
    assert_eq!(
        &stream[16 * 0xff00..16 * 0xff01],
        hex("362B7C3C6773516318A077D7FC5073AE")
    );
    assert_eq!(
        &stream[16 * 0xff01..16 * 0xff02],
        hex("6A2CC3787889374FBEB4C81B17BA6C44")
    );
}

fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 111];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 960).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

#[test]
fn a_crypto_line_is_read_and_its_problems_are_named() {
    let m = rfc_master();
    let line = format!("1 {SUITE} inline:{}", m.inline());
    let c = Crypto::parse(&line).unwrap();
    assert_eq!((c.tag, &c.key), (1, &m));
    // A lifetime is accepted.
    let c = Crypto::parse(&format!("2 {SUITE} inline:{}|2^31", m.inline())).unwrap();
    assert_eq!(c.tag, 2);
    let mki = Crypto::parse(&format!("1 {SUITE} inline:{}|2^20|1:4", m.inline()));
    assert!(mki.unwrap_err().contains("master key identifier"));
    let other = Crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_32 inline:{}", m.inline()));
    assert!(other.unwrap_err().contains("AES_CM_128_HMAC_SHA1_32"));
    assert!(Crypto::parse(&format!("1 {SUITE} inline:AAAA"))
        .unwrap_err()
        .contains("3 bytes"));
    assert!(Crypto::parse(&format!("1 {SUITE} inline:!!"))
        .unwrap_err()
        .contains("base64"));
    let sdp = format!("v=0\r\nm=audio 4000 RTP/SAVP 111\r\na=crypto:{line}\r\n");
    assert_eq!(Crypto::of_sdp(&sdp), Some(Ok(Crypto { tag: 1, key: m })));
    assert_eq!(Crypto::of_sdp("v=0\r\nm=audio 4000 RTP/AVP 111\r\n"), None);
}

#[test]
fn packets_round_trip_and_replays_and_other_keys_are_refused() {
    let m = rfc_master();
    let mut tx = Sender::new(&m);
    let mut rx = Receiver::new(&m);
    let plain = rtp(7, 0xdead_beef, b"hello opus");
    let p = tx.protect(&plain).unwrap();
    assert_eq!(p.len(), plain.len() + TAG_LEN);
    assert_eq!(&p[..12], &plain[..12], "the header stays in the clear");
    assert_ne!(&p[12..plain.len()], b"hello opus");
    assert_eq!(rx.unprotect(&p).unwrap(), plain);
    assert_eq!(rx.unprotect(&p), Err(Refusal::Replayed));
    let mut other = MasterKey::from_bytes(&[0u8; 30]).unwrap();
    other.key[0] = 1;
    let forged = Sender::new(&other)
        .protect(&rtp(8, 0xdead_beef, b"x"))
        .unwrap();
    assert_eq!(rx.unprotect(&forged), Err(Refusal::Authentication));
    assert_eq!(rx.unprotect(&p[..15]), Err(Refusal::Malformed));
}

#[test]
fn the_rollover_counter_follows_a_wrapping_sequence_and_late_packets() {
    let m = rfc_master();
    let mut tx = Sender::new(&m);
    let mut rx = Receiver::new(&m);
    let seqs: Vec<u16> = (65_530..=65_535).chain(0..6).collect();
    let packets: Vec<_> = seqs
        .iter()
        .map(|s| tx.protect(&rtp(*s, 1, &[*s as u8; 20])).unwrap())
        .collect();
    // In order except one late packet from before the wrap.
    for i in [0, 1, 2, 3, 4, 6, 7, 5, 8, 9, 10, 11] {
        assert_eq!(
            rx.unprotect(&packets[i]).unwrap(),
            rtp(seqs[i], 1, &[seqs[i] as u8; 20]),
            "packet {i}"
        );
    }
    assert_eq!(rx.roc, 1);
    // Further on, many wraps later.
    for n in 0..3 * 65_536u32 {
        let s = (6 + n) as u16;
        let p = tx.protect(&rtp(s, 1, b"x")).unwrap();
        if n % 1000 == 0 || n > 3 * 65_536 - 10 {
            assert!(rx.unprotect(&p).is_ok(), "packet {n}");
        }
    }
    assert_eq!(rx.roc, 4);
}

#[test]
fn the_replay_window_keeps_64_packets() {
    let m = rfc_master();
    let mut tx = Sender::new(&m);
    let mut rx = Receiver::new(&m);
    let packets: Vec<_> = (0..100u16)
        .map(|s| tx.protect(&rtp(s, 1, b"x")).unwrap())
        .collect();
    assert!(rx.unprotect(&packets[99]).is_ok());
    assert!(rx.unprotect(&packets[36]).is_ok(), "63 back: inside");
    assert_eq!(rx.unprotect(&packets[35]), Err(Refusal::Replayed));
    assert_eq!(rx.unprotect(&packets[36]), Err(Refusal::Replayed));
}

#[test]
fn srtcp_is_read_and_its_forgeries_refused() {
    let m = rfc_master();
    let mut rx = Receiver::new(&m);
    // A receiver report with one block.
    let mut rr = vec![0x81, 201, 0, 7, 0, 0, 0, 9];
    rr.extend_from_slice(&[0xab; 24]);
    let p = protect_rtcp(&m, 1, &rr).unwrap();
    assert!(is_rtcp(&p));
    assert!(!is_rtcp(&rtp(1, 1, b"x")));
    assert_eq!(rx.unprotect_rtcp(&p).unwrap(), rr);
    assert_eq!(rx.unprotect_rtcp(&p), Err(Refusal::Replayed));
    let mut bad = protect_rtcp(&m, 2, &rr).unwrap();
    bad[10] ^= 1;
    assert_eq!(rx.unprotect_rtcp(&bad), Err(Refusal::Authentication));
    assert_eq!(rx.unprotect_rtcp(&[0x80, 200]), Err(Refusal::Malformed));
}

#[test]
fn headers_with_csrcs_and_extensions_are_skipped() {
    let mut p = vec![0x92, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2];
    p.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0, 4]); // two CSRCs
    p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0]); // one-byte extension
    p.extend_from_slice(b"audio");
    assert_eq!(rtp_header_len(&p), Some(28));
    let m = rfc_master();
    let s = Sender::new(&m).protect(&p).unwrap();
    assert_eq!(&s[..28], &p[..28]);
    assert_eq!(Receiver::new(&m).unprotect(&s).unwrap(), p);
    assert_eq!(rtp_header_len(&p[..20]), None);
}

proptest! {
    #[test]
    fn unprotect_undoes_protect(
        key in proptest::collection::vec(any::<u8>(), 30),
        seq in any::<u16>(),
        ssrc in any::<u32>(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let m = MasterKey::from_bytes(&key).unwrap();
        let plain = rtp(seq, ssrc, &payload);
        let p = Sender::new(&m).protect(&plain).unwrap();
        prop_assert_eq!(Receiver::new(&m).unprotect(&p).unwrap(), plain);
    }

    #[test]
    fn any_flipped_bit_is_refused(
        key in proptest::collection::vec(any::<u8>(), 30),
        seq in any::<u16>(),
        payload in proptest::collection::vec(any::<u8>(), 1..100),
        bit in any::<proptest::sample::Index>(),
    ) {
        let m = MasterKey::from_bytes(&key).unwrap();
        let mut p = Sender::new(&m).protect(&rtp(seq, 5, &payload)).unwrap();
        let i = bit.index(p.len() * 8);
        p[i / 8] ^= 1 << (i % 8);
        prop_assert!(Receiver::new(&m).unprotect(&p).is_err());
    }
}

#[test]
fn packets_of_libsrtp_are_read_and_ours_match_them() {
    // Made by libsrtp (pylibsrtp 1.0) with the RFC 3711 B.3 master key and salt.
    let m = rfc_master();
    let theirs = hex("806f000700001a40deadbeef486efadfd90808fc4febcb9310c89e036bfb93de");
    let plain = rtp(7, 0xdead_beef, b"hello opus");
    assert_eq!(Receiver::new(&m).unprotect(&theirs).unwrap(), plain);
    assert_eq!(Sender::new(&m).protect(&plain).unwrap(), theirs);
    let rtcp = hex("81c90007000000098504a3bc125b7e73d37346bfc700cfa0a236ecfe58cc584780000001eed614b2a50f06fcb3e9");
    let mut rr = vec![0x81, 201, 0, 7, 0, 0, 0, 9];
    rr.extend_from_slice(&[0xab; 24]);
    assert_eq!(Receiver::new(&m).unprotect_rtcp(&rtcp).unwrap(), rr);
    assert_eq!(protect_rtcp(&m, 1, &rr).unwrap(), rtcp);
}
