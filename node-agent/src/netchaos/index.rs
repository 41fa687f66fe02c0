//! The NetworkChaos faults in force, compiled into rules per direction and indexed by the pod
//! IPs they select, so that a new connection or datagram finds the rules that touch it with two
//! hash lookups however many unrelated faults are installed.
//!
//! A fault's records (`status.experiment.containerRecords`, written by the chaos controller)
//! give the selected pods' IPs (selectorKey `.`, the "source") and the target's (`.Target`);
//! `externalTargets` add IPs and CIDRs to the target side. Direction as Chaos Mesh applies it:
//! `to` affects packets from the source to the target, `from` packets from the target to the
//! source, `both` both; no target and no external targets means every packet of the source in
//! that direction. One rule per fault and direction, each with its own netem and tbf state, as
//! Chaos Mesh installs one qdisc on the source's egress and one on the target's.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use ipnet::IpNet;
use jiff::Timestamp;
use netlab_chaos::{
    FaultRef, NetworkChaos,
    network::{Direction, NetworkAction, NetworkChaosSpec},
    report::FaultKey,
    status::phase,
    window::Window,
};
use netlab_kernel::netem::{self, Fate, Netem, NetemParams, Tbf};

/// The records' selectorKey of the selected pods.
pub const SOURCE: &str = ".";
/// The records' selectorKey of the target pods.
pub const TARGET: &str = ".Target";

/// What a rule does to the packets it matches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Effect {
    /// Drop every packet (iptables DROP).
    Partition,
    /// netem.
    Netem(NetemParams),
    /// tbf: `rate` bytes per second through a bucket of `buffer` bytes.
    Bandwidth {
        /// Bytes per second.
        rate: u64,
        /// The bucket size in bytes.
        buffer: u64,
    },
}

/// One fault in one direction.
#[derive(Debug)]
pub struct Rule {
    /// The fault, for span marks.
    pub fault: FaultRef,
    /// The fault, for counters.
    pub key: FaultKey,
    /// What it does.
    pub effect: Effect,
    /// The other end of the packets it matches.
    peers: Peers,
    /// The qdisc's state (its random numbers, its tokens).
    qdisc: Mutex<Qdisc>,
}

#[derive(Debug)]
enum Qdisc {
    None,
    Netem(Netem),
    /// Created at the first packet, on the caller's clock.
    Tbf(Option<Tbf>),
}

/// One end of a rule: every address, or some addresses and networks.
#[derive(Debug, Clone, Default)]
enum Peers {
    #[default]
    Any,
    Some {
        ips: HashSet<IpAddr>,
        nets: Vec<IpNet>,
    },
}

/// A fault spec the node cannot enforce (the apiserver refuses these; a stored one is skipped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A duration that does not parse.
    #[error("{field}: parse duration field error: {value}")]
    Duration {
        /// The field.
        field: &'static str,
        /// What it said.
        value: String,
    },
    /// A percentage that does not parse.
    #[error("{field}: parse correlation field error:{value}")]
    Percent {
        /// The field.
        field: &'static str,
        /// What it said.
        value: String,
    },
    /// A bandwidth rate that does not parse.
    #[error("bandwidth.rate: parse rate field error:{0}")]
    Rate(#[source] netem::RateError),
    /// The action's parameters are missing (`action: delay` without `delay`).
    #[error("action {0} without its parameters")]
    Missing(&'static str),
}

/// The rules in force, by the pod IPs they select.
#[derive(Debug, Default)]
pub struct Index {
    /// Rules whose sending side is this address (the source for `to`).
    by_src: HashMap<IpAddr, Vec<Arc<Rule>>>,
    /// Rules whose receiving side is this address (the source for `from`).
    by_dst: HashMap<IpAddr, Vec<Arc<Rule>>>,
    /// Faults skipped because the node cannot enforce their spec.
    pub skipped: Vec<(String, SpecError)>,
    /// How many faults are in force.
    pub active: usize,
    /// When a fault's window next changes by itself (a duration running out).
    pub next_change: Option<Duration>,
}

// === impl Rule ===

impl Rule {
    fn new(fault: &NetworkChaos, effect: Effect, peers: Peers, seed: u64) -> Self {
        let meta = &fault.metadata;
        let (ns, name) =
            (meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default());
        let qdisc = match &effect {
            Effect::Partition => Qdisc::None,
            Effect::Netem(p) => Qdisc::Netem(Netem::new(p, seed)),
            Effect::Bandwidth { .. } => Qdisc::Tbf(None),
        };
        Self {
            fault: FaultRef::new(ns, name, "NetworkChaos", fault.spec.action.as_str()),
            key: FaultKey::of(fault),
            effect,
            peers,
            qdisc: Mutex::new(qdisc),
        }
    }

    /// One packet of `bytes` through this rule's qdisc at `now` (the tbf clock): its fate, and
    /// how long it waits for tokens.
    pub fn packet(&self, bytes: usize, now: Duration) -> (Fate, Duration) {
        let sent = Fate { copies: 1, corrupted: false, delay: Duration::ZERO };
        // The qdisc's state is numbers only; a poisoned lock still holds usable ones.
        let mut qdisc = self.qdisc.lock().unwrap_or_else(|e| e.into_inner());
        match (&mut *qdisc, &self.effect) {
            (Qdisc::Netem(q), _) => (q.packet(), Duration::ZERO),
            (Qdisc::Tbf(tbf), Effect::Bandwidth { rate, buffer }) => {
                let tbf = tbf.get_or_insert_with(|| Tbf::new(*rate, *buffer, now));
                (sent, tbf.wait(bytes, now))
            }
            (Qdisc::None, Effect::Partition) => (Fate { copies: 0, ..sent }, Duration::ZERO),
            _ => (sent, Duration::ZERO),
        }
    }
}

// === impl Peers ===

impl Peers {
    fn contains(&self, ip: IpAddr) -> bool {
        match self {
            Peers::Any => true,
            Peers::Some { ips, nets } => ips.contains(&ip) || nets.iter().any(|n| n.contains(&ip)),
        }
    }
}

// === impl Index ===

impl Index {
    /// The rules of the faults in force at `now`; netem's random numbers start from `seed`.
    pub fn build<'a>(faults: impl IntoIterator<Item = &'a NetworkChaos>, now: Timestamp, seed: u64) -> Self {
        let mut index = Index::default();
        for (n, fault) in faults.into_iter().enumerate() {
            let window = Window::of(&fault.metadata, fault.spec.duration.as_deref());
            if !window.active_at(now) {
                continue;
            }
            if let Some(left) = window.until_change(now) {
                index.next_change = Some(index.next_change.map_or(left, |c| c.min(left)));
            }
            let effect = match effect(&fault.spec) {
                Ok(e) => e,
                Err(e) => {
                    let meta = &fault.metadata;
                    let name = format!(
                        "{}/{}",
                        meta.namespace.as_deref().unwrap_or_default(),
                        meta.name.as_deref().unwrap_or_default()
                    );
                    index.skipped.push((name, e));
                    continue;
                }
            };
            index.active += 1;
            index.add(fault, effect, seed.wrapping_add(n as u64 * 2));
        }
        index
    }

    fn add(&mut self, fault: &NetworkChaos, effect: Effect, seed: u64) {
        let (mut sources, mut targets) = (HashSet::new(), HashSet::new());
        let records =
            fault.status.as_ref().map(|s| s.experiment.container_records.as_slice()).unwrap_or_default();
        for r in records.iter().filter(|r| r.phase == phase::INJECTED) {
            let Ok(ip) = r.pod_ip.parse::<IpAddr>() else { continue };
            match r.selector_key.as_str() {
                SOURCE => sources.insert(ip),
                TARGET => targets.insert(ip),
                _ => false,
            };
        }
        // Chaos Mesh resolves host names among externalTargets when it applies the fault; the
        // lab's pods resolve only cluster names, so names are not looked up here.
        let nets: Vec<IpNet> = fault
            .spec
            .external_targets
            .iter()
            .filter_map(|t| t.parse::<IpNet>().ok().or_else(|| t.parse::<IpAddr>().ok().map(IpNet::from)))
            .collect();
        let has_target = fault.spec.target.is_some() || !fault.spec.external_targets.is_empty();
        let peers = if has_target { Peers::Some { ips: targets, nets } } else { Peers::Any };
        let direction = fault.spec.direction.unwrap_or_default();
        if matches!(direction, Direction::To | Direction::Both) {
            let rule = Arc::new(Rule::new(fault, effect, peers.clone(), seed));
            for ip in &sources {
                self.by_src.entry(*ip).or_default().push(rule.clone());
            }
        }
        if matches!(direction, Direction::From | Direction::Both) {
            let rule = Arc::new(Rule::new(fault, effect, peers, seed.wrapping_add(1)));
            for ip in &sources {
                self.by_dst.entry(*ip).or_default().push(rule.clone());
            }
        }
    }

    /// Whether no rule is in force.
    pub fn is_empty(&self) -> bool {
        self.by_src.is_empty() && self.by_dst.is_empty()
    }

    /// The rules a packet from `src` to `dst` meets. `dst` holds every address the packet has
    /// been seen with on its way (the ClusterIP it was sent to and the endpoint it was DNATed
    /// to): Chaos Mesh's partition matches the endpoint at the target's INPUT, and a user names
    /// a Service (`externalTargets: [10.96.0.10/32]`) by its ClusterIP.
    pub fn matching(&self, src: IpAddr, dst: &[IpAddr]) -> Vec<Arc<Rule>> {
        let mut out: Vec<Arc<Rule>> = Vec::new();
        let mut push = |r: &Arc<Rule>| {
            if !out.iter().any(|o| Arc::ptr_eq(o, r)) {
                out.push(r.clone());
            }
        };
        if let Some(rules) = self.by_src.get(&src) {
            for r in rules.iter().filter(|r| dst.iter().any(|d| r.peers.contains(*d))) {
                push(r);
            }
        }
        for d in dst {
            if let Some(rules) = self.by_dst.get(d) {
                for r in rules.iter().filter(|r| r.peers.contains(src)) {
                    push(r);
                }
            }
        }
        out
    }
}

/// What a spec does, with its numbers parsed.
fn effect(spec: &NetworkChaosSpec) -> Result<Effect, SpecError> {
    let mut p = NetemParams::default();
    let action = spec.action;
    let want = |on: bool| on || action == NetworkAction::Netem;
    match action {
        NetworkAction::Partition => return Ok(Effect::Partition),
        NetworkAction::Bandwidth => {
            let b = spec.bandwidth.as_ref().ok_or(SpecError::Missing("bandwidth"))?;
            let rate = netem::parse_rate(&b.rate).map_err(SpecError::Rate)?;
            return Ok(Effect::Bandwidth { rate, buffer: u64::from(b.buffer) });
        }
        _ => {}
    }
    let mut any = false;
    if let Some(d) = spec.delay.as_ref().filter(|_| want(action == NetworkAction::Delay)) {
        p.latency = duration("delay.latency", &d.latency)?;
        p.jitter = if d.jitter.is_empty() { Duration::ZERO } else { duration("delay.jitter", &d.jitter)? };
        p.delay_correlation = percent("delay.correlation", &d.correlation)?;
        any = true;
    }
    if let Some(l) = spec.loss.as_ref().filter(|_| want(action == NetworkAction::Loss)) {
        p.loss = percent("loss.loss", &l.loss)?;
        p.loss_correlation = percent("loss.correlation", &l.correlation)?;
        any = true;
    }
    if let Some(d) = spec.duplicate.as_ref().filter(|_| want(action == NetworkAction::Duplicate)) {
        p.duplicate = percent("duplicate.duplicate", &d.duplicate)?;
        p.duplicate_correlation = percent("duplicate.correlation", &d.correlation)?;
        any = true;
    }
    if let Some(c) = spec.corrupt.as_ref().filter(|_| want(action == NetworkAction::Corrupt)) {
        p.corrupt = percent("corrupt.corrupt", &c.corrupt)?;
        p.corrupt_correlation = percent("corrupt.correlation", &c.correlation)?;
        any = true;
    }
    if any { Ok(Effect::Netem(p)) } else { Err(SpecError::Missing(action.as_str())) }
}

fn duration(field: &'static str, value: &str) -> Result<Duration, SpecError> {
    netlab_config::parse_duration(value).map_err(|_| SpecError::Duration { field, value: value.to_string() })
}

/// A percentage as Chaos Mesh's FloatStr takes it (empty: its default, 0).
fn percent(field: &'static str, value: &str) -> Result<f64, SpecError> {
    if value.is_empty() {
        return Ok(0.0);
    }
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|p| p.is_finite())
        .ok_or_else(|| SpecError::Percent { field, value: value.to_string() })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use netlab_chaos::{
        ChaosStatus, NetworkChaosSpec,
        network::{DelaySpec, LossSpec},
        spec::PodSelector,
        status::{Experiment, Record},
    };

    use super::*;

    const CLIENT: &str = "10.244.1.5";
    const ORDERS: &str = "10.244.2.7";
    const OTHER: &str = "10.244.2.9";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn t0() -> Timestamp {
        "2026-12-07T10:00:00Z".parse().unwrap()
    }

    fn record(key: &str, pod_ip: &str) -> Record {
        Record {
            id: format!("default/{pod_ip}"),
            selector_key: key.into(),
            phase: phase::INJECTED.into(),
            pod_ip: pod_ip.into(),
            ..Default::default()
        }
    }

    /// A fault on CLIENT, with ORDERS as its target when `target`.
    fn fault(name: &str, action: NetworkAction, direction: Direction, target: bool) -> NetworkChaos {
        let mut records = vec![record(SOURCE, CLIENT)];
        if target {
            records.push(record(TARGET, ORDERS));
        }
        NetworkChaos {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                creation_timestamp: Some(Time(t0())),
                ..Default::default()
            },
            spec: NetworkChaosSpec {
                action,
                direction: Some(direction),
                target: target.then(PodSelector::default),
                ..Default::default()
            },
            status: Some(ChaosStatus {
                experiment: Experiment { container_records: records, ..Default::default() },
                ..Default::default()
            }),
        }
    }

    fn names(rules: &[Arc<Rule>]) -> Vec<&str> {
        rules.iter().map(|r| r.fault.name.as_str()).collect()
    }

    fn hits(index: &Index, src: &str, dst: &str) -> bool {
        !index.matching(ip(src), &[ip(dst)]).is_empty()
    }

    #[test]
    fn directions_as_chaos_mesh_applies_them() {
        let to = Index::build([&fault("p", NetworkAction::Partition, Direction::To, true)], t0(), 1);
        assert!(hits(&to, CLIENT, ORDERS));
        assert!(!hits(&to, ORDERS, CLIENT), "`to` leaves the replies alone");
        assert!(!hits(&to, CLIENT, OTHER), "only the target");

        let from = Index::build([&fault("p", NetworkAction::Partition, Direction::From, true)], t0(), 1);
        assert!(!hits(&from, CLIENT, ORDERS));
        assert!(hits(&from, ORDERS, CLIENT));
        assert!(!hits(&from, OTHER, CLIENT));

        let both = Index::build([&fault("p", NetworkAction::Partition, Direction::Both, true)], t0(), 1);
        assert!(hits(&both, CLIENT, ORDERS) && hits(&both, ORDERS, CLIENT));
        assert!(!hits(&both, OTHER, ORDERS));
    }

    #[test]
    fn no_target_is_all_traffic_of_the_selected_pods() {
        let to = Index::build([&fault("p", NetworkAction::Partition, Direction::To, false)], t0(), 1);
        assert!(hits(&to, CLIENT, ORDERS) && hits(&to, CLIENT, "8.8.8.8"));
        assert!(!hits(&to, ORDERS, CLIENT));
        let both = Index::build([&fault("p", NetworkAction::Partition, Direction::Both, false)], t0(), 1);
        assert!(hits(&both, OTHER, CLIENT), "every packet to the selected pod");
    }

    #[test]
    fn external_targets_are_ips_and_cidrs_and_match_any_address_of_the_packet() {
        let mut f = fault("dns", NetworkAction::Partition, Direction::To, false);
        f.spec.external_targets = vec!["10.96.0.10".into(), "192.168.0.0/16".into(), "example.com".into()];
        let index = Index::build([&f], t0(), 1);
        assert!(hits(&index, CLIENT, "10.96.0.10"));
        assert!(hits(&index, CLIENT, "192.168.44.1"));
        assert!(!hits(&index, CLIENT, ORDERS), "external targets replace `all traffic`");
        // Sent to the ClusterIP, DNATed to the dns endpoint: either address matches.
        assert_eq!(index.matching(ip(CLIENT), &[ip("10.96.0.10"), ip("127.0.1.253")]).len(), 1);
    }

    #[test]
    fn only_injected_records_with_an_ip_count() {
        let mut f = fault("p", NetworkAction::Partition, Direction::To, true);
        let status = f.status.as_mut().unwrap();
        status.experiment.container_records[0].phase = phase::NOT_INJECTED.into();
        assert!(Index::build([&f], t0(), 1).is_empty());
        let mut f = fault("p", NetworkAction::Partition, Direction::To, true);
        f.status.as_mut().unwrap().experiment.container_records[0].pod_ip.clear();
        assert!(Index::build([&f], t0(), 1).is_empty(), "a pod without its IP yet");
    }

    #[test]
    fn the_window_decides_and_arms_the_timer() {
        let mut f = fault("p", NetworkAction::Partition, Direction::To, true);
        f.spec.duration = Some("60s".into());
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let index = Index::build([&f], at("2026-12-07T10:00:20Z"), 1);
        assert!(hits(&index, CLIENT, ORDERS));
        assert_eq!(index.next_change, Some(Duration::from_secs(40)));
        assert!(Index::build([&f], at("2026-12-07T10:01:00Z"), 1).is_empty(), "time up");
        f.metadata.annotations = Some([(netlab_chaos::PAUSE_ANNOTATION.into(), "true".into())].into());
        assert!(Index::build([&f], at("2026-12-07T10:00:20Z"), 1).is_empty(), "paused");
    }

    #[test]
    fn a_hundred_unrelated_faults_are_not_met() {
        let faults: Vec<NetworkChaos> = (0..100)
            .map(|n| {
                let mut f = fault(&format!("f{n}"), NetworkAction::Partition, Direction::Both, true);
                let records = &mut f.status.as_mut().unwrap().experiment.container_records;
                records[0].pod_ip = format!("10.245.{}.{}", n / 200, n % 200 + 1);
                records[1].pod_ip = format!("10.246.{}.{}", n / 200, n % 200 + 1);
                f
            })
            .collect();
        let index = Index::build(&faults, t0(), 1);
        assert_eq!(index.active, 100);
        assert!(!hits(&index, CLIENT, ORDERS));
        assert_eq!(names(&index.matching(ip("10.245.0.8"), &[ip("10.246.0.8")])), ["default/f7"]);
    }

    #[test]
    fn action_picks_its_parameters_and_bad_ones_are_skipped() {
        let mut f = fault("slow", NetworkAction::Delay, Direction::To, true);
        f.spec.delay =
            Some(DelaySpec { latency: "200ms".into(), jitter: "10ms".into(), correlation: "25".into() });
        f.spec.loss = Some(LossSpec { loss: "50".into(), correlation: String::new() });
        let index = Index::build([&f], t0(), 1);
        let rules = index.matching(ip(CLIENT), &[ip(ORDERS)]);
        let Effect::Netem(p) = rules[0].effect else { panic!("{:?}", rules[0].effect) };
        assert_eq!(
            (p.latency, p.jitter, p.delay_correlation),
            (Duration::from_millis(200), Duration::from_millis(10), 25.0)
        );
        assert_eq!(p.loss, 0.0, "action delay takes delay only");
        assert_eq!(rules[0].fault.action, "delay");
        assert_eq!(rules[0].key.name, "slow");

        f.spec.action = NetworkAction::Netem;
        let index = Index::build([&f], t0(), 1);
        let Effect::Netem(p) = index.matching(ip(CLIENT), &[ip(ORDERS)])[0].effect else { panic!() };
        assert_eq!(p.loss, 50.0, "netem merges them all");

        f.spec.delay.as_mut().unwrap().latency = "fast".into();
        let index = Index::build([&f], t0(), 1);
        assert!(index.is_empty());
        assert_eq!(index.skipped[0].1.to_string(), "delay.latency: parse duration field error: fast");
        f.spec.action = NetworkAction::Corrupt;
        assert_eq!(Index::build([&f], t0(), 1).skipped[0].1, SpecError::Missing("corrupt"));
    }

    #[test]
    fn both_directions_keep_their_own_qdisc() {
        let mut f = fault("lossy", NetworkAction::Loss, Direction::Both, true);
        f.spec.loss = Some(LossSpec { loss: "100".into(), correlation: String::new() });
        let index = Index::build([&f], t0(), 1);
        let out = index.matching(ip(CLIENT), &[ip(ORDERS)]);
        let back = index.matching(ip(ORDERS), &[ip(CLIENT)]);
        assert!(!Arc::ptr_eq(&out[0], &back[0]));
        assert_eq!(out[0].packet(100, Duration::ZERO).0.copies, 0);
    }
}
