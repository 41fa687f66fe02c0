//! `<data-dir>/cluster.json`: where `netlab up` records the native cluster it started, and
//! through which every later `netlab` command (and `--server`'s default) finds it. Its own module
//! because both `up` (which writes it) and `config` (which reads it for the default server) need
//! it, and neither should import the other.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What `up` records for later commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterFile {
    /// The apiserver, `http://127.0.0.1:6443`.
    pub apiserver: String,
    /// Jaeger's query API of the trace store `up` started (`http://127.0.0.1:16686`), which
    /// `netlab trace` reads unless told another; absent when the lab exports elsewhere
    /// (`--otlp-endpoint`), and in files written before there was a store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jaeger_url: Option<String>,
    /// The cloud's AWS endpoint (`netlab aws env`); absent in files written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_endpoint: Option<String>,
    /// The running processes (detached mode).
    pub processes: Vec<Process>,
}

/// One process of a native cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Process {
    /// `apiserver`, `controller-manager`, ...
    pub name: String,
    /// Its process ID, which `netlab down` signals.
    pub pid: u32,
    /// Its log file (detached mode).
    pub log: Option<PathBuf>,
}

/// `<data-dir>/cluster.json`, if a native cluster was started there.
pub fn read_cluster(data_dir: &Path) -> Option<ClusterFile> {
    let text = std::fs::read_to_string(data_dir.join("cluster.json")).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_files_without_a_trace_store_still_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cluster.json"),
            r#"{"apiserver": "http://127.0.0.1:6443", "processes": []}"#,
        )
        .unwrap();
        let read = read_cluster(dir.path()).unwrap();
        assert_eq!((read.apiserver.as_str(), read.jaeger_url.as_deref()), ("http://127.0.0.1:6443", None));
        let written = serde_json::to_value(&read).unwrap();
        assert!(written.get("jaeger_url").is_none(), "left out when there is no store: {written}");
    }
}
