//! host-local IPAM (containernetworking/plugins `plugins/ipam/host-local`): addresses from one
//! range, with its on-disk store: one file per allocated IP named after the IP and holding
//! `<containerID>\r\n<ifname>`, plus `last_reserved_ip.0` so allocation goes round-robin (a freed
//! address is not handed out again until the range wraps). The store is the truth, so a restarted
//! node-agent finds every pod's address where it left it.

use std::{
    fs,
    io::Write as _,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use ipnet::Ipv4Net;

use super::CniError;

/// The line break between the container ID and the interface name in a state file.
const LINE_BREAK: &str = "\r\n";
/// The round-robin marker for range set 0.
const LAST_RESERVED: &str = "last_reserved_ip.0";

/// One range: `rangeStart`..=`rangeEnd` in `subnet`, skipping `gateway`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The subnet (the node's podCIDR).
    pub subnet: Ipv4Net,
    /// First address handed out (default subnet + 1; the gateway is skipped).
    pub start: Ipv4Addr,
    /// Last address handed out (default: the one before broadcast).
    pub end: Ipv4Addr,
    /// The gateway (default subnet + 1).
    pub gateway: Ipv4Addr,
}

/// Asked before every allocation: whether a fault (ExhaustionChaos `pod-cidr`) holds the range
/// as used up. The lab's stand-in for a range whose every address is taken: the allocation fails
/// exactly as it does when the store is full, without filling the store (so the fault ends by
/// itself, and no pod's real address is touched).
pub trait Exhaustion: Send + Sync + std::fmt::Debug {
    /// Whether to refuse this allocation (the implementation marks the span and counts).
    fn exhausted(&self) -> bool;
}

/// The allocator over a state directory (`<cni dir>/networks/<network>`).
#[derive(Debug)]
pub struct HostLocal {
    dir: PathBuf,
    range: Range,
    /// The real plugin takes a file lock on the directory; one process owns it here.
    lock: Mutex<()>,
    /// The fault gate, if the node watches faults.
    exhaustion: Option<Arc<dyn Exhaustion>>,
}

/// One allocation found in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The address.
    pub ip: Ipv4Addr,
    /// The sandbox holding it.
    pub container_id: String,
    /// Its interface.
    pub ifname: String,
}

// === impl Range ===

impl Range {
    /// host-local's defaults for `subnet`: gateway .1, addresses .2 to the one before broadcast.
    pub fn for_subnet(subnet: Ipv4Net) -> Result<Self, CniError> {
        if subnet.prefix_len() > 30 {
            return Err(CniError {
                code: 7,
                msg: format!("invalid CIDR {subnet}: Network {subnet} too small to allocate from"),
                details: String::new(),
            });
        }
        let net = u32::from(subnet.network());
        let bcast = u32::from(subnet.broadcast());
        Ok(Range {
            subnet,
            start: Ipv4Addr::from(net + 1),
            end: Ipv4Addr::from(bcast - 1),
            gateway: Ipv4Addr::from(net + 1),
        })
    }
}

impl std::fmt::Display for Range {
    /// `10.244.1.1-10.244.1.254`, as host-local prints a range in errors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

// === impl HostLocal ===

impl HostLocal {
    /// Opens (creating) the store at `dir` for `range`.
    pub fn open(dir: &Path, range: Range) -> Result<Self, CniError> {
        fs::create_dir_all(dir).map_err(|e| CniError::io(&format!("creating {}", dir.display()), e))?;
        Ok(Self { dir: dir.to_path_buf(), range, lock: Mutex::new(()), exhaustion: None })
    }

    /// Consults `gate` before each allocation.
    pub fn with_exhaustion(mut self, gate: Option<Arc<dyn Exhaustion>>) -> Self {
        self.exhaustion = gate;
        self
    }

    /// The range served.
    pub fn range(&self) -> Range {
        self.range
    }

    /// Allocates the next free address for `(container_id, ifname)`, round-robin after the last
    /// reserved one. A container already holding an address gets host-local's duplicate error.
    pub fn allocate(&self, container_id: &str, ifname: &str) -> Result<Ipv4Addr, CniError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.exhaustion.as_ref().is_some_and(|g| g.exhausted()) {
            return Err(self.exhausted_error());
        }
        let existing = self.scan()?;
        if let Some(a) = existing.iter().find(|a| a.container_id == container_id && a.ifname == ifname) {
            return Err(CniError {
                code: 100,
                msg: format!(
                    "{} has been allocated to {container_id}, duplicate allocation is not allowed",
                    a.ip
                ),
                details: String::new(),
            });
        }
        let start = u32::from(self.range.start);
        let end = u32::from(self.range.end);
        let size = end - start + 1;
        // Start after the last reserved address if it is in the range, else at rangeStart.
        let first = match self.last_reserved() {
            Some(last) if (start..=end).contains(&u32::from(last)) => {
                if u32::from(last) == end {
                    start
                } else {
                    u32::from(last) + 1
                }
            }
            _ => start,
        };
        for i in 0..size {
            let candidate = Ipv4Addr::from(start + (first - start + i) % size);
            if candidate == self.range.gateway || existing.iter().any(|a| a.ip == candidate) {
                continue;
            }
            let path = self.dir.join(candidate.to_string());
            let created = fs::OpenOptions::new().write(true).create_new(true).open(&path);
            match created {
                Ok(mut f) => {
                    f.write_all(format!("{container_id}{LINE_BREAK}{ifname}").as_bytes())
                        .map_err(|e| CniError::io("writing the IP state file", e))?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(CniError::io("creating the IP state file", e)),
            }
            fs::write(self.dir.join(LAST_RESERVED), candidate.to_string())
                .map_err(|e| CniError::io("writing last_reserved_ip", e))?;
            return Ok(candidate);
        }
        Err(self.exhausted_error())
    }

    /// host-local's error when no address of the range set is free.
    fn exhausted_error(&self) -> CniError {
        CniError {
            code: 100,
            msg: format!(
                "failed to allocate for range 0: no IP addresses available in range set: {}",
                self.range
            ),
            details: String::new(),
        }
    }

    /// Releases every address held by `(container_id, ifname)`; nothing held is fine.
    pub fn release(&self, container_id: &str, ifname: &str) -> Result<Vec<Ipv4Addr>, CniError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut released = Vec::new();
        for a in self.scan()? {
            if a.container_id == container_id && a.ifname == ifname {
                fs::remove_file(self.dir.join(a.ip.to_string()))
                    .map_err(|e| CniError::io("removing the IP state file", e))?;
                released.push(a.ip);
            }
        }
        Ok(released)
    }

    /// Every allocation in the store.
    pub fn allocations(&self) -> Result<Vec<Allocation>, CniError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.scan()
    }

    fn last_reserved(&self) -> Option<Ipv4Addr> {
        fs::read_to_string(self.dir.join(LAST_RESERVED)).ok()?.trim().parse().ok()
    }

    fn scan(&self) -> Result<Vec<Allocation>, CniError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| CniError::io("reading the IPAM store", e))?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(ip) = name.to_str().and_then(|n| n.parse::<Ipv4Addr>().ok()) else {
                continue;
            };
            let Ok(text) = fs::read_to_string(entry.path()) else {
                continue;
            };
            let mut parts = text.split(LINE_BREAK);
            let container_id = parts.next().unwrap_or("").trim().to_string();
            let ifname = parts.next().unwrap_or("").trim().to_string();
            out.push(Allocation { ip, container_id, ifname });
        }
        out.sort_by_key(|a| a.ip);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path, cidr: &str) -> HostLocal {
        HostLocal::open(dir, Range::for_subnet(cidr.parse().unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn defaults_for_a_24() {
        let r = Range::for_subnet("10.244.1.0/24".parse().unwrap()).unwrap();
        assert_eq!(r.gateway, Ipv4Addr::new(10, 244, 1, 1));
        assert_eq!(r.to_string(), "10.244.1.1-10.244.1.254");
        let err = Range::for_subnet("10.244.1.0/31".parse().unwrap()).unwrap_err();
        assert!(err.msg.contains("too small to allocate from"), "{}", err.msg);
    }

    #[test]
    fn first_pod_gets_dot_2_then_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), "10.244.1.0/24");
        assert_eq!(s.allocate("a", "eth0").unwrap(), Ipv4Addr::new(10, 244, 1, 2));
        assert_eq!(s.allocate("b", "eth0").unwrap(), Ipv4Addr::new(10, 244, 1, 3));
        assert_eq!(s.allocate("c", "eth0").unwrap(), Ipv4Addr::new(10, 244, 1, 4));
        let text = fs::read_to_string(dir.path().join("10.244.1.3")).unwrap();
        assert_eq!(text, "b\r\neth0");
        assert_eq!(fs::read_to_string(dir.path().join("last_reserved_ip.0")).unwrap(), "10.244.1.4");
    }

    #[derive(Debug)]
    struct Gate(std::sync::atomic::AtomicBool);

    impl Exhaustion for Gate {
        fn exhausted(&self) -> bool {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    #[test]
    fn an_exhaustion_fault_refuses_with_the_full_range_error_and_lifts() {
        let dir = tempfile::tempdir().unwrap();
        let gate = Arc::new(Gate(true.into()));
        let s = store(dir.path(), "10.244.1.0/24").with_exhaustion(Some(gate.clone()));
        let err = s.allocate("a", "eth0").unwrap_err();
        assert_eq!(
            err.msg,
            "failed to allocate for range 0: no IP addresses available in range set: 10.244.1.1-10.244.1.254"
        );
        assert!(s.allocations().unwrap().is_empty(), "the store is untouched");
        gate.0.store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(s.allocate("a", "eth0").unwrap(), Ipv4Addr::new(10, 244, 1, 2));
    }

    #[test]
    fn freed_ip_not_reused_until_wrap() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), "10.244.1.0/29"); // .2-.6
        for id in ["a", "b", "c"] {
            s.allocate(id, "eth0").unwrap();
        }
        assert_eq!(s.release("a", "eth0").unwrap(), [Ipv4Addr::new(10, 244, 1, 2)]);
        assert_eq!(s.allocate("d", "eth0").unwrap(), Ipv4Addr::new(10, 244, 1, 5));
        assert_eq!(s.allocate("e", "eth0").unwrap(), Ipv4Addr::new(10, 244, 1, 6));
        // Wraps: .1 is the gateway, .2 is free again.
        assert_eq!(s.allocate("f", "eth0").unwrap(), Ipv4Addr::new(10, 244, 1, 2));
    }

    #[test]
    fn persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = store(dir.path(), "10.244.1.0/24");
            s.allocate("a", "eth0").unwrap();
            s.allocate("b", "eth0").unwrap();
            s.release("a", "eth0").unwrap();
        }
        let s = store(dir.path(), "10.244.1.0/24");
        let all = s.allocations().unwrap();
        assert_eq!(
            all,
            [Allocation {
                ip: Ipv4Addr::new(10, 244, 1, 3),
                container_id: "b".into(),
                ifname: "eth0".into()
            }]
        );
        assert_eq!(s.allocate("c", "eth0").unwrap(), Ipv4Addr::new(10, 244, 1, 4));
    }

    #[test]
    fn exhaustion_message() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), "10.244.1.0/29");
        for i in 0..5 {
            s.allocate(&format!("c{i}"), "eth0").unwrap();
        }
        let err = s.allocate("c5", "eth0").unwrap_err();
        assert_eq!(
            err.msg,
            "failed to allocate for range 0: no IP addresses available in range set: 10.244.1.1-10.244.1.6"
        );
    }

    #[test]
    fn duplicate_and_idempotent_release() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), "10.244.1.0/24");
        s.allocate("a", "eth0").unwrap();
        let err = s.allocate("a", "eth0").unwrap_err();
        assert_eq!(err.msg, "10.244.1.2 has been allocated to a, duplicate allocation is not allowed");
        assert_eq!(s.release("a", "eth0").unwrap().len(), 1);
        assert!(s.release("a", "eth0").unwrap().is_empty());
    }
}
