//! Apps, WABAs and phone numbers: which app a token is, the owner checks every Graph
//! request passes, lookups, the webhook URL, and 138013 for numbers without
//! business-initiated calling.

use super::Engine;
use crate::domain::error::{ApiError, ApiResult, ErrorKind};
use crate::domain::ids::{AppId, PhoneNumberId, WabaId};
use crate::domain::tenant::PhoneNumber;

impl Engine {
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

    pub(super) fn phone_mut(&mut self, id: &PhoneNumberId) -> Option<&mut PhoneNumber> {
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
