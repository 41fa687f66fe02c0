//! What a request path under `/api` or `/apis` names: a discovery document, or a resource's
//! collection or object (and subresource), in the shapes kube-apiserver serves:
//!
//! ```text
//! /api/v1/namespaces/{ns}/{plural}[/{name}[/{subresource}]]     namespaced, core group
//! /api/v1/{plural}[/{name}[/{subresource}]]                     cluster-scoped, or every namespace
//! /apis/{group}/{version}/...                                   the same for a named group
//! ```

use netlab_proto::apiserver::v1::Resource;

use super::status::Status;

/// A discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Doc {
    /// `/api`: the core group's versions.
    CoreVersions,
    /// `/apis`: the named groups.
    Groups,
    /// `/apis/{group}`: one group.
    Group(&'static str),
    /// `/api/v1`, `/apis/{group}/{version}`: the resources of a group version.
    Resources(&'static str),
}

/// A resource's collection or object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectTarget {
    /// The resource.
    pub resource: Resource,
    /// The namespace in the path (`/namespaces/{ns}/...`); None for cluster-scoped paths and
    /// lists across every namespace.
    pub namespace: Option<String>,
    /// The object's name; None for the collection.
    pub name: Option<String>,
    /// The subresource (`status`, `binding`).
    pub subresource: Option<String>,
}

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A discovery document.
    Discovery(Doc),
    /// A collection or an object.
    Object(ObjectTarget),
}

/// The group versions served, as `group/version` (`v1` for the core group).
pub fn group_versions() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in netlab_proto::ALL_RESOURCES {
        if !out.contains(&r.api_version()) {
            out.push(r.api_version());
        }
    }
    out
}

/// Parses a request path; unknown paths are upstream's 404.
pub fn parse(path: &str) -> Result<Target, Status> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (api_version, rest) = match segments.as_slice() {
        ["api"] => return Ok(Target::Discovery(Doc::CoreVersions)),
        ["apis"] => return Ok(Target::Discovery(Doc::Groups)),
        ["apis", group] => {
            let gv =
                group_versions().into_iter().find(|gv| gv.split_once('/').is_some_and(|(g, _)| g == *group));
            return match gv {
                Some(gv) => Ok(Target::Discovery(Doc::Group(gv.split_once('/').map_or(gv, |(g, _)| g)))),
                None => Err(Status::not_found_page()),
            };
        }
        ["api", version, rest @ ..] => (version.to_string(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return Err(Status::not_found_page()),
    };
    let Some(gv) = group_versions().into_iter().find(|gv| *gv == api_version) else {
        return Err(Status::not_found_page());
    };
    if rest.is_empty() {
        return Ok(Target::Discovery(Doc::Resources(gv)));
    }
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        _ => (None, rest),
    };
    let (plural, name, subresource) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return Err(Status::not_found_page()),
    };
    let resource = netlab_proto::ALL_RESOURCES
        .into_iter()
        .find(|r| r.api_version() == gv && r.plural() == plural)
        .ok_or_else(Status::not_found_page)?;
    // A namespace in the path of a cluster-scoped resource, or an object of a namespaced
    // resource named without its namespace, is no path upstream serves.
    if (namespace.is_some() && !resource.namespaced())
        || (namespace.is_none() && resource.namespaced() && name.is_some())
        || name.as_deref() == Some("")
    {
        return Err(Status::not_found_page());
    }
    Ok(Target::Object(ObjectTarget { resource, namespace, name, subresource }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(path: &str) -> ObjectTarget {
        match parse(path) {
            Ok(Target::Object(t)) => t,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths() {
        assert_eq!(parse("/api").unwrap(), Target::Discovery(Doc::CoreVersions));
        assert_eq!(parse("/apis/").unwrap(), Target::Discovery(Doc::Groups));
        assert_eq!(parse("/apis/apps").unwrap(), Target::Discovery(Doc::Group("apps")));
        assert_eq!(parse("/api/v1").unwrap(), Target::Discovery(Doc::Resources("v1")));
        assert_eq!(
            parse("/apis/chaos.netlab.io/v1alpha1").unwrap(),
            Target::Discovery(Doc::Resources("chaos.netlab.io/v1alpha1"))
        );
        let t = object("/api/v1/namespaces/demo/services/web");
        assert_eq!(
            (t.resource, t.namespace.as_deref(), t.name.as_deref()),
            (Resource::Services, Some("demo"), Some("web"))
        );
        let t = object("/api/v1/pods");
        assert_eq!((t.resource, t.namespace, t.name), (Resource::Pods, None, None));
        // `namespaces/x` is the Namespace x, not a namespace prefix.
        let t = object("/api/v1/namespaces/demo");
        assert_eq!((t.resource, t.name.as_deref()), (Resource::Namespaces, Some("demo")));
        let t = object("/api/v1/namespaces/demo/pods/web-1/binding");
        assert_eq!(t.subresource.as_deref(), Some("binding"));
        let t = object("/apis/apps/v1/namespaces/demo/deployments");
        assert_eq!((t.resource, t.namespace.as_deref()), (Resource::Deployments, Some("demo")));
    }

    #[test]
    fn unknown_paths_are_404() {
        for p in [
            "/api/v2",
            "/api/v1/foos",
            "/apis/apps/v1/services",
            "/apis/batch/v1/jobs",
            "/apis/nope",
            "/api/v1/pods/web",
            "/api/v1/namespaces/demo/nodes",
            "/api/v1/namespaces/demo/pods/a/b/c",
        ] {
            assert_eq!(parse(p).unwrap_err().code, 404, "{p}");
        }
    }
}
