//! A node's OpenSSH server: its files, where it lives, whether it listens.
//!
//! A node with SSH on gets a host key tg makes and a server config of tg's
//! own, written on the host in the node's folder (`NODE/ssh/`, `rwx------`)
//! and bound read-only at [`IN_NODE`] by the node's init. The init listens
//! on port 22 before the node counts as made and starts `sshd -i` with
//! that config for each connection (socket activation, like Debian's
//! `ssh.socket`; see `init`), so each server inherits the init's
//! capabilities, seccomp filters, cgroups and namespaces, and making a
//! node costs no server start (about 9 ms of CPU each).
//!
//! The config: key authentication only (the session's client key, and
//! `/root/.ssh/authorized_keys` for keys added in the node), root by key,
//! `UsePAM no` (PAM's `pam_loginuid` needs `CAP_AUDIT_CONTROL`, which the
//! sandbox drops), sftp served in process (`internal-sftp`), so `scp` and
//! `sftp` need nothing more from the image. Its log goes to
//! [`LOG_IN_NODE`].
//! Not here: the session's client key and `known_hosts` (`ops::ssh_files`).

use std::path::Path;

use crate::files;
use crate::platform::PlatformError;

use super::node::Node;

/// The server, where Debian puts it (in the node's root).
pub const SSHD: &str = "/usr/sbin/sshd";
/// Where the node sees its SSH files.
pub const IN_NODE: &str = "/run/tg-ssh";
/// The server's log, inside the node.
pub const LOG_IN_NODE: &str = "/run/tg-sshd.log";

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

/// Whether the node listens on port 22 (its init does, from the moment
/// the node is made). Read from the node's socket table
/// (`/proc/PID/net/tcp` of its init), not by connecting, which would
/// start a server for nothing.
pub fn listening(node: &Node) -> bool {
    std::fs::read_to_string(format!("/proc/{}/net/tcp", node.pid()))
        .is_ok_and(|t| listens_on_22(&t))
}

/// Whether a `/proc/net/tcp` table has a socket listening on port 22 of
/// any address (`local_address` `XXXXXXXX:0016`, state `0A`).
fn listens_on_22(table: &str) -> bool {
    table.lines().skip(1).any(|l| {
        let mut f = l.split_whitespace();
        let local = f.nth(1).unwrap_or("");
        let state = f.nth(1).unwrap_or("");
        local.ends_with(":0016") && state == "0A"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_listening_port_22_is_read_from_the_socket_table() {
        let head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
        let listen = "   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n";
        let conn = "   1: 0100007F:0016 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n";
        let other = "   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0\n";
        assert!(listens_on_22(&format!("{head}{listen}")));
        assert!(!listens_on_22(&format!("{head}{conn}{other}")));
        assert!(!listens_on_22(head));
    }

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
