//! The one JSON Schema validator of the tests, for both OpenAPI oracles: Meta's Graph
//! description (`openapi.rs`: OpenAPI 3.0 schemas with every `$ref` resolved, `nullable`)
//! and the emulator's own admin description (`admin_openapi.rs`: OpenAPI 3.1, that is JSON
//! Schema 2020-12, with `$ref`s into `#/components/schemas`, type lists and `const`).
//!
//! Small on purpose: it checks the keywords in [`CHECKED`] and reports every mismatch
//! with a JSON pointer, array indices written `*` so that a row of a deviation table names
//! a field rather than one element. A document may only rely on what is checked:
//! [`unchecked_keywords`] lists every other keyword a schema uses (annotations such as
//! `description` aside), so a test can refuse a description whose constraints this
//! validator would silently skip.

use serde_json::Value;

/// `(JSON pointer, what is wrong)`.
pub type Mismatch = (String, String);

/// The keywords [`validate`] checks.
pub const CHECKED: &[&str] = &[
    "$ref",
    "type",
    "nullable",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "allOf",
    "oneOf",
    "anyOf",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
];

/// Keywords that describe and do not constrain (JSON Schema 2020-12 treats `format` as an
/// annotation unless a validator opts in).
pub const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "examples",
    "example",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
    "format",
    "contentMediaType",
    "$comment",
];

/// How deep `$ref`s may nest without consuming any of the value: a guard against a
/// schema that refers to itself.
const MAX_DEPTH: usize = 64;

/// Validates `v` against `schema`, which is its own root for `$ref`s; appends a
/// [`Mismatch`] for each problem.
pub fn validate(schema: &Value, v: &Value, at: &str, out: &mut Vec<Mismatch>) {
    check(schema, schema, v, at, out, 0);
}

/// Validates `v` against `schema`, resolving `$ref`s (`#/…` pointers) in `root`.
pub fn validate_in(root: &Value, schema: &Value, v: &Value, at: &str, out: &mut Vec<Mismatch>) {
    check(root, schema, v, at, out, 0);
}

fn check(root: &Value, schema: &Value, v: &Value, at: &str, out: &mut Vec<Mismatch>, depth: usize) {
    let Some(s) = schema.as_object() else { return };
    if let Some(r) = s.get("$ref") {
        match resolve(root, r) {
            Some(target) if depth < MAX_DEPTH => check(root, target, v, at, out, depth + 1),
            Some(_) => out.push((at.to_owned(), format!("$ref {r} nests too deep"))),
            None => out.push((at.to_owned(), format!("$ref {r} does not resolve"))),
        }
    }
    if v.is_null() && s.get("nullable") == Some(&Value::Bool(true)) {
        return;
    }
    if let Some(t) = s.get("type") {
        let allowed: Vec<&str> = match t {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !allowed.iter().any(|t| is_type(v, t)) {
            out.push((
                at.to_owned(),
                format!("expected {}, got {}", allowed.join(" or "), type_of(v)),
            ));
            return;
        }
    }
    if let Some(Value::Array(values)) = s.get("enum") {
        if !values.contains(v) {
            out.push((
                at.to_owned(),
                format!("{v} is not one of {}", Value::Array(values.clone())),
            ));
        }
    }
    if let Some(c) = s.get("const") {
        if c != v {
            out.push((at.to_owned(), format!("{v} is not {c}")));
        }
    }
    bounds(s, v, at, out);
    if let Value::Object(m) = v {
        let props = s.get("properties").and_then(Value::as_object);
        for key in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !m.contains_key(key) {
                out.push((
                    at.to_owned(),
                    format!("required property {key:?} is missing"),
                ));
            }
        }
        for (key, value) in m {
            let path = format!("{at}/{key}");
            match props.and_then(|p| p.get(key)) {
                Some(sub) => check(root, sub, value, &path, out, depth),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        out.push((path, "is not a declared property".into()))
                    }
                    Some(sub @ Value::Object(_)) => check(root, sub, value, &path, out, depth),
                    _ => {}
                },
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (v, s.get("items")) {
        for item in items {
            check(root, item_schema, item, &format!("{at}/*"), out, depth);
        }
    }
    if let Some(Value::Array(all)) = s.get("allOf") {
        for sub in all {
            check(root, sub, v, at, out, depth);
        }
    }
    for (key, exactly_one) in [("oneOf", true), ("anyOf", false)] {
        let Some(Value::Array(branches)) = s.get(key) else {
            continue;
        };
        let results: Vec<Vec<Mismatch>> = branches
            .iter()
            .map(|b| {
                let mut errs = Vec::new();
                check(root, b, v, at, &mut errs, depth);
                errs
            })
            .collect();
        let matching = results.iter().filter(|r| r.is_empty()).count();
        if matching == 0 {
            let why: Vec<String> = results
                .iter()
                .enumerate()
                .map(|(i, r)| format!("branch {i}: {}", describe(r)))
                .collect();
            out.push((
                at.to_owned(),
                format!("matches none of the {key} branches ({})", why.join("; ")),
            ));
        } else if exactly_one && matching > 1 {
            out.push((
                at.to_owned(),
                format!(
                    "matches {matching} of the {} oneOf branches (they do not exclude each other)",
                    branches.len()
                ),
            ));
        }
    }
}

/// `minimum`/`maximum` (numbers), `minLength`/`maxLength` (characters),
/// `minItems`/`maxItems`.
fn bounds(s: &serde_json::Map<String, Value>, v: &Value, at: &str, out: &mut Vec<Mismatch>) {
    let limit = |key: &str| s.get(key).and_then(Value::as_f64);
    let size = match v {
        Value::Number(n) => n.as_f64().map(|n| ("minimum", "maximum", n, "")),
        Value::String(t) => Some((
            "minLength",
            "maxLength",
            t.chars().count() as f64,
            " characters",
        )),
        Value::Array(a) => Some(("minItems", "maxItems", a.len() as f64, " items")),
        _ => None,
    };
    let Some((lo_key, hi_key, n, unit)) = size else {
        return;
    };
    if let Some(lo) = limit(lo_key).filter(|lo| n < *lo) {
        out.push((at.to_owned(), format!("{n}{unit} is below {lo_key} {lo}")));
    }
    if let Some(hi) = limit(hi_key).filter(|hi| n > *hi) {
        out.push((at.to_owned(), format!("{n}{unit} is above {hi_key} {hi}")));
    }
}

/// A local `$ref` (`#/components/schemas/Name`), `~1` and `~0` unescaped by the pointer.
fn resolve<'a>(root: &'a Value, r: &Value) -> Option<&'a Value> {
    root.pointer(r.as_str()?.strip_prefix('#')?)
}

/// The mismatches on one line.
pub fn describe(errs: &[Mismatch]) -> String {
    errs.iter()
        .map(|(at, what)| format!("{at} {what}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every keyword of `schema` and its subschemas that is neither checked nor an
/// annotation, as `pointer: keyword`.
pub fn unchecked_keywords(schema: &Value, at: &str, out: &mut Vec<String>) {
    let Some(s) = schema.as_object() else { return };
    for (key, sub) in s {
        let here = format!("{at}/{key}");
        match key.as_str() {
            "properties" => {
                for (name, p) in sub.as_object().into_iter().flatten() {
                    unchecked_keywords(p, &format!("{here}/{name}"), out);
                }
            }
            "items" | "additionalProperties" => unchecked_keywords(sub, &here, out),
            "allOf" | "oneOf" | "anyOf" => {
                for (i, branch) in sub.as_array().into_iter().flatten().enumerate() {
                    unchecked_keywords(branch, &format!("{here}/{i}"), out);
                }
            }
            k if CHECKED.contains(&k) || ANNOTATIONS.contains(&k) => {}
            k => out.push(format!("{at}: {k}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errs(schema: &Value, v: Value) -> Vec<Mismatch> {
        let mut out = Vec::new();
        validate(schema, &v, "", &mut out);
        out
    }

    #[test]
    fn the_validator_catches_what_the_derived_schemas_can_express() {
        let schema = json!({"type": "object", "required": ["a"], "properties": {
            "a": {"type": "string", "enum": ["x", "y"]},
            "n": {"type": "integer", "nullable": true},
            "list": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                                                "properties": {"k": {"type": "boolean"}}}},
            "one": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}});
        assert!(errs(
            &schema,
            json!({"a": "x", "n": null, "list": [{"k": true}], "one": 1})
        )
        .is_empty());
        let found = errs(
            &schema,
            json!({"n": 1.5, "list": [{"k": 1, "z": 0}], "one": true}),
        );
        let at: Vec<&str> = found.iter().map(|(at, _)| at.as_str()).collect();
        assert_eq!(
            at,
            ["", "/n", "/list/*/k", "/list/*/z", "/one"],
            "{found:?}"
        );
        assert!(errs(&schema, json!({"a": "q"}))[0]
            .1
            .contains("is not one of"));
        let both = json!({"oneOf": [{"type": "object"}, {"type": "object"}]});
        assert!(errs(&both, json!({}))[0]
            .1
            .contains("matches 2 of the 2 oneOf branches"));
    }

    #[test]
    fn openapi_3_1_schemas_are_checked_through_refs_type_lists_consts_and_bounds() {
        let root = json!({"components": {"schemas": {
            "Clock": {"type": "object", "required": ["mode", "now"], "additionalProperties": false,
                      "properties": {"mode": {"enum": ["real", "virtual"]},
                                     "now": {"type": "integer", "minimum": 0}}},
            "Ok": {"type": "object", "properties": {"status": {"const": "ok"}}},
            "Name": {"type": ["string", "null"], "minLength": 1, "maxLength": 3},
            "List": {"type": "array", "maxItems": 1, "items": {"$ref": "#/components/schemas/Name"}}}}});
        let check = |name: &str, v: Value| {
            let mut out = Vec::new();
            let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
            validate_in(&root, &schema, &v, "", &mut out);
            out
        };
        assert!(check("Clock", json!({"mode": "real", "now": 3})).is_empty());
        let found = check("Clock", json!({"mode": "fast", "now": -1, "x": 0}));
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].1.contains("is not one of"), "{found:?}");
        assert!(found[1].1.contains("below minimum 0"), "{found:?}");
        assert_eq!(found[2].0, "/x", "{found:?}");
        assert!(check("Clock", json!({"mode": "real"}))[0]
            .1
            .contains("\"now\" is missing"));
        assert!(check("Ok", json!({"status": "ok"})).is_empty());
        assert!(check("Ok", json!({"status": "no"}))[0]
            .1
            .contains("is not \"ok\""));
        assert!(check("Name", Value::Null).is_empty());
        assert!(check("Name", json!("abcd"))[0]
            .1
            .contains("above maxLength"));
        let found = check("List", json!(["a", 1]));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].1.contains("above maxItems 1"), "{found:?}");
        assert_eq!(found[1].0, "/*", "{found:?}");
        assert!(check("Missing", json!(1))[0].1.contains("does not resolve"));
        let looping = json!({"$ref": "#"});
        assert!(errs(&looping, json!(1))[0].1.contains("nests too deep"));
    }

    #[test]
    fn keywords_the_validator_would_skip_are_named() {
        let schema = json!({"type": "object", "description": "d", "properties": {
            "a": {"type": "string", "pattern": "^x"},
            "b": {"type": "array", "items": {"uniqueItems": true}},
            "c": {"anyOf": [{"not": {"type": "null"}}]}}});
        let mut out = Vec::new();
        unchecked_keywords(&schema, "", &mut out);
        assert_eq!(
            out,
            [
                "/properties/a: pattern",
                "/properties/b/items: uniqueItems",
                "/properties/c/anyOf/0: not"
            ]
        );
    }
}
