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

    // `kubectl create token`: the TokenRequest subresource, in kubectl's protobuf, for the
    // namespace's `default` account (the ServiceAccounts controller's), with upstream's texts.
    let token = k.ok(&["create", "token", "default", "-n", "demo", "--audience", "sts.amazonaws.com"]);
    let payload = token.trim().split('.').nth(1).expect("a JWT");
    let claims: serde_json::Value =
        serde_json::from_slice(&data_encoding::BASE64URL_NOPAD.decode(payload.as_bytes()).unwrap()).unwrap();
    assert_eq!(claims["aud"], serde_json::json!(["sts.amazonaws.com"]));
    assert_eq!(claims["sub"], "system:serviceaccount:demo:default");
    let short = k.run(&["create", "token", "default", "-n", "demo", "--duration", "1m"]);
    assert_eq!(
        (short.code, short.stderr.as_str()),
        (
            Some(1),
            "error: failed to create token: TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes\n"
        )
    );
    let missing = k.run(&["create", "token", "nope", "-n", "demo"]);
    assert_eq!(missing.stderr, "error: failed to create token: serviceaccounts \"nope\" not found\n");
}

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
";

/// Issue 18's second slice: watch (`get -w`, reflectors behind `rollout status`, `wait` and
/// `delete`), update and `/scale` (`scale`, `replace`), and the three patch types (`label`,
/// `annotate`, `patch`, `set image`, `rollout restart`, client-side `apply`).
#[test]
fn kubectl_watches_updates_and_patches_against_the_lab() {
    let cluster = NativeCluster::up();
    let k = Kubectl { cluster: &cluster, cache: tempfile::tempdir().unwrap() };
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("web.yaml");
    let manifest = manifest.to_str().unwrap();
    std::fs::write(manifest, WEB).unwrap();

    // Client-side apply: created, then unchanged (kubectl's three-way diff against the stored
    // last-applied annotation finds nothing to send).
    assert_eq!(k.ok(&["apply", "-f", manifest, "--validate=false"]), "deployment.apps/web created\n");
    assert_eq!(k.ok(&["apply", "-f", manifest, "--validate=false"]), "deployment.apps/web unchanged\n");

    // rollout status and wait: reflectors (list, then watch from its resourceVersion).
    let status = k.ok(&["rollout", "status", "deploy/web", "--timeout=90s"]);
    assert!(status.ends_with("deployment \"web\" successfully rolled out\n"), "{status}");
    let ready = k.ok(&["wait", "--for=condition=Ready", "pod", "-l", "app=web", "--timeout=60s"]);
    assert_eq!(ready.lines().count(), 2, "{ready}");
    assert!(ready.lines().all(|l| l.starts_with("pod/web-") && l.ends_with(" condition met")), "{ready}");

    // `get -w` prints rows as the pods change, from Table watch events.
    let watch_out = dir.path().join("watch.out");
    let mut watcher = Command::new("kubectl")
        .args(["get", "pods", "-l", "app=web", "-w", "--cache-dir"])
        .arg(k.cache.path())
        .env("KUBECONFIG", cluster.dir().join("kubeconfig"))
        .stdout(std::fs::File::create(&watch_out).unwrap())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    // scale: a merge patch of the Deployment's Scale.
    assert_eq!(k.ok(&["scale", "deploy/web", "--replicas=3"]), "deployment.apps/web scaled\n");
    let status = k.ok(&["rollout", "status", "deploy/web", "--timeout=90s"]);
    assert!(status.ends_with("deployment \"web\" successfully rolled out\n"), "{status}");
    let scale: serde_json::Value = serde_json::from_str(&k.ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
    ]))
    .unwrap();
    assert_eq!(
        (scale["kind"].as_str(), scale["spec"]["replicas"].as_i64(), scale["status"]["selector"].as_str()),
        (Some("Scale"), Some(3), Some("app=web")),
        "{scale}"
    );

    // delete waits (a watch on the one pod) for the DELETED event, without reflector errors.
    let pods = k.ok(&["get", "pods", "-l", "app=web", "-o", "name"]);
    let victim = pods.lines().next().unwrap().to_string();
    let name = victim.trim_start_matches("pod/");
    let deleted = k.run(&["delete", &victim]);
    assert_eq!(deleted.code, Some(0), "{}", deleted.stderr);
    assert_eq!(deleted.stdout, format!("pod \"{name}\" deleted\n"));
    assert_eq!(deleted.stderr, "");
    let gone = k.run(&["get", &victim]);
    assert_eq!(gone.stderr.trim(), format!("Error from server (NotFound): pods \"{name}\" not found"));

    let started = Instant::now();
    let rows = loop {
        let rows = std::fs::read_to_string(&watch_out).unwrap();
        if rows.lines().any(|l| l.starts_with(name) && l.contains(" Terminating ")) {
            break rows;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{name} Terminating in:\n{rows}");
        std::thread::sleep(Duration::from_millis(200));
    };
    watcher.kill().unwrap();
    let _ = watcher.wait();
    assert_eq!(header(&rows), ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], "{rows}");
    // The two pods from the list, then the third one as it is created and becomes Running.
    let names: std::collections::BTreeSet<&str> =
        rows.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
    assert!(names.len() >= 3, "{rows}");
    assert!(rows.lines().any(|l| l.contains(" 1/1 ") && l.contains(" Running ")), "{rows}");

    // label and annotate: merge patches.
    assert_eq!(k.ok(&["label", "deploy", "web", "tier=frontend"]), "deployment.apps/web labeled\n");
    let labeled = k.ok(&["get", "deploy", "web", "--show-labels"]);
    assert!(labeled.lines().nth(1).unwrap_or_default().ends_with(" tier=frontend"), "{labeled}");
    assert_eq!(
        k.ok(&["annotate", "deploy", "web", "netlab.io/note=hello"]),
        "deployment.apps/web annotated\n"
    );
    assert_eq!(
        k.ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.annotations.netlab\\.io/note}"]),
        "hello"
    );
    let label = k.run(&["label", "deploy", "web", "tier=backend"]);
    assert_eq!(label.code, Some(1));
    assert_eq!(label.stderr.trim(), "error: 'tier' already has a value (frontend), and --overwrite is false");
    assert_eq!(k.ok(&["label", "deploy", "web", "tier-"]), "deployment.apps/web unlabeled\n");

    // patch, in all three types.
    assert_eq!(
        k.ok(&["patch", "deploy", "web", "-p", r#"{"spec":{"minReadySeconds":1}}"#]),
        "deployment.apps/web patched\n"
    );
    assert_eq!(
        k.ok(&["patch", "deploy", "web", "--type=merge", "-p", r#"{"spec":{"revisionHistoryLimit":5}}"#]),
        "deployment.apps/web patched\n"
    );
    assert_eq!(
        k.ok(&[
            "patch",
            "deploy",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":2}]"#
        ]),
        "deployment.apps/web patched\n"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.minReadySeconds} {.spec.revisionHistoryLimit} {.spec.replicas}"
        ]),
        "1 5 2"
    );
    let failed = k.run(&[
        "patch",
        "deploy",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/spec/replicas","value":9}]"#,
    ]);
    assert_eq!(failed.code, Some(1));
    assert_eq!(
        failed.stderr.trim(),
        "The request is invalid: : testing value /spec/replicas failed: test failed"
    );

    // set image and rollout restart: strategic merge patches of the pod template.
    assert_eq!(
        k.ok(&["set", "image", "deploy/web", "nginx=nginx:1.28"]),
        "deployment.apps/web image updated\n"
    );
    let status = k.ok(&["rollout", "status", "deploy/web", "--timeout=90s"]);
    assert!(status.ends_with("deployment \"web\" successfully rolled out\n"), "{status}");
    let deploy: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "deploy", "web", "-o", "json"])).unwrap();
    let container = &deploy["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        (container["image"].as_str(), container["ports"][0]["containerPort"].as_i64()),
        (Some("nginx:1.28"), Some(80)),
        "the rest of the container stays: {container}"
    );
    assert_eq!(deploy["metadata"]["generation"], deploy["status"]["observedGeneration"], "{deploy}");
    // rollout undo: the previous ReplicaSet's template, written back by a strategic merge patch
    // (`$patch: replace` on the template); pause and resume: merge patches of spec.paused.
    assert_eq!(k.ok(&["rollout", "undo", "deploy/web"]), "deployment.apps/web rolled back\n");
    let status = k.ok(&["rollout", "status", "deploy/web", "--timeout=90s"]);
    assert!(status.ends_with("deployment \"web\" successfully rolled out\n"), "{status}");
    assert_eq!(
        k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]),
        "nginx:1.27"
    );
    assert_eq!(k.ok(&["rollout", "pause", "deploy/web"]), "deployment.apps/web paused\n");
    assert_eq!(k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.paused}"]), "true");
    assert_eq!(k.ok(&["rollout", "resume", "deploy/web"]), "deployment.apps/web resumed\n");
    assert_eq!(k.ok(&["rollout", "restart", "deploy/web"]), "deployment.apps/web restarted\n");
    let restarted = k.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}",
    ]);
    assert!(restarted.parse::<jiff::Timestamp>().is_ok(), "{restarted:?}");
    let status = k.ok(&["rollout", "status", "deploy/web", "--timeout=90s"]);
    assert!(status.ends_with("deployment \"web\" successfully rolled out\n"), "{status}");

    // apply of a changed manifest: configured, by a strategic merge patch.
    std::fs::write(manifest, WEB.replace("replicas: 2", "replicas: 1")).unwrap();
    assert_eq!(k.ok(&["apply", "-f", manifest, "--validate=false"]), "deployment.apps/web configured\n");
    assert_eq!(k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]), "1");

    // A rollout that cannot finish: the controller's Progressing=False/ProgressDeadlineExceeded
    // reaches `rollout status` through its watch, and `wait` times out as upstream's does.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        WEB.replace("name: web", "name: bad")
            .replace("app: web", "app: bad")
            .replace("nginx:1.27", "nginx:9.99")
            .replace("replicas: 2", "replicas: 1\n  progressDeadlineSeconds: 5"),
    )
    .unwrap();
    let bad = bad.to_str().unwrap();
    assert_eq!(k.ok(&["apply", "-f", bad, "--validate=false"]), "deployment.apps/bad created\n");
    let stuck = k.run(&["rollout", "status", "deploy/bad", "--timeout=60s"]);
    assert_eq!(stuck.code, Some(1), "{}{}", stuck.stdout, stuck.stderr);
    assert_eq!(stuck.stderr.trim(), "error: deployment \"bad\" exceeded its progress deadline");
    let unready = k.run(&["wait", "--for=condition=Ready", "pod", "-l", "app=bad", "--timeout=1s"]);
    assert_eq!(unready.code, Some(1));
    assert!(
        unready.stderr.starts_with("error: timed out waiting for the condition on pods/bad-"),
        "{}",
        unready.stderr
    );

    // replace (PUT), then again with a resourceVersion another write made stale: upstream's
    // Conflict.
    let stale = dir.path().join("stale.json");
    std::fs::write(&stale, k.ok(&["get", "deploy", "web", "-o", "json"])).unwrap();
    let stale = stale.to_str().unwrap();
    assert_eq!(k.ok(&["replace", "-f", stale, "--validate=false"]), "deployment.apps/web replaced\n");
    k.ok(&["label", "deploy", "web", "replaced=after"]);
    let conflict = k.run(&["replace", "-f", stale, "--validate=false"]);
    assert_eq!(conflict.code, Some(1));
    assert_eq!(
        conflict.stderr.trim(),
        format!(
            "Error from server (Conflict): error when replacing \"{stale}\": Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
        )
    );
}

/// The VPC CNI's DaemonSet, as EKS ships it (trimmed).
const AWS_NODE: &str = "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: aws-node
  namespace: kube-system
  labels:
    k8s-app: aws-node
spec:
  selector:
    matchLabels:
      k8s-app: aws-node
  template:
    metadata:
      labels:
        k8s-app: aws-node
    spec:
      nodeSelector:
        kubernetes.io/os: linux
      containers:
      - name: aws-node
        image: 602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.19.0
        env:
        - name: WARM_ENI_TARGET
          value: \"1\"
";

#[test]
fn kubectl_tunes_a_daemon_set_against_a_bare_apiserver() {
    let data = tempfile::tempdir().unwrap();
    let api = netlab_e2e::Apiserver::start(&data.path().join("api"), &[]);
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: {}\n  name: netlab\ncontexts:\n- context:\n    cluster: netlab\n    user: netlab\n  name: netlab\ncurrent-context: netlab\nusers:\n- name: netlab\n  user: {{}}\n",
        api.url()
    );
    std::fs::write(data.path().join("kubeconfig"), kubeconfig).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let k = |args: &[&str], stdin: Option<&str>| kubectl(data.path(), cache.path(), args, stdin);
    let ok = |args: &[&str]| {
        let out = k(args, None);
        assert_eq!(out.code, Some(0), "kubectl {args:?}:\nstdout: {}\nstderr: {}", out.stdout, out.stderr);
        out.stdout
    };

    let resources = ok(&["api-resources", "--api-group=apps"]);
    let line =
        resources.lines().find(|l| l.starts_with("daemonsets ")).unwrap_or_else(|| panic!("{resources}"));
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        ["daemonsets", "ds", "apps/v1", "true", "DaemonSet"]
    );

    let created = k(&["apply", "--validate=false", "-f", "-"], Some(AWS_NODE));
    assert_eq!(created.stdout, "daemonset.apps/aws-node created\n", "{}", created.stderr);
    let listed = ok(&["get", "ds", "-A"]);
    assert_eq!(
        header(&listed),
        [
            "NAMESPACE",
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "NODE SELECTOR",
            "AGE"
        ],
        "{listed}"
    );
    let row: Vec<&str> = listed.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!(
        &row[..8],
        ["kube-system", "aws-node", "0", "0", "0", "0", "0", "kubernetes.io/os=linux"],
        "{listed}"
    );
    let wide = ok(&["get", "ds", "-n", "kube-system", "-o", "wide"]);
    assert_eq!(&header(&wide)[8..], ["CONTAINERS", "IMAGES", "SELECTOR"], "{wide}");

    // `set env`: a strategic merge patch of the template's env, merged by name; the template
    // changed, so the generation and the template generation move on.
    assert_eq!(
        ok(&["set", "env", "ds/aws-node", "-n", "kube-system", "WARM_IP_TARGET=2"]),
        "daemonset.apps/aws-node env updated\n"
    );
    let ds: serde_json::Value =
        serde_json::from_str(&ok(&["get", "ds", "aws-node", "-n", "kube-system", "-o", "json"])).unwrap();
    assert_eq!(
        ds["spec"]["template"]["spec"]["containers"][0]["env"],
        serde_json::json!([{"name": "WARM_ENI_TARGET", "value": "1"}, {"name": "WARM_IP_TARGET", "value": "2"}])
    );
    assert_eq!(ds["metadata"]["generation"], 2);
    assert_eq!(ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"], "2");
    assert_eq!(
        ds["spec"]["updateStrategy"],
        serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(ds["status"]["desiredNumberScheduled"], 0);

    // The status subresource.
    ok(&[
        "patch",
        "ds",
        "aws-node",
        "-n",
        "kube-system",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"desiredNumberScheduled":2,"numberReady":1}}"#,
    ]);
    let row = ok(&["get", "ds", "aws-node", "-n", "kube-system", "--no-headers"]);
    assert_eq!(row.split_whitespace().collect::<Vec<_>>()[1..4], ["2", "0", "1"], "{row}");

    let described = ok(&["describe", "ds", "aws-node", "-n", "kube-system"]);
    assert!(described.contains("\nDesired Number of Nodes Scheduled: 2\n"), "{described}");
    assert!(described.contains("      WARM_IP_TARGET:   2\n"), "{described}");

    // Validation, in upstream's words.
    let bad =
        AWS_NODE.replace("      labels:\n        k8s-app: aws-node", "      labels:\n        k8s-app: other");
    let refused = k(
        &["apply", "--validate=false", "-f", "-"],
        Some(&bad.replace("name: aws-node\n  namespace", "name: other\n  namespace")),
    );
    assert_eq!(refused.code, Some(1));
    assert_eq!(
        refused.stderr.trim(),
        "The DaemonSet \"other\" is invalid: spec.template.metadata.labels: Invalid value: {\"k8s-app\":\"other\"}: `selector` does not match template `labels`"
    );
}
