//! The node's iptables: the `filter` and `nat` tables as kube-proxy programs them with
//! `iptables-restore`, and the walk a real kernel does through them for the first packet of a
//! connection.
//!
//! Rules are kept as the text iptables-save prints (so `netlab node iptables-save` shows exactly
//! what was written) next to a parsed form the walk uses. A real kernel checks KUBE-SERVICES
//! rule by rule, which is why kube-proxy's iptables mode slows down with 10,000 Services; here
//! long chains get an index from (destination IP, protocol, port) to the rules that can match,
//! so a lookup costs the same at 30,000 Services as at 10 while the walk still visits rules in
//! order and gives the same answer as the linear scan (see `indexed_walk_equals_linear_walk`).

use std::{
    collections::{BTreeSet, HashMap},
    fmt::Write as _,
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use ipnet::IpNet;

use crate::Protocol;

/// FxHash (rustc's hasher): the maps here are keyed by chain names and (IP, protocol, port)
/// written by kube-proxy, not by an attacker, so SipHash's DoS resistance buys nothing and its
/// cost showed up first in the new-connection benchmark.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A HashMap with [`FxHasher`].
pub type FxHashMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;

/// Built-in chains per table, in the order iptables-save prints them.
const FILTER_BUILTINS: &[&str] = &["INPUT", "FORWARD", "OUTPUT"];
const NAT_BUILTINS: &[&str] = &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"];
/// Chains with more rules than this get a destination index.
const INDEX_THRESHOLD: usize = 16;
/// Jumps deeper than this are a loop (the kernel refuses loops at load time; we stop the walk).
const MAX_DEPTH: usize = 32;

/// A table name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableName {
    /// `*filter`.
    Filter,
    /// `*nat`.
    Nat,
}

/// Why a restore was refused, naming the line as iptables-restore does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// A line could not be parsed.
    #[error("iptables-restore: line {line} failed: {message}")]
    Line {
        /// 1-based line number in the input.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// A rule jumps to a chain that does not exist after the restore.
    #[error("iptables-restore: line {line} failed: Couldn't load target `{chain}':No such file or directory")]
    NoSuchChain {
        /// 1-based line number.
        line: usize,
        /// The missing chain.
        chain: String,
    },
    /// The input ended inside a table.
    #[error("iptables-restore: COMMIT expected at line {0}")]
    NoCommit(usize),
}

/// What a rule matches. Every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Match {
    /// `-p tcp` / `-p udp` / `-p sctp`.
    pub protocol: Option<Protocol>,
    /// `[!] -s CIDR`.
    pub source: Option<(bool, IpNet)>,
    /// `[!] -d CIDR`.
    pub destination: Option<(bool, IpNet)>,
    /// `--dport N`.
    pub dport: Option<u16>,
    /// `-m statistic --mode random --probability P`.
    pub probability: Option<f64>,
    /// `-m recent --name N --rcheck --seconds S --reap` or `--set`.
    pub recent: Option<Recent>,
    /// `-m addrtype --dst-type LOCAL`.
    pub dst_local: bool,
    /// `-m addrtype [!] --src-type LOCAL`: the source is (or is not) one of the node's addresses.
    pub src_local: Option<bool>,
    /// `-m mark [!] --mark VALUE/MASK`.
    pub mark: Option<(bool, u32, u32)>,
    /// `-m conntrack --ctstate NEW` (the walk only sees new connections, so it always matches).
    pub ctstate_new: bool,
    /// `-m comment --comment TEXT`.
    pub comment: Option<Arc<str>>,
}

/// The `recent` match: ClientIP session affinity.
#[derive(Debug, Clone, PartialEq)]
pub struct Recent {
    /// The list's name (kube-proxy uses the endpoint chain's name).
    pub name: String,
    /// `--set` (record the source) versus `--rcheck` (test it).
    pub set: bool,
    /// `--seconds`: how recent a hit must be.
    pub seconds: Option<u64>,
}

/// What a matching rule does.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// `-j CHAIN`.
    Jump(Arc<str>),
    /// `-j DNAT --to-destination IP:PORT`.
    Dnat(SocketAddr),
    /// `-j REJECT`: the client gets an ICMP port-unreachable (connection refused).
    Reject,
    /// `-j DROP`: silence (the client times out).
    Drop,
    /// `-j ACCEPT`.
    Accept,
    /// `-j RETURN`.
    Return,
    /// `-j MARK --or-mark V` / `--xor-mark V` / `--set-xmark V/M`.
    Mark {
        /// OR this in.
        or: u32,
        /// XOR this in.
        xor: u32,
    },
    /// `-j MASQUERADE`: source NAT to the node's address.
    Masquerade,
}

/// One rule: the text after `-A CHAIN ` and its parsed form.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule spec as written (iptables-save prints it back).
    pub spec: String,
    /// Its matches.
    pub matches: Match,
    /// Its target.
    pub target: Target,
}

/// A chain: its rules and, for a built-in chain, its policy.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    /// Rules in order (shared: a restore that rewrites a chain reuses unchanged rules).
    pub rules: Vec<Arc<Rule>>,
    /// `ACCEPT` for built-ins; None for user chains (`-`).
    pub policy: Option<&'static str>,
    /// (destination, protocol, port) → indices of rules that can only match that destination.
    index: Option<ChainIndex>,
}

#[derive(Debug, Clone, Default)]
struct ChainIndex {
    exact: FxHashMap<(IpAddr, Protocol, u16), Vec<u32>>,
    /// Rules the index cannot place (no exact destination): always candidates.
    rest: Vec<u32>,
}

/// One table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    chains: FxHashMap<Arc<str>, Chain>,
}

/// The filter and nat tables of one node.
#[derive(Debug, Clone)]
pub struct Tables {
    filter: Table,
    nat: Table,
}

/// The first packet of a connection, as the walk sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Transport protocol.
    pub protocol: Protocol,
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
}

/// Where the packet entered the node: from a pod (PREROUTING, then FORWARD) or from the node
/// itself (OUTPUT), which decides the built-in chains the walk starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// From a pod's interface, or from the wire.
    Forwarded,
    /// Originated by the node (host-network pods, probes).
    Local,
}

/// State the walk reads and writes besides the rules: the `recent` lists and randomness.
pub trait WalkEnv {
    /// A uniform random number in [0, 1) (the `statistic` match).
    fn random(&mut self) -> f64;
    /// Seconds since some fixed start (the `recent` match).
    fn now(&self) -> u64;
    /// Whether `ip` is one of this node's own addresses (`addrtype --dst-type LOCAL`).
    fn is_local(&self, ip: IpAddr) -> bool;
    /// `recent --rcheck`: was `src` recorded in `list` within `seconds`?
    fn recent_check(&mut self, list: &str, src: IpAddr, seconds: Option<u64>) -> bool;
    /// `recent --set`: record `src` in `list` now.
    fn recent_set(&mut self, list: &str, src: IpAddr);
}

/// One step of the walk that changed something, for traces and `curl -v`.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// `nat` or `filter`.
    pub table: TableName,
    /// The chain the rule is in.
    pub chain: Arc<str>,
    /// The rule's comment, if any.
    pub comment: Option<Arc<str>>,
    /// What it did.
    pub target: Target,
    /// The rule's `statistic` probability, if it had one.
    pub probability: Option<f64>,
}

/// What the walk decided for a new connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The destination after DNAT (unchanged if no DNAT rule matched).
    pub dst: SocketAddr,
    /// Whether a DNAT rule matched.
    pub dnat: bool,
    /// Whether the packet is masqueraded (source NAT to the node) on the way out.
    pub masquerade: bool,
    /// Accept, or the filter table's REJECT/DROP.
    pub disposition: Disposition,
    /// The rules that jumped, DNATed, marked or decided, in order.
    pub steps: Vec<Step>,
}

/// The filter table's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Let it through.
    Accept,
    /// REJECT: connection refused.
    Reject,
    /// DROP: the client times out.
    Drop,
}

// === impl TableName ===

impl TableName {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "filter" => Some(Self::Filter),
            "nat" => Some(Self::Nat),
            _ => None,
        }
    }

    /// The table's name as iptables writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Filter => "filter",
            Self::Nat => "nat",
        }
    }

    fn builtins(self) -> &'static [&'static str] {
        match self {
            Self::Filter => FILTER_BUILTINS,
            Self::Nat => NAT_BUILTINS,
        }
    }
}

// === impl Tables ===

impl Default for Tables {
    fn default() -> Self {
        Self::new()
    }
}

impl Tables {
    /// Empty tables: built-in chains with policy ACCEPT and no rules, as on a fresh node.
    pub fn new() -> Self {
        let mk = |name: TableName| {
            let mut t = Table::default();
            for b in name.builtins() {
                t.chains.insert(
                    Arc::from(*b),
                    Chain {
                        policy: Some("ACCEPT"),
                        ..Chain::default()
                    },
                );
            }
            t
        };
        Self {
            filter: mk(TableName::Filter),
            nat: mk(TableName::Nat),
        }
    }

    fn table(&self, name: TableName) -> &Table {
        match name {
            TableName::Filter => &self.filter,
            TableName::Nat => &self.nat,
        }
    }

    fn table_mut(&mut self, name: TableName) -> &mut Table {
        match name {
            TableName::Filter => &mut self.filter,
            TableName::Nat => &mut self.nat,
        }
    }

    /// Rules in both tables.
    pub fn rule_count(&self) -> usize {
        [&self.filter, &self.nat]
            .iter()
            .flat_map(|t| t.chains.values())
            .map(|c| c.rules.len())
            .sum()
    }

    /// A chain, if it exists.
    pub fn chain(&self, table: TableName, name: &str) -> Option<&Chain> {
        self.table(table).chains.get(name)
    }

    /// `iptables -C TABLE CHAIN RULE || iptables -I CHAIN RULE`: inserts `spec` at the top of
    /// `chain` unless an identical rule is already there. `line` is `TABLE CHAIN RULESPEC`.
    pub fn ensure(&mut self, line: &str) -> Result<bool, RestoreError> {
        let err = |message: String| RestoreError::Line { line: 1, message };
        let mut parts = line.trim().splitn(3, ' ');
        let (Some(table), Some(chain), Some(spec)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(err(format!("expected `TABLE CHAIN RULESPEC`, got `{line}`")));
        };
        let table = TableName::parse(table).ok_or_else(|| err(format!("no table `{table}`")))?;
        let rule = parse_rule(spec.trim()).map_err(err)?;
        if let Target::Jump(to) = &rule.target
            && !self.table(table).chains.contains_key(to)
        {
            // The chain appears with the first restore; create it empty now as
            // `iptables -N` does before kube-proxy's EnsureRule.
            self.table_mut(table).chains.insert(to.clone(), Chain::default());
        }
        let t = self.table_mut(table);
        let c = t
            .chains
            .get_mut(chain)
            .ok_or_else(|| err(format!("chain `{chain}` does not exist")))?;
        if c.rules.iter().any(|r| r.spec == rule.spec) {
            return Ok(false);
        }
        c.rules.insert(0, Arc::new(rule));
        c.reindex();
        Ok(true)
    }

    /// `iptables-restore [--noflush]`: parses all of `text` first and changes nothing unless every
    /// line is good and every jump lands on a chain that exists afterwards.
    pub fn restore(&mut self, text: &str, noflush: bool) -> Result<(), RestoreError> {
        let ops = parse_restore(text)?;
        // Parse every rule, reusing the parsed form of rules whose text is unchanged: a partial
        // sync rewrites KUBE-SERVICES whole, but only the changed Services' lines are new.
        let mut resolved: Vec<Vec<(String, Arc<Rule>)>> = Vec::with_capacity(ops.len());
        for op in &ops {
            let table = self.table(op.table);
            let mut old: HashMap<&str, HashMap<&str, &Arc<Rule>>> = HashMap::new();
            let mut rules = Vec::with_capacity(op.appends.len());
            for (line, chain, spec) in &op.appends {
                let known = old
                    .entry(chain.as_str())
                    .or_insert_with(|| {
                        table
                            .chains
                            .get(chain.as_str())
                            .map(|c| c.rules.iter().map(|r| (r.spec.as_str(), r)).collect())
                            .unwrap_or_default()
                    })
                    .get(spec)
                    .map(|r| Arc::clone(r));
                let rule = match known {
                    Some(r) => r,
                    None => Arc::new(parse_rule(spec).map_err(|message| RestoreError::Line { line: *line, message })?),
                };
                rules.push((chain.clone(), rule));
            }
            // Check jumps against the chains that will exist once the ops are applied.
            let exists = |c: &str| {
                !op.deleted.contains(c)
                    && (op.declared.contains_key(c)
                        || (noflush && table.chains.contains_key(c))
                        || op.table.builtins().contains(&c))
            };
            for ((line, chain, _), (_, rule)) in op.appends.iter().zip(&rules) {
                if let Target::Jump(to) = &rule.target
                    && !exists(to)
                {
                    return Err(RestoreError::NoSuchChain { line: *line, chain: to.to_string() });
                }
                if !exists(chain) {
                    return Err(RestoreError::Line {
                        line: *line,
                        message: format!("Chain '{chain}' does not exist"),
                    });
                }
            }
            resolved.push(rules);
        }
        for (op, rules) in ops.into_iter().zip(resolved) {
            let builtins = op.table.builtins();
            let table = self.table_mut(op.table);
            if !noflush {
                table.chains.retain(|name, _| builtins.contains(&&**name));
                for c in table.chains.values_mut() {
                    c.rules.clear();
                }
            }
            let mut touched: BTreeSet<String> = BTreeSet::new();
            for (name, policy) in op.declared {
                let chain = table.chains.entry(Arc::from(name.as_str())).or_default();
                chain.rules.clear();
                if builtins.contains(&name.as_str()) {
                    chain.policy = Some(policy.unwrap_or("ACCEPT"));
                }
                touched.insert(name);
            }
            for name in &op.deleted {
                if !builtins.contains(&name.as_str()) {
                    table.chains.remove(name.as_str());
                }
            }
            for (chain, rule) in rules {
                if let Some(c) = table.chains.get_mut(chain.as_str()) {
                    c.rules.push(rule);
                    touched.insert(chain);
                }
            }
            for name in touched {
                if let Some(c) = table.chains.get_mut(name.as_str()) {
                    c.reindex();
                }
            }
        }
        Ok(())
    }

    /// `iptables-save`: the filter then the nat table, built-in chains first, user chains sorted,
    /// then every rule chain by chain.
    pub fn save(&self) -> String {
        let mut out = String::new();
        for name in [TableName::Filter, TableName::Nat] {
            let table = self.table(name);
            let _ = writeln!(out, "*{}", name.as_str());
            let mut order: Vec<&str> = name.builtins().to_vec();
            let mut user: Vec<&str> = table
                .chains
                .keys()
                .map(|k| &**k)
                .filter(|c| !name.builtins().contains(c))
                .collect();
            user.sort_unstable();
            order.extend(user);
            for c in &order {
                if let Some(chain) = table.chains.get(*c) {
                    let _ = writeln!(out, ":{c} {} [0:0]", chain.policy.unwrap_or("-"));
                }
            }
            for c in &order {
                if let Some(chain) = table.chains.get(*c) {
                    for r in &chain.rules {
                        let _ = writeln!(out, "-A {c} {}", r.spec);
                    }
                }
            }
            out.push_str("COMMIT\n");
        }
        out
    }

    /// The walk for the first packet of a new connection: nat PREROUTING (or OUTPUT), then
    /// filter FORWARD (or OUTPUT), then nat POSTROUTING for masquerade.
    pub fn evaluate(&self, packet: Packet, origin: Origin, env: &mut dyn WalkEnv) -> Verdict {
        let mut v = Verdict {
            dst: packet.dst,
            dnat: false,
            masquerade: false,
            disposition: Disposition::Accept,
            steps: Vec::with_capacity(4),
        };
        let mut mark = 0u32;
        let (nat_in, filter_chain) = match origin {
            Origin::Forwarded => ("PREROUTING", "FORWARD"),
            Origin::Local => ("OUTPUT", "OUTPUT"),
        };
        let mut p = packet;
        if let Outcome::Dnat(to) = self.walk(TableName::Nat, nat_in, p, &mut mark, env, &mut v.steps)
        {
            v.dst = to;
            v.dnat = true;
            p.dst = to;
        }
        // The filter table sees the packet before NAT's rewrite only in the sense that the
        // conntrack original tuple matches: kube-proxy's filter rules match ClusterIPs of
        // Services *without* endpoints, which never had a DNAT, so `packet` is what they see.
        let filter_packet = if v.dnat { p } else { packet };
        match self.walk(TableName::Filter, filter_chain, filter_packet, &mut mark, env, &mut v.steps) {
            Outcome::Reject => v.disposition = Disposition::Reject,
            Outcome::Drop => v.disposition = Disposition::Drop,
            _ => {}
        }
        if v.disposition == Disposition::Accept
            && let Outcome::Masquerade =
                self.walk(TableName::Nat, "POSTROUTING", p, &mut mark, env, &mut v.steps)
        {
            v.masquerade = true;
        }
        v
    }

    fn walk(
        &self,
        table_name: TableName,
        start: &str,
        p: Packet,
        mark: &mut u32,
        env: &mut dyn WalkEnv,
        steps: &mut Vec<Step>,
    ) -> Outcome {
        let table = self.table(table_name);
        // (chain name, chain, cursor over candidate rules, steps before the jump here). A chain
        // that falls through or RETURNs decided nothing: its jump step is taken back.
        let mut stack: Vec<(&Arc<str>, &Chain, Cursor<'_>, usize)> = Vec::with_capacity(4);
        let Some((name, chain)) = table.chains.get_key_value(start) else {
            return Outcome::Continue;
        };
        stack.push((name, chain, chain.candidates(&p), steps.len()));
        while let Some((name, chain, cursor, _)) = stack.last_mut() {
            let Some(idx) = cursor.next() else {
                if let Some((.., before)) = stack.pop() {
                    steps.truncate(before);
                }
                continue;
            };
            let (name, chain): (&Arc<str>, &Chain) = (name, chain);
            let Some(rule) = chain.rules.get(idx as usize) else {
                continue;
            };
            if !rule.matches.matches(&p, *mark, env) {
                continue;
            }
            let step = |target: Target| Step {
                table: table_name,
                chain: Arc::clone(name),
                comment: rule.matches.comment.clone(),
                target,
                probability: rule.matches.probability,
            };
            match &rule.target {
                Target::Jump(to) => {
                    if stack.len() >= MAX_DEPTH {
                        return Outcome::Drop;
                    }
                    let Some((to_name, next)) = table.chains.get_key_value(&**to) else {
                        continue;
                    };
                    let before = steps.len();
                    if &**to != "KUBE-MARK-MASQ" {
                        steps.push(step(rule.target.clone()));
                    }
                    stack.push((to_name, next, next.candidates(&p), before));
                }
                Target::Return => {
                    if let Some((.., before)) = stack.pop() {
                        steps.truncate(before);
                    }
                }
                Target::Mark { or, xor } => {
                    *mark = (*mark | or) ^ xor;
                }
                Target::Accept => return Outcome::Continue,
                Target::Dnat(to) => {
                    steps.push(step(rule.target.clone()));
                    return Outcome::Dnat(*to);
                }
                Target::Reject => {
                    steps.push(step(Target::Reject));
                    return Outcome::Reject;
                }
                Target::Drop => {
                    steps.push(step(Target::Drop));
                    return Outcome::Drop;
                }
                Target::Masquerade => return Outcome::Masquerade,
            }
        }
        Outcome::Continue
    }
}

/// The rules of a chain that may match a packet, in order, without allocating: all of them, or
/// the index's exact hits merged with the rules the index cannot place.
enum Cursor<'a> {
    All(std::ops::Range<u32>),
    Merge { a: &'a [u32], b: &'a [u32] },
}

impl Iterator for Cursor<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        match self {
            Cursor::All(r) => r.next(),
            Cursor::Merge { a, b } => {
                let take_a = match (a.first(), b.first()) {
                    (Some(x), Some(y)) => x < y,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (None, None) => return None,
                };
                let side = if take_a { a } else { b };
                let (first, rest) = side.split_first()?;
                *side = rest;
                Some(*first)
            }
        }
    }
}

enum Outcome {
    Continue,
    Dnat(SocketAddr),
    Reject,
    Drop,
    Masquerade,
}

// === impl Chain ===

impl Chain {
    fn reindex(&mut self) {
        if self.rules.len() <= INDEX_THRESHOLD {
            self.index = None;
            return;
        }
        let mut index = ChainIndex::default();
        for (i, r) in self.rules.iter().enumerate() {
            let m = &r.matches;
            match (m.destination, m.protocol, m.dport) {
                (Some((false, net)), Some(proto), Some(port))
                    if net.prefix_len() == net.max_prefix_len() =>
                {
                    index
                        .exact
                        .entry((net.addr(), proto, port))
                        .or_default()
                        .push(i as u32);
                }
                _ => index.rest.push(i as u32),
            }
        }
        self.index = Some(index);
    }

    /// The rules that may match `p`, in rule order.
    fn candidates(&self, p: &Packet) -> Cursor<'_> {
        match &self.index {
            None => Cursor::All(0..self.rules.len() as u32),
            Some(ix) => Cursor::Merge {
                a: ix
                    .exact
                    .get(&(p.dst.ip(), p.protocol, p.dst.port()))
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
                b: &ix.rest,
            },
        }
    }
}

// === impl Match ===

impl Match {
    fn matches(&self, p: &Packet, mark: u32, env: &mut dyn WalkEnv) -> bool {
        if self.protocol.is_some_and(|proto| proto != p.protocol) {
            return false;
        }
        if let Some((neg, net)) = self.source
            && net.contains(&p.src.ip()) == neg
        {
            return false;
        }
        if let Some((neg, net)) = self.destination
            && net.contains(&p.dst.ip()) == neg
        {
            return false;
        }
        if self.dport.is_some_and(|port| port != p.dst.port()) {
            return false;
        }
        if let Some((neg, value, mask)) = self.mark
            && ((mark & mask) == value) == neg
        {
            return false;
        }
        if self.dst_local && !env.is_local(p.dst.ip()) {
            return false;
        }
        if let Some(want) = self.src_local
            && env.is_local(p.src.ip()) != want
        {
            return false;
        }
        if let Some(r) = &self.recent {
            if r.set {
                env.recent_set(&r.name, p.src.ip());
            } else if !env.recent_check(&r.name, p.src.ip(), r.seconds) {
                return false;
            }
        }
        // The statistic match draws last, as iptables evaluates matches left to right and
        // kube-proxy writes it after the others.
        if let Some(prob) = self.probability
            && env.random() >= prob
        {
            return false;
        }
        true
    }
}

// === parsing ===

struct TableOps<'t> {
    table: TableName,
    declared: Vec<(String, Option<&'static str>)>,
    deleted: BTreeSet<String>,
    appends: Vec<(usize, String, &'t str)>,
}

impl TableOps<'_> {
    fn new(table: TableName) -> Self {
        Self {
            table,
            declared: Vec::new(),
            deleted: BTreeSet::new(),
            appends: Vec::new(),
        }
    }
}

fn parse_restore(text: &str) -> Result<Vec<ParsedTable<'_>>, RestoreError> {
    let mut out = Vec::new();
    let mut cur: Option<TableOps> = None;
    let mut last_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        last_line = line_no;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message: String| RestoreError::Line {
            line: line_no,
            message,
        };
        if let Some(name) = line.strip_prefix('*') {
            if cur.is_some() {
                return Err(err("table started before COMMIT".into()));
            }
            let t = TableName::parse(name)
                .ok_or_else(|| err(format!("can't initialize iptables table `{name}': Table does not exist")))?;
            cur = Some(TableOps::new(t));
            continue;
        }
        let Some(ops) = cur.as_mut() else {
            return Err(err(format!("no table given before `{line}`")));
        };
        if line == "COMMIT" {
            out.push(ParsedTable::from(cur.take().expect("checked above")));
            continue;
        }
        if let Some(decl) = line.strip_prefix(':') {
            let mut it = decl.split_whitespace();
            let name = it.next().ok_or_else(|| err("chain name missing".into()))?;
            let policy = match it.next() {
                Some("-") | None => None,
                Some("ACCEPT") => Some("ACCEPT"),
                Some("DROP") => Some("DROP"),
                Some(p) => return Err(err(format!("bad policy `{p}`"))),
            };
            if ops.table.builtins().contains(&name) != policy.is_some() {
                return Err(err(format!(
                    "chain `{name}`: built-in chains take a policy, user chains `-`"
                )));
            }
            if name.len() > 28 {
                return Err(err(format!("chain name `{name}' too long (must be under 29 chars)")));
            }
            ops.deleted.remove(name);
            ops.declared.push((name.to_string(), policy));
            continue;
        }
        if let Some(rest) = line.strip_prefix("-A ") {
            let rest = rest.trim_start();
            let (chain, spec) = rest
                .split_once(' ')
                .ok_or_else(|| err("rule without a target".into()))?;
            ops.appends.push((line_no, chain.to_string(), spec.trim()));
            continue;
        }
        if let Some(name) = line.strip_prefix("-X ") {
            let name = name.trim();
            if ops.table.builtins().contains(&name) {
                return Err(err(format!("can't delete built-in chain `{name}'")));
            }
            ops.declared.retain(|(n, _)| n != name);
            ops.deleted.insert(name.to_string());
            continue;
        }
        return Err(err(format!("unknown command `{line}`")));
    }
    if cur.is_some() {
        return Err(RestoreError::NoCommit(last_line));
    }
    Ok(out)
}

struct ParsedTable<'t> {
    table: TableName,
    declared: HashMap<String, Option<&'static str>>,
    deleted: BTreeSet<String>,
    appends: Vec<(usize, String, &'t str)>,
}

impl<'t> From<TableOps<'t>> for ParsedTable<'t> {
    fn from(o: TableOps<'t>) -> Self {
        Self {
            table: o.table,
            declared: o.declared.into_iter().collect(),
            deleted: o.deleted,
            appends: o.appends,
        }
    }
}

/// Splits a rule spec into words, honouring double quotes as iptables-save writes them.
fn words(spec: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = spec.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    if s.contains('/') {
        s.parse().map_err(|_| format!("host/network `{s}' not found"))
    } else {
        s.parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| format!("host/network `{s}' not found"))
    }
}

fn parse_mark(s: &str) -> Result<(u32, u32), String> {
    let hex = |v: &str| {
        u32::from_str_radix(v.trim_start_matches("0x"), 16).map_err(|_| format!("Bad mark value `{s}'"))
    };
    match s.split_once('/') {
        Some((v, m)) => Ok((hex(v)?, hex(m)?)),
        None => Ok((hex(s)?, u32::MAX)),
    }
}

/// Parses one rule spec (`-m tcp -p tcp -d 10.96.0.1 --dport 443 -j KUBE-SVC-...`).
pub fn parse_rule(spec: &str) -> Result<Rule, String> {
    let w = words(spec)?;
    let mut m = Match::default();
    let mut target: Option<Target> = None;
    let mut i = 0;
    let mut neg = false;
    let arg = |i: usize| -> Result<&str, String> {
        w.get(i + 1)
            .map(String::as_str)
            .ok_or_else(|| format!("option \"{}\" requires an argument", w[i]))
    };
    while i < w.len() {
        let word = w[i].as_str();
        match word {
            "!" => {
                neg = true;
                i += 1;
                continue;
            }
            "-m" => {
                let module = arg(i)?;
                if !matches!(
                    module,
                    "tcp" | "udp" | "sctp" | "comment" | "statistic" | "recent" | "addrtype"
                        | "mark" | "conntrack"
                ) {
                    return Err(format!("Couldn't load match `{module}':No such file or directory"));
                }
                i += 2;
            }
            "-p" => {
                let p = arg(i)?;
                m.protocol = Some(
                    Protocol::parse(&p.to_ascii_uppercase())
                        .ok_or_else(|| format!("unknown protocol \"{p}\" specified"))?,
                );
                i += 2;
            }
            "-s" | "--source" => {
                m.source = Some((neg, parse_net(arg(i)?)?));
                i += 2;
            }
            "-d" | "--destination" => {
                m.destination = Some((neg, parse_net(arg(i)?)?));
                i += 2;
            }
            "--dport" => {
                let v = arg(i)?;
                m.dport = Some(v.parse().map_err(|_| format!("invalid port/service `{v}' specified"))?);
                i += 2;
            }
            "--comment" => {
                m.comment = Some(Arc::from(arg(i)?));
                i += 2;
            }
            "--mode" => {
                if arg(i)? != "random" {
                    return Err(format!("Bad mode \"{}\"", arg(i)?));
                }
                i += 2;
            }
            "--probability" => {
                let v = arg(i)?;
                let p: f64 = v.parse().map_err(|_| format!("bad --probability \"{v}\""))?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(format!("--probability must be between 0 and 1, got \"{v}\""));
                }
                m.probability = Some(p);
                i += 2;
            }
            "--name" => {
                m.recent.get_or_insert(Recent {
                    name: String::new(),
                    set: false,
                    seconds: None,
                })
                .name = arg(i)?.to_string();
                i += 2;
            }
            "--rcheck" | "--set" | "--reap" => {
                let r = m.recent.get_or_insert(Recent {
                    name: String::new(),
                    set: false,
                    seconds: None,
                });
                if word == "--set" {
                    r.set = true;
                }
                i += 1;
            }
            "--seconds" => {
                let v = arg(i)?;
                m.recent
                    .get_or_insert(Recent {
                        name: String::new(),
                        set: false,
                        seconds: None,
                    })
                    .seconds = Some(v.parse().map_err(|_| format!("bad --seconds \"{v}\""))?);
                i += 2;
            }
            "--src-type" => {
                if arg(i)? != "LOCAL" {
                    return Err(format!("unsupported --src-type \"{}\"", arg(i)?));
                }
                m.src_local = Some(!neg);
                i += 2;
            }
            "--dst-type" => {
                if arg(i)? != "LOCAL" {
                    return Err(format!("unsupported --dst-type \"{}\"", arg(i)?));
                }
                m.dst_local = true;
                i += 2;
            }
            "--mark" => {
                let (v, mask) = parse_mark(arg(i)?)?;
                m.mark = Some((neg, v, mask));
                i += 2;
            }
            "--ctstate" => {
                m.ctstate_new = true;
                i += 2;
            }
            "-j" | "--jump" => {
                let t = arg(i)?;
                i += 2;
                target = Some(match t {
                    "DNAT" => {
                        if w.get(i).map(String::as_str) != Some("--to-destination") {
                            return Err("DNAT: --to-destination is required".into());
                        }
                        let to = arg(i)?;
                        i += 2;
                        Target::Dnat(to.parse().map_err(|_| format!("Bad IP address \"{to}\""))?)
                    }
                    "REJECT" => {
                        if w.get(i).map(String::as_str) == Some("--reject-with") {
                            i += 2;
                        }
                        Target::Reject
                    }
                    "DROP" => Target::Drop,
                    "ACCEPT" => Target::Accept,
                    "RETURN" => Target::Return,
                    "MASQUERADE" => {
                        if w.get(i).map(String::as_str) == Some("--random-fully") {
                            i += 1;
                        }
                        Target::Masquerade
                    }
                    "MARK" => {
                        let opt = w.get(i).map(String::as_str).unwrap_or("");
                        let v = parse_mark(arg(i)?)?.0;
                        i += 2;
                        match opt {
                            "--or-mark" => Target::Mark { or: v, xor: 0 },
                            "--xor-mark" => Target::Mark { or: 0, xor: v },
                            "--set-xmark" => Target::Mark { or: 0, xor: v },
                            o => return Err(format!("MARK: unknown option \"{o}\"")),
                        }
                    }
                    chain if chain.starts_with(|c: char| c.is_ascii_uppercase()) => {
                        Target::Jump(Arc::from(chain))
                    }
                    other => return Err(format!("Couldn't load target `{other}'")),
                });
            }
            other => return Err(format!("unknown option \"{other}\"")),
        }
        neg = false;
    }
    if m.recent.as_ref().is_some_and(|r| r.name.is_empty()) {
        return Err("recent: --name is required".into());
    }
    let target = target.ok_or_else(|| "rule without a target (-j)".to_string())?;
    Ok(Rule {
        spec: spec.to_string(),
        matches: m,
        target,
    })
}

#[cfg(test)]
mod tests;
