//! Seed question 1: the apiserver assigns Service ClusterIPs from the Service CIDR, durably.

use std::net::Ipv4Addr;

use netlab_e2e::{Apiserver, netlab};

const ORDERS: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: orders
  labels:
    app: orders
spec:
  selector:
    app: orders
  ports:
  - name: http
    port: 80
    targetPort: 8080
";

fn cluster_ip(server: &str, name: &str) -> Ipv4Addr {
    let svc = netlab(server, &["get", "svc", name, "-o", "json"], None).ok().json();
    svc["spec"]["clusterIP"].as_str().expect("clusterIP").parse().expect("an IPv4 address")
}

#[test]
fn cluster_ips_come_from_the_service_cidr_and_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut api = Apiserver::start(dir.path(), &[]);
    let url = api.url();

    let run = netlab(&url, &["apply", "-f", "-"], Some(ORDERS)).ok();
    assert_eq!(run.stdout.trim(), "service/orders created");
    let ip = cluster_ip(&url, "orders");
    let cidr_start = u32::from(Ipv4Addr::new(10, 96, 0, 0));
    let n = u32::from(ip);
    assert!(n >> 20 == cidr_start >> 20, "{ip} is in 10.96.0.0/12");
    assert!(n > u32::from(Ipv4Addr::new(10, 96, 1, 0)), "{ip} is in the dynamic band, above 10.96.1.0");
    assert_eq!(cluster_ip(&url, "kubernetes"), Ipv4Addr::new(10, 96, 0, 1));
    let dns = netlab(&url, &["get", "svc", "kube-dns", "-n", "kube-system", "-o", "json"], None).ok().json();
    assert_eq!(dns["spec"]["clusterIP"], "10.96.0.10");

    let again = netlab(&url, &["apply", "-f", "-"], Some(ORDERS)).ok();
    assert_eq!(again.stdout.trim(), "service/orders unchanged");

    api.kill9();
    api.restart();
    assert_eq!(cluster_ip(&url, "orders"), ip, "the acknowledged Service survived kill -9");

    let payments = ORDERS.replace("orders", "payments");
    netlab(&url, &["apply", "-f", "-"], Some(&payments)).ok();
    let other = cluster_ip(&url, "payments");
    assert_ne!(other, ip);

    let table = netlab(&url, &["get", "svc"], None).ok().stdout;
    let header = table.lines().next().unwrap_or_default();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    );
    assert!(table.contains(&ip.to_string()) && table.contains("80/TCP"), "{table}");
}

#[test]
fn a_taken_cluster_ip_is_refused_with_the_apiservers_words() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    let manifest = ORDERS.replace("spec:\n", "spec:\n  clusterIP: 10.96.0.10\n");
    let run = netlab(&api.url(), &["apply", "-f", "-"], Some(&manifest));
    assert_ne!(run.code, Some(0));
    assert!(
        run.stderr.contains(
            "The Service \"orders\" is invalid: spec.clusterIPs: Invalid value: [\"10.96.0.10\"]: failed to allocate IP 10.96.0.10: provided IP is already allocated"
        ),
        "{}",
        run.stderr
    );
    let get = netlab(&api.url(), &["get", "svc", "orders"], None);
    assert_ne!(get.code, Some(0));
    assert!(
        get.stderr.contains("Error from server (NotFound): services \"orders\" not found"),
        "{}",
        get.stderr
    );
}
