//! Identifiers and the one seeded source of randomness.
//!
//! Every id the emulator invents (`wamid.…`, `wacid.…`, template ids, `fbtrace_id`,
//! conversation ids, SDP secrets) comes from [`IdGen`], so `--seed N` makes a run
//! reproducible: the same requests in the same order produce the same ids.

use base64::Engine;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

id_type!(
    /// A WhatsApp user's phone number in digits, as `wa_id`.
    WaId
);
id_type!(
    /// `wamid.…`: a message sent or received.
    MessageId
);
id_type!(
    /// `wacid.…`: a call.
    CallId
);
id_type!(
    /// A business phone number's Graph object id.
    PhoneNumberId
);
id_type!(
    /// A WhatsApp Business Account's Graph object id.
    WabaId
);
id_type!(
    /// A message template's Graph object id.
    TemplateId
);
id_type!(
    /// A Meta app id.
    AppId
);

/// The seeded generator behind every invented id.
#[derive(Debug, Clone)]
pub struct IdGen {
    rng: StdRng,
}

const TRACE_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

impl IdGen {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn upper_hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789ABCDEF"[self.rng.gen_range(0..16)]))
            .collect()
    }

    pub fn lower_hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[self.rng.gen_range(0..16)]))
            .collect()
    }

    pub fn alnum(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(TRACE_ALPHABET[self.rng.gen_range(0..62)]))
            .collect()
    }

    pub fn digits(&mut self, n: usize) -> String {
        let first = char::from(b'1' + self.rng.gen_range(0..9u8));
        std::iter::once(first)
            .chain((1..n).map(|_| char::from(b'0' + self.rng.gen_range(0..10u8))))
            .collect()
    }

    pub fn u64(&mut self) -> u64 {
        self.rng.gen()
    }

    /// Shaped like Meta's: base64 of a small protobuf-like record holding the peer's
    /// number and a random hex key (`wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI…`).
    pub fn message_id(&mut self, peer: &WaId) -> MessageId {
        // Built in place (one allocation): an id per send is on the hot path.
        let mut raw = Vec::with_capacity(3 + peer.0.len() + 6 + 18 + 1);
        raw.extend_from_slice(&[0x1c, 0x18, peer.0.len() as u8]);
        raw.extend_from_slice(peer.0.as_bytes());
        raw.extend_from_slice(&[0x15, 0x02, 0x00, 0x11, 0x18, 0x12]);
        for _ in 0..18 {
            raw.push(b"0123456789ABCDEF"[self.rng.gen_range(0..16)]);
        }
        raw.push(0x00);
        let mut id = String::with_capacity(6 + raw.len().div_ceil(3) * 4);
        id.push_str("wamid.");
        base64::engine::general_purpose::STANDARD.encode_string(&raw, &mut id);
        MessageId(id)
    }

    /// Shaped like Meta's `wacid.HBgLMTIxOTU1NTA3MTQVAgASGCAz…` call ids.
    pub fn call_id(&mut self, peer: &WaId) -> CallId {
        let mut raw = vec![0x1c, 0x18, peer.0.len() as u8];
        raw.extend_from_slice(peer.0.as_bytes());
        raw.extend_from_slice(&[0x15, 0x02, 0x00, 0x12, 0x18, 0x20]);
        raw.extend_from_slice(self.upper_hex(32).as_bytes());
        raw.extend_from_slice(&[0x1c, 0x00]);
        CallId(format!(
            "wacid.{}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ))
    }

    pub fn fbtrace_id(&mut self) -> String {
        (0..27)
            .map(|_| char::from(TRACE_ALPHABET[self.rng.gen_range(0..64)]))
            .collect()
    }

    pub fn template_id(&mut self) -> TemplateId {
        TemplateId(self.digits(16))
    }
}

/// Business-scoped user id derived from the number alone (not from the seed), so a user
/// keeps the same BSUID across runs and resets: `<country>.<19 digits>`.
pub fn bsuid_for(wa_id: &WaId) -> String {
    // FNV-1a: stable across Rust versions, unlike the std hasher.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in wa_id.0.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    // `<country>.1<18 digits>`, written by hand: a fresh user's BSUID is rebuilt on
    // every send to them (engine/recipients.rs keeps such users as a flag).
    let country = country_of(&wa_id.0);
    let mut digits = [b'0'; 18];
    let mut n = h % 1_000_000_000_000_000_000;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let mut s = String::with_capacity(country.len() + 20);
    s.push_str(country);
    s.push_str(".1");
    s.push_str(std::str::from_utf8(&digits).expect("ASCII digits"));
    s
}

/// Calling codes and their ISO countries: a small table, enough for BSUIDs, the
/// business-initiated calling rule and `to` numbers written without `+`.
const CALLING_CODES: &[(&str, &str)] = &[
    ("1", "US"),
    ("7", "RU"),
    ("20", "EG"),
    ("27", "ZA"),
    ("30", "GR"),
    ("31", "NL"),
    ("32", "BE"),
    ("33", "FR"),
    ("34", "ES"),
    ("39", "IT"),
    ("41", "CH"),
    ("44", "GB"),
    ("49", "DE"),
    ("51", "PE"),
    ("52", "MX"),
    ("54", "AR"),
    ("55", "BR"),
    ("56", "CL"),
    ("57", "CO"),
    ("60", "MY"),
    ("61", "AU"),
    ("62", "ID"),
    ("63", "PH"),
    ("65", "SG"),
    ("81", "JP"),
    ("82", "KR"),
    ("84", "VN"),
    ("86", "CN"),
    ("90", "TR"),
    ("91", "IN"),
    ("92", "PK"),
    ("234", "NG"),
    ("351", "PT"),
    ("972", "IL"),
    ("971", "AE"),
    ("966", "SA"),
];

fn calling_code_entry(digits: &str) -> Option<&'static (&'static str, &'static str)> {
    // The longest code that starts `digits`: its first three, two, then one digits looked
    // up as they are (a length compared before any byte) rather than every code tested
    // as a prefix: a fresh user's BSUID asks this on every send to them.
    (1..=3).rev().find_map(|n| {
        let prefix = digits.get(..n)?;
        CALLING_CODES.iter().find(|(code, _)| *code == prefix)
    })
}

/// ISO country of a number from its calling code (`US` when the table has no match).
pub fn country_of(digits: &str) -> &'static str {
    calling_code_entry(digits).map(|(_, c)| *c).unwrap_or("US")
}

/// The calling code a number in international digits starts with (`1`, `44`, `234`…),
/// when the table knows it.
pub fn calling_code(digits: &str) -> Option<&'static str> {
    calling_code_entry(digits).map(|(code, _)| *code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_ids() {
        let peer = WaId::from("16315551234");
        let mut a = IdGen::new(7);
        let mut b = IdGen::new(7);
        assert_eq!(a.message_id(&peer), b.message_id(&peer));
        assert_eq!(a.call_id(&peer), b.call_id(&peer));
        assert_eq!(a.fbtrace_id(), b.fbtrace_id());
        assert_ne!(
            IdGen::new(8).message_id(&peer),
            IdGen::new(7).message_id(&peer)
        );
    }

    #[test]
    fn ids_have_meta_prefixes() {
        let peer = WaId::from("16315551234");
        let mut g = IdGen::new(1);
        assert!(g
            .message_id(&peer)
            .0
            .starts_with("wamid.HBgLMTYzMTU1NTEyMzQVAgAR"));
        assert!(g
            .call_id(&peer)
            .0
            .starts_with("wacid.HBgLMTYzMTU1NTEyMzQVAgAS"));
        assert_eq!(g.template_id().0.len(), 16);
    }

    #[test]
    fn bsuid_is_stable_and_country_prefixed() {
        assert_eq!(
            bsuid_for(&WaId::from("16315551234")),
            bsuid_for(&WaId::from("16315551234"))
        );
        assert!(bsuid_for(&WaId::from("16315551234")).starts_with("US.1"));
        assert!(bsuid_for(&WaId::from("5511962185237")).starts_with("BR."));
        assert!(bsuid_for(&WaId::from("972501234567")).starts_with("IL."));
        assert_eq!(bsuid_for(&WaId::from("1")).len(), "US.".len() + 19);
    }

    #[test]
    fn a_number_has_the_calling_code_it_starts_with() {
        assert_eq!(calling_code("2348012345678"), Some("234"));
        assert_eq!(calling_code("351912345678"), Some("351"));
        assert_eq!(calling_code("447700900123"), Some("44"));
        assert_eq!(calling_code("16315551234"), Some("1"));
        assert_eq!(calling_code("1"), Some("1"));
        assert_eq!(calling_code("99912345"), None);
        assert_eq!(calling_code(""), None);
        assert_eq!(country_of("2348012345678"), "NG");
        assert_eq!(country_of("99912345"), "US");
    }
}
