//! The controller-manager's node IPAM, EndpointSlice controller and garbage collector, as real
//! processes against the real apiserver: Nodes register and pods report status through the API,
//! as a kubelet would; nothing else (no scheduler, no workload controllers) runs.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec, ReplicaSet, ReplicaSetSpec},
        core::v1::{
            Container, ContainerPort, Event, Node, NodeAddress, NodeCondition, NodeStatus, Pod, PodCondition,
            PodIP, PodSpec, PodStatus, PodTemplateSpec, Service, ServicePort, ServiceSpec,
        },
        discovery::v1::EndpointSlice,
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference},
        util::intstr::IntOrString,
    },
};
use netlab_client::{Client, ListParams};
use netlab_e2e::{Apiserver, Component, eventually, parts, runtime};

const WAIT: Duration = Duration::from_secs(20);
const CONTROLLERS: &str = "--controllers=nodeipam,endpointslice,garbagecollector";

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn controller_manager(api: &Apiserver, extra: &[&str]) -> Component {
    let mut args = vec![CONTROLLERS];
    args.extend_from_slice(extra);
    parts::controller_manager(&api.url(), &args)
}

/// Registers a Node as a kubelet does: Ready, with an address and allocatable pods.
async fn register_node(client: &Client, name: &str, ip: &str, zone: &str) {
    let node = Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels(&[("kubernetes.io/hostname", name), ("topology.kubernetes.io/zone", zone)])),
            ..Default::default()
        },
        status: Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: Some("KubeletReady".into()),
                message: Some("kubelet is posting ready status".into()),
                ..Default::default()
            }]),
            addresses: Some(vec![
                NodeAddress { type_: "InternalIP".into(), address: ip.into() },
                NodeAddress { type_: "Hostname".into(), address: name.into() },
            ]),
            allocatable: Some([("pods".to_string(), Quantity("110".into()))].into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    client.create(&node).await.expect("register node");
}

async fn pod_cidr(client: &Client, name: &str) -> Option<String> {
    let node = client.get::<Node>("", name).await.ok()?;
    let spec = node.spec?;
    let cidrs = spec.pod_cidrs.unwrap_or_default();
    assert!(cidrs.len() <= 1, "one IPv4 podCIDR: {cidrs:?}");
    assert_eq!(cidrs.first(), spec.pod_cidr.as_ref(), "podCIDRs[0] == podCIDR");
    spec.pod_cidr
}

#[test]
fn nodes_get_distinct_pod_cidrs_that_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    let mut cm = controller_manager(&api, &[]);
    runtime().block_on(async {
        let client = Client::new(&api.url()).unwrap();
        for (i, name) in ["node-1", "node-2", "node-3"].iter().enumerate() {
            register_node(&client, name, &format!("172.18.0.{}", i + 2), "zone-a").await;
        }
        let mut cidrs = Vec::new();
        for name in ["node-1", "node-2", "node-3"] {
            cidrs.push(eventually(&format!("{name}'s podCIDR"), WAIT, || pod_cidr(&client, name)).await);
        }
        for c in &cidrs {
            let (addr, len) = c.split_once('/').expect("a CIDR");
            let addr: std::net::Ipv4Addr = addr.parse().expect("an IPv4 network");
            assert_eq!(len, "24", "{c}");
            assert_eq!(addr.octets()[..2], [10, 244], "{c} is inside 10.244.0.0/16");
            assert_eq!(addr.octets()[3], 0, "{c} is a network address");
        }
        let distinct: std::collections::HashSet<_> = cidrs.iter().collect();
        assert_eq!(distinct.len(), 3, "distinct: {cidrs:?}");

        // A restarted controller-manager rebuilds what is taken from the Nodes themselves.
        cm.restart();
        register_node(&client, "node-4", "172.18.0.5", "zone-b").await;
        let fourth = eventually("node-4's podCIDR", WAIT, || pod_cidr(&client, "node-4")).await;
        assert!(!cidrs.contains(&fourth), "{fourth} was already taken: {cidrs:?}");
        for (name, before) in ["node-1", "node-2", "node-3"].iter().zip(&cidrs) {
            assert_eq!(pod_cidr(&client, name).await.as_ref(), Some(before), "{name} keeps its podCIDR");
        }
    });
}

#[test]
fn an_exhausted_cluster_cidr_leaves_the_node_without_one_and_says_cidr_not_available() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    let _cm = controller_manager(&api, &["--cluster-cidr", "10.244.0.0/23"]);
    runtime().block_on(async {
        let client = Client::new(&api.url()).unwrap();
        register_node(&client, "node-1", "172.18.0.2", "zone-a").await;
        register_node(&client, "node-2", "172.18.0.3", "zone-a").await;
        let first = eventually("node-1's podCIDR", WAIT, || pod_cidr(&client, "node-1")).await;
        eventually("node-2's podCIDR", WAIT, || pod_cidr(&client, "node-2")).await;
        register_node(&client, "node-3", "172.18.0.4", "zone-a").await;
        let event = eventually("the CIDRNotAvailable event", WAIT, || async {
            let params = ListParams {
                namespace: "default".into(),
                fields: "involvedObject.name=node-3,reason=CIDRNotAvailable".into(),
                ..Default::default()
            };
            client.list::<Event>(&params).await.ok()?.0.into_iter().next()
        })
        .await;
        assert_eq!(event.message.as_deref(), Some("Node node-3 status is now: CIDRNotAvailable"));
        assert_eq!(event.type_.as_deref(), Some("Normal"));
        assert_eq!(event.source.and_then(|s| s.component).as_deref(), Some("cidrAllocator"));
        assert_eq!(event.involved_object.kind.as_deref(), Some("Node"));
        assert_eq!(pod_cidr(&client, "node-3").await, None, "no CIDR when the range is exhausted");

        // A deleted Node's block goes back to the pool, and the waiting Node gets it.
        client.delete::<Node>("", "node-1").await.unwrap();
        let third = eventually("node-3's podCIDR", WAIT, || pod_cidr(&client, "node-3")).await;
        assert_eq!(third, first);
    });
}

fn web_service() -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            labels: Some(labels(&[("app", "web"), ("tier", "frontend")])),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(labels(&[("app", "web")])),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::String("web".into())),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A pod as a workload controller would create it, bound to `node` and reported Running with
/// `ip` (Ready as given) as its kubelet would.
async fn run_pod(client: &Client, name: &str, node: &str, ip: &str, ready: bool) -> Pod {
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            labels: Some(labels(&[("app", "web")])),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "web".into(),
                image: Some("nginx:1.27".into()),
                ports: Some(vec![ContainerPort {
                    name: Some("web".into()),
                    container_port: 8080,
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    client.create(&pod).await.expect("create pod");
    client.bind("default", name, node).await.expect("bind pod");
    set_pod_status(client, name, ip, ready).await
}

async fn set_pod_status(client: &Client, name: &str, ip: &str, ready: bool) -> Pod {
    let mut pod = client.get::<Pod>("default", name).await.expect("get pod");
    pod.metadata.resource_version = None;
    let status = if ready { "True" } else { "False" };
    pod.status = Some(PodStatus {
        phase: Some("Running".into()),
        pod_ip: Some(ip.into()),
        pod_ips: Some(vec![PodIP { ip: ip.into() }]),
        host_ip: Some("172.18.0.2".into()),
        conditions: Some(vec![
            PodCondition { type_: "PodScheduled".into(), status: "True".into(), ..Default::default() },
            PodCondition { type_: "Initialized".into(), status: "True".into(), ..Default::default() },
            PodCondition { type_: "ContainersReady".into(), status: status.into(), ..Default::default() },
            PodCondition { type_: "Ready".into(), status: status.into(), ..Default::default() },
        ]),
        ..Default::default()
    });
    client.update_status(&pod).await.expect("update pod status")
}

async fn web_slices(client: &Client) -> Vec<EndpointSlice> {
    let params = ListParams {
        namespace: "default".into(),
        labels: "kubernetes.io/service-name=web".into(),
        ..Default::default()
    };
    client.list::<EndpointSlice>(&params).await.map(|(s, _)| s).unwrap_or_default()
}

/// (pod name, ready, serving, terminating) of every endpoint of `web`, sorted.
async fn web_endpoints(client: &Client) -> Vec<(String, bool, bool, bool)> {
    let mut out: Vec<_> = web_slices(client)
        .await
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|e| {
            let c = e.conditions.clone().unwrap_or_default();
            let name = e.target_ref.as_ref().and_then(|t| t.name.clone()).unwrap_or_default();
            (name, c.ready == Some(true), c.serving == Some(true), c.terminating == Some(true))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn endpoint_slices_follow_pod_readiness_and_termination_and_go_with_their_service() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    let mut cm = controller_manager(&api, &[]);
    runtime().block_on(async {
        let client = Client::new(&api.url()).unwrap();
        register_node(&client, "node-1", "172.18.0.2", "zone-a").await;
        register_node(&client, "node-2", "172.18.0.3", "zone-b").await;
        let svc = client.create(&web_service()).await.expect("create service");
        let svc_uid = svc.metadata.uid.clone().unwrap();

        // Running but not Ready: listed, and neither ready nor serving.
        run_pod(&client, "web-1", "node-1", "10.244.0.5", false).await;
        run_pod(&client, "web-2", "node-2", "10.244.1.5", false).await;
        let expected =
            vec![("web-1".to_string(), false, false, false), ("web-2".to_string(), false, false, false)];
        eventually("unready endpoints", WAIT, || async {
            (web_endpoints(&client).await == expected).then_some(())
        })
        .await;

        // Ready: ready and serving.
        set_pod_status(&client, "web-1", "10.244.0.5", true).await;
        set_pod_status(&client, "web-2", "10.244.1.5", true).await;
        let expected =
            vec![("web-1".to_string(), true, true, false), ("web-2".to_string(), true, true, false)];
        eventually("ready endpoints", WAIT, || async {
            (web_endpoints(&client).await == expected).then_some(())
        })
        .await;

        let slices = web_slices(&client).await;
        assert_eq!(slices.len(), 1, "{slices:?}");
        let slice = &slices[0];
        assert!(slice.metadata.name.as_deref().unwrap().starts_with("web-"));
        assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(slice.address_type, "IPv4");
        let l = slice.metadata.labels.clone().unwrap();
        assert_eq!(l.get("kubernetes.io/service-name").map(String::as_str), Some("web"));
        assert_eq!(
            l.get("endpointslice.kubernetes.io/managed-by").map(String::as_str),
            Some("endpointslice-controller.k8s.io")
        );
        assert_eq!(l.get("tier").map(String::as_str), Some("frontend"), "the Service's labels are copied");
        assert!(!l.contains_key("service.kubernetes.io/headless"));
        let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            owner,
            &OwnerReference {
                api_version: "v1".into(),
                kind: "Service".into(),
                name: "web".into(),
                uid: svc_uid.clone(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }
        );
        let port = &slice.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.port, port.protocol.as_deref()),
            (Some("http"), Some(8080), Some("TCP")),
            "the named targetPort is resolved from the pod"
        );
        let web1 = slice.endpoints.iter().find(|e| e.addresses == ["10.244.0.5"]).expect("web-1's endpoint");
        assert_eq!(web1.node_name.as_deref(), Some("node-1"));
        assert_eq!(web1.zone.as_deref(), Some("zone-a"));
        let target = web1.target_ref.as_ref().unwrap();
        assert_eq!((target.kind.as_deref(), target.namespace.as_deref()), (Some("Pod"), Some("default")));

        // Graceful deletion of a bound pod: Terminating, still serving, no longer ready.
        client.delete::<Pod>("default", "web-1").await.expect("delete web-1");
        let expected =
            vec![("web-1".to_string(), false, true, true), ("web-2".to_string(), true, true, false)];
        eventually("a terminating endpoint", WAIT, || async {
            (web_endpoints(&client).await == expected).then_some(())
        })
        .await;
        // Its kubelet finishes the deletion: the endpoint goes.
        client.delete_with::<Pod>("default", "web-1", Some(0)).await.expect("force delete web-1");
        let expected = vec![("web-2".to_string(), true, true, false)];
        eventually("web-1 gone", WAIT, || async { (web_endpoints(&client).await == expected).then_some(()) })
            .await;

        // A restart rebuilds from the slices that exist: still one slice, updated in place.
        let before = web_slices(&client).await;
        cm.restart();
        // Once the restarted controller has synced a Service created after the restart, it has
        // synced `web` (queued by its first list) too: which must not have been rewritten.
        let mut probe = web_service();
        probe.metadata.name = Some("probe".into());
        client.create(&probe).await.expect("create probe service");
        let params = ListParams {
            namespace: "default".into(),
            labels: "kubernetes.io/service-name=probe".into(),
            ..Default::default()
        };
        eventually("the restarted controller at work", WAIT, || async {
            (!client.list::<EndpointSlice>(&params).await.ok()?.0.is_empty()).then_some(())
        })
        .await;
        let untouched = web_slices(&client).await;
        assert_eq!(untouched.len(), 1);
        assert_eq!(
            untouched[0].metadata.resource_version, before[0].metadata.resource_version,
            "a restart does not rewrite a slice that is already right"
        );
        run_pod(&client, "web-3", "node-2", "10.244.1.6", true).await;
        let expected =
            vec![("web-2".to_string(), true, true, false), ("web-3".to_string(), true, true, false)];
        eventually("web-3 listed after the restart", WAIT, || async {
            (web_endpoints(&client).await == expected).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = web_slices(&client).await;
        assert_eq!(after.len(), 1, "no duplicate slices after a restart: {after:?}");
        assert_eq!(after[0].metadata.name, before[0].metadata.name);

        // Deleting the Service removes its slices.
        client.delete::<Service>("default", "web").await.expect("delete service");
        eventually("the slices gone", WAIT, || async { web_slices(&client).await.is_empty().then_some(()) })
            .await;
    });
}

#[test]
fn a_headless_service_without_pods_gets_one_placeholder_slice() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    let _cm = controller_manager(&api, &[]);
    runtime().block_on(async {
        let client = Client::new(&api.url()).unwrap();
        let mut svc = web_service();
        svc.spec.as_mut().unwrap().cluster_ip = Some("None".into());
        client.create(&svc).await.expect("create service");
        let slices = eventually("a placeholder slice", WAIT, || async {
            let s = web_slices(&client).await;
            (!s.is_empty()).then_some(s)
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let slices_later = web_slices(&client).await;
        assert_eq!(slices_later.len(), 1, "{slices_later:?}");
        assert_eq!(
            slices_later[0].metadata.resource_version, slices[0].metadata.resource_version,
            "left alone once right"
        );
        assert!(slices[0].endpoints.is_empty());
        let l = slices[0].metadata.labels.clone().unwrap();
        assert_eq!(l.get("service.kubernetes.io/headless").map(String::as_str), Some(""));

        // A selector-less Service is left to its user: no managed slice appears.
        let mut manual = web_service();
        manual.metadata.name = Some("manual".into());
        manual.spec.as_mut().unwrap().selector = None;
        client.create(&manual).await.expect("create manual service");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let params = ListParams {
            namespace: "default".into(),
            labels: "kubernetes.io/service-name=manual".into(),
            ..Default::default()
        };
        assert!(client.list::<EndpointSlice>(&params).await.unwrap().0.is_empty());
    });
}

#[test]
fn deleting_a_deployment_collects_its_replica_sets_and_their_pods() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    let _cm = controller_manager(&api, &[]);
    runtime().block_on(async {
        let client = Client::new(&api.url()).unwrap();
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta { labels: Some(labels(&[("app", "orders")])), ..Default::default() }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "orders".into(),
                    image: Some("orders:1".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        };
        let selector =
            LabelSelector { match_labels: Some(labels(&[("app", "orders")])), ..Default::default() };
        let owner = |kind: &str, name: &str, uid: &str| OwnerReference {
            api_version: "apps/v1".into(),
            kind: kind.into(),
            name: name.into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let deployment = Deployment {
            metadata: ObjectMeta {
                name: Some("orders".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(0),
                selector: selector.clone(),
                template: template.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let deployment = client.create(&deployment).await.expect("create deployment");
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some("orders-7d9f8c6b5d".into()),
                namespace: Some("default".into()),
                owner_references: Some(vec![owner(
                    "Deployment",
                    "orders",
                    deployment.metadata.uid.as_deref().unwrap(),
                )]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                selector,
                template: Some(template.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let rs = client.create(&rs).await.expect("create replicaset");
        let rs_owner = owner("ReplicaSet", "orders-7d9f8c6b5d", rs.metadata.uid.as_deref().unwrap());
        for name in ["orders-7d9f8c6b5d-x2x7k", "orders-7d9f8c6b5d-b8kqz"] {
            let pod = Pod {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some("default".into()),
                    labels: Some(labels(&[("app", "orders")])),
                    owner_references: Some(vec![rs_owner.clone()]),
                    ..Default::default()
                },
                spec: template.spec.clone(),
                ..Default::default()
            };
            client.create(&pod).await.expect("create pod");
        }
        // An orphan-to-be that also has a live owner keeps living, minus the dead reference.
        let keeper = ReplicaSet {
            metadata: ObjectMeta {
                name: Some("keeper".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: rs.spec.clone(),
            ..Default::default()
        };
        let keeper = client.create(&keeper).await.expect("create keeper");
        let shared = Pod {
            metadata: ObjectMeta {
                name: Some("shared".into()),
                namespace: Some("default".into()),
                owner_references: Some(vec![
                    OwnerReference { controller: Some(false), ..rs_owner.clone() },
                    owner("ReplicaSet", "keeper", keeper.metadata.uid.as_deref().unwrap()),
                ]),
                ..Default::default()
            },
            spec: template.spec.clone(),
            ..Default::default()
        };
        client.create(&shared).await.expect("create shared pod");

        // Give the collector time to see everything: nothing owned by live objects may go.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let pods = || async {
            client
                .list::<Pod>(&ListParams { namespace: "default".into(), ..Default::default() })
                .await
                .unwrap()
                .0
        };
        assert_eq!(pods().await.len(), 3);

        client.delete::<Deployment>("default", "orders").await.expect("delete deployment");
        eventually("the ReplicaSet collected", WAIT, || async {
            client.get::<ReplicaSet>("default", "orders-7d9f8c6b5d").await.err().filter(|e| e.is_not_found())
        })
        .await;
        let left = eventually("the pods collected", WAIT, || async {
            let left = pods().await;
            (left.len() == 1).then_some(left)
        })
        .await;
        assert_eq!(left[0].metadata.name.as_deref(), Some("shared"));
        let refs = eventually("the dangling reference removed", WAIT, || async {
            let p = client.get::<Pod>("default", "shared").await.ok()?;
            let refs = p.metadata.owner_references.unwrap_or_default();
            (refs.len() == 1).then_some(refs)
        })
        .await;
        assert_eq!(refs[0].name, "keeper");
        assert!(client.get::<ReplicaSet>("default", "keeper").await.is_ok());
    });
}
