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
//! Besides kube-proxy's rules the tables take the AWS VPC CNI's SNAT chain (`AWS-SNAT-CHAIN-0`:
//! `! -o vlan+`, `-m addrtype ! --dst-type LOCAL`, `-j SNAT --to-source`). The output interface
//! comes from [`WalkEnv::out_interface`], asked only by rules with `-o`; those rules, like ones
//! with IPv6 networks, are matched from their full [`Rule`] (the `F_FULL` flag), so kube-proxy's
//! rules are walked exactly as before. The connmark rules ipamd also installs (`-i eni+ ... -j
//! CONNMARK`) are not modelled: there is no `-i`, no CONNMARK target and no policy routing here.
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

use std::{fmt::Write as _, sync::Arc};

pub use crate::fxhash::{FxHashMap, FxHashSet, FxHasher};

mod compiled;
mod packet;
mod parse;
mod rule;
mod table;
mod walk;

pub use packet::{Origin, Packet, WalkEnv};
pub use parse::parse_rule;
pub use rule::{CtStates, LineError, Match, Recent, RestoreError, Rule, Snat, TableName, Target};
pub use table::{Chain, Table};
pub use walk::{Disposition, Step, Verdict};

use compiled::*;
use parse::*;
use walk::*;

/// The filter and nat tables of one node.
#[derive(Debug, Clone)]
pub struct Tables {
    filter: Table,
    nat: Table,
}

// === impl CtStates ===

// === impl TableName ===

// === impl Verdict ===

// === impl StepRef ===

// === impl Steps ===

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
    /// filter FORWARD (or OUTPUT), then nat POSTROUTING for MASQUERADE or SNAT.
    pub fn evaluate(&self, packet: Packet, origin: Origin, env: &mut dyn WalkEnv) -> Verdict<'_> {
        let mut v = Verdict {
            dst: packet.dst,
            dnat: false,
            masquerade: false,
            snat: None,
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
        if v.disposition == Disposition::Accept {
            match self.walk((TableName::Nat, "POSTROUTING"), p, v.dnat, &mut mark, env, &mut v.steps) {
                Outcome::Masquerade => v.masquerade = true,
                Outcome::Snat(to) => v.snat = Some(to),
                _ => {}
            }
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

// === impl Chain ===

#[cfg(test)]
mod tests;
