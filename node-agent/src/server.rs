//! The node's kernel API (`netlab.node.v1.Kernel` and `netlab.node.v1.Conntrack`) on the
//! kubelet's port: kube-proxy's iptables-restore/ipvsadm-restore and `conntrack -D`, the wire
//! from other nodes, `netlab exec` and the inspection commands. Restores, saves and deletes are
//! netlab-kernel's ([`netlab_kernel::netns::Netns`]); this module only converts them from and to gRPC, and its
//! errors become gRPC statuses here and nowhere else.

use std::{
    net::{AddrParseError, IpAddr, SocketAddr},
    pin::Pin,
    sync::Arc,
};

use futures::Stream;
use netlab_kernel::{
    api,
    conntrack::{Conntrack, Filter},
    netns::{Restore, RestoreError},
};
use netlab_proto::node::v1::{
    self as pb,
    conntrack_server::{Conntrack as ConntrackApi, ConntrackServer},
    kernel_server::{Kernel, KernelServer},
    segment::Kind,
};
use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, field::Empty, info, info_span, warn};

use crate::{
    dataplane::{Dataplane, Delivery, pump},
    exec::ExecContext,
};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The gRPC service.
pub struct KernelService {
    dp: Arc<Dataplane>,
    exec: ExecContext,
}

/// The conntrack service: `conntrack -D` against the node's table.
pub struct ConntrackService {
    dp: Arc<Dataplane>,
}

/// Serves the kernel API on `addr` until `shutdown`.
pub async fn serve(
    exec: ExecContext,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> crate::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| crate::Error::io(format!("binding the kernel API on {addr}"), e))?;
    let local = listener.local_addr().map_err(|e| crate::Error::io("reading the kernel API's address", e))?;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|s| {
        if let Ok(s) = &s {
            let _ = s.set_nodelay(true);
        }
        s
    });
    let conntrack = ConntrackServer::new(ConntrackService { dp: exec.dp.clone() });
    let svc = KernelServer::new(KernelService { dp: exec.dp.clone(), exec })
        .max_decoding_message_size(pb::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(pb::MAX_MESSAGE_BYTES);
    tokio::spawn(async move {
        let res = tonic::transport::Server::builder()
            .trace_fn(netlab_telemetry::propagation::grpc_server_span)
            .add_service(svc)
            .add_service(conntrack)
            .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
            .await;
        if let Err(error) = res {
            warn!(%error, "The kernel API stopped.");
        }
    });
    info!(addr = %local, "Serving the kernel API.");
    Ok(local)
}

#[tonic::async_trait]
impl Kernel for KernelService {
    async fn restore(
        &self,
        req: Request<pb::RestoreRequest>,
    ) -> Result<Response<pb::RestoreResponse>, Status> {
        let req = req.into_inner();
        // The span names the format as the request does (`Iptables`, `Ipvs`, `Unspecified`).
        let named = pb::Format::try_from(req.format).unwrap_or(pb::Format::Unspecified);
        let span = info_span!("restore", netlab.kernel.format = ?named, netlab.kernel.bytes = req.text.len(), k8s.node.name = %self.dp.node_name());
        let _g = span.enter();
        let format = api::format(req.format).ok_or(RequestError::NoFormat)?;
        let restore = Restore { format, text: &req.text, noflush: req.noflush, ensure: &req.ensure };
        let rules = self.dp.with_state(|st| st.restore(restore)).map_err(RequestError::Restore)?;
        Ok(Response::new(pb::RestoreResponse { rules }))
    }

    async fn save(&self, req: Request<pb::SaveRequest>) -> Result<Response<pb::SaveResponse>, Status> {
        let table = req.into_inner().table;
        if table == pb::Table::Enis as i32 {
            let ipamd = self.exec.ipamd.read().unwrap_or_else(|e| e.into_inner()).clone().ok_or_else(|| {
                Status::failed_precondition(format!(
                    "node {} runs no ipamd: its CNI is not the AWS VPC CNI (--cni aws-vpc-cni), or ipamd has not started yet",
                    self.dp.node_name()
                ))
            })?;
            let text = serde_json::to_string_pretty(&ipamd.enis()).unwrap_or_default();
            return Ok(Response::new(pb::SaveResponse { text }));
        }
        let table = api::table(table).ok_or(RequestError::NoTable)?;
        let now = self.dp.now();
        let text = self.dp.with_state(|st| st.save(table, now));
        Ok(Response::new(pb::SaveResponse { text }))
    }

    type DialStream = BoxStream<pb::Segment>;

    async fn dial(&self, req: Request<Streaming<pb::Segment>>) -> Result<Response<Self::DialStream>, Status> {
        let mut inbound = req.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let dp = self.dp.clone();
        let span = tracing::Span::current();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let open = match inbound.message().await {
                    Ok(Some(pb::Segment { kind: Some(Kind::Open(open)) })) => open,
                    _ => return,
                };
                // A connection that cannot be delivered is dropped, as a SYN to nowhere is.
                let delivery =
                    dp.accept_from_wire(&open).await.unwrap_or_else(|e| Delivery::Dropped(e.to_string()));
                match delivery {
                    Delivery::Stream(stream) => {
                        if tx.send(pb::Segment { kind: Some(Kind::Accept(pb::Accept {})) }).await.is_ok() {
                            pump(stream, inbound, tx).await;
                        }
                    }
                    Delivery::Refused => {
                        let _ = tx
                            .send(pb::Segment { kind: Some(Kind::Close(pb::Close { refused: true })) })
                            .await;
                    }
                    Delivery::Dropped(why) => {
                        // A dropped SYN is never answered: hold the stream until the client gives up.
                        tracing::debug!(source = %open.source, destination = %open.destination, %why, "Dropped.");
                        while let Ok(Some(_)) = inbound.message().await {}
                        drop(tx);
                    }
                }
            },
            span,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx).map(Ok))))
    }

    type ExecStream = BoxStream<pb::ExecOutput>;

    async fn exec(&self, req: Request<pb::ExecRequest>) -> Result<Response<Self::ExecStream>, Status> {
        let rx = crate::exec::start(&self.exec, req.into_inner())?;
        Ok(Response::new(Box::pin(ReceiverStream::new(rx).map(Ok))))
    }
}

#[tonic::async_trait]
impl ConntrackApi for ConntrackService {
    async fn delete(
        &self,
        req: Request<pb::ConntrackDeleteRequest>,
    ) -> Result<Response<pb::ConntrackDeleteResponse>, Status> {
        let filter = filter(req.into_inner())?;
        let span = info_span!(
            "conntrack delete",
            netlab.conntrack.filter = %filter,
            netlab.conntrack.deleted = Empty,
            k8s.node.name = %self.dp.node_name(),
        );
        let _g = span.enter();
        let now = self.dp.now();
        let deleted = self.dp.with_state(|st| st.delete_conntrack(&filter, now));
        span.record("netlab.conntrack.deleted", deleted);
        debug!(%filter, deleted, "{}", Conntrack::deleted_summary(deleted));
        Ok(Response::new(pb::ConntrackDeleteResponse { deleted: deleted as u64 }))
    }
}

/// Why a request was refused: each becomes `INVALID_ARGUMENT` with the tool's message.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// A restore without a format.
    #[error("{}", api::FORMAT_REQUIRED)]
    NoFormat,
    /// A save without a table.
    #[error("table must be IPTABLES_SAVE, IPVSADM, CONNTRACK or ROUTES")]
    NoTable,
    /// The kernel refused the restore (the message names the line, as the tool does).
    #[error(transparent)]
    Restore(RestoreError),
    /// A conntrack delete without a protocol.
    #[error("protocol must be TCP, UDP or SCTP (-p)")]
    NoProtocol,
    /// A conntrack delete with an address that is none.
    #[error("Bad parameter `{option}': invalid IP address {value:?}")]
    BadAddress {
        /// The conntrack option.
        option: &'static str,
        /// What was given.
        value: String,
        /// Why it is no address.
        #[source]
        source: AddrParseError,
    },
    /// A conntrack delete with port 0 or above 65535.
    #[error("Bad parameter `--dport': invalid port {0}")]
    BadPort(u32),
}

/// The one place the kernel API's errors become gRPC statuses.
impl From<RequestError> for Status {
    fn from(e: RequestError) -> Self {
        Status::invalid_argument(e.to_string())
    }
}

/// The request as a conntrack filter; the error says which option is bad, as conntrack does.
fn filter(req: pb::ConntrackDeleteRequest) -> Result<Filter, RequestError> {
    let protocol = api::protocol(req.protocol).ok_or(RequestError::NoProtocol)?;
    let ip = |option: &'static str, v: Option<String>| -> Result<Option<IpAddr>, RequestError> {
        v.map(|value| value.parse().map_err(|source| RequestError::BadAddress { option, value, source }))
            .transpose()
    };
    let port = req
        .orig_dst_port
        .map(|p| u16::try_from(p).ok().filter(|p| *p != 0).ok_or(RequestError::BadPort(p)))
        .transpose()?;
    Ok(Filter {
        protocol,
        orig_dst: ip("--orig-dst", req.orig_dst)?,
        orig_dst_port: port,
        dst_nat: ip("--dst-nat", req.dst_nat)?,
    })
}

#[cfg(test)]
mod tests {
    use std::{net::SocketAddr, time::Duration};

    use netlab_kernel::{
        Protocol,
        conntrack::{Key, Nat},
    };
    use netlab_proto::node::v1::{Format, Table, conntrack_client::ConntrackClient};

    use super::*;
    use crate::{cluster::ClusterView, dataplane::Dataplane, sockets::SocketTable};

    fn key(protocol: Protocol, src: &str, dst: &str) -> Key {
        Key { protocol, src: src.parse().unwrap(), dst: dst.parse().unwrap() }
    }

    fn nat(dst: &str) -> Nat {
        Nat { dst: dst.parse().unwrap(), src: None }
    }

    fn req(
        orig_dst: Option<&str>,
        orig_dst_port: Option<u32>,
        dst_nat: Option<&str>,
    ) -> pb::ConntrackDeleteRequest {
        pb::ConntrackDeleteRequest {
            protocol: pb::Protocol::Udp as i32,
            orig_dst: orig_dst.map(String::from),
            orig_dst_port,
            dst_nat: dst_nat.map(String::from),
        }
    }

    /// node-1's dataplane, with nothing programmed.
    fn node() -> Arc<Dataplane> {
        Arc::new(Dataplane::new(
            "node-1".into(),
            "127.0.0.1".parse().unwrap(),
            vec!["10.96.0.0/12".parse().unwrap()],
            SocketTable::new(),
            Arc::new(ClusterView::default()),
        ))
    }

    /// Serves `dp`'s kernel API on a free loopback port until the guard drops.
    async fn start(dp: &Arc<Dataplane>) -> (SocketAddr, tokio_util::sync::DropGuard) {
        let exec = crate::exec::ExecContext {
            dp: dp.clone(),
            pods_dir: std::env::temp_dir(),
            kubernetes_service: "10.96.0.1".parse().unwrap(),
            ipamd: Default::default(),
        };
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone().drop_guard();
        (serve(exec, SocketAddr::from(([127, 0, 0, 1], 0)), shutdown).await.unwrap(), stop)
    }

    /// kube-proxy's deletes over real gRPC, against the node's table as `Save` prints it.
    #[tokio::test]
    async fn conntrack_delete_forgets_the_matching_flows() {
        let dp = node();
        let now = dp.now();
        dp.with_state(|st| {
            for (p, src, dst, to) in [
                (Protocol::Udp, "10.244.1.3:41000", "10.96.0.10:53", "10.244.2.5:53"),
                (Protocol::Udp, "10.244.1.3:41001", "10.96.0.10:53", "10.244.2.6:53"),
                (Protocol::Udp, "172.18.0.9:50000", "172.18.0.2:30053", "10.244.2.5:53"),
                (Protocol::Tcp, "10.244.1.3:41002", "10.96.0.10:53", "10.244.2.5:53"),
            ] {
                st.conntrack.insert(key(p, src, dst), nat(to), now).unwrap();
            }
        });
        let (addr, _stop) = start(&dp).await;
        let mut client = ConntrackClient::connect(format!("http://{addr}")).await.unwrap();
        let mut delete = async |r| client.delete(r).await.map(|r| r.into_inner().deleted);

        assert_eq!(
            delete(req(Some("10.96.0.10"), None, Some("10.244.2.5"))).await.unwrap(),
            1,
            "ClearEntriesForNAT"
        );
        assert_eq!(
            delete(req(None, Some(30053), Some("10.244.2.5"))).await.unwrap(),
            1,
            "ClearEntriesForPortNAT"
        );
        assert_eq!(
            delete(req(Some("10.96.0.10"), None, Some("10.244.2.5"))).await.unwrap(),
            0,
            "already gone"
        );
        let list = dp.with_state(|st| st.conntrack.list(now + Duration::from_secs(1)));
        assert!(list.contains("sport=41001"), "the other endpoint's flow stays:\n{list}");
        assert!(list.contains("tcp "), "TCP flows stay:\n{list}");
        assert_eq!(list.lines().count(), 2, "{list}");
        assert_eq!(delete(req(Some("10.96.0.10"), None, None)).await.unwrap(), 1, "ClearEntriesForIP");

        let bad = delete(req(Some("10.96.0.300"), None, None)).await.unwrap_err();
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
        assert_eq!(bad.message(), "Bad parameter `--orig-dst': invalid IP address \"10.96.0.300\"");
        let no_proto = pb::ConntrackDeleteRequest { protocol: 0, ..req(None, None, None) };
        assert_eq!(delete(no_proto).await.unwrap_err().code(), tonic::Code::InvalidArgument);
        assert_eq!(
            delete(req(None, Some(70000), None)).await.unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }

    /// kube-proxy's restores and saves over real gRPC: the kernel model's answers, its refusals
    /// as INVALID_ARGUMENT with the line named as iptables-restore names it.
    #[tokio::test]
    async fn restores_and_saves_are_the_kernel_models() {
        let dp = node();
        let (addr, _stop) = start(&dp).await;
        let mut client =
            netlab_proto::node::v1::kernel_client::KernelClient::connect(format!("http://{addr}"))
                .await
                .unwrap();
        let restore = |text: &str, format: Format| pb::RestoreRequest {
            format: format as i32,
            text: text.into(),
            noflush: true,
            ensure: vec![
                "nat PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES".into(),
            ],
        };
        let good = "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\nCOMMIT\n";
        let rules = client.restore(restore(good, Format::Iptables)).await.unwrap().into_inner().rules;
        assert_eq!(rules, 2, "the rule and the ensured jump");

        let bad =
            client.restore(restore("*nat\n-A KUBE-NOWHERE -j ACCEPT\nCOMMIT\n", Format::Iptables)).await;
        let bad = bad.unwrap_err();
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
        assert!(bad.message().starts_with("iptables-restore: line 2 failed: "), "{}", bad.message());
        let none = client.restore(restore(good, Format::Unspecified)).await.unwrap_err();
        assert_eq!(none.code(), tonic::Code::InvalidArgument);

        let save = |table: Table| pb::SaveRequest { table: table as i32 };
        let text = client.save(save(Table::IptablesSave)).await.unwrap().into_inner().text;
        assert!(text.starts_with("# Generated by iptables-save"), "{text}");
        assert!(
            text.contains("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000"),
            "the refused restore changed nothing:\n{text}"
        );
        let ipvs = client.save(save(Table::Ipvsadm)).await.unwrap().into_inner().text;
        assert!(ipvs.starts_with("IP Virtual Server"), "{ipvs}");
        assert_eq!(
            client.save(save(Table::Unspecified)).await.unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}
