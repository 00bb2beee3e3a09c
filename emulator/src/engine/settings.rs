//! Calling settings: `GET` and `POST /{phone-number-id}/settings`, and the
//! `account_settings_update` webhook a change Meta announces sends.

use super::Engine;
use crate::domain::error::ApiResult;
use crate::domain::ids::{AppId, PhoneNumberId};
use crate::webhook::payload;
use crate::wire::settings;
use serde_json::{json, Map, Value};

impl Engine {
    pub fn get_settings(
        &self,
        app: &AppId,
        phone_id: &PhoneNumberId,
        include_sip_credentials: bool,
    ) -> ApiResult<Value> {
        let phone = self.phone_for(app, phone_id)?;
        Ok(settings::render(&phone.calling, include_sip_credentials))
    }

    pub fn post_settings(
        &mut self,
        app: &AppId,
        phone_id: &PhoneNumberId,
        body: &Map<String, Value>,
    ) -> ApiResult<Value> {
        let phone = self.phone_for(app, phone_id)?;
        let now = self.now();
        let ids = &mut self.ids;
        let next = settings::apply(&phone.calling, body, now, app.as_str(), &mut || {
            ids.alnum(24)
        })?;
        let announced = settings::is_announced_change(&phone.calling, &next);
        if let Some(p) = self.phone_mut(phone_id) {
            p.calling = next.clone();
        }
        if announced {
            let value = payload::settings_update(&phone, now, settings::render_update(&next));
            self.emit_for_phone(
                &phone,
                "account_settings_update",
                "phone_number_settings",
                format!("settings:{}", phone.id),
                None,
                None,
                value,
            );
        }
        Ok(json!({ "success": true }))
    }
}
