//! Issue 7: the real apiserver exports its decision spans over OTLP, and the real `netlab trace`
//! reads them back from Jaeger's query API (here the in-process collector) as a tree.

use std::{process::Command, time::Duration};

use netlab_e2e::{Apiserver, bin, netlab, otlp::Collector};

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

/// Runs `netlab trace ARGS` against the collector's query API (through NETLAB_JAEGER_URL).
fn netlab_trace(jaeger_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(bin("netlab"))
        .arg("trace")
        .args(args)
        .env("NETLAB_JAEGER_URL", jaeger_url)
        .env_remove("NO_COLOR")
        .output()
        .expect("run netlab trace")
}

#[test]
fn netlab_trace_prints_the_apiservers_cluster_ip_decision() {
    let collector = Collector::start();
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &["--otlp-endpoint", &collector.otlp_endpoint()]);
    let url = api.url();

    netlab(&url, &["apply", "-f", "-"], Some(ORDERS)).ok();
    let svc = netlab(&url, &["get", "svc", "orders", "-o", "json"], None).ok().json();
    let ip = svc["spec"]["clusterIP"].as_str().expect("clusterIP").to_string();

    // The SDK exports in batches (every 5 s by default): wait generously, assert nothing on time.
    let span = collector
        .wait_for(
            |s| {
                s.service == "kube-apiserver"
                    && s.name == "allocate ClusterIP"
                    && s.attr("netlab.service") == "default/orders"
            },
            Duration::from_secs(90),
        )
        .unwrap_or_else(|| {
            panic!("no `allocate ClusterIP` span for default/orders; received:\n{}", collector.summary())
        });
    assert_eq!(span.attr("netlab.cluster_ip"), ip);
    assert_eq!(span.attr("netlab.service_cidr"), "10.96.0.0/12");

    let jaeger = collector.jaeger_url();
    let run = netlab_trace(&jaeger, &[&span.trace_id]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "netlab trace failed:\nstdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.starts_with(&format!("Trace {}  ", span.trace_id)), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("kube-apiserver  allocate ClusterIP  "))
        .unwrap_or_else(|| panic!("no allocate ClusterIP line in:\n{stdout}"));
    assert!(line.contains(&format!("netlab.cluster_ip={ip}")), "{line}");
    assert!(line.contains("netlab.service_cidr=10.96.0.0/12"), "{line}");
    assert!(!stdout.contains('\x1b'), "no colour into a pipe:\n{stdout}");

    // `-o json` is Jaeger's answer, unchanged.
    let run = netlab_trace(&jaeger, &[&span.trace_id, "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!(json["data"][0]["traceID"], span.trace_id.as_str());

    let missing = "0af7651916cd43dd8448eb211c80319c";
    let run = netlab_trace(&jaeger, &[missing]);
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&run.stderr),
        format!("error: trace {missing} not found in Jaeger at {jaeger}\n")
    );
}
