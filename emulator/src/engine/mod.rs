//! The stateful core: every operation of the Graph surface and of the simulated users,
//! as plain functions of `(state, now, input)`.
//!
//! No sockets, tasks or clock reads happen here. The server passes the real time in
//! ([`Engine::observe_real_time`]) or drives the virtual clock ([`Engine::advance_step`]);
//! webhooks go to the [`crate::webhook::outbox::Outbox`] and SIP work comes out as
//! [`Effect`]s.
//!
//! # Layout
//! - `mod.rs`: the engine and its state, snapshots, the clock and timers, undo of refused
//!   requests, effects.
//! - `tenants.rs`: tokens, owner checks, phone numbers and WABAs, the webhook URL, 138013.
//! - `users.rs`: simulated users, identities, service windows, phone visibility,
//!   recipients (`to` or BSUID).
//! - `messaging.rs`: `/messages` sends and their statuses, the user's texts and reads.
//! - `templates.rs`: `/message_templates`, review, status changes, the APPROVED check.
//! - `calls.rs`: taps, links, the call icon, `/calls` (`connect` included), the call
//!   state machine applied.
//! - `media.rs`: the calls' media endpoints as the core sees them: the SDP pointed at
//!   the endpoint, when it starts, talks and stops, and 138021 when no audio comes.
//! - `permissions.rs`: permission replies, callback grants, `GET /call_permissions`.
//! - `settings.rs`: `GET`/`POST /settings`.
//! - `sip.rs`: the INVITE of a SIP-enabled number's call, the gateway's events, the SIP
//!   message log.
//! - `sip_gateway.rs`: business-initiated calls over SIP: a business's INVITE to the
//!   emulator's gateway judged and the user rung.
//! - `webhooks.rs`: webhook emission into the outbox.
//! - `recipients.rs`: the users and their per-number state (windows, phone-visibility
//!   marks, pricing conversations) in compact rows.
//! - `retention.rs`: the most recent messages and calls kept, the rest counted.
//! - `sweep.rs`: expired per-user state dropped, idle users folded away.
//! - `request_history.rs`: the Graph requests of `GET /__emulator/requests`.
//! - `proptests.rs`: property tests over the whole engine.

mod calls;
mod media;
mod messaging;
mod permissions;
#[cfg(test)]
mod proptests;
mod recipients;
mod request_history;
mod retention;
mod rtp_media;
mod settings;
mod sip;
mod sip_gateway;
mod sweep;
mod templates;
mod tenants;
mod users;
mod webhooks;

use crate::domain::call::Call;
use crate::domain::ids::{CallId, IdGen, MessageId, PhoneNumberId, TemplateId, WaId, WabaId};
use crate::domain::permission::Permission;
use crate::domain::template::Template;
use crate::domain::tenant::{Behaviour, Tenants};
use crate::domain::user::User;
use crate::domain::version::GraphVersion;
use crate::webhook::outbox::Outbox;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, VecDeque};

pub use recipients::Recipients;
pub use request_history::{RecordedRequest, RequestHistory};
pub use retention::Messages;
pub use sip::SipLogEntry;
pub use tenants::{derived_phone_number_id, unknown_object, NewPhoneNumber};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    Real,
    Virtual,
}

/// Something that fires at a time on the emulator's clock.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Timer {
    RingTimeout(CallId),
    TemplateReview(TemplateId),
    /// No audio from the business this long after the call connected: 138021.
    MediaTimeout(CallId),
    /// The business's audio stopped mid-call and did not come again: 138021.
    MediaSilence(CallId),
}

/// Work for the I/O shell that is not a webhook.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    SipInvite(Box<crate::domain::sip::SipInvite>),
    SipHangup {
        call_id: CallId,
        duration_secs: u64,
    },
    /// The gateway's answer to a business that called a user over SIP.
    SipReply {
        call_id: CallId,
        reply: crate::domain::sip::GatewayReply,
    },
    /// Connect the user's media endpoint of a call to the business (`ice`: our ICE
    /// username fragment and password, as our SDP carries them).
    MediaStart {
        call_id: CallId,
        ice: (String, String),
        remote: Box<crate::media::sdp::Remote>,
    },
    /// Connect the user's RTP endpoint of a SIP call to the business: SRTP with SDES
    /// keys, or plain RTP (`sip_plain_rtp`).
    MediaStartRtp {
        call_id: CallId,
        session: Box<crate::media::sdp::RtpSession>,
    },
    /// The call is connected: the user talks.
    MediaTalk {
        call_id: CallId,
    },
    /// The call ended: the endpoint closes.
    MediaStop {
        call_id: CallId,
    },
}

/// Everything that changes while the emulator runs; a snapshot is this, serialised.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub now_ms: u64,
    pub tenants: Tenants,
    /// The users and, per `phone/wa_id`, the 24 h customer service window (last user
    /// activity), the last exchange over the user's phone number (the business sent or
    /// called with `to`, or the user wrote or called while the number was visible: keeps
    /// a hidden number visible to that business for 30 days, cloud-api §13) and the open
    /// pricing conversations per category: compact rows, written to snapshots as the
    /// maps `users`, `windows`, `phone_exchanges` and `conversations`.
    #[serde(flatten)]
    pub recipients: Recipients,
    /// The retained messages, oldest first (snapshots: `messages` and `message_order`).
    #[serde(flatten)]
    pub messages: Messages,
    pub messages_evicted: u64,
    /// Recent inbound message ids, so the business can mark them read.
    pub inbound: VecDeque<(MessageId, PhoneNumberId)>,
    pub templates: Vec<Template>,
    pub template_creations: Vec<(WabaId, u64)>,
    pub calls: HashMap<CallId, Call>,
    pub call_order: VecDeque<CallId>,
    pub calls_evicted: u64,
    pub permissions: HashMap<String, Permission>,
    pub timers: BTreeSet<(u64, u64, Timer)>,
    pub timer_seq: u64,
    pub outbox: Outbox,
    /// The Graph requests of `GET /__emulator/requests` (named `journal` in snapshots).
    #[serde(rename = "journal")]
    pub request_history: RequestHistory,
    pub permission_api_hits: VecDeque<u64>,
    pub sip_log: VecDeque<SipLogEntry>,
    pub sip_log_evicted: u64,
    /// Reseeds the id generator after a snapshot import.
    pub id_cursor: u64,
    /// Users folded away while idle, by number (see `engine/sweep.rs`): seen before, so
    /// not new when they come back.
    #[serde(default)]
    pub forgotten: BTreeSet<u64>,
    /// When the next sweep of expired state is due.
    #[serde(default)]
    pub next_sweep_ms: u64,
}

/// What a failing operation must take back: the users, windows and permission records
/// it created on its way to the error (a refused request changes no state).
#[derive(Debug, Clone)]
enum Undo {
    /// The user of a recipient key as it was (`None`: absent).
    User(u64, Option<User>),
    /// A window (`false`) or phone-visibility mark (`true`) of a recipient key and a
    /// number's index as it was.
    Time(u64, u32, bool, Option<u64>),
    Permission(String),
    /// A forgotten user came back: forget them again.
    Forgotten(WaId),
}

pub struct Engine {
    pub behaviour: Behaviour,
    initial: Tenants,
    seed: u64,
    pub clock: ClockMode,
    ids: IdGen,
    /// A separate stream for `fbtrace_id`s: errors (even of read-only requests) must not
    /// shift the ids that state depends on, or a write-ahead-log replay would diverge.
    trace_ids: IdGen,
    pub st: State,
    effects: Vec<Effect>,
    /// Recording while an API operation runs; see [`Engine::begin`].
    undo: Option<Vec<Undo>>,
    /// Bumped by every operation, timer and SIP event: a cheap "something changed" for
    /// watchers such as the inspector's event stream.
    pub revision: u64,
    /// The Graph version of the request being handled (from its path, or the default).
    pub graph_version: GraphVersion,
    /// The user's media endpoint (its socket and certificate), when the shell runs one:
    /// the SDP the emulator sends then points at it. `None`: shaped SDP, signalling only.
    pub media_local: Option<crate::media::sdp::Local>,
}

pub(crate) fn pair_key(phone: &PhoneNumberId, wa: &WaId) -> String {
    format!("{phone}/{wa}")
}

impl Engine {
    pub fn new(
        tenants: Tenants,
        behaviour: Behaviour,
        seed: u64,
        clock: ClockMode,
        start_ms: u64,
    ) -> Self {
        let mut e = Self {
            initial: tenants.clone(),
            seed,
            clock,
            ids: IdGen::new(seed),
            trace_ids: IdGen::new(seed ^ 0x7472_6163_6500),
            st: State::default(),
            effects: Vec::new(),
            undo: None,
            revision: 0,
            graph_version: behaviour.default_graph_version,
            media_local: None,
            behaviour,
        };
        e.st = e.fresh_state(start_ms);
        e
    }

    fn fresh_state(&self, now_ms: u64) -> State {
        let mut st = State {
            now_ms,
            tenants: self.initial.clone(),
            outbox: Outbox::with_chaos(
                self.behaviour.delivery_log_capacity,
                self.behaviour.chaos.clone(),
            ),
            request_history: RequestHistory {
                capacity: self.behaviour.request_history_capacity,
                ..Default::default()
            },
            ..Default::default()
        };
        st.recipients.set_latest(&self.behaviour.versions.latest);
        for u in &self.initial.users {
            let user = User::new(
                u.wa_id.clone(),
                u.name.clone(),
                u.platform,
                u.version.clone(),
            );
            st.recipients.put_user(user);
        }
        st
    }

    /// Back to the configured initial state; the clock keeps its time.
    pub fn reset(&mut self) {
        self.st = self.fresh_state(self.st.now_ms);
        self.ids = IdGen::new(self.seed);
        self.effects.clear();
    }

    /// A snapshot for persistence: the id generator is reseeded from the cursor it
    /// records, so replaying inputs from this snapshot gives exactly the ids the running
    /// engine gives from now on.
    pub fn checkpoint(&mut self) -> Value {
        let cursor = self.ids.u64();
        self.ids = IdGen::new(cursor);
        self.st.id_cursor = cursor;
        serde_json::to_value(&self.st).unwrap_or(Value::Null)
    }

    pub fn snapshot(&self) -> Value {
        let mut st = self.st.clone();
        st.id_cursor = self.ids.clone().u64();
        serde_json::to_value(&st).unwrap_or(Value::Null)
    }

    pub fn restore(&mut self, v: Value) -> Result<(), String> {
        let mut st: State =
            serde_json::from_value(v).map_err(|e| format!("not a wa-emulator snapshot: {e}"))?;
        st.outbox.reindex();
        st.recipients.set_latest(&self.behaviour.versions.latest);
        self.ids = IdGen::new(st.id_cursor);
        if self.clock == ClockMode::Real {
            st.now_ms = st.now_ms.max(self.st.now_ms);
        }
        self.st = st;
        Ok(())
    }

    // ---- time -------------------------------------------------------------------

    pub fn now(&self) -> u64 {
        self.st.now_ms
    }

    /// With the real clock, the shell reports the time before each operation; due timers
    /// fire at their own times, in order.
    pub fn observe_real_time(&mut self, real_ms: u64) {
        if self.clock == ClockMode::Real && real_ms > self.st.now_ms {
            self.fire_timers_until(real_ms);
            self.st.now_ms = real_ms;
            self.sweep_if_due();
        }
    }

    fn fire_timers_until(&mut self, until_ms: u64) {
        while let Some(first) = self.st.timers.first().cloned() {
            if first.0 > until_ms {
                break;
            }
            self.st.timers.remove(&first);
            self.st.now_ms = self.st.now_ms.max(first.0);
            self.fire(first.2);
        }
    }

    /// The next time something is due: a timer or a webhook retry.
    pub fn next_deadline(&self) -> Option<u64> {
        let timer = self.st.timers.first().map(|t| t.0);
        let retry = self.st.outbox.next_deadline(self.st.now_ms);
        match (timer, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Virtual clock: moves to the next due time at or before `target` (firing what is
    /// due there) or to `target`. Returns false once the clock stands at `target`.
    pub fn advance_step(&mut self, target_ms: u64) -> bool {
        match self.next_deadline() {
            Some(t) if t <= target_ms && t > self.st.now_ms => {
                self.st.now_ms = t;
                self.fire_timers_until(t);
                self.sweep_if_due();
                true
            }
            _ => {
                self.fire_timers_until(target_ms);
                self.st.now_ms = self.st.now_ms.max(target_ms);
                self.sweep_if_due();
                false
            }
        }
    }

    fn schedule(&mut self, at_ms: u64, timer: Timer) {
        self.st.timer_seq += 1;
        self.st.timers.insert((at_ms, self.st.timer_seq, timer));
    }

    fn cancel(&mut self, timer: &Timer) {
        self.st.timers.retain(|t| &t.2 != timer);
    }

    fn fire(&mut self, timer: Timer) {
        self.revision += 1;
        match timer {
            Timer::RingTimeout(call_id) => self.ring_timeout(&call_id),
            Timer::TemplateReview(id) => self.template_reviewed(&id),
            Timer::MediaTimeout(call_id) => self.media_timeout(&call_id),
            Timer::MediaSilence(call_id) => self.media_silence(&call_id),
        }
    }

    /// Starts recording what an operation creates, so [`Engine::finish`] can take it
    /// back when the operation fails.
    pub fn begin(&mut self) {
        self.undo = Some(Vec::new());
    }

    pub fn finish(&mut self, ok: bool) {
        let Some(list) = self.undo.take() else { return };
        if ok {
            return;
        }
        for u in list.into_iter().rev() {
            match u {
                Undo::User(key, user) => self.st.recipients.put_user_key(key, user),
                Undo::Time(key, phone, exchange, at) => {
                    self.st.recipients.set_time_at(key, phone, exchange, at);
                }
                Undo::Permission(key) => {
                    self.st.permissions.remove(&key);
                }
                Undo::Forgotten(wa) => {
                    if let Ok(n) = wa.as_str().parse() {
                        self.st.forgotten.insert(n);
                    }
                }
            }
        }
    }

    fn note(&mut self, u: Undo) {
        if let Some(list) = &mut self.undo {
            list.push(u);
        }
    }

    pub(crate) fn note_permission(&mut self, key: String) {
        self.note(Undo::Permission(key));
    }

    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    pub fn fbtrace_id(&mut self) -> String {
        self.trace_ids.fbtrace_id()
    }
}
