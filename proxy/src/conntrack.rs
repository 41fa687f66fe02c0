//! Stale UDP conntrack entries, and the `conntrack -D` filters that delete them after a sync
//! (upstream's `pkg/proxy/conntrack/cleanup.go` `CleanStaleEntries`, fed by what
//! `ServicePortMap.Update` and `EndpointsMap.Update` report as `DeletedUDPClusterIPs`,
//! `NewlyActiveUDPServices` and `DeletedUDPEndpoints`).
//!
//! Why: conntrack is consulted before the nat table, so a tracked flow stays on the endpoint its
//! first packet was DNATed to whatever the rules say now. TCP ends its connections, but a UDP
//! flow lasts as long as datagrams keep coming (30 s unreplied, 120 s once answered), and a
//! client that keeps its source port (a DNS forwarder, statsd) keeps coming: after its endpoint
//! is gone it sends into a dead pod until it pauses for two minutes. So after every sync the
//! kernel took, kube-proxy deletes, for UDP Service ports only:
//! - a port that went from no serving endpoint to some (newly active): every flow to its
//!   ClusterIP, external IPs and load-balancer IPs, and to its NodePort, since flows tracked while
//!   the Service had no endpoints were never DNATed and would keep blackholing;
//! - a port that went away: every flow to its ClusterIP;
//! - a serving endpoint that was removed or stopped serving, while its port stays: the flows to
//!   the port's ClusterIP, external IPs and LB IPs, and to its NodePort, that were DNATed to it.
//!
//! Serving, not ready, is what counts (a terminating endpoint still serving keeps its flows), and
//! traffic policies play no part, as upstream. SCTP is left alone, as upstream has done since
//! the cleanup moved to `pkg/proxy/conntrack` (1.28): an SCTP association ends like a TCP
//! connection.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use netlab_kernel::{Protocol, conntrack::Filter};

use crate::model::{ServicePort, ServicePortName};

/// What one sync left stale, and the deletes that clean it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stale {
    /// UDP Service ports newly active or gone.
    pub services: BTreeSet<ServicePortName>,
    /// UDP endpoints (`ip:port`) removed or no longer serving, by Service port.
    pub endpoints: BTreeMap<ServicePortName, BTreeSet<String>>,
    /// The deletes, each once.
    pub filters: BTreeSet<Filter>,
}

// === impl Stale ===

impl Stale {
    /// Stale endpoints across every port.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.values().map(BTreeSet::len).sum()
    }

    /// Nothing to delete.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }
}

/// What went stale between the kernel's last sync and this one, from each changed port as it
/// was then (`before`) and is now (`after`), None where absent.
pub fn stale<'a>(
    changes: impl IntoIterator<Item = (&'a ServicePortName, Option<&'a ServicePort>, Option<&'a ServicePort>)>,
) -> Stale {
    let mut out = Stale::default();
    for (name, before, after) in changes {
        if name.protocol != Protocol::Udp {
            continue;
        }
        match (before, after) {
            // A deleted port (`DeletedUDPClusterIPs`): its ClusterIP only, as upstream.
            (Some(before), None) => {
                out.services.insert(name.clone());
                out.filters.insert(Filter { orig_dst: Some(before.cluster_ip.into()), ..udp() });
            }
            (before, Some(after)) => {
                let serving_before = before.is_some_and(|p| p.endpoints.iter().any(|e| e.serving));
                if !serving_before && after.endpoints.iter().any(|e| e.serving) {
                    out.services.insert(name.clone());
                    for ip in service_ips(after) {
                        out.filters.insert(Filter { orig_dst: Some(ip), ..udp() });
                    }
                    if let Some(port) = after.node_port {
                        out.filters.insert(Filter { orig_dst_port: Some(port), ..udp() });
                    }
                }
                for gone in before.into_iter().flat_map(|b| &b.endpoints).filter(|e| e.serving) {
                    // Still there and still serving: its flows are good.
                    if after.endpoints.iter().any(|e| e.addr == gone.addr && e.serving) {
                        continue;
                    }
                    out.endpoints.entry(name.clone()).or_default().insert(gone.addr.clone());
                    let ep = Some(IpAddr::from(gone.ip));
                    if let Some(port) = after.node_port {
                        out.filters.insert(Filter { orig_dst_port: Some(port), dst_nat: ep, ..udp() });
                    }
                    for ip in service_ips(after) {
                        out.filters.insert(Filter { orig_dst: Some(ip), dst_nat: ep, ..udp() });
                    }
                }
            }
            (None, None) => {}
        }
    }
    out
}

fn udp() -> Filter {
    Filter::protocol(Protocol::Udp)
}

/// The ClusterIP, external IPs and load-balancer IPs: every address the port's flows go to.
fn service_ips(p: &ServicePort) -> impl Iterator<Item = IpAddr> + '_ {
    std::iter::once(p.cluster_ip)
        .chain(p.external_ips.iter().copied())
        .chain(p.load_balancer_ips.iter().copied())
        .map(IpAddr::from)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};

    use super::*;
    use crate::model::{
        Snapshot, Tracker,
        fixtures::{Ep, ready, service, slice},
    };

    const NODE: &str = "node-1";

    /// `ns/dns` at 10.96.0.53 with one port `dns` 53 over `proto`; a NodePort if `node_port`.
    fn dns(proto: &str, node_port: Option<i32>) -> Service {
        let mut svc = service("default", "dns", "10.96.0.53", &[("dns", 53, proto)]);
        if let Some(n) = node_port {
            let spec = svc.spec.as_mut().unwrap();
            spec.type_ = Some("NodePort".into());
            spec.ports.as_mut().unwrap()[0].node_port = Some(n);
        }
        svc
    }

    fn eps(proto: &str, eps: &[Ep<'_>]) -> EndpointSlice {
        slice("default", "dns", "dns-abc", ("dns", 5353, proto), eps)
    }

    fn not_ready(ip: &str) -> Ep<'_> {
        (ip, NODE, false, false, false)
    }

    fn terminating_serving(ip: &str) -> Ep<'_> {
        (ip, NODE, false, true, true)
    }

    /// A Service and its slice, before and after; None: absent.
    type State = (Option<Service>, Option<EndpointSlice>);

    /// What a sync from `before` to `after` leaves stale: the services, the endpoints and the
    /// filters as conntrack options.
    fn run(before: State, after: State) -> (Vec<String>, Vec<String>, Vec<String>) {
        let mut t = Tracker::new(NODE);
        let mut snap: Snapshot = Snapshot::default();
        let apply = |t: &mut Tracker, (svc, sl): State| {
            match svc {
                Some(s) => t.service_applied(Arc::new(s)),
                None => t.service_deleted(&dns("UDP", None)),
            }
            match sl {
                Some(s) => t.slice_applied(Arc::new(s)),
                None => t.slice_deleted(&eps("UDP", &[])),
            }
        };
        apply(&mut t, before);
        t.update(&mut snap, false);
        snap.mark();
        apply(&mut t, after);
        t.update(&mut snap, false);
        let s = stale(snap.changes_since_mark());
        (
            s.services.iter().map(ToString::to_string).collect(),
            s.endpoints.iter().flat_map(|(n, eps)| eps.iter().map(move |e| format!("{n} {e}"))).collect(),
            s.filters.iter().map(ToString::to_string).collect(),
        )
    }

    #[test]
    fn stale_services_and_endpoints_follow_upstream() {
        struct Case {
            what: &'static str,
            before: State,
            after: State,
            services: &'static [&'static str],
            endpoints: &'static [&'static str],
            filters: &'static [&'static str],
        }
        let udp = || Some(dns("UDP", None));
        let nodeport = || Some(dns("UDP", Some(30053)));
        let tcp = || Some(dns("TCP", None));
        let two = [ready("10.244.1.5", NODE), ready("10.244.2.7", "node-2")];
        let cases = [
            Case {
                what: "UDP, 0 → 1 endpoints: the ClusterIP's flows",
                before: (udp(), None),
                after: (udp(), Some(eps("UDP", &two[..1]))),
                services: &["default/dns:dns"],
                endpoints: &[],
                filters: &["-p udp --orig-dst 10.96.0.53"],
            },
            Case {
                what: "TCP, 0 → 1 endpoints: nothing",
                before: (tcp(), None),
                after: (tcp(), Some(eps("TCP", &two[..1]))),
                services: &[],
                endpoints: &[],
                filters: &[],
            },
            Case {
                what: "a new UDP Service with endpoints is newly active",
                before: (None, Some(eps("UDP", &two))),
                after: (udp(), Some(eps("UDP", &two))),
                services: &["default/dns:dns"],
                endpoints: &[],
                filters: &["-p udp --orig-dst 10.96.0.53"],
            },
            Case {
                what: "UDP, 0 → 2 endpoints, NodePort: the ClusterIP's and the NodePort's flows",
                before: (nodeport(), Some(eps("UDP", &[not_ready("10.244.1.5")]))),
                after: (nodeport(), Some(eps("UDP", &two))),
                services: &["default/dns:dns"],
                endpoints: &[],
                filters: &["-p udp --dport 30053", "-p udp --orig-dst 10.96.0.53"],
            },
            Case {
                what: "UDP, 1 → 2 endpoints: nothing stale",
                before: (udp(), Some(eps("UDP", &two[..1]))),
                after: (udp(), Some(eps("UDP", &two))),
                services: &[],
                endpoints: &[],
                filters: &[],
            },
            Case {
                what: "UDP endpoint removed: its flows through the ClusterIP",
                before: (udp(), Some(eps("UDP", &two))),
                after: (udp(), Some(eps("UDP", &two[1..]))),
                services: &[],
                endpoints: &["default/dns:dns 10.244.1.5:5353"],
                filters: &["-p udp --orig-dst 10.96.0.53 --dst-nat 10.244.1.5"],
            },
            Case {
                what: "TCP endpoint removed: nothing",
                before: (tcp(), Some(eps("TCP", &two))),
                after: (tcp(), Some(eps("TCP", &two[1..]))),
                services: &[],
                endpoints: &[],
                filters: &[],
            },
            Case {
                what: "UDP endpoint removed, NodePort: also its flows through the NodePort",
                before: (nodeport(), Some(eps("UDP", &two))),
                after: (nodeport(), Some(eps("UDP", &two[..1]))),
                services: &[],
                endpoints: &["default/dns:dns 10.244.2.7:5353"],
                filters: &[
                    "-p udp --dport 30053 --dst-nat 10.244.2.7",
                    "-p udp --orig-dst 10.96.0.53 --dst-nat 10.244.2.7",
                ],
            },
            Case {
                what: "UDP endpoint turned not ready (and not serving): stale",
                before: (udp(), Some(eps("UDP", &two))),
                after: (udp(), Some(eps("UDP", &[not_ready("10.244.1.5"), two[1]]))),
                services: &[],
                endpoints: &["default/dns:dns 10.244.1.5:5353"],
                filters: &["-p udp --orig-dst 10.96.0.53 --dst-nat 10.244.1.5"],
            },
            Case {
                what: "UDP endpoint terminating but still serving: its flows stay",
                before: (udp(), Some(eps("UDP", &two))),
                after: (udp(), Some(eps("UDP", &[terminating_serving("10.244.1.5"), two[1]]))),
                services: &[],
                endpoints: &[],
                filters: &[],
            },
            Case {
                what: "a not-serving endpoint that goes had no flows",
                before: (udp(), Some(eps("UDP", &[not_ready("10.244.1.5"), two[1]]))),
                after: (udp(), Some(eps("UDP", &two[1..]))),
                services: &[],
                endpoints: &[],
                filters: &[],
            },
            Case {
                what: "an endpoint's port changes: the old ip:port is gone",
                before: (udp(), Some(eps("UDP", &two[..1]))),
                after: (udp(), Some(slice("default", "dns", "dns-abc", ("dns", 5354, "UDP"), &two[..1]))),
                services: &[],
                endpoints: &["default/dns:dns 10.244.1.5:5353"],
                filters: &["-p udp --orig-dst 10.96.0.53 --dst-nat 10.244.1.5"],
            },
            Case {
                what: "the last endpoint goes: its flows, and nothing newly active",
                before: (udp(), Some(eps("UDP", &two[..1]))),
                after: (udp(), None),
                services: &[],
                endpoints: &["default/dns:dns 10.244.1.5:5353"],
                filters: &["-p udp --orig-dst 10.96.0.53 --dst-nat 10.244.1.5"],
            },
            Case {
                what: "one endpoint replaced by another, 1 → 1: the old one's flows only",
                before: (udp(), Some(eps("UDP", &two[..1]))),
                after: (udp(), Some(eps("UDP", &two[1..]))),
                services: &[],
                endpoints: &["default/dns:dns 10.244.1.5:5353"],
                filters: &["-p udp --orig-dst 10.96.0.53 --dst-nat 10.244.1.5"],
            },
            Case {
                what: "UDP Service deleted: every flow to its ClusterIP, no per-endpoint deletes",
                before: (nodeport(), Some(eps("UDP", &two))),
                after: (None, Some(eps("UDP", &two))),
                services: &["default/dns:dns"],
                endpoints: &[],
                filters: &["-p udp --orig-dst 10.96.0.53"],
            },
            Case {
                what: "TCP Service deleted: nothing",
                before: (tcp(), Some(eps("TCP", &two))),
                after: (None, None),
                services: &[],
                endpoints: &[],
                filters: &[],
            },
        ];
        for c in cases {
            let (services, endpoints, filters) = run(c.before, c.after);
            assert_eq!(services, c.services, "{}: services", c.what);
            assert_eq!(endpoints, c.endpoints, "{}: endpoints", c.what);
            assert_eq!(filters, c.filters, "{}: filters", c.what);
        }
    }

    #[test]
    fn external_and_load_balancer_ips_are_cleaned_like_the_cluster_ip() {
        let mut svc = dns("UDP", None);
        svc.spec.as_mut().unwrap().external_ips = Some(vec!["192.0.2.10".into()]);
        svc.status = Some(k8s_openapi::api::core::v1::ServiceStatus {
            load_balancer: Some(k8s_openapi::api::core::v1::LoadBalancerStatus {
                ingress: Some(vec![k8s_openapi::api::core::v1::LoadBalancerIngress {
                    ip: Some("198.51.100.7".into()),
                    ..Default::default()
                }]),
            }),
            ..Default::default()
        });
        let two = [ready("10.244.1.5", NODE), ready("10.244.2.7", "node-2")];
        let (_, _, filters) = run((Some(svc.clone()), None), (Some(svc.clone()), Some(eps("UDP", &two))));
        assert_eq!(
            filters,
            [
                "-p udp --orig-dst 10.96.0.53",
                "-p udp --orig-dst 192.0.2.10",
                "-p udp --orig-dst 198.51.100.7"
            ]
        );
        let (_, _, filters) =
            run((Some(svc.clone()), Some(eps("UDP", &two))), (Some(svc), Some(eps("UDP", &two[1..]))));
        assert_eq!(
            filters,
            [
                "-p udp --orig-dst 10.96.0.53 --dst-nat 10.244.1.5",
                "-p udp --orig-dst 192.0.2.10 --dst-nat 10.244.1.5",
                "-p udp --orig-dst 198.51.100.7 --dst-nat 10.244.1.5",
            ]
        );
    }

    #[test]
    fn nothing_is_stale_after_the_mark() {
        let mut t = Tracker::new(NODE);
        let mut snap: Snapshot = Snapshot::default();
        t.service_applied(Arc::new(dns("UDP", None)));
        t.slice_applied(Arc::new(eps("UDP", &[ready("10.244.1.5", NODE)])));
        t.update(&mut snap, false);
        assert_eq!(stale(snap.changes_since_mark()).services.len(), 1, "the first sync: newly active");
        snap.mark();
        assert!(stale(snap.changes_since_mark()).is_empty());
        // A full rebuild replaces every port with an equal one: nothing.
        t.update(&mut snap, true);
        assert!(stale(snap.changes_since_mark()).is_empty());
    }
}
