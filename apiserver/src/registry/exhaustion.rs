//! ExhaustionChaos `service-cidr`: while such a fault is in force, the Service CIDR behaves as a
//! full range. A Service that needs a new ClusterIP is refused with kube-apiserver's own error
//! for a full range (`Internal error occurred: failed to allocate a serviceIP: range is full`),
//! one that asks for a specific address with the error for a taken one, as every address of a
//! full range is taken; Services that keep their address, headless and ExternalName Services
//! are untouched, as they would be. Deleting the fault, pausing it, or its `duration` running
//! out makes allocation work again: the writer asks at each allocation, with its own clock
//! ([`netlab_chaos::window::Window`]), so nothing needs to be re-armed.
//!
//! Each refusal marks the allocation's span with the fault and counts
//! `status.counters["apiserver"].allocationsRefused` on it. The count is written by the writer
//! itself, into the same batch as the refused write: the apiserver owns the store, so going
//! through its own API (netlab-chaos's `Reporter`) would only add a client of itself, a flush
//! delay and conflicts that the single writer cannot have.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use netlab_chaos::{FaultRef, lab::ExhaustionAction, status::counter, window::Window};
use serde_json::{Map, Value, json};

use crate::object::Stored;

/// The `status.counters` entry the apiserver writes.
pub const REPORTER: &str = "apiserver";

/// A `service-cidr` fault in force for one Service write.
#[derive(Debug)]
pub struct Exhaustion {
    /// The fault, for the span.
    pub fault: FaultRef,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Set by the allocator when it refused an address because of the fault.
    pub refused: bool,
}

/// The first (by namespace and name) `service-cidr` fault among `faults` in force at `now`.
pub fn in_force<'a>(faults: impl IntoIterator<Item = &'a Stored>, now: Timestamp) -> Option<Exhaustion> {
    let mut active: Vec<&Stored> = faults
        .into_iter()
        .filter(|f| {
            f.value.pointer("/spec/action").and_then(Value::as_str)
                == Some(ExhaustionAction::ServiceCidr.as_str())
        })
        .filter(|f| {
            let meta: ObjectMeta = f
                .value
                .get("metadata")
                .cloned()
                .and_then(|m| serde_json::from_value(m).ok())
                .unwrap_or_default();
            let duration = f.value.pointer("/spec/duration").and_then(Value::as_str);
            Window::of(&meta, duration).active_at(now)
        })
        .collect();
    active.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let f = active.first()?;
    Some(Exhaustion {
        fault: FaultRef::new(
            &f.namespace,
            &f.name,
            "ExhaustionChaos",
            ExhaustionAction::ServiceCidr.as_str(),
        ),
        namespace: f.namespace.clone(),
        name: f.name.clone(),
        refused: false,
    })
}

/// `fault` with one more refusal counted in its status.
pub fn count_refusal(fault: &Value) -> Value {
    let mut obj = fault.clone();
    let Some(root) = obj.as_object_mut() else {
        return obj;
    };
    let mine = map_at(map_at(map_at(root, "status"), "counters"), REPORTER);
    let n = mine.get(counter::ALLOCATIONS_REFUSED).and_then(Value::as_u64).unwrap_or(0);
    mine.insert(counter::ALLOCATIONS_REFUSED.into(), json!(n + 1));
    obj
}

/// The object at `key`, made one if it is not.
fn map_at<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = m.entry(key).or_insert(Value::Null);
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    // Made an object just above.
    slot.as_object_mut().expect("an object")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(name: &str, action: &str, created: &str, duration: Option<&str>) -> Stored {
        let mut spec = json!({"action": action});
        if let Some(d) = duration {
            spec["duration"] = json!(d);
        }
        Stored::new(
            netlab_proto::apiserver::v1::Resource::ExhaustionChaos,
            json!({"metadata": {"name": name, "namespace": "default", "creationTimestamp": created}, "spec": spec}),
        )
    }

    #[test]
    fn only_service_cidr_faults_in_their_window() {
        let now: Timestamp = "2026-12-07T10:00:30Z".parse().unwrap();
        let faults = [
            fault("conntrack", "conntrack", "2026-12-07T10:00:00Z", None),
            fault("over", "service-cidr", "2026-12-07T10:00:00Z", Some("10s")),
            fault("later", "service-cidr", "2026-12-07T10:01:00Z", None),
        ];
        assert!(in_force(&faults, now).is_none());
        let on = fault("full", "service-cidr", "2026-12-07T10:00:00Z", Some("60s"));
        let hit = in_force(faults.iter().chain([&on]), now).unwrap();
        assert_eq!((hit.namespace.as_str(), hit.name.as_str()), ("default", "full"));
        assert_eq!(hit.fault.name, "default/full");
        assert!(in_force([&on], "2026-12-07T10:01:00Z".parse().unwrap()).is_none(), "duration up");
    }

    #[test]
    fn refusals_add_up_in_the_apiservers_entry() {
        let f = json!({"status": {"counters": {"node/node-1": {"allocationsRefused": 4}}}});
        let once = count_refusal(&f);
        let twice = count_refusal(&once);
        assert_eq!(twice["status"]["counters"]["apiserver"]["allocationsRefused"], 2);
        assert_eq!(twice["status"]["counters"]["node/node-1"]["allocationsRefused"], 4);
    }
}
