//! `metav1.LabelSelector` matching, as `LabelSelectorAsSelector(...).Matches(labels)` does: the
//! workload controllers keep their own objects in caches and must decide locally which pods and
//! ReplicaSets a selector takes.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether `selector` selects an object labelled `labels`. A missing selector selects nothing and
/// an empty one selects everything, as upstream (`LabelSelectorAsSelector`).
pub fn matches(selector: Option<&LabelSelector>, labels: Option<&BTreeMap<String, String>>) -> bool {
    let Some(selector) = selector else { return false };
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let by_labels = selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    by_labels
        && selector.match_expressions.iter().flatten().all(|req| {
            let values = req.values.as_deref().unwrap_or_default();
            let value = labels.get(&req.key);
            match req.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                // Validation rejects other operators; an unknown one selects nothing.
                _ => false,
            }
        })
}

/// Whether every label of `want` is on `have` (the `fullyLabeledReplicas` test).
pub fn contains_all(
    have: Option<&BTreeMap<String, String>>,
    want: Option<&BTreeMap<String, String>>,
) -> bool {
    want.into_iter().flatten().all(|(k, v)| have.and_then(|h| h.get(k)) == Some(v))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use serde_json::json;

    use super as selector;

    #[test]
    fn label_selectors_match_as_upstream() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "orders"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]},
                                 {"key": "canary", "operator": "DoesNotExist"}]
        }))
        .unwrap();
        let labels =
            |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert!(selector::matches(Some(&sel), Some(&labels(&[("app", "orders"), ("tier", "web")]))));
        assert!(!selector::matches(Some(&sel), Some(&labels(&[("app", "orders"), ("tier", "db")]))));
        assert!(!selector::matches(
            Some(&sel),
            Some(&labels(&[("app", "orders"), ("tier", "web"), ("canary", "1")]))
        ));
        assert!(selector::matches(Some(&LabelSelector::default()), None), "empty selects everything");
        assert!(!selector::matches(None, Some(&labels(&[("app", "orders")]))), "none selects nothing");
    }
}
