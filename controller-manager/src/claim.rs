//! Adopting and releasing, as upstream's `ControllerRefManager` (`ClaimPods`,
//! `ClaimReplicaSets`) does for every workload controller: an owner controls the objects that
//! carry its controller reference; an orphan its selector takes is adopted (the reference is
//! added), an owned object it no longer takes is released (the reference is removed). An owner
//! being deleted adopts and releases nothing.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use netlab_client::{Client, Object};

use crate::{
    Result,
    error::not_found_ok,
    pod::{controller_of, controller_ref, is_terminating},
};

/// What a claim does with one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Controlled by the owner and taken: it is the owner's.
    Keep,
    /// Controlled by the owner, no longer taken: remove the reference.
    Release,
    /// An orphan the owner takes: add the reference.
    Adopt,
    /// Someone else's, or nothing to do.
    Skip,
}

/// The verdict on `child` for the owner with `owner_uid`, which is being deleted if `deleting`
/// (then it adopts and releases nothing) and whose selector takes `child` if `taken`.
pub fn verdict(owner_uid: &str, deleting: bool, child: &ObjectMeta, taken: bool) -> Verdict {
    match controller_of(child) {
        Some(r) if r.uid != owner_uid => Verdict::Skip,
        Some(_) if taken => Verdict::Keep,
        Some(_) if !deleting => Verdict::Release,
        None if taken && !deleting && !is_terminating(child) => Verdict::Adopt,
        _ => Verdict::Skip,
    }
}

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
        match verdict(uid, deleting, child.metadata(), takes(&child)) {
            Verdict::Keep => owned.push(child),
            Verdict::Release => {
                let mut released = (*child).clone();
                if let Some(refs) = released.metadata_mut().owner_references.as_mut() {
                    refs.retain(|r| r.uid != uid);
                }
                not_found_ok(client.update(&released).await)?;
            }
            Verdict::Adopt => {
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
            Verdict::Skip => {}
        }
    }
    Ok(owned)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{api::apps::v1::ReplicaSet, apimachinery::pkg::apis::meta::v1::Time};

    use super::*;

    fn owned_by(uid: &str) -> ObjectMeta {
        let owner = ReplicaSet {
            metadata: ObjectMeta { name: Some("rs".into()), uid: Some(uid.into()), ..Default::default() },
            ..Default::default()
        };
        ObjectMeta { owner_references: Some(vec![controller_ref(&owner)]), ..Default::default() }
    }

    #[test]
    fn an_owner_keeps_what_it_takes_releases_the_rest_and_adopts_orphans() {
        assert_eq!(verdict("a", false, &owned_by("a"), true), Verdict::Keep);
        assert_eq!(verdict("a", false, &owned_by("a"), false), Verdict::Release);
        assert_eq!(verdict("a", false, &ObjectMeta::default(), true), Verdict::Adopt);
        assert_eq!(verdict("a", false, &ObjectMeta::default(), false), Verdict::Skip);
        assert_eq!(verdict("a", false, &owned_by("b"), true), Verdict::Skip, "another owner's");
    }

    #[test]
    fn an_owner_being_deleted_and_an_orphan_being_deleted_change_hands_no_more() {
        assert_eq!(verdict("a", true, &owned_by("a"), true), Verdict::Keep);
        assert_eq!(verdict("a", true, &owned_by("a"), false), Verdict::Skip);
        assert_eq!(verdict("a", true, &ObjectMeta::default(), true), Verdict::Skip);
        let dying =
            ObjectMeta { deletion_timestamp: Some(Time(jiff::Timestamp::now())), ..Default::default() };
        assert_eq!(verdict("a", false, &dying, true), Verdict::Skip);
    }
}
