//! IPVS: kube-proxy's ipvs mode. One virtual server per ClusterIP:port with the endpoints as
//! real servers in masquerade (NAT) mode, and a scheduler that picks one per new connection.
//! The proxy writes `ipvsadm-restore` text; `ipvsadm -Ln` prints the table back.
//!
//! [`Ipvs::restore`] runs the text's commands in order against the current table, as the real
//! `ipvsadm-restore` does (`-C` clears it), so that a sync sends only the virtual servers that
//! changed: real kube-proxy edits only those over netlink, and a table of 10,000 Services is
//! some 2.4 MB of text to parse and apply. Errors are ipvsadm's (libipvs `ipvs_strerror`): "Service
//! already exists", "No such service", "Service not defined", "Destination already exists", "No
//! such destination".
//!
//! Unlike the real tool, which stops at a failing line with the earlier ones applied, a restore
//! here is all or nothing, as the `Restore` RPC promises for both of its formats: a proxy whose
//! restore was refused knows the table is as before, and its retry (a full sync, `-C` first)
//! needs no guess at how far the failed one got. An undo log (the first `-C` takes the old table
//! aside rather than copying it) keeps that cheap.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt::Write as _,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use crate::Protocol;

/// The scheduler of a virtual server added without `-s` (ipvsadm's default).
pub const DEFAULT_SCHEDULER: &str = "wlc";

/// Schedulers the kernel has (`ip_vs_*` modules).
pub const SCHEDULERS: &[&str] =
    &["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos"];

/// Why an ipvsadm-restore line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ipvsadm-restore: line {line}: {error}")]
pub struct RestoreError {
    /// 1-based line.
    pub line: usize,
    /// What was wrong, in ipvsadm's words.
    pub error: CommandError,
}

/// What was wrong with one ipvsadm command: libipvs' `ipvs_strerror` for what the table refuses,
/// ipvsadm's own messages for what does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// `-A` of a virtual service that exists.
    #[error("Service already exists")]
    ServiceExists,
    /// `-E`/`-D` of a virtual service that does not exist.
    #[error("No such service")]
    NoSuchService,
    /// A real server command for a virtual service that does not exist.
    #[error("Service not defined")]
    ServiceNotDefined,
    /// `-a` of a real server that exists.
    #[error("Destination already exists")]
    DestinationExists,
    /// `-e`/`-d` of a real server that does not exist.
    #[error("No such destination")]
    NoSuchDestination,
    /// A command without `-t`/`-u`.
    #[error("no virtual service given")]
    NoService,
    /// A real server command without `-r`.
    #[error("no real server given (-r)")]
    NoRealServer,
    /// An option given without its argument.
    #[error("option {0} requires an argument")]
    MissingArgument(String),
    /// Two commands on one line.
    #[error("multiple commands specified")]
    MultipleCommands,
    /// No command on the line.
    #[error("expected a command (-A, -E, -D, -a, -e, -d or -C)")]
    NoCommand,
    /// `-t`/`-u` that is no address:port.
    #[error("illegal virtual server address[:port] specified: {0}")]
    BadServiceAddress(String),
    /// `-r` that is no address:port.
    #[error("illegal real server address[:port] specified: {0}")]
    BadRealAddress(String),
    /// `-s` of a scheduler the kernel does not have.
    #[error("Scheduler not found: ip_vs_{0}.ko")]
    NoSuchScheduler(String),
    /// `-p` that is no timeout.
    #[error("illegal timeout for persistent service: {0}")]
    BadPersistence(String),
    /// `-w` that is no weight.
    #[error("illegal weight specified: {0}")]
    BadWeight(String),
    /// An option ipvsadm does not know.
    #[error("unknown option {0}")]
    UnknownOption(String),
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

    /// Runs `text`'s commands in order against the table, as `ipvsadm-restore` does: `-A`/`-E`/
    /// `-D` add, edit and delete a virtual service, `-a`/`-e`/`-d` a real server, `-C` clears
    /// the table. All or nothing: on the first failing line the table is left as it was.
    ///
    /// A virtual server cleared by `-C` and added again by the same text keeps its scheduler's
    /// state (round-robin position, persistence entries) and its real servers' active counts, as
    /// the connections through it live on.
    pub fn restore(&mut self, text: &str) -> Result<(), RestoreError> {
        let mut journal = Journal::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Err(error) = parse(line).and_then(|cmd| self.run(cmd, &mut journal)) {
                self.roll_back(journal);
                return Err(RestoreError { line: i + 1, error });
            }
        }
        // Persistence entries carried over to real servers that are gone are dropped.
        for key in &journal.carried {
            if let Some(vs) = self.services.get_mut(key) {
                let reals = &vs.reals;
                vs.sticky.retain(|_, (r, _)| reals.iter().any(|x| x.addr == *r));
            }
        }
        Ok(())
    }

    /// One command.
    fn run(&mut self, cmd: Command, journal: &mut Journal) -> Result<(), CommandError> {
        if cmd.op == Op::Clear {
            let old = std::mem::take(&mut self.services);
            if journal.cleared.is_none() {
                journal.cleared = Some(old);
            }
            return Ok(());
        }
        let key = cmd.service.ok_or(CommandError::NoService)?;
        journal.note(key, &self.services);
        match cmd.op {
            Op::AddService => {
                if self.services.contains_key(&key) {
                    return Err(CommandError::ServiceExists);
                }
                let before = journal.cleared.as_ref().and_then(|c| c.get(&key));
                if before.is_some() {
                    journal.carried.push(key);
                }
                let vs = Virtual {
                    scheduler: cmd.scheduler,
                    persistent: cmd.persistent,
                    reals: Vec::new(),
                    next: before.map_or(0, |o| o.next),
                    sticky: before.map(|o| o.sticky.clone()).unwrap_or_default(),
                };
                self.services.insert(key, vs);
            }
            Op::EditService => {
                let vs = self.services.get_mut(&key).ok_or(CommandError::NoSuchService)?;
                vs.scheduler = cmd.scheduler;
                vs.persistent = cmd.persistent;
            }
            Op::DeleteService => {
                self.services.remove(&key).ok_or(CommandError::NoSuchService)?;
            }
            Op::AddReal | Op::EditReal | Op::DeleteReal => {
                let addr = cmd.real.ok_or(CommandError::NoRealServer)?;
                let vs = self.services.get_mut(&key).ok_or(CommandError::ServiceNotDefined)?;
                let at = vs.reals.iter().position(|r| r.addr == addr);
                match (cmd.op, at) {
                    (Op::AddReal, Some(_)) => return Err(CommandError::DestinationExists),
                    (Op::AddReal, None) => {
                        let active = journal
                            .cleared
                            .as_ref()
                            .and_then(|c| c.get(&key))
                            .and_then(|v| v.reals.iter().find(|r| r.addr == addr))
                            .map_or(0, |r| r.active);
                        vs.reals.push(Real { addr, weight: cmd.weight, active });
                    }
                    (_, None) => return Err(CommandError::NoSuchDestination),
                    (Op::EditReal, Some(i)) => vs.reals[i].weight = cmd.weight,
                    (_, Some(i)) => {
                        vs.reals.remove(i);
                        vs.sticky.retain(|_, (r, _)| *r != addr);
                    }
                }
            }
            Op::Clear => unreachable!("handled above"),
        }
        Ok(())
    }

    /// Undoes what a failed restore did so far.
    fn roll_back(&mut self, journal: Journal) {
        if let Some(cleared) = journal.cleared {
            self.services = cleared;
        }
        for (key, before) in journal.before.into_iter().rev() {
            match before {
                Some(vs) => self.services.insert(key, vs),
                None => self.services.remove(&key),
            };
        }
    }

    /// Whether `dst` is a virtual server.
    pub fn is_virtual(&self, protocol: Protocol, dst: SocketAddr) -> bool {
        self.services.contains_key(&(protocol, dst))
    }

    /// Schedules a new connection from `src` to the virtual server `dst`; None if `dst` is none.
    pub fn schedule(
        &mut self,
        protocol: Protocol,
        src: SocketAddr,
        dst: SocketAddr,
        now: Duration,
    ) -> Option<Schedule> {
        let vs = self.services.get_mut(&(protocol, dst))?;
        let mut out = Schedule { real: None, scheduler: vs.scheduler.clone(), persistent: false };
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
                    .min_by_key(|&i| {
                        (u64::from(vs.reals[i].active) * 1000) / u64::from(vs.reals[i].weight.max(1))
                    })
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
                let _ = writeln!(
                    out,
                    "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
                    r.addr.to_string(),
                    "Masq",
                    r.weight,
                    r.active,
                    0
                );
            }
        }
        out
    }
}

/// What one restore line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    AddService,
    EditService,
    DeleteService,
    AddReal,
    EditReal,
    DeleteReal,
    Clear,
}

/// One parsed restore line.
#[derive(Debug)]
struct Command {
    op: Op,
    service: Option<(Protocol, SocketAddr)>,
    real: Option<SocketAddr>,
    /// `-s`; ipvsadm's default when absent.
    scheduler: String,
    persistent: Option<u32>,
    weight: u32,
}

/// A restore's undo log. Until the first `-C`, each virtual server touched is saved as it was
/// before its first change; `-C` saves the whole table (taken, not copied), after which nothing
/// more needs saving: rolling back puts that table back, then the earlier saved servers.
#[derive(Debug, Default)]
struct Journal {
    before: Vec<((Protocol, SocketAddr), Option<Virtual>)>,
    touched: HashSet<(Protocol, SocketAddr)>,
    cleared: Option<BTreeMap<(Protocol, SocketAddr), Virtual>>,
    /// Virtual servers re-added after `-C` with their old state.
    carried: Vec<(Protocol, SocketAddr)>,
}

// === impl Journal ===

impl Journal {
    /// Saves `key`'s server before its first change.
    fn note(&mut self, key: (Protocol, SocketAddr), services: &BTreeMap<(Protocol, SocketAddr), Virtual>) {
        if self.cleared.is_none() && self.touched.insert(key) {
            self.before.push((key, services.get(&key).cloned()));
        }
    }
}

/// Parses one `ipvsadm` command line (short or long options).
fn parse(line: &str) -> Result<Command, CommandError> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let mut op = None;
    let mut cmd = Command {
        op: Op::Clear,
        service: None,
        real: None,
        scheduler: DEFAULT_SCHEDULER.to_string(),
        persistent: None,
        weight: 1,
    };
    let mut j = 0;
    while j < w.len() {
        let arg = || w.get(j + 1).copied().ok_or_else(|| CommandError::MissingArgument(w[j].to_string()));
        let mut set = |o: Op| match op.replace(o) {
            Some(_) => Err(CommandError::MultipleCommands),
            None => Ok(()),
        };
        match w[j] {
            "-A" | "--add-service" => set(Op::AddService)?,
            "-E" | "--edit-service" => set(Op::EditService)?,
            "-D" | "--delete-service" => set(Op::DeleteService)?,
            "-a" | "--add-server" => set(Op::AddReal)?,
            "-e" | "--edit-server" => set(Op::EditReal)?,
            "-d" | "--delete-server" => set(Op::DeleteReal)?,
            "-C" | "--clear" => set(Op::Clear)?,
            "-t" | "-u" | "--tcp-service" | "--udp-service" | "--sctp-service" => {
                let proto = match w[j] {
                    "-t" | "--tcp-service" => Protocol::Tcp,
                    "-u" | "--udp-service" => Protocol::Udp,
                    _ => Protocol::Sctp,
                };
                let a = arg()?;
                let addr = a.parse().map_err(|_| CommandError::BadServiceAddress(a.to_string()))?;
                cmd.service = Some((proto, addr));
                j += 1;
            }
            "-r" | "--real-server" => {
                let a = arg()?;
                cmd.real = Some(a.parse().map_err(|_| CommandError::BadRealAddress(a.to_string()))?);
                j += 1;
            }
            "-s" | "--scheduler" => {
                let s = arg()?;
                if !SCHEDULERS.contains(&s) {
                    return Err(CommandError::NoSuchScheduler(s.to_string()));
                }
                cmd.scheduler = s.to_string();
                j += 1;
            }
            "-p" | "--persistent" => {
                let p = arg()?;
                cmd.persistent = Some(p.parse().map_err(|_| CommandError::BadPersistence(p.to_string()))?);
                j += 1;
            }
            "-w" | "--weight" => {
                let v = arg()?;
                cmd.weight = v.parse().map_err(|_| CommandError::BadWeight(v.to_string()))?;
                j += 1;
            }
            "-m" | "-g" | "-i" | "--masquerading" | "--gatewaying" | "--ipip" => {}
            o => return Err(CommandError::UnknownOption(o.to_string())),
        }
        j += 1;
    }
    cmd.op = op.ok_or(CommandError::NoCommand)?;
    Ok(cmd)
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
            .map(|i| {
                t.schedule(
                    Protocol::Tcp,
                    a(&format!("10.244.1.9:{}", 40000 + i)),
                    a("10.96.0.20:80"),
                    Duration::ZERO,
                )
                .unwrap()
                .real
                .unwrap()
            })
            .collect();
        assert_eq!(
            picks,
            [
                a("10.244.1.5:80"),
                a("10.244.2.5:80"),
                a("10.244.2.6:80"),
                a("10.244.1.5:80"),
                a("10.244.2.5:80"),
                a("10.244.2.6:80")
            ]
        );
        assert!(t.schedule(Protocol::Tcp, a("10.244.1.9:1"), a("10.96.0.21:80"), Duration::ZERO).is_none());
        assert_eq!(
            t.schedule(Protocol::Tcp, a("10.244.1.9:1"), a("10.96.0.30:80"), Duration::ZERO).unwrap().real,
            None
        );
    }

    #[test]
    fn least_connection_and_release() {
        let mut t = Ipvs::new();
        t.restore("-A -t 10.96.0.9:80 -s lc\n-a -t 10.96.0.9:80 -r 10.0.0.1:80 -m -w 1\n-a -t 10.96.0.9:80 -r 10.0.0.2:80 -m -w 1\n").unwrap();
        let vip = a("10.96.0.9:80");
        let s = |t: &mut Ipvs| {
            t.schedule(Protocol::Tcp, a("10.1.0.1:5"), vip, Duration::ZERO).unwrap().real.unwrap()
        };
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
            let s = t
                .schedule(Protocol::Tcp, a(&format!("10.1.0.1:{}", 5 + i)), vip, Duration::from_secs(i))
                .unwrap();
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

    fn reals(t: &Ipvs, vip: &str) -> Vec<(SocketAddr, u32)> {
        t.services[&(Protocol::Tcp, a(vip))].reals.iter().map(|r| (r.addr, r.weight)).collect()
    }

    #[test]
    fn commands_edit_the_table_in_order() {
        let mut t = Ipvs::new();
        t.restore(TEXT).unwrap();
        t.restore(
            "-D -u 10.96.0.10:53\n\
             -d -t 10.96.0.20:80 -r 10.244.2.5:80\n\
             -a -t 10.96.0.20:80 -r 10.244.3.5:80 -m -w 1\n\
             -e -t 10.96.0.20:80 -r 10.244.1.5:80 -m -w 3\n\
             -E -t 10.96.0.30:80 -s rr -p 60\n",
        )
        .unwrap();
        assert!(!t.is_virtual(Protocol::Udp, a("10.96.0.10:53")));
        assert_eq!(t.len(), 2);
        assert_eq!(
            reals(&t, "10.96.0.20:80"),
            [(a("10.244.1.5:80"), 3), (a("10.244.2.6:80"), 1), (a("10.244.3.5:80"), 1)]
        );
        let vs = &t.services[&(Protocol::Tcp, a("10.96.0.30:80"))];
        assert_eq!((vs.scheduler.as_str(), vs.persistent), ("rr", Some(60)));
        // --clear and long options.
        t.restore("--clear\n--add-service --tcp-service 10.96.0.40:80 --scheduler sh\n").unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.services[&(Protocol::Tcp, a("10.96.0.40:80"))].scheduler, "sh");
    }

    #[test]
    fn errors_are_ipvsadms_and_undo_everything() {
        let mut t = Ipvs::new();
        t.restore(TEXT).unwrap();
        let before = t.list();
        for (text, message) in [
            ("-A -t 10.96.0.20:80 -s rr\n", "Service already exists"),
            ("-D -t 10.96.0.99:80\n", "No such service"),
            ("-E -t 10.96.0.99:80 -s rr\n", "No such service"),
            ("-d -t 10.96.0.99:80 -r 10.0.0.1:80\n", "Service not defined"),
            ("-a -t 10.96.0.20:80 -r 10.244.1.5:80 -m -w 1\n", "Destination already exists"),
            ("-d -t 10.96.0.20:80 -r 10.9.9.9:80\n", "No such destination"),
            ("-e -t 10.96.0.20:80 -r 10.9.9.9:80 -w 2\n", "No such destination"),
        ] {
            let e = t.restore(text).unwrap_err();
            assert_eq!(e.error.to_string(), message, "{text}");
        }
        // Several kinds of change, then a bad line: none of it stays.
        let e = t
            .restore(
                "-D -t 10.96.0.30:80\n-A -t 10.96.0.31:80 -s rr\n-d -t 10.96.0.20:80 -r 10.244.1.5:80\n\
                 -C\n-A -t 10.96.0.32:80 -s rr\n-D -t 10.96.0.99:80\n",
            )
            .unwrap_err();
        assert_eq!((e.line, e.error.clone()), (6, CommandError::NoSuchService));
        assert_eq!(t.list(), before);
        let e = t
            .restore("-A -t 10.96.0.31:80 -s rr\n-a -t 10.96.0.31:80 -r 10.0.0.1:80 -m -w 1\n-X\n")
            .unwrap_err();
        assert_eq!((e.line, e.error.to_string().as_str()), (3, "unknown option -X"));
        assert_eq!(t.list(), before);
    }

    #[test]
    fn a_cleared_and_readded_server_keeps_its_state() {
        let mut t = Ipvs::new();
        t.restore("-A -t 10.96.0.9:80 -s rr -p 10800\n-a -t 10.96.0.9:80 -r 10.0.0.1:80 -m -w 1\n-a -t 10.96.0.9:80 -r 10.0.0.2:80 -m -w 1\n").unwrap();
        let vip = a("10.96.0.9:80");
        let first = t.schedule(Protocol::Tcp, a("10.1.0.1:5"), vip, Duration::ZERO).unwrap().real.unwrap();
        t.restore("-C\n-A -t 10.96.0.9:80 -s rr -p 10800\n-a -t 10.96.0.9:80 -r 10.0.0.1:80 -m -w 1\n-a -t 10.96.0.9:80 -r 10.0.0.2:80 -m -w 1\n").unwrap();
        let again = t.schedule(Protocol::Tcp, a("10.1.0.1:6"), vip, Duration::from_secs(1)).unwrap();
        assert_eq!((again.real, again.persistent), (Some(first), true));
        assert_eq!(t.services[&(Protocol::Tcp, vip)].reals.iter().map(|r| r.active).sum::<u32>(), 2);
        // Its real server goes: so does the client's persistence entry.
        let other = if first == a("10.0.0.1:80") { "10.0.0.2:80" } else { "10.0.0.1:80" };
        t.restore(&format!("-C\n-A -t 10.96.0.9:80 -s rr -p 10800\n-a -t 10.96.0.9:80 -r {other} -m -w 1\n"))
            .unwrap();
        let moved = t.schedule(Protocol::Tcp, a("10.1.0.1:7"), vip, Duration::from_secs(2)).unwrap();
        assert_eq!((moved.real, moved.persistent), (Some(a(other)), false));
    }
}
