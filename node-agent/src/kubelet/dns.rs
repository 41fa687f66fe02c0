//! A pod's `/etc/resolv.conf`, as the kubelet forms it (`pkg/kubelet/network/dns/dns.go`):
//! pick a base by `dnsPolicy` (ClusterFirst: the cluster DNS and the cluster search path; Default:
//! the node's own resolv.conf; None: nothing), merge `dnsConfig` into it, then cut it to the
//! resolver's limits, raising the kubelet's `DNSConfigForming` warnings when something is cut.
//! Everything here is pure so that each rule is unit-tested; the kubelet writes the result and
//! records the events.

use k8s_openapi::api::core::v1::Pod;

/// The kubelet's options for cluster-DNS pods.
pub const DEFAULT_DNS_OPTIONS: &[&str] = &["ndots:5"];
/// Most nameservers a resolver reads (`validation.MaxDNSNameservers`).
pub const MAX_NAMESERVERS: usize = 3;
/// Most search domains (`validation.MaxDNSSearchPaths`, ExpandedDNSConfig, GA in v1.28).
pub const MAX_SEARCH_PATHS: usize = 32;
/// Longest search line in characters (`validation.MaxDNSSearchListChars`).
pub const MAX_SEARCH_LIST_CHARS: usize = 2048;
/// Longest single search domain (`DNS1123SubdomainMaxLength`); longer ones crash some resolvers.
pub const MAX_SEARCH_DOMAIN_LEN: usize = 253;
/// The event reason for cut nameserver or search lines.
pub const DNS_CONFIG_FORMING: &str = "DNSConfigForming";
/// The event reason when ClusterFirst is asked for and the kubelet has no cluster DNS.
pub const MISSING_CLUSTER_DNS: &str = "MissingClusterDNS";

/// Nameservers, search domains and options: one resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    /// `nameserver` lines.
    pub servers: Vec<String>,
    /// The `search` line.
    pub searches: Vec<String>,
    /// The `options` line.
    pub options: Vec<String>,
}

/// What the kubelet knows about cluster DNS (its `--cluster-dns` and `--cluster-domain`).
#[derive(Debug, Clone, Default)]
pub struct ClusterDns {
    /// Nameservers for ClusterFirst pods; empty when the kubelet has none.
    pub servers: Vec<String>,
    /// The cluster domain, e.g. `cluster.local`; empty for none.
    pub domain: String,
}

/// A warning the kubelet records on the pod while forming its DNS config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// `DNSConfigForming` or `MissingClusterDNS`.
    pub reason: &'static str,
    /// The kubelet's message.
    pub message: String,
}

/// The formed config and the warnings raised on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formed {
    /// What goes into the pod's resolv.conf.
    pub config: DnsConfig,
    /// Events for the pod, in order.
    pub warnings: Vec<Warning>,
}

/// Which base config a pod starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PodDnsType {
    Cluster,
    Host,
    None,
}

// === impl DnsConfig ===

impl DnsConfig {
    /// Parses a resolv.conf as the kubelet does: every `nameserver`, the last `search` line
    /// (without `.` and trailing dots), and every `options` entry (later ones replace earlier).
    pub fn parse(text: &str) -> Self {
        let mut out = DnsConfig::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                ["nameserver", server, ..] => out.servers.push(server.to_string()),
                ["search", rest @ ..] => {
                    out.searches = rest
                        .iter()
                        .filter(|s| **s != ".")
                        .map(|s| s.trim_end_matches('.').to_string())
                        .collect();
                }
                ["options", rest @ ..] => {
                    for o in rest {
                        let name = o.split(':').next().unwrap_or(o);
                        out.options.retain(|e| e.split(':').next() != Some(name));
                        out.options.push(o.to_string());
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The file as containerd writes it for a sandbox: `search`, then `nameserver` lines, then
    /// `options`, each only when non-empty.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if !self.searches.is_empty() {
            s.push_str(&format!("search {}\n", self.searches.join(" ")));
        }
        for server in &self.servers {
            s.push_str(&format!("nameserver {server}\n"));
        }
        if !self.options.is_empty() {
            s.push_str(&format!("options {}\n", self.options.join(" ")));
        }
        s
    }
}

/// Forms `pod`'s DNS config from its dnsPolicy and dnsConfig, the kubelet's cluster DNS and the
/// node's resolv.conf (`host`).
pub fn pod_dns(pod: &Pod, cluster: &ClusterDns, host: &DnsConfig) -> Formed {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let policy = spec.and_then(|s| s.dns_policy.as_deref()).unwrap_or("ClusterFirst");
    let dns_type = match policy {
        "None" => PodDnsType::None,
        "ClusterFirstWithHostNet" => PodDnsType::Cluster,
        "Default" => PodDnsType::Host,
        // ClusterFirst on a hostNetwork pod silently falls back to Default.
        "ClusterFirst" if host_network => PodDnsType::Host,
        // ClusterFirst; anything else was rejected by validation (upstream also defaults to
        // cluster DNS here).
        _ => PodDnsType::Cluster,
    };
    let mut warnings = Vec::new();
    let mut config = host.clone();
    match dns_type {
        PodDnsType::None => config = DnsConfig::default(),
        PodDnsType::Cluster if !cluster.servers.is_empty() => {
            config.servers = cluster.servers.clone();
            config.searches = cluster_searches(&host.searches, pod, &cluster.domain);
            config.options = DEFAULT_DNS_OPTIONS.iter().map(|s| s.to_string()).collect();
        }
        PodDnsType::Cluster => {
            warnings.push(Warning {
                reason: MISSING_CLUSTER_DNS,
                message: format!(
                    "pod: {:?}. kubelet does not have ClusterDNS IP configured and cannot create Pod using \"ClusterFirst\" policy. Falling back to \"Default\" policy.",
                    pod_ref(pod)
                ),
            });
        }
        PodDnsType::Host => {}
    }
    if let Some(extra) = spec.and_then(|s| s.dns_config.as_ref()) {
        merge(&mut config.servers, extra.nameservers.as_deref());
        merge(&mut config.searches, extra.searches.as_deref());
        for o in extra.options.iter().flatten() {
            let Some(name) = o.name.as_deref() else {
                continue;
            };
            let rendered = match o.value.as_deref() {
                Some(v) if !v.is_empty() => format!("{name}:{v}"),
                _ => name.to_string(),
            };
            match config.options.iter_mut().find(|e| e.split(':').next() == Some(name)) {
                Some(existing) => *existing = rendered,
                None => config.options.push(rendered),
            }
        }
    }
    let (searches, cut) = fit_search(std::mem::take(&mut config.searches));
    config.searches = searches;
    if cut {
        warnings.push(Warning {
            reason: DNS_CONFIG_FORMING,
            message: format!(
                "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: {}",
                config.searches.join(" ")
            ),
        });
    }
    if config.servers.len() > MAX_NAMESERVERS {
        config.servers.truncate(MAX_NAMESERVERS);
        warnings.push(Warning {
            reason: DNS_CONFIG_FORMING,
            message: format!(
                "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: {}",
                config.servers.join(" ")
            ),
        });
    }
    Formed { config, warnings }
}

/// `<ns>.svc.<domain> svc.<domain> <domain>` then the host's, without duplicates.
fn cluster_searches(host: &[String], pod: &Pod, domain: &str) -> Vec<String> {
    if domain.is_empty() {
        return host.to_vec();
    }
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut s = vec![format!("{ns}.svc.{domain}"), format!("svc.{domain}"), domain.to_string()];
    s.extend(host.iter().cloned());
    omit_duplicates(s)
}

/// The search list cut to the limits, and whether anything was cut (`formDNSSearchFitsLimits`).
fn fit_search(mut search: Vec<String>) -> (Vec<String>, bool) {
    let mut cut = false;
    if search.len() > MAX_SEARCH_PATHS {
        search.truncate(MAX_SEARCH_PATHS);
        cut = true;
    }
    let before = search.len();
    search.retain(|s| s.len() <= MAX_SEARCH_DOMAIN_LEN);
    cut |= search.len() != before;
    let line_len = search.join(" ").len();
    if line_len > MAX_SEARCH_LIST_CHARS {
        // Drop domains from the end until the line fits.
        let mut dropped = 0;
        while let Some(last) = search.pop() {
            dropped += last.len() + 1;
            if line_len - dropped <= MAX_SEARCH_LIST_CHARS {
                break;
            }
        }
        cut = true;
    }
    (search, cut)
}

/// Appends the pod's `dnsConfig` entries to `list`, keeping the first of duplicates.
fn merge(list: &mut Vec<String>, extra: Option<&[String]>) {
    list.extend(extra.into_iter().flatten().cloned());
    *list = omit_duplicates(std::mem::take(list));
}

fn omit_duplicates(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn pod_ref(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.uid.as_deref().unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PodDNSConfig, PodDNSConfigOption, PodSpec};

    use super::*;

    fn pod(policy: &str, host_network: bool, dns: Option<PodDNSConfig>) -> Pod {
        Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("web".into()),
                namespace: Some("shop".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                dns_policy: Some(policy.into()),
                host_network: Some(host_network),
                dns_config: dns,
                ..Default::default()
            }),
            status: None,
        }
    }

    fn cluster() -> ClusterDns {
        ClusterDns { servers: vec!["10.96.0.10".into()], domain: "cluster.local".into() }
    }

    fn host() -> DnsConfig {
        DnsConfig::parse(
            "# generated\nnameserver 192.168.1.1\nnameserver 192.168.1.2\nsearch corp.example. lan\noptions edns0 ndots:2\n",
        )
    }

    #[test]
    fn parses_host_resolv_conf() {
        let h = host();
        assert_eq!(h.servers, ["192.168.1.1", "192.168.1.2"]);
        assert_eq!(h.searches, ["corp.example", "lan"]);
        assert_eq!(h.options, ["edns0", "ndots:2"]);
    }

    #[test]
    fn cluster_first() {
        let f = pod_dns(&pod("ClusterFirst", false, None), &cluster(), &host());
        assert_eq!(f.config.servers, ["10.96.0.10"]);
        assert_eq!(
            f.config.searches,
            ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example", "lan"]
        );
        assert_eq!(f.config.options, ["ndots:5"]);
        assert!(f.warnings.is_empty());
        let no_host = pod_dns(&pod("ClusterFirst", false, None), &cluster(), &DnsConfig::default());
        assert_eq!(
            no_host.config.render(),
            "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
        );
    }

    #[test]
    fn default_is_the_node_resolv_conf() {
        let f = pod_dns(&pod("Default", false, None), &cluster(), &host());
        assert_eq!(f.config, host());
    }

    #[test]
    fn host_network_cluster_first_falls_back_to_default() {
        let f = pod_dns(&pod("ClusterFirst", true, None), &cluster(), &host());
        assert_eq!(f.config, host());
        assert!(f.warnings.is_empty());
    }

    #[test]
    fn cluster_first_with_host_net_uses_cluster_dns() {
        let f = pod_dns(&pod("ClusterFirstWithHostNet", true, None), &cluster(), &host());
        assert_eq!(f.config.servers, ["10.96.0.10"]);
        assert_eq!(f.config.searches[0], "shop.svc.cluster.local");
    }

    #[test]
    fn none_uses_only_dns_config() {
        let dns = PodDNSConfig {
            nameservers: Some(vec!["1.1.1.1".into()]),
            searches: Some(vec!["my.dns.search.suffix".into()]),
            options: Some(vec![
                PodDNSConfigOption { name: Some("ndots".into()), value: Some("2".into()) },
                PodDNSConfigOption { name: Some("edns0".into()), value: None },
            ]),
        };
        let f = pod_dns(&pod("None", false, Some(dns)), &cluster(), &host());
        assert_eq!(f.config.servers, ["1.1.1.1"]);
        assert_eq!(f.config.searches, ["my.dns.search.suffix"]);
        assert_eq!(f.config.options, ["ndots:2", "edns0"]);
    }

    #[test]
    fn dns_config_merges_into_cluster_first_and_pod_options_win() {
        let dns = PodDNSConfig {
            nameservers: Some(vec!["10.96.0.10".into(), "8.8.8.8".into()]),
            searches: Some(vec!["svc.cluster.local".into(), "extra.example".into()]),
            options: Some(vec![PodDNSConfigOption { name: Some("ndots".into()), value: Some("1".into()) }]),
        };
        let f = pod_dns(&pod("ClusterFirst", false, Some(dns)), &cluster(), &DnsConfig::default());
        assert_eq!(f.config.servers, ["10.96.0.10", "8.8.8.8"]);
        assert_eq!(
            f.config.searches,
            ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "extra.example"]
        );
        assert_eq!(f.config.options, ["ndots:1"]);
    }

    #[test]
    fn missing_cluster_dns_falls_back_to_default_with_event() {
        let f = pod_dns(&pod("ClusterFirst", false, None), &ClusterDns::default(), &host());
        assert_eq!(f.config, host());
        assert_eq!(f.warnings.len(), 1);
        assert_eq!(f.warnings[0].reason, MISSING_CLUSTER_DNS);
        assert!(f.warnings[0].message.ends_with(
            "kubelet does not have ClusterDNS IP configured and cannot create Pod using \"ClusterFirst\" policy. Falling back to \"Default\" policy."
        ));
    }

    #[test]
    fn nameserver_limit() {
        let dns = PodDNSConfig {
            nameservers: Some(vec!["1.1.1.1".into(), "8.8.8.8".into(), "9.9.9.9".into()]),
            ..Default::default()
        };
        let f = pod_dns(&pod("ClusterFirst", false, Some(dns)), &cluster(), &DnsConfig::default());
        assert_eq!(f.config.servers, ["10.96.0.10", "1.1.1.1", "8.8.8.8"]);
        assert_eq!(
            f.warnings,
            [Warning {
                reason: DNS_CONFIG_FORMING,
                message: "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 10.96.0.10 1.1.1.1 8.8.8.8".into()
            }]
        );
    }

    #[test]
    fn search_path_count_limit() {
        let searches: Vec<String> = (0..40).map(|i| format!("d{i}.example")).collect();
        let dns = PodDNSConfig { searches: Some(searches), ..Default::default() };
        let f = pod_dns(&pod("ClusterFirst", false, Some(dns)), &cluster(), &DnsConfig::default());
        assert_eq!(f.config.searches.len(), 32);
        assert_eq!(f.config.searches[31], "d28.example");
        assert_eq!(f.warnings.len(), 1);
        assert_eq!(
            f.warnings[0].message,
            format!(
                "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: {}",
                f.config.searches.join(" ")
            )
        );
    }

    #[test]
    fn search_line_char_limit_and_long_domains() {
        // 20 domains of 120 chars: 2419 chars, over 2048; one of 254 chars is dropped outright.
        let mut searches: Vec<String> = (0..20).map(|i| format!("{i:02}{}", "a".repeat(118))).collect();
        searches.insert(0, "b".repeat(254));
        let dns = PodDNSConfig { searches: Some(searches), ..Default::default() };
        let f = pod_dns(&pod("None", false, Some(dns)), &cluster(), &DnsConfig::default());
        assert!(f.config.searches.iter().all(|s| s.len() == 120));
        assert!(f.config.searches.join(" ").len() <= MAX_SEARCH_LIST_CHARS);
        assert_eq!(f.config.searches.len(), 16, "17*121-1 = 2056 > 2048, 16*121-1 = 1935");
        assert_eq!(f.warnings.len(), 1);
        assert_eq!(f.warnings[0].reason, DNS_CONFIG_FORMING);
    }

    #[test]
    fn within_limits_no_warning() {
        let searches: Vec<String> = (0..29).map(|i| format!("d{i}.example")).collect();
        let dns = PodDNSConfig { searches: Some(searches), ..Default::default() };
        let f = pod_dns(&pod("ClusterFirst", false, Some(dns)), &cluster(), &DnsConfig::default());
        assert_eq!(f.config.searches.len(), 32);
        assert!(f.warnings.is_empty());
    }
}
