//! Stock kubectl against `netlab up` (issue 18): the kubeconfig `up` writes, the REST API the
//! apiserver serves beside its gRPC API, and kubectl's own output — server version, discovery
//! (`api-resources`, short names), server-side tables with upstream's columns, JSON, selectors,
//! the NotFound text and exit code, create and delete.
//!
//! The `kubectl` on PATH is the Cloud SDK's dispatcher: it asks `/version` and runs the kubectl
//! of the server's minor version (1.32 here). Each run gets a fresh `--cache-dir`, so discovery
//! is fetched, not read from a previous run's cache.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use netlab_e2e::{Run, native::NativeCluster, run};

/// `kubectl ARGS` with the cluster's kubeconfig and a cache dir of its own.
fn kubectl(data_dir: &Path, cache: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new("kubectl");
    cmd.args(args)
        .arg("--cache-dir")
        .arg(cache)
        .env("KUBECONFIG", data_dir.join("kubeconfig"))
        .env_remove("KUBECTL_REMOTE_COMMAND_WEBSOCKETS");
    run(cmd, stdin)
}

struct Kubectl<'a> {
    cluster: &'a NativeCluster,
    cache: tempfile::TempDir,
}

impl Kubectl<'_> {
    fn run(&self, args: &[&str]) -> Run {
        kubectl(self.cluster.dir(), self.cache.path(), args, None)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.code, Some(0), "kubectl {args:?}:\nstdout: {}\nstderr: {}", out.stdout, out.stderr);
        out.stdout
    }
}

/// The header line of a table, split on kubectl's column gaps.
fn header(table: &str) -> Vec<String> {
    let line = table.lines().next().unwrap_or_default();
    line.split("   ").map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

/// Whether `ip` is in the lab's Service CIDR, 10.96.0.0/12.
fn in_service_cidr(ip: &str) -> bool {
    ip.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.octets()[0] == 10 && ip.octets()[1] & 0xf0 == 96)
}

#[test]
fn kubectl_reads_creates_and_deletes_against_the_lab() {
    let cluster = NativeCluster::up();
    let k = Kubectl { cluster: &cluster, cache: tempfile::tempdir().unwrap() };

    // The kubeconfig `up` wrote, and the one `netlab kubeconfig` prints, are the same.
    let written = std::fs::read_to_string(cluster.dir().join("kubeconfig")).unwrap();
    assert_eq!(cluster.ok(&["kubeconfig"]), written);
    assert!(written.contains("server: http://127.0.0.1:"), "{written}");

    // The server's version picks kubectl 1.32.
    let version = k.ok(&["version"]);
    assert!(version.contains("Server Version: v1.32.0+netlab"), "{version}");
    assert!(!version.contains("WARNING"), "{version}");

    // Discovery: names, short names, groups, the fault kinds.
    let resources = k.ok(&["api-resources"]);
    assert_eq!(header(&resources), ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"], "{resources}");
    let line = |name: &str| {
        resources
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} in:\n{resources}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(line("pods"), ["pods", "po", "v1", "true", "Pod"]);
    assert_eq!(line("services"), ["services", "svc", "v1", "true", "Service"]);
    assert_eq!(line("nodes"), ["nodes", "no", "v1", "false", "Node"]);
    assert_eq!(line("deployments"), ["deployments", "deploy", "apps/v1", "true", "Deployment"]);
    assert_eq!(line("networkchaos"), ["networkchaos", "chaos.netlab.io/v1alpha1", "true", "NetworkChaos"]);

    // The demo workload, then its pods through kubectl's server-side tables.
    cluster.ok(&["demo", "--enabled", "true"]);
    let started = Instant::now();
    let pods = loop {
        let pods = k.ok(&["get", "pods", "-A"]);
        let running = pods.lines().filter(|l| l.starts_with("demo ") && l.contains(" Running ")).count();
        if running >= 6 {
            break pods;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "demo pods Running:\n{pods}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(header(&pods), ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"], "{pods}");
    let client = pods.lines().find(|l| l.contains(" client ")).unwrap_or_else(|| panic!("{pods}"));
    let cells: Vec<&str> = client.split_whitespace().collect();
    assert_eq!(&cells[..5], ["demo", "client", "1/1", "Running", "0"], "{client}");

    let wide = k.ok(&["get", "pods", "-n", "demo", "-o", "wide"]);
    assert_eq!(
        header(&wide),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
        "{wide}"
    );
    let client: Vec<&str> = wide
        .lines()
        .find(|l| l.starts_with("client "))
        .unwrap_or_else(|| panic!("{wide}"))
        .split_whitespace()
        .collect();
    assert!(client[5].starts_with("10.244."), "{wide}");
    assert!(client[6].starts_with("node-"), "{wide}");
    assert_eq!(&client[7..], ["<none>", "<none>"], "{wide}");

    // `get all`: the kinds discovery puts in category `all`, each as its own table.
    let all = k.ok(&["get", "all", "-n", "demo"]);
    for name in ["pod/client", "service/orders", "deployment.apps/orders", "statefulset.apps/db"] {
        assert!(all.lines().any(|l| l.starts_with(name)), "{name} in:\n{all}");
    }
    assert!(all.lines().any(|l| l.starts_with("replicaset.apps/orders-")), "{all}");

    // JSON lists, as the real apiserver's, parsed.
    let json: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "svc", "-n", "demo", "-o", "json"])).unwrap();
    assert_eq!(json["kind"], "List");
    let names: Vec<&str> =
        json["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["db", "orders"]);
    assert_eq!(json["items"][1]["kind"], "Service");
    assert!(in_service_cidr(json["items"][1]["spec"]["clusterIP"].as_str().unwrap()), "{json}");

    // Label and field selectors, evaluated by the server.
    let orders = k.ok(&["get", "pods", "-n", "demo", "-l", "app=orders", "-o", "name"]);
    assert_eq!(orders.lines().count(), 3, "{orders}");
    assert!(orders.lines().all(|l| l.starts_with("pod/orders-")), "{orders}");
    let by_name =
        k.ok(&["get", "pods", "-n", "demo", "--field-selector", "metadata.name=client", "-o", "name"]);
    assert_eq!(by_name, "pod/client\n");
    let bad = k.run(&["get", "svc", "-n", "demo", "--field-selector", "spec.nodeName=x"]);
    assert_eq!(bad.code, Some(1));
    // kubectl wraps the server's message, as against a real cluster.
    assert_eq!(
        bad.stderr.trim(),
        "Error from server (BadRequest): Unable to find \"/v1, Resource=services\" that match label selector \"\", field selector \"spec.nodeName=x\": field label not supported: spec.nodeName"
    );

    // NotFound as kubectl prints it.
    let nope = k.run(&["get", "pod", "nope"]);
    assert_eq!(nope.code, Some(1), "{}", nope.stderr);
    assert_eq!(nope.stderr.trim(), "Error from server (NotFound): pods \"nope\" not found");

    // create -f (validation is the server's: no OpenAPI is served yet), then get, then delete.
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("svc.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: kubectl-made\n  namespace: demo\nspec:\n  selector:\n    app: orders\n  ports:\n  - port: 8080\n    targetPort: 80\n",
    )
    .unwrap();
    let created = k.ok(&["create", "-f", manifest.to_str().unwrap(), "--validate=false"]);
    assert_eq!(created, "service/kubectl-made created\n");
    let again = k.run(&["create", "-f", manifest.to_str().unwrap(), "--validate=false"]);
    assert_eq!(again.code, Some(1));
    assert!(
        again.stderr.contains("Error from server (AlreadyExists): error when creating"),
        "{}",
        again.stderr
    );
    assert!(again.stderr.contains("services \"kubectl-made\" already exists"), "{}", again.stderr);
    let svc = k.ok(&["get", "svc", "kubectl-made", "-n", "demo"]);
    assert_eq!(header(&svc), ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"], "{svc}");
    let row: Vec<&str> = svc.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!(&row[..2], ["kubectl-made", "ClusterIP"], "{svc}");
    assert!(in_service_cidr(row[2]), "{svc}");
    assert_eq!(&row[3..5], ["<none>", "8080/TCP"], "{svc}");
    let deleted = k.ok(&["delete", "svc", "kubectl-made", "-n", "demo"]);
    assert_eq!(deleted, "service \"kubectl-made\" deleted\n");
    let gone = k.run(&["get", "svc", "kubectl-made", "-n", "demo"]);
    assert_eq!(gone.stderr.trim(), "Error from server (NotFound): services \"kubectl-made\" not found");

    // delete -f, and Invalid's field list.
    k.ok(&["create", "-f", manifest.to_str().unwrap(), "--validate=false"]);
    let deleted = k.ok(&["delete", "-f", manifest.to_str().unwrap()]);
    assert_eq!(deleted, "service \"kubectl-made\" deleted\n");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  ports:\n  - port: 0\n",
    )
    .unwrap();
    let invalid = k.run(&["create", "-f", bad.to_str().unwrap(), "--validate=false"]);
    assert_eq!(invalid.code, Some(1));
    // Built by kubectl from the Status's causes, one line each.
    assert_eq!(
        invalid.stderr,
        "The Service \"bad\" is invalid: \n\
         * spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive\n\
         * spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive\n"
    );
}
