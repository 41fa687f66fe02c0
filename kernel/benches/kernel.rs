//! The node kernel's costs at kube-proxy scale: `iptables-restore` of a full ruleset and of a
//! one-Service partial sync, and the walk for a new connection, at 1,000, 10,000 and 30,000
//! Services with 4 endpoints each (rules in kube-proxy's exact iptables-mode shape).
//!
//! Run: `cargo bench -p netlab-kernel --bench kernel`.

use std::{
    collections::HashMap,
    fmt::Write as _,
    hint::black_box,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use netlab_kernel::{
    Protocol,
    iptables::{Origin, Packet, Tables, WalkEnv},
};

struct Env(u64, HashMap<(String, IpAddr), u64>);

impl WalkEnv for Env {
    fn random(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn now(&self) -> u64 {
        0
    }
    fn is_local(&self, _: IpAddr) -> bool {
        false
    }
    fn recent_check(&mut self, l: &str, s: IpAddr, _: Option<u64>) -> bool {
        self.1.contains_key(&(l.to_string(), s))
    }
    fn recent_set(&mut self, l: &str, s: IpAddr) {
        self.1.insert((l.to_string(), s), 0);
    }
}

fn vip(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a60_0000 + 10 + i)
}

fn svc_chain(i: u32) -> String {
    format!("KUBE-SVC-{:016X}", u64::from(i) * 0x9E37_79B9)
        .chars()
        .take(25)
        .collect()
}

/// The chains of Service `i` (4 endpoints), as kube-proxy writes them.
fn service_rules(i: u32, decl: &mut String, rules: &mut String) {
    let svc = svc_chain(i);
    let _ = writeln!(decl, ":{svc} - [0:0]");
    for e in 0..4u32 {
        let ep = Ipv4Addr::from(0x0af4_0000 + i * 4 + e);
        let sep = format!("KUBE-SEP-{:016X}", (u64::from(i) << 8 | u64::from(e)) * 0x9E37_79B9)
            .chars()
            .take(25)
            .collect::<String>();
        let _ = writeln!(decl, ":{sep} - [0:0]");
        let prob = match e {
            3 => String::new(),
            _ => format!(" -m statistic --mode random --probability {:.10}", 1.0 / f64::from(4 - e)),
        };
        let _ = writeln!(
            rules,
            "-A {svc} -m comment --comment \"ns/svc-{i}:http -> {ep}:8080\"{prob} -j {sep}"
        );
        let _ = writeln!(rules, "-A {sep} -m comment --comment ns/svc-{i}:http -s {ep} -j KUBE-MARK-MASQ");
        let _ = writeln!(
            rules,
            "-A {sep} -m comment --comment ns/svc-{i}:http -m tcp -p tcp -j DNAT --to-destination {ep}:8080"
        );
    }
}

fn services_chain(n: u32) -> String {
    let mut s = String::new();
    for i in 0..n {
        let _ = writeln!(
            s,
            "-A KUBE-SERVICES -m comment --comment \"ns/svc-{i}:http cluster IP\" -m tcp -p tcp -d {} --dport 80 -j {}",
            vip(i),
            svc_chain(i)
        );
    }
    s.push_str("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n");
    s
}

fn full(n: u32) -> String {
    let mut decl = String::from("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n");
    let mut rules = String::from("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n");
    for i in 0..n {
        service_rules(i, &mut decl, &mut rules);
    }
    format!("{decl}{}{rules}COMMIT\n", services_chain(n))
}

/// A partial sync after one Service changed: KUBE-SERVICES plus that Service's chains.
fn partial(n: u32, changed: u32) -> String {
    let mut decl = String::from("*nat\n:KUBE-SERVICES - [0:0]\n");
    let mut rules = String::new();
    service_rules(changed, &mut decl, &mut rules);
    format!("{decl}{}{rules}COMMIT\n", services_chain(n))
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p) as usize]
}

fn main() {
    println!("{:>8} {:>12} {:>14} {:>14} {:>14} {:>14}", "services", "rules", "full restore", "partial p50", "partial p99", "new conn");
    for n in [1_000u32, 10_000, 30_000] {
        let text = full(n);
        let mut t = Tables::new();
        t.ensure("nat PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES").unwrap();
        let start = Instant::now();
        t.restore(&text, true).unwrap();
        let full_restore = start.elapsed();
        let rules = t.rule_count();
        let mut partials = Vec::new();
        for k in 0..50 {
            let p = partial(n, (k * 7919) % n);
            let start = Instant::now();
            t.restore(&p, true).unwrap();
            partials.push(start.elapsed());
        }
        let mut env = Env(42, HashMap::new());
        let iters = 1_000_000u32;
        let start = Instant::now();
        for k in 0..iters {
            let i = (k.wrapping_mul(2654435761)) % n;
            let p = Packet {
                protocol: Protocol::Tcp,
                src: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 244, 9, 9)), 40000),
                dst: SocketAddr::new(IpAddr::V4(vip(i)), 80),
            };
            let v = t.evaluate(p, Origin::Forwarded, &mut env);
            assert!(v.dnat);
            black_box(v);
        }
        let per = start.elapsed() / iters;
        println!(
            "{n:>8} {rules:>12} {:>14?} {:>14?} {:>14?} {:>14?}",
            full_restore,
            pct(&mut partials, 0.5),
            pct(&mut partials, 0.99),
            per
        );
    }
}
