//! The `Accept` header: which of the forms kubectl asks for this server answers with.
//!
//! kubectl lists media types in preference order with parameters naming a kind
//! (`application/json;as=Table;v=v1;g=meta.k8s.io,...,application/json`); the first one the
//! server can produce wins. Only JSON is served: a protobuf entry is skipped (kubectl always
//! lists JSON after it).

use axum::http::{HeaderMap, header};

/// The first media range in `Accept` that asks for `as` of group `g`, in one of `versions`;
/// returns that version.
pub fn wants(headers: &HeaderMap, as_: &str, g: &str, versions: &[&'static str]) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let (mut as_p, mut g_p, mut v_p) = ("", "", "");
        for p in parts {
            match p.split_once('=') {
                Some(("as", v)) => as_p = v,
                Some(("g", v)) => g_p = v,
                Some(("v", v)) => v_p = v,
                _ => {}
            }
        }
        if !as_p.is_empty() && as_p == as_ && g_p == g && matches!(media, "application/json" | "*/*") {
            if let Some(v) = versions.iter().find(|v| **v == v_p) {
                return Some(v);
            }
        } else if as_p.is_empty() && matches!(media, "application/json" | "*/*" | "application/*") {
            // Plain JSON comes first: the client prefers the plain form.
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn accept(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn kubectls_accept_headers() {
        let table = accept(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
        );
        assert_eq!(wants(&table, "Table", "meta.k8s.io", &["v1", "v1beta1"]), Some("v1"));
        let discovery = accept(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json",
        );
        assert_eq!(wants(&discovery, "APIGroupDiscoveryList", "apidiscovery.k8s.io", &["v2"]), Some("v2"));
        // kubectl 1.29 asks v2beta1 first.
        let old = accept(
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        );
        assert_eq!(
            wants(&old, "APIGroupDiscoveryList", "apidiscovery.k8s.io", &["v2", "v2beta1"]),
            Some("v2beta1")
        );
        assert_eq!(wants(&old, "APIGroupDiscoveryList", "apidiscovery.k8s.io", &["v2"]), Some("v2"));
        assert_eq!(wants(&accept("application/json, */*"), "Table", "meta.k8s.io", &["v1"]), None);
        assert_eq!(wants(&HeaderMap::new(), "Table", "meta.k8s.io", &["v1"]), None);
        let proto = accept("application/vnd.kubernetes.protobuf,application/json");
        assert_eq!(wants(&proto, "Table", "meta.k8s.io", &["v1"]), None);
    }
}
