//! An in-process OTLP collector that plays Jaeger for end-to-end tests.
//!
//! Jaeger's image cannot be pulled on this project's machines, and a test wants to look at spans
//! anyway, not at a UI. So the collector does the two things of Jaeger that netlab relies on: it
//! takes OTLP/gRPC exports (the `TraceService` every binary's exporter speaks) and answers
//! Jaeger's HTTP query API, `GET /api/traces/{traceID}`, in the JSON shape Jaeger's UI reads, so
//! the real `netlab trace` can be pointed at it with `NETLAB_JAEGER_URL`.
//!
//! The OTLP → Jaeger mapping follows Jaeger's own translator (OpenTelemetry collector-contrib's
//! `pkg/translator/jaeger`): lowercase hex ids, the parent as a `CHILD_OF` reference and links as
//! `FOLLOWS_FROM`, typed tags, µs times, `span.kind`, `otel.status_code` + `error` +
//! `otel.status_description` from the status, `otel.scope.*` from the scope, and the resource as
//! the process (`service.name` → `serviceName`, the other attributes → its tags).
//!
//! Both servers run on a thread of their own with its own runtime, so a `#[test]` can use the
//! collector whether or not it runs a Tokio runtime itself.

use std::{
    collections::BTreeMap,
    fmt,
    future::IntoFuture as _,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::{Path, State},
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value},
    trace::v1::{Span, span::SpanKind, status::StatusCode as OtlpStatus},
};
use serde_json::{Value, json};

/// One span as the collector received it, with what a test asserts on in plain types.
#[derive(Clone)]
pub struct RecordedSpan {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// The parent's span id, if the span has one (it may be in another process, or not exported).
    pub parent_span_id: Option<String>,
    /// The span name, e.g. `allocate ClusterIP`.
    pub name: String,
    /// The resource's `service.name`, e.g. `kube-apiserver`.
    pub service: String,
    /// `server`, `client`, `producer`, `consumer`, `internal`, or empty when unspecified.
    pub kind: String,
    /// The span's attributes, every value as text (`12`, `true`, `10.96.0.10`).
    pub attributes: BTreeMap<String, String>,
    /// The resource's attributes, `service.name` included.
    pub resource: BTreeMap<String, String>,
    /// The status message when the status is ERROR (possibly empty), else None.
    pub error: Option<String>,
    /// Links to other spans, `(trace id, span id)`.
    pub links: Vec<(String, String)>,
    /// When the span started.
    pub start: SystemTime,
    /// When the span ended.
    pub end: SystemTime,
    /// The OTLP originals, for the Jaeger view.
    raw: Arc<Raw>,
}

/// What the Jaeger view needs beyond [`RecordedSpan`]'s text: typed values, scope, events.
struct Raw {
    span: Span,
    resource: Vec<KeyValue>,
    scope: Option<InstrumentationScope>,
}

// === impl RecordedSpan ===

impl RecordedSpan {
    fn new(span: Span, resource: &[KeyValue], scope: Option<&InstrumentationScope>) -> Self {
        let texts = |kvs: &[KeyValue]| -> BTreeMap<String, String> {
            kvs.iter().map(|kv| (kv.key.clone(), text(kv.value.as_ref()))).collect()
        };
        let resource_map = texts(resource);
        let error =
            span.status.as_ref().filter(|s| s.code == OtlpStatus::Error as i32).map(|s| s.message.clone());
        let kind = match SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified) {
            SpanKind::Unspecified => "",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        };
        Self {
            trace_id: hex(&span.trace_id),
            span_id: hex(&span.span_id),
            parent_span_id: (!span.parent_span_id.is_empty()).then(|| hex(&span.parent_span_id)),
            name: span.name.clone(),
            service: resource_map.get("service.name").cloned().unwrap_or_default(),
            kind: kind.into(),
            attributes: texts(&span.attributes),
            resource: resource_map,
            error,
            links: span.links.iter().map(|l| (hex(&l.trace_id), hex(&l.span_id))).collect(),
            start: UNIX_EPOCH + Duration::from_nanos(span.start_time_unix_nano),
            end: UNIX_EPOCH + Duration::from_nanos(span.end_time_unix_nano),
            raw: Arc::new(Raw { span, resource: resource.to_vec(), scope: scope.cloned() }),
        }
    }

    /// An attribute's text, or "" if the span has none by that key.
    pub fn attr(&self, key: &str) -> &str {
        self.attributes.get(key).map_or("", String::as_str)
    }

    /// `service  name  key=value ...`, for failure messages.
    pub fn summary(&self) -> String {
        let attrs: Vec<String> = self.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "{}  {}  [{} < {}]  {}",
            self.service,
            self.name,
            self.span_id,
            self.parent_span_id.as_deref().unwrap_or("-"),
            attrs.join(" ")
        )
    }
}

impl fmt::Debug for RecordedSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedSpan")
            .field("trace_id", &self.trace_id)
            .field("span_id", &self.span_id)
            .field("parent_span_id", &self.parent_span_id)
            .field("name", &self.name)
            .field("service", &self.service)
            .field("attributes", &self.attributes)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// The spans received so far, in arrival order.
type Store = Arc<Mutex<Vec<RecordedSpan>>>;

fn lock(store: &Store) -> std::sync::MutexGuard<'_, Vec<RecordedSpan>> {
    // A test that panicked while holding the lock left whole spans behind: keep using them.
    store.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running collector: OTLP/gRPC in, Jaeger's query API out. Stopped when dropped.
pub struct Collector {
    store: Store,
    otlp: SocketAddr,
    query: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

// === impl Collector ===

impl Collector {
    /// Starts both servers on 127.0.0.1 (free ports) on a thread of their own; they accept
    /// connections as soon as this returns.
    pub fn start() -> Self {
        // Bound here, so the ports are known and listening before the thread even runs.
        let bind = || {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
            l.set_nonblocking(true).expect("non-blocking listener");
            l
        };
        let (otlp_listener, query_listener) = (bind(), bind());
        let otlp = otlp_listener.local_addr().expect("local addr");
        let query = query_listener.local_addr().expect("local addr");
        let store = Store::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (receiver, view) = (Receiver(store.clone()), store.clone());
        let thread = std::thread::Builder::new()
            .name("otlp-collector".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("collector runtime");
                rt.block_on(async move {
                    let otlp = tokio::net::TcpListener::from_std(otlp_listener).expect("tokio listener");
                    let query = tokio::net::TcpListener::from_std(query_listener).expect("tokio listener");
                    let grpc = tonic::transport::Server::builder()
                        .add_service(TraceServiceServer::new(receiver))
                        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(otlp));
                    let app = axum::Router::new().route("/api/traces/{trace_id}", get(get_trace)).with_state(view);
                    // Dropping the runtime after this ends the servers and their connections.
                    tokio::select! {
                        r = grpc => eprintln!("otlp collector: gRPC server ended: {r:?}"),
                        r = axum::serve(query, app).into_future() => eprintln!("otlp collector: query server ended: {r:?}"),
                        _ = stopped => {}
                    }
                });
            })
            .expect("spawn the collector thread");
        Self { store, otlp, query, stop: Some(stop), thread: Some(thread) }
    }

    /// Where exporters send spans: `http://127.0.0.1:PORT`, for `--otlp-endpoint` or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn otlp_endpoint(&self) -> String {
        format!("http://{}", self.otlp)
    }

    /// Jaeger's query API: `http://127.0.0.1:PORT`, for `NETLAB_JAEGER_URL`.
    pub fn jaeger_url(&self) -> String {
        format!("http://{}", self.query)
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<RecordedSpan> {
        lock(&self.store).clone()
    }

    /// The spans of one trace (the id in any case), in arrival order.
    pub fn trace(&self, trace_id: &str) -> Vec<RecordedSpan> {
        let id = trace_id.to_ascii_lowercase();
        lock(&self.store).iter().filter(|s| s.trace_id == id).cloned().collect()
    }

    /// The first span received that matches `pred`.
    pub fn find(&self, pred: impl Fn(&RecordedSpan) -> bool) -> Option<RecordedSpan> {
        lock(&self.store).iter().find(|s| pred(s)).cloned()
    }

    /// Polls (blocking the calling thread) until a span matching `pred` has arrived, or `timeout`
    /// passes. Exporters batch (the SDK's default delay is 5 s), so give it tens of seconds.
    pub fn wait_for(&self, pred: impl Fn(&RecordedSpan) -> bool, timeout: Duration) -> Option<RecordedSpan> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(span) = self.find(&pred) {
                return Some(span);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One line per span received, for failure messages.
    pub fn summary(&self) -> String {
        lock(&self.store).iter().map(|s| format!("{}  {}\n", s.trace_id, s.summary())).collect()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The OTLP/gRPC `TraceService`: flattens each export into [`RecordedSpan`]s.
#[derive(Clone)]
struct Receiver(Store);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for rs in request.into_inner().resource_spans {
            let resource = rs.resource.map(|r| r.attributes).unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    received.push(RecordedSpan::new(span, &resource, ss.scope.as_ref()));
                }
            }
        }
        lock(&self.0).extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

// === Jaeger's query API ===

/// `GET /api/traces/{traceID}`, answered as Jaeger's query service answers it.
async fn get_trace(State(store): State<Store>, Path(trace_id): Path<String>) -> impl IntoResponse {
    let (status, body) = match padded_trace_id(&trace_id) {
        Err(msg) => (StatusCode::BAD_REQUEST, error_body(400, &msg)),
        Ok(id) => {
            let spans: Vec<RecordedSpan> =
                lock(&store).iter().filter(|s| s.trace_id == id).cloned().collect();
            if spans.is_empty() {
                (StatusCode::NOT_FOUND, error_body(404, "trace not found"))
            } else {
                (StatusCode::OK, jaeger_response(&spans))
            }
        }
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string())
}

/// Jaeger takes up to 32 hex digits and pads them with leading zeros.
fn padded_trace_id(id: &str) -> Result<String, String> {
    if id.len() > 32 {
        return Err(format!("TraceID cannot be longer than 32 hex characters: {id}"));
    }
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("strconv.ParseUint: parsing \"{id}\": invalid syntax"));
    }
    Ok(format!("{:0>32}", id.to_ascii_lowercase()))
}

/// Jaeger's error envelope.
fn error_body(code: u16, msg: &str) -> Value {
    json!({"data": null, "total": 0, "limit": 0, "offset": 0, "errors": [{"code": code, "msg": msg}]})
}

/// Jaeger's answer for one trace made of `spans` (all with the same trace id, at least one).
pub fn jaeger_response(spans: &[RecordedSpan]) -> Value {
    // One process per distinct resource, numbered in order of appearance as Jaeger does.
    let mut processes: Vec<(Value, String)> = Vec::new();
    let mut json_spans = Vec::new();
    for s in spans {
        let process = json!({
            "serviceName": s.service,
            "tags": s.raw.resource.iter().filter(|kv| kv.key != "service.name").map(tag).collect::<Vec<_>>(),
        });
        let process_id = match processes.iter().find(|(p, _)| *p == process) {
            Some((_, id)) => id.clone(),
            None => {
                let id = format!("p{}", processes.len() + 1);
                processes.push((process, id.clone()));
                id
            }
        };
        json_spans.push(jaeger_span(s, &process_id));
    }
    let trace_id = spans.first().map(|s| s.trace_id.clone()).unwrap_or_default();
    let processes: serde_json::Map<String, Value> = processes.into_iter().map(|(p, id)| (id, p)).collect();
    json!({
        "data": [{"traceID": trace_id, "spans": json_spans, "processes": processes, "warnings": null}],
        "total": 0, "limit": 0, "offset": 0, "errors": null
    })
}

fn jaeger_span(s: &RecordedSpan, process_id: &str) -> Value {
    let raw = &s.raw.span;
    let mut references = Vec::new();
    if let Some(parent) = &s.parent_span_id {
        references.push(json!({"refType": "CHILD_OF", "traceID": s.trace_id, "spanID": parent}));
    }
    for (trace, span) in &s.links {
        references.push(json!({"refType": "FOLLOWS_FROM", "traceID": trace, "spanID": span}));
    }
    let string = |key: &str, value: &str| json!({"key": key, "type": "string", "value": value});
    let mut tags = Vec::new();
    if let Some(scope) = &s.raw.scope {
        if !scope.name.is_empty() {
            tags.push(string("otel.scope.name", &scope.name));
        }
        if !scope.version.is_empty() {
            tags.push(string("otel.scope.version", &scope.version));
        }
    }
    tags.extend(raw.attributes.iter().map(tag));
    if !s.kind.is_empty() {
        tags.push(string("span.kind", &s.kind));
    }
    match raw.status.as_ref().map(|st| (OtlpStatus::try_from(st.code), st.message.as_str())) {
        Some((Ok(OtlpStatus::Error), message)) => {
            tags.push(string("otel.status_code", "ERROR"));
            tags.push(json!({"key": "error", "type": "bool", "value": true}));
            if !message.is_empty() {
                tags.push(string("otel.status_description", message));
            }
        }
        Some((Ok(OtlpStatus::Ok), _)) => tags.push(string("otel.status_code", "OK")),
        _ => {}
    }
    if !raw.trace_state.is_empty() {
        tags.push(string("w3c.tracestate", &raw.trace_state));
    }
    let logs: Vec<Value> = raw
        .events
        .iter()
        .map(|e| {
            let mut fields = vec![string("event", &e.name)];
            fields.extend(e.attributes.iter().map(tag));
            json!({"timestamp": e.time_unix_nano / 1_000, "fields": fields})
        })
        .collect();
    let start = raw.start_time_unix_nano / 1_000;
    let end = raw.end_time_unix_nano / 1_000;
    json!({
        "traceID": s.trace_id,
        "spanID": s.span_id,
        "operationName": s.name,
        "references": references,
        "startTime": start,
        "duration": end.saturating_sub(start),
        "tags": tags,
        "logs": logs,
        "processID": process_id,
        "warnings": null,
    })
}

/// An OTLP attribute as a Jaeger tag: `{"key", "type", "value"}`, maps and arrays as JSON text.
fn tag(kv: &KeyValue) -> Value {
    let (kind, value) = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::BoolValue(b)) => ("bool", json!(b)),
        Some(any_value::Value::IntValue(i)) => ("int64", json!(i)),
        Some(any_value::Value::DoubleValue(d)) => ("float64", json!(d)),
        Some(any_value::Value::BytesValue(b)) => ("binary", json!(data_encoding::BASE64.encode(b))),
        other => ("string", json!(other.map_or(String::new(), value_text))),
    };
    json!({"key": kv.key, "type": kind, "value": value})
}

/// An OTLP value as text: strings bare, arrays and maps as JSON.
fn text(v: Option<&AnyValue>) -> String {
    v.and_then(|v| v.value.as_ref()).map_or(String::new(), value_text)
}

fn value_text(v: &any_value::Value) -> String {
    match v {
        any_value::Value::StringValue(s) => s.clone(),
        other => as_json(other).to_string(),
    }
}

fn as_json(v: &any_value::Value) -> Value {
    let inner = |v: &AnyValue| v.value.as_ref().map_or(Value::Null, as_json);
    match v {
        any_value::Value::StringValue(s) => json!(s),
        any_value::Value::BoolValue(b) => json!(b),
        any_value::Value::IntValue(i) => json!(i),
        any_value::Value::DoubleValue(d) => json!(d),
        any_value::Value::BytesValue(b) => json!(data_encoding::BASE64.encode(b)),
        any_value::Value::ArrayValue(a) => Value::Array(a.values.iter().map(inner).collect()),
        any_value::Value::KvlistValue(m) => Value::Object(
            m.values
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Value::Null, inner)))
                .collect(),
        ),
        any_value::Value::StringValueStrindex(i) => json!(i),
    }
}

/// Lowercase hex, as Jaeger and W3C print ids.
fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

#[cfg(test)]
mod tests;
