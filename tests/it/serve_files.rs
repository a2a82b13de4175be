//! `tg serve` uploads through HTTP (the server of `serve.rs`): `PUT`,
//! `GET` (list) and `DELETE` of a session's files, and what a session's
//! testbed may read (only the catalog and its uploads; `dir:` images only
//! those the catalog names).

use serde_json::json;

use crate::serve::{code, Server, ALICE, BOB, ROOT};

/// The catalog of `serve_files_confine_the_testbed`: a profile that shows
/// what the testbed reads (an uploaded file, variables) and, once the
/// session has uploaded `path.txt`, reads the path it names.
const READER: &str = r#"
profile "reader" {
  image  = "host"
  labels = {
    motd    = fileexists("files/motd.txt") ? trimspace(file("files/motd.txt")) : "none"
    allowed = env("ALLOWED_VAR", "unset")
    secret  = env("SECRET_VAR", "unset")
    home    = env("HOME", "unset")
    leak    = fileexists("files/path.txt") ? file(trimspace(file("files/path.txt"))) : "none"
  }
}
profile "imager" {
  image = fileexists("files/img.txt") ? "dir:${trimspace(file("files/img.txt"))}" : "host"
}
profile "rootfs" {
  image = "dir:/srv/tg-test-rootfs"
}
"#;

#[test]
fn serve_files_confine_the_testbed() {
    let s = Server::start_full(READER, Some("env_allow = [\"ALLOWED_VAR\"]\n"));
    let (st, _) = s.call("POST", "/v1/sessions", ALICE, Some(json!({"name": "up"})));
    assert_eq!(st, 201);
    let put = |path: &str, token: Option<&str>, body: &[u8]| s.raw("PUT", path, token, Some(body));

    // Upload, then replace.
    let (st, v) = put(
        "/v1/sessions/up/files/motd.txt",
        Some(ALICE),
        b"hello motd\n",
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["name"], "motd.txt", "{v}");
    assert_eq!(v["size"], 11, "{v}");
    assert_eq!(v["sha256"].as_str().map(str::len), Some(64), "{v}");
    let (st, v) = put(
        "/v1/sessions/up/files/motd.txt",
        Some(ALICE),
        b"hello again\n",
    );
    assert_eq!(st, 200, "{v}");
    let stored = s._dir.path().join("data/sessions/alice/up/files/motd.txt");
    assert_eq!(std::fs::read(&stored).unwrap(), b"hello again\n");

    // Names that are not plain file names.
    for bad in [
        ".hidden",
        "%2E%2E",
        "a%2Fb",
        "..%2Fsession.json",
        "a%20b",
        "%24%7Bx%7D",
    ] {
        let (st, v) = put(&format!("/v1/sessions/up/files/{bad}"), Some(ALICE), b"x");
        assert_eq!((st, code(&v)), (400, "bad_request"), "{bad}: {v}");
    }
    // Only the owner (or an admin); only existing sessions; a token.
    let (st, v) = put("/v1/sessions/alice%2Fup/files/x.txt", Some(BOB), b"x");
    assert_eq!((st, code(&v)), (403, "forbidden"), "{v}");
    let (st, v) = put("/v1/sessions/nope/files/x.txt", Some(BOB), b"x");
    assert_eq!((st, code(&v)), (404, "not_found"), "{v}");
    let (st, _) = put("/v1/sessions/up/files/x.txt", None, b"x");
    assert_eq!(st, 401);
    let (st, _) = put("/v1/sessions/alice%2Fup/files/root.txt", Some(ROOT), b"x");
    assert_eq!(st, 201);
    // Past the limit: refused from its declared length.
    let (st, body) = s.text(
        "PUT",
        "/v1/sessions/up/files/big.bin",
        Some(ALICE),
        None,
        &[("content-length", "300000000")],
    );
    assert_eq!(st, 413, "{body}");
    assert!(body.contains("too_large"), "{body}");
    assert!(!stored.with_file_name("big.bin").exists());

    // The testbed reads the upload, and only the allowed variables.
    let (st, job) = s.call(
        "POST",
        "/v1/sessions/up/nodes",
        ALICE,
        Some(json!({"profile": "reader"})),
    );
    assert_eq!(st, 202, "{job}");
    let j = s.wait(ALICE, &job);
    assert_eq!(j["status"], "succeeded", "{j}");
    let (_, n) = s.call("GET", "/v1/sessions/up/nodes/n1", ALICE, None);
    let labels = &n["labels"];
    assert_eq!(labels["motd"], "hello again", "{n}");
    assert_eq!(labels["allowed"], "visible", "{n}");
    assert_eq!(labels["secret"], "unset", "{n}");
    assert_eq!(labels["home"], "unset", "{n}");

    // A package from an uploaded `.deb`.
    let (st, v) = put(
        "/v1/sessions/up/files/mine_1.0_all.deb",
        Some(ALICE),
        b"!<arch>\n",
    );
    assert_eq!(st, 201, "{v}");
    let deploy = |deb: &str| {
        s.call(
            "POST",
            "/v1/sessions/up/packages",
            ALICE,
            Some(json!({"name": "mine", "version": "1.0", "node": "n1", "deb": deb})),
        )
    };
    let (st, v) = deploy("missing.deb");
    assert_eq!((st, code(&v)), (404, "no_such_file"), "{v}");
    let (st, v) = deploy("../session.json");
    assert_eq!((st, code(&v)), (400, "bad_request"), "{v}");
    let (st, job) = deploy("mine_1.0_all.deb");
    assert_eq!(st, 202, "{job}");
    let j = s.wait(ALICE, &job);
    assert_eq!(j["status"], "succeeded", "{j}");
    let doc = std::fs::read_to_string(stored.with_file_name("../main.tg.hcl")).unwrap();
    assert!(
        doc.contains("deb     = \"files/mine_1.0_all.deb\""),
        "{doc}"
    );

    // `dir:` images: only those the catalog names.
    let (st, _) = put("/v1/sessions/up/files/img.txt", Some(ALICE), b"/etc\n");
    assert_eq!(st, 201);
    let imager = json!({"profile": "imager"});
    let (_, job) = s.call("POST", "/v1/sessions/up/nodes", ALICE, Some(imager.clone()));
    let j = s.wait(ALICE, &job);
    assert_eq!(j["status"], "failed", "{j}");
    let msg = j["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("`dir:/etc` is not an image this testbed may use"),
        "{j}"
    );
    let (st, _) = put(
        "/v1/sessions/up/files/img.txt",
        Some(ALICE),
        b"/srv/tg-test-rootfs\n",
    );
    assert_eq!(st, 200);
    let (_, job) = s.call("POST", "/v1/sessions/up/nodes", ALICE, Some(imager));
    let j = s.wait(ALICE, &job);
    assert_eq!(j["status"], "succeeded", "{j}");

    // Allocating a node makes the testbed read `files/path.txt`: a job
    // that must fail.
    let failed_allocation = || {
        let (st, job) = s.call(
            "POST",
            "/v1/sessions/up/nodes",
            ALICE,
            Some(json!({"image": "host"})),
        );
        assert_eq!(st, 202, "{job}");
        let j = s.wait(ALICE, &job);
        assert_eq!(j["status"], "failed", "{j}");
        j
    };
    // A path the tenant names is read only inside the confinement.
    let (st, _) = put(
        "/v1/sessions/up/files/path.txt",
        Some(ALICE),
        b"/etc/passwd\n",
    );
    assert_eq!(st, 201);
    let j = failed_allocation();
    let msg = j["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(
            "cannot read `/etc/passwd`: it is outside the directories this testbed may read"
        ),
        "{j}"
    );
    // ... and through a `..` out of the uploads (the session's own model).
    let (st, _) = put(
        "/v1/sessions/up/files/path.txt",
        Some(ALICE),
        b"files/../session.json\n",
    );
    assert_eq!(st, 200);
    let j = failed_allocation();
    let msg = j["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("outside the directories this testbed may read"),
        "{j}"
    );
}

/// Listing and deleting uploads: sorted with size and SHA-256; a file a
/// deployed package uses is kept (409 naming the package) until it is
/// undeployed; owner-only; 404 for a file not there.
#[test]
fn serve_files_list_and_delete() {
    let s = Server::start_full("", None);
    let (st, _) = s.call("POST", "/v1/sessions", ALICE, Some(json!({"name": "ls"})));
    assert_eq!(st, 201);
    let (st, v) = s.call("GET", "/v1/sessions/ls/files", ALICE, None);
    assert_eq!((st, v), (200, json!([])));
    for (name, body) in [
        ("note.txt", &b"hello\n"[..]),
        ("mine_1.0_all.deb", b"!<arch>\n"),
    ] {
        let path = format!("/v1/sessions/ls/files/{name}");
        let (st, v) = s.raw("PUT", &path, Some(ALICE), Some(body));
        assert_eq!(st, 201, "{v}");
    }
    let (st, v) = s.call("GET", "/v1/sessions/ls/files", ALICE, None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v[0]["name"], "mine_1.0_all.deb", "{v}");
    assert_eq!(v[1]["name"], "note.txt", "{v}");
    assert_eq!(v[1]["size"], 6, "{v}");
    assert_eq!(
        v[1]["sha256"], "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
        "{v}"
    );
    assert_eq!(v.as_array().map(Vec::len), Some(2), "{v}");
    // Only the owner (or an admin).
    let (st, v) = s.call("GET", "/v1/sessions/alice%2Fls/files", BOB, None);
    assert_eq!((st, code(&v)), (403, "forbidden"), "{v}");
    let (st, v) = s.call(
        "DELETE",
        "/v1/sessions/alice%2Fls/files/note.txt",
        BOB,
        None,
    );
    assert_eq!((st, code(&v)), (403, "forbidden"), "{v}");
    let (st, v) = s.call("GET", "/v1/sessions/nope/files", ALICE, None);
    assert_eq!((st, code(&v)), (404, "not_found"), "{v}");

    // A package deployed from the `.deb` keeps it.
    let (st, job) = s.call(
        "POST",
        "/v1/sessions/ls/nodes",
        ALICE,
        Some(json!({"image": "host"})),
    );
    assert_eq!(st, 202, "{job}");
    assert_eq!(s.wait(ALICE, &job)["status"], "succeeded");
    let (st, job) = s.call(
        "POST",
        "/v1/sessions/ls/packages",
        ALICE,
        Some(json!({"name": "mine", "version": "1.0", "node": "n1", "deb": "mine_1.0_all.deb"})),
    );
    assert_eq!(st, 202, "{job}");
    assert_eq!(s.wait(ALICE, &job)["status"], "succeeded");
    let (st, v) = s.call(
        "DELETE",
        "/v1/sessions/ls/files/mine_1.0_all.deb",
        ALICE,
        None,
    );
    assert_eq!((st, code(&v)), (409, "in_use"), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("`mine`"),
        "{v}"
    );

    // Another file goes; then it is not there.
    let (st, _) = s.call("DELETE", "/v1/sessions/ls/files/note.txt", ALICE, None);
    assert_eq!(st, 204);
    let stored = s._dir.path().join("data/sessions/alice/ls/files/note.txt");
    assert!(!stored.exists());
    let (st, v) = s.call("DELETE", "/v1/sessions/ls/files/note.txt", ALICE, None);
    assert_eq!((st, code(&v)), (404, "no_such_file"), "{v}");
    let (st, v) = s.call("DELETE", "/v1/sessions/ls/files/.hidden", ALICE, None);
    assert_eq!((st, code(&v)), (400, "bad_request"), "{v}");

    // Undeployed, the `.deb` may go too.
    let (st, job) = s.call("DELETE", "/v1/sessions/ls/packages/mine", ALICE, None);
    assert_eq!(st, 202, "{job}");
    assert_eq!(s.wait(ALICE, &job)["status"], "succeeded");
    let (st, _) = s.call(
        "DELETE",
        "/v1/sessions/ls/files/mine_1.0_all.deb",
        ALICE,
        None,
    );
    assert_eq!(st, 204);
    let (_, v) = s.call("GET", "/v1/sessions/ls/files", ALICE, None);
    assert_eq!(v, json!([]));
}

/// A session holds at most 100 uploaded files: the 101st is a 413
/// `quota`, replacing one it holds is not, and once one is deleted the
/// next upload goes in (a refused upload frees the session's slot).
#[test]
fn serve_files_quota_counts_a_sessions_files() {
    let s = Server::start_full("", None);
    let (st, _) = s.call("POST", "/v1/sessions", ALICE, Some(json!({"name": "q"})));
    assert_eq!(st, 201);
    let put = |name: &str| {
        s.raw(
            "PUT",
            &format!("/v1/sessions/q/files/{name}"),
            Some(ALICE),
            Some(b"x"),
        )
    };
    for i in 0..100 {
        let (st, v) = put(&format!("f{i}.txt"));
        assert_eq!(st, 201, "{i}: {v}");
    }
    let (st, v) = put("one-more.txt");
    assert_eq!((st, code(&v)), (413, "quota"), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("100 uploaded files")),
        "{v}"
    );
    let (st, v) = put("f7.txt");
    assert_eq!(st, 200, "replacing a file is within the quota: {v}");
    let (st, v) = s.call("DELETE", "/v1/sessions/q/files/f0.txt", ALICE, None);
    assert_eq!(st, 204, "{v}");
    let (st, v) = put("one-more.txt");
    assert_eq!(st, 201, "{v}");
}
