//! A node's OpenSSH server: its files, its start and its readiness.
//!
//! A node with SSH on gets a host key tg makes and a server config of tg's
//! own, written on the host in the node's folder (`NODE/ssh/`, `rwx------`)
//! and bound read-only at [`IN_NODE`] by the node's init. `sshd` then runs
//! in the node's sandbox as a daemon under its init, and the node counts
//! as created only once port 22 answers with an SSH banner.
//!
//! The config: key authentication only (the session's client key, and
//! `/root/.ssh/authorized_keys` for keys added in the node), root by key,
//! `UsePAM no` (PAM's `pam_loginuid` needs `CAP_AUDIT_CONTROL`, which the
//! sandbox drops), sftp served in process (`internal-sftp`), so `scp` and
//! `sftp` need nothing more from the image. Its log goes to
//! [`LOG_IN_NODE`], quoted when the server does not come up.
//! Not here: the session's client key and `known_hosts` (`ops::ssh_files`).

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::files;
use crate::platform::PlatformError;

use super::exec::spawn_detached;
use super::node::Node;
use super::sandbox::Sandbox;

/// The server, where Debian puts it (in the node's root).
pub const SSHD: &str = "/usr/sbin/sshd";
/// Where the node sees its SSH files.
pub const IN_NODE: &str = "/run/tg-ssh";
/// The server's log, inside the node.
pub const LOG_IN_NODE: &str = "/run/tg-sshd.log";
/// How long a server may take to answer on port 22.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether an image's root (`lower`) has an OpenSSH server.
pub fn image_has_sshd(lower: &Path) -> bool {
    lower.join(SSHD.trim_start_matches('/')).is_file()
}

/// The server config tg gives every node.
pub fn config_text() -> String {
    format!(
        "# The OpenSSH server config tg wrote for this node (read-only).\n\
         Port 22\n\
         AddressFamily inet\n\
         HostKey {IN_NODE}/ssh_host_ed25519_key\n\
         AuthorizedKeysFile {IN_NODE}/authorized_keys .ssh/authorized_keys\n\
         PidFile /run/sshd.pid\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         ChallengeResponseAuthentication no\n\
         UsePAM no\n\
         UseDNS no\n\
         PrintMotd no\n\
         X11Forwarding no\n\
         AcceptEnv LANG LC_*\n\
         Subsystem sftp internal-sftp\n"
    )
}

/// Write a node's SSH folder `dir`: the config, a new host key, and the
/// session's client key as the authorized one. Returns the host public key
/// line.
pub fn write_files(
    dir: &Path,
    hostname: &str,
    client_key: Option<&str>,
) -> Result<String, PlatformError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        PlatformError::new(format!(
            "cannot set up the SSH server of node `{hostname}`: {what}: {e}"
        ))
    };
    let pair = crate::ssh_keys::ed25519(&format!("root@{hostname}"))
        .map_err(|e| fail("cannot make its host key", &e))?;
    files::create_dir_all(dir, 0o700).map_err(|e| fail("cannot make its folder", &e))?;
    let write = |name: &str, data: &[u8], mode: u32| {
        files::write(&dir.join(name), data, mode)
            .map_err(|e| fail(&format!("cannot write `{name}`"), &e))
    };
    write("sshd_config", config_text().as_bytes(), 0o644)?;
    write(
        "ssh_host_ed25519_key",
        pair.private_openssh.as_bytes(),
        0o600,
    )?;
    write(
        "ssh_host_ed25519_key.pub",
        format!("{}\n", pair.public_openssh).as_bytes(),
        0o644,
    )?;
    let authorized = client_key.map(|k| format!("{k}\n")).unwrap_or_default();
    write("authorized_keys", authorized.as_bytes(), 0o600)?;
    Ok(pair.public_openssh)
}

/// Start the node's server and wait until it answers on port 22.
pub fn start(node: &Node, sandbox: &Arc<Sandbox>) -> Result<(), PlatformError> {
    let argv = [
        SSHD.to_string(),
        "-D".into(),
        "-f".into(),
        format!("{IN_NODE}/sshd_config"),
        "-E".into(),
        LOG_IN_NODE.into(),
    ];
    spawn_detached(node, sandbox, &argv)?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        match banner(node) {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline || !node.alive() => {
                let log = server_log(node);
                let mut err = PlatformError::new(format!(
                    "the SSH server of node `{}` did not answer on port 22 within {} s ({e}); \
                     set `ssh = false` on the node if it needs none",
                    node.record.hostname,
                    READY_TIMEOUT.as_secs()
                ));
                if !log.is_empty() {
                    err = err.with_detail(format!("--- {LOG_IN_NODE} (end) ---\n{log}"));
                }
                return Err(err);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Connect to port 22 inside the node's network namespace and read the
/// server's identification line.
fn banner(node: &Node) -> std::io::Result<()> {
    let pidfd = node.pidfd();
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: setns of this short-lived thread only: the socket
            // below is made in the node's network namespace.
            if unsafe { libc::setns(pidfd, libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let to = SocketAddr::from((Ipv4Addr::LOCALHOST, 22));
            let mut s = TcpStream::connect_timeout(&to, Duration::from_millis(500))?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf)?;
            if buf[..n].starts_with(b"SSH-") {
                Ok(())
            } else {
                Err(std::io::Error::other("no SSH banner on port 22"))
            }
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("probe thread panicked")))
    })
}

/// The last lines of the server's log in the node (empty if unreadable).
fn server_log(node: &Node) -> String {
    let Ok(mut f) = node.open_inside(LOG_IN_NODE.trim_start_matches('/'), libc::O_RDONLY) else {
        return String::new();
    };
    let mut text = String::new();
    let _ = f.by_ref().take(1 << 20).read_to_string(&mut text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_are_private_and_name_the_session_key() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("ssh");
        let host = write_files(&dir, "edge-0", Some("ssh-ed25519 AAAA tg@s")).unwrap();
        assert!(host.starts_with("ssh-ed25519 ") && host.ends_with(" root@edge-0"));
        let mode = |n: &str| std::fs::metadata(dir.join(n)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(""), 0o700);
        assert_eq!(mode("ssh_host_ed25519_key"), 0o600);
        assert_eq!(
            std::fs::read_to_string(dir.join("authorized_keys")).unwrap(),
            "ssh-ed25519 AAAA tg@s\n"
        );
        let config = std::fs::read_to_string(dir.join("sshd_config")).unwrap();
        assert!(config.contains("UsePAM no\n") && config.contains("PasswordAuthentication no\n"));
    }
}
