//! The walk's compiled form of a chain: each rule's deciding matches packed into 32 bytes, two
//! to a cache line, with its jump resolved to a slot, and a long chain's index from
//! (destination, protocol, port) to the rules that can match. Built at restore time from the
//! parsed [`Rule`]s, which stay the source of truth for iptables-save and for traces.

use std::{
    collections::hash_map::Entry,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
};

use ipnet::IpNet;

use super::{packet::*, rule::*};
use crate::{Protocol, fxhash::FxHashMap};

/// A rule as the walk needs it, stored inline in its chain so that walking a chain reads
/// contiguous memory, two rules per cache line (32 bytes, aligned so none straddles two): the
/// matches that decide (IPv4 networks as address and prefix length), and the target with a jump
/// resolved to the target chain's slot. Comments, `recent` list names, IPv6 networks, `mark`
/// values and the spec stay in [`Rule`], read only when a `recent` or `mark` match runs, a
/// `MARK` target is taken (kube-proxy's few shared chains, which stay cached), a rule has an
/// IPv6 network, or a step is shown.
#[derive(Debug, Clone, Copy)]
#[repr(align(32))]
pub(super) struct WalkRule {
    pub(super) probability: f64,
    /// `-s`, `-d` when IPv4: address (masked).
    pub(super) source: u32,
    pub(super) destination: u32,
    pub(super) action: Action,
    /// `F_*` bits.
    pub(super) flags: u16,
    pub(super) dport: u16,
    pub(super) protocol: Option<Protocol>,
    /// `-s`, `-d` when IPv4: prefix length.
    pub(super) source_len: u8,
    pub(super) destination_len: u8,
}

const _: () = assert!(std::mem::size_of::<WalkRule>() == 32);

/// A chain's [`WalkRule`]s, two to a 64-byte-aligned line, so that a chain of two rules is one
/// cache line and one of four is two (the allocator aligns a `Vec<WalkRule>` to 32 bytes only,
/// and half the time it would straddle one line more).
#[derive(Debug, Clone, Default)]
pub(super) struct WalkRules {
    pub(super) lines: Vec<RuleLine>,
    pub(super) len: usize,
}

/// Two rules; the second is a copy of the first while the chain has an odd count.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
pub(super) struct RuleLine(pub(super) [WalkRule; 2]);

impl WalkRules {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn get(&self, i: usize) -> Option<&WalkRule> {
        if i < self.len { Some(&self.lines[i / 2].0[i % 2]) } else { None }
    }

    pub(super) fn push(&mut self, w: WalkRule) {
        if self.len.is_multiple_of(2) {
            self.lines.push(RuleLine([w, w]));
        } else {
            self.lines[self.len / 2].0[1] = w;
        }
        self.len += 1;
    }

    /// Puts `w` before the others (`iptables -I`; rare, so it rebuilds).
    pub(super) fn insert_first(&mut self, w: WalkRule) {
        let rest: Vec<WalkRule> = self.iter().copied().collect();
        self.clear();
        self.push(w);
        for r in rest {
            self.push(r);
        }
    }

    pub(super) fn extend(&mut self, other: WalkRules) {
        for &w in other.iter() {
            self.push(w);
        }
    }

    pub(super) fn clear(&mut self) {
        self.lines.clear();
        self.len = 0;
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &WalkRule> {
        self.lines.iter().flat_map(|l| &l.0).take(self.len)
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut WalkRule> {
        self.lines.iter_mut().flat_map(|l| &mut l.0).take(self.len)
    }
}

impl std::ops::Index<usize> for WalkRules {
    type Output = WalkRule;

    fn index(&self, i: usize) -> &WalkRule {
        self.get(i).expect("rule index within the chain")
    }
}

pub(super) const F_DPORT: u16 = 1;
pub(super) const F_MARK: u16 = 1 << 1;
pub(super) const F_MARK_NEG: u16 = 1 << 2;
pub(super) const F_SRC: u16 = 1 << 3;
pub(super) const F_SRC_NEG: u16 = 1 << 4;
pub(super) const F_DST: u16 = 1 << 5;
pub(super) const F_DST_NEG: u16 = 1 << 6;
/// Match `-s`/`-d` from the [`Rule`], and the matches only it carries: set when a network is
/// IPv6, or the rule has `[!] -o` or `! --dst-type LOCAL` (the VPC CNI's SNAT rule; kube-proxy
/// writes neither, so its IPv4 rules never take this path and the fast path tests nothing more
/// for them).
pub(super) const F_FULL: u16 = 1 << 7;
pub(super) const F_DST_LOCAL: u16 = 1 << 8;
pub(super) const F_SRC_LOCAL: u16 = 1 << 9;
pub(super) const F_SRC_LOCAL_WANT: u16 = 1 << 10;
pub(super) const F_RECENT: u16 = 1 << 11;
pub(super) const F_PROBABILITY: u16 = 1 << 12;
/// A jump that is recorded as a step (all but jumps to KUBE-MARK-MASQ).
pub(super) const F_RECORD: u16 = 1 << 13;
/// The `--ctstate` match fails for a first packet whose destination was not DNATed (the
/// packet's states are only NEW): `INVALID`, `RELATED,ESTABLISHED`, `! NEW`.
pub(super) const F_CT_FAILS: u16 = 1 << 14;
/// The `--ctstate` match fails for a first packet after a DNAT (states NEW and DNAT):
/// `RELATED,ESTABLISHED`, `! RELATED,ESTABLISHED,DNAT`. A `--ctstate` match that the first
/// packet always satisfies (`NEW`) sets neither bit and costs the walk nothing.
pub(super) const F_CT_FAILS_DNAT: u16 = 1 << 15;

/// The `F_CT_FAILS*` bit a walk checks: the one for whether the packet was DNATed.
pub(super) fn ct_fails(dnat: bool) -> u16 {
    if dnat { F_CT_FAILS_DNAT } else { F_CT_FAILS }
}

/// [`Target`] with the jump resolved to a slot of the table.
#[derive(Debug, Clone, Copy)]
pub(super) enum Action {
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
    /// `-j SNAT`: the address is in the [`Rule`].
    Snat,
}

/// A jump to a chain that has no slot (only in a restore that is then refused).
pub(super) const NO_SLOT: u32 = u32::MAX;

/// Bit set in an index value: the rest is an index into [`ChainIndex::multi`].
pub(super) const MULTI: u32 = 1 << 31;

/// A long chain's index from (destination, protocol, port) to the rules that can only match
/// that destination. Values are the one rule index for a key, or `MULTI | i` for `multi[i]`
/// when several rules share it (one allocation per shared key, not per key).
#[derive(Debug, Clone, Default)]
pub(super) struct ChainIndex {
    /// IPv4 keys, open addressing with linear probing, at most half full; key 0 is empty.
    /// One probe is usually one cache line, where a general hash map reads two.
    pub(super) v4: Vec<V4Entry>,
    /// IPv6 keys.
    pub(super) v6: FxHashMap<(IpAddr, Protocol, u16), u32>,
    pub(super) multi: Vec<Vec<u32>>,
    /// Rules the index cannot place (no exact destination): always candidates.
    pub(super) rest: Vec<u32>,
}

/// One IPv4 key of a [`ChainIndex`] (16 bytes, four to a cache line).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct V4Entry {
    pub(super) key: u64,
    pub(super) value: u32,
    /// When `value` is one rule that the key alone decides (it matches only protocol,
    /// destination and port) and that is a recorded jump: the jump's target slot, so the walk
    /// takes it without reading the rule (one dependent cache miss fewer per connection).
    /// [`NO_SLOT`] otherwise.
    pub(super) jump: u32,
}

/// The (destination, protocol, port) a rule can only match, if it names one exactly.
pub(super) fn index_key(m: &Match) -> Option<(IpAddr, Protocol, u16)> {
    match (m.destination, m.protocol, m.dport) {
        (Some((false, net)), Some(proto), Some(port)) if net.prefix_len() == net.max_prefix_len() => {
            Some((net.addr(), proto, port))
        }
        _ => None,
    }
}

// === impl ChainIndex ===

impl ChainIndex {
    /// Never 0 (the empty mark): the protocol takes the low byte, plus one.
    pub(super) fn v4_key(ip: Ipv4Addr, protocol: Protocol, port: u16) -> u64 {
        (u64::from(u32::from(ip)) << 32) | (u64::from(port) << 8) | (protocol as u64 + 1)
    }

    /// Where probing for `key` starts (Fibonacci hashing: the product's top bits).
    pub(super) fn home(&self, key: u64) -> usize {
        let bits = self.v4.len().trailing_zeros();
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }

    /// Adds `rule` under its key; `jump` is [`WalkRule::key_jump`] (IPv4 keys only).
    pub(super) fn insert(&mut self, (ip, protocol, port): (IpAddr, Protocol, u16), rule: u32, jump: u32) {
        let value = match ip {
            IpAddr::V4(ip) => {
                let key = Self::v4_key(ip, protocol, port);
                let mask = self.v4.len() - 1;
                let mut at = self.home(key);
                loop {
                    let e = &mut self.v4[at];
                    if e.key == 0 {
                        *e = V4Entry { key, value: rule, jump };
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
    /// [`V4Entry::jump`]). Inlined into the walk's one call (it is most of an indexed chain's
    /// lookup; out of line it costs a call and spills).
    #[inline(always)]
    pub(super) fn get(&self, p: &Packet) -> (&[u32], u32) {
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
    pub(super) fn compile(rule: &Rule, ids: &FxHashMap<Arc<str>, u32>) -> Self {
        let m = &rule.matches;
        let mut flags = 0;
        let mut net = |n: Option<(bool, IpNet)>, has: u16, neg: u16| match n {
            None => (0, 0),
            Some((negated, net)) => {
                flags |= has | if negated { neg } else { 0 };
                match net {
                    IpNet::V4(net) => (u32::from(net.network()), net.prefix_len()),
                    IpNet::V6(_) => {
                        flags |= F_FULL;
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
        // A first packet's conntrack states are one of two sets, so the match's answer for
        // each is known now.
        if let Some((neg, states)) = m.ctstate {
            for dnat in [false, true] {
                if states.intersects(CtStates::first_packet(dnat)) == neg {
                    flags |= ct_fails(dnat);
                }
            }
        }
        for (on, bit) in [
            (m.dport.is_some(), F_DPORT),
            (m.dst_local == Some(true), F_DST_LOCAL),
            (m.src_local.is_some(), F_SRC_LOCAL),
            (m.src_local == Some(true), F_SRC_LOCAL_WANT),
            (m.recent.is_some(), F_RECENT),
            (m.probability.is_some(), F_PROBABILITY),
            (!matches!(&rule.target, Target::Jump(to) if &**to == "KUBE-MARK-MASQ"), F_RECORD),
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
            Target::Snat(_) => Action::Snat,
        };
        if m.out_interface.is_some() || m.dst_local == Some(false) {
            flags |= F_FULL;
        }
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
    pub(super) fn index_key(&self) -> Option<(IpAddr, Protocol, u16)> {
        let exact =
            self.flags & (F_DST | F_DST_NEG | F_DPORT) == F_DST | F_DPORT && self.destination_len == 32;
        match self.protocol {
            Some(proto) if exact => Some((IpAddr::V4(Ipv4Addr::from(self.destination)), proto, self.dport)),
            _ => None,
        }
    }

    /// The target slot if this rule is a recorded jump whose only matches are the exact
    /// (IPv4 destination, protocol, port) of its index key, so a key hit means it matches;
    /// [`NO_SLOT`] otherwise.
    pub(super) fn key_jump(&self) -> u32 {
        match self.action {
            // F_FULL (an `-o`, say) is a flag too, so such a rule is never decided by its key.
            Action::Jump(to) if self.flags == F_DST | F_DPORT | F_RECORD && self.index_key().is_some() => to,
            _ => NO_SLOT,
        }
    }

    /// Whether the rule matches, checking (and calling `env` for) matches in the order iptables
    /// does. `ct_fails` is [`ct_fails`] of whether the packet was DNATed. `rule` gives the full
    /// rule, for [`F_FULL`]'s matches and the `recent` match's list.
    pub(super) fn matches<'r>(
        &self,
        p: &Packet,
        mark: u32,
        ct_fails: u16,
        env: &mut dyn WalkEnv,
        rule: impl Fn() -> &'r Arc<Rule>,
    ) -> bool {
        let f = self.flags;
        if f & ct_fails != 0 || self.protocol.is_some_and(|proto| proto != p.protocol) {
            return false;
        }
        if f & F_FULL != 0 {
            if !Self::full_matches(p, env, &rule().matches) {
                return false;
            }
        } else {
            // The prefix length's mask (a shift by 32 of a u64 leaves 0 for /0).
            let inside = |ip: IpAddr, net: u32, len: u8| match ip {
                IpAddr::V4(ip) => u32::from(ip) & ((!0u64 << (32 - len)) as u32) == net,
                IpAddr::V6(_) => false,
            };
            if f & F_SRC != 0 && inside(p.src.ip(), self.source, self.source_len) == (f & F_SRC_NEG != 0) {
                return false;
            }
            if f & F_DST != 0
                && inside(p.dst.ip(), self.destination, self.destination_len) == (f & F_DST_NEG != 0)
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

    /// The matches [`F_FULL`] sends to the full rule: `-s`, `-d` (any family), `[!] -o`, and
    /// `! --dst-type LOCAL` (those have no side effects, so checking them together here rather
    /// than each in its place in iptables' order gives the same answer).
    #[cold]
    #[inline(never)]
    fn full_matches(p: &Packet, env: &dyn WalkEnv, m: &Match) -> bool {
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
        if let Some((neg, name)) = &m.out_interface
            && iface_matches(name, env.out_interface(p.dst.ip())) == *neg
        {
            return false;
        }
        !(m.dst_local == Some(false) && env.is_local(p.dst.ip()))
    }
}

/// Whether interface `name` matches `pattern` as `-i`/`-o` do: exactly, or, when the pattern
/// ends in `+`, by the prefix before it (`vlan+`; `+` alone matches every interface).
pub(super) fn iface_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('+') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}
