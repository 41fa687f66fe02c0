//! The collector over its real sockets: OTLP in, Jaeger's JSON out.

use std::io::{Read as _, Write as _};

use netlab_traces::fixture::{TRACE_HEX, request};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, trace_service_client::TraceServiceClient,
};
use serde_json::{Value, json};

use super::*;

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
