//! The server-side Table (`meta.k8s.io/v1` `Table`): what `kubectl get` prints. kubectl 1.32
//! has no printers of its own for the built-in kinds; it asks for a Table and prints its cells,
//! upper-casing the column names and hiding priority-1 columns unless `-o wide`.
//!
//! Columns and cells come from [`netlab_printers`], generated wide (as upstream's
//! `TableConvertor` does). Each row carries the object's metadata as a
//! `PartialObjectMetadata` (kubectl reads the NAMESPACE column and `--show-labels` from it), or
//! the whole object with `includeObject=Object`.

use std::sync::Arc;

use jiff::Timestamp;
use netlab_printers::Generate;
use netlab_proto::apiserver::v1::Resource;
use serde_json::{Value, json};

use super::query::IncludeObject;
use crate::object::Stored;

/// The Content-Type of a Table answer.
pub fn content_type(version: &str) -> String {
    format!("application/json;as=Table;v={version};g=meta.k8s.io")
}

/// The Table of `items` of `r`, at `resource_version`, as `meta.k8s.io/<version>`.
pub fn table(
    r: Resource,
    items: &[Arc<Stored>],
    resource_version: u64,
    include: IncludeObject,
    version: &str,
    now: Timestamp,
) -> Value {
    let api_version = format!("meta.k8s.io/{version}");
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let cells = netlab_printers::row(r, &obj.value, Generate { wide: true }, now);
            let mut row = json!({"cells": cells});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": api_version,
                        "metadata": obj.value.get("metadata").cloned().unwrap_or_else(|| json!({})),
                    });
                }
                IncludeObject::Object => row["object"] = obj.value.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": netlab_printers::columns(r),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_table() {
        let svc = Stored::new(
            Resource::Services,
            json!({"kind": "Service", "apiVersion": "v1",
                   "metadata": {"name": "web", "namespace": "demo", "resourceVersion": "7",
                                "creationTimestamp": "2024-05-01T10:00:00Z", "labels": {"app": "web"}},
                   "spec": {"type": "NodePort", "clusterIP": "10.96.0.20", "selector": {"app": "web"},
                            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}}),
        );
        let now: Timestamp = "2024-05-01T10:05:12Z".parse().unwrap();
        let t = table(Resource::Services, &[Arc::new(svc)], 9, IncludeObject::Metadata, "v1", now);
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"]["resourceVersion"], "9");
        let names: Vec<&str> =
            t["columnDefinitions"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]);
        assert_eq!(t["columnDefinitions"][0]["format"], "name");
        assert_eq!(t["columnDefinitions"][6]["priority"], 1);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["web", "NodePort", "10.96.0.20", "<none>", "80:30080/TCP", "5m12s", "app=web"])
        );
        let object = &t["rows"][0]["object"];
        assert_eq!(object["kind"], "PartialObjectMetadata");
        assert_eq!(object["metadata"]["namespace"], "demo");
        assert_eq!(object["metadata"]["labels"]["app"], "web");
        assert!(object.get("spec").is_none());
    }
}
