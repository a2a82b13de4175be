//! One SSH connection per pool host, made with `ssh2` (libssh2) and reused
//! for every operation of a run.
//!
//! Owns connecting (with retries and backoff), verifying the host key
//! against the pool's `known_hosts`, public key authentication,
//! keepalives, running one command with its output streamed, and uploading
//! a file over SFTP. `ssh2` is blocking: every call here runs on a blocking
//! thread (the platform calls it through `spawn_blocking`), and one host's
//! session is used by one call at a time (a mutex per host). Not here: what
//! to run (the platform) or which host (placement).

use std::collections::HashMap;
use std::io::{ErrorKind as IoKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ssh2::{CheckResult, KnownHostFileKind, Session};
use tokio::sync::mpsc;

use crate::platform::{Cancel, ExecStatus, PlatformError, PlatformResult};

/// How to reach and trust one host.
#[derive(Clone)]
pub struct Target {
    /// The host block's name (`edge-1`), for messages.
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    pub identity_file: PathBuf,
    /// The passphrase of an encrypted `identity_file`.
    pub passphrase: Option<String>,
    /// An ssh-agent socket whose identities are tried before the file.
    pub agent: Option<PathBuf>,
    pub known_hosts: PathBuf,
    /// Accept an unknown or changed host key (warned about on every run).
    pub insecure: bool,
}

/// Without the passphrase.
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("identity_file", &self.identity_file)
            .field("passphrase", &self.passphrase.as_ref().map(|_| "<hidden>"))
            .field("agent", &self.agent)
            .field("known_hosts", &self.known_hosts)
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl Target {
    /// `address:port`: the lease key.
    pub fn key(&self) -> String {
        format!("{}:{}", self.address, self.port)
    }
}

/// Connection attempts before a host counts as unreachable.
const ATTEMPTS: u32 = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Seconds between keepalives on an idle connection.
const KEEPALIVE_SECS: u32 = 15;

/// The open connections of one pool, by lease key.
#[derive(Default)]
pub struct Connections {
    open: Mutex<HashMap<String, Arc<Mutex<Option<Session>>>>>,
    /// How many connections were made (tests, the benchmark).
    made: std::sync::atomic::AtomicUsize,
    /// A connection per operation (the pool's `reuse_connections =
    /// false`: to measure what reuse saves, or for hosts that drop idle
    /// sessions).
    pub no_reuse: bool,
}

impl Connections {
    /// Connections that are reused (`reuse`), or made per operation.
    pub fn new(reuse: bool) -> Connections {
        Connections {
            no_reuse: !reuse,
            ..Connections::default()
        }
    }

    /// The number of SSH connections made so far.
    pub fn made(&self) -> usize {
        self.made.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Run `op` with the host's session, connecting when there is none (or
    /// the last one broke). Blocking.
    pub fn with<T>(
        &self,
        t: &Target,
        op: impl FnOnce(&Session) -> PlatformResult<T>,
    ) -> PlatformResult<T> {
        let slot = self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(t.key())
            .or_default()
            .clone();
        let mut guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
        let alive = guard
            .as_ref()
            .is_some_and(|s| !self.no_reuse && s.keepalive_send().is_ok());
        if !alive {
            *guard = Some(connect(t)?);
            self.made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let Some(session) = guard.as_ref() else {
            return Err(PlatformError::new(format!("no connection to `{}`", t.name)));
        };
        let result = op(session);
        if result
            .as_ref()
            .is_err_and(|e| e.kind == crate::platform::ErrorKind::Retryable)
            || self.no_reuse
        {
            // A broken connection is made again next time.
            *guard = None;
        }
        result
    }
}

/// Connect, verify the host key and log in, retrying what may pass.
pub fn connect(t: &Target) -> PlatformResult<Session> {
    let mut wait = Duration::from_millis(300);
    let mut last = None;
    for attempt in 1..=ATTEMPTS {
        match connect_once(t) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind == crate::platform::ErrorKind::Retryable => {
                last = Some(e);
                if attempt < ATTEMPTS {
                    std::thread::sleep(wait);
                    wait *= 2;
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| PlatformError::retryable("no attempt was made")))
}

/// Log in as the target's user: with the agent's identities first (when
/// the pool uses an agent), then with the identity file (and its
/// passphrase). The error names the host, the user and what was tried.
fn authenticate(s: &Session, t: &Target) -> PlatformResult<()> {
    let mut tried = Vec::new();
    if let Some(sock) = &t.agent {
        match agent_login(s, t, sock) {
            Ok(()) => return Ok(()),
            Err(why) => tried.push(format!("the agent at {}: {why}", sock.display())),
        }
        // Without a file of its own, the agent was the only way in.
        if !t.identity_file.exists() {
            return Err(refused(t, &tried));
        }
    }
    let passphrase = t.passphrase.as_deref();
    match s.userauth_pubkey_file(&t.user, None, &t.identity_file, passphrase) {
        Ok(()) => Ok(()),
        Err(e) => {
            let hint = match (passphrase, encrypted_key(&t.identity_file)) {
                (None, true) => " (the key is encrypted: give its passphrase with `identity_passphrase`, or load it into an agent and set `agent = true`)",
                (Some(_), true) => " (is `identity_passphrase` the key's passphrase?)",
                _ => "",
            };
            tried.push(format!("the key {}: {e}{hint}", t.identity_file.display()));
            Err(refused(t, &tried))
        }
    }
}

fn refused(t: &Target, tried: &[String]) -> PlatformError {
    PlatformError::new(format!(
        "pool host `{}` did not let user `{}` in; tried {}",
        t.name,
        t.user,
        tried.join("; ")
    ))
}

/// Each identity of the agent at `sock` in turn, until one is accepted.
fn agent_login(s: &Session, t: &Target, sock: &std::path::Path) -> Result<(), String> {
    let mut agent = s.agent().map_err(|e| e.to_string())?;
    agent.set_identity_path(sock).map_err(|e| e.to_string())?;
    agent
        .connect()
        .map_err(|e| format!("cannot connect: {e}"))?;
    agent.list_identities().map_err(|e| e.to_string())?;
    let ids = agent.identities().map_err(|e| e.to_string())?;
    if ids.is_empty() {
        let _ = agent.disconnect();
        return Err("it holds no identity (`ssh-add KEY`)".into());
    }
    let accepted = ids.iter().any(|id| agent.userauth(&t.user, id).is_ok());
    let _ = agent.disconnect();
    if accepted {
        Ok(())
    } else {
        Err(format!("none of its {} identities was accepted", ids.len()))
    }
}

/// Does the private key file look encrypted (OpenSSH's format says so in
/// its header; PEM keys in a `Proc-Type` line)?
fn encrypted_key(path: &std::path::Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    // PEM keys say so in a header; OpenSSH keys name their cipher.
    text.contains("Proc-Type: 4,ENCRYPTED")
        || text.contains("BEGIN ENCRYPTED PRIVATE KEY")
        || ssh_key::PrivateKey::from_openssh(text.as_bytes()).is_ok_and(|k| k.is_encrypted())
}

fn connect_once(t: &Target) -> PlatformResult<Session> {
    let unreachable = |why: String| {
        PlatformError::retryable(format!(
            "cannot reach pool host `{}` at {}: {why}",
            t.name,
            t.key()
        ))
    };
    let addr = (t.address.as_str(), t.port)
        .to_socket_addrs()
        .map_err(|e| unreachable(e.to_string()))?
        .next()
        .ok_or_else(|| unreachable("the address resolves to nothing".into()))?;
    let tcp = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|e| unreachable(e.to_string()))?;
    let mut s = Session::new().map_err(|e| unreachable(e.to_string()))?;
    s.set_tcp_stream(tcp);
    s.set_timeout(30_000);
    s.handshake()
        .map_err(|e| unreachable(format!("the SSH handshake failed: {e}")))?;
    verify_host_key(&s, t)?;
    authenticate(&s, t)?;
    if !s.authenticated() {
        return Err(PlatformError::new(format!(
            "pool host `{}` did not accept user `{}`",
            t.name, t.user
        )));
    }
    s.set_keepalive(true, KEEPALIVE_SECS);
    // Long commands (apt) must not time out on a quiet channel.
    s.set_timeout(0);
    Ok(s)
}

fn verify_host_key(s: &Session, t: &Target) -> PlatformResult<()> {
    let Some((key, _)) = s.host_key() else {
        return Err(PlatformError::new(format!(
            "pool host `{}` sent no host key",
            t.name
        )));
    };
    let mut kh = s
        .known_hosts()
        .map_err(|e| PlatformError::new(format!("cannot check host keys: {e}")))?;
    let read = kh.read_file(&t.known_hosts, KnownHostFileKind::OpenSSH);
    let found = match read {
        Ok(_) => kh.check_port(&t.address, t.port, key),
        Err(_) if !t.known_hosts.exists() => CheckResult::NotFound,
        Err(e) => {
            return Err(PlatformError::new(format!(
                "cannot read known_hosts {}: {e}",
                t.known_hosts.display()
            )))
        }
    };
    let problem = match found {
        CheckResult::Match => return Ok(()),
        CheckResult::NotFound => "is unknown: it is not in",
        CheckResult::Mismatch => "changed: it does not match the one in",
        CheckResult::Failure => "could not be checked against",
    };
    if t.insecure {
        return Ok(());
    }
    Err(PlatformError::new(format!(
        "the host key of pool host `{}` ({}) {problem} {}; refusing to connect",
        t.name,
        t.key(),
        t.known_hosts.display()
    ))
    .with_detail(format!(
        "add the host's key (`ssh-keyscan -p {} {} >> {}`) after checking it, or set `insecure_accept_host_key = true` on the pool",
        t.port,
        t.address,
        t.known_hosts.display()
    )))
}

/// `argv` as one POSIX shell command line.
pub fn shell_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where a command's output goes.
pub struct Streams {
    pub stdout: mpsc::Sender<Vec<u8>>,
    pub stderr: mpsc::Sender<Vec<u8>>,
    pub stdin: Option<mpsc::Receiver<Vec<u8>>>,
    /// Signal numbers to deliver to the command (not with `tty`: the
    /// terminal's keys reach it).
    pub signals: Option<mpsc::Receiver<i32>>,
    /// Run on a pseudo-terminal of the host.
    pub tty: bool,
}

/// The first line a command run with signals writes to stderr: its pid.
const PID_TAG: &str = "tg-pid:";

/// What holds back a command's stderr until its first line, the pid the
/// wrapper of a signalled command writes, has come.
struct PidLine {
    pending: Vec<u8>,
    pid: Option<u32>,
    done: bool,
}

impl PidLine {
    /// Take `chunk`; the bytes that are the command's own stderr. Lines
    /// before the pid line (a login shell's rc file may write some) pass
    /// through; past 64 KiB without it, everything does.
    fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.done {
            return chunk.to_vec();
        }
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(nl) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=nl).collect();
            let text = String::from_utf8_lossy(&line);
            if let Some(pid) = text
                .strip_prefix(PID_TAG)
                .and_then(|p| p.trim().parse().ok())
            {
                self.pid = Some(pid);
                self.done = true;
                out.append(&mut self.pending);
                return out;
            }
            out.extend(line);
        }
        if self.pending.len() > 64 * 1024 {
            self.done = true;
            out.append(&mut self.pending);
        }
        out
    }

    /// What is still held back when the command ends.
    fn rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }
}

/// Deliver signal `sig` to the process group `pid` on the host (OpenSSH
/// starts a command without a terminal in a session of its own, so the
/// shell's pid is its group: the command and its children get it), over
/// another channel of the same connection.
fn send_signal(s: &Session, t: &Target, pid: u32, sig: i32) -> PlatformResult<()> {
    s.set_blocking(true);
    let done = (|| {
        let mut ch = s
            .channel_session()
            .map_err(|e| channel_err(t, "opening a channel for a signal", e))?;
        ch.exec(&format!("kill -{sig} -- -{pid}"))
            .map_err(|e| channel_err(t, "sending a signal", e))?;
        let _ = ch.wait_close();
        Ok(())
    })();
    s.set_blocking(false);
    done
}

fn channel_err(t: &Target, what: &str, e: impl std::fmt::Display) -> PlatformError {
    PlatformError::retryable(format!("pool host `{}`: {what}: {e}", t.name))
}

/// Run `line` (a shell command line) on `s`, streaming its output as it
/// comes. With `io.tty`, on a pseudo-terminal of the host (`xterm`, 80x24,
/// as a netns node's), so interactive programs work and the terminal's keys
/// (Ctrl-C) reach the command. With `io.signals`, the command line first
/// writes the shell's pid to stderr (held back from the caller), so each
/// signal received is delivered to its process group with `kill` (SSH's
/// own signal request is not in libssh2). Blocking.
pub fn run(
    s: &Session,
    t: &Target,
    line: &str,
    io: Streams,
    timeout: Option<Duration>,
    cancel: &Cancel,
) -> PlatformResult<ExecStatus> {
    let Streams {
        stdout,
        stderr,
        mut stdin,
        signals,
        tty,
    } = io;
    let mut signals = signals.filter(|_| !tty);
    let mut ch = s
        .channel_session()
        .map_err(|e| channel_err(t, "opening a channel", e))?;
    if tty {
        ch.request_pty("xterm", None, Some((80, 24, 0, 0)))
            .map_err(|e| channel_err(t, "asking for a terminal", e))?;
    }
    let wrapped;
    let line = match signals {
        Some(_) => {
            wrapped = format!("printf '{PID_TAG}%s\\n' \"$$\" >&2; {line}");
            wrapped.as_str()
        }
        None => line,
    };
    let mut pid_line = PidLine {
        pending: Vec::new(),
        pid: None,
        done: signals.is_none(),
    };
    let mut waiting: Vec<i32> = Vec::new();
    ch.exec(line)
        .map_err(|e| channel_err(t, "starting the command", e))?;
    if stdin.is_none() {
        ch.send_eof()
            .map_err(|e| channel_err(t, "closing stdin", e))?;
    }
    s.set_blocking(false);
    let started = Instant::now();
    let mut buf = vec![0u8; 32 * 1024];
    let mut timed_out = false;
    let outcome = (|| -> PlatformResult<()> {
        loop {
            let mut busy = false;
            for which in [0, 1] {
                let mut stream = ch.stream(which);
                match stream.read(&mut buf) {
                    Ok(0) => {}
                    Ok(n) => {
                        busy = true;
                        let bytes = if which == 0 {
                            buf[..n].to_vec()
                        } else {
                            pid_line.feed(&buf[..n])
                        };
                        let to = if which == 0 { &stdout } else { &stderr };
                        // A reader that went away only stops the copy.
                        if !bytes.is_empty() {
                            let _ = to.blocking_send(bytes);
                        }
                    }
                    Err(e) if e.kind() == IoKind::WouldBlock => {}
                    Err(e) => return Err(channel_err(t, "reading output", e)),
                }
            }
            if let Some(rx) = stdin.as_mut() {
                match rx.try_recv() {
                    Ok(chunk) => {
                        busy = true;
                        write_all_nonblocking(&mut ch, &chunk)
                            .map_err(|e| channel_err(t, "writing stdin", e))?;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => {}
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        stdin = None;
                        loop {
                            match ch.send_eof() {
                                Err(e) if e.code() == ssh2::ErrorCode::Session(-37) => {
                                    std::thread::sleep(Duration::from_millis(5))
                                }
                                _ => break,
                            }
                        }
                    }
                }
            }
            if let Some(rx) = signals.as_mut() {
                while let Ok(sig) = rx.try_recv() {
                    waiting.push(sig);
                }
            }
            if let Some(pid) = pid_line.pid {
                for sig in waiting.drain(..) {
                    busy = true;
                    // The command goes on either way: a host that refuses
                    // another channel (sshd's MaxSessions) loses the
                    // signal, not the command's output or status.
                    if let Err(e) = send_signal(s, t, pid, sig) {
                        let _ = stderr.blocking_send(format!("tg: {e}\n").into_bytes());
                    }
                }
            }
            if ch.eof() {
                return Ok(());
            }
            if cancel.is_cancelled() || timeout.is_some_and(|d| started.elapsed() >= d) {
                timed_out = true;
                return Ok(());
            }
            if !busy {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    })();
    s.set_blocking(true);
    let held = pid_line.rest();
    if !held.is_empty() {
        let _ = stderr.blocking_send(held);
    }
    outcome?;
    if timed_out {
        let _ = ch.close();
        return Ok(ExecStatus {
            exit_code: 124,
            timed_out: true,
        });
    }
    ch.wait_close()
        .map_err(|e| channel_err(t, "waiting for the command", e))?;
    let signal = ch.exit_signal().ok().and_then(|s| s.exit_signal);
    let exit_code = match signal {
        Some(name) => 128 + signal_number(&name),
        None => ch
            .exit_status()
            .map_err(|e| channel_err(t, "reading the exit status", e))?,
    };
    Ok(ExecStatus {
        exit_code,
        timed_out: false,
    })
}

fn write_all_nonblocking(ch: &mut ssh2::Channel, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        match ch.write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == IoKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn signal_number(name: &str) -> i32 {
    match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ABRT" => 6,
        "KILL" => 9,
        "SEGV" => 11,
        "PIPE" => 13,
        "ALRM" => 14,
        _ => 15,
    }
}

/// Run `line` and collect its output: `(exit code, stdout, stderr)`.
pub fn run_collected(s: &Session, t: &Target, line: &str) -> PlatformResult<(i32, String, String)> {
    let (otx, mut orx) = mpsc::channel(1024);
    let (etx, mut erx) = mpsc::channel(1024);
    let (status, o, e) = std::thread::scope(|scope| {
        let o = scope.spawn(move || {
            let mut all = Vec::new();
            while let Some(c) = orx.blocking_recv() {
                all.extend(c);
            }
            all
        });
        let e = scope.spawn(move || {
            let mut all = Vec::new();
            while let Some(c) = erx.blocking_recv() {
                all.extend(c);
            }
            all
        });
        let io = Streams {
            stdout: otx,
            stderr: etx,
            stdin: None,
            signals: None,
            tty: false,
        };
        let status = run(s, t, line, io, None, &Cancel::new());
        (
            status,
            o.join().unwrap_or_default(),
            e.join().unwrap_or_default(),
        )
    });
    Ok((
        status?.exit_code,
        String::from_utf8_lossy(&o).into_owned(),
        String::from_utf8_lossy(&e).into_owned(),
    ))
}

/// Upload `local` to `remote` over SFTP (mode 0600). Blocking.
pub fn upload(s: &Session, t: &Target, local: &Path, remote: &str) -> PlatformResult<()> {
    let data = std::fs::read(local)
        .map_err(|e| PlatformError::new(format!("cannot read {}: {e}", local.display())))?;
    let sftp = s.sftp().map_err(|e| channel_err(t, "starting SFTP", e))?;
    let mut f = sftp
        .open_mode(
            Path::new(remote),
            ssh2::OpenFlags::WRITE | ssh2::OpenFlags::CREATE | ssh2::OpenFlags::TRUNCATE,
            0o600,
            ssh2::OpenType::File,
        )
        .map_err(|e| channel_err(t, &format!("creating {remote}"), e))?;
    f.write_all(&data)
        .map_err(|e| channel_err(t, &format!("writing {remote}"), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> PidLine {
        PidLine {
            pending: Vec::new(),
            pid: None,
            done: false,
        }
    }

    #[test]
    fn the_pid_line_is_taken_out_wherever_the_chunks_split() {
        let mut p = fresh();
        let mut out = p.feed(b"motd from .bashrc\ntg-p");
        out.extend(p.feed(b"id:4242\nerr"));
        out.extend(p.feed(b"or\n"));
        assert_eq!(p.pid, Some(4242));
        assert_eq!(out, b"motd from .bashrc\nerror\n");
    }

    #[test]
    fn without_a_pid_line_everything_passes_through() {
        let mut p = fresh();
        let mut out = p.feed(b"no tag here\npartial");
        out.extend(p.rest());
        assert_eq!(
            (p.pid, out.as_slice()),
            (None, &b"no tag here\npartial"[..])
        );
        let mut big = fresh();
        let out = big.feed(&vec![b'x'; 70 * 1024]);
        assert_eq!(out.len(), 70 * 1024);
        assert!(big.done);
    }

    #[test]
    fn a_targets_debug_hides_the_passphrase() {
        let t = Target {
            name: "h1".into(),
            address: "192.0.2.1".into(),
            port: 22,
            user: "root".into(),
            identity_file: "/k".into(),
            passphrase: Some("s3cret".into()),
            agent: None,
            known_hosts: "/kh".into(),
            insecure: false,
        };
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("<hidden>"),
            "{shown}"
        );
    }
}
