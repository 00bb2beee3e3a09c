//! The common `/messages` sends read in one pass over the request bytes, without
//! building a JSON tree: `text` and `interactive` `voice_call` messages to a phone number.
//!
//! It is only a shortcut. It reads a small, strict subset of JSON (objects whose keys it
//! knows, each once; strings without escapes; `null`, booleans, small positive integers)
//! and accepts a body only when [`super::messages::parse`] would accept the same body and
//! read the same request from it. On anything else (an unknown key, an escape, another
//! message type, a value out of its limits, a syntax error) it answers `None` and the
//! caller takes the general path, which reads everything and words every error. So no
//! error is ever produced here, and every refusal keeps its exact text.

use super::json::{check_chars, phone_digits};
use super::messages::{
    Recipient, SendKind, MAX_DISPLAY_TEXT, MAX_INTERACTIVE_BODY, MAX_PAYLOAD, MAX_TEXT_BODY,
    TTL_MAX, TTL_SEND_MIN,
};
use crate::domain::message::{CallButton, DEFAULT_BUTTON_TEXT, DEFAULT_TTL_MINUTES};

/// A send read by the fast path: what `parse` would give before the recipient is
/// resolved, and what the user sees of it (`visible_text`).
#[derive(Debug, Clone, PartialEq)]
pub struct FastSend {
    pub recipient: Recipient,
    pub kind: SendKind,
    pub biz_opaque_callback_data: Option<String>,
    /// What `messages::visible_text` reads from the same body.
    pub visible_text: Option<String>,
}

/// The body read as a send, or `None` for the general path.
pub fn parse(body: &[u8]) -> Option<FastSend> {
    let text = std::str::from_utf8(body).ok()?;
    let mut scan = Scan { s: text, i: 0 };
    let root = scan.root()?;
    scan.ws();
    if scan.i != text.len() {
        return None;
    }
    root.into_send()
}

#[derive(Default)]
struct Root<'a> {
    messaging_product: Option<&'a str>,
    recipient_type: Option<&'a str>,
    to: Option<&'a str>,
    biz_opaque_callback_data: Option<&'a str>,
    kind: Option<&'a str>,
    text: Option<Text<'a>>,
    interactive: Option<Interactive<'a>>,
}

#[derive(Default)]
struct Text<'a> {
    body: Option<&'a str>,
}

#[derive(Default)]
struct Interactive<'a> {
    kind: Option<&'a str>,
    /// `body` was an object (its `text`, if any).
    body: Option<Option<&'a str>>,
    action: Option<Action<'a>>,
}

#[derive(Default)]
struct Action<'a> {
    name: Option<&'a str>,
    parameters: Option<Parameters<'a>>,
}

#[derive(Default)]
struct Parameters<'a> {
    display_text: Option<&'a str>,
    ttl_minutes: Option<i64>,
    payload: Option<&'a str>,
}

/// A cursor over the body; every method answers `None` for what it does not read.
struct Scan<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Scan<'a> {
    fn ws(&mut self) {
        let b = self.s.as_bytes();
        while self.i < b.len() && matches!(b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.as_bytes().get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        self.ws();
        self.s[self.i..]
            .starts_with(word)
            .then(|| self.i += word.len())?;
        // `nullx` is not `null`.
        match self.s.as_bytes().get(self.i) {
            Some(c) if c.is_ascii_alphanumeric() => None,
            _ => Some(()),
        }
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let rest = &self.s.as_bytes()[start..];
        let special = |c: u8| (c == b'"') | (c == b'\\') | (c < 0x20);
        // Eight bytes at a time (the body goes on past a string's closing quote, so a
        // word is read whole until the body's last few bytes), the first special byte
        // found from the word's lowest flag.
        let mut len = 0;
        loop {
            let Some(chunk) = rest.get(len..len + 8) else {
                len += rest[len..].iter().position(|&c| special(c))?;
                break;
            };
            let flags = special_bytes(u64::from_le_bytes(chunk.try_into().ok()?));
            if flags != 0 {
                len += (flags.trailing_zeros() / 8) as usize;
                break;
            }
            len += 8;
        }
        if rest[len] != b'"' {
            return None;
        }
        self.i = start + len + 1;
        Some(&self.s[start..start + len])
    }

    /// `null` (as absent, like the general path) or a string.
    fn opt_string(&mut self) -> Option<Option<&'a str>> {
        if self.peek()? == b'n' {
            self.literal("null")?;
            return Some(None);
        }
        self.string().map(Some)
    }

    /// `null`, or an object read key by key by `field` (each key once).
    fn opt_object<T: Default>(
        &mut self,
        mut field: impl FnMut(&mut Self, &'a str, &mut T) -> Option<()>,
    ) -> Option<Option<T>> {
        if self.peek()? == b'n' {
            self.literal("null")?;
            return Some(None);
        }
        self.eat(b'{')?;
        let mut out = T::default();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(Some(out));
        }
        let mut keys: [&str; 8] = [""; 8];
        let mut n = 0;
        loop {
            let key = self.string()?;
            if keys[..n].contains(&key) || n == keys.len() {
                return None;
            }
            keys[n] = key;
            n += 1;
            self.eat(b':')?;
            field(self, key, &mut out)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(Some(out));
                }
                _ => return None,
            }
        }
    }

    /// `null`, or a positive integer without sign, fraction or exponent (anything else,
    /// valid or not, is left to the general path).
    fn opt_small_int(&mut self) -> Option<Option<i64>> {
        if self.peek()? == b'n' {
            self.literal("null")?;
            return Some(None);
        }
        let b = self.s.as_bytes();
        let start = self.i;
        while self.i < b.len() && b[self.i].is_ascii_digit() && self.i - start < 7 {
            self.i += 1;
        }
        let digits = &self.s[start..self.i];
        if digits.is_empty() || digits.starts_with('0') {
            return None;
        }
        match b.get(self.i) {
            Some(c) if c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E') => None,
            _ => digits.parse().ok().map(Some),
        }
    }

    fn root(&mut self) -> Option<Root<'a>> {
        self.opt_object(|s, key, r: &mut Root<'a>| {
            match key {
                "messaging_product" => r.messaging_product = s.opt_string()?,
                "recipient_type" => r.recipient_type = s.opt_string()?,
                "to" => r.to = s.opt_string()?,
                "biz_opaque_callback_data" => r.biz_opaque_callback_data = s.opt_string()?,
                "type" => r.kind = s.opt_string()?,
                "text" => r.text = s.text()?,
                "interactive" => r.interactive = s.interactive()?,
                _ => return None,
            }
            Some(())
        })?
    }

    fn text(&mut self) -> Option<Option<Text<'a>>> {
        self.opt_object(|s, key, t: &mut Text<'a>| {
            match key {
                "body" => t.body = s.opt_string()?,
                // A boolean, or the strings "true" and "false", as the general path takes it.
                "preview_url" => match s.peek()? {
                    b't' => s.literal("true")?,
                    b'f' => s.literal("false")?,
                    b'n' => s.literal("null")?,
                    _ => match s.string()? {
                        "true" | "false" => {}
                        _ => return None,
                    },
                },
                _ => return None,
            }
            Some(())
        })
    }

    fn interactive(&mut self) -> Option<Option<Interactive<'a>>> {
        self.opt_object(|s, key, i: &mut Interactive<'a>| {
            match key {
                "type" => i.kind = s.opt_string()?,
                "body" => {
                    i.body = s.opt_object(|s, key, text: &mut Option<&'a str>| match key {
                        "text" => {
                            *text = s.opt_string()?;
                            Some(())
                        }
                        _ => None,
                    })?
                }
                "action" => {
                    i.action = s.opt_object(|s, key, a: &mut Action<'a>| {
                        match key {
                            "name" => a.name = s.opt_string()?,
                            "parameters" => a.parameters = s.parameters()?,
                            _ => return None,
                        }
                        Some(())
                    })?
                }
                _ => return None,
            }
            Some(())
        })
    }

    fn parameters(&mut self) -> Option<Option<Parameters<'a>>> {
        self.opt_object(|s, key, p: &mut Parameters<'a>| {
            match key {
                "display_text" => p.display_text = s.opt_string()?,
                "ttl_minutes" => p.ttl_minutes = s.opt_small_int()?,
                "payload" => p.payload = s.opt_string()?,
                _ => return None,
            }
            Some(())
        })
    }
}

/// The high bit of each byte of `w` (little-endian) that is `"`, `\\` or below 0x20. A
/// flag can be wrong only above a right one (a borrow), so the lowest is exact.
fn special_bytes(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |w: u64, n: u64| w.wrapping_sub(ONES * n) & !w & HIGH;
    below(w, 0x20) | below(w ^ (ONES * 0x22), 1) | below(w ^ (ONES * 0x5c), 1)
}

/// `Some` only when the general path's length check of that value passes.
fn text_ok(s: Option<&str>, max: usize) -> Option<Option<&str>> {
    match s {
        None => Some(None),
        Some(s) => check_chars("", s, max).ok().map(|_| Some(s)),
    }
}

/// What `visible_text` keeps of a string: its first 1,024 characters.
fn visible(s: &str) -> String {
    match s.char_indices().nth(1024) {
        Some((cut, _)) => s[..cut].to_owned(),
        None => s.to_owned(),
    }
}

impl Root<'_> {
    fn into_send(self) -> Option<FastSend> {
        if self.messaging_product? != "whatsapp" {
            return None;
        }
        if self.recipient_type.is_some_and(|t| t != "individual") {
            return None;
        }
        let to = self.to?;
        let recipient = Recipient::Phone {
            input: to.to_owned(),
            digits: phone_digits("to", to).ok()?,
            international: to.trim_start().starts_with('+'),
        };
        let biz_opaque_callback_data =
            text_ok(self.biz_opaque_callback_data, MAX_PAYLOAD)?.map(str::to_owned);
        // `visible_text` reads text.body, else interactive.body.text, whatever the type.
        let text_body = self.text.as_ref().and_then(|t| t.body);
        let interactive_text = self.interactive.as_ref().and_then(|i| i.body.flatten());
        let visible_text = text_body.or(interactive_text).map(visible);
        let kind = match self.kind.unwrap_or("text") {
            "text" => {
                check_chars("", self.text.as_ref()?.body?, MAX_TEXT_BODY).ok()?;
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
    if i.kind? != "voice_call" {
        return None;
    }
    if let Some(body_text) = i.body {
        text_ok(body_text, MAX_INTERACTIVE_BODY)?;
    }
    let action = i.action.as_ref()?;
    if action.name? != "voice_call" {
        return None;
    }
    let mut button = CallButton {
        display_text: DEFAULT_BUTTON_TEXT.to_owned(),
        ttl_minutes: DEFAULT_TTL_MINUTES,
        payload: None,
    };
    if let Some(p) = &action.parameters {
        if let Some(t) = text_ok(p.display_text, MAX_DISPLAY_TEXT)? {
            if t.trim().is_empty() {
                return None;
            }
            button.display_text = t.to_owned();
        }
        if let Some(n) = p.ttl_minutes {
            if !(TTL_SEND_MIN..=TTL_MAX).contains(&n) {
                return None;
            }
            button.ttl_minutes = n as u32;
        }
        button.payload = text_ok(p.payload, MAX_PAYLOAD)?.map(str::to_owned);
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
        "{\"messaging_product\":\"whatsapp\",\"to\":\"+1 (631) 555-1234\",\"type\":\"text\",\"text\":{\"body\":\"hi é 📞\u{7f}\",\"preview_url\":\"true\"}}",
        r#"{"messaging_product":"whatsapp","recipient_type":"individual","to":"16315551234","text":{"body":"default type"}}"#,
        " \r\n\t{ \"messaging_product\" : \"whatsapp\" , \"to\":\"16315551234\",\n\"type\":\"text\",\"text\":{\"body\":\"x\",\"preview_url\":false},\"biz_opaque_callback_data\":\"ctx\"} \n",
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","action":{"name":"voice_call","parameters":{"ttl_minutes":43200}}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","action":{"name":"voice_call","parameters":{"ttl_minutes":null,"display_text":null,"payload":null}}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","text":{"body":"seen first"},"interactive":{"type":"voice_call","body":{"text":"second"},"action":{"name":"voice_call"}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","body":{},"action":{"name":"voice_call","parameters":{}}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","body":null,"action":{"name":"voice_call","parameters":null}},"text":null}"#,
        r#"{"type":null,"text":{"body":"null type is text","preview_url":null},"to":"16315551234","messaging_product":"whatsapp","recipient_type":null,"biz_opaque_callback_data":null}"#,
    ];

    /// Bodies the fast path leaves to the general path (which accepts or refuses them).
    const DECLINED: &[&str] = &[
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{"body":"x","extra":{"a":[1,{"b":2}]}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{"body":"x"},"unknown":null}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{"body":"a\nb"}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{"body":"a\u00e9"}}"#,
        "{\"messaging_product\":\"whatsapp\",\"to\":\"16315551234\",\"type\":\"text\",\"text\":{\"body\":\"a\tb\"}}",
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{"body":"x"},}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{"body":"x"}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{"body":"x","preview_url":nulls}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{"body":"x","preview_url":"yes"}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","header":{"type":"text"},"action":{"name":"voice_call","parameters":{}}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","action":{"name":"voice_call","parameters":{"ttl_minutes":4320.0}}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","action":{"name":"voice_call","parameters":{"ttl_minutes":"60"}}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","action":{"name":"voice_call","parameters":{"ttl_minutes":060}}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","action":{"name":"voice_call","parameters":{"ttl_minutes":1e2}}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","action":{"name":"voice_call","parameters":{"ttl_minutes":-5}}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","action":{"name":"voice_call","parameters":{"ttl_minutes":43201}}}}"#,
        r#"{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","action":{"name":"voice_call","parameters":{"ttl_minutes":12345678}}}}"#,
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
    fn strings_end_at_their_first_quote_escape_or_control_byte_wherever_it_falls() {
        // Every position within and across the eight-byte words, and near the body's end.
        for n in 0..20 {
            for fill in ["a", "é", "\u{7f}", " ", "!"] {
                let s = fill.repeat(n);
                for end in ["", "\\n", "\u{1f}", "\u{0}", "\n"] {
                    let body = format!(
                        r#"{{"messaging_product":"whatsapp","to":"16315551234","type":"text","text":{{"body":"{s}{end}"}}}}"#
                    );
                    let fast = parse(body.as_bytes());
                    match end {
                        "" => assert_eq!(fast, general(&body), "{body:?}"),
                        _ => assert_eq!(fast, None, "{body:?}"),
                    }
                }
            }
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
