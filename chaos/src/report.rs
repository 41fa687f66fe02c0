//! Counters from the enforcing processes into the faults' status (`status.counters[reporter]`).
//!
//! Enforcers count on their hot paths (a packet dropped, a query answered SERVFAIL), so
//! [`Reporter::add`] only bumps a number in memory; a flush loop writes what accumulated into
//! each fault's status every interval. A flush adds its delta to the stored value of the
//! reporter's own entry, re-reading on a conflict, so counts survive restarts of the reporter
//! and no reporter overwrites another's (the chaos controller writes `conditions` and
//! `experiment` the same way).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use netlab_client::Client;
use netlab_proto::apiserver::v1::Resource;

use crate::{
    ComponentChaos, DnsChaos, ExhaustionChaos, NetworkChaos, PodChaos, RegistryChaos, UpstreamDnsChaos,
    object::Chaos,
};

/// Which fault: its resource, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FaultKey {
    /// The fault kind.
    pub resource: Resource,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl FaultKey {
    /// The key of a fault object.
    pub fn of<K: Chaos>(fault: &K) -> Self {
        let meta = fault.metadata();
        Self {
            resource: K::RESOURCE,
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }
}

/// Counts what one process did for each fault and writes it into the faults' status.
#[derive(Debug)]
pub struct Reporter {
    name: String,
    pending: Mutex<HashMap<FaultKey, BTreeMap<&'static str, u64>>>,
}

impl Reporter {
    /// A reporter whose entry in `status.counters` is `name` (`node/node-1`, `dns`, `cloud`).
    pub fn new(name: impl Into<String>) -> Arc<Self> {
        Arc::new(Self { name: name.into(), pending: Mutex::default() })
    }

    /// Its entry's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds `n` to `counter` (`packetsDropped`, `queriesAnswered`, `pullsRefused`) of `fault`.
    pub fn add(&self, fault: &FaultKey, counter: &'static str, n: u64) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        *pending.entry(fault.clone()).or_default().entry(counter).or_insert(0) += n;
    }

    /// What is counted and not yet written, for tests.
    pub fn pending(&self) -> HashMap<FaultKey, BTreeMap<&'static str, u64>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Writes what accumulated every `every`, until dropped.
    pub async fn run(self: Arc<Self>, client: Client, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.flush(&client).await;
        }
    }

    /// Writes what accumulated now. Deltas whose write failed stay for the next flush, except
    /// for faults that no longer exist.
    pub async fn flush(&self, client: &Client) {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for (key, delta) in batch {
            match write(client, &self.name, &key, &delta).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(error) => {
                    tracing::debug!(%error, fault = %key.name, "Fault counters not written; retrying later.");
                    let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                    let entry = pending.entry(key).or_default();
                    for (counter, n) in delta {
                        *entry.entry(counter).or_insert(0) += n;
                    }
                }
            }
        }
    }
}

async fn write(
    client: &Client,
    reporter: &str,
    key: &FaultKey,
    delta: &BTreeMap<&'static str, u64>,
) -> netlab_client::Result<()> {
    match key.resource {
        Resource::NetworkChaos => add::<NetworkChaos>(client, reporter, key, delta).await,
        Resource::DnsChaos => add::<DnsChaos>(client, reporter, key, delta).await,
        Resource::PodChaos => add::<PodChaos>(client, reporter, key, delta).await,
        Resource::ComponentChaos => add::<ComponentChaos>(client, reporter, key, delta).await,
        Resource::RegistryChaos => add::<RegistryChaos>(client, reporter, key, delta).await,
        Resource::UpstreamDnsChaos => add::<UpstreamDnsChaos>(client, reporter, key, delta).await,
        Resource::ExhaustionChaos => add::<ExhaustionChaos>(client, reporter, key, delta).await,
        _ => Ok(()),
    }
}

/// Read, add, write; again on a conflict (another reporter or the controller wrote first).
async fn add<K: Chaos>(
    client: &Client,
    reporter: &str,
    key: &FaultKey,
    delta: &BTreeMap<&'static str, u64>,
) -> netlab_client::Result<()> {
    let mut attempts = 0;
    loop {
        let mut fault: K = client.get(&key.namespace, &key.name).await?;
        let counters = fault.status_mut().counters.entry(reporter.to_string()).or_default();
        for (counter, n) in delta {
            *counters.entry(counter.to_string()).or_insert(0) += n;
        }
        match client.update_status(&fault).await {
            Err(e) if e.is_conflict() && attempts < 5 => attempts += 1,
            other => return other.map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_accumulate_per_fault_and_counter() {
        let r = Reporter::new("node/node-1");
        let key =
            FaultKey { resource: Resource::NetworkChaos, namespace: "default".into(), name: "x".into() };
        r.add(&key, "packetsDropped", 2);
        r.add(&key, "packetsDropped", 3);
        r.add(&key, "packetsDelayed", 1);
        assert_eq!(r.pending()[&key]["packetsDropped"], 5);
        assert_eq!(r.pending()[&key]["packetsDelayed"], 1);
        assert_eq!(r.name(), "node/node-1");
    }
}
