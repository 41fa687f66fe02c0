//! The OIDC discovery document kube-apiserver serves at `/.well-known/openid-configuration`
//! (k8s.io/kubernetes `pkg/serviceaccount/openidmetadata.go`), which is how a relying party such
//! as AWS STS finds the JWKS that verifies the cluster's tokens.
//!
//! Upstream serves a minimal subset of OIDC provider metadata: `issuer`, `jwks_uri`,
//! `response_types_supported: ["id_token"]` (Kubernetes only produces ID tokens),
//! `subject_types_supported: ["public"]` and `id_token_signing_alg_values_supported` (the sorted
//! algorithms of its keys: `["RS256"]` for RSA keys). No `authorization_endpoint`: relying
//! parties that only validate tokens do not need one.
//!
//! **Where `jwks_uri` comes from.** With `--service-account-jwks-uri` set, upstream uses it (it
//! must be https). Without it, upstream does *not* derive it from the issuer: it builds
//! `https://<external address>/openid/v1/jwks` from the API server's external address
//! (`--external-hostname`, else the advertise address, with the secure port). So a cluster
//! whose issuer is `https://kubernetes.default.svc.cluster.local` advertises its keys at, say,
//! `https://172.20.0.3:6443/openid/v1/jwks`. [`default_jwks_uri`] and
//! [`Discovery::for_apiserver`] follow that, including upstream's refusals (issuer not https,
//! with a query or fragment; jwks_uri not https), worded as upstream words them. Upstream
//! logs such an error and serves no discovery endpoints rather than failing to start.

use serde::{Deserialize, Serialize};

use crate::jws::RS256;

/// The path of the discovery document.
pub const OPENID_CONFIG_PATH: &str = "/.well-known/openid-configuration";

/// The path of the key set.
pub const JWKS_PATH: &str = "/openid/v1/jwks";

/// The OIDC discovery document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// The issuer URL, the tokens' `iss`.
    pub issuer: String,
    /// Where the key set is.
    pub jwks_uri: String,
    /// `["id_token"]`.
    pub response_types_supported: Vec<String>,
    /// `["public"]`.
    pub subject_types_supported: Vec<String>,
    /// `["RS256"]`.
    pub id_token_signing_alg_values_supported: Vec<String>,
}

/// Why upstream would refuse to serve discovery for this configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// No issuer.
    #[error("empty issuer URL")]
    EmptyIssuer,
    /// Neither a jwks_uri nor an external address to build one from.
    #[error("either the JWKS URI or the default external address, or both, must be set")]
    NoJwksSource,
    /// The issuer is not an https URL.
    #[error("issuer URL must use https scheme, got: {0}")]
    IssuerNotHttps(String),
    /// The issuer has a query.
    #[error("issuer URL may not include a query, got: {0}")]
    IssuerQuery(String),
    /// The issuer has a fragment.
    #[error("issuer URL may not include a fragment, got: {0}")]
    IssuerFragment(String),
    /// The configured jwks_uri is not https.
    #[error("jwksURI requires https scheme, parsed as: {0}")]
    JwksUriNotHttps(String),
    /// The external address does not make a URL of the form `https://<address>/openid/v1/jwks`.
    #[error(
        "attempted to build jwks_uri from external address {address}, but could not construct a valid \
         URL. Error: {reason}"
    )]
    BadExternalAddress {
        /// The external address.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Discovery {
    /// The document for `issuer` with keys at `jwks_uri`, RS256 keys only.
    pub fn new(issuer: impl Into<String>, jwks_uri: impl Into<String>) -> Self {
        Discovery {
            issuer: issuer.into(),
            jwks_uri: jwks_uri.into(),
            response_types_supported: vec!["id_token".to_string()],
            subject_types_supported: vec!["public".to_string()],
            id_token_signing_alg_values_supported: vec![RS256.to_string()],
        }
    }

    /// The document kube-apiserver would serve for `--service-account-issuer` = `issuer`,
    /// `--service-account-jwks-uri` = `jwks_uri` (`None` or empty when unset) and the server's
    /// external address `host:port`, with upstream's checks (`NewOpenIDMetadataProvider`).
    pub fn for_apiserver(
        issuer: &str,
        jwks_uri: Option<&str>,
        external_address: &str,
    ) -> Result<Self, DiscoveryError> {
        let jwks_uri = jwks_uri.filter(|u| !u.is_empty());
        if issuer.is_empty() {
            return Err(DiscoveryError::EmptyIssuer);
        }
        if jwks_uri.is_none() && external_address.is_empty() {
            return Err(DiscoveryError::NoJwksSource);
        }
        if !has_https_scheme(issuer) {
            return Err(DiscoveryError::IssuerNotHttps(issuer.to_string()));
        }
        let (before_fragment, fragment) = issuer.split_once('#').unwrap_or((issuer, ""));
        if before_fragment.split_once('?').is_some_and(|(_, q)| !q.is_empty()) {
            return Err(DiscoveryError::IssuerQuery(issuer.to_string()));
        }
        if !fragment.is_empty() {
            return Err(DiscoveryError::IssuerFragment(issuer.to_string()));
        }
        let jwks_uri = match jwks_uri {
            Some(uri) if has_https_scheme(uri) => uri.to_string(),
            Some(uri) => return Err(DiscoveryError::JwksUriNotHttps(uri.to_string())),
            None => {
                if let Some(bad) =
                    external_address.chars().find(|c| "/?#@\\".contains(*c) || c.is_whitespace())
                {
                    let built = default_jwks_uri(external_address);
                    return Err(DiscoveryError::BadExternalAddress {
                        address: external_address.to_string(),
                        reason: format!("{bad:?} in a host:port makes {built} parse as another URL"),
                    });
                }
                default_jwks_uri(external_address)
            }
        };
        Ok(Discovery::new(issuer, jwks_uri))
    }
}

/// Upstream's jwks_uri when `--service-account-jwks-uri` is unset:
/// `https://<external address>/openid/v1/jwks`, the external address being the API server's
/// `host:port` (not the issuer).
pub fn default_jwks_uri(external_address: &str) -> String {
    format!("https://{external_address}{JWKS_PATH}")
}

/// Whether `url` starts with the `https` scheme (case-insensitive, as Go's url.Parse
/// lower-cases schemes) followed by `:`.
fn has_https_scheme(url: &str) -> bool {
    url.split_once(':').is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_has_upstream_members_and_values() {
        let d = Discovery::new(
            "https://kubernetes.default.svc.cluster.local",
            "https://10.0.0.1:6443/openid/v1/jwks",
        );
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"issuer":"https://kubernetes.default.svc.cluster.local","jwks_uri":"https://10.0.0.1:6443/openid/v1/jwks","response_types_supported":["id_token"],"subject_types_supported":["public"],"id_token_signing_alg_values_supported":["RS256"]}"#
        );
    }

    #[test]
    fn jwks_uri_defaults_to_the_external_address_not_the_issuer() {
        let d =
            Discovery::for_apiserver("https://kubernetes.default.svc.cluster.local", None, "172.20.0.3:6443")
                .unwrap();
        assert_eq!(d.jwks_uri, "https://172.20.0.3:6443/openid/v1/jwks");
        let d = Discovery::for_apiserver("https://issuer.example", Some(""), "[::1]:6443").unwrap();
        assert_eq!(d.jwks_uri, "https://[::1]:6443/openid/v1/jwks");
        let d = Discovery::for_apiserver("https://issuer.example", Some("https://keys.example/jwks"), "")
            .unwrap();
        assert_eq!(d.jwks_uri, "https://keys.example/jwks");
    }

    #[test]
    fn upstream_refusals() {
        use DiscoveryError::*;
        let e = |i: &str, j: Option<&str>, a: &str| Discovery::for_apiserver(i, j, a).unwrap_err();
        assert_eq!(e("", None, "h:1"), EmptyIssuer);
        assert_eq!(e("https://i", None, ""), NoJwksSource);
        assert_eq!(e("http://i", None, "h:1"), IssuerNotHttps("http://i".into()));
        assert_eq!(
            e("kubernetes/serviceaccount", None, "h:1").to_string(),
            "issuer URL must use https scheme, got: kubernetes/serviceaccount"
        );
        assert_eq!(e("https://i/?a=b", None, "h:1"), IssuerQuery("https://i/?a=b".into()));
        assert_eq!(e("https://i/#x", None, "h:1"), IssuerFragment("https://i/#x".into()));
        assert_eq!(e("https://i", Some("http://k/jwks"), ""), JwksUriNotHttps("http://k/jwks".into()));
        assert!(matches!(e("https://i", None, "https://h:1"), BadExternalAddress { .. }));
        // A bare "?" or "#" is an empty query / fragment to Go's url.Parse, and allowed.
        assert!(Discovery::for_apiserver("https://i/?", None, "h:1").is_ok());
        assert!(Discovery::for_apiserver("HTTPS://i", None, "h:1").is_ok());
    }
}
