//! Field validation for the built-in resources and the fault kinds, worded exactly as kube-apiserver words it.
//!
//! Students compare what netlab prints with what a real cluster prints, and search the web for the
//! messages they see, so every check here follows upstream (Kubernetes v1.33) in wording, field
//! path and order: `k8s.io/apimachinery` `pkg/util/validation` (name formats), `.../field` (error
//! rendering), `pkg/api/validation` (object metadata), `pkg/apis/meta/v1/validation` (labels and
//! selectors) and `kubernetes/pkg/apis/{core,apps,discovery,networking}/validation`. Upstream
//! quirks are kept on purpose (a pod template's labels are checked at `spec.template.labels`, a
//! Node's taints at `metadata.taints`, a Service's source ranges at `spec.LoadBalancerSourceRanges`),
//! because that is what a real cluster answers.
//!
//! Checks work on the object's JSON rather than on k8s-openapi structs: Go decodes a missing list
//! as nil and a present one as empty, and several messages (`spec.selector: Required value` versus
//! `empty selector is invalid for deployment`) depend on that difference, which k8s-openapi's
//! lenient decoding erases. Objects are expected to have gone through
//! [`crate::defaults::set_defaults`] first, as upstream validates only defaulted objects.
//!
//! Bad values are rendered as Kubernetes v1.34+ renders them (JSON for lists and maps); v1.33
//! printed Go syntax there (`[]string{"10.96.0.10"}`), everything else is identical.
//!
//! # Layout
//! - [`field`]: `field.Error` ([`FieldError`]) and the 422 messages ([`invalid_message`],
//!   [`status_message`]). [`format`](mod@format): name, port, IP and CIDR formats. [`json`]: reading fields
//!   as Go decoded them. [`meta`]: object metadata and label selectors.
//! - [`core`], [`apps`], [`discovery`], [`networking`]: one module per upstream API group.
//! - [`chaos`]: the chaos.netlab.io fault kinds, as Chaos Mesh's CRD schemas and webhooks
//!   check them.
//! - [`options`]: the flags' [`ValidationOptions`], passed with every call.
//! - [`validate`], [`validate_update`]: the entry points, dispatching per resource.

use netlab_proto::apiserver::v1::Resource;
use serde_json::Value;

use self::{
    core::{node, pod, service},
    json::s,
    meta::{NameKind, validate_object_meta, validate_object_meta_update},
};

pub mod apps;
pub mod chaos;
pub mod core;
pub mod discovery;
pub mod field;
pub mod format;
pub mod json;
pub mod meta;
pub mod networking;
pub mod options;

pub use field::{ErrorType, FieldError, group_kind_message, invalid_message, status_message};
pub use options::ValidationOptions;

#[cfg(test)]
mod tests;

/// Validates an object being created, as the resource's create strategy does. Call it after
/// [`crate::defaults::set_defaults`]. An empty result means the object is valid.
pub fn validate(resource: Resource, obj: &Value, opts: &ValidationOptions) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !decodes(resource, obj) {
        // Only metadata can be checked on an object whose body does not have the resource's shape.
        if let Some(kind) = name_kind(resource) {
            validate_object_meta(obj, resource.namespaced(), kind, &mut errs);
        }
        return errs;
    }
    match resource {
        Resource::Unspecified => {}
        Resource::Namespaces => core::validate_namespace(obj, &mut errs),
        Resource::Nodes => node::validate_node(obj, &mut errs),
        Resource::Pods => pod::validate_pod(obj, true, &mut errs),
        Resource::Services => service::validate_service(obj, opts, &mut errs),
        Resource::EndpointSlices => discovery::validate_endpoint_slice(obj, opts, &mut errs),
        Resource::NetworkPolicies => networking::validate_network_policy(obj, &mut errs),
        Resource::Deployments => apps::validate_deployment(obj, &mut errs),
        Resource::ReplicaSets => apps::validate_replica_set(obj, &mut errs),
        Resource::StatefulSets => apps::validate_stateful_set(obj, &mut errs),
        Resource::DaemonSets => apps::validate_daemon_set(obj, &mut errs),
        Resource::ServiceAccounts => validate_object_meta(obj, true, NameKind::Subdomain, &mut errs),
        Resource::ConfigMaps => core::validate_config_map(obj, &mut errs),
        Resource::Events => core::validate_event(obj, &mut errs),
        r if r.is_chaos() => chaos::validate(r, obj, &mut errs),
        _ => {}
    }
    errs
}

/// Validates an update from `old` to `new`, as the resource's update strategy does: `new` must be
/// valid, and fields that are immutable (or may only change in certain ways) must not change.
/// Call it after [`crate::defaults::set_defaults`] on `new`.
///
/// One deliberate difference: a Pod's `spec.nodeName` may go from empty to set. netlab has no
/// `pods/binding` subresource, so the scheduler binds with an update.
pub fn validate_update(
    resource: Resource,
    old: &Value,
    new: &Value,
    opts: &ValidationOptions,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !decodes(resource, new) || !decodes(resource, old) {
        return validate(resource, new, opts);
    }
    match resource {
        Resource::Unspecified => {}
        Resource::Namespaces => {
            core::validate_namespace(new, &mut errs);
            validate_object_meta_update(old, new, &mut errs);
        }
        Resource::Nodes => {
            node::validate_node(new, &mut errs);
            node::validate_node_update(old, new, &mut errs);
        }
        Resource::Pods => pod::validate_pod_update(old, new, &mut errs),
        Resource::Services => service::validate_service_update(old, new, opts, &mut errs),
        Resource::EndpointSlices => {
            discovery::validate_endpoint_slice(new, opts, &mut errs);
            if s(new, "addressType") != s(old, "addressType") {
                errs.push(FieldError::invalid("addressType", s(new, "addressType"), format::FIELD_IMMUTABLE));
            }
        }
        Resource::NetworkPolicies => {
            validate_object_meta_update(old, new, &mut errs);
            networking::validate_network_policy(new, &mut errs);
        }
        Resource::Deployments => {
            validate_object_meta_update(old, new, &mut errs);
            apps::validate_deployment(new, &mut errs);
            apps::validate_selector_immutable(old, new, &mut errs);
        }
        Resource::ReplicaSets => {
            validate_object_meta_update(old, new, &mut errs);
            apps::validate_replica_set(new, &mut errs);
            apps::validate_selector_immutable(old, new, &mut errs);
        }
        Resource::StatefulSets => apps::validate_stateful_set_update(old, new, &mut errs),
        Resource::DaemonSets => apps::validate_daemon_set_update(old, new, &mut errs),
        Resource::ServiceAccounts => {
            validate_object_meta_update(old, new, &mut errs);
            validate_object_meta(new, true, NameKind::Subdomain, &mut errs);
        }
        Resource::ConfigMaps => core::validate_config_map_update(old, new, &mut errs),
        Resource::Events => core::validate_event(new, &mut errs),
        r if r.is_chaos() => chaos::validate_update(r, old, new, &mut errs),
        _ => {}
    }
    errs
}

/// Whether the object decodes into its k8s-openapi type, i.e. has the resource's shape.
fn decodes(resource: Resource, obj: &Value) -> bool {
    use k8s_openapi::api::{
        apps::v1 as apps, core::v1 as core, discovery::v1 as discovery, networking::v1 as net,
    };
    fn ok<T: serde::de::DeserializeOwned>(obj: &Value) -> bool {
        serde_json::from_value::<T>(obj.clone()).is_ok()
    }
    match resource {
        Resource::Unspecified => true,
        Resource::Namespaces => ok::<core::Namespace>(obj),
        Resource::Nodes => ok::<core::Node>(obj),
        Resource::Pods => ok::<core::Pod>(obj),
        Resource::Services => ok::<core::Service>(obj),
        Resource::EndpointSlices => ok::<discovery::EndpointSlice>(obj),
        Resource::NetworkPolicies => ok::<net::NetworkPolicy>(obj),
        Resource::Deployments => ok::<apps::Deployment>(obj),
        Resource::ReplicaSets => ok::<apps::ReplicaSet>(obj),
        Resource::StatefulSets => ok::<apps::StatefulSet>(obj),
        Resource::DaemonSets => ok::<apps::DaemonSet>(obj),
        Resource::ServiceAccounts => ok::<core::ServiceAccount>(obj),
        Resource::ConfigMaps => ok::<core::ConfigMap>(obj),
        Resource::Events => ok::<core::Event>(obj),
        _ => true,
    }
}

/// The name format each resource's names must have (`ValidateXName` upstream).
fn name_kind(resource: Resource) -> Option<NameKind> {
    match resource {
        Resource::Namespaces | Resource::StatefulSets => Some(NameKind::Label),
        Resource::Services => Some(NameKind::Dns1035),
        Resource::Events | Resource::Unspecified => None,
        _ => Some(NameKind::Subdomain),
    }
}
