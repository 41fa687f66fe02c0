//! The node kernel's costs at kube-proxy scale: `iptables-restore` of a full ruleset and of a
//! one-Service partial sync, and the walk for a new connection, at 1,000, 10,000 and 30,000
//! Services with 4 endpoints each (rules in kube-proxy's exact iptables-mode shape).
//!
//! Two partial syncs are timed:
//! - `partial`: KUBE-SERVICES rewritten plus one Service's chains (the shape of earlier runs);
//! - `kp partial`: what kube-proxy's `render` writes for one changed Service: the filter table's
//!   and nat's static chains declared and rewritten, KUBE-SERVICES whole with the changed
//!   Service's chains interleaved, one endpoint replaced (a new `KUBE-SEP-` chain, the old one
//!   `-X`ed).
//!
//! Run: `cargo bench -p netlab-kernel --bench kernel`. For instruction counts, run the bench
//! binary under callgrind with smaller loops and collect only the two measured functions:
//! `KERNEL_BENCH_SIZES=10000 KERNEL_BENCH_ITERS=20000 KERNEL_BENCH_PARTIALS=10 valgrind
//! --tool=callgrind --toggle-collect='*kp_partial_restore*' target/release/deps/kernel-<hash>`
//! (and `'*new_conn*'`), then divide by the calls `callgrind_annotate` shows.

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
    format!("KUBE-SVC-{:016X}", u64::from(i) * 0x9E37_79B9).chars().take(25).collect()
}

/// Endpoint `e` of Service `i`; `generation` moves endpoint 0 (a replaced pod).
fn endpoint(i: u32, e: u32, generation: u32) -> (Ipv4Addr, String) {
    let ip = if e == 0 && generation > 0 {
        Ipv4Addr::from(0x0af8_0000 + (i * 64 + generation) % 0x0004_0000)
    } else {
        Ipv4Addr::from(0x0af4_0000 + i * 4 + e)
    };
    let sep = format!("KUBE-SEP-{:016X}", (u64::from(u32::from(ip)) << 8 | u64::from(e)) * 0x9E37_79B9)
        .chars()
        .take(25)
        .collect::<String>();
    (ip, sep)
}

/// The chains of Service `i` (4 endpoints), as kube-proxy writes them.
fn service_rules(i: u32, generation: u32, decl: &mut String, rules: &mut String) {
    let svc = svc_chain(i);
    let _ = writeln!(decl, ":{svc} - [0:0]");
    for e in 0..4u32 {
        let (ep, sep) = endpoint(i, e, generation);
        let _ = writeln!(decl, ":{sep} - [0:0]");
        let prob = match e {
            3 => String::new(),
            _ => format!(" -m statistic --mode random --probability {:.10}", 1.0 / f64::from(4 - e)),
        };
        let _ =
            writeln!(rules, "-A {svc} -m comment --comment \"ns/svc-{i}:http -> {ep}:8080\"{prob} -j {sep}");
        let _ = writeln!(rules, "-A {sep} -m comment --comment ns/svc-{i}:http -s {ep} -j KUBE-MARK-MASQ");
        let _ = writeln!(
            rules,
            "-A {sep} -m comment --comment ns/svc-{i}:http -m tcp -p tcp -j DNAT --to-destination {ep}:8080"
        );
    }
}

fn services_rule(i: u32) -> String {
    format!(
        "-A KUBE-SERVICES -m comment --comment \"ns/svc-{i}:http cluster IP\" -m tcp -p tcp -d {} --dport 80 -j {}\n",
        vip(i),
        svc_chain(i)
    )
}

const NODEPORTS_RULE: &str = "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n";

fn services_chain(n: u32) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&services_rule(i));
    }
    s.push_str(NODEPORTS_RULE);
    s
}

fn full(n: u32) -> String {
    let mut decl =
        String::from("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n");
    let mut rules = String::from("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n");
    for i in 0..n {
        service_rules(i, 0, &mut decl, &mut rules);
    }
    format!("{decl}{}{rules}COMMIT\n", services_chain(n))
}

/// A partial sync after one Service changed: KUBE-SERVICES plus that Service's chains.
fn partial(n: u32, changed: u32) -> String {
    let mut decl = String::from("*nat\n:KUBE-SERVICES - [0:0]\n");
    let mut rules = String::new();
    service_rules(changed, 0, &mut decl, &mut rules);
    format!("{decl}{}{rules}COMMIT\n", services_chain(n))
}

/// kube-proxy's partial sync after Service `changed` got generation `generation` (its endpoint 0
/// replaced): static chains of both tables, KUBE-SERVICES whole with the changed Service's
/// chains written where the Service comes, the old endpoint chain deleted.
fn kp_partial(n: u32, changed: u32, generation: u32) -> String {
    let mut text = String::from(
        "*filter\n:KUBE-SERVICES - [0:0]\n:KUBE-EXTERNAL-SERVICES - [0:0]\n:KUBE-FORWARD - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-PROXY-FIREWALL - [0:0]\nCOMMIT\n*nat\n",
    );
    let mut decl = String::from(
        ":KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-POSTROUTING - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n",
    );
    let mut rules = String::from(
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n",
    );
    rules.reserve(n as usize * 140);
    for i in 0..n {
        rules.push_str(&services_rule(i));
        if i == changed {
            service_rules(i, generation, &mut decl, &mut rules);
        }
    }
    let old = endpoint(changed, 0, generation - 1).1;
    let _ = writeln!(decl, ":{old} - [0:0]");
    let _ = writeln!(rules, "-X {old}");
    rules.push_str(NODEPORTS_RULE);
    text.push_str(&decl);
    text.push_str(&rules);
    text.push_str("COMMIT\n");
    text
}

#[inline(never)]
fn partial_restore(t: &mut Tables, text: &str) {
    t.restore(text, true).unwrap();
}

#[inline(never)]
fn kp_partial_restore(t: &mut Tables, text: &str) {
    t.restore(text, true).unwrap();
}

#[inline(never)]
fn new_conn(t: &Tables, env: &mut Env, i: u32) -> bool {
    let p = Packet {
        protocol: Protocol::Tcp,
        src: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 244, 9, 9)), 40000),
        dst: SocketAddr::new(IpAddr::V4(vip(i)), 80),
    };
    let v = t.evaluate(p, Origin::Forwarded, env);
    black_box(&v);
    v.dnat
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p) as usize]
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let sizes: Vec<u32> = std::env::var("KERNEL_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 30_000]);
    let iters: u32 = env_or("KERNEL_BENCH_ITERS", 1_000_000);
    let partial_runs: u32 = env_or("KERNEL_BENCH_PARTIALS", 50);
    println!(
        "{:>8} {:>8} {:>13} {:>12} {:>12} {:>14} {:>14} {:>10}",
        "services",
        "rules",
        "full restore",
        "partial p50",
        "partial p99",
        "kp partial p50",
        "kp partial p99",
        "new conn"
    );
    for n in sizes {
        let text = full(n);
        let mut t = Tables::new();
        t.ensure("nat PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES")
            .unwrap();
        let start = Instant::now();
        t.restore(&text, true).unwrap();
        let full_restore = start.elapsed();
        let rules = t.rule_count();
        let mut partials = Vec::new();
        for k in 0..partial_runs {
            let p = partial(n, (k * 7919) % n);
            let start = Instant::now();
            partial_restore(&mut t, &p);
            partials.push(start.elapsed());
        }
        let mut kp = Vec::new();
        let mut generations = HashMap::new();
        for k in 0..partial_runs {
            let changed = (k * 104_729 + 17) % n;
            let g = generations.entry(changed).or_insert(0u32);
            *g += 1;
            let p = kp_partial(n, changed, *g);
            let start = Instant::now();
            kp_partial_restore(&mut t, &p);
            kp.push(start.elapsed());
        }
        let mut env = Env(42, HashMap::new());
        let start = Instant::now();
        for k in 0..iters {
            let i = (k.wrapping_mul(2654435761)) % n;
            assert!(new_conn(&t, &mut env, i));
        }
        let per = start.elapsed() / iters.max(1);
        println!(
            "{n:>8} {rules:>8} {:>13.2?} {:>12.2?} {:>12.2?} {:>14.2?} {:>14.2?} {:>10.2?}",
            full_restore,
            pct(&mut partials, 0.5),
            pct(&mut partials, 0.99),
            pct(&mut kp, 0.5),
            pct(&mut kp, 0.99),
            per
        );
    }
}
