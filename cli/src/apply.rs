//! `netlab apply`: create-or-update each manifest object, kubectl style.
//!
//! Everything is parsed and type-checked before the first request (see [`crate::manifest`]).
//! Then each object is created if absent, or three-way merged with the live object and updated
//! if that changes anything, printing `service/orders created|configured|unchanged`. A failing
//! object does not stop the others; all failures are reported at the end, as kubectl does.

use std::io::Write;

use netlab_proto::apiserver::v1::Resource;
use serde_json::{Value, json};

use crate::{
    client::Cluster,
    config::Namespace,
    json,
    manifest::Manifest,
    merge::{self, LAST_APPLIED},
    report::Problem,
    resource,
};

/// Applies every manifest in order; returns the problems to report.
pub(crate) async fn apply(
    api: &mut impl Cluster,
    manifests: Vec<Manifest>,
    ns: &Namespace,
    out: &mut dyn Write,
    warn: &mut dyn Write,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for m in manifests {
        match apply_one(api, m, ns, warn).await {
            Ok(line) => {
                let _ = writeln!(out, "{line}");
            }
            Err(p) => problems.push(p),
        }
    }
    problems
}

/// kubectl's `Info.String()`, which its apply errors quote.
pub fn info(r: Resource, name: &str, ns: &str) -> String {
    let group = r.group();
    format!(
        "Resource: \"{group}/v1, Resource={}\", GroupVersionKind: \"{group}/v1, Kind={}\"\nName: \"{name}\", Namespace: \"{ns}\"",
        r.plural(),
        r.kind()
    )
}

/// The namespace an object goes to: its own, else the request's; an explicit `-n` that
/// contradicts the manifest is an error, as in kubectl.
pub fn target_namespace(m: &Manifest, ns: &Namespace) -> Result<String, Problem> {
    if !m.resource.namespaced() {
        return Ok(String::new());
    }
    match &m.namespace {
        Some(own) if ns.explicit && *own != ns.name => Err(Problem::client(format!(
            "the namespace from the provided object \"{own}\" does not match the namespace \"{}\". You must pass '--namespace={own}' to perform this operation.",
            ns.name
        ))),
        Some(own) => Ok(own.clone()),
        None => Ok(ns.name.clone()),
    }
}

/// The manifest with `metadata.namespace` filled in and the last-applied annotation set to the
/// manifest itself (without that annotation), as kubectl's `GetModifiedConfiguration` does.
pub fn with_last_applied(object: &Value, namespace: &str) -> Value {
    let mut obj = object.clone();
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    if !namespace.is_empty() {
        obj["metadata"]["namespace"] = json!(namespace);
    }
    if !obj["metadata"].get("annotations").is_some_and(Value::is_object) {
        obj["metadata"]["annotations"] = json!({});
    }
    if let Some(a) = obj["metadata"]["annotations"].as_object_mut() {
        a.remove(LAST_APPLIED);
    }
    // Go's encoder appends a newline, which is why kubectl shows the annotation as a `|` block.
    let applied = format!("{}\n", json::compact(&obj));
    obj["metadata"]["annotations"][LAST_APPLIED] = json!(applied);
    obj
}

/// Records this run's trace context on a written object (`netlab.io/traceparent`): whatever a
/// controller, the scheduler, a kubelet or a proxy does about this write joins its trace.
fn stamp(obj: &mut Value) {
    if !obj["metadata"]["annotations"].is_object() {
        obj["metadata"]["annotations"] = json!({});
    }
    obj["metadata"]["annotations"][crate::client::TRACEPARENT_ANNOTATION] =
        json!(crate::client::traceparent());
}

/// The server's warnings, as kubectl prints them: `Warning: <text>` on stderr.
fn print_warnings(api: &mut impl Cluster, warn: &mut dyn Write) {
    for text in api.take_warnings() {
        let _ = writeln!(warn, "Warning: {text}");
    }
}

pub(crate) async fn apply_one(
    api: &mut impl Cluster,
    m: Manifest,
    ns: &Namespace,
    warn: &mut dyn Write,
) -> Result<String, Problem> {
    let r = m.resource;
    let namespace = target_namespace(&m, ns)?;
    let printed = resource::slash_name(r, &m.name);
    if m.name.is_empty() {
        return Err(Problem::client(format!(
            "error when retrieving current configuration of:\n{}\nfrom server for: \"{}\": resource name may not be empty",
            info(r, &m.name, &namespace),
            m.source
        )));
    }
    let modified = with_last_applied(&m.object, &namespace);

    let live = match api.get(r, &namespace, &m.name).await {
        Ok(live) => live,
        Err(p) if p.is_not_found() => {
            let mut modified = modified;
            stamp(&mut modified);
            let created = api.create(r, &namespace, &modified).await;
            print_warnings(api, warn);
            return match created {
                Ok(_) => Ok(format!("{printed} created")),
                Err(Problem::Server(e)) => Err((*e).with_source("creating", &m.source).into()),
                Err(other) => Err(other),
            };
        }
        Err(Problem::Server(mut e)) => {
            e.message = format!(
                "error when retrieving current configuration of:\n{}\nfrom server for: \"{}\": {}",
                info(r, &m.name, &namespace),
                m.source,
                e.message
            );
            return Err(Problem::Server(e));
        }
        Err(other) => return Err(other),
    };

    let original: Option<Value> = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok());
    if original.is_none() {
        let _ = writeln!(
            warn,
            "Warning: resource {}/{} is missing the {LAST_APPLIED} annotation which is required by netlab apply. netlab apply should only be used on resources created declaratively by netlab apply. The missing annotation will be patched automatically.",
            r.group_resource(),
            m.name
        );
    }
    if merge::unchanged(&live, original.as_ref(), &modified) {
        return Ok(format!("{printed} unchanged"));
    }
    let mut merged = merge::three_way(&live, original.as_ref(), &modified);
    stamp(&mut merged);
    let updated = api.update(r, &namespace, &merged).await;
    print_warnings(api, warn);
    match updated {
        Ok(_) => Ok(format!("{printed} configured")),
        Err(Problem::Server(e)) => {
            let patch = merge::merge_patch(&live, &merged).unwrap_or(Value::Null);
            let verb = format!(
                "applying patch:\n{}\nto:\n{}\nfor:",
                json::compact(&patch),
                info(r, &m.name, &namespace)
            );
            // kubectl's wording is `... for: "svc.yaml": error when patching "svc.yaml": ...`.
            let e = (*e).with_source("patching", &m.source);
            Err(if e.reason == "Invalid" {
                e.into()
            } else {
                crate::report::ApiError {
                    message: format!("error when {verb} \"{}\": {}", m.source, e.message),
                    ..e
                }
                .into()
            })
        }
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests;
