//! The `aws-node` DaemonSet as the node sees it ([`netlab_vpc_cni::daemonset`]): ipamd runs
//! inside the node-agent, so the node-agent follows the DaemonSet's `aws-node` container env and
//! restarts ipamd when it changes, as the DaemonSet's rollout restarts the pod. The pod itself
//! runs the image the EKS AMI caches ([`IMAGE`]), so it is there without a pull.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use netlab_client::{Client, ListParams, reflector};
pub use netlab_vpc_cni::daemonset::{IMAGE, NAME, NAMESPACE};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The plain `value`s of the `aws-node` container's env (`valueFrom` is not resolved: the
/// warm-pool settings are plain values). None when the DaemonSet has no such container.
pub fn env_of(ds: &DaemonSet) -> Option<BTreeMap<String, String>> {
    let spec = ds.spec.as_ref()?.template.spec.as_ref()?;
    let container = spec.containers.iter().find(|c| c.name == NAME)?;
    Some(container.env.iter().flatten().filter_map(|e| Some((e.name.clone(), e.value.clone()?))).collect())
}

/// Follows `kube-system/aws-node` until `shutdown`: the receiver holds its container env, or
/// None while there is no such DaemonSet (then the node-agent's own environment is used).
pub fn follow(
    client: Client,
    shutdown: CancellationToken,
) -> watch::Receiver<Option<BTreeMap<String, String>>> {
    let (tx, rx) = watch::channel(None);
    let params = ListParams {
        namespace: NAMESPACE.into(),
        fields: format!("metadata.name={NAME}"),
        ..Default::default()
    };
    let (cache, mut changes) = reflector::reflector::<DaemonSet>(client, params, shutdown.child_token());
    tokio::spawn(async move {
        loop {
            let env = cache.get(&format!("{NAMESPACE}/{NAME}")).as_deref().and_then(env_of);
            tx.send_if_modified(|now| {
                let changed = *now != env;
                *now = env;
                changed
            });
            tokio::select! {
                _ = shutdown.cancelled() => return,
                c = changes.recv() => if c.is_none() { return },
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_aws_node_containers_plain_values() {
        let ds: DaemonSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "aws-node"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [
                {"name": "aws-vpc-cni-init", "env": [{"name": "WARM_IP_TARGET", "value": "9"}]},
                {"name": "aws-node", "env": [
                    {"name": "WARM_IP_TARGET", "value": "3"},
                    {"name": "MY_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
                ]}
            ]}}}
        }))
        .unwrap();
        let env = env_of(&ds).unwrap();
        assert_eq!(env.len(), 1);
        assert_eq!(env["WARM_IP_TARGET"], "3");
    }
}
