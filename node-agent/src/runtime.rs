//! The container runtime: where a container's app actually runs. There are no Linux processes or
//! namespaces: each container is a set of tokio tasks inside node-agent, started with a
//! cancellation token and stopped by cancelling it. IDs look like containerd's (64 hex).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

use crate::{
    apps::{self, Identity},
    image::AppKind,
    sockets::{SocketError, SocketTable},
};

/// The runtime a node reports (`containerRuntimeVersion`).
pub const RUNTIME_VERSION: &str = "containerd://1.7.27";

/// The node's containers.
#[derive(Debug, Default)]
pub struct Runtime {
    sockets: SocketTable,
    containers: Mutex<HashMap<String, Running>>,
}

#[derive(Debug)]
struct Running {
    kind: AppKind,
    stop: CancellationToken,
}

// === impl Runtime ===

impl Runtime {
    /// A runtime whose apps listen on `sockets`.
    pub fn new(sockets: SocketTable) -> Self {
        Self { sockets, containers: Mutex::default() }
    }

    /// The node's socket table.
    pub fn sockets(&self) -> &SocketTable {
        &self.sockets
    }

    /// A fresh 64-hex ID (sandbox or container), unique per `seed` and moment.
    pub fn new_id(seed: &str) -> String {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::image::registry::hex(&Sha256::digest(format!("{seed}/{nanos}/{n}/{}", std::process::id())))
    }

    /// Starts container `id` running `kind` as `who` on `port`.
    pub fn start(
        &self,
        id: &str,
        kind: AppKind,
        who: Identity,
        port: Option<u16>,
    ) -> Result<(), SocketError> {
        let stop = CancellationToken::new();
        apps::start(kind, who, port, &self.sockets, stop.clone())?;
        let old = self.lock().insert(id.to_string(), Running { kind, stop });
        if let Some(old) = old {
            old.stop.cancel();
        }
        Ok(())
    }

    /// Stops container `id` (nothing running is fine).
    pub fn stop(&self, id: &str) {
        if let Some(r) = self.lock().remove(id) {
            r.stop.cancel();
        }
    }

    /// Runs `command` in container `id`; None if it is not running.
    pub fn exec(&self, id: &str, command: &[String]) -> Option<i32> {
        let kind = self.lock().get(id).map(|r| r.kind)?;
        Some(apps::exec(kind, command))
    }

    /// Whether container `id` runs.
    pub fn is_running(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        // Entries are inserted and removed whole.
        self.containers.lock().unwrap_or_else(|e| e.into_inner())
    }
}
