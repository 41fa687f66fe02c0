//! The routes, through the router as a server would call them.

use axum::body::Body;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::*;
use crate::{
    fixture::{TRACE_HEX, request},
    receiver::Receiver,
};

async fn get(store: &Store, uri: &str) -> (StatusCode, String, String) {
    let response = router(store.clone())
        .oneshot(axum::http::Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, content_type, String::from_utf8(body.to_vec()).unwrap())
}

async fn get_json(store: &Store, uri: &str) -> (StatusCode, Value) {
    let (status, _, body) = get(store, uri).await;
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{uri}: {e}: {body}")))
}

fn loaded() -> Store {
    let store = Store::new(100);
    Receiver::new(store.clone()).receive(request());
    store
}

fn error(code: u16, msg: &str) -> Value {
    json!({"data": null, "total": 0, "limit": 0, "offset": 0, "errors": [{"code": code, "msg": msg}]})
}

#[tokio::test]
async fn get_trace_found_padded_missing_and_malformed() {
    let store = loaded();
    let (status, content_type, body) = get(&store, &format!("/api/traces/{TRACE_HEX}")).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "application/json"));
    let got: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(got["data"][0]["traceID"], TRACE_HEX);
    assert_eq!(got["data"][0]["spans"].as_array().unwrap().len(), 3);
    assert_eq!((got["total"].clone(), got["errors"].clone()), (json!(0), Value::Null));

    // Short and uppercase ids are padded and lowercased, as Jaeger does.
    let (status, got) = get_json(&store, "/api/traces/ABCD").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["data"][0]["spans"][0]["operationName"], "elsewhere");
    let (status, _) = get_json(&store, &format!("/api/traces/{}", TRACE_HEX.to_uppercase())).await;
    assert_eq!(status, StatusCode::OK);

    // Errors as Go's http.Error writes them.
    let (status, content_type, body) = get(&store, "/api/traces/0af7651916cd43dd8448eb211c80319c").await;
    assert_eq!((status, content_type.as_str()), (StatusCode::NOT_FOUND, "text/plain; charset=utf-8"));
    assert!(body.ends_with("}\n"), "{body:?}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), error(404, "trace not found"));
    let (status, got) = get_json(&store, "/api/traces/xyz").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(got, error(400, "strconv.ParseUint: parsing \"xyz\": invalid syntax"));
}

#[tokio::test]
async fn search() {
    let store = loaded();
    let (status, got) = get_json(&store, "/api/traces").await;
    assert_eq!((status, got), (StatusCode::BAD_REQUEST, error(400, "parameter 'service' is required")));

    // The fixture's spans are from 2026-01-01: outside the default 48 h window unless `start` says.
    let (status, got) = get_json(&store, "/api/traces?service=kube-apiserver").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, json!({"data": [], "total": 0, "limit": 0, "offset": 0, "errors": null}));

    let (_, got) = get_json(&store, "/api/traces?service=kube-apiserver&start=0&lookback=custom").await;
    let found: Vec<&str> =
        got["data"].as_array().unwrap().iter().map(|t| t["traceID"].as_str().unwrap()).collect();
    assert_eq!(found, ["000000000000abcd", TRACE_HEX], "newest first");

    let (_, got) = get_json(&store, "/api/traces?service=kube-apiserver&start=0&limit=1").await;
    assert_eq!(got["data"].as_array().unwrap().len(), 1);

    let tags = "%7B%22netlab.cluster_ip%22%3A%2210.96.120.17%22%7D";
    let (_, got) = get_json(&store, &format!("/api/traces?service=kube-apiserver&start=0&tags={tags}")).await;
    assert_eq!(got["data"].as_array().unwrap().len(), 1);
    assert_eq!(got["data"][0]["traceID"], TRACE_HEX);
    // The operation with spaces, as a browser encodes it.
    let (_, got) = get_json(
        &store,
        "/api/traces?service=kube-apiserver&operation=allocate%20ClusterIP&start=0&minDuration=1ms",
    )
    .await;
    assert_eq!(got["data"], json!([]), "allocate ClusterIP took 180 µs");

    let missing = "0af7651916cd43dd8448eb211c80319c";
    let (_, got) = get_json(&store, &format!("/api/traces?traceID={TRACE_HEX}&traceID={missing}")).await;
    assert_eq!(got["data"].as_array().unwrap().len(), 1);
    assert_eq!(got["errors"], json!([{"msg": "trace not found", "traceID": missing}]));

    let (status, got) = get_json(&store, "/api/traces?service=a&limit=0").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(got["errors"][0]["code"], 500);
}

#[tokio::test]
async fn services_and_operations() {
    let empty = Store::new(10);
    let (_, got) = get_json(&empty, "/api/services").await;
    assert_eq!(got, json!({"data": null, "total": 0, "limit": 0, "offset": 0, "errors": null}));

    let store = loaded();
    let (_, got) = get_json(&store, "/api/services").await;
    assert_eq!(got["data"], json!(["kube-apiserver", "kube-proxy"]));
    assert_eq!(got["total"], 2);

    let (_, got) = get_json(&store, "/api/services/kube-apiserver/operations").await;
    assert_eq!(
        got["data"],
        json!(["allocate ClusterIP", "elsewhere", "netlab.apiserver.v1.ApiServer/Create"])
    );
    assert_eq!(got["total"], 3);
    let (_, got) = get_json(&store, "/api/services/nobody/operations").await;
    assert_eq!((got["data"].clone(), got["total"].clone()), (Value::Null, json!(0)));

    let (_, got) = get_json(&store, "/api/operations?service=kube-apiserver&spanKind=server").await;
    assert_eq!(got["data"], json!([{"name": "netlab.apiserver.v1.ApiServer/Create", "spanKind": "server"}]));
    assert_eq!(got["total"], 1);
    let (_, got) = get_json(&store, "/api/operations?service=nobody").await;
    assert_eq!(got["data"], json!([]));
    let (status, got) = get_json(&store, "/api/operations").await;
    assert_eq!((status, got), (StatusCode::BAD_REQUEST, error(400, "parameter 'service' is required")));
}

#[tokio::test]
async fn pretty_print_and_the_trace_link() {
    let store = loaded();
    let (_, _, body) = get(&store, "/api/services?prettyPrint=true").await;
    assert!(body.starts_with("{\n    \"data\": [\n        \"kube-apiserver\""), "{body}");

    let response = router(store)
        .oneshot(axum::http::Request::get(format!("/trace/{TRACE_HEX}")).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], format!("/api/traces/{TRACE_HEX}"));
}
