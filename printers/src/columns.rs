//! The column definitions per resource, as upstream's printers declare them
//! (`metav1.TableColumnDefinition`): the name (kubectl upper-cases it for the header), the
//! OpenAPI type of the cells, the format (`name` marks the column holding the object's name),
//! the description (the field's API documentation) and the priority (1: only with `-o wide`).
//!
//! The fault kinds are custom resources upstream (Chaos Mesh's CRDs): their columns are the
//! CRDs' `additionalPrinterColumns` after the Name column the apiserver adds, and an Age.

use netlab_proto::apiserver::v1::Resource;
use serde::Serialize;

/// One column of a resource's table (`metav1.TableColumnDefinition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Column {
    /// The column's name, e.g. `Cluster-IP`; kubectl prints it upper-cased.
    pub name: &'static str,
    /// The OpenAPI type of its cells: `string` or `integer`.
    #[serde(rename = "type")]
    pub type_: &'static str,
    /// `name` for the column holding the object's name, else empty.
    pub format: &'static str,
    /// What the column shows.
    pub description: &'static str,
    /// 0: always shown; 1: only with `-o wide`.
    pub priority: i32,
}

/// `metav1.ObjectMeta{}.SwaggerDoc()["name"]`.
const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// `metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]`.
const AGE_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

const CONTAINERS_DOC: &str = "Names of each container in the template.";
const IMAGES_DOC: &str = "Images referenced by each container in the template.";

const fn col(name: &'static str, description: &'static str) -> Column {
    Column { name, type_: "string", format: "", description, priority: 0 }
}

const fn int(name: &'static str, description: &'static str) -> Column {
    Column { name, type_: "integer", format: "", description, priority: 0 }
}

const fn wide(c: Column) -> Column {
    Column { priority: 1, ..c }
}

const NAME: Column =
    Column { name: "Name", type_: "string", format: "name", description: NAME_DOC, priority: 0 };
const AGE: Column = col("Age", AGE_DOC);

const PODS: &[Column] = &[
    NAME,
    col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    col("Status", "The aggregate status of the containers in this pod."),
    col(
        "Restarts",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide(col(
        "IP",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    )),
    wide(col("Node", "NodeName indicates in which node this pod is scheduled.")),
    wide(col(
        "Nominated Node",
        "nominatedNodeName is set only when this pod preempts other pods on the node.",
    )),
    wide(col("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness.")),
];

const SERVICES: &[Column] = &[
    NAME,
    col("Type", "type determines how the Service is exposed."),
    col("Cluster-IP", "clusterIP is the IP address of the service and is usually assigned randomly."),
    col(
        "External-IP",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
    ),
    col("Port(s)", "The list of ports that are exposed by this service."),
    AGE,
    wide(col("Selector", "Route service traffic to pods with label keys and values matching this selector.")),
];

const DEPLOYMENTS: &[Column] = &[
    NAME,
    col("Ready", "Number of the pod with ready state"),
    col(
        "Up-to-date",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    col(
        "Available",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE,
    wide(col("Containers", CONTAINERS_DOC)),
    wide(col("Images", IMAGES_DOC)),
    wide(col("Selector", "Label selector for pods.")),
];

const REPLICA_SETS: &[Column] = &[
    NAME,
    int("Desired", "Replicas is the number of desired pods."),
    int("Current", "Replicas is the most recently observed number of non-terminating pods."),
    int("Ready", "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition."),
    AGE,
    wide(col("Containers", CONTAINERS_DOC)),
    wide(col("Images", IMAGES_DOC)),
    wide(col("Selector", "Selector is a label query over pods that should match the replica count.")),
];

const STATEFUL_SETS: &[Column] = &[
    NAME,
    col("Ready", "Number of the pod with ready state"),
    AGE,
    wide(col("Containers", CONTAINERS_DOC)),
    wide(col("Images", IMAGES_DOC)),
];

const ENDPOINT_SLICES: &[Column] = &[
    NAME,
    col("AddressType", "addressType specifies the type of address carried by this EndpointSlice."),
    col("Ports", "ports specifies the list of network ports exposed by each endpoint in this slice."),
    col("Endpoints", "endpoints is a list of unique endpoints in this slice."),
    AGE,
];

const NETWORK_POLICIES: &[Column] = &[
    NAME,
    col("Pod-Selector", "podSelector selects the pods to which this NetworkPolicy object applies."),
    AGE,
];

const NAMESPACES: &[Column] = &[NAME, col("Status", "The status of the namespace"), AGE];

const NODES: &[Column] = &[
    NAME,
    col("Status", "The status of the node"),
    col("Roles", "The roles of the node"),
    AGE,
    col("Version", "Kubelet Version reported by the node."),
    wide(col("Internal-IP", "List of addresses reachable to the node.")),
    wide(col("External-IP", "List of addresses reachable to the node.")),
    wide(col(
        "OS-Image",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    )),
    wide(col(
        "Kernel-Version",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    )),
    wide(col(
        "Container-Runtime",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    )),
];

const CONFIG_MAPS: &[Column] = &[NAME, col("Data", "Data contains the configuration data."), AGE];

const SERVICE_ACCOUNTS: &[Column] = &[
    NAME,
    col(
        "Secrets",
        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
    ),
    AGE,
];

const EVENTS: &[Column] = &[
    col("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
    col("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
    col(
        "Reason",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    col("Object", "The object that this event is about."),
    wide(col(
        "Subobject",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].",
    )),
    wide(col(
        "Source",
        "The component reporting this event. Should be a short machine understandable string.",
    )),
    col("Message", "A human-readable description of the status of this operation."),
    wide(col(
        "First Seen",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    )),
    wide(col("Count", "The number of times this event has occurred.")),
    wide(Column { format: "name", ..col("Name", NAME_DOC) }),
];

const DAEMON_SETS: &[Column] = &[
    NAME,
    int(
        "Desired",
        "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
    ),
    int(
        "Current",
        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
    ),
    int(
        "Ready",
        "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.",
    ),
    int("Up-to-date", "The total number of nodes that are running updated daemon pod"),
    int(
        "Available",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
    ),
    col(
        "Node Selector",
        "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/",
    ),
    AGE,
    wide(col("Containers", CONTAINERS_DOC)),
    wide(col("Images", IMAGES_DOC)),
    wide(col(
        "Selector",
        "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    )),
];

const ACTION: Column = col("Action", "The fault's action (spec.action).");
const DURATION: Column = col("Duration", "How long the fault lasts (spec.duration); empty: until deleted.");

const POD_CHAOS: &[Column] = &[NAME, AGE];
const COMPONENT_CHAOS: &[Column] =
    &[NAME, ACTION, col("Component", "The component the fault acts on (spec.component)."), DURATION, AGE];
const CHAOS: &[Column] = &[NAME, ACTION, DURATION, AGE];

/// The generic table upstream serves for a kind without a printer.
const DEFAULT: &[Column] = &[NAME];

/// The columns of `r`'s table, in order.
pub fn columns(r: Resource) -> &'static [Column] {
    match r {
        Resource::Pods => PODS,
        Resource::Services => SERVICES,
        Resource::Deployments => DEPLOYMENTS,
        Resource::ReplicaSets => REPLICA_SETS,
        Resource::StatefulSets => STATEFUL_SETS,
        Resource::DaemonSets => DAEMON_SETS,
        Resource::EndpointSlices => ENDPOINT_SLICES,
        Resource::NetworkPolicies => NETWORK_POLICIES,
        Resource::Namespaces => NAMESPACES,
        Resource::Nodes => NODES,
        Resource::ConfigMaps => CONFIG_MAPS,
        Resource::ServiceAccounts => SERVICE_ACCOUNTS,
        Resource::Events => EVENTS,
        // Chaos Mesh's CRDs: NetworkChaos and DNSChaos declare `action` and `duration`,
        // PodChaos declares none; the lab's own kinds follow them, a component fault naming
        // its component.
        Resource::PodChaos => POD_CHAOS,
        Resource::ComponentChaos => COMPONENT_CHAOS,
        Resource::NetworkChaos
        | Resource::DnsChaos
        | Resource::RegistryChaos
        | Resource::UpstreamDnsChaos
        | Resource::ExhaustionChaos => CHAOS,
        Resource::Unspecified => DEFAULT,
    }
}
