//! The `kubernetes` Service's endpoints, as kube-apiserver's endpoint reconciler keeps them
//! (`pkg/controlplane/reconcilers`, the default `--endpoint-reconciler-type=lease`): the
//! EndpointSlice `default/kubernetes` names this apiserver's advertise address and secure port,
//! so kube-proxy sends a pod's connection to 10.96.0.1:443 to the apiserver, and
//! `netlab node iptables-save` shows a `default/kubernetes:https` endpoint chain as on a real
//! node instead of a REJECT. The slice is checked at start and every 10 s (the reconciler's
//! interval) and put back when it was edited or deleted. It has no
//! `endpointslice.kubernetes.io/managed-by` label and the Service has no selector, so the
//! EndpointSlice controller leaves it alone, as in a real cluster.
//!
//! The address: `--advertise-address`, else the `--listen` address when it names one, else the
//! address of the interface the default route leaves by (kube-apiserver's own fallback). A
//! loopback address is only published with `--allow-loopback-endpoints` (`netlab up`), as the
//! EndpointSlice validation refuses it otherwise; then the Service keeps no endpoints and the
//! log says why.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use netlab_proto::apiserver::v1::Resource;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    error::{Error, Result},
    registry::Registry,
};

/// kube-apiserver's `DefaultEndpointReconcilerInterval`.
pub const INTERVAL: Duration = Duration::from_secs(10);

const NAMESPACE: &str = "default";
const NAME: &str = "kubernetes";

/// The address other hosts reach this apiserver at, if there is one to publish.
pub fn advertise_address(flag: Option<IpAddr>, listen: SocketAddr) -> Option<IpAddr> {
    if let Some(ip) = flag {
        return Some(ip);
    }
    if !listen.ip().is_unspecified() {
        return Some(listen.ip());
    }
    netlab_config::host::default_route_address()
}

/// The EndpointSlice the reconciler keeps.
pub fn desired(ip: IpAddr, port: u16) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": {"kubernetes.io/service-name": NAME},
        },
        "addressType": if ip.is_ipv4() { "IPv4" } else { "IPv6" },
        "endpoints": [{"addresses": [ip.to_string()], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    })
}

/// Whether `stored` already says what [`desired`] says (defaults the apiserver added aside).
fn up_to_date(stored: &Value, desired: &Value) -> bool {
    let endpoints = |v: &Value| -> Vec<(Value, Value)> {
        v["endpoints"]
            .as_array()
            .map(|eps| {
                eps.iter().map(|e| (e["addresses"].clone(), e["conditions"]["ready"].clone())).collect()
            })
            .unwrap_or_default()
    };
    let ports = |v: &Value| -> Vec<(Value, Value, Value)> {
        v["ports"]
            .as_array()
            .map(|ps| {
                ps.iter().map(|p| (p["name"].clone(), p["port"].clone(), p["protocol"].clone())).collect()
            })
            .unwrap_or_default()
    };
    let label = |v: &Value| v["metadata"]["labels"]["kubernetes.io/service-name"].clone();
    stored["addressType"] == desired["addressType"]
        && endpoints(stored) == endpoints(desired)
        && ports(stored) == ports(desired)
        && label(stored) == label(desired)
}

/// Makes the slice say `ip:port`; returns whether it wrote.
pub async fn reconcile(registry: &Registry, ip: IpAddr, port: u16) -> Result<bool> {
    let mut want = desired(ip, port);
    match registry.get(Resource::EndpointSlices, NAMESPACE, NAME) {
        Ok(stored) if up_to_date(&stored.value, &want) => Ok(false),
        Ok(stored) => {
            want["metadata"]["resourceVersion"] = json!(stored.rv.to_string());
            registry.update(Resource::EndpointSlices, NAMESPACE, &encode(&want)?, false).await?;
            Ok(true)
        }
        Err(Error::NotFound { .. }) => {
            registry.create(Resource::EndpointSlices, NAMESPACE, &encode(&want)?).await?;
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

fn encode(v: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(Error::Encode)
}

/// Keeps the slice until `shutdown`. Errors are logged (once in a row) and retried.
pub async fn run(registry: Registry, ip: IpAddr, port: u16, shutdown: CancellationToken) {
    let mut failing = false;
    loop {
        match reconcile(&registry, ip, port).await {
            Ok(wrote) => {
                if wrote || failing {
                    tracing::info!(address = %ip, port, "The kubernetes Service's endpoints are this apiserver.");
                }
                failing = false;
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(address = %ip, port, %error, "Could not publish the kubernetes Service's endpoints; retrying.");
                }
                failing = true;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_the_flag_then_the_listen_address_then_the_default_route() {
        let listen_any: SocketAddr = "0.0.0.0:6443".parse().unwrap();
        let listen_one: SocketAddr = "10.0.0.5:6443".parse().unwrap();
        let flag: IpAddr = "172.18.0.2".parse().unwrap();
        assert_eq!(advertise_address(Some(flag), listen_one), Some(flag));
        assert_eq!(advertise_address(None, listen_one), Some(listen_one.ip()));
        // The default route's source is machine-dependent; it is never the wildcard.
        assert_ne!(advertise_address(None, listen_any), Some("0.0.0.0".parse().unwrap()));
    }

    #[test]
    fn the_slice_is_the_one_a_real_apiserver_writes() {
        let v = desired("172.18.0.2".parse().unwrap(), 6443);
        assert_eq!(v["addressType"], "IPv4");
        assert_eq!(v["metadata"]["labels"], json!({"kubernetes.io/service-name": "kubernetes"}));
        assert_eq!(v["endpoints"], json!([{"addresses": ["172.18.0.2"], "conditions": {"ready": true}}]));
        assert_eq!(v["ports"], json!([{"name": "https", "port": 6443, "protocol": "TCP"}]));
        assert_eq!(desired("fd00::2".parse().unwrap(), 6443)["addressType"], "IPv6");
    }

    #[test]
    fn defaults_do_not_count_as_drift_but_edits_do() {
        let want = desired("172.18.0.2".parse().unwrap(), 6443);
        let mut stored = want.clone();
        stored["endpoints"][0]["conditions"]["serving"] = json!(true);
        stored["metadata"]["resourceVersion"] = json!("42");
        assert!(up_to_date(&stored, &want));
        let mut moved = stored.clone();
        moved["endpoints"][0]["addresses"] = json!(["172.18.0.3"]);
        assert!(!up_to_date(&moved, &want));
        let mut port = stored.clone();
        port["ports"][0]["port"] = json!(443);
        assert!(!up_to_date(&port, &want));
        let mut unlabelled = stored;
        unlabelled["metadata"]["labels"] = json!({});
        assert!(!up_to_date(&unlabelled, &want));
    }
}
