//! The trace store as its own process (`netlab-traces`, what `netlab up` starts when no Jaeger is
//! given): the real apiserver exports to it over OTLP, and the real `netlab trace` and Jaeger's
//! search API read the spans back; over the wire it keeps to `--max-spans`.

use std::{
    io::{Read as _, Write as _},
    process::Command,
    time::{Duration, Instant},
};

use netlab_e2e::{Apiserver, Component, bin, block_on, free_port, netlab};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, trace_service_client::TraceServiceClient},
    common::v1::{AnyValue, KeyValue, any_value},
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span},
};
use serde_json::Value;

const ORDERS: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: orders
spec:
  selector:
    app: orders
  ports:
  - port: 80
";

/// A running `netlab-traces`, killed when dropped.
struct Store {
    _process: Component,
    otlp: String,
    query: String,
}

/// Starts `netlab-traces` on free ports and waits until `/readyz` answers.
fn start_store(extra: &[&str]) -> Store {
    // Another test may take a free port between asking and binding: try a few.
    for _ in 0..5 {
        let (otlp, query) = (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
        let mut args = vec!["--otlp-bind", &otlp, "--http-bind", &query];
        args.extend(extra);
        let mut process = Component::start("netlab-traces", &args);
        let deadline = Instant::now() + Duration::from_secs(20);
        while process.try_wait().is_none() && Instant::now() < deadline {
            if std::net::TcpStream::connect(&query).is_ok() && http_get(&query, "/readyz").0 == 200 {
                return Store { _process: process, otlp: format!("http://{otlp}"), query };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("netlab-traces did not start on {otlp}/{query}: {:?}", process.try_wait());
    }
    panic!("netlab-traces did not start on five pairs of ports");
}

/// A plain HTTP/1.1 GET: (status code, body).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let Ok(mut conn) = std::net::TcpStream::connect(addr) else { return (0, String::new()) };
    write!(conn, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let code = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, body.to_string())
}

fn get_json(addr: &str, path: &str) -> Value {
    let (code, body) = http_get(addr, path);
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn apiserver_spans_read_back_through_netlab_trace_and_search() {
    let store = start_store(&[]);
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(&dir.path().join("apiserver"), &["--otlp-endpoint", &store.otlp]);
    let data_dir = dir.path().join("cli");
    let data = data_dir.to_str().unwrap();
    netlab(&api.url(), &["--data-dir", data, "apply", "-f", "-"], Some(ORDERS)).ok();
    let last = std::fs::read_to_string(data_dir.join("last-trace")).unwrap().trim().to_string();

    // `netlab trace last` against the store. The SDK exports in batches (every 5 s by default):
    // poll generously, assert nothing on time.
    let trace = |args: &[&str]| {
        Command::new(bin("netlab"))
            .args(["--data-dir", data, "--jaeger-url", &format!("http://{}", store.query), "trace"])
            .args(args)
            .env_remove("NO_COLOR")
            .output()
            .expect("run netlab trace")
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let tree = loop {
        let run = trace(&["last"]);
        let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
        if run.status.success() && stdout.contains("kube-apiserver  allocate ClusterIP  ") {
            break stdout;
        }
        assert!(
            Instant::now() < deadline,
            "netlab trace last never showed the allocation:\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(tree.starts_with(&format!("Trace {last}  ")), "{tree}");
    assert!(tree.contains("netlab.service_cidr=10.96.0.0/12"), "{tree}");
    let json: Value = serde_json::from_slice(&trace(&["last", "-o", "json"]).stdout).expect("JSON");
    assert_eq!(json["data"][0]["traceID"], last.as_str());

    // Jaeger's search finds the same trace by service, operation and tag.
    let tags = urlencode(r#"{"netlab.service":"default/orders"}"#);
    let found = get_json(
        &store.query,
        &format!("/api/traces?service=kube-apiserver&operation=allocate%20ClusterIP&tags={tags}&limit=5"),
    );
    let ids: Vec<&str> =
        found["data"].as_array().unwrap().iter().map(|t| t["traceID"].as_str().unwrap()).collect();
    assert_eq!(ids, [last.as_str()], "{found}");
    let none = get_json(
        &store.query,
        &format!(
            "/api/traces?service=kube-apiserver&tags={}",
            urlencode(r#"{"netlab.service":"default/nope"}"#)
        ),
    );
    assert_eq!(none["data"], serde_json::json!([]));

    let services = get_json(&store.query, "/api/services");
    assert!(services["data"].as_array().unwrap().iter().any(|s| s == "kube-apiserver"), "{services}");
    let operations = get_json(&store.query, "/api/services/kube-apiserver/operations");
    assert!(operations["data"].as_array().unwrap().iter().any(|o| o == "allocate ClusterIP"), "{operations}");
    let (code, body) = http_get(&store.query, "/api/traces");
    assert_eq!(code, 400);
    assert!(body.contains("parameter 'service' is required"), "{body}");
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

/// One export: `spans` spans of trace `[t; 16]` from service `svc`, started now.
fn export_request(t: u8, spans: u8) -> ExportTraceServiceRequest {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let spans = (1..=spans)
        .map(|i| Span {
            trace_id: vec![t; 16],
            span_id: vec![0, 0, 0, 0, 0, 0, t, i],
            name: format!("op-{i}"),
            start_time_unix_nano: now,
            end_time_unix_nano: now + 1_000,
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![kv("service.name", "svc")], ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            schema_url: String::new(),
        }],
    }
}

#[test]
fn max_spans_bounds_the_store_over_otlp() {
    let store = start_store(&["--max-spans", "10"]);
    let rejected = block_on(async {
        let mut client = TraceServiceClient::connect(store.otlp.clone()).await.expect("connect");
        for t in 1..=5 {
            let answer = client.export(export_request(t, 3)).await.expect("export").into_inner();
            assert_eq!(answer.partial_success, None, "trace {t} fits");
        }
        // One trace larger than the whole store: the others go, its first 10 spans stay.
        client.export(export_request(6, 12)).await.expect("export").into_inner().partial_success
    });
    assert_eq!(rejected.map(|p| p.rejected_spans), Some(2));

    let hex = |t: u8| format!("{t:02x}").repeat(16);
    let found = get_json(&store.query, "/api/traces?service=svc&limit=20");
    let ids: Vec<&str> =
        found["data"].as_array().unwrap().iter().map(|t| t["traceID"].as_str().unwrap()).collect();
    assert_eq!(ids, [hex(6)], "only the last trace is left: {found}");
    assert_eq!(found["data"][0]["spans"].as_array().unwrap().len(), 10);
    let (code, _) = http_get(&store.query, &format!("/api/traces/{}", hex(5)));
    assert_eq!(code, 404, "evicted whole");
}
