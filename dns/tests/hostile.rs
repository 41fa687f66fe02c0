//! Hostile input against the real server (its UDP receivers and hickory's TCP loop on a real
//! port): random, truncated and malformed packets, compression-pointer loops, ten thousand
//! questions in one message, huge EDNS sizes, responses sent as queries, and TCP clients that
//! stall or lie about their length prefix. Each gets FORMERR or is dropped as RFC 1035/6891 and
//! CoreDNS do; none crashes the server, and a well-formed query from another client is answered
//! right after each.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream, UdpSocket},
    sync::Arc,
    time::{Duration, Instant},
};

use hickory_proto::{
    op::{Edns, Message, Query, ResponseCode},
    rr::{Name, RecordType},
};
use netlab_dns::{Shared, blocks::Settings, corefile::Corefile};

/// A server on a free port, serving `cluster.local` as kubeadm's Corefile does.
fn start(rt: &tokio::runtime::Runtime) -> SocketAddr {
    let settings =
        Settings { resolv_override: vec![], local_ips: vec!["127.0.0.1".parse().unwrap()], port: 53 };
    let shared: Arc<Shared> = Shared::new(settings);
    let corefile = Corefile::parse(".:53 {\n errors\n kubernetes cluster.local in-addr.arpa\n}\n").unwrap();
    shared.set_blocks(netlab_dns::blocks::Blocks::compile(corefile, &shared.settings, &shared.metrics));
    shared.update(|s| s.set_synced(true));
    let token = tokio_util::sync::CancellationToken::new();
    let addr = rt.block_on(netlab_dns::server::serve(shared, "127.0.0.1:0".parse().unwrap(), token)).unwrap();
    // The token is dropped uncancelled: the server lives as long as the runtime.
    addr
}

fn query(id: u16, name: &str, qtype: RecordType) -> Message {
    let mut msg = Message::query();
    msg.metadata.id = id;
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    msg
}

/// Sends `bytes` over UDP and waits up to `wait` for one reply.
fn udp(server: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(wait)).unwrap();
    socket.send_to(bytes, server).unwrap();
    let mut buf = vec![0; 65_535];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// A well-formed query from another client is answered (NXDOMAIN for a Service that does not
/// exist, with its id), so whatever came before left the server serving. It is tried three
/// times, as a pod's resolver retries: right after a flood, the kernel may have dropped it from the
/// socket's full receive buffer, as it would in front of CoreDNS.
fn still_serves(server: SocketAddr, id: u16) {
    let bytes = query(id, "nope.default.svc.cluster.local.", RecordType::A).to_vec().unwrap();
    let reply = (0..3)
        .find_map(|_| udp(server, &bytes, Duration::from_secs(2)))
        .expect("no answer to a good query in three tries");
    let reply = Message::from_vec(&reply).unwrap();
    assert_eq!((reply.metadata.id, reply.metadata.response_code), (id, ResponseCode::NXDomain));
}

fn rcode(reply: &[u8]) -> u8 {
    reply[3] & 0x0f
}

/// xorshift64*: the same packets on every run, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn random_and_mutated_datagrams_never_stop_the_server() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = start(&rt);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let good = query(7, "kubernetes.default.svc.cluster.local.", RecordType::A).to_vec().unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = 0;
    while sent < 20_000 && Instant::now() < deadline {
        let packet: Vec<u8> = if sent % 2 == 0 {
            // Pure noise, 0..600 bytes.
            let len = (rng.next() % 600) as usize;
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            // A real query with a few bytes flipped or cut: what a parser meets in practice.
            let mut p = good.clone();
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() as usize) % p.len();
                p[i] ^= rng.next() as u8;
            }
            p.truncate((rng.next() as usize) % (p.len() + 1));
            p
        };
        sender.send_to(&packet, server).unwrap();
        sent += 1;
        if sent % 2_000 == 0 {
            still_serves(server, sent as u16);
        }
    }
    assert!(sent >= 2_000, "only {sent} packets in the time allowed");
    still_serves(server, 1);
}

#[test]
fn malformed_messages_get_formerr_or_silence() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = start(&rt);
    let wait = Duration::from_millis(500);

    // A header that promises a question and stops: FORMERR, with the query's id.
    let truncated = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    let reply = udp(server, &truncated, wait).expect("FORMERR");
    assert_eq!((&reply[..2], rcode(&reply)), (&[0x12, 0x34][..], 1));

    // A name that is a compression pointer to itself (offset 12): a parser that follows it
    // loops forever. FORMERR.
    let mut looped = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    looped.extend_from_slice(&[0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01]);
    let reply = udp(server, &looped, wait).expect("FORMERR");
    assert_eq!(rcode(&reply), 1);

    // Two pointers pointing at each other.
    let mut ping_pong = vec![0xab, 0xce, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    ping_pong.extend_from_slice(&[0xc0, 0x0e, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01]);
    let reply = udp(server, &ping_pong, wait).expect("FORMERR");
    assert_eq!(rcode(&reply), 1);

    // Ten thousand questions in one message (as many as fit a datagram, the count saying
    // 10,000): CoreDNS answers only one-question queries. FORMERR, and quickly.
    let mut many = vec![0x0b, 0xad, 0x01, 0x00];
    many.extend_from_slice(&10_000u16.to_be_bytes());
    many.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    while many.len() + 7 < 65_000 {
        many.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1]);
    }
    let started = Instant::now();
    let reply = udp(server, &many, Duration::from_secs(2)).expect("FORMERR");
    assert_eq!((&reply[..2], rcode(&reply)), (&[0x0b, 0xad][..], 1));
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());

    // An EDNS buffer of 65,535 bytes is taken at its word but the answer stays a normal one.
    let mut big = query(0x0e0e, "kubernetes.default.svc.cluster.local.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(u16::MAX);
    big.set_edns(edns);
    let reply = udp(server, &big.to_vec().unwrap(), wait).expect("an answer");
    let reply = Message::from_vec(&reply).unwrap();
    assert_eq!(reply.metadata.id, 0x0e0e);
    assert!(reply.edns.is_some());

    // A response sent as a query (QR set) is dropped: answering it would let anyone bounce
    // traffic off the server.
    let mut response = query(0x5151, "kubernetes.default.svc.cluster.local.", RecordType::A);
    response.metadata.message_type = hickory_proto::op::MessageType::Response;
    assert!(udp(server, &response.to_vec().unwrap(), wait).is_none());
    // So is anything shorter than a header.
    assert!(udp(server, &[0x01, 0x02, 0x03], wait).is_none());

    still_serves(server, 99);
}

/// One DNS-over-TCP exchange (RFC 1035 §4.2.2 length prefix).
fn tcp_query(server: SocketAddr, id: u16) -> Message {
    let mut conn = TcpStream::connect(server).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let bytes = query(id, "nope.default.svc.cluster.local.", RecordType::A).to_vec().unwrap();
    conn.write_all(&(bytes.len() as u16).to_be_bytes()).unwrap();
    conn.write_all(&bytes).unwrap();
    let mut len = [0; 2];
    conn.read_exact(&mut len).unwrap();
    let mut reply = vec![0; u16::from_be_bytes(len) as usize];
    conn.read_exact(&mut reply).unwrap();
    Message::from_vec(&reply).unwrap()
}

#[test]
fn tcp_clients_that_stall_or_lie_do_not_hold_up_others() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = start(&rt);

    // Fifty connections that send half a length prefix and then nothing, held open.
    let stalled: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut c = TcpStream::connect(server).unwrap();
            c.write_all(&[0x00]).unwrap();
            c
        })
        .collect();
    // A prefix that promises 65,535 bytes and delivers ten, then closes.
    let mut liar = TcpStream::connect(server).unwrap();
    liar.write_all(&[0xff, 0xff]).unwrap();
    liar.write_all(&[0u8; 10]).unwrap();
    drop(liar);
    // A zero-length message.
    let mut empty = TcpStream::connect(server).unwrap();
    empty.write_all(&[0x00, 0x00]).unwrap();
    // Garbage of the promised length.
    let mut garbage = TcpStream::connect(server).unwrap();
    garbage.write_all(&[0x00, 0x20]).unwrap();
    garbage.write_all(&[0xee; 32]).unwrap();

    // Meanwhile another client is answered, over TCP and over UDP, promptly.
    let started = Instant::now();
    let reply = tcp_query(server, 4321);
    assert_eq!((reply.metadata.id, reply.metadata.response_code), (4321, ResponseCode::NXDomain));
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    still_serves(server, 4322);
    drop(stalled);
    drop((empty, garbage));
    let reply = tcp_query(server, 4323);
    assert_eq!(reply.metadata.id, 4323);
}
