//! `netlab get`: fetch objects by name, label or field selector, and print them as kubectl does
//! (tables, `-o wide|yaml|json|name|jsonpath=...`).

use std::io::Write;

use jiff::Timestamp;
use netlab_proto::apiserver::v1::Resource;
use serde_json::{Value, json};

use crate::{
    client::Cluster,
    config::{GetArgs, Namespace},
    json, jsonpath, print,
    report::Problem,
    resource::{self, Target},
    yaml,
};

/// The `-o` formats netlab supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The default table, or `-o wide`.
    Table {
        /// `-o wide`.
        wide: bool,
    },
    /// `-o yaml`.
    Yaml,
    /// `-o json`.
    Json,
    /// `-o name`.
    Name,
    /// `-o jsonpath=TEMPLATE`.
    JsonPath(String),
}

// === impl Output ===

impl Output {
    /// Parses `-o`, with kubectl's message for unknown formats.
    pub fn parse(flag: Option<&str>) -> Result<Self, Problem> {
        let Some(flag) = flag else {
            return Ok(Output::Table { wide: false });
        };
        match flag {
            "wide" => Ok(Output::Table { wide: true }),
            "yaml" => Ok(Output::Yaml),
            "json" => Ok(Output::Json),
            "name" => Ok(Output::Name),
            _ => match flag.split_once('=') {
                Some(("jsonpath", template)) => Ok(Output::JsonPath(template.to_string())),
                _ => Err(Problem::client(format!(
                    "unable to match a printer suitable for the output format \"{flag}\", allowed formats are: json,jsonpath,name,wide,yaml"
                ))),
            },
        }
    }
}

/// Hides what kubectl hides by default (`--show-managed-fields=false`).
fn scrub(mut v: Value) -> Value {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    v
}

/// The `kind: List` kubectl wraps several objects in.
pub fn list_of(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}})
}

/// kubectl's message for an empty result.
pub fn no_resources(targets: &[Target], ns: &str, all_namespaces: bool) -> String {
    if all_namespaces || targets.iter().all(|t| !t.resource.namespaced()) {
        "No resources found".to_string()
    } else {
        format!("No resources found in {ns} namespace.")
    }
}

/// Fetches the objects of each target: by name, or by listing with the selectors.
pub(crate) async fn fetch(
    api: &mut impl Cluster,
    targets: &[Target],
    ns: &str,
    all_namespaces: bool,
    labels: &str,
    fields: &str,
) -> (Vec<(Resource, Vec<Value>)>, Vec<Problem>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for t in targets {
        let r = t.resource;
        let namespace = if r.namespaced() && !all_namespaces { ns } else { "" };
        let mut items = Vec::new();
        if t.names.is_empty() {
            match api.list(r, namespace, labels, fields).await {
                Ok(list) => items = list,
                Err(p) => problems.push(p),
            }
        } else {
            for name in &t.names {
                match api.get(r, namespace, name).await {
                    Ok(obj) => items.push(obj),
                    Err(p) => problems.push(p),
                }
            }
        }
        found.push((r, items));
    }
    (found, problems)
}

/// Runs `get`; returns the problems to report.
pub(crate) async fn get(
    api: &mut impl Cluster,
    args: &GetArgs,
    ns: &Namespace,
    out: &mut dyn Write,
    err: &mut dyn Write,
    now: Timestamp,
) -> Vec<Problem> {
    let output = match Output::parse(args.output.as_deref()) {
        Ok(o) => o,
        Err(p) => return vec![p],
    };
    let targets = match check_targets(&args.args, args.all_namespaces, args.selector.is_some()) {
        Ok(t) => t,
        Err(p) => return vec![p],
    };
    let (found, problems) = fetch(
        api,
        &targets,
        &ns.name,
        args.all_namespaces,
        args.selector.as_deref().unwrap_or(""),
        args.field_selector.as_deref().unwrap_or(""),
    )
    .await;
    let opts = print::Options {
        wide: output == Output::Table { wide: true },
        all_namespaces: args.all_namespaces,
        show_labels: args.show_labels,
        no_headers: args.no_headers,
        kind_prefix: targets.len() > 1,
    };
    let single = targets.len() == 1 && targets[0].names.len() == 1;
    let text = render(&output, found, &opts, single, now);
    match text {
        Rendered::Text(t) => {
            let _ = out.write_all(t.as_bytes());
        }
        Rendered::Nothing if problems.is_empty() => {
            let _ = writeln!(err, "{}", no_resources(&targets, &ns.name, args.all_namespaces));
        }
        Rendered::Nothing => {}
        Rendered::Failed(p) => return [problems, vec![p]].concat(),
    }
    problems
}

/// Validates the positional arguments against the flags, with kubectl's messages.
pub fn check_targets(args: &[String], all_namespaces: bool, selector: bool) -> Result<Vec<Target>, Problem> {
    let targets = resource::parse_targets(args)?;
    if targets.is_empty() {
        return Err(Problem::Raw(
            "You must specify the type of resource to get. Use \"netlab api-resources\" for a complete list of supported resources.\n\nerror: Required resource not specified.\nSee 'netlab get -h' for help and examples".to_string(),
        ));
    }
    let named = targets.iter().any(|t| !t.names.is_empty());
    if named && all_namespaces {
        return Err(Problem::client("a resource cannot be retrieved by name across all namespaces"));
    }
    if named && selector {
        return Err(Problem::client("name cannot be provided when a selector is specified"));
    }
    Ok(targets)
}

/// What `get` prints to stdout.
#[derive(Debug, PartialEq, Eq)]
pub enum Rendered {
    /// Output to print.
    Text(String),
    /// Nothing found: the caller says "No resources found".
    Nothing,
    /// The output could not be produced (a bad jsonpath template).
    Failed(Problem),
}

/// Formats what was found; pure, for tests.
pub fn render(
    output: &Output,
    found: Vec<(Resource, Vec<Value>)>,
    opts: &print::Options,
    single: bool,
    now: Timestamp,
) -> Rendered {
    let total: usize = found.iter().map(|(_, items)| items.len()).sum();
    match output {
        Output::Table { .. } => {
            let tables: Vec<String> = found
                .iter()
                .filter(|(_, items)| !items.is_empty())
                .map(|(r, items)| print::table(*r, items, opts, now))
                .collect();
            if tables.is_empty() { Rendered::Nothing } else { Rendered::Text(tables.join("\n")) }
        }
        Output::Name => {
            if total == 0 {
                return Rendered::Nothing;
            }
            Rendered::Text(found.iter().map(|(r, items)| print::names(*r, items)).collect())
        }
        Output::Yaml | Output::Json | Output::JsonPath(_) => {
            let mut items: Vec<Value> = found.into_iter().flat_map(|(_, items)| items).map(scrub).collect();
            let doc = if single && items.len() == 1 { items.remove(0) } else { list_of(items) };
            match output {
                Output::Yaml => Rendered::Text(yaml::to_string(&doc)),
                Output::Json => Rendered::Text(json::pretty(&doc)),
                Output::JsonPath(t) => match jsonpath::execute(t, &doc) {
                    Ok(text) => Rendered::Text(text),
                    Err(e) => Rendered::Failed(Problem::client(e.to_string())),
                },
                _ => Rendered::Nothing,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": "default", "managedFields": [{"manager": "x"}]},
               "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "ports": [{"port": 80, "protocol": "TCP"}]}})
    }

    #[test]
    fn output_flag() {
        assert_eq!(Output::parse(Some("wide")).unwrap(), Output::Table { wide: true });
        assert_eq!(Output::parse(Some("jsonpath={.a}")).unwrap(), Output::JsonPath("{.a}".into()));
        assert_eq!(
            Output::parse(Some("xml")).unwrap_err().to_string(),
            "error: unable to match a printer suitable for the output format \"xml\", allowed formats are: json,jsonpath,name,wide,yaml"
        );
    }

    #[test]
    fn yaml_of_one_named_object_is_the_object_else_a_list() {
        let now = Timestamp::UNIX_EPOCH;
        let opts = print::Options::default();
        let Rendered::Text(one) =
            render(&Output::Yaml, vec![(Resource::Services, vec![svc("a")])], &opts, true, now)
        else {
            panic!()
        };
        assert!(one.starts_with("apiVersion: v1\nkind: Service\n"), "{one}");
        assert!(!one.contains("managedFields"));
        let Rendered::Text(list) =
            render(&Output::Yaml, vec![(Resource::Services, vec![svc("a")])], &opts, false, now)
        else {
            panic!()
        };
        assert!(list.starts_with("apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n"), "{list}");
        assert!(list.ends_with("kind: List\nmetadata:\n  resourceVersion: \"\"\n"), "{list}");
        let Rendered::Text(empty) =
            render(&Output::Json, vec![(Resource::Services, vec![])], &opts, false, now)
        else {
            panic!()
        };
        assert_eq!(
            empty,
            "{\n    \"apiVersion\": \"v1\",\n    \"items\": [],\n    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n"
        );
    }

    #[test]
    fn names_and_empty_results() {
        let now = Timestamp::UNIX_EPOCH;
        let opts = print::Options::default();
        let found = vec![
            (Resource::Services, vec![svc("orders")]),
            (Resource::Deployments, vec![json!({"metadata": {"name": "orders"}})]),
        ];
        assert_eq!(
            render(&Output::Name, found, &opts, false, now),
            Rendered::Text("service/orders\ndeployment.apps/orders\n".into())
        );
        assert_eq!(
            render(&Output::Table { wide: false }, vec![(Resource::Pods, vec![])], &opts, false, now),
            Rendered::Nothing
        );
        let t = |r| Target { resource: r, names: vec![] };
        assert_eq!(
            no_resources(&[t(Resource::Pods)], "demo", false),
            "No resources found in demo namespace."
        );
        assert_eq!(no_resources(&[t(Resource::Pods)], "demo", true), "No resources found");
        assert_eq!(no_resources(&[t(Resource::Nodes)], "demo", false), "No resources found");
    }

    #[test]
    fn several_kinds_print_prefixed_tables_separated_by_a_blank_line() {
        let now = Timestamp::UNIX_EPOCH;
        let opts = print::Options { kind_prefix: true, ..Default::default() };
        let found = vec![
            (Resource::Services, vec![svc("orders")]),
            (Resource::ConfigMaps, vec![json!({"metadata": {"name": "c"}, "data": {"a": "b"}})]),
        ];
        let Rendered::Text(t) = render(&Output::Table { wide: false }, found, &opts, false, now) else {
            panic!()
        };
        assert_eq!(
            t,
            "NAME             TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE\nservice/orders   ClusterIP   10.96.0.1    <none>        80/TCP    <unknown>\n\nNAME          DATA   AGE\nconfigmap/c   1      <unknown>\n"
        );
    }

    #[test]
    fn argument_rules() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_targets(&a(&["svc", "x"]), true, false).is_err());
        assert!(check_targets(&a(&["svc", "x"]), false, true).is_err());
        assert!(check_targets(&a(&[]), false, false).is_err());
        assert!(check_targets(&a(&["svc"]), true, true).is_ok());
    }
}
