//! A Service write's ClusterIP and NodePorts, allocated as one transaction (upstream
//! `pkg/registry/core/service/storage/alloc.go`: `txnAllocClusterIPs`, `txnAllocNodePorts`).
//!
//! A write allocates what its new spec needs before it is decided. When a later step fails (the
//! second NodePort is taken, the range is full), what the write took must go back, or it leaks
//! until the next restart's repair; and what the old object held may go back only once the write
//! is decided, or another Service could take an address the failed update still holds. A [`Txn`]
//! keeps both lists: dropped without [`Txn::commit`] it releases what it took; committed, it
//! releases what the old object held and the new one no longer does.
//!
//! [`cluster_ip`] and [`node_ports`] read what a stored Service holds, for the writer and for
//! [`super::repair`], which rebuilds the allocators from the stored Services.

use std::net::IpAddr;

use ipnet::Ipv4Net;
use serde_json::{Value, json};

use super::exhaustion::Exhaustion;
use crate::{
    alloc::{AllocError, ip::IpAllocator, port::PortAllocator},
    error::{Error, Result},
    object,
    validation::FieldError,
};

/// The allocators the writer owns.
#[derive(Debug, Clone)]
pub struct Allocators {
    /// ClusterIPs, from `--service-cluster-ip-range`.
    pub ips: IpAllocator,
    /// NodePorts, from `--service-node-port-range`.
    pub ports: PortAllocator,
}

// === impl Allocators ===

impl Allocators {
    /// Empty allocators over the Service CIDR and the inclusive NodePort range.
    pub fn new(service_cidr: Ipv4Net, node_ports: (u16, u16)) -> Self {
        Self { ips: IpAllocator::new(service_cidr), ports: PortAllocator::new(node_ports.0, node_ports.1) }
    }

    /// Allocates the ClusterIP and NodePorts `svc` needs (on update from `old`: those it newly
    /// needs) and writes them into `svc`. On error nothing this call took stays allocated; on
    /// success the caller commits the returned transaction once the write is decided. While an
    /// `exhaustion` fault is in force, no new ClusterIP is handed out ([`super::exhaustion`]).
    pub fn allocate_service(
        &mut self,
        svc: &mut Value,
        old: Option<&Value>,
        exhaustion: Option<&mut Exhaustion>,
    ) -> Result<Txn<'_>> {
        // The decision, as its own span: which range, which band, which address.
        let span = tracing::info_span!(
            "allocate ClusterIP",
            netlab.service_cidr = %self.ips.cidr(),
            netlab.service = %format!("{}/{}", object::namespace(svc), object::name(svc)),
            netlab.cluster_ip = tracing::field::Empty,
            netlab.band = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty,
        );
        let _entered = span.enter();
        let static_band = self.ips.static_range();
        let mut txn = Txn::new(self);
        let allocated = txn.cluster_ip(svc, old, exhaustion).and_then(|()| txn.node_ports(svc, old));
        match allocated {
            Ok(()) => {
                let ip = cluster_ip(svc).unwrap_or_else(|| "none".into());
                let band = match (ip.parse::<std::net::Ipv4Addr>(), static_band) {
                    (Ok(ip), Some((lo, hi))) if ip >= lo && ip <= hi => "static",
                    _ => "dynamic",
                };
                span.record("netlab.band", band);
                span.record("netlab.cluster_ip", ip.as_str());
                tracing::debug!(cluster_ip = %ip, "Allocated.");
                Ok(txn)
            }
            Err(e) => {
                span.record("otel.status_code", "ERROR");
                span.record("otel.status_message", e.to_string().as_str());
                Err(e)
            }
        }
    }

    /// Releases everything a deleted Service held.
    pub fn release_service(&mut self, svc: &Value) {
        if let Some(ip) = cluster_ip(svc).and_then(|ip| ip.parse().ok()) {
            self.ips.release(ip);
        }
        for p in node_ports(svc) {
            self.ports.release(p);
        }
    }
}

/// One Service write's allocations: reverted when dropped, unless committed.
#[must_use = "dropping a transaction reverts its allocations"]
#[derive(Debug)]
pub struct Txn<'a> {
    alloc: &'a mut Allocators,
    /// Taken by this write: released on revert.
    taken_ips: Vec<IpAddr>,
    taken_ports: Vec<u16>,
    /// Held by the old object and not by the new one: released on commit.
    freed_ips: Vec<IpAddr>,
    freed_ports: Vec<u16>,
    committed: bool,
}

// === impl Txn ===

impl<'a> Txn<'a> {
    fn new(alloc: &'a mut Allocators) -> Self {
        Self {
            alloc,
            taken_ips: Vec::new(),
            taken_ports: Vec::new(),
            freed_ips: Vec::new(),
            freed_ports: Vec::new(),
            committed: false,
        }
    }

    /// The write is decided: keep what it took, give back what the old object no longer holds.
    pub fn commit(mut self) {
        for ip in std::mem::take(&mut self.freed_ips) {
            self.alloc.ips.release(ip);
        }
        for p in std::mem::take(&mut self.freed_ports) {
            self.alloc.ports.release(p);
        }
        self.committed = true;
    }

    /// The write failed: give back what it took (what dropping does; this names it).
    pub fn revert(self) {}

    /// `txnAllocClusterIPs`: the address `svc` asks for, or the next free one.
    fn cluster_ip(
        &mut self,
        svc: &mut Value,
        old: Option<&Value>,
        exhaustion: Option<&mut Exhaustion>,
    ) -> Result<()> {
        let old_ip = old.and_then(cluster_ip).filter(|ip| ip != "None");
        if service_type(svc) == "ExternalName" {
            if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
        } else {
            match cluster_ip(svc).as_deref() {
                Some("None") => {}
                Some(ip) if Some(ip) == old_ip.as_deref() => {}
                Some(ip) => {
                    let parsed = ip.parse().map_err(|_| {
                        invalid(svc, "spec.clusterIPs", json!([ip]), "must be a valid IP address".into())
                    })?;
                    // In a full range every address is taken.
                    let held = exhaustion.map(|ex| {
                        refuse(
                            ex,
                            &format!("refused {ip}: the Service CIDR is full"),
                            AllocError::Allocated("IP"),
                        )
                    });
                    held.map_or_else(|| self.alloc.ips.allocate(parsed), Err).map_err(|e| {
                        invalid(
                            svc,
                            "spec.clusterIPs",
                            json!([ip]),
                            format!("failed to allocate IP {ip}: {e}"),
                        )
                    })?;
                    self.taken_ips.push(parsed);
                    set_cluster_ip(svc, ip);
                }
                None => {
                    let full = exhaustion.map(|ex| {
                        refuse(ex, "refused a ClusterIP: the Service CIDR is full", AllocError::Full)
                    });
                    let ip = full
                        .map_or_else(|| self.alloc.ips.allocate_next(), Err)
                        .map_err(|source| Error::Allocation { what: "serviceIP", source })?;
                    self.taken_ips.push(ip.into());
                    set_cluster_ip(svc, &ip.to_string());
                }
            }
        }
        if let Some(old_ip) = old_ip
            && cluster_ip(svc).as_deref() != Some(old_ip.as_str())
            && let Ok(parsed) = old_ip.parse()
        {
            self.freed_ips.push(parsed);
        }
        Ok(())
    }

    /// `txnAllocNodePorts`: every port of a NodePort or LoadBalancer Service has one; other
    /// types hold none.
    fn node_ports(&mut self, svc: &mut Value, old: Option<&Value>) -> Result<()> {
        let needs_node_ports = matches!(service_type(svc), "NodePort" | "LoadBalancer");
        let old_ports: Vec<u16> = old.map(node_ports).unwrap_or_default();
        let name = object::name(svc).to_string();
        if let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for (i, port) in ports.iter_mut().enumerate() {
                if !needs_node_ports {
                    if let Some(map) = port.as_object_mut() {
                        map.remove("nodePort");
                    }
                    continue;
                }
                let given = port.get("nodePort").and_then(Value::as_u64).filter(|p| *p > 0);
                let p = match given {
                    Some(p) if old_ports.contains(&(p as u16)) => p as u16,
                    Some(p) => {
                        let p16 = u16::try_from(p).unwrap_or(0);
                        self.alloc.ports.allocate(p16).map_err(|e| Error::Invalid {
                            kind: "Service",
                            name: name.clone(),
                            errors: vec![FieldError::invalid(
                                format!("spec.ports[{i}].nodePort"),
                                p,
                                e.to_string(),
                            )],
                        })?;
                        self.taken_ports.push(p16);
                        p16
                    }
                    None => {
                        let p = self.alloc.ports.allocate_next().map_err(|source| match source {
                            AllocError::Full => Error::Allocation { what: "nodePort", source },
                            other => Error::Internal(other.to_string()),
                        })?;
                        self.taken_ports.push(p);
                        p
                    }
                };
                port["nodePort"] = json!(p);
            }
        }
        let kept = node_ports(svc);
        self.freed_ports.extend(old_ports.into_iter().filter(|p| !kept.contains(p)));
        Ok(())
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for ip in self.taken_ips.drain(..) {
            self.alloc.ips.release(ip);
        }
        for p in self.taken_ports.drain(..) {
            self.alloc.ports.release(p);
        }
    }
}

/// Records that `ex` made the allocator refuse, on the allocation's span (the current one), and
/// hands back `answer`: what a full range answers.
fn refuse(ex: &mut Exhaustion, effect: &str, answer: AllocError) -> AllocError {
    ex.refused = true;
    ex.fault.mark_current(effect);
    tracing::debug!(fault = %ex.fault.name, "The Service CIDR is held full by a fault.");
    answer
}

/// `spec.clusterIPs[0]`, else `spec.clusterIP`; None when unset or empty.
pub fn cluster_ip(svc: &Value) -> Option<String> {
    svc.pointer("/spec/clusterIPs/0")
        .or_else(|| svc.pointer("/spec/clusterIP"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The NodePorts a Service holds.
pub fn node_ports(svc: &Value) -> Vec<u16> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| p.get("nodePort")?.as_u64())
                .filter_map(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0)
                .collect()
        })
        .unwrap_or_default()
}

/// An update that omits the ClusterIP or a port's NodePort keeps the allocated one, as the real
/// apiserver does (`patchAllocatedValues`), so that re-applying a manifest does not try to
/// change them.
pub fn keep_allocated(new: &mut Value, old: &Value) {
    let new_ty = service_type(new).to_string();
    if new_ty != "ExternalName"
        && cluster_ip(new).is_none()
        && let Some(ip) = cluster_ip(old)
    {
        set_cluster_ip(new, &ip);
    }
    if !matches!(new_ty.as_str(), "NodePort" | "LoadBalancer") {
        return;
    }
    let old_ports = old.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
    if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        for port in ports {
            if port.get("nodePort").and_then(Value::as_u64).unwrap_or(0) != 0 {
                continue;
            }
            let same = old_ports
                .iter()
                .find(|o| o.get("port") == port.get("port") && o.get("protocol") == port.get("protocol"));
            if let Some(np) = same.and_then(|o| o.get("nodePort")).filter(|n| n.as_u64().unwrap_or(0) > 0) {
                port["nodePort"] = np.clone();
            }
        }
    }
}

fn service_type(svc: &Value) -> &str {
    svc.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP")
}

fn set_cluster_ip(svc: &mut Value, ip: &str) {
    if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("clusterIP".into(), ip.into());
        spec.insert("clusterIPs".into(), json!([ip]));
    }
}

/// The 422 for one bad field of the Service being allocated for.
fn invalid(svc: &Value, field: &str, value: Value, detail: String) -> Error {
    Error::Invalid {
        kind: "Service",
        name: object::name(svc).to_string(),
        errors: vec![FieldError::invalid(field, value, detail)],
    }
}

#[cfg(test)]
mod tests;
