//! A two-level bitmap: 64-bit words of allocation bits plus one summary bit per word that is full,
//! so a forward scan for a free bit skips 4096 taken bits per summary word.

/// One bit per item; `true` = allocated.
#[derive(Debug, Clone)]
pub struct Bitmap {
    size: u64,
    words: Vec<u64>,
    /// Bit `w` set when `words[w]` has no free bit (within `size`).
    full: Vec<u64>,
    used: u64,
}

// === impl Bitmap ===

impl Bitmap {
    /// An empty bitmap of `size` items.
    pub fn new(size: u64) -> Self {
        let nwords = size.div_ceil(64) as usize;
        let mut bitmap = Self { size, words: vec![0; nwords], full: vec![0; nwords.div_ceil(64)], used: 0 };
        // Bits past `size` in the last word are permanently "allocated" so scans never return them.
        if !size.is_multiple_of(64) {
            let last = nwords - 1;
            bitmap.words[last] = !0u64 << (size % 64);
            bitmap.refresh_full(last);
        }
        bitmap
    }

    /// Number of items.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Number of allocated items.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Whether item `i` is allocated.
    pub fn get(&self, i: u64) -> bool {
        i < self.size && self.words[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    /// Marks `i` allocated; false if it already was (or is out of range).
    pub fn set(&mut self, i: u64) -> bool {
        if i >= self.size || self.get(i) {
            return false;
        }
        let w = (i / 64) as usize;
        self.words[w] |= 1 << (i % 64);
        self.used += 1;
        self.refresh_full(w);
        true
    }

    /// Marks `i` free; false if it already was.
    pub fn clear(&mut self, i: u64) -> bool {
        if !self.get(i) {
            return false;
        }
        let w = (i / 64) as usize;
        self.words[w] &= !(1 << (i % 64));
        self.used -= 1;
        self.refresh_full(w);
        true
    }

    /// The first free item in `from..hi`, or failing that in `lo..from` (a forward scan with
    /// wrap-around inside the band `lo..hi`).
    pub fn find_free(&self, lo: u64, hi: u64, from: u64) -> Option<u64> {
        let hi = hi.min(self.size);
        if lo >= hi {
            return None;
        }
        let from = from.clamp(lo, hi - 1);
        self.scan(from, hi).or_else(|| self.scan(lo, from))
    }

    fn scan(&self, lo: u64, hi: u64) -> Option<u64> {
        let mut i = lo;
        while i < hi {
            let w = (i / 64) as usize;
            // Skip whole full words through the summary level.
            if self.full[w / 64] & (1 << (w % 64)) != 0 {
                let sw = w / 64;
                let rest = !self.full[sw] & (!0u64 << (w % 64));
                let next_word = if rest != 0 {
                    sw * 64 + rest.trailing_zeros() as usize
                } else {
                    let mut s = sw + 1;
                    while s < self.full.len() && self.full[s] == !0 {
                        s += 1;
                    }
                    if s == self.full.len() {
                        return None;
                    }
                    s * 64 + (!self.full[s]).trailing_zeros() as usize
                };
                i = (next_word as u64) * 64;
                continue;
            }
            let free = !self.words[w] & (!0u64 << (i % 64));
            if free != 0 {
                let found = (w as u64) * 64 + free.trailing_zeros() as u64;
                return (found < hi).then_some(found);
            }
            i = (w as u64 + 1) * 64;
        }
        None
    }

    fn refresh_full(&mut self, w: usize) {
        let bit = 1u64 << (w % 64);
        if self.words[w] == !0 {
            self.full[w / 64] |= bit;
        } else {
            self.full[w / 64] &= !bit;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_clear_and_count() {
        let mut b = Bitmap::new(100);
        assert!(b.set(5));
        assert!(!b.set(5));
        assert!(b.get(5));
        assert_eq!(b.used(), 1);
        assert!(b.clear(5));
        assert!(!b.clear(5));
        assert_eq!(b.used(), 0);
        assert!(!b.set(100), "out of range");
    }

    #[test]
    fn find_free_wraps_inside_the_band_and_skips_full_words() {
        let mut b = Bitmap::new(10_000);
        for i in 0..9_000 {
            b.set(i);
        }
        assert_eq!(b.find_free(0, 10_000, 0), Some(9_000));
        assert_eq!(b.find_free(0, 10_000, 9_500), Some(9_500));
        for i in 9_000..10_000 {
            b.set(i);
        }
        assert_eq!(b.find_free(0, 10_000, 1234), None);
        b.clear(17);
        assert_eq!(b.find_free(0, 10_000, 5000), Some(17), "wraps to the band start");
        assert_eq!(b.find_free(100, 10_000, 5000), None, "17 is outside the band");
    }

    #[test]
    fn last_partial_word_is_never_returned() {
        let mut b = Bitmap::new(65);
        for i in 0..65 {
            assert!(b.set(i));
        }
        assert_eq!(b.find_free(0, 65, 0), None);
    }
}
