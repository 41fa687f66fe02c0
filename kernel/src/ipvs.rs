//! IPVS: kube-proxy's ipvs mode. One virtual server per ClusterIP:port with the endpoints as
//! real servers in masquerade (NAT) mode, and a scheduler that picks one per new connection.
//! The proxy writes `ipvsadm-restore` text; `ipvsadm -Ln` prints the table back.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use crate::Protocol;

/// Schedulers the kernel has (`ip_vs_*` modules).
pub const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos",
];

/// Why an ipvsadm-restore line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ipvsadm-restore: line {line}: {message}")]
pub struct RestoreError {
    /// 1-based line.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

/// A real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Real {
    /// The endpoint.
    pub addr: SocketAddr,
    /// `-w`.
    pub weight: u32,
    /// Connections currently open through it.
    pub active: u32,
}

/// A virtual server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Virtual {
    /// `-s`.
    pub scheduler: String,
    /// `-p`: ClientIP affinity timeout.
    pub persistent: Option<u32>,
    /// Real servers in the order written.
    pub reals: Vec<Real>,
    next: usize,
    /// Client → (real server, last use) for persistence.
    sticky: HashMap<IpAddr, (SocketAddr, Duration)>,
}

/// The IPVS table.
#[derive(Debug, Clone, Default)]
pub struct Ipvs {
    services: BTreeMap<(Protocol, SocketAddr), Virtual>,
}

/// What IPVS decided for a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The real server, or None when the virtual server has none (the connection is refused:
    /// the ClusterIP is bound to kube-ipvs0, so the node's own stack answers with a reset).
    pub real: Option<SocketAddr>,
    /// The scheduler's name.
    pub scheduler: String,
    /// Whether persistence chose it.
    pub persistent: bool,
}

// === impl Ipvs ===

impl Ipvs {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the table with `text` (ipvsadm-restore after `ipvsadm -C`), keeping the
    /// schedulers' state and active counts of servers that stay. All or nothing.
    pub fn restore(&mut self, text: &str) -> Result<(), RestoreError> {
        let mut next: BTreeMap<(Protocol, SocketAddr), Virtual> = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |message: String| RestoreError { line: i + 1, message };
            let w: Vec<&str> = line.split_whitespace().collect();
            let mut add_service = false;
            let mut add_real = false;
            let mut vip: Option<(Protocol, SocketAddr)> = None;
            let mut real: Option<SocketAddr> = None;
            let mut sched = "wlc".to_string();
            let mut persistent = None;
            let mut weight = 1;
            let mut j = 0;
            while j < w.len() {
                let arg = || w.get(j + 1).copied().ok_or_else(|| err(format!("option {} requires an argument", w[j])));
                match w[j] {
                    "-A" => add_service = true,
                    "-a" => add_real = true,
                    "-t" | "-u" | "--sctp-service" => {
                        let proto = match w[j] {
                            "-t" => Protocol::Tcp,
                            "-u" => Protocol::Udp,
                            _ => Protocol::Sctp,
                        };
                        let a = arg()?;
                        vip = Some((proto, a.parse().map_err(|_| err(format!("illegal virtual server address[:port] specified: {a}")))?));
                        j += 1;
                    }
                    "-r" => {
                        let a = arg()?;
                        real = Some(a.parse().map_err(|_| err(format!("illegal real server address[:port] specified: {a}")))?);
                        j += 1;
                    }
                    "-s" => {
                        let s = arg()?;
                        if !SCHEDULERS.contains(&s) {
                            return Err(err(format!("Scheduler not found: ip_vs_{s}.ko")));
                        }
                        sched = s.to_string();
                        j += 1;
                    }
                    "-p" => {
                        let p = arg()?;
                        persistent = Some(p.parse().map_err(|_| err(format!("illegal timeout for persistent service: {p}")))?);
                        j += 1;
                    }
                    "-w" => {
                        let v = arg()?;
                        weight = v.parse().map_err(|_| err(format!("illegal weight specified: {v}")))?;
                        j += 1;
                    }
                    "-m" | "-g" | "-i" => {}
                    o => return Err(err(format!("unknown option {o}"))),
                }
                j += 1;
            }
            let vip = vip.ok_or_else(|| err("no virtual service given".into()))?;
            match (add_service, add_real) {
                (true, false) => {
                    let old = self.services.get(&vip);
                    next.insert(
                        vip,
                        Virtual {
                            scheduler: sched,
                            persistent,
                            reals: Vec::new(),
                            next: old.map_or(0, |o| o.next),
                            sticky: old.map(|o| o.sticky.clone()).unwrap_or_default(),
                        },
                    );
                }
                (false, true) => {
                    let addr = real.ok_or_else(|| err("no real server given (-r)".into()))?;
                    let active = self
                        .services
                        .get(&vip)
                        .and_then(|v| v.reals.iter().find(|r| r.addr == addr))
                        .map_or(0, |r| r.active);
                    let vs = next.get_mut(&vip).ok_or_else(|| err("Service not defined".into()))?;
                    vs.reals.push(Real { addr, weight, active });
                }
                _ => return Err(err("expected -A or -a".into())),
            }
        }
        // Persistence entries pointing at real servers that went away are dropped.
        for vs in next.values_mut() {
            let reals: Vec<SocketAddr> = vs.reals.iter().map(|r| r.addr).collect();
            vs.sticky.retain(|_, (r, _)| reals.contains(r));
        }
        self.services = next;
        Ok(())
    }

    /// Whether `dst` is a virtual server.
    pub fn is_virtual(&self, protocol: Protocol, dst: SocketAddr) -> bool {
        self.services.contains_key(&(protocol, dst))
    }

    /// Schedules a new connection from `src` to the virtual server `dst`; None if `dst` is none.
    pub fn schedule(&mut self, protocol: Protocol, src: SocketAddr, dst: SocketAddr, now: Duration) -> Option<Schedule> {
        let vs = self.services.get_mut(&(protocol, dst))?;
        let mut out = Schedule {
            real: None,
            scheduler: vs.scheduler.clone(),
            persistent: false,
        };
        if vs.reals.is_empty() {
            return Some(out);
        }
        if let Some(timeout) = vs.persistent
            && let Some((real, at)) = vs.sticky.get(&src.ip()).copied()
            && now.saturating_sub(at) <= Duration::from_secs(u64::from(timeout))
        {
            vs.sticky.insert(src.ip(), (real, now));
            if let Some(r) = vs.reals.iter_mut().find(|r| r.addr == real) {
                r.active += 1;
            }
            out.real = Some(real);
            out.persistent = true;
            return Some(out);
        }
        let n = vs.reals.len();
        let pick = match vs.scheduler.as_str() {
            "lc" | "wlc" | "sed" | "nq" | "lblc" | "lblcr" => {
                // Fewest active connections per weight; ties go to the earliest.
                (0..n)
                    .min_by_key(|&i| (u64::from(vs.reals[i].active) * 1000) / u64::from(vs.reals[i].weight.max(1)))
                    .unwrap_or(0)
            }
            "sh" => hash_ip(src.ip()) % n,
            "dh" => hash_ip(dst.ip()) % n,
            _ => {
                let i = vs.next % n;
                vs.next = (i + 1) % n;
                i
            }
        };
        let real = &mut vs.reals[pick];
        real.active += 1;
        let addr = real.addr;
        if vs.persistent.is_some() {
            vs.sticky.insert(src.ip(), (addr, now));
        }
        out.real = Some(addr);
        Some(out)
    }

    /// A connection through `vip` to `real` ended.
    pub fn release(&mut self, protocol: Protocol, vip: SocketAddr, real: SocketAddr) {
        if let Some(r) = self
            .services
            .get_mut(&(protocol, vip))
            .and_then(|vs| vs.reals.iter_mut().find(|r| r.addr == real))
        {
            r.active = r.active.saturating_sub(1);
        }
    }

    /// Virtual servers.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// `ipvsadm -Ln`.
    pub fn list(&self) -> String {
        let mut out = String::from(
            "IP Virtual Server version 1.2.1 (size=4096)\n\
             Prot LocalAddress:Port Scheduler Flags\n  \
             -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        );
        for ((proto, vip), vs) in &self.services {
            let p = match proto {
                Protocol::Tcp => "TCP",
                Protocol::Udp => "UDP",
                Protocol::Sctp => "SCTP",
            };
            let _ = write!(out, "{p}  {vip} {}", vs.scheduler);
            if let Some(t) = vs.persistent {
                let _ = write!(out, " persistent {t}");
            }
            out.push('\n');
            for r in &vs.reals {
                let _ = writeln!(out, "  -> {:<28} {:<7} {:<6} {:<10} {:<10}", r.addr.to_string(), "Masq", r.weight, r.active, 0);
            }
        }
        out
    }
}

fn hash_ip(ip: IpAddr) -> usize {
    // FNV-1a: stable across runs, so `sh` keeps a client on one server across restarts too.
    let bytes = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "-A -t 10.96.0.20:80 -s rr\n\
        -a -t 10.96.0.20:80 -r 10.244.1.5:80 -m -w 1\n\
        -a -t 10.96.0.20:80 -r 10.244.2.5:80 -m -w 1\n\
        -a -t 10.96.0.20:80 -r 10.244.2.6:80 -m -w 1\n\
        -A -u 10.96.0.10:53 -s rr -p 10800\n\
        -a -u 10.96.0.10:53 -r 172.28.0.2:53 -m -w 1\n\
        -A -t 10.96.0.30:80 -s lc\n";

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn round_robin_visits_every_real_server_in_turn() {
        let mut t = Ipvs::new();
        t.restore(TEXT).unwrap();
        let picks: Vec<_> = (0..6)
            .map(|i| t.schedule(Protocol::Tcp, a(&format!("10.244.1.9:{}", 40000 + i)), a("10.96.0.20:80"), Duration::ZERO).unwrap().real.unwrap())
            .collect();
        assert_eq!(picks, [a("10.244.1.5:80"), a("10.244.2.5:80"), a("10.244.2.6:80"), a("10.244.1.5:80"), a("10.244.2.5:80"), a("10.244.2.6:80")]);
        assert!(t.schedule(Protocol::Tcp, a("10.244.1.9:1"), a("10.96.0.21:80"), Duration::ZERO).is_none());
        assert_eq!(t.schedule(Protocol::Tcp, a("10.244.1.9:1"), a("10.96.0.30:80"), Duration::ZERO).unwrap().real, None);
    }

    #[test]
    fn least_connection_and_release() {
        let mut t = Ipvs::new();
        t.restore("-A -t 10.96.0.9:80 -s lc\n-a -t 10.96.0.9:80 -r 10.0.0.1:80 -m -w 1\n-a -t 10.96.0.9:80 -r 10.0.0.2:80 -m -w 1\n").unwrap();
        let vip = a("10.96.0.9:80");
        let s = |t: &mut Ipvs| t.schedule(Protocol::Tcp, a("10.1.0.1:5"), vip, Duration::ZERO).unwrap().real.unwrap();
        assert_eq!(s(&mut t), a("10.0.0.1:80"));
        assert_eq!(s(&mut t), a("10.0.0.2:80"));
        t.release(Protocol::Tcp, vip, a("10.0.0.1:80"));
        assert_eq!(s(&mut t), a("10.0.0.1:80"));
    }

    #[test]
    fn persistence_pins_a_client() {
        let mut t = Ipvs::new();
        t.restore("-A -t 10.96.0.9:80 -s rr -p 10800\n-a -t 10.96.0.9:80 -r 10.0.0.1:80 -m -w 1\n-a -t 10.96.0.9:80 -r 10.0.0.2:80 -m -w 1\n").unwrap();
        let vip = a("10.96.0.9:80");
        let first = t.schedule(Protocol::Tcp, a("10.1.0.1:5"), vip, Duration::ZERO).unwrap();
        for i in 1..5 {
            let s = t.schedule(Protocol::Tcp, a(&format!("10.1.0.1:{}", 5 + i)), vip, Duration::from_secs(i)).unwrap();
            assert_eq!((s.real, s.persistent), (first.real, true));
        }
        let later = t.schedule(Protocol::Tcp, a("10.1.0.1:99"), vip, Duration::from_secs(4 + 10801)).unwrap();
        assert!(!later.persistent);
    }

    #[test]
    fn list_and_errors() {
        let mut t = Ipvs::new();
        t.restore(TEXT).unwrap();
        assert_eq!(
            t.list(),
            "IP Virtual Server version 1.2.1 (size=4096)\n\
             Prot LocalAddress:Port Scheduler Flags\n  \
             -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
             TCP  10.96.0.20:80 rr\n  \
             -> 10.244.1.5:80                Masq    1      0          0         \n  \
             -> 10.244.2.5:80                Masq    1      0          0         \n  \
             -> 10.244.2.6:80                Masq    1      0          0         \n\
             TCP  10.96.0.30:80 lc\n\
             UDP  10.96.0.10:53 rr persistent 10800\n  \
             -> 172.28.0.2:53                Masq    1      0          0         \n"
        );
        let before = t.list();
        let e = t.restore("-A -t 10.96.0.1:443 -s fancy\n").unwrap_err();
        assert_eq!(e.to_string(), "ipvsadm-restore: line 1: Scheduler not found: ip_vs_fancy.ko");
        let e = t.restore("-a -t 10.96.0.1:443 -r 10.0.0.1:1 -m -w 1\n").unwrap_err();
        assert_eq!(e.to_string(), "ipvsadm-restore: line 1: Service not defined");
        assert_eq!(t.list(), before, "a failed restore changes nothing");
    }
}
