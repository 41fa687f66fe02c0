//! Label and field selectors in Kubernetes' string syntax, as `kubectl get -l` and
//! `--field-selector` send them, matched against stored objects on list and watch.
//!
//! Labels: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a`, `!a`, comma-separated (AND).
//! Fields: `path=value`, `path==value`, `path!=value`, where the path is one the resource supports
//! (`metadata.name`, `metadata.namespace`, and per resource e.g. `spec.nodeName` for pods), as the
//! real apiserver restricts them.

use std::collections::BTreeMap;

use netlab_proto::apiserver::v1::Resource;

/// A selector string could not be parsed; the message is the apiserver's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelOp {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    reqs: Vec<(String, LabelOp)>,
}

// === impl LabelSelector ===

impl LabelSelector {
    /// Parses Kubernetes' label selector syntax.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        for term in split_terms(s) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            reqs.push(parse_label_term(term)?);
        }
        Ok(Self { reqs })
    }

    /// Whether the selector is empty (matches everything).
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether an object with `labels` matches.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.reqs.iter().all(|(key, op)| {
            let v = labels.get(key);
            match op {
                LabelOp::Eq(want) => v == Some(want),
                LabelOp::NotEq(want) => v != Some(want),
                LabelOp::In(set) => v.is_some_and(|v| set.contains(v)),
                LabelOp::NotIn(set) => v.is_none_or(|v| !set.contains(v)),
                LabelOp::Exists => v.is_some(),
                LabelOp::NotExists => v.is_none(),
            }
        })
    }
}

/// Splits on commas that are not inside `( )`.
fn split_terms(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_label_term(term: &str) -> Result<(String, LabelOp), SelectorError> {
    let bad = || SelectorError(format!("unable to parse requirement: found '{term}', expected: identifier"));
    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        return if valid_key(key) { Ok((key.to_string(), LabelOp::NotExists)) } else { Err(bad()) };
    }
    for (sep, ctor) in
        [("!=", LabelOp::NotEq as fn(String) -> LabelOp), ("==", LabelOp::Eq), ("=", LabelOp::Eq)]
    {
        if let Some((k, v)) = term.split_once(sep) {
            let (k, v) = (k.trim(), v.trim());
            if !valid_key(k) || v.contains(['=', '!', '(', ')', ' ']) {
                return Err(bad());
            }
            return Ok((k.to_string(), ctor(v.to_string())));
        }
    }
    let words: Vec<&str> = term.splitn(2, char::is_whitespace).collect();
    if let [key, rest] = words[..] {
        let rest = rest.trim();
        let (op, set) = if let Some(set) = rest.strip_prefix("notin") {
            (false, set)
        } else if let Some(set) = rest.strip_prefix("in") {
            (true, set)
        } else {
            return Err(bad());
        };
        let set = set.trim();
        let inner = set
            .strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
            .ok_or_else(|| SelectorError(format!("found '{set}', expected: '('")))?;
        let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
        let key = key.to_string();
        return Ok(if op { (key, LabelOp::In(values)) } else { (key, LabelOp::NotIn(values)) });
    }
    if valid_key(term) { Ok((term.to_string(), LabelOp::Exists)) } else { Err(bad()) }
}

fn valid_key(k: &str) -> bool {
    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

/// A parsed field selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// (JSON pointer, wanted value, equal?)
    reqs: Vec<(String, String, bool)>,
}

// === impl FieldSelector ===

impl FieldSelector {
    /// Parses `path=value,path!=value` for `resource`, rejecting fields it does not support.
    pub fn parse(resource: Resource, s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (path, value, eq) = if let Some((p, v)) = term.split_once("!=") {
                (p, v, false)
            } else if let Some((p, v)) = term.split_once("==") {
                (p, v, true)
            } else if let Some((p, v)) = term.split_once('=') {
                (p, v, true)
            } else {
                return Err(SelectorError(format!("invalid selector: '{s}'; can't understand '{term}'")));
            };
            let path = path.trim();
            if !supported_field(resource, path) {
                return Err(SelectorError(format!("field label not supported: {path}")));
            }
            let pointer = format!("/{}", path.replace('.', "/"));
            reqs.push((pointer, value.trim().to_string(), eq));
        }
        Ok(Self { reqs })
    }

    /// Whether the object matches. A missing field reads as the empty string, as upstream.
    pub fn matches(&self, obj: &serde_json::Value) -> bool {
        self.reqs.iter().all(|(pointer, want, eq)| {
            let have = match obj.pointer(pointer) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Bool(b)) => b.to_string(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            (have == *want) == *eq
        })
    }
}

/// The field labels each resource supports (upstream `GetAttrs`/`*ToSelectableFields`).
fn supported_field(resource: Resource, path: &str) -> bool {
    if matches!(path, "metadata.name" | "metadata.namespace") {
        return true;
    }
    let extra: &[&str] = match resource {
        Resource::Pods => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        Resource::Events => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        Resource::Nodes => &["spec.unschedulable"],
        Resource::Namespaces => &["status.phase"],
        Resource::Services => &["spec.clusterIP", "spec.type"],
        Resource::ReplicaSets => &["status.replicas"],
        _ => &[],
    };
    extra.contains(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn label_selector_operators() {
        let l = labels(&[("app", "orders"), ("tier", "web")]);
        for (sel, want) in [
            ("", true),
            ("app=orders", true),
            ("app==orders", true),
            ("app!=orders", false),
            ("app=orders,tier=db", false),
            ("app in (orders, db)", true),
            ("tier notin (web)", false),
            ("app", true),
            ("!app", false),
            ("!legacy", true),
            ("missing!=x", true),
            ("app in (a,b),tier", false),
        ] {
            assert_eq!(LabelSelector::parse(sel).unwrap().matches(&l), want, "{sel}");
        }
        assert!(LabelSelector::parse("app=(x").is_err());
    }

    #[test]
    fn field_selector_on_pods_and_unsupported_fields() {
        let pod = serde_json::json!({"metadata": {"name": "a"}, "spec": {"nodeName": "node-1"}});
        let sel = FieldSelector::parse(Resource::Pods, "spec.nodeName=node-1").unwrap();
        assert!(sel.matches(&pod));
        let sel = FieldSelector::parse(Resource::Pods, "spec.nodeName!=node-1").unwrap();
        assert!(!sel.matches(&pod));
        let sel = FieldSelector::parse(Resource::Pods, "spec.nodeName=").unwrap();
        assert!(!sel.matches(&pod), "unscheduled pods have an empty nodeName");
        assert_eq!(
            FieldSelector::parse(Resource::Services, "spec.nodeName=x").unwrap_err().to_string(),
            "field label not supported: spec.nodeName"
        );
    }
}
