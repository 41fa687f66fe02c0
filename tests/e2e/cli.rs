//! The `netlab` CLI against a real apiserver: apply, get (tables, yaml, jsonpath, name), describe,
//! scale, delete, namespaces, and kubectl's error wording.

use netlab_e2e::Apiserver;

struct Lab {
    api: Apiserver,
    _data: tempfile::TempDir,
}

struct Run {
    stdout: String,
    stderr: String,
    code: i32,
}

impl Lab {
    fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        Self { api: Apiserver::start(data.path(), &[]), _data: data }
    }

    fn netlab(&self, args: &[&str]) -> Run {
        self.netlab_stdin(args, "")
    }

    fn netlab_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let r = netlab_e2e::netlab(&self.api.url(), args, Some(stdin));
        Run { stdout: r.stdout, stderr: r.stderr, code: r.code.unwrap_or(-1) }
    }
}

const SVC: &str = "apiVersion: v1
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

const DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders
spec:
  replicas: 2
  selector:
    matchLabels:
      app: orders
  template:
    metadata:
      labels:
        app: orders
    spec:
      containers:
      - name: web
        image: nginx:1.25
";

#[test]
fn apply_get_describe_delete() {
    let lab = Lab::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("svc.yaml"), SVC).unwrap();
    std::fs::write(dir.path().join("deploy.yaml"), DEPLOY).unwrap();
    let d = dir.path().to_str().unwrap();

    let r = lab.netlab(&["apply", "-f", d]);
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str(), r.code),
        ("deployment.apps/orders created\nservice/orders created\n", "", 0)
    );
    let r = lab.netlab(&["apply", "-f", d]);
    assert_eq!(r.stdout, "deployment.apps/orders unchanged\nservice/orders unchanged\n", "{}", r.stderr);

    let r = lab.netlab(&["get", "svc", "orders"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut lines = r.stdout.lines();
    assert!(lines.next().unwrap().starts_with("NAME     TYPE        CLUSTER-IP"), "{}", r.stdout);
    let row = lines.next().unwrap();
    assert!(row.starts_with("orders   ClusterIP   10."), "{row}");
    assert!(row.contains("   <none>        80/TCP    "), "{row}");

    let ip = lab.netlab(&["get", "service/orders", "-o", "jsonpath={.spec.clusterIP}"]).stdout;
    assert!(ip.starts_with("10."), "{ip}");
    let yaml = lab.netlab(&["get", "svc", "orders", "-o", "yaml"]).stdout;
    assert!(yaml.starts_with("apiVersion: v1\nkind: Service\nmetadata:\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: |\n"), "{yaml}");
    assert!(yaml.contains(&format!("  clusterIP: {ip}\n")), "{yaml}");

    let r = lab.netlab(&["describe", "svc", "orders"]);
    assert!(
        r.stdout.starts_with("Name:                     orders\nNamespace:                default\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(&format!("IP:                       {ip}\n")), "{}", r.stdout);
    assert!(
        r.stdout.contains("Port:                     http  80/TCP\nTargetPort:               8080/TCP\n"),
        "{}",
        r.stdout
    );

    let r = lab.netlab(&["get", "deploy", "-o", "name"]);
    assert_eq!(r.stdout, "deployment.apps/orders\n");

    let r = lab.netlab(&["scale", "deploy/orders", "--replicas=4"]);
    assert_eq!(r.stdout, "deployment.apps/orders scaled\n", "{}", r.stderr);
    assert_eq!(lab.netlab(&["get", "deploy", "orders", "-o", "jsonpath={.spec.replicas}"]).stdout, "4");

    let r = lab.netlab(&["delete", "svc", "orders", "nope"]);
    assert_eq!(r.stdout, "service \"orders\" deleted\n");
    assert_eq!(r.stderr, "Error from server (NotFound): services \"nope\" not found\n");
    assert_eq!(r.code, 1);
    let r = lab.netlab(&["get", "svc", "orders"]);
    assert_eq!(
        (r.stderr.as_str(), r.code),
        ("Error from server (NotFound): services \"orders\" not found\n", 1)
    );
}

#[test]
fn errors_are_reported_like_kubectl() {
    let lab = Lab::start();
    let r = lab.netlab_stdin(&["apply", "-f", "-"], &SVC.replace("name: orders", "name: Orders"));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with("The Service \"Orders\" is invalid: metadata.name: Invalid value: \"Orders\""),
        "{}",
        r.stderr
    );

    // A type error anywhere means nothing is sent at all.
    let both = format!("{DEPLOY}---\n{}", SVC.replace("port: 80", "port: eighty"));
    let r = lab.netlab_stdin(&["apply", "-f", "-"], &both);
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str(), r.code),
        (
            "",
            "error: error validating \"STDIN\": spec.ports[0].port: invalid type: string \"eighty\", expected i32 at line 30 column 11\n",
            1
        )
    );
    let r = lab.netlab(&["get", "deploy"]);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", "No resources found in default namespace.\n"));

    let r = lab.netlab(&["get", "foo"]);
    assert_eq!(r.stderr, "error: the server doesn't have a resource type \"foo\"\n");
}

#[test]
fn namespaces_and_listing() {
    let lab = Lab::start();
    let r =
        lab.netlab_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n");
    assert_eq!(r.stdout, "namespace/demo created\n", "{}", r.stderr);
    let r = lab.netlab_stdin(&["apply", "-n", "demo", "-f", "-"], SVC);
    assert_eq!(r.stdout, "service/orders created\n", "{}", r.stderr);
    let r = lab.netlab(&["get", "svc", "-n", "demo", "-o", "name"]);
    assert_eq!(r.stdout, "service/orders\n");
    let r = lab.netlab(&["get", "cm", "-n", "demo"]);
    assert_eq!(r.stderr, "No resources found in demo namespace.\n");
    let r = lab.netlab(&["get", "svc", "-A"]);
    assert!(r.stdout.starts_with("NAMESPACE     NAME"), "{}", r.stdout);
    let row = r.stdout.lines().find(|l| l.starts_with("demo ")).unwrap_or_default();
    assert_eq!(
        row.split_whitespace().take(3).collect::<Vec<_>>(),
        ["demo", "orders", "ClusterIP"],
        "{}",
        r.stdout
    );
    let r = lab.netlab(&["get", "ns", "demo"]);
    assert!(r.stdout.starts_with("NAME   STATUS   AGE\ndemo   Active   "), "{}", r.stdout);
}

#[test]
fn hostile_manifests_are_refused_before_anything_is_sent() {
    let lab = Lab::start();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let refused = |path: &str, expect: &str| {
        let r = lab.netlab(&["apply", "-f", path]);
        assert_eq!((r.code, r.stdout.as_str()), (1, ""), "{path}: {}", r.stderr);
        assert_eq!(r.stderr.trim_end(), expect, "{path}");
    };
    refused("/nonexistent.yaml", "error: the path \"/nonexistent.yaml\" does not exist");

    // A syntax error, with go-yaml's line.
    let broken = file(
        "broken.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  labels: {a: b\nspec: {}\n",
    );
    refused(
        &broken,
        &format!(
            "error: error parsing {broken}: error converting YAML to JSON: yaml: line 5: did not find expected ',' or '}}'"
        ),
    );

    // A billion laughs: nine levels of nine aliases.
    let mut bomb =
        String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for i in 1..10 {
        let prev = if i == 1 { "a".to_string() } else { format!("l{}", i - 1) };
        bomb.push_str(&format!("l{i}: &l{i} [{}]\n", vec![format!("*{prev}"); 9].join(",")));
    }
    let bomb = file("bomb.yaml", &bomb);
    refused(
        &bomb,
        &format!(
            "error: error parsing {bomb}: error converting YAML to JSON: yaml: repetition limit exceeded"
        ),
    );

    // 100,000 nested brackets: go-yaml's flow-depth limit, at once (the parser alone took a
    // minute over this).
    let deep = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  x: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let deep = file("deep.yaml", &deep);
    refused(
        &deep,
        &format!(
            "error: error parsing {deep}: error converting YAML to JSON: yaml: line 6: exceeded max depth of 10000"
        ),
    );

    // Names one past their limit get the apiserver's messages; nothing was created meanwhile.
    let long = "a".repeat(64);
    let r = lab.netlab_stdin(
        &["apply", "-f", "-"],
        &SVC.replace("name: orders\n  labels", &format!("name: {long}\n  labels")),
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("must be no more than 63 characters"), "{}", r.stderr);
    let r = lab.netlab(&["get", "svc", "-o", "name"]);
    assert_eq!(r.stdout, "service/kubernetes\n");
}

const KUBE_PROXY: &str = "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: kube-proxy
  namespace: kube-system
spec:
  selector:
    matchLabels:
      k8s-app: kube-proxy
  template:
    metadata:
      labels:
        k8s-app: kube-proxy
    spec:
      containers:
      - name: kube-proxy
        image: registry.k8s.io/kube-proxy:v1.32.0
";

#[test]
fn daemon_sets_apply_get_and_describe() {
    let lab = Lab::start();
    let applied = lab.netlab_stdin(&["apply", "-f", "-"], KUBE_PROXY);
    assert_eq!(
        (applied.code, applied.stdout.as_str()),
        (0, "daemonset.apps/kube-proxy created\n"),
        "{}",
        applied.stderr
    );
    let table = lab.netlab(&["get", "ds", "-n", "kube-system"]);
    let mut lines = table.stdout.lines();
    assert_eq!(
        lines.next().unwrap_or_default().split_whitespace().collect::<Vec<_>>(),
        ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE", "SELECTOR", "AGE"],
        "{}",
        table.stdout
    );
    assert_eq!(
        lines.next().unwrap_or_default().split_whitespace().collect::<Vec<_>>()[..7],
        ["kube-proxy", "0", "0", "0", "0", "0", "<none>"],
        "{}",
        table.stdout
    );
    let generation = lab.netlab(&[
        "get",
        "daemonset.apps/kube-proxy",
        "-n",
        "kube-system",
        "-o",
        "jsonpath={.metadata.annotations.deprecated\\.daemonset\\.template\\.generation} {.spec.updateStrategy.rollingUpdate.maxUnavailable} {.spec.revisionHistoryLimit}",
    ]);
    assert_eq!(generation.stdout, "1 1 10", "{}", generation.stderr);
    let page = lab.netlab(&["describe", "ds", "kube-proxy", "-n", "kube-system"]);
    assert!(
        page.stdout.starts_with("Name:           kube-proxy\nSelector:       k8s-app=kube-proxy\n"),
        "{}",
        page.stdout
    );
    let all = lab.netlab(&["get", "all", "-n", "kube-system"]);
    assert!(all.stdout.lines().any(|l| l.starts_with("daemonset.apps/kube-proxy ")), "{}", all.stdout);
    let deleted = lab.netlab(&["delete", "ds", "kube-proxy", "-n", "kube-system"]);
    assert_eq!(deleted.stdout, "daemonset.apps \"kube-proxy\" deleted\n", "{}", deleted.stderr);
}
