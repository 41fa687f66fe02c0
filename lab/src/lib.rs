//! The lab runner: guided, self-checking exercises run in the live cluster.
//!
//! A lab is data (`labs/<id>/lab.yaml` and its manifests): the symptom, the task, hints, the
//! setup that breaks the cluster, what must be observed once it is fixed, and a reference fix.
//! This crate reads the catalogue, sets a lab up, checks it, and undoes it, through the
//! [`live::Live`] trait, which the CLI implements over the apiserver, the nodes' exec and the
//! trace store. Nothing here knows a particular lab: adding one needs no Rust change.
//!
//! # Layout
//! - [`spec`]: the `lab.yaml` format and its validation.
//! - [`template`]: `{{name}}` placeholders, filled per run.
//! - [`catalog`]: the labs folder.
//! - [`live`]: what the runner needs from the cluster.
//! - [`iam`]: roles and OIDC providers of the cluster's AWS account, changed and restored.
//! - [`objective`]: observing one objective (exec, object, trace, answer).
//! - [`progress`]: a person's progress, kept in the cluster.
//! - [`runner`]: the `netlab lab` verbs.
//! - [`error`]: what can go wrong.

pub mod catalog;
pub mod error;
pub mod iam;
pub mod live;
pub mod objective;
pub mod progress;
pub mod runner;
pub mod spec;
pub mod template;

pub use error::Error;
pub use runner::Runner;
