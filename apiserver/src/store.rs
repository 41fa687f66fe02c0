//! Durable storage behind a trait: the registry keeps every object in memory and writes through
//! to a [`Store`], which must make a whole batch durable atomically before it returns. The embedded
//! implementation is [`RedbStore`]; an etcd one can implement the same trait, so keys follow
//! kube-apiserver's etcd layout (`/registry/services/specs/<ns>/<name>`, `/registry/minions/<name>`).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use netlab_proto::apiserver::v1::Resource;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

/// Objects: etcd-style key → Kubernetes JSON.
const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
/// Store-wide counters: `revision`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION: &str = "revision";

/// One change in a batch.
#[derive(Debug, Clone)]
pub enum Op {
    /// Create or replace the value under a key.
    Put(String, Bytes),
    /// Remove a key.
    Delete(String),
}

/// Changes that become durable together, and the store revision after them.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The highest resourceVersion in the batch.
    pub revision: u64,
    /// The changes, applied in order.
    pub ops: Vec<Op>,
}

/// Everything in the store, read at startup.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The store revision: the last resourceVersion handed out.
    pub revision: u64,
    /// Every key and value.
    pub objects: Vec<(String, Bytes)>,
}

/// The store failed; the request that needed it fails with an internal error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("opening the store at {path}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A read or write failed.
    #[error("store {op} failed")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Durable key-value storage with atomic batches.
pub trait Store: Send + Sync + 'static {
    /// Reads every object and the revision.
    fn load(&self) -> Result<Snapshot, StoreError>;
    /// Applies `batch` atomically; when this returns Ok the batch survives `kill -9`.
    fn commit(&self, batch: &Batch) -> Result<(), StoreError>;
}

/// The etcd key of an object, as kube-apiserver lays them out.
pub fn key(resource: Resource, namespace: &str, name: &str) -> String {
    let prefix = match resource {
        Resource::Services => "services/specs",
        Resource::Nodes => "minions",
        other => other.plural(),
    };
    if resource.namespaced() {
        format!("/registry/{prefix}/{namespace}/{name}")
    } else {
        format!("/registry/{prefix}/{name}")
    }
}

/// The embedded store: one redb file, `<data-dir>/registry.redb`.
pub struct RedbStore {
    db: redb::Database,
}

// === impl RedbStore ===

impl RedbStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join("registry.redb");
        let open_err = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.into()))?;
        let db = redb::Database::create(&path).map_err(|e| open_err(e.into()))?;
        // Create the tables so that a read of a fresh store finds them.
        let tx = db.begin_write().map_err(|e| open_err(e.into()))?;
        tx.open_table(OBJECTS).map_err(|e| open_err(e.into()))?;
        tx.open_table(META).map_err(|e| open_err(e.into()))?;
        tx.commit().map_err(|e| open_err(e.into()))?;
        Ok(Self { db })
    }
}

fn io(op: &'static str) -> impl Fn(Box<dyn std::error::Error + Send + Sync>) -> StoreError {
    move |source| StoreError::Io { op, source }
}

impl Store for RedbStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        let tx = self.db.begin_read().map_err(|e| io("read")(e.into()))?;
        let meta = tx.open_table(META).map_err(|e| io("read")(e.into()))?;
        let revision = meta.get(REVISION).map_err(|e| io("read")(e.into()))?.map(|v| v.value()).unwrap_or(0);
        let table = tx.open_table(OBJECTS).map_err(|e| io("read")(e.into()))?;
        let mut objects = Vec::new();
        for entry in table.iter().map_err(|e| io("read")(e.into()))? {
            let (k, v) = entry.map_err(|e| io("read")(e.into()))?;
            objects.push((k.value().to_string(), Bytes::copy_from_slice(v.value())));
        }
        Ok(Snapshot { revision, objects })
    }

    fn commit(&self, batch: &Batch) -> Result<(), StoreError> {
        let err = io("commit");
        let tx = self.db.begin_write().map_err(|e| err(e.into()))?;
        {
            let mut table = tx.open_table(OBJECTS).map_err(|e| err(e.into()))?;
            for op in &batch.ops {
                match op {
                    Op::Put(k, v) => {
                        table.insert(k.as_str(), v.as_ref()).map_err(|e| err(e.into()))?;
                    }
                    Op::Delete(k) => {
                        table.remove(k.as_str()).map_err(|e| err(e.into()))?;
                    }
                }
            }
            let mut meta = tx.open_table(META).map_err(|e| err(e.into()))?;
            meta.insert(REVISION, batch.revision).map_err(|e| err(e.into()))?;
        }
        // redb's default durability is Immediate: commit returns after fsync.
        tx.commit().map_err(|e| err(e.into()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_etcd_layout() {
        assert_eq!(key(Resource::Services, "demo", "orders"), "/registry/services/specs/demo/orders");
        assert_eq!(key(Resource::Pods, "demo", "client"), "/registry/pods/demo/client");
        assert_eq!(key(Resource::Nodes, "", "node-1"), "/registry/minions/node-1");
        assert_eq!(key(Resource::Namespaces, "", "demo"), "/registry/namespaces/demo");
        assert_eq!(
            key(Resource::EndpointSlices, "demo", "orders-abcde"),
            "/registry/endpointslices/demo/orders-abcde"
        );
    }

    #[test]
    fn batches_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RedbStore::open(dir.path()).unwrap();
            let batch = Batch {
                revision: 7,
                ops: vec![
                    Op::Put("/registry/a".into(), Bytes::from_static(b"1")),
                    Op::Put("/registry/b".into(), Bytes::from_static(b"2")),
                ],
            };
            store.commit(&batch).unwrap();
            store.commit(&Batch { revision: 8, ops: vec![Op::Delete("/registry/a".into())] }).unwrap();
        }
        let snap = RedbStore::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(snap.revision, 8);
        assert_eq!(snap.objects, vec![("/registry/b".to_string(), Bytes::from_static(b"2"))]);
    }
}
