//! EKS's pod identity webhook (amazon-eks-pod-identity-webhook), the mutating admission step
//! that makes IRSA work: a pod whose ServiceAccount carries `eks.amazonaws.com/role-arn` gets the
//! role's ARN and the path of a projected service-account token in its environment, and the
//! projected token volume itself (audience `sts.amazonaws.com`), so the AWS SDK's credential
//! chain finds a web identity before it falls back to IMDS.
//!
//! On EKS it runs on the control plane as a webhook that the API server calls; the lab runs it in
//! the apiserver's admission (`--enable-pod-identity-webhook`), before validation as a mutating
//! webhook runs. What it writes follows the webhook's README and what `kubectl get pod -o yaml`
//! shows on EKS: the env in the order EKS pods show it, the volume `aws-iam-token` (projected,
//! defaultMode 420, expirationSeconds 86400), mounted read-only at
//! `/var/run/secrets/eks.amazonaws.com/serviceaccount`. The annotations it reads:
//! `eks.amazonaws.com/role-arn`, `/audience`, `/sts-regional-endpoints`, `/token-expiration` on
//! the ServiceAccount, `eks.amazonaws.com/skip-containers` on the pod.

use serde_json::{Map, Value, json};

/// The ServiceAccount annotation naming the role.
pub const ROLE_ARN: &str = "eks.amazonaws.com/role-arn";
/// The ServiceAccount annotation overriding the token's audience.
pub const AUDIENCE: &str = "eks.amazonaws.com/audience";
/// The ServiceAccount annotation choosing regional STS endpoints (`"true"`/`"false"`).
pub const STS_REGIONAL_ENDPOINTS: &str = "eks.amazonaws.com/sts-regional-endpoints";
/// The ServiceAccount annotation overriding the token's lifetime, seconds.
pub const TOKEN_EXPIRATION: &str = "eks.amazonaws.com/token-expiration";
/// The pod annotation listing containers to leave alone (comma-separated).
pub const SKIP_CONTAINERS: &str = "eks.amazonaws.com/skip-containers";

/// The volume the webhook adds.
pub const VOLUME: &str = "aws-iam-token";
/// Where it is mounted.
pub const MOUNT_PATH: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
/// The token's default audience.
pub const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";
/// The token's default lifetime (the webhook's `--token-expiration`).
pub const DEFAULT_EXPIRATION: i64 = 86_400;
/// The shortest lifetime the webhook accepts from an annotation (shorter ones are raised to it).
const MIN_EXPIRATION: i64 = 3_600;

/// The webhook's settings.
#[derive(Debug, Clone)]
pub struct PodIdentityWebhook {
    /// `--aws-default-region`: written as AWS_REGION and AWS_DEFAULT_REGION.
    pub region: String,
    /// Whether pods get `AWS_STS_REGIONAL_ENDPOINTS=regional` unless their account says
    /// otherwise (EKS sets it).
    pub sts_regional_endpoints: bool,
}

// === impl PodIdentityWebhook ===

impl PodIdentityWebhook {
    /// Mutates `pod` (Kubernetes JSON) for its ServiceAccount `account`; returns whether it
    /// changed anything (a pod whose account names no role is left as it is).
    pub fn mutate(&self, pod: &mut Value, account: &Value) -> bool {
        let annotation = |key: &str| account.pointer(&format!("/metadata/annotations/{}", escape(key)));
        let Some(role) = annotation(ROLE_ARN).and_then(Value::as_str).filter(|r| !r.is_empty()) else {
            return false;
        };
        let audience = annotation(AUDIENCE).and_then(Value::as_str).unwrap_or(DEFAULT_AUDIENCE).to_string();
        let expiration = annotation(TOKEN_EXPIRATION)
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<i64>().ok())
            .map_or(DEFAULT_EXPIRATION, |s| s.max(MIN_EXPIRATION));
        let regional = match annotation(STS_REGIONAL_ENDPOINTS).and_then(Value::as_str) {
            Some(v) => v == "true",
            None => self.sts_regional_endpoints,
        };
        let skip: Vec<String> = pod
            .pointer(&format!("/metadata/annotations/{}", escape(SKIP_CONTAINERS)))
            .and_then(Value::as_str)
            .map(|s| s.split(',').map(|c| c.trim().to_string()).collect())
            .unwrap_or_default();

        let mut env = Vec::new();
        if regional {
            env.push(("AWS_STS_REGIONAL_ENDPOINTS", "regional".to_string()));
        }
        env.push(("AWS_DEFAULT_REGION", self.region.clone()));
        env.push(("AWS_REGION", self.region.clone()));
        env.push(("AWS_ROLE_ARN", role.to_string()));
        env.push(("AWS_WEB_IDENTITY_TOKEN_FILE", format!("{MOUNT_PATH}/token")));

        let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return false };
        let mut changed = false;
        for list in ["initContainers", "containers"] {
            let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else { continue };
            for container in containers {
                let Some(c) = container.as_object_mut() else { continue };
                let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
                if skip.iter().any(|s| s == name) {
                    continue;
                }
                add_env(c, &env);
                add_mount(c);
                changed = true;
            }
        }
        if changed {
            add_volume(spec, &audience, expiration);
        }
        changed
    }
}

/// A JSON pointer segment (`/` and `~` escaped).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Appends the variables the container does not set itself (what the pod's author wrote wins).
fn add_env(container: &mut Map<String, Value>, env: &[(&str, String)]) {
    let list = container.entry("env").or_insert_with(|| json!([]));
    let Some(list) = list.as_array_mut() else { return };
    for (name, value) in env {
        if !list.iter().any(|e| e.get("name").and_then(Value::as_str) == Some(name)) {
            list.push(json!({ "name": name, "value": value }));
        }
    }
}

fn add_mount(container: &mut Map<String, Value>) {
    let mounts = container.entry("volumeMounts").or_insert_with(|| json!([]));
    let Some(mounts) = mounts.as_array_mut() else { return };
    if !mounts.iter().any(|m| m.get("mountPath").and_then(Value::as_str) == Some(MOUNT_PATH)) {
        mounts.push(json!({ "name": VOLUME, "readOnly": true, "mountPath": MOUNT_PATH }));
    }
}

fn add_volume(spec: &mut Map<String, Value>, audience: &str, expiration: i64) {
    let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
    let Some(volumes) = volumes.as_array_mut() else { return };
    if volumes.iter().any(|v| v.get("name").and_then(Value::as_str) == Some(VOLUME)) {
        return;
    }
    volumes.push(json!({
        "name": VOLUME,
        "projected": {
            "defaultMode": 420,
            "sources": [{ "serviceAccountToken": {
                "audience": audience,
                "expirationSeconds": expiration,
                "path": "token",
            } }],
        },
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/s3-reader";

    fn webhook() -> PodIdentityWebhook {
        PodIdentityWebhook { region: "us-east-1".into(), sts_regional_endpoints: true }
    }

    fn account(annotations: Value) -> Value {
        json!({ "metadata": { "name": "s3-reader", "annotations": annotations } })
    }

    fn pod() -> Value {
        json!({
            "metadata": { "name": "app" },
            "spec": {
                "serviceAccountName": "s3-reader",
                "initContainers": [{ "name": "init", "image": "busybox" }],
                "containers": [
                    { "name": "app", "image": "nginx", "env": [{ "name": "AWS_REGION", "value": "eu-west-1" }] },
                    { "name": "sidecar", "image": "busybox" },
                ],
            },
        })
    }

    fn names(env: &Value) -> Vec<&str> {
        env.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect()
    }

    #[test]
    fn injects_what_eks_pods_show() {
        let mut p = pod();
        assert!(webhook().mutate(&mut p, &account(json!({ ROLE_ARN: ROLE }))));
        let sidecar = &p["spec"]["containers"][1];
        assert_eq!(
            sidecar["env"],
            json!([
                { "name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional" },
                { "name": "AWS_DEFAULT_REGION", "value": "us-east-1" },
                { "name": "AWS_REGION", "value": "us-east-1" },
                { "name": "AWS_ROLE_ARN", "value": ROLE },
                { "name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token" },
            ])
        );
        assert_eq!(
            sidecar["volumeMounts"],
            json!([{ "name": "aws-iam-token", "readOnly": true, "mountPath": MOUNT_PATH }])
        );
        assert_eq!(
            p["spec"]["volumes"],
            json!([{ "name": "aws-iam-token", "projected": { "defaultMode": 420, "sources": [
                { "serviceAccountToken": { "audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token" } }
            ] } }])
        );
        // What the author set wins; init containers are covered too.
        let app = &p["spec"]["containers"][0]["env"];
        assert_eq!(names(app)[0], "AWS_REGION");
        assert_eq!(app[0]["value"], "eu-west-1");
        assert_eq!(names(app).iter().filter(|n| **n == "AWS_REGION").count(), 1);
        assert_eq!(p["spec"]["initContainers"][0]["volumeMounts"][0]["name"], "aws-iam-token");
        // A second pass changes nothing more.
        let once = p.clone();
        webhook().mutate(&mut p, &account(json!({ ROLE_ARN: ROLE })));
        assert_eq!(p, once);
    }

    #[test]
    fn reads_the_accounts_and_pods_annotations() {
        let mut p = pod();
        p["metadata"]["annotations"] = json!({ SKIP_CONTAINERS: "sidecar, init" });
        let sa = account(json!({
            ROLE_ARN: ROLE,
            AUDIENCE: "vault",
            STS_REGIONAL_ENDPOINTS: "false",
            TOKEN_EXPIRATION: "600",
        }));
        assert!(webhook().mutate(&mut p, &sa));
        assert!(p["spec"]["containers"][1].get("env").is_none());
        assert!(p["spec"]["initContainers"][0].get("volumeMounts").is_none());
        let token = &p["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"];
        assert_eq!(
            (token["audience"].as_str(), token["expirationSeconds"].as_i64()),
            (Some("vault"), Some(3600))
        );
        assert!(!names(&p["spec"]["containers"][0]["env"]).contains(&"AWS_STS_REGIONAL_ENDPOINTS"));
    }

    #[test]
    fn an_account_without_a_role_changes_nothing() {
        let mut p = pod();
        assert!(!webhook().mutate(&mut p, &account(json!({ "other": "x" }))));
        assert!(!webhook().mutate(&mut p, &json!({ "metadata": { "name": "default" } })));
        assert_eq!(p, pod());
    }
}
