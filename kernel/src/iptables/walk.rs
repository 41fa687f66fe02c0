//! The walk of one table for the first packet of a connection: chain by chain and rule by rule
//! as the kernel does, through the index where a chain has one, recording (chain, rule)
//! positions for traces and `curl -v`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use super::{compiled::*, packet::*, rule::*, table::*};

/// One table's walk for one packet.
pub(super) struct Walk<'t, 'w> {
    pub(super) table_name: TableName,
    pub(super) table: &'t Table,
    pub(super) p: Packet,
    pub(super) mark: &'w mut u32,
    /// [`ct_fails`] of whether a DNAT rule has rewritten the packet's destination.
    pub(super) ct_fails: u16,
    pub(super) env: &'w mut dyn WalkEnv,
    pub(super) steps: &'w mut Steps<'t>,
}

impl<'t> Walk<'t, '_> {
    /// Walks chain `id` at jump depth `depth`: Some(outcome) if a rule decided (the walk of the
    /// table ends), None if the chain fell through or RETURNed (the caller takes back the jump's
    /// steps and goes on with its next rule).
    pub(super) fn chain(&mut self, id: u32, depth: usize) -> Option<Outcome> {
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
    pub(super) fn rule(
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
                if !rule.matches(&self.p, *self.mark, self.ct_fails, self.env, || &chain.rules[idx as usize])
                {
                    return None;
                }
                (rule.action, rule.flags & F_RECORD != 0)
            }
        };
        let step = StepRef { table: self.table_name, slot, rule: idx };
        match action {
            Action::Jump(to) => {
                // The kernel refuses loops at load time; a walk this deep is one.
                if depth + 1 >= MAX_DEPTH {
                    return Some(Some(Outcome::Drop));
                }
                if self.table.slots.get(to as usize).is_none_or(|s| s.chain.is_none()) {
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
            Action::Snat => return Some(Some(snat(&chain.rules[idx as usize]))),
        }
        None
    }
}

/// A `-j SNAT` rule's outcome, out of line: the VPC CNI's one rule is walked for a connection
/// at most once, kube-proxy's never.
#[cold]
#[inline(never)]
fn snat(rule: &Rule) -> Outcome {
    match rule.target {
        Target::Snat(s) => Outcome::Snat(s.to),
        _ => unreachable!("Snat is compiled from a SNAT target"),
    }
}

/// How [`Walk::rule`] gets a rule: read it, or take the jump the index decided.
#[derive(Clone, Copy)]
pub(super) enum Pick<'t> {
    Read(&'t WalkRule),
    /// A recorded jump to this slot, matched by the index key (see [`V4Entry::jump`]).
    Jump(u32),
}

/// An indexed chain's rules that may match a packet, in order, without allocating: the index's
/// exact hits merged with the rules the index cannot place.
pub(super) struct Cursor<'a> {
    pub(super) a: &'a [u32],
    pub(super) b: &'a [u32],
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

pub(super) enum Outcome {
    Continue,
    Dnat(SocketAddr),
    Reject,
    Drop,
    Masquerade,
    /// `-j SNAT`: source NAT to this address.
    Snat(IpAddr),
}

/// Jumps deeper than this are a loop (the kernel refuses loops at load time; we stop the walk).
pub(super) const MAX_DEPTH: usize = 32;

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
pub(super) struct StepRef<'t> {
    pub(super) table: TableName,
    pub(super) slot: &'t Slot,
    pub(super) rule: u32,
}

/// Steps inline up to this many (a ClusterIP walk records 4); more spill to the heap.
pub(super) const INLINE_STEPS: usize = 8;

/// The walk's steps without a heap allocation in the common case.
#[derive(Clone, Default)]
pub(super) struct Steps<'t> {
    pub(super) len: usize,
    pub(super) inline: [Option<StepRef<'t>>; INLINE_STEPS],
    pub(super) more: Vec<StepRef<'t>>,
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
    /// The source address a `-j SNAT` rule in nat POSTROUTING gave the packet, if one did
    /// (the VPC CNI's SNAT of traffic leaving the VPC to the primary ENI's address).
    pub snat: Option<IpAddr>,
    /// Accept, or the filter table's REJECT/DROP.
    pub disposition: Disposition,
    pub(super) steps: Steps<'t>,
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

impl<'t> Verdict<'t> {
    /// The rules that jumped, DNATed, marked or decided, in order.
    pub fn steps(&self) -> impl DoubleEndedIterator<Item = Step<'t>> + '_ {
        self.steps.iter().map(StepRef::step)
    }
}

impl PartialEq for Verdict<'_> {
    fn eq(&self, other: &Self) -> bool {
        (self.dst, self.dnat, self.masquerade, self.snat, self.disposition)
            == (other.dst, other.dnat, other.masquerade, other.snat, other.disposition)
            && self.steps().eq(other.steps())
    }
}

impl std::fmt::Debug for Verdict<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verdict")
            .field("dst", &self.dst)
            .field("dnat", &self.dnat)
            .field("masquerade", &self.masquerade)
            .field("snat", &self.snat)
            .field("disposition", &self.disposition)
            .field("steps", &self.steps().collect::<Vec<_>>())
            .finish()
    }
}

impl<'t> StepRef<'t> {
    pub(super) fn step(&self) -> Step<'t> {
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

impl<'t> Steps<'t> {
    pub(super) fn push(&mut self, s: StepRef<'t>) {
        if self.len < INLINE_STEPS {
            self.inline[self.len] = Some(s);
        } else {
            self.more.push(s);
        }
        self.len += 1;
    }

    pub(super) fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.more.truncate(len.saturating_sub(INLINE_STEPS));
            self.len = len;
        }
    }

    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = &StepRef<'t>> + '_ {
        self.inline[..self.len.min(INLINE_STEPS)].iter().flatten().chain(&self.more)
    }
}
