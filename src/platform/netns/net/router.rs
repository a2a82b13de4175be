//! The session's router namespace: a persisted network namespace (no
//! process) at `<run_dir>/<sid>/netns/router` that holds the session's
//! bridges, and `session.json` beside it, which `tg proxy` finds sessions
//! by.
//!
//! The router's folder is a shared bind mount of itself (as iproute2 does
//! for `/run/netns`), so unmounting the namespace file also unmounts its
//! copies in mount namespaces made later.
//!
//! Not here: the bridges and rules inside the router (`links`), its uplink
//! to the host (`nat`).

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use serde::{Deserialize, Serialize};

use super::codec::{Rule, RuleDoes, RT_TABLE_LOCAL};
use super::host::Host;
use super::mounts::{is_mount_point, make_shared_mount_point};
use super::socket::Netlink;
use super::{io_err, nix_err, NetError, NetResult};
use crate::files;
use crate::platform::netns::locks::SessionHeld;
use crate::platform::netns::names;
use crate::platform::SessionRef;

/// Where the router's `local` table is looked up (moved from 0, so that
/// the per-network rules of `links` come first).
pub(super) const LOCAL_RULE_PREF: u32 = 32000;

/// What `session.json` in the session's runtime folder records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionRecord {
    pub name: String,
    pub lineage: String,
    pub testbed_dir: PathBuf,
    pub sid: String,
}

/// The session's router network namespace file.
pub fn router_netns_path(run_dir: &Path, sid: &str) -> PathBuf {
    names::router_netns_path(run_dir, sid)
}

/// The sessions with runtime data under `run_dir` whose name is `name`.
pub fn find_sessions(run_dir: &Path, name: &str) -> Vec<SessionRecord> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(run_dir) else {
        return found;
    };
    for e in entries.flatten() {
        let Ok(text) = fs::read_to_string(e.path().join("session.json")) else {
            continue;
        };
        if let Ok(rec) = serde_json::from_str::<SessionRecord>(&text) {
            if rec.name == name {
                found.push(rec);
            }
        }
    }
    found.sort_by(|a, b| a.sid.cmp(&b.sid));
    found
}

/// Is `path` a persisted namespace (an nsfs bind mount)?
// The width of `f_type` differs between architectures.
#[allow(clippy::unnecessary_cast)]
pub fn is_ns_file(path: &Path) -> bool {
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type().0 as i64 == NSFS_MAGIC)
        .unwrap_or(false)
}

/// Does the session's router namespace exist?
pub fn router_exists(run_dir: &Path, sid: &str) -> bool {
    is_ns_file(&router_netns_path(run_dir, sid))
}

/// Make the session's router namespace unless it exists: forwarding off,
/// `lo` up, `session.json` written. Returns its path.
pub(super) fn ensure_router(
    _held: &SessionHeld,
    run_dir: &Path,
    session: &SessionRef,
    sid: &str,
) -> NetResult<PathBuf> {
    let path = router_netns_path(run_dir, sid);
    if is_ns_file(&path) {
        if !names::session_file(run_dir, sid).exists() {
            write_session_record(run_dir, session, sid)?;
        }
        return Ok(path);
    }
    let dir = names::router_dir(run_dir, sid);
    files::create_dir_all(&dir, files::DIR_MODE)
        .map_err(io_err(format!("cannot create `{}`", dir.display())))?;
    make_shared_mount_point(&dir)?;
    // A leftover plain file (crash between create and mount) is reused.
    files::write(&path, b"", 0o444)
        .map_err(io_err(format!("cannot create `{}`", path.display())))?;
    let p = path.clone();
    std::thread::scope(|s| {
        s.spawn(move || -> NetResult<()> {
            unshare(CloneFlags::CLONE_NEWNET)
                .map_err(nix_err("cannot make a network namespace"))?;
            let own = PathBuf::from("/proc/thread-self/ns/net");
            mount(Some(&own), &p, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(
                nix_err(format!(
                    "cannot bind the router namespace to `{}`",
                    p.display()
                )),
            )?;
            // A new namespace may inherit the host's IPv4 settings (see
            // `net.core.devconf_inherit_init_net`): force forwarding off.
            fs::write("/proc/sys/net/ipv4/ip_forward", "0")
                .map_err(io_err("cannot turn forwarding off in the router namespace"))?;
            // With `br_netfilter` loaded, bridged frames would cross the
            // router's iptables FORWARD chain (DROP once NAT is on).
            let bnf = Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables");
            if bnf.exists() {
                let _ = fs::write(bnf, "0");
            }
            super::no_ipv6_on_new_links().map_err(NetError::Missing)?;
            let mut nl = Netlink::open()?;
            nl.set_up_by_name("lo")?;
            // Local delivery is looked up after the per-network rules (see
            // `links`), not before them.
            let local = |priority| Rule {
                priority,
                iif: None,
                dst: None,
                does: RuleDoes::Lookup(RT_TABLE_LOCAL),
            };
            nl.rule(true, &local(LOCAL_RULE_PREF))?;
            nl.rule(false, &local(0))?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(NetError::Missing("router setup thread panicked".into())))
    })
    .inspect_err(|_| {
        let _ = umount2(&path, MntFlags::MNT_DETACH);
        let _ = fs::remove_file(&path);
    })?;
    write_session_record(run_dir, session, sid)?;
    Ok(path)
}

/// Write `session.json` (what `tg proxy` looks sessions up by).
fn write_session_record(run_dir: &Path, session: &SessionRef, sid: &str) -> NetResult<()> {
    let record = SessionRecord {
        name: session.name.clone(),
        lineage: session.lineage.clone(),
        testbed_dir: session.testbed_dir.clone(),
        sid: sid.to_string(),
    };
    let file = names::session_file(run_dir, sid);
    let text = serde_json::to_string_pretty(&record).unwrap_or_default();
    files::write(&file, text.as_bytes(), files::FILE_MODE)
        .map_err(io_err(format!("cannot write `{}`", file.display())))
}

/// Remove the session's router namespace (and everything in it: bridges
/// and router-side veths), the host side of its uplink, and its
/// `session.json`. Idempotent. Returns whether the router existed.
pub fn remove_router(host: &Host, run_dir: &Path, sid: &str) -> NetResult<bool> {
    let path = router_netns_path(run_dir, sid);
    let dir = names::router_dir(run_dir, sid);
    let existed = path.exists();
    super::nat::remove_uplink_host_side(host, sid)?;
    if is_ns_file(&path) {
        umount2(&path, MntFlags::MNT_DETACH)
            .map_err(nix_err(format!("cannot unmount `{}`", path.display())))?;
    }
    let _ = fs::remove_file(&path);
    while is_mount_point(&dir) {
        if umount2(&dir, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
    let _ = fs::remove_dir(&dir);
    let _ = fs::remove_file(names::session_file(run_dir, sid));
    Ok(existed)
}
