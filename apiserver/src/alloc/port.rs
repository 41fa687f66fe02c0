//! The NodePort allocator: a [`Bitmap`] over the NodePort range (30000-32767 by default), with
//! KEP-3668's static band (`min(max(16, size/32), 128)` ports) kept for users' own picks.

use super::{AllocError, ScanStart, bitmap::Bitmap, static_band};

/// Allocates NodePorts from one port range.
#[derive(Debug, Clone)]
pub struct PortAllocator {
    base: u16,
    bits: Bitmap,
    offset: u64,
    rng: ScanStart,
}

/// The default NodePort range, `--service-node-port-range`.
pub const DEFAULT_RANGE: (u16, u16) = (30000, 32767);

// === impl PortAllocator ===

impl PortAllocator {
    /// An empty allocator for the inclusive range `first..=last`.
    pub fn new(first: u16, last: u16) -> Self {
        let size = u64::from(last.saturating_sub(first)) + 1;
        Self {
            base: first,
            bits: Bitmap::new(size),
            offset: static_band(size, 32, 128),
            rng: ScanStart::from_clock(),
        }
    }

    /// The range as `--service-node-port-range` writes it.
    pub fn range(&self) -> String {
        format!("{}-{}", self.base, u64::from(self.base) + self.bits.size() - 1)
    }

    /// Allocates the next free port (dynamic band first).
    pub fn allocate_next(&mut self) -> Result<u16, AllocError> {
        let size = self.bits.size();
        let start = self.offset + self.rng.below((size - self.offset).max(1));
        let found =
            self.bits.find_free(self.offset, size, start).or_else(|| self.bits.find_free(0, self.offset, 0));
        let i = found.ok_or(AllocError::Full)?;
        self.bits.set(i);
        Ok(self.base + i as u16)
    }

    /// Allocates a specific port.
    pub fn allocate(&mut self, port: u16) -> Result<(), AllocError> {
        let i = self.index(port)?;
        if self.bits.set(i) { Ok(()) } else { Err(AllocError::Allocated("port")) }
    }

    /// Releases a port; a free or foreign port is ignored.
    pub fn release(&mut self, port: u16) {
        if let Ok(i) = self.index(port) {
            self.bits.clear(i);
        }
    }

    fn index(&self, port: u16) -> Result<u64, AllocError> {
        let i = u64::from(port.wrapping_sub(self.base));
        if port < self.base || i >= self.bits.size() {
            return Err(AllocError::PortNotInRange { range: self.range() });
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_range_static_band_and_errors() {
        let mut a = PortAllocator::new(DEFAULT_RANGE.0, DEFAULT_RANGE.1);
        assert_eq!(a.offset, 86);
        let p = a.allocate_next().unwrap();
        assert!((30086..=32767).contains(&p), "{p}");
        a.allocate(30080).unwrap();
        assert_eq!(a.allocate(30080).unwrap_err().to_string(), "provided port is already allocated");
        assert_eq!(
            a.allocate(8080).unwrap_err().to_string(),
            "provided port is not in the valid range. The range of valid ports is 30000-32767"
        );
        a.release(30080);
        a.allocate(30080).unwrap();
    }
}
