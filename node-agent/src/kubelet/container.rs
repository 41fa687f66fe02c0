//! One container's state as the kubelet tracks it: what the runtime said (its ID, start, why it
//! waits), the probes' verdict and the restarts. The worker changes it; the status is written
//! from it.

use std::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio_util::sync::CancellationToken;

use crate::image::Image;

/// One container's state as the kubelet tracks it.
#[derive(Debug, Clone, Default)]
pub struct ContainerState {
    /// The runtime's container ID while it runs.
    pub id: Option<String>,
    /// When it started.
    pub started_at: Option<Time>,
    /// Why it is not running: (reason, message).
    pub waiting: Option<(String, String)>,
    /// The readiness result.
    pub ready: bool,
    /// Restarts so far.
    pub restart_count: i32,
    /// The image it runs.
    pub image: Option<Image>,
    /// How its previous container ended (`lastState.terminated`), once one has.
    pub last_terminated: Option<Terminated>,
    /// The container ended and no new one runs yet: the kubelet restarts it per restartPolicy
    /// and the crash-loop backoff.
    pub exited: bool,
    /// The kubelet decided to start it again; the start counts as a restart.
    pub restarting: bool,
    /// While a pod-failure holds it: the original image is swapped for the pause image.
    pub paused_by: Option<String>,
    /// Cancels its probes when it stops.
    pub(super) probes: Option<CancellationToken>,
}

/// How a container ended, as `ContainerStateTerminated` shows it.
#[derive(Debug, Clone)]
pub struct Terminated {
    /// 137 for SIGKILL (128 + 9), 0 for a clean exit.
    pub exit_code: i32,
    /// `Error` for a non-zero exit, `Completed` for zero.
    pub reason: &'static str,
    /// When it had started.
    pub started_at: Option<Time>,
    /// When it ended.
    pub finished_at: Time,
    /// Its runtime ID.
    pub container_id: String,
    /// When it ended, on this process's clock (the crash-loop backoff counts from it).
    pub finished: Instant,
    /// Restart without the crash-loop backoff: the kubelet itself stopped it to change its
    /// definition (a new image), which gives the container a new backoff key.
    pub redefined: bool,
}

// === impl Terminated ===

impl Terminated {
    /// A container that ended now with `exit_code`.
    pub fn now(container_id: String, started_at: Option<Time>, exit_code: i32, redefined: bool) -> Self {
        Self {
            exit_code,
            reason: if exit_code == 0 { "Completed" } else { "Error" },
            started_at,
            finished_at: Time(jiff::Timestamp::now()),
            container_id,
            finished: Instant::now(),
            redefined,
        }
    }
}
