//! The restore/save round trip and the walk, on the upstream example from facts §4.1.

mod snat;

use std::{collections::HashMap, net::IpAddr};

use super::{table::Slot, *};
use crate::Protocol;

/// The upstream `TestOverallIPTablesRulesWithMultipleServices` excerpt (facts §4.1).
const UPSTREAM: &str = r#"*nat
:KUBE-SERVICES - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]
:KUBE-SEP-UKSFD7AGPMPPLUHC - [0:0]
:KUBE-SEP-C6EBXVWJJZMIWKLZ - [0:0]
-A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.4:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.5:80" -j KUBE-SEP-C6EBXVWJJZMIWKLZ
-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ
-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80
-A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ
-A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
COMMIT
*filter
:KUBE-SERVICES - [0:0]
-A KUBE-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT
COMMIT
"#;

const ENSURE: &[&str] = &[
    r#"nat PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES"#,
    r#"nat OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES"#,
    r#"nat POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING"#,
    r#"filter FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES"#,
    r#"filter OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES"#,
];

/// Deterministic environment: random numbers from a list, a clock, `recent` lists.
struct Env {
    draws: Vec<f64>,
    now: u64,
    local: Vec<IpAddr>,
    recent: HashMap<(String, IpAddr), u64>,
    /// Output interfaces by destination (others: `lo` if local, else `eth0`).
    ifaces: Vec<(IpAddr, &'static str)>,
}

impl Env {
    fn new(draws: &[f64]) -> Self {
        Self {
            draws: draws.iter().rev().copied().collect(),
            now: 1000,
            local: vec!["192.168.0.2".parse().unwrap()],
            recent: HashMap::new(),
            ifaces: Vec::new(),
        }
    }
}

impl WalkEnv for Env {
    fn random(&mut self) -> f64 {
        self.draws.pop().unwrap_or(0.0)
    }
    fn now(&self) -> u64 {
        self.now
    }
    fn is_local(&self, ip: IpAddr) -> bool {
        self.local.contains(&ip)
    }
    fn recent_check(&mut self, list: &str, src: IpAddr, seconds: Option<u64>) -> bool {
        self.recent.get(&(list.to_string(), src)).is_some_and(|t| seconds.is_none_or(|s| self.now - t <= s))
    }
    fn recent_set(&mut self, list: &str, src: IpAddr) {
        self.recent.insert((list.to_string(), src), self.now);
    }
    fn out_interface(&self, dst: IpAddr) -> &str {
        match self.ifaces.iter().find(|(ip, _)| *ip == dst) {
            Some((_, name)) => name,
            None if self.is_local(dst) => "lo",
            None => "eth0",
        }
    }
}

fn tables() -> Tables {
    let mut t = Tables::new();
    t.restore(UPSTREAM, true).unwrap();
    for e in ENSURE {
        t.ensure(e).unwrap();
    }
    t
}

fn pkt(src: &str, dst: &str) -> Packet {
    Packet { protocol: Protocol::Tcp, src: src.parse().unwrap(), dst: dst.parse().unwrap() }
}

#[test]
fn save_prints_what_was_restored() {
    let t = tables();
    let saved = t.save();
    // Every rule line of the input comes back verbatim.
    for line in UPSTREAM.lines().filter(|l| l.starts_with("-A ")) {
        assert!(saved.contains(line), "missing {line}\n{saved}");
    }
    assert!(saved.starts_with("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n"), "{saved}");
    assert!(
        saved.contains("-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n")
    );
    // Saving and restoring the save changes nothing.
    let mut again = Tables::new();
    again.restore(&saved, false).unwrap();
    assert_eq!(again.save(), saved);
}

#[test]
fn ensure_is_idempotent() {
    let mut t = tables();
    let n = t.rule_count();
    for e in ENSURE {
        assert!(!t.ensure(e).unwrap());
    }
    assert_eq!(t.rule_count(), n);
}

#[test]
fn clusterip_dnats_by_probability() {
    let t = tables();
    // 0.3 < 0.5: the first endpoint.
    let v = t.evaluate(pkt("10.0.1.2:40000", "172.30.0.44:80"), Origin::Forwarded, &mut Env::new(&[0.3]));
    assert_eq!(v.dst, "10.180.0.4:80".parse().unwrap());
    assert!(v.dnat);
    assert_eq!(v.disposition, Disposition::Accept);
    assert!(!v.masquerade, "in-cluster source is not masqueraded");
    let chains: Vec<_> = v.steps().map(|s| s.chain).collect();
    assert_eq!(
        chains,
        ["PREROUTING", "KUBE-SERVICES", "KUBE-SVC-4SW47YFZTEDKD3PK", "KUBE-SEP-UKSFD7AGPMPPLUHC"]
    );
    assert_eq!(v.steps().nth(2).unwrap().probability, Some(0.5));
    // 0.7 ≥ 0.5: falls through to the unconditional last rule.
    let v = t.evaluate(pkt("10.0.1.2:40000", "172.30.0.44:80"), Origin::Forwarded, &mut Env::new(&[0.7]));
    assert_eq!(v.dst, "10.180.0.5:80".parse().unwrap());
    assert_eq!(v.steps().nth(2).unwrap().probability, None);
}

#[test]
fn off_cluster_source_and_hairpin_are_masqueraded() {
    let t = tables();
    let v = t.evaluate(pkt("192.168.0.9:40000", "172.30.0.44:80"), Origin::Forwarded, &mut Env::new(&[0.1]));
    assert!(v.masquerade);
    // The endpoint connecting to its own Service lands on itself: hairpin masquerade.
    let v = t.evaluate(pkt("10.180.0.4:40000", "172.30.0.44:80"), Origin::Forwarded, &mut Env::new(&[0.1]));
    assert_eq!(v.dst, "10.180.0.4:80".parse().unwrap());
    assert!(v.masquerade);
}

#[test]
fn no_endpoints_rejects_and_unknown_passes() {
    let t = tables();
    let v = t.evaluate(pkt("10.0.1.2:40000", "172.30.0.46:80"), Origin::Forwarded, &mut Env::new(&[]));
    assert_eq!(v.disposition, Disposition::Reject);
    assert_eq!(v.steps().last().unwrap().comment, Some("ns6/svc6:p80 has no endpoints"));
    // Another port of a known ClusterIP: no rule; the kernel leaves it alone (routing decides).
    let v = t.evaluate(pkt("10.0.1.2:40000", "172.30.0.44:81"), Origin::Forwarded, &mut Env::new(&[]));
    assert_eq!((v.dnat, v.disposition), (false, Disposition::Accept));
    // Node-originated traffic goes through OUTPUT and is DNATed the same way.
    let v = t.evaluate(pkt("192.168.0.2:40000", "172.30.0.44:80"), Origin::Local, &mut Env::new(&[0.9]));
    assert_eq!(v.dst, "10.180.0.5:80".parse().unwrap());
}

#[test]
fn noflush_partial_restore_keeps_unnamed_chains_and_deletes_x() {
    let mut t = tables();
    // A partial sync: KUBE-SERVICES rewritten without svc4, its chains deleted.
    t.restore(
        "*nat\n:KUBE-SERVICES - [0:0]\n-X KUBE-SVC-4SW47YFZTEDKD3PK\n-X KUBE-SEP-UKSFD7AGPMPPLUHC\n-X KUBE-SEP-C6EBXVWJJZMIWKLZ\nCOMMIT\n",
        true,
    )
    .unwrap();
    let saved = t.save();
    assert!(!saved.contains("KUBE-SVC-4SW47YFZTEDKD3PK"), "{saved}");
    assert!(saved.contains("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000"), "untouched chain kept");
    assert!(saved.contains("has no endpoints"), "other table untouched");
}

#[test]
fn bad_input_changes_nothing_and_names_the_line() {
    let mut t = tables();
    let before = t.save();
    let err = t
        .restore(
            "*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -d 10.96.0.1 -j KUBE-SVC-NOPE\nCOMMIT\n",
            true,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "iptables-restore: line 3 failed: Couldn't load target `KUBE-SVC-NOPE':No such file or directory"
    );
    let err = t.restore("*nat\n-A KUBE-SERVICES -m bogus -j ACCEPT\nCOMMIT\n", true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "iptables-restore: line 2 failed: Couldn't load match `bogus':No such file or directory"
    );
    let err = t.restore("*nat\n:KUBE-SERVICES - [0:0]\n", true).unwrap_err();
    assert_eq!(err, RestoreError::NoCommit(2));
    let err = t.restore("*mangle\nCOMMIT\n", true).unwrap_err();
    assert!(err.to_string().contains("Table does not exist"), "{err}");
    assert_eq!(t.save(), before);
}

#[test]
fn affinity_pins_a_client_to_its_endpoint() {
    let mut t = Tables::new();
    t.restore(
        r#"*nat
:KUBE-SERVICES - [0:0]
:KUBE-SVC-A - [0:0]
:KUBE-SEP-1 - [0:0]
:KUBE-SEP-2 - [0:0]
-A KUBE-SERVICES -m tcp -p tcp -d 10.96.0.5 --dport 80 -j KUBE-SVC-A
-A KUBE-SVC-A -m recent --name KUBE-SEP-1 --rcheck --seconds 10800 --reap -j KUBE-SEP-1
-A KUBE-SVC-A -m recent --name KUBE-SEP-2 --rcheck --seconds 10800 --reap -j KUBE-SEP-2
-A KUBE-SVC-A -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-1
-A KUBE-SVC-A -j KUBE-SEP-2
-A KUBE-SEP-1 -m recent --name KUBE-SEP-1 --set -m tcp -p tcp -j DNAT --to-destination 10.244.1.1:80
-A KUBE-SEP-2 -m recent --name KUBE-SEP-2 --set -m tcp -p tcp -j DNAT --to-destination 10.244.1.2:80
COMMIT
"#,
        true,
    )
    .unwrap();
    t.ensure(ENSURE[0]).unwrap();
    let mut env = Env::new(&[0.9, 0.1, 0.1, 0.1]);
    let first = t.evaluate(pkt("10.244.2.9:40000", "10.96.0.5:80"), Origin::Forwarded, &mut env);
    assert_eq!(first.dst, "10.244.1.2:80".parse().unwrap());
    for _ in 0..3 {
        let v = t.evaluate(pkt("10.244.2.9:40001", "10.96.0.5:80"), Origin::Forwarded, &mut env);
        assert_eq!(v.dst, first.dst, "affinity holds although the draws say endpoint 1");
    }
    env.now += 10801;
    let v = t.evaluate(pkt("10.244.2.9:40002", "10.96.0.5:80"), Origin::Forwarded, &mut env);
    assert_eq!(v.dst, "10.244.1.1:80".parse().unwrap(), "expired affinity draws again");
}

/// The index must not change any answer: a chain longer than the threshold gives the same
/// verdicts as the same rules walked linearly.
#[test]
fn indexed_walk_equals_linear_walk() {
    let mut text = String::from("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-X - [0:0]\n");
    for i in 0..100u32 {
        text.push_str(&format!(
            "-A KUBE-SERVICES -m tcp -p tcp -d 10.96.0.{} --dport 80 -j KUBE-SVC-X\n",
            i + 1
        ));
        if i == 50 {
            // A rule the index cannot place sits in the middle and must still be found in order.
            text.push_str("-A KUBE-SERVICES -d 10.96.0.0/24 -j RETURN\n");
        }
    }
    text.push_str("-A KUBE-SVC-X -m tcp -p tcp -j DNAT --to-destination 10.244.0.1:80\nCOMMIT\n");
    let mut t = Tables::new();
    t.restore(&text, true).unwrap();
    t.ensure(ENSURE[0]).unwrap();
    assert!(t.chain(TableName::Nat, "KUBE-SERVICES").unwrap().index.is_some());
    for i in [1u32, 50, 51, 52, 100, 101] {
        let p = pkt("10.244.1.1:1000", &format!("10.96.0.{i}:80"));
        let v = t.evaluate(p, Origin::Forwarded, &mut Env::new(&[]));
        let mut l = t.clone();
        l.nat.get_mut("KUBE-SERVICES").unwrap().index = None;
        let linear = l.evaluate(p, Origin::Forwarded, &mut Env::new(&[]));
        assert_eq!(v, linear, "10.96.0.{i}");
        assert_eq!(v.dnat, i <= 51, "10.96.0.{i}: rules after the RETURN never match");
    }
}

/// The walk reads two rules per cache line, a chain's rules starting a line.
#[test]
fn walk_rules_are_half_a_cache_line() {
    assert_eq!(std::mem::size_of::<WalkRule>(), 32);
    assert_eq!(std::mem::align_of::<WalkRule>(), 32);
    assert_eq!(std::mem::size_of::<RuleLine>(), 64);
    assert_eq!(std::mem::align_of::<RuleLine>(), 64);
    assert_eq!(std::mem::align_of::<Slot>(), 64);
}

/// IPv6 networks and DNAT targets take the walk's slow path and give the same answers.
#[test]
fn ipv6_rules_walk_like_ipv4() {
    let mut text = String::from("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-6 - [0:0]\n:KUBE-SEP-6 - [0:0]\n");
    // Enough rules for an index, with the IPv6 Service among IPv4 ones.
    for i in 0..20 {
        text.push_str(&format!("-A KUBE-SERVICES -m tcp -p tcp -d 10.96.1.{i} --dport 80 -j KUBE-SVC-6\n"));
    }
    text.push_str("-A KUBE-SERVICES -m tcp -p tcp -d fd00:96::5 --dport 80 -j KUBE-SVC-6\n");
    text.push_str("-A KUBE-SVC-6 ! -s fd00:244::/64 -j KUBE-MARK-MASQ\n");
    text.push_str("-A KUBE-SVC-6 -j KUBE-SEP-6\n");
    text.push_str("-A KUBE-SEP-6 -m tcp -p tcp -j DNAT --to-destination [fd00:244::7]:8080\n");
    text.push_str(":KUBE-MARK-MASQ - [0:0]\n-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\nCOMMIT\n");
    let mut t = Tables::new();
    t.restore(&text, true).unwrap();
    t.ensure(ENSURE[0]).unwrap();
    let v = t.evaluate(pkt("[fd00:244::9]:40000", "[fd00:96::5]:80"), Origin::Forwarded, &mut Env::new(&[]));
    assert_eq!(v.dst, "[fd00:244::7]:8080".parse().unwrap());
    let chains: Vec<_> = v.steps().map(|s| s.chain).collect();
    assert_eq!(chains, ["PREROUTING", "KUBE-SERVICES", "KUBE-SVC-6", "KUBE-SEP-6"]);
    // An IPv6 packet never matches the IPv4 rules, nor an unknown IPv6 address.
    let v = t.evaluate(pkt("[fd00:244::9]:40000", "[fd00:96::6]:80"), Origin::Forwarded, &mut Env::new(&[]));
    assert!(!v.dnat);
    let v = t.evaluate(pkt("10.244.0.9:40000", "10.96.1.7:80"), Origin::Forwarded, &mut Env::new(&[]));
    assert_eq!(v.dst, "[fd00:244::7]:8080".parse().unwrap(), "the same chains serve the IPv4 ClusterIPs");
}

/// A partial sync rewrites KUBE-SERVICES whole: unchanged rules are the same rules afterwards,
/// whether the lines around them were added or removed.
#[test]
fn partial_restore_reuses_unchanged_rules() {
    let mut text = String::from("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-X - [0:0]\n");
    for i in 0..40u32 {
        text.push_str(&format!("-A KUBE-SERVICES -m tcp -p tcp -d 10.96.0.{i} --dport 80 -j KUBE-SVC-X\n"));
    }
    text.push_str("-A KUBE-SVC-X -m tcp -p tcp -j DNAT --to-destination 10.244.0.1:80\nCOMMIT\n");
    let mut t = Tables::new();
    t.restore(&text, true).unwrap();
    t.ensure(ENSURE[0]).unwrap();
    let before: Vec<Arc<Rule>> = t.chain(TableName::Nat, "KUBE-SERVICES").unwrap().rules().to_vec();
    // Service 3 removed, a Service added in front and one in the middle.
    let mut partial = String::from("*nat\n:KUBE-SERVICES - [0:0]\n");
    partial.push_str("-A KUBE-SERVICES -m tcp -p tcp -d 10.96.1.1 --dport 80 -j KUBE-SVC-X\n");
    for i in (0..40u32).filter(|i| *i != 3) {
        partial
            .push_str(&format!("-A KUBE-SERVICES -m tcp -p tcp -d 10.96.0.{i} --dport 80 -j KUBE-SVC-X\n"));
        if i == 20 {
            partial.push_str("-A KUBE-SERVICES -m tcp -p tcp -d 10.96.1.2 --dport 80 -j KUBE-SVC-X\n");
        }
    }
    partial.push_str("COMMIT\n");
    t.restore(&partial, true).unwrap();
    let after = t.chain(TableName::Nat, "KUBE-SERVICES").unwrap().rules();
    assert_eq!(after.len(), 41);
    for r in after {
        let old = before.iter().find(|o| o.spec == r.spec);
        assert_eq!(old.is_some_and(|o| Arc::ptr_eq(o, r)), old.is_some(), "{}", r.spec);
    }
    for dst in ["10.96.1.1:80", "10.96.1.2:80", "10.96.0.39:80"] {
        let v = t.evaluate(pkt("10.244.1.1:1000", dst), Origin::Forwarded, &mut Env::new(&[]));
        assert!(v.dnat, "{dst}");
    }
    let v = t.evaluate(pkt("10.244.1.1:1000", "10.96.0.3:80"), Origin::Forwarded, &mut Env::new(&[]));
    assert!(!v.dnat, "the removed Service is gone");
}

/// Chains come and go with every endpoint change: their slots are reclaimed, and a jump that an
/// untouched chain still has to a deleted chain is skipped, and taken again once the chain is
/// back, before and after the slots are compacted.
#[test]
fn deleted_chains_are_reclaimed_and_dangling_jumps_skipped() {
    let mut t = tables();
    t.restore(
        "*nat\n:KUBE-EXTRA - [0:0]\n:KUBE-TARGET - [0:0]\n-A KUBE-EXTRA -j KUBE-TARGET\n-A KUBE-TARGET -m tcp -p tcp -d 10.96.9.9 -j DNAT --to-destination 10.244.9.9:80\nCOMMIT\n",
        true,
    )
    .unwrap();
    t.ensure("nat PREROUTING -j KUBE-EXTRA").unwrap();
    let to_target = |t: &Tables| {
        t.evaluate(pkt("10.244.1.1:1000", "10.96.9.9:80"), Origin::Forwarded, &mut Env::new(&[])).dnat
    };
    assert!(to_target(&t));
    for round in 0..3 {
        t.restore("*nat\n-X KUBE-TARGET\nCOMMIT\n", true).unwrap();
        assert!(!to_target(&t), "round {round}: the jump to the deleted chain is skipped");
        // Churn: many chains created and deleted, enough to compact.
        for i in 0..1500 {
            t.restore(&format!("*nat\n:KUBE-SEP-{i} - [0:0]\n-A KUBE-SEP-{i} -j RETURN\nCOMMIT\n"), true)
                .unwrap();
            t.restore(&format!("*nat\n-X KUBE-SEP-{i}\nCOMMIT\n"), true).unwrap();
        }
        assert!(t.nat.slots.len() < 2500, "round {round}: {} slots", t.nat.slots.len());
        t.restore(
            "*nat\n:KUBE-TARGET - [0:0]\n-A KUBE-TARGET -m tcp -p tcp -d 10.96.9.9 -j DNAT --to-destination 10.244.9.9:80\nCOMMIT\n",
            true,
        )
        .unwrap();
        assert!(to_target(&t), "round {round}: the chain is back");
    }
    // The upstream rules still work after the renumbering.
    let v = t.evaluate(pkt("10.0.1.2:40000", "172.30.0.44:80"), Origin::Forwarded, &mut Env::new(&[0.3]));
    assert_eq!(v.dst, "10.180.0.4:80".parse().unwrap());
    let saved = t.save();
    let mut again = Tables::new();
    again.restore(&saved, false).unwrap();
    assert_eq!(again.save(), saved);
}

/// Errors name the first bad line, parse errors of a table before missing chains, as before.
#[test]
fn restore_errors_name_the_first_bad_line() {
    let mut t = tables();
    let err = t
        .restore("*nat\n:KUBE-B - [0:0]\n-A KUBE-B -j KUBE-NOPE\n-A KUBE-A -j RETURN\n-A KUBE-B -j KUBE-NOPE2\nCOMMIT\n", false)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "iptables-restore: line 3 failed: Couldn't load target `KUBE-NOPE':No such file or directory"
    );
    let err = t
        .restore("*nat\n:KUBE-B - [0:0]\n-A KUBE-A -j RETURN\n-A KUBE-B -j KUBE-NOPE\nCOMMIT\n", false)
        .unwrap_err();
    assert_eq!(err.to_string(), "iptables-restore: line 3 failed: Chain 'KUBE-A' does not exist");
    let err = t
        .restore("*nat\n-A KUBE-A -j RETURN\n-A KUBE-SERVICES -m bogus -j ACCEPT\nCOMMIT\n", true)
        .unwrap_err();
    assert!(err.to_string().starts_with("iptables-restore: line 3 failed: Couldn't load match"), "{err}");
    // A chain deleted in the same restore is gone for the rules after it.
    let err = t.restore("*nat\n-X KUBE-MARK-MASQ\n-A KUBE-MARK-MASQ -j RETURN\nCOMMIT\n", true).unwrap_err();
    assert_eq!(err.to_string(), "iptables-restore: line 3 failed: Chain 'KUBE-MARK-MASQ' does not exist");
}

/// Long jump sequences keep every step (past the inline ones), and a loop ends the walk.
#[test]
fn deep_walks_keep_their_steps_and_loops_end() {
    let mut text = String::from("*nat\n");
    for i in 0..12 {
        text.push_str(&format!(":KUBE-HOP-{i} - [0:0]\n"));
    }
    text.push_str(":KUBE-LOOP - [0:0]\n-A KUBE-LOOP -d 10.96.7.7 -j KUBE-LOOP\n");
    text.push_str("-A PREROUTING -d 10.96.7.7 -j KUBE-LOOP\n-A PREROUTING -j KUBE-HOP-0\n");
    for i in 0..11 {
        text.push_str(&format!("-A KUBE-HOP-{i} -j KUBE-HOP-{}\n", i + 1));
    }
    text.push_str("-A KUBE-HOP-11 -j DNAT --to-destination 10.244.0.1:80\nCOMMIT\n");
    let mut t = Tables::new();
    t.restore(&text, true).unwrap();
    let v = t.evaluate(pkt("10.244.1.1:1000", "10.96.0.1:80"), Origin::Forwarded, &mut Env::new(&[]));
    let chains: Vec<_> = v.steps().map(|s| s.chain.to_string()).collect();
    let mut want = vec!["PREROUTING".to_string()];
    want.extend((0..12).map(|i| format!("KUBE-HOP-{i}")));
    assert_eq!(chains, want);
    assert!(matches!(v.steps().last().unwrap().target, Target::Dnat(_)));
    let v = t.evaluate(pkt("10.244.1.1:1000", "10.96.7.7:80"), Origin::Forwarded, &mut Env::new(&[]));
    assert!(!v.dnat, "the loop is cut off at MAX_DEPTH");
}

/// The index takes a jump that its key alone decides without reading the rule; rules with more
/// matches, or sharing a key, are still read. Answers equal the linear walk's, also after the
/// slots the index's jumps point to are renumbered by a compaction.
#[test]
fn index_jumps_equal_linear_walk_across_compaction() {
    let mut t = Tables::new();
    let mut churn = String::from("*nat\n");
    for i in 0..1500 {
        churn.push_str(&format!(":KUBE-SEP-{i} - [0:0]\n-A KUBE-SEP-{i} -j RETURN\n"));
    }
    churn.push_str("COMMIT\n");
    t.restore(&churn, true).unwrap();
    let mut text = String::from("*nat\n:KUBE-SERVICES - [0:0]\n");
    for i in 0..40u32 {
        text.push_str(&format!(":KUBE-SVC-{i} - [0:0]\n"));
        let extra = match i {
            // More matches than the key: only the rule can say.
            5 => " ! -s 10.0.0.0/8",
            6 => " -m mark --mark 0x1/0x1",
            _ => "",
        };
        if i == 7 {
            // Two rules under one key: the first RETURNs for some sources.
            text.push_str(
                "-A KUBE-SERVICES -m tcp -p tcp -d 10.96.0.7 --dport 80 -s 10.1.0.0/16 -j RETURN\n",
            );
        }
        text.push_str(&format!(
            "-A KUBE-SERVICES -m tcp -p tcp -d 10.96.0.{i} --dport 80{extra} -j KUBE-SVC-{i}\n"
        ));
        text.push_str(&format!("-A KUBE-SVC-{i} -m tcp -p tcp -j DNAT --to-destination 10.244.0.{i}:80\n"));
    }
    text.push_str("COMMIT\n");
    t.restore(&text, true).unwrap();
    t.ensure(ENSURE[0]).unwrap();
    let jumps = |t: &Tables| {
        let ix = t.chain(TableName::Nat, "KUBE-SERVICES").unwrap().index.as_ref().unwrap();
        ix.v4.iter().filter(|e| e.jump != NO_SLOT).count()
    };
    assert_eq!(jumps(&t), 37, "all but services 5, 6 and 7");
    let check = |t: &Tables| {
        let mut l = t.clone();
        l.nat.get_mut("KUBE-SERVICES").unwrap().index = None;
        for i in 0..41u32 {
            for src in ["10.1.2.3:1000", "192.168.0.1:1000"] {
                let p = pkt(src, &format!("10.96.0.{i}:80"));
                let v = t.evaluate(p, Origin::Forwarded, &mut Env::new(&[]));
                let linear = l.evaluate(p, Origin::Forwarded, &mut Env::new(&[]));
                assert_eq!(v, linear, "{src} -> 10.96.0.{i}");
                let expect = i < 40
                    && !(i == 5 && src.starts_with("10."))
                    && i != 6
                    && !(i == 7 && src.starts_with("10.1."));
                assert_eq!(v.dnat, expect, "{src} -> 10.96.0.{i}");
                if expect {
                    assert_eq!(v.dst, format!("10.244.0.{i}:80").parse().unwrap());
                }
            }
        }
    };
    check(&t);
    let before = t.nat.ids["KUBE-SVC-0"];
    let mut delete = String::from("*nat\n");
    for i in 0..1500 {
        delete.push_str(&format!("-X KUBE-SEP-{i}\n"));
    }
    delete.push_str("COMMIT\n");
    t.restore(&delete, true).unwrap();
    assert!(t.nat.ids["KUBE-SVC-0"] < before, "the slots were renumbered");
    assert_eq!(jumps(&t), 37);
    check(&t);
}

/// kube-proxy's `KUBE-FORWARD` chain as its restore input writes it (upstream `syncProxyRules`,
/// v1.29's text), and the jump to it from FORWARD.
const KUBE_FORWARD: &str = r#"*filter
:KUBE-FORWARD - [0:0]
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
"#;
const KUBE_FORWARD_JUMP: &str =
    r#"filter FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD"#;

#[test]
fn kube_forward_round_trips_verbatim() {
    let mut t = tables();
    t.restore(KUBE_FORWARD, true).unwrap();
    t.ensure(KUBE_FORWARD_JUMP).unwrap();
    let saved = t.save();
    let lines: Vec<&str> = saved.lines().filter(|l| l.starts_with("-A KUBE-FORWARD ")).collect();
    let want: Vec<&str> = KUBE_FORWARD.lines().filter(|l| l.starts_with("-A ")).collect();
    assert_eq!(lines, want, "{saved}");
    assert!(
        saved.contains("\n-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n"),
        "{saved}"
    );
    let mut again = Tables::new();
    again.restore(&saved, false).unwrap();
    assert_eq!(again.save(), saved);
    let rule = &t.chain(TableName::Filter, "KUBE-FORWARD").unwrap().rules()[2];
    assert_eq!(rule.matches.ctstate, Some((false, CtStates::parse("ESTABLISHED,RELATED").unwrap())));
}

/// A new connection through filter FORWARD with KUBE-FORWARD in place: its conntrack state is
/// NEW, so the INVALID and RELATED,ESTABLISHED rules never take it; one KUBE-MARK-MASQ marked
/// is accepted by the mark rule, any other falls through to what FORWARD says next (here a
/// DROP standing in for a DROP policy, the case upstream's rule exists for).
#[test]
fn kube_forward_accepts_marked_new_connections_and_passes_the_rest() {
    let mut t = tables();
    t.restore(KUBE_FORWARD, true).unwrap();
    t.ensure(KUBE_FORWARD_JUMP).unwrap();
    t.restore("*filter\n-A FORWARD -m comment --comment \"default deny\" -j DROP\nCOMMIT\n", true).unwrap();
    let forward = |v: &Verdict<'_>| {
        v.steps()
            .filter(|s| s.table == TableName::Filter)
            .map(|s| (s.chain.to_string(), s.comment.map(str::to_string)))
            .collect::<Vec<_>>()
    };

    // From off the cluster: KUBE-SVC- marks it for masquerade, KUBE-FORWARD accepts it.
    let v = t.evaluate(pkt("192.168.0.9:40000", "172.30.0.44:80"), Origin::Forwarded, &mut Env::new(&[0.1]));
    assert_eq!(v.disposition, Disposition::Accept);
    assert!(v.masquerade, "accepted in filter, still masqueraded in POSTROUTING");
    assert_eq!(forward(&v), [("FORWARD".to_string(), Some("kubernetes forwarding rules".to_string()))]);

    // From a pod: not marked, so nothing in KUBE-FORWARD takes it and FORWARD's DROP does.
    let v = t.evaluate(pkt("10.0.1.2:40000", "172.30.0.44:80"), Origin::Forwarded, &mut Env::new(&[0.1]));
    assert!(v.dnat);
    assert_eq!(v.disposition, Disposition::Drop);
    assert_eq!(forward(&v), [("FORWARD".to_string(), Some("default deny".to_string()))]);
}

/// `--ctstate` against a first packet: NEW always, DNAT once a DNAT rule rewrote it, never
/// INVALID, ESTABLISHED, RELATED, UNTRACKED or (before MASQUERADE ends the walk) SNAT; `!`
/// negates; names may be abbreviated and any case, as libxt_conntrack reads them.
#[test]
fn ctstate_matches_what_a_first_packet_is() {
    // (spec, matches the DNATed connection, matches the one without DNAT)
    let cases = [
        ("--ctstate NEW", true, true),
        ("--ctstate NEW,ESTABLISHED", true, true),
        ("--ctstate INVALID", false, false),
        ("--ctstate RELATED,ESTABLISHED", false, false),
        ("--ctstate UNTRACKED,SNAT", false, false),
        ("--ctstate DNAT", true, false),
        ("! --ctstate NEW", false, false),
        ("! --ctstate INVALID", true, true),
        ("! --ctstate RELATED,ESTABLISHED,DNAT", false, true),
        ("--ctstate new", true, true),
        ("--ctstate est,Rel,D", true, false),
    ];
    for (spec, dnatted, plain) in cases {
        let mut t = tables();
        t.restore(&format!("*filter\n-A FORWARD -m conntrack {spec} -j DROP\nCOMMIT\n"), true).unwrap();
        let saved = t.save();
        assert!(
            saved.contains(&format!("\n-A FORWARD -m conntrack {spec} -j DROP\n")),
            "{spec}: printed as written"
        );
        let v = t.evaluate(pkt("10.0.1.2:40000", "172.30.0.44:80"), Origin::Forwarded, &mut Env::new(&[0.1]));
        assert!(v.dnat);
        assert_eq!(v.disposition == Disposition::Drop, dnatted, "{spec}, DNATed");
        let v = t.evaluate(pkt("10.0.1.2:40000", "172.30.0.44:81"), Origin::Forwarded, &mut Env::new(&[]));
        assert!(!v.dnat);
        assert_eq!(v.disposition == Disposition::Drop, plain, "{spec}, not DNATed");
    }
    // In PREROUTING, before any DNAT, the DNAT state is not there yet.
    let mut t = tables();
    t.restore(
        "*nat\n-A PREROUTING -m conntrack --ctstate DNAT -j DNAT --to-destination 10.9.9.9:80\nCOMMIT\n",
        true,
    )
    .unwrap();
    let v = t.evaluate(pkt("10.0.1.2:40000", "172.30.0.44:81"), Origin::Forwarded, &mut Env::new(&[]));
    assert!(!v.dnat);
}

#[test]
fn a_bad_ctstate_is_refused_with_iptables_words() {
    let mut t = tables();
    let before = t.save();
    for (list, quoted) in [
        ("FOO", "FOO"),
        ("NEW,FOO,ESTABLISHED", "FOO,ESTABLISHED"),
        ("NEW,", ""),
        (",NEW", ",NEW"),
        ("NEWER", "NEWER"),
    ] {
        let err = t
            .restore(&format!("*filter\n:KUBE-FORWARD - [0:0]\n-A KUBE-FORWARD -m conntrack --ctstate {list} -j DROP\nCOMMIT\n"), true)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("iptables-restore: line 3 failed: Bad ctstate \"{quoted}\""),
            "{list}"
        );
    }
    let err = t.ensure("filter FORWARD -m conntrack --ctstate BOGUS -j KUBE-FORWARD").unwrap_err();
    assert_eq!(err.to_string(), "iptables-restore: line 1 failed: Bad ctstate \"BOGUS\"");
    assert_eq!(t.save(), before, "nothing changed");
}
