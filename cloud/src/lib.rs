//! netlab's cloud: the world outside the cluster, reached over real protocols. This first part
//! serves the public image registry (the OCI distribution API, read side, over a catalogue of
//! images whose configs select the lab's built-in apps), the upstream DNS resolver that the
//! cluster DNS forwards to, and AWS ([`aws`]: IAM, STS, EC2 and ECR on one signed endpoint).
//!
//! # Layout
//! - [`config`]: flags. [`error`]: errors.
//! - [`registry`]: the image store ([`registry::catalog`], [`registry::image`],
//!   [`registry::tar`]), its HTTP edge ([`registry::http`]) and the RegistryChaos faults it
//!   enforces ([`registry::faults`], [`registry::reset`]) when given `--apiserver`.
//! - [`aws`]: the AWS endpoint and the account behind it.
//! - [`upstream`]: the DNS server edge; [`upstream::zone`]: the outside world's records;
//!   [`upstream::faults`]: UpstreamDNSChaos, followed when `--apiserver` is given.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub mod aws;
pub mod config;
pub mod error;
pub mod registry;
pub mod upstream;

pub use config::Config;
pub use error::{Error, Result};

/// Starts the registry, the upstream resolver and the health endpoints; returns when
/// `shutdown` fires (or a server fails).
pub async fn run(cfg: Config, shutdown: CancellationToken) -> Result<()> {
    let health = netlab_health::Health::new();
    let component = netlab_faults::Faults::new(netlab_faults::Me::component(netlab_faults::Component::Cloud));
    netlab_health::serve_or_warn(
        cfg.healthz_bind_address,
        component.guard(health.routes()),
        shutdown.child_token(),
    )
    .await;

    // The AWS account: loaded from the data dir, or made (admin user, VPC, the nodes as
    // instances) and kept there before anyone is told the endpoint is up.
    let now = jiff::Timestamp::now();
    let ec2_config = aws_ec2_config(&cfg.region, &cfg.ec2_subnets);
    let mut account =
        aws::Account::load_or_bootstrap(cfg.data_dir.as_deref(), &ec2_config, now).map_err(Error::Aws)?;
    let launched = account.ensure_instances(&cfg.ec2_instances, now).map_err(Error::Aws)?;
    if let Some(dir) = &cfg.data_dir {
        account.save(dir).map_err(Error::Aws)?;
    }
    let instances = account.ec2.instances.len();
    let aws = Arc::new(aws::state::Shared::new(account, cfg.data_dir.clone()));
    let aws_listener = tokio::net::TcpListener::bind(cfg.aws_listen).await.map_err(|source| Error::Bind {
        what: "AWS endpoint",
        addr: cfg.aws_listen,
        source,
    })?;
    tracing::info!(addr = %aws_listener.local_addr().map_err(Error::AwsServe)?, instances, launched, "Serving the AWS endpoint (IAM, STS, EC2, ECR).");
    let aws_app = aws::endpoint::router(
        aws.clone(),
        Arc::new(aws::web_identity::IssuerKeys::new(cfg.apiserver.clone())),
    )
    .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let aws_shutdown = shutdown.child_token();
    tokio::spawn(async move {
        if let Err(e) =
            axum::serve(aws_listener, aws_app).with_graceful_shutdown(aws_shutdown.cancelled_owned()).await
        {
            tracing::error!(error = %e, "The AWS endpoint stopped.");
        }
    });

    // IMDS: which instance asks is found from the node objects' addresses.
    let imds_listener = tokio::net::TcpListener::bind(cfg.imds_listen)
        .await
        .map_err(|source| Error::Bind { what: "IMDS", addr: cfg.imds_listen, source })?;
    let node_cache = cfg.apiserver.as_ref().map(|url| {
        let client = netlab_client::Client::new(url).map_err(Error::Apiserver)?;
        let (cache, _changes) = netlab_client::reflector::reflector::<k8s_openapi::api::core::v1::Node>(
            client,
            netlab_client::ListParams::default(),
            shutdown.child_token(),
        );
        Ok::<_, Error>(cache)
    });
    let node_cache = node_cache.transpose()?;
    let imds = Arc::new(aws::imds::Imds::new(aws.clone(), node_cache));
    tracing::info!(addr = %imds_listener.local_addr().map_err(Error::AwsServe)?, "Serving IMDS.");
    let imds_app = aws::imds::router(imds).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let imds_shutdown = shutdown.child_token();
    tokio::spawn(async move {
        if let Err(e) =
            axum::serve(imds_listener, imds_app).with_graceful_shutdown(imds_shutdown.cancelled_owned()).await
        {
            tracing::error!(error = %e, "IMDS stopped.");
        }
    });

    let registry = Arc::new(registry::Registry::from_catalog());
    let listener = tokio::net::TcpListener::bind(cfg.registry_listen)
        .await
        .map_err(|source| Error::Bind { what: "registry", addr: cfg.registry_listen, source })?;
    let registry_addr = listener.local_addr().map_err(Error::Registry)?;
    tracing::info!(addr = %registry_addr, repositories = registry.catalog(None, None).items.len(), "Serving the OCI registry.");

    // One client for every fault kind the cloud follows.
    let client = match &cfg.apiserver {
        Some(url) => {
            tracing::info!(apiserver = %url, "Enforcing UpstreamDNSChaos and RegistryChaos.");
            Some(netlab_client::Client::new(url).map_err(Error::Apiserver)?)
        }
        None => None,
    };
    let upstream_faults = Arc::new(upstream::faults::State::default());
    if let Some(client) = &client {
        tokio::spawn(upstream::faults::watch(
            client.clone(),
            upstream_faults.clone(),
            shutdown.child_token(),
        ));
    }
    let dns_addr = upstream::serve(
        upstream::World::new(cfg.advertise_address),
        upstream_faults,
        cfg.dns_listen,
        shutdown.child_token(),
    )
    .await?;
    tracing::info!(addr = %dns_addr, advertise = %cfg.advertise_address, "Serving upstream DNS.");
    health.set_ready(true);

    let faults =
        client.clone().map(|client| registry::faults::RegistryFaults::start(client, shutdown.child_token()));
    // Component faults (ComponentChaos `cloud`) come through the same apiserver.
    if let Some(client) = client {
        component.spawn_watch(client, shutdown.child_token());
    }
    let listener = component.listener(listener).map_err(Error::Registry)?.nodelay();
    // The registry runs on this task; the DNS and health servers stop on their child tokens.
    // Its listener lets a fault reset one request's connection (RegistryChaos `unreachable`).
    // The account's ECR registry host (`<account>.dkr.ecr.<region>.amazonaws.com`) is this
    // registry too, behind ECR's Basic auth.
    let app = registry::http::router_with_ecr(registry, faults, Some(aws.clone()))
        .into_make_service_with_connect_info::<registry::reset::Peer>();
    axum::serve(registry::reset::ResetListener(listener), app)
        .with_graceful_shutdown(shutdown.child_token().cancelled_owned())
        .await
        .map_err(Error::Registry)
}

/// The VPC of `region`: eksctl's layout (192.168.0.0/16, a /19 per zone) in that region's
/// zones, or the `subnets` given (`--ec2-subnets`).
fn aws_ec2_config(region: &str, subnets: &[(String, ipnet::Ipv4Net)]) -> netlab_ec2::Ec2Config {
    let mut config = netlab_ec2::Ec2Config { region: region.to_string(), ..Default::default() };
    for (subnet, zone) in config.subnets.iter_mut().zip(['a', 'b', 'c', 'd', 'e', 'f']) {
        subnet.availability_zone = format!("{region}{zone}");
    }
    if !subnets.is_empty() {
        config.subnets = subnets
            .iter()
            .map(|(zone, cidr)| netlab_ec2::SubnetSpec {
                availability_zone: zone.clone(),
                cidr: *cidr,
                tags: Default::default(),
            })
            .collect();
    }
    config
}
