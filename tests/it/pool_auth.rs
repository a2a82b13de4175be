//! How tg logs in to pool hosts (real OpenSSH servers, see `pool_sshd`):
//! an encrypted identity file with its `identity_passphrase`, and the
//! identities of an ssh-agent (`agent = true`, the agent at
//! `SSH_AUTH_SOCK`), each refused with a message saying what was tried.
//! Each case has a testbed (and so a lease store) of its own: a refused
//! login leaves a lease that goes with its folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::pool_sshd::{known_hosts, Sshd};
use crate::support::{have_tools, Testbed};

fn ready() -> bool {
    crate::support::have_root()
        && have_tools(&["ssh-keygen", "ssh-agent", "ssh-add", "/usr/sbin/sshd", "ip"])
}

/// A key pair `name` in `dir`, encrypted with `passphrase` (empty: none).
fn key(dir: &Path, name: &str, passphrase: &str) -> PathBuf {
    let id = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args([
            "-q", "-t", "ed25519", "-C", "tg-test", "-N", passphrase, "-f",
        ])
        .arg(&id)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    id
}

/// A key pair `name` (encrypted with `passphrase`) in `dir`, an sshd that
/// takes it, and a `known_hosts` naming that sshd.
fn host_for_key(dir: &Path, name: &str, passphrase: &str) -> (PathBuf, Sshd, PathBuf) {
    let id = key(dir, name, passphrase);
    let host = Sshd::start(&id.with_extension("pub"));
    let kh = known_hosts(dir, std::slice::from_ref(&host));
    (id, host, kh)
}

/// A testbed of one node on a pool of `host`, the pool taking `auth`.
fn testbed(host: &Sshd, kh: &Path, auth: &str) -> Testbed {
    let hcl = format!(
        "platform \"ssh\" \"lab\" {{\n  user        = \"root\"\n  known_hosts = \"{}\"\n{auth}\n  host \"h1\" {{\n    address = \"{}\"\n  }}\n}}\n\nnode \"a\" {{\n  platform = \"lab\"\n  image    = \"host\"\n}}\n",
        kh.display(),
        host.address
    );
    Testbed::new(&[("main.tg.hcl", &hcl)])
}

#[test]
fn pool_encrypted_key_logs_in_with_its_passphrase_only() {
    if !ready() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let (id, host, kh) = host_for_key(keys.path(), "enc", "correct horse");
    let file = format!("  identity_file = \"{}\"", id.display());

    let tb = testbed(&host, &kh, &file);
    let r = tb.tg(&["apply", "-auto-approve"]);
    r.expect_code(1);
    let err = r.stderr();
    assert!(
        err.contains("pool host `h1` did not let user `root` in"),
        "{err}"
    );
    assert!(err.contains("the key is encrypted"), "{err}");

    let tb = testbed(
        &host,
        &kh,
        &format!("{file}\n  identity_passphrase = \"wrong\""),
    );
    let r = tb.tg(&["apply", "-auto-approve"]);
    r.expect_code(1);
    assert!(
        r.stderr()
            .contains("is `identity_passphrase` the key's passphrase?"),
        "{}",
        r.stderr()
    );

    // From the environment, as a CI secret would come.
    let tb = testbed(
        &host,
        &kh,
        &format!("{file}\n  identity_passphrase = env(\"KEY_PASSPHRASE\")"),
    );
    let env = [("KEY_PASSPHRASE", "correct horse")];
    tb.tg_env(&["apply", "-auto-approve"], &env).expect_code(0);
    let r = tb.tg_env(&["exec", "node.a", "--", "true"], &env);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    tb.tg_env(&["destroy", "-auto-approve"], &env)
        .expect_code(0);
}

/// An ssh-agent of the test's own, killed on drop.
struct Agent {
    sock: PathBuf,
    pid: String,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let sock = dir.join("agent.sock");
        let out = Command::new("ssh-agent")
            .arg("-a")
            .arg(&sock)
            .arg("-s")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let pid = text
            .split(';')
            .find_map(|p| p.trim().strip_prefix("SSH_AGENT_PID="))
            .unwrap_or_else(|| panic!("no agent pid in {text}"))
            .to_string();
        Agent { sock, pid }
    }

    fn add(&self, id: &Path) {
        let out = Command::new("ssh-add")
            .arg(id)
            .env("SSH_AUTH_SOCK", &self.sock)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(&self.pid).status();
    }
}

#[test]
fn pool_agent_identities_log_in_without_a_key_file() {
    if !ready() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let (id, host, kh) = host_for_key(keys.path(), "plain", "");
    let agent = Agent::start(keys.path());
    let auth = format!(
        "  agent         = true\n  identity_file = \"{}\"",
        keys.path().join("none").display()
    );
    let tb = testbed(&host, &kh, &auth);
    let sock = agent.sock.display().to_string();
    let env = [("SSH_AUTH_SOCK", sock.as_str())];

    // No SSH_AUTH_SOCK: said at plan time.
    let r = tb.tg(&["plan"]);
    r.expect_code(1);
    assert!(
        r.stderr().contains("`SSH_AUTH_SOCK` is not set"),
        "{}",
        r.stderr()
    );
    // An empty agent: refused, saying so.
    let r = tb.tg_env(&["apply", "-auto-approve"], &env);
    r.expect_code(1);
    assert!(r.stderr().contains("holds no identity"), "{}", r.stderr());
    // With the key in the agent: in (the apply takes the failed node over).
    agent.add(&id);
    tb.tg_env(&["apply", "-auto-approve"], &env).expect_code(0);
    let r = tb.tg_env(&["exec", "node.a", "--", "true"], &env);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    tb.tg_env(&["destroy", "-auto-approve"], &env)
        .expect_code(0);
}
