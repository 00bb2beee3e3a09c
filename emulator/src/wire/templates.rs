//! `POST /{waba-id}/message_templates` bodies → template drafts.

use super::json::{self, invalid, missing, quote_bounded, Obj};
use crate::domain::error::ApiResult;
use crate::domain::template::{count_placeholders, TemplateCallButton};
use serde_json::{Map, Value};

pub const MAX_NAME: usize = 512;
pub const TTL_CREATE_MIN: i64 = 1_440;
pub const TTL_MAX: i64 = 43_200;
pub const MAX_BUTTONS: usize = 10;
const CATEGORIES: &[&str] = &["AUTHENTICATION", "MARKETING", "UTILITY"];

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateDraft {
    pub name: String,
    pub language: String,
    pub category: String,
    pub components: Value,
    pub parameter_format: Option<String>,
    pub voice_call_button: Option<TemplateCallButton>,
    pub is_permission_request: bool,
    pub body_params: usize,
}

pub fn parse(body: &Map<String, Value>) -> ApiResult<TemplateDraft> {
    let root = Obj::new("", body);
    let name = root.str_req("name")?;
    json::check_chars("name", name, MAX_NAME)?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(invalid(
            "name",
            "may contain only lowercase letters, digits and underscores",
            quote_bounded(name),
        ));
    }
    let language = root.str_req("language")?;
    if language.is_empty() || language.len() > 10 {
        return Err(invalid(
            "language",
            "must be a language code such as en or en_US",
            quote_bounded(language),
        ));
    }
    let category = root
        .enum_opt("category", CATEGORIES, true)?
        .ok_or_else(|| missing("category"))?;
    let parameter_format = root
        .enum_opt("parameter_format", &["named", "positional"], true)?
        .map(|s| s.to_ascii_lowercase());
    let components = root
        .arr_opt("components")?
        .ok_or_else(|| missing("components"))?;
    if components.is_empty() {
        return Err(invalid(
            "components",
            "must contain at least a BODY component",
            "an empty array",
        ));
    }
    let mut draft = TemplateDraft {
        name: name.to_owned(),
        language: language.to_owned(),
        category: category.to_owned(),
        components: Value::Array(components.clone()),
        parameter_format,
        voice_call_button: None,
        is_permission_request: false,
        body_params: 0,
    };
    let mut has_body = false;
    for (i, comp) in components.iter().enumerate() {
        let path = format!("components[{i}]");
        let Value::Object(map) = comp else {
            return Err(json::wrong_type(&path, "an object", comp));
        };
        let c = Obj::new(&path, map);
        match c.str_req("type")?.to_ascii_uppercase().as_str() {
            "BODY" => {
                match c.str_opt("text")? {
                    Some(text) => {
                        json::check_chars(&c.field_path("text"), text, 1024)?;
                        draft.body_params = count_placeholders(text);
                    }
                    // Authentication templates carry no text: WhatsApp writes the body
                    // ("{{1}} is your verification code", with `add_security_recommendation`
                    // and a FOOTER `code_expiration_minutes`), and the code is its one
                    // parameter at send time.
                    None if category == "AUTHENTICATION" => draft.body_params = 1,
                    None => return Err(missing(&c.field_path("text"))),
                }
                has_body = true;
            }
            "HEADER" | "FOOTER" => {
                if let Some(t) = c.str_opt("text")? {
                    json::check_chars(&c.field_path("text"), t, 60)?;
                }
            }
            "CALL_PERMISSION_REQUEST" => draft.is_permission_request = true,
            "BUTTONS" => {
                let buttons = c
                    .arr_opt("buttons")?
                    .ok_or_else(|| missing(&c.field_path("buttons")))?;
                if buttons.is_empty() || buttons.len() > MAX_BUTTONS {
                    return Err(invalid(
                        &c.field_path("buttons"),
                        "must hold 1 to 10 buttons",
                        format!("{} buttons", buttons.len()),
                    ));
                }
                for (j, b) in buttons.iter().enumerate() {
                    let bpath = format!("{path}.buttons[{j}]");
                    let Value::Object(bm) = b else {
                        return Err(json::wrong_type(&bpath, "an object", b));
                    };
                    let bo = Obj::new(&bpath, bm);
                    let btype = bo.str_req("type")?;
                    if btype.eq_ignore_ascii_case("voice_call") {
                        if draft.voice_call_button.is_some() {
                            return Err(invalid(
                                &bo.field_path("type"),
                                "may appear once per template (one voice_call button)",
                                "a second voice_call button",
                            ));
                        }
                        let text = bo
                            .text_opt("text", super::messages::MAX_DISPLAY_TEXT)?
                            .unwrap_or(crate::domain::message::DEFAULT_BUTTON_TEXT);
                        let ttl = bo
                            .int_opt("ttl_minutes", TTL_CREATE_MIN, TTL_MAX)?
                            .map(|t| t as u32);
                        draft.voice_call_button = Some(TemplateCallButton {
                            index: j,
                            text: text.to_owned(),
                            ttl_minutes: ttl,
                        });
                    } else {
                        bo.text_opt("text", 25)?;
                    }
                }
            }
            other => {
                return Err(invalid(
                    &c.field_path("type"),
                    "must be HEADER, BODY, FOOTER, BUTTONS or call_permission_request",
                    quote_bounded(other),
                ))
            }
        }
    }
    if !has_body {
        return Err(missing("components[].BODY"));
    }
    if draft.is_permission_request && category == "AUTHENTICATION" {
        return Err(invalid(
            "category",
            "must be MARKETING or UTILITY for a call_permission_request template",
            "AUTHENTICATION",
        ));
    }
    Ok(draft)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn create(button: Value) -> ApiResult<TemplateDraft> {
        let v = json!({"name":"voice_call_tpl","language":"en_US","category":"MARKETING","components":[
            {"type":"BODY","text":"Need help? {{1}}"},{"type":"BUTTONS","buttons":[button]}]});
        parse(v.as_object().unwrap())
    }

    #[test]
    fn both_button_spellings_are_accepted_and_kept() {
        for spelling in ["voice_call", "VOICE_CALL"] {
            let d = create(json!({"type": spelling, "text": "Call us"})).unwrap();
            assert_eq!(d.voice_call_button.unwrap().text, "Call us");
            assert_eq!(d.components[1]["buttons"][0]["type"], spelling);
            assert_eq!(d.body_params, 1);
        }
    }

    #[test]
    fn creation_ttl_is_1440_to_43200() {
        let ttl = |t: i64| create(json!({"type":"voice_call","ttl_minutes":t}));
        assert!(ttl(1439).is_err());
        assert_eq!(
            ttl(1440).unwrap().voice_call_button.unwrap().ttl_minutes,
            Some(1440)
        );
        assert!(ttl(43200).is_ok());
        let e = ttl(43201).unwrap_err();
        assert_eq!(e.code(), 131009);
        assert!(
            e.details.contains("between 1440 and 43200"),
            "{}",
            e.details
        );
    }

    #[test]
    fn button_text_is_limited_to_20_characters() {
        assert!(create(json!({"type":"voice_call","text":"x".repeat(20)})).is_ok());
        assert!(create(json!({"type":"voice_call","text":"x".repeat(21)})).is_err());
    }

    /// Meta's authentication examples: BODY and FOOTER without text, an OTP button.
    #[test]
    fn authentication_templates_need_no_body_text() {
        let d = parse(json!({"name":"authentication_code_copy_code_button","language":"en_US","category":"AUTHENTICATION",
            "components":[{"type":"BODY","add_security_recommendation":true},{"type":"FOOTER","code_expiration_minutes":10},
                          {"type":"BUTTONS","buttons":[{"type":"OTP","otp_type":"COPY_CODE","text":"Copy Code"}]}]})
            .as_object().unwrap())
        .unwrap();
        assert_eq!(d.body_params, 1);
        assert_eq!(
            d.components[0],
            json!({"type":"BODY","add_security_recommendation":true})
        );
        // Other categories still need the text.
        let e = parse(
            json!({"name":"t","language":"en","category":"UTILITY","components":[{"type":"BODY"}]})
                .as_object()
                .unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.code(), 131008);
        assert!(e.details.contains("components[0].text"), "{}", e.details);
    }

    #[test]
    fn names_follow_the_documented_rules() {
        let named = |n: &str| {
            parse(json!({"name":n,"language":"en","category":"UTILITY","components":[{"type":"BODY","text":"x"}]}).as_object().unwrap())
        };
        assert!(named("ok_name_1").is_ok());
        assert!(named("Bad-Name").is_err());
        assert!(named(&"a".repeat(512)).is_ok());
        assert!(named(&"a".repeat(513)).is_err());
    }
}
