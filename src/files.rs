//! Files and folders tg makes on the host (the netns platform's run data,
//! a session's SSH keys), with the mode given, whatever the process's
//! umask: every created file and folder is `chmod`ed to its mode after
//! creation.
//!
//! Not here: what the files hold (their owners write them through these).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Folders: `rwxr-xr-x`.
pub const DIR_MODE: u32 = 0o755;
/// Files: `rw-r--r--`.
pub const FILE_MODE: u32 = 0o644;

/// Make `dir` and its missing parents with `mode` (existing ones are left
/// as they are).
pub fn create_dir_all(dir: &Path, mode: u32) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all(parent, mode)?;
    }
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(mode)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Open `path` for writing (made with `mode` when missing, else its mode
/// is set to `mode`), without truncating it.
pub fn open_for_write(path: &Path, mode: u32) -> io::Result<fs::File> {
    let f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(mode)
        .open(path)?;
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(f)
}

/// Write `data` to `path`, replacing what was there, with `mode`.
pub fn write(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let mut f = open_for_write(path, mode)?;
    f.set_len(0)?;
    f.write_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().mode() & 0o7777
    }

    /// The checks, run in a child process whose umask is `000` (the umask
    /// is process-wide: parallel tests must not see it change).
    #[test]
    fn modes_are_what_was_asked_whatever_the_umask() {
        if std::env::var_os("TG_UMASK_CHILD").is_none() {
            use std::os::unix::process::CommandExt;
            let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
            cmd.args([
                "--exact",
                "files::tests::modes_are_what_was_asked_whatever_the_umask",
                "--test-threads=1",
            ])
            .env("TG_UMASK_CHILD", "1");
            // SAFETY: umask is async-signal-safe.
            unsafe {
                cmd.pre_exec(|| {
                    libc::umask(0);
                    Ok(())
                });
            }
            let out = cmd.output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && text.contains("1 passed"),
                "{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        // SAFETY: umask has no preconditions.
        assert_eq!(
            unsafe { libc::umask(0) },
            0,
            "the child runs under umask 000"
        );
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("a/b/c");
        create_dir_all(&d, 0o755).unwrap();
        for p in [tmp.path().join("a"), tmp.path().join("a/b"), d.clone()] {
            assert_eq!(mode(&p), 0o755, "{}", p.display());
        }
        let f = d.join("f");
        write(&f, b"one", 0o644).unwrap();
        assert_eq!(mode(&f), 0o644);
        write(&f, b"x", 0o600).unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"x");
        assert_eq!(mode(&f), 0o600);
        create_dir_all(&tmp.path().join("z"), 0o1777).unwrap();
        assert_eq!(mode(&tmp.path().join("z")), 0o1777);
    }
}
