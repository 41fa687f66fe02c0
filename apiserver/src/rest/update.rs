//! Update (`PUT`) of an object or of its `/status`, through [`Registry::update`] as the gRPC
//! edge's `Update` and `UpdateStatus` call it: the registry checks the `resourceVersion` (a stale
//! one is upstream's 409 `Operation cannot be fulfilled on deployments.apps "x": the object has
//! been modified; please apply your changes to the latest version and try again`; none at all is
//! an unconditional update, as upstream allows for the built-in kinds), keeps what the main
//! resource may not change (status, uid, creationTimestamp), bumps `generation` on a spec change
//! and validates the change against the old object.
//!
//! [`write`] is also where a PATCH (on the object, `/status` or `/scale`) ends: the patched
//! object is updated like a PUT body.

use std::sync::Arc;

use axum::{http::StatusCode, response::Response};
use serde_json::Value;

use super::{
    path::ObjectTarget,
    request::{Request, check_json, namespace, object_response},
    status::Status,
};
use crate::{error::Error, object, object::Stored, registry::Registry};

/// Updates `name` (or, with `status_only`, its status) to `obj`, a complete object. With
/// `dry_run`, the update is admitted and validated but not written.
pub async fn write(
    registry: &Registry,
    target: &ObjectTarget,
    name: &str,
    obj: &Value,
    status_only: bool,
    dry_run: bool,
) -> Result<Arc<Stored>, Error> {
    let in_body = object::name(obj);
    if in_body != name {
        return Err(Error::BadRequest(format!(
            "the name of the object ({in_body}) does not match the name on the URL ({name})"
        )));
    }
    let r = target.resource;
    let ns = namespace(target);
    let body = serde_json::to_vec(obj).map_err(Error::Encode)?;
    if dry_run {
        // Admission and validation as the write would run them; nothing is stored, so the answer
        // is the admitted object (without what the writer would carry over from the old one).
        let current = registry.get(r, ns, name)?;
        let admitted = crate::registry::admission::prepare_update(r, ns, &body, status_only)?;
        if !status_only {
            crate::registry::admission::validate_update(
                r,
                &current.value,
                &admitted,
                &registry.config().validation,
            )?;
        }
        return Ok(Arc::new(Stored::new(r, admitted)));
    }
    registry.update(r, ns, &body, status_only).await
}

/// `PUT` on an object or its `/status`.
pub async fn put(
    registry: &Registry,
    target: &ObjectTarget,
    name: &str,
    req: Request<'_>,
) -> Result<Response, Status> {
    check_json(req.headers)?;
    let status_only = target.subresource.as_deref() == Some("status");
    let obj = match serde_json::from_slice::<Value>(req.body) {
        Ok(v) => v,
        // The object decoder words the 400 as upstream does.
        Err(e) => {
            return Err(match object::decode(target.resource, req.body) {
                Err(decode) => decode.into(),
                Ok(_) => Status::bad_request(e.to_string()),
            });
        }
    };
    let obj = write(registry, target, name, &obj, status_only, req.query.dry_run).await?;
    Ok(object_response(StatusCode::OK, obj.json.clone()))
}
