//! The TokenRequest path on a real registry: what is signed, what is refused, and with which
//! texts; tokens checked with the verifier STS uses.

use std::sync::Arc;

use netlab_proto::apiserver::v1::Resource;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::{
    bootstrap,
    registry::{Registry, RegistryConfig},
    store::RedbStore,
};

const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC";

async fn registry(dir: &std::path::Path) -> Registry {
    let cfg = RegistryConfig {
        service_cidr: "10.96.0.0/12".parse().unwrap(),
        node_ports: (30000, 32767),
        history: 100,
        watch_buffer: 64,
        validation: Default::default(),
    };
    let store = Arc::new(RedbStore::open(&dir.join("store")).unwrap());
    let (registry, _writer) = Registry::open(store, cfg, CancellationToken::new()).await.unwrap();
    bootstrap::run(&registry, 6443).await.unwrap();
    for sa in ["reader", "other"] {
        let body = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa}});
        registry
            .create(Resource::ServiceAccounts, "default", &serde_json::to_vec(&body).unwrap())
            .await
            .unwrap();
    }
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web"},
        "spec": {"serviceAccountName": "reader", "containers": [{"name": "app", "image": "nginx"}]},
    });
    registry.create(Resource::Pods, "default", &serde_json::to_vec(&pod).unwrap()).await.unwrap();
    registry
}

fn issuer(dir: &std::path::Path, max: Option<std::time::Duration>) -> TokenIssuer {
    TokenIssuer::new(&IssuerConfig {
        issuer: ISSUER.into(),
        max_expiration: max,
        ..IssuerConfig::defaults_in(dir, "10.0.0.1:6443")
    })
    .unwrap()
}

fn request(spec: Value) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}),
    )
    .unwrap()
}

/// The token's claims, verified against the issuer's own JWKS document.
fn verified(issuer: &TokenIssuer, answer: &Value) -> netlab_oidc::Verified {
    let token = answer["status"]["token"].as_str().unwrap();
    let jwks: netlab_oidc::Jwks = serde_json::from_slice(&issuer.jwks_json().unwrap()).unwrap();
    netlab_oidc::verify(token, &jwks).unwrap()
}

#[tokio::test]
async fn signs_kubernetes_claims_that_its_jwks_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, issuer) = (registry(dir.path()).await, issuer(dir.path(), None));
    let (answer, warnings) = issuer
        .create_token(&registry, "default", "reader", &request(json!({"audiences": ["sts.amazonaws.com"]})))
        .unwrap();
    assert!(warnings.is_empty());
    assert_eq!(answer["kind"], "TokenRequest");
    assert_eq!(answer["metadata"]["name"], "reader");
    assert_eq!(answer["spec"]["expirationSeconds"], 3600);
    let claims = verified(&issuer, &answer).claims;
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], "system:serviceaccount:default:reader");
    assert_eq!(claims["aud"], json!(["sts.amazonaws.com"]));
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
    let sa = registry.get(Resource::ServiceAccounts, "default", "reader").unwrap();
    assert_eq!(claims["kubernetes.io"]["serviceaccount"]["uid"], object::uid(&sa.value));

    // No audience: the API audiences (the issuer); an empty body is the defaults.
    let (answer, _) = issuer.create_token(&registry, "default", "reader", b"").unwrap();
    assert_eq!(verified(&issuer, &answer).claims["aud"], json!([ISSUER]));

    // The documents: upstream's jwks_uri from the external address.
    let doc: Value = serde_json::from_slice(&issuer.discovery_json().unwrap()).unwrap();
    assert_eq!(doc["issuer"], ISSUER);
    assert_eq!(doc["jwks_uri"], "https://10.0.0.1:6443/openid/v1/jwks");

    // The key outlives the process: a second issuer on the same file verifies the first's tokens.
    let again = self::issuer(dir.path(), None);
    verified(&again, &answer);
}

#[tokio::test]
async fn pod_bound_tokens_name_the_pod_and_check_it() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, issuer) = (registry(dir.path()).await, issuer(dir.path(), None));
    let bound = |sa: &str, pod: &str, uid: &str| {
        issuer.create_token(
            &registry,
            "default",
            sa,
            &request(json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod, "uid": uid}})),
        )
    };
    let pod = registry.get(Resource::Pods, "default", "web").unwrap();
    let (answer, _) = bound("reader", "web", object::uid(&pod.value)).unwrap();
    let claims = verified(&issuer, &answer).claims;
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], "web");
    assert_eq!(claims["kubernetes.io"]["pod"]["uid"], object::uid(&pod.value));

    let text = |r: Result<(Value, Vec<String>)>| r.unwrap_err().to_string();
    assert_eq!(
        text(bound("other", "web", "")),
        "cannot bind token for serviceaccount \"other\" to pod running with different serviceaccount name."
    );
    assert_eq!(
        text(bound("reader", "web", "0000")),
        "Operation cannot be fulfilled on Pod \"web\": the UID in the bound object reference (0000) does not match the UID in record. The object might have been deleted and then recreated"
    );
    assert_eq!(text(bound("reader", "gone", "")), "pods \"gone\" not found");
    let secret = issuer.create_token(
        &registry,
        "default",
        "reader",
        &request(json!({"boundObjectRef": {"kind": "Deployment", "apiVersion": "apps/v1", "name": "x"}})),
    );
    assert_eq!(text(secret), "cannot bind token to object of type apps/v1, Kind=Deployment");
}

#[tokio::test]
async fn lifetimes_are_checked_and_capped_as_upstream_does() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    let issuer = issuer(dir.path(), Some(std::time::Duration::from_secs(7200)));
    let ask = |seconds: i64| {
        issuer.create_token(&registry, "default", "reader", &request(json!({"expirationSeconds": seconds})))
    };

    match ask(599).unwrap_err() {
        Error::Invalid { kind, name, errors } => {
            assert_eq!((kind, name.as_str()), ("TokenRequest.authentication.k8s.io", ""));
            assert_eq!(
                errors[0].to_string(),
                "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"
            );
        }
        other => panic!("{other:?}"),
    }
    match ask((1 << 32) + 1).unwrap_err() {
        Error::Invalid { errors, .. } => {
            assert!(errors[0].to_string().ends_with("may not specify a duration larger than 2^32 seconds"))
        }
        other => panic!("{other:?}"),
    }
    let (answer, warnings) = ask(86_400).unwrap();
    assert_eq!(answer["spec"]["expirationSeconds"], 7200);
    assert_eq!(warnings, ["requested expiration of 86400 seconds shortened to 7200 seconds"]);
    let (_, warnings) = ask(600).unwrap();
    assert!(warnings.is_empty());

    // The account must exist (looked up before the lifetime is checked, as upstream does).
    assert_eq!(
        issuer
            .create_token(&registry, "default", "nope", &request(json!({"expirationSeconds": 1})))
            .unwrap_err()
            .to_string(),
        "serviceaccounts \"nope\" not found"
    );
    // A body naming another account is refused.
    let named = serde_json::to_vec(&json!({"metadata": {"name": "other"}, "spec": {}})).unwrap();
    assert_eq!(
        issuer.create_token(&registry, "default", "reader", &named).unwrap_err().to_string(),
        "The TokenRequest.authentication.k8s.io \"reader\" is invalid: metadata.name: Invalid value: \"other\": must match the service account name if specified"
    );
}

#[test]
fn an_issuer_that_is_not_https_serves_no_documents() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = TokenIssuer::new(&IssuerConfig {
        issuer: "kubernetes.default.svc".into(),
        ..IssuerConfig::defaults_in(dir.path(), "10.0.0.1:6443")
    })
    .unwrap();
    assert!(issuer.discovery_json().is_none() && issuer.jwks_json().is_none());
}
