//! The `ssh` platform against real OpenSSH servers (see `pool_sshd`):
//! placement and leases across sessions, host keys, quarantine, reset on
//! release, exec and packages.

use std::path::Path;

use crate::pool_sshd::{client_key, known_hosts, Sshd};
use crate::support::{have_tools, Run, Testbed};

fn ready() -> bool {
    crate::support::have_root() && have_tools(&["ssh-keygen", "/usr/sbin/sshd", "ip"])
}

/// A pool over `hosts` with `nodes` pool nodes (count) and `extra` HCL.
fn testbed(dir: &Path, hosts: &[&Sshd], known_hosts: &str, nodes: usize, extra: &str) -> String {
    let id = client_key(dir);
    let mut hcl = format!(
        "platform \"ssh\" \"lab\" {{\n  user          = \"root\"\n  identity_file = \"{}\"\n  known_hosts   = \"{known_hosts}\"\n  reset         = \"touch {}/reset-$(hostname -I | tr -d ' ')\"\n",
        id.display(),
        dir.display()
    );
    for (i, h) in hosts.iter().enumerate() {
        hcl.push_str(&format!(
            "  host \"h{}\" {{\n    address = \"{}\"\n  }}\n",
            i + 1,
            h.address
        ));
    }
    hcl.push_str(&format!(
        "}}\n\nnode \"a\" {{\n  count    = {nodes}\n  platform = \"lab\"\n  image    = \"host\"\n}}\n{extra}"
    ));
    hcl
}

struct Pool {
    _keys: tempfile::TempDir,
    hosts: Vec<Sshd>,
    tb: Testbed,
}

/// `n` sshd hosts and a testbed whose known_hosts lists them.
fn pool(n: usize, nodes: usize, extra: &str) -> Pool {
    let keys = tempfile::tempdir().unwrap();
    let id = client_key(keys.path());
    let hosts: Vec<Sshd> = (0..n)
        .map(|_| Sshd::start(&id.with_extension("pub")))
        .collect();
    let kh = known_hosts(keys.path(), &hosts);
    let refs: Vec<&Sshd> = hosts.iter().collect();
    let hcl = testbed(keys.path(), &refs, &kh.display().to_string(), nodes, extra);
    let tb = Testbed::new(&[("main.tg.hcl", &hcl)]);
    Pool {
        _keys: keys,
        hosts,
        tb,
    }
}

fn leases(tb: &Testbed) -> serde_json::Value {
    let r = tb.tg(&["pool", "list", "-json"]);
    r.expect_code(0);
    serde_json::from_str(&r.stdout()).unwrap()
}

fn holder(doc: &serde_json::Value, host: &str) -> Option<String> {
    doc["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == host)
        .and_then(|h| h["session"].as_str().map(str::to_string))
}

fn apply(tb: &Testbed, session: &str) -> Run {
    tb.tg(&["apply", "-auto-approve", "-session", session])
}

#[test]
fn pool_two_sessions_racing_for_two_hosts_get_one_each() {
    if !ready() {
        return;
    }
    let p = pool(2, 1, "");
    let plan = p.tb.tg(&["plan", "-session", "s1"]);
    plan.expect_code(0);
    assert!(plan.stdout().contains("h1"), "{}", plan.stdout());
    let runs: Vec<Run> = std::thread::scope(|s| {
        let a = s.spawn(|| apply(&p.tb, "s1"));
        let b = s.spawn(|| apply(&p.tb, "s2"));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    for (r, session) in runs.iter().zip(["s1", "s2"]) {
        if r.code() != 0 {
            // It lost the race after planning: nothing changed, plan again.
            assert!(r.stderr().contains("run `tg plan` again"), "{}", r.stderr());
            apply(&p.tb, session).expect_code(0);
        }
    }
    let doc = leases(&p.tb);
    let (h1, h2) = (holder(&doc, "h1"), holder(&doc, "h2"));
    assert!(h1.is_some() && h2.is_some() && h1 != h2, "{doc}");
    // A third session finds no host, and the error says why per host.
    let r = p.tb.tg(&["plan", "-session", "s3"]);
    r.expect_code(1);
    let err = r.stderr();
    assert!(err.contains("no host can take `node.a[0]`"), "{err}");
    assert!(
        err.contains("host `h1`") && err.contains("host `h2`"),
        "{err}"
    );
    assert!(err.contains("leased by session"), "{err}");
    // Later plans keep the placement.
    let again = p.tb.tg(&["plan", "-session", "s1", "-detailed-exitcode"]);
    again.expect_code(0);
    for s in ["s1", "s2"] {
        p.tb.tg(&["destroy", "-auto-approve", "-session", s])
            .expect_code(0);
    }
    // Destroy ran the pool's reset on each host.
    both_free_and_reset(&p);
}

#[test]
fn pool_failed_apply_keeps_its_lease_and_destroy_frees_it() {
    if !ready() {
        return;
    }
    let extra = "\npackage \"tg-no-such-package-zz\" {\n  on = [node.a[0]]\n}\n";
    let p = pool(1, 1, extra);
    let r = apply(&p.tb, "s1");
    assert_ne!(r.code(), 0, "{}", r.stdout());
    let doc = leases(&p.tb);
    assert_eq!(holder(&doc, "h1").as_deref(), Some("s1"), "{doc}");
    // Another session cannot have it.
    plan_of_s2_is_refused(&p.tb);
    p.tb.tg(&["destroy", "-auto-approve", "-session", "s1"])
        .expect_code(0);
    assert_eq!(holder(&leases(&p.tb), "h1"), None);
}

#[test]
fn pool_exec_streams_output_and_keeps_the_exit_code() {
    if !ready() {
        return;
    }
    let p = pool(1, 1, "");
    apply(&p.tb, "default").expect_code(0);
    let r = p.tb.tg(&[
        "exec",
        "node.a[0]",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert!(r.stdout().contains("out"), "{}", r.stdout());
    assert!(r.stderr().contains("err"), "{}", r.stderr());
    assert_eq!(r.code(), 3, "{}", r.stderr());
    // `-t`: on a terminal of the host (as on netns); without, none.
    let r = p.tb.tg(&["exec", "-t", "node.a[0]", "--", "tty"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(r.stdout().contains("/dev/pts/"), "{}", r.stdout());
    let r = p.tb.tg(&["exec", "node.a[0]", "--", "tty"]);
    assert!(r.stdout().contains("not a tty"), "{}", r.stdout());
    p.tb.tg(&["destroy", "-auto-approve"]).expect_code(0);
}

#[test]
fn pool_wrong_host_key_is_refused_naming_the_host() {
    if !ready() {
        return;
    }
    let p = pool(1, 1, "");
    // A known_hosts line for the address with another key.
    let other = tempfile::tempdir().unwrap();
    crate::pool_sshd::client_key(other.path());
    let key = std::fs::read_to_string(other.path().join("id.pub")).unwrap();
    let mut parts = key.split_whitespace();
    let line = format!(
        "{} {} {}\n",
        p.hosts[0].address,
        parts.next().unwrap(),
        parts.next().unwrap()
    );
    std::fs::write(p._keys.path().join("known_hosts"), line).unwrap();
    let r = apply(&p.tb, "default");
    r.expect_code(1);
    let err = r.stderr();
    assert!(err.contains("host key of pool host `h1`"), "{err}");
    assert!(err.contains("changed"), "{err}");
    // The failed create keeps the lease; destroy frees it.
    p.tb.tg(&["destroy", "-auto-approve"]);
}

#[test]
fn pool_quarantined_host_is_not_placed_and_release_frees_it() {
    if !ready() {
        return;
    }
    let p = pool(1, 1, "");
    p.tb.tg(&["pool", "quarantine", "h1", "-reason", "disk broken"])
        .expect_code(0);
    let r = p.tb.tg(&["plan"]);
    r.expect_code(1);
    assert!(
        r.stderr().contains("quarantined: disk broken"),
        "{}",
        r.stderr()
    );
    let list = p.tb.tg(&["pool", "list"]);
    assert!(
        list.stdout().contains("quarantined: disk broken"),
        "{}",
        list.stdout()
    );
    p.tb.tg(&["pool", "release", "h1", "-force"]).expect_code(0);
    p.tb.tg(&["plan"]).expect_code(0);
}

#[test]
fn pool_deb_is_uploaded_installed_and_purged() {
    let _dpkg = crate::support::host_dpkg_write();
    if !ready() || !have_tools(&["dpkg-deb"]) {
        return;
    }
    let tag = format!("tg-pool-test-{}", std::process::id());
    let build = tempfile::tempdir().unwrap();
    let root = build.path().join("pkg");
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join(format!("usr/share/{tag}"))).unwrap();
    std::fs::write(root.join(format!("usr/share/{tag}/marker")), "tg\n").unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!("Package: {tag}\nVersion: 1.0\nArchitecture: all\nMaintainer: tg tests <tg@example.invalid>\nDescription: a package the tg pool tests install\n"),
    )
    .unwrap();
    let deb = build.path().join("t.deb");
    let out = std::process::Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group"])
        .arg(&root)
        .arg(&deb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let extra = format!(
        "\npackage \"{tag}\" {{\n  source = \"deb\"\n  deb    = \"{}\"\n  on     = [node.a[0]]\n}}\n",
        deb.display()
    );
    let p = pool(1, 1, &extra);
    // The sshd shares this machine's files: what it installs is here.
    let marker = Path::new("/usr/share").join(&tag).join("marker");
    struct Purge(String);
    impl Drop for Purge {
        fn drop(&mut self) {
            let _ = std::process::Command::new("dpkg")
                .args(["--purge", &self.0])
                .output();
        }
    }
    let _purge = Purge(tag.clone());
    p.tb.tg(&["apply", "-auto-approve", "-trace", "apply.json"])
        .expect_code(0);
    assert!(marker.exists(), "the .deb was not installed");
    let package = format!("package.{tag}[node.a[0]]");
    let made = trace_phases(&p.tb.path().join("apply.json"));
    for (instance, phase) in [
        ("node.a[0]", "links"),
        (package.as_str(), "upload"),
        (package.as_str(), "packages"),
    ] {
        assert!(
            made.contains(&(instance.to_string(), phase.to_string())),
            "no `{phase}` phase for {instance}: {made:?}"
        );
    }
    // Refresh sees it: no changes.
    p.tb.tg(&["plan", "-detailed-exitcode"]).expect_code(0);
    p.tb.tg(&["destroy", "-auto-approve", "-trace", "destroy.json"])
        .expect_code(0);
    assert!(!marker.exists(), "the package was not purged");
    let removed = trace_phases(&p.tb.path().join("destroy.json"));
    for (instance, phase) in [
        ("node.a[0]", "links"),
        ("node.a[0]", "lease"),
        (package.as_str(), "packages"),
    ] {
        assert!(
            removed.contains(&(instance.to_string(), phase.to_string())),
            "no `{phase}` phase for {instance}: {removed:?}"
        );
    }
}

/// The (instance, phase) pairs of a trace `tg apply -trace` wrote.
fn trace_phases(path: &Path) -> std::collections::BTreeSet<(String, String)> {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let instance = e["args"]["instance"].as_str()?;
            Some((instance.to_string(), e["name"].as_str()?.to_string()))
        })
        .collect()
}

/// What every store must do with leases; host keys carry `tag` so stores
/// shared by parallel runs (PostgreSQL) see no other test's rows.
fn leases_all_or_nothing(store: &dyn tg::state::StateStore, tag: &str) {
    let hosts = |v: &[&str]| v.iter().map(|s| format!("{tag}{s}")).collect::<Vec<_>>();
    let mine = |store: &dyn tg::state::StateStore| {
        store
            .leases()
            .unwrap()
            .into_iter()
            .filter(|l| l.host.starts_with(tag))
            .count()
    };
    let (la, lb) = (format!("{tag}-a"), format!("{tag}-b"));
    assert!(store
        .take_leases("a", &la, &hosts(&[":1"]))
        .unwrap()
        .is_empty());
    // b wants :1 (a's) and :2: it gets neither.
    let refused = store.take_leases("b", &lb, &hosts(&[":2", ":1"])).unwrap();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("leased by session `a`"), "{refused:?}");
    assert_eq!(mine(store), 1);
    // Taking again what one holds is fine; releasing frees it.
    assert!(store
        .take_leases("a", &la, &hosts(&[":1"]))
        .unwrap()
        .is_empty());
    store.quarantine_host(&hosts(&[":2"])[0], "broken").unwrap();
    let refused = store.take_leases("b", &lb, &hosts(&[":2"])).unwrap();
    assert!(refused[0].contains("quarantined: broken"), "{refused:?}");
    store.release_leases(&lb, &hosts(&[":1"])).unwrap();
    assert_eq!(mine(store), 2, "b cannot release a's host");
    store.release_leases(&la, &hosts(&[":1"])).unwrap();
    store.free_host(&hosts(&[":2"])[0]).unwrap();
    assert_eq!(mine(store), 0);
}

#[test]
fn pool_leases_are_taken_all_or_nothing_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = tg::state::sqlite::SqliteStore::open(&dir.path().join("state.db")).unwrap();
    leases_all_or_nothing(&store, "h");
}

#[test]
fn pool_leases_are_taken_all_or_nothing_in_memory() {
    leases_all_or_nothing(&tg::state::memory::MemoryStore::new(), "h");
}

#[test]
fn pool_leases_are_taken_all_or_nothing_in_postgres() {
    crate::require_pg!(url);
    let store = tg::state::postgres::PostgresStore::connect(&url).expect("connect");
    leases_all_or_nothing(&store, &format!("pool-test-{}", uuid::Uuid::new_v4()));
}

#[test]
fn pool_unknown_host_key_is_refused_unless_insecure_which_warns() {
    if !ready() {
        return;
    }
    let p = pool(1, 1, "");
    std::fs::write(p._keys.path().join("known_hosts"), "").unwrap();
    let r = apply(&p.tb, "default");
    r.expect_code(1);
    assert!(r.stderr().contains("is unknown"), "{}", r.stderr());
    p.tb.tg(&["destroy", "-auto-approve"]);
    let hcl = std::fs::read_to_string(p.tb.path().join("main.tg.hcl")).unwrap();
    p.tb.write(
        "main.tg.hcl",
        &hcl.replacen(
            "  user          = \"root\"\n",
            "  user          = \"root\"\n  insecure_accept_host_key = true\n",
            1,
        ),
    );
    let r = apply(&p.tb, "default");
    r.expect_code(0);
    let all = format!("{}{}", r.stdout(), r.stderr());
    assert!(all.contains("accepts any host key"), "{all}");
    p.tb.tg(&["destroy", "-auto-approve"]).expect_code(0);
}

/// Ctrl-C on `tg exec` (no terminal) reaches the command on the host: it
/// dies by SIGINT (130) and nothing of it is left running.
#[test]
fn pool_exec_delivers_signals_to_the_command() {
    if !ready() {
        return;
    }
    let p = pool(1, 1, "");
    apply(&p.tb, "default").expect_code(0);
    // A duration no other test sleeps, to find the process by.
    let nap = format!("31.{}", std::process::id() % 1000);
    let mut cmd = std::process::Command::new(crate::support::tg_bin());
    cmd.args(["exec", "node.a[0]", "--", "sh", "-c"])
        .arg(format!("echo started >&2; sleep {nap}; echo after"))
        .current_dir(p.tb.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("TG_") {
            cmd.env_remove(k);
        }
    }
    let child = cmd.spawn().expect("spawn tg exec");
    let running = || {
        std::process::Command::new("pgrep")
            .args(["-f", &format!("^sleep {nap}$")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !running() {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(130), "{stdout}{stderr}");
    assert!(!stdout.contains("after"), "{stdout}");
    assert!(
        stderr.contains("started") && !stderr.contains("tg-pid"),
        "{stderr}"
    );
    assert!(!running(), "the command outlived the signal");
    p.tb.tg(&["destroy", "-auto-approve"]).expect_code(0);
}

/// SIGKILL `child` (an apply in flight) and reap it.
pub(crate) fn sigkill(child: &mut std::process::Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
}

/// `tg apply` of `session` started in the background, as `Testbed::tg`
/// runs it (no `TG_*` variables of the test's environment).
pub(crate) fn spawn_apply(tb: &Testbed, session: &str) -> std::process::Child {
    let mut cmd = std::process::Command::new(crate::support::tg_bin());
    cmd.args(["apply", "-auto-approve", "-session", session])
        .current_dir(tb.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("TG_") {
            cmd.env_remove(k);
        }
    }
    cmd.spawn().expect("spawn tg apply")
}

/// Start an apply of `s1` on a pool of two hosts whose second sshd is
/// stopped, so the apply hangs connecting to it, and SIGKILL it once both
/// leases are taken. The pool comes back with h2's sshd running again.
fn killed_mid_apply() -> Pool {
    let p = pool(2, 2, "");
    p.hosts[1].pause(true);
    let mut child = spawn_apply(&p.tb, "s1");
    let start = std::time::Instant::now();
    let mut leased_at = None;
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the apply ended before it was killed"
        );
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the apply took no leases in 60 s"
        );
        let doc = leases(&p.tb);
        if leased_at.is_none()
            && holder(&doc, "h1").as_deref() == Some("s1")
            && holder(&doc, "h2").as_deref() == Some("s1")
        {
            leased_at = Some(std::time::Instant::now());
        }
        // Give the reachable host a moment to be recorded: the kill
        // then lands with one node done and one in flight.
        if leased_at.is_some_and(|t| t.elapsed() > std::time::Duration::from_secs(1)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    sigkill(&mut child);
    p.hosts[1].pause(false);
    p
}

/// Both hosts are free, and the pool's `reset` ran on each.
fn both_free_and_reset(p: &Pool) {
    let doc = leases(&p.tb);
    assert_eq!(holder(&doc, "h1"), None, "{doc}");
    assert_eq!(holder(&doc, "h2"), None, "{doc}");
    for h in &p.hosts {
        assert!(
            p._keys.path().join(format!("reset-{}", h.address)).exists(),
            "reset did not run on {}",
            h.address
        );
    }
}

/// The narrowest window of the kill above, made on purpose: the session
/// exists and holds both hosts, but records nothing yet (an apply killed
/// after its leases, before its first record). Destroy frees them.
#[test]
fn pool_destroy_frees_hosts_a_session_leased_but_never_recorded() {
    if !ready() {
        return;
    }
    let p = pool(2, 2, "");
    p.tb.tg(&["session", "new", "s1"]).expect_code(0);
    let store = tg::state::sqlite::SqliteStore::open(&p.tb.path().join(".tg/state.db")).unwrap();
    use tg::state::StateStore as _;
    let lineage = store.get_session("s1").unwrap().unwrap().lineage;
    let keys: Vec<String> = p
        .hosts
        .iter()
        .map(|h| format!("{}:22", h.address))
        .collect();
    let refused = store.take_leases("s1", &lineage, &keys).unwrap();
    assert!(refused.is_empty(), "{refused:?}");
    drop(store);
    let doc = leases(&p.tb);
    assert_eq!(holder(&doc, "h1").as_deref(), Some("s1"), "{doc}");
    assert_eq!(holder(&doc, "h2").as_deref(), Some("s1"), "{doc}");
    delete_refused_then_destroyed(&p.tb);
    both_free_and_reset(&p);
}

#[test]
fn pool_session_delete_sees_leases_kept_in_the_pools_own_store() {
    if !ready() {
        return;
    }
    let p = pool(1, 1, "");
    let hcl = std::fs::read_to_string(p.tb.path().join("main.tg.hcl")).unwrap();
    let hcl = hcl.replacen(
        "  user          = \"root\"\n",
        "  user          = \"root\"\n  state         = \"pool-leases.db\"\n",
        1,
    );
    assert!(hcl.contains("pool-leases.db"), "{hcl}");
    p.tb.write("main.tg.hcl", &hcl);
    p.tb.tg(&["session", "new", "s1"]).expect_code(0);
    use tg::state::StateStore as _;
    let own = tg::state::sqlite::SqliteStore::open(&p.tb.path().join(".tg/state.db")).unwrap();
    let lineage = own.get_session("s1").unwrap().unwrap().lineage;
    drop(own);
    // The window of an apply killed after it took its lease, before its
    // first record, in the pool's store.
    let pool_store =
        tg::state::sqlite::SqliteStore::open(&p.tb.path().join("pool-leases.db")).unwrap();
    let key = format!("{}:22", p.hosts[0].address);
    assert!(pool_store
        .take_leases("s1", &lineage, &[key])
        .unwrap()
        .is_empty());
    drop(pool_store);
    delete_refused_then_destroyed(&p.tb);
    assert_eq!(holder(&leases(&p.tb), "h1"), None);
    p.tb.tg(&["session", "delete", "s1"]).expect_code(0);
}

/// `tg session delete s1` is refused (it would forget the hosts `s1`
/// holds); `tg destroy` of `s1` then succeeds.
fn delete_refused_then_destroyed(tb: &Testbed) {
    let r = tb.tg(&["session", "delete", "s1"]);
    r.expect_code(1);
    assert!(
        r.stderr().contains("still holds pool host(s)"),
        "{}",
        r.stderr()
    );
    tb.tg(&["destroy", "-auto-approve", "-session", "s1"])
        .expect_code(0);
}

/// A plan of session `s2` is refused: the hosts are `s1`'s.
fn plan_of_s2_is_refused(tb: &Testbed) {
    let other = tb.tg(&["plan", "-session", "s2"]);
    other.expect_code(1);
    assert!(
        other.stderr().contains("leased by session `s1`"),
        "{}",
        other.stderr()
    );
}

/// After the kill: both hosts stay leased to `s1` and another session
/// cannot have them.
fn still_leased_to_s1(p: &Pool) {
    let doc = leases(&p.tb);
    assert_eq!(holder(&doc, "h1").as_deref(), Some("s1"), "{doc}");
    assert_eq!(holder(&doc, "h2").as_deref(), Some("s1"), "{doc}");
    plan_of_s2_is_refused(&p.tb);
    let other = apply(&p.tb, "s2");
    assert_ne!(other.code(), 0, "{}", other.stdout());
    let doc = leases(&p.tb);
    assert_eq!(holder(&doc, "h1").as_deref(), Some("s1"), "{doc}");
    assert_eq!(holder(&doc, "h2").as_deref(), Some("s1"), "{doc}");
}

#[test]
fn pool_sigkilled_apply_keeps_its_leases_and_the_next_apply_resumes() {
    if !ready() {
        return;
    }
    let p = killed_mid_apply();
    still_leased_to_s1(&p);
    // The lock of the dead process is stale; the next apply finishes on
    // the same hosts.
    let state = p.tb.tg(&["state", "list", "-session", "s1"]);
    let r = apply(&p.tb, "s1");
    r.expect_code(0);
    let doc = leases(&p.tb);
    let why = format!(
        "{doc}\nstate before: {}\napply: {}",
        state.stdout(),
        r.stdout()
    );
    assert_eq!(holder(&doc, "h1").as_deref(), Some("s1"), "{why}");
    assert_eq!(holder(&doc, "h2").as_deref(), Some("s1"), "{why}");
    p.tb.tg(&["plan", "-session", "s1", "-detailed-exitcode"])
        .expect_code(0);
    p.tb.tg(&["destroy", "-auto-approve", "-session", "s1"])
        .expect_code(0);
    let doc = leases(&p.tb);
    assert_eq!(holder(&doc, "h1"), None, "{doc}");
    assert_eq!(holder(&doc, "h2"), None, "{doc}");
}

#[test]
fn pool_sigkilled_apply_keeps_its_leases_and_destroy_releases_them() {
    if !ready() {
        return;
    }
    let p = killed_mid_apply();
    still_leased_to_s1(&p);
    // Destroy frees both, also the host whose node was never recorded.
    p.tb.tg(&["destroy", "-auto-approve", "-session", "s1"])
        .expect_code(0);
    both_free_and_reset(&p);
    apply(&p.tb, "s2").expect_code(0);
    p.tb.tg(&["destroy", "-auto-approve", "-session", "s2"])
        .expect_code(0);
}

#[test]
fn pool_with_its_own_state_url_shares_leases_across_testbeds() {
    if !ready() {
        return;
    }
    crate::require_pg!(url);
    // Two testbeds, each with its own SQLite store, point one pool of two
    // hosts at the same PostgreSQL: the leases live there.
    let p = pool(2, 1, "");
    let hcl = std::fs::read_to_string(p.tb.path().join("main.tg.hcl")).unwrap();
    let hcl = hcl.replacen(
        "  user          = \"root\"\n",
        &format!("  user          = \"root\"\n  state         = \"{url}\"\n"),
        1,
    );
    p.tb.write("main.tg.hcl", &hcl);
    let other = Testbed::new(&[("main.tg.hcl", &hcl)]);
    // Free the hosts' rows in the shared store however the test ends.
    struct Free(String, Vec<String>);
    impl Drop for Free {
        fn drop(&mut self) {
            if let Ok(s) = tg::state::postgres::PostgresStore::connect(&self.0) {
                use tg::state::StateStore;
                for k in &self.1 {
                    let _ = s.free_host(k);
                }
            }
        }
    }
    let _free = Free(
        url.clone(),
        p.hosts
            .iter()
            .map(|h| format!("{}:22", h.address))
            .collect(),
    );
    // Both plan the first host (nothing is leased yet), then race.
    let runs: Vec<Run> = std::thread::scope(|s| {
        let a = s.spawn(|| apply(&p.tb, "default"));
        let b = s.spawn(|| apply(&other, "default"));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    for (r, tb) in runs.iter().zip([&p.tb, &other]) {
        if r.code() != 0 {
            assert!(r.stderr().contains("run `tg plan` again"), "{}", r.stderr());
            apply(tb, "default").expect_code(0);
        }
    }
    // Each testbed's own store knows only its session; the pool's store
    // shows both leases to both, on different hosts.
    let (mine, theirs) = (leases(&p.tb), leases(&other));
    assert_eq!(mine, theirs);
    let (h1, h2) = (holder(&mine, "h1"), holder(&mine, "h2"));
    assert_eq!(h1.as_deref(), Some("default"), "{mine}");
    assert_eq!(h2.as_deref(), Some("default"), "{mine}");
    assert!(
        !p.tb.path().join(".tg/state.db").exists() || {
            // The local store holds no lease rows: another session of a third
            // testbed with a local-only pool would see both hosts free.
            let s =
                tg::state::sqlite::SqliteStore::open(&p.tb.path().join(".tg/state.db")).unwrap();
            use tg::state::StateStore;
            s.leases().unwrap().is_empty()
        }
    );
    // A third session finds no host.
    let r = p.tb.tg(&["plan", "-session", "s3"]);
    r.expect_code(1);
    assert!(r.stderr().contains("leased by session"), "{}", r.stderr());
    for tb in [&p.tb, &other] {
        tb.tg(&["destroy", "-auto-approve"]).expect_code(0);
    }
    let doc = leases(&other);
    assert_eq!(holder(&doc, "h1"), None, "{doc}");
    assert_eq!(holder(&doc, "h2"), None, "{doc}");
}

#[test]
fn pool_nodes_are_reached_by_ansible_and_ssh_as_the_pool_says() {
    if !ready() || !have_tools(&["ssh", "ansible", "ansible-inventory"]) {
        return;
    }
    let p = pool(1, 1, "");
    apply(&p.tb, "default").expect_code(0);
    let addr = p.hosts[0].address.clone();
    let inv = p.tb.tg(&["inventory", "--list"]);
    inv.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&inv.stdout()).unwrap();
    let vars = &doc["_meta"]["hostvars"]["a-0"];
    assert_eq!(vars["ansible_host"], addr.as_str(), "{doc}");
    assert_eq!(vars["ansible_user"], "root", "{doc}");
    assert!(vars.get("ansible_port").is_none(), "{doc}");
    let key = crate::pool_sshd::client_key(p._keys.path());
    assert_eq!(
        vars["ansible_ssh_private_key_file"],
        key.display().to_string()
    );
    let args = vars["ansible_ssh_common_args"].as_str().unwrap();
    let kh = p._keys.path().join("known_hosts");
    assert!(
        args.contains(&format!("UserKnownHostsFile=\"{}\"", kh.display())),
        "{args}"
    );
    assert!(args.contains("StrictHostKeyChecking=yes"), "{args}");
    assert!(!args.contains("ProxyCommand"), "{args}");

    // A real ping, host key checked against the pool's known_hosts.
    let script = p.tb.path().join("inventory.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec '{}' -chdir '{}' inventory \"$@\"\n",
            crate::support::tg_bin().display(),
            p.tb.path().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = std::process::Command::new("ansible")
        .args(["-i", script.to_str().unwrap(), "a-0", "-m", "ping"])
        .current_dir(p.tb.path())
        .env("ANSIBLE_HOST_KEY_CHECKING", "True")
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success() && out.contains("SUCCESS"), "{out}");

    // `tg ssh` and `tg ssh-config` log in the same way.
    let r = p.tb.tg(&["ssh", "a-0", "--", "printf", "%s|", "a b"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert_eq!(r.stdout(), "a b|");
    let cfg = p.tb.tg(&["ssh-config"]);
    cfg.expect_code(0);
    let text = cfg.stdout();
    assert!(
        text.contains(&format!("Host a-0\n  HostName {addr}\n  User root\n")),
        "{text}"
    );
    assert!(!text.contains("ProxyCommand"), "{text}");
    let file = p.tb.path().join("ssh.cfg");
    std::fs::write(&file, &text).unwrap();
    let o = std::process::Command::new("ssh")
        .args(["-F", file.to_str().unwrap(), "a-0", "true"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // A host whose key is not the known one is refused.
    std::fs::write(&kh, p.hosts[0].known_hosts_line().replace("AAAA", "AAAB")).unwrap();
    let r = p.tb.tg(&["ssh", "a-0", "--", "true"]);
    assert_eq!(r.code(), 255, "{}", r.stderr());
    assert!(
        r.stderr().contains("Host key verification failed"),
        "{}",
        r.stderr()
    );
    std::fs::write(&kh, p.hosts[0].known_hosts_line()).unwrap();
    p.tb.tg(&["destroy", "-auto-approve"]).expect_code(0);
}

/// `reuse_connections` is a boolean: anything else is refused when the
/// pool is read, naming the attribute (no host is contacted).
#[test]
fn pool_reuse_connections_must_be_a_boolean() {
    let tb = Testbed::new(&[(
        "main.tg.hcl",
        "platform \"ssh\" \"lab\" {\n  reuse_connections = \"no\"\n  host \"h1\" {\n    address = \"192.0.2.1\"\n  }\n}\n\nnode \"a\" {\n  platform = \"lab\"\n  image    = \"host\"\n}\n",
    )]);
    let r = tb.tg(&["plan"]);
    r.expect_code(1);
    assert!(
        r.stderr()
            .contains("`reuse_connections` must be true or false"),
        "{}",
        r.stderr()
    );
}

/// An apply killed after it leased both hosts but before it reached
/// either (both sshd stopped): its nodes are recorded tainted and never
/// made; destroy resets both hosts and frees both leases.
#[test]
fn pool_destroy_frees_the_hosts_of_an_apply_killed_before_it_reached_them() {
    if !ready() {
        return;
    }
    let p = pool(2, 2, "");
    for h in &p.hosts {
        h.pause(true);
    }
    let mut child = spawn_apply(&p.tb, "s1");
    let start = std::time::Instant::now();
    loop {
        assert!(child.try_wait().unwrap().is_none(), "the apply ended");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the apply took no leases in 60 s"
        );
        let doc = leases(&p.tb);
        if holder(&doc, "h1").as_deref() == Some("s1")
            && holder(&doc, "h2").as_deref() == Some("s1")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    sigkill(&mut child);
    for h in &p.hosts {
        h.pause(false);
    }
    p.tb.tg(&["destroy", "-auto-approve", "-session", "s1"])
        .expect_code(0);
    both_free_and_reset(&p);
}
