//! The node's faults as its kernel consults them: the NetworkChaos rules in force (swapped whole
//! when a fault changes, read on every new flow), the ExhaustionChaos `conntrack` faults that
//! hold this node's table full, and what every decision leaves behind: a counter in the fault's
//! status (through the node's [`Reporter`], `node/<name>`) and a mark on the span it affected.

use std::{
    net::IpAddr,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use netlab_chaos::{FaultRef, report::FaultKey, report::Reporter, status::counter};
use netlab_kernel::{
    conntrack::TableFull,
    ratelimit::{Allow, Ratelimit},
};
use tracing::warn;

use super::{
    decide::Decision,
    index::{Index, Rule},
};

/// The faults one node enforces.
pub struct Faults {
    index: RwLock<Arc<Index>>,
    conntrack: RwLock<Arc<Vec<Held>>>,
    reporter: Arc<Reporter>,
    /// The qdiscs' clock (tbf tokens).
    clock: Instant,
    /// `net_ratelimit` of the table-full message.
    log: Mutex<Ratelimit>,
}

/// A fault that holds the node's conntrack table full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// For span marks.
    pub fault: FaultRef,
    /// For counters.
    pub key: FaultKey,
}

/// The rules one flow meets: on the way out (from the client) and back.
#[derive(Debug, Clone, Default)]
pub struct Flow {
    /// Packets from the client.
    pub out: Vec<Arc<Rule>>,
    /// Packets to the client.
    pub back: Vec<Arc<Rule>>,
}

// === impl Faults ===

impl Faults {
    /// No faults yet, counting as `node/<node>`.
    pub fn new(node: &str) -> Arc<Self> {
        Arc::new(Self {
            index: RwLock::default(),
            conntrack: RwLock::default(),
            reporter: Reporter::new(format!("node/{node}")),
            clock: Instant::now(),
            log: Mutex::default(),
        })
    }

    /// The counters' reporter (its flush loop is the caller's to run).
    pub fn reporter(&self) -> &Arc<Reporter> {
        &self.reporter
    }

    /// Time on the qdiscs' clock.
    pub fn now(&self) -> Duration {
        self.clock.elapsed()
    }

    /// Puts `index` in force.
    pub fn set_network(&self, index: Index) {
        *self.index.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(index);
    }

    /// Puts the conntrack faults in force; returns whether the table is now held full.
    pub fn set_conntrack(&self, held: Vec<Held>) -> bool {
        let full = !held.is_empty();
        *self.conntrack.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(held);
        full
    }

    /// The rules in force.
    pub fn index(&self) -> Arc<Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The rules a flow from `src` to `dst` (every address it is known by: the ClusterIP and
    /// the endpoint) meets; None when it meets none, the fault-free path.
    pub fn flow(&self, src: IpAddr, dst: &[IpAddr]) -> Option<Flow> {
        let index = self.index();
        if index.is_empty() {
            return None;
        }
        let out = matching(&index, &[src], dst);
        let back = matching(&index, dst, &[src]);
        (!out.is_empty() || !back.is_empty()).then_some(Flow { out, back })
    }

    /// The rules in force that a packet from any of `src` to any of `dst` meets.
    pub fn matching(&self, src: &[IpAddr], dst: &[IpAddr]) -> Vec<Arc<Rule>> {
        matching(&self.index(), src, dst)
    }

    /// Counts every decision, and marks `span` with each (when given).
    pub fn record(&self, decisions: &[Decision], span: Option<&tracing::Span>) {
        for d in decisions {
            self.reporter.add(&d.rule.key, d.what.counter(), 1);
            if let Some(span) = span {
                d.rule.fault.mark(span, &d.what.effect());
            }
        }
    }

    /// A flow needed a conntrack entry and the table was full: the kernel's (rate-limited)
    /// message, and the refusal counted for and marked with every fault holding the table full.
    pub fn table_full(&self, span: &tracing::Span) {
        let allow = self.log.lock().unwrap_or_else(|e| e.into_inner()).check(self.now());
        if let Allow::Print { suppressed } = allow {
            if suppressed > 0 {
                warn!("net_ratelimit: {suppressed} callbacks suppressed");
            }
            warn!("{}", TableFull);
        }
        let held = self.conntrack.read().unwrap_or_else(|e| e.into_inner()).clone();
        for h in held.iter() {
            self.reporter.add(&h.key, counter::ALLOCATIONS_REFUSED, 1);
            h.fault.mark(span, "conntrack table full: dropped");
        }
    }
}

fn matching(index: &Index, src: &[IpAddr], dst: &[IpAddr]) -> Vec<Arc<Rule>> {
    let mut all: Vec<Arc<Rule>> = Vec::new();
    for s in src {
        for r in index.matching(*s, dst) {
            if !all.iter().any(|a| Arc::ptr_eq(a, &r)) {
                all.push(r);
            }
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use netlab_proto::apiserver::v1::Resource;

    use super::*;

    #[test]
    fn no_rules_is_the_fault_free_path() {
        let faults = Faults::new("node-1");
        assert_eq!(faults.reporter().name(), "node/node-1");
        let (a, b) = ("10.244.1.5".parse().unwrap(), "10.244.2.7".parse().unwrap());
        assert!(faults.flow(a, &[b]).is_none());
        assert!(faults.matching(&[a], &[b]).is_empty());
    }

    #[test]
    fn a_refused_entry_counts_for_every_fault_holding_the_table_full() {
        let faults = Faults::new("node-1");
        let held = |name: &str| Held {
            fault: FaultRef::new("default", name, "ExhaustionChaos", "conntrack"),
            key: FaultKey {
                resource: Resource::ExhaustionChaos,
                namespace: "default".into(),
                name: name.into(),
            },
        };
        assert!(faults.set_conntrack(vec![held("a"), held("b")]));
        for _ in 0..3 {
            faults.table_full(&tracing::Span::none());
        }
        let counted = faults.reporter().pending();
        assert_eq!(counted.len(), 2);
        assert!(counted.values().all(|c| c[counter::ALLOCATIONS_REFUSED] == 3));
        assert!(!faults.set_conntrack(Vec::new()));
    }
}
