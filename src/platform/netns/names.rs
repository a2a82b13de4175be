//! Host object names of the netns platform, derived from the session and
//! the instance.
//!
//! Every host object a session makes carries the session tag `sid` (the
//! first 8 hex digits of sha256 of the session's lineage), so `sweep` finds
//! them all even when the state lost track of them. Linux interface names
//! are at most 15 bytes, so bridges and veths are named from a hash
//! (`tgb<12 hex>`, `tgv<12 hex>`: 48 bits, collisions are negligible even
//! across many sessions on one host). Paths under the runtime folder can be
//! long and are readable instead.
//!
//! This module only computes names and paths; it creates nothing.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Longest Linux interface name (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// The session tag: 8 hex digits of sha256(lineage).
pub fn sid(lineage: &str) -> String {
    hex_of(&[lineage.as_bytes()], 8)
}

/// Is `sid` a session tag (what [`sid`] makes)? `Err` says what it is not.
pub fn check_sid(sid: &str) -> Result<(), String> {
    if sid.len() == 8 && sid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(format!(
            "`{sid}` is not a session tag: expected 8 lowercase hex digits"
        ))
    }
}

/// Can `hostname` name a node's host objects (folders, namespace files,
/// cgroups)? The rule is `crate::names`' (the one `tg validate` applies),
/// checked again here for specs that did not come through `config`.
pub fn check_hostname(hostname: &str) -> Result<(), String> {
    crate::names::check_resource_name(hostname)
        .and_then(|()| crate::names::check_hostname(hostname))
        .map_err(|why| format!("hostname `{hostname}` cannot name a node: {why}"))
}

/// The bridge of network `network` in session `sid`: `tgb` + 12 hex digits.
pub fn bridge_name(sid: &str, network: &str) -> String {
    format!(
        "tgb{}",
        hex_of(&[b"bridge", sid.as_bytes(), network.as_bytes()], 12)
    )
}

/// Bridge `k` (1, 2, ...) of network `network`, made when the bridges
/// before it are full: `tgb` + 12 hex digits. Bridge 0 is [`bridge_name`].
pub fn extra_bridge_name(sid: &str, network: &str, k: u32) -> String {
    if k == 0 {
        return bridge_name(sid, network);
    }
    format!(
        "tgb{}",
        hex_of(
            &[
                b"bridge",
                sid.as_bytes(),
                network.as_bytes(),
                &k.to_le_bytes()
            ],
            12
        )
    )
}

/// The two ends of the veth pair that links extra bridge `k` of network
/// `network` to its first bridge: (the end on the first bridge, the end on
/// bridge `k`), `tgl` + 12 hex digits each.
pub fn bridge_link_names(sid: &str, network: &str, k: u32) -> (String, String) {
    let end = |side: &[u8]| {
        format!(
            "tgl{}",
            hex_of(
                &[
                    b"link",
                    side,
                    sid.as_bytes(),
                    network.as_bytes(),
                    &k.to_le_bytes()
                ],
                12
            )
        )
    };
    (end(b"first"), end(b"extra"))
}

/// The router-side end of the veth that links node `hostname`'s
/// `ifname_in_node` to network `network`: `tgv` + 12 hex digits.
pub fn veth_name(sid: &str, network: &str, hostname: &str, ifname_in_node: &str) -> String {
    format!(
        "tgv{}",
        hex_of(
            &[
                b"veth",
                sid.as_bytes(),
                network.as_bytes(),
                hostname.as_bytes(),
                ifname_in_node.as_bytes(),
            ],
            12
        )
    )
}

/// The host-side end of the session's NAT uplink veth (its router-side
/// end is `uplink`): `tgu` + 12 hex digits.
pub fn uplink_name(sid: &str) -> String {
    format!("tgu{}", hex_of(&[b"uplink", sid.as_bytes()], 12))
}

/// The comment on the host's iptables rules of a session: `tg-<sid>`.
pub fn rule_tag(sid: &str) -> String {
    format!("tg-{sid}")
}

/// The interface name of a node's `index`th interface: `eth0`, `eth1`...
pub fn node_ifname(index: usize) -> String {
    format!("eth{index}")
}

/// A readable name of the session's router namespace (for messages).
pub fn router_netns_name(sid: &str) -> String {
    format!("tg-{sid}-router")
}

/// A readable name of a node's namespaces and cgroups: `tg-<sid>-<hostname>`.
pub fn node_netns_name(sid: &str, hostname: &str) -> String {
    format!("tg-{sid}-{hostname}")
}

/// The prefix every host object name of the session starts with (netns
/// files under `/run/netns`, cgroups).
pub fn session_prefix(sid: &str) -> String {
    format!("tg-{sid}-")
}

/// The session's runtime folder: `<run_dir>/<sid>`.
pub fn session_dir(run_dir: &Path, sid: &str) -> PathBuf {
    run_dir.join(sid)
}

/// The folder holding the router's namespace file (a shared bind mount of
/// itself, like `/run/netns`, so unmounts propagate into node mount
/// namespaces copied from the host's).
pub fn router_dir(run_dir: &Path, sid: &str) -> PathBuf {
    session_dir(run_dir, sid).join("netns")
}

/// The session's router network namespace file.
pub fn router_netns_path(run_dir: &Path, sid: &str) -> PathBuf {
    router_dir(run_dir, sid).join("router")
}

/// The file recording the session's name and lineage, for `tg proxy`.
pub fn session_file(run_dir: &Path, sid: &str) -> PathBuf {
    session_dir(run_dir, sid).join("session.json")
}

/// Is `name` usable as a Linux interface name?
pub fn is_valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name != "."
        && name != ".."
        && !name.bytes().any(|b| b == b'/' || b == b':' || b <= b' ')
}

fn hex_of(parts: &[&[u8]], len: usize) -> String {
    let mut h = Sha256::new();
    for p in parts {
        // Length-prefix every part so ("ab", "c") and ("a", "bc") differ.
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let digest = h.finalize();
    let mut s = String::with_capacity(len);
    for b in digest.iter() {
        s.push_str(&format!("{b:02x}"));
        if s.len() >= len {
            break;
        }
    }
    s.truncate(len);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn sid_is_stable_and_short() {
        let a = sid("3f1c0f5e-6a2b-4f39-9a55-0c3f0f9d7d11");
        assert_eq!(a.len(), 8);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, sid("3f1c0f5e-6a2b-4f39-9a55-0c3f0f9d7d11"));
        assert_ne!(a, sid("3f1c0f5e-6a2b-4f39-9a55-0c3f0f9d7d12"));
    }

    #[test]
    fn interface_names_fit_and_are_valid() {
        let long = "a-very-long-network-name-that-goes-on-and-on";
        for n in [
            bridge_name("deadbeef", long),
            veth_name("deadbeef", long, long, "eth12"),
            uplink_name("deadbeef"),
            extra_bridge_name("deadbeef", long, 70),
            bridge_link_names("deadbeef", long, 70).0,
            bridge_link_names("deadbeef", long, 70).1,
            node_ifname(99),
        ] {
            assert!(is_valid_ifname(&n), "{n}");
            assert!(n.len() <= IFNAME_MAX, "{n}");
        }
        assert_eq!(bridge_name("deadbeef", "lab").len(), 15);
        assert_eq!(veth_name("deadbeef", "lab", "edge-0", "eth0").len(), 15);
    }

    #[test]
    fn names_differ_by_every_input() {
        let mut seen = HashSet::new();
        for s in ["00000001", "00000002"] {
            for net in ["lab", "lab-0", "lab-1", "l", "ab"] {
                assert!(seen.insert(bridge_name(s, net)));
                for host in ["edge-0", "edge-1", "a"] {
                    for ifn in ["eth0", "eth1"] {
                        assert!(seen.insert(veth_name(s, net, host, ifn)));
                    }
                }
            }
        }
        for k in 1..100 {
            assert!(seen.insert(extra_bridge_name("00000001", "lab", k)));
            let (a, b) = bridge_link_names("00000001", "lab", k);
            assert!(seen.insert(a) && seen.insert(b));
        }
        assert_eq!(extra_bridge_name("s", "lab", 0), bridge_name("s", "lab"));
        // Concatenation ambiguity is ruled out by length prefixes.
        assert_ne!(
            veth_name("s", "ab", "c", "eth0"),
            veth_name("s", "a", "bc", "eth0")
        );
    }

    #[test]
    fn no_collisions_among_many_names() {
        let mut seen = HashSet::new();
        for i in 0..20_000 {
            assert!(seen.insert(veth_name("cafe0001", "lab", &format!("n-{i}"), "eth0")));
        }
    }

    #[test]
    fn paths_live_under_the_session_folder() {
        let run = Path::new("/run/tg");
        assert_eq!(session_dir(run, "abcd1234"), Path::new("/run/tg/abcd1234"));
        assert!(router_netns_path(run, "abcd1234").starts_with("/run/tg/abcd1234"));
        assert!(session_file(run, "abcd1234").starts_with("/run/tg/abcd1234"));
        assert_eq!(router_netns_name("abcd1234"), "tg-abcd1234-router");
        assert!(node_netns_name("abcd1234", "edge-0").starts_with(&session_prefix("abcd1234")));
    }

    #[test]
    fn tags_and_hostnames_are_checked() {
        assert!(check_sid(&sid("x")).is_ok());
        for bad in ["", "ABCDEF01", "abc", "../../xx", "abcdef012"] {
            assert!(check_sid(bad).is_err(), "{bad}");
        }
        assert!(check_hostname("edge-0").is_ok());
        for h in [
            "",
            "../x",
            "a/b",
            "-a",
            "a b",
            "a,b",
            "Edge",
            &"x".repeat(64),
        ] {
            let e = check_hostname(h).unwrap_err();
            assert!(e.starts_with(&format!("hostname `{h}`")), "{e}");
        }
    }

    #[test]
    fn invalid_ifnames() {
        for n in ["", ".", "..", "a/b", "a:b", "a b", "sixteen-chars-xx"] {
            assert!(!is_valid_ifname(n), "{n}");
        }
    }
}
