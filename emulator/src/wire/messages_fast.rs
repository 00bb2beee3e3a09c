//! The common `/messages` sends read in one borrowed, typed pass over the request bytes,
//! without building a JSON tree: `text` and `interactive` `voice_call` messages to a
//! phone number.
//!
//! It is only a shortcut. It accepts a body only when [`super::messages::parse`] would
//! accept the same body and read the same request from it; on anything else (an error of
//! any kind, a key it does not know the meaning of, another message type, `null` where a
//! value is needed) it answers `None` and the caller takes the general path, which words
//! every error. So no error is ever produced here, and every refusal keeps its exact text.
//! Keys the general path ignores are checked for repeats as its duplicate-key pass does.

use super::json::{check_chars, integral, phone_digits, NoDuplicateKeys};
use super::messages::{
    Recipient, SendKind, MAX_DISPLAY_TEXT, MAX_INTERACTIVE_BODY, MAX_PAYLOAD, MAX_TEXT_BODY,
    TTL_MAX, TTL_SEND_MIN,
};
use crate::domain::message::{CallButton, DEFAULT_BUTTON_TEXT, DEFAULT_TTL_MINUTES};
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// A send read by the fast path: what `parse` would give before the recipient is
/// resolved, and what the user sees of it (`visible_text`).
#[derive(Debug, Clone, PartialEq)]
pub struct FastSend {
    pub recipient: Recipient,
    pub kind: SendKind,
    pub biz_opaque_callback_data: Option<String>,
    /// What `messaging::visible_text` reads from the same body.
    pub visible_text: Option<String>,
}

/// The body read as a send, or `None` for the general path.
pub fn parse(body: &[u8]) -> Option<FastSend> {
    let root: Root<'_> = serde_json::from_slice(body).ok()?;
    root.into_send()
}

/// A JSON string, borrowed from the body when it has no escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Visits an object's keys: each known key once (a repeat fails, as the general path's
/// duplicate-key pass does), every other value checked for repeated keys and skipped.
/// `$fallback` keys make the whole body go to the general path.
macro_rules! object {
    ($name:ident<$lt:lifetime> { $($key:literal => $field:ident : $ty:ty),* $(,)? } fallback [$($fb:literal),*]) => {
        #[derive(Default)]
        struct $name<$lt> {
            $($field: Option<$ty>,)*
            _borrowed: std::marker::PhantomData<&$lt ()>,
        }

        impl<$lt> Deserialize<$lt> for $name<$lt> {
            fn deserialize<D: Deserializer<$lt>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<$lt> Visitor<$lt> for V {
                    type Value = $name<$lt>;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("an object")
                    }
                    fn visit_map<A: MapAccess<$lt>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                        let mut out = $name::default();
                        let mut others: Vec<Cow<$lt, str>> = Vec::new();
                        let mut seen: u32 = 0;
                        while let Some(Str(key)) = a.next_key::<Str<$lt>>()? {
                            let mut bit = 1u32;
                            $(
                                if key == $key {
                                    if seen & bit != 0 {
                                        return Err(de::Error::custom("repeated key"));
                                    }
                                    seen |= bit;
                                    // `null` reads as absent, as in the general path.
                                    out.$field = a.next_value::<Option<$ty>>()?;
                                    continue;
                                }
                                bit <<= 1;
                            )*
                            let _ = bit;
                            if [$($fb),*].contains(&key.as_ref()) {
                                return Err(de::Error::custom("the general path reads this key"));
                            }
                            if others.contains(&key) {
                                return Err(de::Error::custom("repeated key"));
                            }
                            others.push(key);
                            a.next_value::<NoDuplicateKeys>()?;
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

object!(Root<'a> {
    "messaging_product" => messaging_product: Str<'a>,
    "recipient_type" => recipient_type: Str<'a>,
    "to" => to: Str<'a>,
    "biz_opaque_callback_data" => biz_opaque_callback_data: Str<'a>,
    "type" => kind: Str<'a>,
    "text" => text: Text<'a>,
    "interactive" => interactive: Interactive<'a>,
} fallback ["status", "recipient", "template"]);

object!(Text<'a> {
    "body" => body: Str<'a>,
    "preview_url" => preview_url: Value,
} fallback []);

object!(Interactive<'a> {
    "type" => kind: Str<'a>,
    "body" => body: InteractiveBody<'a>,
    "action" => action: Action<'a>,
} fallback []);

object!(InteractiveBody<'a> {
    "text" => text: Str<'a>,
} fallback []);

object!(Action<'a> {
    "name" => name: Str<'a>,
    "parameters" => parameters: Parameters<'a>,
} fallback []);

object!(Parameters<'a> {
    "display_text" => display_text: Str<'a>,
    "ttl_minutes" => ttl_minutes: Value,
    "payload" => payload: Str<'a>,
} fallback []);

/// `Some` only when the general path's checks of that value pass.
fn text_ok<'s>(s: &'s Option<Str<'_>>, max: usize) -> Option<Option<&'s str>> {
    match s {
        None => Some(None),
        Some(Str(s)) => check_chars("", s, max).ok().map(|_| Some(s.as_ref())),
    }
}

/// What `visible_text` keeps of a string: its first 1,024 characters.
fn visible(s: &str) -> String {
    s.chars().take(1024).collect()
}

impl Root<'_> {
    fn into_send(self) -> Option<FastSend> {
        if self.messaging_product.as_ref()?.0 != "whatsapp" {
            return None;
        }
        if let Some(Str(t)) = &self.recipient_type {
            if t != "individual" {
                return None;
            }
        }
        let to = self.to.as_ref()?.0.as_ref();
        let recipient = Recipient::Phone {
            input: to.to_owned(),
            digits: phone_digits("to", to).ok()?,
            international: to.trim_start().starts_with('+'),
        };
        let biz_opaque_callback_data =
            text_ok(&self.biz_opaque_callback_data, MAX_PAYLOAD)?.map(str::to_owned);
        // `visible_text` reads text.body, else interactive.body.text, whatever the type.
        let text_body = self.text.as_ref().and_then(|t| t.body.as_ref());
        let interactive_text = self
            .interactive
            .as_ref()
            .and_then(|i| i.body.as_ref())
            .and_then(|b| b.text.as_ref());
        let visible_text = text_body.or(interactive_text).map(|s| visible(&s.0));
        let kind = match self.kind.as_ref().map_or("text", |k| k.0.as_ref()) {
            "text" => {
                let text = self.text.as_ref()?;
                check_chars("", &text.body.as_ref()?.0, MAX_TEXT_BODY).ok()?;
                match &text.preview_url {
                    None | Some(Value::Bool(_)) => {}
                    Some(Value::String(s)) if s == "true" || s == "false" => {}
                    Some(_) => return None,
                }
                SendKind::Text
            }
            "interactive" => voice_call(self.interactive.as_ref()?)?,
            _ => return None,
        };
        Some(FastSend {
            recipient,
            kind,
            biz_opaque_callback_data,
            visible_text,
        })
    }
}

fn voice_call(i: &Interactive<'_>) -> Option<SendKind> {
    if i.kind.as_ref()?.0 != "voice_call" {
        return None;
    }
    if let Some(body) = &i.body {
        text_ok(&body.text, MAX_INTERACTIVE_BODY)?;
    }
    let action = i.action.as_ref()?;
    if action.name.as_ref()?.0 != "voice_call" {
        return None;
    }
    let mut button = CallButton {
        display_text: DEFAULT_BUTTON_TEXT.to_owned(),
        ttl_minutes: DEFAULT_TTL_MINUTES,
        payload: None,
    };
    if let Some(p) = &action.parameters {
        if let Some(t) = text_ok(&p.display_text, MAX_DISPLAY_TEXT)? {
            if t.trim().is_empty() {
                return None;
            }
            button.display_text = t.to_owned();
        }
        if let Some(v) = &p.ttl_minutes {
            let n = integral(v).filter(|n| (TTL_SEND_MIN..=TTL_MAX).contains(n))?;
            button.ttl_minutes = n as u32;
        }
        button.payload = text_ok(&p.payload, MAX_PAYLOAD)?.map(str::to_owned);
    }
    Some(SendKind::VoiceCall(button))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::WaId;
    use crate::wire::json::parse_object;
    use crate::wire::messages::{self, MessagesBody};

    /// The general path's reading of a body (recipient resolved to its digits), with
    /// `visible_text` as the engine computes it.
    fn general(body: &str) -> Option<FastSend> {
        let map = parse_object(body.as_bytes()).ok()?;
        let req = match messages::parse(&map, |r| match r {
            Recipient::Phone { digits, .. } => Ok(WaId(digits.clone())),
            Recipient::Bsuid(b) => Ok(WaId(b.clone())),
        })
        .ok()?
        {
            MessagesBody::Send(s) => s,
            MessagesBody::MarkRead(_) => return None,
        };
        Some(FastSend {
            recipient: req.recipient,
            kind: req.kind,
            biz_opaque_callback_data: req.biz_opaque_callback_data,
            visible_text: messages::visible_text(&map),
        })
    }

    /// Bodies the fast path reads, each exactly as the general path does.
    const ACCEPTED: &[&str] = &[
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","body":{"text":"Call us on WhatsApp now"},"action":{"name":"voice_call","parameters":{"display_text":"Call Now","ttl_minutes":100,"payload":"P"}}}}"#,
        r#"{"messaging_product":"whatsapp","to":"+1 (631) 555-1234","type":"text","text":{"body":"hi\n\u00e9 📞","preview_url":"true"}}"#,
        r#"{"messaging_product":"whatsapp","recipient_type":"individual","to":"16315551234","text":{"body":"default type"}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{"body":"x","extra":{"a":[1,{"b":2}]}},"biz_opaque_callback_data":"ctx","unknown":null}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","action":{"name":"voice_call","parameters":{"ttl_minutes":4320.0}}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","action":{"name":"voice_call","parameters":{"ttl_minutes":" 60 ","display_text":null}}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","text":{"body":"seen first"},"interactive":{"type":"voice_call","body":{"text":"second"},"action":{"name":"voice_call"}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","header":{"type":"text"},"action":{"name":"voice_call","parameters":{}}}}"#,
        r#"{"type":null,"text":{"body":"null type is text"},"to":"16315551234","messaging_product":"whatsapp","recipient_type":null}"#,
    ];

    /// Bodies the fast path leaves to the general path (which accepts or refuses them).
    const DECLINED: &[&str] = &[
        "",
        "   ",
        "[]",
        "{",
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{"body":"x"}} trailing"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","to":"16315551234","type":"text","text":{"body":"x"}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{"body":"x"},"x":1,"x":2}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{"body":"x"},"x":{"y":1,"y":2}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{"body":"x","body":"y"}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{"body":7}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":null}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{"body":"x","preview_url":1}}"#,
        r#"{"messaging_product":"WhatsApp","to":"16315551234","type":"text","text":{"body":"x"}}"#,
        r#"{"to":"16315551234","type":"text","text":{"body":"x"}}"#,
        r#"{"messaging_product":"whatsapp","to":"abc","type":"text","text":{"body":"x"}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","recipient":"US.1","type":"text","text":{"body":"x"}}"#,
        r#"{"messaging_product":"whatsapp","recipient":"US.13491208655302741918","type":"text","text":{"body":"x"}}"#,
        r#"{"messaging_product":"whatsapp","status":"read","message_id":"wamid.X"}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","recipient_type":"group","type":"text","text":{"body":"x"}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"template","template":{"name":"t","language":{"code":"en"}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{"body":"x"},"template":{"name":"t"}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"image","image":{"id":"1"}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"call_permission_request","action":{"name":"call_permission_request"}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","action":{"name":"call"}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","action":{"name":"voice_call","parameters":{"ttl_minutes":0}}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","action":{"name":"voice_call","parameters":{"ttl_minutes":4320.5}}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","action":{"name":"voice_call","parameters":{"display_text":"   "}}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","action":{"name":"voice_call","parameters":{"display_text":"aaaaaaaaaaaaaaaaaaaaa"}}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","body":"text","action":{"name":"voice_call"}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{"body":"x"},"biz_opaque_callback_data":7}"#,
    ];

    #[test]
    fn what_the_fast_path_reads_is_what_the_general_path_reads() {
        for body in ACCEPTED {
            let fast = parse(body.as_bytes());
            assert!(fast.is_some(), "declined: {body}");
            assert_eq!(fast, general(body), "{body}");
        }
    }

    #[test]
    fn everything_else_goes_to_the_general_path() {
        for body in DECLINED {
            assert_eq!(parse(body.as_bytes()), None, "read: {body}");
        }
    }

    #[test]
    fn long_texts_are_cut_like_the_general_path_cuts_them() {
        let long = "é".repeat(2000);
        let body = format!(
            r#"{{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{{"body":"{long}"}}}}"#
        );
        let fast = parse(body.as_bytes()).unwrap();
        assert_eq!(fast.visible_text.as_ref().unwrap().chars().count(), 1024);
        assert_eq!(Some(fast), general(&body));
    }
}
