//! The `forward` plugin: relays a query's wire bytes to an upstream and returns the reply's
//! bytes. Upstreams come from the Corefile (`IP[:PORT]`) or from a resolv.conf — and in the lab
//! `--upstream` says what `/etc/resolv.conf` means, so the `cloud` process can play the outside
//! world's resolver. The query goes out over the client's protocol (UDP stays UDP, so a
//! truncated reply is relayed with TC and the client retries over TCP, as with CoreDNS), unless
//! `force_tcp`. `max_concurrent` caps queries in flight; above it the caller answers REFUSED.
//!
//! Upstream health is CoreDNS's (plugin/forward/forward.go, plugin/pkg/proxy): a query that
//! fails (2 s read timeout, or a socket error) starts a health probe of that upstream — `. IN NS`
//! with RD (`health_check ... no_rec`, `domain`), 1 s timeout, every `health_check` interval
//! (0.5 s) until one succeeds. Each failed probe counts a fail, a good one (any reply: a SERVFAIL
//! is an answer) clears them; with more than `max_fails` (2) fails the upstream is down and
//! queries skip it. When every upstream is down CoreDNS assumes its health checking is broken and
//! tries one at random anyway (`coredns_forward_healthcheck_broken_total`), unless
//! `failfast_all_unhealthy_upstreams`, which answers SERVFAIL at once. A query keeps cycling
//! through the upstreams until one answers or 5 s have passed; then the client gets SERVFAIL.

use std::{
    net::SocketAddr,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpStream, UdpSocket},
};
use tokio_util::sync::CancellationToken;

use crate::{
    corefile::{ForwardOpts, Policy, Upstream},
    error::{Error, Result},
    metrics::Metrics,
};

/// How long one upstream gets before the next is tried (CoreDNS's proxy `readTimeout`).
const TRY_TIMEOUT: Duration = Duration::from_secs(2);
/// CoreDNS forward's overall deadline per query (`defaultTimeout`).
const DEADLINE: Duration = Duration::from_secs(5);
/// A health probe's read timeout (proxy/health.go).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// One upstream and its health (CoreDNS's `proxy.Proxy`).
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    /// Failed health probes since the last good one.
    fails: AtomicU32,
    /// Whether a probe loop runs (CoreDNS's `up.Probe` runs one at a time).
    probing: AtomicBool,
}

impl Proxy {
    fn new(addr: SocketAddr) -> Arc<Self> {
        Arc::new(Self { addr, fails: AtomicU32::new(0), probing: AtomicBool::new(false) })
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Failed probes since the last good one.
    pub fn fails(&self) -> u32 {
        self.fails.load(Ordering::Acquire)
    }

    /// Down: more than `max_fails` fails (never, with `max_fails 0`).
    pub fn down(&self, max_fails: u32) -> bool {
        max_fails != 0 && self.fails() > max_fails
    }
}

/// How upstreams are probed.
#[derive(Debug, Clone)]
struct HealthCheck {
    interval: Duration,
    recursion_desired: bool,
    domain: String,
    tcp: bool,
}

/// One `forward` instance.
#[derive(Debug)]
pub struct Forwarder {
    from: String,
    except: Vec<String>,
    proxies: Vec<Arc<Proxy>>,
    policy: Policy,
    next: AtomicUsize,
    max_concurrent: Option<usize>,
    inflight: AtomicUsize,
    force_tcp: bool,
    max_fails: u32,
    failfast: bool,
    health: HealthCheck,
    /// Stops the probe loops when the forwarder goes (a reload builds a new one).
    stop: CancellationToken,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A slot under `max_concurrent`; released on drop.
pub struct Permit<'a>(&'a AtomicUsize);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

// === impl Forwarder ===

impl Forwarder {
    /// Builds the forwarder; `resolv_conf_override` replaces the nameservers of
    /// `/etc/resolv.conf` when not empty.
    pub fn new(opts: &ForwardOpts, resolv_conf_override: &[SocketAddr]) -> Self {
        let mut upstreams = Vec::new();
        for to in &opts.to {
            match to {
                Upstream::Addr(a) => upstreams.push(*a),
                Upstream::ResolvConf(path)
                    if path == Path::new("/etc/resolv.conf") && !resolv_conf_override.is_empty() =>
                {
                    upstreams.extend_from_slice(resolv_conf_override)
                }
                Upstream::ResolvConf(path) => upstreams.extend(nameservers(path)),
            }
        }
        Self {
            from: opts.from.clone(),
            except: opts.except.clone(),
            proxies: upstreams.into_iter().map(Proxy::new).collect(),
            policy: opts.policy,
            next: AtomicUsize::new(0),
            max_concurrent: opts.max_concurrent,
            inflight: AtomicUsize::new(0),
            force_tcp: opts.force_tcp,
            max_fails: opts.max_fails,
            failfast: opts.failfast,
            health: HealthCheck {
                interval: opts.health_check,
                recursion_desired: opts.hc_recursion_desired,
                domain: opts.hc_domain.clone(),
                tcp: opts.force_tcp,
            },
            stop: CancellationToken::new(),
        }
    }

    /// The upstreams, resolved.
    pub fn upstreams(&self) -> Vec<SocketAddr> {
        self.proxies.iter().map(|p| p.addr).collect()
    }

    /// The upstreams with their health.
    pub fn proxies(&self) -> &[Arc<Proxy>] {
        &self.proxies
    }

    /// Whether this forwarder handles `lower` (in `from`, not in `except`).
    pub fn matches(&self, lower: &str) -> bool {
        crate::zone::is_subdomain(lower, &self.from)
            && !self.except.iter().any(|z| crate::zone::is_subdomain(lower, z))
    }

    /// A slot, or [`Error::MaxConcurrent`] when `max_concurrent` queries are in flight.
    pub fn permit(&self) -> Result<Permit<'_>> {
        let now = self.inflight.fetch_add(1, Ordering::AcqRel) + 1;
        let permit = Permit(&self.inflight);
        match self.max_concurrent {
            Some(max) if now > max => Err(Error::MaxConcurrent),
            _ => Ok(permit),
        }
    }

    /// The upstreams in the order `policy` tries them for one query.
    fn order(&self) -> Vec<Arc<Proxy>> {
        let n = self.proxies.len();
        if n == 0 {
            return vec![];
        }
        let start = match self.policy {
            Policy::Sequential => 0,
            Policy::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % n,
            Policy::Random => rand::random_range(0..n),
        };
        (0..n).map(|i| self.proxies[(start + i) % n].clone()).collect()
    }

    /// Sends `query` (wire bytes) upstream and returns the reply's bytes and who answered, as
    /// CoreDNS's `ServeDNS` loop does: healthy upstreams in policy order, again from the start
    /// until the deadline; a random one when all are down.
    pub async fn exchange(
        &self,
        query: &[u8],
        tcp: bool,
        metrics: &Arc<Metrics>,
    ) -> Result<(Vec<u8>, SocketAddr)> {
        let list = self.order();
        if list.is_empty() {
            return Err(Error::NoUpstream);
        }
        let deadline = Instant::now() + DEADLINE;
        let (mut i, mut fails) = (0, 0);
        let mut last: Option<Error> = None;
        while Instant::now() < deadline {
            if i >= list.len() {
                i = 0;
                fails = 0;
            }
            let mut proxy = &list[i];
            i += 1;
            if proxy.down(self.max_fails) {
                fails += 1;
                if fails < self.proxies.len() {
                    continue;
                }
                metrics.healthcheck_broken();
                if self.failfast {
                    break;
                }
                // Every upstream is down: assume the health checks are broken, try one anyway.
                proxy = &self.proxies[rand::random_range(0..self.proxies.len())];
            }
            let upstream = proxy.addr;
            let started = Instant::now();
            metrics.forward_request(upstream);
            let over_tcp = tcp || self.force_tcp;
            let attempt = tokio::time::timeout(TRY_TIMEOUT, async {
                if over_tcp {
                    exchange_tcp(upstream, query).await
                } else {
                    exchange_udp(upstream, query).await
                }
            })
            .await;
            match attempt {
                Ok(Ok(reply)) => {
                    let rcode = reply.get(3).map(|b| b & 0x0f).unwrap_or(2);
                    metrics.forward_response(upstream, rcode, started.elapsed());
                    return Ok((reply, upstream));
                }
                Ok(Err(e)) => last = Some(Error::Upstream { upstream, message: e.to_string() }),
                Err(_) => {
                    let proto = if over_tcp { "tcp" } else { "udp" };
                    last = Some(Error::Upstream {
                        upstream,
                        message: format!("read {proto} {upstream}: i/o timeout"),
                    })
                }
            }
            // Kick off a health check to see whether this upstream is broken.
            if self.max_fails != 0 {
                self.healthcheck(proxy.clone(), metrics.clone());
            }
            if fails < self.proxies.len() {
                continue;
            }
            break;
        }
        Err(last.unwrap_or(Error::NoHealthy))
    }

    /// Probes `proxy` every `health_check` interval until it answers, unless a probe loop for it
    /// already runs (CoreDNS's `up.Probe.Do`).
    fn healthcheck(&self, proxy: Arc<Proxy>, metrics: Arc<Metrics>) {
        if proxy.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (health, stop) = (self.health.clone(), self.stop.clone());
        tokio::spawn(async move {
            loop {
                if probe(proxy.addr, &health).await {
                    proxy.fails.store(0, Ordering::Release);
                    break;
                }
                proxy.fails.fetch_add(1, Ordering::AcqRel);
                metrics.healthcheck_failure(proxy.addr);
                tracing::debug!(upstream = %proxy.addr, fails = proxy.fails(), "Health check failed.");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(health.interval) => {}
                }
            }
            proxy.probing.store(false, Ordering::Release);
        });
    }
}

/// One health probe: `DOMAIN IN NS`; any reply with our ID counts as healthy (only I/O errors
/// and timeouts are fails, as in proxy/health.go).
async fn probe(upstream: SocketAddr, health: &HealthCheck) -> bool {
    let query = probe_query(&health.domain, health.recursion_desired);
    let exchange = async {
        if health.tcp { exchange_tcp(upstream, &query).await } else { exchange_udp(upstream, &query).await }
    };
    matches!(tokio::time::timeout(PROBE_TIMEOUT, exchange).await, Ok(Ok(_)))
}

/// The probe's wire form: a random ID, RD as configured, one question `domain NS IN`.
fn probe_query(domain: &str, recursion_desired: bool) -> Vec<u8> {
    let id: u16 = rand::random();
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[if recursion_desired { 0x01 } else { 0x00 }, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in domain.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        let bytes = &label.as_bytes()[..label.len().min(63)];
        q.push(bytes.len() as u8);
        q.extend_from_slice(bytes);
    }
    q.push(0);
    q.extend_from_slice(&[0, 2, 0, 1]); // NS, IN
    q
}

async fn exchange_udp(upstream: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let bind: SocketAddr = if upstream.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(upstream).await?;
    sock.send(query).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await?;
        // Only a reply with our ID counts (a late reply to someone else's query is dropped).
        if n >= 12 && buf[..2] == query[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn exchange_tcp(upstream: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    let len = u16::try_from(query.len()).map_err(|_| std::io::Error::other("query too long"))?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let n = stream.read_u16().await? as usize;
    let mut buf = vec![0u8; n];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

/// The `nameserver` lines of a resolv.conf, on port 53.
pub fn nameservers(path: &Path) -> Vec<SocketAddr> {
    let Ok(text) = std::fs::read_to_string(path) else {
        tracing::warn!(path = %path.display(), "Cannot read resolv.conf; forward has no upstream.");
        return vec![];
    };
    parse_resolv_conf(&text)
}

fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next()).flatten()
        })
        .filter_map(|ip| ip.split('%').next()?.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corefile::Corefile;

    fn forwarder(text: &str, over: &[SocketAddr]) -> Forwarder {
        let c = Corefile::parse(&format!(".:53 {{\n{text}\n}}\n")).unwrap();
        Forwarder::new(c.servers[0].plugins.forward.as_ref().unwrap(), over)
    }

    #[test]
    fn resolv_conf_nameservers() {
        let got = parse_resolv_conf(
            "# x\nsearch a b\nnameserver 192.0.2.1\nnameserver fe80::1%eth0\noptions ndots:5\n",
        );
        assert_eq!(got, vec!["192.0.2.1:53".parse().unwrap(), "[fe80::1]:53".parse().unwrap()]);
    }

    #[test]
    fn upstream_flag_replaces_etc_resolv_conf_only() {
        let over: SocketAddr = "127.0.0.1:5300".parse().unwrap();
        let f = forwarder(" forward . /etc/resolv.conf 192.0.2.9", &[over]);
        assert_eq!(f.upstreams(), vec![over, "192.0.2.9:53".parse().unwrap()]);
    }

    #[test]
    fn from_and_except() {
        let f = forwarder(" forward example.com 192.0.2.1 {\n  except internal.example.com\n }", &[]);
        assert!(f.matches("a.example.com."));
        assert!(!f.matches("a.internal.example.com."));
        assert!(!f.matches("example.org."));
    }

    #[test]
    fn max_concurrent_refuses_above_the_limit() {
        let f = forwarder(" forward . 192.0.2.1 {\n  max_concurrent 2\n }", &[]);
        let a = f.permit().unwrap();
        let b = f.permit().unwrap();
        assert!(matches!(f.permit(), Err(Error::MaxConcurrent)));
        drop(a);
        assert!(f.permit().is_ok());
        drop(b);
    }

    #[test]
    fn policies() {
        let f = forwarder(" forward . 192.0.2.1 192.0.2.2 192.0.2.3 {\n  policy round_robin\n }", &[]);
        let firsts: Vec<SocketAddr> = (0..3).map(|_| f.order()[0].addr).collect();
        assert_eq!(firsts, f.upstreams());
        let s = forwarder(" forward . 192.0.2.1 192.0.2.2 {\n  policy sequential\n }", &[]);
        assert_eq!(s.order().iter().map(|p| p.addr).collect::<Vec<_>>(), s.upstreams());
    }

    #[tokio::test]
    async fn udp_exchange_counts_per_upstream() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            let mut reply = buf[..n].to_vec();
            reply[2] |= 0x80; // QR
            reply[3] = 3; // NXDOMAIN
            server.send_to(&reply, from).await.unwrap();
        });
        let f = forwarder(&format!(" forward . {addr}"), &[]);
        let metrics = Arc::new(Metrics::new());
        let query = [0xab, 0xcd, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let (reply, from) = f.exchange(&query, false, &metrics).await.unwrap();
        assert_eq!((reply[3], from), (3, addr));
        let text = metrics.render();
        assert!(text.contains(&format!("coredns_forward_requests_total{{to=\"{addr}\"}} 1")), "{text}");
        assert!(
            text.contains(&format!("coredns_forward_responses_total{{rcode=\"NXDOMAIN\",to=\"{addr}\"}} 1")),
            "{text}"
        );
    }

    /// A UDP responder answering every query NXDOMAIN, for as long as the test runs.
    async fn responder() -> SocketAddr {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(answer_on(server));
        addr
    }

    async fn answer_on(server: UdpSocket) {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = server.recv_from(&mut buf).await {
            let mut reply = buf[..n].to_vec();
            reply[2] |= 0x80;
            reply[3] = 3;
            let _ = server.send_to(&reply, from).await;
        }
    }

    const QUERY: [u8; 12] = [0xab, 0xcd, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];

    #[tokio::test]
    async fn down_upstreams_are_skipped() {
        let alive = responder().await;
        let f = forwarder(&format!(" forward . 192.0.2.1 {alive} {{\n  policy sequential\n }}"), &[]);
        f.proxies()[0].fails.store(3, Ordering::Release);
        assert!(f.proxies()[0].down(2) && !f.proxies()[1].down(2));
        let metrics = Arc::new(Metrics::new());
        let (_, from) = f.exchange(&QUERY, false, &metrics).await.unwrap();
        assert_eq!(from, alive);
        let text = metrics.render();
        assert!(!text.contains("to=\"192.0.2.1:53\""), "the down upstream was asked:\n{text}");
        // max_fails 0: never down.
        assert!(!f.proxies()[0].down(0));
    }

    #[tokio::test]
    async fn all_down_tries_one_anyway_unless_failfast() {
        let alive = responder().await;
        let f = forwarder(&format!(" forward . {alive}"), &[]);
        f.proxies()[0].fails.store(3, Ordering::Release);
        let metrics = Arc::new(Metrics::new());
        let (_, from) = f.exchange(&QUERY, false, &metrics).await.unwrap();
        assert_eq!(from, alive);
        assert!(metrics.render().contains("coredns_forward_healthcheck_broken_total 1"));

        let f = forwarder(&format!(" forward . {alive} {{\n  failfast_all_unhealthy_upstreams\n }}"), &[]);
        f.proxies()[0].fails.store(3, Ordering::Release);
        let err = f.exchange(&QUERY, false, &metrics).await.unwrap_err();
        assert_eq!(err.to_string(), "no healthy proxies");
    }

    #[tokio::test]
    async fn probes_count_fails_and_a_reply_brings_it_back() {
        // Bound but silent: every probe times out (1 s each).
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let f = forwarder(&format!(" forward . {addr} {{\n  health_check 10ms\n }}"), &[]);
        let metrics = Arc::new(Metrics::new());
        let proxy = f.proxies()[0].clone();
        f.healthcheck(proxy.clone(), metrics.clone());
        f.healthcheck(proxy.clone(), metrics.clone()); // one probe loop at a time
        let deadline = Instant::now() + Duration::from_secs(20);
        while !proxy.down(2) {
            assert!(Instant::now() < deadline, "never down: {} fails", proxy.fails());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(metrics.render().contains(&format!(
            "coredns_proxy_healthcheck_failures_total{{proxy_name=\"forward\",to=\"{addr}\"}}"
        )));
        // The upstream answers again: the next probe clears the fails.
        tokio::spawn(answer_on(silent));
        while proxy.fails() != 0 {
            assert!(Instant::now() < deadline, "never back: {} fails", proxy.fails());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!proxy.down(2));
    }

    #[test]
    fn the_probe_is_root_ns_with_rd() {
        let q = probe_query(".", true);
        assert_eq!(&q[2..], &[1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1]);
        let q = probe_query("example.org.", false);
        assert_eq!(&q[2..4], &[0, 0]);
        assert_eq!(&q[12..], b"\x07example\x03org\x00\x00\x02\x00\x01");
    }
}
