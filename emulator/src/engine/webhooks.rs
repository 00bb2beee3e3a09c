//! Webhook emission: a `value` becomes a signed envelope in the outbox of the app
//! subscribed to the WABA, with the retry horizon of its field.

use super::Engine;
use crate::domain::ids::{CallId, MessageId, WabaId};
use crate::domain::tenant::PhoneNumber;
use crate::webhook::payload;
use serde_json::Value;

impl Engine {
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
        self.emit_value(
            waba, field, event, order_key, call_id, message_id, &value, entry_time,
        );
    }

    /// [`Engine::emit`] of any serialisable value: typed values (the status webhooks of
    /// every send) go to text without a JSON tree.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn emit_value<T: serde::Serialize + ?Sized>(
        &mut self,
        waba: &WabaId,
        field: &str,
        event: &str,
        order_key: String,
        call_id: Option<&CallId>,
        message_id: Option<&MessageId>,
        value: &T,
        entry_time: bool,
    ) {
        // Nothing is written for a WABA no app subscribes to.
        if !self.st.tenants.wabas.iter().any(|w| &w.id == waba) {
            return;
        }
        let now = self.st.now_ms;
        let (mut body, signature) = self.st.outbox.buffers();
        payload::envelope_into(
            &mut body,
            waba.as_str(),
            field,
            value,
            entry_time.then_some(now),
        );
        let raw = String::from_utf8(body).expect("the ASCII formatter writes ASCII");
        self.emit_text(
            waba, field, event, &order_key, call_id, message_id, raw, signature,
        );
    }

    /// Queues a webhook whose body is already written (see [`payload::envelope_text`]);
    /// `signature` is a buffer the signature is written into (see
    /// [`crate::webhook::outbox::Outbox::buffers`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn emit_text(
        &mut self,
        waba: &WabaId,
        field: &str,
        event: &str,
        order_key: &str,
        call_id: Option<&CallId>,
        message_id: Option<&MessageId>,
        raw: String,
        mut signature: String,
    ) {
        let now = self.st.now_ms;
        let tenants = &self.st.tenants;
        let Some(app) = tenants
            .wabas
            .iter()
            .find(|w| &w.id == waba)
            .map(|w| &w.app_id)
        else {
            return;
        };
        let Some((secret, has_url)) = tenants
            .apps
            .iter()
            .find(|a| &a.id == app)
            .map(|a| (a.secret.as_bytes(), a.webhook_url.is_some()))
        else {
            return;
        };
        self.st
            .outbox
            .signer(secret)
            .sign_into(raw.as_bytes(), &mut signature);
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
            call_id.map(CallId::as_str),
            message_id.map(MessageId::as_str),
            raw,
            signature,
            now,
            horizon,
            has_url,
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
}
