//! The registry's HTTP edge: routes `/v2/...` paths (repository names span several path
//! segments, so routing is by suffix, as distribution does), turns store lookups into responses
//! with the spec's headers, and converts [`ApiError`] to the wire in one place. Every request
//! gets a server span with OpenTelemetry's HTTP attributes, parented to the caller's
//! `traceparent`, so a node-agent's pull shows up inside its trace. Requests for an ECR host
//! (`<account>.dkr.ecr.<region>.amazonaws.com`) go through ECR's gate ([`super::ecr_auth`])
//! when the router has the AWS account ([`router_with_ecr`]); every other host is the public,
//! anonymous registry.

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::Response,
};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{ApiError, Blob, Page, Registry, ecr_auth, faults::RegistryFaults};
use crate::aws::state::Shared;

/// Sent on every response: clients check it on `/v2/` to know they talk to a v2 registry.
pub const API_VERSION_HEADER: &str = "docker-distribution-api-version";
/// The manifest or blob digest, which clients verify against the content.
pub const DIGEST_HEADER: &str = "docker-content-digest";
const JSON: &str = "application/json; charset=utf-8";

/// What a request path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/v2/`: the API version check.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/tags/list`.
    Tags {
        /// Repository.
        name: &'a str,
    },
    /// `/v2/<name>/manifests/<reference>`.
    Manifest {
        /// Repository.
        name: &'a str,
        /// Tag or digest.
        reference: &'a str,
    },
    /// `/v2/<name>/blobs/<digest>`.
    Blob {
        /// Repository.
        name: &'a str,
        /// Digest.
        digest: &'a str,
    },
    /// `/v2/<name>/blobs/uploads/...`: pushes, which this registry does not take.
    Upload,
    /// Anything else.
    NotFound,
}

/// What the handler serves from: the store, and the AWS account when ECR hosts are served.
#[derive(Debug, Clone)]
struct Served {
    registry: Arc<Registry>,
    ecr: Option<Arc<Shared>>,
}

/// The router: every path goes through one handler that routes by suffix.
pub fn router(registry: Arc<Registry>) -> Router {
    router_with_faults(registry, None)
}

/// [`router`] with the RegistryChaos faults in force (if any) decided before the handler, inside
/// the request's span so each decision marks it.
pub fn router_with_faults(registry: Arc<Registry>, faults: Option<Arc<RegistryFaults>>) -> Router {
    router_with_ecr(registry, faults, None)
}

/// [`router_with_faults`] that also serves the account's ECR hosts behind ECR's Basic auth and
/// IAM (`ecr` None: ECR host names are served like any other, anonymously).
pub fn router_with_ecr(
    registry: Arc<Registry>,
    faults: Option<Arc<RegistryFaults>>,
    ecr: Option<Arc<Shared>>,
) -> Router {
    let router = Router::new().fallback(handle).with_state(Served { registry, ecr });
    let router = match faults {
        Some(f) => router.layer(middleware::from_fn_with_state(f, super::faults::enforce)),
        None => router,
    };
    router.layer(middleware::from_fn(trace))
}

/// Parses a request path.
pub fn route(path: &str) -> Route<'_> {
    let Some(rest) = path.strip_prefix("/v2/") else {
        return if path == "/v2" { Route::Base } else { Route::NotFound };
    };
    if rest.is_empty() {
        return Route::Base;
    }
    if rest == "_catalog" {
        return Route::Catalog;
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Route::Tags { name };
    }
    if rest.contains("/blobs/uploads") {
        return Route::Upload;
    }
    if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        return Route::Manifest { name, reference };
    }
    if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
        return Route::Blob { name, digest };
    }
    Route::NotFound
}

// === impl Route ===

impl Route<'_> {
    /// The route template, for `http.route` and the span name.
    pub fn template(&self) -> &'static str {
        match self {
            Route::Base => "/v2/",
            Route::Catalog => "/v2/_catalog",
            Route::Tags { .. } => "/v2/{name}/tags/list",
            Route::Manifest { .. } => "/v2/{name}/manifests/{reference}",
            Route::Blob { .. } => "/v2/{name}/blobs/{digest}",
            Route::Upload => "/v2/{name}/blobs/uploads/",
            Route::NotFound => "/",
        }
    }
}

/// Middleware (`axum::middleware::from_fn(trace)`): one server span per request, with
/// OpenTelemetry's HTTP semantic attributes, parented to the caller's `traceparent`. Public so
/// the cloud's other HTTP APIs can wrap their routers in the same spans.
pub async fn trace(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let template = route(&path).template();
    let span = tracing::info_span!(
        "registry.request",
        otel.name = %format!("{method} {template}"),
        otel.kind = "server",
        netlab.subsystem = "registry",
        http.request.method = %method,
        url.path = %path,
        http.route = template,
        http.response.status_code = tracing::field::Empty,
    );
    let _ = span.set_parent(netlab_telemetry::propagation::extract(req.headers()));
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    span.in_scope(|| tracing::debug!(status, "Served."));
    response
}

async fn handle(State(served): State<Served>, req: Request) -> Response {
    let registry = served.registry;
    if let Some(shared) = &served.ecr {
        let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).or(req.uri().host());
        if let Some(host) = host.and_then(ecr_auth::ecr_host) {
            return ecr_auth::serve(&registry, shared, &host, &req, jiff::Timestamp::now());
        }
    }
    let method = req.method().clone();
    let head = method == Method::HEAD;
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("");
    let route = route(path);
    let result = match route {
        Route::NotFound => Err(ApiError::NotFound),
        _ if method != Method::GET && !head => Err(ApiError::Unsupported),
        Route::Upload => Err(ApiError::Unsupported),
        Route::Base => Ok(json(StatusCode::OK, b"{}".to_vec(), head)),
        Route::Catalog => pagination(query).map(|(n, last)| {
            let page = registry.catalog(n, last.as_deref());
            let body = serde_json::json!({ "repositories": page.items });
            with_link(json(StatusCode::OK, body.to_string().into_bytes(), head), "/v2/_catalog", n, &page)
        }),
        Route::Tags { name } => pagination(query).and_then(|(n, last)| {
            let page = registry.tags(name, n, last.as_deref())?;
            let body = serde_json::json!({ "name": name, "tags": page.items });
            let base = format!("/v2/{name}/tags/list");
            Ok(with_link(json(StatusCode::OK, body.to_string().into_bytes(), head), &base, n, &page))
        }),
        Route::Manifest { name, reference } => registry.manifest(name, reference).map(|m| content(m, head)),
        Route::Blob { name, digest } => registry.blob(name, digest).map(|b| blob(b, head)),
    };
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_string();
    let mut response = result.unwrap_or_else(|e| error(&e, head, &host));
    response.headers_mut().insert(API_VERSION_HEADER, HeaderValue::from_static("registry/2.0"));
    response
}

/// The one place an [`ApiError`] becomes a response. HEAD responses carry the status and the
/// length but no body, as the spec requires. A 401 carries the Basic challenge ECR sends (realm:
/// the registry's own URL, from `host`); a 429 Docker Hub's rate-limit headers.
pub fn error(e: &ApiError, head: bool, host: &str) -> Response {
    let content_type = match e {
        ApiError::NotFound => "text/plain; charset=utf-8",
        ApiError::BadGateway => "text/html",
        _ => JSON,
    };
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = bytes_response(status, content_type, e.body(), head);
    match e {
        ApiError::Unauthorized { .. } => {
            insert(
                &mut r,
                header::WWW_AUTHENTICATE.as_str(),
                &format!("Basic realm=\"http://{host}/\",service=\"cloud\""),
            );
        }
        ApiError::TooManyRequests => {
            insert(&mut r, "ratelimit-limit", "100;w=21600");
            insert(&mut r, "ratelimit-remaining", "0;w=21600");
        }
        _ => {}
    }
    insert(&mut r, API_VERSION_HEADER, "registry/2.0");
    r
}

/// A manifest: its own media type, digest and length.
pub(super) fn content(m: &Blob, head: bool) -> Response {
    let mut r = bytes_response(StatusCode::OK, m.media_type, m.bytes.clone(), head);
    insert(&mut r, DIGEST_HEADER, &m.digest);
    r
}

/// A blob: served as octet-stream, as distribution serves blobs, with its digest.
pub(super) fn blob(b: &Blob, head: bool) -> Response {
    let mut r = bytes_response(StatusCode::OK, "application/octet-stream", b.bytes.clone(), head);
    insert(&mut r, DIGEST_HEADER, &b.digest);
    insert(&mut r, header::ETAG.as_str(), &format!("\"{}\"", b.digest));
    insert(&mut r, header::CACHE_CONTROL.as_str(), "max-age=31536000");
    r
}

pub(super) fn json(status: StatusCode, mut body: Vec<u8>, head: bool) -> Response {
    body.push(b'\n');
    bytes_response(status, JSON, body, head)
}

/// A response whose Content-Length is the full body's, even for HEAD (where the body is
/// dropped): clients size their downloads from a HEAD.
fn bytes_response(
    status: StatusCode,
    content_type: &str,
    body: impl Into<bytes::Bytes>,
    head: bool,
) -> Response {
    let body: bytes::Bytes = body.into();
    let len = body.len();
    let mut r = Response::new(if head { Body::empty() } else { Body::from(body) });
    *r.status_mut() = status;
    insert(&mut r, header::CONTENT_TYPE.as_str(), content_type);
    insert(&mut r, header::CONTENT_LENGTH.as_str(), &len.to_string());
    r
}

fn insert(r: &mut Response, name: &'static str, value: &str) {
    // Every value here is ASCII (digests, media types, numbers, paths of valid names).
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

/// `Link: <...?last=...&n=...>; rel="next"` when a page is cut short.
fn with_link(mut r: Response, base: &str, n: Option<usize>, page: &Page) -> Response {
    if let (true, Some(n), Some(last)) = (page.more, n, page.items.last()) {
        insert(&mut r, header::LINK.as_str(), &format!("<{base}?last={last}&n={n}>; rel=\"next\""));
    }
    r
}

/// `n` and `last` from a query string.
fn pagination(query: &str) -> Result<(Option<usize>, Option<String>), ApiError> {
    let (mut n, mut last) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "n" => {
                n = Some(value.parse().map_err(|_| ApiError::PaginationNumberInvalid { n: value.into() })?)
            }
            "last" => last = Some(percent_decode(value)),
            _ => {}
        }
    }
    Ok((n, last))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_multi_segment_names() {
        assert_eq!(route("/v2/"), Route::Base);
        assert_eq!(route("/v2"), Route::Base);
        assert_eq!(route("/v2/_catalog"), Route::Catalog);
        assert_eq!(route("/v2/library/nginx/tags/list"), Route::Tags { name: "library/nginx" });
        assert_eq!(
            route("/v2/registry.k8s.io/nginx-slim/manifests/0.8"),
            Route::Manifest { name: "registry.k8s.io/nginx-slim", reference: "0.8" }
        );
        assert_eq!(
            route("/v2/library/nginx/blobs/sha256:ab"),
            Route::Blob { name: "library/nginx", digest: "sha256:ab" }
        );
        // A repository may itself be called "manifests": the last marker wins.
        assert_eq!(
            route("/v2/a/manifests/b/manifests/latest"),
            Route::Manifest { name: "a/manifests/b", reference: "latest" }
        );
        assert_eq!(route("/v2/library/nginx/blobs/uploads/"), Route::Upload);
        assert_eq!(route("/healthz"), Route::NotFound);
        assert_eq!(route("/v2/library/nginx"), Route::NotFound);
    }

    use axum::body::to_bytes;
    use tower::ServiceExt as _;

    async fn call(
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, axum::http::HeaderMap, bytes::Bytes) {
        let mut req = axum::http::Request::builder().method(method).uri(path);
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let app = router(Arc::new(Registry::from_catalog()));
        let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let (parts, body) = resp.into_parts();
        (parts.status, parts.headers, to_bytes(body, usize::MAX).await.unwrap())
    }

    #[tokio::test]
    async fn head_keeps_length_and_digest_but_drops_the_body() {
        let (status, get_headers, body) = call("GET", "/v2/hashicorp/http-echo/manifests/1.0", &[]).await;
        assert_eq!(status, StatusCode::OK);
        let (status, headers, empty) = call("HEAD", "/v2/hashicorp/http-echo/manifests/1.0", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(empty.is_empty());
        assert_eq!(headers["content-length"], body.len().to_string().as_str());
        assert_eq!(headers[DIGEST_HEADER], get_headers[DIGEST_HEADER]);
        assert_eq!(headers["content-type"], crate::registry::image::MANIFEST_MEDIA_TYPE);
        assert_eq!(headers[API_VERSION_HEADER], "registry/2.0");
    }

    #[tokio::test]
    async fn errors_and_unknown_paths() {
        let (status, headers, body) = call("GET", "/v2/netlab/echo/manifests/v2", &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers["content-type"], JSON);
        assert!(body.starts_with(b"{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\""));
        let (status, _, body) = call("GET", "/healthz", &[]).await;
        assert_eq!((status, &body[..]), (StatusCode::NOT_FOUND, &b"404 page not found\n"[..]));
        let (status, _, body) = call("POST", "/v2/netlab/echo/blobs/uploads/", &[]).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(body.starts_with(b"{\"errors\":[{\"code\":\"UNSUPPORTED\""));
        let (status, _, _) = call("GET", "/v2/library/nginx/tags/list?n=x", &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn pagination_parameters() {
        assert_eq!(pagination("").unwrap(), (None, None));
        assert_eq!(pagination("n=2&last=library%2Fnginx").unwrap(), (Some(2), Some("library/nginx".into())));
        assert!(matches!(pagination("n=-1"), Err(ApiError::PaginationNumberInvalid { .. })));
    }
}
