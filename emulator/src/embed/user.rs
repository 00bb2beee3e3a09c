//! The simulated WhatsApp user of an [`Emulator`]: who they are ([`UserSpec`]) and what
//! they do ([`UserRef`]), each action through `/__emulator/users/{wa_id}/…`.

use super::{Emulator, Error};
use crate::domain::ids::{CallId, MessageId, PhoneNumberId, WaId};
use crate::domain::user::{Platform, User};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// A simulated WhatsApp user of an [`Emulator`] (see [`Emulator::user`]).
#[derive(Debug, Clone)]
pub struct UserRef<'a> {
    pub(super) emu: &'a Emulator,
    pub(super) wa_id: WaId,
}

impl UserRef<'_> {
    pub fn wa_id(&self) -> &WaId {
        &self.wa_id
    }

    /// Creates the user, or changes them: client platform and version, profile name, …
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), wa_emulator::Error> {
    /// use wa_emulator::domain::user::Platform;
    /// use wa_emulator::embed::UserSpec;
    ///
    /// let emu = wa_emulator::Emulator::start().await;
    /// let ana = emu.user("16315551234");
    /// let user = ana.set(UserSpec::new().platform(Platform::Ios).version("2.25.26").name("Ana")).await?;
    /// assert_eq!(user.name, "Ana");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn set(&self, spec: UserSpec) -> Result<User, Error> {
        let mut body = spec.fields;
        body.insert("wa_id".into(), self.wa_id.as_str().into());
        self.emu
            .admin_as("POST", "/users", Some(&Value::Object(body)))
            .await
    }

    async fn act<T: DeserializeOwned>(&self, action: &str, body: Value) -> Result<T, Error> {
        let path = format!(
            "/users/{}/{action}",
            crate::wire::url::percent_encode(self.wa_id.as_str())
        );
        self.emu.admin_as("POST", &path, Some(&body)).await
    }

    /// The user writes to the first business number: a `messages` webhook, and the 24 h
    /// service window opens.
    pub async fn send_text(&self, text: &str) -> Result<MessageId, Error> {
        let a: MessageAnswer = self.act("messages", json!({ "text": text })).await?;
        Ok(a.message_id)
    }

    /// The user writes to this business number.
    pub async fn send_text_to(
        &self,
        phone: &PhoneNumberId,
        text: &str,
    ) -> Result<MessageId, Error> {
        let body = json!({ "text": text, "phone_number_id": phone });
        let a: MessageAnswer = self.act("messages", body).await?;
        Ok(a.message_id)
    }

    /// The user reads a message the business sent (a `read` status webhook).
    pub async fn read(&self, message: &MessageId) -> Result<(), Error> {
        let _: Value = self.act("read", json!({ "message_id": message })).await?;
        Ok(())
    }

    /// The user taps the call button of a message: the call it starts, or a refusal whose
    /// [`Error::reason`] says why none did (`button_expired`, `desktop_client`, …).
    pub async fn tap(&self, message: &MessageId) -> Result<CallId, Error> {
        let a: CallAnswer = self.act("tap", json!({ "message_id": message })).await?;
        Ok(a.call_id)
    }

    /// The user opens a `wa.me/call/<number>[?biz_payload=…]` link.
    pub async fn open_link(&self, url: &str) -> Result<CallId, Error> {
        let a: CallAnswer = self.act("open-link", json!({ "url": url })).await?;
        Ok(a.call_id)
    }

    /// The user calls the first business number from the chat's call icon (no payload).
    pub async fn call(&self) -> Result<CallId, Error> {
        let a: CallAnswer = self.act("call", json!({})).await?;
        Ok(a.call_id)
    }

    /// The user calls this business number from the chat's call icon.
    pub async fn call_number(&self, phone: &PhoneNumberId) -> Result<CallId, Error> {
        let a: CallAnswer = self
            .act("call", json!({ "phone_number_id": phone }))
            .await?;
        Ok(a.call_id)
    }

    /// The user answers a call permission request, or changes the permission from the
    /// business profile: the id of the reply message.
    pub async fn reply_to_permission(&self, reply: PermissionReply) -> Result<MessageId, Error> {
        let mut body = json!({
            "response": match reply.response {
                PermissionResponse::Accept => "accept",
                PermissionResponse::Reject => "reject",
            },
            "permanent": reply.permanent,
        });
        if let Some(m) = &reply.message_id {
            body["message_id"] = json!(m);
        }
        if let Some(p) = &reply.phone_number_id {
            body["phone_number_id"] = json!(p);
        }
        let a: MessageAnswer = self.act("permission-reply", body).await?;
        Ok(a.message_id)
    }
}

/// What to set on a user ([`UserRef::set`]); unset fields stay as they are (a new user
/// starts as an Android 2.26 client).
#[derive(Debug, Clone, Default)]
pub struct UserSpec {
    fields: Map<String, Value>,
}

impl UserSpec {
    pub fn new() -> Self {
        Self::default()
    }

    fn with(mut self, key: &str, value: Value) -> Self {
        self.fields.insert(key.into(), value);
        self
    }

    /// The WhatsApp client: Android, iOS, the Business apps, desktop or web.
    pub fn platform(self, platform: Platform) -> Self {
        self.with("platform", platform.name().into())
    }

    /// The client version, `"2.25.27"`: payloads reach clients from 2.25.27 on.
    pub fn version(self, version: &str) -> Self {
        self.with("version", version.into())
    }

    /// The profile name businesses see.
    pub fn name(self, name: &str) -> Self {
        self.with("name", name.into())
    }

    /// Whether the 24 h service window is open.
    pub fn window_open(self, open: bool) -> Self {
        self.with("window_open", open.into())
    }

    /// A username (which hides the number from businesses unless told otherwise).
    pub fn username(self, username: &str) -> Self {
        self.with("username", username.into())
    }

    /// A parent BSUID, `US.ENT.…`.
    pub fn parent_user_id(self, id: &str) -> Self {
        self.with("parent_user_id", id.into())
    }

    /// Whether a user with a username keeps their number from businesses.
    pub fn hide_phone_number(self, hide: bool) -> Self {
        self.with("hide_phone_number", hide.into())
    }
}

/// Accept or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionResponse {
    Accept,
    Reject,
}

/// A user's answer to a call permission request ([`UserRef::reply_to_permission`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionReply {
    pub response: PermissionResponse,
    /// Permanent instead of 7 days.
    pub permanent: bool,
    /// The request answered; `None` for a change made from the business profile.
    pub message_id: Option<MessageId>,
    /// The business number, for a change made from its profile.
    pub phone_number_id: Option<PhoneNumberId>,
}

impl PermissionReply {
    /// Allows the calls the request (`message_id`) asked for, for 7 days.
    pub fn accept(request: &MessageId) -> Self {
        Self {
            response: PermissionResponse::Accept,
            permanent: false,
            message_id: Some(request.clone()),
            phone_number_id: None,
        }
    }

    /// Refuses the request.
    pub fn reject(request: &MessageId) -> Self {
        Self {
            response: PermissionResponse::Reject,
            ..Self::accept(request)
        }
    }

    /// A change made from the business number's profile, without a request.
    pub fn from_profile(response: PermissionResponse, phone: &PhoneNumberId) -> Self {
        Self {
            response,
            permanent: false,
            message_id: None,
            phone_number_id: Some(phone.clone()),
        }
    }

    /// Permanent instead of for 7 days.
    pub fn permanent(mut self) -> Self {
        self.permanent = true;
        self
    }
}

#[derive(Deserialize)]
struct CallAnswer {
    call_id: CallId,
}

#[derive(Deserialize)]
struct MessageAnswer {
    message_id: MessageId,
}
