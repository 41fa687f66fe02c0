//! `get`'s tables: the columns and cells of [`netlab_printers`] (upstream's `printers.go`, which
//! the apiserver also serves as kubectl's server-side Table), laid out as kubectl lays out a
//! Table it receives: upper-cased headers, priority-1 columns only with `-o wide`, a leading
//! NAMESPACE with `-A`, a trailing LABELS with `--show-labels`.
//!
//! Every function here is pure: objects in as Kubernetes JSON plus "now", text out.

use std::fmt::Write as _;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use netlab_printers::{Generate, visible_columns};
use netlab_proto::apiserver::v1::Resource;
use serde_json::Value;

pub use netlab_printers::{
    event_times, human_duration, node_roles, service_ports, since, since_micro, typed,
};

use crate::{resource, selector::format_labels, tabwriter};

/// How `get` prints tables.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `-o wide`: the extra columns.
    pub wide: bool,
    /// `-A`: a leading NAMESPACE column (namespaced resources only).
    pub all_namespaces: bool,
    /// `--show-labels`: a trailing LABELS column.
    pub show_labels: bool,
    /// `--no-headers`.
    pub no_headers: bool,
    /// Names as `kind/name`, as kubectl prints them when several resource types are listed.
    pub kind_prefix: bool,
}

/// Renders one resource's table (header plus one row per object), aligned like kubectl's.
pub fn table(r: Resource, items: &[Value], opts: &Options, now: Timestamp) -> String {
    let with_ns = opts.all_namespaces && r.namespaced();
    let headers = columns(r, opts.wide);
    let mut text = String::new();
    if !opts.no_headers {
        let mut line: Vec<&str> = Vec::new();
        if with_ns {
            line.push("NAMESPACE");
        }
        line.extend(headers.iter().map(String::as_str));
        if opts.show_labels {
            line.push("LABELS");
        }
        text.push_str(&line.join("\t"));
        text.push('\n');
    }
    for item in items {
        let meta: ObjectMeta = item.get("metadata").map(typed).unwrap_or_default();
        let mut cells = Vec::new();
        if with_ns {
            cells.push(meta.namespace.clone().unwrap_or_default());
        }
        let mut row = row(r, item, opts.wide, now);
        // kubectl qualifies the NAME column, wherever it is (events have none unless wide).
        if opts.kind_prefix
            && let Some(i) = headers.iter().position(|c| c == "NAME")
            && let Some(cell) = row.get_mut(i)
        {
            *cell = resource::slash_name(r, cell);
        }
        cells.extend(row);
        if opts.show_labels {
            cells.push(format_labels(meta.labels.as_ref()));
        }
        // A tab inside a cell would shift every later column.
        let cells: Vec<String> = cells.into_iter().map(|c| c.replace(['\t', '\n'], " ")).collect();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    tabwriter::align(&text, tabwriter::TABLE)
}

/// The column headers of a resource's table, upper-cased as kubectl prints a Table's columns.
pub fn columns(r: Resource, wide: bool) -> Vec<String> {
    visible_columns(r, wide).map(|(_, c)| c.name.to_uppercase()).collect()
}

/// One object's cells, in [`columns`] order.
pub fn row(r: Resource, v: &Value, wide: bool, now: Timestamp) -> Vec<String> {
    let cells = netlab_printers::row(r, v, Generate { wide }, now);
    visible_columns(r, wide).filter_map(|(i, _)| cells.get(i).map(ToString::to_string)).collect()
}

/// `-o name`: one `kind.group/name` line per object.
pub fn names(r: Resource, items: &[Value]) -> String {
    let mut out = String::new();
    for item in items {
        let n = item.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        let _ = writeln!(out, "{}", resource::slash_name(r, n));
    }
    out
}

#[cfg(test)]
mod tests;
