//! The REST edge end to end over a real registry (redb in a temporary directory) and a real
//! HTTP/1.1 connection: status codes, content types and bodies as kubectl receives them.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use crate::{
    bootstrap,
    registry::{Registry, RegistryConfig},
    store::RedbStore,
};

struct Server {
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

async fn serve() -> Server {
    serve_with_history(1000).await
}

/// A server whose registry keeps `history` events for watches to resume from.
async fn serve_with_history(history: usize) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(dir.path()).unwrap());
    let cfg = RegistryConfig {
        service_cidr: "10.96.0.0/12".parse().unwrap(),
        node_ports: (30000, 32767),
        history,
        watch_buffer: 1024,
        validation: Default::default(),
    };
    let (registry, _writer): (Registry, _) =
        Registry::open(store, cfg, CancellationToken::new()).await.unwrap();
    bootstrap::run(&registry, 6443).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let issuer = crate::token::TokenIssuer::new(&crate::token::IssuerConfig::defaults_in(
        dir.path(),
        &addr.to_string(),
    ))
    .unwrap();
    let router = super::router(registry, Arc::new(issuer));
    tokio::spawn(async move { axum::serve(listener, router).await });
    Server { addr, _dir: dir }
}

struct Reply {
    code: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 request on its own connection.
async fn call(server: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", server.addr);
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let code = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers =
        lines.filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Reply { code, headers, body: body.to_string() }
}

const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

const SERVICE: &str = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","labels":{"app":"web"},"creationTimestamp":null},"spec":{"selector":{"app":"web"},"ports":[{"port":80}]},"status":{}}"#;

#[tokio::test]
async fn version_and_health() {
    let s = serve().await;
    let v = call(&s, "GET", "/version?timeout=32s", &[], "").await;
    assert_eq!(v.code, 200);
    assert_eq!((v.json()["major"].clone(), v.json()["minor"].clone()), (json!("1"), json!("32")));
    let h = call(&s, "GET", "/readyz", &[], "").await;
    assert_eq!((h.code, h.body.as_str()), (200, "ok"));
}

#[tokio::test]
async fn create_get_list_delete() {
    let s = serve().await;
    let json_ct = [("Content-Type", "application/json")];
    let created = call(
        &s,
        "POST",
        "/api/v1/namespaces/default/services?fieldManager=kubectl-create&fieldValidation=Strict",
        &json_ct,
        SERVICE,
    )
    .await;
    assert_eq!(created.code, 201, "{}", created.body);
    let svc = created.json();
    assert_eq!(
        (svc["kind"].as_str(), svc["metadata"]["namespace"].as_str()),
        (Some("Service"), Some("default"))
    );
    let ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();

    let again = call(&s, "POST", "/api/v1/namespaces/default/services", &json_ct, SERVICE).await;
    assert_eq!(again.code, 409);
    assert_eq!(again.json()["message"], "services \"web\" already exists");

    let got = call(&s, "GET", "/api/v1/namespaces/default/services/web", &[], "").await;
    assert_eq!((got.code, got.json()["spec"]["clusterIP"].as_str()), (200, Some(ip.as_str())));

    let list = call(&s, "GET", "/api/v1/services?labelSelector=app%3Dweb&limit=500", &[], "").await;
    let list = list.json();
    assert_eq!(list["kind"], "ServiceList");
    assert!(list["metadata"]["resourceVersion"].as_str().unwrap().parse::<u64>().unwrap() > 0);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    let table = call(&s, "GET", "/api/v1/namespaces/default/services", &[("Accept", TABLE)], "").await;
    assert_eq!(table.header("content-type"), Some("application/json;as=Table;v=v1;g=meta.k8s.io"));
    let table = table.json();
    let rows = table["rows"].as_array().unwrap();
    let cells: Vec<&Value> = rows.iter().map(|r| &r["cells"]).collect();
    assert!(cells.iter().any(|c| c[0] == "kubernetes" && c[2] == "10.96.0.1"), "{table}");
    assert!(cells.iter().any(|c| c[0] == "web" && c[4] == "80/TCP"), "{table}");
    assert_eq!(rows[0]["object"]["kind"], "PartialObjectMetadata");

    let dry = call(
        &s,
        "POST",
        "/api/v1/namespaces/default/services?dryRun=All",
        &json_ct,
        &SERVICE.replace("\"web\"", "\"dry\""),
    )
    .await;
    assert_eq!(dry.code, 201);
    assert_eq!(call(&s, "GET", "/api/v1/namespaces/default/services/dry", &[], "").await.code, 404);

    let deleted = call(
        &s,
        "DELETE",
        "/api/v1/namespaces/default/services/web",
        &json_ct,
        r#"{"propagationPolicy":"Background"}"#,
    )
    .await;
    assert_eq!(deleted.code, 200, "{}", deleted.body);
    let status = deleted.json();
    assert_eq!((status["kind"].as_str(), status["status"].as_str()), (Some("Status"), Some("Success")));
    assert_eq!(
        (status["details"]["name"].as_str(), status["details"]["kind"].as_str()),
        (Some("web"), Some("services"))
    );
    let gone = call(&s, "GET", "/api/v1/namespaces/default/services/web", &[], "").await;
    assert_eq!(gone.code, 404);
    assert_eq!(gone.json()["details"], json!({"name": "web", "kind": "services"}));
}

#[tokio::test]
async fn errors() {
    let s = serve().await;
    let json_ct = [("Content-Type", "application/json")];
    let invalid = call(
        &s,
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        &json_ct,
        r#"{"metadata":{"name":"web"},"spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"other"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}"#,
    )
    .await;
    assert_eq!(invalid.code, 422, "{}", invalid.body);
    let status = invalid.json();
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(
        (status["details"]["kind"].as_str(), status["details"]["group"].as_str()),
        (Some("Deployment"), Some("apps"))
    );
    assert!(
        status["message"].as_str().unwrap().starts_with("Deployment.apps \"web\" is invalid: "),
        "{status}"
    );
    assert!(!status["details"]["causes"].as_array().unwrap().is_empty());

    let missing = call(&s, "GET", "/apis/apps/v1/namespaces/default/deployments/nope", &[], "").await;
    assert_eq!(
        (missing.code, missing.json()["message"].as_str()),
        (404, Some("deployments.apps \"nope\" not found"))
    );
    let bad = call(&s, "GET", "/api/v1/services?fieldSelector=spec.nodeName%3Dx", &[], "").await;
    assert_eq!(
        (bad.code, bad.json()["message"].as_str()),
        (400, Some("field label not supported: spec.nodeName"))
    );
    let undecodable = call(&s, "POST", "/api/v1/namespaces/default/configmaps", &json_ct, "{").await;
    assert_eq!((undecodable.code, undecodable.json()["reason"].as_str()), (400, Some("BadRequest")));
    let yaml = call(
        &s,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &[("Content-Type", "application/yaml")],
        "a: b",
    )
    .await;
    assert_eq!(yaml.code, 415);
    let put = call(&s, "PUT", "/api/v1/namespaces/default/services/kubernetes", &json_ct, "{}").await;
    assert_eq!(
        (put.code, put.json()["message"].as_str()),
        (400, Some("the name of the object () does not match the name on the URL (kubernetes)"))
    );
    let collection = call(&s, "DELETE", "/api/v1/namespaces/default/configmaps", &json_ct, "").await;
    assert_eq!((collection.code, collection.json()["reason"].as_str()), (405, Some("MethodNotAllowed")));
    let no_scale = call(&s, "GET", "/api/v1/namespaces/default/services/kubernetes/scale", &[], "").await;
    assert_eq!(no_scale.code, 404);
    let unknown = call(&s, "GET", "/apis/batch/v1/jobs", &[], "").await;
    assert_eq!(unknown.code, 404);
    let other_ns = call(
        &s,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &json_ct,
        r#"{"metadata":{"name":"x","namespace":"kube-system"}}"#,
    )
    .await;
    assert_eq!(other_ns.code, 400);
}

#[tokio::test]
async fn discovery_content_types() {
    let s = serve().await;
    let aggregated = call(
        &s,
        "GET",
        "/apis?timeout=32s",
        &[("Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")],
        "",
    )
    .await;
    assert_eq!(
        aggregated.header("content-type"),
        Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    );
    assert_eq!(aggregated.json()["kind"], "APIGroupDiscoveryList");
    let legacy = call(&s, "GET", "/api", &[("Accept", "application/json, */*")], "").await;
    assert_eq!(legacy.header("content-type"), Some("application/json"));
    assert_eq!(legacy.json()["versions"], json!(["v1"]));
    let resources = call(&s, "GET", "/apis/apps/v1", &[], "").await.json();
    assert_eq!(resources["groupVersion"], "apps/v1");
}

/// A chunked body's payload.
fn dechunk(mut raw: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = raw.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or_else(|e| panic!("{e}: {raw:?}"));
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        raw = &rest[n + 2..];
    }
    out
}

/// A watch's events, read until the server ends the stream.
async fn watch(s: &Server, path: &str, headers: &[(&str, &str)]) -> (Reply, Vec<Value>) {
    let reply = call(s, "GET", path, headers, "").await;
    assert_eq!(reply.code, 200, "{}", reply.body);
    assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
    let events = dechunk(&reply.body)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (reply, events)
}

fn summary(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            let name = e["object"]["metadata"]["name"].as_str().unwrap_or("").to_string();
            (e["type"].as_str().unwrap_or("").to_string(), name)
        })
        .collect()
}

fn pairs(want: &[(&str, &str)]) -> Vec<(String, String)> {
    want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

const JSON: [(&str, &str); 1] = [("Content-Type", "application/json")];

fn configmap(name: &str, app: &str) -> String {
    format!(r#"{{"metadata":{{"name":"{name}","labels":{{"app":"{app}"}}}},"data":{{"k":"v"}}}}"#)
}

async fn create(s: &Server, path: &str, body: &str) -> Value {
    let r = call(s, "POST", path, &JSON, body).await;
    assert_eq!(r.code, 201, "{}", r.body);
    r.json()
}

#[tokio::test]
async fn watch_streams_changes_with_selectors_and_resource_versions() {
    let s = Arc::new(serve().await);
    let cms = "/api/v1/namespaces/default/configmaps";
    let a = create(&s, cms, &configmap("a", "web")).await;
    let a_rv = a["metadata"]["resourceVersion"].as_str().unwrap().to_string();

    // From "now" (no resourceVersion): the current objects as ADDED, then the changes.
    let all = {
        let s = s.clone();
        tokio::spawn(async move { watch(&s, &format!("{cms}?watch=true&timeoutSeconds=2"), &[]).await })
    };
    let web = {
        let s = s.clone();
        tokio::spawn(async move {
            watch(&s, &format!("{cms}?watch=1&labelSelector=app%3Dweb&timeoutSeconds=2"), &[]).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    create(&s, cms, &configmap("b", "db")).await;
    let mut moved = a.clone();
    moved["metadata"]["labels"]["app"] = json!("db");
    let put = call(&s, "PUT", &format!("{cms}/a"), &JSON, &moved.to_string()).await;
    assert_eq!(put.code, 200, "{}", put.body);
    let del = call(&s, "DELETE", &format!("{cms}/b"), &[], "").await;
    assert_eq!(del.code, 200);

    let (reply, events) = all.await.unwrap();
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        summary(&events),
        pairs(&[("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")])
    );
    assert_eq!(events[0]["object"]["kind"], "ConfigMap");
    let rvs: Vec<u64> = events
        .iter()
        .map(|e| e["object"]["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(rvs.windows(2).all(|w| w[0] < w[1]), "{rvs:?}");
    // Through the selector, a leaving the selection is a DELETED; b never matched.
    let (_, events) = web.await.unwrap();
    assert_eq!(summary(&events), pairs(&[("ADDED", "a"), ("DELETED", "a")]));

    // From a's creation: only what came after, replayed from the history; the same for a
    // watch on the object itself (`?watch` on its path).
    let (_, events) =
        watch(&s, &format!("{cms}?watch=true&resourceVersion={a_rv}&timeoutSeconds=1"), &[]).await;
    assert_eq!(summary(&events), pairs(&[("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]));
    let (_, events) = watch(
        &s,
        &format!("{cms}?watch=true&resourceVersion={a_rv}&fieldSelector=metadata.name%3Da&timeoutSeconds=1"),
        &[],
    )
    .await;
    assert_eq!(summary(&events), pairs(&[("MODIFIED", "a")]));
    let (_, events) =
        watch(&s, &format!("{cms}/a?watch=true&resourceVersion={a_rv}&timeoutSeconds=1"), &[]).await;
    assert_eq!(summary(&events), pairs(&[("MODIFIED", "a")]));

    let bad = call(&s, "GET", &format!("{cms}?watch=true&resourceVersion=abc"), &[], "").await;
    assert_eq!(bad.code, 400);
}

#[tokio::test]
async fn watch_bookmarks_tables_and_expiry() {
    let s = serve_with_history(2).await;
    let cms = "/api/v1/namespaces/default/configmaps";
    for name in ["a", "b", "c", "d"] {
        create(&s, cms, &configmap(name, "web")).await;
    }

    // A bookmark 2 s before the deadline, at the newest resourceVersion sent.
    let (_, events) = watch(
        &s,
        &format!(
            "{cms}?watch=true&allowWatchBookmarks=true&fieldSelector=metadata.name%3Dd&timeoutSeconds=3"
        ),
        &[],
    )
    .await;
    assert_eq!(summary(&events), pairs(&[("ADDED", "d"), ("BOOKMARK", "")]));
    assert_eq!(events[1]["object"]["kind"], "ConfigMap");
    assert_eq!(
        events[1]["object"]["metadata"]["resourceVersion"],
        events[0]["object"]["metadata"]["resourceVersion"]
    );
    // Without allowWatchBookmarks, none.
    let (_, events) =
        watch(&s, &format!("{cms}?watch=true&fieldSelector=metadata.name%3Dd&timeoutSeconds=3"), &[]).await;
    assert_eq!(summary(&events), pairs(&[("ADDED", "d")]));

    // History older than the registry keeps: 200, then one ERROR event with the 410.
    let (_, events) = watch(&s, &format!("{cms}?watch=true&resourceVersion=1"), &[]).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "ERROR");
    let status = &events[0]["object"];
    assert_eq!(
        (status["kind"].as_str(), status["code"].as_i64(), status["reason"].as_str()),
        (Some("Status"), Some(410), Some("Expired"))
    );
    assert!(status["message"].as_str().unwrap().starts_with("too old resource version: 1 ("), "{status}");

    // Tables, as `kubectl get -w` asks: one row per event, the columns on the first only.
    let (reply, events) =
        watch(&s, &format!("{cms}?watch=true&timeoutSeconds=1"), &[("Accept", TABLE)]).await;
    assert_eq!(reply.header("content-type"), Some("application/json;as=Table;v=v1;g=meta.k8s.io"));
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[0]["object"]["kind"], "Table");
    assert_eq!(events[0]["object"]["columnDefinitions"][0]["name"], "Name");
    assert_eq!(events[1]["object"]["columnDefinitions"], Value::Null);
    let names: Vec<&str> =
        events.iter().map(|e| e["object"]["rows"][0]["cells"][0].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    assert_eq!(events[3]["object"]["rows"][0]["object"]["kind"], "PartialObjectMetadata");
}

#[tokio::test]
async fn update_status_and_conflicts() {
    let s = serve().await;
    let deploys = "/apis/apps/v1/namespaces/default/deployments";
    let d = create(&s, deploys, DEPLOYMENT).await;
    assert_eq!(d["metadata"]["generation"], 1);

    let mut changed = d.clone();
    changed["spec"]["replicas"] = json!(2);
    let put = call(&s, "PUT", &format!("{deploys}/web"), &JSON, &changed.to_string()).await;
    assert_eq!(put.code, 200, "{}", put.body);
    let updated = put.json();
    assert_eq!(
        (updated["spec"]["replicas"].as_i64(), updated["metadata"]["generation"].as_i64()),
        (Some(2), Some(2))
    );

    // The same body again carries a resourceVersion that is now stale.
    let stale = call(&s, "PUT", &format!("{deploys}/web"), &JSON, &changed.to_string()).await;
    assert_eq!(stale.code, 409);
    assert_eq!(
        stale.json()["message"],
        "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(stale.json()["reason"], "Conflict");

    // The main resource ignores status; /status takes only status.
    let mut with_status = updated.clone();
    with_status["status"] = json!({"replicas": 2, "observedGeneration": 2});
    with_status["spec"]["replicas"] = json!(5);
    let main = call(&s, "PUT", &format!("{deploys}/web"), &JSON, &with_status.to_string()).await.json();
    assert!(main.get("status").is_none_or(|st| st.get("observedGeneration").is_none()), "{main}");
    with_status["metadata"]["resourceVersion"] = main["metadata"]["resourceVersion"].clone();
    with_status["spec"]["replicas"] = json!(9);
    let status = call(&s, "PUT", &format!("{deploys}/web/status"), &JSON, &with_status.to_string()).await;
    assert_eq!(status.code, 200, "{}", status.body);
    let status = status.json();
    assert_eq!(
        (status["status"]["observedGeneration"].as_i64(), status["spec"]["replicas"].as_i64()),
        (Some(2), Some(5))
    );

    let missing =
        call(&s, "PUT", &format!("{deploys}/nope"), &JSON, &DEPLOYMENT.replace("\"web\"", "\"nope\"")).await;
    assert_eq!(
        (missing.code, missing.json()["message"].as_str()),
        (404, Some("deployments.apps \"nope\" not found"))
    );
    let garbled = call(&s, "PUT", &format!("{deploys}/web"), &JSON, "{").await;
    assert_eq!(garbled.code, 400);
}

const DEPLOYMENT: &str = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.27","ports":[{"containerPort":80}]},{"name":"sidecar","image":"busybox"}]}}}}"#;

#[tokio::test]
async fn scale_subresource() {
    let s = serve().await;
    let deploys = "/apis/apps/v1/namespaces/default/deployments";
    create(&s, deploys, DEPLOYMENT).await;
    let scale = call(&s, "GET", &format!("{deploys}/web/scale"), &[], "").await.json();
    assert_eq!(
        (scale["kind"].as_str(), scale["apiVersion"].as_str()),
        (Some("Scale"), Some("autoscaling/v1"))
    );
    assert_eq!(
        (scale["spec"]["replicas"].as_i64(), scale["status"]["selector"].as_str()),
        (Some(1), Some("app=web"))
    );

    // kubectl scale: a merge patch of the Scale.
    let merge = [("Content-Type", "application/merge-patch+json")];
    let scaled =
        call(&s, "PATCH", &format!("{deploys}/web/scale"), &merge, r#"{"spec":{"replicas":3}}"#).await;
    assert_eq!(scaled.code, 200, "{}", scaled.body);
    assert_eq!(scaled.json()["spec"]["replicas"], 3);
    let d = call(&s, "GET", &format!("{deploys}/web"), &[], "").await.json();
    assert_eq!((d["spec"]["replicas"].as_i64(), d["metadata"]["generation"].as_i64()), (Some(3), Some(2)));

    // PUT with the Scale's resourceVersion: a precondition.
    let mut put = scale.clone();
    put["spec"]["replicas"] = json!(4);
    let stale = call(&s, "PUT", &format!("{deploys}/web/scale"), &JSON, &put.to_string()).await;
    assert_eq!(stale.code, 409, "{}", stale.body);
    put["metadata"]["resourceVersion"] = d["metadata"]["resourceVersion"].clone();
    let fresh = call(&s, "PUT", &format!("{deploys}/web/scale"), &JSON, &put.to_string()).await;
    assert_eq!((fresh.code, fresh.json()["spec"]["replicas"].as_i64()), (200, Some(4)));

    let negative =
        call(&s, "PATCH", &format!("{deploys}/web/scale"), &merge, r#"{"spec":{"replicas":-1}}"#).await;
    assert_eq!(negative.code, 422);
    assert_eq!(
        negative.json()["message"],
        "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
    let missing = call(&s, "GET", &format!("{deploys}/nope/scale"), &[], "").await;
    assert_eq!(missing.code, 404);
}

#[tokio::test]
async fn patches_of_every_type() {
    let s = serve().await;
    let deploys = "/apis/apps/v1/namespaces/default/deployments";
    create(&s, deploys, DEPLOYMENT).await;
    let patch = |ct: &'static str, body: &'static str| {
        let s = &s;
        async move { call(s, "PATCH", &format!("{deploys}/web"), &[("Content-Type", ct)], body).await }
    };

    // kubectl label: merge patch.
    let labeled = patch("application/merge-patch+json", r#"{"metadata":{"labels":{"tier":"web"}}}"#).await;
    assert_eq!(labeled.code, 200, "{}", labeled.body);
    assert_eq!(labeled.json()["metadata"]["labels"], json!({"tier": "web"}));
    let unlabeled =
        patch("application/merge-patch+json", r#"{"metadata":{"labels":{"tier":null}}}"#).await.json();
    assert!(unlabeled["metadata"].get("labels").is_none_or(|l| l.get("tier").is_none()), "{unlabeled}");

    // kubectl set image: strategic merge, containers by name.
    let set = patch(
        "application/strategic-merge-patch+json",
        r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"},{"name":"sidecar"}],"containers":[{"image":"nginx:1.28","name":"nginx"}]}}}}"#,
    )
    .await;
    assert_eq!(set.code, 200, "{}", set.body);
    let containers = set.json()["spec"]["template"]["spec"]["containers"].clone();
    assert_eq!(
        (
            containers[0]["image"].as_str(),
            containers[0]["ports"][0]["containerPort"].as_i64(),
            containers[1]["image"].as_str()
        ),
        (Some("nginx:1.28"), Some(80), Some("busybox"))
    );
    assert_eq!(set.json()["metadata"]["generation"], 2);

    // kubectl patch --type=json.
    let json_patch = patch(
        "application/json-patch+json",
        r#"[{"op":"test","path":"/spec/replicas","value":1},{"op":"replace","path":"/spec/replicas","value":2}]"#,
    )
    .await;
    assert_eq!((json_patch.code, json_patch.json()["spec"]["replicas"].as_i64()), (200, Some(2)));
    let failed =
        patch("application/json-patch+json", r#"[{"op":"test","path":"/spec/replicas","value":1}]"#).await;
    assert_eq!(
        (failed.code, failed.json()["message"].as_str()),
        (422, Some("the server rejected our request due to an error in our request"))
    );
    assert_eq!(
        failed.json()["details"]["causes"][0]["message"],
        "testing value /spec/replicas failed: test failed"
    );

    // A stale resourceVersion in the patch is the client's precondition.
    let stale =
        patch("application/merge-patch+json", r#"{"metadata":{"resourceVersion":"1","labels":{"x":"y"}}}"#)
            .await;
    assert_eq!(stale.code, 409);
    // Server-side apply is not served.
    let apply = patch("application/apply-patch+yaml", "{}").await;
    assert_eq!(apply.code, 415);
    assert!(apply.json()["message"].as_str().unwrap().contains("application/strategic-merge-patch+json"));
    // Invalid results are the registry's 422.
    let invalid = patch("application/merge-patch+json", r#"{"spec":{"replicas":-1}}"#).await;
    assert_eq!(invalid.code, 422, "{}", invalid.body);
    let missing = call(
        &s,
        "PATCH",
        &format!("{deploys}/nope"),
        &[("Content-Type", "application/merge-patch+json")],
        "{}",
    )
    .await;
    assert_eq!(missing.code, 404);

    // /status patches change only status.
    let status = call(
        &s,
        "PATCH",
        &format!("{deploys}/web/status"),
        &[("Content-Type", "application/merge-patch+json")],
        r#"{"spec":{"replicas":7},"status":{"observedGeneration":3}}"#,
    )
    .await
    .json();
    assert_eq!(
        (status["status"]["observedGeneration"].as_i64(), status["spec"]["replicas"].as_i64()),
        (Some(3), Some(2))
    );

    // Custom resources take no strategic merge patch.
    let chaos = call(
        &s,
        "PATCH",
        "/apis/chaos.netlab.io/v1alpha1/namespaces/default/networkchaos/x",
        &[("Content-Type", "application/strategic-merge-patch+json")],
        "{}",
    )
    .await;
    assert_eq!(chaos.code, 415);
}
