//! The `aws-node` DaemonSet as EKS's VPC CNI add-on installs it: its container's environment
//! is ipamd's configuration, which is where EKS users tune the warm pool (`kubectl set env
//! daemonset aws-node -n kube-system WARM_IP_TARGET=2`). `netlab up --eks` applies
//! [`manifest`]; each node-agent follows the object and restarts its ipamd when the env changes.

use std::collections::BTreeMap;

/// The DaemonSet's namespace.
pub const NAMESPACE: &str = "kube-system";
/// The DaemonSet's name, and its container's.
pub const NAME: &str = "aws-node";
/// The VPC CNI image EKS's add-on runs in us-east-1, which the EKS AMI caches.
pub const IMAGE: &str = "602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.22.4-eksbuild.1";

/// The manifest `netlab up --eks` applies, as EKS's VPC CNI add-on installs it (trimmed to
/// what the lab reads): `env` are the container's variables beyond the add-on's defaults.
pub fn manifest(env: &[(String, String)]) -> serde_json::Value {
    let mut vars: BTreeMap<String, String> = [
        ("ADDITIONAL_ENI_TAGS", "{}"),
        ("AWS_VPC_CNI_NODE_PORT_SUPPORT", "true"),
        ("AWS_VPC_ENI_MTU", "9001"),
        ("AWS_VPC_K8S_CNI_EXTERNALSNAT", "false"),
        ("AWS_VPC_K8S_CNI_LOGLEVEL", "DEBUG"),
        ("AWS_VPC_K8S_CNI_LOG_FILE", "/host/var/log/aws-routed-eni/ipamd.log"),
        ("AWS_VPC_K8S_CNI_RANDOMIZESNAT", "prng"),
        ("AWS_VPC_K8S_CNI_VETHPREFIX", "eni"),
        ("AWS_VPC_K8S_PLUGIN_LOG_FILE", "/var/log/aws-routed-eni/plugin.log"),
        ("AWS_VPC_K8S_PLUGIN_LOG_LEVEL", "DEBUG"),
        ("ENABLE_PREFIX_DELEGATION", "false"),
        ("WARM_ENI_TARGET", "1"),
        ("WARM_PREFIX_TARGET", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    vars.extend(env.iter().cloned());
    let env: Vec<serde_json::Value> =
        vars.into_iter().map(|(name, value)| serde_json::json!({"name": name, "value": value})).collect();
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"k8s-app": NAME}},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": NAME}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": NAME, "k8s-app": NAME}},
                "spec": {
                    "hostNetwork": true,
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [{
                        "name": NAME,
                        "image": IMAGE,
                        "env": env,
                        "ports": [{"containerPort": 61678, "name": "metrics"}]
                    }]
                }
            }
        }
    })
}

/// The knobs' names: what `netlab up --eks` copies from its environment into the DaemonSet.
pub const KNOBS: &[&str] = &[
    "WARM_ENI_TARGET",
    "WARM_IP_TARGET",
    "MINIMUM_IP_TARGET",
    "MAX_ENI",
    "ENABLE_PREFIX_DELEGATION",
    "WARM_PREFIX_TARGET",
    "IP_COOLDOWN_PERIOD",
    "AWS_VPC_K8S_CNI_EXTERNALSNAT",
    "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS",
    "AWS_VPC_K8S_CNI_RANDOMIZESNAT",
    "AWS_VPC_K8S_CNI_VETHPREFIX",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_carries_the_add_ons_defaults_and_the_overrides() {
        let m = manifest(&[("WARM_IP_TARGET".into(), "2".into()), ("WARM_ENI_TARGET".into(), "0".into())]);
        let env: BTreeMap<String, String> = m["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["name"].as_str().unwrap().to_string(), e["value"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(env["WARM_IP_TARGET"], "2");
        assert_eq!(env["WARM_ENI_TARGET"], "0", "an override replaces the default");
        assert_eq!(env["ENABLE_PREFIX_DELEGATION"], "false");
        let knobs = crate::Knobs::from_env(|k| env.get(k).cloned()).unwrap();
        assert_eq!((knobs.warm_ip_target, knobs.warm_eni_target), (2, 0));
        assert_eq!(m["spec"]["template"]["spec"]["containers"][0]["image"], IMAGE);
    }
}
