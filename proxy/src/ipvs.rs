//! The `ipvsadm-restore` input for ipvs mode: one virtual server per ClusterIP:port (and per
//! externalIP, load-balancer IP and node IP × NodePort), its real servers the selected endpoints
//! in masquerading (NAT) mode, ClientIP affinity as IPVS persistence.
//!
//! The kernel runs the text's commands against its current table, as `ipvsadm-restore` does. A
//! full sync clears the table (`-C`) and adds every virtual server; a partial sync sends only
//! the changed Services' virtual servers, as commands that turn what the kernel holds into what
//! is wanted: `-A` (with its `-a` real servers) for a new one, `-D` for one gone, `-E` when its
//! persistence changed, `-d`/`-a` for real servers gone and new. Real kube-proxy edits the same
//! way over netlink, comparing with what the kernel reports; [`Ipvs`] compares with what it
//! remembers writing, which it trusts only after the kernel took it (after a failed restore the
//! next sync is full). At 10,000 Services that turns a 2.4 MB restore per change into a few
//! lines.
//!
//! Two ports may ask for the same virtual server (two Services sharing an externalIP and port,
//! say). The kernel has one: the last port to ask, in name order, writes it, as a full table
//! written in port order would end up.
//!
//! Upstream's ipvs mode also binds each ClusterIP to the `kube-ipvs0` dummy device and keeps a
//! fixed set of iptables rules matching ipsets (`KUBE-CLUSTER-IP`, ...) for masquerading; netlab's
//! kernel matches virtual servers before any nat rule and has no ipsets, so neither is written.
//! SCTP virtual servers (`--sctp-service`) are left out too.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt::Write as _,
    net::Ipv4Addr,
};

use netlab_kernel::Protocol;

use crate::model::{Endpoint, ServicePort, ServicePortName, Snapshot, TrafficPolicy};

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
    /// Whether it rewrites the whole table (`-C` first).
    pub full: bool,
    /// `-A` lines: virtual servers added.
    pub virtual_servers: usize,
    /// `-a` lines: real servers added.
    pub real_servers: usize,
}

/// A virtual server: protocol, address, port.
type Key = (Protocol, Ipv4Addr, u16);

/// A virtual server as the kernel should hold it (the scheduler is the proxier's).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Virtual {
    persistent: Option<u32>,
    /// Real servers (`ip:port`), sorted.
    reals: Vec<String>,
}

/// What the kernel holds, as far as this proxier wrote it.
#[derive(Debug, Clone, Default)]
struct Table {
    /// The node IPs NodePort virtual servers were written for.
    node_ips: Vec<Ipv4Addr>,
    /// Per port, the virtual servers it asks for.
    ports: BTreeMap<ServicePortName, Vec<(Key, Virtual)>>,
    /// Per virtual server, the ports asking for it, sorted: the last one's is written.
    claims: HashMap<Key, Vec<ServicePortName>>,
}

/// The ipvs proxier: the scheduler every virtual server uses, and what it last wrote.
#[derive(Debug, Clone)]
pub struct Ipvs {
    scheduler: String,
    table: Table,
    /// Whether the kernel took the last render (so `table` is what it holds).
    trusted: bool,
}

// === impl Table ===

impl Table {
    /// The virtual server `key` as the kernel should hold it.
    fn effective(&self, key: &Key) -> Option<&Virtual> {
        let owner = self.claims.get(key)?.last()?;
        self.ports.get(owner)?.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Records `name`'s virtual servers (None: the port is gone).
    fn set(&mut self, name: &ServicePortName, servers: Option<Vec<(Key, Virtual)>>) {
        for (key, _) in self.ports.remove(name).into_iter().flatten() {
            if let Some(c) = self.claims.get_mut(&key) {
                c.retain(|n| n != name);
                if c.is_empty() {
                    self.claims.remove(&key);
                }
            }
        }
        let Some(servers) = servers else { return };
        for (key, _) in &servers {
            let c = self.claims.entry(*key).or_default();
            if let Err(at) = c.binary_search(name) {
                c.insert(at, name.clone());
            }
        }
        self.ports.insert(name.clone(), servers);
    }
}

// === impl Ipvs ===

impl Ipvs {
    /// A proxier scheduling with `scheduler` (one of [`SCHEDULERS`]; the flag parser checks).
    pub fn new(scheduler: &str) -> Self {
        Self { scheduler: scheduler.into(), table: Table::default(), trusted: false }
    }

    /// The restore input for `snapshot`: the whole table if `changed` is None, else commands for
    /// the virtual servers of the ports in `changed`; NodePorts listen on `node_ips`. Full
    /// regardless until the kernel took a render ([`Ipvs::commit`]), or when the node IPs
    /// changed.
    pub fn render(
        &mut self,
        snapshot: &Snapshot,
        changed: Option<&BTreeSet<ServicePortName>>,
        node_ips: &[Ipv4Addr],
    ) -> Rendered {
        let full = changed.is_none() || !self.trusted || self.table.node_ips != node_ips;
        self.trusted = false;
        match changed {
            Some(changed) if !full => self.render_changes(snapshot, changed, node_ips),
            _ => self.render_all(snapshot, node_ips),
        }
    }

    /// The kernel took the last render.
    pub fn commit(&mut self) {
        self.trusted = true;
    }

    fn render_all(&mut self, snapshot: &Snapshot, node_ips: &[Ipv4Addr]) -> Rendered {
        let mut out = Rendered {
            text: String::with_capacity(snapshot.len() * 200 + 3),
            full: true,
            virtual_servers: 0,
            real_servers: 0,
        };
        out.text.push_str("-C\n");
        self.table = Table { node_ips: node_ips.to_vec(), ..Table::default() };
        for (name, sp) in snapshot.entries() {
            if let Some(servers) = servers_of(sp, node_ips) {
                self.table.set(name, Some(servers));
            }
        }
        for (name, servers) in &self.table.ports {
            for (key, vs) in servers {
                if self.table.claims.get(key).and_then(|c| c.last()) == Some(name) {
                    self.add(&mut out, key, vs);
                }
            }
        }
        out
    }

    fn render_changes(
        &mut self,
        snapshot: &Snapshot,
        changed: &BTreeSet<ServicePortName>,
        node_ips: &[Ipv4Addr],
    ) -> Rendered {
        let mut out = Rendered { text: String::new(), full: false, virtual_servers: 0, real_servers: 0 };
        // Every virtual server a changed port asked for or asks for, as the kernel holds it.
        let mut before: BTreeMap<Key, Option<Virtual>> = BTreeMap::new();
        for name in changed {
            let servers = snapshot.get(name).and_then(|sp| servers_of(sp, node_ips));
            let keys = self
                .table
                .ports
                .get(name)
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
                .chain(servers.iter().flatten().map(|(k, _)| k));
            for key in keys {
                if !before.contains_key(key) {
                    before.insert(*key, self.table.effective(key).cloned());
                }
            }
            self.table.set(name, servers);
        }
        for (key, was) in &before {
            let flag = flag(key.0);
            match (was, self.table.effective(key)) {
                (None, None) => {}
                (Some(_), None) => {
                    let _ = writeln!(out.text, "-D {flag} {}:{}", key.1, key.2);
                }
                (None, Some(vs)) => {
                    let vs = vs.clone();
                    self.add(&mut out, key, &vs);
                }
                (Some(was), Some(vs)) => {
                    let vip = format!("{}:{}", key.1, key.2);
                    if was.persistent != vs.persistent {
                        self.service_line(&mut out.text, "-E", flag, &vip, vs.persistent);
                    }
                    for r in was.reals.iter().filter(|r| vs.reals.binary_search(r).is_err()) {
                        let _ = writeln!(out.text, "-d {flag} {vip} -r {r}");
                    }
                    for r in vs.reals.iter().filter(|r| was.reals.binary_search(r).is_err()) {
                        let _ = writeln!(out.text, "-a {flag} {vip} -r {r} -m -w 1");
                        out.real_servers += 1;
                    }
                }
            }
        }
        out
    }

    /// `-A` and its `-a` lines.
    fn add(&self, out: &mut Rendered, key: &Key, vs: &Virtual) {
        let flag = flag(key.0);
        let vip = format!("{}:{}", key.1, key.2);
        self.service_line(&mut out.text, "-A", flag, &vip, vs.persistent);
        out.virtual_servers += 1;
        for r in &vs.reals {
            let _ = writeln!(out.text, "-a {flag} {vip} -r {r} -m -w 1");
            out.real_servers += 1;
        }
    }

    fn service_line(&self, text: &mut String, command: &str, flag: &str, vip: &str, persistent: Option<u32>) {
        let _ = write!(text, "{command} {flag} {vip} -s {}", self.scheduler);
        if let Some(timeout) = persistent {
            let _ = write!(text, " -p {timeout}");
        }
        text.push('\n');
    }
}

fn flag(protocol: Protocol) -> &'static str {
    if protocol == Protocol::Udp { "-u" } else { "-t" }
}

/// The virtual servers `sp` asks for, in order (a later one for the same address wins); None
/// for SCTP ports.
fn servers_of(sp: &ServicePort, node_ips: &[Ipv4Addr]) -> Option<Vec<(Key, Virtual)>> {
    if sp.name.protocol == Protocol::Sctp {
        return None;
    }
    let sel = sp.select();
    let internal: &[&Endpoint] =
        if sp.internal_policy == TrafficPolicy::Local { &sel.local } else { &sel.cluster };
    let external: &[&Endpoint] =
        if sp.external_policy == TrafficPolicy::Local { &sel.local } else { &sel.cluster };
    let virtual_of = |eps: &[&Endpoint]| {
        let mut reals: Vec<String> = eps.iter().map(|e| e.addr.clone()).collect();
        reals.sort();
        reals.dedup();
        Virtual { persistent: sp.affinity_timeout, reals }
    };
    let mut out: Vec<(Key, Virtual)> = Vec::new();
    let mut push = |key: Key, vs: Virtual| match out.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = vs,
        None => out.push((key, vs)),
    };
    let proto = sp.name.protocol;
    push((proto, sp.cluster_ip, sp.port), virtual_of(internal));
    for ip in sp.external_ips.iter().chain(&sp.load_balancer_ips) {
        push((proto, *ip, sp.port), virtual_of(external));
    }
    if let Some(node_port) = sp.node_port {
        for ip in node_ips {
            push((proto, *ip, node_port), virtual_of(external));
        }
    }
    Some(out)
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
                slice(
                    "default",
                    "web",
                    "web-1",
                    ("http", 8080, "TCP"),
                    &[
                        ready("10.244.2.7", "n2"),
                        ready("10.244.1.5", "n1"),
                        ("10.244.1.9", "n1", false, false, false),
                    ],
                ),
                slice("kube-system", "kube-dns", "dns-1", ("dns", 53, "UDP"), &[ready("10.244.0.3", "n1")]),
            ],
        );
        let out = Ipvs::new("rr").render(&snap, None, &[]);
        assert_eq!(
            out.text,
            "-C\n\
             -A -t 10.96.0.20:80 -s rr\n\
             -a -t 10.96.0.20:80 -r 10.244.1.5:8080 -m -w 1\n\
             -a -t 10.96.0.20:80 -r 10.244.2.7:8080 -m -w 1\n\
             -A -u 10.96.0.10:53 -s rr\n\
             -a -u 10.96.0.10:53 -r 10.244.0.3:53 -m -w 1\n"
        );
        assert_eq!((out.virtual_servers, out.real_servers), (2, 3));
    }

    #[test]
    fn affinity_is_persistence_and_the_scheduler_is_the_flags() {
        let snap = snapshot(
            &[with_affinity(service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]), Some(600))],
            &[],
        );
        assert_eq!(Ipvs::new("sh").render(&snap, None, &[]).text, "-C\n-A -t 10.96.0.20:80 -s sh -p 600\n");
        let snap = snapshot(
            &[with_affinity(service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]), None)],
            &[],
        );
        assert_eq!(Ipvs::new("rr").render(&snap, None, &[]).text, "-C\n-A -t 10.96.0.20:80 -s rr -p 10800\n");
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
            &[slice(
                "default",
                "web",
                "web-1",
                ("http", 8080, "TCP"),
                &[ready("10.244.1.5", "node1"), ready("10.244.2.7", "n2")],
            )],
        );
        let out = Ipvs::new("rr").render(&snap, None, &["172.18.0.2".parse().unwrap()]);
        assert_eq!(
            out.text,
            "-C\n\
             -A -t 10.96.0.20:80 -s rr\n\
             -a -t 10.96.0.20:80 -r 10.244.1.5:8080 -m -w 1\n\
             -a -t 10.96.0.20:80 -r 10.244.2.7:8080 -m -w 1\n\
             -A -t 172.18.0.2:30080 -s rr\n\
             -a -t 172.18.0.2:30080 -r 10.244.1.5:8080 -m -w 1\n"
        );
    }

    #[test]
    fn sctp_ports_are_left_out() {
        let snap = snapshot(&[service("default", "sig", "10.96.0.30", &[("s", 3868, "SCTP")])], &[]);
        assert_eq!(Ipvs::new("rr").render(&snap, None, &[]).text, "-C\n");
    }

    #[test]
    fn the_kernel_model_takes_the_table() {
        let mut svc = with_affinity(
            service("default", "web", "10.96.0.20", &[("http", 80, "TCP"), ("dns", 53, "UDP")]),
            None,
        );
        let spec = svc.spec.as_mut().unwrap();
        spec.type_ = Some("NodePort".into());
        spec.ports.as_mut().unwrap()[0].node_port = Some(30080);
        let snap = snapshot(
            &[svc],
            &[slice("default", "web", "w", ("http", 8080, "TCP"), &[ready("10.244.1.5", "n1")])],
        );
        let text = Ipvs::new("wlc").render(&snap, None, &["172.18.0.2".parse().unwrap()]).text;
        assert!(text.starts_with("-C\n"));
        let mut kernel = netlab_kernel::ipvs::Ipvs::new();
        kernel.restore(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        let vip = "10.96.0.20:80".parse().unwrap();
        assert!(kernel.is_virtual(Protocol::Tcp, vip));
        assert!(kernel.is_virtual(Protocol::Tcp, "172.18.0.2:30080".parse().unwrap()));
        assert!(kernel.is_virtual(Protocol::Udp, "10.96.0.20:53".parse().unwrap()));
    }

    /// Applies `text` to `kernel`, panicking with the text if refused.
    fn apply(kernel: &mut netlab_kernel::ipvs::Ipvs, text: &str) {
        kernel.restore(text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    }

    #[test]
    fn a_partial_sync_sends_only_the_changed_virtual_servers() {
        let web = |eps: &[Ep<'static>]| slice("default", "web", "web-1", ("http", 8080, "TCP"), eps);
        let services = [
            service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]),
            service("default", "db", "10.96.0.21", &[("", 5432, "TCP")]),
        ];
        let db = slice("default", "db", "db-1", ("", 5432, "TCP"), &[ready("10.244.3.3", "n3")]);
        let mut ipvs = Ipvs::new("rr");
        let mut kernel = netlab_kernel::ipvs::Ipvs::new();
        let steps = [
            snapshot(&services, &[web(&[ready("10.244.1.5", "n1"), ready("10.244.2.7", "n2")]), db.clone()]),
            // An endpoint replaced: one -d, one -a.
            snapshot(&services, &[web(&[ready("10.244.1.5", "n1"), ready("10.244.2.8", "n2")]), db.clone()]),
            // Affinity on: -E.
            snapshot(
                &[with_affinity(services[0].clone(), Some(60)), services[1].clone()],
                &[web(&[ready("10.244.1.5", "n1"), ready("10.244.2.8", "n2")]), db.clone()],
            ),
            // db gone, a new Service.
            snapshot(
                &[
                    with_affinity(services[0].clone(), Some(60)),
                    service("default", "new", "10.96.0.22", &[("", 80, "UDP")]),
                ],
                &[web(&[ready("10.244.1.5", "n1"), ready("10.244.2.8", "n2")])],
            ),
        ];
        let want = [
            "",
            "-d -t 10.96.0.20:80 -r 10.244.2.7:8080\n-a -t 10.96.0.20:80 -r 10.244.2.8:8080 -m -w 1\n",
            "-E -t 10.96.0.20:80 -s rr -p 60\n",
            "-D -t 10.96.0.21:5432\n-A -u 10.96.0.22:80 -s rr\n",
        ];
        let first = ipvs.render(&steps[0], Some(&BTreeSet::new()), &[]);
        assert!(first.full, "nothing is trusted before the first commit");
        apply(&mut kernel, &first.text);
        ipvs.commit();
        for i in 1..steps.len() {
            let out = ipvs.render(&steps[i], Some(&steps[i - 1].changed(&steps[i])), &[]);
            assert!(!out.full);
            assert_eq!(out.text, want[i], "step {i}");
            apply(&mut kernel, &out.text);
            ipvs.commit();
            // The kernel now holds what one full sync of this step writes to an empty table.
            let mut fresh = netlab_kernel::ipvs::Ipvs::new();
            apply(&mut fresh, &Ipvs::new("rr").render(&steps[i], None, &[]).text);
            assert_eq!(kernel.list(), fresh.list(), "step {i}");
        }
        // Not committed (the kernel refused it): the next render is full.
        let _ = ipvs.render(&steps[0], Some(&steps[3].changed(&steps[0])), &[]);
        assert!(ipvs.render(&steps[0], Some(&BTreeSet::new()), &[]).full);
        // New node IPs: full.
        ipvs.commit();
        assert!(ipvs.render(&steps[0], Some(&BTreeSet::new()), &["172.18.0.2".parse().unwrap()]).full);
    }

    #[test]
    fn a_virtual_server_two_ports_ask_for_is_the_last_ones() {
        let mut a = service("default", "a", "10.96.0.20", &[("http", 80, "TCP")]);
        a.spec.as_mut().unwrap().external_ips = Some(vec!["192.0.2.10".into()]);
        let mut b = service("default", "b", "10.96.0.21", &[("http", 80, "TCP")]);
        b.spec.as_mut().unwrap().external_ips = Some(vec!["192.0.2.10".into()]);
        let slices = [
            slice("default", "a", "a-1", ("http", 8080, "TCP"), &[ready("10.244.1.1", "n1")]),
            slice("default", "b", "b-1", ("http", 8080, "TCP"), &[ready("10.244.2.2", "n2")]),
        ];
        let both = snapshot(&[a.clone(), b], &slices);
        let mut ipvs = Ipvs::new("rr");
        let full = ipvs.render(&both, None, &[]);
        assert_eq!(full.text.matches("-A -t 192.0.2.10:80 ").count(), 1);
        assert!(
            full.text.contains("-A -t 192.0.2.10:80 -s rr\n-a -t 192.0.2.10:80 -r 10.244.2.2:8080 -m -w 1\n")
        );
        let mut kernel = netlab_kernel::ipvs::Ipvs::new();
        apply(&mut kernel, &full.text);
        ipvs.commit();
        // b goes: the shared virtual server is a's now.
        let only_a = snapshot(&[a], &slices[..1]);
        let out = ipvs.render(&only_a, Some(&both.changed(&only_a)), &[]);
        assert_eq!(
            out.text,
            "-D -t 10.96.0.21:80\n-d -t 192.0.2.10:80 -r 10.244.2.2:8080\n-a -t 192.0.2.10:80 -r 10.244.1.1:8080 -m -w 1\n"
        );
        apply(&mut kernel, &out.text);
    }
}
