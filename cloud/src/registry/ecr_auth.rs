//! The ECR registry host (`<account>.dkr.ecr.<region>.amazonaws.com`): the same OCI read API
//! as the public registry, behind ECR's gate. A pull needs `Authorization: Basic` with a token
//! from GetAuthorizationToken, and the identity that token was issued to must be allowed
//! `ecr:BatchGetImage` (manifests) or `ecr:GetDownloadUrlForLayer` (blobs) on the repository,
//! so a node role without `AmazonEC2ContainerRegistryReadOnly` fails its pulls the way EKS
//! nodes do. Allowed requests are served from the repository's backing catalogue images.
//!
//! What ECR answers, and where the text comes from:
//! - no credentials, or a token it never issued: 401, body `Not Authorized` (a client's
//!   report of `status=401 body="Not Authorized\n"`), challenge `Basic
//!   realm="https://<host>/",service="ecr.amazonaws.com"` (mayflower/docker-ls#28);
//! - an expired token: 403 `DENIED` "Your authorization token has expired. Reauthenticate and
//!   try again." (docker's `denied: ...`, aws/aws-cli#6580);
//! - a denied identity: 403 `DENIED` with IAM's "User: ... is not authorized to perform:
//!   ecr:BatchGetImage on resource: ..." (everything2/everything2#2562);
//! - a missing repository: 404 `NAME_UNKNOWN` "The repository with name 'x' does not exist in
//!   the registry with id '...'" (docker's `name unknown: ...`, actions/starter-workflows#2647);
//! - a missing tag: 404 `MANIFEST_UNKNOWN` "Requested image not found" (docker's `manifest
//!   unknown: Requested image not found`, widely quoted).
//!
//! Blobs are served here directly; real ECR redirects them to S3 (`starport-layer-bucket`).

use std::net::SocketAddr;

use axum::{
    body::Body,
    extract::{ConnectInfo, Request},
    http::{HeaderValue, Method, StatusCode, header},
    response::Response,
};
use jiff::Timestamp;

use super::http::{self, API_VERSION_HEADER, Route};
use super::{ApiError, Registry};
use crate::aws::ecr::{self, TokenError, token};
use crate::aws::state::Shared;

/// The service name in ECR's challenge.
pub const SERVICE: &str = "ecr.amazonaws.com";
/// The 401 body.
pub const NOT_AUTHORIZED: &str = "Not Authorized\n";
/// The expired-token text.
pub const TOKEN_EXPIRED: &str = "Your authorization token has expired. Reauthenticate and try again.";
/// The missing-tag text.
pub const IMAGE_NOT_FOUND: &str = "Requested image not found";

/// A registry host name read as ECR's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrHost {
    /// The host name, without port.
    pub name: String,
    /// The registry (account) id.
    pub registry_id: String,
    /// The region.
    pub region: String,
}

/// Why ECR turns a request away, rendered by [`Rejection::response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No credentials, or credentials it does not know (401).
    NotAuthorized,
    /// The token has expired (403).
    TokenExpired,
    /// IAM denies the action (403), with IAM's text.
    Denied(String),
    /// No such repository (404).
    NameUnknown {
        /// The repository.
        name: String,
        /// The registry.
        registry_id: String,
    },
    /// No such tag or digest (404).
    ManifestUnknown,
}

/// Reads `host` (a `Host` header, port allowed) as `<12 digits>.dkr.ecr.<region>.amazonaws.com`.
pub fn ecr_host(host: &str) -> Option<EcrHost> {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let rest = name.strip_suffix(".amazonaws.com")?;
    let (registry_id, region) = rest.split_once(".dkr.ecr.")?;
    let id_ok = registry_id.len() == 12 && registry_id.bytes().all(|b| b.is_ascii_digit());
    let region_ok = !region.is_empty()
        && !region.contains('.')
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (id_ok && region_ok).then(|| EcrHost {
        registry_id: registry_id.to_owned(),
        region: region.to_owned(),
        name: name.clone(),
    })
}

/// Serves one request to an ECR host: the gate, then the registry store under the repository's
/// backing catalogue name.
pub fn serve(
    registry: &Registry,
    shared: &Shared,
    host: &EcrHost,
    req: &Request,
    now: Timestamp,
) -> Response {
    let head = req.method() == Method::HEAD;
    let route = http::route(req.uri().path());
    let result = shared.read(|account| -> Result<Response, Rejection> {
        let password = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(token::basic_password)
            .ok_or(Rejection::NotAuthorized)?;
        let identity = account.ecr.authenticate(&password, &host.region, now).map_err(|e| match e {
            TokenError::Unknown => Rejection::NotAuthorized,
            TokenError::Expired => Rejection::TokenExpired,
        })?;
        let (name, action) = match &route {
            Route::NotFound => return Ok(http::error(&ApiError::NotFound, head, &host.name)),
            Route::Base => return Ok(http::json(StatusCode::OK, b"{}".to_vec(), head)),
            Route::Catalog | Route::Upload => return Ok(http::error(&ApiError::Unsupported, head, &host.name)),
            Route::Manifest { name, .. } => (*name, "ecr:BatchGetImage"),
            Route::Blob { name, .. } => (*name, "ecr:GetDownloadUrlForLayer"),
            Route::Tags { name } => (*name, "ecr:ListImages"),
        };
        if req.method() != Method::GET && !head {
            return Ok(http::error(&ApiError::Unsupported, head, &host.name));
        }
        let resource = ecr::repository_arn(&host.region, &host.registry_id, name);
        let mut context = account.iam.request_context(&identity, now);
        if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
            context.insert("aws:SourceIp", addr.ip().to_string());
        }
        let decision = account.iam.authorize(&identity, action, &resource, &context);
        tracing::debug!(principal = identity.arn(), action, %resource, outcome = ?decision.outcome, "ECR pull authorised.");
        if let Some(message) = decision.denial_message(identity.arn(), action, &resource) {
            return Err(Rejection::Denied(message));
        }
        let repo = (host.registry_id == account.iam.account.id)
            .then(|| account.ecr.repository(name))
            .flatten()
            .ok_or_else(|| Rejection::NameUnknown { name: name.to_owned(), registry_id: host.registry_id.clone() })?;
        let source = repo.source.as_deref();
        Ok(match route {
            Route::Manifest { reference, .. } => {
                match source.map(|s| registry.manifest(s, reference)) {
                    Some(Ok(m)) => http::content(m, head),
                    Some(Err(ApiError::ManifestUnknown { .. })) | None => return Err(Rejection::ManifestUnknown),
                    Some(Err(e)) => http::error(&e, head, &host.name),
                }
            }
            Route::Blob { digest, .. } => match source.map(|s| registry.blob(s, digest)) {
                Some(Ok(b)) => http::blob(b, head),
                Some(Err(e)) => http::error(&e, head, &host.name),
                None => http::error(&ApiError::BlobUnknown { digest: digest.to_owned() }, head, &host.name),
            },
            _ => {
                let tags = source.and_then(|s| registry.tags(s, None, None).ok()).map(|p| p.items).unwrap_or_default();
                let body = serde_json::json!({ "name": name, "tags": tags });
                http::json(StatusCode::OK, body.to_string().into_bytes(), head)
            }
        })
    });
    let mut response = result.unwrap_or_else(|r| r.response(host, head));
    response.headers_mut().insert(API_VERSION_HEADER, HeaderValue::from_static("registry/2.0"));
    response
}

// === impl Rejection ===

impl Rejection {
    /// The HTTP status ECR sends.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::NotAuthorized => StatusCode::UNAUTHORIZED,
            Rejection::TokenExpired | Rejection::Denied(_) => StatusCode::FORBIDDEN,
            Rejection::NameUnknown { .. } | Rejection::ManifestUnknown => StatusCode::NOT_FOUND,
        }
    }

    /// The response: plain `Not Authorized` with the Basic challenge for a 401, else the
    /// distribution error body with ECR's code and message (ECR sends no `detail`). HEAD
    /// responses keep the status and length, without the body.
    pub fn response(&self, host: &EcrHost, head: bool) -> Response {
        let (code, message) = match self {
            Rejection::NotAuthorized => {
                return self.build(host, head, "text/plain; charset=utf-8", NOT_AUTHORIZED.into());
            }
            Rejection::TokenExpired => ("DENIED", TOKEN_EXPIRED.to_owned()),
            Rejection::Denied(m) => ("DENIED", m.clone()),
            Rejection::NameUnknown { name, registry_id } => (
                "NAME_UNKNOWN",
                format!(
                    "The repository with name '{name}' does not exist in the registry with id '{registry_id}'"
                ),
            ),
            Rejection::ManifestUnknown => ("MANIFEST_UNKNOWN", IMAGE_NOT_FOUND.to_owned()),
        };
        let body = serde_json::json!({ "errors": [{ "code": code, "message": message }] });
        self.build(host, head, "application/json; charset=utf-8", body.to_string().into_bytes())
    }

    fn build(&self, host: &EcrHost, head: bool, content_type: &'static str, body: Vec<u8>) -> Response {
        let len = body.len();
        let mut r = Response::new(if head { Body::empty() } else { Body::from(body) });
        *r.status_mut() = self.status();
        let headers = r.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        if *self == Rejection::NotAuthorized {
            let challenge = format!("Basic realm=\"https://{}/\",service=\"{SERVICE}\"", host.name);
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        r
    }
}

#[cfg(test)]
mod tests;
