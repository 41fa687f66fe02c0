//! The cluster zone as CoreDNS's kubernetes plugin answers it: an index of Services,
//! EndpointSlices, Namespaces (and, for `pods verified`, pod IPs) kept up to date one object at a
//! time by [`crate::watch`], and [`Store::lookup`], which turns a query name and type into the
//! records, the rcode and the SOA that CoreDNS would send.
//!
//! The code follows CoreDNS's own structure (plugin/kubernetes/{kubernetes,parse,reverse,ns}.go and
//! plugin/backend_lookup.go) on purpose: a name is first parsed into (port, protocol, endpoint,
//! service, namespace, pod|svc), then turned into "entries" (CoreDNS's `msg.Service`: an address or
//! a name, a port, the owning DNS name), and only then into records per query type. That keeps
//! the quirks where CoreDNS has them: NXDOMAIN versus NODATA is decided by whether the entries
//! exist, not by the query type; SRV weights are computed over every entry before duplicates are
//! dropped; a TXT query for anything but `dns-version` is NODATA only if the name has entries.
//!
//! No sockets and no DNS library types here: the handler converts [`Record`]s to wire records.
//! Every map is keyed by lowercased names, so a query costs one lowercase copy of its name plus
//! hash lookups; nothing is rebuilt per query.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use k8s_openapi::api::{
    core::v1::{Namespace, Pod, Service},
    discovery::v1::EndpointSlice,
};

/// The schema version CoreDNS serves at `dns-version.<zone>` (kubernetes/dns spec 1.1.0).
pub const DNS_SCHEMA_VERSION: &str = "1.1.0";
/// TTL of the `dns-version` TXT record, hard-coded in CoreDNS.
pub const DNS_VERSION_TTL: u32 = 28800;
/// CoreDNS's default `ttl` for the kubernetes plugin.
pub const DEFAULT_TTL: u32 = 5;
/// CNAME chains longer than this are cut, as backend_lookup.go does (`len(previousRecords) > 7`).
const MAX_CHAIN: usize = 8;

/// `pods disabled|insecure|verified`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PodMode {
    /// No `a-b-c-d.<ns>.pod.<zone>` records (CoreDNS's default).
    #[default]
    Disabled,
    /// Any parsable dashed IP in an existing namespace (kubeadm's setting).
    Insecure,
    /// Only IPs of pods in that namespace.
    Verified,
}

/// The kubernetes plugin's options that shape answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneConfig {
    /// Zones the plugin is authoritative for, lowercase and ending in a dot (`cluster.local.`).
    pub zones: Vec<String>,
    /// `pods`.
    pub pods: PodMode,
    /// `ttl`: TTL of every record (and the SOA's minimum).
    pub ttl: u32,
    /// `fallthrough [ZONES]`: None = off; Some(empty) = every zone.
    pub fallthrough: Option<Vec<String>>,
    /// `namespaces`: when not empty, only these namespaces are exposed.
    pub namespaces: Vec<String>,
    /// `endpoint_pod_names`: name endpoints without a hostname after their pod.
    pub endpoint_pod_names: bool,
    /// `ignore empty_service`: NXDOMAIN for ClusterIP Services without ready endpoints.
    pub ignore_empty_service: bool,
    /// The addresses this server serves on (CoreDNS's `localIPs`): the NS records name the
    /// Services whose endpoints hold them. CoreDNS takes its pod's interface addresses minus
    /// loopback; here it is the address the process registers as its pod IP, which natively is a
    /// loopback address (the lab's exception, as for the kube-dns endpoints themselves).
    pub local_ips: Vec<IpAddr>,
}

impl Default for ZoneConfig {
    fn default() -> Self {
        Self {
            zones: vec!["cluster.local.".into()],
            pods: PodMode::Disabled,
            ttl: DEFAULT_TTL,
            fallthrough: None,
            namespaces: vec![],
            endpoint_pod_names: false,
            ignore_empty_service: false,
            local_ips: vec![],
        }
    }
}

/// Query types the plugin routes (plugin/kubernetes/handler.go); anything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Text (dns-version).
    Txt,
    /// Alias.
    Cname,
    /// Reverse.
    Ptr,
    /// Mail exchanger (never has data here).
    Mx,
    /// Service location.
    Srv,
    /// Start of authority.
    Soa,
    /// Name servers.
    Ns,
    /// Zone transfer.
    Axfr,
    /// Incremental zone transfer.
    Ixfr,
    /// Anything else: a "fake A lookup" decides NXDOMAIN vs NODATA.
    Other,
}

/// The response code the zone decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    /// NOERROR (with records, or NODATA).
    NoError,
    /// NXDOMAIN.
    NxDomain,
    /// SERVFAIL (not synced yet).
    ServFail,
    /// REFUSED (zone transfers).
    Refused,
}

/// A record's owner name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The query name, in the query's case.
    Query,
    /// Another name (absolute, with the trailing dot).
    Name(String),
}

/// Record data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    /// IPv4.
    A(Ipv4Addr),
    /// IPv6.
    Aaaa(Ipv6Addr),
    /// Alias target.
    Cname(String),
    /// Reverse target.
    Ptr(String),
    /// Service location.
    Srv {
        /// Always 0 in CoreDNS.
        priority: u16,
        /// floor(100 / entries).
        weight: u16,
        /// Port number.
        port: u16,
        /// Target name.
        target: String,
    },
    /// One text string.
    Txt(String),
    /// Name server.
    Ns(String),
    /// Start of authority.
    Soa {
        /// `ns.dns.<zone>`.
        mname: String,
        /// `hostmaster.<zone>`.
        rname: String,
        /// Time of the last API change.
        serial: u32,
        /// 7200.
        refresh: i32,
        /// 1800.
        retry: i32,
        /// 86400.
        expire: i32,
        /// The plugin's ttl.
        minimum: u32,
    },
}

/// One resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The name the record is for, as the zone keeps it.
    pub owner: Owner,
    /// TTL in seconds.
    pub ttl: u32,
    /// The type and its data (A address, SRV target and port, ...).
    pub data: RData,
}

/// An ExternalName target the zone cannot resolve itself: the handler resolves `target` through
/// the rest of the server (cache, forward) and appends the answers after `cname`; if that lookup
/// fails the CNAME is dropped, as backend_lookup.go does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chase {
    /// `<query> CNAME <target>`.
    pub cname: Record,
    /// The name to resolve outside.
    pub target: String,
    /// The query type to resolve it with.
    pub qtype: QType,
}

/// What the zone answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// NOERROR, NXDOMAIN, ... as the kubernetes plugin decides it.
    pub rcode: Rcode,
    /// Answer section (before any chase).
    pub answers: Vec<Record>,
    /// Additional section.
    pub additionals: Vec<Record>,
    /// The SOA for the Authority section of negative answers (NXDOMAIN, NODATA).
    pub soa: Record,
    /// An ExternalName target to resolve upstream.
    pub chase: Option<Chase>,
}

impl Answer {
    /// Whether this is a negative answer that carries the SOA (NXDOMAIN, or NOERROR without
    /// records and nothing to chase).
    pub fn is_negative(&self) -> bool {
        match self.rcode {
            Rcode::NxDomain => true,
            Rcode::NoError => self.answers.is_empty() && self.chase.is_none(),
            _ => false,
        }
    }
}

/// The outcome of a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No kubernetes zone contains the name: the next plugin answers.
    NotOurs,
    /// NXDOMAIN in a `fallthrough` zone: the next plugin answers.
    Fallthrough,
    /// The zone's answer (boxed: it is much larger than the other variants).
    Answer(Box<Answer>),
}

/// The plugin's "errNoItems / errNsNotExposed / errInvalidRequest": the name does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NameError;

/// A named (or unnamed) port: `name` and `protocol` lowercase; `port` -1 is CoreDNS's sentinel
/// for an EndpointSlice without ports.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Port {
    name: String,
    protocol: String,
    port: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    ClusterIp(Vec<IpAddr>),
    Headless,
    ExternalName(String),
}

#[derive(Debug, Clone)]
struct Svc {
    name: String,
    namespace: String,
    kind: Kind,
    ports: Vec<Port>,
}

/// One ready address of an EndpointSlice endpoint, with the name CoreDNS gives it.
#[derive(Debug, Clone)]
struct Addr {
    ip: IpAddr,
    /// hostname, pod name (endpoint_pod_names) or dashed IP: resolved at lookup time because
    /// `endpoint_pod_names` can change with a reload.
    hostname: Option<String>,
    pod: Option<String>,
}

#[derive(Debug, Clone)]
struct Slice {
    /// `name.namespace` of the Service.
    service: String,
    addrs: Vec<Addr>,
    ports: Vec<Port>,
}

/// The indexed cluster state.
#[derive(Debug, Default)]
pub struct Store {
    synced: bool,
    serial: u32,
    namespaces: HashSet<String>,
    /// `name.namespace` → Service.
    services: HashMap<String, Svc>,
    /// `namespace/slice` → its ready addresses.
    slices: HashMap<String, Slice>,
    /// `name.namespace` → its slices' keys.
    service_slices: HashMap<String, Vec<String>>,
    /// ClusterIP → `name.namespace`.
    cluster_ips: HashMap<IpAddr, String>,
    /// Ready endpoint IP → slice keys.
    endpoint_ips: HashMap<IpAddr, Vec<String>>,
    /// Pod IP → namespaces (for `pods verified`), keyed by pod `namespace/name`.
    pod_ips: HashMap<IpAddr, Vec<(String, String)>>,
    /// `namespace/name` → pod IPs, to undo.
    pods: HashMap<String, Vec<IpAddr>>,
}

// === impl ZoneConfig ===

impl ZoneConfig {
    /// The longest configured zone that contains `lower` (a lowercase absolute name).
    fn matches(&self, lower: &str) -> Option<&str> {
        self.zones.iter().filter(|z| is_subdomain(lower, z)).max_by_key(|z| z.len()).map(String::as_str)
    }

    /// The first zone that is not a reverse zone: PTR targets live there.
    fn primary_zone(&self) -> &str {
        self.zones.iter().find(|z| reverse_kind(z).is_none()).map(String::as_str).unwrap_or("cluster.local.")
    }

    fn falls_through(&self, lower: &str) -> bool {
        match &self.fallthrough {
            None => false,
            Some(zones) if zones.is_empty() => true,
            Some(zones) => zones.iter().any(|z| is_subdomain(lower, z)),
        }
    }

    fn namespace_configured(&self, ns: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == ns)
    }
}

// === impl Store ===

impl Store {
    /// An empty, not yet synced store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the first list of every watched kind as applied: NXDOMAIN stops being SERVFAIL.
    pub fn set_synced(&mut self, synced: bool) {
        self.synced = synced;
    }

    /// Whether the first lists have been applied.
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// The SOA serial: the unix time of the last change.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Records a change at `now` (unix seconds) for the SOA serial.
    pub fn touch(&mut self, now: u32) {
        self.serial = now;
    }

    /// How many Services are indexed.
    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// Adds or replaces a Namespace.
    pub fn apply_namespace(&mut self, ns: &Namespace) {
        if let Some(name) = &ns.metadata.name {
            self.namespaces.insert(name.to_ascii_lowercase());
        }
    }

    /// Removes a Namespace.
    pub fn delete_namespace(&mut self, ns: &Namespace) {
        if let Some(name) = &ns.metadata.name {
            self.namespaces.remove(&name.to_ascii_lowercase());
        }
    }

    /// Adds or replaces a Service.
    pub fn apply_service(&mut self, svc: &Service) {
        let Some(parsed) = parse_service(svc) else { return };
        let key = format!("{}.{}", parsed.name, parsed.namespace);
        self.remove_service_ips(&key);
        if let Kind::ClusterIp(ips) = &parsed.kind {
            for ip in ips {
                self.cluster_ips.insert(*ip, key.clone());
            }
        }
        self.services.insert(key, parsed);
    }

    /// Removes a Service.
    pub fn delete_service(&mut self, svc: &Service) {
        let (Some(name), Some(ns)) = (&svc.metadata.name, &svc.metadata.namespace) else { return };
        let key = format!("{}.{}", name.to_ascii_lowercase(), ns.to_ascii_lowercase());
        self.remove_service_ips(&key);
        self.services.remove(&key);
    }

    fn remove_service_ips(&mut self, key: &str) {
        if let Some(Svc { kind: Kind::ClusterIp(ips), .. }) = self.services.get(key) {
            for ip in ips.clone() {
                if self.cluster_ips.get(&ip).is_some_and(|k| k == key) {
                    self.cluster_ips.remove(&ip);
                }
            }
        }
    }

    /// Adds or replaces an EndpointSlice (only its ready addresses are kept).
    pub fn apply_slice(&mut self, slice: &EndpointSlice) {
        let Some(key) = slice_key(slice) else { return };
        self.delete_slice_key(&key);
        let Some(parsed) = parse_slice(slice) else { return };
        for a in &parsed.addrs {
            let keys = self.endpoint_ips.entry(a.ip).or_default();
            if !keys.contains(&key) {
                keys.push(key.clone());
            }
        }
        let list = self.service_slices.entry(parsed.service.clone()).or_default();
        list.push(key.clone());
        list.sort();
        self.slices.insert(key, parsed);
    }

    /// Removes an EndpointSlice.
    pub fn delete_slice(&mut self, slice: &EndpointSlice) {
        if let Some(key) = slice_key(slice) {
            self.delete_slice_key(&key);
        }
    }

    fn delete_slice_key(&mut self, key: &str) {
        let Some(old) = self.slices.remove(key) else { return };
        for a in &old.addrs {
            if let Some(keys) = self.endpoint_ips.get_mut(&a.ip) {
                keys.retain(|k| k != key);
                if keys.is_empty() {
                    self.endpoint_ips.remove(&a.ip);
                }
            }
        }
        if let Some(list) = self.service_slices.get_mut(&old.service) {
            list.retain(|k| k != key);
            if list.is_empty() {
                self.service_slices.remove(&old.service);
            }
        }
    }

    /// Adds or replaces a Pod (only its IPs matter, for `pods verified`).
    pub fn apply_pod(&mut self, pod: &Pod) {
        let (Some(name), Some(ns)) = (&pod.metadata.name, &pod.metadata.namespace) else { return };
        let key = format!("{ns}/{name}");
        self.delete_pod_key(&key);
        let ips: Vec<IpAddr> = pod
            .status
            .as_ref()
            .map(|s| {
                let mut ips: Vec<IpAddr> =
                    s.pod_ips.iter().flatten().filter_map(|p| p.ip.parse().ok()).collect();
                if let Some(ip) = s.pod_ip.as_deref().and_then(|ip| ip.parse().ok())
                    && !ips.contains(&ip)
                {
                    ips.push(ip);
                }
                ips
            })
            .unwrap_or_default();
        for ip in &ips {
            self.pod_ips.entry(*ip).or_default().push((ns.to_ascii_lowercase(), key.clone()));
        }
        self.pods.insert(key, ips);
    }

    /// Removes a Pod.
    pub fn delete_pod(&mut self, pod: &Pod) {
        let (Some(name), Some(ns)) = (&pod.metadata.name, &pod.metadata.namespace) else { return };
        self.delete_pod_key(&format!("{ns}/{name}"));
    }

    fn delete_pod_key(&mut self, key: &str) {
        for ip in self.pods.remove(key).unwrap_or_default() {
            if let Some(list) = self.pod_ips.get_mut(&ip) {
                list.retain(|(_, k)| k != key);
                if list.is_empty() {
                    self.pod_ips.remove(&ip);
                }
            }
        }
    }

    /// Answers `qname` (absolute, in the query's case) for `qtype`, as the kubernetes plugin does.
    pub fn lookup(&self, cfg: &ZoneConfig, qname: &str, qtype: QType) -> Outcome {
        let owned;
        let qname = if qname.ends_with('.') {
            qname
        } else {
            owned = format!("{qname}.");
            &owned
        };
        let lower = qname.to_ascii_lowercase();
        let Some(zone) = cfg.matches(&lower) else { return Outcome::NotOurs };
        // The SOA's owner is the matched zone in the query's own case.
        let apex = &qname[qname.len() - zone.len()..];
        let soa = self.soa(cfg, apex);
        let mut answer =
            Answer { rcode: Rcode::NoError, answers: vec![], additionals: vec![], soa, chase: None };
        let lookup = Lookup { store: self, cfg, zone, apex };
        let result = match qtype {
            QType::A | QType::Aaaa => lookup.address(&lower, Owner::Query, qtype, 0, &mut answer),
            QType::Txt => lookup.txt(&lower, &mut answer),
            QType::Cname => lookup.cname(&lower, &mut answer),
            QType::Ptr => lookup.ptr(&lower, &mut answer),
            QType::Srv => lookup.srv(&lower, &mut answer),
            QType::Mx => lookup.services(&lower, qtype).map(|_| ()),
            // handler.go: the SOA at the apex (in any case); below it nothing is looked up at all,
            // so every name, existing or not, is NODATA.
            QType::Soa => {
                if lower == zone {
                    answer.answers.push(Record { owner: Owner::Query, ..answer.soa.clone() });
                }
                Ok(())
            }
            // handler.go compares the lowercased name with the zone in the query's case: an apex
            // asked in another case (`Cluster.Local. NS`) misses, and the fake A lookup makes it
            // NODATA.
            QType::Ns if lower == apex => lookup.ns(&mut answer),
            QType::Axfr | QType::Ixfr => {
                answer.rcode = Rcode::Refused;
                return Outcome::Answer(Box::new(answer));
            }
            // A "fake A lookup", only to choose between NXDOMAIN and NODATA.
            _ => lookup.services(&lower, QType::A).map(|_| ()),
        };
        match result {
            // handler.go asks `fallthrough` before it asks whether the informers have synced.
            Err(NameError) if cfg.falls_through(&lower) => Outcome::Fallthrough,
            Err(NameError) => {
                // Before the informers have synced a miss is SERVFAIL (with the SOA all the same).
                answer.rcode = if self.synced { Rcode::NxDomain } else { Rcode::ServFail };
                answer.answers.clear();
                answer.additionals.clear();
                answer.chase = None;
                Outcome::Answer(Box::new(answer))
            }
            Ok(()) => Outcome::Answer(Box::new(answer)),
        }
    }

    fn soa(&self, cfg: &ZoneConfig, apex: &str) -> Record {
        let zone = apex.to_ascii_lowercase();
        Record {
            owner: Owner::Name(apex.to_string()),
            ttl: cfg.ttl.min(300),
            data: RData::Soa {
                mname: format!("ns.dns.{zone}"),
                rname: format!("hostmaster.{zone}"),
                serial: self.serial,
                refresh: 7200,
                retry: 1800,
                expire: 86400,
                minimum: cfg.ttl,
            },
        }
    }
}

/// A parsed query name (parse.go's recordRequest).
#[derive(Debug, Default, PartialEq, Eq)]
struct Request<'a> {
    port: &'a str,
    protocol: &'a str,
    endpoint: &'a str,
    service: &'a str,
    namespace: &'a str,
    /// "pod", "svc" or "" (apex, `svc.<zone>`, `pod.<zone>`).
    pod_or_svc: &'a str,
}

/// parseRequest: `lower` minus `zone`, read from the right.
fn parse_request<'a>(lower: &'a str, zone: &str) -> Result<Request<'a>, NameError> {
    let base = lower[..lower.len() - zone.len()].trim_end_matches('.');
    let mut r = Request::default();
    if base.is_empty() || base == "svc" || base == "pod" {
        return Ok(r);
    }
    let segs: Vec<&str> = base.split('.').collect();
    let mut last = segs.len() as isize - 1;
    let seg = |i: isize| segs[i as usize];
    r.pod_or_svc = seg(last);
    if r.pod_or_svc != "pod" && r.pod_or_svc != "svc" {
        return Err(NameError);
    }
    last -= 1;
    if last < 0 {
        return Ok(r);
    }
    r.namespace = seg(last);
    last -= 1;
    if last < 0 {
        return Ok(r);
    }
    r.service = seg(last);
    last -= 1;
    if last < 0 {
        return Ok(r);
    }
    match last {
        0 => r.endpoint = seg(0),
        1 => {
            r.protocol = seg(1).strip_prefix('_').unwrap_or(seg(1));
            r.port = seg(0).strip_prefix('_').unwrap_or(seg(0));
        }
        _ => return Err(NameError),
    }
    Ok(r)
}

/// CoreDNS's `msg.Service`: what a name resolves to before it becomes records.
#[derive(Debug, Clone)]
struct Entry {
    host: Host,
    port: i32,
    /// The DNS name this entry stands for: `svc.ns.svc.zone.` or `ep.svc.ns.svc.zone.`.
    key: String,
    ttl: u32,
}

#[derive(Debug, Clone)]
enum Host {
    Ip(IpAddr),
    /// An ExternalName target (absolute, lowercase).
    Name(String),
    Text(&'static str),
}

/// One lookup: the store, the config and the matched zone.
struct Lookup<'a> {
    store: &'a Store,
    cfg: &'a ZoneConfig,
    /// The matched zone, lowercase.
    zone: &'a str,
    /// The matched zone in the query's case (CoreDNS's `state.Zone`): the apex checks compare the
    /// lowercased name with it.
    apex: &'a str,
}

// === impl Lookup ===

impl Lookup<'_> {
    fn namespace_exposed(&self, ns: &str) -> bool {
        self.cfg.namespace_configured(ns) && self.store.namespaces.contains(ns)
    }

    /// kubernetes.go `Services`: the entries for `lower`, by query type.
    fn services(&self, lower: &str, qtype: QType) -> Result<Vec<Entry>, NameError> {
        if qtype == QType::Txt {
            let base = lower[..lower.len() - self.zone.len()].trim_end_matches('.');
            if base == "dns-version" {
                return Ok(vec![Entry {
                    host: Host::Text(DNS_SCHEMA_VERSION),
                    port: 0,
                    key: lower.to_string(),
                    ttl: DNS_VERSION_TTL,
                }]);
            }
            // NODATA if the name has entries for another type, else NXDOMAIN.
            return match self.records(lower) {
                Ok(e) if !e.is_empty() => Ok(vec![]),
                _ => Err(NameError),
            };
        }
        if self.is_default_ns(lower) {
            // The NS target's own addresses, of the asked family only; any other type is NODATA.
            let family = |e: &Entry| {
                matches!(
                    (qtype, &e.host),
                    (QType::A, Host::Ip(IpAddr::V4(_))) | (QType::Aaaa, Host::Ip(IpAddr::V6(_)))
                )
            };
            return Ok(self.ns_addrs().into_iter().map(|(_, e)| e).filter(family).collect());
        }
        let entries = self.records(lower)?;
        if qtype == QType::Srv {
            // SRV for ExternalName Services is not implemented in CoreDNS: those entries go.
            return Ok(entries.into_iter().filter(|e| !matches!(e.host, Host::Name(_))).collect());
        }
        Ok(entries)
    }

    /// kubernetes.go `Records`.
    fn records(&self, lower: &str) -> Result<Vec<Entry>, NameError> {
        let r = parse_request(lower, self.zone)?;
        if r.pod_or_svc.is_empty() {
            return Ok(vec![]);
        }
        if reverse_kind(lower).is_some() {
            return Err(NameError);
        }
        if !self.namespace_exposed(r.namespace) {
            return Err(NameError);
        }
        if r.pod_or_svc == "pod" {
            return self.find_pods(&r);
        }
        self.find_services(&r)
    }

    fn find_pods(&self, r: &Request<'_>) -> Result<Vec<Entry>, NameError> {
        if self.cfg.pods == PodMode::Disabled {
            return Err(NameError);
        }
        if r.service.is_empty() {
            return Ok(vec![]); // NODATA for `<ns>.pod.<zone>`
        }
        let podname = r.service;
        let dashed = if podname.matches('-').count() == 3 && !podname.contains("--") {
            podname.replace('-', ".")
        } else {
            podname.replace('-', ":")
        };
        let Ok(ip) = dashed.parse::<IpAddr>() else { return Err(NameError) };
        let entry = Entry {
            host: Host::Ip(ip),
            port: 0,
            key: format!("{podname}.{}.pod.{}", r.namespace, self.zone),
            ttl: self.cfg.ttl,
        };
        match self.cfg.pods {
            PodMode::Insecure => Ok(vec![entry]),
            _ => {
                let known =
                    self.store.pod_ips.get(&ip).is_some_and(|l| l.iter().any(|(ns, _)| ns == r.namespace));
                if known { Ok(vec![entry]) } else { Err(NameError) }
            }
        }
    }

    fn find_services(&self, r: &Request<'_>) -> Result<Vec<Entry>, NameError> {
        if r.service.is_empty() {
            return Ok(vec![]); // NODATA for `<ns>.svc.<zone>`
        }
        let key = format!("{}.{}", r.service, r.namespace);
        let Some(svc) = self.store.services.get(&key) else { return Err(NameError) };
        let ttl = self.cfg.ttl;
        let svc_domain = format!("{}.{}.svc.{}", svc.name, svc.namespace, self.zone);
        let mut out = Vec::new();
        let mut found = false;
        match &svc.kind {
            Kind::ExternalName(target) => {
                if !r.endpoint.is_empty() {
                    return Err(NameError);
                }
                out.push(Entry { host: Host::Name(target.clone()), port: 0, key: svc_domain, ttl });
                found = true;
            }
            Kind::ClusterIp(ips) if r.endpoint.is_empty() => {
                if self.cfg.ignore_empty_service && self.addrs(&key).next().is_none() {
                    return Err(NameError);
                }
                for p in &svc.ports {
                    if !match_port(r, p) {
                        continue;
                    }
                    found = true;
                    for ip in ips {
                        out.push(Entry { host: Host::Ip(*ip), port: p.port, key: svc_domain.clone(), ttl });
                    }
                }
            }
            // Headless, or an endpoint name under any Service.
            _ => {
                for (slice, addr) in self.addrs(&key) {
                    let name = self.endpoint_name(addr);
                    if !r.endpoint.is_empty() && r.endpoint != name {
                        continue;
                    }
                    for p in &slice.ports {
                        if !match_port(r, p) {
                            continue;
                        }
                        found = true;
                        out.push(Entry {
                            host: Host::Ip(addr.ip),
                            port: p.port,
                            key: format!("{name}.{svc_domain}"),
                            ttl,
                        });
                    }
                }
            }
        }
        if found { Ok(out) } else { Err(NameError) }
    }

    /// Every ready address of a Service's slices, merged in slice-name order.
    fn addrs<'s>(&'s self, svc_key: &str) -> impl Iterator<Item = (&'s Slice, &'s Addr)> + 's {
        self.store
            .service_slices
            .get(svc_key)
            .into_iter()
            .flatten()
            .filter_map(|k| self.store.slices.get(k))
            .flat_map(|s| s.addrs.iter().map(move |a| (s, a)))
    }

    /// endpointHostname: hostname, else pod name (endpoint_pod_names), else the dashed IP.
    fn endpoint_name(&self, addr: &Addr) -> String {
        if let Some(h) = &addr.hostname {
            return h.clone();
        }
        if self.cfg.endpoint_pod_names
            && let Some(p) = &addr.pod
        {
            return p.clone();
        }
        dashed(addr.ip)
    }

    /// plugin.A / plugin.AAAA, with the CNAME chase for ExternalName.
    fn address(
        &self,
        lower: &str,
        owner: Owner,
        qtype: QType,
        depth: usize,
        answer: &mut Answer,
    ) -> Result<(), NameError> {
        let entries = self.services(lower, qtype)?;
        let mut seen = HashSet::new();
        for e in entries {
            match e.host {
                Host::Name(target) => {
                    if target == lower || depth >= MAX_CHAIN {
                        continue; // x CNAME x, or too long a chain
                    }
                    let cname =
                        Record { owner: owner.clone(), ttl: e.ttl, data: RData::Cname(target.clone()) };
                    if is_subdomain(&target, self.zone) {
                        let mut inner =
                            Answer { answers: vec![], additionals: vec![], chase: None, ..answer.clone() };
                        if self
                            .address(&target, Owner::Name(target.clone()), qtype, depth + 1, &mut inner)
                            .is_ok()
                            && (!inner.answers.is_empty() || inner.chase.is_some())
                        {
                            answer.answers.push(cname);
                            answer.answers.extend(inner.answers);
                            answer.chase = inner.chase;
                        }
                        continue;
                    }
                    answer.chase = Some(Chase { cname, target, qtype });
                }
                Host::Ip(IpAddr::V4(ip)) if qtype == QType::A && seen.insert(IpAddr::V4(ip)) => {
                    answer.answers.push(Record { owner: owner.clone(), ttl: e.ttl, data: RData::A(ip) });
                }
                Host::Ip(IpAddr::V6(ip)) if qtype == QType::Aaaa && seen.insert(IpAddr::V6(ip)) => {
                    answer.answers.push(Record { owner: owner.clone(), ttl: e.ttl, data: RData::Aaaa(ip) });
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn txt(&self, lower: &str, answer: &mut Answer) -> Result<(), NameError> {
        for e in self.services(lower, QType::Txt)? {
            if let Host::Text(t) = e.host {
                answer.answers.push(Record { owner: Owner::Query, ttl: e.ttl, data: RData::Txt(t.into()) });
            }
        }
        Ok(())
    }

    fn cname(&self, lower: &str, answer: &mut Answer) -> Result<(), NameError> {
        let entries = self.services(lower, QType::Cname)?;
        if let Some(Entry { host: Host::Name(target), ttl, .. }) = entries.into_iter().next() {
            answer.answers.push(Record { owner: Owner::Query, ttl, data: RData::Cname(target) });
        }
        Ok(())
    }

    /// plugin.SRV: weight floor(100/n) over every entry, duplicates (target, port) dropped, the
    /// targets' addresses in Additional.
    fn srv(&self, lower: &str, answer: &mut Answer) -> Result<(), NameError> {
        let entries = self.services(lower, QType::Srv)?;
        let weight =
            if entries.is_empty() { 100 } else { ((100.0 / entries.len() as f64).floor() as u16).max(1) };
        let mut seen_srv = HashSet::new();
        let mut seen_addr = HashSet::new();
        for e in entries {
            if e.port == -1 {
                continue;
            }
            let Host::Ip(ip) = e.host else { continue };
            let port = e.port as u16;
            if seen_srv.insert((e.key.clone(), port)) {
                answer.answers.push(Record {
                    owner: Owner::Query,
                    ttl: e.ttl,
                    data: RData::Srv { priority: 0, weight, port, target: e.key.clone() },
                });
            }
            if seen_addr.insert((e.key.clone(), ip)) {
                let data = match ip {
                    IpAddr::V4(v4) => RData::A(v4),
                    IpAddr::V6(v6) => RData::Aaaa(v6),
                };
                answer.additionals.push(Record { owner: Owner::Name(e.key), ttl: e.ttl, data });
            }
        }
        Ok(())
    }

    /// reverse.go: a ClusterIP wins; otherwise one PTR per ready endpoint (per Service) with that IP.
    fn ptr(&self, lower: &str, answer: &mut Answer) -> Result<(), NameError> {
        let Some(ip) = address_from_reverse(lower) else {
            return self.records(lower).map(|_| ());
        };
        let ttl = self.cfg.ttl;
        let zone = self.cfg.primary_zone();
        if let Some(key) = self.store.cluster_ips.get(&ip)
            && let Some(svc) = self.store.services.get(key)
            && self.cfg.namespace_configured(&svc.namespace)
        {
            let target = format!("{}.{}.svc.{zone}", svc.name, svc.namespace);
            answer.answers.push(Record { owner: Owner::Query, ttl, data: RData::Ptr(target) });
            return Ok(());
        }
        let mut seen = HashSet::new();
        for key in self.store.endpoint_ips.get(&ip).into_iter().flatten() {
            let Some(slice) = self.store.slices.get(key) else { continue };
            let Some((svc_name, ns)) = slice.service.split_once('.') else { continue };
            if !self.cfg.namespace_configured(ns) {
                continue;
            }
            for a in slice.addrs.iter().filter(|a| a.ip == ip) {
                let target = format!("{}.{svc_name}.{ns}.svc.{zone}", self.endpoint_name(a));
                if seen.insert(target.clone()) {
                    answer.answers.push(Record { owner: Owner::Query, ttl, data: RData::Ptr(target) });
                }
            }
        }
        if answer.answers.is_empty() { Err(NameError) } else { Ok(()) }
    }

    /// plugin.NS at the apex: one NS per name from nsAddrs, their addresses in Additional.
    fn ns(&self, answer: &mut Answer) -> Result<(), NameError> {
        let mut seen = HashSet::new();
        for (name, e) in self.ns_addrs() {
            let Host::Ip(ip) = e.host else { continue };
            let data = match ip {
                IpAddr::V4(v4) => RData::A(v4),
                IpAddr::V6(v6) => RData::Aaaa(v6),
            };
            answer.additionals.push(Record { owner: Owner::Name(name.clone()), ttl: e.ttl, data });
            if seen.insert(name.clone()) {
                answer.answers.push(Record { owner: Owner::Query, ttl: e.ttl, data: RData::Ns(name) });
            }
        }
        Ok(())
    }

    /// ns.go `isDefaultNS`: the name is `ns.dns.` followed by the zone as the query spells it. The
    /// name is lowercase and the zone in the query's case, so `NS.DNS.Cluster.Local.` is not it
    /// (it is then an invalid name: NXDOMAIN).
    fn is_default_ns(&self, lower: &str) -> bool {
        const DEFAULT_NS: &str = "ns.dns.";
        // strings.Index(name, zone) == len(defaultNSName): the zone's first occurrence.
        lower.starts_with(DEFAULT_NS) && lower.find(self.apex) == Some(DEFAULT_NS.len())
    }

    /// ns.go nsAddrs: for every Service whose ready endpoints hold one of our addresses, its
    /// ClusterIPs named `<svc>.<ns>.svc.<zone>` (or, headless, each ready address of that slice by
    /// its endpoint name); only when no endpoint holds one of our addresses, `ns.dns.<zone>` with
    /// our addresses. An endpoint found under no usable Service gives nothing at all (NODATA).
    fn ns_addrs(&self) -> Vec<(String, Entry)> {
        let ttl = self.cfg.ttl;
        let mut out = Vec::new();
        let mut found_endpoint = false;
        for local in &self.cfg.local_ips {
            for key in self.store.endpoint_ips.get(local).into_iter().flatten() {
                let Some(slice) = self.store.slices.get(key) else { continue };
                found_endpoint = true;
                let Some(svc) = self.store.services.get(&slice.service) else { continue };
                let svc_name = format!("{}.{}.svc.{}", svc.name, svc.namespace, self.zone);
                match &svc.kind {
                    Kind::ClusterIp(ips) => {
                        for ip in ips {
                            out.push((svc_name.clone(), entry_ip(*ip, &svc_name, ttl)));
                        }
                    }
                    Kind::Headless => {
                        for a in &slice.addrs {
                            let name = format!("{}.{svc_name}", self.endpoint_name(a));
                            out.push((name.clone(), entry_ip(a.ip, &name, ttl)));
                        }
                    }
                    // No ClusterIPs to name.
                    Kind::ExternalName(_) => {}
                }
            }
        }
        if !found_endpoint {
            let name = format!("ns.dns.{}", self.zone);
            out = self.cfg.local_ips.iter().map(|ip| (name.clone(), entry_ip(*ip, &name, ttl))).collect();
        }
        out
    }
}

fn entry_ip(ip: IpAddr, key: &str, ttl: u32) -> Entry {
    Entry { host: Host::Ip(ip), port: 0, key: key.to_string(), ttl }
}

/// matchPortAndProtocol: an empty request part matches anything; comparisons ignore case.
fn match_port(r: &Request<'_>, p: &Port) -> bool {
    (r.port.is_empty() || r.port == p.name) && (r.protocol.is_empty() || r.protocol == p.protocol)
}

/// Whether `name` is `zone` or below it (both lowercase, absolute; `.` holds everything).
pub fn is_subdomain(name: &str, zone: &str) -> bool {
    zone == "."
        || name == zone
        || (name.ends_with(zone) && name.as_bytes().get(name.len() - zone.len() - 1) == Some(&b'.'))
}

/// `in-addr.arpa.` or `ip6.arpa.` if `name` is under one.
fn reverse_kind(name: &str) -> Option<&'static str> {
    if is_subdomain(name, "in-addr.arpa.") {
        Some("in-addr.arpa.")
    } else if is_subdomain(name, "ip6.arpa.") {
        Some("ip6.arpa.")
    } else {
        None
    }
}

/// The address a full reverse name stands for (`4.3.2.1.in-addr.arpa.` → 1.2.3.4); None for a
/// partial name.
pub fn address_from_reverse(lower: &str) -> Option<IpAddr> {
    if let Some(rest) = lower.strip_suffix(".in-addr.arpa.") {
        let mut octets: Vec<u8> = rest.split('.').map(|o| o.parse().ok()).collect::<Option<_>>()?;
        if octets.len() != 4 {
            return None;
        }
        octets.reverse();
        return Some(IpAddr::V4(Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3])));
    }
    let rest = lower.strip_suffix(".ip6.arpa.")?;
    let nibbles: Vec<u8> = rest
        .split('.')
        .map(|n| if n.len() == 1 { u8::from_str_radix(n, 16).ok() } else { None })
        .collect::<Option<_>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, pair) in nibbles.rchunks(2).enumerate() {
        // rchunks from the end: the last two nibbles are the first byte, high nibble last.
        bytes[i] = (pair[1] << 4) | pair[0];
    }
    Some(IpAddr::V6(Ipv6Addr::from(bytes)))
}

/// The dashed form of an IP (`10-244-1-5`; IPv6 `:` → `-`, a trailing `-` gets a `0`).
pub fn dashed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => {
            let mut s = v6.to_string().replace(':', "-");
            if s.ends_with('-') {
                s.push('0');
            }
            s
        }
    }
}

fn parse_service(svc: &Service) -> Option<Svc> {
    let name = svc.metadata.name.as_deref()?.to_ascii_lowercase();
    let namespace = svc.metadata.namespace.as_deref()?.to_ascii_lowercase();
    let spec = svc.spec.as_ref()?;
    let kind = if spec.type_.as_deref() == Some("ExternalName") {
        let target = spec.external_name.as_deref()?.trim_end_matches('.').to_ascii_lowercase();
        Kind::ExternalName(format!("{target}."))
    } else if spec.cluster_ip.as_deref() == Some("None") {
        Kind::Headless
    } else {
        let mut ips: Vec<IpAddr> =
            spec.cluster_ips.iter().flatten().filter_map(|ip| ip.parse().ok()).collect();
        if ips.is_empty() {
            ips.extend(spec.cluster_ip.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok()));
        }
        Kind::ClusterIp(ips)
    };
    let ports = spec
        .ports
        .iter()
        .flatten()
        .map(|p| Port {
            name: p.name.clone().unwrap_or_default().to_ascii_lowercase(),
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()).to_ascii_lowercase(),
            port: p.port,
        })
        .collect();
    Some(Svc { name, namespace, kind, ports })
}

fn slice_key(slice: &EndpointSlice) -> Option<String> {
    Some(format!("{}/{}", slice.metadata.namespace.as_deref()?, slice.metadata.name.as_deref()?))
}

fn parse_slice(slice: &EndpointSlice) -> Option<Slice> {
    let ns = slice.metadata.namespace.as_deref()?.to_ascii_lowercase();
    let svc = slice.metadata.labels.as_ref()?.get("kubernetes.io/service-name")?.to_ascii_lowercase();
    if slice.address_type == "FQDN" {
        return None;
    }
    let addrs = slice
        .endpoints
        .iter()
        // endpointsliceReady: nil counts as ready.
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .flat_map(|e| {
            let hostname = e.hostname.clone().filter(|h| !h.is_empty()).map(|h| h.to_ascii_lowercase());
            let pod = e
                .target_ref
                .as_ref()
                .filter(|t| t.kind.as_deref() == Some("Pod"))
                .and_then(|t| t.name.clone())
                .map(|n| n.to_ascii_lowercase());
            e.addresses
                .iter()
                .filter_map(|a| a.parse().ok())
                .map(move |ip| Addr { ip, hostname: hostname.clone(), pod: pod.clone() })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut ports: Vec<Port> = slice
        .ports
        .iter()
        .flatten()
        .map(|p| Port {
            name: p.name.clone().unwrap_or_default().to_ascii_lowercase(),
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()).to_ascii_lowercase(),
            port: p.port.unwrap_or(-1),
        })
        .collect();
    if ports.is_empty() {
        // CoreDNS's sentinel: addresses still answer A queries, but give no SRV.
        ports.push(Port { name: String::new(), protocol: String::new(), port: -1 });
    }
    Some(Slice { service: format!("{svc}.{ns}"), addrs, ports })
}

#[cfg(test)]
mod tests;
