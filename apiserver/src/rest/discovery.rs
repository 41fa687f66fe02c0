//! Discovery: what kubectl learns about the served resources before any other request — their
//! plural and Kind, scope, verbs, short names (`po`, `svc`: without them `kubectl get svc` fails
//! with `the server doesn't have a resource type "svc"`), categories (`all` decides what
//! `kubectl get all` lists) and subresources.
//!
//! Both forms are served. kubectl 1.32 asks `/api` and `/apis` for the aggregated
//! `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList` first, and reads the answer as one only if
//! its Content-Type says so; otherwise it falls back to the legacy documents (`APIVersions`,
//! `APIGroupList`, one `APIResourceList` per group version).
//!
//! The facts per resource are upstream's (kube-apiserver 1.32's discovery, and for the fault
//! kinds Chaos Mesh's CRDs); the subresources listed are the ones this server answers.

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use netlab_proto::apiserver::v1::Resource;
use serde_json::{Value, json};

use super::{
    negotiate,
    path::{Doc, group_versions},
    request::json_response,
};

/// The Content-Type of an aggregated discovery answer of `version` (`v2`, or `v2beta1` for
/// kubectl 1.29 and older); kubectl reads the body as one only with it.
pub fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

/// Every verb of a resource that serves them all.
const ALL_VERBS: &[&str] =
    &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
/// Namespaces have no deletecollection.
const NAMESPACE_VERBS: &[&str] = &["create", "delete", "get", "list", "patch", "update", "watch"];
/// A `/status` subresource.
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

/// One subresource.
#[derive(Debug, Clone, Copy)]
pub struct Subresource {
    /// `status`, `binding`.
    pub name: &'static str,
    /// The Kind it takes and answers (`Binding`), or None for the resource's own Kind.
    pub kind: Option<(&'static str, &'static str, &'static str)>,
    /// Its verbs.
    pub verbs: &'static [&'static str],
}

/// What discovery says about one resource.
#[derive(Debug, Clone, Copy)]
pub struct Info {
    /// `kubectl get po`.
    pub short_names: &'static [&'static str],
    /// `all` for the kinds `kubectl get all` lists.
    pub categories: &'static [&'static str],
    /// The verbs.
    pub verbs: &'static [&'static str],
    /// The subresources served.
    pub subresources: &'static [Subresource],
}

const STATUS: Subresource = Subresource { name: "status", kind: None, verbs: STATUS_VERBS };
/// `/scale`, an `autoscaling/v1` Scale.
const SCALE: Subresource =
    Subresource { name: "scale", kind: Some(("autoscaling", "v1", "Scale")), verbs: STATUS_VERBS };

/// The discovery facts of `r`.
pub fn info(r: Resource) -> Info {
    let i =
        |short_names, categories, verbs, subresources| Info { short_names, categories, verbs, subresources };
    match r {
        Resource::Namespaces => i(&["ns"], &[], NAMESPACE_VERBS, &[STATUS]),
        Resource::Nodes => i(&["no"], &[], ALL_VERBS, &[STATUS]),
        Resource::Pods => i(
            &["po"],
            &["all"],
            ALL_VERBS,
            &[Subresource { name: "binding", kind: Some(("", "v1", "Binding")), verbs: &["create"] }, STATUS],
        ),
        Resource::Services => i(&["svc"], &["all"], ALL_VERBS, &[STATUS]),
        Resource::EndpointSlices => i(&[], &[], ALL_VERBS, &[]),
        Resource::NetworkPolicies => i(&["netpol"], &[], ALL_VERBS, &[]),
        Resource::Deployments => i(&["deploy"], &["all"], ALL_VERBS, &[SCALE, STATUS]),
        Resource::ReplicaSets => i(&["rs"], &["all"], ALL_VERBS, &[SCALE, STATUS]),
        Resource::StatefulSets => i(&["sts"], &["all"], ALL_VERBS, &[SCALE, STATUS]),
        Resource::DaemonSets => i(&["ds"], &["all"], ALL_VERBS, &[STATUS]),
        Resource::ServiceAccounts => i(
            &["sa"],
            &[],
            ALL_VERBS,
            &[Subresource {
                name: "token",
                kind: Some(("authentication.k8s.io", "v1", "TokenRequest")),
                verbs: &["create"],
            }],
        ),
        Resource::ConfigMaps => i(&["cm"], &[], ALL_VERBS, &[]),
        Resource::Events => i(&["ev"], &[], ALL_VERBS, &[]),
        // Chaos Mesh's CRDs declare no short names or categories; every CRD serves all verbs
        // and, with a status subresource, `/status`.
        Resource::NetworkChaos
        | Resource::DnsChaos
        | Resource::PodChaos
        | Resource::ComponentChaos
        | Resource::RegistryChaos
        | Resource::UpstreamDnsChaos
        | Resource::ExhaustionChaos => i(&[], &[], ALL_VERBS, &[STATUS]),
        Resource::Unspecified => i(&[], &[], &[], &[]),
    }
}

fn resources_of(gv: &str) -> impl Iterator<Item = Resource> + '_ {
    netlab_proto::ALL_RESOURCES.into_iter().filter(move |r| r.api_version() == gv)
}

fn split_gv(gv: &str) -> (&str, &str) {
    gv.split_once('/').unwrap_or(("", gv))
}

fn singular(r: Resource) -> String {
    r.kind().to_lowercase()
}

/// `GET /api`: `APIVersions`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn api_group(group: &str) -> Value {
    let versions: Vec<Value> = group_versions()
        .into_iter()
        .filter(|gv| split_gv(gv).0 == group)
        .map(|gv| json!({"groupVersion": gv, "version": split_gv(gv).1}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}

fn named_groups() -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = Vec::new();
    for gv in group_versions() {
        let (g, _) = split_gv(gv);
        if !g.is_empty() && !groups.contains(&g) {
            groups.push(g);
        }
    }
    groups
}

/// `GET /apis`: `APIGroupList`.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = named_groups().into_iter().map(api_group).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /api/v1`, `GET /apis/<group>/<version>`: `APIResourceList`.
pub fn api_resource_list(gv: &str) -> Value {
    let mut resources = Vec::new();
    for r in resources_of(gv) {
        let info = info(r);
        let mut entry = json!({
            "name": r.plural(),
            "singularName": singular(r),
            "namespaced": r.namespaced(),
            "kind": r.kind(),
            "verbs": info.verbs,
        });
        if !info.short_names.is_empty() {
            entry["shortNames"] = json!(info.short_names);
        }
        if !info.categories.is_empty() {
            entry["categories"] = json!(info.categories);
        }
        resources.push(entry);
        for sub in info.subresources {
            let mut entry = json!({
                "name": format!("{}/{}", r.plural(), sub.name),
                "singularName": "",
                "namespaced": r.namespaced(),
                "kind": sub.kind.map_or(r.kind(), |(_, _, k)| k),
                "verbs": sub.verbs,
            });
            if let Some((g, v, _)) = sub.kind {
                entry["group"] = json!(g);
                entry["version"] = json!(v);
            }
            resources.push(entry);
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

fn discovery_resource(r: Resource) -> Value {
    let info = info(r);
    let (group, version) = split_gv(r.api_version());
    let subresources: Vec<Value> = info
        .subresources
        .iter()
        .map(|sub| {
            let (g, v, k) = sub.kind.unwrap_or((group, version, r.kind()));
            json!({"subresource": sub.name, "responseKind": {"group": g, "version": v, "kind": k}, "verbs": sub.verbs})
        })
        .collect();
    let mut entry = json!({
        "resource": r.plural(),
        "responseKind": {"group": group, "version": version, "kind": r.kind()},
        "scope": if r.namespaced() { "Namespaced" } else { "Cluster" },
        "singularResource": singular(r),
        "verbs": info.verbs,
    });
    if !info.short_names.is_empty() {
        entry["shortNames"] = json!(info.short_names);
    }
    if !info.categories.is_empty() {
        entry["categories"] = json!(info.categories);
    }
    if !subresources.is_empty() {
        entry["subresources"] = json!(subresources);
    }
    entry
}

/// The aggregated `APIGroupDiscoveryList` for `/api` (`core`) or `/apis`, as
/// `apidiscovery.k8s.io/<version>` (v2 and v2beta1 have the same shape).
pub fn aggregated(core: bool, version: &str) -> Value {
    let groups: Vec<&str> = if core { vec![""] } else { named_groups() };
    let items: Vec<Value> = groups
        .into_iter()
        .map(|g| {
            let versions: Vec<Value> = group_versions()
                .into_iter()
                .filter(|gv| split_gv(gv).0 == g)
                .map(|gv| {
                    let resources: Vec<Value> = resources_of(gv).map(discovery_resource).collect();
                    json!({"version": split_gv(gv).1, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let metadata = if g.is_empty() {
                json!({"creationTimestamp": null})
            } else {
                json!({"name": g, "creationTimestamp": null})
            };
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{version}"), "metadata": {}, "items": items})
}

/// Serves a discovery document, aggregated for `/api` and `/apis` when the client asks for it.
pub fn serve(doc: Doc, headers: &HeaderMap) -> Response {
    let aggregated_version = match doc {
        Doc::CoreVersions | Doc::Groups => {
            negotiate::wants(headers, "APIGroupDiscoveryList", "apidiscovery.k8s.io", &["v2", "v2beta1"])
        }
        _ => None,
    };
    let mut response = if let Some(version) = aggregated_version {
        let mut r = json_response(StatusCode::OK, &aggregated(doc == Doc::CoreVersions, version));
        if let Ok(ct) = HeaderValue::from_str(&aggregated_content_type(version)) {
            r.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        r
    } else {
        let body = match doc {
            Doc::CoreVersions => {
                let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
                api_versions(host)
            }
            Doc::Groups => api_group_list(),
            Doc::Group(g) => {
                let mut group = api_group(g);
                group["kind"] = json!("APIGroup");
                group["apiVersion"] = json!("v1");
                group
            }
            Doc::Resources(gv) => api_resource_list(gv),
        };
        json_response(StatusCode::OK, &body)
    };
    response.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
    response.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
        list.as_array().unwrap().iter().find(|e| e[key] == name).unwrap_or_else(|| panic!("{name}"))
    }

    #[test]
    fn legacy_documents() {
        let groups = api_group_list();
        let names: Vec<&str> =
            groups["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["discovery.k8s.io", "networking.k8s.io", "apps", "chaos.netlab.io"]);
        assert_eq!(find(&groups["groups"], "name", "apps")["preferredVersion"]["groupVersion"], "apps/v1");

        let core = api_resource_list("v1");
        let pods = find(&core["resources"], "name", "pods");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert_eq!(pods["namespaced"], true);
        assert_eq!(pods["verbs"], json!(ALL_VERBS));
        let binding = find(&core["resources"], "name", "pods/binding");
        assert_eq!(
            (binding["kind"].as_str(), binding["verbs"].clone()),
            (Some("Binding"), json!(["create"]))
        );
        assert_eq!(find(&core["resources"], "name", "nodes")["namespaced"], false);
        assert_eq!(find(&core["resources"], "name", "services")["shortNames"], json!(["svc"]));

        let chaos = api_resource_list("chaos.netlab.io/v1alpha1");
        let net = find(&chaos["resources"], "name", "networkchaos");
        assert_eq!(
            (net["kind"].as_str(), net["singularName"].as_str()),
            (Some("NetworkChaos"), Some("networkchaos"))
        );
        assert!(find(&chaos["resources"], "name", "dnschaos")["kind"] == "DNSChaos");
    }

    #[test]
    fn aggregated_documents() {
        let core = aggregated(true, "v2");
        assert_eq!(core["apiVersion"], "apidiscovery.k8s.io/v2");
        assert_eq!(aggregated(true, "v2beta1")["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
        assert!(core["items"][0]["metadata"].get("name").is_none());
        let v1 = &core["items"][0]["versions"][0];
        assert_eq!(v1["version"], "v1");
        let svc = find(&v1["resources"], "resource", "services");
        assert_eq!(svc["scope"], "Namespaced");
        assert_eq!(svc["responseKind"], json!({"group": "", "version": "v1", "kind": "Service"}));
        assert_eq!(svc["shortNames"], json!(["svc"]));
        let ns = find(&v1["resources"], "resource", "namespaces");
        assert_eq!(ns["scope"], "Cluster");

        let named = aggregated(false, "v2");
        let apps =
            named["items"].as_array().unwrap().iter().find(|i| i["metadata"]["name"] == "apps").unwrap();
        let deploy = find(&apps["versions"][0]["resources"], "resource", "deployments");
        assert_eq!(deploy["shortNames"], json!(["deploy"]));
        assert_eq!(deploy["subresources"][0]["subresource"], "scale");
        assert_eq!(
            deploy["subresources"][0]["responseKind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
        assert_eq!(deploy["subresources"][1]["subresource"], "status");
        assert_eq!(deploy["responseKind"]["group"], "apps");
    }
}
