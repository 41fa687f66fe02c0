//! The ReplicaSet controller: keeps `spec.replicas` pods of each ReplicaSet, as upstream's
//! `pkg/controller/replicaset` does. Pods are created from the template with `generateName:
//! <rs>-` (the apiserver adds the 5-character suffix: `orders-7d9f8c6b5d-x2x7k`), carry the
//! template's labels and a controller ownerReference to the ReplicaSet, and are deleted in
//! upstream's order (unscheduled, then not ready, then newest). Orphans matching the selector are
//! adopted; owned pods that stopped matching are released.
//!
//! No pod is created twice: nothing happens before the pod and ReplicaSet caches have listed
//! (so a restarted controller-manager sees every pod it made before), and between a create and
//! the watch showing the pod the ReplicaSet waits on its [`expectations`].
//!
//! # Layout
//! - [`expectations`]: creations and deletions not yet visible in the cache.

use std::{sync::Arc, time::Duration};

use jiff::Timestamp;
use k8s_openapi::{
    api::{
        apps::v1::{ReplicaSet, ReplicaSetStatus},
        core::v1::{Pod, PodTemplateSpec},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use netlab_client::{Client, recorder::EventType, reflector::Cache};
use tracing::instrument;

use crate::{
    Context, Error, Result, claim,
    controller::{self, Reconcile},
    events::Events,
    pod, selector,
};

pub mod expectations;

#[cfg(test)]
mod tests;

/// The Events' `source.component`.
pub const COMPONENT: &str = "replicaset-controller";

/// Most pods created or deleted in one sync (upstream's `BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;

/// The controller's state, shared by its workers.
pub struct Controller {
    client: Client,
    events: Events,
    sets: Cache<ReplicaSet>,
    pods: Cache<Pod>,
    expectations: expectations::Expectations,
}

/// Starts the controller on `ctx.tasks`. Nothing is reconciled before both caches have listed:
/// a pod the cache has not seen yet would be created again.
pub fn start(ctx: &Context) -> Result<()> {
    let build = |sets, pods| Controller {
        client: ctx.client.clone(),
        events: ctx.events(COMPONENT),
        sets,
        pods,
        expectations: Default::default(),
    };
    controller::Controller::owning::<ReplicaSet, Pod>(ctx, build, Controller::adopters)
        .run(&ctx.tasks, ctx.config.concurrent_syncs);
    Ok(())
}

/// The pod a ReplicaSet (or anything with a pod template) creates: the template's labels,
/// annotations, finalizers and spec, `generateName: <prefix>`, a controller reference to `owner`.
pub fn pod_from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    owner: ObjectMeta,
    generate_name: &str,
) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name.into()),
            namespace: Some(namespace.into()),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: owner.owner_references,
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// upstream's `getPodsPrefix`: `<rs>-`.
pub fn pod_prefix(owner_name: &str) -> String {
    format!("{owner_name}-")
}

// === impl Controller ===

impl Controller {
    /// The ReplicaSets that would adopt an orphan pod: those in its namespace whose selector
    /// takes it.
    fn adopters(&self, pod: &Pod) -> Vec<Arc<ReplicaSet>> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let mut sets = self.sets.list_namespace(ns);
        sets.retain(|rs| {
            selector::matches(rs.spec.as_ref().map(|s| &s.selector), pod.metadata.labels.as_ref())
        });
        sets
    }

    /// The active pods `rs` controls, after adopting matching orphans and releasing owned pods
    /// that no longer match (`ClaimPods`).
    async fn claim_pods(&self, rs: &ReplicaSet) -> Result<Vec<Arc<Pod>>> {
        let sel = rs.spec.as_ref().map(|s| &s.selector);
        let mut pods = self.pods.list_namespace(rs.metadata.namespace.as_deref().unwrap_or_default());
        pods.retain(|p| pod::is_active(p));
        claim::claim(&self.client, rs, pods, |p| selector::matches(sel, p.metadata.labels.as_ref())).await
    }

    /// Creates or deletes pods until `pods` has `want` members.
    async fn manage(&self, key: &str, rs: &Arc<ReplicaSet>, pods: &[Arc<Pod>], want: usize) -> Result<()> {
        let ns = rs.metadata.namespace.clone().unwrap_or_default();
        let name = rs.metadata.name.clone().unwrap_or_default();
        if pods.len() < want {
            let Some(template) = rs.spec.as_ref().and_then(|s| s.template.as_ref()) else { return Ok(()) };
            let owner = ObjectMeta {
                owner_references: Some(vec![pod::controller_ref(rs.as_ref())]),
                ..Default::default()
            };
            let mut pod = pod_from_template(template, &ns, owner, &pod_prefix(&name));
            netlab_telemetry::propagation::inherit(
                rs.metadata.annotations.as_ref(),
                &mut pod.metadata.annotations,
            );
            let missing = (want - pods.len()).min(BURST_REPLICAS);
            let span = tracing::info_span!("create pods", k8s.replicaset.name = %name, k8s.namespace.name = %ns, netlab.pods = missing);
            netlab_telemetry::propagation::follow(&span, rs.metadata.annotations.as_ref());
            // slowStartBatch: 1, 2, 4, ... creations at a time, stopping at the first failure, so
            // a quota or a webhook that rejects every pod costs one request, not hundreds.
            let mut batch = 1;
            let mut done = 0;
            while done < missing {
                let n = batch.min(missing - done);
                let mut set = tokio::task::JoinSet::new();
                for _ in 0..n {
                    let (client, pod) = (self.client.clone(), pod.clone());
                    set.spawn(tracing::Instrument::instrument(
                        async move { client.create(&pod).await },
                        span.clone(),
                    ));
                }
                let mut failed = None;
                while let Some(res) = set.join_next().await {
                    match res {
                        Ok(Ok(created)) => {
                            let pod_name = created.metadata.name.clone().unwrap_or_default();
                            self.expectations.created(key, format!("{ns}/{pod_name}"));
                            self.events.record(
                                rs.as_ref(),
                                EventType::Normal,
                                "SuccessfulCreate",
                                format!("Created pod: {pod_name}"),
                            );
                        }
                        Ok(Err(e)) => {
                            self.events.record(
                                rs.as_ref(),
                                EventType::Warning,
                                "FailedCreate",
                                format!("Error creating: {e}"),
                            );
                            failed = Some(e);
                        }
                        Err(join) => tracing::error!(%join, "Pod creation task failed."),
                    }
                }
                if let Some(e) = failed {
                    return Err(e.into());
                }
                done += n;
                batch *= 2;
            }
        } else if pods.len() > want {
            let refs: Vec<&Pod> = pods.iter().map(Arc::as_ref).collect();
            let victims = pod::pods_to_delete(&refs, (pods.len() - want).min(BURST_REPLICAS));
            for victim in victims {
                let pod_name = victim.metadata.name.clone().unwrap_or_default();
                match self.client.delete::<Pod>(&ns, &pod_name).await {
                    Ok(_) => {
                        self.expectations.deleted(key, format!("{ns}/{pod_name}"));
                        self.events.record(
                            rs.as_ref(),
                            EventType::Normal,
                            "SuccessfulDelete",
                            format!("Deleted pod: {pod_name}"),
                        );
                    }
                    Err(e) if e.is_not_found() => {}
                    Err(e) => {
                        self.events.record(
                            rs.as_ref(),
                            EventType::Warning,
                            "FailedDelete",
                            format!("Error deleting: {e}"),
                        );
                        return Err(e.into());
                    }
                }
            }
        }
        Ok(())
    }
}

/// `calculateStatus`: the counts over the pods a ReplicaSet controls, and when the next pod
/// becomes available (to look again then).
pub fn calculate_status(
    rs: &ReplicaSet,
    pods: &[Arc<Pod>],
    now: Timestamp,
) -> (ReplicaSetStatus, Option<Timestamp>) {
    let spec = rs.spec.as_ref();
    let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let template_labels = spec
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    let mut status = rs.status.clone().unwrap_or_default();
    status.replicas = pods.len() as i32;
    status.fully_labeled_replicas = Some(
        pods.iter().filter(|p| selector::contains_all(p.metadata.labels.as_ref(), template_labels)).count()
            as i32,
    );
    status.ready_replicas = Some(pods.iter().filter(|p| pod::is_ready(p)).count() as i32);
    let (available, next) = pod::availability(pods.iter().map(AsRef::as_ref), min_ready, now);
    status.available_replicas = Some(available);
    status.observed_generation = rs.metadata.generation;
    (status, next)
}

impl Reconcile for Controller {
    const NAME: &'static str = "replicaset";
    type Error = Error;

    #[instrument(skip_all, fields(replicaset = %key))]
    async fn reconcile(&self, key: &str) -> Result<Option<Duration>> {
        let Some(rs) = self.sets.get(key) else {
            self.expectations.forget(key);
            return Ok(None);
        };
        let pods = self.claim_pods(&rs).await?;
        let satisfied =
            self.expectations.satisfied(key, |k| self.pods.get(k).map(|p| !pod::is_terminating(&p.metadata)));
        let want = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0) as usize;
        let managed = if satisfied && !pod::is_terminating(&rs.metadata) {
            self.manage(key, &rs, &pods, want).await
        } else {
            Ok(())
        };
        let now = Timestamp::now();
        let (status, next) = calculate_status(&rs, &pods, now);
        if rs.status.as_ref() != Some(&status) {
            let mut updated = (*rs).clone();
            updated.status = Some(status);
            self.client.update_status(&updated).await?;
        }
        managed?;
        Ok(next.map(|at| pod::requeue_at(at, now)))
    }
}
