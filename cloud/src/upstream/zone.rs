//! The outside world's DNS data and the lookup rules an authoritative server applies to it,
//! free of any DNS library so the rules are tested without sockets: exact names answer,
//! in-zone CNAMEs are followed, a name that exists without the asked type (or only has names
//! below it: an empty non-terminal, RFC 8020) is NODATA, anything else NXDOMAIN, and negative
//! answers carry the zone's SOA with the negative TTL of RFC 2308.
//!
//! The world: `example.com` (as the real zone looked in 2024), the AWS endpoint names the lab's
//! EKS mode needs and the public registries' hosts, all pointing at `cloud`'s advertised
//! address, and a root zone that makes every other name NXDOMAIN as a recursive resolver would
//! report it (with the root's SOA and without AA).

use std::net::{Ipv4Addr, Ipv6Addr};

/// A query or record type this world knows; others get NODATA (or NXDOMAIN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Alias.
    Cname,
    /// Mail exchanger.
    Mx,
    /// Text.
    Txt,
    /// Name server.
    Ns,
    /// Start of authority.
    Soa,
    /// `ANY` (all records of the name).
    Any,
    /// Any other type, by number.
    Other(u16),
}

/// Start-of-authority data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Soa {
    /// Primary name server.
    pub mname: &'static str,
    /// Responsible mailbox, as a name.
    pub rname: &'static str,
    /// Serial.
    pub serial: u32,
    /// Refresh, seconds.
    pub refresh: i32,
    /// Retry, seconds.
    pub retry: i32,
    /// Expire, seconds.
    pub expire: i32,
    /// Negative-caching TTL (RFC 2308).
    pub minimum: u32,
}

/// Record data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// IPv4 address.
    A(Ipv4Addr),
    /// IPv6 address.
    Aaaa(Ipv6Addr),
    /// Alias target, absolute.
    Cname(&'static str),
    /// Mail exchanger; `.` with preference 0 is RFC 7505's "no mail".
    Mx(u16, &'static str),
    /// One character-string.
    Txt(&'static str),
    /// Name server, absolute.
    Ns(&'static str),
    /// Start of authority.
    Soa(Soa),
}

/// A resource record (class IN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Owner name: lowercase, absolute (trailing dot).
    pub name: String,
    /// Time to live, seconds.
    pub ttl: u32,
    /// The data.
    pub data: Data,
}

/// The response code of a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    /// The name exists (answers may still be empty: NODATA).
    NoError,
    /// The name does not exist.
    NxDomain,
}

/// What the server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// NOERROR or NXDOMAIN.
    pub rcode: Rcode,
    /// AA: set for names in the world's own zones, not for the root's (a resolver relays those).
    pub authoritative: bool,
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section: the SOA for negative answers.
    pub authority: Vec<Record>,
}

/// One zone and its records.
#[derive(Debug, Clone)]
struct Zone {
    /// Apex, lowercase and absolute.
    origin: &'static str,
    /// Whether answers from it carry AA.
    authoritative: bool,
    /// The records, the SOA and NS at the apex included.
    records: Vec<Record>,
}

/// Every zone the upstream resolver answers from.
#[derive(Debug, Clone)]
pub struct World {
    zones: Vec<Zone>,
}

/// How many CNAMEs a lookup follows before giving up (loops are a data bug).
const MAX_CNAME_CHAIN: usize = 8;

/// The AWS endpoint names (us-east-1, account 123456789012) that resolve to `cloud`.
pub const AWS_ENDPOINTS: &[&str] = &[
    "ec2.us-east-1.amazonaws.com.",
    "sts.us-east-1.amazonaws.com.",
    "sts.amazonaws.com.",
    "iam.amazonaws.com.",
    "api.ecr.us-east-1.amazonaws.com.",
    "ecr.us-east-1.amazonaws.com.",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com.",
];

// === impl World ===

impl World {
    /// The lab's outside world, with AWS endpoints and registry hosts at `advertise`.
    pub fn new(advertise: Ipv4Addr) -> Self {
        let rr = |name: &str, ttl: u32, data: Data| Record { name: name.to_string(), ttl, data };
        let root = Zone {
            origin: ".",
            authoritative: false,
            records: vec![
                rr(
                    ".",
                    86400,
                    Data::Soa(Soa {
                        mname: "a.root-servers.net.",
                        rname: "nstld.verisign-grs.com.",
                        serial: 2024010100,
                        refresh: 1800,
                        retry: 900,
                        expire: 604800,
                        minimum: 86400,
                    }),
                ),
                rr(".", 518400, Data::Ns("a.root-servers.net.")),
            ],
        };
        let example = Zone {
            origin: "example.com.",
            authoritative: true,
            records: vec![
                rr(
                    "example.com.",
                    3600,
                    Data::Soa(Soa {
                        mname: "ns.icann.org.",
                        rname: "noc.dns.icann.org.",
                        serial: 2024081466,
                        refresh: 7200,
                        retry: 3600,
                        expire: 1209600,
                        minimum: 3600,
                    }),
                ),
                rr("example.com.", 86400, Data::Ns("a.iana-servers.net.")),
                rr("example.com.", 86400, Data::Ns("b.iana-servers.net.")),
                rr("example.com.", 300, Data::A(Ipv4Addr::new(93, 184, 215, 14))),
                rr(
                    "example.com.",
                    300,
                    Data::Aaaa(Ipv6Addr::new(0x2606, 0x2800, 0x21f, 0xcb07, 0x6820, 0x80da, 0xaf6b, 0x8b2c)),
                ),
                rr("example.com.", 300, Data::Mx(0, ".")),
                rr("example.com.", 300, Data::Txt("v=spf1 -all")),
                rr("api.example.com.", 300, Data::A(Ipv4Addr::new(93, 184, 215, 34))),
                rr("www.example.com.", 300, Data::Cname("example.com.")),
            ],
        };
        let mut aws = vec![
            rr(
                "amazonaws.com.",
                900,
                Data::Soa(Soa {
                    mname: "dns-external-master.amazon.com.",
                    rname: "root.amazon.com.",
                    serial: 2024010100,
                    refresh: 3600,
                    retry: 900,
                    expire: 7776000,
                    minimum: 60,
                }),
            ),
            rr("amazonaws.com.", 172800, Data::Ns("pdns1.ultradns.net.")),
            rr("amazonaws.com.", 172800, Data::Ns("pdns3.ultradns.org.")),
        ];
        aws.extend(AWS_ENDPOINTS.iter().map(|name| rr(name, 60, Data::A(advertise))));
        let amazonaws = Zone { origin: "amazonaws.com.", authoritative: true, records: aws };
        let registry_zone = |origin: &'static str, host: &str, mname: &'static str| Zone {
            origin,
            authoritative: true,
            records: vec![
                rr(
                    origin,
                    900,
                    Data::Soa(Soa {
                        mname,
                        rname: "hostmaster.netlab.invalid.",
                        serial: 2024010100,
                        refresh: 7200,
                        retry: 900,
                        expire: 1209600,
                        minimum: 300,
                    }),
                ),
                rr(origin, 172800, Data::Ns(mname)),
                rr(host, 300, Data::A(advertise)),
            ],
        };
        Self {
            zones: vec![
                root,
                example,
                amazonaws,
                registry_zone("docker.io.", "registry-1.docker.io.", "ns-421.awsdns-52.com."),
                registry_zone("k8s.io.", "registry.k8s.io.", "ns-cloud-d1.googledomains.com."),
            ],
        }
    }

    /// Answers `qname` (any case, with or without the trailing dot) for `kind`.
    pub fn lookup(&self, qname: &str, kind: Kind) -> Answer {
        let mut name = qname.to_ascii_lowercase();
        if !name.ends_with('.') {
            name.push('.');
        }
        let zone = self.zone_of(&name);
        let mut answer = Answer {
            rcode: Rcode::NoError,
            authoritative: zone.authoritative,
            answers: vec![],
            authority: vec![],
        };
        for _ in 0..MAX_CNAME_CHAIN {
            let zone = self.zone_of(&name);
            let at: Vec<&Record> = zone.records.iter().filter(|r| r.name == name).collect();
            let matching: Vec<Record> =
                at.iter().filter(|r| kind.matches(&r.data)).map(|r| (*r).clone()).collect();
            if !matching.is_empty() {
                answer.answers.extend(matching);
                return answer;
            }
            let cname = at.iter().find_map(|r| match r.data {
                Data::Cname(target) => Some((*r, target)),
                _ => None,
            });
            if let Some((record, target)) = cname {
                answer.answers.push(record.clone());
                name = target.to_string();
                continue;
            }
            if at.is_empty() && !self.has_descendant(&name) {
                answer.rcode = Rcode::NxDomain;
            }
            answer.authority.push(zone.negative_soa());
            return answer;
        }
        answer
    }

    /// The most specific zone containing `name` (the root at worst).
    fn zone_of(&self, name: &str) -> &Zone {
        self.zones
            .iter()
            .filter(|z| in_zone(name, z.origin))
            .max_by_key(|z| z.origin.len())
            .unwrap_or(&self.zones[0])
    }

    /// Whether some existing name lies below `name` (an empty non-terminal such as `com.` or
    /// `dkr.ecr.us-east-1.amazonaws.com.`).
    fn has_descendant(&self, name: &str) -> bool {
        self.zones.iter().flat_map(|z| z.records.iter()).any(|r| r.name != name && in_zone(&r.name, name))
    }
}

/// Whether `name` equals `origin` or lies below it, label-wise.
fn in_zone(name: &str, origin: &str) -> bool {
    origin == "." || name == origin || name.strip_suffix(origin).is_some_and(|p| p.ends_with('.'))
}

// === impl Zone ===

impl Zone {
    /// The SOA for a negative answer, its TTL the smaller of its own and its minimum.
    fn negative_soa(&self) -> Record {
        self.records
            .iter()
            .find_map(|r| match &r.data {
                Data::Soa(soa) if r.name == self.origin => {
                    Some(Record { name: r.name.clone(), ttl: r.ttl.min(soa.minimum), data: r.data.clone() })
                }
                _ => None,
            })
            // Every zone is built with an SOA at its apex (checked by the unit tests).
            .unwrap_or_else(|| Record { name: self.origin.into(), ttl: 0, data: Data::Txt("") })
    }
}

// === impl Kind ===

impl Kind {
    /// Whether a record with `data` answers a query of this kind.
    pub fn matches(self, data: &Data) -> bool {
        matches!(
            (self, data),
            (Kind::Any, _)
                | (Kind::A, Data::A(_))
                | (Kind::Aaaa, Data::Aaaa(_))
                | (Kind::Cname, Data::Cname(_))
                | (Kind::Mx, Data::Mx(..))
                | (Kind::Txt, Data::Txt(_))
                | (Kind::Ns, Data::Ns(_))
                | (Kind::Soa, Data::Soa(_))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOUD: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 7);

    fn world() -> World {
        World::new(CLOUD)
    }

    fn soa_owner(a: &Answer) -> &str {
        match a.authority.as_slice() {
            [Record { name, data: Data::Soa(_), .. }] => name,
            other => panic!("expected one SOA in authority, got {other:?}"),
        }
    }

    #[test]
    fn example_com_records() {
        let w = world();
        let a = w.lookup("example.com", Kind::A);
        assert_eq!((a.rcode, a.authoritative), (Rcode::NoError, true));
        assert_eq!(
            a.answers,
            vec![Record {
                name: "example.com.".into(),
                ttl: 300,
                data: Data::A(Ipv4Addr::new(93, 184, 215, 14))
            }]
        );
        assert!(a.authority.is_empty());
        assert!(matches!(w.lookup("example.com.", Kind::Aaaa).answers[0].data, Data::Aaaa(_)));
        assert_eq!(w.lookup("example.com.", Kind::Mx).answers[0].data, Data::Mx(0, "."));
        assert_eq!(w.lookup("example.com.", Kind::Txt).answers[0].data, Data::Txt("v=spf1 -all"));
        assert_eq!(w.lookup("example.com.", Kind::Ns).answers.len(), 2);
        assert!(matches!(w.lookup("example.com.", Kind::Soa).answers[0].data, Data::Soa(_)));
        assert_eq!(
            w.lookup("API.Example.COM.", Kind::A).answers[0].data,
            Data::A(Ipv4Addr::new(93, 184, 215, 34))
        );
    }

    #[test]
    fn cname_is_followed_inside_the_world() {
        let a = world().lookup("www.example.com.", Kind::A);
        assert_eq!(a.rcode, Rcode::NoError);
        assert_eq!(
            a.answers[0],
            Record { name: "www.example.com.".into(), ttl: 300, data: Data::Cname("example.com.") }
        );
        assert_eq!(a.answers[1].data, Data::A(Ipv4Addr::new(93, 184, 215, 14)));
        // Asking for the CNAME itself gives only the CNAME.
        assert_eq!(world().lookup("www.example.com.", Kind::Cname).answers.len(), 1);
    }

    #[test]
    fn nodata_when_the_name_exists_without_the_type() {
        let a = world().lookup("api.example.com.", Kind::Aaaa);
        assert_eq!((a.rcode, a.authoritative), (Rcode::NoError, true));
        assert!(a.answers.is_empty());
        assert_eq!(soa_owner(&a), "example.com.");
        // Negative TTL: min(SOA TTL, minimum).
        assert_eq!(a.authority[0].ttl, 3600);
        let aws = world().lookup("sts.us-east-1.amazonaws.com.", Kind::Aaaa);
        assert_eq!(soa_owner(&aws), "amazonaws.com.");
        assert_eq!(aws.authority[0].ttl, 60);
    }

    #[test]
    fn empty_non_terminals_are_nodata_not_nxdomain() {
        for ent in ["us-east-1.amazonaws.com.", "dkr.ecr.us-east-1.amazonaws.com.", "com."] {
            let a = world().lookup(ent, Kind::A);
            assert_eq!(a.rcode, Rcode::NoError, "{ent}");
            assert!(a.answers.is_empty(), "{ent}");
        }
    }

    #[test]
    fn nxdomain_with_the_zone_soa() {
        let a = world().lookup("nope.example.com.", Kind::A);
        assert_eq!((a.rcode, a.authoritative), (Rcode::NxDomain, true));
        assert_eq!(soa_owner(&a), "example.com.");
        // Outside every zone: the root's SOA, no AA (a resolver relays it).
        let b = world().lookup("orders.shop.svc.cluster.local.", Kind::A);
        assert_eq!((b.rcode, b.authoritative), (Rcode::NxDomain, false));
        assert_eq!(soa_owner(&b), ".");
        let c = world().lookup("api.example.com.shop.svc.cluster.local.", Kind::A);
        assert_eq!(c.rcode, Rcode::NxDomain);
        // "notexample.com" is not inside "example.com".
        assert_eq!(world().lookup("notexample.com.", Kind::A).rcode, Rcode::NxDomain);
    }

    #[test]
    fn aws_and_registry_names_point_at_the_cloud() {
        for name in AWS_ENDPOINTS.iter().copied().chain(["registry-1.docker.io.", "registry.k8s.io."]) {
            let a = world().lookup(name, Kind::A);
            assert_eq!(a.answers.len(), 1, "{name}");
            assert_eq!(a.answers[0].data, Data::A(CLOUD), "{name}");
            assert!(a.authoritative, "{name}");
        }
        let soa = world().lookup("amazonaws.com.", Kind::Soa);
        assert!(matches!(soa.answers[0].data, Data::Soa(Soa { minimum: 60, .. })));
    }

    #[test]
    fn every_zone_has_an_apex_soa_and_ns() {
        for zone in &world().zones {
            assert!(
                zone.records.iter().any(|r| r.name == zone.origin && matches!(r.data, Data::Soa(_))),
                "{}",
                zone.origin
            );
            assert!(
                zone.records.iter().any(|r| r.name == zone.origin && matches!(r.data, Data::Ns(_))),
                "{}",
                zone.origin
            );
            for r in &zone.records {
                assert!(in_zone(&r.name, zone.origin), "{} outside {}", r.name, zone.origin);
                assert_eq!(r.name, r.name.to_ascii_lowercase());
            }
        }
    }

    #[test]
    fn unknown_types_are_nodata() {
        let a = world().lookup("example.com.", Kind::Other(33));
        assert_eq!(a.rcode, Rcode::NoError);
        assert!(a.answers.is_empty());
        assert_eq!(world().lookup("example.com.", Kind::Any).answers.len(), 7);
    }
}
