//! Whether the business's audio is still coming, for the mid-call no-media rule
//! (cloud-api §5.4: no business media for 30 s mid-call and the client disconnects).
//!
//! The endpoints run in real time while the engine's timers run in emulator time (which
//! a virtual clock may move at will), so an endpoint only says when the packets stopped
//! and when they came again; the engine counts the 30 s on its own clock. Pure: each
//! packet's arrival and the time of each check are passed in. Any endpoint kind (DTLS-SRTP
//! on str0m, SDES or plain RTP) feeds one of these.

use std::time::{Duration, Instant};

/// No packet for this long and the audio counts as stopped. A sender never pauses this
/// long while it talks: opus sends a packet every 20 ms, and even with discontinuous
/// transmission (DTX, RFC 7587 §3.1.3) it sends a comfort-noise frame at least every
/// 400 ms; a second leaves room for jitter without hiding a real stop.
pub const GAP: Duration = Duration::from_secs(1);

/// A change in the business's audio, reported once per change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// No packet for [`GAP`] or more; `silent_for` is how long before the check the last
    /// packet came (a little more than the gap when the check was late).
    Stopped { silent_for: Duration },
    /// A packet came after a stop.
    Resumed,
}

/// Fed each audio packet's arrival, asked at each tick.
#[derive(Debug, Clone, Default)]
pub struct AudioWatch {
    last: Option<Instant>,
    stopped: bool,
}

impl AudioWatch {
    /// An audio packet arrived at `at`: [`Change::Resumed`] when the audio had stopped.
    pub fn packet(&mut self, at: Instant) -> Option<Change> {
        // Packets may be handed over a little out of order: keep the latest arrival.
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
        if self.stopped {
            self.stopped = false;
            return Some(Change::Resumed);
        }
        None
    }

    /// The time is `now`: [`Change::Stopped`] once when no packet came for [`GAP`].
    /// Nothing before the first packet (the start-of-call rule covers that).
    pub fn tick(&mut self, now: Instant) -> Option<Change> {
        let last = self.last?;
        let silent_for = now.saturating_duration_since(last);
        if self.stopped || silent_for < GAP {
            return None;
        }
        self.stopped = true;
        Some(Change::Stopped { silent_for })
    }

    /// When [`AudioWatch::tick`] must run next to notice a stop on time; `None` while
    /// there is nothing to notice (no packet yet, or already stopped).
    pub fn deadline(&self) -> Option<Instant> {
        match self.last {
            Some(last) if !self.stopped => Some(last + GAP),
            _ => None,
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped
    }
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "a test makes its own instants: only their differences matter"
)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn nothing_is_reported_before_the_first_packet() {
        let t0 = Instant::now();
        let mut w = AudioWatch::default();
        assert_eq!(w.deadline(), None);
        assert_eq!(w.tick(t0 + Duration::from_secs(60)), None);
        assert!(!w.is_stopped());
    }

    #[test]
    fn steady_packets_and_dtx_pauses_are_not_a_stop() {
        let t0 = Instant::now();
        let mut w = AudioWatch::default();
        // 20 ms packets, then DTX at one packet every 400 ms.
        let mut at = t0;
        for _ in 0..50 {
            assert_eq!(w.packet(at), None);
            assert_eq!(w.tick(at + ms(10)), None);
            at += ms(20);
        }
        for _ in 0..10 {
            assert_eq!(w.packet(at), None);
            assert_eq!(w.tick(at + ms(399)), None);
            at += ms(400);
        }
        assert!(!w.is_stopped());
    }

    #[test]
    fn a_gap_is_reported_once_with_how_long_it_has_lasted_then_the_resumption() {
        let t0 = Instant::now();
        let mut w = AudioWatch::default();
        w.packet(t0);
        assert_eq!(w.deadline(), Some(t0 + GAP));
        assert_eq!(w.tick(t0 + GAP - ms(1)), None);
        // A late check reports the whole silence, not just the gap.
        assert_eq!(
            w.tick(t0 + GAP + ms(250)),
            Some(Change::Stopped {
                silent_for: GAP + ms(250)
            })
        );
        assert!(w.is_stopped());
        assert_eq!(w.deadline(), None);
        assert_eq!(w.tick(t0 + Duration::from_secs(10)), None);
        let back = t0 + Duration::from_secs(12);
        assert_eq!(w.packet(back), Some(Change::Resumed));
        assert!(!w.is_stopped());
        assert_eq!(w.packet(back + ms(20)), None);
        assert_eq!(w.deadline(), Some(back + ms(20) + GAP));
        // And it can stop again.
        assert_eq!(
            w.tick(back + ms(20) + GAP),
            Some(Change::Stopped { silent_for: GAP })
        );
    }

    #[test]
    fn a_packet_handed_over_late_does_not_move_the_last_arrival_back() {
        let t0 = Instant::now();
        let mut w = AudioWatch::default();
        w.packet(t0 + ms(500));
        w.packet(t0);
        assert_eq!(w.deadline(), Some(t0 + ms(500) + GAP));
    }
}
