//! `netlab delete`: by manifest (`-f`), by `TYPE NAME...`/`TYPE/NAME`, or by `-l`/`--all`,
//! printing `service "orders" deleted` and carrying on past failures as kubectl does.

use std::io::Write;

use netlab_proto::apiserver::v1::Resource;

use crate::{
    apply::target_namespace,
    client::Cluster,
    config::{DeleteArgs, Namespace},
    get::no_resources,
    manifest::{self, Checks},
    report::Problem,
    resource::{self, Target},
};

/// One object to delete, and the manifest it came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Victim {
    resource: Resource,
    namespace: String,
    name: String,
    source: Option<String>,
}

/// Runs `delete`; returns the problems to report.
pub(crate) async fn delete(
    api: &mut impl Cluster,
    args: &DeleteArgs,
    ns: &Namespace,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut victims = Vec::new();
    if !args.filenames.is_empty() {
        if !args.args.is_empty() {
            return vec![Problem::client("resources cannot be specified together with --filename")];
        }
        let manifests = match manifest::load(&args.filenames, args.recursive, Checks::Identity) {
            Ok(m) => m,
            Err(p) => return p,
        };
        for m in manifests {
            match target_namespace(&m, ns) {
                Ok(namespace) => victims.push(Victim {
                    resource: m.resource,
                    namespace,
                    name: m.name.clone(),
                    source: Some(m.source.clone()),
                }),
                Err(p) => problems.push(p),
            }
        }
    } else {
        let targets = match resource::parse_targets(&args.args) {
            Ok(t) => t,
            Err(p) => return vec![p],
        };
        if targets.is_empty() {
            return vec![Problem::Raw(
                "error: You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'".to_string(),
            )];
        }
        let by_name = targets.iter().any(|t| !t.names.is_empty());
        let selecting = args.all || args.selector.is_some();
        if by_name && selecting {
            return vec![Problem::client("name cannot be provided when a selector is specified")];
        }
        if !by_name && !selecting {
            return vec![Problem::client("resource(s) were provided, but no name was specified")];
        }
        if by_name {
            for Target { resource, names } in &targets {
                let namespace = if resource.namespaced() { ns.name.clone() } else { String::new() };
                for name in names {
                    victims.push(Victim {
                        resource: *resource,
                        namespace: namespace.clone(),
                        name: name.clone(),
                        source: None,
                    });
                }
            }
        } else {
            let labels = args.selector.as_deref().unwrap_or("");
            for t in &targets {
                let r = t.resource;
                let namespace = if r.namespaced() && !args.all_namespaces { ns.name.as_str() } else { "" };
                match api.list(r, namespace, labels, "").await {
                    Ok(items) => {
                        for item in items {
                            let field =
                                |f: &str| item.pointer(f).and_then(|v| v.as_str()).unwrap_or("").to_string();
                            victims.push(Victim {
                                resource: r,
                                namespace: field("/metadata/namespace"),
                                name: field("/metadata/name"),
                                source: None,
                            });
                        }
                    }
                    Err(p) => problems.push(p),
                }
            }
            if victims.is_empty() && problems.is_empty() {
                let _ = writeln!(err, "{}", no_resources(&targets, &ns.name, args.all_namespaces));
                return problems;
            }
        }
    }

    // kubectl: --force means grace 0 and says so; -1 leaves the period to the object.
    let grace = if args.force {
        let _ = writeln!(
            err,
            "Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely."
        );
        Some(0)
    } else {
        (args.grace_period >= 0).then_some(args.grace_period)
    };
    for v in victims {
        match api.delete(v.resource, &v.namespace, &v.name, grace).await {
            Ok(_) => {
                let _ = writeln!(out, "{} \"{}\" deleted", resource::qualified(v.resource), v.name);
            }
            Err(p) if p.is_not_found() && args.ignore_not_found => {}
            Err(Problem::Server(e)) => problems.push(Problem::Server(match &v.source {
                Some(source) => Box::new((*e).with_source("deleting", source)),
                None => e,
            })),
            Err(p) => problems.push(p),
        }
    }
    problems
}
