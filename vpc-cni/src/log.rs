//! ipamd's log, `/var/log/aws-routed-eni/ipamd.log`: one JSON object a line, as ipamd's zap
//! logger writes it (`{"level":"info","ts":"…","caller":"ipamd/ipamd.go:NNN","msg":"…"}`).
//!
//! Why: the lab's users read this file the way they would on a real node (`kubectl exec
//! aws-node -- cat …` or the log collector), so messages and callers are upstream's own; the
//! `caller` line numbers are those of aws/amazon-vpc-cni-k8s at b52188387 (2026-08-20). Every
//! line is also a `tracing` event so it shows up in the node-agent's traces.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A zap level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `debug` (aws-node's default `AWS_VPC_K8S_CNI_LOGLEVEL=DEBUG` writes these).
    Debug,
    /// `info`.
    Info,
    /// `warn`.
    Warn,
    /// `error`.
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// The ipamd.log writer. Write failures are reported once through `tracing` and otherwise
/// ignored: a full disk must not stop pods from getting addresses.
#[derive(Debug)]
pub struct Logger {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

// === impl Logger ===

impl Logger {
    /// A logger appending to `path` (created with its directory on first write).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), file: Mutex::new(None) }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one line and emits it as a `tracing` event.
    pub fn log(&self, level: Level, caller: &str, msg: impl AsRef<str>) {
        let msg = msg.as_ref();
        match level {
            Level::Debug => tracing::debug!(target: "ipamd", caller, "{msg}"),
            Level::Info => tracing::info!(target: "ipamd", caller, "{msg}"),
            Level::Warn => tracing::warn!(target: "ipamd", caller, "{msg}"),
            Level::Error => tracing::error!(target: "ipamd", caller, "{msg}"),
        }
        let ts = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        let line = serde_json::json!({"level": level.as_str(), "ts": ts, "caller": caller, "msg": msg});
        let Ok(mut guard) = self.file.lock() else { return };
        if guard.is_none() {
            if let Some(dir) = self.path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            match std::fs::OpenOptions::new().create(true).append(true).open(&self.path) {
                Ok(f) => *guard = Some(f),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot open ipamd.log");
                    return;
                }
            }
        }
        if let Some(f) = guard.as_mut() {
            let _ = writeln!(f, "{line}");
        }
    }

    /// `debug`.
    pub fn debug(&self, caller: &str, msg: impl AsRef<str>) {
        self.log(Level::Debug, caller, msg);
    }

    /// `info`.
    pub fn info(&self, caller: &str, msg: impl AsRef<str>) {
        self.log(Level::Info, caller, msg);
    }

    /// `warn`.
    pub fn warn(&self, caller: &str, msg: impl AsRef<str>) {
        self.log(Level::Warn, caller, msg);
    }

    /// `error`.
    pub fn error(&self, caller: &str, msg: impl AsRef<str>) {
        self.log(Level::Error, caller, msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_zap_json() {
        let dir = tempfile::tempdir().unwrap();
        let log = Logger::new(dir.path().join("sub/ipamd.log"));
        log.info("ipamd/ipamd.go:786", "IP pool manager - max pods: 11");
        log.error("datastore/data_store.go:858", "DataStore has no available IP/Prefix addresses");
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["level"], "info");
        assert_eq!(lines[0]["caller"], "ipamd/ipamd.go:786");
        assert_eq!(lines[1]["msg"], "DataStore has no available IP/Prefix addresses");
        let ts = lines[0]["ts"].as_str().unwrap();
        assert_eq!(ts.len(), "2026-12-07T23:40:00.123Z".len(), "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts}");
    }
}
