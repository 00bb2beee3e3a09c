//! JSON subset matching and the field-level differences shown when nothing matched.
//!
//! A pattern matches a body when it matches the body itself or any object or array
//! nested in it, so `{"cta_payload": "x"}` finds the call object inside the webhook
//! envelope without spelling out `entry[0].changes[0].value.calls[0]`. A pattern is
//! JSON where a value may also be a time on the emulator's clock (`now + 7d`).

use crate::syntax::json::{quote, ClockValue, Pat};
use serde_json::Value;
use std::fmt;

/// How far a time on the clock may be from the one written (`now + 7d`), either way.
/// On the virtual clock the values an expectation sees are usually exact; on a real
/// clock a few moments pass between the event and the step that checks it.
pub const TIME_TOLERANCE_SECS: i64 = 5;

/// What an expectation looks for: JSON, where a value may also be a time on the clock.
#[derive(Clone, Debug, PartialEq)]
pub enum Expected {
    /// `null`, a boolean, a number or a string.
    Scalar(Value),
    Array(Vec<Expected>),
    Object(Vec<(String, Expected)>),
    /// `now + 7d` with the clock read: a Unix second, matched by an integer or a string
    /// of digits (Graph writes both: `expiration_time` 1767830400, `expiration_timestamp`
    /// "1767830400") within [`TIME_TOLERANCE_SECS`] of it.
    Time {
        secs: i64,
        written: String,
    },
}

impl Expected {
    /// A scenario pattern with its variables bound and `now` read as `now_secs`.
    pub fn from_pat(
        pat: &Pat,
        lookup: &dyn Fn(&str) -> Option<String>,
        now_secs: Option<i64>,
    ) -> Result<Expected, String> {
        Ok(match pat {
            Pat::Arr(items) => Expected::Array(
                items
                    .iter()
                    .map(|p| Expected::from_pat(p, lookup, now_secs))
                    .collect::<Result<_, _>>()?,
            ),
            Pat::Obj(fields) => Expected::Object(
                fields
                    .iter()
                    .map(|(k, p)| Ok((k.clone(), Expected::from_pat(p, lookup, now_secs)?)))
                    .collect::<Result<_, String>>()?,
            ),
            Pat::Now(c) => Expected::time(c, now_secs)?,
            scalar => Expected::Scalar(scalar.to_value(lookup)?),
        })
    }

    fn time(c: &ClockValue, now_secs: Option<i64>) -> Result<Expected, String> {
        let now = now_secs.ok_or_else(|| {
            format!(
                "`{}` needs the emulator's clock, which was not read",
                c.print()
            )
        })?;
        Ok(Expected::Time {
            secs: c.at(now),
            written: c.print(),
        })
    }

    fn is_object(&self) -> bool {
        matches!(self, Expected::Object(_))
    }
}

impl From<Value> for Expected {
    fn from(v: Value) -> Expected {
        match v {
            Value::Array(items) => Expected::Array(items.into_iter().map(Expected::from).collect()),
            Value::Object(m) => {
                Expected::Object(m.into_iter().map(|(k, v)| (k, Expected::from(v))).collect())
            }
            scalar => Expected::Scalar(scalar),
        }
    }
}

/// Compact JSON, as failure messages quote patterns; a time reads as written and as
/// the second it stands for: `now + 7d (1768435200)`.
impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Scalar(v) => write!(f, "{v}"),
            Expected::Array(items) => {
                f.write_str("[")?;
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str("]")
            }
            Expected::Object(fields) => {
                f.write_str("{")?;
                for (i, (k, e)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{e}", quote(k))?;
                }
                f.write_str("}")
            }
            Expected::Time { secs, written } => write!(f, "{written} ({secs})"),
        }
    }
}

/// One difference between a pattern and the closest part of a body.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    pub path: String,
    pub expected: String,
    pub got: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.path, self.expected, self.got
        )
    }
}

fn show(v: &impl fmt::Display) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 {
        format!("{}…", s.chars().take(120).collect::<String>())
    } else {
        s
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Differences between `pat` and `actual` at the same position; empty when it matches.
/// Objects match when every pattern key matches; arrays when every pattern element
/// matches some element; numbers compare by value (`120` equals `120.0`); a time on the
/// clock matches an integer or a string of digits within [`TIME_TOLERANCE_SECS`].
pub fn diff_at(pat: &Expected, actual: &Value, path: &str) -> Vec<Mismatch> {
    let here = || {
        if path.is_empty() {
            "(the body)".to_string()
        } else {
            path.to_string()
        }
    };
    match (pat, actual) {
        (Expected::Object(p), Value::Object(a)) => {
            let mut out = Vec::new();
            for (k, pv) in p {
                match a.get(k) {
                    Some(av) => out.extend(diff_at(pv, av, &join(path, k))),
                    None => out.push(Mismatch {
                        path: join(path, k),
                        expected: show(pv),
                        got: "nothing (key absent)".into(),
                    }),
                }
            }
            out
        }
        (Expected::Array(p), Value::Array(a)) => {
            let mut out = Vec::new();
            for (i, pv) in p.iter().enumerate() {
                let best = a
                    .iter()
                    .enumerate()
                    .map(|(j, av)| diff_at(pv, av, &format!("{path}[{j}]")))
                    .min_by_key(Vec::len);
                match best {
                    Some(d) => out.extend(d),
                    None => out.push(Mismatch {
                        path: format!("{path}[{i}]"),
                        expected: show(pv),
                        got: "an empty array".into(),
                    }),
                }
            }
            out
        }
        (Expected::Time { secs, written }, a) => {
            let got = match a {
                Value::Number(n) => n.as_i64(),
                Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                    s.parse().ok()
                }
                _ => None,
            };
            match got {
                Some(g) if (g - secs).abs() <= TIME_TOLERANCE_SECS => Vec::new(),
                Some(g) => vec![Mismatch {
                    path: here(),
                    expected: format!("{written} ({secs}, ± {TIME_TOLERANCE_SECS}s)"),
                    got: format!("{} ({})", show(a), offset_words(g - secs)),
                }],
                None => vec![Mismatch {
                    path: here(),
                    expected: format!("{written} ({secs}, ± {TIME_TOLERANCE_SECS}s)"),
                    got: format!("{} (not Unix seconds)", show(a)),
                }],
            }
        }
        (Expected::Scalar(Value::Number(p)), Value::Number(a)) if p.as_f64() == a.as_f64() => {
            Vec::new()
        }
        (Expected::Scalar(p), a) if p == a => Vec::new(),
        (p, a) => vec![Mismatch {
            path: here(),
            expected: show(p),
            got: show(a),
        }],
    }
}

/// `3s later`, `2d1h earlier`: how far a time is from the one expected.
fn offset_words(delta: i64) -> String {
    let d = crate::syntax::duration::format_duration(delta.unsigned_abs() * 1000);
    if delta > 0 {
        format!("{d} later")
    } else {
        format!("{d} earlier")
    }
}

/// The position in `actual` (the body or anything nested in it) where `pat` fits best,
/// with the differences there; an empty list means it matches.
pub fn best_match(pat: &Expected, actual: &Value) -> Vec<Mismatch> {
    // A key present with the wrong value is a nearer miss than a key that is absent.
    let weight = |d: &[Mismatch]| -> usize {
        d.iter()
            .map(|m| if m.got.starts_with("nothing") { 2 } else { 1 })
            .sum()
    };
    let mut best = diff_at(pat, actual, "");
    if best.is_empty() {
        return best;
    }
    let mut stack: Vec<(String, &Value)> = vec![(String::new(), actual)];
    while let Some((path, v)) = stack.pop() {
        let children: Vec<(String, &Value)> = match v {
            Value::Object(m) => m.iter().map(|(k, c)| (join(&path, k), c)).collect(),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("{path}[{i}]"), c))
                .collect(),
            _ => continue,
        };
        for (cpath, c) in children {
            if c.is_object() || c.is_array() {
                // Only compare like with like, so a pattern object is not "closest" to an array.
                if c.is_object() == pat.is_object() {
                    let d = diff_at(pat, c, &cpath);
                    if d.is_empty() {
                        return d;
                    }
                    if weight(&d) < weight(&best) {
                        best = d;
                    }
                }
                stack.push((cpath, c));
            }
        }
    }
    best
}

pub fn matches(pat: &Expected, actual: &Value) -> bool {
    best_match(pat, actual).is_empty()
}

/// Paths of every occurrence of `key` anywhere in `v`, with its value.
pub fn find_key(v: &Value, key: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut stack: Vec<(String, &Value)> = vec![(String::new(), v)];
    while let Some((path, v)) = stack.pop() {
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    let p = join(&path, k);
                    if k == key {
                        out.push((p.clone(), c.clone()));
                    }
                    stack.push((p, c));
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    stack.push((format!("{path}[{i}]"), c));
                }
            }
            _ => {}
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Whether any string in `v` equals `needle` (ids, phone numbers).
pub fn mentions(v: &Value, needle: &str) -> bool {
    match v {
        Value::String(s) => s == needle,
        Value::Array(a) => a.iter().any(|c| mentions(c, needle)),
        Value::Object(m) => m.values().any(|c| mentions(c, needle)),
        _ => false,
    }
}

/// `a.b[0].c` lookup.
pub fn get_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in path.split('.') {
        let (key, idx) = match part.find('[') {
            Some(i) => (
                &part[..i],
                Some(part[i + 1..part.len() - 1].parse::<usize>().ok()?),
            ),
            None => (part, None),
        };
        if !key.is_empty() {
            cur = cur.get(key)?;
        }
        if let Some(i) = idx {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn connect() -> Value {
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "calls", "value": {
            "calls": [{"id": "wacid.A", "event": "connect", "cta_payload": "order-41", "from": "16505550001"}]}}]}]})
    }

    fn pat(v: Value) -> Expected {
        Expected::from(v)
    }

    #[test]
    fn a_pattern_matches_anywhere_in_the_body() {
        assert!(matches(
            &pat(json!({"cta_payload": "order-41"})),
            &connect()
        ));
        assert!(matches(
            &pat(json!({"calls": [{"event": "connect"}]})),
            &connect()
        ));
        assert!(!matches(
            &pat(json!({"cta_payload": "order-42"})),
            &connect()
        ));
    }

    #[test]
    fn a_time_matches_an_integer_or_a_string_within_the_tolerance() {
        let at = |secs| {
            Expected::Object(vec![(
                "t".into(),
                Expected::Time {
                    secs,
                    written: "now + 7d".into(),
                },
            )])
        };
        assert!(matches(&at(1000), &json!({"t": 1000})));
        assert!(matches(&at(1000), &json!({"t": "1005"})));
        assert!(matches(&at(1000), &json!({"t": 995})));
        assert!(!matches(&at(1000), &json!({"t": 1006})));
        assert!(!matches(&at(1000), &json!({"t": "soon"})));
        let d = diff_at(&at(1000), &json!({"t": "4600"}), "");
        assert_eq!(d[0].expected, "now + 7d (1000, ± 5s)");
        assert_eq!(d[0].got, "\"4600\" (1h later)");
        assert_eq!(at(1000).to_string(), "{\"t\":now + 7d (1000)}");
    }

    #[test]
    fn the_diff_names_the_field_with_its_full_path() {
        let d = best_match(
            &pat(json!({"cta_payload": "order-42", "event": "connect"})),
            &connect(),
        );
        assert_eq!(
            d,
            vec![Mismatch {
                path: "entry[0].changes[0].value.calls[0].cta_payload".into(),
                expected: "\"order-42\"".into(),
                got: "\"order-41\"".into()
            }]
        );
    }

    #[test]
    fn numbers_compare_by_value_and_absent_keys_are_reported() {
        assert!(matches(&pat(json!({"d": 120.0})), &json!({"d": 120})));
        let d = diff_at(&pat(json!({"duration": 120})), &json!({"id": "x"}), "");
        assert_eq!(d[0].got, "nothing (key absent)");
    }

    #[test]
    fn finds_keys_and_mentions() {
        assert_eq!(find_key(&connect(), "cta_payload").len(), 1);
        assert!(mentions(&connect(), "wacid.A"));
        assert_eq!(
            get_path(&connect(), "entry[0].changes[0].field"),
            Some(&json!("calls"))
        );
    }
}
