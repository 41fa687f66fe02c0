//! The kubelet's event reasons (`pkg/kubelet/events/event.go`) and an ordered, non-blocking event
//! sink: a pod worker never waits for an Event write, yet a pod's events keep their order.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use netlab_client::recorder::{EventType, Recorder};
use tokio::sync::mpsc;

/// Pulling an image.
pub const PULLING: &str = "Pulling";
/// Pulled (or already present).
pub const PULLED: &str = "Pulled";
/// Pull, create or start failed (`Failed`).
pub const FAILED: &str = "Failed";
/// Waiting out a pull backoff.
pub const BACK_OFF: &str = "BackOff";
/// Container created.
pub const CREATED: &str = "Created";
/// Container started.
pub const STARTED: &str = "Started";
/// Container being stopped.
pub const KILLING: &str = "Killing";
/// A probe failed.
pub const UNHEALTHY: &str = "Unhealthy";
/// Sandbox creation (incl. CNI ADD) failed.
pub const FAILED_CREATE_POD_SANDBOX: &str = "FailedCreatePodSandBox";
/// The image reference does not parse.
pub const INSPECT_FAILED: &str = "InspectFailed";
/// `imagePullPolicy: Never` and the image is absent.
pub const ERR_IMAGE_NEVER_PULL: &str = "ErrImageNeverPull";
/// A volume could not be set up (a projected token the apiserver refused).
pub const FAILED_MOUNT: &str = "FailedMount";

/// Records Events in order on a background task.
#[derive(Clone)]
pub struct Events {
    tx: mpsc::UnboundedSender<(Arc<Pod>, EventType, &'static str, String)>,
}

// === impl Events ===

impl Events {
    /// Starts the writer on `recorder`.
    pub fn start(recorder: Recorder) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Arc<Pod>, EventType, &'static str, String)>();
        tokio::spawn(async move {
            while let Some((pod, kind, reason, message)) = rx.recv().await {
                recorder.record(pod.as_ref(), kind, reason, &message).await;
            }
        });
        Self { tx }
    }

    /// A Normal event.
    pub fn normal(&self, pod: &Arc<Pod>, reason: &'static str, message: impl Into<String>) {
        let _ = self.tx.send((pod.clone(), EventType::Normal, reason, message.into()));
    }

    /// A Warning event.
    pub fn warning(&self, pod: &Arc<Pod>, reason: &'static str, message: impl Into<String>) {
        let _ = self.tx.send((pod.clone(), EventType::Warning, reason, message.into()));
    }
}
