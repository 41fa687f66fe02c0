//! Every message a fault can be refused with, in full: the CRD schema's (kube-openapi's words),
//! the webhook's (Chaos Mesh's words, at JSON paths) and netlab's own additions.

use netlab_proto::apiserver::v1::Resource;
use serde_json::{Value, json};

use crate::{
    defaults::set_defaults,
    validation::{ValidationOptions, invalid_message, validate, validate_update},
};

const OPTS: ValidationOptions = ValidationOptions { allow_loopback_endpoints: false };

const SUPPORTED_NETWORK_ACTIONS: &str = "supported values: \"netem\", \"delay\", \"loss\", \"duplicate\", \"corrupt\", \"partition\", \"bandwidth\"";
const SUPPORTED_MODES: &str =
    "supported values: \"one\", \"all\", \"fixed\", \"fixed-percent\", \"random-max-percent\"";

fn errors(resource: Resource, mut obj: Value) -> Vec<String> {
    set_defaults(resource, &mut obj);
    validate(resource, &obj, &OPTS).iter().map(ToString::to_string).collect()
}

fn object(kind: &str, spec: Value) -> Value {
    json!({"apiVersion": "chaos.netlab.io/v1alpha1", "kind": kind,
           "metadata": {"name": "f", "namespace": "default"}, "spec": spec})
}

/// A valid NetworkChaos spec with `patch` merged over it.
fn network(patch: Value) -> Value {
    let mut spec = json!({"action": "delay", "mode": "all",
        "selector": {"labelSelectors": {"app": "client"}},
        "delay": {"latency": "200ms", "jitter": "50ms", "correlation": "25"}});
    merge(&mut spec, patch);
    object("NetworkChaos", spec)
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(&k);
                } else {
                    merge(b.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p,
    }
}

fn net(patch: Value) -> Vec<String> {
    errors(Resource::NetworkChaos, network(patch))
}

#[test]
fn chaos_mesh_manifests_are_valid() {
    assert_eq!(net(json!({})), Vec::<String>::new());
    let partition = json!({"action": "partition", "direction": "both", "delay": null,
        "target": {"mode": "all", "selector": {"labelSelectors": {"app": "orders"}}}});
    assert_eq!(net(partition), Vec::<String>::new());
    let netem = json!({"action": "netem", "loss": {"loss": "30", "correlation": "25"},
        "duplicate": {"duplicate": "1.5"}, "corrupt": {"corrupt": "0"}, "duration": "1m30s"});
    assert_eq!(net(netem), Vec::<String>::new());
    let bw = json!({"action": "bandwidth", "delay": null, "bandwidth": {"rate": "1mbps", "limit": 20971520, "buffer": 10000}});
    assert_eq!(net(bw), Vec::<String>::new());
    let fixed = json!({"mode": "fixed-percent", "value": "50", "externalTargets": ["10.0.0.0/8"]});
    assert_eq!(net(fixed), Vec::<String>::new());
}

#[test]
fn enums_are_the_crd_schemas() {
    assert_eq!(
        net(json!({"action": "drop"})),
        [format!("spec.action: Unsupported value: \"drop\": {SUPPORTED_NETWORK_ACTIONS}")]
    );
    assert_eq!(
        net(json!({"mode": "some"})),
        [format!("spec.mode: Unsupported value: \"some\": {SUPPORTED_MODES}")]
    );
    assert_eq!(
        net(json!({"direction": "up"})),
        ["spec.direction: Unsupported value: \"up\": supported values: \"to\", \"from\", \"both\""]
    );
    assert_eq!(
        net(json!({"target": {"mode": "many", "selector": {}}})),
        [format!("spec.target.mode: Unsupported value: \"many\": {SUPPORTED_MODES}")]
    );
}

#[test]
fn missing_action_and_mode_arrive_empty_as_after_chaos_meshs_mutating_webhook() {
    // chaos-mesh/chaos-mesh#2816: "spec.mode: Unsupported value: \"\"" for a manifest without mode.
    assert_eq!(
        net(json!({"action": null, "mode": null})),
        [
            format!("spec.action: Unsupported value: \"\": {SUPPORTED_NETWORK_ACTIONS}"),
            format!("spec.mode: Unsupported value: \"\": {SUPPORTED_MODES}"),
        ]
    );
    let no_spec = json!({"metadata": {"name": "f", "namespace": "default"}});
    assert_eq!(
        errors(Resource::PodChaos, no_spec),
        [
            format!("spec.mode: Unsupported value: \"\": {SUPPORTED_MODES}"),
            "spec.action: Unsupported value: \"\": supported values: \"pod-kill\", \"pod-failure\", \"container-kill\"".to_string(),
        ]
    );
    assert_eq!(
        net(json!({"delay": {"latency": null}})),
        [
            "spec.delay.latency: Invalid value: \"\": spec.delay.latency in body should match '^[0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h)$'"
        ]
    );
    assert_eq!(
        net(json!({"action": "bandwidth", "delay": null, "bandwidth": {"rate": "1mbps"}})),
        [
            "spec.bandwidth.limit: Invalid value: 0: spec.bandwidth.limit in body should be greater than or equal to 1",
            "spec.bandwidth.buffer: Invalid value: 0: spec.bandwidth.buffer in body should be greater than or equal to 1",
        ]
    );
}

#[test]
fn types_and_patterns_are_the_crd_schemas() {
    assert_eq!(
        net(json!({"duration": 60})),
        [
            "spec.duration: Invalid value: \"integer\": spec.duration in body must be of type string: \"integer\""
        ]
    );
    assert_eq!(
        net(json!({"selector": {"namespaces": "default"}})),
        [
            "spec.selector.namespaces: Invalid value: \"string\": spec.selector.namespaces in body must be of type array: \"string\""
        ]
    );
    assert_eq!(
        net(json!({"selector": {"labelSelectors": {"app": 1}}})),
        [
            "spec.selector.labelSelectors.app: Invalid value: \"integer\": spec.selector.labelSelectors.app in body must be of type string: \"integer\""
        ]
    );
    assert_eq!(
        net(json!({"delay": {"latency": "200", "jitter": "5 ms"}})),
        [
            "spec.delay.latency: Invalid value: \"200\": spec.delay.latency in body should match '^[0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h)$'",
            "spec.delay.jitter: Invalid value: \"5 ms\": spec.delay.jitter in body should match '^[0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h)$'",
        ]
    );
    assert_eq!(
        errors(
            Resource::PodChaos,
            object("PodChaos", json!({"action": "pod-kill", "mode": "one", "gracePeriod": -1}))
        ),
        [
            "spec.gracePeriod: Invalid value: -1: spec.gracePeriod in body should be greater than or equal to 0"
        ]
    );
}

#[test]
fn schema_errors_come_alone_as_the_webhook_never_sees_the_object() {
    assert_eq!(
        net(json!({"action": "drop", "duration": "abc"})),
        [format!("spec.action: Unsupported value: \"drop\": {SUPPORTED_NETWORK_ACTIONS}")]
    );
}

#[test]
fn value_per_mode_is_the_webhooks() {
    assert_eq!(
        net(json!({"mode": "fixed", "value": "0"})),
        ["spec.value: Invalid value: \"0\": value must be greater than 0 with mode:fixed"]
    );
    assert_eq!(
        net(json!({"mode": "fixed"})),
        [
            "spec.value: Invalid value: \"\": parse value field error:strconv.Atoi: parsing \"\": invalid syntax"
        ]
    );
    assert_eq!(
        net(json!({"mode": "fixed", "value": "two"})),
        [
            "spec.value: Invalid value: \"two\": parse value field error:strconv.Atoi: parsing \"two\": invalid syntax"
        ]
    );
    assert_eq!(
        net(json!({"mode": "fixed-percent", "value": "150"})),
        [
            "spec.value: Invalid value: \"150\": value of 150 is invalid, Must be (0,100] with mode:fixed-percent"
        ]
    );
    assert_eq!(
        net(json!({"mode": "random-max-percent", "value": "0"})),
        [
            "spec.value: Invalid value: \"0\": value of 0 is invalid, Must be (0,100] with mode:random-max-percent"
        ]
    );
    assert_eq!(net(json!({"mode": "one", "value": "whatever"})), Vec::<String>::new(), "not checked for one");
    assert_eq!(
        net(json!({"direction": "both", "target": {"mode": "fixed", "value": "-1", "selector": {}}})),
        ["spec.target.value: Invalid value: \"-1\": value must be greater than 0 with mode:fixed"]
    );
}

#[test]
fn durations_are_go_durations() {
    assert_eq!(
        net(json!({"duration": "abc"})),
        ["spec.duration: Invalid value: \"abc\": parse duration field error: time: invalid duration \"abc\""]
    );
    assert_eq!(
        net(json!({"duration": "60"})),
        [
            "spec.duration: Invalid value: \"60\": parse duration field error: time: missing unit in duration \"60\""
        ]
    );
    assert_eq!(
        net(json!({"duration": "1d"})),
        [
            "spec.duration: Invalid value: \"1d\": parse duration field error: time: unknown unit \"d\" in duration \"1d\""
        ]
    );
}

#[test]
fn percentages_are_floats_between_0_and_100() {
    let loss = |loss: &str| net(json!({"action": "loss", "delay": null, "loss": {"loss": loss}}));
    assert_eq!(loss("30"), Vec::<String>::new());
    assert_eq!(
        loss("30%"),
        [
            "spec.loss.loss: Invalid value: \"30%\": parse correlation field error:strconv.ParseFloat: parsing \"30%\": invalid syntax"
        ]
    );
    assert_eq!(loss("150"), ["spec.loss.loss: Invalid value: \"150\": percent field should be in 0-100"]);
    assert_eq!(loss("-1"), ["spec.loss.loss: Invalid value: \"-1\": percent field should be in 0-100"]);
    assert_eq!(loss(""), ["spec.loss.loss: Required value"]);
    assert_eq!(
        net(json!({"delay": {"correlation": "x"}})),
        [
            "spec.delay.correlation: Invalid value: \"x\": parse correlation field error:strconv.ParseFloat: parsing \"x\": invalid syntax"
        ]
    );
    assert_eq!(
        net(json!({"action": "netem", "delay": null, "corrupt": {"corrupt": "5", "correlation": "101"}})),
        ["spec.corrupt.correlation: Invalid value: \"101\": percent field should be in 0-100"]
    );
}

#[test]
fn actions_need_their_parameters() {
    assert_eq!(net(json!({"delay": null})), ["spec.delay: Required value: required for the delay action"]);
    assert_eq!(net(json!({"action": "loss"})), ["spec.loss: Required value: required for the loss action"]);
    assert_eq!(
        net(json!({"action": "netem", "delay": null})),
        ["spec: Required value: the netem action needs at least one of delay, loss, duplicate or corrupt"]
    );
    assert_eq!(
        net(
            json!({"action": "bandwidth", "delay": null, "bandwidth": {"rate": "fast", "limit": 1, "buffer": 1}})
        ),
        ["spec.bandwidth.rate: Invalid value: \"fast\": parse rate field error:invalid unit"]
    );
    assert_eq!(
        net(
            json!({"action": "bandwidth", "delay": null, "bandwidth": {"rate": "1.5mbps", "limit": 1, "buffer": 1}})
        ),
        [
            "spec.bandwidth.rate: Invalid value: \"1.5mbps\": parse rate field error:strconv.ParseUint: parsing \"1.5\": invalid syntax"
        ]
    );
}

#[test]
fn direction_needs_a_target_except_for_partition() {
    assert_eq!(
        net(json!({"direction": "from"})),
        [
            "spec.direction: Invalid value: \"from\": `from` and `both` direction cannot be used when targets is empty in netem action"
        ]
    );
    assert_eq!(
        net(
            json!({"direction": "both", "externalTargets": ["1.1.1.1"], "target": {"mode": "all", "selector": {}}})
        ),
        [
            "spec.direction: Invalid value: \"both\": external targets cannot be used with `from` and `both` direction in netem action yet"
        ]
    );
    assert_eq!(net(json!({"action": "partition", "delay": null, "direction": "from"})), Vec::<String>::new());
}

#[test]
fn dns_chaos() {
    let dns = |patch: Value| {
        let mut spec = json!({"action": "error", "mode": "all", "selector": {}, "patterns": ["orders.*"]});
        merge(&mut spec, patch);
        errors(Resource::DnsChaos, object("DNSChaos", spec))
    };
    assert_eq!(dns(json!({})), Vec::<String>::new());
    assert_eq!(dns(json!({"rcode": "NXDOMAIN", "action": "error"})), Vec::<String>::new());
    assert_eq!(
        dns(json!({"action": "lie"})),
        [
            "spec.action: Unsupported value: \"lie\": supported values: \"error\", \"random\", \"timeout\", \"delay\""
        ]
    );
    assert_eq!(
        dns(json!({"patterns": ["*.example.com", "orders.*", "orders.*"]})),
        [
            "spec.patterns[0]: Invalid value: \"*.example.com\": pattern *.example.com not valid: '*' may only be the last character",
            "spec.patterns[2]: Duplicate value: \"orders.*\"",
        ]
    );
    assert_eq!(
        dns(json!({"rcode": "NOERROR"})),
        [
            "spec.rcode: Unsupported value: \"NOERROR\": supported values: \"SERVFAIL\", \"NXDOMAIN\", \"REFUSED\""
        ]
    );
    assert_eq!(
        dns(json!({"action": "delay"})),
        ["spec.delay: Required value: required for the delay action"]
    );
    assert_eq!(
        dns(json!({"action": "delay", "delay": "soon"})),
        ["spec.delay: Invalid value: \"soon\": parse duration field error: time: invalid duration \"soon\""]
    );
}

#[test]
fn pod_chaos() {
    let pod = |spec: Value| errors(Resource::PodChaos, object("PodChaos", spec));
    assert_eq!(pod(json!({"action": "pod-kill", "mode": "one", "gracePeriod": 0})), Vec::<String>::new());
    assert_eq!(
        pod(json!({"action": "container-kill", "mode": "one"})),
        [
            "spec.containerNames: Invalid value: null: the name of container is required on container-kill action: invalid value"
        ]
    );
    assert_eq!(
        pod(json!({"action": "container-kill", "mode": "one", "containerNames": []})),
        [
            "spec.containerNames: Invalid value: []: the name of container is required on container-kill action: invalid value"
        ]
    );
    assert_eq!(
        pod(json!({"action": "container-kill", "mode": "one", "containerNames": ["app"]})),
        Vec::<String>::new()
    );
}

#[test]
fn the_labs_kinds() {
    let component = |spec: Value| errors(Resource::ComponentChaos, object("ComponentChaos", spec));
    assert_eq!(
        component(json!({"action": "stop", "component": "kube-proxy", "nodes": ["node-1"]})),
        Vec::<String>::new()
    );
    assert_eq!(
        component(json!({"action": "freeze", "component": "etcd"})),
        [
            "spec.action: Unsupported value: \"freeze\": supported values: \"stop\", \"pause\", \"kill\"",
            "spec.component: Unsupported value: \"etcd\": supported values: \"apiserver\", \"controller-manager\", \"scheduler\", \"dns\", \"cloud\", \"kube-proxy\", \"kubelet\"",
        ]
    );
    assert_eq!(component(json!({})), ["spec.action: Required value", "spec.component: Required value"]);
    assert_eq!(
        component(json!({"action": "stop", "component": "dns", "nodes": ["node-1"]})),
        [
            "spec.nodes: Forbidden: may only be set for a component that runs on every node (kube-proxy, kubelet), not dns"
        ]
    );
    let no_spec = json!({"metadata": {"name": "f", "namespace": "default"}});
    assert_eq!(errors(Resource::ComponentChaos, no_spec), ["spec: Required value"]);

    let registry = |spec: Value| errors(Resource::RegistryChaos, object("RegistryChaos", spec));
    assert_eq!(
        registry(json!({"action": "error", "statusCode": 429, "repositories": ["library/nginx*"]})),
        Vec::<String>::new()
    );
    assert_eq!(
        registry(json!({"action": "error", "statusCode": 418})),
        [
            "spec.statusCode: Unsupported value: 418: supported values: \"401\", \"403\", \"404\", \"429\", \"500\", \"502\", \"503\""
        ]
    );
    assert_eq!(
        registry(json!({"action": "error"})),
        ["spec.statusCode: Required value: required for the error action"]
    );
    assert_eq!(
        registry(json!({"action": "error", "statusCode": "429"})),
        [
            "spec.statusCode: Invalid value: \"string\": spec.statusCode in body must be of type integer: \"string\""
        ]
    );

    let upstream = |spec: Value| errors(Resource::UpstreamDnsChaos, object("UpstreamDNSChaos", spec));
    assert_eq!(upstream(json!({"action": "servfail", "patterns": ["example.*"]})), Vec::<String>::new());
    assert_eq!(
        upstream(json!({"action": "delay"})),
        ["spec.delay: Required value: required for the delay action"]
    );

    let exhaustion = |spec: Value| errors(Resource::ExhaustionChaos, object("ExhaustionChaos", spec));
    assert_eq!(exhaustion(json!({"action": "service-cidr", "duration": "30s"})), Vec::<String>::new());
    assert_eq!(
        exhaustion(json!({"action": "service-cidr", "nodes": ["node-1"]})),
        [
            "spec.nodes: Forbidden: may not be set for service-cidr: the Service CIDR is the cluster's, not a node's"
        ]
    );
    assert_eq!(
        exhaustion(json!({"action": "ram"})),
        [
            "spec.action: Unsupported value: \"ram\": supported values: \"pod-cidr\", \"service-cidr\", \"conntrack\""
        ]
    );
}

#[test]
fn names_are_subdomains() {
    let mut obj = network(json!({}));
    obj["metadata"]["name"] = json!("Bad_Name");
    let errs = errors(Resource::NetworkChaos, obj);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"),
        "{errs:?}"
    );
}

#[test]
fn the_spec_is_immutable_but_metadata_is_not() {
    let mut old = network(json!({}));
    set_defaults(Resource::NetworkChaos, &mut old);
    let update = |new: Value| {
        let mut new = new;
        set_defaults(Resource::NetworkChaos, &mut new);
        validate_update(Resource::NetworkChaos, &old, &new, &OPTS)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    let mut paused = network(json!({}));
    paused["metadata"]["annotations"] = json!({"experiment.chaos-mesh.org/pause": "true"});
    assert_eq!(update(paused), Vec::<String>::new());
    assert_eq!(
        update(network(json!({"delay": {"latency": "300ms"}}))),
        ["spec: Forbidden: Cannot update chaos spec"]
    );
    let errs = validate_update(
        Resource::NetworkChaos,
        &old,
        &{
            let mut n = network(json!({"duration": "1m"}));
            set_defaults(Resource::NetworkChaos, &mut n);
            n
        },
        &OPTS,
    );
    assert_eq!(
        invalid_message("NetworkChaos", "f", &errs),
        "The NetworkChaos \"f\" is invalid: spec: Forbidden: Cannot update chaos spec"
    );
}
