//! The published way to run the lab: compose.yaml with the locally built image. Needs a Docker
//! engine and the image (`scripts/build-image-offline.sh` or `docker compose build`), so these
//! tests are ignored by plain `cargo test`; `.ci/run` runs them when a Docker engine answers.

use std::{
    path::PathBuf,
    process::{Command, Output},
    time::{Duration, Instant},
};

use netlab_e2e::{free_port, netlab};

/// compose.yaml fixes the lab network's subnet, so two projects cannot be up at once.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The lab's services without Jaeger (its image cannot be pulled on the project's machines).
const LAB: [&str; 10] = [
    "apiserver",
    "controller-manager",
    "scheduler",
    "dns",
    "cloud",
    "node-1",
    "proxy-1",
    "node-2",
    "proxy-2",
    "demo",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `docker-compose` (1.29, as Debian ships it) or, failing that, `docker compose` (v2).
fn compose(project: &str, port: u16, args: &[&str]) -> Output {
    compose_with(project, &[("NETLAB_APISERVER_PORT", port)], args)
}

fn compose_with(project: &str, ports: &[(&str, u16)], args: &[&str]) -> Output {
    compose_files(&["compose.yaml"], project, ports, args)
}

/// [`compose_with`] over the compose `files` (`compose.yaml` and an override).
fn compose_files(files: &[&str], project: &str, ports: &[(&str, u16)], args: &[&str]) -> Output {
    let (program, mut full): (&str, Vec<&str>) =
        if Command::new("docker-compose").arg("version").output().is_ok() {
            ("docker-compose", vec![])
        } else {
            ("docker", vec!["compose"])
        };
    for f in files {
        full.extend(["-f", f]);
    }
    full.extend(["-p", project]);
    full.extend(args);
    Command::new(program)
        .args(&full)
        .current_dir(repo())
        .envs(ports.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        // No Jaeger here (its image cannot be pulled on the project's machines): no export.
        .env("NETLAB_OTLP_ENDPOINT", "")
        .output()
        .expect("run compose")
}

struct Down<'a>(&'a str, u16);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = compose(self.0, self.1, &["down", "-v", "--remove-orphans"]);
    }
}

#[test]
#[ignore = "needs docker"]
fn compose_up_serves_the_api_inside_and_on_the_host() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let project = format!("netlab-e2e-{}", std::process::id());
    let port = free_port();
    let _down = Down(&project, port);
    let up = compose(&project, port, &["up", "-d", "apiserver"]);
    assert!(up.status.success(), "compose up: {}", String::from_utf8_lossy(&up.stderr));

    let started = Instant::now();
    let container = format!("{project}_apiserver_1");
    let health = |name: &str| {
        let out =
            Command::new("docker").args(["inspect", "-f", "{{.State.Health.Status}}", name]).output().ok()?;
        Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    // Compose v2 names containers with dashes.
    let container = if health(&container).is_some_and(|h| !h.is_empty()) {
        container
    } else {
        format!("{project}-apiserver-1")
    };
    loop {
        if health(&container).as_deref() == Some("healthy") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "apiserver not healthy: {:?}",
            health(&container)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("apiserver healthy after {:?}", started.elapsed());

    let inside = compose(&project, port, &["exec", "-T", "apiserver", "netlab", "get", "svc", "-A"]);
    let table = String::from_utf8_lossy(&inside.stdout);
    assert!(inside.status.success(), "{}", String::from_utf8_lossy(&inside.stderr));
    assert!(
        table.contains("kubernetes") && table.contains("10.96.0.1 ") && table.contains("10.96.0.10"),
        "{table}"
    );

    let host = netlab(&format!("127.0.0.1:{port}"), &["get", "ns", "-o", "name"], None).ok();
    assert!(host.stdout.contains("namespace/kube-system"), "{}", host.stdout);
}

fn docker_ip(container: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container])
        .output()
        .expect("docker inspect");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn dig(port: u16, name: &str) -> String {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+short", "+time=2", "+tries=1", name])
        .output()
        .expect("dig (dnsutils)");
    // dig prints its errors (";; communications error ...", ";; no servers could be reached")
    // on stdout too, even with +short: only the answer lines count.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with(";;"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

struct DownAll(String, Vec<(&'static str, u16)>);

impl Drop for DownAll {
    fn drop(&mut self) {
        let _ = compose_with(&self.0, &self.1, &["down", "-v", "--remove-orphans"]);
    }
}

#[test]
#[ignore = "needs docker"]
fn the_whole_lab_comes_up_nodes_use_container_addresses_and_dns_answers_the_host() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let project = format!("netlab-lab-{}", std::process::id());
    let ports = vec![
        ("NETLAB_APISERVER_PORT", free_port()),
        ("NETLAB_DNS_PORT", free_port()),
        ("NETLAB_REGISTRY_PORT", free_port()),
    ];
    let _down = DownAll(project.clone(), ports.clone());
    let services = LAB;
    let mut args = vec!["up", "-d"];
    args.extend(services);
    let started = Instant::now();
    let up = compose_with(&project, &ports, &args);
    assert!(up.status.success(), "compose up: {}", String::from_utf8_lossy(&up.stderr));
    let server = format!("127.0.0.1:{}", ports[0].1);
    let get = |args: &[&str]| netlab(&server, args, None);

    // Nodes register with the addresses Docker gave their containers.
    let nodes = loop {
        let run = get(&["get", "nodes", "-o", "json"]);
        if run.code == Some(0) {
            let list = run.json();
            let items = list["items"].as_array().cloned().unwrap_or_default();
            let ready = items
                .iter()
                .filter(|n| {
                    n["status"]["conditions"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
                })
                .count();
            if ready == 2 {
                break items;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(90), "two Ready nodes");
        std::thread::sleep(Duration::from_millis(250));
    };
    eprintln!("two nodes Ready after {:?}", started.elapsed());
    for node in &nodes {
        let name = node["metadata"]["name"].as_str().unwrap();
        let internal = node["status"]["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["type"] == "InternalIP")
            .unwrap()["address"]
            .clone();
        let container = [format!("{project}_{name}_1"), format!("{project}-{name}-1")]
            .into_iter()
            .map(|c| docker_ip(&c))
            .find(|ip| !ip.is_empty())
            .unwrap();
        assert_eq!(internal, container.as_str(), "{name}'s InternalIP is its container's address");
    }

    // The demo's orders pods run with IPs from their node's podCIDR.
    let pods = loop {
        let list = get(&["get", "pods", "-n", "demo", "-l", "app=orders", "-o", "json"]).json();
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if items.len() == 3 && items.iter().all(|p| p["status"]["podIP"].is_string()) {
            break items;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "three orders pods with IPs");
        std::thread::sleep(Duration::from_millis(250));
    };
    for pod in &pods {
        let node = pod["spec"]["nodeName"].as_str().unwrap();
        let ip = pod["status"]["podIP"].as_str().unwrap();
        let cidr = nodes.iter().find(|n| n["metadata"]["name"] == node).unwrap()["spec"]["podCIDR"]
            .as_str()
            .unwrap()
            .to_string();
        let prefix = cidr.rsplit_once('.').unwrap().0;
        assert!(cidr.ends_with(".0/24") && ip.starts_with(&format!("{prefix}.")), "{ip} in {cidr}");
    }

    // DNS from the host: the Service's ClusterIP, and an outside name forwarded to cloud.
    let svc = get(&["get", "svc", "orders", "-n", "demo", "-o", "jsonpath={.spec.clusterIP}"]).ok().stdout;
    let dns_port = ports[1].1;
    let answer = loop {
        let a = dig(dns_port, "orders.demo.svc.cluster.local");
        if !a.is_empty() {
            break a;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "dns answers");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(answer, svc);
    assert_eq!(dig(dns_port, "example.com"), "93.184.215.14");

    // Inside the cluster: the client pod reaches orders by name (resolv.conf search path, the
    // kube-dns ClusterIP DNATed by proxy-N's rules to the dns container, then the orders
    // ClusterIP to a pod, possibly across the wire to the other node). `netlab exec` reaches the
    // node's kubelet port at the container's address, as kubectl reaches a kubelet.
    let body = loop {
        let run =
            get(&["exec", "-n", "demo", "client", "--", "curl", "-sS", "-m", "5", "http://orders.demo/"]);
        if run.code == Some(0) && run.stdout.starts_with("pod=orders-") {
            break run.stdout;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "curl http://orders.demo/ from the client pod: {}",
            run.stderr
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(body.contains("namespace=demo"), "{body}");
    // node-1's proxy may sync a moment after node-2's (the client can run on either node).
    let save = loop {
        let save = get(&["node", "iptables-save", "node-1"]).ok().stdout;
        if save.contains("-A KUBE-SERVICES -m comment --comment \"demo/orders:http cluster IP\"") {
            break save;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "node-1's rules for demo/orders:\n{save}");
        std::thread::sleep(Duration::from_millis(250));
    };
    eprintln!("curl by name through the proxies after {:?}", started.elapsed());

    // The kubernetes Service leads to the apiserver container: it publishes its own address
    // (taken from its default route) and port as the Service's endpoint.
    let apiserver = [format!("{project}_apiserver_1"), format!("{project}-apiserver-1")]
        .into_iter()
        .map(|c| docker_ip(&c))
        .find(|ip| !ip.is_empty())
        .unwrap();
    assert!(
        save.contains(&format!("-j DNAT --to-destination {apiserver}:6443")),
        "the kubernetes Service's endpoint is the apiserver container {apiserver}:6443:\n{save}"
    );
    let nc =
        get(&["exec", "-n", "demo", "client", "--", "nc", "-zv", "-w", "5", "kubernetes.default", "443"]);
    assert_eq!(nc.code, Some(0), "nc -zv kubernetes.default 443: {nc:?}");

    break_each_kind(&project, &ports, &server);
    one_lab_end_to_end(&project, &ports);
}

/// A lab run from inside the apiserver's container, as a workshop runs it: the image carries
/// the catalogue, and progress lives in the cluster.
fn one_lab_end_to_end(project: &str, ports: &[(&'static str, u16)]) {
    let lab = |args: &[&str]| {
        let mut full = vec!["exec", "-T", "apiserver", "netlab", "lab"];
        full.extend_from_slice(args);
        let out = compose_with(project, ports, &full);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, list) = lab(&["list"]);
    assert_eq!(code, Some(0), "{list}");
    assert!(list.contains("no-endpoints") && list.contains("not started"), "{list}");
    let (code, start) = lab(&["start", "no-endpoints"]);
    assert_eq!(code, Some(0), "{start}");
    let (code, check) = lab(&["check"]);
    assert_eq!(code, Some(1), "{check}");
    assert!(check.contains("✘ client reaches orders by name: observed exit 7"), "{check}");
    let (code, solved) = lab(&["solution", "--apply"]);
    assert_eq!(code, Some(0), "{solved}");
    let (code, check) = lab(&["check"]);
    assert_eq!(code, Some(0), "{check}");
    assert!(check.contains("lab no-endpoints passed"), "{check}");
    let (code, reset) = lab(&["reset"]);
    assert_eq!(code, Some(0), "{reset}");
    let (_, list) = lab(&["list"]);
    assert!(list.lines().any(|l| l.starts_with("no-endpoints") && l.ends_with("passed")), "{list}");
}

/// Polls `probe` every 500 ms until it gives Some, for at most 90 s.
fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// One fault of each kind in the composed lab: the symptom a user sees with it, and the flow
/// back after `netlab fault delete`. Faults are created from the host CLI, and one from inside
/// the apiserver's container, as a workshop would.
fn break_each_kind(project: &str, ports: &[(&'static str, u16)], server: &str) {
    let get = |args: &[&str]| netlab(server, args, None);
    let (dns_port, registry_port) = (ports[1].1, ports[2].1);
    let delete = |name: &str| {
        let run = get(&["fault", "delete", name]);
        assert_eq!(run.code, Some(0), "fault delete {name}: {}", run.stderr);
    };
    let exec = |args: &[&str]| {
        let mut full = vec!["exec", "-n", "demo", "client", "--"];
        full.extend_from_slice(args);
        get(&full)
    };

    // DNSChaos: the client pod's lookups of orders get NXDOMAIN (the chaos controller selects
    // the pod, dns matches its source IP); other names and other pods are untouched.
    get(&[
        "fault",
        "dns",
        "-n",
        "demo",
        "--pods",
        "app=client",
        "--names",
        "orders.*",
        "--error",
        "NXDOMAIN",
        "--name",
        "nx",
    ])
    .ok();
    wait_for("nslookup orders.demo answers NXDOMAIN under DNSChaos", || {
        let run = exec(&["nslookup", "orders.demo"]);
        (run.code != Some(0) && (run.stdout.contains("NXDOMAIN") || run.stderr.contains("NXDOMAIN")))
            .then_some(())
    });
    delete("nx");
    wait_for("nslookup orders.demo answers again", || {
        (exec(&["nslookup", "orders.demo"]).code == Some(0)).then_some(())
    });

    // NetworkChaos: a partition from the client to orders; curl times out (exit 28).
    get(&["fault", "partition", "-n", "demo", "--from", "app=client", "--to", "app=orders", "--name", "cut"])
        .ok();
    wait_for("curl times out across the partition", || {
        (exec(&["curl", "-sS", "-m", "2", "http://orders.demo/"]).code == Some(28)).then_some(())
    });
    delete("cut");
    wait_for("curl works again", || {
        (exec(&["curl", "-sS", "-m", "5", "http://orders.demo/"]).code == Some(0)).then_some(())
    });

    // PodChaos: one orders pod killed; its ReplicaSet replaces it.
    let names = || {
        let list = get(&["get", "pods", "-n", "demo", "-l", "app=orders", "-o", "json"]).json();
        let mut running: Vec<String> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null())
            .filter_map(|p| p["metadata"]["name"].as_str().map(String::from))
            .collect();
        running.sort();
        running
    };
    let before = names();
    get(&[
        "fault",
        "pod",
        "kill",
        "-n",
        "demo",
        "--pods",
        "app=orders",
        "--mode",
        "one",
        "--grace-period",
        "0",
        "--name",
        "kill1",
    ])
    .ok();
    wait_for("a replacement orders pod runs", || {
        let now = names();
        (now.len() == before.len() && now != before).then_some(())
    });
    delete("kill1");

    // ComponentChaos, from inside the apiserver's container: the cluster DNS stopped; the host's
    // dig gets no answer; back after delete.
    let inside = compose_with(
        project,
        ports,
        &["exec", "-T", "apiserver", "netlab", "fault", "stop", "dns", "--name", "dns-down"],
    );
    assert!(inside.status.success(), "fault stop dns inside: {}", String::from_utf8_lossy(&inside.stderr));
    wait_for("dns is stopped", || dig(dns_port, "orders.demo.svc.cluster.local").is_empty().then_some(()));
    delete("dns-down");
    wait_for("dns answers again", || {
        (!dig(dns_port, "orders.demo.svc.cluster.local").is_empty()).then_some(())
    });

    // RegistryChaos: Docker Hub's rate limit on nginx, seen by a real client (skopeo).
    let skopeo = || {
        Command::new("skopeo")
            .args([
                "inspect",
                "--tls-verify=false",
                &format!("docker://127.0.0.1:{registry_port}/library/nginx:1.27"),
            ])
            .output()
            .expect("skopeo")
    };
    get(&["fault", "registry", "--repo", "library/nginx*", "--status", "429", "--name", "rate"]).ok();
    wait_for("the registry answers 429", || {
        let out = skopeo();
        (!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("toomanyrequests"))
            .then_some(())
    });
    delete("rate");
    wait_for("skopeo inspects nginx again", || skopeo().status.success().then_some(()));

    // UpstreamDNSChaos: the outside resolver answers SERVFAIL; cluster names still resolve.
    // Each probe asks a new name, so CoreDNS's cache cannot answer it.
    let mut n = 0;
    let mut status = |name: &str| {
        n += 1;
        let out = Command::new("dig")
            .args([
                "@127.0.0.1",
                "-p",
                &dns_port.to_string(),
                "+time=3",
                "+tries=1",
                &format!("probe-{n}.{name}"),
            ])
            .output()
            .expect("dig");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    get(&["fault", "upstream", "--servfail", "--name", "upstream"]).ok();
    wait_for("external names get SERVFAIL", || {
        status("example.com").contains("status: SERVFAIL").then_some(())
    });
    assert!(!dig(dns_port, "orders.demo.svc.cluster.local").is_empty(), "cluster names still resolve");
    delete("upstream");
    wait_for("external names resolve again", || {
        (!status("example.com").contains("status: SERVFAIL")).then_some(())
    });

    // ExhaustionChaos: the Service CIDR is full; a new Service is refused as a real apiserver
    // refuses it.
    let svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: one-more\n  namespace: demo\nspec:\n  ports:\n  - port: 80\n";
    get(&["fault", "exhaust", "service-cidr", "--name", "full"]).ok();
    let refused = netlab(server, &["apply", "-f", "-"], Some(svc));
    assert_ne!(refused.code, Some(0));
    assert!(refused.stderr.contains("failed to allocate a serviceIP: range is full"), "{}", refused.stderr);
    delete("full");
    netlab(server, &["apply", "-f", "-"], Some(svc)).ok();
    get(&["delete", "service", "one-more", "-n", "demo"]).ok();
    assert_eq!(get(&["fault", "list"]).stderr, "No resources found\n");
}

struct DownFiles(&'static [&'static str], String, Vec<(&'static str, u16)>);

impl Drop for DownFiles {
    fn drop(&mut self) {
        let _ = compose_files(self.0, &self.1, &self.2, &["down", "-v", "--remove-orphans"]);
    }
}

/// The EKS flavour's override: nodes with the VPC CNI, their instance types' max pods, no
/// podCIDRs, and pods on VPC addresses of their node's ENIs.
#[test]
#[ignore = "needs docker"]
fn the_eks_override_runs_the_vpc_cni_on_both_nodes() {
    const FILES: &[&str] = &["compose.yaml", "compose.eks.yaml"];
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let project = format!("netlab-eks-{}", std::process::id());
    let ports = vec![
        ("NETLAB_APISERVER_PORT", free_port()),
        ("NETLAB_DNS_PORT", free_port()),
        ("NETLAB_REGISTRY_PORT", free_port()),
        ("NETLAB_AWS_PORT", free_port()),
    ];
    let _down = DownFiles(FILES, project.clone(), ports.clone());
    let services = LAB;
    let mut args = vec!["up", "-d"];
    args.extend(services);
    let up = compose_files(FILES, &project, &ports, &args);
    assert!(up.status.success(), "compose up: {}", String::from_utf8_lossy(&up.stderr));
    let server = format!("127.0.0.1:{}", ports[0].1);
    let get = |args: &[&str]| netlab(&server, args, None);
    let nodes = wait_for("two Ready EKS nodes", || {
        let run = get(&["get", "nodes", "-o", "json"]);
        let items =
            (run.code == Some(0)).then(|| run.json()["items"].as_array().cloned().unwrap_or_default())?;
        let ready = items
            .iter()
            .filter(|n| {
                n["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
            })
            .count();
        (ready == 2).then_some(items)
    });
    for (name, max) in [("node-1", "17"), ("node-2", "29")] {
        let node = nodes.iter().find(|n| n["metadata"]["name"] == name).unwrap();
        assert_eq!(node["status"]["allocatable"]["pods"], max, "{name}");
        assert!(node["spec"]["podCIDR"].is_null(), "{name}: {node}");
    }
    let pods = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: default}\nspec:\n  nodeName: node-1\n  containers: [{name: t, image: nicolaka/netshoot:v0.13, command: [sleep, infinity]}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: default}\nspec:\n  nodeName: node-2\n  containers: [{name: web, image: \"nginx:1.27\"}]\n";
    netlab(&server, &["apply", "-f", "-"], Some(pods)).ok();
    let ips = wait_for("both pods with addresses", || {
        let list = get(&["get", "pods", "-o", "json"]).json();
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let ips: Vec<String> = items
            .iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_string))
            .collect();
        (ips.len() == 2).then_some(ips)
    });
    assert!(ips.iter().all(|ip| ip.starts_with("192.168.")), "VPC addresses: {ips:?}");
    let b = get(&["get", "pod", "b", "-o", "jsonpath={.status.podIP}"]).ok().stdout;
    let curl = wait_for("a reaches b across the VPC", || {
        let r = get(&[
            "exec",
            "a",
            "--",
            "curl",
            "-sS",
            "-m",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{b}/"),
        ]);
        (r.code == Some(0)).then_some(r.stdout)
    });
    assert_eq!(curl, "200");
    let enis = get(&["node", "enis", "node-2"]).ok().stdout;
    assert!(enis.lines().any(|l| l.contains(&b) && l.ends_with("default/b")), "{enis}");
    // The demo service created aws-node, whose pods run on both nodes from the AMI's cache.
    wait_for("aws-node's pods Ready", || {
        let r = get(&["get", "ds", "aws-node", "-n", "kube-system", "-o", "jsonpath={.status.numberReady}"]);
        (r.code == Some(0) && r.stdout == "2").then_some(())
    });
}
