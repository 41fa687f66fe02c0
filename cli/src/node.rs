//! Talking to a node's kernel API (the kubelet's port, `netlab.node.v1.Kernel`): `netlab exec`
//! and the `netlab node iptables-save|ipvsadm|conntrack|routes` inspection commands. The node is
//! found as kubectl finds a kubelet: its Node object's InternalIP and
//! `status.daemonEndpoints.kubeletEndpoint.Port`.

use std::io::Write;

use netlab_proto::{
    apiserver::v1::Resource,
    node::v1::{ExecRequest, SaveRequest, Table, exec_output::Kind, kernel_client::KernelClient},
};
use serde_json::Value;
use tonic::transport::Channel;

use crate::{client::Cluster, report::Problem};

type Inject = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;
/// A node's kernel API client that carries this run's trace context.
type Kernel = KernelClient<tonic::service::interceptor::InterceptedService<Channel, Inject>>;

/// The kernel API of node `node`.
pub(crate) async fn kernel(api: &mut impl Cluster, node: &str) -> Result<Kernel, Problem> {
    let obj = api.get(Resource::Nodes, "", node).await?;
    let (ip, port) = endpoint(&obj).ok_or_else(|| {
        Problem::client(format!("node {node} has no InternalIP and kubelet port in its status yet"))
    })?;
    let url = format!("http://{}", std::net::SocketAddr::new(ip, port));
    let ep = tonic::transport::Endpoint::from_shared(url.clone())
        .map_err(|e| Problem::client(format!("bad kubelet address {url}: {e}")))?
        .tcp_nodelay(true)
        .connect_timeout(std::time::Duration::from_secs(5));
    let ch = ep.connect().await.map_err(|_| {
        Problem::client(format!(
            "unable to upgrade connection: dial tcp {}:{port}: connect: connection refused",
            ip
        ))
    })?;
    Ok(KernelClient::with_interceptor(ch, crate::client::with_traceparent as Inject)
        .max_decoding_message_size(netlab_proto::node::v1::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(netlab_proto::node::v1::MAX_MESSAGE_BYTES))
}

/// InternalIP and kubelet port from a Node object.
fn endpoint(node: &Value) -> Option<(std::net::IpAddr, u16)> {
    let ip = node["status"]["addresses"].as_array()?.iter().find(|a| a["type"] == "InternalIP")?["address"]
        .as_str()?
        .parse()
        .ok()?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"].as_u64()?;
    Some((ip, u16::try_from(port).ok()?))
}

/// `netlab node iptables-save|ipvsadm|conntrack|routes NODE`: the table as the real tool prints it.
pub(crate) async fn save(
    api: &mut impl Cluster,
    node: &str,
    table: Table,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<(), Problem> {
    let mut k = kernel(api, node).await?;
    let text = k
        .save(SaveRequest { table: table as i32 })
        .await
        .map_err(|s| Problem::client(s.message().to_string()))?
        .into_inner()
        .text;
    if table == Table::Conntrack {
        // conntrack prints its count line on stderr.
        let (flows, summary) = text.trim_end().rsplit_once('\n').unwrap_or(("", text.trim_end()));
        if !flows.is_empty() {
            let _ = writeln!(out, "{flows}");
        }
        let _ = writeln!(err, "{summary}");
    } else {
        let _ = out.write_all(text.as_bytes());
    }
    Ok(())
}

/// `netlab exec [-n NS] POD [-c C] -- CMD...`: runs CMD in the pod and returns its exit code.
pub(crate) async fn exec(
    api: &mut impl Cluster,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
    command: &[String],
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<i32, Problem> {
    if command.is_empty() {
        return Err(Problem::client("you must specify at least one command for the container"));
    }
    let obj = api.get(Resource::Pods, namespace, pod).await?;
    let node = obj["spec"]["nodeName"].as_str().unwrap_or_default();
    let phase = obj["status"]["phase"].as_str().unwrap_or("Pending");
    if phase == "Succeeded" || phase == "Failed" {
        return Err(Problem::client(format!(
            "cannot exec into a container in a completed pod; current phase is {phase}"
        )));
    }
    if node.is_empty() {
        return Err(Problem::client("unable to upgrade connection: pod does not exist"));
    }
    let mut k = kernel(api, node).await?;
    let mut stream = k
        .exec(ExecRequest {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            container: container.unwrap_or_default().to_string(),
            command: command.to_vec(),
        })
        .await
        .map_err(|s| Problem::client(format!("unable to upgrade connection: {}", s.message())))?
        .into_inner();
    loop {
        match stream.message().await {
            Ok(Some(m)) => match m.kind {
                Some(Kind::Stdout(b)) => {
                    let _ = out.write_all(&b);
                    let _ = out.flush();
                }
                Some(Kind::Stderr(b)) => {
                    let _ = err.write_all(&b);
                    let _ = err.flush();
                }
                Some(Kind::ExitCode(code)) => return Ok(code),
                None => {}
            },
            Ok(None) => return Err(Problem::client("exec stream ended without an exit code")),
            Err(s) => return Err(Problem::client(format!("error: {}", s.message()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_reads_internal_ip_and_kubelet_port() {
        let node = serde_json::json!({"status": {
            "addresses": [{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "172.28.1.2"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}
        }});
        assert_eq!(endpoint(&node), Some(("172.28.1.2".parse().unwrap(), 10250)));
        assert_eq!(endpoint(&serde_json::json!({"status": {}})), None);
    }
}
