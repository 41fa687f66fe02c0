//! The data of an established connection through the faults it meets: each direction is a delay
//! line, so that a 200 ms delay holds every segment 200 ms without holding the next one up (the
//! link keeps its throughput, as netem's does), segments keep their order (TCP delivers in
//! order whatever netem reorders), a lost segment arrives a retransmission timeout late and a
//! rate limit spaces segments by their size.
//!
//! Each segment is judged against the rules in force when it is sent, so deleting a fault
//! restores a connection that is already open. A connection that met no rule when it was opened
//! is not shaped (the fault-free path stays a plain stream); a fault put in force while it is
//! open does not reach it, which is the lab's one difference from netem.

use std::{net::IpAddr, sync::Arc};

use bytes::Bytes;
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, DuplexStream},
    sync::mpsc,
    time::Instant,
};

use super::{decide, faults::Faults};
use crate::podnet::Stream;

/// Bytes per segment.
const SEGMENT: usize = 16 * 1024;
/// Segments in flight per direction.
const IN_FLIGHT: usize = 64;

/// One direction of a connection: packets from `src` to `dst`.
#[derive(Clone)]
pub struct Way {
    /// The faults in force.
    pub faults: Arc<Faults>,
    /// Every address the sender is known by.
    pub src: Vec<IpAddr>,
    /// Every address the receiver is known by.
    pub dst: Vec<IpAddr>,
    /// The span the first decision marks (the caller's, e.g. the exec that runs curl).
    pub span: tracing::Span,
}

/// The client's end of `inner` with `out` applied to what the client writes and `back` to what
/// it reads.
pub fn shape(inner: Box<dyn Stream>, out: Way, back: Way) -> DuplexStream {
    let (client, ours) = tokio::io::duplex(crate::sockets::STREAM_BUFFER);
    tokio::spawn(async move {
        let (our_rd, our_wr) = tokio::io::split(ours);
        let (in_rd, in_wr) = tokio::io::split(inner);
        tokio::join!(line(our_rd, in_wr, out), line(in_rd, our_wr, back));
    });
    client
}

/// Moves bytes from `rd` to `wr`, each segment due when the faults say.
async fn line(mut rd: impl AsyncRead + Unpin, mut wr: impl AsyncWrite + Unpin, way: Way) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Bytes)>(IN_FLIGHT);
    let reader = async move {
        let mut buf = vec![0u8; SEGMENT];
        let mut last = Instant::now();
        let mut marked = false;
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let rules = way.faults.matching(&way.src, &way.dst);
            let late = if rules.is_empty() {
                Some(std::time::Duration::ZERO)
            } else {
                let s = decide::segment(&rules, n, way.faults.now());
                // Every segment counts; the span is marked once, not per segment.
                let span = (!marked && !s.decisions.is_empty()).then_some(&way.span);
                marked |= span.is_some();
                way.faults.record(&s.decisions, span);
                s.late
            };
            // Retransmitted until tcp_retries2 gave up: the connection is dropped.
            let Some(late) = late else { break };
            last = last.max(Instant::now() + late);
            if tx.send((last, Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                break;
            }
        }
    };
    let writer = async {
        while let Some((due, data)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if wr.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jiff::Timestamp;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use netlab_chaos::{
        ChaosStatus, NetworkChaos, NetworkChaosSpec,
        network::{DelaySpec, Direction, NetworkAction},
        status::{Experiment, Record, phase},
    };

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::netchaos::index::{Index, SOURCE};

    const ME: &str = "10.244.1.5";
    const PEER: &str = "10.244.2.7";

    fn delayed(ms: u64) -> Arc<Faults> {
        let now = Timestamp::now();
        let f = NetworkChaos {
            metadata: ObjectMeta {
                name: Some("slow".into()),
                namespace: Some("default".into()),
                creation_timestamp: Some(Time(now)),
                ..Default::default()
            },
            spec: NetworkChaosSpec {
                action: NetworkAction::Delay,
                direction: Some(Direction::To),
                delay: Some(DelaySpec { latency: format!("{ms}ms"), ..Default::default() }),
                ..Default::default()
            },
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
        let faults = Faults::new("node-1");
        faults.set_network(Index::build([&f], now, 1));
        faults
    }

    fn ways(faults: &Arc<Faults>) -> (Way, Way) {
        let (me, peer): (IpAddr, IpAddr) = (ME.parse().unwrap(), PEER.parse().unwrap());
        let span = tracing::Span::none();
        (
            Way { faults: faults.clone(), src: vec![me], dst: vec![peer], span: span.clone() },
            Way { faults: faults.clone(), src: vec![peer], dst: vec![me], span },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_delay_holds_each_segment_without_holding_the_next_one_up() {
        let faults = delayed(200);
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let (out, back) = ways(&faults);
        let mut shaped = shape(Box::new(client), out, back);
        let start = Instant::now();
        for _ in 0..10 {
            shaped.write_all(b"ping").await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut got = vec![0u8; 40];
        server.read_exact(&mut got).await.unwrap();
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(290) && took < Duration::from_millis(320), "{took:?}");
        assert_eq!(&got[..8], b"pingping");
        // The way back meets no rule: the answer is not held.
        let t = Instant::now();
        server.write_all(b"pong").await.unwrap();
        let mut four = [0u8; 4];
        shaped.read_exact(&mut four).await.unwrap();
        assert!(t.elapsed() < Duration::from_millis(5));
        let counted = faults.reporter().pending();
        assert_eq!(counted.values().next().unwrap()["packetsDelayed"], 10);
    }

    #[tokio::test(start_paused = true)]
    async fn deleting_the_fault_restores_an_open_connection() {
        let faults = delayed(200);
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let (out, back) = ways(&faults);
        let mut shaped = shape(Box::new(client), out, back);
        faults.set_network(Index::default());
        let t = Instant::now();
        shaped.write_all(b"ping").await.unwrap();
        let mut four = [0u8; 4];
        server.read_exact(&mut four).await.unwrap();
        assert!(t.elapsed() < Duration::from_millis(5));
        // Closing one end closes the other.
        drop(shaped);
        assert_eq!(server.read(&mut four).await.unwrap(), 0);
    }
}
