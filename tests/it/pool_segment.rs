//! Cross-host segments on the `ssh` pool: a network whose nodes are pool
//! hosts is a VXLAN segment among them. Four real sshd hosts on one LAN
//! (`pool_sshd::Lan`); two sessions of one testbed, each on two of them,
//! on networks with the same CIDR.

use std::process::Command;

use crate::pool_sshd::{client_key, known_hosts, Lan, Sshd};
use crate::support::{have_tools, Run, Testbed};

fn ready() -> bool {
    crate::support::have_root()
        && have_tools(&["ssh-keygen", "/usr/sbin/sshd", "ip", "bridge", "ping"])
}

struct Hosts {
    _keys: tempfile::TempDir,
    // Dropped before the LAN they are on.
    hosts: Vec<Sshd>,
    _lan: Lan,
    tb: Testbed,
}

fn hosts(n: usize) -> Hosts {
    let lan = Lan::new();
    let keys = tempfile::tempdir().unwrap();
    let id = client_key(keys.path());
    let hosts: Vec<Sshd> = (0..n)
        .map(|_| Sshd::start_on(&id.with_extension("pub"), &lan))
        .collect();
    let kh = known_hosts(keys.path(), &hosts);
    let mut hcl = format!(
        "platform \"ssh\" \"lab\" {{\n  user          = \"root\"\n  identity_file = \"{}\"\n  known_hosts   = \"{}\"\n",
        id.display(),
        kh.display()
    );
    for (i, h) in hosts.iter().enumerate() {
        hcl.push_str(&format!(
            "  host \"h{}\" {{\n    address = \"{}\"\n  }}\n",
            i + 1,
            h.address
        ));
    }
    hcl.push_str(
        r#"}

variable "nodes" {
  default = 2
}

variable "first" {
  default = 10
}

network "seg" {
  cidr = "10.77.0.0/24"
}

node "n" {
  count    = var.nodes
  platform = "lab"
  image    = "host"
  network  = network.seg
  address  = cidrhost(network.seg.cidr, var.first + count.index)
}
"#,
    );
    let tb = Testbed::new(&[("main.tg.hcl", &hcl)]);
    Hosts {
        _keys: keys,
        hosts,
        _lan: lan,
        tb,
    }
}

fn tg(tb: &Testbed, session: &str, args: &[&str]) -> Run {
    let mut all = vec![args[0], "-session", session];
    all.extend_from_slice(&args[1..]);
    tb.tg(&all)
}

/// `ping` from node `from` of `session` to `to`: whether it was answered.
fn ping(tb: &Testbed, session: &str, from: &str, to: &str) -> bool {
    let r = tg(
        tb,
        session,
        &["exec", from, "--", "ping", "-c", "2", "-W", "2", to],
    );
    r.code() == 0
}

/// The segment interfaces in a host's namespace (`ip -d link`, one line each).
fn vxlans(h: &Sshd) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-n", &h.netns, "-o", "-d", "link", "show", "type", "vxlan"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The VNI of the segment interface on a node of `session`.
fn vni(tb: &Testbed, session: &str, node: &str) -> String {
    let r = tg(
        tb,
        session,
        &[
            "exec", node, "--", "ip", "-o", "-d", "link", "show", "type", "vxlan",
        ],
    );
    r.expect_code(0);
    let out = r.stdout();
    let at = out.find("vxlan id ").unwrap_or_else(|| panic!("{out}")) + 9;
    out[at..].split_whitespace().next().unwrap().to_string()
}

#[test]
fn pool_segment_joins_one_sessions_hosts_and_hides_the_others() {
    if !ready() {
        return;
    }
    let h = hosts(4);
    let tb = &h.tb;

    // One node, then a second: the network's hosts change in place.
    tg(tb, "a", &["apply", "-auto-approve", "-var", "nodes=1"]).expect_code(0);
    let plan = tg(tb, "a", &["plan", "-detailed-exitcode"]);
    plan.expect_code(2);
    let text = plan.stdout();
    assert!(
        text.contains("# network.seg will be updated in-place"),
        "{text}"
    );
    assert!(text.contains("# node.n[1] will be created"), "{text}");
    assert!(!text.contains("node.n[0]"), "n[0] stays as it is: {text}");
    tg(tb, "a", &["apply", "-auto-approve"]).expect_code(0);
    assert!(ping(tb, "a", "node.n[0]", "10.77.0.11"));
    assert!(ping(tb, "a", "node.n[1]", "10.77.0.10"));

    // Another session, same CIDR, on the other two hosts.
    tg(tb, "b", &["apply", "-auto-approve", "-var", "first=20"]).expect_code(0);
    assert!(ping(tb, "b", "node.n[0]", "10.77.0.21"));
    assert!(
        !ping(tb, "a", "node.n[0]", "10.77.0.20"),
        "session a reaches a node of session b"
    );
    assert!(
        !ping(tb, "b", "node.n[0]", "10.77.0.10"),
        "session b reaches a node of session a"
    );
    let (va, vb) = (vni(tb, "a", "node.n[0]"), vni(tb, "b", "node.n[0]"));
    assert_ne!(va, vb, "two segments share a VNI");
    assert_eq!(va, vni(tb, "a", "node.n[1]"));

    // Drift: the interface removed by hand is made again in place.
    tg(
        tb,
        "a",
        &[
            "exec",
            "node.n[1]",
            "--",
            "ip",
            "link",
            "del",
            &format!("tgvx{va}"),
        ],
    )
    .expect_code(0);
    let plan = tg(tb, "a", &["plan", "-detailed-exitcode"]);
    plan.expect_code(2);
    assert!(
        plan.stdout()
            .contains("# node.n[1] will be updated in-place"),
        "{}",
        plan.stdout()
    );
    tg(tb, "a", &["apply", "-auto-approve"]).expect_code(0);
    assert!(ping(tb, "a", "node.n[0]", "10.77.0.11"));

    // Destroy removes the interfaces and frees the hosts and the VNI.
    tg(tb, "a", &["destroy", "-auto-approve"]).expect_code(0);
    let left: usize = h.hosts.iter().map(|s| vxlans(s).len()).sum();
    assert_eq!(left, 2, "only session b's interfaces stay");
    assert!(ping(tb, "b", "node.n[1]", "10.77.0.20"));
    tg(tb, "b", &["destroy", "-auto-approve"]).expect_code(0);
    for s in &h.hosts {
        assert!(vxlans(s).is_empty(), "{:?}", vxlans(s));
    }
    let db = rusqlite::Connection::open(tb.path().join(".tg/state.db")).unwrap();
    let rows: i64 = db
        .query_row("SELECT COUNT(*) FROM leases", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0, "every host and VNI lease is released");
}

#[test]
fn pool_segment_refuses_nat_and_impairments_at_plan_time() {
    if !ready() {
        return;
    }
    let h = hosts(1);
    let hcl = std::fs::read_to_string(h.tb.path().join("main.tg.hcl")).unwrap();
    h.tb.write(
        "main.tg.hcl",
        &hcl.replace(
            "cidr = \"10.77.0.0/24\"",
            "cidr = \"10.77.0.0/24\"\n  nat  = true",
        ),
    );
    let r = tg(&h.tb, "a", &["plan", "-var", "nodes=1"]);
    r.expect_code(1);
    assert!(r.stderr().contains("no NAT"), "{}", r.stderr());
    h.tb.write(
        "main.tg.hcl",
        &hcl.replace(
            "cidr = \"10.77.0.0/24\"",
            "cidr = \"10.77.0.0/24\"\n  impair {\n    rate = \"10mbit\"\n  }",
        ),
    );
    let r = tg(&h.tb, "a", &["plan", "-var", "nodes=1"]);
    r.expect_code(1);
    assert!(r.stderr().contains("impairments"), "{}", r.stderr());
}

/// Lease rows (hosts and VNIs) in the testbed's store.
fn lease_rows(tb: &Testbed) -> Vec<String> {
    // Never create the file: an empty one would be damaged state to the
    // apply that is about to make it.
    let Ok(db) = rusqlite::Connection::open_with_flags(
        tb.path().join(".tg/state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return Vec::new();
    };
    let Ok(mut q) = db.prepare("SELECT host FROM leases WHERE lineage IS NOT NULL") else {
        return Vec::new();
    };
    q.query_map([], |r| r.get::<_, String>(0))
        .map(|rows| rows.flatten().collect())
        .unwrap_or_default()
}

#[test]
fn pool_segment_sigkilled_apply_is_swept_by_destroy() {
    if !ready() {
        return;
    }
    let h = hosts(2);
    // The second host hangs in its handshake: the apply is killed with the
    // hosts and the VNI leased and the first host's interface made.
    h.hosts[1].pause(true);
    let mut child = crate::pool::spawn_apply(&h.tb, "k");
    let start = std::time::Instant::now();
    loop {
        assert!(child.try_wait().unwrap().is_none(), "the apply ended");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "no leases in 60 s"
        );
        let rows = lease_rows(&h.tb);
        if rows.len() == 3 && !vxlans(&h.hosts[0]).is_empty() {
            assert!(rows.iter().any(|r| r.starts_with("vni:")), "{rows:?}");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    crate::pool::sigkill(&mut child);
    h.hosts[1].pause(false);
    let d = tg(&h.tb, "k", &["destroy", "-auto-approve"]);
    d.expect_code(0);
    for s in &h.hosts {
        assert!(
            vxlans(s).is_empty(),
            "{:?}\ndestroy said:\n{}{}",
            vxlans(s),
            d.stdout(),
            d.stderr()
        );
    }
    assert!(lease_rows(&h.tb).is_empty(), "{:?}", lease_rows(&h.tb));
}
