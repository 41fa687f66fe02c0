//! The language of rules: tables, a rule's parsed matches and target, the `--ctstate` sets a
//! first packet can have, and the errors iptables-restore reports for them.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use ipnet::IpNet;

use crate::Protocol;

/// A table name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableName {
    /// `*filter`.
    Filter,
    /// `*nat`.
    Nat,
}

/// Built-in chains per table, in the order iptables-save prints them.
pub(super) const FILTER_BUILTINS: &[&str] = &["INPUT", "FORWARD", "OUTPUT"];
pub(super) const NAT_BUILTINS: &[&str] = &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"];

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
    /// `-j SNAT` without `--to-source` (libipt_SNAT's final check).
    #[error("You must specify --to-source")]
    NoSnatSource,
    /// `-o`/`-i` with a name too long for an interface (xtables_parse_interface).
    #[error("interface name `{0}' must be shorter than IFNAMSIZ (15)")]
    BadInterface(String),
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
    /// `[!] -o IFACE`: (negated, the name; a trailing `+` matches every name it prefixes).
    pub out_interface: Option<(bool, Arc<str>)>,
    /// `-m addrtype [!] --dst-type LOCAL`: the destination is (or is not) one of the node's
    /// addresses.
    pub dst_local: Option<bool>,
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
    /// `-j SNAT --to-source ADDR[:PORT[-PORT]] [--random] [--random-fully] [--persistent]`:
    /// source NAT to a given address (the VPC CNI's `AWS-SNAT-CHAIN-0`).
    Snat(Snat),
}

/// The `SNAT` target's options. The walk uses the address; ports and the flags are kept so the
/// rule is what was written (the lab keeps a connection's source port, as it does for
/// MASQUERADE, so `--random`/`--random-fully` change nothing it shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snat {
    /// `--to-source`'s address.
    pub to: IpAddr,
    /// `--to-source`'s port range, if it names one.
    pub ports: Option<(u16, u16)>,
    /// `--random`: hash-based source port randomisation.
    pub random: bool,
    /// `--random-fully`: PRNG source port randomisation.
    pub random_fully: bool,
    /// `--persistent`: the same source address for a client across connections.
    pub persistent: bool,
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
    /// SNAT state only comes with the MASQUERADE or SNAT that ends the walk).
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

impl TableName {
    pub(super) fn parse(s: &str) -> Option<Self> {
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

    pub(super) fn builtins(self) -> &'static [&'static str] {
        match self {
            Self::Filter => FILTER_BUILTINS,
            Self::Nat => NAT_BUILTINS,
        }
    }

    /// The slot of built-in chain `name` (built-ins take the first slots, in order, for good).
    pub(super) fn builtin(self, name: &str) -> u32 {
        self.builtins().iter().position(|b| *b == name).expect("a built-in chain of this table") as u32
    }
}
