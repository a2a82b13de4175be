//! `tg serve` through HTTP: the real binary on an ephemeral port with the
//! test-double platform; auth (401/403), bad input (400/413), one change
//! at a time (409), and a session's life (open, allocate, exec, close);
//! the OpenAPI document (the same bytes as `schemas/openapi.json`), job
//! events (server-sent), the inventory and the admin-only pool routes.
//! Uploads and what a session's testbed may read: `serve_files.rs`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::tg_bin;

pub(crate) const ALICE: &str = "alice-token-0123456789";
pub(crate) const BOB: &str = "bob-token-0123456789ab";
pub(crate) const ROOT: &str = "root-token-0123456789ab";

/// A running `tg serve`; killed on drop.
pub(crate) struct Server {
    child: Child,
    addr: String,
    pub(crate) _dir: tempfile::TempDir,
    double: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Server {
        Server::start_with("")
    }

    /// A server whose catalog has `extra` HCL too.
    fn start_with(extra: &str) -> Server {
        Server::start_full(extra, None)
    }

    /// A server whose catalog has `extra` HCL and, when given, the
    /// settings file `serve.hcl`; the server's environment has
    /// `ALLOWED_VAR` and `SECRET_VAR` besides.
    pub(crate) fn start_full(extra: &str, settings: Option<&str>) -> Server {
        Server::start_custom(extra, settings, true, &[])
    }

    /// [`Server::start_full`] on the test double (`double`) or the real
    /// netns platform, with `envs` set besides.
    pub(crate) fn start_custom(
        extra: &str,
        settings: Option<&str>,
        double_platform: bool,
        envs: &[(&str, String)],
    ) -> Server {
        Server::start_args(extra, settings, double_platform, envs, &[])
    }

    /// [`Server::start_custom`] with `args` given to `tg serve` besides.
    pub(crate) fn start_args(
        extra: &str,
        settings: Option<&str>,
        double_platform: bool,
        envs: &[(&str, String)],
        args: &[&str],
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(
            p.join("tokens"),
            format!("# test\n{ALICE} alice\n{BOB} bob\n{ROOT} root admin\n"),
        )
        .unwrap();
        std::fs::create_dir_all(p.join("catalog")).unwrap();
        std::fs::write(
            p.join("catalog/profiles.tg.hcl"),
            format!("profile \"cdn:basic\" {{\n  image = \"host\"\n  labels = {{ tier = \"cdn\" }}\n}}\n{extra}"),
        )
        .unwrap();
        if let Some(text) = settings {
            std::fs::write(p.join("catalog/serve.hcl"), text).unwrap();
        }
        let double = p.join("double");
        std::fs::create_dir_all(&double).unwrap();
        std::fs::write(double.join("apt.json"), r#"{"hello": ["2.10-3"]}"#).unwrap();
        let mut cmd = Command::new(tg_bin());
        for (k, _) in std::env::vars() {
            if k.starts_with("TG_") {
                cmd.env_remove(k);
            }
        }
        if double_platform {
            cmd.env("TG_TESTDOUBLE_DIR", &double);
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .args(["serve", "-listen", "127.0.0.1:0", "-token-file"])
            .arg(p.join("tokens"))
            .arg("-catalog")
            .arg(p.join("catalog"))
            .arg("-data-dir")
            .arg(p.join("data"))
            .args(args)
            .env("ALLOWED_VAR", "visible")
            .env("SECRET_VAR", "hidden")
            .current_dir(p)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tg serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("tg serve: listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server {
            child,
            addr,
            _dir: dir,
            double,
        }
    }

    /// The test double's folder of this server (`TG_TESTDOUBLE_DIR`).
    pub(crate) fn double_dir(&self) -> &std::path::Path {
        &self.double
    }

    /// One request (HTTP/1.1, `connection: close`): status and JSON body.
    pub(crate) fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> (u16, Value) {
        let (status, body) = self.text(method, path, token, body, &[]);
        let json = serde_json::from_str(&body).unwrap_or_else(|_| json!({ "raw": body }));
        (status, json)
    }

    /// One request: status and the body as text (as sent: a chunked
    /// body keeps its chunk lines).
    pub(crate) fn text(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n");
        if let Some(t) = token {
            req.push_str(&format!("authorization: Bearer {t}\r\n"));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            req.push_str(&format!(
                "content-type: application/json\r\ncontent-length: {}\r\n",
                b.len()
            ));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        if let Some(b) = body {
            let _ = s.write_all(b);
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        let status: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status in {text:?}"));
        let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
        (status, body.to_string())
    }

    /// A job's server-sent events (after event `after`), read to the end
    /// of the stream: the `data` of each, in order.
    fn events(&self, token: &str, id: &str, after: Option<u64>) -> Vec<Value> {
        let last = after.map(|n| n.to_string());
        let headers: Vec<(&str, &str)> =
            last.iter().map(|n| ("last-event-id", n.as_str())).collect();
        let path = format!("/v1/jobs/{id}/events");
        let (st, body) = self.text("GET", &path, Some(token), None, &headers);
        assert_eq!(st, 200, "{body}");
        body.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
            .collect()
    }

    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let b = body.map(|v| v.to_string().into_bytes());
        self.raw(method, path, Some(token), b.as_deref())
    }

    /// Wait for a job; its final document.
    pub(crate) fn wait(&self, token: &str, job: &Value) -> Value {
        let id = job["job"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no job in {job}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (st, j) = self.call("GET", &format!("/v1/jobs/{id}"), token, None);
            assert_eq!(st, 200, "{j}");
            if j["status"] != "running" {
                return j;
            }
            assert!(Instant::now() < deadline, "job {id} did not end");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub(crate) fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[test]
fn serve_auth_and_bad_input() {
    let s = Server::start();
    assert_eq!(s.raw("GET", "/healthz", None, None).0, 200);
    let (st, v) = s.raw("GET", "/v1/sessions", None, None);
    assert_eq!((st, code(&v)), (401, "unauthorized"), "{v}");
    let (st, _) = s.raw("GET", "/v1/sessions", Some("not-a-known-token-000"), None);
    assert_eq!(st, 401);

    let (st, v) = s.raw("POST", "/v1/sessions", Some(ALICE), Some(b"{\"name\":"));
    assert_eq!((st, code(&v)), (400, "bad_request"), "{v}");
    let (st, v) = s.call(
        "POST",
        "/v1/sessions",
        ALICE,
        Some(json!({"name": "x", "extra": 1})),
    );
    assert_eq!(st, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("extra"),
        "{v}"
    );
    for bad in ["", "../etc", "a b", "-x", "a/b/c"] {
        let (st, v) = s.call("POST", "/v1/sessions", ALICE, Some(json!({ "name": bad })));
        assert_eq!(st, 400, "{bad:?}: {v}");
    }
    let huge = format!("{{\"name\":\"{}\"}}", "a".repeat(200_000));
    let (st, v) = s.raw("POST", "/v1/sessions", Some(ALICE), Some(huge.as_bytes()));
    assert_eq!((st, code(&v)), (413, "too_large"), "{v}");
    let (st, v) = s.call("GET", "/v1/packages/hello/2.10%203", ALICE, None);
    assert_eq!(st, 400, "{v}");
    let (st, v) = s.call("GET", "/v1/packages/Hello!/1", ALICE, None);
    assert_eq!(st, 400, "{v}");
    let (st, v) = s.call("GET", "/v1/packages/hello/9.9-9", ALICE, None);
    assert_eq!((st, code(&v)), (404, "no_such_version"), "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("2.10-3"),
        "{v}"
    );
    let (st, v) = s.call("GET", "/v1/packages/hello/2.10-3", ALICE, None);
    assert_eq!((st, &v["installable"]), (200, &json!(true)), "{v}");
    assert_eq!(s.call("GET", "/v1/nothing", ALICE, None).0, 404);
    assert_eq!(s.call("GET", "/v1/jobs/nope", ALICE, None).0, 404);

    // Another user's session: 403; the same name is their own session.
    let (st, v) = s.call("POST", "/v1/sessions", ALICE, Some(json!({"name": "hw"})));
    assert_eq!((st, v["name"].as_str()), (201, Some("alice/hw")), "{v}");
    let (st, v) = s.call("GET", "/v1/sessions/alice%2Fhw", BOB, None);
    assert_eq!((st, code(&v)), (403, "forbidden"), "{v}");
    let (st, v) = s.call(
        "POST",
        "/v1/sessions",
        BOB,
        Some(json!({"name": "alice/hw"})),
    );
    assert_eq!(st, 403, "{v}");
    let (st, v) = s.call("POST", "/v1/sessions", BOB, Some(json!({"name": "hw"})));
    assert_eq!((st, v["name"].as_str()), (201, Some("bob/hw")), "{v}");
    let (_, v) = s.call("GET", "/v1/sessions", BOB, None);
    assert_eq!(v["sessions"].as_array().unwrap().len(), 1, "{v}");

    // Bad node specs: 400 before any job, with the known profiles.
    let (st, v) = s.call(
        "POST",
        "/v1/sessions/hw/nodes",
        ALICE,
        Some(json!({"profile": "nope"})),
    );
    assert_eq!((st, code(&v)), (400, "unknown_profile"), "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("cdn:basic"));
    for body in [
        json!({"image": "a\"b"}),
        json!({"image": "dir:/etc"}),
        json!({"labels": {"k": "${env(\"HOME\")}"}}),
        json!({"name": "Bad Name"}),
        json!({"cpus": 0}),
        json!({"cpus": "two"}),
        json!({"image": "host", "is_image": "host"}),
    ] {
        let (st, v) = s.call("POST", "/v1/sessions/hw/nodes", ALICE, Some(body.clone()));
        assert_eq!(st, 400, "{body}: {v}");
    }
    let (st, _) = s.call("POST", "/v1/sessions/nope/nodes", ALICE, Some(json!({})));
    assert_eq!(st, 404);
    let (st, v) = s.call("GET", "/v1/sessions/hw/testbed", ALICE, None);
    assert_eq!(st, 200, "{v}");
    assert!(
        v["files"]["main.tg.hcl"]
            .as_str()
            .unwrap()
            .contains("network \"net\""),
        "{v}"
    );
    assert!(v["files"]["catalog-profiles.tg.hcl"].is_string(), "{v}");
}

#[test]
fn serve_stops_on_sigterm() {
    let mut s = Server::start();
    assert_eq!(s.raw("GET", "/healthz", None, None).0, 200);
    let pid = s.child.id() as i32;
    // SAFETY: signalling a child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tg serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_session_life() {
    let s = Server::start();
    let (st, _) = s.call("POST", "/v1/sessions", ALICE, Some(json!({"name": "life"})));
    assert_eq!(st, 201);
    // Reopening is the same session.
    let (st, _) = s.call("POST", "/v1/sessions", ALICE, Some(json!({"name": "life"})));
    assert_eq!(st, 200);

    let (st, job) = s.call(
        "POST",
        "/v1/sessions/life/packages",
        ALICE,
        Some(json!({"name": "hello", "version": "2.10-3"})),
    );
    assert_eq!(st, 202, "{job}");
    let j = s.wait(ALICE, &job);
    assert_eq!(j["status"], "succeeded", "{j}");
    let (st, job) = s.call(
        "POST",
        "/v1/sessions/life/nodes",
        ALICE,
        Some(json!({"is_image": "host", "profile": "cdn:basic", "labels": {"role": "edge"}})),
    );
    assert_eq!(st, 202, "{job}");
    let j = s.wait(ALICE, &job);
    assert_eq!(
        (&j["status"], &j["result"]["node"]),
        (&json!("succeeded"), &json!("n2")),
        "{j}"
    );

    let (_, v) = s.call("GET", "/v1/sessions/life/nodes", ALICE, None);
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{v}");
    for n in nodes {
        assert_eq!(n["state"], "ready", "{n}");
        assert!(
            n["address"].as_str().is_some_and(|a| a.contains('.')),
            "{n}"
        );
    }
    assert_eq!(
        nodes[1]["labels"],
        json!({"role": "edge", "tier": "cdn"}),
        "{v}"
    );
    assert_eq!(nodes[0]["packages"][0]["name"], "hello", "{v}");

    let (st, v) = s.call(
        "POST",
        "/v1/sessions/life/nodes/n1/exec",
        ALICE,
        Some(json!({"command": "uname"})),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (&v["returncode"], &v["stdout"]),
        (&json!(0), &json!("n1: sh -c uname\n")),
        "{v}"
    );
    let (_, v) = s.call(
        "POST",
        "/v1/sessions/life/nodes/n2/exec",
        ALICE,
        Some(json!({"command": ["exit", "3"]})),
    );
    assert_eq!(v["returncode"], 3, "{v}");
    let (_, v) = s.call(
        "POST",
        "/v1/sessions/life/nodes/n2/exec",
        ALICE,
        Some(json!({"command": ["bytes"]})),
    );
    assert_eq!(
        (&v["stdout_encoding"], &v["stdout"]),
        (&json!("base64"), &json!("/w0K")),
        "{v}"
    );
    let (st, _) = s.call(
        "POST",
        "/v1/sessions/life/nodes/n9/exec",
        ALICE,
        Some(json!({"command": "true"})),
    );
    assert_eq!(st, 404);
    let (st, _) = s.call(
        "POST",
        "/v1/sessions/life/nodes/n1/exec",
        ALICE,
        Some(json!({"command": []})),
    );
    assert_eq!(st, 400);

    // The document is an ordinary testbed, and the state the CLI's.
    let dir = s._dir.path().join("data/sessions/alice/life");
    let doc = std::fs::read_to_string(dir.join("main.tg.hcl")).unwrap();
    assert!(doc.contains("package \"hello\""), "{doc}");
    let out = Command::new(tg_bin())
        .args(["session", "list"])
        .env("TG_STATE_URL", s._dir.path().join("data/state.db"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("alice/life"),
        "{out:?}"
    );
    // `tg session export` writes the same document (and, into a
    // directory, the catalog's files beside it).
    let data = s._dir.path().join("data");
    let export_from = |args: &[&str], data: &std::path::Path| {
        Command::new(tg_bin())
            .args(["session", "export"])
            .args(args)
            .arg("-data-dir")
            .arg(data)
            .env("TG_STATE_URL", s._dir.path().join("data/state.db"))
            .current_dir(s._dir.path())
            .output()
            .unwrap()
    };
    let export = |args: &[&str]| export_from(args, &data);
    let out = export(&["alice/life"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), doc, "{out:?}");
    let to = s._dir.path().join("exported");
    std::fs::create_dir_all(&to).unwrap();
    let out = export(&["alice/life", "-o", to.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(to.join("main.tg.hcl")).unwrap(),
        doc
    );
    assert!(to.join("catalog-profiles.tg.hcl").is_file());
    // Without the data dir, from the store: the same files.
    let elsewhere = s._dir.path().join("elsewhere");
    let to_store = s._dir.path().join("exported-from-store");
    std::fs::create_dir_all(&to_store).unwrap();
    let out = export_from(
        &["alice/life", "-o", to_store.to_str().unwrap()],
        &elsewhere,
    );
    assert!(out.status.success(), "{out:?}");
    for f in ["main.tg.hcl", "catalog-profiles.tg.hcl"] {
        assert_eq!(
            std::fs::read_to_string(to_store.join(f)).unwrap(),
            std::fs::read_to_string(to.join(f)).unwrap(),
            "{f}"
        );
    }
    let out = export(&["alice/nope"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("GET /v1/sessions/alice%2Fnope/testbed"),
        "{err}"
    );
    let out = export(&["life"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected `OWNER/NAME`"),
        "{out:?}"
    );

    // One change at a time: a slow job makes the second change a 409.
    std::fs::write(s.double.join("config.json"), r#"{"delay_ms": {"*": 1500}}"#).unwrap();
    let (st, slow) = s.call("DELETE", "/v1/sessions/life/nodes/n2", ALICE, None);
    assert_eq!(st, 202, "{slow}");
    let (st, v) = s.call("POST", "/v1/sessions/life/nodes", ALICE, Some(json!({})));
    assert_eq!((st, code(&v)), (409, "busy"), "{v}");
    assert_eq!(s.wait(ALICE, &slow)["status"], "succeeded");
    std::fs::remove_file(s.double.join("config.json")).unwrap();

    let (st, job) = s.call("DELETE", "/v1/sessions/life", ALICE, None);
    assert_eq!(st, 202);
    assert_eq!(s.wait(ALICE, &job)["status"], "succeeded");
    let (_, v) = s.call("GET", "/v1/sessions", ALICE, None);
    assert_eq!(v["sessions"], json!([]), "{v}");
    assert!(!dir.exists());
    let objects = s.double.join("objects");
    let left: Vec<_> = std::fs::read_dir(&objects)
        .map(|d| {
            d.flatten()
                .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "objects left: {left:?}");
}

/// The live document is `schemas/openapi.json`, byte for byte; with
/// `UPDATE_SCHEMAS=1` the test rewrites the file instead.
#[test]
fn serve_openapi_is_the_kept_document() {
    let s = Server::start();
    let (st, live) = s.text("GET", "/openapi.json", None, None, &[]);
    assert_eq!(st, 200, "{live}");
    let doc: Value = serde_json::from_str(&live).expect("the document is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/openapi.json");
    if std::env::var_os("UPDATE_SCHEMAS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &live).unwrap();
        return;
    }
    let kept = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        kept == live,
        "`schemas/openapi.json` is not the document `tg serve` serves at /openapi.json: \
         regenerate it with `UPDATE_SCHEMAS=1 cargo test --test it serve_openapi` and review the diff"
    );
    // Every route the server answers is in it.
    for p in [
        "/v1/sessions/{s}/inventory",
        "/v1/jobs/{id}/events",
        "/v1/pool",
        "/v1/pool/{host}/release",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} is not documented");
    }
}

#[test]
fn serve_job_events() {
    let s = Server::start();
    let (st, _) = s.call("POST", "/v1/sessions", ALICE, Some(json!({"name": "ev"})));
    assert_eq!(st, 201);
    // A client connecting while the job runs gets what happened so far,
    // then the rest, up to `done`.
    std::fs::write(s.double.join("config.json"), r#"{"delay_ms": {"*": 500}}"#).unwrap();
    let (st, job) = s.call("POST", "/v1/sessions/ev/nodes", ALICE, Some(json!({})));
    assert_eq!(st, 202, "{job}");
    let id = job["job"]["id"].as_str().unwrap().to_string();
    let live = s.events(ALICE, &id, None);
    std::fs::remove_file(s.double.join("config.json")).unwrap();
    let kinds: Vec<&str> = live.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.last(), Some(&"done"), "{live:?}");
    let seqs: Vec<u64> = live.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=live.len() as u64).collect::<Vec<_>>());
    for (kind, addr) in [
        ("started", "network.net"),
        ("started", "node.n1"),
        ("finished", "node.n1"),
    ] {
        assert!(
            live.iter()
                .any(|e| e["kind"] == kind && e["address"] == addr),
            "no `{kind}` of `{addr}` in {live:?}"
        );
    }
    let done = &live.last().unwrap()["job"];
    assert_eq!(
        (&done["status"], &done["result"]["node"]),
        (&json!("succeeded"), &json!("n1"))
    );
    // Late: the same stream again; `last-event-id` resumes after an event.
    assert_eq!(s.events(ALICE, &id, None), live);
    assert_eq!(s.events(ALICE, &id, Some(2)), live[2..]);
    // Another user's job is not there for them.
    let (st, _) = s.text(
        "GET",
        &format!("/v1/jobs/{id}/events"),
        Some(BOB),
        None,
        &[],
    );
    assert_eq!(st, 404);

    // A failing job ends with `done` and the error.
    let (_, job) = s.call(
        "POST",
        "/v1/sessions/ev/nodes",
        ALICE,
        Some(json!({"image": "windows"})),
    );
    let ev = s.events(ALICE, job["job"]["id"].as_str().unwrap(), None);
    let last = ev.last().unwrap();
    assert_eq!(
        (&last["kind"], &last["job"]["status"]),
        (&json!("done"), &json!("failed")),
        "{ev:?}"
    );
    assert!(last["job"]["error"]["message"].is_string(), "{last}");

    let (_, job) = s.call("DELETE", "/v1/sessions/ev", ALICE, None);
    let ev = s.events(ALICE, job["job"]["id"].as_str().unwrap(), None);
    assert!(
        ev.iter()
            .any(|e| e["kind"] == "finished" && e["op"] == "delete"),
        "{ev:?}"
    );
}

#[test]
fn serve_inventory_and_pool() {
    let s = Server::start();
    s.call("POST", "/v1/sessions", ALICE, Some(json!({"name": "inv"})));
    let (st, v) = s.call("GET", "/v1/sessions/inv/inventory", ALICE, None);
    assert_eq!(
        (st, &v),
        (200, &json!({"all": {"hosts": {}, "children": {}}}))
    );
    let (_, job) = s.call(
        "POST",
        "/v1/sessions/inv/nodes",
        ALICE,
        Some(json!({"profile": "cdn:basic"})),
    );
    assert_eq!(s.wait(ALICE, &job)["status"], "succeeded");
    let (st, v) = s.call("GET", "/v1/sessions/inv/inventory", ALICE, None);
    assert_eq!(st, 200, "{v}");
    let host = &v["all"]["hosts"]["n1"];
    assert!(host["ansible_host"].is_string(), "{v}");
    assert_eq!(host["tg_labels"], json!({"tier": "cdn"}), "{v}");
    assert!(
        v["all"]["children"]["tier_cdn"]["hosts"]
            .get("n1")
            .is_some(),
        "{v}"
    );
    let (_, v) = s.call(
        "GET",
        "/v1/sessions/inv/inventory?format=script",
        ALICE,
        None,
    );
    assert!(v["_meta"]["hostvars"]["n1"].is_object(), "{v}");
    let (st, v) = s.call("GET", "/v1/sessions/inv/inventory?format=ini", ALICE, None);
    assert_eq!((st, code(&v)), (400, "bad_request"));
    let (st, _) = s.call("GET", "/v1/sessions/alice%2Finv/inventory", BOB, None);
    assert_eq!(st, 403);

    // The pool routes are for admins; the test catalog declares no pool.
    for (method, path, body) in [
        ("GET", "/v1/pool", None),
        (
            "POST",
            "/v1/pool/h1/quarantine",
            Some(json!({"reason": "disk"})),
        ),
        ("POST", "/v1/pool/h1/release", None),
    ] {
        let (st, v) = s.call(method, path, ALICE, body);
        assert_eq!((st, code(&v)), (403, "forbidden"), "{path}: {v}");
    }
    let (st, v) = s.call("GET", "/v1/pool", ROOT, None);
    assert_eq!((st, &v), (200, &json!({"hosts": []})));
    let (st, v) = s.call(
        "POST",
        "/v1/pool/h1/quarantine",
        ROOT,
        Some(json!({"reason": "disk"})),
    );
    assert_eq!((st, code(&v)), (404, "not_found"), "{v}");
    let (st, v) = s.call(
        "POST",
        "/v1/pool/h1/quarantine",
        ROOT,
        Some(json!({"reason": " "})),
    );
    assert_eq!((st, code(&v)), (400, "bad_request"), "{v}");
    // An `address:port` is a lease key even when no pool names it.
    let (st, v) = s.call(
        "POST",
        "/v1/pool/127.0.0.9:22/quarantine",
        ROOT,
        Some(json!({"reason": "disk"})),
    );
    assert_eq!((st, &v["state"]), (200, &json!("quarantined")), "{v}");
    let (st, v) = s.call("POST", "/v1/pool/127.0.0.9:22/release", ROOT, None);
    assert_eq!((st, &v["state"]), (200, &json!("free")), "{v}");

    let (_, job) = s.call("DELETE", "/v1/sessions/inv", ALICE, None);
    assert_eq!(s.wait(ALICE, &job)["status"], "succeeded");
}

/// The pool routes on a catalog with an `ssh` pool: list, quarantine by
/// name, and release (nothing connects to the hosts).
#[test]
fn serve_pool_of_the_catalog() {
    let s = Server::start_with(
        "platform \"ssh\" \"lab\" {\n  user = \"root\"\n  host \"h1\" {\n    address = \"127.0.0.9\"\n    labels  = { rack = \"r1\" }\n  }\n  host \"h2\" {\n    address = \"127.0.0.10\"\n    port    = 2222\n  }\n}\n",
    );
    let (st, v) = s.call("GET", "/v1/pool", ROOT, None);
    assert_eq!(st, 200, "{v}");
    let hosts = v["hosts"].as_array().unwrap();
    let keys: Vec<&str> = hosts.iter().map(|h| h["host"].as_str().unwrap()).collect();
    assert_eq!(keys, ["127.0.0.9:22", "127.0.0.10:2222"], "{v}");
    assert_eq!(
        (
            &hosts[0]["pool"],
            &hosts[0]["name"],
            &hosts[0]["state"],
            &hosts[0]["labels"]
        ),
        (
            &json!("lab"),
            &json!("h1"),
            &json!("free"),
            &json!({"rack": "r1"})
        ),
        "{v}"
    );
    let (st, v) = s.call(
        "POST",
        "/v1/pool/h2/quarantine",
        ROOT,
        Some(json!({"reason": "disk"})),
    );
    assert_eq!(
        (st, &v),
        (
            200,
            &json!({"host": "127.0.0.10:2222", "state": "quarantined"})
        )
    );
    let (_, v) = s.call("GET", "/v1/pool", ROOT, None);
    assert_eq!(
        (&v["hosts"][1]["state"], &v["hosts"][1]["quarantined"]),
        (&json!("quarantined"), &json!("disk")),
        "{v}"
    );
    let (st, v) = s.call("POST", "/v1/pool/h2/release", ROOT, None);
    assert_eq!((st, &v["state"]), (200, &json!("free")), "{v}");
    let (_, v) = s.call("GET", "/v1/pool", ROOT, None);
    assert_eq!(v["hosts"][1]["state"], "free", "{v}");
    let (st, v) = s.call("POST", "/v1/pool/h9/release", ROOT, None);
    assert_eq!((st, code(&v)), (404, "not_found"), "{v}");
}

/// A catalog pool with its own `state` keeps its leases there: the pool
/// routes read and change that store, not the server's.
#[test]
fn serve_pool_routes_use_the_pools_own_state() {
    let leases = tempfile::tempdir().unwrap();
    let db = leases.path().join("leases.db");
    let s = Server::start_with(&format!(
        "platform \"ssh\" \"lab\" {{\n  state = \"{}\"\n  host \"h1\" {{\n    address = \"127.0.0.9\"\n  }}\n  host \"h2\" {{\n    address = \"127.0.0.10\"\n  }}\n}}\n",
        db.display()
    ));
    let store = tg::ops::open_store(
        leases.path(),
        &Default::default(),
        Some(db.to_str().unwrap()),
    )
    .unwrap();
    // Quarantined in the pool's store, seen by the server.
    store.quarantine_host("127.0.0.9:22", "fan").unwrap();
    let (st, v) = s.call("GET", "/v1/pool", ROOT, None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (&v["hosts"][0]["state"], &v["hosts"][0]["quarantined"]),
        (&json!("quarantined"), &json!("fan")),
        "{v}"
    );
    // Quarantined by the server, written to the pool's store.
    let (st, v) = s.call(
        "POST",
        "/v1/pool/h2/quarantine",
        ROOT,
        Some(json!({"reason": "disk"})),
    );
    assert_eq!(st, 200, "{v}");
    let row = |key: &str| store.leases().unwrap().into_iter().find(|l| l.host == key);
    assert_eq!(
        row("127.0.0.10:22").and_then(|l| l.quarantined).as_deref(),
        Some("disk")
    );
    // Released by the server, freed in the pool's store.
    let (st, v) = s.call("POST", "/v1/pool/h1/release", ROOT, None);
    assert_eq!((st, &v["state"]), (200, &json!("free")), "{v}");
    assert!(
        row("127.0.0.9:22").is_none_or(|l| l.quarantined.is_none() && l.session.is_none()),
        "{:?}",
        row("127.0.0.9:22")
    );
    let (_, v) = s.call("GET", "/v1/pool", ROOT, None);
    assert_eq!(
        (&v["hosts"][0]["state"], &v["hosts"][1]["state"]),
        (&json!("free"), &json!("quarantined")),
        "{v}"
    );
}

/// A relative SQLite `state` of a catalog pool is the catalog's file (each
/// session folder holds a copy of the catalog's files, not of its leases).
#[test]
fn serve_relative_pool_state_is_the_catalogs() {
    let s = Server::start_with(
        "platform \"ssh\" \"lab\" {\n  state = \"leases.db\"\n  host \"h1\" {\n    address = \"127.0.0.9\"\n  }\n}\n",
    );
    let (st, v) = s.call(
        "POST",
        "/v1/pool/h1/quarantine",
        ROOT,
        Some(json!({"reason": "fan"})),
    );
    assert_eq!(st, 200, "{v}");
    let db = s._dir.path().join("catalog/leases.db");
    let store =
        tg::ops::open_store(db.parent().unwrap(), &Default::default(), Some("leases.db")).unwrap();
    let rows = store.leases().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].quarantined.as_deref(), Some("fan"));
}

/// Many opens of one new session at once: exactly one makes it (201), the
/// others reopen it (200), so none writes a fresh document over another's.
#[test]
fn serve_concurrent_opens_make_one_session() {
    let s = Server::start();
    let codes: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    s.call("POST", "/v1/sessions", ALICE, Some(json!({"name": "race"})))
                        .0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let made = codes.iter().filter(|&&c| c == 201).count();
    let reopened = codes.iter().filter(|&&c| c == 200).count();
    assert_eq!((made, reopened), (1, 7), "{codes:?}");
}
