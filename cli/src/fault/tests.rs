//! `netlab fault` against the in-memory fake apiserver: what a shortcut prints and creates, and
//! how `list` and `delete` find faults across kinds and namespaces.

use clap::Parser as _;
use serde_json::json;

use super::*;
use crate::{Cli, client::fake::FakeCluster, config::Command, report::render};

fn now() -> Timestamp {
    "2024-05-01T10:05:12Z".parse().unwrap()
}

/// Runs `netlab [-n NS] fault ARGS...` against `api`: (stdout, stderr, problems).
async fn run(api: &mut FakeCluster, args: &[&str]) -> (String, String, String) {
    let cli = Cli::try_parse_from(["netlab"].iter().chain(args).copied()).expect("parses");
    let Command::Fault(cmd) = &cli.command else { panic!("not a fault command") };
    let ns = cli.namespace();
    let scope = Scope { namespace: &ns.name, explicit: ns.explicit };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let problems = fault(api, cmd, scope, &mut out, &mut err, now()).await;
    (String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap(), render(&problems))
}

#[tokio::test]
async fn a_shortcut_prints_the_object_it_created() {
    let mut api = FakeCluster::default();
    let (out, err, problems) = run(
        &mut api,
        &["-n", "demo", "fault", "dns", "--pods", "app=client", "--error", "NXDOMAIN", "--name", "nx"],
    )
    .await;
    assert_eq!((err.as_str(), problems.as_str()), ("", ""));
    assert_eq!(
        out,
        "\
apiVersion: chaos.netlab.io/v1alpha1
kind: DNSChaos
metadata:
  name: nx
  namespace: demo
spec:
  action: error
  mode: all
  rcode: NXDOMAIN
  selector:
    labelSelectors:
      app: client
    namespaces:
    - demo
dnschaos.chaos.netlab.io/nx created
"
    );
    assert_eq!(api.writes, ["create dnschaos.chaos.netlab.io/nx"]);
    assert_eq!(api.object(Resource::DnsChaos, "demo", "nx").unwrap()["spec"]["rcode"], "NXDOMAIN");

    // A second one with the same name is refused by the server, and nothing is printed.
    let (out, _, problems) = run(
        &mut api,
        &["-n", "demo", "fault", "dns", "--pods", "app=client", "--error", "timeout", "--name", "nx"],
    )
    .await;
    assert_eq!(out, "");
    assert_eq!(problems, "Error from server (AlreadyExists): dnschaos.chaos.netlab.io \"nx\" already exists");
}

#[tokio::test]
async fn bad_flags_are_reported_before_anything_is_sent() {
    let mut api = FakeCluster::default();
    let (out, _, problems) = run(&mut api, &["fault", "net", "--from", "app=a", "--loss", "130%"]).await;
    assert_eq!(out, "");
    assert_eq!(problems, "error: --loss 130%: must be a percentage between 0 and 100");
    assert!(api.writes.is_empty());
}

#[tokio::test]
async fn dry_run_creates_nothing() {
    let mut api = FakeCluster::default();
    let (out, _, problems) = run(&mut api, &["fault", "stop", "dns", "--name", "s", "--dry-run"]).await;
    assert_eq!(problems, "");
    assert!(
        out.ends_with(
            "spec:\n  action: stop\n  component: dns\ncomponentchaos.chaos.netlab.io/s created (dry run)\n"
        ),
        "{out}"
    );
    assert!(api.writes.is_empty());
}

#[tokio::test]
async fn node_partitions_select_in_every_namespace_there_is() {
    let mut api = FakeCluster::default();
    for ns in ["default", "demo"] {
        api.seed(Resource::Namespaces, json!({"metadata": {"name": ns}}));
    }
    let (_, _, problems) = run(&mut api, &["fault", "partition", "node-1", "node-2", "--name", "p"]).await;
    assert_eq!(problems, "");
    let p = api.object(Resource::NetworkChaos, "default", "p").unwrap();
    assert_eq!(p["spec"]["selector"], json!({"namespaces": ["default", "demo"], "nodes": ["node-1"]}));
    assert_eq!(
        p["spec"]["target"]["selector"],
        json!({"namespaces": ["default", "demo"], "nodes": ["node-2"]})
    );
}

fn seed(api: &mut FakeCluster, r: Resource, ns: &str, name: &str) {
    api.seed(
        r,
        json!({"apiVersion": "chaos.netlab.io/v1alpha1", "kind": r.kind(),
               "metadata": {"name": name, "namespace": ns, "creationTimestamp": "2024-05-01T10:00:00Z"},
               "spec": {"action": "stop"}}),
    );
}

#[tokio::test]
async fn list_spans_kinds_and_namespaces_unless_told() {
    let mut api = FakeCluster::default();
    let (_, err, problems) = run(&mut api, &["fault", "list"]).await;
    assert_eq!((err.as_str(), problems.as_str()), ("No resources found\n", ""));

    seed(&mut api, Resource::ComponentChaos, "default", "b");
    seed(&mut api, Resource::NetworkChaos, "demo", "a");
    let (out, _, _) = run(&mut api, &["fault", "list"]).await;
    let rows: Vec<&str> = out.lines().collect();
    assert!(rows[0].starts_with("NAMESPACE   NAME   KIND "), "{out}");
    assert!(rows[1].starts_with("default     b      ComponentChaos"), "{out}");
    assert!(rows[2].starts_with("demo        a      NetworkChaos"), "{out}");

    let (out, _, _) = run(&mut api, &["-n", "demo", "fault", "list"]).await;
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.starts_with("NAME   KIND "), "{out}");
    let (_, err, _) = run(&mut api, &["-n", "kube-system", "fault", "list"]).await;
    assert_eq!(err, "No resources found in kube-system namespace.\n");

    let (out, _, _) = run(&mut api, &["fault", "list", "--kind", "componentchaos"]).await;
    assert_eq!(out.lines().count(), 2, "{out}");
    let (_, _, problems) = run(&mut api, &["fault", "list", "--kind", "pods"]).await;
    assert!(
        problems.starts_with("error: --kind pods: must be a fault kind: networkchaos, dnschaos,"),
        "{problems}"
    );
}

#[tokio::test]
async fn delete_by_name_or_all() {
    let mut api = FakeCluster::default();
    seed(&mut api, Resource::ComponentChaos, "default", "stop-dns-bcdfg");
    seed(&mut api, Resource::NetworkChaos, "demo", "net-a-bcdfg");
    seed(&mut api, Resource::DnsChaos, "demo", "twice");
    seed(&mut api, Resource::PodChaos, "default", "twice");

    let (out, _, problems) = run(&mut api, &["fault", "delete", "net-a-bcdfg", "nope"]).await;
    assert_eq!(out, "networkchaos.chaos.netlab.io \"net-a-bcdfg\" deleted\n");
    assert_eq!(problems, "error: fault \"nope\" not found");

    let (_, _, problems) = run(&mut api, &["fault", "delete", "twice"]).await;
    assert_eq!(
        problems,
        "error: fault \"twice\" is ambiguous: podchaos.chaos.netlab.io/twice in default, \
         dnschaos.chaos.netlab.io/twice in demo; give -n NAMESPACE or --kind KIND"
    );
    let (out, _, _) = run(&mut api, &["fault", "delete", "twice", "--kind", "DNSChaos"]).await;
    assert_eq!(out, "dnschaos.chaos.netlab.io \"twice\" deleted\n");

    let (out, _, problems) = run(&mut api, &["fault", "delete", "--all"]).await;
    assert_eq!(problems, "");
    assert_eq!(
        out,
        "componentchaos.chaos.netlab.io \"stop-dns-bcdfg\" deleted\npodchaos.chaos.netlab.io \"twice\" deleted\n"
    );
    let (_, err, _) = run(&mut api, &["fault", "delete", "--all"]).await;
    assert_eq!(err, "No resources found\n");
}
