//! Nodes with the real node-agent: the apiserver, controller-manager (node IPAM), scheduler, the
//! `cloud` registry and node-agents on 127.0.1.x, all as separate processes. Pod IPs come from
//! the right node's podCIDR starting at .2, survive a `kill -9` of the node-agent, are handed out
//! round-robin, run out on a /29 with containerd's error, and a typo'd image backs off 10, 20,
//! 40 s (× the agents' time scale).

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    path::PathBuf,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec},
        core::v1::{Container, Namespace, Node, Pod, PodSpec, PodTemplateSpec},
    },
    apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta},
};
use netlab_client::{Client, ListParams};
use netlab_e2e::{Apiserver, Component, block_on, events_for, eventually, parts};

const NS: &str = "default";
const WAIT: Duration = Duration::from_secs(30);
/// The time scale of the backoff test: coarse enough that a busy machine's delay in seeing an
/// event (tens of milliseconds in CI) stays well inside the tolerance (10 s lasts 500 ms).
const BACKOFF_SCALE: f64 = 0.05;

/// The control plane, the registry and some node-agents.
struct Cluster {
    // Drop order: agents first, then the rest, the apiserver last.
    agents: BTreeMap<String, Component>,
    _scheduler: Component,
    _cm: Component,
    _cloud: Component,
    api: Apiserver,
    registry: String,
    /// The node-agents' `--time-scale`.
    scale: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start(nodes: &[(&str, &str)], mask: &str) -> Self {
        Self::start_scaled(nodes, mask, parts::TIME_SCALE)
    }

    /// [`Cluster::start`] with node-agents running at `--time-scale scale`.
    fn start_scaled(nodes: &[(&str, &str)], mask: &str, scale: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let api = Apiserver::start(&dir.path().join("api"), &[]);
        let url = api.url();
        let (cloud, registry) = parts::cloud();
        let cm = parts::controller_manager(&url, &["--node-cidr-mask-size", mask]);
        let scheduler = parts::scheduler(&url, &[]);
        let mut c = Self {
            agents: BTreeMap::new(),
            _scheduler: scheduler,
            _cm: cm,
            _cloud: cloud,
            registry,
            scale: scale.to_string(),
            api,
            dir,
        };
        for (name, ip) in nodes {
            c.start_agent(name, ip);
        }
        c
    }

    fn data_dir(&self, node: &str) -> PathBuf {
        self.dir.path().join(node)
    }

    fn start_agent(&mut self, name: &str, ip: &str) {
        // Port 0: any free one; the Node's status tells where (its kubeletEndpoint).
        let node = parts::Node { name, ip, port: 0 };
        let agent = node.agent_scaled(&self.api.url(), self.dir.path(), &self.registry, &self.scale, &[]);
        self.agents.insert(name.to_string(), agent);
    }

    async fn client(&self) -> Client {
        let client = Client::new(&self.api.url()).expect("client");
        let _ = client.create(&Namespace { metadata: meta(NS), ..Default::default() }).await;
        client
    }
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), namespace: Some(NS.into()), ..Default::default() }
}

fn pod_on(name: &str, node: &str, image: &str) -> Pod {
    Pod {
        metadata: meta(name),
        spec: Some(PodSpec {
            node_name: Some(node.into()),
            containers: vec![Container {
                name: "app".into(),
                image: Some(image.into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_ip(p: &Pod) -> Option<Ipv4Addr> {
    p.status.as_ref()?.pod_ip.as_ref()?.parse().ok()
}

async fn pod_cidr(client: &Client, node: &str) -> Cidr {
    eventually("the node's podCIDR", WAIT, || async {
        client.get::<Node>("", node).await.ok()?.spec?.pod_cidr?.parse().ok()
    })
    .await
}

async fn wait_ready(client: &Client, name: &str) -> Pod {
    eventually(&format!("pod {name} Ready"), WAIT, || async {
        let p = client.get::<Pod>(NS, name).await.ok()?;
        ready(&p).then_some(p)
    })
    .await
}

fn host(cidr: Cidr, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(cidr.network) + n)
}

#[test]
fn deployment_ips_restart_and_round_robin() {
    let mut cluster = Cluster::start(&[("node-1", "127.0.1.1"), ("node-2", "127.0.1.2")], "24");
    block_on(async {
        let client = cluster.client().await;
        // Node IPs are the agents' own; each node gets a podCIDR and turns Ready.
        let mut cidrs = BTreeMap::new();
        for (node, ip) in [("node-1", "127.0.1.1"), ("node-2", "127.0.1.2")] {
            cidrs.insert(node.to_string(), pod_cidr(&client, node).await);
            let n = eventually("node Ready", WAIT, || async {
                let n = client.get::<Node>("", node).await.ok()?;
                let st = n.status.clone()?;
                st.conditions?.iter().any(|c| c.type_ == "Ready" && c.status == "True").then_some(n)
            })
            .await;
            let st = n.status.expect("status");
            let addrs: Vec<(String, String)> =
                st.addresses.expect("addresses").into_iter().map(|a| (a.type_, a.address)).collect();
            assert_eq!(addrs, [("InternalIP".into(), ip.into()), ("Hostname".into(), node.into())]);
            assert_eq!(st.allocatable.expect("allocatable")["pods"].0, "110");
            let info = st.node_info.expect("nodeInfo");
            assert_eq!(info.kubelet_version, "v1.33.0");
            assert!(info.container_runtime_version.starts_with("containerd://"));
        }

        // A Deployment of 3 nginx pods: Ready, IPs from their node's podCIDR from .2 upwards.
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        let deployment = Deployment {
            metadata: meta("web"),
            spec: Some(DeploymentSpec {
                replicas: Some(3),
                selector: LabelSelector { match_labels: Some(labels.clone()), ..Default::default() },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "nginx".into(),
                            image: Some("nginx:1.27".into()),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: None,
        };
        client.create(&deployment).await.expect("create deployment");
        let pods = eventually("3 Ready web pods", WAIT, || async {
            let params = ListParams { namespace: NS.into(), labels: "app=web".into(), ..Default::default() };
            let (pods, _) = client.list::<Pod>(&params).await.ok()?;
            (pods.len() == 3 && pods.iter().all(ready)).then_some(pods)
        })
        .await;
        let mut by_node: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
        for p in &pods {
            let node = p.spec.as_ref().and_then(|s| s.node_name.clone()).expect("bound");
            let ip = pod_ip(p).expect("podIP");
            assert!(cidrs[&node].contains(&ip), "{ip} not in {node}'s {}", cidrs[&node]);
            let st = p.status.as_ref().expect("status");
            assert_eq!(st.phase.as_deref(), Some("Running"));
            assert_eq!(st.host_ip.as_deref(), Some(if node == "node-1" { "127.0.1.1" } else { "127.0.1.2" }));
            let cs = &st.container_statuses.as_ref().expect("containerStatuses")[0];
            assert_eq!(cs.image, "docker.io/library/nginx:1.27");
            assert!(cs.image_id.starts_with("docker.io/library/nginx@sha256:"), "{}", cs.image_id);
            assert_eq!(cs.container_id.as_ref().map(|c| c.len()), Some("containerd://".len() + 64));
            // The pod's resolv.conf and its CNI result.
            let uid = p.metadata.uid.as_deref().expect("uid");
            let resolv = std::fs::read_to_string(
                cluster.data_dir(&node).join("pods").join(uid).join("etc/resolv.conf"),
            )
            .expect("resolv.conf");
            assert_eq!(
                resolv,
                "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
            );
            by_node.entry(node).or_default().push(ip);
        }
        for (node, ips) in &mut by_node {
            ips.sort();
            let want: Vec<Ipv4Addr> = (0..ips.len() as u32).map(|i| host(cidrs[node], 2 + i)).collect();
            assert_eq!(*ips, want, "{node}'s pods start at .2");
        }
        let annotated = eventually("the CNI result annotation", WAIT, || async {
            let p = client.get::<Pod>(NS, pods[0].metadata.name.as_deref()?).await.ok()?;
            p.metadata.annotations?.get("netlab.io/cni-result").cloned()
        })
        .await;
        let cni: serde_json::Value = serde_json::from_str(&annotated).expect("CNI result JSON");
        assert_eq!(cni["cniVersion"], "1.0.0");
        assert_eq!(cni["ips"][0]["address"], format!("{}/24", pod_ip(&pods[0]).expect("ip")));

        // kill -9 node-1's agent and start it again: every pod keeps its IP and container, with
        // no new pull or start.
        let before: BTreeMap<String, (Option<Ipv4Addr>, Option<String>)> = pods
            .iter()
            .map(|p| {
                let id = p
                    .status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .and_then(|c| c[0].container_id.clone());
                (p.metadata.name.clone().expect("name"), (pod_ip(p), id))
            })
            .collect();
        // Events are written in the background: wait until every start is on record.
        let started_before = eventually("3 Started events", WAIT, || async {
            let n = pods_events(&client, &pods, "Started").await;
            (n == 3).then_some(n)
        })
        .await;
        let agent = cluster.agents.get_mut("node-1").expect("node-1");
        agent.kill9();
        agent.restart();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for (name, (ip, id)) in &before {
            let p = wait_ready(&client, name).await;
            assert_eq!(pod_ip(&p), *ip, "{name} kept its IP");
            let now_id = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|c| c[0].container_id.clone());
            assert_eq!(&now_id, id, "{name} kept its container");
        }
        assert_eq!(pods_events(&client, &pods, "Started").await, started_before, "no container restarted");
        let files: Vec<String> = std::fs::read_dir(cluster.data_dir("node-1").join("cni/networks/cbr0"))
            .expect("host-local dir")
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(String::from))
            .filter(|n| n.parse::<Ipv4Addr>().is_ok())
            .collect();
        assert_eq!(
            files.len(),
            by_node.get("node-1").map_or(0, Vec::len),
            "one state file per node-1 pod: {files:?}"
        );

        // Round robin: a deleted pod's IP is not the next one handed out.
        let cidr1 = cidrs["node-1"];
        let highest = by_node.get("node-1").and_then(|v| v.last().copied()).unwrap_or(host(cidr1, 1));
        client.create(&pod_on("solo-a", "node-1", "nginx:1.27")).await.expect("create solo-a");
        let a = wait_ready(&client, "solo-a").await;
        let a_ip = pod_ip(&a).expect("ip");
        assert_eq!(a_ip, Ipv4Addr::from(u32::from(highest) + 1));
        client.delete::<Pod>(NS, "solo-a").await.expect("delete solo-a");
        eventually("solo-a gone", WAIT, || async {
            client.get::<Pod>(NS, "solo-a").await.err().filter(|e| e.is_not_found())
        })
        .await;
        assert!(
            !cluster.data_dir("node-1").join("cni/networks/cbr0").join(a_ip.to_string()).exists(),
            "IP released"
        );
        client.create(&pod_on("solo-b", "node-1", "nginx:1.27")).await.expect("create solo-b");
        let b = wait_ready(&client, "solo-b").await;
        assert_eq!(pod_ip(&b), Some(Ipv4Addr::from(u32::from(a_ip) + 1)), "the next IP, not the freed one");
    });
}

async fn pods_events(client: &Client, pods: &[Pod], reason: &str) -> i32 {
    let mut n = 0;
    for p in pods {
        for e in events_for(client, NS, p.metadata.name.as_deref().unwrap_or(""), reason).await {
            n += e.count.unwrap_or(1);
        }
    }
    n
}

#[test]
fn small_pod_cidr_fills_up() {
    let cluster = Cluster::start(&[("node-1", "127.0.1.1")], "29");
    block_on(async {
        let client = cluster.client().await;
        let cidr = pod_cidr(&client, "node-1").await;
        assert_eq!(cidr.prefix_len(), 29);
        for i in 0..5 {
            client.create(&pod_on(&format!("p{i}"), "node-1", "nginx:1.27")).await.expect("create");
        }
        let mut ips = Vec::new();
        for i in 0..5 {
            ips.push(pod_ip(&wait_ready(&client, &format!("p{i}")).await).expect("ip"));
        }
        ips.sort();
        assert_eq!(ips, (2..=6).map(|n| host(cidr, n)).collect::<Vec<_>>());
        client.create(&pod_on("p5", "node-1", "nginx:1.27")).await.expect("create p5");
        let events = eventually("FailedCreatePodSandBox", WAIT, || async {
            let e = events_for(&client, NS, "p5", "FailedCreatePodSandBox").await;
            (!e.is_empty()).then_some(e)
        })
        .await;
        let msg = events[0].message.clone().unwrap_or_default();
        let range = format!("{}-{}", host(cidr, 1), host(cidr, 6));
        assert!(msg.starts_with("Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \""), "{msg}");
        assert!(
            msg.ends_with(&format!("\": plugin type=\"bridge\" name=\"cbr0\" failed (add): failed to allocate for range 0: no IP addresses available in range set: {range}")),
            "{msg}"
        );
        assert_eq!(events[0].type_.as_deref(), Some("Warning"));
        let p = client.get::<Pod>(NS, "p5").await.expect("p5");
        let st = p.status.expect("status");
        assert_eq!(st.phase.as_deref(), Some("Pending"));
        assert_eq!(st.pod_ip, None);
        let waiting = st.container_statuses.expect("statuses")[0]
            .state
            .clone()
            .and_then(|s| s.waiting)
            .expect("waiting");
        assert_eq!(waiting.reason.as_deref(), Some("ContainerCreating"));
        // The kubelet retries: the event repeats.
        eventually("a retried sandbox", WAIT, || async {
            let n: i32 = events_for(&client, NS, "p5", "FailedCreatePodSandBox")
                .await
                .iter()
                .map(|e| e.count.unwrap_or(1))
                .sum();
            (n >= 3).then_some(())
        })
        .await;
        // Freeing an address lets it through.
        client.delete::<Pod>(NS, "p0").await.expect("delete p0");
        let p5 = wait_ready(&client, "p5").await;
        assert!(cidr.contains(&pod_ip(&p5).expect("ip")));
    });
}

#[test]
fn typo_image_backs_off() {
    let cluster = Cluster::start_scaled(&[("node-1", "127.0.1.1")], "24", &BACKOFF_SCALE.to_string());
    block_on(async {
        let client = cluster.client().await;
        pod_cidr(&client, "node-1").await;
        // Record each Pulling attempt as it happens (the event's count grows per attempt).
        let watcher = {
            let client = client.clone();
            tokio::spawn(async move {
                let mut seen = Vec::<(i32, Instant)>::new();
                let deadline = Instant::now() + WAIT;
                while seen.len() < 4 && Instant::now() < deadline {
                    let n: i32 = events_for(&client, NS, "typo", "Pulling")
                        .await
                        .iter()
                        .map(|e| e.count.unwrap_or(1))
                        .sum();
                    if n > seen.last().map_or(0, |s| s.0) {
                        seen.push((n, Instant::now()));
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                seen
            })
        };
        // Every status write is a watch event, so a short-lived waiting reason (ErrImagePull lasts
        // 1 s × time-scale before ImagePullBackOff) is seen however busy the machine is; polling
        // could miss it.
        let params =
            ListParams { namespace: NS.into(), fields: "metadata.name=typo".into(), ..Default::default() };
        let mut stream = client.watch::<Pod>(&params, None).await.expect("watch");
        client.create(&pod_on("typo", "node-1", "nginx:typo")).await.expect("create");
        let mut reasons: Vec<(String, String)> = Vec::new();
        let deadline = Instant::now() + WAIT;
        while !reasons.iter().any(|(r, _)| r == "ImagePullBackOff") {
            let left = deadline.saturating_duration_since(Instant::now());
            let batch = tokio::time::timeout(left, stream.message())
                .await
                .unwrap_or_else(|_| panic!("ErrImagePull then ImagePullBackOff; saw {reasons:?}"))
                .expect("watch")
                .expect("open");
            for ev in batch.events {
                let Some(obj) = ev.object else { continue };
                let Ok(p) = serde_json::from_slice::<Pod>(&obj.json) else { continue };
                let waiting = p
                    .status
                    .and_then(|s| s.container_statuses)
                    .and_then(|c| c.first().cloned())
                    .and_then(|c| c.state)
                    .and_then(|s| s.waiting);
                if let Some(w) = waiting {
                    let r = (w.reason.unwrap_or_default(), w.message.unwrap_or_default());
                    if reasons.last() != Some(&r) {
                        reasons.push(r);
                    }
                }
            }
        }
        let not_found = "failed to pull and unpack image \"docker.io/library/nginx:typo\": failed to resolve reference \"docker.io/library/nginx:typo\": docker.io/library/nginx:typo: not found";
        let err = reasons
            .iter()
            .position(|(r, _)| r == "ErrImagePull")
            .unwrap_or_else(|| panic!("ErrImagePull first: {reasons:?}"));
        let backoff = reasons.iter().position(|(r, _)| r == "ImagePullBackOff").unwrap_or(0);
        assert!(err < backoff, "ErrImagePull before ImagePullBackOff: {reasons:?}");
        assert_eq!(reasons[err].1, format!("rpc error: code = NotFound desc = {not_found}"));
        let m = &reasons[backoff].1;
        assert!(m.starts_with("Back-off pulling image \"nginx:typo\": ErrImagePull: rpc error"), "{m}");
        let seen = watcher.await.expect("watcher");
        assert!(seen.len() >= 4, "4 pull attempts: {seen:?}");
        let gaps: Vec<f64> =
            seen.windows(2).map(|w| (w[1].1 - w[0].1).as_secs_f64() / BACKOFF_SCALE).collect();
        // Each gap is the backoff plus the pull, seen by polling events: a late sighting makes
        // one gap longer and the next shorter. 0.7× still tells doubling from a constant wait
        // (a constant 10 s fails the second gap).
        for (gap, want) in gaps.iter().zip([10.0, 20.0, 40.0]) {
            assert!(
                *gap >= want * 0.7 && *gap <= want * 1.5 + 5.0,
                "waits {gaps:?} (scaled seconds), want 10, 20, 40"
            );
        }
        let failed: Vec<String> =
            events_for(&client, NS, "typo", "Failed").await.into_iter().filter_map(|e| e.message).collect();
        assert!(
            failed.contains(&format!(
                "Failed to pull image \"nginx:typo\": rpc error: code = NotFound desc = {not_found}"
            )),
            "{failed:?}"
        );
        assert!(failed.contains(&"Error: ErrImagePull".to_string()), "{failed:?}");
        assert!(failed.contains(&"Error: ImagePullBackOff".to_string()), "{failed:?}");
        let backoff = events_for(&client, NS, "typo", "BackOff").await;
        assert_eq!(backoff[0].message.as_deref(), Some("Back-off pulling image \"nginx:typo\""));

        // A readiness probe that fails keeps a Running pod out of Ready.
        let mut probed = pod_on("unready", "node-1", "nginx:1.27");
        probed.spec.as_mut().expect("spec").containers[0].readiness_probe =
            Some(k8s_openapi::api::core::v1::Probe {
                http_get: Some(k8s_openapi::api::core::v1::HTTPGetAction {
                    path: Some("/status/503".into()),
                    port: k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(80),
                    ..Default::default()
                }),
                period_seconds: Some(1),
                ..Default::default()
            });
        client.create(&probed).await.expect("create unready");
        let unhealthy = eventually("Unhealthy", WAIT, || async {
            let e = events_for(&client, NS, "unready", "Unhealthy").await;
            e.first().and_then(|e| e.message.clone())
        })
        .await;
        assert_eq!(unhealthy, "Readiness probe failed: HTTP probe failed with statuscode: 503");
        let p = client.get::<Pod>(NS, "unready").await.expect("unready");
        assert_eq!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Running"));
        assert!(!ready(&p), "Running but not Ready");
    });
}

/// An IPv4 CIDR (the e2e crate has no ipnet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    network: Ipv4Addr,
    prefix: u8,
}

impl Cidr {
    fn prefix_len(&self) -> u8 {
        self.prefix
    }

    fn contains(&self, ip: &Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
        u32::from(*ip) & mask == u32::from(self.network)
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (ip, prefix) = s.split_once('/').ok_or("no prefix")?;
        Ok(Cidr {
            network: ip.parse().map_err(|_| "bad ip")?,
            prefix: prefix.parse().map_err(|_| "bad prefix")?,
        })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Pod create → Ready with the image cached, across 100 pods; prints p50/p99. Pods are bound
/// directly (spec.nodeName) so the time is the kubelet's alone. A benchmark, not a test: run by
/// `cargo bench -p netlab-e2e --bench kubelet`, which includes this file.
#[allow(dead_code)] // unused in the e2e test binary; benches/kubelet.rs calls it
pub fn pod_create_to_ready_latency() {
    let cluster = Cluster::start(&[("node-1", "127.0.1.1")], "24");
    block_on(async {
        let client = cluster.client().await;
        pod_cidr(&client, "node-1").await;
        client.create(&pod_on("warm", "node-1", "nginx:1.27")).await.expect("warm");
        wait_ready(&client, "warm").await;
        let params = ListParams { namespace: NS.into(), ..Default::default() };
        let mut stream = client.watch::<Pod>(&params, None).await.expect("watch");
        let mut took = Vec::new();
        for i in 0..100 {
            let name = format!("bench-{i}");
            let start = Instant::now();
            client.create(&pod_on(&name, "node-1", "nginx:1.27")).await.expect("create");
            'wait: loop {
                let batch = tokio::time::timeout(WAIT, stream.message())
                    .await
                    .expect("in time")
                    .expect("watch")
                    .expect("open");
                for ev in batch.events {
                    let Some(obj) = ev.object else { continue };
                    let Ok(p) = serde_json::from_slice::<Pod>(&obj.json) else {
                        continue;
                    };
                    if p.metadata.name.as_deref() == Some(name.as_str()) && ready(&p) {
                        break 'wait;
                    }
                }
            }
            took.push(start.elapsed());
        }
        took.sort();
        eprintln!(
            "pod create -> Ready (cached image), 100 pods: p50 {:?} p99 {:?} max {:?}",
            took[49], took[98], took[99]
        );
    });
}

/// kube-proxy's full sync at 10,000 Services is ~15 MB of iptables-restore text, and
/// `iptables-save` returns as much: the real node-agent's kernel API takes it and the real CLI
/// prints it back (tonic's default 4 MiB message limit refused both above ~2,800 Services).
#[test]
fn kernel_api_takes_a_full_sync_of_10000_services() {
    use netlab_proto::node::v1::{Format, RestoreRequest, kernel_client::KernelClient};
    let cluster = Cluster::start(&[("node-1", "127.0.1.9")], "24");
    let text = full_sync(10_000);
    assert!(text.len() > 8 << 20, "the restore is {} bytes, not over twice the old limit", text.len());
    block_on(async {
        let client = cluster.client().await;
        let port = eventually("node-1's kubelet port", WAIT, || async {
            let n = client.get::<Node>("", "node-1").await.ok()?;
            let port = n.status?.daemon_endpoints?.kubelet_endpoint?.port;
            (port > 0).then_some(port)
        })
        .await;
        let ch = tonic::transport::Endpoint::from_shared(format!("http://127.0.1.9:{port}"))
            .expect("url")
            .connect()
            .await
            .expect("connect to the kernel API");
        // Limits as the proxy sets them; the server's are the ones under test.
        let mut kernel = KernelClient::new(ch).max_encoding_message_size(usize::MAX);
        let rules = kernel
            .restore(RestoreRequest {
                format: Format::Iptables as i32,
                text: text.clone(),
                noflush: true,
                ..Default::default()
            })
            .await
            .expect("a 10,000-Service full sync is accepted")
            .into_inner()
            .rules;
        assert!(rules >= 130_000, "{rules} rules programmed");
    });
    let save = netlab_e2e::netlab(&cluster.api.url(), &["node", "iptables-save", "node-1"], None).ok().stdout;
    assert!(save.len() > 8 << 20, "iptables-save printed only {} bytes", save.len());
    for last in ["-A KUBE-SERVICES -d 10.96.39.15/32 ", "--to-destination 10.244.135.15:8080"] {
        assert!(save.contains(last), "iptables-save lacks {last:?}");
    }
}

/// The nat table of a full sync with `n` Services of 4 endpoints each, shaped as kube-proxy
/// writes it (KUBE-SERVICES → KUBE-SVC-* → statistic → KUBE-SEP-* → DNAT).
fn full_sync(n: u32) -> String {
    use std::fmt::Write as _;
    let mut chains = String::from("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n");
    let mut rules = String::from("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n");
    for s in 0..n {
        let vip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + s);
        let svc = format!("KUBE-SVC-S{s}");
        let _ = writeln!(chains, ":{svc} - [0:0]");
        let _ = writeln!(
            rules,
            "-A KUBE-SERVICES -d {vip}/32 -p tcp -m comment --comment \"ns/svc-{s}:http cluster IP\" -m tcp --dport 80 -j {svc}"
        );
        for e in 0..4u32 {
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 0, 0)) + s + e * (1 << 16) / 8);
            let sep = format!("KUBE-SEP-S{s}E{e}");
            let _ = writeln!(chains, ":{sep} - [0:0]");
            let prob = match 4 - e {
                1 => String::new(),
                left => format!(" -m statistic --mode random --probability {:.10}", 1.0 / f64::from(left)),
            };
            let _ = writeln!(
                rules,
                "-A {svc} -m comment --comment \"ns/svc-{s}:http -> {ip}:8080\"{prob} -j {sep}"
            );
            let _ = writeln!(
                rules,
                "-A {sep} -s {ip}/32 -m comment --comment \"ns/svc-{s}:http\" -j KUBE-MARK-MASQ"
            );
            let _ = writeln!(
                rules,
                "-A {sep} -p tcp -m comment --comment \"ns/svc-{s}:http\" -m tcp -j DNAT --to-destination {ip}:8080"
            );
        }
    }
    chains + &rules + "COMMIT\n"
}

/// The kubelet keeps posting node status after its network turned ready (the lifecycle
/// controller marks a node NotReady once its heartbeat is older than the grace period).
#[test]
fn heartbeats_go_on_after_the_network_is_ready() {
    let cluster = Cluster::start(&[("node-1", "127.0.1.1")], "24");
    block_on(async {
        let client = cluster.client().await;
        let heartbeat = |node: Node| {
            node.status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "Ready" && c.status == "True")?
                .last_heartbeat_time
        };
        let first = eventually("node-1 Ready", WAIT, || async {
            heartbeat(client.get::<Node>("", "node-1").await.ok()?)
        })
        .await;
        // At the agents' time scale a heartbeat is due every 100 ms: within a few seconds the
        // Ready condition's lastHeartbeatTime must have moved on by whole seconds.
        eventually("a later heartbeat", WAIT, || async {
            let now = heartbeat(client.get::<Node>("", "node-1").await.ok()?)?;
            (now.0.as_second() >= first.0.as_second() + 2).then_some(())
        })
        .await;
    });
}

/// The kubelet's token manager: a projected service-account token is refreshed once 80 % of its
/// lifetime has passed (600 s → 480 s, 4.8 s at the node's time scale of 0.01), the new token
/// written over the old file, with a later expiry.
#[test]
fn projected_tokens_are_refreshed_at_80_percent_of_their_life() {
    let cluster = Cluster::start(&[("node-1", "127.0.1.31")], "24");
    let file = block_on(async {
        let client = cluster.client().await;
        pod_cidr(&client, "node-1").await;
        let mut pod = pod_on("tok", "node-1", "nginx:1.27");
        let pod_json = serde_json::json!({
            "volumes": [{"name": "tok", "projected": {"sources": [
                {"serviceAccountToken": {"audience": "sts.amazonaws.com", "expirationSeconds": 600, "path": "token"}}
            ]}}]
        });
        let spec = pod.spec.as_mut().unwrap();
        spec.volumes = serde_json::from_value(pod_json["volumes"].clone()).unwrap();
        // The default ServiceAccount comes from the controller-manager: retry until it exists.
        eventually("the tok pod created", WAIT, || async { client.create(&pod).await.ok() }).await;
        let p = wait_ready(&client, "tok").await;
        cluster.data_dir("node-1").join("pods").join(p.metadata.uid.unwrap()).join("volumes/tok/token")
    });
    let read = || std::fs::read_to_string(&file).unwrap_or_default();
    let exp = |token: &str| -> i64 {
        let claims = token.split('.').nth(1).unwrap_or_default();
        let bytes = data_encoding::BASE64URL_NOPAD.decode(claims.as_bytes()).unwrap_or_default();
        serde_json::from_slice::<serde_json::Value>(&bytes).ok().and_then(|c| c["exp"].as_i64()).unwrap_or(0)
    };
    let first = read();
    assert!(exp(&first) > 0, "a JWT in {}: {first:?}", file.display());
    let started = std::time::Instant::now();
    let second = loop {
        let now = read();
        if !now.is_empty() && now != first {
            break now;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the token was never refreshed");
        std::thread::sleep(Duration::from_millis(200));
    };
    // Not before 80 % of the (scaled) life: 4.8 s, less the time the pod took to start.
    assert!(started.elapsed() > Duration::from_secs(3), "refreshed after only {:?}", started.elapsed());
    assert!(exp(&second) > exp(&first), "the new token expires later");
}
