//! Bounded per-user state: what has expired goes, and idle users shrink to a number.
//!
//! Every `wa_id` the emulator ever sees leaves a user, service windows, pricing
//! conversations, phone-visibility marks and permission records behind. Once an hour
//! of emulator time the sweep drops the entries that have expired (they answer exactly
//! as an absent entry would), and folds each *idle* user into [`State::forgotten`]: a
//! user who looks exactly as a fresh one would (default platform, version, name, no
//! username), has no open window, conversation or permission, and no retained message
//! or ongoing call. A forgotten user costs one `u64` in a B-tree (about 10 bytes), plus,
//! for 30 days after the business last sent or called them, the phone-visibility mark
//! that must survive them (about 90 bytes), against roughly 600 bytes for a user with
//! two open windows and a conversation. Seeing them again recreates the same user, minus
//! the service window a brand-new user would get, since they are not new.
//!
//! [`State::forgotten`]: super::State::forgotten

use super::recipients::number_of;
use super::Engine;
use crate::domain::ids::{bsuid_for, WaId};
use crate::domain::permission::{Grant, Permission};
use crate::domain::user::{User, PHONE_VISIBLE_MS};
use std::collections::HashSet;

/// How often the sweep runs, in emulator time.
pub const SWEEP_INTERVAL_MS: u64 = 3600 * 1000;
/// The 24 h customer service window.
pub const WINDOW_MS: u64 = 24 * 3600 * 1000;

impl Engine {
    /// Runs the sweep when an hour of emulator time has passed since the last one.
    pub(crate) fn sweep_if_due(&mut self) {
        let now = self.now();
        if now < self.st.next_sweep_ms {
            return;
        }
        self.st.next_sweep_ms = now.saturating_add(SWEEP_INTERVAL_MS);
        self.sweep();
    }

    /// Drops expired entries and forgets idle users (see the module docs).
    pub fn sweep(&mut self) {
        let now = self.now();
        let st = &mut self.st;
        st.recipients.drop_expired(now, WINDOW_MS, PHONE_VISIBLE_MS);
        st.permissions.retain(|_, p| {
            p.prune(now);
            if matches!(p.grant, Grant::Temporary { expires_at_ms } if expires_at_ms <= now) {
                p.grant = Grant::None;
            }
            *p != Permission::default()
        });
        if !self.behaviour.forget_idle_users {
            return;
        }
        // Everything that still names a user by number keeps that user.
        let mut busy: HashSet<&str> = HashSet::new();
        busy.extend(st.messages.values().map(|m| m.to.as_str()));
        busy.extend(
            st.calls
                .values()
                .filter(|c| c.is_ongoing())
                .map(|c| c.wa_id.as_str()),
        );
        busy.extend(st.permissions.keys().map(|k| user_of(k)));
        busy.extend(st.tenants.users.iter().map(|u| u.wa_id.as_str()));
        let busy: HashSet<u64> = busy
            .into_iter()
            .filter_map(|w| st.recipients.key(&WaId::from(w)))
            .collect();
        let latest = &self.behaviour.versions.latest;
        // A user with an open window or conversation is busy too; a phone-visibility
        // mark outlives them.
        let idle: Vec<(u64, u64)> = st
            .recipients
            .keys()
            .into_iter()
            .filter(|k| !busy.contains(k) && st.recipients.is_fresh(*k, latest))
            .filter(|k| {
                st.recipients
                    .pairs_of_key(*k)
                    .iter()
                    .all(|p| p.window.is_none() && p.conversations.is_empty())
            })
            .filter_map(|k| Some((k, number_of(&st.recipients.wa_of(k).0)?)))
            .collect();
        for (k, n) in idle {
            st.recipients.remove_user_key(k);
            st.forgotten.insert(n);
        }
    }

    /// Whether `wa` was seen before and forgotten while idle (and so is not new).
    pub(crate) fn take_forgotten(&mut self, wa: &WaId) -> bool {
        number_of(wa.as_str()).is_some_and(|n| self.st.forgotten.remove(&n))
    }

    /// A forgotten user whose BSUID is `bsuid` (a scan: BSUIDs are one-way).
    pub(crate) fn forgotten_with_bsuid(&self, bsuid: &str) -> Option<WaId> {
        self.st
            .forgotten
            .iter()
            .map(|n| WaId(n.to_string()))
            .find(|wa| bsuid_for(wa) == bsuid)
    }
}

/// The user a first sight of `wa` creates.
pub(crate) fn fresh_user(wa: &WaId, latest: &crate::domain::user::ClientVersion) -> User {
    super::recipients::fresh(wa, latest)
}

/// The user of a `phone/wa_id` key.
fn user_of(key: &str) -> &str {
    key.rsplit_once('/').map_or(key, |(_, wa)| wa)
}

#[cfg(test)]
mod tests {
    use super::super::{ClockMode, Engine};
    use crate::domain::ids::{bsuid_for, AppId, MessageId, PhoneNumberId, WaId};
    use crate::domain::tenant::{
        Behaviour, Tenants, DEFAULT_APP_ID, DEFAULT_PHONE_NUMBER_ID, SECOND_PHONE_NUMBER_ID,
    };
    use proptest::prelude::*;
    use serde_json::{json, Map, Value};

    const START_MS: u64 = 1_767_225_600_000;
    const HOUR: u64 = 3600 * 1000;
    const USERS: [&str; 4] = ["16315550001", "16315550002", "447700900001", "447700900002"];

    fn engine(forget: bool) -> Engine {
        let behaviour = Behaviour {
            forget_idle_users: forget,
            message_retention: 3,
            call_retention: 3,
            ..Behaviour::default()
        };
        Engine::new(
            Tenants::default(),
            behaviour,
            5,
            ClockMode::Virtual,
            START_MS,
        )
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn app() -> AppId {
        AppId::from(DEFAULT_APP_ID)
    }

    fn advance(e: &mut Engine, ms: u64) {
        let target = e.now() + ms;
        while e.advance_step(target) {}
    }

    fn text(e: &mut Engine, to: &str) -> Result<Value, (u32, String)> {
        let body =
            json!({"messaging_product":"whatsapp","to":to,"type":"text","text":{"body":"hi"}});
        e.send_message(
            &app(),
            &PhoneNumberId::from(DEFAULT_PHONE_NUMBER_ID),
            &obj(body),
        )
        .map_err(|err| (err.code(), err.details))
    }

    fn last_status(e: &Engine) -> String {
        let d = e.st.outbox.iter().last().unwrap();
        d.event.clone()
    }

    #[test]
    fn an_idle_user_is_forgotten_and_comes_back_without_a_new_window() {
        let mut e = engine(true);
        let wa = WaId::from(USERS[0]);
        text(&mut e, &format!("+{}", USERS[0])).unwrap();
        assert!(e.st.recipients.contains_user(&wa));
        // Three more messages push the first out of the retention of 3.
        for other in &USERS[1..] {
            text(&mut e, &format!("+{other}")).unwrap();
        }
        advance(&mut e, 25 * HOUR);
        assert!(
            !e.st.recipients.contains_user(&wa),
            "forgotten after the window closed"
        );
        assert!(e.st.forgotten.contains(&16315550001));
        assert!(e.st.recipients.keys().into_iter().all(|k| e
            .st
            .recipients
            .pairs_of_key(k)
            .iter()
            .all(|p| p.window.is_none() && p.conversations.is_empty())));
        // Seen again: the same user (same BSUID), but not a new one: the window stays shut.
        text(&mut e, &format!("+{}", USERS[0])).unwrap();
        assert_eq!(
            last_status(&e),
            "status_failed",
            "131047, as without forgetting"
        );
        assert_eq!(e.st.recipients.user(&wa).unwrap().user_id, bsuid_for(&wa));
        assert!(!e.st.forgotten.contains(&16315550001));
    }

    #[test]
    fn users_who_differ_from_a_first_sight_are_kept() {
        let mut e = engine(true);
        let wa = WaId::from(USERS[1]);
        e.upsert_user(
            wa.clone(),
            Some("Ana".into()),
            None,
            crate::domain::user::ClientVersion::parse("2.23.0"),
            Some(false),
        );
        advance(&mut e, 48 * HOUR);
        assert!(e.st.recipients.contains_user(&wa));
        assert!(e.st.forgotten.is_empty());
    }

    #[test]
    fn a_forgotten_user_is_still_reachable_by_bsuid() {
        let mut e = engine(true);
        let wa = WaId::from(USERS[2]);
        e.user_or_create(&wa);
        advance(&mut e, 25 * HOUR);
        assert!(!e.st.recipients.contains_user(&wa));
        assert_eq!(e.user_by_bsuid(&bsuid_for(&wa), "recipient").unwrap(), wa);
    }

    #[derive(Debug, Clone)]
    enum Step {
        Text(usize),
        Says(usize),
        Button(usize),
        Tap(usize),
        Call(usize),
        Hangup,
        Ask(usize),
        Accept(usize),
        ToBsuid(usize),
        Advance(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        let u = 0..USERS.len();
        prop_oneof![
            u.clone().prop_map(Step::Text),
            u.clone().prop_map(Step::Says),
            u.clone().prop_map(Step::Button),
            u.clone().prop_map(Step::Tap),
            u.clone().prop_map(Step::Call),
            Just(Step::Hangup),
            u.clone().prop_map(Step::Ask),
            u.clone().prop_map(Step::Accept),
            u.prop_map(Step::ToBsuid),
            (0u64..80).prop_map(|h| Step::Advance(h * HOUR + 17_000)),
        ]
    }

    /// Runs a story; returns every answer and every webhook body, in order.
    fn run(forget: bool, steps: &[Step]) -> (Vec<String>, Vec<String>, usize) {
        let mut e = engine(forget);
        let (uk, us) = (
            PhoneNumberId::from(SECOND_PHONE_NUMBER_ID),
            PhoneNumberId::from(DEFAULT_PHONE_NUMBER_ID),
        );
        let mut answers = Vec::new();
        let mut last_button: Vec<Option<MessageId>> = vec![None; USERS.len()];
        let mut last_request: Vec<Option<MessageId>> = vec![None; USERS.len()];
        let mut last_call = None;
        for s in steps {
            let to = |u: usize| format!("+{}", USERS[u]);
            let r = match s {
                Step::Text(u) => text(&mut e, &to(*u)).map_err(|x| x.1),
                Step::Says(u) => e
                    .user_text(&WaId::from(USERS[*u]), None, "hello")
                    .map_err(|x| x.details),
                Step::Button(u) => {
                    let body = json!({"messaging_product":"whatsapp","to":to(*u),"type":"interactive",
                        "interactive":{"type":"voice_call","action":{"name":"voice_call"}}});
                    let r = e.send_message(&app(), &us, &obj(body));
                    if let Ok(v) = &r {
                        last_button[*u] =
                            Some(MessageId(v["messages"][0]["id"].as_str().unwrap().into()));
                    }
                    r.map_err(|x| x.details)
                }
                Step::Tap(u) => match &last_button[*u] {
                    Some(m) => {
                        let r = e.user_tap(&WaId::from(USERS[*u]), m);
                        if let Ok(v) = &r {
                            last_call = Some(crate::domain::ids::CallId(
                                v["call_id"].as_str().unwrap().into(),
                            ));
                        }
                        r.map_err(|x| x.details)
                    }
                    None => continue,
                },
                Step::Call(u) => {
                    let r = e.user_call(&WaId::from(USERS[*u]), Some(&uk));
                    if let Ok(v) = &r {
                        last_call = Some(crate::domain::ids::CallId(
                            v["call_id"].as_str().unwrap().into(),
                        ));
                    }
                    r.map_err(|x| x.details)
                }
                Step::Hangup => match &last_call {
                    Some(c) => e.user_hangup(c).map(|_| Value::Null).map_err(|x| x.details),
                    None => continue,
                },
                Step::Ask(u) => {
                    let body = json!({"messaging_product":"whatsapp","to":to(*u),"type":"interactive",
                        "interactive":{"type":"call_permission_request","action":{"name":"call_permission_request"}}});
                    let r = e.send_message(&app(), &uk, &obj(body));
                    if let Ok(v) = &r {
                        last_request[*u] =
                            Some(MessageId(v["messages"][0]["id"].as_str().unwrap().into()));
                    }
                    r.map_err(|x| x.details)
                }
                Step::Accept(u) => e
                    .user_permission_reply(
                        &WaId::from(USERS[*u]),
                        "accept",
                        false,
                        last_request[*u].as_ref(),
                        Some(&uk),
                    )
                    .map_err(|x| x.details),
                Step::ToBsuid(u) => {
                    let body = json!({"messaging_product":"whatsapp","recipient":bsuid_for(&WaId::from(USERS[*u])),
                        "type":"text","text":{"body":"hi"}});
                    e.send_message(&app(), &us, &obj(body))
                        .map_err(|x| x.details)
                }
                Step::Advance(ms) => {
                    advance(&mut e, *ms);
                    Ok(Value::Null)
                }
            };
            answers.push(format!("{s:?} → {r:?}"));
        }
        let hooks = e.st.outbox.iter().map(|d| d.body.clone()).collect();
        (answers, hooks, e.st.recipients.user_count())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        /// Forgetting idle users changes no answer and no webhook: only memory.
        #[test]
        fn forgetting_is_invisible(steps in proptest::collection::vec(step(), 1..40)) {
            let (a1, h1, _) = run(false, &steps);
            let (a2, h2, _) = run(true, &steps);
            for (x, y) in a1.iter().zip(&a2) {
                prop_assert_eq!(x, y);
            }
            prop_assert_eq!(a1.len(), a2.len());
            prop_assert_eq!(h1, h2);
        }
    }
}
