//! Debian packages inside a node.
//!
//! apt and dpkg run in the node's mount namespace (so they see and change
//! only the node's root filesystem) but in the host's network namespace (the
//! Debian mirror is reachable only from there), inside the node's cgroups.
//! When apt does not know a package and the node has no package lists (a
//! fresh `debian:` image), or does not know the asked version, it runs
//! `apt-get update` in the node once and retries.
//!
//! This module does not decide what to install (the engine does) and does
//! not make nodes (see `node`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::exec::{node_command, run, Enter};
use super::node::{FileLock, NodePaths};
use crate::platform::{ExecResponse, PackageSource, PackageSpec, PlatformError};

/// An open lock file of the node's package database: apt and dpkg of one
/// node run one at a time (packages of a node may be created in parallel).
fn apt_lock_file(paths: &NodePaths) -> Result<File, PlatformError> {
    let path = paths.dir.join("apt.lock");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| PlatformError::new(format!("cannot open `{}`: {e}", path.display())))
}

fn in_node(paths: &NodePaths, argv: &[&str]) -> Result<ExecResponse, PlatformError> {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let mut cmd = node_command(paths, &paths.sid, &paths.hostname, &argv, Enter::MountOnly)?;
    cmd.env("DEBIAN_FRONTEND", "noninteractive")
        .env("LC_ALL", "C")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    run(cmd, &paths.hostname, &argv)
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
fn has_lists(paths: &NodePaths) -> Result<bool, PlatformError> {
    let r = in_node(
        paths,
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
pub fn install(
    paths: &NodePaths,
    spec: &PackageSpec,
    testbed_dir: &Path,
) -> Result<(), PlatformError> {
    const APT: [&str; 5] = ["apt-get", "install", "-y", "-q", "--no-install-recommends"];
    let target = match &spec.source {
        PackageSource::Apt => match &spec.version {
            Some(v) => format!("{}={v}", spec.name),
            None => spec.name.clone(),
        },
        PackageSource::Deb { path } => copy_deb(paths, spec, &resolve(path, testbed_dir))?,
    };
    let mut argv: Vec<&str> = APT.to_vec();
    argv.push(&target);
    let mut r = in_node(paths, &argv)?;
    let missing_version = output_text(&r).contains("was not found");
    if r.exit_code != 0 && lists_may_be_stale(&r) && (missing_version || !has_lists(paths)?) {
        let update = in_node(paths, &["apt-get", "update", "-q"])?;
        if update.exit_code != 0 {
            return Err(PlatformError::new(format!(
                "cannot install package `{target}` on node `{}`: `apt-get update` failed",
                paths.hostname
            ))
            .with_detail(output_text(&update)));
        }
        r = in_node(paths, &argv)?;
    }
    if let PackageSource::Deb { .. } = spec.source {
        let _ = in_node(paths, &["rm", "-f", &target]);
    }
    if r.exit_code != 0 {
        return Err(PlatformError::new(format!(
            "cannot install package `{}` on node `{}`: apt-get exited with {}",
            display_name(spec),
            paths.hostname,
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
fn copy_deb(paths: &NodePaths, spec: &PackageSpec, deb: &Path) -> Result<String, PlatformError> {
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
    let mut cmd = node_command(paths, &paths.sid, &paths.hostname, &argv, Enter::MountOnly)?;
    cmd.stdin(Stdio::from(file))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let r = run(cmd, &paths.hostname, &argv)?;
    if r.exit_code != 0 {
        return Err(PlatformError::new(format!(
            "cannot copy `{}` into node `{}`",
            deb.display(),
            paths.hostname
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
fn status(paths: &NodePaths, name: &str) -> Result<Option<(String, String)>, PlatformError> {
    let r = in_node(
        paths,
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
            paths.hostname
        ))
        .with_detail(output_text(&r)));
    }
    let (abbrev, version) = out.split_at(3);
    Ok(Some((abbrev.to_string(), version.trim().to_string())))
}

/// The installed version of a package in the node, `None` when not installed.
pub fn installed_version(paths: &NodePaths, name: &str) -> Result<Option<String>, PlatformError> {
    Ok(status(paths, name)?
        .filter(|(abbrev, _)| abbrev.starts_with("ii") || abbrev.starts_with("hi"))
        .map(|(_, v)| v))
}

/// Purge a package from the node; fine when it is not there.
pub fn remove(paths: &NodePaths, name: &str) -> Result<(), PlatformError> {
    let lock_file = apt_lock_file(paths)?;
    let _lock = FileLock::exclusive(&lock_file);
    if status(paths, name)?.is_none() {
        return Ok(());
    }
    let r = in_node(
        paths,
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
            paths.hostname, r.exit_code
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
