//! Removing what a session left on the host: every host object of a
//! session (every complete destroy runs it, so a destroy after a crash
//! finds what the crash left), and its runtime folder once
//! nothing is left in it.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};

use super::{locks, names, net, node, NetnsPlatform};
use crate::platform::{PlatformError, PlatformResult};

impl NetnsPlatform {
    /// Once the session has no router and no node left, remove its
    /// runtime folder (never when anything is mounted under it). Only the
    /// session's own folders: a node's delete removes its init and
    /// cgroups, and a create that fails ends the init it started, so
    /// nothing of the session runs once its node folders are gone. What a
    /// kill at the wrong moment or an older tg left on the host (an init
    /// whose folder is gone, cgroups, pinned namespaces) is for
    /// [`Self::sweep_sid`], which every complete destroy runs (`tg destroy`,
    /// `tg session delete -destroy`).
    /// Scanning `/proc` and every cgroup hierarchy here too cost a destroy
    /// as much again.
    pub(super) fn tidy_session_dir(&self, _held: &locks::SessionHeld, sid: &str) {
        let run_dir = &self.options.run_dir;
        let sdir = names::session_dir(run_dir, sid);
        if net::router_exists(run_dir, sid) || !dir_names(&sdir.join("nodes")).is_empty() {
            return;
        }
        node::remove_session_folders(&sdir);
        if net::mount_points_under(&sdir).is_empty() {
            let _ = remove_tree_same_fs(&sdir);
        }
    }

    /// Remove every host object of session `sid`; describe what went.
    /// Best effort: a failure does not stop the rest; the error lists
    /// every failure and what was removed.
    pub fn sweep_sid(&self, sid: &str) -> PlatformResult<Vec<String>> {
        let run_dir = &self.options.run_dir;
        let sdir = names::session_dir(run_dir, sid);
        let prefix = names::session_prefix(sid);
        let mut removed = Vec::new();
        let mut problems: Vec<String> = Vec::new();
        let mut note = |e: PlatformError| {
            problems.push(match &e.detail {
                Some(d) if !d.is_empty() => format!("{e}: {d}"),
                _ => e.to_string(),
            })
        };

        let host = self.host();
        // Router-side veths first, so no link outlives its node.
        let links = net::existing_links(run_dir, sid).unwrap_or_default();
        let veths: Vec<String> = links
            .iter()
            .filter(|l| l.starts_with("tgv"))
            .cloned()
            .collect();
        if let Err(e) = net::detach(run_dir, sid, &veths) {
            note(e.into());
        }
        // Nodes: known by their runtime folders (and what an older tg
        // left: pinned namespaces, cgroups).
        match node::sweep_session_nodes(run_dir, sid) {
            Ok(nodes) => removed.extend(nodes.iter().map(|n| format!("node `{n}`"))),
            Err(e) => note(e),
        }
        for cg in cgroup_dirs(&prefix) {
            let _ = fs::remove_dir(&cg);
        }
        let netns_files: Vec<String> = dir_names(Path::new("/run/netns"))
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
            .collect();
        for l in links.iter().filter(|l| l.starts_with("tgb")) {
            removed.push(format!("bridge `{l}`"));
        }
        let had_uplink = net::uplink_exists(sid);
        match net::remove_router(&host, run_dir, sid) {
            Ok(true) => removed.push(format!(
                "router namespace `{}`",
                names::router_netns_name(sid)
            )),
            Ok(false) => {}
            Err(e) => note(e.into()),
        }
        if had_uplink {
            removed.push(format!("uplink `{}`", names::uplink_name(sid)));
        }
        // Rules left without an uplink, and the session's use of host
        // forwarding (a crash may have left either).
        match net::remove_host_rules(&host, sid) {
            Ok(rules) => removed.extend(rules),
            Err(e) => note(e.into()),
        }
        if let Err(e) = net::nat::remove_uplink_host_side(&host, sid) {
            note(e.into());
        }
        for n in &netns_files {
            let p = Path::new("/run/netns").join(n);
            if p.exists() {
                let _ = umount2(&p, MntFlags::MNT_DETACH);
                let _ = fs::remove_file(&p);
                removed.push(format!("namespace `{n}`"));
            }
        }
        for m in net::mount_points_under(&sdir) {
            if umount2(&m, MntFlags::MNT_DETACH).is_ok() {
                removed.push(format!("mount `{}`", m.display()));
            }
        }
        if sdir.exists() {
            match remove_tree_same_fs(&sdir) {
                Ok(()) => removed.push(format!("runtime folder `{}`", sdir.display())),
                Err(e) => note(PlatformError::new(format!(
                    "cannot remove `{}`: {e}",
                    sdir.display()
                ))),
            }
        }
        if problems.is_empty() {
            return Ok(removed);
        }
        let mut detail = problems.join("\n");
        if !removed.is_empty() {
            detail.push_str("\nremoved: ");
            detail.push_str(&removed.join(", "));
        }
        Err(PlatformError::new(format!(
            "could not remove everything of session `{sid}`: {}{}",
            problems[0],
            match problems.len() {
                1 => String::new(),
                n => format!(" (and {} more problems)", n - 1),
            }
        ))
        .with_detail(detail))
    }
}

/// Names of the entries of `dir` (none when it cannot be read).
pub(super) fn dir_names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Cgroup folders named `prefix*` under `/sys/fs/cgroup` (v2) and its v1
/// controller hierarchies.
pub(super) fn cgroup_dirs(prefix: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut roots = vec![root.to_path_buf()];
    roots.extend(dir_names(root).into_iter().map(|n| root.join(n)));
    let mut found = Vec::new();
    for r in roots {
        for n in dir_names(&r) {
            if n.starts_with(prefix) {
                found.push(r.join(n));
            }
        }
    }
    found
}

/// Remove `root` recursively without ever crossing into another file
/// system (a mount left behind must not lose its files).
pub(super) fn remove_tree_same_fs(root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dev = fs::symlink_metadata(root)?.dev();
    pub(super) fn walk(p: &Path, dev: u64) -> std::io::Result<()> {
        let meta = fs::symlink_metadata(p)?;
        if meta.is_dir() {
            if meta.dev() != dev {
                return Err(std::io::Error::other(format!(
                    "`{}` is still a mount point",
                    p.display()
                )));
            }
            for e in fs::read_dir(p)? {
                walk(&e?.path(), dev)?;
            }
            fs::remove_dir(p)
        } else {
            fs::remove_file(p)
        }
    }
    walk(root, dev)
}
