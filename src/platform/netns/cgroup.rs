//! Limits and device rules of netns nodes, with cgroups.
//!
//! A node's cgroup is `tg-<sid>-<id>` (`id` is the node's identity, see
//! `node`): under the cgroup v2 unified tree (`/sys/fs/cgroup` or, on
//! hybrid hosts, `/sys/fs/cgroup/unified`) when that tree offers the
//! controller, else under the v1 hierarchies `/sys/fs/cgroup/{cpu,memory,pids}`.
//! `cpus` becomes a CFS quota (`cpus` × 100 ms per 100 ms period), `memory`
//! a hard memory limit, `pids` a limit on processes and threads. A node
//! with limits also gets a v1 `devices` cgroup where the host has one:
//! only the usual devices (null, zero, full, random, urandom, tty, ptmx,
//! pts, tun) may be opened, so the node may keep `MKNOD` (see `sandbox`).
//! Nodes without limits get no cgroup at all: moving a process into a v1
//! cgroup costs about 10 ms, serialized across the host.
//!
//! The node's init joins these cgroups before it makes the node's cgroup
//! namespace, so the node sees its own cgroup as the root and cannot move
//! out of it; every process started in the node joins them too.
//!
//! This module does not start processes (see `exec`) and does nothing at
//! plan time but read which controllers exist ([`check`]).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::platform::{NodeSpec, PlatformError};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// CFS period used for `cpus` (100 ms).
const CFS_PERIOD_US: u64 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Controller {
    Cpu,
    Memory,
    Pids,
}

impl Controller {
    fn v1_name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Memory => "memory",
            Controller::Pids => "pids",
        }
    }
}

/// The devices a node may open (cgroup v1 `devices.allow` rules), after
/// `a` is denied: Docker's defaults. Creating any device file (`m`) is
/// allowed; opening one that is not listed is not.
const DEVICE_RULES: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

/// The v1 `devices` hierarchy, if this host has one.
fn devices_root(base: &Path) -> Option<PathBuf> {
    let d = base.join("devices");
    d.join("devices.allow").is_file().then_some(d)
}

/// Whether nodes get a devices cgroup here (and so may keep `MKNOD`).
pub fn has_devices() -> bool {
    devices_root(Path::new(CGROUP_ROOT)).is_some()
}

/// Where a controller lives on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tree {
    /// The v2 unified tree rooted here.
    V2(PathBuf),
    /// The v1 hierarchy mounted here.
    V1(PathBuf),
}

fn v2_root(base: &Path) -> Option<PathBuf> {
    let root = base;
    if root.join("cgroup.controllers").is_file() {
        Some(root.to_path_buf())
    } else if root.join("unified/cgroup.controllers").is_file() {
        Some(root.join("unified"))
    } else {
        None
    }
}

fn tree_for(base: &Path, c: Controller) -> Option<Tree> {
    if let Some(root) = v2_root(base) {
        let available = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if available.split_whitespace().any(|n| n == c.v1_name()) {
            return Some(Tree::V2(root));
        }
    }
    let v1 = base.join(c.v1_name());
    let probe = match c {
        Controller::Cpu => "cpu.cfs_quota_us",
        Controller::Memory => "memory.limit_in_bytes",
        Controller::Pids => "pids.max",
    };
    v1.join(probe).is_file().then_some(Tree::V1(v1))
}

/// The cgroup name of a node (`id`: its identity).
pub fn cgroup_name(sid: &str, id: &str) -> String {
    format!("tg-{sid}-{id}")
}

/// Plan time: warnings for limits that cannot be enforced on this host.
pub fn check(spec: &NodeSpec) -> Vec<String> {
    check_in(Path::new(CGROUP_ROOT), spec)
}

fn check_in(base: &Path, spec: &NodeSpec) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(cpus) = spec.cpus {
        if tree_for(base, Controller::Cpu).is_none() {
            warnings.push(format!(
                "`cpus = {cpus}` of node `{}` cannot be enforced: this host has no cgroup `cpu` \
                 controller (v1 or v2); the node runs without a CPU limit",
                spec.hostname
            ));
        }
    }
    if let Some(mib) = spec.memory_mib {
        if tree_for(base, Controller::Memory).is_none() {
            warnings.push(format!(
                "`memory = {mib} MiB` of node `{}` cannot be enforced: this host has no cgroup \
                 `memory` controller (v1 or v2); the node runs without a memory limit",
                spec.hostname
            ));
        }
    }
    if let Some(n) = spec.settings.pids {
        if tree_for(base, Controller::Pids).is_none() {
            warnings.push(format!(
                "`pids = {n}` of node `{}` cannot be enforced: this host has no cgroup \
                 `pids` controller (v1 or v2); the node runs without a process limit",
                spec.hostname
            ));
        }
    }
    warnings
}

/// Every existing cgroup folder of a node (v1 cpu, memory, pids,
/// devices, v2), deduplicated.
fn node_dirs(sid: &str, id: &str) -> Vec<PathBuf> {
    node_dirs_in(Path::new(CGROUP_ROOT), sid, id)
}

fn node_dirs_in(base: &Path, sid: &str, id: &str) -> Vec<PathBuf> {
    let name = cgroup_name(sid, id);
    let mut dirs = Vec::new();
    let mut candidates: Vec<PathBuf> = V1_HIERARCHIES
        .iter()
        .map(|h| base.join(h).join(&name))
        .collect();
    if let Some(root) = v2_root(base) {
        candidates.push(root.join(&name));
    }
    for d in candidates {
        if d.is_dir() && !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

/// The v1 hierarchies node cgroups may be in.
const V1_HIERARCHIES: [&str; 4] = ["cpu", "memory", "pids", "devices"];

/// Names of the nodes (their ids) of a session that have a cgroup.
pub fn session_cgroups(sid: &str) -> Vec<String> {
    let prefix = format!("tg-{sid}-");
    let mut roots: Vec<PathBuf> = V1_HIERARCHIES
        .iter()
        .map(|h| Path::new(CGROUP_ROOT).join(h))
        .collect();
    roots.extend(v2_root(Path::new(CGROUP_ROOT)));
    let mut names = Vec::new();
    for root in roots {
        let Ok(entries) = fs::read_dir(&root) else {
            continue;
        };
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(host) = n.strip_prefix(&prefix) {
                if !names.iter().any(|x| x == host) {
                    names.push(host.to_string());
                }
            }
        }
    }
    names
}

fn write(path: &Path, value: &str) -> Result<(), PlatformError> {
    fs::write(path, value).map_err(|e| {
        PlatformError::new(format!(
            "cannot write `{}` to `{}`: {e}",
            value.trim(),
            path.display()
        ))
    })
}

fn mkdir(dir: &Path) -> Result<(), PlatformError> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(PlatformError::new(format!(
            "cannot create cgroup `{}`: {e}",
            dir.display()
        ))),
    }
}

/// Enable a controller for the children of a v2 root, if not yet enabled.
fn enable_v2(root: &Path, c: Controller) -> Result<(), PlatformError> {
    let control = root.join("cgroup.subtree_control");
    let current = fs::read_to_string(&control).unwrap_or_default();
    if current.split_whitespace().any(|n| n == c.v1_name()) {
        return Ok(());
    }
    write(&control, &format!("+{}", c.v1_name()))
}

/// Make the node's devices cgroup (v1, where the host has it): deny
/// every device but [`DEVICE_RULES`]. Returns whether it exists.
pub fn apply_devices(sid: &str, id: &str) -> Result<bool, PlatformError> {
    apply_devices_in(Path::new(CGROUP_ROOT), sid, id)
}

fn apply_devices_in(base: &Path, sid: &str, id: &str) -> Result<bool, PlatformError> {
    let Some(root) = devices_root(base) else {
        return Ok(false);
    };
    let dir = root.join(cgroup_name(sid, id));
    mkdir(&dir)?;
    write(&dir.join("devices.deny"), "a")?;
    for rule in DEVICE_RULES {
        write(&dir.join("devices.allow"), rule)?;
    }
    Ok(true)
}

/// Create or update the node's cgroups to match `spec` (limits that are
/// no longer asked for are lifted). Limits whose controller is missing are
/// skipped ([`check`] warned about them at plan time). `id` is the node's
/// identity.
pub fn apply(sid: &str, id: &str, spec: &NodeSpec) -> Result<(), PlatformError> {
    apply_in(Path::new(CGROUP_ROOT), sid, id, spec)
}

fn apply_in(base: &Path, sid: &str, id: &str, spec: &NodeSpec) -> Result<(), PlatformError> {
    let name = cgroup_name(sid, id);
    if let Some(tree) = tree_for(base, Controller::Cpu) {
        let quota = spec
            .cpus
            .filter(|c| c.is_finite() && *c > 0.0)
            .map(|c| ((c * CFS_PERIOD_US as f64).round() as u64).max(1000));
        match (&tree, quota) {
            (Tree::V1(root), Some(q)) => {
                let dir = root.join(&name);
                mkdir(&dir)?;
                write(&dir.join("cpu.cfs_period_us"), &CFS_PERIOD_US.to_string())?;
                write(&dir.join("cpu.cfs_quota_us"), &q.to_string())?;
            }
            (Tree::V1(root), None) => {
                let dir = root.join(&name);
                if dir.is_dir() {
                    write(&dir.join("cpu.cfs_quota_us"), "-1")?;
                }
            }
            (Tree::V2(root), q) => {
                let dir = root.join(&name);
                if q.is_some() || dir.is_dir() {
                    enable_v2(root, Controller::Cpu)?;
                    mkdir(&dir)?;
                    let value = match q {
                        Some(q) => format!("{q} {CFS_PERIOD_US}"),
                        None => format!("max {CFS_PERIOD_US}"),
                    };
                    write(&dir.join("cpu.max"), &value)?;
                }
            }
        }
    }
    if let Some(tree) = tree_for(base, Controller::Memory) {
        let bytes = spec.memory_mib.map(|m| m.saturating_mul(1024 * 1024));
        match (&tree, bytes) {
            (Tree::V1(root), Some(b)) => {
                let dir = root.join(&name);
                mkdir(&dir)?;
                write(&dir.join("memory.limit_in_bytes"), &b.to_string())?;
            }
            (Tree::V1(root), None) => {
                let dir = root.join(&name);
                if dir.is_dir() {
                    write(&dir.join("memory.limit_in_bytes"), "-1")?;
                }
            }
            (Tree::V2(root), b) => {
                let dir = root.join(&name);
                if b.is_some() || dir.is_dir() {
                    enable_v2(root, Controller::Memory)?;
                    mkdir(&dir)?;
                    let value = b.map_or_else(|| "max".to_string(), |b| b.to_string());
                    write(&dir.join("memory.max"), &value)?;
                }
            }
        }
    }
    if let Some(tree) = tree_for(base, Controller::Pids) {
        let (root, pids) = match &tree {
            Tree::V1(r) | Tree::V2(r) => (r, spec.settings.pids),
        };
        let dir = root.join(&name);
        if pids.is_some() || dir.is_dir() {
            if let Tree::V2(r) = &tree {
                enable_v2(r, Controller::Pids)?;
            }
            mkdir(&dir)?;
            let value = pids.map_or_else(|| "max".to_string(), |n| n.max(1).to_string());
            write(&dir.join("pids.max"), &value)?;
        }
    }
    Ok(())
}

/// The `cgroup.procs` files of the node's cgroups (for its init to join).
pub fn procs_paths(sid: &str, id: &str) -> Vec<PathBuf> {
    node_dirs(sid, id)
        .into_iter()
        .map(|d| d.join("cgroup.procs"))
        .collect()
}

/// Open the `cgroup.procs` files of the node's cgroups for writing, so a
/// child can move itself in by writing `0` (what `exec` does).
pub(crate) fn procs_files(sid: &str, id: &str) -> Vec<fs::File> {
    node_dirs(sid, id)
        .into_iter()
        .filter_map(|d| {
            fs::OpenOptions::new()
                .write(true)
                .open(d.join("cgroup.procs"))
                .ok()
        })
        .collect()
}

/// Move process `pid` into the node's cgroups (none when the node has no limits).
pub fn join(sid: &str, id: &str, pid: u32) -> Result<(), PlatformError> {
    for d in node_dirs(sid, id) {
        let procs = d.join("cgroup.procs");
        fs::OpenOptions::new()
            .write(true)
            .open(&procs)
            .and_then(|mut f| f.write_all(pid.to_string().as_bytes()))
            .map_err(|e| {
                PlatformError::new(format!(
                    "cannot move process {pid} into cgroup `{}`: {e}",
                    d.display()
                ))
            })?;
    }
    Ok(())
}

/// SIGKILL every process in the node's cgroups; true when there was one.
pub(crate) fn kill_all(sid: &str, id: &str) -> bool {
    let mut found = false;
    for d in node_dirs(sid, id) {
        let text = fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
        for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: sending a signal.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            found = true;
        }
    }
    found
}

/// Remove the node's cgroups; fine when they are gone. A cgroup whose
/// last process is still exiting is busy for a moment: tried again for a
/// short while.
pub fn remove(sid: &str, id: &str) {
    for d in node_dirs(sid, id) {
        for _ in 0..200 {
            match fs::remove_dir(&d) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(cgroup_name("0123abcd", "web-0"), "tg-0123abcd-web-0");
    }

    fn spec(cpus: Option<f64>, memory_mib: Option<u64>) -> NodeSpec {
        NodeSpec {
            settings: Default::default(),
            host: None,
            hostname: "web".into(),
            image: "host".into(),
            cpus,
            memory_mib,
            labels: Default::default(),
            interfaces: Vec::new(),
        }
    }

    fn read(p: &Path) -> String {
        fs::read_to_string(p).unwrap().trim().to_string()
    }

    #[test]
    fn missing_controllers_give_warnings() {
        let base = tempfile::tempdir().unwrap();
        let w = check_in(base.path(), &spec(Some(1.5), Some(256)));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("`cpus = 1.5` of node `web` cannot be enforced"),
            "{w:?}"
        );
        assert!(w[1].contains("`memory = 256 MiB`"), "{w:?}");
        assert!(check_in(base.path(), &spec(None, None)).is_empty());
        // Asked for nothing missing: no warning, and apply does nothing.
        apply_in(base.path(), "s", "web", &spec(Some(1.0), Some(1))).unwrap();
        assert!(node_dirs_in(base.path(), "s", "web").is_empty());
    }

    #[test]
    fn v1_limits() {
        let base = tempfile::tempdir().unwrap();
        fs::create_dir_all(base.path().join("cpu")).unwrap();
        fs::create_dir_all(base.path().join("memory")).unwrap();
        fs::write(base.path().join("cpu/cpu.cfs_quota_us"), "-1").unwrap();
        fs::write(base.path().join("memory/memory.limit_in_bytes"), "0").unwrap();
        assert!(check_in(base.path(), &spec(Some(2.0), Some(64))).is_empty());
        apply_in(base.path(), "s1", "web", &spec(Some(0.25), Some(64))).unwrap();
        let cpu = base.path().join("cpu/tg-s1-web");
        let mem = base.path().join("memory/tg-s1-web");
        assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "25000");
        assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(&mem.join("memory.limit_in_bytes")), "67108864");
        assert_eq!(
            node_dirs_in(base.path(), "s1", "web"),
            vec![cpu.clone(), mem.clone()]
        );
        // Lifting limits.
        apply_in(base.path(), "s1", "web", &spec(None, None)).unwrap();
        assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "-1");
        assert_eq!(read(&mem.join("memory.limit_in_bytes")), "-1");
    }

    #[test]
    fn v2_limits_are_preferred_when_the_unified_tree_has_them() {
        let base = tempfile::tempdir().unwrap();
        let unified = base.path().join("unified");
        fs::create_dir_all(&unified).unwrap();
        fs::write(
            unified.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        fs::write(unified.join("cgroup.subtree_control"), "").unwrap();
        // v1 memory exists too; v2 wins.
        fs::create_dir_all(base.path().join("memory")).unwrap();
        fs::write(base.path().join("memory/memory.limit_in_bytes"), "0").unwrap();
        apply_in(base.path(), "s2", "web", &spec(Some(1.5), Some(1))).unwrap();
        let dir = unified.join("tg-s2-web");
        assert_eq!(read(&dir.join("cpu.max")), "150000 100000");
        assert_eq!(read(&dir.join("memory.max")), "1048576");
        assert!(!base.path().join("memory/tg-s2-web").exists());
        // The fake subtree_control is a plain file: the last write (pids, the
        // last controller enabled) wins.
        assert_eq!(read(&unified.join("cgroup.subtree_control")), "+pids");
        apply_in(base.path(), "s2", "web", &spec(None, None)).unwrap();
        assert_eq!(read(&dir.join("cpu.max")), "max 100000");
        assert_eq!(read(&dir.join("memory.max")), "max");
    }

    #[test]
    fn devices_deny_all_but_the_usual() {
        let base = tempfile::tempdir().unwrap();
        assert!(!apply_devices_in(base.path(), "s3", "n").unwrap());
        fs::create_dir_all(base.path().join("devices")).unwrap();
        fs::write(base.path().join("devices/devices.allow"), "").unwrap();
        assert!(apply_devices_in(base.path(), "s3", "n").unwrap());
        let dir = base.path().join("devices/tg-s3-n");
        assert_eq!(read(&dir.join("devices.deny")), "a");
        // The fake file keeps the last rule written.
        assert_eq!(read(&dir.join("devices.allow")), "c 10:200 rwm");
    }
}
