//! `netlab up` and `netlab down`: the lab's processes as local children, for machines without
//! Docker and for fast tests (native mode). Each process listens on a 127.0.0.x address; `up`
//! records where everything is in `<data-dir>/cluster.json`, through which every later `netlab`
//! command finds the cluster, so two clusters with different data dirs run side by side.
//!
//! In the foreground, each child's log lines are prefixed with its name and Ctrl-C stops them all;
//! with `--detach`, logs go to `<data-dir>/logs/<name>.log` and `netlab down` stops them.
//!
//! Unless `--otlp-endpoint` names a collector, the first child is a trace store ([`traces`]) that
//! every other exports to and `netlab trace` reads.

use std::{
    io::{BufRead as _, BufReader, Write},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    apply,
    client::{Api, Cluster as _},
    cluster_file::{ClusterFile, Process, read_cluster},
    config::{Namespace, UpArgs},
    manifest::{self, Checks},
    report::Problem,
};

mod traces;

/// The demo workload applied on first start.
const DEMO: &str = include_str!("up/demo.yaml");
/// How long the processes get to become healthy.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopped process gets before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

fn is_alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).stderr(Stdio::null()).status();
}

/// A workspace binary: next to this `netlab`, else on PATH.
fn binary(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(name)))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The nodes' image credential provider as the EKS AMI sets it up: its CredentialProviderConfig
/// (with the cloud's AWS endpoint `aws` as the ECR API's) written under the data dir, and the directory of `ecr-credential-provider` (beside this
/// `netlab`). None, and the nodes pull ECR images anonymously, when the plugin is not built.
fn credential_provider(data_dir: &Path, aws: &str) -> Result<Option<(PathBuf, PathBuf)>, Problem> {
    let plugin = binary(netlab_credential_provider::BINARY);
    let Some(bin_dir) = plugin.parent().filter(|d| plugin.exists() && !d.as_os_str().is_empty()) else {
        return Ok(None);
    };
    let dir = data_dir.join("image-credential-provider");
    let config = dir.join("config.json");
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&config, netlab_credential_provider::config(&format!("http://{aws}"))))
        .map_err(|e| Problem::client(format!("writing {}: {e}", config.display())))?;
    Ok(Some((config, bin_dir.to_path_buf())))
}

/// What a node's processes must not inherit from the shell that ran `netlab up`: AWS keys and
/// settings (an EC2 node's kubelet has none, so its credential provider ends at IMDS with the
/// node role, not at the user's `eval "$(netlab aws env)"`).
const NOT_FOR_NODES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_ECR",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
];

fn port_free(addr: &str) -> bool {
    TcpListener::bind(addr).is_ok()
}

/// What to start, in order.
/// Addresses of the lab's outside world in native mode.
struct Cloud {
    registry: String,
    dns: String,
    /// Where the cluster DNS listens (port 53 on a loopback address of its own), if port 53
    /// could be bound.
    cluster_dns: Option<String>,
    /// The node-agents' kernel API port.
    kubelet_port: u16,
    /// The AWS endpoint (IAM, STS, EC2, ECR).
    aws: String,
    /// IMDS, behind each node's 169.254.169.254.
    imds: String,
    /// The nodes' image credential provider: its config file and the plugins' directory.
    credential_provider: Option<(PathBuf, PathBuf)>,
}

/// A port for a child to listen on, free now on TCP and UDP. Taken below Linux's ephemeral range
/// (32768-60999): a port the kernel hands out as `:0` is also what any outgoing connection on
/// the machine may take as its source port in the moment before the child binds it.
fn free_port() -> Result<u16, Problem> {
    const LOW: u16 = 20000;
    const SPAN: u16 = 12000;
    let start = uuid::Uuid::new_v4().as_u128() as u16 % SPAN;
    for i in 0..SPAN {
        let port = LOW + (start + i) % SPAN;
        let addr = format!("127.0.0.1:{port}");
        if TcpListener::bind(&addr).is_ok() && std::net::UdpSocket::bind(&addr).is_ok() {
            return Ok(port);
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Problem::client(format!("finding a free port: {e}")))
}

/// The cloud's VPC (eksctl's default, `netlab-ec2`'s): the EKS flavour's pod addresses.
const EKS_VPC_CIDR: &str = "192.168.0.0/16";

/// Node `i`'s EC2 instance type: t3.medium and m5.large in turn, EKS's usual node types.
fn instance_type(i: u8) -> &'static str {
    if i % 2 == 1 { "t3.medium" } else { "m5.large" }
}

/// The kubelet's `--max-pods` on an EKS node of type `ty`, as the EKS AMI's bootstrap script
/// sets it from eni-max-pods.txt: ENIs × (IPv4 per ENI − 1) + 2 (t3.medium 17, m5.large 29).
fn eks_max_pods(ty: &str) -> u32 {
    netlab_ec2::instance_type::lookup(ty).map_or(110, |t| t.max_pods())
}

/// The lab's processes after the trace store; each exports to `otlp` when given.
fn plan(
    args: &UpArgs,
    data_dir: &Path,
    apiserver: &str,
    cloud: &Cloud,
    otlp: Option<&str>,
) -> Vec<(String, String, Vec<String>)> {
    let server = format!("http://{apiserver}");
    let mut procs = vec![
        (
            "apiserver".to_string(),
            "netlab-apiserver".to_string(),
            vec![
                "--listen".into(),
                apiserver.to_string(),
                "--data-dir".into(),
                data_dir.join("apiserver").display().to_string(),
                // Lab exception: natively the dns pod's address is loopback (see the flag).
                "--allow-loopback-endpoints".into(),
                // The nodes are EC2 instances of the cloud's account, as EKS's: IRSA's webhook.
                "--enable-pod-identity-webhook".into(),
            ],
        ),
        // Health ports on ephemeral addresses: two native clusters must not fight over 10257.
        // EKS allocates no podCIDRs (the VPC CNI gives VPC addresses instead).
        (
            "controller-manager".into(),
            "netlab-controller-manager".into(),
            [
                vec![
                    "--server".into(),
                    server.clone(),
                    "--healthz-bind-address".into(),
                    "127.0.0.1:0".into(),
                ],
                if args.eks { vec!["--controllers".into(), "*,-nodeipam".into()] } else { vec![] },
            ]
            .concat(),
        ),
        (
            "scheduler".into(),
            "netlab-scheduler".into(),
            vec!["--server".into(), server.clone(), "--healthz-bind-address".into(), "127.0.0.1:0".into()],
        ),
        (
            "cloud".into(),
            "netlab-cloud".into(),
            vec![
                "--registry-listen".into(),
                cloud.registry.clone(),
                "--dns-listen".into(),
                cloud.dns.clone(),
                "--advertise-address".into(),
                "127.0.0.1".into(),
                "--healthz-bind-address".into(),
                "127.0.0.1:0".into(),
                "--aws-listen".into(),
                cloud.aws.clone(),
                "--imds-listen".into(),
                cloud.imds.clone(),
                "--data-dir".into(),
                data_dir.join("cloud").display().to_string(),
                // The nodes as EC2 instances of the account's VPC, of EKS's usual types.
                "--ec2-instances".into(),
                (1..=args.nodes)
                    .map(|i| format!("node-{i}={}", instance_type(i)))
                    .collect::<Vec<_>>()
                    .join(","),
                // The registry (and resolver) faults are objects in this apiserver.
                "--apiserver".into(),
                server.clone(),
            ],
        ),
    ];
    // The cluster DNS on its own loopback address, port 53 (the kube-dns Service's targetPort
    // is 53, as kubeadm writes it), registered as the host-network pod kube-system/coredns-*.
    if let Some(dns) = &cloud.cluster_dns {
        procs.push((
            "dns".into(),
            "netlab-dns".into(),
            vec![
                "--server".into(),
                server.clone(),
                "--listen".into(),
                dns.clone(),
                "--advertise-address".into(),
                dns.rsplit_once(':').map(|(ip, _)| ip.to_string()).unwrap_or_default(),
                "--upstream".into(),
                cloud.dns.clone(),
                "--health-listen".into(),
                "127.0.0.1:0".into(),
                "--ready-listen".into(),
                "127.0.0.1:0".into(),
                "--metrics-listen".into(),
                "127.0.0.1:0".into(),
            ],
        ));
    }
    // Nodes: each node-agent plays one node, its node IP a loopback address of its own (on Linux
    // all of 127.0.0.0/8 is local), as Docker or a cloud would give a machine its address.
    for i in 1..=args.nodes {
        let name = format!("node-{i}");
        procs.push((
            name.clone(),
            "netlab-node-agent".into(),
            vec![
                "--server".into(),
                server.clone(),
                "--node-name".into(),
                name.clone(),
                "--node-ip".into(),
                format!("127.0.1.{i}"),
                "--address".into(),
                format!("127.0.1.{i}"),
                "--port".into(),
                cloud.kubelet_port.to_string(),
                "--data-dir".into(),
                data_dir.join("nodes").join(&name).display().to_string(),
                "--registry".into(),
                format!("http://{}", cloud.registry),
                // 169.254.169.254 leads to the cloud's IMDS, as on an EC2 instance.
                "--imds".into(),
                cloud.imds.clone(),
                // The AWS endpoint names' address, port 443, leads to the cloud's AWS API.
                "--aws-api".into(),
                cloud.aws.clone(),
                "--healthz-bind-address".into(),
                "127.0.0.1:0".into(),
            ],
        ));
        // EKS workers: the VPC CNI, and max pods as the EKS AMI's bootstrap sets it.
        if args.eks
            && let Some((_, _, a)) = procs.last_mut()
        {
            a.extend([
                "--cni".into(),
                "aws-vpc-cni".into(),
                "--max-pods".into(),
                eks_max_pods(instance_type(i)).to_string(),
                "--cluster-cidr".into(),
                EKS_VPC_CIDR.into(),
            ]);
        }
        // ECR images pull with the node role, through ecr-credential-provider, as on EKS.
        if let Some((config, bin_dir)) = &cloud.credential_provider
            && let Some((_, _, a)) = procs.last_mut()
        {
            a.extend([
                "--image-credential-provider-config".into(),
                config.display().to_string(),
                "--image-credential-provider-bin-dir".into(),
                bin_dir.display().to_string(),
            ]);
        }
        // kube-proxy for the node, programming that node's kernel (its kubelet port).
        procs.push((
            format!("proxy-{i}"),
            "netlab-proxy".into(),
            vec![
                "--server".into(),
                server.clone(),
                "--hostname-override".into(),
                name.clone(),
                "--kernel".into(),
                format!("http://127.0.1.{i}:{}", cloud.kubelet_port),
                "--healthz-bind-address".into(),
                "127.0.0.1:0".into(),
            ],
        ));
        // On EKS kube-proxy's cluster CIDR is the VPC's: pods have VPC addresses.
        if args.eks
            && let Some((_, _, a)) = procs.last_mut()
        {
            a.extend(["--cluster-cidr".into(), EKS_VPC_CIDR.into()]);
        }
    }
    if let Some(otlp) = otlp {
        for (_, _, a) in &mut procs {
            a.extend(["--otlp-endpoint".to_string(), otlp.to_string()]);
        }
    }
    procs
}

/// Runs `netlab up`.
pub async fn up(args: &UpArgs, data_dir: &Path, out: &mut dyn Write) -> Result<(), Problem> {
    if let Some(existing) = read_cluster(data_dir)
        && existing.processes.iter().any(|p| is_alive(p.pid))
    {
        return Err(Problem::client(format!(
            "a cluster is already running in {} (apiserver at {}); run `netlab down --data-dir {}` first",
            data_dir.display(),
            existing.apiserver,
            data_dir.display()
        )));
    }
    std::fs::create_dir_all(data_dir.join("logs"))
        .map_err(|e| Problem::client(format!("creating {}: {e}", data_dir.display())))?;
    let apiserver = if port_free(&format!("127.0.0.1:{}", args.apiserver_port)) {
        format!("127.0.0.1:{}", args.apiserver_port)
    } else {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| Problem::client(format!("finding a free port: {e}")))?
            .port();
        format!("127.0.0.1:{port}")
    };

    let mut children: Vec<(String, Child)> = Vec::new();
    // No collector named: run our own (an empty --otlp-endpoint turns export off instead).
    let store = match &args.otlp_endpoint {
        None => Some(traces::TraceStore::pick()?),
        Some(_) => None,
    };
    let otlp = args.otlp_endpoint.clone().or_else(|| store.as_ref().map(traces::TraceStore::otlp_endpoint));
    let mut record = ClusterFile {
        apiserver: format!("http://{apiserver}"),
        jaeger_url: store.as_ref().map(traces::TraceStore::jaeger_url),
        aws_endpoint: None,
        processes: Vec::new(),
    };
    let started = Instant::now();
    let mut cloud = Cloud {
        registry: format!("127.0.0.1:{}", free_port()?),
        dns: format!("127.0.0.1:{}", free_port()?),
        // A second cluster beside the first takes the next free loopback address for its DNS.
        cluster_dns: (1..=32u8)
            .map(|k| format!("127.0.{k}.253:53"))
            .find(|a| std::net::UdpSocket::bind(a.as_str()).is_ok() && TcpListener::bind(a.as_str()).is_ok()),
        // One kubelet port for every node of this cluster (each node on its own address), free
        // so that two clusters side by side do not collide.
        kubelet_port: free_port()?,
        aws: format!("127.0.0.1:{}", free_port()?),
        imds: format!("127.0.0.1:{}", free_port()?),
        credential_provider: None,
    };
    cloud.credential_provider = credential_provider(data_dir, &cloud.aws)?;
    if cloud.credential_provider.is_none() {
        let _ = writeln!(
            out,
            "note: ecr-credential-provider is not beside netlab (build it with `cargo build --bins`): the nodes pull ECR images without credentials"
        );
    }
    record.aws_endpoint = Some(format!("http://{}", cloud.aws));
    if cloud.cluster_dns.is_none() {
        let _ = writeln!(
            out,
            "note: cannot bind port 53 on 127.0.x.253 (it needs root or CAP_NET_BIND_SERVICE): no cluster DNS, so names do not resolve in pods; IPs work"
        );
    }
    let mut planned: Vec<(String, String, Vec<String>)> =
        store.iter().map(traces::TraceStore::process).collect();
    planned.extend(plan(args, data_dir, &apiserver, &cloud, otlp.as_deref()));
    for (name, bin, bin_args) in &planned {
        let (mut child, log) = match spawn(name, bin, bin_args, data_dir, args.detach, false) {
            Ok(started) => started,
            Err(problem) => {
                stop(&mut children);
                return Err(problem);
            }
        };
        // The store first, and ready, so that no process's first spans find nobody listening.
        if let Some(store) = store.as_ref().filter(|_| name == traces::NAME)
            && let Err(message) = store.wait_ready(&mut child, READY_TIMEOUT).await
        {
            children.push((name.clone(), child));
            return Err(abort(&mut children, data_dir, message));
        }
        record.processes.push(Process { name: name.clone(), pid: child.id(), log });
        children.push((name.clone(), child));
    }
    write_cluster(data_dir, &record)?;
    let kubeconfig = crate::kubeconfig::write(data_dir, &record.apiserver)?;

    // Healthy: the apiserver answers, and nothing has exited.
    let mut api = Api::new(&record.apiserver);
    loop {
        for (name, child) in &mut children {
            if let Ok(Some(status)) = child.try_wait() {
                let message = format!("{name} exited during startup: {status}");
                return Err(abort(&mut children, data_dir, message));
            }
        }
        if api.list(netlab_proto::apiserver::v1::Resource::Namespaces, "", "", "").await.is_ok() {
            break;
        }
        if started.elapsed() > READY_TIMEOUT {
            let message = format!("the apiserver at {apiserver} was not ready after {READY_TIMEOUT:?}");
            return Err(abort(&mut children, data_dir, message));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (name, child) in &mut children {
        if let Ok(Some(status)) = child.try_wait() {
            let message = format!("{name} exited during startup: {status}");
            return Err(abort(&mut children, data_dir, message));
        }
    }

    if args.eks {
        apply_aws_node(&mut api, data_dir).await?;
    }
    if args.demo {
        apply_demo(&mut api, data_dir, &mut std::io::sink()).await?;
    }

    let _ = writeln!(
        out,
        "netlab is up in {:.1}s (data dir {}):",
        started.elapsed().as_secs_f64(),
        data_dir.display()
    );
    let _ = writeln!(out, "  apiserver   {}", record.apiserver);
    let _ = writeln!(out, "  kubectl     KUBECONFIG={} kubectl get pods -A", kubeconfig.display());
    if let Some(store) = &store {
        let _ = writeln!(
            out,
            "  traces      {}  (netlab trace last; OTLP on {})",
            store.jaeger_url(),
            store.otlp_endpoint()
        );
    }
    let _ = writeln!(
        out,
        "  registry    http://{}  (skopeo inspect --tls-verify=false docker://{}/library/nginx:latest)",
        cloud.registry, cloud.registry
    );
    let _ = writeln!(
        out,
        "  aws         http://{}  (eval \"$(netlab --data-dir {} aws env)\"; aws sts get-caller-identity)",
        cloud.aws,
        data_dir.display()
    );
    if let Some(dns) = &cloud.cluster_dns {
        let _ = writeln!(
            out,
            "  cluster DNS {dns}  (dig @{} kubernetes.default.svc.cluster.local)",
            dns.trim_end_matches(":53")
        );
    }
    let _ = writeln!(
        out,
        "  outside DNS {}  (dig @127.0.0.1 -p {} example.com)",
        cloud.dns,
        cloud.dns.rsplit(':').next().unwrap_or_default()
    );
    for p in &record.processes {
        let _ = writeln!(
            out,
            "  {:<18} pid {}{}",
            p.name,
            p.pid,
            p.log.as_ref().map(|l| format!(", log {}", l.display())).unwrap_or_default()
        );
    }
    let _ = writeln!(out, "Try: netlab --data-dir {} get pods -A", data_dir.display());
    let _ = out.flush();

    if args.detach {
        return Ok(());
    }
    let _ = writeln!(out, "Ctrl-C stops the lab.");
    let _ = out.flush();
    // Foreground: until Ctrl-C or a child dies.
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                let Some((i, status)) = children.iter_mut().enumerate().find_map(|(i, (_, c))| c.try_wait().ok().flatten().map(|s| (i, s))) else {
                    continue;
                };
                let name = children[i].0.clone();
                // A killed process (a ComponentChaos kill, or anyone's SIGKILL) is started again,
                // as compose's `restart: unless-stopped` does; any other exit stops the lab.
                if !killed(status) {
                    let _ = writeln!(out, "{name} exited: {status}; stopping the lab.");
                    break;
                }
                let Some((_, bin, bin_args)) = planned.iter().find(|(n, _, _)| *n == name) else { break };
                let _ = writeln!(out, "{name} was killed ({status}); starting it again.");
                match spawn(&name, bin, bin_args, data_dir, false, true) {
                    Ok((child, _)) => {
                        if let Some(p) = record.processes.iter_mut().find(|p| p.name == name) {
                            p.pid = child.id();
                        }
                        let _ = write_cluster(data_dir, &record);
                        children[i].1 = child;
                    }
                    Err(problem) => {
                        let _ = writeln!(out, "{name}: {problem}; stopping the lab.");
                        break;
                    }
                }
            }
        }
    }
    stop(&mut children);
    let _ = std::fs::remove_file(data_dir.join("cluster.json"));
    let _ = writeln!(out, "netlab stopped.");
    Ok(())
}

/// Whether `status` is a kill: SIGKILL, or exit code 137 (what a ComponentChaos kill exits with,
/// and what shells and Docker report for SIGKILL).
fn killed(status: std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt as _;
    status.code() == Some(137) || status.signal() == Some(9)
}

/// Starts one process of the lab: logs to `<data-dir>/logs/<name>.log` when `detach` (appended
/// when `again`, for a restart), else prefixed on this terminal. Returns it and its log.
fn spawn(
    name: &str,
    bin: &str,
    bin_args: &[String],
    data_dir: &Path,
    detach: bool,
    again: bool,
) -> Result<(Child, Option<PathBuf>), Problem> {
    let mut cmd = Command::new(binary(bin));
    cmd.args(bin_args).stdin(Stdio::null());
    if bin == "netlab-node-agent" {
        for var in NOT_FOR_NODES {
            cmd.env_remove(var);
        }
    }
    let log = data_dir.join("logs").join(format!("{name}.log"));
    if detach {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(again)
            .truncate(!again)
            .open(&log)
            .map_err(|e| Problem::client(format!("creating {}: {e}", log.display())))?;
        let err = file.try_clone().map_err(|e| Problem::client(e.to_string()))?;
        cmd.stdout(file).stderr(err);
        // Its own process group: the terminal's Ctrl-C is not for it any more.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    } else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let mut child = cmd.spawn().map_err(|e| {
        Problem::client(format!(
            "starting {bin}: {e} (build it with `cargo build --bins`, or put it on PATH)"
        ))
    })?;
    if !detach {
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let prefix = format!("{name:>18} | ");
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    println!("{prefix}{line}");
                }
            });
        }
    }
    Ok((child, detach.then_some(log)))
}

/// Stops what was started and forgets the cluster; the logs stay for the post-mortem.
fn abort(children: &mut [(String, Child)], data_dir: &Path, message: String) -> Problem {
    stop(children);
    let _ = std::fs::remove_file(data_dir.join("cluster.json"));
    Problem::client(format!("{message} (logs in {})", data_dir.join("logs").display()))
}

/// Creates the `aws-node` DaemonSet in kube-system, as EKS's VPC CNI add-on does, unless it is
/// there already (a restart keeps what `kubectl set env` changed): the add-on's env plus ipamd's
/// settings from this environment (WARM_IP_TARGET, ...), which every node's ipamd then follows.
pub async fn apply_aws_node(api: &mut Api, scratch: &Path) -> Result<(), Problem> {
    use netlab_vpc_cni::daemonset;
    let exists = api
        .get(netlab_proto::apiserver::v1::Resource::DaemonSets, daemonset::NAMESPACE, daemonset::NAME)
        .await
        .is_ok();
    if exists {
        return Ok(());
    }
    let env: Vec<(String, String)> = daemonset::KNOBS
        .iter()
        .filter_map(|k| Some((k.to_string(), std::env::var(k).ok().filter(|v| !v.is_empty())?)))
        .collect();
    let file = scratch.join("aws-node.json");
    std::fs::write(&file, daemonset::manifest(&env).to_string())
        .map_err(|e| Problem::client(format!("writing {}: {e}", file.display())))?;
    let manifests =
        manifest::load(&[file.display().to_string()], false, Checks::Full).map_err(|mut p| p.remove(0));
    let _ = std::fs::remove_file(&file);
    let ns = Namespace { name: daemonset::NAMESPACE.into(), explicit: false };
    let problems = apply::apply(api, manifests?, &ns, &mut std::io::sink(), &mut std::io::sink()).await;
    problems.into_iter().next().map_or(Ok(()), Err)
}

/// Applies the demo workload (namespace `demo`), printing what apply prints.
pub async fn apply_demo(api: &mut Api, scratch: &Path, out: &mut dyn Write) -> Result<(), Problem> {
    std::fs::create_dir_all(scratch)
        .map_err(|e| Problem::client(format!("creating {}: {e}", scratch.display())))?;
    let demo = scratch.join("demo.yaml");
    std::fs::write(&demo, DEMO).map_err(|e| Problem::client(format!("writing {}: {e}", demo.display())))?;
    let manifests =
        manifest::load(&[demo.display().to_string()], false, Checks::Full).map_err(|mut p| p.remove(0));
    let _ = std::fs::remove_file(&demo);
    let manifests = manifests?;
    let ns = Namespace { name: "default".into(), explicit: false };
    let problems = apply::apply(api, manifests, &ns, out, &mut std::io::sink()).await;
    match problems.into_iter().next() {
        Some(p) => Err(p),
        None => Ok(()),
    }
}

fn write_cluster(data_dir: &Path, record: &ClusterFile) -> Result<(), Problem> {
    let path = data_dir.join("cluster.json");
    let text = serde_json::to_string_pretty(record).map_err(|e| Problem::client(e.to_string()))?;
    std::fs::write(&path, text).map_err(|e| Problem::client(format!("writing {}: {e}", path.display())))
}

/// SIGTERM everyone (last started first), then SIGKILL whoever is left after the grace period.
fn stop(children: &mut [(String, Child)]) {
    for (_, child) in children.iter().rev() {
        signal(child.id(), "-TERM");
    }
    let deadline = Instant::now() + STOP_GRACE;
    for (_, child) in children.iter_mut().rev() {
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs `netlab down`: stops a detached native cluster.
pub fn down(data_dir: &Path, out: &mut dyn Write) -> Result<(), Problem> {
    let Some(record) = read_cluster(data_dir) else {
        return Err(Problem::client(format!("no netlab cluster is running in {}", data_dir.display())));
    };
    for p in record.processes.iter().rev() {
        signal(p.pid, "-TERM");
    }
    let deadline = Instant::now() + STOP_GRACE;
    for p in record.processes.iter().rev() {
        while is_alive(p.pid) {
            if Instant::now() > deadline {
                signal(p.pid, "-KILL");
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = writeln!(out, "{} stopped", p.name);
    }
    let _ = std::fs::remove_file(data_dir.join("cluster.json"));
    Ok(())
}
