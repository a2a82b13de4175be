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

/// Refuse a session folder reached through a symbolic link, or one of
/// `.tg`, `.tg/ssh` and the folder itself that is a link, not a folder, or
/// owned by another user: tg runs as root, and writing or removing through
/// a link someone planted would touch any file on the host.
fn check_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    for p in [Some(dir), dir.parent(), dir.parent().and_then(Path::parent)]
        .into_iter()
        .flatten()
    {
        let m = match std::fs::symlink_metadata(p) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if m.file_type().is_symlink() || !m.is_dir() {
            return Err(io::Error::other(format!(
                "`{}` is not a folder (a symbolic link?): remove it and apply again",
                p.display()
            )));
        }
        if m.uid() != me {
            return Err(io::Error::other(format!(
                "`{}` belongs to user {}, not to the user running tg: remove it and apply again",
                p.display(),
                m.uid()
            )));
        }
    }
    Ok(())
}

/// Make `dir` (and `.tg/ssh` above it) as private folders, checked.
fn make_dir(dir: &Path) -> io::Result<()> {
    check_dir(dir)?;
    files::create_dir_all(dir, 0o700)?;
    check_dir(dir)?;
    set_mode(dir, 0o700)
}

/// How much a file must survive.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kept {
    /// Synced before it is renamed into place: it survives a power loss
    /// (the private key: nothing else has it).
    Synced,
    /// Renamed into place unsynced: a file tg writes again from what it
    /// has (the `.pub` copy from the private key, `known_hosts` from
    /// state) at every apply, so a power loss costs at most a rewrite.
    Rewritten,
}

/// Write `data` to `path` in a checked folder: a new file under a
/// temporary name (never following a link), then renamed over `path`.
fn write_file(path: &Path, data: &[u8], mode: u32, kept: Kept) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.new"));
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    f.write_all(data)?;
    if kept == Kept::Synced {
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// The private key file's text, never through a link.
fn read_private(dir: &Path) -> io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join(CLIENT_KEY))?;
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    Ok(text)
}

/// The public line of the private key in `dir`, if there is one.
fn public_of_private(dir: &Path) -> io::Result<Option<String>> {
    let text = match read_private(dir) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let key = ssh_key::PrivateKey::from_openssh(text.as_bytes()).map_err(|e| {
        io::Error::other(format!(
            "`{}` is not an OpenSSH private key ({e}): the session's nodes accept only the key \
             tg made; restore it, or destroy the session and apply again",
            dir.join(CLIENT_KEY).display()
        ))
    })?;
    key.public_key()
        .to_openssh()
        .map(Some)
        .map_err(io::Error::other)
}

/// The session's client public key line, when it has one (read from the
/// private key: the `.pub` file is only a copy for people).
pub fn client_public_key(dir: &Path) -> Option<String> {
    check_dir(dir).ok()?;
    public_of_private(dir).ok().flatten()
}

/// The session's client public key line, making the key pair first when it
/// has none. `comment` ends the public line (`tg@SESSION`). A key that
/// exists is kept, whatever became of its `.pub` copy: the session's nodes
/// accept that key only.
pub fn ensure_client_key(dir: &Path, comment: &str) -> Result<String, SshFilesError> {
    make_dir(dir).map_err(at(dir))?;
    let private = dir.join(CLIENT_KEY);
    let public = dir.join(format!("{CLIENT_KEY}.pub"));
    if let Some(line) = public_of_private(dir).map_err(at(dir))? {
        // Tighten what an older tg or a user may have loosened, and put
        // the copy back.
        set_mode(&private, 0o600).map_err(at(dir))?;
        if client_pub_file(dir).as_deref() != Some(line.as_str()) {
            write_file(
                &public,
                format!("{line}\n").as_bytes(),
                0o644,
                Kept::Rewritten,
            )
            .map_err(at(dir))?;
        }
        return Ok(line);
    }
    let pair = crate::ssh_keys::ed25519(comment).map_err(|e| SshFilesError {
        dir: dir.to_path_buf(),
        source: io::Error::other(e),
    })?;
    write_file(
        &private,
        pair.private_openssh.as_bytes(),
        0o600,
        Kept::Synced,
    )
    .map_err(at(dir))?;
    write_file(
        &public,
        format!("{}\n", pair.public_openssh).as_bytes(),
        0o644,
        Kept::Rewritten,
    )
    .map_err(at(dir))?;
    Ok(pair.public_openssh)
}

/// The first line of the `.pub` copy.
fn client_pub_file(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(format!("{CLIENT_KEY}.pub"))).ok()?;
    Some(text.lines().next()?.trim().to_string())
}

fn set_mode(p: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::symlink_metadata(p)?.file_type().is_symlink() {
        return Err(io::Error::other(format!(
            "`{}` is a symbolic link: remove it and apply again",
            p.display()
        )));
    }
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
    make_dir(dir).map_err(at(dir))?;
    write_file(
        &dir.join(KNOWN_HOSTS),
        known_hosts_text(hosts).as_bytes(),
        0o644,
        Kept::Rewritten,
    )
    .map_err(at(dir))
}

/// Remove the session's SSH files (after a complete destroy).
pub fn remove(dir: &Path) -> Result<(), SshFilesError> {
    // Never through a link: `.tg/ssh -> /var/lib` must not cost `/var/lib/NAME`.
    check_dir(dir).map_err(at(dir))?;
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
        // A lost `.pub` copy keeps the key (the nodes accept only it).
        std::fs::remove_file(dir.join("id_ed25519.pub")).unwrap();
        assert_eq!(ensure_client_key(&dir, "tg@pr-1").unwrap(), line);
        assert_eq!(client_public_key(&dir).as_deref(), Some(line.as_str()));
        remove(&dir).unwrap();
        assert!(!dir.exists());
        remove(&dir).unwrap();
    }

    /// tg runs as root in a folder others may write: a planted link must
    /// not make it write, chmod or remove anything elsewhere.
    #[test]
    fn links_in_the_session_folder_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        set_mode(&victim, 0o644).unwrap();
        // A link where the temporary key file goes.
        let dir = t.path().join("a/.tg/ssh/s");
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(".id_ed25519.new")).unwrap();
        ensure_client_key(&dir, "tg@s").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!std::fs::symlink_metadata(dir.join(CLIENT_KEY))
            .unwrap()
            .file_type()
            .is_symlink());
        // A link as the key itself.
        let dir = t.path().join("b/.tg/ssh/s");
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(CLIENT_KEY)).unwrap();
        assert!(ensure_client_key(&dir, "tg@s").is_err());
        assert_eq!(mode(&victim), 0o644);
        // A linked `.tg/ssh`: nothing written there, nothing removed.
        let elsewhere = t.path().join("elsewhere");
        std::fs::create_dir_all(elsewhere.join("s")).unwrap();
        std::fs::write(elsewhere.join("s/data"), "keep").unwrap();
        std::fs::create_dir_all(t.path().join("c/.tg")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, t.path().join("c/.tg/ssh")).unwrap();
        let dir = t.path().join("c/.tg/ssh/s");
        let e = ensure_client_key(&dir, "tg@s").unwrap_err().to_string();
        assert!(e.contains("is not a folder"), "{e}");
        assert!(remove(&dir).is_err());
        assert!(write_known_hosts(&dir, &[]).is_err());
        assert_eq!(
            std::fs::read_to_string(elsewhere.join("s/data")).unwrap(),
            "keep"
        );
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
