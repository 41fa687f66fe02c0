//! The client and reflector against a real apiserver served in-process on 127.0.0.1:0.

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::core::v1::ConfigMap;
use netlab_apiserver::{
    registry::{Registry, RegistryConfig},
    server,
    store::RedbStore,
};
use netlab_client::{
    Client, ListParams,
    reflector::{Change, reflector},
};
use netlab_proto::apiserver::v1::api_server_server::ApiServerServer;
use tokio_util::sync::CancellationToken;

async fn serve(history: usize) -> (String, tempfile::TempDir, CancellationToken) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(dir.path()).unwrap());
    let shutdown = CancellationToken::new();
    let cfg = RegistryConfig {
        service_cidr: "10.96.0.0/12".parse().unwrap(),
        node_ports: (30000, 32767),
        history,
        watch_buffer: 1024,
        validation: Default::default(),
    };
    let (registry, _writer) = Registry::open(store, cfg, shutdown.clone()).await.unwrap();
    netlab_apiserver::bootstrap::run(&registry, 6443).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = ApiServerServer::new(server::Service::new(registry, test_issuer(dir.path()), shutdown.clone()));
    let token = shutdown.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                token.cancelled_owned(),
            )
            .await
    });
    (format!("http://{addr}"), dir, shutdown)
}

fn cm(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default"},
        "data": {"v": value},
    }))
    .unwrap()
}

async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Change<ConfigMap>>) -> Change<ConfigMap> {
    tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("a change").expect("open")
}

#[tokio::test]
async fn typed_crud_and_kubernetes_errors() {
    let (url, _dir, _stop) = serve(1000).await;
    let client = Client::new(&url).unwrap();
    let created = client.create(&cm("a", "1")).await.unwrap();
    assert!(created.metadata.uid.is_some());
    let err = client.create(&cm("a", "1")).await.unwrap_err();
    assert!(err.is_already_exists(), "{err}");
    let mut stale = created.clone();
    let mut fresh = created.clone();
    fresh.data = Some([("v".to_string(), "2".to_string())].into());
    client.update(&fresh).await.unwrap();
    stale.data = Some([("v".to_string(), "3".to_string())].into());
    assert!(client.update(&stale).await.unwrap_err().is_conflict());
    client.delete::<ConfigMap>("default", "a").await.unwrap();
    let err = client.get::<ConfigMap>("default", "a").await.unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.to_string(), "configmaps \"a\" not found");
}

#[tokio::test]
async fn the_reflector_lists_then_follows_changes() {
    let (url, _dir, _stop) = serve(1000).await;
    let client = Client::new(&url).unwrap();
    client.create(&cm("before", "1")).await.unwrap();
    let params = ListParams { namespace: "default".into(), ..Default::default() };
    let (cache, mut rx) = reflector::<ConfigMap>(client.clone(), params, CancellationToken::new());
    cache.wait_synced().await;
    assert!(
        matches!(next(&mut rx).await, Change::Applied(o) if o.metadata.name.as_deref() == Some("before"))
    );
    client.create(&cm("after", "1")).await.unwrap();
    assert_eq!(next(&mut rx).await.key(), "default/after");
    assert!(cache.get("default/after").is_some());
    client.delete::<ConfigMap>("default", "before").await.unwrap();
    assert!(matches!(next(&mut rx).await, Change::Deleted(_)));
    assert!(cache.get("default/before").is_none());
    assert_eq!(cache.list_namespace("default").len(), 1);
}

#[tokio::test]
async fn repeated_events_count_up_on_one_object() {
    use netlab_client::recorder::{EventType, Recorder};
    let (url, _dir, _stop) = serve(1000).await;
    let client = Client::new(&url).unwrap();
    let target = client.create(&cm("target", "1")).await.unwrap();
    let recorder = Recorder::new(client.clone(), "test-controller", Some("node-1".into()));
    for _ in 0..3 {
        recorder.record(&target, EventType::Warning, "BackOff", "Back-off pulling image \"x\"").await;
    }
    let params = ListParams { fields: "involvedObject.name=target".into(), ..Default::default() };
    let (events, _) = client.list::<k8s_openapi::api::core::v1::Event>(&params).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].count, Some(3));
    assert_eq!(events[0].source.as_ref().unwrap().component.as_deref(), Some("test-controller"));
}

/// A token issuer with its key in `dir` (the gRPC service needs one; these calls use none).
fn test_issuer(dir: &std::path::Path) -> Arc<netlab_apiserver::token::TokenIssuer> {
    let cfg = netlab_apiserver::token::IssuerConfig::defaults_in(dir, "127.0.0.1:6443");
    Arc::new(netlab_apiserver::token::TokenIssuer::new(&cfg).expect("issuer"))
}
