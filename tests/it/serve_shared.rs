//! Two `tg serve` on one state store (PostgreSQL when `TG_PG_TEST_URL` is
//! set, else one SQLite file), each with its own data dir: a session that
//! is not local (the test double here, a pool in use) is served by either,
//! with its model and uploads kept in the store and no change lost when
//! both change it at once; a netns session is held by the server whose
//! machine runs its nodes, and the other answers 409 naming that machine.

use serde_json::json;

use crate::serve::{code, Server, ALICE};

/// The store both servers use, in `dir` unless PostgreSQL is given.
fn shared_url(dir: &std::path::Path) -> String {
    std::env::var("TG_PG_TEST_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| dir.join("state.db").display().to_string())
}

fn tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// Closes the session on its server, even when an assertion fails.
struct Close<'a>(&'a Server, String);

impl Drop for Close<'_> {
    fn drop(&mut self) {
        let (st, job) = self
            .0
            .call("DELETE", &format!("/v1/sessions/{}", self.1), ALICE, None);
        if st == 202 {
            self.0.wait(ALICE, &job);
        }
    }
}

/// Allocate a node (`body`) in session `name` through `s` and wait for the
/// job to succeed.
fn allocate(s: &Server, name: &str, body: serde_json::Value) {
    let (st, job) = s.call(
        "POST",
        &format!("/v1/sessions/{name}/nodes"),
        ALICE,
        Some(body),
    );
    assert_eq!(st, 202, "{job}");
    let j = s.wait(ALICE, &job);
    assert_eq!(j["status"], "succeeded", "{j}");
}

fn node_names(s: &Server, name: &str) -> Vec<String> {
    let (st, v) = s.call("GET", &format!("/v1/sessions/{name}/nodes"), ALICE, None);
    assert_eq!(st, 200, "{v}");
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            assert_eq!(n["state"], "ready", "{v}");
            n["name"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Opened, changed and uploaded to on one server; shown, executed in,
/// changed, listed and closed on the other; both changing it at once
/// loses no change.
#[test]
fn serve_a_session_that_is_not_local_is_served_by_either_server() {
    let shared = tempfile::tempdir().unwrap();
    let url = shared_url(shared.path());
    let a = Server::start_custom("", None, true, &[("TG_STATE_URL", url.clone())]);
    // One test-double "platform" for both, as one pool is for two servers.
    let double = a.double_dir().display().to_string();
    let b = Server::start_custom(
        "",
        None,
        true,
        &[("TG_STATE_URL", url.clone()), ("TG_TESTDOUBLE_DIR", double)],
    );
    let name = format!("shared-{}", tag());
    let (st, v) = a.call("POST", "/v1/sessions", ALICE, Some(json!({"name": name})));
    assert_eq!(st, 201, "{v}");
    let _close = Close(&a, name.clone());
    allocate(&a, &name, json!({"image": "host"}));
    let (st, v) = a.raw(
        "PUT",
        &format!("/v1/sessions/{name}/files/motd.txt"),
        Some(ALICE),
        Some(b"hello from a"),
    );
    assert_eq!(st, 201, "{v}");
    let sha = v["sha256"].clone();

    // B reopens it (200, not a new one), sees the node, the file, and runs
    // commands in the node.
    let (st, v) = b.call("POST", "/v1/sessions", ALICE, Some(json!({"name": name})));
    assert_eq!((st, &v["nodes"][0]["name"]), (200, &json!("n1")), "{v}");
    let (st, v) = b.call("GET", "/v1/sessions", ALICE, None);
    assert_eq!(st, 200, "{v}");
    assert!(
        v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == format!("alice/{name}")),
        "{v}"
    );
    let (st, v) = b.call("GET", &format!("/v1/sessions/{name}/files"), ALICE, None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v,
        json!([{"name": "motd.txt", "size": 12, "sha256": sha}]),
        "{v}"
    );
    let (st, v) = b.call(
        "POST",
        &format!("/v1/sessions/{name}/nodes/n1/exec"),
        ALICE,
        Some(json!({"command": "uname"})),
    );
    assert_eq!((st, &v["returncode"]), (200, &json!(0)), "{v}");
    allocate(&b, &name, json!({"image": "host"}));
    assert_eq!(node_names(&a, &name), ["n1", "n2"]);

    // Both change it at once: each change is made (202) or refused as
    // changed meanwhile (409 `changed`), and every one made is there at
    // the end: none undoes another.
    let made: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = [(&a, "ra"), (&b, "rb"), (&a, "rc"), (&b, "rd")]
            .into_iter()
            .map(|(s, node)| {
                let name = &name;
                scope.spawn(move || {
                    let (st, job) = s.call(
                        "POST",
                        &format!("/v1/sessions/{name}/nodes"),
                        ALICE,
                        Some(json!({"name": node, "image": "host"})),
                    );
                    match st {
                        202 => {
                            let j = s.wait(ALICE, &job);
                            assert_eq!(j["status"], "succeeded", "{node}: {j}");
                            Some(node.to_string())
                        }
                        409 => {
                            assert!(["changed", "busy"].contains(&code(&job)), "{job}");
                            None
                        }
                        _ => panic!("{node}: {st} {job}"),
                    }
                })
            })
            .collect();
        runs.into_iter().filter_map(|r| r.join().unwrap()).collect()
    });
    assert!(!made.is_empty());
    let mut want = vec!["n1".to_string(), "n2".to_string()];
    want.extend(made);
    want.sort();
    let mut got = node_names(&b, &name);
    got.sort();
    assert_eq!(got, want);

    // Jobs of both servers waiting for the session's lock (held here, as
    // the CLI would): whichever takes it first, the last apply is of the
    // newest document, so none undoes another's node.
    let full = format!("alice/{name}");
    let store = tg::ops::open_store(shared.path(), &Default::default(), Some(&url)).unwrap();
    for (round, (first, second)) in [(&a, &b), (&b, &a)].into_iter().enumerate() {
        let lock = store
            .lock(
                tg::state::LockInfo::for_this_process(&full, "test"),
                std::time::Duration::from_secs(10),
            )
            .unwrap();
        let mut jobs = Vec::new();
        for (i, s) in [first, second].into_iter().enumerate() {
            let (st, job) = s.call(
                "POST",
                &format!("/v1/sessions/{name}/nodes"),
                ALICE,
                Some(json!({"name": format!("w{round}{i}"), "image": "host"})),
            );
            assert_eq!(st, 202, "{job}");
            // Its job has read the document and waits for the lock.
            std::thread::sleep(std::time::Duration::from_millis(400));
            jobs.push((s, job));
        }
        lock.release().unwrap();
        for (s, job) in jobs {
            assert_eq!(s.wait(ALICE, &job)["status"], "succeeded", "{job}");
        }
        want.extend([format!("w{round}0"), format!("w{round}1")]);
    }
    want.sort();
    let mut got = node_names(&a, &name);
    got.sort();
    assert_eq!(got, want);

    // Deleted on B, gone on A; closed on B, gone everywhere.
    let (st, _) = b.call(
        "DELETE",
        &format!("/v1/sessions/{name}/files/motd.txt"),
        ALICE,
        None,
    );
    assert_eq!(st, 204);
    let (_, v) = a.call("GET", &format!("/v1/sessions/{name}/files"), ALICE, None);
    assert_eq!(v, json!([]));
    // A row no upload could have written (by hand in the store) is not
    // copied anywhere.
    store
        .write_session_file(
            &full,
            "files/../../escape.txt",
            b"x",
            tg::state::Expect::Any,
        )
        .unwrap();
    let (st, v) = a.call("GET", &format!("/v1/sessions/{name}/files"), ALICE, None);
    assert_eq!((st, &v), (200, &json!([])));
    assert!(!a
        ._dir
        .path()
        .join("data/sessions/alice/escape.txt")
        .exists());
    // A change on A and a close on B, both queued behind the lock: the
    // close wins in the end whichever runs first (the change never makes
    // nodes after the close destroyed them).
    let lock = store
        .lock(
            tg::state::LockInfo::for_this_process(&full, "test"),
            std::time::Duration::from_secs(10),
        )
        .unwrap();
    let (st, late) = a.call(
        "POST",
        &format!("/v1/sessions/{name}/nodes"),
        ALICE,
        Some(json!({"name": "late", "image": "host"})),
    );
    assert_eq!(st, 202, "{late}");
    std::thread::sleep(std::time::Duration::from_millis(400));
    let (st, job) = b.call("DELETE", &format!("/v1/sessions/{name}"), ALICE, None);
    assert_eq!(st, 202, "{job}");
    std::thread::sleep(std::time::Duration::from_millis(400));
    lock.release().unwrap();
    assert_eq!(b.wait(ALICE, &job)["status"], "succeeded");
    a.wait(ALICE, &late);
    let (st, _) = a.call("GET", &format!("/v1/sessions/{name}"), ALICE, None);
    assert_eq!(st, 404);
    assert_eq!(store.session_files(&full).unwrap(), []);
    assert!(store.get_session(&full).unwrap().is_none());
    // Once closed, nothing changes it.
    let (st, _) = a.call(
        "POST",
        &format!("/v1/sessions/{name}/nodes"),
        ALICE,
        Some(json!({"image": "host"})),
    );
    assert_eq!(st, 404);
}

/// Two servers with their own machine names on the real netns platform: a
/// netns session held by one is a 409 on the other, naming the host, and
/// nothing of it is touched.
#[test]
fn serve_a_netns_session_held_by_another_server_is_a_409_naming_it() {
    crate::require_root!();
    let shared = tempfile::tempdir().unwrap();
    let url = shared_url(shared.path());
    let tag = tag();
    let server = |host: &str| {
        Server::start_custom(
            "",
            None,
            false,
            &[
                ("TG_STATE_URL", url.clone()),
                ("TG_HOSTNAME", format!("{host}-{tag}")),
                (
                    "TG_NETNS_RUN_DIR",
                    shared.path().join(host).display().to_string(),
                ),
            ],
        )
    };
    let a = server("serve-a");
    let b = server("serve-b");
    let name = format!("held-{tag}");
    let (st, v) = a.call("POST", "/v1/sessions", ALICE, Some(json!({"name": name})));
    assert_eq!(st, 201, "{v}");
    let _close = Close(&a, name.clone());
    allocate(&a, &name, json!({"image": "host"}));

    let (st, v) = b.call("POST", "/v1/sessions", ALICE, Some(json!({"name": name})));
    assert_eq!((st, code(&v)), (409, "elsewhere"), "{v}");
    let message = v["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains(&format!("`serve-a-{tag}`")), "{v}");
    // B sees it in the store but serves none of it (its nodes are A's),
    // and A's node still answers.
    for (method, path) in [
        ("GET", format!("/v1/sessions/{name}")),
        ("GET", format!("/v1/sessions/{name}/nodes")),
        ("DELETE", format!("/v1/sessions/{name}")),
    ] {
        let (st, v) = b.call(method, &path, ALICE, None);
        assert_eq!((st, code(&v)), (409, "elsewhere"), "{method} {path}: {v}");
    }
    let (st, v) = b.call(
        "POST",
        &format!("/v1/sessions/{name}/nodes/n1/exec"),
        ALICE,
        Some(json!({"command": "true"})),
    );
    assert_eq!((st, code(&v)), (409, "elsewhere"), "{v}");
    let (st, v) = a.call("GET", &format!("/v1/sessions/{name}/nodes"), ALICE, None);
    assert_eq!((st, &v["nodes"][0]["state"]), (200, &json!("ready")), "{v}");
}

/// A session the CLI applied under a name the server would use: opening it
/// through the server is a 409 `elsewhere` saying who made it, and its
/// instances stay as they were.
#[test]
fn serve_refuses_a_session_the_cli_made_and_leaves_it_alone() {
    let shared = tempfile::tempdir().unwrap();
    let url = shared_url(shared.path());
    let s = Server::start_custom("", None, true, &[("TG_STATE_URL", url.clone())]);
    let name = format!("cli-{}", tag());
    let bed = crate::engine::Bed::new(
        "network \"net\" {\n  cidr = \"10.9.0.0/24\"\n}\nnode \"n1\" {\n  image    = \"host\"\n  network  = network.net\n  platform = \"double\"\n}\n",
    );
    let session = format!("alice/{name}");
    let env = [
        ("TG_STATE_URL", url.as_str()),
        ("TG_SESSION", session.as_str()),
    ];
    bed.tg_env(&["apply", "-auto-approve"], &env).expect_code(0);
    let (st, v) = s.call("POST", "/v1/sessions", ALICE, Some(json!({"name": name})));
    assert_eq!((st, code(&v)), (409, "elsewhere"), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("the CLI"),
        "{v}"
    );
    let (st, _) = s.call("GET", &format!("/v1/sessions/{name}"), ALICE, None);
    assert_eq!(st, 404);
    let store = tg::ops::open_store(shared.path(), &Default::default(), Some(&url)).unwrap();
    assert_eq!(store.get_session(&session).unwrap().unwrap().instances, 2);
    bed.tg_env(&["destroy", "-auto-approve"], &env)
        .expect_code(0);
}

/// The case: a session on an `ssh` pool (two real OpenSSH hosts)
/// opened on one server is served by the other: exec on its node, a second
/// node, the leases seen from both, closed there and freed everywhere.
#[test]
fn serve_a_pool_session_is_served_by_either_server() {
    use crate::pool_sshd::{client_key, known_hosts, Lan, Sshd};
    if !(crate::support::have_root()
        && crate::support::have_tools(&["ssh-keygen", "/usr/sbin/sshd", "ip"]))
    {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let id = client_key(keys.path());
    let lan = Lan::new();
    let hosts: Vec<Sshd> = (0..2)
        .map(|_| Sshd::start_on(&id.with_extension("pub"), &lan))
        .collect();
    let kh = known_hosts(keys.path(), &hosts);
    let mut catalog = format!(
        "platform \"ssh\" \"lab\" {{\n  user          = \"root\"\n  identity_file = \"{}\"\n  known_hosts   = \"{}\"\n",
        id.display(),
        kh.display()
    );
    for (i, h) in hosts.iter().enumerate() {
        catalog.push_str(&format!(
            "  host \"h{}\" {{\n    address = \"{}\"\n  }}\n",
            i + 1,
            h.address
        ));
    }
    catalog.push_str("}\n");
    let shared = tempfile::tempdir().unwrap();
    let url = shared_url(shared.path());
    let start = || {
        Server::start_args(
            &catalog,
            None,
            false,
            &[("TG_STATE_URL", url.clone())],
            &["-platform", "lab"],
        )
    };
    let (a, b) = (start(), start());
    let name = format!("pool-{}", tag());
    let (st, v) = a.call("POST", "/v1/sessions", ALICE, Some(json!({"name": name})));
    assert_eq!(st, 201, "{v}");
    let _close = Close(&a, name.clone());
    allocate(&a, &name, json!({"image": "host"}));

    let (st, v) = b.call("POST", "/v1/sessions", ALICE, Some(json!({"name": name})));
    assert_eq!(st, 200, "{v}");
    let (st, v) = b.call(
        "POST",
        &format!("/v1/sessions/{name}/nodes/n1/exec"),
        ALICE,
        Some(json!({"command": "hostname -I"})),
    );
    assert_eq!((st, &v["returncode"]), (200, &json!(0)), "{v}");
    let out = v["stdout"].as_str().unwrap_or("");
    assert!(
        hosts.iter().any(|h| out.contains(&h.address)),
        "n1 answered `{out}`, not from a pool host"
    );
    allocate(&b, &name, json!({"image": "host"}));
    assert_eq!(node_names(&a, &name), ["n1", "n2"]);
    let leased_by = |s: &Server| -> Vec<String> {
        let (st, v) = s.call("GET", "/v1/pool", crate::serve::ROOT, None);
        assert_eq!(st, 200, "{v}");
        v["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["session"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let full = format!("alice/{name}");
    assert_eq!(leased_by(&a), [full.clone(), full.clone()]);

    let (st, job) = b.call("DELETE", &format!("/v1/sessions/{name}"), ALICE, None);
    assert_eq!(st, 202, "{job}");
    assert_eq!(b.wait(ALICE, &job)["status"], "succeeded");
    let (st, _) = a.call("GET", &format!("/v1/sessions/{name}"), ALICE, None);
    assert_eq!(st, 404);
    assert_eq!(leased_by(&a), ["", ""]);
}
