//! Packet capture on a session's links, from outside the nodes.
//!
//! A network's frames all cross its bridge, and a node's frames on one
//! network all cross the router-side end of its veth; both live in the
//! session's router namespace, which no node can enter. So a capture is the
//! host's `tcpdump`, started in the router namespace (the child joins it
//! before it executes, the calling process never changes namespace),
//! writing pcap unbuffered to its stdout. Nothing is installed in nodes,
//! and a node cannot hide its traffic from it.
//!
//! A signal for the capture (Ctrl-C) or a cancel sends tcpdump SIGINT, on
//! which it writes what it holds and exits: the pcap stays whole.
//!
//! This module does not pick the interface (see `NetnsPlatform::capture`).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::platform::{Cancel, ExecStatus, PlatformError, PlatformResult};

/// Where Debian and others put tcpdump.
const TCPDUMP: &[&str] = &["/usr/bin/tcpdump", "/usr/sbin/tcpdump", "/bin/tcpdump"];

/// The host's tcpdump, or an error that says how to get it.
fn tcpdump() -> PlatformResult<PathBuf> {
    TCPDUMP
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            PlatformError::new(
                "tcpdump is not installed on this host: install it (`apt-get install tcpdump`) to capture packets",
            )
        })
}

/// tcpdump's arguments: interface, unbuffered pcap on stdout, no name
/// lookups, then the count and the filter.
pub(crate) fn tcpdump_args(ifname: &str, count: Option<u64>, filter: &[String]) -> Vec<String> {
    let mut args: Vec<String> = ["-i", ifname, "-U", "-w", "-", "-n", "--immediate-mode"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(c) = count {
        args.push("-c".into());
        args.push(c.to_string());
    }
    if !filter.is_empty() {
        args.push("--".into());
        args.extend(filter.iter().cloned());
    }
    args
}

/// What one capture writes to.
pub(crate) struct Sinks {
    pub stdout: mpsc::Sender<Vec<u8>>,
    pub stderr: mpsc::Sender<Vec<u8>>,
    pub signals: Option<mpsc::Receiver<i32>>,
    pub cancel: Cancel,
}

/// Run tcpdump on `ifname` inside the network namespace `netns` until it
/// ends (count reached), a signal arrives or the capture is cancelled.
pub(crate) async fn run(
    netns: &Path,
    ifname: &str,
    count: Option<u64>,
    filter: &[String],
    mut sinks: Sinks,
) -> PlatformResult<ExecStatus> {
    let program = tcpdump()?;
    let ns = File::open(netns).map_err(|e| {
        PlatformError::not_found(format!(
            "the session's network namespace `{}` is gone ({e}): run `tg apply`",
            netns.display()
        ))
    })?;
    let fd = ns.as_raw_fd();
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(tcpdump_args(ifname, count, filter))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: between fork and exec the child only calls setns(2), which is
    // async-signal-safe; `ns` outlives the spawn.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| PlatformError::new(format!("cannot start `{}`: {e}", program.display())))?;
    drop(ns);
    let pid = child.id();
    let out = pump(child.stdout.take(), sinks.stdout.clone());
    let err = pump(child.stderr.take(), sinks.stderr.clone());
    let interrupt = || {
        if let Some(pid) = pid {
            // SAFETY: plain kill(2) on our own child.
            unsafe { libc::kill(pid as i32, libc::SIGINT) };
        }
    };
    let status = loop {
        tokio::select! {
            s = child.wait() => break s,
            Some(_) = async {
                match sinks.signals.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => interrupt(),
            _ = sinks.cancel.cancelled() => {
                interrupt();
                break child.wait().await;
            }
        }
    }
    .map_err(|e| PlatformError::new(format!("tcpdump: {e}")))?;
    let _ = tokio::join!(out, err);
    use std::os::unix::process::ExitStatusExt;
    let exit_code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        // Ended by the SIGINT we sent: a clean end of the capture.
        (None, Some(libc::SIGINT)) => 0,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    };
    Ok(ExecStatus {
        exit_code,
        timed_out: false,
    })
}

/// Copy a child's pipe into a channel as chunks arrive.
fn pump<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    pipe: Option<R>,
    tx: mpsc::Sender<Vec<u8>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(mut pipe) = pipe else { return };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).await.is_err() {
                        break;
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_follows_a_separator() {
        assert_eq!(
            tcpdump_args("tgb0", Some(4), &["icmp".into()]),
            [
                "-i",
                "tgb0",
                "-U",
                "-w",
                "-",
                "-n",
                "--immediate-mode",
                "-c",
                "4",
                "--",
                "icmp"
            ]
        );
        assert_eq!(
            tcpdump_args("tgv1", None, &[]),
            ["-i", "tgv1", "-U", "-w", "-", "-n", "--immediate-mode"]
        );
    }
}
