//! Call permissions: the user's replies to requests (and from the business profile),
//! the automatic callback permission, the `call_permission_reply` webhooks, and
//! `GET /{phone-number-id}/call_permissions` with its rate limit.

use super::{pair_key, Engine};
use crate::domain::error::{ApiError, ApiResult, ErrorKind};
use crate::domain::ids::{AppId, CallId, MessageId, PhoneNumberId, WaId};
use crate::domain::message::{MessageStatus, OutboundMessage};
use crate::domain::permission::{
    Grant, Permission, RequestExpiry, RequestLifetime, CONNECTED_CALLS_PER_DAY, DAY_MS,
    TEMPORARY_PERMISSION_MS, WEEK_MS,
};
use crate::domain::tenant::PhoneNumber;
use crate::domain::user::User;
use crate::webhook::payload;
use serde_json::{json, Value};

impl Engine {
    pub(crate) fn permission(&mut self, phone: &PhoneNumberId, wa: &WaId) -> &mut Permission {
        let now = self.now();
        let key = pair_key(phone, wa);
        if !self.st.permissions.contains_key(&key) {
            self.note_permission(key.clone());
        }
        let p = self.st.permissions.entry(key).or_default();
        p.prune(now);
        if let Grant::Temporary { expires_at_ms } = p.grant {
            if expires_at_ms <= now {
                p.grant = Grant::None;
            }
        }
        p
    }

    pub(super) fn grant_automatic_callback(
        &mut self,
        phone: &PhoneNumber,
        user: &User,
        call_id: &CallId,
    ) {
        // A callback permission is for business-initiated calls: none where they do not exist.
        if !phone.business_initiated_calling() {
            return;
        }
        let now = self.now();
        let perm = self.permission(&phone.id, &user.wa_id);
        if perm.is_permanent() {
            return;
        }
        let expires = now.saturating_add(TEMPORARY_PERMISSION_MS);
        perm.grant = Grant::Temporary {
            expires_at_ms: expires,
        };
        let reply = json!({ "response": "accept", "is_permanent": false, "expiration_timestamp": payload::ts(expires), "response_source": "automatic" });
        self.emit_permission_reply(phone, user, Some(call_id.as_str()), reply);
    }

    pub(super) fn emit_permission_reply(
        &mut self,
        phone: &PhoneNumber,
        user: &User,
        context_id: Option<&str>,
        reply: Value,
    ) -> MessageId {
        let id = self.ids.message_id(&user.wa_id);
        let now = self.now();
        let context = context_id.map(|c| (phone.display_phone_number.as_str(), c));
        let mut m = payload::inbound_base(
            self.seen(&phone.id, user),
            id.as_str(),
            now,
            context,
            "interactive",
        );
        m.insert(
            "interactive".into(),
            json!({ "type": "call_permission_reply", "call_permission_reply": reply }),
        );
        let value = payload::inbound_message(phone, self.seen(&phone.id, user), m);
        self.emit_for_phone(
            phone,
            "messages",
            "call_permission_reply",
            format!("user:{}", user.wa_id),
            None,
            Some(&id),
            value,
        );
        id
    }

    /// The user answers a call permission request (or changes it from the profile).
    pub fn user_permission_reply(
        &mut self,
        wa: &WaId,
        response: &str,
        permanent: bool,
        message_id: Option<&MessageId>,
        phone_id: Option<&PhoneNumberId>,
    ) -> ApiResult<Value> {
        let accept = match response {
            "accept" => true,
            "reject" => false,
            other => {
                return Err(ApiError::new(
                    ErrorKind::InvalidValue,
                    format!("response must be accept or reject; got {other:?}."),
                ))
            }
        };
        let (phone_id, context) = match message_id {
            Some(mid) => {
                let msg = self.message_to(wa, mid)?;
                if !msg.is_permission_request {
                    return Err(ApiError::refused(
                        "not_a_permission_request",
                        format!("Message {mid} is not a call permission request."),
                    ));
                }
                if msg.status == MessageStatus::Failed {
                    return Err(ApiError::refused(
                        "message_not_delivered",
                        format!("Message {mid} failed; the user never saw it."),
                    ));
                }
                if let Some(life) = msg.request_lifetime.filter(|l| l.expired(self.now())) {
                    let why = match life.basis {
                        RequestExpiry::Unanswered => "it went unanswered for 7 days after delivery",
                        RequestExpiry::Answered => "7 days have passed since the user answered it",
                        RequestExpiry::Superseded => "the user answered a newer permission request",
                    };
                    return Err(ApiError::refused(
                        "permission_request_expired",
                        format!(
                            "Permission request {mid} expired at {}: {why}. Send a new request.",
                            life.expires_at_ms / 1000
                        ),
                    ));
                }
                self.answer_permission_request(&msg);
                (Some(msg.phone_number_id.clone()), Some(mid.0.clone()))
            }
            // From the business profile: by default the first number that can call users.
            None => (
                phone_id.cloned().or_else(|| {
                    let t = &self.st.tenants.phone_numbers;
                    t.iter()
                        .find(|p| p.business_initiated_calling())
                        .map(|p| p.id.clone())
                }),
                None,
            ),
        };
        let phone = self.phone_or_default(phone_id.as_ref())?;
        // Permissions exist only where business-initiated calling does (cloud-api §6.5).
        self.require_business_initiated(&phone, "its users cannot grant it call permissions")
            .map_err(|e| ApiError::refused("business_initiated_calling_unavailable", e.details))?;
        let user = self.user_or_create(wa);
        let now = self.now();
        // Replying is the user interacting with the business.
        self.open_window(&phone.id, wa);
        let reply = if accept && permanent {
            self.permission(&phone.id, wa).grant = Grant::Permanent;
            json!({ "response": "accept", "is_permanent": true, "response_source": "user_action" })
        } else if accept {
            let expires = now.saturating_add(TEMPORARY_PERMISSION_MS);
            self.permission(&phone.id, wa).grant = Grant::Temporary {
                expires_at_ms: expires,
            };
            json!({ "response": "accept", "is_permanent": false, "expiration_timestamp": payload::ts(expires), "response_source": "user_action" })
        } else {
            self.permission(&phone.id, wa).grant = Grant::None;
            json!({ "response": "reject", "response_source": "user_action" })
        };
        let id = self.emit_permission_reply(&phone, &user, context.as_deref(), reply);
        Ok(json!({ "message_id": id.as_str() }))
    }

    /// The user answers a request: it stays answerable 7 days from now, and every older
    /// request to the same user from the same number expires (cloud-api §6.5).
    fn answer_permission_request(&mut self, answered: &OutboundMessage) {
        let now = self.now();
        for m in self.st.messages.values_mut() {
            if m.to != answered.to || m.phone_number_id != answered.phone_number_id {
                continue;
            }
            let Some(life) = &mut m.request_lifetime else {
                continue;
            };
            if m.id == answered.id {
                *life = RequestLifetime::answered(now);
            } else if m.sent_at_ms < answered.sent_at_ms && !life.expired(now) {
                *life = RequestLifetime::superseded(now);
            }
        }
    }

    /// `GET /{phone-number-id}/call_permissions?user_wa_id=…`
    pub fn get_call_permissions(
        &mut self,
        app: &AppId,
        phone_id: &PhoneNumberId,
        query: &[(String, String)],
    ) -> ApiResult<Value> {
        let phone = self.phone_for(app, phone_id)?;
        if !phone.calling.enabled {
            return Err(ApiError::new(
                ErrorKind::CallingNotEnabled,
                format!(
                    "Calling APIs are not enabled for phone number {}.",
                    phone.id
                ),
            ));
        }
        self.require_business_initiated(&phone, "it has no call permissions to read")?;
        let now = self.now();
        self.st
            .permission_api_hits
            .retain(|t| now.saturating_sub(*t) < 1000);
        if self.st.permission_api_hits.len() >= 100 {
            return Err(ApiError::new(
                ErrorKind::PermissionApiLimit,
                "A maximum of 100 requests in a 1 second window is allowed.",
            ));
        }
        self.st.permission_api_hits.push_back(now);
        let q = |k: &str| {
            query
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let wa = match (q("user_wa_id"), q("recipient")) {
            (Some(w), _) => WaId(crate::wire::json::phone_digits("user_wa_id", w)?),
            // A BSUID or parent BSUID (cloud-api §6.4, §13); `user_wa_id` wins.
            (None, Some(bsuid)) => self.user_by_bsuid(bsuid, "recipient")?,
            (None, None) => return Err(crate::wire::json::missing("user_wa_id")),
        };
        let callable = self.st.recipients.user(&wa).is_none_or(|u| {
            u.capabilities(&self.behaviour.versions)
                .receives_business_calls()
        });
        let perm = self.permission(&phone.id, &wa).clone();
        let permission = match (&perm.grant, callable) {
            (Grant::Temporary { expires_at_ms }, true) => {
                json!({ "status": "temporary", "expiration_time": expires_at_ms / 1000 })
            }
            (Grant::Permanent, true) => json!({ "status": "permanent" }),
            _ => json!({ "status": "no_permission" }),
        };
        let limit = |period: &str, max: usize, stamps: &[u64], window: u64| {
            let used = stamps
                .iter()
                .filter(|t| now.saturating_sub(**t) < window)
                .count();
            let mut l = json!({ "time_period": period, "max_allowed": max, "current_usage": used });
            if used >= max {
                if let Some(t) = Permission::window_frees_at(stamps, now, window) {
                    l["limit_expiration_time"] = (t / 1000).into();
                }
            }
            (l, used < max)
        };
        let limits = phone.profile.permission_limits();
        let (day, day_ok) = limit("PT24H", limits.requests_per_day, &perm.requests, DAY_MS);
        let (week, week_ok) = limit("P7D", limits.requests_per_week, &perm.requests, WEEK_MS);
        let (calls, calls_ok) = limit(
            "PT24H",
            CONNECTED_CALLS_PER_DAY,
            &perm.connected_calls,
            DAY_MS,
        );
        Ok(json!({
            "messaging_product": "whatsapp",
            "permission": permission,
            "actions": [
                { "action_name": "send_call_permission_request", "can_perform_action": day_ok && week_ok && !perm.is_permanent() && callable, "limits": [day, week] },
                { "action_name": "start_call", "can_perform_action": calls_ok && perm.is_granted(now) && callable, "limits": [calls] },
            ],
        }))
    }
}
