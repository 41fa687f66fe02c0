//! The Kubernetes REST API over the registry (issue 18): what stock kubectl sends, answered as
//! kube-apiserver answers it, so `kubectl get pods -A`, `kubectl create -f` and
//! `kubectl delete svc x` work against the lab with their normal output.
//!
//! This is a second edge over the same [`Registry`] as the gRPC one ([`crate::server`]): the
//! same reads, the same write path (admission, validation, allocation, group commit), the same
//! selector parsing and the same [`crate::error::Error`]s, which [`status`] turns into
//! `metav1.Status` bodies in one place. Nothing here decides anything about objects.
//!
//! Served: `/version`, `/healthz`, `/livez`, `/readyz`; discovery, legacy (`/api`, `/apis`,
//! `/api/v1`, `/apis/<group>/<version>`) and aggregated (`apidiscovery.k8s.io/v2`, when the
//! client asks for it); get and list (JSON, or a server-side `Table`), watch (JSON or Table
//! events), create, update, patch (merge, JSON and strategic merge), delete, and the
//! subresources `status` (get, update, patch), `scale` (get, update, patch; Deployments,
//! ReplicaSets, StatefulSets) and the pods' `binding` (create). Not yet: server-side apply,
//! deletecollection, OpenAPI, logs and exec, authentication (415, 405 or 404, as upstream
//! answers a patch type, verb or path it does not serve).
//!
//! # Layout
//! - [`path`]: a request path → what it names (a discovery document, a collection, an object).
//! - [`query`]: the query parameters (selectors, `includeObject`, `dryRun`, `watch`).
//! - [`negotiate`]: the `Accept` header (Table, aggregated discovery).
//! - [`request`]: what every handler reads and writes (the request's parts, JSON answers).
//! - [`discovery`]: the served resources' discovery facts and documents.
//! - [`objects`]: get, list, create, delete, bind over the registry.
//! - [`watch`]: watch streams.
//! - [`update`]: PUT of an object or its status; where every patch is written.
//! - [`patch`]: PATCH, in the three patch types; [`scale`]: the `/scale` subresource.
//! - [`table`]: the server-side Table, from [`netlab_printers`].
//! - [`token`]: the serviceaccounts/token subresource (JSON or kubectl's protobuf bodies).
//! - [`status`]: `metav1.Status` bodies for every error.
//! - [`version`]: `/version` and the health endpoints.
//! - [`span`]: one span per request, in the caller's trace, named like upstream's audit events.

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, Method, Uri},
    response::{IntoResponse, Response},
    routing::{any, get},
};
use tracing::Instrument as _;

use std::sync::Arc;

use crate::{registry::Registry, token::TokenIssuer};

/// What the handlers answer from.
#[derive(Clone)]
struct Api {
    registry: Registry,
    issuer: Arc<TokenIssuer>,
}

pub mod discovery;
pub mod negotiate;
pub mod objects;
pub mod patch;
pub mod path;
pub mod query;
pub mod request;
pub mod scale;
pub mod span;
pub mod status;
pub mod table;
pub mod token;
pub mod update;
pub mod version;
pub mod watch;

/// Largest request body, as kube-apiserver's 3 MiB limit for JSON writes.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// The REST routes.
pub fn router(registry: Registry, issuer: Arc<TokenIssuer>) -> Router {
    Router::new()
        .route("/version", get(version::version))
        .route("/healthz", get(version::ok))
        .route("/livez", get(version::ok))
        .route("/readyz", get(version::ok))
        .route("/api", any(api))
        .route("/api/{*path}", any(api))
        .route("/apis", any(api))
        .route("/apis/{*path}", any(api))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Api { registry, issuer })
}

/// Everything under `/api` and `/apis`: parse the path, then serve it in the request's span.
async fn api(
    State(Api { registry, issuer }): State<Api>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = match query::Query::parse(uri.query().unwrap_or("")) {
        Ok(q) => q,
        Err(status) => return status.into_response(),
    };
    let target = path::parse(uri.path());
    let span = span::handler_span(&method, &uri, &headers, target.as_ref().ok(), &query);
    async move {
        let target = match target {
            Ok(t) => t,
            Err(status) => return status.into_response(),
        };
        let request = request::Request { method: &method, headers: &headers, query: &query, body: &body };
        match target {
            path::Target::Discovery(doc) => discovery::serve(doc, &headers),
            path::Target::Object(target) => {
                serve(&registry, &issuer, &target, request).await.unwrap_or_else(IntoResponse::into_response)
            }
        }
    }
    .instrument(span)
    .await
}

/// Serves a request for a collection, an object or a subresource: the verb's handler, or
/// upstream's 404 for a subresource the resource does not have and 405 for a verb it does not
/// serve.
async fn serve(
    registry: &Registry,
    issuer: &TokenIssuer,
    target: &path::ObjectTarget,
    req: request::Request<'_>,
) -> Result<Response, status::Status> {
    let sub = target.subresource.as_deref();
    if let Some(sub) = sub
        && !discovery::info(target.resource).subresources.iter().any(|s| s.name == sub)
    {
        return Err(status::Status::not_found_page());
    }
    match (req.method, target.name.as_deref(), sub) {
        (&Method::GET, _, None) if req.query.watch => watch::serve(registry, target, req),
        (&Method::GET, None, None) => objects::list(registry, target, req),
        (&Method::POST, None, None) => objects::create(registry, target, req).await,
        (&Method::GET, Some(name), None | Some("status")) => objects::get(registry, target, name, req),
        (&Method::PUT, Some(name), None | Some("status")) => update::put(registry, target, name, req).await,
        (&Method::PATCH, Some(name), None | Some("status" | "scale")) => {
            patch::serve(registry, target, name, req).await
        }
        (&Method::GET, Some(name), Some("scale")) => scale::get(registry, target, name),
        (&Method::PUT, Some(name), Some("scale")) => scale::put(registry, target, name, req).await,
        (&Method::DELETE, Some(name), None) => objects::delete(registry, target, name, req).await,
        (&Method::POST, Some(name), Some("binding")) => objects::bind(registry, target, name, req).await,
        (&Method::POST, Some(name), Some("token")) => token::create(registry, issuer, target, name, req),
        _ => Err(status::Status::method_not_allowed()),
    }
}

#[cfg(test)]
mod tests;
