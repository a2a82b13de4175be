//! `tg capture` on the real netns platform, as root: a ping between two
//! nodes is in the pcap of their network and of one node's link, read back
//! with tcpdump; Ctrl-C ends a capture with a whole file; a target that
//! names several nodes is refused.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::e2e_netns::{prerequisites, unique, Session};
use crate::support::{tg_bin, Testbed};

const TESTBED: &str = r#"
network "lab" {
  cidr = "10.93.0.0/24"
}

node "n" {
  count   = 2
  image   = "host"
  network = network.lab
}
"#;

/// `tg capture ARGS` in the background, returned once tcpdump listens.
fn start_capture(s: &Session, args: &[&str]) -> Child {
    let mut child = Command::new(tg_bin())
        .args(["--session", s.name.as_str(), "capture"])
        .args(args)
        .current_dir(s.tb.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tg capture");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("listening on") {
                let _ = tx.send(Ok(()));
            }
        }
        let _ = tx.send(Err(seen));
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(())) => child,
        Ok(Err(seen)) => panic!("tg capture ended before listening: {seen}"),
        Err(_) => {
            let _ = child.kill();
            panic!("tg capture did not start listening in 20 s");
        }
    }
}

fn wait(child: &mut Child, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("tg capture did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `tcpdump -r FILE` as text.
fn read_pcap(path: &std::path::Path) -> String {
    let out = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(path)
        .output()
        .expect("tcpdump -r");
    assert!(
        out.status.success(),
        "tcpdump cannot read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_ping_between_nodes_is_in_the_capture() {
    if !prerequisites(&["ip", "ping", "tcpdump"]) {
        return;
    }
    let tb = Testbed::new(&[("main.tg.hcl", TESTBED)]);
    let s = Session {
        tb: &tb,
        name: unique("capture"),
    };
    s.tg(&["apply", "-auto-approve"]).expect_code(0);
    let peer = {
        let r = s.tg(&["exec", "node.n[1]", "--", "hostname", "-I"]);
        r.expect_code(0);
        r.stdout().split_whitespace().next().unwrap().to_string()
    };

    // The network: two requests and two replies cross its bridge.
    let net_pcap = tb.path().join("net.pcap");
    let mut cap = start_capture(
        &s,
        &[
            "network.lab",
            "-c",
            "4",
            "-filter",
            "icmp",
            "-w",
            "net.pcap",
        ],
    );
    s.tg(&[
        "exec",
        "node.n[0]",
        "--",
        "ping",
        "-c",
        "2",
        "-i",
        "0.2",
        &peer,
    ])
    .expect_code(0);
    assert_eq!(wait(&mut cap, Duration::from_secs(20)), 0);
    let text = read_pcap(&net_pcap);
    assert_eq!(text.matches("ICMP echo request").count(), 2, "{text}");
    assert_eq!(text.matches("ICMP echo reply").count(), 2, "{text}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&net_pcap).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a capture file is private");

    // One node's link, ended by Ctrl-C: the file is whole.
    let mut cap = start_capture(&s, &["node.n[1]", "-filter", "icmp", "-w", "node.pcap"]);
    s.tg(&["exec", "node.n[0]", "--", "ping", "-c", "1", &peer])
        .expect_code(0);
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(cap.id() as i32, libc::SIGINT) };
    assert_eq!(wait(&mut cap, Duration::from_secs(20)), 0);
    let text = read_pcap(&tb.path().join("node.pcap"));
    assert!(text.contains("ICMP echo request"), "{text}");

    // A capture listens on one link.
    let r = s.tg(&["capture", "node.n[*]", "-w", "x.pcap"]);
    r.expect_code(1);
    assert!(r.stderr().contains("matches 2 nodes"), "{}", r.stderr());
    let r = s.tg(&["capture", "network.nope", "-w", "x.pcap"]);
    r.expect_code(1);
    assert!(r.stderr().contains("matches no network"), "{}", r.stderr());
}
