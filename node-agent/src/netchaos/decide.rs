//! What the rules a flow meets do to it, at the lab's connection level: a TCP handshake (SYN
//! out, SYN-ACK back, retransmitted as Linux retransmits them), a data segment of an established
//! connection, a UDP datagram. Pure: the rules' qdiscs give each packet's fate, these functions
//! turn fates into what the socket sees (a delay, a timeout) and list every decision so that the
//! caller can count it and mark the span.
//!
//! TCP recovers what netem breaks: a lost or corrupted segment (its checksum fails at the
//! receiver, which drops it) is sent again after a retransmission timeout, so to the
//! application both are extra delay; a duplicated segment is discarded by the receiver. UDP does
//! not: a lost or corrupted datagram never arrives (retrying is the resolver's job), a
//! duplicated one arrives twice.

use std::{sync::Arc, time::Duration};

use netlab_chaos::status::counter;

use super::index::Rule;

/// `TCP_TIMEOUT_INIT`: the first SYN retransmission.
pub const SYN_RTO: Duration = Duration::from_secs(1);
/// `tcp_syn_retries`: SYN retransmissions before connect fails with ETIMEDOUT.
pub const SYN_RETRIES: u32 = 6;
/// `TCP_RTO_MIN`: a data segment's retransmission timeout on a fast link.
pub const RTO_MIN: Duration = Duration::from_millis(200);
/// `TCP_RTO_MAX`.
pub const RTO_MAX: Duration = Duration::from_secs(120);
/// `tcp_retries2`: retransmissions of a data segment before the connection is dropped.
pub const DATA_RETRIES: u32 = 15;

/// One decision a rule made about one packet.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The rule (its fault, for marks and counters).
    pub rule: Arc<Rule>,
    /// What it did.
    pub what: What,
}

/// What a rule did to a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// Dropped (partition, loss).
    Dropped,
    /// Held back this long (netem delay, or tbf waiting for tokens).
    Delayed(Duration),
    /// Sent twice.
    Duplicated,
    /// A bit flipped.
    Corrupted,
}

/// One packet's way through every rule it meets.
#[derive(Debug, Clone, Default)]
pub struct Packet {
    /// Whether it arrives intact.
    pub arrives: bool,
    /// How many copies arrive (2: duplicated).
    pub copies: u8,
    /// How long it is held back in all.
    pub delay: Duration,
    /// Every decision.
    pub decisions: Vec<Decision>,
}

/// How a TCP handshake went.
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    /// When the connection was established, after the caller's connect; None: not within
    /// `timeout` (or after the last SYN retry): connect fails with ETIMEDOUT.
    pub established: Option<Duration>,
    /// Every decision.
    pub decisions: Vec<Decision>,
}

/// What becomes of a segment of an established connection.
#[derive(Debug, Clone, Default)]
pub struct Segment {
    /// How long it is late (its delays plus retransmission timeouts); None: it never got
    /// through and the connection is dropped (`tcp_retries2` exhausted).
    pub late: Option<Duration>,
    /// Every decision.
    pub decisions: Vec<Decision>,
}

// === impl What ===

impl What {
    /// The counter it bumps.
    pub fn counter(self) -> &'static str {
        match self {
            What::Dropped => counter::PACKETS_DROPPED,
            What::Delayed(_) => counter::PACKETS_DELAYED,
            What::Duplicated => counter::PACKETS_DUPLICATED,
            What::Corrupted => counter::PACKETS_CORRUPTED,
        }
    }

    /// How the span event words it (`fault.effect`).
    pub fn effect(self) -> String {
        match self {
            What::Dropped => "dropped".into(),
            What::Delayed(d) => format!("delayed {}ms", d.as_secs_f64() * 1000.0),
            What::Duplicated => "duplicated".into(),
            What::Corrupted => "corrupted".into(),
        }
    }
}

/// One packet of `bytes` at `now` through `rules`: any rule may drop it; delays add up, as
/// qdiscs in a chain do.
pub fn packet(rules: &[Arc<Rule>], bytes: usize, now: Duration) -> Packet {
    let mut p = Packet { arrives: true, copies: 1, ..Default::default() };
    for rule in rules {
        let (fate, wait) = rule.packet(bytes, now);
        let mut decide = |what| p.decisions.push(Decision { rule: rule.clone(), what });
        if fate.copies == 0 {
            decide(What::Dropped);
            p.arrives = false;
            continue;
        }
        if fate.copies > 1 {
            decide(What::Duplicated);
            p.copies = 2;
        }
        if fate.corrupted {
            decide(What::Corrupted);
            p.arrives = false;
        }
        let delay = fate.delay + wait;
        if !delay.is_zero() {
            decide(What::Delayed(delay));
            p.delay += delay;
        }
    }
    if !p.arrives {
        p.copies = 0;
    }
    p
}

/// A TCP connect: a SYN through `out` and its SYN-ACK through `back`, the SYN sent again after
/// 1 s, 2 s, 4 s, ... (`tcp_syn_retries` times) while either is lost, until `timeout`.
pub fn handshake(out: &[Arc<Rule>], back: &[Arc<Rule>], timeout: Duration, now: Duration) -> Handshake {
    let mut hs = Handshake::default();
    let (mut sent_at, mut rto) = (Duration::ZERO, SYN_RTO);
    for _ in 0..=SYN_RETRIES {
        let syn = packet(out, 0, now + sent_at);
        hs.decisions.extend(syn.decisions);
        if syn.arrives {
            let ack = packet(back, 0, now + sent_at + syn.delay);
            hs.decisions.extend(ack.decisions);
            let at = sent_at + syn.delay + ack.delay;
            if ack.arrives && at <= timeout {
                hs.established = Some(at);
                return hs;
            }
        }
        sent_at += rto;
        rto = (rto * 2).min(RTO_MAX);
        if sent_at >= timeout {
            break;
        }
    }
    hs
}

/// A data segment of `bytes` through `rules`, sent again after the retransmission timeout
/// (200 ms, doubling) while it is lost or corrupted.
pub fn segment(rules: &[Arc<Rule>], bytes: usize, now: Duration) -> Segment {
    let mut s = Segment::default();
    let (mut late, mut rto) = (Duration::ZERO, RTO_MIN);
    for _ in 0..=DATA_RETRIES {
        let p = packet(rules, bytes, now + late);
        s.decisions.extend(p.decisions);
        if p.arrives {
            s.late = Some(late + p.delay);
            return s;
        }
        late += rto;
        rto = (rto * 2).min(RTO_MAX);
    }
    s
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use netlab_chaos::{
        ChaosStatus, NetworkChaos, NetworkChaosSpec,
        network::{BandwidthSpec, CorruptSpec, DelaySpec, Direction, DuplicateSpec, LossSpec, NetworkAction},
        status::{Experiment, Record, phase},
    };

    use super::*;
    use crate::netchaos::index::{Index, SOURCE};

    const ME: &str = "10.244.1.5";
    const PEER: &str = "10.244.2.7";

    fn rules(spec: NetworkChaosSpec) -> Vec<Arc<Rule>> {
        let t0: Timestamp = "2026-12-07T10:00:00Z".parse().unwrap();
        let f = NetworkChaos {
            metadata: ObjectMeta {
                name: Some("f".into()),
                namespace: Some("default".into()),
                creation_timestamp: Some(Time(t0)),
                ..Default::default()
            },
            spec: NetworkChaosSpec { direction: Some(Direction::To), ..spec },
            status: Some(ChaosStatus {
                experiment: Experiment {
                    container_records: vec![Record {
                        id: "default/me".into(),
                        selector_key: SOURCE.into(),
                        phase: phase::INJECTED.into(),
                        pod_ip: ME.into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                ..Default::default()
            }),
        };
        let index = Index::build([&f], t0, 7);
        index.matching(ME.parse().unwrap(), &[PEER.parse().unwrap()])
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn loss(pct: &str) -> NetworkChaosSpec {
        NetworkChaosSpec {
            action: NetworkAction::Loss,
            loss: Some(LossSpec { loss: pct.into(), correlation: String::new() }),
            ..Default::default()
        }
    }

    fn delay(latency: &str) -> NetworkChaosSpec {
        NetworkChaosSpec {
            action: NetworkAction::Delay,
            delay: Some(DelaySpec { latency: latency.into(), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn a_partition_times_the_connect_out_after_every_syn_retry() {
        let out = rules(NetworkChaosSpec { action: NetworkAction::Partition, ..Default::default() });
        let hs = handshake(&out, &[], Duration::from_secs(130), Duration::ZERO);
        assert_eq!(hs.established, None);
        assert_eq!(hs.decisions.len(), 7, "the SYN and its 6 retransmissions");
        assert!(hs.decisions.iter().all(|d| d.what == What::Dropped && d.what.counter() == "packetsDropped"));
        // A short connect timeout stops the retries early: SYNs at 0 s and 1 s within 2 s.
        assert_eq!(handshake(&out, &[], Duration::from_secs(2), Duration::ZERO).decisions.len(), 2);
        // Lost on the way back does the same.
        assert_eq!(handshake(&[], &out, Duration::from_secs(130), Duration::ZERO).established, None);
    }

    #[test]
    fn delay_adds_to_the_connect_once_per_direction() {
        let out = rules(delay("200ms"));
        let hs = handshake(&out, &[], Duration::from_secs(5), Duration::ZERO);
        assert_eq!(hs.established, Some(ms(200)));
        assert_eq!(hs.decisions[0].what, What::Delayed(ms(200)));
        assert_eq!(hs.decisions[0].what.effect(), "delayed 200ms");
        let back = rules(delay("100ms"));
        assert_eq!(handshake(&out, &back, Duration::from_secs(5), Duration::ZERO).established, Some(ms(300)));
        // A delay longer than the timeout: not established in time.
        assert_eq!(handshake(&out, &[], ms(150), Duration::ZERO).established, None);
    }

    #[test]
    fn a_lost_syn_is_sent_again_after_a_second() {
        // 50% loss with a seeded generator: some connects take 1 s, 3 s, ... longer, all at a
        // retransmission time, and most get through.
        let out = rules(loss("50"));
        let mut late = 0;
        for _ in 0..200 {
            // All seven SYNs lost: 1 in 128.
            let Some(at) = handshake(&out, &[], Duration::from_secs(130), Duration::ZERO).established else {
                continue;
            };
            assert!([0, 1, 3, 7, 15, 31, 63].contains(&at.as_secs()), "{at:?}");
            late += usize::from(!at.is_zero());
        }
        assert!((70..130).contains(&late), "{late} of 200 needed a retransmission");
    }

    #[test]
    fn lost_or_corrupted_segments_cost_a_retransmission_timeout() {
        let all_lost = rules(loss("100"));
        let s = segment(&all_lost, 1000, Duration::ZERO);
        assert_eq!(s.late, None, "tcp_retries2 exhausted");
        assert_eq!(s.decisions.len(), 16);
        let corrupt = rules(NetworkChaosSpec {
            action: NetworkAction::Corrupt,
            corrupt: Some(CorruptSpec { corrupt: "100".into(), correlation: String::new() }),
            ..Default::default()
        });
        assert_eq!(segment(&corrupt, 10, Duration::ZERO).late, None);
        let some = rules(loss("30"));
        let lates: Vec<Duration> =
            (0..300).map(|_| segment(&some, 10, Duration::ZERO).late.unwrap()).collect();
        assert!(
            lates.iter().all(|l| [0, 200, 600, 1400, 3000, 6200, 12600].contains(&l.as_millis())),
            "{lates:?}"
        );
        assert!(lates.iter().any(|l| l.is_zero()) && lates.iter().any(|l| *l == ms(200)));
    }

    #[test]
    fn duplicates_reach_udp_twice_and_cost_tcp_nothing() {
        let dup = rules(NetworkChaosSpec {
            action: NetworkAction::Duplicate,
            duplicate: Some(DuplicateSpec { duplicate: "100".into(), correlation: String::new() }),
            ..Default::default()
        });
        let p = packet(&dup, 40, Duration::ZERO);
        assert!(p.arrives && p.copies == 2);
        assert_eq!(p.decisions[0].what, What::Duplicated);
        assert_eq!(segment(&dup, 40, Duration::ZERO).late, Some(Duration::ZERO));
    }

    #[test]
    fn bandwidth_holds_a_transfer_to_the_rate() {
        let slow = rules(NetworkChaosSpec {
            action: NetworkAction::Bandwidth,
            bandwidth: Some(BandwidthSpec { rate: "10kbps".into(), limit: 20_000, buffer: 1000 }),
            ..Default::default()
        });
        // 21 segments of 1000 B at once through 10 kB/s with a 1000 B bucket: the last is 2 s late.
        let lates: Vec<Duration> =
            (0..21).map(|_| segment(&slow, 1000, Duration::ZERO).late.unwrap()).collect();
        let last = lates[20];
        assert!((last.as_secs_f64() - 2.0).abs() < 1e-6, "{last:?}");
    }

    #[test]
    fn rules_in_a_chain_add_up() {
        let mut chain = rules(delay("100ms"));
        chain.extend(rules(delay("50ms")));
        let p = packet(&chain, 0, Duration::ZERO);
        assert_eq!(p.delay, ms(150));
        assert_eq!(p.decisions.len(), 2);
        chain.extend(rules(NetworkChaosSpec { action: NetworkAction::Partition, ..Default::default() }));
        assert!(!packet(&chain, 0, Duration::ZERO).arrives);
    }
}
