//! A person's progress, kept in the cluster (the ConfigMap `kube-system/netlab-labs`), so it
//! survives restarts of every process and of the CLI's machine, and reads the same from the host
//! CLI and from `docker compose exec`.
//!
//! Besides the state shown by `list`, it holds what reset needs to undo a lab exactly: the
//! objects its setup made outside its own namespaces, and the original values of fields it
//! edited. Writes carry the ConfigMap's resourceVersion, so two terminals cannot lose each
//! other's progress silently.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::live::{Live, ObjRef};

/// Where progress lives.
pub const NAMESPACE: &str = "kube-system";
/// The ConfigMap's name.
pub const NAME: &str = "netlab-labs";
/// Its data key.
const KEY: &str = "progress.json";

/// The whole record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// The lab in progress, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// Per lab id.
    #[serde(default)]
    pub labs: BTreeMap<String, LabProgress>,
    /// The ConfigMap's resourceVersion when read (not stored).
    #[serde(skip)]
    pub resource_version: Option<String>,
}

/// Where a lab stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    /// Never started, or reset.
    #[default]
    NotStarted,
    /// Started, not yet passed.
    InProgress,
    /// Every check passed once.
    Passed,
}

impl State {
    /// As `netlab lab list` prints it.
    pub fn text(self) -> &'static str {
        match self {
            State::NotStarted => "not started",
            State::InProgress => "in progress",
            State::Passed => "passed",
        }
    }
}

/// One lab's record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabProgress {
    /// Where it stands.
    pub state: State,
    /// The values drawn for the current run.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// How many hints have been shown in this run.
    #[serde(default)]
    pub hints: usize,
    /// Answers given, by question number (1-based).
    #[serde(default)]
    pub answers: BTreeMap<usize, String>,
    /// The namespaces the run owns (deleted on reset), as the lab named them when it started.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Objects the setup created outside the lab's namespaces (faults, cluster-scoped objects).
    #[serde(default)]
    pub created: Vec<ObjRef>,
    /// Fields the setup edited, with their values before the lab.
    #[serde(default)]
    pub saved: Vec<Saved>,
    /// Container envs the lab changed (`setEnv`), as they were before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub envs: Vec<SavedEnv>,
    /// IAM roles the lab changed, as they were before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<SavedRole>,
    /// ARNs of the OpenID Connect providers the lab created (deleted on reset).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oidc_providers: Vec<String>,
    /// When the current run started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    /// When it first passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<String>,
}

/// A field's value before a lab edited it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Saved {
    /// The object.
    pub object: ObjRef,
    /// The field path (`data.Corefile`).
    pub field: String,
    /// Its value then.
    pub value: String,
}

/// A container's env as it was before a lab's `setEnv` changed it: the whole list, so reset
/// puts back each variable's value (or absence) and their order, whatever was changed meanwhile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedEnv {
    /// The workload (resource as its plural: `daemonsets`).
    pub object: ObjRef,
    /// The container.
    pub container: String,
    /// Its `env` then (the EnvVar objects as the apiserver served them; empty when it had none).
    #[serde(default)]
    pub env: Vec<Value>,
}

/// An IAM role as it was before a lab changed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedRole {
    /// The role's name.
    pub name: String,
    /// Its state then; None when it did not exist (reset deletes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RoleState>,
}

/// What reset restores of a role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleState {
    /// The trust policy document (JSON).
    pub trust: String,
    /// Attached managed policies, by ARN.
    #[serde(default)]
    pub attached: Vec<String>,
    /// Inline policies: name → document (JSON).
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
}

impl Progress {
    /// Reads the record; an absent ConfigMap is a fresh start.
    pub async fn load(live: &mut impl Live) -> Result<Self, String> {
        let Some(cm) = live.get("configmaps", NAMESPACE, NAME).await? else {
            return Ok(Progress::default());
        };
        let text = cm["data"][KEY].as_str().unwrap_or("{}");
        let mut progress: Progress = serde_json::from_str(text).map_err(|e| {
            format!("configmap {NAMESPACE}/{NAME}: data.{KEY}: {e} (delete it to start afresh)")
        })?;
        progress.resource_version = cm["metadata"]["resourceVersion"].as_str().map(String::from);
        Ok(progress)
    }

    /// Writes the record (a conflict means another terminal wrote first: the error says so).
    pub async fn save(&mut self, live: &mut impl Live) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        let mut cm = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": NAME,
                "namespace": NAMESPACE,
                "labels": {"app.kubernetes.io/managed-by": "netlab-lab"},
            },
            "data": {KEY: text},
        });
        if let Some(rv) = &self.resource_version {
            cm["metadata"]["resourceVersion"] = Value::String(rv.clone());
        }
        let saved = live.put("configmaps", NAMESPACE, &cm).await?;
        self.resource_version = saved["metadata"]["resourceVersion"].as_str().map(String::from);
        Ok(())
    }

    /// The record of `id`, created when absent.
    pub fn lab(&mut self, id: &str) -> &mut LabProgress {
        self.labs.entry(id.to_string()).or_default()
    }

    /// The state of `id`.
    pub fn state(&self, id: &str) -> State {
        self.labs.get(id).map(|l| l.state).unwrap_or_default()
    }
}
