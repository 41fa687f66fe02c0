//! What the runner needs from the live cluster, as a trait: the CLI implements it over the
//! apiserver, the node's exec, the trace store and the cluster's AWS endpoint; the runner's tests
//! implement it in memory.

use serde_json::Value;

/// An object the runner made or changed, by resource plural, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjRef {
    /// The resource as kubectl names it: `services`, `networkchaos`.
    pub resource: String,
    /// Empty for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The object's name.
    pub name: String,
}

/// What a command printed and how it exited.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// Its exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// A span of a trace, as the checks look at it.
#[derive(Debug, Clone, Default)]
pub struct Span {
    /// The operation name.
    pub name: String,
    /// The process's service name.
    pub service: String,
    /// Tags as text.
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// An error from the cluster, already worded for a person (kubectl's wording).
pub type LiveResult<T> = Result<T, String>;

/// An error AWS answered a call with: its code (`NoSuchEntity`) and message, as the aws CLI
/// prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsFault {
    /// The error code.
    pub code: String,
    /// The message.
    pub message: String,
}

impl std::fmt::Display for AwsFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}) {}", self.code, self.message)
    }
}

/// The live cluster.
#[allow(async_fn_in_trait)]
pub trait Live {
    /// One object, None when it does not exist.
    async fn get(&mut self, resource: &str, namespace: &str, name: &str) -> LiveResult<Option<Value>>;
    /// Objects matching a label selector (empty: all) in a namespace (empty: all, or cluster-scoped).
    async fn list(&mut self, resource: &str, namespace: &str, selector: &str) -> LiveResult<Vec<Value>>;
    /// Applies a manifest (as `netlab apply -f`), printing kubectl's lines to `out`; returns what
    /// it applied and whether each was created (true) or already existed.
    async fn apply(&mut self, source: &str, text: &str, out: &mut String) -> LiveResult<Vec<(ObjRef, bool)>>;
    /// Replaces an object (with its resourceVersion as a precondition) or creates it when it has none.
    async fn put(&mut self, resource: &str, namespace: &str, object: &Value) -> LiveResult<Value>;
    /// Deletes an object; Ok(false) when it was not there.
    async fn delete(&mut self, resource: &str, namespace: &str, name: &str) -> LiveResult<bool>;
    /// Runs a command in a pod's first container, in the trace `traceparent`.
    async fn exec(
        &mut self,
        namespace: &str,
        pod: &str,
        command: &[String],
        traceparent: &str,
    ) -> LiveResult<ExecOutput>;
    /// The spans of a trace that have reached the trace store so far (empty when none have).
    async fn trace(&mut self, trace_id: &str) -> LiveResult<Vec<Span>>;
    /// Calls `action` of `service` (a Query-protocol service: `iam`, `sts`) in the cluster's AWS
    /// account, signed as the lab's admin: the XML answer, or the error AWS answered with
    /// (`Ok(Err(..))`); `Err` when the endpoint could not be asked at all.
    async fn aws(
        &mut self,
        service: &str,
        action: &str,
        params: &[(String, String)],
    ) -> LiveResult<Result<String, AwsFault>>;
    /// A kubectl JSONPath template applied to an object.
    fn jsonpath(&self, object: &Value, template: &str) -> LiveResult<String>;
}
