//! `netlab scale`: read the object, set `spec.replicas`, write it back with its resourceVersion
//! as a precondition, retrying when another writer got in between.

use std::io::Write;

use netlab_proto::apiserver::v1::Resource;
use serde_json::json;

use crate::{
    client::Cluster,
    config::{Namespace, ScaleArgs},
    report::{ApiError, Problem},
    resource,
};

/// How often a scale is retried after a Conflict before giving up.
const CONFLICT_RETRIES: usize = 5;

/// Runs `scale`; returns the problems to report.
pub(crate) async fn scale(
    api: &mut impl Cluster,
    args: &ScaleArgs,
    ns: &Namespace,
    out: &mut dyn Write,
) -> Vec<Problem> {
    let targets = match resource::parse_targets(&args.args) {
        Ok(t) => t,
        Err(p) => return vec![p],
    };
    let names: usize = targets.iter().map(|t| t.names.len()).sum();
    if targets.is_empty() || names == 0 {
        return vec![Problem::Raw(
            "error: You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'".to_string(),
        )];
    }
    if args.replicas < 0 {
        return vec![Problem::client(
            "The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0",
        )];
    }
    let mut problems = Vec::new();
    for t in targets {
        for name in &t.names {
            match scale_one(api, t.resource, &ns.name, name, args.replicas).await {
                Ok(()) => {
                    let _ = writeln!(out, "{} scaled", resource::slash_name(t.resource, name));
                }
                Err(p) => problems.push(p),
            }
        }
    }
    problems
}

async fn scale_one(
    api: &mut impl Cluster,
    r: Resource,
    ns: &str,
    name: &str,
    replicas: i32,
) -> Result<(), Problem> {
    if !matches!(r, Resource::Deployments | Resource::ReplicaSets | Resource::StatefulSets) {
        // What the real apiserver answers for a missing scale subresource.
        return Err(Problem::from(ApiError::new(
            "NotFound",
            "the server could not find the requested resource",
        )));
    }
    let mut attempt = 0;
    loop {
        let mut obj = api.get(r, ns, name).await?;
        obj["spec"]["replicas"] = json!(replicas);
        match api.update(r, ns, &obj).await {
            Ok(_) => return Ok(()),
            Err(p) if p.reason() == Some("Conflict") && attempt < CONFLICT_RETRIES => attempt += 1,
            Err(p) => return Err(p),
        }
    }
}
