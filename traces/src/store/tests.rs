//! Bounded memory, whole-trace eviction, and the indexes a search and the listings use.

use super::*;
use crate::fixture::{T0, kv, otlp_span, s, span, stored, trace};

fn query(service: &str) -> Query {
    Query { service: service.into(), start_min: 0, start_max: u64::MAX, limit: 100, ..Default::default() }
}

fn ids(found: &[Vec<Arc<Span>>]) -> Vec<u8> {
    found.iter().map(|spans| spans[0].trace_id[0]).collect()
}

#[test]
fn eviction_keeps_the_cap_and_drops_whole_oldest_traces() {
    let store = Store::new(10);
    // 20 traces of 3 spans each, one export per trace: never more than 10 spans held.
    for t in 1..=20u8 {
        let inserted = store.insert((1..=3).map(|i| span("svc", trace(t), i, "op")));
        assert_eq!(inserted.accepted, 3);
        assert_eq!(inserted.rejected, 0);
        let stats = store.stats();
        assert!(stats.spans <= 10, "{stats:?}");
    }
    let stats = store.stats();
    assert_eq!((stats.spans, stats.traces), (9, 3), "three whole traces fit in 10 spans");
    assert_eq!(stats.evicted_traces, 17);
    // The newest three, each complete.
    assert!(store.trace(&trace(17)).is_none());
    for t in 18..=20 {
        assert_eq!(store.trace(&trace(t)).unwrap().len(), 3, "trace {t} is whole");
    }
    assert_eq!(ids(&store.find(&query("svc"))), [20, 19, 18]);
}

#[test]
fn a_growing_trace_is_not_evicted_for_itself() {
    let store = Store::new(4);
    store.insert([span("svc", trace(1), 1, "op"), span("svc", trace(2), 1, "op")]);
    // Trace 2 grows: trace 1 (older) goes, then trace 2 alone fills the store, and the rest of it
    // is refused rather than dropping its own beginning.
    let inserted = store.insert((2..=6).map(|i| span("svc", trace(2), i, "op")));
    assert_eq!(inserted, Inserted { accepted: 3, rejected: 2, evicted_traces: 1 });
    let kept: Vec<u8> = store.trace(&trace(2)).unwrap().iter().map(|s| s.otlp().span_id[7]).collect();
    assert_eq!(kept, [1, 2, 3, 4]);
    assert_eq!(store.stats().rejected_spans, 2);
    // A new trace still gets in, by evicting the full one.
    assert_eq!(store.insert([span("svc", trace(3), 1, "op")]).accepted, 1);
    assert!(store.trace(&trace(2)).is_none());
}

#[test]
fn search_by_service_operation_tags_and_limit_newest_first() {
    let store = Store::new(100);
    let mut raw = otlp_span(trace(3), 2, None, "allocate ClusterIP", 2, 10);
    raw.attributes = vec![kv("netlab.cluster_ip", s("10.96.0.10"))];
    let tagged = stored(raw, "kube-apiserver");
    store.insert([
        span("kube-apiserver", trace(1), 1, "Create"),
        span("kube-proxy", trace(1), 2, "sync"),
        span("kube-apiserver", trace(2), 1, "Create"),
        span("kube-apiserver", trace(3), 1, "Create"),
        tagged,
        span("coredns", trace(4), 1, "dns query"),
    ]);
    assert_eq!(ids(&store.find(&query("kube-apiserver"))), [3, 2, 1]);
    assert_eq!(ids(&store.find(&query("kube-proxy"))), [1]);
    assert!(store.find(&query("nobody")).is_empty());

    let op = |name: &str| Query { operation: Some(name.into()), ..query("kube-apiserver") };
    assert_eq!(ids(&store.find(&op("allocate ClusterIP"))), [3]);
    assert!(store.find(&op("sync")).is_empty(), "sync is kube-proxy's, not the apiserver's");

    let mut q = query("kube-apiserver");
    q.tags.insert("netlab.cluster_ip".into(), "10.96.0.10".into());
    assert_eq!(ids(&store.find(&q)), [3]);
    q.tags.insert("netlab.cluster_ip".into(), "10.96.0.11".into());
    assert!(store.find(&q).is_empty());

    let limited = Query { limit: 2, ..query("kube-apiserver") };
    assert_eq!(ids(&store.find(&limited)), [3, 2]);
    // A found trace comes whole, other services' spans included.
    let whole = store.find(&Query { limit: 1, ..query("kube-proxy") });
    assert_eq!(whole[0].len(), 2);

    let late = Query { start_min: T0 + 2_000, ..query("kube-apiserver") };
    assert_eq!(ids(&store.find(&late)), [3], "only trace 3's second span starts at or after 2 ms");
}

#[test]
fn ids_are_the_key_whatever_their_text() {
    let store = Store::new(10);
    store.insert([span("svc", crate::fixture::TRACE, 1, "op")]);
    let lower = crate::id::parse_trace_id(crate::fixture::TRACE_HEX).unwrap();
    let upper = crate::id::parse_trace_id(&crate::fixture::TRACE_HEX.to_uppercase()).unwrap();
    assert_eq!(store.trace(&lower).unwrap().len(), 1);
    assert_eq!(store.trace(&upper).unwrap().len(), 1);
    let mut short = [0u8; 16];
    short[15] = 0xab;
    store.insert([span("svc", short, 1, "op")]);
    assert!(store.trace(&crate::id::parse_trace_id("AB").unwrap()).is_some(), "padded with zeros");
}

#[test]
fn services_and_operations_follow_evictions() {
    let store = Store::new(3);
    let mut raw = otlp_span(trace(1), 2, None, "pull", 2, 10);
    raw.kind = opentelemetry_proto::tonic::trace::v1::span::SpanKind::Client as i32;
    let client = stored(raw, "kubelet");
    store.insert([span("kubelet", trace(1), 1, "pull"), client, span("kube-proxy", trace(1), 3, "sync")]);
    assert_eq!(store.services(), ["kube-proxy", "kubelet"]);
    assert_eq!(
        store.operations("kubelet", None),
        [("pull".to_string(), "client"), ("pull".to_string(), "internal")]
    );
    assert_eq!(store.operations("kubelet", Some("client")), [("pull".to_string(), "client")]);
    assert!(store.operations("nobody", None).is_empty());

    // Trace 1 goes to make room: its services and operations with it.
    store.insert([span("coredns", trace(2), 1, "dns query")]);
    assert_eq!(store.services(), ["coredns"]);
    assert!(store.operations("kubelet", None).is_empty());
    assert!(store.find(&query("kubelet")).is_empty());
}

#[test]
fn spans_in_arrival_order() {
    let store = Store::new(10);
    store.insert([span("a", trace(2), 1, "x"), span("a", trace(1), 1, "y"), span("a", trace(2), 2, "z")]);
    let names: Vec<String> = store.spans().iter().map(|s| s.name().to_string()).collect();
    assert_eq!(names, ["x", "y", "z"]);
    let seqs: Vec<u64> = store.spans().iter().map(|s| s.seq).collect();
    assert_eq!(seqs, [0, 1, 2]);
}
