//! The plan-side commands through the real binary: plan text/JSON/markdown
//! snapshots, exit codes, saved plans, show, output, inventory, exec,
//! sessions, graph, init; every `-json` document is checked against its
//! schema in `schemas/`.

use serde_json::Value;

use crate::engine::Bed;

const BED: &str = r#"
network "lab" {
  cidr = "10.42.0.0/24"
}

node "edge" {
  count    = 2
  image    = "host"
  network  = network.lab
  platform = "double"
  labels   = { role = "edge" }
}

node "origin" {
  image      = "host"
  network    = network.lab
  platform   = "double"
  depends_on = [node.edge]
}

package "fleche" {
  version = "16.3-1"
  on      = [node.edge]
}

output "edge_addresses" {
  value = node.edge[*].address
}

output "secret" {
  value     = "hunter2"
  sensitive = true
}
"#;

/// Replace run-specific values (lineages, versions, paths) so snapshots are stable.
fn stable(bed: &Bed, text: &str) -> String {
    let mut out = text.replace(&bed.tb.path().display().to_string(), "[dir]");
    // Lineages are UUIDs: 8-4-4-4-12 hex digits.
    let re_like = |s: &str| -> Option<(usize, usize)> {
        let b = s.as_bytes();
        (0..b.len().saturating_sub(35)).find_map(|i| {
            let cand = &s[i..i + 36];
            let ok = cand.char_indices().all(|(j, c)| match j {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit(),
            });
            ok.then_some((i, i + 36))
        })
    };
    while let Some((a, b)) = re_like(&out) {
        out.replace_range(a..b, "[lineage]");
    }
    out.replace(env!("CARGO_PKG_VERSION"), "[version]")
}

pub(crate) fn validate(schema_file: &str, doc: &Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(schema_file);
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{schema_file} is not a valid schema: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{schema_file}: {errors:#?}\n{}",
        serde_json::to_string_pretty(doc).unwrap()
    );
}

fn json_of(r: &crate::support::Run) -> Value {
    serde_json::from_str(&r.stdout()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.stdout()))
}

#[test]
fn plan_text_of_a_new_testbed() {
    let bed = Bed::new(BED);
    let r = bed.tg(&["plan"]);
    r.expect_code(0);
    insta::assert_snapshot!("plan_create", stable(&bed, &r.stdout()));
}

#[test]
fn plan_text_of_updates_replaces_and_deletes() {
    let bed = Bed::new(BED);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    let changed = BED
        .replace("count    = 2", "count    = 1")
        .replace(
            "labels   = { role = \"edge\" }",
            "labels   = { role = \"edge\", tier = \"cdn\" }",
        )
        .replace(
            "node \"origin\" {\n  image      = \"host\"",
            "node \"origin\" {\n  image      = \"debian:bookworm\"",
        );
    bed.tb.write("main.tg.hcl", &changed);
    let r = bed.tg(&["plan", "-detailed-exitcode"]);
    r.expect_code(2);
    insta::assert_snapshot!("plan_mixed", stable(&bed, &r.stdout()));

    let r = bed.tg(&["plan", "-json"]);
    r.expect_code(0);
    let doc = json_of(&r);
    validate("plan.schema.json", &doc);
    let by_addr = |a: &str| {
        doc["resource_changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["address"] == a)
            .cloned()
            .unwrap_or_else(|| panic!("no change for {a}"))
    };
    assert_eq!(
        by_addr("node.edge[0]")["actions"],
        serde_json::json!(["update"])
    );
    assert_eq!(
        by_addr("node.edge[1]")["change"]["actions"],
        serde_json::json!(["delete"])
    );
    let origin = by_addr("node.origin");
    assert_eq!(origin["actions"], serde_json::json!(["delete", "create"]));
    assert_eq!(
        origin["change"]["replace_reasons"],
        serde_json::json!([{"reason": "attribute", "attribute": "image"}])
    );
    assert_eq!(
        by_addr("network.lab")["actions"],
        serde_json::json!(["no-op"])
    );
    assert_eq!(
        doc["summary"],
        serde_json::json!({"add": 1, "change": 1, "destroy": 3})
    );

    let r = bed.tg(&["plan", "-format", "markdown"]);
    r.expect_code(0);
    insta::assert_snapshot!("plan_markdown", stable(&bed, &r.stdout()));
}

#[test]
fn plan_json_of_a_new_testbed_matches_the_schema() {
    let bed = Bed::new(BED);
    let r = bed.tg(&["plan", "-json"]);
    r.expect_code(0);
    let doc = json_of(&r);
    validate("plan.schema.json", &doc);
    assert_eq!(doc["format_version"], "1.0");
    assert_eq!(doc["session"], "default");
    assert_eq!(doc["serial"], 0);
    let first = &doc["resource_changes"][0];
    assert_eq!(first["address"], "network.lab");
    assert_eq!(first["type"], "network");
    assert_eq!(first["change"]["after"]["cidr"], "10.42.0.0/24");
    let pkg = doc["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "package")
        .unwrap();
    assert_eq!(pkg["name"], "fleche");
    assert_eq!(pkg["index"], "node.edge[0]");
}

#[test]
fn detailed_exitcode_and_errors() {
    let bed = Bed::new(BED);
    bed.tg(&["plan", "-detailed-exitcode"]).expect_code(2);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    bed.tg(&["plan", "-detailed-exitcode"]).expect_code(0);
    bed.tb
        .write("broken.tg.hcl", "node \"x\" {\n  image = \n}\n");
    let r = bed.tg(&["plan", "-detailed-exitcode"]);
    r.expect_code(1);
    assert!(r.stderr().contains("broken.tg.hcl:"), "{}", r.stderr());
}

#[test]
fn saved_plans_show_as_text_and_json_and_apply() {
    let bed = Bed::new(BED);
    let r = bed.tg(&["plan", "-out", "p.tgplan"]);
    r.expect_code(0);
    assert!(r.stdout().contains("Saved the plan to: p.tgplan"));
    let text = bed.tg(&["show", "p.tgplan"]);
    text.expect_code(0);
    let plan = bed.tg(&["plan"]);
    assert_eq!(text.stdout(), plan.stdout());
    let j = bed.tg(&["show", "-json", "p.tgplan"]);
    j.expect_code(0);
    validate("plan.schema.json", &json_of(&j));
    let r = bed.tg(&["apply", "-json", "p.tgplan"]);
    r.expect_code(0);
    let doc = json_of(&r);
    validate("apply.schema.json", &doc);
    assert_eq!(doc["added"], 6);
    assert_eq!(doc["success"], true);
    // Where the time went, as the summary line says it.
    let timing = &doc["timing"];
    let wall = timing["wall_s"].as_f64().expect("wall_s");
    assert!(
        timing["critical_path_s"].as_f64().unwrap() <= wall + 1e-6,
        "{timing}"
    );
    let path = timing["critical_path"].as_array().expect("critical_path");
    assert!(!path.is_empty(), "{timing}");
    assert!(path.iter().all(|s| s["op"] == "create"), "{timing}");
    // Nothing to do: no timing.
    let again = bed.tg(&["apply", "-json", "-auto-approve"]);
    again.expect_code(0);
    let doc = json_of(&again);
    validate("apply.schema.json", &doc);
    assert!(doc["timing"].is_null(), "{doc}");
}

#[test]
fn show_output_and_inventory() {
    let bed = Bed::new(BED);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);

    let s = bed.tg(&["show", "-json"]);
    s.expect_code(0);
    let doc = json_of(&s);
    validate("state.schema.json", &doc);
    assert_eq!(doc["instances"].as_array().unwrap().len(), 6);

    let o = bed.tg(&["output"]);
    o.expect_code(0);
    assert!(
        o.stdout().contains("secret = (sensitive value)"),
        "{}",
        o.stdout()
    );
    assert!(!o.stdout().contains("hunter2"));
    let o = bed.tg(&["output", "secret", "-raw"]);
    o.expect_code(0);
    assert_eq!(o.stdout(), "hunter2\n");
    let o = bed.tg(&["output", "-json"]);
    o.expect_code(0);
    let doc = json_of(&o);
    validate("output.schema.json", &doc);
    assert_eq!(
        doc["edge_addresses"]["value"],
        serde_json::json!(["10.42.0.2", "10.42.0.3"])
    );
    let o = bed.tg(&["output", "secrte"]);
    o.expect_code(1);
    assert!(
        o.stderr().contains("did you mean `secret`?"),
        "{}",
        o.stderr()
    );

    let inv = bed.tg(&["inventory", "--list"]);
    inv.expect_code(0);
    let doc = json_of(&inv);
    validate("inventory.schema.json", &doc);
    assert_eq!(
        doc["edge"]["hosts"],
        serde_json::json!(["edge-0", "edge-1"])
    );
    assert_eq!(
        doc["role_edge"]["hosts"],
        serde_json::json!(["edge-0", "edge-1"])
    );
    assert_eq!(
        doc["platform_double"]["hosts"],
        serde_json::json!(["edge-0", "edge-1", "origin"])
    );
    assert_eq!(
        doc["_meta"]["hostvars"]["edge-1"]["ansible_host"],
        "10.42.0.3"
    );
    assert_eq!(
        doc["_meta"]["hostvars"]["edge-1"]["tg_address"],
        "node.edge[1]"
    );
    let same = bed.tg(&["output", "inventory"]);
    assert_eq!(json_of(&same), doc);
    let host = bed.tg(&["inventory", "--host", "origin"]);
    assert_eq!(json_of(&host)["ansible_host"], "10.42.0.4");
    bed.tg(&["inventory"]).expect_code(1);
}

#[test]
fn inventory_in_script_and_static_forms() {
    let bed = Bed::new(BED);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    let script = bed.tg(&["output", "inventory"]);
    script.expect_code(0);
    insta::assert_snapshot!("inventory_script", stable(&bed, &script.stdout()));
    let doc = json_of(&script);
    assert_eq!(
        doc["pkg_fleche"]["hosts"],
        serde_json::json!(["edge-0", "edge-1"])
    );
    assert_eq!(
        doc["net_lab"]["hosts"],
        serde_json::json!(["edge-0", "edge-1", "origin"])
    );
    let yaml = bed.tg(&["output", "inventory", "-format", "yaml"]);
    yaml.expect_code(0);
    insta::assert_snapshot!("inventory_yaml", stable(&bed, &yaml.stdout()));
    let json = bed.tg(&["output", "inventory", "-format", "json"]);
    json.expect_code(0);
    let doc = json_of(&json);
    assert!(
        doc["all"]["children"]["role_edge"]["hosts"].is_object(),
        "{doc}"
    );

    // Ansible reads each form the same way.
    if !crate::support::have_tools(&["ansible-inventory"]) {
        return;
    }
    bed.tb.write("inventory.yml", &yaml.stdout());
    bed.tb.write("inventory.json", &json.stdout());
    bed.tb.write(
        "inventory.sh",
        &format!(
            "#!/bin/sh\nexec '{}' --chdir '{}' inventory \"$@\"\n",
            crate::support::tg_bin().display(),
            bed.tb.path().display()
        ),
    );
    let sh = bed.tb.path().join("inventory.sh");
    std::fs::set_permissions(&sh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let graph = |file: &str| {
        let out = std::process::Command::new("ansible-inventory")
            .arg("-i")
            .arg(bed.tb.path().join(file))
            .args(["--list"])
            .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
            .env("ANSIBLE_NOCOLOR", "1")
            .output()
            .expect("run ansible-inventory");
        assert!(
            out.status.success(),
            "ansible-inventory -i {file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
        // Normalise: group member order and `ungrouped`.
        v.as_object_mut().unwrap().remove("ungrouped");
        v
    };
    let from_script = graph("inventory.sh");
    assert_eq!(graph("inventory.yml"), from_script);
    assert_eq!(graph("inventory.json"), from_script);
    assert_eq!(
        from_script["_meta"]["hostvars"]["edge-0"]["tg_packages"],
        serde_json::json!(["fleche"])
    );
}

#[test]
fn session_names_with_shell_metacharacters_are_refused() {
    let bed = Bed::new(BED);
    for name in ["s$(touch x)", "a b", "s;id", "`id`", "s'q"] {
        let r = bed.tg(&["-session", name, "apply", "-auto-approve"]);
        r.expect_code(1);
        assert!(
            r.stderr().contains("invalid session name"),
            "{name}: {}",
            r.stderr()
        );
        let r = bed.tg(&["-session", name, "inventory", "--list"]);
        r.expect_code(1);
    }
    assert!(!bed.tb.path().join("x").exists());
    assert!(!bed.tb.path().join(".tg").join("state.db").exists());
}

#[test]
fn exec_runs_on_every_matching_node() {
    let bed = Bed::new(BED);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    let r = bed.tg(&["exec", "node.edge[*]", "--", "echo", "hi"]);
    r.expect_code(0);
    assert_eq!(
        crate::support::sorted_lines(&r.stdout()),
        ["[edge-0] edge-0: echo hi", "[edge-1] edge-1: echo hi"]
    );
    let r = bed.tg(&["exec", "node.origin", "--", "echo", "hi"]);
    r.expect_code(0);
    assert_eq!(r.stdout(), "origin: echo hi\n");
    bed.tg(&["exec", "role=edge", "--", "false"]).expect_code(1);
    let r = bed.tg(&["exec", "-json", "node.edge", "--", "uptime"]);
    r.expect_code(0);
    let doc = json_of(&r);
    validate("exec.schema.json", &doc);
    assert_eq!(doc["results"].as_array().unwrap().len(), 2);
    let r = bed.tg(&["exec", "role=nothing", "--", "true"]);
    r.expect_code(1);
    assert!(r.stderr().contains("matches no node"), "{}", r.stderr());
}

#[test]
fn sessions_are_independent() {
    let bed = Bed::new(BED);
    let r = bed.tg(&["init"]);
    r.expect_code(0);
    assert!(
        r.stdout().contains("Created session `default`"),
        "{}",
        r.stdout()
    );
    bed.tg(&["session", "new", "pr-7"]).expect_code(0);
    bed.tg(&["session", "new", "pr-7"]).expect_code(1);
    bed.tg(&["--session", "pr-7", "apply", "-auto-approve"])
        .expect_code(0);
    // The default session still plans everything.
    bed.tg(&["plan", "-detailed-exitcode"]).expect_code(2);
    let l = bed.tg(&["session", "list", "-json"]);
    l.expect_code(0);
    let doc = json_of(&l);
    let names: Vec<&str> = doc["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "pr-7"]);
    let s = bed.tg(&["session", "show", "pr-7", "-json"]);
    assert_eq!(json_of(&s)["instances"], 6);
    let d = bed.tg(&["session", "delete", "pr-7"]);
    d.expect_code(1);
    assert!(
        d.stderr().contains("still records 6 instance(s)"),
        "{}",
        d.stderr()
    );
    bed.tg(&["--session", "pr-7", "destroy", "-auto-approve"])
        .expect_code(0);
    bed.tg(&["session", "delete", "pr-7"]).expect_code(0);
    bed.tg(&["session", "new", "bad name"]).expect_code(1);
}

#[test]
fn state_list_show_rm() {
    let bed = Bed::new(BED);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    let r = bed.tg(&["state", "list", "node.edge"]);
    assert_eq!(r.stdout(), "node.edge[0]\nnode.edge[1]\n");
    let r = bed.tg(&["state", "show", "node.edge[0]"]);
    r.expect_code(0);
    assert!(r.stdout().contains("hostname"), "{}", r.stdout());
    let r = bed.tg(&["state", "rm", "package.fleche"]);
    r.expect_code(0);
    assert!(
        r.stdout().contains("Successfully removed 2 instance(s)"),
        "{}",
        r.stdout()
    );
    assert_eq!(bed.state_list().len(), 4);
    bed.tg(&["state", "rm", "node.nothing"]).expect_code(1);
    bed.tg(&["force-unlock", "-force", "abc"]).expect_code(1);
}

#[test]
fn graph_prints_dot() {
    let bed = Bed::new(BED);
    let r = bed.tg(&["graph"]);
    r.expect_code(0);
    insta::assert_snapshot!("graph_dot", r.stdout());
}

#[test]
fn platform_refusals_name_the_node_and_warnings_show() {
    let bed = Bed::new(&BED.replace(
        "node \"origin\" {\n  image      = \"host\"",
        "node \"origin\" {\n  image      = \"debian:bookworm\"",
    ));
    bed.config(serde_json::json!({ "refuse_images": ["debian:bookworm"] }));
    let r = bed.tg(&["plan"]);
    r.expect_code(1);
    let err = r.stderr();
    assert!(
        err.contains("error: platform `double` cannot host `node.origin`: the test double refuses image `debian:bookworm`"),
        "{err}"
    );
    assert!(err.contains("main.tg.hcl:"), "{err}");

    bed.config(serde_json::json!({ "warn_images": ["debian:bookworm"] }));
    let r = bed.tg(&["plan"]);
    r.expect_code(0);
    assert!(
        r.stdout().contains(
            "warning: node.origin: image `debian:bookworm` is only simulated by the test double"
        ),
        "{}",
        r.stdout()
    );
    let j = json_of(&bed.tg(&["plan", "-json"]));
    assert_eq!(j["warnings"].as_array().unwrap().len(), 1);
}

#[test]
fn unknown_platforms_get_a_suggestion() {
    let bed = Bed::new(&BED.replace(
        "platform   = \"double\"\n  depends_on",
        "platform   = \"dubble\"\n  depends_on",
    ));
    let r = bed.tg(&["plan"]);
    r.expect_code(1);
    assert!(
        r.stderr().contains("did you mean `double`?"),
        "{}",
        r.stderr()
    );
}

#[test]
fn markdown_of_a_big_plan_is_cut_to_fit_a_comment() {
    let bed = Bed::new(
        r#"
network "lab" {
  cidr = "10.50.0.0/20"
}
node "n" {
  count    = 600
  image    = "host"
  network  = network.lab
  platform = "double"
}
"#,
    );
    let r = bed.tg(&["plan", "-format", "markdown"]);
    r.expect_code(0);
    let md = r.stdout();
    assert!(
        md.chars().count() <= 60_000,
        "{} characters",
        md.chars().count()
    );
    assert!(md.contains("| 601 | 0 | 0 |"), "{md}");
    assert!(md.contains("and 551 more"), "{md}");
    assert!(md.contains("the plan was cut to fit in a comment"), "{md}");
    assert!(md.contains("```\n\n</details>\n"), "{md}");
}

/// With `-json`, a testbed with errors still gives one JSON document on
/// stdout (the `tg validate -json` one), so CI that parses the output gets
/// the problems with their positions.
#[test]
fn plan_json_of_a_broken_testbed_is_the_validate_document() {
    let bed = Bed::new("network \"lab\" {\n  cidr = \"10.0.0.0/33\"\n}\n");
    let r = bed.tg(&["plan", "-json"]);
    r.expect_code(1);
    let doc = json_of(&r);
    validate("validate.schema.json", &doc);
    assert_eq!(doc["valid"], Value::Bool(false));
    assert_eq!(doc["diagnostics"][0]["range"]["start"]["line"], 2);
    assert_eq!(r.stderr(), "", "nothing but the document is printed");
}

/// Reading never creates a session: a mistyped `--session` is an error.
#[test]
fn read_only_commands_do_not_create_sessions() {
    let bed = Bed::new(BED);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    for args in [
        &["--session", "typo", "state", "list"][..],
        &["--session", "typo", "output"][..],
        &["--session", "typo", "exec", "node.edge", "--", "true"][..],
    ] {
        let r = bed.tg(args);
        assert_eq!(r.code(), 1, "{args:?}: {}", r.stdout());
        assert!(r.stderr().contains("`typo`"), "{args:?}: {}", r.stderr());
    }
    // `show` of an unknown session says there is nothing, like `terraform show`.
    let r = bed.tg(&["--session", "typo", "show"]);
    r.expect_code(0);
    assert!(r.stdout().contains("empty"), "{}", r.stdout());
    // Planning reads state under the lock but records nothing either.
    bed.tg(&["--session", "typo", "plan"]).expect_code(0);
    let r = bed.tg(&["session", "list"]);
    assert!(!r.stdout().contains("typo"), "{}", r.stdout());
}

/// One rule for session names, wherever they come from; a refused name
/// reaches nothing (no state file, no shell).
#[test]
fn session_names_are_checked_at_every_entry_point() {
    let bed = Bed::new(BED);
    let long = "x".repeat(5000);
    for bad in [
        "",
        "s$(touch /tmp/x)",
        "a b",
        "-x",
        long.as_str(),
        "a\u{202e}b",
    ] {
        let flag = format!("--session={bad}");
        let r = bed.tg(&[flag.as_str(), "plan"]);
        assert_eq!(r.code(), 1, "{bad:?}: {}", r.stderr());
        assert!(
            r.stderr().contains("invalid session name"),
            "{}",
            r.stderr()
        );
        assert!(r.stderr().contains("in `-session`"), "{}", r.stderr());
        assert!(
            !r.stderr().contains('\u{202e}'),
            "raw bidi character echoed"
        );
        let r = bed.tg_env(&["plan"], &[("TG_SESSION", bad)]);
        assert_eq!(r.code(), 1, "{bad:?}");
        assert!(r.stderr().contains("in `TG_SESSION`"), "{}", r.stderr());
        let r = bed.tg(&["session", "new", "--", bad]);
        assert_eq!(r.code(), 1, "{bad:?}");
    }
    assert!(
        !bed.tb.path().join(".tg").exists(),
        "a refused name made state"
    );
    // Jenkins' BUILD_TAG fits.
    bed.tg_env(&["plan"], &[("TG_SESSION", "jenkins-Folder-job-42")])
        .expect_code(0);
    bed.tg(&["session", "new", "jenkins-Folder.job_42"])
        .expect_code(0);
}

/// State and plans are private whatever the umask.
#[test]
fn state_and_plan_files_are_private_under_umask_000() {
    use std::os::unix::fs::PermissionsExt;
    let bed = Bed::new(BED);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // SAFETY: umask only changes this process's (and its children's) mask.
    let old = unsafe { libc::umask(0) };
    let plan = bed.tg(&["plan", "-out", "p.tgplan"]);
    let apply = bed.tg(&["apply", "-auto-approve"]);
    unsafe { libc::umask(old) };
    plan.expect_code(0);
    apply.expect_code(0);
    assert_eq!(mode(&bed.tb.path().join("p.tgplan")), 0o600);
    assert_eq!(mode(&bed.tb.path().join(".tg")), 0o700);
    assert_eq!(mode(&bed.tb.path().join(".tg/state.db")), 0o600);
}

/// `tg exec` through the test double: bytes pass through untouched with
/// one node, stdin reaches the command, `-timeout` ends it with 124, and
/// output that is not UTF-8 travels as base64 in JSON.
#[test]
fn exec_passes_bytes_stdin_and_timeouts_through() {
    use std::io::Write;
    let bed = Bed::new(BED);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    let r = bed.tg(&["exec", "node.origin", "--", "bytes"]);
    r.expect_code(0);
    assert_eq!(r.0.stdout, vec![0xff, b'\r', b'\n']);
    assert_eq!(r.0.stderr, b"err".to_vec());

    let mut cmd = bed.command(&["exec", "node.origin", "--", "cat"]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hi\n\x00there")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"hi\n\x00there".to_vec());

    // Several nodes and a piped stdin: refused unless asked for all.
    let mut cmd = bed.command(&["exec", "node.edge", "--", "cat"]);
    cmd.stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"x").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-stdin-all"));
    let mut cmd = bed.command(&["exec", "node.edge", "-stdin-all", "--", "cat"]);
    cmd.stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"x\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        crate::support::sorted_lines(&String::from_utf8_lossy(&out.stdout)),
        ["[edge-0] x", "[edge-1] x"]
    );

    let started = std::time::Instant::now();
    let r = bed.tg(&[
        "exec",
        "node.origin",
        "-timeout",
        "500ms",
        "--",
        "sleep",
        "30",
    ]);
    assert_eq!(r.code(), 124, "{}", r.stderr());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(r.stderr().contains("timed out"), "{}", r.stderr());

    let r = bed.tg(&["exec", "node.origin", "-json", "--", "bytes"]);
    r.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(doc["results"][0]["stdout_base64"], "/w0K");
    assert_eq!(doc["results"][0]["stderr"], "err");
    validate("exec.schema.json", &doc);

    // The command's status is tg's status; a signal tg gets reaches it.
    bed.tg(&["exec", "node.origin", "--", "exit", "7"])
        .expect_code(7);
    let mut cmd = bed.command(&["exec", "node.origin", "--", "sleep", "30"]);
    let child = cmd.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + 15));
}

const IMPAIRED: &str = r#"
network "wan" {
  cidr = "10.43.0.0/24"
  impair {
    delay  = "50ms"
    jitter = "5ms"
    loss   = "1%"
  }
}

node "edge" {
  image    = "host"
  network  = network.wan
  platform = "double"
  impair {
    loss = "0%"
    rate = "10mbit"
  }
  wait_for {
    tcp     = 8080
    timeout = "30s"
  }
}
"#;

#[test]
fn plans_show_impairments_and_checks() {
    let bed = Bed::new(IMPAIRED);
    let r = bed.tg(&["plan"]);
    r.expect_code(0);
    // (That a change is an in-place update is the netns platform's to say:
    // see `impair.rs`.)
    insta::assert_snapshot!("plan_impaired", stable(&bed, &r.stdout()));
    let r = bed.tg(&["plan", "-json"]);
    r.expect_code(0);
    let doc = json_of(&r);
    validate("plan.schema.json", &doc);
    let node = &doc["resource_changes"][1]["change"]["after"];
    assert_eq!(
        node["interfaces"][0]["impair"],
        serde_json::json!({"delay": "50ms", "jitter": "5ms", "loss": "0%", "rate": "10mbit"})
    );
    assert_eq!(
        node["wait_for"],
        serde_json::json!([{"tcp": 8080, "timeout": "30s", "interval": "1s"}])
    );
}
