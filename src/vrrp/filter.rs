//! Which decoded adverts an instance acts on (RFC 5798 Section 7.1, RFC 3768
//! Section 7.1): the checks that need the instance's configuration. Pure.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use super::packet::{Auth, Received, Version};
use crate::config::VirtualIp;

/// What an instance knows to judge an advert.
#[derive(Clone, Debug)]
pub struct Filter {
    pub vrid: u8,
    pub version: Version,
    /// Our own source address: our adverts coming back are ignored.
    pub own: Ipv4Addr,
    /// The interface's own subnets (multicast: the sender must be in one).
    pub subnets: Vec<VirtualIp>,
    /// Non-empty: only these may send us adverts.
    pub unicast_peers: Vec<Ipv4Addr>,
    /// v2: must match exactly.
    pub auth: Auth,
    /// v2: the advert interval must equal ours (RFC 3768 Section 7.1).
    pub interval_cs: u16,
    pub vips: HashSet<Ipv4Addr>,
}

/// The judgement on one advert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// For us; `same_addresses` false means the master lists other VIPs
    /// (logged, still accepted: RFC 5798 Section 7.1).
    Accept { same_addresses: bool },
    /// Another virtual router, or our own advert: not an error.
    Ignore,
    /// Dropped; the reason is the invalid-packets metric label.
    Drop(&'static str),
}

// === impl Filter ===

impl Filter {
    pub fn check(&self, r: &Received) -> Verdict {
        let a = &r.advert;
        if a.vrid != self.vrid || r.src == self.own {
            return Verdict::Ignore;
        }
        if a.version != self.version {
            return Verdict::Drop("version");
        }
        let source_ok = if self.unicast_peers.is_empty() {
            self.subnets.iter().any(|s| s.contains(r.src))
        } else {
            self.unicast_peers.contains(&r.src)
        };
        if !source_ok {
            return Verdict::Drop("source");
        }
        if self.version == Version::V2 {
            if a.auth != self.auth {
                return Verdict::Drop("auth");
            }
            if a.interval_cs != self.interval_cs {
                return Verdict::Drop("interval");
            }
        }
        let theirs: HashSet<Ipv4Addr> = a.addrs.iter().copied().collect();
        Verdict::Accept {
            same_addresses: theirs == self.vips,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::packet::{Advert, MULTICAST_GROUP, TTL};

    fn filter(version: Version) -> Filter {
        Filter {
            vrid: 51,
            version,
            own: Ipv4Addr::new(10, 0, 0, 1),
            subnets: vec![VirtualIp {
                addr: Ipv4Addr::new(10, 0, 0, 1),
                prefix: 24,
            }],
            unicast_peers: vec![],
            auth: Auth::None,
            interval_cs: 100,
            vips: [Ipv4Addr::new(10, 0, 0, 100)].into(),
        }
    }

    fn received(version: Version, src: [u8; 4]) -> Received {
        Received {
            src: src.into(),
            dst: MULTICAST_GROUP,
            ttl: TTL,
            advert: Advert {
                version,
                vrid: 51,
                priority: 100,
                interval_cs: 100,
                addrs: vec![Ipv4Addr::new(10, 0, 0, 100)],
                auth: Auth::None,
            },
        }
    }

    #[test]
    fn accepts_a_neighbour_and_ignores_others_and_itself() {
        let f = filter(Version::V3);
        let ok = Verdict::Accept {
            same_addresses: true,
        };
        assert_eq!(f.check(&received(Version::V3, [10, 0, 0, 2])), ok);
        assert_eq!(
            f.check(&received(Version::V3, [10, 0, 0, 1])),
            Verdict::Ignore
        );
        let mut other = received(Version::V3, [10, 0, 0, 2]);
        other.advert.vrid = 52;
        assert_eq!(f.check(&other), Verdict::Ignore);
        let mut more = received(Version::V3, [10, 0, 0, 2]);
        more.advert.addrs.push(Ipv4Addr::new(10, 0, 0, 101));
        assert_eq!(
            f.check(&more),
            Verdict::Accept {
                same_addresses: false
            }
        );
    }

    #[test]
    fn drops_wrong_version_source_auth_and_v2_interval() {
        let f = filter(Version::V3);
        assert_eq!(
            f.check(&received(Version::V2, [10, 0, 0, 2])),
            Verdict::Drop("version")
        );
        assert_eq!(
            f.check(&received(Version::V3, [10, 0, 1, 2])),
            Verdict::Drop("source")
        );
        let unicast = Filter {
            unicast_peers: vec![Ipv4Addr::new(10, 0, 0, 3)],
            ..filter(Version::V3)
        };
        assert_eq!(
            unicast.check(&received(Version::V3, [10, 0, 0, 2])),
            Verdict::Drop("source")
        );
        assert!(matches!(
            unicast.check(&received(Version::V3, [10, 0, 0, 3])),
            Verdict::Accept { .. }
        ));
        let v2 = Filter {
            auth: Auth::pass("secret"),
            ..filter(Version::V2)
        };
        let mut r = received(Version::V2, [10, 0, 0, 2]);
        assert_eq!(v2.check(&r), Verdict::Drop("auth"));
        r.advert.auth = Auth::pass("secret");
        assert!(matches!(v2.check(&r), Verdict::Accept { .. }));
        r.advert.interval_cs = 200;
        assert_eq!(v2.check(&r), Verdict::Drop("interval"));
    }
}
