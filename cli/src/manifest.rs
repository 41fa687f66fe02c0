//! Manifest files (YAML or JSON, one or many documents, `kind: List`) turned into type-checked
//! Kubernetes objects, before anything is sent.
//!
//! kubectl decodes every document of every file first and only then talks to the server, so a
//! typo in the third file does not leave the first two applied. Each object is decoded into its
//! k8s-openapi type straight from the YAML text, so a wrong field type is reported with its field
//! path and line (`spec.ports[0].port: invalid type: string "eighty", expected i32 at line 9
//! column 13`), and is then round-tripped through that type to catch fields the type does not
//! have, as the apiserver's strict field validation would.

use std::{
    io::Read as _,
    path::{Path, PathBuf},
};

use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
    core::v1::{ConfigMap, Event, Namespace, Node, Pod, Service, ServiceAccount},
    discovery::v1::EndpointSlice,
    networking::v1::NetworkPolicy,
};
use netlab_proto::apiserver::v1::Resource;
use serde::{
    Deserialize, Deserializer, Serialize,
    de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor},
};
use serde_json::Value;

use crate::report::Problem;

/// The source name kubectl gives manifests read from standard input.
pub const STDIN: &str = "STDIN";

/// The file extensions read from a directory, as kubectl's `FileExtensions`.
const EXTENSIONS: [&str; 3] = ["json", "yaml", "yml"];

/// The text of one manifest file.
#[derive(Debug, Clone)]
pub struct Input {
    /// The name errors and messages use: the path as given or walked, or `STDIN`.
    pub source: String,
    /// The file's content.
    pub text: String,
}

/// One object from a manifest, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Where it came from, for messages like `error when creating "svc.yaml"`.
    pub source: String,
    /// The resource its apiVersion and kind map to.
    pub resource: Resource,
    /// `metadata.name`; may be empty, which the apply step reports as kubectl does.
    pub name: String,
    /// `metadata.namespace` when the manifest sets one.
    pub namespace: Option<String>,
    /// The object as Kubernetes JSON, exactly as written.
    pub object: Value,
    /// Its index in a `kind: List`, so error paths read `items[2].spec...`.
    pub item: Option<usize>,
}

/// How strictly documents are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    /// Decode into the typed object and reject unknown fields (apply).
    Full,
    /// Only apiVersion, kind and name matter (delete -f).
    Identity,
}

/// Reads every manifest named by `-f` (files, directories, `-`), in order.
pub fn read_inputs(paths: &[String], recursive: bool) -> Result<Vec<Input>, Vec<Problem>> {
    let mut inputs = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        if path == "-" {
            let mut text = String::new();
            match std::io::stdin().read_to_string(&mut text) {
                Ok(_) => inputs.push(Input { source: STDIN.to_string(), text }),
                Err(e) => problems.push(Problem::client(format!("error reading from STDIN: {e}"))),
            }
            continue;
        }
        let p = Path::new(path);
        if p.is_dir() {
            match walk(p, recursive) {
                Ok(files) => {
                    for file in files {
                        read_file(&file, &mut inputs, &mut problems);
                    }
                }
                Err(e) => problems.push(Problem::client(format!("error reading {path}: {e}"))),
            }
        } else if p.exists() {
            read_file(p, &mut inputs, &mut problems);
        } else {
            problems.push(Problem::client(format!("the path \"{path}\" does not exist")));
        }
    }
    if problems.is_empty() { Ok(inputs) } else { Err(problems) }
}

fn read_file(path: &Path, inputs: &mut Vec<Input>, problems: &mut Vec<Problem>) {
    let source = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => inputs.push(Input { source, text }),
        Err(e) => problems.push(Problem::client(format!("error reading {source}: {e}"))),
    }
}

/// The manifest files in `dir`, sorted like Go's `filepath.Walk`; subdirectories only with `-R`.
fn walk(dir: &Path, recursive: bool) -> std::io::Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    let mut files = Vec::new();
    for entry in entries {
        if entry.is_dir() {
            if recursive {
                files.extend(walk(&entry, recursive)?);
            }
        } else if entry.extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.contains(&e)) {
            files.push(entry);
        }
    }
    Ok(files)
}

/// Reads and checks every manifest; either all objects or all problems.
pub fn load(paths: &[String], recursive: bool, checks: Checks) -> Result<Vec<Manifest>, Vec<Problem>> {
    let inputs = read_inputs(paths, recursive)?;
    let mut manifests = Vec::new();
    let mut problems = Vec::new();
    for input in &inputs {
        match parse(input, checks) {
            Ok(m) => manifests.extend(m),
            Err(p) => problems.extend(p),
        }
    }
    if problems.is_empty() { Ok(manifests) } else { Err(problems) }
}

/// What the typed pass decodes a document as.
#[derive(Debug, Clone)]
enum Plan {
    /// A single object of this resource.
    Object(Resource),
    /// A `kind: List`; `None` items were already rejected.
    List(Vec<Option<Resource>>),
}

/// Parses one input's documents into objects.
pub fn parse(input: &Input, checks: Checks) -> Result<Vec<Manifest>, Vec<Problem>> {
    let source = &input.source;
    let mut problems = Vec::new();
    let mut manifests = Vec::new();
    // Document index → how to type-check it.
    let mut plans: Vec<(usize, Plan)> = Vec::new();

    // go-yaml's flow-depth limit, before the parser meets a nesting it would take minutes over.
    if let Some(line) = crate::flow_depth::exceeds(&input.text, crate::flow_depth::MAX_FLOW_LEVEL) {
        return Err(vec![Problem::client(format!(
            "error parsing {source}: error converting YAML to JSON: yaml: line {line}: exceeded max depth of {}",
            crate::flow_depth::MAX_FLOW_LEVEL
        ))]);
    }
    for (index, document) in yaml_serde::Deserializer::from_str(&input.text).enumerate() {
        let yaml = match yaml_serde::Value::deserialize(document) {
            Ok(v) => v,
            Err(e) => {
                // The stream cannot be resynchronised after a syntax error.
                problems.push(parse_problem(source, &e));
                break;
            }
        };
        if yaml.is_null() {
            continue; // An empty document, e.g. a leading or trailing `---`.
        }
        let json = match serde_json::to_value(&yaml) {
            Ok(mut v) => {
                quantities_as_strings(&mut v);
                v
            }
            Err(e) => {
                problems.push(Problem::client(format!(
                    "error parsing {source}: error converting YAML to JSON: {e}"
                )));
                continue;
            }
        };
        if let Err(p) = identify(source, &json) {
            problems.push(p);
            continue;
        }
        if is_list(&json) {
            let items = json.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
            let mut kinds = Vec::new();
            for (i, item) in items.into_iter().enumerate() {
                match identify(source, &item) {
                    Ok(resource) => {
                        kinds.push(Some(resource));
                        let mut m = manifest(source, resource, item);
                        m.item = Some(i);
                        manifests.push((index, m));
                    }
                    Err(p) => {
                        kinds.push(None);
                        problems.push(p);
                    }
                }
            }
            plans.push((index, Plan::List(kinds)));
        } else {
            // `identify` succeeded above, so this is a known resource.
            if let Ok(resource) = identify(source, &json) {
                plans.push((index, Plan::Object(resource)));
                manifests.push((index, manifest(source, resource, json)));
            }
        }
    }

    if checks == Checks::Full && problems.is_empty() {
        problems.extend(type_check(input, &plans));
        if problems.is_empty() {
            for (_, m) in &manifests {
                problems.extend(strict_check(m));
            }
        }
    }
    if problems.is_empty() { Ok(manifests.into_iter().map(|(_, m)| m).collect()) } else { Err(problems) }
}

/// Resource quantities may be written as numbers (`cpu: 1`, `cpu: 0.5`), which Kubernetes
/// accepts; the typed objects (and netlab's apiserver) want their canonical string form.
fn quantities_as_strings(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                match (k.as_str(), &mut *child) {
                    ("limits" | "requests" | "capacity" | "allocatable" | "overhead", Value::Object(q)) => {
                        for n in q.values_mut() {
                            if let Value::Number(num) = n {
                                *n = Value::String(num.to_string());
                            }
                        }
                    }
                    ("sizeLimit", Value::Number(num)) => *child = Value::String(num.to_string()),
                    _ => quantities_as_strings(child),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(quantities_as_strings),
        _ => {}
    }
}

fn manifest(source: &str, resource: Resource, object: Value) -> Manifest {
    let meta = object.get("metadata");
    let field = |f: &str| meta.and_then(|m| m.get(f)).and_then(Value::as_str).unwrap_or("").to_string();
    let namespace = Some(field("namespace")).filter(|n| !n.is_empty());
    Manifest { source: source.to_string(), resource, name: field("name"), namespace, object, item: None }
}

fn is_list(json: &Value) -> bool {
    let kind = json.get("kind").and_then(Value::as_str).unwrap_or("");
    kind.ends_with("List") && json.get("items").is_some_and(Value::is_array)
}

/// kubectl's schema-validation wording for documents it cannot even identify.
fn validation_problem(source: &str, what: &str) -> Problem {
    Problem::client(format!(
        "error validating \"{source}\": error validating data: {what}; if you choose to ignore these errors, turn validation off with --validate=false"
    ))
}

/// Checks apiVersion and kind and maps them to a resource, with kubectl's messages.
fn identify(source: &str, json: &Value) -> Result<Resource, Problem> {
    let Some(obj) = json.as_object() else {
        return Err(validation_problem(source, "invalid object to validate"));
    };
    let mut missing = Vec::new();
    let api_version = match obj.get("apiVersion") {
        None | Some(Value::Null) => {
            missing.push("apiVersion not set");
            ""
        }
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            missing.push("apiVersion isn't string type");
            ""
        }
    };
    let kind = match obj.get("kind") {
        None | Some(Value::Null) => {
            missing.push("kind not set");
            ""
        }
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            missing.push("kind isn't string type");
            ""
        }
    };
    match missing.as_slice() {
        [] => {}
        [one] => return Err(validation_problem(source, one)),
        many => {
            return Err(validation_problem(source, &format!("[{}]", many.join(", "))));
        }
    }
    if is_list(json) {
        // The caller looks at the items; a List has no resource of its own.
        return Ok(Resource::Unspecified);
    }
    match Resource::from_kind(kind) {
        Ok(r) if r.api_version() == api_version => Ok(r),
        _ => {
            let meta = obj.get("metadata");
            let field = |f: &str| meta.and_then(|m| m.get(f)).and_then(Value::as_str).unwrap_or("");
            Err(Problem::client(format!(
                "resource mapping not found for name: \"{}\" namespace: \"{}\" from \"{source}\": no matches for kind \"{kind}\" in version \"{api_version}\"\nensure CRDs are installed first",
                field("name"),
                field("namespace"),
            )))
        }
    }
}

/// The syntax-error wording of kubectl's YAML-to-JSON step: `yaml: line N: problem`.
fn parse_problem(source: &str, e: &yaml_serde::Error) -> Problem {
    let text = e.to_string();
    // Drop yaml_serde's " at line L column C" and any ", while parsing ..." context.
    let problem = text.split(" at line ").next().unwrap_or(&text);
    let problem = problem.split(", while ").next().unwrap_or(problem);
    let line = e.location().map(|l| {
        // go-yaml reports parser errors ("did not find expected ...") one line early and scanner
        // errors on their line; kubectl users see go-yaml's numbers.
        if problem.starts_with("did not find expected") { l.line().saturating_sub(1) } else { l.line() }
    });
    let message = match line {
        Some(l) if l > 0 => format!("yaml: line {l}: {problem}"),
        _ => format!("yaml: {problem}"),
    };
    Problem::client(format!("error parsing {source}: error converting YAML to JSON: {message}"))
}

/// Decodes every planned document again, this time into its k8s-openapi type straight from the
/// text, so errors carry yaml_serde's field path and line.
fn type_check(input: &Input, plans: &[(usize, Plan)]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut plans = plans.iter().peekable();
    for (index, document) in yaml_serde::Deserializer::from_str(&input.text).enumerate() {
        let Some((_, plan)) = plans.next_if(|(i, _)| *i == index) else {
            continue;
        };
        let result = match plan {
            Plan::Object(r) => TypedSeed(*r).deserialize(document),
            Plan::List(kinds) => ListSeed(kinds).deserialize(document),
        };
        if let Err(e) = result {
            problems.push(Problem::client(format!("error validating \"{}\": {e}", input.source)));
        }
    }
    problems
}

/// Decodes a document as the k8s-openapi type of one resource, discarding the result.
struct TypedSeed(Resource);

impl<'de> DeserializeSeed<'de> for TypedSeed {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        fn check<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
            T::deserialize(d).map(drop)
        }
        match self.0 {
            Resource::Namespaces => check::<Namespace, D>(d),
            Resource::Nodes => check::<Node, D>(d),
            Resource::Pods => check::<Pod, D>(d),
            Resource::Services => check::<Service, D>(d),
            Resource::EndpointSlices => check::<EndpointSlice, D>(d),
            Resource::NetworkPolicies => check::<NetworkPolicy, D>(d),
            Resource::Deployments => check::<Deployment, D>(d),
            Resource::ReplicaSets => check::<ReplicaSet, D>(d),
            Resource::StatefulSets => check::<StatefulSet, D>(d),
            Resource::DaemonSets => check::<DaemonSet, D>(d),
            Resource::ServiceAccounts => check::<ServiceAccount, D>(d),
            Resource::ConfigMaps => check::<ConfigMap, D>(d),
            Resource::Events => check::<Event, D>(d),
            _ => IgnoredAny::deserialize(d).map(drop),
        }
    }
}

/// Decodes a `kind: List`, checking each item as its own kind.
struct ListSeed<'a>(&'a [Option<Resource>]);

impl<'de> DeserializeSeed<'de> for ListSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a List")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" {
                map.next_value_seed(ItemsSeed(self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct ItemsSeed<'a>(&'a [Option<Resource>]);

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut kinds = self.0.iter();
        loop {
            let resource = kinds.next().copied().flatten().unwrap_or(Resource::Unspecified);
            if seq.next_element_seed(TypedSeed(resource))?.is_none() {
                return Ok(());
            }
        }
    }
}

/// Fields the k8s-openapi type does not know: the apiserver's strict decoding would reject them,
/// and sending them would silently drop a typo like `targetport`. Also catches the type errors
/// yaml_serde lets through (it reads a plain `5` as the string "5"), which Kubernetes rejects.
fn strict_check(m: &Manifest) -> Option<Problem> {
    let prefix = m.item.map(|i| format!("items[{i}]")).unwrap_or_default();
    let typed = match roundtrip(m.resource, &m.object) {
        Ok(v) => v,
        Err(e) => {
            let mut path = prefix.clone();
            let mut root = m.object.clone();
            locate(m.resource, &mut root, &mut Vec::new(), &mut path);
            let at = if path.is_empty() { String::new() } else { format!("{path}: ") };
            return Some(Problem::client(format!("error validating \"{}\": {at}{e}", m.source)));
        }
    };
    let mut unknown = Vec::new();
    unknown_fields(&m.object, &typed, &prefix, &mut unknown);
    if unknown.is_empty() {
        return None;
    }
    let kind = m.resource.kind();
    let fields: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
    Some(Problem::client(format!(
        "error validating \"{}\": {kind} in version \"{}\" cannot be handled as a {kind}: strict decoding error: {}",
        m.source,
        m.resource.api_version(),
        fields.join(", ")
    )))
}

/// Decodes into the typed object and encodes it back: whatever is missing was not understood.
pub fn roundtrip(r: Resource, v: &Value) -> Result<Value, serde_json::Error> {
    fn rt<T: DeserializeOwned + Serialize>(v: &Value) -> Result<Value, serde_json::Error> {
        serde_json::to_value(serde_json::from_value::<T>(v.clone())?)
    }
    match r {
        Resource::Namespaces => rt::<Namespace>(v),
        Resource::Nodes => rt::<Node>(v),
        Resource::Pods => rt::<Pod>(v),
        Resource::Services => rt::<Service>(v),
        Resource::EndpointSlices => rt::<EndpointSlice>(v),
        Resource::NetworkPolicies => rt::<NetworkPolicy>(v),
        Resource::Deployments => rt::<Deployment>(v),
        Resource::ReplicaSets => rt::<ReplicaSet>(v),
        Resource::StatefulSets => rt::<StatefulSet>(v),
        Resource::DaemonSets => rt::<DaemonSet>(v),
        Resource::ServiceAccounts => rt::<ServiceAccount>(v),
        Resource::ConfigMaps => rt::<ConfigMap>(v),
        Resource::Events => rt::<Event>(v),
        Resource::Unspecified => Err(de::Error::custom("unknown resource")),
        _ => Ok(v.clone()),
    }
}

/// Narrows a decoding failure down to a field path: the failing part is the child whose removal
/// makes the object decode (k8s-openapi treats missing fields as unset, so removal is safe).
fn locate(r: Resource, root: &mut Value, at: &mut Vec<PathPart>, path: &mut String) {
    let node = node_at(root, at).clone();
    let children: Vec<PathPart> = match &node {
        Value::Object(m) => m.keys().cloned().map(PathPart::Key).collect(),
        Value::Array(a) => (0..a.len()).map(PathPart::Index).collect(),
        _ => return,
    };
    for child in children {
        let saved = node_at(root, at).clone();
        match (&child, node_at(root, at)) {
            (PathPart::Key(k), Value::Object(m)) => {
                m.remove(k);
            }
            (PathPart::Index(i), Value::Array(a)) => {
                a.remove(*i);
            }
            _ => {}
        }
        let fixed = roundtrip(r, root).is_ok();
        *node_at(root, at) = saved;
        if fixed {
            match &child {
                PathPart::Key(k) if path.is_empty() => path.push_str(k),
                PathPart::Key(k) => {
                    path.push('.');
                    path.push_str(k);
                }
                PathPart::Index(i) => path.push_str(&format!("[{i}]")),
            }
            at.push(child);
            locate(r, root, at, path);
            return;
        }
    }
}

/// One step of a path into a JSON value.
#[derive(Debug, Clone)]
enum PathPart {
    Key(String),
    Index(usize),
}

fn node_at<'a>(root: &'a mut Value, at: &[PathPart]) -> &'a mut Value {
    let mut v = root;
    for part in at {
        v = match part {
            PathPart::Key(k) => &mut v[k.as_str()],
            PathPart::Index(i) => &mut v[*i],
        };
    }
    v
}

fn unknown_fields(original: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (original, typed) {
        (Value::Object(o), Value::Object(t)) => {
            for (key, value) in o {
                if value.is_null() {
                    continue; // `creationTimestamp: null` and friends decode to "unset".
                }
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match t.get(key) {
                    None => out.push(child),
                    Some(tv) => unknown_fields(value, tv, &child, out),
                }
            }
        }
        (Value::Array(o), Value::Array(t)) if o.len() == t.len() => {
            for (i, (ov, tv)) in o.iter().zip(t).enumerate() {
                unknown_fields(ov, tv, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::render;

    fn input(source: &str, text: &str) -> Input {
        Input { source: source.into(), text: text.into() }
    }

    fn errors(source: &str, text: &str) -> String {
        render(&parse(&input(source, text), Checks::Full).unwrap_err())
    }

    const SVC: &str = "apiVersion: v1
kind: Service
metadata:
  name: orders
  namespace: shop
spec:
  selector:
    app: orders
  ports:
  - port: 80
    targetPort: 8080
";

    #[test]
    fn a_good_service() {
        let m = parse(&input("svc.yaml", SVC), Checks::Full).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].resource, Resource::Services);
        assert_eq!(m[0].name, "orders");
        assert_eq!(m[0].namespace.as_deref(), Some("shop"));
        assert_eq!(m[0].object["spec"]["ports"][0]["port"], 80);
    }

    #[test]
    fn wrong_field_type_names_the_path_and_line() {
        let text = SVC.replace("- port: 80", "- port: eighty");
        assert_eq!(
            errors("svc.yaml", &text),
            "error: error validating \"svc.yaml\": spec.ports[0].port: invalid type: string \"eighty\", expected i32 at line 10 column 11"
        );
    }

    #[test]
    fn malformed_yaml_names_the_file_and_line() {
        let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  labels: a: b\n";
        let got = errors("svc.yaml", text);
        assert_eq!(
            got,
            "error: error parsing svc.yaml: error converting YAML to JSON: yaml: line 5: mapping values are not allowed in this context"
        );
        let text = "apiVersion: v1\nkind: [Service\n";
        let got = errors("bad.yaml", text);
        assert!(
            got.starts_with("error: error parsing bad.yaml: error converting YAML to JSON: yaml: line "),
            "{got}"
        );
    }

    #[test]
    fn unknown_kind_is_a_mapping_error() {
        let text = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n";
        assert_eq!(
            errors("ing.yaml", text),
            "error: resource mapping not found for name: \"web\" namespace: \"\" from \"ing.yaml\": no matches for kind \"Ingress\" in version \"networking.k8s.io/v1\"\nensure CRDs are installed first"
        );
        // A known kind in a version the server does not serve is unknown too.
        let text =
            "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: x\n";
        assert!(
            errors("d.yaml", text)
                .contains("no matches for kind \"Deployment\" in version \"extensions/v1beta1\"")
        );
    }

    #[test]
    fn missing_kind_and_api_version() {
        assert_eq!(
            errors("x.yaml", "apiVersion: v1\nmetadata:\n  name: x\n"),
            "error: error validating \"x.yaml\": error validating data: kind not set; if you choose to ignore these errors, turn validation off with --validate=false"
        );
        assert_eq!(
            errors("x.yaml", "metadata:\n  name: x\n"),
            "error: error validating \"x.yaml\": error validating data: [apiVersion not set, kind not set]; if you choose to ignore these errors, turn validation off with --validate=false"
        );
    }

    #[test]
    fn multi_document_files_keep_their_order_and_skip_empty_documents() {
        let text = format!(
            "---\n{SVC}---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: orders\nspec:\n  selector:\n    matchLabels: {{app: orders}}\n  template:\n    metadata: {{labels: {{app: orders}}}}\n    spec:\n      containers: [{{name: web, image: nginx}}]\n---\n"
        );
        let m = parse(&input("all.yaml", &text), Checks::Full).unwrap();
        let kinds: Vec<_> = m.iter().map(|m| m.resource).collect();
        assert_eq!(kinds, vec![Resource::Services, Resource::Deployments]);
        assert_eq!(m[1].namespace, None);
    }

    #[test]
    fn errors_in_later_documents_are_found_too() {
        let text = format!("{SVC}---\n{}", SVC.replace("port: 80", "port: \"80\""));
        let got = errors("two.yaml", &text);
        assert!(
            got.contains("spec.ports[0].port: invalid type: string \"80\", expected i32 at line 22"),
            "{got}"
        );
    }

    #[test]
    fn list_items_are_objects() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n  data: {k: v}\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: demo}\n";
        let m = parse(&input("list.yaml", text), Checks::Full).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].resource, Resource::ConfigMaps);
        assert_eq!(m[1].name, "demo");

        let bad = text.replace("data: {k: v}", "data: {k: 5}");
        let got = errors("list.yaml", &bad);
        assert_eq!(
            got,
            "error: error validating \"list.yaml\": items[0].data.k: invalid type: integer `5`, expected a string"
        );
        let bad = text.replace("metadata: {name: demo}", "metadata: {name: demo, labels: {v: 1}, namez: x}");
        let got = errors("list.yaml", &bad);
        assert_eq!(
            got,
            "error: error validating \"list.yaml\": items[1].metadata.labels.v: invalid type: integer `1`, expected a string"
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = SVC.replace("targetPort: 8080", "targetport: 8080");
        assert_eq!(
            errors("svc.yaml", &text),
            "error: error validating \"svc.yaml\": Service in version \"v1\" cannot be handled as a Service: strict decoding error: unknown field \"spec.ports[0].targetport\""
        );
        // Nulls and free-form maps are fine.
        let text =
            SVC.replace("metadata:\n", "metadata:\n  creationTimestamp: null\n  labels: {anything: goes}\n");
        assert!(parse(&input("svc.yaml", &text), Checks::Full).is_ok());
    }

    #[test]
    fn numeric_quantities_are_accepted_as_strings() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: i\n    resources:\n      limits: {cpu: 1, memory: 512Mi}\n      requests: {cpu: 0.5}\n";
        let m = parse(&input("pod.yaml", text), Checks::Full).unwrap();
        let res = &m[0].object["spec"]["containers"][0]["resources"];
        assert_eq!(res["limits"]["cpu"], "1");
        assert_eq!(res["requests"]["cpu"], "0.5");
        // Elsewhere a number for a string is still an error, with its path.
        let bad = text.replace("image: i", "image: i\n    env: [{name: PORT, value: 8080}]");
        assert_eq!(
            errors("pod.yaml", &bad),
            "error: error validating \"pod.yaml\": spec.containers[0].env[0].value: invalid type: integer `8080`, expected a string"
        );
    }

    #[test]
    fn json_manifests_parse_too() {
        let text = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"b"}}"#;
        let m = parse(&input("c.json", text), Checks::Full).unwrap();
        assert_eq!(m[0].resource, Resource::ConfigMaps);
    }

    #[test]
    fn identity_checks_skip_types() {
        let text = SVC.replace("- port: 80", "- port: eighty");
        assert!(parse(&input("svc.yaml", &text), Checks::Identity).is_ok());
    }

    #[test]
    fn directories_read_yaml_and_json_files_sorted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yaml"), SVC).unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/c.yml"), SVC.replace("orders", "other")).unwrap();
        let d = dir.path().display().to_string();
        let m = load(std::slice::from_ref(&d), false, Checks::Full).unwrap();
        assert_eq!(m.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["shop", "orders"]);
        assert!(m[1].source.ends_with("b.yaml"));
        let m = load(std::slice::from_ref(&d), true, Checks::Full).unwrap();
        assert_eq!(m.len(), 3);
        let missing = load(&["nope.yaml".to_string()], false, Checks::Full).unwrap_err();
        assert_eq!(render(&missing), "error: the path \"nope.yaml\" does not exist");
    }
}
