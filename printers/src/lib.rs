//! Kubernetes' table printers: for every kind the lab serves, the columns `kubectl get` shows
//! (names, types, `-o wide` priority, descriptions) and each object's cells, ported from
//! upstream's `pkg/printers/internalversion/printers.go`.
//!
//! Upstream keeps these printers in the apiserver: kubectl asks for a server-side `Table`
//! (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`) and prints the cells it gets, so the
//! columns are the server's. netlab has two users of the same logic: the apiserver's REST edge
//! answers stock kubectl with Tables built here, and the `netlab` CLI renders its own tables from
//! the same definitions. One crate keeps the two from drifting apart.
//!
//! Every function is pure: objects in as Kubernetes JSON plus "now", cells out.
//!
//! # Layout
//! - [`columns`]: the column definitions per resource ([`Column`]).
//! - [`cells`]: one object's cells per resource ([`Cell`]), including the pod STATUS rules.
//! - [`duration`]: Go's `duration.HumanDuration` and the AGE helpers.
//! - [`labels`]: labels and label selectors written as kubectl writes them.

use netlab_proto::apiserver::v1::Resource;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub mod cells;
pub mod columns;
pub mod duration;
pub mod labels;

pub use cells::{Cell, event_times, node_roles, row, service_ports};
pub use columns::{Column, columns};
pub use duration::{human_duration, since, since_micro};

/// How rows are generated (upstream's `printers.GenerateOptions`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Generate {
    /// Wide output: upstream clips a LoadBalancer's ingress list to 16 bytes unless wide. The
    /// apiserver always generates wide rows (kubectl hides priority-1 columns itself).
    pub wide: bool,
}

/// Decodes an object as its k8s-openapi type; the server's JSON always fits, but a partial object
/// prints as defaults rather than failing the whole table.
pub fn typed<T: DeserializeOwned + Default>(v: &Value) -> T {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

/// The column definitions of `r` that a table shows: every column when `wide`, else those of
/// priority 0 (kubectl's `-o wide` rule).
pub fn visible_columns(r: Resource, wide: bool) -> impl Iterator<Item = (usize, &'static Column)> {
    columns(r).iter().enumerate().filter(move |(_, c)| wide || c.priority == 0)
}

#[cfg(test)]
mod tests;
