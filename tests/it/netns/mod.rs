//! The netns platform for real, through the `Platform` trait: networks,
//! nodes, isolation between networks and between sessions, drift, sweep.
//!
//! Needs root (skips with a message otherwise) and `ping` on the host (the
//! `host` image sees the host's binaries). Every test uses its own random
//! lineage and a private run folder; a guard sweeps the session on drop,
//! so a failing test leaves nothing behind.
//!
//! The `nat` tests (egress, host forwarding and rules put back) are in
//! `nat.rs`; nodes recorded by another machine in `elsewhere.rs`; what the platform makes on the host besides nodes (bridge
//! chains, run file modes, host route warnings) in `host.rs`.

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

// After `require_root!`, which they use.
mod elsewhere;
mod host;
mod nat;

use nat::{has_iptables, host_rules, HostNat};

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
        hosts: Vec::new(),
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
    let _dpkg = crate::support::host_dpkg_read();
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
