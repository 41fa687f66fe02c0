//! An in-process OTLP collector that plays Jaeger for end-to-end tests.
//!
//! Jaeger's image cannot be pulled on this project's machines, and a test wants to look at spans
//! anyway, not at a UI. So the collector runs netlab's own trace store (`netlab-traces`, the one
//! `netlab up` starts) in the test process: OTLP/gRPC in (the `TraceService` every binary's
//! exporter speaks) and Jaeger's HTTP query API out, so the real `netlab trace` can be pointed at
//! it with `NETLAB_JAEGER_URL`; and it hands the spans to the test in plain types
//! ([`RecordedSpan`]) to assert on.
//!
//! Both servers run on a thread of their own with its own runtime, so a `#[test]` can use the
//! collector whether or not it runs a Tokio runtime itself.

use std::{
    collections::BTreeMap,
    fmt,
    net::SocketAddr,
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use netlab_traces::{Store, id::hex, jaeger::text, span::Span};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

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
}

// === impl RecordedSpan ===

impl RecordedSpan {
    fn new(span: &Span) -> Self {
        let texts = |kvs: &[opentelemetry_proto::tonic::common::v1::KeyValue]| -> BTreeMap<String, String> {
            kvs.iter().map(|kv| (kv.key.clone(), text(kv.value.as_ref()))).collect()
        };
        let otlp = span.otlp();
        let error =
            otlp.status.as_ref().filter(|s| s.code == StatusCode::Error as i32).map(|s| s.message.clone());
        Self {
            trace_id: hex(&span.trace_id),
            span_id: hex(&otlp.span_id),
            parent_span_id: (!otlp.parent_span_id.is_empty()).then(|| hex(&otlp.parent_span_id)),
            name: span.name().to_string(),
            service: span.service().to_string(),
            kind: span.kind().into(),
            attributes: texts(&otlp.attributes),
            resource: texts(&span.resource.attributes),
            error,
            links: otlp.links.iter().map(|l| (hex(&l.trace_id), hex(&l.span_id))).collect(),
            start: UNIX_EPOCH + Duration::from_nanos(span.start_ns()),
            end: UNIX_EPOCH + Duration::from_nanos(span.end_ns()),
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

/// A running collector: OTLP/gRPC in, Jaeger's query API out. Stopped when dropped.
pub struct Collector {
    /// Unbounded: a test sees every span it caused.
    store: Store,
    /// The spans converted so far, in arrival order (the store numbers them from 0).
    seen: Mutex<Vec<RecordedSpan>>,
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
        let store = Store::new(usize::MAX);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = store.clone();
        let thread = std::thread::Builder::new()
            .name("otlp-collector".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("collector runtime");
                rt.block_on(async move {
                    let otlp = tokio::net::TcpListener::from_std(otlp_listener).expect("tokio listener");
                    let query = tokio::net::TcpListener::from_std(query_listener).expect("tokio listener");
                    let never = tokio_util::sync::CancellationToken::new();
                    // Dropping the runtime after this ends the servers and their connections at
                    // once, where a graceful shutdown would wait for the exporters to hang up.
                    tokio::select! {
                        r = netlab_traces::serve(otlp, query, served, never) => eprintln!("otlp collector: ended: {r:?}"),
                        _ = stopped => {}
                    }
                });
            })
            .expect("spawn the collector thread");
        Self { store, seen: Mutex::default(), otlp, query, stop: Some(stop), thread: Some(thread) }
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

    /// The spans received so far, converted once each.
    fn seen(&self) -> MutexGuard<'_, Vec<RecordedSpan>> {
        // A test that panicked while holding the lock left whole spans behind: keep using them.
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let known = seen.len() as u64;
        let new: Vec<RecordedSpan> =
            self.store.spans().iter().filter(|s| s.seq >= known).map(|s| RecordedSpan::new(s)).collect();
        seen.extend(new);
        seen
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<RecordedSpan> {
        self.seen().clone()
    }

    /// The spans of one trace (the id in any case), in arrival order.
    pub fn trace(&self, trace_id: &str) -> Vec<RecordedSpan> {
        let id = trace_id.to_ascii_lowercase();
        self.seen().iter().filter(|s| s.trace_id == id).cloned().collect()
    }

    /// The first span received that matches `pred`.
    pub fn find(&self, pred: impl Fn(&RecordedSpan) -> bool) -> Option<RecordedSpan> {
        self.seen().iter().find(|s| pred(s)).cloned()
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
        self.seen().iter().map(|s| format!("{}  {}\n", s.trace_id, s.summary())).collect()
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

#[cfg(test)]
mod tests;
