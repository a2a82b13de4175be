//! SSH into netns nodes and Ansible over the inventory, as a user runs
//! them: every node runs tg's OpenSSH server, the session's keys and
//! `known_hosts` are tg's, and host keys are checked (real `ssh`, real
//! ansible-core). Also the Jenkinsfile's steps, run in order as CI would.
//!
//! Each test has a session of its own and addresses no other test uses;
//! the session guard destroys it even when an assertion fails.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::e2e_netns::{leftovers, prerequisites, unique, Session};
use crate::support::{tg_bin, Testbed};

fn tools() -> bool {
    prerequisites(&[
        "ip",
        "ssh",
        "scp",
        "ansible",
        "ansible-inventory",
        "/usr/sbin/sshd",
    ])
}

/// Run a program in `dir` with Ansible's output plain and host key
/// checking on (as it is by default; said here so no user setting turns
/// it off).
fn run_in(dir: &Path, program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("ANSIBLE_HOST_KEY_CHECKING", "True")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_STDOUT_CALLBACK", "default")
        .env("TG", tg_bin())
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The dynamic inventory script of a session, as a user writes one.
fn inventory_script(tb: &Testbed, session: &str) -> PathBuf {
    let script = tb.path().join("inventory.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec '{}' -chdir '{}' -session '{}' inventory \"$@\"\n",
            tg_bin().display(),
            tb.path().display(),
            session
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

const SIX_NODES: &str = r#"
network "front" {
  cidr = "10.95.0.0/24"
}

network "back" {
  cidr = "10.95.1.0/24"
}

node "web" {
  count   = 3
  image   = "host"
  network = network.front
  labels  = { role = "web" }
}

node "db" {
  count   = 2
  image   = "host"
  network = network.back
  labels  = { role = "db" }
}

node "lb" {
  image    = "host"
  networks = [network.front, network.back]
}
"#;

#[test]
fn ansible_reaches_every_node_with_host_keys_checked() {
    if !tools() {
        return;
    }
    let tb = Testbed::new(&[("main.tg.hcl", SIX_NODES)]);
    let s = Session {
        tb: &tb,
        name: unique("ansible"),
    };
    s.tg(&["apply", "-auto-approve"]).expect_code(0);

    // The session's SSH files: private, and every node's host key known.
    let dir = tb.path().join(".tg/ssh").join(&s.name);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("id_ed25519")), 0o600);
    let known = std::fs::read_to_string(dir.join("known_hosts")).unwrap();
    let lines: Vec<&str> = known.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 6, "{known}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("lb,") && l.split(' ').next().unwrap().matches(',').count() == 2),
        "lb is known by both addresses: {known}"
    );

    // Both forms of the inventory are accepted as they are.
    let script = inventory_script(&tb, &s.name);
    let listed = run_in(
        tb.path(),
        "ansible-inventory",
        &["-i", script.to_str().unwrap(), "--list"],
    );
    assert!(listed.status.success(), "{}", text(&listed));
    for format in ["yaml", "json"] {
        let r = s.tg(&["output", "inventory", "-format", format]);
        r.expect_code(0);
        let file = tb.path().join(format!(
            "inventory.{}",
            if format == "yaml" { "yml" } else { "json" }
        ));
        std::fs::write(&file, r.stdout()).unwrap();
        let o = run_in(
            tb.path(),
            "ansible-inventory",
            &["-i", file.to_str().unwrap(), "--graph"],
        );
        let out = text(&o);
        assert!(o.status.success(), "{out}");
        for g in [
            "@web",
            "@db",
            "@role_web",
            "@net_front",
            "@net_back",
            "@platform_netns",
        ] {
            assert!(out.contains(g), "{format}: {g} missing\n{out}");
        }
        assert!(!out.contains("[WARNING]"), "{format}: {out}");
    }

    // A node whose host key is not the one tg recorded is refused.
    let web0 = lines.iter().find(|l| l.starts_with("web-0,")).unwrap();
    let db0 = lines.iter().find(|l| l.starts_with("db-0,")).unwrap();
    let db0_key = db0.split_once(' ').unwrap().1;
    let forged = known.replace(
        web0,
        &format!("{} {db0_key}", web0.split_once(' ').unwrap().0),
    );
    std::fs::write(dir.join("known_hosts"), forged).unwrap();
    let r = s.tg(&["ssh", "web-0", "--", "true"]);
    assert_eq!(r.code(), 255, "{}", r.stderr());
    assert!(
        r.stderr().contains("Host key verification failed"),
        "{}",
        r.stderr()
    );
    // ssh itself failed: tg says where the node's server logs.
    assert!(
        r.stderr()
            .contains("help: the node's SSH server log: `tg -session ansible-")
            && r.stderr()
                .contains("exec 'node.web[0]' -- cat /run/tg-sshd.log`"),
        "{}",
        r.stderr()
    );
    let o = run_in(
        tb.path(),
        "ansible",
        &["-i", script.to_str().unwrap(), "web-0", "-m", "ping"],
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("UNREACHABLE"), "{}", text(&o));
    // The next apply writes what state records again.
    s.tg(&["apply", "-auto-approve"]).expect_code(0);
    s.tg(&["ssh", "web-0", "--", "true"]).expect_code(0);
    // A lost known_hosts does not turn checking off.
    std::fs::remove_file(dir.join("known_hosts")).unwrap();
    let r = s.tg(&["ssh", "web-0", "--", "true"]);
    assert_eq!(r.code(), 255, "{}", r.stderr());
    assert!(
        r.stderr().contains("run `tg apply` to write it again"),
        "{}",
        r.stderr()
    );
    assert!(s
        .tg(&["ssh-config"])
        .stdout()
        .contains("StrictHostKeyChecking yes"));
    s.tg(&["apply", "-auto-approve"]).expect_code(0);
    s.tg(&["ssh", "web-0", "--", "true"]).expect_code(0);

    // Ping every node, host keys checked.
    let o = run_in(
        tb.path(),
        "ansible",
        &["-i", script.to_str().unwrap(), "all", "-m", "ping"],
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert_eq!(out.matches("| SUCCESS =>").count(), 6, "{out}");

    // `tg ssh` runs a command over real SSH, argv kept as given.
    let r = s.tg(&["ssh", "web-1", "--", "printf", "%s|", "a b", "$HOME"]);
    r.expect_code(0);
    assert_eq!(r.stdout(), "a b|$HOME|");
    // scp through `tg ssh-config`.
    let cfg = tb.path().join("ssh.cfg");
    std::fs::write(&cfg, s.tg(&["ssh-config"]).stdout()).unwrap();
    std::fs::write(tb.path().join("payload.txt"), "from the host\n").unwrap();
    let o = run_in(
        tb.path(),
        "scp",
        &[
            "-q",
            "-F",
            cfg.to_str().unwrap(),
            "payload.txt",
            "db-1:/tmp/payload.txt",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let r = s.tg(&["exec", "node.db[1]", "--", "cat", "/tmp/payload.txt"]);
    r.expect_code(0);
    assert!(r.stdout().contains("from the host"), "{}", r.stdout());

    // Destroy removes the keys with the nodes.
    let sid = s.sid();
    s.tg(&["destroy", "-auto-approve"]).expect_code(0);
    assert!(!dir.exists(), "the session's SSH files are removed");
    assert_eq!(leftovers(&sid), Vec::<String>::new());
}

#[test]
fn a_node_with_ssh_off_runs_no_server() {
    if !tools() {
        return;
    }
    let tb = Testbed::new(&[(
        "main.tg.hcl",
        r#"
network "lab" {
  cidr = "10.95.2.0/24"
}

node "on" {
  image = "host"
}

node "off" {
  image = "host"
  ssh   = false
}
"#,
    )]);
    let s = Session {
        tb: &tb,
        name: unique("ssh-off"),
    };
    s.tg(&["apply", "-auto-approve"]).expect_code(0);
    let known =
        std::fs::read_to_string(tb.path().join(".tg/ssh").join(&s.name).join("known_hosts"))
            .unwrap();
    assert!(
        known.contains("\non,") && !known.contains("\noff,"),
        "{known}"
    );
    // Socket activation: the node listens, but no server runs until a
    // connection comes, and the server of one runs confined like `tg exec`.
    let r = s.tg(&[
        "exec",
        "node.on",
        "--",
        "sh",
        "-c",
        "ls -l /proc/[0-9]*/exe 2>/dev/null",
    ]);
    assert!(!r.stdout().contains("/usr/sbin/sshd"), "{}", r.stdout());
    let r = s.tg(&[
        "ssh",
        "on",
        "--",
        "grep",
        "-E",
        "^(Seccomp|CapBnd):",
        "/proc/self/status",
    ]);
    r.expect_code(0);
    let exec = s.tg(&[
        "exec",
        "node.on",
        "--",
        "grep",
        "-E",
        "^(Seccomp|CapBnd):",
        "/proc/self/status",
    ]);
    assert!(r.stdout().contains("Seccomp:\t2"), "{}", r.stdout());
    assert_eq!(r.stdout(), exec.stdout());
    // Nothing listens on port 22 of `off` (0016 in /proc/net/tcp).
    let r = s.tg(&["exec", "node.off", "--", "cat", "/proc/net/tcp"]);
    r.expect_code(0);
    assert!(
        !r.stdout().contains(":0016 00000000:0000 0A"),
        "{}",
        r.stdout()
    );
    let r = s.tg(&["exec", "node.on", "--", "cat", "/proc/net/tcp"]);
    assert!(
        r.stdout().contains(":0016 00000000:0000 0A"),
        "{}",
        r.stdout()
    );
    // Turning it on is a replacement, and then it answers.
    tb.write(
        "main.tg.hcl",
        &std::fs::read_to_string(tb.path().join("main.tg.hcl"))
            .unwrap()
            .replace("ssh   = false", "ssh   = true"),
    );
    let r = s.tg(&["plan"]);
    assert!(r.stdout().contains("must be replaced"), "{}", r.stdout());
    s.tg(&["apply", "-auto-approve"]).expect_code(0);
    s.tg(&["ssh", "off", "--", "true"]).expect_code(0);
}

#[test]
fn an_image_without_an_ssh_server_is_said_at_plan_time() {
    let tb = Testbed::new(&[("main.tg.hcl", "")]);
    let image = tb.path().join("rootfs");
    std::fs::create_dir_all(image.join("etc")).unwrap();
    let bed = |ssh: &str| {
        format!(
            "network \"lab\" {{\n  cidr = \"10.95.3.0/24\"\n}}\n\nnode \"bare\" {{\n  image = \"dir:{}\"\n{ssh}}}\n",
            image.display()
        )
    };
    tb.write("main.tg.hcl", &bed(""));
    let r = tb.tg(&["plan", "-refresh=false"]);
    r.expect_code(0);
    assert!(
        r.stdout()
            .contains("has no OpenSSH server (`/usr/sbin/sshd`): the node runs without one"),
        "{}",
        r.stdout()
    );
    tb.write("main.tg.hcl", &bed("  ssh   = true\n"));
    let r = tb.tg(&["plan", "-refresh=false"]);
    r.expect_code(1);
    assert!(
        r.stderr().contains("has no OpenSSH server") && r.stderr().contains("or set `ssh = false`"),
        "{}",
        r.stderr()
    );
    tb.write("main.tg.hcl", &bed("  ssh   = false\n"));
    let r = tb.tg(&["plan", "-refresh=false"]);
    r.expect_code(0);
    assert!(!r.stdout().contains("OpenSSH"), "{}", r.stdout());
}

/// Two sessions of one testbed have the same addresses: Ansible's shared
/// connections must not carry one session's commands to the other's nodes.
#[test]
fn two_sessions_with_the_same_addresses_keep_their_ansible_connections_apart() {
    if !tools() {
        return;
    }
    let bed =
        "network \"lab\" {\n  cidr = \"10.95.4.0/24\"\n}\n\nnode \"n\" {\n  image = \"host\"\n}\n";
    let tb = Testbed::new(&[("main.tg.hcl", bed)]);
    let a = Session {
        tb: &tb,
        name: unique("cp-a"),
    };
    let b = Session {
        tb: &tb,
        name: unique("cp-b"),
    };
    for s in [&a, &b] {
        s.tg(&["apply", "-auto-approve"]).expect_code(0);
        s.tg(&[
            "exec",
            "node.n",
            "--",
            "sh",
            "-c",
            &format!("echo {} > /etc/tg-marker", s.name),
        ])
        .expect_code(0);
    }
    for s in [&a, &b, &a] {
        let script = inventory_script(&tb, &s.name);
        let o = run_in(
            tb.path(),
            "ansible",
            &[
                "-i",
                script.to_str().unwrap(),
                "n",
                "-m",
                "command",
                "-a",
                "cat /etc/tg-marker",
            ],
        );
        let out = text(&o);
        assert!(o.status.success(), "{out}");
        assert!(
            out.contains(&format!(">>\n{}\n", s.name)),
            "{}: {out}",
            s.name
        );
    }
}

/// The `sh` steps of `examples/Jenkinsfile` (but the build), in order, on
/// a copy of the repository's examples, then its `post` steps.
#[test]
fn the_jenkinsfile_steps_run_on_the_quickstart() {
    let _dpkg = crate::support::host_dpkg_read();
    if !tools() || !prerequisites(&["ansible-playbook", "dpkg-deb"]) {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let jenkinsfile = std::fs::read_to_string(root.join("examples/Jenkinsfile")).unwrap();
    let (main, post) = jenkinsfile.split_once("post {").expect("a post section");
    let steps = sh_steps(main);
    let post = sh_steps(post);
    assert!(steps.len() >= 7 && post.len() == 1, "{steps:?} {post:?}");

    let ws = tempfile::tempdir().unwrap();
    let copy = Command::new("cp")
        .arg("-r")
        .arg(root.join("examples"))
        .arg(ws.path())
        .status()
        .unwrap();
    assert!(copy.success());
    let session = unique("jenkins");
    let run = |step: &str| {
        Command::new("sh")
            .args(["-ec", step])
            .current_dir(ws.path())
            .env("TG", tg_bin())
            .env("TG_SESSION", &session)
            .env("WORKSPACE", ws.path())
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_STDOUT_CALLBACK", "default")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    struct Post<'a>(&'a dyn Fn());
    impl Drop for Post<'_> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    let teardown = || {
        for step in &post {
            let o = run(step);
            assert!(o.status.success(), "post step `{step}`:\n{}", text(&o));
        }
    };
    let _post = Post(&teardown);
    for step in steps
        .iter()
        .filter(|s| !s.trim_start().starts_with("cargo "))
    {
        let o = run(step);
        assert!(o.status.success(), "step `{step}`:\n{}", text(&o));
    }
    let plan = std::fs::read_to_string(ws.path().join("plan.md")).unwrap();
    assert!(plan.contains("**Create** (4)"), "{plan}");
    let quick = ws.path().join("examples/quickstart");
    let r = Command::new(tg_bin())
        .args(["-chdir"])
        .arg(&quick)
        .args([
            "-session",
            &session,
            "exec",
            "node.origin",
            "--",
            "cat",
            "/etc/tg-demo.conf",
        ])
        .output()
        .unwrap();
    let conf = String::from_utf8_lossy(&r.stdout);
    assert!(
        conf.contains("hostname = origin") && conf.contains("address  = 10.42.0.10"),
        "{conf}"
    );
}

/// The shell scripts of `sh '…'` and `sh '''…'''` steps, in order.
fn sh_steps(groovy: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = groovy;
    while let Some(i) = rest.find("sh '") {
        rest = &rest[i + 3..];
        if let Some(body) = rest.strip_prefix("'''") {
            let end = body.find("'''").expect("closing '''");
            out.push(body[..end].to_string());
            rest = &body[end + 3..];
        } else {
            let body = &rest[1..];
            let end = body.find('\'').expect("closing '");
            out.push(body[..end].to_string());
            rest = &body[end + 1..];
        }
    }
    out
}
