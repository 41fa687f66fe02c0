//! `netlab describe`: kubectl's human-readable pages, ported from kubectl's `describe.go`.
//!
//! Each page is built as tab-separated lines at indentation levels (kubectl's `PrefixWriter`)
//! and aligned by [`crate::tabwriter`] with kubectl's describe settings, so the columns land
//! where kubectl puts them. The page builders are pure (objects, related objects and a clock
//! in, text out); `describe` fetches what each page needs: a Service's EndpointSlices, a
//! Node's pods, a Deployment's ReplicaSets, and everyone's Events.
//!
//! # Layout
//! - `core_v1`: Service, Node, Namespace, ConfigMap, ServiceAccount, and the generic page.
//! - `pod`: Pod, and the container and pod-template sections workloads share.
//! - `apps`: Deployment, ReplicaSet, StatefulSet, DaemonSet.
//! - `network`: NetworkPolicy, EndpointSlice.

use std::{collections::BTreeMap, io::Write};

use jiff::{Timestamp, tz::TimeZone};
use k8s_openapi::{
    api::{apps::v1::ReplicaSet, core::v1::Event},
    apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference, Time},
};
use netlab_proto::apiserver::v1::Resource;
use serde_json::Value;

use crate::{
    client::Cluster,
    config::{DescribeArgs, Namespace},
    get::no_resources,
    merge::LAST_APPLIED,
    print::{human_duration, since, since_micro, typed},
    report::Problem,
    resource::{self, Target},
    selector::selector_string,
    tabwriter,
};

mod apps;
mod core_v1;
mod network;
mod pod;

/// Where "now" is and which time zone dates print in (kubectl prints local time).
#[derive(Debug, Clone)]
pub struct Clock {
    /// The current time, for ages.
    pub now: Timestamp,
    /// The zone for `Mon, 02 Jan 2006 15:04:05 -0700` dates.
    pub tz: TimeZone,
}

// === impl Clock ===

impl Clock {
    /// The system clock and time zone.
    pub fn system() -> Self {
        Self { now: Timestamp::now(), tz: TimeZone::system() }
    }

    /// Go's `time.RFC1123Z`, which describe uses for every date.
    pub fn rfc1123z(&self, t: Option<&Time>) -> String {
        match t {
            Some(t) => t.0.to_zoned(self.tz.clone()).strftime("%a, %d %b %Y %H:%M:%S %z").to_string(),
            // Go formats the zero time.
            None => "Mon, 01 Jan 0001 00:00:00 +0000".to_string(),
        }
    }

    /// Go's `time.Time.String()`: `2006-01-02 15:04:05 -0700 MST`.
    pub fn go_string(&self, t: Option<&Time>) -> String {
        match t {
            Some(t) => t.0.to_zoned(self.tz.clone()).strftime("%Y-%m-%d %H:%M:%S %z %Z").to_string(),
            None => "0001-01-01 00:00:00 +0000 UTC".to_string(),
        }
    }
}

/// kubectl's `PrefixWriter` over a buffer that is tab-aligned at the end.
#[derive(Debug, Default)]
pub struct Page {
    buf: String,
}

// === impl Page ===

impl Page {
    /// Writes `text` after two spaces per level.
    pub fn w(&mut self, level: usize, text: &str) {
        for _ in 0..level {
            self.buf.push_str("  ");
        }
        self.buf.push_str(text);
    }

    /// Aligns the page with kubectl's describe tabwriter settings.
    pub fn finish(self) -> String {
        tabwriter::align(&self.buf, tabwriter::DESCRIBE)
    }

    /// `printLabelsMultiline`.
    pub fn labels(&mut self, title: &str, labels: Option<&BTreeMap<String, String>>) {
        self.labels_with_indent("", title, "\t", labels);
    }

    /// `printLabelsMultilineWithIndent`.
    pub fn labels_with_indent(
        &mut self,
        initial: &str,
        title: &str,
        inner: &str,
        labels: Option<&BTreeMap<String, String>>,
    ) {
        self.w(0, &format!("{initial}{title}:{inner}"));
        let labels: Vec<_> = labels.into_iter().flatten().collect();
        if labels.is_empty() {
            self.w(0, "<none>\n");
            return;
        }
        for (i, (k, v)) in labels.into_iter().enumerate() {
            if i != 0 {
                self.w(0, &format!("{initial}{inner}"));
            }
            self.w(0, &format!("{k}={v}\n"));
        }
    }

    /// `printAnnotationsMultiline`: skips the last-applied annotation, wraps long values.
    pub fn annotations(&mut self, title: &str, annotations: Option<&BTreeMap<String, String>>) {
        const MAX: usize = 140;
        self.w(0, &format!("{title}:\t"));
        let keys: Vec<(&String, &String)> =
            annotations.into_iter().flatten().filter(|(k, _)| k.as_str() != LAST_APPLIED).collect();
        if keys.is_empty() {
            self.w(0, "<none>\n");
            return;
        }
        for (i, (key, value)) in keys.into_iter().enumerate() {
            if i != 0 {
                self.w(0, "\t");
            }
            let value = value.strip_suffix('\n').unwrap_or(value);
            if value.len() + key.len() + 2 > MAX || value.contains('\n') {
                self.w(0, &format!("{key}:\n"));
                for line in value.split('\n') {
                    let line = if line.len() > MAX - 2 {
                        let mut cut = MAX - 2;
                        while !line.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        format!("{}...", &line[..cut])
                    } else {
                        line.to_string()
                    };
                    self.w(0, &format!("\t  {line}\n"));
                }
            } else {
                self.w(0, &format!("{key}: {value}\n"));
            }
        }
    }

    /// kubectl's `DescribeEvents`: `Events:  <none>` or the events table, oldest first.
    pub fn events(&mut self, events: Option<&[Value]>, clock: &Clock) {
        let Some(events) = events else {
            return;
        };
        if events.is_empty() {
            self.w(0, "Events:\t<none>\n");
            return;
        }
        let mut events: Vec<Event> = events.iter().map(typed).collect();
        events.sort_by_key(|e| {
            e.last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or(e.event_time.as_ref().map(|t| t.0))
                .or(e.first_timestamp.as_ref().map(|t| t.0))
        });
        self.w(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n");
        self.w(1, "----\t------\t----\t----\t-------\n");
        for e in events {
            let first = match &e.event_time {
                Some(t) => since_micro(Some(t), clock.now),
                None => since(e.first_timestamp.as_ref(), clock.now),
            };
            let count = e.count.unwrap_or(0);
            let interval = if let Some(series) = &e.series {
                format!(
                    "{} (x{} over {first})",
                    since_micro(series.last_observed_time.as_ref(), clock.now),
                    series.count.unwrap_or(0)
                )
            } else if count > 1 {
                format!("{} (x{count} over {first})", since(e.last_timestamp.as_ref(), clock.now))
            } else {
                first
            };
            let source = e
                .source
                .as_ref()
                .and_then(|s| s.component.clone())
                .filter(|c| !c.is_empty())
                .or(e.reporting_component.clone())
                .unwrap_or_default();
            self.w(
                1,
                &format!(
                    "{}\t{}\t{interval}\t{source}\t{}\n",
                    e.type_.clone().unwrap_or_default(),
                    e.reason.clone().unwrap_or_default(),
                    e.message.clone().unwrap_or_default().trim()
                ),
            );
        }
    }
}

/// `Kind/name` of the controlling owner, as `Controlled By:` shows it.
pub fn controller(meta: &ObjectMeta) -> Option<String> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o: &&OwnerReference| o.controller == Some(true))
        .map(|o| format!("{}/{}", o.kind, o.name))
}

fn name_of(v: &Value) -> &str {
    v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

fn namespace_of(v: &Value) -> &str {
    v.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("")
}

fn uid_of(v: &Value) -> &str {
    v.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("")
}

/// Whether `v` is controlled by the object with `uid`.
fn controlled_by(v: &Value, uid: &str) -> bool {
    let meta: ObjectMeta = v.get("metadata").map(typed).unwrap_or_default();
    meta.owner_references.iter().flatten().any(|o| o.controller == Some(true) && o.uid == uid)
}

/// The events about one object: listed by name and namespace, then filtered by kind.
async fn events_for(api: &mut impl Cluster, r: Resource, obj: &Value) -> Option<Vec<Value>> {
    let name = name_of(obj);
    let ns = namespace_of(obj);
    let fields = if r.namespaced() {
        format!("involvedObject.name={name},involvedObject.namespace={ns}")
    } else {
        format!("involvedObject.name={name}")
    };
    let events = api.list(Resource::Events, ns, "", &fields).await.ok()?;
    Some(
        events
            .into_iter()
            .filter(|e| {
                let kind = e.pointer("/involvedObject/kind").and_then(Value::as_str).unwrap_or("");
                kind.is_empty() || kind == r.kind()
            })
            .collect(),
    )
}

/// Pods matching a workload's selector and controlled by it, counted by phase:
/// (running, waiting, succeeded, failed).
async fn pod_counts(
    api: &mut impl Cluster,
    ns: &str,
    selector: Option<&LabelSelector>,
    uid: &str,
) -> (usize, usize, usize, usize) {
    let labels = selector_string(selector);
    let pods = api.list(Resource::Pods, ns, &labels, "").await.unwrap_or_default();
    let mut counts = (0, 0, 0, 0);
    for p in pods.iter().filter(|p| controlled_by(p, uid)) {
        match p.pointer("/status/phase").and_then(Value::as_str) {
            Some("Running") => counts.0 += 1,
            Some("Pending") => counts.1 += 1,
            Some("Succeeded") => counts.2 += 1,
            Some("Failed") => counts.3 += 1,
            _ => {}
        }
    }
    counts
}

/// Resolves the objects to describe: exact names first, then (as kubectl does) every object whose
/// name starts with the given prefix.
async fn find(
    api: &mut impl Cluster,
    t: &Target,
    ns: &str,
    args: &DescribeArgs,
) -> (Vec<Value>, Vec<Problem>) {
    let r = t.resource;
    let namespace = if r.namespaced() && !args.all_namespaces { ns } else { "" };
    let mut found = Vec::new();
    let mut problems = Vec::new();
    if t.names.is_empty() {
        match api.list(r, namespace, args.selector.as_deref().unwrap_or(""), "").await {
            Ok(items) => found.extend(items),
            Err(p) => problems.push(p),
        }
        return (found, problems);
    }
    for name in &t.names {
        match api.get(r, namespace, name).await {
            Ok(obj) => found.push(obj),
            Err(p) if p.is_not_found() => {
                let prefixed: Vec<Value> = api
                    .list(r, namespace, "", "")
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|o| name_of(o).starts_with(name.as_str()))
                    .collect();
                if prefixed.is_empty() {
                    problems.push(p);
                } else {
                    found.extend(prefixed);
                }
            }
            Err(p) => problems.push(p),
        }
    }
    (found, problems)
}

/// Runs `describe`; returns the problems to report.
pub(crate) async fn describe(
    api: &mut impl Cluster,
    args: &DescribeArgs,
    ns: &Namespace,
    out: &mut dyn Write,
    err: &mut dyn Write,
    clock: &Clock,
) -> Vec<Problem> {
    let targets = match resource::parse_targets(&args.args) {
        Ok(t) if t.is_empty() => {
            return vec![Problem::Raw(
                "You must specify the type of resource to describe. Use \"netlab api-resources\" for a complete list of supported resources.".to_string(),
            )];
        }
        Ok(t) => t,
        Err(p) => return vec![p],
    };
    let mut problems = Vec::new();
    let mut first = true;
    let mut any = false;
    for t in &targets {
        let (objects, p) = find(api, t, &ns.name, args).await;
        problems.extend(p);
        for obj in objects {
            any = true;
            let page = page(api, t.resource, &obj, clock).await;
            let _ = if first { write!(out, "{page}") } else { write!(out, "\n\n{page}") };
            first = false;
        }
    }
    if !any && problems.is_empty() {
        let _ = writeln!(err, "{}", no_resources(&targets, &ns.name, args.all_namespaces));
    }
    problems
}

/// Fetches what a page needs and builds it.
async fn page(api: &mut impl Cluster, r: Resource, obj: &Value, clock: &Clock) -> String {
    let ns = namespace_of(obj).to_string();
    match r {
        Resource::Services => {
            let selector = format!("kubernetes.io/service-name={}", name_of(obj));
            let slices = api.list(Resource::EndpointSlices, &ns, &selector, "").await.unwrap_or_default();
            let events = events_for(api, r, obj).await;
            core_v1::service(obj, &slices, events.as_deref(), clock)
        }
        Resource::Pods => {
            let events = events_for(api, r, obj).await;
            pod::pod(obj, events.as_deref(), clock)
        }
        Resource::Nodes => {
            let fields = format!("spec.nodeName={}", name_of(obj));
            let pods: Vec<Value> = api
                .list(Resource::Pods, "", "", &fields)
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|p| {
                    let phase = p.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
                    phase != "Succeeded" && phase != "Failed"
                })
                .collect();
            let events = events_for(api, r, obj).await;
            core_v1::node(obj, &pods, events.as_deref(), clock)
        }
        Resource::Deployments => {
            let d: k8s_openapi::api::apps::v1::Deployment = typed(obj);
            let selector = d.spec.as_ref().map(|s| selector_string(Some(&s.selector))).unwrap_or_default();
            let owned: Vec<ReplicaSet> = api
                .list(Resource::ReplicaSets, &ns, &selector, "")
                .await
                .unwrap_or_default()
                .iter()
                .filter(|rs| controlled_by(rs, uid_of(obj)))
                .map(typed)
                .collect();
            let events = events_for(api, r, obj).await;
            apps::deployment(obj, &owned, events.as_deref(), clock)
        }
        Resource::ReplicaSets => {
            let rs: ReplicaSet = typed(obj);
            let counts = pod_counts(api, &ns, rs.spec.as_ref().map(|s| &s.selector), uid_of(obj)).await;
            let events = events_for(api, r, obj).await;
            apps::replica_set(obj, counts, events.as_deref(), clock)
        }
        Resource::StatefulSets => {
            let s: k8s_openapi::api::apps::v1::StatefulSet = typed(obj);
            let counts = pod_counts(api, &ns, s.spec.as_ref().map(|s| &s.selector), uid_of(obj)).await;
            let events = events_for(api, r, obj).await;
            apps::stateful_set(obj, counts, events.as_deref(), clock)
        }
        Resource::DaemonSets => {
            let d: k8s_openapi::api::apps::v1::DaemonSet = typed(obj);
            let counts = pod_counts(api, &ns, d.spec.as_ref().map(|s| &s.selector), uid_of(obj)).await;
            let events = events_for(api, r, obj).await;
            apps::daemon_set(obj, counts, events.as_deref(), clock)
        }
        Resource::Namespaces => core_v1::namespace(obj, clock),
        Resource::ConfigMaps => {
            let events = events_for(api, r, obj).await;
            core_v1::config_map(obj, events.as_deref(), clock)
        }
        Resource::ServiceAccounts => {
            let events = events_for(api, r, obj).await;
            core_v1::service_account(obj, events.as_deref(), clock)
        }
        Resource::NetworkPolicies => network::network_policy(obj, clock),
        Resource::EndpointSlices => {
            let events = events_for(api, r, obj).await;
            network::endpoint_slice(obj, events.as_deref(), clock)
        }
        // kubectl describes a custom resource with its generic describer: metadata, then spec
        // and status as indented fields, then Events. A Chaos Mesh user knows that page, and
        // it shows everything a fault has: its records (what it matched) and its counters.
        _ => {
            let events = events_for(api, r, obj).await;
            core_v1::generic(obj, events.as_deref(), clock)
        }
    }
}

/// `translateTimestampSince` for an optional time, as pages print ages.
pub fn age(t: Option<&Time>, clock: &Clock) -> String {
    since(t, clock.now)
}

/// `Terminating (lasts 5m)`-style durations.
pub fn lasts(t: &Time, clock: &Clock) -> String {
    human_duration(clock.now.duration_since(t.0))
}

#[cfg(test)]
mod tests;
