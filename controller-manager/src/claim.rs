//! Adopting and releasing, as upstream's `ControllerRefManager` (`ClaimPods`,
//! `ClaimReplicaSets`) does for every workload controller: an owner controls the objects that
//! carry its controller reference; an orphan its selector takes is adopted (the reference is
//! added), an owned object it no longer takes is released (the reference is removed). An owner
//! being deleted adopts and releases nothing.

use std::sync::Arc;

use netlab_client::{Client, Object};

use crate::{
    Result,
    error::not_found_ok,
    pod::{controller_of, controller_ref, is_terminating},
};

/// The `candidates` `owner` controls, after adopting the orphans `takes` and releasing the owned
/// ones it no longer takes. An object gone meanwhile is skipped.
pub async fn claim<P: Object, C: Object>(
    client: &Client,
    owner: &P,
    candidates: Vec<Arc<C>>,
    takes: impl Fn(&C) -> bool,
) -> Result<Vec<Arc<C>>> {
    let meta = owner.metadata();
    let uid = meta.uid.as_deref().unwrap_or_default();
    let deleting = is_terminating(meta);
    let mut owned = Vec::new();
    for child in candidates {
        let taken = takes(&child);
        match controller_of(child.metadata()) {
            Some(r) if r.uid != uid => {}
            Some(_) if taken => owned.push(child),
            Some(_) if !deleting => {
                let mut released = (*child).clone();
                if let Some(refs) = released.metadata_mut().owner_references.as_mut() {
                    refs.retain(|r| r.uid != uid);
                }
                not_found_ok(client.update(&released).await)?;
            }
            None if taken && !deleting && !is_terminating(child.metadata()) => {
                let mut adopted = (*child).clone();
                adopted.metadata_mut().owner_references.get_or_insert_default().push(controller_ref(owner));
                if let Some(adopted) = not_found_ok(client.update(&adopted).await)? {
                    tracing::info!(
                        kind = C::KIND,
                        name = ?adopted.metadata().name,
                        owner = ?meta.name,
                        "Adopted an orphan."
                    );
                    owned.push(Arc::new(adopted));
                }
            }
            _ => {}
        }
    }
    Ok(owned)
}
