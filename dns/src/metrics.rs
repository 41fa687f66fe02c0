//! Prometheus metrics under CoreDNS's names and labels (`coredns_dns_requests_total{server,zone,
//! view,proto,family,type}`, `coredns_dns_responses_total{...,rcode,plugin}`, the request
//! duration histogram with CoreDNS's buckets, `coredns_cache_*`, `coredns_forward_*`), so
//! dashboards and alerts written for CoreDNS read the lab's server unchanged.
//!
//! The hot path touches only atomics behind a read lock, with small `Copy` keys; label strings
//! are produced when `/metrics` is scraped.

use std::{
    collections::HashMap,
    fmt::Write as _,
    hash::Hash,
    net::SocketAddr,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// CoreDNS's `plugin.TimeBuckets`: ExponentialBuckets(0.00025, 2, 16).
const TIME_BUCKETS: [f64; 16] = [
    0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048,
    4.096, 8.192,
];

/// The plugin that wrote a response (the `plugin` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Plugin {
    /// The kubernetes plugin.
    Kubernetes,
    /// The forward plugin.
    Forward,
    /// The cache plugin.
    Cache,
    /// Chaos Mesh's `k8s_dns_chaos` plugin (DNSChaos).
    Chaos,
    /// None (the server itself: no matching block, no next plugin).
    None,
}

impl Plugin {
    /// The plugin's name in a Corefile (and in CoreDNS's `plugin` metric label).
    pub fn label(self) -> &'static str {
        match self {
            Plugin::Kubernetes => "kubernetes",
            Plugin::Forward => "forward",
            Plugin::Cache => "cache",
            Plugin::Chaos => "k8s_dns_chaos",
            Plugin::None => "",
        }
    }
}

struct Family<K> {
    map: RwLock<HashMap<K, Arc<AtomicU64>>>,
}

impl<K: Hash + Eq + Clone> Family<K> {
    fn new() -> Self {
        Self { map: RwLock::new(HashMap::new()) }
    }

    fn add(&self, key: K, n: u64) {
        if let Some(c) = self.map.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
            c.fetch_add(n, Ordering::Relaxed);
            return;
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.entry(key).or_default().fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Vec<(K, u64)> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
            .collect()
    }
}

#[derive(Default)]
struct Hist {
    buckets: [AtomicU64; 16],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

struct HistFamily<K> {
    map: RwLock<HashMap<K, Arc<Hist>>>,
}

impl<K: Hash + Eq + Clone> HistFamily<K> {
    fn new() -> Self {
        Self { map: RwLock::new(HashMap::new()) }
    }

    fn observe(&self, key: K, d: Duration) {
        // The read guard must be gone before the write lock is taken.
        let found = self.map.read().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
        let hist = match found {
            Some(h) => h,
            None => self.map.write().unwrap_or_else(|e| e.into_inner()).entry(key).or_default().clone(),
        };
        let secs = d.as_secs_f64();
        if let Some(i) = TIME_BUCKETS.iter().position(|b| secs <= *b) {
            hist.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        hist.count.fetch_add(1, Ordering::Relaxed);
        hist.sum_nanos.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: impl Fn(&K) -> String) {
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (k, h) in self.map.read().unwrap_or_else(|e| e.into_inner()).iter() {
            let l = labels(k);
            let sep = if l.is_empty() { "" } else { "," };
            let mut cumulative = 0;
            for (i, b) in TIME_BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"{b}\"}} {cumulative}");
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"+Inf\"}} {count}");
            let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "{name}_sum{{{l}}} {sum}");
            let _ = writeln!(out, "{name}_count{{{l}}} {count}");
        }
    }
}

/// A server block's label pair (`server="dns://:53"`, `zone="."`), interned to a small id.
pub type BlockId = u16;

/// Every metric the server exports.
pub struct Metrics {
    blocks: RwLock<Vec<(String, String)>>,
    /// (block, tcp, ipv6, qtype)
    requests: Family<(BlockId, bool, bool, u16)>,
    /// (block, rcode, plugin)
    responses: Family<(BlockId, u16, Plugin)>,
    /// (block, qtype)
    durations: HistFamily<(BlockId, u16)>,
    /// (block, success?)
    cache_hits: Family<(BlockId, bool)>,
    cache_misses: Family<BlockId>,
    forward_requests: Family<SocketAddr>,
    forward_responses: Family<(SocketAddr, u8)>,
    forward_durations: HistFamily<(SocketAddr, u8)>,
    forward_rejects: AtomicU64,
    healthcheck_failures: Family<SocketAddr>,
    healthcheck_broken: AtomicU64,
    reload_failed: AtomicU64,
    packet_cache_hits: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

// === impl Metrics ===

impl Metrics {
    /// No samples yet.
    pub fn new() -> Self {
        Self {
            blocks: RwLock::new(Vec::new()),
            requests: Family::new(),
            responses: Family::new(),
            durations: HistFamily::new(),
            cache_hits: Family::new(),
            cache_misses: Family::new(),
            forward_requests: Family::new(),
            forward_responses: Family::new(),
            forward_durations: HistFamily::new(),
            forward_rejects: AtomicU64::new(0),
            healthcheck_failures: Family::new(),
            healthcheck_broken: AtomicU64::new(0),
            reload_failed: AtomicU64::new(0),
            packet_cache_hits: AtomicU64::new(0),
        }
    }

    /// The id of a block's (server, zone) labels, interning them the first time.
    pub fn block(&self, server: &str, zone: &str) -> BlockId {
        let mut blocks = self.blocks.write().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = blocks.iter().position(|(s, z)| s == server && z == zone) {
            return i as BlockId;
        }
        blocks.push((server.into(), zone.into()));
        (blocks.len() - 1) as BlockId
    }

    /// A query arrived.
    pub fn request(&self, block: BlockId, tcp: bool, ipv6: bool, qtype: u16) {
        self.requests.add((block, tcp, ipv6, qtype), 1);
    }

    /// A response was written, `took` after the query arrived.
    pub fn response(&self, block: BlockId, qtype: u16, rcode: u16, plugin: Plugin, took: Duration) {
        self.responses.add((block, rcode, plugin), 1);
        self.durations.observe((block, qtype), took);
    }

    /// A cache hit.
    pub fn cache_hit(&self, block: BlockId, success: bool) {
        self.cache_hits.add((block, success), 1);
    }

    /// A cache miss.
    pub fn cache_miss(&self, block: BlockId) {
        self.cache_misses.add(block, 1);
    }

    /// A query went upstream.
    pub fn forward_request(&self, to: SocketAddr) {
        self.forward_requests.add(to, 1);
    }

    /// An upstream answered.
    pub fn forward_response(&self, to: SocketAddr, rcode: u8, took: Duration) {
        self.forward_responses.add((to, rcode), 1);
        self.forward_durations.observe((to, rcode), took);
    }

    /// `max_concurrent` refused a query.
    pub fn forward_reject(&self) {
        self.forward_rejects.fetch_add(1, Ordering::Relaxed);
    }

    /// A health probe of `to` failed.
    pub fn healthcheck_failure(&self, to: SocketAddr) {
        self.healthcheck_failures.add(to, 1);
    }

    /// Every upstream was down, so one was picked at random anyway.
    pub fn healthcheck_broken(&self) {
        self.healthcheck_broken.fetch_add(1, Ordering::Relaxed);
    }

    /// A UDP query was answered from the packet cache (netlab's own metric: CoreDNS has none).
    pub fn packet_cache_hit(&self) {
        self.packet_cache_hits.fetch_add(1, Ordering::Relaxed);
    }

    /// A Corefile change could not be loaded.
    pub fn reload_failed(&self) {
        self.reload_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let blocks = self.blocks.read().unwrap_or_else(|e| e.into_inner()).clone();
        let b = |id: BlockId| {
            let (s, z) = blocks.get(id as usize).cloned().unwrap_or_default();
            format!("server=\"{s}\",view=\"\",zone=\"{z}\"")
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP coredns_build_info A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built."
        );
        let _ = writeln!(out, "# TYPE coredns_build_info gauge");
        let _ = writeln!(
            out,
            "coredns_build_info{{goversion=\"rust\",revision=\"netlab\",version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );

        let _ = writeln!(
            out,
            "# HELP coredns_dns_requests_total Counter of DNS requests made per zone, protocol and family."
        );
        let _ = writeln!(out, "# TYPE coredns_dns_requests_total counter");
        for ((blk, tcp, v6, t), n) in self.requests.snapshot() {
            let proto = if tcp { "tcp" } else { "udp" };
            let family = if v6 { 2 } else { 1 };
            let _ = writeln!(
                out,
                "coredns_dns_requests_total{{family=\"{family}\",proto=\"{proto}\",{},type=\"{}\"}} {n}",
                b(blk),
                qtype_label(t)
            );
        }
        let _ = writeln!(out, "# HELP coredns_dns_responses_total Counter of response status codes.");
        let _ = writeln!(out, "# TYPE coredns_dns_responses_total counter");
        for ((blk, rcode, plugin), n) in self.responses.snapshot() {
            let _ = writeln!(
                out,
                "coredns_dns_responses_total{{plugin=\"{}\",rcode=\"{}\",{}}} {n}",
                plugin.label(),
                rcode_label(rcode),
                b(blk)
            );
        }
        let _ = writeln!(
            out,
            "# HELP coredns_dns_request_duration_seconds Histogram of the time (in seconds) each request took per zone."
        );
        self.durations.render(&mut out, "coredns_dns_request_duration_seconds", |(blk, t)| {
            format!("{},type=\"{}\"", b(*blk), qtype_label(*t))
        });

        let _ = writeln!(out, "# HELP coredns_cache_hits_total The count of cache hits.");
        let _ = writeln!(out, "# TYPE coredns_cache_hits_total counter");
        for ((blk, success), n) in self.cache_hits.snapshot() {
            let kind = if success { "success" } else { "denial" };
            let (s, z) = blocks.get(blk as usize).cloned().unwrap_or_default();
            let _ = writeln!(
                out,
                "coredns_cache_hits_total{{server=\"{s}\",type=\"{kind}\",view=\"\",zones=\"{z}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP coredns_cache_misses_total The count of cache misses. Deprecated, derive misses from cache hits/requests counters."
        );
        let _ = writeln!(out, "# TYPE coredns_cache_misses_total counter");
        for (blk, n) in self.cache_misses.snapshot() {
            let (s, z) = blocks.get(blk as usize).cloned().unwrap_or_default();
            let _ = writeln!(out, "coredns_cache_misses_total{{server=\"{s}\",view=\"\",zones=\"{z}\"}} {n}");
        }

        let _ = writeln!(out, "# HELP coredns_forward_requests_total Counter of requests made per upstream.");
        let _ = writeln!(out, "# TYPE coredns_forward_requests_total counter");
        for (to, n) in self.forward_requests.snapshot() {
            let _ = writeln!(out, "coredns_forward_requests_total{{to=\"{to}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP coredns_forward_responses_total Counter of responses received per upstream."
        );
        let _ = writeln!(out, "# TYPE coredns_forward_responses_total counter");
        for ((to, rcode), n) in self.forward_responses.snapshot() {
            let _ = writeln!(
                out,
                "coredns_forward_responses_total{{rcode=\"{}\",to=\"{to}\"}} {n}",
                rcode_label(rcode.into())
            );
        }
        let _ = writeln!(
            out,
            "# HELP coredns_proxy_request_duration_seconds Histogram of the time each request took."
        );
        self.forward_durations.render(&mut out, "coredns_proxy_request_duration_seconds", |(to, rcode)| {
            format!("proxy_name=\"forward\",rcode=\"{}\",to=\"{to}\"", rcode_label((*rcode).into()))
        });
        let _ = writeln!(
            out,
            "# HELP coredns_proxy_healthcheck_failures_total Counter of the number of failed healthchecks."
        );
        let _ = writeln!(out, "# TYPE coredns_proxy_healthcheck_failures_total counter");
        for (to, n) in self.healthcheck_failures.snapshot() {
            let _ = writeln!(
                out,
                "coredns_proxy_healthcheck_failures_total{{proxy_name=\"forward\",to=\"{to}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP coredns_forward_healthcheck_broken_total Counter of the number of complete failures of the healthchecks."
        );
        let _ = writeln!(out, "# TYPE coredns_forward_healthcheck_broken_total counter");
        let _ = writeln!(
            out,
            "coredns_forward_healthcheck_broken_total {}",
            self.healthcheck_broken.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP coredns_forward_max_concurrent_rejects_total Counter of the number of queries rejected because the concurrent queries were at maximum."
        );
        let _ = writeln!(out, "# TYPE coredns_forward_max_concurrent_rejects_total counter");
        let _ = writeln!(
            out,
            "coredns_forward_max_concurrent_rejects_total {}",
            self.forward_rejects.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP coredns_reload_failed_total Counter of the number of failed reload attempts."
        );
        let _ = writeln!(out, "# TYPE coredns_reload_failed_total counter");
        let _ = writeln!(out, "coredns_reload_failed_total {}", self.reload_failed.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "# HELP netlab_dns_packet_cache_hits_total UDP queries answered with the bytes of an earlier identical query's reply (netlab only; see dns/src/server/udp.rs)."
        );
        let _ = writeln!(out, "# TYPE netlab_dns_packet_cache_hits_total counter");
        let _ = writeln!(
            out,
            "netlab_dns_packet_cache_hits_total {}",
            self.packet_cache_hits.load(Ordering::Relaxed)
        );
        out
    }

    /// The (server, zone) labels of a block id.
    pub fn block_labels(&self, id: BlockId) -> (String, String) {
        self.blocks.read().unwrap_or_else(|e| e.into_inner()).get(id as usize).cloned().unwrap_or_default()
    }
}

/// CoreDNS's `type` label: the common types by name, everything else `other`.
pub fn qtype_label(t: u16) -> &'static str {
    match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        43 => "DS",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        251 => "IXFR",
        252 => "AXFR",
        255 => "ANY",
        _ => "other",
    }
}

/// miekg/dns's rcode names.
pub fn rcode_label(rcode: u16) -> &'static str {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_coredns_names_and_labels() {
        let m = Metrics::new();
        let blk = m.block("dns://:53", ".");
        assert_eq!(m.block("dns://:53", "."), blk);
        m.request(blk, false, false, 1);
        m.request(blk, false, false, 1);
        m.response(blk, 1, 3, Plugin::Kubernetes, Duration::from_micros(300));
        m.cache_hit(blk, true);
        m.cache_miss(blk);
        let text = m.render();
        assert!(text.contains(
            "coredns_dns_requests_total{family=\"1\",proto=\"udp\",server=\"dns://:53\",view=\"\",zone=\".\",type=\"A\"} 2"
        ));
        assert!(text.contains("coredns_dns_responses_total{plugin=\"kubernetes\",rcode=\"NXDOMAIN\",server=\"dns://:53\",view=\"\",zone=\".\"} 1"));
        assert!(text.contains("coredns_dns_request_duration_seconds_bucket{server=\"dns://:53\",view=\"\",zone=\".\",type=\"A\",le=\"0.00025\"} 0"));
        assert!(text.contains("coredns_dns_request_duration_seconds_bucket{server=\"dns://:53\",view=\"\",zone=\".\",type=\"A\",le=\"0.0005\"} 1"));
        assert!(text.contains(
            "coredns_cache_hits_total{server=\"dns://:53\",type=\"success\",view=\"\",zones=\".\"} 1"
        ));
        assert!(text.contains("coredns_cache_misses_total{server=\"dns://:53\",view=\"\",zones=\".\"} 1"));
    }
}
