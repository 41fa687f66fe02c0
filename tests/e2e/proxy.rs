//! kube-proxy: the real netlab-proxy, against the real apiserver and controller-manager, programs
//! a node kernel with upstream's rules. The kernel here is an in-test `netlab.node.v1.Kernel`
//! that records every Restore, so the test reads exactly what the proxy sent: iptables-restore
//! text in iptables mode, ipvsadm-restore text in ipvs mode.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::{
    api::core::v1::{
        Container, ContainerPort, Node, NodeAddress, NodeCondition, NodeStatus, Pod, PodCondition, PodIP,
        PodSpec, PodStatus, Service, ServicePort, ServiceSpec,
    },
    apimachinery::pkg::{apis::meta::v1::ObjectMeta, util::intstr::IntOrString},
};
use netlab_client::Client;
use netlab_e2e::{Apiserver, Component, eventually, parts};
use netlab_proto::node::v1::{
    ExecOutput, ExecRequest, Format, RestoreRequest, RestoreResponse, SaveRequest, SaveResponse, Segment,
    kernel_server::{Kernel, KernelServer},
};
use tonic::{Request, Response, Status, Streaming, codegen::BoxStream};

const WAIT: Duration = Duration::from_secs(30);
/// `default/web:http` over tcp, and its endpoints 10.244.1.5:8080 and 10.244.2.7:8080, hashed as
/// kube-proxy hashes them (facts §4.1).
const SVC_CHAIN: &str = "KUBE-SVC-CDGGSHYLG3RE2FKL";
const SEP_1_5: &str = "KUBE-SEP-AFGSLHOD2HFNCBX4";
const SEP_2_7: &str = "KUBE-SEP-2RIJ5GIYXEFH6G4D";

/// A node kernel that records restores and does nothing else.
#[derive(Clone, Default)]
struct RecordingKernel {
    restores: Arc<Mutex<Vec<RestoreRequest>>>,
}

impl RecordingKernel {
    fn restores(&self) -> Vec<RestoreRequest> {
        self.restores.lock().unwrap().clone()
    }

    /// The IPVS table the recorded restores build (each runs its commands against the table
    /// the ones before left), as `ipvsadm -Ln` prints it.
    fn ipvs_table(&self) -> String {
        let mut table = netlab_kernel::ipvs::Ipvs::new();
        for r in self.restores() {
            assert_eq!(r.format, Format::Ipvs as i32);
            table.restore(&r.text).unwrap_or_else(|e| panic!("{e}\n{}", r.text));
        }
        table.list()
    }
}

#[tonic::async_trait]
impl Kernel for RecordingKernel {
    async fn restore(&self, request: Request<RestoreRequest>) -> Result<Response<RestoreResponse>, Status> {
        self.restores.lock().unwrap().push(request.into_inner());
        Ok(Response::new(RestoreResponse { rules: 0 }))
    }

    async fn save(&self, _: Request<SaveRequest>) -> Result<Response<SaveResponse>, Status> {
        Err(Status::unimplemented("recording kernel"))
    }

    type DialStream = BoxStream<Segment>;

    async fn dial(&self, _: Request<Streaming<Segment>>) -> Result<Response<Self::DialStream>, Status> {
        Err(Status::unimplemented("recording kernel"))
    }

    type ExecStream = BoxStream<ExecOutput>;

    async fn exec(&self, _: Request<ExecRequest>) -> Result<Response<Self::ExecStream>, Status> {
        Err(Status::unimplemented("recording kernel"))
    }
}

/// Serves a recording kernel on a free port; returns it and its URL.
async fn start_kernel() -> (RecordingKernel, String) {
    let kernel = RecordingKernel::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind kernel");
    let url = format!("http://{}", listener.local_addr().expect("kernel addr"));
    let server = KernelServer::new(kernel.clone()).max_decoding_message_size(usize::MAX);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(server)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (kernel, url)
}

fn proxy(api: &Apiserver, kernel: &str, mode: &str) -> Component {
    parts::proxy(&api.url(), "node-1", kernel, mode, "200ms", &[])
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn register_node(client: &Client, name: &str, ip: &str) {
    let node = Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels(&[("kubernetes.io/hostname", name)])),
            ..Default::default()
        },
        status: Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: Some("KubeletReady".into()),
                ..Default::default()
            }]),
            addresses: Some(vec![NodeAddress { type_: "InternalIP".into(), address: ip.into() }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    client.create(&node).await.expect("register node");
}

/// A `web` pod bound to `node` and reported Running and Ready with `ip`, as its kubelet would.
async fn run_pod(client: &Client, name: &str, node: &str, ip: &str) {
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            labels: Some(labels(&[("app", "web")])),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "web".into(),
                image: Some("nginx:1.27".into()),
                ports: Some(vec![ContainerPort { container_port: 8080, ..Default::default() }]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    client.create(&pod).await.expect("create pod");
    client.bind("default", name, node).await.expect("bind pod");
    let mut pod = client.get::<Pod>("default", name).await.expect("get pod");
    pod.metadata.resource_version = None;
    let condition = |t: &str| PodCondition { type_: t.into(), status: "True".into(), ..Default::default() };
    pod.status = Some(PodStatus {
        phase: Some("Running".into()),
        pod_ip: Some(ip.into()),
        pod_ips: Some(vec![PodIP { ip: ip.into() }]),
        conditions: Some(vec![
            condition("PodScheduled"),
            condition("Initialized"),
            condition("ContainersReady"),
            condition("Ready"),
        ]),
        ..Default::default()
    });
    client.update_status(&pod).await.expect("pod status");
}

fn web_service() -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(labels(&[("app", "web")])),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::Int(8080)),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The first recorded restore whose text holds every line of `lines`.
async fn restore_with(kernel: &RecordingKernel, what: &str, lines: &[String]) -> RestoreRequest {
    eventually(what, WAIT, || async {
        kernel.restores().into_iter().find(|r| lines.iter().all(|l| r.text.lines().any(|t| t == l)))
    })
    .await
}

#[test]
fn the_proxy_programs_upstreams_rules_and_rejects_when_endpoints_go() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    let url = api.url();
    let _cm = parts::controller_manager(&url, &["--controllers=endpointslice"]);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let (iptables_kernel, iptables_url) = start_kernel().await;
        let (ipvs_kernel, ipvs_url) = start_kernel().await;
        let _iptables = proxy(&api, &iptables_url, "iptables");
        let _ipvs = proxy(&api, &ipvs_url, "ipvs");

        let client = Client::new(&url).unwrap();
        register_node(&client, "node-1", "172.18.0.2").await;
        register_node(&client, "node-2", "172.18.0.3").await;
        let svc = client.create(&web_service()).await.expect("create service");
        let ip = svc.spec.and_then(|s| s.cluster_ip).expect("a ClusterIP");
        run_pod(&client, "web-1", "node-1", "10.244.1.5").await;
        run_pod(&client, "web-2", "node-2", "10.244.2.7").await;
        run_pod(&client, "web-3", "node-2", "10.244.3.9").await;

        // iptables: the ClusterIP jumps to the hash-named chain, which picks each of the three
        // endpoints (sorted by ip:port) with probability 1/3, then 1/2, then the rest.
        let lines = [
            format!("-A KUBE-SERVICES -m comment --comment \"default/web:http cluster IP\" -m tcp -p tcp -d {ip} --dport 80 -j {SVC_CHAIN}"),
            format!(":{SVC_CHAIN} - [0:0]"),
            format!("-A {SVC_CHAIN} -m comment --comment \"default/web:http cluster IP\" -m tcp -p tcp -d {ip} --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ"),
            format!("-A {SVC_CHAIN} -m comment --comment \"default/web:http -> 10.244.1.5:8080\" -m statistic --mode random --probability 0.3333333333 -j {SEP_1_5}"),
            format!("-A {SVC_CHAIN} -m comment --comment \"default/web:http -> 10.244.2.7:8080\" -m statistic --mode random --probability 0.5000000000 -j {SEP_2_7}"),
            format!("-A {SEP_1_5} -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.1.5:8080"),
        ];
        let programmed = restore_with(&iptables_kernel, "web's three endpoints in iptables", &lines).await;
        assert_eq!((programmed.format, programmed.noflush), (Format::Iptables as i32, true));
        let last_rule = format!("-A {SVC_CHAIN} -m comment --comment \"default/web:http -> 10.244.3.9:8080\" -j KUBE-SEP-");
        assert!(programmed.text.lines().any(|l| l.starts_with(&last_rule)), "the last endpoint unconditionally:\n{}", programmed.text);
        let first = &iptables_kernel.restores()[0];
        assert!(
            first.ensure.contains(&"nat OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES".to_string()),
            "the first sync ensures the jumps: {:?}",
            first.ensure
        );

        // ipvs: a virtual server for the ClusterIP with the three endpoints as real servers (the
        // first sync wrote the whole table, later ones only what changed).
        eventually("web's virtual server in ipvs", WAIT, || async {
            let table = ipvs_kernel.ipvs_table();
            let mut reals = reals_of(&table, &ip);
            reals.sort();
            (reals == ["10.244.1.5:8080", "10.244.2.7:8080", "10.244.3.9:8080"]).then_some(())
        })
        .await;
        let restores = ipvs_kernel.restores();
        assert!(restores[0].text.starts_with("-C\n"), "the first sync clears the table: {}", restores[0].text);

        // The pods go: the Service REJECTs, and its chains are deleted.
        for pod in ["web-1", "web-2", "web-3"] {
            client.delete_with::<Pod>("default", pod, Some(0)).await.expect("delete pod");
        }
        let lines = [
            format!("-A KUBE-SERVICES -m comment --comment \"default/web:http has no endpoints\" -m tcp -p tcp -d {ip} --dport 80 -j REJECT"),
            format!("-X {SVC_CHAIN}"),
            format!("-X {SEP_1_5}"),
        ];
        let rejected = restore_with(&iptables_kernel, "web's REJECT rule", &lines).await;
        assert!(!rejected.text.contains(&format!("-j {SVC_CHAIN}")), "no jump to a deleted chain:\n{}", rejected.text);
        eventually("an empty virtual server in ipvs", WAIT, || async {
            let table = ipvs_kernel.ipvs_table();
            (table.contains(&format!("TCP  {ip}:80 rr\n")) && reals_of(&table, &ip).is_empty()).then_some(())
        })
        .await;
        // Syncs after the first edit the table (on a busy machine the first may already have
        // had all three endpoints, so this is checked once the pods are gone).
        let restores = ipvs_kernel.restores();
        let edits: Vec<&str> = restores[1..].iter().map(|r| r.text.as_str()).filter(|t| !t.starts_with("-C\n")).collect();
        assert!(!edits.is_empty(), "later syncs edit the table: {restores:?}");
        assert!(edits.iter().any(|t| t.contains(&format!("-d -t {ip}:80 -r "))), "the real servers are deleted: {edits:?}");
    });
}

/// The real servers of TCP virtual server `ip:80` in `ipvsadm -Ln` output.
fn reals_of(table: &str, ip: &str) -> Vec<String> {
    let head = format!("TCP  {ip}:80 ");
    table
        .lines()
        .skip_while(|l| !l.starts_with(&head))
        .skip(1)
        .map_while(|l| l.trim_start().strip_prefix("-> "))
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}
