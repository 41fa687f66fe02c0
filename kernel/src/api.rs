//! The node kernel API's enums (`netlab.node.v1`) and the model's, converted in one place: the
//! API's server (the node-agent) and its clients (kube-proxy, its fake, the benches) all speak it,
//! and each would otherwise write the same matches. Unset or unknown values convert to `None`;
//! what a missing value means is the caller's to say.

use netlab_proto::node::v1 as pb;

use crate::{
    Protocol,
    netns::{Format, Table},
};

impl From<Protocol> for pb::Protocol {
    fn from(p: Protocol) -> Self {
        match p {
            Protocol::Tcp => pb::Protocol::Tcp,
            Protocol::Udp => pb::Protocol::Udp,
            Protocol::Sctp => pb::Protocol::Sctp,
        }
    }
}

impl From<Format> for pb::Format {
    fn from(f: Format) -> Self {
        match f {
            Format::Iptables => pb::Format::Iptables,
            Format::Ipvs => pb::Format::Ipvs,
        }
    }
}

/// What the kernel API answers a `RestoreRequest` without a format.
pub const FORMAT_REQUIRED: &str = "format must be IPTABLES or IPVS";

/// The protocol in a message's `protocol` field.
pub fn protocol(value: i32) -> Option<Protocol> {
    match pb::Protocol::try_from(value).ok()? {
        pb::Protocol::Tcp => Some(Protocol::Tcp),
        pb::Protocol::Udp => Some(Protocol::Udp),
        pb::Protocol::Sctp => Some(Protocol::Sctp),
        pb::Protocol::Unspecified => None,
    }
}

/// The restore format in a `RestoreRequest`'s `format` field.
pub fn format(value: i32) -> Option<Format> {
    match pb::Format::try_from(value).ok()? {
        pb::Format::Iptables => Some(Format::Iptables),
        pb::Format::Ipvs => Some(Format::Ipvs),
        pb::Format::Unspecified => None,
    }
}

/// The table in a `SaveRequest`'s `table` field.
pub fn table(value: i32) -> Option<Table> {
    match pb::Table::try_from(value).ok()? {
        pb::Table::IptablesSave => Some(Table::IptablesSave),
        pb::Table::Ipvsadm => Some(Table::Ipvsadm),
        pb::Table::Conntrack => Some(Table::Conntrack),
        pb::Table::Routes => Some(Table::Routes),
        // ipamd's, not the kernel's: the node-agent answers it.
        pb::Table::Enis | pb::Table::Unspecified => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_and_unset_is_none() {
        for p in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
            assert_eq!(protocol(pb::Protocol::from(p) as i32), Some(p));
        }
        for f in [Format::Iptables, Format::Ipvs] {
            assert_eq!(format(pb::Format::from(f) as i32), Some(f));
        }
        assert_eq!(table(pb::Table::Conntrack as i32), Some(Table::Conntrack));
        assert_eq!(protocol(0), None);
        assert_eq!(format(0), None);
        assert_eq!(table(0), None);
        assert_eq!(protocol(99), None);
    }
}
