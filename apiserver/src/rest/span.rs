//! One span per REST request, joined to the caller's trace (the W3C `traceparent` header, as the
//! gRPC edge's [`netlab_telemetry::propagation::grpc_server_span`]) and named as kube-apiserver's
//! audit events name a request: the verb and the resource, `list pods`, `create services`,
//! `delete deployments`. kubectl's `Kubectl-Command` header (`kubectl get`) is an attribute, so
//! a trace says which command made the call.
//!
//! The server's `trace_fn` (which sees every request on the shared port) starts REST requests'
//! spans with [`http_server_span`] and gRPC ones with
//! `netlab_telemetry::propagation::grpc_server_span`; the REST handler then uses that span.
//! Under any other span (or none), the handler starts its own [`request_span`].

use axum::http::{HeaderMap, Method, Uri};

use super::{
    path::{ObjectTarget, Target, parse},
    query::Query,
};

/// The name (tracing's, not OpenTelemetry's) of every REST request span.
pub const SPAN_NAME: &str = "rest";

/// The audit verb of a request (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
/// `deletecollection`).
pub fn verb(method: &Method, target: &ObjectTarget, query: &Query) -> &'static str {
    let collection = target.name.is_none();
    match *method {
        Method::GET | Method::HEAD if query.watch => "watch",
        Method::GET | Method::HEAD if collection => "list",
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if collection => "deletecollection",
        Method::DELETE => "delete",
        _ => "unknown",
    }
}

/// The span's name: `list pods`, `create pods/binding`, or `GET /apis` for discovery and
/// unknown paths.
pub fn name(method: &Method, uri: &Uri, target: Option<&Target>, query: &Query) -> String {
    match target {
        Some(Target::Object(t)) => {
            let resource = match &t.subresource {
                Some(sub) => format!("{}/{sub}", t.resource.plural()),
                None => t.resource.plural().to_string(),
            };
            format!("{} {resource}", verb(method, t, query))
        }
        _ => format!("{method} {}", uri.path()),
    }
}

/// For the server's `trace_fn`: the span of a REST request, in the caller's trace.
pub fn http_server_span(req: &axum::http::Request<()>) -> tracing::Span {
    let query = Query::parse(req.uri().query().unwrap_or("")).unwrap_or_default();
    let target = parse(req.uri().path()).ok();
    request_span(req.method(), req.uri(), req.headers(), target.as_ref(), &query, true)
}

/// The span the REST handler runs in: the request's own when the server started one with
/// [`http_server_span`]; else a new one, a child of the current span if there is one (which
/// then carries the caller's trace), or of the caller's `traceparent`.
pub fn handler_span(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    target: Option<&Target>,
    query: &Query,
) -> tracing::Span {
    let current = tracing::Span::current();
    if current.metadata().is_some_and(|m| m.name() == SPAN_NAME) {
        return current;
    }
    request_span(method, uri, headers, target, query, current.is_none())
}

/// The request's span; with `join`, a child of the caller's `traceparent` when it sends one.
pub fn request_span(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    target: Option<&Target>,
    query: &Query,
    join: bool,
) -> tracing::Span {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (namespace, object) = match target {
        Some(Target::Object(t)) => (t.namespace.as_deref().unwrap_or(""), t.name.as_deref().unwrap_or("")),
        _ => ("", ""),
    };
    let span = tracing::info_span!(
        SPAN_NAME,
        otel.name = %name(method, uri, target, query),
        otel.kind = "server",
        http.request.method = %method,
        url.path = %uri.path(),
        k8s.namespace = namespace,
        k8s.name = object,
        kubectl.command = header("kubectl-command"),
        kubectl.session = header("kubectl-session"),
        user_agent.original = header("user-agent"),
        watch.events = tracing::field::Empty,
    );
    let traceparent = header("traceparent");
    if join && !traceparent.is_empty() {
        netlab_telemetry::propagation::set_parent_from_traceparent(&span, traceparent);
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_audit_verbs() {
        let q = Query::default();
        let cases = [
            (Method::GET, "/api/v1/pods", "list pods"),
            (Method::GET, "/api/v1/namespaces/demo/services/web", "get services"),
            (Method::POST, "/apis/apps/v1/namespaces/demo/deployments", "create deployments"),
            (Method::DELETE, "/api/v1/namespaces/demo/pods/web", "delete pods"),
            (Method::POST, "/api/v1/namespaces/demo/pods/web/binding", "create pods/binding"),
            (Method::PUT, "/apis/apps/v1/namespaces/demo/deployments/web", "update deployments"),
            (Method::PATCH, "/apis/apps/v1/namespaces/demo/deployments/web/scale", "patch deployments/scale"),
            (Method::PUT, "/api/v1/namespaces/demo/pods/web/status", "update pods/status"),
            (Method::GET, "/apis", "GET /apis"),
        ];
        for (method, path, want) in cases {
            let uri: Uri = path.parse().unwrap();
            let target = parse(path).ok();
            assert_eq!(name(&method, &uri, target.as_ref(), &q), want);
        }
        let watch = Query { watch: true, ..Query::default() };
        let uri: Uri = "/api/v1/pods".parse().unwrap();
        assert_eq!(name(&Method::GET, &uri, parse("/api/v1/pods").ok().as_ref(), &watch), "watch pods");
        let one = "/api/v1/namespaces/demo/pods/web";
        assert_eq!(name(&Method::GET, &one.parse().unwrap(), parse(one).ok().as_ref(), &watch), "watch pods");
    }
}
