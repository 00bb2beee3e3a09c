//! The outbox: every accepted webhook until it is delivered or its retry horizon passes.
//!
//! Pure bookkeeping; the server's delivery worker asks [`Outbox::take_due`] for work and
//! reports each attempt back with [`Outbox::record`]. Deliveries sharing an ordering key
//! (one call, one message) go out one at a time in creation order, so per-call order is
//! kept even across retries. Pending deliveries are never evicted; finished ones are kept
//! up to a capacity and then counted as evicted.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet, VecDeque};

/// Back-off after the n-th failed attempt (seconds); the last value repeats.
const BACKOFF_SECS: [u64; 10] = [5, 15, 60, 300, 900, 3600, 7200, 14400, 28800, 43200];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Given up after the retry horizon.
    Dead,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub at_ms: u64,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub response_body: Option<String>,
    pub url: String,
}

/// Seeded fault injection (off by default): duplicates, reordering and delays, as Meta's
/// calling webhooks can show them. The same seed gives the same faults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Chaos {
    /// Probability that a webhook is delivered twice (a second, separate delivery).
    pub duplicate: f64,
    /// Probability that a webhook ignores per-call ordering (may overtake or be overtaken).
    pub reorder: f64,
    /// Each webhook waits a random 0..=delay_ms before its first attempt.
    pub delay_ms: u64,
    pub seed: u64,
}

impl Chaos {
    pub fn is_off(&self) -> bool {
        self.duplicate <= 0.0 && self.reorder <= 0.0 && self.delay_ms == 0
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub seq: u64,
    pub app_id: String,
    pub field: String,
    pub event: String,
    pub call_id: Option<String>,
    pub message_id: Option<String>,
    pub order_key: String,
    /// The exact bytes sent (ASCII-escaped JSON).
    pub body: String,
    pub signature: String,
    pub state: DeliveryState,
    pub created_at_ms: u64,
    pub next_attempt_at_ms: u64,
    pub horizon_ms: u64,
    pub attempts: Vec<Attempt>,
    /// What fault injection did to this delivery, if anything.
    #[serde(default)]
    pub chaos: Option<String>,
    #[serde(skip)]
    pub in_flight: bool,
}

/// One delivery to perform now.
#[derive(Debug, Clone)]
pub struct Job {
    pub seq: u64,
    pub url: String,
    pub body: bytes::Bytes,
    pub signature: String,
}

/// What the receiver did with one attempt.
#[derive(Debug, Clone)]
pub enum Outcome {
    Status { status: u16, body: String },
    Error(String),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outbox {
    next_seq: u64,
    pending: BTreeMap<u64, Delivery>,
    done: VecDeque<Delivery>,
    pub evicted: u64,
    pub capacity: usize,
    #[serde(default)]
    pub chaos: Chaos,
    /// xorshift state of the fault injector (serialised, so a restart keeps the sequence).
    #[serde(default)]
    chaos_rng: u64,
}

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Self {
            next_seq: 1,
            capacity,
            ..Default::default()
        }
    }

    pub fn with_chaos(capacity: usize, chaos: Chaos) -> Self {
        let chaos_rng = chaos.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        Self {
            next_seq: 1,
            capacity,
            chaos,
            chaos_rng,
            ..Default::default()
        }
    }

    /// A uniform draw in [0, 1) from the fault injector's own stream.
    fn chaos_draw(&mut self) -> f64 {
        let mut x = self.chaos_rng.max(1);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.chaos_rng = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        app_id: &str,
        field: &str,
        event: &str,
        order_key: String,
        call_id: Option<String>,
        message_id: Option<String>,
        body: String,
        signature: String,
        now_ms: u64,
        horizon_ms: u64,
    ) -> u64 {
        let seq = self.next_seq.max(1);
        self.next_seq = seq + 1;
        let mut d = Delivery {
            seq,
            app_id: app_id.to_owned(),
            field: field.to_owned(),
            event: event.to_owned(),
            call_id,
            message_id,
            order_key,
            body,
            signature,
            state: DeliveryState::Pending,
            created_at_ms: now_ms,
            next_attempt_at_ms: now_ms,
            horizon_ms,
            attempts: Vec::new(),
            chaos: None,
            in_flight: false,
        };
        if !self.chaos.is_off() {
            let mut notes = Vec::new();
            if self.chaos.delay_ms > 0 {
                let delay = (self.chaos_draw() * (self.chaos.delay_ms + 1) as f64) as u64;
                d.next_attempt_at_ms = now_ms + delay;
                notes.push(format!("delayed {delay} ms"));
            }
            if self.chaos_draw() < self.chaos.reorder {
                d.order_key = format!("{}#unordered{seq}", d.order_key);
                notes.push("unordered".to_owned());
            }
            let duplicate = self.chaos_draw() < self.chaos.duplicate;
            if !notes.is_empty() {
                d.chaos = Some(notes.join(", "));
            }
            if duplicate {
                let twin_seq = self.next_seq;
                self.next_seq += 1;
                let mut twin = d.clone();
                twin.seq = twin_seq;
                twin.order_key = format!("{}#dup{twin_seq}", d.order_key);
                twin.chaos = Some(format!("duplicate of d{seq}"));
                self.pending.insert(twin_seq, twin);
            }
        }
        self.pending.insert(seq, d);
        seq
    }

    /// Deliveries due at `now_ms` whose app has a URL, marked in flight. A delivery waits
    /// while an earlier one with the same ordering key is pending.
    pub fn take_due(
        &mut self,
        now_ms: u64,
        url_of: impl Fn(&str) -> Option<String>,
        limit: usize,
    ) -> Vec<Job> {
        self.scan(now_ms, url_of, limit, true)
    }

    /// How many deliveries [`Outbox::take_due`] would hand out now, without taking them.
    pub fn sendable(&mut self, now_ms: u64, url_of: impl Fn(&str) -> Option<String>) -> usize {
        self.scan(now_ms, url_of, usize::MAX, false).len()
    }

    fn scan(
        &mut self,
        now_ms: u64,
        url_of: impl Fn(&str) -> Option<String>,
        limit: usize,
        take: bool,
    ) -> Vec<Job> {
        let mut blocked: HashSet<&str> = HashSet::new();
        let mut jobs = Vec::new();
        for d in self.pending.values_mut() {
            if jobs.len() >= limit {
                break;
            }
            if blocked.contains(d.order_key.as_str()) {
                continue;
            }
            if d.in_flight || d.next_attempt_at_ms > now_ms {
                blocked.insert(&d.order_key);
                continue;
            }
            let Some(url) = url_of(&d.app_id) else {
                blocked.insert(&d.order_key);
                continue;
            };
            blocked.insert(&d.order_key);
            if take {
                d.in_flight = true;
                jobs.push(Job {
                    seq: d.seq,
                    url,
                    body: bytes::Bytes::from(d.body.clone()),
                    signature: d.signature.clone(),
                });
            } else {
                jobs.push(Job {
                    seq: d.seq,
                    url,
                    body: bytes::Bytes::new(),
                    signature: String::new(),
                });
            }
        }
        jobs
    }

    /// Records an attempt; a 2xx delivers, anything else schedules a retry or, past the
    /// horizon, gives up.
    pub fn record(&mut self, seq: u64, url: String, outcome: Outcome, now_ms: u64) {
        let Some(mut d) = self.pending.remove(&seq) else {
            return;
        };
        d.in_flight = false;
        let ok = matches!(outcome, Outcome::Status { status, .. } if (200..300).contains(&status));
        let attempt = match outcome {
            Outcome::Status { status, body } => Attempt {
                at_ms: now_ms,
                status: Some(status),
                error: None,
                response_body: Some(body),
                url,
            },
            Outcome::Error(e) => Attempt {
                at_ms: now_ms,
                status: None,
                error: Some(e),
                response_body: None,
                url,
            },
        };
        d.attempts.push(attempt);
        if ok {
            d.state = DeliveryState::Delivered;
            self.finish(d);
            return;
        }
        let failures = d.attempts.len();
        let backoff = BACKOFF_SECS[(failures - 1).min(BACKOFF_SECS.len() - 1)] * 1000;
        let next = now_ms + backoff;
        if next > d.created_at_ms + d.horizon_ms {
            d.state = DeliveryState::Dead;
            self.finish(d);
        } else {
            d.next_attempt_at_ms = next;
            self.pending.insert(seq, d);
        }
    }

    fn finish(&mut self, d: Delivery) {
        self.done.push_back(d);
        while self.done.len() > self.capacity {
            self.done.pop_front();
            self.evicted += 1;
        }
    }

    /// The earliest retry time among pending deliveries not in flight.
    pub fn next_deadline(&self, now_ms: u64) -> Option<u64> {
        self.pending
            .values()
            .filter(|d| !d.in_flight && d.next_attempt_at_ms > now_ms)
            .map(|d| d.next_attempt_at_ms)
            .min()
    }

    pub fn has_due(&self, now_ms: u64) -> bool {
        self.pending
            .values()
            .any(|d| !d.in_flight && d.next_attempt_at_ms <= now_ms)
    }

    pub fn in_flight(&self) -> usize {
        self.pending.values().filter(|d| d.in_flight).count()
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Every delivery still held, in creation order.
    pub fn iter(&self) -> impl Iterator<Item = &Delivery> {
        let mut all: Vec<&Delivery> = self.done.iter().chain(self.pending.values()).collect();
        all.sort_by_key(|d| d.seq);
        all.into_iter()
    }

    pub fn get(&self, seq: u64) -> Option<&Delivery> {
        self.pending
            .get(&seq)
            .or_else(|| self.done.iter().find(|d| d.seq == seq))
    }

    /// After a restart nothing is in flight any more.
    pub fn clear_in_flight(&mut self) {
        for d in self.pending.values_mut() {
            d.in_flight = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(o: &mut Outbox, key: &str, now: u64) -> u64 {
        o.push(
            "app",
            "calls",
            "connect",
            key.into(),
            None,
            None,
            "{}".into(),
            "sha256=x".into(),
            now,
            3_600_000,
        )
    }

    fn url(_: &str) -> Option<String> {
        Some("http://127.0.0.1:1/".into())
    }

    #[test]
    fn same_key_goes_one_at_a_time_in_order() {
        let mut o = Outbox::new(10);
        let a = push(&mut o, "call:1", 0);
        let b = push(&mut o, "call:1", 0);
        let c = push(&mut o, "call:2", 0);
        let jobs: Vec<u64> = o.take_due(0, url, 100).iter().map(|j| j.seq).collect();
        assert_eq!(jobs, vec![a, c]);
        o.record(
            a,
            "u".into(),
            Outcome::Status {
                status: 200,
                body: String::new(),
            },
            0,
        );
        let jobs: Vec<u64> = o.take_due(0, url, 100).iter().map(|j| j.seq).collect();
        assert_eq!(jobs, vec![b]);
    }

    #[test]
    fn failures_retry_with_backoff_and_block_later_ones_of_the_same_call() {
        let mut o = Outbox::new(10);
        let a = push(&mut o, "call:1", 0);
        let b = push(&mut o, "call:1", 0);
        o.take_due(0, url, 100);
        o.record(
            a,
            "u".into(),
            Outcome::Status {
                status: 500,
                body: "no".into(),
            },
            0,
        );
        assert!(o.take_due(4_999, url, 100).is_empty());
        assert_eq!(o.next_deadline(0), Some(5_000));
        let jobs: Vec<u64> = o.take_due(5_000, url, 100).iter().map(|j| j.seq).collect();
        assert_eq!(jobs, vec![a]);
        o.record(
            a,
            "u".into(),
            Outcome::Status {
                status: 204,
                body: String::new(),
            },
            5_000,
        );
        let jobs: Vec<u64> = o.take_due(5_000, url, 100).iter().map(|j| j.seq).collect();
        assert_eq!(jobs, vec![b]);
        assert_eq!(o.get(a).unwrap().attempts.len(), 2);
    }

    #[test]
    fn gives_up_only_after_the_horizon() {
        let mut o = Outbox::new(10);
        let a = push(&mut o, "k", 0);
        let mut now = 0;
        loop {
            let jobs = o.take_due(now, url, 10);
            if jobs.is_empty() {
                match o.next_deadline(now) {
                    Some(t) => now = t,
                    None => break,
                }
                continue;
            }
            o.record(a, "u".into(), Outcome::Error("refused".into()), now);
        }
        let d = o.get(a).unwrap();
        assert_eq!(d.state, DeliveryState::Dead);
        assert!(d.attempts.last().unwrap().at_ms <= 3_600_000);
        assert!(d.attempts.len() >= 5);
    }

    #[test]
    fn chaos_is_seeded_and_reproducible() {
        let chaos = Chaos {
            duplicate: 0.3,
            reorder: 0.3,
            delay_ms: 2_000,
            seed: 42,
        };
        let run = || {
            let mut o = Outbox::with_chaos(100, chaos.clone());
            for _ in 0..50 {
                push(&mut o, "call:1", 0);
            }
            o.iter()
                .map(|d| {
                    (
                        d.seq,
                        d.order_key.clone(),
                        d.next_attempt_at_ms,
                        d.chaos.clone(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let dups = a
            .iter()
            .filter(|d| d.3.as_deref().is_some_and(|c| c.starts_with("duplicate")))
            .count();
        assert!((5..=30).contains(&dups), "about 30% duplicated: {dups}");
        assert!(a.iter().any(|d| d.2 > 0), "some delayed");
        let off = {
            let mut o = Outbox::new(100);
            push(&mut o, "k", 0);
            o.iter().map(|d| d.chaos.clone()).collect::<Vec<_>>()
        };
        assert_eq!(off, vec![None], "off by default");
    }

    #[test]
    fn without_a_url_deliveries_wait() {
        let mut o = Outbox::new(10);
        push(&mut o, "k", 0);
        assert!(o.take_due(0, |_| None, 10).is_empty());
        assert_eq!(o.pending_len(), 1);
        assert_eq!(o.take_due(0, url, 10).len(), 1);
    }

    #[test]
    fn finished_deliveries_are_evicted_beyond_capacity_and_counted() {
        let mut o = Outbox::new(2);
        for _ in 0..5 {
            let s = push(&mut o, "k", 0);
            o.take_due(0, url, 10);
            o.record(
                s,
                "u".into(),
                Outcome::Status {
                    status: 200,
                    body: String::new(),
                },
                0,
            );
        }
        assert_eq!(o.iter().count(), 2);
        assert_eq!(o.evicted, 3);
    }
}
