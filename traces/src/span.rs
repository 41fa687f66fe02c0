//! One span as the store keeps it: the OTLP span as it arrived, with the resource (the process that
//! sent it) and the instrumentation scope it came under. It stays in OTLP form, encoded, with what
//! the indexes and searches read (name, times, kind) beside it, and becomes Jaeger's JSON only
//! when read ([`crate::jaeger`]); the resource and scope are shared by every span of one export,
//! as they arrive shared.

use std::sync::Arc;

use prost::Message as _;

use opentelemetry_proto::tonic::{
    common::v1::{InstrumentationScope, KeyValue, any_value},
    trace::v1::{self as otlp, span::SpanKind},
};

use crate::id::TraceId;

/// The OTLP resource attribute that names the process's service.
pub const SERVICE_NAME: &str = "service.name";

/// The process that sent spans: OTLP's resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// `service.name` (empty if the resource has none), e.g. `kube-apiserver`.
    pub service: String,
    /// Every attribute, `service.name` included, in the order sent.
    pub attributes: Vec<KeyValue>,
}

// === impl Resource ===

impl Resource {
    /// A resource from its attributes, its service name picked out.
    pub fn new(attributes: Vec<KeyValue>) -> Self {
        let service = attributes
            .iter()
            .find(|kv| kv.key == SERVICE_NAME)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
            .map(|v| match v {
                any_value::Value::StringValue(s) => s.clone(),
                _ => String::new(),
            })
            .unwrap_or_default();
        Self { service, attributes }
    }
}

/// One stored span.
#[derive(Debug, Clone)]
pub struct Span {
    /// Its trace.
    pub trace_id: TraceId,
    /// The name (Jaeger's operation), kept apart for the indexes.
    name: String,
    /// Start, ns since the epoch.
    start_ns: u64,
    /// End, ns since the epoch.
    end_ns: u64,
    /// OTLP's kind.
    kind: i32,
    /// The rest of the OTLP span, protobuf-encoded: a third of its decoded size (attributes
    /// decoded are a `String` and an enum each, on top of their bytes), so the cap on spans buys
    /// about three times as many; decoded again only to be shown or matched on tags.
    encoded: Box<[u8]>,
    /// The process that sent it.
    pub resource: Arc<Resource>,
    /// The instrumentation scope (library) that made it, if the export named one.
    pub scope: Option<Arc<InstrumentationScope>>,
    /// Its place in the order the store received spans, counting from 0 (set by the store).
    pub seq: u64,
}

// === impl Span ===

impl Span {
    /// A span of trace `trace_id` (already taken from `otlp`, which must have 16 bytes for it),
    /// sent by `resource` under `scope`.
    pub fn new(
        trace_id: TraceId,
        mut otlp: otlp::Span,
        resource: Arc<Resource>,
        scope: Option<Arc<InstrumentationScope>>,
    ) -> Self {
        let name = std::mem::take(&mut otlp.name);
        // Kept once, as the key.
        otlp.trace_id = Vec::new();
        Self {
            trace_id,
            name,
            start_ns: otlp.start_time_unix_nano,
            end_ns: otlp.end_time_unix_nano,
            kind: otlp.kind,
            encoded: otlp.encode_to_vec().into_boxed_slice(),
            resource,
            scope,
            seq: 0,
        }
    }

    /// The OTLP span as it was received.
    pub fn otlp(&self) -> otlp::Span {
        // These are bytes prost encoded from a valid message a moment after decoding it from the
        // wire, so decoding them cannot fail; were it to, an empty span shows rather than a panic.
        let mut otlp = otlp::Span::decode(&*self.encoded).unwrap_or_default();
        otlp.trace_id = self.trace_id.to_vec();
        otlp.name = self.name.clone();
        otlp
    }

    /// The span's name: Jaeger's operation.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The service of the process that sent it.
    pub fn service(&self) -> &str {
        &self.resource.service
    }

    /// Start, in ns since the epoch.
    pub fn start_ns(&self) -> u64 {
        self.start_ns
    }

    /// End, in ns since the epoch.
    pub fn end_ns(&self) -> u64 {
        self.end_ns
    }

    /// How long it took, in ns (0 if its end is before its start).
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// The kind as Jaeger names it: `server`, `client`, `producer`, `consumer`, `internal`, or
    /// empty when unspecified.
    pub fn kind(&self) -> &'static str {
        kind_name(self.kind)
    }
}

/// An OTLP span kind as Jaeger names it (lowercase; empty for unspecified or unknown).
pub fn kind_name(kind: i32) -> &'static str {
    match SpanKind::try_from(kind).unwrap_or(SpanKind::Unspecified) {
        SpanKind::Unspecified => "",
        SpanKind::Internal => "internal",
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
    }
}
