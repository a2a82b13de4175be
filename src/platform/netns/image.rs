//! Node images: the read-only lower layer of a node's root filesystem.
//!
//! Three forms:
//! - `host`: the host's own `/` (its nested mounts such as `/proc` or `/run`
//!   are not part of the layer; the node gets fresh ones);
//! - `debian:RELEASE`: a `debootstrap --variant=minbase` tree with an
//!   OpenSSH server and Python built once into
//!   `<image_dir>/debian-RELEASE-ssh` and reused (built into a temporary folder
//!   and renamed, under an exclusive `flock`, so parallel nodes build it once);
//! - `dir:PATH`: an existing folder (absolute path) used as is.
//!
//! This module does not mount anything (see `node`).

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::node::{detach, FileLock};
use crate::platform::PlatformError;

/// Where debootstrap keeps its per-release scripts (the known releases).
const DEBOOTSTRAP_SCRIPTS: &str = "/usr/share/debootstrap/scripts";

const VALID_FORMS: &str =
    "valid images are `host`, `debian:RELEASE` (for example `debian:bookworm`) and `dir:/absolute/path`";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Image {
    Host,
    Debian(String),
    Dir(PathBuf),
}

fn parse(image: &str) -> Result<Image, String> {
    if image == "host" {
        return Ok(Image::Host);
    }
    if let Some(release) = image.strip_prefix("debian:") {
        let sane = !release.is_empty()
            && release.len() <= 32
            && release.starts_with(|c: char| c.is_ascii_lowercase())
            && release
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !sane {
            return Err(format!(
                "invalid Debian release `{release}` in image `{image}`: expected a release name \
                 such as `bookworm` or `trixie`"
            ));
        }
        let scripts = Path::new(DEBOOTSTRAP_SCRIPTS);
        if scripts.is_dir() && !scripts.join(release).exists() {
            return Err(format!(
                "unknown Debian release `{release}` in image `{image}`: debootstrap has no \
                 script for it (see `{DEBOOTSTRAP_SCRIPTS}`); use a release such as `bookworm`"
            ));
        }
        return Ok(Image::Debian(release.to_string()));
    }
    if let Some(path) = image.strip_prefix("dir:") {
        let p = PathBuf::from(path);
        if !p.is_absolute() {
            return Err(format!(
                "image `{image}` needs an absolute path after `dir:`"
            ));
        }
        if path.contains([',', ':', '\\']) {
            return Err(format!(
                "image path `{path}` cannot be used as an overlay layer: it contains `,`, `:` or `\\`"
            ));
        }
        return Ok(Image::Dir(p));
    }
    Err(format!("unknown image `{image}`: {VALID_FORMS}"))
}

/// Plan time, no side effects: is `image` a valid image reference here?
pub fn check(image: &str, _image_dir: &Path) -> Result<(), String> {
    match parse(image)? {
        Image::Dir(p) if !p.is_dir() => Err(format!(
            "image `{image}`: folder `{}` does not exist",
            p.display()
        )),
        _ => Ok(()),
    }
}

/// The folder of a `debian:RELEASE` image in the cache (built or not).
/// Named after the packages built in (`-ssh`: with an OpenSSH server and
/// Python), so an image cached by a tg that built it without them is not
/// taken for one.
pub fn debian_dir(image_dir: &Path, release: &str) -> PathBuf {
    image_dir.join(format!("debian-{release}-ssh"))
}

/// What a `debian:` image holds besides debootstrap's `minbase`: an SSH
/// server for `tg ssh` and Ansible, and the Python Ansible's modules run on.
const DEBIAN_INCLUDE: &str = "openssh-server,python3";

/// Plan time, no side effects: the root `image` would have if it exists
/// now (`None`: a `debian:` image not built yet, or an invalid one).
pub fn cached_root(image: &str, image_dir: &Path) -> Option<PathBuf> {
    match parse(image).ok()? {
        Image::Host => Some(PathBuf::from("/")),
        Image::Dir(p) => p.is_dir().then_some(p),
        Image::Debian(release) => {
            let dir = debian_dir(image_dir, &release);
            dir.is_dir().then_some(dir)
        }
    }
}

/// The lower layer for `image`, building a `debian:RELEASE` image first if
/// it is not cached. Progress lines of a build go to `progress`.
pub fn resolve(
    image: &str,
    image_dir: &Path,
    progress: &dyn Fn(&str),
) -> Result<PathBuf, PlatformError> {
    match parse(image).map_err(PlatformError::new)? {
        Image::Host => Ok(PathBuf::from("/")),
        Image::Dir(p) => {
            if p.is_dir() {
                Ok(p)
            } else {
                Err(PlatformError::new(format!(
                    "image `{image}`: folder `{}` does not exist",
                    p.display()
                )))
            }
        }
        Image::Debian(release) => {
            let dir = debian_dir(image_dir, &release);
            if dir.is_dir() {
                return Ok(dir);
            }
            build_debian(&release, image_dir, progress)?;
            Ok(dir)
        }
    }
}

fn build_debian(
    release: &str,
    image_dir: &Path,
    progress: &dyn Fn(&str),
) -> Result<(), PlatformError> {
    let final_dir = debian_dir(image_dir, release);
    fs::create_dir_all(image_dir).map_err(|e| {
        PlatformError::new(format!(
            "cannot create image folder `{}`: {e}",
            image_dir.display()
        ))
    })?;
    let lock_path = image_dir.join(format!(".debian-{release}.lock"));
    let lock_file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(&lock_path)
        .map_err(|e| PlatformError::new(format!("cannot open `{}`: {e}", lock_path.display())))?;
    let _lock = FileLock::exclusive(&lock_file);
    if final_dir.is_dir() {
        // Someone else built it while we waited.
        return Ok(());
    }
    let tmp = image_dir.join(format!(".debian-{release}.partial"));
    remove_partial(&tmp)?;
    progress(&format!(
        "building image `debian:{release}` with debootstrap (takes a minute)"
    ));
    let mut child = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            &format!("--include={DEBIAN_INCLUDE}"),
            release,
        ])
        .arg(&tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                PlatformError::new(
                    "cannot build a `debian:` image: `debootstrap` is not installed; install \
                     it with `apt-get install debootstrap`",
                )
            } else {
                PlatformError::new(format!("cannot run `debootstrap`: {e}"))
            }
        })?;
    let stderr = child.stderr.take();
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let mut tail: Vec<String> = Vec::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            progress(&line);
            tail.push(line);
            if tail.len() > 30 {
                tail.remove(0);
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| PlatformError::new(format!("cannot wait for `debootstrap`: {e}")))?;
    let errors = err_thread.join().unwrap_or_default();
    if !status.success() {
        let log = fs::read_to_string(tmp.join("debootstrap/debootstrap.log")).unwrap_or_default();
        let log_tail: Vec<&str> = log.lines().rev().take(30).collect();
        let mut detail = tail.join("\n");
        if !errors.trim().is_empty() {
            detail.push('\n');
            detail.push_str(errors.trim());
        }
        if !log_tail.is_empty() {
            detail.push_str("\n--- debootstrap.log (end) ---\n");
            detail.push_str(&log_tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        let _ = remove_partial(&tmp);
        return Err(PlatformError::new(format!(
            "cannot build image `debian:{release}`: debootstrap failed ({status})"
        ))
        .with_detail(detail));
    }
    fs::rename(&tmp, &final_dir).map_err(|e| {
        PlatformError::new(format!(
            "cannot move the built image to `{}`: {e}",
            final_dir.display()
        ))
    })?;
    progress(&format!("image `debian:{release}` ready"));
    Ok(())
}

/// Remove a leftover partial build, unmounting what a killed debootstrap may
/// have left mounted inside it (`/proc`, `/sys`) first.
fn remove_partial(tmp: &Path) -> Result<(), PlatformError> {
    if !tmp.exists() {
        return Ok(());
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = tmp.to_string_lossy().into_owned();
    let mut mounts: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let _ = detach(Path::new(m));
    }
    fs::remove_dir_all(tmp).map_err(|e| {
        PlatformError::new(format!(
            "cannot remove the partial image `{}`: {e}",
            tmp.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let d = Path::new("/nonexistent-image-dir");
        assert!(check("host", d).is_ok());
        assert!(check("debian:bookworm", d).is_ok());
        assert!(check("dir:/", d).is_ok());
        let e = check("ubuntu:22.04", d).unwrap_err();
        assert!(e.contains("unknown image `ubuntu:22.04`"), "{e}");
        assert!(e.contains("debian:RELEASE"), "{e}");
        assert!(check("debian:Bookworm!", d)
            .unwrap_err()
            .contains("invalid Debian release"));
        assert!(check("debian:", d).is_err());
        assert!(check("dir:relative", d).unwrap_err().contains("absolute"));
        assert!(check("dir:/does/not/exist/tg", d)
            .unwrap_err()
            .contains("does not exist"));
    }

    #[test]
    fn host_resolves_to_root() {
        let got = resolve("host", Path::new("/x"), &|_| {}).unwrap();
        assert_eq!(got, Path::new("/"));
    }
}
