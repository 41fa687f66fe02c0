//! The kubelet's image credential provider for ECR, as a separate binary the kubelet execs
//! (`ecr-credential-provider`, the name cloud-provider-aws gives it), and the exec-plugin
//! protocol both sides speak.
//!
//! Why a separate process: since 1.27 the kubelet has no built-in cloud credentials; it runs a
//! plugin per `CredentialProviderConfig` provider whose `matchImages` match the image, with its
//! own (host) environment. The plugin's credential chain therefore ends at IMDS with the node
//! role, so the node role, not a pod's IRSA role, decides whether an ECR pull is allowed.
//!
//! # Layout
//! - [`protocol`]: `CredentialProviderRequest` / `CredentialProviderResponse` and Go durations.
//! - [`registry`]: the image's host, ECR's private host pattern and its region.
//! - [`credentials`]: the SDK's default chain for a host process (environment keys, IMDS).
//! - [`ecr`]: GetAuthorizationToken, SigV4-signed, with the SDK's error texts.
//! - [`http`]: the client (spans with `traceparent`, Go's send-failure texts).
//! - [`sigv4`]: SigV4 signing of a whole-body request (also used by the pod toolbox's `aws`).
//! - [`plugin`]: the request → response step, and the cache duration.
//! - [`klog`]: the log lines the plugin writes to stderr.

pub mod credentials;
pub mod ecr;
pub mod http;
pub mod klog;
pub mod plugin;
pub mod protocol;
pub mod registry;
pub mod sigv4;

pub use plugin::{PluginError, get_credentials};

/// The plugin binary's name, which is also its provider name in the config.
pub const BINARY: &str = "ecr-credential-provider";
/// The image patterns of the EKS AMI's config: ECR's private hosts in every partition.
pub const MATCH_IMAGES: &[&str] = &[
    "*.dkr.ecr.*.amazonaws.com",
    "*.dkr.ecr.*.amazonaws.com.cn",
    "*.dkr.ecr-fips.*.amazonaws.com",
    "*.dkr.ecr.*.c2s.ic.gov",
    "*.dkr.ecr.*.sc2s.sgov.gov",
    "*.dkr.ecr.*.cloud.adc-e.uk",
    "*.dkr.ecr.*.csp.hci.ic.gov",
];
/// The config the image carries at the EKS AMI's path,
/// `/etc/eks/image-credential-provider/config.json`: [`config`] for compose's cloud.
pub const IMAGE_CONFIG: &str = include_str!("../ecr-credential-provider-config.json");

/// The kubelet's CredentialProviderConfig for this plugin as the EKS AMI ships it
/// (awslabs/amazon-eks-ami `ecr-credential-provider-config.json`: [`MATCH_IMAGES`], a 12 h
/// default cache), plus one lab setting in the provider's `env`: `AWS_ENDPOINT_URL_ECR`, the
/// SDK's variable for where the ECR API is, set to the cloud's AWS endpoint, because the lab's
/// `api.ecr.<region>.amazonaws.com` is not a name the node resolves.
pub fn config(ecr_endpoint: &str) -> String {
    let config = serde_json::json!({
        "apiVersion": "kubelet.config.k8s.io/v1",
        "kind": "CredentialProviderConfig",
        "providers": [{
            "name": BINARY,
            "matchImages": MATCH_IMAGES,
            "defaultCacheDuration": "12h",
            "apiVersion": protocol::API_VERSION,
            "env": [{ "name": "AWS_ENDPOINT_URL_ECR", "value": ecr_endpoint }],
        }],
    });
    // A JSON value always pretty-prints.
    serde_json::to_string_pretty(&config).expect("JSON prints") + "\n"
}
pub use protocol::{AuthConfig, CacheKeyType, CredentialProviderRequest, CredentialProviderResponse};
