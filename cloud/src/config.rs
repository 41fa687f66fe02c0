//! The cloud's flags.

use std::net::{Ipv4Addr, SocketAddr};

/// Where the OCI registry listens (the port Docker's `registry:2` uses).
pub const DEFAULT_REGISTRY_LISTEN: &str = "0.0.0.0:5000";
/// Where the upstream DNS resolver listens, UDP and TCP.
pub const DEFAULT_DNS_LISTEN: &str = "0.0.0.0:53";
/// Where /healthz and /readyz are served: clear of the dns process's 8080/8181 and the
/// Kubernetes components' 1025x ports when everything runs on one machine.
pub const DEFAULT_HEALTHZ_BIND_ADDRESS: &str = "0.0.0.0:10260";
/// Where the AWS endpoint (IAM, STS, EC2, ECR on one port) listens: LocalStack's port, which
/// AWS tooling pointed at a local cloud expects.
pub const DEFAULT_AWS_LISTEN: &str = "0.0.0.0:4566";
/// Where IMDS listens: the port of AWS's own IMDS mock (amazon-ec2-metadata-mock); nodes send
/// what their pods and processes address to 169.254.169.254:80 here.
pub const DEFAULT_IMDS_LISTEN: &str = "0.0.0.0:1338";
/// The region the account's resources live in.
pub const DEFAULT_REGION: &str = "us-east-1";
/// The address the outside world's AWS and registry names resolve to.
pub const DEFAULT_ADVERTISE_ADDRESS: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// netlab-cloud: the world outside the cluster.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "netlab-cloud", version, about)]
pub struct Config {
    /// Address of the OCI distribution API (image registry).
    #[arg(long, env = "NETLAB_CLOUD_REGISTRY_LISTEN", default_value = DEFAULT_REGISTRY_LISTEN)]
    pub registry_listen: SocketAddr,

    /// Address of the upstream DNS resolver (UDP and TCP).
    #[arg(long, env = "NETLAB_CLOUD_DNS_LISTEN", default_value = DEFAULT_DNS_LISTEN)]
    pub dns_listen: SocketAddr,

    /// This process's address as others reach it: the AWS endpoint names
    /// (`ec2.us-east-1.amazonaws.com`, `<account>.dkr.ecr.us-east-1.amazonaws.com`, ...) and the
    /// public registries' hosts resolve to it.
    #[arg(long, env = "NETLAB_CLOUD_ADVERTISE_ADDRESS", default_value_t = DEFAULT_ADVERTISE_ADDRESS)]
    pub advertise_address: Ipv4Addr,

    /// Address of the AWS endpoint: IAM, STS, EC2 and ECR, routed by each request's SigV4
    /// credential scope (`aws --endpoint-url http://ADDR ...`).
    #[arg(long, env = "NETLAB_CLOUD_AWS_LISTEN", default_value = DEFAULT_AWS_LISTEN)]
    pub aws_listen: SocketAddr,
    /// Address of IMDS, the instance metadata service of the nodes as EC2 instances.
    #[arg(long, env = "NETLAB_CLOUD_IMDS_LISTEN", default_value = DEFAULT_IMDS_LISTEN)]
    pub imds_listen: SocketAddr,
    /// The AWS region of the account's VPC, subnets and instances.
    #[arg(long, env = "NETLAB_CLOUD_REGION", default_value = DEFAULT_REGION)]
    pub region: String,
    /// The cluster's nodes as EC2 instances of the account's VPC, `NAME=TYPE` comma-separated
    /// (`node-1=t3.medium,node-2=m5.large`): launched once, tagged `Name=NAME`, kept across
    /// restarts.
    #[arg(long, env = "NETLAB_CLOUD_EC2_INSTANCES", value_delimiter = ',', value_parser = parse_instance)]
    pub ec2_instances: Vec<(String, String)>,
    /// The VPC's subnets when the account is first made, `ZONE=CIDR` comma-separated
    /// (`us-east-1a=192.168.0.0/28,us-east-1b=192.168.32.0/19`), inside the VPC's 192.168.0.0/16;
    /// default eksctl's, a /19 per zone. A small one lets a lab run it out of addresses
    /// (`InsufficientFreeAddressesInSubnet`). An account kept in `--data-dir` keeps its subnets.
    #[arg(long, env = "NETLAB_CLOUD_EC2_SUBNETS", value_delimiter = ',', value_parser = parse_subnet)]
    pub ec2_subnets: Vec<(String, ipnet::Ipv4Net)>,
    /// Where the AWS account (IAM, EC2, ECR) is kept as `aws.json`. Unset: in memory, lost on
    /// restart.
    #[arg(long, env = "NETLAB_CLOUD_DATA_DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// Where /healthz and /readyz are served.
    #[arg(long, env = "NETLAB_CLOUD_HEALTHZ_BIND_ADDRESS", default_value = DEFAULT_HEALTHZ_BIND_ADDRESS)]
    pub healthz_bind_address: SocketAddr,

    /// The apiserver whose fault objects (UpstreamDNSChaos, RegistryChaos) the cloud follows.
    /// Unset: no faults, the outside world as it is (a plain registry and resolver).
    #[arg(long, env = "NETLAB_CLOUD_APISERVER")]
    pub apiserver: Option<String>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub telemetry: netlab_telemetry::Args,
}

/// `ZONE=CIDR`, an IPv4 CIDR (`us-east-1a=192.168.0.0/28`).
fn parse_subnet(s: &str) -> Result<(String, ipnet::Ipv4Net), String> {
    let (zone, cidr) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected ZONE=CIDR, e.g. us-east-1a=192.168.0.0/28"))?;
    if zone.is_empty() {
        return Err(format!("{s:?}: the availability zone is empty"));
    }
    let cidr: ipnet::Ipv4Net =
        cidr.parse().map_err(|e| format!("{s:?}: {cidr:?} is not an IPv4 CIDR: {e}"))?;
    Ok((zone.to_string(), cidr))
}

/// `NAME=TYPE`, the type one AWS has (`t3.medium`).
fn parse_instance(s: &str) -> Result<(String, String), String> {
    let (name, ty) =
        s.split_once('=').ok_or_else(|| format!("{s:?}: expected NAME=TYPE, e.g. node-1=t3.medium"))?;
    if name.is_empty() {
        return Err(format!("{s:?}: the instance name is empty"));
    }
    if netlab_ec2::instance_type::lookup(ty).is_none() {
        return Err(format!("{s:?}: unknown instance type {ty:?} (t3.medium, m5.large, c5.xlarge, ...)"));
    }
    Ok((name.to_string(), ty.to_string()))
}
