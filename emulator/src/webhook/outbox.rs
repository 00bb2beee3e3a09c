//! The outbox: every accepted webhook until it is delivered or its retry horizon passes.
//!
//! Pure bookkeeping; the server's delivery worker asks [`Outbox::take_due`] for work and
//! reports each attempt back with [`Outbox::record`]. Deliveries sharing an ordering key
//! (one call, one message) go out one at a time in creation order, so per-call order is
//! kept even across retries. Deliveries whose app has a callback URL are never evicted
//! before their retry horizon; deliveries held while the app has never had a URL are kept
//! up to the log's capacity, oldest dropped first (`held_evicted`); finished ones are kept
//! up to the capacity and then counted as evicted.

use crate::domain::tenant::Chaos;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

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
    /// Its app had no callback URL: it waits in `held`, not in `ready`, and does not
    /// count toward `webhook_pending_limit`, queued behind another one or not.
    #[serde(skip)]
    pub held: bool,
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
    /// Boxed: small B-tree nodes, and a delivery moves to `done` without a copy.
    pending: BTreeMap<u64, Box<Delivery>>,
    /// Boxed: the ring keeps a pointer per slot, not a whole delivery per slot.
    done: VecDeque<Box<Delivery>>,
    pub evicted: u64,
    pub capacity: usize,
    /// Deliveries dropped while no callback URL was ever set (beyond `held_capacity`).
    #[serde(default)]
    pub held_evicted: u64,
    #[serde(default)]
    pub chaos: Chaos,
    /// xorshift state of the fault injector (serialised, so a restart keeps the sequence).
    #[serde(default)]
    chaos_rng: u64,
    /// Attempts recorded so far (a cheap change signal for watchers).
    #[serde(default)]
    pub attempts_total: u64,
    /// Graph requests refused because the pending deliveries stayed at the bound
    /// (`webhook_pending_limit`) for as long as a request may wait.
    #[serde(default)]
    pub refused: u64,
    /// The index below is derived from `pending` (rebuilt by [`Outbox::reindex`]).
    #[serde(skip)]
    index: Index,
    /// The signer of the last secret used: the HMAC key schedule done once per secret,
    /// not once per webhook.
    #[serde(skip)]
    signer: Option<crate::webhook::codec::Signer>,
    /// Evicted deliveries kept for their buffers: a new delivery is written into one
    /// (strings cleared, capacity kept) instead of allocating while the evicted one's
    /// long-cold memory is freed, which cost more than the rest of the bookkeeping.
    #[serde(skip)]
    #[allow(
        clippy::vec_box,
        reason = "the boxes themselves are reused: pending and done hold Box<Delivery>"
    )]
    spares: Vec<Box<Delivery>>,
}

/// Evicted deliveries kept for reuse at most.
const SPARES: usize = 32;

/// `to` holds `from` afterwards, in its own buffer.
fn set(to: &mut String, from: &str) {
    to.clear();
    to.push_str(from);
}

fn set_opt(to: &mut Option<String>, from: Option<&str>) {
    match (to.as_mut(), from) {
        (Some(t), Some(f)) => set(t, f),
        (_, f) => *to = f.map(str::to_owned),
    }
}

/// Keeps every operation O(log n): only the head of each ordering key's queue can go out,
/// and heads wait in `ready` by their next attempt time, or in `held` while their app has
/// no callback URL.
impl Index {
    /// A new head of its queue waits for its time, or for a URL when `held`.
    fn wait(&mut self, key: (u64, u64), held: bool) {
        if held {
            self.held.insert(key);
        } else {
            self.ready.insert(key);
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Index {
    /// FxHash (rustc-hash): every delivery hashes its key three times (queued, advanced,
    /// its queue removed), and the keys are the emulator's own message and call ids, not
    /// text a client chooses to collide.
    queues: HashMap<String, VecDeque<u64>, rustc_hash::FxBuildHasher>,
    ready: BTreeSet<(u64, u64)>,
    held: BTreeSet<(u64, u64)>,
    /// Pending deliveries marked `held`, heads or not.
    held_pending: usize,
    in_flight: usize,
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

    /// A signer for `secret`, made once and kept while the secret stays the same.
    pub fn signer(&mut self, secret: &[u8]) -> &crate::webhook::codec::Signer {
        let fresh = !self.signer.as_ref().is_some_and(|s| s.has_secret(secret));
        if fresh {
            self.signer = None;
        }
        self.signer
            .get_or_insert_with(|| crate::webhook::codec::Signer::new(secret))
    }

    /// Held deliveries (no callback URL yet) kept at most; beyond, the oldest are counted
    /// in `held_evicted`. Deliveries with a URL are never evicted before their horizon.
    fn held_capacity(&self) -> usize {
        self.capacity.max(1000)
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

    /// Buffers for the next delivery's body and signature: an evicted delivery's, cleared,
    /// when one is kept (see `spares`), else new ones.
    pub fn buffers(&mut self) -> (Vec<u8>, String) {
        match self.spares.last_mut() {
            Some(d) => {
                let mut body = std::mem::take(&mut d.body).into_bytes();
                body.clear();
                let mut signature = std::mem::take(&mut d.signature);
                signature.clear();
                (body, signature)
            }
            None => (Vec::with_capacity(768), String::with_capacity(71)),
        }
    }

    fn recycle(&mut self, d: Box<Delivery>) {
        if self.spares.len() < SPARES {
            self.spares.push(d);
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        app_id: &str,
        field: &str,
        event: &str,
        order_key: &str,
        call_id: Option<&str>,
        message_id: Option<&str>,
        body: String,
        signature: String,
        now_ms: u64,
        horizon_ms: u64,
        has_url: bool,
    ) -> u64 {
        let seq = self.next_seq.max(1);
        self.next_seq = seq + 1;
        let mut d = match self.spares.pop() {
            Some(mut d) => {
                set(&mut d.app_id, app_id);
                set(&mut d.field, field);
                set(&mut d.event, event);
                set_opt(&mut d.call_id, call_id);
                set_opt(&mut d.message_id, message_id);
                set(&mut d.order_key, order_key);
                d.attempts.clear();
                d.chaos = None;
                d
            }
            None => Box::new(Delivery {
                seq,
                app_id: app_id.to_owned(),
                field: field.to_owned(),
                event: event.to_owned(),
                call_id: call_id.map(str::to_owned),
                message_id: message_id.map(str::to_owned),
                order_key: order_key.to_owned(),
                body: String::new(),
                signature: String::new(),
                state: DeliveryState::Pending,
                created_at_ms: now_ms,
                next_attempt_at_ms: now_ms,
                horizon_ms,
                attempts: Vec::new(),
                chaos: None,
                in_flight: false,
                held: false,
            }),
        };
        d.seq = seq;
        d.body = body;
        d.signature = signature;
        d.state = DeliveryState::Pending;
        d.created_at_ms = now_ms;
        d.next_attempt_at_ms = now_ms;
        d.horizon_ms = horizon_ms;
        d.in_flight = false;
        // Known now: a webhook of an app without a URL goes straight to `held` rather
        // than through `ready` and the worker's next round for every send.
        d.held = !has_url;
        if !self.chaos.is_off() {
            let mut notes = Vec::new();
            if self.chaos.delay_ms > 0 {
                let delay = (self.chaos_draw() * (self.chaos.delay_ms + 1) as f64) as u64;
                d.next_attempt_at_ms = now_ms.saturating_add(delay);
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
                self.enqueue(twin);
            }
        }
        self.enqueue(d);
        seq
    }

    fn enqueue(&mut self, d: Box<Delivery>) {
        // The key is copied only for a new queue: a message's second webhook joins the
        // first one's.
        let queue = match self.index.queues.get_mut(d.order_key.as_str()) {
            Some(queue) => queue,
            None => self.index.queues.entry(d.order_key.clone()).or_default(),
        };
        queue.push_back(d.seq);
        if queue.len() == 1 {
            self.index.wait((d.next_attempt_at_ms, d.seq), d.held);
        }
        self.index.held_pending += usize::from(d.held);
        self.pending.insert(d.seq, d);
        self.evict_held();
    }

    fn evict_held(&mut self) {
        while self.index.held.len() > self.held_capacity() {
            let Some((_, seq)) = self.index.held.pop_first() else {
                break;
            };
            if let Some(d) = self.pending.remove(&seq) {
                self.held_evicted += 1;
                self.index.held_pending -= usize::from(d.held);
                self.advance_queue(&d.order_key, seq);
                self.recycle(d);
            }
        }
    }

    /// After `seq` (the head of its queue) left `pending`, the next one becomes the head.
    fn advance_queue(&mut self, key: &str, seq: u64) {
        let Some(queue) = self.index.queues.get_mut(key) else {
            return;
        };
        queue.retain(|s| *s != seq);
        match queue.front().copied() {
            Some(next) => {
                if let Some(n) = self.pending.get(&next) {
                    self.index.wait((n.next_attempt_at_ms, next), n.held);
                }
            }
            None => {
                self.index.queues.remove(key);
            }
        }
    }

    /// Deliveries due at `now_ms` whose app has a URL, marked in flight. A delivery waits
    /// while an earlier one with the same ordering key is pending.
    pub fn take_due(
        &mut self,
        now_ms: u64,
        url_of: impl Fn(&str) -> Option<String>,
        limit: usize,
    ) -> Vec<Job> {
        let mut jobs = Vec::new();
        self.take_due_into(now_ms, url_of, limit, &mut jobs);
        jobs
    }

    /// [`Outbox::take_due`] into `jobs` (appended; at most `limit` of them), so the
    /// worker reuses one vector from round to round.
    pub fn take_due_into(
        &mut self,
        now_ms: u64,
        url_of: impl Fn(&str) -> Option<String>,
        limit: usize,
        jobs: &mut Vec<Job>,
    ) {
        let limit = jobs.len().saturating_add(limit);
        while jobs.len() < limit {
            let Some(&(at, seq)) = self.index.ready.first() else {
                break;
            };
            if at > now_ms {
                break;
            }
            self.index.ready.pop_first();
            let Some(d) = self.pending.get_mut(&seq) else {
                continue;
            };
            match url_of(&d.app_id) {
                None => {
                    // Its app's URL was removed since (or a restore forgot the mark).
                    self.index.held.insert((at, seq));
                    if !d.held {
                        d.held = true;
                        self.index.held_pending += 1;
                    }
                }
                Some(url) => {
                    d.in_flight = true;
                    self.index.in_flight += 1;
                    jobs.push(Job {
                        seq,
                        url,
                        body: bytes::Bytes::from(d.body.clone()),
                        signature: d.signature.clone(),
                    });
                }
            }
        }
        self.evict_held();
    }

    /// Whether [`Outbox::take_due`] would hand out anything now.
    pub fn has_sendable(&self, now_ms: u64, url_of: impl Fn(&str) -> Option<String>) -> bool {
        self.index
            .ready
            .iter()
            .take_while(|(at, _)| *at <= now_ms)
            .any(|(_, seq)| {
                self.pending
                    .get(seq)
                    .is_some_and(|d| url_of(&d.app_id).is_some())
            })
    }

    /// A callback URL was set: held deliveries may go out.
    pub fn release_held(&mut self) {
        let held = std::mem::take(&mut self.index.held);
        self.index.ready.extend(held);
        // Once a URL is set they all count toward the bound again; the worker marks the
        // ones whose app still has none when it finds them in `ready`.
        if self.index.held_pending > 0 {
            for d in self.pending.values_mut() {
                d.held = false;
            }
            self.index.held_pending = 0;
        }
    }

    /// Records an attempt; a 2xx delivers, anything else schedules a retry or, past the
    /// horizon, gives up.
    pub fn record(&mut self, seq: u64, url: String, outcome: Outcome, now_ms: u64) {
        let Some(mut d) = self.pending.remove(&seq) else {
            return;
        };
        self.attempts_total += 1;
        if d.held {
            d.held = false;
            self.index.held_pending -= 1;
        }
        if d.in_flight {
            self.index.in_flight = self.index.in_flight.saturating_sub(1);
        }
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
        // Most deliveries are attempted once: no room for four attempts each.
        d.attempts.reserve_exact(1);
        d.attempts.push(attempt);
        let next = now_ms.saturating_add(
            1000 * BACKOFF_SECS[(d.attempts.len() - 1).min(BACKOFF_SECS.len() - 1)],
        );
        if ok || next > d.created_at_ms.saturating_add(d.horizon_ms) {
            d.state = if ok {
                DeliveryState::Delivered
            } else {
                DeliveryState::Dead
            };
            // It has left `pending` already: the next of its key can take its place.
            self.advance_queue(&d.order_key, seq);
            self.finish(d);
        } else {
            d.next_attempt_at_ms = next;
            self.index.ready.insert((next, seq));
            self.pending.insert(seq, d);
        }
    }

    fn finish(&mut self, d: Box<Delivery>) {
        self.done.push_back(d);
        while self.done.len() > self.capacity {
            if let Some(old) = self.done.pop_front() {
                self.recycle(old);
            }
            self.evicted += 1;
        }
    }

    /// The earliest future attempt time among deliveries waiting to go out.
    pub fn next_deadline(&self, now_ms: u64) -> Option<u64> {
        // A range, not a walk over what is due already: with a backlog of due deliveries
        // the walk made every round of the delivery worker linear in the backlog, so a
        // backlog slowed delivery and grew without end.
        let after = now_ms.checked_add(1)?;
        self.index
            .ready
            .range((after, 0)..)
            .next()
            .map(|(at, _)| *at)
    }

    pub fn has_due(&self, now_ms: u64) -> bool {
        self.index
            .ready
            .first()
            .is_some_and(|(at, _)| *at <= now_ms)
    }

    pub fn in_flight(&self) -> usize {
        self.index.in_flight
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Pending deliveries that count toward `webhook_pending_limit`: every one not held
    /// for want of a callback URL (held ones are bounded by the log's capacity instead),
    /// including those queued behind a held one of the same call or message.
    /// In flight and waiting for a retry count.
    pub fn bounded_len(&self) -> usize {
        self.pending.len().saturating_sub(self.index.held_pending)
    }

    /// Whether a request that queues webhooks may be accepted now: fewer than `limit`
    /// deliveries count toward the bound. Once it is reached, requests wait until the
    /// worker makes room; the one admitted last may take the count past `limit` by its
    /// own few webhooks (two for a send), never by more.
    pub fn admits(&self, limit: usize) -> bool {
        self.bounded_len() < limit
    }

    pub fn last_seq(&self) -> u64 {
        self.next_seq.saturating_sub(1)
    }

    /// Every delivery still held, in creation order.
    pub fn iter(&self) -> impl Iterator<Item = &Delivery> {
        let mut all: Vec<&Delivery> = self
            .done
            .iter()
            .map(|d| &**d)
            .chain(self.pending.values().map(|d| &**d))
            .collect();
        all.sort_by_key(|d| d.seq);
        all.into_iter()
    }

    /// Deliveries with `seq` > `since`, in creation order, without sorting everything.
    pub fn since(&self, since: u64) -> Vec<&Delivery> {
        let start = self.done.partition_point(|d| d.seq <= since);
        let mut all: Vec<&Delivery> = self
            .done
            .iter()
            .skip(start)
            .filter(|d| d.seq > since)
            .map(|d| &**d)
            .chain(self.pending.range(since + 1..).map(|(_, d)| &**d))
            .collect();
        all.sort_by_key(|d| d.seq);
        all
    }

    pub fn get(&self, seq: u64) -> Option<&Delivery> {
        self.pending
            .get(&seq)
            .map(|d| &**d)
            .or_else(|| self.done.iter().rev().find(|d| d.seq == seq).map(|d| &**d))
    }

    /// Rebuilds the index after a restore; nothing is in flight any more.
    pub fn reindex(&mut self) {
        let mut index = Index::default();
        for d in self.pending.values_mut() {
            d.in_flight = false;
            let queue = index.queues.entry(d.order_key.clone()).or_default();
            queue.push_back(d.seq);
            if queue.len() == 1 {
                index.ready.insert((d.next_attempt_at_ms, d.seq));
            }
        }
        self.index = index;
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
            key,
            None,
            None,
            "{}".into(),
            "sha256=x".into(),
            now,
            3_600_000,
            true,
        )
    }

    fn url(_: &str) -> Option<String> {
        Some("http://127.0.0.1:1/".into())
    }

    /// A message status webhook of `app`, which the tests give no callback URL (held).
    fn push_status(o: &mut Outbox, app: &str, event: &str, key: &str, now: u64) {
        o.push(
            app,
            "messages",
            event,
            key,
            None,
            None,
            "{}".into(),
            "sha256=x".into(),
            now,
            3_600_000,
            false,
        );
    }

    #[test]
    fn a_delivery_written_into_an_evicted_ones_buffers_keeps_nothing_of_it() {
        let mut o = Outbox::new(1);
        let ok = || Outcome::Status {
            status: 200,
            body: "ok".into(),
        };
        let (body, sig) = o.buffers();
        assert!(body.is_empty() && sig.is_empty());
        let a = o.push(
            "app",
            "calls",
            "connect",
            "call:1",
            Some("wacid.A"),
            Some("wamid.A"),
            "{\"a\":1}".into(),
            "sha256=a".into(),
            0,
            3_600_000,
            true,
        );
        o.take_due(0, url, 10);
        o.record(a, "u".into(), ok(), 1);
        let b = push(&mut o, "call:2", 2);
        o.take_due(2, url, 10);
        o.record(b, "u".into(), ok(), 3);
        assert_eq!(o.evicted, 1, "a left the log of one");
        let (mut body, mut sig) = o.buffers();
        assert!(body.is_empty() && sig.is_empty(), "cleared, not a's bytes");
        body.extend_from_slice(b"{\"c\":3}");
        sig.push_str("sha256=c");
        let c = o.push(
            "app2",
            "messages",
            "status_sent",
            "msg:C",
            None,
            None,
            String::from_utf8(body).unwrap(),
            sig,
            5,
            60_000,
            true,
        );
        let d = o.get(c).unwrap();
        assert_eq!(
            (
                d.seq,
                d.app_id.as_str(),
                d.field.as_str(),
                d.event.as_str(),
                d.order_key.as_str()
            ),
            (c, "app2", "messages", "status_sent", "msg:C")
        );
        assert_eq!(
            (d.call_id.as_deref(), d.message_id.as_deref()),
            (None, None)
        );
        assert_eq!(
            (d.body.as_str(), d.signature.as_str()),
            ("{\"c\":3}", "sha256=c")
        );
        assert_eq!(
            (d.state, d.created_at_ms, d.next_attempt_at_ms, d.horizon_ms),
            (DeliveryState::Pending, 5, 5, 60_000)
        );
        assert!(d.attempts.is_empty() && d.chaos.is_none() && !d.in_flight);
    }

    #[test]
    fn the_next_deadline_is_the_first_future_attempt_whatever_is_due() {
        let mut o = Outbox::new(10);
        for i in 0..5 {
            push(&mut o, &format!("call:{i}"), 0);
        }
        assert_eq!(o.next_deadline(0), None, "everything is due now");
        let a = o.take_due(0, url, 1)[0].seq;
        o.record(a, "u".into(), Outcome::Error("refused".into()), 0);
        assert_eq!(
            o.next_deadline(0),
            Some(5_000),
            "the retry, past four due ones"
        );
        assert_eq!(o.next_deadline(4_999), Some(5_000));
        assert_eq!(o.next_deadline(5_000), None);
        assert_eq!(o.next_deadline(u64::MAX), None);
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
        assert!(o.take_due(0, url, 10).is_empty(), "held until a URL is set");
        o.release_held();
        assert_eq!(o.take_due(0, url, 10).len(), 1);
    }

    #[test]
    fn held_deliveries_are_bounded_and_counted() {
        let mut o = Outbox::new(100);
        for i in 0..1500 {
            push(&mut o, &format!("k{i}"), 0);
            o.take_due(0, |_| None, 10_000);
        }
        assert_eq!(o.pending_len(), 1000);
        assert_eq!(o.held_evicted, 500);
    }

    #[test]
    fn a_restored_outbox_resumes_in_order() {
        let mut o = Outbox::new(10);
        let a = push(&mut o, "call:1", 0);
        let b = push(&mut o, "call:1", 0);
        o.take_due(0, url, 10);
        let mut restored: Outbox =
            serde_json::from_value(serde_json::to_value(&o).unwrap()).unwrap();
        restored.reindex();
        let jobs: Vec<u64> = restored
            .take_due(0, url, 10)
            .iter()
            .map(|j| j.seq)
            .collect();
        assert_eq!(jobs, vec![a], "the in-flight one is sent again first");
        restored.record(
            a,
            "u".into(),
            Outcome::Status {
                status: 200,
                body: String::new(),
            },
            0,
        );
        let jobs: Vec<u64> = restored
            .take_due(0, url, 10)
            .iter()
            .map(|j| j.seq)
            .collect();
        assert_eq!(jobs, vec![b]);
    }

    /// What a request, a delivery's answer or a held app does to the outbox, drawn by
    /// the property below.
    #[derive(Debug, Clone)]
    enum Step {
        /// A Graph request that, when admitted, queues this many webhooks (a send: 2).
        Request(usize),
        /// The worker takes what is due, up to this many.
        Take(usize),
        /// The oldest in-flight delivery is answered: 200 or a failure (then a retry).
        Answer(bool),
        /// Time passes (retries come due).
        Wait(u64),
        /// A webhook of an app without a callback URL (held: not bounded by the limit).
        Held,
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            (1usize..=3).prop_map(Step::Request),
            (0usize..8).prop_map(Step::Take),
            any::<bool>().prop_map(Step::Answer),
            (0u64..20_000).prop_map(Step::Wait),
            Just(Step::Held),
        ]
    }

    proptest::proptest! {
        /// Requests are admitted only below the limit, so whatever the receiver does
        /// (answers, fails and is retried, never answers), the deliveries that count
        /// toward the bound never pass it by more than the webhooks of the one request
        /// admitted last (at most 3 here: `limit - 1 + 3`); nothing admitted is ever
        /// dropped; held ones do not count.
        #[test]
        fn pending_never_exceeds_the_bound(
            limit in 1usize..12,
            steps in proptest::collection::vec(step(), 1..300),
        ) {
            let mut o = Outbox::new(1000);
            let mut now = 0;
            let mut in_flight: VecDeque<u64> = VecDeque::new();
            let mut admitted = 0u64;
            let mut n = 0;
            for s in steps {
                match s {
                    Step::Request(k) => {
                        if o.admits(limit) {
                            for _ in 0..k {
                                n += 1;
                                push(&mut o, &format!("msg:{}", n % 5), now);
                                admitted += 1;
                            }
                        }
                    }
                    Step::Take(max) => {
                        let app_url = |app: &str| (app == "app").then(|| "http://127.0.0.1:1/".to_owned());
                        in_flight.extend(o.take_due(now, app_url, max).iter().map(|j| j.seq));
                    }
                    Step::Answer(ok) => {
                        if let Some(seq) = in_flight.pop_front() {
                            let outcome = if ok {
                                Outcome::Status { status: 200, body: String::new() }
                            } else {
                                Outcome::Error("refused".into())
                            };
                            o.record(seq, "u".into(), outcome, now);
                        }
                    }
                    Step::Wait(ms) => now += ms,
                    Step::Held => {
                        push_status(&mut o, "app-without-url", "status_sent", "held", now);
                    }
                }
                // Held ones not yet sorted out by the worker count in `bounded_len`: they
                // only hold requests back, so the deliveries to the URL are what is bounded.
                let to_the_url = o
                    .iter()
                    .filter(|d| d.app_id == "app" && d.state == DeliveryState::Pending)
                    .count();
                proptest::prop_assert!(
                    to_the_url < limit + 3,
                    "{to_the_url} pending to the URL with a limit of {limit}"
                );
            }
            let bounded_seen = o.iter().filter(|d| d.app_id == "app").count() as u64;
            proptest::prop_assert_eq!(bounded_seen, admitted, "nothing admitted was dropped");
        }
    }

    #[test]
    fn at_the_limit_nothing_is_admitted_until_a_delivery_finishes() {
        let mut o = Outbox::new(100);
        for i in 0..4 {
            push(&mut o, &format!("msg:{i}"), 0);
        }
        assert!(!o.admits(4), "four pending reach a limit of four");
        let jobs = o.take_due(0, url, 10);
        assert!(!o.admits(4), "in flight still counts");
        o.record(jobs[0].seq, "u".into(), Outcome::Error("down".into()), 0);
        assert!(!o.admits(4), "waiting for a retry still counts");
        o.record(
            jobs[1].seq,
            "u".into(),
            Outcome::Status {
                status: 200,
                body: String::new(),
            },
            0,
        );
        assert!(o.admits(4), "a delivered one makes room");
        for i in 0..1500 {
            push_status(&mut o, "held-app", "status_sent", &format!("h{i}"), 0);
        }
        o.take_due(0, |_| None, 10_000);
        assert_eq!(o.bounded_len(), 3, "held deliveries do not count");
    }

    #[test]
    fn a_sends_webhooks_without_a_url_never_count_toward_the_bound() {
        // Two status webhooks per send share the message's key: the second waits behind
        // the held first one. It counted toward webhook_pending_limit, so a server
        // without a callback URL made every send wait, then refused it, after 5,000.
        let mut o = Outbox::new(10_000);
        for i in 0..12_000 {
            for event in ["status_sent", "status_delivered"] {
                push_status(&mut o, "app", event, &format!("msg:{i}"), 0);
            }
            o.take_due(0, |_| None, 256);
        }
        assert_eq!(o.bounded_len(), 0);
        assert!(o.admits(5_000));
        assert!(
            o.take_due(0, url, 256).is_empty(),
            "held until a URL is set"
        );
        assert!(o.pending_len() <= 20_000, "bounded: {}", o.pending_len());
        assert!(o.held_evicted >= 4_000, "counted: {}", o.held_evicted);
        // Once a URL is set they go out, one per message at a time, and count.
        o.release_held();
        assert_eq!(o.bounded_len(), o.pending_len());
        let first = o.take_due(0, url, 100_000);
        assert_eq!(first.len(), o.index.queues.len());
        for j in first {
            o.record(
                j.seq,
                "u".into(),
                Outcome::Status {
                    status: 200,
                    body: String::new(),
                },
                0,
            );
        }
        assert!(
            !o.take_due(0, url, 100_000).is_empty(),
            "the second of each"
        );
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
