//! The collector over its real sockets: OTLP in, Jaeger's JSON out.

use std::io::{Read as _, Write as _};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, trace_service_client::TraceServiceClient},
    common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value},
    resource::v1::Resource,
    trace::v1::{
        ResourceSpans, ScopeSpans, Span, Status, span, span::SpanKind, status::StatusCode as OtlpStatus,
    },
};
use serde_json::{Value, json};

use super::*;

const TRACE: [u8; 16] =
    [0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36];
const TRACE_HEX: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const OTHER: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd];
/// 2026-01-01T00:00:00Z in ns.
const T0: u64 = 1_767_225_600_000_000_000;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn otlp_span(trace: [u8; 16], id: u8, parent: Option<u8>, name: &str, start_us: u64, dur_us: u64) -> Span {
    Span {
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

fn resource_spans(attrs: Vec<KeyValue>, scope: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource { attributes: attrs, ..Default::default() }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope { name: scope.into(), ..Default::default() }),
            spans,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

fn export(endpoint: String, request: ExportTraceServiceRequest) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut client = TraceServiceClient::connect(endpoint).await.unwrap();
        client.export(request).await.unwrap();
    });
}

/// A plain HTTP/1.1 GET: (status code, body).
fn http_get(base: &str, path: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(conn, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_string())
}

fn request() -> ExportTraceServiceRequest {
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
    allocate.status = Some(Status { message: "range is full".into(), code: OtlpStatus::Error as i32 });
    allocate.events =
        vec![span::Event { time_unix_nano: T0 + 400_000, name: "Retrying.".into(), ..Default::default() }];
    allocate.links = vec![span::Link {
        trace_id: OTHER.to_vec(),
        span_id: vec![0, 0, 0, 0, 0, 0, 0, 9],
        ..Default::default()
    }];
    let mut sync = otlp_span(TRACE, 3, Some(1), "kube-proxy sync", 5_000, 1_250);
    sync.status = Some(Status { message: String::new(), code: OtlpStatus::Ok as i32 });
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

#[test]
fn records_spans_with_their_service() {
    let collector = Collector::start();
    export(collector.otlp_endpoint(), request());
    let spans = collector.spans();
    assert_eq!(spans.len(), 4);

    let allocate = collector.wait_for(|s| s.name == "allocate ClusterIP", Duration::from_secs(5)).unwrap();
    assert_eq!(allocate.trace_id, TRACE_HEX);
    assert_eq!(allocate.span_id, "0000000000000002");
    assert_eq!(allocate.parent_span_id.as_deref(), Some("0000000000000001"));
    assert_eq!(allocate.service, "kube-apiserver");
    assert_eq!(allocate.kind, "internal");
    assert_eq!(allocate.error.as_deref(), Some("range is full"));
    assert_eq!(
        allocate.links,
        [("0000000000000000000000000000abcd".to_string(), "0000000000000009".to_string())]
    );
    assert_eq!(allocate.end.duration_since(allocate.start).unwrap(), Duration::from_micros(180));
    let attrs: Vec<(&str, &str)> =
        allocate.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        attrs,
        [
            ("netlab.bands", "[\"static\",\"dynamic\"]"),
            ("netlab.cluster_ip", "10.96.120.17"),
            ("netlab.ratio", "0.5"),
            ("netlab.static", "false"),
            ("netlab.tries", "3"),
        ]
    );
    assert_eq!(allocate.resource["service.version"], "0.1.0");

    let names: Vec<String> = collector.trace(&TRACE_HEX.to_uppercase()).into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["netlab.apiserver.v1.ApiServer/Create", "allocate ClusterIP", "kube-proxy sync"]);
    assert_eq!(collector.find(|s| s.service == "kube-proxy").unwrap().resource["k8s.node.name"], "node-1");
    assert!(collector.wait_for(|s| s.name == "never", Duration::from_millis(100)).is_none());
}

#[test]
fn answers_jaegers_query_api() {
    // The mapping and every route are netlab-traces' own tests; this checks the collector's
    // sockets reach them.
    let collector = Collector::start();
    export(collector.otlp_endpoint(), request());
    let (code, body) = http_get(&collector.jaeger_url(), &format!("/api/traces/{TRACE_HEX}"));
    assert_eq!(code, 200, "{body}");
    let got: Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = got["data"][0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["operationName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["netlab.apiserver.v1.ApiServer/Create", "allocate ClusterIP", "kube-proxy sync"]);
    assert_eq!(got["data"][0]["processes"]["p2"]["serviceName"], "kube-proxy");

    let (code, body) = http_get(&collector.jaeger_url(), "/api/traces/0af7651916cd43dd8448eb211c80319c");
    assert_eq!(code, 404);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"data": null, "total": 0, "limit": 0, "offset": 0, "errors": [{"code": 404, "msg": "trace not found"}]})
    );
}

#[test]
fn works_inside_a_tokio_runtime_and_stops_on_drop() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let endpoint = rt.block_on(async {
        let collector = Collector::start();
        let endpoint = collector.otlp_endpoint();
        drop(collector);
        endpoint
    });
    let addr = endpoint.trim_start_matches("http://");
    assert!(std::net::TcpStream::connect(addr).is_err(), "nothing listens on {addr} once dropped");
}
