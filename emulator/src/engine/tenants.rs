//! Apps, WABAs and phone numbers: which app a token is, the owner checks every Graph
//! request passes, lookups, numbers added while running, the webhook URL, and 138013 for
//! numbers without business-initiated calling.

use super::Engine;
use crate::domain::error::{ApiError, ApiResult, ErrorKind};
use crate::domain::ids::{AppId, PhoneNumberId, WabaId};
use crate::domain::settings::CallingSettings;
use crate::domain::tenant::{NumberProfile, PhoneNumber};

/// `POST /__emulator/phone_numbers`: a business number to add to the running tenant.
#[derive(Debug, Clone)]
pub struct NewPhoneNumber {
    /// Digits only, in international form (`5511962185237`).
    pub display_phone_number: String,
    /// Derived from the display number when absent (see [`derived_phone_number_id`]).
    pub id: Option<PhoneNumberId>,
    /// The first WABA when absent.
    pub waba_id: Option<WabaId>,
    /// Overrides the country rule, as the TOML config's key of the same name does.
    pub business_initiated_calling: Option<bool>,
    pub profile: NumberProfile,
}

/// The id a number added without one gets: 15 digits derived from its display number
/// alone (FNV-1a, stable across Rust versions), so the same number has the same id on
/// every run, whatever the seed, and adding it draws nothing from the id generator.
pub fn derived_phone_number_id(display_digits: &str) -> PhoneNumberId {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in "phone_number:".bytes().chain(display_digits.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    PhoneNumberId(format!("{}", 100_000_000_000_000 + h % 900_000_000_000_000))
}

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

    /// Adds a business number to the running tenant, until the next reset (which goes
    /// back to the configured numbers). Its business-initiated calling follows the
    /// country rule unless `business_initiated_calling` says otherwise; calling is
    /// ENABLED with the default settings, as for a configured number.
    pub fn add_phone_number(&mut self, new: NewPhoneNumber) -> ApiResult<PhoneNumber> {
        let invalid = |details: String| ApiError::new(ErrorKind::InvalidParameter, details);
        let digits = new.display_phone_number;
        if let Some(p) = self.phone_by_display(&digits) {
            return Err(invalid(format!(
                "display_phone_number {digits} is already phone number {} of this emulator; add another number or use that one.",
                p.id
            )));
        }
        let waba_id = match new.waba_id {
            Some(w) => w,
            None => self
                .st
                .tenants
                .wabas
                .first()
                .map(|w| w.id.clone())
                .ok_or_else(|| invalid("The emulator has no WABA to add a number to.".into()))?,
        };
        if self.app_of_waba(&waba_id).is_none() {
            let known: Vec<&str> = self
                .st
                .tenants
                .wabas
                .iter()
                .map(|w| w.id.as_str())
                .collect();
            return Err(invalid(format!(
                "waba_id {waba_id} is not a WABA of this emulator; its WABAs: {}.",
                known.join(", ")
            )));
        }
        let explicit = new.id.is_some();
        let id = new.id.unwrap_or_else(|| derived_phone_number_id(&digits));
        if let Some(p) = self.phone(&id) {
            return Err(invalid(format!(
                "id {id} is already the id of phone number {}{}.",
                p.display_phone_number,
                if explicit {
                    ""
                } else {
                    " (derived from the display number); give an \"id\""
                }
            )));
        }
        let phone = PhoneNumber {
            id,
            waba_id,
            display_phone_number: digits,
            verified_name: "wa-emulator".into(),
            calling: CallingSettings::default(),
            business_initiated_calling: new.business_initiated_calling,
            profile: new.profile,
        };
        self.st.tenants.phone_numbers.push(phone.clone());
        Ok(phone)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tenant::{Behaviour, Tenants};
    use crate::engine::ClockMode;

    fn engine() -> Engine {
        Engine::new(
            Tenants::default(),
            Behaviour::default(),
            1,
            ClockMode::Virtual,
            0,
        )
    }

    fn new(display: &str) -> NewPhoneNumber {
        NewPhoneNumber {
            display_phone_number: display.into(),
            id: None,
            waba_id: None,
            business_initiated_calling: None,
            profile: NumberProfile::Production,
        }
    }

    #[test]
    fn an_added_number_follows_the_country_rule_until_the_next_reset() {
        let mut e = engine();
        let br = e.add_phone_number(new("5511962185237")).unwrap();
        assert_eq!(br.id, derived_phone_number_id("5511962185237"));
        assert_eq!(br.id.as_str().len(), 15);
        assert_eq!(br.waba_id.as_str(), "102290129340398");
        assert!(br.business_initiated_calling());
        let us = e.add_phone_number(new("15550001111")).unwrap();
        assert!(!us.business_initiated_calling());
        assert!(e.require_business_initiated(&us, "no call").is_err());
        assert_eq!(e.phone(&br.id).map(|p| p.id.clone()), Some(br.id.clone()));
        e.reset();
        assert!(e.phone(&br.id).is_none());
        assert_eq!(e.st.tenants.phone_numbers.len(), 2);
    }

    #[test]
    fn a_number_or_id_already_there_and_an_unknown_waba_are_refused() {
        let mut e = engine();
        let err = e.add_phone_number(new("447700900461")).unwrap_err();
        assert!(
            err.details.contains("already phone number 110972043181256"),
            "{}",
            err.details
        );
        let mut dup = new("5511962185237");
        dup.id = Some(PhoneNumberId::from("106540352242922"));
        let err = e.add_phone_number(dup).unwrap_err();
        assert!(
            err.details
                .contains("already the id of phone number 15550783881"),
            "{}",
            err.details
        );
        let mut other = new("5511962185237");
        other.waba_id = Some(WabaId::from("1"));
        let err = e.add_phone_number(other).unwrap_err();
        assert!(
            err.details.contains("its WABAs: 102290129340398"),
            "{}",
            err.details
        );
        assert_eq!(e.st.tenants.phone_numbers.len(), 2);
    }
}
