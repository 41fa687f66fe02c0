//! NetworkPolicy verdicts: would the CNI let this pod's new connection through?
//!
//! In a real cluster the network plugin (Calico, Cilium, kube-router, …) turns NetworkPolicies
//! into packet filters; the apiserver only stores them. netlab's pod IPs sit on no interface, so
//! the node-agent asks this model instead, once per new connection (the replies of an allowed
//! connection ride on conntrack and are never asked about). A connection needs two verdicts, as
//! it does on a real cluster: [`Direction::Egress`] at the source pod and [`Direction::Ingress`]
//! at the destination pod. Callers pass the destination *after* Service DNAT, which is what
//! Calico and Cilium match policies on.
//!
//! The semantics are those of `networking.k8s.io/v1`, as the API's field docs state them:
//! - A pod is isolated for a direction once any policy of its namespace selects it
//!   (`spec.podSelector`, `{}` = every pod) and lists that direction in `spec.policyTypes`.
//!   Absent (or empty) `policyTypes` means Ingress, plus Egress when `spec.egress` has rules,
//!   exactly as the apiserver's `SetDefaults_NetworkPolicySpec` fills it in.
//! - An isolated pod accepts what the union of the selecting policies' rules allows; a rule with
//!   no peers allows every peer, a rule with no ports every port, and a policy with no rules for
//!   a direction it lists allows nothing. Ingress from the pod's own node is always allowed.
//! - Peers: `podSelector` alone picks pods of the policy's namespace, `namespaceSelector` alone
//!   every pod of the matching namespaces, both in one element the pods matching both (AND; two
//!   elements are an OR), `ipBlock` any address in `cidr` and in none of `except` (pods included,
//!   by their IP). Selectors never match a peer that is not a pod.
//! - Ports: `protocol` defaults to TCP; a number, a number range up to `endPort`, a container
//!   port name (looked up on the *destination* pod, so a name never matches a non-pod
//!   destination), or nothing at all (every port of that protocol).
//!
//! Everything that needs parsing (selectors, CIDRs, ports) is compiled once by
//! [`Policies::upsert`], which rejects what the apiserver's validation rejects, with the same field
//! paths and wording. [`Policies::verdict`] then walks the policies of one namespace without
//! allocating unless it denies.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::Protocol;

/// A container port with a name, which a policy's `ports[].port` may refer to instead of a
/// number (`port: http`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamedPort {
    /// The container port's `name`.
    pub name: String,
    /// The container port's `containerPort`.
    pub port: u16,
    /// The container port's `protocol`: a name only resolves for the policy port's protocol.
    pub protocol: Protocol,
}

/// What policy evaluation needs to know about one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodMeta {
    /// The pod's namespace: picks the policies that can select it, and is what
    /// `namespaceSelector` peers match through the namespace's labels.
    pub namespace: String,
    /// The pod's name, for messages.
    pub name: String,
    /// The pod's labels, matched by `podSelector`s.
    pub labels: BTreeMap<String, String>,
    /// The pod's IP. Evaluation itself matches `ipBlock`s on the `peer_ip` argument of
    /// [`Policies::verdict`] (a dual-stack pod has two); this is the caller's convenience.
    pub ip: IpAddr,
    /// The named ports of all the pod's containers, for policies that name a port.
    pub ports: Vec<NamedPort>,
}

/// Which side of a connection a verdict is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Traffic into the subject pod: `spec.ingress`, peers in `from`.
    Ingress,
    /// Traffic out of the subject pod: `spec.egress`, peers in `to`.
    Egress,
}

/// Lookup of namespace labels, for `namespaceSelector` peers (the node-agent watches Namespaces).
pub trait Namespaces {
    /// The labels of `namespace`; None for a namespace not (yet) known, which then matches as a
    /// namespace without labels.
    fn labels(&self, namespace: &str) -> Option<&BTreeMap<String, String>>;
}

/// Every NetworkPolicy the node knows, compiled (selectors, CIDRs and ports parsed once) and
/// indexed by namespace, since only a pod's own namespace's policies can select it.
#[derive(Debug, Default)]
pub struct Policies {
    /// namespace → policy name → compiled policy. The inner map is ordered so that verdicts are
    /// deterministic (the first allowing policy by name wins) and `selected_by` comes out sorted.
    by_namespace: HashMap<String, BTreeMap<String, Compiled>>,
}

/// The outcome of a policy check, with the reason, for spans and `curl -v` style messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No policy selects the subject for this direction: default allow.
    NotIsolated {
        /// The direction that was checked.
        direction: Direction,
    },
    /// Allowed by rule `rule` of policy `policy`.
    Allowed {
        /// The direction that was checked; names the rule list `rule` indexes.
        direction: Direction,
        /// `namespace/name` of the first policy (by name) with an allowing rule.
        policy: Arc<str>,
        /// Index of the allowing rule in that policy's `spec.ingress` or `spec.egress`.
        rule: usize,
    },
    /// Ingress from the pod's own node, which policies never block.
    FromNode,
    /// The subject is isolated for this direction and no rule allowed the connection.
    Denied {
        /// The direction that was checked.
        direction: Direction,
        /// `namespace/name` of every policy that selects the subject for this direction, sorted.
        selected_by: Vec<Arc<str>>,
    },
}

/// Why [`Policies::upsert`] refused a policy: the first field the apiserver's validation would
/// also reject, rendered as kube-apiserver renders a `field.Error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A value that must be given is missing (`Required value`).
    Required {
        /// Path of the field, e.g. `spec.ingress[0].from[0]`.
        field: String,
        /// What is missing, e.g. `must specify a peer`; may be empty, as upstream's.
        detail: &'static str,
    },
    /// A value is malformed (`Invalid value`).
    Invalid {
        /// Path of the field, e.g. `spec.podSelector.matchExpressions[0].operator`.
        field: String,
        /// The offending value: a JSON string or number, printed as upstream prints it.
        value: Value,
        /// What is wrong with it, e.g. `not a valid selector operator`.
        detail: &'static str,
    },
    /// A well-formed value that is not allowed here (`Forbidden`).
    Forbidden {
        /// Path of the field.
        field: String,
        /// Why, e.g. `may not specify both ipBlock and another peer`.
        detail: &'static str,
    },
    /// A value outside an enumeration (`Unsupported value`).
    NotSupported {
        /// Path of the field, e.g. `spec.ingress[0].ports[0].protocol`.
        field: String,
        /// The offending value.
        value: String,
        /// The accepted values, in upstream's order.
        supported: &'static [&'static str],
    },
}

// === impl Direction ===

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ingress => "ingress",
            Self::Egress => "egress",
        })
    }
}

// === impl Namespaces ===

impl Namespaces for BTreeMap<String, BTreeMap<String, String>> {
    fn labels(&self, namespace: &str) -> Option<&BTreeMap<String, String>> {
        self.get(namespace)
    }
}

impl<S: BuildHasher> Namespaces for HashMap<String, BTreeMap<String, String>, S> {
    fn labels(&self, namespace: &str) -> Option<&BTreeMap<String, String>> {
        self.get(namespace)
    }
}

// === impl Policies ===

impl Policies {
    /// No policies: every pod is non-isolated.
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs `policy`, replacing the one with the same namespace and name. A policy that does
    /// not compile (bad selector operator, bad CIDR, bad port, …) is refused with the first bad
    /// field, and the policies stay exactly as they were (a previous version stays installed).
    pub fn upsert(&mut self, policy: &NetworkPolicy) -> Result<(), PolicyError> {
        let namespace = policy.metadata.namespace.as_deref().unwrap_or_default();
        if namespace.is_empty() {
            return Err(PolicyError::Required { field: "metadata.namespace".into(), detail: "" });
        }
        let name = policy.metadata.name.as_deref().unwrap_or_default();
        if name.is_empty() {
            return Err(PolicyError::Required {
                field: "metadata.name".into(),
                detail: "name or generateName is required",
            });
        }
        let compiled = Compiled::new(namespace, name, policy)?;
        self.by_namespace.entry(namespace.to_string()).or_default().insert(name.to_string(), compiled);
        Ok(())
    }

    /// Removes policy `namespace/name`; false if there was none.
    pub fn remove(&mut self, namespace: &str, name: &str) -> bool {
        let Some(policies) = self.by_namespace.get_mut(namespace) else {
            return false;
        };
        let removed = policies.remove(name).is_some();
        if policies.is_empty() {
            self.by_namespace.remove(namespace);
        }
        removed
    }

    /// How many policies are installed, across namespaces.
    pub fn len(&self) -> usize {
        self.by_namespace.values().map(BTreeMap::len).sum()
    }

    /// True when no policy is installed, so that every pod is non-isolated.
    pub fn is_empty(&self) -> bool {
        self.by_namespace.is_empty()
    }

    /// Would `direction` traffic of `subject` to/from `peer_ip` on `port`/`protocol` be allowed?
    ///
    /// For [`Direction::Ingress`] the subject is the destination pod and the peer the source; for
    /// [`Direction::Egress`] the subject is the source pod and the peer the destination.
    /// `peer_pod` is the pod behind `peer_ip`, None for non-pod addresses (nodes, the outside).
    /// `port` is the destination port. `from_own_node` marks ingress from the subject's own node,
    /// which is always allowed; it is ignored for egress.
    #[allow(clippy::too_many_arguments)] // One flat call per connection, as the node-agent has
    // these values at hand; a parameter struct would be built only to be taken apart here.
    pub fn verdict(
        &self,
        direction: Direction,
        subject: &PodMeta,
        peer_ip: IpAddr,
        peer_pod: Option<&PodMeta>,
        port: u16,
        protocol: Protocol,
        from_own_node: bool,
        namespaces: &dyn Namespaces,
    ) -> Verdict {
        let Some(policies) = self.by_namespace.get(subject.namespace.as_str()) else {
            return Verdict::NotIsolated { direction };
        };
        let flow = Flow {
            policy_namespace: &subject.namespace,
            peer_ip,
            peer_pod,
            port,
            protocol,
            // Named ports resolve on the destination: the subject for ingress, the peer for egress.
            destination_ports: match direction {
                Direction::Ingress => Some(&subject.ports),
                Direction::Egress => peer_pod.map(|p| &p.ports),
            },
            namespaces,
        };
        let mut isolated = false;
        for policy in policies.values() {
            let Some(rules) = policy.selects(direction, subject) else {
                continue;
            };
            if direction == Direction::Ingress && from_own_node {
                return Verdict::FromNode;
            }
            isolated = true;
            if let Some(rule) = rules.iter().position(|r| r.matches(&flow)) {
                return Verdict::Allowed { direction, policy: policy.key.clone(), rule };
            }
        }
        if !isolated {
            return Verdict::NotIsolated { direction };
        }
        let selected_by = policies
            .values()
            .filter(|p| p.selects(direction, subject).is_some())
            .map(|p| p.key.clone())
            .collect();
        Verdict::Denied { direction, selected_by }
    }
}

// === impl Verdict ===

impl Verdict {
    /// Whether the connection may pass in this direction.
    pub fn allowed(&self) -> bool {
        !matches!(self, Self::Denied { .. })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotIsolated { direction } => {
                write!(f, "not isolated: no policy selects the pod for {direction}")
            }
            Self::Allowed { direction, policy, rule } => {
                write!(f, "allowed by {policy} ({direction} rule {rule})")
            }
            Self::FromNode => f.write_str("allowed: ingress from the pod's own node"),
            Self::Denied { direction, selected_by } => {
                write!(f, "denied: no {direction} rule allowed it (selected by ")?;
                for (i, p) in selected_by.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(p)?;
                }
                f.write_str(")")
            }
        }
    }
}

// === impl PolicyError ===

// Written by hand rather than by `#[error]`: an empty detail drops its `: `, as Go's
// `field.Error.ErrorBody` does.
impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (field, body, detail) = match self {
            Self::Required { field, detail } => (field, "Required value".to_string(), *detail),
            Self::Invalid { field, value, detail } => (field, format!("Invalid value: {value}"), *detail),
            Self::Forbidden { field, detail } => (field, "Forbidden".to_string(), *detail),
            Self::NotSupported { field, value, supported } => {
                let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
                write!(f, "{field}: Unsupported value: {value:?}: supported values: ")?;
                return f.write_str(&list.join(", "));
            }
        };
        write!(f, "{field}: {body}")?;
        if !detail.is_empty() {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Compiled form
// ---------------------------------------------------------------------------------------------

/// One policy, ready to evaluate.
#[derive(Debug)]
struct Compiled {
    /// `namespace/name`, shared into verdicts without allocating.
    key: Arc<str>,
    /// `spec.podSelector`: which pods of the namespace the policy applies to.
    pod_selector: Selector,
    /// The ingress rules, or None when `policyTypes` leaves Ingress out (the pod is then not
    /// isolated for ingress by this policy, whatever `spec.ingress` says).
    ingress: Option<Vec<Rule>>,
    /// The egress rules, or None when `policyTypes` leaves Egress out.
    egress: Option<Vec<Rule>>,
}

/// One ingress or egress rule: a peer in `peers` AND a port in `ports`; empty lists match all.
#[derive(Debug)]
struct Rule {
    peers: Vec<Peer>,
    ports: Vec<PortMatch>,
}

/// One element of `from`/`to`.
#[derive(Debug)]
enum Peer {
    /// `podSelector` and/or `namespaceSelector`: matches pods only.
    Pods {
        /// `namespaceSelector`; None means the policy's own namespace.
        namespaces: Option<Selector>,
        /// `podSelector`; None means every pod of the selected namespaces.
        pods: Option<Selector>,
    },
    /// `ipBlock`: any address in `cidr` and in none of `except`.
    Block { cidr: IpNet, except: Vec<IpNet> },
}

/// One element of `ports`.
#[derive(Debug)]
struct PortMatch {
    protocol: Protocol,
    port: PortSpec,
}

#[derive(Debug)]
enum PortSpec {
    /// No `port`: every port of the protocol.
    Any,
    /// `port` (and `endPort`), inclusive; a single port has both ends equal.
    Range(u16, u16),
    /// A container port name, resolved on the destination pod.
    Named(String),
}

/// A compiled `LabelSelector`: every requirement must hold; none at all matches everything.
#[derive(Debug)]
struct Selector {
    requirements: Vec<Requirement>,
}

#[derive(Debug)]
struct Requirement {
    key: String,
    op: Operator,
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// One connection as the rules see it, bundled once per verdict.
struct Flow<'a> {
    /// The namespace of the policies being evaluated (the subject's).
    policy_namespace: &'a str,
    peer_ip: IpAddr,
    peer_pod: Option<&'a PodMeta>,
    port: u16,
    protocol: Protocol,
    /// The destination pod's named ports; None when the destination is not a pod.
    destination_ports: Option<&'a Vec<NamedPort>>,
    namespaces: &'a dyn Namespaces,
}

/// The labels of a namespace the caller does not know.
static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

// === impl Compiled ===

impl Compiled {
    fn new(namespace: &str, name: &str, policy: &NetworkPolicy) -> Result<Self, PolicyError> {
        let no_spec = NetworkPolicySpec::default();
        let spec = policy.spec.as_ref().unwrap_or(&no_spec);
        // A missing podSelector is Go's zero LabelSelector: every pod of the namespace.
        let pod_selector = match &spec.pod_selector {
            Some(sel) => Selector::new(sel, "spec.podSelector")?,
            None => Selector { requirements: Vec::new() },
        };
        let ingress = spec
            .ingress
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, r)| {
                Rule::new(r.from.as_deref(), r.ports.as_deref(), &format!("spec.ingress[{i}]"), "from")
            })
            .collect::<Result<Vec<_>, _>>()?;
        let egress = spec
            .egress
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, r)| Rule::new(r.to.as_deref(), r.ports.as_deref(), &format!("spec.egress[{i}]"), "to"))
            .collect::<Result<Vec<_>, _>>()?;
        let (mut has_ingress, mut has_egress) = (false, false);
        match spec.policy_types.as_deref() {
            // `SetDefaults_NetworkPolicySpec`: Ingress always, Egress when there are egress rules.
            None | Some([]) => {
                has_ingress = true;
                has_egress = !egress.is_empty();
            }
            Some(types) => {
                for (i, t) in types.iter().enumerate() {
                    match t.as_str() {
                        "Ingress" => has_ingress = true,
                        "Egress" => has_egress = true,
                        _ => {
                            return Err(PolicyError::NotSupported {
                                field: format!("spec.policyTypes[{i}]"),
                                value: t.clone(),
                                supported: &["Ingress", "Egress"],
                            });
                        }
                    }
                }
            }
        }
        Ok(Compiled {
            key: format!("{namespace}/{name}").into(),
            pod_selector,
            ingress: has_ingress.then_some(ingress),
            egress: has_egress.then_some(egress),
        })
    }

    /// The rules this policy applies to `subject` for `direction`, or None when it does not
    /// select the subject for that direction.
    fn selects(&self, direction: Direction, subject: &PodMeta) -> Option<&[Rule]> {
        let rules = match direction {
            Direction::Ingress => self.ingress.as_deref()?,
            Direction::Egress => self.egress.as_deref()?,
        };
        self.pod_selector.matches(&subject.labels).then_some(rules)
    }
}

// === impl Rule ===

impl Rule {
    /// `path` is the rule's field path, `peers_field` `from` or `to`.
    fn new(
        peers: Option<&[NetworkPolicyPeer]>,
        ports: Option<&[NetworkPolicyPort]>,
        path: &str,
        peers_field: &str,
    ) -> Result<Self, PolicyError> {
        let ports = ports
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, p)| PortMatch::new(p, &format!("{path}.ports[{i}]")))
            .collect::<Result<_, _>>()?;
        let peers = peers
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, p)| Peer::new(p, &format!("{path}.{peers_field}[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(Rule { peers, ports })
    }

    fn matches(&self, flow: &Flow<'_>) -> bool {
        (self.ports.is_empty() || self.ports.iter().any(|p| p.matches(flow)))
            && (self.peers.is_empty() || self.peers.iter().any(|p| p.matches(flow)))
    }
}

// === impl Peer ===

impl Peer {
    fn new(peer: &NetworkPolicyPeer, path: &str) -> Result<Self, PolicyError> {
        // `ValidateNetworkPolicyPeer`: exactly one kind of peer; the two selectors count as two
        // but may be combined, an ipBlock may not.
        let selectors =
            usize::from(peer.pod_selector.is_some()) + usize::from(peer.namespace_selector.is_some());
        let pods = peer
            .pod_selector
            .as_ref()
            .map(|s| Selector::new(s, &format!("{path}.podSelector")))
            .transpose()?;
        let namespaces = peer
            .namespace_selector
            .as_ref()
            .map(|s| Selector::new(s, &format!("{path}.namespaceSelector")))
            .transpose()?;
        match &peer.ip_block {
            Some(block) => {
                let peer = Self::block(block, &format!("{path}.ipBlock"))?;
                if selectors > 0 {
                    return Err(PolicyError::Forbidden {
                        field: path.to_string(),
                        detail: "may not specify both ipBlock and another peer",
                    });
                }
                Ok(peer)
            }
            None if selectors == 0 => {
                Err(PolicyError::Required { field: path.to_string(), detail: "must specify a peer" })
            }
            None => Ok(Peer::Pods { namespaces, pods }),
        }
    }

    /// `ValidateIPBlock`: a CIDR, and excepts that are strict subsets of it.
    fn block(block: &IPBlock, path: &str) -> Result<Self, PolicyError> {
        if block.cidr.is_empty() {
            return Err(PolicyError::Required { field: format!("{path}.cidr"), detail: "" });
        }
        let cidr = parse_cidr_sloppy(&block.cidr).ok_or_else(|| PolicyError::Invalid {
            field: format!("{path}.cidr"),
            value: Value::from(block.cidr.as_str()),
            detail: VALID_CIDR_MSG,
        })?;
        let mut except = Vec::new();
        for (i, e) in block.except.iter().flatten().enumerate() {
            let invalid = |detail| PolicyError::Invalid {
                field: format!("{path}.except[{i}]"),
                value: Value::from(e.as_str()),
                detail,
            };
            let net = parse_cidr_sloppy(e).ok_or_else(|| invalid(VALID_CIDR_MSG))?;
            if !cidr.contains(&net.network()) || cidr.prefix_len() >= net.prefix_len() {
                return Err(invalid("must be a strict subset of `cidr`"));
            }
            except.push(net);
        }
        Ok(Peer::Block { cidr, except })
    }

    fn matches(&self, flow: &Flow<'_>) -> bool {
        match self {
            Peer::Block { cidr, except } => {
                cidr.contains(&flow.peer_ip) && !except.iter().any(|e| e.contains(&flow.peer_ip))
            }
            Peer::Pods { namespaces, pods } => {
                let Some(peer) = flow.peer_pod else {
                    return false;
                };
                let namespace_ok = match namespaces {
                    None => peer.namespace == flow.policy_namespace,
                    Some(sel) if sel.requirements.is_empty() => true,
                    Some(sel) => sel.matches(flow.namespaces.labels(&peer.namespace).unwrap_or(&NO_LABELS)),
                };
                namespace_ok && pods.as_ref().is_none_or(|sel| sel.matches(&peer.labels))
            }
        }
    }
}

// === impl PortMatch ===

impl PortMatch {
    /// `ValidateNetworkPolicyPort`, then compile.
    fn new(port: &NetworkPolicyPort, path: &str) -> Result<Self, PolicyError> {
        let protocol = match port.protocol.as_deref() {
            None => Protocol::Tcp,
            Some(p) => Protocol::parse(p).ok_or_else(|| PolicyError::NotSupported {
                field: format!("{path}.protocol"),
                value: p.to_string(),
                supported: &["TCP", "UDP", "SCTP"],
            })?,
        };
        let invalid = |field: &str, value: Value, detail| PolicyError::Invalid {
            field: format!("{path}.{field}"),
            value,
            detail,
        };
        let valid_port = |field: &str, n: i32| {
            u16::try_from(n)
                .ok()
                .filter(|&n| n != 0)
                .ok_or_else(|| invalid(field, Value::from(n), "must be between 1 and 65535, inclusive"))
        };
        let spec = match (&port.port, port.end_port) {
            (None, None) => PortSpec::Any,
            (None, Some(end)) => {
                return Err(invalid(
                    "endPort",
                    Value::from(end),
                    "may not be specified when `port` is not specified",
                ));
            }
            (Some(IntOrString::String(name)), end) => {
                if let Some(end) = end {
                    return Err(invalid(
                        "endPort",
                        Value::from(end),
                        "may not be specified when `port` is non-numeric",
                    ));
                }
                PortSpec::Named(name.clone())
            }
            (Some(IntOrString::Int(n)), end) => {
                let start = valid_port("port", *n)?;
                let end = match end {
                    None => start,
                    // Upstream echoes `port`, not `endPort`, in this message.
                    Some(end) if end < *n => {
                        return Err(invalid(
                            "endPort",
                            Value::from(*n),
                            "must be greater than or equal to `port`",
                        ));
                    }
                    Some(end) => valid_port("endPort", end)?,
                };
                PortSpec::Range(start, end)
            }
        };
        Ok(PortMatch { protocol, port: spec })
    }

    fn matches(&self, flow: &Flow<'_>) -> bool {
        if self.protocol != flow.protocol {
            return false;
        }
        match &self.port {
            PortSpec::Any => true,
            PortSpec::Range(lo, hi) => (*lo..=*hi).contains(&flow.port),
            PortSpec::Named(name) => flow.destination_ports.is_some_and(|ports| {
                ports.iter().any(|p| p.port == flow.port && p.protocol == self.protocol && p.name == *name)
            }),
        }
    }
}

// === impl Selector ===

impl Selector {
    /// `ValidateLabelSelector`'s operator checks, then compile. `matchLabels` entries become
    /// `In` requirements with one value, as the API defines them.
    fn new(sel: &LabelSelector, path: &str) -> Result<Self, PolicyError> {
        let mut requirements: Vec<Requirement> = sel
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| Requirement { key: k.clone(), op: Operator::In, values: vec![v.clone()] })
            .collect();
        for (i, expr) in sel.match_expressions.iter().flatten().enumerate() {
            let p = format!("{path}.matchExpressions[{i}]");
            let values = expr.values.clone().unwrap_or_default();
            let op = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(PolicyError::Invalid {
                        field: format!("{p}.operator"),
                        value: Value::from(other),
                        detail: "not a valid selector operator",
                    });
                }
            };
            match op {
                Operator::In | Operator::NotIn if values.is_empty() => {
                    return Err(PolicyError::Required {
                        field: format!("{p}.values"),
                        detail: "must be specified when `operator` is 'In' or 'NotIn'",
                    });
                }
                Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                    return Err(PolicyError::Forbidden {
                        field: format!("{p}.values"),
                        detail: "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    });
                }
                _ => {}
            }
            requirements.push(Requirement { key: expr.key.clone(), op, values });
        }
        Ok(Selector { requirements })
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| {
            let value = labels.get(&r.key);
            match r.op {
                Operator::In => value.is_some_and(|v| r.values.contains(v)),
                // As upstream's `labels.Requirement`: a missing key is "not in" any set.
                Operator::NotIn => value.is_none_or(|v| !r.values.contains(v)),
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// CIDRs
// ---------------------------------------------------------------------------------------------

/// `validation.IsValidCIDR`'s message.
const VALID_CIDR_MSG: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/// `netutils.ParseCIDRSloppy`, as the apiserver validated the policy with: IPv4 octets may carry
/// leading zeros, host bits are dropped, and an IPv4-mapped IPv6 prefix is the IPv4 prefix.
fn parse_cidr_sloppy(s: &str) -> Option<IpNet> {
    let (ip, bits) = s.split_once('/')?;
    if bits.is_empty() || bits.len() > 3 || !bits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let bits: u8 = bits.parse().ok()?;
    let net = match ip.parse::<IpAddr>() {
        // A prefix on an IPv4-mapped address counts IPv6 bits, as Go's mask does.
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
            IpNet::V4(Ipv4Net::new(v6.to_ipv4_mapped()?, bits.checked_sub(96)?).ok()?)
        }
        Ok(ip) => IpNet::new(ip, bits).ok()?,
        Err(_) => {
            let mut octets = [0u8; 4];
            let mut parts = ip.split('.');
            for o in &mut octets {
                let p = parts.next()?;
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                *o = p.parse().ok()?;
            }
            if parts.next().is_some() {
                return None;
            }
            IpNet::new(IpAddr::from(octets), bits).ok()?
        }
    };
    Some(net.trunc())
}

#[cfg(test)]
mod tests;
