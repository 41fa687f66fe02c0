//! Unit tests of the EndpointSlice rules: every condition, skip, port, hostname, label and
//! chunking rule of [`derive`], and the write planning of [`plan`].

use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::{
    api::{
        core::v1::{
            Container, ContainerPort, Node, Pod, PodCondition, PodIP, PodSpec, PodStatus, Service,
            ServicePort, ServiceSpec,
        },
        discovery::v1::{EndpointConditions, EndpointSlice},
    },
    apimachinery::pkg::{
        apis::meta::v1::{ObjectMeta, Time},
        util::intstr::IntOrString,
    },
};

use super::{derive, plan};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn service(name: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            labels: Some(labels(&[("team", "shop")])),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(labels(&[("app", name)])),
            cluster_ip: Some("10.96.0.20".into()),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::Int(8080)),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A Running, Ready pod on node-1 with IP 10.244.1.`n`.
fn pod(app: &str, n: u32) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("{app}-{n:03}")),
            namespace: Some("default".into()),
            uid: Some(format!("pod-uid-{n}")),
            labels: Some(labels(&[("app", app)])),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some("node-1".into()),
            containers: vec![Container { name: "main".into(), ..Default::default() }],
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            pod_ip: Some(format!("10.244.{}.{}", 1 + n / 250, 1 + n % 250)),
            pod_ips: Some(vec![PodIP { ip: format!("10.244.{}.{}", 1 + n / 250, 1 + n % 250) }]),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

fn unready(mut p: Pod) -> Pod {
    if let Some(cs) = p.status.as_mut().and_then(|s| s.conditions.as_mut()) {
        cs[0].status = "False".into();
    }
    p
}

fn terminating(mut p: Pod) -> Pod {
    p.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
    p
}

fn node(name: &str, zone: Option<&str>) -> Arc<Node> {
    let mut n =
        Node { metadata: ObjectMeta { name: Some(name.into()), ..Default::default() }, ..Default::default() };
    if let Some(z) = zone {
        n.metadata.labels = Some(labels(&[(derive::LABEL_ZONE, z)]));
    }
    Arc::new(n)
}

fn nodes(name: &str) -> Option<Arc<Node>> {
    match name {
        "node-1" => Some(node("node-1", Some("zone-a"))),
        "node-2" => Some(node("node-2", None)),
        _ => None,
    }
}

fn desired(svc: &Service, pods: Vec<Pod>) -> derive::Desired {
    let pods: Vec<Arc<Pod>> = pods.into_iter().map(Arc::new).collect();
    derive::desired(svc, &pods, nodes)
}

fn conditions(svc: &Service, p: Pod) -> EndpointConditions {
    let d = desired(svc, vec![p]);
    let e = d.endpoints().next().expect("one endpoint");
    e.conditions.clone().expect("conditions")
}

fn cond(ready: bool, serving: bool, terminating: bool) -> EndpointConditions {
    EndpointConditions { ready: Some(ready), serving: Some(serving), terminating: Some(terminating) }
}

fn publishing(mut svc: Service) -> Service {
    svc.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
    svc
}

// --- conditions ---

#[test]
fn a_ready_pod_is_ready_and_serving() {
    assert_eq!(conditions(&service("web"), pod("web", 1)), cond(true, true, false));
}

#[test]
fn an_unready_pod_is_listed_but_neither_ready_nor_serving() {
    assert_eq!(conditions(&service("web"), unready(pod("web", 1))), cond(false, false, false));
}

#[test]
fn publish_not_ready_addresses_makes_an_unready_pod_ready_but_not_serving() {
    assert_eq!(conditions(&publishing(service("web")), unready(pod("web", 1))), cond(true, false, false));
}

#[test]
fn a_terminating_ready_pod_is_serving_and_terminating_but_not_ready() {
    assert_eq!(conditions(&service("web"), terminating(pod("web", 1))), cond(false, true, true));
}

#[test]
fn a_terminating_unready_pod_is_neither_ready_nor_serving() {
    assert_eq!(conditions(&service("web"), terminating(unready(pod("web", 1)))), cond(false, false, true));
}

#[test]
fn publish_not_ready_addresses_keeps_a_terminating_pod_ready() {
    assert_eq!(conditions(&publishing(service("web")), terminating(pod("web", 1))), cond(true, true, true));
}

// --- which pods ---

#[test]
fn failed_succeeded_and_ip_less_pods_are_skipped() {
    let svc = service("web");
    let mut failed = pod("web", 1);
    failed.status.as_mut().unwrap().phase = Some("Failed".into());
    let mut succeeded = pod("web", 2);
    succeeded.status.as_mut().unwrap().phase = Some("Succeeded".into());
    let mut no_ip = pod("web", 3);
    no_ip.status.as_mut().unwrap().pod_ip = None;
    no_ip.status.as_mut().unwrap().pod_ips = None;
    let mut pending = pod("web", 4);
    pending.status.as_mut().unwrap().phase = Some("Pending".into());
    let d = desired(&svc, vec![failed, succeeded, no_ip, pending]);
    let names: Vec<_> = d.endpoints().map(|e| e.target_ref.as_ref().unwrap().name.clone().unwrap()).collect();
    assert_eq!(names, ["web-004"], "only the pod with an IP that has not finished");
}

#[test]
fn only_pods_matching_the_selector_in_the_namespace_are_listed() {
    let svc = service("web");
    let mut elsewhere = pod("web", 2);
    elsewhere.metadata.namespace = Some("other".into());
    let d = desired(&svc, vec![pod("web", 1), pod("api", 3), elsewhere]);
    assert_eq!(d.endpoints().count(), 1);
    let mut no_selector = service("web");
    no_selector.spec.as_mut().unwrap().selector = None;
    assert!(!derive::is_managed(&no_selector), "selector-less Services are left to their users");
    assert!(desired(&no_selector, vec![pod("web", 1)]).groups.is_empty());
    let mut external = service("web");
    external.spec.as_mut().unwrap().type_ = Some("ExternalName".into());
    assert!(!derive::is_managed(&external));
}

#[test]
fn only_ipv4_addresses_are_listed() {
    let mut p = pod("web", 1);
    p.status.as_mut().unwrap().pod_ips =
        Some(vec![PodIP { ip: "fd00::5".into() }, PodIP { ip: "10.244.9.9".into() }]);
    let d = desired(&service("web"), vec![p]);
    assert_eq!(d.endpoints().next().unwrap().addresses, ["10.244.9.9"]);
    let mut v6 = pod("web", 2);
    v6.status.as_mut().unwrap().pod_ips = Some(vec![PodIP { ip: "fd00::5".into() }]);
    v6.status.as_mut().unwrap().pod_ip = Some("fd00::5".into());
    assert_eq!(desired(&service("web"), vec![v6]).endpoints().count(), 0);
}

// --- fields ---

#[test]
fn node_name_zone_and_target_ref_come_from_the_pod_and_its_node() {
    let mut on_2 = pod("web", 2);
    on_2.spec.as_mut().unwrap().node_name = Some("node-2".into());
    let d = desired(&service("web"), vec![pod("web", 1), on_2]);
    let eps: Vec<_> = d.endpoints().collect();
    assert_eq!(eps[0].node_name.as_deref(), Some("node-1"));
    assert_eq!(eps[0].zone.as_deref(), Some("zone-a"));
    assert_eq!(eps[1].node_name.as_deref(), Some("node-2"));
    assert_eq!(eps[1].zone, None, "a node without the zone label gives no zone");
    let t = eps[0].target_ref.as_ref().unwrap();
    assert_eq!(
        (t.kind.as_deref(), t.name.as_deref(), t.namespace.as_deref(), t.uid.as_deref()),
        (Some("Pod"), Some("web-001"), Some("default"), Some("pod-uid-1"))
    );
    assert_eq!(t.api_version, None);
}

#[test]
fn pods_on_unknown_nodes_are_left_out_unless_unready_addresses_are_published() {
    let mut lost = pod("web", 2);
    lost.spec.as_mut().unwrap().node_name = Some("node-9".into());
    let d = desired(&service("web"), vec![pod("web", 1), lost.clone()]);
    assert_eq!(d.endpoints().count(), 1);
    assert_eq!(d.missing_nodes, ["web-002"]);
    let d = desired(&publishing(service("web")), vec![lost]);
    assert_eq!(d.endpoints().count(), 1);
    assert!(d.missing_nodes.is_empty());
}

#[test]
fn a_host_network_pod_on_no_node_is_listed_but_an_ordinary_one_is_not() {
    let mut system = pod("web", 1);
    system.spec.as_mut().unwrap().node_name = None;
    system.spec.as_mut().unwrap().host_network = Some(true);
    let mut unbound = pod("web", 2);
    unbound.spec.as_mut().unwrap().node_name = None;
    let d = desired(&service("web"), vec![system, unbound]);
    assert_eq!(d.endpoints().count(), 1, "the lab's dns process registers itself this way");
    assert_eq!(d.endpoints().next().unwrap().node_name, None);
    assert_eq!(d.missing_nodes, ["web-002"]);
}

#[test]
fn hostname_is_set_only_when_the_pods_subdomain_is_the_service() {
    let svc = service("web");
    let with = |hostname: Option<&str>, subdomain: Option<&str>| {
        let mut p = pod("web", 1);
        p.spec.as_mut().unwrap().hostname = hostname.map(Into::into);
        p.spec.as_mut().unwrap().subdomain = subdomain.map(Into::into);
        desired(&svc, vec![p]).endpoints().next().unwrap().hostname.clone()
    };
    assert_eq!(with(Some("web-0"), Some("web")), Some("web-0".into()));
    assert_eq!(with(Some("web-0"), Some("other")), None);
    assert_eq!(with(Some("web-0"), None), None);
    assert_eq!(with(None, Some("web")), None);
}

#[test]
fn ports_carry_name_protocol_app_protocol_and_the_target_port() {
    let mut svc = service("web");
    svc.spec.as_mut().unwrap().ports = Some(vec![
        ServicePort {
            name: Some("grpc".into()),
            port: 9000,
            target_port: Some(IntOrString::Int(9090)),
            app_protocol: Some("kubernetes.io/h2c".into()),
            ..Default::default()
        },
        ServicePort {
            name: Some("dns".into()),
            port: 53,
            protocol: Some("UDP".into()),
            ..Default::default()
        },
    ]);
    let d = desired(&svc, vec![pod("web", 1)]);
    let (ports, _) = d.groups.values().next().unwrap();
    assert_eq!(ports.len(), 2);
    assert_eq!(
        (
            ports[0].name.as_deref(),
            ports[0].protocol.as_deref(),
            ports[0].port,
            ports[0].app_protocol.as_deref()
        ),
        (Some("grpc"), Some("TCP"), Some(9090), Some("kubernetes.io/h2c"))
    );
    assert_eq!(
        (ports[1].name.as_deref(), ports[1].protocol.as_deref(), ports[1].port),
        (Some("dns"), Some("UDP"), Some(53))
    );
}

fn with_named_port(mut p: Pod, name: &str, number: i32) -> Pod {
    p.spec.as_mut().unwrap().containers[0].ports =
        Some(vec![ContainerPort { name: Some(name.into()), container_port: number, ..Default::default() }]);
    p
}

#[test]
fn a_named_target_port_is_resolved_per_pod_and_different_numbers_split_slices() {
    let mut svc = service("web");
    svc.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].target_port =
        Some(IntOrString::String("web".into()));
    let pods = vec![
        with_named_port(pod("web", 1), "web", 8080),
        with_named_port(pod("web", 2), "web", 9090),
        with_named_port(pod("web", 3), "web", 8080),
        with_named_port(pod("web", 4), "other", 7070),
    ];
    let d = desired(&svc, pods);
    let groups: Vec<(Vec<Option<i32>>, usize)> =
        d.groups.values().map(|(ports, eps)| (ports.iter().map(|p| p.port).collect(), eps.len())).collect();
    assert_eq!(
        groups,
        [(vec![], 1), (vec![Some(8080)], 2), (vec![Some(9090)], 1)],
        "a pod without the port keeps its address, with no port"
    );
    let p = plan::plan(&svc, &[], &d, 100);
    assert_eq!(p.create.len(), 3, "one slice per port set");
    let ports: Vec<_> = p.create.iter().map(|s| s.ports.clone().unwrap()).collect();
    assert!(ports.iter().any(|p| p.len() == 1 && p[0].port == Some(9090)));
}

#[test]
fn a_named_port_must_match_the_protocol_too() {
    let mut sp = ServicePort {
        port: 53,
        target_port: Some(IntOrString::String("dns".into())),
        protocol: Some("UDP".into()),
        ..Default::default()
    };
    let p = with_named_port(pod("web", 1), "dns", 5353);
    assert_eq!(derive::find_port(&p, &sp), None, "the container port is TCP");
    sp.protocol = Some("TCP".into());
    assert_eq!(derive::find_port(&p, &sp), Some(5353));
}

// --- slice metadata ---

#[test]
fn slices_carry_the_services_labels_the_reserved_ones_and_a_controller_reference() {
    let mut svc = service("web");
    svc.metadata.labels.as_mut().unwrap().insert(derive::LABEL_SERVICE_NAME.into(), "spoofed".into());
    let d = desired(&svc, vec![pod("web", 1)]);
    let p = plan::plan(&svc, &[], &d, 100);
    let slice = &p.create[0];
    assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
    assert_eq!(slice.metadata.name, None);
    assert_eq!(slice.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(
        slice.metadata.labels.clone().unwrap(),
        labels(&[
            ("team", "shop"),
            ("kubernetes.io/service-name", "web"),
            ("endpointslice.kubernetes.io/managed-by", "endpointslice-controller.k8s.io"),
        ])
    );
    let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.api_version.as_str(), owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("v1", "Service", "web", "uid-web")
    );
    assert_eq!((owner.controller, owner.block_owner_deletion), (Some(true), Some(true)));
}

#[test]
fn headless_services_get_the_headless_label() {
    let mut svc = service("web");
    svc.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    assert_eq!(derive::slice_labels(&svc).get(derive::LABEL_HEADLESS).map(String::as_str), Some(""));
    assert!(!derive::slice_labels(&service("web")).contains_key(derive::LABEL_HEADLESS));
}

// --- planning ---

/// Applies `p` as the apiserver would: creates get names, resourceVersions bump.
fn apply(existing: &[Arc<EndpointSlice>], p: &plan::Plan) -> Vec<Arc<EndpointSlice>> {
    let mut out: Vec<EndpointSlice> = existing
        .iter()
        .filter(|s| !p.delete.iter().any(|d| d.metadata.name == s.metadata.name))
        .filter(|s| !p.update.iter().any(|u| u.metadata.name == s.metadata.name))
        .map(|s| (**s).clone())
        .collect();
    out.extend(p.update.iter().cloned());
    for (i, s) in p.create.iter().enumerate() {
        let mut s = s.clone();
        s.metadata.name =
            Some(format!("{}x{i}{}", s.metadata.generate_name.clone().unwrap_or_default(), out.len()));
        s.metadata.uid = s.metadata.name.clone();
        out.push(s);
    }
    out.into_iter().map(Arc::new).collect()
}

fn sizes(slices: &[Arc<EndpointSlice>]) -> Vec<usize> {
    let mut v: Vec<usize> = slices.iter().map(|s| s.endpoints.len()).collect();
    v.sort();
    v
}

#[test]
fn at_most_max_endpoints_per_slice() {
    let svc = service("web");
    let d = desired(&svc, (0..250).map(|n| pod("web", n)).collect());
    let p = plan::plan(&svc, &[], &d, 100);
    assert_eq!(p.create.iter().map(|s| s.endpoints.len()).collect::<Vec<_>>(), [100, 100, 50]);
    let d = desired(&svc, (0..7).map(|n| pod("web", n)).collect());
    assert_eq!(plan::plan(&svc, &[], &d, 3).create.len(), 3);
}

#[test]
fn a_second_plan_over_the_first_ones_result_writes_nothing() {
    let svc = service("web");
    let d = desired(&svc, (0..250).map(|n| pod("web", n)).collect());
    let slices = apply(&[], &plan::plan(&svc, &[], &d, 100));
    let again = plan::plan(&svc, &slices, &d, 100);
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn a_changed_pod_rewrites_only_its_slice() {
    let svc = service("web");
    let mut pods: Vec<Pod> = (0..250).map(|n| pod("web", n)).collect();
    let slices = apply(&[], &plan::plan(&svc, &[], &desired(&svc, pods.clone()), 100));
    pods[120] = unready(pods[120].clone());
    let p = plan::plan(&svc, &slices, &desired(&svc, pods.clone()), 100);
    assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (0, 1, 0));
    let holder = slices.iter().find(|s| s.endpoints.iter().any(|e| e.addresses == ["10.244.1.121"])).unwrap();
    assert_eq!(p.update[0].metadata.name, holder.metadata.name);
    let changed = p.update[0].endpoints.iter().find(|e| e.addresses == ["10.244.1.121"]).unwrap();
    assert_eq!(changed.conditions.as_ref().unwrap().ready, Some(false));
    assert_eq!(
        p.update[0].metadata.resource_version, holder.metadata.resource_version,
        "updates carry the version they were read at"
    );
}

#[test]
fn new_pods_fill_the_slice_they_fit_best_before_a_new_one_is_made() {
    let svc = service("web");
    let pods: Vec<Pod> = (0..150).map(|n| pod("web", n)).collect();
    let slices = apply(&[], &plan::plan(&svc, &[], &desired(&svc, pods.clone()), 100));
    assert_eq!(sizes(&slices), [50, 100]);
    let more: Vec<Pod> = (0..170).map(|n| pod("web", n)).collect();
    let p = plan::plan(&svc, &slices, &desired(&svc, more.clone()), 100);
    assert_eq!((p.create.len(), p.update.len()), (0, 1));
    assert_eq!(p.update[0].endpoints.len(), 70);
    let slices = apply(&slices, &p);
    let most: Vec<Pod> = (0..240).map(|n| pod("web", n)).collect();
    let p = plan::plan(&svc, &slices, &desired(&svc, most), 100);
    assert_eq!(p.create.len(), 1, "70 more do not fit in the 30 left: a new slice, no rebalancing");
    assert_eq!(p.create[0].endpoints.len(), 70);
    assert!(p.update.is_empty());
}

#[test]
fn removed_pods_shrink_their_slice_and_an_emptied_service_keeps_one_placeholder() {
    let svc = service("web");
    let pods: Vec<Pod> = (0..150).map(|n| pod("web", n)).collect();
    let slices = apply(&[], &plan::plan(&svc, &[], &desired(&svc, pods.clone()), 100));
    let p = plan::plan(&svc, &slices, &desired(&svc, pods[..120].to_vec()), 100);
    assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (0, 1, 0));
    assert_eq!(p.update[0].endpoints.len(), 20);
    let p = plan::plan(&svc, &slices, &desired(&svc, vec![]), 100);
    assert_eq!(
        (p.create.len(), p.update.len(), p.delete.len()),
        (0, 1, 1),
        "one slice becomes the placeholder"
    );
    assert!(p.update[0].endpoints.is_empty());
    assert_eq!(p.update[0].ports, Some(vec![]));
    let emptied = apply(&slices, &p);
    assert_eq!(emptied.len(), 1);
    assert!(
        plan::plan(&svc, &emptied, &desired(&svc, vec![]), 100).is_empty(),
        "the placeholder stays as it is"
    );
}

#[test]
fn a_service_without_pods_gets_one_placeholder_which_becomes_its_first_slice() {
    let svc = service("web");
    let p = plan::plan(&svc, &[], &desired(&svc, vec![]), 100);
    assert_eq!(p.create.len(), 1);
    assert!(p.create[0].endpoints.is_empty());
    let slices = apply(&[], &p);
    let p = plan::plan(&svc, &slices, &desired(&svc, vec![pod("web", 1)]), 100);
    assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (0, 1, 0), "updated in place, not replaced");
    assert_eq!(p.update[0].metadata.name, slices[0].metadata.name);
    assert_eq!(p.update[0].endpoints.len(), 1);
    assert_eq!(p.update[0].ports.as_ref().unwrap()[0].port, Some(8080));
}

#[test]
fn slices_of_another_service_uid_are_deleted_and_label_changes_are_written() {
    let svc = service("web");
    let d = desired(&svc, vec![pod("web", 1)]);
    let slices = apply(&[], &plan::plan(&svc, &[], &d, 100));
    let mut recreated = service("web");
    recreated.metadata.uid = Some("uid-web-2".into());
    let p = plan::plan(&recreated, &slices, &desired(&recreated, vec![pod("web", 1)]), 100);
    assert_eq!((p.create.len(), p.delete.len()), (1, 1), "the old Service's slice is not reused");
    let mut relabelled = service("web");
    relabelled.metadata.labels = Some(labels(&[("team", "payments")]));
    let p = plan::plan(&relabelled, &slices, &d, 100);
    assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (0, 1, 0));
    assert_eq!(
        p.update[0].metadata.labels.as_ref().unwrap().get("team").map(String::as_str),
        Some("payments")
    );
}

/// A controller over fixed caches (its client, made inside a runtime, reaches nothing; `on_pod`
/// never calls it).
fn controller(pods: Vec<Pod>, services: Vec<Service>) -> super::Controller {
    use netlab_client::reflector::Cache;
    super::Controller {
        client: netlab_client::Client::new("http://127.0.0.1:9").unwrap(),
        services: Cache::from_objects(services),
        pods: Cache::from_objects(pods),
        slices: Cache::from_objects(Vec::<EndpointSlice>::new()),
        nodes: Cache::from_objects(Vec::<Node>::new()),
        index: Default::default(),
        tracker: Default::default(),
        max_per_slice: 100,
    }
}

fn indexed_app(ctl: &super::Controller, key: &str) -> Option<String> {
    ctl.index().pods.get(key).map(|p| p.labels.get("app").cloned().unwrap_or_default())
}

#[tokio::test]
async fn a_replayed_older_pod_change_does_not_move_the_index_back() {
    use netlab_client::reflector::Change;
    // The cache already has the pod relabelled to `web`; the change queued during the first list
    // still carries `api`. Both Services are told, and the index keeps the cache's labels.
    let old = pod("api", 1);
    let mut new = old.clone();
    new.metadata.labels = Some(labels(&[("app", "web")]));
    let key = format!("{}/{}", new.metadata.namespace.clone().unwrap(), new.metadata.name.clone().unwrap());
    let ctl = controller(vec![new], vec![service("api"), service("web")]);
    let mut queued = ctl.on_pod(&Change::Applied(Arc::new(old.clone())));
    queued.sort();
    assert_eq!(indexed_app(&ctl, &key).as_deref(), Some("web"));
    assert_eq!(queued.len(), 2, "{queued:?}");
    // A replayed deletion of a pod the cache still holds (deleted, then created again) keeps it.
    ctl.on_pod(&Change::Deleted(Arc::new(old)));
    assert_eq!(indexed_app(&ctl, &key).as_deref(), Some("web"));
}

#[tokio::test]
async fn a_pod_gone_from_the_cache_leaves_the_index() {
    use netlab_client::reflector::Change;
    let gone = pod("api", 2);
    let key = format!("{}/{}", gone.metadata.namespace.clone().unwrap(), gone.metadata.name.clone().unwrap());
    // Indexed earlier; the cache no longer holds it.
    let ctl = controller(Vec::new(), vec![service("api")]);
    ctl.index_mut().upsert(&gone);
    // A replayed add from before the deletion does not bring it back, and its Service is told.
    assert_eq!(ctl.on_pod(&Change::Applied(Arc::new(gone.clone()))), vec!["default/api".to_string()]);
    assert_eq!(indexed_app(&ctl, &key), None);
    // The deletion itself finds nothing left to remove and nothing to tell.
    assert_eq!(ctl.on_pod(&Change::Deleted(Arc::new(gone))), Vec::<String>::new());
}
