//! What a process in a node may do: its capabilities and its seccomp
//! filter, and the host files it must not see.
//!
//! Root in a node keeps Docker's default capability set plus `NET_ADMIN`
//! (tests change routes, addresses and qdiscs in the node's own network
//! namespace); every other capability is dropped from the bounding set, so
//! nothing the node executes gets it back. `MKNOD` stays only when the
//! node has a devices cgroup that says which devices may be opened (cgroup
//! v1 `devices`; see `cgroup`). The seccomp filters (`seccomp`) follow
//! Docker's default profile: an allow list (anything else fails with
//! `EPERM`: `mount`, `unshare`, `setns`, `bpf`, `kexec_load`...).
//!
//! A `privileged` node keeps every capability and runs without a filter.
//!
//! [`Sandbox::enter`] is what a forked child calls before `exec`: raw
//! system calls only, on data prepared in the parent (it runs between
//! `fork` and `exec` of a multi-threaded process).
//!
//! Not here: the namespaces and mounts of a node (`node`, `init`), which
//! processes enter it (`exec`).

use std::path::{Path, PathBuf};

use seccompiler::BpfProgram;

use super::seccomp::{self, Filters};

/// Capabilities by number (`linux/capability.h`).
pub mod cap {
    pub const CHOWN: u32 = 0;
    pub const DAC_OVERRIDE: u32 = 1;
    pub const FOWNER: u32 = 3;
    pub const FSETID: u32 = 4;
    pub const KILL: u32 = 5;
    pub const SETGID: u32 = 6;
    pub const SETUID: u32 = 7;
    pub const SETPCAP: u32 = 8;
    pub const NET_BIND_SERVICE: u32 = 10;
    pub const NET_ADMIN: u32 = 12;
    pub const NET_RAW: u32 = 13;
    pub const SYS_CHROOT: u32 = 18;
    pub const SYS_PTRACE: u32 = 19;
    pub const SYS_ADMIN: u32 = 21;
    pub const MKNOD: u32 = 27;
    pub const AUDIT_WRITE: u32 = 29;
    pub const SETFCAP: u32 = 31;
}

/// Docker's default capabilities (without `MKNOD`, see [`node_caps`]) and
/// `NET_ADMIN`.
pub const NODE_CAPS: &[(u32, &str)] = &[
    (cap::CHOWN, "CHOWN"),
    (cap::DAC_OVERRIDE, "DAC_OVERRIDE"),
    (cap::FOWNER, "FOWNER"),
    (cap::FSETID, "FSETID"),
    (cap::KILL, "KILL"),
    (cap::SETGID, "SETGID"),
    (cap::SETUID, "SETUID"),
    (cap::SETPCAP, "SETPCAP"),
    (cap::SETFCAP, "SETFCAP"),
    (cap::NET_BIND_SERVICE, "NET_BIND_SERVICE"),
    (cap::NET_RAW, "NET_RAW"),
    (cap::SYS_CHROOT, "SYS_CHROOT"),
    (cap::AUDIT_WRITE, "AUDIT_WRITE"),
    (cap::NET_ADMIN, "NET_ADMIN"),
];

/// The capability mask of a node's root: [`NODE_CAPS`], and `MKNOD` when
/// a devices cgroup restricts what device files can be opened.
pub fn node_caps(with_mknod: bool) -> u64 {
    let mut mask = NODE_CAPS.iter().fold(0u64, |m, (c, _)| m | (1 << c));
    if with_mknod {
        mask |= 1 << cap::MKNOD;
    }
    mask
}

/// What is applied to every process that enters a node.
#[derive(Debug)]
pub struct Sandbox {
    /// Capabilities kept (bounding, permitted, effective); `None`:
    /// privileged, everything is kept and no filter is installed.
    caps: Option<u64>,
    filters: Vec<BpfProgram>,
}

/// A `sock_fprog` for `seccomp(2)`.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const seccompiler::sock_filter,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

impl Sandbox {
    /// Keep the capabilities `caps` (`None`: all of them, privileged) and
    /// install `filters`.
    pub fn new(caps: Option<u64>, filters: Option<&Filters>) -> Sandbox {
        Sandbox {
            caps,
            filters: filters.map(|f| f.programs.clone()).unwrap_or_default(),
        }
    }

    /// [`Sandbox::new`] with filters packed by [`Filters::pack`] (what a
    /// node's init is handed).
    pub fn from_packed(caps: Option<u64>, packed: &[Vec<u64>]) -> Sandbox {
        Sandbox {
            caps,
            filters: packed
                .iter()
                .map(|p| p.iter().map(|&i| seccomp::unpack(i)).collect())
                .collect(),
        }
    }

    pub fn is_privileged(&self) -> bool {
        self.caps.is_none()
    }

    /// The capability mask kept (all ones when privileged).
    pub fn caps(&self) -> u64 {
        self.caps.unwrap_or(u64::MAX)
    }

    /// Confine the calling process: drop capabilities from the bounding
    /// set, install the filters, keep only the node's capabilities. To be
    /// called in a forked child right before `exec` (raw system calls on
    /// data made in the parent, no allocation).
    ///
    /// # Safety
    /// Only in a single-threaded child; the filters stay installed for
    /// every later program of the process.
    pub unsafe fn enter(&self) -> Result<(), libc::c_int> {
        let Some(keep) = self.caps else {
            return Ok(());
        };
        for c in 0..64u32 {
            if keep & (1 << c) == 0
                && libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) != 0
            {
                let e = errno();
                // Past the last capability this kernel knows.
                if e == libc::EINVAL {
                    break;
                }
                return Err(e);
            }
        }
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            return Err(errno());
        }
        // The filters go on while CAP_SYS_ADMIN is still held, so
        // `no_new_privs` is not needed (as with Docker's defaults).
        for f in &self.filters {
            let prog = SockFprog {
                len: f.len() as libc::c_ushort,
                filter: f.as_ptr(),
            };
            if libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const SockFprog,
            ) != 0
            {
                return Err(errno());
            }
        }
        let header = CapHeader {
            version: CAP_VERSION_3,
            pid: 0,
        };
        let data = [
            CapData {
                effective: keep as u32,
                permitted: keep as u32,
                inheritable: 0,
            },
            CapData {
                effective: (keep >> 32) as u32,
                permitted: (keep >> 32) as u32,
                inheritable: 0,
            },
        ];
        if libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) != 0 {
            return Err(errno());
        }
        Ok(())
    }
}

fn errno() -> libc::c_int {
    // SAFETY: reading the thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Host files a node never sees when its image is (or contains) the
/// host's root: credentials of the host and of its users. Paths are
/// absolute host paths; see [`masks_under`].
pub const HOST_SECRETS: &[&str] = &[
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/ssh/ssh_host_rsa_key",
    "/etc/ssh/ssh_host_ecdsa_key",
    "/etc/ssh/ssh_host_ed25519_key",
    "/etc/ssh/ssh_host_dsa_key",
    "/etc/ssl/private",
    "/root",
    "/home",
    "/var/lib/tg",
];

/// How a secret is hidden in a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mask {
    /// A folder: an empty folder of the node's own (opaque in the overlay).
    EmptyDir(PathBuf),
    /// `/etc/shadow` and `/etc/gshadow`: the node's own copy with every
    /// password field locked (`*`), so accounts and tools still work.
    Locked(PathBuf),
    /// Any other file: gone (a whiteout in the overlay).
    Gone(PathBuf),
}

/// The masks for a node whose lower layer is `lower`: every secret path
/// (absolute, on the host) that lies under `lower` and exists there, as a
/// path inside the node. `is_dir` says whether a host path is a folder
/// (`None`: it does not exist).
pub fn masks_under(
    lower: &Path,
    secrets: &[PathBuf],
    is_dir: &dyn Fn(&Path) -> Option<bool>,
) -> Vec<Mask> {
    let mut out = Vec::new();
    for s in secrets {
        let Ok(rel) = s.strip_prefix(lower) else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let inside = Path::new("/").join(rel);
        let Some(dir) = is_dir(s) else {
            continue;
        };
        let name = inside.file_name().and_then(|n| n.to_str()).unwrap_or("");
        out.push(if dir {
            Mask::EmptyDir(inside)
        } else if matches!(name, "shadow" | "gshadow") && inside.parent() == Some(Path::new("/etc"))
        {
            Mask::Locked(inside)
        } else {
            Mask::Gone(inside)
        });
    }
    // A folder mask hides what lies below it: drop those.
    let dirs: Vec<PathBuf> = out
        .iter()
        .filter_map(|m| match m {
            Mask::EmptyDir(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    out.retain(|m| {
        let p = match m {
            Mask::EmptyDir(p) | Mask::Locked(p) | Mask::Gone(p) => p,
        };
        !dirs.iter().any(|d| p != d && p.starts_with(d))
    });
    out
}

/// `text` of a shadow file with every password field replaced by `*`.
pub fn lock_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut fields: Vec<&str> = line.split(':').collect();
        if fields.len() > 1 {
            fields[1] = "*";
        }
        out.push_str(&fields.join(":"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_dockers_and_net_admin() {
        let m = node_caps(false);
        assert_eq!(m.count_ones(), 14);
        assert_ne!(m & (1 << cap::NET_ADMIN), 0);
        assert_eq!(m & (1 << cap::SYS_ADMIN), 0);
        assert_eq!(m & (1 << cap::SYS_PTRACE), 0);
        assert_eq!(m & (1 << cap::MKNOD), 0);
        assert_ne!(node_caps(true) & (1 << cap::MKNOD), 0);
    }

    #[test]
    fn packed_filters_come_back_the_same() {
        let f = Filters::compile().unwrap();
        let back = Sandbox::from_packed(Some(1), &f.pack());
        assert_eq!(back.filters.len(), f.programs.len());
        for (a, b) in back.filters.iter().zip(&f.programs) {
            assert_eq!(a.len(), b.len());
            assert!(a
                .iter()
                .zip(b)
                .all(|(x, y)| (x.code, x.jt, x.jf, x.k) == (y.code, y.jt, y.jf, y.k)));
        }
    }

    #[test]
    fn masks_are_the_secrets_under_the_lower_layer() {
        let secrets: Vec<PathBuf> = ["/etc/shadow", "/root", "/root/.ssh", "/run/tg", "/etc/x"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let is_dir = |p: &Path| match p.to_str() {
            Some("/etc/shadow") | Some("/etc/x") => Some(false),
            Some("/root") | Some("/root/.ssh") => Some(true),
            _ => None,
        };
        let m = masks_under(Path::new("/"), &secrets, &is_dir);
        assert_eq!(
            m,
            [
                Mask::Locked("/etc/shadow".into()),
                Mask::EmptyDir("/root".into()),
                Mask::Gone("/etc/x".into()),
            ]
        );
        // An image elsewhere holds none of the host's files.
        assert!(
            masks_under(Path::new("/var/lib/tg/images/debian-x"), &secrets, &is_dir).is_empty()
        );
        // A folder image under the root holds those below it.
        let m = masks_under(Path::new("/root"), &secrets, &is_dir);
        assert_eq!(m, [Mask::EmptyDir("/.ssh".into())]);
    }

    #[test]
    fn passwords_are_locked() {
        assert_eq!(
            lock_passwords("root:$6$abc:19000:0:99999:7:::\nbin:*:19000::::::\n"),
            "root:*:19000:0:99999:7:::\nbin:*:19000::::::\n"
        );
    }
}
