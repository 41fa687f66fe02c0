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
//!
//! Two more things keep kube-proxy's scale cheap (issue 5's benchmarks):
//! - A restore resolves each jump to the target chain's slot once, and keeps a compact copy of
//!   each rule's matches inline in its chain, so the walk neither looks a chain up by name nor
//!   chases a pointer per rule. It records its steps as (chain, rule) positions and makes the
//!   [`Step`]s that traces and `curl -v` show only when asked ([`Verdict::steps`]).
//!   What a new connection reads is mostly dependent cache misses (index entry, the Service's
//!   chain, its rules, the endpoint's chain, its rules), so each is kept to one line where it
//!   can be: rules are 32 bytes, two to an aligned line (a 4-endpoint Service chain is two
//!   lines, an endpoint chain one); an index entry carries the jump of a rule its key alone
//!   decides (a ClusterIP's `-d IP -p tcp --dport N -j KUBE-SVC-…`), so that rule is not read.
//! - A partial sync rewrites KUBE-SERVICES whole (10,000 lines at 10,000 Services) though only
//!   a changed Service's line is new: the restore borrows names and specs from its input, walks
//!   a rewritten chain's old rules alongside the new lines and reuses every unchanged rule
//!   (parsed form and resolved jump included) instead of parsing or hashing it again.

use std::{
    collections::{HashMap, HashSet, hash_map::Entry},
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4},
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
/// A HashSet with [`FxHasher`].
pub type FxHashSet<K> = HashSet<K, std::hash::BuildHasherDefault<FxHasher>>;

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
    #[error(
        "iptables-restore: line {line} failed: Couldn't load target `{chain}':No such file or directory"
    )]
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
///
/// `repr(C)`: what the walk reads (`walk`, `index`) comes first, so that with [`Slot`]'s
/// alignment a jump to the chain reads one cache line before the rules.
#[derive(Debug, Clone, Default)]
#[repr(C)]
pub struct Chain {
    /// The walk's form of `rules`, one for one.
    walk: WalkRules,
    /// (destination, protocol, port) → indices of rules that can only match that destination.
    index: Option<Box<ChainIndex>>,
    /// Rules in order (shared: a restore that rewrites a chain reuses unchanged rules).
    rules: Vec<Arc<Rule>>,
    /// `ACCEPT` for built-ins; None for user chains (`-`).
    pub policy: Option<&'static str>,
}

/// A rule as the walk needs it, stored inline in its chain so that walking a chain reads
/// contiguous memory, two rules per cache line (32 bytes, aligned so none straddles two): the
/// matches that decide (IPv4 networks as address and prefix length), and the target with a jump
/// resolved to the target chain's slot. Comments, `recent` list names, IPv6 networks, `mark`
/// values and the spec stay in [`Rule`], read only when a `recent` or `mark` match runs, a
/// `MARK` target is taken (kube-proxy's few shared chains, which stay cached), a rule has an
/// IPv6 network, or a step is shown.
#[derive(Debug, Clone, Copy)]
#[repr(align(32))]
struct WalkRule {
    probability: f64,
    /// `-s`, `-d` when IPv4: address (masked).
    source: u32,
    destination: u32,
    action: Action,
    /// `F_*` bits.
    flags: u16,
    dport: u16,
    protocol: Option<Protocol>,
    /// `-s`, `-d` when IPv4: prefix length.
    source_len: u8,
    destination_len: u8,
}

const _: () = assert!(std::mem::size_of::<WalkRule>() == 32);

/// A chain's [`WalkRule`]s, two to a 64-byte-aligned line, so that a chain of two rules is one
/// cache line and one of four is two (the allocator aligns a `Vec<WalkRule>` to 32 bytes only,
/// and half the time it would straddle one line more).
#[derive(Debug, Clone, Default)]
struct WalkRules {
    lines: Vec<RuleLine>,
    len: usize,
}

/// Two rules; the second is a copy of the first while the chain has an odd count.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
struct RuleLine([WalkRule; 2]);

impl WalkRules {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, i: usize) -> Option<&WalkRule> {
        if i < self.len {
            Some(&self.lines[i / 2].0[i % 2])
        } else {
            None
        }
    }

    fn push(&mut self, w: WalkRule) {
        if self.len.is_multiple_of(2) {
            self.lines.push(RuleLine([w, w]));
        } else {
            self.lines[self.len / 2].0[1] = w;
        }
        self.len += 1;
    }

    /// Puts `w` before the others (`iptables -I`; rare, so it rebuilds).
    fn insert_first(&mut self, w: WalkRule) {
        let rest: Vec<WalkRule> = self.iter().copied().collect();
        self.clear();
        self.push(w);
        for r in rest {
            self.push(r);
        }
    }

    fn extend(&mut self, other: WalkRules) {
        for &w in other.iter() {
            self.push(w);
        }
    }

    fn clear(&mut self) {
        self.lines.clear();
        self.len = 0;
    }

    fn iter(&self) -> impl Iterator<Item = &WalkRule> {
        self.lines.iter().flat_map(|l| &l.0).take(self.len)
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut WalkRule> {
        self.lines.iter_mut().flat_map(|l| &mut l.0).take(self.len)
    }
}

impl std::ops::Index<usize> for WalkRules {
    type Output = WalkRule;

    fn index(&self, i: usize) -> &WalkRule {
        self.get(i).expect("rule index within the chain")
    }
}

const F_DPORT: u16 = 1;
const F_MARK: u16 = 1 << 1;
const F_MARK_NEG: u16 = 1 << 2;
const F_SRC: u16 = 1 << 3;
const F_SRC_NEG: u16 = 1 << 4;
const F_DST: u16 = 1 << 5;
const F_DST_NEG: u16 = 1 << 6;
/// `-s`/`-d` use an IPv6 network: match them from the [`Rule`].
const F_NETS_V6: u16 = 1 << 7;
const F_DST_LOCAL: u16 = 1 << 8;
const F_SRC_LOCAL: u16 = 1 << 9;
const F_SRC_LOCAL_WANT: u16 = 1 << 10;
const F_RECENT: u16 = 1 << 11;
const F_PROBABILITY: u16 = 1 << 12;
/// A jump that is recorded as a step (all but jumps to KUBE-MARK-MASQ).
const F_RECORD: u16 = 1 << 13;

/// [`Target`] with the jump resolved to a slot of the table.
#[derive(Debug, Clone, Copy)]
enum Action {
    Jump(u32),
    /// DNAT to an IPv4 address and port.
    Dnat(u32, u16),
    /// DNAT to an IPv6 address: the address is in the [`Rule`].
    Dnat6,
    Reject,
    Drop,
    Accept,
    Return,
    /// `-j MARK`: the values are in the [`Rule`].
    Mark,
    Masquerade,
}

/// A jump to a chain that has no slot (only in a restore that is then refused).
const NO_SLOT: u32 = u32::MAX;

/// Bit set in an index value: the rest is an index into [`ChainIndex::multi`].
const MULTI: u32 = 1 << 31;

/// A long chain's index from (destination, protocol, port) to the rules that can only match
/// that destination. Values are the one rule index for a key, or `MULTI | i` for `multi[i]`
/// when several rules share it (one allocation per shared key, not per key).
#[derive(Debug, Clone, Default)]
struct ChainIndex {
    /// IPv4 keys, open addressing with linear probing, at most half full; key 0 is empty.
    /// One probe is usually one cache line, where a general hash map reads two.
    v4: Vec<V4Entry>,
    /// IPv6 keys.
    v6: FxHashMap<(IpAddr, Protocol, u16), u32>,
    multi: Vec<Vec<u32>>,
    /// Rules the index cannot place (no exact destination): always candidates.
    rest: Vec<u32>,
}

/// One IPv4 key of a [`ChainIndex`] (16 bytes, four to a cache line).
#[derive(Debug, Clone, Copy, Default)]
struct V4Entry {
    key: u64,
    value: u32,
    /// When `value` is one rule that the key alone decides (it matches only protocol,
    /// destination and port) and that is a recorded jump: the jump's target slot, so the walk
    /// takes it without reading the rule (one dependent cache miss fewer per connection).
    /// [`NO_SLOT`] otherwise.
    jump: u32,
}

/// One table. Chains live in slots so a rule's jump is resolved to a slot number once, at
/// restore time, and the walk never looks a chain up by name. A slot keeps its name after its
/// chain is deleted (so a jump left pointing at it stays resolved if the chain comes back) until
/// enough slots are dead to compact.
#[derive(Debug, Clone, Default)]
pub struct Table {
    ids: FxHashMap<Arc<str>, u32>,
    slots: Vec<Slot>,
    /// Slots without a chain.
    dead: usize,
}

#[derive(Debug, Clone)]
#[repr(C, align(64))]
struct Slot {
    chain: Option<Chain>,
    name: Arc<str>,
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

/// One step of the walk that changed something, for traces and `curl -v`: a view into the
/// rule that took it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step<'t> {
    /// `nat` or `filter`.
    pub table: TableName,
    /// The chain the rule is in.
    pub chain: &'t str,
    /// The rule's comment, if any.
    pub comment: Option<&'t str>,
    /// What it did.
    pub target: &'t Target,
    /// The rule's `statistic` probability, if it had one.
    pub probability: Option<f64>,
}

/// A step as the walk records it: where the rule is, nothing copied or counted. [`Step`] is
/// made from it only when someone asks ([`Verdict::steps`]).
#[derive(Clone, Copy)]
struct StepRef<'t> {
    table: TableName,
    slot: &'t Slot,
    rule: u32,
}

/// Steps inline up to this many (a ClusterIP walk records 4); more spill to the heap.
const INLINE_STEPS: usize = 8;

/// The walk's steps without a heap allocation in the common case.
#[derive(Clone, Default)]
struct Steps<'t> {
    len: usize,
    inline: [Option<StepRef<'t>>; INLINE_STEPS],
    more: Vec<StepRef<'t>>,
}

/// What the walk decided for a new connection. It borrows the tables, whose rules its
/// [`steps`](Self::steps) point into.
#[derive(Clone)]
pub struct Verdict<'t> {
    /// The destination after DNAT (unchanged if no DNAT rule matched).
    pub dst: SocketAddr,
    /// Whether a DNAT rule matched.
    pub dnat: bool,
    /// Whether the packet is masqueraded (source NAT to the node) on the way out.
    pub masquerade: bool,
    /// Accept, or the filter table's REJECT/DROP.
    pub disposition: Disposition,
    steps: Steps<'t>,
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

    /// The slot of built-in chain `name` (built-ins take the first slots, in order, for good).
    fn builtin(self, name: &str) -> u32 {
        self.builtins()
            .iter()
            .position(|b| *b == name)
            .expect("a built-in chain of this table") as u32
    }
}

// === impl Verdict ===

impl<'t> Verdict<'t> {
    /// The rules that jumped, DNATed, marked or decided, in order.
    pub fn steps(&self) -> impl DoubleEndedIterator<Item = Step<'t>> + '_ {
        self.steps.iter().map(StepRef::step)
    }
}

impl PartialEq for Verdict<'_> {
    fn eq(&self, other: &Self) -> bool {
        (self.dst, self.dnat, self.masquerade, self.disposition)
            == (other.dst, other.dnat, other.masquerade, other.disposition)
            && self.steps().eq(other.steps())
    }
}

impl std::fmt::Debug for Verdict<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verdict")
            .field("dst", &self.dst)
            .field("dnat", &self.dnat)
            .field("masquerade", &self.masquerade)
            .field("disposition", &self.disposition)
            .field("steps", &self.steps().collect::<Vec<_>>())
            .finish()
    }
}

// === impl StepRef ===

impl<'t> StepRef<'t> {
    fn step(&self) -> Step<'t> {
        let slot: &'t Slot = self.slot;
        let rule: &'t Rule = slot
            .chain
            .as_ref()
            .and_then(|c| c.rules.get(self.rule as usize))
            .expect("a step points at a rule of a live chain");
        Step {
            table: self.table,
            chain: &slot.name,
            comment: rule.matches.comment.as_deref(),
            target: &rule.target,
            probability: rule.matches.probability,
        }
    }
}

// === impl Steps ===

impl<'t> Steps<'t> {
    fn push(&mut self, s: StepRef<'t>) {
        if self.len < INLINE_STEPS {
            self.inline[self.len] = Some(s);
        } else {
            self.more.push(s);
        }
        self.len += 1;
    }

    fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.more.truncate(len.saturating_sub(INLINE_STEPS));
            self.len = len;
        }
    }

    fn iter(&self) -> impl DoubleEndedIterator<Item = &StepRef<'t>> + '_ {
        self.inline[..self.len.min(INLINE_STEPS)]
            .iter()
            .flatten()
            .chain(&self.more)
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
                let id = t.slot(b);
                t.revive(id).policy = Some("ACCEPT");
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
            .flat_map(|t| t.live())
            .map(|(_, c)| c.rules.len())
            .sum()
    }

    /// A chain, if it exists.
    pub fn chain(&self, table: TableName, name: &str) -> Option<&Chain> {
        self.table(table).get(name)
    }

    /// `iptables -C TABLE CHAIN RULE || iptables -I CHAIN RULE`: inserts `spec` at the top of
    /// `chain` unless an identical rule is already there. `line` is `TABLE CHAIN RULESPEC`.
    pub fn ensure(&mut self, line: &str) -> Result<bool, RestoreError> {
        let err = |message: String| RestoreError::Line { line: 1, message };
        let mut parts = line.trim().splitn(3, ' ');
        let (Some(table), Some(chain), Some(spec)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(err(format!(
                "expected `TABLE CHAIN RULESPEC`, got `{line}`"
            )));
        };
        let table = TableName::parse(table).ok_or_else(|| err(format!("no table `{table}`")))?;
        let rule = parse_rule(spec.trim()).map_err(err)?;
        let t = self.table_mut(table);
        if let Target::Jump(to) = &rule.target
            && t.get(to).is_none()
        {
            // The chain appears with the first restore; create it empty now as
            // `iptables -N` does before kube-proxy's EnsureRule.
            let id = t.slot(to);
            t.revive(id);
        }
        let walk = WalkRule::compile(&rule, &t.ids);
        let c = t
            .ids
            .get(chain)
            .and_then(|&id| t.slots[id as usize].chain.as_mut())
            .ok_or_else(|| err(format!("chain `{chain}` does not exist")))?;
        if c.rules.iter().any(|r| r.spec == rule.spec) {
            return Ok(false);
        }
        c.rules.insert(0, Arc::new(rule));
        c.walk.insert_first(walk);
        c.reindex();
        Ok(true)
    }

    /// `iptables-restore [--noflush]`: parses all of `text` first and changes nothing unless every
    /// line is good and every jump lands on a chain that exists afterwards.
    ///
    /// A partial sync rewrites KUBE-SERVICES whole although only the changed Services' lines are
    /// new, so the rules of a rewritten chain are matched against the chain's old rules in order
    /// (falling back to a lookup by text) and reused, parsed form and resolved jump included.
    pub fn restore(&mut self, text: &str, noflush: bool) -> Result<(), RestoreError> {
        let ops = parse_restore(text)?;
        let mut plans = Vec::with_capacity(ops.len());
        for op in &ops {
            let table = self.table_mut(op.table);
            // Slots for the declared chains first: rules may jump to them.
            for name in op.declared.keys() {
                table.slot(name);
            }
            plans.push(table.plan(op, noflush)?);
        }
        for (op, plan) in ops.iter().zip(plans) {
            self.table_mut(op.table).apply(op, plan, noflush);
        }
        // Only now: the plans above hold slot numbers.
        self.filter.compact();
        self.nat.compact();
        Ok(())
    }

    /// `iptables-save`: the filter then the nat table, built-in chains first, user chains sorted,
    /// then every rule chain by chain.
    pub fn save(&self) -> String {
        let mut out = String::new();
        for name in [TableName::Filter, TableName::Nat] {
            let table = self.table(name);
            let _ = writeln!(out, "*{}", name.as_str());
            let builtins = name.builtins().len();
            let mut order: Vec<(&str, &Chain)> = table.live().collect();
            order[builtins..].sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (c, chain) in &order {
                let _ = writeln!(out, ":{c} {} [0:0]", chain.policy.unwrap_or("-"));
            }
            for (c, chain) in &order {
                for r in &chain.rules {
                    let _ = writeln!(out, "-A {c} {}", r.spec);
                }
            }
            out.push_str("COMMIT\n");
        }
        out
    }

    /// The walk for the first packet of a new connection: nat PREROUTING (or OUTPUT), then
    /// filter FORWARD (or OUTPUT), then nat POSTROUTING for masquerade.
    pub fn evaluate(&self, packet: Packet, origin: Origin, env: &mut dyn WalkEnv) -> Verdict<'_> {
        let mut v = Verdict {
            dst: packet.dst,
            dnat: false,
            masquerade: false,
            disposition: Disposition::Accept,
            steps: Steps::default(),
        };
        let mut mark = 0u32;
        let (nat_in, filter_chain) = match origin {
            Origin::Forwarded => ("PREROUTING", "FORWARD"),
            Origin::Local => ("OUTPUT", "OUTPUT"),
        };
        let mut p = packet;
        if let Outcome::Dnat(to) =
            self.walk(TableName::Nat, nat_in, p, &mut mark, env, &mut v.steps)
        {
            v.dst = to;
            v.dnat = true;
            p.dst = to;
        }
        // The filter table sees the packet before NAT's rewrite only in the sense that the
        // conntrack original tuple matches: kube-proxy's filter rules match ClusterIPs of
        // Services *without* endpoints, which never had a DNAT, so `packet` is what they see.
        let filter_packet = if v.dnat { p } else { packet };
        match self.walk(
            TableName::Filter,
            filter_chain,
            filter_packet,
            &mut mark,
            env,
            &mut v.steps,
        ) {
            Outcome::Reject => v.disposition = Disposition::Reject,
            Outcome::Drop => v.disposition = Disposition::Drop,
            _ => {}
        }
        if v.disposition == Disposition::Accept
            && let Outcome::Masquerade = self.walk(
                TableName::Nat,
                "POSTROUTING",
                p,
                &mut mark,
                env,
                &mut v.steps,
            )
        {
            v.masquerade = true;
        }
        v
    }

    fn walk<'t>(
        &'t self,
        table_name: TableName,
        start: &str,
        p: Packet,
        mark: &mut u32,
        env: &mut dyn WalkEnv,
        steps: &mut Steps<'t>,
    ) -> Outcome {
        let mut w = Walk {
            table_name,
            table: self.table(table_name),
            p,
            mark,
            env,
            steps,
        };
        let before = w.steps.len;
        match w.chain(table_name.builtin(start), 0) {
            Some(o) => o,
            // Fell off the end of (or RETURNed from) the built-in chain: nothing decided.
            None => {
                w.steps.truncate(before);
                Outcome::Continue
            }
        }
    }
}

/// One table's walk for one packet.
struct Walk<'t, 'w> {
    table_name: TableName,
    table: &'t Table,
    p: Packet,
    mark: &'w mut u32,
    env: &'w mut dyn WalkEnv,
    steps: &'w mut Steps<'t>,
}

impl<'t> Walk<'t, '_> {
    /// Walks chain `id` at jump depth `depth`: Some(outcome) if a rule decided (the walk of the
    /// table ends), None if the chain fell through or RETURNed (the caller takes back the jump's
    /// steps and goes on with its next rule).
    fn chain(&mut self, id: u32, depth: usize) -> Option<Outcome> {
        let slot = &self.table.slots[id as usize];
        let chain = slot.chain.as_ref()?;
        // Two loops rather than one over a general cursor: most chains are short and unindexed,
        // and their loop is a plain count.
        match chain.index.as_deref() {
            None => {
                let len = chain.walk.len();
                for (l, line) in chain.walk.lines.iter().enumerate() {
                    for (k, w) in line.0.iter().enumerate() {
                        let idx = 2 * l + k;
                        if idx == len {
                            break;
                        }
                        if let Some(o) = self.rule(slot, chain, idx as u32, Pick::Read(w), depth) {
                            return o;
                        }
                    }
                }
            }
            Some(ix) => {
                let (a, jump) = ix.get(&self.p);
                // The index's one hit for `p`, when the key alone decides it and it is a
                // recorded jump (see [`V4Entry::jump`]): taken without reading the rule.
                let decided = match a {
                    [rule] if jump != NO_SLOT => Some((*rule, jump)),
                    _ => None,
                };
                for idx in (Cursor { a, b: &ix.rest }) {
                    let pick = match decided {
                        // The index's key matched all this rule matches: take its jump unread.
                        Some((rule, to)) if rule == idx => Pick::Jump(to),
                        // (A rule past the end cannot be: the index is rebuilt with the chain.)
                        _ => match chain.walk.get(idx as usize) {
                            Some(w) => Pick::Read(w),
                            None => continue,
                        },
                    };
                    if let Some(o) = self.rule(slot, chain, idx, pick, depth) {
                        return o;
                    }
                }
            }
        }
        None
    }

    /// Rule `idx` of `chain` (in `slot`): None if the walk goes on with the chain's next rule,
    /// Some(what the chain returns) otherwise.
    #[inline(always)]
    fn rule(
        &mut self,
        slot: &'t Slot,
        chain: &'t Chain,
        idx: u32,
        pick: Pick<'t>,
        depth: usize,
    ) -> Option<Option<Outcome>> {
        let (action, record) = match pick {
            Pick::Jump(to) => (Action::Jump(to), true),
            Pick::Read(rule) => {
                if !rule.matches(&self.p, *self.mark, self.env, || &chain.rules[idx as usize]) {
                    return None;
                }
                (rule.action, rule.flags & F_RECORD != 0)
            }
        };
        let step = StepRef {
            table: self.table_name,
            slot,
            rule: idx,
        };
        match action {
            Action::Jump(to) => {
                // The kernel refuses loops at load time; a walk this deep is one.
                if depth + 1 >= MAX_DEPTH {
                    return Some(Some(Outcome::Drop));
                }
                if self
                    .table
                    .slots
                    .get(to as usize)
                    .is_none_or(|s| s.chain.is_none())
                {
                    return None;
                }
                let before = self.steps.len;
                if record {
                    self.steps.push(step);
                }
                match self.chain(to, depth + 1) {
                    Some(o) => return Some(Some(o)),
                    None => self.steps.truncate(before),
                }
            }
            Action::Return => return Some(None),
            Action::Mark => {
                let Target::Mark { or, xor } = chain.rules[idx as usize].target else {
                    unreachable!("Mark is compiled from a MARK target")
                };
                *self.mark = (*self.mark | or) ^ xor;
            }
            Action::Accept => return Some(Some(Outcome::Continue)),
            Action::Dnat(ip, port) => {
                self.steps.push(step);
                return Some(Some(Outcome::Dnat(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(ip),
                    port,
                )))));
            }
            Action::Dnat6 => {
                self.steps.push(step);
                let Target::Dnat(to) = chain.rules[idx as usize].target else {
                    unreachable!("Dnat6 is compiled from a DNAT target")
                };
                return Some(Some(Outcome::Dnat(to)));
            }
            Action::Reject => {
                self.steps.push(step);
                return Some(Some(Outcome::Reject));
            }
            Action::Drop => {
                self.steps.push(step);
                return Some(Some(Outcome::Drop));
            }
            Action::Masquerade => return Some(Some(Outcome::Masquerade)),
        }
        None
    }
}

/// How [`Walk::rule`] gets a rule: read it, or take the jump the index decided.
#[derive(Clone, Copy)]
enum Pick<'t> {
    Read(&'t WalkRule),
    /// A recorded jump to this slot, matched by the index key (see [`V4Entry::jump`]).
    Jump(u32),
}

/// An indexed chain's rules that may match a packet, in order, without allocating: the index's
/// exact hits merged with the rules the index cannot place.
struct Cursor<'a> {
    a: &'a [u32],
    b: &'a [u32],
}

impl Iterator for Cursor<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let take_a = match (self.a.first(), self.b.first()) {
            (Some(x), Some(y)) => x < y,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        let side = if take_a { &mut self.a } else { &mut self.b };
        let (first, rest) = side.split_first()?;
        *side = rest;
        Some(*first)
    }
}

enum Outcome {
    Continue,
    Dnat(SocketAddr),
    Reject,
    Drop,
    Masquerade,
}

// === impl Table ===

/// What a restore does to one chain's slot, by slot number (see [`Table::plan`]).
const UNCHANGED: u8 = 0;
const DECLARED: u8 = 1;
const DELETED: u8 = 2;

/// One table's part of a restore, resolved against the table before anything changes.
struct Plan {
    /// Declared chains (flushed, created if new) and their policies.
    declared: Vec<(u32, Option<&'static str>)>,
    /// Deleted chains.
    deleted: Vec<u32>,
    /// Rules to append, chain by chain in order of first appearance.
    appends: Vec<Appends>,
}

struct Appends {
    id: u32,
    rules: Vec<Arc<Rule>>,
    walk: WalkRules,
}

/// A chain's `-A` lines while planning, with what is needed to reuse the chain's old rules.
struct Planning<'a> {
    id: u32,
    name: &'a str,
    old: Option<&'a Chain>,
    /// Where in `old` the next line is expected (kube-proxy rewrites chains mostly unchanged).
    cursor: usize,
    /// `old`'s rules by text, built on the first line the cursor misses.
    by_spec: Option<FxHashMap<&'a str, u32>>,
    rules: Vec<Arc<Rule>>,
    walk: WalkRules,
    lines: Vec<usize>,
}

impl<'a> Planning<'a> {
    /// The index of the old rule with text `spec`, if any.
    fn reuse(&mut self, spec: &str) -> Option<usize> {
        let old = &self.old?.rules;
        for k in [self.cursor, self.cursor + 1] {
            if old.get(k).is_some_and(|r| r.spec == spec) {
                self.cursor = k + 1;
                return Some(k);
            }
        }
        let by_spec = self.by_spec.get_or_insert_with(|| {
            let mut m = FxHashMap::with_capacity_and_hasher(old.len(), Default::default());
            for (k, r) in old.iter().enumerate() {
                m.insert(r.spec.as_str(), k as u32);
            }
            m
        });
        let k = *by_spec.get(spec)? as usize;
        self.cursor = k + 1;
        Some(k)
    }
}

impl Table {
    /// The slot named `name`, made (empty, without a chain) if there is none.
    fn slot(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.slots.len() as u32;
        let name: Arc<str> = Arc::from(name);
        self.ids.insert(Arc::clone(&name), id);
        self.slots.push(Slot { name, chain: None });
        self.dead += 1;
        id
    }

    /// The chain in slot `id`, made empty if there is none.
    fn revive(&mut self, id: u32) -> &mut Chain {
        let slot = &mut self.slots[id as usize];
        if slot.chain.is_none() {
            self.dead -= 1;
        }
        slot.chain.get_or_insert_with(Chain::default)
    }

    /// Drops the chain in slot `id`, keeping the slot.
    fn kill(&mut self, id: u32) {
        if self.slots[id as usize].chain.take().is_some() {
            self.dead += 1;
        }
    }

    fn get(&self, name: &str) -> Option<&Chain> {
        self.slots[*self.ids.get(name)? as usize].chain.as_ref()
    }

    #[cfg(test)]
    fn get_mut(&mut self, name: &str) -> Option<&mut Chain> {
        self.slots[*self.ids.get(name)? as usize].chain.as_mut()
    }

    /// The chains that exist, built-ins first.
    fn live(&self) -> impl Iterator<Item = (&str, &Chain)> {
        self.slots
            .iter()
            .filter_map(|s| Some((&*s.name, s.chain.as_ref()?)))
    }

    /// Resolves `op` against this table: every rule parsed (or reused from the chain it is
    /// appended to) and every jump checked against the chains that exist once `op` is applied.
    /// The declared chains must have slots already.
    fn plan(&self, op: &TableOps<'_>, noflush: bool) -> Result<Plan, RestoreError> {
        let builtins = op.table.builtins().len();
        let mut status = vec![UNCHANGED; self.slots.len()];
        let mut declared = Vec::with_capacity(op.declared.len());
        for (name, policy) in &op.declared {
            let id = self.ids[*name];
            status[id as usize] = DECLARED;
            declared.push((id, *policy));
        }
        let mut deleted = Vec::with_capacity(op.deleted.len());
        for name in &op.deleted {
            if let Some(&id) = self.ids.get(*name) {
                status[id as usize] = DELETED;
                deleted.push(id);
            }
        }
        let exists = |id: u32| match status.get(id as usize) {
            None => false,
            Some(&DELETED) => false,
            Some(&DECLARED) => true,
            Some(_) => {
                (noflush && self.slots[id as usize].chain.is_some()) || (id as usize) < builtins
            }
        };

        let mut chains: Vec<Planning<'_>> = Vec::new();
        let mut by_name: FxHashMap<&str, usize> = FxHashMap::default();
        let mut last: Option<(&str, usize)> = None;
        for a in &op.appends {
            let at = match last {
                Some((name, at)) if name == a.chain => at,
                _ => {
                    let at = *by_name.entry(a.chain).or_insert_with(|| {
                        let id = self.ids.get(a.chain).copied().unwrap_or(NO_SLOT);
                        chains.push(Planning {
                            id,
                            name: a.chain,
                            old: self.slots.get(id as usize).and_then(|s| s.chain.as_ref()),
                            cursor: 0,
                            by_spec: None,
                            rules: Vec::new(),
                            walk: WalkRules::default(),
                            lines: Vec::new(),
                        });
                        chains.len() - 1
                    });
                    last = Some((a.chain, at));
                    at
                }
            };
            let c = &mut chains[at];
            let (rule, walk) = match (c.reuse(a.spec), c.old) {
                (Some(k), Some(old)) => (Arc::clone(&old.rules[k]), old.walk[k]),
                _ => {
                    let rule = parse_rule(a.spec).map_err(|message| RestoreError::Line {
                        line: a.line,
                        message,
                    })?;
                    let walk = WalkRule::compile(&rule, &self.ids);
                    (Arc::new(rule), walk)
                }
            };
            c.rules.push(rule);
            c.walk.push(walk);
            c.lines.push(a.line);
        }

        // Check jumps against the chains that will exist once the op is applied; report the
        // first bad line.
        let mut first: Option<RestoreError> = None;
        let line_of = |e: &RestoreError| match e {
            RestoreError::Line { line, .. } | RestoreError::NoSuchChain { line, .. } => *line,
            RestoreError::NoCommit(line) => *line,
        };
        for c in &chains {
            let chain_exists = exists(c.id);
            for (k, w) in c.walk.iter().enumerate() {
                let line = c.lines[k];
                let e = match (w.action, &c.rules[k].target) {
                    (Action::Jump(to), Target::Jump(name)) if !exists(to) => {
                        RestoreError::NoSuchChain {
                            line,
                            chain: name.to_string(),
                        }
                    }
                    _ if !chain_exists => RestoreError::Line {
                        line,
                        message: format!("Chain '{}' does not exist", c.name),
                    },
                    _ => continue,
                };
                if first.as_ref().is_none_or(|f| line < line_of(f)) {
                    first = Some(e);
                }
                break;
            }
        }
        if let Some(e) = first {
            return Err(e);
        }
        let appends = chains
            .into_iter()
            .map(|c| Appends {
                id: c.id,
                rules: c.rules,
                walk: c.walk,
            })
            .collect();
        Ok(Plan {
            declared,
            deleted,
            appends,
        })
    }

    /// Applies a checked plan.
    fn apply(&mut self, op: &TableOps<'_>, plan: Plan, noflush: bool) {
        let builtins = op.table.builtins().len();
        if !noflush {
            for id in 0..self.slots.len() {
                if id < builtins {
                    if let Some(c) = self.slots[id].chain.as_mut() {
                        c.clear();
                    }
                } else {
                    self.kill(id as u32);
                }
            }
        }
        for (id, policy) in plan.declared {
            let c = self.revive(id);
            c.clear();
            if (id as usize) < builtins {
                c.policy = Some(policy.unwrap_or("ACCEPT"));
            }
        }
        for id in plan.deleted {
            if id as usize >= builtins {
                self.kill(id);
            }
        }
        for a in plan.appends {
            let Some(c) = self
                .slots
                .get_mut(a.id as usize)
                .and_then(|s| s.chain.as_mut())
            else {
                continue;
            };
            if c.rules.is_empty() {
                c.rules = a.rules;
                c.walk = a.walk;
            } else {
                c.rules.extend(a.rules);
                c.walk.extend(a.walk);
            }
            c.reindex();
        }
    }

    /// Drops the slots of deleted chains that no rule jumps to, once they are the majority,
    /// renumbering the rest (built-ins keep the first slots) and the jumps to them.
    fn compact(&mut self) {
        if self.dead < 1024 || self.dead * 2 < self.slots.len() {
            return;
        }
        let mut keep = vec![false; self.slots.len()];
        for (id, s) in self.slots.iter().enumerate() {
            if let Some(c) = &s.chain {
                keep[id] = true;
                for w in c.walk.iter() {
                    if let Action::Jump(to) = w.action
                        && let Some(k) = keep.get_mut(to as usize)
                    {
                        *k = true;
                    }
                }
            }
        }
        let mut renumber = vec![NO_SLOT; self.slots.len()];
        let mut slots = Vec::with_capacity(self.slots.len() - self.dead);
        for (id, s) in std::mem::take(&mut self.slots).into_iter().enumerate() {
            if keep[id] {
                renumber[id] = slots.len() as u32;
                slots.push(s);
            }
        }
        let renumbered = |to: u32| renumber.get(to as usize).copied().unwrap_or(NO_SLOT);
        for c in slots.iter_mut().filter_map(|s| s.chain.as_mut()) {
            for w in c.walk.iter_mut() {
                if let Action::Jump(to) = &mut w.action {
                    *to = renumbered(*to);
                }
            }
            for e in c.index.iter_mut().flat_map(|ix| ix.v4.iter_mut()) {
                if e.jump != NO_SLOT {
                    e.jump = renumbered(e.jump);
                }
            }
        }
        self.ids = slots
            .iter()
            .enumerate()
            .map(|(id, s)| (Arc::clone(&s.name), id as u32))
            .collect();
        self.dead = slots.iter().filter(|s| s.chain.is_none()).count();
        self.slots = slots;
    }
}

// === impl Chain ===

impl Chain {
    /// The rules, in order.
    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    fn clear(&mut self) {
        self.rules.clear();
        self.walk.clear();
        self.index = None;
    }

    fn reindex(&mut self) {
        if self.walk.len() <= INDEX_THRESHOLD {
            self.index = None;
            return;
        }
        let mut index = ChainIndex {
            v4: vec![
                V4Entry {
                    jump: NO_SLOT,
                    ..V4Entry::default()
                };
                (self.walk.len() * 2).next_power_of_two()
            ],
            ..ChainIndex::default()
        };
        for (i, w) in self.walk.iter().enumerate() {
            let key = if w.flags & F_NETS_V6 != 0 {
                index_key(&self.rules[i].matches)
            } else {
                w.index_key()
            };
            match key {
                Some(key) => index.insert(key, i as u32, w.key_jump()),
                None => index.rest.push(i as u32),
            }
        }
        self.index = Some(Box::new(index));
    }
}

/// The (destination, protocol, port) a rule can only match, if it names one exactly.
fn index_key(m: &Match) -> Option<(IpAddr, Protocol, u16)> {
    match (m.destination, m.protocol, m.dport) {
        (Some((false, net)), Some(proto), Some(port))
            if net.prefix_len() == net.max_prefix_len() =>
        {
            Some((net.addr(), proto, port))
        }
        _ => None,
    }
}

// === impl ChainIndex ===

impl ChainIndex {
    /// Never 0 (the empty mark): the protocol takes the low byte, plus one.
    fn v4_key(ip: Ipv4Addr, protocol: Protocol, port: u16) -> u64 {
        (u64::from(u32::from(ip)) << 32) | (u64::from(port) << 8) | (protocol as u64 + 1)
    }

    /// Where probing for `key` starts (Fibonacci hashing: the product's top bits).
    fn home(&self, key: u64) -> usize {
        let bits = self.v4.len().trailing_zeros();
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }

    /// Adds `rule` under its key; `jump` is [`WalkRule::key_jump`] (IPv4 keys only).
    fn insert(&mut self, (ip, protocol, port): (IpAddr, Protocol, u16), rule: u32, jump: u32) {
        let value = match ip {
            IpAddr::V4(ip) => {
                let key = Self::v4_key(ip, protocol, port);
                let mask = self.v4.len() - 1;
                let mut at = self.home(key);
                loop {
                    let e = &mut self.v4[at];
                    if e.key == 0 {
                        *e = V4Entry {
                            key,
                            value: rule,
                            jump,
                        };
                        return;
                    }
                    if e.key == key {
                        // Several rules share the key: the walk reads them all.
                        e.jump = NO_SLOT;
                        break &mut e.value;
                    }
                    at = (at + 1) & mask;
                }
            }
            IpAddr::V6(_) => match self.v6.entry((ip, protocol, port)) {
                Entry::Vacant(e) => {
                    e.insert(rule);
                    return;
                }
                Entry::Occupied(e) => e.into_mut(),
            },
        };
        if *value & MULTI != 0 {
            self.multi[(*value & !MULTI) as usize].push(rule);
        } else {
            self.multi.push(vec![*value, rule]);
            *value = MULTI | (self.multi.len() - 1) as u32;
        }
    }

    /// The indexed rules for `p`'s destination, in order, and the entry's jump (see
    /// [`V4Entry::jump`]).
    fn get(&self, p: &Packet) -> (&[u32], u32) {
        let (value, jump) = match p.dst.ip() {
            IpAddr::V4(ip) => {
                let key = Self::v4_key(ip, p.protocol, p.dst.port());
                let mask = self.v4.len() - 1;
                let mut at = self.home(key);
                loop {
                    let e = &self.v4[at];
                    if e.key == key {
                        break (Some(&e.value), e.jump);
                    }
                    if e.key == 0 {
                        break (None, NO_SLOT);
                    }
                    at = (at + 1) & mask;
                }
            }
            ip @ IpAddr::V6(_) => (self.v6.get(&(ip, p.protocol, p.dst.port())), NO_SLOT),
        };
        let rules: &[u32] = match value {
            None => &[],
            Some(v) if v & MULTI != 0 => &self.multi[(v & !MULTI) as usize],
            Some(v) => std::slice::from_ref(v),
        };
        (rules, jump)
    }
}

// === impl WalkRule ===

impl WalkRule {
    /// The walk's form of `rule`, its jump resolved by `ids` (to [`NO_SLOT`] if the chain has
    /// no slot).
    fn compile(rule: &Rule, ids: &FxHashMap<Arc<str>, u32>) -> Self {
        let m = &rule.matches;
        let mut flags = 0;
        let mut net = |n: Option<(bool, IpNet)>, has: u16, neg: u16| match n {
            None => (0, 0),
            Some((negated, net)) => {
                flags |= has | if negated { neg } else { 0 };
                match net {
                    IpNet::V4(net) => (u32::from(net.network()), net.prefix_len()),
                    IpNet::V6(_) => {
                        flags |= F_NETS_V6;
                        (0, 0)
                    }
                }
            }
        };
        let (source, source_len) = net(m.source, F_SRC, F_SRC_NEG);
        let (destination, destination_len) = net(m.destination, F_DST, F_DST_NEG);
        if let Some((neg, _, _)) = m.mark {
            flags |= F_MARK | if neg { F_MARK_NEG } else { 0 };
        }
        for (on, bit) in [
            (m.dport.is_some(), F_DPORT),
            (m.dst_local, F_DST_LOCAL),
            (m.src_local.is_some(), F_SRC_LOCAL),
            (m.src_local == Some(true), F_SRC_LOCAL_WANT),
            (m.recent.is_some(), F_RECENT),
            (m.probability.is_some(), F_PROBABILITY),
            (
                !matches!(&rule.target, Target::Jump(to) if &**to == "KUBE-MARK-MASQ"),
                F_RECORD,
            ),
        ] {
            if on {
                flags |= bit;
            }
        }
        let action = match &rule.target {
            Target::Jump(to) => Action::Jump(ids.get(&**to).copied().unwrap_or(NO_SLOT)),
            Target::Dnat(SocketAddr::V4(to)) => Action::Dnat(u32::from(*to.ip()), to.port()),
            Target::Dnat(SocketAddr::V6(_)) => Action::Dnat6,
            Target::Reject => Action::Reject,
            Target::Drop => Action::Drop,
            Target::Accept => Action::Accept,
            Target::Return => Action::Return,
            Target::Mark { .. } => Action::Mark,
            Target::Masquerade => Action::Masquerade,
        };
        Self {
            flags,
            protocol: m.protocol,
            dport: m.dport.unwrap_or(0),
            source,
            destination,
            source_len,
            destination_len,
            probability: m.probability.unwrap_or(1.0),
            action,
        }
    }

    /// The IPv4 (destination, protocol, port) this rule can only match, if it names one.
    fn index_key(&self) -> Option<(IpAddr, Protocol, u16)> {
        let exact = self.flags & (F_DST | F_DST_NEG | F_DPORT) == F_DST | F_DPORT
            && self.destination_len == 32;
        match self.protocol {
            Some(proto) if exact => Some((
                IpAddr::V4(Ipv4Addr::from(self.destination)),
                proto,
                self.dport,
            )),
            _ => None,
        }
    }

    /// The target slot if this rule is a recorded jump whose only matches are the exact
    /// (IPv4 destination, protocol, port) of its index key, so a key hit means it matches;
    /// [`NO_SLOT`] otherwise.
    fn key_jump(&self) -> u32 {
        match self.action {
            Action::Jump(to)
                if self.flags == F_DST | F_DPORT | F_RECORD && self.index_key().is_some() =>
            {
                to
            }
            _ => NO_SLOT,
        }
    }

    /// Whether the rule matches, checking (and calling `env` for) matches in the order iptables
    /// does. `rule` gives the full rule, for IPv6 networks and the `recent` match's list.
    fn matches<'r>(
        &self,
        p: &Packet,
        mark: u32,
        env: &mut dyn WalkEnv,
        rule: impl Fn() -> &'r Arc<Rule>,
    ) -> bool {
        let f = self.flags;
        if self.protocol.is_some_and(|proto| proto != p.protocol) {
            return false;
        }
        if f & F_NETS_V6 != 0 {
            let m = &rule().matches;
            if let Some((neg, net)) = m.source
                && net.contains(&p.src.ip()) == neg
            {
                return false;
            }
            if let Some((neg, net)) = m.destination
                && net.contains(&p.dst.ip()) == neg
            {
                return false;
            }
        } else {
            // The prefix length's mask (a shift by 32 of a u64 leaves 0 for /0).
            let inside = |ip: IpAddr, net: u32, len: u8| match ip {
                IpAddr::V4(ip) => u32::from(ip) & ((!0u64 << (32 - len)) as u32) == net,
                IpAddr::V6(_) => false,
            };
            if f & F_SRC != 0
                && inside(p.src.ip(), self.source, self.source_len) == (f & F_SRC_NEG != 0)
            {
                return false;
            }
            if f & F_DST != 0
                && inside(p.dst.ip(), self.destination, self.destination_len)
                    == (f & F_DST_NEG != 0)
            {
                return false;
            }
        }
        if f & F_DPORT != 0 && self.dport != p.dst.port() {
            return false;
        }
        if f & F_MARK != 0
            && let Some((neg, value, mask)) = rule().matches.mark
            && ((mark & mask) == value) == neg
        {
            return false;
        }
        if f & F_DST_LOCAL != 0 && !env.is_local(p.dst.ip()) {
            return false;
        }
        if f & F_SRC_LOCAL != 0 && env.is_local(p.src.ip()) != (f & F_SRC_LOCAL_WANT != 0) {
            return false;
        }
        if f & F_RECENT != 0
            && let Some(r) = &rule().matches.recent
        {
            if r.set {
                env.recent_set(&r.name, p.src.ip());
            } else if !env.recent_check(&r.name, p.src.ip(), r.seconds) {
                return false;
            }
        }
        // The statistic match draws last, as iptables evaluates matches left to right and
        // kube-proxy writes it after the others.
        if f & F_PROBABILITY != 0 && env.random() >= self.probability {
            return false;
        }
        true
    }
}

// === parsing ===

/// One table's lines of a restore, borrowed from the input.
struct TableOps<'t> {
    table: TableName,
    declared: FxHashMap<&'t str, Option<&'static str>>,
    deleted: FxHashSet<&'t str>,
    appends: Vec<Append<'t>>,
}

/// An `-A CHAIN SPEC` line.
struct Append<'t> {
    line: usize,
    chain: &'t str,
    spec: &'t str,
}

impl TableOps<'_> {
    fn new(table: TableName) -> Self {
        Self {
            table,
            declared: FxHashMap::default(),
            deleted: FxHashSet::default(),
            appends: Vec::new(),
        }
    }
}

fn parse_restore(text: &str) -> Result<Vec<TableOps<'_>>, RestoreError> {
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
        // The common line first: a partial sync at 10,000 Services is 10,000 of them.
        if let Some(rest) = line.strip_prefix("-A ")
            && let Some(ops) = cur.as_mut()
        {
            let rest = rest.trim_start();
            let (chain, spec) = rest
                .split_once(' ')
                .ok_or_else(|| err("rule without a target".into()))?;
            ops.appends.push(Append {
                line: line_no,
                chain,
                spec: spec.trim(),
            });
            continue;
        }
        if let Some(name) = line.strip_prefix('*') {
            if cur.is_some() {
                return Err(err("table started before COMMIT".into()));
            }
            let t = TableName::parse(name).ok_or_else(|| {
                err(format!(
                    "can't initialize iptables table `{name}': Table does not exist"
                ))
            })?;
            cur = Some(TableOps::new(t));
            continue;
        }
        let Some(ops) = cur.as_mut() else {
            return Err(err(format!("no table given before `{line}`")));
        };
        if line == "COMMIT" {
            out.push(cur.take().expect("checked above"));
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
                return Err(err(format!(
                    "chain name `{name}' too long (must be under 29 chars)"
                )));
            }
            ops.deleted.remove(name);
            ops.declared.insert(name, policy);
            continue;
        }
        if let Some(name) = line.strip_prefix("-X ") {
            let name = name.trim();
            if ops.table.builtins().contains(&name) {
                return Err(err(format!("can't delete built-in chain `{name}'")));
            }
            ops.declared.remove(name);
            ops.deleted.insert(name);
            continue;
        }
        return Err(err(format!("unknown command `{line}`")));
    }
    if cur.is_some() {
        return Err(RestoreError::NoCommit(last_line));
    }
    Ok(out)
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
        s.parse()
            .map_err(|_| format!("host/network `{s}' not found"))
    } else {
        s.parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| format!("host/network `{s}' not found"))
    }
}

fn parse_mark(s: &str) -> Result<(u32, u32), String> {
    let hex = |v: &str| {
        u32::from_str_radix(v.trim_start_matches("0x"), 16)
            .map_err(|_| format!("Bad mark value `{s}'"))
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
                    "tcp"
                        | "udp"
                        | "sctp"
                        | "comment"
                        | "statistic"
                        | "recent"
                        | "addrtype"
                        | "mark"
                        | "conntrack"
                ) {
                    return Err(format!(
                        "Couldn't load match `{module}':No such file or directory"
                    ));
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
                m.dport = Some(
                    v.parse()
                        .map_err(|_| format!("invalid port/service `{v}' specified"))?,
                );
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
                let p: f64 = v
                    .parse()
                    .map_err(|_| format!("bad --probability \"{v}\""))?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(format!(
                        "--probability must be between 0 and 1, got \"{v}\""
                    ));
                }
                m.probability = Some(p);
                i += 2;
            }
            "--name" => {
                m.recent
                    .get_or_insert(Recent {
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
