//! Which pods a fault affects: the selector's match (every set field ANDed, as Chaos Mesh's
//! selector does) and the mode's pick among the matches.
//!
//! The pick must be the same in every process that asks and stable while pods come and go, so it
//! is not random per call: candidates are ranked by a hash of the fault's uid and the pod's key,
//! and a mode takes the first ones. A pod that appears later joins the ranking where its hash
//! puts it: with `all` it is always affected; with `one` the chosen pod stays chosen until it
//! goes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use crate::spec::{Mode, PodSelector, PodSelectorSpec};

/// Whether `pod` matches `sel` for a fault in namespace `fault_namespace`. `node_labels` gives
/// the labels of the pod's node when the selector has `nodeSelectors`.
pub fn matches<'a>(
    sel: &PodSelectorSpec,
    fault_namespace: &str,
    pod: &Pod,
    node_labels: impl Fn(&str) -> Option<&'a BTreeMap<String, String>>,
) -> bool {
    let meta = &pod.metadata;
    let ns = meta.namespace.as_deref().unwrap_or("default");
    let name = meta.name.as_deref().unwrap_or("");
    let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("");
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");

    if !sel.pods.is_empty() {
        if !sel.pods.get(ns).is_some_and(|names| names.iter().any(|n| n == name)) {
            return false;
        }
    } else if sel.namespaces.is_empty() {
        if ns != fault_namespace {
            return false;
        }
    } else if !sel.namespaces.iter().any(|n| n == ns) {
        return false;
    }
    let empty = BTreeMap::new();
    let labels = meta.labels.as_ref().unwrap_or(&empty);
    if !sel.label_selectors.iter().all(|(k, v)| labels.get(k) == Some(v)) {
        return false;
    }
    if !sel.expression_selectors.iter().all(|req| {
        let values = req.values.as_deref().unwrap_or_default();
        match req.operator.as_str() {
            "In" => labels.get(&req.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&req.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&req.key),
            "DoesNotExist" => !labels.contains_key(&req.key),
            _ => false,
        }
    }) {
        return false;
    }
    let annotations = meta.annotations.as_ref().unwrap_or(&empty);
    if !sel.annotation_selectors.iter().all(|(k, v)| annotations.get(k) == Some(v)) {
        return false;
    }
    if !sel.field_selectors.iter().all(|(field, want)| {
        let have = match field.as_str() {
            "metadata.name" => name,
            "metadata.namespace" => ns,
            "spec.nodeName" => node,
            "status.phase" => phase,
            "status.podIP" => status.and_then(|s| s.pod_ip.as_deref()).unwrap_or(""),
            _ => return false,
        };
        have == want
    }) {
        return false;
    }
    if !sel.nodes.is_empty() && !sel.nodes.iter().any(|n| n == node) {
        return false;
    }
    if !sel.node_selectors.is_empty() {
        let Some(node_labels) = node_labels(node) else { return false };
        if !sel.node_selectors.iter().all(|(k, v)| node_labels.get(k) == Some(v)) {
            return false;
        }
    }
    if !sel.pod_phase_selectors.is_empty() && !sel.pod_phase_selectors.iter().any(|p| p == phase) {
        return false;
    }
    true
}

/// `value` does not fit `mode`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// `fixed` needs a whole number of pods.
    #[error("value must be a positive integer")]
    NotCount,
    /// The percent modes need 0..=100.
    #[error("value of {0} must be a number between 0 and 100")]
    NotPercent(&'static str),
}

/// How many of `n` matching pods `mode`/`value` affect. `seed` decides `random-max-percent`'s
/// draw (the fault's uid, so every process draws the same).
pub fn count(sel: &PodSelector, n: usize, seed: &str) -> Result<usize, ValueError> {
    let percent = |mode: &'static str| -> Result<f64, ValueError> {
        match sel.value.trim().parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
            _ => Err(ValueError::NotPercent(mode)),
        }
    };
    Ok(match sel.mode {
        Mode::One => n.min(1),
        Mode::All => n,
        Mode::Fixed => match sel.value.trim().parse::<usize>() {
            Ok(k) if k > 0 => k.min(n),
            _ => return Err(ValueError::NotCount),
        },
        // Chaos Mesh rounds up: 10% of 3 pods is one pod.
        Mode::FixedPercent => ((n as f64) * percent("fixed-percent")? / 100.0).ceil() as usize,
        Mode::RandomMaxPercent => {
            // A percentage in [0, max], drawn once per fault; may select nothing, as upstream.
            let max = percent("random-max-percent")?.floor() as u64;
            let pct = fnv(seed.as_bytes()) % (max + 1);
            ((n as f64) * pct as f64 / 100.0).ceil() as usize
        }
    })
}

/// The pods a fault affects among `candidates` (already matched), in a stable order: ranked by
/// the hash of the fault's uid and each pod's `namespace/name`.
pub fn pick<'p>(
    sel: &PodSelector,
    fault_uid: &str,
    candidates: impl IntoIterator<Item = &'p Pod>,
) -> Result<Vec<&'p Pod>, ValueError> {
    let mut ranked: Vec<(u64, &Pod)> = candidates
        .into_iter()
        .map(|p| {
            let key = format!(
                "{fault_uid}/{}/{}",
                p.metadata.namespace.as_deref().unwrap_or(""),
                p.metadata.name.as_deref().unwrap_or("")
            );
            (fnv(key.as_bytes()), p)
        })
        .collect();
    ranked.sort_by_key(|(h, _)| *h);
    let k = count(sel, ranked.len(), fault_uid)?;
    Ok(ranked.into_iter().take(k).map(|(_, p)| p).collect())
}

/// FNV-1a: stable across processes and versions, unlike std's hasher.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        api::core::v1::{PodSpec, PodStatus},
        apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, ObjectMeta},
    };

    use super::*;

    fn pod(ns: &str, name: &str, app: &str, node: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                labels: Some([("app".to_string(), app.to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec { node_name: Some(node.into()), ..Default::default() }),
            status: Some(PodStatus { phase: Some("Running".into()), ..Default::default() }),
        }
    }

    fn no_nodes(_: &str) -> Option<&'static BTreeMap<String, String>> {
        None
    }

    #[test]
    fn selector_fields_are_anded_and_default_to_the_fault_namespace() {
        let client = pod("default", "client-1", "client", "node-1");
        let other_ns = pod("shop", "client-2", "client", "node-2");
        let mut sel = PodSelectorSpec {
            label_selectors: [("app".to_string(), "client".to_string())].into(),
            ..Default::default()
        };
        assert!(matches(&sel, "default", &client, no_nodes));
        assert!(!matches(&sel, "default", &other_ns, no_nodes));
        sel.namespaces = vec!["default".into(), "shop".into()];
        assert!(matches(&sel, "default", &other_ns, no_nodes));
        sel.nodes = vec!["node-1".into()];
        assert!(matches(&sel, "default", &client, no_nodes));
        assert!(!matches(&sel, "default", &other_ns, no_nodes));
        sel.expression_selectors = vec![LabelSelectorRequirement {
            key: "app".into(),
            operator: "NotIn".into(),
            values: Some(vec!["client".into()]),
        }];
        assert!(!matches(&sel, "default", &client, no_nodes));

        let by_name = PodSelectorSpec {
            pods: [("shop".to_string(), vec!["client-2".to_string()])].into(),
            ..Default::default()
        };
        assert!(matches(&by_name, "default", &other_ns, no_nodes));
        assert!(!matches(&by_name, "default", &client, no_nodes));
    }

    #[test]
    fn modes_pick_stably() {
        let pods: Vec<Pod> = (0..10).map(|i| pod("default", &format!("p-{i}"), "a", "n")).collect();
        let sel = |mode, value: &str| PodSelector { mode, value: value.into(), ..Default::default() };
        assert_eq!(pick(&sel(Mode::All, ""), "uid", &pods).unwrap().len(), 10);
        assert_eq!(pick(&sel(Mode::Fixed, "3"), "uid", &pods).unwrap().len(), 3);
        assert_eq!(pick(&sel(Mode::FixedPercent, "50"), "uid", &pods).unwrap().len(), 5);
        assert!(pick(&sel(Mode::RandomMaxPercent, "30"), "uid", &pods).unwrap().len() <= 3);
        assert_eq!(pick(&sel(Mode::Fixed, "0"), "uid", &pods).unwrap_err(), ValueError::NotCount);
        assert_eq!(
            pick(&sel(Mode::FixedPercent, "101"), "uid", &pods).unwrap_err().to_string(),
            "value of fixed-percent must be a number between 0 and 100"
        );

        // `one` keeps its pod while others come and go.
        let one = pick(&sel(Mode::One, ""), "uid", &pods).unwrap()[0].metadata.name.clone();
        let mut more = pods.clone();
        more.retain(|p| p.metadata.name != Some("p-3".into()) || one == Some("p-3".into()));
        more.push(pod("default", "late", "a", "n"));
        let again = pick(&sel(Mode::One, ""), "uid", &more).unwrap()[0].metadata.name.clone();
        assert!(again == one || again == Some("late".into()));
    }
}
