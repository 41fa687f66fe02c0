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

/// `netlab node enis NODE [-o json]`: ipamd's `/v1/enis`, as it is or as a table of every
/// address: its ENI and device, and the pod that holds it (`-` when warm).
pub(crate) async fn enis(
    api: &mut impl Cluster,
    node: &str,
    json: bool,
    out: &mut impl Write,
) -> Result<(), Problem> {
    let mut k = kernel(api, node).await?;
    let text = k
        .save(SaveRequest { table: Table::Enis as i32 })
        .await
        .map_err(|s| Problem::client(s.message().to_string()))?
        .into_inner()
        .text;
    if json {
        let _ = writeln!(out, "{}", text.trim_end());
        return Ok(());
    }
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| Problem::client(format!("node {node}: ipamd's answer is not JSON: {e}")))?;
    let _ = out.write_all(enis_table(&doc).as_bytes());
    Ok(())
}

/// The table of [`enis`] from ipamd's answer: per network card (`"0"`), `TotalIPs`,
/// `AssignedIPs` and `ENIs` by ID, each with `DeviceNumber`, `IsPrimary` and
/// `AvailableIPv4Cidrs` (a /32 per secondary address, or a /28 prefix), whose `IPAddresses`
/// hold the assigned ones with the pod in `IPAMMetadata`.
fn enis_table(doc: &Value) -> String {
    let cards: Vec<&Value> = doc.as_object().map(|m| m.values().collect()).unwrap_or_default();
    let mut text = String::from("ENI\tDEVICE\tPRIMARY\tCIDR\tADDRESS\tPOD\n");
    let (mut total, mut assigned) = (0, 0);
    for card in cards {
        total += card["TotalIPs"].as_i64().unwrap_or(0);
        assigned += card["AssignedIPs"].as_i64().unwrap_or(0);
        let mut enis: Vec<(&String, &Value)> =
            card["ENIs"].as_object().map(|m| m.iter().collect()).unwrap_or_default();
        enis.sort_by_key(|(_, e)| e["DeviceNumber"].as_i64().unwrap_or(0));
        for (id, eni) in enis {
            let primary = eni["IsPrimary"].as_bool().unwrap_or(false);
            let device = eni["DeviceNumber"].as_i64().unwrap_or(0);
            let mut rows: Vec<(std::net::Ipv4Addr, String, String, String)> = Vec::new();
            for (cidr, block) in eni["AvailableIPv4Cidrs"].as_object().into_iter().flatten() {
                let held: Vec<(std::net::Ipv4Addr, String)> = block["IPAddresses"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(addr, a)| {
                        let meta = &a["IPAMMetadata"];
                        let pod = match (meta["k8sPodNamespace"].as_str(), meta["k8sPodName"].as_str()) {
                            (Some(ns), Some(name)) if !name.is_empty() => format!("{ns}/{name}"),
                            _ => "(cooling down)".to_string(),
                        };
                        Some((addr.parse().ok()?, pod))
                    })
                    .collect();
                let first: Option<std::net::Ipv4Addr> = cidr.split('/').next().and_then(|a| a.parse().ok());
                let is_prefix = block["IsPrefix"].as_bool().unwrap_or(false);
                if !is_prefix && held.is_empty() {
                    if let Some(ip) = first {
                        rows.push((ip, cidr.clone(), ip.to_string(), "-".into()));
                    }
                    continue;
                }
                for (ip, pod) in &held {
                    rows.push((*ip, cidr.clone(), ip.to_string(), pod.clone()));
                }
                if is_prefix && let Some(ip) = first {
                    rows.push((ip, cidr.clone(), format!("{} free", 16 - held.len()), "-".into()));
                }
            }
            rows.sort();
            if rows.is_empty() {
                text.push_str(&format!("{id}\t{device}\t{primary}\t<none>\t<none>\t-\n"));
            }
            for (_, cidr, addr, pod) in rows {
                text.push_str(&format!("{id}\t{device}\t{primary}\t{cidr}\t{addr}\t{pod}\n"));
            }
        }
    }
    let mut table = crate::tabwriter::align(&text, crate::tabwriter::TABLE);
    table.push_str(&format!("\nTotal IPs: {total}, assigned: {assigned}\n"));
    table
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
