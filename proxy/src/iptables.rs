//! The `iptables-restore` input kube-proxy's iptables mode writes (upstream
//! `pkg/proxy/iptables/proxier.go` `syncProxyRules`), line for line: the same chains, hash
//! names, comments, rule order and `%0.10f` probabilities, so that what `iptables-save` shows on
//! a netlab node reads like a real node's.
//!
//! A full sync writes every chain. A partial sync (upstream since v1.28) rewrites the top-level
//! chains, whose rules name every Service, but only the changed Services' own chains; chains no
//! longer used are flushed and deleted (`:CHAIN` then `-X CHAIN`). [`Iptables`] remembers which
//! service chains the kernel holds after each successful restore, which upstream learns from
//! `iptables-save` instead.
//!
//! What a sync costs the proxy: the text of a partial sync still names every Service (the whole
//! of `KUBE-SERVICES` is rewritten, as upstream does), but its computation need not visit them.
//! [`Iptables`] keeps, per Service port, the port it last wrote, that port's lines in the
//! top-level chains and the names of its own chains. A partial sync formats only the changed
//! ports' lines and copies the others' from that memory; stale chains are found by comparing a
//! changed port's chains before and after (chain names are hashes of the port's name, so no two
//! ports share one), not by comparing every chain name in the kernel. At 10,000 Services that
//! turns a sync from formatting 10,000 ports and hashing 50,000 chain names into copying some
//! 1.5 MB of text. The chain names themselves are hashed once per change of a port, into the
//! [`ServicePortInfo`] this mode keeps in its snapshot in place of the generic port (the model
//! and ipvs mode never hash them).
//!
//! `KUBE-FORWARD` gets upstream's three rules, after every Service's filter lines as upstream
//! writes them, on every sync (its `:KUBE-FORWARD` line flushes the chain each time): drop
//! packets conntrack calls INVALID, accept packets carrying the masquerade mark (so forwarded
//! Service traffic passes a FORWARD policy of DROP), accept RELATED,ESTABLISHED ones. The text
//! is v1.29's. Upstream writes the INVALID rule only while the node's
//! `net.netfilter.nf_conntrack_tcp_be_liberal` is 0 (read once at startup, PR #120412, v1.29),
//! which netlab's nodes leave at the kernel default (`DROP_INVALID`). From v1.30 (PR #122812)
//! the rule also counts its drops with `-m nfacct --nfacct-name ct_state_invalid_dropped_pkts`,
//! but only if kube-proxy could create that nfacct counter at startup; netlab's nodes offer no
//! nfacct, so a v1.30 or v1.31 kube-proxy writes v1.29's line on them too.
//!
//! Left out, because netlab's kernel model has no use for them: kubelet's `KUBE-FIREWALL` (and
//! the copy of its rule kube-proxy writes while localhost NodePorts are on),
//! loadBalancerSourceRanges (`KUBE-FW-` chains), healthCheckNodePort rules and topology-aware
//! routing.

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    fmt::Write as _,
    ops::Deref,
    sync::Arc,
};

use ipnet::Ipv4Net;
use netlab_kernel::Protocol;
use sha2::{Digest as _, Sha256};

use crate::model::{Endpoint, PortInfo, ServicePort, ServicePortName, Snapshot, TrafficPolicy};

/// The masquerade mark: bit 14, kube-proxy's default `--iptables-masquerade-bit`.
pub const MASQ_MARK: &str = "0x4000";
/// Above this many endpoints in total, per-endpoint comments are dropped ("large cluster mode").
pub const LARGE_CLUSTER_ENDPOINTS: usize = 1000;
/// Whether the `KUBE-EXT-` chain of a Service with `externalTrafficPolicy: Local` gets upstream's
/// two rules for host-originated traffic (`-m addrtype --src-type LOCAL`: masquerade it, and send
/// it to the Cluster chain). On, as upstream; the switch stays so a kernel model without the
/// match could be driven.
const WRITE_SRC_TYPE_LOCAL: bool = true;
/// Whether `KUBE-FORWARD` drops packets conntrack calls INVALID: upstream does unless the node's
/// `nf_conntrack_tcp_be_liberal` sysctl is set, and netlab's nodes leave it at 0.
const DROP_INVALID: bool = true;

const KUBE_SERVICES: &str = "KUBE-SERVICES";
const KUBE_EXTERNAL_SERVICES: &str = "KUBE-EXTERNAL-SERVICES";
const KUBE_NODEPORTS: &str = "KUBE-NODEPORTS";
const KUBE_POSTROUTING: &str = "KUBE-POSTROUTING";
const KUBE_MARK_MASQ: &str = "KUBE-MARK-MASQ";
const KUBE_FORWARD: &str = "KUBE-FORWARD";
const KUBE_PROXY_FIREWALL: &str = "KUBE-PROXY-FIREWALL";

const SVC_PREFIX: &str = "KUBE-SVC-";
const SVL_PREFIX: &str = "KUBE-SVL-";
const EXT_PREFIX: &str = "KUBE-EXT-";
const FW_PREFIX: &str = "KUBE-FW-";
const SEP_PREFIX: &str = "KUBE-SEP-";

/// The jumps from the built-in chains into kube-proxy's (upstream `iptablesJumpChains`, in its
/// order): (table, built-in chain, kube-proxy chain, comment, extra matches).
const JUMPS: [(&str, &str, &str, &str, &str); 12] = [
    (
        "filter",
        "INPUT",
        KUBE_EXTERNAL_SERVICES,
        "kubernetes externally-visible service portals",
        "-m conntrack --ctstate NEW",
    ),
    (
        "filter",
        "FORWARD",
        KUBE_EXTERNAL_SERVICES,
        "kubernetes externally-visible service portals",
        "-m conntrack --ctstate NEW",
    ),
    ("filter", "INPUT", KUBE_NODEPORTS, "kubernetes health check service ports", ""),
    ("filter", "FORWARD", KUBE_SERVICES, "kubernetes service portals", "-m conntrack --ctstate NEW"),
    ("filter", "OUTPUT", KUBE_SERVICES, "kubernetes service portals", "-m conntrack --ctstate NEW"),
    ("filter", "FORWARD", KUBE_FORWARD, "kubernetes forwarding rules", ""),
    (
        "filter",
        "INPUT",
        KUBE_PROXY_FIREWALL,
        "kubernetes load balancer firewall",
        "-m conntrack --ctstate NEW",
    ),
    (
        "filter",
        "OUTPUT",
        KUBE_PROXY_FIREWALL,
        "kubernetes load balancer firewall",
        "-m conntrack --ctstate NEW",
    ),
    (
        "filter",
        "FORWARD",
        KUBE_PROXY_FIREWALL,
        "kubernetes load balancer firewall",
        "-m conntrack --ctstate NEW",
    ),
    ("nat", "OUTPUT", KUBE_SERVICES, "kubernetes service portals", ""),
    ("nat", "PREROUTING", KUBE_SERVICES, "kubernetes service portals", ""),
    ("nat", "POSTROUTING", KUBE_POSTROUTING, "kubernetes postrouting rules", ""),
];

/// First 16 characters of base32(sha256(parts concatenated)) (upstream `portProtoHash`).
fn hash16(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    let mut s = data_encoding::BASE32.encode(&h.finalize());
    s.truncate(16);
    s
}

/// The chains one Service port may own in the nat table, named once per change of the port
/// (shared: every sync names them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceChains {
    /// `KUBE-SVC-`: endpoints for Cluster policy.
    pub svc: Arc<str>,
    /// `KUBE-SVL-`: endpoints for Local policy.
    pub svl: Arc<str>,
    /// `KUBE-EXT-`: traffic to external destinations (NodePort, externalIPs, LB IPs).
    pub ext: Arc<str>,
    /// `KUBE-FW-`: loadBalancerSourceRanges (named for completeness; netlab writes none).
    pub fw: Arc<str>,
}

/// One Service port as iptables mode keeps it: the generic port and its hash-named chains,
/// hashed once when the port changes rather than at every sync (upstream's `servicePortInfo`,
/// which embeds `BaseServicePortInfo` and adds the chain names, and its `endpointInfo`).
#[derive(Debug)]
pub struct ServicePortInfo {
    base: ServicePort,
    /// The port's own chains.
    pub chains: ServiceChains,
    /// The `KUBE-SEP-` chain of each of `base.endpoints`, in their order.
    endpoint_chains: Vec<Arc<str>>,
}

// === impl ServicePortInfo ===

impl ServicePortInfo {
    /// The `KUBE-SEP-` chain of `ep`, one of this port's endpoints.
    pub fn endpoint_chain(&self, ep: &Endpoint) -> &Arc<str> {
        // `endpoints` is sorted by `addr` (see `model::service_ports`) and `ep` is one of them
        // (every caller takes it from `select()`), so the search finds it.
        let i = self
            .base
            .endpoints
            .binary_search_by(|e| e.addr.as_str().cmp(&ep.addr))
            .expect("an endpoint of this port");
        &self.endpoint_chains[i]
    }
}

impl PortInfo for ServicePortInfo {
    fn new(base: ServicePort) -> Self {
        let name = base.name_string.as_str();
        let protocol = base.name.protocol;
        let endpoint_chains =
            base.endpoints.iter().map(|e| endpoint_chain(name, protocol.lower(), &e.addr)).collect();
        Self { chains: service_chains(name, protocol), endpoint_chains, base }
    }

    fn base(&self) -> &ServicePort {
        &self.base
    }
}

/// The chain names are a function of the port: two ports are equal when their generic parts are.
impl PartialEq for ServicePortInfo {
    fn eq(&self, other: &Self) -> bool {
        self.base == other.base
    }
}

impl Eq for ServicePortInfo {}

impl Deref for ServicePortInfo {
    type Target = ServicePort;

    fn deref(&self) -> &ServicePort {
        &self.base
    }
}

/// The `KUBE-SVC-`, `KUBE-SVL-`, `KUBE-EXT-` and `KUBE-FW-` chains of the port printed as
/// `name` (`ns/svc:port`) over `protocol`.
pub fn service_chains(name: &str, protocol: Protocol) -> ServiceChains {
    let hash = hash16(&[name, protocol.lower()]);
    ServiceChains {
        svc: format!("{SVC_PREFIX}{hash}").into(),
        svl: format!("{SVL_PREFIX}{hash}").into(),
        ext: format!("{EXT_PREFIX}{hash}").into(),
        fw: format!("{FW_PREFIX}{hash}").into(),
    }
}

/// The `KUBE-SEP-` chain of endpoint `addr` (`ip:port`) of the port printed as `name` over
/// `protocol` (lower-case).
pub fn endpoint_chain(name: &str, protocol: &str, addr: &str) -> Arc<str> {
    format!("{SEP_PREFIX}{}", hash16(&[name, protocol, addr])).into()
}

/// Whether `chain` is a per-Service or per-endpoint chain (ours to delete when unused).
pub fn is_service_chain(chain: &str) -> bool {
    [SVC_PREFIX, SVL_PREFIX, EXT_PREFIX, FW_PREFIX, SEP_PREFIX].iter().any(|p| chain.starts_with(p))
}

/// The service chains declared in the nat table of `iptables-save` output.
pub fn service_chains_in_save(text: &str) -> HashSet<String> {
    let mut nat = false;
    let mut out = HashSet::new();
    for line in text.lines() {
        if let Some(table) = line.strip_prefix('*') {
            nat = table == "nat";
        } else if nat && let Some(decl) = line.strip_prefix(':') {
            let chain = decl.split_whitespace().next().unwrap_or_default();
            if is_service_chain(chain) {
                out.insert(chain.to_string());
            }
        }
    }
    out
}

/// The jump rules from the built-in chains, as `TABLE CHAIN RULESPEC` for
/// `RestoreRequest.ensure` (kube-proxy's `EnsureRule` calls on a full sync).
pub fn ensure_rules() -> Vec<String> {
    JUMPS
        .iter()
        .map(|(table, from, to, comment, extra)| {
            let extra = if extra.is_empty() { String::new() } else { format!("{extra} ") };
            format!("{table} {from} {extra}-m comment --comment \"{comment}\" -j {to}")
        })
        .collect()
}

/// How the rules are written.
#[derive(Debug, Clone)]
pub struct Options {
    /// Pod traffic comes from here; traffic to a ClusterIP from elsewhere is masqueraded
    /// (kube-proxy's `--cluster-cidr`, its "local traffic detector"). None: no such rule.
    pub cluster_cidr: Option<Ipv4Net>,
    /// Masquerade all traffic to ClusterIPs (`--masquerade-all`).
    pub masquerade_all: bool,
    /// `MASQUERADE --random-fully`, as on any iptables since 1.6.2.
    pub random_fully: bool,
}

/// One sync's `iptables-restore` input.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The text.
    pub text: String,
    /// Whether every chain was written (else only changed Services' chains).
    pub full: bool,
    /// `-A` lines written.
    pub rules: usize,
    /// Chains deleted with `-X`.
    pub deleted: usize,
    /// What the kernel holds per port once this text is restored.
    update: Update,
    large: bool,
}

/// The per-port memory a successful restore leaves.
#[derive(Debug, Clone)]
enum Update {
    /// A full sync: every port's.
    Full(BTreeMap<ServicePortName, PortRules>),
    /// A partial sync: the rewritten ports' (None: the port is gone).
    Partial(Vec<(ServicePortName, Option<PortRules>)>),
}

/// What the kernel holds for one Service port: the rules it depends on only through the port.
#[derive(Debug, Clone)]
struct PortRules {
    /// The port they were written for.
    sp: Arc<ServicePortInfo>,
    /// Its lines in the nat table's top-level chains (`KUBE-SERVICES`, `KUBE-NODEPORTS`).
    nat: String,
    /// `-A` lines in `nat`.
    nat_rules: usize,
    /// Its lines in the filter table's top-level chains (`KUBE-SERVICES`,
    /// `KUBE-EXTERNAL-SERVICES`).
    filter: String,
    /// `-A` lines in `filter`.
    filter_rules: usize,
    /// Its own chains, sorted.
    chains: Vec<Arc<str>>,
}

/// The iptables proxier's memory between syncs.
#[derive(Debug)]
pub struct Iptables {
    opts: Options,
    /// Whether it knows which service chains the kernel holds (seeded, or since a successful
    /// restore).
    known: bool,
    /// Per port, what the kernel holds after the last successful restore.
    ports: BTreeMap<ServicePortName, PortRules>,
    /// Service chains in the kernel that no port in `ports` owns (a previous run's, from
    /// `iptables-save`): the next sync is full and deletes those still unused.
    stray: HashSet<Arc<str>>,
    /// Whether the last successful restore was in large cluster mode.
    large: Option<bool>,
    /// `probabilities[n]` is 1/n as `%0.10f`, formatted once.
    probabilities: Vec<String>,
}

/// A line buffer that counts `-A` lines.
#[derive(Default)]
struct Lines {
    text: String,
    rules: usize,
}

// === impl Lines ===

impl Lines {
    fn line(&mut self, parts: &[&str]) {
        self.line_of(&[parts]);
    }

    /// One line from several groups of words (so optional groups cost no allocation); empty
    /// words are skipped.
    fn line_of(&mut self, groups: &[&[&str]]) {
        let mut first = true;
        for p in groups.iter().flat_map(|g| g.iter()) {
            if p.is_empty() {
                continue;
            }
            if first {
                if *p == "-A" {
                    self.rules += 1;
                }
            } else {
                self.text.push(' ');
            }
            first = false;
            self.text.push_str(p);
        }
        self.text.push('\n');
    }

    fn chain(&mut self, name: &str) {
        self.text.push(':');
        self.text.push_str(name);
        self.text.push_str(" - [0:0]\n");
    }

    /// Appends lines written elsewhere, `rules` of them `-A` lines.
    fn append(&mut self, text: &str, rules: usize) {
        self.text.push_str(text);
        self.rules += rules;
    }
}

// === impl Iptables ===

impl Iptables {
    /// A proxier that has written nothing yet.
    pub fn new(opts: Options) -> Self {
        Self {
            opts,
            known: false,
            ports: BTreeMap::new(),
            stray: HashSet::new(),
            large: None,
            probabilities: vec!["<bad value>".into()],
        }
    }

    /// Whether it knows which service chains the kernel holds.
    pub fn knows_chains(&self) -> bool {
        self.known
    }

    /// Tells it which service chains the kernel holds (from `iptables-save`), so that a first
    /// sync deletes those a previous run left behind.
    pub fn seed_chains(&mut self, chains: HashSet<String>) {
        let owned: HashSet<&str> = self.ports.values().flat_map(|p| p.chains.iter().map(|c| &**c)).collect();
        self.stray = chains.into_iter().filter(|c| !owned.contains(c.as_str())).map(Arc::from).collect();
        self.known = true;
    }

    /// Remembers what a successful restore of `r` left in the kernel.
    pub fn commit(&mut self, r: Rendered) {
        match r.update {
            Update::Full(ports) => {
                self.ports = ports;
                self.stray.clear();
            }
            Update::Partial(changes) => {
                for (name, rules) in changes {
                    match rules {
                        Some(rules) => self.ports.insert(name, rules),
                        None => self.ports.remove(&name),
                    };
                }
            }
        }
        self.known = true;
        self.large = Some(r.large);
    }

    fn probability(&mut self, n: usize) -> &str {
        while self.probabilities.len() <= n {
            let i = self.probabilities.len();
            self.probabilities.push(format!("{:.10}", 1.0 / i as f64));
        }
        &self.probabilities[n]
    }

    /// The restore input for `snapshot`: every chain if `changed` is None, else the top-level
    /// chains plus the chains of the ports in `changed` (and of any port that differs from the
    /// one last written for its name). A switch into or out of large cluster mode (which changes
    /// every chain's comments), or chains left by a previous run, make it a full sync
    /// regardless.
    pub fn render(
        &mut self,
        snapshot: &Snapshot<ServicePortInfo>,
        changed: Option<&BTreeSet<ServicePortName>>,
    ) -> Rendered {
        let large = snapshot.total_endpoints() > LARGE_CLUSTER_ENDPOINTS;
        let full = changed.is_none() || self.large != Some(large) || !self.stray.is_empty();
        let no_changes = BTreeSet::new();
        let changed = changed.unwrap_or(&no_changes);
        let (mut filter_chains, mut filter_rules, mut nat_chains, mut nat_rules) =
            (Lines::default(), Lines::default(), Lines::default(), Lines::default());
        // Rough sizes (a 4-endpoint Service is about 1.3 kB of nat rules, 150 B of them in
        // KUBE-SERVICES) spare regrowth.
        nat_rules.text.reserve(if full { snapshot.len() * 1400 } else { snapshot.len() * 160 + 8192 });
        nat_chains.text.reserve(if full { snapshot.len() * 200 } else { 1024 });

        for c in [KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL] {
            filter_chains.chain(c);
        }
        for c in [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ] {
            nat_chains.chain(c);
        }
        let masq_mark = format!("{MASQ_MARK}/{MASQ_MARK}");
        nat_rules.line(&["-A", KUBE_POSTROUTING, "-m", "mark", "!", "--mark", &masq_mark, "-j", "RETURN"]);
        nat_rules.line(&["-A", KUBE_POSTROUTING, "-j", "MARK", "--xor-mark", MASQ_MARK]);
        nat_rules.line(&[
            "-A",
            KUBE_POSTROUTING,
            "-m",
            "comment",
            "--comment",
            "\"kubernetes service traffic requiring SNAT\"",
            "-j",
            "MASQUERADE",
            if self.opts.random_fully { "--random-fully" } else { "" },
        ]);
        nat_rules.line(&["-A", KUBE_MARK_MASQ, "-j", "MARK", "--or-mark", MASQ_MARK]);

        let cidr = self.opts.cluster_cidr.map(|c| c.to_string());
        let mut scratch = Scratch::default();
        // The ports as last written and the ports now are both in name order: walk them side by
        // side (and `changed` with them). A port the same as last time (the same allocation, as
        // the snapshot keeps it while it is unchanged) costs a pointer comparison and a copy.
        let old_ports = std::mem::take(&mut self.ports);
        let mut old = old_ports.iter().peekable();
        // The listed ports, by address: a few lookups now spare comparing names for each port.
        let mut listed: Vec<*const ServicePortInfo> =
            changed.iter().filter_map(|n| snapshot.get(n)).map(Arc::as_ptr).collect();
        listed.sort_unstable();
        let mut gone: Vec<Arc<str>> = Vec::new();
        let mut full_update = BTreeMap::new();
        let mut partial_update = Vec::new();
        for (name, sp) in snapshot.entries() {
            // Ports before this one that were written last time are gone.
            while let Some((old_name, old_rules)) = old.peek() {
                if Arc::ptr_eq(&old_rules.sp, sp) || *old_name >= name {
                    break;
                }
                gone.extend(old_rules.chains.iter().cloned());
                partial_update.push(((*old_name).clone(), None));
                old.next();
            }
            let prev = old.next_if(|(n, r)| Arc::ptr_eq(&r.sp, sp) || *n == name).map(|(_, r)| r);
            let is_listed = !listed.is_empty() && listed.binary_search(&Arc::as_ptr(sp)).is_ok();
            if !full
                && !is_listed
                && let Some(prev) = prev
                && (Arc::ptr_eq(&prev.sp, sp) || prev.sp == *sp)
            {
                filter_rules.append(&prev.filter, prev.filter_rules);
                nat_rules.append(&prev.nat, prev.nat_rules);
                continue;
            }
            let rules = self.write_service(
                sp,
                large,
                cidr.as_deref(),
                &mut scratch,
                [&mut filter_rules, &mut nat_chains, &mut nat_rules],
            );
            if let Some(prev) = prev {
                gone.extend(difference(&prev.chains, &rules.chains));
            }
            if full {
                full_update.insert(name.clone(), rules);
            } else {
                partial_update.push((name.clone(), Some(rules)));
            }
        }
        for (old_name, old_rules) in old {
            gone.extend(old_rules.chains.iter().cloned());
            partial_update.push((old_name.clone(), None));
        }
        if full && !self.stray.is_empty() {
            let active: HashSet<&str> =
                full_update.values().flat_map(|r| r.chains.iter().map(|c| &**c)).collect();
            gone.extend(self.stray.iter().filter(|c| !active.contains(&***c)).cloned());
        }
        self.ports = old_ports;

        // Delete the service chains no longer in use: declaring flushes, `-X` deletes.
        gone.sort();
        let deleted = gone.len();
        for chain in &gone {
            nat_chains.chain(chain);
            nat_rules.line(&["-X", chain]);
        }

        nat_rules.line(&[
            "-A",
            KUBE_SERVICES,
            "-m",
            "comment",
            "--comment",
            "\"kubernetes service nodeports; NOTE: this must be the last rule in this chain\"",
            "-m",
            "addrtype",
            "--dst-type",
            "LOCAL",
            "-j",
            KUBE_NODEPORTS,
        ]);

        // KUBE-FORWARD, after every Service's filter lines (upstream writes it last).
        if DROP_INVALID {
            filter_rules.line(&["-A", KUBE_FORWARD, "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"]);
        }
        filter_rules.line(&[
            "-A",
            KUBE_FORWARD,
            "-m",
            "comment",
            "--comment",
            "\"kubernetes forwarding rules\"",
            "-m",
            "mark",
            "--mark",
            &masq_mark,
            "-j",
            "ACCEPT",
        ]);
        filter_rules.line(&[
            "-A",
            KUBE_FORWARD,
            "-m",
            "comment",
            "--comment",
            "\"kubernetes forwarding conntrack rule\"",
            "-m",
            "conntrack",
            "--ctstate",
            "RELATED,ESTABLISHED",
            "-j",
            "ACCEPT",
        ]);

        let mut text = String::with_capacity(
            filter_chains.text.len()
                + filter_rules.text.len()
                + nat_chains.text.len()
                + nat_rules.text.len()
                + 32,
        );
        text.push_str("*filter\n");
        text.push_str(&filter_chains.text);
        text.push_str(&filter_rules.text);
        text.push_str("COMMIT\n*nat\n");
        text.push_str(&nat_chains.text);
        text.push_str(&nat_rules.text);
        text.push_str("COMMIT\n");
        let update = if full { Update::Full(full_update) } else { Update::Partial(partial_update) };
        Rendered { text, full, rules: filter_rules.rules + nat_rules.rules, deleted, update, large }
    }

    /// One Service port's rules, its lines in the top-level chains and then its own chains;
    /// returns what to remember of them.
    fn write_service(
        &mut self,
        sp: &Arc<ServicePortInfo>,
        large: bool,
        cidr: Option<&str>,
        s: &mut Scratch,
        [filter_out, nat_chains, nat_out]: [&mut Lines; 3],
    ) -> PortRules {
        // The top-level lines go to buffers of their own first, to be remembered.
        let (mut top_filter, mut top_nat) = (Lines::default(), Lines::default());
        let (filter_rules, nat_rules) = (&mut top_filter, &mut top_nat);
        let mut own: Vec<Arc<str>> = Vec::new();
        let sel = sp.select();
        let proto = sp.name.protocol.lower();
        let name = sp.name_string.as_str();
        let chains = &sp.chains;
        let has_endpoints = sel.has_any;
        let uses_cluster_chain = !sel.cluster.is_empty() && sp.uses_cluster_endpoints();
        let uses_local_chain = !sel.local.is_empty() && sp.uses_local_endpoints();
        let internal_local = sp.internal_policy == TrafficPolicy::Local;
        let external_local = sp.external_policy == TrafficPolicy::Local;
        let internal_chain = if internal_local { &chains.svl } else { &chains.svc };
        let has_internal = has_endpoints && !(internal_local && sel.local.is_empty());
        let external_policy_chain = if external_local { &chains.svl } else { &chains.svc };
        let has_external = has_endpoints && !(external_local && sel.local.is_empty());
        let uses_ext_chain = has_endpoints && sp.externally_accessible();

        s.set(sp, name, !has_internal || !has_external);
        // What the filter table does with traffic no endpoint will take: no endpoints at all is
        // REJECT (connection refused), none under a Local policy is DROP (a timeout).
        let (filter_target, filter_comment) =
            if !has_endpoints { ("REJECT", &s.no_endpoints) } else { ("DROP", &s.no_local_endpoints) };

        // Capture the ClusterIP.
        if has_internal {
            nat_rules.line(&[
                "-A",
                KUBE_SERVICES,
                "-m",
                "comment",
                "--comment",
                &s.cluster_ip_comment,
                "-m",
                proto,
                "-p",
                proto,
                "-d",
                &s.cluster_ip,
                "--dport",
                &s.port,
                "-j",
                internal_chain,
            ]);
        } else {
            filter_rules.line(&[
                "-A",
                KUBE_SERVICES,
                "-m",
                "comment",
                "--comment",
                filter_comment,
                "-m",
                proto,
                "-p",
                proto,
                "-d",
                &s.cluster_ip,
                "--dport",
                &s.port,
                "-j",
                filter_target,
            ]);
        }
        // Capture externalIPs.
        for ip in &sp.external_ips {
            let ip = ip.to_string();
            if has_endpoints {
                let comment = format!("\"{name} external IP\"");
                nat_rules.line(&[
                    "-A",
                    KUBE_SERVICES,
                    "-m",
                    "comment",
                    "--comment",
                    &comment,
                    "-m",
                    proto,
                    "-p",
                    proto,
                    "-d",
                    &ip,
                    "--dport",
                    &s.port,
                    "-j",
                    &chains.ext,
                ]);
            }
            if !has_external {
                filter_rules.line(&[
                    "-A",
                    KUBE_EXTERNAL_SERVICES,
                    "-m",
                    "comment",
                    "--comment",
                    filter_comment,
                    "-m",
                    proto,
                    "-p",
                    proto,
                    "-d",
                    &ip,
                    "--dport",
                    &s.port,
                    "-j",
                    filter_target,
                ]);
            }
        }
        // Capture load-balancer ingress IPs.
        for ip in &sp.load_balancer_ips {
            if has_endpoints {
                let (ip, comment) = (ip.to_string(), format!("\"{name} loadbalancer IP\""));
                nat_rules.line(&[
                    "-A",
                    KUBE_SERVICES,
                    "-m",
                    "comment",
                    "--comment",
                    &comment,
                    "-m",
                    proto,
                    "-p",
                    proto,
                    "-d",
                    &ip,
                    "--dport",
                    &s.port,
                    "-j",
                    &chains.ext,
                ]);
            }
        }
        if !has_external {
            for ip in &sp.load_balancer_ips {
                let ip = ip.to_string();
                filter_rules.line(&[
                    "-A",
                    KUBE_EXTERNAL_SERVICES,
                    "-m",
                    "comment",
                    "--comment",
                    filter_comment,
                    "-m",
                    proto,
                    "-p",
                    proto,
                    "-d",
                    &ip,
                    "--dport",
                    &s.port,
                    "-j",
                    filter_target,
                ]);
            }
        }
        // Capture the NodePort.
        if let Some(node_port) = sp.node_port {
            let node_port = node_port.to_string();
            if has_endpoints {
                nat_rules.line(&[
                    "-A",
                    KUBE_NODEPORTS,
                    "-m",
                    "comment",
                    "--comment",
                    name,
                    "-m",
                    proto,
                    "-p",
                    proto,
                    "--dport",
                    &node_port,
                    "-j",
                    &chains.ext,
                ]);
            }
            if !has_external {
                filter_rules.line(&[
                    "-A",
                    KUBE_EXTERNAL_SERVICES,
                    "-m",
                    "comment",
                    "--comment",
                    filter_comment,
                    "-m",
                    "addrtype",
                    "--dst-type",
                    "LOCAL",
                    "-m",
                    proto,
                    "-p",
                    proto,
                    "--dport",
                    &node_port,
                    "-j",
                    filter_target,
                ]);
            }
        }

        filter_out.append(&top_filter.text, top_filter.rules);
        nat_out.append(&top_nat.text, top_nat.rules);
        // From here on the Service's own chains.
        let nat_rules = nat_out;

        if has_internal {
            let cluster_args = [
                "-A",
                internal_chain,
                "-m",
                "comment",
                "--comment",
                &s.cluster_ip_comment,
                "-m",
                proto,
                "-p",
                proto,
                "-d",
                &s.cluster_ip,
                "--dport",
                &s.port,
            ];
            if self.opts.masquerade_all {
                nat_rules.line_of(&[&cluster_args, &["-j", KUBE_MARK_MASQ]]);
            } else if let Some(cidr) = cidr {
                nat_rules.line_of(&[&cluster_args, &["!", "-s", cidr, "-j", KUBE_MARK_MASQ]]);
            }
        }

        if uses_ext_chain {
            nat_chains.chain(&chains.ext);
            own.push(chains.ext.clone());
            if !external_local {
                let comment = format!("\"masquerade traffic for {name} external destinations\"");
                nat_rules.line(&[
                    "-A",
                    &chains.ext,
                    "-m",
                    "comment",
                    "--comment",
                    &comment,
                    "-j",
                    KUBE_MARK_MASQ,
                ]);
            } else {
                if let Some(cidr) = cidr {
                    let comment = format!("\"pod traffic for {name} external destinations\"");
                    nat_rules.line(&[
                        "-A",
                        &chains.ext,
                        "-m",
                        "comment",
                        "--comment",
                        &comment,
                        "-s",
                        cidr,
                        "-j",
                        &chains.svc,
                    ]);
                }
                if WRITE_SRC_TYPE_LOCAL {
                    let comment = format!("\"masquerade LOCAL traffic for {name} external destinations\"");
                    nat_rules.line(&[
                        "-A",
                        &chains.ext,
                        "-m",
                        "comment",
                        "--comment",
                        &comment,
                        "-m",
                        "addrtype",
                        "--src-type",
                        "LOCAL",
                        "-j",
                        KUBE_MARK_MASQ,
                    ]);
                    let comment = format!("\"route LOCAL traffic for {name} external destinations\"");
                    nat_rules.line(&[
                        "-A",
                        &chains.ext,
                        "-m",
                        "comment",
                        "--comment",
                        &comment,
                        "-m",
                        "addrtype",
                        "--src-type",
                        "LOCAL",
                        "-j",
                        &chains.svc,
                    ]);
                }
            }
            if has_external {
                nat_rules.line(&["-A", &chains.ext, "-j", external_policy_chain]);
            }
        }

        if uses_cluster_chain {
            nat_chains.chain(&chains.svc);
            own.push(chains.svc.clone());
            self.write_service_to_endpoint_rules(nat_rules, sp, &chains.svc, &sel.cluster, large, s);
        }
        if uses_local_chain {
            nat_chains.chain(&chains.svl);
            own.push(chains.svl.clone());
            self.write_service_to_endpoint_rules(nat_rules, sp, &chains.svl, &sel.local, large, s);
        }

        // One chain per endpoint: hairpin masquerade, affinity, DNAT.
        for ep in &sel.reachable {
            let ep_chain = sp.endpoint_chain(ep);
            nat_chains.chain(ep_chain);
            own.push(ep_chain.clone());
            let comment: &[&str] = if large { &[] } else { &["-m", "comment", "--comment", name] };
            nat_rules.line_of(&[&["-A", ep_chain], comment, &["-s", ep.ip_str(), "-j", KUBE_MARK_MASQ]]);
            let affinity: &[&str] = if sp.affinity_timeout.is_some() {
                &["-m", "recent", "--name", ep_chain, "--set"]
            } else {
                &[]
            };
            nat_rules.line_of(&[
                &["-A", ep_chain],
                comment,
                affinity,
                &["-m", proto, "-p", proto, "-j", "DNAT", "--to-destination", &ep.addr],
            ]);
        }
        own.sort();
        PortRules {
            sp: sp.clone(),
            nat: top_nat.text,
            nat_rules: top_nat.rules,
            filter: top_filter.text,
            filter_rules: top_filter.rules,
            chains: own,
        }
    }

    /// Affinity rules (if any), then one rule per endpoint with probability 1/(n−i), the last
    /// one unconditional (upstream `writeServiceToEndpointRules`).
    fn write_service_to_endpoint_rules(
        &mut self,
        nat_rules: &mut Lines,
        sp: &ServicePortInfo,
        chain: &str,
        endpoints: &[&Endpoint],
        large: bool,
        s: &mut Scratch,
    ) {
        let name = sp.name_string.as_str();
        if let Some(timeout) = sp.affinity_timeout {
            let seconds = timeout.to_string();
            for ep in endpoints {
                let ep_chain = sp.endpoint_chain(ep);
                s.endpoint_comment(name, ep);
                let comment: &[&str] = if large { &[] } else { &["-m", "comment", "--comment", &s.comment] };
                nat_rules.line_of(&[
                    &["-A", chain],
                    comment,
                    &[
                        "-m",
                        "recent",
                        "--name",
                        ep_chain,
                        "--rcheck",
                        "--seconds",
                        &seconds,
                        "--reap",
                        "-j",
                        ep_chain,
                    ],
                ]);
            }
        }
        let n = endpoints.len();
        for (i, ep) in endpoints.iter().enumerate() {
            let ep_chain = sp.endpoint_chain(ep);
            s.endpoint_comment(name, ep);
            let comment: &[&str] = if large { &[] } else { &["-m", "comment", "--comment", &s.comment] };
            if i + 1 < n {
                let p = self.probability(n - i);
                nat_rules.line_of(&[
                    &["-A", chain],
                    comment,
                    &["-m", "statistic", "--mode", "random", "--probability", p, "-j", ep_chain],
                ]);
            } else {
                // The last (or only) rule always matches.
                nat_rules.line_of(&[&["-A", chain], comment, &["-j", ep_chain]]);
            }
        }
    }
}

/// The chains in `old` (sorted) that are not in `new` (sorted).
fn difference<'a>(old: &'a [Arc<str>], new: &'a [Arc<str>]) -> impl Iterator<Item = Arc<str>> + 'a {
    let mut new = new.iter().peekable();
    old.iter()
        .filter(move |c| {
            while new.next_if(|n| n < c).is_some() {}
            new.peek() != Some(c)
        })
        .cloned()
}

/// Strings formatted once per Service port (or per endpoint) and reused across its rules,
/// keeping allocations out of the per-rule path.
#[derive(Default)]
struct Scratch {
    cluster_ip: String,
    port: String,
    cluster_ip_comment: String,
    no_endpoints: String,
    no_local_endpoints: String,
    comment: String,
}

// === impl Scratch ===

impl Scratch {
    /// Formats the port's strings; the filter comments only if `filter` rules will quote them.
    fn set(&mut self, sp: &ServicePort, name: &str, filter: bool) {
        fn redo(s: &mut String, args: std::fmt::Arguments<'_>) {
            s.clear();
            let _ = s.write_fmt(args);
        }
        redo(&mut self.cluster_ip, format_args!("{}", sp.cluster_ip));
        redo(&mut self.port, format_args!("{}", sp.port));
        redo(&mut self.cluster_ip_comment, format_args!("\"{name} cluster IP\""));
        if filter {
            redo(&mut self.no_endpoints, format_args!("\"{name} has no endpoints\""));
            redo(&mut self.no_local_endpoints, format_args!("\"{name} has no local endpoints\""));
        }
    }

    /// `"ns/svc:port -> ip:port"`, the comment of a rule that jumps to an endpoint.
    fn endpoint_comment(&mut self, name: &str, ep: &Endpoint) {
        self.comment.clear();
        self.comment.push('"');
        self.comment.push_str(name);
        self.comment.push_str(" -> ");
        self.comment.push_str(&ep.addr);
        self.comment.push('"');
    }
}

#[cfg(test)]
mod tests;
