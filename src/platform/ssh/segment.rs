//! Cross-host segments: a tg network whose nodes are pool hosts is a VXLAN
//! segment among those hosts.
//!
//! Each leased host of the segment gets one VXLAN interface (`tgvxVNI`,
//! unicast, UDP 4789, MTU 1450) over its pool address, with one all-zeros
//! forwarding entry per peer host (head-end replication for ARP and other
//! broadcasts; unicast MACs are learned) and the node's address from the
//! network's CIDR. The VNI (4096 and up) is leased like a host, in the same
//! transaction as the session's hosts, under the key `vni:N` of the pool's
//! lease table, so two segments of one lease store never share a VNI.
//!
//! This module owns the names, the VNI choice and the shell lines run on a
//! host; the pool driver (`super`) decides when they run.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::net::{Ipv4Addr, ToSocketAddrs};

/// The UDP port of every segment (IANA's VXLAN port).
pub const VXLAN_PORT: u16 = 4789;
/// 1500 less VXLAN's 50 bytes of headers.
pub const MTU: u32 = 1450;
/// VNIs below this are left to the hosts' own use.
const FIRST_VNI: u32 = 4096;
const LAST_VNI: u32 = (1 << 24) - 1;
/// The MAC of a forwarding entry that floods to a peer.
const ALL_ZEROS: &str = "00:00:00:00:00:00";

/// The lease key of `vni` in the pool's lease table.
pub fn lease_key(vni: u32) -> String {
    format!("vni:{vni}")
}

/// The VNI a lease key names, if it names one.
pub fn vni_of_key(key: &str) -> Option<u32> {
    key.strip_prefix("vni:")?
        .parse()
        .ok()
        .filter(|v| (FIRST_VNI..=LAST_VNI).contains(v))
}

/// The interface of segment `vni` on a host (at most 12 characters: Linux
/// takes 15).
pub fn ifname(vni: u32) -> String {
    format!("tgvx{vni}")
}

/// A VNI for each of `networks` of the session `lineage`, none of them in
/// `taken` nor given twice. Each search starts at a hash of the session and
/// the network, so sessions taking VNIs at once rarely collide (and when
/// they do, the lease transaction refuses one and it chooses again).
pub fn choose(lineage: &str, networks: &[String], taken: &BTreeSet<u32>) -> Option<Vec<u32>> {
    let span = LAST_VNI - FIRST_VNI + 1;
    let mut used = taken.clone();
    let mut out = Vec::with_capacity(networks.len());
    for net in networks {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (lineage, net).hash(&mut h);
        let start = (h.finish() % u64::from(span)) as u32;
        let vni = (0..span)
            .map(|i| FIRST_VNI + (start + i) % span)
            .find(|v| !used.contains(v))?;
        used.insert(vni);
        out.push(vni);
    }
    Some(out)
}

/// The IPv4 address peers send a host's segment traffic to: its pool
/// `address` itself, or what the name resolves to.
pub fn underlay_ip(address: &str, port: u16) -> Result<Ipv4Addr, String> {
    if let Ok(ip) = address.parse::<Ipv4Addr>() {
        return Ok(ip);
    }
    let found = (address, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{address}` for its segment: {e}"))?;
    found
        .filter_map(|a| match a.ip() {
            std::net::IpAddr::V4(ip) => Some(ip),
            std::net::IpAddr::V6(_) => None,
        })
        .next()
        .ok_or_else(|| {
            format!("`{address}` has no IPv4 address: segments run over IPv4 pool addresses")
        })
}

/// One segment interface as a node has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub vni: u32,
    /// This host's pool address.
    pub local: Ipv4Addr,
    /// The other hosts' pool addresses.
    pub peers: Vec<Ipv4Addr>,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
}

/// The MAC of a node's segment interface: locally administered, from its
/// address and the VNI, so an interface made again (drift repaired) keeps
/// it and the peers' ARP caches stay right.
pub fn mac(link: &Link) -> String {
    let [a, b, c, d] = link.address.octets();
    format!("02:{a:02x}:{b:02x}:{c:02x}:{d:02x}:{:02x}", link.vni & 0xff)
}

/// The file whose lock (flock(1)) every segment line takes on a host: a
/// line still running there for an apply that was killed (the host goes
/// on with a command its client left) finishes before the next one reads
/// or changes the interfaces, so a destroy never looks at a half-made one.
pub const HOST_LOCK: &str = "/tmp/.tg-segments.lock";

/// `line`, run under the host's segment lock (without it when the host has
/// no `flock`).
pub fn locked(line: &str) -> String {
    format!("exec 9>>{HOST_LOCK}; flock 9 2>/dev/null; {line}")
}

/// Shell lines that make `link` on a host from nothing (an interface of
/// the same name left from before is removed first).
pub fn up_lines(link: &Link) -> String {
    let dev = ifname(link.vni);
    let mut s = format!(
        "ip link del {dev} 2>/dev/null; \
         ip link add {dev} address {mac} type vxlan id {vni} local {local} dstport {VXLAN_PORT} && \
         ip link set {dev} mtu {MTU} && ",
        mac = mac(link),
        vni = link.vni,
        local = link.local,
    );
    for p in &link.peers {
        s.push_str(&format!(
            "bridge fdb append {ALL_ZEROS} dev {dev} dst {p} && "
        ));
    }
    s.push_str(&format!(
        "ip addr add {}/{} dev {dev} && ip link set {dev} up",
        link.address, link.prefix_len
    ));
    s
}

/// A shell line that removes interface `dev` (gone already is fine).
pub fn down_line(dev: &str) -> String {
    format!("ip link del {dev} 2>/dev/null; true")
}

/// A shell line that changes segment `vni`'s peers on a host: entries for
/// `add` appended, for `remove` deleted. A host without the interface (its
/// node is not made yet) is left alone.
pub fn peers_line(vni: u32, add: &[Ipv4Addr], remove: &[Ipv4Addr]) -> String {
    let dev = ifname(vni);
    let mut s = format!("ip link show {dev} >/dev/null 2>&1 || exit 0; ");
    for p in add {
        s.push_str(&format!(
            "bridge fdb append {ALL_ZEROS} dev {dev} dst {p} 2>/dev/null || bridge fdb show dev {dev} | grep -q 'dst {p} ' || exit 1; "
        ));
    }
    for p in remove {
        s.push_str(&format!(
            "bridge fdb del {ALL_ZEROS} dev {dev} dst {p} 2>/dev/null; "
        ));
    }
    s.push_str("true");
    s
}

/// A shell line that prints, one per line, those of `links` (interface,
/// address) that are not on the host as made (missing, down or without
/// the address).
pub fn missing_line(links: &[(String, Ipv4Addr)]) -> String {
    let mut s = String::new();
    for (dev, addr) in links {
        s.push_str(&format!(
            "ip -o -4 addr show dev {dev} up 2>/dev/null | grep -q ' {addr}/' || echo {dev}; "
        ));
    }
    s.push_str("true");
    s
}

/// A shell line that removes every segment interface tg made on a host
/// (the sweep of a session whose records were lost).
pub fn sweep_line() -> String {
    "for d in $(ip -o link show type vxlan 2>/dev/null | sed -n 's/^[0-9]*: \\(tgvx[0-9]*\\)[:@].*/\\1/p'); do ip link del \"$d\"; done; true".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vnis_avoid_what_is_taken_and_each_other() {
        let nets = vec!["a".to_string(), "b".to_string()];
        let first = choose("L1", &nets, &BTreeSet::new()).unwrap();
        assert_ne!(first[0], first[1]);
        assert!(first.iter().all(|v| (FIRST_VNI..=LAST_VNI).contains(v)));
        let taken: BTreeSet<u32> = first.iter().copied().collect();
        let again = choose("L1", &nets, &taken).unwrap();
        assert!(again.iter().all(|v| !taken.contains(v)), "{again:?}");
        // The same session and networks start at the same place.
        assert_eq!(choose("L1", &nets, &BTreeSet::new()).unwrap(), first);
    }

    #[test]
    fn a_full_vni_space_gives_none() {
        let all: BTreeSet<u32> = (FIRST_VNI..=LAST_VNI).collect();
        assert!(choose("L", &["a".into()], &all).is_none());
    }

    #[test]
    fn lease_keys_round_trip_and_host_keys_are_not_vnis() {
        assert_eq!(vni_of_key(&lease_key(5000)), Some(5000));
        assert_eq!(vni_of_key("10.0.0.1:22"), None);
        assert_eq!(vni_of_key("vni:12"), None, "below the first VNI");
        assert_eq!(vni_of_key("vni:x"), None);
        assert!(ifname(LAST_VNI).len() <= 15);
    }

    #[test]
    fn the_up_lines_name_every_peer_and_the_address() {
        let l = Link {
            vni: 4242,
            local: "192.0.2.1".parse().unwrap(),
            peers: vec!["192.0.2.2".parse().unwrap(), "192.0.2.3".parse().unwrap()],
            address: "10.9.0.2".parse().unwrap(),
            prefix_len: 24,
        };
        let s = up_lines(&l);
        assert!(s.contains("id 4242 local 192.0.2.1 dstport 4789"), "{s}");
        assert!(
            s.contains("dst 192.0.2.2") && s.contains("dst 192.0.2.3"),
            "{s}"
        );
        assert!(s.contains("ip addr add 10.9.0.2/24 dev tgvx4242"), "{s}");
        assert!(s.contains("mtu 1450"), "{s}");
        assert!(s.contains("address 02:0a:09:00:02:92"), "{s}");
    }

    #[test]
    fn names_resolve_and_addresses_pass_through() {
        assert_eq!(
            underlay_ip("192.0.2.7", 22).unwrap(),
            "192.0.2.7".parse::<Ipv4Addr>().unwrap()
        );
        assert_eq!(underlay_ip("localhost", 22).unwrap(), Ipv4Addr::LOCALHOST);
    }
}
