//! The StatefulSet controller: pods with stable names (`web-0`, `web-1`, ...) and stable DNS
//! identity (`spec.hostname` = the pod name, `spec.subdomain` = `spec.serviceName`, so
//! `web-0.web.default.svc.cluster.local` resolves through the headless Service), created in
//! order and removed in reverse, as upstream's `pkg/controller/statefulset` does. The decisions
//! are in [`plan`]; this file reads the caches, acts, records Events and writes status.
//!
//! Because pod names are fixed, a create that races the cache fails with AlreadyExists rather
//! than making a duplicate, so no expectations are needed here.
//!
//! Not modelled: ControllerRevision objects (the revision is a hash label only, see [`plan`]),
//! PersistentVolumeClaims from `volumeClaimTemplates`, `spec.ordinals.start`, maxUnavailable.

use std::{sync::Arc, time::Duration};

use jiff::Timestamp;
use k8s_openapi::{
    api::{
        apps::v1::{StatefulSet, StatefulSetStatus},
        core::v1::Pod,
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use netlab_client::{Client, recorder::EventType, reflector::Cache};
use tracing::instrument;

use crate::{
    Context, Error, Result, claim,
    controller::{self, Reconcile},
    error::not_found_ok,
    events::Events,
    hash, pod, selector,
};

pub mod plan;

#[cfg(test)]
mod tests;

use plan::{Action, Member};

/// The Events' `source.component`.
pub const COMPONENT: &str = "statefulset-controller";
/// The label naming the pod (a Service can select one member).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label holding the ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// The label holding the revision the pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// The controller's state, shared by its workers.
pub struct Controller {
    client: Client,
    events: Events,
    sets: Cache<StatefulSet>,
    pods: Cache<Pod>,
}

/// Starts the controller on `ctx.tasks`.
pub fn start(ctx: &Context) -> Result<()> {
    let build =
        |sets, pods| Controller { client: ctx.client.clone(), events: ctx.events(COMPONENT), sets, pods };
    controller::Controller::owning::<StatefulSet, Pod>(ctx, build, Controller::adopters)
        .run(&ctx.tasks, ctx.config.concurrent_syncs);
    Ok(())
}

/// The name of the set's pod with `ordinal`.
pub fn pod_name(set: &str, ordinal: i32) -> String {
    format!("{set}-{ordinal}")
}

/// The `controller-revision-hash` of the set's current template: `<set>-<hash>`, as upstream
/// names ControllerRevisions.
pub fn update_revision(set: &StatefulSet) -> String {
    let spec = set.spec.clone().unwrap_or_default();
    let collision = set.status.as_ref().and_then(|s| s.collision_count);
    format!(
        "{}-{}",
        set.metadata.name.as_deref().unwrap_or_default(),
        hash::revision_hash(&spec.template, collision)
    )
}

/// `newStatefulSetPod`: the pod for `ordinal`, with its identity and a controller reference.
pub fn new_pod(set: &StatefulSet, ordinal: i32, revision: &str) -> Pod {
    let spec = set.spec.clone().unwrap_or_default();
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let name = pod_name(&set_name, ordinal);
    let meta = spec.template.metadata.clone().unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(REVISION_LABEL.into(), revision.into());
    let mut pod_spec = spec.template.spec.unwrap_or_default();
    pod_spec.hostname = Some(name.clone());
    pod_spec.subdomain = spec.service_name.filter(|s| !s.is_empty());
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![pod::controller_ref(set)]),
            ..Default::default()
        },
        spec: Some(pod_spec),
        status: None,
    }
}

/// A pod of the set, as [`plan`] sees it.
pub fn member(set_name: &str, p: &Pod, min_ready: i32, now: Timestamp) -> Option<Member> {
    let name = p.metadata.name.clone()?;
    let ordinal = plan::ordinal_of(set_name, &name)?;
    let labels = p.metadata.labels.clone().unwrap_or_default();
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
    Some(Member {
        ordinal,
        terminating: pod::is_terminating(&p.metadata),
        finished: matches!(phase, "Failed" | "Succeeded"),
        healthy: pod::is_running(p) && pod::is_available(p, min_ready, now),
        revision: labels.get(REVISION_LABEL).cloned().unwrap_or_default(),
        identity_ok: labels.get(POD_NAME_LABEL) == Some(&name)
            && labels.get(POD_INDEX_LABEL) == Some(&ordinal.to_string()),
        name,
    })
}

// === impl Controller ===

impl Controller {
    /// The sets that would adopt an orphan pod: those in its namespace whose selector takes it
    /// and whose name pattern its name fits.
    fn adopters(&self, pod: &Pod) -> Vec<Arc<StatefulSet>> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let mut sets = self.sets.list_namespace(ns);
        sets.retain(|s| {
            plan::ordinal_of(s.metadata.name.as_deref().unwrap_or_default(), name).is_some()
                && selector::matches(s.spec.as_ref().map(|sp| &sp.selector), pod.metadata.labels.as_ref())
        });
        sets
    }

    /// The pods the set controls, after adopting orphans that match its selector and name
    /// pattern, and releasing owned pods that stopped matching.
    async fn claim(&self, set: &StatefulSet) -> Result<Vec<Arc<Pod>>> {
        let set_name = set.metadata.name.as_deref().unwrap_or_default();
        let sel = set.spec.as_ref().map(|s| &s.selector);
        let pods = self.pods.list_namespace(set.metadata.namespace.as_deref().unwrap_or_default());
        claim::claim(&self.client, set, pods, |p| {
            selector::matches(sel, p.metadata.labels.as_ref())
                && plan::ordinal_of(set_name, p.metadata.name.as_deref().unwrap_or_default()).is_some()
        })
        .await
    }

    /// `recordPodEvent`'s wording: `create Pod web-0 in StatefulSet web successful`.
    fn pod_event(&self, set: &StatefulSet, verb: &str, pod_name: &str, error: Option<&netlab_client::Error>) {
        let set_name = set.metadata.name.as_deref().unwrap_or_default();
        let lower = verb.to_lowercase();
        match error {
            None => self.events.record(
                set,
                EventType::Normal,
                if verb == "Create" { "SuccessfulCreate" } else { "SuccessfulDelete" },
                format!("{lower} Pod {pod_name} in StatefulSet {set_name} successful"),
            ),
            Some(e) => self.events.record(
                set,
                EventType::Warning,
                if verb == "Create" { "FailedCreate" } else { "FailedDelete" },
                format!("{lower} Pod {pod_name} in StatefulSet {set_name} failed error: {e}"),
            ),
        }
    }

    async fn act(&self, set: &StatefulSet, revision: &str, action: &Action) -> Result<()> {
        let ns = set.metadata.namespace.as_deref().unwrap_or_default();
        let set_name = set.metadata.name.as_deref().unwrap_or_default();
        match action {
            Action::Create(i) => {
                let mut pod = new_pod(set, *i, revision);
                netlab_telemetry::propagation::inherit(
                    set.metadata.annotations.as_ref(),
                    &mut pod.metadata.annotations,
                );
                let name = pod_name(set_name, *i);
                let span = tracing::info_span!("create pod", k8s.statefulset.name = %set_name, k8s.pod.name = %name, k8s.namespace.name = %ns);
                netlab_telemetry::propagation::follow(&span, set.metadata.annotations.as_ref());
                match tracing::Instrument::instrument(self.client.create(&pod), span).await {
                    Ok(_) => self.pod_event(set, "Create", &name, None),
                    // The cache was behind: the pod is there, which is all we wanted.
                    Err(e) if e.is_already_exists() => {}
                    Err(e) => {
                        self.pod_event(set, "Create", &name, Some(&e));
                        return Err(e.into());
                    }
                }
            }
            Action::Delete(name) => match self.client.delete::<Pod>(ns, name).await {
                Ok(_) => self.pod_event(set, "Delete", name, None),
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    self.pod_event(set, "Delete", name, Some(&e));
                    return Err(e.into());
                }
            },
            Action::FixIdentity(name) => {
                let Some(p) = self.pods.get(&format!("{ns}/{name}")) else { return Ok(()) };
                let mut p = (*p).clone();
                let ordinal = plan::ordinal_of(set_name, name).unwrap_or_default();
                let labels = p.metadata.labels.get_or_insert_default();
                labels.insert(POD_NAME_LABEL.into(), name.clone());
                labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
                not_found_ok(self.client.update(&p).await)?;
            }
        }
        Ok(())
    }
}

/// The set's status over its pods (`computeReplicaStatus` and `completeRollingUpdate`), and
/// when the next pod becomes available.
pub fn calculate_status(
    set: &StatefulSet,
    pods: &[Arc<Pod>],
    update_revision: &str,
    now: Timestamp,
) -> (StatefulSetStatus, Option<Timestamp>) {
    let spec = set.spec.clone().unwrap_or_default();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let old = set.status.clone().unwrap_or_default();
    let current_revision = old.current_revision.clone().unwrap_or_else(|| update_revision.to_string());
    let revision =
        |p: &Pod| p.metadata.labels.as_ref().and_then(|l| l.get(REVISION_LABEL)).cloned().unwrap_or_default();
    let mut status = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        current_revision: Some(current_revision.clone()),
        update_revision: Some(update_revision.to_string()),
        ..Default::default()
    };
    let ready_pods: Vec<&Pod> = pods
        .iter()
        .map(AsRef::as_ref)
        .filter(|p| pod::is_running(p) && pod::is_ready(p) && !pod::is_terminating(&p.metadata))
        .collect();
    let ready = ready_pods.len() as i32;
    let (available, next) = pod::availability(ready_pods, min_ready, now);
    let (mut current, mut updated) = (0, 0);
    for p in pods {
        status.replicas += 1;
        if !pod::is_terminating(&p.metadata) {
            let r = revision(p);
            if r == current_revision {
                current += 1;
            }
            if r == update_revision {
                updated += 1;
            }
        }
    }
    status.ready_replicas = Some(ready);
    status.available_replicas = Some(available);
    status.current_replicas = Some(current);
    status.updated_replicas = Some(updated);
    let rolling = spec.update_strategy.as_ref().and_then(|s| s.type_.as_deref()).unwrap_or("RollingUpdate")
        == "RollingUpdate";
    if rolling && updated == status.replicas && ready == status.replicas {
        status.current_replicas = Some(updated);
        status.current_revision = Some(update_revision.to_string());
    }
    (status, next)
}

impl Reconcile for Controller {
    const NAME: &'static str = "statefulset";
    type Error = Error;

    #[instrument(skip_all, fields(statefulset = %key))]
    async fn reconcile(&self, key: &str) -> Result<Option<Duration>> {
        let Some(set) = self.sets.get(key) else { return Ok(None) };
        let pods = self.claim(&set).await?;
        let spec = set.spec.clone().unwrap_or_default();
        let set_name = set.metadata.name.clone().unwrap_or_default();
        let revision = update_revision(&set);
        let now = Timestamp::now();
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        if !pod::is_terminating(&set.metadata) {
            let members: Vec<Member> =
                pods.iter().filter_map(|p| member(&set_name, p, min_ready, now)).collect();
            let strategy = spec.update_strategy.clone().unwrap_or_default();
            let plan_spec = plan::Spec {
                replicas: spec.replicas.unwrap_or(1),
                ordered: spec.pod_management_policy.as_deref().unwrap_or("OrderedReady") != "Parallel",
                rolling: strategy.type_.as_deref().unwrap_or("RollingUpdate") == "RollingUpdate",
                partition: strategy.rolling_update.and_then(|r| r.partition).unwrap_or(0),
                update_revision: &revision,
            };
            for action in plan::plan(&plan_spec, &members) {
                self.act(&set, &revision, &action).await?;
            }
        }
        let (status, next) = calculate_status(&set, &pods, &revision, now);
        if set.status.as_ref() != Some(&status) {
            let mut updated = (*set).clone();
            updated.status = Some(status);
            self.client.update_status(&updated).await?;
        }
        Ok(next.map(|at| pod::requeue_at(at, now)))
    }
}
