//! The walk of one table for the first packet of a connection: chain by chain and rule by rule
//! as the kernel does, through the index where a chain has one, recording (chain, rule)
//! positions for traces and `curl -v`.

use super::*;

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
        }
        None
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
}
