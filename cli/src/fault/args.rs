//! `netlab fault`'s command line: one subcommand per fault a person at a terminal reaches for,
//! each with the few flags that fault needs. Flag values arrive as text and are read by
//! [`super::flags`], so a bad value is reported as `--loss 130%: must be ...` rather than in
//! clap's generic wording; closed sets (modes, directions, components) are clap's possible
//! values, so `--help` lists them.

use clap::{Args, Subcommand};
use netlab_chaos::{
    lab::{Component, ExhaustionAction},
    network::Direction,
    spec::Mode,
};

/// `netlab fault ...`.
#[derive(Debug, Subcommand)]
pub enum FaultCommand {
    /// Delay, drop, duplicate, corrupt or throttle the selected pods' traffic (a NetworkChaos).
    #[command(after_help = NET_EXAMPLES)]
    Net(NetArgs),
    /// Cut two nodes, or two sets of pods, off from each other (a NetworkChaos, action partition).
    #[command(after_help = PARTITION_EXAMPLES)]
    Partition(PartitionArgs),
    /// Make the cluster DNS answer the selected pods' queries wrongly, late or not at all (a
    /// DNSChaos).
    #[command(after_help = DNS_EXAMPLES)]
    Dns(DnsArgs),
    /// Kill pods, kill their containers, or make them fail (a PodChaos).
    #[command(after_help = POD_EXAMPLES)]
    Pod(PodArgs),
    /// Stop a component, as a stopped process: connections to it are refused (a ComponentChaos).
    ///
    /// `netlab fault stop dns` stops the cluster DNS server itself. To take back a fault made with
    /// `netlab fault dns`, delete it: `netlab fault delete NAME`.
    #[command(after_help = COMPONENT_EXAMPLES)]
    Stop(ComponentArgs),
    /// Pause a component, as a hung (SIGSTOPped) process: connections are accepted and never
    /// answered (a ComponentChaos).
    #[command(after_help = COMPONENT_EXAMPLES)]
    Pause(ComponentArgs),
    /// Kill a component once, as `kill -9` would; its supervisor starts it again (a
    /// ComponentChaos).
    #[command(after_help = COMPONENT_EXAMPLES)]
    Kill(ComponentArgs),
    /// Make the image registry refuse, delay or drop pulls (a RegistryChaos).
    #[command(after_help = REGISTRY_EXAMPLES)]
    Registry(RegistryArgs),
    /// Make the resolver outside the cluster (CoreDNS's upstream) unreachable, slow or failing
    /// (an UpstreamDNSChaos).
    #[command(after_help = UPSTREAM_EXAMPLES)]
    Upstream(UpstreamArgs),
    /// Use up a node's pod CIDR or conntrack table, or the Service CIDR (an ExhaustionChaos).
    #[command(after_help = EXHAUST_EXAMPLES)]
    Exhaust(ExhaustArgs),
    /// List every fault of every kind, with what it matched and what it did.
    List(ListArgs),
    /// Delete faults by name, or all of them; the cluster goes back to how it was.
    Delete(DeleteArgs),
}

/// `netlab fault --help`'s epilogue: why `stop`, `pause` and `kill` name components and
/// `delete` removes faults.
pub const GRAMMAR: &str = "\
Every subcommand but `list` and `delete` creates one fault object (chaos.netlab.io/v1alpha1) and
prints it. The verbs `stop`, `pause` and `kill` always act on a component (`netlab fault stop dns`
stops the cluster DNS server); a fault is taken back with `netlab fault delete NAME`, whatever
its kind. Faults are ordinary objects: `netlab get networkchaos`, `netlab describe dnschaos NAME`.";

const NET_EXAMPLES: &str = "\
Examples:
  # 30% loss and 200ms±50ms delay from the client pods to the orders pods
  netlab fault net --from app=client --to app=orders --loss 30% --delay 200ms --jitter 50ms
  # Limit everything the orders pods send to 1 MB/s, for a minute
  netlab fault net --from app=orders --rate 1mbps --duration 60s
  # Drop 10% of what the client pods send outside the cluster
  netlab fault net --from app=client --to-cidr 0.0.0.0/0 --loss 10";

const PARTITION_EXAMPLES: &str = "\
Examples:
  # The pods on node-1 and the pods on node-2 cannot reach each other (every namespace)
  netlab fault partition node-1 node-2
  # The client pods cannot reach the orders pods, nor the other way round
  netlab fault partition --from app=client --to app=orders";

const DNS_EXAMPLES: &str = "\
Examples:
  # The client pods get SERVFAIL for orders.*, for a minute
  netlab fault dns --pods app=client --names 'orders.*' --error SERVFAIL --duration 60s
  # Their queries for any name go unanswered
  netlab fault dns --pods app=client --error timeout
  # Every answer they get comes 2s late
  netlab fault dns --pods app=client --delay 2s";

const POD_EXAMPLES: &str = "\
Examples:
  # Delete the orders pods at once (their ReplicaSet makes new ones)
  netlab fault pod kill --pods app=orders --grace-period 0
  # Kill the app container of one orders pod
  netlab fault pod kill-container --pods app=orders --container app --mode one
  # The orders pods stop answering, and fail readiness, for 2 minutes
  netlab fault pod fail --pods app=orders --duration 2m";

const COMPONENT_EXAMPLES: &str = "\
Examples:
  netlab fault stop dns
  netlab fault pause kube-proxy node-1
  netlab fault stop apiserver --duration 30s
  netlab fault kill kubelet node-2";

const REGISTRY_EXAMPLES: &str = "\
Examples:
  netlab fault registry --repo 'library/nginx*' --status 429
  netlab fault registry --delay 5s
  netlab fault registry --repo library/busybox --unreachable";

const UPSTREAM_EXAMPLES: &str = "\
Examples:
  netlab fault upstream --unreachable
  netlab fault upstream --delay 2s --names 'example.*'
  netlab fault upstream --servfail --duration 60s";

const EXHAUST_EXAMPLES: &str = "\
Examples:
  netlab fault exhaust pod-cidr node-1
  netlab fault exhaust service-cidr
  netlab fault exhaust conntrack";

/// What every creating subcommand takes.
#[derive(Debug, Clone, Default, Args)]
pub struct CreateArgs {
    /// The fault's name. Default: generated, e.g. `net-client-orders-x7k2p`.
    #[arg(long)]
    pub name: Option<String>,

    /// How long the fault stays in force, a Go duration (`60s`, `5m`, `1h30m`). Default: until
    /// deleted.
    #[arg(long)]
    pub duration: Option<String>,

    /// `client`: print the object without creating it.
    #[arg(long = "dry-run", num_args = 0..=1, require_equals = true, default_missing_value = "client",
          value_parser = ["none", "client"], value_name = "none|client")]
    pub dry_run: Option<String>,
}

// === impl CreateArgs ===

impl CreateArgs {
    /// Whether to only print the object.
    pub fn dry_run(&self) -> bool {
        self.dry_run.as_deref() == Some("client")
    }
}

/// Which of the selected pods are affected (Chaos Mesh's `mode` and `value`).
#[derive(Debug, Clone, Args)]
pub struct ModeArgs {
    /// How many of the selected pods: all of them, one at random, a `fixed` number, a
    /// `fixed-percent`, or at most a `random-max-percent`.
    #[arg(long, default_value = "all", value_parser = Mode::NAMES)]
    pub mode: String,

    /// The number (`fixed`) or percentage (`fixed-percent`, `random-max-percent`) for --mode.
    #[arg(long)]
    pub value: Option<String>,
}

/// `netlab fault net`.
#[derive(Debug, Clone, Args)]
pub struct NetArgs {
    /// The pods whose traffic is affected, by label: `app=client[,tier=web]`.
    #[arg(long, value_name = "LABELS")]
    pub from: String,

    /// The pods on the other side, by label. Default: any destination.
    #[arg(long, value_name = "LABELS")]
    pub to: Option<String>,

    /// The other side as an IP or CIDR outside the selected pods (repeatable).
    #[arg(long = "to-cidr", value_name = "CIDR", value_delimiter = ',')]
    pub to_cidr: Vec<String>,

    /// Drop this share of packets: `30%` or `30`.
    #[arg(long, value_name = "PERCENT")]
    pub loss: Option<String>,

    /// Add this latency to every packet: `200ms`.
    #[arg(long, value_name = "DURATION")]
    pub delay: Option<String>,

    /// With --delay: spread the delay uniformly by up to this much either way: `50ms`.
    #[arg(long, value_name = "DURATION")]
    pub jitter: Option<String>,

    /// How much each packet's fate depends on the previous one's: `25%` or `25` (applies to
    /// every effect given).
    #[arg(long, value_name = "PERCENT")]
    pub correlation: Option<String>,

    /// Send this share of packets twice: `5%`.
    #[arg(long, value_name = "PERCENT")]
    pub duplicate: Option<String>,

    /// Flip a bit in this share of packets: `1%`.
    #[arg(long, value_name = "PERCENT")]
    pub corrupt: Option<String>,

    /// Limit the bandwidth (a tbf, action bandwidth): `1mbps` (bytes/s) or `8mbit` (bits/s).
    /// Not combinable with the netem effects.
    #[arg(long, value_name = "RATE")]
    pub rate: Option<String>,

    /// With --rate: bytes that may wait in the queue.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_LIMIT)]
    pub limit: u32,

    /// With --rate: the bucket size in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_BUFFER)]
    pub buffer: u32,

    /// Which way: `to` (from the --from pods to the other side, Chaos Mesh's default), `from`
    /// (the other way) or `both`.
    #[arg(long, value_parser = Direction::NAMES)]
    pub direction: Option<String>,

    /// Which of the --from pods.
    #[command(flatten)]
    pub mode: ModeArgs,

    /// Name, duration, dry run.
    #[command(flatten)]
    pub create: CreateArgs,
}

/// tbf's queue limit when --rate comes alone (Chaos Mesh's documented example value).
pub const DEFAULT_LIMIT: u32 = 20_971_520;
/// tbf's bucket when --rate comes alone (Chaos Mesh's documented example value).
pub const DEFAULT_BUFFER: u32 = 10_000;

/// `netlab fault partition`.
#[derive(Debug, Clone, Args)]
pub struct PartitionArgs {
    /// A node, then the nodes it is cut off from: the pods on them, in every namespace.
    #[arg(value_name = "NODE", conflicts_with_all = ["from", "to"])]
    pub nodes: Vec<String>,

    /// One side, by label: `app=client`.
    #[arg(long, value_name = "LABELS")]
    pub from: Option<String>,

    /// The other side, by label: `app=orders`.
    #[arg(long, value_name = "LABELS")]
    pub to: Option<String>,

    /// The other side as an IP or CIDR (repeatable; with --from).
    #[arg(long = "to-cidr", value_name = "CIDR", value_delimiter = ',')]
    pub to_cidr: Vec<String>,

    /// Which way traffic is cut: `both` (the default here), `to` or `from`.
    #[arg(long, default_value = "both", value_parser = Direction::NAMES)]
    pub direction: String,

    /// Which of the --from pods.
    #[command(flatten)]
    pub mode: ModeArgs,

    /// Name, duration, dry run.
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `netlab fault dns`.
#[derive(Debug, Clone, Args)]
pub struct DnsArgs {
    /// The pods whose queries are affected, by label: `app=client`.
    #[arg(long, value_name = "LABELS")]
    pub pods: String,

    /// The names affected, Chaos Mesh patterns (`orders.*`, `ord?rs.demo`; repeatable). Default:
    /// every name.
    #[arg(long, value_name = "PATTERN", value_delimiter = ',')]
    pub names: Vec<String>,

    /// What the DNS answers: an error rcode, no answer at all (`timeout`) or a random address.
    #[arg(long, value_name = "ERROR", ignore_case = true,
          value_parser = ["SERVFAIL", "NXDOMAIN", "REFUSED", "timeout", "random-ip"],
          required_unless_present = "delay", conflicts_with = "delay")]
    pub error: Option<String>,

    /// Answer correctly but this late: `2s`.
    #[arg(long, value_name = "DURATION")]
    pub delay: Option<String>,

    /// Which of the selected pods.
    #[command(flatten)]
    pub mode: ModeArgs,

    /// Name, duration, dry run.
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `netlab fault pod`.
#[derive(Debug, Clone, Args)]
pub struct PodArgs {
    /// `kill` (delete the pods), `fail` (they stop answering for the duration) or
    /// `kill-container`; Chaos Mesh's names work too.
    #[arg(value_name = "ACTION",
          value_parser = ["kill", "fail", "kill-container", "pod-kill", "pod-failure", "container-kill"])]
    pub action: String,

    /// The pods, by label: `app=orders`.
    #[arg(long, value_name = "LABELS")]
    pub pods: String,

    /// For kill-container: which containers (repeatable; required there).
    #[arg(long, value_name = "NAME", value_delimiter = ',',
          required_if_eq_any = [("action", "kill-container"), ("action", "container-kill")])]
    pub container: Vec<String>,

    /// For kill: seconds the pods get to terminate (0: at once).
    #[arg(long = "grace-period", value_name = "SECONDS")]
    pub grace_period: Option<i64>,

    /// Which of the selected pods.
    #[command(flatten)]
    pub mode: ModeArgs,

    /// Name, duration, dry run.
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `netlab fault stop|pause|kill`.
#[derive(Debug, Clone, Args)]
pub struct ComponentArgs {
    /// The component.
    #[arg(value_name = "COMPONENT", value_parser = clap::builder::PossibleValuesParser::new(Component::NAMES.iter().copied()))]
    pub component: String,

    /// For kube-proxy and kubelet: which nodes' (default: every node's).
    #[arg(value_name = "NODE")]
    pub nodes: Vec<String>,

    /// Name, duration, dry run.
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `netlab fault registry`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("effect").required(true).args(["status", "delay", "unreachable"])))]
pub struct RegistryArgs {
    /// The repositories affected, patterns as in DNSChaos (`library/nginx*`; repeatable).
    /// Default: every repository.
    #[arg(long = "repo", value_name = "PATTERN", value_delimiter = ',')]
    pub repos: Vec<String>,

    /// Answer pulls with this HTTP status: 401, 403, 404, 429, 500, 502 or 503.
    #[arg(long, value_name = "CODE")]
    pub status: Option<String>,

    /// Answer pulls this late: `5s`.
    #[arg(long, value_name = "DURATION")]
    pub delay: Option<String>,

    /// Refuse connections.
    #[arg(long)]
    pub unreachable: bool,

    /// Name, duration, dry run.
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `netlab fault upstream`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("effect").required(true).args(["unreachable", "delay", "servfail"])))]
pub struct UpstreamArgs {
    /// Nothing answers: queries time out.
    #[arg(long)]
    pub unreachable: bool,

    /// Answers come this late: `2s`.
    #[arg(long, value_name = "DURATION")]
    pub delay: Option<String>,

    /// Every answer is SERVFAIL.
    #[arg(long)]
    pub servfail: bool,

    /// The names affected, DNSChaos patterns (repeatable). Default: every name.
    #[arg(long, value_name = "PATTERN", value_delimiter = ',')]
    pub names: Vec<String>,

    /// Name, duration, dry run.
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `netlab fault exhaust`.
#[derive(Debug, Clone, Args)]
pub struct ExhaustArgs {
    /// What is used up.
    #[arg(value_name = "WHAT", value_parser = clap::builder::PossibleValuesParser::new(ExhaustionAction::NAMES.iter().copied()))]
    pub what: String,

    /// For pod-cidr and conntrack: which nodes (default: every node).
    #[arg(value_name = "NODE")]
    pub nodes: Vec<String>,

    /// Name, duration, dry run.
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `netlab fault list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Only faults of this kind (`networkchaos`, `DNSChaos`, ...).
    #[arg(long)]
    pub kind: Option<String>,
}

/// `netlab fault delete`.
#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    /// The faults' names, as `netlab fault list` shows them.
    #[arg(value_name = "NAME", required_unless_present = "all", conflicts_with = "all")]
    pub names: Vec<String>,

    /// Delete every fault (of --kind, if given).
    #[arg(long)]
    pub all: bool,

    /// Only faults of this kind (`networkchaos`, `DNSChaos`, ...).
    #[arg(long)]
    pub kind: Option<String>,
}
