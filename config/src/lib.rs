//! What the configuration of every netlab component shares, so that each value is read one way:
//! Go's duration syntax, which Kubernetes flags (`--iptables-sync-period=30s`) and Corefiles
//! (`lameduck 5s`) use, and the defaults a component takes from the host it runs on when no flag
//! names them: its node name (the hostname, as kubelet and kube-proxy take it) and its address
//! (the one the route table picks, as kubelet and kube-apiserver do).
//!
//! # Layout
//! - [`duration`]: Go's `time.ParseDuration`.
//! - [`host`]: the hostname as a node name, and the local address a route leaves by.

pub mod duration;
pub mod host;

pub use duration::{DurationError, parse_duration};
