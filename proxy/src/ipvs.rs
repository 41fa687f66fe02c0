//! The `ipvsadm-restore` input for ipvs mode: one virtual server per ClusterIP:port (and per
//! externalIP, load-balancer IP and node IP × NodePort), its real servers the selected endpoints
//! in masquerading (NAT) mode, ClientIP affinity as IPVS persistence. The kernel replaces its
//! whole IPVS table with the text, so every sync writes everything.
//!
//! Upstream's ipvs mode also binds each ClusterIP to the `kube-ipvs0` dummy device and keeps a
//! fixed set of iptables rules matching ipsets (`KUBE-CLUSTER-IP`, ...) for masquerading; netlab's
//! kernel matches virtual servers before any nat rule and has no ipsets, so neither is written.
//! SCTP virtual servers (`--sctp-service`) are left out too.

use std::{fmt::Write as _, net::Ipv4Addr};

use netlab_kernel::Protocol;

use crate::model::{Endpoint, Snapshot, TrafficPolicy};

/// kube-proxy's default `--ipvs-scheduler`.
pub const DEFAULT_SCHEDULER: &str = "rr";
/// The schedulers `--ipvs-scheduler` accepts: the documented rr, lc, dh, sh, sed, nq, and the
/// kernel's wrr, wlc, lblc, lblcr, mh.
pub const SCHEDULERS: [&str; 11] = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh"];

/// One sync's `ipvsadm-restore` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The text.
    pub text: String,
    /// `-A` lines: virtual servers.
    pub virtual_servers: usize,
    /// `-a` lines: real servers.
    pub real_servers: usize,
}

/// The ipvs proxier: which scheduler every virtual server uses.
#[derive(Debug, Clone)]
pub struct Ipvs {
    scheduler: String,
}

// === impl Ipvs ===

impl Ipvs {
    /// A proxier scheduling with `scheduler` (one of [`SCHEDULERS`]; the flag parser checks).
    pub fn new(scheduler: &str) -> Self {
        Self { scheduler: scheduler.into() }
    }

    /// The whole IPVS table for `snapshot`; NodePorts listen on `node_ips`.
    pub fn render(&self, snapshot: &Snapshot, node_ips: &[Ipv4Addr]) -> Rendered {
        let mut out = Rendered { text: String::with_capacity(snapshot.len() * 200), virtual_servers: 0, real_servers: 0 };
        let mut vip = String::new();
        for sp in snapshot.iter() {
            let flag = match sp.name.protocol {
                Protocol::Tcp => "-t",
                Protocol::Udp => "-u",
                Protocol::Sctp => continue,
            };
            let sel = sp.select();
            let internal: &[&Endpoint] =
                if sp.internal_policy == TrafficPolicy::Local { &sel.local } else { &sel.cluster };
            let external: &[&Endpoint] =
                if sp.external_policy == TrafficPolicy::Local { &sel.local } else { &sel.cluster };

            let mut server = |ip: Ipv4Addr, port: u16, eps: &[&Endpoint], out: &mut Rendered| {
                vip.clear();
                let _ = write!(vip, "{ip}:{port}");
                let _ = write!(out.text, "-A {flag} {vip} -s {}", self.scheduler);
                if let Some(timeout) = sp.affinity_timeout {
                    let _ = write!(out.text, " -p {timeout}");
                }
                out.text.push('\n');
                out.virtual_servers += 1;
                for ep in eps {
                    let _ = writeln!(out.text, "-a {flag} {vip} -r {} -m -w 1", ep.addr);
                    out.real_servers += 1;
                }
            };
            server(sp.cluster_ip, sp.port, internal, &mut out);
            for ip in sp.external_ips.iter().chain(&sp.load_balancer_ips) {
                server(*ip, sp.port, external, &mut out);
            }
            if let Some(node_port) = sp.node_port {
                for ip in node_ips {
                    server(*ip, node_port, external, &mut out);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};

    use super::*;
    use crate::model::{Tracker, fixtures::*};

    fn snapshot(services: &[Service], slices: &[EndpointSlice]) -> Snapshot {
        let mut t = Tracker::new("node1");
        services.iter().for_each(|s| t.service_applied(Arc::new(s.clone())));
        slices.iter().for_each(|s| t.slice_applied(Arc::new(s.clone())));
        let mut snap = Snapshot::default();
        t.update(&mut snap, true);
        snap
    }

    #[test]
    fn cluster_ips_become_virtual_servers_with_their_endpoints() {
        let snap = snapshot(
            &[
                service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]),
                service("kube-system", "kube-dns", "10.96.0.10", &[("dns", 53, "UDP")]),
            ],
            &[
                slice("default", "web", "web-1", ("http", 8080, "TCP"), &[ready("10.244.2.7", "n2"), ready("10.244.1.5", "n1"), ("10.244.1.9", "n1", false, false, false)]),
                slice("kube-system", "kube-dns", "dns-1", ("dns", 53, "UDP"), &[ready("10.244.0.3", "n1")]),
            ],
        );
        let out = Ipvs::new("rr").render(&snap, &[]);
        assert_eq!(
            out.text,
            "-A -t 10.96.0.20:80 -s rr\n\
             -a -t 10.96.0.20:80 -r 10.244.1.5:8080 -m -w 1\n\
             -a -t 10.96.0.20:80 -r 10.244.2.7:8080 -m -w 1\n\
             -A -u 10.96.0.10:53 -s rr\n\
             -a -u 10.96.0.10:53 -r 10.244.0.3:53 -m -w 1\n"
        );
        assert_eq!((out.virtual_servers, out.real_servers), (2, 3));
    }

    #[test]
    fn affinity_is_persistence_and_the_scheduler_is_the_flags() {
        let snap = snapshot(&[with_affinity(service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]), Some(600))], &[]);
        assert_eq!(Ipvs::new("sh").render(&snap, &[]).text, "-A -t 10.96.0.20:80 -s sh -p 600\n");
        let snap = snapshot(&[with_affinity(service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]), None)], &[]);
        assert_eq!(Ipvs::new("rr").render(&snap, &[]).text, "-A -t 10.96.0.20:80 -s rr -p 10800\n");
    }

    #[test]
    fn node_ports_listen_on_every_node_ip_and_honour_local_policy() {
        let mut svc = service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]);
        let spec = svc.spec.as_mut().unwrap();
        spec.type_ = Some("NodePort".into());
        spec.ports.as_mut().unwrap()[0].node_port = Some(30080);
        spec.external_traffic_policy = Some("Local".into());
        let snap = snapshot(
            &[svc],
            &[slice("default", "web", "web-1", ("http", 8080, "TCP"), &[ready("10.244.1.5", "node1"), ready("10.244.2.7", "n2")])],
        );
        let out = Ipvs::new("rr").render(&snap, &["172.18.0.2".parse().unwrap()]);
        assert_eq!(
            out.text,
            "-A -t 10.96.0.20:80 -s rr\n\
             -a -t 10.96.0.20:80 -r 10.244.1.5:8080 -m -w 1\n\
             -a -t 10.96.0.20:80 -r 10.244.2.7:8080 -m -w 1\n\
             -A -t 172.18.0.2:30080 -s rr\n\
             -a -t 172.18.0.2:30080 -r 10.244.1.5:8080 -m -w 1\n"
        );
    }

    #[test]
    fn sctp_ports_are_left_out() {
        let snap = snapshot(&[service("default", "sig", "10.96.0.30", &[("s", 3868, "SCTP")])], &[]);
        assert_eq!(Ipvs::new("rr").render(&snap, &[]).text, "");
    }

    #[test]
    fn the_kernel_model_takes_the_table() {
        let mut svc = with_affinity(service("default", "web", "10.96.0.20", &[("http", 80, "TCP"), ("dns", 53, "UDP")]), None);
        let spec = svc.spec.as_mut().unwrap();
        spec.type_ = Some("NodePort".into());
        spec.ports.as_mut().unwrap()[0].node_port = Some(30080);
        let snap = snapshot(&[svc], &[slice("default", "web", "w", ("http", 8080, "TCP"), &[ready("10.244.1.5", "n1")])]);
        let text = Ipvs::new("wlc").render(&snap, &["172.18.0.2".parse().unwrap()]).text;
        let mut kernel = netlab_kernel::ipvs::Ipvs::new();
        kernel.restore(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        let vip = "10.96.0.20:80".parse().unwrap();
        assert!(kernel.is_virtual(Protocol::Tcp, vip));
        assert!(kernel.is_virtual(Protocol::Tcp, "172.18.0.2:30080".parse().unwrap()));
        assert!(kernel.is_virtual(Protocol::Udp, "10.96.0.20:53".parse().unwrap()));
    }
}
