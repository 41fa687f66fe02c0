//! Black-box tests of the `netlab-apiserver` binary over its gRPC API: watch across the process
//! boundary, Kubernetes errors in the status details, health and reflection for grpcurl.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use netlab_proto::apiserver::v1::{
    CreateRequest, EventType, GetRequest, Resource, Status, WatchRequest, api_server_client::ApiServerClient,
};
use prost::Message as _;
use tonic::transport::Channel;

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start(dir: &std::path::Path) -> (Server, Channel) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_netlab-apiserver"))
        .args(["--listen", &addr, "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child, format!("http://{addr}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(ch) = tonic::transport::Endpoint::from_shared(server.1.clone()).unwrap().connect().await {
            let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
            let req =
                tonic_health::pb::HealthCheckRequest { service: "netlab.apiserver.v1.ApiServer".into() };
            if let Ok(resp) = health.check(req).await {
                assert_eq!(resp.into_inner().status, 1, "SERVING");
                return (server, ch);
            }
        }
        assert!(Instant::now() < deadline, "apiserver not serving");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn cm(name: &str) -> bytes::Bytes {
    serde_json::to_vec(&serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}))
        .unwrap()
        .into()
}

#[tokio::test]
async fn a_watcher_in_another_process_sees_writes_and_errors_carry_kubernetes_status() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, ch) = start(dir.path()).await;
    let mut client = ApiServerClient::new(ch);

    let mut watch = client
        .watch(WatchRequest {
            resource: Resource::ConfigMaps as i32,
            namespace: "default".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let created = client
        .create(CreateRequest {
            resource: Resource::ConfigMaps as i32,
            json: cm("settings"),
            namespace: "default".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let batch =
        tokio::time::timeout(Duration::from_secs(5), watch.message()).await.unwrap().unwrap().unwrap();
    let ev = &batch.events[0];
    assert_eq!(ev.r#type, EventType::Added as i32);
    let obj = ev.object.as_ref().unwrap();
    assert_eq!((obj.name.as_str(), obj.resource_version), ("settings", created.resource_version));
    let json: serde_json::Value = serde_json::from_slice(&obj.json).unwrap();
    assert_eq!(json["metadata"]["resourceVersion"], created.resource_version.to_string());
    assert!(json["metadata"]["uid"].is_string() && json["metadata"]["creationTimestamp"].is_string());

    let err = client
        .get(GetRequest {
            resource: Resource::ConfigMaps as i32,
            namespace: "default".into(),
            name: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let status = Status::decode(err.details()).unwrap();
    assert_eq!((status.reason.as_str(), status.code), ("NotFound", 404));
    assert_eq!(status.message, "configmaps \"nope\" not found");

    let err = client
        .watch(WatchRequest {
            resource: Resource::ConfigMaps as i32,
            resource_version: Some(1),
            ..Default::default()
        })
        .await;
    // Revision 1 is still in this fresh server's history: resuming works.
    assert!(err.is_ok());
}

#[tokio::test]
async fn reflection_lists_the_api_for_grpcurl() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let dir = tempfile::tempdir().unwrap();
    let (_server, ch) = start(dir.path()).await;
    let mut client = ServerReflectionClient::new(ch);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client.server_reflection_info(tokio_stream::once(req)).await.unwrap().into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"netlab.apiserver.v1.ApiServer".to_string()), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health".to_string()), "{names:?}");
}

#[tokio::test]
async fn sigterm_stops_the_server_even_with_a_watch_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, ch) = start(dir.path()).await;
    let mut client = ApiServerClient::new(ch);
    let _watch = client
        .watch(WatchRequest { resource: Resource::Pods as i32, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "still running 15 s after SIGTERM with a client connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `CreateRequest` as the wire has it, with `namespace` as raw bytes (so it can be invalid
/// UTF-8) and a field the API does not define.
#[derive(Clone, PartialEq, prost::Message)]
struct RawCreate {
    #[prost(int32, tag = "1")]
    resource: i32,
    #[prost(bytes = "bytes", tag = "2")]
    json: bytes::Bytes,
    #[prost(bytes = "vec", tag = "3")]
    namespace: Vec<u8>,
    #[prost(string, tag = "99")]
    unknown: String,
}

async fn raw_create(
    ch: Channel,
    req: RawCreate,
) -> Result<netlab_proto::apiserver::v1::Object, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/netlab.apiserver.v1.ApiServer/Create");
    let codec = tonic_prost::ProstCodec::<RawCreate, netlab_proto::apiserver::v1::Object>::default();
    grpc.unary(tonic::Request::new(req), path, codec).await.map(tonic::Response::into_inner)
}

#[tokio::test]
async fn hostile_grpc_input_is_refused_and_the_server_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, ch) = start(dir.path()).await;
    let mut client = ApiServerClient::new(ch.clone()).max_encoding_message_size(usize::MAX);
    let still_serving = |mut client: ApiServerClient<Channel>| async move {
        let req = GetRequest {
            resource: Resource::Namespaces as i32,
            name: "default".into(),
            ..Default::default()
        };
        tokio::time::timeout(Duration::from_secs(2), client.get(req))
            .await
            .expect("an answer")
            .expect("default");
    };

    // A message over the 16 MiB limit: refused by size, before it is decoded.
    let huge = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "huge"},
        "data": {"k": "x".repeat(17 << 20)}});
    let err = client
        .create(CreateRequest {
            resource: Resource::ConfigMaps as i32,
            json: serde_json::to_vec(&huge).unwrap().into(),
            namespace: "default".into(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err.code(), tonic::Code::OutOfRange | tonic::Code::ResourceExhausted), "{err:?}");
    assert!(err.message().contains("too large"), "{err:?}");
    still_serving(client.clone()).await;

    // A string field that is not UTF-8: the message does not decode.
    let bad = RawCreate {
        resource: Resource::ConfigMaps as i32,
        json: cm("utf8"),
        namespace: b"def\xffault".to_vec(),
        unknown: String::new(),
    };
    let err = raw_create(ch.clone(), bad).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Internal, "{err:?}");
    assert!(err.message().contains("failed to decode Protobuf message"), "{err:?}");
    still_serving(client.clone()).await;

    // A field this API does not know is skipped, as protobuf's rules say.
    let extra = RawCreate {
        resource: Resource::ConfigMaps as i32,
        json: cm("extra"),
        namespace: b"default".to_vec(),
        unknown: "from a newer client".into(),
    };
    assert_eq!(raw_create(ch.clone(), extra).await.unwrap().name, "extra");

    // An unknown resource number and a body that is not JSON: Kubernetes' BadRequest.
    let err = client
        .create(CreateRequest { resource: 9_999, json: cm("x"), namespace: "default".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    let err = client
        .create(CreateRequest {
            resource: Resource::ConfigMaps as i32,
            json: bytes::Bytes::from_static(b"{not json"),
            namespace: "default".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(Status::decode(err.details()).unwrap().reason, "BadRequest", "{err:?}");

    // A hundred thousand labels (2.7 MB): each is checked and the object stored, as upstream
    // would; the server then answers a small request at once.
    let labels: serde_json::Map<String, serde_json::Value> =
        (0..100_000).map(|i| (format!("label-{i}"), serde_json::Value::from("v"))).collect();
    let many = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "many-labels", "labels": labels}});
    let created = client
        .create(CreateRequest {
            resource: Resource::ConfigMaps as i32,
            json: serde_json::to_vec(&many).unwrap().into(),
            namespace: "default".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.name, "many-labels");
    still_serving(client).await;
}
