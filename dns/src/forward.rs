//! The `forward` plugin: relays a query's wire bytes to an upstream and returns the reply's
//! bytes. Upstreams come from the Corefile (`IP[:PORT]`) or from a resolv.conf — and in the lab
//! `--upstream` says what `/etc/resolv.conf` means, so the `cloud` process can play the outside
//! world's resolver. The query goes out over the client's protocol (UDP stays UDP, so a
//! truncated reply is relayed with TC and the client retries over TCP, as with CoreDNS), unless
//! `force_tcp`. `max_concurrent` caps queries in flight; above it the caller answers REFUSED.
//! A failed upstream is skipped for the next one until the 5 s deadline, as CoreDNS does.

use std::{
    net::SocketAddr,
    path::Path,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpStream, UdpSocket},
};

use crate::{
    corefile::{ForwardOpts, Policy, Upstream},
    error::{Error, Result},
    metrics::Metrics,
};

/// How long one upstream gets before the next is tried.
const TRY_TIMEOUT: Duration = Duration::from_secs(2);
/// CoreDNS forward's overall deadline per query.
const DEADLINE: Duration = Duration::from_secs(5);

/// One `forward` instance.
#[derive(Debug)]
pub struct Forwarder {
    from: String,
    except: Vec<String>,
    upstreams: Vec<SocketAddr>,
    policy: Policy,
    next: AtomicUsize,
    max_concurrent: Option<usize>,
    inflight: AtomicUsize,
    force_tcp: bool,
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
            upstreams,
            policy: opts.policy,
            next: AtomicUsize::new(0),
            max_concurrent: opts.max_concurrent,
            inflight: AtomicUsize::new(0),
            force_tcp: opts.force_tcp,
        }
    }

    /// The upstreams, resolved.
    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
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

    fn order(&self) -> Vec<SocketAddr> {
        let n = self.upstreams.len();
        if n == 0 {
            return vec![];
        }
        let start = match self.policy {
            Policy::Sequential => 0,
            Policy::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % n,
            Policy::Random => rand::random_range(0..n),
        };
        (0..n).map(|i| self.upstreams[(start + i) % n]).collect()
    }

    /// Sends `query` (wire bytes) upstream and returns the reply's bytes and who answered.
    pub async fn exchange(
        &self,
        query: &[u8],
        tcp: bool,
        metrics: &Metrics,
    ) -> Result<(Vec<u8>, SocketAddr)> {
        let deadline = Instant::now() + DEADLINE;
        let mut last = Error::NoUpstream;
        for upstream in self.order() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let started = Instant::now();
            metrics.forward_request(upstream);
            let attempt = tokio::time::timeout(TRY_TIMEOUT.min(left), async {
                if tcp || self.force_tcp {
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
                Ok(Err(e)) => last = Error::Upstream { upstream, message: e.to_string() },
                Err(_) => {
                    let proto = if tcp || self.force_tcp { "tcp" } else { "udp" };
                    last =
                        Error::Upstream { upstream, message: format!("read {proto} {upstream}: i/o timeout") }
                }
            }
        }
        Err(last)
    }
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
        assert_eq!(f.upstreams(), &[over, "192.0.2.9:53".parse().unwrap()]);
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
        let firsts: Vec<SocketAddr> = (0..3).map(|_| f.order()[0]).collect();
        assert_eq!(firsts, f.upstreams().to_vec());
        let s = forwarder(" forward . 192.0.2.1 192.0.2.2 {\n  policy sequential\n }", &[]);
        assert_eq!(s.order(), s.upstreams().to_vec());
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
        let metrics = Metrics::new();
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
}
