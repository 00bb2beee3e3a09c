//! `/messages` sends (free-form and template), their statuses, the user's texts and
//! reads, and the business marking inbound messages read.

use super::recipients::{Category, ConvId, Conversation};
use super::{pair_key, unknown_object, Engine};
use crate::domain::error::{ApiError, ApiResult, ErrorKind};
use crate::domain::ids::{AppId, MessageId, PhoneNumberId, WaId};
use crate::domain::message::{
    CallButton, MessageStatus, OutboundMessage, TemplateRef, DEFAULT_TTL_MINUTES,
};
use crate::domain::permission::RequestLifetime;
use crate::domain::tenant::PhoneNumber;
use crate::domain::user::User;
use crate::domain::version::Rule;
use crate::webhook::payload::{self, TypedStatusInput};
use crate::wire::messages::{self, MessagesBody, Recipient, SendKind};
use crate::wire::messages_fast;
use serde_json::{json, Map, Value};

/// The answer to a send: `{"messaging_product","contacts":[…],"messages":[{"id",
/// "message_status"?}]}`, serialised straight to bytes.
#[derive(serde::Serialize)]
pub struct SendAnswer {
    messaging_product: &'static str,
    contacts: [AnswerContact; 1],
    messages: [AnswerMessage; 1],
}

/// `contacts[0]`: `input` as sent and `wa_id`; for a BSUID `recipient`, `user_id` too,
/// and `wa_id` only while the user's number is visible to the sending number
/// (cloud-api §13).
#[derive(serde::Serialize)]
struct AnswerContact {
    input: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    wa_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
}

/// `messages[0]`: the id, and `message_status: accepted` for templates.
#[derive(serde::Serialize)]
struct AnswerMessage {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_status: Option<&'static str>,
}

/// `msg:<id>`, the ordering key of a message's statuses, written into `buf` when it fits.
fn msg_order_key<'b>(id: &MessageId, buf: &'b mut [u8; 128]) -> std::borrow::Cow<'b, str> {
    let n = 4 + id.as_str().len();
    if n > buf.len() {
        return std::borrow::Cow::Owned(format!("msg:{id}"));
    }
    buf[..4].copy_from_slice(b"msg:");
    buf[4..n].copy_from_slice(id.as_str().as_bytes());
    std::borrow::Cow::Borrowed(std::str::from_utf8(&buf[..n]).expect("a prefix and a string"))
}

/// What the user's client does with a message once accepted.
enum Fate {
    Deliver,
    Fail(ApiError),
}

impl Engine {
    /// `POST /{phone-number-id}/messages`.
    pub fn send_message(
        &mut self,
        app: &AppId,
        phone_id: &PhoneNumberId,
        body: &Map<String, Value>,
    ) -> ApiResult<Value> {
        let phone = self.phone_for(app, phone_id)?;
        let req = match messages::parse(body, |r| self.resolve_recipient(&phone, r))? {
            MessagesBody::MarkRead(id) => return self.business_mark_read(&id, &phone.id),
            MessagesBody::Send(r) => r,
        };
        self.send(phone, req, messages::visible_text(body))
            .map(|answer| serde_json::to_value(answer).unwrap_or(Value::Null))
    }

    /// `POST /{phone-number-id}/messages` from the request bytes to the answer's bytes:
    /// the common sends are read without a JSON tree ([`messages_fast`]) and answered
    /// without one; every other body takes [`Engine::send_message`], which words every
    /// refusal. Both give the same answers and the same state.
    pub fn send_message_bytes(
        &mut self,
        app: &AppId,
        phone_id: &PhoneNumberId,
        body: &[u8],
    ) -> ApiResult<Vec<u8>> {
        let Some(fast) = messages_fast::parse(body) else {
            let body = crate::wire::json::parse_object(body)?;
            let answer = self.send_message(app, phone_id, &body)?;
            return Ok(serde_json::to_vec(&answer).unwrap_or_default());
        };
        // The general path's order: the number's owner, then the body (valid here),
        // then the recipient.
        let phone = self.phone_for(app, phone_id)?;
        let to = self.resolve_recipient(&phone, &fast.recipient)?;
        let req = messages::SendRequest {
            recipient: fast.recipient,
            to,
            kind: fast.kind,
            biz_opaque_callback_data: fast.biz_opaque_callback_data,
        };
        self.send(phone, req, fast.visible_text)
            .map(|answer| serde_json::to_vec(&answer).unwrap_or_default())
    }

    /// A send whose recipient is resolved; a refusal hides what the sending number may
    /// not see of the recipient.
    fn send(
        &mut self,
        phone: PhoneNumber,
        mut req: messages::SendRequest,
        text: Option<String>,
    ) -> ApiResult<SendAnswer> {
        self.accept(&phone, &mut req, text)
            .map_err(|e| self.hide_number_in(e, &phone.id, &req.recipient, &req.to))
    }

    /// The send itself. On success it has moved what it keeps out of `req` (no copies of
    /// the button, the recipient and its number); on a refusal `req` is as it came.
    fn accept(
        &mut self,
        phone: &PhoneNumber,
        req: &mut messages::SendRequest,
        text: Option<String>,
    ) -> ApiResult<SendAnswer> {
        let mut button: Option<CallButton> = None;
        let mut template_ref: Option<TemplateRef> = None;
        let mut is_cpr = false;
        let kind: String;
        match &mut req.kind {
            SendKind::Text => kind = "text".into(),
            SendKind::VoiceCall(b) => {
                kind = "voice_call".into();
                // Only errors before this point need the request's button, and there are none.
                button = Some(std::mem::replace(
                    b,
                    CallButton {
                        display_text: String::new(),
                        ttl_minutes: 0,
                        payload: None,
                    },
                ));
            }
            SendKind::PermissionRequest => {
                kind = "call_permission_request".into();
                is_cpr = true;
            }
            SendKind::Other(t) => kind = t.clone(),
            SendKind::Template {
                name,
                language,
                body_params,
                voice_call,
            } => {
                kind = "template".into();
                let t = self.approved_template(&phone.waba_id, name, language)?;
                let given = body_params.unwrap_or(0);
                if given != t.body_params {
                    return Err(ApiError::new(
                        ErrorKind::TemplateParamCount,
                        format!("Template {name} ({language}) has {} body parameter(s); the request gave {given}.", t.body_params),
                    ));
                }
                match (&t.voice_call_button, voice_call) {
                    (None, Some(_)) => {
                        return Err(ApiError::new(
                            ErrorKind::InvalidValue,
                            format!("template.components: template {name} has no voice_call button, but the request has a voice_call button component."),
                        ))
                    }
                    (Some(tb), params) => {
                        if let Some(i) = params.as_ref().and_then(|p| p.index) {
                            if i != tb.index {
                                return Err(ApiError::new(
                                    ErrorKind::InvalidValue,
                                    format!("template.components: the voice_call button of {name} is at index {}; the request gave index {i}.", tb.index),
                                ));
                            }
                        }
                        let ttl = params.as_ref().and_then(|p| p.ttl_minutes).or(tb.ttl_minutes).unwrap_or(DEFAULT_TTL_MINUTES);
                        let payload = params.as_ref().and_then(|p| p.payload.clone());
                        button = Some(CallButton { display_text: tb.text.clone(), ttl_minutes: ttl, payload });
                    }
                    (None, None) => {}
                }
                is_cpr = t.is_permission_request;
                template_ref = Some(TemplateRef {
                    name: t.name.clone(),
                    language: t.language.clone(),
                    category: t.category.clone(),
                });
            }
        }
        if req.recipient.is_bsuid()
            && template_ref
                .as_ref()
                .is_some_and(|t| t.category.eq_ignore_ascii_case("AUTHENTICATION"))
        {
            return Err(bsuid_not_supported(req.recipient.input()));
        }
        if is_cpr {
            // Permission requests exist only where business-initiated calling does.
            self.require_business_initiated(phone, "it cannot ask users for call permission")?;
            if !phone.calling.enabled {
                return Err(ApiError::new(
                    ErrorKind::CallingNotEnabled,
                    format!(
                        "Calling is DISABLED on phone number {}; enable it with POST /{}/settings.",
                        phone.id, phone.id
                    ),
                ));
            }
            let now = self.now();
            let perm = self.permission(&phone.id, &req.to);
            if perm.is_permanent() {
                return Err(ApiError::new(
                    ErrorKind::PermanentPermissionExists,
                    format!(
                        "User {} already gave a permanent call permission to {}.",
                        req.to, phone.display_phone_number
                    ),
                ));
            }
            if let Some((period, max)) =
                perm.request_limit_hit(now, phone.profile.permission_limits())
            {
                return Err(ApiError::new(
                    ErrorKind::PermissionRequestLimit,
                    format!("At most {max} call permission request(s) per {period} to the same user; a connected call resets the limits."),
                ));
            }
        }
        let user = self.user_or_create(&req.to);
        let free_form = template_ref.is_none();
        let fate = self.fate_of(phone, &user, free_form, button.is_some(), is_cpr)?;
        if !req.recipient.is_bsuid() {
            // The business used the number: it is visible to this number for 30 days.
            self.note_phone_exchange(&phone.id, &req.to);
        }
        let id = self.ids.message_id(&req.to);
        let now = self.now();
        // No refusal from here on: what the message keeps is moved out of the request.
        let answer_id = id.0.clone();
        let to = std::mem::replace(&mut req.to, WaId(String::new()));
        let recipient = std::mem::replace(&mut req.recipient, Recipient::Bsuid(String::new()));
        let mut msg = OutboundMessage {
            id,
            phone_number_id: phone.id.clone(),
            to,
            kind,
            sent_at_ms: now,
            status: MessageStatus::Accepted,
            error_code: None,
            button,
            template: template_ref.map(Box::new),
            is_permission_request: is_cpr,
            biz_opaque_callback_data: req.biz_opaque_callback_data.take(),
            request_lifetime: None,
            graph_version: self.graph_version,
            text,
        };
        match fate {
            Fate::Deliver => {
                self.emit_status(phone, &user, &msg, "sent", None);
                self.emit_status(phone, &user, &msg, "delivered", None);
                msg.status = MessageStatus::Delivered;
                if is_cpr {
                    msg.request_lifetime = Some(RequestLifetime::delivered(now));
                    self.st
                        .permissions
                        .entry(pair_key(&phone.id, &msg.to))
                        .or_default()
                        .requests
                        .push(now);
                }
            }
            Fate::Fail(err) => {
                if self.behaviour.sent_before_undeliverable && err.kind == ErrorKind::Undeliverable
                {
                    self.emit_status(phone, &user, &msg, "sent", None);
                }
                self.emit_status(phone, &user, &msg, "failed", Some(&err));
                msg.status = MessageStatus::Failed;
                msg.error_code = Some(err.code());
            }
        }
        let is_template = msg.template.is_some();
        let contact = self.response_contact(&phone.id, recipient, &msg.to);
        self.remember_message(msg);
        Ok(SendAnswer {
            messaging_product: "whatsapp",
            contacts: [contact],
            messages: [AnswerMessage {
                id: answer_id,
                message_status: is_template.then_some("accepted"),
            }],
        })
    }

    /// Whether an accepted message reaches the user (131047, 131026 are asynchronous).
    fn fate_of(
        &self,
        phone: &PhoneNumber,
        user: &User,
        free_form: bool,
        has_call_button: bool,
        is_cpr: bool,
    ) -> ApiResult<Fate> {
        if free_form && !self.window_open(&phone.id, &user.wa_id) {
            let err = ApiError::new(
                ErrorKind::ReEngagement,
                "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
            );
            if self.behaviour.reengagement_sync {
                return Err(err);
            }
            return Ok(Fate::Fail(err));
        }
        let caps = user.capabilities(&self.behaviour.versions);
        let too_old = (has_call_button && !caps.renders_call_buttons())
            || (is_cpr && !caps.receives_permission_requests());
        if too_old {
            return Ok(Fate::Fail(ApiError::new(
                ErrorKind::Undeliverable,
                "Message Undeliverable.",
            )));
        }
        Ok(Fate::Deliver)
    }

    /// The pricing conversation of `phone/wa/category`, opened (or renewed once expired)
    /// now: its id and expiry.
    fn conversation_for(
        &mut self,
        phone: &PhoneNumberId,
        wa: &WaId,
        category: &str,
    ) -> (ConvId, u64) {
        let now = self.now();
        if let Some(open) = self
            .st
            .recipients
            .conversation(phone, wa, category)
            .filter(|(_, exp)| *exp > now)
        {
            return open;
        }
        let id = ConvId::of(&self.ids.lower_hex(32));
        let expires = now.saturating_add(24 * 3600 * 1000);
        let conversation = Conversation {
            category: Category::of(category),
            id: id.clone(),
            expires,
        };
        self.st.recipients.update_pair(phone, wa, |p| {
            p.conversations
                .retain(|c| c.category != conversation.category);
            p.conversations.push(conversation);
        });
        (id, expires)
    }

    fn emit_status(
        &mut self,
        phone: &PhoneNumber,
        user: &User,
        msg: &OutboundMessage,
        status: &str,
        error: Option<&ApiError>,
    ) {
        let now = self.now();
        let (category, kind, billable) = match &msg.template {
            Some(t) => (
                std::borrow::Cow::Owned(t.category.to_ascii_lowercase()),
                "regular",
                true,
            ),
            None => (
                std::borrow::Cow::Borrowed("service"),
                "free_customer_service",
                false,
            ),
        };
        let priced = matches!(status, "sent" | "delivered");
        let conversation = (priced
            && self.behaviour.status_conversation
            && msg.graph_version.has(Rule::StatusConversation))
        .then(|| self.conversation_for(&phone.id, &user.wa_id, &category));
        let mut id_buf = [0u8; 32];
        let href = self.behaviour.status_error_href.then_some(
            "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
        );
        let errors = error.map(|e| json!([e.status_error_json(href)]));
        let value = payload::status_value(
            phone,
            self.seen(&phone.id, user),
            TypedStatusInput {
                message_id: msg.id.as_str(),
                status,
                at_ms: now,
                biz_opaque_callback_data: msg.biz_opaque_callback_data.as_deref(),
                conversation: conversation
                    .as_ref()
                    .map(|(id, exp)| payload::Conversation {
                        id: id.text(&mut id_buf),
                        expiration_timestamp: (status == "sent").then_some(payload::Secs(*exp)),
                        origin: payload::Origin { kind: &category },
                    }),
                pricing: priced.then_some(payload::Pricing {
                    billable,
                    pricing_model: "PMP",
                    kind,
                    category: &category,
                }),
                errors,
            },
        );
        let (mut body, signature) = self.st.outbox.buffers();
        payload::status_envelope_into(&mut body, phone.waba_id.as_str(), &value);
        let raw = String::from_utf8(body).expect("only ASCII is written");
        let other;
        let event = match status {
            "sent" => "status_sent",
            "delivered" => "status_delivered",
            "read" => "status_read",
            "failed" => "status_failed",
            _ => {
                other = format!("status_{status}");
                &other
            }
        };
        let mut order_key = [0u8; 128];
        self.emit_text(
            &phone.waba_id,
            "messages",
            event,
            &msg_order_key(&msg.id, &mut order_key),
            None,
            Some(&msg.id),
            raw,
            signature,
        );
    }

    /// `contacts[0]` of a send's response: `input` as sent and `wa_id`; for a BSUID
    /// `recipient`, `user_id` too, and `wa_id` only while the user's number is visible to
    /// the sending number (cloud-api §13).
    fn response_contact(
        &self,
        phone: &PhoneNumberId,
        recipient: Recipient,
        to: &WaId,
    ) -> AnswerContact {
        let bsuid = recipient.is_bsuid();
        // Only a BSUID recipient needs the user here (a send to `to` shows the number).
        let user = bsuid.then(|| self.st.recipients.user(to)).flatten();
        AnswerContact {
            wa_id: (!bsuid || user.as_ref().is_some_and(|u| self.phone_visible(phone, u)))
                .then(|| to.as_str().to_owned()),
            user_id: user.map(|u| u.user_id),
            input: match recipient {
                Recipient::Phone { input, .. } => input,
                Recipient::Bsuid(b) => b,
            },
        }
    }

    fn business_mark_read(&mut self, id: &MessageId, phone: &PhoneNumberId) -> ApiResult<Value> {
        if self.st.inbound.iter().any(|(m, p)| m == id && p == phone) {
            Ok(json!({ "success": true }))
        } else {
            Err(ApiError::new(
                ErrorKind::InvalidParameter,
                format!("message_id {id} is not a message this number received."),
            ))
        }
    }

    /// The user reads a message: a `read` status (no pricing), once.
    pub fn user_read(&mut self, wa: &WaId, id: &MessageId) -> ApiResult<Value> {
        let msg = self.message_to(wa, id)?;
        match msg.status {
            MessageStatus::Failed => {
                return Err(ApiError::refused(
                    "message_not_delivered",
                    format!(
                        "Message {id} failed ({}); the user never received it.",
                        msg.error_code.unwrap_or(0)
                    ),
                ))
            }
            MessageStatus::Read => {}
            _ => {
                let phone = self
                    .phone(&msg.phone_number_id)
                    .cloned()
                    .ok_or_else(|| unknown_object(msg.phone_number_id.as_str()))?;
                let user = self.user_or_create(wa);
                self.emit_status(&phone, &user, &msg, "read", None);
                if let Some(m) = self.st.messages.get_mut(id) {
                    m.status = MessageStatus::Read;
                }
            }
        }
        Ok(json!({ "message_id": id.as_str(), "status": "read" }))
    }

    pub(crate) fn message_to(&self, wa: &WaId, id: &MessageId) -> ApiResult<OutboundMessage> {
        let msg = self.st.messages.get(id).ok_or_else(|| {
            let why = if self.st.messages_evicted > 0 {
                " (it may have been evicted: the emulator keeps the most recent messages only)"
            } else {
                ""
            };
            ApiError::new(ErrorKind::NotFound, format!("No message {id}{why}."))
        })?;
        if &msg.to != wa {
            return Err(ApiError::refused(
                "not_your_message",
                format!("Message {id} was sent to {}, not to {wa}.", msg.to),
            ));
        }
        Ok(OutboundMessage::clone(msg))
    }

    /// The user writes to the business: opens the service window; `messages` webhook.
    pub fn user_text(
        &mut self,
        wa: &WaId,
        phone_id: Option<&PhoneNumberId>,
        text: &str,
    ) -> ApiResult<Value> {
        let phone = self.phone_or_default(phone_id)?;
        let user = self.user_or_create(wa);
        self.open_window(&phone.id, wa);
        let id = self.ids.message_id(wa);
        let now = self.now();
        let mut m =
            payload::inbound_base(self.seen(&phone.id, &user), id.as_str(), now, None, "text");
        m.insert("text".into(), json!({ "body": text }));
        let value = payload::inbound_message(&phone, self.seen(&phone.id, &user), m);
        self.emit_for_phone(
            &phone,
            "messages",
            "text",
            format!("user:{wa}"),
            None,
            Some(&id),
            value,
        );
        self.st.inbound.push_back((id.clone(), phone.id.clone()));
        while self.st.inbound.len() > 1000 {
            self.st.inbound.pop_front();
        }
        Ok(json!({ "message_id": id.as_str() }))
    }
}

/// 131062 (cloud-api §13): authentication templates go to phone numbers only; their
/// one-tap, zero-tap and copy-code buttons need one. The only type the references name,
/// so every other type (voice_call buttons, permission requests, other templates) takes
/// a BSUID.
fn bsuid_not_supported(bsuid: &str) -> ApiError {
    ApiError::new(
        ErrorKind::BsuidNotSupported,
        format!("Authentication templates cannot be sent to a BSUID recipient ({bsuid}); send them to the user's phone number with `to`."),
    )
}
