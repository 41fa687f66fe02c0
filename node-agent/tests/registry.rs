//! The image client against a fake OCI registry served in-process: a good pull (digests checked,
//! app and port read from the config), containerd's not-found text, and a blob whose bytes do not
//! match its digest.

use axum::{
    Router,
    extract::Path,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use netlab_node_agent::image::{AppKind, ImageService, Reference, registry::hex};
use sha2::{Digest as _, Sha256};

fn digest(b: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(b)))
}

/// Serves library/nginx:1.27 (good) and library/bad:1 (layer bytes differ from the digest).
async fn fake_registry() -> String {
    let config = br#"{"architecture":"amd64","os":"linux","config":{"Labels":{"io.netlab.app":"echo"},"ExposedPorts":{"8080/tcp":{}}}}"#.to_vec();
    let layer = b"layer bytes".to_vec();
    let manifest = |layer_digest: &str| {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}],
        })
        .to_string()
    };
    let good = manifest(&digest(&layer));
    let bad = manifest(&digest(b"other bytes!"));
    let (c, l) = (config.clone(), layer.clone());
    let app = Router::new()
        .route(
            "/v2/{ns}/{name}/manifests/{reference}",
            get(move |Path((_, name, reference)): Path<(String, String, String)>| {
                let (good, bad) = (good.clone(), bad.clone());
                async move {
                    // By tag (containerd's HEAD) and by digest (its GET).
                    let body = match (name.as_str(), reference.as_str()) {
                        ("nginx", r) if r == "1.27" || r == digest(good.as_bytes()) => good,
                        ("bad", r) if r == "1" || r == digest(bad.as_bytes()) => bad,
                        _ => {
                            return (StatusCode::NOT_FOUND, HeaderMap::new(), String::new()).into_response();
                        }
                    };
                    let mut h = HeaderMap::new();
                    h.insert(
                        header::CONTENT_TYPE,
                        "application/vnd.oci.image.manifest.v1+json".parse().unwrap(),
                    );
                    h.insert("docker-content-digest", digest(body.as_bytes()).parse().unwrap());
                    (StatusCode::OK, h, body).into_response()
                }
            }),
        )
        .route(
            "/v2/{ns}/{name}/blobs/{digest}",
            get(move |Path((_, _, d)): Path<(String, String, String)>| {
                let (c, l) = (c.clone(), l.clone());
                async move {
                    if d == digest(&c) {
                        (StatusCode::OK, c).into_response()
                    } else {
                        // The good layer, served for any other digest too (so "bad" mismatches).
                        (StatusCode::OK, l).into_response()
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn pulls_verifies_and_fails_like_containerd() {
    let url = fake_registry().await;
    let dir = tempfile::tempdir().unwrap();
    let images = ImageService::open(dir.path(), &url).unwrap();

    let nginx = Reference::parse("nginx:1.27").unwrap();
    assert!(images.get(&nginx).is_none());
    let pulled = images.pull(&nginx).await.unwrap();
    assert_eq!(pulled.image.app, AppKind::Echo);
    assert_eq!(pulled.image.port, Some(8080));
    assert!(pulled.image.image_id().starts_with("docker.io/library/nginx@sha256:"));
    assert!(images.get(&nginx).is_some());
    // The store survives a re-open.
    let reopened = ImageService::open(dir.path(), &url).unwrap();
    assert_eq!(reopened.get(&nginx), Some(pulled.image));

    let typo = Reference::parse("nginx:typo").unwrap();
    let err = images.pull(&typo).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "rpc error: code = NotFound desc = failed to pull and unpack image \"docker.io/library/nginx:typo\": failed to resolve reference \"docker.io/library/nginx:typo\": docker.io/library/nginx:typo: not found"
    );

    let bad = Reference::parse("bad:1").unwrap();
    let err = images.pull(&bad).await.unwrap_err();
    assert!(err.to_string().contains("unexpected commit digest"), "{err}");
    assert!(images.get(&bad).is_none());
}
