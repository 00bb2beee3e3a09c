//! `POST /{phone-number-id}/messages` bodies → validated send requests.
//!
//! Only what can be checked from the body alone happens here (shape, types, documented
//! limits). Checks against state (templates, windows, permissions) are the core's.

use super::json::{self, invalid, missing, quote_bounded, Obj};
use crate::domain::error::{ApiError, ApiResult, ErrorKind};
use crate::domain::ids::{calling_code, MessageId, WaId};
use crate::domain::message::{CallButton, DEFAULT_BUTTON_TEXT, DEFAULT_TTL_MINUTES};
use crate::domain::user::is_bsuid;
use serde_json::{Map, Value};

pub const MAX_DISPLAY_TEXT: usize = 20;
pub const MAX_PAYLOAD: usize = 512;
pub const MAX_TEXT_BODY: usize = 4096;
pub const MAX_INTERACTIVE_BODY: usize = 1024;
pub const TTL_SEND_MIN: i64 = 1;
pub const TTL_MAX: i64 = 43_200;

/// Message types Graph documents; accepted and recorded without special behaviour.
const OTHER_TYPES: &[&str] = &[
    "audio", "contacts", "document", "image", "location", "reaction", "sticker", "video",
];
const OTHER_INTERACTIVE: &[&str] = &[
    "button",
    "list",
    "cta_url",
    "flow",
    "product",
    "product_list",
    "catalog_message",
    "location_request_message",
    "address_message",
    "order_details",
    "order_status",
];

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateButtonParams {
    pub index: Option<usize>,
    pub ttl_minutes: Option<u32>,
    pub payload: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SendKind {
    Text,
    VoiceCall(CallButton),
    PermissionRequest,
    Template {
        name: String,
        language: String,
        body_params: Option<usize>,
        voice_call: Option<TemplateButtonParams>,
    },
    /// Another documented type, recorded as is.
    Other(String),
}

/// Whom a send or a business-initiated call is for, as the request names them.
#[derive(Debug, Clone, PartialEq)]
pub enum Recipient {
    /// `to`: a phone number as written (`input`), its digits, and whether it was written
    /// with a leading `+` (international) or without (see [`wa_id_for_to`]).
    Phone {
        input: String,
        digits: String,
        international: bool,
    },
    /// `recipient` without `to`: a BSUID or parent BSUID (cloud-api §13).
    Bsuid(String),
}

impl Recipient {
    /// What the request wrote, echoed as `contacts[].input`.
    pub fn input(&self) -> &str {
        match self {
            Recipient::Phone { input, .. } => input,
            Recipient::Bsuid(b) => b,
        }
    }

    pub fn is_bsuid(&self) -> bool {
        matches!(self, Recipient::Bsuid(_))
    }
}

/// `to` or `recipient`, as `/messages` and `/calls` `connect` take them: `to` wins when
/// both are given (the `recipient` then only has to be a string).
pub fn recipient(root: &Obj<'_>) -> ApiResult<Recipient> {
    match (root.str_opt("to")?, root.str_opt("recipient")?) {
        (Some(to), _) => Ok(Recipient::Phone {
            input: to.to_owned(),
            digits: json::phone_digits("to", to)?,
            international: to.trim_start().starts_with('+'),
        }),
        (None, Some(r)) if is_bsuid(r) => Ok(Recipient::Bsuid(r.to_owned())),
        (None, Some(r)) => Err(invalid(
            "recipient",
            "must be a BSUID or parent BSUID (a country code, a dot and letters or digits, such as US.13491208655302741918); send to a phone number with `to`",
            quote_bounded(r),
        )),
        (None, None) => Err(missing("to")),
    }
}

/// The `wa_id` a `to` reaches when sent from the business number `business` (display
/// digits), cloud-api §0. Written with `+`, the digits are the number. Without `+`, the
/// business number's calling code is prepended unless the digits already start with it
/// (Meta's examples send `14085551234` from +1 numbers), or always with
/// `always_prepend` (the literal reading; `Behaviour::always_prepend_calling_code`). A
/// business number whose calling code the emulator does not know prepends nothing.
pub fn wa_id_for_to(
    digits: &str,
    international: bool,
    business: &str,
    always_prepend: bool,
) -> ApiResult<WaId> {
    let code = match calling_code(business) {
        Some(code) if !international && (always_prepend || !digits.starts_with(code)) => code,
        _ => return Ok(WaId(digits.to_owned())),
    };
    let full = format!("{code}{digits}");
    if full.len() > 15 {
        return Err(invalid(
            "to",
            &format!("has no +, so the sending number's calling code +{code} is prepended, and then it has more than 15 digits (write the number in international format with +)"),
            quote_bounded(digits),
        ));
    }
    Ok(WaId(full))
}

#[derive(Debug, Clone, PartialEq)]
pub struct SendRequest {
    /// Whom the request names (`contacts[].input` echoes it).
    pub recipient: Recipient,
    /// The user it reaches.
    pub to: WaId,
    pub kind: SendKind,
    pub biz_opaque_callback_data: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MessagesBody {
    Send(SendRequest),
    /// `{"status":"read","message_id":…}`: the business marks an inbound message read.
    MarkRead(MessageId),
}

/// `resolve` turns the recipient into the user it reaches (it needs the sending number and
/// the emulator's users); it runs once the body's shape up to the recipient is checked.
pub fn parse(
    body: &Map<String, Value>,
    resolve: impl FnOnce(&Recipient) -> ApiResult<WaId>,
) -> ApiResult<MessagesBody> {
    let root = Obj::new("", body);
    json::require_whatsapp(&root)?;
    if root.str_opt("status")? == Some("read") {
        return Ok(MessagesBody::MarkRead(MessageId(
            root.str_req("message_id")?.to_owned(),
        )));
    }
    match root.str_opt("recipient_type")? {
        None | Some("individual") => {}
        Some(other) => {
            return Err(invalid(
                "recipient_type",
                "must be \"individual\"",
                quote_bounded(other),
            ))
        }
    }
    let recipient = recipient(&root)?;
    let to = resolve(&recipient)?;
    let biz_opaque_callback_data = root
        .text_opt("biz_opaque_callback_data", MAX_PAYLOAD)?
        .map(str::to_owned);
    let ty = root.str_opt("type")?.unwrap_or("text");
    let kind = match ty {
        "text" => {
            let text = Obj::new("text", root.obj_req("text")?);
            let body = text.str_req("body")?;
            json::check_chars("text.body", body, MAX_TEXT_BODY)?;
            text.bool_opt("preview_url")?;
            SendKind::Text
        }
        "interactive" => parse_interactive(&Obj::new("interactive", root.obj_req("interactive")?))?,
        "template" => parse_template(&Obj::new("template", root.obj_req("template")?))?,
        "contacts" => {
            // An array of contact cards, unlike every other type's single object.
            let cards = match root.get("contacts") {
                Some(Value::Array(cards)) => cards,
                Some(other) => {
                    return Err(json::wrong_type(
                        "contacts",
                        "an array of contact objects ([{\"name\": {\"formatted_name\": …}, \"phones\": […]}])",
                        other,
                    ))
                }
                None => return Err(missing("contacts")),
            };
            if cards.is_empty() {
                return Err(invalid("contacts", "must hold at least one contact", "an empty array"));
            }
            for (i, card) in cards.iter().enumerate() {
                if !card.is_object() {
                    return Err(json::wrong_type(&format!("contacts[{i}]"), "a contact object", card));
                }
            }
            SendKind::Other("contacts".into())
        }
        t if OTHER_TYPES.contains(&t) => {
            root.obj_req(t)?;
            SendKind::Other(t.to_owned())
        }
        t => {
            return Err(ApiError::new(
                ErrorKind::UnsupportedMessageType,
                format!("Message type {} is not supported. Supported types: text, interactive, template, {}.", quote_bounded(t), OTHER_TYPES.join(", ")),
            ))
        }
    };
    Ok(MessagesBody::Send(SendRequest {
        recipient,
        to,
        kind,
        biz_opaque_callback_data,
    }))
}

/// What the user sees of a message, for the admin API and the inspector.
pub fn visible_text(body: &Map<String, Value>) -> Option<String> {
    let get = |path: &[&str]| {
        let mut v = body.get(path[0])?;
        for k in &path[1..] {
            v = v.get(*k)?;
        }
        v.as_str().map(|s| s.chars().take(1024).collect::<String>())
    };
    get(&["text", "body"])
        .or_else(|| get(&["interactive", "body", "text"]))
        .or_else(|| get(&["template", "name"]))
}

fn parse_interactive(i: &Obj<'_>) -> ApiResult<SendKind> {
    let ty = i.str_req("type")?;
    if let Some(body) = i.obj_opt("body")? {
        Obj::new("interactive.body", body).text_opt("text", MAX_INTERACTIVE_BODY)?;
    }
    match ty {
        "voice_call" => {
            let action = Obj::new("interactive.action", i.obj_req("action")?);
            match action.str_opt("name")? {
                Some("voice_call") => {}
                Some(other) => {
                    return Err(invalid(
                        "interactive.action.name",
                        "must be \"voice_call\"",
                        quote_bounded(other),
                    ))
                }
                None => return Err(missing("interactive.action.name")),
            }
            let mut button = CallButton {
                display_text: DEFAULT_BUTTON_TEXT.to_owned(),
                ttl_minutes: DEFAULT_TTL_MINUTES,
                payload: None,
            };
            if let Some(params) = action.obj_opt("parameters")? {
                let p = Obj::new("interactive.action.parameters", params);
                if let Some(t) = p.text_opt("display_text", MAX_DISPLAY_TEXT)? {
                    if t.trim().is_empty() {
                        return Err(invalid(
                            &p.field_path("display_text"),
                            "must not be empty",
                            "\"\"",
                        ));
                    }
                    button.display_text = t.to_owned();
                }
                if let Some(ttl) = p.int_opt("ttl_minutes", TTL_SEND_MIN, TTL_MAX)? {
                    button.ttl_minutes = ttl as u32;
                }
                button.payload = p.text_opt("payload", MAX_PAYLOAD)?.map(str::to_owned);
            }
            Ok(SendKind::VoiceCall(button))
        }
        "call_permission_request" => {
            for unsupported in ["header", "footer"] {
                if i.has(unsupported) {
                    return Err(invalid(
                        &i.field_path(unsupported),
                        "is not supported on free-form call_permission_request messages (only body)",
                        "a value",
                    ));
                }
            }
            let action = Obj::new("interactive.action", i.obj_req("action")?);
            match action.str_opt("name")? {
                Some("call_permission_request") => {}
                Some(other) => {
                    return Err(invalid(
                        "interactive.action.name",
                        "must be \"call_permission_request\"",
                        quote_bounded(other),
                    ))
                }
                None => return Err(missing("interactive.action.name")),
            }
            Ok(SendKind::PermissionRequest)
        }
        t if OTHER_INTERACTIVE.contains(&t) => Ok(SendKind::Other(format!("interactive/{t}"))),
        t => Err(invalid(
            "interactive.type",
            &format!(
                "must be one of voice_call, call_permission_request, {}",
                OTHER_INTERACTIVE.join(", ")
            ),
            quote_bounded(t),
        )),
    }
}

fn parse_template(t: &Obj<'_>) -> ApiResult<SendKind> {
    let name = t.str_req("name")?.to_owned();
    let language = match t.get("language") {
        Some(Value::Object(l)) => Obj::new("template.language", l).str_req("code")?.to_owned(),
        Some(Value::String(code)) => code.clone(),
        Some(v) => {
            return Err(json::wrong_type(
                "template.language",
                "an object with a code",
                v,
            ))
        }
        None => return Err(missing("template.language")),
    };
    let mut body_params = None;
    let mut voice_call = None;
    for (i, comp) in t
        .arr_opt("components")?
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let path = format!("template.components[{i}]");
        let Value::Object(map) = comp else {
            return Err(json::wrong_type(&path, "an object", comp));
        };
        let c = Obj::new(&path, map);
        let ctype = c.str_req("type")?.to_ascii_lowercase();
        match ctype.as_str() {
            "body" => body_params = Some(c.arr_opt("parameters")?.map_or(0, Vec::len)),
            "button" => {
                let sub = c.str_req("sub_type")?.to_ascii_lowercase();
                if sub != "voice_call" {
                    continue;
                }
                let index = match c.get("index") {
                    None => None,
                    Some(v) => {
                        let n = json::integral(v).filter(|n| (0..10).contains(n));
                        Some(n.ok_or_else(|| {
                            invalid(
                                &c.field_path("index"),
                                "must be a button position from 0 to 9",
                                json::describe(v),
                            )
                        })? as usize)
                    }
                };
                let mut params = TemplateButtonParams {
                    index,
                    ttl_minutes: None,
                    payload: None,
                };
                for (j, p) in c
                    .arr_opt("parameters")?
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    let ppath = format!("{path}.parameters[{j}]");
                    let Value::Object(pm) = p else {
                        return Err(json::wrong_type(&ppath, "an object", p));
                    };
                    let po = Obj::new(&ppath, pm);
                    match po.str_req("type")? {
                        "ttl_minutes" => {
                            let ttl = po
                                .int_opt("ttl_minutes", TTL_SEND_MIN, TTL_MAX)?
                                .ok_or_else(|| missing(&po.field_path("ttl_minutes")))?;
                            params.ttl_minutes = Some(ttl as u32);
                        }
                        "payload" => {
                            let payload = po
                                .text_opt("payload", MAX_PAYLOAD)?
                                .ok_or_else(|| missing(&po.field_path("payload")))?;
                            params.payload = Some(payload.to_owned());
                        }
                        other => {
                            return Err(invalid(
                                &po.field_path("type"),
                                "must be ttl_minutes or payload for a voice_call button",
                                quote_bounded(other),
                            ))
                        }
                    }
                }
                voice_call = Some(params);
            }
            _ => {}
        }
    }
    Ok(SendKind::Template {
        name,
        language,
        body_params,
        voice_call,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Sent from the default +1 number; BSUIDs are not resolved here.
    fn send(v: Value) -> ApiResult<SendRequest> {
        let resolve = |r: &Recipient| match r {
            Recipient::Phone {
                digits,
                international,
                ..
            } => wa_id_for_to(digits, *international, "15550783881", false),
            Recipient::Bsuid(b) => Ok(WaId(format!("bsuid:{b}"))),
        };
        match parse(v.as_object().unwrap(), resolve)? {
            MessagesBody::Send(s) => Ok(s),
            other => panic!("not a send: {other:?}"),
        }
    }

    fn voice_call(params: Value) -> Value {
        json!({"messaging_product":"whatsapp","to":"16315551234","type":"interactive",
               "interactive":{"type":"voice_call","body":{"text":"Call us"},"action":{"name":"voice_call","parameters":params}}})
    }

    fn err(v: Value) -> (u32, String) {
        let e = send(v).unwrap_err();
        (e.code(), e.details)
    }

    #[test]
    fn voice_call_defaults_apply() {
        let s = send(voice_call(json!({}))).unwrap();
        assert_eq!(
            s.kind,
            SendKind::VoiceCall(CallButton {
                display_text: "Call Now".into(),
                ttl_minutes: 10080,
                payload: None
            })
        );
        assert_eq!(s.to, WaId::from("16315551234"));
    }

    /// Every documented limit of the voice_call button, at and across each boundary.
    #[test]
    fn voice_call_limits_table() {
        let ok = |p: Value| send(voice_call(p)).is_ok();
        let rows: Vec<(Value, bool)> = vec![
            (json!({"display_text": "a".repeat(20)}), true),
            (json!({"display_text": "a".repeat(21)}), false),
            (json!({"display_text": "é".repeat(20)}), true),
            (json!({"display_text": "📞".repeat(20)}), true),
            (json!({"display_text": "📞".repeat(21)}), false),
            (json!({"ttl_minutes": 0}), false),
            (json!({"ttl_minutes": 1}), true),
            (json!({"ttl_minutes": 43200}), true),
            (json!({"ttl_minutes": 43201}), false),
            (json!({"ttl_minutes": 4320.0}), true),
            (json!({"ttl_minutes": 4320.5}), false),
            (json!({"payload": "p".repeat(512)}), true),
            (json!({"payload": "p".repeat(513)}), false),
            (json!({"payload": "ü".repeat(512)}), true),
        ];
        for (params, expected) in rows {
            assert_eq!(ok(params.clone()), expected, "{params}");
        }
    }

    #[test]
    fn limit_errors_name_field_limit_and_value() {
        let (code, details) = err(voice_call(json!({"display_text": "a".repeat(21)})));
        assert_eq!(code, 131009);
        assert!(details.contains("interactive.action.parameters.display_text is limited to 20 characters; got 21 characters"), "{details}");
        let (code, details) = err(voice_call(json!({"ttl_minutes": 0})));
        assert_eq!(code, 131009);
        assert!(
            details.contains("ttl_minutes must be between 1 and 43200; got 0"),
            "{details}"
        );
    }

    #[test]
    fn missing_and_unknown_fields_get_their_codes() {
        assert_eq!(
            err(json!({"to":"16315551234","type":"text","text":{"body":"x"}})).0,
            131008
        );
        assert_eq!(
            err(json!({"messaging_product":"whatsapp","type":"text","text":{"body":"x"}})).0,
            131008
        );
        assert_eq!(
            err(json!({"messaging_product":"whatsapp","to":"16315551234","type":"hologram"})).0,
            131051
        );
        assert_eq!(
            err(json!({"messaging_product":"whatsapp","to":"16315551234","type":"text"})).0,
            131008
        );
        assert_eq!(err(json!({"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{"body":7}})).0, 100);
        let (code, d) = err(
            json!({"messaging_product":"whatsapp","to":"1","type":"interactive",
            "interactive":{"type":"voice_call","action":{"name":"call"}}}),
        );
        assert_eq!(code, 131009, "{d}");
    }

    #[test]
    fn what_real_clients_send_is_accepted() {
        // No recipient_type, unknown extra fields, template button with string index, no parameters.
        let s = send(json!({"messaging_product":"whatsapp","to":"+1 631-555-1234","type":"template","extra":1,
            "template":{"name":"t","language":{"code":"en_US","policy":"deterministic"},
            "components":[{"type":"button","sub_type":"voice_call","index":"0"}]}}))
        .unwrap();
        assert!(
            matches!(s.kind, SendKind::Template { ref voice_call, .. } if voice_call.as_ref().unwrap().index == Some(0))
        );
        let s = send(json!({"messaging_product":"whatsapp","to":"16315551234","type":"interactive",
            "interactive":{"type":"call_permission_request","action":{"name":"call_permission_request","parameters":{"x":1}}}}))
        .unwrap();
        assert_eq!(s.kind, SendKind::PermissionRequest);
    }

    #[test]
    fn template_button_parameters_are_checked() {
        let tpl = |params: Value| {
            json!({"messaging_product":"whatsapp","to":"16315551234","type":"template",
                "template":{"name":"t","language":{"code":"en"},"components":[{"type":"button","sub_type":"voice_call","parameters":params}]}})
        };
        assert!(send(tpl(
            json!([{"type":"ttl_minutes","ttl_minutes":100},{"type":"payload","payload":"p"}])
        ))
        .is_ok());
        assert_eq!(
            err(tpl(json!([{"type":"ttl_minutes","ttl_minutes":43201}]))).0,
            131009
        );
        assert_eq!(
            err(tpl(json!([{"type":"payload","payload":"x".repeat(513)}]))).0,
            131009
        );
        assert_eq!(err(tpl(json!([{"type":"color","color":"red"}]))).0, 131009);
        assert_eq!(err(tpl(json!([{"type":"payload"}]))).0, 131008);
    }

    /// cloud-api §0: `+` takes the number as is; without it the sending number's calling
    /// code is prepended unless the digits already start with it (or always, literally).
    #[test]
    fn to_without_plus_gets_the_business_calling_code() {
        let us = "15550783881";
        let uk = "447700900461";
        // (to digits, written with +, business, always prepend, wa_id)
        let rows = [
            ("14085551234", false, us, false, "14085551234"),
            ("6315551234", false, us, false, "16315551234"),
            ("16315551234", false, uk, false, "4416315551234"),
            ("447700900123", false, uk, false, "447700900123"),
            ("16315551234", true, uk, false, "16315551234"),
            ("6315551234", true, us, false, "6315551234"),
            ("14085551234", false, us, true, "114085551234"),
            ("447700900123", false, uk, true, "44447700900123"),
            ("14085551234", true, us, true, "14085551234"),
            // A business number whose calling code is unknown prepends nothing.
            ("6315551234", false, "8801712345678", false, "6315551234"),
        ];
        for (digits, plus, business, always, expected) in rows {
            assert_eq!(
                wa_id_for_to(digits, plus, business, always).unwrap(),
                WaId::from(expected),
                "{digits} plus={plus} from {business} always={always}"
            );
        }
        let e = wa_id_for_to("123456789012345", false, us, true).unwrap_err();
        assert_eq!(e.code(), 131009);
        assert!(e.details.contains("+1 is prepended"), "{}", e.details);
    }

    #[test]
    fn contacts_input_keeps_what_was_sent_and_to_wins_over_recipient() {
        let s = send(json!({"messaging_product":"whatsapp","to":"(631) 555-1234","type":"text","text":{"body":"x"}})).unwrap();
        assert_eq!(s.recipient.input(), "(631) 555-1234");
        assert_eq!(s.to, WaId::from("16315551234"));
        let s = send(json!({"messaging_product":"whatsapp","to":"+44 7700 900123","recipient":"US.13491208655302741918","type":"text","text":{"body":"x"}})).unwrap();
        assert_eq!(s.to, WaId::from("447700900123"));
        assert!(!s.recipient.is_bsuid());
        let s = send(json!({"messaging_product":"whatsapp","recipient":"US.ENT.11815799212886844830","type":"text","text":{"body":"x"}})).unwrap();
        assert_eq!(
            s.recipient,
            Recipient::Bsuid("US.ENT.11815799212886844830".into())
        );
        for bad in ["16315551234", "us.1349", "US.", "US.13-49", "USA.1349"] {
            let (code, details) = err(
                json!({"messaging_product":"whatsapp","recipient":bad,"type":"text","text":{"body":"x"}}),
            );
            assert_eq!(code, 131009, "{bad}: {details}");
            assert!(details.contains("recipient must be a BSUID"), "{details}");
        }
        assert_eq!(
            err(json!({"messaging_product":"whatsapp","recipient":7,"type":"text","text":{"body":"x"}})).0,
            100
        );
    }

    #[test]
    fn permission_requests_reject_headers() {
        let (code, _) = err(
            json!({"messaging_product":"whatsapp","to":"16315551234","type":"interactive",
            "interactive":{"type":"call_permission_request","header":{"type":"text","text":"h"},"action":{"name":"call_permission_request"}}}),
        );
        assert_eq!(code, 131009);
    }
}
