//! Connection tracking: the table that keeps an established connection on the endpoint its first
//! packet was DNATed to, even after the rules change, and that `conntrack -L` prints.
//!
//! Timeouts are the Linux defaults (`nf_conntrack_tcp_timeout_*`, `nf_conntrack_udp_timeout*`),
//! and the table has a size limit, as `nf_conntrack_max` does: when it is full, new connections
//! are dropped ("nf_conntrack: table full, dropping packet"), which is a real incident worth
//! rehearsing.
//!
//! Flows are deleted by [`Filter`], as `conntrack -D` deletes them: kube-proxy does so after a
//! sync for UDP flows whose endpoint went away, since a UDP client that keeps its source port
//! would otherwise stay on the dead endpoint until the flow times out.

use std::{
    fmt::{self, Write as _},
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use crate::{Protocol, fxhash::FxHashMap};

/// `nf_conntrack_tcp_timeout_syn_sent`.
pub const TCP_SYN_SENT: Duration = Duration::from_secs(120);
/// `nf_conntrack_tcp_timeout_established` (5 days).
pub const TCP_ESTABLISHED: Duration = Duration::from_secs(432_000);
/// `nf_conntrack_tcp_timeout_time_wait`.
pub const TCP_TIME_WAIT: Duration = Duration::from_secs(120);
/// `nf_conntrack_udp_timeout`: a flow that has seen no reply.
pub const UDP_UNREPLIED: Duration = Duration::from_secs(30);
/// `nf_conntrack_udp_timeout_stream`: a flow that has seen replies.
pub const UDP_STREAM: Duration = Duration::from_secs(120);
/// Default `nf_conntrack_max`.
pub const DEFAULT_MAX: usize = 262_144;
/// How conntrack-tools names itself at the start of its summary lines.
const TOOL: &str = "conntrack v1.4.7 (conntrack-tools)";

/// A flow's original direction: what the client sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// Transport protocol.
    pub protocol: Protocol,
    /// The client's address.
    pub src: SocketAddr,
    /// What the client asked for (a ClusterIP before DNAT).
    pub dst: SocketAddr,
}

/// Where the flow is NATed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nat {
    /// The destination after DNAT (the endpoint); equal to `Key::dst` without DNAT.
    pub dst: SocketAddr,
    /// The source after SNAT/masquerade (the node's address), if any.
    pub src: Option<SocketAddr>,
}

/// A flow's TCP/UDP state as conntrack prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// TCP: the SYN went out, no answer yet.
    SynSent,
    /// TCP: both sides talked.
    Established,
    /// TCP: closed, lingering.
    TimeWait,
    /// UDP: no reply seen.
    Unreplied,
    /// UDP: replies seen.
    Replied,
}

/// One tracked flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The NAT applied.
    pub nat: Nat,
    /// How far the flow has got (which sets its timeout).
    pub state: State,
    /// When it expires (time since the table's start).
    pub expires: Duration,
}

/// Which flows `conntrack -D` deletes: those of `protocol` that match every other field set.
///
/// kube-proxy's four deletes are `--orig-dst VIP` (a Service's flows), `--dport NODEPORT`,
/// `--orig-dst VIP --dst-nat EP` and `--dport NODEPORT --dst-nat EP` (the flows one endpoint
/// took).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Filter {
    /// `-p`: the protocol.
    pub protocol: Protocol,
    /// `--orig-dst`: the address the client sent to (a ClusterIP, an external or LB IP).
    pub orig_dst: Option<IpAddr>,
    /// `--dport` (`--orig-port-dst`): the port the client sent to (a NodePort).
    pub orig_dst_port: Option<u16>,
    /// `--dst-nat`: the address the flow was DNATed to (an endpoint), i.e. the reply's source.
    /// A flow that was not DNATed never matches.
    pub dst_nat: Option<IpAddr>,
}

/// The table is full: the packet is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("nf_conntrack: table full, dropping packet")]
pub struct TableFull;

/// The conntrack table.
#[derive(Debug, Clone)]
pub struct Conntrack {
    /// FxHash: every new connection looks its flow up and inserts it, and the keys are the
    /// lab's own addresses (see [`FxHasher`](crate::fxhash::FxHasher)).
    entries: FxHashMap<Key, Entry>,
    max: usize,
    /// Behaves as full whatever its size (an ExhaustionChaos `conntrack` fault).
    full: bool,
}

// === impl State ===

impl State {
    fn timeout(self) -> Duration {
        match self {
            Self::SynSent => TCP_SYN_SENT,
            Self::Established => TCP_ESTABLISHED,
            Self::TimeWait => TCP_TIME_WAIT,
            Self::Unreplied => UDP_UNREPLIED,
            Self::Replied => UDP_STREAM,
        }
    }

    fn name(self) -> Option<&'static str> {
        match self {
            Self::SynSent => Some("SYN_SENT"),
            Self::Established => Some("ESTABLISHED"),
            Self::TimeWait => Some("TIME_WAIT"),
            Self::Unreplied | Self::Replied => None,
        }
    }
}

// === impl Filter ===

impl Filter {
    /// Every flow of `protocol` (`conntrack -D -p udp`); narrow it with the other fields.
    pub fn protocol(protocol: Protocol) -> Self {
        Self { protocol, orig_dst: None, orig_dst_port: None, dst_nat: None }
    }

    /// Whether the flow `key`, tracked as `entry`, matches.
    pub fn matches(&self, key: &Key, entry: &Entry) -> bool {
        // libnetfilter_conntrack's IS_DNAT compares addresses only: a port-only DNAT is not one.
        let dnat_to = (entry.nat.dst.ip() != key.dst.ip()).then(|| entry.nat.dst.ip());
        key.protocol == self.protocol
            && self.orig_dst.is_none_or(|ip| key.dst.ip() == ip)
            && self.orig_dst_port.is_none_or(|port| key.dst.port() == port)
            && self.dst_nat.is_none_or(|ip| dnat_to == Some(ip))
    }
}

/// The options as conntrack takes them: `-p udp --orig-dst 10.96.0.10 --dst-nat 10.244.1.5`.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "-p {}", self.protocol.lower())?;
        if let Some(ip) = self.orig_dst {
            write!(f, " --orig-dst {ip}")?;
        }
        if let Some(port) = self.orig_dst_port {
            write!(f, " --dport {port}")?;
        }
        if let Some(ip) = self.dst_nat {
            write!(f, " --dst-nat {ip}")?;
        }
        Ok(())
    }
}

// === impl Conntrack ===

impl Default for Conntrack {
    fn default() -> Self {
        Self::new(DEFAULT_MAX)
    }
}

impl Conntrack {
    /// An empty table holding at most `max` flows.
    pub fn new(max: usize) -> Self {
        Self { entries: FxHashMap::default(), max, full: false }
    }

    /// The live entry for `key`, if any (an expired one is removed).
    pub fn lookup(&mut self, key: &Key, now: Duration) -> Option<Entry> {
        match self.entries.get(key) {
            Some(e) if e.expires > now => Some(*e),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Tracks a new flow (SYN_SENT for TCP, UNREPLIED for UDP).
    pub fn insert(&mut self, key: Key, nat: Nat, now: Duration) -> Result<Entry, TableFull> {
        if self.full && !self.entries.contains_key(&key) {
            return Err(TableFull);
        }
        if self.entries.len() >= self.max && !self.entries.contains_key(&key) {
            self.gc(now);
            if self.entries.len() >= self.max {
                return Err(TableFull);
            }
        }
        let state = match key.protocol {
            Protocol::Udp => State::Unreplied,
            _ => State::SynSent,
        };
        let e = Entry { nat, state, expires: now + state.timeout() };
        self.entries.insert(key, e);
        Ok(e)
    }

    /// Makes the table behave as full (`full`) or as its size says: while full, a flow that
    /// needs a new entry is refused and the existing ones live on, as when `nf_conntrack_max` is
    /// reached.
    pub fn set_full(&mut self, full: bool) {
        self.full = full;
    }

    /// Whether the table is held full by [`Conntrack::set_full`].
    pub fn is_held_full(&self) -> bool {
        self.full
    }

    /// The other side answered: TCP becomes ESTABLISHED, UDP a replied stream.
    pub fn replied(&mut self, key: &Key, now: Duration) {
        if let Some(e) = self.entries.get_mut(key) {
            e.state = match key.protocol {
                Protocol::Udp => State::Replied,
                _ => State::Established,
            };
            e.expires = now + e.state.timeout();
        }
    }

    /// Traffic on a UDP flow refreshes its timer.
    pub fn touch(&mut self, key: &Key, now: Duration) {
        if let Some(e) = self.entries.get_mut(key) {
            e.expires = now + e.state.timeout();
        }
    }

    /// A TCP connection closed: TIME_WAIT.
    pub fn closed(&mut self, key: &Key, now: Duration) {
        if let Some(e) = self.entries.get_mut(key) {
            e.state = State::TimeWait;
            e.expires = now + TCP_TIME_WAIT;
        }
    }

    /// `conntrack -D`: forgets a flow (a refused or dropped connection leaves nothing behind).
    pub fn remove(&mut self, key: &Key) {
        self.entries.remove(key);
    }

    /// `conntrack -D` with `filter`: forgets every matching flow and returns how many live ones
    /// it deleted (expired ones go too, uncounted: the kernel had dropped them already).
    pub fn delete(&mut self, filter: &Filter, now: Duration) -> usize {
        let mut deleted = 0;
        self.entries.retain(|k, e| {
            if !filter.matches(k, e) {
                return true;
            }
            if e.expires > now {
                deleted += 1;
            }
            false
        });
        deleted
    }

    /// Drops expired entries.
    pub fn gc(&mut self, now: Duration) {
        self.entries.retain(|_, e| e.expires > now);
    }

    /// Live flows.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no flow is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `conntrack -L`: one line per live flow, original tuple then reply tuple, sorted; the
    /// count line conntrack prints on stderr is [`Conntrack::summary`].
    pub fn list(&self, now: Duration) -> String {
        let mut rows: Vec<(&Key, &Entry)> = self.entries.iter().filter(|(_, e)| e.expires > now).collect();
        rows.sort_by_key(|(k, _)| (k.src, k.dst));
        let mut out = String::new();
        for (k, e) in rows {
            let (name, num) = match k.protocol {
                Protocol::Tcp => ("tcp", 6),
                Protocol::Udp => ("udp", 17),
                Protocol::Sctp => ("sctp", 132),
            };
            let left = (e.expires - now).as_secs();
            let _ = write!(out, "{name:<8} {num} {left} ");
            if let Some(s) = e.state.name() {
                let _ = write!(out, "{s} ");
            }
            let _ = write!(
                out,
                "src={} dst={} sport={} dport={} ",
                k.src.ip(),
                k.dst.ip(),
                k.src.port(),
                k.dst.port()
            );
            let unreplied = matches!(e.state, State::SynSent | State::Unreplied);
            if unreplied {
                out.push_str("[UNREPLIED] ");
            }
            // The reply tuple: from the endpoint back to the client (or to the node after SNAT).
            let back = e.nat.src.unwrap_or(k.src);
            let _ = write!(
                out,
                "src={} dst={} sport={} dport={} ",
                e.nat.dst.ip(),
                back.ip(),
                e.nat.dst.port(),
                back.port()
            );
            if matches!(e.state, State::Established | State::TimeWait | State::Replied) {
                out.push_str("[ASSURED] ");
            }
            out.push_str("mark=0 use=1\n");
        }
        out
    }

    /// The line `conntrack -L` ends with on stderr.
    pub fn summary(&self, now: Duration) -> String {
        let n = self.entries.values().filter(|e| e.expires > now).count();
        format!("{TOOL}: {n} flow entries have been shown.")
    }

    /// The line `conntrack -D` ends with on stderr after deleting `n` flows.
    pub fn deleted_summary(n: usize) -> String {
        format!("{TOOL}: {n} flow entries have been deleted.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(proto: Protocol, src: &str, dst: &str) -> Key {
        Key { protocol: proto, src: src.parse().unwrap(), dst: dst.parse().unwrap() }
    }

    fn nat(dst: &str) -> Nat {
        Nat { dst: dst.parse().unwrap(), src: None }
    }

    const T0: Duration = Duration::from_secs(100);

    #[test]
    fn a_table_held_full_refuses_new_flows_and_keeps_the_old_ones() {
        let mut ct = Conntrack::default();
        let old = key(Protocol::Tcp, "10.244.1.3:41000", "10.96.0.20:80");
        ct.insert(old, nat("10.244.2.6:80"), T0).unwrap();
        ct.set_full(true);
        assert!(ct.is_held_full());
        let new = key(Protocol::Tcp, "10.244.1.3:41001", "10.96.0.20:80");
        assert_eq!(ct.insert(new, nat("10.244.2.6:80"), T0), Err(TableFull));
        assert_eq!(TableFull.to_string(), "nf_conntrack: table full, dropping packet");
        assert!(ct.lookup(&old, T0).is_some(), "existing entries keep working");
        ct.replied(&old, T0);
        assert!(ct.list(T0).contains("ESTABLISHED"), "conntrack -L still lists them");
        ct.set_full(false);
        assert!(ct.insert(new, nat("10.244.2.6:80"), T0).is_ok());
    }

    #[test]
    fn a_flow_stays_on_its_endpoint_until_it_expires() {
        let mut ct = Conntrack::default();
        let k = key(Protocol::Udp, "10.244.1.3:41000", "10.96.0.10:53");
        ct.insert(k, nat("10.244.2.5:53"), T0).unwrap();
        assert_eq!(ct.lookup(&k, T0 + Duration::from_secs(29)).unwrap().nat, nat("10.244.2.5:53"));
        assert!(ct.lookup(&k, T0 + Duration::from_secs(30)).is_none(), "UDP unreplied: 30 s");
        ct.insert(k, nat("10.244.2.5:53"), T0).unwrap();
        ct.replied(&k, T0);
        assert!(ct.lookup(&k, T0 + Duration::from_secs(119)).is_some(), "UDP stream: 120 s");
        let t = key(Protocol::Tcp, "10.244.1.3:41001", "10.96.0.20:80");
        ct.insert(t, nat("10.244.2.6:80"), T0).unwrap();
        ct.replied(&t, T0);
        assert!(ct.lookup(&t, T0 + Duration::from_secs(431_999)).is_some());
        ct.closed(&t, T0);
        assert!(ct.lookup(&t, T0 + Duration::from_secs(120)).is_none(), "TIME_WAIT: 120 s");
    }

    #[test]
    fn full_table_drops_new_flows() {
        let mut ct = Conntrack::new(1);
        ct.insert(key(Protocol::Tcp, "10.0.0.1:1", "10.0.0.2:80"), nat("10.0.0.2:80"), T0).unwrap();
        let err =
            ct.insert(key(Protocol::Tcp, "10.0.0.1:2", "10.0.0.2:80"), nat("10.0.0.2:80"), T0).unwrap_err();
        assert_eq!(err.to_string(), "nf_conntrack: table full, dropping packet");
        // Once the first expires there is room again.
        assert!(
            ct.insert(key(Protocol::Tcp, "10.0.0.1:2", "10.0.0.2:80"), nat("10.0.0.2:80"), T0 + TCP_SYN_SENT)
                .is_ok()
        );
    }

    #[test]
    fn list_prints_conntrack_l_lines() {
        let mut ct = Conntrack::default();
        let t = key(Protocol::Tcp, "10.244.1.3:40000", "10.96.0.20:80");
        ct.insert(t, nat("10.244.2.5:80"), T0).unwrap();
        ct.replied(&t, T0);
        let u = key(Protocol::Udp, "10.244.1.3:41234", "10.96.0.10:53");
        ct.insert(
            u,
            Nat { dst: "172.28.0.2:53".parse().unwrap(), src: Some("172.28.1.3:41234".parse().unwrap()) },
            T0,
        )
        .unwrap();
        assert_eq!(
            ct.list(T0 + Duration::from_secs(1)),
            "tcp      6 431999 ESTABLISHED src=10.244.1.3 dst=10.96.0.20 sport=40000 dport=80 src=10.244.2.5 dst=10.244.1.3 sport=80 dport=40000 [ASSURED] mark=0 use=1\n\
             udp      17 29 src=10.244.1.3 dst=10.96.0.10 sport=41234 dport=53 [UNREPLIED] src=172.28.0.2 dst=172.28.1.3 sport=53 dport=41234 mark=0 use=1\n"
        );
        assert_eq!(ct.summary(T0), "conntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.");
    }

    fn filter(s: &str) -> Filter {
        // `-p udp --orig-dst IP --dport N --dst-nat IP`, any subset after -p.
        let mut f = Filter::protocol(Protocol::Udp);
        let words: Vec<&str> = s.split_whitespace().collect();
        for pair in words.chunks(2) {
            match pair {
                ["-p", "tcp"] => f.protocol = Protocol::Tcp,
                ["-p", "udp"] => f.protocol = Protocol::Udp,
                ["--orig-dst", ip] => f.orig_dst = Some(ip.parse().unwrap()),
                ["--dport", port] => f.orig_dst_port = Some(port.parse().unwrap()),
                ["--dst-nat", ip] => f.dst_nat = Some(ip.parse().unwrap()),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(f.to_string(), s, "Display prints what was parsed");
        f
    }

    /// A table with UDP flows to two endpoints of 10.96.0.10:53, one through NodePort 30053,
    /// one TCP flow to the same ClusterIP, and one UDP flow straight to a pod (no DNAT).
    fn flows() -> Conntrack {
        let mut ct = Conntrack::default();
        let flows = [
            (Protocol::Udp, "10.244.1.3:41000", "10.96.0.10:53", "10.244.2.5:53"),
            (Protocol::Udp, "10.244.1.3:41001", "10.96.0.10:53", "10.244.2.6:53"),
            (Protocol::Udp, "10.244.1.4:41002", "10.96.0.10:53", "10.244.2.5:53"),
            (Protocol::Udp, "172.18.0.9:50000", "172.18.0.2:30053", "10.244.2.5:53"),
            (Protocol::Tcp, "10.244.1.3:41003", "10.96.0.10:53", "10.244.2.5:53"),
            (Protocol::Udp, "10.244.1.3:41004", "10.244.2.5:53", "10.244.2.5:53"),
        ];
        for (p, src, dst, to) in flows {
            ct.insert(key(p, src, dst), nat(to), T0).unwrap();
        }
        ct
    }

    #[test]
    fn delete_takes_the_flows_every_option_matches() {
        let cases = [
            ("-p udp --orig-dst 10.96.0.10", 3, "a Service's UDP flows, not its TCP one"),
            ("-p tcp --orig-dst 10.96.0.10", 1, "TCP only"),
            (
                "-p udp --orig-dst 10.96.0.10 --dst-nat 10.244.2.5",
                2,
                "one endpoint's flows through the ClusterIP",
            ),
            ("-p udp --orig-dst 10.96.0.10 --dst-nat 10.244.2.7", 0, "an endpoint with no flows"),
            ("-p udp --dport 30053", 1, "a NodePort's flows, whatever the node address"),
            ("-p udp --dport 30053 --dst-nat 10.244.2.6", 0, "the NodePort flow went to another endpoint"),
            ("-p udp --dport 53 --dst-nat 10.244.2.5", 2, "not the flow sent to the pod itself: no DNAT"),
            ("-p udp --dst-nat 10.244.2.5", 3, "every DNATed flow to the endpoint"),
            ("-p udp", 5, "every UDP flow"),
        ];
        for (f, want, what) in cases {
            let mut ct = flows();
            let before = ct.len();
            assert_eq!(ct.delete(&filter(f), T0), want, "{f}: {what}");
            assert_eq!(ct.len(), before - want, "{f}: the flows are gone");
            assert_eq!(ct.delete(&filter(f), T0), 0, "{f}: a second delete finds none");
        }
    }

    #[test]
    fn delete_counts_only_live_flows() {
        let mut ct = flows();
        let later = T0 + UDP_UNREPLIED;
        assert_eq!(ct.delete(&filter("-p udp --orig-dst 10.96.0.10"), later), 0, "expired: none live");
        assert_eq!(ct.len(), 3, "but the expired entries are gone too");
        assert_eq!(
            Conntrack::deleted_summary(2),
            "conntrack v1.4.7 (conntrack-tools): 2 flow entries have been deleted."
        );
    }
}
