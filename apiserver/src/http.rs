//! The HTTP side of the apiserver's one port. kube-apiserver serves everything on its secure
//! port: the REST API kubectl speaks, and the service-account issuer's OpenID Connect discovery
//! (`/.well-known/openid-configuration`, `/openid/v1/jwks`) that AWS's IAM (or any relying
//! party) reads to verify projected tokens. The lab's gRPC API shares the port: requests whose
//! path names a gRPC service go to it, everything else comes here.

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};

use crate::{registry::Registry, rest, token::TokenIssuer};

/// `Content-Type` of the JWKS, as upstream's `openidmetadata.go` serves it.
pub const JWKS_CONTENT_TYPE: &str = "application/jwk-set+json";

/// The routes served over HTTP on the API port.
pub fn router(registry: Registry, issuer: Arc<TokenIssuer>) -> Router {
    let oidc = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/openid/v1/jwks", get(jwks))
        .with_state(issuer.clone());
    oidc.merge(rest::router(registry, issuer))
}

/// The discovery document (public, cacheable for an hour, as upstream serves it).
async fn discovery(State(issuer): State<Arc<TokenIssuer>>) -> Response {
    cached(HeaderValue::from_static("application/json"), issuer.discovery_json())
}

/// The public keys tokens are verified with.
async fn jwks(State(issuer): State<Arc<TokenIssuer>>) -> Response {
    cached(HeaderValue::from_static(JWKS_CONTENT_TYPE), issuer.jwks_json())
}

/// The document, or 404 when the issuer has none (not an https URL), as upstream leaves the
/// routes out then.
fn cached(content_type: HeaderValue, body: Option<Arc<[u8]>>) -> Response {
    let Some(body) = body else { return axum::http::StatusCode::NOT_FOUND.into_response() };
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
    ];
    (headers, body.to_vec()).into_response()
}
