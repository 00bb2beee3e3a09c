//! Calls: the user's taps, links and call-icon calls, the business's `/calls` actions
//! (`connect` included), and each action applied through the state machine
//! ([`decide`]) with the webhooks, timers and SIP effects that follow.

use super::{unknown_object, Effect, Engine, Timer};
use crate::domain::call::{
    decide, Action, Call, CallState, Decision, Direction, EndReason, Source,
};
use crate::domain::error::{ApiError, ApiResult, ErrorKind};
use crate::domain::ids::{country_of, AppId, CallId, MessageId, PhoneNumberId, WaId};
use crate::domain::message::MessageStatus;
use crate::domain::permission::{Grant, Permission, CONNECTED_CALLS_PER_DAY, DAY_MS};
use crate::domain::sdp;
use crate::domain::sip::{GatewayReply, SipRefusal};
use crate::domain::tenant::PhoneNumber;
use crate::domain::user::User;
use crate::webhook::payload;
use crate::wire::calls::{self, CallAction};
use serde_json::{json, Map, Value};

/// Concurrent calls per business number (138002).
const MAX_CONCURRENT_CALLS: usize = 1000;

impl Engine {
    /// The connect webhook of a ringing call, and the timer that ends it unanswered.
    fn connect_and_ring(
        &mut self,
        phone: &PhoneNumber,
        user: &User,
        call: &Call,
        legacy_sdp: bool,
    ) {
        let now = self.now();
        let value = payload::call_connect(call, phone, self.seen(&phone.id, user), now, legacy_sdp);
        let id = call.id.clone();
        self.emit_for_phone(
            phone,
            "calls",
            "connect",
            format!("call:{id}"),
            Some(&id),
            None,
            value,
        );
        self.schedule(
            now.saturating_add(self.behaviour.ring_timeout_secs.saturating_mul(1000)),
            Timer::RingTimeout(id),
        );
    }

    // ---- the user's side ------------------------------------------------------------

    /// The user taps the `voice_call` button of a message.
    pub fn user_tap(&mut self, wa: &WaId, message_id: &MessageId) -> ApiResult<Value> {
        let msg = self.message_to(wa, message_id)?;
        let Some(button) = msg.button.clone() else {
            return Err(ApiError::refused(
                "not_a_call_button",
                format!(
                    "Message {message_id} ({}) has no voice_call button.",
                    msg.kind
                ),
            ));
        };
        if msg.status == MessageStatus::Failed {
            return Err(ApiError::refused(
                "message_not_delivered",
                format!(
                    "Message {message_id} failed with {}; the user never saw the button.",
                    msg.error_code.unwrap_or(0)
                ),
            ));
        }
        let now = self.now();
        let expires = msg.button_expires_at_ms().unwrap_or(u64::MAX);
        if now >= expires {
            return Err(ApiError::refused(
                "button_expired",
                format!(
                    "The call button expired at {} (sent at {}, ttl_minutes {}); the emulator's clock reads {}. No call was started.",
                    expires / 1000,
                    msg.sent_at_ms / 1000,
                    button.ttl_minutes,
                    now / 1000
                ),
            ));
        }
        let phone = self
            .phone(&msg.phone_number_id)
            .cloned()
            .ok_or_else(|| unknown_object(msg.phone_number_id.as_str()))?;
        let user = self.user(wa)?;
        if msg.status != MessageStatus::Read {
            self.user_read(wa, message_id)?;
        }
        let call_id = self.start_user_call(
            &phone,
            &user,
            Source::Button,
            button.payload,
            Some(message_id.clone()),
        )?;
        Ok(json!({ "call_id": call_id.as_str() }))
    }

    /// The user opens `wa.me/call/<number>[?biz_payload=…]`.
    pub fn user_open_link(&mut self, wa: &WaId, url: &str) -> ApiResult<Value> {
        let (number, biz_payload) = crate::wire::link::parse_call_link(url)?;
        let user = self.user_or_create(wa);
        if !user.platform.is_phone() {
            return Err(ApiError::refused(
                "deep_link_unsupported",
                format!(
                    "Deep links are not supported on WhatsApp {} clients; the user is on {}.",
                    user.platform.name(),
                    user.platform.name()
                ),
            ));
        }
        let phone = self.phone_by_display(&number).cloned().ok_or_else(|| {
            let hosted: Vec<&str> = self.st.tenants.phone_numbers.iter().map(|p| p.display_phone_number.as_str()).collect();
            ApiError::refused("unknown_business_number", format!("The link calls +{number}, which this emulator does not host (hosted numbers: {}).", hosted.join(", ")))
        })?;
        let call_id = self.start_user_call(&phone, &user, Source::DeepLink, biz_payload, None)?;
        Ok(json!({ "call_id": call_id.as_str() }))
    }

    /// The user calls from the call icon: no payload.
    pub fn user_call(&mut self, wa: &WaId, phone_id: Option<&PhoneNumberId>) -> ApiResult<Value> {
        let phone = self.phone_or_default(phone_id)?;
        let user = self.user_or_create(wa);
        if phone.calling.call_icon_visibility != "DEFAULT" {
            return Err(ApiError::refused(
                "call_icon_hidden",
                format!(
                    "call_icon_visibility is {}: the user sees no call icon.",
                    phone.calling.call_icon_visibility
                ),
            ));
        }
        if let Some(countries) = phone
            .calling
            .restrict_to_user_countries
            .as_ref()
            .filter(|c| !c.is_empty())
        {
            let country = country_of(wa.as_str());
            if !countries.iter().any(|c| c == country) {
                return Err(ApiError::refused(
                    "call_icon_hidden",
                    format!(
                        "The call icon is shown only to users in {}; this user is in {country}.",
                        countries.join(", ")
                    ),
                ));
            }
        }
        let call_id = self.start_user_call(&phone, &user, Source::Native, None, None)?;
        Ok(json!({ "call_id": call_id.as_str() }))
    }

    fn start_user_call(
        &mut self,
        phone: &PhoneNumber,
        user: &User,
        source: Source,
        payload: Option<String>,
        message_id: Option<MessageId>,
    ) -> ApiResult<CallId> {
        let caps = user.capabilities(&self.behaviour.versions);
        let (places_calls, echo) = (caps.places_business_calls(), caps.echoes_payloads());
        if !places_calls {
            return Err(ApiError::refused(
                "desktop_client",
                format!(
                    "WhatsApp {} clients cannot call businesses; the user is on {}.",
                    user.platform.name(),
                    user.platform.name()
                ),
            ));
        }
        if !phone.calling.enabled {
            return Err(ApiError::refused(
                "calling_disabled",
                format!(
                    "Calling is DISABLED on {}; the user cannot call.",
                    phone.display_phone_number
                ),
            ));
        }
        let now = self.now();
        if let Some(h) = phone
            .calling
            .call_hours
            .as_ref()
            .filter(|h| !h.is_open(now))
        {
            return Err(ApiError::refused(
                "outside_call_hours",
                format!("{} is outside its call hours ({}); WhatsApp offers the user the next open slot instead of calling.", phone.display_phone_number, h.timezone_id),
            ));
        }
        if self.ongoing_call_with(&phone.id, &user.wa_id).is_some() {
            return Err(ApiError::refused(
                "already_in_call",
                format!(
                    "User {} is already in a call with {}.",
                    user.wa_id, phone.display_phone_number
                ),
            ));
        }
        // The user calling opens the service window whether or not anyone answers.
        self.open_window(&phone.id, &user.wa_id);
        let id = self.ids.call_id(&user.wa_id);
        let via_sip = phone.calling.sip.enabled;
        // SDES keying is a SIP matter (cloud-api §8.3, §8.4): over webhooks the offer is
        // always WebRTC's DTLS.
        let keying = if via_sip {
            sdp::Keying::of_setting(phone.calling.srtp_key_exchange_protocol.as_deref())
        } else {
            sdp::Keying::Dtls
        };
        let offer = sdp::meta_sdp_keyed(&mut self.ids, true, keying);
        // The offer points at the user's media endpoint: the WebRTC one for DTLS
        // (webhooks, or SIP's default keying), the RTP one for SDES.
        let offer = match keying {
            sdp::Keying::Dtls => self.media_offer(offer),
            sdp::Keying::Sdes => self.sdes_offer(offer),
        };
        let call = Call {
            cta_payload: payload.clone().filter(|_| echo && source == Source::Button),
            deeplink_payload: payload
                .clone()
                .filter(|_| echo && source == Source::DeepLink),
            payload_sent: payload,
            message_id,
            via_sip,
            ..Call::ringing(
                id.clone(),
                phone.id.clone(),
                user.wa_id.clone(),
                Direction::UserInitiated,
                source,
                now,
                offer,
            )
        };
        if via_sip {
            let invite = self.sip_invite(phone, user, &call)?;
            self.effects.push(Effect::SipInvite(Box::new(invite)));
        } else {
            self.connect_and_ring(phone, user, &call, false);
        }
        self.remember_call(call);
        if phone.calling.callback_permission_enabled {
            self.grant_automatic_callback(phone, user, &id);
        }
        Ok(id)
    }

    // An unknown call is not found (404), as an unknown message is for a tap; only a known
    // call in the wrong state is a refusal.
    pub fn user_hangup(&mut self, call_id: &CallId) -> ApiResult<()> {
        self.call(call_id)?;
        self.apply_call_action(call_id, Action::UserHangup, None, None)
            .map_err(refusal)
    }

    pub fn user_answer(&mut self, call_id: &CallId, sdp: Option<String>) -> ApiResult<()> {
        self.call(call_id)?;
        self.apply_call_action(call_id, Action::UserAnswer, sdp, None)
            .map_err(refusal)
    }

    pub fn user_decline(&mut self, call_id: &CallId) -> ApiResult<()> {
        self.call(call_id)?;
        self.apply_call_action(call_id, Action::UserDecline, None, None)
            .map_err(refusal)
    }

    /// Simulates a client-side calling failure (138019–138023) ending the call.
    pub fn user_fail(&mut self, call_id: &CallId, code: u32) -> ApiResult<()> {
        let title = match code {
            138019 => "Call setup failed",
            138020 => "Relay connection failed",
            138021 => "Media receive timeout",
            138022 => "Media transmit timeout",
            138023 => "Call accepted but terminated with no media signals",
            _ => {
                return Err(ApiError::new(
                    ErrorKind::InvalidValue,
                    format!(
                        "code must be one of 138019, 138020, 138021, 138022, 138023; got {code}."
                    ),
                ))
            }
        };
        let call = self.call(call_id)?;
        if !call.is_ongoing() {
            return Err(ApiError::refused(
                "call_ended",
                format!("Call {call_id} has already ended."),
            ));
        }
        self.end_call(
            call_id,
            EndReason::Failed(code),
            Some(client_errors(code, title)),
        );
        Ok(())
    }

    fn call(&self, id: &CallId) -> ApiResult<Call> {
        self.st.calls.get(id).cloned().ok_or_else(|| {
            let why = if self.st.calls_evicted > 0 {
                " (ended calls beyond the retention limit are evicted)"
            } else {
                ""
            };
            ApiError::new(ErrorKind::NotFound, format!("No call {id}{why}."))
        })
    }

    fn ongoing_call_with(&self, phone: &PhoneNumberId, wa: &WaId) -> Option<&Call> {
        self.st
            .calls
            .values()
            .find(|c| c.is_ongoing() && &c.phone_number_id == phone && &c.wa_id == wa)
    }

    // ---- the business's side: /calls ----------------------------------------------------

    pub fn call_action(
        &mut self,
        app: &AppId,
        phone_id: &PhoneNumberId,
        body: &Map<String, Value>,
    ) -> ApiResult<Value> {
        let phone = self.phone_for(app, phone_id)?;
        if phone.calling.sip.enabled {
            return Err(ApiError::new(
                ErrorKind::MethodNotAllowedSip,
                format!("Graph API calls are not allowed for SIP enabled numbers: {} signals calls over SIP.", phone.display_phone_number),
            ));
        }
        if !phone.calling.enabled {
            return Err(ApiError::new(
                ErrorKind::CallingNotEnabled,
                format!(
                    "Calling APIs are not enabled for phone number {}.",
                    phone.id
                ),
            ));
        }
        let require_fingerprint =
            phone.calling.srtp_key_exchange_protocol.as_deref() != Some("SDES");
        let action = calls::parse(body, require_fingerprint, |r| {
            self.resolve_recipient(&phone, r)
        })?;
        let ok = json!({ "messaging_product": "whatsapp", "success": true });
        let (call_id, action, sdp, opaque) = match action {
            CallAction::Connect {
                recipient,
                to,
                sdp,
                biz_opaque_callback_data,
            } => {
                if !recipient.is_bsuid() {
                    // Calling the number shows it to this business for 30 days (§13);
                    // taken back if the call is refused.
                    self.note_phone_exchange(&phone.id, &to);
                }
                return self
                    .business_connect(&phone, &to, sdp, biz_opaque_callback_data)
                    .map_err(|e| self.hide_number_in(e, &phone.id, &recipient, &to));
            }
            CallAction::PreAccept { call_id, sdp } => (call_id, Action::PreAccept, Some(sdp), None),
            CallAction::Accept {
                call_id,
                sdp,
                biz_opaque_callback_data,
            } => (call_id, Action::Accept, Some(sdp), biz_opaque_callback_data),
            CallAction::Reject { call_id } => (call_id, Action::Reject, None, None),
            CallAction::Terminate { call_id } => (call_id, Action::Terminate, None, None),
        };
        match self.st.calls.get(&call_id) {
            Some(c) if c.phone_number_id == phone.id => {}
            _ => {
                return Err(ApiError::new(
                    ErrorKind::InvalidParameter,
                    format!(
                        "call_id {call_id} is not a call of phone number {}.",
                        phone.id
                    ),
                ))
            }
        }
        self.apply_call_action(&call_id, action, sdp, opaque)
            .map_err(|why| {
                ApiError::new(
                    ErrorKind::InvalidParameter,
                    format!("Cannot {} call {call_id}: {why}.", action.name()),
                )
            })?;
        Ok(ok)
    }

    fn business_connect(
        &mut self,
        phone: &PhoneNumber,
        to: &WaId,
        offer: String,
        opaque: Option<String>,
    ) -> ApiResult<Value> {
        let user = self.business_call_allowed(phone, to)?;
        let now = self.now();
        let id = self.ids.call_id(to);
        let mut call = Call {
            biz_opaque_callback_data: opaque,
            ..Call::ringing(
                id.clone(),
                phone.id.clone(),
                to.clone(),
                Direction::BusinessInitiated,
                Source::Business,
                now,
                offer,
            )
        };
        let shaped = sdp::meta_sdp(&mut self.ids, false);
        call.answer_sdp = Some(self.media_answer(&mut call, shaped));
        let value = payload::call_status(&call, phone, self.seen(&phone.id, &user), "RINGING", now);
        self.emit_for_phone(
            phone,
            "calls",
            "status_ringing",
            format!("call:{id}"),
            Some(&id),
            None,
            value,
        );
        // Meta sends the connect when the media path is ready, before the user picks up
        // (reference §4.2); the ACCEPTED status marks the pick-up.
        self.connect_and_ring(phone, &user, &call, self.behaviour.legacy_connection_sdp);
        self.remember_call(call);
        Ok(
            json!({ "messaging_product": "whatsapp", "calls": [{ "id": id.as_str() }], "success": true }),
        )
    }

    /// The rules every business-initiated call passes, over `/calls` `connect` or SIP:
    /// the number's country (138013), the user's client (138001), the call permission
    /// (138006), one call at a time (138003), concurrency, the daily limit (138012).
    /// Answers the user being called.
    pub(super) fn business_call_allowed(
        &mut self,
        phone: &PhoneNumber,
        to: &WaId,
    ) -> ApiResult<User> {
        self.require_business_initiated(phone, "it cannot call users")?;
        let user = self.user_or_create(to);
        let now = self.now();
        if !user
            .capabilities(&self.behaviour.versions)
            .receives_business_calls()
        {
            return Err(ApiError::new(
                ErrorKind::ReceiverUncallable,
                format!("Receiver is unable to receive calls: {} runs WhatsApp {} {}, and business calls need Android or iOS 2.24.14 or newer.", to, user.platform.name(), user.version),
            ));
        }
        if !self.permission(&phone.id, to).is_granted(now) {
            return Err(ApiError::new(ErrorKind::NoCallPermission, format!("No approved call permission from the recipient {to}; send a call permission request first.")));
        }
        if self.ongoing_call_with(&phone.id, to).is_some() {
            return Err(ApiError::new(
                ErrorKind::DuplicateCall,
                format!("A call is already ongoing with the receiver {to}."),
            ));
        }
        if self
            .st
            .calls
            .values()
            .filter(|c| c.is_ongoing() && c.phone_number_id == phone.id)
            .count()
            >= MAX_CONCURRENT_CALLS
        {
            return Err(ApiError::new(ErrorKind::InvalidParameter, format!("Limit reached for maximum concurrent calls ({MAX_CONCURRENT_CALLS}) for the given number.")));
        }
        let perm = self.permission(&phone.id, to);
        if perm.connected_within_day(now) >= CONNECTED_CALLS_PER_DAY {
            let next = Permission::window_frees_at(&perm.connected_calls, now, DAY_MS)
                .unwrap_or(now)
                / 1000;
            return Err(ApiError::new(
                ErrorKind::BusinessCallLimit,
                format!("{CONNECTED_CALLS_PER_DAY} connected business-initiated calls are allowed within 24 hours; the next call is allowed at {next}."),
            ));
        }
        Ok(user)
    }

    /// Applies one action through the state machine and emits what follows.
    /// `Err` carries why the action does not apply.
    fn apply_call_action(
        &mut self,
        call_id: &CallId,
        action: Action,
        sdp: Option<String>,
        opaque: Option<String>,
    ) -> Result<(), String> {
        let call = self
            .st
            .calls
            .get(call_id)
            .cloned()
            .ok_or_else(|| format!("no call {call_id}"))?;
        match decide(call.direction, call.state, action) {
            Decision::Refuse(why) => Err(why.to_owned()),
            Decision::Ignore => Ok(()),
            Decision::End(reason) => {
                self.end_call(call_id, reason, None);
                Ok(())
            }
            Decision::Go(CallState::PreAccepted) => {
                self.media_from_answer(call_id, sdp.as_deref());
                let c = self.st.calls.get_mut(call_id).expect("checked above");
                c.answer_sdp = sdp;
                c.state = CallState::PreAccepted;
                Ok(())
            }
            Decision::Go(CallState::Active) => {
                if action == Action::Accept {
                    if let (Some(pre), Some(given)) = (&call.answer_sdp, &sdp) {
                        if !sdp::same(pre, given) {
                            return Err("the SDP answer in accept does not match the one given in pre_accept for this call".into());
                        }
                    }
                }
                if action == Action::Accept {
                    self.media_from_answer(call_id, sdp.as_deref());
                }
                self.connect_call(call_id, sdp, opaque);
                Ok(())
            }
            Decision::Go(_) => Ok(()),
        }
    }

    pub(super) fn connect_call(
        &mut self,
        call_id: &CallId,
        sdp: Option<String>,
        opaque: Option<String>,
    ) {
        let now = self.now();
        self.cancel(&Timer::RingTimeout(call_id.clone()));
        let generated = sdp::meta_sdp(&mut self.ids, false);
        let Some(c) = self.st.calls.get_mut(call_id) else {
            return;
        };
        c.state = CallState::Active;
        c.answered_at_ms = Some(now);
        if opaque.is_some() {
            c.biz_opaque_callback_data = opaque;
        }
        if sdp.is_some() || c.answer_sdp.is_none() {
            c.answer_sdp = Some(sdp.unwrap_or(generated));
        }
        let call = c.clone();
        self.media_connected(&call);
        let perm = self.permission(&call.phone_number_id, &call.wa_id);
        perm.on_connected_call();
        if call.direction == Direction::BusinessInitiated {
            perm.connected_calls.push(now);
            if call.via_sip {
                // Over SIP the pick-up is the gateway's 200 OK; no calls webhooks (§8.1).
                self.effects.push(Effect::SipReply {
                    call_id: call_id.clone(),
                    reply: GatewayReply::Answer {
                        sdp: call.answer_sdp.clone().unwrap_or_default(),
                    },
                });
                return;
            }
            let (Some(phone), Ok(user)) = (
                self.phone(&call.phone_number_id).cloned(),
                self.user(&call.wa_id),
            ) else {
                return;
            };
            // The connect (with Meta's SDP answer) went out at set-up; pick-up is ACCEPTED.
            let accepted =
                payload::call_status(&call, &phone, self.seen(&phone.id, &user), "ACCEPTED", now);
            self.emit_for_phone(
                &phone,
                "calls",
                "status_accepted",
                format!("call:{call_id}"),
                Some(call_id),
                None,
                accepted,
            );
        }
    }

    /// Ends a call: terminate webhook (or SIP BYE), and for business calls nobody
    /// picked up, the consecutive-unanswered count that can revoke the permission.
    pub(super) fn end_call(&mut self, call_id: &CallId, reason: EndReason, errors: Option<Value>) {
        let now = self.now();
        self.cancel(&Timer::RingTimeout(call_id.clone()));
        let Some(c) = self.st.calls.get_mut(call_id) else {
            return;
        };
        if !c.is_ongoing() {
            return;
        }
        c.state = CallState::Ended;
        c.ended_at_ms = Some(now);
        c.end_reason = Some(reason.clone());
        let call = c.clone();
        self.media_ended(&call);
        let (Some(phone), Ok(user)) = (
            self.phone(&call.phone_number_id).cloned(),
            self.user(&call.wa_id),
        ) else {
            return;
        };
        if call.via_sip && call.direction == Direction::UserInitiated {
            if !matches!(reason, EndReason::SipFailure(_)) {
                self.effects.push(Effect::SipHangup {
                    call_id: call_id.clone(),
                    duration_secs: call.duration_secs().unwrap_or(0),
                });
            }
            return;
        }
        if call.via_sip {
            // A business-initiated call over SIP: the gateway answers the business, and
            // no calls webhooks go out (§8.1); the unanswered count below still applies.
            if let Some(reply) = gateway_reply(&call, &reason) {
                self.effects.push(Effect::SipReply {
                    call_id: call_id.clone(),
                    reply,
                });
            }
        } else {
            self.emit_end_webhooks(&call, &reason, &phone, &user, errors);
        }
        if call.direction == Direction::BusinessInitiated
            && matches!(reason, EndReason::DeclinedByUser | EndReason::Unanswered)
        {
            let revoke_after = phone.profile.permission_limits().unanswered_before_revoke;
            let perm = self.permission(&phone.id, &user.wa_id);
            perm.consecutive_unanswered += 1;
            if perm.consecutive_unanswered >= revoke_after && perm.grant != Grant::None {
                perm.grant = Grant::None;
                perm.consecutive_unanswered = 0;
                self.emit_permission_reply(
                    &phone,
                    &user,
                    None,
                    json!({ "response": "reject", "response_source": "automatic" }),
                );
            }
        }
    }

    /// The webhooks of a call that ended: REJECTED when the user declined, then the
    /// terminate.
    fn emit_end_webhooks(
        &mut self,
        call: &Call,
        reason: &EndReason,
        phone: &PhoneNumber,
        user: &User,
        errors: Option<Value>,
    ) {
        let (now, call_id) = (self.now(), &call.id);
        if *reason == EndReason::DeclinedByUser {
            let rejected =
                payload::call_status(call, phone, self.seen(&phone.id, user), "REJECTED", now);
            self.emit_for_phone(
                phone,
                "calls",
                "status_rejected",
                format!("call:{call_id}"),
                Some(call_id),
                None,
                rejected,
            );
        }
        let terminate =
            payload::call_terminate(call, phone, self.seen(&phone.id, user), now, errors);
        self.emit_for_phone(
            phone,
            "calls",
            "terminate",
            format!("call:{call_id}"),
            Some(call_id),
            None,
            terminate,
        );
    }

    pub(crate) fn ring_timeout(&mut self, call_id: &CallId) {
        let _ = self.apply_call_action(call_id, Action::RingTimeout, None, None);
    }
}

fn refusal(why: String) -> ApiError {
    let reason = if why.contains("ended") {
        "call_ended"
    } else {
        "invalid_call_state"
    };
    ApiError::refused(reason, why)
}

/// What the gateway tells a business whose SIP call ended on the user's side.
fn gateway_reply(call: &Call, reason: &EndReason) -> Option<GatewayReply> {
    let bye = || GatewayReply::Bye {
        duration_secs: call.duration_secs().unwrap_or(0),
    };
    match reason {
        EndReason::Completed => Some(bye()),
        EndReason::DeclinedByUser => Some(GatewayReply::Refuse(SipRefusal::declined())),
        EndReason::Unanswered => Some(GatewayReply::Refuse(SipRefusal::no_answer())),
        // The client failed (138019–138023): as a hang-up once answered, else unreachable.
        EndReason::Failed(_) if call.answered_at_ms.is_some() => Some(bye()),
        EndReason::Failed(_) => Some(GatewayReply::Refuse(SipRefusal::no_answer())),
        // Ended from the business's side, or the business's own refusal.
        EndReason::CancelledByUser
        | EndReason::RejectedByBusiness
        | EndReason::TerminatedBeforeAnswer
        | EndReason::SipFailure(_) => None,
    }
}

/// The `errors` of a terminate webhook for a failure the user's client reports
/// (cloud-api §4.4: a sibling of `calls`, `message` is the title).
pub(super) fn client_errors(code: u32, title: &str) -> Value {
    json!([{ "code": code, "message": title, "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/calling/troubleshooting", "error_data": { "details": title } }])
}
