//! A pod's sandbox record: its ID, its IP and the CNI result, kept in `<data-dir>/pods/<uid>/`
//! beside the pod's `etc/resolv.conf`, so a restarted node-agent finds the pod's network as it
//! left it (containerd keeps its sandboxes across kubelet restarts the same way).

use std::{net::IpAddr, path::Path};

use serde::{Deserialize, Serialize};

use crate::cni::{CniRequest, CniResult};

/// The record file in a pod's directory.
pub const SANDBOX_FILE: &str = "sandbox.json";

/// One pod sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sandbox {
    /// The sandbox ID (CNI's container ID).
    pub id: String,
    /// The pod's IP (the node's for hostNetwork pods).
    pub ip: IpAddr,
    /// Whether it shares the node's network (no CNI).
    pub host_network: bool,
    /// CNI ADD's result.
    pub cni_result: Option<CniResult>,
    /// The request ADD was called with (DEL repeats it).
    pub cni_request: Option<CniRequest>,
}

// === impl Sandbox ===

impl Sandbox {
    /// The record in `dir`, if any.
    pub fn load(dir: &Path) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(dir.join(SANDBOX_FILE)).ok()?).ok()
    }

    /// Writes the record to `dir` atomically.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!("{SANDBOX_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(tmp, dir.join(SANDBOX_FILE))
    }
}
