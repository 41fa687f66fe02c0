//! Service ClusterIP and NodePort allocation, as kube-apiserver's bitmap allocators do it.
//!
//! A range is a bitmap, one bit per address (or port), split per KEP-3070 (IPs) and KEP-3668
//! (ports) into a static lower band, which dynamic allocation avoids so that users can pick
//! well-known addresses there (10.96.0.10 for kube-dns), and a dynamic upper band. Dynamic
//! allocation starts at a random offset in the upper band and scans forward; it falls back to the
//! lower band only when the upper band is full.
//!
//! The bitmap keeps a second level, one bit per full 64-bit word, so finding a free bit costs at
//! most a scan of `size / 4096` words even when the range is 99% used: a /12 (2^20 addresses)
//! scans at most 256 summary words.
//!
//! # Layout
//! - [`bitmap`]: the two-level bitmap.
//! - [`ip`]: the ClusterIP allocator over a Service CIDR.
//! - [`port`]: the NodePort allocator over a port range.

pub mod bitmap;
pub mod ip;
pub mod port;

/// Why an allocation failed. The messages are kube-apiserver's own
/// (`pkg/registry/core/service/ipallocator/interfaces.go`, `portallocator`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// No free address (or port) in either band.
    #[error("range is full")]
    Full,
    /// The requested address (or port) is taken.
    #[error("provided {0} is already allocated")]
    Allocated(&'static str),
    /// The requested address is outside the Service CIDR.
    #[error("provided IP {ip} is not in the valid range. The range of valid IPs is {range}")]
    IpNotInRange {
        /// The IP asked for.
        ip: std::net::IpAddr,
        /// The Service CIDR.
        range: String,
    },
    /// The requested port is outside the NodePort range.
    #[error("provided port is not in the valid range. The range of valid ports is {range}")]
    PortNotInRange {
        /// The NodePort range, `30000-32767`.
        range: String,
    },
}

/// KEP-3070's static band size for a range of `size` addresses: `min(max(16, size/16), 256)`,
/// and no static band at all for ranges of 16 or fewer (upstream `calculateRangeOffset`).
pub fn static_band(size: u64, step: u64, max: u64) -> u64 {
    const MIN: u64 = 16;
    if size <= MIN {
        return 0;
    }
    (size / step).clamp(MIN, max)
}

/// A small, fast, non-cryptographic generator for the random scan start (xorshift64*), seeded
/// from the clock: allocation only needs spread, not secrecy.
#[derive(Debug, Clone)]
pub struct ScanStart(u64);

// === impl ScanStart ===

impl ScanStart {
    /// Seeded from the system clock.
    pub fn from_clock() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        Self(nanos | 1)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}
