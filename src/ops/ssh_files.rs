//! A session's SSH files, in `.tg/ssh/SESSION/` next to its testbed (see
//! [`session_ssh_dir`]): the client key pair `id_ed25519` /
//! `id_ed25519.pub` that every node of the session accepts, and
//! `known_hosts`, the host keys of its nodes as their platforms made them.
//!
//! The folder is `rwx------` and the private key `rw-------` whatever the
//! umask; `known_hosts` is rewritten after every apply from what state
//! records, and a complete destroy removes the folder.
//! Not here: making keys (`ssh_keys`), how ssh is told to use these files
//! (`ops::ssh_args`).

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use crate::files;
use crate::platform::registry::Registry;
use crate::platform::Spec;
use crate::state::Snapshot;

pub use crate::ops::ssh_args::session_ssh_dir;

/// The client private key's file name in the session's folder.
pub const CLIENT_KEY: &str = "id_ed25519";
/// The known hosts file's name in the session's folder.
pub const KNOWN_HOSTS: &str = "known_hosts";

/// Why a session's SSH files could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the session's SSH files in `{}`: {source}", dir.display())]
pub struct SshFilesError {
    pub dir: PathBuf,
    #[source]
    pub source: io::Error,
}

fn at(dir: &Path) -> impl FnOnce(io::Error) -> SshFilesError + '_ {
    move |source| SshFilesError {
        dir: dir.to_path_buf(),
        source,
    }
}

/// The session's client public key line, when it has one.
pub fn client_public_key(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(format!("{CLIENT_KEY}.pub"))).ok()?;
    let line = text.lines().next()?.trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// The session's client public key line, making the key pair first when it
/// has none. `comment` ends the public line (`tg@SESSION`).
pub fn ensure_client_key(dir: &Path, comment: &str) -> Result<String, SshFilesError> {
    let private = dir.join(CLIENT_KEY);
    if private.is_file() {
        if let Some(line) = client_public_key(dir) {
            // Tighten what an older tg or a user may have loosened.
            files::create_dir_all(dir, 0o700).map_err(at(dir))?;
            set_mode(dir, 0o700).map_err(at(dir))?;
            set_mode(&private, 0o600).map_err(at(dir))?;
            return Ok(line);
        }
    }
    files::create_dir_all(dir, 0o700).map_err(at(dir))?;
    set_mode(dir, 0o700).map_err(at(dir))?;
    let pair = crate::ssh_keys::ed25519(comment).map_err(|e| SshFilesError {
        dir: dir.to_path_buf(),
        source: io::Error::other(e),
    })?;
    // The private key first, under a temporary name: a crash in between
    // leaves no public key without its private one.
    let tmp = dir.join(format!(".{CLIENT_KEY}.new"));
    files::write(&tmp, pair.private_openssh.as_bytes(), 0o600).map_err(at(dir))?;
    std::fs::rename(&tmp, &private).map_err(at(dir))?;
    files::write(
        &dir.join(format!("{CLIENT_KEY}.pub")),
        format!("{}\n", pair.public_openssh).as_bytes(),
        0o644,
    )
    .map_err(at(dir))?;
    Ok(pair.public_openssh)
}

fn set_mode(p: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
}

/// One line of `known_hosts`: the names a node is reached by, its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHost {
    /// Hostname and addresses.
    pub names: Vec<String>,
    /// `ssh-ed25519 AAAA…` (a comment after it is dropped).
    pub key: String,
}

/// The known hosts of a session: every recorded node whose platform made
/// its SSH host key, by hostname and every address.
pub fn known_hosts_of(snap: &Snapshot, registry: &Registry) -> Vec<KnownHost> {
    let mut out = Vec::new();
    for rec in snap.instances.values() {
        let Spec::Node(n) = &rec.spec else { continue };
        let Some(key) = registry
            .get(&rec.platform)
            .and_then(|p| p.ssh_host_key(&rec.private))
        else {
            continue;
        };
        let mut names: Vec<String> = n.interfaces.iter().map(|i| i.address.to_string()).collect();
        names.insert(0, n.hostname.clone());
        let key = key.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        out.push(KnownHost { names, key });
    }
    out
}

/// The text of a `known_hosts` file for `hosts`.
pub fn known_hosts_text(hosts: &[KnownHost]) -> String {
    let mut text =
        String::from("# written by tg after every apply: the session's nodes' host keys\n");
    for h in hosts {
        let _ = writeln!(text, "{} {}", h.names.join(","), h.key);
    }
    text
}

/// Write the session's `known_hosts` (atomically: a reader sees the old
/// file or the new one). Writes nothing when there is nothing to write
/// and no folder yet.
pub fn write_known_hosts(dir: &Path, hosts: &[KnownHost]) -> Result<(), SshFilesError> {
    if hosts.is_empty() && !dir.is_dir() {
        return Ok(());
    }
    files::create_dir_all(dir, 0o700).map_err(at(dir))?;
    let tmp = dir.join(format!(".{KNOWN_HOSTS}.new"));
    files::write(&tmp, known_hosts_text(hosts).as_bytes(), 0o644).map_err(at(dir))?;
    std::fs::rename(&tmp, dir.join(KNOWN_HOSTS)).map_err(at(dir))
}

/// Remove the session's SSH files (after a complete destroy).
pub fn remove(dir: &Path) -> Result<(), SshFilesError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(at(dir)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    /// The modes are set explicitly (`files` is tested under umask 000), so
    /// a folder someone opened up is closed again.
    #[test]
    fn the_client_key_is_private() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join(".tg/ssh/pr-1");
        std::fs::create_dir_all(&dir).unwrap();
        set_mode(&dir, 0o777).unwrap();
        let line = ensure_client_key(&dir, "tg@pr-1").unwrap();
        assert!(line.starts_with("ssh-ed25519 ") && line.ends_with(" tg@pr-1"));
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(CLIENT_KEY)), 0o600);
        // Made once: the second call returns the same key.
        assert_eq!(ensure_client_key(&dir, "tg@pr-1").unwrap(), line);
        assert_eq!(client_public_key(&dir).as_deref(), Some(line.as_str()));
        // A loosened key is tightened again.
        set_mode(&dir.join(CLIENT_KEY), 0o644).unwrap();
        ensure_client_key(&dir, "tg@pr-1").unwrap();
        assert_eq!(mode(&dir.join(CLIENT_KEY)), 0o600);
        remove(&dir).unwrap();
        assert!(!dir.exists());
        remove(&dir).unwrap();
    }

    #[test]
    fn known_hosts_name_the_host_and_every_address() {
        let t = tempfile::tempdir().unwrap();
        let hosts = vec![KnownHost {
            names: vec!["edge-0".into(), "10.0.0.2".into(), "10.1.0.2".into()],
            key: "ssh-ed25519 AAAAC3Nz".into(),
        }];
        write_known_hosts(t.path(), &hosts).unwrap();
        let text = std::fs::read_to_string(t.path().join(KNOWN_HOSTS)).unwrap();
        assert!(text.contains("\nedge-0,10.0.0.2,10.1.0.2 ssh-ed25519 AAAAC3Nz\n"));
        // No folder and nothing to write: nothing made.
        let none = t.path().join("none");
        write_known_hosts(&none, &[]).unwrap();
        assert!(!none.exists());
    }
}
