//! The apiserver exports its spans over OTLP with `service.name = kube-apiserver`, and the
//! ClusterIP decision is a span of its own that says what was decided. A fake OTLP collector in
//! the test process stands in for Jaeger.

use std::{
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use netlab_proto::apiserver::v1::{CreateRequest, Resource, api_server_client::ApiServerClient};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value as AnyValue,
};

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().push(req.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

fn string(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        _ => String::new(),
    }
}

#[tokio::test]
async fn spans_reach_the_collector_with_the_kubernetes_service_name() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = listener.local_addr().unwrap();
    let svc = TraceServiceServer::new(collector.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
    });

    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_netlab-apiserver"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut client = loop {
        if let Ok(c) = ApiServerClient::connect(format!("http://127.0.0.1:{port}")).await {
            break c;
        }
        assert!(Instant::now() < deadline, "apiserver not serving");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let body = serde_json::json!({"metadata": {"name": "orders"}, "spec": {"ports": [{"port": 80}]}});
    let created = loop {
        let req = CreateRequest {
            resource: Resource::Services as i32,
            json: serde_json::to_vec(&body).unwrap().into(),
            namespace: "default".into(),
        };
        match client.create(req).await {
            Ok(r) => break r.into_inner(),
            // Bootstrap may not have created the namespace yet.
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("{e}"),
        }
    };
    let ip = serde_json::from_slice::<serde_json::Value>(&created.json).unwrap()["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .to_string();

    // An ExhaustionChaos holds the Service CIDR full: the refusal is on the allocation's span.
    let create = |resource: Resource, body: serde_json::Value| CreateRequest {
        resource: resource as i32,
        json: serde_json::to_vec(&body).unwrap().into(),
        namespace: "default".into(),
    };
    let fault = serde_json::json!({"metadata": {"name": "full"}, "spec": {"action": "service-cidr"}});
    client.create(create(Resource::ExhaustionChaos, fault)).await.unwrap();
    let refused = serde_json::json!({"metadata": {"name": "refused"}, "spec": {"ports": [{"port": 80}]}});
    let err = client.create(create(Resource::Services, refused)).await.unwrap_err();
    assert_eq!(err.message(), "Internal error occurred: failed to allocate a serviceIP: range is full");

    // SIGTERM: the apiserver shuts down and flushes its spans.
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exited = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(exited.success(), "clean exit on SIGTERM: {exited}");

    let requests = collector.0.lock().unwrap().clone();
    let mut found = false;
    let mut marked = false;
    for req in &requests {
        for rs in &req.resource_spans {
            let service_name = rs
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
                .map(|a| string(&a.value))
                .unwrap_or_default();
            assert_eq!(service_name, "kube-apiserver");
            for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
                if span.name == "allocate ClusterIP"
                    && span.attributes.iter().any(|a| a.key == "netlab.cluster_ip" && string(&a.value) == ip)
                {
                    assert!(
                        span.attributes
                            .iter()
                            .any(|a| a.key == "netlab.service_cidr" && string(&a.value) == "10.96.0.0/12")
                    );
                    found = true;
                }
                if span.name == "allocate ClusterIP"
                    && span
                        .attributes
                        .iter()
                        .any(|a| a.key == "fault.name" && string(&a.value) == "default/full")
                {
                    let event = span.events.iter().find(|e| e.name == "fault").expect("a fault span event");
                    let effect =
                        event.attributes.iter().find(|a| a.key == "fault.effect").map(|a| string(&a.value));
                    assert_eq!(effect.as_deref(), Some("refused a ClusterIP: the Service CIDR is full"));
                    assert!(
                        span.attributes
                            .iter()
                            .any(|a| a.key == "fault.kind" && string(&a.value) == "ExhaustionChaos")
                    );
                    marked = true;
                }
            }
        }
    }
    assert!(
        found,
        "an `allocate ClusterIP` span with netlab.cluster_ip={ip} among {} export requests",
        requests.len()
    );
    assert!(marked, "the refused allocation's span names the ExhaustionChaos");
}
