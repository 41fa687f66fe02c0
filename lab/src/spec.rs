//! A lab as its author writes it: `labs/<id>/lab.yaml`.
//!
//! Labs are data so that a trainer can add one without touching Rust. The file is strict
//! (unknown fields are errors, as in a CRD with a structural schema) and [`Lab::validate`] checks
//! what serde cannot, each problem with its field path, so a typo in a lab is reported where it
//! is instead of surfacing as a check that can never pass.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One lab.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Lab {
    /// The folder's name; fixed, used by `netlab lab start ID`.
    pub id: String,
    /// Where it sits in `netlab lab list`.
    pub order: u32,
    /// One line: the symptom a person meets.
    pub title: String,
    /// A short area name for the list: DNS, Services, NetworkPolicy, ...
    pub topic: String,
    /// The seed question this lab teaches.
    pub question: Question,
    /// What the cluster must offer for the lab to make sense (the EKS flavour's VPC CNI),
    /// observed before `start` changes anything: a cluster without it is refused, untouched,
    /// with the way to get it.
    #[serde(default)]
    pub requires: Vec<Requirement>,
    /// Values drawn once per run (`{{name}}` in every text, manifest and probe), so answers read
    /// from the cluster cannot be memorised.
    #[serde(default, with = "yaml_serde::with::singleton_map_recursive")]
    pub vars: BTreeMap<String, Var>,
    /// Namespaces the lab owns: created by its setup, deleted (with everything in them) on reset.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// What the person is asked to do.
    pub task: String,
    /// Shown one at a time by `netlab lab hint`, in order.
    pub hints: Vec<String>,
    /// Shown once every check passes: why it broke and what the fix changed.
    pub explanation: String,
    /// What `start` does to break the cluster.
    #[serde(with = "yaml_serde::with::singleton_map_recursive")]
    pub setup: Vec<Step>,
    /// What must be observed before the task is shown: the broken state really in place.
    #[serde(default)]
    pub broken: Vec<Objective>,
    /// Questions whose answers are read from the live cluster (`netlab lab answer`).
    #[serde(default)]
    pub questions: Vec<Ask>,
    /// What `netlab lab check` observes; every one must pass.
    pub checks: Vec<Objective>,
    /// The reference fix (`netlab lab solution [--apply]`).
    #[serde(with = "yaml_serde::with::singleton_map_recursive")]
    pub solution: Vec<Step>,
    /// How long `start` waits for the broken state and `solution --apply` for the checks, as a
    /// Go duration; 90s when absent.
    #[serde(default)]
    pub timeout: Option<String>,
}

/// The seed question a lab teaches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// Its number in the seed document.
    pub number: u32,
    /// Its text.
    pub text: String,
}

/// Something the cluster must have before a lab starts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Requirement {
    /// What is needed, as the refusal names it: "the AWS VPC CNI (DaemonSet kube-system/aws-node)".
    pub name: String,
    /// Where it is seen.
    pub object: ObjectProbe,
    /// What it must be.
    pub expect: Expect,
    /// How to get it, the refusal's last words: "start the cluster with `netlab up --eks`".
    pub otherwise: String,
}

/// How a per-run value is drawn.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Var {
    /// A name with a random five-character suffix, as a ReplicaSet names its pods: `web-x7k2p`.
    RandomName(String),
    /// One of these, at random.
    OneOf(Vec<String>),
    /// The name of a Ready node, at random (`any`), or of the N-th Ready node in name order
    /// (`"1"`, `"2"`).
    Node(String),
    /// The InternalIP of a Ready node, chosen as for `node` (`"2"`: the second node's).
    NodeIp(String),
}

/// One thing setup or a solution does.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Step {
    /// Applies a manifest file of the lab's folder (Kubernetes objects and fault objects alike).
    Apply(String),
    /// Replaces text in a field of an object that exists before the lab (the CoreDNS
    /// ConfigMap). The field's value before the lab is saved and put back on reset.
    Edit(Edit),
    /// Deletes an object.
    Delete(Target),
    /// Sets (or, with null, removes) environment variables of one container of a workload's pod
    /// template, as `kubectl set env` does. The container's env before the lab is saved and put
    /// back on reset, whatever was changed in it meanwhile.
    SetEnv(SetEnv),
    /// Runs a command in a pod and requires it to exit 0 (a solution step, or starting a client).
    Exec(Exec),
    /// Waits (up to the lab's timeout) until an objective holds: a fault in force before the
    /// next step, a rollout done.
    Wait(Box<Objective>),
    /// Changes a role in the cluster's AWS account (created when absent and a trust policy is
    /// given). The role as it was before the lab — its existence, trust policy, attached and
    /// inline policies — is saved first and put back on reset, whatever was changed meanwhile.
    IamRole(IamRole),
    /// Registers an OpenID Connect provider (the cluster's service-account issuer, as
    /// `eksctl utils associate-iam-oidc-provider` does) unless it exists; reset deletes it if
    /// the lab registered it.
    IamOidcProvider(IamOidcProvider),
}

/// A role of the lab's AWS account, and what to change on it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IamRole {
    /// The role's name (`netlab-NodeInstanceRole`, the nodes' role).
    pub name: String,
    /// A file of the lab's folder with the trust policy to create the role with when it does
    /// not exist; without it, a missing role fails the step.
    #[serde(default)]
    pub trust: Option<String>,
    /// Managed policies to attach, by ARN.
    #[serde(default)]
    pub attach: Vec<String>,
    /// Managed policies to detach, by ARN (one that is not attached is no error).
    #[serde(default)]
    pub detach: Vec<String>,
}

/// An IAM OpenID Connect provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IamOidcProvider {
    /// The issuer URL (`https://kubernetes.default.svc.cluster.local`, the apiserver's
    /// `--service-account-issuer`).
    pub url: String,
    /// The audiences it accepts (`sts.amazonaws.com`).
    pub client_ids: Vec<String>,
}

/// `kubectl set env RESOURCE/NAME -c CONTAINER NAME=value NAME-`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetEnv {
    /// `daemonsets`, `deployments`, `statefulsets` (their `spec.template.spec.containers`) or
    /// `pods` (`spec.containers`), or one of kubectl's names for them (`ds`, `deploy`, ...).
    pub resource: String,
    /// The object's namespace.
    #[serde(default)]
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// The container's name.
    pub container: String,
    /// Variable → its new value, or null to remove it; applied in name order.
    pub env: BTreeMap<String, Option<EnvValue>>,
}

/// An env value as YAML spells it: `"1"`, `1` and `true` alike become text, as on kubectl's
/// command line.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum EnvValue {
    /// Text.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// `true` / `false`.
    Bool(bool),
}

/// The workload kinds `setEnv` changes, by kubectl's names: (plural, singular with group as
/// kubectl prints it, whether the containers are under `spec.template`).
pub fn workload(resource: &str) -> Option<(&'static str, &'static str, bool)> {
    Some(match resource.to_ascii_lowercase().as_str() {
        "daemonsets" | "daemonset" | "ds" | "daemonsets.apps" | "daemonset.apps" => {
            ("daemonsets", "daemonset.apps", true)
        }
        "deployments" | "deployment" | "deploy" | "deployments.apps" | "deployment.apps" => {
            ("deployments", "deployment.apps", true)
        }
        "statefulsets" | "statefulset" | "sts" | "statefulsets.apps" | "statefulset.apps" => {
            ("statefulsets", "statefulset.apps", true)
        }
        "pods" | "pod" | "po" => ("pods", "pod", false),
        _ => return None,
    })
}

/// Kubernetes' env var name rule (`IsEnvVarName`): `[-._a-zA-Z][-._a-zA-Z0-9]*`.
pub fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || "-._".contains(c))
        && chars.all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

// === impl EnvValue ===

impl std::fmt::Display for EnvValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvValue::Text(s) => f.write_str(s),
            EnvValue::Int(n) => write!(f, "{n}"),
            EnvValue::Float(n) => write!(f, "{n}"),
            EnvValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// A field edit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Edit {
    /// The object.
    #[serde(flatten)]
    pub target: Target,
    /// The field, as a path of map keys: `data.Corefile`.
    pub field: String,
    /// The text to find; the edit fails when it is absent (the object is not what the lab expects).
    pub replace: String,
    /// What it becomes.
    pub with: String,
}

/// An object by resource, namespace and name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Target {
    /// kubectl's resource name or alias: `configmaps`, `svc`, `networkpolicy`.
    pub resource: String,
    /// Empty for cluster-scoped objects.
    #[serde(default)]
    pub namespace: String,
    /// The object's name.
    pub name: String,
}

/// Something observed, and what it must be.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Objective {
    /// What is being checked, as `netlab lab check` prints it: "client reaches orders".
    pub name: String,
    /// Run a command in a pod (curl, nc, nslookup, dig, cat ...).
    #[serde(default)]
    pub exec: Option<Exec>,
    /// Read a field of objects.
    #[serde(default)]
    pub object: Option<ObjectProbe>,
    /// Run a command in a pod and look in its trace.
    #[serde(default)]
    pub trace: Option<TraceProbe>,
    /// The recorded answer to question N (1-based) equals what the cluster says.
    #[serde(default)]
    pub answer: Option<usize>,
    /// What the observation must be (not for `answer`).
    #[serde(default)]
    pub expect: Expect,
}

/// A command in a pod.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Exec {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod, by name ...
    #[serde(default)]
    pub pod: Option<String>,
    /// ... or the first Running pod matching this label selector (`app=client`).
    #[serde(default)]
    pub selector: Option<String>,
    /// The command and its arguments.
    pub command: Vec<String>,
}

/// A field of one or more objects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectProbe {
    /// kubectl's resource name or alias.
    pub resource: String,
    /// Empty for cluster-scoped objects.
    #[serde(default)]
    pub namespace: String,
    /// One object by name; with neither name nor selector, every object of the namespace.
    #[serde(default)]
    pub name: Option<String>,
    /// Objects matching a label selector.
    #[serde(default)]
    pub selector: Option<String>,
    /// A kubectl JSONPath template (`{.status.podIP}`), joined with spaces across objects; the
    /// number of objects when absent.
    #[serde(default)]
    pub jsonpath: Option<String>,
}

/// Spans of the trace of one command.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TraceProbe {
    /// The command whose trace is read.
    pub exec: Exec,
    /// Which spans count.
    pub spans: SpanMatch,
}

/// A span filter: its name, attributes with exact values, attributes containing a text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SpanMatch {
    /// The span's name: `dns query`, `netpol verdict`.
    pub name: String,
    /// The process's `service.name`, when it matters.
    #[serde(default)]
    pub service: Option<String>,
    /// Attribute → its exact value.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Attribute → text its value must contain.
    #[serde(default)]
    pub contains: BTreeMap<String, String>,
}

/// What an observation must be. Every given field must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expect {
    /// The command's exit code.
    #[serde(default)]
    pub exit: Option<i32>,
    /// An exit code the command must not have.
    #[serde(default)]
    pub exit_not: Option<i32>,
    /// Text the output (or field value) must contain.
    #[serde(default)]
    pub contains: Option<String>,
    /// Text the output (or field value) must not contain.
    #[serde(default)]
    pub not_contains: Option<String>,
    /// The whole value, trimmed.
    #[serde(default)]
    pub equals: Option<String>,
    /// The value is not empty (`true`) or is empty (`false`).
    #[serde(default)]
    pub present: Option<bool>,
    /// At least this many (objects, spans, output lines).
    #[serde(default)]
    pub min: Option<usize>,
    /// At most this many.
    #[serde(default)]
    pub max: Option<usize>,
}

/// A question answered with `netlab lab answer`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Ask {
    /// The question as shown.
    pub ask: String,
    /// Where the right answer is read at check time ...
    #[serde(default)]
    pub from: Option<ObjectProbe>,
    /// ... or the accepted answers (case and surrounding space ignored).
    #[serde(default)]
    pub accept: Vec<String>,
}

impl Lab {
    /// Every problem serde cannot see, as `field.path: what is wrong`.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !is_id(&self.id) {
            problems.push(format!(
                "id: Invalid value: {:?}: must consist of lower case alphanumeric characters or '-'",
                self.id
            ));
        }
        if self.hints.is_empty() {
            problems.push("hints: Required value: a lab gives at least one hint".into());
        }
        if self.checks.is_empty() {
            problems.push("checks: Required value: a lab checks at least one objective".into());
        }
        if self.solution.is_empty() && self.questions.is_empty() {
            problems.push("solution: Required value: a lab has a reference solution".into());
        }
        if let Some(t) = &self.timeout
            && let Err(e) = netlab_config::duration::parse_duration(t)
        {
            problems.push(format!("timeout: Invalid value: {t:?}: {e}"));
        }
        for (name, var) in &self.vars {
            let path = format!("vars.{name}");
            match var {
                Var::OneOf(v) if v.is_empty() => problems.push(format!("{path}.oneOf: Required value")),
                Var::Node(n) | Var::NodeIp(n)
                    if n != "any" && n.parse::<usize>().map_or(true, |i| i == 0) =>
                {
                    problems.push(format!(
                        "{path}: Invalid value: {n:?}: supported values: \"any\", a node number from 1"
                    ))
                }
                _ => {}
            }
        }
        for (i, ns) in self.namespaces.iter().enumerate() {
            if matches!(ns.as_str(), "default" | "kube-system" | "kube-public" | "kube-node-lease" | "demo") {
                problems.push(format!(
                    "namespaces[{i}]: Invalid value: {ns:?}: a lab owns only namespaces it creates (reset deletes them)"
                ));
            }
        }
        for (i, r) in self.requires.iter().enumerate() {
            let path = format!("requires[{i}]");
            if r.name.trim().is_empty() {
                problems.push(format!("{path}.name: Required value"));
            }
            if r.otherwise.trim().is_empty() {
                problems.push(format!("{path}.otherwise: Required value: how to get a cluster that has it"));
            }
            expect_problems(&path, &r.expect, false, &mut problems);
            if r.expect.exit.is_some() || r.expect.exit_not.is_some() {
                problems.push(format!(
                    "{path}.expect.exit: Forbidden: only an `exec` objective has an exit code"
                ));
            }
        }
        for (i, s) in self.setup.iter().enumerate() {
            step_problems(&format!("setup[{i}]"), s, &mut problems);
        }
        for (i, s) in self.solution.iter().enumerate() {
            step_problems(&format!("solution[{i}]"), s, &mut problems);
        }
        for (i, o) in self.broken.iter().enumerate() {
            objective_problems(&format!("broken[{i}]"), o, self.questions.len(), &mut problems);
        }
        for (i, o) in self.checks.iter().enumerate() {
            objective_problems(&format!("checks[{i}]"), o, self.questions.len(), &mut problems);
        }
        for (i, q) in self.questions.iter().enumerate() {
            if q.from.is_none() == q.accept.is_empty() {
                problems.push(format!(
                    "questions[{i}]: Invalid value: exactly one of `from` or `accept` is required"
                ));
            }
        }
        problems
    }

    /// The timeout, 90 s when absent or invalid (validation reports the latter).
    pub fn timeout(&self) -> std::time::Duration {
        self.timeout
            .as_deref()
            .and_then(|t| netlab_config::duration::parse_duration(t).ok())
            .unwrap_or(std::time::Duration::from_secs(90))
    }
}

fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-')
}

fn step_problems(path: &str, step: &Step, problems: &mut Vec<String>) {
    match step {
        Step::Apply(file) if file.is_empty() || file.contains("..") || file.starts_with('/') => {
            problems.push(format!("{path}.apply: Invalid value: {file:?}: a file in the lab's folder"))
        }
        Step::Edit(e) if e.replace.is_empty() => {
            problems.push(format!("{path}.edit.replace: Required value"));
        }
        Step::Edit(e) if e.field.is_empty() => problems.push(format!("{path}.edit.field: Required value")),
        Step::Exec(x) => exec_problems(&format!("{path}.exec"), x, problems),
        Step::SetEnv(e) => {
            let path = format!("{path}.setEnv");
            if workload(&e.resource).is_none() {
                problems.push(format!(
                    "{path}.resource: Unsupported value: {:?}: supported values: \"daemonsets\", \"deployments\", \"statefulsets\", \"pods\"",
                    e.resource
                ));
            }
            for (field, value) in
                [("namespace", &e.namespace), ("name", &e.name), ("container", &e.container)]
            {
                if value.is_empty() {
                    problems.push(format!("{path}.{field}: Required value"));
                }
            }
            if e.env.is_empty() {
                problems.push(format!("{path}.env: Required value: at least one variable to set or remove"));
            }
            for name in e.env.keys() {
                if !is_env_var_name(name) {
                    problems.push(format!(
                        "{path}.env.{name}: Invalid value: {name:?}: a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
                    ));
                }
            }
        }
        Step::IamRole(r) => {
            if r.name.is_empty() {
                problems.push(format!("{path}.iamRole.name: Required value"));
            }
            if r.trust.is_none() && r.attach.is_empty() && r.detach.is_empty() {
                problems
                    .push(format!("{path}.iamRole: Required value: one of `trust`, `attach` or `detach`"));
            }
            if let Some(file) = &r.trust
                && (file.is_empty() || file.contains("..") || file.starts_with('/'))
            {
                problems.push(format!(
                    "{path}.iamRole.trust: Invalid value: {file:?}: a file in the lab's folder"
                ));
            }
            for (i, arn) in r.attach.iter().chain(&r.detach).enumerate() {
                if !arn.starts_with("arn:aws:iam::") || !arn.contains(":policy/") {
                    problems.push(format!(
                        "{path}.iamRole: Invalid value: {arn:?} (policy {i}): a managed policy ARN (arn:aws:iam::...:policy/NAME)"
                    ));
                }
            }
        }
        Step::IamOidcProvider(p) => {
            if !p.url.starts_with("https://") {
                problems
                    .push(format!("{path}.iamOidcProvider.url: Invalid value: {:?}: an https URL", p.url));
            }
            if p.client_ids.is_empty() {
                problems.push(format!("{path}.iamOidcProvider.clientIds: Required value"));
            }
        }
        Step::Wait(o) => objective_problems(&format!("{path}.wait"), o, usize::MAX, problems),
        _ => {}
    }
}

fn exec_problems(path: &str, x: &Exec, problems: &mut Vec<String>) {
    if x.pod.is_some() == x.selector.is_some() {
        problems.push(format!("{path}: Invalid value: exactly one of `pod` or `selector` is required"));
    }
    if x.command.is_empty() {
        problems.push(format!("{path}.command: Required value"));
    }
}

fn objective_problems(path: &str, o: &Objective, questions: usize, problems: &mut Vec<String>) {
    let kinds = [o.exec.is_some(), o.object.is_some(), o.trace.is_some(), o.answer.is_some()];
    if kinds.iter().filter(|k| **k).count() != 1 {
        problems.push(format!(
            "{path}: Invalid value: exactly one of `exec`, `object`, `trace` or `answer` is required"
        ));
    }
    if let Some(x) = &o.exec {
        exec_problems(&format!("{path}.exec"), x, problems);
    }
    if let Some(t) = &o.trace {
        exec_problems(&format!("{path}.trace.exec"), &t.exec, problems);
    }
    if let Some(n) = o.answer
        && (n == 0 || n > questions)
    {
        problems.push(format!(
            "{path}.answer: Invalid value: {n}: the lab has {questions} question(s), numbered from 1"
        ));
    }
    expect_problems(path, &o.expect, o.answer.is_some(), problems);
    if (o.expect.exit.is_some() || o.expect.exit_not.is_some()) && o.exec.is_none() {
        problems.push(format!("{path}.expect.exit: Forbidden: only an `exec` objective has an exit code"));
    }
}

fn expect_problems(path: &str, e: &Expect, answer: bool, problems: &mut Vec<String>) {
    let given = [
        e.exit.is_some(),
        e.exit_not.is_some(),
        e.contains.is_some(),
        e.not_contains.is_some(),
        e.equals.is_some(),
        e.present.is_some(),
        e.min.is_some(),
        e.max.is_some(),
    ];
    if !answer && !given.iter().any(|g| *g) {
        problems.push(format!("{path}.expect: Required value: an objective says what it expects"));
    }
}
