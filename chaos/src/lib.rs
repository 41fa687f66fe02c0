//! The fault objects of `chaos.netlab.io/v1alpha1`, shared by everything that creates, checks or
//! enforces them.
//!
//! Faults are API objects rather than commands so that they are declarative, survive restarts of
//! every process, are re-evaluated as pods come and go, and can be listed, described and deleted
//! like any object. Chaos Mesh's kinds ([`NetworkChaos`], [`DnsChaos`], [`PodChaos`]) keep its
//! field names and semantics, so a user's Chaos Mesh manifests apply with only the apiVersion
//! changed. The lab's own kinds reach what Chaos Mesh cannot: a component process
//! ([`ComponentChaos`]), the image registry ([`RegistryChaos`]), the upstream resolver
//! ([`UpstreamDnsChaos`]) and exhausted ranges and tables ([`ExhaustionChaos`]).
//!
//! Each fault is enforced where the real fault lives, by the process that watches it (node
//! kernels, `dns`, `cloud`, kubelets, every component's servers). What they share is here:
//!
//! - [`spec`]: the selector, mode and duration every kind has; [`network`], [`dns`], [`pod`] and
//!   [`lab`]: one module per kind family.
//! - [`status`]: what a fault reports (records of what it was injected on, counters) and the
//!   events it records, as Chaos Mesh words them.
//! - [`select`]: which pods a selector and mode pick, the same way in every process.
//! - [`window`]: when a fault is in force (created, not paused, duration not up).
//! - [`pattern`]: Chaos Mesh's wildcard patterns for DNS names and repositories.
//! - [`mark`]: how a fault's decision shows on the span it affected.
//! - [`report`]: counters from the enforcers into the faults' status.

pub mod dns;
pub mod lab;
pub mod mark;
pub mod network;
pub mod object;
pub mod pattern;
pub mod pod;
pub mod report;
pub mod select;
pub mod spec;
pub mod status;
pub mod window;

pub use dns::{DnsChaos, DnsChaosSpec};
pub use lab::{
    ComponentChaos, ComponentChaosSpec, ExhaustionChaos, ExhaustionChaosSpec, RegistryChaos,
    RegistryChaosSpec, UpstreamDnsChaos, UpstreamDnsChaosSpec,
};
pub use mark::FaultRef;
pub use network::{NetworkChaos, NetworkChaosSpec};
pub use object::{Chaos, Fault};
pub use pod::{PodChaos, PodChaosSpec};
pub use status::ChaosStatus;

/// The API group.
pub const GROUP: &str = "chaos.netlab.io";
/// The API version every fault kind is served at.
pub const API_VERSION: &str = "chaos.netlab.io/v1alpha1";
/// Chaos Mesh's annotation that pauses an experiment without deleting it (`"true"`).
pub const PAUSE_ANNOTATION: &str = "experiment.chaos-mesh.org/pause";
