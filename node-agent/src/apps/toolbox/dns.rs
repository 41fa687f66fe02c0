//! The DNS commands of the toolbox image (netshoot's `bind-tools` and glibc's `getent`):
//! `dig`, `nslookup`, `host` and `getent hosts`. Their queries are real DNS messages through the
//! pod's network, so kube-proxy's DNAT of the kube-dns ClusterIP, NetworkPolicy and a dead DNS
//! pod show in their output exactly as in a real cluster.
//!
//! dig, nslookup and host share BIND's own lookup engine ([`dighost`], `bin/dig/dighost.c`),
//! which is *not* glibc's: it only searches names with fewer than ndots dots and only continues
//! on NXDOMAIN. `getent` is glibc's, on top of the pod's stub resolver
//! ([`crate::resolver::Resolver`]). [`text`] is BIND's presentation format.

use super::{Output, Pod};
use crate::{podnet::PodNetwork, resolver::Ids};

mod dig;
mod dighost;
mod getent;
mod host;
mod nslookup;
mod text;

#[cfg(test)]
mod tests;

/// The DNS commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Command {
    Dig,
    Nslookup,
    Host,
    Getent,
}

/// What a command printed and its exit status (the DNS commands print when they are done).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct CommandOutput {
    /// Standard output.
    stdout: String,
    /// Standard error.
    stderr: String,
    /// Exit status.
    code: i32,
}

/// What a DNS command uses of its pod: its resolv.conf and its network, and the per-run inputs
/// that tests pin.
struct Ctx<'a> {
    /// The content of `/etc/resolv.conf`.
    resolv_conf: &'a str,
    /// Where the queries go.
    net: &'a dyn PodNetwork,
    /// Query ids and clock.
    env: Env,
}

/// Per-run inputs that tests pin: the query ids and the clock dig prints in `;; WHEN:`.
#[derive(Debug, Clone, Default)]
struct Env {
    ids: Ids,
    now: Option<jiff::Timestamp>,
}

/// Runs `command` in `pod` and returns its exit code.
pub(super) async fn run(command: Command, args: &[String], pod: &dyn Pod, out: &Output) -> i32 {
    let cx = Ctx { resolv_conf: pod.resolv_conf(), net: pod.network(), env: Env::default() };
    let result = match command {
        Command::Dig => dig::run(args, &cx).await,
        Command::Nslookup => nslookup::run(args, &cx).await,
        Command::Host => host::run(args, &cx).await,
        Command::Getent => getent::run(args, &cx).await,
    };
    out.out(result.stdout);
    out.err(result.stderr);
    result.code
}

// === impl Env ===

impl Env {
    /// dig's `;; WHEN:` text (`Thu Nov 26 08:31:14 UTC 2026`; pods run in UTC).
    fn when(&self) -> String {
        let now = self.now.unwrap_or_else(jiff::Timestamp::now);
        now.strftime("%a %b %d %H:%M:%S UTC %Y").to_string()
    }
}
