//! Pod create → Ready with the image cached, 100 pods, against the real apiserver,
//! controller-manager, scheduler, cloud and a node-agent (results in BENCHMARKS.md).
//!
//! `cargo build --release --bins && cargo bench -p netlab-e2e --bench kubelet` (a bench runs in
//! the release profile and starts the release binaries beside it).

#[allow(dead_code, unused_imports)]
#[path = "../e2e/nodes.rs"]
mod nodes;

fn main() {
    nodes::pod_create_to_ready_latency();
}
