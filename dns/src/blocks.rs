//! The running configuration: the Corefile's server blocks compiled into what a query needs —
//! the kubernetes zone settings, a forwarder with its upstreams resolved, a fresh cache — and the
//! choice of block per query name (the most specific zone wins, as in CoreDNS). A reload builds
//! a new [`Blocks`] and swaps it in whole, so a query sees either the old or the new config.

use std::net::{IpAddr, SocketAddr};

use crate::{
    cache::Cache,
    corefile::{Corefile, ServerBlock},
    forward::Forwarder,
    metrics::{BlockId, Metrics},
    zone::{PodMode, ZoneConfig, is_subdomain},
};

/// One compiled server block.
pub struct Block {
    /// Zones, lowercase absolute, each with its metrics label id.
    pub zones: Vec<(String, BlockId)>,
    /// `errors`.
    pub errors: bool,
    /// `log`.
    pub log: bool,
    /// `loadbalance`.
    pub loadbalance: bool,
    /// `kubernetes`.
    pub kubernetes: Option<ZoneConfig>,
    /// `forward`.
    pub forward: Option<Forwarder>,
    /// `cache`.
    pub cache: Option<Cache>,
}

/// Every compiled block plus the Corefile they came from.
pub struct Blocks {
    /// Blocks in file order.
    pub blocks: Vec<Block>,
    /// The source.
    pub corefile: Corefile,
}

/// What compilation needs from the process.
#[derive(Debug, Clone)]
pub struct Settings {
    /// What `/etc/resolv.conf` means (`--upstream`); empty: the real file.
    pub resolv_override: Vec<SocketAddr>,
    /// Our addresses, for the NS records.
    pub local_ips: Vec<IpAddr>,
    /// The DNS port actually served (for the `server` metric label).
    pub port: u16,
}

// === impl Blocks ===

impl Blocks {
    /// Compiles `corefile`.
    pub fn compile(corefile: Corefile, settings: &Settings, metrics: &Metrics) -> Self {
        let blocks = corefile.servers.iter().map(|b| compile_block(b, settings, metrics)).collect();
        Self { blocks, corefile }
    }

    /// The block for `lower` and the metrics id of the zone that matched: the longest zone.
    pub fn select(&self, lower: &str) -> Option<(&Block, BlockId)> {
        let mut best: Option<(&Block, BlockId, usize)> = None;
        for b in &self.blocks {
            for (z, id) in &b.zones {
                if is_subdomain(lower, z) && best.is_none_or(|(_, _, len)| z.len() > len) {
                    best = Some((b, *id, z.len()));
                }
            }
        }
        best.map(|(b, id, _)| (b, id))
    }

    /// Whether any block asks for `pods verified` (only then are pods watched).
    pub fn wants_pods(&self) -> bool {
        self.blocks.iter().any(|b| b.kubernetes.as_ref().is_some_and(|k| k.pods == PodMode::Verified))
    }

    /// Whether any block has `health`, `ready`, `prometheus`.
    pub fn has(&self, plugin: &str) -> bool {
        self.corefile.servers.iter().any(|s| match plugin {
            "health" => s.plugins.health.is_some(),
            "ready" => s.plugins.ready.is_some(),
            "prometheus" => s.plugins.prometheus.is_some(),
            _ => false,
        })
    }

    /// `health { lameduck }`.
    pub fn lameduck(&self) -> Option<std::time::Duration> {
        self.corefile.servers.iter().filter_map(|s| s.plugins.health.as_ref()?.lameduck).max()
    }

    /// Cache entries per block zone, for `coredns_cache_entries`.
    pub fn render_gauges(&self, metrics: &Metrics) -> String {
        let mut out = String::from(
            "# HELP coredns_cache_entries The number of elements in the cache.\n# TYPE coredns_cache_entries gauge\n",
        );
        for b in &self.blocks {
            let (Some(cache), Some((_, id))) = (&b.cache, b.zones.first()) else { continue };
            let (server, zone) = metrics.block_labels(*id);
            let (s, d) = cache.entries();
            out.push_str(&format!("coredns_cache_entries{{server=\"{server}\",type=\"success\",view=\"\",zones=\"{zone}\"}} {s}\n"));
            out.push_str(&format!("coredns_cache_entries{{server=\"{server}\",type=\"denial\",view=\"\",zones=\"{zone}\"}} {d}\n"));
        }
        out
    }
}

fn compile_block(b: &ServerBlock, settings: &Settings, metrics: &Metrics) -> Block {
    let server = format!("dns://:{}", settings.port);
    let p = &b.plugins;
    Block {
        zones: b.zones.iter().map(|z| (z.clone(), metrics.block(&server, z))).collect(),
        errors: p.errors,
        log: p.log,
        loadbalance: p.loadbalance,
        kubernetes: p.kubernetes.as_ref().map(|k| ZoneConfig {
            zones: k.zones.clone(),
            pods: k.pods,
            ttl: k.ttl,
            fallthrough: k.fallthrough.clone(),
            namespaces: k.namespaces.clone(),
            endpoint_pod_names: k.endpoint_pod_names,
            ignore_empty_service: k.ignore_empty_service,
            local_ips: settings.local_ips.clone(),
        }),
        forward: p.forward.as_ref().map(|f| Forwarder::new(f, &settings.resolv_override)),
        cache: p.cache.clone().map(Cache::new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_block_wins() {
        let c =
            Corefile::parse(".:53 {\n forward . 192.0.2.1\n}\nconsul.local:53 {\n forward . 192.0.2.2\n}\n")
                .unwrap();
        let m = Metrics::new();
        let s = Settings { resolv_override: vec![], local_ips: vec![], port: 53 };
        let blocks = Blocks::compile(c, &s, &m);
        let up = |n: &str| blocks.select(n).unwrap().0.forward.as_ref().unwrap().upstreams()[0];
        assert_eq!(up("web.service.consul.local."), "192.0.2.2:53".parse().unwrap());
        assert_eq!(up("example.com."), "192.0.2.1:53".parse().unwrap());
        assert_eq!(
            m.block_labels(blocks.select("consul.local.").unwrap().1),
            ("dns://:53".into(), "consul.local.".into())
        );
    }

    #[test]
    fn no_block_for_names_outside_every_zone() {
        let c = Corefile::parse("consul.local:53 {\n forward . 192.0.2.2\n}\n").unwrap();
        let blocks = Blocks::compile(
            c,
            &Settings { resolv_override: vec![], local_ips: vec![], port: 53 },
            &Metrics::new(),
        );
        assert!(blocks.select("example.com.").is_none());
        assert!(is_subdomain("a.b.", "b."));
        assert!(!is_subdomain("ab.", "b."));
    }
}
