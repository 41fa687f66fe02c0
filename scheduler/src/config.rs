//! The scheduler's flags, named as kube-scheduler names them where it has them.

/// Default apiserver address.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:6443";
/// The profile name pods ask for in `spec.schedulerName` (and the Events' `source.component`).
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
/// Bindings (and unschedulable status writes) in flight at once. kube-scheduler binds in
/// goroutines limited only by its client's QPS; a bound keeps a slow apiserver from piling up
/// requests while letting the apiserver's group commit batch many bindings into one fsync.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

/// netlab-scheduler: the lab's kube-scheduler.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "netlab-scheduler", version, about)]
pub struct Config {
    /// The apiserver.
    #[arg(long, env = "NETLAB_SCHEDULER_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,

    /// Schedule only pods whose spec.schedulerName is this.
    #[arg(long, env = "NETLAB_SCHEDULER_SCHEDULER_NAME", default_value = DEFAULT_SCHEDULER_NAME)]
    pub scheduler_name: String,

    /// Bindings and status writes in flight at once.
    #[arg(long, env = "NETLAB_SCHEDULER_MAX_IN_FLIGHT", default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,

    /// Where /healthz and /readyz are served (kube-scheduler's port is 10259).
    #[arg(long, env = "NETLAB_SCHEDULER_HEALTHZ_BIND_ADDRESS", default_value = "0.0.0.0:10259")]
    pub healthz_bind_address: std::net::SocketAddr,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub telemetry: netlab_telemetry::Args,
}
