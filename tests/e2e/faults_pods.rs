//! PodChaos `container-kill` and `pod-failure`, and ExhaustionChaos `pod-cidr`, as the kubelet of
//! the pod's node enforces them, across real processes: the apiserver, the controller-manager
//! (node IPAM, EndpointSlices), the registry and a node-agent.
//!
//! The chaos controller (which selects the pods) is not part of these scenarios: [`select`]
//! writes the records it would write, so the kubelet's side is tested on its own.

use std::time::Duration;

use k8s_openapi::{
    api::core::v1::{
        Container, ContainerPort, ContainerStatus, Namespace, Pod, PodSpec, Probe, TCPSocketAction,
    },
    apimachinery::pkg::{apis::meta::v1::ObjectMeta, util::intstr::IntOrString},
};
use netlab_chaos::{
    ExhaustionChaos, ExhaustionChaosSpec, PodChaos, PodChaosSpec,
    lab::ExhaustionAction,
    pod::PodAction,
    spec::{Mode, PodSelector, PodSelectorSpec},
    status::{Record, phase},
};
use netlab_client::Client;
use netlab_e2e::{
    Apiserver, Component, block_on, events_for, eventually, free_port, netlab,
    parts::{self, Node},
};

const NS: &str = "default";
const WAIT: Duration = Duration::from_secs(60);
const NODE: &str = "node-1";
/// 10 s of kubelet time lasts 1 s: long enough that a poll sees CrashLoopBackOff before it ends.
const SCALE: &str = "0.1";

struct Lab {
    _agent: Component,
    _cm: Component,
    _cloud: Component,
    api: Apiserver,
    _dir: tempfile::TempDir,
}

impl Lab {
    fn start(ip: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let api = Apiserver::start(&dir.path().join("api"), &[]);
        let url = api.url();
        let (cloud, registry) = parts::cloud();
        let cm = parts::controller_manager(&url, &[]);
        let node = Node { name: NODE, ip, port: free_port() };
        let agent = node.agent_scaled(&url, dir.path(), &registry, SCALE, &[]);
        Self { _agent: agent, _cm: cm, _cloud: cloud, api, _dir: dir }
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

/// nginx on the node, with a TCP readiness probe on its port.
fn web(name: &str) -> Pod {
    Pod {
        metadata: meta(name),
        spec: Some(PodSpec {
            node_name: Some(NODE.into()),
            containers: vec![Container {
                name: "app".into(),
                image: Some("nginx:1.27".into()),
                ports: Some(vec![ContainerPort { container_port: 80, ..Default::default() }]),
                readiness_probe: Some(Probe {
                    tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(80), ..Default::default() }),
                    period_seconds: Some(1),
                    failure_threshold: Some(1),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

fn toolbox(name: &str) -> Pod {
    Pod {
        metadata: meta(name),
        spec: Some(PodSpec {
            node_name: Some(NODE.into()),
            containers: vec![Container {
                name: "client".into(),
                image: Some("nicolaka/netshoot:v0.13".into()),
                command: Some(vec!["sleep".into(), "infinity".into()]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

fn pod_chaos(name: &str, action: PodAction, pod: &str, duration: Option<&str>) -> PodChaos {
    PodChaos {
        metadata: meta(name),
        spec: PodChaosSpec {
            action,
            pods: PodSelector {
                mode: Mode::One,
                selector: PodSelectorSpec {
                    pods: [(NS.to_string(), vec![pod.to_string()])].into(),
                    ..Default::default()
                },
                ..Default::default()
            },
            container_names: if action == PodAction::ContainerKill { vec!["app".into()] } else { vec![] },
            duration: duration.map(String::from),
            ..Default::default()
        },
        status: None,
    }
}

/// What the chaos controller does once it has selected `pods` for fault `name`: one record per
/// pod (`ns/name`, its IP and node) in `status.experiment.containerRecords`. The one place to
/// switch to the real controller.
async fn select(client: &Client, name: &str, pods: &[&Pod]) {
    let records: Vec<Record> = pods
        .iter()
        .map(|p| Record {
            id: format!("{NS}/{}", p.metadata.name.as_deref().unwrap_or_default()),
            selector_key: ".".into(),
            phase: phase::INJECTED.into(),
            injected_count: 1,
            pod_ip: p.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default(),
            node_name: p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default(),
            injected_at: jiff::Timestamp::now().to_string(),
            ..Default::default()
        })
        .collect();
    for _ in 0..10 {
        let mut fault: PodChaos = client.get(NS, name).await.expect("the fault");
        let status = fault.status.get_or_insert_with(Default::default);
        status.experiment.desired_phase = phase::RUN.into();
        status.experiment.container_records = records.clone();
        match client.update_status(&fault).await {
            Err(e) if e.is_conflict() => continue,
            other => {
                other.expect("writing the records");
                return;
            }
        }
    }
    panic!("could not write the records of {name}");
}

fn container(p: &Pod) -> Option<&ContainerStatus> {
    p.status.as_ref()?.container_statuses.as_ref()?.first()
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn wait_pod(client: &Client, name: &str, what: &str, check: impl Fn(&Pod) -> bool) -> Pod {
    eventually(&format!("pod {name}: {what}"), WAIT, || async {
        let p = client.get::<Pod>(NS, name).await.ok()?;
        check(&p).then_some(p)
    })
    .await
}

async fn counter(client: &Client, fault: &str, reporter: &str, name: &str) -> u64 {
    let f: PodChaos = client.get(NS, fault).await.expect("the fault");
    f.status.and_then(|s| s.counters.get(reporter)?.get(name).copied()).unwrap_or(0)
}

#[test]
fn container_kill_restarts_the_container_and_repeated_kills_crash_loop() {
    let lab = Lab::start("127.0.5.1");
    block_on(async {
        let client = lab.client().await;
        client.create(&web("web")).await.expect("create web");
        let pod = wait_pod(&client, "web", "Ready", ready).await;
        let uid = pod.metadata.uid.clone().unwrap_or_default();

        // One kill: exit 137 (SIGKILL), restarted at once, Ready again.
        client.create(&pod_chaos("kill-1", PodAction::ContainerKill, "web", None)).await.expect("kill-1");
        select(&client, "kill-1", &[&pod]).await;
        let pod = wait_pod(&client, "web", "restarted once", |p| {
            container(p).is_some_and(|c| c.restart_count == 1) && ready(p)
        })
        .await;
        let last =
            container(&pod).and_then(|c| c.last_state.clone()).and_then(|s| s.terminated).expect("lastState");
        assert_eq!((last.exit_code, last.reason.as_deref()), (137, Some("Error")), "{last:?}");
        assert!(last.container_id.as_deref().is_some_and(|id| id.starts_with("containerd://")));
        eventually("podsAffected of kill-1", WAIT, || async {
            (counter(&client, "kill-1", "node/node-1", "podsAffected").await == 1).then_some(())
        })
        .await;

        // A second kill soon after: the kubelet's backoff holds the restart (CrashLoopBackOff).
        client.create(&pod_chaos("kill-2", PodAction::ContainerKill, "web", None)).await.expect("kill-2");
        select(&client, "kill-2", &[&pod]).await;
        let looping = wait_pod(&client, "web", "CrashLoopBackOff", |p| {
            container(p)
                .and_then(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
                .is_some_and(|r| r == "CrashLoopBackOff")
        })
        .await;
        let waiting = container(&looping).and_then(|c| c.state.clone()?.waiting).expect("waiting");
        assert_eq!(
            waiting.message.as_deref(),
            Some(format!("back-off 10s restarting failed container=app pod=web_default({uid})").as_str())
        );
        assert!(!ready(&looping));
        assert_eq!(looping.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Running"));
        let backoff = events_for(&client, NS, "web", "BackOff").await;
        assert!(
            backoff.iter().any(|e| e.message.as_deref()
                == Some(
                    format!("Back-off restarting failed container app in pod web_default({uid})").as_str()
                )),
            "{backoff:?}"
        );
        // And after the backoff it runs again, restarted twice.
        wait_pod(&client, "web", "restarted twice", |p| {
            container(p).is_some_and(|c| c.restart_count == 2) && ready(p)
        })
        .await;
        // One-shots: nothing more happens to the pod.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let pod: Pod = client.get(NS, "web").await.expect("web");
        assert_eq!(container(&pod).map(|c| c.restart_count), Some(2));
    });
}

#[test]
fn pod_failure_refuses_connections_and_fails_readiness_until_it_ends() {
    let lab = Lab::start("127.0.5.2");
    let url = lab.api.url();
    block_on(async {
        let client = lab.client().await;
        client.create(&web("web")).await.expect("create web");
        client.create(&toolbox("client")).await.expect("create client");
        let pod = wait_pod(&client, "web", "Ready", ready).await;
        wait_pod(&client, "client", "Ready", ready).await;
        let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone()).expect("pod IP");
        let curl = |url: &str, ip: &str| {
            netlab(url, &["exec", "client", "--", "curl", "-sS", "-m", "5", &format!("http://{ip}/")], None)
        };
        assert_eq!(curl(&url, &ip).code, Some(0));

        client.create(&pod_chaos("fail", PodAction::PodFailure, "web", None)).await.expect("fail");
        select(&client, "fail", &[&pod]).await;
        let failed = wait_pod(&client, "web", "NotReady under pod-failure", |p| !ready(p)).await;
        let c = container(&failed).expect("status");
        assert_eq!(c.restart_count, 1, "the image swap restarts the container");
        assert_eq!(c.image, "gcr.io/google-containers/pause:latest");
        // The app is gone and nothing listens: refused at once, curl's exit 7.
        let refused = curl(&url, &ip);
        assert_eq!(refused.code, Some(7), "{refused:?}");
        assert!(refused.stderr.contains("Failed to connect"), "{refused:?}");
        let killing = events_for(&client, NS, "web", "Killing").await;
        assert!(
            killing
                .iter()
                .any(|e| e.message.as_deref() == Some("Container app definition changed, will be restarted")),
            "{killing:?}"
        );

        eventually("podsAffected of fail", WAIT, || async {
            (counter(&client, "fail", "node/node-1", "podsAffected").await == 1).then_some(())
        })
        .await;

        // Deleting the fault restores the app (another restart), Ready again, answering.
        client.delete::<PodChaos>(NS, "fail").await.expect("delete");
        let back = wait_pod(&client, "web", "Ready again", ready).await;
        assert_eq!(container(&back).map(|c| c.restart_count), Some(2));
        assert_eq!(curl(&url, &ip).code, Some(0));
    });
}

#[test]
fn pod_failure_ends_with_its_duration() {
    let lab = Lab::start("127.0.5.3");
    block_on(async {
        let client = lab.client().await;
        client.create(&web("web")).await.expect("create web");
        let pod = wait_pod(&client, "web", "Ready", ready).await;
        client.create(&pod_chaos("fail", PodAction::PodFailure, "web", Some("3s"))).await.expect("fail");
        select(&client, "fail", &[&pod]).await;
        wait_pod(&client, "web", "NotReady", |p| !ready(p)).await;
        let back = wait_pod(&client, "web", "Ready after the duration", ready).await;
        assert_eq!(container(&back).map(|c| c.restart_count), Some(2));
        assert_ne!(container(&back).map(|c| c.image.as_str()), Some("gcr.io/google-containers/pause:latest"));
    });
}

#[test]
fn pod_cidr_exhaustion_keeps_pods_in_container_creating_until_it_ends() {
    let lab = Lab::start("127.0.5.4");
    block_on(async {
        let client = lab.client().await;
        let fault = ExhaustionChaos {
            metadata: meta("full"),
            spec: ExhaustionChaosSpec {
                action: ExhaustionAction::PodCidr,
                nodes: vec![NODE.into()],
                duration: None,
            },
            status: None,
        };
        client.create(&fault).await.expect("create the fault");
        // The node sees the fault on its watch before it sees the pod created after it.
        client.create(&web("web")).await.expect("create web");
        let events = eventually("FailedCreatePodSandBox", WAIT, || async {
            let e = events_for(&client, NS, "web", "FailedCreatePodSandBox").await;
            let hit = e.into_iter().find(|e| {
                e.message.as_deref().is_some_and(|m| m.contains("no IP addresses available in range set"))
            })?;
            Some(hit)
        })
        .await;
        let msg = events.message.unwrap_or_default();
        let cidr = eventually("podCIDR", WAIT, || async {
            client.get::<k8s_openapi::api::core::v1::Node>("", NODE).await.ok()?.spec?.pod_cidr
        })
        .await;
        let base =
            cidr.split('/').next().unwrap_or_default().rsplit_once('.').map(|(a, _)| a.to_string()).unwrap();
        assert!(msg.starts_with("Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \""), "{msg}");
        assert!(
            msg.ends_with(&format!("\": plugin type=\"bridge\" name=\"cbr0\" failed (add): failed to allocate for range 0: no IP addresses available in range set: {base}.1-{base}.254")),
            "{msg}"
        );
        let pending: Pod = client.get(NS, "web").await.expect("web");
        let waiting = container(&pending).and_then(|c| c.state.clone()?.waiting).and_then(|w| w.reason);
        assert_eq!(waiting.as_deref(), Some("ContainerCreating"));
        assert_eq!(pending.status.as_ref().and_then(|s| s.pod_ip.as_deref()), None);
        let refused = eventually("allocationsRefused", WAIT, || async {
            let f: ExhaustionChaos = client.get(NS, "full").await.ok()?;
            f.status?.counters.get("node/node-1")?.get("allocationsRefused").copied().filter(|n| *n > 0)
        })
        .await;
        assert!(refused >= 1);

        // The fault deleted, the kubelet's next sandbox attempt gets an address.
        client.delete::<ExhaustionChaos>(NS, "full").await.expect("delete");
        let pod = wait_pod(&client, "web", "Ready", ready).await;
        assert_eq!(pod.status.and_then(|s| s.pod_ip), Some(format!("{base}.2")));
    });
}
