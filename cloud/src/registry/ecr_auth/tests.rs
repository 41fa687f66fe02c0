//! The ECR gate through the router, as a client on the wire sees it: status, headers and bodies
//! for no credentials, an unknown or expired token, a denied identity, a missing repository or
//! tag, and a pull that is allowed; other hosts stay anonymous.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use jiff::{SignedDuration, Timestamp};
use tower::ServiceExt as _;

use super::*;
use crate::aws::ecr::tests::{account, user};
use crate::aws::state::Shared;
use crate::registry::http::{DIGEST_HEADER, router_with_ecr};

const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

struct Lab {
    shared: Arc<Shared>,
}

impl Lab {
    fn new() -> Self {
        Self { shared: Arc::new(Shared::new(account(), None)) }
    }

    /// `Basic <token>` for `who`, issued `age` ago.
    fn auth(&self, who: &str, age: SignedDuration) -> String {
        let password = self
            .shared
            .write(|a| {
                let identity = user(a, who);
                a.ecr.issue_token(&identity, "us-east-1", Timestamp::now() - age).0
            })
            .unwrap();
        format!("Basic {}", token::authorization_token(&password))
    }

    async fn get(
        &self,
        method: &str,
        host: &str,
        path: &str,
        auth: Option<&str>,
    ) -> (StatusCode, axum::http::HeaderMap, bytes::Bytes) {
        let mut req = axum::http::Request::builder().method(method).uri(path).header("host", host);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let app = router_with_ecr(Arc::new(Registry::from_catalog()), None, Some(self.shared.clone()));
        let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let (parts, body) = resp.into_parts();
        (parts.status, parts.headers, to_bytes(body, usize::MAX).await.unwrap())
    }
}

#[test]
fn ecr_host_names() {
    let h = ecr_host("123456789012.dkr.ecr.us-east-1.amazonaws.com:5000").unwrap();
    assert_eq!(
        (h.registry_id.as_str(), h.region.as_str(), h.name.as_str()),
        ("123456789012", "us-east-1", HOST)
    );
    assert!(ecr_host(HOST).is_some());
    assert!(ecr_host("12345678901.dkr.ecr.us-east-1.amazonaws.com").is_none());
    assert!(ecr_host("public.ecr.aws").is_none());
    assert!(ecr_host("registry-1.docker.io").is_none());
    assert!(ecr_host("localhost:5000").is_none());
}

#[tokio::test]
async fn no_credentials_get_ecr_basic_challenge() {
    let lab = Lab::new();
    for path in ["/v2/", "/v2/nginx/manifests/latest"] {
        let (status, headers, body) = lab.get("GET", &format!("{HOST}:5000"), path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            headers["www-authenticate"],
            "Basic realm=\"https://123456789012.dkr.ecr.us-east-1.amazonaws.com/\",service=\"ecr.amazonaws.com\""
        );
        assert_eq!(&body[..], b"Not Authorized\n");
        assert_eq!(headers["docker-distribution-api-version"], "registry/2.0");
    }
    // HEAD: the status and the challenge, no body.
    let (status, headers, body) = lab.get("HEAD", HOST, "/v2/nginx/manifests/latest", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.contains_key("www-authenticate") && body.is_empty());
    // A token never issued, or another user than AWS: the same 401.
    let forged = format!("Basic {}", token::encode(b"AWS:forged"));
    assert_eq!(
        lab.get("GET", HOST, "/v2/nginx/manifests/latest", Some(&forged)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn expired_token_is_denied_with_ecr_text() {
    let lab = Lab::new();
    let auth = lab.auth("admin", SignedDuration::from_hours(13));
    let (status, _, body) = lab.get("GET", HOST, "/v2/nginx/manifests/latest", Some(&auth)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        &body[..],
        br#"{"errors":[{"code":"DENIED","message":"Your authorization token has expired. Reauthenticate and try again."}]}"#
    );
}

#[tokio::test]
async fn a_principal_without_batch_get_image_is_denied() {
    let lab = Lab::new();
    let auth = lab.auth("dev", SignedDuration::ZERO);
    let (status, headers, body) = lab.get("GET", HOST, "/v2/nginx/manifests/latest", Some(&auth)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        r#"{"errors":[{"code":"DENIED","message":"User: arn:aws:iam::123456789012:user/dev is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:123456789012:repository/nginx because no identity-based policy allows the ecr:BatchGetImage action"}]}"#
    );
    // Authorisation comes before existence: a missing repository is denied the same way.
    let (status, _, _) = lab.get("GET", HOST, "/v2/nope/manifests/latest", Some(&auth)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn allowed_pulls_serve_the_catalogue_images() {
    let lab = Lab::new();
    let public = Registry::from_catalog();
    let latest = public.manifest("library/nginx", "latest").unwrap();
    for who in ["admin", "reader"] {
        let auth = lab.auth(who, SignedDuration::ZERO);
        let (status, headers, body) = lab.get("GET", HOST, "/v2/nginx/manifests/latest", Some(&auth)).await;
        assert_eq!(status, StatusCode::OK, "{who}");
        assert_eq!(headers[DIGEST_HEADER], latest.digest.as_str());
        assert_eq!(body, latest.bytes);
        let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let layer = manifest["layers"][0]["digest"].as_str().unwrap();
        let (status, headers, _) =
            lab.get("HEAD", HOST, &format!("/v2/nginx/blobs/{layer}"), Some(&auth)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[DIGEST_HEADER], layer);
    }
    let auth = lab.auth("admin", SignedDuration::ZERO);
    let (status, _, body) = lab.get("GET", HOST, "/v2/nginx/tags/list", Some(&auth)).await;
    assert_eq!(status, StatusCode::OK);
    let tags: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(tags["name"], "nginx");
    assert!(tags["tags"].as_array().unwrap().iter().any(|t| t == "latest"));
    let (status, _, _) = lab.get("GET", HOST, "/v2/", Some(&auth)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn missing_repositories_and_tags_are_ecr_404s() {
    let lab = Lab::new();
    let auth = lab.auth("admin", SignedDuration::ZERO);
    let (status, _, body) = lab.get("GET", HOST, "/v2/nope/manifests/latest", Some(&auth)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        &body[..],
        br#"{"errors":[{"code":"NAME_UNKNOWN","message":"The repository with name 'nope' does not exist in the registry with id '123456789012'"}]}"#
    );
    let (status, _, body) = lab.get("GET", HOST, "/v2/nginx/manifests/9.9", Some(&auth)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        &body[..],
        br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"Requested image not found"}]}"#
    );
    // Another account's registry has no repositories for us.
    let other = "210987654321.dkr.ecr.us-east-1.amazonaws.com";
    let (status, _, body) = lab.get("GET", other, "/v2/nginx/manifests/latest", Some(&auth)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(std::str::from_utf8(&body).unwrap().contains("registry with id '210987654321'"));
}

#[tokio::test]
async fn other_hosts_stay_anonymous() {
    let lab = Lab::new();
    let (status, _, _) =
        lab.get("GET", "registry.lab:5000", "/v2/library/nginx/manifests/latest", None).await;
    assert_eq!(status, StatusCode::OK);
    // The ECR name is not a public repository.
    let (status, _, _) = lab.get("GET", "registry.lab:5000", "/v2/nginx/manifests/latest", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
