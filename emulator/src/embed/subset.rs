//! JSON subset matching for [`WebhookPattern::with`](super::WebhookPattern::with) and
//! [`RequestPattern::with`](super::RequestPattern::with), and the differences a miss
//! shows: the pattern fits the body itself or anything nested in it, and when it fits
//! nowhere, the place where it came closest says what differs.

use serde_json::Value;

/// A value for a message, cut at 120 characters.
pub(super) fn shown(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The differences between `pattern` and `actual` at the same place (empty: it fits).
fn fit(pattern: &Value, actual: &Value, path: &str, out: &mut Vec<Diff>) {
    match (pattern, actual) {
        (Value::Object(p), Value::Object(a)) => {
            for (k, pv) in p {
                match a.get(k) {
                    Some(av) => fit(pv, av, &child(path, k), out),
                    None => out.push(Diff::absent(child(path, k), pv)),
                }
            }
        }
        (Value::Array(p), Value::Array(a)) => {
            for (i, pv) in p.iter().enumerate() {
                let nearest = a
                    .iter()
                    .enumerate()
                    .map(|(j, av)| {
                        let mut d = Vec::new();
                        fit(pv, av, &format!("{path}[{j}]"), &mut d);
                        d
                    })
                    .min_by_key(|d| weight(d));
                match nearest {
                    Some(d) => out.extend(d),
                    None => out.push(Diff {
                        path: format!("{path}[{i}]"),
                        expected: shown(pv),
                        got: "an empty array".into(),
                        far: true,
                    }),
                }
            }
        }
        (Value::Number(p), Value::Number(a)) if p.as_f64() == a.as_f64() => {}
        (p, a) if p == a => {}
        (p, a) => out.push(Diff {
            path: if path.is_empty() {
                "(the body)".into()
            } else {
                path.to_owned()
            },
            expected: shown(p),
            got: shown(a),
            // A value of another kind (an object where a string was expected) is as far
            // off as no value at all.
            far: std::mem::discriminant(p) != std::mem::discriminant(a),
        }),
    }
}

struct Diff {
    path: String,
    expected: String,
    got: String,
    /// The key is missing, or its value is of another kind: a farther miss than a
    /// wrong value.
    far: bool,
}

impl Diff {
    fn absent(path: String, expected: &Value) -> Self {
        Diff {
            path,
            expected: shown(expected),
            got: "nothing (the key is absent)".into(),
            far: true,
        }
    }
}

fn weight(d: &[Diff]) -> usize {
    d.iter().map(|d| if d.far { 2 } else { 1 }).sum()
}

/// Where in `actual` (itself or anything nested) `pattern` fits best, and what differs
/// there; empty when it fits somewhere.
pub(super) fn best_match(pattern: &Value, actual: &Value) -> Vec<String> {
    let mut best: Option<Vec<Diff>> = None;
    let mut places = vec![(String::new(), actual)];
    while let Some((path, v)) = places.pop() {
        // Only the body itself and places of the pattern's own kind are candidates: an
        // object pattern is not "closest" to a string two levels down.
        let candidate = path.is_empty()
            || matches!(
                (pattern, v),
                (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_))
            );
        if candidate {
            let mut d = Vec::new();
            fit(pattern, v, &path, &mut d);
            if d.is_empty() {
                return Vec::new();
            }
            if best.as_ref().is_none_or(|b| weight(&d) < weight(b)) {
                best = Some(d);
            }
        }
        match v {
            Value::Object(m) => places.extend(m.iter().rev().map(|(k, c)| (child(&path, k), c))),
            Value::Array(a) => places.extend(
                a.iter()
                    .enumerate()
                    .rev()
                    .map(|(i, c)| (format!("{path}[{i}]"), c)),
            ),
            _ => {}
        }
    }
    best.unwrap_or_default()
        .into_iter()
        .map(|d| format!("{}: expected {}, got {}", d.path, d.expected, d.got))
        .collect()
}

/// Every place a key occurs in `v`, with its value.
pub(super) fn find_key(v: &Value, key: &str, path: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = child(path, k);
                if k == key {
                    out.push((p.clone(), c.clone()));
                }
                out.extend(find_key(c, key, &p));
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                out.extend(find_key(c, key, &format!("{path}[{i}]")));
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pattern_fits_anywhere_in_the_body_and_numbers_compare_by_value() {
        let body = json!({"entry": [{"changes": [{"value": {"calls": [
            {"id": "a", "duration": 42.0, "errors": [{"code": 1}, {"code": 138021}]}
        ]}}]}]});
        assert!(best_match(&json!({"id": "a", "duration": 42}), &body).is_empty());
        assert!(best_match(&json!({"errors": [{"code": 138021}]}), &body).is_empty());
        assert!(best_match(&body, &body).is_empty());
    }

    #[test]
    fn a_miss_names_the_closest_place_and_each_difference() {
        let body = json!({"calls": [{"id": "a", "status": "COMPLETED"}], "status": 3});
        assert_eq!(
            best_match(&json!({"id": "b", "status": "COMPLETED"}), &body),
            ["calls[0].id: expected \"b\", got \"a\""]
        );
        // A value of the same kind is nearer than one of another kind (a number where a
        // string was expected), which is as far off as no value at all.
        assert_eq!(
            best_match(&json!({"status": "FAILED"}), &body),
            ["calls[0].status: expected \"FAILED\", got \"COMPLETED\""]
        );
        assert_eq!(
            best_match(&json!({"missing": 1}), &json!({})),
            ["missing: expected 1, got nothing (the key is absent)"]
        );
        assert_eq!(
            best_match(&json!({"list": [1]}), &json!({"list": []})),
            ["list[0]: expected 1, got an empty array"]
        );
    }

    #[test]
    fn keys_are_found_at_any_depth() {
        let body = json!({"a": {"cta_payload": "P"}, "b": [{"cta_payload": "Q"}]});
        assert_eq!(
            find_key(&body, "cta_payload", ""),
            [
                ("a.cta_payload".to_owned(), json!("P")),
                ("b[0].cta_payload".to_owned(), json!("Q"))
            ]
        );
    }

    #[test]
    fn long_values_are_cut() {
        let long = Value::String("x".repeat(300));
        let s = shown(&long);
        assert_eq!(s.chars().count(), 121);
        assert!(s.ends_with('…'));
    }
}
