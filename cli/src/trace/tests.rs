//! `netlab trace`: the tree from Jaeger's documented JSON, orphans, colour, and Jaeger's errors.

use serde_json::json;

use super::*;

/// An apply of Service `orders`, as Jaeger's `GET /api/traces/{id}` returns it.
const FIXTURE: &str = include_str!("jaeger-trace.json");

fn fixture() -> Trace {
    parse(FIXTURE.as_bytes()).unwrap().expect("a trace")
}

#[test]
fn renders_the_fixture_as_a_tree() {
    let expected = "\
Trace 4bf92f3577b34da6a3ce929d0e0e4736  7 spans  kube-apiserver, kube-controller-manager, kube-proxy  1.2s
kube-apiserver  netlab.apiserver.v1.ApiServer/Create  2.15ms  rpc.system=grpc rpc.service=netlab.apiserver.v1.ApiServer rpc.method=Create
├─ kube-apiserver  allocate ClusterIP  180µs  netlab.service_cidr=10.96.0.0/12 netlab.service=default/orders netlab.cluster_ip=10.96.120.17 netlab.band=dynamic
│     · Allocated.
├─ kube-controller-manager  sync EndpointSlice  1.03ms  k8s.namespace.name=default netlab.service=default/orders error=true otel.status_description=\"Operation cannot be fulfilled on endpointslices.discovery.k8s.io \\\"orders-7xk2p\\\": the object has been modified; please apply your changes to the latest version and try again\"
├─ kube-controller-manager  sync EndpointSlice  640µs  k8s.namespace.name=default netlab.service=default/orders netlab.endpoints=2
├─ kube-proxy  kube-proxy sync  1.2s  netlab.services_changed=1 netlab.rules_written=12 k8s.node.name=node-2
│  └─ kube-proxy  iptables-restore  850µs  netlab.table=nat netlab.rules=12 netlab.noflush=true k8s.node.name=node-2
└─ kube-proxy  kube-proxy sync  1.25ms  netlab.services_changed=1 netlab.rules_written=12 k8s.node.name=node-1
";
    assert_eq!(render(&fixture(), false), expected);
}

#[test]
fn colour_paints_only_error_spans_red() {
    let text = render(&fixture(), true);
    let red: Vec<&str> = text.lines().filter(|l| l.contains(RED)).collect();
    assert_eq!(red.len(), 1, "{text}");
    assert!(
        red[0].starts_with("├─ \x1b[31mkube-controller-manager  sync EndpointSlice  1.03ms"),
        "{}",
        red[0]
    );
    assert!(red[0].ends_with("try again\"\x1b[0m"), "{}", red[0]);
    assert_eq!(text.replace(RED, "").replace(RESET, ""), render(&fixture(), false));
}

/// A span in Jaeger's JSON: `parent` as a CHILD_OF reference, service `svc-<process>`.
fn span(id: &str, refs: &[(&str, &str)], start: u64, duration: u64, process: &str) -> serde_json::Value {
    let references: Vec<_> = refs
        .iter()
        .map(|(kind, parent)| json!({"refType": kind, "traceID": "ab", "spanID": parent}))
        .collect();
    json!({
        "traceID": "ab", "spanID": id, "operationName": format!("op-{id}"), "references": references,
        "startTime": start, "duration": duration, "tags": [], "logs": [], "processID": process, "warnings": null
    })
}

fn trace_of(spans: Vec<serde_json::Value>) -> Trace {
    let body = json!({
        "data": [{"traceID": "ab", "spans": spans, "processes": {
            "p1": {"serviceName": "svc-a", "tags": []},
            "p2": {"serviceName": "svc-b", "tags": []}
        }, "warnings": null}],
        "total": 0, "limit": 0, "offset": 0, "errors": null
    });
    parse(body.to_string().as_bytes()).unwrap().expect("a trace")
}

#[test]
fn spans_whose_parent_is_missing_attach_at_the_root_in_start_order() {
    let trace = trace_of(vec![
        span("01", &[], 100, 50, "p1"),
        // Its parent (a kubelet that has not exported yet) is not in the trace.
        span("02", &[("CHILD_OF", "ff")], 90, 30, "p2"),
        span("03", &[("CHILD_OF", "02")], 95, 5, "p2"),
        span("04", &[("CHILD_OF", "01")], 120, 1, "p1"),
        span("05", &[("CHILD_OF", "01")], 110, 2, "p2"),
    ]);
    assert_eq!(
        render(&trace, false),
        "\
Trace ab  5 spans  svc-b, svc-a  60µs
svc-b  op-02  30µs
└─ svc-b  op-03  5µs
svc-a  op-01  50µs
├─ svc-b  op-05  2µs
└─ svc-a  op-04  1µs
"
    );
}

#[test]
fn links_within_the_trace_nest_and_cycles_end() {
    let trace = trace_of(vec![
        span("01", &[], 0, 1_000, "p1"),
        // A watch handler linked (FOLLOWS_FROM) to the write it reacts to, in the same trace.
        span("02", &[("FOLLOWS_FROM", "01")], 5_000, 10, "p2"),
        // A link to another trace's span and a missing parent: still shown, at the root.
        span("03", &[("FOLLOWS_FROM", "99"), ("CHILD_OF", "98")], 6_000, 10, "p2"),
        // Malformed: each the other's parent. Neither is lost, neither loops.
        span("04", &[("CHILD_OF", "05")], 7_000, 10, "p1"),
        span("05", &[("CHILD_OF", "04")], 7_001, 10, "p1"),
        // Its own parent.
        span("06", &[("CHILD_OF", "06")], 8_000, 10, "p1"),
    ]);
    assert_eq!(
        render(&trace, false),
        "\
Trace ab  6 spans  svc-a, svc-b  8.01ms
svc-a  op-01  1ms
└─ svc-b  op-02  10µs
svc-b  op-03  10µs
svc-a  op-06  10µs
svc-a  op-04  10µs
└─ svc-a  op-05  10µs
"
    );
}

#[test]
fn one_span_and_unknown_processes() {
    let body = json!({"data": [{"traceID": "cd", "spans": [
        {"traceID": "cd", "spanID": "01", "operationName": "dns query", "startTime": 5, "duration": 2_000_000,
         "tags": [{"key": "dns.question.name", "type": "string", "value": "orders.default.svc.cluster.local."},
                  {"key": "netlab.answers", "type": "string", "value": ""},
                  {"key": "netlab.cache_hit", "type": "bool", "value": false},
                  {"key": "netlab.ttl", "type": "float64", "value": 4.5}],
         "processID": "p9"}
    ], "processes": {}}], "errors": null});
    let trace = parse(body.to_string().as_bytes()).unwrap().unwrap();
    assert_eq!(
        render(&trace, false),
        "Trace cd  1 span  ?  2s\n?  dns query  2s  dns.question.name=orders.default.svc.cluster.local. netlab.answers=\"\" netlab.cache_hit=false netlab.ttl=4.5\n"
    );
}

#[test]
fn an_empty_answer_is_no_trace() {
    assert!(parse(br#"{"data":[],"total":0,"limit":0,"offset":0,"errors":null}"#).unwrap().is_none());
    assert!(parse(br#"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}"#).unwrap().is_none());
    assert!(parse(br#"{"data":[{"traceID":"ab","spans":[],"processes":{}}]}"#).unwrap().is_none());
    assert!(parse(b"<html>").is_err());
}

#[test]
fn durations_read_like_jaegers() {
    for (us, text) in [
        (0, "0µs"),
        (999, "999µs"),
        (1_000, "1ms"),
        (1_500, "1.5ms"),
        (2_150, "2.15ms"),
        (1_034, "1.03ms"),
        (1_009, "1ms"),
        (999_999, "999.99ms"),
        (1_000_000, "1s"),
        (1_208_000, "1.2s"),
        (61_250_000, "61.25s"),
    ] {
        assert_eq!(duration(us), text, "{us}µs");
    }
}

#[test]
fn jaegers_statuses_in_the_clis_words() {
    let url = "http://localhost:16686";
    assert_eq!(check_status(200, b"{}", url), Ok(true));
    let not_found =
        br#"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}"#;
    assert_eq!(check_status(404, not_found, url), Ok(false), "not there (yet) is an answer, not an error");
    let bad = br#"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":400,"msg":"TraceID cannot be longer than 32 hex characters: 4bf9x"}]}"#;
    assert_eq!(
        check_status(400, bad, url).unwrap_err().to_string(),
        "error: Jaeger at http://localhost:16686 answered 400 Bad Request: TraceID cannot be longer than 32 hex characters: 4bf9x"
    );
    assert_eq!(
        check_status(502, b"upstream connect error\nmore", url).unwrap_err().to_string(),
        "error: Jaeger at http://localhost:16686 answered 502 Bad Gateway: upstream connect error"
    );
}

#[test]
fn trace_ids_are_checked_before_asking() {
    assert_eq!(trace_id(" 4BF92F3577B34DA6A3CE929D0E0E4736 ").unwrap(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(trace_id("a2fb").unwrap(), "a2fb");
    for bad in ["", "lsat", "4bf92f3577b34da6a3ce929d0e0e47360", "../api"] {
        assert_eq!(
            trace_id(bad).unwrap_err().to_string(),
            format!("error: invalid trace id \"{bad}\": expected up to 32 hexadecimal digits, or last")
        );
    }
}

#[test]
fn the_last_trace_is_remembered_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("netlab");
    assert_eq!(
        last(&data).unwrap_err().to_string(),
        "error: no trace recorded yet: run netlab apply/exec first"
    );
    remember(&data, "4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    assert_eq!(
        std::fs::read_to_string(data.join("last-trace")).unwrap(),
        "4bf92f3577b34da6a3ce929d0e0e4736\n"
    );
    assert_eq!(last(&data).unwrap(), "4bf92f3577b34da6a3ce929d0e0e4736");

    let mut err = Vec::new();
    announce(&mut err, "http://127.0.0.1:16686/", &data, "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(
        String::from_utf8(err).unwrap(),
        "trace: 0af7651916cd43dd8448eb211c80319c  http://127.0.0.1:16686/trace/0af7651916cd43dd8448eb211c80319c\n"
    );
    assert_eq!(last(&data).unwrap(), "0af7651916cd43dd8448eb211c80319c");
}

#[test]
fn the_link_points_at_jaegers_trace_page() {
    let mut err = Vec::new();
    print_trace_link(&mut err, "http://localhost:16686", "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(
        String::from_utf8(err).unwrap(),
        "trace: 4bf92f3577b34da6a3ce929d0e0e4736  http://localhost:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736\n"
    );
}

// === over a socket ===

/// A one-shot HTTP server answering `status` with `body`; returns its URL and the request line.
async fn serve_once(status: &str, body: &'static str) -> (String, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let status = status.to_string();
    let task = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "request ended early");
            request.extend_from_slice(&buf[..n]);
        }
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        conn.write_all(body.as_bytes()).await.unwrap();
        String::from_utf8(request).unwrap().lines().next().unwrap_or_default().to_string()
    });
    (url, task)
}

fn args(id: &str, output: Option<&str>) -> TraceArgs {
    TraceArgs { id: id.into(), output: output.map(Into::into), no_color: None }
}

#[tokio::test]
async fn fetches_and_renders_the_last_trace() {
    let dir = tempfile::tempdir().unwrap();
    remember(dir.path(), "4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    let (url, request) = serve_once("200 OK", FIXTURE).await;
    let mut out = Vec::new();
    trace(&args("last", None), &format!("{url}/"), dir.path(), &mut out).await.unwrap();
    assert_eq!(request.await.unwrap(), "GET /api/traces/4bf92f3577b34da6a3ce929d0e0e4736 HTTP/1.1");
    // The test's stdout is no terminal: no colour.
    assert_eq!(String::from_utf8(out).unwrap(), render(&fixture(), false));
}

#[tokio::test]
async fn output_json_passes_jaegers_answer_through() {
    let (url, _request) = serve_once("200 OK", FIXTURE).await;
    let mut out = Vec::new();
    trace(&args("4bf92f3577b34da6a3ce929d0e0e4736", Some("json")), &url, Path::new("/nonexistent"), &mut out)
        .await
        .unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), FIXTURE);

    let err =
        trace(&args("ab", Some("yaml")), &url, Path::new("/nonexistent"), &mut Vec::new()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "error: unable to match a printer suitable for the output format \"yaml\", allowed formats are: json"
    );
}

#[tokio::test]
async fn a_trace_jaeger_does_not_have_is_not_found() {
    let (url, _request) = serve_once(
        "404 Not Found",
        r#"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}"#,
    )
    .await;
    let err = trace(&args("0af7651916cd43dd8448eb211c80319c", None), &url, Path::new("/x"), &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("error: trace 0af7651916cd43dd8448eb211c80319c not found in Jaeger at {url}")
    );

    // A 200 without spans (the search endpoint's shape) says the same.
    let (url, _request) =
        serve_once("200 OK", r#"{"data":[],"total":0,"limit":0,"offset":0,"errors":null}"#).await;
    let err = trace(&args("0af7", None), &url, Path::new("/x"), &mut Vec::new()).await.unwrap_err();
    assert_eq!(err.to_string(), format!("error: trace 0af7 not found in Jaeger at {url}"));
}

#[tokio::test]
async fn an_unreachable_jaeger_is_named() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let err = fetch(&url, "ab").await.unwrap_err().to_string();
    assert!(err.starts_with(&format!("error: cannot reach Jaeger at {url}: ")), "{err}");
    assert!(err.contains("Connection refused"), "{err}");

    let err = fetch("https://jaeger.example:16686", "ab").await.unwrap_err().to_string();
    assert_eq!(
        err,
        "error: cannot reach Jaeger at https://jaeger.example:16686: only http:// URLs are supported"
    );
}

/// Jaeger's own fixture of its UI/query JSON (`model/converter/json/fixtures/ui_01.json` in
/// jaegertracing/jaeger, Apache-2.0, copied unchanged), in the envelope `GET /api/traces/{id}`
/// wraps a trace in: events with and without a name, typed tags of every kind, a reference into
/// another trace, two spans sharing an id, span and trace warnings.
const JAEGER_UI_01: &str = include_str!("jaeger-ui_01.json");

#[test]
fn renders_jaegers_own_fixture() {
    let body = format!(r#"{{"data":[{JAEGER_UI_01}],"total":0,"limit":0,"offset":0,"errors":null}}"#);
    let trace = parse(body.as_bytes()).unwrap().expect("a trace");
    assert_eq!(trace.spans.len(), 5);
    let text = render(&trace, false);
    let expected = "\
Trace 0000000000000001  5 spans  service-x, service-y  5µs
warning: some trace warning
service-x  test-general-conversion  5µs
│  · some-event
│  · event  x=y
├─ service-y  some-operation  5µs
└─ service-y  reference-test  5µs
   │  · warning: some span warning
   └─ service-y  preserveParentID-test  4µs
         · warning: some span warning
service-x  some-operation  5µs  error=true
";
    assert_eq!(text, expected);
}
