//! A subnet's address book: which addresses are taken, which are free, and how they are handed out.
//!
//! The lab's point is to let a subnet run out the way a real one does, so the count must be
//! AWS's: the first four addresses (network, VPC router, DNS, future use) and the last
//! (broadcast) are reserved in every subnet (Amazon VPC User Guide, "Subnet CIDR blocks").
//! Addresses are handed out lowest-first so tests and lab walkthroughs are deterministic.
//! /28 prefixes for prefix delegation are aligned on 16 and never overlap a reserved address.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::model::Tags;

/// Addresses AWS reserves at the start of every subnet.
pub const RESERVED_AT_START: u32 = 4;
/// Addresses AWS reserves at the end of every subnet (the broadcast address).
pub const RESERVED_AT_END: u32 = 1;
/// The prefix length ipamd asks for with prefix delegation.
pub const PREFIX_LEN: u8 = 28;

/// A subnet of the VPC, in one Availability Zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    /// `subnet-` + 17 hex.
    pub id: String,
    /// The VPC it belongs to.
    pub vpc_id: String,
    /// Availability Zone name, e.g. `us-east-1a`.
    pub availability_zone: String,
    /// Availability Zone id, e.g. `use1-az1`.
    pub availability_zone_id: String,
    /// The subnet's IPv4 CIDR.
    pub cidr: Ipv4Net,
    /// User tags (eksctl puts `kubernetes.io/role/internal-elb` and the like here).
    pub tags: Tags,
    /// Addresses held by ENIs, including every address of every /28 prefix handed out.
    used: BTreeSet<Ipv4Addr>,
}

// === impl Subnet ===

impl Subnet {
    /// A subnet with no address in use.
    pub fn new(
        id: String,
        vpc_id: String,
        availability_zone: String,
        availability_zone_id: String,
        cidr: Ipv4Net,
    ) -> Self {
        Self {
            id,
            vpc_id,
            availability_zone,
            availability_zone_id,
            cidr: cidr.trunc(),
            tags: Tags::new(),
            used: BTreeSet::new(),
        }
    }

    /// The first and last address that can be handed out, or `None` for a subnet too small to
    /// have any (AWS allows /16 to /28, so a /28 has 11).
    fn usable_range(&self) -> Option<(u32, u32)> {
        let first = u32::from(self.cidr.network()).checked_add(RESERVED_AT_START)?;
        let last = u32::from(self.cidr.broadcast()).checked_sub(RESERVED_AT_END)?;
        (first <= last).then_some((first, last))
    }

    /// How many addresses the subnet can hand out in all (its size less the five reserved).
    pub fn capacity(&self) -> u32 {
        self.usable_range().map_or(0, |(a, b)| b - a + 1)
    }

    /// `AvailableIpAddressCount`: capacity less the addresses ENIs hold.
    pub fn available(&self) -> u32 {
        let used = u32::try_from(self.used.len()).unwrap_or(u32::MAX);
        self.capacity().saturating_sub(used)
    }

    /// Whether `ip` may be handed out at all: inside the subnet and not reserved.
    pub fn is_assignable(&self, ip: Ipv4Addr) -> bool {
        let n = u32::from(ip);
        self.usable_range().is_some_and(|(a, b)| a <= n && n <= b)
    }

    /// Whether an ENI holds `ip`.
    pub fn is_used(&self, ip: Ipv4Addr) -> bool {
        self.used.contains(&ip)
    }

    /// Takes the lowest free address.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let (first, last) = self.usable_range()?;
        let ip = (first..=last).map(Ipv4Addr::from).find(|ip| !self.used.contains(ip))?;
        self.used.insert(ip);
        Some(ip)
    }

    /// Takes a given address; `false` if it is reserved, outside the subnet or taken.
    pub fn allocate_exact(&mut self, ip: Ipv4Addr) -> bool {
        self.is_assignable(ip) && self.used.insert(ip)
    }

    /// Takes the lowest aligned /28 whose sixteen addresses are all assignable and free.
    pub fn allocate_prefix(&mut self) -> Option<Ipv4Net> {
        let (first, last) = self.usable_range()?;
        let block = 1u32 << (32 - PREFIX_LEN);
        let mut start = u32::from(self.cidr.network());
        while start.checked_add(block - 1)? <= last {
            let end = start + block - 1;
            if start >= first && (start..=end).all(|n| !self.used.contains(&Ipv4Addr::from(n))) {
                self.used.extend((start..=end).map(Ipv4Addr::from));
                return Ipv4Net::new(Ipv4Addr::from(start), PREFIX_LEN).ok();
            }
            start += block;
        }
        None
    }

    /// Gives an address back.
    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&ip);
    }

    /// Gives a prefix's addresses back.
    pub fn release_prefix(&mut self, prefix: Ipv4Net) {
        for ip in prefix.hosts_with_network_and_broadcast() {
            self.used.remove(&ip);
        }
    }
}

/// Every address of a net, network and broadcast included (ipnet's `hosts()` skips them).
trait AllAddresses {
    fn hosts_with_network_and_broadcast(&self) -> Vec<Ipv4Addr>;
}

impl AllAddresses for Ipv4Net {
    fn hosts_with_network_and_broadcast(&self) -> Vec<Ipv4Addr> {
        (u32::from(self.network())..=u32::from(self.broadcast())).map(Ipv4Addr::from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(cidr: &str) -> Subnet {
        Subnet::new(
            "subnet-1".into(),
            "vpc-1".into(),
            "us-east-1a".into(),
            "use1-az1".into(),
            cidr.parse().unwrap(),
        )
    }

    #[test]
    fn reserves_first_four_and_last() {
        let s = subnet("192.168.0.0/19");
        assert_eq!(s.capacity(), 8192 - 5);
        assert_eq!(s.available(), 8187);
        assert!(!s.is_assignable("192.168.0.3".parse().unwrap()));
        assert!(s.is_assignable("192.168.0.4".parse().unwrap()));
        assert!(s.is_assignable("192.168.31.254".parse().unwrap()));
        assert!(!s.is_assignable("192.168.31.255".parse().unwrap()));
        assert!(!s.is_assignable("192.168.32.4".parse().unwrap()));
        // A /28 has 11 usable addresses.
        assert_eq!(subnet("10.0.0.0/28").capacity(), 11);
    }

    #[test]
    fn lowest_free_first_and_reuse() {
        let mut s = subnet("10.0.0.0/24");
        let a = s.allocate().unwrap();
        let b = s.allocate().unwrap();
        assert_eq!(a, "10.0.0.4".parse::<Ipv4Addr>().unwrap());
        assert_eq!(b, "10.0.0.5".parse::<Ipv4Addr>().unwrap());
        s.release(a);
        assert_eq!(s.allocate().unwrap(), a);
        assert!(!s.allocate_exact(b));
        assert!(s.allocate_exact("10.0.0.100".parse().unwrap()));
        assert_eq!(s.available(), 251 - 3);
    }

    #[test]
    fn prefixes_are_aligned_skip_reserved_and_count() {
        let mut s = subnet("10.0.0.0/24");
        s.allocate().unwrap(); // 10.0.0.4
        // The first /28 holds the reserved addresses, so the first prefix is .16/28.
        let p = s.allocate_prefix().unwrap();
        assert_eq!(p.to_string(), "10.0.0.16/28");
        assert_eq!(s.available(), 251 - 1 - 16);
        // An address inside a later block pushes the next prefix past it.
        assert!(s.allocate_exact("10.0.0.40".parse().unwrap()));
        assert_eq!(s.allocate_prefix().unwrap().to_string(), "10.0.0.48/28");
        // Single addresses never come out of a prefix.
        for _ in 0..11 {
            let ip = s.allocate().unwrap();
            assert!(!p.contains(&ip));
        }
        s.release_prefix(p);
        assert_eq!(s.allocate_prefix().unwrap(), p);
        // The last /28 holds the broadcast address, so a /24 has 14 aligned prefixes at most.
        let mut t = subnet("10.0.1.0/24");
        let mut n = 0;
        while t.allocate_prefix().is_some() {
            n += 1;
        }
        assert_eq!(n, 14);
        assert_eq!(t.available(), 251 - 14 * 16);
    }

    #[test]
    fn exhaustion() {
        let mut s = subnet("10.0.0.0/28");
        for _ in 0..11 {
            assert!(s.allocate().is_some());
        }
        assert_eq!(s.available(), 0);
        assert!(s.allocate().is_none());
        assert!(s.allocate_prefix().is_none());
    }
}
