//! `netlab lab`: every lab of the catalogue in a native cluster (`netlab up --detach`), through
//! the real CLI — started (and really broken), checked failing with the observation a person
//! would see, fixed with the reference solution, checked passing, and reset to a clean cluster.
//! Several labs are also fixed a second, different correct way, and several are "fixed" in a
//! way that only hides the symptom, which the checks must not accept.
//!
//! The labs are split over a few tests, each with its own cluster, so the suite's time is a
//! few clusters' worth rather than one long serial run.

use std::{
    ops::Deref,
    process::Command,
    time::{Duration, Instant},
};

use netlab_e2e::{bin, native::NativeCluster};

/// A native cluster for labs, with the trace store `netlab up` starts (the checks that read
/// traces find it through the cluster file, as a user's would), stopped on drop.
struct Cluster {
    native: NativeCluster,
}

impl Deref for Cluster {
    type Target = NativeCluster;

    fn deref(&self) -> &NativeCluster {
        &self.native
    }
}

impl Cluster {
    fn up() -> Self {
        Cluster { native: NativeCluster::up() }
    }

    /// `lab start ID`, which waits for the broken state itself.
    fn start(&self, id: &str) -> String {
        let out = self.run(&["lab", "start", id], None);
        if out.code != Some(0) {
            panic!("{id}: lab start:\n{}{}\n{}", out.stdout, out.stderr, self.diagnosis());
        }
        let out = out.stdout;
        assert!(out.contains("`netlab lab check` checks your fix"), "{out}");
        out
    }

    /// `lab check` fails, and says `observed` somewhere in its ✘ lines.
    fn check_fails(&self, id: &str, observed: &str) {
        let out = self.run(&["lab", "check"], None);
        assert_eq!(out.code, Some(1), "{id}: check passes before any fix:\n{}{}", out.stdout, out.stderr);
        assert!(
            out.stdout.lines().any(|l| l.starts_with('✘') && l.contains(observed)),
            "{id}: no ✘ line mentions {observed:?}:\n{}",
            out.stdout
        );
    }

    /// `lab check` passes within the lab's time (the fix takes effect through watches).
    fn check_passes(&self, id: &str) -> String {
        let started = Instant::now();
        loop {
            let out = self.run(&["lab", "check"], None);
            if out.code == Some(0) {
                assert!(out.stdout.contains(&format!("lab {id} passed")), "{}", out.stdout);
                return out.stdout;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "{id}: check never passed:\n{}{}",
                out.stdout,
                out.stderr
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// After a non-fix has taken effect (`observed` shows in a ✘ line, once rollouts are
    /// done), `lab check` keeps failing on it.
    fn check_keeps_failing(&self, id: &str, observed: &str) {
        let started = Instant::now();
        loop {
            let out = self.run(&["lab", "check"], None);
            assert_ne!(out.code, Some(0), "{id}: a non-fix passes:\n{}", out.stdout);
            if out.stdout.lines().any(|l| l.starts_with('✘') && l.contains(observed)) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "{id}: never observed {observed:?}:\n{}",
                out.stdout
            );
            std::thread::sleep(Duration::from_secs(1));
        }
        for _ in 0..2 {
            self.check_fails(id, observed);
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// The reference solution, applied by the runner, which waits for the checks.
    fn solve(&self, id: &str) {
        let out = self.run(&["lab", "solution", "--apply"], None);
        assert_eq!(out.code, Some(0), "{id}: solution --apply:\n{}{}", out.stdout, out.stderr);
        self.check_passes(id);
    }

    /// `lab reset` of a passed lab: its namespaces are gone, and it stays passed.
    fn reset(&self, id: &str, namespaces: &[&str]) {
        self.reset_as(id, namespaces, "passed");
    }

    /// `lab reset` of a lab not passed yet.
    fn reset_unsolved(&self, id: &str, namespaces: &[&str]) {
        self.reset_as(id, namespaces, "not started");
    }

    fn reset_as(&self, id: &str, namespaces: &[&str], state: &str) {
        let out = self.ok(&["lab", "reset"]);
        assert!(out.contains(&format!("Lab {id} reset")), "{out}");
        for ns in namespaces {
            let gone = self.run(&["get", "ns", ns], None);
            assert_ne!(gone.code, Some(0), "{id}: namespace {ns} is left after reset");
        }
        let listed = self.ok(&["lab", "list"]);
        let row = listed.lines().find(|l| l.starts_with(&format!("{id} "))).unwrap_or_default().to_string();
        assert!(row.ends_with(state), "{id} is listed as {state}: {listed}");
    }

    /// What a failed setup needs looked at: the pods, the events, the scheduler's last words.
    fn diagnosis(&self) -> String {
        let pods = self.run(&["get", "pods", "-A", "-o", "wide"], None).stdout;
        let events = self.run(&["get", "events", "-A"], None).stdout;
        let mut text = format!("== pods\n{pods}\n== events\n{events}");
        for process in ["scheduler", "node-1", "node-2"] {
            let log = self.log(process);
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            text.push_str(&format!(
                "\n== {process} log\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        text
    }

    fn corefile(&self) -> String {
        self.ok(&["get", "configmap", "coredns", "-n", "kube-system", "-o", "jsonpath={.data.Corefile}"])
    }
}

/// The first Running pod matching `selector` in `ns`.
fn pod(c: &Cluster, ns: &str, selector: &str) -> String {
    let started = Instant::now();
    loop {
        let out = c.run(
            &[
                "get",
                "pods",
                "-n",
                ns,
                "-l",
                selector,
                "-o",
                "jsonpath={.items[?(@.status.phase==\"Running\")].metadata.name}",
            ],
            None,
        );
        if let Some(name) = out.stdout.split_whitespace().next() {
            return name.to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "a Running pod for {selector} in {ns}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

const ORDERS_SVC_NUMERIC: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: orders\n  namespace: shop\nspec:\n  selector:\n    app: orders\n  ports:\n  - name: http\n    port: 80\n    targetPort: 80\n";

#[test]
fn services_labs_break_check_fix_and_reset() {
    let c = Cluster::up();

    // The list is the second thing a newcomer sees.
    let list = c.ok(&["lab", "list"]);
    assert!(list.starts_with("ID "), "{list}");
    assert!(list.contains("no-endpoints") && list.contains("not started"), "{list}");

    // no-endpoints: refused; a second correct fix (numeric targetPort) passes too.
    c.start("no-endpoints");
    c.check_fails("no-endpoints", "observed exit 7: curl: (7)");
    c.apply(ORDERS_SVC_NUMERIC);
    c.check_passes("no-endpoints");
    c.reset("no-endpoints", &["shop"]);
    c.start("no-endpoints");
    c.solve("no-endpoints");
    c.reset("no-endpoints", &["shop"]);

    // target-port: refused although ready; fixed by the reference (named port) and by a numeric port.
    c.start("target-port");
    c.check_fails("target-port", "observed exit 7");
    c.apply(ORDERS_SVC_NUMERIC);
    c.check_passes("target-port");
    c.reset("target-port", &["shop"]);
    c.start("target-port");
    c.solve("target-port");
    c.reset("target-port", &["shop"]);

    // not-ready: removing the probe hides the symptom and does not pass; a tcpSocket probe does.
    c.start("not-ready");
    c.check_fails("not-ready", "client reaches orders: observed exit");
    let deployment = |probe: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: orders\n  namespace: shop\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: orders\n  template:\n    metadata:\n      labels:\n        app: orders\n    spec:\n      containers:\n      - name: nginx\n        image: nginx:1.27\n        ports:\n        - name: http\n          containerPort: 80\n{probe}"
        )
    };
    c.apply(&deployment(""));
    c.check_keeps_failing("not-ready", "the orders pods still have a readiness probe");
    c.apply(&deployment(
        "        readinessProbe:\n          tcpSocket:\n            port: 80\n          periodSeconds: 2\n          failureThreshold: 1\n",
    ));
    c.check_passes("not-ready");
    c.reset("not-ready", &["shop"]);
    c.start("not-ready");
    c.solve("not-ready");
    c.reset("not-ready", &["shop"]);

    // netpol-timeout: deleting the deny policy hides the symptom (stranger gets in too);
    // a policy allowing the client on the named port is another correct fix.
    c.start("netpol-timeout");
    c.check_fails("netpol-timeout", "client reaches orders: observed exit 28");
    c.ok(&["delete", "networkpolicy", "default-deny", "-n", "shop"]);
    c.check_keeps_failing("netpol-timeout", "stranger is still kept out: observed exit 0");
    c.reset_unsolved("netpol-timeout", &["shop"]);
    c.start("netpol-timeout");
    c.apply(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: orders-from-client\n  namespace: shop\nspec:\n  podSelector:\n    matchLabels:\n      app: orders\n  ingress:\n  - from:\n    - podSelector:\n        matchLabels:\n          app: client\n    ports:\n    - port: http\n",
    );
    c.check_passes("netpol-timeout");
    c.reset("netpol-timeout", &["shop"]);
    c.start("netpol-timeout");
    c.solve("netpol-timeout");
    c.reset("netpol-timeout", &["shop"]);
}

#[test]
fn dns_labs_break_check_fix_and_reset() {
    let c = Cluster::up();
    let corefile = c.corefile();

    // dns-flow: deleting the client hides the symptom; dnsPolicy None pointing at the cluster DNS
    // with the cluster's search path is another correct fix.
    c.start("dns-flow");
    c.check_fails("dns-flow", "the client resolves orders: observed exit 1");
    c.ok(&["delete", "pod", "client", "-n", "shop"]);
    c.check_keeps_failing("dns-flow", "no Running pod matches \"app=client\"");
    c.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: client2\n  namespace: shop\n  labels:\n    app: client\nspec:\n  dnsPolicy: None\n  dnsConfig:\n    nameservers: [10.96.0.10]\n    searches: [shop.svc.cluster.local, svc.cluster.local, cluster.local]\n    options:\n    - name: ndots\n      value: \"5\"\n  containers:\n  - name: netshoot\n    image: nicolaka/netshoot:v0.13\n    command: [sleep, infinity]\n",
    );
    c.check_passes("dns-flow");
    c.reset("dns-flow", &["shop"]);
    c.start("dns-flow");
    c.solve("dns-flow");
    c.reset("dns-flow", &["shop"]);

    // upstream-forward and coredns-k8s-aware edit the CoreDNS ConfigMap; reset puts it back.
    c.start("upstream-forward");
    assert!(c.corefile().contains("forward . 192.0.2.53"));
    c.check_fails("upstream-forward", "external names resolve: observed exit 1");
    c.solve("upstream-forward");
    c.reset("upstream-forward", &["shop"]);
    assert_eq!(c.corefile(), corefile, "reset restores the Corefile");

    c.start("coredns-k8s-aware");
    c.check_fails("coredns-k8s-aware", "Service names resolve: observed exit 1");
    c.solve("coredns-k8s-aware");
    c.reset("coredns-k8s-aware", &["shop"]);
    assert_eq!(c.corefile(), corefile, "reset restores the Corefile");

    // short-names: the full name is another correct fix.
    c.start("short-names");
    c.check_fails("short-names", "the client reaches orders through ORDERS_URL: observed exit 6");
    let client = |url: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: client\n  namespace: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: client\n  template:\n    metadata:\n      labels:\n        app: client\n    spec:\n      containers:\n      - name: app\n        image: nicolaka/netshoot:v0.13\n        command: [sleep, infinity]\n        env:\n        - name: ORDERS_URL\n          value: {url}\n"
        )
    };
    c.apply(&client("http://orders.shop.svc.cluster.local/"));
    c.check_passes("short-names");
    c.reset("short-names", &["shop", "web"]);
    c.start("short-names");
    c.solve("short-names");
    c.reset("short-names", &["shop", "web"]);

    // ndots-cost: counted at the DNS server; a trailing dot is another correct fix.
    c.start("ndots-cost");
    c.check_fails("ndots-cost", "one A query reaches the DNS server per lookup: observed");
    let checkout = pod(&c, "shop", "app=checkout");
    c.apply(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: checkout\n  namespace: shop\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: checkout\n  template:\n    metadata:\n      labels:\n        app: checkout\n    spec:\n      containers:\n      - name: app\n        image: nicolaka/netshoot:v0.13\n        command: [sleep, infinity]\n        env:\n        - name: API_HOST\n          value: api.example.com.\n"
    );
    // The old pod goes away with the rollout; then the check counts the new one's queries.
    let started = Instant::now();
    while pod(&c, "shop", "app=checkout") == checkout {
        assert!(started.elapsed() < Duration::from_secs(60), "the checkout rollout");
        std::thread::sleep(Duration::from_millis(500));
    }
    c.check_passes("ndots-cost");
    c.reset("ndots-cost", &["shop"]);
    c.start("ndots-cost");
    c.solve("ndots-cost");
    c.reset("ndots-cost", &["shop"]);

    // headless: the name resolves to every member once the Service is headless.
    c.start("headless");
    c.check_fails("headless", "db resolves to both members' addresses: observed exit 0: 10.");
    c.solve("headless");
    c.reset("headless", &["shop"]);
}

#[test]
fn node_labs_and_answers_break_check_fix_and_reset() {
    let c = Cluster::up();

    // ip-owners: answers read from the cluster, drawn per run; a wrong one fails.
    let task = c.start("ip-owners");
    let pod_name =
        task.split_whitespace().find(|w| w.starts_with("web-")).expect("the task names the pod").to_string();
    c.check_fails("ip-owners", "not answered yet");
    let node = c.ok(&["get", "pod", &pod_name, "-n", "owners", "-o", "jsonpath={.spec.nodeName}"]);
    let cidr = c.ok(&["get", "node", &node, "-o", "jsonpath={.spec.podCIDR}"]);
    let wrong = if node == "node-1" { "node-2" } else { "node-1" };
    c.ok(&["lab", "answer", wrong]);
    c.check_fails("ip-owners", &format!("observed answered {wrong:?}"));
    c.ok(&["lab", "answer", "--question", "1", &node]);
    c.ok(&["lab", "answer", "--question", "2", &cidr]);
    c.ok(&["lab", "answer", "--question", "3", "kube-apiserver"]);
    c.ok(&["lab", "answer", "--question", "4", "kube-controller-manager"]);
    c.check_passes("ip-owners");
    c.reset("ip-owners", &["owners"]);
    // A second run draws new names.
    let again = c.start("ip-owners");
    assert!(!again.contains(&pod_name), "a new run names a new pod");
    c.solve("ip-owners");
    c.reset("ip-owners", &["owners"]);

    // kube-proxy-down: one node's proxy is held; the fault is undone by reset if not by the fix.
    c.start("kube-proxy-down");
    c.check_fails("kube-proxy-down", "payments works from client-b: observed exit");
    let status = c.ok(&["lab", "status"]);
    assert!(
        status.contains("Question 1: Which node's kube-proxy had stale rules? (not answered)"),
        "{status}"
    );
    c.reset_unsolved("kube-proxy-down", &["shop"]);
    let faults = c.run(&["fault", "list"], None);
    assert!(faults.stderr.contains("No resources found"), "reset deleted the fault: {}", faults.stdout);
    c.start("kube-proxy-down");
    c.solve("kube-proxy-down");
    c.reset("kube-proxy-down", &["shop"]);

    // conntrack-stale: the sender's flow stays DNATed to the deleted pod in its node's conntrack
    // table until that node's kube-proxy syncs and deletes it.
    c.start("conntrack-stale");
    c.check_fails("conntrack-stale", "the sender reaches collector-b from port 12345");
    let b_ip = c.ok(&["get", "pod", "collector-b", "-n", "metrics", "-o", "jsonpath={.status.podIP}"]);
    let flow = |c: &Cluster| {
        let table = c.ok(&["node", "conntrack", "node-2"]);
        table
            .lines()
            .find(|l| l.starts_with("udp") && l.contains("sport=12345 dport=8081"))
            .map(str::to_string)
    };
    let stale = flow(&c).expect("the sender's flow is tracked on node-2");
    assert!(!stale.contains(&format!("src={b_ip} ")), "the stale flow goes to the old pod: {stale}");
    c.ok(&["lab", "answer", "node-2"]);
    c.solve("conntrack-stale");
    let fresh = flow(&c).expect("the sender's flow is tracked again");
    assert!(fresh.contains(&format!("src={b_ip} ")), "the new flow goes to collector-b: {fresh}");
    c.reset("conntrack-stale", &["metrics"]);

    // Labs that cannot set up say why and leave nothing behind.
    let broken = tempfile::tempdir().unwrap();
    let lab = |id: &str, vars: &str, setup: &str, broken_state: &str| {
        let dir = broken.path().join(id);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("setup.yaml"), setup).unwrap();
        std::fs::write(
            dir.join("lab.yaml"),
            format!(
                "id: {id}\norder: 1\ntitle: t\ntopic: t\nquestion: {{number: 1, text: q}}\n{vars}namespaces: [doomed]\ntask: t\nhints: [h]\nexplanation: e\ntimeout: 5s\nsetup:\n- apply: setup.yaml\n{broken_state}checks:\n- name: c\n  object: {{resource: namespaces, name: doomed}}\n  expect: {{min: 1}}\nsolution:\n- apply: setup.yaml\n"
            ),
        )
        .unwrap();
    };
    let ns = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: doomed\n";
    lab("three-nodes", "vars:\n  third: {node: \"3\"}\n", ns, "");
    lab(
        "bad-fault",
        "",
        &format!(
            "{ns}---\napiVersion: chaos.netlab.io/v1alpha1\nkind: NetworkChaos\nmetadata:\n  name: x\n  namespace: doomed\nspec:\n  action: explode\n  mode: all\n  selector: {{namespaces: [doomed]}}\n"
        ),
        "",
    );
    lab(
        "missing-image",
        "",
        &format!(
            "{ns}---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: doomed\nspec:\n  containers:\n  - name: c\n    image: nginx:0.0.404\n"
        ),
        "broken:\n- name: the pod runs\n  object: {resource: pods, namespace: doomed, name: p, jsonpath: \"{.status.phase}\"}\n  expect: {equals: Running}\n",
    );
    let dir = broken.path().to_str().unwrap();
    for (id, why) in [
        ("three-nodes", "it needs 3 Ready node(s) and the cluster has 2 (node-1, node-2)"),
        ("bad-fault", "applying setup.yaml:"),
        ("missing-image", "the pod runs: observed Pending"),
    ] {
        let out = c.run(&["lab", "--labs-dir", dir, "start", id], None);
        assert_ne!(out.code, Some(0), "{id} set up:\n{}", out.stdout);
        assert!(out.stderr.contains(&format!("lab \"{id}\" failed to set up: ")), "{id}: {}", out.stderr);
        assert!(out.stderr.contains(why), "{id}: {}", out.stderr);
        assert_ne!(c.run(&["get", "ns", "doomed"], None).code, Some(0), "{id} left its namespace");
    }
    let status = c.ok(&["lab", "--labs-dir", dir, "status"]);
    assert!(status.starts_with("No lab in progress."), "{status}");

    // external-traffic-local: accepting Local and running a backend on every node also passes.
    let task = c.start("external-traffic-local");
    assert!(task.contains(":30080/"), "{task}");
    c.check_fails("external-traffic-local", "answers on node-2: observed exit 28");
    c.ok(&["lab", "answer", "drop"]);
    c.apply(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: orders-node-2\n  namespace: edge\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: orders\n      copy: node-2\n  template:\n    metadata:\n      labels:\n        app: orders\n        copy: node-2\n    spec:\n      nodeName: node-2\n      containers:\n      - name: nginx\n        image: nginx:1.27\n        ports:\n        - name: http\n          containerPort: 80\n",
    );
    c.check_passes("external-traffic-local");
    c.reset("external-traffic-local", &["edge"]);
    c.start("external-traffic-local");
    c.solve("external-traffic-local");
    c.reset("external-traffic-local", &["edge"]);
}

#[test]
fn lab_errors_are_clear_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(bin("netlab"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .env("NETLAB_LABS_DIR", NativeCluster::labs_dir())
            .env("NETLAB_SERVER", "http://127.0.0.1:1")
            .output()
            .unwrap()
    };
    let unknown = run(&["lab", "start", "nope"]);
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.starts_with("error: lab \"nope\" not found; known labs: ip-owners, dns-flow"), "{stderr}");
    let bad = tempfile::tempdir().unwrap();
    std::fs::create_dir(bad.path().join("broken")).unwrap();
    std::fs::write(bad.path().join("broken/lab.yaml"), "id: broken\norder: 1\ntitle: x\n").unwrap();
    let out = Command::new(bin("netlab"))
        .args(["lab", "list", "--labs-dir", bad.path().to_str().unwrap()])
        .env("NETLAB_SERVER", "http://127.0.0.1:1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken/lab.yaml: missing field `topic`"), "{stderr}");
}
