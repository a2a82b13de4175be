//! What the platform makes on the host besides nodes: bridges chained past
//! a bridge's port limit, run files' modes, warnings about host routes.

use super::*;

/// Bare network namespaces pinned under a temporary folder (cheap
/// stand-ins for nodes), released on drop.
struct BareNamespaces {
    dir: tempfile::TempDir,
    files: Vec<PathBuf>,
}

impl BareNamespaces {
    fn new(count: usize) -> BareNamespaces {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut me = BareNamespaces {
            dir,
            files: Vec::new(),
        };
        for i in 0..count {
            let p = me.dir.path().join(format!("ns{i}"));
            std::fs::write(&p, "").expect("ns file");
            let q = p.clone();
            std::thread::spawn(move || {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
                nix::mount::mount(
                    Some("/proc/thread-self/ns/net"),
                    &q,
                    None::<&str>,
                    nix::mount::MsFlags::MS_BIND,
                    None::<&str>,
                )
                .expect("pin the namespace");
            })
            .join()
            .expect("namespace thread");
            me.files.push(p);
        }
        me
    }
}

impl Drop for BareNamespaces {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = nix::mount::umount2(f, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// More nodes on one network than a Linux bridge has ports (1,023): the
/// network chains bridges, and namespaces on different bridges reach each
/// other and the gateway. Bare namespaces stand in for nodes (the test is
/// about the network, and stays fast).
#[test]
fn a_network_holds_more_nodes_than_a_bridge_has_ports() {
    require_root!();
    let s = Session::new("big");
    let lab = network("lab", "10.81.0.0/21");
    s.create(Spec::Network(lab.clone()));
    let count = net::links::BRIDGE_PORTS as usize + 10;
    let bare = BareNamespaces::new(count);
    let locks = tg::platform::netns::locks::SessionLocks::default();
    let lock = locks.session(&s.sid());
    let hints = net::links::BridgeHints::default();
    let sid = s.sid();
    let veth = |i: usize| names::veth_name(&sid, "lab", &format!("b{i}"), "eth0");
    let address = |i: usize| host_at(&lab.cidr, 2 + i as u32);
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= count {
                    return;
                }
                let v = veth(i);
                let plug = net::links::Plug {
                    network: "lab",
                    node_netns: &bare.files[i],
                    veth: &v,
                    ifname_in_node: "eth0",
                    address: address(i),
                    prefix_len: lab.cidr.prefix_len(),
                    gateway: Some(lab.gateway),
                };
                net::attach(&lock, &hints, s.run_dir(), &sid, &plug)
                    .unwrap_or_else(|e| panic!("attach {i}: {e}"));
            });
        }
    });
    let bridges = net::links::bridge_ports(s.run_dir(), &sid, "lab").expect("bridges");
    assert!(bridges.len() >= 2, "{bridges:?}");
    let ports: usize = bridges.iter().map(|(_, p)| p).sum();
    // Every namespace has a port, and each extra bridge one link to bridge
    // 0 (one port on each side).
    assert_eq!(ports, count + 2 * (bridges.len() - 1), "{bridges:?}");
    assert!(bridges
        .iter()
        .all(|(_, p)| *p as u32 <= net::links::BRIDGE_PORTS));
    // One namespace on the second bridge, one on the first.
    let router = net::router_netns_path(s.run_dir(), &sid);
    let ports_of = |bridge: &str| {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", router.display()))
            .args(["ip", "-o", "link", "show", "master", bridge])
            .output()
            .expect("ip link");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let second = ports_of(&bridges[1].0);
    let on_second = (0..count)
        .find(|i| second.contains(&veth(*i)))
        .unwrap_or_else(|| panic!("nothing on {}: {second}", bridges[1].0));
    let on_first = (0..count).find(|i| !second.contains(&veth(*i))).unwrap();
    let ping = |from: usize, to: Ipv4Addr| {
        Command::new("nsenter")
            .arg(format!("--net={}", bare.files[from].display()))
            .args(["ping", "-c1", "-i0.2", "-w3", &to.to_string()])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(ping(on_second, lab.gateway), "extra bridge -> gateway");
    assert!(ping(on_second, address(on_first)), "extra bridge -> first");
    assert!(ping(on_first, address(on_second)), "first -> extra bridge");
    assert!(matches!(
        s.read(Spec::Network(lab.clone())),
        ReadResponse::Present { .. }
    ));
    let all: Vec<String> = (0..count).map(veth).collect();
    net::detach(s.run_dir(), &sid, &all).expect("detach");
    s.delete(Spec::Network(lab));
    assert!(!net::router_exists(s.run_dir(), &sid));
}

/// Under `umask 000` the platform's run files are not world-writable: the
/// checks run in a child process (the umask is process-wide).
#[test]
fn run_files_have_explicit_modes_under_umask_000() {
    require_root!();
    if std::env::var_os("TG_UMASK_CHILD").is_none() {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
        cmd.args([
            "--exact",
            "netns::host::run_files_have_explicit_modes_under_umask_000",
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
        let out = cmd.output().expect("run the child");
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
    let s = Session::new("modes");
    let lab = network("lab", "10.82.1.0/24");
    s.create(Spec::Network(lab.clone()));
    let n = node("m", &[(&lab, 2)]);
    s.create(Spec::Node(n));
    s.rt.block_on(s.platform.sync_session(SessionSync {
        session: Some(s.session.clone()),
        nodes: BTreeMap::from([(
            "m".to_string(),
            BTreeMap::from([("lab".to_string(), host_at(&lab.cidr, 2))]),
        )]),
    }))
    .expect("sync");
    use std::os::unix::fs::MetadataExt;
    let mode = |p: &Path| std::fs::symlink_metadata(p).expect("stat").mode() & 0o7777;
    let sdir = names::session_dir(s.run_dir(), &s.sid());
    assert_eq!(mode(s.run_dir()), 0o755);
    assert_eq!(mode(&sdir), 0o755);
    assert_eq!(mode(&sdir.join("hosts")), 0o644);
    assert_eq!(mode(&names::session_file(s.run_dir(), &s.sid())), 0o644);
    // Nothing the platform made is writable by others.
    let mut stack = vec![s.run_dir().to_path_buf()];
    let mut seen = 0;
    while let Some(p) = stack.pop() {
        let m = mode(&p);
        seen += 1;
        assert_eq!(m & 0o022, 0, "`{}` is {m:o}", p.display());
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().flatten().map(|e| e.path()));
        }
    }
    assert!(seen > 10, "the walk saw the run folder ({seen} entries)");
}

/// A network whose cidr overlaps one of the host's routes gets a plan-time
/// warning naming the route. The "host" is a private namespace with a
/// route of its own, so the test does not depend on this machine's routes.
#[test]
fn networks_overlapping_host_routes_are_warned_about() {
    require_root!();
    if !crate::support::have_tools(&["ip"]) {
        return;
    }
    let msgs = std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
        for args in [
            "link add tgtest0 type bridge",
            "addr add 10.84.0.1/16 dev tgtest0",
            "link set tgtest0 up",
        ] {
            let st = Command::new("ip")
                .args(args.split(' '))
                .status()
                .expect("ip");
            assert!(st.success(), "ip {args}");
        }
        let p = NetnsPlatform::new(NetnsOptions::default());
        let overlapping = network("lab", "10.84.3.0/24");
        let apart = network("other", "10.85.3.0/24");
        (
            p.check_spec(&Spec::Network(overlapping)),
            p.check_spec(&Spec::Network(apart)),
        )
    })
    .join()
    .expect("namespace thread");
    assert!(
        msgs.0.iter().any(|m| m.contains(
            "cidr `10.84.3.0/24` overlaps the host's route to `10.84.0.0/16` (dev `tgtest0`)"
        )),
        "{msgs:?}"
    );
    assert!(msgs.1.is_empty(), "{msgs:?}");
}
