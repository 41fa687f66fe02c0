//! An in-memory kernel for tests (upstream's `iptables` fake and `knftables.NewFake`): it
//! records every restore, applies iptables-restore text to tables it can dump, applies
//! ipvsadm-restore text to netlab-kernel's IPVS model, deletes flows from netlab-kernel's
//! conntrack model (upstream's `conntrack.FakeInterface`), and fails on demand.
//!
//! It checks what a real `iptables-restore --noflush` checks that matters here: a rule may only
//! be appended to a chain that exists, may only jump to a chain that exists (or a built-in
//! target), and a chain still jumped to may not be deleted. A bad line fails the whole restore
//! and changes nothing.

use std::{
    collections::BTreeMap,
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use netlab_kernel::conntrack::{Conntrack, Filter, Key, Nat};
use netlab_proto::node::v1::{Format, RestoreRequest, Table};

use super::Dataplane;
use crate::{Error, Result};

/// Targets that are not chains.
const BUILTIN_TARGETS: [&str; 8] =
    ["ACCEPT", "DROP", "REJECT", "RETURN", "DNAT", "MARK", "MASQUERADE", "SNAT"];

/// The fake kernel.
#[derive(Debug, Default)]
pub struct FakeDataplane {
    state: Mutex<State>,
}

#[derive(Debug, Default, Clone)]
struct State {
    requests: Vec<RestoreRequest>,
    fail: usize,
    /// table → chain → rules (the `-A ...` lines).
    tables: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    ensured: Vec<String>,
    ipvs: netlab_kernel::ipvs::Ipvs,
    /// Flows, all tracked at time zero and deleted at time zero (the fake has no clock).
    conntrack: Conntrack,
    deletes: Vec<Filter>,
    conntrack_fail: usize,
}

// === impl FakeDataplane ===

impl FakeDataplane {
    /// An empty kernel.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Writers replace the state whole; a poisoned lock still holds a consistent one.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next `n` restores fail as an unreachable kernel's would.
    pub fn fail_next(&self, n: usize) {
        self.state().fail = n;
    }

    /// Every restore asked for, failed ones included.
    pub fn requests(&self) -> Vec<RestoreRequest> {
        self.state().requests.clone()
    }

    /// How many restores were asked for.
    pub fn restores(&self) -> usize {
        self.state().requests.len()
    }

    /// The iptables tables, as `iptables-save` prints them (chains sorted).
    pub fn dump(&self) -> String {
        let s = self.state();
        let mut out = String::new();
        for (table, chains) in &s.tables {
            out.push_str(&format!("*{table}\n"));
            for chain in chains.keys() {
                out.push_str(&format!(":{chain} - [0:0]\n"));
            }
            for rules in chains.values() {
                for r in rules {
                    out.push_str(r);
                    out.push('\n');
                }
            }
            out.push_str("COMMIT\n");
        }
        out
    }

    /// The ensured jump rules, in the order first asked for.
    pub fn ensured(&self) -> Vec<String> {
        self.state().ensured.clone()
    }

    /// The IPVS table, as `ipvsadm -Ln` prints it.
    pub fn ipvs(&self) -> String {
        self.state().ipvs.list()
    }

    /// Tracks a flow, as a packet through the rules would have.
    pub fn track(&self, key: Key, nat: Nat) {
        // The default table holds 262,144 flows: a test never fills it.
        let _ = self.state().conntrack.insert(key, nat, Duration::ZERO);
    }

    /// The flows, as `conntrack -L` prints them.
    pub fn conntrack(&self) -> String {
        self.state().conntrack.list(Duration::ZERO)
    }

    /// Every `conntrack -D` asked for, failed ones included.
    pub fn conntrack_deletes(&self) -> Vec<Filter> {
        self.state().deletes.clone()
    }

    /// The next `n` conntrack deletes fail as an unreachable kernel's would.
    pub fn fail_conntrack_next(&self, n: usize) {
        self.state().conntrack_fail = n;
    }
}

/// Applies `text` to `tables` as `iptables-restore --noflush` would.
fn apply(tables: &mut BTreeMap<String, BTreeMap<String, Vec<String>>>, text: &str) -> Result<(), String> {
    let mut table: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let bad = |why: &str| format!("line {n} failed ({why}): {line}");
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(t) = line.strip_prefix('*') {
            table = Some(t.to_string());
            tables.entry(t.to_string()).or_default();
            continue;
        }
        if line == "COMMIT" {
            table = None;
            continue;
        }
        let Some(t) = table.as_deref() else {
            return Err(bad("no table"));
        };
        let chains = tables.entry(t.to_string()).or_default();
        if let Some(decl) = line.strip_prefix(':') {
            let chain = decl.split(' ').next().unwrap_or_default();
            chains.insert(chain.to_string(), Vec::new());
        } else if let Some(chain) = line.strip_prefix("-X ") {
            let used = chains.values().flatten().any(|r| r.ends_with(&format!("-j {chain}")));
            if used {
                return Err(bad("chain is still referenced"));
            }
            if chains.remove(chain).is_none() {
                return Err(bad("no chain by that name"));
            }
        } else if let Some(rest) = line.strip_prefix("-A ") {
            let chain = rest.split(' ').next().unwrap_or_default();
            if let Some(target) = rest.split(" -j ").nth(1).and_then(|t| t.split(' ').next())
                && !BUILTIN_TARGETS.contains(&target)
                && !chains.contains_key(target)
            {
                return Err(bad("couldn't load target"));
            }
            let Some(rules) = chains.get_mut(chain) else {
                return Err(bad("no chain by that name"));
            };
            rules.push(line.to_string());
        } else {
            return Err(bad("unknown command"));
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl Dataplane for FakeDataplane {
    async fn restore(&self, req: RestoreRequest) -> Result<u64> {
        let mut s = self.state();
        s.requests.push(req.clone());
        if s.fail > 0 {
            s.fail -= 1;
            return Err(Error::kernel(
                "Restore",
                tonic::Status::unavailable("fake kernel: connection refused"),
            ));
        }
        let refused = |message: String| Error::Kernel { rpc: "Restore", message, status: None };
        if req.format == Format::Ipvs as i32 {
            s.ipvs.restore(&req.text).map_err(|e| refused(e.to_string()))?;
            return Ok(s.ipvs.len() as u64);
        }
        let mut tables = s.tables.clone();
        if !req.noflush {
            for chains in tables.values_mut() {
                chains.clear();
            }
        }
        apply(&mut tables, &req.text).map_err(refused)?;
        for e in &req.ensure {
            if !s.ensured.contains(e) {
                s.ensured.push(e.clone());
            }
        }
        s.tables = tables;
        Ok(s.tables.values().flat_map(|c| c.values()).map(|r| r.len() as u64).sum())
    }

    async fn save(&self, table: Table) -> Result<String> {
        match table {
            Table::IptablesSave => Ok(self.dump()),
            Table::Ipvsadm => Ok(self.ipvs()),
            _ => Err(Error::kernel("Save", tonic::Status::unimplemented("fake kernel"))),
        }
    }

    async fn delete_conntrack(&self, filter: Filter) -> Result<u64> {
        let mut s = self.state();
        s.deletes.push(filter);
        if s.conntrack_fail > 0 {
            s.conntrack_fail -= 1;
            return Err(Error::kernel(
                "Conntrack.Delete",
                tonic::Status::unavailable("fake kernel: connection refused"),
            ));
        }
        Ok(s.conntrack.delete(&filter, Duration::ZERO) as u64)
    }
}
