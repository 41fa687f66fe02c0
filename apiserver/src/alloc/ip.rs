//! The ClusterIP allocator: a [`Bitmap`] over the usable addresses of the Service CIDR (network
//! and broadcast excluded, as upstream), with KEP-3070's static and dynamic bands.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;

use super::{AllocError, ScanStart, bitmap::Bitmap, static_band};

/// Allocates ClusterIPs from one IPv4 Service CIDR.
#[derive(Debug, Clone)]
pub struct IpAllocator {
    cidr: Ipv4Net,
    /// The first usable address (network + 1): bit 0.
    base: u32,
    bits: Bitmap,
    /// Bits `0..offset` are the static band.
    offset: u64,
    rng: ScanStart,
}

// === impl IpAllocator ===

impl IpAllocator {
    /// An empty allocator for `cidr`.
    pub fn new(cidr: Ipv4Net) -> Self {
        let cidr = cidr.trunc();
        let cidr_size = 1u64 << (32 - cidr.prefix_len());
        // Network and broadcast addresses are not usable (a /31 or /32 has nothing usable).
        let usable = cidr_size.saturating_sub(2);
        Self {
            cidr,
            base: u32::from(cidr.network()).wrapping_add(1),
            bits: Bitmap::new(usable),
            offset: static_band(cidr_size, 16, 256).min(usable),
            rng: ScanStart::from_clock(),
        }
    }

    /// The Service CIDR.
    pub fn cidr(&self) -> Ipv4Net {
        self.cidr
    }

    /// The `n`th address of the range, counting the network address as 0: kube-dns conventionally
    /// gets the 10th (`GetIndexedIP(svcSubnet, 10)`).
    pub fn indexed(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.cidr.network()).wrapping_add(n))
    }

    /// The static band as an inclusive address range, `None` when the range is too small for one.
    pub fn static_range(&self) -> Option<(Ipv4Addr, Ipv4Addr)> {
        (self.offset > 0)
            .then(|| (Ipv4Addr::from(self.base), Ipv4Addr::from(self.base + self.offset as u32 - 1)))
    }

    /// Number of usable addresses.
    pub fn size(&self) -> u64 {
        self.bits.size()
    }

    /// Number of allocated addresses.
    pub fn used(&self) -> u64 {
        self.bits.used()
    }

    /// Allocates the next free address: a random start in the dynamic band, scanning forward; the
    /// static band only when the dynamic one is full.
    pub fn allocate_next(&mut self) -> Result<Ipv4Addr, AllocError> {
        let size = self.bits.size();
        let found = if self.offset < size {
            let start = self.offset + self.rng.below(size - self.offset);
            self.bits.find_free(self.offset, size, start)
        } else {
            None
        };
        let found = match found {
            Some(i) => Some(i),
            None if self.offset > 0 => {
                let start = self.rng.below(self.offset);
                self.bits.find_free(0, self.offset, start)
            }
            None => None,
        };
        let i = found.ok_or(AllocError::Full)?;
        self.bits.set(i);
        Ok(Ipv4Addr::from(self.base + i as u32))
    }

    /// Allocates a specific address, anywhere in the range.
    pub fn allocate(&mut self, ip: IpAddr) -> Result<(), AllocError> {
        let i = self.index(ip)?;
        if self.bits.set(i) { Ok(()) } else { Err(AllocError::Allocated("IP")) }
    }

    /// Releases an address; releasing a free or foreign address does nothing.
    pub fn release(&mut self, ip: IpAddr) {
        if let Ok(i) = self.index(ip) {
            self.bits.clear(i);
        }
    }

    /// Whether `ip` is allocated.
    pub fn has(&self, ip: IpAddr) -> bool {
        self.index(ip).is_ok_and(|i| self.bits.get(i))
    }

    /// The bit for `ip`, or the out-of-range error.
    fn index(&self, ip: IpAddr) -> Result<u64, AllocError> {
        let not_in_range = || AllocError::IpNotInRange { ip, range: self.cidr.to_string() };
        let IpAddr::V4(v4) = ip else { return Err(not_in_range()) };
        let n = u32::from(v4);
        if !self.cidr.contains(&v4) || n < self.base {
            return Err(not_in_range());
        }
        let i = u64::from(n - self.base);
        if i >= self.bits.size() {
            return Err(not_in_range());
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(cidr: &str) -> IpAllocator {
        IpAllocator::new(cidr.parse().unwrap())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bootstrap_addresses_are_the_first_and_tenth() {
        let mut a = alloc("10.96.0.0/12");
        assert_eq!(a.indexed(1), Ipv4Addr::new(10, 96, 0, 1));
        assert_eq!(a.indexed(10), Ipv4Addr::new(10, 96, 0, 10));
        a.allocate(ip("10.96.0.1")).unwrap();
        a.allocate(ip("10.96.0.10")).unwrap();
        assert_eq!(a.used(), 2);
    }

    #[test]
    fn band_split_matches_kep_3070() {
        let band = |c: &str| alloc(c).static_range().map(|(a, b)| format!("{a}-{b}"));
        assert_eq!(band("10.96.0.0/12").as_deref(), Some("10.96.0.1-10.96.1.0"));
        assert_eq!(band("192.168.0.0/16").as_deref(), Some("192.168.0.1-192.168.1.0"));
        assert_eq!(band("10.0.0.0/22").as_deref(), Some("10.0.0.1-10.0.0.64"));
        assert_eq!(band("10.0.0.0/26").as_deref(), Some("10.0.0.1-10.0.0.16"));
        assert_eq!(band("10.0.0.0/28"), None, "16 addresses or fewer: no static band");
    }

    #[test]
    fn dynamic_allocation_avoids_the_static_band_until_the_upper_band_is_full() {
        let mut a = alloc("10.0.0.0/26"); // 62 usable, static .1-.16, dynamic .17-.62
        let mut got = Vec::new();
        for _ in 0..46 {
            got.push(a.allocate_next().unwrap());
        }
        assert!(got.iter().all(|ip| ip.octets()[3] >= 17), "{got:?}");
        let next = a.allocate_next().unwrap();
        assert!(next.octets()[3] <= 16, "falls back to the static band: {next}");
    }

    #[test]
    fn range_full() {
        let mut a = alloc("10.0.0.0/29"); // 6 usable
        for _ in 0..6 {
            a.allocate_next().unwrap();
        }
        assert_eq!(a.allocate_next(), Err(AllocError::Full));
        assert_eq!(AllocError::Full.to_string(), "range is full");
    }

    #[test]
    fn already_allocated_and_out_of_range() {
        let mut a = alloc("10.96.0.0/12");
        a.allocate(ip("10.96.0.10")).unwrap();
        let err = a.allocate(ip("10.96.0.10")).unwrap_err();
        assert_eq!(err.to_string(), "provided IP is already allocated");
        let err = a.allocate(ip("1.1.1.1")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "provided IP 1.1.1.1 is not in the valid range. The range of valid IPs is 10.96.0.0/12"
        );
        for edge in ["10.96.0.0", "10.111.255.255"] {
            assert!(
                matches!(a.allocate(ip(edge)), Err(AllocError::IpNotInRange { .. })),
                "network and broadcast are not usable: {edge}"
            );
        }
        a.allocate(ip("10.111.255.254")).unwrap();
    }

    #[test]
    fn release_and_reuse() {
        let mut a = alloc("10.0.0.0/29");
        let all: Vec<_> = (0..6).map(|_| a.allocate_next().unwrap()).collect();
        a.release(IpAddr::V4(all[3]));
        assert!(!a.has(IpAddr::V4(all[3])));
        assert_eq!(a.allocate_next().unwrap(), all[3]);
    }
}
