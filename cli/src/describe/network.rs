//! Pages for the networking kinds: NetworkPolicy and EndpointSlice.

use k8s_openapi::{
    api::{
        discovery::v1::EndpointSlice,
        networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort},
    },
    apimachinery::pkg::util::intstr::IntOrString,
};
use serde_json::Value;

use super::{Clock, Page};
use crate::{print::typed, selector::format_label_selector};

fn ports(w: &mut Page, indent: &str, ports: &[NetworkPolicyPort]) {
    if ports.is_empty() {
        w.w(0, &format!("{indent}To Port: <any> (traffic allowed to all ports)\n"));
        return;
    }
    for p in ports {
        let proto = p.protocol.clone().unwrap_or_else(|| "TCP".to_string());
        // Go prints a nil *IntOrString as `<nil>`.
        let port = match &p.port {
            Some(IntOrString::Int(i)) => i.to_string(),
            Some(IntOrString::String(s)) => s.clone(),
            None => "<nil>".to_string(),
        };
        match p.end_port {
            None => w.w(0, &format!("{indent}To Port: {port}/{proto}\n")),
            Some(end) => w.w(0, &format!("{indent}To Port Range: {port}-{end}/{proto}\n")),
        }
    }
}

fn peers(w: &mut Page, indent: &str, title: &str, peers: &[NetworkPolicyPeer], any: &str) {
    if peers.is_empty() {
        w.w(0, &format!("{indent}{title}: <any> ({any})\n"));
        return;
    }
    for peer in peers {
        w.w(0, &format!("{indent}{title}:\n"));
        match (&peer.pod_selector, &peer.namespace_selector, &peer.ip_block) {
            (Some(pod), Some(ns), _) => {
                w.w(1, &format!("{indent}NamespaceSelector: {}\n", format_label_selector(Some(ns))));
                w.w(1, &format!("{indent}PodSelector: {}\n", format_label_selector(Some(pod))));
            }
            (Some(pod), None, _) => {
                w.w(1, &format!("{indent}PodSelector: {}\n", format_label_selector(Some(pod))))
            }
            (None, Some(ns), _) => {
                w.w(1, &format!("{indent}NamespaceSelector: {}\n", format_label_selector(Some(ns))))
            }
            (None, None, Some(block)) => {
                w.w(1, &format!("{indent}IPBlock:\n"));
                w.w(2, &format!("{indent}CIDR: {}\n", block.cidr));
                w.w(2, &format!("{indent}Except: {}\n", block.except.clone().unwrap_or_default().join(", ")));
            }
            (None, None, None) => {}
        }
    }
}

/// kubectl's NetworkPolicy page.
pub fn network_policy(obj: &Value, clock: &Clock) -> String {
    let np: NetworkPolicy = typed(obj);
    let spec = np.spec.clone().unwrap_or_default();
    let mut w = Page::default();
    w.w(0, &format!("Name:\t{}\n", np.metadata.name.clone().unwrap_or_default()));
    w.w(0, &format!("Namespace:\t{}\n", np.metadata.namespace.clone().unwrap_or_default()));
    w.w(0, &format!("Created on:\t{}\n", clock.go_string(np.metadata.creation_timestamp.as_ref())));
    w.labels("Labels", np.metadata.labels.as_ref());
    w.annotations("Annotations", np.metadata.annotations.as_ref());
    w.w(0, "Spec:\n");
    w.w(1, "PodSelector: ");
    let sel = &spec.pod_selector.clone().unwrap_or_default();
    if sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty())
    {
        w.w(2, "<none> (Allowing the specific traffic to all pods in this namespace)\n");
    } else {
        w.w(2, &format!("{}\n", format_label_selector(Some(sel))));
    }
    let types = spec.policy_types.clone().unwrap_or_default();
    let indent = "    ";
    if types.iter().any(|t| t == "Ingress") {
        w.w(1, "Allowing ingress traffic:\n");
        let rules = spec.ingress.clone().unwrap_or_default();
        if rules.is_empty() {
            w.w(0, &format!("{indent}<none> (Selected pods are isolated for ingress connectivity)\n"));
        }
        for (i, rule) in rules.iter().enumerate() {
            ports(&mut w, indent, rule.ports.as_deref().unwrap_or_default());
            peers(
                &mut w,
                indent,
                "From",
                rule.from.as_deref().unwrap_or_default(),
                "traffic not restricted by source",
            );
            if i + 1 != rules.len() {
                w.w(0, &format!("{indent}----------\n"));
            }
        }
    } else {
        w.w(1, "Not affecting ingress traffic\n");
    }
    if types.iter().any(|t| t == "Egress") {
        w.w(1, "Allowing egress traffic:\n");
        let rules = spec.egress.clone().unwrap_or_default();
        if rules.is_empty() {
            w.w(0, &format!("{indent}<none> (Selected pods are isolated for egress connectivity)\n"));
        }
        for (i, rule) in rules.iter().enumerate() {
            ports(&mut w, indent, rule.ports.as_deref().unwrap_or_default());
            peers(
                &mut w,
                indent,
                "To",
                rule.to.as_deref().unwrap_or_default(),
                "traffic not restricted by destination",
            );
            if i + 1 != rules.len() {
                w.w(0, &format!("{indent}----------\n"));
            }
        }
    } else {
        w.w(1, "Not affecting egress traffic\n");
    }
    w.w(1, &format!("Policy Types: {}\n", types.join(", ")));
    w.finish()
}

/// kubectl's EndpointSlice page.
pub fn endpoint_slice(obj: &Value, events: Option<&[Value]>, clock: &Clock) -> String {
    let s: EndpointSlice = typed(obj);
    let mut w = Page::default();
    w.w(0, &format!("Name:\t{}\n", s.metadata.name.clone().unwrap_or_default()));
    w.w(0, &format!("Namespace:\t{}\n", s.metadata.namespace.clone().unwrap_or_default()));
    w.labels("Labels", s.metadata.labels.as_ref());
    w.annotations("Annotations", s.metadata.annotations.as_ref());
    w.w(0, &format!("AddressType:\t{}\n", s.address_type));
    let ports = s.ports.clone().unwrap_or_default();
    if ports.is_empty() {
        w.w(0, "Ports: <unset>\n");
    } else {
        w.w(0, "Ports:\n");
        w.w(1, "Name\tPort\tProtocol\n");
        w.w(1, "----\t----\t--------\n");
        for p in ports {
            let name = p.name.filter(|n| !n.is_empty()).unwrap_or_else(|| "<unset>".to_string());
            let port = p.port.map_or_else(|| "<unset>".to_string(), |p| p.to_string());
            w.w(1, &format!("{name}\t{port}\t{}\n", p.protocol.unwrap_or_else(|| "TCP".into())));
        }
    }
    if s.endpoints.is_empty() {
        w.w(0, "Endpoints: <none>\n");
    } else {
        w.w(0, "Endpoints:\n");
        for e in &s.endpoints {
            let addrs = if e.addresses.is_empty() { "<none>".to_string() } else { e.addresses.join(", ") };
            w.w(1, &format!("- Addresses:\t{addrs}\n"));
            w.w(2, "Conditions:\n");
            let ready = e
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .map_or_else(|| "<unset>".to_string(), |r| r.to_string());
            w.w(3, &format!("Ready:\t{ready}\n"));
            w.w(2, &format!("Hostname:\t{}\n", e.hostname.clone().unwrap_or_else(|| "<unset>".into())));
            if let Some(t) = &e.target_ref {
                w.w(
                    2,
                    &format!(
                        "TargetRef:\t{}/{}\n",
                        t.kind.clone().unwrap_or_default(),
                        t.name.clone().unwrap_or_default()
                    ),
                );
            }
            w.w(2, &format!("NodeName:\t{}\n", e.node_name.clone().unwrap_or_else(|| "<unset>".into())));
            w.w(2, &format!("Zone:\t{}\n", e.zone.clone().unwrap_or_else(|| "<unset>".into())));
        }
    }
    w.events(events, clock);
    w.finish()
}
