//! `net_ratelimit()`: the kernel's limit on messages from the packet path (such as
//! `nf_conntrack: table full, dropping packet`), so that a flood of dropped packets does not
//! flood the log. Defaults are `net.core.message_burst` = 10 messages per
//! `net.core.message_cost` = 5 s; what was held back is summed up as `net_ratelimit: N callbacks
//! suppressed` when messages may flow again.

use std::time::Duration;

/// `net.core.message_cost`: the window.
pub const MESSAGE_COST: Duration = Duration::from_secs(5);
/// `net.core.message_burst`: messages per window.
pub const MESSAGE_BURST: u32 = 10;

/// A rate limiter of kernel messages (`___ratelimit`).
#[derive(Debug, Clone, Default)]
pub struct Ratelimit {
    begin: Option<Duration>,
    printed: u32,
    missed: u64,
}

/// Whether to print a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allow {
    /// Print it; `suppressed` messages were held back before it (print
    /// `net_ratelimit: N callbacks suppressed` first when non-zero).
    Print {
        /// Messages held back since the last window.
        suppressed: u64,
    },
    /// Hold it back.
    Suppress,
}

impl Ratelimit {
    /// A message wants out at `now`.
    pub fn check(&mut self, now: Duration) -> Allow {
        let mut suppressed = 0;
        match self.begin {
            Some(begin) if now.saturating_sub(begin) < MESSAGE_COST => {}
            _ => {
                self.begin = Some(now);
                self.printed = 0;
                suppressed = std::mem::take(&mut self.missed);
            }
        }
        if self.printed < MESSAGE_BURST {
            self.printed += 1;
            Allow::Print { suppressed }
        } else {
            self.missed += 1;
            Allow::Suppress
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_per_five_seconds_then_a_summary() {
        let mut r = Ratelimit::default();
        let t = Duration::from_secs(1);
        for _ in 0..10 {
            assert_eq!(r.check(t), Allow::Print { suppressed: 0 });
        }
        for _ in 0..7 {
            assert_eq!(r.check(t + Duration::from_secs(4)), Allow::Suppress);
        }
        assert_eq!(r.check(t + MESSAGE_COST), Allow::Print { suppressed: 7 });
        assert_eq!(r.check(t + MESSAGE_COST), Allow::Print { suppressed: 0 });
    }
}
