//! The exact bytes of a webhook body and their signature.
//!
//! Meta signs an ASCII-escaped rendering of the JSON (every non-ASCII character as
//! `\uXXXX` with lowercase hex, astral characters as surrogate pairs). Receivers that
//! verify over the escaped form reject a raw UTF-8 body, so the emulator renders exactly
//! this form and signs the bytes it sends.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Compact JSON with every non-ASCII character escaped as `\uXXXX` (lowercase hex).
pub fn encode_ascii(value: &serde_json::Value) -> String {
    let compact = serde_json::to_string(value).expect("a JSON value always serialises");
    if compact.is_ascii() {
        return compact;
    }
    escape_non_ascii(&compact)
}

/// Escapes every non-ASCII character of an already-serialised JSON text. Non-ASCII
/// characters can only occur inside JSON strings, so escaping them is always valid.
pub fn escape_non_ascii(json: &str) -> String {
    if json.is_ascii() {
        return json.to_owned();
    }
    let mut out = String::with_capacity(json.len() + 16);
    let mut units = [0u16; 2];
    for ch in json.chars() {
        if ch.is_ascii() {
            out.push(ch);
        } else {
            for unit in ch.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{:04x}", unit));
            }
        }
    }
    out
}

/// [`escape_non_ascii`] that keeps the string when it is already ASCII (no copy).
pub fn escape_non_ascii_owned(json: String) -> String {
    if json.is_ascii() {
        json
    } else {
        escape_non_ascii(&json)
    }
}

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`, the `X-Hub-Signature-256` value.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    Signer::new(secret).sign(body)
}

/// [`sign`] with the key schedule done once: the HMAC state keyed with one secret,
/// cloned for each body (two SHA-256 blocks saved per signature, and no allocation but
/// the signature's).
#[derive(Clone)]
pub struct Signer {
    secret: Vec<u8>,
    mac: Hmac<Sha256>,
}

impl Signer {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            secret: secret.to_vec(),
            mac: Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length"),
        }
    }

    /// Whether this signer signs with `secret`.
    pub fn has_secret(&self, secret: &[u8]) -> bool {
        self.secret == secret
    }

    pub fn sign(&self, body: &[u8]) -> String {
        let mut out = String::with_capacity(7 + 64);
        self.sign_into(body, &mut out);
        out
    }

    /// [`Signer::sign`] written into `out` (cleared first), reusing its buffer.
    pub fn sign_into(&self, body: &[u8], out: &mut String) {
        let mut mac = self.mac.clone();
        mac.update(body);
        let digest = mac.finalize().into_bytes();
        out.clear();
        out.push_str("sha256=");
        for b in digest {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// The secret is not printed.
impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer")
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A `serde_json` formatter writing compact JSON with every non-ASCII character escaped
/// as `\uXXXX` (lowercase hex, surrogate pairs): [`encode_ascii`] in one pass, for
/// bodies serialised straight from typed values.
pub struct AsciiFormatter;

impl serde_json::ser::Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        if fragment.is_ascii() {
            return writer.write_all(fragment.as_bytes());
        }
        let mut units = [0u16; 2];
        let mut start = 0;
        for (i, ch) in fragment.char_indices() {
            if ch.is_ascii() {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            for unit in ch.encode_utf16(&mut units) {
                let u = *unit;
                writer.write_all(&[
                    b'\\',
                    b'u',
                    HEX[usize::from(u >> 12)],
                    HEX[usize::from((u >> 8) & 15)],
                    HEX[usize::from((u >> 4) & 15)],
                    HEX[usize::from(u & 15)],
                ])?;
            }
            start = i + ch.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Serialises `value` as [`encode_ascii`] does, appending to `out`.
pub fn write_ascii<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let mut ser = serde_json::Serializer::with_formatter(out, AsciiFormatter);
    value
        .serialize(&mut ser)
        .expect("serialising to memory cannot fail");
}

/// Constant-time check of an `X-Hub-Signature-256` header value against a body.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_names_are_escaped_with_lowercase_hex() {
        let v = serde_json::json!({"name": "José äöå"});
        assert_eq!(
            encode_ascii(&v),
            r#"{"name":"Jos\u00e9 \u00e4\u00f6\u00e5"}"#
        );
    }

    #[test]
    fn astral_characters_become_surrogate_pairs() {
        let v = serde_json::json!("📞");
        assert_eq!(encode_ascii(&v), r#""\ud83d\udcde""#);
        let back: serde_json::Value = serde_json::from_str(&encode_ascii(&v)).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn the_ascii_formatter_writes_what_encode_ascii_writes() {
        let v = serde_json::json!({
            "name": "José äöå 📞", "ctl": "a\u{1}\n\"\\b", "n": [1, 2.5, null, true],
            "κλειδί": {"日本": "x\u{7f}\u{80}\u{ffff}\u{10000}"}
        });
        let mut out = Vec::new();
        write_ascii(&mut out, &v);
        assert_eq!(String::from_utf8(out).unwrap(), encode_ascii(&v));
    }

    #[test]
    fn a_reused_signer_signs_as_sign_does() {
        let s = Signer::new(b"wa-emulator-secret");
        for body in [&b""[..], b"{}", &[b'x'; 1000]] {
            assert_eq!(s.sign(body), sign(b"wa-emulator-secret", body));
            assert!(verify(b"wa-emulator-secret", body, &s.sign(body)));
        }
        assert!(s.has_secret(b"wa-emulator-secret") && !s.has_secret(b"other"));
    }

    #[test]
    fn signature_matches_the_documented_form_and_verifies() {
        let sig = sign(b"secret", b"{}");
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), 7 + 64);
        assert!(verify(b"secret", b"{}", &sig));
        assert!(!verify(b"other", b"{}", &sig));
        assert!(!verify(b"secret", b"{} ", &sig));
    }
}
