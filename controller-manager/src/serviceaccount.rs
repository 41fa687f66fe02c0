//! The ServiceAccounts controller (upstream's `serviceaccount-controller`): every namespace has a
//! ServiceAccount named `default`, created when the namespace appears and again if it is deleted.
//!
//! Pods that name no account run as `default` (the ServiceAccount admission plugin writes it into
//! their spec), and the kubelet asks for tokens of that account for their projected volumes; a
//! namespace without it leaves them in FailedMount. So the account must exist wherever pods can.

use std::sync::Arc;

use k8s_openapi::{
    api::core::v1::{Namespace, ServiceAccount},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use netlab_client::{
    Client, ListParams,
    reflector::{Cache, Change},
};

use crate::{Context, Result, controller};

/// The account every namespace gets.
pub const DEFAULT: &str = "default";

/// The controller: the namespaces and accounts it reads.
pub struct Controller {
    client: Client,
    namespaces: Cache<Namespace>,
    accounts: Cache<ServiceAccount>,
}

// === impl Controller ===

impl Controller {
    /// Ensures `namespace` has its `default` account.
    async fn sync(&self, namespace: &str) -> Result<()> {
        let Some(ns) = self.namespaces.get(namespace) else { return Ok(()) };
        let terminating = ns.metadata.deletion_timestamp.is_some()
            || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
        if terminating || self.accounts.get(&format!("{namespace}/{DEFAULT}")).is_some() {
            return Ok(());
        }
        let account = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(DEFAULT.into()),
                namespace: Some(namespace.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        match self.client.create(&account).await {
            Ok(_) => {
                tracing::info!(%namespace, "Created the default ServiceAccount.");
                Ok(())
            }
            Err(e) if e.is_already_exists() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl controller::Reconcile for Controller {
    const NAME: &'static str = "serviceaccount";
    type Error = crate::Error;

    async fn reconcile(&self, key: &str) -> Result<Option<std::time::Duration>> {
        self.sync(key).await.map(|()| None)
    }
}

/// The namespaces a change concerns: a namespace's own key; a deleted `default` account's
/// namespace.
fn namespace_of_account(change: &Change<ServiceAccount>) -> Vec<String> {
    match change {
        Change::Deleted(sa) if sa.metadata.name.as_deref() == Some(DEFAULT) => {
            sa.metadata.namespace.clone().into_iter().collect()
        }
        _ => Vec::new(),
    }
}

/// Starts the controller on `ctx.tasks`.
pub fn start(ctx: &Context) -> Result<()> {
    let (namespaces, ns_changes) = ctx.reflector::<Namespace>(ListParams::default());
    let (accounts, sa_changes) = ctx.reflector::<ServiceAccount>(ListParams::default());
    let ctl = Arc::new(Controller {
        client: ctx.client.clone(),
        namespaces: namespaces.clone(),
        accounts: accounts.clone(),
    });
    controller::Controller::new(ctl)
        .watches(&namespaces, ns_changes, |change| vec![change.key()])
        .watches(&accounts, sa_changes, namespace_of_account)
        .run(&ctx.tasks, ctx.config.concurrent_syncs);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(ns: &str, name: &str) -> ServiceAccount {
        ServiceAccount {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn only_a_deleted_default_account_requeues_its_namespace() {
        let gone = Change::Deleted(Arc::new(account("demo", "default")));
        assert_eq!(namespace_of_account(&gone), ["demo"]);
        assert!(namespace_of_account(&Change::Deleted(Arc::new(account("demo", "app")))).is_empty());
        assert!(namespace_of_account(&Change::Applied(Arc::new(account("demo", "default")))).is_empty());
    }
}
