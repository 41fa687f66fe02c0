//! Builds each catalogue image as a real OCI image: an uncompressed tar layer holding a small
//! file that describes the app, a config blob pointing at it by diff ID, and a manifest pointing
//! at both with their sizes and sha256 digests. Everything is derived from the catalogue entry
//! and the tag, with fixed timestamps, so digests are stable across restarts and machines: a
//! node-agent's cached image stays valid when `cloud` restarts.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::{
    catalog::{APP_LABEL, PORT_LABEL, Repository},
    tar,
};

/// `application/vnd.oci.image.manifest.v1+json`.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// `application/vnd.oci.image.config.v1+json`.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// `application/vnd.oci.image.layer.v1.tar`: uncompressed, so the digest is also the diff ID.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
/// Where the layer puts the app description.
pub const APP_FILE: &str = "etc/netlab/app.json";
/// The `created` time of every image (the layer's mtime, in RFC 3339).
pub const CREATED: &str = "2024-01-01T00:00:00Z";

/// Content with its media type and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// What the bytes are (an OCI media type).
    pub media_type: &'static str,
    /// `sha256:<64 hex>` of the bytes.
    pub digest: String,
    /// The content.
    pub bytes: Bytes,
}

/// One image: manifest, config and its single layer.
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest (what a tag resolves to).
    pub manifest: Blob,
    /// The config blob.
    pub config: Blob,
    /// The layer blob.
    pub layer: Blob,
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

// === impl Blob ===

impl Blob {
    /// Wraps `bytes`, computing their digest.
    pub fn new(media_type: &'static str, bytes: Vec<u8>) -> Self {
        Self { media_type, digest: sha256_digest(&bytes), bytes: Bytes::from(bytes) }
    }

    /// The descriptor that points at this blob.
    fn descriptor(&self) -> Descriptor<'_> {
        Descriptor { media_type: self.media_type, digest: &self.digest, size: self.bytes.len() as u64 }
    }
}

// === impl Image ===

impl Image {
    /// Builds the image for `repo:tag`.
    pub fn build(repo: &Repository, tag: &str) -> Self {
        let layer = Blob::new(LAYER_MEDIA_TYPE, layer_tar(repo));
        let config = Blob::new(CONFIG_MEDIA_TYPE, config_json(repo, tag, &layer.digest));
        let manifest = Manifest {
            schema_version: 2,
            media_type: MANIFEST_MEDIA_TYPE,
            config: config.descriptor(),
            layers: vec![layer.descriptor()],
        };
        // Serialising plain structs and string maps cannot fail.
        let manifest = Blob::new(MANIFEST_MEDIA_TYPE, serde_json::to_vec(&manifest).unwrap_or_default());
        Self { manifest, config, layer }
    }
}

/// The layer: the app description the node-agent could also read from the unpacked rootfs.
/// It does not depend on the tag, so every tag of a repository shares it, as real tags of one
/// image family share base layers.
fn layer_tar(repo: &Repository) -> Vec<u8> {
    let app = AppFile { app: repo.app.label(), port: repo.port, image: repo.name };
    let mut data = serde_json::to_vec_pretty(&app).unwrap_or_default();
    data.push(b'\n');
    tar::archive(&[
        tar::Entry::Dir { path: "etc/".into() },
        tar::Entry::Dir { path: "etc/netlab/".into() },
        tar::Entry::File { path: APP_FILE.into(), mode: 0o644, data },
    ])
}

/// The config blob (OCI image-spec config.md).
fn config_json(repo: &Repository, tag: &str, layer_digest: &str) -> Vec<u8> {
    let mut labels = BTreeMap::new();
    labels.insert(APP_LABEL, repo.app.label().to_string());
    if let Some(port) = repo.port {
        labels.insert(PORT_LABEL, port.to_string());
    }
    labels.insert("org.opencontainers.image.title", repo.name.to_string());
    labels.insert("org.opencontainers.image.version", tag.to_string());
    let config = Config {
        created: CREATED,
        architecture: "amd64",
        os: "linux",
        config: ExecConfig {
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            entrypoint: (!repo.entrypoint.is_empty()).then_some(repo.entrypoint),
            cmd: (!repo.cmd.is_empty()).then_some(repo.cmd),
            exposed_ports: repo.port.map(|p| BTreeMap::from([(format!("{p}/tcp"), Empty {})])),
            working_dir: "/",
            labels,
        },
        rootfs: RootFs { kind: "layers", diff_ids: vec![layer_digest] },
        history: vec![History {
            created: CREATED,
            created_by: format!("netlab: {} app layer", repo.app.label()),
        }],
    };
    serde_json::to_vec(&config).unwrap_or_default()
}

// Wire shapes. Field order is the serialisation order, so the bytes are deterministic.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    schema_version: u32,
    media_type: &'static str,
    config: Descriptor<'a>,
    layers: Vec<Descriptor<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor<'a> {
    media_type: &'static str,
    digest: &'a str,
    size: u64,
}

#[derive(Serialize)]
struct Config<'a> {
    created: &'static str,
    architecture: &'static str,
    os: &'static str,
    config: ExecConfig<'a>,
    rootfs: RootFs<'a>,
    history: Vec<History>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ExecConfig<'a> {
    env: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entrypoint: Option<&'a [&'a str]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd: Option<&'a [&'a str]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exposed_ports: Option<BTreeMap<String, Empty>>,
    working_dir: &'static str,
    labels: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct RootFs<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<&'a str>,
}

#[derive(Serialize)]
struct History {
    created: &'static str,
    created_by: String,
}

#[derive(Serialize)]
struct AppFile {
    app: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    image: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::catalog::REPOSITORIES;

    fn repo(name: &str) -> &'static Repository {
        REPOSITORIES.iter().find(|r| r.name == name).unwrap()
    }

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_digest(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn manifest_points_at_config_and_layer_with_right_sizes_and_digests() {
        let image = Image::build(repo("library/nginx"), "latest");
        let m: serde_json::Value = serde_json::from_slice(&image.manifest.bytes).unwrap();
        assert_eq!(m["schemaVersion"], 2);
        assert_eq!(m["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(m["config"]["mediaType"], CONFIG_MEDIA_TYPE);
        assert_eq!(m["config"]["digest"], sha256_digest(&image.config.bytes));
        assert_eq!(m["config"]["size"], image.config.bytes.len());
        assert_eq!(m["layers"][0]["mediaType"], LAYER_MEDIA_TYPE);
        assert_eq!(m["layers"][0]["digest"], sha256_digest(&image.layer.bytes));
        assert_eq!(m["layers"][0]["size"], image.layer.bytes.len());
        assert_eq!(image.manifest.digest, sha256_digest(&image.manifest.bytes));
    }

    #[test]
    fn config_has_platform_cmd_ports_labels_and_diff_id() {
        let image = Image::build(repo("library/nginx"), "1.27");
        let c: serde_json::Value = serde_json::from_slice(&image.config.bytes).unwrap();
        assert_eq!(c["architecture"], "amd64");
        assert_eq!(c["os"], "linux");
        assert_eq!(c["config"]["Cmd"], serde_json::json!(["nginx", "-g", "daemon off;"]));
        assert_eq!(c["config"]["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
        assert_eq!(c["config"]["Labels"]["io.netlab.app"], "echo");
        assert_eq!(c["config"]["Labels"]["io.netlab.port"], "80");
        assert_eq!(c["config"]["Labels"]["org.opencontainers.image.version"], "1.27");
        assert_eq!(c["rootfs"]["type"], "layers");
        assert_eq!(c["rootfs"]["diff_ids"][0], image.layer.digest.as_str());

        let redis: serde_json::Value =
            serde_json::from_slice(&Image::build(repo("library/redis"), "7").config.bytes).unwrap();
        assert_eq!(redis["config"]["Labels"]["io.netlab.app"], "kv");
        assert_eq!(redis["config"]["ExposedPorts"], serde_json::json!({"6379/tcp": {}}));
        let busybox: serde_json::Value =
            serde_json::from_slice(&Image::build(repo("library/busybox"), "1.36").config.bytes).unwrap();
        assert_eq!(busybox["config"]["Labels"]["io.netlab.app"], "toolbox");
        assert!(busybox["config"].get("ExposedPorts").is_none());
        assert!(busybox["config"]["Labels"].get("io.netlab.port").is_none());
    }

    #[test]
    fn digests_are_stable_and_tags_are_distinct_images_sharing_a_layer() {
        let a = Image::build(repo("library/nginx"), "1.25");
        let b = Image::build(repo("library/nginx"), "1.25");
        assert_eq!(a.manifest, b.manifest);
        let c = Image::build(repo("library/nginx"), "1.26");
        assert_ne!(a.manifest.digest, c.manifest.digest);
        assert_eq!(a.layer.digest, c.layer.digest);
        // A change to the image-building code shows up here: the node-agent's caches depend on it.
        assert_eq!(a.manifest.digest.len(), 71);
    }

    #[test]
    fn layer_holds_the_app_file() {
        let image = Image::build(repo("hashicorp/http-echo"), "1.0");
        let tar = &image.layer.bytes;
        let name =
            |off: usize| String::from_utf8_lossy(&tar[off..off + 100]).trim_end_matches('\0').to_string();
        assert_eq!(name(0), "etc/");
        assert_eq!(name(512), "etc/netlab/");
        assert_eq!(name(1024), APP_FILE);
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&tar[1024 + 124..1024 + 135]).trim_end_matches('\0'),
            8,
        )
        .unwrap();
        let app: serde_json::Value = serde_json::from_slice(&tar[1536..1536 + size]).unwrap();
        assert_eq!(app, serde_json::json!({"app": "echo", "port": 5678, "image": "hashicorp/http-echo"}));
        assert_eq!(tar.len() % 512, 0);
    }
}
