//! Every message is compared in full with what kube-apiserver v1.33 prints for the same object.

use serde_json::{Value, json};

use super::{format::TOTAL_ANNOTATION_SIZE_LIMIT, *};
use crate::defaults::set_defaults;

const OPTS: ValidationOptions = ValidationOptions { allow_loopback_endpoints: false };

/// Defaults `obj` as the apiserver does, then validates it; returns the messages.
fn errors(resource: Resource, mut obj: Value) -> Vec<String> {
    set_defaults(resource, &mut obj);
    validate(resource, &obj, &OPTS).iter().map(ToString::to_string).collect()
}

fn update_errors(resource: Resource, mut old: Value, mut new: Value) -> Vec<String> {
    set_defaults(resource, &mut old);
    set_defaults(resource, &mut new);
    validate_update(resource, &old, &new, &OPTS).iter().map(ToString::to_string).collect()
}

fn service(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

fn deployment(selector: Value, labels: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
           "spec": {"selector": selector, "template": {"metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
}

const DNS1035: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const RFC1123_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const RFC1123_SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

// --- rendering ---

#[test]
fn field_error_rendering_and_reasons() {
    let cases = [
        (
            FieldError::required("spec.ports[0].port", ""),
            "spec.ports[0].port: Required value",
            "FieldValueRequired",
        ),
        (
            FieldError::invalid("spec.ports[0].port", 70000, "must be between 1 and 65535, inclusive"),
            "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "FieldValueInvalid",
        ),
        (
            FieldError::not_supported(
                "spec.type",
                "Foo",
                &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
            ),
            "spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
            "FieldValueNotSupported",
        ),
        (
            FieldError::duplicate("spec.ports[1].name", "http"),
            "spec.ports[1].name: Duplicate value: \"http\"",
            "FieldValueDuplicate",
        ),
        (FieldError::forbidden("spec", "nope"), "spec: Forbidden: nope", "FieldValueForbidden"),
        (
            FieldError::too_long("metadata.annotations", 262144),
            "metadata.annotations: Too long: may not be more than 262144 bytes",
            "FieldValueTooLong",
        ),
        (
            FieldError::too_many("endpoints[0].addresses", 101, 100),
            "endpoints[0].addresses: Too many: 101: must have at most 100 items",
            "FieldValueTooMany",
        ),
        (FieldError::not_found("spec.x", "data"), "spec.x: Not found: \"data\"", "FieldValueNotFound"),
        (
            FieldError::invalid("spec.clusterIPs", json!(["10.96.0.10"]), "x"),
            "spec.clusterIPs: Invalid value: [\"10.96.0.10\"]: x",
            "FieldValueInvalid",
        ),
        (FieldError::invalid("a", Value::Null, "x"), "a: Invalid value: null: x", "FieldValueInvalid"),
        (
            FieldError::invalid("a", "tab\there \"q\"", "x"),
            "a: Invalid value: \"tab\\there \\\"q\\\"\": x",
            "FieldValueInvalid",
        ),
        (
            FieldError::invalid("a", json!({"k": "<b>"}), "x"),
            "a: Invalid value: {\"k\":\"\\u003cb\\u003e\"}: x",
            "FieldValueInvalid",
        ),
    ];
    for (err, msg, reason) in cases {
        assert_eq!(err.to_string(), msg);
        assert_eq!(err.reason(), reason);
    }
    let ns = FieldError::not_supported("x", "y", &["A", "B"]);
    assert_eq!(ns.supported, vec!["A".to_string(), "B".to_string()]);
    assert_eq!(ns.body(), "Unsupported value: \"y\": supported values: \"A\", \"B\"");
}

#[test]
fn invalid_messages() {
    let one = [FieldError::required("spec.ports", "")];
    assert_eq!(
        invalid_message("Service", "orders", &one),
        "The Service \"orders\" is invalid: spec.ports: Required value"
    );
    let two = [
        FieldError::required("spec.selector", ""),
        FieldError::required("spec.selector", ""),
        FieldError::invalid("spec.replicas", -1, "must be greater than or equal to 0"),
    ];
    assert_eq!(
        invalid_message("Deployment", "web", &two),
        "The Deployment \"web\" is invalid: \n* spec.selector: Required value\n* spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
    assert_eq!(invalid_message("Pod", "x", &[]), "The Pod \"x\" is invalid");
    assert_eq!(
        status_message(Resource::Deployments, "web", &two),
        "Deployment.apps \"web\" is invalid: [spec.selector: Required value, spec.replicas: Invalid value: -1: must be greater than or equal to 0]"
    );
    assert_eq!(
        status_message(Resource::Services, "orders", &one),
        "Service \"orders\" is invalid: spec.ports: Required value"
    );
}

// --- metadata ---

#[test]
fn service_name_must_be_dns1035() {
    let errs = errors(Resource::Services, service("Orders", json!({"ports": [{"port": 80}]})));
    assert_eq!(errs, vec![format!("metadata.name: Invalid value: \"Orders\": {DNS1035}")]);
    let mut obj = service("Orders", json!({"ports": [{"port": 80}]}));
    set_defaults(Resource::Services, &mut obj);
    assert_eq!(
        invalid_message("Service", "Orders", &validate(Resource::Services, &obj, &OPTS)),
        format!("The Service \"Orders\" is invalid: metadata.name: Invalid value: \"Orders\": {DNS1035}")
    );
    let long = "a".repeat(64);
    assert_eq!(
        errors(Resource::Services, service(&long, json!({"ports": [{"port": 80}]}))),
        vec![format!("metadata.name: Invalid value: \"{long}\": must be no more than 63 characters")]
    );
}

#[test]
fn name_required_unless_generate_name() {
    let obj = json!({"metadata": {"namespace": "default"}, "data": {}});
    assert_eq!(
        errors(Resource::ConfigMaps, obj),
        vec!["metadata.name: Required value: name or generateName is required"]
    );
    let obj = json!({"metadata": {"namespace": "default", "generateName": "web-"}});
    assert!(errors(Resource::ConfigMaps, obj).is_empty());
    let obj = json!({"metadata": {"namespace": "default", "generateName": "Web-"}});
    assert_eq!(
        errors(Resource::ConfigMaps, obj),
        vec![format!("metadata.generateName: Invalid value: \"Web-\": {RFC1123_SUBDOMAIN}")]
    );
}

#[test]
fn namespace_name_must_be_rfc1123_label() {
    let errs = errors(Resource::Namespaces, json!({"metadata": {"name": "My_NS"}}));
    assert_eq!(errs, vec![format!("metadata.name: Invalid value: \"My_NS\": {RFC1123_LABEL}")]);
    assert_eq!(
        errors(Resource::Namespaces, json!({"metadata": {"name": "a.b"}})),
        vec!["metadata.name: Invalid value: \"a.b\": must not contain dots"]
    );
    assert!(errors(Resource::Namespaces, json!({"metadata": {"name": "shop"}})).is_empty());
}

#[test]
fn pod_and_node_names_are_subdomains() {
    let mut p = pod(json!({"containers": [{"name": "web", "image": "nginx"}]}));
    p["metadata"]["name"] = json!("web.v1");
    assert!(errors(Resource::Pods, p.clone()).is_empty());
    p["metadata"]["name"] = json!("Web");
    assert_eq!(
        errors(Resource::Pods, p),
        vec![format!("metadata.name: Invalid value: \"Web\": {RFC1123_SUBDOMAIN}")]
    );
    assert!(errors(Resource::Nodes, json!({"metadata": {"name": "node-1.lab"}})).is_empty());
}

#[test]
fn namespaced_objects_need_a_namespace() {
    let errs = errors(Resource::ServiceAccounts, json!({"metadata": {"name": "sa"}}));
    assert_eq!(errs, vec!["metadata.namespace: Required value"]);
}

#[test]
fn label_keys_and_values() {
    let obj = json!({"metadata": {"name": "cm", "namespace": "default", "labels": {"app": "bad value!", "-x": "ok"}}});
    let errs = errors(Resource::ConfigMaps, obj);
    assert_eq!(
        errs,
        vec![
            "metadata.labels: Invalid value: \"-x\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            "metadata.labels: Invalid value: \"bad value!\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ]
    );
    let obj = json!({"metadata": {"name": "cm", "namespace": "default", "labels": {"example.com/app": "x", "a/b/c": "y"}}});
    assert_eq!(
        errors(Resource::ConfigMaps, obj),
        vec![
            "metadata.labels: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    );
}

#[test]
fn annotations_size_limit() {
    let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT);
    let obj = json!({"metadata": {"name": "cm", "namespace": "default", "annotations": {"a": big}}});
    assert_eq!(
        errors(Resource::ConfigMaps, obj),
        vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
    );
}

#[test]
fn owner_references_need_uids() {
    let obj = json!({"metadata": {"name": "cm", "namespace": "default",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1"}]}});
    assert_eq!(
        errors(Resource::ConfigMaps, obj),
        vec!["metadata.ownerReferences.uid: Invalid value: \"\": must not be empty"]
    );
}

// --- Service ---

#[test]
fn service_requires_ports() {
    assert_eq!(errors(Resource::Services, service("orders", json!({}))), vec!["spec.ports: Required value"]);
}

#[test]
fn service_port_range() {
    assert_eq!(
        errors(Resource::Services, service("orders", json!({"ports": [{"port": 70000}]}))),
        vec![
            "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        ]
    );
    // A missing port decodes as 0, which upstream reports as out of range, not as missing.
    assert_eq!(
        errors(Resource::Services, service("orders", json!({"ports": [{"targetPort": 8080}]}))),
        vec!["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"]
    );
}

#[test]
fn service_port_protocol() {
    assert_eq!(
        errors(Resource::Services, service("orders", json!({"ports": [{"port": 80, "protocol": "HTTP"}]}))),
        vec![
            "spec.ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
        ]
    );
}

#[test]
fn service_port_names() {
    let dup = json!({"ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]});
    assert_eq!(
        errors(Resource::Services, service("orders", dup)),
        vec!["spec.ports[1].name: Duplicate value: \"http\""]
    );
    let unnamed = json!({"ports": [{"port": 80}, {"port": 443}]});
    assert_eq!(
        errors(Resource::Services, service("orders", unnamed)),
        vec!["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"]
    );
    let bad = json!({"ports": [{"name": "Web_1", "port": 80}]});
    assert_eq!(
        errors(Resource::Services, service("orders", bad)),
        vec![format!("spec.ports[0].name: Invalid value: \"Web_1\": {RFC1123_LABEL}")]
    );
}

#[test]
fn service_duplicate_port_and_protocol() {
    let spec = json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]});
    assert_eq!(
        errors(Resource::Services, service("orders", spec)),
        vec![
            "spec.ports[1]: Duplicate value: {\"AppProtocol\":null,\"Name\":\"\",\"NodePort\":0,\"Port\":80,\"Protocol\":\"TCP\",\"TargetPort\":0}"
        ]
    );
    let spec = json!({"ports": [{"name": "a", "port": 53}, {"name": "b", "port": 53, "protocol": "UDP"}]});
    assert!(errors(Resource::Services, service("dns", spec)).is_empty());
}

#[test]
fn service_target_port_name() {
    let spec = json!({"ports": [{"port": 80, "targetPort": "http_web"}]});
    assert_eq!(
        errors(Resource::Services, service("orders", spec)),
        vec![
            "spec.ports[0].targetPort: Invalid value: \"http_web\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
        ]
    );
}

#[test]
fn headless_service_without_ports_is_valid() {
    assert!(
        errors(Resource::Services, service("db", json!({"clusterIP": "None", "selector": {"app": "db"}})))
            .is_empty()
    );
    assert!(errors(Resource::Services, service("db", json!({"clusterIP": "None"}))).is_empty());
}

#[test]
fn external_name_service() {
    assert_eq!(
        errors(Resource::Services, service("db", json!({"type": "ExternalName"}))),
        vec!["spec.externalName: Required value"]
    );
    assert!(
        errors(
            Resource::Services,
            service("db", json!({"type": "ExternalName", "externalName": "db.example.com."}))
        )
        .is_empty()
    );
    assert_eq!(
        errors(
            Resource::Services,
            service("db", json!({"type": "ExternalName", "externalName": "DB.example.com"}))
        ),
        vec![format!("spec.externalName: Invalid value: \"DB.example.com\": {RFC1123_SUBDOMAIN}")]
    );
    assert_eq!(
        errors(
            Resource::Services,
            service(
                "db",
                json!({"type": "ExternalName", "externalName": "db.example.com", "clusterIP": "10.96.0.5"})
            )
        ),
        vec!["spec.clusterIPs: Forbidden: may not be set for ExternalName services"]
    );
}

#[test]
fn service_type_supported() {
    assert_eq!(
        errors(Resource::Services, service("orders", json!({"type": "Foo", "ports": [{"port": 80}]}))),
        vec![
            "spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
        ]
    );
}

#[test]
fn service_cluster_ip_syntax() {
    assert_eq!(
        errors(
            Resource::Services,
            service("orders", json!({"clusterIP": "10.96.0.999", "ports": [{"port": 80}]}))
        ),
        vec![
            "spec.clusterIPs[0]: Invalid value: \"10.96.0.999\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
        ]
    );
    assert!(
        errors(
            Resource::Services,
            service("orders", json!({"clusterIP": "10.96.000.10", "ports": [{"port": 80}]}))
        )
        .is_empty()
    );
    assert_eq!(
        errors(
            Resource::Services,
            service(
                "orders",
                json!({"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.11"], "ports": [{"port": 80}]})
            )
        ),
        vec!["spec.clusterIPs: Invalid value: [\"10.96.0.11\"]: first value must match `clusterIP`"]
    );
    assert_eq!(
        errors(
            Resource::Services,
            service("orders", json!({"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]}))
        ),
        vec!["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"]
    );
}

#[test]
fn service_policies() {
    let spec = json!({"ports": [{"port": 80}], "sessionAffinity": "Sticky", "internalTrafficPolicy": "Node"});
    assert_eq!(
        errors(Resource::Services, service("orders", spec)),
        vec![
            "spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\"",
            "spec.internalTrafficPolicy: Unsupported value: \"Node\": supported values: \"Cluster\", \"Local\"",
        ]
    );
    let spec = json!({"ports": [{"port": 80}], "externalTrafficPolicy": "Local"});
    assert_eq!(
        errors(Resource::Services, service("orders", spec)),
        vec![
            "spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services"
        ]
    );
    let spec = json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}], "externalTrafficPolicy": "Local"});
    assert!(errors(Resource::Services, service("orders", spec)).is_empty());
    let spec = json!({"ports": [{"port": 80, "nodePort": 30080}]});
    assert_eq!(
        errors(Resource::Services, service("orders", spec)),
        vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
    );
    let spec = json!({"ports": [{"port": 80}], "selector": {"app": "has space"}});
    assert_eq!(errors(Resource::Services, service("orders", spec)).len(), 1);
}

#[test]
fn service_update_may_not_change_cluster_ip() {
    let old = service("orders", json!({"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}));
    let new = service("orders", json!({"clusterIP": "10.96.0.11", "ports": [{"port": 80}]}));
    assert_eq!(
        update_errors(Resource::Services, old.clone(), new),
        vec!["spec.clusterIPs[0]: Invalid value: [\"10.96.0.11\"]: may not change once set"]
    );
    let mut same = old.clone();
    same["spec"]["ports"][0]["port"] = json!(8080);
    assert!(update_errors(Resource::Services, old.clone(), same).is_empty());
    // A client that only sends clusterIPs keeps clusterIP in step through normalisation.
    let mut only_ip = old.clone();
    only_ip["spec"]["clusterIPs"] = Value::Null;
    assert!(update_errors(Resource::Services, old.clone(), only_ip).is_empty());
    let cleared = service("orders", json!({"ports": [{"port": 80}]}));
    assert_eq!(
        update_errors(Resource::Services, old, cleared),
        vec!["spec.clusterIPs[0]: Invalid value: null: primary clusterIP can not be unset"]
    );
}

// --- Pod ---

#[test]
fn pod_requires_containers() {
    assert_eq!(errors(Resource::Pods, pod(json!({}))), vec!["spec.containers: Required value"]);
    assert_eq!(
        errors(Resource::Pods, pod(json!({"containers": []}))),
        vec!["spec.containers: Required value"]
    );
}

#[test]
fn pod_container_requires_image_and_name() {
    assert_eq!(
        errors(Resource::Pods, pod(json!({"containers": [{"name": "web"}]}))),
        vec!["spec.containers[0].image: Required value"]
    );
    assert_eq!(
        errors(Resource::Pods, pod(json!({"containers": [{"image": "nginx"}]}))),
        vec!["spec.containers[0].name: Required value"]
    );
    let dup = json!({"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]});
    assert_eq!(errors(Resource::Pods, pod(dup)), vec!["spec.containers[1].name: Duplicate value: \"a\""]);
}

#[test]
fn pod_container_ports() {
    let spec = json!({"containers": [{"name": "web", "image": "nginx", "ports": [
        {"containerPort": 0}, {"containerPort": 70000, "protocol": "ICMP", "name": "Http"}]}]});
    assert_eq!(
        errors(Resource::Pods, pod(spec)),
        vec![
            "spec.containers[0].ports[0].containerPort: Required value",
            "spec.containers[0].ports[1].name: Invalid value: \"Http\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            "spec.containers[0].ports[1].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.containers[0].ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
        ]
    );
}

#[test]
fn pod_policies() {
    let spec = json!({"containers": [{"name": "web", "image": "nginx"}], "dnsPolicy": "Cluster", "restartPolicy": "Sometimes"});
    assert_eq!(
        errors(Resource::Pods, pod(spec)),
        vec![
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            "spec.dnsPolicy: Unsupported value: \"Cluster\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
        ]
    );
    let spec = json!({"containers": [{"name": "web", "image": "nginx"}], "dnsPolicy": "None"});
    assert_eq!(
        errors(Resource::Pods, pod(spec)),
        vec!["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"]
    );
    let spec = json!({"containers": [{"name": "web", "image": "nginx"}], "dnsPolicy": "None",
                      "dnsConfig": {"nameservers": ["1.1.1.1", "8.8.8.8", "9.9.9.9", "10.0.0.1"]}});
    assert_eq!(
        errors(Resource::Pods, pod(spec)),
        vec![
            "spec.dnsConfig.nameservers: Invalid value: [\"1.1.1.1\",\"8.8.8.8\",\"9.9.9.9\",\"10.0.0.1\"]: must not have more than 3 nameservers"
        ]
    );
    let spec =
        json!({"containers": [{"name": "web", "image": "nginx"}], "hostname": "Web", "subdomain": "svc"});
    assert_eq!(
        errors(Resource::Pods, pod(spec)),
        vec![format!("spec.hostname: Invalid value: \"Web\": {RFC1123_LABEL}")]
    );
}

#[test]
fn pod_volume_mounts_must_name_volumes() {
    let spec = json!({"containers": [{"name": "web", "image": "nginx", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]});
    assert_eq!(
        errors(Resource::Pods, pod(spec)),
        vec!["spec.containers[0].volumeMounts[0].name: Not found: \"data\""]
    );
    let spec = json!({"volumes": [{"name": "data"}],
                      "containers": [{"name": "web", "image": "nginx", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]});
    assert!(errors(Resource::Pods, pod(spec)).is_empty());
}

#[test]
fn pod_update_rules() {
    let old = pod(
        json!({"containers": [{"name": "web", "image": "nginx:1.26", "ports": [{"containerPort": 80}]}]}),
    );
    let mut image = old.clone();
    image["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    assert!(update_errors(Resource::Pods, old.clone(), image).is_empty());

    let mut bound = old.clone();
    bound["spec"]["nodeName"] = json!("node-1");
    assert!(update_errors(Resource::Pods, old.clone(), bound.clone()).is_empty());
    let mut rebound = bound.clone();
    rebound["spec"]["nodeName"] = json!("node-2");
    let errs = update_errors(Resource::Pods, bound, rebound);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"));
    assert!(errs[0].contains("- \tnodeName: \"node-1\"\n+ \tnodeName: \"node-2\""), "{}", errs[0]);

    let mut port = old.clone();
    port["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(8080);
    let errs = update_errors(Resource::Pods, old.clone(), port);
    assert!(errs[0].starts_with("spec: Forbidden: pod updates may not change fields other than"));

    let mut more = old.clone();
    more["spec"]["containers"] =
        json!([{"name": "web", "image": "nginx"}, {"name": "b", "image": "busybox"}]);
    assert_eq!(
        update_errors(Resource::Pods, old, more),
        vec!["spec.containers: Forbidden: pod updates may not add or remove containers"]
    );
}

// --- workloads ---

#[test]
fn deployment_selector_must_match_template() {
    let errs =
        errors(Resource::Deployments, deployment(json!({"matchLabels": {"app": "x"}}), json!({"app": "y"})));
    assert_eq!(
        errs,
        vec![
            "spec.template.metadata.labels: Invalid value: {\"app\":\"y\"}: `selector` does not match template `labels`"
        ]
    );
    assert!(
        errors(
            Resource::Deployments,
            deployment(json!({"matchLabels": {"app": "x"}}), json!({"app": "x", "v": "1"}))
        )
        .is_empty()
    );
    let exprs = json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]});
    assert!(errors(Resource::Deployments, deployment(exprs, json!({"tier": "api"}))).is_empty());
}

#[test]
fn deployment_selector_required_or_nonempty() {
    let mut d = deployment(Value::Null, json!({"app": "x"}));
    d["spec"].as_object_mut().map(|m| m.remove("selector"));
    assert_eq!(
        errors(Resource::Deployments, d),
        vec![
            "spec.selector: Required value",
            "spec.template.metadata.labels: Invalid value: {\"app\":\"x\"}: `selector` does not match template `labels`",
        ]
    );
    assert_eq!(
        errors(Resource::Deployments, deployment(json!({}), json!({"app": "x"}))),
        vec!["spec.selector: Invalid value: {}: empty selector is invalid for deployment"]
    );
    let bad = json!({"matchExpressions": [{"key": "app", "operator": "Equals", "values": ["x"]}]});
    assert_eq!(
        errors(Resource::Deployments, deployment(bad, json!({"app": "x"}))),
        vec![
            "spec.selector.matchExpressions[0].operator: Invalid value: \"Equals\": not a valid selector operator",
            "spec.selector: Invalid value: {\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"Equals\",\"values\":[\"x\"]}]}: invalid label selector",
        ]
    );
}

#[test]
fn deployment_fields() {
    let mut d = deployment(json!({"matchLabels": {"app": "x"}}), json!({"app": "x"}));
    d["spec"]["replicas"] = json!(-1);
    d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("");
    assert_eq!(
        errors(Resource::Deployments, d),
        vec![
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            "spec.template.spec.containers[0].image: Required value",
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
        ]
    );
    let mut d = deployment(json!({"matchLabels": {"app": "x"}}), json!({"app": "x"}));
    d["spec"]["strategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}});
    assert_eq!(
        errors(Resource::Deployments, d),
        vec![
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0%\": may not be 0 when `maxSurge` is 0"
        ]
    );
}

#[test]
fn deployment_selector_is_immutable() {
    let old = deployment(json!({"matchLabels": {"app": "x"}}), json!({"app": "x", "v": "2"}));
    let new = deployment(json!({"matchLabels": {"app": "x", "v": "2"}}), json!({"app": "x", "v": "2"}));
    assert_eq!(
        update_errors(Resource::Deployments, old.clone(), new),
        vec![
            "spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"x\",\"v\":\"2\"}}: field is immutable"
        ]
    );
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(5);
    assert!(update_errors(Resource::Deployments, old, scaled).is_empty());
}

#[test]
fn replica_set_reuses_deployment_wording() {
    let rs = json!({"metadata": {"name": "web-1", "namespace": "default"},
                    "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}});
    assert_eq!(
        errors(Resource::ReplicaSets, rs),
        vec!["spec.selector: Invalid value: {}: empty selector is invalid for deployment"]
    );
}

#[test]
fn stateful_set_rules() {
    let sts = |name: &str| {
        json!({"metadata": {"name": name, "namespace": "default"},
               "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}}}})
    };
    assert!(errors(Resource::StatefulSets, sts("db")).is_empty());
    assert_eq!(
        errors(Resource::StatefulSets, sts("db.v1")),
        vec!["metadata.name: Invalid value: \"db.v1\": must not contain dots"]
    );
    let mut bad = sts("db");
    bad["spec"]["podManagementPolicy"] = json!("Random");
    assert_eq!(
        errors(Resource::StatefulSets, bad),
        vec!["spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'"]
    );
    let mut renamed = sts("db");
    renamed["spec"]["serviceName"] = json!("db-headless");
    assert_eq!(
        update_errors(Resource::StatefulSets, sts("db"), renamed),
        vec![
            "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
        ]
    );
    let mut scaled = sts("db");
    scaled["spec"]["replicas"] = json!(3);
    scaled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("postgres:17");
    assert!(update_errors(Resource::StatefulSets, sts("db"), scaled).is_empty());
}

fn daemon_set(selector: Value, labels: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "aws-node", "namespace": "kube-system"},
           "spec": {"selector": selector, "template": {"metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "aws-node", "image": "amazon-k8s-cni:v1.19.0"}]}}}})
}

#[test]
fn daemon_set_selector_must_match_template() {
    let app = json!({"k8s-app": "aws-node"});
    assert!(errors(Resource::DaemonSets, daemon_set(json!({"matchLabels": app}), app.clone())).is_empty());
    // No selector: it compiles to one that matches nothing, and no "Required value" is reported.
    let mut missing = daemon_set(Value::Null, app.clone());
    missing["spec"].as_object_mut().unwrap().remove("selector");
    assert_eq!(
        errors(Resource::DaemonSets, missing),
        vec![
            "spec.template.metadata.labels: Invalid value: {\"k8s-app\":\"aws-node\"}: `selector` does not match template `labels`"
        ]
    );
    assert_eq!(
        errors(
            Resource::DaemonSets,
            daemon_set(json!({"matchLabels": {"k8s-app": "kube-proxy"}}), app.clone())
        ),
        vec![
            "spec.template.metadata.labels: Invalid value: {\"k8s-app\":\"aws-node\"}: `selector` does not match template `labels`"
        ]
    );
    assert_eq!(
        errors(Resource::DaemonSets, daemon_set(json!({}), app.clone())),
        vec!["spec.selector: Invalid value: {}: empty selector is invalid for daemonset"]
    );
}

#[test]
fn daemon_set_template_and_strategy_rules() {
    let app = json!({"k8s-app": "aws-node"});
    let ds = || daemon_set(json!({"matchLabels": app}), app.clone());
    let mut never = ds();
    never["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    assert_eq!(
        errors(Resource::DaemonSets, never),
        vec!["spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""]
    );
    let mut deadline = ds();
    deadline["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(30);
    assert_eq!(
        errors(Resource::DaemonSets, deadline),
        vec![
            "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in DaemonSet is not Supported"
        ]
    );
    let mut no_image = ds();
    no_image["spec"]["template"]["spec"]["containers"][0].as_object_mut().unwrap().remove("image");
    assert_eq!(
        errors(Resource::DaemonSets, no_image),
        vec!["spec.template.spec.containers[0].image: Required value"]
    );
    let mut both = ds();
    both["spec"]["updateStrategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}});
    assert_eq!(
        errors(Resource::DaemonSets, both),
        vec![
            "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero"
        ]
    );
    let mut neither = ds();
    neither["spec"]["updateStrategy"] = json!({"rollingUpdate": {"maxUnavailable": 0}});
    assert_eq!(
        errors(Resource::DaemonSets, neither),
        vec![
            "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"
        ]
    );
    let mut surge = ds();
    surge["spec"]["updateStrategy"] = json!({"rollingUpdate": {"maxUnavailable": 0, "maxSurge": "10%"}});
    assert!(errors(Resource::DaemonSets, surge).is_empty());
    let mut bad_type = ds();
    bad_type["spec"]["updateStrategy"] = json!({"type": "Recreate"});
    // Upstream's Go struct writes Type first; the JSON maps here sort their keys.
    assert_eq!(
        errors(Resource::DaemonSets, bad_type),
        vec![
            "spec.updateStrategy: Unsupported value: {\"RollingUpdate\":null,\"Type\":\"Recreate\"}: supported values: \"RollingUpdate\", \"OnDelete\""
        ]
    );
    let mut on_delete = ds();
    on_delete["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    assert!(errors(Resource::DaemonSets, on_delete).is_empty());
}

#[test]
fn daemon_set_update_keeps_selector() {
    let app = json!({"k8s-app": "aws-node"});
    let old = daemon_set(json!({"matchLabels": app}), app.clone());
    let mut env = old.clone();
    env["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "WARM_IP_TARGET", "value": "2"}]);
    assert!(update_errors(Resource::DaemonSets, old.clone(), env).is_empty());
    let labels = json!({"k8s-app": "aws-node", "v": "2"});
    let moved = daemon_set(json!({"matchLabels": labels}), labels);
    assert_eq!(
        update_errors(Resource::DaemonSets, old, moved),
        vec![
            "spec.selector: Invalid value: {\"matchLabels\":{\"k8s-app\":\"aws-node\",\"v\":\"2\"}}: field is immutable"
        ]
    );
}

// --- EndpointSlice, NetworkPolicy, ConfigMap, Event, Node ---

#[test]
fn endpoint_slice_rules() {
    let slice = |addr_type: &str, addrs: Value| {
        json!({"metadata": {"name": "orders-abc", "namespace": "default"}, "addressType": addr_type,
               "endpoints": [{"addresses": addrs}], "ports": [{"name": "http", "port": 8080}]})
    };
    assert!(errors(Resource::EndpointSlices, slice("IPv4", json!(["10.244.1.5"]))).is_empty());
    assert_eq!(
        errors(Resource::EndpointSlices, slice("IPv4", json!([]))),
        vec!["endpoints[0].addresses: Required value: must contain at least 1 address"]
    );
    assert_eq!(
        errors(Resource::EndpointSlices, slice("IPv4", json!(["fd00::1"]))),
        vec!["endpoints[0].addresses[0]: Invalid value: \"fd00::1\": must be a valid IPv4 address"]
    );
    assert_eq!(
        errors(Resource::EndpointSlices, slice("IPv4", json!(["127.0.0.1"]))),
        vec![
            "endpoints[0].addresses[0]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"
        ]
    );
    assert_eq!(
        errors(Resource::EndpointSlices, slice("IP", json!(["10.0.0.1"]))),
        vec!["addressType: Unsupported value: \"IP\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""]
    );
    assert_eq!(
        update_errors(
            Resource::EndpointSlices,
            slice("IPv4", json!(["10.0.0.1"])),
            slice("IPv6", json!(["fd00::1"]))
        ),
        vec!["addressType: Invalid value: \"IPv6\": field is immutable"]
    );
    assert!(errors(Resource::EndpointSlices, slice("FQDN", json!(["db.example.com"]))).is_empty());
}

#[test]
fn loopback_endpoints_only_with_the_option() {
    let slice = |ip: &str| {
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "web-1", "namespace": "default"}, "addressType": "IPv4",
               "endpoints": [{"addresses": [ip]}], "ports": [{"port": 80, "protocol": "TCP"}]})
    };
    let lab = ValidationOptions { allow_loopback_endpoints: true };
    let mut obj = slice("127.0.0.1");
    set_defaults(Resource::EndpointSlices, &mut obj);
    assert!(validate(Resource::EndpointSlices, &obj, &lab).is_empty());
    assert_eq!(
        validate(Resource::EndpointSlices, &obj, &OPTS).iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec![
            "endpoints[0].addresses[0]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"
        ]
    );
    // The option allows loopback only: link-local stays refused.
    let mut obj = slice("169.254.1.1");
    set_defaults(Resource::EndpointSlices, &mut obj);
    assert_eq!(validate(Resource::EndpointSlices, &obj, &lab).len(), 1);
}

#[test]
fn network_policy_rules() {
    let np = |spec: Value| json!({"metadata": {"name": "deny", "namespace": "default"}, "spec": spec});
    assert!(errors(Resource::NetworkPolicies, np(json!({"podSelector": {}}))).is_empty());
    let spec = json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24", "10.0.0.0/8"]}}],
                                                     "ports": [{"port": 80, "protocol": "ICMP"}]}]});
    assert_eq!(
        errors(Resource::NetworkPolicies, np(spec)),
        vec![
            "spec.ingress[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
            "spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: \"10.1.0.0/24\": must be a strict subset of `cidr`",
            "spec.ingress[0].from[0].ipBlock.except[1]: Invalid value: \"10.0.0.0/8\": must be a strict subset of `cidr`",
        ]
    );
    let spec = json!({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/33"}, "podSelector": {}}, {}]}],
                      "policyTypes": ["Egress", "Both"]});
    assert_eq!(
        errors(Resource::NetworkPolicies, np(spec)),
        vec![
            "spec.egress[0].to[0].ipBlock.cidr: Invalid value: \"10.0.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            "spec.egress[0].to[0]: Forbidden: may not specify both ipBlock and another peer",
            "spec.egress[0].to[1]: Required value: must specify a peer",
            "spec.policyTypes[1]: Unsupported value: \"Both\": supported values: \"Ingress\", \"Egress\"",
        ]
    );
}

#[test]
fn config_map_keys() {
    let cm =
        json!({"metadata": {"name": "cfg", "namespace": "default"}, "data": {"ok.key": "1", "bad key": "2"}});
    assert_eq!(
        errors(Resource::ConfigMaps, cm),
        vec![
            "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
        ]
    );
    let old =
        json!({"metadata": {"name": "cfg", "namespace": "default"}, "immutable": true, "data": {"a": "1"}});
    let mut new = old.clone();
    new["data"]["a"] = json!("2");
    assert_eq!(
        update_errors(Resource::ConfigMaps, old, new),
        vec!["data: Forbidden: field is immutable when `immutable` is set"]
    );
}

#[test]
fn event_namespace_must_match() {
    let ev = json!({"metadata": {"name": "web.1", "namespace": "shop"}, "involvedObject": {"kind": "Pod", "name": "web", "namespace": "other"},
                    "reason": "Started", "message": "Started container"});
    assert_eq!(
        errors(Resource::Events, ev),
        vec!["involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"]
    );
}

#[test]
fn node_rules() {
    let node = |cidrs: Value| json!({"metadata": {"name": "node-1"}, "spec": {"podCIDRs": cidrs}});
    assert!(errors(Resource::Nodes, node(json!(["10.244.1.0/24"]))).is_empty());
    assert_eq!(
        errors(Resource::Nodes, node(json!(["10.244.1.0/24", "10.244.2.0/24"]))),
        vec![
            "spec.podCIDRs: Invalid value: [\"10.244.1.0/24\",\"10.244.2.0/24\"]: may specify no more than one CIDR for each IP family"
        ]
    );
    assert!(update_errors(Resource::Nodes, node(json!([])), node(json!(["10.244.1.0/24"]))).is_empty());
    assert_eq!(
        update_errors(Resource::Nodes, node(json!(["10.244.1.0/24"])), node(json!(["10.244.2.0/24"]))),
        vec!["spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid"]
    );
}

#[test]
fn objects_of_the_wrong_shape_get_only_metadata_checks() {
    let svc = json!({"metadata": {"name": "Orders", "namespace": "default"}, "spec": {"ports": "eighty"}});
    assert_eq!(
        validate(Resource::Services, &svc, &OPTS).iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec![format!("metadata.name: Invalid value: \"Orders\": {DNS1035}")]
    );
}

#[test]
fn realistic_manifests_are_valid() {
    let lb = service(
        "web",
        json!({"type": "LoadBalancer", "selector": {"app": "web"}, "externalTrafficPolicy": "Local",
               "ports": [{"name": "http", "port": 80, "targetPort": "http"}, {"name": "https", "port": 443, "targetPort": 8443}]}),
    );
    assert_eq!(errors(Resource::Services, lb), Vec::<String>::new());
    let mut d = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web", "app.kubernetes.io/version": "1.27"}),
    );
    d["spec"]["template"]["spec"] = json!({
        "volumes": [{"name": "conf", "configMap": {"name": "web-conf"}}, {"name": "cache"}],
        "containers": [{
            "name": "web", "image": "registry.local:5000/web@sha256:abcd",
            "ports": [{"name": "http", "containerPort": 8080}],
            "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}, {"name": "MODE", "value": "prod"}],
            "volumeMounts": [{"name": "conf", "mountPath": "/etc/web"}, {"name": "cache", "mountPath": "/cache"}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "initialDelaySeconds": 2},
            "livenessProbe": {"tcpSocket": {"port": 8080}},
            "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
        }],
        "initContainers": [{"name": "wait", "image": "busybox:1.36", "command": ["sh", "-c", "true"]}],
        "dnsConfig": {"options": [{"name": "ndots", "value": "2"}], "searches": ["svc.cluster.local"]},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}],
        "nodeSelector": {"kubernetes.io/os": "linux"}
    });
    assert_eq!(errors(Resource::Deployments, d), Vec::<String>::new());
    let sts = json!({"metadata": {"name": "kv", "namespace": "default"}, "spec": {"serviceName": "kv", "replicas": 3,
        "selector": {"matchLabels": {"app": "kv"}},
        "template": {"metadata": {"labels": {"app": "kv"}}, "spec": {"containers": [{"name": "kv", "image": "kv:1"}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}});
    assert_eq!(errors(Resource::StatefulSets, sts), Vec::<String>::new());
    let np = json!({"metadata": {"name": "allow-web", "namespace": "default"}, "spec": {
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}, "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}}},
                              {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.96.0.0/12"]}}],
                     "ports": [{"port": 5432}, {"port": "pg"}, {"port": 30000, "endPort": 32767}]}],
        "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"port": 53, "protocol": "UDP"}]}]}});
    assert_eq!(errors(Resource::NetworkPolicies, np), Vec::<String>::new());
    let node = json!({"metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}},
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"], "taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]},
        "status": {"capacity": {"pods": "110"}, "addresses": [{"type": "InternalIP", "address": "172.18.0.3"}]}});
    assert_eq!(errors(Resource::Nodes, node), Vec::<String>::new());
    let ev = json!({"metadata": {"name": "web.17a", "namespace": "default"}, "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
                    "reason": "Scheduled", "message": "Successfully assigned default/web to node-1", "type": "Normal"});
    assert_eq!(errors(Resource::Events, ev), Vec::<String>::new());
}
