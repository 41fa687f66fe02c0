//! apply against the in-memory fake apiserver: created/configured/unchanged, the three-way
//! merge, and error reporting.

use serde_json::json;

use super::*;
use crate::{
    client::fake::FakeCluster,
    manifest::{Checks, Input, parse},
    report::render,
};

fn manifests(text: &str) -> Vec<Manifest> {
    parse(&Input { source: "app.yaml".into(), text: text.into() }, Checks::Full).unwrap()
}

fn default_ns() -> Namespace {
    Namespace { name: "default".into(), explicit: false }
}

async fn run(api: &mut FakeCluster, text: &str, ns: &Namespace) -> (String, String, String) {
    let mut out = Vec::new();
    let mut warn = Vec::new();
    let problems = apply(api, manifests(text), ns, &mut out, &mut warn).await;
    (String::from_utf8(out).unwrap(), String::from_utf8(warn).unwrap(), render(&problems))
}

const SVC: &str = "apiVersion: v1
kind: Service
metadata:
  name: orders
spec:
  selector:
    app: orders
  ports:
  - port: 80
    targetPort: 8080
";

const DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders
  labels: {app: orders, team: a}
spec:
  selector:
    matchLabels: {app: orders}
  template:
    metadata:
      labels: {app: orders}
    spec:
      containers:
      - name: web
        image: nginx:1
";

#[tokio::test]
async fn created_then_unchanged_then_configured() {
    let mut api = FakeCluster::default();
    let (out, warn, errs) = run(&mut api, SVC, &default_ns()).await;
    assert_eq!((out.as_str(), warn.as_str(), errs.as_str()), ("service/orders created\n", "", ""));
    let live = api.object(Resource::Services, "default", "orders").unwrap().clone();
    assert_eq!(live["metadata"]["namespace"], "default");
    assert_eq!(
        live["metadata"]["annotations"][LAST_APPLIED],
        "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"annotations\":{},\"name\":\"orders\",\"namespace\":\"default\"},\"spec\":{\"ports\":[{\"port\":80,\"targetPort\":8080}],\"selector\":{\"app\":\"orders\"}}}\n"
    );

    // The server defaulting fields inside the ports list does not make the next apply a change.
    let mut defaulted = live.clone();
    defaulted["spec"]["ports"][0]["protocol"] = json!("TCP");
    defaulted["spec"]["clusterIP"] = json!("10.96.0.10");
    api.seed(Resource::Services, defaulted);
    let writes = api.writes.len();
    let (out, _, _) = run(&mut api, SVC, &default_ns()).await;
    assert_eq!(out, "service/orders unchanged\n");
    assert_eq!(api.writes.len(), writes, "unchanged must not write");

    let (out, _, errs) = run(&mut api, &SVC.replace("port: 80", "port: 81"), &default_ns()).await;
    assert_eq!((out.as_str(), errs.as_str()), ("service/orders configured\n", ""));
    let live = api.object(Resource::Services, "default", "orders").unwrap();
    assert_eq!(live["spec"]["ports"][0]["port"], 81);
    // The allocated cluster IP, never in any manifest, survives.
    assert_eq!(live["spec"]["clusterIP"], "10.96.0.10");
}

#[tokio::test]
async fn three_way_merge_keeps_scale_and_drops_removed_labels() {
    let mut api = FakeCluster::default();
    run(&mut api, DEPLOY, &default_ns()).await;
    // Someone scales the deployment.
    let mut live = api.object(Resource::Deployments, "default", "orders").unwrap().clone();
    live["spec"]["replicas"] = json!(5);
    api.seed(Resource::Deployments, live);

    let text = DEPLOY
        .replace("labels: {app: orders, team: a}", "labels: {app: orders}")
        .replace("nginx:1", "nginx:2");
    let (out, _, errs) = run(&mut api, &text, &default_ns()).await;
    assert_eq!((out.as_str(), errs.as_str()), ("deployment.apps/orders configured\n", ""));
    let live = api.object(Resource::Deployments, "default", "orders").unwrap();
    assert_eq!(live["spec"]["replicas"], 5);
    assert_eq!(live["metadata"]["labels"], json!({"app": "orders"}));
    assert_eq!(live["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:2");
}

#[tokio::test]
async fn objects_without_the_annotation_get_a_warning() {
    let mut api = FakeCluster::default();
    api.seed(
        Resource::Namespaces,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}),
    );
    let (out, warn, _) =
        run(&mut api, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n", &default_ns()).await;
    assert_eq!(out, "namespace/demo configured\n");
    assert!(warn.starts_with("Warning: resource namespaces/demo is missing the kubectl.kubernetes.io/last-applied-configuration annotation"), "{warn}");
    let (out, warn, _) =
        run(&mut api, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n", &default_ns()).await;
    assert_eq!((out.as_str(), warn.as_str()), ("namespace/demo unchanged\n", ""));
    // Cluster-scoped objects get no namespace.
    assert!(api.object(Resource::Namespaces, "", "demo").unwrap()["metadata"].get("namespace").is_none());
}

#[tokio::test]
async fn a_concurrent_change_is_a_conflict() {
    let mut api = FakeCluster::default();
    run(&mut api, DEPLOY, &default_ns()).await;
    api.conflict_next_update = true;
    let (out, _, errs) = run(&mut api, &DEPLOY.replace("nginx:1", "nginx:3"), &default_ns()).await;
    assert_eq!(out, "");
    assert!(errs.starts_with("Error from server (Conflict): error when applying patch:\n{"), "{errs}");
    assert!(
        errs.contains("\nto:\nResource: \"apps/v1, Resource=deployments\", GroupVersionKind: \"apps/v1, Kind=Deployment\"\nName: \"orders\", Namespace: \"default\"\nfor: \"app.yaml\": error when patching \"app.yaml\": Operation cannot be fulfilled on deployments.apps \"orders\": the object has been modified"),
        "{errs}"
    );
}

#[tokio::test]
async fn failures_do_not_stop_the_other_objects() {
    let mut api = FakeCluster::default();
    let text = format!("{}---\n{SVC}", SVC.replace("name: orders", "name: \"\""));
    let (out, _, errs) = run(&mut api, &text, &default_ns()).await;
    assert_eq!(out, "service/orders created\n");
    assert!(
        errs.starts_with(
            "error: error when retrieving current configuration of:\nResource: \"/v1, Resource=services\""
        ),
        "{errs}"
    );
    assert!(errs.ends_with("from server for: \"app.yaml\": resource name may not be empty"), "{errs}");
}

#[tokio::test]
async fn namespaces_come_from_the_manifest_then_the_flag() {
    let mut api = FakeCluster::default();
    let in_shop = SVC.replace("name: orders", "name: orders\n  namespace: shop");
    run(&mut api, &in_shop, &default_ns()).await;
    assert!(api.object(Resource::Services, "shop", "orders").is_some());
    run(&mut api, SVC, &Namespace { name: "demo".into(), explicit: true }).await;
    assert!(api.object(Resource::Services, "demo", "orders").is_some());
    let (_, _, errs) = run(&mut api, &in_shop, &Namespace { name: "demo".into(), explicit: true }).await;
    assert_eq!(
        errs,
        "error: the namespace from the provided object \"shop\" does not match the namespace \"demo\". You must pass '--namespace=shop' to perform this operation."
    );
}

#[tokio::test]
async fn server_errors_are_reported_kubectl_style_at_the_end() {
    let mut api = FakeCluster::default();
    api.fail_next_write = Some(Problem::from(crate::report::ApiError::new(
        "InternalError",
        "Internal error occurred: failed to allocate a serviceIP: range is full",
    )));
    let text = format!("{SVC}---\n{DEPLOY}");
    let (out, _, errs) = run(&mut api, &text, &default_ns()).await;
    assert_eq!(out, "deployment.apps/orders created\n");
    assert_eq!(
        errs,
        "Error from server (InternalError): error when creating \"app.yaml\": Internal error occurred: failed to allocate a serviceIP: range is full"
    );

    api.fail_next_write = Some(Problem::from(crate::report::ApiError::new(
        "Invalid",
        "The Service \"Orders\" is invalid: metadata.name: Invalid value: \"Orders\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
    )));
    let (_, _, errs) = run(&mut api, &SVC.replace("name: orders", "name: Orders"), &default_ns()).await;
    assert!(errs.starts_with("The Service \"Orders\" is invalid: metadata.name: Invalid value"), "{errs}");

    // Two failures: one line each, no `error: ` prefixes.
    api.fail_next_write = Some(Problem::from(crate::report::ApiError::new(
        "AlreadyExists",
        "services \"orders\" already exists",
    )));
    let text = format!("{SVC}---\n{}", SVC.replace("name: orders", "name: \"\""));
    let (_, _, errs) = run(&mut api, &text, &default_ns()).await;
    let lines: Vec<&str> = errs.lines().collect();
    assert_eq!(
        lines[0],
        "Error from server (AlreadyExists): error when creating \"app.yaml\": services \"orders\" already exists"
    );
    assert_eq!(lines[1], "error when retrieving current configuration of:");
}
