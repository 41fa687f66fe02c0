//! The cluster DNS's freshness and footprint (issue 6): how long after a Service is created its
//! name resolves, how long after a headless Service's last ready endpoint goes away its name is
//! NXDOMAIN, and the dns process's memory with 10,000 Services and 30,000 pods watched. The real
//! release apiserver and netlab-dns; queries are real DNS over UDP.
//!
//! Run: `cargo build --release --bins && cargo bench -p netlab-e2e --bench dns`
//! (`--services N --pods N --samples N` change the sizes).

use std::{
    collections::BTreeMap,
    net::UdpSocket,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{
        core::v1::{
            Container, Namespace, ObjectReference, Pod, PodSpec, PodStatus, Service, ServicePort, ServiceSpec,
        },
        discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use netlab_client::Client;
use netlab_e2e::{Apiserver, bin, free_port};
use tokio::sync::Semaphore;

const NS: &str = "bench";

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), namespace: Some(NS.into()), ..Default::default() }
}

fn service(name: &str, headless: bool) -> Service {
    Service {
        metadata: meta(name),
        spec: Some(ServiceSpec {
            cluster_ip: headless.then(|| "None".to_string()),
            ports: Some(vec![ServicePort { name: Some("http".into()), port: 80, ..Default::default() }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn slice(name: &str, svc: &str, ip: &str, ready: bool) -> EndpointSlice {
    let mut m = meta(name);
    m.labels = Some(BTreeMap::from([("kubernetes.io/service-name".to_string(), svc.to_string())]));
    EndpointSlice {
        metadata: m,
        address_type: "IPv4".into(),
        endpoints: vec![Endpoint {
            addresses: vec![ip.into()],
            conditions: Some(EndpointConditions { ready: Some(ready), ..Default::default() }),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                name: Some(format!("p-{name}")),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ports: Some(vec![EndpointPort {
            name: Some("http".into()),
            port: Some(80),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
    }
}

/// One A query; the response code (0 NOERROR with answers, 3 NXDOMAIN, ...) and answer count.
fn query(sock: &UdpSocket, port: u16, name: &str, id: u16) -> Option<(u8, u16)> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    sock.send_to(&q, ("127.0.0.1", port)).ok()?;
    let mut buf = [0u8; 1500];
    loop {
        let n = sock.recv(&mut buf).ok()?;
        if n >= 12 && buf[..2] == id.to_be_bytes() {
            return Some((buf[3] & 0x0f, u16::from_be_bytes([buf[6], buf[7]])));
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p) as usize]
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(default)
}

fn main() {
    let (services, pods, samples) = (arg("--services", 10_000), arg("--pods", 30_000), arg("--samples", 100));
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Apiserver::start(&dir.path().join("api"), &[]);
    let port = free_port();
    let mut dns = Command::new(bin("netlab-dns"))
        .args([
            "--server",
            &api.url(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--advertise-address",
            "127.0.0.1",
        ])
        .args([
            "--health-listen",
            &format!("127.0.0.1:{}", free_port()),
            "--ready-listen",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .args(["--metrics-listen", &format!("127.0.0.1:{}", free_port()), "--register", "false"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn netlab-dns");
    let pid = dns.id();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let client = Client::new(&api.url()).expect("client");
        client.wait_ready(Duration::from_millis(100)).await;
        let _ = client
            .create(&Namespace {
                metadata: ObjectMeta { name: Some(NS.into()), ..Default::default() },
                ..Default::default()
            })
            .await;
        let idle = rss_kib(pid);
        let sem = Arc::new(Semaphore::new(64));
        let started = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..services {
            let (c, permit) = (client.clone(), sem.clone().acquire_owned().await.expect("semaphore"));
            set.spawn(async move {
                c.create(&service(&format!("svc-{i}"), false)).await.expect("service");
                drop(permit);
            });
        }
        while set.join_next().await.is_some() {}
        for i in 0..pods {
            let (c, permit) = (client.clone(), sem.clone().acquire_owned().await.expect("semaphore"));
            set.spawn(async move {
                let mut p = Pod {
                    metadata: meta(&format!("pod-{i}")),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "c".into(),
                            image: Some("nginx".into()),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                    status: None,
                };
                p.metadata.labels = Some(BTreeMap::from([("app".to_string(), format!("a{}", i % 100))]));
                let mut created = c.create(&p).await.expect("pod");
                created.status = Some(PodStatus {
                    pod_ip: Some(format!("10.{}.{}.{}", 244 + i / 65536, (i / 256) % 256, i % 256)),
                    phase: Some("Running".into()),
                    ..Default::default()
                });
                let _ = c.update_status(&created).await;
                drop(permit);
            });
        }
        while set.join_next().await.is_some() {}
        println!("created {services} Services and {pods} pods in {:?}", started.elapsed());
        // Let the dns process catch up: the last Service resolves.
        let sock = UdpSocket::bind("127.0.0.1:0").expect("udp");
        sock.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        let last = format!("svc-{}.{NS}.svc.cluster.local", services - 1);
        while query(&sock, port, &last, 1) != Some((0, 1)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_secs(2));
        let loaded = rss_kib(pid);

        let mut create = Vec::new();
        let mut gone = Vec::new();
        for k in 0..samples {
            let name = format!("new-{k}");
            let fqdn = format!("{name}.{NS}.svc.cluster.local");
            let t = Instant::now();
            client.create(&service(&name, false)).await.expect("new service");
            let mut id = 2u16;
            while query(&sock, port, &fqdn, id) != Some((0, 1)) {
                id = id.wrapping_add(1);
            }
            create.push(t.elapsed());

            let hl = format!("hl-{k}");
            client.create(&service(&hl, true)).await.expect("headless");
            let mut s = client.create(&slice(&hl, &hl, "10.250.0.1", true)).await.expect("slice");
            let fqdn = format!("{hl}.{NS}.svc.cluster.local");
            while query(&sock, port, &fqdn, id) != Some((0, 1)) {
                id = id.wrapping_add(1);
            }
            s.endpoints[0].conditions = Some(EndpointConditions { ready: Some(false), ..Default::default() });
            let t = Instant::now();
            client.update(&s).await.expect("slice not ready");
            while query(&sock, port, &fqdn, id).map(|r| r.0) != Some(3) {
                id = id.wrapping_add(1);
            }
            gone.push(t.elapsed());
        }
        println!(
            "dns RSS: idle {} MiB, with {services} Services + {pods} pods {} MiB",
            idle / 1024,
            loaded / 1024
        );
        println!(
            "new Service → resolvable ({samples} samples): p50 {:?}  p99 {:?}  max {:?}",
            pct(&mut create, 0.5),
            pct(&mut create, 0.99),
            create.iter().max().copied().unwrap_or_default()
        );
        println!(
            "last ready endpoint gone → NXDOMAIN: p50 {:?}  p99 {:?}  max {:?}",
            pct(&mut gone, 0.5),
            pct(&mut gone, 0.99),
            gone.iter().max().copied().unwrap_or_default()
        );
    });
    let _ = dns.kill();
    let _ = dns.wait();
}
