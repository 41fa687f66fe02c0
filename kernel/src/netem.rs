//! The two qdiscs Chaos Mesh's NetworkChaos installs on a pod's interface, as pure decisions per
//! packet: `netem` (delay with jitter, loss, duplicate, corrupt, each with a correlation) and
//! `tbf` (a rate limit). The node-agent asks [`Netem::packet`] what happens to each packet
//! (a connection's SYN, a data segment, a datagram) and [`Tbf::wait`] how long it queues.
//!
//! The arithmetic is sch_netem.c's, so that a fault behaves as it does on a node: percentages are
//! scaled to `u32` as tc scales them, the correlated random source is netem's `get_crandom`
//! (`answer = (random · (2³² − ρ) + last · ρ) >> 32`, which is known to bias the mean, as on
//! Linux), jitter without a distribution table is uniform in `[latency − jitter, latency +
//! jitter)` (`tabledist` with no table), and a packet both duplicated and lost is sent once.
//! The generator is seeded, so tests see the same fates every run.

use std::{fmt, time::Duration};

/// A generator for the qdiscs' random numbers: splitmix64, seeded (never the kernel's
/// `prandom`, whose sequence nobody relies on).
#[derive(Debug, Clone)]
pub struct Rng(u64);

/// netem's correlated random source (`struct crndstate`): `rho` is the correlation scaled to
/// `u32`, `last` the previous answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Correlated {
    rho: u32,
    last: u32,
}

/// What a netem qdisc is configured with (`tc qdisc add ... netem delay 200ms 50ms 25% loss 10%
/// ...`). Percentages are percent (`25.0` = 25%), as Chaos Mesh passes them to tc.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NetemParams {
    /// Added latency.
    pub latency: Duration,
    /// Spread around `latency`.
    pub jitter: Duration,
    /// Correlation of successive delays, percent.
    pub delay_correlation: f64,
    /// Packets dropped, percent.
    pub loss: f64,
    /// Correlation of successive losses, percent.
    pub loss_correlation: f64,
    /// Packets sent twice, percent.
    pub duplicate: f64,
    /// Correlation of successive duplications, percent.
    pub duplicate_correlation: f64,
    /// Packets with a flipped bit, percent.
    pub corrupt: f64,
    /// Correlation of successive corruptions, percent.
    pub corrupt_correlation: f64,
}

/// One netem qdisc: its parameters and its random state.
#[derive(Debug, Clone)]
pub struct Netem {
    latency_ns: u64,
    jitter_ns: u64,
    loss: u32,
    duplicate: u32,
    corrupt: u32,
    delay_cor: Correlated,
    loss_cor: Correlated,
    dup_cor: Correlated,
    corrupt_cor: Correlated,
    rng: Rng,
}

/// What netem did with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fate {
    /// How many copies leave: 0 (lost), 1, or 2 (duplicated).
    pub copies: u8,
    /// Whether a bit was flipped (the receiver's checksum then fails).
    pub corrupted: bool,
    /// How long the packet waits before it leaves.
    pub delay: Duration,
}

/// A tbf qdisc: a token bucket of `buffer` bytes refilled at `rate` bytes per second.
#[derive(Debug, Clone)]
pub struct Tbf {
    rate: u64,
    buffer: u64,
    /// Tokens in bytes; negative while packets wait for tokens.
    tokens: f64,
    /// When the bucket was last refilled.
    last: Duration,
}

/// A rate tc does not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid rate {0:?}: want a number with one of bit, kbit, mbit, gbit, tbit, bps, kbps, mbps, gbps, tbps"
)]
pub struct RateError(String);

// === impl Rng ===

impl Rng {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 32) as u32
    }
}

// === impl Correlated ===

impl Correlated {
    /// A source correlated by `percent` with its previous answer.
    pub fn new(percent: f64) -> Self {
        Self { rho: scale(percent), last: 0 }
    }

    /// netem's `get_crandom`.
    pub fn next(&mut self, rng: &mut Rng) -> u32 {
        let value = u64::from(rng.next_u32());
        if self.rho == 0 {
            return value as u32;
        }
        let rho = u64::from(self.rho) + 1;
        let answer = ((value * ((1u64 << 32) - rho) + u64::from(self.last) * rho) >> 32) as u32;
        self.last = answer;
        answer
    }
}

/// A percentage as tc hands it to the kernel: `percent / 100 · u32::MAX`, clamped to 0..=100%.
pub fn scale(percent: f64) -> u32 {
    if percent.is_nan() || percent <= 0.0 {
        return 0;
    }
    (percent.min(100.0) / 100.0 * f64::from(u32::MAX)).round() as u32
}

// === impl Netem ===

impl Netem {
    /// A qdisc with `params`, its random numbers started at `seed`.
    pub fn new(params: &NetemParams, seed: u64) -> Self {
        Self {
            latency_ns: nanos(params.latency),
            jitter_ns: nanos(params.jitter),
            loss: scale(params.loss),
            duplicate: scale(params.duplicate),
            corrupt: scale(params.corrupt),
            delay_cor: Correlated::new(params.delay_correlation),
            loss_cor: Correlated::new(params.loss_correlation),
            dup_cor: Correlated::new(params.duplicate_correlation),
            corrupt_cor: Correlated::new(params.corrupt_correlation),
            rng: Rng::new(seed),
        }
    }

    /// `netem_enqueue` for one packet: duplicate, then loss, then corrupt, then delay.
    pub fn packet(&mut self) -> Fate {
        let mut copies = 1u8;
        if self.duplicate != 0 && self.duplicate >= self.dup_cor.next(&mut self.rng) {
            copies += 1;
        }
        if self.loss != 0 && self.loss >= self.loss_cor.next(&mut self.rng) {
            copies -= 1;
        }
        if copies == 0 {
            return Fate { copies, corrupted: false, delay: Duration::ZERO };
        }
        let corrupted = self.corrupt != 0 && self.corrupt >= self.corrupt_cor.next(&mut self.rng);
        Fate { copies, corrupted, delay: Duration::from_nanos(self.tabledist()) }
    }

    /// `tabledist` without a distribution table: uniform in `[mu − sigma, mu + sigma)`, never
    /// below zero (netem clamps a negative delay to none).
    fn tabledist(&mut self) -> u64 {
        let (mu, sigma) = (self.latency_ns, self.jitter_ns);
        if sigma == 0 {
            return mu;
        }
        let rnd = u64::from(self.delay_cor.next(&mut self.rng));
        (rnd % (2 * sigma) + mu).saturating_sub(sigma)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

// === impl Tbf ===

impl Tbf {
    /// A bucket of `buffer` bytes (full at the start, as a new qdisc's is) filled at `rate`
    /// bytes per second, at `now` on the caller's clock.
    pub fn new(rate: u64, buffer: u64, now: Duration) -> Self {
        let buffer = buffer.max(1);
        Self { rate: rate.max(1), buffer, tokens: buffer as f64, last: now }
    }

    /// The rate in bytes per second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// A packet of `bytes` arrives at `now`: how long it waits for its tokens. Packets queue
    /// behind each other, so a transfer of N bytes takes at least `(N − buffer) / rate`.
    pub fn wait(&mut self, bytes: usize, now: Duration) -> Duration {
        let elapsed = now.saturating_sub(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(self.buffer as f64);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate as f64)
        }
    }
}

/// A rate as tc (and Chaos Mesh's `bandwidth.rate`) spells it, in bytes per second: `bit`,
/// `kbit`, `mbit`, `gbit`, `tbit` are bits per second, `bps`, `kbps`, ... bytes per second, with
/// SI multiples (tc's `kbit` is 1000 bit/s). Case and surrounding blanks do not matter, as in
/// Chaos Mesh's check.
pub fn parse_rate(text: &str) -> Result<u64, RateError> {
    const UNITS: [(&str, f64); 10] = [
        ("kbit", 1e3 / 8.0),
        ("mbit", 1e6 / 8.0),
        ("gbit", 1e9 / 8.0),
        ("tbit", 1e12 / 8.0),
        ("tbps", 1e12),
        ("gbps", 1e9),
        ("mbps", 1e6),
        ("kbps", 1e3),
        ("bps", 1.0),
        ("bit", 1.0 / 8.0),
    ];
    let lower = text.trim().to_ascii_lowercase();
    let bad = || RateError(text.to_string());
    let (number, per_unit) =
        UNITS.iter().find_map(|(u, m)| lower.strip_suffix(u).map(|n| (n, *m))).ok_or_else(bad)?;
    let n: u64 = number.parse().map_err(|_| bad())?;
    let rate = (n as f64 * per_unit).round() as u64;
    if rate == 0 { Err(bad()) } else { Ok(rate) }
}

impl fmt::Display for Fate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.copies {
            0 => f.write_str("lost"),
            n => {
                write!(f, "delayed {:?}", self.delay)?;
                if n > 1 {
                    f.write_str(", duplicated")?;
                }
                if self.corrupted {
                    f.write_str(", corrupted")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn run(params: NetemParams, n: usize) -> Vec<Fate> {
        let mut q = Netem::new(&params, 42);
        (0..n).map(|_| q.packet()).collect()
    }

    #[test]
    fn percentages_scale_as_tc_scales_them() {
        assert_eq!(scale(0.0), 0);
        assert_eq!(scale(100.0), u32::MAX);
        assert_eq!(scale(250.0), u32::MAX, "clamped");
        assert_eq!(scale(-1.0), 0);
        assert_eq!(scale(f64::NAN), 0);
        assert_eq!(scale(50.0), u32::MAX / 2 + 1);
    }

    #[test]
    fn delay_without_jitter_is_exact() {
        let fates = run(NetemParams { latency: ms(200), ..Default::default() }, 100);
        assert!(fates.iter().all(|f| f.copies == 1 && f.delay == ms(200) && !f.corrupted));
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_spreads() {
        let p = NetemParams { latency: ms(100), jitter: ms(20), ..Default::default() };
        let fates = run(p, 10_000);
        assert!(fates.iter().all(|f| f.delay >= ms(80) && f.delay < ms(120)), "uniform in [80, 120)");
        let mean = fates.iter().map(|f| f.delay.as_secs_f64()).sum::<f64>() / fates.len() as f64;
        assert!((mean - 0.1).abs() < 0.002, "mean {mean}");
        assert!(fates.iter().any(|f| f.delay < ms(85)) && fates.iter().any(|f| f.delay > ms(115)));
        // A jitter larger than the latency never makes a negative delay.
        let p = NetemParams { latency: ms(5), jitter: ms(50), ..Default::default() };
        assert!(run(p, 1000).iter().any(|f| f.delay.is_zero()));
    }

    #[test]
    fn the_correlated_source_follows_its_previous_answer() {
        let step = |cor: f64| {
            let (mut c, mut rng) = (Correlated::new(cor), Rng::new(3));
            let v: Vec<f64> = (0..5000).map(|_| f64::from(c.next(&mut rng))).collect();
            v.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (v.len() - 1) as f64
        };
        let (free, tied) = (step(0.0), step(90.0));
        assert!(tied < free / 3.0, "mean step {tied} with 90% correlation vs {free} without");
    }

    #[test]
    fn correlated_jitter_stays_within_its_bounds() {
        // netem takes the correlated number modulo 2·jitter, which scrambles most of the
        // correlation for a uniform jitter (a known netem quirk, kept); the bounds hold.
        let p =
            NetemParams { latency: ms(100), jitter: ms(50), delay_correlation: 90.0, ..Default::default() };
        assert!(run(p, 5000).iter().all(|f| f.delay >= ms(50) && f.delay < ms(150)));
    }

    #[test]
    fn loss_ratio_follows_the_percentage() {
        for pct in [0.0, 10.0, 30.0, 100.0] {
            let fates = run(NetemParams { loss: pct, ..Default::default() }, 20_000);
            let lost = fates.iter().filter(|f| f.copies == 0).count() as f64 / fates.len() as f64;
            assert!((lost - pct / 100.0).abs() < 0.01, "{pct}%: lost {lost}");
        }
        // Correlated loss comes in bursts: longer runs of losses for the same ratio.
        let runs = |cor: f64| {
            let f = run(NetemParams { loss: 50.0, loss_correlation: cor, ..Default::default() }, 20_000);
            f.windows(2).filter(|w| (w[0].copies == 0) != (w[1].copies == 0)).count()
        };
        assert!(runs(80.0) < runs(0.0) / 2, "{} switches vs {}", runs(80.0), runs(0.0));
    }

    #[test]
    fn duplicate_and_corrupt_follow_their_percentages() {
        let fates = run(NetemParams { duplicate: 25.0, corrupt: 10.0, ..Default::default() }, 20_000);
        let dup = fates.iter().filter(|f| f.copies == 2).count() as f64 / 20_000.0;
        let bad = fates.iter().filter(|f| f.corrupted).count() as f64 / 20_000.0;
        assert!((dup - 0.25).abs() < 0.01 && (bad - 0.10).abs() < 0.01, "dup {dup} corrupt {bad}");
        // Duplicated and lost: one copy still leaves, as in netem_enqueue.
        let fates = run(NetemParams { duplicate: 100.0, loss: 100.0, ..Default::default() }, 10);
        assert!(fates.iter().all(|f| f.copies == 1));
    }

    #[test]
    fn same_seed_same_fates() {
        let p = NetemParams { loss: 50.0, latency: ms(10), jitter: ms(5), ..Default::default() };
        assert_eq!(run(p, 100), run(p, 100));
    }

    #[test]
    fn tbf_holds_a_transfer_to_its_rate() {
        // 1000 B/s with a 100 B bucket: 10 packets of 100 B sent at once; the last waits 0.9 s.
        let mut tbf = Tbf::new(1000, 100, Duration::ZERO);
        let waits: Vec<Duration> = (0..10).map(|_| tbf.wait(100, Duration::ZERO)).collect();
        assert_eq!(waits[0], Duration::ZERO, "the full bucket lets the first packet through");
        assert!((waits[9].as_secs_f64() - 0.9).abs() < 1e-9, "{:?}", waits[9]);
        // After a pause the bucket is full again, never more than its size.
        assert_eq!(tbf.wait(100, Duration::from_secs(60)), Duration::ZERO);
        assert!(tbf.wait(100, Duration::from_secs(60)) > Duration::ZERO);
    }

    #[test]
    fn rates_read_as_tc_reads_them() {
        assert_eq!(parse_rate("1mbps"), Ok(1_000_000));
        assert_eq!(parse_rate("8kbit"), Ok(1000));
        assert_eq!(parse_rate(" 100KBPS "), Ok(100_000));
        assert_eq!(parse_rate("800bit"), Ok(100));
        assert_eq!(parse_rate("10bps"), Ok(10));
        assert_eq!(parse_rate("1gbit"), Ok(125_000_000));
        for bad in ["", "10", "mbps", "1.5mbps", "-1kbps", "0bps", "10kb"] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
    }
}
