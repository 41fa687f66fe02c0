//! What a CRD's OpenAPI schema checks (apiextensions-apiserver with kube-openapi's validator),
//! in its words: `spec.duration: Invalid value: "integer": spec.duration in body must be of type
//! string: "integer"`, `spec.action: Unsupported value: "x": supported values: ...`, `... in body
//! should match '<pattern>'`, `... in body should be greater than or equal to 1`.
//!
//! Each reader takes the parent object, the key and the key's path, reports a wrong type and
//! hands back the value only when it has the schema's type, so the checks after it see only
//! well-typed values. A null counts as absent: the apiserver prunes nulls of non-nullable
//! fields before it validates.

use serde_json::Value;

use super::super::field::FieldError;

/// The JSON type of `v` as kube-openapi names it.
fn type_name(v: &Value) -> &'static str {
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

/// `<path> in body must be of type <want>: "<actual>"`.
pub(super) fn wrong_type(path: &str, v: &Value, want: &str) -> FieldError {
    let actual = type_name(v);
    FieldError::invalid(path, actual, format!("{path} in body must be of type {want}: \"{actual}\""))
}

/// `parent.key` unless absent or null.
fn present<'a>(parent: &'a Value, key: &str) -> Option<&'a Value> {
    parent.get(key).filter(|v| !v.is_null())
}

/// A child path: `spec` + `delay` → `spec.delay`.
pub(super) fn child(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

/// A string field.
pub(super) fn string<'a>(
    parent: &'a Value,
    key: &str,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Option<&'a str> {
    let v = present(parent, key)?;
    match v.as_str() {
        Some(s) => Some(s),
        None => {
            errs.push(wrong_type(&child(path, key), v, "string"));
            None
        }
    }
}

/// An object field.
pub(super) fn object<'a>(
    parent: &'a Value,
    key: &str,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Option<&'a Value> {
    let v = present(parent, key)?;
    if v.is_object() {
        Some(v)
    } else {
        errs.push(wrong_type(&child(path, key), v, "object"));
        None
    }
}

/// An integer field.
pub(super) fn integer(parent: &Value, key: &str, path: &str, errs: &mut Vec<FieldError>) -> Option<i64> {
    let v = present(parent, key)?;
    match v.as_i64() {
        Some(n) => Some(n),
        // An integer beyond int64 has the schema's type; decoding it into the kind's type refuses
        // it afterwards (400, as the real apiserver's decoder does).
        None if v.is_u64() => None,
        None => {
            errs.push(wrong_type(&child(path, key), v, "integer"));
            None
        }
    }
}

/// A list.
pub(super) fn array<'a>(
    parent: &'a Value,
    key: &str,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Option<&'a [Value]> {
    let v = present(parent, key)?;
    match v.as_array() {
        Some(items) => Some(items),
        None => {
            errs.push(wrong_type(&child(path, key), v, "array"));
            None
        }
    }
}

/// A list of strings; items of another type are reported at `path.key[i]`.
pub(super) fn strings<'a>(
    parent: &'a Value,
    key: &str,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Option<Vec<&'a str>> {
    let items = array(parent, key, path, errs)?;
    let path = child(path, key);
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(s) => out.push(s),
            None => errs.push(wrong_type(&format!("{path}[{i}]"), item, "string")),
        }
    }
    Some(out)
}

/// A `map[string]string`; values of another type are reported at `path.key.<k>`.
pub(super) fn string_map(parent: &Value, key: &str, path: &str, errs: &mut Vec<FieldError>) {
    let Some(m) = object(parent, key, path, errs).and_then(Value::as_object) else {
        return;
    };
    let path = child(path, key);
    for (k, v) in m {
        if !v.is_string() {
            errs.push(wrong_type(&child(&path, k), v, "string"));
        }
    }
}

/// A `map[string][]string` (`selector.pods`).
pub(super) fn string_list_map(parent: &Value, key: &str, path: &str, errs: &mut Vec<FieldError>) {
    let Some(m) = object(parent, key, path, errs).and_then(Value::as_object) else {
        return;
    };
    let path = child(path, key);
    for (k, v) in m {
        let path = child(&path, k);
        match v.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate().filter(|(_, item)| !item.is_string()) {
                    errs.push(wrong_type(&format!("{path}[{i}]"), item, "string"));
                }
            }
            None => errs.push(wrong_type(&path, v, "array")),
        }
    }
}

/// A field listed in the schema's `required`.
pub(super) fn required(parent: &Value, key: &str, path: &str, errs: &mut Vec<FieldError>) -> bool {
    let there = present(parent, key).is_some();
    if !there {
        errs.push(FieldError::required(child(path, key), ""));
    }
    there
}

/// A string with an `enum`.
pub(super) fn one_of<'a>(
    parent: &'a Value,
    key: &str,
    path: &str,
    supported: &[&str],
    errs: &mut Vec<FieldError>,
) -> Option<&'a str> {
    let s = string(parent, key, path, errs)?;
    if supported.contains(&s) {
        Some(s)
    } else {
        errs.push(FieldError::not_supported(child(path, key), s, supported));
        None
    }
}

/// A string with a `pattern`: `<path> in body should match '<pattern>'`.
pub(super) fn pattern(
    parent: &Value,
    key: &str,
    path: &str,
    (text, matches): (&str, fn(&str) -> bool),
    errs: &mut Vec<FieldError>,
) {
    if let Some(s) = string(parent, key, path, errs)
        && !matches(s)
    {
        let path = child(path, key);
        errs.push(FieldError::invalid(path.clone(), s, format!("{path} in body should match '{text}'")));
    }
}

/// An integer with a `minimum`: `<path> in body should be greater than or equal to <min>`.
pub(super) fn minimum(parent: &Value, key: &str, path: &str, min: i64, errs: &mut Vec<FieldError>) {
    if let Some(n) = integer(parent, key, path, errs)
        && n < min
    {
        let path = child(path, key);
        errs.push(FieldError::invalid(
            path.clone(),
            n,
            format!("{path} in body should be greater than or equal to {min}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn msgs(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn kube_openapi_texts() {
        let spec = json!({"duration": 5, "nodes": ["a", 1], "gracePeriod": -1, "ratio": 1.5, "n": null});
        let mut errs = Vec::new();
        assert_eq!(string(&spec, "duration", "spec", &mut errs), None);
        assert_eq!(strings(&spec, "nodes", "spec", &mut errs), Some(vec!["a"]));
        minimum(&spec, "gracePeriod", "spec", 0, &mut errs);
        integer(&spec, "ratio", "spec", &mut errs);
        assert!(!required(&spec, "n", "spec", &mut errs));
        assert_eq!(
            msgs(&errs),
            [
                "spec.duration: Invalid value: \"integer\": spec.duration in body must be of type string: \"integer\"",
                "spec.nodes[1]: Invalid value: \"integer\": spec.nodes[1] in body must be of type string: \"integer\"",
                "spec.gracePeriod: Invalid value: -1: spec.gracePeriod in body should be greater than or equal to 0",
                "spec.ratio: Invalid value: \"number\": spec.ratio in body must be of type integer: \"number\"",
                "spec.n: Required value",
            ]
        );
    }
}
