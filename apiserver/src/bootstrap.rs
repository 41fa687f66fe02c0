//! The system objects a fresh cluster holds, created at start unless they exist: the namespaces
//! `default`, `kube-system`, `kube-public`, `kube-node-lease`; `default/kubernetes` with the first
//! ClusterIP (as kube-apiserver's bootstrap controller does); and `kube-system/kube-dns` with the
//! tenth ClusterIP plus the `kube-system/coredns` ConfigMap with kubeadm's default Corefile (in a
//! real cluster kubeadm's CoreDNS addon creates these two; the lab has no kubeadm, so the apiserver
//! does). Objects that exist are left as they are: a user's edits survive restarts.

use netlab_proto::apiserver::v1::Resource;
use serde_json::{Value, json};

use crate::{
    error::{Error, Result},
    registry::Registry,
};

/// The Corefile kubeadm writes (cmd/kubeadm/app/phases/addons/dns/manifests.go).
pub const DEFAULT_COREFILE: &str = ".:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
";

/// Creates whichever system objects are missing.
pub async fn run(registry: &Registry, apiserver_port: u16) -> Result<()> {
    let cidr = registry.config().service_cidr;
    let alloc = crate::alloc::ip::IpAllocator::new(cidr);
    let kubernetes_ip = alloc.indexed(1).to_string();
    let dns_ip = alloc.indexed(10).to_string();

    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        ensure(registry, Resource::Namespaces, json!({"metadata": {"name": ns}})).await?;
    }
    ensure(
        registry,
        Resource::Services,
        json!({
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "clusterIP": kubernetes_ip,
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": apiserver_port}],
                "sessionAffinity": "None",
                "type": "ClusterIP",
            },
        }),
    )
    .await?;
    ensure(
        registry,
        Resource::Services,
        json!({
            "metadata": {
                "name": "kube-dns",
                "namespace": "kube-system",
                "labels": {
                    "k8s-app": "kube-dns",
                    "kubernetes.io/cluster-service": "true",
                    "kubernetes.io/name": "CoreDNS",
                },
                "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
            },
            "spec": {
                "clusterIP": dns_ip,
                "selector": {"k8s-app": "kube-dns"},
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                    {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
                ],
            },
        }),
    )
    .await?;
    ensure(
        registry,
        Resource::ConfigMaps,
        json!({
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "data": {"Corefile": DEFAULT_COREFILE},
        }),
    )
    .await?;
    Ok(())
}

async fn ensure(registry: &Registry, resource: Resource, obj: Value) -> Result<()> {
    let body = serde_json::to_vec(&obj).map_err(Error::Encode)?;
    match registry.create(resource, "", &body).await {
        Ok(created) => {
            tracing::info!(resource = resource.plural(), namespace = %created.namespace, name = %created.name, "Bootstrapped.");
            Ok(())
        }
        Err(Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
