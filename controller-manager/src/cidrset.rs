//! The blocks of one cluster CIDR and which are taken: upstream's
//! `pkg/controller/nodeipam/ipam/cidrset`, pure data, so the allocator's arithmetic is tested
//! without a cluster.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// The node mask may be at most this many bits longer than the cluster mask (upstream
/// `clusterSubnetMaxDiff`): a /16 with /24 blocks has 256 of them, a /8 with /24 65,536.
const CLUSTER_SUBNET_MAX_DIFF: u8 = 16;

/// Why the allocator refused. The messages are upstream's (`pkg/controller/nodeipam/ipam/cidrset`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrSetError {
    /// Every block is taken.
    #[error("CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range")]
    Exhausted,
    /// The node mask is too long for the cluster CIDR, or shorter than it.
    #[error("New CIDR set failed; the node CIDR size is too big")]
    SubnetTooBig,
    /// A Node holds a CIDR outside the cluster CIDR.
    #[error("cidr {cidr} is out the range of cluster cidr {cluster}")]
    OutOfRange {
        /// The Node's CIDR.
        cidr: Ipv4Net,
        /// `--cluster-cidr`.
        cluster: Ipv4Net,
    },
}

/// The blocks of one cluster CIDR and which are taken, with upstream's round-robin: the search
/// for a free block starts after the last one handed out, so a released block is reused only
/// after the others (a deleted Node's pod IPs are not immediately someone else's).
#[derive(Debug, Clone)]
pub struct CidrSet {
    cluster: Ipv4Net,
    mask: u8,
    used: Vec<bool>,
    allocated: usize,
    next: usize,
}

// === impl CidrSet ===

impl CidrSet {
    /// The blocks of length `mask` in `cluster`.
    pub fn new(cluster: Ipv4Net, mask: u8) -> Result<Self, CidrSetError> {
        let cluster = cluster.trunc();
        if mask < cluster.prefix_len() || mask > 32 || mask - cluster.prefix_len() > CLUSTER_SUBNET_MAX_DIFF {
            return Err(CidrSetError::SubnetTooBig);
        }
        let blocks = 1usize << (mask - cluster.prefix_len());
        Ok(Self { cluster, mask, used: vec![false; blocks], allocated: 0, next: 0 })
    }

    /// How many blocks there are.
    pub fn capacity(&self) -> usize {
        self.used.len()
    }

    /// How many blocks are taken.
    pub fn allocated(&self) -> usize {
        self.allocated
    }

    fn block(&self, i: usize) -> Ipv4Net {
        // In u64 so that a /0 cluster (shift 32) cannot overflow; i < 2^(mask - prefix), so the
        // sum stays inside the cluster CIDR and fits in u32.
        let addr = u64::from(u32::from(self.cluster.network())) + ((i as u64) << (32 - u32::from(self.mask)));
        Ipv4Net::new(Ipv4Addr::from(addr as u32), self.mask).unwrap_or(self.cluster)
    }

    /// The indexes of the blocks `cidr` covers.
    fn range_of(&self, cidr: Ipv4Net) -> Result<std::ops::Range<usize>, CidrSetError> {
        let out = CidrSetError::OutOfRange { cidr, cluster: self.cluster };
        if !self.cluster.contains(&cidr.network()) || cidr.prefix_len() < self.cluster.prefix_len() {
            return Err(out);
        }
        let offset = u64::from(u32::from(cidr.network()) - u32::from(self.cluster.network()));
        let first = (offset >> (32 - u32::from(self.mask))) as usize;
        let len = if cidr.prefix_len() >= self.mask { 1 } else { 1usize << (self.mask - cidr.prefix_len()) };
        Ok(first..(first + len).min(self.used.len()))
    }

    /// Hands out the next free block.
    pub fn allocate_next(&mut self) -> Result<Ipv4Net, CidrSetError> {
        let n = self.used.len();
        for step in 0..n {
            let i = (self.next + step) % n;
            if !self.used[i] {
                self.used[i] = true;
                self.allocated += 1;
                self.next = (i + 1) % n;
                return Ok(self.block(i));
            }
        }
        Err(CidrSetError::Exhausted)
    }

    /// Marks `cidr` (a Node's existing podCIDR) as taken. Taking a taken block is a no-op.
    pub fn occupy(&mut self, cidr: Ipv4Net) -> Result<(), CidrSetError> {
        for i in self.range_of(cidr)? {
            if !self.used[i] {
                self.used[i] = true;
                self.allocated += 1;
            }
        }
        Ok(())
    }

    /// Gives `cidr` back.
    pub fn release(&mut self, cidr: Ipv4Net) -> Result<(), CidrSetError> {
        for i in self.range_of(cidr)? {
            if self.used[i] {
                self.used[i] = false;
                self.allocated -= 1;
            }
        }
        Ok(())
    }

    /// Whether `cidr` is taken.
    pub fn is_taken(&self, cidr: Ipv4Net) -> bool {
        self.range_of(cidr).is_ok_and(|mut r| r.all(|i| self.used[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_are_distinct_and_in_the_cluster_cidr() {
        let mut set = CidrSet::new(net("10.244.0.0/16"), 24).unwrap();
        assert_eq!(set.capacity(), 256);
        let got: Vec<Ipv4Net> = (0..256).map(|_| set.allocate_next().unwrap()).collect();
        assert_eq!(got[0], net("10.244.0.0/24"));
        assert_eq!(got[1], net("10.244.1.0/24"));
        assert_eq!(got[255], net("10.244.255.0/24"));
        let distinct: std::collections::HashSet<_> = got.iter().collect();
        assert_eq!(distinct.len(), 256);
        assert!(got.iter().all(|c| net("10.244.0.0/16").contains(c) && c.prefix_len() == 24));
    }

    #[test]
    fn exhaustion_is_upstreams_error_and_a_release_makes_room() {
        let mut set = CidrSet::new(net("10.244.0.0/23"), 24).unwrap();
        let a = set.allocate_next().unwrap();
        let b = set.allocate_next().unwrap();
        assert_ne!(a, b);
        let err = set.allocate_next().unwrap_err();
        assert_eq!(
            err.to_string(),
            "CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range"
        );
        set.release(a).unwrap();
        assert_eq!(set.allocate_next().unwrap(), a, "the released block is reused");
        assert_eq!(set.allocate_next(), Err(CidrSetError::Exhausted));
    }

    #[test]
    fn released_blocks_come_back_round_robin() {
        let mut set = CidrSet::new(net("10.244.0.0/16"), 24).unwrap();
        let a = set.allocate_next().unwrap();
        let b = set.allocate_next().unwrap();
        set.release(a).unwrap();
        let c = set.allocate_next().unwrap();
        assert_ne!(c, a, "the next block, not the one just freed");
        assert_ne!(c, b);
        assert_eq!(set.allocated(), 2);
    }

    #[test]
    fn occupied_blocks_are_never_handed_out() {
        let mut set = CidrSet::new(net("10.244.0.0/22"), 24).unwrap();
        set.occupy(net("10.244.0.0/24")).unwrap();
        set.occupy(net("10.244.2.0/24")).unwrap();
        set.occupy(net("10.244.2.0/24")).unwrap();
        assert_eq!(set.allocated(), 2);
        let mut got = vec![set.allocate_next().unwrap(), set.allocate_next().unwrap()];
        got.sort();
        assert_eq!(got, [net("10.244.1.0/24"), net("10.244.3.0/24")]);
        assert!(set.allocate_next().is_err());
        assert!(set.is_taken(net("10.244.2.0/24")));
    }

    #[test]
    fn out_of_range_and_oversized_masks_are_refused() {
        let mut set = CidrSet::new(net("10.244.0.0/16"), 24).unwrap();
        assert_eq!(
            set.occupy(net("10.0.0.0/24")).unwrap_err().to_string(),
            "cidr 10.0.0.0/24 is out the range of cluster cidr 10.244.0.0/16"
        );
        assert_eq!(CidrSet::new(net("10.0.0.0/8"), 26).unwrap_err(), CidrSetError::SubnetTooBig);
        assert_eq!(CidrSet::new(net("10.0.0.0/16"), 8).unwrap_err(), CidrSetError::SubnetTooBig);
        assert_eq!(CidrSet::new(net("10.0.0.0/8"), 24).unwrap().capacity(), 65536);
    }
}
