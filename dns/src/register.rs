//! The dns process shows up in the cluster as CoreDNS does: a host-network pod
//! `kube-system/coredns-xxxxx` labelled `k8s-app: kube-dns`, so the kube-dns Service selects it
//! and its EndpointSlice carries the address this process serves on. The pod is not scheduled
//! (`schedulerName: netlab-static`) and has no node: this process plays its kubelet, reporting
//! Running and Ready (once the zone has synced) through the status subresource. The pod is
//! recreated if someone deletes it and deleted when the process stops, so the endpoints follow
//! the process's life.

use std::{collections::BTreeMap, net::IpAddr, sync::Arc, time::Duration};

use jiff::Timestamp;
use k8s_openapi::{
    api::core::v1::{
        Container, ContainerPort, ContainerState, ContainerStateRunning, ContainerStatus, HostIP, Pod,
        PodCondition, PodIP, PodSpec, PodStatus,
    },
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
};
use netlab_client::Client;
use tokio_util::sync::CancellationToken;

use crate::{Shared, config::COREFILE_NAMESPACE};

/// The image CoreDNS's pod would run.
pub const IMAGE: &str = "registry.k8s.io/coredns/coredns:v1.12.0";
/// A scheduler name no scheduler serves: the pod stays where it is (nowhere).
pub const SCHEDULER_NAME: &str = "netlab-static";
/// How often the pod is checked (recreated if deleted, status refreshed).
const RESYNC: Duration = Duration::from_secs(10);
/// Retry delay after an apiserver error.
const RETRY: Duration = Duration::from_secs(1);

/// The address of the default route's interface, as kubelet's node-IP detection picks it;
/// 127.0.0.1 without one.
pub fn node_ip() -> IpAddr {
    netlab_config::host::default_route_address().unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// The pod as created (no status).
pub fn pod_template() -> Pod {
    let labels = BTreeMap::from([("k8s-app".to_string(), "kube-dns".to_string())]);
    let port = |name: &str, number: i32, protocol: &str| ContainerPort {
        name: Some(name.into()),
        container_port: number,
        protocol: Some(protocol.into()),
        ..Default::default()
    };
    Pod {
        metadata: ObjectMeta {
            generate_name: Some("coredns-".into()),
            namespace: Some(COREFILE_NAMESPACE.into()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(PodSpec {
            host_network: Some(true),
            scheduler_name: Some(SCHEDULER_NAME.into()),
            dns_policy: Some("Default".into()),
            priority_class_name: Some("system-cluster-critical".into()),
            containers: vec![Container {
                name: "coredns".into(),
                image: Some(IMAGE.into()),
                args: Some(vec!["-conf".into(), "/etc/coredns/Corefile".into()]),
                ports: Some(vec![
                    port("dns", 53, "UDP"),
                    port("dns-tcp", 53, "TCP"),
                    port("metrics", 9153, "TCP"),
                ]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

/// The status this process reports for its pod.
pub fn status(ip: IpAddr, ready: bool, started: &Time, previous: Option<&PodStatus>) -> PodStatus {
    let now = Time(Timestamp::now());
    let flag = |b: bool| if b { "True" } else { "False" }.to_string();
    let condition = |type_: &str, value: bool| {
        let status = flag(value);
        // Keep the transition time unless the value changed.
        let since = previous
            .and_then(|p| p.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == type_ && c.status == status))
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        PodCondition { type_: type_.into(), status, last_transition_time: Some(since), ..Default::default() }
    };
    PodStatus {
        phase: Some("Running".into()),
        pod_ip: Some(ip.to_string()),
        pod_ips: Some(vec![PodIP { ip: ip.to_string() }]),
        host_ip: Some(ip.to_string()),
        host_ips: Some(vec![HostIP { ip: ip.to_string() }]),
        start_time: Some(started.clone()),
        qos_class: Some("Burstable".into()),
        conditions: Some(vec![
            condition("PodReadyToStartContainers", true),
            condition("Initialized", true),
            condition("Ready", ready),
            condition("ContainersReady", ready),
            condition("PodScheduled", true),
        ]),
        container_statuses: Some(vec![ContainerStatus {
            name: "coredns".into(),
            image: IMAGE.into(),
            image_id: IMAGE.into(),
            container_id: Some(format!("netlab://{}", std::process::id())),
            ready,
            started: Some(true),
            restart_count: 0,
            state: Some(ContainerState {
                running: Some(ContainerStateRunning { started_at: Some(started.clone()) }),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

/// Keeps the pod until `shutdown`, then deletes it.
pub async fn run(client: Client, shared: Arc<Shared>, ip: IpAddr, shutdown: CancellationToken) {
    let started = Time(Timestamp::now());
    let mut synced = shared.synced.subscribe();
    let mut name: Option<String> = None;
    loop {
        let wait = match sync_once(&client, &shared, ip, &started, &mut name).await {
            Ok(()) => RESYNC,
            Err(error) => {
                tracing::warn!(%error, "Registering the kube-dns pod failed; retrying.");
                RETRY
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = synced.changed() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    if let Some(name) = name {
        match client.delete::<Pod>(COREFILE_NAMESPACE, &name).await {
            Ok(_) => tracing::info!(pod = %name, "Deleted the kube-dns pod."),
            Err(e) if e.is_not_found() => {}
            Err(error) => tracing::warn!(pod = %name, %error, "Deleting the kube-dns pod failed."),
        }
    }
}

async fn sync_once(
    client: &Client,
    shared: &Shared,
    ip: IpAddr,
    started: &Time,
    name: &mut Option<String>,
) -> netlab_client::Result<()> {
    let current = match name.as_deref() {
        Some(n) => match client.get::<Pod>(COREFILE_NAMESPACE, n).await {
            Ok(p) if p.metadata.deletion_timestamp.is_none() => Some(p),
            Ok(_) => None,
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    let mut pod = match current {
        Some(p) => p,
        None => {
            let created = client.create(&pod_template()).await?;
            let n = created.metadata.name.clone().unwrap_or_default();
            tracing::info!(pod = %n, %ip, "Registered as the kube-dns pod.");
            *name = Some(n);
            created
        }
    };
    let ready = shared.is_synced();
    let want = status(ip, ready, started, pod.status.as_ref());
    let same = pod.status.as_ref().is_some_and(|s| {
        s.phase == want.phase
            && s.pod_ip == want.pod_ip
            && s.container_statuses.as_ref().and_then(|c| c.first()).map(|c| c.ready) == Some(ready)
    });
    if !same {
        pod.status = Some(want);
        client.update_status(&pod).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_a_static_host_network_kube_dns_pod() {
        let p = pod_template();
        assert_eq!(p.metadata.generate_name.as_deref(), Some("coredns-"));
        assert_eq!(p.metadata.labels.unwrap()["k8s-app"], "kube-dns");
        let spec = p.spec.unwrap();
        assert_eq!(
            (spec.host_network, spec.scheduler_name.as_deref(), spec.node_name),
            (Some(true), Some(SCHEDULER_NAME), None)
        );
        let ports: Vec<(String, i32, String)> = spec.containers[0]
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.clone().unwrap(), p.container_port, p.protocol.clone().unwrap()))
            .collect();
        assert_eq!(
            ports,
            vec![
                ("dns".into(), 53, "UDP".into()),
                ("dns-tcp".into(), 53, "TCP".into()),
                ("metrics".into(), 9153, "TCP".into())
            ]
        );
    }

    #[test]
    fn status_keeps_transition_times() {
        let t0 = Time(Timestamp::UNIX_EPOCH);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let first = status(ip, false, &t0, None);
        let ready = |s: &PodStatus| {
            s.conditions.as_ref().unwrap().iter().find(|c| c.type_ == "Ready").unwrap().clone()
        };
        assert_eq!(ready(&first).status, "False");
        let again = status(ip, false, &t0, Some(&first));
        assert_eq!(ready(&again).last_transition_time, ready(&first).last_transition_time);
        let now_ready = status(ip, true, &t0, Some(&first));
        assert_eq!(ready(&now_ready).status, "True");
        assert!(now_ready.container_statuses.unwrap()[0].ready);
    }
}
