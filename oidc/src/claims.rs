//! The claims of a Kubernetes service-account token, shaped as kube-apiserver writes them
//! (k8s.io/kubernetes `pkg/serviceaccount/claims.go`).
//!
//! Upstream builds the payload with go-jose, which merges the public claims (`jwt.Claims`) and
//! the private `kubernetes.io` claim into a map and marshals that, so members come out in sorted
//! order at every level, `aud` is always an array (even with one audience), times are integer
//! seconds, and empty optional parts are left out. [`ServiceAccountClaims`] declares its fields
//! in that sorted order, so serde_json writes the same bytes a real cluster would:
//!
//! ```json
//! {"aud":["sts.amazonaws.com"],"exp":1700003607,"iat":1700000000,
//!  "iss":"https://kubernetes.default.svc.cluster.local","jti":"…",
//!  "kubernetes.io":{"namespace":"payments","pod":{"name":"…","uid":"…"},
//!                   "serviceaccount":{"name":"ledger","uid":"…"}},
//!  "nbf":1700000000,"sub":"system:serviceaccount:payments:ledger"}
//! ```
//!
//! The `jti` is a random UUID (feature ServiceAccountTokenJTI, GA in 1.32); `kubernetes.io.node`
//! is set for pod-bound tokens when the pod's node is known (ServiceAccountTokenPodNodeInfo, GA
//! in 1.32) or for node-bound tokens. The clock is the caller's: `iat` and `nbf` are the given
//! issue time and `exp` is that plus the lifetime, as upstream's `Claims()` computes them.

use serde::{Deserialize, Serialize};

use crate::random::{self, RandomError};

/// A reference to a Kubernetes object by name and UID, as the token records its service
/// account, pod, secret or node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
}

impl ObjectRef {
    /// A reference to the object called `name` with UID `uid`.
    pub fn new(name: impl Into<String>, uid: impl Into<String>) -> Self {
        ObjectRef { name: name.into(), uid: uid.into() }
    }
}

/// The private `kubernetes.io` claim: which service account, and what the token is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    /// The service account's namespace.
    pub namespace: String,
    /// The node the token is bound to, or the bound pod's node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<ObjectRef>,
    /// The pod the token is bound to (projected volume tokens, TokenRequest with a Pod
    /// boundObjectRef).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
    /// The Secret the token is bound to (TokenRequest with a Secret boundObjectRef).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectRef>,
    /// The service account.
    pub serviceaccount: ObjectRef,
    /// When a kubelet-extended token (lifetime stretched to a year for the safe rollout of
    /// bound tokens) should have been refreshed; seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnafter: Option<i64>,
}

/// A service-account token's claims set, members in upstream's (sorted) order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountClaims {
    /// Audiences: the API server's (`--api-audiences`) or those the TokenRequest asked for.
    pub aud: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Issuer: `--service-account-issuer`.
    pub iss: String,
    /// Token id, a random UUID.
    pub jti: String,
    /// The private Kubernetes claim.
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
    /// Not before, seconds since the epoch (the issue time).
    pub nbf: i64,
    /// Subject: `system:serviceaccount:<namespace>:<name>`.
    pub sub: String,
}

/// The username Kubernetes gives a service account, and the token's `sub`:
/// `system:serviceaccount:<namespace>:<name>` (apiserver's `serviceaccount.MakeUsername`).
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

impl ServiceAccountClaims {
    /// The claims kube-apiserver puts in a token for `service_account` in `namespace`, issued
    /// by `issuer` for `audiences` at `issued_at` (seconds since the epoch) and valid for
    /// `expiration_seconds`, bound to `pod` if given. The `jti` is a fresh random UUID; the
    /// only error is the operating system failing to supply randomness for it.
    pub fn new(
        issuer: &str,
        audiences: Vec<String>,
        namespace: &str,
        service_account: ObjectRef,
        pod: Option<ObjectRef>,
        issued_at: i64,
        expiration_seconds: i64,
    ) -> Result<Self, RandomError> {
        Ok(ServiceAccountClaims {
            aud: audiences,
            exp: issued_at.saturating_add(expiration_seconds),
            iat: issued_at,
            iss: issuer.to_string(),
            jti: random::uuid_v4()?,
            sub: service_account_username(namespace, &service_account.name),
            kubernetes: KubernetesClaims {
                namespace: namespace.to_string(),
                node: None,
                pod,
                secret: None,
                serviceaccount: service_account,
                warnafter: None,
            },
            nbf: issued_at,
        })
    }

    /// Records the node: the node of the bound pod, or the node a node-bound token is for.
    pub fn with_node(mut self, node: ObjectRef) -> Self {
        self.kubernetes.node = Some(node);
        self
    }

    /// Binds the token to a Secret instead of (upstream: in place of) a pod.
    pub fn with_secret(mut self, secret: ObjectRef) -> Self {
        self.kubernetes.secret = Some(secret);
        self
    }

    /// Sets `warnafter` to `issued_at + seconds`, as upstream does when it extends a projected
    /// token's lifetime (`--service-account-extend-token-expiration`): the token says when the
    /// kubelet should have refreshed it.
    pub fn with_warn_after(mut self, seconds: i64) -> Self {
        self.kubernetes.warnafter = Some(self.iat.saturating_add(seconds));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_like_upstream() {
        let mut claims = ServiceAccountClaims::new(
            "https://kubernetes.default.svc.cluster.local",
            vec!["https://kubernetes.default.svc.cluster.local".into()],
            "default",
            ObjectRef::new("default", "78fd6341-2052-49f6-9ebd-a1f491280b04"),
            None,
            1661168776,
            3600,
        )
        .unwrap();
        claims.jti = "J".into();
        // The payload of `kubectl create token default` on a 1.24 cluster (before jti), with
        // the jti added where the sorted order puts it.
        assert_eq!(
            serde_json::to_string(&claims).unwrap(),
            r#"{"aud":["https://kubernetes.default.svc.cluster.local"],"exp":1661172376,"iat":1661168776,"iss":"https://kubernetes.default.svc.cluster.local","jti":"J","kubernetes.io":{"namespace":"default","serviceaccount":{"name":"default","uid":"78fd6341-2052-49f6-9ebd-a1f491280b04"}},"nbf":1661168776,"sub":"system:serviceaccount:default:default"}"#
        );
    }

    #[test]
    fn bound_parts_and_warnafter_appear_in_sorted_place() {
        let claims = ServiceAccountClaims::new(
            "iss",
            vec!["a".into(), "b".into()],
            "ns",
            ObjectRef::new("sa", "u1"),
            Some(ObjectRef::new("p", "u2")),
            100,
            3607,
        )
        .unwrap()
        .with_node(ObjectRef::new("n", "u3"))
        .with_warn_after(3607);
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(json["exp"], 3707);
        assert_eq!(json["nbf"], 100);
        assert_eq!(json["sub"], "system:serviceaccount:ns:sa");
        assert_eq!(json["kubernetes.io"]["warnafter"], 3707);
        let text = serde_json::to_string(&claims.kubernetes).unwrap();
        assert_eq!(
            text,
            r#"{"namespace":"ns","node":{"name":"n","uid":"u3"},"pod":{"name":"p","uid":"u2"},"serviceaccount":{"name":"sa","uid":"u1"},"warnafter":3707}"#
        );
        let back: ServiceAccountClaims = serde_json::from_value(json).unwrap();
        assert_eq!(back, claims);
    }

    #[test]
    fn every_token_gets_its_own_jti() {
        let mk =
            || ServiceAccountClaims::new("i", vec![], "ns", ObjectRef::new("sa", "u"), None, 0, 1).unwrap();
        assert_ne!(mk().jti, mk().jti);
    }
}
