//! Black-box tests: the `netlab` binary against a real `netlab-apiserver` process.
//!
//! The apiserver is another package's binary, which `cargo test -p netlab-cli` does not build, so
//! the harness looks for it next to the `netlab` binary (or at `$NETLAB_APISERVER_BIN`) and skips
//! with a note when it is missing: run `cargo build -p netlab-apiserver` first.

use std::{
    io::Write as _,
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A running apiserver on a free port with its own data directory, killed on drop.
struct Lab {
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
}

/// What one `netlab` invocation printed.
#[derive(Debug)]
struct Run {
    stdout: String,
    stderr: String,
    code: i32,
}

fn apiserver_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("NETLAB_APISERVER_BIN") {
        return Some(PathBuf::from(p));
    }
    let netlab = PathBuf::from(env!("CARGO_BIN_EXE_netlab"));
    let sibling = netlab.with_file_name(format!("netlab-apiserver{}", std::env::consts::EXE_SUFFIX));
    sibling.exists().then_some(sibling)
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

// === impl Lab ===

impl Lab {
    /// Starts an apiserver, or returns None (and says why) when its binary was not built.
    fn start() -> Option<Self> {
        let Some(bin) = apiserver_binary() else {
            eprintln!("skipping: netlab-apiserver is not built; run `cargo build -p netlab-apiserver`");
            return None;
        };
        let data = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new(bin)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lab = Lab { child, port, _data: data };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "apiserver did not start listening on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(lab)
    }

    fn netlab(&self, args: &[&str]) -> Run {
        self.netlab_stdin(args, "")
    }

    fn netlab_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = Command::new(env!("CARGO_BIN_EXE_netlab"))
            .arg("--server")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(args)
            .env_remove("NETLAB_NAMESPACE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        Run {
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
            code: out.status.code().unwrap_or(-1),
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    let Some(lab) = Lab::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("svc.yaml"), SVC).unwrap();
    std::fs::write(dir.path().join("deploy.yaml"), DEPLOY).unwrap();
    let d = dir.path().to_str().unwrap();

    let r = lab.netlab(&["apply", "-f", d]);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str(), r.code), ("deployment.apps/orders created\nservice/orders created\n", "", 0));
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
    assert!(r.stdout.starts_with("Name:                     orders\nNamespace:                default\n"), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("IP:                       {ip}\n")), "{}", r.stdout);
    assert!(r.stdout.contains("Port:                     http  80/TCP\nTargetPort:               8080/TCP\n"), "{}", r.stdout);

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
    assert_eq!((r.stderr.as_str(), r.code), ("Error from server (NotFound): services \"orders\" not found\n", 1));
}

#[test]
fn errors_are_reported_like_kubectl() {
    let Some(lab) = Lab::start() else { return };
    let r = lab.netlab_stdin(&["apply", "-f", "-"], &SVC.replace("name: orders", "name: Orders"));
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("The Service \"Orders\" is invalid: metadata.name: Invalid value: \"Orders\""), "{}", r.stderr);

    // A type error anywhere means nothing is sent at all.
    let both = format!("{DEPLOY}---\n{}", SVC.replace("port: 80", "port: eighty"));
    let r = lab.netlab_stdin(&["apply", "-f", "-"], &both);
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str(), r.code),
        ("", "error: error validating \"STDIN\": spec.ports[0].port: invalid type: string \"eighty\", expected i32 at line 30 column 11\n", 1)
    );
    let r = lab.netlab(&["get", "deploy"]);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", "No resources found in default namespace.\n"));

    let r = lab.netlab(&["get", "foo"]);
    assert_eq!(r.stderr, "error: the server doesn't have a resource type \"foo\"\n");

    let port = free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_netlab"))
        .args(["--server", &format!("127.0.0.1:{port}"), "get", "pods"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!("The connection to the server 127.0.0.1:{port} was refused - did you specify the right host or port?\n")
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn namespaces_and_listing() {
    let Some(lab) = Lab::start() else { return };
    let r = lab.netlab_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n");
    assert_eq!(r.stdout, "namespace/demo created\n", "{}", r.stderr);
    let r = lab.netlab_stdin(&["apply", "-n", "demo", "-f", "-"], SVC);
    assert_eq!(r.stdout, "service/orders created\n", "{}", r.stderr);
    let r = lab.netlab(&["get", "svc", "-n", "demo", "-o", "name"]);
    assert_eq!(r.stdout, "service/orders\n");
    let r = lab.netlab(&["get", "cm", "-n", "demo"]);
    assert_eq!(r.stderr, "No resources found in demo namespace.\n");
    let r = lab.netlab(&["get", "svc", "-A"]);
    assert!(r.stdout.starts_with("NAMESPACE     NAME"), "{}", r.stdout);
    assert!(r.stdout.lines().any(|l| l.starts_with("demo          orders   ClusterIP")), "{}", r.stdout);
    let r = lab.netlab(&["get", "ns", "demo"]);
    assert!(r.stdout.starts_with("NAME   STATUS   AGE\ndemo   Active   "), "{}", r.stdout);
}
