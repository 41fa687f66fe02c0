//! Issue 14: the fault objects in the apiserver, driven with the real CLI. Chaos Mesh-shaped
//! manifests apply, list and survive a restart; bad ones are refused with the messages a
//! cluster with Chaos Mesh's CRDs gives; a selector that matches nothing is a warning; an
//! ExhaustionChaos `service-cidr` holds the Service CIDR full until it is deleted or expires.
//!
//! Faults are read back through netlab-client with netlab-chaos's types, as every enforcer reads
//! them, so these tests also prove that what the apiserver stores decodes.

use std::time::{Duration, Instant};

use netlab_chaos::{
    ComponentChaos, DnsChaos, ExhaustionChaos, NetworkChaos, PodChaos, RegistryChaos, UpstreamDnsChaos,
    network::{Direction, NetworkAction},
};
use netlab_client::{Client, ListParams, Object};
use netlab_e2e::{Apiserver, Run, block_on, netlab};

const PODS: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: client
  labels:
    app: client
spec:
  containers:
  - name: app
    image: netlab/toolbox
---
apiVersion: v1
kind: Pod
metadata:
  name: orders
  labels:
    app: orders
spec:
  containers:
  - name: app
    image: netlab/orders
";

/// One fault of every kind, as a user (or Chaos Mesh's docs) writes them.
const FAULTS: &str = "\
apiVersion: chaos.netlab.io/v1alpha1
kind: NetworkChaos
metadata:
  name: delay-orders
spec:
  action: delay
  mode: all
  selector:
    labelSelectors:
      app: client
  delay:
    latency: 200ms
    jitter: 50ms
    correlation: '25'
  direction: to
  target:
    mode: all
    selector:
      labelSelectors:
        app: orders
  duration: 60s
---
apiVersion: chaos.netlab.io/v1alpha1
kind: DNSChaos
metadata:
  name: orders-servfail
spec:
  action: error
  mode: all
  patterns:
  - orders.*
  selector:
    labelSelectors:
      app: client
---
apiVersion: chaos.netlab.io/v1alpha1
kind: PodChaos
metadata:
  name: kill-orders
spec:
  action: pod-kill
  mode: one
  selector:
    labelSelectors:
      app: orders
---
apiVersion: chaos.netlab.io/v1alpha1
kind: ComponentChaos
metadata:
  name: proxy-down
spec:
  action: stop
  component: kube-proxy
  nodes:
  - node-1
  duration: 30s
---
apiVersion: chaos.netlab.io/v1alpha1
kind: RegistryChaos
metadata:
  name: rate-limited
spec:
  action: error
  statusCode: 429
  repositories:
  - library/nginx*
---
apiVersion: chaos.netlab.io/v1alpha1
kind: UpstreamDNSChaos
metadata:
  name: upstream-slow
spec:
  action: delay
  delay: 2s
---
apiVersion: chaos.netlab.io/v1alpha1
kind: ExhaustionChaos
metadata:
  name: conntrack-full
spec:
  action: conntrack
  nodes:
  - node-1
";

fn apply(url: &str, manifest: &str) -> Run {
    netlab(url, &["apply", "-f", "-"], Some(manifest))
}

/// Every fault of kind `K`, decoded with its netlab-chaos type.
fn list<K: Object>(url: &str) -> Vec<K> {
    block_on(async {
        let client = Client::new(url).expect("client");
        client.list::<K>(&ListParams::default()).await.expect("list").0
    })
}

#[test]
fn faults_apply_list_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut api = Apiserver::start(dir.path(), &[]);
    let url = api.url();
    apply(&url, PODS).ok();

    let run = apply(&url, FAULTS).ok();
    assert_eq!(
        run.stdout.lines().collect::<Vec<_>>(),
        [
            "networkchaos.chaos.netlab.io/delay-orders created",
            "dnschaos.chaos.netlab.io/orders-servfail created",
            "podchaos.chaos.netlab.io/kill-orders created",
            "componentchaos.chaos.netlab.io/proxy-down created",
            "registrychaos.chaos.netlab.io/rate-limited created",
            "upstreamdnschaos.chaos.netlab.io/upstream-slow created",
            "exhaustionchaos.chaos.netlab.io/conntrack-full created",
        ]
    );
    assert!(!run.stderr.contains("Warning"), "every selector matches a pod: {}", run.stderr);
    let again = apply(&url, FAULTS).ok();
    assert!(again.stdout.lines().all(|l| l.ends_with(" unchanged")), "{}", again.stdout);

    let [stored] = &list::<NetworkChaos>(&url)[..] else { panic!("one NetworkChaos") };
    // Chaos Mesh's webhook defaults: the fault's namespace for selectors without one, `to`.
    assert_eq!(stored.spec.pods.selector.namespaces, ["default"]);
    assert_eq!(
        stored.spec.target.as_ref().map(|t| t.selector.namespaces.clone()),
        Some(vec!["default".into()])
    );
    assert_eq!(stored.spec.direction, Some(Direction::To));

    api.kill9();
    api.restart();
    let after = list::<NetworkChaos>(&url);
    assert_eq!(after.len(), 1, "the NetworkChaos survived kill -9");
    assert_eq!(
        (after[0].spec.action, after[0].spec.duration.as_deref()),
        (NetworkAction::Delay, Some("60s"))
    );
    assert_eq!(list::<DnsChaos>(&url).len(), 1);
    assert_eq!(list::<PodChaos>(&url).len(), 1);
    assert_eq!(list::<ComponentChaos>(&url).len(), 1);
    assert_eq!(list::<RegistryChaos>(&url).len(), 1);
    assert_eq!(list::<UpstreamDnsChaos>(&url).len(), 1);
    assert_eq!(list::<ExhaustionChaos>(&url).len(), 1);
}

#[test]
fn bad_faults_are_refused_as_a_chaos_mesh_cluster_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    let url = api.url();
    let refused = |manifest: &str| {
        let run = apply(&url, manifest);
        assert_ne!(run.code, Some(0), "{manifest}");
        run.stderr
    };
    let network = |spec: &str| {
        format!(
            "apiVersion: chaos.netlab.io/v1alpha1\nkind: NetworkChaos\nmetadata:\n  name: bad\nspec:\n{spec}"
        )
    };

    let stderr = refused(&network("  action: drop\n  mode: all\n  selector: {}\n"));
    assert!(
        stderr.contains(
            "The NetworkChaos \"bad\" is invalid: spec.action: Unsupported value: \"drop\": supported values: \"netem\", \"delay\", \"loss\", \"duplicate\", \"corrupt\", \"partition\", \"bandwidth\""
        ),
        "{stderr}"
    );
    let stderr = refused(&network("  action: partition\n  selector: {}\n"));
    assert!(
        stderr.contains(
            "The NetworkChaos \"bad\" is invalid: spec.mode: Unsupported value: \"\": supported values: \"one\", \"all\", \"fixed\", \"fixed-percent\", \"random-max-percent\""
        ),
        "{stderr}"
    );
    let stderr = refused(&network("  action: partition\n  mode: fixed-percent\n  value: '150'\n"));
    assert!(
        stderr.contains(
            "The NetworkChaos \"bad\" is invalid: spec.value: Invalid value: \"150\": value of 150 is invalid, Must be (0,100] with mode:fixed-percent"
        ),
        "{stderr}"
    );
    let stderr = refused(&network("  action: partition\n  mode: all\n  duration: abc\n"));
    assert!(
        stderr.contains(
            "The NetworkChaos \"bad\" is invalid: spec.duration: Invalid value: \"abc\": parse duration field error: time: invalid duration \"abc\""
        ),
        "{stderr}"
    );
    let stderr = refused(&network("  action: loss\n  mode: all\n  loss:\n    loss: '150'\n"));
    assert!(
        stderr.contains(
            "The NetworkChaos \"bad\" is invalid: spec.loss.loss: Invalid value: \"150\": percent field should be in 0-100"
        ),
        "{stderr}"
    );
    let stderr = refused(
        "apiVersion: chaos.netlab.io/v1alpha1\nkind: PodChaos\nmetadata:\n  name: bad\nspec:\n  action: container-kill\n  mode: one\n",
    );
    assert!(
        stderr.contains(
            "The PodChaos \"bad\" is invalid: spec.containerNames: Invalid value: null: the name of container is required on container-kill action: invalid value"
        ),
        "{stderr}"
    );
    let stderr = refused(
        "apiVersion: chaos.netlab.io/v1alpha1\nkind: DNSChaos\nmetadata:\n  name: bad\nspec:\n  action: error\n  mode: all\n  patterns: ['*.example.com']\n  rcode: NOERROR\n",
    );
    assert!(
        stderr.contains(
            "The DNSChaos \"bad\" is invalid: \n* spec.patterns[0]: Invalid value: \"*.example.com\": pattern *.example.com not valid: '*' may only be the last character\n* spec.rcode: Unsupported value: \"NOERROR\": supported values: \"SERVFAIL\", \"NXDOMAIN\", \"REFUSED\""
        ),
        "{stderr}"
    );
    assert!(list::<NetworkChaos>(&url).is_empty(), "nothing refused was stored");
    assert!(list::<PodChaos>(&url).is_empty() && list::<DnsChaos>(&url).is_empty());

    // The spec is immutable; the pause annotation is not.
    let good = network("  action: partition\n  mode: all\n");
    apply(&url, &good).ok();
    let stderr = refused(&good.replace("mode: all", "mode: one"));
    assert!(stderr.contains("spec: Forbidden: Cannot update chaos spec"), "{stderr}");
    let paused = good.replace(
        "  name: bad\n",
        "  name: bad\n  annotations:\n    experiment.chaos-mesh.org/pause: 'true'\n",
    );
    let run = apply(&url, &paused).ok();
    assert_eq!(run.stdout.trim(), "networkchaos.chaos.netlab.io/bad configured");
}

#[test]
fn a_selector_that_matches_no_pod_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    let url = api.url();
    apply(&url, PODS).ok();
    let fault = "\
apiVersion: chaos.netlab.io/v1alpha1
kind: NetworkChaos
metadata:
  name: nobody
spec:
  action: partition
  mode: all
  selector:
    labelSelectors:
      app: ghost
  direction: both
  target:
    mode: all
    selector:
      labelSelectors:
        app: orders
";
    let run = apply(&url, fault).ok();
    assert_eq!(run.stdout.trim(), "networkchaos.chaos.netlab.io/nobody created");
    assert_eq!(run.stderr.trim(), "Warning: spec.selector: no pod is selected");

    let both = fault.replace("name: nobody", "name: nobody-at-all").replace("app: orders", "app: nothing");
    let run = apply(&url, &both).ok();
    assert_eq!(
        run.stderr.lines().collect::<Vec<_>>(),
        ["Warning: spec.selector: no pod is selected", "Warning: spec.target.selector: no pod is selected"]
    );
    // In another namespace's selector the same labels match nothing either.
    let other_ns =
        fault.replace("name: nobody", "name: other-ns").replace("app: ghost", "app: client").replace(
            "  selector:\n    labelSelectors:\n      app: client",
            "  selector:\n    namespaces: [kube-system]\n    labelSelectors:\n      app: client",
        );
    let run = apply(&url, &other_ns).ok();
    assert_eq!(run.stderr.trim(), "Warning: spec.selector: no pod is selected");
}

const SERVICE: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: NAME
spec:
  selector:
    app: orders
  ports:
  - port: 80
";

const FULL: &str = "\
apiVersion: chaos.netlab.io/v1alpha1
kind: ExhaustionChaos
metadata:
  name: full
spec:
  action: service-cidr
";

fn service(url: &str, name: &str) -> Run {
    apply(url, &SERVICE.replace("NAME", name))
}

#[test]
fn service_cidr_exhaustion_refuses_cluster_ips_until_deleted_or_expired() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    let url = api.url();
    service(&url, "before").ok();
    apply(&url, FULL).ok();

    let run = service(&url, "during");
    assert_ne!(run.code, Some(0));
    assert!(
        run.stderr.contains("Internal error occurred: failed to allocate a serviceIP: range is full"),
        "{}",
        run.stderr
    );
    let pinned = apply(
        &url,
        &SERVICE.replace("NAME", "pinned").replace("spec:\n", "spec:\n  clusterIP: 10.96.0.50\n"),
    );
    assert!(
        pinned.stderr.contains(
            "The Service \"pinned\" is invalid: spec.clusterIPs: Invalid value: [\"10.96.0.50\"]: failed to allocate IP 10.96.0.50: provided IP is already allocated"
        ),
        "{}",
        pinned.stderr
    );
    let headless =
        apply(&url, &SERVICE.replace("NAME", "headless").replace("spec:\n", "spec:\n  clusterIP: None\n"));
    headless.ok();
    // A Service that already has its address keeps working.
    let relabel = SERVICE.replace("NAME", "before").replace("app: orders", "app: orders-v2");
    apply(&url, &relabel).ok();

    let [fault] = &list::<ExhaustionChaos>(&url)[..] else { panic!("one ExhaustionChaos") };
    let counters = fault.status.as_ref().map(|s| s.counters.clone()).unwrap_or_default();
    assert_eq!(counters["apiserver"]["allocationsRefused"], 2, "{counters:?}");

    block_on(async {
        let client = Client::new(&url).expect("client");
        client.delete::<ExhaustionChaos>("default", "full").await.expect("delete")
    });
    service(&url, "after").ok();

    // A duration ends it by itself.
    apply(
        &url,
        &FULL
            .replace("name: full", "name: brief")
            .replace("service-cidr\n", "service-cidr\n  duration: 2s\n"),
    )
    .ok();
    assert_ne!(service(&url, "while-brief").code, Some(0));
    let deadline = Instant::now() + Duration::from_secs(30);
    while service(&url, "after-brief").code != Some(0) {
        assert!(Instant::now() < deadline, "the expired fault still holds the range full");
        std::thread::sleep(Duration::from_millis(200));
    }
}
