//! Mounts the router needs: the mount table (`/proc/self/mountinfo`) and
//! shared mount points.
//!
//! Not here: node mounts (`node`), which are made inside the node's own
//! mount namespace.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use super::{nix_err, NetResult};

/// Make `dir` a shared mount point (a bind mount of itself), as iproute2
/// unmounts its copies in mount namespaces made later.
pub(super) fn make_shared_mount_point(dir: &Path) -> NetResult<()> {
    let shared = |d: &Path| {
        mount(
            None::<&str>,
            d,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    if is_mount_point(dir) {
        return shared(dir).map_err(nix_err(format!("cannot share `{}`", dir.display())));
    }
    mount(
        Some(dir),
        dir,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(nix_err(format!(
        "cannot bind `{}` on itself",
        dir.display()
    )))?;
    shared(dir).map_err(nix_err(format!("cannot share `{}`", dir.display())))
}

/// Is `path` a mount point (listed in `/proc/self/mountinfo`)?
pub fn is_mount_point(path: &Path) -> bool {
    mount_points_under(path).iter().any(|p| p == path)
}

/// Every mount point at or under `root`, deepest first.
pub fn mount_points_under(root: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mount_points_in(&text, root)
}

/// The mount points at or under `root` in mountinfo text, deepest first.
fn mount_points_in(mountinfo: &str, root: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(root))
        .collect();
    found.sort_by(|a, b| {
        b.components()
            .count()
            .cmp(&a.components().count())
            .then_with(|| a.cmp(b))
    });
    found.dedup();
    found
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo("/x\\"), "/x\\");
        assert_eq!(unescape_mountinfo("/x\\04"), "/x\\04");
    }

    #[test]
    fn mount_points_under_a_root_deepest_first() {
        let text = "\
22 1 0:21 / / rw - ext4 /dev/sda1 rw
30 22 0:40 / /run/tg rw - tmpfs tmpfs rw
31 30 0:4 net:[1] /run/tg/ab/netns/router rw - nsfs nsfs rw
32 30 0:41 / /run/tg/ab/netns rw - tmpfs tmpfs rw
33 30 0:41 / /run/tg/ab/netns rw - tmpfs tmpfs rw
34 22 0:42 / /run/tg\\040x rw - tmpfs tmpfs rw
35 22 0:43 / /run/tgother rw - tmpfs tmpfs rw
";
        assert_eq!(
            mount_points_in(text, Path::new("/run/tg/ab")),
            [
                PathBuf::from("/run/tg/ab/netns/router"),
                PathBuf::from("/run/tg/ab/netns")
            ]
        );
        let all = mount_points_in(text, Path::new("/run/tg"));
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(all.last().unwrap(), Path::new("/run/tg"));
        assert!(mount_points_in("garbage\n\n", Path::new("/")).is_empty());
    }
}
