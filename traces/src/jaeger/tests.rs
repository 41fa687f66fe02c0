//! The mapping against the JSON Jaeger's translator and UI model give for the same OTLP.

use opentelemetry_proto::tonic::trace::v1::span::Link;
use serde_json::json;

use super::*;
use crate::{
    fixture::{OTHER, T0, TRACE, TRACE_HEX, kv, otlp_span, request, s, stored},
    receiver::Receiver,
    store::Store,
};

fn stored_trace(id: &[u8; 16]) -> Value {
    let store = Store::new(100);
    assert_eq!(Receiver::new(store.clone()).receive(request()), None);
    let spans = store.trace(id).unwrap();
    let spans: Vec<&Span> = spans.iter().map(AsRef::as_ref).collect();
    serde_json::to_value(trace(&spans)).unwrap()
}

#[test]
fn a_trace_as_jaeger_shows_it() {
    let str_tag = |k: &str, v: &str| json!({"key": k, "type": "string", "value": v});
    let refs = |parent: &str| json!([{"refType": "CHILD_OF", "traceID": TRACE_HEX, "spanID": parent}]);
    let expected = json!({
        "traceID": TRACE_HEX,
        "spans": [
            {
                "traceID": TRACE_HEX, "spanID": "0000000000000001", "operationName": "netlab.apiserver.v1.ApiServer/Create",
                "references": refs("0000000000000077"),
                "startTime": 1_767_225_600_000_000_u64, "duration": 2_150,
                "tags": [str_tag("otel.scope.name", "kube-apiserver"), str_tag("rpc.method", "Create"), str_tag("span.kind", "server")],
                "logs": [], "processID": "p1", "warnings": null
            },
            {
                "traceID": TRACE_HEX, "spanID": "0000000000000002", "operationName": "allocate ClusterIP",
                "references": [
                    {"refType": "CHILD_OF", "traceID": TRACE_HEX, "spanID": "0000000000000001"},
                    // The high half is zero: Jaeger prints 16 digits.
                    {"refType": "FOLLOWS_FROM", "traceID": "000000000000abcd", "spanID": "0000000000000009"}
                ],
                "startTime": 1_767_225_600_000_300_u64, "duration": 180,
                "tags": [
                    str_tag("otel.scope.name", "kube-apiserver"),
                    str_tag("netlab.cluster_ip", "10.96.120.17"),
                    {"key": "netlab.tries", "type": "int64", "value": 3},
                    {"key": "netlab.static", "type": "bool", "value": false},
                    {"key": "netlab.ratio", "type": "float64", "value": 0.5},
                    str_tag("netlab.bands", "[\"static\",\"dynamic\"]"),
                    str_tag("span.kind", "internal"),
                    str_tag("otel.status_code", "ERROR"),
                    {"key": "error", "type": "bool", "value": true},
                    str_tag("otel.status_description", "range is full")
                ],
                "logs": [{"timestamp": 1_767_225_600_000_400_u64, "fields": [str_tag("event", "Retrying."), str_tag("netlab.next", "10.96.120.18")]}],
                "processID": "p1", "warnings": null
            },
            {
                "traceID": TRACE_HEX, "spanID": "0000000000000003", "operationName": "kube-proxy sync",
                "references": refs("0000000000000001"),
                "startTime": 1_767_225_600_005_000_u64, "duration": 1_250,
                "tags": [str_tag("otel.scope.name", "kube-proxy"), str_tag("span.kind", "internal"), str_tag("otel.status_code", "OK")],
                "logs": [], "processID": "p2", "warnings": null
            }
        ],
        "processes": {
            "p1": {"serviceName": "kube-apiserver", "tags": [str_tag("service.version", "0.1.0")]},
            "p2": {"serviceName": "kube-proxy", "tags": [str_tag("k8s.node.name", "node-1")]}
        },
        "warnings": null
    });
    assert_eq!(stored_trace(&TRACE), expected);
    assert_eq!(stored_trace(&OTHER)["traceID"], "000000000000abcd");
}

#[test]
fn translator_corner_cases() {
    let mut raw = otlp_span(TRACE, 5, Some(1), "op", 0, 1);
    raw.kind = 0; // unspecified: no span.kind tag
    raw.trace_state = "k=v".into();
    raw.attributes = vec![kv("big", any_value::Value::IntValue(1 << 60))];
    raw.links = vec![
        // A link to the parent retypes the parent's reference.
        Link {
            trace_id: TRACE.to_vec(),
            span_id: vec![0, 0, 0, 0, 0, 0, 0, 1],
            attributes: vec![kv("opentracing.ref_type", s("follows_from"))],
            ..Default::default()
        },
        Link {
            trace_id: TRACE.to_vec(),
            span_id: vec![0, 0, 0, 0, 0, 0, 0, 2],
            attributes: vec![kv("opentracing.ref_type", s("child_of"))],
            ..Default::default()
        },
    ];
    raw.events = vec![opentelemetry_proto::tonic::trace::v1::span::Event {
        time_unix_nano: T0,
        name: "ignored".into(),
        attributes: vec![kv("event", s("named by attribute"))],
        ..Default::default()
    }];
    let mut span = stored(raw, "svc");
    let got = serde_json::to_value(jaeger_span(&span, "p1".into())).unwrap();
    assert_eq!(
        got["references"],
        json!([
            {"refType": "FOLLOWS_FROM", "traceID": TRACE_HEX, "spanID": "0000000000000001"},
            {"refType": "CHILD_OF", "traceID": TRACE_HEX, "spanID": "0000000000000002"}
        ])
    );
    assert_eq!(
        got["tags"],
        json!([
            {"key": "big", "type": "int64", "value": "1152921504606846976"},
            {"key": "w3c.tracestate", "type": "string", "value": "k=v"}
        ])
    );
    assert_eq!(
        got["logs"][0]["fields"],
        json!([{"key": "event", "type": "string", "value": "named by attribute"}])
    );

    span.resource = std::sync::Arc::new(crate::span::Resource::new(Vec::new()));
    assert_eq!(process(&span).service_name, "OTLPResourceNoServiceName");
}

#[test]
fn view_tags_cover_span_process_and_logs() {
    let store = Store::new(100);
    Receiver::new(store.clone()).receive(request());
    let spans = store.trace(&TRACE).unwrap();
    let allocate = spans.iter().find(|s| s.name() == "allocate ClusterIP").unwrap();
    let texts: Vec<(String, String)> =
        view_tags(allocate).iter().map(|kv| (kv.key.clone(), kv.text().into_owned())).collect();
    for want in [
        ("netlab.tries", "3"),
        ("netlab.static", "false"),
        ("netlab.ratio", "0.5"),
        ("error", "true"),
        ("service.name", "kube-apiserver"),
        ("service.version", "0.1.0"),
        ("event", "Retrying."),
        ("netlab.next", "10.96.120.18"),
    ] {
        assert!(texts.iter().any(|(k, v)| (k.as_str(), v.as_str()) == want), "{want:?} in {texts:?}");
    }
}

#[test]
fn values_as_text() {
    use opentelemetry_proto::tonic::common::v1::KeyValueList;
    assert_eq!(value_text(&s("plain")), "plain");
    assert_eq!(value_text(&any_value::Value::IntValue(-4)), "-4");
    assert_eq!(value_text(&any_value::Value::BytesValue(vec![1, 2])), "\"AQI=\"");
    let map = any_value::Value::KvlistValue(KeyValueList { values: vec![kv("a", s("b"))] });
    assert_eq!(value_text(&map), "{\"a\":\"b\"}");
    assert_eq!(text(None), "");
}
