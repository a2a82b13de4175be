//! A real OpenSSH server that tg did not make, for the `ssh` pool tests:
//! `/usr/sbin/sshd -D` inside a network namespace of its own, reached over
//! a veth pair from the host, with host and client keys made by
//! `ssh-keygen`. Every object is named uniquely (process id and a counter)
//! and removed on drop, also when the test fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);
/// LANs of this process, each with a /24 of its own.
static LANS: AtomicU32 = AtomicU32::new(0);

fn sh(cmd: &str) {
    let out = Command::new("sh").args(["-c", cmd]).output().expect("sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A client key pair (`id`, `id.pub`) in `dir`.
pub fn client_key(dir: &Path) -> PathBuf {
    let id = dir.join("id");
    if !id.exists() {
        sh(&format!(
            "ssh-keygen -q -t ed25519 -N '' -C tg-test -f {}",
            id.display()
        ));
    }
    id
}

/// A `known_hosts` file in `dir` that lists every one of `hosts`.
pub fn known_hosts(dir: &Path, hosts: &[Sshd]) -> PathBuf {
    let kh = dir.join("known_hosts");
    let lines: String = hosts.iter().map(Sshd::known_hosts_line).collect();
    std::fs::write(&kh, lines).unwrap();
    kh
}

/// A bridge in the host's namespace that sshd hosts can share, as lab
/// machines share a switch: hosts on it reach each other (the underlay of
/// the cross-host segment tests). Removed on drop.
pub struct Lan {
    pub bridge: String,
    /// The first three octets of its /24 (`10.252.X`); `.1` is the bridge's.
    pub prefix: String,
    next: AtomicU32,
}

impl Lan {
    pub fn new() -> Lan {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{:x}{n:x}", std::process::id() % 0xffff);
        let lan = Lan {
            bridge: format!("tgpl{tag}"),
            // 64 processes x 4 LANs at once, each its own /24.
            prefix: format!(
                "10.252.{}",
                (std::process::id() % 64) * 4 + LANS.fetch_add(1, Ordering::Relaxed) % 4
            ),
            next: AtomicU32::new(10),
        };
        sh(&format!(
            "ip link add {b} type bridge && ip addr add {p}.1/24 dev {b} && ip link set {b} up",
            b = lan.bridge,
            p = lan.prefix
        ));
        lan
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

/// One sshd in its own network namespace.
pub struct Sshd {
    pub netns: String,
    pub host_veth: String,
    /// The address sshd listens on (port 22).
    pub address: String,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Sshd {
    /// Start an sshd that accepts the public key `client_pub`.
    pub fn start(client_pub: &Path) -> Sshd {
        Sshd::start_with(client_pub, None)
    }

    /// Start an sshd on `lan`, where the other hosts of the LAN reach it.
    pub fn start_on(client_pub: &Path, lan: &Lan) -> Sshd {
        Sshd::start_with(client_pub, Some(lan))
    }

    fn start_with(client_pub: &Path, lan: Option<&Lan>) -> Sshd {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let idx = (std::process::id() % 4000) * 16 + n % 16;
        let (a, b) = (idx / 64 % 256, (idx % 64) * 4);
        let tag = format!("{:x}{n:x}", std::process::id() % 0xffff);
        let (address, ns_prefix) = match lan {
            Some(l) => (
                format!("{}.{}", l.prefix, l.next.fetch_add(1, Ordering::Relaxed)),
                24,
            ),
            None => (format!("10.253.{a}.{}", b + 2), 30),
        };
        let mut s = Sshd {
            netns: format!("tgpool-{tag}"),
            host_veth: format!("tgph{tag}"),
            address,
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        let ns_veth = format!("tgpn{tag}");
        sh(&format!("ip netns add {}", s.netns));
        sh(&format!(
            "ip link add {} type veth peer name {ns_veth} netns {}",
            s.host_veth, s.netns
        ));
        match lan {
            Some(l) => sh(&format!(
                "ip link set {} master {} up",
                s.host_veth, l.bridge
            )),
            None => sh(&format!(
                "ip addr add 10.253.{a}.{}/30 dev {} && ip link set {} up",
                b + 1,
                s.host_veth,
                s.host_veth
            )),
        }
        sh(&format!(
            "ip -n {ns} addr add {}/{ns_prefix} dev {ns_veth} && ip -n {ns} link set {ns_veth} up && ip -n {ns} link set lo up",
            s.address,
            ns = s.netns
        ));
        let d = s.dir.path().to_path_buf();
        sh(&format!(
            "ssh-keygen -q -t ed25519 -N '' -f {}/host_key",
            d.display()
        ));
        std::fs::copy(client_pub, d.join("authorized_keys")).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let config = format!(
            "Port 22\nListenAddress {addr}\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\nSubsystem sftp /usr/lib/openssh/sftp-server\nLogLevel ERROR\n",
            addr = s.address,
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &s.netns,
                "/usr/sbin/sshd",
                "-D",
                "-e",
                "-f",
            ])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        s.child = Some(child);
        // Wait until it accepts connections.
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr: std::net::SocketAddr = format!("{}:22", s.address).parse().unwrap();
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not start on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    /// Stop (SIGSTOP) or go on (SIGCONT) the listening sshd: while it is
    /// stopped a new connection is accepted by the kernel and then hangs in
    /// the SSH handshake, which holds an apply in the middle.
    pub fn pause(&self, paused: bool) {
        if let Some(c) = &self.child {
            let sig = if paused {
                nix::sys::signal::Signal::SIGSTOP
            } else {
                nix::sys::signal::Signal::SIGCONT
            };
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), sig);
        }
    }

    /// The `known_hosts` line of this server.
    pub fn known_hosts_line(&self) -> String {
        let key = std::fs::read_to_string(self.dir.path().join("host_key.pub")).unwrap();
        let mut parts = key.split_whitespace();
        format!(
            "{} {} {}\n",
            self.address,
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.pause(false);
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // sshd's connection children live in the namespace too.
        let _ = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "ip netns pids {ns} | xargs -r kill -9; ip link del {} 2>/dev/null; ip netns del {ns}",
                    self.host_veth,
                    ns = self.netns
                ),
            ])
            .output();
    }
}
