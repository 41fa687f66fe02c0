//! The transaction's promises: a write that fails half-way leaves the allocators exactly as
//! they were, and an update gives back what the old object held only when committed.

use serde_json::{Value, json};

use super::*;

fn allocators() -> Allocators {
    // /28: 14 usable addresses, no static band; 16 NodePorts.
    Allocators::new("10.0.0.0/28".parse().unwrap(), (30000, 30015))
}

fn svc(spec: Value) -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

/// A NodePort Service asking for `ip` and, for its one port, `port`.
fn node_port(ip: &str, port: u16) -> Value {
    svc(
        json!({"type": "NodePort", "clusterIP": ip, "ports": [{"port": 80, "protocol": "TCP", "nodePort": port}]}),
    )
}

/// Allocators holding what `node_port("10.0.0.5", 30001)` asked for, and that Service.
fn with_node_port_service() -> (Allocators, Value) {
    let mut a = allocators();
    let mut old = node_port("10.0.0.5", 30001);
    a.allocate_service(&mut old, None, None).unwrap().commit();
    (a, old)
}

/// Which addresses and ports are allocated, to compare before and after.
fn held(a: &Allocators) -> (Vec<String>, Vec<u16>) {
    let ips = (1..=14).map(|i| format!("10.0.0.{i}")).filter(|ip| a.ips.has(ip.parse().unwrap())).collect();
    let mut probe = a.ports.clone();
    let ports = (30000..=30015).filter(|p| probe.allocate(*p).is_err()).collect();
    (ips, ports)
}

#[test]
fn a_taken_node_port_after_the_cluster_ip_leaves_the_allocators_as_they_were() {
    let mut a = allocators();
    a.ips.allocate("10.0.0.3".parse().unwrap()).unwrap();
    a.ports.allocate(30005).unwrap();
    let before = held(&a);
    let mut obj = svc(json!({"type": "NodePort", "ports": [
        {"port": 80, "protocol": "TCP"},
        {"port": 81, "protocol": "TCP", "nodePort": 30005},
    ]}));
    let err = a.allocate_service(&mut obj, None, None).unwrap_err();
    assert_eq!(err.reason(), "Invalid");
    assert!(err.to_string().contains("spec.ports[1].nodePort: Invalid value: 30005"), "{err}");
    assert_eq!(held(&a), before, "the ClusterIP and the first NodePort went back");
}

#[test]
fn a_full_node_port_range_after_the_cluster_ip_leaves_the_allocators_as_they_were() {
    let mut a = allocators();
    for p in 30000..=30014 {
        a.ports.allocate(p).unwrap();
    }
    let before = held(&a);
    let mut obj = svc(json!({"type": "NodePort", "clusterIP": "10.0.0.7", "ports": [
        {"port": 80, "protocol": "TCP"},
        {"port": 81, "protocol": "TCP"},
    ]}));
    let err = a.allocate_service(&mut obj, None, None).unwrap_err();
    assert_eq!(err.to_string(), "Internal error occurred: failed to allocate a nodePort: range is full");
    assert_eq!(held(&a), before, "10.0.0.7 and the last free port went back");
}

#[test]
fn a_dropped_transaction_reverts_and_a_committed_one_keeps() {
    let mut a = allocators();
    let before = held(&a);
    let mut obj = svc(json!({"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]}));
    a.allocate_service(&mut obj, None, None).unwrap().revert();
    assert_eq!(held(&a), before);

    let mut obj = svc(json!({"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]}));
    a.allocate_service(&mut obj, None, None).unwrap().commit();
    let ip = cluster_ip(&obj).unwrap();
    assert_eq!(held(&a), (vec![ip], node_ports(&obj)));
}

#[test]
fn an_update_releases_the_old_allocations_only_on_commit() {
    let (mut a, old) = with_node_port_service();
    let before = held(&a);
    assert_eq!(before, (vec!["10.0.0.5".to_string()], vec![30001]));

    // Change both: a new ClusterIP (as after an ExternalName round trip) and a new NodePort.
    let changed = || node_port("10.0.0.6", 30002);
    let mut new = changed();
    let txn = a.allocate_service(&mut new, Some(&old), None).unwrap();
    let pending = (vec!["10.0.0.5".to_string(), "10.0.0.6".to_string()], vec![30001, 30002]);
    assert_eq!(held(txn.alloc), pending, "until the write is decided, both are held");
    drop(txn);
    assert_eq!(held(&a), before, "reverted: the new ones went back, the old ones were never freed");

    let mut new = changed();
    let txn = a.allocate_service(&mut new, Some(&old), None).unwrap();
    txn.commit();
    assert_eq!(held(&a), (vec!["10.0.0.6".to_string()], vec![30002]), "committed: the old ones went back");
}

#[test]
fn an_update_to_external_name_gives_everything_back_on_commit() {
    let (mut a, old) = with_node_port_service();
    let before = held(&a);
    let mut new = svc(json!({"type": "ExternalName", "externalName": "example.com", "clusterIP": "10.0.0.5",
        "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30001}]}));
    let txn = a.allocate_service(&mut new, Some(&old), None).unwrap();
    assert_eq!(held(txn.alloc), before, "still held until commit");
    txn.commit();
    assert_eq!(held(&a), (vec![], vec![]));
    assert_eq!(cluster_ip(&new), None);
    assert!(node_ports(&new).is_empty());
}

#[test]
fn an_update_that_keeps_its_allocations_takes_and_frees_nothing() {
    let mut a = allocators();
    let mut old = svc(json!({"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]}));
    a.allocate_service(&mut old, None, None).unwrap().commit();
    let before = held(&a);
    let mut new = svc(json!({"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]}));
    keep_allocated(&mut new, &old);
    a.allocate_service(&mut new, Some(&old), None).unwrap().commit();
    assert_eq!(held(&a), before);
    assert_eq!(cluster_ip(&new), cluster_ip(&old));
    assert_eq!(node_ports(&new), node_ports(&old));
}

/// A `service-cidr` fault, as the writer finds it in force.
fn exhaustion() -> super::super::exhaustion::Exhaustion {
    super::super::exhaustion::Exhaustion {
        fault: netlab_chaos::FaultRef::new("default", "full", "ExhaustionChaos", "service-cidr"),
        namespace: "default".into(),
        name: "full".into(),
        refused: false,
    }
}

#[test]
fn an_exhausted_range_refuses_new_cluster_ips_as_a_full_one_does() {
    let mut a = allocators();
    let before = held(&a);
    let mut ex = exhaustion();
    let mut obj = svc(json!({"ports": [{"port": 80, "protocol": "TCP"}]}));
    let err = a.allocate_service(&mut obj, None, Some(&mut ex)).unwrap_err();
    assert_eq!(err.to_string(), "Internal error occurred: failed to allocate a serviceIP: range is full");
    assert!(ex.refused);
    assert_eq!(held(&a), before, "nothing was taken");

    let mut ex = exhaustion();
    let mut obj = svc(json!({"clusterIP": "10.0.0.9", "ports": [{"port": 80, "protocol": "TCP"}]}));
    let err = a.allocate_service(&mut obj, None, Some(&mut ex)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "The Service \"web\" is invalid: spec.clusterIPs: Invalid value: [\"10.0.0.9\"]: failed to allocate IP 10.0.0.9: provided IP is already allocated"
    );
    assert!(ex.refused);
}

#[test]
fn an_exhausted_range_leaves_services_that_need_no_new_address_alone() {
    let (mut a, old) = with_node_port_service();
    for spec in [
        json!({"clusterIP": "None", "ports": [{"port": 80, "protocol": "TCP"}]}),
        json!({"type": "ExternalName", "externalName": "example.com"}),
    ] {
        let mut ex = exhaustion();
        a.allocate_service(&mut svc(spec), None, Some(&mut ex)).unwrap().commit();
        assert!(!ex.refused);
    }
    // An update that keeps its address, and takes a new NodePort: ports are not the CIDR.
    let mut ex = exhaustion();
    let mut new = node_port("10.0.0.5", 30002);
    a.allocate_service(&mut new, Some(&old), Some(&mut ex)).unwrap().commit();
    assert!(!ex.refused);
    assert_eq!(held(&a), (vec!["10.0.0.5".to_string()], vec![30002]));
}
