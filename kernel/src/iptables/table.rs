//! One table (`filter` or `nat`): its chains by slot, each chain's rules with their compiled
//! form and index, and how a restore's lines are applied to it (planned against the old rules so
//! unchanged ones are reused).

use std::sync::Arc;

use super::{compiled::*, parse::*, rule::*};
use crate::fxhash::FxHashMap;

/// Chains with more rules than this get a destination index.
pub(super) const INDEX_THRESHOLD: usize = 16;

/// A chain: its rules and, for a built-in chain, its policy.
///
/// `repr(C)`: what the walk reads (`walk`, `index`) comes first, so that with `Slot`'s
/// alignment a jump to the chain reads one cache line before the rules.
#[derive(Debug, Clone, Default)]
#[repr(C)]
pub struct Chain {
    /// The walk's form of `rules`, one for one.
    pub(super) walk: WalkRules,
    /// (destination, protocol, port) → indices of rules that can only match that destination.
    pub(super) index: Option<Box<ChainIndex>>,
    /// Rules in order (shared: a restore that rewrites a chain reuses unchanged rules).
    pub(super) rules: Vec<Arc<Rule>>,
    /// `ACCEPT` for built-ins; None for user chains (`-`).
    pub policy: Option<&'static str>,
}

/// One table. Chains live in slots so a rule's jump is resolved to a slot number once, at
/// restore time, and the walk never looks a chain up by name. A slot keeps its name after its
/// chain is deleted (so a jump left pointing at it stays resolved if the chain comes back) until
/// enough slots are dead to compact.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub(super) ids: FxHashMap<Arc<str>, u32>,
    pub(super) slots: Vec<Slot>,
    /// Slots without a chain.
    pub(super) dead: usize,
}

#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub(super) struct Slot {
    pub(super) chain: Option<Chain>,
    pub(super) name: Arc<str>,
}

/// What a restore does to one chain's slot, by slot number (see [`Table::plan`]).
pub(super) const UNCHANGED: u8 = 0;

pub(super) const DECLARED: u8 = 1;

pub(super) const DELETED: u8 = 2;

/// One table's part of a restore, resolved against the table before anything changes.
pub(super) struct Plan {
    /// Declared chains (flushed, created if new) and their policies.
    pub(super) declared: Vec<(u32, Option<&'static str>)>,
    /// Deleted chains.
    pub(super) deleted: Vec<u32>,
    /// Rules to append, chain by chain in order of first appearance.
    pub(super) appends: Vec<Appends>,
}

pub(super) struct Appends {
    pub(super) id: u32,
    pub(super) rules: Vec<Arc<Rule>>,
    pub(super) walk: WalkRules,
}

/// A chain's `-A` lines while planning, with what is needed to reuse the chain's old rules.
pub(super) struct Planning<'a> {
    pub(super) id: u32,
    pub(super) name: &'a str,
    pub(super) old: Option<&'a Chain>,
    /// Where in `old` the next line is expected (kube-proxy rewrites chains mostly unchanged).
    pub(super) cursor: usize,
    /// `old`'s rules by text, built on the first line the cursor misses.
    pub(super) by_spec: Option<FxHashMap<&'a str, u32>>,
    pub(super) rules: Vec<Arc<Rule>>,
    pub(super) walk: WalkRules,
    pub(super) lines: Vec<usize>,
}

impl<'a> Planning<'a> {
    /// The index of the old rule with text `spec`, if any.
    pub(super) fn reuse(&mut self, spec: &str) -> Option<usize> {
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
    pub(super) fn slot(&mut self, name: &str) -> u32 {
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
    pub(super) fn revive(&mut self, id: u32) -> &mut Chain {
        let slot = &mut self.slots[id as usize];
        if slot.chain.is_none() {
            self.dead -= 1;
        }
        slot.chain.get_or_insert_with(Chain::default)
    }

    /// Drops the chain in slot `id`, keeping the slot.
    pub(super) fn kill(&mut self, id: u32) {
        if self.slots[id as usize].chain.take().is_some() {
            self.dead += 1;
        }
    }

    pub(super) fn get(&self, name: &str) -> Option<&Chain> {
        self.slots[*self.ids.get(name)? as usize].chain.as_ref()
    }

    #[cfg(test)]
    pub(super) fn get_mut(&mut self, name: &str) -> Option<&mut Chain> {
        self.slots[*self.ids.get(name)? as usize].chain.as_mut()
    }

    /// The chains that exist, built-ins first.
    pub(super) fn live(&self) -> impl Iterator<Item = (&str, &Chain)> {
        self.slots.iter().filter_map(|s| Some((&*s.name, s.chain.as_ref()?)))
    }

    /// Resolves `op` against this table: every rule parsed (or reused from the chain it is
    /// appended to) and every jump checked against the chains that exist once `op` is applied.
    /// The declared chains must have slots already.
    pub(super) fn plan(&self, op: &TableOps<'_>, noflush: bool) -> Result<Plan, RestoreError> {
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
    pub(super) fn apply(&mut self, op: &TableOps<'_>, plan: Plan, noflush: bool) {
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
    pub(super) fn compact(&mut self) {
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

impl Chain {
    /// The rules, in order.
    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    pub(super) fn clear(&mut self) {
        self.rules.clear();
        self.walk.clear();
        self.index = None;
    }

    pub(super) fn reindex(&mut self) {
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
            let key = if w.flags & F_FULL != 0 { index_key(&self.rules[i].matches) } else { w.index_key() };
            match key {
                Some(key) => index.insert(key, i as u32, w.key_jump()),
                None => index.rest.push(i as u32),
            }
        }
        self.index = Some(Box::new(index));
    }
}
