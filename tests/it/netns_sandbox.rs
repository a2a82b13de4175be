//! The node sandbox as a hostile user tries it, through the `tg` binary as
//! root: every escape of issue 9 (host processes, their files and
//! namespaces, host settings, cgroup limits, the shared hosts file, a
//! process that makes its own namespaces and outlives destroy), host
//! secrets, and the exec contract (bytes, stdin, a pty, signals, exit
//! codes, timeout) and several packages on one node.
//!
//! Each test has its own session, destroyed by a guard; a test that could
//! change a host setting puts it back whatever happened.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::e2e_netns::{leftovers, prerequisites, unique, Session};
use crate::support::{tg_bin, Testbed};

const TWO_NODES: &str = r#"
network "lab" {
  cidr = "10.94.0.0/24"
}

node "n" {
  count   = 2
  image   = "host"
  network = network.lab
}
"#;

/// A host process with a marker in its environment, killed on drop.
struct HostProcess(std::process::Child);

impl HostProcess {
    fn start() -> HostProcess {
        HostProcess(
            Command::new("sleep")
                .arg("300")
                .env("TG_SANDBOX_TEST_SECRET", "hunter2")
                .spawn()
                .expect("sleep"),
        )
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
    fn alive(&mut self) -> bool {
        self.0.try_wait().ok().flatten().is_none()
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A host file's content, written back on drop if it changed.
struct HostSetting {
    path: &'static str,
    was: Vec<u8>,
}

impl HostSetting {
    fn keep(path: &'static str) -> HostSetting {
        HostSetting {
            path,
            was: std::fs::read(path).unwrap_or_default(),
        }
    }
    fn unchanged(&self) -> bool {
        std::fs::read(self.path).unwrap_or_default() == self.was
    }
}

impl Drop for HostSetting {
    fn drop(&mut self) {
        if !self.unchanged() {
            let _ = std::fs::write(self.path, &self.was);
        }
    }
}

fn sh<'a>(s: &'a Session, node: &'a str, script: &'a str) -> crate::support::Run {
    s.tg(&["exec", node, "--", "sh", "-c", script])
}

#[test]
fn a_node_cannot_reach_host_processes_files_or_namespaces() {
    if !prerequisites(&["ip", "nsenter", "unshare"]) {
        return;
    }
    let tb = Testbed::new(&[("main.tg.hcl", TWO_NODES)]);
    let s = Session {
        tb: &tb,
        name: unique("sbx"),
    };
    s.tg(&["apply", "-auto-approve"]).expect_code(0);
    let mut host = HostProcess::start();
    let hp = host.pid().to_string();

    // Only the node's own processes: its init is PID 1.
    let r = sh(
        &s,
        "node.n[0]",
        "ls /proc | grep -c '^[0-9]'; cat /proc/1/comm",
    );
    r.expect_code(0);
    let mut lines = r.stdout().lines().map(str::to_string).collect::<Vec<_>>();
    let count: usize = lines.remove(0).trim().parse().unwrap();
    assert!(count < 10, "the node sees {count} processes");
    assert_eq!(lines, ["tg-init"]);
    // The host process: not there to read, kill, enter or write through.
    for script in [
        format!("cat /proc/{hp}/environ"),
        format!("kill -9 {hp}"),
        format!("echo x > /proc/{hp}/root/tmp/tg-sandbox-escape"),
        format!("nsenter --net=/proc/{hp}/ns/net true"),
        "nsenter -t 1 -m -n true".to_string(),
        "unshare -m true".to_string(),
        "unshare -U -r true".to_string(),
    ] {
        let r = sh(&s, "node.n[0]", &script);
        assert_ne!(r.code(), 0, "`{script}` worked: {}", r.stdout());
        assert!(!r.stdout().contains("hunter2"));
    }
    assert!(host.alive(), "the node killed a host process");
    assert!(!Path::new("/tmp/tg-sandbox-escape").exists());

    // Host loopback services are out of reach.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let r = sh(
        &s,
        "node.n[0]",
        &format!("timeout 3 bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}'"),
    );
    assert_ne!(r.code(), 0, "the node reached the host's loopback");
    // Neither tg's run folder (namespace pins, other sessions) nor the
    // host's /run is there.
    let r = sh(&s, "node.n[0]", "ls -A /run /run/tg 2>&1");
    assert!(
        !r.stdout().contains(&s.sid()),
        "the node sees tg's run folder: {}",
        r.stdout()
    );

    // Capabilities: Docker's set and NET_ADMIN, no more.
    let r = sh(&s, "node.n[0]", "grep CapBnd /proc/self/status");
    let bnd = u64::from_str_radix(r.stdout().split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_eq!(bnd & (1 << 21), 0, "CAP_SYS_ADMIN is kept");
    assert_eq!(bnd & (1 << 16), 0, "CAP_SYS_MODULE is kept");
    assert_ne!(bnd & (1 << 12), 0, "CAP_NET_ADMIN is dropped");
    // ... which is enough to change its own network.
    sh(
        &s,
        "node.n[0]",
        "ip addr add 10.94.0.200/24 dev eth0 && ip route show",
    )
    .expect_code(0);
    // The seccomp filter is on (mode 2).
    let r = sh(&s, "node.n[0]", "grep Seccomp: /proc/self/status");
    assert!(r.stdout().contains('2'), "{}", r.stdout());
    // So is the init's, with the same bounding set: what it starts (the
    // SSH server of each connection) is as confined as `tg exec`.
    let r = sh(
        &s,
        "node.n[0]",
        "grep -E '^(Seccomp|CapBnd):' /proc/1/status",
    );
    assert!(r.stdout().contains("Seccomp:\t2"), "{}", r.stdout());
    assert!(
        r.stdout().contains(&format!("CapBnd:\t{bnd:016x}")),
        "{}",
        r.stdout()
    );
}

#[test]
fn a_node_cannot_change_host_settings() {
    if !prerequisites(&["ip"]) {
        return;
    }
    let core = HostSetting::keep("/proc/sys/kernel/core_pattern");
    let tb = Testbed::new(&[("main.tg.hcl", TWO_NODES)]);
    let s = Session {
        tb: &tb,
        name: unique("sysctl"),
    };
    s.tg(&["apply", "-auto-approve"]).expect_code(0);
    for script in [
        "echo '|/tmp/tg-evil %p' > /proc/sys/kernel/core_pattern",
        "echo 3 > /proc/sys/vm/drop_caches",
        "echo 1 > /proc/sys/kernel/sysrq",
        "echo 1 > /sys/kernel/mm/ksm/run",
        "mount -o remount,rw /sys",
        "head -c1 /proc/kcore",
    ] {
        let r = sh(&s, "node.n[0]", script);
        assert_ne!(r.code(), 0, "`{script}` worked");
    }
    assert!(core.unchanged(), "the node changed the host's core_pattern");
    // The node's own network settings are its own to change.
    sh(
        &s,
        "node.n[0]",
        "echo 1 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward",
    )
    .expect_code(0);
}

#[test]
fn limits_hold_and_the_hosts_file_stays_what_tg_wrote() {
    if !prerequisites(&["ip"]) {
        return;
    }
    if !Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        crate::support::cannot_run("needs the cgroup v1 memory controller");
        return;
    }
    let tb = Testbed::new(&[(
        "main.tg.hcl",
        r#"
network "lab" {
  cidr = "10.95.0.0/24"
}

node "small" {
  image   = "host"
  network = network.lab
  memory  = 128
}

node "other" {
  image   = "host"
  network = network.lab
}
"#,
    )]);
    let s = Session {
        tb: &tb,
        name: unique("limits"),
    };
    s.tg(&["apply", "-auto-approve"]).expect_code(0);
    // Its cgroup is the root of its cgroup namespace; mounting the
    // hierarchy (to move to the real root) is refused.
    let r = sh(&s, "node.small", "cat /proc/self/cgroup");
    assert!(r.stdout().contains("memory:/\n"), "{}", r.stdout());
    for script in [
        "mkdir -p /tmp/cg && mount -t cgroup -o memory none /tmp/cg",
        "mkdir -p /tmp/cg2 && mount -t cgroup2 none /tmp/cg2",
    ] {
        assert_ne!(sh(&s, "node.small", script).code(), 0, "`{script}` worked");
    }
    // A process of the node, seen from the host, is in the node's cgroup.
    let r = sh(
        &s,
        "node.small",
        "sleep 0.1 & echo $!; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null; wait",
    );
    r.expect_code(0);
    let mine = std::fs::read_dir("/sys/fs/cgroup/memory")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("tg-{}-", s.sid()))
        })
        .map(|e| e.path())
        .collect::<Vec<_>>();
    assert_eq!(mine.len(), 1, "{mine:?}");
    let limit = std::fs::read_to_string(mine[0].join("memory.limit_in_bytes")).unwrap();
    assert_eq!(limit.trim(), (128u64 << 20).to_string());
    // More than the limit: the node's process is killed, not the host's.
    let r = sh(
        &s,
        "node.small",
        "head -c 400m /dev/zero | tail -c 300m > /dev/null && echo held",
    );
    assert_ne!(r.stdout().trim(), "held", "a 128 MiB node held 300 MiB");

    // /etc/hosts: read-only, and cannot be remounted writable.
    for script in [
        "echo '10.9.9.9 other' >> /etc/hosts",
        "mount -o remount,rw,bind /etc/hosts",
    ] {
        assert_ne!(sh(&s, "node.small", script).code(), 0, "`{script}` worked");
    }
    let r = s.tg(&["exec", "node.other", "--", "getent", "hosts", "other"]);
    assert!(r.stdout().starts_with("10.95.0."), "{}", r.stdout());
}

#[test]
fn host_secrets_are_not_in_nodes() {
    if !prerequisites(&["ip"]) {
        return;
    }
    let tb = Testbed::new(&[("main.tg.hcl", TWO_NODES)]);
    let s = Session {
        tb: &tb,
        name: unique("secrets"),
    };
    s.tg(&["apply", "-auto-approve"]).expect_code(0);
    // The host's shadow file has hashes in it (or is readable at least);
    // the node's has every password locked.
    let r = sh(&s, "node.n[0]", "cut -d: -f2 /etc/shadow | sort -u");
    r.expect_code(0);
    assert_eq!(r.stdout().trim(), "*", "{}", r.stdout());
    let r = sh(
        &s,
        "node.n[0]",
        "ls -A /root /home; ls /etc/ssh/ssh_host_*_key 2>/dev/null; ls /var/lib/tg 2>&1",
    );
    assert_eq!(
        r.stdout()
            .lines()
            .filter(|l| !l.is_empty() && !l.ends_with(':') && !l.contains("No such file"))
            .count(),
        0,
        "{}",
        r.stdout()
    );
    // The testbed's state folder (state, plans, keys) is not there either.
    let r = sh(
        &s,
        "node.n[0]",
        &format!("ls -A {}/.tg 2>&1", tb.path().display()),
    );
    assert!(!r.stdout().contains("state"), "{}", r.stdout());
}

#[test]
fn destroy_ends_what_made_its_own_namespaces() {
    if !prerequisites(&["ip", "unshare", "setsid"]) {
        return;
    }
    let tb = Testbed::new(&[("main.tg.hcl", TWO_NODES)]);
    let s = Session {
        tb: &tb,
        name: unique("destroy"),
    };
    s.tg(&["apply", "-auto-approve"]).expect_code(0);
    let sid = s.sid();
    let marker = format!("tg-sbx-{}", std::process::id());
    // A daemon that outlives its exec; the sandbox stops it from making
    // namespaces, so it tries and then sleeps anyway.
    sh(
        &s,
        "node.n[0]",
        &format!(
            "(setsid unshare -m sleep 1001 || setsid bash -c 'exec -a {marker} sleep 1002') \
             </dev/null >/dev/null 2>&1 &"
        ),
    )
    .expect_code(0);
    std::thread::sleep(Duration::from_millis(200));
    let running = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .filter(|c| String::from_utf8_lossy(c).contains(&marker))
            .count()
    };
    assert_eq!(running(), 1, "the daemon runs");
    s.tg(&["destroy", "-auto-approve"]).expect_code(0);
    assert_eq!(running(), 0, "destroy left the node's daemon running");
    assert_eq!(leftovers(&sid), Vec::<String>::new());
}

/// Run tg with `input` on its stdin; (code, stdout bytes, stderr).
fn tg_with_stdin(tb: &Testbed, args: &[&str], input: &[u8]) -> (i32, Vec<u8>, String) {
    let mut child = Command::new(tg_bin())
        .args(args)
        .current_dir(tb.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tg");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exec_passes_bytes_stdin_signals_and_exit_codes() {
    if !prerequisites(&["ip", "gzip"]) {
        return;
    }
    let tb = Testbed::new(&[("main.tg.hcl", TWO_NODES)]);
    let s = Session {
        tb: &tb,
        name: unique("exec"),
    };
    s.tg(&["apply", "-auto-approve"]).expect_code(0);
    let session = s.name.clone();
    fn with<'a>(session: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["--session", session, "exec"];
        v.extend_from_slice(rest);
        v
    }
    let exec = |rest: &[&'static str]| with(&session, rest);

    // Bytes as they are: no U+FFFD, no \r\n -> \n, no newline added.
    let r = s.tg(&["exec", "node.n[0]", "--", "printf", "\\377a\\r\\nb"]);
    r.expect_code(0);
    assert_eq!(r.0.stdout, b"\xffa\r\nb");
    // gzip output survives.
    let r = s.tg(&[
        "exec",
        "node.n[0]",
        "--",
        "sh",
        "-c",
        "echo hello | gzip -c",
    ]);
    assert_eq!(flate_decode(&r.0.stdout), b"hello\n");
    // Large output arrives whole (streamed: tg's memory is not measured here).
    let r = s.tg(&[
        "exec",
        "node.n[0]",
        "--",
        "head",
        "-c",
        "50000000",
        "/dev/zero",
    ]);
    assert_eq!(r.0.stdout.len(), 50_000_000);

    // stdin reaches the command, byte for byte, and its end closes it.
    let input: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let (code, out, err) = tg_with_stdin(&tb, &exec(&["node.n[0]", "--", "cat"]), &input);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, input);
    let (code, out, _) = tg_with_stdin(&tb, &exec(&["node.n[0]", "--", "cat"]), b"hi\n");
    assert_eq!((code, out.as_slice()), (0, &b"hi\n"[..]));
    // Several targets: refused unless asked for all.
    let (code, _, err) = tg_with_stdin(&tb, &exec(&["node.n[*]", "--", "cat"]), b"x");
    assert_eq!(code, 1, "{err}");
    let (code, out, _) = tg_with_stdin(
        &tb,
        &exec(&["-stdin-all", "node.n[*]", "--", "cat"]),
        b"x\n",
    );
    assert_eq!(code, 0);
    assert_eq!(
        crate::support::sorted_lines(&String::from_utf8_lossy(&out)),
        ["[n-0] x", "[n-1] x"]
    );

    // Exit codes, as a shell gives them.
    assert_eq!(
        s.tg(&["exec", "node.n[0]", "--", "sh", "-c", "exit 7"])
            .code(),
        7
    );
    assert_eq!(
        s.tg(&["exec", "node.n[0]", "--", "no-such-tg-cmd"]).code(),
        127
    );
    assert_eq!(
        s.tg(&["exec", "node.n[0]", "--", "sh", "-c", "kill -9 $$"])
            .code(),
        137
    );

    // -timeout ends it and exits 124.
    let t = Instant::now();
    let r = s.tg(&["exec", "-timeout", "1s", "node.n[0]", "--", "sleep", "30"]);
    assert_eq!(r.code(), 124, "{}", r.stderr());
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    // ... the whole command, not only its first process.
    let r = s.tg(&[
        "exec",
        "-timeout",
        "1s",
        "node.n[0]",
        "--",
        "sh",
        "-c",
        "sleep 31; echo survived",
    ]);
    assert_eq!(r.code(), 124);
    let r = sh(
        &s,
        "node.n[0]",
        "ps -eo args | grep -c '^sleep 3[01]' || true",
    );
    assert_eq!(r.stdout().trim(), "0", "the timed-out command lives on");

    // Signals reach the command; tg exits with its status.
    let mut child = Command::new(tg_bin())
        .args(exec(&[
            "node.n[0]",
            "--",
            "sh",
            "-c",
            "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done",
        ]))
        .current_dir(tb.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    out.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ready\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(rest, "got-term\n");
    assert_eq!(status.code(), Some(3));

    // -t: a terminal of the node's own.
    let (code, out, err) = tg_with_stdin(
        &tb,
        &exec(&["-t", "node.n[0]", "--", "sh", "-c", "tty; stty size"]),
        b"",
    );
    assert_eq!(code, 0, "{err}");
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("/dev/pts/"), "{out:?}");
    assert!(out.contains("\r\n"), "a terminal's line ends: {out:?}");
}

/// gunzip with the host's gzip.
fn flate_decode(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    child.wait_with_output().unwrap().stdout
}

#[test]
fn several_packages_install_on_one_node() {
    let _dpkg = crate::support::host_dpkg_read();
    if !prerequisites(&["ip", "apt-get"]) {
        return;
    }
    let tb = Testbed::new(&[(
        "main.tg.hcl",
        r#"
network "lab" {
  cidr = "10.96.0.0/24"
}

node "p" {
  image   = "host"
  network = network.lab
}

package "hello" {
  on = [node.p]
}

package "cowsay" {
  on = [node.p]
}

package "sl" {
  on = [node.p]
}
"#,
    )]);
    let s = Session {
        tb: &tb,
        name: unique("pkgs"),
    };
    let r = s.tg(&["apply", "-auto-approve"]);
    r.expect_code(0);
    for (cmd, expect) in [
        ("hello", "Hello, world!"),
        ("/usr/games/cowsay moo", "moo"),
        ("test -x /usr/games/sl && echo sl", "sl"),
    ] {
        let r = sh(&s, "node.p", cmd);
        r.expect_code(0);
        assert!(r.stdout().contains(expect), "{cmd}: {}", r.stdout());
    }
    assert!(
        !Path::new("/usr/games/cowsay").exists(),
        "leaked onto the host"
    );
    s.tg(&["plan", "-detailed-exitcode"]).expect_code(0);
    // Maintainer scripts ran inside the node: its own PID namespace.
    let r = sh(&s, "node.p", "dpkg -s hello | grep -c installed");
    r.expect_code(0);
}
