//! Get, list, create, delete and the pods' binding over the [`Registry`]: the same calls
//! the gRPC edge makes, answered in kube-apiserver's HTTP shapes.
//!
//! - get: the object (200), or its one-row Table.
//! - list: a `<Kind>List` with `metadata.resourceVersion` (the registry's revision at the read),
//!   or a Table. The stored JSON is spliced in as is (it carries `kind` and `apiVersion`).
//! - create: 201 and the object as stored, with a `Warning` header per registry warning.
//!   `dryRun=All` runs admission (decoding, defaults, validation) and answers what would be
//!   stored, without writing it (so without the fields the writer assigns: uid,
//!   resourceVersion, a Service's ClusterIP).
//! - delete: the object while a graceful deletion is pending (a pod with its
//!   `deletionTimestamp`), else a `Status` `Success` naming it, as upstream answers.

use axum::{
    body::Bytes,
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use bytes::{BufMut as _, BytesMut};
use netlab_proto::apiserver::v1::Resource;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    path::ObjectTarget,
    request::{
        Request, check_json, json_response, namespace, object_response, raw_json, table_response,
        table_version,
    },
    status::Status,
    table,
};
use crate::{object::Stored, registry::Registry, warning};

/// `GET` of one object (or its `/status`): the object, or its one-row Table.
pub fn get(
    registry: &Registry,
    target: &ObjectTarget,
    name: &str,
    req: Request<'_>,
) -> Result<Response, Status> {
    let obj = registry.get(target.resource, namespace(target), name)?;
    Ok(match table_version(req.headers) {
        Some(v) => {
            let now = jiff::Timestamp::now();
            let t = table::table(
                target.resource,
                std::slice::from_ref(&obj),
                obj.rv,
                req.query.include_object,
                v,
                now,
            );
            table_response(&t, v)
        }
        None => object_response(StatusCode::OK, obj.json.clone()),
    })
}

/// `GET` of a collection: a `<Kind>List`, or a Table.
pub fn list(registry: &Registry, target: &ObjectTarget, req: Request<'_>) -> Result<Response, Status> {
    let r = target.resource;
    let (labels, fields) = req.query.selectors(r)?;
    let (items, rv) = registry.list(r, namespace(target), &labels, &fields);
    if let Some(v) = table_version(req.headers) {
        let t = table::table(r, &items, rv, req.query.include_object, v, jiff::Timestamp::now());
        return Ok(table_response(&t, v));
    }
    Ok(raw_json(StatusCode::OK, list_body(r, &items, rv), HeaderValue::from_static("application/json")))
}

/// `{"kind":"<Kind>List","apiVersion":..,"metadata":{"resourceVersion":..},"items":[..]}` with
/// the stored JSON of each item spliced in.
pub fn list_body(r: Resource, items: &[std::sync::Arc<Stored>], rv: u64) -> Bytes {
    let head = format!(
        r#"{{"kind":"{}List","apiVersion":"{}","metadata":{{"resourceVersion":"{rv}"}},"items":["#,
        r.kind(),
        r.api_version()
    );
    let mut out =
        BytesMut::with_capacity(head.len() + items.iter().map(|o| o.json.len() + 1).sum::<usize>() + 2);
    out.put_slice(head.as_bytes());
    for (i, obj) in items.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(&obj.json);
    }
    out.put_slice(b"]}");
    out.freeze()
}

/// Upstream refuses a body whose namespace differs from the path's.
fn check_namespace(target: &ObjectTarget, body: &[u8]) -> Result<(), Status> {
    let Some(ns) = target.namespace.as_deref() else {
        return Ok(());
    };
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match value.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(theirs) if !theirs.is_empty() && theirs != ns => Err(Status::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

/// `POST` to a collection: 201 and the object as stored.
pub async fn create(
    registry: &Registry,
    target: &ObjectTarget,
    req: Request<'_>,
) -> Result<Response, Status> {
    check_json(req.headers)?;
    check_namespace(target, req.body)?;
    let r = target.resource;
    if req.query.dry_run {
        let obj = crate::registry::admission::prepare_create(
            r,
            namespace(target),
            req.body,
            &registry.config().validation,
        )?;
        return Ok(json_response(StatusCode::CREATED, &obj));
    }
    let obj = registry.create(r, namespace(target), req.body).await?;
    let mut response =
        raw_json(StatusCode::CREATED, obj.json.clone(), HeaderValue::from_static("application/json"));
    for text in warning::for_create(registry, &obj) {
        // `warning::header` drops control characters, so the value is always valid.
        if let Ok(value) = HeaderValue::from_str(&warning::header(&text)) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    Ok(response)
}

/// `metav1.DeleteOptions`, the fields this server reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteOptions {
    grace_period_seconds: Option<i64>,
    propagation_policy: Option<String>,
    preconditions: Option<Preconditions>,
    #[serde(default)]
    dry_run: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Preconditions {
    resource_version: Option<String>,
    uid: Option<String>,
}

/// `DELETE` of one object.
pub async fn delete(
    registry: &Registry,
    target: &ObjectTarget,
    name: &str,
    req: Request<'_>,
) -> Result<Response, Status> {
    let opts: DeleteOptions = if req.body.iter().all(u8::is_ascii_whitespace) {
        DeleteOptions::default()
    } else {
        check_json(req.headers)?;
        serde_json::from_slice(req.body)
            .map_err(|e| Status::bad_request(format!("couldn't decode DeleteOptions: {e}")))?
    };
    let policy = opts.propagation_policy.as_deref().or(req.query.propagation_policy.as_deref());
    if let Some(p) = policy.filter(|p| !matches!(*p, "Orphan" | "Background" | "Foreground")) {
        return Err(Status {
            code: 422,
            reason: "Invalid",
            message: format!(
                "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            ),
            details: None,
        });
    }
    let r = target.resource;
    let ns = namespace(target);
    let current = registry.get(r, ns, name)?;
    let preconditions = opts.preconditions.unwrap_or_default();
    if let Some(uid) = preconditions.uid.filter(|u| !u.is_empty()) {
        let have = current.value.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("");
        if have != uid {
            return Err(Status {
                code: 409,
                reason: "Conflict",
                message: format!(
                    "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: UID in precondition: {uid}, UID in object meta: {have}",
                    r.group_resource()
                ),
                details: Some(json!({"name": name, "kind": r.plural()})),
            });
        }
    }
    let rv = match preconditions.resource_version.filter(|v| !v.is_empty()) {
        Some(v) => Some(
            v.parse::<u64>().map_err(|_| Status::bad_request(format!("invalid resourceVersion {v:?}")))?,
        ),
        None => None,
    };
    if req.query.dry_run || opts.dry_run.iter().any(|d| d == "All") {
        return Ok(raw_json(
            StatusCode::OK,
            current.json.clone(),
            HeaderValue::from_static("application/json"),
        ));
    }
    let grace = opts.grace_period_seconds.or(req.query.grace_period_seconds);
    let deleted = registry.delete(r, ns, name, rv, grace).await?;
    // Still there: a graceful deletion (or finalizers) is pending; upstream answers the object.
    if registry.get(r, ns, name).is_ok() {
        return Ok(raw_json(
            StatusCode::OK,
            deleted.json.clone(),
            HeaderValue::from_static("application/json"),
        ));
    }
    let mut details = json!({"name": name, "kind": r.plural()});
    if !r.group().is_empty() {
        details["group"] = json!(r.group());
    }
    if let Some(uid) = deleted.value.pointer("/metadata/uid") {
        details["uid"] = uid.clone();
    }
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details});
    Ok(json_response(StatusCode::OK, &status))
}

/// `POST pods/<name>/binding` with a `Binding`, as the scheduler binds.
pub async fn bind(
    registry: &Registry,
    target: &ObjectTarget,
    name: &str,
    req: Request<'_>,
) -> Result<Response, Status> {
    let binding = super::request::json_body(&req, "Binding")?;
    let node = binding.pointer("/target/name").and_then(Value::as_str).unwrap_or("");
    registry.bind(namespace(target), name, node).await?;
    let status =
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    Ok(json_response(StatusCode::CREATED, &status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_splice_the_stored_json() {
        let a = std::sync::Arc::new(Stored::new(
            Resource::Services,
            json!({"kind": "Service", "apiVersion": "v1", "metadata": {"name": "a"}}),
        ));
        let body = list_body(Resource::Services, &[a.clone(), a], 12);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["kind"], "ServiceList");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["metadata"]["resourceVersion"], "12");
        assert_eq!(v["items"].as_array().unwrap().len(), 2);
        assert_eq!(v["items"][1]["kind"], "Service");
        let empty: Value = serde_json::from_slice(&list_body(Resource::Deployments, &[], 3)).unwrap();
        assert_eq!(
            empty,
            json!({"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {"resourceVersion": "3"}, "items": []})
        );
    }
}
