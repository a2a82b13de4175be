//! Running commands inside a node.
//!
//! A command is forked from a short-lived thread that entered the node's
//! PID namespace (so the command is in it, and dies with the node's init);
//! the child joins the node's cgroups, enters the node's other namespaces
//! through a pidfd of its init (mount last, which makes the node's root
//! its `/`), starts a session of its own, takes the node's sandbox (see
//! `sandbox`) and executes the program, looked up in the node's `PATH`.
//! The calling process never changes namespace. The environment is fixed:
//! `PATH`, `HOME=/root`, `TERM` (`dumb`, or `xterm` on a pty).
//!
//! [`stream`] is `tg exec`: output passed on byte for byte as it comes,
//! stdin fed as it arrives (its end closes the command's stdin), a pty
//! allocated in the node's own `devpts` for `-t`, signals forwarded to the
//! command's process group, a timeout (or a cancel) that ends the group
//! (`SIGTERM`, then `SIGKILL` two seconds later) and exits 124.
//!
//! This module does not make nodes (see `node`) and knows nothing of apt
//! (see `package`, which uses [`collect`] with [`Enter::HostNetwork`]).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::cgroup;
use super::node::Node;
use super::sandbox::Sandbox;
use crate::platform::{Cancel, ExecResponse, ExecStatus, PlatformError};

/// `PATH` inside nodes.
pub const NODE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long a command has after `SIGTERM` (timeout) before `SIGKILL`.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// Which of the node's namespaces a command enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enter {
    /// Every one: fully inside the node.
    All,
    /// Every one but the network: the node's files and processes, the
    /// host's network (apt downloads from the mirror this way).
    HostNetwork,
}

/// A `Command` for `argv` that runs inside the node (see [`Enter`]), in its
/// cgroups and sandbox, with the node environment, stdin from `/dev/null`,
/// in a session of its own. The caller sets up stdio and spawns it with
/// [`spawn_in_node`]. With `tty`, fd 0 becomes the controlling terminal.
pub(crate) fn node_command(
    node: &Node,
    sandbox: &Arc<Sandbox>,
    argv: &[String],
    enter: Enter,
    tty: bool,
) -> Result<Command, PlatformError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(PlatformError::new("cannot run an empty command"));
    };
    if !node.alive() {
        return Err(gone(&node.record.hostname));
    }
    let cgroups = cgroup::procs_files(&node.paths.sid, &node.paths.id);
    let cg_fds: Vec<RawFd> = cgroups.iter().map(|f| f.as_raw_fd()).collect();
    let mut flags =
        libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWCGROUP | libc::CLONE_NEWNS;
    if enter == Enter::All {
        flags |= libc::CLONE_NEWNET;
    }
    let pidfd = dup_fd(node.pidfd())?;
    let raw_pidfd = pidfd.as_raw_fd();
    let sandbox = sandbox.clone();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", NODE_PATH)
        .env("HOME", "/root")
        .env("TERM", if tty { "xterm" } else { "dumb" })
        .stdin(Stdio::null());
    // SAFETY: the closure only makes raw system calls (write, setns,
    // chdir, setsid, ioctl, prctl, seccomp, capset) on fds and data kept
    // alive by what it owns; nothing allocates.
    unsafe {
        cmd.pre_exec(move || {
            let _keep = (&cgroups, &pidfd);
            for fd in &cg_fds {
                if libc::write(*fd, b"0".as_ptr().cast(), 1) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if libc::setns(raw_pidfd, flags) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::chdir(c"/root".as_ptr()) != 0 && libc::chdir(c"/".as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if tty && libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            sandbox.enter().map_err(io::Error::from_raw_os_error)
        });
    }
    Ok(cmd)
}

fn gone(hostname: &str) -> PlatformError {
    PlatformError::not_found(format!(
        "node `{hostname}` does not exist on this host (its init is gone); \
         run `tg apply` to create it again"
    ))
}

fn dup_fd(fd: RawFd) -> Result<OwnedFd, PlatformError> {
    // SAFETY: duplicating a valid fd; the result is owned.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(PlatformError::new(format!(
            "cannot duplicate a pidfd: {}",
            io::Error::last_os_error()
        )));
    }
    // SAFETY: a new fd of ours.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// Run `spawn` (which forks) on a short-lived thread that entered the
/// node's PID namespace, so the child is born in it.
pub(crate) fn spawn_in_node<T: Send>(
    node: &Node,
    spawn: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    let pidfd = node.pidfd();
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: setns of this thread's PID namespace for children.
            if unsafe { libc::setns(pidfd, libc::CLONE_NEWPID) } != 0 {
                return Err(io::Error::last_os_error());
            }
            spawn()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("spawn thread panicked")))
    })
}

/// What a failed spawn means, as a shell says it: 127 not found, 126
/// cannot execute; anything else is an error.
fn spawn_failure(
    e: io::Error,
    program: &str,
    hostname: &str,
) -> Result<(i32, String), PlatformError> {
    match e.kind() {
        io::ErrorKind::NotFound => Ok((
            127,
            format!("tg: `{program}`: command not found on node `{hostname}`\n"),
        )),
        io::ErrorKind::PermissionDenied => Ok((
            126,
            format!("tg: `{program}`: cannot execute on node `{hostname}`: {e}\n"),
        )),
        _ => Err(PlatformError::new(format!(
            "cannot run `{program}` on node `{hostname}`: {e}"
        ))),
    }
}

/// Run a prepared node command and collect its output (package installs,
/// tests). A command that does not exist gives 127 (126 when it cannot be
/// executed), like a shell, not an error. When `cancel` fires, the
/// command's process group is killed and the call fails as cancelled.
/// How long output is still read after the command exited (a background
/// process it started may hold its pipes open for good).
const OUTPUT_GRACE: Duration = Duration::from_millis(500);
/// The most output kept of each stream (the end of it).
const OUTPUT_LIMIT: usize = 4 << 20;

pub(crate) fn collect(
    node: &Node,
    mut cmd: Command,
    argv: &[String],
    cancel: Option<&Cancel>,
) -> Result<ExecResponse, PlatformError> {
    let program = argv.first().map(String::as_str).unwrap_or_default();
    let hostname = &node.record.hostname;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = match spawn_in_node(node, || cmd.spawn()) {
        Ok(c) => c,
        Err(e) => {
            return spawn_failure(e, program, hostname).map(|(code, msg)| ExecResponse {
                exit_code: code,
                stdout: Vec::new(),
                stderr: msg.into_bytes(),
            })
        }
    };
    // Readers append to shared buffers, so a command that leaves a
    // background process holding its pipes (`daemon &`) does not keep the
    // caller waiting once it exited: see `OUTPUT_GRACE`.
    let read_all = |r: Option<Box<dyn io::Read + Send>>| {
        let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (b, d) = (buf.clone(), done.clone());
        std::thread::spawn(move || {
            if let Some(mut r) = r {
                let mut chunk = [0u8; 8192];
                while let Ok(n @ 1..) = r.read(&mut chunk) {
                    let mut b = b.lock().unwrap_or_else(|p| p.into_inner());
                    b.extend_from_slice(&chunk[..n]);
                    // Keep the last `OUTPUT_LIMIT` bytes.
                    if b.len() > 2 * OUTPUT_LIMIT {
                        let cut = b.len() - OUTPUT_LIMIT;
                        b.drain(..cut);
                    }
                }
            }
            d.store(true, std::sync::atomic::Ordering::Release);
        });
        (buf, done)
    };
    let out = read_all(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn io::Read + Send>),
    );
    let err = read_all(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn io::Read + Send>),
    );
    let pgid = child.id() as i32;
    let mut cancelled = false;
    let status = loop {
        if !cancelled && cancel.is_some_and(|c| c.is_cancelled()) {
            cancelled = true;
            signal_group(pgid, libc::SIGKILL);
        }
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                return Err(PlatformError::new(format!(
                    "cannot wait for `{program}` on node `{hostname}`: {e}"
                )))
            }
        }
    };
    if cancelled {
        // Whatever it left behind in its group goes too.
        signal_group(pgid, libc::SIGKILL);
    }
    let grace = std::time::Instant::now() + OUTPUT_GRACE;
    while !(out.1.load(std::sync::atomic::Ordering::Acquire)
        && err.1.load(std::sync::atomic::Ordering::Acquire))
        && std::time::Instant::now() < grace
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let take = |b: &Arc<std::sync::Mutex<Vec<u8>>>| {
        let mut b = b.lock().unwrap_or_else(|p| p.into_inner());
        let cut = b.len().saturating_sub(OUTPUT_LIMIT);
        b.split_off(cut)
    };
    let stdout = take(&out.0);
    let stderr = take(&err.0);
    if cancelled {
        return Err(PlatformError::cancelled(format!(
            "`{program}` on node `{hostname}` was cancelled"
        )));
    }
    Ok(ExecResponse {
        exit_code: exit_code(status),
        stdout,
        stderr,
    })
}

/// Run `argv` fully inside the node and collect its output.
pub fn exec(
    node: &Node,
    sandbox: &Arc<Sandbox>,
    argv: &[String],
) -> Result<ExecResponse, PlatformError> {
    let cmd = node_command(node, sandbox, argv, Enter::All, false)?;
    collect(node, cmd, argv, None)
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// The streams and controls of one [`stream`] call.
pub struct Streams {
    pub stdin: Option<mpsc::Receiver<Vec<u8>>>,
    pub stdout: mpsc::Sender<Vec<u8>>,
    pub stderr: mpsc::Sender<Vec<u8>>,
    pub signals: Option<mpsc::Receiver<i32>>,
    pub timeout: Option<Duration>,
    pub tty: bool,
    pub cancel: Cancel,
}

/// Run `argv` in the node, streaming (see the module's description).
pub async fn stream(
    node: Node,
    sandbox: Arc<Sandbox>,
    argv: Vec<String>,
    io: Streams,
) -> Result<ExecStatus, PlatformError> {
    let hostname = node.record.hostname.clone();
    let program = argv.first().cloned().unwrap_or_default();
    let mut cmd = node_command(&node, &sandbox, &argv, Enter::All, io.tty)?;
    let pty = if io.tty {
        let (master, slave) = open_pty(&node)?;
        let dup = |f: &OwnedFd| f.try_clone().map(Stdio::from);
        let e = |e: io::Error| PlatformError::new(format!("cannot set up a pty: {e}"));
        cmd.stdin(dup(&slave).map_err(e)?)
            .stdout(dup(&slave).map_err(e)?)
            .stderr(Stdio::from(slave));
        Some(master)
    } else {
        cmd.stdin(if io.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        None
    };
    let mut cmd = tokio::process::Command::from(cmd);
    let handle = tokio::runtime::Handle::current();
    let spawned = spawn_in_node(&node, || {
        let _rt = handle.enter();
        cmd.spawn()
    });
    // The pty's slave end lives in the child only (its end is the output's end).
    drop(cmd);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let (code, msg) = spawn_failure(e, &program, &hostname)?;
            let _ = io.stderr.send(msg.into_bytes()).await;
            return Ok(ExecStatus {
                exit_code: code,
                timed_out: false,
            });
        }
    };
    let pgid = child.id().map(|p| p as i32).unwrap_or(0);
    let mut pumps = tokio::task::JoinSet::new();
    match pty {
        Some(master) => {
            // SAFETY: the `OwnedFd` is moved in and stays open, the same
            // fd, for as long as the `AsyncFd` lives.
            let master = Arc::new(
                unsafe { tokio::io::unix::AsyncFd::register(master) }
                    .map_err(|e| PlatformError::new(format!("cannot watch the pty: {e}")))?,
            );
            pumps.spawn(pump_pty_out(master.clone(), io.stdout.clone()));
            if let Some(rx) = io.stdin {
                tokio::spawn(pump_pty_in(master, rx));
            }
        }
        None => {
            if let Some(out) = child.stdout.take() {
                pumps.spawn(pump_out(out, io.stdout.clone()));
            }
            if let Some(err) = child.stderr.take() {
                pumps.spawn(pump_out(err, io.stderr.clone()));
            }
            if let (Some(inp), Some(rx)) = (child.stdin.take(), io.stdin) {
                tokio::spawn(pump_in(inp, rx));
            }
        }
    }
    drop(io.stdout);
    drop(io.stderr);
    let mut signals = io.signals;
    let timeout = io.timeout;
    let deadline = async {
        match timeout {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let mut ended = false;
    let mut term_sent: Option<tokio::time::Instant> = None;
    let status = loop {
        let kill_at = term_sent.map(|t| t + TERM_GRACE);
        tokio::select! {
            s = child.wait() => break s,
            sig = async {
                match signals.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => match sig {
                Some(sig) => signal_group(pgid, sig),
                None => signals = None,
            },
            () = &mut deadline, if !ended => {
                ended = true;
                signal_group(pgid, libc::SIGTERM);
                term_sent = Some(tokio::time::Instant::now());
            }
            () = async {
                match kill_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {
                signal_group(pgid, libc::SIGKILL);
                term_sent = None;
            }
            () = io.cancel.cancelled(), if !ended || term_sent.is_some() => {
                ended = true;
                term_sent = None;
                signal_group(pgid, libc::SIGKILL);
            }
        }
    };
    let status =
        status.map_err(|e| PlatformError::new(format!("cannot wait for `{program}`: {e}")))?;
    // What the command wrote is passed on; a process it left running in
    // the background may hold the output open: not waited for long.
    let drained = async { while pumps.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(2), drained)
        .await
        .is_err()
    {
        pumps.abort_all();
    }
    if ended {
        signal_group(pgid, libc::SIGKILL);
    }
    Ok(ExecStatus {
        exit_code: if ended { 124 } else { exit_code(status) },
        timed_out: ended,
    })
}

fn signal_group(pgid: i32, sig: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) of the command's process group (its session).
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

async fn pump_out(mut from: impl tokio::io::AsyncRead + Unpin, to: mpsc::Sender<Vec<u8>>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.send(buf[..n].to_vec()).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn pump_in(mut to: tokio::process::ChildStdin, mut from: mpsc::Receiver<Vec<u8>>) {
    while let Some(chunk) = from.recv().await {
        if to.write_all(&chunk).await.is_err() {
            return;
        }
    }
    // The end of the channel closes the command's stdin.
    let _ = to.shutdown().await;
}

async fn pump_pty_out(master: Arc<tokio::io::unix::AsyncFd<OwnedFd>>, to: mpsc::Sender<Vec<u8>>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let Ok(mut ready) = master.readable().await else {
            return;
        };
        // SAFETY: reading into our buffer from a non-blocking fd.
        let n = unsafe {
            libc::read(
                master.get_ref().as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                ready.clear_ready();
                continue;
            }
            // EIO: every slave end is closed.
            return;
        }
        if n == 0 || to.send(buf[..n as usize].to_vec()).await.is_err() {
            return;
        }
    }
}

async fn pump_pty_in(
    master: Arc<tokio::io::unix::AsyncFd<OwnedFd>>,
    mut from: mpsc::Receiver<Vec<u8>>,
) {
    let write_all = |data: &[u8]| {
        let master = master.clone();
        let data = data.to_vec();
        async move {
            let mut off = 0;
            while off < data.len() {
                let Ok(mut ready) = master.writable().await else {
                    return false;
                };
                // SAFETY: writing from our buffer to a non-blocking fd.
                let n = unsafe {
                    libc::write(
                        master.get_ref().as_raw_fd(),
                        data[off..].as_ptr().cast(),
                        data.len() - off,
                    )
                };
                if n < 0 {
                    if io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock {
                        ready.clear_ready();
                        continue;
                    }
                    return false;
                }
                off += n as usize;
            }
            true
        }
    };
    while let Some(chunk) = from.recv().await {
        if !write_all(&chunk).await {
            return;
        }
    }
    // The end of input on a terminal: end-of-file (^D).
    let _ = write_all(&[4]).await;
}

/// A pty in the node's own `devpts`: (master, non-blocking; slave).
fn open_pty(node: &Node) -> Result<(OwnedFd, OwnedFd), PlatformError> {
    let e = |what: &str, e: io::Error| {
        PlatformError::new(format!(
            "cannot open a pty in node `{}`: {what}: {e}",
            node.record.hostname
        ))
    };
    let master: OwnedFd = node
        .open_inside("dev/pts/ptmx", libc::O_RDWR | libc::O_NONBLOCK)
        .map_err(|x| e("open /dev/pts/ptmx", x))?
        .into();
    let fd = master.as_raw_fd();
    let unlock: libc::c_int = 0;
    // SAFETY: ioctls on our pty master; the slave fd is owned below.
    unsafe {
        if libc::ioctl(fd, libc::TIOCSPTLCK, &unlock) != 0 {
            return Err(e("unlock", io::Error::last_os_error()));
        }
        let size = libc::winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        libc::ioctl(fd, libc::TIOCSWINSZ, &size);
        let slave = libc::ioctl(
            fd,
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if slave < 0 {
            return Err(e("open the slave end", io::Error::last_os_error()));
        }
        Ok((master, OwnedFd::from_raw_fd(slave)))
    }
}

/// Start a daemon inside the node (`sshd`, for example) that outlives the
/// calling process: a new session, stdio on `/dev/null`, reparented to the
/// node's init at once (double fork). Returns when the program was
/// executed; its own failures later are not seen.
pub fn spawn_detached(
    node: &Node,
    sandbox: &Arc<Sandbox>,
    argv: &[String],
) -> Result<(), PlatformError> {
    let program = argv.first().cloned().unwrap_or_default();
    let hostname = node.record.hostname.clone();
    let mut cmd = node_command(node, sandbox, argv, Enter::All, false)?;
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: fork and _exit are async-signal-safe. The grandchild
    // inherits the close-on-exec error pipe of the spawn, so a failing
    // exec is still reported to `spawn`.
    unsafe {
        cmd.pre_exec(|| match libc::fork() {
            -1 => Err(io::Error::last_os_error()),
            0 => Ok(()),
            _ => libc::_exit(0),
        });
    }
    let mut child = spawn_in_node(node, || cmd.spawn()).map_err(|e| {
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
