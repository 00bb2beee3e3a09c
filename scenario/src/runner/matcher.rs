//! JSON subset matching and the field-level differences shown when nothing matched.
//!
//! A pattern matches a body when it matches the body itself or any object or array
//! nested in it, so `{"cta_payload": "x"}` finds the call object inside the webhook
//! envelope without spelling out `entry[0].changes[0].value.calls[0]`.

use serde_json::Value;

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

fn show(v: &Value) -> String {
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
/// matches some element; numbers compare by value (`120` equals `120.0`).
pub fn diff_at(pat: &Value, actual: &Value, path: &str) -> Vec<Mismatch> {
    match (pat, actual) {
        (Value::Object(p), Value::Object(a)) => {
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
        (Value::Array(p), Value::Array(a)) => {
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
        (Value::Number(p), Value::Number(a)) if p.as_f64() == a.as_f64() => Vec::new(),
        (p, a) if p == a => Vec::new(),
        (p, a) => vec![Mismatch {
            path: if path.is_empty() {
                "(the body)".into()
            } else {
                path.to_string()
            },
            expected: show(p),
            got: show(a),
        }],
    }
}

/// The position in `actual` (the body or anything nested in it) where `pat` fits best,
/// with the differences there; an empty list means it matches.
pub fn best_match(pat: &Value, actual: &Value) -> Vec<Mismatch> {
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

pub fn matches(pat: &Value, actual: &Value) -> bool {
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

    #[test]
    fn a_pattern_matches_anywhere_in_the_body() {
        assert!(matches(&json!({"cta_payload": "order-41"}), &connect()));
        assert!(matches(
            &json!({"calls": [{"event": "connect"}]}),
            &connect()
        ));
        assert!(!matches(&json!({"cta_payload": "order-42"}), &connect()));
    }

    #[test]
    fn the_diff_names_the_field_with_its_full_path() {
        let d = best_match(
            &json!({"cta_payload": "order-42", "event": "connect"}),
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
        assert!(matches(&json!({"d": 120.0}), &json!({"d": 120})));
        let d = diff_at(&json!({"duration": 120}), &json!({"id": "x"}), "");
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
