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
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
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
    fn signature_matches_the_documented_form_and_verifies() {
        let sig = sign(b"secret", b"{}");
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), 7 + 64);
        assert!(verify(b"secret", b"{}", &sig));
        assert!(!verify(b"other", b"{}", &sig));
        assert!(!verify(b"secret", b"{} ", &sig));
    }
}
