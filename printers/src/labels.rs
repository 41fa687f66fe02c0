//! Label sets and label selectors written the way kubectl writes them (`app=orders,tier=web`,
//! `env in (a,b)`), as the SELECTOR and POD-SELECTOR cells show them.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// `labels.FormatLabels`: `k=v` pairs sorted by key, or `<none>`.
pub fn format_labels(labels: Option<&BTreeMap<String, String>>) -> String {
    let s = labels_string(labels);
    if s.is_empty() { "<none>".to_string() } else { s }
}

/// `labels.Set.String`: `k=v` pairs sorted by key, possibly empty.
pub fn labels_string(labels: Option<&BTreeMap<String, String>>) -> String {
    labels.into_iter().flatten().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// `LabelSelectorAsSelector(..).String()`: requirements sorted by key; empty when the selector
/// selects everything (or nothing, for a missing selector).
pub fn selector_string(sel: Option<&LabelSelector>) -> String {
    let Some(sel) = sel else {
        return String::new();
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        reqs.push((k.clone(), format!("{k}={v}")));
    }
    for expr in sel.match_expressions.iter().flatten() {
        let mut values = expr.values.clone().unwrap_or_default();
        values.sort();
        let key = &expr.key;
        let text = match expr.operator.as_str() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other} ({})", values.join(",")),
        };
        reqs.push((key.clone(), text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    reqs.into_iter().map(|(_, t)| t).collect::<Vec<_>>().join(",")
}

/// `metav1.FormatLabelSelector`: the selector string, or `<none>` when empty.
pub fn format_label_selector(sel: Option<&LabelSelector>) -> String {
    let s = selector_string(sel);
    if s.is_empty() { "<none>".to_string() } else { s }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn labels_are_sorted() {
        let labels: BTreeMap<String, String> =
            [("tier".to_string(), "web".to_string()), ("app".to_string(), "orders".to_string())].into();
        assert_eq!(format_labels(Some(&labels)), "app=orders,tier=web");
        assert_eq!(format_labels(None), "<none>");
    }

    #[test]
    fn selectors_print_like_kubectl() {
        let sel = LabelSelector {
            match_labels: Some([("app".to_string(), "orders".to_string())].into()),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "env".into(),
                    operator: "In".into(),
                    values: Some(vec!["prod".into(), "dev".into()]),
                },
                LabelSelectorRequirement {
                    key: "legacy".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert_eq!(format_label_selector(Some(&sel)), "app=orders,env in (dev,prod),!legacy");
        assert_eq!(format_label_selector(Some(&LabelSelector::default())), "<none>");
    }
}
