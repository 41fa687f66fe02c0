//! Scoring: NodeResourcesFit's LeastAllocated strategy over the one resource netlab's pods use,
//! the pod count, so pods spread across nodes; then `selectHost`: the best score wins and ties are
//! broken at random (reservoir sampling), so equally empty nodes share the load instead of the
//! alphabetically first one taking every pod.
//!
//! Upstream computes an integer 0..=100 score, `(allocatable - requested) * 100 / allocatable`
//! with the incoming pod counted in `requested`; netlab compares the exact fractions instead, so
//! two nodes whose counts differ by one never tie and the spread is exact.

use std::cmp::Ordering;

/// A node that passed the filters: how many pods it holds and how many it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// Pods bound or assumed on the node, not counting the incoming one.
    pub pods: u32,
    /// `status.allocatable.pods`; greater than `pods` after filtering.
    pub allocatable: u32,
}

// === impl Load ===

impl Load {
    /// Compares the share of capacity left after placing the pod: Greater means `self` is the
    /// less allocated node.
    pub fn compare(&self, other: &Load) -> Ordering {
        let free = |l: &Load| u64::from(l.allocatable.saturating_sub(l.pods + 1));
        // free_a / alloc_a vs free_b / alloc_b, without division.
        (free(self) * u64::from(other.allocatable.max(1)))
            .cmp(&(free(other) * u64::from(self.allocatable.max(1))))
    }

    /// Upstream's integer score, for logs.
    pub fn score(&self) -> u64 {
        let alloc = u64::from(self.allocatable.max(1));
        u64::from(self.allocatable.saturating_sub(self.pods + 1)) * 100 / alloc
    }
}

/// Picks the least allocated candidate, ties at random.
#[derive(Debug, Clone)]
pub struct Picker {
    state: u64,
}

// === impl Picker ===

impl Picker {
    /// A picker seeded from the clock (tie-breaking needs no cryptographic randomness).
    pub fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        Self::seeded(nanos ^ u64::from(std::process::id()))
    }

    /// A picker with a fixed seed, for tests.
    pub fn seeded(seed: u64) -> Self {
        Self { state: seed | 1 }
    }

    /// xorshift64*.
    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The best of `candidates` (any item type, with its [`Load`]); None if there are none.
    pub fn pick<T>(&mut self, candidates: impl IntoIterator<Item = (T, Load)>) -> Option<(T, Load)> {
        let mut best: Option<(T, Load)> = None;
        let mut ties = 0u64;
        for (item, load) in candidates {
            let order = match &best {
                None => Ordering::Greater,
                Some((_, b)) => load.compare(b),
            };
            match order {
                Ordering::Greater => {
                    best = Some((item, load));
                    ties = 1;
                }
                Ordering::Equal => {
                    ties += 1;
                    if self.next().is_multiple_of(ties) {
                        best = Some((item, load));
                    }
                }
                Ordering::Less => {}
            }
        }
        best
    }
}

impl Default for Picker {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(pods: u32, allocatable: u32) -> Load {
        Load { pods, allocatable }
    }

    #[test]
    fn the_least_allocated_node_wins() {
        let mut p = Picker::seeded(7);
        let got = p.pick([("a", load(3, 110)), ("b", load(1, 110)), ("c", load(2, 110))]);
        assert_eq!(got.map(|(n, _)| n), Some("b"));
    }

    #[test]
    fn allocated_is_a_share_of_capacity() {
        // 10 of 20 used leaves less room (share) than 30 of 110.
        let mut p = Picker::seeded(7);
        assert_eq!(p.pick([("small", load(10, 20)), ("big", load(30, 110))]).map(|(n, _)| n), Some("big"));
        assert_eq!(load(0, 110).score(), 99);
        assert_eq!(load(109, 110).score(), 0);
    }

    #[test]
    fn nothing_to_pick_from() {
        assert!(Picker::seeded(1).pick(Vec::<(&str, Load)>::new()).is_none());
    }

    #[test]
    fn ties_are_broken_at_random() {
        let mut p = Picker::seeded(42);
        let mut wins: HashMap<&str, u32> = HashMap::new();
        for _ in 0..3000 {
            let (n, _) = p
                .pick([("a", load(5, 110)), ("b", load(5, 110)), ("c", load(5, 110)), ("d", load(6, 110))])
                .unwrap();
            *wins.entry(n).or_default() += 1;
        }
        assert!(!wins.contains_key("d"));
        for n in ["a", "b", "c"] {
            let w = wins.get(n).copied().unwrap_or(0);
            assert!((800..1200).contains(&w), "{n} won {w} of 3000: {wins:?}");
        }
    }

    #[test]
    fn repeated_choices_spread_evenly() {
        let mut p = Picker::seeded(3);
        let mut counts = [0u32; 4];
        for _ in 0..40 {
            let (i, _) = p.pick(counts.iter().enumerate().map(|(i, c)| (i, load(*c, 110)))).unwrap();
            counts[i] += 1;
        }
        assert_eq!(counts, [10, 10, 10, 10]);
    }
}
