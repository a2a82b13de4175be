//! The kernel's own cost of what a netns node is made of, with as little
//! user space as possible around it: the floor under tg's cost per node.
//!
//! `cargo bench --bench kernel_floor [-- N]` (root; default N = 100).
//!
//! Everything happens inside a private network and mount namespace of this
//! process, so nothing is left on the host and no host link or mount table
//! grows. Four phases, each timed over N objects made one after the other:
//! - **namespaces**: `clone` of a child in new PID, mount, network, UTS and
//!   IPC namespaces (as a node's init is made) that exits at once, reaped.
//!   The kernel frees a network namespace later, in a worker of its own;
//!   the phase counts until the last child is reaped, as an apply would;
//! - **veths**: one bridge, then N veth pairs created, enslaved and set up,
//!   through one `ip -batch` process (one netlink socket); then deleted one
//!   by one, through another;
//! - **overlays**: N overlay mounts over one lower folder (each with its own
//!   upper and work folders), then N unmounts.
//!
//! It prints one line per phase (total and per object) and a last line
//! `floor_ms_per_node=X`, the sum of the per-object costs.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    if !nix::unistd::geteuid().is_root() {
        eprintln!("error: the kernel floor benchmark needs root");
        std::process::exit(1);
    }
    if n == 0 || n > 10_000 {
        eprintln!("error: N must be between 1 and 10000");
        std::process::exit(1);
    }
    // A private network and mount namespace for this whole process.
    // SAFETY: unshare of this (single-threaded) process.
    if unsafe { libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWNS) } != 0 {
        eprintln!("error: cannot unshare: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("make / private");

    println!("kernel floor: {n} objects of each kind, one after the other");
    let ns = namespaces(n);
    let (veth_make, veth_delete) = veths(n);
    let overlay = overlays(n);
    let per = |s: f64| s * 1000.0 / n as f64;
    println!("namespaces  {:.3} s  {:.3} ms each", ns, per(ns));
    println!(
        "veths       {:.3} s  {:.3} ms each (create, enslave, up)",
        veth_make,
        per(veth_make)
    );
    println!(
        "veth delete {:.3} s  {:.3} ms each (one by one)",
        veth_delete,
        per(veth_delete)
    );
    println!(
        "overlays    {:.3} s  {:.3} ms each (mount, unmount)",
        overlay,
        per(overlay)
    );
    println!(
        "floor_ms_per_node={:.3}",
        per(ns) + per(veth_make) + per(veth_delete) + per(overlay)
    );
}

/// Seconds to clone and reap `n` children in a node's set of namespaces.
fn namespaces(n: usize) -> f64 {
    let flags = libc::CLONE_NEWPID
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC;
    let start = Instant::now();
    for _ in 0..n {
        // SAFETY: fork-like clone; the child only calls _exit.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (flags | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if pid < 0 {
            panic!("clone: {}", std::io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: in the child.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(pid as i32, &mut status, 0) };
    }
    start.elapsed().as_secs_f64()
}

/// Seconds to make `n` veth pairs on one bridge (created, enslaved, up),
/// then to delete them, each through one `ip -batch` (one netlink socket).
fn veths(n: usize) -> (f64, f64) {
    let mut make = String::from("link add fbr type bridge\nlink set fbr up\n");
    for i in 0..n {
        make.push_str(&format!(
            "link add fa{i} type veth peer name fb{i}\nlink set fa{i} master fbr up\nlink set fb{i} up\n"
        ));
    }
    let mut delete = String::new();
    for i in 0..n {
        delete.push_str(&format!("link del fa{i}\n"));
    }
    delete.push_str("link del fbr\n");
    (ip_batch(&make), ip_batch(&delete))
}

/// Seconds `ip -batch -` takes to run `script`.
fn ip_batch(script: &str) -> f64 {
    let start = Instant::now();
    let mut child = Command::new("ip")
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("run ip (iproute2)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write to ip");
    let status = child.wait().expect("wait for ip");
    assert!(status.success(), "ip -batch failed");
    start.elapsed().as_secs_f64()
}

/// Seconds to mount and unmount `n` overlays over one lower folder.
fn overlays(n: usize) -> f64 {
    let tmp = tempfile::tempdir().expect("temp dir");
    let lower = tmp.path().join("lower");
    std::fs::create_dir_all(lower.join("etc")).expect("lower");
    let mut targets = Vec::new();
    for i in 0..n {
        let d = tmp.path().join(format!("n{i}"));
        for sub in ["upper", "work", "merged"] {
            std::fs::create_dir_all(d.join(sub)).expect("node folders");
        }
        targets.push(d);
    }
    let start = Instant::now();
    for d in &targets {
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            d.join("upper").display(),
            d.join("work").display()
        );
        nix::mount::mount(
            Some("overlay"),
            &d.join("merged"),
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(data.as_str()),
        )
        .expect("mount overlay");
    }
    for d in &targets {
        let c = CString::new(d.join("merged").as_os_str().as_bytes()).expect("path");
        // SAFETY: unmounting our own mount.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
    start.elapsed().as_secs_f64()
}
