//! End to end on the real netns platform, through the `tg` binary, as root:
//! two networks, several nodes, a package, isolation, privacy of files, a
//! no-change second plan, SIGKILL mid-apply and
//! a destroy that leaves nothing of the session on the host (Ansible over
//! the inventory: `ansible`).
//!
//! Every run uses its own session name; a guard destroys it even when an
//! assertion fails. Outside CI, a machine without root skips these tests;
//! in CI (`CI=true`) a missing prerequisite fails them.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{tg_bin, Run, Testbed};

pub(crate) fn prerequisites(tools: &[&str]) -> bool {
    crate::support::have_root() && crate::support::have_tools(tools)
}

/// A session of a testbed, destroyed on drop.
pub(crate) struct Session<'a> {
    pub tb: &'a Testbed,
    pub name: String,
}

impl Session<'_> {
    pub fn tg(&self, args: &[&str]) -> Run {
        let mut all = vec!["--session", self.name.as_str()];
        all.extend_from_slice(args);
        self.tb.tg(&all)
    }

    /// The session tag the netns platform names host objects with.
    pub fn sid(&self) -> String {
        let r = self.tg(&["session", "show", "-json"]);
        r.expect_code(0);
        let v: serde_json::Value = serde_json::from_str(&r.stdout()).expect("session json");
        let lineage = v["lineage"].as_str().expect("lineage");
        tg::platform::netns::names::sid(lineage)
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if self.tg(&["destroy", "-auto-approve"]).code() == 0 {
            return;
        }
        // The destroy failed (a half-installed package that cannot be
        // purged, say): sweep what the session made, so a failed test
        // leaves nothing on the host for the next ones.
        let r = self.tg(&["session", "show", "-json"]);
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.stdout()) else {
            return;
        };
        let Some(lineage) = v["lineage"].as_str() else {
            return;
        };
        let platform = tg::platform::netns::NetnsPlatform::new(Default::default());
        let session = tg::platform::SessionRef {
            name: self.name.clone(),
            lineage: lineage.to_string(),
            testbed_dir: self.tb.path().to_path_buf(),
            ssh_client_key: None,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(rt) = rt {
            use tg::platform::Platform as _;
            match rt.block_on(platform.sweep(&session)) {
                Ok(removed) => eprintln!("destroy failed; swept {removed:?}"),
                Err(e) => eprintln!("destroy failed, and so did the sweep: {e}"),
            }
        }
    }
}

pub(crate) fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

/// What a session may leave on the host: mounts, runtime folder, cgroups
/// (interfaces live in the session's namespaces and go with them).
pub(crate) fn leftovers(sid: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    found.extend(
        mounts
            .lines()
            .filter(|l| l.contains(&format!("/{sid}/")) || l.contains(&format!("/{sid} ")))
            .map(|l| format!("mount: {l}")),
    );
    if Path::new("/run/tg").join(sid).exists() {
        found.push(format!("folder /run/tg/{sid}"));
    }
    // Node inits of the session (their root overlay names its folder),
    // recorded or not.
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for e in procs.flatten() {
            let pid = e.file_name().to_string_lossy().into_owned();
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            if comm.trim() != "tg-init" {
                continue;
            }
            let mounts = std::fs::read_to_string(e.path().join("mountinfo")).unwrap_or_default();
            if mounts
                .lines()
                .any(|l| l.contains(&format!("/{sid}/nodes/")))
            {
                found.push(format!("node init pid {pid}"));
            }
        }
    }
    for ctl in ["memory", "cpu", "pids", "unified"] {
        if let Ok(rd) = std::fs::read_dir(Path::new("/sys/fs/cgroup").join(ctl)) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.contains(sid) {
                    found.push(format!("cgroup {ctl}/{n}"));
                }
            }
        }
    }
    found
}

fn root_links() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip");
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with("tg"))
        .collect();
    names.sort();
    names
}

const TESTBED: &str = r#"
network "front" {
  cidr = "10.91.1.0/24"
}

network "back" {
  cidr = "10.91.2.0/24"
}

node "web" {
  count   = 2
  image   = "host"
  network = network.front
  labels  = { role = "web" }
}

node "db" {
  image   = "host"
  network = network.back
}

node "gw" {
  image    = "host"
  networks = [network.front, network.back]
}

package "hello" {
  on = [node.web]
}

output "web_addresses" {
  value = node.web[*].address
}
"#;

#[test]
fn a_two_network_testbed_works_end_to_end() {
    let _dpkg = crate::support::host_dpkg_read();
    if !prerequisites(&["ip", "apt-get", "ping"]) {
        return;
    }
    let tb = Testbed::new(&[("main.tg.hcl", TESTBED)]);
    let s = Session {
        tb: &tb,
        name: unique("e2e"),
    };
    s.tg(&["apply", "-auto-approve"]).expect_code(0);
    let sid = s.sid();

    // Host names.
    let r = s.tg(&["exec", "node.web[*]", "--", "hostname"]);
    r.expect_code(0);
    assert_eq!(
        crate::support::sorted_lines(&r.stdout()),
        ["[web-0] web-0", "[web-1] web-1"]
    );
    assert_eq!(
        s.tg(&["exec", "node.db", "--", "hostname"]).stdout(),
        "db\n"
    );

    // The package runs on its nodes, and nowhere else (not on the host either).
    let r = s.tg(&["exec", "role=web", "--", "hello"]);
    r.expect_code(0);
    assert!(
        r.stdout().contains("[web-1] Hello, world!"),
        "{}",
        r.stdout()
    );
    let r = s.tg(&["exec", "node.db", "--", "sh", "-c", "command -v hello"]);
    assert_ne!(r.code(), 0, "hello is installed on db: {}", r.stdout());
    assert!(
        !Path::new("/usr/bin/hello").exists(),
        "the package leaked onto the host"
    );

    // Within a network: yes. Across networks: no. A node on both: both.
    s.tg(&[
        "exec",
        "node.web[0]",
        "--",
        "ping",
        "-c1",
        "-W2",
        "10.91.1.3",
    ])
    .expect_code(0);
    let r = s.tg(&[
        "exec",
        "node.web[0]",
        "--",
        "ping",
        "-c1",
        "-W1",
        "10.91.2.2",
    ]);
    assert_ne!(r.code(), 0, "web reached db across networks");
    let r = s.tg(&[
        "exec",
        "node.web[0]",
        "--",
        "ping",
        "-c1",
        "-W1",
        "10.91.2.1",
    ]);
    assert_ne!(r.code(), 0, "web reached the other network's gateway");
    s.tg(&["exec", "node.gw", "--", "ping", "-c1", "-W2", "10.91.2.2"])
        .expect_code(0);

    // IPv4 networks carry no IPv6: no address but `lo`'s, in a node or on
    // the router's bridges and veths (nothing for a bridge to flood).
    let r = s.tg(&["exec", "node.gw", "--", "ip", "-6", "-o", "addr"]);
    r.expect_code(0);
    let text = r.stdout();
    let v6: Vec<&str> = text.lines().filter(|l| !l.contains(" lo ")).collect();
    assert!(v6.is_empty(), "IPv6 on a node's links: {v6:?}");
    let router = format!("--net=/run/tg/{sid}/netns/router");
    let out = Command::new("nsenter")
        .args([router.as_str(), "ip", "-6", "-o", "addr"])
        .output()
        .expect("nsenter");
    let text = String::from_utf8_lossy(&out.stdout);
    let v6: Vec<&str> = text.lines().filter(|l| !l.contains(" lo ")).collect();
    assert!(
        out.status.success() && v6.is_empty(),
        "IPv6 in the router: {v6:?}"
    );
    s.tg(&["exec", "node.gw", "--", "ping", "-c1", "-W2", "10.91.1.2"])
        .expect_code(0);

    // Files are private to each node.
    s.tg(&[
        "exec",
        "node.web[0]",
        "--",
        "sh",
        "-c",
        "echo secret > /etc/tg-e2e-private",
    ])
    .expect_code(0);
    let r = s.tg(&["exec", "node.web[1]", "--", "cat", "/etc/tg-e2e-private"]);
    assert_ne!(r.code(), 0, "web-1 sees web-0's file");
    assert!(
        !Path::new("/etc/tg-e2e-private").exists(),
        "the host sees the node's file"
    );

    // /etc/hosts lists the session's nodes.
    let r = s.tg(&["exec", "node.db", "--", "getent", "hosts", "web-1"]);
    r.expect_code(0);
    assert!(r.stdout().contains("10.91.1.3"), "{}", r.stdout());

    // A second plan is empty.
    s.tg(&["plan", "-detailed-exitcode"]).expect_code(0);
    assert!(
        !leftovers(&sid).is_empty(),
        "the leak check does not see the live session's objects"
    );

    // Destroy leaves nothing of the session on the host.
    let r = s.tg(&["destroy", "-auto-approve"]);
    r.expect_code(0);
    assert_eq!(leftovers(&sid), Vec::<String>::new());
    // The platform puts no link in the host namespace without `nat`; other
    // tests may run NAT sessions meanwhile, so look for this session's only.
    let uplink = tg::platform::netns::names::uplink_name(&sid);
    assert!(
        !root_links().contains(&uplink),
        "the session's uplink `{uplink}` is left in the host namespace"
    );
}

#[test]
fn a_sigkilled_apply_converges_on_the_next_one_without_leaks() {
    if !prerequisites(&["ip"]) {
        return;
    }
    let tb = Testbed::new(&[(
        "main.tg.hcl",
        r#"
network "lab" {
  cidr = "10.92.0.0/24"
}

node "n" {
  count   = 60
  image   = "host"
  network = network.lab
}
"#,
    )]);
    let s = Session {
        tb: &tb,
        name: unique("kill"),
    };
    // Make the session exist first so its tag is known.
    s.tg(&["session", "new", &s.name]).expect_code(0);
    let sid = s.sid();
    let mut child = Command::new(tg_bin())
        .args([
            "--session",
            &s.name,
            "apply",
            "-auto-approve",
            "-parallelism",
            "2",
        ])
        .current_dir(tb.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn tg apply");
    // Kill it once a few nodes are recorded, in the middle of the work.
    let start = Instant::now();
    loop {
        let listed = s.tg(&["state", "list"]).stdout().lines().count();
        if listed >= 5 || start.elapsed() > Duration::from_secs(60) {
            break;
        }
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
    let recorded = s.tg(&["state", "list"]).stdout().lines().count();
    assert!(recorded < 61, "the apply finished before it was killed");

    // The lock of the dead process is stale; the next apply converges.
    s.tg(&["apply", "-auto-approve"]).expect_code(0);
    assert_eq!(s.tg(&["state", "list"]).stdout().lines().count(), 61);
    s.tg(&["plan", "-detailed-exitcode"]).expect_code(0);
    let r = s.tg(&["exec", "node.n[59]", "--", "hostname"]);
    r.expect_code(0);
    assert_eq!(r.stdout().trim(), "n-59");
    s.tg(&["destroy", "-auto-approve"]).expect_code(0);
    assert_eq!(leftovers(&sid), Vec::<String>::new());
}
