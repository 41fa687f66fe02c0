//! The service-account token issuer: the `serviceaccounts/token` subresource (TokenRequest) and
//! the OpenID Connect documents that let anyone outside the cluster verify what it signs.
//!
//! This is the half of IRSA that lives in the cluster (seed question on how a pod gets AWS
//! credentials): the kubelet, `kubectl create token` and `netlab create token` ask for a token
//! bound to a ServiceAccount and an audience; AWS STS fetches the issuer's JWKS and checks the
//! token's RS256 signature before it hands out a role session. Upstream's pieces, followed here:
//! `pkg/registry/core/serviceaccount/storage/token.go` (defaults, the max-expiration cap, the bound
//! object), `pkg/apis/authentication/validation` (the 10-minute floor and 2^32 s ceiling, with
//! their texts) and `pkg/serviceaccount/openidmetadata.go` (the documents).

use std::{path::PathBuf, sync::Arc, time::Duration};

use k8s_openapi::{
    api::authentication::v1::{TokenRequest, TokenRequestSpec, TokenRequestStatus},
    apimachinery::pkg::apis::meta::v1::Time,
};
use netlab_oidc::{Discovery, Jwks, ObjectRef, ServiceAccountClaims, SigningKey};
use netlab_proto::apiserver::v1::Resource;
use serde_json::Value;

use crate::{
    error::{Error, Result},
    object,
    registry::Registry,
    validation::FieldError,
};

/// kubeadm's `--service-account-issuer`.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// A TokenRequest's default lifetime (`spec.expirationSeconds`), as the type's defaulting sets it.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 60 * 60;

/// The shortest lifetime a TokenRequest may ask for (`MinTokenAgeSec`).
pub const MIN_EXPIRATION_SECONDS: i64 = 10 * 60;

/// The qualified kind an invalid TokenRequest's message names.
const KIND: &str = "TokenRequest.authentication.k8s.io";

/// The issuer's settings (kube-apiserver's `--service-account-*` and `--api-audiences` flags).
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// `--service-account-issuer`: the `iss` of every token, and the discovery document's issuer.
    pub issuer: String,
    /// `--service-account-signing-key-file`: created (RSA 2048, PKCS#1 PEM, mode 0600) when
    /// missing, as kubeadm creates `sa.key`.
    pub signing_key_file: PathBuf,
    /// `--service-account-jwks-uri`; empty: `https://<external address>/openid/v1/jwks`.
    pub jwks_uri: Option<String>,
    /// The apiserver's `host:port` as others reach it (upstream's `ExternalAddress`).
    pub external_address: String,
    /// `--api-audiences`; empty: the issuer.
    pub api_audiences: Vec<String>,
    /// `--service-account-max-token-expiration`: longer requests are cut to it.
    pub max_expiration: Option<Duration>,
}

// === impl IssuerConfig ===

impl IssuerConfig {
    /// kubeadm's issuer and the flags' defaults, with the key kept in `dir` (`sa.key`) and the
    /// apiserver reached at `external_address`.
    pub fn defaults_in(dir: &std::path::Path, external_address: &str) -> Self {
        Self {
            issuer: DEFAULT_ISSUER.into(),
            signing_key_file: dir.join("sa.key"),
            jwks_uri: None,
            external_address: external_address.into(),
            api_audiences: Vec::new(),
            max_expiration: None,
        }
    }
}

/// Signs tokens and serves the documents that verify them.
pub struct TokenIssuer {
    key: SigningKey,
    issuer: String,
    api_audiences: Vec<String>,
    max_expiration_seconds: Option<i64>,
    /// `None` when the issuer cannot have them (not an https URL): upstream then serves neither.
    documents: Option<Documents>,
}

/// The discovery document and the JWKS, rendered once.
struct Documents {
    discovery: Arc<[u8]>,
    jwks: Arc<[u8]>,
}

// === impl TokenIssuer ===

impl TokenIssuer {
    /// Loads (or creates) the signing key and renders the documents once.
    pub fn new(cfg: &IssuerConfig) -> Result<Self> {
        let key = SigningKey::load_or_generate(&cfg.signing_key_file)
            .map_err(|e| Error::Internal(format!("service account signing key: {e}")))?;
        let documents = match Discovery::for_apiserver(
            &cfg.issuer,
            cfg.jwks_uri.as_deref(),
            &cfg.external_address,
        ) {
            Ok(discovery) => {
                let discovery = serde_json::to_vec(&discovery).map_err(Error::Encode)?;
                let jwks = serde_json::to_vec(&Jwks::from_keys(&[&key])).map_err(Error::Encode)?;
                Some(Documents { discovery: discovery.into(), jwks: jwks.into() })
            }
            Err(e) => {
                tracing::info!(issuer = %cfg.issuer, reason = %e, "Not serving OpenID Connect discovery.");
                None
            }
        };
        let api_audiences =
            if cfg.api_audiences.is_empty() { vec![cfg.issuer.clone()] } else { cfg.api_audiences.clone() };
        tracing::info!(issuer = %cfg.issuer, key_id = key.key_id(), "Issuing service account tokens.");
        Ok(Self {
            key,
            issuer: cfg.issuer.clone(),
            api_audiences,
            max_expiration_seconds: cfg
                .max_expiration
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .filter(|s| *s > 0),
            documents,
        })
    }

    /// The issuer URL (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `/.well-known/openid-configuration`, when served.
    pub fn discovery_json(&self) -> Option<Arc<[u8]>> {
        self.documents.as_ref().map(|d| d.discovery.clone())
    }

    /// `/openid/v1/jwks`, when served.
    pub fn jwks_json(&self) -> Option<Arc<[u8]>> {
        self.documents.as_ref().map(|d| d.jwks.clone())
    }

    /// Answers `POST .../serviceaccounts/NAME/token`: the TokenRequest with its status filled,
    /// and the warnings to send with it.
    pub fn create_token(
        &self,
        registry: &Registry,
        namespace: &str,
        name: &str,
        body: &[u8],
    ) -> Result<(Value, Vec<String>)> {
        let mut request: TokenRequest = if body.iter().all(u8::is_ascii_whitespace) {
            TokenRequest::default()
        } else {
            serde_json::from_slice(body)
                .map_err(|e| Error::BadRequest(format!("decoding TokenRequest: {e}")))?
        };
        // The body's name and namespace, when given, must be the URL's (token.go).
        let mismatch = |field: &str, value: &str, detail: &str| Error::Invalid {
            kind: KIND,
            name: name.to_string(),
            errors: vec![FieldError::invalid(field, value, detail)],
        };
        if let Some(n) = request.metadata.name.as_deref().filter(|n| !n.is_empty() && *n != name) {
            return Err(mismatch("metadata.name", n, "must match the service account name if specified"));
        }
        if let Some(ns) =
            request.metadata.namespace.as_deref().filter(|ns| !ns.is_empty() && *ns != namespace)
        {
            return Err(mismatch(
                "metadata.namespace",
                ns,
                "must match the service account namespace if specified",
            ));
        }
        let account = registry.get(Resource::ServiceAccounts, namespace, name)?;
        let spec = &mut request.spec;
        if spec.audiences.is_empty() {
            spec.audiences = self.api_audiences.clone();
        }
        request.metadata.name = Some(name.to_string());
        request.metadata.namespace = Some(namespace.to_string());
        let now = jiff::Timestamp::now();
        request.metadata.creation_timestamp = Some(Time(now));
        // Validated after the lookup, under an empty name, as upstream does (kubectl prints
        // `TokenRequest.authentication.k8s.io "" is invalid: ...`).
        let expiration = spec.expiration_seconds.unwrap_or(DEFAULT_EXPIRATION_SECONDS);
        let errors = validate(expiration);
        if !errors.is_empty() {
            return Err(Error::Invalid { kind: KIND, name: String::new(), errors });
        }
        let pod = self.bound_pod(registry, namespace, name, spec)?;
        let mut warnings = Vec::new();
        let expiration = match self.max_expiration_seconds {
            Some(max) if expiration > max => {
                warnings
                    .push(format!("requested expiration of {expiration} seconds shortened to {max} seconds"));
                max
            }
            _ => expiration,
        };
        spec.expiration_seconds = Some(expiration);

        let account_ref = ObjectRef::new(name, object::uid(&account.value));
        let claims = ServiceAccountClaims::new(
            &self.issuer,
            spec.audiences.clone(),
            namespace,
            account_ref,
            pod.as_ref().map(|(p, _)| p.clone()),
            now.as_second(),
            expiration,
        )
        .map_err(|e| Error::Internal(format!("failed to generate token: {e}")))?;
        // A pod-bound token names the pod's node too (ServiceAccountTokenPodNodeInfo).
        let claims = match pod.and_then(|(_, node)| node) {
            Some(node) => claims.with_node(node),
            None => claims,
        };
        let token =
            self.key.sign(&claims).map_err(|e| Error::Internal(format!("failed to generate token: {e}")))?;
        let expires = now + jiff::SignedDuration::from_secs(expiration);
        request.status = Some(TokenRequestStatus { token, expiration_timestamp: Time(expires) });
        let mut value = serde_json::to_value(&request).map_err(Error::Encode)?;
        if let Value::Object(map) = &mut value {
            map.insert("apiVersion".into(), "authentication.k8s.io/v1".into());
            map.insert("kind".into(), "TokenRequest".into());
        }
        Ok((value, warnings))
    }

    /// The pod a token is bound to (`spec.boundObjectRef` of kind Pod), checked as upstream
    /// checks it: it must exist, run as this ServiceAccount, and a given uid must be its uid.
    fn bound_pod(
        &self,
        registry: &Registry,
        namespace: &str,
        account: &str,
        spec: &TokenRequestSpec,
    ) -> Result<Option<(ObjectRef, Option<ObjectRef>)>> {
        let Some(bound) = &spec.bound_object_ref else { return Ok(None) };
        let kind = bound.kind.as_deref().unwrap_or_default();
        let api_version = bound.api_version.as_deref().unwrap_or_default();
        let group = api_version.split_once('/').map_or("", |(g, _)| g);
        if !group.is_empty() || kind != "Pod" {
            // Secret and Node bindings need objects the lab does not serve. The type is named
            // as Go's GroupVersionKind.String() writes it.
            let (g, v) = api_version.split_once('/').unwrap_or(("", api_version));
            return Err(Error::BadRequest(format!(
                "cannot bind token to object of type {g}/{v}, Kind={kind}"
            )));
        }
        let pod_name = bound.name.as_deref().unwrap_or_default();
        let pod = registry.get(Resource::Pods, namespace, pod_name)?;
        let runs_as =
            pod.value.pointer("/spec/serviceAccountName").and_then(Value::as_str).unwrap_or_default();
        if runs_as != account {
            return Err(Error::BadRequest(format!(
                "cannot bind token for serviceaccount {account:?} to pod running with different serviceaccount name."
            )));
        }
        let uid = object::uid(&pod.value);
        if let Some(asked) = bound.uid.as_deref().filter(|u| !u.is_empty())
            && asked != uid
        {
            return Err(Error::Unfulfilled {
                on: "Pod".into(),
                name: pod_name.to_string(),
                detail: format!(
                    "the UID in the bound object reference ({asked}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
            });
        }
        let node =
            pod.value.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()).map(|n| {
                let uid =
                    registry.get(Resource::Nodes, "", n).map(|node| object::uid(&node.value).to_string());
                ObjectRef::new(n, uid.unwrap_or_default())
            });
        Ok(Some((ObjectRef::new(pod_name, uid), node)))
    }
}

/// `ValidateTokenRequest`'s lifetime checks.
fn validate(expiration: i64) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if expiration < MIN_EXPIRATION_SECONDS {
        errors.push(FieldError::invalid(
            "spec.expirationSeconds",
            expiration,
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > 1 << 32 {
        errors.push(FieldError::invalid(
            "spec.expirationSeconds",
            expiration,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    errors
}

#[cfg(test)]
mod tests;
