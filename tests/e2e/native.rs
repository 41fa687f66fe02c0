//! `netlab up --detach` / `netlab down`: the lab as local processes, found by later commands
//! through the data dir; two clusters side by side; traces readable with no Jaeger around (the
//! trace store `up` starts).

use std::process::{Command, Output};

use netlab_e2e::{bin, free_port, native_up_lock};

fn netlab(data_dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(bin("netlab"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("NETLAB_SERVER")
        .env_remove("NETLAB_NAMESPACE")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("NETLAB_JAEGER_URL")
        .output()
        .expect("run netlab")
}

/// The trace store's URL that `up` printed (`  traces      http://...  (...)`).
fn traces_url(up: &str) -> String {
    let line = up.lines().find(|l| l.trim_start().starts_with("traces ")).unwrap_or_else(|| panic!("{up}"));
    line.split_whitespace().nth(1).unwrap_or_default().to_string()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "netlab failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stops the cluster even when an assertion fails.
struct Down(std::path::PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = netlab(&self.0, &["down"]);
    }
}

#[test]
fn up_detach_then_commands_find_the_cluster_then_down() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let _down_a = Down(a.path().to_path_buf());
    let up = {
        let _one = native_up_lock();
        ok(netlab(a.path(), &["up", "--detach", "--apiserver-port", &port]))
    };
    assert!(up.contains(&format!("apiserver   http://127.0.0.1:{port}")), "{up}");
    // No --otlp-endpoint: a trace store, recorded for `netlab trace`.
    let traces_a = traces_url(&up);
    assert!(traces_a.starts_with("http://127.0.0.1:"), "{up}");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.path().join("cluster.json")).unwrap()).unwrap();
    assert_eq!(record["jaeger_url"], traces_a.as_str());

    // Found through the data dir: no --server.
    let pods = ok(netlab(a.path(), &["get", "deploy", "-n", "demo", "-o", "name"]));
    assert_eq!(pods.trim(), "deployment.apps/orders", "the demo workload was applied");
    let svc = ok(netlab(a.path(), &["get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"]));
    assert_eq!(svc, "10.96.0.1");

    // The demo's pods run on the two nodes; each node shows the CNI results its kubelet got.
    let started = std::time::Instant::now();
    loop {
        let cni = String::from_utf8_lossy(&netlab(a.path(), &["node", "cni", "node-1"]).stdout).into_owned();
        if cni.contains("\"gateway\": \"10.244.") {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "node-1's pods got CNI results: {cni}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Natively too, a pod reaches a Service by name: the cluster DNS on 127.0.x.253:53, the
    // nodes' kernels DNATing 10.96.0.10 to it and the orders ClusterIP to a pod.
    let started = std::time::Instant::now();
    loop {
        let curl = netlab(
            a.path(),
            &["exec", "-n", "demo", "client", "--", "curl", "-sS", "-m", "5", "http://orders/"],
        );
        if String::from_utf8_lossy(&curl.stdout).starts_with("pod=orders-") {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "curl http://orders/ from the client pod: {}",
            String::from_utf8_lossy(&curl.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // A write's trace, read back with no Jaeger given: the processes export to the store and
    // `netlab trace` reads it through the data dir. Exports are batched: poll.
    let svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: traced\nspec:\n  ports:\n  - port: 80\n";
    let manifest = a.path().join("traced.yaml");
    std::fs::write(&manifest, svc).unwrap();
    ok(netlab(a.path(), &["apply", "-f", manifest.to_str().unwrap()]));
    let started = std::time::Instant::now();
    loop {
        let trace = netlab(a.path(), &["trace", "last"]);
        let tree = String::from_utf8_lossy(&trace.stdout).into_owned();
        if trace.status.success() && tree.contains("kube-apiserver  allocate ClusterIP  ") {
            assert!(tree.contains("netlab.service=default/traced"), "{tree}");
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "netlab trace last after apply:
stdout: {tree}
stderr: {}",
            String::from_utf8_lossy(&trace.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }

    let missing = netlab(a.path(), &["node", "cni", "nope"]);
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("Error from server (NotFound): nodes \"nope\" not found")
    );

    // A second cluster asking for the same port gets another one, and both answer.
    let _down_b = Down(b.path().to_path_buf());
    let one = native_up_lock();
    let up_b = Command::new(bin("netlab"))
        .args(["--data-dir", b.path().to_str().unwrap(), "up", "--detach", "--apiserver-port", &port])
        .env("NETLAB_DEMO", "0")
        .env_remove("NETLAB_SERVER")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .unwrap();
    drop(one);
    let up_b = ok(up_b);
    assert!(!up_b.contains(&format!("127.0.0.1:{port}")), "{up_b}");
    assert_ne!(traces_url(&up_b), traces_a, "each cluster has its own trace store");
    let none = netlab(b.path(), &["get", "deploy", "-A"]);
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("No resources found"),
        "NETLAB_DEMO=0 skips the demo"
    );
    ok(netlab(a.path(), &["get", "ns", "demo"]));

    let down = ok(netlab(a.path(), &["down"]));
    assert!(down.contains("apiserver stopped"), "{down}");
    assert!(down.contains("traces stopped"), "{down}");
    let after = netlab(a.path(), &["get", "ns"]);
    assert!(!after.status.success(), "the cluster is gone");
    let again = netlab(a.path(), &["down"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("no netlab cluster is running"));
}
