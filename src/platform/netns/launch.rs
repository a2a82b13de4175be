//! Starting a node's init: a process cloned into new PID, mount, network,
//! UTS and IPC namespaces that runs `tg-init`, given its plan over a pipe,
//! and its answer read back ("ok", or what failed).
//!
//! The clone shares tg's memory until the child execs (`CLONE_VM |
//! CLONE_VFORK`, as `posix_spawn` does): a fork would copy the page tables
//! of the whole engine for each node, and throw them away at the exec.
//!
//! Not here: what the init does (`init`), the node's folders and record
//! (`node`).

use std::fs;
use std::io::{Read, Write as _};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::init::{InitPlan, ANSWER_FD, PLAN_FD};
use super::node::{cstr, io_error, proc_start};
use crate::platform::PlatformError;

/// Start the node's init in new PID, mount, network, UTS and IPC
/// namespaces; wait for its answer. Its PID and start time.
pub(super) fn start_init(
    init: &Path,
    plan: &InitPlan,
    hostname: &str,
) -> Result<(i32, u64), PlatformError> {
    let program = cstr(init.as_os_str().as_bytes())?;
    let argv0 = cstr(b"tg-init")?;
    let argv = [argv0.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    let json = serde_json::to_vec(plan).unwrap_or_default();
    let (plan_r, plan_w) = pipe()?;
    let (answer_r, answer_w) = pipe()?;
    let null = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| io_error("open", Path::new("/dev/null"), e))?;
    // Fds above the ones the child moves them to.
    let high = |fd: RawFd| -> Result<OwnedFd, PlatformError> {
        // SAFETY: duplicating our own fd; the result is owned.
        let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
        if n < 0 {
            return Err(PlatformError::new(format!(
                "cannot duplicate a pipe: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: `n` is a new fd of ours.
        Ok(unsafe { OwnedFd::from_raw_fd(n) })
    };
    let (plan_child, answer_child, null_child) = (
        high(plan_r.as_raw_fd())?,
        high(answer_w.as_raw_fd())?,
        high(null.as_raw_fd())?,
    );
    drop((plan_r, answer_w, null));
    let (pr, aw, nl) = (
        plan_child.as_raw_fd(),
        answer_child.as_raw_fd(),
        null_child.as_raw_fd(),
    );
    let child = ChildArgs {
        plan: pr,
        answer: aw,
        null: nl,
        program: program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
    };
    let pid = clone_init(&child).map_err(|e| {
        PlatformError::new(format!(
            "cannot create node `{hostname}`: cannot start its init: {e}"
        ))
    })?;
    let pid = pid as i32;
    drop((plan_child, answer_child, null_child));
    let outcome = (|| {
        let mut w = fs::File::from(plan_w);
        let _ = w.write_all(&json);
        drop(w);
        let mut answer = String::new();
        let _ = fs::File::from(answer_r).read_to_string(&mut answer);
        if answer == "ok" {
            return Ok(());
        }
        if answer.is_empty() {
            let mut status = 0;
            // SAFETY: waiting for our own child, which failed.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            let why = if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 127 {
                format!(
                    "cannot run the node init `{}` (it is built and installed with tg)",
                    init.display()
                )
            } else {
                "its init died while setting up".to_string()
            };
            return Err(PlatformError::new(format!(
                "cannot create node `{hostname}`: {why}"
            )));
        }
        Err(PlatformError::new(format!(
            "cannot create node `{hostname}`: {answer}"
        )))
    })();
    if let Err(e) = outcome {
        // SAFETY: killing and reaping our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
        }
        return Err(e);
    }
    let (start, _) = proc_start(pid).ok_or_else(|| {
        PlatformError::new(format!(
            "cannot create node `{hostname}`: its init ended right after it started"
        ))
    })?;
    Ok((pid, start))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), PlatformError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| PlatformError::new(format!("cannot make a pipe: {e}")))
}

/// What the cloned child needs, made before the clone: it may only make
/// system calls on these.
struct ChildArgs {
    plan: RawFd,
    answer: RawFd,
    null: RawFd,
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
}

/// The child's stack, used until it execs.
const CHILD_STACK: usize = 64 * 1024;

/// Clone the init's process; its PID. The calling thread waits until the
/// child has exec'd (or exited), so `child` and the stack outlive their use.
fn clone_init(child: &ChildArgs) -> std::io::Result<i32> {
    let flags = libc::CLONE_VM
        | libc::CLONE_VFORK
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::SIGCHLD;
    let mut stack = vec![0u8; CHILD_STACK];
    // SAFETY: the top of our buffer, aligned down to 16 bytes as the ABI wants.
    let top = unsafe { stack.as_mut_ptr().add(CHILD_STACK) };
    let top = (top as usize & !15) as *mut libc::c_void;
    // No signal may run one of tg's handlers in the child (on its stack, in
    // tg's memory): block every signal around the clone; the child resets
    // the handlers before it unblocks them.
    // SAFETY: sigset and pthread_sigmask on our own thread.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: `child_main` only makes system calls on `child`'s fds and
    // strings, which live until the clone returns (CLONE_VFORK).
    let pid = unsafe {
        libc::clone(
            child_main,
            top,
            flags,
            (child as *const ChildArgs).cast_mut().cast(),
        )
    };
    let error = std::io::Error::last_os_error();
    // SAFETY: as above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    drop(stack);
    if pid < 0 {
        return Err(error);
    }
    Ok(pid)
}

/// The cloned child, in tg's memory until the exec: system calls only.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildArgs` of `clone_init`, alive while we run;
    // every call below is async-signal-safe.
    unsafe {
        let a = &*(arg as *const ChildArgs);
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for sig in 1..65 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        if libc::dup2(a.plan, PLAN_FD) < 0
            || libc::dup2(a.answer, ANSWER_FD) < 0
            || libc::dup2(a.null, 0) < 0
            || libc::dup2(a.null, 1) < 0
            || libc::dup2(a.null, 2) < 0
        {
            libc::_exit(126);
        }
        libc::syscall(libc::SYS_close_range, 5u32, u32::MAX, 0u32);
        libc::execve(a.program, a.argv, a.envp);
        libc::_exit(127)
    }
}
