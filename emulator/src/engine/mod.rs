//! The stateful core: every operation of the Graph surface and of the simulated users,
//! as plain functions of `(state, now, input)`.
//!
//! No sockets, tasks or clock reads happen here. The server passes the real time in
//! ([`Engine::observe_real_time`]) or drives the virtual clock ([`Engine::advance_step`]);
//! webhooks go to the [`Outbox`](crate::webhook::outbox::Outbox) and SIP work comes out as
//! [`Effect`]s.
//!
//! # Layout
//! - `mod.rs`: the engine, its state, clock, timers, webhooks emission, snapshots.
//! - `messaging.rs`: `/messages`, statuses, templates, inbound texts and reads.
//! - `calling.rs`: taps, links, native and business calls, `/calls`, permissions, settings.

mod calls;
mod messaging;
mod permissions;
#[cfg(test)]
mod proptests;
mod settings;
mod sip;
mod sweep;
mod templates;

use crate::domain::call::Call;
use crate::domain::error::{ApiError, ApiResult, ErrorKind};
use crate::domain::ids::{
    bsuid_for, AppId, CallId, IdGen, MessageId, PhoneNumberId, TemplateId, WaId, WabaId,
};
use crate::domain::message::OutboundMessage;
use crate::domain::permission::Permission;
use crate::domain::template::Template;
use crate::domain::tenant::{Behaviour, PhoneNumber, Tenants};
use crate::domain::user::{IdentityChange, Platform, User, PHONE_VISIBLE_MS};
use crate::domain::version::GraphVersion;
use crate::webhook::outbox::Outbox;
use crate::webhook::{codec, payload};
use crate::wire::messages::Recipient;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

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
}

/// Work for the I/O shell that is not a webhook.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    SipInvite(Box<crate::domain::sip::SipInvite>),
    SipHangup { call_id: CallId, duration_secs: u64 },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalEntry {
    pub seq: u64,
    pub at_ms: u64,
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
    pub status: u16,
    pub response: String,
}

/// A bounded journal of Graph requests and responses.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Journal {
    pub entries: VecDeque<JournalEntry>,
    pub next_seq: u64,
    pub evicted: u64,
    pub capacity: usize,
}

impl Journal {
    pub fn push(&mut self, mut e: JournalEntry) {
        self.next_seq += 1;
        e.seq = self.next_seq;
        if self.capacity == 0 {
            self.evicted += 1;
            return;
        }
        self.entries.push_back(e);
        while self.entries.len() > self.capacity {
            self.entries.pop_front();
            self.evicted += 1;
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SipLogEntry {
    pub at_ms: u64,
    pub call_id: String,
    pub outgoing: bool,
    pub first_line: String,
    pub raw: String,
}

/// Everything that changes while the emulator runs; a snapshot is this, serialised.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub now_ms: u64,
    pub tenants: Tenants,
    pub users: BTreeMap<WaId, User>,
    /// Last user activity per `phone/wa_id`: the 24 h customer service window.
    pub windows: HashMap<String, u64>,
    /// Last exchange over the user's phone number per `phone/wa_id` (the business sent
    /// or called with `to`, or the user wrote or called while the number was visible):
    /// keeps a hidden number visible to that business for 30 days (cloud-api §13).
    #[serde(default)]
    pub phone_exchanges: HashMap<String, u64>,
    pub messages: HashMap<MessageId, OutboundMessage>,
    pub message_order: VecDeque<MessageId>,
    pub messages_evicted: u64,
    /// Recent inbound message ids, so the business can mark them read.
    pub inbound: VecDeque<(MessageId, PhoneNumberId)>,
    /// Open pricing conversations per `phone/wa_id/category`: (id, expires at).
    pub conversations: HashMap<String, (String, u64)>,
    pub templates: Vec<Template>,
    pub template_creations: Vec<(WabaId, u64)>,
    pub calls: HashMap<CallId, Call>,
    pub call_order: VecDeque<CallId>,
    pub calls_evicted: u64,
    pub permissions: HashMap<String, Permission>,
    pub timers: BTreeSet<(u64, u64, Timer)>,
    pub timer_seq: u64,
    pub outbox: Outbox,
    pub journal: Journal,
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
    User(WaId),
    Window(String, Option<u64>),
    Permission(String),
    PhoneExchange(String, Option<u64>),
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
    /// shift the ids that state depends on, or a journal replay would diverge.
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
            journal: Journal {
                capacity: self.behaviour.journal_capacity,
                ..Default::default()
            },
            ..Default::default()
        };
        for u in &self.initial.users {
            let user = User::new(
                u.wa_id.clone(),
                u.name.clone(),
                u.platform,
                u.version.clone(),
            );
            st.users.insert(u.wa_id.clone(), user);
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
                Undo::User(wa) => {
                    self.st.users.remove(&wa);
                }
                Undo::Window(key, Some(t)) => {
                    self.st.windows.insert(key, t);
                }
                Undo::Window(key, None) => {
                    self.st.windows.remove(&key);
                }
                Undo::Permission(key) => {
                    self.st.permissions.remove(&key);
                }
                Undo::PhoneExchange(key, Some(t)) => {
                    self.st.phone_exchanges.insert(key, t);
                }
                Undo::PhoneExchange(key, None) => {
                    self.st.phone_exchanges.remove(&key);
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

    fn set_window(&mut self, key: String, at: u64) {
        let old = self.st.windows.insert(key.clone(), at);
        self.note(Undo::Window(key, old));
    }

    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    pub fn fbtrace_id(&mut self) -> String {
        self.trace_ids.fbtrace_id()
    }

    // ---- tenants and auth ---------------------------------------------------------

    pub fn app_for_token(&self, token: &str) -> Option<AppId> {
        self.st
            .tenants
            .apps
            .iter()
            .find(|a| a.access_tokens.iter().any(|t| t == token))
            .map(|a| a.id.clone())
    }

    pub fn phone(&self, id: &PhoneNumberId) -> Option<&PhoneNumber> {
        self.st.tenants.phone_numbers.iter().find(|p| &p.id == id)
    }

    fn phone_mut(&mut self, id: &PhoneNumberId) -> Option<&mut PhoneNumber> {
        self.st
            .tenants
            .phone_numbers
            .iter_mut()
            .find(|p| &p.id == id)
    }

    pub fn phone_by_display(&self, digits: &str) -> Option<&PhoneNumber> {
        self.st
            .tenants
            .phone_numbers
            .iter()
            .find(|p| p.display_phone_number == digits)
    }

    /// The named phone number, or the first one when none is named.
    pub fn phone_or_default(&self, id: Option<&PhoneNumberId>) -> ApiResult<PhoneNumber> {
        let id = id
            .cloned()
            .or_else(|| self.default_phone())
            .ok_or_else(|| unknown_object("phone"))?;
        self.phone(&id)
            .cloned()
            .ok_or_else(|| unknown_object(id.as_str()))
    }

    pub fn default_phone(&self) -> Option<PhoneNumberId> {
        self.st.tenants.phone_numbers.first().map(|p| p.id.clone())
    }

    pub fn app_of_waba(&self, waba: &WabaId) -> Option<&AppId> {
        self.st
            .tenants
            .wabas
            .iter()
            .find(|w| &w.id == waba)
            .map(|w| &w.app_id)
    }

    /// The object's owner check: a token reaches only its own app's WABAs and numbers.
    pub fn phone_for(&self, app: &AppId, id: &PhoneNumberId) -> ApiResult<PhoneNumber> {
        let phone = self.phone(id).ok_or_else(|| unknown_object(id.as_str()))?;
        if self.app_of_waba(&phone.waba_id) != Some(app) {
            return Err(ApiError::new(
                ErrorKind::PermissionDenied,
                format!("The access token's app {app} does not own phone number {id}."),
            ));
        }
        Ok(phone.clone())
    }

    pub fn waba_for(&self, app: &AppId, id: &WabaId) -> ApiResult<WabaId> {
        match self.app_of_waba(id) {
            None => Err(unknown_object(id.as_str())),
            Some(owner) if owner != app => Err(ApiError::new(
                ErrorKind::PermissionDenied,
                format!("The access token's app {app} does not own WABA {id}."),
            )),
            Some(_) => Ok(id.clone()),
        }
    }

    pub fn webhook_url(&self, app: &str) -> Option<String> {
        self.st.tenants.webhook_url(app)
    }

    pub fn set_webhook_url(
        &mut self,
        app: Option<&str>,
        url: Option<String>,
        verify_token: Option<String>,
    ) {
        let idx = app
            .and_then(|a| self.st.tenants.apps.iter().position(|x| x.id.as_str() == a))
            .unwrap_or(0);
        if let Some(a) = self.st.tenants.apps.get_mut(idx) {
            a.webhook_url = url;
            if let Some(t) = verify_token {
                a.verify_token = t;
            }
        }
        self.st.outbox.release_held();
    }

    // ---- users --------------------------------------------------------------------

    /// The user, created on first sight as PRODUCT §2 says (Android, latest version).
    pub(crate) fn user_or_create(&mut self, wa: &WaId) -> User {
        if let Some(u) = self.st.users.get(wa) {
            return u.clone();
        }
        let user = sweep::fresh_user(wa, &self.behaviour.versions.latest);
        // A forgotten user is not new: no fresh service window.
        let window = self.came_back(wa).then_some(false);
        self.add_user(user.clone(), window);
        user
    }

    /// Whether `wa` was forgotten while idle; they are remembered again from now on.
    fn came_back(&mut self, wa: &WaId) -> bool {
        let back = self.take_forgotten(wa);
        if back {
            self.note(Undo::Forgotten(wa.clone()));
        }
        back
    }

    fn add_user(&mut self, user: User, window_open: Option<bool>) {
        if window_open.unwrap_or(self.behaviour.new_users_window_open) {
            self.open_window_all(&user.wa_id);
        }
        self.note(Undo::User(user.wa_id.clone()));
        self.st.users.insert(user.wa_id.clone(), user);
    }

    pub fn upsert_user(
        &mut self,
        wa: WaId,
        name: Option<String>,
        platform: Option<Platform>,
        version: Option<crate::domain::user::ClientVersion>,
        window_open: Option<bool>,
    ) -> User {
        match self.st.users.get_mut(&wa) {
            Some(u) => {
                if let Some(n) = name {
                    u.name = n;
                }
                if let Some(p) = platform {
                    u.platform = p;
                }
                if let Some(v) = version {
                    u.version = v;
                }
                let u = u.clone();
                if window_open == Some(true) {
                    self.open_window_all(&wa);
                } else if window_open == Some(false) {
                    self.st
                        .windows
                        .retain(|k, _| !k.ends_with(&format!("/{wa}")));
                }
                u
            }
            None => {
                let window_open = if self.came_back(&wa) {
                    window_open.or(Some(false))
                } else {
                    window_open
                };
                let user = User::new(
                    wa,
                    name,
                    platform.unwrap_or(Platform::Android),
                    version.unwrap_or_else(|| self.behaviour.versions.latest.clone()),
                );
                self.add_user(user.clone(), window_open);
                user
            }
        }
    }

    /// Whether `change` can apply to user `wa` (who may not exist yet): usernames and
    /// parent BSUIDs belong to one user each, and only a user with a username can hide
    /// their number. Checked before anything changes, so a refused request changes nothing.
    pub fn check_identity(&self, wa: &WaId, change: &IdentityChange) -> ApiResult<()> {
        let current = self.st.users.get(wa);
        let others = || self.st.users.values().filter(move |u| &u.wa_id != wa);
        if let Some(Some(name)) = &change.username {
            if let Some(o) = others().find(|o| {
                o.username
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            }) {
                return Err(ApiError::new(
                    ErrorKind::InvalidValue,
                    format!("username {name:?} is already the username of user {}; usernames are unique.", o.wa_id),
                ));
            }
        }
        if let Some(Some(parent)) = &change.parent_user_id {
            let own = current.is_some_and(|u| &u.user_id == parent)
                || (current.is_none() && &bsuid_for(wa) == parent);
            let forgotten = self.forgotten_with_bsuid(parent);
            if let Some(o) = others()
                .find(|o| o.answers_to(parent))
                .map(|o| o.wa_id.clone())
                .or(forgotten)
            {
                return Err(ApiError::new(
                    ErrorKind::InvalidValue,
                    format!("parent_user_id {parent:?} already names user {o}; a BSUID or parent BSUID reaches one user."),
                ));
            }
            if own {
                return Err(ApiError::new(
                    ErrorKind::InvalidValue,
                    format!("parent_user_id {parent:?} is this user's own BSUID; a parent BSUID is a different id (US.ENT.…)."),
                ));
            }
        }
        let username_after = match &change.username {
            Some(n) => n.is_some(),
            None => current.is_some_and(|u| u.username.is_some()),
        };
        if change.hide_phone_number == Some(true) && !username_after {
            return Err(ApiError::new(
                ErrorKind::InvalidValue,
                "hide_phone_number: only a user with a username can hide their phone number (cloud-api §13); give a username too.",
            ));
        }
        Ok(())
    }

    /// Applies a change [`Engine::check_identity`] accepted; the user must exist.
    pub fn apply_identity(&mut self, wa: &WaId, change: IdentityChange) -> Option<User> {
        let u = self.st.users.get_mut(wa)?;
        if let Some(n) = change.username {
            u.username = n;
        }
        if let Some(p) = change.parent_user_id {
            u.parent_user_id = p;
        }
        if let Some(h) = change.hide_phone_number {
            u.hide_phone_number = Some(h);
        }
        Some(u.clone())
    }

    fn open_window_all(&mut self, wa: &WaId) {
        let now = self.now();
        let phones: Vec<PhoneNumberId> = self
            .st
            .tenants
            .phone_numbers
            .iter()
            .map(|p| p.id.clone())
            .collect();
        for p in phones {
            self.set_window(pair_key(&p, wa), now);
        }
    }

    /// The user interacted with the business number (wrote, called, replied): the
    /// service window opens, and so does the phone number's visibility when the
    /// exchange went over a visible number (see [`Engine::note_phone_exchange`]).
    pub(crate) fn open_window(&mut self, phone: &PhoneNumberId, wa: &WaId) {
        let now = self.now();
        self.set_window(pair_key(phone, wa), now);
        let visible = self
            .st
            .users
            .get(wa)
            .is_some_and(|u| self.phone_visible(phone, u));
        if visible || self.behaviour.user_contact_reveals_phone {
            self.note_phone_exchange(phone, wa);
        }
    }

    /// An exchange over the user's phone number with the business number: a send or a
    /// call to it with `to`, or the user writing or calling while it is visible.
    pub(crate) fn note_phone_exchange(&mut self, phone: &PhoneNumberId, wa: &WaId) {
        let key = pair_key(phone, wa);
        let old = self.st.phone_exchanges.insert(key.clone(), self.now());
        self.note(Undo::PhoneExchange(key, old));
    }

    /// Whether business number `phone` sees `user`'s phone number now (cloud-api §13): a
    /// user without a username (or who does not hide it) always shows it; one who hides
    /// it shows it for 30 days after an exchange over it.
    pub(crate) fn phone_visible(&self, phone: &PhoneNumberId, user: &User) -> bool {
        !user.hides_phone_number()
            || self
                .st
                .phone_exchanges
                .get(&pair_key(phone, &user.wa_id))
                .is_some_and(|t| self.now().saturating_sub(*t) < PHONE_VISIBLE_MS)
    }

    /// `user` as business number `phone` sees them in webhooks. Without BSUIDs a phone
    /// number is the only identifier, so it always shows.
    pub(crate) fn seen<'a>(&self, phone: &PhoneNumberId, user: &'a User) -> payload::Seen<'a> {
        let bsuid = self.behaviour.bsuid;
        payload::Seen {
            user,
            bsuid,
            phone: !bsuid || self.phone_visible(phone, user),
        }
    }

    /// The user a `to` or a BSUID `recipient` reaches from business number `phone`
    /// (cloud-api §0, §13). A phone number reaches a user even if the emulator has not
    /// seen them yet (they are created on first sight); a BSUID must be a known user's
    /// BSUID or parent BSUID.
    pub(crate) fn resolve_recipient(
        &self,
        phone: &PhoneNumber,
        recipient: &Recipient,
    ) -> ApiResult<WaId> {
        match recipient {
            Recipient::Phone {
                digits,
                international,
                ..
            } => crate::wire::messages::wa_id_for_to(
                digits,
                *international,
                &phone.display_phone_number,
                self.behaviour.always_prepend_calling_code,
            ),
            Recipient::Bsuid(bsuid) => self.user_by_bsuid(bsuid, "recipient"),
        }
    }

    /// An error about a user the request named by BSUID does not tell the business a
    /// number it cannot see: the number becomes the BSUID in `details`.
    pub(crate) fn hide_number_in(
        &self,
        mut e: ApiError,
        phone: &PhoneNumberId,
        recipient: &Recipient,
        to: &WaId,
    ) -> ApiError {
        if let Recipient::Bsuid(bsuid) = recipient {
            let visible = self
                .st
                .users
                .get(to)
                .is_some_and(|u| self.phone_visible(phone, u));
            if !visible {
                e.details = e.details.replace(to.as_str(), bsuid);
            }
        }
        e
    }

    /// The user whose BSUID or parent BSUID is `bsuid`; `field` names the request field
    /// in the error.
    pub(crate) fn user_by_bsuid(&self, bsuid: &str, field: &str) -> ApiResult<WaId> {
        if !self.behaviour.bsuid {
            return Err(ApiError::new(
                ErrorKind::InvalidValue,
                format!("{field} {bsuid:?} is a BSUID, but BSUIDs are off on this emulator (behaviour.bsuid = false); send to a phone number with `to`."),
            ));
        }
        self.st
            .users
            .values()
            .find(|u| u.answers_to(bsuid))
            .map(|u| u.wa_id.clone())
            .or_else(|| self.forgotten_with_bsuid(bsuid))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::InvalidValue,
                    format!("{field} {bsuid:?} is not the BSUID or parent BSUID of any WhatsApp user this business can reach. BSUIDs come from webhooks (contacts[].user_id) or from POST /__emulator/users (GET /__emulator/users lists them)."),
                )
            })
    }

    pub(crate) fn window_open(&self, phone: &PhoneNumberId, wa: &WaId) -> bool {
        self.st
            .windows
            .get(&pair_key(phone, wa))
            .is_some_and(|t| self.now().saturating_sub(*t) < 24 * 3600 * 1000)
    }

    pub fn user(&self, wa: &WaId) -> ApiResult<&User> {
        self.st.users.get(wa).ok_or_else(|| {
            ApiError::new(
                ErrorKind::NotFound,
                format!("No simulated user {wa}; create one with POST /__emulator/users."),
            )
        })
    }

    // ---- webhooks -----------------------------------------------------------------

    /// Queues a webhook for the app subscribed to the WABA.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn emit(
        &mut self,
        waba: &WabaId,
        field: &str,
        event: &str,
        order_key: String,
        call_id: Option<&CallId>,
        message_id: Option<&MessageId>,
        value: Value,
        entry_time: bool,
    ) {
        let Some(app) = self
            .st
            .tenants
            .wabas
            .iter()
            .find(|w| &w.id == waba)
            .map(|w| w.app_id.clone())
        else {
            return;
        };
        let Some(secret) = self
            .st
            .tenants
            .apps
            .iter()
            .find(|a| a.id == app)
            .map(|a| a.secret.clone())
        else {
            return;
        };
        let now = self.now();
        let raw = payload::envelope_text(waba.as_str(), field, &value, entry_time.then_some(now));
        let signature = codec::sign(secret.as_bytes(), raw.as_bytes());
        let horizon = if field == "calls" {
            self.behaviour.calls_retry_horizon_secs
        } else {
            self.behaviour.retry_horizon_secs
        } * 1000;
        self.st.outbox.push(
            app.as_str(),
            field,
            event,
            order_key,
            call_id.map(|c| c.0.clone()),
            message_id.map(|m| m.0.clone()),
            raw,
            signature,
            now,
            horizon,
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn emit_for_phone(
        &mut self,
        phone: &PhoneNumber,
        field: &str,
        event: &str,
        order_key: String,
        call_id: Option<&CallId>,
        message_id: Option<&MessageId>,
        value: Value,
    ) {
        let waba = phone.waba_id.clone();
        self.emit(
            &waba, field, event, order_key, call_id, message_id, value, false,
        );
    }

    /// 138013 for numbers without business-initiated calling: by country, or by the
    /// number's configuration. The details name the numbers of the same WABA that have it.
    pub(crate) fn require_business_initiated(
        &self,
        phone: &PhoneNumber,
        what: &str,
    ) -> ApiResult<()> {
        if phone.business_initiated_calling() {
            return Ok(());
        }
        let why = match phone.business_initiated_calling {
            Some(false) => "its configuration turns business-initiated calling off (business_initiated_calling = false)".to_owned(),
            _ => format!("+{} is in a country without it (+1 US/Canada, +20 Egypt, +84 Vietnam, +234 Nigeria)", phone.display_phone_number),
        };
        let others: Vec<String> = self
            .st
            .tenants
            .phone_numbers
            .iter()
            .filter(|p| p.waba_id == phone.waba_id && p.business_initiated_calling())
            .map(|p| format!("{} (+{})", p.id, p.display_phone_number))
            .collect();
        let hint = if others.is_empty() {
            String::new()
        } else {
            format!(" Numbers of this WABA that have it: {}.", others.join(", "))
        };
        Err(ApiError::new(
            ErrorKind::BusinessCallingUnavailable,
            format!(
                "Business-initiated calling is not available for phone number {} (+{}): {why}, so {what}.{hint}",
                phone.id, phone.display_phone_number
            ),
        ))
    }

    // ---- journal ------------------------------------------------------------------

    pub fn journal(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
        status: u16,
        response: &[u8],
    ) {
        let bound = |b: &[u8]| {
            let s = String::from_utf8_lossy(&b[..b.len().min(64 * 1024)]).into_owned();
            if b.len() > 64 * 1024 {
                format!("{s}… ({} bytes)", b.len())
            } else {
                s
            }
        };
        let e = JournalEntry {
            seq: 0,
            at_ms: self.now(),
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            body: bound(body),
            status,
            response: bound(response),
        };
        self.st.journal.push(e);
    }

    /// Records one SIP message for the admin API.
    pub fn sip_log(&mut self, call_id: &str, outgoing: bool, first_line: String, raw: String) {
        let at_ms = self.now();
        self.st.sip_log.push_back(SipLogEntry {
            at_ms,
            call_id: call_id.to_owned(),
            outgoing,
            first_line,
            raw,
        });
        while self.st.sip_log.len() > 1000 {
            self.st.sip_log.pop_front();
            self.st.sip_log_evicted += 1;
        }
    }

    // ---- retention ------------------------------------------------------------------

    pub(crate) fn remember_message(&mut self, m: OutboundMessage) {
        self.st.message_order.push_back(m.id.clone());
        self.st.messages.insert(m.id.clone(), m);
        while self.st.message_order.len() > self.behaviour.message_retention {
            if let Some(old) = self.st.message_order.pop_front() {
                self.st.messages.remove(&old);
                self.st.messages_evicted += 1;
            }
        }
    }

    pub(crate) fn remember_call(&mut self, c: Call) {
        self.st.call_order.push_back(c.id.clone());
        self.st.calls.insert(c.id.clone(), c);
        // Only ended calls are evicted: an ongoing call must stay reachable.
        while self.st.call_order.len() > self.behaviour.call_retention {
            let Some(pos) = self
                .st
                .call_order
                .iter()
                .position(|id| self.st.calls.get(id).is_none_or(|c| !c.is_ongoing()))
            else {
                break;
            };
            if let Some(old) = self.st.call_order.remove(pos) {
                self.st.calls.remove(&old);
                self.st.calls_evicted += 1;
            }
        }
    }
}

pub fn unknown_object(id: &str) -> ApiError {
    ApiError::new(
        ErrorKind::UnknownObject,
        format!("No object with ID '{id}' exists on this emulator (known ids: GET /__emulator/config)."),
    )
    .with_subcode(33)
    .with_message(format!(
        "Unsupported post request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
    ))
}
