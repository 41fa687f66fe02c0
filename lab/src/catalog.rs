//! The labs folder: one sub-folder per lab, each with its `lab.yaml` and the manifests it names.
//!
//! A lab is read twice: once with its placeholders shown as `<name>` (to list it, validate it,
//! and learn which values a run draws), and once per run with the drawn values filled in. Both
//! go through the same parse, so what `list` accepted is what `start` runs.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use crate::{
    error::Error,
    spec::{Lab, Step},
    template,
};

/// A lab found on disk.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its folder.
    pub dir: PathBuf,
    /// The lab with placeholders shown as `<name>`.
    pub lab: Lab,
}

/// Every lab under `root`, in their `order`; a lab that does not parse or validate is an error
/// naming its file and field, so a broken catalogue is found at once.
pub fn load_all(root: &Path) -> Result<Vec<Entry>, Error> {
    let read = std::fs::read_dir(root).map_err(|source| Error::Io { path: root.to_path_buf(), source })?;
    let mut entries = Vec::new();
    for item in read {
        let item = item.map_err(|source| Error::Io { path: root.to_path_buf(), source })?;
        let dir = item.path();
        if dir.join("lab.yaml").is_file() {
            entries.push(load(&dir)?);
        }
    }
    entries.sort_by(|a, b| (a.lab.order, &a.lab.id).cmp(&(b.lab.order, &b.lab.id)));
    Ok(entries)
}

/// The lab `id` under `root`, or the error kubectl-style users expect for an unknown name.
pub fn find(root: &Path, id: &str) -> Result<Entry, Error> {
    let dir = root.join(id);
    if id.contains('/') || id.contains("..") || !dir.join("lab.yaml").is_file() {
        let known = load_all(root)?.into_iter().map(|e| e.lab.id).collect::<Vec<_>>();
        return Err(Error::UnknownLab { id: id.to_string(), known });
    }
    load(&dir)
}

/// One lab, with placeholders shown as `<name>`.
pub fn load(dir: &Path) -> Result<Entry, Error> {
    let file = dir.join("lab.yaml");
    let text = std::fs::read_to_string(&file).map_err(|source| Error::Io { path: file.clone(), source })?;
    let shown: BTreeMap<String, String> =
        template::names(&text).into_iter().map(|n| (n.clone(), format!("<{n}>"))).collect();
    let lab = parse(&file, &text, &shown)?;
    let mut problems = lab.validate();
    let folder = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if lab.id != folder {
        problems.push(format!("id: Invalid value: {:?}: must equal the folder's name {folder:?}", lab.id));
    }
    let declared: Vec<&String> = lab.vars.keys().collect();
    for name in template::names(&text) {
        if !declared.contains(&&name) {
            problems.push(format!("vars: Required value: {{{{{name}}}}} is used but not declared"));
        }
    }
    for (path, step) in steps(&lab) {
        if let Step::Apply(name) = step {
            match std::fs::read_to_string(dir.join(name)) {
                Err(e) => problems.push(format!("{path}.apply: Invalid value: {name:?}: {e}")),
                Ok(manifest) => {
                    for used in template::names(&manifest) {
                        if !lab.vars.contains_key(&used) {
                            problems.push(format!(
                                "{path}.apply: Invalid value: {name:?}: {{{{{used}}}}} is used but not declared in vars"
                            ));
                        }
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(Entry { dir: dir.to_path_buf(), lab })
    } else {
        Err(Error::Invalid { path: file, problems })
    }
}

impl Entry {
    /// The lab with this run's values filled in.
    pub fn render(&self, vars: &BTreeMap<String, String>) -> Result<Lab, Error> {
        let file = self.dir.join("lab.yaml");
        let text =
            std::fs::read_to_string(&file).map_err(|source| Error::Io { path: file.clone(), source })?;
        parse(&file, &text, vars)
    }

    /// A manifest of the lab's folder with this run's values filled in.
    pub fn manifest(&self, name: &str, vars: &BTreeMap<String, String>) -> Result<String, Error> {
        let path = self.dir.join(name);
        let text =
            std::fs::read_to_string(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
        template::render(&text, vars).map_err(|unknown| Error::Invalid {
            path,
            problems: unknown
                .into_iter()
                .map(|u| format!("{{{{{u}}}}}: no value for it in this run"))
                .collect(),
        })
    }
}

fn parse(file: &Path, text: &str, vars: &BTreeMap<String, String>) -> Result<Lab, Error> {
    let rendered = template::render(text, vars).map_err(|unknown| Error::Invalid {
        path: file.to_path_buf(),
        problems: unknown.into_iter().map(|u| format!("{{{{{u}}}}}: no value for it in this run")).collect(),
    })?;
    yaml_serde::from_str(&rendered)
        .map_err(|e| Error::Invalid { path: file.to_path_buf(), problems: vec![e.to_string()] })
}

fn steps(lab: &Lab) -> impl Iterator<Item = (String, &Step)> {
    let setup = lab.setup.iter().enumerate().map(|(i, s)| (format!("setup[{i}]"), s));
    let solution = lab.solution.iter().enumerate().map(|(i, s)| (format!("solution[{i}]"), s));
    setup.chain(solution)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
id: no-endpoints
order: 4
title: The name resolves, curl is refused
topic: Services
question: {number: 3, text: "What happens when a pod calls a Service?"}
vars:
  pod: {randomName: client}
namespaces: [shop]
task: "Make {{pod}} reach orders."
hints: ["Look at the endpoints."]
explanation: "The selector matched nothing."
setup:
- apply: setup.yaml
checks:
- name: client reaches orders
  exec: {namespace: shop, pod: "{{pod}}", command: [curl, -sS, "http://orders/"]}
  expect: {exit: 0}
solution:
- apply: fix.yaml
"#;

    fn lab_dir(id: &str, yaml: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(id);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("lab.yaml"), yaml).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        root
    }

    #[test]
    fn a_valid_lab_loads_and_renders_its_values() {
        let root =
            lab_dir("no-endpoints", MINIMAL, &[("setup.yaml", "kind: Pod # {{pod}}"), ("fix.yaml", "")]);
        let all = load_all(root.path()).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].lab.task, "Make <pod> reach orders.");
        let vars = BTreeMap::from([("pod".to_string(), "client-ab12c".to_string())]);
        let run = all[0].render(&vars).unwrap();
        assert_eq!(run.checks[0].exec.as_ref().unwrap().pod.as_deref(), Some("client-ab12c"));
        assert_eq!(all[0].manifest("setup.yaml", &vars).unwrap(), "kind: Pod # client-ab12c");
    }

    #[test]
    fn problems_name_the_file_and_field() {
        let bad = MINIMAL.replace("order: 4", "order: 4\nshape: round").replace("fix.yaml", "missing.yaml");
        let root = lab_dir("no-endpoints", &bad, &[("setup.yaml", "")]);
        let err = load_all(root.path()).unwrap_err().to_string();
        assert!(err.contains("no-endpoints/lab.yaml"), "{err}");
        assert!(err.contains("unknown field `shape`"), "{err}");

        let root =
            lab_dir("no-endpoints", &MINIMAL.replace("fix.yaml", "missing.yaml"), &[("setup.yaml", "")]);
        let err = load_all(root.path()).unwrap_err().to_string();
        assert!(err.contains("solution[0].apply: Invalid value: \"missing.yaml\""), "{err}");

        let undeclared = MINIMAL.replace("reach orders", "reach {{svc}}");
        let root = lab_dir("no-endpoints", &undeclared, &[("setup.yaml", "{{other}}"), ("fix.yaml", "")]);
        let err = load_all(root.path()).unwrap_err().to_string();
        assert!(err.contains("{{svc}} is used but not declared"), "{err}");
        assert!(err.contains("{{other}} is used but not declared in vars"), "{err}");

        let root = lab_dir("other-name", MINIMAL, &[("setup.yaml", ""), ("fix.yaml", "")]);
        let err = load_all(root.path()).unwrap_err().to_string();
        assert!(
            err.contains("must equal the folder's name \\\"other-name\\\"") || err.contains("other-name"),
            "{err}"
        );
    }

    #[test]
    fn objectives_need_exactly_one_probe_and_an_expectation() {
        let two = MINIMAL.replace(
            "  expect: {exit: 0}",
            "  object: {resource: svc, namespace: shop, name: orders}\n  expect: {exit: 0}",
        );
        let root = lab_dir("no-endpoints", &two, &[("setup.yaml", ""), ("fix.yaml", "")]);
        let err = load_all(root.path()).unwrap_err().to_string();
        assert!(
            err.contains("checks[0]: Invalid value: exactly one of `exec`, `object`, `trace` or `answer`"),
            "{err}"
        );
        let none = MINIMAL.replace("  expect: {exit: 0}", "");
        let root = lab_dir("no-endpoints", &none, &[("setup.yaml", ""), ("fix.yaml", "")]);
        let err = load_all(root.path()).unwrap_err().to_string();
        assert!(err.contains("checks[0].expect: Required value"), "{err}");
    }

    #[test]
    fn the_shipped_catalogue_is_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../labs");
        let labs = load_all(&root).unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<&str> = labs.iter().map(|e| e.lab.id.as_str()).collect();
        for id in ["ip-owners", "dns-flow", "upstream-forward", "no-endpoints", "netpol-timeout", "not-ready"]
        {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
        let mut orders: Vec<u32> = labs.iter().map(|e| e.lab.order).collect();
        orders.dedup();
        assert_eq!(orders.len(), labs.len(), "every lab has its own place in the list");
    }

    #[test]
    fn an_unknown_lab_lists_the_known_ones() {
        let root = lab_dir("no-endpoints", MINIMAL, &[("setup.yaml", ""), ("fix.yaml", "")]);
        let err = find(root.path(), "dns").unwrap_err().to_string();
        assert_eq!(err, "lab \"dns\" not found; known labs: no-endpoints");
    }
}
