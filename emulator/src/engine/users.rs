//! Simulated users and what the business sees of them: creation on first sight,
//! identities (usernames, parent BSUIDs, hidden numbers), the 24 h service window, the
//! phone number's visibility, and recipients (`to` or a BSUID) resolved to users.

use super::{sweep, Engine, Undo};
use crate::domain::error::{ApiError, ApiResult, ErrorKind};
use crate::domain::ids::{bsuid_for, PhoneNumberId, WaId};
use crate::domain::tenant::PhoneNumber;
use crate::domain::user::{IdentityChange, Platform, User, PHONE_VISIBLE_MS};
use crate::webhook::payload;
use crate::wire::messages::Recipient;

impl Engine {
    /// The user, created on first sight as PRODUCT §2 says (Android, latest version).
    pub(crate) fn user_or_create(&mut self, wa: &WaId) -> User {
        if let Some(u) = self.st.recipients.user(wa) {
            return u;
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
        self.put_user(user);
    }

    /// Stores `user`, noting the one it replaces for [`Engine::finish`].
    fn put_user(&mut self, user: User) {
        if self.undo.is_some() {
            let key = self.st.recipients.key_or_intern(&user.wa_id);
            let old = self.st.recipients.user_of_key(key);
            self.note(Undo::User(key, old));
        }
        self.st.recipients.put_user(user);
    }

    pub fn upsert_user(
        &mut self,
        wa: WaId,
        name: Option<String>,
        platform: Option<Platform>,
        version: Option<crate::domain::user::ClientVersion>,
        window_open: Option<bool>,
    ) -> User {
        match self.st.recipients.user(&wa) {
            Some(mut u) => {
                if let Some(n) = name {
                    u.name = n;
                }
                if let Some(p) = platform {
                    u.platform = p;
                }
                if let Some(v) = version {
                    u.version = v;
                }
                self.put_user(u.clone());
                if window_open == Some(true) {
                    self.open_window_all(&wa);
                } else if window_open == Some(false) {
                    let mut pairs = self.st.recipients.pairs(&wa);
                    for p in &mut pairs {
                        p.window = None;
                    }
                    self.st.recipients.put_pairs(&wa, pairs);
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

    /// The user (other than `wa`) whose BSUID or parent BSUID is `bsuid`, first by
    /// `wa_id` as the users are listed. Users stored as fresh have no parent BSUID: their
    /// BSUID is their number's.
    fn other_answering_to(&self, wa: Option<&WaId>, bsuid: &str) -> Option<WaId> {
        let changed = self
            .st
            .recipients
            .changed_users()
            .filter(|u| u.answers_to(bsuid))
            .map(|u| u.wa_id.clone());
        let fresh = self
            .st
            .recipients
            .fresh_user_ids()
            .filter(|w| bsuid_for(w) == bsuid);
        changed.chain(fresh).filter(|w| Some(w) != wa).min()
    }

    /// Whether `change` can apply to user `wa` (who may not exist yet): usernames and
    /// parent BSUIDs belong to one user each, and only a user with a username can hide
    /// their number. Checked before anything changes, so a refused request changes nothing.
    pub fn check_identity(&self, wa: &WaId, change: &IdentityChange) -> ApiResult<()> {
        let current = self.st.recipients.user(wa);
        if let Some(Some(name)) = &change.username {
            // Only a user who differs from a fresh one can have a username.
            let taken = self
                .st
                .recipients
                .changed_users()
                .filter(|o| &o.wa_id != wa)
                .filter(|o| {
                    o.username
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
                .map(|o| o.wa_id.clone())
                .min();
            if let Some(o) = taken {
                return Err(ApiError::new(
                    ErrorKind::InvalidValue,
                    format!("username {name:?} is already the username of user {o}; usernames are unique."),
                ));
            }
        }
        if let Some(Some(parent)) = &change.parent_user_id {
            let own = current.as_ref().is_some_and(|u| &u.user_id == parent)
                || (current.is_none() && &bsuid_for(wa) == parent);
            let forgotten = self.forgotten_with_bsuid(parent);
            if let Some(o) = self.other_answering_to(Some(wa), parent).or(forgotten) {
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
        let mut u = self.st.recipients.user(wa)?;
        if let Some(n) = change.username {
            u.username = n;
        }
        if let Some(p) = change.parent_user_id {
            u.parent_user_id = p;
        }
        if let Some(h) = change.hide_phone_number {
            u.hide_phone_number = Some(h);
        }
        self.put_user(u.clone());
        Some(u)
    }

    fn set_window(&mut self, phone: &PhoneNumberId, wa: &WaId, at: u64) {
        let (key, phone, old) = self.st.recipients.set_time(phone, wa, false, at);
        self.note(Undo::Time(key, phone, false, old));
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
            self.set_window(&p, wa, now);
        }
    }

    /// The user interacted with the business number (wrote, called, replied): the
    /// service window opens, and so does the phone number's visibility when the
    /// exchange went over a visible number (see [`Engine::note_phone_exchange`]).
    pub(crate) fn open_window(&mut self, phone: &PhoneNumberId, wa: &WaId) {
        let now = self.now();
        self.set_window(phone, wa, now);
        let visible = self
            .st
            .recipients
            .user(wa)
            .is_some_and(|u| self.phone_visible(phone, &u));
        if visible || self.behaviour.user_contact_reveals_phone {
            self.note_phone_exchange(phone, wa);
        }
    }

    /// An exchange over the user's phone number with the business number: a send or a
    /// call to it with `to`, or the user writing or calling while it is visible.
    pub(crate) fn note_phone_exchange(&mut self, phone: &PhoneNumberId, wa: &WaId) {
        let now = self.now();
        let (key, phone, old) = self.st.recipients.set_time(phone, wa, true, now);
        self.note(Undo::Time(key, phone, true, old));
    }

    /// Whether business number `phone` sees `user`'s phone number now (cloud-api §13): a
    /// user without a username (or who does not hide it) always shows it; one who hides
    /// it shows it for 30 days after an exchange over it.
    pub(crate) fn phone_visible(&self, phone: &PhoneNumberId, user: &User) -> bool {
        !user.hides_phone_number()
            || self
                .st
                .recipients
                .exchange(phone, &user.wa_id)
                .is_some_and(|t| self.now().saturating_sub(t) < PHONE_VISIBLE_MS)
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
                .recipients
                .user(to)
                .is_some_and(|u| self.phone_visible(phone, &u));
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
        self.other_answering_to(None, bsuid)
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
            .recipients
            .window(phone, wa)
            .is_some_and(|t| self.now().saturating_sub(t) < 24 * 3600 * 1000)
    }

    pub fn user(&self, wa: &WaId) -> ApiResult<User> {
        self.st.recipients.user(wa).ok_or_else(|| {
            ApiError::new(
                ErrorKind::NotFound,
                format!("No simulated user {wa}; create one with POST /__emulator/users."),
            )
        })
    }
}
