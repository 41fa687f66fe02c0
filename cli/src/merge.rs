//! kubectl apply's three-way merge, approximated on plain JSON.
//!
//! kubectl computes a patch from three objects: the last-applied manifest (stored in an
//! annotation), the new manifest, and the live object. Fields the user stopped setting are
//! removed, fields the user sets win, and fields only the server or other clients set (status,
//! allocated IPs, a `scale`d replica count the manifest never mentioned) survive. kubectl merges
//! lists by key where Kubernetes' strategic-merge metadata says so; here lists are replaced
//! whole, which the apiserver tolerates because it re-defaults and keeps allocated values.

use serde_json::{Map, Value};

/// The annotation kubectl keeps the applied manifest in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The object to send: `live`, with `modified` deep-merged over it (maps merged, lists and
/// scalars replaced, `null` deleting) and with fields that were in `original` (the last-applied
/// manifest) but are no longer in `modified` removed.
pub fn three_way(live: &Value, original: Option<&Value>, modified: &Value) -> Value {
    let mut out = live.clone();
    merge_into(&mut out, original, modified);
    out
}

fn merge_into(live: &mut Value, original: Option<&Value>, modified: &Value) {
    match (live, modified) {
        (Value::Object(l), Value::Object(m)) => {
            if let Some(Value::Object(o)) = original {
                for key in o.keys() {
                    if !m.contains_key(key) {
                        l.remove(key);
                    }
                }
            }
            for (key, mv) in m {
                if mv.is_null() {
                    l.remove(key);
                    continue;
                }
                let ov = original.and_then(|o| o.get(key));
                match l.get_mut(key) {
                    Some(lv) if lv.is_object() && mv.is_object() => merge_into(lv, ov, mv),
                    _ => {
                        l.insert(key.clone(), without_nulls(mv));
                    }
                }
            }
        }
        (l, m) => *l = without_nulls(m),
    }
}

fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Whether applying `modified` would change nothing: every field it sets already has that value
/// in `live` (lists compared element by element, so server-defaulted fields inside list items
/// do not count as differences), and nothing dropped since `original` is still live.
pub fn unchanged(live: &Value, original: Option<&Value>, modified: &Value) -> bool {
    contained(modified, live) && !pending_removal(live, original, modified)
}

/// Whether every field of `want` is present with the same value in `have`.
pub fn contained(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w.iter().all(|(k, wv)| match h.get(k) {
            _ if wv.is_null() => h.get(k).is_none_or(Value::is_null),
            Some(hv) => contained(wv, hv),
            None => false,
        }),
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(wv, hv)| contained(wv, hv))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (w, h) => w == h,
    }
}

fn pending_removal(live: &Value, original: Option<&Value>, modified: &Value) -> bool {
    let (Value::Object(l), Some(Value::Object(o)), Value::Object(m)) = (live, original, modified) else {
        return false;
    };
    o.iter().any(|(key, ov)| match (m.get(key), l.get(key)) {
        (None, Some(_)) => true,
        (Some(mv), Some(lv)) if ov.is_object() => pending_removal(lv, Some(ov), mv),
        _ => false,
    })
}

/// A JSON merge patch (RFC 7386) turning `from` into `to`: what kubectl shows as "the patch" when
/// an apply fails.
pub fn merge_patch(from: &Value, to: &Value) -> Option<Value> {
    match (from, to) {
        (Value::Object(f), Value::Object(t)) => {
            let mut patch = Map::new();
            for (k, tv) in t {
                match f.get(k) {
                    None => {
                        patch.insert(k.clone(), tv.clone());
                    }
                    Some(fv) => {
                        if let Some(p) = merge_patch(fv, tv) {
                            patch.insert(k.clone(), p);
                        }
                    }
                }
            }
            for k in f.keys() {
                if !t.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        (f, t) if f == t => None,
        (_, t) => Some(t.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "orders", "namespace": "default", "resourceVersion": "7",
                         "uid": "u1", "labels": {"app": "orders", "team": "a"},
                         "annotations": {"deployment.kubernetes.io/revision": "1"}},
            "spec": {"replicas": 5, "selector": {"matchLabels": {"app": "orders"}},
                     "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1",
                                   "imagePullPolicy": "IfNotPresent"}]}}},
            "status": {"readyReplicas": 5}
        })
    }

    #[test]
    fn manifest_wins_server_fields_survive_dropped_fields_go() {
        let original = json!({"metadata": {"name": "orders", "labels": {"app": "orders", "team": "a"}},
                              "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}});
        let modified = json!({"metadata": {"name": "orders", "labels": {"app": "orders"}},
                              "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}});
        let merged = three_way(&live(), Some(&original), &modified);
        // Dropped from the manifest: removed.
        assert_eq!(merged["metadata"]["labels"], json!({"app": "orders"}));
        // Lists are replaced whole.
        assert_eq!(
            merged["spec"]["template"]["spec"]["containers"],
            json!([{"name": "web", "image": "nginx:2"}])
        );
        // Never in any manifest: kept, including the precondition and status.
        assert_eq!(merged["spec"]["replicas"], 5);
        assert_eq!(merged["metadata"]["resourceVersion"], "7");
        assert_eq!(merged["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1");
        assert_eq!(merged["status"]["readyReplicas"], 5);
    }

    #[test]
    fn null_deletes_and_unknown_original_deletes_nothing() {
        let modified = json!({"metadata": {"labels": {"team": null}}});
        let merged = three_way(&live(), None, &modified);
        assert_eq!(merged["metadata"]["labels"], json!({"app": "orders"}));
        assert_eq!(merged["spec"]["replicas"], 5);
    }

    #[test]
    fn unchanged_ignores_server_defaults_inside_lists() {
        let modified = json!({"metadata": {"name": "orders", "labels": {"app": "orders", "team": "a"}},
                              "spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}});
        assert!(unchanged(&live(), Some(&modified), &modified));
        let scaled = json!({"spec": {"replicas": 3}});
        assert!(!unchanged(&live(), None, &scaled));
        // A label dropped from the manifest but still live is a change.
        let original = json!({"metadata": {"labels": {"app": "orders", "team": "a"}}});
        let modified = json!({"metadata": {"labels": {"app": "orders"}}});
        assert!(!unchanged(&live(), Some(&original), &modified));
        // 80 and 80.0 are the same number.
        assert!(contained(&json!({"p": 80}), &json!({"p": 80.0})));
    }

    #[test]
    fn merge_patch_shows_what_changes() {
        let from = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]});
        let to = json!({"a": 1, "b": {"c": 4}, "e": [1, 2], "f": true});
        assert_eq!(
            merge_patch(&from, &to).unwrap(),
            json!({"b": {"c": 4, "d": null}, "e": [1, 2], "f": true})
        );
        assert_eq!(merge_patch(&from, &from), None);
    }
}
