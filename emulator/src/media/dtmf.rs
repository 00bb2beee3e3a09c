//! DTMF as RFC 4733 telephone events: the 4-byte payload, the packets of one key press
//! (sent every 20 ms, the end packet three times, §2.5.1.4), and the digits a stream of
//! received packets spells (one digit per event, however many packets repeat it).

/// The keys a phone has, in event-code order (RFC 4733 §3.2: 0–9, `*` 10, `#` 11, A–D 12–15).
const KEYS: &[u8; 16] = b"0123456789*#ABCD";

/// How long one key is held, in 8 kHz units (100 ms), and the pause after it.
pub const PRESS_UNITS: u16 = 800;
pub const PACKET_MS: u64 = 20;
pub const GAP_MS: u64 = 60;

/// The event code of a key, or `None` for a character that is no key.
pub fn event_of(key: char) -> Option<u8> {
    let k = key.to_ascii_uppercase() as u32;
    KEYS.iter().position(|&c| c as u32 == k).map(|i| i as u8)
}

pub fn key_of(event: u8) -> Option<char> {
    KEYS.get(event as usize).map(|&c| c as char)
}

/// The keys of `digits` that are not keys of a phone, for an error message.
pub fn invalid_keys(digits: &str) -> Vec<char> {
    digits.chars().filter(|c| event_of(*c).is_none()).collect()
}

/// One telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub event: u8,
    pub end: bool,
    /// Power level in -dBm0 (0–63).
    pub volume: u8,
    /// In 8 kHz units since the event began.
    pub duration: u16,
}

impl Event {
    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3f),
            d[0],
            d[1],
        ]
    }

    pub fn parse(b: &[u8]) -> Option<Event> {
        if b.len() < 4 {
            return None;
        }
        Some(Event {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }
}

/// The payloads of one key press, one per 20 ms: growing durations, then the end
/// packet three times. The first one carries the RTP marker bit.
pub fn press(event: u8) -> Vec<Event> {
    let step = (PACKET_MS * 8) as u16;
    let mut out: Vec<Event> = (1..PRESS_UNITS / step)
        .map(|i| Event {
            event,
            end: false,
            volume: 10,
            duration: i * step,
        })
        .collect();
    let last = Event {
        event,
        end: true,
        volume: 10,
        duration: PRESS_UNITS,
    };
    out.extend([last; 3]);
    out
}

/// Turns received telephone-event packets into digits: an event is known by its RTP
/// timestamp, so retransmitted end packets and the packets of a held key count once.
#[derive(Debug, Default, Clone)]
pub struct Receiver {
    last_timestamp: Option<u32>,
    pub digits: String,
}

/// The most digits kept per call: the log of received keys is bounded.
const MAX_DIGITS: usize = 256;

impl Receiver {
    pub fn packet(&mut self, timestamp: u32, payload: &[u8]) {
        let Some(ev) = Event::parse(payload) else {
            return;
        };
        if self.last_timestamp == Some(timestamp) {
            return;
        }
        self.last_timestamp = Some(timestamp);
        if let Some(k) = key_of(ev.event) {
            if self.digits.len() < MAX_DIGITS {
                self.digits.push(k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_rfc_4733_events() {
        assert_eq!(event_of('0'), Some(0));
        assert_eq!(event_of('9'), Some(9));
        assert_eq!(event_of('*'), Some(10));
        assert_eq!(event_of('#'), Some(11));
        assert_eq!(event_of('d'), Some(15));
        assert_eq!(event_of('x'), None);
        assert_eq!(invalid_keys("12x#y"), vec!['x', 'y']);
    }

    #[test]
    fn a_press_is_100_ms_with_three_end_packets() {
        let p = press(5);
        assert_eq!(p.len(), 4 + 3);
        assert_eq!(p[0].duration, 160);
        assert!(p[..4].iter().all(|e| !e.end));
        assert!(p[4..].iter().all(|e| e.end && e.duration == 800));
        let bytes = p[4].to_bytes();
        assert_eq!(bytes, [5, 0x8a, 0x03, 0x20]);
        assert_eq!(Event::parse(&bytes), Some(p[4]));
    }

    #[test]
    fn every_packet_of_a_press_counts_once() {
        let mut r = Receiver::default();
        for (ts, key) in [(1000, '1'), (2000, '#')] {
            for e in press(event_of(key).unwrap()) {
                r.packet(ts, &e.to_bytes());
            }
        }
        r.packet(3000, &[1, 2]);
        assert_eq!(r.digits, "1#");
    }
}
