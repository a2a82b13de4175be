//! The netns platform for real, through the `Platform` trait: networks,
//! nodes, isolation between networks and between sessions, drift, sweep.
//!
//! Needs root (skips with a message otherwise) and `ping` on the host (the
//! `host` image sees the host's binaries). Every test uses its own random
//! lineage and a private run folder; a guard sweeps the session on drop,
//! so a failing test leaves nothing behind.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use tg::platform::netns::{names, net, NetnsOptions, NetnsPlatform};
use tg::platform::{
    CollectRequest, CreateRequest, DeleteRequest, Interface, NetworkSpec, NodeSpec, Platform,
    ReadRequest, ReadResponse, SessionRef, SessionSync, Spec,
};

fn is_root() -> bool {
    crate::support::have_root()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: the netns platform tests need root");
            return;
        }
    };
}

/// One test session: a platform with a private run folder, swept on drop.
struct Session {
    rt: tokio::runtime::Runtime,
    platform: NetnsPlatform,
    session: SessionRef,
    /// The private value each created instance returned, by address.
    privates: std::sync::Mutex<BTreeMap<String, serde_json::Value>>,
    _tmp: tempfile::TempDir,
}

impl Session {
    fn new(name: &str) -> Session {
        Session::sharing(name, None)
    }

    /// A session whose run folder is `run_dir` (another session's), as
    /// all sessions share `/run/tg` on a real host.
    fn sharing(name: &str, run_dir: Option<&Path>) -> Session {
        Session::with_lineage(name, run_dir, uuid::Uuid::new_v4().to_string())
    }

    fn with_lineage(name: &str, run_dir: Option<&Path>, lineage: String) -> Session {
        let tmp = tempfile::tempdir().expect("temp dir");
        let options = NetnsOptions {
            run_dir: run_dir.map_or_else(|| tmp.path().join("run"), Path::to_path_buf),
            image_dir: tmp.path().join("images"),
            init: Some(crate::netns_node::init_program()),
            ..NetnsOptions::default()
        };
        Session {
            privates: Default::default(),
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .enable_all()
                .build()
                .expect("runtime"),
            platform: NetnsPlatform::new(options),
            session: SessionRef {
                name: name.into(),
                lineage,
                testbed_dir: tmp.path().to_path_buf(),
                ssh_client_key: None,
            },
            _tmp: tmp,
        }
    }

    fn sid(&self) -> String {
        names::sid(&self.session.lineage)
    }

    fn run_dir(&self) -> &Path {
        &self.platform.options.run_dir
    }

    fn create(&self, spec: Spec) -> serde_json::Value {
        let address = address_of(&spec);
        let private = self
            .rt
            .block_on(self.platform.create(CreateRequest {
                session: self.session.clone(),
                address: address.clone(),
                spec,
                deps: BTreeMap::new(),
                cancel: Default::default(),
                trace: Default::default(),
            }))
            .unwrap_or_else(|e| panic!("create `{address}`: {e} {:?}", e.detail))
            .private;
        self.remember(&address, &private);
        private
    }

    fn remember(&self, address: &str, private: &serde_json::Value) {
        self.privates
            .lock()
            .unwrap()
            .insert(address.to_string(), private.clone());
    }

    /// What `create` returned for `address` (null if nothing).
    fn private(&self, address: &str) -> serde_json::Value {
        self.privates
            .lock()
            .unwrap()
            .get(address)
            .cloned()
            .unwrap_or_default()
    }

    /// Create many specs at once, like the engine does.
    fn create_all(&self, specs: Vec<Spec>) {
        self.rt.block_on(async {
            let mut tasks = Vec::new();
            for spec in specs {
                let p = self.platform.clone();
                let session = self.session.clone();
                tasks.push(tokio::spawn(async move {
                    let address = address_of(&spec);
                    p.create(CreateRequest {
                        session,
                        address: address.clone(),
                        spec,
                        deps: BTreeMap::new(),
                        cancel: Default::default(),
                        trace: Default::default(),
                    })
                    .await
                    .map(|r| (address.clone(), r.private))
                    .map_err(|e| format!("create `{address}`: {e}"))
                }));
            }
            for t in tasks {
                let (address, private) = t.await.expect("task").expect("create");
                self.remember(&address, &private);
            }
        });
    }

    fn read(&self, spec: Spec) -> ReadResponse {
        self.rt
            .block_on(self.platform.read(ReadRequest {
                session: self.session.clone(),
                address: address_of(&spec),
                private: self.private(&address_of(&spec)),
                spec,
            }))
            .expect("read")
    }

    fn delete(&self, spec: Spec) {
        let address = address_of(&spec);
        self.rt
            .block_on(self.platform.delete(DeleteRequest {
                session: self.session.clone(),
                address: address.clone(),
                spec,
                private: self.private(&address),
                deps: BTreeMap::new(),
                cancel: Default::default(),
                trace: Default::default(),
            }))
            .unwrap_or_else(|e| panic!("delete `{address}`: {e}"));
    }

    fn exec(&self, node: &NodeSpec, argv: &[&str]) -> (i32, String) {
        let r = self
            .rt
            .block_on(tg::platform::exec_collected(
                &self.platform,
                CollectRequest {
                    session: self.session.clone(),
                    address: format!("node.{}", node.hostname),
                    spec: node.clone(),
                    private: self.private(&format!("node.{}", node.hostname)),
                    argv: argv.iter().map(|s| s.to_string()).collect(),
                    timeout: None,
                },
            ))
            .expect("exec");
        let mut out = String::from_utf8_lossy(&r.stdout).into_owned();
        out.push_str(&String::from_utf8_lossy(&r.stderr));
        (r.exit_code, out)
    }

    /// Does `from` get an answer from `to` within 3 s?
    fn ping(&self, from: &NodeSpec, to: Ipv4Addr) -> bool {
        let (code, _) = self.exec(from, &["ping", "-c1", "-i0.2", "-w3", &to.to_string()]);
        code == 0
    }

    /// Does `from` get no answer from `to` (two tries, about 1 s)?
    fn no_ping(&self, from: &NodeSpec, to: Ipv4Addr) -> bool {
        let (code, _) = self.exec(from, &["ping", "-c2", "-i0.2", "-W1", &to.to_string()]);
        code != 0
    }

    fn sweep(&self) -> Vec<String> {
        self.rt
            .block_on(self.platform.sweep(&self.session))
            .expect("sweep")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Err(e) = self.rt.block_on(self.platform.sweep(&self.session)) {
            eprintln!("cleanup sweep failed: {e}");
        }
    }
}

fn address_of(spec: &Spec) -> String {
    match spec {
        Spec::Network(n) => format!("network.{}", n.name),
        Spec::Node(n) => format!("node.{}", n.hostname),
        Spec::Package(p) => format!("package.{}[node.{}]", p.name, p.node),
    }
}

fn network(name: &str, cidr: &str) -> NetworkSpec {
    let cidr: ipnet::Ipv4Net = cidr.parse().unwrap();
    NetworkSpec {
        name: name.into(),
        gateway: host_at(&cidr, 1),
        cidr,
        nat: false,
    }
}

fn host_at(cidr: &ipnet::Ipv4Net, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(cidr.network()) + n)
}

fn node(hostname: &str, ifaces: &[(&NetworkSpec, u32)]) -> NodeSpec {
    NodeSpec {
        settings: Default::default(),
        host: None,
        hostname: hostname.into(),
        image: "host".into(),
        cpus: None,
        memory_mib: None,
        labels: BTreeMap::new(),
        interfaces: ifaces
            .iter()
            .map(|(net, n)| Interface {
                impair: Default::default(),
                network: net.name.clone(),
                address: host_at(&net.cidr, *n),
                prefix_len: net.cidr.prefix_len(),
                gateway: net.gateway,
            })
            .collect(),
    }
}

/// Links of the host's root namespace that a session must not leave
/// there: any tg bridge or veth (they never belong in the host), and the
/// NAT uplink of session `sid` (other tests' uplinks come and go).
fn host_tg_links(sid: &str) -> BTreeSet<String> {
    let uplink = names::uplink_name(sid);
    net::links_in(None)
        .expect("list host links")
        .into_iter()
        .filter(|l| l.starts_with("tgb") || l.starts_with("tgv") || *l == uplink)
        .collect()
}

/// Mounts whose mount point mentions `needle`.
fn mounts_with(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// `/run/netns` entries of session `sid`.
fn netns_entries(sid: &str) -> Vec<String> {
    let out = Command::new("ip").args(["-all", "netns"]).output();
    let mut found: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.contains(sid))
                .collect()
        })
        .unwrap_or_default();
    if let Ok(o) = out {
        found.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.contains(sid))
                .map(str::to_string),
        );
    }
    found
}

#[test]
fn nodes_reach_their_network_and_nothing_else() {
    require_root!();
    let s = Session::new("iso");
    let host_links = host_tg_links(&s.sid());
    let a = network("a", "10.71.1.0/24");
    let b = network("b", "10.71.2.0/24");
    s.create_all(vec![Spec::Network(a.clone()), Spec::Network(b.clone())]);
    let a1 = node("a1", &[(&a, 2)]);
    let a2 = node("a2", &[(&a, 3)]);
    let b1 = node("b1", &[(&b, 2)]);
    let both = node("both", &[(&a, 10), (&b, 10)]);
    s.create_all(vec![
        Spec::Node(a1.clone()),
        Spec::Node(a2.clone()),
        Spec::Node(b1.clone()),
        Spec::Node(both.clone()),
    ]);

    assert!(
        s.ping(&a1, host_at(&a.cidr, 3)),
        "a1 -> a2 within network a"
    );
    assert!(s.ping(&a1, a.gateway), "a1 -> its gateway");
    assert!(
        s.ping(&both, host_at(&a.cidr, 2)),
        "multi-homed -> a1 via eth0"
    );
    assert!(
        s.ping(&both, host_at(&b.cidr, 2)),
        "multi-homed -> b1 via eth1"
    );
    assert!(s.no_ping(&a1, host_at(&b.cidr, 2)), "a1 must not reach b1");
    assert!(s.no_ping(&b1, host_at(&a.cidr, 3)), "b1 must not reach a2");
    assert!(
        s.no_ping(&a1, b.gateway),
        "a1 must not reach network b's gateway"
    );
    assert!(s.ping(&b1, b.gateway), "b1 reaches its own gateway");

    // The node sees its interfaces and only its default route via eth0.
    let (code, out) = s.exec(&both, &["ip", "-4", "route"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("default via 10.71.1.1 dev eth0"), "{out}");
    assert!(!out.contains("default via 10.71.2.1"), "{out}");

    // The host's root namespace never got a link.
    assert_eq!(host_tg_links(&s.sid()), host_links);

    // Deleting everything removes the router too; deleting again is fine.
    for n in [&a1, &a2, &b1, &both] {
        s.delete(Spec::Node(n.clone()));
        s.delete(Spec::Node(n.clone()));
        assert_eq!(s.read(Spec::Node(n.clone())), ReadResponse::Gone);
    }
    // The kernel takes the nodes' veths off the bridges once their
    // namespaces are released.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let veths_left = || {
        net::existing_links(s.run_dir(), &s.sid())
            .unwrap()
            .into_iter()
            .filter(|l| l.starts_with("tgv"))
            .count()
    };
    while veths_left() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(veths_left(), 0, "veths outlived their nodes");
    s.delete(Spec::Network(a.clone()));
    let rules = Command::new("nsenter")
        .arg(format!(
            "--net={}",
            net::router_netns_path(s.run_dir(), &s.sid()).display()
        ))
        .args(["ip", "rule"])
        .output()
        .expect("ip rule");
    let rules = String::from_utf8_lossy(&rules.stdout).into_owned();
    assert!(
        !rules.contains(&names::bridge_name(&s.sid(), "a")),
        "network a's rules went with it: {rules}"
    );
    assert!(
        rules.contains(&names::bridge_name(&s.sid(), "b")),
        "{rules}"
    );
    assert!(
        net::router_exists(s.run_dir(), &s.sid()),
        "b still needs the router"
    );
    s.delete(Spec::Network(b.clone()));
    s.delete(Spec::Network(b.clone()));
    assert!(!net::router_exists(s.run_dir(), &s.sid()));
    assert_eq!(host_tg_links(&s.sid()), host_links);
}

#[test]
fn two_sessions_with_the_same_cidrs_are_isolated() {
    require_root!();
    let x = Session::new("x");
    let y = Session::sharing("y", Some(x.run_dir()));
    let lab = network("lab", "10.72.0.0/24");
    for s in [&x, &y] {
        s.create(Spec::Network(lab.clone()));
    }
    let x1 = node("n1", &[(&lab, 2)]);
    let x2 = node("n2", &[(&lab, 3)]);
    x.create_all(vec![Spec::Node(x1.clone()), Spec::Node(x2.clone())]);
    let y1 = node("n1", &[(&lab, 2)]);
    let y4 = node("n4", &[(&lab, 4)]);
    y.create_all(vec![Spec::Node(y1.clone()), Spec::Node(y4.clone())]);

    assert!(x.ping(&x1, host_at(&lab.cidr, 3)));
    assert!(y.ping(&y1, host_at(&lab.cidr, 4)));
    assert!(y.ping(&y4, lab.gateway));
    // .4 exists only in session y; .3 only in x.
    assert!(x.no_ping(&x1, host_at(&lab.cidr, 4)), "x must not reach y");
    assert!(y.no_ping(&y1, host_at(&lab.cidr, 3)), "y must not reach x");

    // Sweeping one session leaves the other untouched.
    assert!(!x.sweep().is_empty());
    assert!(!net::router_exists(x.run_dir(), &x.sid()));
    assert!(y.ping(&y1, host_at(&lab.cidr, 4)));
}

#[test]
fn read_sees_what_was_removed_by_hand() {
    require_root!();
    let s = Session::new("drift");
    let a = network("a", "10.73.1.0/24");
    let b = network("b", "10.73.2.0/24");
    s.create(Spec::Network(a.clone()));
    s.create(Spec::Network(b.clone()));
    let n = node("n", &[(&a, 2), (&b, 2)]);
    s.create(Spec::Node(n.clone()));
    assert_eq!(
        s.read(Spec::Network(a.clone())),
        ReadResponse::Present {
            spec: Spec::Network(a.clone())
        }
    );
    assert_eq!(
        s.read(Spec::Node(n.clone())),
        ReadResponse::Present {
            spec: Spec::Node(n.clone())
        }
    );

    let router = net::router_netns_path(s.run_dir(), &s.sid());
    let in_router = |args: &[&str]| {
        let st = Command::new("nsenter")
            .arg(format!("--net={}", router.display()))
            .arg("--")
            .arg("ip")
            .args(args)
            .status()
            .expect("nsenter");
        assert!(st.success(), "ip {args:?}");
    };
    // The node's eth1 veth, deleted by hand: the node is there, without it.
    let id = s.private("node.n")["id"].as_str().unwrap().to_string();
    in_router(&["link", "del", &names::veth_name(&s.sid(), "b", &id, "eth1")]);
    let mut seen = n.clone();
    seen.interfaces.truncate(1);
    assert_eq!(
        s.read(Spec::Node(n.clone())),
        ReadResponse::Present {
            spec: Spec::Node(seen)
        }
    );
    // Network a's bridge, deleted by hand: gone.
    in_router(&["link", "del", &names::bridge_name(&s.sid(), "a")]);
    assert_eq!(s.read(Spec::Network(a.clone())), ReadResponse::Gone);
    assert!(matches!(
        s.read(Spec::Network(b.clone())),
        ReadResponse::Present { .. }
    ));
    // Its node is left unplugged from it: drift on the node too.
    let ReadResponse::Present {
        spec: Spec::Node(unplugged),
    } = s.read(Spec::Node(n.clone()))
    else {
        panic!("node gone");
    };
    assert!(unplugged.interfaces.is_empty(), "{unplugged:?}");
    // Create again makes the network whole...
    s.create(Spec::Network(a.clone()));
    assert!(matches!(
        s.read(Spec::Network(a.clone())),
        ReadResponse::Present { .. }
    ));
    // ... but a bridge with no ports does not plug the node back in: the
    // node still shows the drift, and an in-place update repairs it.
    assert_eq!(
        s.read(Spec::Node(n.clone())),
        ReadResponse::Present {
            spec: Spec::Node(unplugged.clone())
        }
    );
    assert!(s
        .platform
        .updatable(tg::addrs::ResourceKind::Node)
        .contains(&"interfaces"));
    let private =
        s.rt.block_on(s.platform.update(tg::platform::UpdateRequest {
            session: s.session.clone(),
            address: "node.n".into(),
            before: Spec::Node(n.clone()),
            after: Spec::Node(n.clone()),
            private: s.private("node.n"),
            deps: BTreeMap::new(),
            cancel: Default::default(),
            trace: Default::default(),
        }))
        .expect("repair")
        .private;
    s.remember("node.n", &private);
    assert_eq!(
        s.read(Spec::Node(n.clone())),
        ReadResponse::Present {
            spec: Spec::Node(n.clone())
        }
    );
    assert!(s.ping(&n, a.gateway));
    assert!(s.ping(&n, b.gateway));
}

#[test]
fn sweep_after_a_crash_leaves_nothing() {
    require_root!();
    let host = has_iptables().then(HostNat::take);
    let s = Session::new("crash");
    let host_links = host_tg_links(&s.sid());
    let sid = s.sid();
    let run_dir: PathBuf = s.run_dir().to_path_buf();
    let needle = run_dir.to_string_lossy().into_owned();
    let mounts_before = mounts_with(&needle);
    let netns_before = netns_entries(&sid);

    let mut a = network("a", "10.74.1.0/24");
    // With nat the crash also leaves an uplink, host iptables rules and
    // the session's use of host forwarding.
    a.nat = host.is_some();
    s.create(Spec::Network(a.clone()));
    s.create_all(
        (0..4)
            .map(|i| {
                let mut n = node(&format!("n{i}"), &[(&a, 2 + i)]);
                // A limit, so the crash also leaves cgroups behind.
                n.memory_mib = (i == 0).then_some(64);
                Spec::Node(n)
            })
            .collect(),
    );
    let cgroups = || -> Vec<String> {
        [
            "/sys/fs/cgroup",
            "/sys/fs/cgroup/memory",
            "/sys/fs/cgroup/cpu",
        ]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(&format!("tg-{sid}-")))
        .collect()
    };
    assert!(!cgroups().is_empty(), "node n0 has a memory cgroup");
    s.rt.block_on(
        s.platform.sync_session(SessionSync {
            session: Some(s.session.clone()),
            nodes: (0..4)
                .map(|i| {
                    (
                        format!("n{i}"),
                        BTreeMap::from([("a".to_string(), host_at(&a.cidr, 2 + i))]),
                    )
                })
                .collect(),
        }),
    )
    .expect("sync");
    let inits: Vec<i32> = (0..4)
        .map(|i| {
            let p = s.private(&format!("node.n{i}"));
            let dir = PathBuf::from(p["dir"].as_str().expect("dir"));
            let rec: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("node.json")).unwrap())
                    .unwrap();
            rec["pid"].as_i64().unwrap() as i32
        })
        .collect();
    assert!(inits
        .iter()
        .all(|p| Path::new(&format!("/proc/{p}/ns")).exists()));

    // The process dies: all private data is lost. A new platform sweeps.
    let fresh = NetnsPlatform::new(s.platform.options.clone());
    let removed = s.rt.block_on(fresh.sweep(&s.session)).expect("sweep");
    assert!(
        removed.iter().any(|r| r.contains("node `n3`")),
        "{removed:?}"
    );
    assert!(removed.iter().any(|r| r.contains("router")), "{removed:?}");
    for p in &inits {
        assert!(
            !Path::new(&format!("/proc/{p}/ns")).exists(),
            "init {p} of a node is still running"
        );
    }

    assert_eq!(mounts_with(&needle), mounts_before);
    assert_eq!(netns_entries(&sid), netns_before);
    assert_eq!(host_tg_links(&s.sid()), host_links);
    assert!(host_rules(&sid).is_empty(), "{:?}", host_rules(&sid));
    assert_eq!(cgroups(), Vec::<String>::new());
    assert!(!names::session_dir(&run_dir, &sid).exists());
    assert!(s.sweep().is_empty(), "a second sweep finds nothing");
    if let Some(h) = host {
        h.assert_as_found();
    }
}

#[test]
fn exec_on_a_missing_node_says_so() {
    require_root!();
    let s = Session::new("missing");
    let n = node("ghost", &[]);
    let err =
        s.rt.block_on(tg::platform::exec_collected(
            &s.platform,
            CollectRequest {
                session: s.session.clone(),
                address: "node.ghost".into(),
                spec: n,
                private: serde_json::Value::Null,
                argv: vec!["true".into()],
                timeout: None,
            },
        ))
        .unwrap_err();
    assert!(err.message.contains("node `ghost` does not exist"), "{err}");
}

#[test]
fn proxy_relays_to_a_node_port() {
    require_root!();
    let s = Session::new("proxy-test");
    let a = network("a", "10.75.1.0/24");
    s.create(Spec::Network(a.clone()));
    let n = node("web", &[(&a, 2)]);
    s.create(Spec::Node(n.clone()));
    s.rt.block_on(s.platform.sync_session(SessionSync {
        session: Some(s.session.clone()),
        nodes: BTreeMap::from([(
            "web".to_string(),
            BTreeMap::from([("a".to_string(), host_at(&a.cidr, 2))]),
        )]),
    }))
    .expect("sync");
    // A one-shot echo server inside the node, in the background.
    let (code, out) = s.exec(
        &n,
        &[
            "sh",
            "-c",
            "timeout 20 socat -T5 TCP-LISTEN:7007,reuseaddr SYSTEM:'cat' </dev/null >/dev/null 2>&1 &",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let mut last = String::new();
    for _ in 0..50 {
        let out = Command::new(crate::support::tg_bin())
            .args(["--session", "proxy-test", "proxy", "web", "7007"])
            .current_dir(&s.session.testbed_dir)
            .env("TG_NETNS_RUN_DIR", s.run_dir())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                if let Some(mut stdin) = child.stdin.take() {
                    // tg exits early (a broken pipe) while nothing listens.
                    let _ = stdin.write_all(b"hello through the router\n");
                }
                child.wait_with_output()
            })
            .expect("run tg proxy");
        if out.status.success() && out.stdout == b"hello through the router\n" {
            return;
        }
        last = format!(
            "{:?} stdout={:?} stderr={}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("proxy never relayed: {last}");
}

/// `iptables` rules of the host tagged for session `sid`.
fn host_rules(sid: &str) -> Vec<String> {
    let mut found = Vec::new();
    for table in ["nat", "filter"] {
        if let Ok(o) = Command::new("iptables").args(["-t", table, "-S"]).output() {
            found.extend(
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter(|l| l.contains(&format!("tg-{sid}")))
                    .map(str::to_string),
            );
        }
    }
    found
}

#[test]
fn nat_networks_get_out_and_others_do_not() {
    require_root!();
    if !has_iptables() {
        return;
    }
    let host = HostNat::take();
    let s = Session::new("nat");
    let host_links = host_tg_links(&s.sid());
    let mut out = network("out", "10.76.1.0/24");
    out.nat = true;
    let inner = network("in", "10.76.2.0/24");
    let private = s.create(Spec::Network(out.clone()));
    s.create(Spec::Network(inner.clone()));
    let via: Ipv4Addr = serde_json::from_value(private["nat_via"].clone()).expect("nat_via");
    let o1 = node("o1", &[(&out, 2)]);
    let i1 = node("i1", &[(&inner, 2)]);
    s.create_all(vec![Spec::Node(o1.clone()), Spec::Node(i1.clone())]);
    assert!(!host_rules(&s.sid()).is_empty(), "host masquerade rules");
    assert!(
        host_tg_links(&s.sid()).contains(&names::uplink_name(&s.sid())),
        "the uplink's host end"
    );
    assert_eq!(
        s.read(Spec::Network(out.clone())),
        ReadResponse::Present {
            spec: Spec::Network(out.clone())
        }
    );

    // A listener on the host side of the uplink stands for the outside.
    let listener = std::net::TcpListener::bind((via, 0)).expect("listen on the uplink");
    let port = listener.local_addr().unwrap().port();
    let connect = format!("echo hi > /dev/tcp/{via}/{port}");
    let (code, msg) = s.exec(&i1, &["timeout", "2", "bash", "-c", &connect]);
    assert_ne!(code, 0, "a network without nat must not get out: {msg}");
    let (code, msg) = s.exec(&o1, &["timeout", "5", "bash", "-c", &connect]);
    assert_eq!(code, 0, "a nat network gets out: {msg}");
    listener.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let peer = loop {
        match listener.accept() {
            Ok((_, peer)) => break peer,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => panic!("no connection from the nat node: {e}"),
        }
    };
    // Masqueraded behind the router's end of the transfer /30.
    assert_eq!(
        peer.ip(),
        std::net::IpAddr::V4(Ipv4Addr::from(u32::from(via) + 1))
    );
    // Forwarding is on in the router now, yet networks stay apart.
    assert!(s.no_ping(&o1, host_at(&inner.cidr, 2)));
    assert!(s.no_ping(&o1, inner.gateway));
    assert!(s.no_ping(&i1, host_at(&out.cidr, 2)));

    // `nat` changes in place: network `in` gets out too now.
    assert!(s
        .platform
        .updatable(tg::addrs::ResourceKind::Network)
        .contains(&"nat"));
    let mut inner_nat = inner.clone();
    inner_nat.nat = true;
    s.rt.block_on(s.platform.update(tg::platform::UpdateRequest {
        session: s.session.clone(),
        address: "network.in".into(),
        before: Spec::Network(inner.clone()),
        after: Spec::Network(inner_nat.clone()),
        private: serde_json::Value::Null,
        deps: BTreeMap::new(),
        cancel: Default::default(),
        trace: Default::default(),
    }))
    .expect("turn nat on");
    let (code, msg) = s.exec(&i1, &["timeout", "5", "bash", "-c", &connect]);
    assert_eq!(code, 0, "network `in` gets out after the update: {msg}");
    assert!(s.no_ping(&i1, host_at(&out.cidr, 2)), "still isolated");

    for n in [&o1, &i1] {
        s.delete(Spec::Node(n.clone()));
    }
    s.delete(Spec::Network(inner_nat.clone()));
    assert!(!host_rules(&s.sid()).is_empty(), "`out` still needs nat");
    s.delete(Spec::Network(out.clone()));
    assert!(
        host_rules(&s.sid()).is_empty(),
        "{:?}",
        host_rules(&s.sid())
    );
    assert!(!net::router_exists(s.run_dir(), &s.sid()));
    assert_eq!(host_tg_links(&s.sid()), host_links);
    host.assert_as_found();
}

#[test]
fn node_limits_change_in_place() {
    require_root!();
    let mem_root = Path::new("/sys/fs/cgroup/memory");
    if !mem_root.join("memory.limit_in_bytes").exists() {
        eprintln!("skipped: no cgroup v1 memory controller here");
        return;
    }
    let s = Session::new("limits");
    let a = network("a", "10.77.1.0/24");
    s.create(Spec::Network(a.clone()));
    let mut before = node("lim", &[(&a, 2)]);
    before.memory_mib = Some(64);
    let private = s.create(Spec::Node(before.clone()));
    let id = private["id"].as_str().expect("a node identity").to_string();
    let limit = mem_root
        .join(tg::platform::netns::cgroup::cgroup_name(&s.sid(), &id))
        .join("memory.limit_in_bytes");
    let read_limit = || std::fs::read_to_string(&limit).unwrap_or_default();
    assert_eq!(read_limit().trim(), (64u64 << 20).to_string());

    let mut after = before.clone();
    after.memory_mib = Some(128);
    let updatable = s.platform.updatable(tg::addrs::ResourceKind::Node);
    assert!(updatable.contains(&"memory_mib") && updatable.contains(&"cpus"));
    s.rt.block_on(s.platform.update(tg::platform::UpdateRequest {
        session: s.session.clone(),
        address: "node.lim".into(),
        before: Spec::Node(before.clone()),
        after: Spec::Node(after.clone()),
        private: private.clone(),
        deps: BTreeMap::new(),
        cancel: Default::default(),
        trace: Default::default(),
    }))
    .expect("update");
    assert_eq!(read_limit().trim(), (128u64 << 20).to_string());
    // The node kept its network through the update.
    assert!(s.ping(&after, a.gateway));

    // The hostname and the addresses change in place too: same init.
    let update = |before: &NodeSpec, after: &NodeSpec, private: &serde_json::Value| {
        s.rt.block_on(s.platform.update(tg::platform::UpdateRequest {
            session: s.session.clone(),
            address: "node.lim".into(),
            before: Spec::Node(before.clone()),
            after: Spec::Node(after.clone()),
            private: private.clone(),
            deps: BTreeMap::new(),
            cancel: Default::default(),
            trace: Default::default(),
        }))
    };
    let (_, pid_before) = s.exec(&after, &["sh", "-c", "echo $PPID; readlink /proc/1/ns/pid"]);
    let mut moved = after.clone();
    moved.hostname = "lim2".into();
    moved.interfaces[0].address = host_at(&a.cidr, 3);
    let private = update(&after, &moved, &private).expect("in place").private;
    s.remember("node.lim2", &private);
    assert_eq!(private["id"].as_str(), Some(id.as_str()), "same identity");
    let (_, name) = s.exec(&moved, &["sh", "-c", "hostname; cat /etc/hostname"]);
    assert_eq!(name, "lim2\nlim2\n");
    let (_, pid_after) = s.exec(&moved, &["sh", "-c", "echo $PPID; readlink /proc/1/ns/pid"]);
    assert_eq!(
        pid_before.lines().nth(1),
        pid_after.lines().nth(1),
        "the node was not recreated"
    );
    let (_, addrs) = s.exec(&moved, &["ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(
        addrs.contains(&format!("{}/", host_at(&a.cidr, 3))),
        "{addrs}"
    );
    assert!(s.ping(&moved, a.gateway), "linked again after the move");
    assert!(
        s.read(Spec::Node(moved.clone()))
            == ReadResponse::Present {
                spec: Spec::Node(moved.clone())
            }
    );

    // The image cannot change in place.
    let mut other = moved.clone();
    other.image = "dir:/".into();
    let err = update(&moved, &other, &private).unwrap_err();
    assert!(err.message.contains("must be replaced"), "{err}");
}

/// Build a tiny `.deb` (`NAME` version `VERSION`, one file) in `dir`.
pub(crate) fn build_deb(dir: &Path, name: &str, version: &str) -> PathBuf {
    let root = dir.join(format!("{name}-{version}"));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join("usr/share/doc").join(name)).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: tg tests <tg@example.invalid>\nDescription: tg test package\n"
        ),
    )
    .unwrap();
    std::fs::write(root.join("usr/share/doc").join(name).join("README"), "tg\n").unwrap();
    let deb = dir.join(format!("{name}_{version}_all.deb"));
    let st = Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group"])
        .arg(&root)
        .arg(&deb)
        .output()
        .expect("dpkg-deb");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    deb
}

#[test]
fn packages_install_read_and_remove() {
    require_root!();
    let s = Session::new("pkg");
    let n = node("pk", &[]);
    s.create(Spec::Node(n.clone()));
    let deb = build_deb(&s.session.testbed_dir, "tg-test-pkg", "1.2-1");
    let mut pkg = tg::platform::PackageSpec {
        wait_for: Vec::new(),
        name: "tg-test-pkg".into(),
        version: Some("1.2-1".into()),
        source: tg::platform::PackageSource::Deb { path: deb },
        node: "pk".into(),
    };
    assert_eq!(s.read(Spec::Package(pkg.clone())), ReadResponse::Gone);
    s.create(Spec::Package(pkg.clone()));
    assert_eq!(
        s.read(Spec::Package(pkg.clone())),
        ReadResponse::Present {
            spec: Spec::Package(pkg.clone())
        }
    );
    // The node has it; the host does not.
    let (code, out) = s.exec(&n, &["dpkg-query", "-W", "tg-test-pkg"]);
    assert_eq!(code, 0, "{out}");
    assert!(!Path::new("/usr/share/doc/tg-test-pkg").exists());
    // Recorded with another version: read shows what is installed.
    let mut recorded = pkg.clone();
    recorded.version = Some("1.0-1".into());
    assert_eq!(
        s.read(Spec::Package(recorded)),
        ReadResponse::Present {
            spec: Spec::Package(pkg.clone())
        }
    );
    s.delete(Spec::Package(pkg.clone()));
    s.delete(Spec::Package(pkg.clone()));
    assert_eq!(s.read(Spec::Package(pkg.clone())), ReadResponse::Gone);
    // On a node that is gone, a package is gone too, and deleting it works.
    s.delete(Spec::Node(n));
    pkg.version = None;
    assert_eq!(s.read(Spec::Package(pkg.clone())), ReadResponse::Gone);
    s.delete(Spec::Package(pkg));
}

/// What Ansible does: ssh to a node with `tg proxy` as the ProxyCommand.
#[test]
fn ssh_reaches_a_node_through_tg_proxy() {
    require_root!();
    if !Path::new("/usr/sbin/sshd").exists() || Command::new("ssh").arg("-V").output().is_err() {
        eprintln!("skipped: needs openssh-server and openssh-client");
        return;
    }
    let s = Session::new("ssh-test");
    let a = network("a", "10.78.1.0/24");
    s.create(Spec::Network(a.clone()));
    let n = node("sshnode", &[(&a, 2)]);
    s.create(Spec::Node(n.clone()));
    s.rt.block_on(s.platform.sync_session(SessionSync {
        session: Some(s.session.clone()),
        nodes: BTreeMap::from([(
            "sshnode".to_string(),
            BTreeMap::from([("a".to_string(), host_at(&a.cidr, 2))]),
        )]),
    }))
    .expect("sync");
    let key = s.session.testbed_dir.join("id_test");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    // The node's root is a copy-on-write of the host's: these writes and
    // the daemon stay inside the node.
    let setup = format!(
        "ssh-keygen -A >/dev/null && mkdir -p /root/.ssh /run/sshd && printf '%s\\n' '{}' > /root/.ssh/authorized_keys && \
         /usr/sbin/sshd -p 2222 -o PidFile=/run/sshd-test.pid -o UsePAM=no -o StrictModes=no \
         -o PermitRootLogin=prohibit-password </dev/null >/dev/null 2>&1",
        public.trim()
    );
    let (code, out) = s.exec(&n, &["sh", "-c", &setup]);
    assert_eq!(code, 0, "{out}");
    let proxy = format!(
        "{} --session ssh-test proxy %h %p",
        crate::support::tg_bin().display()
    );
    let mut last = String::new();
    for _ in 0..30 {
        let out = Command::new("ssh")
            .arg("-i")
            .arg(&key)
            .args([
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-o",
                &format!("ProxyCommand={proxy}"),
                "-p",
                "2222",
                "root@sshnode",
                "hostname",
            ])
            .current_dir(&s.session.testbed_dir)
            .env("TG_NETNS_RUN_DIR", s.run_dir())
            .output()
            .expect("ssh");
        if out.status.success() {
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "sshnode");
            return;
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("ssh through tg proxy failed: {last}");
}

fn has_iptables() -> bool {
    crate::support::have_tools(&["iptables"])
}

/// Tests that use `nat` change the host (IPv4 forwarding, iptables): they
/// run one at a time, so each can check the host is as it found it.
static HOST_NAT: std::sync::Mutex<()> = std::sync::Mutex::new(());

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// The host's NAT-related settings as a test found them; put back on drop
/// if the test (or a failure in it) left them changed. Declare it before
/// the sessions, so that they are swept first.
struct HostNat {
    _serial: std::sync::MutexGuard<'static, ()>,
    ip_forward: String,
    iptables: String,
}

/// `iptables-save` without comments and counters, and without tables that
/// hold nothing (built-in chains accepting, no rules): the first use of
/// iptables on a fresh host loads such tables, which is no change of rules.
fn iptables_save() -> String {
    let out = Command::new("iptables-save")
        .output()
        .expect("iptables-save");
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match l.find(" [") {
            Some(i) if l.starts_with(':') => l[..i].to_string(),
            _ => l.to_string(),
        })
        .collect();
    let mut kept = Vec::new();
    for table in lines.split_inclusive(|l| l == "COMMIT") {
        let empty = table.iter().all(|l| {
            l.starts_with('*') || l == "COMMIT" || (l.starts_with(':') && l.ends_with(" ACCEPT"))
        });
        if !empty {
            kept.extend_from_slice(table);
        }
    }
    kept.join("\n")
}

fn ip_forward() -> String {
    std::fs::read_to_string(IP_FORWARD)
        .expect("read ip_forward")
        .trim()
        .to_string()
}

impl HostNat {
    fn take() -> HostNat {
        let serial = HOST_NAT.lock().unwrap_or_else(|p| p.into_inner());
        HostNat {
            _serial: serial,
            ip_forward: ip_forward(),
            iptables: iptables_save(),
        }
    }

    #[track_caller]
    fn assert_as_found(&self) {
        assert_eq!(ip_forward(), self.ip_forward, "net.ipv4.ip_forward");
        assert_eq!(iptables_save(), self.iptables, "the host's iptables rules");
        assert!(
            !Path::new("/run/tg/forwarding.json").exists(),
            "no session uses nat: no record is left"
        );
    }
}

impl Drop for HostNat {
    fn drop(&mut self) {
        if iptables_save() != self.iptables {
            // Whatever tg left: its chain and the rules that mention it.
            let _ = Command::new("iptables")
                .args([
                    "-w",
                    "-D",
                    "FORWARD",
                    "-m",
                    "comment",
                    "--comment",
                    "tg-host",
                ])
                .args(["-j", "TG-FORWARD"])
                .status();
            let _ = Command::new("iptables")
                .args(["-w", "-F", "TG-FORWARD"])
                .status();
            let _ = Command::new("iptables")
                .args(["-w", "-X", "TG-FORWARD"])
                .status();
        }
        let _ = std::fs::remove_file("/run/tg/forwarding.json");
        if ip_forward() != self.ip_forward {
            let _ = std::fs::write(IP_FORWARD, &self.ip_forward);
        }
    }
}

/// The rules of tg's host chain.
fn host_chain() -> Vec<String> {
    let out = Command::new("iptables")
        .args(["-w", "-S", "TG-FORWARD"])
        .output()
        .expect("iptables");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("-A "))
        .map(str::to_string)
        .collect()
}

/// Whatever IPv4 forwarding was, nat turns it on and destroy (or the sweep
/// after a crash) puts it back, with the host's iptables rules as found;
/// when it was off, the host forwards nothing but tg's NAT traffic.
#[test]
fn nat_puts_host_forwarding_and_rules_back() {
    require_root!();
    if !has_iptables() {
        return;
    }
    let found = HostNat::take();
    for before in ["0", "1"] {
        std::fs::write(IP_FORWARD, before).expect("set ip_forward");
        let iptables = iptables_save();
        for crash in [false, true] {
            let s = Session::new("nat-restore");
            let mut out = network("out", "10.79.1.0/24");
            out.nat = true;
            let private = s.create(Spec::Network(out.clone()));
            let via: Ipv4Addr =
                serde_json::from_value(private["nat_via"].clone()).expect("nat_via");
            assert_eq!(ip_forward(), "1");
            let chain = host_chain();
            assert_eq!(
                chain.last().is_some_and(|r| r.ends_with("-j DROP")),
                before == "0",
                "tg's chain ends in DROP only when forwarding was off: {chain:?}"
            );
            let transfer = format!("{}/30", Ipv4Addr::from(u32::from(via) - 1));
            assert!(
                chain
                    .iter()
                    .filter(|r| r.contains("ACCEPT"))
                    .all(|r| r.contains(&transfer)),
                "tg's rules only pass the session's transfer network {transfer}: {chain:?}"
            );
            let n = node("n", &[(&out, 2)]);
            s.create(Spec::Node(n.clone()));
            let listener = std::net::TcpListener::bind((via, 0)).expect("listen");
            let port = listener.local_addr().unwrap().port();
            let connect = format!("echo hi > /dev/tcp/{via}/{port}");
            let (code, msg) = s.exec(&n, &["timeout", "5", "bash", "-c", &connect]);
            assert_eq!(code, 0, "the nat network gets out: {msg}");
            if crash {
                let fresh = NetnsPlatform::new(s.platform.options.clone());
                s.rt.block_on(fresh.sweep(&s.session)).expect("sweep");
            } else {
                s.delete(Spec::Node(n));
                s.delete(Spec::Network(out));
            }
            assert_eq!(ip_forward(), before, "crash: {crash}");
            assert_eq!(iptables_save(), iptables, "crash: {crash}");
        }
    }
    std::fs::write(IP_FORWARD, &found.ip_forward).expect("put ip_forward back");
    found.assert_as_found();
}

/// A lineage whose session starts looking for a transfer network at `slot`.
fn lineage_with_slot(slot: u32) -> String {
    loop {
        let l = uuid::Uuid::new_v4().to_string();
        if net::nat::transfer_slot(&names::sid(&l)) == slot {
            return l;
        }
    }
}

/// Two platforms (as two tg processes: separate run folders, one host)
/// setting up NAT for two sessions at once never pick the same transfer
/// network, even when both would start from the same one.
#[test]
fn concurrent_nat_setups_pick_different_transfer_networks() {
    require_root!();
    if !has_iptables() {
        return;
    }
    let host = HostNat::take();
    for round in 0..3 {
        let slot = 1000 + round;
        let a = Session::with_lineage("race-a", None, lineage_with_slot(slot));
        let b = Session::with_lineage("race-b", None, lineage_with_slot(slot));
        assert_ne!(a.run_dir(), b.run_dir());
        let mut lab = network("lab", "10.80.1.0/24");
        lab.nat = true;
        let barrier = std::sync::Barrier::new(2);
        let go = |s: &Session| {
            barrier.wait();
            let p = s.create(Spec::Network(lab.clone()));
            serde_json::from_value::<Ipv4Addr>(p["nat_via"].clone()).expect("nat_via")
        };
        let vias: Vec<Ipv4Addr> = std::thread::scope(|scope| {
            let ta = scope.spawn(|| go(&a));
            let tb = scope.spawn(|| go(&b));
            vec![ta.join().unwrap(), tb.join().unwrap()]
        });
        assert_ne!(
            vias[0], vias[1],
            "round {round}: one transfer network for two sessions"
        );
        for s in [&a, &b] {
            s.delete(Spec::Network(lab.clone()));
        }
    }
    host.assert_as_found();
}

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
            "netns::run_files_have_explicit_modes_under_umask_000",
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
