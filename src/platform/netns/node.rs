//! A node's persistent namespaces and its overlay root filesystem.
//!
//! A node is four namespaces kept alive by bind mounts of their namespace
//! files, with no long-running process: net, mount, UTS and IPC. PID
//! namespaces are not used: a PID namespace dies with its init process, and a
//! node has none. The files live in `<run_dir>/<sid>/ns/<hostname>.{net,mnt,uts,ipc}`;
//! the `ns` folder is a small private tmpfs mounted once per session (a bind
//! mount of a mount namespace file must sit on a private mount, or it would
//! propagate into the namespace it pins). The network namespace is *not*
//! registered in `/run/netns`, so `ip netns` does not list nodes; use
//! `nsenter --net=FILE` (or `tg exec`) to look inside.
//!
//! Inside the mount namespace an overlay (lower = the image, upper and work in
//! `<run_dir>/<sid>/nodes/<hostname>/`) becomes `/` with `pivot_root`, with a
//! fresh `/proc`, a read-only `/sys` mounted from inside the node's network
//! namespace, a bind of the host `/dev` (with its own `devpts` and `/dev/shm`),
//! tmpfs `/tmp` and `/run`, and `/etc/hosts` bound read-only from the
//! session's hosts file (`<run_dir>/<sid>/hosts`, rewritten by
//! [`write_session_hosts`]). The
//! overlay is mounted only inside the node's mount namespace: the host sees
//! nothing mounted under the node folder.
//!
//! All of it is done by one forked child of the calling process using raw
//! syscalls (no program is executed, so creating a node costs one `fork`);
//! the parent then bind-mounts the child's namespace files and lets it exit.
//!
//! This module does not add network interfaces (see `net`), does not build
//! images (see `image`) and does not run commands inside nodes (see `exec`).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::locks::SessionLock;
use super::{cgroup, files, image, names, NetnsOptions};
use crate::platform::{NodeSpec, PlatformError};

/// `statfs` magic of the namespace filesystem (`nsfs`).
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Where everything of one node lives on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePaths {
    /// The session tag the node belongs to.
    pub sid: String,
    /// The node's hostname.
    pub hostname: String,
    /// `<run_dir>/<sid>/nodes/<hostname>`: the node's own folder.
    pub dir: PathBuf,
    /// Network namespace file (`<run_dir>/<sid>/ns/<hostname>.net`).
    pub netns: PathBuf,
    /// Mount namespace file.
    pub mntns: PathBuf,
    /// UTS namespace file.
    pub utsns: PathBuf,
    /// IPC namespace file.
    pub ipcns: PathBuf,
    /// The overlay's upper layer: everything the node wrote.
    pub upper: PathBuf,
    /// The overlay's work folder.
    pub work: PathBuf,
    /// Where the overlay is mounted inside the node's mount namespace before
    /// it becomes `/` (empty on the host).
    pub merged: PathBuf,
    /// The session's hosts file, bound to `/etc/hosts` in the node.
    pub hosts: PathBuf,
}

impl NodePaths {
    /// The four namespace files with their `setns` type, net first and mount last
    /// (the order to enter them in).
    pub(crate) fn namespaces(&self) -> [(&Path, libc::c_int); 4] {
        [
            (self.netns.as_path(), libc::CLONE_NEWNET),
            (self.utsns.as_path(), libc::CLONE_NEWUTS),
            (self.ipcns.as_path(), libc::CLONE_NEWIPC),
            (self.mntns.as_path(), libc::CLONE_NEWNS),
        ]
    }
}

/// The paths of a node (pure: touches nothing).
pub fn node_paths(run_dir: &Path, sid: &str, hostname: &str) -> NodePaths {
    let session = run_dir.join(sid);
    let dir = session.join("nodes").join(hostname);
    let ns = session.join("ns");
    NodePaths {
        sid: sid.to_string(),
        hostname: hostname.to_string(),
        netns: ns.join(format!("{hostname}.net")),
        mntns: ns.join(format!("{hostname}.mnt")),
        utsns: ns.join(format!("{hostname}.uts")),
        ipcns: ns.join(format!("{hostname}.ipc")),
        upper: dir.join("upper"),
        work: dir.join("work"),
        merged: dir.join("merged"),
        hosts: session.join("hosts"),
        dir,
    }
}

/// The session's namespace folder (a private tmpfs once a node exists).
pub fn session_ns_dir(run_dir: &Path, sid: &str) -> PathBuf {
    run_dir.join(sid).join("ns")
}

/// Whether the node's namespaces exist (its net and mount namespace files
/// are mounted namespace files).
pub fn node_exists(paths: &NodePaths) -> bool {
    is_nsfs(&paths.netns) && is_nsfs(&paths.mntns)
}

/// Make a node: namespaces, root filesystem, hostname, `lo` up, and the cgroup
/// limits of `spec` (see [`cgroup::apply`]). A half-made node of the same name
/// is deleted first. No network interface but `lo` is added. `session` is
/// the session's lock, taken while its folders are set up.
pub fn create_node(
    session: &SessionLock,
    opts: &NetnsOptions,
    sid: &str,
    spec: &NodeSpec,
) -> Result<NodePaths, PlatformError> {
    names::check_sid(sid).map_err(PlatformError::new)?;
    names::check_hostname(&spec.hostname).map_err(PlatformError::new)?;
    let lower = image::resolve(&spec.image, &opts.image_dir, &|_| {})?;
    let paths = node_paths(&opts.run_dir, sid, &spec.hostname);
    for p in [&lower, &paths.dir] {
        check_overlay_path(p)?;
    }
    if paths.dir.exists() || paths.mntns.exists() || paths.netns.exists() {
        delete_node(&paths)?;
    }
    ensure_session(session, &opts.run_dir, sid)?;
    let result = prepare_dirs(&paths, &lower, &spec.hostname)
        .and_then(|()| make_namespaces(&paths, &lower))
        .and_then(|()| {
            if spec.cpus.is_some() || spec.memory_mib.is_some() {
                cgroup::apply(sid, spec)
            } else {
                Ok(())
            }
        });
    if let Err(e) = result {
        let _ = delete_node(&paths);
        return Err(e);
    }
    Ok(paths)
}

/// Delete a node: kill what still runs inside it, unmount its namespace
/// files, remove its folder and cgroups. Succeeds when the node is already gone.
pub fn delete_node(paths: &NodePaths) -> Result<(), PlatformError> {
    kill_node_processes(paths);
    let mut problems = Vec::new();
    for (file, _) in paths.namespaces() {
        if let Err(e) = detach(file) {
            problems.push(format!("unmount `{}`: {e}", file.display()));
        }
        match fs::remove_file(file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => problems.push(format!("remove `{}`: {e}", file.display())),
        }
    }
    // Nothing should be mounted under the node folder on the host; a crash in
    // an older version could have left something, so detach defensively.
    let _ = detach(&paths.merged);
    match fs::remove_dir_all(&paths.dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => problems.push(format!("remove `{}`: {e}", paths.dir.display())),
    }
    cgroup::remove(&paths.sid, &paths.hostname);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(
            PlatformError::new(format!("cannot fully delete node `{}`", paths.hostname))
                .with_detail(problems.join("\n")),
        )
    }
}

/// Delete every node of a session found on the host (whether state knows of
/// it or not), then unmount the session's namespace folder. Returns the
/// hostnames it deleted.
pub fn sweep_session_nodes(run_dir: &Path, sid: &str) -> Result<Vec<String>, PlatformError> {
    let session = run_dir.join(sid);
    let mut names = std::collections::BTreeSet::new();
    if let Ok(entries) = fs::read_dir(session.join("nodes")) {
        for e in entries.flatten() {
            names.insert(e.file_name().to_string_lossy().into_owned());
        }
    }
    if let Ok(entries) = fs::read_dir(session.join("ns")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some((host, _)) = name.rsplit_once('.') {
                names.insert(host.to_string());
            }
        }
    }
    let mut deleted = Vec::new();
    let mut problems = Vec::new();
    for name in names {
        let paths = node_paths(run_dir, sid, &name);
        match delete_node(&paths) {
            Ok(()) => deleted.push(name),
            Err(e) => problems.push(format!("{e}: {}", e.detail.clone().unwrap_or_default())),
        }
    }
    for name in cgroup::session_cgroups(sid) {
        cgroup::remove(sid, &name);
    }
    let ns = session.join("ns");
    if is_mounted_dir(&ns) {
        if let Err(e) = detach(&ns) {
            problems.push(format!("unmount `{}`: {e}", ns.display()));
        }
    }
    let _ = fs::remove_dir(&ns);
    let _ = fs::remove_dir(session.join("nodes"));
    if problems.is_empty() {
        Ok(deleted)
    } else {
        Err(
            PlatformError::new(format!("cannot remove every node of session `{sid}`"))
                .with_detail(problems.join("\n")),
        )
    }
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

fn io_error(verb: &str, path: &Path, e: std::io::Error) -> PlatformError {
    PlatformError::new(format!("cannot {verb} `{}`: {e}", path.display()))
}

/// Make `<run_dir>/<sid>/{nodes,ns}`, mount the private tmpfs on `ns` and
/// create the hosts file, unless already done, holding the session's lock.
fn ensure_session(lock: &SessionLock, run_dir: &Path, sid: &str) -> Result<(), PlatformError> {
    let session = run_dir.join(sid);
    let ns = session.join("ns");
    let hosts = session.join("hosts");
    let _held = lock.lock();
    for d in [&session, &session.join("nodes"), &ns] {
        files::create_dir_all(d, files::DIR_MODE).map_err(|e| io_error("create", d, e))?;
    }
    if !is_mounted_dir(&ns) {
        let src = cstr(b"tg-ns")?;
        let target = path_cstr(&ns)?;
        let fstype = cstr(b"tmpfs")?;
        let data = cstr(b"mode=0755,size=1m")?;
        // SAFETY: plain mount(2) calls with valid NUL-terminated strings.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                data.as_ptr().cast(),
            )
        };
        if rc != 0 {
            return Err(io_error(
                "mount a tmpfs on",
                &ns,
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: as above; a NULL source and type only change propagation.
        let rc = unsafe {
            libc::mount(
                std::ptr::null(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_PRIVATE,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            let _ = detach(&ns);
            return Err(io_error("make private", &ns, e));
        }
    }
    if !hosts.exists() {
        files::write(&hosts, HOSTS_HEADER.as_bytes(), files::FILE_MODE)
            .map_err(|e| io_error("write", &hosts, e))?;
    }
    Ok(())
}

/// The node folder, the upper layer with `/etc/hostname`, mount points the
/// image may lack, and empty namespace files.
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
    for (file, _) in paths.namespaces() {
        files::write(file, b"", 0o444).map_err(|e| io_error("create", file, e))?;
    }
    Ok(())
}

/// Everything the child needs, as C strings made before `fork`.
struct ChildPlan {
    hostname: CString,
    overlay_opts: CString,
    merged: CString,
    proc_: CString,
    sys: CString,
    dev: CString,
    dev_pts: CString,
    dev_ptmx: CString,
    dev_pts_ptmx: CString,
    dev_shm: CString,
    tmp: CString,
    run: CString,
    etc_hosts: CString,
    hosts_src: CString,
    host_dev: CString,
    root: CString,
    dot: CString,
    lo: [libc::c_char; libc::IFNAMSIZ],
    s_overlay: CString,
    s_proc: CString,
    s_sysfs: CString,
    s_devpts: CString,
    s_tmpfs: CString,
    o_devpts: CString,
    o_shm: CString,
    o_tmp: CString,
    o_run: CString,
}

/// The steps of the child, reported back on failure.
const STEPS: &[&str] = &[
    "unshare namespaces",
    "make mounts private",
    "set hostname",
    "bring `lo` up",
    "mount the overlay root",
    "mount /proc",
    "mount /sys",
    "bind /dev",
    "mount /dev/pts",
    "bind /dev/ptmx",
    "mount /dev/shm",
    "mount /tmp",
    "mount /run",
    "bind /etc/hosts",
    "make /etc/hosts read-only",
    "pivot_root",
];

fn make_namespaces(paths: &NodePaths, lower: &Path) -> Result<(), PlatformError> {
    let m = &paths.merged;
    let c = |p: &Path| path_cstr(p);
    let mut lo = [0 as libc::c_char; libc::IFNAMSIZ];
    for (d, s) in lo.iter_mut().zip(b"lo") {
        *d = *s as libc::c_char;
    }
    let plan = ChildPlan {
        hostname: cstr(paths.hostname.as_bytes())?,
        overlay_opts: cstr(
            format!(
                "lowerdir={},upperdir={},workdir={}",
                lower.display(),
                paths.upper.display(),
                paths.work.display()
            )
            .as_bytes(),
        )?,
        merged: c(m)?,
        proc_: c(&m.join("proc"))?,
        sys: c(&m.join("sys"))?,
        dev: c(&m.join("dev"))?,
        dev_pts: c(&m.join("dev/pts"))?,
        dev_ptmx: c(&m.join("dev/ptmx"))?,
        dev_pts_ptmx: c(&m.join("dev/pts/ptmx"))?,
        dev_shm: c(&m.join("dev/shm"))?,
        tmp: c(&m.join("tmp"))?,
        run: c(&m.join("run"))?,
        etc_hosts: c(&m.join("etc/hosts"))?,
        hosts_src: c(&paths.hosts)?,
        host_dev: cstr(b"/dev")?,
        root: cstr(b"/")?,
        dot: cstr(b".")?,
        lo,
        s_overlay: cstr(b"overlay")?,
        s_proc: cstr(b"proc")?,
        s_sysfs: cstr(b"sysfs")?,
        s_devpts: cstr(b"devpts")?,
        s_tmpfs: cstr(b"tmpfs")?,
        o_devpts: cstr(b"newinstance,ptmxmode=0666,mode=0620")?,
        o_shm: cstr(b"mode=1777")?,
        o_tmp: cstr(b"mode=1777")?,
        o_run: cstr(b"mode=0755")?,
    };
    let targets: Vec<CString> = paths
        .namespaces()
        .iter()
        .map(|(f, _)| c(f))
        .collect::<Result<_, _>>()?;

    let (ready_r, ready_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    // SAFETY: the child runs only async-signal-safe raw syscalls on data
    // prepared above (no allocation, no locks) and ends with `_exit`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(PlatformError::new(format!(
            "cannot fork to create node `{}`: {}",
            paths.hostname,
            std::io::Error::last_os_error()
        )));
    }
    if pid == 0 {
        // Child. Close every inherited fd but its two pipe ends: other
        // threads may be creating nodes at the same moment, and holding their
        // pipe ends would keep their children from seeing the pipe close.
        let keep = [ready_w.as_raw_fd(), go_r.as_raw_fd()];
        close_all_but(keep);
        // SAFETY: see above.
        unsafe { child_main(&plan, keep[0], keep[1]) }
    }
    drop(ready_w);
    drop(go_r);
    let outcome = (|| {
        let mut buf = [0u8; 8];
        let n = read_full(&ready_r, &mut buf);
        if n == 1 && buf[0] == 0xff {
            return Ok(());
        }
        if n == 8 {
            let step = STEPS.get(buf[0] as usize).copied().unwrap_or("set up");
            let errno = i32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
            return Err(PlatformError::new(format!(
                "cannot create node `{}`: {step} failed: {}",
                paths.hostname,
                std::io::Error::from_raw_os_error(errno)
            )));
        }
        Err(PlatformError::new(format!(
            "cannot create node `{}`: the setup process died",
            paths.hostname
        )))
    })()
    .and_then(|()| {
        // The child has made everything; pin its namespaces.
        for ((_, nstype), target) in paths.namespaces().iter().zip(&targets) {
            let name = match *nstype {
                libc::CLONE_NEWNET => "net",
                libc::CLONE_NEWUTS => "uts",
                libc::CLONE_NEWIPC => "ipc",
                _ => "mnt",
            };
            let src = cstr(format!("/proc/{pid}/ns/{name}").as_bytes())?;
            // SAFETY: mount(2) with valid strings.
            let rc = unsafe {
                libc::mount(
                    src.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                )
            };
            if rc != 0 {
                return Err(PlatformError::new(format!(
                    "cannot create node `{}`: cannot pin its {name} namespace: {}",
                    paths.hostname,
                    std::io::Error::last_os_error()
                )));
            }
        }
        Ok(())
    });
    // Let the child go and reap it.
    // SAFETY: writing one byte from our buffer to our pipe.
    unsafe {
        libc::write(go_w.as_raw_fd(), [1u8].as_ptr().cast(), 1);
    }
    drop(go_w);
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe {
        while libc::waitpid(pid, &mut status, 0) < 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
        {}
    }
    outcome
}

/// In the forked child: close every fd from 3 up except the two in `keep`.
fn close_all_but(keep: [libc::c_int; 2]) {
    let (a, b) = (keep[0].min(keep[1]), keep[0].max(keep[1]));
    let ranges = [(3, a - 1), (a + 1, b - 1), (b + 1, libc::c_int::MAX)];
    for (lo, hi) in ranges {
        if lo <= hi {
            // SAFETY: close_range(2) on fd numbers of the forked child only;
            // a raw syscall, async-signal-safe.
            unsafe {
                libc::syscall(
                    libc::SYS_close_range,
                    lo as libc::c_uint,
                    hi as libc::c_uint,
                    0,
                );
            }
        }
    }
}

/// The forked child: make the namespaces and the root, report, wait, exit.
///
/// # Safety
/// Only to be called in a freshly forked child; never returns.
unsafe fn child_main(p: &ChildPlan, ready: libc::c_int, go: libc::c_int) -> ! {
    let fail = |step: u8| -> ! {
        let errno = *libc::__errno_location();
        let e = errno.to_le_bytes();
        let msg = [step, 0, 0, 0, e[0], e[1], e[2], e[3]];
        libc::write(ready, msg.as_ptr().cast(), msg.len());
        libc::_exit(1)
    };
    let null = std::ptr::null::<libc::c_char>();
    let nodata = std::ptr::null::<libc::c_void>();
    let mount = |src: *const libc::c_char,
                 dst: &CString,
                 fs: *const libc::c_char,
                 flags: libc::c_ulong,
                 data: *const libc::c_void,
                 step: u8| {
        if libc::mount(src, dst.as_ptr(), fs, flags, data) != 0 {
            fail(step);
        }
    };
    if libc::unshare(
        libc::CLONE_NEWNET | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC,
    ) != 0
    {
        fail(0);
    }
    mount(
        null,
        &p.root,
        null,
        libc::MS_REC | libc::MS_PRIVATE,
        nodata,
        1,
    );
    if libc::sethostname(p.hostname.as_ptr(), p.hostname.as_bytes().len()) != 0 {
        fail(2);
    }
    // lo up.
    let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
    if s < 0 {
        fail(3);
    }
    let mut ifr: libc::ifreq = std::mem::zeroed();
    ifr.ifr_name = p.lo;
    if libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr) != 0 {
        fail(3);
    }
    ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    if libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr) != 0 {
        fail(3);
    }
    libc::close(s);
    mount(
        p.s_overlay.as_ptr(),
        &p.merged,
        p.s_overlay.as_ptr(),
        0,
        p.overlay_opts.as_ptr().cast(),
        4,
    );
    let nosuid = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount(
        p.s_proc.as_ptr(),
        &p.proc_,
        p.s_proc.as_ptr(),
        nosuid,
        nodata,
        5,
    );
    mount(
        p.s_sysfs.as_ptr(),
        &p.sys,
        p.s_sysfs.as_ptr(),
        nosuid | libc::MS_RDONLY,
        nodata,
        6,
    );
    mount(p.host_dev.as_ptr(), &p.dev, null, libc::MS_BIND, nodata, 7);
    mount(
        p.s_devpts.as_ptr(),
        &p.dev_pts,
        p.s_devpts.as_ptr(),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        p.o_devpts.as_ptr().cast(),
        8,
    );
    mount(
        p.dev_pts_ptmx.as_ptr(),
        &p.dev_ptmx,
        null,
        libc::MS_BIND,
        nodata,
        9,
    );
    mount(
        p.s_tmpfs.as_ptr(),
        &p.dev_shm,
        p.s_tmpfs.as_ptr(),
        libc::MS_NOSUID | libc::MS_NODEV,
        p.o_shm.as_ptr().cast(),
        10,
    );
    mount(
        p.s_tmpfs.as_ptr(),
        &p.tmp,
        p.s_tmpfs.as_ptr(),
        libc::MS_NOSUID | libc::MS_NODEV,
        p.o_tmp.as_ptr().cast(),
        11,
    );
    mount(
        p.s_tmpfs.as_ptr(),
        &p.run,
        p.s_tmpfs.as_ptr(),
        libc::MS_NOSUID | libc::MS_NODEV,
        p.o_run.as_ptr().cast(),
        12,
    );
    mount(
        p.hosts_src.as_ptr(),
        &p.etc_hosts,
        null,
        libc::MS_BIND,
        nodata,
        13,
    );
    // Read-only: a node writing it would change every node's view.
    mount(
        null,
        &p.etc_hosts,
        null,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
        nodata,
        14,
    );
    if libc::chdir(p.merged.as_ptr()) != 0
        || libc::syscall(libc::SYS_pivot_root, p.dot.as_ptr(), p.dot.as_ptr()) != 0
        || libc::umount2(p.dot.as_ptr(), libc::MNT_DETACH) != 0
        || libc::chdir(p.root.as_ptr()) != 0
    {
        fail(15);
    }
    let ok = [0xffu8];
    libc::write(ready, ok.as_ptr().cast(), 1);
    // Wait until the parent has pinned the namespaces (it closes the pipe).
    let mut b = [0u8; 1];
    while libc::read(go, b.as_mut_ptr().cast(), 1) < 0 && *libc::__errno_location() == libc::EINTR {
    }
    libc::_exit(0)
}

fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        // SAFETY: reading into our own buffer.
        let r = unsafe { libc::read(fd.as_raw_fd(), buf[n..].as_mut_ptr().cast(), buf.len() - n) };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break;
        }
        if r == 0 {
            break;
        }
        n += r as usize;
        if n == 1 && buf[0] == 0xff {
            break;
        }
    }
    n
}

fn pipe() -> Result<(OwnedFd, OwnedFd), PlatformError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| PlatformError::new(format!("cannot make a pipe: {e}")))
}

fn cstr(b: &[u8]) -> Result<CString, PlatformError> {
    CString::new(b).map_err(|_| PlatformError::new("a path or name contains a NUL byte"))
}

fn path_cstr(p: &Path) -> Result<CString, PlatformError> {
    cstr(p.as_os_str().as_bytes())
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

fn is_nsfs(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs into a zeroed struct.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == NSFS_MAGIC
    }
}

/// Whether `dir` is the root of a mount (its device differs from its parent's).
fn is_mounted_dir(dir: &Path) -> bool {
    let (Ok(me), Some(Ok(parent))) = (
        fs::symlink_metadata(dir),
        dir.parent().map(fs::symlink_metadata),
    ) else {
        return false;
    };
    me.dev() != parent.dev()
}

/// Kill every process in the node: those in its cgroups and those whose mount
/// namespace is the node's. Waits briefly until they are gone.
fn kill_node_processes(paths: &NodePaths) {
    if !is_nsfs(&paths.mntns) {
        cgroup::kill_all(&paths.sid, &paths.hostname);
        return;
    }
    let Ok(target) = fs::metadata(&paths.mntns) else {
        return;
    };
    let (dev, ino) = (target.dev(), target.ino());
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut found = cgroup::kill_all(&paths.sid, &paths.hostname);
        if let Ok(entries) = fs::read_dir("/proc") {
            for e in entries.flatten() {
                let name = e.file_name();
                let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
                    continue;
                };
                let Ok(m) = fs::metadata(format!("/proc/{pid}/ns/mnt")) else {
                    continue;
                };
                if m.dev() == dev && m.ino() == ino {
                    // SAFETY: sending a signal.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                    found = true;
                }
            }
        }
        if !found || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
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
        let p = node_paths(Path::new("/run/tg"), "0123abcd", "edge-0");
        assert_eq!(p.dir, Path::new("/run/tg/0123abcd/nodes/edge-0"));
        assert_eq!(p.netns, Path::new("/run/tg/0123abcd/ns/edge-0.net"));
        assert_eq!(p.mntns, Path::new("/run/tg/0123abcd/ns/edge-0.mnt"));
        assert_eq!(p.merged, Path::new("/run/tg/0123abcd/nodes/edge-0/merged"));
        assert_eq!(p.hosts, Path::new("/run/tg/0123abcd/hosts"));
    }

    #[test]
    fn overlay_paths_are_checked() {
        assert!(check_overlay_path(Path::new("/a:b")).is_err());
        assert!(check_overlay_path(Path::new("/var/lib/tg")).is_ok());
    }
}
