//! The registry's request spans, checked in a process of their own: tracing caches callsite
//! interest globally, so a span test beside other tests can race with them.

use std::sync::{Arc, Mutex};

use axum::{Router, body::Body, middleware};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use tower::ServiceExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

/// Records the fields of every span, to check the HTTP attributes.
#[derive(Clone, Default)]
struct Fields(Arc<Mutex<Vec<(String, String)>>>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.lock().unwrap().push((field.name().to_string(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.lock().unwrap().push((field.name().to_string(), value.to_string()));
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.lock().unwrap().push((field.name().to_string(), value.to_string()));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Fields {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        attrs.record(&mut self.clone());
    }
    fn on_record(
        &self,
        _: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        values.record(&mut self.clone());
    }
}

#[tokio::test]
async fn spans_carry_http_attributes_and_the_callers_trace() {
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let fields = Fields::default();
    let subscriber = tracing_subscriber::registry()
        .with(fields.clone())
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    // A handler behind the registry's middleware that reports the trace it runs in.
    let app = Router::new()
        .fallback(|| async {
            let cx = tracing::Span::current().context();
            cx.span().span_context().trace_id().to_string()
        })
        .layer(middleware::from_fn(netlab_cloud::registry::http::trace));
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let req = axum::http::Request::builder()
        .uri("/v2/library/nginx/manifests/latest")
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .body(Body::empty())
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    assert_eq!(std::str::from_utf8(&body).unwrap(), trace_id);

    let fields = fields.0.lock().unwrap().clone();
    let get = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    assert_eq!(get("http.request.method").as_deref(), Some("GET"));
    assert_eq!(get("url.path").as_deref(), Some("/v2/library/nginx/manifests/latest"));
    assert_eq!(get("http.route").as_deref(), Some("/v2/{name}/manifests/{reference}"));
    assert_eq!(get("http.response.status_code").as_deref(), Some("200"));
    assert_eq!(get("otel.name").as_deref(), Some("GET /v2/{name}/manifests/{reference}"));
}
