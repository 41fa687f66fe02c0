//! DNSChaos as the cluster DNS enforces it: Chaos Mesh's chaos-coredns plugin (`k8s_dns_chaos`),
//! which answers wrongly for queries whose **source IP** is a selected pod's and whose name
//! matches the fault's `patterns`. Everyone else resolves normally.
//!
//! The chaos controller selects the pods and writes them (with their IPs) into
//! `status.experiment.containerRecords`; this module only reads those records, never a selector.
//! [`Faults`] is the index the handler asks on every query: a hash map from source IP to the
//! rules in force for it, so the lookup costs the same with 100 unrelated faults as with none. It
//! is rebuilt whole (faults are few) whenever a fault changes and when one's `duration` ends, by
//! [`crate::watch`], which arms a timer for the next end ([`Window::until_change`]).
//!
//! What each action answers ([`Action`]) follows chaos-coredns v0.2.x: `error` is SERVFAIL (the
//! lab's `rcode` may make it NXDOMAIN or REFUSED), `random` answers A with a random IPv4 and AAAA
//! with `2001:db8::123:12:1`, TTL 10, authoritative, and SERVFAIL for any other type. The lab's
//! `timeout` answers nothing and `delay` answers correctly, late.
//!
//! One difference: chaos-coredns keeps a single rule per pod IP (the last `SetDNSChaos` wins,
//! whatever its patterns) and forgets the pod entirely when any of its faults is recovered. Here
//! every fault keeps its own rule; where two match the same query the newest wins (as the last
//! `SetDNSChaos` would), and deleting one leaves the other in force, because deleting a fault
//! must restore exactly the state before it.
//!
//! This module knows no hickory types: the handler turns a [`Rule`]'s [`Action`] into a reply.

use std::{collections::HashMap, net::IpAddr, sync::Arc, time::Duration};

use jiff::Timestamp;
use netlab_chaos::{DnsChaos, FaultRef, dns::DnsAction, pattern, report::FaultKey, window::Window};

/// The fixed AAAA answer of chaos-coredns v0.2.x's `random`.
pub const RANDOM_AAAA: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0x123, 0x12, 1);
/// The TTL of `random`'s answers.
pub const RANDOM_TTL: u32 = 10;

/// The error rcodes `error` may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// SERVFAIL, Chaos Mesh's only one.
    ServFail,
    /// NXDOMAIN (the lab's `rcode`).
    NxDomain,
    /// REFUSED (the lab's `rcode`).
    Refused,
}

impl ErrorCode {
    /// The code for `spec.rcode` (unset: SERVFAIL). The apiserver refuses any other spelling; one
    /// that got through anyway is SERVFAIL, Chaos Mesh's answer.
    pub fn parse(rcode: Option<&str>) -> Self {
        match rcode.map(str::to_ascii_uppercase).as_deref() {
            Some("NXDOMAIN") => ErrorCode::NxDomain,
            Some("REFUSED") => ErrorCode::Refused,
            _ => ErrorCode::ServFail,
        }
    }

    /// Its name as dig prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ServFail => "SERVFAIL",
            ErrorCode::NxDomain => "NXDOMAIN",
            ErrorCode::Refused => "REFUSED",
        }
    }
}

/// What a rule does to a matching query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Answer with this error rcode.
    Error(ErrorCode),
    /// Answer A/AAAA with a made-up address; anything else SERVFAIL.
    Random,
    /// Answer nothing.
    Timeout,
    /// Answer correctly after this long.
    Delay(Duration),
}

/// One DNSChaos in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The fault, for span marks.
    pub fault: FaultRef,
    /// The fault, for counters.
    pub key: FaultKey,
    /// What it does.
    pub action: Action,
    patterns: Vec<String>,
    created: Timestamp,
}

impl Rule {
    /// The rule of `chaos`, if its spec can be enforced (a `delay` needs a delay that parses).
    fn of(chaos: &DnsChaos) -> Option<Self> {
        let action = match chaos.spec.action {
            DnsAction::Error => Action::Error(ErrorCode::parse(chaos.spec.rcode.as_deref())),
            DnsAction::Random => Action::Random,
            DnsAction::Timeout => Action::Timeout,
            DnsAction::Delay => {
                let text = chaos.spec.delay.as_deref()?;
                Action::Delay(netlab_config::parse_duration(text).ok()?)
            }
        };
        let meta = &chaos.metadata;
        Some(Self {
            fault: FaultRef::new(
                meta.namespace.as_deref().unwrap_or_default(),
                meta.name.as_deref().unwrap_or_default(),
                "DNSChaos",
                chaos.spec.action.as_str(),
            ),
            key: FaultKey::of(chaos),
            action,
            patterns: chaos.spec.patterns.clone(),
            created: meta.creation_timestamp.as_ref().map_or(Timestamp::MIN, |t| t.0),
        })
    }

    /// Whether the rule covers `qname` (absolute or not, any case).
    pub fn covers(&self, qname: &str) -> bool {
        pattern::any(&self.patterns, qname)
    }
}

/// The DNSChaos rules in force, by querying source IP.
#[derive(Debug, Default)]
pub struct Faults {
    by_ip: HashMap<IpAddr, Vec<Arc<Rule>>>,
}

impl Faults {
    /// The rules of `faults` in force at `now`, and how long until one of them ends by itself.
    pub fn build<'a>(
        faults: impl IntoIterator<Item = &'a DnsChaos>,
        now: Timestamp,
    ) -> (Self, Option<Duration>) {
        let mut by_ip: HashMap<IpAddr, Vec<Arc<Rule>>> = HashMap::new();
        let mut next: Option<Duration> = None;
        for chaos in faults {
            let window = Window::of(&chaos.metadata, chaos.spec.duration.as_deref());
            if let Some(left) = window.until_change(now) {
                next = Some(next.map_or(left, |n| n.min(left)));
            }
            if !window.active_at(now) {
                continue;
            }
            let Some(rule) = Rule::of(chaos) else {
                tracing::debug!(fault = %FaultKey::of(chaos).name, "DNSChaos without a usable delay; not enforced.");
                continue;
            };
            let rule = Arc::new(rule);
            let records =
                chaos.status.as_ref().map(|s| s.experiment.container_records.as_slice()).unwrap_or(&[]);
            for record in records {
                // `.` is the main selector's; DNSChaos has no other.
                if !(record.selector_key.is_empty() || record.selector_key == ".") {
                    continue;
                }
                let Ok(ip) = record.pod_ip.parse::<IpAddr>() else { continue };
                let rules = by_ip.entry(ip).or_default();
                if !rules.iter().any(|r| Arc::ptr_eq(r, &rule)) {
                    rules.push(rule.clone());
                }
            }
        }
        for rules in by_ip.values_mut() {
            // Newest first: where two faults cover a query, the newer wins.
            rules.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.fault.name.cmp(&b.fault.name)));
        }
        (Self { by_ip }, next)
    }

    /// The rule for a query for `qname` from `source`, if any.
    pub fn decide(&self, source: IpAddr, qname: &str) -> Option<&Arc<Rule>> {
        self.by_ip.get(&source)?.iter().find(|r| r.covers(qname))
    }

    /// Whether no fault is in force.
    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }
}

/// A random IPv4 as chaos-coredns makes it: each octet `rand.Intn(255)`, so 0 to 254.
pub fn random_ipv4() -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(
        rand::random_range(0..255),
        rand::random_range(0..255),
        rand::random_range(0..255),
        rand::random_range(0..255),
    )
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use netlab_chaos::status::{ChaosStatus, Record};

    use super::*;

    fn chaos(name: &str, action: DnsAction, created: &str, ips: &[&str], patterns: &[&str]) -> DnsChaos {
        let mut c = DnsChaos {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                creation_timestamp: Some(Time(created.parse().unwrap())),
                ..Default::default()
            },
            ..Default::default()
        };
        c.spec.action = action;
        c.spec.patterns = patterns.iter().map(|p| p.to_string()).collect();
        let mut status = ChaosStatus::default();
        status.experiment.container_records = ips
            .iter()
            .map(|ip| Record {
                id: format!("default/pod-{ip}"),
                selector_key: ".".into(),
                phase: "Injected".into(),
                pod_ip: ip.to_string(),
                ..Default::default()
            })
            .collect();
        c.status = Some(status);
        c
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const T0: &str = "2026-12-07T10:00:00Z";

    #[test]
    fn only_recorded_pods_and_matching_names() {
        let c = chaos("err", DnsAction::Error, T0, &["10.244.1.5"], &["orders.*"]);
        let (f, next) = Faults::build([&c], "2026-12-07T10:00:01Z".parse().unwrap());
        assert_eq!(next, None);
        let rule = f.decide(ip("10.244.1.5"), "orders.default.svc.cluster.local.").expect("in force");
        assert_eq!(rule.action, Action::Error(ErrorCode::ServFail));
        assert_eq!(rule.fault.name, "default/err");
        assert_eq!(rule.fault.kind, "DNSChaos");
        assert!(f.decide(ip("10.244.1.5"), "payments.default.svc.cluster.local.").is_none());
        assert!(f.decide(ip("10.244.1.6"), "orders.default.svc.cluster.local.").is_none(), "other pod");
        assert!(f.decide(ip("127.0.0.1"), "orders.default.svc.cluster.local.").is_none(), "the host");
    }

    #[test]
    fn empty_patterns_cover_every_name() {
        let c = chaos("all", DnsAction::Random, T0, &["10.244.1.5"], &[]);
        let (f, _) = Faults::build([&c], T0.parse().unwrap());
        assert!(f.decide(ip("10.244.1.5"), "example.com.").is_some());
        assert!(f.decide(ip("10.244.1.5"), "kubernetes.default.svc.cluster.local.").is_some());
    }

    #[test]
    fn duration_pause_and_deletion_end_it_and_the_timer_says_when() {
        let mut c = chaos("err", DnsAction::Error, T0, &["10.244.1.5"], &[]);
        c.spec.duration = Some("60s".into());
        let (f, next) = Faults::build([&c], "2026-12-07T10:00:20Z".parse().unwrap());
        assert!(!f.is_empty());
        assert_eq!(next, Some(Duration::from_secs(40)));
        let (f, next) = Faults::build([&c], "2026-12-07T10:01:00Z".parse().unwrap());
        assert!(f.is_empty(), "time up");
        assert_eq!(next, Some(Duration::ZERO));

        let mut paused = chaos("p", DnsAction::Error, T0, &["10.244.1.5"], &[]);
        paused.metadata.annotations =
            Some([(netlab_chaos::PAUSE_ANNOTATION.to_string(), "true".to_string())].into());
        assert!(Faults::build([&paused], T0.parse().unwrap()).0.is_empty());

        let mut deleting = chaos("d", DnsAction::Error, T0, &["10.244.1.5"], &[]);
        deleting.metadata.deletion_timestamp = Some(Time(T0.parse().unwrap()));
        assert!(Faults::build([&deleting], T0.parse().unwrap()).0.is_empty());
    }

    #[test]
    fn the_newest_fault_wins_and_the_older_stays() {
        let old = chaos("old", DnsAction::Error, T0, &["10.244.1.5"], &["orders.*"]);
        let new = chaos("new", DnsAction::Random, "2026-12-07T10:00:05Z", &["10.244.1.5"], &["orders.*"]);
        let other = chaos("pay", DnsAction::Timeout, T0, &["10.244.1.5"], &["payments.*"]);
        let now = "2026-12-07T10:00:10Z".parse().unwrap();
        let (f, _) = Faults::build([&old, &new, &other], now);
        assert_eq!(f.decide(ip("10.244.1.5"), "orders.default.").unwrap().fault.name, "default/new");
        assert_eq!(f.decide(ip("10.244.1.5"), "payments.default.").unwrap().action, Action::Timeout);
        // Deleting the newer brings back the older one.
        let (f, _) = Faults::build([&old, &other], now);
        assert_eq!(f.decide(ip("10.244.1.5"), "orders.default.").unwrap().fault.name, "default/old");
    }

    #[test]
    fn actions_from_the_spec() {
        let mut c = chaos("x", DnsAction::Error, T0, &["10.244.1.5"], &[]);
        c.spec.rcode = Some("NXDOMAIN".into());
        assert_eq!(Rule::of(&c).unwrap().action, Action::Error(ErrorCode::NxDomain));
        c.spec.rcode = Some("REFUSED".into());
        assert_eq!(Rule::of(&c).unwrap().action, Action::Error(ErrorCode::Refused));
        c.spec.action = DnsAction::Delay;
        c.spec.delay = Some("250ms".into());
        assert_eq!(Rule::of(&c).unwrap().action, Action::Delay(Duration::from_millis(250)));
        c.spec.delay = None;
        assert!(Rule::of(&c).is_none(), "a delay without a delay is not enforced");
        assert!(Faults::build([&c], T0.parse().unwrap()).0.is_empty());
    }

    #[test]
    fn records_of_the_target_selector_and_without_ip_are_skipped() {
        let mut c = chaos("x", DnsAction::Error, T0, &["10.244.1.5", ""], &[]);
        if let Some(s) = c.status.as_mut() {
            s.experiment.container_records[0].selector_key = ".Target".into();
        }
        assert!(Faults::build([&c], T0.parse().unwrap()).0.is_empty());
    }

    #[test]
    fn lookup_is_by_source_ip_with_many_unrelated_faults() {
        let faults: Vec<DnsChaos> = (0..100)
            .map(|i| {
                chaos(
                    &format!("f{i}"),
                    DnsAction::Error,
                    T0,
                    &[&format!("10.1.{}.{}", i / 250, i % 250 + 1)],
                    &[],
                )
            })
            .collect();
        let (f, _) = Faults::build(&faults, T0.parse().unwrap());
        assert_eq!(f.by_ip.len(), 100);
        assert!(f.decide(ip("10.244.9.9"), "orders.").is_none());
        assert_eq!(f.decide(ip("10.1.0.42"), "orders.").unwrap().fault.name, "default/f41");
    }

    #[test]
    fn random_addresses() {
        assert_eq!(
            RANDOM_AAAA.octets(),
            [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0x01, 0x23, 0, 0x12, 0, 0x01]
        );
        let seen: std::collections::HashSet<_> = (0..20).map(|_| random_ipv4()).collect();
        assert!(seen.len() > 1);
        assert!(seen.iter().all(|ip| ip.octets().iter().all(|&o| o < 255)));
    }
}
