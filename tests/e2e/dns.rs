//! The dns process as a user meets it: the real `netlab-dns` fed by the real apiserver, asked
//! with the real `dig` (Debian's dnsutils). Upstreams are tiny UDP responders in the test that
//! answer every A query with their own address and everything else with NXDOMAIN, and count
//! what they were asked.

use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use k8s_openapi::{
    api::{
        core::v1::{ConfigMap, Event, Namespace, ObjectReference, Pod, Service, ServicePort, ServiceSpec},
        discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use netlab_client::{Client, ListParams};
use netlab_e2e::{Apiserver, bin, eventually, free_port, runtime};

const WAIT: Duration = Duration::from_secs(20);

/// A running netlab-dns on free ports, killed on drop.
struct Dns {
    child: Option<Child>,
    port: u16,
    ready: u16,
    metrics: u16,
}

impl Dns {
    fn start(api: &Apiserver, upstream: &[SocketAddr]) -> Self {
        // Free ports can be taken by a parallel test before the server binds them: if it exits
        // at startup, try other ports.
        for _ in 0..5 {
            if let Some(dns) = Self::try_start(api, upstream) {
                return dns;
            }
        }
        panic!("netlab-dns did not start on five sets of ports");
    }

    fn try_start(api: &Apiserver, upstream: &[SocketAddr]) -> Option<Self> {
        let (port, health, ready, metrics) = (free_port(), free_port(), free_port(), free_port());
        let upstreams: Vec<String> = upstream.iter().map(|u| u.to_string()).collect();
        let mut cmd = Command::new(bin("netlab-dns"));
        cmd.args(["--server", &api.url()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--health-listen", &format!("127.0.0.1:{health}")])
            .args(["--ready-listen", &format!("127.0.0.1:{ready}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics}")])
            .args(["--advertise-address", "127.0.0.1"])
            .env("RUST_LOG", std::env::var("NETLAB_E2E_LOG").unwrap_or_else(|_| "warn".into()))
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null());
        if !upstreams.is_empty() {
            cmd.args(["--upstream", &upstreams.join(",")]);
        }
        let mut child = cmd.spawn().expect("spawn netlab-dns");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if child.try_wait().ok().flatten().is_some() {
                return None;
            }
            if std::net::TcpStream::connect(("127.0.0.1", health)).is_ok() {
                return Some(Self { child: Some(child), port, ready, metrics });
            }
            assert!(std::time::Instant::now() < deadline, "netlab-dns not serving /health after 20s");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    async fn dig(&self, args: &[&str]) -> Dig {
        dig(self.port, args).await
    }

    /// SIGTERM, as a kubelet stops a container.
    fn terminate(&mut self) -> Child {
        let child = self.child.take().expect("running");
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
        assert!(status.success());
        child
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What dig printed, by section; records with whitespace collapsed.
#[derive(Debug, Default)]
struct Dig {
    status: String,
    flags: Vec<String>,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
    raw: String,
}

impl Dig {
    fn has_flag(&self, f: &str) -> bool {
        self.flags.iter().any(|x| x == f)
    }
}

async fn dig(port: u16, args: &[&str]) -> Dig {
    let out = tokio::process::Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+time=3", "+tries=1"])
        .args(args)
        .output()
        .await
        .expect("dig (apt-get install dnsutils)");
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut d = Dig { raw: raw.clone(), ..Default::default() };
    let mut section: Option<&str> = None;
    for line in raw.lines() {
        if line.contains("->>HEADER<<-") {
            d = Dig { raw: raw.clone(), ..Default::default() };
            if let Some(s) = line.split("status: ").nth(1) {
                d.status = s.split(',').next().unwrap_or_default().to_string();
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix(";; flags:") {
            d.flags =
                rest.split(';').next().unwrap_or_default().split_whitespace().map(String::from).collect();
            continue;
        }
        match line {
            ";; ANSWER SECTION:" => section = Some("answer"),
            ";; AUTHORITY SECTION:" => section = Some("authority"),
            ";; ADDITIONAL SECTION:" => section = Some("additional"),
            "" => section = None,
            l if l.starts_with(';') => {}
            l => {
                let rec = l.split_whitespace().collect::<Vec<_>>().join(" ");
                match section {
                    Some("answer") => d.answer.push(rec),
                    Some("authority") => d.authority.push(rec),
                    Some("additional") => d.additional.push(rec),
                    _ => {}
                }
            }
        }
    }
    d.answer.sort();
    d.additional.sort();
    d
}

/// A fake upstream resolver: A → `ip`, anything else NXDOMAIN; or silence.
struct Upstream {
    addr: SocketAddr,
    asked: Arc<AtomicUsize>,
}

async fn upstream(ip: Ipv4Addr, answer: bool) -> Upstream {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else { return };
            count.fetch_add(1, Ordering::SeqCst);
            if !answer || n < 17 {
                continue;
            }
            let q = &buf[..n];
            let mut end = 12;
            while end < n && q[end] != 0 {
                end += q[end] as usize + 1;
            }
            let qtype = u16::from_be_bytes([q[end + 1], q[end + 2]]);
            let question = &q[12..end + 5];
            let mut reply = vec![q[0], q[1], 0x80 | (q[2] & 0x01), 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
            reply.extend_from_slice(question);
            if qtype == 1 {
                reply[7] = 1;
                reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                reply.extend_from_slice(&ip.octets());
            } else {
                reply[3] |= 3; // NXDOMAIN
            }
            let _ = sock.send_to(&reply, from).await;
        }
    });
    Upstream { addr, asked }
}

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), namespace: Some(ns.into()), ..Default::default() }
}

fn port(name: &str, proto: &str, number: i32) -> ServicePort {
    ServicePort { name: Some(name.into()), protocol: Some(proto.into()), port: number, ..Default::default() }
}

fn cluster_ip(ns: &str, name: &str, ip: &str, ports: Vec<ServicePort>) -> Service {
    Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec { cluster_ip: Some(ip.into()), ports: Some(ports), ..Default::default() }),
        ..Default::default()
    }
}

fn headless(ns: &str, name: &str, ports: Vec<ServicePort>) -> Service {
    cluster_ip(ns, name, "None", ports)
}

/// A hand-written slice: (address, hostname, ready).
fn slice(
    ns: &str,
    name: &str,
    svc: &str,
    eps: &[(&str, Option<&str>, bool)],
    ports: &[(&str, i32)],
) -> EndpointSlice {
    let mut m = meta(ns, name);
    m.labels = Some(BTreeMap::from([("kubernetes.io/service-name".to_string(), svc.to_string())]));
    EndpointSlice {
        metadata: m,
        address_type: "IPv4".into(),
        endpoints: eps
            .iter()
            .map(|(ip, host, ready)| Endpoint {
                addresses: vec![ip.to_string()],
                hostname: host.map(String::from),
                conditions: Some(EndpointConditions { ready: Some(*ready), ..Default::default() }),
                target_ref: Some(ObjectReference {
                    kind: Some("Pod".into()),
                    name: Some(format!("p-{ip}")),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect(),
        ports: Some(
            ports
                .iter()
                .map(|(n, p)| EndpointPort {
                    name: Some(n.to_string()),
                    protocol: Some("TCP".into()),
                    port: Some(*p),
                    ..Default::default()
                })
                .collect(),
        ),
    }
}

/// GET over plain HTTP/1.1; None while nothing listens.
async fn try_http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        let code = body.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        Some((code, body))
    })
    .await
    .unwrap()
}

async fn http_get(port: u16, path: &str) -> (u16, String) {
    try_http_get(port, path).await.unwrap_or_else(|| panic!("nothing serves 127.0.0.1:{port}{path}"))
}

/// The lab cluster the record tests ask about.
async fn populate(client: &Client) {
    client.create(&Namespace { metadata: meta("", "shop"), ..Default::default() }).await.unwrap();
    client.create(&cluster_ip("shop", "cart", "10.96.100.20", vec![port("http", "TCP", 80)])).await.unwrap();
    client.create(&headless("shop", "db", vec![port("pg", "TCP", 5432)])).await.unwrap();
    client
        .create(&slice(
            "shop",
            "db-a",
            "db",
            &[("10.244.1.10", Some("db-0"), true), ("10.244.1.11", None, false)],
            &[("pg", 5432)],
        ))
        .await
        .unwrap();
    client
        .create(&slice(
            "shop",
            "db-b",
            "db",
            &[("10.244.2.10", None, true), ("10.244.1.10", Some("db-0"), true)],
            &[("pg", 5432)],
        ))
        .await
        .unwrap();
    client.create(&headless("shop", "empty", vec![port("pg", "TCP", 5432)])).await.unwrap();
    client
        .create(&slice("shop", "empty-a", "empty", &[("10.244.3.3", None, false)], &[("pg", 5432)]))
        .await
        .unwrap();
    let ext = Service {
        metadata: meta("shop", "ext"),
        spec: Some(ServiceSpec {
            type_: Some("ExternalName".into()),
            external_name: Some("www.example.com".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    client.create(&ext).await.unwrap();
    // 100 ready endpoints: more than a 512-byte UDP answer holds.
    client.create(&headless("shop", "big", vec![port("http", "TCP", 80)])).await.unwrap();
    let ips: Vec<String> = (1..=100).map(|i| format!("10.244.9.{i}")).collect();
    let eps: Vec<(&str, Option<&str>, bool)> = ips.iter().map(|ip| (ip.as_str(), None, true)).collect();
    client.create(&slice("shop", "big-a", "big", &eps, &[("http", 80)])).await.unwrap();
}

#[test]
fn every_record_kind_and_negative_answer_as_coredns_gives_them() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    runtime().block_on(async {
        let up = upstream(Ipv4Addr::new(192, 0, 2, 10), true).await;
        let client = Client::new(&api.url()).unwrap();
        populate(&client).await;
        let dns = Dns::start(&api, &[up.addr]);
        eventually("the last Service to resolve", WAIT, || async {
            let d = dns.dig(&["big.shop.svc.cluster.local", "+tcp"]).await;
            (d.answer.len() == 100).then_some(())
        })
        .await;

        // ClusterIP: A, TTL 30 (kubeadm's ttl), authoritative; the kubernetes plugin never sets RA.
        let d = dns.dig(&["cart.shop.svc.cluster.local"]).await;
        assert_eq!(d.status, "NOERROR", "{}", d.raw);
        assert_eq!(d.answer, vec!["cart.shop.svc.cluster.local. 30 IN A 10.96.100.20"]);
        assert_eq!(d.flags, ["qr", "aa", "rd"], "{}", d.raw);
        assert!(d.raw.contains("WARNING: recursion requested but not available"), "{}", d.raw);
        // The query's case is echoed.
        let d = dns.dig(&["CaRt.ShOp.SVC.cluster.LOCAL"]).await;
        assert_eq!(d.answer, vec!["CaRt.ShOp.SVC.cluster.LOCAL. 30 IN A 10.96.100.20"]);
        // The same over TCP.
        let d = dns.dig(&["cart.shop.svc.cluster.local", "+tcp"]).await;
        assert_eq!(d.answer, vec!["cart.shop.svc.cluster.local. 30 IN A 10.96.100.20"]);

        // NODATA: the name exists, not the type; SOA in Authority, AA, no RA.
        let d = dns.dig(&["cart.shop.svc.cluster.local", "AAAA"]).await;
        assert_eq!((d.status.as_str(), d.answer.len()), ("NOERROR", 0), "{}", d.raw);
        assert_eq!(d.authority.len(), 1);
        let soa: Vec<&str> = d.authority[0].split(' ').collect();
        assert_eq!(
            [soa[0], soa[1], soa[3], soa[4], soa[5], soa[7], soa[8], soa[9], soa[10]],
            ["cluster.local.", "30", "SOA", "ns.dns.cluster.local.", "hostmaster.cluster.local.", "7200", "1800", "86400", "30"]
        );
        assert!(d.has_flag("aa") && !d.has_flag("ra"), "{:?}", d.flags);
        for name in ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "shop.pod.cluster.local"] {
            let d = dns.dig(&[name]).await;
            assert_eq!((d.status.as_str(), d.answer.len(), d.authority.len()), ("NOERROR", 0, 1), "{name}: {}", d.raw);
        }

        // NXDOMAIN: missing Service, missing namespace, extra labels, wildcards.
        for name in [
            "nope.shop.svc.cluster.local",
            "cart.nowhere.svc.cluster.local",
            "nowhere.svc.cluster.local",
            "a.b.cart.shop.svc.cluster.local",
            "*.shop.svc.cluster.local",
            "x.ext.shop.svc.cluster.local",
        ] {
            let d = dns.dig(&[name]).await;
            assert_eq!(d.status, "NXDOMAIN", "{name}: {}", d.raw);
            assert!(d.authority[0].starts_with("cluster.local. 30 IN SOA ns.dns.cluster.local."), "{name}: {}", d.raw);
            assert!(d.has_flag("aa"));
        }
        // Cluster misses never go upstream.
        assert_eq!(up.asked.load(Ordering::SeqCst), 0);

        // Headless: one A per ready endpoint, slices merged and deduplicated.
        let d = dns.dig(&["db.shop.svc.cluster.local"]).await;
        assert_eq!(
            d.answer,
            vec!["db.shop.svc.cluster.local. 30 IN A 10.244.1.10", "db.shop.svc.cluster.local. 30 IN A 10.244.2.10"]
        );
        let d = dns.dig(&["db-0.db.shop.svc.cluster.local"]).await;
        assert_eq!(d.answer, vec!["db-0.db.shop.svc.cluster.local. 30 IN A 10.244.1.10"]);
        let d = dns.dig(&["10-244-2-10.db.shop.svc.cluster.local"]).await;
        assert_eq!(d.answer, vec!["10-244-2-10.db.shop.svc.cluster.local. 30 IN A 10.244.2.10"]);
        // Not-ready endpoints have no name; a headless Service with none ready is NXDOMAIN.
        assert_eq!(dns.dig(&["10-244-1-11.db.shop.svc.cluster.local"]).await.status, "NXDOMAIN");
        assert_eq!(dns.dig(&["empty.shop.svc.cluster.local"]).await.status, "NXDOMAIN");

        // SRV: CoreDNS's weight (100 / entries) and the targets' addresses in Additional.
        let d = dns.dig(&["_pg._tcp.db.shop.svc.cluster.local", "SRV"]).await;
        assert_eq!(
            d.answer,
            vec![
                "_pg._tcp.db.shop.svc.cluster.local. 30 IN SRV 0 33 5432 10-244-2-10.db.shop.svc.cluster.local.",
                "_pg._tcp.db.shop.svc.cluster.local. 30 IN SRV 0 33 5432 db-0.db.shop.svc.cluster.local.",
            ]
        );
        assert_eq!(
            d.additional,
            vec![
                "10-244-2-10.db.shop.svc.cluster.local. 30 IN A 10.244.2.10",
                "db-0.db.shop.svc.cluster.local. 30 IN A 10.244.1.10",
            ]
        );
        let d = dns.dig(&["cart.shop.svc.cluster.local", "SRV"]).await;
        assert_eq!(d.answer, vec!["cart.shop.svc.cluster.local. 30 IN SRV 0 100 80 cart.shop.svc.cluster.local."]);
        assert_eq!(d.additional, vec!["cart.shop.svc.cluster.local. 30 IN A 10.96.100.20"]);
        assert_eq!(dns.dig(&["_nope._tcp.cart.shop.svc.cluster.local", "SRV"]).await.status, "NXDOMAIN");

        // PTR: ClusterIP, then endpoints; a miss falls through to the upstream.
        let d = dns.dig(&["-x", "10.96.100.20"]).await;
        assert_eq!(d.answer, vec!["20.100.96.10.in-addr.arpa. 30 IN PTR cart.shop.svc.cluster.local."]);
        let d = dns.dig(&["-x", "10.244.1.10"]).await;
        assert_eq!(d.answer, vec!["10.1.244.10.in-addr.arpa. 30 IN PTR db-0.db.shop.svc.cluster.local."]);
        let before = up.asked.load(Ordering::SeqCst);
        let d = dns.dig(&["-x", "192.0.2.77"]).await;
        assert_eq!(d.status, "NXDOMAIN", "{}", d.raw);
        assert!(!d.has_flag("aa"), "the upstream's answer, not ours: {:?}", d.flags);
        assert_eq!(up.asked.load(Ordering::SeqCst), before + 1);

        // ExternalName: the CNAME, then the target resolved upstream.
        let d = dns.dig(&["ext.shop.svc.cluster.local"]).await;
        assert_eq!(d.status, "NOERROR", "{}", d.raw);
        assert_eq!(
            d.answer,
            vec!["ext.shop.svc.cluster.local. 30 IN CNAME www.example.com.", "www.example.com. 60 IN A 192.0.2.10"]
        );
        let d = dns.dig(&["ext.shop.svc.cluster.local", "SRV"]).await;
        assert_eq!((d.status.as_str(), d.answer.len()), ("NOERROR", 0));

        // pods insecure, dns-version, SOA and NS at the apex.
        let d = dns.dig(&["10-244-1-99.shop.pod.cluster.local"]).await;
        assert_eq!(d.answer, vec!["10-244-1-99.shop.pod.cluster.local. 30 IN A 10.244.1.99"]);
        assert_eq!(dns.dig(&["10-244-1-99.nowhere.pod.cluster.local"]).await.status, "NXDOMAIN");
        let d = dns.dig(&["dns-version.cluster.local", "TXT"]).await;
        assert_eq!(d.answer, vec!["dns-version.cluster.local. 28800 IN TXT \"1.1.0\""]);
        let d = dns.dig(&["cluster.local", "SOA"]).await;
        assert!(d.answer[0].starts_with("cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local."), "{}", d.raw);
        let d = dns.dig(&["cluster.local", "NS"]).await;
        assert_eq!(d.answer, vec!["cluster.local. 30 IN NS ns.dns.cluster.local."]);
        assert_eq!(d.additional, vec!["ns.dns.cluster.local. 30 IN A 127.0.0.1"]);

        // Truncation: without EDNS the UDP answer is cut with TC; dig retries over TCP.
        let d = dns.dig(&["big.shop.svc.cluster.local", "+noedns", "+ignore"]).await;
        assert!(d.has_flag("tc"), "{:?}", d.flags);
        assert!(d.answer.len() < 100);
        let d = dns.dig(&["big.shop.svc.cluster.local", "+noedns"]).await;
        assert!(d.raw.contains("Truncated, retrying in TCP mode"), "{}", d.raw);
        assert_eq!(d.answer.len(), 100);

        // Names outside the cluster go upstream; a second ask is a cache hit.
        let d = dns.dig(&["example.org"]).await;
        assert_eq!(d.answer, vec!["example.org. 60 IN A 192.0.2.10"]);
        let asked = up.asked.load(Ordering::SeqCst);
        let d = dns.dig(&["example.org"]).await;
        assert_eq!(d.answer.len(), 1);
        assert_eq!(up.asked.load(Ordering::SeqCst), asked, "served from the cache");

        let (code, text) = http_get(dns.metrics, "/metrics").await;
        assert_eq!(code, 200);
        for needle in [
            "coredns_dns_requests_total{family=\"1\",proto=\"udp\",server=\"dns://:",
            "coredns_dns_responses_total{plugin=\"kubernetes\",rcode=\"NXDOMAIN\"",
            "coredns_dns_request_duration_seconds_bucket{",
            "coredns_cache_hits_total{server=\"dns://:",
            "coredns_cache_misses_total{",
            &format!("coredns_forward_requests_total{{to=\"{}\"}}", up.addr),
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        assert_eq!(http_get(dns.ready, "/ready").await.0, 200);
    });
}

/// The zone's apex as `dig` shows it. The NS names the Service whose ready endpoints hold this
/// server's pod IP, with that Service's ClusterIP as glue (ns.go `nsAddrs`); only while no endpoint
/// holds it, `ns.dns.<zone>` with the pod IP itself.
#[test]
fn the_apex_ns_names_kube_dns_and_glues_its_cluster_ip() {
    let dir = tempfile::tempdir().unwrap();
    // The dns pod's address is loopback here, which an EndpointSlice may only name in the lab. The
    // apiserver publishes another one for `kubernetes`, as its node IP differs from CoreDNS's pod
    // IP in a cluster: a Service fronting this server's address is named in the NS too.
    let api =
        Apiserver::start(dir.path(), &["--allow-loopback-endpoints", "--advertise-address", "127.0.0.2"]);
    runtime().block_on(async {
        let client = Client::new(&api.url()).unwrap();
        let dns = Dns::start(&api, &[]);
        eventually("the server to answer", WAIT, || async {
            (dns.dig(&["kubernetes.default.svc.cluster.local"]).await.answer.len() == 1).then_some(())
        })
        .await;
        // No EndpointSlice controller runs here: kube-dns has no endpoints yet.
        let d = dns.dig(&["cluster.local", "NS"]).await;
        assert_eq!((d.status.as_str(), d.flags.join(" ").as_str()), ("NOERROR", "qr aa rd"), "{}", d.raw);
        assert_eq!(d.answer, ["cluster.local. 30 IN NS ns.dns.cluster.local."], "{}", d.raw);
        assert_eq!(d.additional, ["ns.dns.cluster.local. 30 IN A 127.0.0.1"], "{}", d.raw);
        assert!(d.authority.is_empty(), "{}", d.raw);

        // kube-dns's EndpointSlice, as the controller writes it for this server's pod.
        client
            .create(&slice(
                "kube-system",
                "kube-dns-x7k2p",
                "kube-dns",
                &[("127.0.0.1", None, true)],
                &[("dns", 53)],
            ))
            .await
            .unwrap();
        let d = eventually("the NS to name kube-dns", WAIT, || async {
            let d = dns.dig(&["cluster.local", "NS"]).await;
            (d.answer == ["cluster.local. 30 IN NS kube-dns.kube-system.svc.cluster.local."]).then_some(d)
        })
        .await;
        assert_eq!((d.status.as_str(), d.flags.join(" ").as_str()), ("NOERROR", "qr aa rd"), "{}", d.raw);
        assert_eq!(d.additional, ["kube-dns.kube-system.svc.cluster.local. 30 IN A 10.96.0.10"], "{}", d.raw);
        assert!(d.authority.is_empty(), "{}", d.raw);
        // The SOA's MNAME, ns.dns.<zone>, resolves to the same address.
        let d = dns.dig(&["ns.dns.cluster.local"]).await;
        assert_eq!(d.answer, ["ns.dns.cluster.local. 30 IN A 10.96.0.10"], "{}", d.raw);

        // The SOA is the answer at the apex and Authority for the apex's other types.
        let soa = "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local.";
        let d = dns.dig(&["cluster.local", "SOA"]).await;
        assert!(d.answer.len() == 1 && d.answer[0].starts_with(soa), "{}", d.raw);
        assert!(d.answer[0].ends_with(" 7200 1800 86400 30") && d.authority.is_empty(), "{}", d.raw);
        for qtype in ["A", "ANY"] {
            let d = dns.dig(&["cluster.local", qtype]).await;
            assert_eq!((d.status.as_str(), d.answer.len()), ("NOERROR", 0), "{qtype}: {}", d.raw);
            assert!(d.authority.len() == 1 && d.authority[0].starts_with(soa), "{qtype}: {}", d.raw);
            assert_eq!(d.flags, ["qr", "aa", "rd"], "{qtype}: {}", d.raw);
        }
        // A reverse zone's apex: nsAddrs joins the Service's name with that zone.
        let d = dns.dig(&["in-addr.arpa", "NS"]).await;
        assert_eq!(d.answer, ["in-addr.arpa. 30 IN NS kube-dns.kube-system.svc.in-addr.arpa."], "{}", d.raw);
        assert_eq!(d.additional, ["kube-dns.kube-system.svc.in-addr.arpa. 30 IN A 10.96.0.10"], "{}", d.raw);
    });
}

#[test]
fn new_services_and_vanishing_endpoints_show_up_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    runtime().block_on(async {
        let client = Client::new(&api.url()).unwrap();
        let dns = Dns::start(&api, &[]);
        eventually("the server to answer", WAIT, || async {
            (dns.dig(&["kubernetes.default.svc.cluster.local"]).await.answer.len() == 1).then_some(())
        })
        .await;
        assert_eq!(dns.dig(&["web.default.svc.cluster.local"]).await.status, "NXDOMAIN");
        client
            .create(&cluster_ip("default", "web", "10.96.100.30", vec![port("http", "TCP", 80)]))
            .await
            .unwrap();
        eventually("web to resolve", WAIT, || async {
            (dns.dig(&["web.default.svc.cluster.local"]).await.answer
                == ["web.default.svc.cluster.local. 30 IN A 10.96.100.30"])
            .then_some(())
        })
        .await;
        client.create(&headless("default", "solo", vec![])).await.unwrap();
        client.create(&slice("default", "solo-a", "solo", &[("10.244.5.5", None, true)], &[])).await.unwrap();
        eventually("solo to resolve", WAIT, || async {
            (dns.dig(&["solo.default.svc.cluster.local"]).await.answer.len() == 1).then_some(())
        })
        .await;
        // The last ready endpoint goes: NXDOMAIN.
        let mut s: EndpointSlice = client.get("default", "solo-a").await.unwrap();
        s.endpoints[0].conditions = Some(EndpointConditions { ready: Some(false), ..Default::default() });
        client.update(&s).await.unwrap();
        eventually("solo to be NXDOMAIN", WAIT, || async {
            (dns.dig(&["solo.default.svc.cluster.local"]).await.status == "NXDOMAIN").then_some(())
        })
        .await;
        // A namespace that appears makes its names exist.
        assert_eq!(dns.dig(&["late.svc.cluster.local"]).await.status, "NXDOMAIN");
        client.create(&Namespace { metadata: meta("", "late"), ..Default::default() }).await.unwrap();
        eventually("namespace late to exist", WAIT, || async {
            (dns.dig(&["late.svc.cluster.local"]).await.status == "NOERROR").then_some(())
        })
        .await;
    });
}

/// The packet cache (dns/src/server/udp.rs) repeats a reply to the same query bytes, and nothing a
/// client could tell apart: a zone change is seen at once, the case of the question is the
/// client's own, and a `cache` hit's TTL still counts down.
#[test]
fn repeated_queries_are_answered_from_the_packet_cache_as_the_chain_would() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    runtime().block_on(async {
        let up = upstream(Ipv4Addr::new(192, 0, 2, 20), true).await;
        let client = Client::new(&api.url()).unwrap();
        let dns = Dns::start(&api, &[up.addr]);
        let hits = || async {
            let (_, text) = http_get(dns.metrics, "/metrics").await;
            let line = text
                .lines()
                .find(|l| l.starts_with("netlab_dns_packet_cache_hits_total "))
                .expect("packet cache metric");
            line.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
        };
        client
            .create(&cluster_ip("default", "web", "10.96.100.40", vec![port("http", "TCP", 80)]))
            .await
            .unwrap();
        eventually("web to resolve", WAIT, || async {
            (nocookie(&dns, "web.default.svc.cluster.local").await.answer
                == ["web.default.svc.cluster.local. 30 IN A 10.96.100.40"])
            .then_some(())
        })
        .await;
        let before = hits().await;
        for _ in 0..3 {
            let d = nocookie(&dns, "web.default.svc.cluster.local").await;
            assert_eq!(d.answer, ["web.default.svc.cluster.local. 30 IN A 10.96.100.40"], "{}", d.raw);
            assert!(d.raw.contains("flags: qr aa rd;"), "{}", d.raw);
        }
        assert_eq!(hits().await, before + 3, "repeats answered from the packet cache");
        // Another case is another query, answered in its own case.
        let d = nocookie(&dns, "WEB.default.svc.cluster.local").await;
        assert_eq!(d.answer, ["WEB.default.svc.cluster.local. 30 IN A 10.96.100.40"], "{}", d.raw);

        // The Service goes: the very next repeat is NXDOMAIN.
        client.delete::<Service>("default", "web").await.unwrap();
        eventually("web to be NXDOMAIN", WAIT, || async {
            (nocookie(&dns, "web.default.svc.cluster.local").await.status == "NXDOMAIN").then_some(())
        })
        .await;
        let d = nocookie(&dns, "web.default.svc.cluster.local").await;
        assert_eq!(d.status, "NXDOMAIN", "{}", d.raw);
        assert!(d.authority.iter().any(|r| r.contains(" SOA ")), "{}", d.raw);

        // Upstream's answer is never repeated; the `cache` plugin's is, until its TTL ticks.
        let first = nocookie(&dns, "api.example.com").await;
        assert_eq!(first.answer, ["api.example.com. 60 IN A 192.0.2.20"], "{}", first.raw);
        let asked = up.asked.load(Ordering::SeqCst);
        let again = nocookie(&dns, "api.example.com").await;
        assert_eq!(again.answer.len(), 1, "{}", again.raw);
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let later = nocookie(&dns, "api.example.com").await;
        let ttl = |d: &Dig| d.answer[0].split(' ').nth(1).unwrap().parse::<u32>().unwrap();
        assert!(
            ttl(&later) <= ttl(&again) - 2,
            "TTL {} then {} after 2.1 s:\n{}",
            ttl(&again),
            ttl(&later),
            later.raw
        );
        assert_eq!(up.asked.load(Ordering::SeqCst), asked, "served from the cache plugin");
    });
}

/// dig sends a fresh client cookie each run; +nocookie makes the query bytes repeat.
async fn nocookie(dns: &Dns, name: &str) -> Dig {
    dns.dig(&[name, "+nocookie"]).await
}

#[test]
fn editing_the_corefile_moves_forwarding_and_a_bad_one_keeps_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    runtime().block_on(async {
        let first = upstream(Ipv4Addr::new(192, 0, 2, 1), true).await;
        let second = upstream(Ipv4Addr::new(192, 0, 2, 2), true).await;
        let client = Client::new(&api.url()).unwrap();
        let dns = Dns::start(&api, &[first.addr]);
        // kubeadm's Corefile from the bootstrap ConfigMap: `forward . /etc/resolv.conf` = --upstream.
        eventually("api.example.com via the first upstream", WAIT, || async {
            (dns.dig(&["api.example.com"]).await.answer == ["api.example.com. 60 IN A 192.0.2.1"])
                .then_some(())
        })
        .await;

        let mut cm: ConfigMap = client.get("kube-system", "coredns").await.unwrap();
        let corefile = cm.data.as_ref().unwrap()["Corefile"].clone();
        assert!(corefile.contains("forward . /etc/resolv.conf"), "{corefile}");
        let edited = corefile.replace("forward . /etc/resolv.conf", &format!("forward . {}", second.addr));
        cm.data.as_mut().unwrap().insert("Corefile".into(), edited.clone());
        client.update(&cm).await.unwrap();
        // The reload starts a fresh cache, so even the name asked before moves.
        eventually("api.example.com via the second upstream", WAIT, || async {
            (dns.dig(&["api.example.com"]).await.answer == ["api.example.com. 60 IN A 192.0.2.2"])
                .then_some(())
        })
        .await;

        // A broken Corefile: the running config stays; a Warning Event says why.
        let mut cm: ConfigMap = client.get("kube-system", "coredns").await.unwrap();
        cm.data
            .as_mut()
            .unwrap()
            .insert("Corefile".into(), edited.replace("    loop\n", "    loop\n    bogus\n"));
        client.update(&cm).await.unwrap();
        let event = eventually("the reload failure Event", WAIT, || async {
            let params = ListParams {
                namespace: "kube-system".into(),
                fields: "involvedObject.name=coredns,reason=CorefileReloadFailed".into(),
                ..Default::default()
            };
            client.list::<Event>(&params).await.ok()?.0.into_iter().next()
        })
        .await;
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(event.involved_object.kind.as_deref(), Some("ConfigMap"));
        let message = event.message.unwrap_or_default();
        assert!(
            message.starts_with("plugin/reload: Corefile changed but reload failed: Corefile:")
                && message.ends_with("Error during parsing: Unknown directive 'bogus'"),
            "{message}"
        );
        let asked = second.asked.load(Ordering::SeqCst);
        assert_eq!(dns.dig(&["other.example.com"]).await.answer, ["other.example.com. 60 IN A 192.0.2.2"]);
        assert_eq!(second.asked.load(Ordering::SeqCst), asked + 1);
        assert_eq!(
            first.asked.load(Ordering::SeqCst),
            1,
            "the first upstream was asked once, before the edit"
        );
    });
}

#[test]
fn max_concurrent_refuses_what_is_over_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    runtime().block_on(async {
        let silent = upstream(Ipv4Addr::LOCALHOST, false).await;
        let client = Client::new(&api.url()).unwrap();
        let mut cm: ConfigMap = client.get("kube-system", "coredns").await.unwrap();
        let corefile =
            cm.data.as_ref().unwrap()["Corefile"].replace("max_concurrent 1000", "max_concurrent 1");
        cm.data.as_mut().unwrap().insert("Corefile".into(), corefile);
        client.update(&cm).await.unwrap();
        let dns = Dns::start(&api, &[silent.addr]);
        let metrics = dns.metrics;
        eventually("the edited Corefile to be running", WAIT, || async {
            let (_, text) = try_http_get(metrics, "/metrics").await?;
            dns.dig(&["kubernetes.default.svc.cluster.local"]).await;
            text.contains("coredns_dns_requests_total").then_some(())
        })
        .await;
        // The ConfigMap is read alongside the first lists: give it a moment to be swapped in.
        tokio::time::sleep(Duration::from_millis(500)).await;
        // One query hangs on the silent upstream; the next one is over the limit.
        let port = dns.port;
        let hanging = tokio::spawn(async move { dig(port, &["slow.example.com"]).await });
        eventually("the first query upstream", WAIT, || async {
            (silent.asked.load(Ordering::SeqCst) >= 1).then_some(())
        })
        .await;
        let d = dns.dig(&["fast.example.com"]).await;
        assert_eq!(d.status, "REFUSED", "{}", d.raw);
        let (_, text) = http_get(metrics, "/metrics").await;
        assert!(text.contains("coredns_forward_max_concurrent_rejects_total 1"), "{text}");
        hanging.abort();
    });
}

#[test]
fn registers_as_the_kube_dns_pod_and_leaves_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    runtime().block_on(async {
        let client = Client::new(&api.url()).unwrap();
        let mut dns = Dns::start(&api, &[]);
        let params = ListParams {
            namespace: "kube-system".into(),
            labels: "k8s-app=kube-dns".into(),
            ..Default::default()
        };
        let pod = eventually("a Ready kube-dns pod", WAIT, || async {
            let pods = client.list::<Pod>(&params).await.ok()?.0;
            let pod = pods.into_iter().next()?;
            let ready = pod
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then_some(pod)
        })
        .await;
        let name = pod.metadata.name.clone().unwrap();
        assert!(name.starts_with("coredns-") && name.len() == "coredns-".len() + 5, "{name}");
        let spec = pod.spec.unwrap();
        assert_eq!(spec.host_network, Some(true));
        assert_eq!(spec.scheduler_name.as_deref(), Some("netlab-static"));
        assert_eq!(spec.node_name, None);
        assert_eq!(spec.containers[0].image.as_deref(), Some("registry.k8s.io/coredns/coredns:v1.12.0"));
        let status = pod.status.unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.pod_ip.as_deref(), Some("127.0.0.1"));
        assert!(status.container_statuses.unwrap()[0].ready);

        // Deleted behind its back: it comes back (as a Deployment would bring a pod back).
        client.delete::<Pod>("kube-system", &name).await.unwrap();
        eventually("a new kube-dns pod", Duration::from_secs(30), || async {
            let pods = client.list::<Pod>(&params).await.ok()?.0;
            (pods.len() == 1 && pods[0].metadata.name.as_deref() != Some(name.as_str())).then_some(())
        })
        .await;

        // SIGTERM: the pod goes first (then the lameduck period).
        let mut child = dns.terminate();
        eventually("no kube-dns pod", WAIT, || async {
            client.list::<Pod>(&params).await.ok()?.0.is_empty().then_some(())
        })
        .await;
        let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
        assert!(status.success(), "{status}");
    });
}
