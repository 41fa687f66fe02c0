//! `metav1.Status`: the body of every REST error, built from the registry's [`Error`]s in this
//! one place, in the shape kubectl reads (it prints `Error from server (<reason>): <message>`,
//! and builds the 422 text from `details`).
//!
//! `details.kind` is the resource's plural for NotFound, AlreadyExists and Conflict, and the
//! Kind for Invalid; `details.group` is set for the named groups, whose messages qualify the
//! plural (`deployments.apps "web" not found`), as upstream's `qualifiedResource` does.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use netlab_proto::apiserver::v1::Resource;
use serde_json::{Map, Value, json};

use crate::error::Error;

/// A failure, as a `metav1.Status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The HTTP status code (also the body's `code`).
    pub code: u16,
    /// The StatusReason, e.g. `NotFound`.
    pub reason: &'static str,
    /// The message kubectl prints.
    pub message: String,
    /// `details`, when the reason has them.
    pub details: Option<Value>,
}

// === impl Status ===

impl Status {
    /// A path the server does not serve (upstream's `NewNotFound` for an unknown resource
    /// answers the same text).
    pub fn not_found_page() -> Self {
        Status {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
            details: Some(json!({})),
        }
    }

    /// A verb the resource does not serve (yet).
    pub fn method_not_allowed() -> Self {
        Status {
            code: 405,
            reason: "MethodNotAllowed",
            message: "the server does not allow this method on the requested resource".into(),
            details: Some(json!({})),
        }
    }

    /// A malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Status { code: 400, reason: "BadRequest", message: message.into(), details: None }
    }

    /// A body in a media type the server cannot decode (upstream's words; this server decodes
    /// JSON only, so it lists only JSON). kubectl's typed clients (`kubectl create namespace`)
    /// send protobuf and get this.
    pub fn unsupported_media_type() -> Self {
        Status {
            code: 415,
            reason: "UnsupportedMediaType",
            message: "the body of the request was in an unknown format - accepted media types include: application/json"
                .into(),
            details: None,
        }
    }

    /// The `metav1.Status` body.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if let Some(details) = &self.details {
            body["details"] = details.clone();
        }
        body["code"] = json!(self.code);
        body
    }
}

fn details(name: &str, group: &str, kind: &str) -> Map<String, Value> {
    let mut d = Map::new();
    d.insert("name".into(), name.into());
    if !group.is_empty() {
        d.insert("group".into(), group.into());
    }
    d.insert("kind".into(), kind.into());
    d
}

impl From<&Error> for Status {
    fn from(e: &Error) -> Self {
        let code = u16::try_from(e.http_code()).unwrap_or(500);
        let reason = e.reason();
        let (message, details) = match e {
            Error::NotFound { resource, name } => (
                format!("{} \"{name}\" not found", resource.group_resource()),
                Some(details(name, resource.group(), resource.plural())),
            ),
            Error::AlreadyExists { resource, name } => (
                format!("{} \"{name}\" already exists", resource.group_resource()),
                Some(details(name, resource.group(), resource.plural())),
            ),
            Error::Conflict { resource, name } => (
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    resource.group_resource()
                ),
                Some(details(name, resource.group(), resource.plural())),
            ),
            Error::Unfulfilled { on, name, .. } => (e.to_string(), Some(details(name, "", on))),
            Error::Invalid { kind, name, errors } => {
                // The Status carries upstream's `errors.NewInvalid` message and one cause per
                // field (message without the path: `ErrorBody`); kubectl prints
                // `The Pod "x" is invalid: <field>: <message>` from the causes.
                let resource = Resource::from_kind(kind).ok();
                // A kind that is no stored resource comes group-qualified (`TokenRequest.authentication.k8s.io`).
                let (bare, group) = match resource {
                    Some(r) => (*kind, r.group()),
                    None => kind.split_once('.').unwrap_or((kind, "")),
                };
                let mut d = details(name, group, bare);
                let causes: Vec<Value> = errors
                    .iter()
                    .map(|f| json!({"reason": f.reason(), "message": f.body(), "field": f.field}))
                    .collect();
                d.insert("causes".into(), causes.into());
                let message = match resource {
                    Some(r) => crate::validation::status_message(r, name, errors),
                    None => crate::validation::group_kind_message(kind, name, errors),
                };
                (message, Some(d))
            }
            Error::BadRequest(_) | Error::Expired { .. } => (e.to_string(), None),
            _ => {
                if let Error::Store(source) = e {
                    tracing::error!(error = %source, "Store failure.");
                }
                (e.to_string(), Some(map(json!({"causes": [{"message": e.to_string()}]}))))
            }
        };
        Status { code, reason, message, details: details.map(Value::Object) }
    }
}

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        Status::from(&e)
    }
}

impl IntoResponse for Status {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        super::request::json_response(code, &self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::FieldError;

    #[test]
    fn not_found_is_kubectls() {
        let e = Error::NotFound { resource: Resource::Pods, name: "nope".into() };
        assert_eq!(
            Status::from(&e).body(),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "pods \"nope\" not found", "reason": "NotFound",
                   "details": {"name": "nope", "kind": "pods"}, "code": 404})
        );
        let e = Error::AlreadyExists { resource: Resource::Deployments, name: "app2".into() };
        let s = Status::from(&e);
        assert_eq!((s.code, s.message.as_str()), (409, "deployments.apps \"app2\" already exists"));
        assert_eq!(s.body()["details"], json!({"name": "app2", "group": "apps", "kind": "deployments"}));
    }

    #[test]
    fn invalid_carries_causes() {
        let e = Error::Invalid {
            kind: "Pod",
            name: "bad1".into(),
            errors: vec![FieldError::required("spec.containers[0].image", "")],
        };
        let s = Status::from(&e);
        assert_eq!(s.code, 422);
        assert_eq!(s.message, "Pod \"bad1\" is invalid: spec.containers[0].image: Required value");
        assert_eq!(
            s.body()["details"],
            json!({"name": "bad1", "kind": "Pod", "causes": [
                {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers[0].image"}]})
        );
    }

    #[test]
    fn other_reasons() {
        let s = Status::from(&Error::BadRequest("bad".into()));
        assert_eq!((s.code, s.reason, s.details), (400, "BadRequest", None));
        let s = Status::from(&Error::Internal("boom".into()));
        assert_eq!((s.code, s.reason), (500, "InternalError"));
        assert_eq!(Status::method_not_allowed().code, 405);
        assert_eq!(
            Status::not_found_page().body()["message"],
            "the server could not find the requested resource"
        );
    }
}
