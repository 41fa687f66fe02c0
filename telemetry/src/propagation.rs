//! W3C trace-context propagation over gRPC: clients inject `traceparent` into request metadata
//! with [`inject`]; servers start each request's span as a child of it with [`grpc_server_span`].

use opentelemetry::{Context, global};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// A tonic client interceptor: puts the current span's context into the request metadata.
///
/// Use as `XClient::with_interceptor(channel, netlab_telemetry::propagation::inject)`.
#[allow(clippy::result_large_err)] // the signature is tonic's Interceptor
pub fn inject(mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    let cx = tracing::Span::current().context();
    global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(req.metadata_mut().as_mut()))
    });
    Ok(req)
}

/// The remote context carried by HTTP (or gRPC) headers.
pub fn extract(headers: &http::HeaderMap) -> Context {
    global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// For `tonic::transport::Server::builder().trace_fn(grpc_server_span)`: one server span per
/// request, with OpenTelemetry's RPC attributes, parented to the caller's trace.
pub fn grpc_server_span(req: &http::Request<()>) -> tracing::Span {
    let path = req.uri().path();
    let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or((path, ""));
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
    );
    let _ = span.set_parent(extract(req.headers()));
    span
}

pub use netlab_proto::trace::{EDNS_SOURCE_IP, EDNS_TRACEPARENT, TRACEPARENT_ANNOTATION};

/// The current span's context as a W3C `traceparent` value, for carriers that are not headers
/// (a DNS option, an object annotation). None when there is no sampled trace.
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    let mut carrier = std::collections::HashMap::new();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    carrier.remove("traceparent")
}

/// Makes `span` a child of the trace in a `traceparent` value; a malformed value is ignored.
pub fn set_parent_from_traceparent(span: &tracing::Span, traceparent: &str) {
    let carrier: std::collections::HashMap<String, String> =
        [("traceparent".to_string(), traceparent.to_string())].into();
    let cx = global::get_text_map_propagator(|p| p.extract(&carrier));
    let _ = span.set_parent(cx);
}

/// The `traceparent` recorded on an object's annotations, if any.
pub fn traceparent_of(annotations: Option<&std::collections::BTreeMap<String, String>>) -> Option<&str> {
    annotations?.get(TRACEPARENT_ANNOTATION).map(String::as_str)
}

/// Makes `span` a child of the trace recorded on an object, if it records one.
pub fn follow(span: &tracing::Span, annotations: Option<&std::collections::BTreeMap<String, String>>) {
    if let Some(tp) = traceparent_of(annotations) {
        set_parent_from_traceparent(span, tp);
    }
}

/// Copies the owner's trace annotation onto a child object's annotations.
pub fn inherit(
    owner: Option<&std::collections::BTreeMap<String, String>>,
    child: &mut Option<std::collections::BTreeMap<String, String>>,
) {
    if let Some(tp) = traceparent_of(owner) {
        child.get_or_insert_default().insert(TRACEPARENT_ANNOTATION.to_string(), tp.to_string());
    }
}
