//! A node's lifetime: its init process, its namespaces and its overlay root
//! filesystem.
//!
//! A node is one resident process, `tg-init` (see `init`), PID 1 of the
//! node's own PID namespace, in the node's mount, network, UTS, IPC and
//! cgroup namespaces. Its namespaces live as long as it does: nothing is
//! pinned on the host, and `tg destroy` kills it, which ends every process
//! of the node whatever namespaces they made.
//!
//! A node is known by its `id` (recorded in the node's `private` value,
//! independent of its hostname, so a hostname can change in place):
//! everything of it lives in `<run_dir>/<sid>/nodes/<id>/`: the overlay's
//! upper and work layers (everything the node wrote), and `node.json`,
//! which records the init's PID and start time. `nodes` is a tmpfs (one
//! host mount per session, unless `run_dir` is on one already). A node is found again by
//! opening a pidfd for that PID and checking the start time, so a reused
//! PID is never taken for the node.
//!
//! Before the init starts, the upper layer gets `/etc/hostname` and mount
//! points the image lacks. The masks of host secrets the image holds
//! (`sandbox::masks_under`: an opaque empty folder, a whiteout, or a copy
//! of the shadow files with every password locked) are a read-only layer
//! of their own between the image and the upper layer, made once per
//! session and image in `<run_dir>/<sid>/masks/<hash>/`: no file per
//! node. `masks` is a small tmpfs (one host mount per session): overlayfs
//! refuses a layer inside another layer's file system tree, and the `host`
//! image's layer is `/`.
//!
//! This module does not add network interfaces (see `net`), does not build
//! images (see `image`) and does not run commands inside nodes (see `exec`).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::init::InitPlan;
use super::locks::SessionLock;
use super::sandbox::{self, Mask};
use super::{cgroup, image, names, seccomp, sshd, NetnsOptions};
use crate::files;
use crate::platform::{NodeSpec, PlatformError};

/// Where everything of one node lives on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePaths {
    /// The session tag the node belongs to.
    pub sid: String,
    /// The node's identity (see the module's description).
    pub id: String,
    /// `<run_dir>/<sid>/nodes/<id>`: the node's own folder.
    pub dir: PathBuf,
    /// The overlay's upper layer: everything the node wrote.
    pub upper: PathBuf,
    /// The overlay's work folder.
    pub work: PathBuf,
    /// Where the overlay is mounted inside the node's mount namespace before
    /// it becomes `/` (empty on the host).
    pub merged: PathBuf,
    /// The session's hosts file, bound to `/etc/hosts` in the node.
    pub hosts: PathBuf,
    /// `node.json`: the init's PID and start time.
    pub record: PathBuf,
}

/// What `node.json` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: String,
    pub hostname: String,
    /// The init's PID on the host.
    pub pid: i32,
    /// Its start time (clock ticks after boot, `/proc/PID/stat` field 22).
    pub start: u64,
    pub privileged: bool,
    /// Whether the node has a devices cgroup (and so `MKNOD`).
    pub devices: bool,
    /// The host public key of the node's SSH server, when it has one (see
    /// `sshd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_host_key: Option<String>,
}

/// The paths of a node (pure: touches nothing).
pub fn node_paths(run_dir: &Path, sid: &str, id: &str) -> NodePaths {
    let session = run_dir.join(sid);
    let dir = session.join("nodes").join(id);
    NodePaths {
        sid: sid.to_string(),
        id: id.to_string(),
        upper: dir.join("upper"),
        work: dir.join("work"),
        merged: dir.join("merged"),
        record: dir.join("node.json"),
        hosts: session.join("hosts"),
        dir,
    }
}

/// A new node identity: 12 hex digits.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// Is `id` a node identity (what [`new_id`] makes, or a hostname of a node
/// recorded before identities existed)?
pub fn check_id(id: &str) -> Result<(), String> {
    if !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Ok(())
    } else {
        Err(format!("`{id}` is not a node identity"))
    }
}

/// A running node: its record and a pidfd of its init.
#[derive(Debug)]
pub struct Node {
    pub paths: NodePaths,
    pub record: NodeRecord,
    pidfd: OwnedFd,
}

impl Node {
    /// The running node at `paths`, or `None` when its init is gone.
    pub fn open(paths: &NodePaths) -> Option<Node> {
        let text = fs::read_to_string(&paths.record).ok()?;
        let record: NodeRecord = serde_json::from_str(&text).ok()?;
        let pidfd = pidfd_open(record.pid)?;
        // The PID may have been reused: the start time tells.
        match proc_start(record.pid) {
            Some((start, state)) if start == record.start && state != 'Z' && state != 'X' => {}
            _ => return None,
        }
        Some(Node {
            paths: paths.clone(),
            record,
            pidfd,
        })
    }

    /// The init's PID on the host.
    pub fn pid(&self) -> i32 {
        self.record.pid
    }

    /// A pidfd of the init (to `setns` into its namespaces).
    pub fn pidfd(&self) -> RawFd {
        self.pidfd.as_raw_fd()
    }

    /// Whether the init still runs.
    pub fn alive(&self) -> bool {
        !pidfd_exited(&self.pidfd, 0)
    }

    /// Set the node's hostname (UTS namespace and `/etc/hostname`).
    pub fn set_hostname(&self, hostname: &str) -> Result<(), PlatformError> {
        let pidfd = self.pidfd.as_raw_fd();
        let name = hostname.to_string();
        std::thread::scope(|s| {
            s.spawn(move || -> std::io::Result<()> {
                // SAFETY: setns of this short-lived thread only (the UTS
                // namespace is per thread), then sethostname.
                unsafe {
                    if libc::setns(pidfd, libc::CLONE_NEWUTS) != 0
                        || libc::sethostname(name.as_ptr().cast(), name.len()) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("thread panicked")))
        })
        .map_err(|e| {
            PlatformError::new(format!(
                "cannot set the hostname of node `{}` to `{hostname}`: {e}",
                self.record.hostname
            ))
        })?;
        let f = self
            .open_inside(
                "etc/hostname",
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
            )
            .map_err(|e| {
                PlatformError::new(format!(
                    "cannot write `/etc/hostname` of node `{hostname}`: {e}"
                ))
            })?;
        (&f).write_all(format!("{hostname}\n").as_bytes())
            .map_err(|e| PlatformError::new(format!("cannot write `/etc/hostname`: {e}")))?;
        let mut record = self.record.clone();
        record.hostname = hostname.to_string();
        write_record(&self.paths, &record)
    }

    /// Open `rel` (relative to the node's `/`) from the host, resolving
    /// every link inside the node's root, never on the host.
    pub fn open_inside(&self, rel: &str, flags: libc::c_int) -> std::io::Result<fs::File> {
        let root = CString::new(format!("/proc/{}/root", self.record.pid))
            .map_err(std::io::Error::other)?;
        let rel = CString::new(rel).map_err(std::io::Error::other)?;
        // SAFETY: open and openat2 with valid strings; the fds are owned below.
        unsafe {
            let dir = libc::open(
                root.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            if dir < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let dir = OwnedFd::from_raw_fd(dir);
            let mut how: libc::open_how = std::mem::zeroed();
            how.flags = (flags | libc::O_CLOEXEC | libc::O_NOCTTY) as u64;
            if flags & libc::O_CREAT != 0 {
                how.mode = 0o644;
            }
            how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
            let fd = libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                rel.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            );
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The node must not have died (and its PID been reused) in between.
            if pidfd_exited(&self.pidfd, 0) {
                libc::close(fd as RawFd);
                return Err(std::io::Error::other("the node's init ended"));
            }
            Ok(fs::File::from_raw_fd(fd as RawFd))
        }
    }
}

/// The running node of session `sid` whose hostname is `hostname` (for
/// callers that do not know its identity).
pub fn find_by_hostname(run_dir: &Path, sid: &str, hostname: &str) -> Option<Node> {
    let nodes = run_dir.join(sid).join("nodes");
    // A node recorded before identities existed is named by its hostname.
    if let Some(n) = Node::open(&node_paths(run_dir, sid, hostname)) {
        return Some(n);
    }
    fs::read_dir(nodes).ok()?.flatten().find_map(|e| {
        let id = e.file_name().to_string_lossy().into_owned();
        check_id(&id).ok()?;
        let n = Node::open(&node_paths(run_dir, sid, &id))?;
        (n.record.hostname == hostname).then_some(n)
    })
}

/// Whether the node's init runs.
pub fn node_exists(paths: &NodePaths) -> bool {
    Node::open(paths).is_some()
}

/// How a node is made.
pub struct NodeOptions<'a> {
    pub id: &'a str,
    /// Host paths the node must not see (tg's own secrets), besides
    /// [`sandbox::HOST_SECRETS`].
    pub secrets: &'a [PathBuf],
    /// The program run as the node's init.
    pub init: &'a Path,
    /// `Some` when the node runs an SSH server if its image has one: the
    /// session's client key it accepts (if any).
    pub ssh: Option<Option<&'a str>>,
    /// The seccomp filters of an unprivileged node, installed by its init.
    pub filters: Option<&'a seccomp::Filters>,
}

/// Make a node: init, namespaces, root filesystem, hostname, `lo` up, its
/// cgroups (limits of `spec`, devices). A half-made node of the same id is
/// deleted first. No network interface but `lo` is added. `session` is
/// the session's lock, taken while its folders are set up.
pub fn create_node(
    session: &SessionLock,
    opts: &NetnsOptions,
    sid: &str,
    spec: &NodeSpec,
    node: &NodeOptions,
) -> Result<Node, PlatformError> {
    names::check_sid(sid).map_err(PlatformError::new)?;
    names::check_hostname(&spec.hostname).map_err(PlatformError::new)?;
    check_id(node.id).map_err(PlatformError::new)?;
    let lower = image::resolve(&spec.image, &opts.image_dir, &|_| {})?;
    let paths = node_paths(&opts.run_dir, sid, node.id);
    for p in [&lower, &paths.dir] {
        check_overlay_path(p)?;
    }
    if paths.dir.exists() {
        delete_node(&paths)?;
    }
    ensure_session(session, &opts.run_dir, sid)?;
    let privileged = spec.settings.privileged;
    let mut secrets: Vec<PathBuf> = sandbox::HOST_SECRETS.iter().map(PathBuf::from).collect();
    secrets.extend(node.secrets.iter().cloned());
    let masks = mask_layer(session, &opts.run_dir, sid, &lower, &secrets)?;
    let result = (|| {
        prepare_dirs(&paths, &lower, &spec.hostname)?;
        // Moving a process into a cgroup v1 costs ~10 ms, serialized host
        // wide: a node gets cgroups (and so a devices cgroup, and `MKNOD`)
        // only when it has limits.
        let limited =
            spec.cpus.is_some() || spec.memory_mib.is_some() || spec.settings.pids.is_some();
        let devices =
            limited && !privileged && opts.sandbox && cgroup::apply_devices(sid, node.id)?;
        // A new node (a new id) has no cgroup to reset: without limits
        // there is nothing to make, and nothing for its init to join.
        if limited {
            cgroup::apply(sid, node.id, spec)?;
        }
        let caps = (!privileged && opts.sandbox).then(|| sandbox::node_caps(devices));
        let ssh_dir = paths.dir.join("ssh");
        let ssh_host_key = match node.ssh {
            Some(client_key) if sshd::image_has_sshd(&lower) => {
                Some(sshd::write_files(&ssh_dir, &spec.hostname, client_key)?)
            }
            _ => None,
        };
        let plan = InitPlan {
            hostname: spec.hostname.clone(),
            lower: match &masks {
                Some(m) => PathBuf::from(format!("{}:{}", m.display(), lower.display())),
                None => lower.clone(),
            },
            upper: paths.upper.clone(),
            work: paths.work.clone(),
            merged: paths.merged.clone(),
            hosts: paths.hosts.clone(),
            cgroups: if limited {
                cgroup::procs_paths(sid, node.id)
            } else {
                Vec::new()
            },
            caps,
            ssh: ssh_host_key.as_ref().map(|_| ssh_dir.clone()),
            seccomp: match (caps, node.filters) {
                (Some(_), Some(f)) => f.pack(),
                _ => Vec::new(),
            },
        };
        let (pid, start) = super::launch::start_init(node.init, &plan, &spec.hostname)?;
        let record = NodeRecord {
            id: node.id.to_string(),
            hostname: spec.hostname.clone(),
            pid,
            start,
            privileged,
            devices,
            ssh_host_key,
        };
        let text = serde_json::to_string(&record).unwrap_or_default();
        if let Err(e) = files::write(&paths.record, text.as_bytes(), files::FILE_MODE) {
            // Without its record no delete knows this init: end it here
            // (and reap it: it is our child).
            end_init(pid);
            let mut status = 0;
            // SAFETY: waiting for our own child.
            unsafe {
                libc::waitpid(pid, &mut status, libc::WNOHANG);
            }
            return Err(io_error("write", &paths.record, e));
        }
        Node::open(&paths).ok_or_else(|| {
            PlatformError::new(format!(
                "cannot create node `{}`: its init ended right after it started",
                spec.hostname
            ))
        })
    })();
    if result.is_err() {
        let _ = delete_node(&paths);
    }
    result
}

fn write_record(paths: &NodePaths, record: &NodeRecord) -> Result<(), PlatformError> {
    let text = serde_json::to_string(record).unwrap_or_default();
    let tmp = paths.dir.join("node.json.new");
    files::write(&tmp, text.as_bytes(), files::FILE_MODE)
        .and_then(|()| fs::rename(&tmp, &paths.record))
        .map_err(|e| io_error("write", &paths.record, e))
}

/// Delete a node: kill its init (the kernel then ends every process of
/// its PID namespace) and wait until all are gone, remove its folder and
/// cgroups. Succeeds when the node is already gone.
pub fn delete_node(paths: &NodePaths) -> Result<(), PlatformError> {
    if let Some(node) = Node::open(paths) {
        kill_init(&node);
    }
    // Processes a node of an older tg (no init) may have left in its cgroups.
    let deadline = Instant::now() + Duration::from_secs(2);
    while cgroup::kill_all(&paths.sid, &paths.id) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    cgroup::remove(&paths.sid, &paths.id);
    let mut problems = Vec::new();
    // Nothing is mounted under the node folder on the host; an older tg
    // may have left something, so detach defensively.
    let _ = detach(&paths.merged);
    match remove_dir_all_retry(&paths.dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => problems.push(format!("remove `{}`: {e}", paths.dir.display())),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(
            PlatformError::new(format!("cannot fully delete node `{}`", paths.id))
                .with_detail(problems.join("\n")),
        )
    }
}

/// `remove_dir_all`, tried again briefly: the node's overlay may still be
/// being unmounted by the kernel after its last process ended.
fn remove_dir_all_retry(dir: &Path) -> std::io::Result<()> {
    let mut tries = 0;
    loop {
        match fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// SIGKILL the node's init and wait (up to 10 s) until it and every other
/// process of its PID namespace have ended; reap it if it is our child.
fn kill_init(node: &Node) {
    // SAFETY: pidfd_send_signal on our pidfd.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            node.pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        );
    }
    // The pidfd becomes readable when the init has exited, which the
    // kernel lets it do only once every process of its namespace is gone.
    pidfd_exited(&node.pidfd, 10_000);
    let mut status = 0;
    // SAFETY: reaping our own child, if it is one (ECHILD otherwise).
    unsafe {
        libc::waitpid(node.record.pid, &mut status, libc::WNOHANG);
    }
}

/// Delete every node of a session found on the host (whether state knows of
/// it or not), and what an older tg left (pinned namespaces). Returns the
/// nodes it deleted (their hostnames, else their ids).
pub fn sweep_session_nodes(run_dir: &Path, sid: &str) -> Result<Vec<String>, PlatformError> {
    let session = run_dir.join(sid);
    let mut ids = std::collections::BTreeSet::new();
    if let Ok(entries) = fs::read_dir(session.join("nodes")) {
        for e in entries.flatten() {
            ids.insert(e.file_name().to_string_lossy().into_owned());
        }
    }
    let mut deleted = Vec::new();
    let mut problems = Vec::new();
    for id in ids {
        if check_id(&id).is_err() {
            continue;
        }
        let paths = node_paths(run_dir, sid, &id);
        let name = fs::read_to_string(&paths.record)
            .ok()
            .and_then(|t| serde_json::from_str::<NodeRecord>(&t).ok())
            .map_or(id, |r| r.hostname);
        match delete_node(&paths) {
            Ok(()) => deleted.push(name),
            Err(e) => problems.push(format!("{e}: {}", e.detail.clone().unwrap_or_default())),
        }
    }
    for pid in orphan_inits(&session.join("nodes")) {
        if end_init(pid) {
            deleted.push(format!("unrecorded init (pid {pid})"));
        }
    }
    for name in cgroup::session_cgroups(sid) {
        cgroup::kill_all(sid, &name);
        cgroup::remove(sid, &name);
    }
    sweep_legacy_pins(&session.join("ns"));
    if problems.is_empty() {
        remove_session_folders(&session);
    }
    if problems.is_empty() {
        Ok(deleted)
    } else {
        Err(
            PlatformError::new(format!("cannot remove every node of session `{sid}`"))
                .with_detail(problems.join("\n")),
        )
    }
}

/// Unmount and remove a session's `nodes` folder (a tmpfs) once no node
/// is left in it, and its `masks` layer.
pub fn remove_session_folders(session: &Path) {
    let nodes = session.join("nodes");
    if super::sweep::dir_names(&nodes).is_empty() {
        let _ = detach(&nodes);
        let _ = fs::remove_dir(&nodes);
    }
    let masks = session.join("masks");
    let _ = detach(&masks);
    let _ = fs::remove_dir(&masks);
}

/// Nodes of a tg before node inits were pinned namespaces under
/// `<session>/ns` with no process of their own: kill what runs in their
/// mount namespaces, unmount the pins and the folder.
fn sweep_legacy_pins(ns: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = fs::read_dir(ns) else {
        return;
    };
    let mut mnt = Vec::new();
    let mut pins = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "mnt") {
            if let Ok(m) = fs::metadata(&p) {
                mnt.push((m.dev(), m.ino()));
            }
        }
        pins.push(p);
    }
    if !mnt.is_empty() {
        if let Ok(procs) = fs::read_dir("/proc") {
            for e in procs.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                    continue;
                };
                if let Ok(m) = fs::metadata(format!("/proc/{pid}/ns/mnt")) {
                    if mnt.contains(&(m.dev(), m.ino())) {
                        // SAFETY: sending a signal.
                        unsafe {
                            libc::kill(pid, libc::SIGKILL);
                        }
                    }
                }
            }
        }
    }
    for p in pins {
        let _ = detach(&p);
        let _ = fs::remove_file(&p);
    }
    let _ = detach(ns);
    let _ = fs::remove_dir(ns);
}

/// Rewrite the session's hosts file in place (same inode: nodes bind-mount
/// it). `hosts` maps hostnames to their addresses.
pub fn write_session_hosts(
    run_dir: &Path,
    sid: &str,
    hosts: &BTreeMap<String, Vec<Ipv4Addr>>,
) -> Result<(), PlatformError> {
    let path = run_dir.join(sid).join("hosts");
    let mut text = String::from(HOSTS_HEADER);
    for (name, addrs) in hosts {
        for a in addrs {
            let _ = writeln!(text, "{a}\t{name}");
        }
    }
    files::create_dir_all(&run_dir.join(sid), files::DIR_MODE)
        .map_err(|e| io_error("create", &run_dir.join(sid), e))?;
    let f =
        files::open_for_write(&path, files::FILE_MODE).map_err(|e| io_error("open", &path, e))?;
    let _lock = FileLock::exclusive(&f);
    // Truncate, then write in one call: readers see the old, an empty or the
    // new file, never a torn mix of two versions.
    f.set_len(0)
        .and_then(|()| (&f).write_all(text.as_bytes()))
        .map_err(|e| io_error("write", &path, e))
}

const HOSTS_HEADER: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

fn check_overlay_path(p: &Path) -> Result<(), PlatformError> {
    let s = p.as_os_str().as_bytes();
    if s.iter()
        .any(|b| matches!(b, b',' | b':' | b'\\' | b'\n' | 0))
    {
        return Err(PlatformError::new(format!(
            "path `{}` cannot be used in an overlay mount: it contains `,`, `:` or `\\`",
            p.display()
        )));
    }
    Ok(())
}

/// Mount a tmpfs named `source` with `options` on `dir`, private (no
/// mount event propagates to or from it).
fn mount_private_tmpfs(source: &str, dir: &Path, options: &str) -> Result<(), PlatformError> {
    use nix::mount::{mount, MsFlags};
    mount(
        Some(source),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options),
    )
    .and_then(|()| {
        mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
    })
    .map_err(|e| io_error("mount a tmpfs on", dir, std::io::Error::from(e)))
}

/// Is `path` on a tmpfs?
// The width of `f_type` differs between architectures.
#[allow(clippy::unnecessary_cast)]
fn in_memory(path: &Path) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type().0 as i64 == TMPFS_MAGIC)
        .unwrap_or(false)
}

pub(super) fn io_error(verb: &str, path: &Path, e: std::io::Error) -> PlatformError {
    PlatformError::new(format!("cannot {verb} `{}`: {e}", path.display()))
}

/// Make `<run_dir>/<sid>/nodes` and the session's hosts file, unless done,
/// holding the session's lock.
fn ensure_session(lock: &SessionLock, run_dir: &Path, sid: &str) -> Result<(), PlatformError> {
    let session = run_dir.join(sid);
    let hosts = session.join("hosts");
    let nodes = session.join("nodes");
    if hosts.exists() && in_memory(&nodes) {
        return Ok(());
    }
    let _held = lock.lock();
    for d in [&session, &nodes] {
        files::create_dir_all(d, files::DIR_MODE).map_err(|e| io_error("create", d, e))?;
    }
    // Node folders (upper layers, SSH files, records) live in memory, as
    // `/run` does on most hosts: a node does not outlive a reboot, and a
    // disk file system's inode allocation and journal were a third of the
    // kernel's time per node. Only an empty folder is mounted over, so the
    // nodes of an older tg stay in sight.
    let empty = fs::read_dir(&nodes)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if !in_memory(&nodes) && empty {
        mount_private_tmpfs("tg-nodes", &nodes, "mode=0700")?;
    }
    if !hosts.exists() {
        files::write(&hosts, HOSTS_HEADER.as_bytes(), files::FILE_MODE)
            .map_err(|e| io_error("write", &hosts, e))?;
    }
    Ok(())
}

/// The node folder, the upper layer with `/etc/hostname`, and mount points
/// the image may lack.
fn prepare_dirs(paths: &NodePaths, lower: &Path, hostname: &str) -> Result<(), PlatformError> {
    let mkdir =
        |d: &Path, mode: u32| files::create_dir_all(d, mode).map_err(|e| io_error("create", d, e));
    mkdir(&paths.upper.join("etc"), 0o755)?;
    mkdir(&paths.work, 0o700)?;
    mkdir(&paths.merged, 0o755)?;
    let hostname_file = paths.upper.join("etc/hostname");
    files::write(
        &hostname_file,
        format!("{hostname}\n").as_bytes(),
        files::FILE_MODE,
    )
    .map_err(|e| io_error("write", &hostname_file, e))?;
    for (dir, mode) in [
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("tmp", 0o1777),
        ("run", 0o755),
    ] {
        if !lower.join(dir).is_dir() {
            mkdir(&paths.upper.join(dir), mode)?;
        }
    }
    if !lower.join("etc/hosts").is_file() {
        let f = paths.upper.join("etc/hosts");
        files::write(&f, b"", files::FILE_MODE).map_err(|e| io_error("write", &f, e))?;
    }
    Ok(())
}

/// The session's layer of masks for image `lower` (made once, under the
/// session's lock), or `None` when the image holds none of `secrets`.
fn mask_layer(
    lock: &SessionLock,
    run_dir: &Path,
    sid: &str,
    lower: &Path,
    secrets: &[PathBuf],
) -> Result<Option<PathBuf>, PlatformError> {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(lower.as_os_str().as_bytes());
    let name: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let layer = run_dir.join(sid).join("masks").join(name);
    let ready = layer.with_extension("ready");
    // Made by the session's first node of this image: the next ones do
    // not look for the secrets again.
    if ready.exists() {
        return Ok(Some(layer));
    }
    let is_dir = |p: &Path| fs::symlink_metadata(p).ok().map(|m| m.is_dir());
    let masks = sandbox::masks_under(lower, secrets, &is_dir);
    if masks.is_empty() {
        return Ok(None);
    }
    let _held = lock.lock();
    if ready.exists() {
        return Ok(Some(layer));
    }
    let dir = run_dir.join(sid).join("masks");
    files::create_dir_all(&dir, files::DIR_MODE).map_err(|e| io_error("create", &dir, e))?;
    if !crate::platform::netns::net::is_mount_point(&dir) {
        mount_private_tmpfs("tg-masks", &dir, "mode=0755,size=4m")?;
    }
    let _ = fs::remove_dir_all(&layer);
    files::create_dir_all(&layer, files::DIR_MODE).map_err(|e| io_error("create", &layer, e))?;
    for mask in &masks {
        apply_mask(&layer, lower, mask)?;
    }
    files::write(&ready, b"", files::FILE_MODE).map_err(|e| io_error("write", &ready, e))?;
    Ok(Some(layer))
}

/// Hide one secret in a mask layer.
fn apply_mask(layer: &Path, lower: &Path, mask: &Mask) -> Result<(), PlatformError> {
    let (inside, _) = match mask {
        Mask::EmptyDir(p) | Mask::Locked(p) | Mask::Gone(p) => (p, ()),
    };
    let rel = inside.strip_prefix("/").unwrap_or(inside);
    let target = layer.join(rel);
    if let Some(parent) = target.parent() {
        // Parents the image has keep their look (the overlay merges them).
        files::create_dir_all(parent, files::DIR_MODE)
            .map_err(|e| io_error("create", parent, e))?;
    }
    match mask {
        Mask::EmptyDir(_) => {
            let mode = fs::metadata(lower.join(rel))
                .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
                .unwrap_or(0o755);
            files::create_dir_all(&target, mode).map_err(|e| io_error("create", &target, e))?;
            set_xattr(&target, "trusted.overlay.opaque", b"y")
                .map_err(|e| io_error("make opaque", &target, e))
        }
        Mask::Locked(_) => {
            let text = fs::read_to_string(lower.join(rel)).unwrap_or_default();
            files::write(&target, sandbox::lock_passwords(&text).as_bytes(), 0o640)
                .map_err(|e| io_error("write", &target, e))
        }
        Mask::Gone(_) => {
            let c = cstr(target.as_os_str().as_bytes())?;
            // SAFETY: mknod of an overlay whiteout (char device 0:0).
            if unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, 0) } != 0 {
                return Err(io_error("hide", &target, std::io::Error::last_os_error()));
            }
            Ok(())
        }
    }
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    let p = CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let n = CString::new(name).map_err(std::io::Error::other)?;
    // SAFETY: setxattr with valid strings and buffer.
    if unsafe {
        libc::setxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The start time and state of process `pid` (`/proc/PID/stat`).
pub(super) fn proc_start(pid: i32) -> Option<(u64, char)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start
    // after the last `)`.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 overall is the 20th after the name (state is field 3).
    let start = fields.get(19)?.parse().ok()?;
    Some((start, state))
}

/// Node inits whose root is an overlay with its upper layer under `nodes`
/// (a session's node folders) but whose node has no record: tg was killed
/// between starting the init and writing the record, so nothing else knows
/// its pid. Found by their mount table (`/proc/PID/mountinfo`), which
/// keeps the overlay's options even once the folder is gone.
fn orphan_inits(nodes: &Path) -> Vec<i32> {
    let needle = format!("upperdir={}/", nodes.display());
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "tg-init")
        })
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/mountinfo")).is_ok_and(|m| {
                m.lines()
                    .find(|l| l.split(' ').nth(4) == Some("/"))
                    .is_some_and(|root| root.contains(&needle))
            })
        })
        .collect()
}

/// Kill the init `pid` (the kernel then ends every process of its PID
/// namespace) and wait until it has exited; false when there is no such
/// process.
fn end_init(pid: i32) -> bool {
    let Some(pidfd) = pidfd_open(pid) else {
        return false;
    };
    // SAFETY: pidfd_send_signal on a pidfd we own.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        );
    }
    pidfd_exited(&pidfd, 10_000);
    true
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open returns a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: as above.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Whether the process of `pidfd` has exited, waiting up to `ms`.
fn pidfd_exited(pidfd: &OwnedFd, ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let deadline = Instant::now() + Duration::from_millis(ms.max(0) as u64);
    loop {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_millis() as i32;
        // SAFETY: poll on one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, left) };
        if rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return rc > 0;
    }
}

pub(super) fn cstr(b: &[u8]) -> Result<CString, PlatformError> {
    CString::new(b).map_err(|_| PlatformError::new("a path or name contains a NUL byte"))
}

/// Lazily unmount `path` if something is mounted there; fine when nothing is
/// or when it does not exist.
pub(crate) fn detach(path: &Path) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    loop {
        // SAFETY: umount2 with a valid path.
        let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) };
        if rc == 0 {
            // Mounts can be stacked; go on until nothing is left.
            continue;
        }
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EINVAL) | Some(libc::ENOENT) => Ok(()),
            _ => Err(e),
        };
    }
}

/// An exclusive `flock` held until dropped.
pub(crate) struct FileLock<'a>(&'a fs::File);

impl<'a> FileLock<'a> {
    pub(crate) fn exclusive(f: &'a fs::File) -> FileLock<'a> {
        // SAFETY: flock on an open fd.
        unsafe {
            while libc::flock(f.as_raw_fd(), libc::LOCK_EX) != 0
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
            {}
        }
        FileLock(f)
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        // SAFETY: unlocking our own fd.
        unsafe {
            libc::flock(self.0.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_under_the_session() {
        let p = node_paths(Path::new("/run/tg"), "0123abcd", "5f3a09c1d2e4");
        assert_eq!(p.dir, Path::new("/run/tg/0123abcd/nodes/5f3a09c1d2e4"));
        assert_eq!(
            p.record,
            Path::new("/run/tg/0123abcd/nodes/5f3a09c1d2e4/node.json")
        );
        assert_eq!(p.hosts, Path::new("/run/tg/0123abcd/hosts"));
    }

    #[test]
    fn ids_are_checked() {
        assert!(check_id(&new_id()).is_ok());
        assert!(check_id("edge-0").is_ok());
        for bad in ["", "../x", "a/b", "A", &"x".repeat(64)] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlay_paths_are_checked() {
        assert!(check_overlay_path(Path::new("/a:b")).is_err());
        assert!(check_overlay_path(Path::new("/var/lib/tg")).is_ok());
    }

    #[test]
    fn own_start_time_is_read() {
        let (start, state) = proc_start(std::process::id() as i32).unwrap();
        assert!(start > 0);
        assert!(matches!(state, 'R' | 'S'), "{state}");
    }
}
