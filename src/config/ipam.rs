//! IPAM: addresses for networks without `cidr` and nodes without `address`.
//!
//! Rules (documented in `docs/language.md`):
//! - In every network, `.0` (the network), the broadcast address and `.1`
//!   (the host side) are never given to nodes.
//! - Fixed addresses are reserved first, then addresses recorded in state
//!   for existing instances (so nothing that exists is ever renumbered),
//!   then every other node gets the lowest free address, in declaration
//!   order.
//! - A network without `cidr` gets the first free /24 of [`POOL`] that
//!   overlaps no other network, or the one recorded in state.
//! - A network may not overlap a range that cannot carry node traffic
//!   ([`UNUSABLE`]: loopback, link-local, multicast, reserved, `0.0.0.0/8`).
//!   (Overlap with the host's own routes is the platform's plan-time check.)

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// The pool of /24s for networks declared without `cidr`: 10.200.0.0/16.
pub const POOL: &str = "10.200.0.0/16";

/// Ranges a network may not overlap, and what they are: packets there
/// never reach a node (the kernel keeps loopback and `0.0.0.0/8` to
/// itself, link-local and multicast are not routed, 240.0.0.0/4 is
/// reserved and holds the broadcast address 255.255.255.255).
pub const UNUSABLE: &[(&str, &str)] = &[
    ("0.0.0.0/8", "the \"this network\" range"),
    ("127.0.0.0/8", "the loopback range"),
    ("169.254.0.0/16", "the link-local range"),
    ("224.0.0.0/4", "the multicast range"),
    (
        "240.0.0.0/4",
        "the reserved range (with the broadcast address 255.255.255.255)",
    ),
];

/// The unusable range `net` overlaps, with what it is.
pub fn unusable(net: &Ipv4Net) -> Option<(Ipv4Net, &'static str)> {
    UNUSABLE.iter().find_map(|(r, what)| {
        let r: Ipv4Net = r.parse().ok()?;
        overlaps(&r, net).then_some((r, *what))
    })
}

/// Why an address cannot be reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    OutOfRange,
    /// `.0`, `.1` or the broadcast address.
    Reserved(&'static str),
    Taken,
}

/// The address allocator of one network.
#[derive(Debug, Clone)]
pub struct NetAlloc {
    pub cidr: Ipv4Net,
    used: HashSet<u32>,
    cursor: u32,
}

impl NetAlloc {
    pub fn new(cidr: Ipv4Net) -> NetAlloc {
        let first = u32::from(cidr.network());
        NetAlloc {
            cidr,
            used: HashSet::new(),
            cursor: first.saturating_add(2),
        }
    }

    /// The host side's address: `.1`.
    pub fn gateway(&self) -> Ipv4Addr {
        gateway(self.cidr)
    }

    /// How many addresses nodes can have in this network.
    pub fn capacity(&self) -> u64 {
        capacity(self.cidr)
    }

    pub fn reserve(&mut self, ip: Ipv4Addr) -> Result<(), Refused> {
        if !self.cidr.contains(&ip) {
            return Err(Refused::OutOfRange);
        }
        if ip == self.cidr.network() {
            return Err(Refused::Reserved("the network address"));
        }
        if ip == self.cidr.broadcast() {
            return Err(Refused::Reserved("the broadcast address"));
        }
        if ip == self.gateway() {
            return Err(Refused::Reserved("the host side's address (.1)"));
        }
        if !self.used.insert(u32::from(ip)) {
            return Err(Refused::Taken);
        }
        Ok(())
    }

    /// The lowest free address, now taken.
    pub fn next_free(&mut self) -> Option<Ipv4Addr> {
        let last = u32::from(self.cidr.broadcast());
        while self.cursor < last {
            let c = self.cursor;
            self.cursor += 1;
            if self.used.insert(c) {
                return Some(Ipv4Addr::from(c));
            }
        }
        None
    }
}

pub fn gateway(cidr: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(cidr.network()).saturating_add(1))
}

pub fn capacity(cidr: Ipv4Net) -> u64 {
    (1u64 << (32 - cidr.prefix_len() as u64)).saturating_sub(3)
}

/// A /24 from the pool for a network without `cidr`: the recorded one when
/// it is still free, else the first that overlaps nothing in `taken`.
pub fn pick_pool_cidr(taken: &[Ipv4Net], prior: Option<Ipv4Net>) -> Option<Ipv4Net> {
    let free = |n: &Ipv4Net| !taken.iter().any(|t| overlaps(t, n));
    if let Some(p) = prior.filter(free) {
        return Some(p);
    }
    let pool: Ipv4Net = POOL.parse().ok()?;
    pool.subnets(24).ok()?.find(free)
}

pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_lowest_free_skipping_reserved() {
        let mut a = NetAlloc::new("10.0.0.0/29".parse().unwrap());
        assert_eq!(a.capacity(), 5);
        a.reserve("10.0.0.3".parse().unwrap()).unwrap();
        assert_eq!(a.next_free(), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(a.next_free(), Some("10.0.0.4".parse().unwrap()));
        assert_eq!(a.next_free(), Some("10.0.0.5".parse().unwrap()));
        assert_eq!(a.next_free(), Some("10.0.0.6".parse().unwrap()));
        assert_eq!(a.next_free(), None);
        assert_eq!(
            a.reserve("10.0.0.1".parse().unwrap()),
            Err(Refused::Reserved("the host side's address (.1)"))
        );
        assert_eq!(a.reserve("10.0.0.3".parse().unwrap()), Err(Refused::Taken));
        assert_eq!(
            a.reserve("10.0.1.3".parse().unwrap()),
            Err(Refused::OutOfRange)
        );
    }

    #[test]
    fn unusable_ranges() {
        let check = |cidr: &str, expect: Option<&str>| {
            let net: Ipv4Net = cidr.parse().unwrap();
            assert_eq!(
                unusable(&net).map(|(r, _)| r.to_string()).as_deref(),
                expect,
                "{cidr}"
            );
        };
        check("127.0.0.0/8", Some("127.0.0.0/8"));
        check("127.1.0.0/16", Some("127.0.0.0/8"));
        check("0.0.0.0/8", Some("0.0.0.0/8"));
        check("169.254.3.0/24", Some("169.254.0.0/16"));
        check("169.0.0.0/8", Some("169.254.0.0/16"));
        check("224.0.0.0/24", Some("224.0.0.0/4"));
        check("239.255.0.0/16", Some("224.0.0.0/4"));
        check("255.255.255.0/24", Some("240.0.0.0/4"));
        check("240.0.0.0/8", Some("240.0.0.0/4"));
        check("10.42.0.0/24", None);
        check("172.16.0.0/12", None);
        check("192.168.1.0/24", None);
        check("126.0.0.0/8", None);
        check("169.253.0.0/16", None);
        check("223.255.255.0/24", None);
    }

    #[test]
    fn pool_skips_taken_and_keeps_prior() {
        let taken: Vec<Ipv4Net> = vec!["10.200.0.0/23".parse().unwrap()];
        assert_eq!(
            pick_pool_cidr(&taken, None),
            Some("10.200.2.0/24".parse().unwrap())
        );
        let prior = "10.200.9.0/24".parse().unwrap();
        assert_eq!(pick_pool_cidr(&taken, Some(prior)), Some(prior));
    }
}
