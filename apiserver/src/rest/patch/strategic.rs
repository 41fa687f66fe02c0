//! Strategic merge patch (`application/strategic-merge-patch+json`): what `kubectl apply`,
//! `kubectl patch` (its default), `kubectl set image` and `kubectl rollout restart` send.
//!
//! A JSON merge patch, except for lists: a list whose Go field is tagged
//! `patchStrategy:"merge"` merges element by element, matched on its `patchMergeKey`
//! (containers by `name`, a container's ports by `containerPort`, a Service's ports by
//! `port`, ...); a list of strings tagged so (`metadata.finalizers`) is a set union; every
//! other list is replaced whole. [`list_strategy`] is that table for the kinds served, from
//! upstream's `k8s.io/api` struct tags.
//!
//! Directives, as upstream's `strategicpatch` reads them:
//! - `$patch: replace` in a map replaces the map; as a list element, replaces the list;
//! - `$patch: delete` in a map deletes it; as a keyed list element, deletes the element with
//!   that key;
//! - `$retainKeys: [..]` keeps only the listed keys of the map (a `retainKeys` field such as a
//!   Deployment's `strategy`, so that switching `type` drops `rollingUpdate`);
//! - `$deleteFromPrimitiveList/<field>: [..]` removes values from a merged list of strings;
//! - `$setElementOrder/<field>: [..]` orders a merged list: the listed elements in that order,
//!   with the elements only the server had interleaved by their old positions (upstream's
//!   `normalizeElementOrder` and `mergeSortedSlice`).
//!
//! Custom resources (the fault kinds) have no Go struct tags; upstream refuses strategic merge
//! for them with a 415, and kubectl then uses a merge patch. The caller does the same.

use netlab_proto::apiserver::v1::Resource;
use serde_json::{Map, Value};

/// How a list field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// Replaced whole (no patch strategy, or `atomic`).
    Replace,
    /// Merged element by element, matched on this key.
    MergeByKey(&'static str),
    /// A set of scalars: union.
    MergeScalars,
}

/// Why a strategic merge patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategicError {
    /// An element of a keyed list without its key.
    #[error("map: {element} does not contain declared merge key: {key}")]
    MissingMergeKey {
        /// The element, as JSON.
        element: String,
        /// The merge key.
        key: &'static str,
    },
    /// `$patch` with a value upstream does not know.
    #[error("Unknown patch type: {0}")]
    UnknownPatchType(String),
    /// A directive whose value has the wrong shape.
    #[error("invalid {directive} directive: {detail}")]
    BadDirective {
        /// The directive (`$retainKeys`).
        directive: String,
        /// What is wrong.
        detail: String,
    },
}

/// The patch strategy of the list at `path` (field names from the object's root, list indexes
/// left out) in an object of `resource`.
pub fn list_strategy(resource: Resource, path: &[&str]) -> ListStrategy {
    use ListStrategy::*;
    let Some((&field, parents)) = path.split_last() else { return Replace };
    let parent = parents.last().copied().unwrap_or("");
    let is_container = matches!(parent, "containers" | "initContainers" | "ephemeralContainers");
    match field {
        "containers" | "initContainers" | "ephemeralContainers" => MergeByKey("name"),
        "env" if is_container => MergeByKey("name"),
        "volumeMounts" if is_container => MergeByKey("mountPath"),
        "volumeDevices" if is_container => MergeByKey("devicePath"),
        "resizePolicy" if is_container => Replace,
        "ports" if is_container => MergeByKey("containerPort"),
        "ports" if resource == Resource::Services && path == ["spec", "ports"] => MergeByKey("port"),
        "volumes" | "imagePullSecrets" | "resourceClaims" if parent == "spec" => MergeByKey("name"),
        "hostAliases" if parent == "spec" => MergeByKey("ip"),
        "topologySpreadConstraints" if parent == "spec" => MergeByKey("topologyKey"),
        "conditions" if parent == "status" => MergeByKey("type"),
        "addresses" if resource == Resource::Nodes && path == ["status", "addresses"] => MergeByKey("type"),
        "podCIDRs" if resource == Resource::Nodes => MergeScalars,
        "ownerReferences" if parent == "metadata" => MergeByKey("uid"),
        "finalizers" if parent == "metadata" => MergeScalars,
        _ => Replace,
    }
}

/// Applies `patch` to `original`, an object of `resource`.
pub fn apply(resource: Resource, original: &Value, patch: &Value) -> Result<Value, StrategicError> {
    let (Value::Object(orig), Value::Object(p)) = (original, patch) else {
        return Ok(patch.clone());
    };
    let mut out = orig.clone();
    let mut path = Vec::new();
    match merge_map(resource, &mut out, p, &mut path)? {
        Outcome::Keep => Ok(Value::Object(out)),
        Outcome::Delete => Ok(Value::Object(Map::new())),
    }
}

/// What became of a map.
enum Outcome {
    Keep,
    /// `$patch: delete`.
    Delete,
}

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_FROM: &str = "$deleteFromPrimitiveList/";

fn merge_map<'a>(
    resource: Resource,
    orig: &mut Map<String, Value>,
    patch: &'a Map<String, Value>,
    path: &mut Vec<&'a str>,
) -> Result<Outcome, StrategicError> {
    match patch.get(PATCH).map(|v| v.as_str().unwrap_or("")) {
        None | Some("merge") => merge_fields(resource, orig, patch, path).map(|()| Outcome::Keep),
        Some("replace") => {
            let mut fresh = Map::new();
            merge_fields(resource, &mut fresh, patch, path)?;
            *orig = fresh;
            Ok(Outcome::Keep)
        }
        Some("delete") => Ok(Outcome::Delete),
        Some(other) => Err(StrategicError::UnknownPatchType(other.to_string())),
    }
}

/// Merges every field of `patch` but `$patch` into `orig`.
fn merge_fields<'a>(
    resource: Resource,
    orig: &mut Map<String, Value>,
    patch: &'a Map<String, Value>,
    path: &mut Vec<&'a str>,
) -> Result<(), StrategicError> {
    // Each ordered list, with the server's order before the merge.
    let mut orders: Vec<(&str, &Vec<Value>, Vec<Value>)> = Vec::new();
    for (key, value) in patch {
        if key == PATCH || key == RETAIN_KEYS {
            continue;
        }
        if let Some(field) = key.strip_prefix(SET_ORDER) {
            let order = value.as_array().ok_or_else(|| bad(key, "must be a list"))?;
            let server = orig.get(field).and_then(Value::as_array).cloned().unwrap_or_default();
            orders.push((field, order, server));
            continue;
        }
        if let Some(field) = key.strip_prefix(DELETE_FROM) {
            let gone = value.as_array().ok_or_else(|| bad(key, "must be a list"))?;
            if let Some(Value::Array(list)) = orig.get_mut(field) {
                list.retain(|v| !gone.contains(v));
            }
            continue;
        }
        match value {
            Value::Null => {
                orig.remove(key);
            }
            Value::Object(p) => {
                path.push(key);
                let mut target = match orig.remove(key) {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                let outcome = merge_map(resource, &mut target, p, path)?;
                path.pop();
                if let Outcome::Keep = outcome {
                    orig.insert(key.clone(), Value::Object(target));
                }
            }
            Value::Array(p) => {
                path.push(key);
                let old = match orig.remove(key) {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                let merged = merge_list(resource, old, p, path)?;
                path.pop();
                orig.insert(key.clone(), Value::Array(merged));
            }
            scalar => {
                orig.insert(key.clone(), scalar.clone());
            }
        }
    }
    for (field, order, server) in orders {
        if let Some(Value::Array(list)) = orig.get_mut(field) {
            path.push(field);
            let strategy = list_strategy(resource, path);
            path.pop();
            sort_by_order(list, order, &server, strategy);
        }
    }
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let keys = retain.as_array().ok_or_else(|| bad(RETAIN_KEYS, "must be a list"))?;
        orig.retain(|k, _| keys.iter().any(|r| r.as_str() == Some(k)));
    }
    Ok(())
}

fn bad(directive: &str, detail: &str) -> StrategicError {
    StrategicError::BadDirective { directive: directive.to_string(), detail: detail.to_string() }
}

fn is_directive(v: &Value, which: &str) -> bool {
    v.get(PATCH).and_then(Value::as_str) == Some(which)
}

fn merge_list<'a>(
    resource: Resource,
    mut orig: Vec<Value>,
    patch: &'a [Value],
    path: &mut Vec<&'a str>,
) -> Result<Vec<Value>, StrategicError> {
    let strategy = list_strategy(resource, path);
    let replace = patch.iter().any(|v| is_directive(v, "replace"));
    match strategy {
        ListStrategy::Replace => Ok(patch.to_vec()),
        _ if replace => {
            let mut out = Vec::new();
            for p in patch.iter().filter(|v| !is_directive(v, "replace")) {
                out.push(fresh(resource, p, path)?);
            }
            Ok(out)
        }
        ListStrategy::MergeScalars => {
            for p in patch {
                if !orig.contains(p) {
                    orig.push(p.clone());
                }
            }
            Ok(orig)
        }
        ListStrategy::MergeByKey(key) => {
            for p in patch {
                let Some(element) = p.as_object() else {
                    // A scalar in a keyed list: upstream appends it as is.
                    orig.push(p.clone());
                    continue;
                };
                let Some(id) = element.get(key) else {
                    return Err(StrategicError::MissingMergeKey { element: go_format(p), key });
                };
                let at = orig.iter().position(|o| o.get(key) == Some(id));
                if is_directive(p, "delete") {
                    orig.retain(|o| o.get(key) != Some(id));
                    continue;
                }
                match at {
                    Some(i) => {
                        let mut target = match std::mem::take(&mut orig[i]) {
                            Value::Object(m) => m,
                            _ => Map::new(),
                        };
                        match merge_map(resource, &mut target, element, path)? {
                            Outcome::Keep => orig[i] = Value::Object(target),
                            Outcome::Delete => {
                                orig.remove(i);
                            }
                        }
                    }
                    None => orig.push(fresh(resource, p, path)?),
                }
            }
            Ok(orig)
        }
    }
}

/// A value as Go's `%v` prints the `map[string]interface{}` it decodes to (upstream's messages
/// print patch elements so): `map[image:x ports:[80]]`, keys sorted.
fn go_format(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let fields: Vec<String> =
                keys.iter().map(|k| format!("{k}:{}", go_format(&m[k.as_str()]))).collect();
            format!("map[{}]", fields.join(" "))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(go_format).collect::<Vec<_>>().join(" ")),
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        other => other.to_string(),
    }
}

/// A patch element added as new: merged into nothing, so its directives and nulls go.
fn fresh<'a>(resource: Resource, p: &'a Value, path: &mut Vec<&'a str>) -> Result<Value, StrategicError> {
    match p {
        Value::Object(m) => {
            let mut out = Map::new();
            merge_map(resource, &mut out, m, path)?;
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

/// Orders a merged list by `$setElementOrder` (`order`): the listed elements in that order, and
/// between them the elements the patch did not list, kept in their order on the server
/// (`server`, the list before the merge), each placed before the first listed element that came
/// after it there: upstream's `mergeSortedSlice`.
fn sort_by_order(list: &mut Vec<Value>, order: &[Value], server: &[Value], strategy: ListStrategy) {
    let same = |a: &Value, b: &Value| match strategy {
        ListStrategy::MergeByKey(key) => a.get(key).is_some() && a.get(key) == b.get(key),
        _ => a == b,
    };
    let rank = |v: &Value| order.iter().position(|o| same(o, v));
    let at_server = |v: &Value| server.iter().position(|o| same(o, v));
    let (mut listed, server_only): (Vec<Value>, Vec<Value>) =
        std::mem::take(list).into_iter().partition(|v| rank(v).is_some());
    listed.sort_by_key(|v| rank(v));
    let mut server_only: Vec<Value> = server_only;
    server_only.sort_by_key(|v| at_server(v).unwrap_or(usize::MAX));
    let (mut left, mut right) = (server_only.into_iter().peekable(), listed.into_iter().peekable());
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => matches!((at_server(l), at_server(r)), (Some(li), Some(ri)) if li < ri),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { left.next() } else { right.next() };
        list.extend(next);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a"]},
               "spec": {"replicas": 1,
                        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [
                                        {"name": "nginx", "image": "nginx:1.27", "args": ["a", "b"],
                                         "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                                        {"name": "sidecar", "image": "busybox"}],
                                              "tolerations": [{"key": "x", "operator": "Exists"}],
                                              "volumes": [{"name": "data", "emptyDir": {}}]}}}})
    }

    fn apply_ok(patch: Value) -> Value {
        apply(Resource::Deployments, &deployment(), &patch).unwrap_or_else(|e| panic!("{patch}: {e}"))
    }

    #[test]
    fn set_image_merges_containers_by_name() {
        // kubectl set image deploy/web nginx=nginx:1.28
        let got = apply_ok(json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
            "containers": [{"image": "nginx:1.28", "name": "nginx"}]}}}}));
        let containers = &got["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["image"], "nginx:1.28");
        assert_eq!(containers[0]["env"][1]["name"], "B", "untouched fields stay: {containers}");
        assert_eq!(containers[1], json!({"name": "sidecar", "image": "busybox"}));
    }

    #[test]
    fn rollout_restart_adds_an_annotation() {
        let got = apply_ok(json!({"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2026-12-07T02:06:42Z"}}}}}));
        assert_eq!(
            got["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
            "2026-12-07T02:06:42Z"
        );
        assert_eq!(got["spec"]["template"]["metadata"]["labels"]["app"], "web");
    }

    #[test]
    fn keyed_lists_merge_delete_and_append() {
        let got = apply_ok(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "nginx",
             "env": [{"name": "B", "$patch": "delete"}, {"name": "C", "value": "3"}, {"name": "A", "value": "one"}],
             "ports": [{"containerPort": 443}]},
            {"name": "sidecar", "$patch": "delete"},
            {"name": "new", "image": "redis", "dropped": null}]}}}}));
        let containers = got["spec"]["template"]["spec"]["containers"].as_array().unwrap().clone();
        let names: Vec<&str> = containers.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["nginx", "new"]);
        assert_eq!(containers[0]["env"], json!([{"name": "A", "value": "one"}, {"name": "C", "value": "3"}]));
        assert_eq!(
            containers[0]["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}])
        );
        assert_eq!(containers[1], json!({"name": "new", "image": "redis"}));
        // Lists without a strategy are replaced whole.
        let got =
            apply_ok(json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "args": ["c"]}],
                                                           "tolerations": []}}}}));
        assert_eq!(got["spec"]["template"]["spec"]["containers"][0]["args"], json!(["c"]));
        assert_eq!(got["spec"]["template"]["spec"]["tolerations"], json!([]));
    }

    #[test]
    fn directives() {
        // $patch: replace on a list and on a map.
        let got = apply_ok(
            json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}}}),
        );
        assert_eq!(got["spec"]["template"]["spec"]["containers"], json!([{"name": "only", "image": "x"}]));
        let got = apply_ok(json!({"metadata": {"labels": {"$patch": "replace", "tier": "web"}}}));
        assert_eq!(got["metadata"]["labels"], json!({"tier": "web"}));
        // $patch: delete on a map.
        let got = apply_ok(json!({"spec": {"strategy": {"$patch": "delete"}}}));
        assert!(got["spec"].get("strategy").is_none());
        // $retainKeys: switching the strategy drops rollingUpdate.
        let got = apply_ok(
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
        );
        assert_eq!(got["spec"]["strategy"], json!({"type": "Recreate"}));
        // Finalizers are a set; $deleteFromPrimitiveList removes from it.
        let got = apply_ok(json!({"metadata": {"finalizers": ["b", "a"]}}));
        assert_eq!(got["metadata"]["finalizers"], json!(["a", "b"]));
        let got = apply_ok(json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}));
        assert_eq!(got["metadata"]["finalizers"], json!([]));
        // $setElementOrder reorders.
        let got = apply_ok(
            json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}]}}}}),
        );
        assert_eq!(got["spec"]["template"]["spec"]["containers"][0]["name"], "sidecar");
        // Elements the patch does not list keep their place between the listed ones.
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "injected"}, {"name": "b"}]}});
        let got = apply(
            Resource::Pods,
            &pod,
            &json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                             "containers": [{"name": "b", "image": "x"}]}}),
        )
        .unwrap();
        let names: Vec<&str> = got["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "injected", "b"]);
        let got = apply(
            Resource::Pods,
            &pod,
            &json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "c"}, {"name": "a"}],
                             "containers": [{"name": "c"}]}}),
        )
        .unwrap();
        let names: Vec<&str> = got["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        // As upstream: injected came before b on the server.
        assert_eq!(names, ["injected", "b", "c", "a"]);
        // Errors.
        let e = apply(
            Resource::Deployments,
            &deployment(),
            &json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "map: map[image:x] does not contain declared merge key: name");
        let e =
            apply(Resource::Deployments, &deployment(), &json!({"spec": {"$patch": "frob"}})).unwrap_err();
        assert_eq!(e, StrategicError::UnknownPatchType("frob".into()));
    }

    #[test]
    fn service_ports_merge_by_port() {
        let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "a"}}});
        let got = apply(
            Resource::Services,
            &svc,
            &json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}}),
        )
        .unwrap();
        assert_eq!(got["spec"]["ports"], json!([{"port": 80, "targetPort": 9090}, {"port": 443}]));
        // EndpointSlice ports are atomic.
        assert_eq!(list_strategy(Resource::EndpointSlices, &["ports"]), ListStrategy::Replace);
        assert_eq!(
            list_strategy(Resource::Pods, &["status", "conditions"]),
            ListStrategy::MergeByKey("type")
        );
    }
}
