//! The node's kernel, as kube-proxy sees it: `iptables-restore`, `ipvsadm-restore`,
//! `iptables-save` and `conntrack -D` behind one trait ([`Dataplane`]), so the sync task never
//! knows whether it talks to a node or to a test.
//!
//! [`Kernel`] speaks gRPC to the node-agent's `netlab.node.v1.Kernel` and
//! `netlab.node.v1.Conntrack`; `fake::FakeDataplane` (feature `test-util`) applies the same
//! requests to netlab-kernel's model in memory and records them.

use std::time::Duration;

use netlab_kernel::conntrack::Filter;
use netlab_proto::node::v1::{
    self as pb, ConntrackDeleteRequest, RestoreRequest, SaveRequest, Table,
    conntrack_client::ConntrackClient, kernel_client::KernelClient,
};
use tonic::{
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint},
};

use crate::{Error, Result};

/// The node's kernel, as kube-proxy sees it.
#[async_trait::async_trait]
pub trait Dataplane: Send + Sync + 'static {
    /// Applies `req` atomically; returns how many rules the tables hold afterwards.
    async fn restore(&self, req: RestoreRequest) -> Result<u64>;
    /// Prints `table` as the real tool would.
    async fn save(&self, table: Table) -> Result<String>;
    /// `conntrack -D` with `filter`; returns how many flows went. A kernel without a conntrack
    /// table (a double that only records rules) keeps this default, as a node without the
    /// conntrack tool would: the proxy then leaves stale flows to time out.
    async fn delete_conntrack(&self, filter: Filter) -> Result<u64> {
        let _ = filter;
        Err(Error::kernel("Conntrack.Delete", tonic::Status::unimplemented("no conntrack table")))
    }
}

/// Longest wait for one kernel call (a 10,000-Service restore is some 15 MB of text).
const RESTORE_TIMEOUT: Duration = Duration::from_secs(60);

type Interceptor = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;

/// The node-agent's `netlab.node.v1.Kernel` and `netlab.node.v1.Conntrack` over gRPC, on one
/// connection.
#[derive(Clone)]
pub struct Kernel {
    client: KernelClient<InterceptedService<Channel, Interceptor>>,
    conntrack: ConntrackClient<InterceptedService<Channel, Interceptor>>,
}

// === impl Kernel ===

impl Kernel {
    /// A client for the kernel at `addr` (`http://host:port` or `host:port`). Connects lazily and
    /// reconnects on its own, so the proxy may start before the node-agent.
    pub fn new(addr: &str) -> Result<Self> {
        let url = if addr.contains("://") { addr.to_string() } else { format!("http://{addr}") };
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|source| Error::KernelAddress { url, source })?
            .connect_timeout(Duration::from_secs(3))
            // A kernel that hangs must not stall syncing forever: time out, retry in full.
            .timeout(RESTORE_TIMEOUT)
            .tcp_nodelay(true);
        let channel = endpoint.connect_lazy();
        let inject = netlab_telemetry::propagation::inject as Interceptor;
        let client = KernelClient::with_interceptor(channel.clone(), inject)
            .max_decoding_message_size(netlab_proto::node::v1::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(netlab_proto::node::v1::MAX_MESSAGE_BYTES);
        let conntrack = ConntrackClient::with_interceptor(channel, inject);
        Ok(Self { client, conntrack })
    }
}

#[async_trait::async_trait]
impl Dataplane for Kernel {
    async fn restore(&self, req: RestoreRequest) -> Result<u64> {
        let resp = self.client.clone().restore(req).await.map_err(|s| Error::kernel("Restore", s))?;
        Ok(resp.into_inner().rules)
    }

    async fn save(&self, table: Table) -> Result<String> {
        let req = SaveRequest { table: table as i32 };
        let resp = self.client.clone().save(req).await.map_err(|s| Error::kernel("Save", s))?;
        Ok(resp.into_inner().text)
    }

    async fn delete_conntrack(&self, filter: Filter) -> Result<u64> {
        let protocol = pb::Protocol::from(filter.protocol);
        let req = ConntrackDeleteRequest {
            protocol: protocol as i32,
            orig_dst: filter.orig_dst.map(|ip| ip.to_string()),
            orig_dst_port: filter.orig_dst_port.map(u32::from),
            dst_nat: filter.dst_nat.map(|ip| ip.to_string()),
        };
        let resp =
            self.conntrack.clone().delete(req).await.map_err(|s| Error::kernel("Conntrack.Delete", s))?;
        Ok(resp.into_inner().deleted)
    }
}

#[cfg(any(test, feature = "test-util"))]
pub mod fake;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_kernel_address_may_leave_out_the_scheme() {
        assert!(Kernel::new("127.0.0.1:10250").is_ok());
        assert!(Kernel::new("http://node-1:10250").is_ok());
        let err = Kernel::new("http://bad host:1").err().expect("no address");
        assert!(matches!(err, Error::KernelAddress { .. }), "{err}");
        assert!(std::error::Error::source(&err).is_some(), "the cause is kept");
    }

    #[tokio::test]
    async fn a_kernel_without_conntrack_says_unimplemented() {
        struct RulesOnly;
        #[async_trait::async_trait]
        impl Dataplane for RulesOnly {
            async fn restore(&self, _: RestoreRequest) -> Result<u64> {
                Ok(0)
            }
            async fn save(&self, _: Table) -> Result<String> {
                Ok(String::new())
            }
        }
        let err =
            RulesOnly.delete_conntrack(Filter::protocol(netlab_kernel::Protocol::Udp)).await.unwrap_err();
        assert!(err.is_unimplemented(), "{err}");
    }
}
