//! Debian packages inside a node.
//!
//! Everything runs in the node's sandbox (its PID, mount, UTS, IPC and
//! cgroup namespaces, cgroups, capabilities and seccomp filter; see
//! `exec`), in two steps: apt downloads what the package needs
//! (`--download-only`) in the host's network namespace, the only one that
//! reaches the Debian mirror; then the install, dpkg and every maintainer
//! script run fully inside the node, its network included
//! (`--no-download`). When apt does not know a package and the node has no
//! package lists (a fresh `debian:` image), or does not know the asked
//! version, it runs `apt-get update` (on the host's network) once and
//! retries.
//!
//! The packages of one node are installed and removed one at a time (a
//! lock file in the node's folder; the engine may create them at once),
//! and a cancelled apply kills apt's process group.
//!
//! This module does not decide what to install (the engine does) and does
//! not make nodes (see `node`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use super::exec::{collect, node_command, Enter};
use super::node::{FileLock, Node};
use super::sandbox::Sandbox;
use crate::platform::{Cancel, ExecResponse, PackageSource, PackageSpec, PlatformError};

/// A node and what its package work runs with.
pub struct Target<'a> {
    pub node: &'a Node,
    pub sandbox: &'a Arc<Sandbox>,
    pub cancel: Option<&'a Cancel>,
}

/// An open lock file of the node's package database: apt and dpkg of one
/// node run one at a time (packages of a node may be created in parallel).
fn apt_lock_file(t: &Target) -> Result<File, PlatformError> {
    let path = t.node.paths.dir.join("apt.lock");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| PlatformError::new(format!("cannot open `{}`: {e}", path.display())))
}

fn run(t: &Target, enter: Enter, argv: &[&str]) -> Result<ExecResponse, PlatformError> {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let mut cmd = node_command(t.node, t.sandbox, &argv, enter, false)?;
    cmd.env("DEBIAN_FRONTEND", "noninteractive")
        .env("LC_ALL", "C");
    collect(t.node, cmd, &argv, t.cancel)
}

/// Fully inside the node, its network included.
fn in_node(t: &Target, argv: &[&str]) -> Result<ExecResponse, PlatformError> {
    run(t, Enter::All, argv)
}

/// Inside the node but on the host's network (downloads).
fn downloading(t: &Target, argv: &[&str]) -> Result<ExecResponse, PlatformError> {
    run(t, Enter::HostNetwork, argv)
}

fn output_text(r: &ExecResponse) -> String {
    let mut s = String::from_utf8_lossy(&r.stdout).trim_end().to_string();
    let e = String::from_utf8_lossy(&r.stderr);
    if !e.trim().is_empty() {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str(e.trim_end());
    }
    s
}

/// apt's answer when its package lists lack the package or version.
fn lists_may_be_stale(r: &ExecResponse) -> bool {
    let text = output_text(r);
    text.contains("Unable to locate package")
        || text.contains("has no installation candidate")
        || (text.contains("Version '") && text.contains("was not found"))
}

/// Whether the node has apt package lists at all (a fresh `debian:` image has none).
fn has_lists(t: &Target) -> Result<bool, PlatformError> {
    let r = in_node(
        t,
        &[
            "find",
            "/var/lib/apt/lists",
            "-maxdepth",
            "1",
            "-name",
            "*_Packages*",
            "-print",
            "-quit",
        ],
    )?;
    Ok(r.exit_code == 0 && !r.stdout.is_empty())
}

/// Install a package in the node: from the apt archives (`NAME=VERSION`, or
/// the newest `NAME`) or from a local `.deb` (relative paths against
/// `testbed_dir`). Failures carry apt's output as detail.
pub fn install(t: &Target, spec: &PackageSpec, testbed_dir: &Path) -> Result<(), PlatformError> {
    let hostname = &t.node.record.hostname;
    let lock_file = apt_lock_file(t)?;
    let _lock = FileLock::exclusive(&lock_file);
    let target = match &spec.source {
        PackageSource::Apt => match &spec.version {
            Some(v) => format!("{}={v}", spec.name),
            None => spec.name.clone(),
        },
        PackageSource::Deb { path } => copy_deb(t, spec, &resolve(path, testbed_dir))?,
    };
    const APT: [&str; 5] = ["apt-get", "install", "-y", "-q", "--no-install-recommends"];
    let argv = |step: &'static str| {
        let mut v: Vec<&str> = APT.to_vec();
        v.push(step);
        v.push(&target);
        v
    };
    let mut r = downloading(t, &argv("--download-only"))?;
    let missing_version = output_text(&r).contains("was not found");
    if r.exit_code != 0 && lists_may_be_stale(&r) && (missing_version || !has_lists(t)?) {
        let update = downloading(t, &["apt-get", "update", "-q"])?;
        if update.exit_code != 0 {
            return Err(PlatformError::new(format!(
                "cannot install package `{target}` on node `{hostname}`: `apt-get update` failed"
            ))
            .with_detail(output_text(&update)));
        }
        r = downloading(t, &argv("--download-only"))?;
    }
    if r.exit_code == 0 {
        // A local `.deb` is no archive apt would have downloaded: apt
        // refuses `--no-download` for it (its dependencies are cached now).
        r = match spec.source {
            PackageSource::Apt => in_node(t, &argv("--no-download"))?,
            PackageSource::Deb { .. } => in_node(t, &argv("--quiet"))?,
        };
    }
    if let PackageSource::Deb { .. } = spec.source {
        let _ = in_node(t, &["rm", "-f", &target]);
    }
    if r.exit_code != 0 {
        return Err(PlatformError::new(format!(
            "cannot install package `{}` on node `{hostname}`: apt-get exited with {}",
            display_name(spec),
            r.exit_code
        ))
        .with_detail(output_text(&r)));
    }
    Ok(())
}

fn display_name(spec: &PackageSpec) -> String {
    match &spec.version {
        Some(v) => format!("{}={v}", spec.name),
        None => spec.name.clone(),
    }
}

fn resolve(path: &Path, testbed_dir: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        testbed_dir.join(path)
    }
}

/// Copy a `.deb` into the node's `/tmp`; returns its path inside the node.
fn copy_deb(t: &Target, spec: &PackageSpec, deb: &Path) -> Result<String, PlatformError> {
    let file = File::open(deb).map_err(|e| {
        PlatformError::new(format!(
            "cannot read package file `{}` for `{}`: {e}",
            deb.display(),
            spec.name
        ))
    })?;
    let inside = format!("/tmp/tg-{}.deb", sanitize(&spec.name));
    let argv: Vec<String> = ["cp", "/dev/stdin", &inside]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut cmd = node_command(t.node, t.sandbox, &argv, Enter::All, false)?;
    cmd.stdin(Stdio::from(file));
    let r = collect(t.node, cmd, &argv, t.cancel)?;
    if r.exit_code != 0 {
        return Err(PlatformError::new(format!(
            "cannot copy `{}` into node `{}`",
            deb.display(),
            t.node.record.hostname
        ))
        .with_detail(output_text(&r)));
    }
    Ok(inside)
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// dpkg's status abbreviation (`ii `, `rc `) and version of a package, or
/// `None` when dpkg has never heard of it.
fn status(t: &Target, name: &str) -> Result<Option<(String, String)>, PlatformError> {
    let r = in_node(
        t,
        &["dpkg-query", "-W", "-f=${db:Status-Abbrev}${Version}", name],
    )?;
    let out = String::from_utf8_lossy(&r.stdout).into_owned();
    if r.exit_code != 0 || out.len() < 3 {
        let err = String::from_utf8_lossy(&r.stderr);
        if r.exit_code == 1 || err.contains("no packages found") || out.is_empty() {
            return Ok(None);
        }
        return Err(PlatformError::new(format!(
            "cannot query package `{name}` on node `{}`",
            t.node.record.hostname
        ))
        .with_detail(output_text(&r)));
    }
    let (abbrev, version) = out.split_at(3);
    Ok(Some((abbrev.to_string(), version.trim().to_string())))
}

/// The installed version of a package in the node, `None` when not installed.
pub fn installed_version(t: &Target, name: &str) -> Result<Option<String>, PlatformError> {
    Ok(status(t, name)?
        .filter(|(abbrev, _)| abbrev.starts_with("ii") || abbrev.starts_with("hi"))
        .map(|(_, v)| v))
}

/// Purge a package from the node; fine when it is not there.
pub fn remove(t: &Target, name: &str) -> Result<(), PlatformError> {
    let lock_file = apt_lock_file(t)?;
    let _lock = FileLock::exclusive(&lock_file);
    if status(t, name)?.is_none() {
        return Ok(());
    }
    let r = in_node(
        t,
        &[
            "apt-get",
            "purge",
            "-y",
            "-q",
            "-o",
            "DPkg::Lock::Timeout=300",
            name,
        ],
    )?;
    if r.exit_code != 0 {
        return Err(PlatformError::new(format!(
            "cannot remove package `{name}` from node `{}`: apt-get exited with {}",
            t.node.record.hostname, r.exit_code
        ))
        .with_detail(output_text(&r)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_lists_are_recognised() {
        let r = ExecResponse {
            exit_code: 100,
            stdout: Vec::new(),
            stderr: b"E: Unable to locate package nope".to_vec(),
        };
        assert!(lists_may_be_stale(&r));
        let r = ExecResponse {
            exit_code: 100,
            stdout: Vec::new(),
            stderr: b"E: Sub-process /usr/bin/dpkg returned an error code (1)".to_vec(),
        };
        assert!(!lists_may_be_stale(&r));
    }

    #[test]
    fn deb_names_are_safe() {
        assert_eq!(sanitize("libfoo+1.2"), "libfoo+1.2");
        assert_eq!(sanitize("a/../b"), "a_.._b");
    }
}
