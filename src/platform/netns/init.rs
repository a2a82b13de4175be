//! `tg-init`: the first process of every netns node, PID 1 of its PID
//! namespace.
//!
//! tg starts it with `clone` in new PID, mount, network, UTS and IPC
//! namespaces, and hands it a [`InitPlan`] (JSON on fd 3). It joins the
//! node's cgroups and makes its cgroup namespace, then builds the node's
//! root (with IPv6 off for the links tg plugs in later): the overlay, a fresh `/proc` with Docker's masked and read-only
//! paths (but `/proc/sys/net`, which belongs to the node's network
//! namespace), `/sys` read-only, a minimal `/dev` (null, zero, full,
//! random, urandom, tty, ptmx and pts, shm), private `/tmp` and `/run`,
//! `/etc/hosts` read-only from the session's file; every mount but `/dev`
//! is `nodev`. It pivots into that root, drops to the node's capabilities
//! and installs the node's seccomp filters (so all it starts inherits
//! them), listens on port 22 when the node has SSH, answers on fd 4 (`ok`,
//! or what failed) and from then on only reaps the orphans the node leaves
//! it and starts `sshd -i` for each SSH connection (socket activation, as
//! Debian's `ssh.socket`: no server runs until someone connects). When it is killed the kernel ends every
//! process of the PID namespace, whatever namespaces they made: that is
//! how a node is destroyed.
//!
//! It is a program of its own (`src/bin/tg-init.rs`), small and
//! single-threaded, so a node holds none of tg's memory.
//!
//! Not here: starting it and finding it again (`node`), what it is given
//! (`node`, `sandbox`).

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The fd the plan comes on.
pub const PLAN_FD: i32 = 3;
/// The fd the answer goes to.
pub const ANSWER_FD: i32 = 4;

/// What the init of one node sets up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitPlan {
    pub hostname: String,
    /// The overlay's layers and where it is mounted before `pivot_root`.
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    /// The session's hosts file, bound read-only to `/etc/hosts`.
    pub hosts: PathBuf,
    /// `cgroup.procs` files of the node's cgroups, joined before the
    /// cgroup namespace is made.
    pub cgroups: Vec<PathBuf>,
    /// Capabilities to keep (a mask); `None`: all (privileged).
    pub caps: Option<u64>,
    /// The node's SSH folder on the host, bound read-only at
    /// `sshd::IN_NODE`; `None`: the node runs no SSH server.
    #[serde(default)]
    pub ssh: Option<PathBuf>,
    /// The seccomp filters (`seccomp::Filters::pack`) the init installs on
    /// itself with its capabilities, so every process it starts (the SSH
    /// servers) is confined as `tg exec`'s are; empty: none (privileged).
    #[serde(default)]
    pub seccomp: Vec<Vec<u64>>,
}

/// The program's entry point; never returns.
pub fn main() -> ! {
    // SAFETY: fds 3 and 4 are the plan and answer pipes tg set up; if
    // they are not (someone ran tg-init by hand), reading fails below.
    let mut plan_in = unsafe { File::from_raw_fd(PLAN_FD) };
    let mut answer = unsafe { File::from_raw_fd(ANSWER_FD) };
    if std::process::id() != 1 {
        eprintln!("tg-init: the init of tg's netns nodes; tg starts it, not people");
        std::process::exit(2);
    }
    let mut text = String::new();
    let plan = plan_in
        .read_to_string(&mut text)
        .map_err(|e| format!("read the plan: {e}"))
        .and_then(|_| serde_json::from_str::<InitPlan>(&text).map_err(|e| e.to_string()));
    drop(plan_in);
    let result = plan.and_then(|p| {
        set_up(&p)?;
        // Listening before the answer: the node is reachable on port 22
        // from the moment it counts as made.
        match p.ssh {
            Some(_) => listen_ssh().map(Some),
            None => Ok(None),
        }
    });
    let msg = match &result {
        Ok(_) => "ok".to_string(),
        Err(e) => e.clone(),
    };
    let _ = answer.write_all(msg.as_bytes());
    drop(answer);
    match result {
        Ok(listener) => serve_forever(listener),
        Err(_) => std::process::exit(1),
    }
}

fn err(step: &str) -> String {
    format!("{step}: {}", std::io::Error::last_os_error())
}

fn c(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

fn mount(
    src: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), String> {
    let src = src.map(|s| CString::new(s).unwrap_or_default());
    let fstype = fstype.map(|s| CString::new(s).unwrap_or_default());
    let data = data.map(|s| CString::new(s).unwrap_or_default());
    let t = c(target);
    // SAFETY: mount(2) with valid NUL-terminated strings or NULL.
    let rc = unsafe {
        libc::mount(
            src.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            t.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data.as_ref()
                .map_or(std::ptr::null(), |s| s.as_ptr().cast()),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(err(&format!("mount `{}`", target.display())))
    }
}

/// Bind `path` on itself and make it read-only (with `extra` flags).
fn read_only(path: &Path, extra: libc::c_ulong) -> Result<(), String> {
    let src = path.to_string_lossy();
    mount(Some(&src), path, None, libc::MS_BIND | libc::MS_REC, None)?;
    mount(
        None,
        path,
        None,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | extra,
        None,
    )
}

const NODEV: libc::c_ulong = libc::MS_NODEV;
const NOSUID: libc::c_ulong = libc::MS_NOSUID;
const NOEXEC: libc::c_ulong = libc::MS_NOEXEC;

/// Files of `/proc` a node cannot read (bound over by `/dev/null`), and
/// folders it sees empty: Docker's masked paths.
const PROC_MASKED_FILES: &[&str] = &[
    "kcore",
    "keys",
    "latency_stats",
    "timer_list",
    "timer_stats",
    "sched_debug",
];
const PROC_MASKED_DIRS: &[&str] = &["acpi", "asound", "scsi"];
/// Read-only in `/proc` (with `/proc/sys/net` writable again).
const PROC_READ_ONLY: &[&str] = &["bus", "fs", "irq", "sysrq-trigger"];

fn set_up(p: &InitPlan) -> Result<(), String> {
    for procs in &p.cgroups {
        std::fs::write(procs, "0").map_err(|e| format!("join `{}`: {e}", procs.display()))?;
    }
    // SAFETY: plain system calls.
    unsafe {
        if libc::unshare(libc::CLONE_NEWCGROUP) != 0 {
            return Err(err("make the cgroup namespace"));
        }
    }
    mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )?;
    let host = CString::new(p.hostname.as_str()).unwrap_or_default();
    // SAFETY: sethostname with a valid buffer.
    if unsafe { libc::sethostname(host.as_ptr(), p.hostname.len()) } != 0 {
        return Err(err("set the hostname"));
    }
    lo_up()?;
    // The node's veths, plugged in later, start without IPv6 (`lo` keeps
    // `::1`): see `net::no_ipv6_on_new_links`.
    super::net::no_ipv6_on_new_links()?;
    let m = &p.merged;
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        p.lower.display(),
        p.upper.display(),
        p.work.display()
    );
    mount(Some("overlay"), m, Some("overlay"), NODEV, Some(&opts))?;
    let privileged = p.caps.is_none();

    // /dev: a small tmpfs of the node's own, with only the usual devices.
    let dev = m.join("dev");
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        NOSUID,
        Some("mode=0755,size=64k"),
    )?;
    for (name, major, minor, mode) in [
        ("null", 1, 3, 0o666),
        ("zero", 1, 5, 0o666),
        ("full", 1, 7, 0o666),
        ("random", 1, 8, 0o666),
        ("urandom", 1, 9, 0o666),
        ("tty", 5, 0, 0o666),
    ] {
        let path = c(&dev.join(name));
        // SAFETY: mknod and chmod with a valid path.
        unsafe {
            if libc::mknod(
                path.as_ptr(),
                libc::S_IFCHR | mode,
                libc::makedev(major, minor),
            ) != 0
                || libc::chmod(path.as_ptr(), mode) != 0
            {
                return Err(err(&format!("make /dev/{name}")));
            }
        }
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        std::os::unix::fs::symlink(to, dev.join(link)).map_err(|e| format!("/dev/{link}: {e}"))?;
    }
    for d in ["pts", "shm"] {
        std::fs::create_dir(dev.join(d)).map_err(|e| format!("/dev/{d}: {e}"))?;
    }
    mount(
        Some("devpts"),
        &dev.join("pts"),
        Some("devpts"),
        NOSUID | NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    mount(
        Some("shm"),
        &dev.join("shm"),
        Some("tmpfs"),
        NOSUID | NODEV | NOEXEC,
        Some("mode=1777,size=65536k"),
    )?;

    // /proc of the node's PID namespace, with Docker's masks.
    let proc_ = m.join("proc");
    mount(
        Some("proc"),
        &proc_,
        Some("proc"),
        NOSUID | NODEV | NOEXEC,
        None,
    )?;
    if !privileged {
        let null = dev.join("null");
        for f in PROC_MASKED_FILES {
            let path = proc_.join(f);
            if path.exists() {
                mount(
                    Some(&null.to_string_lossy()),
                    &path,
                    None,
                    libc::MS_BIND,
                    None,
                )?;
            }
        }
        for d in PROC_MASKED_DIRS {
            let path = proc_.join(d);
            if path.is_dir() {
                mount(
                    Some("tmpfs"),
                    &path,
                    Some("tmpfs"),
                    libc::MS_RDONLY | NOSUID | NODEV | NOEXEC,
                    Some("size=0"),
                )?;
            }
        }
        for r in PROC_READ_ONLY {
            let path = proc_.join(r);
            if path.exists() {
                read_only(&path, NOSUID | NODEV | NOEXEC)?;
            }
        }
        // /proc/sys read-only, but the network namespace's own settings.
        let sys = proc_.join("sys");
        let net = sys.join("net");
        mount(
            Some(&sys.to_string_lossy()),
            &sys,
            None,
            libc::MS_BIND,
            None,
        )?;
        mount(
            Some(&net.to_string_lossy()),
            &net,
            None,
            libc::MS_BIND,
            None,
        )?;
        mount(
            None,
            &sys,
            None,
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | NOSUID | NODEV | NOEXEC,
            None,
        )?;
    }

    // /sys of the node's network namespace, read-only.
    let sysfs = m.join("sys");
    let sys_flags = NOSUID | NODEV | NOEXEC | if privileged { 0 } else { libc::MS_RDONLY };
    mount(Some("sysfs"), &sysfs, Some("sysfs"), sys_flags, None)?;
    if !privileged {
        for d in ["firmware", "devices/virtual/powercap"] {
            let path = sysfs.join(d);
            if path.is_dir() {
                mount(
                    Some("tmpfs"),
                    &path,
                    Some("tmpfs"),
                    libc::MS_RDONLY | NOSUID | NODEV | NOEXEC,
                    Some("size=0"),
                )?;
            }
        }
    }
    mount(
        Some("tmpfs"),
        &m.join("tmp"),
        Some("tmpfs"),
        NOSUID | NODEV,
        Some("mode=1777"),
    )?;
    mount(
        Some("tmpfs"),
        &m.join("run"),
        Some("tmpfs"),
        NOSUID | NODEV,
        Some("mode=0755"),
    )?;
    if let Some(ssh) = &p.ssh {
        // sshd's privilege separation folder, and the node's SSH files.
        let run = m.join("run");
        for (d, mode) in [("sshd", 0o755), ("tg-ssh", 0o700)] {
            std::fs::create_dir(run.join(d)).map_err(|e| format!("/run/{d}: {e}"))?;
            let path = c(&run.join(d));
            // SAFETY: chmod with a valid path.
            if unsafe { libc::chmod(path.as_ptr(), mode) } != 0 {
                return Err(err(&format!("chmod /run/{d}")));
            }
        }
        let at = run.join("tg-ssh");
        mount(Some(&ssh.to_string_lossy()), &at, None, libc::MS_BIND, None)?;
        mount(
            None,
            &at,
            None,
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | NOSUID | NODEV | NOEXEC,
            None,
        )?;
    }
    let hosts = m.join("etc/hosts");
    mount(
        Some(&p.hosts.to_string_lossy()),
        &hosts,
        None,
        libc::MS_BIND,
        None,
    )?;
    mount(
        None,
        &hosts,
        None,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | NOSUID | NODEV | NOEXEC,
        None,
    )?;

    let merged = c(m);
    // SAFETY: chdir, pivot_root and umount2 with valid paths.
    unsafe {
        if libc::chdir(merged.as_ptr()) != 0
            || libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) != 0
            || libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0
            || libc::chdir(c"/".as_ptr()) != 0
        {
            return Err(err("pivot into the node's root"));
        }
    }
    if let Some(keep) = p.caps {
        confine(keep, &p.seccomp)?;
    }
    Ok(())
}

/// Bring the loopback interface up.
fn lo_up() -> Result<(), String> {
    // SAFETY: a socket and two ioctls on a zeroed, named ifreq.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(err("bring `lo` up"));
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (d, b) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *d = *b as libc::c_char;
        }
        let ok = libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr) == 0 && {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr) == 0
        };
        libc::close(s);
        if !ok {
            return Err(err("bring `lo` up"));
        }
    }
    Ok(())
}

/// Keep only the capabilities in `keep` (bounding set included), and
/// install `seccomp`, which every later process of the node inherits.
fn confine(keep: u64, seccomp: &[Vec<u64>]) -> Result<(), String> {
    let sandbox = super::sandbox::Sandbox::from_packed(Some(keep), seccomp);
    // SAFETY: single-threaded; plain system calls.
    unsafe { sandbox.enter() }.map_err(|e| {
        format!(
            "confine the init (capabilities, seccomp): {}",
            std::io::Error::from_raw_os_error(e)
        )
    })
}

/// How many SSH connections a node serves at once; more are closed at
/// once (sshd's own `MaxStartups` does not apply to `sshd -i`).
const MAX_SSH_CONNECTIONS: usize = 64;

/// A non-blocking TCP socket listening on port 22 of every address of the
/// node (its links need not exist yet).
fn listen_ssh() -> Result<libc::c_int, String> {
    // SAFETY: socket calls on a socket of ours and a zeroed sockaddr_in.
    unsafe {
        let s = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        );
        if s < 0 {
            return Err(err("make the SSH socket"));
        }
        let one: libc::c_int = 1;
        libc::setsockopt(
            s,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_port = 22u16.to_be();
        if libc::bind(
            s,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ) != 0
            || libc::listen(s, 128) != 0
        {
            return Err(err("listen on port 22"));
        }
        Ok(s)
    }
}

/// From here on the init only reaps every child that ends (orphans of
/// the node come here) and, with `listener`, starts `sshd -i` for each
/// connection on port 22, as inetd (or systemd's `ssh.socket`) does.
fn serve_forever(listener: Option<libc::c_int>) -> ! {
    let sshd = |s: &str| CString::new(s).unwrap_or_default();
    let (program, config) = (
        sshd(super::sshd::SSHD),
        sshd(&format!("{}/sshd_config", super::sshd::IN_NODE)),
    );
    let (dash_i, dash_f, dash_e, log) = (
        sshd("-i"),
        sshd("-f"),
        sshd("-E"),
        sshd(super::sshd::LOG_IN_NODE),
    );
    let argv = [
        program.as_ptr(),
        dash_i.as_ptr(),
        dash_f.as_ptr(),
        config.as_ptr(),
        dash_e.as_ptr(),
        log.as_ptr(),
        std::ptr::null(),
    ];
    let path = sshd(&format!("PATH={}", super::exec::NODE_PATH));
    let envp = [path.as_ptr(), std::ptr::null()];
    let mut servers: std::collections::HashSet<libc::pid_t> = Default::default();
    // SAFETY: signal mask, fd, poll, accept, fork, exec and wait calls on
    // this single-threaded process and its children.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
        let mut chld: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut chld);
        libc::sigaddset(&mut chld, libc::SIGCHLD);
        // Nothing else of the parent's stays open; 0, 1 and 2 become
        // /dev/null (the servers' stderr).
        match listener {
            Some(l) => {
                libc::syscall(libc::SYS_close_range, 0u32, (l - 1) as u32, 0u32);
                libc::syscall(libc::SYS_close_range, (l + 1) as u32, u32::MAX, 0u32);
            }
            None => {
                libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
            }
        }
        for _ in 0..3 {
            libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        }
        let chld_fd = match listener {
            Some(_) => libc::signalfd(-1, &chld, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK),
            None => -1,
        };
        let (Some(l), true) = (listener, chld_fd >= 0) else {
            loop {
                while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
                libc::sigwaitinfo(&chld, std::ptr::null_mut());
            }
        };
        let mut fds = [
            libc::pollfd {
                fd: chld_fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: l,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let mut info: libc::signalfd_siginfo = std::mem::zeroed();
        loop {
            loop {
                let pid = libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG);
                if pid <= 0 {
                    break;
                }
                servers.remove(&pid);
            }
            if libc::poll(fds.as_mut_ptr(), 2, -1) < 0 {
                continue;
            }
            while libc::read(
                chld_fd,
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                std::mem::size_of::<libc::signalfd_siginfo>(),
            ) > 0
            {}
            loop {
                let conn = libc::accept4(
                    l,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC,
                );
                if conn < 0 {
                    break;
                }
                if servers.len() >= MAX_SSH_CONNECTIONS {
                    libc::close(conn);
                    continue;
                }
                match libc::fork() {
                    0 => {
                        let mut empty: libc::sigset_t = std::mem::zeroed();
                        libc::sigemptyset(&mut empty);
                        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
                        libc::setsid();
                        libc::dup2(conn, 0);
                        libc::dup2(conn, 1);
                        libc::execve(argv[0], argv.as_ptr(), envp.as_ptr());
                        libc::_exit(127);
                    }
                    pid => {
                        if pid > 0 {
                            servers.insert(pid);
                        }
                        libc::close(conn);
                    }
                }
            }
        }
    }
}
