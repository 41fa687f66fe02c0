//! Pod create → Ready on a native cluster in the EKS flavour (the AWS VPC CNI: ipamd's warm
//! pool of ENI addresses) beside the same on the bridge CNI, and when no warm address is left so
//! the pod waits for ipamd's next pool step (an address assigned, or an ENI attached first).
//! Results in BENCHMARKS.md.
//!
//! `cargo build --release --bins && cargo bench -p netlab-e2e --bench eks`

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use netlab_client::{Client, ListParams};
use netlab_e2e::{block_on, native::NativeCluster};

/// Pods per run: under m5.large's 27 pod addresses (3 ENIs × 9), so every pod can get one.
const PODS: usize = 24;

fn manifest(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": "node-2",
            "containers": [{"name": "web", "image": "nginx:1.27"}]
        }
    }))
    .expect("a pod")
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Creates [`PODS`] pods on node-2 one after another, each once the previous is Ready; returns
/// each one's create → Ready, sorted.
fn run(flags: &[&str], env: &[(&str, &str)]) -> Vec<Duration> {
    let cluster = NativeCluster::up_with(flags, env);
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(cluster.dir().join("cluster.json")).expect("cluster.json"),
    )
    .expect("cluster.json is JSON");
    let server = record["apiserver"].as_str().expect("apiserver").to_string();
    block_on(async {
        let client = Client::new(&server).expect("client");
        // The image cached on node-2, and ipamd's pool settled, before measuring.
        client.create(&manifest("warm")).await.expect("warm");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !client.get::<Pod>("default", "warm").await.is_ok_and(|p| ready(&p)) {
            assert!(Instant::now() < deadline, "warm pod Ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(6)).await;
        let params = ListParams { namespace: "default".into(), ..Default::default() };
        let mut stream = client.watch::<Pod>(&params, None).await.expect("watch");
        let mut took = Vec::new();
        for i in 0..PODS {
            let name = format!("bench-{i}");
            let start = Instant::now();
            client.create(&manifest(&name)).await.expect("create");
            'wait: loop {
                let batch = tokio::time::timeout(Duration::from_secs(120), stream.message())
                    .await
                    .expect("in time")
                    .expect("watch")
                    .expect("open");
                for ev in batch.events {
                    let Some(obj) = ev.object else { continue };
                    let Ok(p) = serde_json::from_slice::<Pod>(&obj.json) else { continue };
                    if p.metadata.name.as_deref() == Some(name.as_str()) && ready(&p) {
                        break 'wait;
                    }
                }
            }
            took.push(start.elapsed());
        }
        took.sort();
        took
    })
}

fn report(what: &str, took: &[Duration]) {
    let p = |q: f64| took[((took.len() as f64 * q).ceil() as usize).clamp(1, took.len()) - 1];
    eprintln!(
        "{what}: p50 {:?} p99 {:?} max {:?} ({} pods)",
        p(0.5),
        p(0.99),
        took[took.len() - 1],
        took.len()
    );
}

fn main() {
    report("bridge CNI", &run(&[], &[]));
    // Defaults (WARM_ENI_TARGET=1): a whole ENI's addresses kept free, so every pod finds one.
    report("EKS, warm pool (WARM_ENI_TARGET=1)", &run(&["--eks"], &[]));
    // One warm address: a pod created right after another finds none and waits for ipamd to
    // assign more (attaching an ENI first every 9th address on an m5.large).
    report(
        "EKS, WARM_IP_TARGET=1 (no warm address for back-to-back pods)",
        &run(&["--eks"], &[("WARM_IP_TARGET", "1")]),
    );
}
