//! `PATCH` on an object, its `/status` or its `/scale`, in the three patch types kubectl sends
//! (the `Content-Type` says which): JSON merge patch ([`merge`]), JSON patch ([`json`]) and
//! strategic merge patch ([`strategic`]).
//!
//! As upstream's patch handler does, the patch is applied to the object as currently stored and
//! the result written as an update ([`super::update::write`]), with the stored
//! `resourceVersion` as the precondition; if another write got in between, it reads and applies
//! again (a few times), unless the patch itself set the `resourceVersion`, which makes it a
//! precondition the client asked for: then the 409 is theirs.
//!
//! Server-side apply (`application/apply-patch+yaml`) is not served: it answers the 415 upstream
//! answers for a patch type it does not take.

use axum::{http::StatusCode, response::Response};
use netlab_proto::apiserver::v1::Resource;
use serde_json::Value;

use super::{
    path::ObjectTarget,
    request::{Request, content_type, json_response, namespace, object_response},
    scale,
    status::Status,
    update,
};
use crate::{error::Error, object, registry::Registry};

pub mod json;
pub mod merge;
pub mod strategic;

/// How many times a patch is re-applied when another write changed the object meanwhile.
const MAX_ATTEMPTS: usize = 5;

/// A patch type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
}

// === impl PatchType ===

impl PatchType {
    /// The patch type a request's `Content-Type` names; upstream's 415 for any other (and for a
    /// strategic merge patch of a custom resource, which has no patch strategies).
    pub fn of(media: &str, resource: Resource) -> Result<Self, Status> {
        let custom = resource.is_chaos();
        match media {
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/strategic-merge-patch+json" if !custom => Ok(PatchType::Strategic),
            _ => {
                let accepted = if custom {
                    "application/json-patch+json, application/merge-patch+json"
                } else {
                    "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json"
                };
                Err(Status {
                    code: 415,
                    reason: "UnsupportedMediaType",
                    message: format!(
                        "the body of the request was in an unknown format - accepted media types include: {accepted}"
                    ),
                    details: None,
                })
            }
        }
    }

    /// Applies `patch` (the decoded body) to `doc`, an object of `resource` (or its Scale).
    pub fn apply(self, resource: Resource, doc: &Value, patch: &Value) -> Result<Value, Status> {
        match self {
            PatchType::Merge => {
                let mut out = doc.clone();
                merge::apply(&mut out, patch);
                Ok(out)
            }
            PatchType::Json => json::apply(doc, patch).map_err(|e| match e {
                json::JsonPatchError::Decode(_) => Status::bad_request(e.to_string()),
                // Upstream answers a patch that does not apply with `NewGenericServerResponse(422)`:
                // a fixed message and the library's text as the one cause, which kubectl prints
                // as `The request is invalid: : <text>`.
                _ => Status {
                    code: 422,
                    reason: "Invalid",
                    message: "the server rejected our request due to an error in our request".into(),
                    details: Some(serde_json::json!({"causes": [
                        {"reason": "UnexpectedServerResponse", "message": e.to_string()}]})),
                },
            }),
            PatchType::Strategic => {
                strategic::apply(resource, doc, patch).map_err(|e| Status::bad_request(e.to_string()))
            }
        }
    }
}

/// `PATCH` on an object, `/status` or `/scale`.
pub async fn serve(
    registry: &Registry,
    target: &ObjectTarget,
    name: &str,
    req: Request<'_>,
) -> Result<Response, Status> {
    let r = target.resource;
    let kind = PatchType::of(content_type(req.headers), r)?;
    let patch: Value = serde_json::from_slice(req.body)
        .map_err(|e| Status::bad_request(format!("error decoding patch: {e}")))?;
    let sub = target.subresource.as_deref();
    for attempt in 1..=MAX_ATTEMPTS {
        let current = registry.get(r, namespace(target), name)?;
        let written = if sub == Some("scale") {
            let doc = scale::of(&current);
            let patched = kind.apply(r, &doc, &patch)?;
            let own = object::resource_version(&patched) == Some(current.rv);
            match scale::write(registry, target, name, &current, &patched, req.query.dry_run).await {
                Err(s) if s.code == 409 && own && attempt < MAX_ATTEMPTS => continue,
                Err(s) => return Err(s),
                Ok(scale) => return Ok(json_response(StatusCode::OK, &scale)),
            }
        } else {
            let patched = kind.apply(r, &current.value, &patch)?;
            let own = object::resource_version(&patched) == Some(current.rv);
            let status_only = sub == Some("status");
            match update::write(registry, target, name, &patched, status_only, req.query.dry_run).await {
                Err(Error::Conflict { .. }) if own && attempt < MAX_ATTEMPTS => continue,
                other => other?,
            }
        };
        return Ok(object_response(StatusCode::OK, written.json.clone()));
    }
    Err(Error::Conflict { resource: r, name: name.to_string() }.into())
}
