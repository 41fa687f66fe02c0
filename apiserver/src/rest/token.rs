//! `POST /api/v1/namespaces/NS/serviceaccounts/NAME/token`: the TokenRequest subresource, so
//! `kubectl create token` (and the kubelet's and client-go's token requests) get their token
//! over REST as over gRPC, from the same [`TokenIssuer`].
//!
//! kubectl sends this request in Kubernetes' protobuf encoding (its typed clients do), so the
//! body is taken in either form: JSON, or the `k8s\0` envelope (`runtime.Unknown`) around a
//! protobuf `authentication.k8s.io/v1` TokenRequest. Only the fields the issuer reads are decoded
//! (the envelope's type, `metadata.name`/`namespace`, and the spec's audiences, lifetime and bound
//! object); the answer is JSON, which kubectl's Accept header allows.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use prost::Message as _;
use serde_json::{Value, json};

use super::{
    path::ObjectTarget,
    request::{Request, content_type, json_response, namespace},
    status::Status,
};
use crate::{registry::Registry, token::TokenIssuer};

/// Kubernetes' protobuf media type.
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes every Kubernetes protobuf body starts with.
const MAGIC: &[u8; 4] = b"k8s\0";

/// Answers a TokenRequest for the ServiceAccount `name`.
pub fn create(
    registry: &Registry,
    issuer: &TokenIssuer,
    target: &ObjectTarget,
    name: &str,
    req: Request<'_>,
) -> Result<Response, Status> {
    let body = match content_type(req.headers) {
        "application/json" | "*/*" => req.body.to_vec(),
        PROTOBUF => serde_json::to_vec(&from_protobuf(req.body)?).unwrap_or_default(),
        _ => return Err(Status::unsupported_media_type()),
    };
    let (answer, warnings) = issuer.create_token(registry, namespace(target), name, &body)?;
    let mut response = json_response(StatusCode::CREATED, &answer);
    for text in warnings {
        if let Ok(value) = HeaderValue::from_str(&crate::warning::header(&text)) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    Ok(response)
}

/// `runtime.Unknown`: the envelope of every protobuf body.
#[derive(Clone, PartialEq, prost::Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", optional, tag = "2")]
    raw: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TypeMeta {
    #[prost(string, optional, tag = "1")]
    api_version: Option<String>,
    #[prost(string, optional, tag = "2")]
    kind: Option<String>,
}

/// `k8s.io.api.authentication.v1.TokenRequest`, the fields read.
#[derive(Clone, PartialEq, prost::Message)]
struct TokenRequest {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<TokenRequestSpec>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ObjectMeta {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "3")]
    namespace: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TokenRequestSpec {
    #[prost(string, repeated, tag = "1")]
    audiences: Vec<String>,
    #[prost(message, optional, tag = "3")]
    bound_object_ref: Option<BoundObjectReference>,
    #[prost(int64, optional, tag = "4")]
    expiration_seconds: Option<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct BoundObjectReference {
    #[prost(string, optional, tag = "1")]
    kind: Option<String>,
    #[prost(string, optional, tag = "2")]
    api_version: Option<String>,
    #[prost(string, optional, tag = "3")]
    name: Option<String>,
    #[prost(string, optional, tag = "4")]
    uid: Option<String>,
}

/// A protobuf TokenRequest as the JSON the issuer reads.
fn from_protobuf(body: &[u8]) -> Result<Value, Status> {
    let bad = |why: &str| {
        Status::bad_request(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, {PROTOBUF}: {why}"
        ))
    };
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| bad("no k8s protobuf prefix"))?;
    let unknown = Unknown::decode(envelope).map_err(|e| bad(&e.to_string()))?;
    let kind = unknown.type_meta.as_ref().and_then(|t| t.kind.as_deref()).unwrap_or_default();
    if kind != "TokenRequest" {
        return Err(Status::unsupported_media_type());
    }
    let request =
        TokenRequest::decode(unknown.raw.unwrap_or_default().as_slice()).map_err(|e| bad(&e.to_string()))?;
    let meta = request.metadata.unwrap_or_default();
    let spec = request.spec.unwrap_or_default();
    let non_empty = |s: Option<String>| s.filter(|v| !v.is_empty());
    let mut json_spec = json!({ "audiences": spec.audiences });
    if let Some(seconds) = spec.expiration_seconds.filter(|s| *s != 0) {
        json_spec["expirationSeconds"] = seconds.into();
    }
    if let Some(bound) = spec.bound_object_ref.filter(|b| b.name.as_deref().is_some_and(|n| !n.is_empty())) {
        json_spec["boundObjectRef"] = json!({
            "kind": bound.kind.unwrap_or_default(),
            "apiVersion": bound.api_version.unwrap_or_default(),
            "name": bound.name.unwrap_or_default(),
            "uid": bound.uid.unwrap_or_default(),
        });
    }
    let mut metadata = json!({});
    if let Some(n) = non_empty(meta.name) {
        metadata["name"] = n.into();
    }
    if let Some(ns) = non_empty(meta.namespace) {
        metadata["namespace"] = ns.into();
    }
    Ok(
        json!({ "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": metadata, "spec": json_spec }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What kubectl 1.32 sent for `kubectl create token sa1 -n ns1 --audience aud1 --audience
    /// aud2 --duration 1234s --bound-object-kind Pod --bound-object-name pod1
    /// --bound-object-uid uid1` (captured from the wire), rebuilt with the same fields.
    fn kubectls_body() -> Vec<u8> {
        let request = TokenRequest {
            metadata: Some(ObjectMeta { name: Some(String::new()), namespace: Some(String::new()) }),
            spec: Some(TokenRequestSpec {
                audiences: vec!["aud1".into(), "aud2".into()],
                bound_object_ref: Some(BoundObjectReference {
                    kind: Some("Pod".into()),
                    api_version: Some("v1".into()),
                    name: Some("pod1".into()),
                    uid: Some("uid1".into()),
                }),
                expiration_seconds: Some(1234),
            }),
        };
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some("authentication.k8s.io/v1".into()),
                kind: Some("TokenRequest".into()),
            }),
            raw: Some(request.encode_to_vec()),
        };
        let mut body = MAGIC.to_vec();
        body.extend(unknown.encode_to_vec());
        body
    }

    #[test]
    fn decodes_kubectls_protobuf_token_request() {
        assert_eq!(
            from_protobuf(&kubectls_body()).unwrap(),
            json!({
                "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {},
                "spec": {
                    "audiences": ["aud1", "aud2"], "expirationSeconds": 1234,
                    "boundObjectRef": { "kind": "Pod", "apiVersion": "v1", "name": "pod1", "uid": "uid1" },
                },
            })
        );
    }

    #[test]
    fn refuses_other_kinds_and_garbage() {
        let mut other = MAGIC.to_vec();
        other.extend(
            Unknown {
                type_meta: Some(TypeMeta { api_version: Some("v1".into()), kind: Some("Pod".into()) }),
                raw: None,
            }
            .encode_to_vec(),
        );
        assert_eq!(from_protobuf(&other).unwrap_err().code, 415);
        assert_eq!(from_protobuf(b"{\"json\": true}").unwrap_err().code, 400);
        assert_eq!(from_protobuf(b"k8s\0\xff\xff\xff").unwrap_err().code, 400);
    }
}
