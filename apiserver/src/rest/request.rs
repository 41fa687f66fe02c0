//! What every handler shares: the parts of a request it reads, and the JSON answers it writes.
//! (The handlers' modules import this one and never each other.)

use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::Value;

use super::{negotiate, path::ObjectTarget, query::Query, status::Status, table};

/// The parts of a request the handlers read.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The HTTP method.
    pub method: &'a Method,
    /// The headers (Accept, Content-Type).
    pub headers: &'a HeaderMap,
    /// The parsed query string.
    pub query: &'a Query,
    /// The body.
    pub body: &'a Bytes,
}

/// A JSON response.
pub fn json_response(code: StatusCode, body: &Value) -> Response {
    // Serializing a serde_json::Value cannot fail.
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    raw_json(code, bytes.into(), HeaderValue::from_static("application/json"))
}

/// A response of already encoded JSON (a stored object as is).
pub fn raw_json(code: StatusCode, body: Bytes, content_type: HeaderValue) -> Response {
    (code, [(header::CONTENT_TYPE, content_type)], Body::from(body)).into_response()
}

/// A stored object's JSON, as `application/json`.
pub fn object_response(code: StatusCode, json: Bytes) -> Response {
    raw_json(code, json, HeaderValue::from_static("application/json"))
}

/// The media type of the body (`application/json` when none is given), without parameters.
pub fn content_type(headers: &HeaderMap) -> &str {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    match ct.split(';').next().unwrap_or("").trim() {
        "" => "application/json",
        media => media,
    }
}

/// Only JSON bodies are decoded (kubectl sends JSON, YAML manifests included).
pub fn check_json(headers: &HeaderMap) -> Result<(), Status> {
    match content_type(headers) {
        "application/json" | "*/*" => Ok(()),
        _ => Err(Status::unsupported_media_type()),
    }
}

/// A JSON body of `kind` (`Binding`, `Scale`), or the 400 upstream's decoder gives one it
/// cannot read.
pub fn json_body(req: &Request<'_>, kind: &str) -> Result<Value, Status> {
    check_json(req.headers)?;
    serde_json::from_slice(req.body).map_err(|e| {
        Status::bad_request(format!("{kind} in version \"v1\" cannot be handled as a {kind}: {e}"))
    })
}

/// The namespace in the path, or "".
pub fn namespace(target: &ObjectTarget) -> &str {
    target.namespace.as_deref().unwrap_or("")
}

/// The Table version the client asks for, if it asks for one.
pub fn table_version(headers: &HeaderMap) -> Option<&'static str> {
    negotiate::wants(headers, "Table", "meta.k8s.io", &["v1", "v1beta1"])
}

/// A Table answer.
pub fn table_response(body: &Value, version: &str) -> Response {
    let mut r = json_response(StatusCode::OK, body);
    if let Ok(ct) = HeaderValue::from_str(&table::content_type(version)) {
        r.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    r
}
