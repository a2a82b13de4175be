//! Plan-time checks of the netns platform: whether a node's image can run
//! the SSH server it asks for, warnings about a network on this host, and
//! what of a node may change in place.

use std::fs;

use super::{image, net, sshd, NetnsPlatform};
use crate::platform::{NetworkSpec, NodeSpec};

impl NetnsPlatform {
    /// Whether a node's image can run the SSH server it asks for: `ssh =
    /// true` on an image without one is refused, unset gets a warning (the
    /// node runs without one). A `debian:` image not built yet gets one.
    pub(super) fn check_ssh(
        &self,
        spec: &NodeSpec,
        mut warnings: Vec<String>,
    ) -> (Option<String>, Vec<String>) {
        if spec.settings.ssh == Some(false) {
            return (None, warnings);
        }
        let Some(lower) = image::cached_root(&spec.image, &self.options.image_dir) else {
            return (None, warnings);
        };
        if sshd::image_has_sshd(&lower) {
            return (None, warnings);
        }
        let how = if spec.image == "host" {
            "install it on the host (`apt-get install openssh-server`)".to_string()
        } else {
            format!("add `openssh-server` to the image (`{}`)", lower.display())
        };
        let missing = format!(
            "image `{}` has no OpenSSH server (`{}`)",
            spec.image,
            sshd::SSHD
        );
        if spec.settings.ssh == Some(true) {
            (
                Some(format!("{missing}: {how}, or set `ssh = false`")),
                warnings,
            )
        } else {
            warnings.push(format!(
                "{missing}: the node runs without one, so `tg ssh` and Ansible cannot reach it; \
                 {how}, or set `ssh = false` to say it needs none"
            ));
            (None, warnings)
        }
    }
}

/// Plan-time warnings about network `n` on this host, given whether
/// `iptables` is installed and the host's routes.
pub(super) fn network_warnings(
    n: &NetworkSpec,
    have_iptables: bool,
    routes: &[net::host::HostRoute],
) -> Vec<String> {
    let mut out = Vec::new();
    if n.nat && !have_iptables {
        out.push(format!(
            "network `{}`: `nat = true` needs `iptables` on this host: install the `iptables` package, or set `nat = false`",
            n.name
        ));
    }
    for r in net::host::overlapping(&n.cidr, routes) {
        out.push(format!(
            "network `{}`: cidr `{}` overlaps the host's route to `{}` (dev `{}`): {}; choose a cidr the host does not use",
            n.name,
            n.cidr,
            r.dest,
            r.dev,
            if n.nat {
                "nodes cannot reach those host-side addresses through nat"
            } else {
                "nodes are apart from the host, but would not reach those addresses if the network got `nat = true`"
            }
        ));
    }
    out
}

/// A node spec with what can change in place blanked (what must be equal
/// for an in-place update): limits, hostname, interfaces.
pub(super) fn updatable_only(spec: &NodeSpec) -> NodeSpec {
    let mut s = NodeSpec {
        cpus: None,
        memory_mib: None,
        hostname: String::new(),
        interfaces: Vec::new(),
        ..spec.clone()
    };
    s.settings.pids = None;
    // Checks run when an instance is made: changing them changes nothing.
    s.settings.wait_for = Vec::new();
    s
}

/// Is `tool` an executable in `PATH`?
pub(super) fn tool_exists(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            fs::metadata(d.join(tool))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}
