//! Networks of the netns platform: one router network namespace per
//! session, one Linux bridge per network inside it (more when one is full),
//! and the veth pairs that link nodes to bridges.
//!
//! Layout: the router namespace (file `<run_dir>/<sid>/netns/router`, a
//! persisted namespace with no process) holds every bridge of the session
//! with the network's gateway `.1/prefix`. IPv4 forwarding is off there,
//! so nothing crosses networks (nor does IPv6 run on any link of the
//! session), and policy rules keep a network from even
//! reaching the router's addresses on other networks. The host's root
//! namespace gets no bridge, no veth and no address: two sessions may use
//! the same CIDRs at once. The host reaches nodes through the router
//! namespace (`tg proxy`).
//!
//! Each file owns one concern:
//! - `codec`: the rtnetlink messages, pure (bytes in, bytes out).
//! - `socket`: a netlink socket bound to one namespace.
//! - `router`: the session's router namespace and `session.json`.
//! - `links`: bridges, veths, addresses, routes and rules of networks; the
//!   kind of a veth's root qdisc (impairments themselves are `tc`'s, in
//!   `super::impair`).
//! - `mounts`: mountinfo, shared mount points.
//! - `nat`: egress through an uplink to the host (`nat = true`).
//! - `host`: what is shared by every tg on the host: the host lock, the
//!   record of host settings tg changed, the host's routes.
//!
//! Only `nat` spawns processes (`iptables`); the rest talks netlink on
//! sockets opened inside the target namespace, so the calling thread never
//! changes namespace.
//!
//! Not here: node namespaces and root filesystems (`node`).

mod codec;
pub mod host;
pub mod links;
pub mod mounts;
pub mod nat;
pub mod router;
mod socket;

use std::io;

use crate::platform::PlatformError;

pub use links::{
    attach, create_network, delete_network, detach, existing_links, links_in, network_addresses,
    NetworkPrivate,
};
pub use mounts::{is_mount_point, mount_points_under};
pub use nat::{disable_nat, enable_nat, remove_host_rules, uplink_exists, NAT_POOL};
pub use router::{
    find_sessions, is_ns_file, remove_router, router_exists, router_netns_path, SessionRecord,
};
pub(crate) use socket::in_netns;

/// Links made in the calling thread's network namespace from now on start
/// without IPv6 (`net.ipv6.conf.default.disable_ipv6`; nothing when the
/// kernel has no IPv6). tg's networks are IPv4: IPv6 on their links would
/// only add link-local chatter (address checks, multicast listener
/// reports) that a bridge floods to every port, a cost that grows with the
/// square of the node count. Set in the router namespace and, by their
/// init, in every node's. See docs/decisions.md.
pub fn no_ipv6_on_new_links() -> Result<(), String> {
    let path = "/proc/sys/net/ipv6/conf/default/disable_ipv6";
    match std::fs::write(path, "1") {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other.map_err(|e| format!("turn IPv6 off for new links: {e}")),
    }
}

/// What can go wrong while making networks.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{op}: {message}")]
    Netlink {
        op: String,
        errno: i32,
        message: String,
    },
    #[error("{0}")]
    Missing(String),
    /// A tool (iptables) failed; `detail` is its output.
    #[error("{message}")]
    Tool { message: String, detail: String },
}

impl NetError {
    /// The kernel's errno of a failed netlink request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetError::Netlink { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

impl From<NetError> for PlatformError {
    fn from(e: NetError) -> PlatformError {
        match e {
            NetError::Tool { message, detail } => PlatformError::new(message).with_detail(detail),
            other => PlatformError::new(other.to_string()),
        }
    }
}

pub(crate) type NetResult<T> = Result<T, NetError>;

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> NetError {
    let context = context.into();
    move |source| NetError::Io { context, source }
}

fn nix_err(context: impl Into<String>) -> impl FnOnce(nix::Error) -> NetError {
    let context = context.into();
    move |e| NetError::Io {
        context,
        source: io::Error::from_raw_os_error(e as i32),
    }
}

/// `e` with its operation described as `op` (netlink errors only).
fn prefix(op: String, e: NetError) -> NetError {
    match e {
        NetError::Netlink { errno, message, .. } => NetError::Netlink { op, errno, message },
        other => other,
    }
}
