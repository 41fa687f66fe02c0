//! The `kubernetes` Service reaches the apiserver, across the real processes: the apiserver
//! keeps the EndpointSlice `default/kubernetes` pointing at its own address and port (its
//! endpoint reconciler), kube-proxy programs 10.96.0.1:443 from it like any Service, and a pod's
//! `nc -zv 10.96.0.1 443` connects to the apiserver through the node's kernel. A deleted slice
//! comes back. The apiserver listens on loopback here, so it runs with
//! `--allow-loopback-endpoints`, as under `netlab up`.

use std::time::Duration;

use netlab_e2e::{
    Apiserver, Component, Run, block_on, eventually, free_port, netlab,
    parts::{self, Node},
};

/// Longer than the reconciler's 10 s interval.
const WAIT: Duration = Duration::from_secs(40);
const NODE: &str = "node-1";
const NODE_IP: &str = "127.0.1.1";

const CLIENT: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: default
spec:
  nodeName: node-1
  containers:
  - name: client
    image: nicolaka/netshoot:v0.13
    command: ["sleep", "infinity"]
"#;

struct Lab {
    // Drop order: the proxy and the agent first, the apiserver last.
    _proxy: Component,
    _agent: Component,
    _cm: Component,
    _cloud: Component,
    api: Apiserver,
    _dir: tempfile::TempDir,
}

impl Lab {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let api = Apiserver::start(&dir.path().join("api"), &["--allow-loopback-endpoints"]);
        let url = api.url();
        let (cloud, registry) = parts::cloud();
        let cm = parts::controller_manager(&url, &[]);
        let node = Node { name: NODE, ip: NODE_IP, port: free_port() };
        let agent = node.agent(&url, dir.path(), &registry, &[]);
        let proxy = node.proxy(&url, "iptables", &[]);
        Self { _proxy: proxy, _agent: agent, _cm: cm, _cloud: cloud, api, _dir: dir }
    }

    fn netlab(&self, args: &[&str]) -> Run {
        netlab(&self.api.url(), args, None)
    }

    /// The slice's `address:port`, once it exists.
    fn endpoint(&self) -> Option<String> {
        let run = self.netlab(&[
            "get",
            "endpointslice",
            "kubernetes",
            "-n",
            "default",
            "-o",
            "jsonpath={.endpoints[0].addresses[0]}:{.ports[0].port}",
        ]);
        (run.code == Some(0)).then(|| run.stdout.trim().to_string())
    }
}

#[test]
fn the_kubernetes_service_leads_to_the_apiserver() {
    let lab = Lab::start();
    let api = lab.api.url();
    let api_addr = api.trim_start_matches("http://").to_string();

    // The apiserver publishes itself, with the labels and port name a real one uses.
    let endpoint = block_on(eventually("the kubernetes EndpointSlice", WAIT, || async { lab.endpoint() }));
    assert_eq!(endpoint, api_addr);
    let labels = lab
        .netlab(&["get", "endpointslice", "kubernetes", "-n", "default", "-o", "jsonpath={.metadata.labels}"])
        .ok()
        .stdout;
    assert!(labels.contains("\"kubernetes.io/service-name\":\"kubernetes\""), "{labels}");
    assert!(!labels.contains("managed-by"), "{labels}");
    let port = lab
        .netlab(&[
            "get",
            "endpointslice",
            "kubernetes",
            "-n",
            "default",
            "-o",
            "jsonpath={.ports[0].name}/{.ports[0].protocol}",
        ])
        .ok()
        .stdout;
    assert_eq!(port.trim(), "https/TCP");

    // kube-proxy programs it like any Service: an endpoint chain, no REJECT.
    let dnat = format!("-j DNAT --to-destination {api_addr}");
    let rules = block_on(eventually("the kubernetes Service's endpoint chain", WAIT, || async {
        // Until node-1 has registered, the CLI answers NotFound: wait on.
        let run = lab.netlab(&["node", "iptables-save", NODE]);
        (run.code == Some(0) && run.stdout.contains(&dnat)).then_some(run.stdout)
    }));
    assert!(rules.contains("--comment \"default/kubernetes:https cluster IP\""), "{rules}");
    assert!(!rules.contains("default/kubernetes:https has no endpoints"), "{rules}");

    // A pod reaches the apiserver at 10.96.0.1:443.
    netlab(&api, &["apply", "-f", "-"], Some(CLIENT)).ok();
    let nc = block_on(eventually("nc to the kubernetes Service", WAIT, || async {
        let run = lab.netlab(&["exec", "client", "--", "nc", "-zv", "-w", "2", "10.96.0.1", "443"]);
        (run.code == Some(0)).then_some(run)
    }));
    assert_eq!(nc.stderr, "Connection to 10.96.0.1 443 port [tcp/https] succeeded!\n", "{nc:?}");

    // Deleted, it comes back at the reconciler's next pass.
    lab.netlab(&["delete", "endpointslice", "kubernetes", "-n", "default"]).ok();
    let back = block_on(eventually("the kubernetes EndpointSlice back", WAIT, || async { lab.endpoint() }));
    assert_eq!(back, api_addr);
}
