//! The rtnetlink messages the netns platform sends, and the reading of the
//! kernel's replies: pure functions from arguments to bytes and from bytes
//! to replies, built on `netlink-packet-route` (see docs/decisions.md).
//!
//! A request is encoded with the sequence number the socket gives it and
//! appended to a buffer, so many requests can go out in one `send` and
//! their replies be matched by sequence number (see `socket`).
//!
//! Not here: sockets and namespaces (`socket`), what the messages are for
//! (`links`, `router`, `nat`).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::RawFd;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NlaBuffer, NlasIterator, NLM_F_ACK,
    NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_CREATE, NLM_F_DUMP, NLM_F_ECHO, NLM_F_EXCL,
    NLM_F_MULTIPART, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoVeth, LinkAttribute, LinkExtentMask,
    LinkFlags, LinkInfo, LinkMessage, State,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::tc::{TcAttribute, TcHandle, TcMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// The `main` routing table.
pub const RT_TABLE_MAIN: u8 = RouteHeader::RT_TABLE_MAIN;
/// The `local` routing table (local and broadcast addresses).
pub const RT_TABLE_LOCAL: u8 = 255;
/// `NLMSGERR_ATTR_MSG`: the kernel's text in an extended ACK.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// One request: the message and its `NLM_F_*` flags (`NLM_F_REQUEST` is
/// added when encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub message: RouteNetlinkMessage,
    pub flags: u16,
}

impl Request {
    fn new(message: RouteNetlinkMessage, flags: u16) -> Request {
        Request { message, flags }
    }

    /// Append this request, numbered `seq`, to `buf`.
    pub fn encode(&self, seq: u32, buf: &mut Vec<u8>) {
        let mut header = NetlinkHeader::default();
        header.flags = self.flags | NLM_F_REQUEST;
        header.sequence_number = seq;
        let mut msg =
            NetlinkMessage::new(header, NetlinkPayload::InnerMessage(self.message.clone()));
        msg.finalize();
        let start = buf.len();
        buf.resize(start + msg.buffer_len(), 0);
        msg.serialize(&mut buf[start..]);
    }
}

/// What an ACK or error carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The positive errno.
    pub errno: i32,
    /// The kernel's extended message, when it gave one.
    pub text: Option<String>,
}

impl Failure {
    /// `strerror(errno)`, with the kernel's text in parentheses.
    pub fn message(&self) -> String {
        let base = std::io::Error::from_raw_os_error(self.errno).to_string();
        match &self.text {
            Some(t) => format!("{base} ({t})"),
            None => base,
        }
    }
}

/// One message read from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A message of a dump or the answer to a `GET`; `last` unless more
    /// of a multipart answer follow.
    Message {
        seq: u32,
        message: RouteNetlinkMessage,
        last: bool,
    },
    /// The end of request `seq`: an ACK, the end of a dump, or an error.
    Done {
        seq: u32,
        result: Result<(), Failure>,
    },
}

/// Read every message in one datagram from the kernel.
pub fn decode(mut data: &[u8]) -> Result<Vec<Reply>, String> {
    let mut out = Vec::new();
    while data.len() >= 16 {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if len < 16 || len > data.len() {
            return Err(format!(
                "a netlink message claims {len} bytes, {} are left",
                data.len()
            ));
        }
        let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[..len])
            .map_err(|e| format!("cannot read a netlink message: {e}"))?;
        let seq = msg.header.sequence_number;
        let flags = msg.header.flags;
        match msg.payload {
            NetlinkPayload::Error(e) => {
                let result = match e.code {
                    None => Ok(()),
                    Some(code) => Err(Failure {
                        errno: -code.get(),
                        text: ext_ack_text(flags, &e.header),
                    }),
                };
                out.push(Reply::Done { seq, result });
            }
            NetlinkPayload::Done(d) => {
                let result = if d.code == 0 {
                    Ok(())
                } else {
                    Err(Failure {
                        errno: -d.code,
                        text: text_attr(&d.extended_ack),
                    })
                };
                out.push(Reply::Done { seq, result });
            }
            NetlinkPayload::InnerMessage(message) => out.push(Reply::Message {
                seq,
                message,
                last: flags & NLM_F_MULTIPART == 0,
            }),
            _ => {}
        }
        data = &data[align4(len).min(data.len())..];
    }
    Ok(out)
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The kernel's text in an error's extended ACK. `rest` is what follows
/// the error code: the echoed request (only its header when capped), then
/// the TLVs.
fn ext_ack_text(flags: u16, rest: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || rest.len() < 16 {
        return None;
    }
    let skip = if flags & NLM_F_CAPPED != 0 {
        16
    } else {
        align4(u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize)
    };
    text_attr(rest.get(skip..)?)
}

fn text_attr(tlvs: &[u8]) -> Option<String> {
    NlasIterator::new(tlvs)
        .filter_map(Result::ok)
        .find(|a: &NlaBuffer<&[u8]>| a.kind() == NLMSGERR_ATTR_MSG)
        .map(|a| {
            String::from_utf8_lossy(a.value())
                .trim_end_matches('\0')
                .to_string()
        })
        .filter(|t| !t.is_empty())
}

// ---------------------------------------------------------------------------
// Requests.

fn link(index: u32, up: bool) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    if up {
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
    }
    m
}

/// Look link `name` up (answered by one `NewLink` or `ENODEV`).
pub fn get_link(name: &str) -> Request {
    let mut m = link(0, false);
    m.attributes.push(LinkAttribute::IfName(name.into()));
    m.attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    Request::new(RouteNetlinkMessage::GetLink(m), 0)
}

/// Look link `index` up.
pub fn get_link_by_index(index: u32) -> Request {
    let mut m = link(index, false);
    m.attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    Request::new(RouteNetlinkMessage::GetLink(m), 0)
}

/// Every link of the namespace.
pub fn dump_links() -> Request {
    let mut m = link(0, false);
    m.attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    Request::new(RouteNetlinkMessage::GetLink(m), NLM_F_DUMP)
}

/// Bring link `index` up.
pub fn set_up(index: u32) -> Request {
    Request::new(RouteNetlinkMessage::NewLink(link(index, true)), NLM_F_ACK)
}

/// Bring link `name` up.
pub fn set_up_by_name(name: &str) -> Request {
    let mut m = link(0, true);
    m.attributes.push(LinkAttribute::IfName(name.into()));
    Request::new(RouteNetlinkMessage::NewLink(m), NLM_F_ACK)
}

/// A new bridge `name`, up (`EEXIST` when there is one).
pub fn new_bridge(name: &str) -> Request {
    let mut m = link(0, true);
    m.attributes.push(LinkAttribute::IfName(name.into()));
    m.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Bridge,
        )]));
    Request::new(
        RouteNetlinkMessage::NewLink(m),
        NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
    )
}

/// A veth pair: `name` here, up, a port of bridge `master` when given; its
/// peer `peer` made directly in the namespace open as `peer_ns_fd` (this
/// one when `None`), down (the kernel refuses to bring it up from here).
pub fn new_veth(name: &str, master: Option<u32>, peer: &str, peer_ns_fd: Option<RawFd>) -> Request {
    let mut p = link(0, false);
    p.attributes.push(LinkAttribute::IfName(peer.into()));
    if let Some(fd) = peer_ns_fd {
        p.attributes.push(LinkAttribute::NetNsFd(fd));
    }
    let mut m = link(0, true);
    m.attributes.push(LinkAttribute::IfName(name.into()));
    if let Some(master) = master {
        m.attributes.push(LinkAttribute::Controller(master));
    }
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
    ]));
    Request::new(
        RouteNetlinkMessage::NewLink(m),
        NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
    )
}

/// Make link `index` a port of bridge `master`, and bring it up.
pub fn enslave(index: u32, master: u32) -> Request {
    let mut m = link(index, true);
    m.attributes.push(LinkAttribute::Controller(master));
    Request::new(RouteNetlinkMessage::NewLink(m), NLM_F_ACK)
}

/// Delete link `name` (`ENODEV` when there is none).
pub fn del_link(name: &str) -> Request {
    let mut m = link(0, false);
    m.attributes.push(LinkAttribute::IfName(name.into()));
    Request::new(RouteNetlinkMessage::DelLink(m), NLM_F_ACK)
}

/// Give link `index` the address `addr/prefix_len` (replacing the same one).
pub fn new_address(index: u32, addr: Ipv4Addr, prefix_len: u8) -> Request {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = prefix_len;
    m.header.scope = AddressScope::Universe;
    m.header.index = index;
    m.attributes.push(AddressAttribute::Local(IpAddr::V4(addr)));
    m.attributes
        .push(AddressAttribute::Address(IpAddr::V4(addr)));
    if prefix_len < 31 {
        let mask = if prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - prefix_len)
        };
        m.attributes
            .push(AddressAttribute::Broadcast(Ipv4Addr::from(
                u32::from(addr) | !mask,
            )));
    }
    Request::new(
        RouteNetlinkMessage::NewAddress(m),
        NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
    )
}

/// Every IPv4 address of the namespace.
pub fn dump_addresses() -> Request {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    Request::new(RouteNetlinkMessage::GetAddress(m), NLM_F_DUMP)
}

/// The default route via `gateway` out of link `index` (replacing one).
pub fn default_route(index: u32, gateway: Ipv4Addr) -> Request {
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Inet;
    m.header.table = RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Boot;
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
    m.attributes.push(RouteAttribute::Oif(index));
    Request::new(
        RouteNetlinkMessage::NewRoute(m),
        NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
    )
}

/// What a policy rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleDoes {
    /// Look the route up in this table.
    Lookup(u8),
    /// Refuse (`EACCES` to the sender).
    Prohibit,
}

/// An IPv4 policy rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule<'a> {
    pub priority: u32,
    /// Only for packets that came in on this link.
    pub iif: Option<&'a str>,
    /// Only for packets to this address.
    pub dst: Option<Ipv4Addr>,
    pub does: RuleDoes,
}

/// Add rule `rule` (`EEXIST` when there is one) or delete it (`ENOENT`).
pub fn rule(add: bool, rule: &Rule) -> Request {
    let mut m = RuleMessage::default();
    m.header.family = AddressFamily::Inet;
    match rule.does {
        RuleDoes::Lookup(table) => {
            m.header.table = table;
            m.header.action = RuleAction::ToTable;
        }
        RuleDoes::Prohibit => m.header.action = RuleAction::Prohibit,
    }
    m.attributes.push(RuleAttribute::Priority(rule.priority));
    if let Some(i) = rule.iif {
        m.attributes.push(RuleAttribute::Iifname(i.into()));
    }
    if let Some(d) = rule.dst {
        m.header.dst_len = 32;
        m.attributes.push(RuleAttribute::Destination(IpAddr::V4(d)));
    }
    if add {
        Request::new(
            RouteNetlinkMessage::NewRule(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
    } else {
        Request::new(RouteNetlinkMessage::DelRule(m), NLM_F_ACK)
    }
}

// ---------------------------------------------------------------------------
// Reading replies.

/// What tg reads of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSeen {
    pub index: u32,
    pub name: String,
    /// The bridge it is a port of.
    pub master: Option<u32>,
    /// Operational state `up` (carrier seen by linkwatch).
    pub oper_up: bool,
    /// Its port number on its bridge (the kernel gives the lowest free one).
    pub port_no: Option<u16>,
}

/// The links among `replies`.
pub fn links(replies: &[RouteNetlinkMessage]) -> Vec<LinkSeen> {
    replies
        .iter()
        .filter_map(|r| match r {
            RouteNetlinkMessage::NewLink(m) => Some(link_seen(m)),
            _ => None,
        })
        .collect()
}

fn link_seen(m: &LinkMessage) -> LinkSeen {
    let mut seen = LinkSeen {
        index: m.header.index,
        name: String::new(),
        master: None,
        oper_up: false,
        port_no: None,
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => seen.name = n.clone(),
            LinkAttribute::Controller(i) => seen.master = Some(*i),
            LinkAttribute::OperState(s) => seen.oper_up = *s == State::Up,
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::PortData(InfoPortData::BridgePort(port)) = i {
                        seen.port_no = port.iter().find_map(|p| match p {
                            InfoBridgePort::PortNumber(n) => Some(*n),
                            _ => None,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    seen
}

/// Ask for the root qdisc of link `index` alone (a `GET`, not a dump: the
/// kernel filters no qdisc dump by link, so a dump costs every qdisc of the
/// namespace), echoed and acknowledged (see `Netlink::root_qdisc_kind`).
pub fn get_root_qdisc(index: u32) -> Request {
    let mut m = TcMessage::default();
    m.header.index = index as i32;
    m.header.parent = TcHandle::ROOT;
    Request::new(
        RouteNetlinkMessage::GetQueueDiscipline(m),
        NLM_F_ACK | NLM_F_ECHO,
    )
}

/// The kind (`noqueue`, `tbf`, `netem`, ...) of each link's root qdisc
/// among `replies`, by link index.
pub fn root_qdisc_kinds(replies: &[RouteNetlinkMessage]) -> Vec<(u32, String)> {
    replies
        .iter()
        .filter_map(|r| match r {
            RouteNetlinkMessage::NewQueueDiscipline(m) if m.header.parent == TcHandle::ROOT => {
                m.attributes.iter().find_map(|a| match a {
                    TcAttribute::Kind(k) => Some((m.header.index as u32, k.clone())),
                    _ => None,
                })
            }
            _ => None,
        })
        .collect()
}

/// The IPv4 addresses among `replies`: (link index, address, prefix).
pub fn addresses(replies: &[RouteNetlinkMessage]) -> Vec<(u32, Ipv4Addr, u8)> {
    let mut out = Vec::new();
    for r in replies {
        let RouteNetlinkMessage::NewAddress(m) = r else {
            continue;
        };
        if m.header.family != AddressFamily::Inet {
            continue;
        }
        for a in &m.attributes {
            if let AddressAttribute::Local(IpAddr::V4(ip)) = a {
                out.push((m.header.index, *ip, m.header.prefix_len));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(r: &Request, seq: u32) -> Vec<u8> {
        let mut b = Vec::new();
        r.encode(seq, &mut b);
        b
    }

    /// The bytes of a request, read back as the kernel would.
    fn round_trip(r: &Request) -> (NetlinkHeader, RouteNetlinkMessage) {
        let b = encoded(r, 7);
        let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&b).unwrap();
        let NetlinkPayload::InnerMessage(inner) = m.payload else {
            panic!("not a request: {:?}", m.payload)
        };
        (m.header, inner)
    }

    #[test]
    fn requests_carry_their_sequence_and_flags_and_align() {
        let b = encoded(&new_bridge("tgb0"), 42);
        assert_eq!(b.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize,
            b.len()
        );
        assert_eq!(u32::from_ne_bytes(b[8..12].try_into().unwrap()), 42);
        let flags = u16::from_ne_bytes([b[6], b[7]]);
        assert_eq!(flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
    }

    #[test]
    fn many_requests_share_one_buffer() {
        let mut b = Vec::new();
        for (i, name) in ["a", "bb", "ccc"].iter().enumerate() {
            del_link(name).encode(i as u32 + 1, &mut b);
        }
        let mut off = 0;
        let mut seqs = Vec::new();
        while off < b.len() {
            let len = u32::from_ne_bytes(b[off..off + 4].try_into().unwrap()) as usize;
            let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&b[off..off + len]).unwrap();
            seqs.push(m.header.sequence_number);
            off += align4(len);
        }
        assert_eq!(seqs, [1, 2, 3]);
    }

    #[test]
    fn a_veth_names_its_peer_namespace_and_master() {
        let (_, m) = round_trip(&new_veth("tgv1", Some(9), "eth0", Some(5)));
        let RouteNetlinkMessage::NewLink(l) = m else {
            panic!()
        };
        assert!(l.header.flags.contains(LinkFlags::Up));
        assert!(l.attributes.contains(&LinkAttribute::Controller(9)));
        let info = l
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(i) => Some(i),
                _ => None,
            })
            .unwrap();
        assert!(info.contains(&LinkInfo::Kind(InfoKind::Veth)));
        let peer = info
            .iter()
            .find_map(|i| match i {
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))) => Some(p),
                _ => None,
            })
            .unwrap();
        assert!(peer
            .attributes
            .contains(&LinkAttribute::IfName("eth0".into())));
        assert!(peer.attributes.contains(&LinkAttribute::NetNsFd(5)));
        assert!(!peer.header.flags.contains(LinkFlags::Up));
    }

    #[test]
    fn addresses_get_a_broadcast_below_31_bits() {
        let (_, m) = round_trip(&new_address(3, Ipv4Addr::new(10, 9, 0, 1), 24));
        let RouteNetlinkMessage::NewAddress(a) = m else {
            panic!()
        };
        assert_eq!(a.header.index, 3);
        assert!(a
            .attributes
            .contains(&AddressAttribute::Broadcast(Ipv4Addr::new(10, 9, 0, 255))));
        let (_, m) = round_trip(&new_address(3, Ipv4Addr::new(10, 9, 0, 1), 31));
        let RouteNetlinkMessage::NewAddress(a) = m else {
            panic!()
        };
        assert!(!a
            .attributes
            .iter()
            .any(|x| matches!(x, AddressAttribute::Broadcast(_))));
    }

    #[test]
    fn rules_say_what_they_match_and_do() {
        let r = Rule {
            priority: 100,
            iif: Some("tgb1"),
            dst: Some(Ipv4Addr::new(10, 0, 0, 1)),
            does: RuleDoes::Lookup(RT_TABLE_LOCAL),
        };
        let (h, m) = round_trip(&rule(true, &r));
        assert_eq!(h.flags & NLM_F_EXCL, NLM_F_EXCL);
        let RouteNetlinkMessage::NewRule(m) = m else {
            panic!()
        };
        assert_eq!(m.header.table, RT_TABLE_LOCAL);
        assert_eq!(m.header.action, RuleAction::ToTable);
        assert_eq!(m.header.dst_len, 32);
        assert!(m
            .attributes
            .contains(&RuleAttribute::Iifname("tgb1".into())));
        let p = Rule {
            dst: None,
            does: RuleDoes::Prohibit,
            ..r
        };
        let (_, m) = round_trip(&rule(false, &p));
        let RouteNetlinkMessage::DelRule(m) = m else {
            panic!()
        };
        assert_eq!(m.header.action, RuleAction::Prohibit);
        assert_eq!(m.header.dst_len, 0);
    }

    /// An `NLMSG_ERROR` as the kernel sends it with `NETLINK_CAP_ACK` and
    /// `NETLINK_EXT_ACK`: code, the request's header, then the TLVs.
    fn error_bytes(seq: u32, errno: i32, text: Option<&str>) -> Vec<u8> {
        let mut payload = (-errno).to_ne_bytes().to_vec();
        payload.extend_from_slice(&[0u8; 16]);
        let mut flags = NLM_F_CAPPED;
        if let Some(t) = text {
            flags |= NLM_F_ACK_TLVS;
            let mut v = t.as_bytes().to_vec();
            v.push(0);
            payload.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
            payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
            payload.extend_from_slice(&v);
            while payload.len() % 4 != 0 {
                payload.push(0);
            }
        }
        let mut b = ((16 + payload.len()) as u32).to_ne_bytes().to_vec();
        b.extend_from_slice(&2u16.to_ne_bytes()); // NLMSG_ERROR
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&payload);
        b
    }

    #[test]
    fn errors_carry_errno_and_the_kernels_text() {
        let mut data = error_bytes(3, libc::EXFULL, Some("too many ports"));
        data.extend(error_bytes(4, 0, None));
        let replies = decode(&data).unwrap();
        assert_eq!(
            replies,
            [
                Reply::Done {
                    seq: 3,
                    result: Err(Failure {
                        errno: libc::EXFULL,
                        text: Some("too many ports".into())
                    })
                },
                Reply::Done {
                    seq: 4,
                    result: Ok(())
                },
            ]
        );
        let Reply::Done { result: Err(f), .. } = &replies[0] else {
            panic!()
        };
        assert!(f.message().contains("(too many ports)"), "{}", f.message());
    }

    #[test]
    fn damaged_replies_are_errors_not_panics() {
        assert!(decode(&[]).unwrap().is_empty());
        let mut b = error_bytes(1, libc::ENODEV, None);
        b[0] = 200; // longer than the datagram
        assert!(decode(&b).is_err());
        b[0..4].copy_from_slice(&3u32.to_ne_bytes()); // shorter than a header
        assert!(decode(&b).is_err());
        for cut in 0..error_bytes(1, 1, Some("x")).len() {
            let _ = decode(&error_bytes(1, 1, Some("x"))[..cut]);
        }
    }

    #[test]
    fn link_replies_are_read() {
        let mut m = LinkMessage::default();
        m.header.index = 12;
        m.attributes.push(LinkAttribute::IfName("tgv9".into()));
        m.attributes.push(LinkAttribute::Controller(4));
        m.attributes.push(LinkAttribute::OperState(State::Up));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(netlink_packet_route::link::InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::PortNumber(
                7,
            )])),
        ]));
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_MULTIPART;
        header.sequence_number = 5;
        let mut msg = NetlinkMessage::new(
            header,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)),
        );
        msg.finalize();
        let mut b = vec![0; msg.buffer_len()];
        msg.serialize(&mut b);
        let replies = decode(&b).unwrap();
        let Reply::Message { seq, message, last } = &replies[0] else {
            panic!()
        };
        assert_eq!((*seq, *last), (5, false));
        assert_eq!(
            links(std::slice::from_ref(message)),
            [LinkSeen {
                index: 12,
                name: "tgv9".into(),
                master: Some(4),
                oper_up: true,
                port_no: Some(7),
            }]
        );
    }

    #[test]
    fn root_qdisc_requests_and_replies() {
        let (header, message) = round_trip(&get_root_qdisc(7));
        // Echoed (the kernel sends a qdisc `GET`'s answer only to a
        // requester asking for one) and acknowledged (no answer for a
        // built-in default qdisc).
        assert_eq!(header.flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_ECHO);
        let RouteNetlinkMessage::GetQueueDiscipline(m) = message else {
            panic!("not a qdisc request: {message:?}");
        };
        assert_eq!((m.header.index, m.header.parent), (7, TcHandle::ROOT));
        let mut root = TcMessage::with_index(7);
        root.header.parent = TcHandle::ROOT;
        root.header.handle = TcHandle { major: 1, minor: 0 };
        root.attributes.push(TcAttribute::Kind("tbf".into()));
        let mut other = root.clone();
        other.header.index = 8;
        other.attributes = vec![TcAttribute::Kind("noqueue".into())];
        let mut inner = root.clone();
        inner.header.parent = TcHandle { major: 1, minor: 1 };
        inner.attributes = vec![TcAttribute::Kind("netem".into())];
        let replies = [
            RouteNetlinkMessage::NewQueueDiscipline(other),
            RouteNetlinkMessage::NewQueueDiscipline(inner),
            RouteNetlinkMessage::NewQueueDiscipline(root),
        ];
        assert_eq!(
            root_qdisc_kinds(&replies),
            [(8, "noqueue".to_string()), (7, "tbf".to_string())]
        );
    }
}
