//! The node's iptables: the `filter` and `nat` tables as kube-proxy programs them with
//! `iptables-restore`, and the walk a real kernel does through them for the first packet of a
//! connection.
//!
//! Only a connection's first packet is walked, so a `-m conntrack --ctstate` match is decided
//! when the rule is compiled, for the two sets of states that packet can have: NEW, and NEW and
//! DNAT in the chains after a DNAT rule rewrote it ([`CtStates::first_packet`]). kube-proxy's `--ctstate NEW` jumps always
//! match; `KUBE-FORWARD`'s `INVALID` and `RELATED,ESTABLISHED` rules never do (they are for the
//! later packets a real kernel sees and this model does not), so there only its mark rule decides.
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
    collections::hash_map::Entry,
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4},
    sync::Arc,
};

use ipnet::IpNet;

use crate::Protocol;
pub use crate::fxhash::{FxHashMap, FxHashSet, FxHasher};

mod compiled;
mod parse;
mod walk;

use compiled::*;
use parse::*;
use walk::*;

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
    #[error("iptables-restore: line {line} failed: {error}")]
    Line {
        /// 1-based line number in the input.
        line: usize,
        /// What was wrong, in iptables' words.
        error: LineError,
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

/// What was wrong with one line of a restore (or one ensured rule), as iptables says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// `-A CHAIN` with nothing after it.
    #[error("rule without a target")]
    NoTarget,
    /// A rule spec without `-j`.
    #[error("rule without a target (-j)")]
    NoJump,
    /// `*table` inside another table.
    #[error("table started before COMMIT")]
    TableBeforeCommit,
    /// `*table` of a table netlab's kernel does not have.
    #[error("can't initialize iptables table `{0}': Table does not exist")]
    NoSuchTable(String),
    /// A command before any `*table`.
    #[error("no table given before `{0}`")]
    NoTable(String),
    /// `:` alone.
    #[error("chain name missing")]
    NoChainName,
    /// A policy other than `ACCEPT`, `DROP` or `-`.
    #[error("bad policy `{0}`")]
    BadPolicy(String),
    /// A built-in chain declared without a policy, or a user chain with one.
    #[error("chain `{0}`: built-in chains take a policy, user chains `-`")]
    PolicyMismatch(String),
    /// A chain name of 29 characters or more.
    #[error("chain name `{0}' too long (must be under 29 chars)")]
    ChainNameTooLong(String),
    /// `-X` of a built-in chain.
    #[error("can't delete built-in chain `{0}'")]
    DeleteBuiltin(String),
    /// A line that is no restore command.
    #[error("unknown command `{0}`")]
    UnknownCommand(String),
    /// A `-X` of a chain still jumped to, or an ensured rule's chain that is not there.
    #[error("Chain '{0}' does not exist")]
    NoSuchChain(String),
    /// An ensured rule that is not `TABLE CHAIN RULESPEC`.
    #[error("expected `TABLE CHAIN RULESPEC`, got `{0}`")]
    BadEnsure(String),
    /// A `"` that is never closed.
    #[error("unterminated quote")]
    UnterminatedQuote,
    /// An option given without its argument.
    #[error("option \"{0}\" requires an argument")]
    MissingArgument(String),
    /// `-m` of a match module netlab's kernel does not have.
    #[error("Couldn't load match `{0}':No such file or directory")]
    UnknownMatch(String),
    /// `-p` of an unknown protocol.
    #[error("unknown protocol \"{0}\" specified")]
    UnknownProtocol(String),
    /// `-s`/`-d` that is no address or network.
    #[error("host/network `{0}' not found")]
    BadNetwork(String),
    /// `--dport` that is no port.
    #[error("invalid port/service `{0}' specified")]
    BadPort(String),
    /// `--mode` other than `random`.
    #[error("Bad mode \"{0}\"")]
    BadMode(String),
    /// `--probability` that is no number.
    #[error("bad --probability \"{0}\"")]
    BadProbability(String),
    /// `--probability` outside [0, 1].
    #[error("--probability must be between 0 and 1, got \"{0}\"")]
    ProbabilityOutOfRange(String),
    /// `--seconds` that is no number.
    #[error("bad --seconds \"{0}\"")]
    BadSeconds(String),
    /// `--src-type`/`--dst-type` other than `LOCAL`.
    #[error("unsupported --{option} \"{value}\"")]
    UnsupportedAddrType {
        /// `src-type` or `dst-type`.
        option: &'static str,
        /// What was given.
        value: String,
    },
    /// `--mark` that is no mark.
    #[error("Bad mark value `{0}'")]
    BadMark(String),
    /// `--ctstate` with a word that is no state (the list from that word on).
    #[error("Bad ctstate \"{0}\"")]
    BadCtState(String),
    /// `-j DNAT` without `--to-destination`.
    #[error("DNAT: --to-destination is required")]
    NoDnatDestination,
    /// `--to-destination` that is no address.
    #[error("Bad IP address \"{0}\"")]
    BadAddress(String),
    /// A `-j MARK` option netlab's kernel does not know.
    #[error("MARK: unknown option \"{0}\"")]
    UnknownMarkOption(String),
    /// `-j` of a target that is neither built in nor a chain.
    #[error("Couldn't load target `{0}'")]
    UnknownTarget(String),
    /// An option netlab's kernel does not know.
    #[error("unknown option \"{0}\"")]
    UnknownOption(String),
    /// `-m recent` without `--name`.
    #[error("recent: --name is required")]
    NoRecentName,
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
    /// `-m conntrack [!] --ctstate STATES`: (negated, the states). The walk sees only a
    /// connection's first packet, whose states are [`CtStates::first_packet`].
    pub ctstate: Option<(bool, CtStates)>,
    /// `-m comment --comment TEXT`.
    pub comment: Option<Arc<str>>,
}

/// A set of conntrack states as `--ctstate` names them (libxt_conntrack's state bits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CtStates(u8);

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
    /// The conditions a packet must meet, compiled from the spec.
    pub matches: Match,
    /// What a matching packet gets (`-j`): a jump, DNAT, REJECT, ...
    pub target: Target,
}

/// A chain: its rules and, for a built-in chain, its policy.
///
/// `repr(C)`: what the walk reads (`walk`, `index`) comes first, so that with `Slot`'s
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

// === impl CtStates ===

impl CtStates {
    /// A packet conntrack could not place.
    pub const INVALID: Self = Self(1);
    /// The first packet of a connection.
    pub const NEW: Self = Self(1 << 1);
    /// A packet of a connection that has seen packets both ways.
    pub const ESTABLISHED: Self = Self(1 << 2);
    /// The first packet of a connection related to another (an ICMP error, FTP data).
    pub const RELATED: Self = Self(1 << 3);
    /// A packet the raw table exempted from tracking (`-j CT --notrack`).
    pub const UNTRACKED: Self = Self(1 << 4);
    /// A connection whose source was rewritten (SNAT, MASQUERADE; set in POSTROUTING).
    pub const SNAT: Self = Self(1 << 5);
    /// A connection whose destination was rewritten (DNAT; set in PREROUTING or OUTPUT).
    pub const DNAT: Self = Self(1 << 6);

    /// The names `--ctstate` takes, in the order iptables tries them: each word of the list
    /// is matched case-insensitively against a name's prefix of the word's length (libxt_conntrack
    /// `conntrack_ps_state`'s `strncasecmp`), so `new` and `N` both mean NEW.
    const NAMES: [(&'static str, Self); 7] = [
        ("INVALID", Self::INVALID),
        ("NEW", Self::NEW),
        ("ESTABLISHED", Self::ESTABLISHED),
        ("RELATED", Self::RELATED),
        ("UNTRACKED", Self::UNTRACKED),
        ("SNAT", Self::SNAT),
        ("DNAT", Self::DNAT),
    ];

    /// The states of a connection's first packet as the walk sees it: NEW, plus DNAT in the
    /// chains after a DNAT rule rewrote its destination (the kernel sets `IPS_DST_NAT` then; the
    /// SNAT state only comes with the MASQUERADE that ends the walk).
    pub fn first_packet(dnat: bool) -> Self {
        if dnat { Self(Self::NEW.0 | Self::DNAT.0) } else { Self::NEW }
    }

    /// Parses a `--ctstate` list (`RELATED,ESTABLISHED`) with iptables' error text, which quotes
    /// the list from the bad word on (libxt_conntrack `conntrack_ps_states`).
    pub fn parse(list: &str) -> Result<Self, LineError> {
        let mut states = Self::default();
        let mut rest = list;
        loop {
            let (word, next) = match rest.split_once(',') {
                Some((word, next)) => (word, Some(next)),
                None => (rest, None),
            };
            let state = Self::NAMES
                .iter()
                .find(|(name, _)| {
                    !word.is_empty()
                        && word.len() <= name.len()
                        && name[..word.len()].eq_ignore_ascii_case(word)
                })
                .map(|(_, s)| *s)
                .ok_or_else(|| LineError::BadCtState(rest.to_string()))?;
            states.0 |= state.0;
            match next {
                Some(next) => rest = next,
                None => return Ok(states),
            }
        }
    }

    /// Whether any state of `other` is in this set.
    pub fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }
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
        self.builtins().iter().position(|b| *b == name).expect("a built-in chain of this table") as u32
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
        self.inline[..self.len.min(INLINE_STEPS)].iter().flatten().chain(&self.more)
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
        Self { filter: mk(TableName::Filter), nat: mk(TableName::Nat) }
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
        [&self.filter, &self.nat].iter().flat_map(|t| t.live()).map(|(_, c)| c.rules.len()).sum()
    }

    /// A chain, if it exists.
    pub fn chain(&self, table: TableName, name: &str) -> Option<&Chain> {
        self.table(table).get(name)
    }

    /// `iptables -C TABLE CHAIN RULE || iptables -I CHAIN RULE`: inserts `spec` at the top of
    /// `chain` unless an identical rule is already there. `line` is `TABLE CHAIN RULESPEC`.
    pub fn ensure(&mut self, line: &str) -> Result<bool, RestoreError> {
        let err = |error: LineError| RestoreError::Line { line: 1, error };
        let mut parts = line.trim().splitn(3, ' ');
        let (Some(table), Some(chain), Some(spec)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(err(LineError::BadEnsure(line.to_string())));
        };
        let table = TableName::parse(table).ok_or_else(|| err(LineError::NoSuchTable(table.to_string())))?;
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
            .ok_or_else(|| err(LineError::NoSuchChain(chain.to_string())))?;
        if c.rules.iter().any(|r| r.spec == rule.spec) {
            return Ok(false);
        }
        c.rules.insert(0, Arc::new(rule));
        c.walk.insert_first(walk);
        c.reindex();
        Ok(true)
    }

    /// `iptables -C TABLE CHAIN RULE`: whether [`Tables::ensure`] would find `line` (`TABLE CHAIN
    /// RULESPEC`) in place already. A line that does not parse is not there.
    pub fn has_rule(&self, line: &str) -> bool {
        let mut parts = line.trim().splitn(3, ' ');
        let (Some(table), Some(chain), Some(spec)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        let (Some(table), Ok(rule)) = (TableName::parse(table), parse_rule(spec.trim())) else {
            return false;
        };
        self.chain(table, chain).is_some_and(|c| c.rules.iter().any(|r| r.spec == rule.spec))
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
        if let Outcome::Dnat(to) = self.walk((TableName::Nat, nat_in), p, false, &mut mark, env, &mut v.steps)
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
            (TableName::Filter, filter_chain),
            filter_packet,
            v.dnat,
            &mut mark,
            env,
            &mut v.steps,
        ) {
            Outcome::Reject => v.disposition = Disposition::Reject,
            Outcome::Drop => v.disposition = Disposition::Drop,
            _ => {}
        }
        if v.disposition == Disposition::Accept
            && let Outcome::Masquerade =
                self.walk((TableName::Nat, "POSTROUTING"), p, v.dnat, &mut mark, env, &mut v.steps)
        {
            v.masquerade = true;
        }
        v
    }

    /// Walks the built-in chain `start` of a table for `p`, `dnat` if a DNAT rule rewrote its
    /// destination before this hook (its conntrack states then include DNAT).
    fn walk<'t>(
        &'t self,
        (table_name, start): (TableName, &str),
        p: Packet,
        dnat: bool,
        mark: &mut u32,
        env: &mut dyn WalkEnv,
        steps: &mut Steps<'t>,
    ) -> Outcome {
        let mut w =
            Walk { table_name, table: self.table(table_name), p, mark, ct_fails: ct_fails(dnat), env, steps };
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
        self.slots.iter().filter_map(|s| Some((&*s.name, s.chain.as_ref()?)))
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
            Some(_) => (noflush && self.slots[id as usize].chain.is_some()) || (id as usize) < builtins,
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
                    let rule =
                        parse_rule(a.spec).map_err(|error| RestoreError::Line { line: a.line, error })?;
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
                        RestoreError::NoSuchChain { line, chain: name.to_string() }
                    }
                    _ if !chain_exists => {
                        RestoreError::Line { line, error: LineError::NoSuchChain(c.name.to_string()) }
                    }
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
        let appends =
            chains.into_iter().map(|c| Appends { id: c.id, rules: c.rules, walk: c.walk }).collect();
        Ok(Plan { declared, deleted, appends })
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
            let Some(c) = self.slots.get_mut(a.id as usize).and_then(|s| s.chain.as_mut()) else {
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
        self.ids = slots.iter().enumerate().map(|(id, s)| (Arc::clone(&s.name), id as u32)).collect();
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
                V4Entry { jump: NO_SLOT, ..V4Entry::default() };
                (self.walk.len() * 2).next_power_of_two()
            ],
            ..ChainIndex::default()
        };
        for (i, w) in self.walk.iter().enumerate() {
            let key =
                if w.flags & F_NETS_V6 != 0 { index_key(&self.rules[i].matches) } else { w.index_key() };
            match key {
                Some(key) => index.insert(key, i as u32, w.key_jump()),
                None => index.rest.push(i as u32),
            }
        }
        self.index = Some(Box::new(index));
    }
}

#[cfg(test)]
mod tests;
