//! What a process in a node may do: its capabilities and its seccomp
//! filter, and the host files it must not see.
//!
//! Root in a node keeps Docker's default capability set plus `NET_ADMIN`
//! (tests change routes, addresses and qdiscs in the node's own network
//! namespace); every other capability is dropped from the bounding set, so
//! nothing the node executes gets it back. `MKNOD` stays only when the
//! node has a devices cgroup that says which devices may be opened (cgroup
//! v1 `devices`; see `cgroup`). Two seccomp filters follow Docker's default
//! profile: an allow list (anything else fails with `EPERM`: `mount`,
//! `unshare`, `setns`, `bpf`, `kexec_load`, `init_module`, `reboot`,
//! `keyctl`, `clock_settime`...; `clone` only without namespace flags,
//! `personality` only with the harmless values, `socket` not for
//! `AF_VSOCK`), and `clone3` answered with `ENOSYS`, so that C libraries
//! fall back to `clone`, whose flags the first filter can see.
//!
//! A `privileged` node keeps every capability and runs without a filter.
//!
//! [`Sandbox::enter`] is what a forked child calls before `exec`: raw
//! system calls only, on data prepared in the parent (it runs between
//! `fork` and `exec` of a multi-threaded process).
//!
//! Not here: the namespaces and mounts of a node (`node`, `init`), which
//! processes enter it (`exec`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Capabilities by number (`linux/capability.h`).
pub mod cap {
    pub const CHOWN: u32 = 0;
    pub const DAC_OVERRIDE: u32 = 1;
    pub const FOWNER: u32 = 3;
    pub const FSETID: u32 = 4;
    pub const KILL: u32 = 5;
    pub const SETGID: u32 = 6;
    pub const SETUID: u32 = 7;
    pub const SETPCAP: u32 = 8;
    pub const NET_BIND_SERVICE: u32 = 10;
    pub const NET_ADMIN: u32 = 12;
    pub const NET_RAW: u32 = 13;
    pub const SYS_CHROOT: u32 = 18;
    pub const SYS_PTRACE: u32 = 19;
    pub const SYS_ADMIN: u32 = 21;
    pub const MKNOD: u32 = 27;
    pub const AUDIT_WRITE: u32 = 29;
    pub const SETFCAP: u32 = 31;
}

/// Docker's default capabilities (without `MKNOD`, see [`node_caps`]) and
/// `NET_ADMIN`.
pub const NODE_CAPS: &[(u32, &str)] = &[
    (cap::CHOWN, "CHOWN"),
    (cap::DAC_OVERRIDE, "DAC_OVERRIDE"),
    (cap::FOWNER, "FOWNER"),
    (cap::FSETID, "FSETID"),
    (cap::KILL, "KILL"),
    (cap::SETGID, "SETGID"),
    (cap::SETUID, "SETUID"),
    (cap::SETPCAP, "SETPCAP"),
    (cap::SETFCAP, "SETFCAP"),
    (cap::NET_BIND_SERVICE, "NET_BIND_SERVICE"),
    (cap::NET_RAW, "NET_RAW"),
    (cap::SYS_CHROOT, "SYS_CHROOT"),
    (cap::AUDIT_WRITE, "AUDIT_WRITE"),
    (cap::NET_ADMIN, "NET_ADMIN"),
];

/// The capability mask of a node's root: [`NODE_CAPS`], and `MKNOD` when
/// a devices cgroup restricts what device files can be opened.
pub fn node_caps(with_mknod: bool) -> u64 {
    let mut mask = NODE_CAPS.iter().fold(0u64, |m, (c, _)| m | (1 << c));
    if with_mknod {
        mask |= 1 << cap::MKNOD;
    }
    mask
}

/// What is applied to every process that enters a node.
#[derive(Debug)]
pub struct Sandbox {
    /// Capabilities kept (bounding, permitted, effective); `None`:
    /// privileged, everything is kept and no filter is installed.
    caps: Option<u64>,
    filters: Vec<BpfProgram>,
}

/// A `sock_fprog` for `seccomp(2)`.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const seccompiler::sock_filter,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

impl Sandbox {
    /// Keep the capabilities `caps` (`None`: all of them, privileged) and
    /// install `filters`.
    pub fn new(caps: Option<u64>, filters: Option<&Filters>) -> Sandbox {
        Sandbox {
            caps,
            filters: filters.map(|f| f.programs.clone()).unwrap_or_default(),
        }
    }

    /// [`Sandbox::new`] with filters packed by [`Filters::pack`] (what a
    /// node's init is handed).
    pub fn from_packed(caps: Option<u64>, packed: &[Vec<u64>]) -> Sandbox {
        Sandbox {
            caps,
            filters: packed
                .iter()
                .map(|p| p.iter().map(|&i| unpack(i)).collect())
                .collect(),
        }
    }

    pub fn is_privileged(&self) -> bool {
        self.caps.is_none()
    }

    /// The capability mask kept (all ones when privileged).
    pub fn caps(&self) -> u64 {
        self.caps.unwrap_or(u64::MAX)
    }

    /// Confine the calling process: drop capabilities from the bounding
    /// set, install the filters, keep only the node's capabilities. To be
    /// called in a forked child right before `exec` (raw system calls on
    /// data made in the parent, no allocation).
    ///
    /// # Safety
    /// Only in a single-threaded child; the filters stay installed for
    /// every later program of the process.
    pub unsafe fn enter(&self) -> Result<(), libc::c_int> {
        let Some(keep) = self.caps else {
            return Ok(());
        };
        for c in 0..64u32 {
            if keep & (1 << c) == 0
                && libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) != 0
            {
                let e = errno();
                // Past the last capability this kernel knows.
                if e == libc::EINVAL {
                    break;
                }
                return Err(e);
            }
        }
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            return Err(errno());
        }
        // The filters go on while CAP_SYS_ADMIN is still held, so
        // `no_new_privs` is not needed (as with Docker's defaults).
        for f in &self.filters {
            let prog = SockFprog {
                len: f.len() as libc::c_ushort,
                filter: f.as_ptr(),
            };
            if libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const SockFprog,
            ) != 0
            {
                return Err(errno());
            }
        }
        let header = CapHeader {
            version: CAP_VERSION_3,
            pid: 0,
        };
        let data = [
            CapData {
                effective: keep as u32,
                permitted: keep as u32,
                inheritable: 0,
            },
            CapData {
                effective: (keep >> 32) as u32,
                permitted: (keep >> 32) as u32,
                inheritable: 0,
            },
        ];
        if libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) != 0 {
            return Err(errno());
        }
        Ok(())
    }
}

fn errno() -> libc::c_int {
    // SAFETY: reading the thread's errno.
    unsafe { *libc::__errno_location() }
}

/// The compiled seccomp filters of unprivileged nodes (made once per
/// platform instance).
#[derive(Debug, Clone)]
pub struct Filters {
    programs: Vec<BpfProgram>,
}

/// Namespace flags `clone` may not be given in a node.
const CLONE_NS_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

/// `personality` values Docker allows (Linux, 32-bit address space,
/// `uname26`, both, and the query `0xffffffff`).
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// One BPF instruction packed as `code << 48 | jt << 40 | jf << 32 | k`.
fn pack(i: &seccompiler::sock_filter) -> u64 {
    (u64::from(i.code) << 48) | (u64::from(i.jt) << 40) | (u64::from(i.jf) << 32) | u64::from(i.k)
}

fn unpack(i: u64) -> seccompiler::sock_filter {
    seccompiler::sock_filter {
        code: (i >> 48) as u16,
        jt: (i >> 40) as u8,
        jf: (i >> 32) as u8,
        k: i as u32,
    }
}

impl Filters {
    /// The programs as plain numbers, one per instruction, to hand to a
    /// node's init in its plan ([`Sandbox::from_packed`] reads them back).
    pub fn pack(&self) -> Vec<Vec<u64>> {
        self.programs
            .iter()
            .map(|p| p.iter().map(pack).collect())
            .collect()
    }

    /// Compile the filters for this machine's architecture.
    pub fn compile() -> Result<Filters, String> {
        let arch = TargetArch::try_from(std::env::consts::ARCH)
            .map_err(|e| format!("no seccomp filter for this architecture: {e}"))?;
        let cond = |arg: u8, op: SeccompCmpOp, value: u64| {
            SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)
                .map_err(|e| e.to_string())
        };
        let rule = |c: Vec<SeccompCondition>| SeccompRule::new(c).map_err(|e| e.to_string());
        let mut allow: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        for nr in allowed_syscalls() {
            allow.insert(nr, Vec::new());
        }
        allow.insert(
            libc::SYS_clone,
            vec![rule(vec![SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(CLONE_NS_FLAGS),
                0,
            )
            .map_err(|e| e.to_string())?])?],
        );
        let mut personality = Vec::new();
        for p in PERSONALITIES {
            personality.push(rule(vec![cond(0, SeccompCmpOp::Eq, p)?])?);
        }
        allow.insert(libc::SYS_personality, personality);
        allow.insert(
            libc::SYS_socket,
            vec![rule(vec![cond(
                0,
                SeccompCmpOp::Ne,
                libc::AF_VSOCK as u64,
            )?])?],
        );
        allow.insert(libc::SYS_clone3, Vec::new());
        let main = SeccompFilter::new(
            allow,
            SeccompAction::Errno(libc::EPERM as u32),
            SeccompAction::Allow,
            arch,
        )
        .map_err(|e| e.to_string())?;
        let clone3 = SeccompFilter::new(
            [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            arch,
        )
        .map_err(|e| e.to_string())?;
        let programs = [main, clone3]
            .into_iter()
            .map(|f| BpfProgram::try_from(f).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Filters { programs })
    }
}

/// System calls numbered alike on every architecture (asm-generic) that
/// the `libc` crate does not name yet.
mod newer {
    pub const CACHESTAT: i64 = 451;
    pub const FCHMODAT2: i64 = 452;
    pub const MAP_SHADOW_STACK: i64 = 453;
    pub const FUTEX_WAKE: i64 = 454;
    pub const FUTEX_WAIT: i64 = 455;
    pub const FUTEX_REQUEUE: i64 = 456;
    #[cfg(target_arch = "x86_64")]
    pub const IO_PGETEVENTS: i64 = 333;
    #[cfg(not(target_arch = "x86_64"))]
    pub const IO_PGETEVENTS: i64 = 292;
}

/// Docker's default allow list (the unconditional part), for this
/// architecture.
fn allowed_syscalls() -> Vec<i64> {
    use libc::*;
    let mut v: Vec<i64> = vec![
        SYS_accept,
        SYS_accept4,
        SYS_adjtimex,
        SYS_bind,
        SYS_brk,
        SYS_capget,
        SYS_capset,
        SYS_chdir,
        SYS_chroot,
        SYS_clock_adjtime,
        SYS_clock_getres,
        SYS_clock_gettime,
        SYS_clock_nanosleep,
        SYS_close,
        SYS_close_range,
        SYS_connect,
        SYS_copy_file_range,
        SYS_dup,
        SYS_dup3,
        SYS_epoll_create1,
        SYS_epoll_ctl,
        SYS_epoll_pwait,
        SYS_epoll_pwait2,
        SYS_eventfd2,
        SYS_execve,
        SYS_execveat,
        SYS_exit,
        SYS_exit_group,
        SYS_faccessat,
        SYS_faccessat2,
        SYS_fadvise64,
        SYS_fallocate,
        SYS_fanotify_mark,
        SYS_fchdir,
        SYS_fchmod,
        SYS_fchmodat,
        SYS_fchown,
        SYS_fchownat,
        SYS_fcntl,
        SYS_fdatasync,
        SYS_fgetxattr,
        SYS_flistxattr,
        SYS_flock,
        SYS_fremovexattr,
        SYS_fsetxattr,
        SYS_fstat,
        SYS_fstatfs,
        SYS_fsync,
        SYS_ftruncate,
        SYS_futex,
        SYS_futex_waitv,
        SYS_getcpu,
        SYS_getcwd,
        SYS_getdents64,
        SYS_getegid,
        SYS_geteuid,
        SYS_getgid,
        SYS_getgroups,
        SYS_getitimer,
        SYS_getpeername,
        SYS_getpgid,
        SYS_getpid,
        SYS_getppid,
        SYS_getpriority,
        SYS_getrandom,
        SYS_getresgid,
        SYS_getresuid,
        SYS_getrlimit,
        SYS_get_robust_list,
        SYS_getrusage,
        SYS_getsid,
        SYS_getsockname,
        SYS_getsockopt,
        SYS_gettid,
        SYS_gettimeofday,
        SYS_getuid,
        SYS_getxattr,
        SYS_inotify_add_watch,
        SYS_inotify_init1,
        SYS_inotify_rm_watch,
        SYS_io_cancel,
        SYS_ioctl,
        SYS_io_destroy,
        SYS_io_getevents,
        newer::IO_PGETEVENTS,
        SYS_ioprio_get,
        SYS_ioprio_set,
        SYS_io_setup,
        SYS_io_submit,
        SYS_kill,
        SYS_landlock_add_rule,
        SYS_landlock_create_ruleset,
        SYS_landlock_restrict_self,
        SYS_lgetxattr,
        SYS_linkat,
        SYS_listen,
        SYS_listxattr,
        SYS_llistxattr,
        SYS_lremovexattr,
        SYS_lseek,
        SYS_lsetxattr,
        SYS_madvise,
        SYS_membarrier,
        SYS_memfd_create,
        SYS_memfd_secret,
        SYS_mincore,
        SYS_mkdirat,
        SYS_mknodat,
        SYS_mlock,
        SYS_mlock2,
        SYS_mlockall,
        SYS_mmap,
        SYS_mprotect,
        SYS_mq_getsetattr,
        SYS_mq_notify,
        SYS_mq_open,
        SYS_mq_timedreceive,
        SYS_mq_timedsend,
        SYS_mq_unlink,
        SYS_mremap,
        SYS_msgctl,
        SYS_msgget,
        SYS_msgrcv,
        SYS_msgsnd,
        SYS_msync,
        SYS_munlock,
        SYS_munlockall,
        SYS_munmap,
        SYS_name_to_handle_at,
        SYS_nanosleep,
        SYS_newfstatat,
        SYS_openat,
        SYS_openat2,
        SYS_pidfd_open,
        SYS_pidfd_send_signal,
        SYS_pipe2,
        SYS_pkey_alloc,
        SYS_pkey_free,
        SYS_pkey_mprotect,
        SYS_ppoll,
        SYS_prctl,
        SYS_pread64,
        SYS_preadv,
        SYS_preadv2,
        SYS_prlimit64,
        SYS_process_mrelease,
        SYS_process_vm_readv,
        SYS_process_vm_writev,
        SYS_pselect6,
        SYS_ptrace,
        SYS_pwrite64,
        SYS_pwritev,
        SYS_pwritev2,
        SYS_read,
        SYS_readahead,
        SYS_readlinkat,
        SYS_readv,
        SYS_recvfrom,
        SYS_recvmmsg,
        SYS_recvmsg,
        SYS_remap_file_pages,
        SYS_removexattr,
        SYS_renameat,
        SYS_renameat2,
        SYS_restart_syscall,
        SYS_rseq,
        SYS_rt_sigaction,
        SYS_rt_sigpending,
        SYS_rt_sigprocmask,
        SYS_rt_sigqueueinfo,
        SYS_rt_sigreturn,
        SYS_rt_sigsuspend,
        SYS_rt_sigtimedwait,
        SYS_rt_tgsigqueueinfo,
        SYS_sched_getaffinity,
        SYS_sched_getattr,
        SYS_sched_getparam,
        SYS_sched_get_priority_max,
        SYS_sched_get_priority_min,
        SYS_sched_getscheduler,
        SYS_sched_rr_get_interval,
        SYS_sched_setaffinity,
        SYS_sched_setattr,
        SYS_sched_setparam,
        SYS_sched_setscheduler,
        SYS_sched_yield,
        SYS_seccomp,
        SYS_semctl,
        SYS_semget,
        SYS_semop,
        SYS_semtimedop,
        SYS_sendfile,
        SYS_sendmmsg,
        SYS_sendmsg,
        SYS_sendto,
        SYS_setfsgid,
        SYS_setfsuid,
        SYS_setgid,
        SYS_setgroups,
        SYS_setitimer,
        SYS_setpgid,
        SYS_setpriority,
        SYS_setregid,
        SYS_setresgid,
        SYS_setresuid,
        SYS_setreuid,
        SYS_setrlimit,
        SYS_set_robust_list,
        SYS_setsid,
        SYS_setsockopt,
        SYS_set_tid_address,
        SYS_setuid,
        SYS_setxattr,
        SYS_shmat,
        SYS_shmctl,
        SYS_shmdt,
        SYS_shmget,
        SYS_shutdown,
        SYS_sigaltstack,
        SYS_signalfd4,
        SYS_socketpair,
        SYS_splice,
        SYS_statfs,
        SYS_statx,
        SYS_symlinkat,
        SYS_sync,
        SYS_sync_file_range,
        SYS_syncfs,
        SYS_sysinfo,
        SYS_tee,
        SYS_tgkill,
        SYS_timer_create,
        SYS_timer_delete,
        SYS_timer_getoverrun,
        SYS_timer_gettime,
        SYS_timer_settime,
        SYS_timerfd_create,
        SYS_timerfd_gettime,
        SYS_timerfd_settime,
        SYS_times,
        SYS_tkill,
        SYS_truncate,
        SYS_umask,
        SYS_uname,
        SYS_unlinkat,
        SYS_utimensat,
        SYS_vmsplice,
        SYS_wait4,
        SYS_waitid,
        SYS_write,
        SYS_writev,
        newer::CACHESTAT,
        newer::FCHMODAT2,
        newer::MAP_SHADOW_STACK,
        newer::FUTEX_WAKE,
        newer::FUTEX_WAIT,
        newer::FUTEX_REQUEUE,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        SYS_access,
        SYS_alarm,
        SYS_arch_prctl,
        SYS_chmod,
        SYS_chown,
        SYS_creat,
        SYS_dup2,
        SYS_epoll_create,
        SYS_epoll_wait,
        SYS_eventfd,
        SYS_fork,
        SYS_futimesat,
        SYS_getdents,
        SYS_getpgrp,
        SYS_inotify_init,
        SYS_lchown,
        SYS_link,
        SYS_lstat,
        SYS_mkdir,
        SYS_mknod,
        SYS_modify_ldt,
        SYS_open,
        SYS_pause,
        SYS_pipe,
        SYS_poll,
        SYS_readlink,
        SYS_rename,
        SYS_rmdir,
        SYS_select,
        SYS_signalfd,
        SYS_stat,
        SYS_symlink,
        SYS_time,
        SYS_unlink,
        SYS_utime,
        SYS_utimes,
        SYS_vfork,
    ]);
    v
}

/// Host files a node never sees when its image is (or contains) the
/// host's root: credentials of the host and of its users. Paths are
/// absolute host paths; see [`masks_under`].
pub const HOST_SECRETS: &[&str] = &[
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/ssh/ssh_host_rsa_key",
    "/etc/ssh/ssh_host_ecdsa_key",
    "/etc/ssh/ssh_host_ed25519_key",
    "/etc/ssh/ssh_host_dsa_key",
    "/etc/ssl/private",
    "/root",
    "/home",
    "/var/lib/tg",
];

/// How a secret is hidden in a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mask {
    /// A folder: an empty folder of the node's own (opaque in the overlay).
    EmptyDir(PathBuf),
    /// `/etc/shadow` and `/etc/gshadow`: the node's own copy with every
    /// password field locked (`*`), so accounts and tools still work.
    Locked(PathBuf),
    /// Any other file: gone (a whiteout in the overlay).
    Gone(PathBuf),
}

/// The masks for a node whose lower layer is `lower`: every secret path
/// (absolute, on the host) that lies under `lower` and exists there, as a
/// path inside the node. `is_dir` says whether a host path is a folder
/// (`None`: it does not exist).
pub fn masks_under(
    lower: &Path,
    secrets: &[PathBuf],
    is_dir: &dyn Fn(&Path) -> Option<bool>,
) -> Vec<Mask> {
    let mut out = Vec::new();
    for s in secrets {
        let Ok(rel) = s.strip_prefix(lower) else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let inside = Path::new("/").join(rel);
        let Some(dir) = is_dir(s) else {
            continue;
        };
        let name = inside.file_name().and_then(|n| n.to_str()).unwrap_or("");
        out.push(if dir {
            Mask::EmptyDir(inside)
        } else if matches!(name, "shadow" | "gshadow") && inside.parent() == Some(Path::new("/etc"))
        {
            Mask::Locked(inside)
        } else {
            Mask::Gone(inside)
        });
    }
    // A folder mask hides what lies below it: drop those.
    let dirs: Vec<PathBuf> = out
        .iter()
        .filter_map(|m| match m {
            Mask::EmptyDir(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    out.retain(|m| {
        let p = match m {
            Mask::EmptyDir(p) | Mask::Locked(p) | Mask::Gone(p) => p,
        };
        !dirs.iter().any(|d| p != d && p.starts_with(d))
    });
    out
}

/// `text` of a shadow file with every password field replaced by `*`.
pub fn lock_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut fields: Vec<&str> = line.split(':').collect();
        if fields.len() > 1 {
            fields[1] = "*";
        }
        out.push_str(&fields.join(":"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_dockers_and_net_admin() {
        let m = node_caps(false);
        assert_eq!(m.count_ones(), 14);
        assert_ne!(m & (1 << cap::NET_ADMIN), 0);
        assert_eq!(m & (1 << cap::SYS_ADMIN), 0);
        assert_eq!(m & (1 << cap::SYS_PTRACE), 0);
        assert_eq!(m & (1 << cap::MKNOD), 0);
        assert_ne!(node_caps(true) & (1 << cap::MKNOD), 0);
    }

    #[test]
    fn packed_filters_come_back_the_same() {
        let f = Filters::compile().unwrap();
        let back = Sandbox::from_packed(Some(1), &f.pack());
        assert_eq!(back.filters.len(), f.programs.len());
        for (a, b) in back.filters.iter().zip(&f.programs) {
            assert_eq!(a.len(), b.len());
            assert!(a
                .iter()
                .zip(b)
                .all(|(x, y)| (x.code, x.jt, x.jf, x.k) == (y.code, y.jt, y.jf, y.k)));
        }
    }

    #[test]
    fn filters_compile() {
        let f = Filters::compile().unwrap();
        assert_eq!(f.programs.len(), 2);
        assert!(f.programs[0].len() > 300);
        let all = allowed_syscalls();
        for denied in [
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_pivot_root,
            libc::SYS_bpf,
            libc::SYS_init_module,
            libc::SYS_reboot,
            libc::SYS_keyctl,
            libc::SYS_clock_settime,
            libc::SYS_kexec_load,
            libc::SYS_open_by_handle_at,
        ] {
            assert!(!all.contains(&denied), "{denied}");
        }
    }

    #[test]
    fn masks_are_the_secrets_under_the_lower_layer() {
        let secrets: Vec<PathBuf> = ["/etc/shadow", "/root", "/root/.ssh", "/run/tg", "/etc/x"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let is_dir = |p: &Path| match p.to_str() {
            Some("/etc/shadow") | Some("/etc/x") => Some(false),
            Some("/root") | Some("/root/.ssh") => Some(true),
            _ => None,
        };
        let m = masks_under(Path::new("/"), &secrets, &is_dir);
        assert_eq!(
            m,
            [
                Mask::Locked("/etc/shadow".into()),
                Mask::EmptyDir("/root".into()),
                Mask::Gone("/etc/x".into()),
            ]
        );
        // An image elsewhere holds none of the host's files.
        assert!(
            masks_under(Path::new("/var/lib/tg/images/debian-x"), &secrets, &is_dir).is_empty()
        );
        // A folder image under the root holds those below it.
        let m = masks_under(Path::new("/root"), &secrets, &is_dir);
        assert_eq!(m, [Mask::EmptyDir("/.ssh".into())]);
    }

    #[test]
    fn passwords_are_locked() {
        assert_eq!(
            lock_passwords("root:$6$abc:19000:0:99999:7:::\nbin:*:19000::::::\n"),
            "root:*:19000:0:99999:7:::\nbin:*:19000::::::\n"
        );
    }
}
