//! Which slices to create, update and delete so that the existing ones say what [`Desired`] says,
//! with as few writes as possible: upstream's `reconcile`, `reconcileByPortMapping` and the
//! create-to-update swap of `finalize` (`pkg/controller/endpointslice/reconciler.go`).
//!
//! - An endpoint stays in the slice that holds it; a slice is written only if one of its
//!   endpoints changed or left, or its labels changed. Unchanged slices are never touched.
//! - New endpoints go first into slices being updated anyway (fullest first), then into the one
//!   unchanged slice they fill best, then into new slices. Slices are never rebalanced.
//! - Slices whose port set no pod has any more, and slices not owned by this Service's uid, go.
//! - A Service without endpoints keeps one empty "placeholder" slice, as upstream.
//! - A slice that would be deleted while another is created is updated into it instead.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use k8s_openapi::api::{
    core::v1::Service,
    discovery::v1::{Endpoint, EndpointPort, EndpointSlice},
};

use super::derive::{self, ADDRESS_TYPE_IPV4, Desired, PortKey};

/// The writes one sync makes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    /// New slices (with `generateName`).
    pub create: Vec<EndpointSlice>,
    /// Existing slices to replace (with the resourceVersion they were read at).
    pub update: Vec<EndpointSlice>,
    /// Existing slices to delete.
    pub delete: Vec<EndpointSlice>,
}

// === impl Plan ===

impl Plan {
    /// Whether the slices are already right.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// Desired endpoints not yet placed, in order, findable by identity.
struct Pending {
    order: BTreeMap<usize, Endpoint>,
    index: HashMap<EndpointKey, usize>,
}

type EndpointKey = (Vec<String>, Option<String>, Option<String>, Option<String>);

// === impl Pending ===

impl Pending {
    fn new(endpoints: &[Endpoint]) -> Self {
        let mut p = Self { order: BTreeMap::new(), index: HashMap::new() };
        for (i, e) in endpoints.iter().enumerate() {
            // A duplicate identity (two pods cannot share one, but be safe) keeps the first.
            if p.index.insert(derive::endpoint_key(e), i).is_none() {
                p.order.insert(i, e.clone());
            }
        }
        p
    }

    fn take(&mut self, e: &Endpoint) -> Option<Endpoint> {
        let i = self.index.remove(&derive::endpoint_key(e))?;
        self.order.remove(&i)
    }

    fn pop(&mut self) -> Option<Endpoint> {
        let (_, e) = self.order.pop_first()?;
        self.index.remove(&derive::endpoint_key(&e));
        Some(e)
    }

    fn len(&self) -> usize {
        self.order.len()
    }
}

/// Plans the writes that turn `existing` (the Service's managed slices) into `desired`.
pub fn plan(
    service: &Service,
    existing: &[Arc<EndpointSlice>],
    desired: &Desired,
    max_per_slice: usize,
) -> Plan {
    let max = max_per_slice.max(1);
    let labels = derive::slice_labels(service);
    let mut plan = Plan::default();
    let mut by_ports: BTreeMap<PortKey, Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in existing {
        if slice.address_type != ADDRESS_TYPE_IPV4 || !derive::owned_by(slice, service) {
            plan.delete.push((**slice).clone());
        } else {
            by_ports
                .entry(derive::port_key(slice.ports.as_deref().unwrap_or_default()))
                .or_default()
                .push(slice);
        }
    }
    let keys: BTreeSet<&PortKey> = by_ports.keys().chain(desired.groups.keys()).collect();
    for key in keys {
        let slices = by_ports.get(key).map(Vec::as_slice).unwrap_or_default();
        match desired.groups.get(key) {
            Some((ports, endpoints)) => {
                by_port_mapping(service, &labels, slices, ports, endpoints, max, &mut plan)
            }
            // No pod has this port set any more.
            None => plan.delete.extend(slices.iter().map(|s| (*s).clone())),
        }
    }
    // No endpoints at all: keep (or make) one empty placeholder slice.
    if existing.len() == plan.delete.len() && plan.create.is_empty() {
        let placeholder = derive::new_slice(service, Vec::new());
        let is_placeholder = |s: &EndpointSlice| {
            s.endpoints.is_empty()
                && s.ports.as_deref().unwrap_or_default().is_empty()
                && s.metadata.labels.as_ref() == Some(&labels)
                && s.address_type == ADDRESS_TYPE_IPV4
                && s.metadata.owner_references == placeholder.metadata.owner_references
        };
        if plan.delete.len() == 1 && is_placeholder(&plan.delete[0]) {
            plan.delete.clear();
        } else {
            plan.create.push(placeholder);
        }
    }
    // Rather than delete one slice and create another, update the first into the second.
    let mut i = 0;
    while i < plan.delete.len() && !plan.create.is_empty() {
        let old = &plan.delete[i];
        if old.address_type == ADDRESS_TYPE_IPV4 && derive::owned_by(old, service) {
            let old = plan.delete.remove(i);
            if let Some(mut slice) = plan.create.pop() {
                slice.metadata.generate_name = old.metadata.generate_name.clone();
                slice.metadata.name = old.metadata.name.clone();
                slice.metadata.uid = old.metadata.uid.clone();
                slice.metadata.resource_version = old.metadata.resource_version.clone();
                slice.metadata.creation_timestamp = old.metadata.creation_timestamp.clone();
                slice.metadata.annotations = old.metadata.annotations.clone();
                plan.update.push(slice);
            }
        } else {
            i += 1;
        }
    }
    plan
}

/// upstream `reconcileByPortMapping`: the slices of one port set.
fn by_port_mapping(
    service: &Service,
    labels: &BTreeMap<String, String>,
    existing: &[&EndpointSlice],
    ports: &[EndpointPort],
    desired: &[Endpoint],
    max: usize,
    plan: &mut Plan,
) {
    let mut pending = Pending::new(desired);
    let mut to_update: Vec<EndpointSlice> = Vec::new();
    let mut unchanged: Vec<&EndpointSlice> = Vec::new();
    // 1. Keep the endpoints still wanted where they are, with their current content.
    for slice in existing {
        let mut kept = Vec::with_capacity(slice.endpoints.len());
        let mut changed = false;
        for e in &slice.endpoints {
            if let Some(want) = pending.take(e) {
                changed |= want != *e;
                kept.push(want);
            }
        }
        let labels_changed = slice.metadata.labels.as_ref() != Some(labels);
        if changed || kept.len() != slice.endpoints.len() {
            if kept.is_empty() {
                plan.delete.push((*slice).clone());
            } else {
                let mut s = (*slice).clone();
                s.metadata.labels = Some(labels.clone());
                s.endpoints = kept;
                to_update.push(s);
            }
        } else if labels_changed {
            let mut s = (*slice).clone();
            s.metadata.labels = Some(labels.clone());
            to_update.push(s);
        } else {
            unchanged.push(slice);
        }
    }
    // 2. New endpoints go first into slices being written anyway, fullest first.
    if pending.len() > 0 {
        to_update.sort_by_key(|s| std::cmp::Reverse(s.endpoints.len()));
        for s in &mut to_update {
            while s.endpoints.len() < max
                && let Some(e) = pending.pop()
            {
                s.endpoints.push(e);
            }
        }
    }
    // 3. Then into the unchanged slice they fill best, else into new slices.
    while pending.len() > 0 {
        let fill = if pending.len() < max { best_fit(&unchanged, pending.len(), max) } else { None };
        let mut slice = match fill {
            Some(i) => unchanged.remove(i).clone(),
            None => derive::new_slice(service, ports.to_vec()),
        };
        if slice.metadata.name.is_some() {
            slice.metadata.labels = Some(labels.clone());
        }
        while slice.endpoints.len() < max
            && let Some(e) = pending.pop()
        {
            slice.endpoints.push(e);
        }
        if slice.metadata.name.is_some() {
            to_update.push(slice);
        } else {
            plan.create.push(slice);
        }
    }
    plan.update.extend(to_update);
}

/// upstream `getSliceToFill`: the slice that `n` more endpoints fill most closely.
fn best_fit(slices: &[&EndpointSlice], n: usize, max: usize) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, s) in slices.iter().enumerate() {
        let Some(room) = max.checked_sub(n + s.endpoints.len()) else { continue };
        if best.is_none_or(|(_, r)| room < r) {
            best = Some((i, room));
            if room == 0 {
                break;
            }
        }
    }
    best.map(|(i, _)| i)
}
