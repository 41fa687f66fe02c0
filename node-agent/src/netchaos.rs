//! Network faults as the node's kernel enforces them: Chaos Mesh's NetworkChaos (partition,
//! delay with jitter and correlation, loss, duplicate, corrupt, bandwidth, per direction) and the
//! lab's ExhaustionChaos `conntrack` (the table behaves as full).
//!
//! In a real cluster Chaos Mesh puts netem and tbf qdiscs and iptables DROP rules into the pods'
//! network namespaces. Here pods have no interfaces, so the node's kernel model consults the
//! faults for each new connection and datagram, and for each segment of a shaped connection.
//! The node that opens a flow decides for both of its directions (its packets out and the
//! answers back), from the same objects every node watches; so a partition either way makes a
//! TCP connect time out, whichever node the peer is on. Delays are real time, as the toolbox's
//! own timeouts are: a 200 ms delay is 200 ms whatever `--time-scale` says.
//!
//! - [`index`]: the faults in force, compiled into rules per direction and indexed by pod IP.
//! - [`decide`]: what rules do to a handshake, a segment, a datagram (pure).
//! - [`faults`]: the node's faults as the dataplane reads them; counters and span marks.
//! - [`shaper`]: an established connection's data through the rules.
//! - [`watch`]: the list-watch that keeps them current.

pub mod decide;
pub mod faults;
pub mod index;
pub mod shaper;
pub mod watch;

pub use faults::{Faults, Flow};
