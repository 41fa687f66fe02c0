//! The apiserver's own component faults. Every other process reads its ComponentChaos objects
//! through the apiserver; the apiserver cannot (a stopped one refuses its own connections), so it
//! reads them from its registry: a registry watch feeds the same decision loop the other
//! processes run ([`netlab_faults::Faults::enforce`]), and a kill is recorded by writing the
//! fault's status straight into the registry before the exit. Its counters go through a client
//! to its own port, which works whenever it is running (a stopped one keeps them until it runs).

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use netlab_chaos::ComponentChaos;
use netlab_faults::{
    Faults,
    watch::{KillLog, Snapshot, count_kill},
};
use netlab_proto::apiserver::v1::Resource;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    error::Error,
    registry::{Registry, WatchSpec},
    selector::{FieldSelector, LabelSelector},
};

/// How long to wait before watching the registry again after a watch ended.
const REWATCH: Duration = Duration::from_millis(200);

/// Enforces the apiserver's faults from `registry` until `shutdown`; `own` is the apiserver's
/// own URL, for the counters.
pub fn spawn(registry: Registry, faults: Faults, own: &str, shutdown: CancellationToken) {
    let (tx, rx) = watch::channel(Snapshot::default());
    tokio::spawn(follow(registry.clone(), tx, shutdown.clone()));
    match netlab_client::Client::new(own) {
        Ok(client) => {
            tokio::spawn(faults.reporter().clone().run(client, Duration::from_secs(1)));
        }
        Err(error) => tracing::warn!(%error, "Fault counters will not be written."),
    }
    tokio::spawn(async move { faults.enforce(rx, Arc::new(RegistryKillLog(registry)), shutdown).await });
}

/// Every ComponentChaos in the registry, again after each change.
async fn follow(registry: Registry, tx: watch::Sender<Snapshot>, shutdown: CancellationToken) {
    let resource = Resource::ComponentChaos;
    loop {
        let spec = WatchSpec {
            resource,
            namespace: String::new(),
            labels: LabelSelector::default(),
            fields: FieldSelector::default(),
            from: None,
        };
        match registry.watch(spec, shutdown.child_token()) {
            Ok(mut events) => loop {
                tx.send_replace(snapshot(&registry));
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    batch = events.recv() => match batch {
                        Some(Ok(_)) => {}
                        Some(Err(error)) => {
                            tracing::debug!(%error, "ComponentChaos watch ended; watching again.");
                            break;
                        }
                        None => break,
                    },
                }
            },
            Err(error) => tracing::warn!(%error, "Cannot watch ComponentChaos; retrying."),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(REWATCH) => {}
        }
    }
}

fn snapshot(registry: &Registry) -> Snapshot {
    let (items, _) =
        registry.list(Resource::ComponentChaos, "", &LabelSelector::default(), &FieldSelector::default());
    Some(Arc::new(
        items
            .iter()
            .filter_map(|stored| serde_json::from_slice::<ComponentChaos>(&stored.json).ok())
            .map(Arc::new)
            .collect(),
    ))
}

/// Writes the kill into the fault's status in the registry.
struct RegistryKillLog(Registry);

impl KillLog for RegistryKillLog {
    fn record<'a>(
        &'a self,
        fault: &'a ComponentChaos,
        reporter: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let ns = fault.metadata.namespace.as_deref().unwrap_or_default();
            let name = fault.metadata.name.as_deref().unwrap_or_default();
            for _ in 0..5 {
                let stored = self.0.get(Resource::ComponentChaos, ns, name).map_err(|e| e.to_string())?;
                let mut current: ComponentChaos =
                    serde_json::from_slice(&stored.json).map_err(|e| e.to_string())?;
                count_kill(&mut current, reporter);
                let json = serde_json::to_vec(&current).map_err(|e| e.to_string())?;
                match self.0.update(Resource::ComponentChaos, ns, &json, true).await {
                    Ok(_) => return Ok(()),
                    Err(Error::Conflict { .. }) => continue,
                    Err(e) => return Err(e.to_string()),
                }
            }
            Err("conflict after five attempts".into())
        })
    }
}
