//! `netlab fault`: shortcuts that create the fault objects (chaos.netlab.io/v1alpha1) a person at
//! a terminal would otherwise write as Chaos Mesh manifests, plus `list` and `delete` across
//! every fault kind.
//!
//! A shortcut only builds an object; the apiserver validates it and the enforcers act on it, the
//! same as for `netlab apply -f`. So each shortcut prints the object it created, as YAML, and a
//! user can save it, edit it and apply it later.
//!
//! Grammar: `stop`, `pause` and `kill` always name a component (`netlab fault stop dns` stops the
//! cluster DNS server, `netlab fault pause kube-proxy node-1` hangs one kube-proxy), because
//! those are the verbs of processes. A fault of any kind is taken back with `netlab fault delete
//! NAME`, never with a verb that could also mean a component.
//!
//! # Layout
//! - [`args`]: the subcommands and their flags.
//! - `flags`: reading flag values (percentages, durations, rates, labels) with clear errors.
//! - `build`: flags → the object.
//! - `name`: generated names (`net-client-orders-x7k2p`).
//! - `list`: the `fault list` table.

use std::io::Write;

use jiff::Timestamp;
use netlab_proto::apiserver::v1::Resource;
use serde_json::Value;

use crate::{client::Cluster, report::Problem, resource, yaml};

pub mod args;
mod build;
mod flags;
mod list;
mod name;

use args::{DeleteArgs, FaultCommand, ListArgs};

/// Where `netlab fault` acts: `-n`'s namespace, and whether the user gave it. `list` and
/// `delete` look in every namespace unless `-n` was given, since a fault anywhere breaks the lab.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The namespace new faults go in.
    pub namespace: &'a str,
    /// Whether `-n` (or NETLAB_NAMESPACE) chose it.
    pub explicit: bool,
}

// === impl Scope ===

impl Scope<'_> {
    /// The namespace to list in: all of them unless `-n` was given.
    fn list_namespace(&self) -> &str {
        if self.explicit { self.namespace } else { "" }
    }

    /// kubectl's message for an empty result.
    fn nothing(&self) -> String {
        if self.explicit {
            format!("No resources found in {} namespace.", self.namespace)
        } else {
            "No resources found".to_string()
        }
    }
}

/// Runs `netlab fault ...`; returns the problems to report.
pub(crate) async fn fault(
    api: &mut impl Cluster,
    cmd: &FaultCommand,
    scope: Scope<'_>,
    out: &mut dyn Write,
    err: &mut dyn Write,
    now: Timestamp,
) -> Vec<Problem> {
    match cmd {
        FaultCommand::List(a) => list_faults(api, a, scope, out, err, now).await,
        FaultCommand::Delete(a) => delete_faults(api, a, scope, out, err).await,
        create => match self::create(api, create, scope, out).await {
            Ok(()) => Vec::new(),
            Err(p) => vec![p],
        },
    }
}

/// Builds the object, creates it, and prints it followed by kubectl's `created` line.
async fn create(
    api: &mut impl Cluster,
    cmd: &FaultCommand,
    scope: Scope<'_>,
    out: &mut dyn Write,
) -> Result<(), Problem> {
    // A node partition selects pods in every namespace; Chaos Mesh's selector has no wildcard
    // for that, so the shortcut lists the namespaces there are now.
    let all_namespaces = match cmd {
        FaultCommand::Partition(a) if a.nodes.len() > 1 => api
            .list(Resource::Namespaces, "", "", "")
            .await?
            .iter()
            .filter_map(|n| n.pointer("/metadata/name").and_then(Value::as_str).map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    let suffix = name::suffix();
    let at = build::Place { namespace: scope.namespace, all_namespaces: &all_namespaces, suffix: &suffix };
    let Some(built) = build::fault(cmd, &at) else {
        return Ok(());
    };
    let fault = built.map_err(|e| Problem::client(e.to_string()))?;
    let r = fault.resource();
    let obj = build::to_json(&fault);
    let name = fault.metadata().name.clone().unwrap_or_default();
    let dry_run = create_args(cmd).is_some_and(args::CreateArgs::dry_run);
    if !dry_run {
        api.create(r, scope.namespace, &obj).await?;
        // The apiserver's warnings (a selector that matches no pod yet), as kubectl prints them.
        for text in api.take_warnings() {
            eprintln!("Warning: {text}");
        }
    }
    let _ = out.write_all(yaml::to_string(&obj).as_bytes());
    let suffix = if dry_run { " (dry run)" } else { "" };
    let _ = writeln!(out, "{} created{suffix}", resource::slash_name(r, &name));
    Ok(())
}

fn create_args(cmd: &FaultCommand) -> Option<&args::CreateArgs> {
    Some(match cmd {
        FaultCommand::Net(a) => &a.create,
        FaultCommand::Partition(a) => &a.create,
        FaultCommand::Dns(a) => &a.create,
        FaultCommand::Pod(a) => &a.create,
        FaultCommand::Stop(a) | FaultCommand::Pause(a) | FaultCommand::Kill(a) => &a.create,
        FaultCommand::Registry(a) => &a.create,
        FaultCommand::Upstream(a) => &a.create,
        FaultCommand::Exhaust(a) => &a.create,
        FaultCommand::List(_) | FaultCommand::Delete(_) => return None,
    })
}

/// The fault kinds `--kind` names, or all of them.
fn kinds(kind: Option<&str>) -> Result<Vec<Resource>, Problem> {
    let every: Vec<Resource> = resource::ALL.into_iter().filter(|r| r.is_chaos()).collect();
    let Some(kind) = kind else {
        return Ok(every);
    };
    match resource::resolve(kind) {
        Ok(r) if r.is_chaos() => Ok(vec![r]),
        _ => Err(Problem::client(format!(
            "--kind {kind}: must be a fault kind: {}",
            every.iter().map(|r| r.plural()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Every fault of `kinds` in scope, sorted by namespace and name.
async fn fetch(
    api: &mut impl Cluster,
    kinds: &[Resource],
    scope: Scope<'_>,
) -> (Vec<(Resource, Value)>, Vec<Problem>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for r in kinds {
        match api.list(*r, scope.list_namespace(), "", "").await {
            Ok(items) => found.extend(items.into_iter().map(|v| (*r, v))),
            Err(p) => problems.push(p),
        }
    }
    let key = |v: &Value, field: &str| v.pointer(field).and_then(Value::as_str).unwrap_or("").to_string();
    found.sort_by_cached_key(|(_, v)| (key(v, "/metadata/namespace"), key(v, "/metadata/name")));
    (found, problems)
}

async fn list_faults(
    api: &mut impl Cluster,
    a: &ListArgs,
    scope: Scope<'_>,
    out: &mut dyn Write,
    err: &mut dyn Write,
    now: Timestamp,
) -> Vec<Problem> {
    let kinds = match kinds(a.kind.as_deref()) {
        Ok(k) => k,
        Err(p) => return vec![p],
    };
    let (found, problems) = fetch(api, &kinds, scope).await;
    if found.is_empty() {
        if problems.is_empty() {
            let _ = writeln!(err, "{}", scope.nothing());
        }
        return problems;
    }
    let _ = out.write_all(list::table(&found, !scope.explicit, now).as_bytes());
    problems
}

async fn delete_faults(
    api: &mut impl Cluster,
    a: &DeleteArgs,
    scope: Scope<'_>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Vec<Problem> {
    let kinds = match kinds(a.kind.as_deref()) {
        Ok(k) => k,
        Err(p) => return vec![p],
    };
    let (found, mut problems) = fetch(api, &kinds, scope).await;
    let name_of = |v: &Value| v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
    let ns_of =
        |v: &Value| v.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_string();
    let mut victims: Vec<(Resource, String, String)> = Vec::new();
    if a.all {
        victims.extend(found.iter().map(|(r, v)| (*r, ns_of(v), name_of(v))));
        if victims.is_empty() && problems.is_empty() {
            let _ = writeln!(err, "{}", scope.nothing());
        }
    } else {
        for name in &a.names {
            let matches: Vec<(Resource, String, String)> = found
                .iter()
                .filter(|(_, v)| name_of(v) == *name)
                .map(|(r, v)| (*r, ns_of(v), name_of(v)))
                .collect();
            match matches.as_slice() {
                [] => problems.push(Problem::client(match scope.explicit {
                    true => format!("fault \"{name}\" not found in namespace \"{}\"", scope.namespace),
                    false => format!("fault \"{name}\" not found"),
                })),
                [one] => victims.push(one.clone()),
                many => problems.push(Problem::client(format!(
                    "fault \"{name}\" is ambiguous: {}; give -n NAMESPACE or --kind KIND",
                    many.iter()
                        .map(|(r, ns, n)| format!("{} in {ns}", resource::slash_name(*r, n)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            }
        }
    }
    for (r, ns, name) in victims {
        match api.delete(r, &ns, &name, None).await {
            Ok(_) => {
                let _ = writeln!(out, "{} \"{name}\" deleted", resource::qualified(r));
            }
            Err(p) => problems.push(p),
        }
    }
    problems
}

#[cfg(test)]
mod tests;
