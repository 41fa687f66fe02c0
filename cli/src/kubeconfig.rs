//! The kubeconfig that points stock kubectl (and client-go tools, kube-rs, the Python client) at
//! the lab's apiserver, which serves the Kubernetes REST API on its one port beside the gRPC
//! API. `netlab up` writes it to `<data-dir>/kubeconfig`; `netlab kubeconfig` prints it for
//! whichever apiserver `netlab` talks to (`--server`, or the native cluster's), so
//! `KUBECONFIG=<data-dir>/kubeconfig kubectl get pods -A` works in one step.
//!
//! The cluster is plain `http://` with an empty user: the apiserver does not authenticate REST
//! callers yet (kubectl sends no credentials and prints no warning for `http://`).

use std::path::{Path, PathBuf};

use crate::report::Problem;

/// The kubeconfig's file name in the data dir.
pub const FILE: &str = "kubeconfig";

/// The cluster, context and user name in the kubeconfig.
pub const NAME: &str = "netlab";

/// The kubeconfig for an apiserver at `server` (`http://127.0.0.1:6443`).
pub fn render(server: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- cluster:
    server: {server}
  name: {NAME}
contexts:
- context:
    cluster: {NAME}
    user: {NAME}
  name: {NAME}
current-context: {NAME}
preferences: {{}}
users:
- name: {NAME}
  user: {{}}
"
    )
}

/// `<data-dir>/kubeconfig`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// Writes `<data-dir>/kubeconfig` for `server`; returns its path.
pub fn write(data_dir: &Path, server: &str) -> Result<PathBuf, Problem> {
    let path = path(data_dir);
    std::fs::write(&path, render(server))
        .map_err(|e| Problem::client(format!("writing {}: {e}", path.display())))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_names_the_server_and_an_empty_user() {
        let text = render("http://127.0.0.1:6443");
        let doc: serde_json::Value = yaml_serde::from_str(&text).unwrap();
        assert_eq!(doc["kind"], "Config");
        assert_eq!(doc["current-context"], "netlab");
        assert_eq!(doc["clusters"][0]["cluster"]["server"], "http://127.0.0.1:6443");
        assert_eq!(doc["contexts"][0]["context"]["cluster"], "netlab");
        assert_eq!(doc["users"][0]["user"], serde_json::json!({}));
        let dir = tempfile::tempdir().unwrap();
        let written = write(dir.path(), "http://127.0.0.1:7000").unwrap();
        assert!(std::fs::read_to_string(written).unwrap().contains("server: http://127.0.0.1:7000"));
    }
}
