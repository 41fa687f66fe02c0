//! Rebuilding the allocators from the stored Services, as kube-apiserver's repair controllers do:
//! the bitmap is never trusted over the Services themselves. A Service whose ClusterIP another
//! Service also holds, or which lies outside the configured range (the range flag changed), gets
//! the upstream Warning event and keeps its IP.

use std::sync::Arc;

use netlab_proto::apiserver::v1::Resource;
use serde_json::json;

use super::{
    allocation::{self, Allocators},
    config::RegistryConfig,
    state::State,
};
use crate::{
    alloc::AllocError,
    object::{self, Stored},
};

/// Something the repair found wrong with a Service, reported as an Event.
#[derive(Debug, Clone)]
pub struct Finding {
    service: Arc<Stored>,
    reason: &'static str,
    message: String,
}

/// Builds fresh allocators holding every address and port the stored Services use.
pub fn rebuild(state: &State, cfg: &RegistryConfig) -> (Allocators, Vec<Finding>) {
    let mut alloc = Allocators::new(cfg.service_cidr, cfg.node_ports);
    let Allocators { ips, ports } = &mut alloc;
    let mut findings = Vec::new();
    for svc in state.iter(Resource::Services, "") {
        if let Some(ip) = allocation::cluster_ip(&svc.value).filter(|ip| ip != "None") {
            let Ok(parsed) = ip.parse() else { continue };
            match ips.allocate(parsed) {
                Ok(()) => {}
                Err(AllocError::Allocated(_)) => findings.push(Finding {
                    service: svc.clone(),
                    reason: "ClusterIPAlreadyAllocated",
                    message: format!(
                        "Cluster IP [IPv4]:{ip} was assigned to multiple services; please recreate service"
                    ),
                }),
                Err(_) => findings.push(Finding {
                    service: svc.clone(),
                    reason: "ClusterIPOutOfRange",
                    message: format!(
                        "Cluster IP [IPv4]:{ip} is not within the configured Service CIDR {}; please recreate service",
                        cfg.service_cidr
                    ),
                }),
            }
        }
        for port in allocation::node_ports(&svc.value) {
            match ports.allocate(port) {
                Ok(()) => {}
                Err(AllocError::Allocated(_)) => findings.push(Finding {
                    service: svc.clone(),
                    reason: "PortAlreadyAllocated",
                    message: format!(
                        "Port {port} was assigned to multiple services; please recreate service"
                    ),
                }),
                Err(_) => findings.push(Finding {
                    service: svc.clone(),
                    reason: "PortOutOfRange",
                    message: format!(
                        "Port {port} is not within the port range {}; please recreate service",
                        ports.range()
                    ),
                }),
            }
        }
    }
    (alloc, findings)
}

// === impl Finding ===

impl Finding {
    /// Says it in the log, as the repair controller does.
    pub fn log(&self) {
        tracing::warn!(service = %format!("{}/{}", self.service.namespace, self.service.name), reason = self.reason, "{}", self.message);
    }

    /// The Warning Event the repair controller records on the Service.
    pub fn event(&self) -> serde_json::Value {
        let f = self;
        let now = object::now_rfc3339();
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "namespace": f.service.namespace,
                "generateName": format!("{}.", f.service.name),
            },
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Service",
                "namespace": f.service.namespace,
                "name": f.service.name,
                "uid": f.service.value.pointer("/metadata/uid").cloned().unwrap_or_default(),
                "resourceVersion": f.service.rv.to_string(),
            },
            "reason": f.reason,
            "message": f.message,
            "type": "Warning",
            "action": "ClusterIPAllocation",
            "reportingComponent": "ipallocator-repair-controller",
            "source": {"component": "ipallocator-repair-controller"},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        })
    }
}
