//! Spans and exports for tests: the store's own, and netlab-e2e's in-process collector's
//! (feature `test-util`), so both read the same export.

use std::sync::Arc;

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value},
    resource::v1::Resource as OtlpResource,
    trace::v1::{self as otlp, ResourceSpans, ScopeSpans, Status, span, span::SpanKind, status::StatusCode},
};

use crate::span::{Resource, Span};

/// A full 128-bit trace id.
pub const TRACE: [u8; 16] =
    [0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36];
/// [`TRACE`] as text.
pub const TRACE_HEX: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// A trace id whose high half is zero.
pub const OTHER: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd];
/// 2026-01-01T00:00:00Z in ns.
pub const T0: u64 = 1_767_225_600_000_000_000;

/// An OTLP attribute.
pub fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

/// A string attribute value.
pub fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

/// A trace id made of one byte, repeated.
pub fn trace(n: u8) -> [u8; 16] {
    [n; 16]
}

/// An OTLP span of `trace`, span id `id`, `start_us` after [`T0`], lasting `dur_us`.
pub fn otlp_span(
    trace: [u8; 16],
    id: u8,
    parent: Option<u8>,
    name: &str,
    start_us: u64,
    dur_us: u64,
) -> otlp::Span {
    otlp::Span {
        trace_id: trace.to_vec(),
        span_id: vec![0, 0, 0, 0, 0, 0, 0, id],
        parent_span_id: parent.map(|p| vec![0, 0, 0, 0, 0, 0, 0, p]).unwrap_or_default(),
        name: name.into(),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: T0 + start_us * 1_000,
        end_time_unix_nano: T0 + (start_us + dur_us) * 1_000,
        ..Default::default()
    }
}

/// A stored span of `service` (the store numbers it).
pub fn span(service: &str, trace: [u8; 16], id: u8, name: &str) -> Span {
    stored(otlp_span(trace, id, None, name, u64::from(id), 10), service)
}

/// `otlp` as stored, from a process named `service`.
pub fn stored(otlp: otlp::Span, service: &str) -> Span {
    let trace_id = crate::id::from_otlp(&otlp.trace_id).unwrap_or_default();
    Span::new(trace_id, otlp, Arc::new(Resource::new(vec![kv("service.name", s(service))])), None)
}

fn resource_spans(attrs: Vec<KeyValue>, scope: &str, spans: Vec<otlp::Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(OtlpResource { attributes: attrs, ..Default::default() }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope { name: scope.into(), ..Default::default() }),
            spans,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

/// An export from two processes: an apiserver's Create with a failed ClusterIP allocation under
/// it (typed attributes, an event, a link), a span of another trace, and kube-proxy's sync.
pub fn request() -> ExportTraceServiceRequest {
    let mut create = otlp_span(TRACE, 1, Some(0x77), "netlab.apiserver.v1.ApiServer/Create", 0, 2_150);
    create.kind = SpanKind::Server as i32;
    create.attributes = vec![kv("rpc.method", s("Create"))];
    let mut allocate = otlp_span(TRACE, 2, Some(1), "allocate ClusterIP", 300, 180);
    allocate.attributes = vec![
        kv("netlab.cluster_ip", s("10.96.120.17")),
        kv("netlab.tries", any_value::Value::IntValue(3)),
        kv("netlab.static", any_value::Value::BoolValue(false)),
        kv("netlab.ratio", any_value::Value::DoubleValue(0.5)),
        kv(
            "netlab.bands",
            any_value::Value::ArrayValue(ArrayValue {
                values: vec![AnyValue { value: Some(s("static")) }, AnyValue { value: Some(s("dynamic")) }],
            }),
        ),
    ];
    allocate.status = Some(Status { message: "range is full".into(), code: StatusCode::Error as i32 });
    allocate.events = vec![span::Event {
        time_unix_nano: T0 + 400_000,
        name: "Retrying.".into(),
        attributes: vec![kv("netlab.next", s("10.96.120.18"))],
        ..Default::default()
    }];
    allocate.links = vec![span::Link {
        trace_id: OTHER.to_vec(),
        span_id: vec![0, 0, 0, 0, 0, 0, 0, 9],
        ..Default::default()
    }];
    let mut sync = otlp_span(TRACE, 3, Some(1), "kube-proxy sync", 5_000, 1_250);
    sync.status = Some(Status { message: String::new(), code: StatusCode::Ok as i32 });
    ExportTraceServiceRequest {
        resource_spans: vec![
            resource_spans(
                vec![kv("service.name", s("kube-apiserver")), kv("service.version", s("0.1.0"))],
                "kube-apiserver",
                vec![create, allocate, otlp_span(OTHER, 4, None, "elsewhere", 0, 1)],
            ),
            resource_spans(
                vec![kv("service.name", s("kube-proxy")), kv("k8s.node.name", s("node-1"))],
                "kube-proxy",
                vec![sync],
            ),
        ],
    }
}
