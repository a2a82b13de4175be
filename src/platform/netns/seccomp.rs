//! The seccomp programs of unprivileged nodes: Docker's default profile,
//! compiled so that installing it is cheap.
//!
//! Two programs, stacked (the kernel runs both and the stricter verdict
//! wins):
//! - **by number**: the allow list as a binary search over runs of system
//!   call numbers with one verdict (allow, `EPERM`, or `ENOSYS` for
//!   `clone3`, so that C libraries fall back to `clone`). Anything not
//!   listed, including numbers this kernel does not know yet, fails with
//!   `EPERM`.
//! - **by argument** (made with seccompiler): `clone` with a namespace flag,
//!   `personality` with a value Docker does not allow and `socket` for
//!   `AF_VSOCK` fail with `EPERM`; everything else passes.
//!
//! Why by number and not a list: seccompiler states an allow list as one
//! comparison per system call, ~1,000 instructions for Docker's ~330. The
//! kernel checks, converts and JITs the whole program on every
//! `seccomp(2)` and, to build its per-syscall cache, runs it once for every
//! system call number: with a linear list that was ~1 ms of CPU for every
//! node. The search is a few hundred instructions and ~10 steps for any
//! number. See docs/decisions.md.
//!
//! Not here: who installs them (`sandbox::Sandbox::enter`, a node's init).

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

/// The compiled seccomp filters of unprivileged nodes (made once per
/// platform instance).
#[derive(Debug, Clone)]
pub struct Filters {
    pub(super) programs: Vec<BpfProgram>,
}

/// Namespace flags `clone` may not be given in a node.
const CLONE_NS_FLAGS: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

/// `personality` values Docker allows (Linux, 32-bit address space,
/// `uname26`, both, and the query `0xffffffff`).
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// `linux/audit.h`: the `arch` of this machine's native system calls.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: Option<u32> = Some(62 | 0x8000_0000 | 0x4000_0000);
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: Option<u32> = Some(183 | 0x8000_0000 | 0x4000_0000);
#[cfg(target_arch = "riscv64")]
const AUDIT_ARCH: Option<u32> = Some(243 | 0x8000_0000 | 0x4000_0000);
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
)))]
const AUDIT_ARCH: Option<u32> = None;

// Classic BPF (`linux/filter.h`, `linux/seccomp.h`).
const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JMP_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const BPF_JMP_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const BPF_JMP_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// One BPF instruction packed as `code << 48 | jt << 40 | jf << 32 | k`.
fn pack(i: &sock_filter) -> u64 {
    (u64::from(i.code) << 48) | (u64::from(i.jt) << 40) | (u64::from(i.jf) << 32) | u64::from(i.k)
}

pub(super) fn unpack(i: u64) -> sock_filter {
    sock_filter {
        code: (i >> 48) as u16,
        jt: (i >> 40) as u8,
        jf: (i >> 32) as u8,
        k: i as u32,
    }
}

impl Filters {
    /// The programs as plain numbers, one per instruction, to hand to a
    /// node's init in its plan (`Sandbox::from_packed` reads them back).
    pub fn pack(&self) -> Vec<Vec<u64>> {
        self.programs
            .iter()
            .map(|p| p.iter().map(pack).collect())
            .collect()
    }

    /// Compile the filters for this machine's architecture.
    pub fn compile() -> Result<Filters, String> {
        let audit = AUDIT_ARCH.ok_or_else(|| {
            format!(
                "no seccomp filter for this architecture ({})",
                std::env::consts::ARCH
            )
        })?;
        let arch = TargetArch::try_from(std::env::consts::ARCH)
            .map_err(|e| format!("no seccomp filter for this architecture: {e}"))?;
        let allow = u32::from(SeccompAction::Allow);
        let mut verdicts: BTreeMap<u32, u32> = allowed_syscalls()
            .into_iter()
            .chain([libc::SYS_clone, libc::SYS_personality, libc::SYS_socket])
            .map(|nr| (nr as u32, allow))
            .collect();
        verdicts.insert(
            libc::SYS_clone3 as u32,
            u32::from(SeccompAction::Errno(libc::ENOSYS as u32)),
        );
        let by_number = by_number(
            audit,
            &verdicts,
            u32::from(SeccompAction::Errno(libc::EPERM as u32)),
        )?;
        Ok(Filters {
            programs: vec![by_number, by_argument(arch)?],
        })
    }
}

/// The program that denies `clone`, `personality` and `socket` by their
/// first argument and lets everything else pass.
fn by_argument(arch: TargetArch) -> Result<BpfProgram, String> {
    let cond = |len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64| {
        SeccompCondition::new(0, len, op, value).map_err(|e| e.to_string())
    };
    let rule = |c: Vec<SeccompCondition>| SeccompRule::new(c).map_err(|e| e.to_string());
    let mut deny: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    // One rule per flag: any of them set is a match.
    let mut clone = Vec::new();
    for flag in CLONE_NS_FLAGS {
        clone.push(rule(vec![cond(
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag),
            flag,
        )?])?);
    }
    deny.insert(libc::SYS_clone, clone);
    // The conditions of one rule must all hold: a value none of the allowed.
    let mut personality = Vec::new();
    for p in PERSONALITIES {
        personality.push(cond(SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, p)?);
    }
    deny.insert(libc::SYS_personality, vec![rule(personality)?]);
    deny.insert(
        libc::SYS_socket,
        vec![rule(vec![cond(
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Eq,
            libc::AF_VSOCK as u64,
        )?])?],
    );
    let filter = SeccompFilter::new(
        deny,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    BpfProgram::try_from(filter).map_err(|e| e.to_string())
}

/// A program that checks the architecture (anything else kills the
/// process, as seccompiler does) and returns `verdicts[nr]`, or `default`
/// for a number not in the map, by binary search over the runs of numbers
/// that share a verdict.
fn by_number(
    audit_arch: u32,
    verdicts: &BTreeMap<u32, u32>,
    default: u32,
) -> Result<BpfProgram, String> {
    // Runs: (first number, verdict), from 0 up, each verdict unlike the
    // one before.
    let mut runs: Vec<(u32, u32)> = Vec::new();
    let mut push = |start: u32, verdict: u32| {
        if runs.last().is_some_and(|r| r.0 == start) {
            runs.pop();
        }
        if runs.last().map(|r| r.1) != Some(verdict) {
            runs.push((start, verdict));
        }
    };
    push(0, default);
    let mut next = Some(0u32);
    for (&nr, &verdict) in verdicts {
        if let Some(gap) = next.filter(|&n| n < nr) {
            push(gap, default);
        }
        push(nr, verdict);
        next = nr.checked_add(1);
    }
    if let Some(rest) = next {
        push(rest, default);
    }
    let mut program = vec![
        stmt(BPF_LD_W_ABS, DATA_ARCH),
        jump(BPF_JMP_JEQ_K, audit_arch, 1, 0),
        stmt(BPF_RET_K, u32::from(SeccompAction::KillProcess)),
        stmt(BPF_LD_W_ABS, DATA_NR),
    ];
    program.extend(search(&runs));
    // The kernel takes at most 4,096 instructions (`BPF_MAXINSNS`).
    if program.len() > 4096 {
        return Err(format!(
            "the seccomp program has {} instructions (at most 4096)",
            program.len()
        ));
    }
    Ok(program)
}

/// The search over `runs` (sorted by first number, the first one starting
/// at 0) for the number in the accumulator: a `ret` of the run's verdict.
fn search(runs: &[(u32, u32)]) -> Vec<sock_filter> {
    if let [(_, verdict)] = runs {
        return vec![stmt(BPF_RET_K, *verdict)];
    }
    let mid = runs.len() / 2;
    let below = search(&runs[..mid]);
    let above = search(&runs[mid..]);
    let mut out = Vec::with_capacity(below.len() + above.len() + 2);
    match u8::try_from(below.len()) {
        // nr >= first of the upper half: skip the lower half.
        Ok(skip) => out.push(jump(BPF_JMP_JGE_K, runs[mid].0, skip, 0)),
        // Too far for a conditional jump: through an unconditional one.
        Err(_) => {
            out.push(jump(BPF_JMP_JGE_K, runs[mid].0, 0, 1));
            out.push(stmt(BPF_JMP_JA, below.len() as u32));
        }
    }
    out.extend(below);
    out.extend(above);
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `struct seccomp_data` for one call: number, arch and first argument.
    struct Call {
        nr: u32,
        arch: u32,
        arg0: u64,
    }

    impl Call {
        fn word(&self, offset: u32) -> u32 {
            match offset {
                0 => self.nr,
                4 => self.arch,
                16 => self.arg0 as u32,
                20 => (self.arg0 >> 32) as u32,
                // The instruction pointer and other arguments: unused here.
                8 | 12 | 24..=60 => 0,
                _ => panic!("load from offset {offset}"),
            }
        }
    }

    /// What the kernel does with a classic BPF seccomp program (the
    /// instructions seccompiler and `by_number` emit), step by step.
    fn run(program: &[sock_filter], call: &Call) -> u32 {
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let i = &program[pc];
            pc += 1;
            let class = i.code & 0x07;
            match (class, i.code) {
                (0x00, 0x20) => a = call.word(i.k),
                (0x04, 0x54) => a &= i.k,
                (0x05, 0x05) => pc += i.k as usize,
                (0x05, op) => {
                    let taken = match op & 0xf0 {
                        0x10 => a == i.k,
                        0x20 => a > i.k,
                        0x30 => a >= i.k,
                        0x40 => a & i.k != 0,
                        _ => panic!("jump {op:#x}"),
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                (0x06, 0x06) => return i.k,
                _ => panic!("instruction {:#x}", i.code),
            }
        }
    }

    /// The verdict of stacked programs: the strictest action wins
    /// (`seccomp(2)`: kill, trap, errno, trace, log, allow).
    fn verdict(programs: &[BpfProgram], call: &Call) -> u32 {
        let rank = |v: u32| match v & 0xffff_0000 {
            0x8000_0000 => 0,
            0x0000_0000 => 1,
            0x0003_0000 => 2,
            0x0005_0000 => 3,
            0x7ff0_0000 => 5,
            0x7fff_0000 => 6,
            other => panic!("action {other:#x}"),
        };
        programs
            .iter()
            .map(|p| run(p, call))
            .min_by_key(|&v| rank(v))
            .unwrap()
    }

    /// Docker's profile as seccompiler states it, one comparison per
    /// system call: what the programs replaced, kept as the reference.
    fn linear_reference() -> Vec<BpfProgram> {
        let arch = TargetArch::try_from(std::env::consts::ARCH).unwrap();
        let cond = |op: SeccompCmpOp, value: u64| {
            SeccompCondition::new(0, SeccompCmpArgLen::Dword, op, value).unwrap()
        };
        let mut allow: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        for nr in allowed_syscalls() {
            allow.insert(nr, Vec::new());
        }
        let ns = CLONE_NS_FLAGS.iter().fold(0, |a, f| a | f);
        allow.insert(
            libc::SYS_clone,
            vec![SeccompRule::new(vec![SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(ns),
                0,
            )
            .unwrap()])
            .unwrap()],
        );
        allow.insert(
            libc::SYS_personality,
            PERSONALITIES
                .iter()
                .map(|&p| SeccompRule::new(vec![cond(SeccompCmpOp::Eq, p)]).unwrap())
                .collect(),
        );
        allow.insert(
            libc::SYS_socket,
            vec![SeccompRule::new(vec![cond(SeccompCmpOp::Ne, libc::AF_VSOCK as u64)]).unwrap()],
        );
        allow.insert(libc::SYS_clone3, Vec::new());
        let main = SeccompFilter::new(
            allow,
            SeccompAction::Errno(libc::EPERM as u32),
            SeccompAction::Allow,
            arch,
        )
        .unwrap();
        let clone3 = SeccompFilter::new(
            [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            arch,
        )
        .unwrap();
        [main, clone3]
            .into_iter()
            .map(|f| BpfProgram::try_from(f).unwrap())
            .collect()
    }

    #[test]
    fn verdicts_are_those_of_the_linear_allow_list() {
        let ours = Filters::compile().unwrap().programs;
        let reference = linear_reference();
        let audit = AUDIT_ARCH.unwrap();
        let args = [
            0,
            1,
            0x8,
            0x20000,
            0x20008,
            0xffff_ffff,
            libc::AF_INET as u64,
            libc::AF_VSOCK as u64,
            libc::SIGCHLD as u64,
            (libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES) as u64,
            libc::CLONE_NEWNET as u64 | libc::SIGCHLD as u64,
            libc::CLONE_NEWUSER as u64,
            libc::CLONE_NEWNS as u64 | libc::CLONE_VM as u64,
            1 << 40,
        ];
        let numbers = (0..1100u32).chain([0x4000_0000, 0x4000_0001, 0x7fff_ffff, u32::MAX]);
        let mut checked = 0;
        for nr in numbers {
            for arch in [audit, 0x4000_0003] {
                for &arg0 in &args {
                    let call = Call { nr, arch, arg0 };
                    assert_eq!(
                        verdict(&ours, &call),
                        verdict(&reference, &call),
                        "system call {nr}, arch {arch:#x}, first argument {arg0:#x}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 30_000);
    }

    #[test]
    fn the_number_program_is_short_and_its_search_shallow() {
        let f = Filters::compile().unwrap();
        let linear: usize = linear_reference().iter().map(Vec::len).sum();
        let ours: usize = f.programs.iter().map(Vec::len).sum();
        assert!(ours * 2 < linear, "{ours} instructions against {linear}");
        // Any number: the arch check, the load, at most ~2 log2(runs)
        // comparisons and the return.
        let mut steps_max = 0;
        for nr in 0..1100u32 {
            let (mut pc, mut steps, mut a) = (0usize, 0, 0u32);
            let p = &f.programs[0];
            loop {
                let i = &p[pc];
                steps += 1;
                pc += 1;
                match i.code {
                    BPF_LD_W_ABS => {
                        a = if i.k == DATA_NR {
                            nr
                        } else {
                            AUDIT_ARCH.unwrap()
                        }
                    }
                    BPF_JMP_JA => pc += i.k as usize,
                    BPF_JMP_JEQ_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                    BPF_JMP_JGE_K => pc += usize::from(if a >= i.k { i.jt } else { i.jf }),
                    BPF_RET_K => break,
                    c => panic!("instruction {c:#x}"),
                }
            }
            steps_max = steps_max.max(steps);
        }
        assert!(steps_max <= 24, "{steps_max} steps");
    }

    #[test]
    fn runs_cover_every_number_once() {
        let v: BTreeMap<u32, u32> = [(0, 1), (1, 1), (3, 2), (4, 1), (u32::MAX, 1)]
            .into_iter()
            .collect();
        let p = by_number(7, &v, 9).unwrap();
        let call = |nr| {
            run(
                &p,
                &Call {
                    nr,
                    arch: 7,
                    arg0: 0,
                },
            )
        };
        assert_eq!(
            [0, 1, 2, 3, 4, 5, 1000, u32::MAX - 1, u32::MAX].map(call),
            [1, 1, 9, 2, 1, 9, 9, 9, 1]
        );
        assert_eq!(
            run(
                &p,
                &Call {
                    nr: 0,
                    arch: 8,
                    arg0: 0
                }
            ),
            0x8000_0000
        );
        let empty = by_number(7, &BTreeMap::new(), 9).unwrap();
        assert_eq!(
            run(
                &empty,
                &Call {
                    nr: 5,
                    arch: 7,
                    arg0: 0
                }
            ),
            9
        );
    }

    #[test]
    fn far_halves_are_reached_through_an_unconditional_jump() {
        // Every other number allowed: ~1,000 runs, halves longer than 255.
        let v: BTreeMap<u32, u32> = (0..500u32).map(|n| (n * 2, 1)).collect();
        let p = by_number(7, &v, 9).unwrap();
        assert!(p.iter().any(|i| i.code == BPF_JMP_JA));
        for nr in 0..1100u32 {
            let want = if nr < 1000 && nr % 2 == 0 { 1 } else { 9 };
            assert_eq!(
                run(
                    &p,
                    &Call {
                        nr,
                        arch: 7,
                        arg0: 0
                    }
                ),
                want,
                "{nr}"
            );
        }
    }

    #[test]
    fn dangerous_calls_are_not_on_the_list() {
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
}
