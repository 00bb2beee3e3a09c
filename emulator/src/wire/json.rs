//! Reading request JSON with errors that name the field, the rule and the value.
//!
//! Conventions (one place, so every endpoint reports alike): a missing required field is
//! 131008, a value of the wrong JSON type is 100 "Invalid parameter", a value of the
//! right type that breaks a documented limit is 131009.

use crate::domain::error::{ApiError, ApiResult, ErrorKind};
use serde_json::{Map, Value};

/// A short, bounded description of a JSON value for error details.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {}", quote_bounded(s)),
        Value::Array(a) => format!("an array of {} items", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

/// Quotes a string for an error text, cutting it after 40 characters.
pub fn quote_bounded(s: &str) -> String {
    let n = s.chars().count();
    if n <= 40 {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(40).collect();
        format!("{head:?}… ({n} characters)")
    }
}

pub fn missing(path: &str) -> ApiError {
    ApiError::new(
        ErrorKind::MissingParameter,
        format!("The parameter {path} is required."),
    )
}

pub fn wrong_type(path: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::new(
        ErrorKind::InvalidParameter,
        format!("{path} must be {expected}; got {}.", describe(got)),
    )
}

pub fn invalid(path: &str, rule: &str, got: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorKind::InvalidValue,
        format!("{path} {rule}; got {got}."),
    )
}

/// Parses a request body as a JSON object.
pub fn parse_object(body: &[u8]) -> ApiResult<Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ErrorKind::InvalidParameter,
            "The request body is empty; expected a JSON object.",
        ));
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::new(
            ErrorKind::InvalidParameter,
            format!(
                "The request body is not valid UTF-8 (at byte {}).",
                e.valid_up_to()
            ),
        )
    })?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => {
            serde_json::from_str::<NoDuplicateKeys>(text).map_err(|e| {
                ApiError::new(
                    ErrorKind::InvalidParameter,
                    format!("The request body is ambiguous: {e}."),
                )
            })?;
            Ok(m)
        }
        Ok(other) => Err(ApiError::new(
            ErrorKind::InvalidParameter,
            format!(
                "The request body must be a JSON object; got {}.",
                describe(&other)
            ),
        )),
        Err(e) => Err(ApiError::new(
            ErrorKind::InvalidParameter,
            format!(
                "The request body is not valid JSON: {e} (line {}, column {}).",
                e.line(),
                e.column()
            ),
        )),
    }
}

/// A pass over a JSON text that fails on the first object repeating a key: a parser
/// silently keeping one of the two values would hide the integration's bug.
struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Self, A::Error> {
        while a.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = a.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "the key {} appears twice in one object",
                    quote_bounded(&key)
                )));
            }
            a.next_value::<NoDuplicateKeys>()?;
        }
        Ok(self)
    }
}

/// A JSON object with its path, for field access with precise errors.
#[derive(Clone, Copy)]
pub struct Obj<'a> {
    pub path: &'a str,
    pub map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    pub fn new(path: &'a str, map: &'a Map<String, Value>) -> Self {
        Self { path, map }
    }

    pub fn field_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value, treating an explicit `null` as absent.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn str_opt(&self, key: &str) -> ApiResult<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(wrong_type(&self.field_path(key), "a string", v)),
        }
    }

    pub fn str_req(&self, key: &str) -> ApiResult<&'a str> {
        self.str_opt(key)?
            .ok_or_else(|| missing(&self.field_path(key)))
    }

    /// A string of at most `max` characters (Unicode scalar values, not bytes).
    pub fn text_opt(&self, key: &str, max: usize) -> ApiResult<Option<&'a str>> {
        let Some(s) = self.str_opt(key)? else {
            return Ok(None);
        };
        check_chars(&self.field_path(key), s, max)?;
        Ok(Some(s))
    }

    pub fn bool_opt(&self, key: &str) -> ApiResult<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(v) => Err(wrong_type(&self.field_path(key), "a boolean", v)),
        }
    }

    /// An integer within `min..=max`. Integral floats (`4320.0`, as pywa sends) and
    /// numeric strings are accepted; anything else is an error, never a panic.
    pub fn int_opt(&self, key: &str, min: i64, max: i64) -> ApiResult<Option<i64>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let path = self.field_path(key);
        let Some(n) = integral(v) else {
            // An integer beyond i64 is out of range, not of the wrong type.
            if v.as_f64().is_some_and(|f| f.fract() == 0.0) {
                return Err(invalid(
                    &path,
                    &format!("must be between {min} and {max}"),
                    v,
                ));
            }
            return Err(wrong_type(&path, "an integer", v));
        };
        if n < min || n > max {
            return Err(invalid(
                &path,
                &format!("must be between {min} and {max}"),
                n,
            ));
        }
        Ok(Some(n))
    }

    pub fn obj_opt(&self, key: &str) -> ApiResult<Option<&'a Map<String, Value>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(v) => Err(wrong_type(&self.field_path(key), "an object", v)),
        }
    }

    pub fn obj_req(&self, key: &str) -> ApiResult<&'a Map<String, Value>> {
        self.obj_opt(key)?
            .ok_or_else(|| missing(&self.field_path(key)))
    }

    pub fn arr_opt(&self, key: &str) -> ApiResult<Option<&'a Vec<Value>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(wrong_type(&self.field_path(key), "an array", v)),
        }
    }

    /// One of a fixed set of words (compared case-sensitively unless `fold`).
    pub fn enum_opt(
        &self,
        key: &str,
        allowed: &[&'static str],
        fold: bool,
    ) -> ApiResult<Option<&'static str>> {
        let Some(s) = self.str_opt(key)? else {
            return Ok(None);
        };
        allowed
            .iter()
            .find(|a| {
                if fold {
                    a.eq_ignore_ascii_case(s)
                } else {
                    **a == s
                }
            })
            .copied()
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    &self.field_path(key),
                    &format!("must be one of {}", allowed.join(", ")),
                    quote_bounded(s),
                )
            })
    }
}

/// Every Graph body names its product: `"messaging_product": "whatsapp"`.
pub fn require_whatsapp(root: &Obj<'_>) -> ApiResult<()> {
    match root.str_opt("messaging_product")? {
        Some("whatsapp") => Ok(()),
        Some(other) => Err(invalid(
            "messaging_product",
            "must be \"whatsapp\"",
            quote_bounded(other),
        )),
        None => Err(missing("messaging_product")),
    }
}

/// An integer from a number (integral floats allowed) or a numeric string.
pub fn integral(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i)
            } else {
                let f = n.as_f64()?;
                (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
            }
        }
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn check_chars(path: &str, s: &str, max: usize) -> ApiResult<()> {
    let n = s.chars().count();
    if n > max {
        return Err(invalid(
            path,
            &format!("is limited to {max} characters"),
            format!("{n} characters ({})", quote_bounded(s)),
        ));
    }
    Ok(())
}

/// Digits of a phone number as Graph normalises `to`: `+`, `-`, `(`, `)` and spaces are
/// dropped; anything else is invalid.
pub fn phone_digits(path: &str, raw: &str) -> ApiResult<String> {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '0'..='9' => out.push(c),
            '+' | '-' | '(' | ')' | ' ' => {}
            _ => return Err(invalid(path, "must be a phone number in international format (digits, optionally with +, -, (, ) and spaces)", quote_bounded(raw))),
        }
    }
    if out.len() < 5 || out.len() > 15 {
        return Err(invalid(
            path,
            "must have 5 to 15 digits",
            quote_bounded(raw),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: &Value) -> Obj<'_> {
        Obj::new("parameters", v.as_object().unwrap())
    }

    #[test]
    fn integral_floats_and_numeric_strings_are_integers() {
        assert_eq!(integral(&json!(4320.0)), Some(4320));
        assert_eq!(integral(&json!("100")), Some(100));
        assert_eq!(integral(&json!(1.5)), None);
        assert_eq!(integral(&json!(true)), None);
        assert_eq!(integral(&json!(1e300)), None);
    }

    #[test]
    fn range_errors_name_field_limit_and_value() {
        let v = json!({"ttl_minutes": 43201});
        let e = obj(&v).int_opt("ttl_minutes", 1, 43200).unwrap_err();
        assert_eq!(e.code(), 131009);
        assert_eq!(
            e.details,
            "parameters.ttl_minutes must be between 1 and 43200; got 43201."
        );
    }

    #[test]
    fn wrong_types_are_invalid_parameter() {
        let v = json!({"ttl_minutes": "soon"});
        assert_eq!(
            obj(&v).int_opt("ttl_minutes", 1, 43200).unwrap_err().code(),
            100
        );
        let v = json!({ "ttl_minutes": u64::MAX });
        let e = obj(&v).int_opt("ttl_minutes", 1, 43200).unwrap_err();
        assert_eq!(e.code(), 131009, "an integer too large is out of range");
        assert!(
            e.details.contains("got 18446744073709551615"),
            "{}",
            e.details
        );
        let v = json!({"display_text": 5});
        assert_eq!(obj(&v).str_opt("display_text").unwrap_err().code(), 100);
    }

    #[test]
    fn character_limits_count_characters_not_bytes() {
        let emoji = "📞".repeat(20);
        let v = json!({ "display_text": emoji });
        assert!(obj(&v).text_opt("display_text", 20).is_ok());
        let v = json!({ "display_text": "📞".repeat(21) });
        let e = obj(&v).text_opt("display_text", 20).unwrap_err();
        assert!(
            e.details
                .contains("limited to 20 characters; got 21 characters"),
            "{}",
            e.details
        );
    }

    #[test]
    fn phone_numbers_drop_formatting() {
        assert_eq!(
            phone_digits("to", "+1 (408) 555-1234").unwrap(),
            "14085551234"
        );
        assert!(phone_digits("to", "abc").is_err());
        assert!(phone_digits("to", "12").is_err());
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        assert!(parse_object(b"{")
            .unwrap_err()
            .details
            .contains("not valid JSON"));
        assert!(parse_object(b"[]")
            .unwrap_err()
            .details
            .contains("must be a JSON object"));
        assert!(parse_object(b"").unwrap_err().details.contains("empty"));
        assert!(parse_object(br#"{"a":{"b":1,"b":2}}"#)
            .unwrap_err()
            .details
            .contains("the key \"b\" appears twice"));
        assert!(parse_object(br#"{"a":[{"b":1},{"b":2}],"b":[]}"#).is_ok());
        assert!(parse_object(&[0xff, 0xfe])
            .unwrap_err()
            .details
            .contains("UTF-8"));
    }
}
