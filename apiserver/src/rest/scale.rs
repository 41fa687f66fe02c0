//! The `/scale` subresource of Deployments, ReplicaSets and StatefulSets: an `autoscaling/v1`
//! `Scale` view of the object (`spec.replicas`, `status.replicas`, and `status.selector`, the
//! label selector as a string), which `kubectl scale` patches. Writing a Scale writes the
//! object's `spec.replicas` through the registry, with the Scale's `resourceVersion` (the
//! object's) as the precondition.

use axum::{http::StatusCode, response::Response};
use netlab_proto::apiserver::v1::Resource;
use serde_json::{Value, json};

use super::{
    path::ObjectTarget,
    request::{Request, json_response, namespace},
    status::Status,
    update,
};
use crate::{object, object::Stored, registry::Registry};

/// Whether `r` has a `/scale` subresource.
pub fn serves(r: Resource) -> bool {
    matches!(r, Resource::Deployments | Resource::ReplicaSets | Resource::StatefulSets)
}

/// The Scale of an object.
pub fn of(obj: &Stored) -> Value {
    let v = &obj.value;
    let mut metadata = json!({});
    for field in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(x) = v.pointer(&format!("/metadata/{field}")) {
            metadata[field] = x.clone();
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": v.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)},
        "status": {
            "replicas": v.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector_string(v.pointer("/spec/selector").unwrap_or(&Value::Null)),
        },
    })
}

/// A `metav1.LabelSelector` as upstream's `labels.Selector.String()` prints it: requirements
/// sorted by key, `k=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`.
pub fn selector_string(selector: &Value) -> String {
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    for e in selector.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let mut values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        let text = match e.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    reqs.into_iter().map(|(_, t)| t).collect::<Vec<_>>().join(",")
}

/// The 422 for a Scale upstream's `ValidateScale` refuses.
fn invalid(name: &str, replicas: i64) -> Status {
    let message = format!(
        "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
    );
    Status {
        code: 422,
        reason: "Invalid",
        message,
        details: Some(json!({"name": name, "group": "autoscaling", "kind": "Scale", "causes": [
            {"reason": "FieldValueInvalid", "message": format!("Invalid value: {replicas}: must be greater than or equal to 0"), "field": "spec.replicas"}]})),
    }
}

/// Writes `scale` onto `current` (the object as read): `spec.replicas`, with the Scale's
/// resourceVersion, if it has one, as the precondition. Returns the new Scale.
pub async fn write(
    registry: &Registry,
    target: &ObjectTarget,
    name: &str,
    current: &Stored,
    scale: &Value,
    dry_run: bool,
) -> Result<Value, Status> {
    let in_body = object::name(scale);
    if in_body != name {
        return Err(Status::bad_request(format!(
            "the name of the object ({in_body}) does not match the name on the URL ({name})"
        )));
    }
    let replicas = match scale.pointer("/spec/replicas") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_i64().ok_or_else(|| {
            Status::bad_request(format!(
                "Scale in version \"v1\" cannot be handled as a Scale: json: cannot unmarshal {v} into Go struct field ScaleSpec.spec.replicas of type int32"
            ))
        })?,
    };
    if replicas < 0 {
        return Err(invalid(name, replicas));
    }
    let mut obj = current.value.clone();
    if let Some(rv) = object::resource_version(scale) {
        object::set_meta(&mut obj, "resourceVersion", Some(rv.to_string().into()));
    }
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), replicas.into());
    }
    let written = update::write(registry, target, name, &obj, false, dry_run).await?;
    Ok(of(&written))
}

/// `GET .../<name>/scale`.
pub fn get(registry: &Registry, target: &ObjectTarget, name: &str) -> Result<Response, Status> {
    let obj = registry.get(target.resource, namespace(target), name)?;
    Ok(json_response(StatusCode::OK, &of(&obj)))
}

/// `PUT .../<name>/scale`.
pub async fn put(
    registry: &Registry,
    target: &ObjectTarget,
    name: &str,
    req: Request<'_>,
) -> Result<Response, Status> {
    let scale = super::request::json_body(&req, "Scale")?;
    let current = registry.get(target.resource, namespace(target), name)?;
    let scale = write(registry, target, name, &current, &scale, req.query.dry_run).await?;
    Ok(json_response(StatusCode::OK, &scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_print_as_upstream() {
        assert_eq!(selector_string(&json!({"matchLabels": {"app": "web"}})), "app=web");
        assert_eq!(
            selector_string(&json!({"matchLabels": {"tier": "a", "app": "web"},
                "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
                                     {"key": "gone", "operator": "DoesNotExist"}]})),
            "app=web,env in (dev,prod),!gone,tier=a"
        );
        assert_eq!(selector_string(&Value::Null), "");
    }

    #[test]
    fn scale_of_a_deployment() {
        let d = Stored::new(
            Resource::Deployments,
            json!({"kind": "Deployment", "apiVersion": "apps/v1",
                   "metadata": {"name": "web", "namespace": "demo", "uid": "u1", "resourceVersion": "7",
                                "creationTimestamp": "2024-05-01T10:00:00Z", "labels": {"x": "y"}},
                   "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
                   "status": {"replicas": 2}}),
        );
        assert_eq!(
            of(&d),
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                   "metadata": {"name": "web", "namespace": "demo", "uid": "u1", "resourceVersion": "7",
                                "creationTimestamp": "2024-05-01T10:00:00Z"},
                   "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=web"}})
        );
        assert_eq!(
            invalid("web", -1).message,
            "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
    }
}
