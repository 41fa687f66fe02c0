//! netlab's kube-apiserver: the process every other component talks to.
//!
//! It validates objects with Kubernetes' messages and field paths, allocates Service ClusterIPs
//! from the Service CIDR exactly as kube-apiserver does (seed question 1: the apiserver, not the
//! CNI or kube-proxy, assigns Service IPs), keeps every object durably, and serves list + watch
//! with resourceVersion semantics so controllers can follow changes.
//!
//! # Layout
//! - [`config`]: flags. [`error`]: errors as Kubernetes StatusReasons, and the server's own.
//! - [`server`]: the gRPC edge. [`registry`]: objects in memory and the write path through it:
//!   admission (decode, [`defaults`], [`validation`]), the single writer, the Service
//!   allocation transaction, repair at start, watch.
//! - [`store`]: durable storage (redb) behind a trait, etcd's key layout.
//! - [`alloc`]: ClusterIP and NodePort bitmap allocators.
//! - [`validation`]: upstream's field checks, one module per API group; the flags reach it as
//!   [`validation::ValidationOptions`] through [`registry::RegistryConfig`].
//! - [`object`]: decoding and metadata. [`selector`]: label and field selectors.
//! - [`faults`]: its own ComponentChaos, enforced from the registry (it cannot ask itself over a
//!   refused port).
//! - [`warning`]: the `Warning`s a write answers with (a fault that selects no pod).
//! - [`pod_identity`]: EKS's pod identity webhook (IRSA's env and projected token volume).
//! - [`token`]: the service-account token issuer (TokenRequest) and its OIDC documents;
//!   [`http`]: what the API port serves over plain HTTP beside gRPC (those documents, [`rest`]).
//! - [`bootstrap`]: the system objects of a fresh cluster. [`endpoints`]: the `kubernetes`
//!   Service's EndpointSlice, kept pointing at this apiserver.

use std::{sync::Arc, time::Duration};

use netlab_proto::apiserver::v1::api_server_server::ApiServerServer;
use tokio_util::sync::CancellationToken;

pub mod alloc;
pub mod bootstrap;
pub mod config;
pub mod defaults;
pub mod endpoints;
pub mod error;
pub mod faults;
pub mod http;
pub mod object;
pub mod pod_identity;
pub mod registry;
pub mod rest;
pub mod selector;
pub mod server;
pub mod store;
pub mod token;
pub mod validation;
pub mod warning;

pub use config::Config;
pub use error::{Error, Result};

/// How long in-flight calls get after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How long a stop or pause of the apiserver waits, so the request that created it is answered.
const FAULT_SETTLE: Duration = Duration::from_millis(300);

/// Largest request the API accepts (a large ConfigMap fits; etcd's own limit is 1.5 MiB).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// The registry settings a [`Config`] describes.
pub fn registry_config(cfg: &Config) -> registry::RegistryConfig {
    registry::RegistryConfig {
        service_cidr: cfg.service_cluster_ip_range,
        node_ports: cfg.service_node_port_range,
        history: cfg.watch_history,
        watch_buffer: cfg.watch_buffer,
        validation: validation::ValidationOptions { allow_loopback_endpoints: cfg.allow_loopback_endpoints },
    }
}

/// Runs the apiserver until `shutdown` fires.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> Result<()> {
    let store = Arc::new(
        store::RedbStore::open(&cfg.data_dir)
            .map_err(|source| Error::OpenStore { dir: cfg.data_dir.clone(), source })?,
    );
    let listen = |source| Error::Listen { addr: cfg.listen, source };
    let listener = tokio::net::TcpListener::bind(cfg.listen).await.map_err(listen)?;
    let local = listener.local_addr().map_err(listen)?;
    // Upstream's ExternalAddress: the advertised address (or this host's) and the port.
    let external = endpoints::advertise_address(cfg.advertise_address, local)
        .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
    let issuer = Arc::new(token::TokenIssuer::new(
        &cfg.issuer(std::net::SocketAddr::new(external, local.port()).to_string()),
    )?);
    let (registry, writer) =
        registry::Registry::open(store, registry_config(&cfg), shutdown.child_token()).await?;
    let registry = match cfg.enable_pod_identity_webhook {
        true => registry.with_pod_identity(pod_identity::PodIdentityWebhook {
            region: cfg.aws_default_region.clone(),
            sts_regional_endpoints: true,
        }),
        false => registry,
    };
    if !cfg.no_bootstrap {
        bootstrap::run(&registry, local.port()).await?;
        match endpoints::advertise_address(cfg.advertise_address, local) {
            Some(ip) if ip.is_loopback() && !cfg.allow_loopback_endpoints => tracing::info!(
                address = %ip,
                "The kubernetes Service gets no endpoints: the advertise address is loopback, which an EndpointSlice may not name (see --allow-loopback-endpoints)."
            ),
            Some(ip) => {
                tokio::spawn(endpoints::run(registry.clone(), ip, local.port(), shutdown.child_token()));
            }
            None => tracing::warn!(
                "The kubernetes Service gets no endpoints: no --advertise-address and no default route to take one from."
            ),
        }
    }

    // Component faults: the listener follows the gate (a stop closes it, a pause holds
    // connections); /healthz, /readyz and /fault answer on a port of their own.
    let faults =
        netlab_faults::Faults::new(netlab_faults::Me::component(netlab_faults::Component::Apiserver))
            .settle(FAULT_SETTLE);
    let own = match local.ip() {
        ip if ip.is_unspecified() && ip.is_ipv6() => format!("http://[::1]:{}", local.port()),
        ip if ip.is_unspecified() => format!("http://127.0.0.1:{}", local.port()),
        _ => format!("http://{local}"),
    };
    faults::spawn(registry.clone(), faults.clone(), &own, shutdown.child_token());
    let probes = netlab_health::Health::new();
    probes.set_ready(true);
    netlab_health::serve_or_warn(
        cfg.healthz_bind_address,
        faults.guard(probes.routes()),
        shutdown.child_token(),
    )
    .await;
    let listener = faults.listener(listener).map_err(listen)?.nodelay();

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ApiServerServer<server::Service>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(netlab_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let http = http::router(registry.clone(), issuer.clone());
    let api = ApiServerServer::new(server::Service::new(registry, issuer, shutdown.child_token()))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(usize::MAX);

    tracing::info!(addr = %local, data_dir = %cfg.data_dir.display(), service_cidr = %cfg.service_cluster_ip_range, "Serving.");
    // One port, as kube-apiserver's: gRPC services by their paths, the rest over HTTP/1.1 or h2c.
    let routes = tonic::service::Routes::from(http)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(api)
        .prepare();
    let serve = tonic::transport::Server::builder()
        .accept_http1(true)
        // A gRPC call's span is named for its method; a REST request's for its audit verb and
        // resource (`create services`), as the real apiserver's traces name them.
        .trace_fn(|r| {
            let grpc = r
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
            if grpc {
                netlab_telemetry::propagation::grpc_server_span(r)
            } else {
                rest::span::http_server_span(r)
            }
        })
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            // Without TCP_NODELAY (set by the listener), Nagle's algorithm meets the client's
            // delayed ACK and small responses wait ~40 ms.
            listener.into_incoming(),
            shutdown.clone().cancelled_owned(),
        );
    // Graceful shutdown waits for every connection to close, but clients keep their HTTP/2
    // connections open and reconnect: after SIGTERM, give in-flight calls a grace period, then go.
    let grace = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = serve => served?,
        _ = grace => tracing::info!(grace = ?SHUTDOWN_GRACE, "Clients still connected after the grace period; stopping."),
    }
    shutdown.cancel();
    let _ = writer.await;
    tracing::info!("Stopped.");
    Ok(())
}
