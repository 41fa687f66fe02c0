//! `netlab lab`: the lab runner's verbs over the live cluster.
//!
//! The runner itself (the catalogue, setup, checks, progress) is the `netlab-lab` crate; this
//! module gives it the cluster as the CLI sees it — the apiserver through the same client and
//! apply as `netlab apply`, commands in pods through the same exec as `netlab exec` (each probe
//! in a trace of its own), traces from the same Jaeger query API as `netlab trace`, and the
//! cluster's AWS account through its endpoint, signed with the lab admin's key as `netlab aws
//! env` hands it to the aws CLI.

use std::{io::Write, path::PathBuf};

use clap::Subcommand;
use netlab_lab::live::{AwsFault, ExecOutput, Live, LiveResult, ObjRef, Span};
use serde_json::Value;

use crate::{
    apply,
    client::{Api, Cluster as _},
    config::Namespace,
    manifest::{self, Checks, Input},
    report::Problem,
    resource,
};

/// `netlab lab ...`.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// List the labs: id, title, topic, and where you stand.
    List,
    /// Start a lab: clean what an earlier lab left, break the cluster, print the task.
    Start {
        /// The lab's id (`netlab lab list`).
        id: String,
    },
    /// Show the lab in progress: its task, hints used, questions answered.
    Status,
    /// Show the next hint.
    Hint,
    /// Check the lab in progress against the live cluster (exit 0 only when all objectives pass).
    Check,
    /// Answer a question the lab asks (read from the live cluster).
    Answer {
        /// Which question (1-based); the first unanswered one when absent.
        #[arg(long)]
        question: Option<usize>,
        /// The answer.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Show the reference solution, or apply it and wait for the checks to observe it.
    Solution {
        /// Apply it.
        #[arg(long)]
        apply: bool,
    },
    /// Undo the lab in progress: delete what it made, restore what it changed.
    Reset,
}

/// The region of the lab's AWS account.
const AWS_REGION: &str = "us-east-1";

/// Runs one `netlab lab` verb; Ok(false) when it ran but the lab is not passing (check) or the
/// solution did not take. `aws_endpoint` is the cluster's AWS endpoint (labs that change IAM).
pub async fn lab(
    cmd: &LabCommand,
    labs_dir: Option<&PathBuf>,
    server: &str,
    jaeger_url: &str,
    aws_endpoint: &str,
    out: &mut impl Write,
) -> Result<bool, Problem> {
    let root = find_labs(labs_dir)?;
    let mut live = ClusterLive {
        api: Api::new(server),
        jaeger_url: jaeger_url.to_string(),
        aws_endpoint: aws_endpoint.trim_end_matches('/').to_string(),
    };
    let mut runner = netlab_lab::Runner::new(root, &mut live);
    let result = match cmd {
        LabCommand::List => runner.list(out).await.map(|()| true),
        LabCommand::Start { id } => runner.start(id, out).await.map(|()| true),
        LabCommand::Status => runner.status(out).await.map(|()| true),
        LabCommand::Hint => runner.hint(out).await.map(|()| true),
        LabCommand::Check => runner.check(out).await,
        LabCommand::Answer { question, text } => {
            runner.answer(*question, &text.join(" "), out).await.map(|()| true)
        }
        LabCommand::Solution { apply } => runner.solution(*apply, out).await,
        LabCommand::Reset => runner.reset(out).await.map(|()| true),
    };
    result.map_err(|e| Problem::client(e.to_string()))
}

/// The labs folder: `--labs-dir`/NETLAB_LABS_DIR, else the first that exists of: beside an
/// installed binary (`../share/netlab/labs`), the source tree a cargo-built binary came from,
/// the image's `/usr/share/netlab/labs`, and `./labs`.
fn find_labs(given: Option<&PathBuf>) -> Result<PathBuf, Problem> {
    if let Some(dir) = given {
        return if dir.is_dir() {
            Ok(dir.clone())
        } else {
            Err(Problem::client(format!("--labs-dir: {}: no such directory", dir.display())))
        };
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(bin) = exe.parent() {
            candidates.push(bin.join("../share/netlab/labs"));
        }
        candidates.extend(exe.ancestors().skip(1).take(5).map(|a| a.join("labs")));
    }
    candidates.push(PathBuf::from("/usr/share/netlab/labs"));
    candidates.push(PathBuf::from("labs"));
    candidates
        .into_iter()
        .find(|c| c.is_dir() && has_lab(c))
        .ok_or_else(|| Problem::client("cannot find the labs folder; pass --labs-dir or set NETLAB_LABS_DIR"))
}

fn has_lab(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir)
        .is_ok_and(|mut entries| entries.any(|e| e.is_ok_and(|e| e.path().join("lab.yaml").is_file())))
}

/// The cluster as the CLI reaches it.
struct ClusterLive {
    api: Api,
    jaeger_url: String,
    aws_endpoint: String,
}

impl ClusterLive {
    fn resolve(resource: &str) -> LiveResult<netlab_proto::apiserver::v1::Resource> {
        resource::resolve(resource).map_err(|p| p.to_string())
    }
}

fn text(p: Problem) -> String {
    p.to_string()
}

impl Live for ClusterLive {
    async fn get(&mut self, resource: &str, namespace: &str, name: &str) -> LiveResult<Option<Value>> {
        match self.api.get(Self::resolve(resource)?, namespace, name).await {
            Ok(v) => Ok(Some(v)),
            Err(p) if p.is_not_found() => Ok(None),
            Err(p) => Err(text(p)),
        }
    }

    async fn list(&mut self, resource: &str, namespace: &str, selector: &str) -> LiveResult<Vec<Value>> {
        self.api.list(Self::resolve(resource)?, namespace, selector, "").await.map_err(text)
    }

    async fn apply(
        &mut self,
        source: &str,
        text_in: &str,
        out: &mut String,
    ) -> LiveResult<Vec<(ObjRef, bool)>> {
        let input = Input { source: source.to_string(), text: text_in.to_string() };
        let manifests = manifest::parse(&input, Checks::Full)
            .map_err(|ps| ps.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))?;
        let ns = Namespace { name: crate::config::DEFAULT_NAMESPACE.to_string(), explicit: false };
        let mut applied = Vec::new();
        for m in manifests {
            let r = m.resource;
            let target = apply::target_namespace(&m, &ns).map_err(text)?;
            let obj = ObjRef { resource: r.plural().to_string(), namespace: target, name: m.name.clone() };
            let mut warnings = Vec::new();
            let line = apply::apply_one(&mut self.api, m, &ns, &mut warnings).await.map_err(text)?;
            out.push_str(&String::from_utf8_lossy(&warnings));
            out.push_str(&line);
            out.push('\n');
            applied.push((obj, line.ends_with(" created")));
        }
        Ok(applied)
    }

    async fn put(&mut self, resource: &str, namespace: &str, object: &Value) -> LiveResult<Value> {
        let r = Self::resolve(resource)?;
        if object["metadata"]["resourceVersion"].as_str().is_some_and(|rv| !rv.is_empty()) {
            self.api.update(r, namespace, object).await.map_err(text)
        } else {
            self.api.create(r, namespace, object).await.map_err(text)
        }
    }

    async fn delete(&mut self, resource: &str, namespace: &str, name: &str) -> LiveResult<bool> {
        match self.api.delete(Self::resolve(resource)?, namespace, name, None).await {
            Ok(_) => Ok(true),
            Err(p) if p.is_not_found() => Ok(false),
            Err(p) => Err(text(p)),
        }
    }

    async fn exec(
        &mut self,
        namespace: &str,
        pod: &str,
        command: &[String],
        traceparent: &str,
    ) -> LiveResult<ExecOutput> {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let api = &mut self.api;
        let code = crate::client::in_trace(
            traceparent.to_string(),
            crate::node::exec(api, namespace, pod, None, command, &mut stdout, &mut stderr),
        )
        .await
        .map_err(text)?;
        Ok(ExecOutput {
            code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    async fn trace(&mut self, trace_id: &str) -> LiveResult<Vec<Span>> {
        match crate::trace::fetch_if_any(&self.jaeger_url, trace_id).await {
            Ok(Some(body)) => Ok(jaeger_spans(&body)),
            // Not there yet: its spans are still in the exporters' batches.
            Ok(None) => Ok(Vec::new()),
            Err(p) => Err(text(p)),
        }
    }

    async fn aws(
        &mut self,
        service: &str,
        action: &str,
        params: &[(String, String)],
    ) -> LiveResult<Result<String, AwsFault>> {
        use netlab_credential_provider::{credentials::Credentials, http::HttpClient, sigv4};
        let version = match service {
            "iam" => "2010-05-08",
            "sts" => "2011-06-15",
            other => return Err(format!("aws: {other} is not a Query-protocol service the labs call")),
        };
        let (access_key_id, secret_access_key) =
            crate::aws::admin_key().ok_or("aws: the account has no admin key")?;
        let creds = Credentials {
            access_key_id,
            secret_access_key,
            session_token: None,
            expiration: None,
            source: "EnvConfigCredentials",
        };
        let mut form = vec![format!("Action={}", form_encode(action)), format!("Version={version}")];
        form.extend(params.iter().map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))));
        let url = format!("{}/", self.aws_endpoint);
        let mut req = hyper::Request::post(&url)
            .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
            .body(hyper::body::Bytes::from(form.join("&")))
            .map_err(|e| format!("aws: {e}"))?;
        sigv4::sign(&mut req, service, AWS_REGION, &creds, jiff::Timestamp::now())
            .map_err(|e| format!("aws: signing: {e}"))?;
        let resp = HttpClient::default().send(&format!("{service}.{action}"), req).await.map_err(|e| {
            format!("{e} (is the cluster's cloud running? `netlab aws env` names its endpoint)")
        })?;
        let body = String::from_utf8_lossy(resp.body()).into_owned();
        if resp.status().is_success() {
            return Ok(Ok(body));
        }
        let first = |tag: &str| netlab_lab::iam::xml_values(&body, tag).into_iter().next();
        Ok(Err(AwsFault {
            code: first("Code").unwrap_or_else(|| resp.status().to_string()),
            message: first("Message").unwrap_or(body),
        }))
    }

    fn jsonpath(&self, object: &Value, template: &str) -> LiveResult<String> {
        crate::jsonpath::execute(template, object).map_err(|e| format!("jsonpath {template:?}: {e}"))
    }
}

/// `application/x-www-form-urlencoded` as botocore writes Query input: RFC 3986's unreserved
/// characters as they are, every other byte `%XX`.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The spans of Jaeger's `/api/traces/{id}` answer: name, the process's service, tags as text.
fn jaeger_spans(body: &[u8]) -> Vec<Span> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return Vec::new() };
    let mut spans = Vec::new();
    for trace in v["data"].as_array().into_iter().flatten() {
        for s in trace["spans"].as_array().into_iter().flatten() {
            let pid = s["processID"].as_str().unwrap_or_default();
            let service = trace["processes"][pid]["serviceName"].as_str().unwrap_or_default().to_string();
            let attributes = s["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| {
                    let key = t["key"].as_str()?.to_string();
                    let value = match &t["value"] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    Some((key, value))
                })
                .collect();
            spans.push(Span {
                name: s["operationName"].as_str().unwrap_or_default().to_string(),
                service,
                attributes,
            });
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_input_is_form_encoded() {
        assert_eq!(form_encode("arn:aws:iam::aws:policy/X"), "arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FX");
        assert_eq!(form_encode("{\"a\": 1}"), "%7B%22a%22%3A%201%7D");
        assert_eq!(form_encode("a-b_c.d~"), "a-b_c.d~");
    }

    #[test]
    fn jaeger_answers_become_spans_with_their_service_and_tags() {
        let body = br#"{"data":[{"traceID":"ab","spans":[
            {"traceID":"ab","spanID":"01","operationName":"dns query","processID":"p1",
             "tags":[{"key":"dns.question.name","type":"string","value":"orders.shop.svc.cluster.local."},
                     {"key":"netlab.dns.answers","type":"int64","value":1}]}],
            "processes":{"p1":{"serviceName":"coredns","tags":[]}}}],"total":0,"limit":0,"offset":0,"errors":null}"#;
        let spans = jaeger_spans(body);
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].name, "dns query");
        assert_eq!(spans[0].service, "coredns");
        assert_eq!(spans[0].attributes["dns.question.name"], "orders.shop.svc.cluster.local.");
        assert_eq!(spans[0].attributes["netlab.dns.answers"], "1");
    }
}
