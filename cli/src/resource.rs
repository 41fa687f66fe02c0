//! The names users type for resources, and the names kubectl prints for them.
//!
//! kubectl users type `svc`, `po`, `deploy`, `deployments.apps` or `Service` interchangeably, and
//! expect `deployment.apps/orders` back. This module is the one place that knows those spellings,
//! so every command resolves and prints kinds the same way.

use netlab_proto::apiserver::v1::Resource;

use crate::report::Problem;

/// Every resource the apiserver serves, in the order `api-resources` lists them: the built-in
/// kinds, then the fault kinds (custom resources come last in kubectl's list too).
pub const ALL: [Resource; 20] = [
    Resource::ConfigMaps,
    Resource::Events,
    Resource::Namespaces,
    Resource::Nodes,
    Resource::Pods,
    Resource::ServiceAccounts,
    Resource::Services,
    Resource::DaemonSets,
    Resource::Deployments,
    Resource::ReplicaSets,
    Resource::StatefulSets,
    Resource::EndpointSlices,
    Resource::NetworkPolicies,
    Resource::NetworkChaos,
    Resource::DnsChaos,
    Resource::PodChaos,
    Resource::ComponentChaos,
    Resource::RegistryChaos,
    Resource::UpstreamDnsChaos,
    Resource::ExhaustionChaos,
];

/// The `all` category (`netlab get all`): the members of kubectl's that netlab serves, in
/// kubectl's order. Like Chaos Mesh's CRDs (which declare no categories), the fault kinds are
/// not in it.
pub const CATEGORY_ALL: [Resource; 6] = [
    Resource::Pods,
    Resource::Services,
    Resource::DaemonSets,
    Resource::Deployments,
    Resource::ReplicaSets,
    Resource::StatefulSets,
];

/// kubectl's short names, as the real apiserver's discovery documents advertise them.
pub fn short_names(r: Resource) -> &'static [&'static str] {
    match r {
        Resource::ConfigMaps => &["cm"],
        Resource::Events => &["ev"],
        Resource::Namespaces => &["ns"],
        Resource::Nodes => &["no"],
        Resource::Pods => &["po"],
        Resource::ServiceAccounts => &["sa"],
        Resource::Services => &["svc"],
        Resource::Deployments => &["deploy"],
        Resource::ReplicaSets => &["rs"],
        Resource::StatefulSets => &["sts"],
        Resource::DaemonSets => &["ds"],
        Resource::NetworkPolicies => &["netpol"],
        // Chaos Mesh's CRDs have no short names.
        _ => &[],
    }
}

/// The lower-case singular name, e.g. `endpointslice`.
pub fn singular(r: Resource) -> String {
    r.kind().to_ascii_lowercase()
}

/// The singular name qualified by its group, as kubectl prints it in `deployment.apps/orders`
/// and `deployment.apps "orders" deleted`.
pub fn qualified(r: Resource) -> String {
    match r.group() {
        "" => singular(r),
        group => format!("{}.{group}", singular(r)),
    }
}

/// `KIND/NAME` as `-o name` and `apply` print it.
pub fn slash_name(r: Resource, name: &str) -> String {
    format!("{}/{name}", qualified(r))
}

/// Resolves what a user typed (`svc`, `Services`, `deployments.apps`, `deploy.v1.apps`) to a
/// resource, as kubectl's RESTMapper does.
pub fn resolve(typed: &str) -> Result<Resource, Problem> {
    let lower = typed.to_ascii_lowercase();
    let (base, qualifier) = match lower.split_once('.') {
        Some((base, rest)) => (base, Some(rest)),
        None => (lower.as_str(), None),
    };
    ALL.into_iter()
        .find(|r| {
            let names_match = base == r.plural() || base == singular(*r) || short_names(*r).contains(&base);
            let group_matches = match qualifier {
                None => true,
                // `deployments.apps`, `deployments.v1.apps`, `networkchaos.v1alpha1.chaos.netlab.io`.
                Some(q) => {
                    let group = q.strip_prefix("v1.").or_else(|| q.strip_prefix("v1alpha1.")).unwrap_or(q);
                    group == r.group() || (r.group().is_empty() && q == "v1")
                }
            };
            names_match && group_matches
        })
        .ok_or_else(|| Problem::client(format!("the server doesn't have a resource type \"{typed}\"")))
}

/// One resource and the names asked for in it; empty `names` means "all of them".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The resource to act on.
    pub resource: Resource,
    /// Object names, in the order given.
    pub names: Vec<String>,
}

/// Parses kubectl's positional resource arguments: `TYPE[,TYPE...] [NAME...]` or
/// `TYPE/NAME [TYPE/NAME...]`. Targets keep the order of first mention, as kubectl prints them.
pub fn parse_targets(args: &[String]) -> Result<Vec<Target>, Problem> {
    let Some(first) = args.first() else {
        return Ok(Vec::new());
    };
    if first.contains('/') {
        let mut targets: Vec<Target> = Vec::new();
        for arg in args {
            let Some((kind, name)) = arg.split_once('/') else {
                return Err(Problem::client(
                    "there is no need to specify a resource type as a separate argument when \
                     passing arguments in resource/name form (e.g. 'netlab get resource/<resource_name>' \
                     instead of 'netlab get resource resource/<resource_name>'",
                ));
            };
            if name.is_empty() {
                return Err(Problem::client(
                    "arguments in resource/name form must have a single resource and name",
                ));
            }
            let resource = resolve(kind)?;
            match targets.iter_mut().find(|t| t.resource == resource) {
                Some(t) => t.names.push(name.to_string()),
                None => targets.push(Target { resource, names: vec![name.to_string()] }),
            }
        }
        return Ok(targets);
    }
    if args[1..].iter().any(|a| a.contains('/')) {
        return Err(Problem::client(
            "there is no need to specify a resource type as a separate argument when passing \
             arguments in resource/name form (e.g. 'netlab get resource/<resource_name>' instead \
             of 'netlab get resource resource/<resource_name>'",
        ));
    }
    let mut targets: Vec<Target> = Vec::new();
    for kind in first.split(',').filter(|k| !k.is_empty()) {
        let resources =
            if kind.eq_ignore_ascii_case("all") { CATEGORY_ALL.to_vec() } else { vec![resolve(kind)?] };
        for resource in resources {
            if !targets.iter().any(|t| t.resource == resource) {
                targets.push(Target { resource, names: args[1..].to_vec() });
            }
        }
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_like_kubectl() {
        let cases = [
            ("svc", Resource::Services),
            ("service", Resource::Services),
            ("services", Resource::Services),
            ("Service", Resource::Services),
            ("po", Resource::Pods),
            ("pod", Resource::Pods),
            ("pods", Resource::Pods),
            ("deploy", Resource::Deployments),
            ("deployment", Resource::Deployments),
            ("deployments", Resource::Deployments),
            ("deployment.apps", Resource::Deployments),
            ("deployments.apps", Resource::Deployments),
            ("deployments.v1.apps", Resource::Deployments),
            ("rs", Resource::ReplicaSets),
            ("replicaset", Resource::ReplicaSets),
            ("sts", Resource::StatefulSets),
            ("statefulsets", Resource::StatefulSets),
            ("ds", Resource::DaemonSets),
            ("daemonset", Resource::DaemonSets),
            ("daemonsets.apps", Resource::DaemonSets),
            ("netpol", Resource::NetworkPolicies),
            ("networkpolicy", Resource::NetworkPolicies),
            ("networkpolicies.networking.k8s.io", Resource::NetworkPolicies),
            ("endpointslice", Resource::EndpointSlices),
            ("endpointslices", Resource::EndpointSlices),
            ("endpointslices.discovery.k8s.io", Resource::EndpointSlices),
            ("ns", Resource::Namespaces),
            ("namespace", Resource::Namespaces),
            ("no", Resource::Nodes),
            ("nodes", Resource::Nodes),
            ("cm", Resource::ConfigMaps),
            ("configmap", Resource::ConfigMaps),
            ("sa", Resource::ServiceAccounts),
            ("serviceaccounts", Resource::ServiceAccounts),
            ("ev", Resource::Events),
            ("event", Resource::Events),
            ("events", Resource::Events),
            ("networkchaos", Resource::NetworkChaos),
            ("NetworkChaos", Resource::NetworkChaos),
            ("networkchaos.chaos.netlab.io", Resource::NetworkChaos),
            ("networkchaos.v1alpha1.chaos.netlab.io", Resource::NetworkChaos),
            ("dnschaos", Resource::DnsChaos),
            ("DNSChaos", Resource::DnsChaos),
            ("podchaos", Resource::PodChaos),
            ("componentchaos", Resource::ComponentChaos),
            ("registrychaos", Resource::RegistryChaos),
            ("upstreamdnschaos", Resource::UpstreamDnsChaos),
            ("UpstreamDNSChaos", Resource::UpstreamDnsChaos),
            ("exhaustionchaos", Resource::ExhaustionChaos),
        ];
        for (typed, want) in cases {
            assert_eq!(resolve(typed).unwrap(), want, "{typed}");
        }
    }

    #[test]
    fn unknown_types_are_worded_like_kubectl() {
        let err = resolve("foo").unwrap_err();
        assert_eq!(err.to_string(), "error: the server doesn't have a resource type \"foo\"");
        // A real kind but the wrong group is unknown too.
        assert!(resolve("deployments.extensions").is_err());
        assert!(resolve("services.apps").is_err());
    }

    #[test]
    fn printed_names() {
        assert_eq!(slash_name(Resource::Deployments, "orders"), "deployment.apps/orders");
        assert_eq!(slash_name(Resource::Services, "orders"), "service/orders");
        assert_eq!(qualified(Resource::EndpointSlices), "endpointslice.discovery.k8s.io");
        assert_eq!(qualified(Resource::NetworkPolicies), "networkpolicy.networking.k8s.io");
        assert_eq!(Resource::Deployments.group_resource(), "deployments.apps");
        assert_eq!(slash_name(Resource::NetworkChaos, "x"), "networkchaos.chaos.netlab.io/x");
        assert_eq!(Resource::DnsChaos.group_resource(), "dnschaos.chaos.netlab.io");
    }

    #[test]
    fn faults_are_not_in_all() {
        let all = parse_targets(&["all".to_string()]).unwrap();
        assert!(all.iter().all(|t| !t.resource.is_chaos()));
        assert!(resolve("networkchaos.apps").is_err());
    }

    #[test]
    fn positional_arguments() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_targets(&args(&["svc", "a", "b"])).unwrap(),
            vec![Target { resource: Resource::Services, names: args(&["a", "b"]) }]
        );
        assert_eq!(
            parse_targets(&args(&["svc/a", "deploy/b", "svc/c"])).unwrap(),
            vec![
                Target { resource: Resource::Services, names: args(&["a", "c"]) },
                Target { resource: Resource::Deployments, names: args(&["b"]) },
            ]
        );
        assert_eq!(
            parse_targets(&args(&["svc,deploy"])).unwrap(),
            vec![
                Target { resource: Resource::Services, names: vec![] },
                Target { resource: Resource::Deployments, names: vec![] },
            ]
        );
        assert_eq!(
            parse_targets(&args(&["all"])).unwrap().iter().map(|t| t.resource).collect::<Vec<_>>(),
            CATEGORY_ALL.to_vec()
        );
        assert!(parse_targets(&args(&["svc", "deploy/b"])).is_err());
        assert!(parse_targets(&args(&["bogus/x"])).is_err());
    }
}
