//! The Deployment controller: a ReplicaSet per pod template, as upstream's
//! `pkg/controller/deployment` does. The ReplicaSet is named `<deployment>-<pod-template-hash>`
//! (see [`crate::hash`]), carries the `pod-template-hash` label on itself, its
//! selector and its template (so two ReplicaSets of one Deployment never select each other's
//! pods), a controller ownerReference to the Deployment, and the `deployment.kubernetes.io/*`
//! annotations. When the template changes a new ReplicaSet rolls in as the old ones roll out,
//! within maxSurge / maxUnavailable, paced by the ReplicaSets' `availableReplicas`; old
//! ReplicaSets beyond `revisionHistoryLimit` are deleted once scaled to zero.
//!
//! The controller only writes ReplicaSets and Deployment status; pods are the ReplicaSet
//! controller's. Every write carries the resourceVersion the decision was made on, so a decision
//! on a stale cache fails with Conflict and is retried on fresh data.
//!
//! # Layout
//! - [`rollout`]: surge / unavailable arithmetic and annotation names.
//! - this file: the caches, the sync loop, status and conditions.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{
    api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
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

pub mod rollout;

#[cfg(test)]
mod tests;

use rollout::{
    DESIRED_REPLICAS, MAX_REPLICAS, POD_TEMPLATE_HASH, REVISION, REVISION_HISTORY, rs_available, rs_replicas,
};

/// The Events' `source.component`.
pub const COMPONENT: &str = "deployment-controller";

/// Annotations a Deployment does not pass to its ReplicaSets (upstream's `annotationsToSkip`).
const SKIPPED_ANNOTATIONS: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// Condition reasons and messages, as upstream's `deploymentutil`.
mod reason {
    pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
    pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
    pub const RS_UPDATED: &str = "ReplicaSetUpdated";
    pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
    pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
    pub const PAUSED: &str = "DeploymentPaused";
    pub const RESUMED: &str = "DeploymentResumed";
    pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
    pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
    pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
}

/// The controller's state, shared by its workers.
pub struct Controller {
    client: Client,
    events: Events,
    deployments: Cache<Deployment>,
    sets: Cache<ReplicaSet>,
}

/// Starts the controller on `ctx.tasks`.
pub fn start(ctx: &Context) -> Result<()> {
    let build = |deployments, sets| Controller {
        client: ctx.client.clone(),
        events: ctx.events(COMPONENT),
        deployments,
        sets,
    };
    controller::Controller::owning::<Deployment, ReplicaSet>(ctx, build, Controller::adopters)
        .run(&ctx.tasks, ctx.config.concurrent_syncs);
    Ok(())
}

fn now() -> Timestamp {
    let now = Timestamp::now();
    // Times go over the wire with whole seconds; keep them so, so comparisons hold.
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

fn condition(type_: &str, status: &str, reason: &str, message: String) -> DeploymentCondition {
    let t = Time(now());
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(t.clone()),
        last_transition_time: Some(t),
    }
}

fn get_condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// `SetDeploymentCondition`: replaces the condition of that type unless status and reason are
/// unchanged; keeps lastTransitionTime when only the reason changes.
pub fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    if let Some(cur) = get_condition(status, &cond.type_) {
        if cur.status == cond.status && cur.reason == cond.reason {
            return;
        }
        if cur.status == cond.status {
            cond.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove_condition(status, &cond.type_);
    status.conditions.get_or_insert_default().push(cond);
}

fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(c) = status.conditions.as_mut() {
        c.retain(|c| c.type_ != type_);
    }
}

fn revision_of(rs: &ReplicaSet) -> i64 {
    rollout::annotation(rs, REVISION).unwrap_or(0)
}

fn created(rs: &ReplicaSet) -> (Timestamp, String) {
    (
        rs.metadata.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(Timestamp::MIN),
        rs.metadata.name.clone().unwrap_or_default(),
    )
}

/// `EqualIgnoreHash`: whether two templates are the same but for the `pod-template-hash` label.
pub fn equal_ignore_hash(
    a: &k8s_openapi::api::core::v1::PodTemplateSpec,
    b: &k8s_openapi::api::core::v1::PodTemplateSpec,
) -> bool {
    let strip = |t: &k8s_openapi::api::core::v1::PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(POD_TEMPLATE_HASH);
            if labels.is_empty()
                && let Some(m) = t.metadata.as_mut()
            {
                m.labels = None;
            }
        }
        serde_json::to_value(t).unwrap_or_default()
    };
    strip(a) == strip(b)
}

/// `calculateStatus`: the Deployment's counts from its ReplicaSets, and condition Available.
pub fn calculate_status(all: &[&ReplicaSet], new: Option<&ReplicaSet>, d: &Deployment) -> DeploymentStatus {
    let sum = |f: &dyn Fn(&ReplicaSet) -> i32| all.iter().map(|rs| f(rs)).sum::<i32>();
    let status_of = |rs: &ReplicaSet| rs.status.clone().unwrap_or_default();
    let available = sum(&|rs| rs_available(rs));
    let total = sum(&rs_replicas);
    let old = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(sum(&|rs| status_of(rs).replicas)),
        updated_replicas: Some(new.map(|rs| status_of(rs).replicas).unwrap_or(0)),
        ready_replicas: Some(sum(&|rs| status_of(rs).ready_replicas.unwrap_or(0))),
        available_replicas: Some(available),
        unavailable_replicas: Some((total - available).max(0)),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        terminating_replicas: None,
    };
    if available >= rollout::replicas(d) - rollout::max_unavailable(d) {
        set_condition(
            &mut status,
            condition(
                "Available",
                "True",
                reason::MIN_AVAILABLE,
                "Deployment has minimum availability.".into(),
            ),
        );
    } else {
        set_condition(
            &mut status,
            condition(
                "Available",
                "False",
                reason::MIN_UNAVAILABLE,
                "Deployment does not have minimum availability.".into(),
            ),
        );
    }
    status
}

/// `DeploymentComplete`: every replica updated and available, and the spec observed.
pub fn is_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let want = rollout::replicas(d);
    status.updated_replicas == Some(want)
        && status.replicas == Some(want)
        && status.available_replicas == Some(want)
        && status.observed_generation >= d.metadata.generation
}

/// `DeploymentProgressing`: more pods updated, ready or available, or fewer old ones, than the
/// stored status says.
pub fn is_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// One sync's view of a Deployment: the object as last written, and its ReplicaSets.
struct Sync {
    d: Deployment,
    /// ReplicaSets the Deployment controls, as last read or written.
    sets: Vec<ReplicaSet>,
    /// The status as the apiserver has it (`d.status` may hold changes not yet written).
    stored: Option<DeploymentStatus>,
}

// === impl Controller ===

impl Controller {
    /// The Deployments that would adopt an orphan ReplicaSet: those in its namespace whose
    /// selector takes it.
    fn adopters(&self, rs: &ReplicaSet) -> Vec<Arc<Deployment>> {
        let ns = rs.metadata.namespace.as_deref().unwrap_or_default();
        let mut deployments = self.deployments.list_namespace(ns);
        deployments
            .retain(|d| selector::matches(d.spec.as_ref().map(|s| &s.selector), rs.metadata.labels.as_ref()));
        deployments
    }

    /// `claimReplicaSets`: the ReplicaSets `d` controls, after adopting orphans its selector
    /// takes and releasing owned ones it no longer takes; oldest first.
    async fn claim(&self, d: &Deployment) -> Result<Vec<ReplicaSet>> {
        let sel = d.spec.as_ref().map(|s| &s.selector);
        let sets = self.sets.list_namespace(d.metadata.namespace.as_deref().unwrap_or_default());
        let claimed =
            claim::claim(&self.client, d, sets, |rs| selector::matches(sel, rs.metadata.labels.as_ref()))
                .await?;
        let mut owned: Vec<ReplicaSet> = claimed.iter().map(|rs| (**rs).clone()).collect();
        owned.sort_by_key(created);
        Ok(owned)
    }

    /// Writes the Deployment's metadata (the revision annotation), keeping the in-memory status.
    async fn update_meta(&self, s: &mut Sync) -> Result<()> {
        let status = s.d.status.clone();
        s.d = self.client.update(&s.d).await?;
        s.stored = std::mem::replace(&mut s.d.status, status);
        Ok(())
    }

    /// `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (index into `s.sets`; created if
    /// `create`), with its annotations and the Deployment's revision brought up to date.
    async fn new_replica_set(&self, s: &mut Sync, create: bool) -> Result<Option<usize>> {
        let template = s.d.spec.clone().unwrap_or_default().template;
        let existing = s.sets.iter().position(|rs| {
            rs.spec
                .as_ref()
                .and_then(|sp| sp.template.as_ref())
                .is_some_and(|t| equal_ignore_hash(t, &template))
        });
        let max_old = s
            .sets
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != existing)
            .map(|(_, rs)| revision_of(rs))
            .max()
            .unwrap_or(0);
        let new_revision = (max_old + 1).to_string();
        if let Some(i) = existing {
            let mut rs = s.sets[i].clone();
            let changed = self.set_new_rs_annotations(&s.d, &mut rs, &new_revision, true);
            let min_ready = s.d.spec.as_ref().and_then(|sp| sp.min_ready_seconds);
            let spec = rs.spec.get_or_insert_default();
            let min_ready_changed = spec.min_ready_seconds != min_ready;
            if changed || min_ready_changed {
                spec.min_ready_seconds = min_ready;
                s.sets[i] = self.client.update(&rs).await?;
                return Ok(Some(i));
            }
            let rev =
                rs.metadata.annotations.as_ref().and_then(|a| a.get(REVISION)).cloned().unwrap_or_default();
            self.set_deployment_revision(s, &rev).await?;
            let deadline = has_progress_deadline(&s.d);
            if deadline && get_condition(s.d.status.get_or_insert_default(), "Progressing").is_none() {
                let name = rs.metadata.name.clone().unwrap_or_default();
                let cond = condition(
                    "Progressing",
                    "True",
                    reason::FOUND_NEW_RS,
                    format!("Found new replica set {name:?}"),
                );
                set_condition(s.d.status.get_or_insert_default(), cond);
            }
            return Ok(Some(i));
        }
        if !create {
            return Ok(None);
        }
        let d = &s.d;
        let spec = d.spec.clone().unwrap_or_default();
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        let collision = d.status.as_ref().and_then(|st| st.collision_count);
        let h = hash::pod_template_hash(&spec.template, collision);
        let mut rs_template = spec.template.clone();
        rs_template
            .metadata
            .get_or_insert_default()
            .labels
            .get_or_insert_default()
            .insert(POD_TEMPLATE_HASH.into(), h.clone());
        let mut rs_selector = spec.selector.clone();
        rs_selector.match_labels.get_or_insert_default().insert(POD_TEMPLATE_HASH.into(), h.clone());
        let name = format!("{}-{h}", d.metadata.name.as_deref().unwrap_or_default());
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                labels: rs_template.metadata.as_ref().and_then(|m| m.labels.clone()),
                owner_references: Some(vec![pod::controller_ref(d)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: spec.min_ready_seconds,
                selector: rs_selector,
                template: Some(rs_template),
            }),
            status: None,
        };
        let total: i32 = s.sets.iter().map(rs_replicas).sum();
        let count = if rollout::is_rolling(d) {
            rollout::new_rs_new_replicas(rollout::replicas(d), rollout::max_surge(d), total, 0)
        } else {
            rollout::replicas(d)
        };
        rs.spec.get_or_insert_default().replicas = Some(count);
        self.set_new_rs_annotations(d, &mut rs, &new_revision, false);
        netlab_telemetry::propagation::inherit(d.metadata.annotations.as_ref(), &mut rs.metadata.annotations);
        let span = tracing::info_span!("create replicaset", k8s.deployment.name = %d.metadata.name.as_deref().unwrap_or(""), k8s.replicaset.name = %name, k8s.namespace.name = %d.metadata.namespace.as_deref().unwrap_or(""), netlab.replicas = count);
        netlab_telemetry::propagation::follow(&span, d.metadata.annotations.as_ref());
        let created = match tracing::Instrument::instrument(self.client.create(&rs), span).await {
            Ok(rs) => {
                if count > 0 {
                    self.events.record(
                        d,
                        EventType::Normal,
                        "ScalingReplicaSet",
                        format!("Scaled up replica set {name} from 0 to {count}"),
                    );
                }
                rs
            }
            Err(e) if e.is_already_exists() => {
                let existing: ReplicaSet = self.client.get(&ns, &name).await?;
                let ours =
                    pod::is_controlled_by(&existing.metadata, d.metadata.uid.as_deref().unwrap_or_default());
                let same = existing
                    .spec
                    .as_ref()
                    .and_then(|sp| sp.template.as_ref())
                    .is_some_and(|t| equal_ignore_hash(t, &spec.template));
                if !(ours && same) {
                    // A hash collision: bump collisionCount so the next sync picks another name.
                    let mut d = s.d.clone();
                    let st = d.status.get_or_insert_default();
                    st.collision_count = Some(st.collision_count.unwrap_or(0) + 1);
                    self.client.update_status(&d).await?;
                    return Err(e.into());
                }
                existing
            }
            Err(e) => {
                let msg = format!("Failed to create new replica set {name:?}: {e}");
                if has_progress_deadline(d) {
                    let mut d = s.d.clone();
                    set_condition(
                        d.status.get_or_insert_default(),
                        condition("Progressing", "False", reason::FAILED_RS_CREATE, msg.clone()),
                    );
                    let _ = self.client.update_status(&d).await;
                }
                self.events.record(&s.d, EventType::Warning, reason::FAILED_RS_CREATE, msg);
                return Err(e.into());
            }
        };
        self.set_deployment_revision(s, &new_revision).await?;
        if has_progress_deadline(&s.d) {
            let cond = condition(
                "Progressing",
                "True",
                reason::NEW_RS_CREATED,
                format!("Created new replica set {name:?}"),
            );
            set_condition(s.d.status.get_or_insert_default(), cond);
        }
        s.sets.push(created);
        Ok(Some(s.sets.len() - 1))
    }

    /// `SetNewReplicaSetAnnotations`: the Deployment's annotations (less the skipped ones), the
    /// revision if it grew, and for a new ReplicaSet the replica annotations. Whether anything
    /// changed.
    fn set_new_rs_annotations(
        &self,
        d: &Deployment,
        rs: &mut ReplicaSet,
        new_revision: &str,
        exists: bool,
    ) -> bool {
        let mut changed = false;
        let annotations = rs.metadata.annotations.get_or_insert_default();
        for (k, v) in d.metadata.annotations.iter().flatten() {
            if SKIPPED_ANNOTATIONS.contains(&k.as_str()) {
                continue;
            }
            if annotations.get(k) != Some(v) {
                annotations.insert(k.clone(), v.clone());
                changed = true;
            }
        }
        let old: i64 = annotations.get(REVISION).and_then(|r| r.parse().ok()).unwrap_or(0);
        let new: i64 = new_revision.parse().unwrap_or(0);
        if old < new {
            annotations.insert(REVISION.into(), new_revision.into());
            changed = true;
        }
        if !exists {
            changed |= set_replicas_annotations(
                rs,
                rollout::replicas(d),
                rollout::replicas(d) + rollout::max_surge(d),
            );
        }
        changed
    }

    /// `SetDeploymentRevision`, written at once (annotations are metadata, which UpdateStatus
    /// does not write here).
    async fn set_deployment_revision(&self, s: &mut Sync, revision: &str) -> Result<()> {
        let current = s.d.metadata.annotations.as_ref().and_then(|a| a.get(REVISION));
        if current.map(String::as_str) == Some(revision) || revision.is_empty() {
            return Ok(());
        }
        s.d.metadata.annotations.get_or_insert_default().insert(REVISION.into(), revision.into());
        self.update_meta(s).await
    }

    /// `scaleReplicaSet`: sets the size and the replica annotations; records ScalingReplicaSet.
    async fn scale(&self, s: &mut Sync, i: usize, size: i32) -> Result<bool> {
        let d = &s.d;
        let mut rs = s.sets[i].clone();
        let old = rs_replicas(&rs);
        let annotations = set_replicas_annotations(
            &mut rs,
            rollout::replicas(d),
            rollout::replicas(d) + rollout::max_surge(d),
        );
        if old == size && !annotations {
            return Ok(false);
        }
        rs.spec.get_or_insert_default().replicas = Some(size);
        s.sets[i] = self.client.update(&rs).await?;
        if old != size {
            let op = if size > old { "up" } else { "down" };
            let name = rs.metadata.name.clone().unwrap_or_default();
            self.events.record(
                d,
                EventType::Normal,
                "ScalingReplicaSet",
                format!("Scaled {op} replica set {name} from {old} to {size}"),
            );
        }
        Ok(old != size)
    }

    /// `scale`: a change of `replicas` (or a paused Deployment), spread over the active
    /// ReplicaSets in proportion during a rollout.
    async fn scale_deployment(&self, s: &mut Sync, new: Option<usize>) -> Result<()> {
        let want = rollout::replicas(&s.d);
        let active: Vec<usize> = (0..s.sets.len()).filter(|i| rs_replicas(&s.sets[*i]) > 0).collect();
        // FindActiveOrLatest: one active ReplicaSet (or none: the newest) takes everything.
        let only = match active.len() {
            0 => new.or_else(|| (0..s.sets.len()).max_by_key(|i| created(&s.sets[*i]))),
            1 => Some(active[0]),
            _ => None,
        };
        if let Some(i) = only {
            if rs_replicas(&s.sets[i]) != want {
                self.scale(s, i, want).await?;
            }
            return Ok(());
        }
        // IsSaturated: the new ReplicaSet is complete; the old ones go to zero.
        if let Some(n) = new
            && is_saturated(&s.d, &s.sets[n])
        {
            for i in active.into_iter().filter(|i| *i != n) {
                self.scale(s, i, 0).await?;
            }
            return Ok(());
        }
        if !rollout::is_rolling(&s.d) {
            return Ok(());
        }
        let surge = rollout::max_surge(&s.d);
        let allowed = if want > 0 { want + surge } else { 0 };
        let total: i32 = active.iter().map(|i| rs_replicas(&s.sets[*i])).sum();
        let to_add = allowed - total;
        let mut order = active.clone();
        // Larger first; on ties newer first when growing, older first when shrinking.
        order.sort_by(|a, b| {
            let (ra, rb) = (&s.sets[*a], &s.sets[*b]);
            rs_replicas(rb).cmp(&rs_replicas(ra)).then_with(|| {
                if to_add > 0 { created(rb).cmp(&created(ra)) } else { created(ra).cmp(&created(rb)) }
            })
        });
        let annotated_default = s.d.status.as_ref().and_then(|st| st.replicas).unwrap_or(0);
        let mut sizes = Vec::new();
        let mut added = 0;
        for i in &order {
            let rs = &s.sets[*i];
            let annotated =
                rollout::annotation(rs, MAX_REPLICAS).map(|v| v as i32).unwrap_or(annotated_default);
            let p = rollout::proportion(rs_replicas(rs), want, surge, annotated, to_add, added);
            sizes.push(rs_replicas(rs) + p);
            added += p;
        }
        for (k, i) in order.into_iter().enumerate() {
            let mut size = sizes[k];
            if k == 0 && to_add != 0 {
                size = (size + to_add - added).max(0);
            }
            self.scale(s, i, size).await?;
        }
        Ok(())
    }

    /// `cleanupDeployment`: deletes the oldest old ReplicaSets beyond `revisionHistoryLimit`
    /// that are scaled to zero.
    async fn cleanup(&self, s: &Sync, new: Option<usize>) -> Result<()> {
        let Some(limit) = s.d.spec.as_ref().and_then(|sp| sp.revision_history_limit) else { return Ok(()) };
        let mut old: Vec<&ReplicaSet> = (0..s.sets.len())
            .filter(|i| Some(*i) != new)
            .map(|i| &s.sets[i])
            .filter(|rs| !pod::is_terminating(&rs.metadata))
            .collect();
        let diff = old.len() as i32 - limit;
        if diff <= 0 {
            return Ok(());
        }
        old.sort_by_key(|rs| (revision_of(rs), created(rs)));
        for rs in old.into_iter().take(diff as usize) {
            let st = rs.status.clone().unwrap_or_default();
            if st.replicas != 0 || rs_replicas(rs) != 0 || rs.metadata.generation > st.observed_generation {
                continue;
            }
            let ns = rs.metadata.namespace.as_deref().unwrap_or_default();
            let name = rs.metadata.name.as_deref().unwrap_or_default();
            not_found_ok(self.client.delete::<ReplicaSet>(ns, name).await)?;
        }
        Ok(())
    }

    /// `rolloutRolling`.
    async fn rollout_rolling(&self, s: &mut Sync) -> Result<Option<Duration>> {
        let new = self.new_replica_set(s, true).await?;
        let Some(n) = new else { return self.sync_rollout_status(s, None).await };
        let d = s.d.clone();
        let want = rollout::replicas(&d);
        // reconcileNewReplicaSet.
        let new_size = rs_replicas(&s.sets[n]);
        let scaled_up = if new_size > want {
            self.scale(s, n, want).await?
        } else if new_size < want {
            let total: i32 = s.sets.iter().map(rs_replicas).sum();
            let size = rollout::new_rs_new_replicas(want, rollout::max_surge(&d), total, new_size);
            self.scale(s, n, size).await?
        } else {
            false
        };
        if scaled_up {
            return self.sync_rollout_status(s, new).await;
        }
        if self.reconcile_old(s, n).await? {
            return self.sync_rollout_status(s, new).await;
        }
        if is_complete(&d, &d.status.clone().unwrap_or_default()) {
            self.cleanup(s, new).await?;
        }
        self.sync_rollout_status(s, new).await
    }

    /// `reconcileOldReplicaSets`: scales old ReplicaSets down as far as maxUnavailable allows,
    /// unhealthy replicas first. Whether anything was scaled.
    async fn reconcile_old(&self, s: &mut Sync, n: usize) -> Result<bool> {
        let d = s.d.clone();
        let mut old: Vec<usize> = (0..s.sets.len()).filter(|i| *i != n).collect();
        old.sort_by_key(|i| created(&s.sets[*i]));
        let old_pods: i32 = old.iter().map(|i| rs_replicas(&s.sets[*i])).sum();
        if old_pods == 0 {
            return Ok(false);
        }
        let all_pods: i32 = s.sets.iter().map(rs_replicas).sum();
        let want = rollout::replicas(&d);
        let max_unavailable = rollout::max_unavailable(&d);
        let new_unavailable = rs_replicas(&s.sets[n]) - rs_available(&s.sets[n]);
        let budget = rollout::max_scaled_down(all_pods, want, max_unavailable, new_unavailable);
        if budget <= 0 {
            return Ok(false);
        }
        // cleanupUnhealthyReplicas: old replicas that are not available go first, whatever the
        // availability budget, as they add nothing.
        let mut cleaned = 0;
        for &i in &old {
            if cleaned >= budget {
                break;
            }
            let (size, available) = (rs_replicas(&s.sets[i]), rs_available(&s.sets[i]));
            if size == 0 || size == available {
                continue;
            }
            let down = (budget - cleaned).min(size - available);
            self.scale(s, i, size - down).await?;
            cleaned += down;
        }
        // scaleDownOldReplicaSetsForRollingUpdate.
        let available: i32 = s.sets.iter().map(rs_available).sum();
        let total_down = rollout::scale_down_budget(available, want, max_unavailable);
        let mut scaled = 0;
        for &i in &old {
            if scaled >= total_down {
                break;
            }
            let size = rs_replicas(&s.sets[i]);
            if size == 0 {
                continue;
            }
            let down = size.min(total_down - scaled);
            self.scale(s, i, size - down).await?;
            scaled += down;
        }
        Ok(cleaned + scaled > 0)
    }

    /// `rolloutRecreate`: every old pod goes before the new ReplicaSet grows. "Old pods gone"
    /// is read from the old ReplicaSets' `status.replicas`, which (as upstream's ReplicaSet
    /// status) does not count Terminating pods; upstream waits for those too.
    async fn rollout_recreate(&self, s: &mut Sync) -> Result<Option<Duration>> {
        let mut new = self.new_replica_set(s, false).await?;
        let mut scaled_down = false;
        for i in 0..s.sets.len() {
            if Some(i) != new && rs_replicas(&s.sets[i]) > 0 {
                scaled_down |= self.scale(s, i, 0).await?;
            }
        }
        if scaled_down {
            return self.sync_rollout_status(s, new).await;
        }
        let old_running = (0..s.sets.len())
            .filter(|i| Some(*i) != new)
            .any(|i| s.sets[i].status.as_ref().is_some_and(|st| st.replicas > 0));
        if old_running {
            return self.sync_rollout_status(s, new).await;
        }
        if new.is_none() {
            new = self.new_replica_set(s, true).await?;
        }
        if let Some(n) = new {
            let want = rollout::replicas(&s.d);
            if rs_replicas(&s.sets[n]) != want {
                self.scale(s, n, want).await?;
            }
        }
        let d = s.d.clone();
        if is_complete(&d, &d.status.clone().unwrap_or_default()) {
            self.cleanup(s, new).await?;
        }
        self.sync_rollout_status(s, new).await
    }

    /// `syncRolloutStatus`: counts, Available, and Progressing (complete, progressing or timed
    /// out); asks to be looked at again when the progress deadline would pass.
    async fn sync_rollout_status(&self, s: &mut Sync, new: Option<usize>) -> Result<Option<Duration>> {
        let all: Vec<&ReplicaSet> = s.sets.iter().collect();
        let new_rs = new.map(|i| &s.sets[i]);
        let mut status = calculate_status(&all, new_rs, &s.d);
        let mut requeue = None;
        if !has_progress_deadline(&s.d) {
            remove_condition(&mut status, "Progressing");
        }
        let current = get_condition(&status, "Progressing").cloned();
        let complete_before = status.replicas == status.updated_replicas
            && current.as_ref().is_some_and(|c| c.reason.as_deref() == Some(reason::NEW_RS_AVAILABLE));
        if has_progress_deadline(&s.d) && !complete_before {
            let name = new_rs.and_then(|rs| rs.metadata.name.clone()).unwrap_or_default();
            if is_complete(&s.d, &status) {
                let msg = format!("ReplicaSet {name:?} has successfully progressed.");
                set_condition(&mut status, condition("Progressing", "True", reason::NEW_RS_AVAILABLE, msg));
            } else if is_progressing(&s.d, &status) {
                let msg = format!("ReplicaSet {name:?} is progressing.");
                let mut cond = condition("Progressing", "True", reason::RS_UPDATED, msg);
                if let Some(cur) = current.as_ref().filter(|c| c.status == "True") {
                    cond.last_transition_time = cur.last_transition_time.clone();
                }
                remove_condition(&mut status, "Progressing");
                set_condition(&mut status, cond);
            } else if let Some(left) = self.deadline_left(&s.d, current.as_ref()) {
                if left <= SignedDuration::ZERO {
                    let msg = format!("ReplicaSet {name:?} has timed out progressing.");
                    set_condition(&mut status, condition("Progressing", "False", reason::TIMED_OUT, msg));
                } else {
                    requeue = Some(Duration::from_secs(left.as_secs().max(0) as u64 + 1));
                }
            }
        }
        self.write_status(s, status).await?;
        Ok(requeue)
    }

    /// How long until the progress deadline passes, if the Deployment is progressing (and not
    /// already timed out or paused).
    fn deadline_left(&self, d: &Deployment, cond: Option<&DeploymentCondition>) -> Option<SignedDuration> {
        let cond = cond?;
        if matches!(
            cond.reason.as_deref(),
            Some(reason::TIMED_OUT | reason::PAUSED | reason::NEW_RS_AVAILABLE)
        ) {
            return None;
        }
        if d.spec.as_ref().and_then(|sp| sp.paused) == Some(true) {
            return None;
        }
        let secs = d.spec.as_ref()?.progress_deadline_seconds?;
        let last = cond.last_update_time.as_ref()?.0;
        Some(
            last.duration_until(now())
                .checked_neg()?
                .saturating_add(SignedDuration::from_secs(i64::from(secs))),
        )
    }

    async fn write_status(&self, s: &mut Sync, status: DeploymentStatus) -> Result<()> {
        if s.stored.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut d = s.d.clone();
        d.status = Some(status);
        s.d = self.client.update_status(&d).await?;
        s.stored = s.d.status.clone();
        Ok(())
    }

    /// `sync`: scaling (or a paused Deployment) without rolling.
    async fn sync(&self, s: &mut Sync) -> Result<Option<Duration>> {
        let new = self.new_replica_set(s, false).await?;
        self.scale_deployment(s, new).await?;
        if s.d.spec.as_ref().and_then(|sp| sp.paused) == Some(true) {
            self.cleanup(s, new).await?;
        }
        let all: Vec<&ReplicaSet> = s.sets.iter().collect();
        let status = calculate_status(&all, new.map(|i| &s.sets[i]), &s.d);
        self.write_status(s, status).await?;
        Ok(None)
    }

    /// `checkPausedConditions`.
    fn paused_conditions(d: &mut Deployment) {
        if !has_progress_deadline(d) {
            return;
        }
        let paused = d.spec.as_ref().and_then(|sp| sp.paused) == Some(true);
        let status = d.status.get_or_insert_default();
        let cond = get_condition(status, "Progressing");
        if cond.is_some_and(|c| c.reason.as_deref() == Some(reason::TIMED_OUT)) {
            return;
        }
        let paused_cond = cond.is_some_and(|c| c.reason.as_deref() == Some(reason::PAUSED));
        if paused && !paused_cond {
            set_condition(
                status,
                condition("Progressing", "Unknown", reason::PAUSED, "Deployment is paused".into()),
            );
        } else if !paused && paused_cond {
            set_condition(
                status,
                condition("Progressing", "Unknown", reason::RESUMED, "Deployment is resumed".into()),
            );
        }
    }
}

fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|sp| sp.progress_deadline_seconds).is_some_and(|s| s != i32::MAX)
}

/// `SetReplicasAnnotations`: desired-replicas and max-replicas. Whether they changed.
fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = rs.metadata.annotations.get_or_insert_default();
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if a.get(k) != Some(&v) {
            a.insert(k.into(), v);
            changed = true;
        }
    }
    changed
}

/// `IsSaturated`: the new ReplicaSet has all replicas, all available.
fn is_saturated(d: &Deployment, rs: &ReplicaSet) -> bool {
    let want = rollout::replicas(d);
    rs_replicas(rs) == want
        && rollout::annotation(rs, DESIRED_REPLICAS) == Some(i64::from(want))
        && rs_available(rs) == want
}

/// `isScalingEvent`: an active ReplicaSet was sized for another `replicas`.
fn is_scaling_event(d: &Deployment, sets: &[ReplicaSet]) -> bool {
    let want = i64::from(rollout::replicas(d));
    sets.iter()
        .filter(|rs| rs_replicas(rs) > 0)
        .any(|rs| rollout::annotation(rs, DESIRED_REPLICAS).is_some_and(|v| v != want))
}

impl Reconcile for Controller {
    const NAME: &'static str = "deployment";
    type Error = Error;

    #[instrument(skip_all, fields(deployment = %key))]
    async fn reconcile(&self, key: &str) -> Result<Option<Duration>> {
        let Some(d) = self.deployments.get(key) else { return Ok(None) };
        let mut d = (*d).clone();
        let everything = d.spec.as_ref().is_some_and(|sp| {
            sp.selector.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
                && sp.selector.match_expressions.as_ref().is_none_or(Vec::is_empty)
        });
        if everything {
            self.events.record(
                &d,
                EventType::Warning,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.".into(),
            );
            return Ok(None);
        }
        let sets = self.claim(&d).await?;
        if pod::is_terminating(&d.metadata) {
            let stored = d.status.clone();
            let mut s = Sync { d, sets, stored };
            let new = self.new_replica_set(&mut s, false).await?;
            let all: Vec<&ReplicaSet> = s.sets.iter().collect();
            let status = calculate_status(&all, new.map(|i| &s.sets[i]), &s.d);
            self.write_status(&mut s, status).await?;
            return Ok(None);
        }
        let stored = d.status.clone();
        Self::paused_conditions(&mut d);
        let paused = d.spec.as_ref().and_then(|sp| sp.paused) == Some(true);
        let scaling = is_scaling_event(&d, &sets);
        let mut s = Sync { d, sets, stored };
        if paused || scaling {
            return self.sync(&mut s).await;
        }
        if rollout::is_rolling(&s.d) {
            self.rollout_rolling(&mut s).await
        } else {
            self.rollout_recreate(&mut s).await
        }
    }
}
