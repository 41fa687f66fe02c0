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
