use std::sync::Mutex;

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, ReplicaSet},
        core::v1::Pod,
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::*;

/// The fake's only error.
#[derive(Debug, thiserror::Error)]
#[error("boom")]
struct Failure;

impl ReconcileError for Failure {}

/// Records what it reconciles; `fail-once` fails the first time, `again` asks for another look
/// after a second, `hang` never finishes.
#[derive(Default)]
struct Fake {
    seen: Mutex<Vec<String>>,
    failed: Mutex<Vec<String>>,
}

impl Reconcile for Fake {
    const NAME: &'static str = "fake";
    type Error = Failure;

    async fn reconcile(&self, key: &str) -> Result<Option<Duration>, Failure> {
        let first = {
            let mut seen = self.seen.lock().unwrap();
            let first = !seen.iter().any(|k| k == key);
            seen.push(key.to_string());
            first
        };
        match key {
            "fail-once" if first => Err(Failure),
            "again" if first => Ok(Some(Duration::from_secs(1))),
            "hang" => std::future::pending().await,
            _ => Ok(None),
        }
    }

    fn error_policy(&self, key: &str, _: &Failure) {
        self.failed.lock().unwrap().push(key.to_string());
    }
}

impl Fake {
    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn applied(key: &str) -> Change<String> {
    Change::Applied(Arc::new(key.to_string()))
}

fn own_key(change: &Change<String>) -> Vec<String> {
    match change {
        Change::Applied(key) | Change::Deleted(key) => vec![key.to_string()],
    }
}

#[tokio::test(start_paused = true)]
async fn workers_wait_for_the_caches_then_retry_failures_and_requeue_on_request() {
    let tasks = Tasks::new(CancellationToken::new());
    let fake = Arc::new(Fake::default());
    let (tx, rx) = mpsc::unbounded_channel();
    let (synced_tx, synced_rx) = oneshot::channel::<()>();
    Controller::new(fake.clone())
        .trigger(
            async move {
                let _ = synced_rx.await;
            },
            rx,
            own_key,
        )
        .on_synced(|| vec!["primed".into()])
        .run(&tasks, 2);
    for key in ["fail-once", "again", "plain"] {
        tx.send(applied(key)).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(fake.seen().is_empty(), "nothing is reconciled before the caches have synced");

    synced_tx.send(()).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut seen = fake.seen();
    seen.sort();
    assert_eq!(seen, ["again", "again", "fail-once", "fail-once", "plain", "primed"]);
    assert_eq!(*fake.failed.lock().unwrap(), ["fail-once"]);
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_every_task_even_mid_reconcile() {
    let shutdown = CancellationToken::new();
    let tasks = Tasks::new(shutdown.clone());
    let fake = Arc::new(Fake::default());
    let (tx, rx) = mpsc::unbounded_channel();
    Controller::new(fake.clone()).trigger(async {}, rx, own_key).run(&tasks, 3);
    tx.send(applied("hang")).unwrap();
    tx.send(applied("again")).unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(tasks.len(), 4, "one trigger and three workers");
    assert!(fake.seen().contains(&"hang".to_string()), "a reconcile is in flight");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(1), tasks.wait()).await.expect("every task stops");
    assert!(tasks.is_empty());
    assert!(tx.send(applied("late")).is_err(), "the trigger is gone");
}

fn object<K: Object + Default>(name: &str) -> K {
    let mut k = K::default();
    *k.metadata_mut() =
        ObjectMeta { name: Some(name.into()), namespace: Some("ns".into()), ..Default::default() };
    k
}

#[test]
fn an_owned_change_queues_its_controller_or_the_adopters_of_an_orphan() {
    let rs: ReplicaSet = object("web-1");
    let adopters = |_: &Pod| vec![Arc::new(object::<ReplicaSet>("web-2"))];
    let mut owned: Pod = object("web-1-abcde");
    owned.metadata.owner_references = Some(vec![pod::controller_ref(&rs)]);
    let owned = Arc::new(owned);
    assert_eq!(owners(&Change::Applied(owned.clone()), adopters), ["ns/web-1"]);
    assert_eq!(owners(&Change::Deleted(owned), adopters), ["ns/web-1"], "a deleted pod is replaced");

    let orphan = Arc::new(object::<Pod>("stray"));
    assert_eq!(owners(&Change::Applied(orphan.clone()), adopters), ["ns/web-2"], "may be adopted");
    assert!(owners(&Change::Deleted(orphan), adopters).is_empty());

    let d: Deployment = object("web");
    let mut other: Pod = object("other");
    other.metadata.owner_references = Some(vec![pod::controller_ref(&d)]);
    assert!(
        owners(&Change::Applied(Arc::new(other)), adopters).is_empty(),
        "a Deployment is not a ReplicaSet"
    );
}
