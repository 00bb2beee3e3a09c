//! Per-recipient state in compact rows: the user, and per business number the service
//! window, the phone-visibility mark and the open pricing conversations.
//!
//! A million recipients must fit in a few tens of MiB, so nothing here is keyed by a
//! formatted string. A `wa_id` is its number (`u64`; the rare id that is not a plain
//! number is interned), a business number an index into the numbers seen, and all of a
//! recipient's state is one 48-byte [`Row`] in a dense vector, found through a table of
//! `u32` row indices. The row holds what a recipient usually has: a user who looks
//! exactly as a fresh one (stored as a flag and rebuilt on demand, as the sweep's
//! forgotten users are), windows with up to two numbers, their phone-visibility marks and
//! one conversation (its 32 hex digits as a `u128`), times as `u32` milliseconds from
//! the store's epoch. Anything else (a user who changed, a third number, a second
//! conversation, a time out of range, a string that is not a 32-digit id) keeps the row's
//! state in its general form, [`Pairs`], in a side table: slower and larger, never wrong.
//!
//! Snapshots read and write the same maps as before (`users`, `windows`,
//! `phone_exchanges`, `conversations`), keyed `phone/wa_id` and `phone/wa_id/category`.

use crate::domain::ids::{PhoneNumberId, WaId};
use crate::domain::user::{ClientVersion, Platform, User, VersionRules};

use hashbrown::HashTable;
use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, HashMap};

/// Conversation categories a row stores as a code (anything else goes to the side table).
const CATEGORIES: [&str; 4] = ["service", "marketing", "utility", "authentication"];

/// Odd `wa_id`s (not a number that prints back the same) are interned above this bit.
const ODD: u64 = 1 << 63;

/// How far before the first time stored the epoch starts: a row's times are `u32`
/// milliseconds after it (49.7 days), and marks live 30 days.
const EPOCH_BACK_MS: u64 = 31 * 24 * 3600 * 1000;
/// The sweep moves the epoch once the clock is this close to its end.
const EPOCH_MARGIN_MS: u64 = 2 * 24 * 3600 * 1000;

/// A pricing conversation's category.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Category {
    Known(u8),
    Other(Box<str>),
}

impl Category {
    pub(crate) fn of(s: &str) -> Self {
        match CATEGORIES.iter().position(|c| *c == s) {
            Some(i) => Category::Known(i as u8),
            None => Category::Other(s.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Category::Known(i) => CATEGORIES[usize::from(*i)],
            Category::Other(s) => s,
        }
    }
}

/// A conversation id: 32 lowercase hex digits (what the emulator makes) as a number, or
/// any other string a snapshot brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConvId {
    Hex(u128),
    Other(Box<str>),
}

impl ConvId {
    pub(crate) fn of(s: &str) -> Self {
        let hex = s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        match hex.then(|| u128::from_str_radix(s, 16).ok()).flatten() {
            Some(n) => ConvId::Hex(n),
            None => ConvId::Other(s.into()),
        }
    }

    /// The id as text, written into `buf` for a number.
    pub(crate) fn text<'b>(&'b self, buf: &'b mut [u8; 32]) -> &'b str {
        match self {
            ConvId::Hex(n) => {
                for (i, b) in buf.iter_mut().enumerate() {
                    let nibble = (n >> (124 - 4 * i)) & 0xf;
                    *b = b"0123456789abcdef"[nibble as usize];
                }
                std::str::from_utf8(buf).expect("hex digits")
            }
            ConvId::Other(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conversation {
    pub category: Category,
    pub id: ConvId,
    pub expires: u64,
}

/// One business number's state with one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Pair {
    /// The number's index in [`Recipients::phones`].
    pub phone: u32,
    /// Last user activity: the 24 h customer service window.
    pub window: Option<u64>,
    /// Last exchange over the user's phone number (30-day visibility).
    pub exchange: Option<u64>,
    pub conversations: Vec<Conversation>,
}

impl Pair {
    fn is_empty(&self) -> bool {
        self.window.is_none() && self.exchange.is_none() && self.conversations.is_empty()
    }
}

/// A recipient's per-number state in its general form, sorted by number.
pub(crate) type Pairs = Vec<Pair>;

/// Who the user of a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    None,
    /// Exactly [`fresh`] with the store's `latest`: rebuilt on demand.
    Fresh,
    /// In `Recipients::users`.
    Full,
}

const W0: u8 = 1;
const W1: u8 = 2;
const X0: u8 = 4;
const X1: u8 = 8;
const C0: u8 = 16;
/// The pairs are in `Recipients::wide`.
const WIDE: u8 = 32;
const FRESH: u8 = 64;
const FULL: u8 = 128;

// A recipient's whole cost, with its slot in the index: keep it at 48 bytes.
const _: () = assert!(std::mem::size_of::<Row>() == 48);

/// One recipient: 48 bytes. Slot 0 and 1 are up to two business numbers; times are
/// milliseconds after the store's epoch; the conversation belongs to slot 0.
#[derive(Debug, Clone, Copy)]
struct Row {
    wa: u64,
    conv_id: [u64; 2],
    conv_expires: u32,
    window: [u32; 2],
    exchange: [u32; 2],
    phones: [u8; 2],
    bits: u8,
    category: u8,
}

impl Row {
    fn who(&self) -> Who {
        if self.bits & FULL != 0 {
            Who::Full
        } else if self.bits & FRESH != 0 {
            Who::Fresh
        } else {
            Who::None
        }
    }

    fn set_who(&mut self, who: Who) {
        self.bits &= !(FRESH | FULL);
        self.bits |= match who {
            Who::None => 0,
            Who::Fresh => FRESH,
            Who::Full => FULL,
        };
    }

    fn has_pairs(&self) -> bool {
        self.bits & (W0 | W1 | X0 | X1 | C0 | WIDE) != 0
    }
}

/// The user a first sight of `wa` creates, with client version `latest`.
pub(crate) fn fresh(wa: &WaId, latest: &ClientVersion) -> User {
    User::new(wa.clone(), None, Platform::Android, latest.clone())
}

/// A `wa_id` as a number, when it is one that prints back the same (no leading zero).
pub(crate) fn number_of(wa: &str) -> Option<u64> {
    // Read by hand: this runs several times a send, and printing back allocates.
    let b = wa.as_bytes();
    if b.is_empty() || b.len() > 19 || (b[0] == b'0' && b.len() > 1) {
        return None;
    }
    let mut n: u64 = 0;
    for &d in b {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(d - b'0');
    }
    (n < ODD).then_some(n)
}

/// Every simulated user and their per-number state (see the module docs).
#[derive(Debug, Clone)]
pub struct Recipients {
    /// Row indices, hashed by `wa` key.
    index: HashTable<u32>,
    rows: Vec<Row>,
    /// The pairs of rows marked `WIDE`.
    wide: HashMap<u64, Pairs>,
    /// Users who differ from a fresh one.
    users: HashMap<u64, User>,
    /// Business numbers by index.
    phones: Vec<PhoneNumberId>,
    /// Hashed with FxHash (rustc-hash): looked up four times a send, and only the
    /// business numbers that sent or were written to are stored (and a snapshot's).
    phone_index: HashMap<PhoneNumberId, u32, rustc_hash::FxBuildHasher>,
    /// Odd `wa_id`s by `key - ODD`.
    odd: Vec<WaId>,
    odd_index: HashMap<WaId, u64>,
    /// Row times are milliseconds after this.
    epoch: Option<u64>,
    /// The version of the users stored as `FRESH`.
    latest: ClientVersion,
}

impl Default for Recipients {
    fn default() -> Self {
        Self {
            index: HashTable::new(),
            rows: Vec::new(),
            wide: HashMap::new(),
            users: HashMap::new(),
            phones: Vec::new(),
            phone_index: HashMap::default(),
            odd: Vec::new(),
            odd_index: HashMap::new(),
            epoch: None,
            latest: VersionRules::default().latest,
        }
    }
}

fn hash(k: u64) -> u64 {
    // splitmix64's finaliser: every bit of the number reaches the top bits hashbrown uses.
    let mut z = k.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Recipients {
    // ---- keys -------------------------------------------------------------------

    /// The key of `wa`, if it has one (odd ids get one when first stored).
    pub(crate) fn key(&self, wa: &WaId) -> Option<u64> {
        number_of(wa.as_str()).or_else(|| self.odd_index.get(wa).copied())
    }

    pub(crate) fn key_or_intern(&mut self, wa: &WaId) -> u64 {
        if let Some(k) = self.key(wa) {
            return k;
        }
        let k = ODD | self.odd.len() as u64;
        self.odd.push(wa.clone());
        self.odd_index.insert(wa.clone(), k);
        k
    }

    pub(crate) fn wa_of(&self, key: u64) -> WaId {
        if key & ODD != 0 {
            self.odd[(key & !ODD) as usize].clone()
        } else {
            WaId(key.to_string())
        }
    }

    fn phone(&self, phone: &PhoneNumberId) -> Option<u32> {
        self.phone_index.get(phone).copied()
    }

    fn phone_or_intern(&mut self, phone: &PhoneNumberId) -> u32 {
        if let Some(i) = self.phone(phone) {
            return i;
        }
        let i = self.phones.len() as u32;
        self.phones.push(phone.clone());
        self.phone_index.insert(phone.clone(), i);
        i
    }

    fn find(&self, key: u64) -> Option<usize> {
        self.index
            .find(hash(key), |&i| self.rows[i as usize].wa == key)
            .map(|&i| i as usize)
    }

    fn row(&self, key: u64) -> Option<&Row> {
        self.find(key).map(|i| &self.rows[i])
    }

    // ---- users ------------------------------------------------------------------

    /// The version given to users stored as fresh; users already stored keep theirs.
    pub(crate) fn set_latest(&mut self, latest: &ClientVersion) {
        if *latest == self.latest && latest.to_string() == self.latest.to_string() {
            return;
        }
        let keys: Vec<u64> = self.rows.iter().map(|r| r.wa).collect();
        let users: Vec<(u64, User)> = keys
            .iter()
            .filter_map(|k| Some((*k, self.user_by_key(*k)?)))
            .collect();
        self.latest = latest.clone();
        for (k, u) in users {
            self.put_user_by_key(k, Some(u));
        }
    }

    #[cfg(test)]
    pub(crate) fn contains_user(&self, wa: &WaId) -> bool {
        self.key(wa)
            .and_then(|k| self.row(k))
            .is_some_and(|r| r.who() != Who::None)
    }

    pub(crate) fn user(&self, wa: &WaId) -> Option<User> {
        let key = self.key(wa)?;
        match self.row(key)?.who() {
            // `wa` is the key's own id (a key prints back as the id it came from): a copy
            // of it costs less than printing the key.
            Who::Fresh => Some(fresh(wa, &self.latest)),
            _ => self.user_by_key(key),
        }
    }

    fn user_by_key(&self, key: u64) -> Option<User> {
        match self.row(key)?.who() {
            Who::None => None,
            Who::Fresh => Some(User::new(
                self.wa_of(key),
                None,
                Platform::Android,
                self.latest.clone(),
            )),
            Who::Full => self.users.get(&key).cloned(),
        }
    }

    /// Whether the stored user of `wa` is exactly a fresh one with version `latest`,
    /// without building it.
    pub(crate) fn is_fresh(&self, key: u64, latest: &ClientVersion) -> bool {
        match self.row(key).map(Row::who) {
            // Compared as the sweep compares users: numerically (2.24 == 2.24.0).
            Some(Who::Fresh) => self.latest == *latest,
            Some(Who::Full) => self
                .users
                .get(&key)
                .is_some_and(|u| *u == fresh(&u.wa_id, latest)),
            _ => false,
        }
    }

    /// Stores `user` (replacing the one of the same number).
    pub(crate) fn put_user(&mut self, user: User) {
        let k = self.key_or_intern(&user.wa_id);
        self.put_user_by_key(k, Some(user));
    }

    fn put_user_by_key(&mut self, key: u64, user: Option<User>) {
        let who = match &user {
            None => Who::None,
            Some(u) if *u == fresh(&u.wa_id, &self.latest) && same_text(u, &self.latest) => {
                Who::Fresh
            }
            Some(_) => Who::Full,
        };
        match user.filter(|_| who == Who::Full) {
            Some(u) => self.users.insert(key, u),
            None => self.users.remove(&key),
        };
        match self.find(key) {
            Some(i) => {
                self.rows[i].set_who(who);
                self.drop_if_empty(i);
            }
            None if who != Who::None => {
                let mut row = empty_row(key);
                row.set_who(who);
                self.push_row(row);
            }
            None => {}
        }
    }

    /// Every user, in `wa_id` order (as the map before).
    pub(crate) fn users(&self) -> Vec<User> {
        let mut keys: Vec<(WaId, u64)> = self
            .rows
            .iter()
            .filter(|r| r.who() != Who::None)
            .map(|r| (self.wa_of(r.wa), r.wa))
            .collect();
        keys.sort_unstable();
        keys.into_iter()
            .filter_map(|(_, k)| self.user_by_key(k))
            .collect()
    }

    /// Every user's `wa_id`, unordered (for the inspector).
    #[cfg(feature = "server")]
    pub(crate) fn user_ids(&self) -> impl Iterator<Item = WaId> + '_ {
        self.rows
            .iter()
            .filter(|r| r.who() != Who::None)
            .map(|r| self.wa_of(r.wa))
    }

    /// The users who differ from a fresh one (the only ones with a username or a parent
    /// BSUID).
    pub(crate) fn changed_users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    /// Users stored as fresh, by number.
    pub(crate) fn fresh_user_ids(&self) -> impl Iterator<Item = WaId> + '_ {
        self.rows
            .iter()
            .filter(|r| r.who() == Who::Fresh)
            .map(|r| self.wa_of(r.wa))
    }

    #[cfg(test)]
    pub(crate) fn user_count(&self) -> usize {
        self.rows.iter().filter(|r| r.who() != Who::None).count()
    }

    // ---- pairs ------------------------------------------------------------------

    /// The per-number state of `wa`, in its general form.
    pub(crate) fn pairs(&self, wa: &WaId) -> Pairs {
        self.key(wa)
            .map(|k| self.pairs_by_key(k))
            .unwrap_or_default()
    }

    fn pairs_by_key(&self, key: u64) -> Pairs {
        match self.row(key) {
            Some(r) if r.bits & WIDE != 0 => self.wide.get(&key).cloned().unwrap_or_default(),
            Some(r) => decode(r, self.epoch.unwrap_or(0)),
            None => Vec::new(),
        }
    }

    /// Replaces the per-number state of `wa`.
    pub(crate) fn put_pairs(&mut self, wa: &WaId, pairs: Pairs) {
        let key = self.key_or_intern(wa);
        self.put_pairs_by_key(key, pairs);
    }

    fn put_pairs_by_key(&mut self, key: u64, mut pairs: Pairs) {
        pairs.retain(|p| !p.is_empty());
        pairs.sort_by_key(|p| p.phone);
        let i = match self.find(key) {
            Some(i) => i,
            None if pairs.is_empty() => return,
            None => self.push_row(empty_row(key)),
        };
        if self.epoch.is_none() {
            self.epoch = first_time(&pairs).map(|t| t.saturating_sub(EPOCH_BACK_MS));
        }
        let row = &mut self.rows[i];
        let keep = row.bits & (FRESH | FULL);
        match encode(key, &pairs, self.epoch.unwrap_or(0)) {
            Some(mut r) => {
                r.bits |= keep;
                *row = r;
                self.wide.remove(&key);
            }
            None => {
                *row = empty_row(key);
                row.bits = keep | WIDE;
                self.wide.insert(key, pairs);
            }
        }
        self.drop_if_empty(i);
    }

    /// The window of `phone` with `wa`: the time of the user's last activity.
    pub(crate) fn window(&self, phone: &PhoneNumberId, wa: &WaId) -> Option<u64> {
        self.field(
            phone,
            wa,
            |r, s, e| (r.bits & [W0, W1][s] != 0).then(|| e + u64::from(r.window[s])),
            |p| p.window,
        )
    }

    /// The last exchange over `wa`'s phone number with `phone`.
    pub(crate) fn exchange(&self, phone: &PhoneNumberId, wa: &WaId) -> Option<u64> {
        self.field(
            phone,
            wa,
            |r, s, e| (r.bits & [X0, X1][s] != 0).then(|| e + u64::from(r.exchange[s])),
            |p| p.exchange,
        )
    }

    /// The conversation of `phone` with `wa` in `category`: its id and expiry.
    pub(crate) fn conversation(
        &self,
        phone: &PhoneNumberId,
        wa: &WaId,
        category: &str,
    ) -> Option<(ConvId, u64)> {
        let cat = Category::of(category);
        self.field(
            phone,
            wa,
            |r, s, e| {
                (s == 0 && r.bits & C0 != 0 && cat == Category::Known(r.category)).then(|| {
                    let id = u128::from(r.conv_id[0]) << 64 | u128::from(r.conv_id[1]);
                    (ConvId::Hex(id), e + u64::from(r.conv_expires))
                })
            },
            |p| {
                p.conversations
                    .iter()
                    .find(|c| c.category == cat)
                    .map(|c| (c.id.clone(), c.expires))
            },
        )
    }

    /// Reads one field of a pair straight from a row (`compact(row, slot, epoch)`) or
    /// from the general form.
    fn field<T>(
        &self,
        phone: &PhoneNumberId,
        wa: &WaId,
        compact: impl Fn(&Row, usize, u64) -> Option<T>,
        general: impl Fn(&Pair) -> Option<T>,
    ) -> Option<T> {
        let p = self.phone(phone)?;
        let key = self.key(wa)?;
        let r = self.row(key)?;
        if r.bits & WIDE != 0 {
            let pairs = self.wide.get(&key)?;
            return pairs.iter().find(|x| x.phone == p).and_then(general);
        }
        let slot = r.phones.iter().position(|x| u32::from(*x) == p)?;
        compact(r, slot, self.epoch.unwrap_or(0))
    }

    /// Changes the pair of `phone` with `wa` (created empty if absent).
    pub(crate) fn update_pair(
        &mut self,
        phone: &PhoneNumberId,
        wa: &WaId,
        f: impl FnOnce(&mut Pair),
    ) {
        let p = self.phone_or_intern(phone);
        let key = self.key_or_intern(wa);
        let mut pairs = self.pairs_by_key(key);
        match pairs.iter_mut().find(|x| x.phone == p) {
            Some(pair) => f(pair),
            None => {
                let mut pair = Pair {
                    phone: p,
                    ..Pair::default()
                };
                f(&mut pair);
                pairs.push(pair);
            }
        }
        self.put_pairs_by_key(key, pairs);
    }

    // ---- rows -------------------------------------------------------------------

    fn push_row(&mut self, row: Row) -> usize {
        let i = self.rows.len();
        self.rows.push(row);
        let rows = &self.rows;
        self.index
            .insert_unique(hash(row.wa), i as u32, |&j| hash(rows[j as usize].wa));
        i
    }

    fn drop_if_empty(&mut self, i: usize) {
        let r = self.rows[i];
        if r.who() != Who::None || r.has_pairs() {
            return;
        }
        self.remove_row(i);
    }

    fn remove_row(&mut self, i: usize) {
        let key = self.rows[i].wa;
        if let Ok(e) = self.index.find_entry(hash(key), |&j| j as usize == i) {
            e.remove();
        }
        self.wide.remove(&key);
        self.users.remove(&key);
        let last = self.rows.len() - 1;
        self.rows.swap_remove(i);
        if i != last {
            let moved = self.rows[i].wa;
            if let Some(slot) = self.index.find_mut(hash(moved), |&j| j as usize == last) {
                *slot = i as u32;
            }
        }
    }

    /// Drops what has expired at `now` (windows `window_ms` after the activity, marks
    /// `mark_ms` after the exchange, conversations at their expiry), and moves the epoch
    /// when the clock nears its end.
    pub(crate) fn drop_expired(&mut self, now: u64, window_ms: u64, mark_ms: u64) {
        let epoch = self.epoch.unwrap_or(0);
        let mut i = self.rows.len();
        while i > 0 {
            i -= 1;
            let r = self.rows[i];
            let live = |bit: u8, d: u32, ttl: u64| {
                r.bits & bit != 0 && now.saturating_sub(epoch + u64::from(d)) < ttl
            };
            if r.bits & WIDE == 0 {
                let mut bits = r.bits & !(W0 | W1 | X0 | X1 | C0);
                for (bit, d, ttl) in [
                    (W0, r.window[0], window_ms),
                    (W1, r.window[1], window_ms),
                    (X0, r.exchange[0], mark_ms),
                    (X1, r.exchange[1], mark_ms),
                ] {
                    if live(bit, d, ttl) {
                        bits |= bit;
                    }
                }
                if r.bits & C0 != 0 && epoch + u64::from(r.conv_expires) > now {
                    bits |= C0;
                }
                if bits != r.bits {
                    let mut pairs = decode(&Row { bits, ..r }, epoch);
                    pairs.retain(|p| !p.is_empty());
                    self.put_pairs_by_key(r.wa, pairs);
                }
                continue;
            }
            let mut pairs = self.wide.get(&r.wa).cloned().unwrap_or_default();
            for p in &mut pairs {
                p.window = p.window.filter(|t| now.saturating_sub(*t) < window_ms);
                p.exchange = p.exchange.filter(|t| now.saturating_sub(*t) < mark_ms);
                p.conversations.retain(|c| c.expires > now);
            }
            self.put_pairs_by_key(r.wa, pairs);
        }
        let end = epoch.saturating_add(u64::from(u32::MAX));
        if self.epoch.is_some() && now.saturating_add(EPOCH_MARGIN_MS) > end {
            self.rebase(now.saturating_sub(EPOCH_BACK_MS));
        }
    }

    /// Re-encodes every row against a new epoch.
    fn rebase(&mut self, epoch: u64) {
        let old = self.epoch.unwrap_or(0);
        let all: Vec<(u64, Pairs)> = self
            .rows
            .iter()
            .map(|r| {
                let pairs = if r.bits & WIDE != 0 {
                    self.wide.get(&r.wa).cloned().unwrap_or_default()
                } else {
                    decode(r, old)
                };
                (r.wa, pairs)
            })
            .collect();
        self.epoch = Some(epoch);
        for (k, pairs) in all {
            self.put_pairs_by_key(k, pairs);
        }
    }

    /// Sets the window (`exchange` false) or the phone-visibility mark of `phone` with
    /// `wa` to `at`, in place when the row has the number in a slot; returns the
    /// recipient's key, the number's index and the time it replaces, for an undo.
    pub(crate) fn set_time(
        &mut self,
        phone: &PhoneNumberId,
        wa: &WaId,
        exchange: bool,
        at: u64,
    ) -> (u64, u32, Option<u64>) {
        let p = self.phone_or_intern(phone);
        let key = self.key_or_intern(wa);
        let old = self.set_time_at(key, p, exchange, Some(at));
        (key, p, old)
    }

    /// [`Recipients::set_time`] by key and number index; `None` clears the time.
    pub(crate) fn set_time_at(
        &mut self,
        key: u64,
        phone: u32,
        exchange: bool,
        at: Option<u64>,
    ) -> Option<u64> {
        let epoch = self.epoch.unwrap_or(0);
        let delta = at.and_then(|t| u32::try_from(t.checked_sub(epoch)?).ok());
        if let (Some(i), Some(d), true) = (self.find(key), delta, self.epoch.is_some()) {
            let r = &mut self.rows[i];
            let slot = r.phones.iter().position(|x| u32::from(*x) == phone);
            if let (0, Some(s)) = (r.bits & WIDE, slot) {
                let (bit, field) = if exchange {
                    ([X0, X1][s], &mut r.exchange[s])
                } else {
                    ([W0, W1][s], &mut r.window[s])
                };
                let old = (r.bits & bit != 0).then(|| epoch + u64::from(*field));
                *field = d;
                r.bits |= bit;
                return old;
            }
        }
        let mut pairs = self.pairs_by_key(key);
        let j = match pairs.iter().position(|x| x.phone == phone) {
            Some(j) => j,
            None => {
                pairs.push(Pair {
                    phone,
                    ..Pair::default()
                });
                pairs.len() - 1
            }
        };
        let field = if exchange {
            &mut pairs[j].exchange
        } else {
            &mut pairs[j].window
        };
        let old = std::mem::replace(field, at);
        self.put_pairs_by_key(key, pairs);
        old
    }

    /// Every row's key, user and pairs (for the sweep and snapshots).
    pub(crate) fn keys(&self) -> Vec<u64> {
        self.rows.iter().map(|r| r.wa).collect()
    }

    pub(crate) fn pairs_of_key(&self, key: u64) -> Pairs {
        self.pairs_by_key(key)
    }

    pub(crate) fn remove_user_key(&mut self, key: u64) {
        self.put_user_by_key(key, None);
    }

    pub(crate) fn user_of_key(&self, key: u64) -> Option<User> {
        self.user_by_key(key)
    }

    pub(crate) fn put_user_key(&mut self, key: u64, user: Option<User>) {
        self.put_user_by_key(key, user);
    }

    /// Rows kept in the general form (for tests and figures).
    #[cfg(test)]
    pub(crate) fn wide_rows(&self) -> usize {
        self.wide.len()
    }
}

/// `ClientVersion` equality is numeric (2.24 == 2.24.0); a user is stored as fresh only
/// when it also prints the same.
fn same_text(u: &User, latest: &ClientVersion) -> bool {
    u.version.to_string() == latest.to_string()
}

fn empty_row(wa: u64) -> Row {
    Row {
        wa,
        conv_id: [0; 2],
        conv_expires: 0,
        window: [0; 2],
        exchange: [0; 2],
        phones: [u8::MAX; 2],
        bits: 0,
        category: 0,
    }
}

fn first_time(pairs: &[Pair]) -> Option<u64> {
    pairs
        .iter()
        .flat_map(|p| {
            [p.window, p.exchange]
                .into_iter()
                .flatten()
                .chain(p.conversations.iter().map(|c| c.expires))
        })
        .min()
}

/// `pairs` (sorted, none empty) as a row, when they fit one.
fn encode(wa: u64, pairs: &Pairs, epoch: u64) -> Option<Row> {
    let mut row = empty_row(wa);
    if pairs.len() > 2 || pairs.iter().any(|p| p.conversations.len() > 1) {
        return None;
    }
    // The pair with a conversation takes slot 0.
    let mut order: Vec<&Pair> = pairs.iter().collect();
    if order.len() == 2 && !order[1].conversations.is_empty() {
        if !order[0].conversations.is_empty() {
            return None;
        }
        order.swap(0, 1);
    }
    let delta = |t: u64| -> Option<u32> { t.checked_sub(epoch)?.try_into().ok() };
    for (s, p) in order.iter().enumerate() {
        row.phones[s] = u8::try_from(p.phone).ok().filter(|x| *x != u8::MAX)?;
        if let Some(t) = p.window {
            row.window[s] = delta(t)?;
            row.bits |= [W0, W1][s];
        }
        if let Some(t) = p.exchange {
            row.exchange[s] = delta(t)?;
            row.bits |= [X0, X1][s];
        }
        if let Some(c) = p.conversations.first() {
            let (Category::Known(cat), ConvId::Hex(id)) = (&c.category, &c.id) else {
                return None;
            };
            row.category = *cat;
            row.conv_id = [(id >> 64) as u64, *id as u64];
            row.conv_expires = delta(c.expires)?;
            row.bits |= C0;
        }
    }
    Some(row)
}

/// A row's pairs in their general form, sorted by number.
fn decode(r: &Row, epoch: u64) -> Pairs {
    let mut pairs = Vec::new();
    for s in 0..2 {
        if r.phones[s] == u8::MAX {
            continue;
        }
        let at = |bit: u8, d: u32| (r.bits & bit != 0).then(|| epoch + u64::from(d));
        let mut p = Pair {
            phone: u32::from(r.phones[s]),
            window: at([W0, W1][s], r.window[s]),
            exchange: at([X0, X1][s], r.exchange[s]),
            conversations: Vec::new(),
        };
        if s == 0 && r.bits & C0 != 0 {
            p.conversations.push(Conversation {
                category: Category::Known(r.category),
                id: ConvId::Hex(u128::from(r.conv_id[0]) << 64 | u128::from(r.conv_id[1])),
                expires: epoch + u64::from(r.conv_expires),
            });
        }
        if !p.is_empty() {
            pairs.push(p);
        }
    }
    pairs.sort_by_key(|p| p.phone);
    pairs
}

// ---- snapshots ------------------------------------------------------------------

/// The four maps of a snapshot, as before: `users` by `wa_id`, `windows` and
/// `phone_exchanges` by `phone/wa_id`, `conversations` by `phone/wa_id/category`.
impl Serialize for Recipients {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut keys: Vec<(WaId, u64)> =
            self.rows.iter().map(|r| (self.wa_of(r.wa), r.wa)).collect();
        keys.sort_unstable();
        let mut users = BTreeMap::new();
        let mut windows = BTreeMap::new();
        let mut exchanges = BTreeMap::new();
        let mut conversations = BTreeMap::new();
        for (wa, k) in &keys {
            if let Some(u) = self.user_by_key(*k) {
                users.insert(wa.clone(), u);
            }
            for p in self.pairs_by_key(*k) {
                let pair = format!("{}/{wa}", self.phones[p.phone as usize]);
                if let Some(t) = p.window {
                    windows.insert(pair.clone(), t);
                }
                if let Some(t) = p.exchange {
                    exchanges.insert(pair.clone(), t);
                }
                for c in &p.conversations {
                    let mut buf = [0u8; 32];
                    conversations.insert(
                        format!("{pair}/{}", c.category.as_str()),
                        (c.id.text(&mut buf).to_owned(), c.expires),
                    );
                }
            }
        }
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("users", &users)?;
        m.serialize_entry("windows", &windows)?;
        m.serialize_entry("phone_exchanges", &exchanges)?;
        m.serialize_entry("conversations", &conversations)?;
        m.end()
    }
}

#[derive(Deserialize)]
struct Maps {
    users: BTreeMap<WaId, User>,
    windows: HashMap<String, u64>,
    #[serde(default)]
    phone_exchanges: HashMap<String, u64>,
    conversations: HashMap<String, (String, u64)>,
}

impl<'de> Deserialize<'de> for Recipients {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = Maps::deserialize(d)?;
        let mut r = Recipients::default();
        for (wa, u) in m.users {
            if u.wa_id != wa {
                return Err(D::Error::custom(format!(
                    "users: the user under {wa} has wa_id {}",
                    u.wa_id
                )));
            }
            r.put_user(u);
        }
        let pair = |key: &str, what: &str| -> Result<(PhoneNumberId, WaId), D::Error> {
            key.split_once('/')
                .filter(|(p, w)| !p.is_empty() && !w.is_empty())
                .map(|(p, w)| (PhoneNumberId::from(p), WaId::from(w)))
                .ok_or_else(|| D::Error::custom(format!("{what}: {key:?} is not phone/wa_id")))
        };
        let mut all: BTreeMap<(WaId, PhoneNumberId), Pair> = BTreeMap::new();
        for (key, t) in m.windows {
            let (p, w) = pair(&key, "windows")?;
            all.entry((w, p)).or_default().window = Some(t);
        }
        for (key, t) in m.phone_exchanges {
            let (p, w) = pair(&key, "phone_exchanges")?;
            all.entry((w, p)).or_default().exchange = Some(t);
        }
        for (key, (id, expires)) in m.conversations {
            let (rest, category) = key.rsplit_once('/').ok_or_else(|| {
                D::Error::custom(format!(
                    "conversations: {key:?} is not phone/wa_id/category"
                ))
            })?;
            let (p, w) = pair(rest, "conversations")?;
            all.entry((w, p))
                .or_default()
                .conversations
                .push(Conversation {
                    category: Category::of(category),
                    id: ConvId::of(&id),
                    expires,
                });
        }
        // The epoch at the oldest time: every row of a swept state fits.
        r.epoch = all
            .values()
            .filter_map(|p| first_time(std::slice::from_ref(p)))
            .min();
        let mut by_user: BTreeMap<WaId, Pairs> = BTreeMap::new();
        for ((w, p), mut pair) in all {
            pair.phone = r.phone_or_intern(&p);
            pair.conversations
                .sort_by(|a, b| a.category.cmp(&b.category));
            by_user.entry(w).or_default().push(pair);
        }
        for (w, pairs) in by_user {
            r.put_pairs(&w, pairs);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests;
