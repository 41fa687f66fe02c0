//! The apiserver's flags, named as kube-apiserver names them where it has them.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
};

use ipnet::Ipv4Net;

/// Default listen address: kube-apiserver's secure port.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:6443";
/// Default address of `/healthz`, `/readyz` and `/fault`. kube-apiserver answers health checks on
/// its secure port; the lab adds a port of its own because a stopped apiserver's port refuses
/// connections, and this one must still answer (`DELETE /fault` lifts the stop).
pub const DEFAULT_HEALTHZ_BIND_ADDRESS: &str = "127.0.0.1:6444";
/// Default data directory for the embedded store.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/netlab/apiserver";
/// kubeadm's default Service CIDR.
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
/// kube-apiserver's default NodePort range.
pub const DEFAULT_NODE_PORT_RANGE: &str = "30000-32767";
/// Events kept for watches that resume from a resourceVersion.
pub const DEFAULT_WATCH_HISTORY: usize = 100_000;
/// Events a watcher may lag before it must relist.
pub const DEFAULT_WATCH_BUFFER: usize = 16_384;

/// netlab-apiserver: the lab's kube-apiserver.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "netlab-apiserver", version, about)]
pub struct Config {
    /// Address to serve the gRPC API on.
    #[arg(long, env = "NETLAB_APISERVER_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Where `/healthz`, `/readyz` and `/fault` are served (a port of the lab's own, see
    /// [`DEFAULT_HEALTHZ_BIND_ADDRESS`]).
    #[arg(long, env = "NETLAB_APISERVER_HEALTHZ_BIND_ADDRESS", default_value = DEFAULT_HEALTHZ_BIND_ADDRESS)]
    pub healthz_bind_address: SocketAddr,

    /// The address published as the `kubernetes` Service's endpoint (kube-apiserver's flag).
    /// Default: the `--listen` address, or when that is 0.0.0.0, the default route's interface.
    #[arg(long, env = "NETLAB_APISERVER_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<IpAddr>,

    /// Directory of the embedded store.
    #[arg(long, env = "NETLAB_APISERVER_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,

    /// CIDR from which Service ClusterIPs are allocated (IPv4).
    #[arg(long, env = "NETLAB_APISERVER_SERVICE_CLUSTER_IP_RANGE", default_value = DEFAULT_SERVICE_CIDR)]
    pub service_cluster_ip_range: Ipv4Net,

    /// Port range for NodePort Services, `first-last`.
    #[arg(long, env = "NETLAB_APISERVER_SERVICE_NODE_PORT_RANGE", default_value = DEFAULT_NODE_PORT_RANGE, value_parser = parse_port_range)]
    pub service_node_port_range: (u16, u16),

    /// Number of events kept so that watches can resume; older resourceVersions are "too old".
    #[arg(long, env = "NETLAB_APISERVER_WATCH_HISTORY", default_value_t = DEFAULT_WATCH_HISTORY)]
    pub watch_history: usize,

    /// Number of events a watcher may fall behind before it is told to relist.
    #[arg(long, env = "NETLAB_APISERVER_WATCH_BUFFER", default_value_t = DEFAULT_WATCH_BUFFER)]
    pub watch_buffer: usize,

    /// Do not create the system objects (namespaces, `kubernetes` and `kube-dns` Services,
    /// the coredns ConfigMap) at start.
    #[arg(long, env = "NETLAB_APISERVER_NO_BOOTSTRAP")]
    pub no_bootstrap: bool,

    /// Lab exception for `netlab up` (native mode), where every node and the dns process live on
    /// 127.0.0.0/8: EndpointSlice addresses may be loopback. A real apiserver refuses them
    /// ("may not be in the loopback range"), and so does netlab without this flag.
    #[arg(long, env = "NETLAB_APISERVER_ALLOW_LOOPBACK_ENDPOINTS")]
    pub allow_loopback_endpoints: bool,

    /// The `iss` of service-account tokens and the OpenID Connect issuer whose discovery document
    /// and keys are served at `/.well-known/openid-configuration` and `/openid/v1/jwks`.
    #[arg(long, env = "NETLAB_APISERVER_SERVICE_ACCOUNT_ISSUER", default_value = crate::token::DEFAULT_ISSUER)]
    pub service_account_issuer: String,

    /// PEM RSA private key that signs service-account tokens. Default: `sa.key` in the data
    /// directory, created on first start as kubeadm creates `/etc/kubernetes/pki/sa.key`.
    #[arg(long, env = "NETLAB_APISERVER_SERVICE_ACCOUNT_SIGNING_KEY_FILE")]
    pub service_account_signing_key_file: Option<PathBuf>,

    /// The `jwks_uri` the discovery document names. Default:
    /// `https://<advertise address>:<port>/openid/v1/jwks`.
    #[arg(long, env = "NETLAB_APISERVER_SERVICE_ACCOUNT_JWKS_URI")]
    pub service_account_jwks_uri: Option<String>,

    /// Audiences a TokenRequest gets when it names none (comma-separated). Default: the issuer.
    #[arg(long, env = "NETLAB_APISERVER_API_AUDIENCES", value_delimiter = ',')]
    pub api_audiences: Vec<String>,

    /// The longest token lifetime handed out (a Go duration, e.g. `24h`); longer requests are
    /// shortened with a warning. Default: no limit.
    #[arg(long, env = "NETLAB_APISERVER_SERVICE_ACCOUNT_MAX_TOKEN_EXPIRATION", value_parser = netlab_config::parse_duration)]
    pub service_account_max_token_expiration: Option<std::time::Duration>,

    /// Run EKS's pod identity webhook in admission: pods of a ServiceAccount annotated
    /// `eks.amazonaws.com/role-arn` get IRSA's environment and projected token (EKS runs it on
    /// its control plane; a kubeadm cluster has none).
    #[arg(long, env = "NETLAB_APISERVER_ENABLE_POD_IDENTITY_WEBHOOK")]
    pub enable_pod_identity_webhook: bool,

    /// The region the pod identity webhook writes as AWS_REGION (the webhook's own flag).
    #[arg(long, env = "NETLAB_APISERVER_AWS_DEFAULT_REGION", default_value = "us-east-1")]
    pub aws_default_region: String,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub telemetry: netlab_telemetry::Args,
}

/// A `--service-node-port-range` that is not `first-last` with `1 <= first <= last`; clap prints
/// it as the flag's error.
#[derive(Debug, thiserror::Error)]
pub enum PortRangeError {
    /// No dash.
    #[error("invalid port range {0:?}: expected first-last, e.g. 30000-32767")]
    Format(String),
    /// A bound that is not a port number.
    #[error("invalid port range {range:?}: {source}")]
    Port {
        /// The flag's value.
        range: String,
        /// Why the bound did not parse.
        #[source]
        source: std::num::ParseIntError,
    },
    /// `first` is 0 or above `last`.
    #[error("invalid port range {0:?}: first must be 1..=last")]
    Order(String),
}

// === impl Config ===

impl Config {
    /// The token issuer's settings these flags describe, for an apiserver reached at
    /// `external_address` (`host:port`).
    pub fn issuer(&self, external_address: String) -> crate::token::IssuerConfig {
        crate::token::IssuerConfig {
            issuer: self.service_account_issuer.clone(),
            signing_key_file: self
                .service_account_signing_key_file
                .clone()
                .unwrap_or_else(|| self.data_dir.join("sa.key")),
            jwks_uri: self.service_account_jwks_uri.clone().filter(|u| !u.is_empty()),
            external_address,
            api_audiences: self.api_audiences.iter().filter(|a| !a.is_empty()).cloned().collect(),
            max_expiration: self.service_account_max_token_expiration,
        }
    }
}

fn parse_port_range(s: &str) -> Result<(u16, u16), PortRangeError> {
    let (a, b) = s.split_once('-').ok_or_else(|| PortRangeError::Format(s.to_string()))?;
    let port = |p: &str| {
        p.trim().parse::<u16>().map_err(|source| PortRangeError::Port { range: s.to_string(), source })
    };
    let (first, last) = (port(a)?, port(b)?);
    if first == 0 || last < first {
        return Err(PortRangeError::Order(s.to_string()));
    }
    Ok((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_parses_and_says_what_is_wrong() {
        assert_eq!(parse_port_range("30000-32767").unwrap(), (30000, 32767));
        assert_eq!(parse_port_range(" 80 - 90 ").unwrap(), (80, 90));
        let err = |s| parse_port_range(s).unwrap_err().to_string();
        assert_eq!(err("30000"), "invalid port range \"30000\": expected first-last, e.g. 30000-32767");
        assert_eq!(err("a-90"), "invalid port range \"a-90\": invalid digit found in string");
        assert_eq!(err("90-80"), "invalid port range \"90-80\": first must be 1..=last");
        assert_eq!(err("0-80"), "invalid port range \"0-80\": first must be 1..=last");
        assert!(std::error::Error::source(&parse_port_range("1-x").unwrap_err()).is_some());
    }
}
