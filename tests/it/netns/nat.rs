//! `nat = true` for real: egress through the uplink, and the host's IPv4
//! forwarding and iptables rules put back as found (one test at a time).

use super::*;

/// `iptables` rules of the host tagged for session `sid`.
pub(super) fn host_rules(sid: &str) -> Vec<String> {
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

pub(super) fn has_iptables() -> bool {
    crate::support::have_tools(&["iptables"])
}

/// Tests that use `nat` change the host (IPv4 forwarding, iptables): they
/// run one at a time, so each can check the host is as it found it.
static HOST_NAT: std::sync::Mutex<()> = std::sync::Mutex::new(());

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// The host's NAT-related settings as a test found them; put back on drop
/// if the test (or a failure in it) left them changed. Declare it before
/// the sessions, so that they are swept first.
pub(super) struct HostNat {
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
    pub(super) fn take() -> HostNat {
        let serial = HOST_NAT.lock().unwrap_or_else(|p| p.into_inner());
        HostNat {
            _serial: serial,
            ip_forward: ip_forward(),
            iptables: iptables_save(),
        }
    }

    #[track_caller]
    pub(super) fn assert_as_found(&self) {
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
