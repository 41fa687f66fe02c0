//! Projected service-account token volumes, as the kubelet's projected volume plugin and token
//! manager fill them: for each `serviceAccountToken` source the kubelet asks the apiserver for a
//! token of the pod's ServiceAccount (TokenRequest, bound to the pod, with the source's audience
//! and lifetime) and writes it at the source's path in the volume, before any container starts.
//! IRSA's `aws-iam-token` volume is one (the pod identity webhook adds it); the SDK in the pod
//! reads the file that `AWS_WEB_IDENTITY_TOKEN_FILE` names and trades it at STS.
//!
//! The volume lives under the pod's directory (`volumes/<name>/<path>`); [`files`] maps a
//! container's mounts onto it, for `cat` in an exec. When the token cannot be had, the pod stays
//! ContainerCreating with the kubelet's `FailedMount` event (`MountVolume.SetUp failed for volume
//! "aws-iam-token" : failed to fetch token: ...`), and the mount is tried again.
//!
//! The token manager refreshes a token once 80 % of its lifetime has passed, or after 24 hours
//! (pkg/kubelet/token/token_manager.go `requiresRefresh`, `maxTTL`): [`refresh_after`]; the
//! worker writes the new token over the old file then, and keeps the old one if the apiserver
//! refuses (as the token manager keeps serving its cached token until it expires).
//!
//! Not modelled: the other projection sources (configMap, secret, downwardAPI), and the default
//! `kube-api-access-*` volume.

use std::path::{Path, PathBuf};

use k8s_openapi::api::{
    authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec},
    core::v1::Pod,
};

/// A token source's lifetime when it names none (`ServiceAccountTokenProjection` defaulting).
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3_600;

/// One `serviceAccountToken` source of a projected volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSource {
    /// The volume's name.
    pub volume: String,
    /// The file's path inside the volume.
    pub path: String,
    /// The audience; `None` is the apiserver's own.
    pub audience: Option<String>,
    /// The lifetime asked for.
    pub expiration_seconds: i64,
}

/// A token that could not be mounted, worded as the kubelet's FailedMount event.
#[derive(Debug, Clone, thiserror::Error)]
#[error("MountVolume.SetUp failed for volume \"{volume}\" : failed to fetch token: {reason}")]
pub struct MountError {
    /// The volume.
    pub volume: String,
    /// The apiserver's answer.
    pub reason: String,
}

/// Every `serviceAccountToken` source of the pod's projected volumes.
pub fn token_sources(pod: &Pod) -> Vec<TokenSource> {
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
    volumes
        .into_iter()
        .flatten()
        .filter_map(|v| Some((v.name.clone(), v.projected.as_ref()?)))
        .flat_map(|(volume, projected)| {
            projected.sources.iter().flatten().filter_map(move |s| {
                let t = s.service_account_token.as_ref()?;
                Some(TokenSource {
                    volume: volume.clone(),
                    path: t.path.clone(),
                    audience: t.audience.clone().filter(|a| !a.is_empty()),
                    expiration_seconds: t.expiration_seconds.unwrap_or(DEFAULT_EXPIRATION_SECONDS),
                })
            })
        })
        .collect()
}

/// The TokenRequest the kubelet sends for `source`: bound to the pod.
pub fn request(pod: &Pod, source: &TokenSource) -> TokenRequest {
    TokenRequest {
        spec: TokenRequestSpec {
            audiences: source.audience.iter().cloned().collect(),
            expiration_seconds: Some(source.expiration_seconds),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
        },
        ..Default::default()
    }
}

/// The pod's ServiceAccount (`spec.serviceAccountName`, defaulted to `default`).
pub fn service_account(pod: &Pod) -> String {
    let spec = pod.spec.as_ref();
    spec.and_then(|s| s.service_account_name.clone().or_else(|| s.service_account.clone()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into())
}

/// The token manager's `maxTTL`: a token older than this is refreshed whatever its lifetime.
pub const MAX_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// How long after it was issued a token of `expiration_seconds` is refreshed: when 20 % of its
/// lifetime is left, or at [`MAX_TTL`], whichever comes first.
pub fn refresh_after(expiration_seconds: i64) -> std::time::Duration {
    let ttl = std::time::Duration::from_secs(u64::try_from(expiration_seconds).unwrap_or(0));
    ttl.mul_f64(0.8).min(MAX_TTL)
}

/// Fetches and writes every token the pod's volumes project, under `dir` (the pod's directory);
/// returns when the first of them is due for refresh, counted from now (None without tokens).
pub async fn mount(
    client: &netlab_client::Client,
    pod: &Pod,
    dir: &Path,
) -> Result<Option<std::time::Duration>, MountError> {
    let mut due: Option<std::time::Duration> = None;
    let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let account = service_account(pod);
    for source in token_sources(pod) {
        let failed = |reason: String| MountError { volume: source.volume.clone(), reason };
        let answer = client
            .create_token(&namespace, &account, &request(pod, &source))
            .await
            .map_err(|e| failed(e.to_string()))?;
        let token = answer.status.map(|s| s.token).unwrap_or_default();
        let file = volume_dir(dir, &source.volume).join(&source.path);
        let written =
            file.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| std::fs::write(&file, token));
        written.map_err(|e| failed(format!("writing {}: {e}", file.display())))?;
        let after = refresh_after(source.expiration_seconds);
        due = Some(due.map_or(after, |d| d.min(after)));
    }
    Ok(due)
}

/// Where a volume's files live under the pod's directory.
pub fn volume_dir(pod_dir: &Path, volume: &str) -> PathBuf {
    pod_dir.join("volumes").join(volume)
}

/// The files a container sees through its mounts of token volumes: (path in the container,
/// file under the pod's directory).
pub fn files(pod: &Pod, container: &str, pod_dir: &Path) -> Vec<(String, PathBuf)> {
    let sources = token_sources(pod);
    let mounts = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == container))
        .and_then(|c| c.volume_mounts.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    for m in mounts {
        for s in sources.iter().filter(|s| s.volume == m.name) {
            let inside = format!("{}/{}", m.mount_path.trim_end_matches('/'), s.path);
            out.push((inside, volume_dir(pod_dir, &s.volume).join(&s.path)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": "app", "namespace": "demo", "uid": "u-1" },
            "spec": {
                "serviceAccountName": "s3-reader",
                "containers": [{ "name": "app", "image": "x", "volumeMounts": [
                    { "name": "aws-iam-token", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount/", "readOnly": true },
                    { "name": "data", "mountPath": "/data" },
                ] }],
                "volumes": [
                    { "name": "aws-iam-token", "projected": { "sources": [
                        { "serviceAccountToken": { "audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token" } }
                    ] } },
                    { "name": "other", "projected": { "sources": [{ "serviceAccountToken": { "path": "t" } }] } },
                    { "name": "data", "emptyDir": {} },
                ],
            },
        }))
        .unwrap()
    }

    #[test]
    fn reads_token_sources_and_builds_the_kubelets_request() {
        let p = pod();
        let sources = token_sources(&p);
        assert_eq!(sources.len(), 2);
        assert_eq!(
            sources[0],
            TokenSource {
                volume: "aws-iam-token".into(),
                path: "token".into(),
                audience: Some("sts.amazonaws.com".into()),
                expiration_seconds: 86400
            }
        );
        assert_eq!((sources[1].audience.as_deref(), sources[1].expiration_seconds), (None, 3600));
        let r = request(&p, &sources[0]);
        assert_eq!(
            serde_json::to_value(&r.spec).unwrap(),
            json!({
                "audiences": ["sts.amazonaws.com"],
                "expirationSeconds": 86400,
                "boundObjectRef": { "apiVersion": "v1", "kind": "Pod", "name": "app", "uid": "u-1" },
            })
        );
        assert_eq!(service_account(&p), "s3-reader");
        assert_eq!(service_account(&Pod::default()), "default");
    }

    #[test]
    fn tokens_are_refreshed_at_80_percent_of_their_life_or_after_a_day() {
        assert_eq!(refresh_after(3600), std::time::Duration::from_secs(2880));
        assert_eq!(refresh_after(600), std::time::Duration::from_secs(480));
        // IRSA's 24 h token: 80 % (19.2 h) comes before the 24 h cap.
        assert_eq!(refresh_after(86_400), std::time::Duration::from_secs(69_120));
        // A week-long token is still refreshed after a day.
        assert_eq!(refresh_after(7 * 86_400), MAX_TTL);
        assert_eq!(refresh_after(-5), std::time::Duration::ZERO);
    }

    #[test]
    fn maps_mounts_to_the_volumes_files() {
        let files = files(&pod(), "app", Path::new("/pods/u-1"));
        assert_eq!(
            files,
            [(
                "/var/run/secrets/eks.amazonaws.com/serviceaccount/token".to_string(),
                PathBuf::from("/pods/u-1/volumes/aws-iam-token/token")
            )]
        );
        assert!(super::files(&pod(), "nope", Path::new("/p")).is_empty());
        let e =
            MountError { volume: "aws-iam-token".into(), reason: "serviceaccounts \"x\" not found".into() };
        assert_eq!(
            e.to_string(),
            "MountVolume.SetUp failed for volume \"aws-iam-token\" : failed to fetch token: serviceaccounts \"x\" not found"
        );
    }
}
