//! Reading an object's JSON as Go would have decoded it: a missing string is "", a missing
//! list is empty, null is nil, and semantic equality ignores zero values. Validators read fields
//! only through these, so that every check treats absent and zero alike.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The string at `key`, or "" (Go's zero value).
pub(crate) fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The list at `key`, or empty.
pub(crate) fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// The value at `key` unless absent or null (a Go nil pointer).
pub(crate) fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

pub(crate) fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

pub(crate) fn boolean(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The `map[string]string` at `key`, sorted by key.
pub(crate) fn string_map(v: &Value, key: &str) -> BTreeMap<String, String> {
    v.get(key)
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
        .unwrap_or_default()
}

/// A `map[string]string` as the bad value: `null` when nil, as Go renders a nil map.
pub(crate) fn map_value(v: &Value, key: &str) -> Value {
    match v.get(key) {
        Some(m @ Value::Object(_)) => m.clone(),
        _ => Value::Null,
    }
}

pub(crate) const NULL: Value = Value::Null;

pub(crate) fn spec_of(obj: &Value) -> &Value {
    obj.get("spec").unwrap_or(&NULL)
}

pub(crate) fn meta_of(obj: &Value) -> &Value {
    obj.get("metadata").unwrap_or(&NULL)
}

/// An intstr: a number or a string.
pub(crate) enum IntOrString<'a> {
    Int(i64),
    Str(&'a str),
}

pub(crate) fn int_or_string(v: &Value) -> IntOrString<'_> {
    match v {
        Value::Number(n) => IntOrString::Int(n.as_i64().unwrap_or(0)),
        Value::String(s) => IntOrString::Str(s),
        _ => IntOrString::Int(0),
    }
}

/// Removes what Go's semantic equality cannot see: nulls, zero scalars, empty lists and maps
/// (nil and empty compare equal there, as do unset and zero value fields).
pub(crate) fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let n = normalized(v);
                if !is_zero(&n) {
                    out.insert(k.clone(), n);
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

pub(crate) fn sem_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    normalized(a.unwrap_or(&NULL)) == normalized(b.unwrap_or(&NULL))
}
