//! `netlab fault` against a real apiserver: every shortcut creates the object it promises (read
//! back with `netlab get -o json`), bad flags are refused with a clear message and exit 1,
//! `fault list` shows what a fault matched and its counters (from a status written as the
//! controller and the enforcers write it), `get`/`describe` show the fault kinds, and
//! `fault delete` removes them by name or all at once.

use netlab_e2e::Apiserver;
use netlab_proto::apiserver::v1::{Resource, UpdateRequest, api_server_client::ApiServerClient};
use serde_json::{Value, json};

struct Lab {
    api: Apiserver,
    _data: tempfile::TempDir,
}

impl Lab {
    fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        Self { api: Apiserver::start(data.path(), &[]), _data: data }
    }

    fn netlab(&self, args: &[&str]) -> netlab_e2e::Run {
        netlab_e2e::netlab(&self.api.url(), args, None)
    }

    /// Runs a shortcut that must succeed; returns the created object as the server has it.
    fn create(&self, args: &[&str], plural: &str, name: &str) -> Value {
        let r = self.netlab(args).ok();
        assert!(r.stdout.ends_with(&format!("{plural}.chaos.netlab.io/{name} created\n")), "{}", r.stdout);
        assert!(r.stdout.starts_with("apiVersion: chaos.netlab.io/v1alpha1\n"), "{}", r.stdout);
        self.netlab(&["get", plural, name, "-o", "json"]).ok().json()
    }
}

fn labels(ns: &str, l: Value) -> Value {
    json!({"namespaces": [ns], "labelSelectors": l})
}

#[test]
fn each_shortcut_creates_its_object() {
    let lab = Lab::start();

    let v = lab.create(
        &[
            "fault",
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
            "--name",
            "net1",
        ],
        "networkchaos",
        "net1",
    );
    assert_eq!(v["kind"], "NetworkChaos");
    assert_eq!(v["metadata"]["namespace"], "default");
    assert_eq!(v["spec"]["action"], "netem");
    assert_eq!(v["spec"]["selector"], labels("default", json!({"app": "client"})));
    assert_eq!(v["spec"]["target"]["selector"], labels("default", json!({"app": "orders"})));
    assert_eq!(v["spec"]["delay"]["latency"], "200ms");
    assert_eq!(v["spec"]["delay"]["jitter"], "50ms");
    assert_eq!(v["spec"]["loss"]["loss"], "30");
    assert_eq!(v["spec"]["loss"]["correlation"], "25");

    // A generated name says what the fault is.
    let r =
        lab.netlab(&["fault", "net", "--from", "app=client", "--rate", "1mbps", "--duration", "60s"]).ok();
    let created = r.stdout.lines().last().unwrap();
    let name = created
        .strip_prefix("networkchaos.chaos.netlab.io/net-client-")
        .and_then(|rest| rest.strip_suffix(" created"))
        .unwrap_or_else(|| panic!("{created}"));
    assert_eq!(name.len(), 5, "{created}");
    let v = lab.netlab(&["get", "networkchaos", &format!("net-client-{name}"), "-o", "json"]).ok().json();
    assert_eq!((&v["spec"]["action"], &v["spec"]["duration"]), (&json!("bandwidth"), &json!("60s")));
    assert_eq!(v["spec"]["bandwidth"]["rate"], "1mbps");

    let v = lab.create(&["fault", "partition", "node-1", "node-2", "--name", "part"], "networkchaos", "part");
    assert_eq!((&v["spec"]["action"], &v["spec"]["direction"]), (&json!("partition"), &json!("both")));
    assert_eq!(v["spec"]["selector"]["nodes"], json!(["node-1"]));
    assert_eq!(v["spec"]["target"]["selector"]["nodes"], json!(["node-2"]));
    let namespaces = v["spec"]["selector"]["namespaces"].as_array().unwrap();
    assert!(namespaces.contains(&json!("default")) && namespaces.contains(&json!("kube-system")), "{v}");

    let v = lab.create(
        &[
            "fault",
            "dns",
            "--pods",
            "app=client",
            "--names",
            "orders.*",
            "--error",
            "SERVFAIL",
            "--duration",
            "60s",
            "--name",
            "dns1",
        ],
        "dnschaos",
        "dns1",
    );
    assert_eq!(v["spec"]["action"], "error");
    assert_eq!(v["spec"]["patterns"], json!(["orders.*"]));
    assert_eq!(v["spec"]["duration"], "60s");
    assert_eq!(v["spec"]["selector"], labels("default", json!({"app": "client"})));

    let v = lab.create(
        &["fault", "pod", "kill", "--pods", "app=orders", "--grace-period", "0", "--name", "pk"],
        "podchaos",
        "pk",
    );
    assert_eq!((&v["spec"]["action"], &v["spec"]["gracePeriod"]), (&json!("pod-kill"), &json!(0)));
    let v = lab.create(
        &["fault", "pod", "kill-container", "--pods", "app=orders", "--container", "app", "--name", "ck"],
        "podchaos",
        "ck",
    );
    assert_eq!(
        (&v["spec"]["action"], &v["spec"]["containerNames"]),
        (&json!("container-kill"), &json!(["app"]))
    );

    let v = lab.create(&["fault", "stop", "dns", "--name", "sd"], "componentchaos", "sd");
    assert_eq!((&v["spec"]["action"], &v["spec"]["component"]), (&json!("stop"), &json!("dns")));
    let v = lab.create(&["fault", "pause", "kube-proxy", "node-1", "--name", "pk1"], "componentchaos", "pk1");
    assert_eq!(v["spec"]["nodes"], json!(["node-1"]));

    let v = lab.create(
        &["fault", "registry", "--repo", "library/nginx*", "--status", "429", "--name", "r429"],
        "registrychaos",
        "r429",
    );
    assert_eq!(v["spec"], json!({"action": "error", "repositories": ["library/nginx*"], "statusCode": 429}));

    let v = lab.create(&["fault", "upstream", "--unreachable", "--name", "up"], "upstreamdnschaos", "up");
    assert_eq!(v["spec"]["action"], "unreachable");

    let v = lab.create(&["fault", "exhaust", "pod-cidr", "node-1", "--name", "ex"], "exhaustionchaos", "ex");
    assert_eq!(v["spec"], json!({"action": "pod-cidr", "nodes": ["node-1"]}));

    // The kinds list and describe like any custom resource; `get all` leaves them out.
    let r = lab.netlab(&["get", "networkchaos"]).ok();
    assert!(r.stdout.starts_with("NAME "), "{}", r.stdout);
    assert!(r.stdout.lines().any(|l| l.starts_with("net1 ") && l.contains(" netem ")), "{}", r.stdout);
    let r = lab.netlab(&["get", "podchaos"]).ok();
    assert!(r.stdout.starts_with("NAME   AGE\n"), "{}", r.stdout);
    let r = lab.netlab(&["get", "all"]);
    assert!(!r.stdout.contains("chaos"), "{}", r.stdout);
    let r = lab.netlab(&["describe", "dnschaos", "dns1"]).ok();
    assert!(r.stdout.starts_with("Name:         dns1\nNamespace:    default\n"), "{}", r.stdout);
    assert!(
        r.stdout.contains("\nAPI Version:  chaos.netlab.io/v1alpha1\nKind:         DNSChaos\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\nSpec:\n  Action:    error\n  Duration:  60s\n"), "{}", r.stdout);
    let r = lab.netlab(&["get", "networkchaos.chaos.netlab.io/net1", "-o", "name"]).ok();
    assert_eq!(r.stdout, "networkchaos.chaos.netlab.io/net1\n");
}

#[test]
fn bad_flags_are_refused_with_the_flag_and_what_is_allowed() {
    let lab = Lab::start();
    let cases: [(&[&str], &str); 6] = [
        (
            &["fault", "net", "--from", "app=a", "--loss", "130%"],
            "error: --loss 130%: must be a percentage between 0 and 100\n",
        ),
        (
            &["fault", "net", "--from", "app=a", "--delay", "200"],
            "error: --delay 200: must be a number and one unit (ns, us, ms, s, m or h), e.g. 200ms\n",
        ),
        (
            &["fault", "net", "--from", "a", "--loss", "1"],
            "error: --from a: must be labels as key=value[,key=value], e.g. app=client\n",
        ),
        (
            &["fault", "registry", "--status", "418"],
            "error: --status 418: must be one of 401, 403, 404, 429, 500, 502, 503\n",
        ),
        (
            &["fault", "stop", "dns", "node-1"],
            "error: dns runs once per cluster, not on each node: drop node-1\n",
        ),
        (
            &["fault", "exhaust", "service-cidr", "node-1"],
            "error: service-cidr is the cluster's, not a node's: drop node-1\n",
        ),
    ];
    for (args, want) in cases {
        let r = lab.netlab(args);
        assert_eq!((r.stderr.as_str(), r.stdout.as_str(), r.code), (want, "", Some(1)), "{args:?}");
    }
    // clap's own checks: closed sets and missing flags.
    let r = lab.netlab(&["fault", "stop", "etcd"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("invalid value 'etcd'") && r.stderr.contains("possible values: apiserver,"),
        "{}",
        r.stderr
    );
    let r = lab.netlab(&["fault", "dns", "--pods", "app=a"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("--error <ERROR>"), "{}", r.stderr);
    // Nothing was created.
    assert_eq!(lab.netlab(&["fault", "list"]).stderr, "No resources found\n");
}

#[test]
fn fault_list_shows_records_and_summed_counters() {
    let lab = Lab::start();
    lab.netlab(&[
        "fault",
        "net",
        "--from",
        "app=client",
        "--loss",
        "10",
        "--duration",
        "1h",
        "--name",
        "lossy",
    ])
    .ok();
    lab.netlab(&["fault", "stop", "dns", "--name", "nodns"]).ok();

    // What the chaos controller (records) and two node agents (counters) write.
    let mut v = lab.netlab(&["get", "networkchaos", "lossy", "-o", "json"]).ok().json();
    let record = |id: &str| json!({"id": id, "selectorKey": ".", "phase": "Injected", "injectedCount": 1});
    v["status"] = json!({
        "experiment": {"desiredPhase": "Run", "containerRecords": [
            record("default/client-1"), record("default/client-2"), record("default/client-3")]},
        "counters": {"node/node-1": {"packetsDropped": 7}, "node/node-2": {"packetsDropped": 5}},
    });
    netlab_e2e::block_on(async {
        let mut client = ApiServerClient::connect(lab.api.url()).await.unwrap();
        let req = UpdateRequest {
            resource: Resource::NetworkChaos.into(),
            json: serde_json::to_vec(&v).unwrap().into(),
            namespace: "default".into(),
        };
        client.update_status(req).await.unwrap();
    });

    let r = lab.netlab(&["fault", "list"]).ok();
    let mut lines = r.stdout.lines();
    let header = lines.next().unwrap();
    assert!(
        header.split_whitespace().eq([
            "NAMESPACE",
            "NAME",
            "KIND",
            "ACTION",
            "TARGETS",
            "COUNTERS",
            "AGE",
            "REMAINING",
            "STATE"
        ]),
        "{}",
        r.stdout
    );
    let lossy = lines.next().unwrap();
    assert!(lossy.starts_with("default     lossy   NetworkChaos     loss     3: default/client-1, default/client-2, ...   packetsDropped=12   "), "{}", r.stdout);
    assert!(lossy.ends_with("   Running"), "{lossy}");
    let nodns = lines.next().unwrap();
    assert!(nodns.starts_with("default     nodns   ComponentChaos   stop     <none>"), "{}", r.stdout);
    assert!(nodns.contains("   <none>      Running"), "{nodns}");

    let r = lab.netlab(&["-n", "default", "fault", "list", "--kind", "networkchaos"]).ok();
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
    assert!(r.stdout.starts_with("NAME    KIND "), "{}", r.stdout);

    // describe shows the same, as kubectl shows a custom resource's status.
    let r = lab.netlab(&["describe", "networkchaos", "lossy"]).ok();
    assert!(
        // recoveredCount is always written (Chaos Mesh's field has no omitempty), so it sets
        // the column width.
        r.stdout.contains("    Container Records:\n      Id:               default/client-1\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("  Counters:\n    node/node-1:\n      Packets Dropped:  7\n"), "{}", r.stdout);
}

#[test]
fn delete_by_name_and_all() {
    let lab = Lab::start();
    for name in ["a", "b"] {
        lab.netlab(&["fault", "stop", "scheduler", "--name", name]).ok();
    }
    lab.netlab(&["fault", "upstream", "--servfail", "--name", "c"]).ok();

    let r = lab.netlab(&["fault", "delete", "a", "zzz"]);
    assert_eq!(r.stdout, "componentchaos.chaos.netlab.io \"a\" deleted\n");
    assert_eq!((r.stderr.as_str(), r.code), ("error: fault \"zzz\" not found\n", Some(1)));

    let r = lab.netlab(&["fault", "delete", "--all", "--kind", "upstreamdnschaos"]).ok();
    assert_eq!(r.stdout, "upstreamdnschaos.chaos.netlab.io \"c\" deleted\n");
    let r = lab.netlab(&["fault", "delete", "--all"]).ok();
    assert_eq!(r.stdout, "componentchaos.chaos.netlab.io \"b\" deleted\n");
    assert_eq!(lab.netlab(&["fault", "list"]).stderr, "No resources found\n");
    let r = lab.netlab(&["get", "componentchaos", "b"]);
    assert!(r.stderr.starts_with("Error from server (NotFound): componentchaos"), "{}", r.stderr);
    assert!(r.stderr.ends_with(" \"b\" not found\n"), "{}", r.stderr);
}
