//! The command line, shaped like kubectl's so that muscle memory carries over.
//!
//! Only the global flags read the environment (`NETLAB_SERVER`, `NETLAB_NAMESPACE`), playing the
//! part of kubeconfig. Per-command flags such as `-l` or `-o` deliberately have no `env`: an
//! exported `NETLAB_SELECTOR` would silently filter every later command, which kubectl users would
//! never expect.

use clap::{Args, Parser, Subcommand};

/// Where the apiserver listens unless told otherwise (kube-apiserver's secure port).
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:6443";

/// The namespace used when neither `-n` nor the manifest names one.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Where Jaeger's UI and query API listen unless told otherwise (its all-in-one default).
pub const DEFAULT_JAEGER_URL: &str = "http://localhost:16686";

/// netlab controls the netlab Kubernetes networking lab, as kubectl controls a cluster.
#[derive(Debug, Parser)]
#[command(name = "netlab", version, about, long_about = None)]
pub struct Cli {
    /// The address of the netlab apiserver: `http://host:port` or `host:port`. Default: the
    /// native cluster recorded in the data dir by `netlab up`, else http://127.0.0.1:6443.
    #[arg(short = 's', long, global = true, env = "NETLAB_SERVER")]
    pub server: Option<String>,

    /// Where `netlab up` keeps a native cluster's state, and where commands look for it.
    /// Default: $XDG_DATA_HOME/netlab or ~/.local/share/netlab.
    #[arg(long = "data-dir", global = true, env = "NETLAB_DATA_DIR")]
    pub data_dir: Option<std::path::PathBuf>,

    /// If present, the namespace scope for this request (default "default").
    #[arg(short = 'n', long, global = true, env = "NETLAB_NAMESPACE")]
    pub namespace: Option<String>,

    /// Jaeger's UI and query API, for `netlab trace` and the trace links commands print. Default:
    /// the trace store of the native cluster that `netlab up` recorded in the data dir, else
    /// http://localhost:16686.
    #[arg(long = "jaeger-url", global = true, env = "NETLAB_JAEGER_URL")]
    pub jaeger_url: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

// === impl Cli ===

impl Cli {
    /// The data directory, resolved.
    pub fn data_dir(&self) -> std::path::PathBuf {
        if let Some(d) = &self.data_dir {
            return d.clone();
        }
        let base = std::env::var_os("XDG_DATA_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("netlab")
    }

    /// The apiserver address: `--server`, else the native cluster in the data dir, else the
    /// default.
    pub fn server(&self) -> String {
        if let Some(s) = &self.server {
            return s.clone();
        }
        crate::cluster_file::read_cluster(&self.data_dir())
            .map(|c| c.apiserver)
            .unwrap_or_else(|| DEFAULT_SERVER.to_string())
    }

    /// Jaeger's query API: `--jaeger-url` (or `NETLAB_JAEGER_URL`), else the trace store of the
    /// native cluster in the data dir, else the default.
    pub fn jaeger_url(&self) -> String {
        if let Some(url) = &self.jaeger_url {
            return url.clone();
        }
        crate::cluster_file::read_cluster(&self.data_dir())
            .and_then(|c| c.jaeger_url)
            .unwrap_or_else(|| DEFAULT_JAEGER_URL.to_string())
    }

    /// The namespace flag, resolved.
    pub fn namespace(&self) -> Namespace {
        Namespace {
            name: self.namespace.clone().unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
            explicit: self.namespace.is_some(),
        }
    }
}

/// The request namespace and whether the user chose it, which decides whether a manifest naming
/// another namespace is an error (kubectl's "enforce namespace").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// The namespace to use when the object names none.
    pub name: String,
    /// Set by `-n`/`NETLAB_NAMESPACE` rather than defaulted.
    pub explicit: bool,
}

/// The netlab subcommands, named and behaving as kubectl's.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply a configuration to a resource by file name or stdin.
    Apply(ApplyArgs),
    /// Display one or many resources.
    Get(GetArgs),
    /// Show details of a specific resource or group of resources.
    Describe(DescribeArgs),
    /// Delete resources by file names, stdin, resources and names, or by resources and label selector.
    Delete(DeleteArgs),
    /// Set a new size for a deployment, replica set, or stateful set.
    Scale(ScaleArgs),
    /// Print the supported API resources on the server.
    ApiResources,
    /// Start the lab's processes on this machine (native mode, no Docker).
    Up(UpArgs),
    /// Stop a native lab started with `netlab up --detach`.
    Down,
    /// Print a kubeconfig for the apiserver (stock kubectl works too:
    /// `KUBECONFIG=<data-dir>/kubeconfig kubectl get pods -A`; `netlab up` writes that file).
    Kubeconfig,
    /// Apply the demo workload (namespace `demo`: orders, client, db), unless NETLAB_DEMO=0.
    Demo {
        /// Apply it (NETLAB_DEMO=0 turns this off, for compose's one-shot `demo` service).
        #[arg(long, env = "NETLAB_DEMO", default_value = "true", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, hide = true)]
        enabled: bool,
        /// First create the `aws-node` DaemonSet, as `netlab up --eks` does (compose's EKS
        /// override sets NETLAB_EKS=1).
        #[arg(long, env = "NETLAB_EKS", default_value = "false", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, hide = true)]
        eks: bool,
    },
    /// Execute a command in a container.
    Exec(ExecArgs),
    /// Inspect a node: its CNI results, iptables, IPVS, conntrack and routes.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Check a component's health endpoint, e.g. `netlab probe 127.0.0.1:10259 /healthz`
    /// (exit 0 on HTTP 200): compose's health checks use it, since the image has no curl.
    Probe {
        /// host:port.
        addr: String,
        /// The path.
        #[arg(default_value = "/healthz")]
        path: String,
    },
    /// Print a trace from Jaeger as a tree.
    Trace(TraceArgs),
    /// Guided labs: a networking flow broken in the live cluster, to diagnose and fix.
    Lab(LabArgs),
    /// The lab's AWS (IAM, STS, EC2, ECR): `eval "$(netlab aws env)"` points the aws CLI and
    /// SDKs at it with the lab admin's key.
    #[command(subcommand)]
    Aws(AwsCommand),
    /// Create a resource; today only `create token` (a ServiceAccount token, as kubectl's).
    #[command(subcommand)]
    Create(CreateCommand),
    /// Break something on purpose: create, list and delete fault objects (chaos.netlab.io).
    #[command(subcommand, after_help = crate::fault::args::GRAMMAR)]
    Fault(Box<crate::fault::args::FaultCommand>),
}

/// `netlab create ...`.
#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// Request a service account token (TokenRequest), signed by the apiserver's issuer: the
    /// token IRSA hands to STS, as `kubectl create token` prints it.
    Token(CreateTokenArgs),
}

/// `netlab create token SA`, with kubectl's flags.
#[derive(Debug, clap::Args)]
pub struct CreateTokenArgs {
    /// The ServiceAccount.
    pub service_account: String,
    /// Audience of the requested token (repeatable). Default: the apiserver's `--api-audiences`.
    #[arg(long = "audience")]
    pub audiences: Vec<String>,
    /// Requested lifetime of the token (a Go duration, e.g. `1h`; whole seconds). Unset or 0:
    /// the server decides.
    #[arg(long, default_value = "0s")]
    pub duration: String,
    /// Kind of an object to bind the token to (`Pod`).
    #[arg(long)]
    pub bound_object_kind: Option<String>,
    /// Name of the object to bind the token to.
    #[arg(long)]
    pub bound_object_name: Option<String>,
    /// UID of the object to bind the token to.
    #[arg(long)]
    pub bound_object_uid: Option<String>,
}

/// `netlab aws ...`.
#[derive(Debug, Subcommand)]
pub enum AwsCommand {
    /// Print the shell exports that point the aws CLI and SDKs at the lab's AWS endpoint with
    /// the lab admin's access key (as `minikube docker-env` does for Docker).
    Env {
        /// The endpoint (default: the native cluster's in the data dir, else compose's
        /// http://127.0.0.1:4566).
        #[arg(long, env = "NETLAB_AWS_ENDPOINT")]
        endpoint: Option<String>,
        /// The region.
        #[arg(long, env = "NETLAB_AWS_REGION", default_value = "us-east-1")]
        region: String,
    },
}

/// `netlab lab ...`.
#[derive(Debug, clap::Args)]
pub struct LabArgs {
    /// The labs folder (default: the one installed beside netlab, or the source tree's `labs/`).
    #[arg(long = "labs-dir", env = "NETLAB_LABS_DIR", global = true)]
    pub labs_dir: Option<std::path::PathBuf>,
    /// The verb.
    #[command(subcommand)]
    pub command: crate::lab::LabCommand,
}

/// `netlab node ...`.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// The CNI result (interfaces, ips, routes, dns) the kubelet got for each pod on NODE.
    Cni {
        /// The node's name, as `netlab get nodes` lists it.
        node: String,
    },
    /// The node's filter and nat tables, as `iptables-save` prints them.
    IptablesSave {
        /// The node's name, as `netlab get nodes` lists it.
        node: String,
    },
    /// The node's IPVS table, as `ipvsadm -Ln` prints it.
    Ipvsadm {
        /// The node's name, as `netlab get nodes` lists it.
        node: String,
    },
    /// The node's tracked connections, as `conntrack -L` prints them.
    Conntrack {
        /// The node's name, as `netlab get nodes` lists it.
        node: String,
    },
    /// The node's routing table, as `ip route` prints it.
    Routes {
        /// The node's name, as `netlab get nodes` lists it.
        node: String,
    },
    /// The ENIs ipamd holds on an EKS node (AWS VPC CNI), each address and which pod has it:
    /// ipamd's introspection endpoint (`curl localhost:61679/v1/enis` on a real node).
    Enis {
        /// The node's name, as `netlab get nodes` lists it.
        node: String,
        /// `json`: ipamd's answer as it is.
        #[arg(short = 'o', long = "output", value_parser = ["json"])]
        output: Option<String>,
    },
}

/// `netlab exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The pod to run the command in (in `-n`'s namespace).
    pub pod: String,
    /// Container name; defaults to the pod's first container.
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Pass stdin to the container (accepted for kubectl compatibility).
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Stdin is a TTY (accepted for kubectl compatibility).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// `netlab up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Return once everything is healthy, leaving the lab running (stop it with `netlab down`).
    #[arg(short = 'd', long)]
    pub detach: bool,

    /// The apiserver's port on 127.0.0.1; a free one is picked if it is taken.
    #[arg(long, default_value_t = 6443)]
    pub apiserver_port: u16,

    /// How many nodes (node-agents, with node IPs 127.0.1.1, 127.0.1.2, ...).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=250))]
    pub nodes: u8,

    /// Run the nodes as EKS workers: EC2 instances (t3.medium, m5.large, ...) with the AWS VPC
    /// CNI, so pods get VPC addresses of their node's ENIs from ipamd's warm pool, each node's
    /// max pods is its instance type's (ENIs × (IPv4 per ENI − 1) + 2), and no node has a
    /// podCIDR. ipamd's settings (WARM_ENI_TARGET, WARM_IP_TARGET, MINIMUM_IP_TARGET,
    /// ENABLE_PREFIX_DELEGATION, ...) are taken from this environment, as aws-node's env.
    #[arg(long, env = "NETLAB_EKS", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub eks: bool,

    /// Apply the demo workload (namespace `demo`). NETLAB_DEMO=0 skips it.
    #[arg(long, env = "NETLAB_DEMO", default_value = "true", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub demo: bool,

    /// Export traces from every process to this OTLP/gRPC endpoint (e.g. a Jaeger's
    /// http://127.0.0.1:4317). Default: a trace store started with the lab (`netlab-traces`,
    /// Jaeger's ports when free), which `netlab trace` then reads; an empty value exports nothing.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// `netlab apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The files that contain the configurations to apply: files, directories, or `-` for stdin.
    #[arg(short = 'f', long = "filename", required = true)]
    pub filenames: Vec<String>,

    /// Process the directory used in -f, --filename recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
}

/// `netlab get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// `TYPE[,TYPE...] [NAME...]` or `TYPE/NAME...`.
    pub args: Vec<String>,

    /// Output format: one of wide, yaml, json, name, jsonpath=TEMPLATE.
    #[arg(short = 'o', long)]
    pub output: Option<String>,

    /// Selector (label query) to filter on, e.g. `app=orders,tier!=db`.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,

    /// Selector (field query) to filter on, e.g. `spec.nodeName=node-1`.
    #[arg(long = "field-selector")]
    pub field_selector: Option<String>,

    /// List the requested objects across all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,

    /// When printing, show all labels as the last column.
    #[arg(long = "show-labels")]
    pub show_labels: bool,

    /// When using the default or wide output format, don't print headers.
    #[arg(long = "no-headers")]
    pub no_headers: bool,
}

/// `netlab describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// `TYPE [NAME_PREFIX...]` or `TYPE/NAME...`.
    pub args: Vec<String>,

    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,

    /// Describe the requested objects across all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
}

/// `netlab delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// `TYPE NAME...` or `TYPE/NAME...`.
    pub args: Vec<String>,

    /// The files that contain the resources to delete: files, directories, or `-` for stdin.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,

    /// Process the directory used in -f, --filename recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,

    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,

    /// Delete all resources of the given types in the namespace.
    #[arg(long)]
    pub all: bool,

    /// With `--all` or `-l`, delete across all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,

    /// Treat "resource not found" as a successful delete.
    #[arg(long = "ignore-not-found")]
    pub ignore_not_found: bool,

    /// Seconds a pod gets to terminate; -1 uses the pod's own terminationGracePeriodSeconds.
    /// 0 with --force removes it at once.
    #[arg(long = "grace-period", default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,

    /// Remove at once, without waiting for the kubelet (sets the grace period to 0).
    #[arg(long)]
    pub force: bool,
}

/// `netlab trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The trace id that a command printed (`trace: ID ...`), or `last` for the latest one.
    pub id: String,

    /// Output format: `json` prints Jaeger's answer unchanged.
    #[arg(short = 'o', long)]
    pub output: Option<String>,

    /// No colour, even on a terminal (also set by a non-empty NO_COLOR, see no-color.org).
    #[arg(long = "no-color", env = "NO_COLOR", value_name = "ANY", num_args = 0..=1, require_equals = true, default_missing_value = "1")]
    pub no_color: Option<String>,
}

/// `netlab scale`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// `TYPE NAME` or `TYPE/NAME`.
    pub args: Vec<String>,

    /// The new desired number of replicas.
    #[arg(long, required = true)]
    pub replicas: i32,
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn jaeger_url_flag_then_recorded_store_then_default() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_str().unwrap();
        let parse = |extra: &[&str]| {
            let mut args = vec!["netlab", "--data-dir", data_dir];
            args.extend(extra);
            args.extend(["trace", "last"]);
            Cli::try_parse_from(args).unwrap()
        };
        std::fs::write(
            dir.path().join("cluster.json"),
            r#"{"apiserver": "http://127.0.0.1:6443", "jaeger_url": "http://127.0.0.1:16687", "processes": []}"#,
        )
        .unwrap();
        assert_eq!(parse(&["--jaeger-url", "http://jaeger:16686"]).jaeger_url(), "http://jaeger:16686");
        // Without the flag, NETLAB_JAEGER_URL would be the explicit choice; only check the
        // fallbacks where the environment leaves them to be seen.
        if std::env::var_os("NETLAB_JAEGER_URL").is_none() {
            assert_eq!(parse(&[]).jaeger_url(), "http://127.0.0.1:16687");
            std::fs::remove_file(dir.path().join("cluster.json")).unwrap();
            assert_eq!(parse(&[]).jaeger_url(), DEFAULT_JAEGER_URL);
        }
    }
}
