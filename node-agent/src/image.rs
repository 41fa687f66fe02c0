//! Images, as the container runtime (containerd) handles them: references normalised by the
//! docker reference grammar (`nginx` → `docker.io/library/nginx:latest`), pulled over the OCI
//! distribution API from the one registry this lab has (`--registry`), verified by sha256, and kept
//! content-addressed under `<data-dir>/images` so a restarted node has its images already.
//!
//! An image's config selects the built-in app a container runs: `config.Labels["io.netlab.app"]`
//! (`echo`, `toolbox`, `kv`) and `config.ExposedPorts` for its default port.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::RwLock,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

pub mod registry;

/// The registry host references without one belong to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The namespace of official Docker Hub images.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag an untagged reference gets.
pub const DEFAULT_TAG: &str = "latest";
/// The image-config label naming the built-in app.
pub const APP_LABEL: &str = "io.netlab.app";

/// A reference that does not parse (the kubelet's `InvalidImageName`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidReference(pub String);

/// A normalised image reference: `domain/path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Reference {
    /// Registry host (and port): `docker.io`, `registry.k8s.io`, `localhost:5000`.
    pub domain: String,
    /// Repository path on that registry: `library/nginx`, `hashicorp/http-echo`.
    pub path: String,
    /// The tag, if any (untagged, undigested references get `latest`).
    pub tag: Option<String>,
    /// The digest, if any (`sha256:<64 hex>`).
    pub digest: Option<String>,
}

/// Which built-in app an image runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppKind {
    /// An HTTP server answering with pod name, pod IP and node.
    Echo,
    /// No listener: the client side of `exec`.
    Toolbox,
    /// A small redis-protocol key-value server.
    Kv,
    /// agnhost's netexec: HTTP on 8080, UDP on 8081.
    Netexec,
}

/// A pulled image as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// The normalised reference it was pulled as.
    pub reference: String,
    /// The manifest's digest.
    pub manifest_digest: String,
    /// The config blob's digest (containerd's image ID).
    pub config_digest: String,
    /// Config plus layer sizes, in bytes.
    pub size: u64,
    /// The app its config selects.
    pub app: AppKind,
    /// The first exposed TCP port, if any.
    pub port: Option<u16>,
}

/// The result of a pull.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The image.
    pub image: Image,
    /// How long the pull took.
    pub duration: Duration,
}

/// The node's image store plus the registry it pulls from.
#[derive(Debug)]
pub struct ImageService {
    dir: PathBuf,
    registry: registry::Registry,
    /// normalised reference → image; mirrored to `refs.json`.
    images: RwLock<BTreeMap<String, Image>>,
}

// === impl Reference ===

impl Reference {
    /// Parses and normalises `s` as containerd does (docker's `ParseNormalizedNamed` plus
    /// `TagNameOnly`): a missing domain is `docker.io`, a one-component Docker Hub path gets
    /// `library/`, and a reference with neither tag nor digest gets `:latest`.
    pub fn parse(s: &str) -> Result<Self, InvalidReference> {
        let invalid = |why: &str| InvalidReference(format!("couldn't parse image name {s:?}: {why}"));
        if s.is_empty() {
            return Err(invalid("invalid reference format"));
        }
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => {
                let hex = d.strip_prefix("sha256:").ok_or_else(|| invalid("invalid reference format"))?;
                if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) {
                    return Err(invalid("invalid checksum digest format"));
                }
                (n, Some(d.to_string()))
            }
            None => (s, None),
        };
        // The tag is after the last ':' that follows the last '/'.
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], Some(name[last_slash + i + 1..].to_string())),
            None => (name, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                && !t.starts_with(['.', '-']);
            if !ok {
                return Err(invalid("invalid reference format"));
            }
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid("repository name must be lowercase"));
        }
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
        };
        if !path.split('/').all(component_ok) {
            return Err(invalid("invalid reference format"));
        }
        let domain = if domain == "index.docker.io" { DEFAULT_DOMAIN.to_string() } else { domain };
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_REPO_PREFIX}{path}")
        } else {
            path
        };
        let tag = if tag.is_none() && digest.is_none() { Some(DEFAULT_TAG.to_string()) } else { tag };
        Ok(Reference { domain, path, tag, digest })
    }

    /// `docker.io/library/nginx`: the name without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository on the lab's registry: Docker Hub images keep their path
    /// (`library/nginx`), others are prefixed with their host (`registry.k8s.io/nginx-slim`).
    pub fn registry_repository(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// What to ask the registry's manifests endpoint for: the digest if pinned, else the tag.
    pub fn manifest_reference(&self) -> String {
        self.digest.clone().or_else(|| self.tag.clone()).unwrap_or_else(|| DEFAULT_TAG.into())
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

// === impl Image ===

impl Image {
    /// containerd's repo digest, the kubelet's `imageID`: `docker.io/library/nginx@sha256:...`.
    pub fn image_id(&self) -> String {
        let name =
            Reference::parse(&self.reference).map(|r| r.name()).unwrap_or_else(|_| self.reference.clone());
        format!("{name}@{}", self.manifest_digest)
    }
}

// === impl ImageService ===

impl ImageService {
    /// The store at `dir` (created), pulling from `registry_url`.
    pub fn open(dir: &Path, registry_url: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.join("blobs").join("sha256"))?;
        let images = std::fs::read(dir.join("refs.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Ok(Self {
            dir: dir.to_path_buf(),
            registry: registry::Registry::new(registry_url),
            images: RwLock::new(images),
        })
    }

    /// The image stored under `reference` (normalised), if present.
    pub fn get(&self, reference: &Reference) -> Option<Image> {
        self.images.read().unwrap_or_else(|e| e.into_inner()).get(&reference.to_string()).cloned()
    }

    /// Puts `reference` in the store without a pull, as an AMI's cached images are there when
    /// the node boots (the EKS AMI caches the VPC CNI's images): the app is `app`, the digests
    /// derived from the reference so every node shows the same image ID.
    pub fn preload(&self, reference: &Reference, app: AppKind) {
        use sha2::{Digest as _, Sha256};
        let digest = |what: &str| {
            let d = Sha256::digest(format!("{what} {reference}").as_bytes());
            format!("sha256:{}", d.iter().map(|b| format!("{b:02x}")).collect::<String>())
        };
        let image = Image {
            reference: reference.to_string(),
            manifest_digest: digest("manifest"),
            config_digest: digest("config"),
            size: 0,
            app,
            port: None,
        };
        let mut images = self.images.write().unwrap_or_else(|e| e.into_inner());
        images.entry(reference.to_string()).or_insert(image);
    }

    /// Pulls `reference`: manifest, config and layers, each verified; stores it. The error is
    /// containerd's text, ready for the kubelet's `Failed to pull image` event.
    pub async fn pull(&self, reference: &Reference) -> Result<Pulled, registry::PullError> {
        self.pull_with(reference, None).await
    }

    /// [`ImageService::pull`] with the credentials the kubelet found for the image, if any.
    pub async fn pull_with(
        &self,
        reference: &Reference,
        auth: Option<&registry::BasicAuth>,
    ) -> Result<Pulled, registry::PullError> {
        let started = Instant::now();
        let image = self.registry.pull_with(reference, &self.dir.join("blobs").join("sha256"), auth).await?;
        {
            let mut images = self.images.write().unwrap_or_else(|e| e.into_inner());
            images.insert(reference.to_string(), image.clone());
            if let Ok(json) = serde_json::to_vec_pretty(&*images) {
                let tmp = self.dir.join("refs.json.tmp");
                if std::fs::write(&tmp, json)
                    .and_then(|()| std::fs::rename(&tmp, self.dir.join("refs.json")))
                    .is_err()
                {
                    tracing::warn!("Could not persist the image index.");
                }
            }
        }
        Ok(Pulled { image, duration: started.elapsed() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalises_like_containerd() {
        assert_eq!(norm("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(norm("nginx:1.27"), "docker.io/library/nginx:1.27");
        assert_eq!(norm("library/nginx"), "docker.io/library/nginx:latest");
        assert_eq!(norm("docker.io/nginx"), "docker.io/library/nginx:latest");
        assert_eq!(norm("index.docker.io/library/nginx:1"), "docker.io/library/nginx:1");
        assert_eq!(norm("hashicorp/http-echo"), "docker.io/hashicorp/http-echo:latest");
        assert_eq!(norm("nicolaka/netshoot:v0.13"), "docker.io/nicolaka/netshoot:v0.13");
        assert_eq!(norm("registry.k8s.io/nginx-slim:0.27"), "registry.k8s.io/nginx-slim:0.27");
        assert_eq!(norm("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(norm("localhost/x:1"), "localhost/x:1");
        assert_eq!(norm("quay.io/a/b/c:v1"), "quay.io/a/b/c:v1");
        assert_eq!(norm("myhost:5000/team/app"), "myhost:5000/team/app:latest");
    }

    #[test]
    fn digests() {
        assert_eq!(norm(&format!("nginx@{D}")), format!("docker.io/library/nginx@{D}"));
        assert_eq!(norm(&format!("nginx:1.27@{D}")), format!("docker.io/library/nginx:1.27@{D}"));
        let r = Reference::parse(&format!("nginx@{D}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_reference(), D);
        assert!(Reference::parse("nginx@sha256:abc").is_err());
        assert!(Reference::parse("nginx@md5:0123").is_err());
    }

    #[test]
    fn invalid_names() {
        assert_eq!(
            Reference::parse("Nginx").unwrap_err().0,
            "couldn't parse image name \"Nginx\": repository name must be lowercase"
        );
        assert!(Reference::parse("").is_err());
        assert!(Reference::parse("nginx:").is_err());
        assert!(Reference::parse("nginx:bad tag").is_err());
        assert!(Reference::parse("-nginx").is_err());
    }

    #[test]
    fn registry_repository_mapping() {
        assert_eq!(Reference::parse("nginx").unwrap().registry_repository(), "library/nginx");
        assert_eq!(Reference::parse("curlimages/curl").unwrap().registry_repository(), "curlimages/curl");
        assert_eq!(
            Reference::parse("registry.k8s.io/nginx-slim:0.27").unwrap().registry_repository(),
            "registry.k8s.io/nginx-slim"
        );
    }

    #[test]
    fn image_id_is_the_repo_digest() {
        let img = Image {
            reference: "docker.io/library/nginx:1.27".into(),
            manifest_digest: D.into(),
            config_digest: D.into(),
            size: 1,
            app: AppKind::Echo,
            port: Some(80),
        };
        assert_eq!(img.image_id(), format!("docker.io/library/nginx@{D}"));
    }
}
