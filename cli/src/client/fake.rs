//! An in-memory apiserver with the real one's create/update/delete semantics and error wording,
//! so command logic can be tested without a server.

use std::collections::BTreeMap;

use netlab_proto::apiserver::v1::Resource;
use serde_json::{Value, json};

use super::Cluster;
use crate::{
    report::{ApiError, Problem},
    resource,
};

/// Objects keyed by (resource, namespace, name).
#[derive(Debug, Default)]
pub struct FakeCluster {
    /// The stored objects.
    pub objects: BTreeMap<(i32, String, String), Value>,
    /// Every write, as `verb resource/name`, for assertions.
    pub writes: Vec<String>,
    revision: u64,
    /// Makes the next update fail with Conflict, as a concurrent writer would.
    pub conflict_next_update: bool,
    /// Makes the next create or update fail with this problem (validation, allocation, ...).
    pub fail_next_write: Option<Problem>,
}

fn not_found(r: Resource, name: &str) -> Problem {
    Problem::from(ApiError::new("NotFound", format!("{} \"{name}\" not found", r.group_resource())))
}

// === impl FakeCluster ===

impl FakeCluster {
    /// Stores an object as if it had been created earlier.
    pub fn seed(&mut self, r: Resource, obj: Value) {
        let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_string();
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
        self.revision += 1;
        let mut obj = obj;
        obj["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        self.objects.insert((r as i32, ns, name), obj);
    }

    /// A stored object.
    pub fn object(&self, r: Resource, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&(r as i32, ns.to_string(), name.to_string()))
    }

    fn key(r: Resource, ns: &str, obj: &Value) -> (i32, String, String) {
        let ns = if r.namespaced() {
            obj.pointer("/metadata/namespace").and_then(Value::as_str).filter(|n| !n.is_empty()).unwrap_or(ns)
        } else {
            ""
        };
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        (r as i32, ns.to_string(), name.to_string())
    }
}

fn selected(obj: &Value, labels: &str, fields: &str) -> bool {
    let label_ok = labels.split(',').filter(|s| !s.is_empty()).all(|req| {
        let (k, v) = req.split_once('=').unwrap_or((req, ""));
        obj.pointer("/metadata/labels").and_then(|l| l.get(k)).and_then(Value::as_str) == Some(v)
    });
    let field_ok = fields.split(',').filter(|s| !s.is_empty()).all(|req| {
        let (k, v) = req.split_once('=').unwrap_or((req, ""));
        let pointer = format!("/{}", k.replace('.', "/"));
        obj.pointer(&pointer).and_then(Value::as_str).unwrap_or("") == v
    });
    label_ok && field_ok
}

impl Cluster for FakeCluster {
    async fn get(&mut self, r: Resource, ns: &str, name: &str) -> Result<Value, Problem> {
        let ns = if r.namespaced() { ns } else { "" };
        self.object(r, ns, name).cloned().ok_or_else(|| not_found(r, name))
    }

    async fn list(
        &mut self,
        r: Resource,
        ns: &str,
        labels: &str,
        fields: &str,
    ) -> Result<Vec<Value>, Problem> {
        Ok(self
            .objects
            .iter()
            .filter(|((res, ons, _), obj)| {
                *res == r as i32 && (ns.is_empty() || ons == ns) && selected(obj, labels, fields)
            })
            .map(|(_, v)| v.clone())
            .collect())
    }

    async fn create(&mut self, r: Resource, ns: &str, obj: &Value) -> Result<Value, Problem> {
        let key = Self::key(r, ns, obj);
        if let Some(p) = self.fail_next_write.take() {
            return Err(p);
        }
        if self.objects.contains_key(&key) {
            return Err(Problem::from(ApiError::new(
                "AlreadyExists",
                format!("{} \"{}\" already exists", r.group_resource(), key.2),
            )));
        }
        let mut obj = obj.clone();
        self.revision += 1;
        if r.namespaced() {
            obj["metadata"]["namespace"] = json!(key.1);
        }
        obj["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        obj["metadata"]["uid"] = json!(format!("uid-{}", self.revision));
        obj["metadata"]["creationTimestamp"] = json!("2024-05-01T10:00:00Z");
        self.writes.push(format!("create {}", resource::slash_name(r, &key.2)));
        self.objects.insert(key, obj.clone());
        Ok(obj)
    }

    async fn update(&mut self, r: Resource, ns: &str, obj: &Value) -> Result<Value, Problem> {
        let key = Self::key(r, ns, obj);
        let Some(current) = self.objects.get(&key).cloned() else {
            return Err(not_found(r, &key.2));
        };
        if let Some(p) = self.fail_next_write.take() {
            return Err(p);
        }
        let want = obj.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("");
        let have = current.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("");
        if std::mem::take(&mut self.conflict_next_update) || (!want.is_empty() && want != have) {
            return Err(Problem::from(ApiError::new(
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                    r.group_resource(),
                    key.2
                ),
            )));
        }
        let mut obj = obj.clone();
        self.revision += 1;
        obj["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        if let Some(status) = current.get("status") {
            obj["status"] = status.clone();
        }
        self.writes.push(format!("update {}", resource::slash_name(r, &key.2)));
        self.objects.insert(key, obj.clone());
        Ok(obj)
    }

    async fn delete(
        &mut self,
        r: Resource,
        ns: &str,
        name: &str,
        _grace: Option<i64>,
    ) -> Result<Value, Problem> {
        let ns = if r.namespaced() { ns } else { "" };
        let removed = self.objects.remove(&(r as i32, ns.to_string(), name.to_string()));
        self.writes.push(format!("delete {}", resource::slash_name(r, name)));
        removed.ok_or_else(|| not_found(r, name))
    }
}
