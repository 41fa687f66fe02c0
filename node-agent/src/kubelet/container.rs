//! One container's state as the kubelet tracks it: what the runtime said (its ID, start, why it
//! waits), the probes' verdict and the restarts. The worker changes it; the status is written
//! from it.

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
    /// Cancels its probes when it stops.
    pub(super) probes: Option<CancellationToken>,
}
