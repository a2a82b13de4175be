//! netns node internals against the real kernel: namespaces, overlay root,
//! exec, cgroups, packages, images. Needs root; skipped (with a note) otherwise.
//!
//! Every test uses its own random session tag and a temporary run folder,
//! and a guard deletes its nodes even when an assertion fails.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tg::platform::netns::locks::{SessionLock, SessionLocks};
use tg::platform::netns::node::{self, Node, NodeOptions, NodePaths};
use tg::platform::netns::sandbox::{self, Sandbox};
use tg::platform::netns::seccomp::Filters;
use tg::platform::netns::{cgroup, exec, image, package, NetnsOptions};
use tg::platform::{NodeSpec, PackageSource, PackageSpec};

fn is_root() -> bool {
    crate::support::have_root()
}

/// The node init built with these tests.
pub fn init_program() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tg-init"))
}

/// A session with a private run folder; deletes its nodes when dropped.
struct Session {
    run_dir: tempfile::TempDir,
    image_dir: PathBuf,
    sid: String,
    lock: SessionLock,
    nodes: Mutex<Vec<NodePaths>>,
    filters: Filters,
}

impl Session {
    fn new() -> Session {
        Session::with_image_dir(PathBuf::from("/var/lib/tg/images"))
    }

    fn with_image_dir(image_dir: PathBuf) -> Session {
        let sid = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        Session {
            run_dir: tempfile::Builder::new()
                .prefix("tg-node-test-")
                .tempdir()
                .expect("temp run dir"),
            image_dir,
            sid,
            lock: SessionLocks::default().session("test"),
            nodes: Mutex::new(Vec::new()),
            filters: Filters::compile().expect("seccomp filters"),
        }
    }

    fn opts(&self) -> NetnsOptions {
        NetnsOptions {
            run_dir: self.run_dir.path().to_path_buf(),
            image_dir: self.image_dir.clone(),
            init: Some(init_program()),
            ..NetnsOptions::default()
        }
    }

    /// A node whose identity is its hostname.
    fn create(&self, spec: &NodeSpec) -> Node {
        self.create_with(spec, None)
    }

    /// A node, with an SSH server's files when `ssh` is `Some` (the
    /// session's client key).
    fn create_with(&self, spec: &NodeSpec, ssh: Option<Option<&str>>) -> Node {
        let paths = node::node_paths(self.run_dir.path(), &self.sid, &spec.hostname);
        self.nodes.lock().unwrap().push(paths);
        let init = init_program();
        let opts = NodeOptions {
            id: &spec.hostname,
            secrets: &[],
            init: &init,
            ssh,
            filters: Some(&self.filters),
        };
        match node::create_node(&self.lock, &self.opts(), &self.sid, spec, &opts) {
            Ok(n) => n,
            Err(e) => panic!("create {}: {e}: {:?}", spec.hostname, e.detail),
        }
    }

    fn sandbox(&self, n: &Node) -> Arc<Sandbox> {
        Arc::new(if n.record.privileged {
            Sandbox::new(None, None)
        } else {
            Sandbox::new(
                Some(sandbox::node_caps(n.record.devices)),
                Some(&self.filters),
            )
        })
    }

    fn exec(&self, n: &Node, argv: &[&str]) -> (i32, String, String) {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let r = exec::exec(n, &self.sandbox(n), &argv).expect("exec");
        (
            r.exit_code,
            String::from_utf8_lossy(&r.stdout).into_owned(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
        )
    }

    fn target<'a>(&self, n: &'a Node, sb: &'a Arc<Sandbox>) -> package::Target<'a> {
        package::Target {
            node: n,
            sandbox: sb,
            cancel: None,
        }
    }

    /// Lines of the host mount table that mention this session's run folder.
    /// Host mounts under the session's run folder but the session's one
    /// layer of masks (`<sid>/masks`) and its node folders (`<sid>/nodes`):
    /// two tmpfs shared by all its nodes and removed with the session (see
    /// [`Session::drop`]).
    fn our_mounts(&self) -> Vec<String> {
        let needle = self.run_dir.path().to_string_lossy().into_owned();
        let masks = format!("{needle}/{}/masks ", self.sid);
        let nodes = format!("{needle}/{}/nodes ", self.sid);
        self.mounts_under(&needle)
            .into_iter()
            .filter(|l| !l.contains(&masks) && !l.contains(&nodes))
            .collect()
    }

    fn mounts_under(&self, needle: &str) -> Vec<String> {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for p in self.nodes.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = node::delete_node(p);
        }
        let _ = node::sweep_session_nodes(self.run_dir.path(), &self.sid);
        // The sweep ends the session: not even its layer of masks is left.
        let needle = self.run_dir.path().to_string_lossy().into_owned();
        let left = self.mounts_under(&needle);
        if !left.is_empty() && !std::thread::panicking() {
            panic!("the session left host mounts: {left:#?}");
        }
    }
}

fn spec(hostname: &str, image: &str) -> NodeSpec {
    NodeSpec {
        settings: Default::default(),
        host: None,
        hostname: hostname.to_string(),
        image: image.to_string(),
        cpus: None,
        memory_mib: None,
        labels: BTreeMap::new(),
        interfaces: Vec::new(),
    }
}

fn host_has(cmd: &str) -> bool {
    std::process::Command::new("which")
        .arg(cmd)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn nodes_are_isolated_from_each_other_and_the_host() {
    if !is_root() {
        return;
    }
    let s = Session::new();
    let a = s.create(&spec("alpha", "host"));
    let b = s.create(&spec("beta", "host"));
    assert!(node::node_exists(&a.paths) && node::node_exists(&b.paths));
    // Nothing of a node is mounted on the host.
    assert!(s.our_mounts().is_empty(), "{:#?}", s.our_mounts());

    // Hostname in UTS and in /etc/hostname.
    assert_eq!(s.exec(&a, &["hostname"]).1.trim(), "alpha");
    assert_eq!(s.exec(&b, &["hostname"]).1.trim(), "beta");
    assert_eq!(s.exec(&a, &["cat", "/etc/hostname"]).1.trim(), "alpha");

    // A file written in A is seen neither in B nor on the host.
    let marker = format!("/root/tg-node-test-{}", s.sid);
    let (code, _, err) = s.exec(&a, &["sh", "-c", &format!("echo from-a > {marker}")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.exec(&a, &["cat", &marker]).1, "from-a\n");
    assert_eq!(s.exec(&b, &["test", "-e", &marker]).0, 1);
    assert!(!Path::new(&marker).exists());
    // ... and it landed in A's upper layer.
    assert!(a.paths.upper.join(marker.trim_start_matches('/')).is_file());

    // Fresh /proc, /sys of the node's own network namespace: only `lo`, up.
    let (code, out, _) = s.exec(&a, &["ls", "/sys/class/net"]);
    assert_eq!((code, out.trim()), (0, "lo"));
    let (_, flags, _) = s.exec(&a, &["cat", "/sys/class/net/lo/operstate"]);
    assert_eq!(flags.trim(), "unknown"); // `lo` reports `unknown` when up
    let (_, dev, _) = s.exec(&a, &["cat", "/proc/net/dev"]);
    assert!(dev.contains("lo:") && !dev.contains("eth"), "{dev}");
    let (code, out, _) = s.exec(&a, &["cat", "/proc/self/comm"]);
    assert_eq!((code, out.trim()), (0, "cat"));
    // tmpfs /tmp, its own /run.
    let (_, mounts, _) = s.exec(&a, &["cat", "/proc/self/mounts"]);
    assert!(mounts.contains(" /tmp tmpfs "), "{mounts}");
    assert!(mounts.contains(" /run tmpfs "), "{mounts}");
    assert!(
        mounts.lines().next().unwrap_or("").contains(" / overlay "),
        "{mounts}"
    );
}

#[test]
fn sys_shows_interfaces_added_to_the_node_later() {
    if !is_root() {
        return;
    }
    let s = Session::new();
    let a = s.create(&spec("sysnet", "host"));
    let link = format!("tgv{}", &s.sid[..6]);
    let peer = format!("tgp{}", &s.sid[..6]);
    let (code, _, err) = s.exec(
        &a,
        &[
            "ip", "link", "add", &link, "type", "veth", "peer", "name", &peer,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = s.exec(&a, &["ls", "/sys/class/net"]);
    assert!(out.lines().any(|l| l == link), "{out}");
    // The interface lives in the node only.
    assert!(!Path::new("/sys/class/net").join(&link).exists());
}

#[test]
fn parallel_creates_do_not_block_each_other() {
    if !is_root() {
        return;
    }
    let s = std::sync::Arc::new(Session::new());
    let (tx, rx) = std::sync::mpsc::channel();
    let worker_session = s.clone();
    let worker = std::thread::spawn(move || {
        std::thread::scope(|scope| {
            for w in 0..10 {
                let s = &worker_session;
                scope.spawn(move || {
                    for i in 0..3 {
                        let p = s.create(&spec(&format!("p{w}-{i}"), "host"));
                        assert_eq!(s.exec(&p, &["hostname"]).1.trim(), format!("p{w}-{i}"));
                    }
                });
            }
        });
        let _ = tx.send(());
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("30 parallel creates finish within a minute");
    // The worker holds a share of the session: once it is gone, the
    // session's drop (which sweeps it) runs here, before the test ends.
    worker.join().expect("the worker ended");
    assert_eq!(s.nodes.lock().unwrap().len(), 30);
    assert!(s.nodes.lock().unwrap().iter().all(node::node_exists));
    // Thirty nodes, thirty inits, no host mount.
    assert!(s.our_mounts().is_empty());
}

#[test]
fn exec_reports_exit_codes_output_and_environment() {
    if !is_root() {
        return;
    }
    let ns_of_self = || {
        ["net", "mnt", "uts", "ipc"]
            .map(|n| std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap())
    };
    let before = ns_of_self();
    let s = Session::new();
    let a = s.create(&spec("runner", "host"));
    let (code, out, err) = s.exec(&a, &["sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!((code, out.as_str(), err.as_str()), (7, "out\n", "err\n"));
    let (code, _, err) = s.exec(&a, &["no-such-command-tg"]);
    assert_eq!(code, 127);
    assert!(err.contains("command not found"), "{err}");
    let (_, env, _) = s.exec(&a, &["env"]);
    let mut env: Vec<&str> = env.lines().collect();
    env.sort();
    assert_eq!(
        env,
        [
            "HOME=/root",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "TERM=dumb"
        ]
    );
    assert_eq!(s.exec(&a, &["pwd"]).1.trim(), "/root");
    // A signal becomes 128 + signal number.
    assert_eq!(s.exec(&a, &["sh", "-c", "kill -9 $$"]).0, 137);
    // Neither creating nor exec moves the test process itself.
    assert_eq!(ns_of_self(), before);
}

#[test]
fn session_hosts_file_is_rewritten_in_place() {
    if !is_root() {
        return;
    }
    let s = Session::new();
    let a = s.create(&spec("hosty", "host"));
    let ino = std::fs::metadata(&a.paths.hosts).unwrap().ino();
    let mut hosts = BTreeMap::new();
    hosts.insert("hosty".to_string(), vec![Ipv4Addr::new(10, 0, 0, 2)]);
    hosts.insert("other".to_string(), vec![Ipv4Addr::new(10, 0, 0, 3)]);
    node::write_session_hosts(s.run_dir.path(), &s.sid, &hosts).unwrap();
    assert_eq!(std::fs::metadata(&a.paths.hosts).unwrap().ino(), ino);
    let (_, text, _) = s.exec(&a, &["cat", "/etc/hosts"]);
    assert!(text.contains("127.0.0.1\tlocalhost"), "{text}");
    assert!(text.contains("10.0.0.3\tother"), "{text}");
    // Read-only inside the node: one node cannot change the others' view.
    let (code, _, _) = s.exec(&a, &["sh", "-c", "echo 10.9.9.9 evil >> /etc/hosts"]);
    assert_ne!(code, 0);
    let (code, out, _) = s.exec(&a, &["getent", "hosts", "other"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("10.0.0.3"), "{out}");
}

#[test]
fn cgroup_limits_are_written_and_exec_joins_them() {
    if !is_root() {
        return;
    }
    let s = Session::new();
    let mut sp = spec("limited", "host");
    sp.memory_mib = Some(64);
    sp.cpus = Some(0.5);
    let warnings = cgroup::check(&sp);
    let mem_v1 = Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").is_file();
    if !mem_v1 {
        eprintln!("skipped: this test reads cgroup v1 files; warnings: {warnings:?}");
        return;
    }
    assert!(warnings.is_empty(), "{warnings:?}");
    sp.settings.pids = Some(64);
    let a = s.create(&sp);
    let name = cgroup::cgroup_name(&s.sid, "limited");
    let pids = Path::new("/sys/fs/cgroup/pids").join(&name);
    if pids.is_dir() {
        let max = std::fs::read_to_string(pids.join("pids.max")).unwrap();
        assert_eq!(max.trim(), "64");
    }
    let mem = Path::new("/sys/fs/cgroup/memory").join(&name);
    let limit = std::fs::read_to_string(mem.join("memory.limit_in_bytes")).unwrap();
    assert_eq!(limit.trim(), (64u64 * 1024 * 1024).to_string());
    let cpu = Path::new("/sys/fs/cgroup/cpu").join(&name);
    let quota = std::fs::read_to_string(cpu.join("cpu.cfs_quota_us")).unwrap();
    assert_eq!(quota.trim(), "50000");
    // The node's cgroup is the root of its cgroup namespace...
    let (_, cg, _) = s.exec(&a, &["cat", "/proc/self/cgroup"]);
    assert!(cg.contains("memory:/\n"), "{cg}");
    // ... and on the host, exec'd processes and the init are in it.
    let procs = std::fs::read_to_string(mem.join("cgroup.procs")).unwrap();
    assert!(
        procs.lines().any(|l| l.trim() == a.pid().to_string()),
        "{procs}"
    );
    // Lifting the limit in place.
    sp.memory_mib = None;
    cgroup::apply(&s.sid, "limited", &sp).unwrap();
    let limit = std::fs::read_to_string(mem.join("memory.limit_in_bytes")).unwrap();
    assert_ne!(limit.trim(), (64u64 * 1024 * 1024).to_string());
    node::delete_node(&a.paths).unwrap();
    assert!(!mem.exists() && !cpu.exists());
}

/// Processes in the PID namespace of node `n` (seen from the host).
fn in_pid_ns(n: &Node) -> usize {
    let target = std::fs::metadata(format!("/proc/{}/ns/pid", n.pid()))
        .map(|m| m.ino())
        .unwrap_or(0);
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            std::fs::metadata(e.path().join("ns/pid"))
                .map(|m| m.ino())
                .ok()
                == Some(target)
        })
        .count()
}

#[test]
fn delete_leaves_no_mounts_files_or_processes() {
    if !is_root() {
        return;
    }
    let s = Session::new();
    let a = s.create(&spec("gone", "host"));
    let args: Vec<String> = ["sleep", "1000"].iter().map(|x| x.to_string()).collect();
    exec::spawn_detached(&a, &s.sandbox(&a), &args).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(in_pid_ns(&a), 2, "the init and the detached daemon");
    let init = a.pid();
    let paths = a.paths.clone();
    node::delete_node(&paths).unwrap();
    assert!(!node::node_exists(&paths));
    assert!(
        !Path::new(&format!("/proc/{init}/ns")).exists(),
        "the node's init is gone"
    );
    assert!(!paths.dir.exists());
    assert!(s.our_mounts().is_empty(), "{:#?}", s.our_mounts());
    // Idempotent.
    node::delete_node(&paths).unwrap();
    // Creating it again works, and a half-made node is replaced.
    let a = s.create(&spec("gone", "host"));
    // SAFETY: killing the node's init by hand, as a crash would.
    unsafe { libc::kill(a.pid(), libc::SIGKILL) };
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(!node::node_exists(&a.paths));
    let e = exec::exec(&a, &s.sandbox(&a), &["true".to_string()]).unwrap_err();
    assert!(e.message.contains("does not exist"), "{e}");
    let a = s.create(&spec("gone", "host"));
    assert!(node::node_exists(&a.paths));
    assert_eq!(s.exec(&a, &["hostname"]).1.trim(), "gone");
    let swept = node::sweep_session_nodes(s.run_dir.path(), &s.sid).unwrap();
    assert_eq!(swept, ["gone"]);
    assert!(!node::node_exists(&a.paths));
}

fn ensure_apt_lists() {
    let has = std::fs::read_dir("/var/lib/apt/lists")
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
        })
        .unwrap_or(false);
    if !has {
        let st = std::process::Command::new("apt-get")
            .args(["update", "-q"])
            .status()
            .expect("apt-get update");
        assert!(st.success());
    }
}

fn pkg(name: &str, node: &str) -> PackageSpec {
    PackageSpec {
        wait_for: Vec::new(),
        name: name.to_string(),
        version: None,
        source: PackageSource::Apt,
        node: node.to_string(),
    }
}

#[test]
fn packages_install_into_one_node_only() {
    let _dpkg = crate::support::host_dpkg_read();
    if !is_root() {
        return;
    }
    ensure_apt_lists();
    assert!(
        !host_has("hello"),
        "the host must not have GNU hello installed"
    );
    let s = Session::new();
    let a_node = s.create(&spec("pkg-a", "host"));
    let b_node = s.create(&spec("pkg-b", "host"));
    let (sa, sb) = (s.sandbox(&a_node), s.sandbox(&b_node));
    let (a, b) = (s.target(&a_node, &sa), s.target(&b_node, &sb));
    let hello = pkg("hello", "pkg-a");
    if let Err(e) = package::install(&a, &hello, Path::new("/")) {
        panic!("{e}: {}", e.detail.clone().unwrap_or_default());
    }
    let (code, out, _) = s.exec(&a_node, &["hello"]);
    assert_eq!((code, out.trim()), (0, "Hello, world!"));
    assert_ne!(s.exec(&b_node, &["which", "hello"]).0, 0);
    assert!(!host_has("hello"));
    let v = package::installed_version(&a, "hello").unwrap();
    assert!(v.as_deref().is_some_and(|v| !v.is_empty()), "{v:?}");
    assert_eq!(package::installed_version(&b, "hello").unwrap(), None);

    // Pinning the installed version is a no-op that succeeds.
    let mut pinned = hello.clone();
    pinned.version = v.clone();
    package::install(&a, &pinned, Path::new("/")).unwrap();

    package::remove(&a, "hello").unwrap();
    assert_eq!(package::installed_version(&a, "hello").unwrap(), None);
    assert_ne!(s.exec(&a_node, &["which", "hello"]).0, 0);
    package::remove(&a, "hello").unwrap();
    assert!(!host_has("hello"));

    let e = package::install(&a, &pkg("tg-no-such-package", "pkg-a"), Path::new("/"))
        .expect_err("unknown package");
    assert!(e.message.contains("tg-no-such-package"), "{}", e.message);
    let detail = e.detail.unwrap_or_default();
    assert!(detail.contains("Unable to locate package"), "{detail}");
}

#[test]
fn deb_files_install_from_the_testbed_dir() {
    let _dpkg = crate::support::host_dpkg_read();
    if !is_root() {
        return;
    }
    ensure_apt_lists();
    let s = Session::new();
    let a_node = s.create(&spec("deb-a", "host"));
    let sa = s.sandbox(&a_node);
    let a = s.target(&a_node, &sa);
    // Build a tiny package with dpkg-deb.
    let testbed = tempfile::tempdir().unwrap();
    let root = testbed.path().join("pkg");
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        "Package: tg-test-tiny\nVersion: 1.2-3\nArchitecture: all\nMaintainer: tg <tg@example.org>\nDescription: tg test\n",
    )
    .unwrap();
    std::fs::write(root.join("usr/bin/tg-tiny"), "#!/bin/sh\necho tiny\n").unwrap();
    std::process::Command::new("chmod")
        .args(["755", root.join("usr/bin/tg-tiny").to_str().unwrap()])
        .status()
        .unwrap();
    let st = std::process::Command::new("dpkg-deb")
        .args(["--build", "pkg", "tiny.deb"])
        .current_dir(testbed.path())
        .output()
        .unwrap();
    assert!(st.status.success(), "{st:?}");
    let spec = PackageSpec {
        wait_for: Vec::new(),
        name: "tg-test-tiny".into(),
        version: None,
        source: PackageSource::Deb {
            path: PathBuf::from("tiny.deb"),
        },
        node: "deb-a".into(),
    };
    if let Err(e) = package::install(&a, &spec, testbed.path()) {
        panic!("{e}: {}", e.detail.clone().unwrap_or_default());
    }
    assert_eq!(s.exec(&a_node, &["tg-tiny"]).1.trim(), "tiny");
    assert_eq!(
        package::installed_version(&a, "tg-test-tiny")
            .unwrap()
            .as_deref(),
        Some("1.2-3")
    );
    assert!(!host_has("tg-tiny"));
}

#[test]
fn images_are_checked_at_plan_time() {
    let d = Path::new("/var/lib/tg/images");
    assert!(image::check("host", d).is_ok());
    assert!(image::check("dir:/usr", d).is_ok());
    let e = image::check("alpine:3", d).unwrap_err();
    assert!(e.contains("`host`") && e.contains("debian:RELEASE"), "{e}");
}

#[test]
fn dir_image_is_a_private_copy_on_write_root() {
    if !is_root() {
        return;
    }
    let s = Session::new();
    // The host root taken as a plain folder image behaves like `host`.
    let a = s.create(&spec("dirimg", "dir:/"));
    assert_eq!(s.exec(&a, &["hostname"]).1.trim(), "dirimg");
    assert_eq!(s.exec(&a, &["sh", "-c", "echo x > /etc/tg-dir-test"]).0, 0);
    assert!(!Path::new("/etc/tg-dir-test").exists());
}

/// Builds `debian:bookworm` with debootstrap into a temporary image folder
/// (about a minute from the Debian mirror), then runs a node on it.
#[test]
fn debian_image_is_built_once_and_runs() {
    if !is_root() {
        return;
    }
    let image_dir = tempfile::Builder::new()
        .prefix("tg-image-test-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let s = Session::with_image_dir(image_dir.path().to_path_buf());
    let lines = Mutex::new(Vec::<String>::new());
    let started = Instant::now();
    let dir = image::resolve("debian:bookworm", image_dir.path(), &|l| {
        lines.lock().unwrap().push(l.to_string())
    });
    let dir = match dir {
        Ok(d) => d,
        Err(e) => panic!("{e}: {}", e.detail.clone().unwrap_or_default()),
    };
    eprintln!("debootstrap took {:?}", started.elapsed());
    assert!(dir.join("etc/debian_version").is_file());
    assert!(
        dir.join("usr/sbin/sshd").is_file(),
        "built with an SSH server"
    );
    assert!(dir.join("usr/bin/python3").exists(), "built with Python");
    assert!(
        lines.lock().unwrap().iter().any(|l| l.starts_with("I: ")),
        "debootstrap's progress lines were reported"
    );
    // Cached: the second resolve is instant and reports nothing.
    let again = Instant::now();
    image::resolve("debian:bookworm", image_dir.path(), &|l| {
        panic!("rebuilt: {l}")
    })
    .unwrap();
    assert!(again.elapsed().as_millis() < 500);

    let n = s.create_with(&spec("deb12", "debian:bookworm"), Some(None));
    // The image's own OpenSSH server runs in the sandbox with tg's config.
    let key = n.record.ssh_host_key.clone().expect("a host key");
    assert!(key.starts_with("ssh-ed25519 "), "{key}");
    // Its init listens on port 22 from the start and starts the server
    // per connection: a scan from inside the node gets the host key.
    assert!(tg::platform::netns::sshd::listening(&n));
    let (code, out, err) = s.exec(&n, &["ssh-keyscan", "-t", "ed25519", "127.0.0.1"]);
    assert_eq!(code, 0, "{err}");
    let scanned = key.split_whitespace().nth(1).unwrap();
    assert!(out.contains(scanned), "scanned {out:?}, recorded {key}");
    let (code, out, _) = s.exec(&n, &["cat", "/etc/debian_version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("12"), "{out}");
    // The host's files are not there.
    assert_ne!(s.exec(&n, &["test", "-e", "/work"]).0, 0);
    // A fresh image has no apt lists: installing runs `apt-get update` first.
    let t = Instant::now();
    let sn = s.sandbox(&n);
    if let Err(e) = package::install(&s.target(&n, &sn), &pkg("hello", "deb12"), Path::new("/")) {
        panic!("{e}: {}", e.detail.clone().unwrap_or_default());
    }
    eprintln!("apt-get update + install took {:?}", t.elapsed());
    assert_eq!(s.exec(&n, &["hello"]).1.trim(), "Hello, world!");
    node::delete_node(&n.paths).unwrap();
    drop(s);
}

/// Timing: create+delete one node, then 100 nodes 10 at a time. Run with
/// `cargo test --test it netns_node::timing -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check; run by hand"]
fn timing() {
    if !is_root() {
        return;
    }
    let s = Session::new();
    // Warm up (session folder, page cache).
    let w = s.create(&spec("warm", "host"));
    node::delete_node(&w.paths).unwrap();

    let t = Instant::now();
    let one = s.create(&spec("one", "host"));
    let created = t.elapsed();
    node::delete_node(&one.paths).unwrap();
    eprintln!(
        "one node: create {created:?}, create+delete {:?}",
        t.elapsed()
    );

    let t = Instant::now();
    std::thread::scope(|scope| {
        for worker in 0..10 {
            let s = &s;
            scope.spawn(move || {
                let mine: Vec<NodePaths> = (0..10)
                    .map(|i| s.create(&spec(&format!("n{worker}-{i}"), "host")).paths)
                    .collect();
                mine
            });
        }
    });
    let created = t.elapsed();
    let t1 = Instant::now();
    let extra = s.create(&spec("extra", "host"));
    let extra_created = t1.elapsed();
    node::delete_node(&extra.paths).unwrap();
    eprintln!(
        "one node next to 100 others: create {extra_created:?}, create+delete {:?}",
        t1.elapsed()
    );
    let all: Vec<NodePaths> = s
        .nodes
        .lock()
        .unwrap()
        .iter()
        .skip(2)
        .filter(|p| p.id != "extra")
        .cloned()
        .collect();
    assert_eq!(all.len(), 100);
    let t2 = Instant::now();
    std::thread::scope(|scope| {
        for chunk in all.chunks(10) {
            scope.spawn(move || {
                for p in chunk {
                    node::delete_node(p).unwrap();
                }
            });
        }
    });
    eprintln!(
        "100 nodes, 10 in parallel: create {created:?}, delete {:?}, total {:?}",
        t2.elapsed(),
        t.elapsed()
    );
}
