//! Jaeger's parameters and messages, and what a span must show to match.

use opentelemetry_proto::tonic::trace::v1::{Status, status::StatusCode};

use super::*;
use crate::fixture::{T0, TRACE, kv, otlp_span, s, stored};

const NOW: u64 = T0 + 3_600_000_000_000;

fn find(q: &str) -> Query {
    match parse(q, NOW) {
        Ok(Request::Find(query)) => query,
        other => panic!("{q}: {other:?}"),
    }
}

fn error(q: &str) -> String {
    parse(q, NOW).unwrap_err().to_string()
}

#[test]
fn defaults() {
    let q = find("service=kube-apiserver");
    assert_eq!(q.service, "kube-apiserver");
    assert_eq!(q.operation, None);
    assert_eq!(q.limit, DEFAULT_LIMIT);
    assert_eq!(q.start_max, NOW);
    assert_eq!(q.start_min, NOW - 48 * 3_600_000_000_000);
    assert_eq!((q.duration_min, q.duration_max), (None, None));
    // `lookback` is the UI's; empty values count as absent.
    assert_eq!(
        find("service=a&lookback=1h&operation=&limit="),
        Query { service: "a".into(), ..find("service=a") }
    );
}

#[test]
fn every_parameter() {
    let tags = r#"{"netlab.cluster_ip":"10.96.0.10","error":"true"}"#;
    let q = find(&format!(
        "service=kube-apiserver&operation=allocate+ClusterIP&tags={}&tag=a:b:c&start=1000&end=2000&minDuration=1.5ms&maxDuration=1s&limit=20",
        form_urlencoded::byte_serialize(tags.as_bytes()).collect::<String>()
    ));
    assert_eq!(q.operation.as_deref(), Some("allocate ClusterIP"));
    assert_eq!(
        q.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(),
        [("a", "b:c"), ("error", "true"), ("netlab.cluster_ip", "10.96.0.10")]
    );
    assert_eq!((q.start_min, q.start_max), (1_000_000, 2_000_000));
    assert_eq!(q.duration_min, Some(Duration::from_micros(1_500)));
    assert_eq!(q.duration_max, Some(Duration::from_secs(1)));
    assert_eq!(q.limit, 20);
}

#[test]
fn trace_ids_need_no_service() {
    let Ok(Request::Ids(ids)) = parse("traceID=abcd&traceID=4BF92F3577B34DA6A3CE929D0E0E4736", NOW) else {
        panic!("ids")
    };
    assert_eq!(ids[1], TRACE);
    assert_eq!(ids[0][14..], [0xab, 0xcd]);
}

#[test]
fn jaegers_errors() {
    assert_eq!(error(""), "parameter 'service' is required");
    assert_eq!(error("operation=x"), "parameter 'service' is required");
    assert_eq!(
        error("service=a&start=x"),
        "unable to parse param 'start': strconv.ParseInt: parsing \"x\": invalid syntax"
    );
    assert_eq!(
        error("service=a&end=99999999999999999999"),
        "unable to parse param 'end': strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
    );
    assert_eq!(error("service=a&limit=ten"), "strconv.ParseInt: parsing \"ten\": invalid syntax");
    assert_eq!(
        error("service=a&limit=3000000000"),
        "strconv.ParseInt: parsing \"3000000000\": value out of range"
    );
    assert_eq!(error("service=a&limit=0"), "search depth must be greater than 0 and less than max traces");
    assert_eq!(
        error("service=a&tag=nocolon"),
        "malformed 'tag' parameter, expecting key:value, received: nocolon"
    );
    assert!(
        error("service=a&tags=%7B%22a%22%3A1%7D")
            .starts_with("malformed 'tags' parameter, cannot unmarshal JSON: ")
    );
    assert_eq!(
        error("service=a&minDuration=fast"),
        "unable to parse param 'minDuration': time: invalid duration \"fast\""
    );
    assert_eq!(
        error("service=a&minDuration=2s&maxDuration=1s"),
        "'maxDuration' should be greater than 'minDuration'"
    );
    assert_eq!(
        error("traceID=xyz"),
        "cannot parse traceID param: strconv.ParseUint: parsing \"xyz\": invalid syntax"
    );
}

#[test]
fn one_span_must_pass_everything() {
    let mut raw = otlp_span(TRACE, 1, None, "allocate ClusterIP", 100, 200);
    raw.attributes = vec![kv("netlab.cluster_ip", s("10.96.0.10")), kv("netlab.tries", any(3))];
    raw.status = Some(Status { code: StatusCode::Error as i32, message: "full".into() });
    let span = stored(raw, "kube-apiserver");
    let base = Query {
        service: "kube-apiserver".into(),
        start_min: T0,
        start_max: NOW,
        limit: 1,
        ..Default::default()
    };
    let with = |f: &dyn Fn(&mut Query)| {
        let mut q = base.clone();
        f(&mut q);
        q.matches(&span)
    };
    assert!(with(&|_| {}));
    assert!(!with(&|q| q.service = "coredns".into()));
    assert!(with(&|q| q.operation = Some("allocate ClusterIP".into())));
    assert!(!with(&|q| q.operation = Some("allocate".into())));
    // Start: within [start_min, start_max], both ends included.
    assert!(with(&|q| q.start_min = T0 + 100_000));
    assert!(!with(&|q| q.start_min = T0 + 100_001));
    assert!(!with(&|q| q.start_max = T0 + 99_999));
    // Duration: 200 µs.
    assert!(with(&|q| q.duration_min = Some(Duration::from_micros(200))));
    assert!(!with(&|q| q.duration_min = Some(Duration::from_micros(201))));
    assert!(!with(&|q| q.duration_max = Some(Duration::from_micros(199))));
    // Tags: attributes as text, derived tags, the process; every one must match.
    let tags = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert!(with(&|q| q.tags = tags(&[("netlab.cluster_ip", "10.96.0.10"), ("netlab.tries", "3")])));
    assert!(with(&|q| q.tags = tags(&[("error", "true"), ("otel.status_description", "full")])));
    assert!(with(&|q| q.tags = tags(&[("service.name", "kube-apiserver")])));
    assert!(!with(&|q| q.tags = tags(&[("netlab.cluster_ip", "10.96.0.10"), ("netlab.tries", "4")])));
    assert!(!with(&|q| q.tags = tags(&[("missing", "")])));
}

fn any(i: i64) -> opentelemetry_proto::tonic::common::v1::any_value::Value {
    opentelemetry_proto::tonic::common::v1::any_value::Value::IntValue(i)
}
