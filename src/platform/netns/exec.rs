//! Running commands inside a node.
//!
//! A command runs in a forked child that enters the node's namespaces with
//! `setns` (net, UTS, IPC, then mount, which also makes the node's root its
//! `/`), moves itself into the node's cgroups and then executes the program,
//! looked up in the node's `PATH`. The calling process never changes
//! namespace. The environment is fixed: `PATH`, `HOME=/root`, `TERM=dumb`.
//!
//! This module does not make nodes (see `node`) and knows nothing of apt
//! (see `package`, which uses [`node_command`] with the mount namespace only).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

use super::cgroup;
use super::node::{node_exists, NodePaths};
use crate::platform::{ExecResponse, PlatformError};

/// `PATH` inside nodes.
pub const NODE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Which of the node's namespaces a command enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enter {
    /// Net, UTS, IPC and mount: fully inside the node.
    All,
    /// The mount namespace only: the node's files, the host's network
    /// (package installs reach the mirror this way).
    MountOnly,
}

/// A `Command` for `argv` that runs inside the node (see [`Enter`]), in its
/// cgroups, with the node environment, stdin from `/dev/null`. The caller
/// sets up stdout/stderr and spawns it.
pub(crate) fn node_command(
    paths: &NodePaths,
    sid: &str,
    hostname: &str,
    argv: &[String],
    enter: Enter,
) -> Result<Command, PlatformError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(PlatformError::new("cannot run an empty command"));
    };
    if !node_exists(paths) {
        return Err(PlatformError::new(format!(
            "node `{hostname}` does not exist on this host (its namespaces are gone); \
             run `tg apply` to create it again"
        )));
    }
    let mut ns_files: Vec<(File, libc::c_int)> = Vec::new();
    for (path, nstype) in paths.namespaces() {
        if enter == Enter::MountOnly && nstype != libc::CLONE_NEWNS {
            continue;
        }
        let f = File::open(path).map_err(|e| {
            PlatformError::new(format!(
                "cannot open namespace file `{}` of node `{hostname}`: {e}",
                path.display()
            ))
        })?;
        ns_files.push((f, nstype));
    }
    let cgroups = cgroup::procs_files(sid, hostname);
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", NODE_PATH)
        .env("HOME", "/root")
        .env("TERM", "dumb")
        .stdin(Stdio::null());
    let ns_fds: Vec<(RawFd, libc::c_int)> =
        ns_files.iter().map(|(f, t)| (f.as_raw_fd(), *t)).collect();
    let cg_fds: Vec<RawFd> = cgroups.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: the closure only makes raw syscalls (write, setns, chdir) on
    // fds kept open by the files it owns; nothing allocates.
    unsafe {
        cmd.pre_exec(move || {
            // Keep the files (and so the fds) alive as long as the command.
            let _keep = (&ns_files, &cgroups);
            for fd in &cg_fds {
                if libc::write(*fd, b"0".as_ptr().cast(), 1) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for (fd, nstype) in &ns_fds {
                if libc::setns(*fd, *nstype) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if libc::chdir(c"/root".as_ptr()) != 0 && libc::chdir(c"/".as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(cmd)
}

/// Run `argv` inside the node and collect its exit code and output. A
/// command that does not exist gives exit code 127 (126 when it cannot be
/// executed), like a shell, not an error.
pub fn exec(
    paths: &NodePaths,
    sid: &str,
    hostname: &str,
    argv: &[String],
) -> Result<ExecResponse, PlatformError> {
    let mut cmd = node_command(paths, sid, hostname, argv, Enter::All)?;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    run(cmd, hostname, argv)
}

/// Run a prepared node command and collect its output (shared with `package`).
pub(crate) fn run(
    mut cmd: Command,
    hostname: &str,
    argv: &[String],
) -> Result<ExecResponse, PlatformError> {
    let program = argv.first().map(String::as_str).unwrap_or_default();
    match cmd.output() {
        Ok(out) => Ok(ExecResponse {
            exit_code: exit_code(out.status),
            stdout: out.stdout,
            stderr: out.stderr,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(ExecResponse {
            exit_code: 127,
            stdout: Vec::new(),
            stderr: format!("tg: `{program}`: command not found on node `{hostname}`\n")
                .into_bytes(),
        }),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(ExecResponse {
            exit_code: 126,
            stdout: Vec::new(),
            stderr: format!("tg: `{program}`: cannot execute on node `{hostname}`: {e}\n")
                .into_bytes(),
        }),
        Err(e) => Err(PlatformError::new(format!(
            "cannot run `{program}` on node `{hostname}`: {e}"
        ))),
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// Start a daemon inside the node (`sshd`, for example) that outlives the
/// calling process: a new session, stdio on `/dev/null`, reparented to init
/// at once (double fork). Returns when the program was executed; its own
/// failures later are not seen.
pub fn spawn_detached(
    paths: &NodePaths,
    sid: &str,
    hostname: &str,
    argv: &[String],
) -> Result<(), PlatformError> {
    let program = argv.first().cloned().unwrap_or_default();
    let mut cmd = node_command(paths, sid, hostname, argv, Enter::All)?;
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: fork, _exit and setsid are async-signal-safe. The grandchild
    // inherits the close-on-exec error pipe of the spawn, so a failing exec
    // is still reported to `spawn`.
    unsafe {
        cmd.pre_exec(|| {
            match libc::fork() {
                -1 => return Err(io::Error::last_os_error()),
                0 => {}
                _ => libc::_exit(0),
            }
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            PlatformError::new(format!(
                "cannot start `{program}` on node `{hostname}`: command not found"
            ))
        } else {
            PlatformError::new(format!(
                "cannot start `{program}` on node `{hostname}`: {e}"
            ))
        }
    })?;
    // Reap the intermediate process, which exited right after forking.
    let _ = child.wait();
    Ok(())
}
