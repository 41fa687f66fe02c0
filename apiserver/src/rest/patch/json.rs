//! JSON patch (RFC 6902, `application/json-patch+json`): what `kubectl patch --type=json`
//! sends. A list of operations (`add`, `remove`, `replace`, `move`, `copy`, `test`) on JSON
//! pointers (RFC 6901), applied in order; the first that fails fails the patch and nothing is
//! written. The messages follow the library upstream uses (`evanphx/json-patch`).
//!
//! Small enough to own rather than add a crate for: the operations are a few lines each over
//! `serde_json::Value`.

use serde_json::Value;

/// Why a JSON patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonPatchError {
    /// The body is not a list of operations.
    #[error("{0}")]
    Decode(String),
    /// An operation names a path the document does not have.
    #[error("{op} operation does not apply: doc is missing path: \"{path}\": missing value")]
    Missing {
        /// The operation.
        op: String,
        /// Its path.
        path: String,
    },
    /// A `replace` of a key the (existing) parent does not have.
    #[error("replace operation does not apply: doc is missing key: {path}: missing value")]
    MissingKey {
        /// Its path.
        path: String,
    },
    /// A `test` found another value.
    #[error("testing value {path} failed: test failed")]
    TestFailed {
        /// The path tested.
        path: String,
    },
    /// An operation the RFC does not define.
    #[error("Unexpected kind: {0}")]
    UnknownOp(String),
    /// A malformed pointer or index.
    #[error("{0}")]
    BadPath(String),
}

/// Applies the operations in `patch` (the request body, decoded) to `doc`.
pub fn apply(doc: &Value, patch: &Value) -> Result<Value, JsonPatchError> {
    let ops = patch.as_array().ok_or_else(|| {
        JsonPatchError::Decode("json: cannot unmarshal object into Go value of type jsonpatch.Patch".into())
    })?;
    let mut out = doc.clone();
    for op in ops {
        let name = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = || -> Result<&str, JsonPatchError> {
            op.get("path")
                .and_then(Value::as_str)
                .ok_or_else(|| JsonPatchError::Decode(format!("{name} operation missing path")))
        };
        let value = || -> Result<Value, JsonPatchError> {
            op.get("value")
                .cloned()
                .ok_or_else(|| JsonPatchError::Decode(format!("{name} operation missing value")))
        };
        let from = || -> Result<&str, JsonPatchError> {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| JsonPatchError::Decode(format!("{name} operation missing from")))
        };
        match name {
            "add" => add(&mut out, name, path()?, value()?)?,
            "remove" => {
                remove(&mut out, name, path()?)?;
            }
            "replace" => {
                let p = path()?;
                let v = value()?;
                let t = tokens(p)?;
                if lookup(&out, &t).is_none() {
                    let parent_exists = t.len() > 1 && lookup(&out, &t[..t.len() - 1]).is_some();
                    return Err(if parent_exists {
                        JsonPatchError::MissingKey { path: p.to_string() }
                    } else {
                        JsonPatchError::BadPath(format!(
                            "replace operation does not apply: doc is missing path: {p}: missing value"
                        ))
                    });
                }
                if let Some(target) = lookup_mut(&mut out, &t) {
                    *target = v;
                }
            }
            "move" => {
                let (f, p) = (from()?, path()?);
                if p.starts_with(&format!("{f}/")) {
                    return Err(JsonPatchError::BadPath(format!(
                        "Unable to move \"{f}\" into its own child \"{p}\""
                    )));
                }
                let v = remove(&mut out, name, f)?;
                add(&mut out, name, p, v)?;
            }
            "copy" => {
                let f = from()?;
                let v = get_mut(&mut out, name, f)?.clone();
                add(&mut out, name, path()?, v)?;
            }
            "test" => {
                let p = path()?;
                let want = op.get("value").cloned().unwrap_or(Value::Null);
                let have = tokens(p).ok().and_then(|t| lookup(&out, &t));
                if have != Some(&want) {
                    return Err(JsonPatchError::TestFailed { path: p.to_string() });
                }
            }
            other => return Err(JsonPatchError::UnknownOp(other.to_string())),
        }
    }
    Ok(out)
}

/// A pointer's reference tokens, unescaped (`~1` is `/`, `~0` is `~`).
fn tokens(pointer: &str) -> Result<Vec<String>, JsonPatchError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(JsonPatchError::BadPath(format!(
            "JSON pointer must be empty or start with a \"/\": {pointer:?}"
        )));
    };
    Ok(rest.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
}

fn index(token: &str, len: usize, inclusive: bool) -> Option<usize> {
    if token.len() > 1 && token.starts_with('0') {
        return None;
    }
    let i: usize = token.parse().ok()?;
    (i < len || (inclusive && i == len)).then_some(i)
}

fn lookup<'a>(doc: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens.iter().try_fold(doc, |v, t| match v {
        Value::Object(m) => m.get(t),
        Value::Array(a) => index(t, a.len(), false).and_then(|i| a.get(i)),
        _ => None,
    })
}

fn lookup_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    tokens.iter().try_fold(doc, |v, t| match v {
        Value::Object(m) => m.get_mut(t),
        Value::Array(a) => {
            let len = a.len();
            index(t, len, false).and_then(|i| a.get_mut(i))
        }
        _ => None,
    })
}

fn missing(op: &str, path: &str) -> JsonPatchError {
    JsonPatchError::Missing { op: op.to_string(), path: path.to_string() }
}

fn get_mut<'a>(doc: &'a mut Value, op: &str, path: &str) -> Result<&'a mut Value, JsonPatchError> {
    let t = tokens(path)?;
    lookup_mut(doc, &t).ok_or_else(|| missing(op, path))
}

fn add(doc: &mut Value, op: &str, path: &str, value: Value) -> Result<(), JsonPatchError> {
    let t = tokens(path)?;
    let Some((last, parent)) = t.split_last() else {
        *doc = value;
        return Ok(());
    };
    match lookup_mut(doc, parent) {
        Some(Value::Object(m)) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Some(Value::Array(a)) => {
            let i = if last == "-" {
                a.len()
            } else {
                index(last, a.len(), true).ok_or_else(|| missing(op, path))?
            };
            a.insert(i, value);
            Ok(())
        }
        _ => Err(missing(op, path)),
    }
}

fn remove(doc: &mut Value, op: &str, path: &str) -> Result<Value, JsonPatchError> {
    let t = tokens(path)?;
    let Some((last, parent)) = t.split_last() else {
        return Ok(std::mem::take(doc));
    };
    match lookup_mut(doc, parent) {
        Some(Value::Object(m)) => m.remove(last).ok_or_else(|| missing(op, path)),
        Some(Value::Array(a)) => {
            let i = index(last, a.len(), false).ok_or_else(|| missing(op, path))?;
            Ok(a.remove(i))
        }
        _ => Err(missing(op, path)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ok(doc: Value, patch: Value) -> Value {
        apply(&doc, &patch).unwrap_or_else(|e| panic!("{patch}: {e}"))
    }

    /// RFC 6902's appendix A examples.
    #[test]
    fn rfc_6902_examples() {
        assert_eq!(
            ok(json!({"foo": "bar"}), json!([{"op": "add", "path": "/baz", "value": "qux"}])),
            json!({"baz": "qux", "foo": "bar"})
        );
        assert_eq!(
            ok(json!({"foo": ["bar", "baz"]}), json!([{"op": "add", "path": "/foo/1", "value": "qux"}])),
            json!({"foo": ["bar", "qux", "baz"]})
        );
        assert_eq!(
            ok(json!({"baz": "qux", "foo": "bar"}), json!([{"op": "remove", "path": "/baz"}])),
            json!({"foo": "bar"})
        );
        assert_eq!(
            ok(json!({"foo": ["bar", "qux", "baz"]}), json!([{"op": "remove", "path": "/foo/1"}])),
            json!({"foo": ["bar", "baz"]})
        );
        assert_eq!(
            ok(
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "replace", "path": "/baz", "value": "boo"}])
            ),
            json!({"baz": "boo", "foo": "bar"})
        );
        assert_eq!(
            ok(
                json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
                json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}])
            ),
            json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}})
        );
        assert_eq!(
            ok(
                json!({"foo": ["all", "grass", "cows", "eat"]}),
                json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}])
            ),
            json!({"foo": ["all", "cows", "eat", "grass"]})
        );
        assert_eq!(
            ok(json!({"foo": ["bar"]}), json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}])),
            json!({"foo": ["bar", ["abc", "def"]]})
        );
        assert_eq!(
            ok(json!({"/": 1, "m~n": 2}), json!([{"op": "copy", "from": "/m~0n", "path": "/a~1b"}])),
            json!({"/": 1, "m~n": 2, "a/b": 2})
        );
        assert_eq!(
            ok(json!({"baz": "qux"}), json!([{"op": "test", "path": "/baz", "value": "qux"}])),
            json!({"baz": "qux"})
        );
    }

    #[test]
    fn failures_leave_the_document_alone() {
        let doc = json!({"spec": {"replicas": 1}});
        let e = apply(&doc, &json!([{"op": "test", "path": "/spec/replicas", "value": 2}])).unwrap_err();
        assert_eq!(e.to_string(), "testing value /spec/replicas failed: test failed");
        let e = apply(&doc, &json!([{"op": "replace", "path": "/spec/nope/x", "value": 2}])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "replace operation does not apply: doc is missing path: /spec/nope/x: missing value"
        );
        let e = apply(&doc, &json!([{"op": "replace", "path": "/spec/nope", "value": 2}])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "replace operation does not apply: doc is missing key: /spec/nope: missing value"
        );
        let e = apply(&doc, &json!([{"op": "add", "path": "/a/b", "value": 1}])).unwrap_err();
        assert!(matches!(e, JsonPatchError::Missing { .. }));
        let e = apply(&doc, &json!([{"op": "remove", "path": "/spec/x"}])).unwrap_err();
        assert!(matches!(e, JsonPatchError::Missing { .. }));
        assert!(matches!(
            apply(&doc, &json!([{"op": "frob", "path": "/a"}])).unwrap_err(),
            JsonPatchError::UnknownOp(_)
        ));
        assert!(matches!(apply(&doc, &json!({"op": "add"})).unwrap_err(), JsonPatchError::Decode(_)));
        // Leading zeros and out-of-range indexes are not indexes.
        let list = json!({"a": [1, 2]});
        assert!(apply(&list, &json!([{"op": "replace", "path": "/a/01", "value": 0}])).is_err());
        assert!(apply(&list, &json!([{"op": "add", "path": "/a/3", "value": 0}])).is_err());
        assert_eq!(ok(list, json!([{"op": "add", "path": "/a/2", "value": 3}])), json!({"a": [1, 2, 3]}));
    }
}
