//! The node's kernel API (`netlab.node.v1.Kernel`) on the kubelet's port: kube-proxy's
//! iptables-restore/ipvsadm-restore, the wire from other nodes, `netlab exec` and the
//! inspection commands. Errors become gRPC statuses here and nowhere else.

use std::{net::SocketAddr, pin::Pin, sync::Arc};

use futures::Stream;
use netlab_proto::node::v1::{
    self as pb, Format, Table,
    kernel_server::{Kernel, KernelServer},
    segment::Kind,
};
use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, info_span, warn};

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

/// Serves the kernel API on `addr` until `shutdown`.
pub async fn serve(exec: ExecContext, addr: SocketAddr, shutdown: CancellationToken) -> crate::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| crate::Error::io(format!("binding the kernel API on {addr}"), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| crate::Error::io("reading the kernel API's address", e))?;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|s| {
        if let Ok(s) = &s {
            let _ = s.set_nodelay(true);
        }
        s
    });
    let svc = KernelServer::new(KernelService { dp: exec.dp.clone(), exec })
        .max_decoding_message_size(pb::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(pb::MAX_MESSAGE_BYTES);
    tokio::spawn(async move {
        let res = tonic::transport::Server::builder()
            .trace_fn(netlab_telemetry::propagation::grpc_server_span)
            .add_service(svc)
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
    async fn restore(&self, req: Request<pb::RestoreRequest>) -> Result<Response<pb::RestoreResponse>, Status> {
        let req = req.into_inner();
        let format = Format::try_from(req.format).unwrap_or(Format::Unspecified);
        let span = info_span!("restore", netlab.kernel.format = ?format, netlab.kernel.bytes = req.text.len(), k8s.node.name = %self.dp.node_name());
        let _g = span.enter();
        let rules = self.dp.with_state(|st| -> Result<u64, String> {
            match format {
                Format::Iptables => {
                    for line in &req.ensure {
                        st.tables.ensure(line).map_err(|e| e.to_string())?;
                    }
                    st.tables.restore(&req.text, req.noflush).map_err(|e| e.to_string())?;
                    Ok(st.tables.rule_count() as u64)
                }
                Format::Ipvs => {
                    st.ipvs.restore(&req.text).map_err(|e| e.to_string())?;
                    Ok(st.ipvs.len() as u64)
                }
                Format::Unspecified => Err("format must be IPTABLES or IPVS".into()),
            }
        });
        rules
            .map(|rules| Response::new(pb::RestoreResponse { rules }))
            .map_err(Status::invalid_argument)
    }

    async fn save(&self, req: Request<pb::SaveRequest>) -> Result<Response<pb::SaveResponse>, Status> {
        let table = Table::try_from(req.into_inner().table).unwrap_or(Table::Unspecified);
        let now = self.dp.now();
        let text = self.dp.with_state(|st| match table {
            Table::IptablesSave => Ok(with_save_headers(&st.tables.save())),
            Table::Ipvsadm => Ok(st.ipvs.list()),
            Table::Conntrack => Ok(format!("{}{}\n", st.conntrack.list(now), st.conntrack.summary(now))),
            Table::Routes => Ok(st.routes.show()),
            Table::Unspecified => Err(Status::invalid_argument("table must be IPTABLES_SAVE, IPVSADM, CONNTRACK or ROUTES")),
        })?;
        Ok(Response::new(pb::SaveResponse { text }))
    }

    type DialStream = BoxStream<pb::Segment>;

    async fn dial(&self, req: Request<Streaming<pb::Segment>>) -> Result<Response<Self::DialStream>, Status> {
        let mut inbound = req.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let dp = self.dp.clone();
        let span = tracing::Span::current();
        tokio::spawn(tracing::Instrument::instrument(async move {
            let open = match inbound.message().await {
                Ok(Some(pb::Segment { kind: Some(Kind::Open(open)) })) => open,
                _ => return,
            };
            match dp.accept_from_wire(&open) {
                Ok(Delivery::Stream(stream)) => {
                    if tx.send(pb::Segment { kind: Some(Kind::Accept(pb::Accept {})) }).await.is_ok() {
                        pump(stream, inbound, tx).await;
                    }
                }
                Ok(Delivery::Refused) => {
                    let _ = tx.send(pb::Segment { kind: Some(Kind::Close(pb::Close { refused: true })) }).await;
                }
                Ok(Delivery::Dropped(why)) | Err(why) => {
                    // A dropped SYN is never answered: hold the stream until the client gives up.
                    tracing::debug!(source = %open.source, destination = %open.destination, %why, "Dropped.");
                    while let Ok(Some(_)) = inbound.message().await {}
                    drop(tx);
                }
            }
        }, span));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx).map(Ok))))
    }

    type ExecStream = BoxStream<pb::ExecOutput>;

    async fn exec(&self, req: Request<pb::ExecRequest>) -> Result<Response<Self::ExecStream>, Status> {
        let rx = crate::exec::start(&self.exec, req.into_inner())?;
        Ok(Response::new(Box::pin(ReceiverStream::new(rx).map(Ok))))
    }
}

/// iptables-save's header and footer lines around each table.
fn with_save_headers(text: &str) -> String {
    let when = jiff::Zoned::now().strftime("%a %b %e %H:%M:%S %Y").to_string();
    let mut out = String::with_capacity(text.len() + 200);
    for line in text.lines() {
        if line.starts_with('*') {
            out.push_str(&format!("# Generated by iptables-save v1.8.9 on {when}\n"));
        }
        out.push_str(line);
        out.push('\n');
        if line == "COMMIT" {
            out.push_str(&format!("# Completed on {when}\n"));
        }
    }
    out
}
