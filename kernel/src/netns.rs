//! A node's network namespace: everything rules and flows change (the iptables tables, IPVS,
//! conntrack, routes, and the state the walk's `recent` and `statistic` matches keep), with the
//! tools that write and print it: `iptables-restore` (plus kube-proxy's `EnsureRule` jumps),
//! `ipvsadm-restore`, `iptables-save`, `ipvsadm -Ln`, `conntrack -L/-D` and `ip route`.
//!
//! Why one type: the node-agent's kernel API, kube-proxy's fake kernel and the proxy bench all
//! apply kube-proxy's rules, and each used to do it its own way (the fake with a parser of its
//! own). Here is the one place a restore is applied, all or nothing, so the fake refuses what a
//! node refuses and a bench measures what a node runs (upstream's fake iptables and
//! `knftables.NewFake` are the real parser with recording, too).

use std::{collections::HashMap, fmt::Write as _, net::IpAddr, time::Duration};

use crate::{
    conntrack::{Conntrack, Filter},
    iptables::{self, Tables},
    ipvs::{self, Ipvs},
    routes::Routes,
};

/// The text format of a restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `iptables-restore` input.
    Iptables,
    /// `ipvsadm-restore` input.
    Ipvs,
}

/// What a save prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `iptables-save`, with its header and footer comments.
    IptablesSave,
    /// `ipvsadm -Ln`.
    Ipvsadm,
    /// `conntrack -L` and its summary line.
    Conntrack,
    /// `ip route`.
    Routes,
}

/// One restore, as kube-proxy sends it.
#[derive(Debug, Clone, Copy)]
pub struct Restore<'a> {
    /// How `text` is written.
    pub format: Format,
    /// The restore input.
    pub text: &'a str,
    /// `iptables-restore --noflush`: tables keep the chains `text` does not declare (iptables
    /// only; an ipvs restore runs its commands against the table as it is).
    pub noflush: bool,
    /// Rules to make sure of before the restore, each `TABLE CHAIN RULESPEC` (kube-proxy's
    /// `EnsureRule` jumps from the built-in chains; iptables only).
    pub ensure: &'a [String],
}

/// Why a restore was refused: the tool's own error, naming the line as the tool does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// `iptables-restore` (or an ensured rule) refused.
    #[error(transparent)]
    Iptables(#[from] iptables::RestoreError),
    /// `ipvsadm-restore` refused.
    #[error(transparent)]
    Ipvs(#[from] ipvs::RestoreError),
}

/// A node's network namespace.
#[derive(Debug, Clone)]
pub struct Netns {
    /// The filter and nat tables.
    pub tables: Tables,
    /// The IPVS table.
    pub ipvs: Ipvs,
    /// Tracked flows.
    pub conntrack: Conntrack,
    /// The routing table.
    pub routes: Routes,
    /// The `recent` match's lists: (list, source address) → when last set, in seconds on the
    /// kernel's clock.
    pub recent: HashMap<(String, IpAddr), u64>,
    /// The `statistic --mode random` match's generator state (never 0).
    pub rng: u64,
}

// === impl Netns ===

impl Netns {
    /// A fresh namespace of a node at `node_ip`: empty tables, no flows, no podCIDR yet;
    /// `seed` starts the random matches.
    pub fn new(node_ip: IpAddr, seed: u64) -> Self {
        Self {
            tables: Tables::new(),
            ipvs: Ipvs::new(),
            conntrack: Conntrack::default(),
            routes: Routes::new(node_ip),
            recent: HashMap::new(),
            rng: seed | 1,
        }
    }

    /// Applies `r` all or nothing; returns how many rules (iptables) or virtual servers (ipvs)
    /// the table holds afterwards.
    ///
    /// The ensured rules go in first, as kube-proxy runs its `EnsureRule` calls before
    /// `iptables-restore`; if the restore is then refused they are taken out again, so a refused
    /// request leaves the tables exactly as they were.
    pub fn restore(&mut self, r: Restore<'_>) -> Result<u64, RestoreError> {
        match r.format {
            Format::Iptables => {
                // Only a request that adds a jump needs a copy to go back to: the first sync,
                // on a fresh (small) table; later the jumps are there already.
                let backup =
                    r.ensure.iter().any(|line| !self.tables.has_rule(line)).then(|| self.tables.clone());
                let result = r
                    .ensure
                    .iter()
                    .try_for_each(|line| self.tables.ensure(line).map(drop))
                    .and_then(|()| self.tables.restore(r.text, r.noflush));
                if let Err(e) = result {
                    if let Some(backup) = backup {
                        self.tables = backup;
                    }
                    return Err(e.into());
                }
                Ok(self.tables.rule_count() as u64)
            }
            Format::Ipvs => {
                self.ipvs.restore(r.text)?;
                Ok(self.ipvs.len() as u64)
            }
        }
    }

    /// `table` as the tool prints it, at `now` on the kernel's clock (conntrack timeouts).
    pub fn save(&self, table: Table, now: Duration) -> String {
        match table {
            Table::IptablesSave => {
                let when = jiff::Zoned::now().strftime("%a %b %e %H:%M:%S %Y").to_string();
                with_save_headers(&self.tables.save(), &when)
            }
            Table::Ipvsadm => self.ipvs.list(),
            Table::Conntrack => format!("{}{}\n", self.conntrack.list(now), self.conntrack.summary(now)),
            Table::Routes => self.routes.show(),
        }
    }

    /// `conntrack -D` with `filter` at `now`; returns how many flows went.
    pub fn delete_conntrack(&mut self, filter: &Filter, now: Duration) -> usize {
        self.conntrack.delete(filter, now)
    }
}

/// iptables-save's header and footer lines around each table, stamped `when`.
fn with_save_headers(text: &str, when: &str) -> String {
    let mut out = String::with_capacity(text.len() + 200);
    for line in text.lines() {
        if line.starts_with('*') {
            let _ = writeln!(out, "# Generated by iptables-save v1.8.9 on {when}");
        }
        out.push_str(line);
        out.push('\n');
        if line == "COMMIT" {
            let _ = writeln!(out, "# Completed on {when}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Protocol,
        conntrack::{Key, Nat},
    };

    const JUMP: &str = "nat PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES";

    fn ns() -> Netns {
        Netns::new("172.18.0.2".parse().unwrap(), 7)
    }

    fn iptables<'a>(text: &'a str, ensure: &'a [String]) -> Restore<'a> {
        Restore { format: Format::Iptables, text, noflush: true, ensure }
    }

    #[test]
    fn a_restore_with_its_ensured_jumps_counts_the_rules() {
        let mut ns = ns();
        let ensure = [JUMP.to_string()];
        let text = "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\nCOMMIT\n";
        assert_eq!(ns.restore(iptables(text, &ensure)).unwrap(), 2);
        // The jump is there once, however often it is ensured.
        assert_eq!(ns.restore(iptables(text, &ensure)).unwrap(), 2);
        assert!(ns.tables.has_rule(JUMP));
    }

    #[test]
    fn a_refused_restore_takes_its_ensured_jumps_back() {
        let mut ns = ns();
        let before = ns.tables.save();
        let ensure = [JUMP.to_string()];
        let err = ns.restore(iptables("*nat\n-A KUBE-NOWHERE -j ACCEPT\nCOMMIT\n", &ensure)).unwrap_err();
        assert!(matches!(err, RestoreError::Iptables(iptables::RestoreError::Line { line: 2, .. })), "{err}");
        assert_eq!(ns.tables.save(), before, "all or nothing");
        assert!(!ns.tables.has_rule(JUMP));

        // A bad ensured rule refuses the request too.
        let bad = ["nat NOSUCHCHAIN -j ACCEPT".to_string()];
        assert!(ns.restore(iptables("*nat\nCOMMIT\n", &bad)).is_err());
        assert_eq!(ns.tables.save(), before);
    }

    #[test]
    fn ipvs_restores_are_all_or_nothing_and_count_virtual_servers() {
        let mut ns = ns();
        let r = |text| Restore { format: Format::Ipvs, text, noflush: false, ensure: &[] };
        assert_eq!(ns.restore(r("-A -t 10.96.0.1:443 -s rr\n")).unwrap(), 1);
        let err = ns.restore(r("-A -t 10.96.0.2:80 -s rr\n-D -t 10.96.0.9:80\n")).unwrap_err();
        assert_eq!(err.to_string(), "ipvsadm-restore: line 2: No such service");
        assert_eq!(ns.ipvs.len(), 1);
    }

    #[test]
    fn saves_print_as_the_tools_do() {
        let mut ns = ns();
        let save = ns.save(Table::IptablesSave, Duration::ZERO);
        let lines: Vec<&str> = save.lines().collect();
        assert!(lines[0].starts_with("# Generated by iptables-save v1.8.9 on "), "{save}");
        assert_eq!(lines[1], "*filter");
        assert_eq!(lines.iter().filter(|l| l.starts_with("# Completed on ")).count(), 2, "{save}");
        let key = Key {
            protocol: Protocol::Udp,
            src: "10.244.1.3:41000".parse().unwrap(),
            dst: "10.96.0.10:53".parse().unwrap(),
        };
        ns.conntrack
            .insert(key, Nat { dst: "10.244.2.5:53".parse().unwrap(), src: None }, Duration::ZERO)
            .unwrap();
        let ct = ns.save(Table::Conntrack, Duration::ZERO);
        assert!(ct.contains("src=10.244.1.3") && ct.ends_with("flow entries have been shown.\n"), "{ct}");
        assert_eq!(ns.delete_conntrack(&Filter::protocol(Protocol::Udp), Duration::ZERO), 1);
        assert!(ns.save(Table::Ipvsadm, Duration::ZERO).starts_with("IP Virtual Server"));
        assert_eq!(ns.save(Table::Routes, Duration::ZERO), ns.routes.show());
    }
}
