//! Percent-encoding of URL components: decoding Graph and admin query strings, path
//! segments and the `biz_payload` of a call link (one decoder, two readings of a bad
//! escape), and encoding query values (the webhook handshake's `hub.verify_token`, the
//! scenario runner's call links).

/// Decodes a URL component: `%XX` escapes and `+` as a space.
///
/// `Ok` when every escape is two hex digits and the bytes are UTF-8. `Err` carries the
/// lenient reading instead — bad escapes kept as written, invalid UTF-8 replaced by
/// U+FFFD — for callers that take any input (query strings) rather than refuse it (a
/// call link's payload).
pub fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut clean = true;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|b| hex_val(*b)),
                bytes.get(i + 2).and_then(|b| hex_val(*b)),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => {
                    clean = false;
                    out.push(b'%');
                }
            },
            b => out.push(b),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) if clean => Ok(s),
        Ok(s) => Err(s),
        Err(e) => Err(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// Encodes a query value or path segment: RFC 3986 unreserved characters (`A–Z a–z 0–9
/// - . _ ~`) stay as they are, every other byte becomes `%XX` (uppercase hex). Whatever
/// it returns, [`percent_decode`] reads back unchanged.
pub fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xF)] as char);
        }
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encoding_keeps_unreserved_and_escapes_the_rest_as_utf8() {
        assert_eq!(percent_encode("order-42_a.b~"), "order-42_a.b~");
        assert_eq!(percent_encode("a b&é"), "a%20b%26%C3%A9");
        assert_eq!(percent_encode("a+b=c/d?"), "a%2Bb%3Dc%2Fd%3F");
        assert_eq!(percent_encode(""), "");
    }

    proptest! {
        #[test]
        fn decoding_what_was_encoded_gives_it_back(s in any::<String>()) {
            let encoded = percent_encode(&s);
            prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
            prop_assert_eq!(percent_decode(&encoded), Ok(s));
        }
    }

    #[test]
    fn escapes_and_plus_are_decoded() {
        assert_eq!(percent_decode("x%20y+z").as_deref(), Ok("x y z"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Ok("é"));
        assert_eq!(percent_decode("a%2Bb").as_deref(), Ok("a+b"));
    }

    #[test]
    fn bad_escapes_are_refused_with_a_lenient_reading() {
        assert_eq!(percent_decode("%zz%4"), Err("%zz%4".into()));
        assert_eq!(percent_decode("%é%"), Err("%é%".into()));
        assert_eq!(percent_decode("%ZZ"), Err("%ZZ".into()));
        assert_eq!(percent_decode("%+1"), Err("% 1".into()));
        assert_eq!(percent_decode("%FF"), Err("\u{FFFD}".into()));
    }
}
