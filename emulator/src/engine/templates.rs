//! Message templates: `/{waba-id}/message_templates`, `GET /{template-id}`, review and
//! status changes with their `message_template_status_update` webhooks, and the
//! APPROVED check a template send needs.

use super::{unknown_object, Engine, Timer};
use crate::domain::error::{ApiError, ApiResult, ErrorKind};
use crate::domain::ids::{AppId, TemplateId, WabaId};
use crate::domain::template::Template;
use crate::webhook::payload;
use crate::wire::templates;
use serde_json::{json, Map, Value};

impl Engine {
    pub(super) fn approved_template(
        &self,
        waba: &WabaId,
        name: &str,
        language: &str,
    ) -> ApiResult<Template> {
        let t = self
            .st
            .templates
            .iter()
            .find(|t| &t.waba_id == waba && t.name == name && t.language == language)
            .ok_or_else(|| {
                let langs: Vec<&str> = self
                    .st
                    .templates
                    .iter()
                    .filter(|t| &t.waba_id == waba && t.name == name)
                    .map(|t| t.language.as_str())
                    .collect();
                let hint = if langs.is_empty() {
                    String::new()
                } else {
                    format!(" (it exists in {})", langs.join(", "))
                };
                ApiError::new(
                    ErrorKind::TemplateNotFound,
                    format!("template name ({name}) does not exist in {language}{hint}"),
                )
            })?;
        // PAUSED and DISABLED have their own codes (cloud-api §2.3, §9.2); every other
        // state is "does not exist or not approved".
        let kind = match t.status.as_str() {
            "APPROVED" => return Ok(t.clone()),
            "PAUSED" => ErrorKind::TemplatePaused,
            "DISABLED" => ErrorKind::TemplateDisabled,
            _ => ErrorKind::TemplateNotFound,
        };
        Err(ApiError::new(
            kind,
            format!(
                "template name ({name}) in {language} is {}; only APPROVED templates can be sent",
                t.status
            ),
        ))
    }

    pub fn create_template(
        &mut self,
        app: &AppId,
        waba: &WabaId,
        body: &Map<String, Value>,
    ) -> ApiResult<Value> {
        let waba = self.waba_for(app, waba)?;
        let draft = templates::parse(body)?;
        if self
            .st
            .templates
            .iter()
            .any(|t| t.waba_id == waba && t.name == draft.name && t.language == draft.language)
        {
            return Err(ApiError::new(
                ErrorKind::InvalidParameter,
                format!(
                    "Content in this language already exists: a template named {} exists in {}.",
                    draft.name, draft.language
                ),
            )
            .with_subcode(2388024));
        }
        let now = self.now();
        self.st
            .template_creations
            .retain(|(_, t)| now.saturating_sub(*t) < 3600 * 1000);
        if self
            .st
            .template_creations
            .iter()
            .filter(|(w, _)| w == &waba)
            .count()
            >= 100
        {
            return Err(ApiError::new(
                ErrorKind::RateLimit,
                "At most 100 message templates can be created per WABA per hour.",
            ));
        }
        self.st.template_creations.push((waba.clone(), now));
        let id = self.ids.template_id();
        let immediate = self.behaviour.template_review_secs == 0;
        let t = Template {
            id: id.clone(),
            waba_id: waba.clone(),
            name: draft.name,
            language: draft.language,
            category: draft.category,
            status: if immediate { "APPROVED" } else { "PENDING" }.into(),
            components: draft.components,
            parameter_format: draft.parameter_format,
            voice_call_button: draft.voice_call_button,
            is_permission_request: draft.is_permission_request,
            body_params: draft.body_params,
            created_at_ms: now,
        };
        let response = json!({ "id": id.as_str(), "status": t.status, "category": t.category });
        self.st.templates.push(t);
        if immediate {
            self.set_template_status(&id, "APPROVED", Value::from("NONE"));
        } else {
            self.schedule(
                now.saturating_add(self.behaviour.template_review_secs.saturating_mul(1000)),
                Timer::TemplateReview(id),
            );
        }
        Ok(response)
    }

    pub(crate) fn template_reviewed(&mut self, id: &TemplateId) {
        if self
            .st
            .templates
            .iter()
            .any(|t| &t.id == id && t.status == "PENDING")
        {
            self.set_template_status(id, "APPROVED", Value::from("NONE"));
        }
    }

    /// Sets a template's status and sends `message_template_status_update`.
    pub fn set_template_status(
        &mut self,
        id: &TemplateId,
        status: &str,
        reason: Value,
    ) -> Option<Value> {
        let t = self.st.templates.iter_mut().find(|t| &t.id == id)?;
        t.status = status.to_owned();
        let t = t.clone();
        let mut value = payload::template_status(
            t.id.as_str(),
            &t.name,
            &t.language,
            &t.category,
            status,
            "NONE",
        );
        value["reason"] = reason;
        self.emit(
            &t.waba_id,
            "message_template_status_update",
            &status.to_ascii_lowercase(),
            format!("template:{}", t.id),
            None,
            None,
            value,
            true,
        );
        Some(template_json(&t, &[]))
    }

    pub fn list_templates(
        &self,
        app: &AppId,
        waba: &WabaId,
        query: &[(String, String)],
    ) -> ApiResult<Value> {
        let waba = self.waba_for(app, waba)?;
        let q = |k: &str| {
            query
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let limit = q("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(100)
            .clamp(1, 1000);
        let data: Vec<Value> = self
            .st
            .templates
            .iter()
            .filter(|t| t.waba_id == waba)
            .filter(|t| q("name").is_none_or(|n| t.name.contains(n)))
            .filter(|t| q("status").is_none_or(|s| t.status.eq_ignore_ascii_case(s)))
            .filter(|t| q("language").is_none_or(|l| t.language == l))
            .take(limit)
            .map(|t| template_json(t, &[]))
            .collect();
        Ok(
            json!({ "data": data, "paging": { "cursors": { "before": "MAZDZD", "after": "MjQZD" } } }),
        )
    }

    pub fn get_template(&self, app: &AppId, id: &TemplateId, fields: &[&str]) -> ApiResult<Value> {
        let t = self
            .st
            .templates
            .iter()
            .find(|t| &t.id == id)
            .ok_or_else(|| unknown_object(id.as_str()))?;
        self.waba_for(app, &t.waba_id)?;
        Ok(template_json(t, fields))
    }

    pub fn is_template(&self, id: &str) -> bool {
        self.st.templates.iter().any(|t| t.id.as_str() == id)
    }

    pub fn delete_template(
        &mut self,
        app: &AppId,
        waba: &WabaId,
        name: Option<&str>,
        hsm_id: Option<&str>,
    ) -> ApiResult<Value> {
        let waba = self.waba_for(app, waba)?;
        let name = name.ok_or_else(|| crate::wire::json::missing("name"))?;
        let doomed: Vec<Template> = self
            .st
            .templates
            .iter()
            .filter(|t| {
                t.waba_id == waba && t.name == name && hsm_id.is_none_or(|h| t.id.as_str() == h)
            })
            .cloned()
            .collect();
        if doomed.is_empty() {
            return Err(ApiError::new(
                ErrorKind::InvalidParameter,
                format!("No message template named {name} in WABA {waba}."),
            ));
        }
        for t in &doomed {
            self.set_template_status(&t.id, "PENDING_DELETION", Value::Null);
        }
        self.st
            .templates
            .retain(|t| !doomed.iter().any(|d| d.id == t.id));
        Ok(json!({ "success": true }))
    }
}

fn template_json(t: &Template, fields: &[&str]) -> Value {
    let mut all = Map::new();
    all.insert("name".into(), t.name.clone().into());
    if let Some(f) = &t.parameter_format {
        all.insert("parameter_format".into(), f.to_ascii_uppercase().into());
    }
    all.insert("components".into(), t.components.clone());
    all.insert("language".into(), t.language.clone().into());
    all.insert("status".into(), t.status.clone().into());
    all.insert("category".into(), t.category.clone().into());
    all.insert("id".into(), t.id.as_str().into());
    if fields.is_empty() {
        return Value::Object(all);
    }
    Value::Object(
        all.into_iter()
            .filter(|(k, _)| k == "id" || fields.contains(&k.as_str()))
            .collect(),
    )
}
