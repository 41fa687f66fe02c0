//! An in-memory kernel for tests (upstream's `iptables` fake and `knftables.NewFake`): the real
//! model of a node's kernel (netlab-kernel's [`Netns`], the one the node-agent serves) with
//! recording around it. It records every restore and `conntrack -D`, applies them to the model
//! exactly as a node would (so it refuses what a node refuses, all or nothing), dumps the
//! tables, and fails on demand as an unreachable kernel would.

use std::{
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use netlab_kernel::{
    api,
    conntrack::{Filter, Key, Nat},
    netns::{Netns, Restore},
};
use netlab_proto::node::v1::{Format, RestoreRequest, Table};

use super::Dataplane;
use crate::{Error, Result};

/// The fake kernel.
#[derive(Debug)]
pub struct FakeDataplane {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The kernel; its clock stands at zero (the fake has none): flows are tracked and deleted
    /// then.
    netns: Netns,
    requests: Vec<RestoreRequest>,
    fail: usize,
    ensured: Vec<String>,
    deletes: Vec<Filter>,
    conntrack_fail: usize,
}

impl Default for FakeDataplane {
    fn default() -> Self {
        Self::new()
    }
}

// === impl FakeDataplane ===

impl FakeDataplane {
    /// An empty kernel.
    pub fn new() -> Self {
        let netns = Netns::new(std::net::Ipv4Addr::new(172, 18, 0, 2).into(), 1);
        Self {
            state: Mutex::new(State {
                netns,
                requests: Vec::new(),
                fail: 0,
                ensured: Vec::new(),
                deletes: Vec::new(),
                conntrack_fail: 0,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change to the state is whole (a restore is all or nothing); a poisoned lock
        // still holds a consistent one.
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

    /// The iptables tables, as `iptables-save` prints them without its comment lines.
    pub fn dump(&self) -> String {
        self.state().netns.tables.save()
    }

    /// The ensured jump rules of the restores the kernel took, in the order first asked for.
    pub fn ensured(&self) -> Vec<String> {
        self.state().ensured.clone()
    }

    /// The IPVS table, as `ipvsadm -Ln` prints it.
    pub fn ipvs(&self) -> String {
        self.state().netns.ipvs.list()
    }

    /// Tracks a flow, as a packet through the rules would have.
    pub fn track(&self, key: Key, nat: Nat) {
        // The default table holds 262,144 flows: a test never fills it.
        let _ = self.state().netns.conntrack.insert(key, nat, Duration::ZERO);
    }

    /// The flows, as `conntrack -L` prints them.
    pub fn conntrack(&self) -> String {
        self.state().netns.conntrack.list(Duration::ZERO)
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

#[async_trait::async_trait]
impl Dataplane for FakeDataplane {
    async fn restore(&self, req: RestoreRequest) -> Result<u64> {
        let mut guard = self.state();
        let s = &mut *guard;
        s.requests.push(req.clone());
        if s.fail > 0 {
            s.fail -= 1;
            return Err(Error::kernel(
                "Restore",
                tonic::Status::unavailable("fake kernel: connection refused"),
            ));
        }
        let Some(format) = api::format(req.format) else {
            return Err(Error::kernel("Restore", tonic::Status::invalid_argument(api::FORMAT_REQUIRED)));
        };
        let rules = s.netns.restore(Restore {
            format,
            text: &req.text,
            noflush: req.noflush,
            ensure: &req.ensure,
        })?;
        for e in &req.ensure {
            if !s.ensured.contains(e) {
                s.ensured.push(e.clone());
            }
        }
        Ok(rules)
    }

    async fn save(&self, table: Table) -> Result<String> {
        let Some(table) = api::table(table as i32) else {
            return Err(Error::kernel("Save", tonic::Status::invalid_argument("no table")));
        };
        Ok(self.state().netns.save(table, Duration::ZERO))
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
        Ok(s.netns.delete_conntrack(&filter, Duration::ZERO) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iptables(text: &str) -> RestoreRequest {
        RestoreRequest {
            format: Format::Iptables as i32,
            text: text.into(),
            noflush: true,
            ensure: Vec::new(),
        }
    }

    /// The fake is the node's model: a bad line refuses the whole restore, with the line named
    /// as iptables-restore names it, and changes nothing.
    #[tokio::test]
    async fn the_fake_refuses_what_a_node_refuses() {
        let fake = FakeDataplane::new();
        let good = "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\nCOMMIT\n";
        assert_eq!(fake.restore(iptables(good)).await.unwrap(), 1);
        let before = fake.dump();
        let err =
            fake.restore(iptables("*nat\n-A KUBE-SERVICES -j KUBE-SVC-NOWHERE\nCOMMIT\n")).await.unwrap_err();
        assert!(matches!(err, Error::Refused(_)), "{err}");
        assert!(err.to_string().contains("line 2"), "{err}");
        assert_eq!(fake.dump(), before);
        assert_eq!(fake.restores(), 2, "a refused restore is recorded too");

        // Failures on demand are an unreachable kernel's, and record the request.
        fake.fail_next(1);
        assert!(matches!(fake.restore(iptables(good)).await, Err(Error::Kernel { rpc: "Restore", .. })));
        let save = fake.save(Table::IptablesSave).await.unwrap();
        assert!(
            save.starts_with("# Generated by iptables-save") && save.contains(":KUBE-MARK-MASQ - [0:0]"),
            "{save}"
        );
    }
}
