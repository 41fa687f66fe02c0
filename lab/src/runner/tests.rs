//! The runner against an in-memory cluster: what start records, what reset undoes, what check
//! prints, where answers go.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::{
    live::{AwsFault, ExecOutput, LiveResult, Span},
    progress::RoleState,
};

/// A cluster of objects in a map; exec answers from a table of command → output; IAM roles and
/// OIDC providers in maps, answered in IAM's XML.
#[derive(Default)]
struct Fake {
    objects: BTreeMap<(String, String, String), Value>,
    exec: BTreeMap<String, ExecOutput>,
    rv: u64,
    roles: BTreeMap<String, RoleState>,
    providers: Vec<String>,
}

fn no_such(what: &str) -> Result<String, AwsFault> {
    Err(AwsFault { code: "NoSuchEntity".into(), message: format!("{what} cannot be found.") })
}

/// IAM URL-encodes documents; enough of it for these tests.
fn encode(doc: &str) -> String {
    doc.replace('%', "%25").replace('"', "%22").replace('{', "%7B").replace('}', "%7D")
}

impl Fake {
    fn with_nodes(names: &[&str]) -> Self {
        let mut f = Fake::default();
        for n in names {
            f.insert("nodes", "", json!({"metadata": {"name": n}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}));
        }
        f.insert("configmaps", "kube-system", json!({"metadata": {"name": "coredns"}, "data": {"Corefile": ".:53 {\n    forward . /etc/resolv.conf\n}\n"}}));
        f
    }

    fn insert(&mut self, resource: &str, ns: &str, mut obj: Value) {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let name = obj["metadata"]["name"].as_str().unwrap().to_string();
        self.objects.insert((resource.into(), ns.into(), name), obj);
    }

    fn has(&self, resource: &str, ns: &str, name: &str) -> bool {
        self.objects.contains_key(&(resource.into(), ns.into(), name.into()))
    }
}

impl Live for Fake {
    async fn get(&mut self, resource: &str, namespace: &str, name: &str) -> LiveResult<Option<Value>> {
        Ok(self.objects.get(&(resource.into(), namespace.into(), name.into())).cloned())
    }
    async fn list(&mut self, resource: &str, namespace: &str, _selector: &str) -> LiveResult<Vec<Value>> {
        Ok(self
            .objects
            .iter()
            .filter(|((r, ns, _), _)| r == resource && (namespace.is_empty() || ns == namespace))
            .map(|(_, v)| v.clone())
            .collect())
    }
    async fn apply(
        &mut self,
        _source: &str,
        text: &str,
        out: &mut String,
    ) -> LiveResult<Vec<(ObjRef, bool)>> {
        let mut applied = Vec::new();
        for doc in text.split("---") {
            if doc.trim().is_empty() {
                continue;
            }
            let v: Value = yaml_serde::from_str(doc).map_err(|e| e.to_string())?;
            let kind = v["kind"].as_str().unwrap().to_ascii_lowercase();
            let resource = if kind == "networkchaos" { kind.clone() } else { format!("{kind}s") };
            let ns = v["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
            let name = v["metadata"]["name"].as_str().unwrap().to_string();
            let created = !self.has(&resource, &ns, &name);
            self.insert(&resource, &ns, v);
            out.push_str(&format!("{kind}/{name} {}\n", if created { "created" } else { "configured" }));
            applied.push((ObjRef { resource, namespace: ns, name }, created));
        }
        Ok(applied)
    }
    async fn put(&mut self, resource: &str, namespace: &str, object: &Value) -> LiveResult<Value> {
        let name = object["metadata"]["name"].as_str().unwrap();
        if let Some(have) = self.objects.get(&(resource.into(), namespace.into(), name.into()))
            && let Some(rv) = object["metadata"]["resourceVersion"].as_str()
            && have["metadata"]["resourceVersion"] != rv
        {
            return Err("Operation cannot be fulfilled: the object has been modified".into());
        }
        self.insert(resource, namespace, object.clone());
        Ok(self.objects[&(resource.into(), namespace.into(), name.into())].clone())
    }
    async fn delete(&mut self, resource: &str, namespace: &str, name: &str) -> LiveResult<bool> {
        let gone = self.objects.remove(&(resource.into(), namespace.into(), name.into())).is_some();
        if resource == "namespaces" {
            self.objects.retain(|(_, ns, _), _| ns != name);
        }
        Ok(gone)
    }
    async fn exec(&mut self, _ns: &str, _pod: &str, command: &[String], _tp: &str) -> LiveResult<ExecOutput> {
        Ok(self
            .exec
            .get(&command.join(" "))
            .cloned()
            .unwrap_or(ExecOutput { code: 127, ..Default::default() }))
    }
    async fn trace(&mut self, _trace_id: &str) -> LiveResult<Vec<Span>> {
        Ok(Vec::new())
    }
    async fn aws(
        &mut self,
        service: &str,
        action: &str,
        params: &[(String, String)],
    ) -> LiveResult<Result<String, AwsFault>> {
        assert_eq!(service, "iam");
        let p = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        let name = p("RoleName");
        let role = self.roles.get_mut(&name);
        Ok(match (action, role) {
            ("CreateRole", None) => {
                self.roles
                    .insert(name, RoleState { trust: p("AssumeRolePolicyDocument"), ..Default::default() });
                Ok("<CreateRoleResponse/>".into())
            }
            ("CreateOpenIDConnectProvider", _) => {
                let arn = format!(
                    "arn:aws:iam::123456789012:oidc-provider/{}",
                    p("Url").trim_start_matches("https://")
                );
                if self.providers.contains(&arn) {
                    Err(AwsFault { code: "EntityAlreadyExists".into(), message: "exists".into() })
                } else {
                    self.providers.push(arn.clone());
                    Ok(format!("<OpenIDConnectProviderArn>{arn}</OpenIDConnectProviderArn>"))
                }
            }
            (_, None) => no_such(&format!("The role with name {name}")),
            ("GetRole", Some(r)) => {
                Ok(format!("<AssumeRolePolicyDocument>{}</AssumeRolePolicyDocument>", encode(&r.trust)))
            }
            ("ListAttachedRolePolicies", Some(r)) => Ok(r
                .attached
                .iter()
                .map(|a| format!("<member><PolicyArn>{a}</PolicyArn></member>"))
                .collect()),
            ("ListRolePolicies", Some(r)) => {
                Ok(r.inline.keys().map(|n| format!("<member>{n}</member>")).collect())
            }
            ("GetRolePolicy", Some(r)) => match r.inline.get(&p("PolicyName")) {
                Some(d) => Ok(format!("<PolicyDocument>{}</PolicyDocument>", encode(d))),
                None => no_such("policy"),
            },
            ("AttachRolePolicy", Some(r)) => {
                if !r.attached.contains(&p("PolicyArn")) {
                    r.attached.push(p("PolicyArn"));
                }
                Ok(String::new())
            }
            ("DetachRolePolicy", Some(r)) => {
                let arn = p("PolicyArn");
                if r.attached.contains(&arn) {
                    r.attached.retain(|a| *a != arn);
                    Ok(String::new())
                } else {
                    no_such(&arn)
                }
            }
            ("PutRolePolicy", Some(r)) => {
                r.inline.insert(p("PolicyName"), p("PolicyDocument"));
                Ok(String::new())
            }
            ("DeleteRolePolicy", Some(r)) => match r.inline.remove(&p("PolicyName")) {
                Some(_) => Ok(String::new()),
                None => no_such("policy"),
            },
            ("UpdateAssumeRolePolicy", Some(r)) => {
                r.trust = p("PolicyDocument");
                Ok(String::new())
            }
            ("DeleteRole", Some(r)) if !r.attached.is_empty() || !r.inline.is_empty() => Err(AwsFault {
                code: "DeleteConflict".into(),
                message: "Cannot delete entity, must detach all policies first.".into(),
            }),
            ("DeleteRole", Some(_)) => {
                self.roles.remove(&name);
                Ok(String::new())
            }
            (other, _) => panic!("unexpected IAM action {other}"),
        })
    }
    fn jsonpath(&self, object: &Value, template: &str) -> LiveResult<String> {
        // Enough of JSONPath for these tests: `{.a.b}`.
        let path = template.trim_start_matches("{.").trim_end_matches('}');
        let mut v = object;
        for k in path.split('.') {
            v = &v[k];
        }
        Ok(v.as_str().map(String::from).unwrap_or_else(|| v.to_string()))
    }
}

const LAB: &str = r#"
id: upstream-forward
order: 3
title: External names fail
topic: DNS
question: {number: 2, text: "How does a pod resolve names?"}
vars:
  client: {randomName: client}
  node: {node: any}
namespaces: [lab-dns]
task: "Fix {{client}} on {{node}}."
hints: ["first", "second"]
explanation: "The forward was dead."
setup:
- apply: setup.yaml
- edit: {resource: configmaps, namespace: kube-system, name: coredns, field: data.Corefile, replace: "forward . /etc/resolv.conf", with: "forward . 192.0.2.1"}
broken:
- name: external names fail
  exec: {namespace: lab-dns, pod: "{{client}}", command: [nslookup, example.com]}
  expect: {exitNot: 0}
questions:
- ask: Which node runs the client?
  from: {resource: pods, namespace: lab-dns, name: "{{client}}", jsonpath: "{.spec.nodeName}"}
checks:
- name: external names resolve
  exec: {namespace: lab-dns, pod: "{{client}}", command: [nslookup, example.com]}
  expect: {exit: 0}
- name: the node is named
  answer: 1
solution:
- edit: {resource: configmaps, namespace: kube-system, name: coredns, field: data.Corefile, replace: "forward . 192.0.2.1", with: "forward . /etc/resolv.conf"}
"#;

const SETUP: &str = "kind: Namespace\nmetadata: {name: lab-dns}\n---\nkind: Pod\nmetadata: {name: \"{{client}}\", namespace: lab-dns}\nspec: {nodeName: \"{{node}}\"}\n---\nkind: NetworkChaos\nmetadata: {name: slow, namespace: default}\n";

fn catalogue() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("upstream-forward");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("lab.yaml"), LAB).unwrap();
    std::fs::write(dir.join("setup.yaml"), SETUP).unwrap();
    root
}

fn text(out: Vec<u8>) -> String {
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn start_check_answer_and_reset_round_trip() {
    let root = catalogue();
    let mut live = Fake::with_nodes(&["node-1", "node-2"]);
    live.exec.insert(
        "nslookup example.com".into(),
        ExecOutput { code: 1, stdout: ";; connection timed out".into(), ..Default::default() },
    );
    let corefile_before =
        live.objects[&("configmaps".into(), "kube-system".into(), "coredns".into())]["data"]["Corefile"]
            .clone();

    let mut out = Vec::new();
    Runner::new(root.path().into(), &mut live).start("upstream-forward", &mut out).await.unwrap();
    let shown = text(out);
    assert!(shown.contains("configmap/coredns edited"), "{shown}");
    assert!(shown.contains("1/1 in place"), "{shown}");
    assert!(shown.contains("External names fail  [DNS]"), "{shown}");

    // The run's values went into the manifests, the task and the progress.
    let progress = Progress::load(&mut live).await.unwrap();
    let record = &progress.labs["upstream-forward"];
    let client = record.vars["client"].clone();
    assert!(client.starts_with("client-") && client.len() == "client-".len() + 5, "{client}");
    assert!(["node-1", "node-2"].contains(&record.vars["node"].as_str()));
    assert!(live.has("pods", "lab-dns", &client));
    // The fault outside the lab's namespace is recorded; the namespace's contents are not.
    assert_eq!(
        record.created,
        vec![ObjRef { resource: "networkchaos".into(), namespace: "default".into(), name: "slow".into() }]
    );
    assert_eq!(record.saved.len(), 1);
    assert_eq!(record.state, State::InProgress);

    // Not fixed yet: check says what it saw and wanted, and fails.
    let mut out = Vec::new();
    let ok = Runner::new(root.path().into(), &mut live).check(&mut out).await.unwrap();
    let shown = text(out);
    assert!(!ok);
    assert!(
        shown.contains("✘ external names resolve: observed exit 1: ;; connection timed out; expected exit 0"),
        "{shown}"
    );
    assert!(shown.contains("✘ the node is named: observed not answered yet"), "{shown}");

    // A wrong answer, then the right one, which is read from the live pod.
    let mut out = Vec::new();
    Runner::new(root.path().into(), &mut live).answer(None, "node-9", &mut out).await.unwrap();
    live.exec.insert(
        "nslookup example.com".into(),
        ExecOutput { code: 0, stdout: "Address: 93.184.215.14".into(), ..Default::default() },
    );
    let mut out = Vec::new();
    assert!(!Runner::new(root.path().into(), &mut live).check(&mut out).await.unwrap());
    assert!(text(out).contains("✘ the node is named: observed answered \"node-9\""));
    let node = record.vars["node"].clone();
    Runner::new(root.path().into(), &mut live)
        .answer(Some(1), &format!(" {} ", node.to_uppercase()), &mut Vec::new())
        .await
        .unwrap();
    let mut out = Vec::new();
    assert!(Runner::new(root.path().into(), &mut live).check(&mut out).await.unwrap());
    let shown = text(out);
    assert!(shown.contains("All 2 objectives pass: lab upstream-forward passed."), "{shown}");
    assert!(shown.contains("The forward was dead."), "{shown}");

    // Reset puts everything back: the fault, the namespace, the Corefile.
    let mut out = Vec::new();
    Runner::new(root.path().into(), &mut live).reset(&mut out).await.unwrap();
    assert!(!live.has("networkchaos", "default", "slow"));
    assert!(!live.has("namespaces", "", "lab-dns"));
    assert!(!live.has("pods", "lab-dns", &client));
    let cm = &live.objects[&("configmaps".into(), "kube-system".into(), "coredns".into())];
    assert_eq!(cm["data"]["Corefile"], corefile_before);
    let progress = Progress::load(&mut live).await.unwrap();
    assert_eq!(progress.current, None);
    assert_eq!(progress.state("upstream-forward"), State::Passed, "a passed lab stays passed after reset");

    let mut out = Vec::new();
    Runner::new(root.path().into(), &mut live).list(&mut out).await.unwrap();
    assert_eq!(
        text(out),
        "ID                 TITLE                 TOPIC   STATE\nupstream-forward   External names fail   DNS     passed\n"
    );
}

#[tokio::test]
async fn a_setup_that_never_breaks_says_why_and_leaves_the_cluster_clean() {
    let root = catalogue();
    let lab = std::fs::read_to_string(root.path().join("upstream-forward/lab.yaml")).unwrap();
    std::fs::write(
        root.path().join("upstream-forward/lab.yaml"),
        lab.replace("question: {number", "timeout: 2s\nquestion: {number"),
    )
    .unwrap();
    let mut live = Fake::with_nodes(&["node-1"]);
    // nslookup keeps working: the broken state is never observed.
    live.exec.insert("nslookup example.com".into(), ExecOutput { code: 0, ..Default::default() });
    let mut out = Vec::new();
    let err =
        Runner::new(root.path().into(), &mut live).start("upstream-forward", &mut out).await.unwrap_err();
    let err = err.to_string();
    assert!(err.starts_with("lab \"upstream-forward\" failed to set up: the broken state was not reached within 2s: external names fail: observed exit 0"), "{err}");
    assert!(!live.has("networkchaos", "default", "slow"));
    assert!(!live.has("namespaces", "", "lab-dns"));
    let cm = &live.objects[&("configmaps".into(), "kube-system".into(), "coredns".into())];
    assert!(cm["data"]["Corefile"].as_str().unwrap().contains("forward . /etc/resolv.conf"));
    assert_eq!(Progress::load(&mut live).await.unwrap().current, None);
}

#[tokio::test]
async fn a_lab_needing_more_nodes_than_ready_fails_before_touching_anything() {
    let root = catalogue();
    let lab = std::fs::read_to_string(root.path().join("upstream-forward/lab.yaml")).unwrap();
    std::fs::write(
        root.path().join("upstream-forward/lab.yaml"),
        lab.replace("node: {node: any}", "node: {node: \"2\"}"),
    )
    .unwrap();
    let mut live = Fake::with_nodes(&["node-1"]);
    let err = Runner::new(root.path().into(), &mut live)
        .start("upstream-forward", &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "lab \"upstream-forward\" failed to set up: it needs 2 Ready node(s) and the cluster has 1 (node-1)"
    );
    assert!(!live.has("namespaces", "", "lab-dns"));
}

#[tokio::test]
async fn hints_come_one_at_a_time_and_verbs_without_a_lab_say_so() {
    let root = catalogue();
    let mut live = Fake::with_nodes(&["node-1"]);
    let err = Runner::new(root.path().into(), &mut live).hint(&mut Vec::new()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "no lab in progress; start one with `netlab lab start ID` (`netlab lab list` shows them)"
    );
    live.exec.insert("nslookup example.com".into(), ExecOutput { code: 1, ..Default::default() });
    Runner::new(root.path().into(), &mut live).start("upstream-forward", &mut Vec::new()).await.unwrap();
    let mut shown = String::new();
    for _ in 0..3 {
        let mut out = Vec::new();
        Runner::new(root.path().into(), &mut live).hint(&mut out).await.unwrap();
        shown.push_str(&text(out));
    }
    assert_eq!(
        shown,
        "Hint 1/2: first\nHint 2/2: second\nNo more hints (2/2 shown). `netlab lab solution` shows the reference fix.\n"
    );
    let err =
        Runner::new(root.path().into(), &mut live).answer(Some(3), "x", &mut Vec::new()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "--question: Invalid value: 3: lab upstream-forward has 1 question(s), numbered from 1"
    );
}

#[tokio::test]
async fn node_addresses_are_drawn_from_the_nodes_status() {
    let root = catalogue();
    let lab = std::fs::read_to_string(root.path().join("upstream-forward/lab.yaml")).unwrap();
    std::fs::write(
        root.path().join("upstream-forward/lab.yaml"),
        lab.replace("node: {node: any}", "node: {nodeIp: \"2\"}"),
    )
    .unwrap();
    let mut live = Fake::with_nodes(&["node-1", "node-2"]);
    live.insert(
        "nodes",
        "",
        json!({"metadata": {"name": "node-2"}, "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "Hostname", "address": "node-2"}, {"type": "InternalIP", "address": "172.28.1.7"}]}}),
    );
    live.exec.insert("nslookup example.com".into(), ExecOutput { code: 1, ..Default::default() });
    let mut out = Vec::new();
    Runner::new(root.path().into(), &mut live).start("upstream-forward", &mut out).await.unwrap();
    assert!(text(out).contains("on 172.28.1.7."));
}

const ECR_READ: &str = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly";

const IAM_LAB: &str = r#"
id: ecr-lab
order: 1
title: t
topic: ECR
question: {number: 10, text: q}
task: t
hints: [h]
explanation: e
setup:
- iamRole: {name: nodes, detach: ["arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"]}
- iamOidcProvider: {url: "https://issuer.example", clientIds: [sts.amazonaws.com]}
- iamRole: {name: "{{app}}", trust: trust.json, attach: ["arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"]}
vars:
  app: {randomName: app}
checks:
- name: c
  object: {resource: nodes, name: node-1}
  expect: {min: 1}
solution:
- iamRole: {name: nodes, attach: ["arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"]}
"#;

#[tokio::test]
async fn iam_steps_are_undone_by_reset_whatever_was_changed_meanwhile() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("ecr-lab");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("lab.yaml"), IAM_LAB).unwrap();
    std::fs::write(dir.join("trust.json"), r#"{"Statement":[{"Principal":{"Federated":"{{app}}"}}]}"#)
        .unwrap();
    let mut live = Fake::with_nodes(&["node-1"]);
    let before = RoleState {
        trust: r#"{"Statement":[]}"#.into(),
        attached: vec!["arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy".into(), ECR_READ.into()],
        inline: BTreeMap::from([("keep".to_string(), r#"{"Version":"2012-10-17"}"#.to_string())]),
    };
    live.roles.insert("nodes".into(), before.clone());

    let mut out = Vec::new();
    Runner::new(root.path().into(), &mut live).start("ecr-lab", &mut out).await.unwrap();
    let shown = text(out);
    assert!(shown.contains(&format!("iam role/nodes: {ECR_READ} detached")), "{shown}");
    assert!(!live.roles["nodes"].attached.contains(&ECR_READ.to_string()));
    let app = live.roles.keys().find(|n| n.starts_with("app-")).cloned().expect("the app's role");
    assert_eq!(live.roles[&app].attached, [ECR_READ]);
    assert!(live.roles[&app].trust.contains(&app), "the trust file is rendered: {}", live.roles[&app].trust);
    assert_eq!(live.providers, ["arn:aws:iam::123456789012:oidc-provider/issuer.example"]);

    // A fix of one's own (an inline policy), and a stray change to the kept inline policy.
    let role = live.roles.get_mut("nodes").unwrap();
    role.inline.insert("ecr-pull".into(), r#"{"Statement":"x"}"#.into());
    role.inline.insert("keep".into(), r#"{"Version":"changed"}"#.into());

    // `solution` shows the aws CLI commands.
    let mut out = Vec::new();
    Runner::new(root.path().into(), &mut live).solution(false, &mut out).await.unwrap();
    assert_eq!(
        text(out).trim(),
        format!("aws iam attach-role-policy --role-name nodes --policy-arn {ECR_READ}")
    );

    let mut out = Vec::new();
    Runner::new(root.path().into(), &mut live).reset(&mut out).await.unwrap();
    let shown = text(out);
    assert!(shown.contains(&format!("iam role/{app} deleted")), "{shown}");
    assert!(shown.contains("iam role/nodes: inline policy ecr-pull deleted"), "{shown}");
    let after = &live.roles["nodes"];
    let mut attached = after.attached.clone();
    attached.sort();
    let mut wanted = before.attached.clone();
    wanted.sort();
    assert_eq!(attached, wanted);
    assert_eq!(after.inline, before.inline);
    assert!(!live.roles.contains_key(&app));
    // The issuer's provider stays registered, and a second run finds it there.
    assert_eq!(live.providers.len(), 1);
    let mut out = Vec::new();
    Runner::new(root.path().into(), &mut live).start("ecr-lab", &mut out).await.unwrap();
    assert!(!text(out).contains("oidc-provider"), "not created again");
    assert_eq!(live.providers.len(), 1);
}

#[test]
fn iam_steps_are_validated() {
    let lab: crate::spec::Lab = yaml_serde::from_str(
        &IAM_LAB
            .replace(
                "detach: [\"arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly\"]",
                "detach: [AmazonEC2ContainerRegistryReadOnly]",
            )
            .replace("clientIds: [sts.amazonaws.com]", "clientIds: []"),
    )
    .unwrap();
    let problems = lab.validate();
    assert!(problems.iter().any(|p| p.starts_with("setup[0].iamRole: Invalid value: \"AmazonEC2ContainerRegistryReadOnly\"")), "{problems:?}");
    assert!(
        problems.iter().any(|p| p == "setup[1].iamOidcProvider.clientIds: Required value"),
        "{problems:?}"
    );
}

const ENV_LAB: &str = r#"
id: eni-cap
order: 1
title: t
topic: EKS
question: {number: 9, text: q}
requires:
- name: the AWS VPC CNI (DaemonSet kube-system/aws-node)
  object: {resource: daemonsets, namespace: kube-system, name: aws-node}
  expect: {min: 1}
  otherwise: start the cluster with `netlab up --eks`
task: t
hints: [h]
explanation: e
setup:
- setEnv:
    resource: ds
    namespace: kube-system
    name: aws-node
    container: aws-node
    env: {MAX_ENI: 1, WARM_IP_TARGET: null, WARM_ENI_TARGET: "2"}
checks:
- name: c
  object: {resource: nodes, name: node-1}
  expect: {min: 1}
solution:
- setEnv: {resource: daemonsets, namespace: kube-system, name: aws-node, container: aws-node, env: {MAX_ENI: null, NOTE: "a b"}}
"#;

fn env_catalogue() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("eni-cap");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("lab.yaml"), ENV_LAB).unwrap();
    root
}

fn aws_node_env(live: &Fake) -> Value {
    live.objects[&("daemonsets".into(), "kube-system".into(), "aws-node".into())]["spec"]["template"]["spec"]
        ["containers"][1]["env"]
        .clone()
}

fn with_aws_node() -> Fake {
    let mut live = Fake::with_nodes(&["node-1"]);
    live.insert(
        "daemonsets",
        "kube-system",
        json!({"metadata": {"name": "aws-node"}, "spec": {"template": {"spec": {"containers": [
            {"name": "aws-vpc-cni-init", "env": [{"name": "MAX_ENI", "value": "9"}]},
            {"name": "aws-node", "env": [
                {"name": "WARM_ENI_TARGET", "value": "1"},
                {"name": "MY_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "WARM_IP_TARGET", "value": "3"},
                {"name": "ENABLE_PREFIX_DELEGATION", "value": "false"}
            ]}
        ]}}}}),
    );
    live
}

#[tokio::test]
async fn set_env_changes_one_container_and_reset_puts_its_env_back_exactly() {
    let root = env_catalogue();
    let mut live = with_aws_node();
    let before = aws_node_env(&live);

    let mut out = Vec::new();
    Runner::new(root.path().into(), &mut live).start("eni-cap", &mut out).await.unwrap();
    assert!(text(out).contains("daemonset.apps/aws-node env updated"));
    // Set in place, removed, appended; the other container and the valueFrom untouched.
    assert_eq!(
        aws_node_env(&live),
        json!([
            {"name": "WARM_ENI_TARGET", "value": "2"},
            {"name": "MY_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "ENABLE_PREFIX_DELEGATION", "value": "false"},
            {"name": "MAX_ENI", "value": "1"}
        ])
    );
    let ds = &live.objects[&("daemonsets".into(), "kube-system".into(), "aws-node".into())];
    assert_eq!(ds["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"], "9");
    let progress = Progress::load(&mut live).await.unwrap();
    let saved = &progress.labs["eni-cap"].envs;
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].object.resource, "daemonsets");
    assert_eq!(Value::Array(saved[0].env.clone()), before);

    // The solution as a person types it.
    let mut out = Vec::new();
    Runner::new(root.path().into(), &mut live).solution(false, &mut out).await.unwrap();
    assert_eq!(
        text(out).trim(),
        "kubectl set env daemonset/aws-node -n kube-system -c aws-node MAX_ENI- 'NOTE=a b'"
    );

    // A fix of one's own meanwhile (prefix delegation on), then the reference solution.
    let key = ("daemonsets".to_string(), "kube-system".to_string(), "aws-node".to_string());
    let mut ds = live.objects[&key].clone();
    ds["spec"]["template"]["spec"]["containers"][1]["env"][2]["value"] = json!("true");
    live.insert("daemonsets", "kube-system", ds);
    let mut out = Vec::new();
    Runner::new(root.path().into(), &mut live).solution(true, &mut out).await.unwrap();
    let env = aws_node_env(&live);
    assert!(!env.as_array().unwrap().iter().any(|v| v["name"] == "MAX_ENI"), "{env}");
    assert!(env.as_array().unwrap().iter().any(|v| v["name"] == "NOTE" && v["value"] == "a b"), "{env}");

    // Reset: every variable back to its value or absence, in its place.
    let mut out = Vec::new();
    Runner::new(root.path().into(), &mut live).reset(&mut out).await.unwrap();
    assert!(text(out).contains("daemonset.apps/aws-node env restored"));
    assert_eq!(aws_node_env(&live), before);
    let progress = Progress::load(&mut live).await.unwrap();
    assert!(progress.labs["eni-cap"].envs.is_empty());

    // A second run saves the env afresh and a reset with nothing changed writes nothing.
    Runner::new(root.path().into(), &mut live).start("eni-cap", &mut Vec::new()).await.unwrap();
    let mut out = Vec::new();
    Runner::new(root.path().into(), &mut live).reset(&mut Vec::new()).await.unwrap();
    Runner::new(root.path().into(), &mut live).reset(&mut out).await.unwrap();
    assert_eq!(aws_node_env(&live), before);
    assert_eq!(text(out), "No lab in progress; nothing to reset.\n");
}

#[tokio::test]
async fn set_env_on_a_missing_container_fails_the_setup_and_leaves_nothing_changed() {
    let root = env_catalogue();
    let lab = std::fs::read_to_string(root.path().join("eni-cap/lab.yaml")).unwrap();
    std::fs::write(
        root.path().join("eni-cap/lab.yaml"),
        lab.replacen("container: aws-node", "container: ipamd", 1),
    )
    .unwrap();
    let mut live = with_aws_node();
    let before = aws_node_env(&live);
    let err = Runner::new(root.path().into(), &mut live).start("eni-cap", &mut Vec::new()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "lab \"eni-cap\" failed to set up: daemonset.apps/aws-node: no container \"ipamd\" (it has aws-vpc-cni-init, aws-node)"
    );
    assert_eq!(aws_node_env(&live), before);
}

#[tokio::test]
async fn a_cluster_without_what_the_lab_requires_is_refused_untouched() {
    let root = env_catalogue();
    // Another lab in progress stays as it is.
    std::fs::create_dir(root.path().join("upstream-forward")).unwrap();
    std::fs::write(root.path().join("upstream-forward/lab.yaml"), LAB).unwrap();
    std::fs::write(root.path().join("upstream-forward/setup.yaml"), SETUP).unwrap();
    let mut live = Fake::with_nodes(&["node-1"]);
    live.exec.insert("nslookup example.com".into(), ExecOutput { code: 1, ..Default::default() });
    Runner::new(root.path().into(), &mut live).start("upstream-forward", &mut Vec::new()).await.unwrap();
    let objects = live.objects.clone();

    let mut out = Vec::new();
    let err = Runner::new(root.path().into(), &mut live).start("eni-cap", &mut out).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "lab \"eni-cap\" needs the AWS VPC CNI (DaemonSet kube-system/aws-node), which this cluster does not have (observed 0 object(s); expected at least 1): start the cluster with `netlab up --eks`"
    );
    assert!(out.is_empty(), "{}", text(out));
    assert_eq!(live.objects, objects, "nothing changed, the other lab's progress included");
}

#[test]
fn set_env_and_requires_are_validated() {
    let lab: crate::spec::Lab = yaml_serde::from_str(
        &ENV_LAB
            .replace("resource: ds", "resource: configmaps")
            .replace("container: aws-node\n", "container: \"\"\n")
            .replace("WARM_IP_TARGET: null", "9LIVES: null")
            .replace("otherwise: start the cluster with `netlab up --eks`", "otherwise: \"\"")
            .replace("env: {MAX_ENI: null, NOTE: \"a b\"}", "env: {}"),
    )
    .unwrap();
    let problems = lab.validate();
    for wanted in [
        "setup[0].setEnv.resource: Unsupported value: \"configmaps\": supported values: \"daemonsets\", \"deployments\", \"statefulsets\", \"pods\"",
        "setup[0].setEnv.container: Required value",
        "solution[0].setEnv.env: Required value: at least one variable to set or remove",
        "requires[0].otherwise: Required value: how to get a cluster that has it",
    ] {
        assert!(problems.iter().any(|p| p == wanted), "{wanted}\n{problems:#?}");
    }
    assert!(
        problems.iter().any(|p| p.starts_with(
            "setup[0].setEnv.env.9LIVES: Invalid value: \"9LIVES\": a valid environment variable name"
        )),
        "{problems:#?}"
    );
    assert_eq!(problems.len(), 5, "{problems:#?}");
    // YAML scalars become text as kubectl's arguments are.
    let ok: crate::spec::Lab = yaml_serde::from_str(ENV_LAB).unwrap();
    assert!(ok.validate().is_empty(), "{:?}", ok.validate());
    let Step::SetEnv(e) = &ok.setup[0] else { panic!("{:?}", ok.setup[0]) };
    let shown: Vec<(String, Option<String>)> =
        e.env.iter().map(|(k, v)| (k.clone(), v.as_ref().map(ToString::to_string))).collect();
    assert_eq!(
        shown,
        [
            ("MAX_ENI".to_string(), Some("1".to_string())),
            ("WARM_ENI_TARGET".into(), Some("2".into())),
            ("WARM_IP_TARGET".into(), None)
        ]
    );
}
