//! Pages for apps/v1 workloads: Deployment, ReplicaSet, StatefulSet, DaemonSet.

use k8s_openapi::{
    api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
    apimachinery::pkg::util::intstr::IntOrString,
};
use serde_json::Value;

use super::{Clock, Page, controller, pod};
use crate::{
    print::typed,
    selector::{format_label_selector, format_labels, selector_string},
};

/// Pods by phase: (running, waiting, succeeded, failed).
pub type PodCounts = (usize, usize, usize, usize);

fn int_or_string(v: Option<&IntOrString>) -> String {
    match v {
        Some(IntOrString::Int(i)) => i.to_string(),
        Some(IntOrString::String(s)) => s.clone(),
        None => "25%".to_string(),
    }
}

/// A pod template without the label the ReplicaSet controller adds, for comparing a
/// ReplicaSet's template with its Deployment's.
fn template_key(t: Option<&Value>) -> Value {
    let mut t = t.cloned().unwrap_or(Value::Null);
    if let Some(labels) = t.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        labels.remove("pod-template-hash");
    }
    t
}

/// Splits a Deployment's ReplicaSets into old and new, as kubectl's deployment util does: the
/// new one has the Deployment's pod template.
pub fn split_replica_sets<'a>(
    d: &Value,
    owned: &'a [ReplicaSet],
) -> (Vec<&'a ReplicaSet>, Option<&'a ReplicaSet>) {
    let want = template_key(d.pointer("/spec/template"));
    let revision =
        d.pointer("/metadata/annotations/deployment.kubernetes.io~1revision").and_then(Value::as_str);
    let is_new = |rs: &ReplicaSet| {
        let v = serde_json::to_value(rs).unwrap_or(Value::Null);
        template_key(v.pointer("/spec/template")) == want
            || (revision.is_some()
                && rs
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("deployment.kubernetes.io/revision"))
                    .map(String::as_str)
                    == revision)
    };
    let new = owned.iter().find(|rs| is_new(rs));
    let old = owned.iter().filter(|rs| Some(*rs) != new).collect();
    (old, new)
}

fn replica_sets_line(list: &[&ReplicaSet]) -> String {
    if list.is_empty() {
        return "<none>".to_string();
    }
    list.iter()
        .map(|rs| {
            format!(
                "{} ({}/{} replicas created)",
                rs.metadata.name.clone().unwrap_or_default(),
                rs.status.as_ref().map_or(0, |s| s.replicas),
                rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// kubectl's Deployment page.
pub fn deployment(obj: &Value, owned: &[ReplicaSet], events: Option<&[Value]>, clock: &Clock) -> String {
    let d: Deployment = typed(obj);
    let spec = d.spec.clone().unwrap_or_default();
    let status = d.status.clone().unwrap_or_default();
    let mut w = Page::default();
    w.w(0, &format!("Name:\t{}\n", d.metadata.name.clone().unwrap_or_default()));
    w.w(0, &format!("Namespace:\t{}\n", d.metadata.namespace.clone().unwrap_or_default()));
    w.w(0, &format!("CreationTimestamp:\t{}\n", clock.rfc1123z(d.metadata.creation_timestamp.as_ref())));
    w.labels("Labels", d.metadata.labels.as_ref());
    w.annotations("Annotations", d.metadata.annotations.as_ref());
    w.w(0, &format!("Selector:\t{}\n", selector_string(Some(&spec.selector))));
    w.w(
        0,
        &format!(
            "Replicas:\t{} desired | {} updated | {} total | {} available | {} unavailable\n",
            spec.replicas.unwrap_or(1),
            status.updated_replicas.unwrap_or(0),
            status.replicas.unwrap_or(0),
            status.available_replicas.unwrap_or(0),
            status.unavailable_replicas.unwrap_or(0)
        ),
    );
    let strategy = spec.strategy.clone().unwrap_or_default();
    let strategy_type = strategy.type_.clone().unwrap_or_else(|| "RollingUpdate".to_string());
    w.w(0, &format!("StrategyType:\t{strategy_type}\n"));
    w.w(0, &format!("MinReadySeconds:\t{}\n", spec.min_ready_seconds.unwrap_or(0)));
    if strategy_type == "RollingUpdate" {
        let ru = strategy.rolling_update.clone().unwrap_or_default();
        w.w(
            0,
            &format!(
                "RollingUpdateStrategy:\t{} max unavailable, {} max surge\n",
                int_or_string(ru.max_unavailable.as_ref()),
                int_or_string(ru.max_surge.as_ref())
            ),
        );
    }
    pod::template(&mut w, Some(&spec.template), clock);
    let conditions = status.conditions.clone().unwrap_or_default();
    if !conditions.is_empty() {
        w.w(0, "Conditions:\n  Type\tStatus\tReason\n");
        w.w(1, "----\t------\t------\n");
        for c in &conditions {
            w.w(1, &format!("{} \t{}\t{}\n", c.type_, c.status, c.reason.clone().unwrap_or_default()));
        }
    }
    if !owned.is_empty() {
        let (old, new) = split_replica_sets(obj, owned);
        w.w(0, &format!("OldReplicaSets:\t{}\n", replica_sets_line(&old)));
        w.w(0, &format!("NewReplicaSet:\t{}\n", replica_sets_line(&new.into_iter().collect::<Vec<_>>())));
    }
    w.events(events, clock);
    w.finish()
}

/// kubectl's ReplicaSet page.
pub fn replica_set(obj: &Value, pods: PodCounts, events: Option<&[Value]>, clock: &Clock) -> String {
    let rs: ReplicaSet = typed(obj);
    let spec = rs.spec.clone().unwrap_or_default();
    let status = rs.status.clone().unwrap_or_default();
    let mut w = Page::default();
    w.w(0, &format!("Name:\t{}\n", rs.metadata.name.clone().unwrap_or_default()));
    w.w(0, &format!("Namespace:\t{}\n", rs.metadata.namespace.clone().unwrap_or_default()));
    w.w(0, &format!("Selector:\t{}\n", format_label_selector(Some(&spec.selector))));
    w.labels("Labels", rs.metadata.labels.as_ref());
    w.annotations("Annotations", rs.metadata.annotations.as_ref());
    if let Some(c) = controller(&rs.metadata) {
        w.w(0, &format!("Controlled By:\t{c}\n"));
    }
    w.w(0, &format!("Replicas:\t{} current / {} desired\n", status.replicas, spec.replicas.unwrap_or(1)));
    w.w(
        0,
        &format!(
            "Pods Status:\t{} Running / {} Waiting / {} Succeeded / {} Failed\n",
            pods.0, pods.1, pods.2, pods.3
        ),
    );
    pod::template(&mut w, spec.template.as_ref(), clock);
    let conditions = status.conditions.clone().unwrap_or_default();
    if !conditions.is_empty() {
        w.w(0, "Conditions:\n  Type\tStatus\tReason\n");
        w.w(1, "----\t------\t------\n");
        for c in &conditions {
            w.w(1, &format!("{} \t{}\t{}\n", c.type_, c.status, c.reason.clone().unwrap_or_default()));
        }
    }
    w.events(events, clock);
    w.finish()
}

/// kubectl's StatefulSet page.
pub fn stateful_set(obj: &Value, pods: PodCounts, events: Option<&[Value]>, clock: &Clock) -> String {
    let s: StatefulSet = typed(obj);
    let spec = s.spec.clone().unwrap_or_default();
    let status = s.status.clone().unwrap_or_default();
    let mut w = Page::default();
    w.w(0, &format!("Name:\t{}\n", s.metadata.name.clone().unwrap_or_default()));
    w.w(0, &format!("Namespace:\t{}\n", s.metadata.namespace.clone().unwrap_or_default()));
    w.w(0, &format!("CreationTimestamp:\t{}\n", clock.rfc1123z(s.metadata.creation_timestamp.as_ref())));
    w.w(0, &format!("Selector:\t{}\n", selector_string(Some(&spec.selector))));
    w.labels("Labels", s.metadata.labels.as_ref());
    w.annotations("Annotations", s.metadata.annotations.as_ref());
    w.w(0, &format!("Replicas:\t{} desired | {} total\n", spec.replicas.unwrap_or(1), status.replicas));
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    w.w(
        0,
        &format!("Update Strategy:\t{}\n", strategy.type_.clone().unwrap_or_else(|| "RollingUpdate".into())),
    );
    if let Some(ru) = &strategy.rolling_update
        && let Some(p) = ru.partition
    {
        w.w(1, &format!("Partition:\t{p}\n"));
        if let Some(mu) = &ru.max_unavailable {
            w.w(1, &format!("MaxUnavailable:\t{}\n", int_or_string(Some(mu))));
        }
    }
    w.w(
        0,
        &format!(
            "Pods Status:\t{} Running / {} Waiting / {} Succeeded / {} Failed\n",
            pods.0, pods.1, pods.2, pods.3
        ),
    );
    pod::template(&mut w, Some(&spec.template), clock);
    let claims = spec.volume_claim_templates.clone().unwrap_or_default();
    if claims.is_empty() {
        w.w(0, "Volume Claims:\t<none>\n");
    } else {
        w.w(0, "Volume Claims:\n");
        for c in claims {
            let cs = c.spec.clone().unwrap_or_default();
            w.w(1, &format!("Name:\t{}\n", c.metadata.name.clone().unwrap_or_default()));
            w.w(1, &format!("StorageClass:\t{}\n", cs.storage_class_name.clone().unwrap_or_default()));
            w.labels_with_indent("  ", "Labels", "\t", c.metadata.labels.as_ref());
            w.labels_with_indent("  ", "Annotations", "\t", c.metadata.annotations.as_ref());
            let capacity = cs
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .map_or_else(|| "<default>".to_string(), |q| q.0.clone());
            w.w(1, &format!("Capacity:\t{capacity}\n"));
            w.w(1, &format!("Access Modes:\t[{}]\n", cs.access_modes.clone().unwrap_or_default().join(" ")));
        }
    }
    w.events(events, clock);
    w.finish()
}

/// kubectl's DaemonSet page (`describeDaemonSet`, as kubectl 1.32 writes it): no Namespace or
/// CreationTimestamp, and the counts written without a tab.
pub fn daemon_set(obj: &Value, pods: PodCounts, events: Option<&[Value]>, clock: &Clock) -> String {
    let d: DaemonSet = typed(obj);
    let spec = d.spec.clone().unwrap_or_default();
    let status = d.status.clone().unwrap_or_default();
    let node_selector = spec.template.spec.as_ref().and_then(|s| s.node_selector.as_ref());
    let mut w = Page::default();
    w.w(0, &format!("Name:\t{}\n", d.metadata.name.clone().unwrap_or_default()));
    w.w(0, &format!("Selector:\t{}\n", selector_string(Some(&spec.selector))));
    w.w(0, &format!("Node-Selector:\t{}\n", format_labels(node_selector)));
    w.labels("Labels", d.metadata.labels.as_ref());
    w.annotations("Annotations", d.metadata.annotations.as_ref());
    w.w(0, &format!("Desired Number of Nodes Scheduled: {}\n", status.desired_number_scheduled));
    w.w(0, &format!("Current Number of Nodes Scheduled: {}\n", status.current_number_scheduled));
    w.w(
        0,
        &format!(
            "Number of Nodes Scheduled with Up-to-date Pods: {}\n",
            status.updated_number_scheduled.unwrap_or(0)
        ),
    );
    w.w(
        0,
        &format!("Number of Nodes Scheduled with Available Pods: {}\n", status.number_available.unwrap_or(0)),
    );
    w.w(0, &format!("Number of Nodes Misscheduled: {}\n", status.number_misscheduled));
    w.w(
        0,
        &format!(
            "Pods Status:\t{} Running / {} Waiting / {} Succeeded / {} Failed\n",
            pods.0, pods.1, pods.2, pods.3
        ),
    );
    pod::template(&mut w, Some(&spec.template), clock);
    w.events(events, clock);
    w.finish()
}
