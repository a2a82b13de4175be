//! NAT (`nat = true`): egress from chosen networks to the host's outside
//! world.
//!
//! The router gets an uplink veth to the host (`uplink` there, `tgu<hex>`
//! on the host) with a transfer /30 from [`NAT_POOL`] (host `.1`, router
//! `.2`) and a default route via the host. Forwarding goes on in the
//! router, with an iptables FORWARD policy DROP there that only lets NAT
//! networks out the uplink (and their replies back), so networks stay
//! isolated from each other. The router masquerades behind `.2` (two
//! sessions may use the same CIDRs), and the host masquerades the transfer
//! /30 out of its own interfaces.
//!
//! On the host, under the host lock (see `host`):
//! - IPv4 forwarding is turned on while any session uses NAT, and put back
//!   as it was when the last one stops (the record is in `host_dir`).
//! - FORWARD jumps to tg's chain `TG-FORWARD`, which accepts each
//!   session's traffic from its uplink (from its transfer /30, never into
//!   another tg uplink) and the replies to it. When forwarding was off
//!   before tg, the chain ends with a DROP: the host forwards nothing but
//!   tg's NAT traffic, as before tg it forwarded nothing at all.
//! - A session's rules carry the comment `tg-<sid>`, the shared ones
//!   `tg-host`; nothing of tg is left once no session uses NAT.
//!
//! This is the only part of the platform that spawns processes
//! (`iptables`, and `nsenter` for the router's).

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::Path;

use super::host::{Host, HostLock};
use super::router::{is_ns_file, router_netns_path};
use super::socket::{in_netns, Netlink};
use super::{io_err, NetError, NetResult};
use crate::platform::netns::locks::SessionHeld;
use crate::platform::netns::names;

/// Where transfer /30s come from (the top of the shared address space).
pub const NAT_POOL: &str = "100.127.0.0/16";

/// The router-side name of the uplink.
const UPLINK: &str = "uplink";

/// tg's chain in the host's `filter` table.
pub const HOST_CHAIN: &str = "TG-FORWARD";

/// The comment on the host rules every NAT session shares.
pub const HOST_TAG: &str = "tg-host";

fn run_tool(mut cmd: std::process::Command, what: &str) -> NetResult<String> {
    let out = cmd.output().map_err(|e| NetError::Tool {
        message: format!("{what}: cannot run it: {e} (nat needs the `iptables` package)"),
        detail: String::new(),
    })?;
    if !out.status.success() {
        return Err(NetError::Tool {
            message: format!("{what} failed"),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Run `iptables ARGS` in the namespace at `ns` (the host's when `None`).
fn iptables(ns: Option<&Path>, args: &[&str]) -> NetResult<String> {
    let mut cmd = match ns {
        Some(p) => {
            let mut c = std::process::Command::new("nsenter");
            c.arg(format!("--net={}", p.display()))
                .arg("--")
                .arg("iptables");
            c
        }
        None => std::process::Command::new("iptables"),
    };
    cmd.arg("-w").args(args);
    run_tool(cmd, &format!("`iptables {}`", args.join(" ")))
}

/// Add rule `rule` to `chain` with `add` (`-A` or `-I`) unless it is there.
fn iptables_ensure(
    ns: Option<&Path>,
    table: &str,
    add: &str,
    chain: &str,
    rule: &[&str],
) -> NetResult<()> {
    let mut check = vec!["-t", table, "-C", chain];
    check.extend_from_slice(rule);
    if iptables(ns, &check).is_ok() {
        return Ok(());
    }
    let mut args = vec!["-t", table, add, chain];
    args.extend_from_slice(rule);
    iptables(ns, &args).map(|_| ())
}

/// Delete every copy of rule `rule` from `chain`.
fn iptables_delete(ns: Option<&Path>, table: &str, chain: &str, rule: &[&str]) {
    let mut args = vec!["-t", table, "-D", chain];
    args.extend_from_slice(rule);
    while iptables(ns, &args).is_ok() {}
}

/// Write `value` to sysctl file `path` from inside the namespace at `ns`.
fn sysctl_in(ns: &Path, path: &str, value: &str) -> NetResult<()> {
    in_netns(ns, || {
        std::fs::write(path, value).map_err(io_err(format!("cannot write `{path}`")))
    })
}

/// A transfer /30 from `NAT_POOL` that no host address overlaps, starting
/// from a place derived from the session tag.
pub fn pick_transfer(sid: &str, used: &[(Ipv4Addr, u8)]) -> NetResult<ipnet::Ipv4Net> {
    let pool: ipnet::Ipv4Net = NAT_POOL
        .parse()
        .map_err(|_| NetError::Missing("bad NAT pool".into()))?;
    let slots = 1u32 << (30 - pool.prefix_len());
    let start = transfer_slot(sid);
    for k in 0..slots {
        let base = u32::from(pool.network()) + ((start + k) % slots) * 4;
        let Ok(net) = ipnet::Ipv4Net::new(Ipv4Addr::from(base), 30) else {
            continue;
        };
        let clash = used.iter().any(|(a, p)| {
            net.contains(a)
                || ipnet::Ipv4Net::new(*a, *p)
                    .is_ok_and(|other| other.trunc().contains(&net.network()))
        });
        if !clash {
            return Ok(net);
        }
    }
    Err(NetError::Missing(format!(
        "no free transfer /30 left in `{NAT_POOL}` for nat"
    )))
}

/// Where session `sid` starts looking for a transfer /30 in the pool.
pub fn transfer_slot(sid: &str) -> u32 {
    u32::from_str_radix(sid.get(..8).unwrap_or("0"), 16).unwrap_or(0) % (1 << 14)
}

/// The host rules of session `sid` with uplink `host_if` and transfer
/// network `transfer`: (table, chain, rule).
fn host_rules(
    host_if: &str,
    transfer: &str,
    tag: &str,
) -> [(&'static str, &'static str, Vec<String>); 3] {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    [
        (
            "nat",
            "POSTROUTING",
            v(&[
                "-s",
                transfer,
                "!",
                "-o",
                host_if,
                "-m",
                "comment",
                "--comment",
                tag,
                "-j",
                "MASQUERADE",
            ]),
        ),
        (
            "filter",
            HOST_CHAIN,
            v(&[
                "-s",
                transfer,
                "-i",
                host_if,
                "!",
                "-o",
                "tgu+",
                "-m",
                "comment",
                "--comment",
                tag,
                "-j",
                "ACCEPT",
            ]),
        ),
        (
            "filter",
            HOST_CHAIN,
            v(&[
                "-d",
                transfer,
                "-o",
                host_if,
                "-m",
                "conntrack",
                "--ctstate",
                "RELATED,ESTABLISHED",
                "-m",
                "comment",
                "--comment",
                tag,
                "-j",
                "ACCEPT",
            ]),
        ),
    ]
}

const JUMP: [&str; 6] = ["-m", "comment", "--comment", HOST_TAG, "-j", HOST_CHAIN];
const GUARD: [&str; 6] = ["-m", "comment", "--comment", HOST_TAG, "-j", "DROP"];

/// tg's chain, FORWARD's jump to it and, when `guard`, its final DROP.
fn ensure_host_chain(guard: bool) -> NetResult<()> {
    if iptables(None, &["-t", "filter", "-S", HOST_CHAIN]).is_err() {
        iptables(None, &["-t", "filter", "-N", HOST_CHAIN])?;
    }
    iptables_ensure(None, "filter", "-I", "FORWARD", &JUMP)?;
    if guard {
        iptables_ensure(None, "filter", "-A", HOST_CHAIN, &GUARD)?;
    }
    Ok(())
}

/// Remove tg's chain and the jump to it (no session uses NAT any more).
fn remove_host_chain() {
    iptables_delete(None, "filter", "FORWARD", &JUMP);
    let _ = iptables(None, &["-t", "filter", "-F", HOST_CHAIN]);
    let _ = iptables(None, &["-t", "filter", "-X", HOST_CHAIN]);
}

/// Let network `name` out to the host's outside world, making the
/// session's uplink first if needed. Returns the host-side uplink address.
/// The calling thread must be in the host's network namespace.
pub fn enable_nat(
    _held: &SessionHeld,
    host: &Host,
    run_dir: &Path,
    sid: &str,
    name: &str,
) -> NetResult<Ipv4Addr> {
    let router = router_netns_path(run_dir, sid);
    if !is_ns_file(&router) {
        return Err(NetError::Missing(format!(
            "network `{name}` does not exist (no router namespace for the session)"
        )));
    }
    let bridge = names::bridge_name(sid, name);
    let host_if = names::uplink_name(sid);
    let mut hnl = Netlink::open()?;
    let host_addr = match hnl.link_index(&host_if)? {
        Some(i) => hnl
            .addresses(Some(i))?
            .first()
            .map(|(a, _)| *a)
            .ok_or_else(|| {
                NetError::Missing(format!(
                    "uplink `{host_if}` has no address: run `tg apply` again after `tg destroy`"
                ))
            })?,
        None => {
            let lock = host.lock()?;
            make_uplink(&lock, host, &mut hnl, &router, sid)?
        }
    };
    for rule in forward_rules(&bridge) {
        iptables_ensure(Some(&router), "filter", "-A", "FORWARD", &rule)?;
    }
    Ok(host_addr)
}

/// The session's uplink and the host's side of NAT; the host-side address.
fn make_uplink(
    lock: &HostLock,
    host: &Host,
    hnl: &mut Netlink,
    router: &Path,
    sid: &str,
) -> NetResult<Ipv4Addr> {
    let host_if = names::uplink_name(sid);
    let tag = names::rule_tag(sid);
    let mut rnl = Netlink::open_in(router)?;
    // Chosen and taken under the host lock: no other tg picks it meanwhile.
    let used = hnl.addresses(None)?;
    let transfer = pick_transfer(sid, &used)?;
    let host_addr = Ipv4Addr::from(u32::from(transfer.network()) + 1);
    let router_addr = Ipv4Addr::from(u32::from(transfer.network()) + 2);
    let rfile = File::open(router).map_err(io_err("cannot open the router namespace"))?;
    rnl.delete_link(UPLINK)?;
    hnl.create_veth(&host_if, None, UPLINK, Some(&rfile))?;
    let hidx = hnl
        .link_index(&host_if)?
        .ok_or_else(|| NetError::Missing(format!("uplink `{host_if}` vanished")))?;
    hnl.add_address(hidx, host_addr, 30)?;
    let uidx = rnl
        .link_index(UPLINK)?
        .ok_or_else(|| NetError::Missing("the router's uplink vanished".into()))?;
    rnl.set_up(uidx, UPLINK)?;
    rnl.add_address(uidx, router_addr, 30)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < deadline && !rnl.is_oper_up(uidx)? {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    rnl.add_default_route(uidx, host_addr)?;
    // Router: drop every forward but what `forward_rules` allow, then turn
    // forwarding on.
    iptables(Some(router), &["-P", "FORWARD", "DROP"])?;
    iptables_ensure(
        Some(router),
        "nat",
        "-A",
        "POSTROUTING",
        &["-o", UPLINK, "-j", "MASQUERADE"],
    )?;
    sysctl_in(router, "/proc/sys/net/ipv4/ip_forward", "1")?;
    // Host: forwarding on (recorded), tg's chain, the session's rules.
    let was_off = host.use_forwarding(lock, sid)?;
    ensure_host_chain(was_off)?;
    let src = transfer.to_string();
    for (table, chain, rule) in host_rules(&host_if, &src, &tag) {
        let rule: Vec<&str> = rule.iter().map(String::as_str).collect();
        let add = if chain == HOST_CHAIN { "-I" } else { "-A" };
        iptables_ensure(None, table, add, chain, &rule)?;
    }
    Ok(host_addr)
}

/// The router's FORWARD rules that let one NAT network out of the uplink
/// (and its replies back in): added by `enable_nat`, removed by
/// `disable_nat`, from this one list so the two never drift apart.
fn forward_rules(bridge: &str) -> [Vec<&str>; 2] {
    [
        vec!["-i", bridge, "-o", UPLINK, "-j", "ACCEPT"],
        vec![
            "-i",
            UPLINK,
            "-o",
            bridge,
            "-m",
            "conntrack",
            "--ctstate",
            "RELATED,ESTABLISHED",
            "-j",
            "ACCEPT",
        ],
    ]
}

/// Stop letting network `name` out; remove the uplink when no NAT network
/// is left. Idempotent.
pub fn disable_nat(
    _held: &SessionHeld,
    host: &Host,
    run_dir: &Path,
    sid: &str,
    name: &str,
) -> NetResult<()> {
    let router = router_netns_path(run_dir, sid);
    if !is_ns_file(&router) {
        return remove_uplink_host_side(host, sid);
    }
    let bridge = names::bridge_name(sid, name);
    for rule in forward_rules(&bridge) {
        iptables_delete(Some(&router), "filter", "FORWARD", &rule);
    }
    let rules = iptables(Some(&router), &["-S", "FORWARD"]).unwrap_or_default();
    if rules.lines().any(|l| l.contains(UPLINK)) {
        return Ok(());
    }
    sysctl_in(&router, "/proc/sys/net/ipv4/ip_forward", "0")?;
    iptables_delete(
        Some(&router),
        "nat",
        "POSTROUTING",
        &["-o", UPLINK, "-j", "MASQUERADE"],
    );
    remove_uplink_host_side(host, sid)?;
    Netlink::open_in(&router)?.delete_link(UPLINK)
}

/// Remove the host side of the session's NAT, under the host lock: the
/// `tgu` veth, the host's rules tagged `tg-<sid>`, and its use of IPv4
/// forwarding (put back as it was when it was the last user; users whose
/// uplink is gone do not count). Idempotent; also what a sweep does.
pub fn remove_uplink_host_side(host: &Host, sid: &str) -> NetResult<()> {
    let host_if = names::uplink_name(sid);
    let mut hnl = Netlink::open()?;
    let has_uplink = hnl.link_index(&host_if)?.is_some();
    if !has_uplink && !uses_forwarding(host, sid)? {
        return Ok(());
    }
    let lock = host.lock()?;
    // Rules first, then the uplink, then the record: a crash in between
    // leaves the uplink or the record, so a sweep (which looks for them
    // before running `iptables`) finds the rules.
    let (_, left) = remove_host_rules_locked(&lock, sid);
    if !left.is_empty() {
        // Keep the uplink and the record: the next sweep tries again.
        return Err(NetError::Tool {
            message: format!(
                "cannot remove the host's iptables rules {}: run `tg destroy` again",
                left.join(", ")
            ),
            detail: String::new(),
        });
    }
    if has_uplink {
        hnl.delete_link(&host_if)?;
    }
    let alive = |u: &str| {
        hnl.link_index(&names::uplink_name(u))
            .is_ok_and(|i| i.is_some())
    };
    if host.release_forwarding(&lock, sid, alive)?.is_some() {
        remove_host_chain();
    }
    Ok(())
}

/// Remove the host's iptables rules tagged `tg-<sid>`; describe them. A
/// session with no uplink that is not a user of host forwarding has none
/// (rules are added after both and removed before them): then no
/// `iptables` runs, which keeps a sweep of a session without NAT free of
/// processes.
pub fn remove_host_rules(host: &Host, sid: &str) -> NetResult<Vec<String>> {
    if !uplink_exists(sid) && !uses_forwarding(host, sid)? {
        return Ok(Vec::new());
    }
    let lock = host.lock()?;
    Ok(remove_host_rules_locked(&lock, sid).0)
}

/// Remove the host's rules tagged `tg-<sid>`: those removed (described)
/// and those left (a table that could not be listed, a rule that could not
/// be deleted).
fn remove_host_rules_locked(_held: &HostLock, sid: &str) -> (Vec<String>, Vec<String>) {
    let tag = format!("--comment {}", names::rule_tag(sid));
    let (mut removed, mut left) = (Vec::new(), Vec::new());
    for table in ["nat", "filter"] {
        let Ok(rules) = iptables(None, &["-t", table, "-S"]) else {
            left.push(format!("of table `{table}` (it could not be listed)"));
            continue;
        };
        for rule in rules
            .lines()
            .filter(|l| l.starts_with("-A ") && l.contains(&tag))
        {
            let mut args: Vec<&str> = vec!["-t", table, "-D"];
            args.extend(rule.split_whitespace().skip(1));
            if iptables(None, &args).is_ok() {
                removed.push(format!("iptables rule `{rule}` ({table})"));
            } else {
                left.push(format!("`{rule}` ({table})"));
            }
        }
    }
    (removed, left)
}

/// Is session `sid` among the users of host forwarding (`forwarding.json`)?
fn uses_forwarding(host: &Host, sid: &str) -> NetResult<bool> {
    Ok(host
        .forwarding_record()?
        .is_some_and(|r| r.users.iter().any(|u| u == sid)))
}

/// Does the host have the session's uplink?
pub fn uplink_exists(sid: &str) -> bool {
    Netlink::open()
        .and_then(|mut nl| nl.link_index(&names::uplink_name(sid)))
        .is_ok_and(|i| i.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_networks_avoid_host_addresses() {
        let sid = "00000000";
        let first = pick_transfer(sid, &[]).unwrap();
        assert_eq!(first.to_string(), "100.127.0.0/30");
        let taken = [(Ipv4Addr::new(100, 127, 0, 1), 30)];
        assert_eq!(
            pick_transfer(sid, &taken).unwrap().to_string(),
            "100.127.0.4/30"
        );
        // A host route covering the whole pool leaves nothing.
        let all = [(Ipv4Addr::new(100, 64, 0, 1), 10)];
        assert!(pick_transfer(sid, &all).is_err());
        assert_eq!(transfer_slot("00004001"), 1);
    }

    #[test]
    fn host_rules_only_pass_the_sessions_own_traffic() {
        let rules = host_rules("tgu1", "100.127.0.4/30", "tg-abcd");
        for (_, _, r) in &rules {
            assert!(r.windows(2).any(|w| w == ["--comment", "tg-abcd"]), "{r:?}");
        }
        let accept_out = &rules[1].2;
        assert!(accept_out.windows(2).any(|w| w == ["-s", "100.127.0.4/30"]));
        assert!(accept_out.windows(3).any(|w| w == ["!", "-o", "tgu+"]));
        assert!(rules[2].2.windows(2).any(|w| w == ["-d", "100.127.0.4/30"]));
    }
}
