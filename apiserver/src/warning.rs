//! Warnings: what a successful write answers besides the object, as kube-apiserver's `Warning`
//! response headers (`299 - "<text>"`, RFC 7234), which kubectl prints on stderr as
//! `Warning: <text>`. Over gRPC they travel as `warning` response metadata entries with the
//! same value.
//!
//! netlab's one warning is for a pod-scoped fault (NetworkChaos, DNSChaos, PodChaos) whose
//! selector matches no pod when it is created. That is not an error: the fault is re-evaluated
//! as pods come and go, so it may be meant for pods that do not exist yet. A real cluster accepts
//! it silently and the chaos controller then records `Failed to select targets: no pod is
//! selected`; the warning says the same at once, in Chaos Mesh's words
//! (`ErrNoPodSelected`), prefixed by the field as Kubernetes' field warnings are.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use netlab_chaos::{Fault, select, spec::PodSelector};
use netlab_proto::apiserver::v1::Resource;

use crate::{
    object::Stored,
    registry::Registry,
    selector::{FieldSelector, LabelSelector},
};

/// The gRPC metadata key warnings travel under (the HTTP header's name, lower-cased).
pub const METADATA_KEY: &str = "warning";

/// Chaos Mesh's `ErrNoPodSelected`.
const NO_POD_SELECTED: &str = "no pod is selected";

/// The header value for `text`: code 299 ("miscellaneous persistent warning"), agent `-`, and
/// the text quoted with `"` and `\` escaped (`net.NewWarningHeader`).
pub fn header(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            quoted.push('\\');
        }
        // Header values cannot carry control characters (none of netlab's texts has one).
        if !c.is_control() {
            quoted.push(c);
        }
    }
    format!("299 - \"{quoted}\"")
}

/// The warnings for an object just created.
pub fn for_create(registry: &Registry, obj: &Stored) -> Vec<String> {
    if !obj.resource.is_chaos() {
        return Vec::new();
    }
    let Ok(fault) = Fault::from_json(obj.resource, &obj.json) else {
        return Vec::new();
    };
    let mut selectors: Vec<(&str, &PodSelector)> = Vec::new();
    if let Some(main) = fault.pod_selector() {
        selectors.push(("spec.selector", main));
    }
    if let Fault::NetworkChaos(nc) = &fault
        && let Some(target) = &nc.spec.target
    {
        selectors.push(("spec.target.selector", target));
    }
    if selectors.is_empty() {
        return Vec::new();
    }
    let pods = objects::<Pod>(registry, Resource::Pods);
    let node_labels: BTreeMap<String, BTreeMap<String, String>> = registry
        .list(Resource::Nodes, "", &LabelSelector::default(), &FieldSelector::default())
        .0
        .iter()
        .map(|n| (n.name.clone(), n.labels.clone()))
        .collect();
    selectors
        .into_iter()
        .filter(|(_, sel)| {
            !pods
                .iter()
                .any(|pod| select::matches(&sel.selector, &obj.namespace, pod, |n| node_labels.get(n)))
        })
        .map(|(path, _)| format!("{path}: {NO_POD_SELECTED}"))
        .collect()
}

/// Every object of `resource` that decodes as `T`.
fn objects<T: serde::de::DeserializeOwned>(registry: &Registry, resource: Resource) -> Vec<T> {
    let (items, _) = registry.list(resource, "", &LabelSelector::default(), &FieldSelector::default());
    items.iter().filter_map(|o| serde_json::from_slice(&o.json).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_as_kubernetes_writes_them() {
        assert_eq!(
            header("spec.selector: no pod is selected"),
            "299 - \"spec.selector: no pod is selected\""
        );
        assert_eq!(header("a \"b\" \\ c\n"), "299 - \"a \\\"b\\\" \\\\ c\"");
    }
}
