//! Command lines as a person types them → the objects they create, compared field by field with
//! the Chaos Mesh manifests a user would otherwise write by hand.

use clap::Parser as _;
use serde_json::{Value, json};

use super::*;
use crate::{Cli, config::Command};

const NAMESPACES: [&str; 3] = ["default", "demo", "kube-system"];

/// Parses `netlab fault ARGS...` as the binary does, then builds the object in namespace `demo`.
fn build(args: &[&str]) -> Result<Value, String> {
    let argv = ["netlab", "fault"].iter().chain(args).copied();
    let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    let Command::Fault(cmd) = cli.command else { panic!("not a fault command") };
    let all: Vec<String> = NAMESPACES.iter().map(|s| s.to_string()).collect();
    let at = Place { namespace: "demo", all_namespaces: &all, suffix: "x7k2p" };
    let built = fault(&cmd, &at).expect("a creating subcommand");
    built.map(|f| to_json(&f)).map_err(|e| e.to_string())
}

fn ok(args: &[&str]) -> Value {
    build(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn err(args: &[&str]) -> String {
    match build(args) {
        Ok(v) => panic!("{args:?} built {v}"),
        Err(e) => e,
    }
}

fn pods(ns: &str, labels: Value) -> Value {
    json!({"namespaces": [ns], "labelSelectors": labels})
}

#[test]
fn net_with_several_effects_is_one_netem() {
    let v = ok(&[
        "net",
        "--from",
        "app=client",
        "--to",
        "app=orders",
        "--loss",
        "30%",
        "--delay",
        "200ms",
        "--jitter",
        "50ms",
        "--correlation",
        "25",
    ]);
    assert_eq!(
        v,
        json!({
            "apiVersion": "chaos.netlab.io/v1alpha1",
            "kind": "NetworkChaos",
            "metadata": {"name": "net-client-orders-x7k2p", "namespace": "demo"},
            "spec": {
                "action": "netem",
                "mode": "all",
                "selector": pods("demo", json!({"app": "client"})),
                "target": {"mode": "all", "selector": pods("demo", json!({"app": "orders"}))},
                "delay": {"latency": "200ms", "jitter": "50ms", "correlation": "25"},
                "loss": {"loss": "30", "correlation": "25"},
            }
        })
    );
}

#[test]
fn net_with_one_effect_takes_its_action() {
    let v = ok(&["net", "--from", "app=client", "--loss", "30"]);
    assert_eq!(v["spec"]["action"], "loss");
    assert_eq!(v["spec"]["loss"], json!({"loss": "30"}));
    assert!(v["spec"].get("target").is_none());
    assert_eq!(v["metadata"]["name"], "net-client-x7k2p");

    let v =
        ok(&["net", "--from", "app=client", "--duplicate", "5%", "--direction", "both", "--to", "app=db"]);
    assert_eq!(v["spec"]["action"], "duplicate");
    assert_eq!(v["spec"]["direction"], "both");

    let v = ok(&[
        "net",
        "--from",
        "app=client",
        "--corrupt",
        "1%",
        "--to-cidr",
        "10.0.0.0/8",
        "--duration",
        "60s",
    ]);
    assert_eq!(v["spec"]["action"], "corrupt");
    assert_eq!(v["spec"]["externalTargets"], json!(["10.0.0.0/8"]));
    assert_eq!(v["spec"]["duration"], "60s");
    assert_eq!(v["metadata"]["name"], "net-client-10-0-0-0-8-x7k2p");

    let v = ok(&[
        "net",
        "--from",
        "app=orders",
        "--rate",
        "1mbps",
        "--name",
        "slow",
        "--mode",
        "fixed",
        "--value",
        "2",
    ]);
    assert_eq!(v["metadata"]["name"], "slow");
    assert_eq!(v["spec"]["action"], "bandwidth");
    assert_eq!(v["spec"]["bandwidth"], json!({"rate": "1mbps", "limit": 20_971_520, "buffer": 10_000}));
    assert_eq!((&v["spec"]["mode"], &v["spec"]["value"]), (&json!("fixed"), &json!("2")));
}

#[test]
fn net_flag_errors_name_the_flag_and_what_is_allowed() {
    let base = ["net", "--from", "app=client"];
    let with = |extra: &[&str]| err(&[&base[..], extra].concat());
    assert_eq!(with(&["--loss", "130%"]), "--loss 130%: must be a percentage between 0 and 100");
    assert_eq!(with(&["--corrupt", "x"]), "--corrupt x: must be a percentage between 0 and 100");
    assert_eq!(
        with(&["--delay", "200"]),
        "--delay 200: must be a number and one unit (ns, us, ms, s, m or h), e.g. 200ms"
    );
    assert_eq!(
        with(&["--loss", "5", "--jitter", "5ms"]),
        "--jitter needs --delay: it spreads the added delay"
    );
    assert!(with(&["--loss", "5", "--rate", "1mbps"]).starts_with("--rate cannot be combined with --delay"));
    assert!(with(&["--rate", "fast"]).starts_with("--rate fast: must be a whole number and a unit"));
    assert!(with(&[]).starts_with("nothing to inject"));
    assert!(with(&["--loss", "5", "--duration", "soon"]).starts_with("--duration soon: must be a duration"));
    assert_eq!(
        err(&["net", "--from", "client", "--loss", "5"]),
        "--from client: must be labels as key=value[,key=value], e.g. app=client"
    );
    // Closed sets are clap's: it lists the possible values.
    let e = with(&["--loss", "5", "--direction", "up"]);
    assert!(
        e.contains("invalid value 'up' for '--direction") && e.contains("[possible values: to, from, both]"),
        "{e}"
    );
    let e = err(&["net", "--loss", "5"]);
    assert!(e.contains("--from <LABELS>"), "{e}");
}

#[test]
fn partition_between_nodes_spans_every_namespace_both_ways() {
    let v = ok(&["partition", "node-1", "node-2"]);
    let on = |node: &str| json!({"namespaces": NAMESPACES, "nodes": [node]});
    assert_eq!(
        v["spec"],
        json!({
            "action": "partition",
            "direction": "both",
            "mode": "all",
            "selector": on("node-1"),
            "target": {"mode": "all", "selector": on("node-2")},
        })
    );
    assert_eq!(v["metadata"]["name"], "partition-node-1-node-2-x7k2p");

    let v = ok(&["partition", "--from", "app=a", "--to", "app=b", "--direction", "to"]);
    assert_eq!(v["spec"]["selector"], pods("demo", json!({"app": "a"})));
    assert_eq!(v["spec"]["target"]["selector"], pods("demo", json!({"app": "b"})));
    assert_eq!(v["spec"]["direction"], "to");

    assert!(err(&["partition", "node-1"]).starts_with("partition needs a second node"));
    assert!(err(&["partition"]).starts_with("partition needs two nodes"));
    assert!(err(&["partition", "node-1", "--from", "app=a"]).contains("cannot be used with"));
}

#[test]
fn dns_errors_map_to_chaos_meshs_actions() {
    let v = ok(&[
        "dns",
        "--pods",
        "app=client",
        "--names",
        "orders.*",
        "--error",
        "SERVFAIL",
        "--duration",
        "60s",
    ]);
    assert_eq!(
        v["spec"],
        json!({
            "action": "error",
            "mode": "all",
            "selector": pods("demo", json!({"app": "client"})),
            "patterns": ["orders.*"],
            "duration": "60s",
        })
    );
    assert_eq!(v["kind"], "DNSChaos");
    assert_eq!(v["metadata"]["name"], "dns-client-x7k2p");
    let action = |e: &str| {
        let v = ok(&["dns", "--pods", "app=client", "--error", e]);
        (v["spec"]["action"].clone(), v["spec"].get("rcode").cloned())
    };
    assert_eq!(action("nxdomain"), (json!("error"), Some(json!("NXDOMAIN"))));
    assert_eq!(action("REFUSED"), (json!("error"), Some(json!("REFUSED"))));
    assert_eq!(action("timeout"), (json!("timeout"), None));
    assert_eq!(action("random-ip"), (json!("random"), None));
    let v = ok(&["dns", "--pods", "app=client", "--delay", "2s", "--names", "a.*,b.*"]);
    assert_eq!((&v["spec"]["action"], &v["spec"]["delay"]), (&json!("delay"), &json!("2s")));
    assert_eq!(v["spec"]["patterns"], json!(["a.*", "b.*"]));

    assert!(err(&["dns", "--pods", "app=client"]).contains("--error <ERROR>"));
    assert!(err(&["dns", "--pods", "app=client", "--error", "BOGUS"]).contains("possible values"));
    assert!(
        err(&["dns", "--pods", "app=client", "--error", "timeout", "--delay", "1s"])
            .contains("cannot be used with")
    );
}

#[test]
fn pod_actions() {
    let v = ok(&["pod", "kill", "--pods", "app=orders", "--grace-period", "0"]);
    assert_eq!(
        v["spec"],
        json!({"action": "pod-kill", "mode": "all", "selector": pods("demo", json!({"app": "orders"})), "gracePeriod": 0})
    );
    assert_eq!(v["metadata"]["name"], "pod-kill-orders-x7k2p");
    let v = ok(&["pod", "kill-container", "--pods", "app=orders", "--container", "app", "--mode", "one"]);
    assert_eq!(v["spec"]["action"], "container-kill");
    assert_eq!(v["spec"]["containerNames"], json!(["app"]));
    assert_eq!(v["spec"]["mode"], "one");
    let v = ok(&["pod", "fail", "--pods", "app=orders", "--duration", "2m"]);
    assert_eq!((&v["spec"]["action"], &v["spec"]["duration"]), (&json!("pod-failure"), &json!("2m")));

    assert!(err(&["pod", "kill-container", "--pods", "app=orders"]).contains("--container <NAME>"));
    assert_eq!(
        err(&["pod", "fail", "--pods", "app=o", "--grace-period", "5"]),
        "--grace-period applies to kill only"
    );
    assert_eq!(
        err(&["pod", "kill", "--pods", "app=o", "--container", "app"]),
        "--container applies to kill-container only"
    );
    assert_eq!(
        err(&["pod", "kill", "--pods", "app=o", "--grace-period=-1"]),
        "--grace-period -1: must be 0 or more seconds"
    );
}

#[test]
fn components() {
    let v = ok(&["stop", "dns"]);
    assert_eq!(v["kind"], "ComponentChaos");
    assert_eq!(v["spec"], json!({"action": "stop", "component": "dns"}));
    assert_eq!(v["metadata"]["name"], "stop-dns-x7k2p");
    let v = ok(&["pause", "kube-proxy", "node-1", "--duration", "30s"]);
    assert_eq!(
        v["spec"],
        json!({"action": "pause", "component": "kube-proxy", "nodes": ["node-1"], "duration": "30s"})
    );
    assert_eq!(v["metadata"]["name"], "pause-kube-proxy-node-1-x7k2p");
    assert_eq!(ok(&["kill", "kubelet"])["spec"]["action"], "kill");

    assert_eq!(err(&["stop", "dns", "node-1"]), "dns runs once per cluster, not on each node: drop node-1");
    assert!(err(&["stop", "etcd"]).contains(
        "[possible values: apiserver, controller-manager, scheduler, dns, cloud, kube-proxy, kubelet]"
    ));
}

#[test]
fn registry_upstream_exhaustion() {
    let v = ok(&["registry", "--repo", "library/nginx*", "--status", "429"]);
    assert_eq!(v["spec"], json!({"action": "error", "repositories": ["library/nginx*"], "statusCode": 429}));
    assert_eq!(v["metadata"]["name"], "registry-429-x7k2p");
    assert_eq!(ok(&["registry", "--delay", "5s"])["spec"], json!({"action": "delay", "delay": "5s"}));
    assert_eq!(ok(&["registry", "--unreachable"])["spec"], json!({"action": "unreachable"}));
    assert_eq!(
        err(&["registry", "--status", "418"]),
        "--status 418: must be one of 401, 403, 404, 429, 500, 502, 503"
    );
    assert!(err(&["registry", "--status", "429", "--unreachable"]).contains("cannot be used with"));
    assert!(err(&["registry"]).contains("required arguments were not provided"));

    let v = ok(&["upstream", "--unreachable"]);
    assert_eq!((&v["kind"], &v["spec"]), (&json!("UpstreamDNSChaos"), &json!({"action": "unreachable"})));
    assert_eq!(v["metadata"]["name"], "upstream-unreachable-x7k2p");
    assert_eq!(ok(&["upstream", "--delay", "2s"])["spec"], json!({"action": "delay", "delay": "2s"}));
    assert_eq!(
        ok(&["upstream", "--servfail", "--names", "example.*"])["spec"],
        json!({"action": "servfail", "patterns": ["example.*"]})
    );

    let v = ok(&["exhaust", "pod-cidr", "node-1"]);
    assert_eq!(
        (&v["kind"], &v["spec"]),
        (&json!("ExhaustionChaos"), &json!({"action": "pod-cidr", "nodes": ["node-1"]}))
    );
    assert_eq!(v["metadata"]["name"], "exhaust-pod-cidr-node-1-x7k2p");
    assert_eq!(ok(&["exhaust", "conntrack"])["spec"], json!({"action": "conntrack"}));
    assert_eq!(
        err(&["exhaust", "service-cidr", "node-1"]),
        "service-cidr is the cluster's, not a node's: drop node-1"
    );
}

#[test]
fn built_objects_read_back_as_their_kind() {
    // What the CLI sends is what the shared types (and so the apiserver and enforcers) read.
    for args in [
        &["net", "--from", "app=a", "--loss", "1"][..],
        &["dns", "--pods", "app=a", "--error", "timeout"],
        &["stop", "apiserver"],
    ] {
        let v = ok(args);
        let r = netlab_proto::apiserver::v1::Resource::from_kind(v["kind"].as_str().unwrap()).unwrap();
        let back = Fault::from_json(r, &serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(to_json(&back), v);
    }
}
