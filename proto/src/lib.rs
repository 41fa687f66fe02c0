//! netlab's gRPC wire types: generated code plus conversions to std types, nothing else.
//!
//! # Why objects travel as Kubernetes JSON
//!
//! The apiserver's API (`netlab.apiserver.v1`) carries each object as its Kubernetes JSON in a
//! bytes field, beside the typed fields clients route on (resource, namespace, name,
//! resourceVersion). Hand-writing protobuf messages for twelve Kubernetes kinds would be thousands
//! of lines that drift from Kubernetes, and every field the lab forgot would be silently dropped on
//! the way through. As JSON, real Kubernetes YAML round-trips unchanged: the CLI and every
//! component parse it with k8s-openapi's types, and `netlab get -o yaml` prints what kubectl
//! prints. The cost is that `grpcurl` shows the object body as base64; the typed fields stay
//! readable. The body is `bytes::Bytes`, so one event fanned out to a thousand watchers is
//! encoded once and shared by reference count.
//!
//! # Layout
//! - [`apiserver`]: `netlab.apiserver.v1`, the apiserver's CRUD + Watch API.
//! - [`node`]: `netlab.node.v1`, the node's kernel: rules kube-proxy programs, the wire between
//!   nodes, exec.
//! - [`trace`]: where a trace context travels outside gRPC metadata (annotation, EDNS option).
//! - [`FILE_DESCRIPTOR_SET`]: every netlab proto, for gRPC reflection.

/// `netlab.apiserver.*`
pub mod apiserver {
    /// `netlab.apiserver.v1`: the kube-apiserver's API.
    #[allow(missing_docs)]
    pub mod v1 {
        tonic::include_proto!("netlab.apiserver.v1");
    }
}

/// `netlab.node.*`
pub mod node {
    /// `netlab.node.v1`: the node's kernel (rules, the wire between nodes, exec).
    #[allow(missing_docs)]
    pub mod v1 {
        tonic::include_proto!("netlab.node.v1");

        /// The largest Kernel message either side accepts. A full iptables sync is about 1.5 KB
        /// per Service with 4 endpoints (14.4 MB at 10,000 Services), and `iptables-save` sends
        /// the same text back: tonic's default 4 MiB decode limit would refuse both above about
        /// 2,800 Services, and kube-proxy would retry forever. 256 MiB leaves room for 100,000.
        pub const MAX_MESSAGE_BYTES: usize = 256 << 20;
    }
}

/// How a trace context travels where there is no gRPC metadata: the wire contract between the
/// CLI, which starts traces, and every component that continues them (netlab-telemetry reads and
/// writes these).
pub mod trace {
    /// The annotation that carries a write's W3C `traceparent` on a Kubernetes object: the CLI
    /// sets it at apply, and controllers copy it onto the objects they create, so work done long
    /// after the write, in other processes, joins the write's trace.
    pub const TRACEPARENT_ANNOTATION: &str = "netlab.io/traceparent";

    /// The EDNS(0) option code that carries a W3C `traceparent` (its ASCII bytes) in DNS
    /// messages, so a pod's lookup and the dns server's answer share a trace. 65001 is in the
    /// "Local/Experimental Use" range 65001-65534 of RFC 6891 §9, so no real server gives it a
    /// meaning.
    pub const EDNS_TRACEPARENT: u16 = 65001;

    /// The EDNS(0) option code that carries the querying pod's IP (4 or 16 bytes) from a node to
    /// the cluster DNS. In a real cluster CoreDNS sees the pod's IP as the packet's source (the
    /// pod→kube-dns path is DNAT only, no SNAT), and Chaos Mesh's DNSChaos scopes by it; in the
    /// lab the node-agent's own socket sends the datagram, so the IP rides here. Local/
    /// Experimental range, as [`EDNS_TRACEPARENT`].
    pub const EDNS_SOURCE_IP: u16 = 65002;
}

/// The encoded descriptors of every netlab proto, for tonic-reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("netlab_descriptor");

mod resource;
pub use resource::{ALL as ALL_RESOURCES, UnknownKind};
